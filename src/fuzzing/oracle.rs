//! The invariant oracle of the gateway harnesses: behaviour §6 as far as a single gateway shows it,
//! checked after every step from the outside (verdicts, output bytes, [`Gateway::flows`],
//! events), with no reference model.
//!
//! After every step ([`Checker::packet`], [`Checker::advance`], [`Checker::control`]):
//!
//! - **wire validity**: every packet the gateway sends (forwarded, generated, released fragment)
//!   parses strictly and its checksums verify, including the IPv4 header checksum of the packet
//!   quoted in an ICMP error;
//! - **no-inbound-initiation / isolation**: a packet delivered to `Egress::Nic(n)` matches,
//!   field by field, a live flow NIC n holds after the step, and for packets from outside one it
//!   held before; its destination is one of NIC n's addresses; a packet from outside never
//!   creates, revives or rekeys a flow;
//! - **port-limit**: a translated source (port, ICMP identifier, or the port inside a quoted
//!   packet) is the NIC's NAT IP and lies in the usable part of its block; no two live flows
//!   share (NAT IP, NAT port, remote IP, remote port, protocol); live flows per NIC and scope key
//!   ≤ the block's usable ports; blocks of different NICs never overlap;
//! - **block ownership**: every tracked flow (live or held) lies in its NIC's current block, so
//!   no flow outlives its block or its NIC;
//! - **timers / mapping stability**: nothing tracked is past its deadline; every flow not yet
//!   due before a step is still tracked after it with the same identity and NAT endpoint (only
//!   control steps may end flows early, and only the affected NIC's); expiry events fire exactly
//!   at the deadline, inside the step's time window;
//! - **ICMP (RFC 5508 REQ-6)**: an ICMP error, in either direction, leaves every flow exactly as
//!   it was (no creation, refresh, state change or deletion);
//! - **pass-through**: a `PassThrough` packet came from inside, goes to a local prefix of the
//!   NIC's network, and is unchanged.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::nat::{
    Block, Egress, EndReason, Event, Family, FlowInfo, FlowView, Gateway, GatewayConfig, Ingress,
    LimitScope, NetworkConfig, NetworkId, NicConfig, NicId, Profile, Verdict,
};
use crate::time::Instant;
use crate::wire::checksum;
use crate::wire::icmp::{is_error as is_icmp_error_type, is_icmp};
use crate::wire::rewrite::ports;
use crate::wire::tcp_flags::SYN;
use crate::wire::{IpVersion, PacketRepr, parse_ip, parse_ip_lax, proto};

/// A broken invariant: which one, at which step, and what was seen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// behaviour §6 name (`no-inbound-initiation`, `port-limit`, `wire-validity`, ...).
    pub invariant: &'static str,
    /// 0-based index of the step (packet or operation) that broke it.
    pub step: usize,
    /// What was seen.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invariant {} violated at step {}: {}",
            self.invariant, self.step, self.detail
        )
    }
}

impl std::error::Error for Violation {}

/// What kind of step ran, which decides which flows may legitimately change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StepKind {
    /// A packet entered the gateway.
    Packet { ingress: Ingress, icmp_error: bool },
    /// Only the clock moved.
    Time,
    /// A control-plane change that may end flows of `nic` (of one family, or both).
    Control { nic: NicId, family: Option<Family> },
}

/// The transport facts of a packet the oracle compares with flows.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    /// TCP or UDP.
    Ports { src: u16, dst: u16 },
    /// ICMP/ICMPv6 echo request.
    EchoRequest { ident: u16 },
    /// ICMP/ICMPv6 echo reply.
    EchoReply { ident: u16 },
    /// An ICMP error and (when it parses) the packet it quotes.
    IcmpError { quoted: Option<Box<Tuple>> },
    /// Another ICMP message.
    OtherIcmp,
    /// A fragment without the transport header.
    NoTransport,
    /// Another protocol.
    Other,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Tuple {
    version: IpVersion,
    protocol: u8,
    src: IpAddr,
    dst: IpAddr,
    kind: Kind,
}

/// Reads the tuple of a packet (strictly, or laxly for a quoted packet, where fields cut off by
/// truncation read as absent: ports need 4 bytes, identifiers 6).
fn tuple_of(buf: &[u8], lax: bool) -> Option<Tuple> {
    let meta = if lax {
        parse_ip_lax(buf).ok()?
    } else {
        parse_ip(buf).ok()?
    };
    let l4 = &buf[meta.l4_offset..meta.end];
    let p = meta.protocol;
    let kind = if !meta.has_l4_header() {
        Kind::NoTransport
    } else if matches!(p, proto::TCP | proto::UDP) {
        if l4.len() < 4 {
            return None;
        }
        let (src, dst) = ports(buf, &meta);
        Kind::Ports { src, dst }
    } else if is_icmp(meta.version, p) {
        let t = *l4.first()?;
        let ident = l4.get(4..6).map(|b| u16::from_be_bytes([b[0], b[1]]));
        match (meta.version, t) {
            (IpVersion::V4, 8) | (IpVersion::V6, 128) => Kind::EchoRequest { ident: ident? },
            (IpVersion::V4, 0) | (IpVersion::V6, 129) => Kind::EchoReply { ident: ident? },
            (v, t) if is_icmp_error_type(v, t) && !lax => Kind::IcmpError {
                quoted: l4.get(8..).and_then(|q| tuple_of(q, true)).map(Box::new),
            },
            _ => Kind::OtherIcmp,
        }
    } else {
        Kind::Other
    };
    Some(Tuple {
        version: meta.version,
        protocol: p,
        src: meta.src(buf),
        dst: meta.dst(buf),
        kind,
    })
}

/// Wire validity of a packet the gateway sends.
fn check_wire(buf: &[u8]) -> Result<(), String> {
    let (repr, report) = PacketRepr::parse(buf).map_err(|e| format!("does not parse: {e}"))?;
    if !report.all_ok() {
        return Err(format!("bad checksum {report:?}: {repr:?}"));
    }
    let meta = parse_ip(buf).map_err(|e| e.to_string())?;
    if meta.has_l4_header()
        && is_icmp(meta.version, meta.protocol)
        && buf
            .get(meta.l4_offset)
            .is_some_and(|&t| is_icmp_error_type(meta.version, t))
    {
        let quoted = buf.get(meta.l4_offset + 8..meta.end).unwrap_or(&[]);
        let q = parse_ip_lax(quoted).map_err(|e| format!("quoted packet does not parse: {e}"))?;
        if q.version == IpVersion::V4 && !checksum::ipv4_header_ok(quoted, q.l4_offset) {
            return Err(format!("quoted IPv4 header checksum is bad: {repr:?}"));
        }
    }
    Ok(())
}

fn family_of(a: &IpAddr) -> Family {
    Family::of(a)
}

/// What P limits, per [`LimitScope`]: (NIC, protocol, family, remote IP, remote port), with the
/// parts the scope ignores set to `None`.
type ScopeKey = (NicId, u8, Family, Option<IpAddr>, Option<u16>);

/// (view, live) identities, counted.
fn identities(flows: &[FlowInfo]) -> BTreeMap<(FlowView, bool), usize> {
    let mut m = BTreeMap::new();
    for f in flows {
        *m.entry((f.flow, f.live)).or_insert(0) += 1;
    }
    m
}

/// Drives one gateway and checks the invariants after every step.
pub struct Checker {
    gw: Gateway,
    now: Instant,
    step: usize,
}

impl Checker {
    /// Wraps a gateway (with `record_events` on, so expiry events can be checked).
    pub fn new(gw: Gateway) -> Self {
        let now = gw.now();
        Checker { gw, now, step: 0 }
    }

    /// The gateway under test.
    pub fn gateway(&self) -> &Gateway {
        &self.gw
    }

    /// The harness's clock.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Steps run so far.
    pub fn steps(&self) -> usize {
        self.step
    }

    fn violation(&self, invariant: &'static str, detail: impl Into<String>) -> Violation {
        Violation {
            invariant,
            step: self.step,
            detail: detail.into(),
        }
    }

    /// Sends `pkt` into the gateway at the current time and checks everything; returns the
    /// verdict and the bytes after processing.
    pub fn packet(
        &mut self,
        ingress: Ingress,
        mut pkt: Vec<u8>,
    ) -> Result<(Verdict, Vec<u8>), Violation> {
        let input = pkt.clone();
        let icmp_error = parse_ip(&input).is_ok_and(|m| {
            m.has_l4_header()
                && is_icmp(m.version, m.protocol)
                && input
                    .get(m.l4_offset)
                    .is_some_and(|&t| is_icmp_error_type(m.version, t))
        });
        let before = self.gw.flows();
        let now = self.now;
        let verdict = self.gw.process(now, ingress, &mut pkt);
        self.finish_step(
            StepKind::Packet {
                ingress,
                icmp_error,
            },
            &before,
        )
        .and_then(|after| self.check_verdict(ingress, verdict, &input, &pkt, &before, &after))?;
        self.step += 1;
        Ok((verdict, pkt))
    }

    /// Moves the clock forward by `ms`; with `timeout`, also calls
    /// [`Gateway::handle_timeout`] (otherwise expiry happens lazily in the next call).
    pub fn advance(&mut self, ms: u64, timeout: bool) -> Result<(), Violation> {
        let before = self.gw.flows();
        self.now = self.now.plus_millis(ms);
        if timeout {
            self.gw.handle_timeout(self.now);
        }
        self.finish_step(StepKind::Time, &before)?;
        self.step += 1;
        Ok(())
    }

    /// Moves the clock to the gateway's next deadline if it has one within `limit_ms`.
    pub fn poll_timeout(&mut self, limit_ms: u64) -> Result<(), Violation> {
        let before = self.gw.flows();
        if let Some(t) = self.gw.poll_timeout()
            && t <= self.now.plus_millis(limit_ms)
        {
            self.now = self.now.max(t);
            self.gw.handle_timeout(self.now);
        }
        self.finish_step(StepKind::Time, &before)?;
        self.step += 1;
        Ok(())
    }

    /// Runs a control-plane change that may end the flows of `nic` (of `family`, or both when
    /// `None`); errors the gateway returns are fine (refused changes are part of the input
    /// space).
    pub fn control<T>(
        &mut self,
        nic: NicId,
        family: Option<Family>,
        f: impl FnOnce(&mut Gateway, Instant) -> T,
    ) -> Result<T, Violation> {
        let before = self.gw.flows();
        let out = f(&mut self.gw, self.now);
        self.finish_step(StepKind::Control { nic, family }, &before)?;
        self.step += 1;
        Ok(out)
    }

    /// Common end of every step: released packets, events, global and survival checks.
    fn finish_step(
        &mut self,
        kind: StepKind,
        before: &[FlowInfo],
    ) -> Result<Vec<FlowInfo>, Violation> {
        while let Some((egress, p)) = self.gw.poll_transmit() {
            self.check_released(egress, &p)?;
        }
        self.check_events()?;
        let after = self.gw.flows();
        self.check_global(&after)?;
        self.check_survival(kind, before, &after)?;
        Ok(after)
    }

    fn check_events(&mut self) -> Result<(), Violation> {
        let now = self.gw.now();
        for e in self.gw.drain_events() {
            match e {
                Event::FlowEnded {
                    at,
                    reason: EndReason::Timeout,
                    deadline,
                    last_active,
                    flow,
                } if at != deadline || at > now || last_active > at => {
                    return Err(self.violation(
                        "timers",
                        format!(
                            "flow {flow:?} ended at {at} (deadline {deadline}, last active \
                             {last_active}, now {now})"
                        ),
                    ));
                }
                Event::FlowCreated { at, flow } if at != now => {
                    return Err(self.violation(
                        "timers",
                        format!("flow {flow:?} created at {at}, now is {now}"),
                    ));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Usable ports of a block: all of them, or all but the last when the profile models
    /// IronCore's exclusive block end.
    fn usable_end(&self, b: &Block) -> u16 {
        if self.gw.config().profile.last_port_unusable && b.len() > 1 {
            b.end_port - 1
        } else {
            b.end_port
        }
    }

    fn in_block(&self, b: &Block, ip: IpAddr, port: u16) -> bool {
        ip == b.nat_ip && (b.port..=self.usable_end(b)).contains(&port)
    }

    fn check_global(&self, flows: &[FlowInfo]) -> Result<(), Violation> {
        // The gateway's clock, not the harness's: after a lazy advance (no `handle_timeout`)
        // due flows legitimately stay until the next call tells the gateway the time.
        let now = self.gw.now();
        if now > self.now {
            return Err(self.violation(
                "timers",
                format!(
                    "gateway clock {now} ahead of the time passed in {}",
                    self.now
                ),
            ));
        }
        let scope = self.gw.config().profile.limit_scope;
        let mut nat_tuples = BTreeMap::new();
        let mut per_scope: BTreeMap<ScopeKey, u32> = BTreeMap::new();
        for f in flows {
            let v = &f.flow;
            let fam = family_of(&v.nat.ip());
            let Some(nic) = self.gw.nic(v.nic) else {
                return Err(self.violation(
                    "port-limit",
                    format!("flow of a removed NIC is still tracked: {f:?}"),
                ));
            };
            if family_of(&v.inside.ip()) != fam || family_of(&v.remote.ip()) != fam {
                return Err(self.violation("isolation", format!("mixed families: {f:?}")));
            }
            if !nic.addresses.contains(&v.inside.ip()) {
                return Err(self.violation(
                    "isolation",
                    format!("flow's inside address is not its NIC's: {f:?}"),
                ));
            }
            let Some(block) = self.gw.block_of(v.nic, fam) else {
                return Err(self.violation(
                    "port-limit",
                    format!("flow outlived its NIC's block: {f:?}"),
                ));
            };
            if !self.in_block(&block, v.nat.ip(), v.nat.port()) {
                return Err(self.violation(
                    "port-limit",
                    format!("flow's NAT endpoint is outside its block {block:?}: {f:?}"),
                ));
            }
            if f.deadline <= now || f.last_active > now {
                return Err(self.violation(
                    "timers",
                    format!("tracked flow is due or from the future (now {now}): {f:?}"),
                ));
            }
            if !f.live {
                continue;
            }
            if let Some(other) = nat_tuples.insert((v.nat, v.remote, v.protocol), v) {
                return Err(self.violation(
                    "port-limit",
                    format!("two live flows share a NAT tuple: {other:?} and {v:?}"),
                ));
            }
            let key = match scope {
                LimitScope::RemoteIp => (v.nic, v.protocol, fam, Some(v.remote.ip()), None),
                LimitScope::RemoteEndpoint => (
                    v.nic,
                    v.protocol,
                    fam,
                    Some(v.remote.ip()),
                    Some(v.remote.port()),
                ),
                LimitScope::Nic => (v.nic, v.protocol, fam, None, None),
            };
            let n = per_scope.entry(key).or_insert(0);
            *n += 1;
            let usable = u32::from(self.usable_end(&block)) - u32::from(block.port) + 1;
            if *n > usable {
                return Err(self.violation(
                    "port-limit",
                    format!("more than {usable} live flows for scope key {key:?}"),
                ));
            }
        }
        let mut blocks: Vec<(NicId, Block)> = Vec::new();
        for id in 0..self.nic_id_bound() {
            for fam in [Family::V4, Family::V6] {
                if let Some(b) = self.gw.block_of(NicId(id), fam) {
                    if let Some((o, ob)) = blocks.iter().find(|(_, ob)| ob.overlaps(&b)) {
                        return Err(self.violation(
                            "port-limit",
                            format!("blocks overlap: {o} {ob:?} and nic#{id} {b:?}"),
                        ));
                    }
                    blocks.push((NicId(id), b));
                }
            }
        }
        Ok(())
    }

    /// NIC ids to scan for blocks: the harnesses keep ids below 8.
    fn nic_id_bound(&self) -> u32 {
        8
    }

    fn check_survival(
        &self,
        kind: StepKind,
        before: &[FlowInfo],
        after: &[FlowInfo],
    ) -> Result<(), Violation> {
        let now = self.gw.now();
        let affected = |v: &FlowView| match kind {
            StepKind::Control { nic, family } => {
                v.nic == nic && family.is_none_or(|f| f == family_of(&v.nat.ip()))
            }
            _ => false,
        };
        let survivors: Vec<FlowInfo> = before
            .iter()
            .filter(|f| f.deadline > now && !affected(&f.flow))
            .cloned()
            .collect();
        // A live flow that was due may have expired during the step and be held now under the
        // same identity: that is expiry, not new state.
        let expired_to_hold: BTreeMap<(FlowView, bool), usize> = before
            .iter()
            .filter(|f| f.live && f.deadline <= now)
            .map(|f| ((f.flow, false), usize::MAX))
            .collect();
        let want = identities(&survivors);
        let got = identities(after);
        for (k, n) in &want {
            if got.get(k).copied().unwrap_or(0) < *n {
                return Err(self.violation(
                    "timers",
                    format!(
                        "flow ended early or changed its mapping (now {now}): {:?} live={}",
                        k.0, k.1
                    ),
                ));
            }
        }
        let unexplained: Vec<&(FlowView, bool)> = got
            .iter()
            .filter(|(k, n)| {
                want.get(k).copied().unwrap_or(0) < **n && !expired_to_hold.contains_key(k)
            })
            .map(|(k, _)| k)
            .collect();
        if let StepKind::Packet {
            ingress: Ingress::Outside,
            ..
        } = kind
            && !unexplained.is_empty()
        {
            return Err(self.violation(
                "no-inbound-initiation",
                format!("a packet from outside created state: {unexplained:?}"),
            ));
        }
        if let StepKind::Packet {
            icmp_error: true, ..
        } = kind
        {
            let kept: Vec<FlowInfo> = after
                .iter()
                .filter(|f| f.live || !expired_to_hold.contains_key(&(f.flow, false)))
                .cloned()
                .collect();
            if kept != survivors {
                return Err(self.violation(
                    "icmp",
                    format!(
                        "an ICMP error changed flows (RFC 5508 REQ-6): before {survivors:?}, \
                         after {kept:?}"
                    ),
                ));
            }
        }
        Ok(())
    }

    fn check_released(&self, egress: Egress, p: &[u8]) -> Result<(), Violation> {
        check_wire(p).map_err(|e| self.violation("wire-validity", format!("released: {e}")))?;
        let Some(t) = tuple_of(p, false) else {
            return Err(self.violation("wire-validity", "released packet has no tuple"));
        };
        match egress {
            Egress::Nic(n) => self.check_to_nic_address(n, &t),
            Egress::Outside => {
                if self.gw.is_nat_ip(t.src) {
                    Ok(())
                } else {
                    Err(self.violation(
                        "port-limit",
                        format!("released fragment leaves with a private source: {t:?}"),
                    ))
                }
            }
        }
    }

    fn check_to_nic_address(&self, n: NicId, t: &Tuple) -> Result<(), Violation> {
        match self.gw.nic(n) {
            Some(nic) if nic.addresses.contains(&t.dst) => Ok(()),
            _ => Err(self.violation(
                "isolation",
                format!("packet delivered to {n} is not addressed to it: {t:?}"),
            )),
        }
    }

    fn check_verdict(
        &self,
        ingress: Ingress,
        verdict: Verdict,
        input: &[u8],
        output: &[u8],
        before: &[FlowInfo],
        after: &[FlowInfo],
    ) -> Result<(), Violation> {
        let egress = match verdict {
            Verdict::Drop(_) | Verdict::Buffered => return Ok(()),
            Verdict::PassThrough => return self.check_pass_through(ingress, input, output),
            Verdict::Forward(e) | Verdict::Respond(e) => e,
        };
        check_wire(output).map_err(|e| {
            self.violation(
                "wire-validity",
                format!("{verdict:?} from {ingress:?}: {e}"),
            )
        })?;
        let Some(t) = tuple_of(output, false) else {
            return Err(self.violation("wire-validity", "sent packet has no tuple"));
        };
        match (verdict, ingress, egress) {
            (Verdict::Forward(_), _, Egress::Nic(n)) => {
                let entered = tuple_of(input, false);
                self.check_delivery(ingress, n, entered.as_ref(), &t, before, after)
            }
            (Verdict::Forward(_), Ingress::Inside(n), Egress::Outside) => {
                self.check_outbound(n, &t, after)
            }
            (Verdict::Respond(_), Ingress::Inside(n), Egress::Nic(m)) if n == m => {
                self.check_to_nic_address(m, &t)
            }
            (Verdict::Respond(_), Ingress::Outside, Egress::Outside) => {
                if self.gw.is_nat_ip(t.src) {
                    Ok(())
                } else {
                    Err(self.violation(
                        "wire-validity",
                        format!("generated answer not from a NAT IP: {t:?}"),
                    ))
                }
            }
            _ => Err(self.violation(
                "isolation",
                format!("impossible route: {verdict:?} for a packet from {ingress:?}: {t:?}"),
            )),
        }
    }

    fn check_pass_through(
        &self,
        ingress: Ingress,
        input: &[u8],
        output: &[u8],
    ) -> Result<(), Violation> {
        let Ingress::Inside(n) = ingress else {
            return Err(self.violation("isolation", "pass-through of a packet from outside"));
        };
        let end = parse_ip(input).map_or(input.len(), |m| m.end);
        if output != &input[..end] {
            return Err(self.violation("isolation", "pass-through packet was modified"));
        }
        let local = self.gw.nic(n).and_then(|nic| {
            let net = self.gw.config().networks.get(usize::from(nic.network.0))?;
            let dst = parse_ip(input).ok()?.dst(input);
            Some(net.local_prefixes.iter().any(|p| p.contains(&dst)))
        });
        if local == Some(true) {
            Ok(())
        } else {
            Err(self.violation(
                "selection",
                "pass-through of a packet to a non-local destination",
            ))
        }
    }

    /// A packet delivered to NIC `n` must answer a live flow of `n`, field by field: the packet
    /// as it arrived (`input`) addressed the flow's NAT endpoint (and, from outside, came from
    /// its remote endpoint), and the delivered packet `t` carries the flow's inside endpoint.
    /// Both sides matter: NICs in different networks may share private addresses, so the
    /// delivered tuple alone cannot tell their flows apart.
    fn check_delivery(
        &self,
        ingress: Ingress,
        n: NicId,
        input: Option<&Tuple>,
        t: &Tuple,
        before: &[FlowInfo],
        after: &[FlowInfo],
    ) -> Result<(), Violation> {
        self.check_to_nic_address(n, t)?;
        let from_outside = ingress == Ingress::Outside;
        let entered = |f: &FlowView| -> bool {
            let Some(i) = input else {
                return true;
            };
            match &i.kind {
                Kind::Ports { src, dst } => {
                    f.nat == SocketAddr::new(i.dst, *dst)
                        && (!from_outside || f.remote == SocketAddr::new(i.src, *src))
                }
                Kind::EchoReply { ident } => {
                    f.nat == SocketAddr::new(i.dst, *ident)
                        && (!from_outside || f.remote.ip() == i.src)
                }
                Kind::IcmpError { quoted: Some(q) } => {
                    i.dst == f.nat.ip()
                        && q.src == f.nat.ip()
                        && match q.kind {
                            Kind::Ports { src, .. } => src == f.nat.port(),
                            Kind::EchoRequest { ident } => ident == f.nat.port(),
                            _ => false,
                        }
                }
                Kind::NoTransport => true,
                _ => false,
            }
        };
        let delivered = |f: &FlowView| -> bool {
            if f.nic != n {
                return false;
            }
            match &t.kind {
                Kind::Ports { src, dst } => {
                    f.protocol == t.protocol
                        && f.remote == SocketAddr::new(t.src, *src)
                        && f.inside == SocketAddr::new(t.dst, *dst)
                }
                Kind::EchoReply { ident } => {
                    f.protocol == t.protocol
                        && f.remote == SocketAddr::new(t.src, 0)
                        && f.inside == SocketAddr::new(t.dst, *ident)
                }
                Kind::IcmpError { quoted: Some(q) } => {
                    let ends = f.inside.ip() == t.dst
                        && f.protocol == q.protocol
                        && q.src == f.inside.ip()
                        && q.dst == f.remote.ip();
                    ends && match q.kind {
                        Kind::Ports { src, dst } => {
                            src == f.inside.port() && dst == f.remote.port()
                        }
                        Kind::EchoRequest { ident } => ident == f.inside.port(),
                        _ => false,
                    }
                }
                _ => false,
            }
        };
        if t.kind == Kind::NoTransport {
            // A later fragment carries no ports; its datagram's first fragment was checked.
            return Ok(());
        }
        if t.kind == (Kind::IcmpError { quoted: None }) {
            return Err(self.violation(
                "no-inbound-initiation",
                format!(
                    "inbound ICMP error delivered to {n} although its quoted packet has no \
                     readable transport header within its own IP length: {t:?}"
                ),
            ));
        }
        let Some(flow) = after
            .iter()
            .find(|f| f.live && entered(&f.flow) && delivered(&f.flow))
        else {
            // Say which side of the match failed: the packet as it arrived (the flow's NAT
            // endpoint, remote, and for an ICMP error its outer destination), or as delivered
            // (the flow's inside endpoint).
            let as_delivered = after.iter().find(|f| f.live && delivered(&f.flow));
            let as_arrived = after
                .iter()
                .find(|f| f.live && f.flow.nic == n && entered(&f.flow));
            let outer = match input.map(|i| (i.dst, &i.kind)) {
                Some((dst, Kind::IcmpError { quoted: Some(q) })) if dst != q.src => format!(
                    "; its outer destination {dst} is not the quoted packet's source {}",
                    q.src
                ),
                _ => String::new(),
            };
            let detail = match (as_delivered, as_arrived) {
                (Some(f), _) => format!(
                    "matches its live flow {} -> {} (NAT {}) as delivered, but not as it arrived \
                     (arrived side{outer}): arrived {input:?}, delivered {t:?}",
                    f.flow.inside, f.flow.remote, f.flow.nat
                ),
                (None, Some(f)) => format!(
                    "arrived for its live flow {} -> {} (NAT {}), but was not delivered as that \
                     flow's reply (delivered side): arrived {input:?}, delivered {t:?}",
                    f.flow.inside, f.flow.remote, f.flow.nat
                ),
                (None, None) => format!(
                    "matches none of its live flows, neither as it arrived nor as delivered \
                     (both sides{outer}): arrived {input:?}, delivered {t:?}"
                ),
            };
            return Err(self.violation(
                "no-inbound-initiation",
                format!("packet delivered to {n} {detail}"),
            ));
        };
        if ingress == Ingress::Outside
            && !before
                .iter()
                .any(|b| b.live && b.flow == flow.flow && b.deadline > self.gw.now())
        {
            return Err(self.violation(
                "no-inbound-initiation",
                format!("packet from outside matched a flow that did not exist: {flow:?}"),
            ));
        }
        Ok(())
    }

    /// A packet translated outbound from NIC `n` leaves from its block, as a live flow says.
    fn check_outbound(&self, n: NicId, t: &Tuple, after: &[FlowInfo]) -> Result<(), Violation> {
        let fam = family_of(&t.src);
        let Some(block) = self.gw.block_of(n, fam) else {
            return Err(self.violation(
                "port-limit",
                format!("{n} has no {} block but translated {t:?}", fam.name()),
            ));
        };
        if t.src != block.nat_ip {
            return Err(self.violation(
                "port-limit",
                format!("outbound source is not {n}'s NAT IP {block:?}: {t:?}"),
            ));
        }
        // (NAT endpoint, remote endpoint, protocol) the flow must have.
        let (nat, remote, protocol) = match &t.kind {
            Kind::Ports { src, dst } => (
                SocketAddr::new(t.src, *src),
                SocketAddr::new(t.dst, *dst),
                t.protocol,
            ),
            Kind::EchoRequest { ident } => (
                SocketAddr::new(t.src, *ident),
                SocketAddr::new(t.dst, 0),
                t.protocol,
            ),
            Kind::IcmpError { quoted: Some(q) } if t.dst != q.src => {
                return Err(self.violation(
                    "mapping-stability",
                    format!(
                        "outbound ICMP error forwarded although its outer destination {} is not \
                         the quoted packet's source {} (docs/behaviour.md §4 ICMP): {t:?}",
                        t.dst, q.src
                    ),
                ));
            }
            Kind::IcmpError { quoted: Some(q) } => match q.kind {
                Kind::Ports { src, dst } => (
                    SocketAddr::new(q.dst, dst),
                    SocketAddr::new(q.src, src),
                    q.protocol,
                ),
                Kind::EchoReply { ident } => (
                    SocketAddr::new(q.dst, ident),
                    SocketAddr::new(q.src, 0),
                    q.protocol,
                ),
                _ => {
                    return Err(self.violation(
                        "port-limit",
                        format!("outbound ICMP error quotes no translatable packet: {t:?}"),
                    ));
                }
            },
            Kind::NoTransport => return Ok(()),
            Kind::IcmpError { quoted: None } => {
                return Err(self.violation(
                    "port-limit",
                    format!(
                        "outbound ICMP error forwarded although its quoted packet has no \
                         readable transport header within its own IP length: {t:?}"
                    ),
                ));
            }
            _ => {
                return Err(self.violation(
                    "port-limit",
                    format!("untranslatable packet left outbound: {t:?}"),
                ));
            }
        };
        if !self.in_block(&block, nat.ip(), nat.port()) {
            return Err(self.violation(
                "port-limit",
                format!("translated endpoint {nat} is outside {n}'s block {block:?}: {t:?}"),
            ));
        }
        let found = after.iter().any(|f| {
            f.live
                && f.flow.nic == n
                && f.flow.nat == nat
                && f.flow.remote == remote
                && f.flow.protocol == protocol
        });
        if found {
            Ok(())
        } else {
            Err(self.violation(
                "mapping-stability",
                format!("outbound packet matches no live flow of {n}: {t:?}"),
            ))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The gateway_packet fixture
// ---------------------------------------------------------------------------------------------

/// Private addresses both NICs of the fixture use (in different networks).
pub const INSIDE_V4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
/// IPv6 counterpart of [`INSIDE_V4`].
pub const INSIDE_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1);
/// The fixture's IPv4 NAT address.
pub const NAT_V4: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
/// The fixture's IPv6 NAT address.
pub const NAT_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
/// IPv4 remote hosts the fixture's flows talk to.
pub const REMOTE_V4: [Ipv4Addr; 2] = [
    Ipv4Addr::new(198, 51, 100, 1),
    Ipv4Addr::new(198, 51, 100, 2),
];
/// IPv6 remote hosts the fixture's flows talk to.
pub const REMOTE_V6: [Ipv6Addr; 2] = [
    Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 1),
    Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 2),
];
/// P of the fixture.
pub const FIXTURE_P: u16 = 8;

/// Builds a profile from a config byte: bits 0–2 pick [`Profile::NAMES`] (modulo 6); bit 3
/// turns on ICMP unreachable for unsolicited packets, bit 4 on exhaustion, bit 5 the
/// unusable-last-port quirk; bit 6 flips inbound UDP refresh, bit 7 TCP mid-stream pickup.
pub fn profile_from_byte(b: u8) -> Profile {
    let name = Profile::NAMES[usize::from(b & 7) % Profile::NAMES.len()];
    let mut p = Profile::named(name).unwrap_or_default();
    p.icmp_unreachable_on_unsolicited = b & 0x08 != 0;
    p.icmp_unreachable_on_exhaustion = b & 0x10 != 0;
    p.last_port_unusable = b & 0x20 != 0;
    p.udp_inbound_refresh ^= b & 0x40 != 0;
    p.tcp_midstream_pickup ^= b & 0x80 != 0;
    p
}

/// The networks every harness gateway uses: two networks with the same private prefixes.
pub fn two_networks() -> Vec<NetworkConfig> {
    let local = || {
        ["10.0.0.0/24", "fd00::/64"]
            .iter()
            .filter_map(|s| s.parse().ok())
            .collect()
    };
    vec![
        NetworkConfig {
            name: "net-a".into(),
            local_prefixes: local(),
        },
        NetworkConfig {
            name: "net-b".into(),
            local_prefixes: local(),
        },
    ]
}

/// A gateway configuration for the harnesses.
pub fn harness_config(profile: Profile, ports_per_nic: u32) -> GatewayConfig {
    GatewayConfig {
        profile,
        ports_per_nic,
        networks: two_networks(),
        record_events: true,
        // Small enough that exhaustion paths are reachable, large enough not to dominate.
        max_flows: 64,
        max_fragment_datagrams: 4,
        max_fragments_buffered: 8,
        ..GatewayConfig::default()
    }
}

/// The `gateway_packet` world: two NICs with the same private address (10.0.0.1, fd00::1) in two
/// networks, blocks of [`FIXTURE_P`] ports on one NAT IP per family (NIC 0 the first slot, NIC 1
/// the second), and a valid TCP, UDP and echo flow per NIC and family opened at start.
pub struct Fixture {
    checker: Checker,
}

/// One of the flows every [`Fixture`] opens: (protocol, inside port or identifier, remote,
/// remote port).
pub const FIXTURE_FLOWS: [(u8, u16, usize, u16); 3] = [
    (proto::TCP, 40000, 0, 80),
    (proto::UDP, 5353, 1, 53),
    (proto::ICMP, 7, 0, 0),
];

impl Fixture {
    /// Builds the fixture for a config byte ([`profile_from_byte`]); panics only if the
    /// fixture's own setup breaks an invariant.
    pub fn new(config: u8) -> Self {
        let cfg = harness_config(profile_from_byte(config), u32::from(FIXTURE_P));
        let mut gw = match Gateway::new(cfg) {
            Ok(g) => g,
            Err(e) => panic!("fixture config rejected: {e}"),
        };
        for (i, network) in [0u16, 1].into_iter().enumerate() {
            let id = NicId(i as u32);
            let nic = NicConfig {
                network: NetworkId(network),
                addresses: vec![IpAddr::V4(INSIDE_V4), IpAddr::V6(INSIDE_V6)],
                name: format!("nic-{i}"),
            };
            let start = 1024 + i as u16 * FIXTURE_P;
            let setup = gw.add_nic(id, nic).and_then(|()| {
                for nat_ip in [IpAddr::V4(NAT_V4), IpAddr::V6(NAT_V6)] {
                    let block = Block {
                        nat_ip,
                        port: start,
                        end_port: start + FIXTURE_P - 1,
                    };
                    gw.assign_block(Instant::ZERO, id, block)?;
                }
                Ok(())
            });
            if let Err(e) = setup {
                panic!("fixture setup rejected: {e}");
            }
        }
        let mut fixture = Fixture {
            checker: Checker::new(gw),
        };
        for nic in 0..2 {
            for v6 in [false, true] {
                for &(p, iport, remote, rport) in &FIXTURE_FLOWS {
                    let pkt = fixture_outbound(v6, p, iport, remote, rport);
                    fixture.packet(Ingress::Inside(NicId(nic)), pkt);
                }
            }
        }
        fixture
    }

    /// The checker (for seeds and tests that need the flows).
    pub fn checker(&self) -> &Checker {
        &self.checker
    }

    /// Sends a packet; panics on a violation.
    pub fn packet(&mut self, ingress: Ingress, pkt: Vec<u8>) -> Verdict {
        match self.checker.packet(ingress, pkt) {
            Ok((v, _)) => v,
            Err(v) => panic!("{v}"),
        }
    }

    /// Advances the clock; panics on a violation.
    pub fn advance_ms(&mut self, ms: u64, timeout: bool) {
        if ms == 0 && !timeout {
            return;
        }
        if let Err(v) = self.checker.advance(ms, timeout) {
            panic!("{v}");
        }
    }

    /// Ends the run: lets every timer fire and checks once more.
    pub fn finish(mut self) {
        if let Err(v) = self.checker.poll_timeout(u64::MAX / 2_000_000) {
            panic!("{v}");
        }
    }
}

/// The opening packet of a fixture flow (the `FIXTURE_FLOWS` entry), from the shared inside
/// address.
pub fn fixture_outbound(v6: bool, p: u8, iport: u16, remote: usize, rport: u16) -> Vec<u8> {
    let (src, dst) = if v6 {
        (IpAddr::V6(INSIDE_V6), IpAddr::V6(REMOTE_V6[remote % 2]))
    } else {
        (IpAddr::V4(INSIDE_V4), IpAddr::V4(REMOTE_V4[remote % 2]))
    };
    match p {
        proto::TCP => PacketRepr::tcp((src, iport), (dst, rport), SYN, 1, 0, b"").emit(),
        proto::UDP => PacketRepr::udp((src, iport), (dst, rport), b"query").emit(),
        _ => PacketRepr::echo_request(src, dst, iport, 1, b"ping").emit(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> Fixture {
        Fixture::new(0)
    }

    #[test]
    fn fixture_opens_its_flows() {
        let f = fixture();
        let live = f.checker.gateway().live_flows();
        assert_eq!(live, (6, 6));
    }

    /// The oracle must be able to fail: forged outputs are rejected.
    #[test]
    fn oracle_rejects_a_leak_to_the_wrong_nic() {
        let f = fixture();
        let flows = f.checker.gateway().flows();
        let Some(udp) = flows
            .iter()
            .find(|x| x.flow.protocol == proto::UDP && x.flow.nic == NicId(0))
        else {
            panic!("no UDP flow");
        };
        let reply = PacketRepr::udp(
            (udp.flow.remote.ip(), 53),
            (IpAddr::V4(INSIDE_V4), 5353),
            b"",
        )
        .emit();
        let t = tuple_of(&reply, false).expect("tuple");
        let arrived = PacketRepr::udp(
            (udp.flow.remote.ip(), 53),
            (udp.flow.nat.ip(), udp.flow.nat.port()),
            b"",
        )
        .emit();
        let tin = tuple_of(&arrived, false).expect("tuple");
        // NIC 1 has a flow with the very same inside and remote endpoints (same private address
        // in another network), but the reply was addressed to NIC 0's NAT port.
        let r =
            f.checker
                .check_delivery(Ingress::Outside, NicId(1), Some(&tin), &t, &flows, &flows);
        assert_eq!(r.map_err(|v| v.invariant), Err("no-inbound-initiation"));
        // Delivered to NIC 0 it is fine.
        assert!(
            f.checker
                .check_delivery(Ingress::Outside, NicId(0), Some(&tin), &t, &flows, &flows)
                .is_ok()
        );
        // But not if the flow only exists afterwards.
        let r = f
            .checker
            .check_delivery(Ingress::Outside, NicId(0), Some(&tin), &t, &[], &flows);
        assert_eq!(r.map_err(|v| v.invariant), Err("no-inbound-initiation"));
    }

    #[test]
    fn oracle_rejects_ports_outside_the_block_and_bad_checksums() {
        let f = fixture();
        let flows = f.checker.gateway().flows();
        let out = PacketRepr::udp(
            (IpAddr::V4(NAT_V4), 1024 + FIXTURE_P),
            (IpAddr::V4(REMOTE_V4[1]), 53),
            b"",
        )
        .emit();
        let t = tuple_of(&out, false).expect("tuple");
        let r = f.checker.check_outbound(NicId(0), &t, &flows);
        assert_eq!(r.map_err(|v| v.invariant), Err("port-limit"));
        let mut bad = out.clone();
        bad[27] ^= 0xff;
        assert!(check_wire(&bad).is_err());
        assert!(check_wire(&out).is_ok());
    }

    #[test]
    fn oracle_rejects_state_from_outside_and_early_expiry() {
        let f = fixture();
        let flows = f.checker.gateway().flows();
        let kind = StepKind::Packet {
            ingress: Ingress::Outside,
            icmp_error: false,
        };
        let fewer = &flows[1..];
        let r = f.checker.check_survival(kind, fewer, &flows);
        assert_eq!(r.map_err(|v| v.invariant), Err("no-inbound-initiation"));
        let r = f.checker.check_survival(kind, &flows, fewer);
        assert_eq!(r.map_err(|v| v.invariant), Err("timers"));
        assert!(f.checker.check_survival(kind, &flows, &flows).is_ok());
    }
}
