//! Invariant 10, liveness (docs/behaviour.md §6): the gateway must not drop what it has to let
//! through, and must drop for the right reason.
//!
//! This file stays whole (about 1,050 lines): it is one model (the flows with their TCP states
//! and two deadlines, the held ports, the per-scope and table counts, the blocks), and the
//! judgement of each drop reads all of it while every observation updates all of it; cut apart,
//! the counts would sit apart from the rules that keep them exact.
//!
//! The checker keeps its own model of every flow, written from docs/behaviour.md §4 and §5 and
//! the profile's values, apart from the gateway's code (nothing here calls `crate::nat`'s state
//! machine, timers or table): a TCP machine with RST recovery (`linux`: RST → CLOSE, no
//! recovery), the profile's timers, port holds (TCP from the close, alongside the transitory
//! timer; UDP/ICMP from expiry), the table limit over live flows only, each NIC's blocks per
//! family and the ports in use per scope key.
//!
//! The model is exact where the rules are, and keeps two deadlines per flow where it is not:
//! `certain_until` (the flow is surely live before it) and `possible_until` (it is surely gone
//! after it, including a profile's aging scan period). A packet is only said to "have to pass"
//! before `certain_until`; ports and table slots count as taken until `possible_until` plus the
//! longest hold. So an uncertain case is never flagged, and every flagged one is a real wrongful
//! drop. The checks it makes:
//!
//! - a packet of a surely live flow, in a direction its TCP state allows, dropped as
//!   `unsolicited`, `tcp_no_flow`, `ports_exhausted`, `table_full` or `no_nat_block`;
//! - an outbound packet without a flow from a NIC without a block of its family dropped for any
//!   of those reasons but `no_nat_block` (that reason comes first, TCP flags or not);
//! - a new flow's first packet (UDP, ICMP echo request, TCP SYN) dropped as `table_full` while
//!   the table surely has room, as `ports_exhausted` while the scope key surely has a free port,
//!   or as `tcp_no_flow`;
//! - with `icmp_unreachable_on_unsolicited`, an unsolicited inbound TCP SYN answered at once, or
//!   answered later than the SYN by less than 6 s or after the inside host's own SYN for that
//!   connection (RFC 5382 REQ-4: the answer would kill a simultaneous open).
//!
//! Not checked (the gateway may legitimately drop them, or the rules leave room): malformed
//! packets and every other drop reason, ICMP errors, TCP packets with SYN on a flow already
//! open, packets of a flow closed by both FINs, `linux` flows after an RST, packets of NAT64
//! flows, new flows when `tcp_midstream_pickup` is on (for non-SYN TCP) or ICMP is unsupported.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};

use foldhash::fast::FixedState;
use hashbrown::HashMap;

use crate::nat::{Block, DropReason, Egress, Event, Family, Ingress, LimitScope, NicId, Profile};
use crate::nat::{FlowView, Verdict};
use crate::sim::observe::{Invariant, NicInfo, Observation, Violation};
use crate::sim::packet::{IcmpKind, Tuple, quoted_offset};
use crate::wire::icmp::{ErrorMessage, is_icmp};
use crate::wire::parse::{IpVersion, parse_ip_lax, proto};
use crate::wire::repr::tcp_flags::{self, ACK, FIN, RST, SYN};
use crate::wire::view::{Ipv4View, Ipv6View};

/// The ports of `block` the gateway hands out (all but the last under the dpservice quirk).
pub(super) fn block_usable(profile: &Profile, block: &Block) -> u32 {
    let n = block.len();
    if profile.last_port_unusable && n > 1 {
        n - 1
    } else {
        n
    }
}

/// How many ports of `block` the new flow `t` (outbound, before translation) may be given, so
/// that a refusal with fewer taken is wrong; `None` when a refusal is always allowed. A hairpin
/// flow to the block's own NAT endpoint must not be given that endpoint (it would be its own
/// reply; behaviour §4 "Hairpinning"): that port does not count, and under the `nic` scope the
/// inside endpoint's one mapped port may be exactly it.
pub(super) fn usable_ports(profile: &Profile, block: &Block, t: &Tuple) -> Option<u32> {
    let usable = block_usable(profile, block);
    let self_addressed =
        t.dst == block.nat_ip && (block.port..=block.end_port).contains(&t.dst_port);
    match (self_addressed, profile.limit_scope) {
        (false, _) => Some(usable),
        (true, LimitScope::Nic) => None,
        (true, _) => Some(usable.saturating_sub(1)),
    }
}

/// How long an unsolicited inbound SYN must go unanswered (RFC 5382 REQ-4).
const SYN_SILENCE_NS: u64 = 6_000_000_000;
/// Slack around deadlines, so an event at the very deadline is never judged.
const SLACK_NS: u64 = 1_000_000;

type Map<K, V> = HashMap<K, V, FixedState>;

fn map<K, V>() -> Map<K, V> {
    HashMap::with_hasher(FixedState::with_seed(0x6c69_7665))
}

/// The model's TCP state (RFC 6146 §3.5.2.2 with the direction checks of docs/behaviour.md §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tcp {
    /// The inside SYN was seen; `answered` once a SYN(-ACK) came from outside.
    Opening { answered: bool },
    /// Established; FINs seen so far (out, in).
    Established { fin_out: bool, fin_in: bool },
    /// Both FINs seen: transitory timer, hold from the close.
    Closed,
    /// An RST was seen (from either side).
    Reset,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct InsideKey {
    nic: NicId,
    proto: u8,
    inside: SocketAddr,
    remote: SocketAddr,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct ReplyKey {
    proto: u8,
    nat: SocketAddr,
    remote: SocketAddr,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Scope {
    Nic(u8, Family),
    RemoteIp(u8, IpAddr),
    RemoteEndpoint(u8, SocketAddr),
}

#[derive(Clone, Copy, Debug)]
struct Flow {
    key: InsideKey,
    nat: SocketAddr,
    node: u16,
    family: Family,
    scope: Scope,
    tcp: Tcp,
    udp_saw_inbound: bool,
    /// Surely live before this (ns).
    certain_until: u64,
    /// Surely gone after this (ns).
    possible_until: u64,
    /// When TCP closed (second FIN or RST), for the hold.
    closed_at: Option<u64>,
    /// No packet of the flow moved the model on yet: the next one is the packet that opened
    /// it (a mid-stream pickup opens a TCP flow as established).
    fresh: bool,
    /// TCP: a packet other than an RST came back from outside (conntrack's `SEEN_REPLY`).
    seen_reply: bool,
}

/// What a packet does to a flow's deadlines.
enum Next {
    /// Restarts the timer with this duration (ns).
    Exact(u64),
    /// Restarts it with a duration between these (ns).
    Range(u64, u64),
    /// The model cannot tell: nothing certain, gone within this (ns) at the latest.
    Unknown(u64),
    /// No refresh.
    Keep,
}

/// A port still taken after its flow ended (or may have ended).
#[derive(Clone, Copy, Debug)]
struct Held {
    nic: NicId,
    scope: Scope,
}

/// Invariant 10's model and checks. Fed by [`super::InvariantChecker`] with every observation.
pub struct Liveness {
    profile: Profile,
    linux: bool,
    /// The conntrack table limit per node and family, when known.
    table_limit: Option<u32>,
    nodes: BTreeMap<NicId, u16>,
    blocks: Map<(NicId, Family), Block>,
    /// NICs whose node restarted: which blocks their dataplane holds is unknown until the
    /// control plane's next assignment or release, so their new flows are not judged.
    blocks_unknown: BTreeSet<NicId>,
    flows: Map<u64, Flow>,
    by_inside: Map<InsideKey, u64>,
    by_reply: Map<ReplyKey, u64>,
    /// (possible_until, id) of live flows, for the sweep.
    live_queue: BTreeSet<(u64, u64)>,
    /// (free_by, id) of held ports.
    hold_queue: BTreeSet<(u64, u64)>,
    held: Map<u64, Held>,
    /// Possibly live flows per node and family.
    table: Map<(u16, Family), u32>,
    /// Possibly taken ports (live or held) per NIC and scope key.
    ports: Map<(NicId, Scope), u32>,
    /// Unsolicited inbound SYNs not yet answered: (NAT endpoint, remote endpoint) → first seen.
    pending_syn: Map<(SocketAddr, SocketAddr), u64>,
    /// Connections whose inside SYN was translated: the answer must not come at all.
    cancelled_syn: Map<(SocketAddr, SocketAddr), ()>,
    next_id: u64,
    checks: u64,
}

fn is_nat64(t: &Tuple) -> bool {
    match t.dst {
        IpAddr::V6(a) => a.segments()[..6] == [0x64, 0xff9b, 0, 0, 0, 0],
        IpAddr::V4(_) => false,
    }
}

fn remote_of(t: &Tuple, outbound: bool) -> SocketAddr {
    match (t.icmp, outbound) {
        (Some(_), true) => SocketAddr::new(t.dst, 0),
        (Some(_), false) => SocketAddr::new(t.src, 0),
        (None, true) => t.dst_addr(),
        (None, false) => t.src_addr(),
    }
}

fn ms(v: u64) -> u64 {
    v.saturating_mul(1_000_000)
}

/// The reasons this invariant judges; every other drop reason is left alone.
fn judged(r: DropReason) -> bool {
    matches!(
        r,
        DropReason::Unsolicited
            | DropReason::TcpNoFlow
            | DropReason::PortsExhausted
            | DropReason::TableFull
            | DropReason::NoNatBlock
    )
}

/// The TTL (IPv4) or hop limit (IPv6) a packet arrived with; `None` when it is no IP packet.
fn arrival_hops(pkt: &[u8]) -> Option<u8> {
    let m = parse_ip_lax(pkt).ok()?;
    Some(match m.version {
        IpVersion::V4 => Ipv4View::new_unchecked(pkt).ttl(),
        IpVersion::V6 => Ipv6View::new_unchecked(pkt).hop_limit(),
    })
}

/// True when `answer` is an ICMP Time Exceeded of its own family.
fn is_time_exceeded(answer: &[u8]) -> bool {
    parse_ip_lax(answer).is_ok_and(|m| {
        is_icmp(m.version, m.protocol)
            && m.has_l4_header()
            && answer.get(m.l4_offset).copied()
                == Some(ErrorMessage::TimeExceeded.type_code(m.version).0)
    })
}

impl Liveness {
    /// A model for a gateway running `profile`; `table_limit` is the conntrack table's capacity
    /// per family (`None`: unknown, table checks off).
    pub fn new(profile: Profile, table_limit: Option<u32>) -> Self {
        Liveness {
            linux: !profile.tcp_rst_recovery,
            profile,
            table_limit,
            nodes: BTreeMap::new(),
            blocks: map(),
            blocks_unknown: BTreeSet::new(),
            flows: map(),
            by_inside: map(),
            by_reply: map(),
            live_queue: BTreeSet::new(),
            hold_queue: BTreeSet::new(),
            held: map(),
            table: map(),
            ports: map(),
            pending_syn: map(),
            cancelled_syn: map(),
            next_id: 0,
            checks: 0,
        }
    }

    /// Checks made so far.
    pub fn checks(&self) -> u64 {
        self.checks
    }

    fn scope(&self, proto: u8, remote: SocketAddr) -> Scope {
        match self.profile.limit_scope {
            LimitScope::Nic => Scope::Nic(proto, Family::of(&remote.ip())),
            LimitScope::RemoteIp => Scope::RemoteIp(proto, remote.ip()),
            LimitScope::RemoteEndpoint => Scope::RemoteEndpoint(proto, remote),
        }
    }

    fn scan_ns(&self) -> u64 {
        ms(self.profile.aging_scan_period_ms)
    }

    /// The longest any gateway following the profile may keep a flow after a packet.
    fn longest_ns(&self, proto: u8) -> u64 {
        let p = &self.profile;
        ms(match proto {
            proto::TCP => p
                .timeout_tcp_established_ms
                .max(p.timeout_tcp_transitory_ms),
            proto::UDP => p.timeout_udp_ms.max(p.timeout_udp_stream_ms),
            _ => p.timeout_icmp_ms,
        })
        .max(if proto == proto::TCP {
            ms(self.profile.timeout_tcp_reset_ms.unwrap_or(0))
        } else {
            0
        })
    }

    /// Observes one thing; returns a violation of invariant 10.
    pub fn observe(&mut self, now_ns: u64, obs: &Observation<'_>) -> Result<(), Violation> {
        self.sweep(now_ns);
        match obs {
            Observation::Processed {
                node,
                ingress,
                before,
                verdict,
                after,
            } => match ingress {
                Ingress::Inside(nic) => self.outbound(*node, *nic, before, *verdict, after, now_ns),
                Ingress::Outside => self.inbound(*node, before, *verdict, after, now_ns),
            },
            Observation::Transmitted { pkt, .. } => self.transmitted(pkt, now_ns),
            Observation::Dataplane {
                event: Event::FlowCreated { flow, .. },
                node,
                ..
            } => {
                self.create(*node, flow, now_ns);
                Ok(())
            }
            Observation::BlockAssigned { nic, block } => {
                self.blocks
                    .insert((*nic, Family::of(&block.nat_ip)), *block);
                Ok(())
            }
            Observation::BlockReleased { nic, family, .. } => {
                self.blocks.remove(&(*nic, *family));
                self.blocks_unknown.remove(nic);
                // The flows are lost at once; their ports count as held until the longest
                // hold (an upper bound: the gateway may free them sooner).
                let ids: Vec<u64> = self
                    .flows
                    .iter()
                    .filter(|(_, f)| f.key.nic == *nic && f.family == *family)
                    .map(|(id, _)| *id)
                    .collect();
                for id in ids {
                    self.end(id);
                }
                Ok(())
            }
            Observation::NicUpdated(NicInfo { id, node, .. }) => {
                self.nodes.insert(*id, *node);
                Ok(())
            }
            Observation::NicRemoved(nic) => {
                self.nodes.remove(nic);
                self.blocks.remove(&(*nic, Family::V4));
                self.blocks.remove(&(*nic, Family::V6));
                self.forget(|f| f.key.nic == *nic, |h| h.nic == *nic);
                Ok(())
            }
            Observation::NodeRestarted { node } => {
                let on_node: BTreeSet<NicId> = self
                    .nodes
                    .iter()
                    .filter(|(_, n)| *n == node)
                    .map(|(id, _)| *id)
                    .collect();
                self.forget(|f| f.node == *node, |h| on_node.contains(&h.nic));
                self.blocks_unknown.extend(on_node);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Drops every flow and held port matching the predicates at once (block loss, NIC
    /// removal, node restart). Iteration order does not matter: only removal and counts.
    fn forget(&mut self, flow: impl Fn(&Flow) -> bool, hold: impl Fn(&Held) -> bool) {
        let ids: Vec<u64> = self
            .flows
            .iter()
            .filter(|(_, f)| flow(f))
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            if let Some(f) = self.remove_live(id) {
                self.dec_port(f.key.nic, f.scope);
            }
        }
        let held: Vec<u64> = self
            .held
            .iter()
            .filter(|(_, h)| hold(h))
            .map(|(id, _)| *id)
            .collect();
        if held.is_empty() {
            return;
        }
        for id in &held {
            if let Some(h) = self.held.remove(id) {
                self.dec_port(h.nic, h.scope);
            }
        }
        let gone: BTreeSet<u64> = held.into_iter().collect();
        self.hold_queue.retain(|(_, i)| !gone.contains(i));
    }

    fn dec_port(&mut self, nic: NicId, scope: Scope) {
        if let Some(c) = self.ports.get_mut(&(nic, scope)) {
            *c = c.saturating_sub(1);
            if *c == 0 {
                self.ports.remove(&(nic, scope));
            }
        }
    }

    /// Takes a flow out of the live set (and the table count); its port is the caller's.
    fn remove_live(&mut self, id: u64) -> Option<Flow> {
        let f = self.flows.remove(&id)?;
        self.live_queue.remove(&(f.possible_until, id));
        if self.by_inside.get(&f.key) == Some(&id) {
            self.by_inside.remove(&f.key);
        }
        let rk = ReplyKey {
            proto: f.key.proto,
            nat: f.nat,
            remote: f.key.remote,
        };
        if self.by_reply.get(&rk) == Some(&id) {
            self.by_reply.remove(&rk);
        }
        if let Some(c) = self.table.get_mut(&(f.node, f.family)) {
            *c = c.saturating_sub(1);
        }
        Some(f)
    }

    /// Ends a flow in the model: its table slot is free, its port held until the latest moment
    /// the profile allows.
    fn end(&mut self, id: u64) {
        let Some(f) = self.remove_live(id) else {
            return;
        };
        let p = &self.profile;
        let free_by = match f.key.proto {
            proto::TCP => {
                let hold = ms(p.hold_tcp_fin_ms.max(p.hold_tcp_rst_ms));
                match f.closed_at {
                    // From the close, alongside the transitory timer.
                    Some(c) => f.possible_until.max(c.saturating_add(hold)),
                    None => f.possible_until.saturating_add(hold),
                }
            }
            proto::UDP => f.possible_until.saturating_add(ms(p.hold_udp_ms)),
            _ => f.possible_until.saturating_add(ms(p.hold_icmp_ms)),
        }
        .saturating_add(self.scan_ns() + SLACK_NS);
        self.held.insert(
            id,
            Held {
                nic: f.key.nic,
                scope: f.scope,
            },
        );
        self.hold_queue.insert((free_by, id));
    }

    /// Ends flows and holds that are surely over by `now`.
    fn sweep(&mut self, now: u64) {
        while let Some(&(t, id)) = self.live_queue.first() {
            if t >= now {
                break;
            }
            self.end(id);
        }
        while let Some(&(t, id)) = self.hold_queue.first() {
            if t >= now {
                break;
            }
            self.hold_queue.pop_first();
            if let Some(h) = self.held.remove(&id) {
                self.dec_port(h.nic, h.scope);
            }
        }
    }

    /// A flow the gateway created (seen as its event or as a translated first packet).
    fn create(&mut self, node: u16, v: &FlowView, now: u64) -> u64 {
        let key = InsideKey {
            nic: v.nic,
            proto: v.protocol,
            inside: v.inside,
            remote: v.remote,
        };
        if let Some(&old) = self.by_inside.get(&key) {
            if self.flows.get(&old).is_some_and(|f| f.nat == v.nat) {
                return old;
            }
            // The gateway replaced it (closed and taken over, or expired at a deadline the
            // model only bounds): the old one ends now in the model.
            self.end(old);
        }
        let id = self.next_id;
        self.next_id += 1;
        let scope = self.scope(v.protocol, v.remote);
        let family = Family::of(&v.nat.ip());
        let node = self.nodes.get(&v.nic).copied().unwrap_or(node);
        let first_ns = match v.protocol {
            proto::TCP => ms(self.profile.timeout_tcp_transitory_ms),
            proto::UDP => ms(self.profile.timeout_udp_ms),
            _ => ms(self.profile.timeout_icmp_ms),
        };
        let f = Flow {
            key,
            nat: v.nat,
            node,
            family,
            scope,
            tcp: Tcp::Opening { answered: false },
            seen_reply: false,
            udp_saw_inbound: false,
            certain_until: now.saturating_add(first_ns),
            possible_until: now
                .saturating_add(self.longest_ns(v.protocol))
                .saturating_add(self.scan_ns() + SLACK_NS),
            closed_at: None,
            fresh: true,
        };
        self.flows.insert(id, f);
        self.live_queue.insert((f.possible_until, id));
        self.by_inside.insert(key, id);
        self.by_reply.insert(
            ReplyKey {
                proto: v.protocol,
                nat: v.nat,
                remote: v.remote,
            },
            id,
        );
        *self.table.entry((node, family)).or_insert(0) += 1;
        *self.ports.entry((v.nic, scope)).or_insert(0) += 1;
        id
    }

    /// Whether the model says this packet of `f` has to pass, in direction `outbound`.
    fn must_pass(&self, f: &Flow, t: &Tuple, outbound: bool, now: u64) -> bool {
        if now.saturating_add(SLACK_NS) >= f.certain_until {
            return false;
        }
        match f.key.proto {
            proto::TCP => {
                let fl = t.tcp_flags;
                let syn = fl & SYN != 0;
                match f.tcp {
                    Tcp::Opening { answered } => {
                        // Outbound SYN (retransmitted), inbound SYN-ACK.
                        (syn && outbound == (fl & ACK == 0)) || (answered && outbound && !syn)
                    }
                    Tcp::Established { .. } => !syn,
                    Tcp::Reset => !self.linux && !syn,
                    Tcp::Closed => false,
                }
            }
            proto::UDP => true,
            _ => {
                (outbound && t.icmp == Some(IcmpKind::EchoRequest))
                    || (!outbound && t.icmp == Some(IcmpKind::EchoReply))
            }
        }
    }

    /// Moves a flow's model on with a packet the gateway forwarded. Where docs/behaviour.md
    /// pins the timer, both deadlines are set from it (a packet restarts the timer of the
    /// state it leaves the flow in); where it does not, the certain deadline stops growing and
    /// the possible one covers the longest timer.
    fn advance(&mut self, id: u64, t: &Tuple, outbound: bool, now: u64) {
        let p = self.profile.clone();
        let linux = self.linux;
        let longest = self.longest_ns(t.protocol);
        let scan = self.scan_ns();
        let Some(f) = self.flows.get_mut(&id) else {
            return;
        };
        let old_possible = f.possible_until;
        let fresh = std::mem::replace(&mut f.fresh, false);
        let trans = ms(p.timeout_tcp_transitory_ms);
        let est = ms(p.timeout_tcp_established_ms);
        let next = match f.key.proto {
            proto::TCP => {
                let fl = t.tcp_flags;
                let unanswered = !f.seen_reply;
                if !outbound && fl & RST == 0 {
                    f.seen_reply = true;
                }
                if fresh
                    && outbound
                    && p.tcp_midstream_pickup
                    && fl & (SYN | FIN | RST) == 0
                    && fl & ACK != 0
                {
                    // docs/behaviour.md §4: a flow opened by mid-stream pickup (Linux's
                    // "loose" conntrack) is taken as established, with the established timer.
                    f.tcp = Tcp::Established {
                        fin_out: false,
                        fin_in: false,
                    };
                    Next::Exact(est)
                } else if fl & RST != 0 {
                    f.tcp = Tcp::Reset;
                    f.closed_at = Some(now);
                    if p.tcp_unanswered_rst_ends_flow && unanswered {
                        // `linux`: an RST before any reply ends the flow on this packet.
                        Next::Exact(0)
                    } else {
                        // The profile's reset timer (default: the transitory one; `linux`:
                        // CLOSE, 10 s).
                        Next::Exact(ms(p
                            .timeout_tcp_reset_ms
                            .unwrap_or(p.timeout_tcp_transitory_ms)))
                    }
                } else if fl & SYN != 0 {
                    match f.tcp {
                        Tcp::Opening { .. } if !outbound => {
                            f.tcp = Tcp::Opening { answered: true };
                            Next::Exact(trans)
                        }
                        Tcp::Closed | Tcp::Reset if outbound && fl & ACK == 0 => {
                            // A new connection on the tuple starts over.
                            f.tcp = Tcp::Opening { answered: false };
                            f.closed_at = None;
                            f.seen_reply = false;
                            Next::Exact(trans)
                        }
                        Tcp::Opening { .. } => Next::Exact(trans),
                        _ => Next::Unknown(longest),
                    }
                } else {
                    match f.tcp {
                        Tcp::Opening { answered: true } if outbound && fl & ACK != 0 => {
                            f.tcp = Tcp::Established {
                                fin_out: fl & FIN != 0,
                                fin_in: false,
                            };
                            Next::Exact(est)
                        }
                        Tcp::Opening { .. } => Next::Exact(trans),
                        Tcp::Established { fin_out, fin_in } => {
                            let fin_out = fin_out || (outbound && fl & FIN != 0);
                            let fin_in = fin_in || (!outbound && fl & FIN != 0);
                            if fin_out && fin_in {
                                f.tcp = Tcp::Closed;
                                f.closed_at = Some(now);
                                Next::Exact(trans)
                            } else {
                                f.tcp = Tcp::Established { fin_out, fin_in };
                                Next::Exact(est)
                            }
                        }
                        Tcp::Reset if !linux => {
                            // docs/behaviour.md §4 (RFC 6146 §3.5.2.2): any later non-RST
                            // packet, from either side, puts it back to ESTABLISHED with the
                            // established timer.
                            f.tcp = Tcp::Established {
                                fin_out: false,
                                fin_in: false,
                            };
                            f.closed_at = None;
                            Next::Exact(est)
                        }
                        // linux CLOSE and flows closed by FINs: the model only bounds them.
                        Tcp::Reset | Tcp::Closed => {
                            Next::Unknown(trans.max(ms(p.timeout_tcp_reset_ms.unwrap_or(0))))
                        }
                    }
                }
            }
            proto::UDP => {
                if !outbound {
                    f.udp_saw_inbound = true;
                }
                if outbound || p.udp_inbound_refresh {
                    if f.udp_saw_inbound {
                        let (a, b) = (ms(p.timeout_udp_ms), ms(p.timeout_udp_stream_ms));
                        Next::Range(a.min(b), a.max(b))
                    } else {
                        Next::Exact(ms(p.timeout_udp_ms))
                    }
                } else {
                    Next::Keep
                }
            }
            _ => {
                if outbound && t.icmp == Some(IcmpKind::EchoRequest) {
                    Next::Exact(ms(p.timeout_icmp_ms))
                } else {
                    Next::Keep
                }
            }
        };
        let slack = scan + SLACK_NS;
        match next {
            Next::Exact(d) => {
                f.certain_until = now.saturating_add(d);
                f.possible_until = now.saturating_add(d).saturating_add(slack);
            }
            Next::Range(lo, hi) => {
                f.certain_until = now.saturating_add(lo);
                f.possible_until = now.saturating_add(hi).saturating_add(slack);
            }
            Next::Unknown(hi) => {
                f.certain_until = f.certain_until.min(now);
                f.possible_until = old_possible.max(now.saturating_add(hi).saturating_add(slack));
            }
            Next::Keep => {}
        }
        let possible_until = f.possible_until;
        if possible_until != old_possible {
            self.live_queue.remove(&(old_possible, id));
            self.live_queue.insert((possible_until, id));
        }
    }

    fn violation(&self, msg: String, before: &[u8]) -> Violation {
        Violation::new(Invariant::Liveness, msg).with_packet("dropped", before)
    }

    fn outbound(
        &mut self,
        node: u16,
        nic: NicId,
        before: &[u8],
        verdict: Verdict,
        after: &[u8],
        now: u64,
    ) -> Result<(), Violation> {
        let Some(t) = Tuple::parse(before) else {
            return Ok(());
        };
        if matches!(t.icmp, Some(IcmpKind::Error | IcmpKind::Other)) || is_nat64(&t) {
            return Ok(());
        }
        let key = InsideKey {
            nic,
            proto: t.protocol,
            inside: t.src_addr(),
            remote: remote_of(&t, true),
        };
        let existing = self
            .by_inside
            .get(&key)
            .and_then(|id| self.flows.get(id).map(|f| (*id, *f)));
        let must = existing.is_some_and(|(_, f)| self.must_pass(&f, &t, true, now));
        match verdict {
            Verdict::Forward(Egress::Outside | Egress::Nic(_)) => {
                let Some(at) = Tuple::parse(after) else {
                    return Ok(());
                };
                if t.protocol == proto::TCP
                    && t.tcp_flags & (SYN | ACK) == SYN
                    && self
                        .pending_syn
                        .remove(&(at.src_addr(), at.dst_addr()))
                        .is_some()
                {
                    self.cancelled_syn
                        .insert((at.src_addr(), at.dst_addr()), ());
                }
                if must || (existing.is_none() && self.new_flow_has_room(nic, &t)) {
                    self.checks += 1;
                }
                let id = match existing {
                    Some((id, f)) if f.nat == at.src_addr() => id,
                    _ => self.create(
                        node,
                        &FlowView {
                            nic,
                            protocol: t.protocol,
                            inside: key.inside,
                            remote: key.remote,
                            nat: at.src_addr(),
                        },
                        now,
                    ),
                };
                self.advance(id, &t, true, now);
                if matches!(verdict, Verdict::Forward(Egress::Nic(_))) {
                    self.hairpin_inbound_leg(&t, &at, now);
                }
                Ok(())
            }
            // `unsolicited` on the way out is a hairpin that matched nothing on the way back in:
            // the inbound half, which the model does not judge.
            Verdict::Drop(reason) if judged(reason) && reason != DropReason::Unsolicited => {
                match existing {
                    Some((_, f)) if must => {
                        self.checks += 1;
                        Err(self.violation(
                        format!(
                            "outbound packet {} -> {} (protocol {}, flags {:#04x}) of {nic}'s live flow via {} was dropped as {}; the model has it live until t={} ns",
                            key.inside,
                            key.remote,
                            t.protocol,
                            t.tcp_flags,
                            f.nat,
                            reason.name(),
                            f.certain_until
                        ),
                        before,
                    ))
                    }
                    Some(_) => Ok(()),
                    None => self.new_flow_drop(nic, &t, reason, before),
                }
            }
            // An ICMP error in answer (ports exhausted with `icmp_unreachable_on_exhaustion`, or
            // a TTL that ran out) means the packet was refused: its flow was not refreshed.
            Verdict::Respond(_)
                if Tuple::parse(after).is_some_and(|a| a.icmp == Some(IcmpKind::Error)) =>
            {
                Ok(())
            }
            // Otherwise only a hairpin gives these verdicts to an outbound packet of a live flow:
            // its outbound leg refreshed the sender's flow even though the inbound leg was
            // answered by the gateway (an echo to a NAT address) or matched nothing.
            Verdict::Respond(_) | Verdict::Drop(DropReason::Unsolicited) => {
                if let Some((id, _)) = existing {
                    self.advance(id, &t, true, now);
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// A hairpinned packet (`t` as sent, `at` as delivered) is also an inbound packet of the
    /// receiving NIC's flow (docs/behaviour.md §4 Hairpinning): it refreshes that flow, and
    /// counts as inbound traffic (a UDP flow that saw inbound traffic may move to a longer
    /// timer), exactly as if it had come from outside.
    fn hairpin_inbound_leg(&mut self, t: &Tuple, at: &Tuple, now: u64) {
        if t.icmp.is_some() {
            return;
        }
        // The packet as it reached the NAT address: the sender's NAT endpoint as source.
        let inbound = Tuple {
            dst: t.dst,
            dst_port: t.dst_port,
            ..*at
        };
        let rk = ReplyKey {
            proto: t.protocol,
            nat: inbound.dst_addr(),
            remote: remote_of(&inbound, false),
        };
        if let Some(&id) = self.by_reply.get(&rk) {
            self.advance(id, &inbound, false, now);
        }
    }

    /// Whether the model is sure a new flow's first packet `t` from `nic` must pass (block,
    /// a free port in scope, room in the table).
    fn new_flow_has_room(&self, nic: NicId, t: &Tuple) -> bool {
        if self.blocks_unknown.contains(&nic) {
            return false;
        }
        let Some(block) = self.blocks.get(&(nic, Family::of(&t.src))) else {
            return false;
        };
        let first = match t.protocol {
            proto::TCP => t.tcp_flags & (SYN | ACK | RST | FIN) == SYN,
            proto::UDP => true,
            _ => self.profile.icmp_supported && t.icmp == Some(IcmpKind::EchoRequest),
        };
        first && self.port_room(nic, t, block).0 && self.table_room(nic, t).0 != Some(false)
    }

    /// Whether the scope key surely has a free port: (answer, ports possibly taken, usable).
    fn port_room(&self, nic: NicId, t: &Tuple, block: &Block) -> (bool, u32, u32) {
        let scope = self.scope(t.protocol, remote_of(t, true));
        let taken = self.ports.get(&(nic, scope)).copied().unwrap_or(0);
        match usable_ports(&self.profile, block, t) {
            Some(usable) => (taken < usable, taken, usable),
            None => (false, taken, 0),
        }
    }

    /// Whether the table surely has room (`None` when the limit is unknown): (answer, flows
    /// possibly live on the NIC's node).
    fn table_room(&self, nic: NicId, t: &Tuple) -> (Option<bool>, u32) {
        let node = self.nodes.get(&nic).copied().unwrap_or(0);
        let n = self
            .table
            .get(&(node, Family::of(&t.src)))
            .copied()
            .unwrap_or(0);
        (self.table_limit.map(|l| n < l), n)
    }

    /// An outbound packet without a flow in the model was dropped: was that, and its reason,
    /// right?
    fn new_flow_drop(
        &mut self,
        nic: NicId,
        t: &Tuple,
        reason: DropReason,
        before: &[u8],
    ) -> Result<(), Violation> {
        if self.blocks_unknown.contains(&nic) {
            return Ok(());
        }
        let family = Family::of(&t.src);
        let Some(block) = self.blocks.get(&(nic, family)).copied() else {
            self.checks += 1;
            if reason != DropReason::NoNatBlock {
                return Err(self.violation(
                    format!(
                        "{} holds no {} block, so its packet {} -> {} (protocol {}, flags {:#04x}) must be dropped as no_nat_block, but was dropped as {}",
                        nic,
                        family.name(),
                        t.src_addr(),
                        t.dst_addr(),
                        t.protocol,
                        t.tcp_flags,
                        reason.name()
                    ),
                    before,
                ));
            }
            return Ok(());
        };
        let first = match t.protocol {
            proto::TCP => t.tcp_flags & (SYN | ACK | RST | FIN) == SYN,
            proto::UDP => true,
            _ => self.profile.icmp_supported && t.icmp == Some(IcmpKind::EchoRequest),
        };
        if !first {
            if t.protocol == proto::TCP && !self.profile.tcp_midstream_pickup {
                self.checks += 1;
                if reason == DropReason::NoNatBlock {
                    return Err(self.violation(
                        format!(
                            "{nic} holds a block, but its TCP packet {} -> {} without a flow was dropped as no_nat_block",
                            t.src_addr(),
                            t.dst_addr()
                        ),
                        before,
                    ));
                }
            }
            return Ok(());
        }
        let (ports_free, taken, usable) = self.port_room(nic, t, &block);
        let (table_free, in_table) = self.table_room(nic, t);
        let why = match reason {
            DropReason::NoNatBlock => Some(format!(
                "dropped as no_nat_block although {nic} holds {}:{}-{}",
                block.nat_ip, block.port, block.end_port
            )),
            DropReason::TcpNoFlow => {
                Some("dropped a new flow's first packet as tcp_no_flow".to_string())
            }
            DropReason::TableFull if table_free == Some(true) => Some(format!(
                "dropped as table_full although at most {in_table} {} flows are live on its node (limit {}; expired flows whose port is held do not count)",
                family.name(),
                self.table_limit.unwrap_or(0)
            )),
            DropReason::PortsExhausted if ports_free => Some(format!(
                "dropped as ports_exhausted although at most {taken} of {usable} ports of its scope key are live or held"
            )),
            _ => None,
        };
        let decidable = reason != DropReason::TableFull || table_free.is_some();
        if decidable {
            self.checks += 1;
        }
        match why {
            Some(w) => Err(self.violation(
                format!(
                    "new flow {} -> {} (protocol {}) of {nic}: {w}",
                    t.src_addr(),
                    remote_of(t, true),
                    t.protocol
                ),
                before,
            )),
            None => Ok(()),
        }
    }

    fn inbound(
        &mut self,
        node: u16,
        before: &[u8],
        verdict: Verdict,
        after: &[u8],
        now: u64,
    ) -> Result<(), Violation> {
        let Some(t) = Tuple::parse(before) else {
            return Ok(());
        };
        if matches!(t.icmp, Some(IcmpKind::Error | IcmpKind::Other)) {
            return Ok(());
        }
        let syn_only = t.protocol == proto::TCP && tcp_flags::is_opening_syn(t.tcp_flags);
        let rk = ReplyKey {
            proto: t.protocol,
            nat: t.dst_addr(),
            remote: remote_of(&t, false),
        };
        let flow = self
            .by_reply
            .get(&rk)
            .and_then(|id| self.flows.get(id).map(|f| (*id, *f)));
        match verdict {
            Verdict::Forward(Egress::Nic(_)) => {
                if let Some((id, f)) = flow {
                    if self.must_pass(&f, &t, false, now) {
                        self.checks += 1;
                    }
                    self.advance(id, &t, false, now);
                }
                Ok(())
            }
            Verdict::Respond(_) if syn_only && flow.is_none() => {
                self.checks += 1;
                Err(Violation::new(
                    Invariant::Liveness,
                    format!(
                        "an unsolicited inbound SYN {} -> {} was answered at once; RFC 5382 REQ-4 requires 6 s of silence first",
                        t.src_addr(),
                        t.dst_addr()
                    ),
                )
                .with_packet("syn", before))
            }
            Verdict::Drop(_) | Verdict::Respond(_) => {
                let reason = match verdict {
                    Verdict::Drop(r) => r,
                    // Behaviour §4 "TTL": a router-hop profile answers a packet that would reach
                    // the inside with TTL 0 with Time Exceeded, a refusal the model does not
                    // judge. Any other answer, or a Time Exceeded for a packet that arrived with
                    // hops to spare, is the gateway refusing the packet as unsolicited.
                    _ if self.profile.ttl_decrement
                        && arrival_hops(before).is_some_and(|h| h <= 1)
                        && is_time_exceeded(after) =>
                    {
                        DropReason::TtlExpired
                    }
                    _ => DropReason::Unsolicited,
                };
                if syn_only
                    && flow.is_none()
                    && reason == DropReason::Unsolicited
                    && self.profile.icmp_unreachable_on_unsolicited
                {
                    self.pending_syn
                        .entry((t.dst_addr(), t.src_addr()))
                        .or_insert(now);
                }
                let Some((_, f)) = flow else {
                    return Ok(());
                };
                if !judged(reason) || f.node != node {
                    return Ok(());
                }
                if self.must_pass(&f, &t, false, now) {
                    self.checks += 1;
                    return Err(self.violation(
                        format!(
                            "inbound packet {} -> {} (protocol {}, flags {:#04x}) of {}'s live flow {} -> {} was dropped as {}; the model has it live until {} ns",
                            t.src_addr(),
                            t.dst_addr(),
                            t.protocol,
                            t.tcp_flags,
                            f.key.nic,
                            f.key.inside,
                            f.key.remote,
                            reason.name(),
                            f.certain_until
                        ),
                        before,
                    ));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// A packet the gateway sent on its own: an ICMP 3/13 (v6 1/1) about an unsolicited SYN
    /// must come 6 s after it at the earliest, and not at all once the inside SYN went out.
    fn transmitted(&mut self, pkt: &[u8], now: u64) -> Result<(), Violation> {
        let Some(t) = Tuple::parse(pkt) else {
            return Ok(());
        };
        if t.icmp != Some(IcmpKind::Error) {
            return Ok(());
        }
        let Some(q) = quoted_offset(pkt).and_then(|o| Tuple::parse_quoted(&pkt[o..])) else {
            return Ok(());
        };
        if q.protocol != proto::TCP || !tcp_flags::is_opening_syn(q.tcp_flags) {
            return Ok(());
        }
        // The quoted SYN went remote -> NAT endpoint.
        let conn = (q.dst_addr(), q.src_addr());
        self.checks += 1;
        if self.cancelled_syn.contains_key(&conn) {
            return Err(Violation::new(
                Invariant::Liveness,
                format!(
                    "the unsolicited SYN {} -> {} was answered with an ICMP error although the inside host's own SYN for that connection was translated (RFC 5382 REQ-4, simultaneous open)",
                    q.src_addr(),
                    q.dst_addr()
                ),
            )
            .with_packet("answer", pkt));
        }
        if let Some(&at) = self.pending_syn.get(&conn)
            && now < at.saturating_add(SYN_SILENCE_NS)
        {
            return Err(Violation::new(
                Invariant::Liveness,
                format!(
                    "the unsolicited SYN {} -> {} was answered {} ms after it; RFC 5382 REQ-4 requires 6 s",
                    q.src_addr(),
                    q.dst_addr(),
                    (now - at) / 1_000_000
                ),
            )
            .with_packet("answer", pkt));
        }
        self.pending_syn.remove(&conn);
        Ok(())
    }
}
