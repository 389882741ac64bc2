//! Endpoint mappings (behaviour §4 "Port choice"): the NAT port an inside endpoint (NIC,
//! protocol, inside address and port) was first given, kept while any of its flows, live or
//! held, remains, so its next flows prefer the same port (endpoint-independent mapping).
//!
//! Stored as a slab of 16-byte entries (28 for IPv6) and a [`SlotIndex`] over them, the same
//! layout as the flow table: about 25 bytes per endpoint at a million endpoints, where a general
//! hash map of key and value cost 42 (its buckets are padded and kept at most 7/8 full). An
//! entry is found by hash and compared field by field; the slab's order never reaches output.

use std::hash::{BuildHasher, Hasher};

use foldhash::fast::FixedState;

use super::addr::Addr;
use super::index::SlotIndex;
use super::table::NIL;

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
    entries: Vec<Entry<A>>,
    free_head: u32,
    index: SlotIndex,
    hasher: FixedState,
}

/// A mapping found by [`Mappings::find`], to update without a second lookup.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Found {
    id: u32,
    /// The mapping's NAT port.
    pub nat_port: u16,
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

    fn entry_hash(h: &FixedState, e: &Entry<A>) -> u64 {
        Self::hash_of(h, e.nic_proto, &e.inside, e.port)
    }

    /// Mappings held (endpoints with at least one flow).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.index.len()
    }

    /// The endpoint's mapping, if it has one.
    #[inline]
    pub(crate) fn find(&self, ep: &Endpoint<A>) -> Option<Found> {
        let nic_proto = ep.nic_proto();
        let hash = Self::hash_of(&self.hasher, nic_proto, &ep.inside, ep.port);
        let entries = &self.entries;
        self.index
            .find(hash, |i| {
                let e = &entries[i as usize];
                e.nic_proto == nic_proto && e.port == ep.port && e.inside == ep.inside
            })
            .map(|id| Found {
                id,
                nat_port: entries[id as usize].nat_port,
            })
    }

    /// One more flow uses the mapping `found`.
    #[inline]
    pub(crate) fn add_ref(&mut self, found: Found) {
        self.entries[found.id as usize].refs += 1;
    }

    /// Creates the endpoint's mapping to `nat_port` with one flow using it; the endpoint must
    /// have none ([`Mappings::find`] returned `None`).
    pub(crate) fn create(&mut self, ep: &Endpoint<A>, nat_port: u16) {
        debug_assert!(self.find(ep).is_none());
        let entry = Entry {
            inside: ep.inside,
            nic_proto: ep.nic_proto(),
            port: ep.port,
            nat_port,
            refs: 1,
        };
        let id = if self.free_head != NIL {
            self.free_head
        } else {
            self.entries.len() as u32
        };
        if let Some(geometry) = self.index.growth_for(id) {
            self.index.reset(geometry);
            let h = &self.hasher;
            for (i, e) in self.entries.iter().enumerate().filter(|(_, e)| e.refs > 0) {
                self.index.insert(Self::entry_hash(h, e), i as u32);
            }
        }
        if id == self.entries.len() as u32 {
            self.entries.push(entry);
        } else {
            self.free_head = self.entries[id as usize].nic_proto;
            self.entries[id as usize] = entry;
        }
        self.index
            .insert(Self::entry_hash(&self.hasher, &entry), id);
    }

    /// One flow of the endpoint no longer uses its mapping. Returns the mapping's NAT port if
    /// that was the last flow (the mapping is gone), `None` if flows remain or there was none.
    pub(crate) fn release(&mut self, ep: &Endpoint<A>) -> Option<u16> {
        let found = self.find(ep)?;
        let e = &mut self.entries[found.id as usize];
        e.refs -= 1;
        if e.refs > 0 {
            return None;
        }
        let h = &self.hasher;
        let entries = &self.entries;
        let hash = Self::entry_hash(h, &entries[found.id as usize]);
        self.index.remove(hash, found.id, |i| {
            Self::entry_hash(h, &entries[i as usize])
        });
        let e = &mut self.entries[found.id as usize];
        e.nic_proto = self.free_head;
        self.free_head = found.id;
        Some(found.nat_port)
    }

    /// Bytes allocated (slab and index), for memory reports.
    pub(crate) fn allocated_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<Entry<A>>() + self.index.allocated_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(nic: u32, port: u16) -> Endpoint<[u8; 4]> {
        Endpoint {
            nic,
            proto: 17,
            inside: [10, 0, 0, 1],
            port,
        }
    }

    #[test]
    fn an_entry_is_16_bytes_for_ipv4_and_28_for_ipv6() {
        assert_eq!(std::mem::size_of::<Entry<[u8; 4]>>(), 16);
        assert_eq!(std::mem::size_of::<Entry<[u8; 16]>>(), 28);
    }

    #[test]
    fn a_mapping_lives_while_any_flow_uses_it() {
        let mut m = Mappings::new(FixedState::with_seed(7));
        assert!(m.find(&ep(1, 5)).is_none());
        m.create(&ep(1, 5), 40_000);
        let found = m.find(&ep(1, 5)).map(|f| f.nat_port);
        assert_eq!(found, Some(40_000));
        if let Some(f) = m.find(&ep(1, 5)) {
            m.add_ref(f);
        }
        assert_eq!(m.release(&ep(1, 5)), None, "one flow remains");
        assert_eq!(m.find(&ep(1, 5)).map(|f| f.nat_port), Some(40_000));
        assert_eq!(m.release(&ep(1, 5)), Some(40_000), "the last flow went");
        assert!(m.find(&ep(1, 5)).is_none());
        assert_eq!(m.release(&ep(1, 5)), None, "no mapping, nothing to release");
        assert_eq!(m.len(), 0);
    }

    #[test]
    fn endpoints_differing_in_one_field_have_their_own_mappings() {
        let mut m = Mappings::new(FixedState::with_seed(7));
        m.create(&ep(1, 5), 1);
        m.create(&ep(2, 5), 2);
        m.create(&ep(1, 6), 3);
        let mut tcp = ep(1, 5);
        tcp.proto = 6;
        m.create(&tcp, 4);
        let mut other_host = ep(1, 5);
        other_host.inside = [10, 0, 0, 2];
        m.create(&other_host, 5);
        let ports: Vec<_> = [ep(1, 5), ep(2, 5), ep(1, 6), tcp, other_host]
            .iter()
            .map(|e| m.find(e).map(|f| f.nat_port))
            .collect();
        assert_eq!(ports, [Some(1), Some(2), Some(3), Some(4), Some(5)]);
    }

    #[test]
    fn freed_entries_are_reused_and_the_index_survives_growth() {
        let mut m = Mappings::new(FixedState::with_seed(7));
        for round in 0..3u16 {
            for port in 0..5_000u16 {
                m.create(&ep(u32::from(port % 7), port), port ^ round);
            }
            assert_eq!(m.len(), 5_000);
            for port in 0..5_000u16 {
                let e = ep(u32::from(port % 7), port);
                assert_eq!(m.find(&e).map(|f| f.nat_port), Some(port ^ round));
                assert_eq!(m.release(&e), Some(port ^ round));
            }
            assert_eq!(m.len(), 0);
        }
        // Three rounds of 5,000 reused the first round's entries.
        assert_eq!(m.entries.len(), 5_000);
    }
}
