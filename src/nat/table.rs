//! Connection tracking storage for one address family: a slab of compact flows, two hash indexes
//! of slab positions (outbound tuple and inbound reply tuple), a lazily validated timer heap, and
//! the port free-sets and endpoint mappings of the allocator.
//!
//! Timers: a flow on the timer (flag [`TIMED`]) has at least one heap entry no later than its
//! real deadline, which is computed from its timer class and last refresh, never stored. A
//! refresh only rewrites the flow's `last_active_ns` (no heap work on the per-packet path); when
//! an entry reaches the top of the heap the flow's real deadline is recomputed and, if the flow
//! was refreshed, the entry is pushed again at the real deadline. A refresh that makes the
//! deadline earlier (a TCP flow moving to the transitory timer) pushes a new entry at once. So
//! the heap always yields the timed flow with the least (real deadline, slot): expiry stays
//! exact. Entries of freed flows and superseded entries stay in the heap until they reach the
//! top; when they would make the heap grow, it is rebuilt from the timed flows instead (see
//! [`FlowTable::push_timer`]). Keeping no deadline in the flow saves it 8 bytes.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::hash::{BuildHasher, Hash, Hasher};

use foldhash::fast::FixedState;
use hashbrown::HashMap;

use super::addr::Addr;
use super::config::NicId;
use super::index::SlotIndex;
use super::mapping::{Endpoint, Mappings};
use super::ports::{PortSet, port_start_offset};
use super::profile::LimitScope;
use crate::rng::mix64;

/// "No slot" marker for links.
pub(crate) const NIL: u32 = u32::MAX;

/// Timer classes; a flow is on exactly one list.
pub(crate) mod class {
    pub const TCP_ESTABLISHED: u8 = 0;
    pub const TCP_TRANSITORY: u8 = 1;
    pub const UDP: u8 = 2;
    pub const UDP_STREAM: u8 = 3;
    pub const ICMP: u8 = 4;
    pub const HOLD_TCP_FIN: u8 = 5;
    pub const HOLD_TCP_RST: u8 = 6;
    pub const HOLD_UDP: u8 = 7;
    pub const HOLD_ICMP: u8 = 8;
    /// A TCP flow after an RST (the transitory timer, or `linux`'s 10 s CLOSE).
    pub const TCP_RESET: u8 = 9;
    /// A TCP flow reset before any packet came back (`linux`: conntrack deletes such an entry
    /// at once); its timeout is 0, so it ends at the instant of the RST.
    pub const TCP_RESET_UNANSWERED: u8 = 10;
    pub const COUNT: usize = 11;
    /// Marks a free slab slot.
    pub const FREE: u8 = 255;

    pub fn is_hold(c: u8) -> bool {
        (HOLD_TCP_FIN..=HOLD_ICMP).contains(&c)
    }
}

/// UDP flag: a packet came from outside (Linux's "stream" timer).
pub(crate) const UDP_SAW_INBOUND: u8 = 0x01;

/// Flow flag: indexed, matches packets (clear while its port is only held).
pub(crate) const LIVE: u8 = 0x01;
/// Flow flag: the remote is one of the gateway's own NAT addresses (hairpin).
pub(crate) const HAIRPIN: u8 = 0x02;
/// Flow flag: a NAT64 flow; its inside address is a handle into the gateway's IPv6 interner.
pub(crate) const NAT64: u8 = 0x04;
/// Flow flag: the flow is listed in its scope's closed-flow list (TIME_WAIT takeover).
pub(crate) const CLOSED_LISTED: u8 = 0x08;
/// Flow flag (TCP): a packet other than an RST came back from outside (conntrack's
/// `IPS_SEEN_REPLY`).
pub(crate) const SEEN_REPLY: u8 = 0x10;
/// Flow flag: the flow is on the timer: some heap entry is no later than its real deadline, so
/// a refresh that does not make the deadline earlier needs no new one (see [`FlowTable::touch`]).
pub(crate) const TIMED: u8 = 0x20;

/// One tracked flow. 32 bytes for IPv4, 56 for IPv6.
///
/// `repr(C)` keeps the fields an established packet reads and writes (the lookup key, the
/// translation, the TCP state and timer class, the last refresh) together in the first 32
/// bytes of an IPv4 flow: a flow at a random slab position then lies in one cache line far
/// more often than when the compiler spread the key over the whole struct (the lookup's flow
/// load is the per-packet cost at 64k flows). At 32 bytes an IPv4 flow never straddles two
/// cache lines. What only some flows need lives beside the slab, not in it: the close time
/// (`closed_at_ns`) and the TCP sequence end for TIME_WAIT takeover (`seq_end`).
#[derive(Clone, Copy, Debug, Default)]
#[repr(C)]
pub(crate) struct Flow<A> {
    pub inside: A,
    pub remote: A,
    pub inside_port: u16,
    pub remote_port: u16,
    pub nic: u32,
    pub proto: u8,
    /// TCP state bits or UDP flags.
    pub state: u8,
    pub class: u8,
    /// [`LIVE`], [`HAIRPIN`], [`NAT64`], [`CLOSED_LISTED`], [`SEEN_REPLY`], [`TIMED`].
    pub flags: u8,
    /// Index into the family's NAT IP list.
    pub nat_ip: u16,
    pub nat_port: u16,
    /// Last refresh; for a free slot, the next free slot.
    pub last_active_ns: u64,
}

// The memory budget of docs/nat-core.md ("Flow table layout and memory") counts on these sizes.
const _: () = assert!(std::mem::size_of::<Flow<[u8; 4]>>() == 32);
const _: () = assert!(std::mem::size_of::<Flow<[u8; 16]>>() == 56);

impl<A> Flow<A> {
    pub(crate) fn is_live(&self) -> bool {
        self.flags & LIVE != 0
    }
}

/// Timeouts per timer class and the optional aging-scan period.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Timeouts {
    pub ns: [u64; class::COUNT],
    pub scan_ns: u64,
}

impl Timeouts {
    /// When a flow of `cls` last active at `last_ns` expires (rounded up to the aging scan for
    /// live classes; holds are exact).
    #[inline]
    pub(crate) fn deadline(&self, cls: u8, last_ns: u64) -> u64 {
        let d = last_ns.saturating_add(self.ns[usize::from(cls) % class::COUNT]);
        if self.scan_ns > 0 && !class::is_hold(cls) {
            d.div_ceil(self.scan_ns).saturating_mul(self.scan_ns)
        } else {
            d
        }
    }
}

/// A timer heap entry, packed to 12 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(C, packed(4))]
struct TimerEntry {
    at_ns: u64,
    idx: u32,
}

/// Key of a port free-set: the scope within which a NAT port may not repeat.
///
/// NIC, protocol and remote port share one word (`nic << 32 | proto << 16 | remote_port`):
/// built field by field, the key was stored as a u32, a u16 and a u8 and then read back by the
/// hasher as wider words, which the CPU cannot forward from the narrower stores (a
/// store-forwarding stall that cost a refused packet about a tenth of its time).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ScopeKey<A> {
    nic_proto_port: u64,
    remote: A,
}

/// The NIC's block as the allocator needs it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BlockSpan {
    pub start: u16,
    /// Usable ports (the block length, minus one under the dpservice quirk).
    pub usable: u32,
}

/// A port [`FlowTable::allocate_port`] chose, for [`FlowTable::insert`] to store the flow with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Allocated {
    pub port: u16,
    /// The endpoint had no mapping: the new flow holds it.
    new_mapping: bool,
}

/// Why no port could be allocated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Exhausted;

/// Which of a table's two indexes a lookup uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// Outbound tuple → flow.
    Out,
    /// Inbound reply tuple → flow.
    In,
}

/// Flow storage and allocator state of one family.
pub(crate) struct FlowTable<A: Addr> {
    pub flows: Vec<Flow<A>>,
    free_head: u32,
    /// Slots in use (live and held flows).
    pub used: u32,
    out_index: SlotIndex,
    in_index: SlotIndex,
    timers: BinaryHeap<Reverse<TimerEntry>>,
    timeouts: Timeouts,
    hasher: FixedState,
    /// Endpoint mappings (behaviour §4 "Port choice").
    mappings: Mappings<A>,
    pub scopes: HashMap<ScopeKey<A>, PortSet, FixedState>,
    /// Closed TCP flows per scope key, for TIME_WAIT takeover (only filled when the profile
    /// allows takeover). Entries may be stale (flow freed, slot reused, flow reopened): they are
    /// validated when read and pruned when the list would grow; a list goes when its scope's
    /// last port is released.
    closed: HashMap<ScopeKey<A>, Vec<u32>, FixedState>,
    /// When each closed TCP flow closed (second FIN or RST), by slot: its port hold counts from
    /// here (docs/behaviour.md §5). Only flows that closed have an entry, so a table of open
    /// flows pays nothing for it (a field would cost every flow 8 bytes). Never iterated.
    closed_at_ns: HashMap<u32, u64, FixedState>,
    /// By slot, for TCP flows: the end of the furthest outbound sequence space seen (seq +
    /// length, SYN and FIN counting one), Linux's `seen[ORIGINAL].td_end`, for TIME_WAIT
    /// takeover. Kept only when the profile allows takeover (empty otherwise), so the other
    /// profiles pay neither its 4 bytes per flow nor its write per packet.
    seq_end: Vec<u32>,
}

impl<A: Addr> FlowTable<A> {
    pub(crate) fn new(seed: u64, timeouts: Timeouts) -> Self {
        let hasher = FixedState::with_seed(mix64(seed ^ 0x6E61_7473_696D));
        FlowTable {
            flows: Vec::new(),
            free_head: NIL,
            used: 0,
            out_index: SlotIndex::default(),
            in_index: SlotIndex::default(),
            timers: BinaryHeap::new(),
            timeouts,
            hasher: hasher.clone(),
            mappings: Mappings::new(hasher.clone()),
            scopes: HashMap::with_hasher(hasher.clone()),
            closed: HashMap::with_hasher(hasher.clone()),
            closed_at_ns: HashMap::with_hasher(hasher.clone()),
            seq_end: Vec::new(),
        }
    }

    #[inline]
    fn out_hash(
        h: &FixedState,
        nic: u32,
        proto: u8,
        inside: &A,
        iport: u16,
        remote: &A,
        rport: u16,
    ) -> u64 {
        // Keys are packed into integer words (NIC ids stay below 2^24) so hashing is a few
        // multiplies rather than a byte-slice walk.
        let mut s = h.build_hasher();
        inside.write_hash(&mut s);
        remote.write_hash(&mut s);
        s.write_u64(
            u64::from(nic) << 40
                | u64::from(proto) << 32
                | u64::from(iport) << 16
                | u64::from(rport),
        );
        s.finish()
    }

    #[inline]
    fn in_hash(
        h: &FixedState,
        nat_ip: u16,
        nat_port: u16,
        remote: &A,
        rport: u16,
        proto: u8,
    ) -> u64 {
        let mut s = h.build_hasher();
        remote.write_hash(&mut s);
        s.write_u64(
            u64::from(nat_ip) << 40
                | u64::from(nat_port) << 24
                | u64::from(rport) << 8
                | u64::from(proto),
        );
        s.finish()
    }

    fn out_hash_of(h: &FixedState, f: &Flow<A>) -> u64 {
        Self::out_hash(
            h,
            f.nic,
            f.proto,
            &f.inside,
            f.inside_port,
            &f.remote,
            f.remote_port,
        )
    }

    fn in_hash_of(h: &FixedState, f: &Flow<A>) -> u64 {
        Self::in_hash(h, f.nat_ip, f.nat_port, &f.remote, f.remote_port, f.proto)
    }

    /// The outbound index hash of a tuple (for [`FlowTable::prefetch_entry`]).
    #[inline]
    pub(crate) fn out_hash_for(
        &self,
        nic: u32,
        proto: u8,
        inside: &A,
        iport: u16,
        remote: &A,
        rport: u16,
    ) -> u64 {
        Self::out_hash(&self.hasher, nic, proto, inside, iport, remote, rport)
    }

    /// The inbound index hash of a reply tuple (for [`FlowTable::prefetch_entry`]).
    #[inline]
    pub(crate) fn in_hash_for(
        &self,
        nat_ip: u16,
        nat_port: u16,
        remote: &A,
        rport: u16,
        proto: u8,
    ) -> u64 {
        Self::in_hash(&self.hasher, nat_ip, nat_port, remote, rport, proto)
    }

    fn index(&self, lookup: Lookup) -> &SlotIndex {
        match lookup {
            Lookup::Out => &self.out_index,
            Lookup::In => &self.in_index,
        }
    }

    /// Prefetches the index entry a `lookup` of `hash` reads first.
    #[inline]
    pub(crate) fn prefetch_entry(&self, lookup: Lookup, hash: u64) {
        self.index(lookup).prefetch(hash);
    }

    /// Prefetches the flow a `lookup` of `hash` will most likely compare, and returns its slot
    /// (the first whose tag matches; the key is not checked) or [`NIL`].
    #[inline]
    pub(crate) fn prefetch_flow(&self, lookup: Lookup, hash: u64) -> u32 {
        match self.index(lookup).candidate(hash) {
            Some(i) => {
                if let Some(f) = self.flows.get(i as usize) {
                    super::prefetch::prefetch_all(f);
                }
                i
            }
            None => NIL,
        }
    }

    /// True when slot `idx` holds the live flow of this outbound tuple: then it is the slot
    /// [`FlowTable::find_out`] returns, since no two live flows share an outbound tuple.
    #[inline]
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn out_flow_is(
        &self,
        idx: u32,
        nic: u32,
        proto: u8,
        inside: &A,
        iport: u16,
        remote: &A,
        rport: u16,
    ) -> bool {
        self.flows.get(idx as usize).is_some_and(|f| {
            f.is_live() && Self::out_key_eq(f, nic, proto, inside, iport, remote, rport)
        })
    }

    /// True when slot `idx` holds the live flow of this reply tuple (see
    /// [`FlowTable::out_flow_is`]).
    #[inline]
    pub(crate) fn in_flow_is(
        &self,
        idx: u32,
        nat_ip: u16,
        nat_port: u16,
        remote: &A,
        rport: u16,
        proto: u8,
    ) -> bool {
        self.flows.get(idx as usize).is_some_and(|f| {
            f.is_live() && Self::in_key_eq(f, nat_ip, nat_port, remote, rport, proto)
        })
    }

    #[inline]
    fn out_key_eq(
        f: &Flow<A>,
        nic: u32,
        proto: u8,
        inside: &A,
        iport: u16,
        remote: &A,
        rport: u16,
    ) -> bool {
        f.nic == nic
            && f.proto == proto
            && f.inside_port == iport
            && f.remote_port == rport
            && f.inside == *inside
            && f.remote == *remote
    }

    #[inline]
    fn in_key_eq(
        f: &Flow<A>,
        nat_ip: u16,
        nat_port: u16,
        remote: &A,
        rport: u16,
        proto: u8,
    ) -> bool {
        f.nat_port == nat_port
            && f.remote_port == rport
            && f.nat_ip == nat_ip
            && f.proto == proto
            && f.remote == *remote
    }

    /// The live flow opened by `nic` for this outbound tuple.
    #[inline]
    pub(crate) fn find_out(
        &self,
        nic: u32,
        proto: u8,
        inside: &A,
        iport: u16,
        remote: &A,
        rport: u16,
    ) -> Option<u32> {
        let hash = self.out_hash_for(nic, proto, inside, iport, remote, rport);
        self.find_out_hashed(hash, nic, proto, inside, iport, remote, rport)
    }

    /// [`FlowTable::find_out`] with the tuple's [`FlowTable::out_hash_for`] already computed
    /// (a miss passes it on to [`FlowTable::insert`]).
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub(crate) fn find_out_hashed(
        &self,
        hash: u64,
        nic: u32,
        proto: u8,
        inside: &A,
        iport: u16,
        remote: &A,
        rport: u16,
    ) -> Option<u32> {
        debug_assert_eq!(
            hash,
            self.out_hash_for(nic, proto, inside, iport, remote, rport)
        );
        let flows = &self.flows;
        self.out_index.find(hash, |i| {
            Self::out_key_eq(&flows[i as usize], nic, proto, inside, iport, remote, rport)
        })
    }

    /// The live flow whose reply tuple is exactly this inbound tuple.
    #[inline]
    pub(crate) fn find_in(
        &self,
        nat_ip: u16,
        nat_port: u16,
        remote: &A,
        rport: u16,
        proto: u8,
    ) -> Option<u32> {
        let hash = Self::in_hash(&self.hasher, nat_ip, nat_port, remote, rport, proto);
        let flows = &self.flows;
        self.in_index.find(hash, |i| {
            Self::in_key_eq(&flows[i as usize], nat_ip, nat_port, remote, rport, proto)
        })
    }

    /// Stores a new live flow, indexes it and starts its timer; returns its slot and deadline.
    /// `out_hash` is the flow's [`FlowTable::out_hash_for`], computed by the lookup that missed;
    /// `allocated` is its port from [`FlowTable::allocate_port`], the last table call before.
    pub(crate) fn insert(
        &mut self,
        mut flow: Flow<A>,
        out_hash: u64,
        allocated: Allocated,
    ) -> (u32, u64) {
        debug_assert_eq!(out_hash, Self::out_hash_of(&self.hasher, &flow));
        debug_assert_eq!(flow.nat_port, allocated.port);
        flow.flags = (flow.flags | LIVE) & !TIMED;
        let idx = if self.free_head != NIL {
            self.free_head
        } else {
            self.flows.len() as u32
        };
        // Both indexes hold exactly the live flows, so they grow together; they are rebuilt
        // before the new flow is stored, from one in-order walk of the slab.
        debug_assert_eq!(self.out_index.len(), self.in_index.len());
        if let Some(geometry) = self.out_index.growth_for(idx) {
            self.rebuild_indexes(geometry);
        }
        if idx == self.flows.len() as u32 {
            self.flows.push(flow);
        } else {
            self.free_head = self.flows[idx as usize].last_active_ns as u32;
            self.flows[idx as usize] = flow;
        }
        self.used += 1;
        if allocated.new_mapping {
            self.mappings.create(&self.flows, idx);
        }
        let h = &self.hasher;
        self.out_index.insert(out_hash, idx);
        self.in_index.insert(Self::in_hash_of(h, &flow), idx);
        let d = self.timeouts.deadline(flow.class, flow.last_active_ns);
        self.schedule(idx, d);
        (idx, d)
    }

    /// Rebuilds both indexes in `geometry` from the live flows, in one walk of the slab.
    fn rebuild_indexes(&mut self, geometry: (usize, u32)) {
        self.out_index.reset(geometry);
        self.in_index.reset(geometry);
        let h = &self.hasher;
        for (i, f) in self.flows.iter().enumerate().filter(|(_, f)| f.is_live()) {
            self.out_index.insert(Self::out_hash_of(h, f), i as u32);
            self.in_index.insert(Self::in_hash_of(h, f), i as u32);
        }
    }

    /// Puts a flow that is not on the timer on it, at `deadline_ns` (its real deadline).
    #[inline]
    fn schedule(&mut self, idx: u32, deadline_ns: u64) {
        let f = &mut self.flows[idx as usize];
        debug_assert_eq!(f.flags & TIMED, 0);
        debug_assert_eq!(
            deadline_ns,
            self.timeouts.deadline(f.class, f.last_active_ns)
        );
        f.flags |= TIMED;
        self.push_timer(deadline_ns, idx);
    }

    /// Pushes a timer entry for the timed flow `idx`, whose real deadline is `at_ns`. When the
    /// heap is full and at least a fifth of its entries are stale (flows freed, or superseded
    /// by an earlier deadline), it is rebuilt from the timed flows, one entry each at its real
    /// deadline, instead of growing. So the heap only grows while at most a fifth of it is
    /// stale, and its capacity stays under 2.5 entries per flow at the most flows the table
    /// has held (it never shrinks; the proptest below checks this bound). Between two rebuilds come at least a quarter as many pushes as there
    /// are flows in use, so a rebuild's walk of the slab is amortised over them.
    fn push_timer(&mut self, at_ns: u64, idx: u32) {
        let len = self.timers.len();
        let in_use = self.used as usize;
        if len == self.timers.capacity() && len >= 16 && len > in_use + in_use / 4 {
            self.rebuild_timers();
            return;
        }
        self.timers.push(Reverse(TimerEntry { at_ns, idx }));
    }

    /// Replaces the heap by one entry per timed flow, at its real deadline.
    fn rebuild_timers(&mut self) {
        let mut entries = std::mem::take(&mut self.timers).into_vec();
        entries.clear();
        let t = &self.timeouts;
        entries.extend(
            self.flows
                .iter()
                .enumerate()
                .filter(|(_, f)| f.class != class::FREE && f.flags & TIMED != 0)
                .map(|(i, f)| {
                    Reverse(TimerEntry {
                        at_ns: t.deadline(f.class, f.last_active_ns),
                        idx: i as u32,
                    })
                }),
        );
        self.timers = BinaryHeap::from(entries);
    }

    /// The exact next deadline and its flow, after discarding stale entries and re-queuing
    /// refreshed flows at their real deadlines.
    pub(crate) fn peek_due(&mut self) -> Option<(u64, u32)> {
        loop {
            let Reverse(e) = *self.timers.peek()?;
            let (at, idx) = (e.at_ns, e.idx);
            let f = &self.flows[idx as usize];
            if f.class == class::FREE || f.flags & TIMED == 0 {
                self.timers.pop();
                continue;
            }
            let real = self.timeouts.deadline(f.class, f.last_active_ns);
            // Every timed flow has an entry no later than its real deadline, so the top one
            // is never later than its flow's.
            debug_assert!(at <= real);
            if real != at {
                self.timers.pop();
                self.push_timer(real, idx);
                continue;
            }
            return Some((at, idx));
        }
    }

    /// The earliest timer entry, valid or stale: a time no later than the next real deadline,
    /// found without tidying the heap.
    pub(crate) fn due_lower_bound(&self) -> Option<u64> {
        self.timers.peek().map(|Reverse(e)| e.at_ns)
    }

    /// Removes the entry [`FlowTable::peek_due`] returned; the flow then has no timer until
    /// it is touched again.
    pub(crate) fn pop_due(&mut self) {
        if let Some(Reverse(e)) = self.timers.pop() {
            self.clear_timer(e.idx);
        }
    }

    /// The flow is off the timer; its remaining entries are stale.
    fn clear_timer(&mut self, idx: u32) {
        self.flows[idx as usize].flags &= !TIMED;
    }

    /// Marks flows whose remote is `nat` as hairpin flows (a NAT address was added).
    pub(crate) fn mark_hairpin(&mut self, nat: &A) {
        for f in self.flows.iter_mut() {
            if f.class != class::FREE && f.remote == *nat {
                f.flags |= HAIRPIN;
            }
        }
    }

    /// Removes a flow from both indexes (it stops matching packets) and marks it not live.
    pub(crate) fn unindex(&mut self, idx: u32) {
        let f = self.flows[idx as usize];
        if !f.is_live() {
            return;
        }
        let h = &self.hasher;
        let flows = &self.flows;
        self.out_index.remove(Self::out_hash_of(h, &f), idx, |i| {
            Self::out_hash_of(h, &flows[i as usize])
        });
        self.in_index.remove(Self::in_hash_of(h, &f), idx, |i| {
            Self::in_hash_of(h, &flows[i as usize])
        });
        self.flows[idx as usize].flags &= !LIVE;
    }

    /// Frees a slot (the flow must be unindexed). Its heap entries become stale.
    pub(crate) fn free(&mut self, idx: u32) {
        let f = &mut self.flows[idx as usize];
        f.class = class::FREE;
        f.flags = 0;
        f.last_active_ns = u64::from(self.free_head);
        self.free_head = idx;
        self.used -= 1;
        if !self.closed_at_ns.is_empty() {
            self.closed_at_ns.remove(&idx);
        }
    }

    /// Records that the TCP flow in `idx` closed at `at_ns`.
    pub(crate) fn set_closed_at(&mut self, idx: u32, at_ns: u64) {
        self.closed_at_ns.insert(idx, at_ns);
    }

    /// When the TCP flow in `idx` last closed ([`FlowTable::set_closed_at`]); `None` if it
    /// never did.
    pub(crate) fn closed_at(&self, idx: u32) -> Option<u64> {
        self.closed_at_ns.get(&idx).copied()
    }

    /// Starts tracking the TCP flow in `idx`'s sequence space at `end` (for TIME_WAIT
    /// takeover; see `seq_end`).
    pub(crate) fn set_seq_end(&mut self, idx: u32, end: u32) {
        let i = idx as usize;
        if i >= self.seq_end.len() {
            self.seq_end.resize(self.flows.len().max(i + 1), 0);
        }
        self.seq_end[i] = end;
    }

    /// Moves the TCP flow in `idx`'s sequence end to `end` if that lies beyond it (sequence
    /// space wraps, so "beyond" is modulo 2^32).
    pub(crate) fn advance_seq_end(&mut self, idx: u32, end: u32) {
        match self.seq_end.get_mut(idx as usize) {
            Some(e) if (end.wrapping_sub(*e) as i32) > 0 => *e = end,
            Some(_) => {}
            None => self.set_seq_end(idx, end),
        }
    }

    /// Records activity: the flow now runs on `class`'s timer from `at_ns`. Returns the new
    /// deadline. Costs no heap work unless the deadline moved earlier.
    ///
    /// A refresh on the flow's own class at or after its last refresh cannot move the deadline
    /// earlier (deadlines grow with the refresh time), so it skips recomputing the old deadline:
    /// the established packet's path then stays within the flow's hot fields.
    #[inline]
    pub(crate) fn touch(&mut self, idx: u32, class: u8, at_ns: u64) -> u64 {
        let t = &self.timeouts;
        let f = &mut self.flows[idx as usize];
        let timed = f.flags & TIMED != 0;
        let unmoved = f.class == class && timed && at_ns >= f.last_active_ns;
        let old_deadline = if timed && !unmoved {
            t.deadline(f.class, f.last_active_ns)
        } else {
            u64::MAX
        };
        f.last_active_ns = at_ns;
        f.class = class;
        let d = t.deadline(class, at_ns);
        if !unmoved && d < old_deadline {
            // Not on the timer, or the deadline moved earlier than every entry the flow may
            // have: it needs one at the new deadline.
            f.flags |= TIMED;
            self.push_timer(d, idx);
        }
        d
    }

    /// Indices of all flows (live or held) of `nic`, in slab order.
    pub(crate) fn flows_of_nic(&self, nic: u32) -> Vec<u32> {
        self.flows
            .iter()
            .enumerate()
            .filter(|(_, f)| f.class != class::FREE && f.nic == nic)
            .map(|(i, _)| i as u32)
            .collect()
    }

    fn scope_key(scope: LimitScope, nic: u32, proto: u8, remote: &A, rport: u16) -> ScopeKey<A> {
        let (remote, remote_port) = match scope {
            LimitScope::Nic => (A::default(), 0),
            LimitScope::RemoteIp => (*remote, 0),
            LimitScope::RemoteEndpoint => (*remote, rport),
        };
        ScopeKey {
            nic_proto_port: u64::from(nic) << 32 | u64::from(proto) << 16 | u64::from(remote_port),
            remote,
        }
    }

    /// Chooses a NAT port for a new flow (behaviour §4 "Port choice"): the inside endpoint's mapped
    /// port when it is free in the scope, else the first free port from a seeded hash of the
    /// endpoint. A full scope is refused in O(1). `avoid` is a port the flow must not get: a
    /// hairpin flow to the block's own NAT IP must not be translated to the very endpoint it is
    /// addressed to (it would be its own reply).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn allocate_port(
        &mut self,
        scope: LimitScope,
        seed: u64,
        span: BlockSpan,
        nic: u32,
        proto: u8,
        inside: &A,
        iport: u16,
        remote: &A,
        rport: u16,
        avoid: Option<u16>,
    ) -> Result<Allocated, Exhausted> {
        let endpoint = Endpoint {
            nic,
            proto,
            inside: *inside,
            port: iport,
        };
        let in_block = |p: u16| {
            let off = u32::from(p.wrapping_sub(span.start));
            (off < span.usable).then_some(off as u16)
        };
        if scope == LimitScope::Nic
            && let Some(m) = self.mappings.find(&self.flows, &endpoint)
        {
            if avoid == Some(m.nat_port) {
                return Err(Exhausted);
            }
            // The mapping owns its port across all remotes: reuse it unconditionally.
            self.mappings.add_ref(&self.flows, m);
            return Ok(Allocated {
                port: m.nat_port,
                new_mapping: false,
            });
        }
        let key = Self::scope_key(scope, nic, proto, remote, rport);
        let set = self.scopes.entry(key).or_insert_with(PortSet::new);
        if set.len() >= span.usable {
            if set.len() == 0 {
                self.scopes.remove(&key);
            }
            return Err(Exhausted);
        }
        // In the other scopes the mapping only names a preferred port, so a full scope was
        // refused above without looking it up (a refusal stays a few loads).
        let found = match scope {
            LimitScope::Nic => None,
            _ => self.mappings.find(&self.flows, &endpoint),
        };
        let mapped = found.map(|m| m.nat_port);
        // The avoided port is held for the search only.
        let avoided = avoid.and_then(in_block).filter(|&off| !set.contains(off));
        if let Some(off) = avoided {
            set.insert(off, span.usable);
        }
        let preferred = mapped.and_then(in_block).filter(|&off| !set.contains(off));
        let chosen = match preferred {
            Some(off) => Some(off),
            None => {
                let start =
                    port_start_offset(seed, NicId(nic), proto, inside.to_ip(), iport, span.usable);
                set.first_free_from(start, span.usable)
            }
        };
        if let Some(off) = avoided {
            set.remove(off);
        }
        let Some(off) = chosen else {
            if set.len() == 0 {
                self.scopes.remove(&key);
            }
            return Err(Exhausted);
        };
        set.insert(off, span.usable);
        let port = span.start + off;
        if let Some(m) = found {
            self.mappings.add_ref(&self.flows, m);
        }
        Ok(Allocated {
            port,
            new_mapping: found.is_none(),
        })
    }

    /// Returns a flow's port to its scope (and drops its mapping reference).
    pub(crate) fn release_port(&mut self, scope: LimitScope, span_start: u16, idx: u32) {
        let f = self.flows[idx as usize];
        let mapping_gone = self.mappings.release(&self.flows, idx);
        let port_to_free = match scope {
            LimitScope::Nic => mapping_gone,
            _ => Some(f.nat_port),
        };
        if let Some(port) = port_to_free {
            let key = Self::scope_key(scope, f.nic, f.proto, &f.remote, f.remote_port);
            if let Some(set) = self.scopes.get_mut(&key) {
                set.remove(port.wrapping_sub(span_start));
                if set.len() == 0 {
                    self.scopes.remove(&key);
                    if !self.closed.is_empty() {
                        self.closed.remove(&key);
                    }
                }
            }
        }
    }

    /// Lists a TCP flow that just closed as a takeover candidate of its scope.
    pub(crate) fn list_closed(&mut self, scope: LimitScope, idx: u32) {
        let f = self.flows[idx as usize];
        if f.flags & CLOSED_LISTED != 0 {
            return;
        }
        self.flows[idx as usize].flags |= CLOSED_LISTED;
        let key = Self::scope_key(scope, f.nic, f.proto, &f.remote, f.remote_port);
        let flows = &self.flows;
        let list = self.closed.entry(key).or_default();
        if list.len() == list.capacity() && !list.is_empty() {
            // Prune stale entries before growing: amortised O(1) per close.
            list.retain(|&i| Self::closed_candidate(flows, scope, &key, i));
        }
        list.push(idx);
    }

    fn closed_candidate(flows: &[Flow<A>], scope: LimitScope, key: &ScopeKey<A>, i: u32) -> bool {
        let f = &flows[i as usize];
        f.class != class::FREE
            && f.flags & CLOSED_LISTED != 0
            && Self::scope_key(scope, f.nic, f.proto, &f.remote, f.remote_port) == *key
    }

    /// A closed flow in this scope whose port a new SYN with sequence end `syn_seq_end` may
    /// take over (Linux's `nf_seq_has_advanced`: the new SYN's sequence is past the closed
    /// connection's last one). `is_closed` tells the caller's TCP machine's view of a flow.
    pub(crate) fn takeover_candidate(
        &mut self,
        scope: LimitScope,
        nic: u32,
        remote: &A,
        rport: u16,
        syn_seq_end: u32,
        is_closed: impl Fn(&Flow<A>) -> bool,
    ) -> Option<u32> {
        if self.closed.is_empty() {
            return None;
        }
        let key = Self::scope_key(scope, nic, crate::wire::parse::proto::TCP, remote, rport);
        let flows = &self.flows;
        let list = self.closed.get_mut(&key)?;
        list.retain(|&i| {
            Self::closed_candidate(flows, scope, &key, i) && {
                let f = &flows[i as usize];
                !f.is_live() || is_closed(f)
            }
        });
        let seq_end = &self.seq_end;
        // Every TCP flow of a takeover profile has a sequence end from its creation; one
        // without would be no candidate (its port stays held), never a free takeover.
        let found = list.iter().copied().find(|&i| {
            let end = seq_end.get(i as usize).copied();
            debug_assert!(end.is_some(), "closed flow {i} has no sequence end");
            end.is_some_and(|end| (syn_seq_end.wrapping_sub(end) as i32) > 0)
        });
        if list.is_empty() {
            self.closed.remove(&key);
        }
        found
    }

    /// Live flows (indexed), for reports and checks.
    pub(crate) fn live_count(&self) -> usize {
        self.out_index.len()
    }

    /// Bytes allocated by this table (slab, indexes, allocator maps), for memory reports.
    pub(crate) fn allocated_bytes(&self) -> usize {
        use std::mem::size_of;
        self.flows.capacity() * size_of::<Flow<A>>()
            + self.timers.capacity() * size_of::<Reverse<TimerEntry>>()
            + self.out_index.allocated_bytes()
            + self.in_index.allocated_bytes()
            + self.mappings.allocated_bytes()
            + self.scopes.capacity() * (size_of::<(ScopeKey<A>, PortSet)>() + 1)
            + self.closed.capacity() * (size_of::<(ScopeKey<A>, Vec<u32>)>() + 1)
            + self.closed_at_ns.capacity() * (size_of::<(u32, u64)>() + 1)
            + self.seq_end.capacity() * size_of::<u32>()
            + self
                .closed
                .values()
                .map(|v| v.capacity() * 4)
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn table() -> FlowTable<[u8; 4]> {
        let mut ns = [0; class::COUNT];
        for (c, t) in ns.iter_mut().enumerate() {
            *t = [100, 10, 50, 70, 30, 20, 20, 20, 20, 10, 0][c];
        }
        FlowTable::new(7, Timeouts { ns, scan_ns: 0 })
    }

    fn add(t: &mut FlowTable<[u8; 4]>, n: u16, cls: u8, now: u64) -> u32 {
        let flow = Flow {
            inside: [10, 0, 0, 1],
            remote: [192, 0, 2, 1],
            inside_port: n,
            remote_port: 80,
            nat_port: n,
            proto: 17,
            class: cls,
            last_active_ns: now,
            ..Flow::default()
        };
        let hash = FlowTable::out_hash_of(&t.hasher, &flow);
        let allocated = Allocated {
            port: n,
            new_mapping: true,
        };
        t.insert(flow, hash, allocated).0
    }

    /// What the timer must yield: the timed flow with the least (real deadline, slot).
    fn expected(t: &FlowTable<[u8; 4]>, timed: &BTreeMap<u32, ()>) -> Option<(u64, u32)> {
        timed
            .keys()
            .map(|&i| {
                let f = &t.flows[i as usize];
                (t.timeouts.deadline(f.class, f.last_active_ns), i)
            })
            .min()
    }

    proptest! {
        /// Under random inserts, refreshes that move flows between timer classes (superseded
        /// heap entries), expiries that move a flow to a port hold and expiries that free slots
        /// for reuse (entries of freed flows), the
        /// heap yields exactly the timed flow with the least (deadline, slot), and rebuilding
        /// keeps it within a small multiple of the flows in use.
        #[test]
        fn the_timer_yields_the_least_real_deadline_and_stays_bounded(
            ops in proptest::collection::vec((0u8..8, 0u16..40, 0u8..11, 0u64..15), 1..800)
        ) {
            let mut t = table();
            let mut timed = BTreeMap::new();
            let mut now = 0u64;
            let mut next_port = 0u16;
            let mut max_used = 0usize;
            for (op, pick, cls, dt) in ops {
                now += dt;
                match op {
                    0 => {
                        next_port = next_port.wrapping_add(1);
                        let idx = add(&mut t, next_port, cls, now);
                        timed.insert(idx, ());
                    }
                    1..=6 if !timed.is_empty() => {
                        let idx = *timed.keys().nth(usize::from(pick) % timed.len()).unwrap();
                        t.touch(idx, cls, now);
                    }
                    1..=6 => {}
                    _ => {
                        while let Some((at, idx)) = t.peek_due() {
                            prop_assert_eq!(Some((at, idx)), expected(&t, &timed));
                            if at > now {
                                break;
                            }
                            t.pop_due();
                            let cls = t.flows[idx as usize].class;
                            if class::is_hold(cls) || pick % 2 == 1 {
                                timed.remove(&idx);
                                t.unindex(idx);
                                t.free(idx);
                            } else {
                                // As the gateway does: an expired live flow holds its port,
                                // back on the timer at once while its earlier entries may
                                // still be in the heap.
                                t.unindex(idx);
                                t.touch(idx, class::HOLD_UDP, at);
                            }
                        }
                        prop_assert_eq!(t.peek_due(), expected(&t, &timed));
                    }
                }
                max_used = max_used.max(t.used as usize);
                if let Some(lower) = t.due_lower_bound() {
                    prop_assert!(expected(&t, &timed).is_none_or(|(d, _)| lower <= d));
                }
                prop_assert!(t.timers.capacity() <= 2 * (max_used + max_used / 4) + 32,
                    "{} entries allocated for at most {} flows", t.timers.capacity(), max_used);
            }
        }
    }

    #[test]
    fn a_flow_moved_between_timer_classes_again_and_again_does_not_grow_the_heap() {
        let mut t = table();
        let flows: Vec<u32> = (0..4)
            .map(|n| add(&mut t, n, class::TCP_ESTABLISHED, 0))
            .collect();
        for step in 1..10_000u64 {
            let cls = if step % 2 == 0 {
                class::TCP_ESTABLISHED
            } else {
                class::TCP_TRANSITORY
            };
            for &idx in &flows {
                t.touch(idx, cls, step);
            }
        }
        // Each move to the shorter timer supersedes the flow's entry: 20,000 entries without
        // the rebuild.
        assert!(t.timers.capacity() <= 32, "{}", t.timers.capacity());
        let (at, idx) = t.peek_due().unwrap();
        assert_eq!((at, idx), (9_999 + 10, flows[0]));
    }
}
