//! Validated API objects: what the reconciler works on.
//!
//! These types carry no source locations and no raw strings: every value has already passed
//! validation (see [`super::validate`]). They are what a simulator hands to
//! [`super::World::apply`] when it scripts changes at virtual times.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::selector::LabelSelector;

/// The first port a NAT block may use; ports below are never handed out.
pub const FIRST_PORT: u16 = 1024;
/// Number of usable NAT ports per public address (1024–65535).
pub const USABLE_PORTS: u32 = 64512;
/// IronCore's current default for `portsPerNetworkInterface` (64 before ironcore PR #642).
pub const DEFAULT_PORTS_PER_NETWORK_INTERFACE: u32 = 2048;
/// The largest valid `portsPerNetworkInterface`: the largest power of two ≤ [`USABLE_PORTS`].
pub const MAX_PORTS_PER_NETWORK_INTERFACE: u32 = 32768;
/// The namespace of objects whose manifest omits `metadata.namespace`.
pub const DEFAULT_NAMESPACE: &str = "default";

/// Identity of a namespaced object. Ordered by (namespace, name), the order in which the
/// reconciler processes gateways and NICs.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ObjectKey {
    /// Kubernetes namespace (`default` when a manifest omits it).
    pub namespace: String,
    /// Object name (a DNS label).
    pub name: String,
}

impl ObjectKey {
    /// A key in `namespace`.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        ObjectKey {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// A key in the `default` namespace.
    pub fn in_default(name: impl Into<String>) -> Self {
        ObjectKey::new(DEFAULT_NAMESPACE, name)
    }

    /// The key of another object in the same namespace (references are namespace-local).
    pub fn sibling(&self, name: &str) -> ObjectKey {
        ObjectKey::new(self.namespace.clone(), name)
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// An IP family, spelled as in Kubernetes (`IPv4`, `IPv6`). IPv4 orders first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum IpFamily {
    /// IPv4.
    IPv4,
    /// IPv6.
    IPv6,
}

impl IpFamily {
    /// Both families, in output order.
    pub const ALL: [IpFamily; 2] = [IpFamily::IPv4, IpFamily::IPv6];

    /// The family of an address.
    pub fn of(addr: IpAddr) -> IpFamily {
        match addr {
            IpAddr::V4(_) => IpFamily::IPv4,
            IpAddr::V6(_) => IpFamily::IPv6,
        }
    }

    /// Parses the Kubernetes spelling; anything else (including `ipv4`) is `None`.
    pub fn parse(s: &str) -> Option<IpFamily> {
        match s {
            "IPv4" => Some(IpFamily::IPv4),
            "IPv6" => Some(IpFamily::IPv6),
            _ => None,
        }
    }

    /// Index into per-family arrays (`IPv4` = 0, `IPv6` = 1).
    pub const fn index(self) -> usize {
        match self {
            IpFamily::IPv4 => 0,
            IpFamily::IPv6 => 1,
        }
    }
}

impl fmt::Display for IpFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IpFamily::IPv4 => "IPv4",
            IpFamily::IPv6 => "IPv6",
        })
    }
}

/// The four object kinds natsim understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// `Network`.
    Network,
    /// `NetworkInterface`.
    NetworkInterface,
    /// `VirtualIP`.
    VirtualIp,
    /// `NATGateway`.
    NatGateway,
}

impl Kind {
    /// All kinds, in the order the CLI lists them.
    pub const ALL: [Kind; 4] = [
        Kind::Network,
        Kind::NetworkInterface,
        Kind::VirtualIp,
        Kind::NatGateway,
    ];

    /// The manifest spelling of the kind.
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Network => "Network",
            Kind::NetworkInterface => "NetworkInterface",
            Kind::VirtualIp => "VirtualIP",
            Kind::NatGateway => "NATGateway",
        }
    }

    /// Parses the manifest spelling (case-sensitive, as Kubernetes is).
    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `Network`. natsim extension: the prefixes and routes whose traffic is *not* NATed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Network {
    /// Identity.
    pub key: ObjectKey,
    /// The network's own prefixes (`spec.prefixes`): traffic between them stays private.
    pub prefixes: Vec<IpNet>,
    /// Routed prefixes (`spec.routes`): reachable without translation.
    pub routes: Vec<IpNet>,
}

/// How a NIC is exposed through a VirtualIP (`spec.virtualIP`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NicVirtualIp {
    /// `virtualIPRef: {name}`: a VirtualIP object in the NIC's namespace.
    Ref(String),
    /// `ephemeral: {...}`: an address owned by the NIC; natsim only notes that it exists.
    Ephemeral,
}

/// A `NetworkInterface`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkInterface {
    /// Identity.
    pub key: ObjectKey,
    /// `metadata.labels`, matched by gateway selectors.
    pub labels: BTreeMap<String, String>,
    /// `spec.networkRef.name` (a Network in the same namespace).
    pub network: String,
    /// `spec.ipFamilies`.
    pub ip_families: Vec<IpFamily>,
    /// `spec.ips[].value`, at most one per family.
    pub ips: Vec<IpAddr>,
    /// `spec.virtualIP`; a NIC with one is never NATed (IEP-4).
    pub virtual_ip: Option<NicVirtualIp>,
    /// `metadata.deletionTimestamp` is set: the NIC is being deleted and is never selected.
    pub deleting: bool,
}

impl NetworkInterface {
    /// The NIC's private address of `family`, if it has one.
    pub fn address(&self, family: IpFamily) -> Option<IpAddr> {
        self.ips
            .iter()
            .copied()
            .find(|a| IpFamily::of(*a) == family)
    }

    /// The key of the network the NIC is attached to.
    pub fn network_key(&self) -> ObjectKey {
        self.key.sibling(&self.network)
    }
}

/// A public `VirtualIP`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VirtualIp {
    /// Identity.
    pub key: ObjectKey,
    /// `spec.ipFamily`.
    pub family: IpFamily,
    /// Pinned address (`status.ip` in the manifest); `None` = allocate from the pool.
    pub address: Option<IpAddr>,
}

/// One named item of `NATGateway.spec.ips`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NatGatewayIp {
    /// DNS label, unique within the gateway.
    pub name: String,
    /// natsim extension `addresses`: pinned addresses, at most one per family. Families
    /// without one are allocated from the pool.
    pub addresses: Vec<IpAddr>,
}

impl NatGatewayIp {
    /// The pinned address of `family`, if any.
    pub fn pinned(&self, family: IpFamily) -> Option<IpAddr> {
        self.addresses
            .iter()
            .copied()
            .find(|a| IpFamily::of(*a) == family)
    }
}

/// A `NATGateway` (IEP-4 shape).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NatGateway {
    /// Identity.
    pub key: ObjectKey,
    /// `spec.ipFamilies` (or the single `spec.ipFamily`), without duplicates.
    pub ip_families: Vec<IpFamily>,
    /// `spec.networkRef.name` (a Network in the same namespace); immutable.
    pub network: String,
    /// `spec.ips`, in order: the allocator fills the first IP with a free slot first.
    pub ips: Vec<NatGatewayIp>,
    /// `spec.portsPerNetworkInterface` (P): a power of two in 1..=32768.
    pub ports_per_network_interface: u32,
    /// `spec.networkInterfaceSelector`; `None` selects nothing (Kubernetes semantics).
    pub selector: Option<LabelSelector>,
}

impl NatGateway {
    /// The key of the gateway's network.
    pub fn network_key(&self) -> ObjectKey {
        self.key.sibling(&self.network)
    }

    /// Whether the gateway serves `family`.
    pub fn has_family(&self, family: IpFamily) -> bool {
        self.ip_families.contains(&family)
    }

    /// Slots per public address: floor(64512 / P); 0 when P is out of range.
    pub fn slots_per_ip(&self) -> u32 {
        slots_per_ip(self.ports_per_network_interface)
    }
}

/// floor(64512 / P) — the number of port blocks one public address holds. 0 for P = 0 or
/// P > 64512 (IronCore divides by zero there; natsim rejects such P in validation).
pub const fn slots_per_ip(ports_per_network_interface: u32) -> u32 {
    match USABLE_PORTS.checked_div(ports_per_network_interface) {
        Some(n) => n,
        None => 0,
    }
}

/// Whether P is a valid `portsPerNetworkInterface`: a power of two in 1..=64512.
pub const fn valid_ports_per_network_interface(p: u32) -> bool {
    p.is_power_of_two() && p <= USABLE_PORTS
}

/// Any API object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Object {
    /// A `Network`.
    Network(Network),
    /// A `NetworkInterface`.
    NetworkInterface(NetworkInterface),
    /// A `VirtualIP`.
    VirtualIp(VirtualIp),
    /// A `NATGateway`.
    NatGateway(NatGateway),
}

impl Object {
    /// The object's kind.
    pub fn kind(&self) -> Kind {
        match self {
            Object::Network(_) => Kind::Network,
            Object::NetworkInterface(_) => Kind::NetworkInterface,
            Object::VirtualIp(_) => Kind::VirtualIp,
            Object::NatGateway(_) => Kind::NatGateway,
        }
    }

    /// The object's identity.
    pub fn key(&self) -> &ObjectKey {
        match self {
            Object::Network(o) => &o.key,
            Object::NetworkInterface(o) => &o.key,
            Object::VirtualIp(o) => &o.key,
            Object::NatGateway(o) => &o.key,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_per_ip_matches_spec_capacity_figures() {
        assert_eq!(slots_per_ip(64), 1008);
        assert_eq!(slots_per_ip(1024), 63);
        assert_eq!(slots_per_ip(2048), 31);
        assert_eq!(slots_per_ip(4096), 15);
        assert_eq!(slots_per_ip(32768), 1);
        assert_eq!(slots_per_ip(65536), 0);
        assert!(valid_ports_per_network_interface(32768));
        assert!(!valid_ports_per_network_interface(65536));
        assert!(!valid_ports_per_network_interface(0));
        assert!(!valid_ports_per_network_interface(96));
    }

    #[test]
    fn object_keys_order_by_namespace_then_name() {
        let a = ObjectKey::new("a", "z");
        let b = ObjectKey::new("b", "a");
        assert!(a < b);
        assert_eq!(ObjectKey::in_default("x").to_string(), "default/x");
    }
}
