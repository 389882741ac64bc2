//! Gateway status and routing, computed from the reconciled state.
//!
//! Shapes follow IronCore: `status.ips` is IEP-4's `[{name, ips: [...]}]`, `portsUsed` is
//! P × routed NICs (a NIC with a block in any family counts once, as IEP-4 counts
//! "entries in routing destinations"), and the routing table is onmetal-api's
//! `NATGatewayRouting` (`destinations: [{name, ips: [{ip, port, endPort}]}]`). natsim adds
//! `allocation` (per family: capacity, requested, allocated) and problem conditions.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Serialize;

use super::model::{IpFamily, ObjectKey};
use super::slots::block_ports;
use super::world::{FamilyState, World};

/// A NIC's port block for one family.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Block {
    /// The gateway that owns the block.
    pub gateway: ObjectKey,
    /// Address family.
    pub family: IpFamily,
    /// Public address.
    pub ip: IpAddr,
    /// First port.
    pub port: u16,
    /// Last port, inclusive.
    pub end_port: u16,
}

/// `status.ips[]`: the addresses of one named IP (one per family it got).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NatGatewayIpStatus {
    /// `spec.ips[].name`.
    pub name: String,
    /// Addresses, IPv4 first.
    pub ips: Vec<IpAddr>,
}

/// natsim extension: how one family's capacity is used.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FamilyAllocation {
    /// Address family.
    pub family: IpFamily,
    /// Addresses with a port-block table.
    pub ips: usize,
    /// floor(64512 / P).
    #[serde(rename = "slotsPerIP")]
    pub slots_per_ip: u32,
    /// ips × slotsPerIP.
    pub capacity: u64,
    /// NICs this gateway claims for the family.
    pub requested: usize,
    /// NICs with a block.
    pub allocated: usize,
    /// Blocks waiting out their quarantine.
    pub quarantined: u64,
    /// NICs selected but claimed by an earlier gateway.
    pub conflicts: usize,
}

/// A Kubernetes-style condition; natsim only lists conditions whose status is `True`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Condition {
    /// `PortBlocksExhausted`, `SelectionConflict` or `AddressPoolExhausted`.
    #[serde(rename = "type")]
    pub type_: String,
    /// Always `"True"` (absent conditions are false).
    pub status: String,
    /// Machine-readable reason.
    pub reason: String,
    /// Human-readable detail.
    pub message: String,
}

/// `NATGateway.status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NatGatewayStatus {
    /// Per named IP, its addresses.
    pub ips: Vec<NatGatewayIpStatus>,
    /// P × number of NICs with at least one block.
    pub ports_used: u64,
    /// natsim extension: per-family capacity use.
    pub allocation: Vec<FamilyAllocation>,
    /// Problems, if any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// One address/port range of a destination.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NatGatewayDestinationIp {
    /// Public address.
    pub ip: IpAddr,
    /// First port.
    pub port: u16,
    /// Last port, inclusive.
    pub end_port: u16,
}

/// One routed NIC.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NatGatewayDestination {
    /// NIC name (same namespace as the gateway).
    pub name: String,
    /// Its blocks, IPv4 first.
    pub ips: Vec<NatGatewayDestinationIp>,
}

/// onmetal-api's `NATGatewayRouting` body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NatGatewayRouting {
    /// Routed NICs in (namespace, name) order.
    pub destinations: Vec<NatGatewayDestination>,
}

const LIST_LIMIT: usize = 5;

fn list_keys<'a>(keys: impl Iterator<Item = &'a ObjectKey>, total: usize) -> String {
    let mut names: Vec<String> = keys.take(LIST_LIMIT).map(|k| k.name.clone()).collect();
    if total > LIST_LIMIT {
        names.push(format!("and {} more", total - LIST_LIMIT));
    }
    names.join(", ")
}

fn quarantined(fam: &FamilyState, allocated: usize, capacity: u64) -> u64 {
    let free: u64 = fam
        .ips
        .iter()
        .filter_map(|g| g.slots.as_ref())
        .map(|t| t.free_count() as u64)
        .sum();
    capacity.saturating_sub(free + allocated as u64)
}

impl World {
    /// A NIC's block for `family`, if it is routed.
    pub fn block(&self, nic: &ObjectKey, family: IpFamily) -> Option<Block> {
        let gateway = self.nic_state.get(nic)?.holders[family.index()].as_ref()?;
        let st = self.state.get(gateway)?;
        let (ip, slot) = *st.families[family.index()].as_ref()?.blocks.get(nic)?;
        let (port, end_port) = block_ports(st.spec.ports_per_network_interface, slot);
        Some(Block {
            gateway: gateway.clone(),
            family,
            ip,
            port,
            end_port,
        })
    }

    /// Every block, by (NIC, family).
    pub fn blocks(&self) -> Vec<(ObjectKey, Block)> {
        let mut out = Vec::new();
        for (gw, st) in &self.state {
            let p = st.spec.ports_per_network_interface;
            for family in IpFamily::ALL {
                for (nic, (ip, slot)) in st.families[family.index()]
                    .iter()
                    .flat_map(|f| f.blocks.iter())
                {
                    let (port, end_port) = block_ports(p, *slot);
                    out.push((
                        nic.clone(),
                        Block {
                            gateway: gw.clone(),
                            family,
                            ip: *ip,
                            port,
                            end_port,
                        },
                    ));
                }
            }
        }
        out.sort_by(|a, b| (&a.0, a.1.family).cmp(&(&b.0, b.1.family)));
        out
    }

    /// Number of NICs with a block on `gateway` for `family`.
    pub fn routed_count(&self, gateway: &ObjectKey, family: IpFamily) -> usize {
        self.state
            .get(gateway)
            .and_then(|st| st.families[family.index()].as_ref())
            .map_or(0, |f| f.blocks.len())
    }

    /// The reconciled status of a gateway (None if it was never reconciled).
    pub fn gateway_status(&self, key: &ObjectKey) -> Option<NatGatewayStatus> {
        let st = self.state.get(key)?;
        let p = st.spec.ports_per_network_interface;
        let mut ips = Vec::new();
        for (i, item) in st.spec.ips.iter().enumerate() {
            let addrs: Vec<IpAddr> = st
                .families
                .iter()
                .flatten()
                .filter_map(|f| f.ips.get(i).and_then(|g| g.address))
                .collect();
            ips.push(NatGatewayIpStatus {
                name: item.name.clone(),
                ips: addrs,
            });
        }
        let mut allocation = Vec::new();
        let mut conditions = Vec::new();
        let mut shortfall = Vec::new();
        let mut conflict_msgs = Vec::new();
        let mut pool_msgs = Vec::new();
        let mut routed: Vec<&ObjectKey> = Vec::new();
        for family in IpFamily::ALL {
            let Some(fam) = st.families[family.index()].as_ref() else {
                continue;
            };
            routed.extend(fam.blocks.keys());
            let with_table = fam.ips.iter().filter(|g| g.slots.is_some()).count();
            let capacity = with_table as u64 * u64::from(st.spec.slots_per_ip());
            let allocated = fam.blocks.len();
            let requested = allocated + fam.pending.len();
            let q = quarantined(fam, allocated, capacity);
            allocation.push(FamilyAllocation {
                family,
                ips: with_table,
                slots_per_ip: st.spec.slots_per_ip(),
                capacity,
                requested,
                allocated,
                quarantined: q,
                conflicts: fam.conflicts.len(),
            });
            if !fam.pending.is_empty() {
                shortfall.push(format!(
                    "{family}: {requested} NetworkInterfaces requested a port block, {allocated} allocated ({with_table} IPs x {} slots, {q} quarantined); without a block they are not NATed: {}",
                    st.spec.slots_per_ip(),
                    list_keys(fam.pending.iter(), fam.pending.len())
                ));
            }
            if !fam.conflicts.is_empty() {
                let holders: Vec<String> = fam
                    .conflicts
                    .iter()
                    .take(LIST_LIMIT)
                    .map(|nic| {
                        let holder = self
                            .nic_state
                            .get(nic)
                            .and_then(|s| s.holders[family.index()].as_ref())
                            .map_or_else(|| "?".to_owned(), ObjectKey::to_string);
                        format!("{} (held by NATGateway {holder})", nic.name)
                    })
                    .collect();
                let more = fam.conflicts.len().saturating_sub(LIST_LIMIT);
                conflict_msgs.push(format!(
                    "{family}: {} selected NetworkInterfaces are claimed by an earlier gateway and left alone: {}{}",
                    fam.conflicts.len(),
                    holders.join(", "),
                    if more > 0 { format!(", and {more} more") } else { String::new() }
                ));
            }
            let missing: Vec<&str> = fam
                .ips
                .iter()
                .filter(|g| g.address.is_none())
                .map(|g| g.name.as_str())
                .collect();
            if !missing.is_empty() {
                pool_msgs.push(format!(
                    "{family}: no free address in the public pools for ips {}",
                    missing.join(", ")
                ));
            }
        }
        routed.sort();
        routed.dedup();
        for (type_, reason, msgs) in [
            ("PortBlocksExhausted", "NotEnoughPortBlocks", shortfall),
            ("SelectionConflict", "ClaimedByOtherGateway", conflict_msgs),
            ("AddressPoolExhausted", "NoFreePublicAddress", pool_msgs),
        ] {
            if !msgs.is_empty() {
                conditions.push(Condition {
                    type_: type_.into(),
                    status: "True".into(),
                    reason: reason.into(),
                    message: msgs.join("; "),
                });
            }
        }
        Some(NatGatewayStatus {
            ips,
            ports_used: u64::from(p) * routed.len() as u64,
            allocation,
            conditions,
        })
    }

    /// The routing table of a gateway: routed NICs and their blocks.
    pub fn gateway_routing(&self, key: &ObjectKey) -> Option<NatGatewayRouting> {
        let st = self.state.get(key)?;
        let p = st.spec.ports_per_network_interface;
        let mut by_nic: BTreeMap<&ObjectKey, Vec<NatGatewayDestinationIp>> = BTreeMap::new();
        for fam in st.families.iter().flatten() {
            for (nic, (ip, slot)) in &fam.blocks {
                let (port, end_port) = block_ports(p, *slot);
                by_nic
                    .entry(nic)
                    .or_default()
                    .push(NatGatewayDestinationIp {
                        ip: *ip,
                        port,
                        end_port,
                    });
            }
        }
        Some(NatGatewayRouting {
            destinations: by_nic
                .into_iter()
                .map(|(nic, ips)| NatGatewayDestination {
                    name: nic.name.clone(),
                    ips,
                })
                .collect(),
        })
    }
}
