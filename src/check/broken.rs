//! Deliberately broken dataplanes. Each wraps the real [`Gateway`] and breaks one rule, so that
//! a test can show the matching invariant checker fails ("a checker that cannot fail is
//! worthless", behaviour §6).
//!
//! One file (about 830 lines): the breakages are the arms of one `Broken` dataplane over shared
//! flow bookkeeping, read together against the invariant each one targets.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::check::Invariant;
use crate::nat::{
    Block, ConfigError, DropReason, Egress, Event, Family, FlowInfo, Gateway, GatewayConfig,
    Ingress, NicConfig, NicId, Verdict,
};
use crate::sim::dataplane::{Dataplane, DataplaneFactory, Wrapper};
use crate::sim::packet::{Tuple, build_tcp, build_udp_len, quoted_offset};
use crate::time::Instant;
use crate::wire::checksum;
use crate::wire::parse::{parse_ip, parse_ip_lax, proto};
use crate::wire::rewrite::{Side, rewrite_addr, rewrite_port};

/// The ways a dataplane can be broken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Breakage {
    /// Lets unsolicited TCP/UDP to this destination port through to the first NIC.
    LeakyFilter {
        /// The leaking port.
        port: u16,
    },
    /// Every NIC translates into the first slot of its NAT IP (one gateway instance per NIC).
    OverlappingBlocks,
    /// Uses one port past the end of each block.
    BlockEndOffByOne,
    /// Flushes a NIC's live flows to make room when its ports are exhausted.
    EvictingAllocator,
    /// Keeps a NIC's flows (and translation) after its block is released.
    StaleFlowAfterBlockLoss,
    /// Delivers inbound replies to the next NIC.
    ReplyToWrongNic,
    /// Corrupts the transport checksum of outbound packets.
    BadChecksum,
    /// Moves a live flow to another NAT port every third outbound packet.
    UnstableMapping,
    /// Translates NICs without a block with the first NAT IP anyway.
    IgnoresSelection,
    /// Silently ignores every second block assignment.
    WrongStatus,
    /// Drops the first outbound packet in every other instance (a process-global counter).
    Nondeterministic,
    /// Translates ICMP errors whatever their outer destination: an error the real gateway drops
    /// because it is not addressed to the quoted packet's source (docs/behaviour.md §4 ICMP) is
    /// re-addressed to it and translated (the gateway's behaviour before issue 19).
    IgnoresOuterDestination,
    /// After an RST the flow never returns to ESTABLISHED: its packets are dropped once the
    /// transitory timer has run from the RST, even if traffic went on (issue 11, bug 1).
    StickyRst,
    /// Expired flows whose port is still held count against the table limit, so new flows get
    /// `table_full` too early (bug 2).
    HeldFlowsCountAgainstTable,
    /// Mid-stream TCP of a NIC without a block is dropped as `tcp_no_flow` instead of
    /// `no_nat_block` (bug 3).
    NoBlockTcpAsNoFlow,
    /// Answers an unsolicited inbound SYN with ICMP 3/13 (v6 1/1) at once (bug 4; RFC 5382
    /// REQ-4 asks for 6 s of silence).
    ImmediateUnsolicitedIcmp,
    /// Established TCP flows die when idle for the transitory timer.
    EstablishedAtTransitoryTimer,
    /// Evicts the oldest live flow to make room when the table is full.
    EvictsOldestWhenTableFull,
}

impl Breakage {
    /// Every breakage.
    pub const ALL: [Breakage; 18] = [
        Breakage::LeakyFilter { port: 0 },
        Breakage::OverlappingBlocks,
        Breakage::BlockEndOffByOne,
        Breakage::EvictingAllocator,
        Breakage::StaleFlowAfterBlockLoss,
        Breakage::ReplyToWrongNic,
        Breakage::BadChecksum,
        Breakage::UnstableMapping,
        Breakage::IgnoresSelection,
        Breakage::WrongStatus,
        Breakage::Nondeterministic,
        Breakage::IgnoresOuterDestination,
        Breakage::StickyRst,
        Breakage::HeldFlowsCountAgainstTable,
        Breakage::NoBlockTcpAsNoFlow,
        Breakage::ImmediateUnsolicitedIcmp,
        Breakage::EstablishedAtTransitoryTimer,
        Breakage::EvictsOldestWhenTableFull,
    ];

    /// The kebab-case name `--broken` takes (without `leaky-filter`'s `:PORT`).
    pub fn name(self) -> &'static str {
        match self {
            Breakage::LeakyFilter { .. } => "leaky-filter",
            Breakage::OverlappingBlocks => "overlapping-blocks",
            Breakage::BlockEndOffByOne => "block-end-off-by-one",
            Breakage::EvictingAllocator => "evicting-allocator",
            Breakage::StaleFlowAfterBlockLoss => "stale-flow-after-block-loss",
            Breakage::ReplyToWrongNic => "reply-to-wrong-nic",
            Breakage::BadChecksum => "bad-checksum",
            Breakage::UnstableMapping => "unstable-mapping",
            Breakage::IgnoresSelection => "ignores-selection",
            Breakage::WrongStatus => "wrong-status",
            Breakage::Nondeterministic => "nondeterministic",
            Breakage::IgnoresOuterDestination => "ignores-outer-destination",
            Breakage::StickyRst => "sticky-rst",
            Breakage::HeldFlowsCountAgainstTable => "held-flows-count-against-table",
            Breakage::NoBlockTcpAsNoFlow => "no-block-tcp-as-no-flow",
            Breakage::ImmediateUnsolicitedIcmp => "immediate-unsolicited-icmp",
            Breakage::EstablishedAtTransitoryTimer => "established-at-transitory-timer",
            Breakage::EvictsOldestWhenTableFull => "evicts-oldest-when-table-full",
        }
    }

    /// The breakage named `name` (`leaky-filter` with port 0), if any.
    pub fn from_name(name: &str) -> Option<Breakage> {
        Self::ALL.into_iter().find(|b| b.name() == name)
    }

    /// The invariant meant to catch this breakage (another may trip first).
    pub fn invariant(self) -> Invariant {
        match self {
            Breakage::LeakyFilter { .. }
            | Breakage::StaleFlowAfterBlockLoss
            | Breakage::IgnoresOuterDestination => Invariant::NoInboundInitiation,
            Breakage::OverlappingBlocks | Breakage::BlockEndOffByOne => Invariant::PortLimit,
            Breakage::EvictingAllocator => Invariant::Timers,
            Breakage::ReplyToWrongNic => Invariant::Isolation,
            Breakage::BadChecksum => Invariant::WireValidity,
            Breakage::UnstableMapping => Invariant::MappingStability,
            Breakage::IgnoresSelection => Invariant::Selection,
            Breakage::WrongStatus => Invariant::Status,
            Breakage::Nondeterministic => Invariant::Determinism,
            Breakage::StickyRst
            | Breakage::HeldFlowsCountAgainstTable
            | Breakage::NoBlockTcpAsNoFlow
            | Breakage::ImmediateUnsolicitedIcmp
            | Breakage::EstablishedAtTransitoryTimer
            | Breakage::EvictsOldestWhenTableFull => Invariant::Liveness,
        }
    }

    /// A factory building this broken dataplane.
    pub fn factory(self) -> Box<DataplaneFactory> {
        Box::new(
            move |cfg: GatewayConfig| -> Result<Box<dyn Dataplane>, ConfigError> {
                // Only the nondeterministic breakage counts its instances, so other tests running in
                // parallel cannot disturb the alternation.
                static INSTANCES: AtomicU64 = AtomicU64::new(0);
                let instance = if self == Breakage::Nondeterministic {
                    INSTANCES.fetch_add(1, Ordering::Relaxed)
                } else {
                    0
                };
                let mut inner_cfg = cfg.clone();
                if self == Breakage::EvictsOldestWhenTableFull {
                    // The wrapper enforces the real limit; the inner table only needs room
                    // for the flows it evicts but the inner gateway still holds.
                    inner_cfg.max_flows = cfg.max_flows.saturating_mul(4);
                }
                Ok(Box::new(Broken {
                    inner: Gateway::new(inner_cfg)?,
                    flows: FlowBreakage::default(),
                    per_nic: BTreeMap::new(),
                    config: cfg,
                    kind: self,
                    nics: BTreeMap::new(),
                    told: BTreeMap::new(),
                    assignments: 0,
                    outbound: 0,
                    odd_instance: instance % 2 == 1,
                    hidden: Vec::new(),
                }))
            },
        )
    }
}

struct Broken {
    inner: Gateway,
    /// OverlappingBlocks: one gateway per NIC.
    per_nic: BTreeMap<NicId, Gateway>,
    config: GatewayConfig,
    kind: Breakage,
    nics: BTreeMap<NicId, NicConfig>,
    /// The blocks the control plane believes it handed out.
    told: BTreeMap<(NicId, Family), Block>,
    assignments: u64,
    outbound: u64,
    odd_instance: bool,
    hidden: Vec<Event>,
    /// State of the flow-level breakages (liveness, invariant 10).
    flows: FlowBreakage,
}

/// (NIC, protocol, inside, remote): a flow as its outbound packets key it.
type OutKey = (NicId, u8, SocketAddr, SocketAddr);
/// (protocol, NAT endpoint, remote): a flow as its inbound packets key it.
type InKey = (u8, SocketAddr, SocketAddr);

/// What the flow-level breakages remember, from the packets and the inner gateway's events.
#[derive(Default)]
struct FlowBreakage {
    /// StickyRst: when each flow saw an RST (by both keys).
    rst_out: BTreeMap<OutKey, u64>,
    rst_in: BTreeMap<InKey, u64>,
    /// EstablishedAtTransitoryTimer: last packet of each TCP flow.
    seen_out: BTreeMap<OutKey, u64>,
    seen_in: BTreeMap<InKey, u64>,
    /// Flows this wrapper killed (StickyRst, EstablishedAtTransitoryTimer, EvictsOldest...).
    dead_out: BTreeSet<OutKey>,
    dead_in: BTreeSet<InKey>,
    /// HeldFlowsCountAgainstTable: ended flows whose port is still held, per family.
    held: [BTreeSet<InKey>; 2],
    /// EvictsOldestWhenTableFull: live, not evicted flows per family in creation order.
    order: [BTreeMap<u64, (OutKey, InKey)>; 2],
    seq_of: BTreeMap<InKey, (usize, u64)>,
    seq: u64,
}

fn out_key(nic: NicId, t: &Tuple) -> OutKey {
    let remote = match t.icmp {
        Some(_) => SocketAddr::new(t.dst, 0),
        None => t.dst_addr(),
    };
    (nic, t.protocol, t.src_addr(), remote)
}

fn in_key(t: &Tuple) -> InKey {
    let remote = match t.icmp {
        Some(_) => SocketAddr::new(t.src, 0),
        None => t.src_addr(),
    };
    (t.protocol, t.dst_addr(), remote)
}

/// A packet that would open a new flow (UDP, ICMP echo request, TCP SYN).
fn opens_flow(t: &Tuple) -> bool {
    match t.protocol {
        proto::TCP => t.tcp_flags & 0x17 == 0x02,
        proto::UDP => true,
        _ => t.icmp == Some(crate::sim::packet::IcmpKind::EchoRequest),
    }
}

/// Re-addresses an ICMP error to its quoted packet's source when it is addressed elsewhere (the
/// rule `IgnoresOuterDestination` ignores); false when `pkt` is no such error.
fn readdress_to_quoted_source(pkt: &mut [u8]) -> bool {
    let Ok(meta) = parse_ip(pkt) else {
        return false;
    };
    let Some(off) = quoted_offset(pkt) else {
        return false;
    };
    let Ok(qm) = parse_ip_lax(&pkt[off..meta.end]) else {
        return false;
    };
    if qm.version != meta.version {
        return false;
    }
    let len = meta.addr_len();
    let qsrc = pkt[off + qm.src_offset()..off + qm.src_offset() + len].to_vec();
    if pkt[meta.dst_offset()..meta.dst_offset() + len] == qsrc[..] {
        return false;
    }
    rewrite_addr(pkt, &meta, Side::Dst, &qsrc);
    true
}

/// Rebuilds a TCP/UDP packet with a new destination (valid checksums).
fn redirect(pkt: &mut Vec<u8>, to: IpAddr) -> bool {
    let Some(t) = Tuple::parse(pkt) else {
        return false;
    };
    let dst = std::net::SocketAddr::new(to, t.dst_port);
    match t.protocol {
        proto::TCP => build_tcp(
            pkt,
            t.src_addr(),
            dst,
            t.tcp_flags,
            t.seq,
            t.ack,
            t.payload_len,
        ),
        proto::UDP => build_udp_len(pkt, t.src_addr(), dst, t.payload_len),
        _ => return false,
    }
    true
}

impl Broken {
    fn gw_for(&mut self, nic: NicId) -> &mut Gateway {
        if self.kind == Breakage::OverlappingBlocks
            && let Some(g) = self.per_nic.get_mut(&nic)
        {
            return g;
        }
        &mut self.inner
    }
}

impl Broken {
    /// The flow-level breakages that invariant 10 (liveness) must catch.
    fn process_flows(&mut self, now: Instant, ingress: Ingress, pkt: &mut Vec<u8>) -> Verdict {
        let now_ns = now.as_nanos();
        let Some(t) = Tuple::parse(pkt) else {
            return self.inner.process(now, ingress, pkt);
        };
        let transitory_ns = self
            .config
            .profile
            .timeout_tcp_transitory_ms
            .saturating_mul(1_000_000);
        let dead = |f: &FlowBreakage| match ingress {
            Ingress::Inside(nic) => f.dead_out.contains(&out_key(nic, &t)),
            Ingress::Outside => f.dead_in.contains(&in_key(&t)),
        };
        let kill_drop = match ingress {
            Ingress::Inside(_) if t.protocol == proto::TCP => DropReason::TcpNoFlow,
            Ingress::Inside(_) => DropReason::TableFull,
            Ingress::Outside => DropReason::Unsolicited,
        };
        let tcp_new_syn = t.protocol == proto::TCP && t.tcp_flags & 0x17 == 0x02;
        match self.kind {
            Breakage::StickyRst | Breakage::EstablishedAtTransitoryTimer
                if t.protocol == proto::TCP =>
            {
                if let Ingress::Inside(nic) = ingress
                    && tcp_new_syn
                {
                    // A new connection on the tuple starts clean.
                    let k = out_key(nic, &t);
                    self.flows.dead_out.remove(&k);
                    self.flows.rst_out.remove(&k);
                    self.flows.seen_out.remove(&k);
                } else if dead(&self.flows) {
                    return Verdict::Drop(kill_drop);
                }
                let (since, timer) = match (self.kind, ingress) {
                    (Breakage::StickyRst, Ingress::Inside(nic)) => {
                        (self.flows.rst_out.get(&out_key(nic, &t)).copied(), true)
                    }
                    (Breakage::StickyRst, Ingress::Outside) => {
                        (self.flows.rst_in.get(&in_key(&t)).copied(), true)
                    }
                    (_, Ingress::Inside(nic)) => {
                        (self.flows.seen_out.get(&out_key(nic, &t)).copied(), true)
                    }
                    (_, Ingress::Outside) => (self.flows.seen_in.get(&in_key(&t)).copied(), true),
                };
                let original = pkt.clone();
                if timer && since.is_some_and(|s| now_ns >= s.saturating_add(transitory_ns)) {
                    // Kill it (both directions) without telling anyone.
                    let v = self.inner.process(now, ingress, pkt);
                    if let (Verdict::Forward(_), Some(a)) = (v, Tuple::parse(pkt)) {
                        let (ok, ik) = match ingress {
                            Ingress::Inside(nic) => (out_key(nic, &t), in_key_of_out(&a)),
                            Ingress::Outside => match self.out_key_of_reply(&a, &t) {
                                Some(ok) => (ok, in_key(&t)),
                                None => return Verdict::Drop(kill_drop),
                            },
                        };
                        self.flows.dead_out.insert(ok);
                        self.flows.dead_in.insert(ik);
                    }
                    *pkt = original;
                    return Verdict::Drop(kill_drop);
                }
                let v = self.inner.process(now, ingress, pkt);
                if let (Verdict::Forward(_), Some(a)) = (v, Tuple::parse(pkt)) {
                    let (ok, ik) = match ingress {
                        Ingress::Inside(nic) => (Some(out_key(nic, &t)), in_key_of_out(&a)),
                        Ingress::Outside => (self.out_key_of_reply(&a, &t), in_key(&t)),
                    };
                    let rst = t.tcp_flags & 0x04 != 0;
                    match self.kind {
                        Breakage::StickyRst if rst => {
                            if let Some(ok) = ok {
                                self.flows.rst_out.entry(ok).or_insert(now_ns);
                            }
                            self.flows.rst_in.entry(ik).or_insert(now_ns);
                        }
                        Breakage::EstablishedAtTransitoryTimer => {
                            if let Some(ok) = ok {
                                self.flows.seen_out.insert(ok, now_ns);
                            }
                            self.flows.seen_in.insert(ik, now_ns);
                        }
                        _ => {}
                    }
                }
                v
            }
            Breakage::HeldFlowsCountAgainstTable => {
                if let Ingress::Inside(nic) = ingress
                    && opens_flow(&t)
                    && self
                        .inner
                        .translation_of(nic, t.protocol, t.src_addr(), out_key(nic, &t).3)
                        .is_none()
                {
                    let fam = Family::of(&t.src).index();
                    let live = [self.inner.live_flows().0, self.inner.live_flows().1][fam];
                    let held = self.flows.held[fam].len();
                    if live + held >= self.config.max_flows as usize {
                        return Verdict::Drop(DropReason::TableFull);
                    }
                }
                let v = self.inner.process(now, ingress, pkt);
                self.track_events();
                v
            }
            Breakage::NoBlockTcpAsNoFlow => {
                let v = self.inner.process(now, ingress, pkt);
                if v == Verdict::Drop(DropReason::NoNatBlock)
                    && t.protocol == proto::TCP
                    && t.tcp_flags & 0x02 == 0
                {
                    return Verdict::Drop(DropReason::TcpNoFlow);
                }
                v
            }
            Breakage::ImmediateUnsolicitedIcmp => {
                let original = pkt.clone();
                let v = self.inner.process(now, ingress, pkt);
                if ingress == Ingress::Outside
                    && tcp_new_syn
                    && self.config.profile.icmp_unreachable_on_unsolicited
                    && v == Verdict::Drop(DropReason::Unsolicited)
                {
                    let (ty, code) = if t.src.is_ipv4() { (3, 13) } else { (1, 1) };
                    *pkt = crate::wire::PacketRepr::icmp_error(t.dst, t.src, ty, code, &original)
                        .emit();
                    return Verdict::Respond(Egress::Outside);
                }
                v
            }
            Breakage::EvictsOldestWhenTableFull => {
                if dead(&self.flows)
                    && !(tcp_new_syn && matches!(ingress, Ingress::Inside(_)))
                    && (ingress == Ingress::Outside || t.protocol == proto::TCP)
                {
                    return Verdict::Drop(kill_drop);
                }
                let v = self.inner.process(now, ingress, pkt);
                self.track_events();
                for fam in 0..2 {
                    while self.flows.order[fam].len() > self.config.max_flows as usize {
                        let Some((_, (ok, ik))) = self.flows.order[fam].pop_first() else {
                            break;
                        };
                        self.flows.seq_of.remove(&ik);
                        self.flows.dead_out.insert(ok);
                        self.flows.dead_in.insert(ik);
                    }
                }
                v
            }
            _ => self.inner.process(now, ingress, pkt),
        }
    }

    /// The outbound key of the flow an inbound packet (as delivered, `a`) answers.
    fn out_key_of_reply(&self, a: &Tuple, arrived: &Tuple) -> Option<OutKey> {
        let nic = self
            .nics
            .iter()
            .find(|(_, c)| c.addresses.contains(&a.dst))
            .map(|(id, _)| *id)?;
        let remote = in_key(arrived).2;
        Some((nic, a.protocol, a.dst_addr(), remote))
    }

    /// Moves the inner gateway's events to `hidden` (they still reach observers, in order)
    /// and follows flows created, ended and released.
    fn track_events(&mut self) {
        let events = self.inner.drain_events();
        for e in &events {
            match e {
                Event::FlowCreated { flow, .. } => {
                    let fam = Family::of(&flow.nat.ip()).index();
                    let ik = (flow.protocol, flow.nat, flow.remote);
                    let ok = (flow.nic, flow.protocol, flow.inside, flow.remote);
                    self.flows.seq += 1;
                    let seq = self.flows.seq;
                    self.flows.order[fam].insert(seq, (ok, ik));
                    self.flows.seq_of.insert(ik, (fam, seq));
                    self.flows.dead_out.remove(&ok);
                    self.flows.dead_in.remove(&ik);
                    self.flows.held[fam].remove(&ik);
                }
                Event::FlowEnded { flow, .. } => {
                    let fam = Family::of(&flow.nat.ip()).index();
                    let ik = (flow.protocol, flow.nat, flow.remote);
                    if let Some((f, seq)) = self.flows.seq_of.remove(&ik) {
                        self.flows.order[f].remove(&seq);
                    }
                    self.flows.held[fam].insert(ik);
                }
                Event::PortReleased { flow, .. } => {
                    let fam = Family::of(&flow.nat.ip()).index();
                    self.flows.held[fam].remove(&(flow.protocol, flow.nat, flow.remote));
                }
                _ => {}
            }
        }
        self.hidden.extend(events);
    }
}

/// The inbound key of a translated outbound packet.
fn in_key_of_out(a: &Tuple) -> InKey {
    let remote = match a.icmp {
        Some(_) => SocketAddr::new(a.dst, 0),
        None => a.dst_addr(),
    };
    (a.protocol, a.src_addr(), remote)
}

/// Only what a breakage changes is written here; `poll_transmit`, `counters`, `nic_counters`
/// and `live_flows` forward to the inner gateway ([`Wrapper`]).
impl Wrapper for Broken {
    fn inner(&self) -> &dyn Dataplane {
        &self.inner
    }

    fn inner_mut(&mut self) -> &mut dyn Dataplane {
        &mut self.inner
    }

    fn process(&mut self, now: Instant, ingress: Ingress, pkt: &mut Vec<u8>) -> Verdict {
        match (self.kind, ingress) {
            (Breakage::OverlappingBlocks, Ingress::Outside) => {
                let original = pkt.clone();
                let mut last = Verdict::Drop(DropReason::Unsolicited);
                for g in self.per_nic.values_mut() {
                    pkt.clone_from(&original);
                    last = g.process(now, ingress, pkt);
                    if matches!(last, Verdict::Forward(_)) {
                        return last;
                    }
                }
                pkt.clone_from(&original);
                last
            }
            (Breakage::OverlappingBlocks, Ingress::Inside(n)) => {
                self.gw_for(n).process(now, ingress, pkt)
            }
            (Breakage::LeakyFilter { port }, Ingress::Outside) => {
                let v = self.inner.process(now, ingress, pkt);
                let leak = Tuple::parse(pkt).filter(|t| t.dst_port == port || port == 0);
                if v == Verdict::Drop(DropReason::Unsolicited)
                    && let Some(t) = leak
                {
                    let first = self
                        .nics
                        .iter()
                        .next()
                        .map(|(id, c)| (*id, c.addresses.clone()));
                    // Delivered to the first NIC's address of the packet's family, if it has one.
                    if let Some((id, addrs)) = first
                        && let Some(&a) = addrs.iter().find(|a| a.is_ipv4() == t.dst.is_ipv4())
                        && redirect(pkt, a)
                    {
                        return Verdict::Forward(Egress::Nic(id));
                    }
                }
                v
            }
            (Breakage::EvictingAllocator, Ingress::Inside(n)) => {
                let original = pkt.clone();
                let v = self.inner.process(now, ingress, pkt);
                if v != Verdict::Drop(DropReason::PortsExhausted) {
                    return v;
                }
                let fam = if original.first().is_some_and(|b| b >> 4 == 6) {
                    Family::V6
                } else {
                    Family::V4
                };
                if let Some(b) = self.inner.block_of(n, fam) {
                    self.inner.release_block(now, n, fam);
                    let _ = self.inner.assign_block(now, n, b);
                    // Hide the block churn so only the evicted flows show.
                    let events = self.inner.drain_events();
                    self.hidden.extend(events.into_iter().filter(|e| {
                        !matches!(e, Event::BlockAssigned { .. } | Event::BlockRemoved { .. })
                    }));
                }
                *pkt = original;
                self.inner.process(now, ingress, pkt)
            }
            (Breakage::ReplyToWrongNic, Ingress::Outside) => {
                match self.inner.process(now, ingress, pkt) {
                    Verdict::Forward(Egress::Nic(n)) => {
                        let other = self.nics.keys().find(|k| **k != n).copied().unwrap_or(n);
                        Verdict::Forward(Egress::Nic(other))
                    }
                    v => v,
                }
            }
            (Breakage::BadChecksum, Ingress::Inside(_)) => {
                let v = self.inner.process(now, ingress, pkt);
                if v == Verdict::Forward(Egress::Outside)
                    && let Ok(meta) = parse_ip(pkt)
                {
                    // Flip a bit of the transport checksum (or of bytes 2..4 without one).
                    let field = checksum::transport_field(meta.version, meta.protocol);
                    let at = meta.l4_offset + field.map_or(2, |f| f.at);
                    if let Some(b) = pkt.get_mut(at) {
                        *b ^= 0x01;
                    }
                }
                v
            }
            (Breakage::UnstableMapping, Ingress::Inside(_)) => {
                let v = self.inner.process(now, ingress, pkt);
                if v == Verdict::Forward(Egress::Outside)
                    && let Ok(meta) = parse_ip(pkt)
                    && matches!(meta.protocol, proto::TCP | proto::UDP)
                {
                    self.outbound += 1;
                    if self.outbound.is_multiple_of(3)
                        && let Some(t) = Tuple::parse(pkt)
                    {
                        rewrite_port(pkt, &meta, Side::Src, t.src_port.wrapping_add(1).max(1024));
                    }
                }
                v
            }
            (Breakage::IgnoresSelection, Ingress::Inside(_)) => {
                let original = pkt.clone();
                let v = self.inner.process(now, ingress, pkt);
                if v == Verdict::Drop(DropReason::NoNatBlock)
                    && let Some(&nat) = self.config.nat_ips.first()
                {
                    *pkt = original;
                    if let Ok(meta) = parse_ip(pkt)
                        && nat.is_ipv4() == (meta.version == crate::wire::IpVersion::V4)
                    {
                        let bytes = match nat {
                            IpAddr::V4(a) => a.octets().to_vec(),
                            IpAddr::V6(a) => a.octets().to_vec(),
                        };
                        rewrite_addr(pkt, &meta, Side::Src, &bytes);
                        return Verdict::Forward(Egress::Outside);
                    }
                }
                v
            }
            (Breakage::IgnoresOuterDestination, _) => {
                let original = pkt.clone();
                let v = self.inner.process(now, ingress, pkt);
                if v != Verdict::Drop(DropReason::IcmpErrorNoFlow) {
                    return v;
                }
                let mut again = original.clone();
                if readdress_to_quoted_source(&mut again) {
                    let retry = self.inner.process(now, ingress, &mut again);
                    if matches!(retry, Verdict::Forward(_)) {
                        *pkt = again;
                        return retry;
                    }
                }
                *pkt = original;
                v
            }
            (Breakage::Nondeterministic, Ingress::Inside(_)) => {
                self.outbound += 1;
                if self.odd_instance && self.outbound == 1 {
                    return Verdict::Drop(DropReason::TableFull);
                }
                self.inner.process(now, ingress, pkt)
            }
            (
                Breakage::StickyRst
                | Breakage::HeldFlowsCountAgainstTable
                | Breakage::NoBlockTcpAsNoFlow
                | Breakage::ImmediateUnsolicitedIcmp
                | Breakage::EstablishedAtTransitoryTimer
                | Breakage::EvictsOldestWhenTableFull,
                _,
            ) => self.process_flows(now, ingress, pkt),
            _ => self.inner.process(now, ingress, pkt),
        }
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        let own = self.inner.poll_timeout();
        let others = self.per_nic.values_mut().filter_map(|g| g.poll_timeout());
        own.into_iter().chain(others).min()
    }

    /// Every gateway's timers (OverlappingBlocks keeps one per NIC): the exact deadline, not
    /// the inner gateway's cheaper bound.
    fn poll_wakeup(&mut self) -> Option<Instant> {
        Wrapper::poll_timeout(self)
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.inner.handle_timeout(now);
        for g in self.per_nic.values_mut() {
            g.handle_timeout(now);
        }
    }

    fn add_nic(&mut self, id: NicId, nic: NicConfig) -> Result<(), ConfigError> {
        self.nics.insert(id, nic.clone());
        if self.kind == Breakage::OverlappingBlocks {
            let mut g = Gateway::new(self.config.clone())?;
            g.add_nic(id, nic.clone())?;
            self.per_nic.insert(id, g);
        }
        self.inner.add_nic(id, nic)
    }

    fn remove_nic(&mut self, now: Instant, id: NicId) {
        self.nics.remove(&id);
        if let Some(mut g) = self.per_nic.remove(&id) {
            g.remove_nic(now, id);
            self.hidden.extend(g.drain_events());
        }
        self.inner.remove_nic(now, id)
    }

    fn assign_block(&mut self, now: Instant, id: NicId, block: Block) -> Result<(), ConfigError> {
        self.told.insert((id, Family::of(&block.nat_ip)), block);
        self.assignments += 1;
        match self.kind {
            Breakage::OverlappingBlocks => {
                let first = Block {
                    port: 1024,
                    end_port: 1024 + (block.end_port - block.port),
                    ..block
                };
                self.gw_for(id).assign_block(now, id, first)
            }
            Breakage::BlockEndOffByOne if block.end_port < u16::MAX => {
                let wider = Block {
                    end_port: block.end_port + 1,
                    ..block
                };
                self.inner
                    .assign_block(now, id, wider)
                    .or_else(|_| self.inner.assign_block(now, id, block))
            }
            Breakage::WrongStatus if self.assignments.is_multiple_of(2) => Ok(()),
            _ => self.inner.assign_block(now, id, block),
        }
    }

    fn release_block(&mut self, now: Instant, id: NicId, family: Family) -> Option<Block> {
        let told = self.told.remove(&(id, family));
        match self.kind {
            Breakage::StaleFlowAfterBlockLoss => told,
            _ => self.gw_for(id).release_block(now, id, family),
        }
    }

    fn block_of(&self, id: NicId, family: Family) -> Option<Block> {
        match self.kind {
            // These lie the same way the control plane believes, so only their packets show.
            Breakage::BlockEndOffByOne
            | Breakage::OverlappingBlocks
            | Breakage::StaleFlowAfterBlockLoss => self.told.get(&(id, family)).copied(),
            _ => self.inner.block_of(id, family),
        }
    }

    fn drain_events(&mut self) -> Vec<Event> {
        if matches!(
            self.kind,
            Breakage::HeldFlowsCountAgainstTable | Breakage::EvictsOldestWhenTableFull
        ) {
            self.track_events();
        }
        let mut e = std::mem::take(&mut self.hidden);
        e.extend(self.inner.drain_events());
        for g in self.per_nic.values_mut() {
            e.extend(g.drain_events());
        }
        e
    }

    fn flows(&self) -> Vec<FlowInfo> {
        let mut f = self.inner.flows();
        for g in self.per_nic.values() {
            f.extend(g.flows());
        }
        f
    }

    fn translation_of(
        &self,
        nic: NicId,
        protocol: u8,
        inside: std::net::SocketAddr,
        remote: std::net::SocketAddr,
    ) -> Option<std::net::SocketAddr> {
        // OverlappingBlocks keeps each NIC's flows in its own gateway.
        self.per_nic
            .get(&nic)
            .unwrap_or(&self.inner)
            .translation_of(nic, protocol, inside, remote)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_breakage_has_its_own_name() {
        let mut names = BTreeSet::new();
        for b in Breakage::ALL {
            assert!(names.insert(b.name()), "{} twice", b.name());
            let back = Breakage::from_name(b.name()).expect("name parses");
            assert_eq!(std::mem::discriminant(&back), std::mem::discriminant(&b));
        }
        assert_eq!(Breakage::from_name("no-such-breakage"), None);
    }
}
