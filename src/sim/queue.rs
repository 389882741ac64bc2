//! The simulator's event queue: a radix heap over event times, FIFO among equal times.
//!
//! A discrete-event simulator never schedules into the past, so priorities are monotone and a
//! radix heap gives the exact order with amortised O(1) work per event: items are kept in 65
//! buckets by the highest bit in which their time differs from the last time popped, and only
//! the lowest non-empty bucket is ever redistributed. A binary heap of whole events spent a
//! third of the simulator's time moving events during sift-down.
//!
//! Ties are broken by insertion order (the simulator's sequence number) without storing it:
//! every bucket holds its items in insertion order. Pushes append; a redistribution empties one
//! bucket, in order, into lower buckets that are all empty at that moment (it only happens when
//! every lower bucket is empty), so each bucket stays in insertion order, and the items due now
//! come out first-in, first-out.

use std::collections::VecDeque;

/// A monotone priority queue of items keyed by time; among equal times, first in, first out.
/// Times must never be below the last time popped (lower ones are clamped to it).
pub struct EventQueue<T> {
    /// Items whose time equals `last`, in insertion order.
    due: VecDeque<T>,
    /// Bucket `b` (1..=64) holds items whose time first differs from `last` in bit `b - 1`.
    buckets: Vec<Vec<(u64, T)>>,
    /// Bit `b - 1` is set while bucket `b` holds items, so a refill finds the lowest one with
    /// `trailing_zeros` instead of scanning the buckets.
    nonempty: u64,
    last_ns: u64,
    len: usize,
}

impl<T> Default for EventQueue<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> EventQueue<T> {
    /// An empty queue.
    pub fn new() -> Self {
        EventQueue {
            due: VecDeque::new(),
            buckets: (0..65).map(|_| Vec::new()).collect(),
            nonempty: 0,
            last_ns: 0,
            len: 0,
        }
    }

    fn bucket_of(last_ns: u64, at_ns: u64) -> usize {
        64 - (at_ns ^ last_ns).leading_zeros() as usize
    }

    /// Adds an item due at `at_ns` (clamped to the last time popped, which the simulator never
    /// needs: it schedules at or after "now").
    pub fn push(&mut self, at_ns: u64, item: T) {
        let at_ns = at_ns.max(self.last_ns);
        if at_ns == self.last_ns {
            self.due.push_back(item);
        } else {
            self.file(at_ns, item);
        }
        self.len += 1;
    }

    /// Puts an item due after `last_ns` in its bucket.
    fn file(&mut self, at_ns: u64, item: T) {
        let b = Self::bucket_of(self.last_ns, at_ns);
        self.nonempty |= 1 << (b - 1);
        self.buckets[b].push((at_ns, item));
    }

    /// Makes `due` hold the earliest items, if there are any.
    fn refill(&mut self) {
        if !self.due.is_empty() {
            return;
        }
        if self.nonempty == 0 {
            return;
        }
        let i = self.nonempty.trailing_zeros() as usize + 1;
        self.nonempty &= !(1 << (i - 1));
        let mut items = std::mem::take(&mut self.buckets[i]);
        let last_ns = items.iter().map(|(t, _)| *t).min().unwrap_or(self.last_ns);
        self.last_ns = last_ns;
        for (t, item) in items.drain(..) {
            if t == last_ns {
                self.due.push_back(item);
            } else {
                self.file(t, item);
            }
        }
        // Keep the bucket's allocation for later pushes.
        self.buckets[i] = items;
    }

    /// The time of the earliest item.
    pub fn peek_time(&mut self) -> Option<u64> {
        self.refill();
        (!self.due.is_empty()).then_some(self.last_ns)
    }

    /// Removes the earliest item and returns its time and the item.
    pub fn pop(&mut self) -> Option<(u64, T)> {
        self.refill();
        let item = self.due.pop_front()?;
        self.len -= 1;
        Some((self.last_ns, item))
    }

    /// Number of queued items.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;

    proptest! {
        /// Interleaved pushes (never into the past) and pops come out exactly as a binary heap
        /// ordered by (time, insertion sequence) would give them, ties included.
        #[test]
        fn radix_queue_matches_binary_heap_order(ops in proptest::collection::vec((any::<bool>(), prop_oneof![0u64..3, 0u64..1 << 40]), 1..400)) {
            let mut q = EventQueue::new();
            let mut h = BinaryHeap::new();
            let (mut now, mut seq) = (0u64, 0u64);
            for (is_push, delta) in ops {
                if is_push {
                    seq += 1;
                    let at = now + delta;
                    q.push(at, seq);
                    h.push(Reverse((at, seq)));
                } else {
                    let want = h.pop().map(|Reverse((at, s))| (at, s));
                    prop_assert_eq!(q.peek_time(), want.map(|w| w.0));
                    let got = q.pop();
                    prop_assert_eq!(got, want);
                    if let Some((at, _)) = got {
                        now = at;
                    }
                }
                prop_assert_eq!(q.len(), h.len());
            }
        }
    }
}
