//! The scenario's IronCore API objects: the ones `topology:` and `gateway:` stand for, merged
//! with the ones `manifests:` declares.
//!
//! Precedence: an object the manifests declare wins over the one the topology or the gateway
//! section would derive (same kind, namespace and name). For a NIC declared in both places
//! the manifest gives its API side (network, addresses, labels, VirtualIP, deletion mark) and
//! the topology entry only places it in the simulator (`node`, `link`, `present`). A Network
//! declared in both keeps the manifest's `spec.prefixes`/`spec.routes` for the dataplane when
//! it gives any, else the topology's. Manifest NICs without a topology entry are simulated on
//! node 0 with the default access link, present from the start.

use std::collections::BTreeMap;

use ipnet::IpNet;

use super::schema::{GatewayDoc, NetworkDoc};
use crate::api::{
    DEFAULT_NAMESPACE, IpFamily, NatGateway, NatGatewayIp, Network, Object, ObjectKey,
};
use crate::nat::NetworkConfig;
use crate::sim::config::NicSpec;
use crate::sim::link::LinkConfig;

/// The name of the scenario's gateway when `gateway.name` is absent.
pub const DEFAULT_GATEWAY_NAME: &str = "nat";

/// A problem with the merge: the field it concerns and what is wrong.
pub(super) type MergeError = (String, String);

/// The dataplane name of an API network: its name in namespace `default`, else
/// `namespace/name` (networks of different namespaces are different networks).
pub(super) fn dataplane_network_name(key: &ObjectKey) -> String {
    if key.namespace == DEFAULT_NAMESPACE {
        key.name.clone()
    } else {
        key.to_string()
    }
}

/// Adds the manifests' Networks to the dataplane networks (or overrides a topology network's
/// prefixes with theirs, when they give any).
pub(super) fn merge_networks(
    objects: &[Object],
    networks: &mut Vec<NetworkConfig>,
    net_index: &mut BTreeMap<String, u16>,
) -> Result<(), MergeError> {
    for o in objects {
        let Object::Network(n) = o else { continue };
        let name = dataplane_network_name(&n.key);
        let prefixes: Vec<IpNet> = n.prefixes.iter().chain(&n.routes).copied().collect();
        match net_index.get(&name) {
            Some(&i) => {
                if !prefixes.is_empty()
                    && let Some(net) = networks.get_mut(usize::from(i))
                {
                    net.local_prefixes = prefixes;
                }
            }
            None => {
                let i = u16::try_from(networks.len()).map_err(|_| {
                    (
                        "manifests".to_string(),
                        "at most 65535 networks".to_string(),
                    )
                })?;
                net_index.insert(name.clone(), i);
                networks.push(NetworkConfig {
                    name,
                    local_prefixes: prefixes,
                });
            }
        }
    }
    Ok(())
}

/// Merges the manifests' NetworkInterfaces into the simulated NICs: a topology NIC of the
/// same namespace and name takes the manifest's API side; others are appended. Returns the
/// indices of the NICs touched (their names and addresses changed or are new).
pub(super) fn merge_nics(
    objects: &[Object],
    nics: &mut Vec<NicSpec>,
    by_name: &mut BTreeMap<String, u32>,
    net_index: &BTreeMap<String, u16>,
    access: &LinkConfig,
) -> Result<Vec<u32>, MergeError> {
    let mut touched = Vec::new();
    for o in objects {
        let Object::NetworkInterface(m) = o else {
            continue;
        };
        let field = || format!("manifests: NetworkInterface {}", m.key);
        let net_name = dataplane_network_name(&m.network_key());
        let network = *net_index
            .get(&net_name)
            .ok_or_else(|| (field(), format!("network `{net_name}` does not exist")))?;
        if m.ips.is_empty() {
            return Err((field(), "a simulated NIC needs at least one address".into()));
        }
        let i = match by_name.get(&m.key.name) {
            Some(&i) => {
                let spec = &mut nics[i as usize];
                if spec.namespace != m.key.namespace {
                    return Err((
                        field(),
                        format!(
                            "the name `{}` is also used by a NIC in namespace `{}`; simulated NICs need unique names",
                            m.key.name, spec.namespace
                        ),
                    ));
                }
                spec.network = network;
                spec.addresses = m.ips.clone();
                spec.labels = m.labels.clone();
                spec.virtual_ip = m.virtual_ip.is_some();
                i
            }
            None => {
                let i = u32::try_from(nics.len())
                    .map_err(|_| (field(), "too many NICs".to_string()))?;
                by_name.insert(m.key.name.clone(), i);
                nics.push(NicSpec {
                    name: m.key.name.clone(),
                    namespace: m.key.namespace.clone(),
                    network,
                    addresses: m.ips.clone(),
                    labels: m.labels.clone(),
                    node: 0,
                    virtual_ip: m.virtual_ip.is_some(),
                    link: access.clone(),
                    present: true,
                    silent_closed_ports: false,
                });
                i
            }
        };
        touched.push(i);
    }
    Ok(touched)
}

/// The Network objects the topology stands for, in namespace `default` and in every other
/// namespace a topology NIC uses, except those the manifests declare.
pub(super) fn topology_networks(
    docs: &[NetworkDoc],
    nics: &[NicSpec],
    declared: &[Object],
) -> Vec<Object> {
    let mut namespaces: Vec<&str> = vec![DEFAULT_NAMESPACE];
    for n in nics {
        if !namespaces.contains(&n.namespace.as_str()) {
            namespaces.push(&n.namespace);
        }
    }
    let parse = |list: &[String]| -> Vec<IpNet> {
        // Already checked when the dataplane networks were built.
        list.iter().filter_map(|p| p.parse().ok()).collect()
    };
    let mut out = Vec::new();
    for ns in namespaces {
        for d in docs {
            let key = ObjectKey::new(ns, d.name.clone());
            if declared
                .iter()
                .any(|o| matches!(o, Object::Network(n) if n.key == key))
            {
                continue;
            }
            out.push(Object::Network(Network {
                key,
                prefixes: parse(&d.prefixes),
                routes: parse(&d.routes),
            }));
        }
    }
    out
}

/// The NATGateway the `gateway:` section declares (`None` when the manifests declare it:
/// they win), checked against a manifest declaration of the same name.
pub(super) fn gateway_object(
    g: &GatewayDoc,
    families: &[IpFamily],
    declared: &[Object],
) -> Result<Option<NatGateway>, MergeError> {
    let name = g.name.as_deref().unwrap_or(DEFAULT_GATEWAY_NAME);
    crate::api::rules::dns_label(name).map_err(|e| ("gateway.name".to_string(), e))?;
    let key = ObjectKey::in_default(name);
    let manifest = declared.iter().find_map(|o| match o {
        Object::NatGateway(gw) if gw.key == key => Some(gw),
        _ => None,
    });
    if let Some(m) = manifest {
        let mut given = Vec::new();
        if !g.network.is_empty() {
            given.push("network");
        }
        if !g.ips.is_empty() {
            given.push("ips");
        }
        if g.selector.is_some() {
            given.push("selector");
        }
        // Defaults cannot be told from values given, so only contradictions are refused.
        if g.ports_per_nic != 2048 && g.ports_per_nic != m.ports_per_network_interface {
            given.push("ports_per_nic");
        }
        if families != [IpFamily::IPv4] && families != m.ip_families.as_slice() {
            given.push("ip_families");
        }
        if let Some(f) = given.first() {
            return Err((
                format!("gateway.{f}"),
                format!(
                    "NATGateway {key} is declared in the manifests, which win; remove gateway.{}",
                    given.join(", gateway.")
                ),
            ));
        }
        return Ok(None);
    }
    if g.network.is_empty() {
        return Err((
            "gateway.network".into(),
            format!("required (the manifests declare no NATGateway {key})"),
        ));
    }
    Ok(Some(NatGateway {
        key,
        ip_families: families.to_vec(),
        network: g.network.clone(),
        ips: g
            .ips
            .iter()
            .map(|ip| NatGatewayIp {
                name: ip.name.clone(),
                addresses: ip.addresses.clone(),
            })
            .collect(),
        ports_per_network_interface: g.ports_per_nic,
        selector: g.selector.as_ref().map(|s| s.to_api()),
    }))
}
