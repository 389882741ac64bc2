//! Endpoint mappings (behaviour §4 "Port choice"): the NAT port an inside endpoint (NIC,
//! protocol, inside address and port) was first given, kept while any of its flows, live or
//! held, remains, so its next flows prefer the same port (endpoint-independent mapping).
//!
//! Folded into the flow slab: the index of mappings points at the endpoint's flow itself while
//! the endpoint has only one (its NAT port is the mapping's, since the mapping was made for
//! it), and only an endpoint with a second flow gets an entry of its own in a side slab (16
//! bytes for IPv4, 28 for IPv6) that counts its flows. So the common endpoint of one flow costs
//! one index entry (about 8 bytes at a million flows), where a hash map of key and value cost
//! 42. An index value is `slot << 1` for a flow and `id << 1 | 1` for a shared entry; both are
//! compared by key on lookup. The slabs' order never reaches output.

use std::hash::{BuildHasher, Hasher};

use foldhash::fast::FixedState;

use super::addr::Addr;
use super::index::SlotIndex;
use super::table::{Flow, NIL, class};

/// One endpoint's mapping.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C)]
struct Entry<A> {
    inside: A,
    /// `nic << 8 | proto` (NIC ids stay below 2^24, which the gateway enforces); for a free
    /// entry, the next free entry.
    nic_proto: u32,
    port: u16,
    nat_port: u16,
    /// Flows (live or held) using the mapping; 0 marks a free entry.
    refs: u32,
}

/// An inside endpoint, the key of a mapping.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Endpoint<A> {
    pub nic: u32,
    pub proto: u8,
    pub inside: A,
    pub port: u16,
}

impl<A: Addr> Endpoint<A> {
    fn nic_proto(&self) -> u32 {
        debug_assert!(self.nic < 1 << 24);
        self.nic << 8 | u32::from(self.proto)
    }
}

/// The mappings of one address family; see the module documentation.
pub(crate) struct Mappings<A: Addr> {
    /// Shared entries (endpoints with two or more flows).
    entries: Vec<Entry<A>>,
    free_head: u32,
    index: SlotIndex,
    hasher: FixedState,
}

/// A mapping found by [`Mappings::find`], to update without a second lookup.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Found {
    /// The index value: a flow slot or a shared entry (module documentation).
    value: u32,
    hash: u64,
    /// The mapping's NAT port.
    pub nat_port: u16,
}

/// The index value of the flow in `slot`. Slots stay below 2^30: a flow is 48 bytes or more,
/// so 2^30 of them would take 48 GiB.
fn flow_value(slot: u32) -> u32 {
    debug_assert!(slot < 1 << 30);
    slot << 1
}

fn shared_value(id: u32) -> u32 {
    debug_assert!(id < 1 << 30);
    id << 1 | 1
}

impl<A: Addr> Mappings<A> {
    pub(crate) fn new(hasher: FixedState) -> Self {
        Mappings {
            entries: Vec::new(),
            free_head: NIL,
            index: SlotIndex::default(),
            hasher,
        }
    }

    fn hash_of(h: &FixedState, nic_proto: u32, inside: &A, port: u16) -> u64 {
        let mut s = h.build_hasher();
        inside.write_hash(&mut s);
        s.write_u64(u64::from(nic_proto) << 16 | u64::from(port));
        s.finish()
    }

    fn endpoint_hash(h: &FixedState, ep: &Endpoint<A>) -> u64 {
        Self::hash_of(h, ep.nic_proto(), &ep.inside, ep.port)
    }

    fn entry_hash(h: &FixedState, e: &Entry<A>) -> u64 {
        Self::hash_of(h, e.nic_proto, &e.inside, e.port)
    }

    fn endpoint_of(f: &Flow<A>) -> Endpoint<A> {
        Endpoint {
            nic: f.nic,
            proto: f.proto,
            inside: f.inside,
            port: f.inside_port,
        }
    }

    fn value_hash(h: &FixedState, flows: &[Flow<A>], entries: &[Entry<A>], value: u32) -> u64 {
        let i = (value >> 1) as usize;
        if value & 1 == 0 {
            Self::endpoint_hash(h, &Self::endpoint_of(&flows[i]))
        } else {
            Self::entry_hash(h, &entries[i])
        }
    }

    /// Mappings held (endpoints with at least one flow).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.index.len()
    }

    /// The endpoint's mapping, if it has one.
    #[inline]
    pub(crate) fn find(&self, flows: &[Flow<A>], ep: &Endpoint<A>) -> Option<Found> {
        self.find_hashed(flows, Self::endpoint_hash(&self.hasher, ep), ep)
    }

    #[inline]
    fn find_hashed(&self, flows: &[Flow<A>], hash: u64, ep: &Endpoint<A>) -> Option<Found> {
        let nic_proto = ep.nic_proto();
        let entries = &self.entries;
        self.index
            .find(hash, |v| {
                let i = (v >> 1) as usize;
                if v & 1 == 0 {
                    let f = &flows[i];
                    f.nic == ep.nic
                        && f.proto == ep.proto
                        && f.inside_port == ep.port
                        && f.inside == ep.inside
                } else {
                    let e = &entries[i];
                    e.nic_proto == nic_proto && e.port == ep.port && e.inside == ep.inside
                }
            })
            .map(|value| Found {
                value,
                hash,
                nat_port: if value & 1 == 0 {
                    flows[(value >> 1) as usize].nat_port
                } else {
                    entries[(value >> 1) as usize].nat_port
                },
            })
    }

    /// One more flow uses the mapping `found` (the flow is not stored yet). An endpoint's
    /// second flow moves its mapping from the first flow into a shared entry.
    pub(crate) fn add_ref(&mut self, flows: &[Flow<A>], found: Found) {
        if found.value & 1 == 1 {
            self.entries[(found.value >> 1) as usize].refs += 1;
            return;
        }
        let first = Self::endpoint_of(&flows[(found.value >> 1) as usize]);
        let entry = Entry {
            inside: first.inside,
            nic_proto: first.nic_proto(),
            port: first.port,
            nat_port: found.nat_port,
            refs: 2,
        };
        let id = if self.free_head != NIL {
            self.free_head
        } else {
            self.entries.len() as u32
        };
        if id == self.entries.len() as u32 {
            self.entries.push(entry);
        } else {
            self.free_head = self.entries[id as usize].nic_proto;
            self.entries[id as usize] = entry;
        }
        let value = shared_value(id);
        if value <= self.index.max_slot() {
            let replaced = self.index.replace(found.hash, found.value, value);
            debug_assert!(replaced);
        } else if let Some(geometry) = self.index.growth_for(value) {
            // The rebuild finds the shared entry and so skips the first flow.
            self.rebuild(geometry, flows);
        }
    }

    /// The flow just stored in `slot` is the first of its endpoint, which has no mapping: the
    /// mapping is the flow's NAT port, held by the flow.
    pub(crate) fn create(&mut self, flows: &[Flow<A>], slot: u32) {
        let value = flow_value(slot);
        debug_assert!(
            self.find(flows, &Self::endpoint_of(&flows[slot as usize]))
                .is_none()
        );
        match self.index.growth_for(value) {
            // The flow is stored, so the rebuild indexes it.
            Some(geometry) => self.rebuild(geometry, flows),
            None => {
                let hash = Self::value_hash(&self.hasher, flows, &self.entries, value);
                self.index.insert(hash, value);
            }
        }
    }

    /// Rebuilds the index in `geometry`: every shared entry, then every used flow whose
    /// endpoint has none (it is its endpoint's only flow).
    fn rebuild(&mut self, geometry: (usize, u32), flows: &[Flow<A>]) {
        self.index.reset(geometry);
        let h = &self.hasher;
        for (id, e) in self.entries.iter().enumerate().filter(|(_, e)| e.refs > 0) {
            let hash = Self::entry_hash(h, e);
            self.index.insert(hash, shared_value(id as u32));
        }
        for (slot, f) in flows.iter().enumerate() {
            if f.class == class::FREE {
                continue;
            }
            let ep = Self::endpoint_of(f);
            let hash = Self::endpoint_hash(&self.hasher, &ep);
            if self.find_hashed(flows, hash, &ep).is_none() {
                self.index.insert(hash, flow_value(slot as u32));
            }
        }
    }

    /// The flow in `slot` (still stored) no longer uses its endpoint's mapping. Returns the
    /// mapping's NAT port if it was the endpoint's last flow (the mapping is gone), `None` if
    /// flows remain or there was none.
    pub(crate) fn release(&mut self, flows: &[Flow<A>], slot: u32) -> Option<u16> {
        let found = self.find(flows, &Self::endpoint_of(&flows[slot as usize]))?;
        if found.value & 1 == 1 {
            let e = &mut self.entries[(found.value >> 1) as usize];
            e.refs -= 1;
            if e.refs > 0 {
                return None;
            }
        } else {
            debug_assert_eq!(found.value, flow_value(slot), "an endpoint of two flows");
        }
        let (h, entries) = (&self.hasher, &self.entries);
        self.index.remove(found.hash, found.value, |v| {
            Self::value_hash(h, flows, entries, v)
        });
        if found.value & 1 == 1 {
            let id = found.value >> 1;
            self.entries[id as usize].nic_proto = self.free_head;
            self.free_head = id;
        }
        Some(found.nat_port)
    }

    /// Bytes allocated (shared entries and the index), for memory reports.
    pub(crate) fn allocated_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<Entry<A>>() + self.index.allocated_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn ep(nic: u32, port: u16) -> Endpoint<[u8; 4]> {
        Endpoint {
            nic,
            proto: 17,
            inside: [10, 0, 0, 1],
            port,
        }
    }

    /// A used flow of endpoint `e` translated to `nat_port`.
    fn flow(e: &Endpoint<[u8; 4]>, nat_port: u16) -> Flow<[u8; 4]> {
        Flow {
            nic: e.nic,
            proto: e.proto,
            inside: e.inside,
            inside_port: e.port,
            nat_port,
            class: class::UDP,
            ..Flow::default()
        }
    }

    /// Adds a flow of `e` as the table does: look up, join or store and create.
    fn add(
        m: &mut Mappings<[u8; 4]>,
        flows: &mut Vec<Flow<[u8; 4]>>,
        e: &Endpoint<[u8; 4]>,
        port: u16,
    ) -> u32 {
        let found = m.find(flows, e);
        if let Some(f) = found {
            m.add_ref(flows, f);
        }
        let slot = match flows.iter().position(|f| f.class == class::FREE) {
            Some(i) => i,
            None => {
                flows.push(Flow::default());
                flows.len() - 1
            }
        };
        flows[slot] = flow(e, port);
        if found.is_none() {
            m.create(flows, slot as u32);
        }
        slot as u32
    }

    fn remove(m: &mut Mappings<[u8; 4]>, flows: &mut [Flow<[u8; 4]>], slot: u32) -> Option<u16> {
        let gone = m.release(flows, slot);
        flows[slot as usize].class = class::FREE;
        gone
    }

    #[test]
    fn an_entry_is_16_bytes_for_ipv4_and_28_for_ipv6() {
        assert_eq!(std::mem::size_of::<Entry<[u8; 4]>>(), 16);
        assert_eq!(std::mem::size_of::<Entry<[u8; 16]>>(), 28);
    }

    #[test]
    fn a_mapping_lives_while_any_flow_uses_it_and_keeps_its_first_port() {
        let mut m = Mappings::new(FixedState::with_seed(7));
        let mut flows = Vec::new();
        assert!(m.find(&flows, &ep(1, 5)).is_none());
        let first = add(&mut m, &mut flows, &ep(1, 5), 40_000);
        assert_eq!(m.find(&flows, &ep(1, 5)).map(|f| f.nat_port), Some(40_000));
        assert!(m.entries.is_empty(), "one flow: the mapping is the flow");
        // A second flow of the endpoint got another port (another scope had 40,000 taken).
        let second = add(&mut m, &mut flows, &ep(1, 5), 41_000);
        assert_eq!(m.entries.len(), 1, "two flows: a shared entry");
        assert_eq!(remove(&mut m, &mut flows, first), None, "one flow remains");
        assert_eq!(m.find(&flows, &ep(1, 5)).map(|f| f.nat_port), Some(40_000));
        assert_eq!(
            remove(&mut m, &mut flows, second),
            Some(40_000),
            "the last flow went"
        );
        assert!(m.find(&flows, &ep(1, 5)).is_none());
        assert_eq!(m.len(), 0);
    }

    #[test]
    fn endpoints_differing_in_one_field_have_their_own_mappings() {
        let mut m = Mappings::new(FixedState::with_seed(7));
        let mut flows = Vec::new();
        let mut tcp = ep(1, 5);
        tcp.proto = 6;
        let mut other_host = ep(1, 5);
        other_host.inside = [10, 0, 0, 2];
        let eps = [ep(1, 5), ep(2, 5), ep(1, 6), tcp, other_host];
        for (i, e) in eps.iter().enumerate() {
            add(&mut m, &mut flows, e, i as u16 + 1);
        }
        let ports: Vec<_> = eps
            .iter()
            .map(|e| m.find(&flows, e).map(|f| f.nat_port))
            .collect();
        assert_eq!(ports, [Some(1), Some(2), Some(3), Some(4), Some(5)]);
    }

    proptest! {
        /// Under random adds and removes of flows over a few endpoints, through index growth
        /// and slot reuse, every endpoint's mapping agrees with a model: present exactly while
        /// it has flows, at the port of the flow that made it, and gone with the last flow.
        #[test]
        fn mappings_agree_with_a_model(ops in proptest::collection::vec((any::<bool>(), 0u16..12, any::<u16>()), 1..300)) {
            let mut m = Mappings::new(FixedState::with_seed(3));
            let mut flows = Vec::new();
            // endpoint port -> (mapped port, slots of its flows)
            let mut model: BTreeMap<u16, (u16, Vec<u32>)> = BTreeMap::new();
            for (add_flow, k, port) in ops {
                let e = ep(u32::from(k % 3), k);
                if add_flow || !model.contains_key(&k) {
                    let slot = add(&mut m, &mut flows, &e, port);
                    model.entry(k).or_insert((port, Vec::new())).1.push(slot);
                } else if let Some((mapped, slots)) = model.get_mut(&k) {
                    let mapped = *mapped;
                    let slot = slots.remove(usize::from(port) % slots.len());
                    let gone = remove(&mut m, &mut flows, slot);
                    if slots.is_empty() {
                        model.remove(&k);
                        prop_assert_eq!(gone, Some(mapped));
                    } else {
                        prop_assert_eq!(gone, None);
                    }
                }
                for k in 0..12u16 {
                    let e = ep(u32::from(k % 3), k);
                    prop_assert_eq!(m.find(&flows, &e).map(|f| f.nat_port), model.get(&k).map(|v| v.0));
                }
                prop_assert_eq!(m.len(), model.len());
            }
        }
    }

    #[test]
    fn the_index_survives_growth_and_shared_entries_are_reused() {
        let mut m = Mappings::new(FixedState::with_seed(7));
        let mut flows = Vec::new();
        for round in 0..2u16 {
            let mut slots = Vec::new();
            for port in 0..3_000u16 {
                let e = ep(u32::from(port % 7), port);
                slots.push(add(&mut m, &mut flows, &e, port ^ round));
                if port % 2 == 0 {
                    slots.push(add(&mut m, &mut flows, &e, 1));
                }
            }
            assert_eq!(m.len(), 3_000);
            for port in 0..3_000u16 {
                let e = ep(u32::from(port % 7), port);
                assert_eq!(m.find(&flows, &e).map(|f| f.nat_port), Some(port ^ round));
            }
            for slot in slots {
                remove(&mut m, &mut flows, slot);
            }
            assert_eq!(m.len(), 0);
        }
        // The second round reused the first round's shared entries.
        assert_eq!(m.entries.len(), 1_500);
    }
}
