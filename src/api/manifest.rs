//! Raw manifest shapes, exactly as written in YAML, with source positions.
//!
//! Every input struct denies unknown fields. Most leaves are `Option<Spanned<_>>` even when
//! the field is required: the validator then reports a missing field with our own message
//! (naming what would be valid) instead of serde's, and can keep checking the rest.

use indexmap::IndexMap;
use serde::de::{self, IgnoredAny, Visitor};
use serde::{Deserialize, Deserializer};
use serde_saphyr::Spanned;

/// Shorthand: a value with its source position.
pub(crate) type S<T> = Spanned<T>;

/// The first look at a document: just enough to pick the typed shape and name the object
/// in messages. Unknown fields are fine here; the typed pass rejects them.
#[derive(Debug, Deserialize)]
pub(crate) struct Head {
    #[serde(rename = "apiVersion")]
    pub api_version: Option<S<String>>,
    pub kind: Option<S<String>>,
    pub metadata: Option<HeadMeta>,
}

/// Name and namespace, tolerating wrong types (reported later by the typed pass).
#[derive(Debug, Deserialize)]
pub(crate) struct HeadMeta {
    pub name: Option<serde_json::Value>,
    pub namespace: Option<serde_json::Value>,
}

/// A whole document of one kind.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RawDoc<Spec, Status> {
    /// Optional here so that a missing one is reported by natsim's own message (the loader
    /// checks both).
    pub api_version: Option<S<String>>,
    pub kind: Option<S<String>>,
    pub metadata: Option<S<RawMeta>>,
    pub spec: Option<S<Spec>>,
    pub status: Option<S<Status>>,
}

/// `metadata`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RawMeta {
    pub name: Option<S<String>>,
    pub namespace: Option<S<String>>,
    pub labels: Option<IndexMap<String, S<String>>>,
    /// Accepted and ignored (IronCore objects carry them).
    #[allow(dead_code, reason = "accepted for compatibility, not used")]
    pub annotations: Option<IndexMap<String, String>>,
    /// Accepted and ignored.
    #[allow(dead_code, reason = "accepted for compatibility, not used")]
    pub finalizers: Option<Vec<String>>,
    /// Marks the object as being deleted; the value is not interpreted beyond being a string.
    pub deletion_timestamp: Option<S<String>>,
}

/// `{name}` reference to an object in the same namespace.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRef {
    pub name: Option<S<String>>,
}

/// Status that natsim computes and therefore refuses as input.
pub(crate) type OutputOnly = IgnoredAny;

/// `Network.spec`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNetworkSpec {
    /// IronCore's provider id; accepted and ignored.
    #[serde(rename = "providerID")]
    #[allow(dead_code, reason = "accepted for compatibility, not used")]
    pub provider_id: Option<String>,
    /// natsim extension: the network's own prefixes (not NATed).
    pub prefixes: Option<Vec<S<String>>>,
    /// natsim extension: routed prefixes (not NATed).
    pub routes: Option<Vec<S<String>>>,
}

/// `NetworkInterface.spec`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RawNicSpec {
    pub network_ref: Option<S<RawRef>>,
    pub ip_families: Option<S<Vec<S<String>>>>,
    pub ips: Option<S<Vec<S<RawIpSource>>>>,
    #[serde(rename = "virtualIP")]
    pub virtual_ip: Option<S<RawNicVirtualIp>>,
}

/// `NetworkInterface.spec.ips[]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawIpSource {
    pub value: Option<S<String>>,
}

/// `NetworkInterface.spec.virtualIP`: exactly one of the two.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNicVirtualIp {
    #[serde(rename = "virtualIPRef")]
    pub virtual_ip_ref: Option<S<RawRef>>,
    pub ephemeral: Option<S<RawEphemeralVirtualIp>>,
}

/// `NetworkInterface.spec.virtualIP.ephemeral`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEphemeralVirtualIp {
    #[serde(rename = "virtualIPTemplate")]
    pub virtual_ip_template: Option<RawVirtualIpTemplate>,
}

/// `...ephemeral.virtualIPTemplate`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawVirtualIpTemplate {
    #[allow(dead_code, reason = "accepted for compatibility, not used")]
    pub metadata: Option<RawTemplateMeta>,
    pub spec: Option<S<RawVirtualIpSpec>>,
}

/// Template metadata: labels and annotations only.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTemplateMeta {
    #[allow(dead_code, reason = "accepted for compatibility, not used")]
    pub labels: Option<IndexMap<String, String>>,
    #[allow(dead_code, reason = "accepted for compatibility, not used")]
    pub annotations: Option<IndexMap<String, String>>,
}

/// `VirtualIP.spec`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RawVirtualIpSpec {
    #[serde(rename = "type")]
    pub type_: Option<S<String>>,
    pub ip_family: Option<S<String>>,
    /// IronCore's target reference; accepted, not interpreted (NICs point at VIPs).
    #[allow(dead_code, reason = "accepted for compatibility, not used")]
    pub target_ref: Option<RawRef>,
}

/// `VirtualIP.status`: `ip` pins the address.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawVirtualIpStatus {
    pub ip: Option<S<String>>,
}

/// `NATGateway.spec` (IEP-4).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RawNatGatewaySpec {
    #[serde(rename = "type")]
    pub type_: Option<S<String>>,
    pub ip_families: Option<S<Vec<S<String>>>>,
    /// Current IronCore's single-family form.
    pub ip_family: Option<S<String>>,
    pub network_ref: Option<S<RawRef>>,
    pub ips: Option<S<Vec<S<RawNatGatewayIp>>>>,
    pub ports_per_network_interface: Option<S<KubeInt>>,
    pub network_interface_selector: Option<S<RawSelector>>,
}

/// `NATGateway.spec.ips[]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNatGatewayIp {
    pub name: Option<S<String>>,
    /// natsim extension: pinned addresses, at most one per family.
    pub addresses: Option<Vec<S<String>>>,
}

/// A LabelSelector.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RawSelector {
    pub match_labels: Option<IndexMap<String, S<String>>>,
    pub match_expressions: Option<Vec<S<RawRequirement>>>,
}

/// `matchExpressions[]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRequirement {
    pub key: Option<S<String>>,
    pub operator: Option<S<String>>,
    pub values: Option<Vec<S<String>>>,
}

/// An integer field as Kubernetes types it: a YAML number. A quoted `"64"` is a string, which
/// the API server refuses for an integer field, so natsim refuses it too (serde would
/// otherwise read the string's digits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct KubeInt(pub i64);

/// The message for a value that is not a whole number (`load::explain_parse_message` passes
/// messages with this start through unchanged).
pub(crate) const NOT_A_WHOLE_NUMBER: &str = "not a whole number";

impl<'de> Deserialize<'de> for KubeInt {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct IntVisitor;
        impl Visitor<'_> for IntVisitor {
            type Value = KubeInt;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an integer written without quotes, such as 64")
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<KubeInt, E> {
                Ok(KubeInt(v))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<KubeInt, E> {
                // Larger than any valid value either way; the range check names the limit.
                Ok(KubeInt(i64::try_from(v).unwrap_or(i64::MAX)))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<KubeInt, E> {
                // A plain 64 arrives as a number; digits here were quoted.
                if v.trim().parse::<i64>().is_ok() {
                    Err(E::custom(format!(
                        "{NOT_A_WHOLE_NUMBER}: \"{v}\" is a quoted string, which Kubernetes refuses for an integer field; valid: the integer without quotes, such as {}",
                        v.trim()
                    )))
                } else {
                    Err(E::custom(format!(
                        "{NOT_A_WHOLE_NUMBER}; valid: an integer such as 64"
                    )))
                }
            }

            fn visit_f64<E: de::Error>(self, _: f64) -> Result<KubeInt, E> {
                Err(E::custom(format!(
                    "{NOT_A_WHOLE_NUMBER}; valid: an integer such as 64"
                )))
            }

            fn visit_bool<E: de::Error>(self, _: bool) -> Result<KubeInt, E> {
                Err(E::custom(format!(
                    "{NOT_A_WHOLE_NUMBER}; valid: an integer such as 64"
                )))
            }
        }
        d.deserialize_any(IntVisitor)
    }
}

/// A parsed document, by kind.
#[derive(Debug)]
pub(crate) enum RawObject {
    Network(Box<RawDoc<RawNetworkSpec, OutputOnly>>),
    NetworkInterface(Box<RawDoc<RawNicSpec, OutputOnly>>),
    VirtualIp(Box<RawDoc<RawVirtualIpSpec, RawVirtualIpStatus>>),
    NatGateway(Box<RawDoc<RawNatGatewaySpec, OutputOnly>>),
}

/// `apiVersion`, `kind` and `metadata` of a parsed document.
pub(crate) type DocHead<'a> = (
    Option<&'a S<String>>,
    Option<&'a S<String>>,
    Option<&'a S<RawMeta>>,
);

impl RawObject {
    /// `apiVersion`, `kind` and `metadata` of the document, whatever its kind.
    pub(crate) fn head(&self) -> DocHead<'_> {
        fn of<A, B>(d: &RawDoc<A, B>) -> DocHead<'_> {
            (d.api_version.as_ref(), d.kind.as_ref(), d.metadata.as_ref())
        }
        match self {
            RawObject::Network(d) => of(d),
            RawObject::NetworkInterface(d) => of(d),
            RawObject::VirtualIp(d) => of(d),
            RawObject::NatGateway(d) => of(d),
        }
    }
}
