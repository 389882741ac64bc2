//! Fragment state (RFC 4787 REQ-14): the first fragment of a datagram decides its translation;
//! later fragments (matched by source, destination, protocol and IP ID) get the same one, in or
//! out of order. Fragments that arrive before their first fragment are buffered. All state is
//! bounded in count and time, so a flood of incomplete fragments cannot disturb other traffic.

use std::collections::{BTreeMap, VecDeque};

use super::config::NicId;
use super::counters::DropReason;
use crate::wire::IpVersion;

/// Identifies a fragmented datagram as it arrived at the gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct FragKey {
    /// True for datagrams entering from outside.
    pub inbound: bool,
    /// The sending NIC for datagrams from inside (`u32::MAX` from outside): two networks may use
    /// the same private addresses, and a NIC that loses its block must lose its datagrams too.
    pub nic: u32,
    pub version: IpVersion,
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub proto: u8,
    pub ident: u32,
}

/// Where the gateway sends a datagram's fragments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FragTarget {
    Outside,
    Nic(NicId),
}

/// The flow a datagram's first fragment was translated with. Later fragments follow the first
/// only while that flow is live (docs/behaviour.md §4 "Fragments"): state for a datagram must
/// not let anything reach a NIC, or leave in its name, after its flow has ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FlowRef {
    /// The flow's family table (`true`: IPv6) and slab slot.
    pub v6: bool,
    pub slot: u32,
    /// The flow's identity, checked against the slot (which may have been reused since).
    pub nat_ip: u16,
    pub nat_port: u16,
    pub remote: [u8; 16],
    pub remote_port: u16,
    pub proto: u8,
}

/// What happens to the later fragments of a datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FragAction {
    /// Rewrite addresses (only the ones given) and forward.
    Translate {
        new_src: Option<[u8; 16]>,
        new_dst: Option<[u8; 16]>,
        target: FragTarget,
        /// The flow the first fragment was translated with, when there was one.
        flow: Option<FlowRef>,
    },
    /// The first fragment was dropped; so are the rest.
    Drop,
}

struct Entry {
    action: Option<FragAction>,
    pending: Vec<Vec<u8>>,
    expires_at_ns: u64,
}

/// Bounded fragment state.
pub(crate) struct FragmentTracker {
    entries: BTreeMap<FragKey, Entry>,
    /// Creation order; expiry times are monotonic because the timeout is constant.
    order: VecDeque<(u64, FragKey)>,
    buffered: u32,
    max_entries: u32,
    max_buffered: u32,
    timeout_ns: u64,
}

/// Result of offering a later fragment to the tracker.
pub(crate) enum LaterFragment {
    /// Apply this action now.
    Act(FragAction),
    /// Buffered until the first fragment arrives.
    Buffered,
    /// Refused: limits reached.
    Refused(DropReason),
}

impl FragmentTracker {
    pub(crate) fn new(max_entries: u32, max_buffered: u32, timeout_ms: u64) -> Self {
        FragmentTracker {
            entries: BTreeMap::new(),
            order: VecDeque::new(),
            buffered: 0,
            max_entries,
            max_buffered,
            timeout_ns: timeout_ms.saturating_mul(1_000_000),
        }
    }

    fn ensure(&mut self, key: FragKey, now_ns: u64) -> Option<&mut Entry> {
        if !self.entries.contains_key(&key) {
            if self.entries.len() as u32 >= self.max_entries {
                return None;
            }
            let expires = now_ns.saturating_add(self.timeout_ns);
            self.entries.insert(
                key,
                Entry {
                    action: None,
                    pending: Vec::new(),
                    expires_at_ns: expires,
                },
            );
            self.order.push_back((expires, key));
        }
        self.entries.get_mut(&key)
    }

    /// True when state for `key` exists or there is room to create it.
    pub(crate) fn can_track(&self, key: &FragKey) -> bool {
        self.entries.contains_key(key) || (self.entries.len() as u32) < self.max_entries
    }

    /// Records the decision taken for a first fragment and returns fragments that were waiting
    /// for it. `None` when the table is full (later fragments will then be refused).
    pub(crate) fn first_fragment(
        &mut self,
        key: FragKey,
        action: FragAction,
        now_ns: u64,
    ) -> Vec<Vec<u8>> {
        let Some(e) = self.ensure(key, now_ns) else {
            return Vec::new();
        };
        e.action = Some(action);
        let pending = std::mem::take(&mut e.pending);
        self.buffered -= pending.len() as u32;
        pending
    }

    /// Decides a later fragment: act now if the first fragment was seen, else buffer it.
    pub(crate) fn later_fragment(
        &mut self,
        key: FragKey,
        packet: &[u8],
        now_ns: u64,
    ) -> LaterFragment {
        if let Some(e) = self.entries.get(&key)
            && let Some(a) = e.action
        {
            return LaterFragment::Act(a);
        }
        if self.buffered >= self.max_buffered {
            return LaterFragment::Refused(DropReason::FragmentLimit);
        }
        let Some(e) = self.ensure(key, now_ns) else {
            return LaterFragment::Refused(DropReason::FragmentLimit);
        };
        e.pending.push(packet.to_vec());
        self.buffered += 1;
        LaterFragment::Buffered
    }

    /// Forgets datagrams whose time is up; returns how many buffered fragments died unmatched.
    pub(crate) fn expire(&mut self, now_ns: u64) -> u64 {
        let mut dropped = 0;
        while let Some(&(t, key)) = self.order.front() {
            if t > now_ns {
                break;
            }
            self.order.pop_front();
            if let Some(e) = self.entries.get(&key)
                && e.expires_at_ns == t
                && let Some(e) = self.entries.remove(&key)
            {
                dropped += e.pending.len() as u64;
                self.buffered -= e.pending.len() as u32;
            }
        }
        dropped
    }

    /// Drops the translation of datagrams headed to or sent by a NIC that lost its block: their
    /// later fragments must neither reach it nor leave with its old NAT address.
    pub(crate) fn forget_nic(&mut self, nic: NicId) {
        for (key, e) in self.entries.iter_mut() {
            let to_nic = matches!(e.action, Some(FragAction::Translate { target: FragTarget::Nic(n), .. }) if n == nic);
            let from_nic = !key.inbound && key.nic == nic.0;
            if to_nic || from_nic {
                e.action = Some(FragAction::Drop);
            }
        }
    }

    /// When the next datagram state expires.
    pub(crate) fn next_deadline_ns(&self) -> Option<u64> {
        self.order.front().map(|&(t, _)| t)
    }

    /// Datagrams tracked now.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}
