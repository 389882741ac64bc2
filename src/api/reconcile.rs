//! The reconciler: desired objects → NIC selection → port blocks, plus the dataplane diff.
//!
//! One call, [`World::reconcile`], at a virtual time:
//! 1. gateways that changed are re-synced (addresses, P, families; deleted ones torn down);
//! 2. VirtualIP addresses are synced;
//! 3. gateways whose IPs have no address retry the pools;
//! 4. quarantined slots whose time has come are freed;
//! 5. dirty NICs are re-selected (claims per family, conflicts);
//! 6. every gateway family hands free slots to its pending NICs in (namespace, name) order.
//!
//! Only dirty objects are visited in steps 1, 2 and 5; steps 3, 4 and 6 touch each gateway
//! IP once. So adding one NIC to a world of 100 000 costs microseconds.

use std::collections::BTreeSet;
use std::mem;
use std::net::IpAddr;

use crate::time::Instant;

use super::model::{IpFamily, NatGateway, NetworkInterface, ObjectKey};
use super::slots::SlotTable;
use super::world::{FamilyState, GatewayIpState, GatewayState, Holder, NicState, World};

/// A change the dataplane must apply. Ports are inclusive on both ends.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(tag = "change", rename_all = "camelCase")]
pub enum DataplaneChange {
    /// The NIC's translations for `family` must stop using this block at once.
    #[serde(rename_all = "camelCase")]
    BlockReleased {
        /// The NIC.
        nic: ObjectKey,
        /// Address family.
        family: IpFamily,
        /// Public address.
        ip: IpAddr,
        /// First port.
        port: u16,
        /// Last port (inclusive).
        end_port: u16,
    },
    /// The NIC may translate `family` traffic into this block from now on.
    #[serde(rename_all = "camelCase")]
    BlockAssigned {
        /// The NIC.
        nic: ObjectKey,
        /// Address family.
        family: IpFamily,
        /// Public address.
        ip: IpAddr,
        /// First port.
        port: u16,
        /// Last port (inclusive).
        end_port: u16,
    },
}

impl DataplaneChange {
    /// The NIC the change is about.
    pub fn nic(&self) -> &ObjectKey {
        match self {
            DataplaneChange::BlockReleased { nic, .. }
            | DataplaneChange::BlockAssigned { nic, .. } => nic,
        }
    }
}

/// What one reconcile did. The new state is the [`World`] itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReconcileOutput {
    /// The virtual time of the reconcile.
    pub at: Instant,
    /// All releases (sorted by NIC, family), then all assignments (sorted likewise).
    pub changes: Vec<DataplaneChange>,
    /// When the next quarantine ends (reconcile again then to hand out freed blocks).
    pub next_deadline: Option<Instant>,
}

/// A block that was released or assigned, before it becomes a [`DataplaneChange`].
struct Moved {
    nic: ObjectKey,
    family: IpFamily,
    ip: IpAddr,
    ports: (u16, u16),
}

#[derive(Default)]
struct Diff {
    released: Vec<Moved>,
    assigned: Vec<Moved>,
}

impl Diff {
    fn finish(mut self) -> Vec<DataplaneChange> {
        let key = |m: &Moved| (m.nic.clone(), m.family, m.ip, m.ports);
        self.released.sort_by_cached_key(key);
        self.assigned.sort_by_cached_key(key);
        let released = self
            .released
            .into_iter()
            .map(|m| DataplaneChange::BlockReleased {
                nic: m.nic,
                family: m.family,
                ip: m.ip,
                port: m.ports.0,
                end_port: m.ports.1,
            });
        let assigned = self
            .assigned
            .into_iter()
            .map(|m| DataplaneChange::BlockAssigned {
                nic: m.nic,
                family: m.family,
                ip: m.ip,
                port: m.ports.0,
                end_port: m.ports.1,
            });
        released.chain(assigned).collect()
    }
}

/// Whether a NIC may be NATed for `family` by any gateway (behaviour §3 selection, minus the
/// gateway-specific parts: network and selector).
fn eligible(nic: &NetworkInterface, family: IpFamily) -> bool {
    !nic.deleting && nic.virtual_ip.is_none() && nic.address(family).is_some()
}

fn selects(gw: &NatGateway, nic: &NetworkInterface) -> bool {
    gw.selector.as_ref().is_some_and(|s| s.matches(&nic.labels))
}

impl FamilyState {
    /// Drops a NIC from this family, releasing its block if it has one.
    fn drop_nic(&mut self, nic: &ObjectKey, family: IpFamily, ctx: &mut ReleaseCtx<'_>) {
        self.pending.remove(nic);
        if let Some((ip, slot)) = self.blocks.remove(nic) {
            self.release_slot(nic.clone(), family, ip, slot, ctx);
        }
    }

    fn release_slot(
        &mut self,
        nic: ObjectKey,
        family: IpFamily,
        ip: IpAddr,
        slot: u32,
        ctx: &mut ReleaseCtx<'_>,
    ) {
        if let Some(table) = self
            .ips
            .iter_mut()
            .find(|g| g.address == Some(ip))
            .and_then(|g| g.slots.as_mut())
        {
            let ports = table.ports(slot);
            table.release(slot, ctx.now, ctx.quarantine);
            ctx.diff.released.push(Moved {
                nic,
                family,
                ip,
                ports,
            });
        }
    }

    /// Releases every block on `ip` (its NICs become pending) and returns the quarantine the
    /// address must keep after its table is dropped.
    fn evacuate_ip(&mut self, index: usize, family: IpFamily, ctx: &mut ReleaseCtx<'_>) {
        let Some(ip) = self.ips.get(index).and_then(|g| g.address) else {
            return;
        };
        let owned: Vec<(ObjectKey, u32)> = self
            .blocks
            .iter()
            .filter(|(_, (a, _))| *a == ip)
            .map(|(k, (_, s))| (k.clone(), *s))
            .collect();
        let Some(table) = self.ips[index].slots.as_ref() else {
            return;
        };
        let ranges = table.export(owned.iter().map(|(_, s)| *s), ctx.now, ctx.quarantine);
        for (nic, slot) in owned {
            ctx.diff.released.push(Moved {
                nic: nic.clone(),
                family,
                ip,
                ports: table.ports(slot),
            });
            self.blocks.remove(&nic);
            self.pending.insert(nic);
        }
        ctx.exported.push((ip, ranges));
    }

    /// Hands free slots to pending NICs in key order: lowest free slot on the first IP that
    /// has one. Stops at the first NIC that finds none (every later one would find none too).
    fn allocate(&mut self, family: IpFamily, diff: &mut Diff) {
        while !self.pending.is_empty() {
            let Some(ip_state) = self
                .ips
                .iter_mut()
                .find(|g| g.slots.as_ref().is_some_and(SlotTable::has_free))
            else {
                return;
            };
            let (Some(ip), Some(table)) = (ip_state.address, ip_state.slots.as_mut()) else {
                return;
            };
            let (Some(slot), Some(nic)) = (table.take_lowest(), self.pending.pop_first()) else {
                return;
            };
            diff.assigned.push(Moved {
                nic: nic.clone(),
                family,
                ip,
                ports: table.ports(slot),
            });
            self.blocks.insert(nic, (ip, slot));
        }
    }
}

/// What releasing needs: the time, the quarantine, and where to record changes.
struct ReleaseCtx<'a> {
    now: Instant,
    quarantine: std::time::Duration,
    diff: &'a mut Diff,
    /// Quarantine of addresses whose tables were dropped.
    exported: Vec<(IpAddr, Vec<super::slots::QuarantinedRange>)>,
}

impl World {
    /// Reconciles everything that changed since the last call, at virtual time `now`.
    ///
    /// The World is the new state afterwards (see [`World::block`], [`World::gateway_status`]);
    /// the output is the difference the dataplane must apply, releases first.
    pub fn reconcile(&mut self, now: Instant) -> ReconcileOutput {
        let mut diff = Diff::default();
        for key in mem::take(&mut self.dirty_gateways) {
            self.sync_gateway(&key, now, &mut diff);
        }
        for key in mem::take(&mut self.dirty_vips) {
            self.sync_virtual_ip(&key);
        }
        self.retry_addressless(now);
        for st in self.state.values_mut() {
            for fam in st.families.iter_mut().flatten() {
                for ip in &mut fam.ips {
                    if let Some(t) = ip.slots.as_mut() {
                        t.expire(now);
                    }
                }
            }
        }
        for key in mem::take(&mut self.dirty_nics) {
            self.sync_nic(&key, now, &mut diff);
        }
        for st in self.state.values_mut() {
            for family in IpFamily::ALL {
                if let Some(fam) = st.families[family.index()].as_mut() {
                    fam.allocate(family, &mut diff);
                }
            }
        }
        ReconcileOutput {
            at: now,
            changes: diff.finish(),
            next_deadline: self.next_deadline(),
        }
    }

    /// When the earliest quarantine ends, if any block is quarantined.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.state
            .values()
            .flat_map(|st| st.families.iter().flatten())
            .flat_map(|f| f.ips.iter())
            .filter_map(|ip| ip.slots.as_ref().and_then(SlotTable::next_expiry))
            .min()
    }

    fn store_exported(
        &mut self,
        exported: Vec<(IpAddr, Vec<super::slots::QuarantinedRange>)>,
        now: Instant,
    ) {
        for (ip, ranges) in exported {
            let entry = self.quarantine.entry(ip).or_default();
            entry.retain(|r| r.until > now);
            entry.extend(ranges);
            if entry.is_empty() {
                self.quarantine.remove(&ip);
            }
        }
    }

    fn imported(&self, ip: IpAddr) -> &[super::slots::QuarantinedRange] {
        self.quarantine.get(&ip).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Takes the address for a gateway IP: pinned, or the lowest free one in the pools.
    fn take_address(
        &mut self,
        holder: Holder,
        family: IpFamily,
        pinned: Option<IpAddr>,
    ) -> Option<IpAddr> {
        let addr = match pinned {
            Some(a) => self.held.get(&a).is_none_or(|h| *h == holder).then_some(a),
            None => {
                let (pinned_map, held) = (&self.pinned, &self.held);
                self.config.pools.lowest_free(family, &|a| {
                    pinned_map.contains_key(&a) || held.contains_key(&a)
                })
            }
        }?;
        self.held.insert(addr, holder);
        Some(addr)
    }

    fn new_ip_state(
        &mut self,
        gw: &NatGateway,
        name: &str,
        family: IpFamily,
        pinned: Option<IpAddr>,
        now: Instant,
    ) -> GatewayIpState {
        let holder = Holder::Gateway {
            key: gw.key.clone(),
            ip_name: name.to_owned(),
        };
        let address = self.take_address(holder, family, pinned);
        let slots =
            address.map(|a| SlotTable::new(gw.ports_per_network_interface, self.imported(a), now));
        GatewayIpState {
            name: name.to_owned(),
            address,
            slots,
        }
    }

    fn new_family_state(&mut self, gw: &NatGateway, family: IpFamily, now: Instant) -> FamilyState {
        let ips = gw
            .ips
            .iter()
            .map(|ip| self.new_ip_state(gw, &ip.name, family, ip.pinned(family), now))
            .collect();
        FamilyState {
            ips,
            ..FamilyState::default()
        }
    }

    fn mark_network_dirty(&mut self, network: &ObjectKey) {
        if let Some(nics) = self.nics_by_network.get(network) {
            self.dirty_nics.extend(nics.iter().cloned());
        }
        // NICs already deleted from the desired state but still claimed.
        for (key, st) in &self.nic_state {
            if st.network == *network && !self.nics.contains_key(key) {
                self.dirty_nics.insert(key.clone());
            }
        }
    }

    /// Tears down one family of a gateway: blocks released, addresses freed, NICs unclaimed.
    fn teardown_family(
        &mut self,
        gw_key: &ObjectKey,
        family: IpFamily,
        mut fam: FamilyState,
        ctx: &mut ReleaseCtx<'_>,
    ) {
        for i in 0..fam.ips.len() {
            fam.evacuate_ip(i, family, ctx);
            if let Some(a) = fam.ips[i].address {
                self.held.remove(&a);
            }
        }
        for nic in fam.pending.iter().chain(fam.blocks.keys()) {
            if let Some(st) = self.nic_state.get_mut(nic)
                && st.holders[family.index()].as_ref() == Some(gw_key)
            {
                st.holders[family.index()] = None;
            }
            self.dirty_nics.insert(nic.clone());
        }
    }

    fn sync_gateway(&mut self, key: &ObjectKey, now: Instant, diff: &mut Diff) {
        let desired = self.gateways.get(key).cloned();
        let current = self.state.remove(key);
        let mut ctx = ReleaseCtx {
            now,
            quarantine: self.config.block_quarantine,
            diff,
            exported: Vec::new(),
        };
        match (current, desired) {
            (None, None) => {}
            (Some(st), None) => {
                self.teardown_gateway(st, &mut ctx);
            }
            (None, Some(spec)) => self.create_gateway(spec, now),
            (Some(st), Some(spec)) => {
                if st.spec.network != spec.network {
                    self.teardown_gateway(st, &mut ctx);
                    let exported = mem::take(&mut ctx.exported);
                    self.store_exported(exported, now);
                    self.create_gateway(spec, now);
                } else {
                    self.update_gateway(st, spec, &mut ctx);
                }
            }
        }
        let exported = mem::take(&mut ctx.exported);
        self.store_exported(exported, now);
    }

    fn teardown_gateway(&mut self, st: GatewayState, ctx: &mut ReleaseCtx<'_>) {
        let key = st.spec.key.clone();
        let network = st.spec.network_key();
        for (i, fam) in st.families.into_iter().enumerate() {
            if let Some(fam) = fam {
                self.teardown_family(&key, IpFamily::ALL[i], fam, ctx);
            }
        }
        if let Some(set) = self.gateways_by_network.get_mut(&network) {
            set.remove(&key);
            if set.is_empty() {
                self.gateways_by_network.remove(&network);
            }
        }
        // Another gateway may now claim NICs this one held or conflicted with.
        self.mark_network_dirty(&network);
    }

    fn create_gateway(&mut self, spec: NatGateway, now: Instant) {
        let mut families: [Option<FamilyState>; 2] = [None, None];
        for family in IpFamily::ALL {
            if spec.has_family(family) {
                families[family.index()] = Some(self.new_family_state(&spec, family, now));
            }
        }
        let network = spec.network_key();
        self.gateways_by_network
            .entry(network.clone())
            .or_default()
            .insert(spec.key.clone());
        self.state
            .insert(spec.key.clone(), GatewayState { spec, families });
        self.mark_network_dirty(&network);
    }

    fn update_gateway(&mut self, mut st: GatewayState, spec: NatGateway, ctx: &mut ReleaseCtx<'_>) {
        let now = ctx.now;
        let p_changed = st.spec.ports_per_network_interface != spec.ports_per_network_interface;
        let reselect = st.spec.selector != spec.selector || st.spec.ip_families != spec.ip_families;
        for family in IpFamily::ALL {
            let old = st.families[family.index()].take();
            let new = match (old, spec.has_family(family)) {
                (None, false) => None,
                (Some(fam), false) => {
                    self.teardown_family(&spec.key, family, fam, ctx);
                    None
                }
                (None, true) => Some(self.new_family_state(&spec, family, now)),
                (Some(fam), true) => Some(self.update_family(&spec, family, fam, p_changed, ctx)),
            };
            st.families[family.index()] = new;
        }
        st.spec = spec;
        let network = st.spec.network_key();
        self.state.insert(st.spec.key.clone(), st);
        if reselect {
            self.mark_network_dirty(&network);
        }
    }

    /// Re-cuts one family of a gateway after its IPs or P changed. IPs that stay keep their
    /// address; with an unchanged P they also keep their blocks (sticky).
    fn update_family(
        &mut self,
        spec: &NatGateway,
        family: IpFamily,
        mut fam: FamilyState,
        p_changed: bool,
        ctx: &mut ReleaseCtx<'_>,
    ) -> FamilyState {
        // Which old IPs survive: same name, and the pin (if any) still matches.
        let survives = |g: &GatewayIpState| {
            spec.ips.iter().any(|ip| {
                ip.name == g.name
                    && match ip.pinned(family) {
                        Some(p) => g.address == Some(p),
                        None => g.address.is_some(),
                    }
            })
        };
        for i in 0..fam.ips.len() {
            if !survives(&fam.ips[i]) || p_changed {
                fam.evacuate_ip(i, family, ctx);
            }
            if !survives(&fam.ips[i])
                && let Some(a) = fam.ips[i].address
            {
                self.held.remove(&a);
            }
        }
        // Quarantine exported so far must be visible to tables created below.
        let exported = mem::take(&mut ctx.exported);
        self.store_exported(exported, ctx.now);
        let mut old: Vec<GatewayIpState> = mem::take(&mut fam.ips);
        let mut ips = Vec::with_capacity(spec.ips.len());
        for item in &spec.ips {
            let kept = old
                .iter()
                .position(|g| g.name == item.name && survives(g))
                .map(|i| old.swap_remove(i));
            let ip_state = match kept {
                Some(mut g) if p_changed => {
                    g.slots = g.address.map(|a| {
                        SlotTable::new(spec.ports_per_network_interface, self.imported(a), ctx.now)
                    });
                    g
                }
                Some(g) => g,
                None => self.new_ip_state(spec, &item.name, family, item.pinned(family), ctx.now),
            };
            ips.push(ip_state);
        }
        fam.ips = ips;
        fam
    }

    /// Gateway IPs that found no free address try again (addresses may have been freed).
    fn retry_addressless(&mut self, now: Instant) {
        let waiting: Vec<(ObjectKey, IpFamily, usize)> = self
            .state
            .iter()
            .flat_map(|(k, st)| {
                IpFamily::ALL.into_iter().flat_map(move |family| {
                    st.families[family.index()]
                        .iter()
                        .flat_map(|f| f.ips.iter().enumerate())
                        .filter(|(_, g)| g.address.is_none())
                        .map(move |(i, _)| (k.clone(), family, i))
                })
            })
            .collect();
        for (key, family, i) in waiting {
            let Some(spec) = self.state.get(&key).map(|st| st.spec.clone()) else {
                continue;
            };
            let Some(item) = spec.ips.get(i) else {
                continue;
            };
            let fresh = self.new_ip_state(&spec, &item.name, family, item.pinned(family), now);
            if let Some(fam) = self
                .state
                .get_mut(&key)
                .and_then(|st| st.families[family.index()].as_mut())
            {
                fam.ips[i] = fresh;
            }
        }
    }

    fn sync_virtual_ip(&mut self, key: &ObjectKey) {
        let holder = Holder::VirtualIp(key.clone());
        let current = self.vip_addresses.get(key).copied();
        let Some(vip) = self.virtual_ips.get(key).cloned() else {
            if let Some(a) = current {
                self.held.remove(&a);
                self.vip_addresses.remove(key);
            }
            return;
        };
        let keep = match (current, vip.address) {
            (Some(c), Some(p)) => c == p,
            (Some(c), None) => IpFamily::of(c) == vip.family,
            (None, _) => false,
        };
        if keep {
            return;
        }
        if let Some(c) = current {
            self.held.remove(&c);
            self.vip_addresses.remove(key);
        }
        if let Some(a) = self.take_address(holder, vip.family, vip.address) {
            self.vip_addresses.insert(key.clone(), a);
        }
    }

    /// Re-selects one NIC for both families: keeps a claim that still holds, otherwise the
    /// first selecting gateway in (namespace, name) order claims it; the rest see a conflict.
    fn sync_nic(&mut self, key: &ObjectKey, now: Instant, diff: &mut Diff) {
        let nic = self.nics.get(key);
        let network = match (nic, self.nic_state.get(key)) {
            (Some(n), _) => n.network_key(),
            (None, Some(st)) => st.network.clone(),
            (None, None) => return,
        };
        let mut holders = self
            .nic_state
            .get(key)
            .map(|s| s.holders.clone())
            .unwrap_or_default();
        let gateways: Vec<ObjectKey> = self
            .gateways_by_network
            .get(&network)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
        let mut ctx = ReleaseCtx {
            now,
            quarantine: self.config.block_quarantine,
            diff,
            exported: Vec::new(),
        };
        for family in IpFamily::ALL {
            let fi = family.index();
            let candidates: Vec<&ObjectKey> = match nic {
                Some(n) if eligible(n, family) => gateways
                    .iter()
                    .filter(|g| {
                        self.state
                            .get(*g)
                            .is_some_and(|st| st.families[fi].is_some() && selects(&st.spec, n))
                    })
                    .collect(),
                _ => Vec::new(),
            };
            let current = holders[fi].clone();
            let winner: Option<ObjectKey> = match &current {
                Some(c) if candidates.contains(&c) => Some(c.clone()),
                _ => candidates.first().map(|g| (*g).clone()),
            };
            if current != winner {
                if let Some(old) = &current
                    && let Some(fam) = self
                        .state
                        .get_mut(old)
                        .and_then(|st| st.families[fi].as_mut())
                {
                    fam.drop_nic(key, family, &mut ctx);
                }
                if let Some(new) = &winner
                    && let Some(fam) = self
                        .state
                        .get_mut(new)
                        .and_then(|st| st.families[fi].as_mut())
                {
                    fam.pending.insert(key.clone());
                }
                holders[fi] = winner.clone();
            }
            let losers: BTreeSet<&ObjectKey> = candidates
                .iter()
                .copied()
                .filter(|g| Some(*g) != winner.as_ref())
                .collect();
            for g in &gateways {
                if let Some(fam) = self
                    .state
                    .get_mut(g)
                    .and_then(|st| st.families[fi].as_mut())
                {
                    if losers.contains(g) {
                        fam.conflicts.insert(key.clone());
                    } else {
                        fam.conflicts.remove(key);
                    }
                }
            }
        }
        if holders.iter().all(Option::is_none) {
            self.nic_state.remove(key);
        } else {
            self.nic_state
                .insert(key.clone(), NicState { network, holders });
        }
    }
}
