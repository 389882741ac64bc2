//! An open-addressing index from a flow key's hash to its slab slot, built for the per-packet
//! lookup: each entry is one `u32` holding the slot (plus one, so that zero means empty) in its
//! low bits and a tag of the hash in the rest, so a lookup reads the entry (one load), and only
//! on a tag match the flow it names (the second, dependent load). A general hash table adds a
//! third (control bytes, then the bucket, then the flow). Its home position is computable from
//! the hash alone, so a batch can prefetch it before the lookup (see `Gateway::process_batch`).
//!
//! Linear probing with backward-shift deletion (no tombstones), load factor at most 3/4. The
//! entry count need not be a power of two: a hash's home is its Fibonacci product scaled to the
//! entry count (a multiply and a shift, Lemire's "fastrange"), and growth is by half, so the
//! load stays between 1/2 and 3/4 where doubling let it fall to 3/8 (at a million flows an
//! index costs 5.4 bytes per flow instead of 8.4). The
//! index does not store keys: callers pass the hash and an equality test on slots, and a
//! `rehash` function from slot to hash for deleting; growing empties the index, and the caller
//! inserts its (hash, slot) pairs again.

/// The empty entry. A live entry stores slot + 1 in its slot field, so it is never zero, and
/// a fresh index is zeroed memory (the allocator's, with no pass over it).
const EMPTY: u32 = 0;

/// Slot bits for a new index; widened as the slab grows.
const MIN_SLOT_BITS: u32 = 16;
/// At most 31 slot bits, so at least one tag bit remains.
const MAX_SLOT_BITS: u32 = 31;

/// Entries of the first allocation.
const MIN_ENTRIES: usize = 16;

/// Hash → slot index; see the module documentation.
#[derive(Clone, Debug)]
pub(crate) struct SlotIndex {
    /// At least [`MIN_ENTRIES`] long (any length), or empty before the first insert.
    entries: Vec<u32>,
    len: usize,
    /// Width of the slot field; the tag takes the remaining high bits.
    slot_bits: u32,
}

impl Default for SlotIndex {
    fn default() -> Self {
        SlotIndex {
            entries: Vec::new(),
            len: 0,
            slot_bits: MIN_SLOT_BITS,
        }
    }
}

/// Bits needed to write `n` (so every slot below `n`, stored plus one, fits).
fn bits_to_hold(n: usize) -> u32 {
    usize::BITS - n.leading_zeros()
}

impl SlotIndex {
    /// Entries stored.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Bytes allocated.
    pub(crate) fn allocated_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<u32>()
    }

    /// The largest slot this index can hold with its current slot width.
    pub(crate) fn max_slot(&self) -> u32 {
        self.slot_mask() - 1
    }

    #[inline]
    fn slot_mask(&self) -> u32 {
        (1u32 << self.slot_bits) - 1
    }

    #[inline]
    fn tag(&self, hash: u64) -> u32 {
        ((hash >> 32) as u32) << self.slot_bits
    }

    /// The entry a hash starts its probe run at: the top bits of the hash times a large odd
    /// constant (Fibonacci hashing), not its low bits, scaled to the entry count. Keys that
    /// differ in one field only (the ports of one inside host) can share low hash bits; taking
    /// those directly once made a 64-flow table probe 52 entries to find a key absent.
    #[inline]
    fn home(&self, hash: u64) -> usize {
        debug_assert!(!self.entries.is_empty());
        let top = hash.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
        ((top * self.entries.len() as u64) >> 32) as usize
    }

    /// The entry after `pos`, wrapping at the end.
    #[inline]
    fn next(&self, pos: usize) -> usize {
        let n = pos + 1;
        if n == self.entries.len() { 0 } else { n }
    }

    /// How many steps forward, wrapping, `to` lies from `from`.
    #[inline]
    fn distance(&self, from: usize, to: usize) -> usize {
        if to >= from {
            to - from
        } else {
            to + self.entries.len() - from
        }
    }

    /// Brings the cache line of `hash`'s home entry toward the core; no effect on contents.
    #[inline]
    pub(crate) fn prefetch(&self, hash: u64) {
        if !self.entries.is_empty() {
            super::prefetch::prefetch(&self.entries[self.home(hash)]);
        }
    }

    /// The first slot at or after `hash`'s home whose tag matches, without checking the key:
    /// what a batch prefetches the flow of. May be a false match; never misses a true one
    /// that comes first.
    #[inline]
    pub(crate) fn candidate(&self, hash: u64) -> Option<u32> {
        self.find(hash, |_| true)
    }

    /// The slot whose tag matches and for which `eq` holds.
    #[inline]
    pub(crate) fn find(&self, hash: u64, mut eq: impl FnMut(u32) -> bool) -> Option<u32> {
        if self.entries.is_empty() {
            return None;
        }
        let tag = self.tag(hash);
        let slot_mask = self.slot_mask();
        let mut pos = self.home(hash);
        loop {
            let e = self.entries[pos];
            if e == EMPTY {
                return None;
            }
            if e & !slot_mask == tag && eq((e & slot_mask) - 1) {
                return Some((e & slot_mask) - 1);
            }
            pos = self.next(pos);
        }
    }

    /// The geometry (entry count, slot bits) the index must be rebuilt to before `slot` can
    /// be inserted, or `None` if it fits as it is. Growth adds half the entry count at load 3/4
    /// and widens the slot field to cover that many slots at once, so a slab that grows with
    /// the index costs one rebuild per growth, not two.
    pub(crate) fn growth_for(&self, slot: u32) -> Option<(usize, u32)> {
        let full = (self.len + 1) * 4 > self.entries.len() * 3;
        if !full && slot <= self.max_slot() {
            return None;
        }
        let cap = if full {
            (self.entries.len() + self.entries.len() / 2).max(MIN_ENTRIES)
        } else {
            self.entries.len()
        };
        let mut bits = self.slot_bits.max(bits_to_hold(cap));
        while bits < MAX_SLOT_BITS && slot > (1u32 << bits) - 2 {
            bits += 1;
        }
        Some((cap, bits.min(MAX_SLOT_BITS)))
    }

    /// Empties the index into the geometry [`growth_for`] returned. The caller then inserts
    /// every indexed slot again, typically by walking its slab in order, which reads the flows
    /// sequentially instead of in hash order.
    ///
    /// [`growth_for`]: SlotIndex::growth_for
    pub(crate) fn reset(&mut self, (cap, slot_bits): (usize, u32)) {
        debug_assert!((MIN_ENTRIES..1 << 32).contains(&cap));
        self.entries = vec![EMPTY; cap];
        self.slot_bits = slot_bits;
        self.len = 0;
    }

    /// Adds `slot` under `hash` (the caller guarantees it is not present); [`growth_for`] must
    /// have returned `None` for it (after a rebuild if need be).
    ///
    /// [`growth_for`]: SlotIndex::growth_for
    pub(crate) fn insert(&mut self, hash: u64, slot: u32) {
        debug_assert!(self.growth_for(slot).is_none());
        self.place(hash, slot);
        self.len += 1;
    }

    fn place(&mut self, hash: u64, slot: u32) {
        let entry = self.tag(hash) | (slot + 1);
        let mut pos = self.home(hash);
        while self.entries[pos] != EMPTY {
            pos = self.next(pos);
        }
        self.entries[pos] = entry;
    }

    /// Replaces `old`, stored under `hash`, by `new` in place: the hash and so the probe run
    /// stay the same. False if `old` is not there. `new` must fit the slot field (at most
    /// [`SlotIndex::max_slot`]).
    pub(crate) fn replace(&mut self, hash: u64, old: u32, new: u32) -> bool {
        debug_assert!(new <= self.max_slot());
        let Some(pos) = self.position_of(hash, old) else {
            return false;
        };
        self.entries[pos] = self.tag(hash) | (new + 1);
        true
    }

    /// Where `slot`, stored under `hash`, sits.
    fn position_of(&self, hash: u64, slot: u32) -> Option<usize> {
        if self.entries.is_empty() {
            return None;
        }
        let want = self.tag(hash) | (slot + 1);
        let mut pos = self.home(hash);
        loop {
            let e = self.entries[pos];
            if e == EMPTY {
                return None;
            }
            if e == want {
                return Some(pos);
            }
            pos = self.next(pos);
        }
    }

    /// Removes `slot` stored under `hash`; false if it is not there.
    pub(crate) fn remove(&mut self, hash: u64, slot: u32, rehash: impl Fn(u32) -> u64) -> bool {
        let Some(pos) = self.position_of(hash, slot) else {
            return false;
        };
        let slot_mask = self.slot_mask();
        // Backward shift: pull later entries of the probe run into the hole when their home
        // does not lie cyclically in (hole, their position].
        let mut hole = pos;
        let mut next = self.next(pos);
        loop {
            let e = self.entries[next];
            if e == EMPTY {
                break;
            }
            let home = self.home(rehash((e & slot_mask) - 1));
            if self.distance(home, next) >= self.distance(hole, next) {
                self.entries[hole] = e;
                hole = next;
            }
            next = self.next(next);
        }
        self.entries[hole] = EMPTY;
        self.len -= 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    /// A deliberately poor hash so probe runs collide and wrap.
    fn hash_of(key: u32) -> u64 {
        let h = u64::from(key).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (h & 0xFFFF_FFFF_0000_0000) | (u64::from(key) % 7)
    }

    /// Inserts as the flow table does: a rebuild from the model when the index asks for one.
    fn insert_as_table(idx: &mut SlotIndex, model: &BTreeMap<u32, u32>, key: u32, slot: u32) {
        if let Some(geometry) = idx.growth_for(slot) {
            idx.reset(geometry);
            for (&s, &k) in model {
                idx.insert(hash_of(k), s);
            }
        }
        idx.insert(hash_of(key), slot);
    }

    proptest! {
        /// The index agrees with an ordered map under random inserts and removes, including
        /// slots that force the slot field to widen.
        #[test]
        fn slot_index_agrees_with_a_map(ops in proptest::collection::vec((any::<bool>(), 0u32..300, 0u32..200_000), 1..400)) {
            let mut idx = SlotIndex::default();
            // slot -> key
            let mut model: BTreeMap<u32, u32> = BTreeMap::new();
            let mut key_of: BTreeMap<u32, u32> = BTreeMap::new();
            for (insert, key, slot) in ops {
                let present = key_of.contains_key(&key);
                if insert && !present && !model.contains_key(&slot) {
                    insert_as_table(&mut idx, &model, key, slot);
                    model.insert(slot, key);
                    key_of.insert(key, slot);
                } else if !insert && present {
                    let s = key_of[&key];
                    let m = model.clone();
                    prop_assert!(idx.remove(hash_of(key), s, |s| hash_of(m.get(&s).copied().unwrap_or(u32::MAX))));
                    model.remove(&s);
                    key_of.remove(&key);
                }
                prop_assert_eq!(idx.len(), model.len());
                for (&k, &s) in &key_of {
                    prop_assert_eq!(idx.find(hash_of(k), |c| model.get(&c) == Some(&k)), Some(s));
                }
                prop_assert_eq!(idx.find(hash_of(299_999), |c| model.get(&c) == Some(&299_999)), None);
            }
        }
    }

    #[test]
    fn replacing_a_slot_keeps_its_hash_and_probe_run() {
        let mut idx = SlotIndex::default();
        let mut model = BTreeMap::new();
        // Keys 0, 7, 14 share low hash bits, so they probe past each other.
        for (slot, key) in [(1, 0), (2, 7), (3, 14)] {
            insert_as_table(&mut idx, &model, key, slot);
            model.insert(slot, key);
        }
        assert!(idx.replace(hash_of(7), 2, 9));
        assert!(!idx.replace(hash_of(7), 2, 10), "2 is gone");
        model.remove(&2);
        model.insert(9, 7);
        for (&s, &k) in &model {
            assert_eq!(idx.find(hash_of(k), |c| model.get(&c) == Some(&k)), Some(s));
        }
        assert_eq!(idx.len(), 3);
        let m = model.clone();
        assert!(idx.remove(hash_of(7), 9, |s| hash_of(
            m.get(&s).copied().unwrap_or(u32::MAX)
        )));
        assert_eq!(idx.find(hash_of(14), |c| c == 3), Some(3));
    }

    #[test]
    fn removing_an_absent_slot_changes_nothing() {
        let mut idx = SlotIndex::default();
        insert_as_table(&mut idx, &BTreeMap::new(), 1, 5);
        assert!(!idx.remove(hash_of(2), 6, |_| hash_of(1)));
        assert_eq!(idx.len(), 1);
        assert_eq!(idx.find(hash_of(1), |s| s == 5), Some(5));
    }

    #[test]
    fn a_slot_beyond_the_field_widens_it() {
        let mut idx = SlotIndex::default();
        let big = 1u32 << 20;
        insert_as_table(&mut idx, &BTreeMap::new(), 1, 3);
        insert_as_table(&mut idx, &BTreeMap::from([(3, 1)]), 2, big);
        assert!(idx.max_slot() >= big);
        assert_eq!(idx.find(hash_of(1), |s| s == 3), Some(3));
        assert_eq!(idx.find(hash_of(2), |s| s == big), Some(big));
    }

    #[test]
    fn an_index_stays_between_half_and_three_quarters_full() {
        let mut idx = SlotIndex::default();
        let mut model = BTreeMap::new();
        for slot in 0..100_000u32 {
            insert_as_table(&mut idx, &model, slot, slot);
            model.insert(slot, slot);
            let entries = idx.allocated_bytes() / 4;
            let len = idx.len();
            assert!(len * 4 <= entries * 3, "{len} in {entries}");
            if entries > MIN_ENTRIES {
                // Just after a growth the load is a little over 1/2 (the series rounds down).
                assert!(len * 2 > entries, "{len} in {entries}");
            }
        }
        assert!(!(idx.allocated_bytes() / 4).is_power_of_two());
    }

    #[test]
    fn growing_the_entries_widens_the_slot_field_with_them() {
        let mut idx = SlotIndex::default();
        let mut model = BTreeMap::new();
        let mut rebuilds = 0;
        for slot in 0..200_000u32 {
            if idx.growth_for(slot).is_some() {
                rebuilds += 1;
            }
            insert_as_table(&mut idx, &model, slot, slot);
            model.insert(slot, slot);
        }
        // The first allocation (16 entries), then one rebuild per growth by half up to 399,403
        // entries (the first length of the series 16, 24, 36, … that holds 200,000 at load
        // 3/4), none of them for the slot field alone.
        assert_eq!(rebuilds, 26);
        assert_eq!(idx.find(hash_of(199_999), |s| s == 199_999), Some(199_999));
    }
}
