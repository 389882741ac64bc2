//! A small stand-in for the IronCore reconciler (SPEC §3): selection of NICs and port-block slot
//! arithmetic. Kept behind a narrow interface so the real reconciler (`crate::api`) can replace
//! it: input = the NIC list with selection facts + the gateway spec, at a virtual time; output =
//! block assignments and releases ([`Change`]) and a [`Status`].
//!
//! Rules: ports 1024–65535; `slots_per_ip = 64512 / P`; slot `s` is `[1024 + s·P, 1024 + s·P +
//! P − 1]`; NICs are allocated in (namespace, name) order, each taking the lowest free slot on the
//! first IP (in `ips` order) that has one; allocations are sticky; a released block is
//! quarantined for `quarantine_ms`; exhaustion leaves a NIC un-NATed, never evicts another.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Serialize;

use super::selector::LabelSelector;
use crate::nat::config::{FIRST_NAT_PORT, PORTS_PER_IP};
use crate::nat::{Block, Family};

/// What the allocator needs to know about a NIC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NicFacts {
    /// `namespace/name`; allocation order.
    pub key: String,
    /// Network name.
    pub network: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Families the NIC has an address of.
    pub families: Vec<Family>,
    /// A VirtualIP is attached (such NICs are not NATed).
    pub has_virtual_ip: bool,
    /// Being deleted.
    pub deleting: bool,
}

/// One named gateway IP with its address per family.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayIp {
    /// `spec.ips[].name`.
    pub name: String,
    /// Its addresses (one per family).
    pub addresses: Vec<IpAddr>,
}

/// The parts of `NATGateway.spec` allocation depends on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewaySpec {
    /// `networkRef.name`.
    pub network: String,
    /// `networkInterfaceSelector`; `None` selects nothing.
    pub selector: Option<LabelSelector>,
    /// `ipFamilies`.
    pub families: Vec<Family>,
    /// `ips`, in order.
    pub ips: Vec<GatewayIp>,
    /// `portsPerNetworkInterface` (P).
    pub ports_per_nic: u32,
    /// Quarantine of released blocks, in milliseconds.
    pub quarantine_ms: u64,
}

/// A change for the dataplane (the API reconciler's `DataplaneChange`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    /// The NIC gets a block.
    BlockAssigned {
        /// NIC key.
        nic: String,
        /// Its block.
        block: Block,
    },
    /// The NIC loses its block of a family.
    BlockReleased {
        /// NIC key.
        nic: String,
        /// Family.
        family: Family,
        /// The block it had.
        block: Block,
    },
}

/// `NATGateway.status` plus the routing table.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Status {
    /// P × number of NICs holding at least one block.
    pub ports_used: u64,
    /// NICs selected, per family name.
    pub requested: BTreeMap<&'static str, u64>,
    /// NICs holding a block, per family name.
    pub allocated: BTreeMap<&'static str, u64>,
    /// Per NIC, per family, its block.
    pub routing: BTreeMap<String, BTreeMap<&'static str, Block>>,
}

#[derive(Clone, Debug)]
struct IpSlots {
    address: IpAddr,
    /// `taken[s]`: slot `s` is held or quarantined.
    taken: Vec<bool>,
    taken_count: usize,
    /// No slot below this is free.
    low_hint: usize,
}

impl IpSlots {
    fn take_lowest(&mut self) -> Option<usize> {
        if self.taken_count == self.taken.len() {
            return None;
        }
        let s = (self.low_hint..self.taken.len()).find(|&s| !self.taken[s])?;
        self.taken[s] = true;
        self.taken_count += 1;
        self.low_hint = s + 1;
        Some(s)
    }
    fn free(&mut self, s: usize) {
        if self.taken.get(s) == Some(&true) {
            self.taken[s] = false;
            self.taken_count -= 1;
            self.low_hint = self.low_hint.min(s);
        }
    }
}

/// The allocator's state: sticky allocations, quarantine, slot maps.
#[derive(Clone, Debug)]
pub struct Allocator {
    spec: Option<GatewaySpec>,
    nics: BTreeMap<String, NicFacts>,
    assigned: BTreeMap<(String, Family), Block>,
    /// (until_ns, block) of quarantined blocks.
    quarantine: Vec<(u64, Block)>,
    slots: Vec<IpSlots>,
}

/// The block of slot `s` for block size `p`.
pub fn slot_block(nat_ip: IpAddr, p: u32, s: usize) -> Block {
    let port = u32::from(FIRST_NAT_PORT) + s as u32 * p;
    Block {
        nat_ip,
        port: port as u16,
        end_port: (port + p - 1) as u16,
    }
}

/// `floor(64512 / P)`; 0 for P above 64512 (which the spec rejects).
pub fn slots_per_ip(p: u32) -> usize {
    PORTS_PER_IP.checked_div(p).unwrap_or(0) as usize
}

impl Allocator {
    /// An allocator for `spec` (`None`: no gateway).
    pub fn new(spec: Option<GatewaySpec>) -> Self {
        let mut a = Allocator {
            spec: None,
            nics: BTreeMap::new(),
            assigned: BTreeMap::new(),
            quarantine: Vec::new(),
            slots: Vec::new(),
        };
        a.install_spec(spec);
        a
    }

    fn install_spec(&mut self, spec: Option<GatewaySpec>) {
        let p = spec.as_ref().map_or(0, |s| s.ports_per_nic);
        self.slots = spec
            .iter()
            .flat_map(|s| s.ips.iter().flat_map(|ip| ip.addresses.iter()))
            .map(|&address| IpSlots {
                address,
                taken: vec![false; slots_per_ip(p)],
                taken_count: 0,
                low_hint: 0,
            })
            .collect();
        self.spec = spec;
        // Re-mark held and quarantined blocks under the new spec (they may span several slots,
        // or part of one, after a P change: every slot they touch stays taken).
        let blocks: Vec<Block> = self
            .assigned
            .values()
            .copied()
            .chain(self.quarantine.iter().map(|q| q.1))
            .collect();
        for b in blocks {
            self.mark(&b);
        }
    }

    /// Index of the slot map of `ip` and the slot range `[first, last]` that `b` touches.
    fn slot_range(&self, b: &Block) -> Option<(usize, usize, usize)> {
        let p = self.spec.as_ref()?.ports_per_nic;
        let i = self.slots.iter().position(|s| s.address == b.nat_ip)?;
        let n = self.slots[i].taken.len();
        let first = (u32::from(b.port).checked_sub(u32::from(FIRST_NAT_PORT))? / p) as usize;
        let last = ((u32::from(b.end_port).saturating_sub(u32::from(FIRST_NAT_PORT)) / p) as usize)
            .min(n.saturating_sub(1));
        (first < n).then_some((i, first, last))
    }

    fn mark(&mut self, b: &Block) {
        if let Some((i, first, last)) = self.slot_range(b) {
            let slot = &mut self.slots[i];
            for s in first..=last {
                if !slot.taken[s] {
                    slot.taken[s] = true;
                    slot.taken_count += 1;
                }
            }
        }
    }

    /// Frees the slots `b` touched unless another held or quarantined block still touches them.
    fn unmark(&mut self, b: &Block) {
        let Some((i, first, last)) = self.slot_range(b) else {
            return;
        };
        let Some(p) = self.spec.as_ref().map(|s| s.ports_per_nic) else {
            return;
        };
        for s in first..=last {
            let sb = slot_block(b.nat_ip, p, s);
            let busy = self.assigned.values().any(|a| a.overlaps(&sb))
                || self.quarantine.iter().any(|q| q.1.overlaps(&sb));
            if !busy {
                self.slots[i].free(s);
            }
        }
    }

    /// True when `b` is exactly one slot under the current spec.
    fn is_whole_slot(&self, b: &Block) -> bool {
        let Some(p) = self.spec.as_ref().map(|s| s.ports_per_nic) else {
            return false;
        };
        self.slot_range(b)
            .is_some_and(|(_, first, last)| first == last && slot_block(b.nat_ip, p, first) == *b)
    }

    /// The spec in force.
    pub fn spec(&self) -> Option<&GatewaySpec> {
        self.spec.as_ref()
    }

    fn selected(&self, nic: &NicFacts, family: Family) -> bool {
        let Some(spec) = &self.spec else { return false };
        nic.network == spec.network
            && spec.families.contains(&family)
            && nic.families.contains(&family)
            && !nic.has_virtual_ip
            && !nic.deleting
            && spec
                .selector
                .as_ref()
                .is_some_and(|s| s.matches(&nic.labels))
    }

    fn expire_quarantine(&mut self, now_ns: u64) {
        let mut i = 0;
        while i < self.quarantine.len() {
            if self.quarantine[i].0 <= now_ns {
                let (_, b) = self.quarantine.swap_remove(i);
                self.unmark(&b);
            } else {
                i += 1;
            }
        }
    }

    /// When the next quarantined block becomes free (the caller reconciles then).
    pub fn next_quarantine_end_ns(&self) -> Option<u64> {
        self.quarantine.iter().map(|q| q.0).min()
    }

    /// Replaces the gateway spec (IPs added/removed, P changed, gateway deleted with `None`) and
    /// reconciles.
    pub fn set_spec(&mut self, now_ns: u64, spec: Option<GatewaySpec>) -> Vec<Change> {
        let mut changes = Vec::new();
        // Blocks that no longer fit the new spec are released first.
        let keep: Vec<((String, Family), Block)> =
            self.assigned.iter().map(|(k, b)| (k.clone(), *b)).collect();
        self.install_spec(spec);
        for (key, b) in keep {
            if !self.is_whole_slot(&b) {
                self.assigned.remove(&key);
                self.quarantine
                    .push((now_ns.saturating_add(self.quarantine_ns()), b));
                changes.push(Change::BlockReleased {
                    nic: key.0,
                    family: key.1,
                    block: b,
                });
            }
        }
        changes.extend(self.reconcile(now_ns));
        changes
    }

    fn quarantine_ns(&self) -> u64 {
        self.spec
            .as_ref()
            .map_or(0, |s| s.quarantine_ms.saturating_mul(1_000_000))
    }

    /// Adds or updates a NIC's facts and reconciles.
    pub fn upsert_nic(&mut self, now_ns: u64, nic: NicFacts) -> Vec<Change> {
        self.nics.insert(nic.key.clone(), nic);
        self.reconcile(now_ns)
    }

    /// Removes a NIC and reconciles.
    pub fn remove_nic(&mut self, now_ns: u64, key: &str) -> Vec<Change> {
        self.nics.remove(key);
        self.reconcile(now_ns)
    }

    /// Adds many NICs at once (start-up), then reconciles once.
    pub fn insert_nics(
        &mut self,
        now_ns: u64,
        nics: impl IntoIterator<Item = NicFacts>,
    ) -> Vec<Change> {
        for n in nics {
            self.nics.insert(n.key.clone(), n);
        }
        self.reconcile(now_ns)
    }

    /// Brings allocations in line with the facts: releases blocks of NICs no longer selected,
    /// then allocates for selected NICs without one, in name order.
    pub fn reconcile(&mut self, now_ns: u64) -> Vec<Change> {
        self.expire_quarantine(now_ns);
        let mut changes = Vec::new();
        let stale: Vec<(String, Family)> = self
            .assigned
            .keys()
            .filter(|(k, f)| !self.nics.get(k).is_some_and(|n| self.selected(n, *f)))
            .cloned()
            .collect();
        for key in stale {
            if let Some(b) = self.assigned.remove(&key) {
                self.quarantine
                    .push((now_ns.saturating_add(self.quarantine_ns()), b));
                changes.push(Change::BlockReleased {
                    nic: key.0,
                    family: key.1,
                    block: b,
                });
            }
        }
        let Some(spec) = self.spec.clone() else {
            return changes;
        };
        for family in [Family::V4, Family::V6] {
            if !spec.families.contains(&family) {
                continue;
            }
            let wanting: Vec<String> = self
                .nics
                .values()
                .filter(|n| self.selected(n, family))
                .filter(|n| !self.assigned.contains_key(&(n.key.clone(), family)))
                .map(|n| n.key.clone())
                .collect();
            for key in wanting {
                let got = self
                    .slots
                    .iter_mut()
                    .filter(|s| Family::of(&s.address) == family)
                    .find_map(|s| s.take_lowest().map(|i| (s.address, i)));
                match got {
                    Some((ip, s)) => {
                        let block = slot_block(ip, spec.ports_per_nic, s);
                        self.assigned.insert((key.clone(), family), block);
                        changes.push(Change::BlockAssigned { nic: key, block });
                    }
                    // Exhausted: the remaining NICs stay un-NATed; later ones cannot fit either.
                    None => break,
                }
            }
        }
        changes
    }

    /// The block a NIC holds.
    pub fn block_of(&self, key: &str, family: Family) -> Option<Block> {
        self.assigned.get(&(key.to_string(), family)).copied()
    }

    /// Status and routing table.
    pub fn status(&self) -> Status {
        let mut st = Status::default();
        let p = u64::from(self.spec.as_ref().map_or(0, |s| s.ports_per_nic));
        for ((k, f), b) in &self.assigned {
            st.routing
                .entry(k.clone())
                .or_default()
                .insert(f.name(), *b);
            *st.allocated.entry(f.name()).or_default() += 1;
        }
        for n in self.nics.values() {
            for f in [Family::V4, Family::V6] {
                if self.selected(n, f) {
                    *st.requested.entry(f.name()).or_default() += 1;
                }
            }
        }
        st.ports_used = p * st.routing.len() as u64;
        st
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test ip")
    }

    fn nic(name: &str) -> NicFacts {
        NicFacts {
            key: format!("default/{name}"),
            network: "net".into(),
            labels: BTreeMap::new(),
            families: vec![Family::V4],
            has_virtual_ip: false,
            deleting: false,
        }
    }

    fn spec(p: u32, ips: &[&str]) -> GatewaySpec {
        GatewaySpec {
            network: "net".into(),
            selector: Some(LabelSelector::default()),
            families: vec![Family::V4],
            ips: ips
                .iter()
                .enumerate()
                .map(|(i, a)| GatewayIp {
                    name: format!("ip{i}"),
                    addresses: vec![ip(a)],
                })
                .collect(),
            ports_per_nic: p,
            quarantine_ms: 1000,
        }
    }

    #[test]
    fn slots_follow_spec_arithmetic_and_name_order() {
        assert_eq!(slots_per_ip(64), 1008);
        assert_eq!(slots_per_ip(2048), 31);
        assert_eq!(slots_per_ip(32768), 1);
        let mut a = Allocator::new(Some(spec(32768, &["192.0.2.1", "192.0.2.2"])));
        let ch = a.insert_nics(0, [nic("b"), nic("a"), nic("c")]);
        assert_eq!(ch.len(), 2, "only two slots exist: {ch:?}");
        assert_eq!(
            a.block_of("default/a", Family::V4)
                .map(|b| (b.port, b.end_port)),
            Some((1024, 33791))
        );
        assert_eq!(
            a.block_of("default/b", Family::V4).map(|b| b.nat_ip),
            Some(ip("192.0.2.2"))
        );
        assert_eq!(a.block_of("default/c", Family::V4), None);
        let st = a.status();
        assert_eq!(
            (st.ports_used, st.requested["IPv4"], st.allocated["IPv4"]),
            (65536, 3, 2)
        );
    }

    #[test]
    fn released_blocks_are_quarantined_then_reused() {
        let mut a = Allocator::new(Some(spec(32768, &["192.0.2.1"])));
        a.insert_nics(0, [nic("a"), nic("b")]);
        let ch = a.remove_nic(10, "default/a");
        assert!(
            matches!(ch.as_slice(), [Change::BlockReleased { .. }]),
            "{ch:?}"
        );
        assert_eq!(a.next_quarantine_end_ns(), Some(10 + 1_000_000_000));
        assert!(a.reconcile(500_000_000).is_empty());
        let ch = a.reconcile(1_000_000_010);
        assert!(matches!(ch.as_slice(), [Change::BlockAssigned { nic, .. }] if nic == "default/b"));
    }

    #[test]
    fn p_change_reallocates_and_ip_removal_releases() {
        let mut a = Allocator::new(Some(spec(64, &["192.0.2.1", "192.0.2.2"])));
        a.insert_nics(0, [nic("a"), nic("b")]);
        let ch = a.set_spec(5, Some(spec(128, &["192.0.2.1", "192.0.2.2"])));
        let released = ch
            .iter()
            .filter(|c| matches!(c, Change::BlockReleased { .. }))
            .count();
        assert_eq!(released, 2);
        let b = a.block_of("default/a", Family::V4).expect("reassigned");
        assert_eq!(b.len(), 128);
        // The old 64-port blocks at 1024.. are quarantined: the new blocks avoid them.
        assert!(b.port >= 1024 + 128);
        let ch = a.set_spec(6, Some(spec(128, &["192.0.2.2"])));
        assert!(ch.iter().any(
            |c| matches!(c, Change::BlockReleased { block, .. } if block.nat_ip == ip("192.0.2.1"))
        ));
    }
}
