//! The sans-IO NAT gateway. It never reads a clock and never does I/O: the embedder passes the
//! virtual time and each packet to [`Gateway::process`], sends what the verdict says, collects
//! extra packets from [`Gateway::poll_transmit`], and calls [`Gateway::handle_timeout`] by
//! [`Gateway::poll_timeout`] (quinn-proto and smoltcp are the models).
//!
//! Packet fields are read through `crate::wire` (views, `rewrite`, `checksum`, `icmp`) except
//! on the fast path, which reads fields as raw bytes and big-endian words at fixed offsets
//! (`be16`, `pkt[l4 + 13]`) because parsing already sized the headers and a view would add a
//! slice bounds check per field: the flow key of `outbound` and `handle_outside` (TCP/UDP ports,
//! ICMP echo identifier, the ICMP type byte) and `tcp_segment` (TCP flags, sequence number,
//! header length). Everything else here (NAT64, unsolicited answers, ICMP errors, echo replies)
//! uses views; checksums and in-place rewrites are `wire::checksum` and `wire::rewrite`.
//!
//! This file is the packet path (about 1,500 lines, kept whole: `process` and the functions it
//! calls per packet read top to bottom in one place, and rustc puts one module's functions in
//! one codegen unit, so their inlining does not depend on cross-unit optimisation). The control
//! part (NICs, blocks) is [`control`], the inspection part (events, counters, flows) [`inspect`].

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, SocketAddr};

use foldhash::fast::FixedState;
use hashbrown::HashMap;

mod batch;
mod control;
mod fast;
mod inspect;

use fast::Fast;

use super::addr::Addr;
use super::config::{
    Block, ConfigError, FIRST_NAT_PORT, Family, GatewayConfig, NicConfig, NicId, PORTS_PER_IP,
};
use super::counters::{Counters, DropReason, ProtoClass};
use super::deferred::{ConnKey, Deferred, SYN_ANSWER_DELAY_NS};
use super::event::{EndReason, Event, FlowView};
use super::frag::{FlowRef, FragAction, FragKey, FragTarget, FragmentTracker, LaterFragment};
use super::nat64;
use super::profile::LimitScope;
use super::table::{
    BlockSpan, CLOSED_LISTED, Flow, FlowTable, HAIRPIN, NAT64, SEEN_REPLY, Timeouts,
    UDP_SAW_INBOUND, class,
};
use super::tcp::{self, Dir};
use super::ttl;
use crate::time::Instant;
use crate::wire::checksum;
use crate::wire::icmp::{
    ErrorMessage, is_echo_reply, is_echo_request, is_error as is_icmp_error, is_icmp, v6 as icmpv6,
};
use crate::wire::parse::{IpMeta, IpVersion, be16, parse_ip, parse_ip_lax, proto};
use crate::wire::repr::PacketRepr;
use crate::wire::rewrite::{self, Side, rewrite_addr, rewrite_endpoint};
use crate::wire::tcp_flags::{ACK, FIN, RST, SYN, is_opening_syn};
use crate::wire::view::{IcmpView, TcpView, UdpView};
pub use batch::BatchPacket;

/// Where a packet entered the gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Ingress {
    /// From an inside NIC.
    Inside(NicId),
    /// From the internet side (underlay / router).
    Outside,
}

/// Where a packet leaves the gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum Egress {
    /// To the internet side.
    Outside,
    /// To an inside NIC.
    Nic(NicId),
}

/// What to do with a packet after [`Gateway::process`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The buffer now holds the translated packet: send it to the egress.
    Forward(Egress),
    /// The buffer now holds a packet the gateway generated in answer (echo reply, ICMP error):
    /// send it to the egress.
    Respond(Egress),
    /// Not the NAT's business (destination inside the network): deliver it unchanged.
    PassThrough,
    /// A fragment held until its datagram's first fragment arrives (see `poll_transmit`).
    Buffered,
    /// Dropped and counted.
    Drop(DropReason),
}

/// A NIC's block as the gateway keeps it.
#[derive(Clone, Copy, Debug)]
struct NicBlock {
    block: Block,
    nat_ip: u16,
    span: BlockSpan,
}

#[derive(Clone, Debug)]
struct NicState {
    config: NicConfig,
    blocks: [Option<NicBlock>; 2],
    last_exhaustion_event_ns: Option<u64>,
}

/// A flow as reported by [`Gateway::flows`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FlowInfo {
    /// Identity.
    pub flow: FlowView,
    /// True while it matches packets; false while only its port is held.
    pub live: bool,
    /// TCP state name, `active` for UDP/ICMP, or `held`.
    pub state: &'static str,
    /// Last refresh.
    pub last_active: Instant,
    /// When it expires (or its hold ends).
    pub deadline: Instant,
}

struct FamilyState<A: Addr> {
    table: FlowTable<A>,
    nat_ips: Vec<A>,
    nat_lookup: HashMap<A, u16, FixedState>,
}

impl<A: Addr> FamilyState<A> {
    fn new(seed: u64, timeouts: Timeouts) -> Self {
        FamilyState {
            table: FlowTable::new(seed, timeouts),
            nat_ips: Vec::new(),
            nat_lookup: HashMap::with_hasher(FixedState::with_seed(seed)),
        }
    }

    fn nat_ip_index(&mut self, a: A) -> Result<u16, ConfigError> {
        if let Some(&i) = self.nat_lookup.get(&a) {
            return Ok(i);
        }
        let i = u16::try_from(self.nat_ips.len())
            .map_err(|_| ConfigError::invalid("nat_ips", "at most 65536 NAT IPs per family"))?;
        self.nat_ips.push(a);
        self.nat_lookup.insert(a, i);
        // Flows already talking to this address become hairpin flows.
        self.table.mark_hairpin(&a);
        Ok(i)
    }
}

/// The flow an ICMP error quotes ([`Gateway::quoted_flow`]): the quoted packet's metadata
/// (offsets within the quote), addresses and ports, as they were sent.
struct QuotedFlow<A> {
    meta: IpMeta,
    src: A,
    dst: A,
    src_port: u16,
    dst_port: u16,
}

struct Families {
    v4: FamilyState<[u8; 4]>,
    v6: FamilyState<[u8; 16]>,
}

/// Selects a family's state by address type.
trait Fam: Addr {
    fn state(f: &mut Families) -> &mut FamilyState<Self>;
    fn state_ref(f: &Families) -> &FamilyState<Self>;
}

impl Fam for [u8; 4] {
    fn state(f: &mut Families) -> &mut FamilyState<Self> {
        &mut f.v4
    }
    fn state_ref(f: &Families) -> &FamilyState<Self> {
        &f.v4
    }
}

impl Fam for [u8; 16] {
    fn state(f: &mut Families) -> &mut FamilyState<Self> {
        &mut f.v6
    }
    fn state_ref(f: &Families) -> &FamilyState<Self> {
        &f.v6
    }
}

/// The NAT gateway: port-block allocator, connection tracking and translator.
pub struct Gateway {
    config: GatewayConfig,
    now_ns: u64,
    /// A lower bound on the next flow deadline; `process` skips expiry work before it.
    next_deadline_bound_ns: u64,
    /// See [`Gateway::set_batch_prefetch_min_flows`].
    batch_prefetch_min_flows: usize,
    /// See [`Gateway::set_fast_path`].
    fast_path: bool,
    /// See [`Gateway::fast_path_packets`].
    fast_path_packets: u64,
    /// See [`Gateway::candidate_packets`].
    candidate_packets: u64,
    timeouts: Timeouts,
    nics: Vec<Option<NicState>>,
    fams: Families,
    /// (NAT IP, first port) → (last port, NIC): finds overlapping blocks in O(log n).
    block_index: BTreeMap<(IpAddr, u16), (u16, NicId)>,
    frags: FragmentTracker,
    /// The flow the packet being processed was translated with, recorded for first fragments
    /// only (see [`FlowRef`]).
    frag_flow: Option<FlowRef>,
    counters: Counters,
    nic_counters: Vec<Counters>,
    events: Vec<Event>,
    transmit: VecDeque<(Egress, Vec<u8>)>,
    /// NAT64 inside IPv6 addresses; flow handle `h` (an address in 0.0.0.0/8) is entry `h - 1`.
    nat64_inside: Vec<[u8; 16]>,
    nat64_handles: BTreeMap<[u8; 16], u32>,
    /// ICMP 3/13 answers to unsolicited SYNs, due 6 s later (RFC 5382 REQ-4).
    deferred: Deferred,
    /// Rate limit of ICMP Time Exceeded answers.
    ttl_budget: crate::time::TokenBucket,
}

/// (flags, end of the segment's sequence space) of a TCP segment; the end is seq + payload
/// length, SYN and FIN counting one (Linux's `td_end`).
fn tcp_segment(pkt: &[u8], meta: &IpMeta) -> (u8, u32) {
    let l4 = meta.l4_offset;
    let flags = pkt[l4 + 13];
    let seq = u32::from_be_bytes([pkt[l4 + 4], pkt[l4 + 5], pkt[l4 + 6], pkt[l4 + 7]]);
    let header = usize::from(pkt[l4 + 12] >> 4) * 4;
    let payload = meta.end.saturating_sub(l4 + header) as u32;
    let ctl = u32::from(flags & SYN != 0) + u32::from(flags & FIN != 0);
    (flags, seq.wrapping_add(payload).wrapping_add(ctl))
}

fn class_of(p: u8) -> usize {
    match p {
        proto::TCP => ProtoClass::Tcp as usize,
        proto::UDP => ProtoClass::Udp as usize,
        _ => ProtoClass::Icmp as usize,
    }
}

fn pad16(b: &[u8]) -> [u8; 16] {
    let mut a = [0u8; 16];
    a[..b.len()].copy_from_slice(b);
    a
}

impl Gateway {
    /// A gateway with no NICs yet.
    pub fn new(config: GatewayConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let p = &config.profile;
        let ms = |v: u64| v.saturating_mul(1_000_000);
        let mut timeouts_ns = [0u64; class::COUNT];
        timeouts_ns[usize::from(class::TCP_ESTABLISHED)] = ms(p.timeout_tcp_established_ms);
        timeouts_ns[usize::from(class::TCP_TRANSITORY)] = ms(p.timeout_tcp_transitory_ms);
        timeouts_ns[usize::from(class::UDP)] = ms(p.timeout_udp_ms);
        timeouts_ns[usize::from(class::UDP_STREAM)] = ms(p.timeout_udp_stream_ms);
        timeouts_ns[usize::from(class::ICMP)] = ms(p.timeout_icmp_ms);
        timeouts_ns[usize::from(class::HOLD_TCP_FIN)] = ms(p.hold_tcp_fin_ms);
        timeouts_ns[usize::from(class::HOLD_TCP_RST)] = ms(p.hold_tcp_rst_ms);
        timeouts_ns[usize::from(class::HOLD_UDP)] = ms(p.hold_udp_ms);
        timeouts_ns[usize::from(class::HOLD_ICMP)] = ms(p.hold_icmp_ms);
        timeouts_ns[usize::from(class::TCP_RESET)] = ms(p
            .timeout_tcp_reset_ms
            .unwrap_or(p.timeout_tcp_transitory_ms));
        timeouts_ns[usize::from(class::TCP_RESET_UNANSWERED)] = 0;
        let timeouts = Timeouts {
            ns: timeouts_ns,
            scan_ns: ms(p.aging_scan_period_ms),
        };
        let mut gw = Gateway {
            now_ns: 0,
            next_deadline_bound_ns: u64::MAX,
            batch_prefetch_min_flows: batch::PREFETCH_MIN_FLOWS,
            fast_path: true,
            fast_path_packets: 0,
            candidate_packets: 0,
            timeouts,
            nics: Vec::new(),
            fams: Families {
                v4: FamilyState::new(config.seed, timeouts),
                v6: FamilyState::new(config.seed ^ 6, timeouts),
            },
            block_index: BTreeMap::new(),
            frags: FragmentTracker::new(
                config.max_fragment_datagrams,
                config.max_fragments_buffered,
                config.fragment_timeout_ms,
            ),
            frag_flow: None,
            counters: Counters::default(),
            nic_counters: Vec::new(),
            events: Vec::new(),
            transmit: VecDeque::new(),
            nat64_inside: Vec::new(),
            nat64_handles: BTreeMap::new(),
            deferred: Deferred::new(),
            ttl_budget: ttl::answer_budget(),
            config,
        };
        for ip in gw.config.nat_ips.clone() {
            gw.register_nat_ip(ip)?;
        }
        Ok(gw)
    }

    /// The configuration.
    pub fn config(&self) -> &GatewayConfig {
        &self.config
    }

    /// The current virtual time (the latest time passed in).
    pub fn now(&self) -> Instant {
        Instant::from_nanos(self.now_ns)
    }

    fn register_nat_ip(&mut self, ip: IpAddr) -> Result<u16, ConfigError> {
        match ip {
            IpAddr::V4(a) => self.fams.v4.nat_ip_index(a.octets()),
            IpAddr::V6(a) => self.fams.v6.nat_ip_index(a.octets()),
        }
    }

    /// True when `ip` is one of the gateway's public addresses.
    pub fn is_nat_ip(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(a) => self.fams.v4.nat_lookup.contains_key(&a.octets()),
            IpAddr::V6(a) => self.fams.v6.nat_lookup.contains_key(&a.octets()),
        }
    }

    /// The public addresses, IPv4 first, in registration order.
    pub fn nat_ips(&self) -> Vec<IpAddr> {
        let v4 = self.fams.v4.nat_ips.iter().map(|a| a.to_ip());
        v4.chain(self.fams.v6.nat_ips.iter().map(|a| a.to_ip()))
            .collect()
    }

    // ----- control plane -------------------------------------------------------------------

    // ----- time ----------------------------------------------------------------------------

    fn deadline_ns(&self, cls: u8, last_ns: u64) -> u64 {
        self.timeouts.deadline(cls, last_ns)
    }

    /// Moves the clock forward (never back) and expires everything due.
    fn advance(&mut self, now: Instant) {
        if now.as_nanos() > self.now_ns {
            self.now_ns = now.as_nanos();
        }
        if self.now_ns >= self.next_deadline_bound_ns {
            self.expire_due();
        }
    }

    fn expire_due(&mut self) {
        let now = self.now_ns;
        loop {
            let e4 = self.fams.v4.table.peek_due();
            let e6 = self.fams.v6.table.peek_due();
            let pick = match (e4, e6) {
                (Some(a), Some(b)) if b.0 < a.0 => Some((b, true)),
                (Some(a), _) => Some((a, false)),
                (None, Some(b)) => Some((b, true)),
                (None, None) => None,
            };
            match pick {
                Some(((d, idx), v6)) if d <= now => {
                    if v6 {
                        self.fams.v6.table.pop_due();
                        self.expire_one::<[u8; 16]>(idx, d);
                    } else {
                        self.fams.v4.table.pop_due();
                        self.expire_one::<[u8; 4]>(idx, d);
                    }
                }
                other => {
                    self.next_deadline_bound_ns = other.map_or(u64::MAX, |((d, _), _)| d);
                    break;
                }
            }
        }
        let dropped = self.frags.expire(now);
        self.counters.drops[DropReason::FragmentTimeout as usize] += dropped;
        if let Some(d) = self.frags.next_deadline_ns() {
            self.next_deadline_bound_ns = self.next_deadline_bound_ns.min(d);
        }
        while let Some((_, syn)) = self.deferred.pop_due(now) {
            self.answer_unsolicited_syn(&syn);
        }
        if let Some(d) = self.deferred.next_due_ns() {
            self.next_deadline_bound_ns = self.next_deadline_bound_ns.min(d);
        }
    }

    /// Sends the ICMP 3/13 (v6: 1/1) owed to an unsolicited SYN whose 6 s have passed.
    fn answer_unsolicited_syn(&mut self, syn: &[u8]) {
        let Ok(meta) = parse_ip(syn) else {
            return;
        };
        let (t, c) = ErrorMessage::AdminProhibited.type_code(meta.version);
        let answer = PacketRepr::icmp_error(meta.dst(syn), meta.src(syn), t, c, syn).emit();
        self.counters.generated += 1;
        self.transmit.push_back((Egress::Outside, answer));
    }

    fn expire_one<A: Fam>(&mut self, idx: u32, deadline: u64) {
        let scope = self.config.profile.limit_scope;
        let f = A::state_ref(&self.fams).table.flows[idx as usize];
        let cls = f.class;
        let span_start = self.span_of::<A>(f.nic).map_or(0, |s| s.start);
        let at = Instant::from_nanos(deadline);
        if class::is_hold(cls) {
            let view = self.view::<A>(&f);
            let t = &mut A::state(&mut self.fams).table;
            t.release_port(scope, span_start, idx);
            t.free(idx);
            self.record(Event::PortReleased { at, flow: view });
            return;
        }
        A::state(&mut self.fams).table.unindex(idx);
        self.counters.flows_ended += 1;
        self.nic_counters[f.nic as usize].flows_ended += 1;
        let view = self.view::<A>(&f);
        let reason = if cls == class::TCP_RESET_UNANSWERED {
            EndReason::ResetUnanswered
        } else {
            EndReason::Timeout
        };
        self.record(Event::FlowEnded {
            at,
            flow: view,
            reason,
            last_active: Instant::from_nanos(f.last_active_ns),
            deadline: at,
        });
        let hold_class = match f.proto {
            proto::TCP if tcp::is_reset(f.state) => Some(class::HOLD_TCP_RST),
            proto::TCP if tcp::is_closed(f.state) => Some(class::HOLD_TCP_FIN),
            proto::TCP => None,
            proto::UDP => Some(class::HOLD_UDP),
            _ => Some(class::HOLD_ICMP),
        }
        .filter(|&c| self.timeouts.ns[usize::from(c)] > 0);
        // TCP holds count from the close and run alongside the transitory timer: the port is
        // free at the later of the two ends, not their sum (docs/behaviour.md §5). UDP and ICMP
        // holds count from expiry.
        let hold = hold_class.map(|hc| {
            let from = if f.proto == proto::TCP {
                let closed = A::state_ref(&self.fams).table.closed_at(idx);
                debug_assert!(closed.is_some(), "a closed TCP flow has a close time");
                closed.unwrap_or(deadline)
            } else {
                deadline
            };
            (hc, from)
        });
        match hold.filter(|&(hc, from)| self.timeouts.deadline(hc, from) > deadline) {
            Some((hc, from)) => {
                A::state(&mut self.fams).table.touch(idx, hc, from);
            }
            None => {
                let t = &mut A::state(&mut self.fams).table;
                t.release_port(scope, span_start, idx);
                t.free(idx);
                self.record(Event::PortReleased { at, flow: view });
            }
        }
    }

    /// Exactly when [`Gateway::handle_timeout`] next has work (flow or fragment expiry, or a
    /// deferred answer to an unsolicited SYN).
    /// Takes `&mut self` because it tidies the timer heap (refreshed flows are re-queued).
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        let a = self.fams.v4.table.peek_due().map(|e| e.0);
        let b = self.fams.v6.table.peek_due().map(|e| e.0);
        let c = self.frags.next_deadline_ns();
        let d = self.deferred.next_due_ns();
        [a, b, c, d]
            .into_iter()
            .flatten()
            .min()
            .map(Instant::from_nanos)
    }

    /// A time no later than [`Gateway::poll_timeout`]'s, found without tidying the timer heap:
    /// calling [`Gateway::handle_timeout`] then is always correct but may find nothing due yet
    /// (a refreshed flow's stale timer entry), after which this moves on. For drivers that wake
    /// after every packet: the exact answer re-queues a refreshed flow each time its stale entry
    /// reaches the top, one heap operation per packet, where waking at the stale entries costs
    /// about one per flow and timeout period.
    pub fn poll_wakeup(&self) -> Option<Instant> {
        let a = self.fams.v4.table.due_lower_bound();
        let b = self.fams.v6.table.due_lower_bound();
        let c = self.frags.next_deadline_ns();
        let d = self.deferred.due_lower_bound_ns();
        [a, b, c, d]
            .into_iter()
            .flatten()
            .min()
            .map(Instant::from_nanos)
    }

    /// Advances the clock to `now`, expiring every flow and fragment whose deadline is due and
    /// queueing the deferred answers that are due (for [`Gateway::poll_transmit`]).
    pub fn handle_timeout(&mut self, now: Instant) {
        if now.as_nanos() > self.now_ns {
            self.now_ns = now.as_nanos();
        }
        self.expire_due();
    }

    // ----- observation ---------------------------------------------------------------------

    fn record(&mut self, e: Event) {
        if self.config.record_events {
            self.events.push(e);
        }
    }

    /// Takes the next packet the gateway wants to send on its own (released fragments, answers
    /// to unsolicited SYNs after their 6 s).
    pub fn poll_transmit(&mut self) -> Option<(Egress, Vec<u8>)> {
        self.transmit.pop_front()
    }

    fn view<A: Fam>(&self, f: &Flow<A>) -> FlowView {
        let fam = A::state_ref(&self.fams);
        let nat = fam
            .nat_ips
            .get(usize::from(f.nat_ip))
            .copied()
            .unwrap_or_default();
        let inside = if f.flags & NAT64 != 0 {
            let h = f
                .inside
                .as_ref()
                .iter()
                .fold(0usize, |acc, &b| acc << 8 | usize::from(b));
            self.nat64_inside
                .get(h.wrapping_sub(1))
                .map_or(f.inside.to_ip(), |a| IpAddr::from(*a))
        } else {
            f.inside.to_ip()
        };
        FlowView {
            nic: NicId(f.nic),
            protocol: f.proto,
            inside: SocketAddr::new(inside, f.inside_port),
            remote: SocketAddr::new(f.remote.to_ip(), f.remote_port),
            nat: SocketAddr::new(nat.to_ip(), f.nat_port),
        }
    }

    fn span_of<A: Fam>(&self, nic: u32) -> Option<BlockSpan> {
        self.nics
            .get(nic as usize)
            .and_then(|n| n.as_ref())
            .and_then(|n| n.blocks[A::FAMILY.index()])
            .map(|b| b.span)
    }

    // ----- data plane ----------------------------------------------------------------------

    /// Handles one packet at virtual time `now`. The buffer is rewritten in place (or replaced
    /// by a generated answer); the verdict says where it goes. Never panics, whatever the bytes.
    pub fn process(&mut self, now: Instant, ingress: Ingress, pkt: &mut Vec<u8>) -> Verdict {
        let mut verdict = Verdict::Buffered;
        self.process_with(now, ingress, pkt, None, &mut verdict);
        verdict
    }

    /// [`Gateway::process`] writing the verdict to `out`, told the slot a batch's prefetch
    /// stage found for the packet's lookup (`batch::Candidate`): the fast path takes it when
    /// it still holds the packet's flow instead of hashing and probing again. The verdict
    /// never depends on the candidate.
    ///
    /// The verdict is written where the caller keeps it, and this is always inlined: a
    /// verdict handed back by value went through a temporary on the stack, written as narrow
    /// fields and copied out with a wide load, which the CPU cannot forward from the stores (a
    /// stall on every packet of a batch).
    #[inline(always)]
    fn process_with(
        &mut self,
        now: Instant,
        ingress: Ingress,
        pkt: &mut Vec<u8>,
        candidate: Option<batch::Candidate>,
        out: &mut Verdict,
    ) {
        self.advance(now);
        // The verdict is only ever written to `out` and read back field by field (see above).
        match self.fast_path(ingress, pkt, candidate, out) {
            Fast::Translated => return,
            Fast::Missed => {}
            Fast::Verified => *out = self.classify(ingress, pkt, true),
            Fast::Declined => *out = self.classify(ingress, pkt, false),
        }
        if self.config.profile.ttl_decrement
            && let Verdict::Forward(egress) = *out
            && self.leave_hop_expires(Verdict::Forward(egress), pkt)
        {
            *out = Verdict::Drop(DropReason::TtlExpired);
        }
        if let Verdict::Drop(r) = *out {
            self.count_drop(ingress, r);
        }
    }

    /// The router hop on the way out (docs/behaviour.md §4 "TTL"): a forwarded packet leaves
    /// with its TTL / hop limit one lower. Packets that arrive with 1 or less were answered
    /// before translation; what still has 1 here (inbound ICMP errors, later fragments) is
    /// dropped without an answer (RFC 1812 §4.3.2.7: no ICMP error about those): true when it
    /// is, with its forward count taken back.
    ///
    /// Returns a flag rather than the verdict so that the caller's verdict is not rewritten on
    /// the common path: the copy read the verdict back across the narrower stores that wrote
    /// it (a store-forwarding stall on every established packet, whose fast path shares this
    /// tail).
    fn leave_hop_expires(&mut self, verdict: Verdict, pkt: &mut [u8]) -> bool {
        let version = match pkt.first().map(|b| b >> 4) {
            Some(4) if pkt.len() >= 20 => IpVersion::V4,
            Some(6) if pkt.len() >= 40 => IpVersion::V6,
            _ => return false,
        };
        if ttl::hops(pkt, version) <= 1 {
            self.undo_forward_count(verdict, pkt);
            return true;
        }
        ttl::decrement(pkt, version);
        false
    }

    /// Takes back the `translated` count of a forward that is dropped after all.
    fn undo_forward_count(&mut self, verdict: Verdict, pkt: &[u8]) {
        let c = match parse_ip_lax(pkt) {
            Ok(m) if m.has_l4_header() => class_of(m.protocol),
            _ => ProtoClass::Fragment as usize,
        };
        let dec = |v: &mut u64| *v = v.saturating_sub(1);
        match verdict {
            Verdict::Forward(Egress::Outside) => dec(&mut self.counters.translated_out[c]),
            Verdict::Forward(Egress::Nic(n)) => {
                dec(&mut self.counters.translated_in[c]);
                if let Some(nc) = self.nic_counters.get_mut(n.0 as usize) {
                    dec(&mut nc.translated_in[c]);
                }
            }
            _ => {}
        }
    }

    /// A packet that would leave with TTL / hop limit 0: dropped and answered, rate-limited,
    /// with ICMP Time Exceeded (11/0; ICMPv6 3/0) from `from`, back where it came from. ICMP
    /// errors and non-first fragments get no answer (RFC 1812 §4.3.2.7).
    fn time_exceeded(
        &mut self,
        from: Option<IpAddr>,
        back: Egress,
        pkt: &mut Vec<u8>,
        meta: &IpMeta,
    ) -> Verdict {
        let error = is_icmp(meta.version, meta.protocol)
            && meta.has_l4_header()
            && is_icmp_error(meta.version, pkt[meta.l4_offset]);
        let first = meta.fragment.is_none_or(|f| f.offset_bytes == 0);
        let Some(from) = from.filter(|_| !error && first) else {
            return Verdict::Drop(DropReason::TtlExpired);
        };
        if !self.ttl_budget.take(self.now_ns) {
            return Verdict::Drop(DropReason::TtlExpired);
        }
        let (t, c) = ErrorMessage::TimeExceeded.type_code(meta.version);
        *pkt = PacketRepr::icmp_error(from, meta.src(pkt), t, c, pkt).emit();
        self.counters.drop(DropReason::TtlExpired);
        if let Egress::Nic(n) = back
            && let Some(c) = self.nic_counters.get_mut(n.0 as usize)
        {
            c.drop(DropReason::TtlExpired);
        }
        self.counters.generated += 1;
        Verdict::Respond(back)
    }

    /// The address the gateway answers an inside host from: the NAT IP of the NIC's block of
    /// that family, else the family's first NAT IP (docs/nat-core.md).
    fn inside_answer_source(&self, nic: NicId, version: IpVersion) -> Option<IpAddr> {
        let fam = match version {
            IpVersion::V4 => Family::V4,
            IpVersion::V6 => Family::V6,
        };
        self.block_of(nic, fam)
            .map(|b| b.nat_ip)
            .or_else(|| match fam {
                Family::V4 => self.fams.v4.nat_ips.first().map(|a| a.to_ip()),
                Family::V6 => self.fams.v6.nat_ips.first().map(|a| a.to_ip()),
            })
    }

    fn count_drop(&mut self, ingress: Ingress, r: DropReason) {
        self.counters.drop(r);
        if let Ingress::Inside(n) = ingress
            && let Some(c) = self.nic_counters.get_mut(n.0 as usize)
        {
            c.drop(r);
        }
    }

    /// The general path. `verified`: the fast path already found the checksums good.
    fn classify(&mut self, ingress: Ingress, pkt: &mut Vec<u8>, verified: bool) -> Verdict {
        let meta = match parse_ip(pkt) {
            Ok(m) => m,
            Err(_) => return Verdict::Drop(DropReason::Malformed),
        };
        pkt.truncate(meta.end);
        if !verified {
            if meta.version == IpVersion::V4 && !checksum::ipv4_header_ok(pkt, meta.l4_offset) {
                return Verdict::Drop(DropReason::BadChecksum);
            }
            if self.config.verify_l4_checksums && !checksum::l4_ok(pkt, &meta) {
                return Verdict::Drop(DropReason::BadChecksum);
            }
        }
        if let Ingress::Inside(nic) = ingress {
            let Some(state) = self.nics.get(nic.0 as usize).and_then(|n| n.as_ref()) else {
                return Verdict::Drop(DropReason::UnknownNic);
            };
            let src = &pkt[meta.src_offset()..meta.src_offset() + meta.addr_len()];
            if !fast::owns_source(state, src) {
                return Verdict::Drop(DropReason::SpoofedSource);
            }
            if self.config.nat64
                && meta.version == IpVersion::V6
                && nat64::is_nat64_destination(&pkt[24..40])
            {
                return self.nat64_outbound(nic, pkt, &meta);
            }
            let net = &self.config.networks[usize::from(state.config.network.0)];
            if !net.local_prefixes.is_empty() && {
                let dst = meta.dst(pkt);
                net.local_prefixes.iter().any(|p| p.contains(&dst))
            } {
                self.counters.passed_through += 1;
                self.nic_counters[nic.0 as usize].passed_through += 1;
                return Verdict::PassThrough;
            }
        }
        let inbound = ingress == Ingress::Outside;
        let frag_key = meta.fragment.map(|f| FragKey {
            inbound,
            nic: match ingress {
                Ingress::Inside(n) => n.0,
                Ingress::Outside => u32::MAX,
            },
            version: meta.version,
            src: pad16(&pkt[meta.src_offset()..meta.src_offset() + meta.addr_len()]),
            dst: pad16(&pkt[meta.dst_offset()..meta.dst_offset() + meta.addr_len()]),
            proto: meta.protocol,
            ident: f.ident,
        });
        if let Some(key) = frag_key {
            if !meta.has_l4_header() {
                return self.later_fragment(key, ingress, pkt, &meta);
            }
            // Set by the translation paths below, taken by `first_fragment`.
            self.frag_flow = None;
            // A first fragment whose datagram cannot be tracked is refused before it touches any
            // state: translating it would create a flow for a datagram whose rest must be dropped.
            if !self.frags.can_track(&key) {
                return Verdict::Drop(DropReason::FragmentLimit);
            }
        }
        let verdict = match (ingress, meta.version) {
            (Ingress::Inside(nic), IpVersion::V4) => self.handle_inside::<[u8; 4]>(nic, pkt, &meta),
            (Ingress::Inside(nic), IpVersion::V6) => {
                self.handle_inside::<[u8; 16]>(nic, pkt, &meta)
            }
            (Ingress::Outside, IpVersion::V4) => self.handle_outside::<[u8; 4]>(pkt, &meta, None),
            (Ingress::Outside, IpVersion::V6) => self.handle_outside::<[u8; 16]>(pkt, &meta, None),
        };
        if let Some(key) = frag_key {
            self.first_fragment(key, verdict, pkt, &meta);
        }
        verdict
    }

    /// Records the translation of a first fragment and releases fragments waiting for it.
    fn first_fragment(&mut self, key: FragKey, verdict: Verdict, pkt: &[u8], meta: &IpMeta) {
        let action = match verdict {
            Verdict::Forward(egress) => {
                let len = meta.addr_len();
                let src = pad16(&pkt[meta.src_offset()..meta.src_offset() + len]);
                let dst = pad16(&pkt[meta.dst_offset()..meta.dst_offset() + len]);
                FragAction::Translate {
                    new_src: (src != key.src).then_some(src),
                    new_dst: (dst != key.dst).then_some(dst),
                    target: match egress {
                        Egress::Outside => FragTarget::Outside,
                        Egress::Nic(n) => FragTarget::Nic(n),
                    },
                    flow: self.frag_flow.take(),
                }
            }
            _ => FragAction::Drop,
        };
        let pending = self.frags.first_fragment(key, action, self.now_ns);
        if let Some(d) = self.frags.next_deadline_ns() {
            // The datagram's state must expire on time even when nothing else is pending.
            self.next_deadline_bound_ns = self.next_deadline_bound_ns.min(d);
        }
        for mut p in pending {
            match self.apply_fragment_action(action, &mut p) {
                Ok(egress) => self.transmit.push_back((egress, p)),
                Err(r) => self.counters.drop(r),
            }
        }
    }

    fn apply_fragment_action(
        &mut self,
        action: FragAction,
        pkt: &mut [u8],
    ) -> Result<Egress, DropReason> {
        let FragAction::Translate {
            new_src,
            new_dst,
            target,
            ..
        } = action
        else {
            return Err(DropReason::FragmentOfDropped);
        };
        let meta = parse_ip(pkt).map_err(|_| DropReason::Malformed)?;
        let len = meta.addr_len();
        if let Some(s) = new_src {
            rewrite_addr(pkt, &meta, Side::Src, &s[..len]);
        }
        if let Some(d) = new_dst {
            rewrite_addr(pkt, &meta, Side::Dst, &d[..len]);
        }
        let frag = ProtoClass::Fragment as usize;
        Ok(match target {
            FragTarget::Outside => {
                self.counters.translated_out[frag] += 1;
                Egress::Outside
            }
            FragTarget::Nic(n) => {
                self.counters.translated_in[frag] += 1;
                Egress::Nic(n)
            }
        })
    }

    fn later_fragment(
        &mut self,
        key: FragKey,
        ingress: Ingress,
        pkt: &mut [u8],
        meta: &IpMeta,
    ) -> Verdict {
        if ingress == Ingress::Outside && !self.is_nat_ip(meta.dst(pkt)) {
            return Verdict::Drop(DropReason::Unsolicited);
        }
        match self.frags.later_fragment(key, pkt, self.now_ns) {
            LaterFragment::Act(FragAction::Translate {
                flow: Some(flow), ..
            }) if !self.flow_ref_live(flow) => Verdict::Drop(if key.inbound {
                DropReason::Unsolicited
            } else {
                DropReason::FragmentOfDropped
            }),
            LaterFragment::Act(action) => match self.apply_fragment_action(action, pkt) {
                Ok(e) => Verdict::Forward(e),
                Err(r) => Verdict::Drop(r),
            },
            LaterFragment::Buffered => {
                let d = self
                    .now_ns
                    .saturating_add(self.config.fragment_timeout_ms.saturating_mul(1_000_000));
                self.next_deadline_bound_ns = self.next_deadline_bound_ns.min(d);
                Verdict::Buffered
            }
            LaterFragment::Refused(r) => Verdict::Drop(r),
        }
    }

    /// Records flow `idx` as the one a first fragment is translated with.
    fn note_frag_flow<A: Fam>(&mut self, meta: &IpMeta, idx: u32) {
        if meta.fragment.is_some() {
            let f = &A::state_ref(&self.fams).table.flows[idx as usize];
            self.frag_flow = Some(FlowRef {
                v6: A::FAMILY == Family::V6,
                slot: idx,
                nat_ip: f.nat_ip,
                nat_port: f.nat_port,
                remote: pad16(f.remote.as_ref()),
                remote_port: f.remote_port,
                proto: f.proto,
            });
        }
    }

    /// Whether the flow a datagram's first fragment was translated with is still live.
    fn flow_ref_live(&self, r: FlowRef) -> bool {
        fn live<A: Fam>(g: &Gateway, r: FlowRef) -> bool {
            A::state_ref(&g.fams)
                .table
                .flows
                .get(r.slot as usize)
                .is_some_and(|f| {
                    f.is_live()
                        && f.nat_ip == r.nat_ip
                        && f.nat_port == r.nat_port
                        && f.remote_port == r.remote_port
                        && f.proto == r.proto
                        && pad16(f.remote.as_ref()) == r.remote
                })
        }
        if r.v6 {
            live::<[u8; 16]>(self, r)
        } else {
            live::<[u8; 4]>(self, r)
        }
    }

    fn handle_inside<A: Fam>(&mut self, nic: NicId, pkt: &mut Vec<u8>, meta: &IpMeta) -> Verdict {
        // A NIC without a block has every packet to the internet dropped as `no_nat_block`,
        // whatever its protocol or TCP flags (docs/behaviour.md §4 "Exhaustion"): an operator
        // counting starved NICs must see all of their traffic.
        if self.span_of::<A>(nic.0).is_none() {
            return Verdict::Drop(DropReason::NoNatBlock);
        }
        if self.config.profile.ttl_decrement
            && ttl::hops(pkt, meta.version) <= 1
            && self.would_translate(pkt, meta)
        {
            // Checked before any NAT work: the packet creates and refreshes nothing. Packets
            // the gateway would not forward anyway (other protocols, e.g. IGMP with TTL 1)
            // keep their own reason.
            let from = self.inside_answer_source(nic, meta.version);
            return self.time_exceeded(from, Egress::Nic(nic), pkt, meta);
        }
        match meta.protocol {
            proto::TCP | proto::UDP => self.outbound::<A>(nic, pkt, meta, None),
            p if is_icmp(meta.version, p) => {
                if !self.config.profile.icmp_supported {
                    return Verdict::Drop(DropReason::UnsupportedIcmp);
                }
                let t = pkt[meta.l4_offset];
                if is_echo_request(meta.version, t) {
                    self.outbound::<A>(nic, pkt, meta, None)
                } else if is_icmp_error(meta.version, t) {
                    self.outbound_icmp_error::<A>(nic, pkt, meta)
                } else {
                    Verdict::Drop(DropReason::UnsupportedIcmp)
                }
            }
            _ => Verdict::Drop(DropReason::UnsupportedProtocol),
        }
    }

    /// True for what `handle_inside` hands to translation: TCP, UDP, and (when the profile
    /// translates ICMP) echo requests and errors.
    fn would_translate(&self, pkt: &[u8], meta: &IpMeta) -> bool {
        match meta.protocol {
            proto::TCP | proto::UDP => true,
            p if is_icmp(meta.version, p) => {
                let t = pkt[meta.l4_offset];
                self.config.profile.icmp_supported
                    && (is_echo_request(meta.version, t) || is_icmp_error(meta.version, t))
            }
            _ => false,
        }
    }

    /// `known_miss`: the fast path already looked the tuple up and found no flow; this is the
    /// outbound hash it computed.
    ///
    /// Always inlined: called, it returns its 12-byte verdict through memory, written in pieces
    /// and read back whole by `process`, a store-forwarding stall that cost a refused packet
    /// about 4 ns of 64 (reports/BENCHMARKS.md, thirteenth session).
    #[inline(always)]
    fn outbound<A: Fam>(
        &mut self,
        nic: NicId,
        pkt: &mut Vec<u8>,
        meta: &IpMeta,
        known_miss: Option<u64>,
    ) -> Verdict {
        let l4 = meta.l4_offset;
        let p = meta.protocol;
        let icmp = is_icmp(meta.version, p);
        let inside = A::read(pkt, meta.src_offset());
        let remote = A::read(pkt, meta.dst_offset());
        // Fast path: raw port reads (see the module documentation).
        let (iport, rport) = if icmp {
            (be16(pkt, l4 + 4), 0)
        } else {
            (be16(pkt, l4), be16(pkt, l4 + 2))
        };
        let seg = if p == proto::TCP {
            tcp_segment(pkt, meta)
        } else {
            (0, 0)
        };
        let found =
            self.find_or_create::<A>(nic, p, inside, iport, remote, rport, seg, 0, known_miss);
        let idx = match found {
            Ok(i) => i,
            Err(r) => return self.refuse::<A>(r, nic, p, pkt, meta),
        };
        self.note_frag_flow::<A>(meta, idx);
        let fam = A::state_ref(&self.fams);
        let f = fam.table.flows[idx as usize];
        let nat = fam.nat_ips[usize::from(f.nat_ip)];
        if seg.0 & SYN != 0 && !self.deferred.is_empty() {
            // The inside host's own SYN: the unsolicited one it crossed gets no answer.
            self.deferred.cancel(&ConnKey {
                nat: nat.to_ip(),
                nat_port: f.nat_port,
                remote: remote.to_ip(),
                remote_port: rport,
            });
        }
        rewrite_endpoint(pkt, meta, Side::Src, nat.as_ref(), f.nat_port);
        if f.flags & HAIRPIN != 0 {
            // Hairpin (RFC 4787 REQ-9): the translated packet now enters as if from outside. It
            // is counted once, as hairpinned (or as the drop), never also as translated out.
            return self.handle_outside::<A>(pkt, meta, Some(nic));
        }
        self.counters.translated_out[class_of(p)] += 1;
        self.nic_counters[nic.0 as usize].translated_out[class_of(p)] += 1;
        Verdict::Forward(Egress::Outside)
    }

    /// The live flow for an outbound tuple, refreshed, or a new one.
    #[allow(clippy::too_many_arguments)]
    fn find_or_create<A: Fam>(
        &mut self,
        nic: NicId,
        p: u8,
        inside: A,
        iport: u16,
        remote: A,
        rport: u16,
        seg: (u8, u32),
        extra_flags: u8,
        known_miss: Option<u64>,
    ) -> Result<u32, DropReason> {
        let table = &A::state_ref(&self.fams).table;
        let (out_hash, found) = match known_miss {
            Some(hash) => {
                debug_assert_eq!(
                    (hash, None),
                    (
                        table.out_hash_for(nic.0, p, &inside, iport, &remote, rport),
                        table.find_out(nic.0, p, &inside, iport, &remote, rport)
                    )
                );
                (hash, None)
            }
            None => {
                let hash = table.out_hash_for(nic.0, p, &inside, iport, &remote, rport);
                let found = table.find_out_hashed(hash, nic.0, p, &inside, iport, &remote, rport);
                (hash, found)
            }
        };
        if let Some(i) = found {
            self.refresh_out::<A>(i, p, seg);
            return Ok(i);
        }
        if self.span_of::<A>(nic.0).is_none() {
            // Before `tcp_no_flow`: a starved NIC's mid-stream TCP counts as starved.
            return Err(DropReason::NoNatBlock);
        }
        let tcp_flags = seg.0;
        // Only a plain SYN opens a TCP flow; with midstream pickup (Linux "loose") also a plain
        // ACK segment (no SYN, FIN or RST), as Linux conntrack does.
        let opening = tcp_flags & (SYN | ACK | FIN | RST) == SYN;
        let pickup = self.config.profile.tcp_midstream_pickup
            && tcp_flags & (SYN | FIN | RST) == 0
            && tcp_flags & ACK != 0;
        if p == proto::TCP && !opening && !pickup {
            return Err(DropReason::TcpNoFlow);
        }
        self.create_flow::<A>(
            nic,
            p,
            inside,
            iport,
            remote,
            rport,
            seg,
            extra_flags,
            out_hash,
        )
    }

    /// Refreshes a live flow with an outbound packet (`seg`: the TCP flags and the end of the
    /// segment's sequence space, see `tcp_segment`).
    #[inline]
    fn refresh_out<A: Fam>(&mut self, idx: u32, p: u8, seg: (u8, u32)) {
        self.refresh::<A>(idx, Dir::Out, seg.0);
        if p == proto::TCP && self.config.profile.tcp_time_wait_takeover {
            A::state(&mut self.fams).table.advance_seq_end(idx, seg.1);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn create_flow<A: Fam>(
        &mut self,
        nic: NicId,
        p: u8,
        inside: A,
        iport: u16,
        remote: A,
        rport: u16,
        seg: (u8, u32),
        extra_flags: u8,
        out_hash: u64,
    ) -> Result<u32, DropReason> {
        let tcp_flags = seg.0;
        let Some(nb) = self
            .nics
            .get(nic.0 as usize)
            .and_then(|n| n.as_ref())
            .and_then(|n| n.blocks[A::FAMILY.index()])
        else {
            return Err(DropReason::NoNatBlock);
        };
        let scope = self.config.profile.limit_scope;
        let seed = self.config.seed;
        let fam = A::state(&mut self.fams);
        let remote_nat_ip = fam.nat_lookup.get(&remote).copied();
        let hairpin = remote_nat_ip.is_some();
        // A hairpin flow to this block's own NAT IP must not get the port it is addressed to.
        let avoid = (remote_nat_ip == Some(nb.nat_ip)).then_some(rport);
        let table = &mut fam.table;
        // Only live flows count: an expired flow whose port is still held does not, a closed
        // TCP flow on its transitory timer does (docs/behaviour.md §4 "Exhaustion").
        if table.live_count() >= self.config.max_flows as usize {
            return Err(DropReason::TableFull);
        }
        let mut allocated = table.allocate_port(
            scope, seed, nb.span, nic.0, p, &inside, iport, &remote, rport, avoid,
        );
        if allocated.is_err()
            && p == proto::TCP
            && tcp_flags & SYN != 0
            && self.config.profile.tcp_time_wait_takeover
            && scope != LimitScope::Nic
            && let Some(old) = table.takeover_candidate(scope, nic.0, &remote, rport, seg.1, |f| {
                tcp::is_closed(f.state)
            })
        {
            self.take_over::<A>(old);
            allocated = A::state(&mut self.fams).table.allocate_port(
                scope, seed, nb.span, nic.0, p, &inside, iport, &remote, rport, avoid,
            );
        }
        let allocated = allocated.map_err(|_| DropReason::PortsExhausted)?;
        let recovery = self.config.profile.tcp_rst_recovery;
        let table = &mut A::state(&mut self.fams).table;
        let (state, cls) = match p {
            proto::TCP => {
                if tcp_flags & SYN == 0 {
                    // Midstream pickup of a plain ACK (the caller admits nothing else): the
                    // connection is taken as established, as Linux conntrack's loose mode does.
                    (
                        tcp::bits::OUTSIDE_SYN | tcp::bits::ESTABLISHED,
                        class::TCP_ESTABLISHED,
                    )
                } else {
                    (
                        tcp::next_state(0, Dir::Out, tcp_flags, recovery),
                        class::TCP_TRANSITORY,
                    )
                }
            }
            proto::UDP => (0, class::UDP),
            _ => (0, class::ICMP),
        };
        let now = self.now_ns;
        let (idx, d) = table.insert(
            Flow {
                inside,
                remote,
                inside_port: iport,
                remote_port: rport,
                nat_port: allocated.port,
                nat_ip: nb.nat_ip,
                nic: nic.0,
                last_active_ns: now,
                proto: p,
                state,
                class: cls,
                flags: extra_flags | if hairpin { HAIRPIN } else { 0 },
            },
            out_hash,
            allocated,
        );
        if p == proto::TCP && self.config.profile.tcp_time_wait_takeover {
            table.set_seq_end(idx, seg.1);
        }
        self.next_deadline_bound_ns = self.next_deadline_bound_ns.min(d);
        self.counters.flows_created += 1;
        self.nic_counters[nic.0 as usize].flows_created += 1;
        if self.config.record_events {
            let f = A::state_ref(&self.fams).table.flows[idx as usize];
            let view = self.view::<A>(&f);
            self.record(Event::FlowCreated {
                at: self.now(),
                flow: view,
            });
        }
        Ok(idx)
    }

    /// Ends a closed TCP flow whose port a new SYN takes over (`linux` TIME_WAIT takeover,
    /// docs/behaviour.md §5) and frees its port at once.
    fn take_over<A: Fam>(&mut self, idx: u32) {
        let scope = self.config.profile.limit_scope;
        let f = A::state_ref(&self.fams).table.flows[idx as usize];
        let span_start = self.span_of::<A>(f.nic).map_or(0, |s| s.start);
        let view = self.view::<A>(&f);
        let at = self.now();
        if f.is_live() {
            self.counters.flows_ended += 1;
            self.nic_counters[f.nic as usize].flows_ended += 1;
            let deadline = Instant::from_nanos(self.deadline_ns(f.class, f.last_active_ns));
            self.record(Event::FlowEnded {
                at,
                flow: view,
                reason: EndReason::TakenOver,
                last_active: Instant::from_nanos(f.last_active_ns),
                deadline,
            });
        }
        let t = &mut A::state(&mut self.fams).table;
        t.unindex(idx);
        t.release_port(scope, span_start, idx);
        t.free(idx);
        self.record(Event::PortReleased { at, flow: view });
    }

    fn refresh<A: Fam>(&mut self, idx: u32, dir: Dir, tcp_flags: u8) {
        let udp_inbound_refresh = self.config.profile.udp_inbound_refresh;
        let recovery = self.config.profile.tcp_rst_recovery;
        let takeover = self.config.profile.tcp_time_wait_takeover;
        let unanswered_rst_ends = self.config.profile.tcp_unanswered_rst_ends_flow;
        let scope = self.config.profile.limit_scope;
        let now = self.now_ns;
        let table = &mut A::state(&mut self.fams).table;
        let f = &mut table.flows[idx as usize];
        let cls = match f.proto {
            proto::TCP => {
                let was_closed = tcp::is_closed(f.state);
                let unanswered = f.flags & SEEN_REPLY == 0;
                f.state = tcp::next_state(f.state, dir, tcp_flags, recovery);
                if f.state == 0 {
                    // A new connection reopened the tuple: nothing has come back for it yet.
                    f.flags &= !SEEN_REPLY;
                } else if dir == Dir::In && tcp_flags & RST == 0 {
                    f.flags |= SEEN_REPLY;
                }
                let closed = tcp::is_closed(f.state);
                let reset = tcp::is_reset(f.state);
                let transitory = tcp::is_transitory(f.state);
                if closed && !was_closed {
                    // The port hold counts from here (docs/behaviour.md §5).
                    table.set_closed_at(idx, now);
                    if takeover {
                        table.list_closed(scope, idx);
                    }
                } else if was_closed && !closed {
                    table.flows[idx as usize].flags &= !CLOSED_LISTED;
                }
                if reset && unanswered && unanswered_rst_ends && tcp_flags & RST != 0 {
                    // Linux conntrack deletes the entry on this very packet; the flow ends
                    // at this instant (timeout 0), after the RST itself was translated.
                    class::TCP_RESET_UNANSWERED
                } else if reset {
                    class::TCP_RESET
                } else if transitory {
                    class::TCP_TRANSITORY
                } else {
                    class::TCP_ESTABLISHED
                }
            }
            proto::UDP => {
                if dir == Dir::In {
                    f.state |= UDP_SAW_INBOUND;
                    if !udp_inbound_refresh {
                        return;
                    }
                }
                if f.state & UDP_SAW_INBOUND != 0 {
                    class::UDP_STREAM
                } else {
                    class::UDP
                }
            }
            // Echo replies do not refresh; requests from inside do.
            _ => {
                if dir == Dir::In {
                    return;
                }
                class::ICMP
            }
        };
        let d = table.touch(idx, cls, now);
        self.next_deadline_bound_ns = self.next_deadline_bound_ns.min(d);
        if self.config.record_refresh_events {
            let f = A::state_ref(&self.fams).table.flows[idx as usize];
            let view = self.view::<A>(&f);
            self.record(Event::FlowRefreshed {
                at: self.now(),
                flow: view,
                expires_at: Instant::from_nanos(d),
            });
        }
    }

    /// A new flow could not be created: count it, tell observers (rate-limited), and answer with
    /// ICMP host unreachable when the profile asks for it (RFC 6888 REQ-11).
    fn refuse<A: Fam>(
        &mut self,
        reason: DropReason,
        nic: NicId,
        p: u8,
        pkt: &mut Vec<u8>,
        meta: &IpMeta,
    ) -> Verdict {
        let now = self.now_ns;
        let interval = self
            .config
            .exhaustion_event_interval_ms
            .saturating_mul(1_000_000);
        let mut emit = false;
        if let Some(Some(n)) = self.nics.get_mut(nic.0 as usize)
            && matches!(reason, DropReason::PortsExhausted | DropReason::TableFull)
            && n.last_exhaustion_event_ns
                .is_none_or(|t| now >= t.saturating_add(interval))
        {
            n.last_exhaustion_event_ns = Some(now);
            emit = true;
        }
        if emit {
            let at = self.now();
            self.record(match reason {
                DropReason::TableFull => Event::TableFull {
                    at,
                    nic,
                    family: A::FAMILY,
                },
                _ => Event::PortsExhausted {
                    at,
                    nic,
                    family: A::FAMILY,
                    protocol: p,
                },
            });
        }
        let answer = self.config.profile.icmp_unreachable_on_exhaustion
            && matches!(reason, DropReason::PortsExhausted | DropReason::TableFull)
            && !is_icmp(meta.version, p);
        if !answer {
            return Verdict::Drop(reason);
        }
        // The gateway answers from the NAT address it would have used.
        let from = self
            .nics
            .get(nic.0 as usize)
            .and_then(|n| n.as_ref())
            .and_then(|n| n.blocks[A::FAMILY.index()])
            .map_or_else(|| meta.dst(pkt), |b| b.block.nat_ip);
        let (t, c) = ErrorMessage::HostUnreachable.type_code(meta.version);
        *pkt = PacketRepr::icmp_error(from, meta.src(pkt), t, c, pkt).emit();
        self.count_drop(Ingress::Inside(nic), reason);
        self.counters.generated += 1;
        Verdict::Respond(Egress::Nic(nic))
    }

    /// An IPv6 packet from a NIC to `64:ff9b::/96`: translated to IPv4 with the NIC's IPv4
    /// block (behaviour §4 "NAT64", as dpservice does).
    fn nat64_outbound(&mut self, nic: NicId, pkt: &mut Vec<u8>, meta: &IpMeta) -> Verdict {
        if meta.fragment.is_some() {
            return Verdict::Drop(DropReason::UnsupportedProtocol);
        }
        let l4 = meta.l4_offset;
        let (p4, iport, rport) = match meta.protocol {
            proto::TCP | proto::UDP => {
                // TCP and UDP ports sit at the same offsets.
                let h = UdpView::new_unchecked(&pkt[l4..]);
                (meta.protocol, h.src_port(), h.dst_port())
            }
            proto::ICMPV6
                if pkt[l4] == icmpv6::ECHO_REQUEST && self.config.profile.icmp_supported =>
            {
                (proto::ICMP, IcmpView::new_unchecked(&pkt[l4..]).ident(), 0)
            }
            proto::ICMPV6 => return Verdict::Drop(DropReason::UnsupportedIcmp),
            _ => return Verdict::Drop(DropReason::UnsupportedProtocol),
        };
        let inside6 = <[u8; 16]>::read(pkt, meta.src_offset());
        let next = self.nat64_inside.len() as u32 + 1;
        let handle = *self.nat64_handles.entry(inside6).or_insert(next);
        if handle == next {
            self.nat64_inside.push(inside6);
        }
        let remote4 = <[u8; 4]>::read(pkt, 36);
        let seg = if p4 == proto::TCP {
            tcp_segment(pkt, meta)
        } else {
            (0, 0)
        };
        let idx = match self.find_or_create::<[u8; 4]>(
            nic,
            p4,
            handle.to_be_bytes(),
            iport,
            remote4,
            rport,
            seg,
            NAT64,
            None,
        ) {
            Ok(i) => i,
            Err(r) => return Verdict::Drop(r),
        };
        let f = self.fams.v4.table.flows[idx as usize];
        let nat = self.fams.v4.nat_ips[usize::from(f.nat_ip)];
        *pkt = nat64::v6_to_v4(pkt, meta, nat, remote4, f.nat_port);
        self.counters.translated_out[class_of(p4)] += 1;
        self.nic_counters[nic.0 as usize].translated_out[class_of(p4)] += 1;
        Verdict::Forward(Egress::Outside)
    }

    /// An IPv4 reply to a NAT64 flow: translated back to IPv6 for the inside host.
    fn nat64_inbound(&mut self, idx: u32, pkt: &mut Vec<u8>, meta: &IpMeta) -> Verdict {
        let f = self.fams.v4.table.flows[idx as usize];
        let h = u32::from_be_bytes(f.inside) as usize;
        let Some(&inside6) = self.nat64_inside.get(h.wrapping_sub(1)) else {
            return Verdict::Drop(DropReason::Unsolicited);
        };
        let remote4 = <[u8; 4]>::read(pkt, meta.src_offset());
        *pkt = nat64::v4_to_v6(pkt, meta, nat64::embed(remote4), inside6, f.inside_port);
        let c = class_of(meta.protocol);
        self.counters.translated_in[c] += 1;
        self.nic_counters[f.nic as usize].translated_in[c] += 1;
        Verdict::Forward(Egress::Nic(NicId(f.nic)))
    }

    /// An inbound packet; `hairpin_from` is the sending NIC when the packet was hairpinned.
    fn handle_outside<A: Fam>(
        &mut self,
        pkt: &mut Vec<u8>,
        meta: &IpMeta,
        hairpin_from: Option<NicId>,
    ) -> Verdict {
        let hairpin = hairpin_from.is_some();
        let dst = A::read(pkt, meta.dst_offset());
        let Some(&nat_idx) = A::state_ref(&self.fams).nat_lookup.get(&dst) else {
            return Verdict::Drop(DropReason::Unsolicited);
        };
        let l4 = meta.l4_offset;
        let p = meta.protocol;
        // Fast path: raw port reads (see the module documentation).
        let (nat_port, rport) = match p {
            proto::TCP | proto::UDP => (be16(pkt, l4 + 2), be16(pkt, l4)),
            _ if is_icmp(meta.version, p) => {
                if !self.config.profile.icmp_supported {
                    return Verdict::Drop(DropReason::UnsupportedIcmp);
                }
                let t = pkt[l4];
                if is_echo_reply(meta.version, t) {
                    (be16(pkt, l4 + 4), 0)
                } else if is_icmp_error(meta.version, t) {
                    return self.inbound_icmp_error::<A>(pkt, meta, hairpin_from);
                } else if is_echo_request(meta.version, t)
                    && self.config.profile.echo_reply_to_nat_ip
                    && !hairpin
                {
                    let src = meta.src(pkt);
                    let req = IcmpView::new_unchecked(&pkt[l4..]);
                    let (ident, seq) = (req.ident(), req.seq_no());
                    let data = req.body().to_vec();
                    *pkt = PacketRepr::echo_reply(dst.to_ip(), src, ident, seq, &data).emit();
                    self.counters.generated += 1;
                    return Verdict::Respond(Egress::Outside);
                } else {
                    return self.unsolicited(pkt, meta, hairpin);
                }
            }
            _ => return Verdict::Drop(DropReason::UnsupportedProtocol),
        };
        let remote = A::read(pkt, meta.src_offset());
        let Some(idx) = A::state_ref(&self.fams)
            .table
            .find_in(nat_idx, nat_port, &remote, rport, p)
        else {
            return self.unsolicited(pkt, meta, hairpin);
        };
        if self.config.profile.ttl_decrement && ttl::hops(pkt, meta.version) <= 1 {
            // Would reach the inside host with 0: answered from the NAT IP it was sent to,
            // before translation, so the quote shows only public addresses. The flow is not
            // refreshed.
            return self.time_exceeded(Some(dst.to_ip()), Egress::Outside, pkt, meta);
        }
        let tcp_flags = if p == proto::TCP { pkt[l4 + 13] } else { 0 };
        let nat64_flow = A::state_ref(&self.fams).table.flows[idx as usize].flags & NAT64 != 0;
        if nat64_flow && (meta.fragment.is_some() || hairpin) {
            // Fragments and hairpins are not translated across families.
            return Verdict::Drop(DropReason::UnsupportedProtocol);
        }
        self.refresh::<A>(idx, Dir::In, tcp_flags);
        if nat64_flow {
            return self.nat64_inbound(idx, pkt, meta);
        }
        self.note_frag_flow::<A>(meta, idx);
        let f = A::state_ref(&self.fams).table.flows[idx as usize];
        rewrite_endpoint(pkt, meta, Side::Dst, f.inside.as_ref(), f.inside_port);
        let c = class_of(p);
        match hairpin_from {
            Some(from) => {
                self.counters.hairpinned += 1;
                self.nic_counters[from.0 as usize].hairpinned += 1;
            }
            None => self.counters.translated_in[c] += 1,
        }
        self.nic_counters[f.nic as usize].translated_in[c] += 1;
        Verdict::Forward(Egress::Nic(NicId(f.nic)))
    }

    fn unsolicited(&mut self, pkt: &mut Vec<u8>, meta: &IpMeta, hairpin: bool) -> Verdict {
        let is_error = is_icmp(meta.version, meta.protocol)
            && is_icmp_error(meta.version, pkt[meta.l4_offset]);
        if hairpin || is_error || !self.config.profile.icmp_unreachable_on_unsolicited {
            return Verdict::Drop(DropReason::Unsolicited);
        }
        if meta.protocol == proto::TCP
            && meta.has_l4_header()
            && is_opening_syn(TcpView::new_unchecked(&pkt[meta.l4_offset..]).flags())
        {
            // RFC 5382 REQ-4: no answer for 6 s, and none at all if the inside host's own SYN
            // for this connection is translated meanwhile (simultaneous open). The SYN itself
            // is dropped either way.
            let l4 = meta.l4_offset;
            let key = ConnKey {
                nat: meta.dst(pkt),
                nat_port: TcpView::new_unchecked(&pkt[l4..]).dst_port(),
                remote: meta.src(pkt),
                remote_port: TcpView::new_unchecked(&pkt[l4..]).src_port(),
            };
            let due = self.now_ns.saturating_add(SYN_ANSWER_DELAY_NS);
            if self.deferred.offer(key, due, pkt) {
                self.next_deadline_bound_ns = self.next_deadline_bound_ns.min(due);
            }
            return Verdict::Drop(DropReason::Unsolicited);
        }
        let (t, c) = ErrorMessage::AdminProhibited.type_code(meta.version);
        let (src, dst) = (meta.src(pkt), meta.dst(pkt));
        *pkt = PacketRepr::icmp_error(dst, src, t, c, pkt).emit();
        self.counters.drop(DropReason::Unsolicited);
        self.counters.generated += 1;
        Verdict::Respond(Egress::Outside)
    }

    /// Checks the ICMP checksum and the quoted packet of an ICMP error (RFC 5508 REQ-3) and
    /// returns the quoted packet's metadata (offsets relative to the quote).
    fn quoted_packet(pkt: &[u8], meta: &IpMeta) -> Result<IpMeta, DropReason> {
        if !checksum::l4_ok(pkt, meta) {
            return Err(DropReason::BadChecksum);
        }
        let quoted = &pkt[meta.l4_offset + 8..meta.end];
        let qm = parse_ip_lax(quoted).map_err(|_| DropReason::Malformed)?;
        if qm.version != meta.version {
            return Err(DropReason::Malformed);
        }
        if qm.version == IpVersion::V4 && !checksum::ipv4_header_ok(quoted, qm.l4_offset) {
            return Err(DropReason::BadChecksum);
        }
        // RFC 792 quotes at least 8 transport bytes: enough for ports and echo identifiers.
        if !qm.has_l4_header() || qm.end < qm.l4_offset + 8 {
            return Err(DropReason::IcmpErrorNoFlow);
        }
        Ok(qm)
    }

    /// Rewrites the quoted packet of an ICMP error with `edit`, then fixes the outer ICMP
    /// checksum incrementally over the bytes that may have changed.
    fn edit_quoted(pkt: &mut [u8], meta: &IpMeta, qm: &IpMeta, edit: impl FnOnce(&mut [u8])) {
        let q = meta.l4_offset + 8;
        let quoted_len = meta.end - q;
        // Every field edited is 16-bit aligned within the quoted IP header or the first 20 bytes
        // of its transport header, so this even-length window covers all changes.
        let window = (qm.l4_offset + 20).min(quoted_len) & !1;
        let before: Vec<u8> = pkt[q..q + window].to_vec();
        edit(&mut pkt[q..meta.end]);
        rewrite::update_icmp_checksum(pkt, meta.l4_offset, &before, q);
    }

    /// What an ICMP error quotes, read the same way for both directions: the quoted packet
    /// ([`Self::quoted_packet`]), its addresses and its ports. A quoted echo counts if it is
    /// the kind the flow's inside host sent or received that way: a request (its identifier
    /// in the source port's place) for an inbound error, a reply (identifier in the
    /// destination's place) for an outbound one. docs/behaviour.md §4 ICMP: the error must be
    /// addressed to the quoted packet's source (inbound: the flow's NAT address; outbound: the
    /// remote), as Linux conntrack requires ("outer daddr != inner saddr"); without this any
    /// address could carry an error about any other one's flows.
    fn quoted_flow<A: Fam>(
        pkt: &[u8],
        meta: &IpMeta,
        inbound: bool,
    ) -> Result<QuotedFlow<A>, DropReason> {
        let qm = Self::quoted_packet(pkt, meta)?;
        let quoted = &pkt[meta.l4_offset + 8..meta.end];
        // `quoted_packet` checked that the quoted transport fields read here are present.
        let qt = &quoted[qm.l4_offset..];
        let (src_port, dst_port) = match qm.protocol {
            proto::TCP | proto::UDP => {
                // TCP and UDP ports sit at the same offsets.
                let h = UdpView::new_unchecked(qt);
                (h.src_port(), h.dst_port())
            }
            p if is_icmp(qm.version, p) && inbound && is_echo_request(qm.version, qt[0]) => {
                (IcmpView::new_unchecked(qt).ident(), 0)
            }
            p if is_icmp(qm.version, p) && !inbound && is_echo_reply(qm.version, qt[0]) => {
                (0, IcmpView::new_unchecked(qt).ident())
            }
            _ => return Err(DropReason::IcmpErrorNoFlow),
        };
        let src = A::read(quoted, qm.src_offset());
        if A::read(pkt, meta.dst_offset()) != src {
            return Err(DropReason::IcmpErrorNoFlow);
        }
        Ok(QuotedFlow {
            meta: qm,
            src,
            dst: A::read(quoted, qm.dst_offset()),
            src_port,
            dst_port,
        })
    }

    fn inbound_icmp_error<A: Fam>(
        &mut self,
        pkt: &mut [u8],
        meta: &IpMeta,
        hairpin_from: Option<NicId>,
    ) -> Verdict {
        let (qm, qsrc, qdst, nat_port, rport) = match Self::quoted_flow::<A>(pkt, meta, true) {
            Ok(q) => (q.meta, q.src, q.dst, q.src_port, q.dst_port),
            Err(r) => return Verdict::Drop(r),
        };
        let qp = qm.protocol;
        let fam = A::state_ref(&self.fams);
        let Some(&qnat) = fam.nat_lookup.get(&qsrc) else {
            return Verdict::Drop(DropReason::IcmpErrorNoFlow);
        };
        let Some(idx) = fam.table.find_in(qnat, nat_port, &qdst, rport, qp) else {
            return Verdict::Drop(DropReason::IcmpErrorNoFlow);
        };
        let f = fam.table.flows[idx as usize];
        if f.flags & NAT64 != 0 {
            // RFC 7915 ICMP error translation across families is not modelled.
            return Verdict::Drop(DropReason::UnsupportedIcmp);
        }
        Self::edit_quoted(pkt, meta, &qm, |quoted| {
            rewrite_endpoint(quoted, &qm, Side::Src, f.inside.as_ref(), f.inside_port);
        });
        rewrite_addr(pkt, meta, Side::Dst, f.inside.as_ref());
        self.note_frag_flow::<A>(meta, idx);
        match hairpin_from {
            Some(from) => {
                self.counters.hairpinned += 1;
                self.nic_counters[from.0 as usize].hairpinned += 1;
            }
            None => self.counters.translated_in[ProtoClass::Icmp as usize] += 1,
        }
        self.nic_counters[f.nic as usize].translated_in[ProtoClass::Icmp as usize] += 1;
        Verdict::Forward(Egress::Nic(NicId(f.nic)))
    }

    /// An ICMP error from an inside host about a packet it received through the NAT (RFC 5508
    /// REQ-5): translated so the remote sees the NAT address and port. It must be addressed to
    /// the quoted packet's source, the flow's remote (else `icmp_error_no_flow`). When that
    /// remote is one of the gateway's own NAT addresses (an error about a hairpinned packet),
    /// the translated error is hairpinned like any packet to a NAT address (docs/behaviour.md
    /// §4 Hairpinning): it reaches the NIC whose flow it quotes, or is dropped; it never leaves
    /// towards the gateway's own address.
    fn outbound_icmp_error<A: Fam>(
        &mut self,
        nic: NicId,
        pkt: &mut [u8],
        meta: &IpMeta,
    ) -> Verdict {
        let (qm, qsrc, qdst, rport, iport) = match Self::quoted_flow::<A>(pkt, meta, false) {
            Ok(q) => (q.meta, q.src, q.dst, q.src_port, q.dst_port),
            Err(r) => return Verdict::Drop(r),
        };
        let qp = qm.protocol;
        let fam = A::state_ref(&self.fams);
        let Some(idx) = fam.table.find_out(nic.0, qp, &qdst, iport, &qsrc, rport) else {
            return Verdict::Drop(DropReason::IcmpErrorNoFlow);
        };
        let f = fam.table.flows[idx as usize];
        let nat = fam.nat_ips[usize::from(f.nat_ip)];
        Self::edit_quoted(pkt, meta, &qm, |quoted| {
            rewrite_endpoint(quoted, &qm, Side::Dst, nat.as_ref(), f.nat_port);
        });
        rewrite_addr(pkt, meta, Side::Src, nat.as_ref());
        let to_nat_address = fam.nat_lookup.contains_key(&qsrc);
        self.note_frag_flow::<A>(meta, idx);
        if to_nat_address {
            // The outer destination (`quoted_flow` checked it is `qsrc`) is a NAT address.
            // docs/behaviour.md §4 Hairpinning: an error about a hairpinned packet is addressed
            // to the other NIC's NAT address. Translated outbound above, it now enters as an
            // inbound error and reaches that NIC only if it matches its flow; it never leaves
            // towards the gateway's own address. Counted once, as hairpinned (or as the drop).
            return self.inbound_icmp_error::<A>(pkt, meta, Some(nic));
        }
        self.counters.translated_out[ProtoClass::Icmp as usize] += 1;
        self.nic_counters[nic.0 as usize].translated_out[ProtoClass::Icmp as usize] += 1;
        Verdict::Forward(Egress::Outside)
    }
}
