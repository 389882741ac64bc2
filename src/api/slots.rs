//! The port-block table of one public address: which slots are free, which are quarantined.
//!
//! Slot `s` covers ports `[1024 + s·P, 1024 + s·P + P − 1]` (end inclusive). Free slots sit
//! in an ordered set so "lowest free slot" is O(log n); slots never taken or held are not in the
//! set but above a watermark, so a table costs what has been used of it, not 64,512 entries
//! for P = 1 (building and dropping those sets was a third of a short simulated run). A released slot is quarantined until
//! `released_at + block_quarantine` so late replies to its old owner can never reach a new
//! one (RFC 6888 REQ-8 spirit); expiry is driven by the reconciler's virtual time.
//!
//! Quarantine outlives the table: when an address leaves a gateway, or P changes, the
//! quarantined port ranges are exported and imported into whatever table the address gets
//! next, whatever its P.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::time::Instant;

use super::model::{FIRST_PORT, slots_per_ip};

/// A quarantined port range of one address, end inclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct QuarantinedRange {
    pub port: u16,
    pub end_port: u16,
    pub until: Instant,
}

/// Slots of one address for one P.
#[derive(Clone, Debug)]
pub(crate) struct SlotTable {
    ports_per_nic: u32,
    /// Slots of the address for this P.
    count: u32,
    /// Slots `fresh..count` were never taken or held: free, and not in `free`.
    fresh: u32,
    /// Free slots below `fresh`.
    free: BTreeSet<u32>,
    quarantine: BTreeMap<u32, Instant>,
    expiries: BTreeSet<(Instant, u32)>,
}

impl SlotTable {
    /// A table for P, with slots overlapping a still-active imported range quarantined.
    pub fn new(ports_per_nic: u32, imported: &[QuarantinedRange], now: Instant) -> Self {
        let count = slots_per_ip(ports_per_nic);
        let mut table = SlotTable {
            ports_per_nic,
            count,
            fresh: 0,
            free: BTreeSet::new(),
            quarantine: BTreeMap::new(),
            expiries: BTreeSet::new(),
        };
        for r in imported.iter().filter(|r| r.until > now) {
            let first = (u32::from(r.port.max(FIRST_PORT)) - u32::from(FIRST_PORT)) / ports_per_nic;
            let last =
                (u32::from(r.end_port.max(FIRST_PORT)) - u32::from(FIRST_PORT)) / ports_per_nic;
            for slot in first..=last.min(count.saturating_sub(1)) {
                table.hold(slot, r.until);
            }
        }
        table
    }

    /// Moves the watermark past `slot`, so that whether `slot` is free is up to `free`.
    fn materialise(&mut self, slot: u32) {
        if slot >= self.fresh {
            self.free.extend(self.fresh..=slot);
            self.fresh = slot + 1;
        }
    }

    /// Quarantines a slot that is currently free (or extends its quarantine).
    fn hold(&mut self, slot: u32, until: Instant) {
        self.materialise(slot);
        self.free.remove(&slot);
        let entry = self.quarantine.entry(slot).or_insert(until);
        if *entry < until {
            self.expiries.remove(&(*entry, slot));
            *entry = until;
        }
        self.expiries.insert((*entry, slot));
    }

    /// Takes the lowest free slot.
    pub fn take_lowest(&mut self) -> Option<u32> {
        // Everything in `free` lies below `fresh`.
        if let Some(slot) = self.free.pop_first() {
            return Some(slot);
        }
        (self.fresh < self.count).then(|| {
            self.fresh += 1;
            self.fresh - 1
        })
    }

    /// Whether any slot is free now.
    pub fn has_free(&self) -> bool {
        !self.free.is_empty() || self.fresh < self.count
    }

    /// Number of free slots.
    pub fn free_count(&self) -> usize {
        self.free.len() + self.count.saturating_sub(self.fresh) as usize
    }

    /// Gives back an owned slot: quarantined until `now + quarantine`, or free at once when
    /// the quarantine is zero.
    pub fn release(&mut self, slot: u32, now: Instant, quarantine: Duration) {
        if quarantine.is_zero() {
            self.materialise(slot);
            self.free.insert(slot);
        } else {
            self.hold(slot, now + quarantine);
        }
    }

    /// Frees every slot whose quarantine ended at or before `now`; returns how many.
    pub fn expire(&mut self, now: Instant) -> usize {
        let mut n = 0;
        while let Some(&(until, slot)) = self.expiries.first() {
            if until > now {
                break;
            }
            self.expiries.pop_first();
            self.quarantine.remove(&slot);
            self.free.insert(slot);
            n += 1;
        }
        n
    }

    /// When the next quarantine ends.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.expiries.first().map(|(t, _)| *t)
    }

    /// The port range of a slot, end inclusive.
    pub fn ports(&self, slot: u32) -> (u16, u16) {
        block_ports(self.ports_per_nic, slot)
    }

    /// Everything that must stay quarantined when this table is dropped: its quarantined
    /// slots, plus the `owned` slots (released now, until `now + quarantine`).
    pub fn export(
        &self,
        owned: impl Iterator<Item = u32>,
        now: Instant,
        quarantine: Duration,
    ) -> Vec<QuarantinedRange> {
        let mut out: Vec<QuarantinedRange> = self
            .quarantine
            .iter()
            .filter(|(_, until)| **until > now)
            .map(|(slot, until)| {
                let (port, end_port) = self.ports(*slot);
                QuarantinedRange {
                    port,
                    end_port,
                    until: *until,
                }
            })
            .collect();
        if !quarantine.is_zero() {
            out.extend(owned.map(|slot| {
                let (port, end_port) = self.ports(slot);
                QuarantinedRange {
                    port,
                    end_port,
                    until: now + quarantine,
                }
            }));
        }
        out.sort();
        out
    }
}

/// Ports of slot `s` for P: `[1024 + s·P, 1024 + s·P + P − 1]`.
pub fn block_ports(ports_per_nic: u32, slot: u32) -> (u16, u16) {
    let start = u32::from(FIRST_PORT) + slot * ports_per_nic;
    let end = start + ports_per_nic - 1;
    (
        u16::try_from(start).unwrap_or(u16::MAX),
        u16::try_from(end).unwrap_or(u16::MAX),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_ranges_follow_spec_formula() {
        assert_eq!(block_ports(64, 0), (1024, 1087));
        assert_eq!(block_ports(64, 1), (1088, 1151));
        assert_eq!(block_ports(64, 1007), (65472, 65535));
        assert_eq!(block_ports(32768, 0), (1024, 33791));
    }

    #[test]
    fn released_slot_is_quarantined_then_free() {
        let q = Duration::from_secs(120);
        let mut t = SlotTable::new(32768, &[], Instant::ZERO);
        assert_eq!(t.take_lowest(), Some(0));
        assert_eq!(t.take_lowest(), None);
        t.release(0, Instant::from_secs(10), q);
        assert!(!t.has_free());
        assert_eq!(t.next_expiry(), Some(Instant::from_secs(130)));
        assert_eq!(t.expire(Instant::from_secs(129)), 0);
        assert_eq!(t.expire(Instant::from_secs(130)), 1);
        assert_eq!(t.take_lowest(), Some(0));
    }

    #[test]
    fn slots_are_taken_lowest_first_across_the_watermark() {
        let q = Duration::from_secs(10);
        let mut t = SlotTable::new(1, &[], Instant::ZERO);
        assert_eq!(t.free_count(), 64_512);
        assert_eq!(t.take_lowest(), Some(0));
        assert_eq!(t.take_lowest(), Some(1));
        assert_eq!(t.take_lowest(), Some(2));
        t.release(1, Instant::ZERO, Duration::ZERO);
        t.release(0, Instant::ZERO, q);
        assert_eq!(t.free_count(), 64_512 - 2);
        assert_eq!(t.take_lowest(), Some(1));
        assert_eq!(t.take_lowest(), Some(3));
        assert_eq!(t.expire(Instant::from_secs(10)), 1);
        assert_eq!(t.take_lowest(), Some(0));
        assert_eq!(t.take_lowest(), Some(4));
        let mut last = SlotTable::new(32_768, &[], Instant::ZERO);
        assert_eq!(last.free_count(), 1);
        assert_eq!(last.take_lowest(), Some(0));
        assert!(!last.has_free());
        assert_eq!(last.free_count(), 0);
    }

    #[test]
    fn imported_ranges_quarantine_overlapping_slots_of_a_new_p() {
        let q = Duration::from_secs(120);
        let mut old = SlotTable::new(1024, &[], Instant::ZERO);
        assert_eq!(old.take_lowest(), Some(0)); // ports 1024..=2047
        let ranges = old.export([0].into_iter(), Instant::ZERO, q);
        let mut new = SlotTable::new(64, &ranges, Instant::ZERO);
        // Slots 0..16 of P=64 overlap 1024..=2047.
        assert_eq!(new.take_lowest(), Some(16));
        assert_eq!(new.free_count(), 1008 - 17);
        let later = SlotTable::new(64, &ranges, Instant::from_secs(120));
        assert_eq!(later.free_count(), 1008);
    }
}
