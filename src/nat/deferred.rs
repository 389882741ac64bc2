//! Answers the gateway owes later: the ICMP 3/13 to an unsolicited inbound TCP SYN, which RFC
//! 5382 REQ-4 allows only after 6 s of silence and forbids when the inside host's own SYN for
//! that connection is translated in the meantime (simultaneous open). Sans-IO: the gateway
//! sends what is due from `handle_timeout` through `poll_transmit`.
//!
//! Bounded: at most [`MAX_PENDING`] answers wait at once; an unsolicited SYN arriving while the
//! list is full is dropped without an answer (silence is always allowed), and a SYN repeating a
//! connection that already waits adds nothing (one answer per connection).

use std::collections::VecDeque;
use std::net::IpAddr;

use foldhash::fast::FixedState;
use hashbrown::HashMap;

/// How long an unsolicited SYN must stay unanswered (RFC 5382 REQ-4).
pub(crate) const SYN_ANSWER_DELAY_NS: u64 = 6_000_000_000;

/// At most this many answers wait at once (a SYN flood costs bounded memory: each entry keeps
/// the SYN, at most one MTU).
pub const MAX_PENDING: usize = 1024;

/// The connection an unsolicited SYN belongs to, as seen outside: (NAT address, NAT port,
/// remote address, remote port).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ConnKey {
    pub nat: IpAddr,
    pub nat_port: u16,
    pub remote: IpAddr,
    pub remote_port: u16,
}

struct Pending {
    due_ns: u64,
    key: ConnKey,
    syn: Vec<u8>,
}

/// Pending answers in due order (arrival order: the delay is constant and time never goes
/// back), and the set of connections that still want theirs.
pub(crate) struct Deferred {
    queue: VecDeque<Pending>,
    wanted: HashMap<ConnKey, u64, FixedState>,
}

impl Deferred {
    pub(crate) fn new() -> Self {
        Deferred {
            queue: VecDeque::new(),
            wanted: HashMap::with_hasher(FixedState::with_seed(0x5245_5134)),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.wanted.is_empty()
    }

    /// Number of answers waiting.
    pub(crate) fn len(&self) -> usize {
        self.wanted.len()
    }

    /// Schedules an answer to `syn` at `due_ns`; false when refused (full, or this connection
    /// already waits for one).
    pub(crate) fn offer(&mut self, key: ConnKey, due_ns: u64, syn: &[u8]) -> bool {
        if self.wanted.len() >= MAX_PENDING || self.wanted.contains_key(&key) {
            return false;
        }
        if self.queue.len() >= 2 * MAX_PENDING {
            // Cancelled entries linger in the queue until due; drop them before growing.
            let wanted = &self.wanted;
            self.queue
                .retain(|p| wanted.get(&p.key).is_some_and(|&d| d == p.due_ns));
        }
        self.wanted.insert(key, due_ns);
        self.queue.push_back(Pending {
            due_ns,
            key,
            syn: syn.to_vec(),
        });
        true
    }

    /// The inside host's own SYN for this connection was translated: no answer.
    pub(crate) fn cancel(&mut self, key: &ConnKey) -> bool {
        self.wanted.remove(key).is_some()
    }

    /// When the next wanted answer is due.
    pub(crate) fn next_due_ns(&self) -> Option<u64> {
        self.queue
            .iter()
            .find(|p| self.wanted.get(&p.key).is_some_and(|&d| d == p.due_ns))
            .map(|p| p.due_ns)
    }

    /// A lower bound on [`Deferred::next_due_ns`], in O(1).
    pub(crate) fn due_lower_bound_ns(&self) -> Option<u64> {
        if self.wanted.is_empty() {
            return None;
        }
        self.queue.front().map(|p| p.due_ns)
    }

    /// The next SYN whose answer is due at `now_ns`, with its due time.
    pub(crate) fn pop_due(&mut self, now_ns: u64) -> Option<(u64, Vec<u8>)> {
        while let Some(p) = self.queue.front() {
            if p.due_ns > now_ns {
                return None;
            }
            let p = self.queue.pop_front()?;
            if self.wanted.get(&p.key) == Some(&p.due_ns) {
                self.wanted.remove(&p.key);
                return Some((p.due_ns, p.syn));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(port: u16) -> ConnKey {
        ConnKey {
            nat: "203.0.113.1".parse().expect("addr"),
            nat_port: port,
            remote: "198.51.100.7".parse().expect("addr"),
            remote_port: 80,
        }
    }

    #[test]
    fn answers_come_due_in_order_and_cancelled_ones_never() {
        let mut d = Deferred::new();
        assert!(d.offer(key(1), 10, b"a"));
        assert!(d.offer(key(2), 20, b"b"));
        assert!(!d.offer(key(2), 25, b"b"), "one answer per connection");
        assert!(d.cancel(&key(1)));
        assert_eq!(d.next_due_ns(), Some(20));
        assert_eq!(d.pop_due(19), None);
        assert_eq!(d.pop_due(20), Some((20, b"b".to_vec())));
        assert!(d.is_empty());
    }

    #[test]
    fn the_pending_list_is_bounded() {
        let mut d = Deferred::new();
        for p in 0..MAX_PENDING as u16 {
            assert!(d.offer(key(p), 10, b"s"));
        }
        assert!(!d.offer(key(u16::MAX), 10, b"s"));
        assert_eq!(d.len(), MAX_PENDING);
        // Cancel-and-offer churn does not grow the queue without bound.
        for p in 0..10 * MAX_PENDING as u16 {
            d.cancel(&key(p % MAX_PENDING as u16));
            d.offer(key(p % MAX_PENDING as u16), 10, b"s");
        }
        assert!(d.queue.len() <= 2 * MAX_PENDING + 1);
    }
}
