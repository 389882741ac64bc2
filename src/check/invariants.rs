//! The invariant checker (behaviour §6, invariants 1–8 here and 10 in [`super::liveness`]; 9,
//! determinism, is checked by running twice and comparing trace digests, see
//! [`crate::scenario`]).
//!
//! The one behaviour §6 checker: the simulator, replay (`crate::replay`) and the fuzz oracle
//! (`natsim::fuzzing::oracle`) all feed it [`Observation`]s. This file stays whole (about 1,050
//! lines) because it is one flow model: every check reads and updates the same maps (flows by NAT
//! tuple and by inside tuple, port occupancy per scope key, mapping references, blocks), and the
//! inbound, outbound, ICMP-error and event paths must keep them in step; split across files, the
//! bookkeeping would sit apart from the rules that depend on it.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use foldhash::fast::FixedState;
use hashbrown::HashMap;
use serde::Serialize;

use super::liveness::{Liveness, block_usable, usable_ports};
use crate::nat::{
    Block, DropReason, Egress, EndReason, Event, Family, FlowView, Ingress, LimitScope, NicId,
    Profile, Verdict,
};
use crate::sim::observe::{NicInfo, Observation, Observer, Violation};
use crate::sim::packet::{IcmpKind, Tuple, quoted_offset};
use crate::time::Instant;
use crate::wire::checksum;
use crate::wire::parse::{IpVersion, parse_ip, parse_ip_lax};

pub use crate::sim::observe::Invariant;

/// How often each invariant was evaluated.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct InvariantSummary {
    /// Checks performed, by invariant name.
    pub checks: BTreeMap<&'static str, u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct NatKey {
    proto: u8,
    nat: SocketAddr,
    remote: SocketAddr,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct InsideKey {
    nic: NicId,
    proto: u8,
    inside: SocketAddr,
    remote: SocketAddr,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Scope {
    Nic(u8, Family),
    RemoteIp(u8, IpAddr),
    RemoteEndpoint(u8, SocketAddr),
}

#[derive(Clone, Copy, Debug)]
struct FlowModel {
    nic: NicId,
    inside: SocketAddr,
    last_out_ns: u64,
}

type Map<K, V> = HashMap<K, V, FixedState>;

fn map<K, V>() -> Map<K, V> {
    HashMap::with_hasher(FixedState::with_seed(0x6e61_7473))
}

/// Checks invariants 1–8 on every observation.
pub struct InvariantChecker {
    profile: Profile,
    nics: BTreeMap<NicId, NicInfo>,
    /// The control plane's assignments.
    blocks: Map<(NicId, Family), Block>,
    /// When the control plane last released a NIC's block of a family.
    released_at: Map<(NicId, Family), u64>,
    /// Blocks the dataplanes report holding (from their events): start → (end, NIC).
    dataplane_blocks: BTreeMap<(IpAddr, u16), (u16, NicId, u16)>,
    by_nat: Map<NatKey, FlowModel>,
    by_inside: Map<InsideKey, SocketAddr>,
    /// Live and held ports per NIC and scope key.
    occupancy: Map<(NicId, Scope), u32>,
    /// `nic` scope only: live and held flows per endpoint mapping (NIC, protocol, inside
    /// endpoint). P bounds mappings there, not flows: the flows of one inside endpoint share its
    /// mapping's port, so only the mapping's first flow takes a slot of `occupancy`.
    mapping_refs: Map<(NicId, u8, SocketAddr), u32>,
    checks: [u64; 10],
    /// Invariant 10's own flow model.
    liveness: Liveness,
}

fn family_of(a: &IpAddr) -> Family {
    Family::of(a)
}

/// The remote endpoint of a flow as the gateway keys it (ICMP echo flows use port 0).
fn remote_of(t: &Tuple, outbound: bool) -> SocketAddr {
    match (t.icmp, outbound) {
        (Some(_), true) => SocketAddr::new(t.dst, 0),
        (Some(_), false) => SocketAddr::new(t.src, 0),
        (None, true) => t.dst_addr(),
        (None, false) => t.src_addr(),
    }
}

/// Verifies the checksums of a packet leaving the gateway: IPv4 header, transport, and for ICMP
/// errors the quoted IPv4 header (RFC 5508 REQ-4).
fn wire_ok(pkt: &[u8]) -> Result<(), String> {
    let meta = parse_ip(pkt).map_err(|e| format!("does not parse: {e}"))?;
    if meta.version == IpVersion::V4 && !checksum::ipv4_header_ok(pkt, meta.l4_offset) {
        return Err("IPv4 header checksum is wrong".into());
    }
    if !crate::nat::l4_checksum_ok(pkt, &meta) {
        return Err(format!("protocol {} checksum is wrong", meta.protocol));
    }
    if let Some(off) = quoted_offset(pkt) {
        let q = &pkt[off..meta.end];
        if let Ok(qm) = parse_ip_lax(q)
            && qm.version == IpVersion::V4
            && q.len() >= qm.l4_offset
            && !checksum::ipv4_header_ok(q, qm.l4_offset)
        {
            return Err("quoted IPv4 header checksum is wrong".into());
        }
    }
    Ok(())
}

impl InvariantChecker {
    /// A checker for a gateway running `profile`.
    pub fn new(profile: Profile) -> Self {
        let profile_for_liveness = profile.clone();
        InvariantChecker {
            profile,
            nics: BTreeMap::new(),
            blocks: map(),
            released_at: map(),
            dataplane_blocks: BTreeMap::new(),
            by_nat: map(),
            by_inside: map(),
            occupancy: map(),
            mapping_refs: map(),
            checks: [0; 10],
            liveness: Liveness::new(profile_for_liveness, None),
        }
    }

    /// A checker that also knows the conntrack table limit per family (`max_flows`), so
    /// invariant 10 can judge `table_full` drops.
    pub fn with_table_limit(profile: Profile, max_flows: u32) -> Self {
        let mut c = InvariantChecker::new(profile.clone());
        c.liveness = Liveness::new(profile, Some(max_flows));
        c
    }

    /// Counts of checks performed.
    pub fn summary(&self) -> InvariantSummary {
        InvariantSummary {
            checks: Invariant::ALL
                .iter()
                .filter(|i| **i != Invariant::Determinism)
                .map(|i| match i {
                    Invariant::Liveness => (i.name(), self.liveness.checks()),
                    _ => (i.name(), self.checks[*i as usize]),
                })
                .collect(),
        }
    }

    /// A NIC's name for a message (built only when a violation is reported: `admit` runs on
    /// every translated packet).
    fn nic_name(&self, nic: NicId) -> String {
        self.nics
            .get(&nic)
            .map_or_else(|| nic.to_string(), |n| n.name.clone())
    }

    fn check(&mut self, inv: Invariant) {
        self.checks[inv as usize] += 1;
    }

    fn scope(&self, proto: u8, remote: SocketAddr) -> Scope {
        match self.profile.limit_scope {
            LimitScope::Nic => Scope::Nic(proto, family_of(&remote.ip())),
            LimitScope::RemoteIp => Scope::RemoteIp(proto, remote.ip()),
            LimitScope::RemoteEndpoint => Scope::RemoteEndpoint(proto, remote),
        }
    }

    fn min_timeout_ms(&self, proto: u8) -> u64 {
        let p = &self.profile;
        match proto {
            6 => p
                .timeout_tcp_established_ms
                .min(p.timeout_tcp_transitory_ms)
                .min(p.timeout_tcp_reset_ms.unwrap_or(u64::MAX)),
            17 => p.timeout_udp_ms.min(p.timeout_udp_stream_ms),
            _ => p.timeout_icmp_ms,
        }
    }

    fn forget_nic_family(&mut self, nic: NicId, family: Option<Family>) {
        let fam_ok = |a: &SocketAddr| family.is_none_or(|f| family_of(&a.ip()) == f);
        self.by_nat.retain(|k, v| !(v.nic == nic && fam_ok(&k.nat)));
        self.by_inside
            .retain(|k, _| !(k.nic == nic && fam_ok(&k.remote)));
        self.occupancy.retain(|(n, s), _| {
            let f = match s {
                Scope::Nic(_, f) => *f,
                Scope::RemoteIp(_, ip) => family_of(ip),
                Scope::RemoteEndpoint(_, ep) => family_of(&ep.ip()),
            };
            !(*n == nic && family.is_none_or(|x| x == f))
        });
        self.mapping_refs
            .retain(|(n, _, inside), _| !(*n == nic && fam_ok(inside)));
    }

    /// Under `nic` scope, counts a flow's reference to its endpoint mapping; true when the flow
    /// is the mapping's first and so takes a port of the scope. Other scopes: always true.
    fn takes_port(&mut self, scope: Scope, nic: NicId, proto: u8, inside: SocketAddr) -> bool {
        if !matches!(scope, Scope::Nic(..)) {
            return true;
        }
        let refs = self.mapping_refs.entry((nic, proto, inside)).or_insert(0);
        *refs += 1;
        *refs == 1
    }

    /// The reverse of [`InvariantChecker::takes_port`] when a flow's port is released: true
    /// when the scope's port is free again.
    fn frees_port(&mut self, scope: Scope, nic: NicId, proto: u8, inside: SocketAddr) -> bool {
        if !matches!(scope, Scope::Nic(..)) {
            return true;
        }
        let key = (nic, proto, inside);
        let Some(refs) = self.mapping_refs.get_mut(&key) else {
            return true;
        };
        *refs = refs.saturating_sub(1);
        if *refs == 0 {
            self.mapping_refs.remove(&key);
            return true;
        }
        false
    }

    /// Admits a new flow into the model (from an outbound translation seen on the wire, or from
    /// a `FlowCreated` event when the packet itself was consumed, e.g. an unmatched hairpin):
    /// selection, port-in-block, no overloading, at most P per scope key.
    fn admit(
        &mut self,
        nic: NicId,
        proto: u8,
        inside: SocketAddr,
        remote: SocketAddr,
        nat: SocketAddr,
        now_ns: u64,
    ) -> Result<(), Violation> {
        let family = family_of(&nat.ip());
        self.check(Invariant::Selection);
        let Some(block) = self.blocks.get(&(nic, family)).copied() else {
            return Err(Violation::new(
                Invariant::Selection,
                format!(
                    "NIC {} holds no {} block (not selected, VirtualIP, exhausted or released) but its flow {inside} -> {remote} was translated to {nat}",
                    self.nic_name(nic),
                    family.name()
                ),
            ));
        };
        let ikey = InsideKey {
            nic,
            proto,
            inside,
            remote,
        };
        self.check(Invariant::MappingStability);
        let known = self.by_inside.get(&ikey).copied();
        if let Some(prev) = known
            && prev != nat
        {
            return Err(Violation::new(
                Invariant::MappingStability,
                format!(
                    "live flow {inside} -> {remote} of NIC {} was translated to {prev} before and to {nat} now",
                    self.nic_name(nic)
                ),
            ));
        }
        self.check(Invariant::PortLimit);
        let usable = block_usable(&self.profile, &block);
        let last = u32::from(block.port) + usable - 1;
        let port = u32::from(nat.port());
        if nat.ip() != block.nat_ip || port < u32::from(block.port) || port > last {
            return Err(Violation::new(
                Invariant::PortLimit,
                format!(
                    "NIC {} translated to {nat}, outside its block {}:{}-{} ({usable} usable ports)",
                    self.nic_name(nic),
                    block.nat_ip,
                    block.port,
                    last
                ),
            ));
        }
        let nkey = NatKey { proto, nat, remote };
        if known.is_some() {
            if let Some(f) = self.by_nat.get_mut(&nkey) {
                f.last_out_ns = now_ns;
            }
            return Ok(());
        }
        if let Some(other) = self.by_nat.get(&nkey)
            && (other.nic != nic || other.inside != inside)
        {
            return Err(Violation::new(
                Invariant::PortLimit,
                format!(
                    "port overloading: {nat} -> {remote} (protocol {proto}) is already used by {} of {}",
                    other.inside, other.nic
                ),
            ));
        }
        let scope = self.scope(proto, remote);
        let new_port = self.takes_port(scope, nic, proto, inside);
        let count = self.occupancy.entry((nic, scope)).or_insert(0);
        *count += u32::from(new_port);
        if *count > usable {
            let c = *count;
            return Err(Violation::new(
                Invariant::PortLimit,
                format!(
                    "NIC {} has {c} concurrent flows in one {} scope key; P allows {usable}",
                    self.nic_name(nic),
                    self.profile.limit_scope.name()
                ),
            ));
        }
        self.by_inside.insert(ikey, nat);
        self.by_nat.insert(
            nkey,
            FlowModel {
                nic,
                inside,
                last_out_ns: now_ns,
            },
        );
        Ok(())
    }

    fn outbound(
        &mut self,
        nic: NicId,
        before: &[u8],
        after: &[u8],
        hairpin_to: Option<NicId>,
        now_ns: u64,
    ) -> Result<(), Violation> {
        let (Some(bt), Some(at)) = (Tuple::parse(before), Tuple::parse(after)) else {
            return Ok(());
        };
        if bt.icmp == Some(IcmpKind::Error) {
            return self.outbound_error(nic, &bt, &at, before, after, hairpin_to);
        }
        let remote = remote_of(&bt, true);
        self.admit(
            nic,
            bt.protocol,
            bt.src_addr(),
            remote,
            at.src_addr(),
            now_ns,
        )
        .map_err(|v| v.with_packet("before", before).with_packet("after", after))?;
        if let Some(receiver) = hairpin_to {
            // The hairpinned packet then enters as inbound traffic to the receiver's mapping.
            return self.inbound_match(receiver, &at, &at, before, after, Some(bt.dst_addr()));
        }
        Ok(())
    }

    /// An ICMP error from inside host `nic`, translated outbound (docs/behaviour.md §4 ICMP,
    /// RFC 5508 REQ-5): it must quote a reply of a live flow of that NIC, be addressed to the
    /// quoted packet's source (the flow's remote), and leave with the flow's NAT address as its
    /// outer source and quoted destination. A hairpinned error (to another NIC's NAT address)
    /// then enters as an inbound error, checked like one.
    fn outbound_error(
        &mut self,
        nic: NicId,
        bt: &Tuple,
        at: &Tuple,
        before: &[u8],
        after: &[u8],
        hairpin_to: Option<NicId>,
    ) -> Result<(), Violation> {
        let pkts = |v: Violation| v.with_packet("before", before).with_packet("after", after);
        let quoted = |b: &[u8]| quoted_offset(b).and_then(|o| Tuple::parse_quoted(&b[o..]));
        let (Some(qb), Some(qa)) = (quoted(before), quoted(after)) else {
            return Ok(());
        };
        // The quoted packet is a reply: remote → inside (an echo reply's identifier is its
        // destination port).
        let icmp = qb.icmp.is_some();
        let remote = SocketAddr::new(qb.src, if icmp { 0 } else { qb.src_port });
        let inside = qb.dst_addr();
        self.check(Invariant::MappingStability);
        let key = InsideKey {
            nic,
            proto: qb.protocol,
            inside,
            remote,
        };
        let Some(nat) = self.by_inside.get(&key).copied() else {
            return Err(pkts(Violation::new(
                Invariant::MappingStability,
                format!(
                    "ICMP error from {} was translated outbound but quotes {remote} -> {inside}, a reply of no live flow of that NIC (quoted side)",
                    self.nic_name(nic)
                ),
            )));
        };
        if bt.dst != remote.ip() {
            return Err(pkts(Violation::new(
                Invariant::MappingStability,
                format!(
                    "ICMP error from {} about its flow {inside} -> {remote} was addressed to {}, not to the quoted packet's source {}, and translated instead of dropped (outer side, docs/behaviour.md §4 ICMP)",
                    self.nic_name(nic),
                    bt.dst,
                    remote.ip()
                ),
            )));
        }
        if at.src != nat.ip() || qa.dst_addr() != nat {
            return Err(pkts(Violation::new(
                Invariant::MappingStability,
                format!(
                    "ICMP error about flow {inside} -> {remote} (NAT {nat}) left with outer source {} and quoted destination {}",
                    at.src,
                    qa.dst_addr()
                ),
            )));
        }
        let Some(receiver) = hairpin_to else {
            return Ok(());
        };
        // As it entered the hairpin: quoted source unchanged, quoted destination translated.
        let mut mid = qb;
        mid.dst = nat.ip();
        mid.dst_port = nat.port();
        self.error_match(receiver, bt.dst, &mid, at, before, after)
    }

    /// An inbound ICMP error delivered to `nic`: the quoted packet `q` (as the error arrived)
    /// must be a live flow's translated packet, the error must have arrived addressed to that
    /// flow's NAT address (`outer_dst`; docs/behaviour.md §4 ICMP), and it must be delivered to
    /// the flow's NIC and inside address.
    fn error_match(
        &mut self,
        nic: NicId,
        outer_dst: IpAddr,
        q: &Tuple,
        delivered: &Tuple,
        before: &[u8],
        after: &[u8],
    ) -> Result<(), Violation> {
        let pkts = |v: Violation| v.with_packet("before", before).with_packet("after", after);
        let remote = if q.icmp.is_some() {
            SocketAddr::new(q.dst, 0)
        } else {
            q.dst_addr()
        };
        let key = NatKey {
            proto: q.protocol,
            nat: q.src_addr(),
            remote,
        };
        self.check(Invariant::NoInboundInitiation);
        let Some(flow) = self.by_nat.get(&key).copied() else {
            return Err(pkts(Violation::new(
                Invariant::NoInboundInitiation,
                format!(
                    "ICMP error delivered to {nic} quotes {} -> {remote}, which is no live flow's translated packet (quoted side)",
                    key.nat
                ),
            )));
        };
        if outer_dst != key.nat.ip() {
            return Err(pkts(Violation::new(
                Invariant::NoInboundInitiation,
                format!(
                    "ICMP error about {}'s flow {} -> {remote} (NAT {}) arrived addressed to {outer_dst}, not to the quoted packet's source, and was delivered instead of dropped (outer side, docs/behaviour.md §4 ICMP)",
                    flow.nic, flow.inside, key.nat
                ),
            )));
        }
        self.check(Invariant::Isolation);
        if flow.nic != nic {
            return Err(pkts(Violation::new(
                Invariant::Isolation,
                format!(
                    "ICMP error about {}'s flow {} -> {remote} was delivered to {nic}",
                    flow.nic, flow.inside
                ),
            )));
        }
        if delivered.dst != flow.inside.ip() {
            return Err(pkts(Violation::new(
                Invariant::Isolation,
                format!(
                    "ICMP error about flow {} -> {remote} was delivered to {} instead",
                    flow.inside, delivered.dst
                ),
            )));
        }
        Ok(())
    }

    /// Checks that an inbound packet delivered to `nic` matches a live flow of that NIC.
    /// `arrived` is the packet as it arrived, `delivered` as it leaves to the NIC; an ICMP error
    /// is matched on both its quoted packet and its outer destination ([`Self::error_match`]).
    fn inbound_match(
        &mut self,
        nic: NicId,
        arrived: &Tuple,
        delivered: &Tuple,
        before: &[u8],
        after: &[u8],
        hairpin_nat: Option<SocketAddr>,
    ) -> Result<(), Violation> {
        let pkts = |v: Violation| v.with_packet("before", before).with_packet("after", after);
        if arrived.icmp == Some(IcmpKind::Error) {
            let Some(q) = quoted_offset(before).and_then(|o| Tuple::parse_quoted(&before[o..]))
            else {
                return Ok(());
            };
            return self.error_match(nic, arrived.dst, &q, delivered, before, after);
        }
        let nat = hairpin_nat.unwrap_or_else(|| arrived.dst_addr());
        let key = NatKey {
            proto: arrived.protocol,
            nat,
            remote: remote_of(arrived, false),
        };
        self.check(Invariant::NoInboundInitiation);
        let Some(flow) = self.by_nat.get(&key).copied() else {
            return Err(pkts(Violation::new(
                Invariant::NoInboundInitiation,
                format!(
                    "packet from {} to {} was delivered to {nic} but no live flow of any NIC has that reply tuple",
                    key.remote, key.nat
                ),
            )));
        };
        self.check(Invariant::Isolation);
        if flow.nic != nic {
            return Err(pkts(Violation::new(
                Invariant::Isolation,
                format!(
                    "reply for {}'s flow {} -> {} was delivered to {nic}",
                    flow.nic, flow.inside, key.remote
                ),
            )));
        }
        if delivered.dst_addr() != flow.inside {
            return Err(pkts(Violation::new(
                Invariant::Isolation,
                format!(
                    "reply for flow {} -> {} was rewritten to {} instead",
                    flow.inside,
                    key.remote,
                    delivered.dst_addr()
                ),
            )));
        }
        Ok(())
    }

    /// A later fragment has no ports, so it is checked by addresses: it must come from the
    /// remote address of a live flow of the NIC it is delivered to, for that flow's NAT address
    /// and protocol, and be delivered to that flow's inside address (RFC 4787 REQ-14 gives later
    /// fragments the first one's translation).
    fn inbound_later_fragment(
        &mut self,
        nic: NicId,
        before: &[u8],
        after: &[u8],
    ) -> Result<(), Violation> {
        let (Ok(bm), Ok(am)) = (parse_ip_lax(before), parse_ip_lax(after)) else {
            return Ok(());
        };
        if bm.fragment.is_none_or(|f| f.is_first()) {
            return Ok(());
        }
        let (remote, nat, delivered) = (bm.src(before), bm.dst(before), am.dst(after));
        let pkts = |v: Violation| v.with_packet("before", before).with_packet("after", after);
        self.check(Invariant::NoInboundInitiation);
        // Any order of iteration gives the same answers: only existence is asked.
        let mut of_any_nic = false;
        let mut of_this_nic = false;
        for (k, f) in &self.by_nat {
            if k.proto == bm.protocol && k.nat.ip() == nat && k.remote.ip() == remote {
                of_any_nic = true;
                of_this_nic |= f.nic == nic && f.inside.ip() == delivered;
            }
        }
        if !of_any_nic {
            return Err(pkts(Violation::new(
                Invariant::NoInboundInitiation,
                format!(
                    "a later fragment from {remote} to {nat} (protocol {}) was delivered to {nic} but no live flow of any NIC has that remote and NAT address",
                    bm.protocol
                ),
            )));
        }
        self.check(Invariant::Isolation);
        if !of_this_nic {
            return Err(pkts(Violation::new(
                Invariant::Isolation,
                format!(
                    "a later fragment from {remote} to {nat} was delivered to {nic} as {delivered}, which has no flow with that remote and NAT address"
                ),
            )));
        }
        Ok(())
    }

    fn processed(
        &mut self,
        ingress: Ingress,
        before: &[u8],
        verdict: Verdict,
        after: &[u8],
        now_ns: u64,
    ) -> Result<(), Violation> {
        let mut wire = Ok(());
        if matches!(
            verdict,
            Verdict::Forward(_) | Verdict::Respond(_) | Verdict::PassThrough
        ) {
            self.check(Invariant::WireValidity);
            if let Err(e) = wire_ok(after)
                && wire_ok(before).is_ok()
            {
                wire = Err(Violation::new(
                    Invariant::WireValidity,
                    format!("forwarded packet {e}"),
                )
                .with_packet("before", before)
                .with_packet("after", after));
            }
        }
        // The flow model follows the packet even when it is malformed, so that a checker which
        // goes on after a violation (replay) does not report the same flow again; the wire
        // violation is the one reported.
        let model = self.follow(ingress, before, verdict, after, now_ns);
        wire.and(model)
    }

    fn follow(
        &mut self,
        ingress: Ingress,
        before: &[u8],
        verdict: Verdict,
        after: &[u8],
        now_ns: u64,
    ) -> Result<(), Violation> {
        match (ingress, verdict) {
            (Ingress::Inside(nic), Verdict::Forward(Egress::Outside)) => {
                self.outbound(nic, before, after, None, now_ns)
            }
            (Ingress::Inside(nic), Verdict::Forward(Egress::Nic(to))) => {
                self.outbound(nic, before, after, Some(to), now_ns)
            }
            (Ingress::Outside, Verdict::Forward(Egress::Nic(nic))) => {
                match (Tuple::parse(before), Tuple::parse(after)) {
                    (Some(bt), Some(at)) => self.inbound_match(nic, &bt, &at, before, after, None),
                    _ => self.inbound_later_fragment(nic, before, after),
                }
            }
            (Ingress::Inside(nic), Verdict::Drop(DropReason::PortsExhausted)) => {
                self.exhausted(nic, before)
            }
            _ => Ok(()),
        }
    }

    /// "Expired flows free their ports": a refusal must come with every port of the scope key
    /// live or held.
    fn exhausted(&mut self, nic: NicId, before: &[u8]) -> Result<(), Violation> {
        let Some(t) = Tuple::parse(before) else {
            return Ok(());
        };
        let Some(block) = self.blocks.get(&(nic, family_of(&t.src))).copied() else {
            return Ok(());
        };
        self.check(Invariant::Timers);
        let scope = self.scope(t.protocol, remote_of(&t, true));
        let used = self.occupancy.get(&(nic, scope)).copied().unwrap_or(0);
        let Some(usable) = usable_ports(&self.profile, &block, &t) else {
            return Ok(());
        };
        if used < usable {
            return Err(Violation::new(
                Invariant::Timers,
                format!("{nic} was refused a port while only {used} of {usable} are live or held in its scope key"),
            )
            .with_packet("refused", before));
        }
        Ok(())
    }

    fn flow_key(f: &FlowView) -> NatKey {
        NatKey {
            proto: f.protocol,
            nat: f.nat,
            remote: f.remote,
        }
    }

    fn dataplane_event(
        &mut self,
        node: u16,
        e: &Event,
        during: Option<Ingress>,
        now_ns: u64,
    ) -> Result<(), Violation> {
        match e {
            Event::FlowCreated { flow, .. } => {
                self.check(Invariant::NoInboundInitiation);
                if during == Some(Ingress::Outside) {
                    return Err(Violation::new(
                        Invariant::NoInboundInitiation,
                        format!(
                            "a packet from outside created flow {} -> {} (NAT {})",
                            flow.inside, flow.remote, flow.nat
                        ),
                    ));
                }
                return self.admit(
                    flow.nic,
                    flow.protocol,
                    flow.inside,
                    flow.remote,
                    flow.nat,
                    now_ns,
                );
            }
            Event::FlowEnded {
                flow, reason, at, ..
            } => {
                let key = Self::flow_key(flow);
                self.check(Invariant::Timers);
                match reason {
                    EndReason::Timeout => {
                        if let Some(m) = self.by_nat.get(&key) {
                            let earliest = m.last_out_ns.saturating_add(
                                self.min_timeout_ms(flow.protocol).saturating_mul(1_000_000),
                            );
                            if at.as_nanos() < earliest {
                                return Err(Violation::new(
                                    Invariant::Timers,
                                    format!(
                                        "flow {} -> {} expired at {} but its last outbound packet was at {} and the shortest timeout is {} ms",
                                        flow.inside,
                                        flow.remote,
                                        at,
                                        Instant::from_nanos(m.last_out_ns),
                                        self.min_timeout_ms(flow.protocol)
                                    ),
                                ));
                            }
                        }
                    }
                    EndReason::BlockRemoved => {
                        let fam = family_of(&flow.nat.ip());
                        if self.released_at.get(&(flow.nic, fam)) != Some(&now_ns)
                            && self.by_nat.contains_key(&key)
                        {
                            return Err(Violation::new(
                                Invariant::Timers,
                                format!(
                                    "live flow {} -> {} of {} was evicted although its block was not released",
                                    flow.inside, flow.remote, flow.nic
                                ),
                            ));
                        }
                    }
                    // A closed TCP flow whose port a new SYN took over (`linux`): the checker
                    // does not model TCP state, so it only forgets the flow.
                    EndReason::TakenOver => {}
                    // An RST before any reply ended it at once: only a profile that does so.
                    EndReason::ResetUnanswered => {
                        if !self.profile.tcp_unanswered_rst_ends_flow {
                            return Err(Violation::new(
                                Invariant::Timers,
                                format!(
                                    "flow {} -> {} ended at {} on an RST before any reply, which profile {} does not do",
                                    flow.inside, flow.remote, at, self.profile.name
                                ),
                            ));
                        }
                    }
                }
                self.by_nat.remove(&key);
                self.by_inside.remove(&InsideKey {
                    nic: flow.nic,
                    proto: flow.protocol,
                    inside: flow.inside,
                    remote: flow.remote,
                });
            }
            Event::PortReleased { flow, .. } => {
                let scope = self.scope(flow.protocol, flow.remote);
                if self.frees_port(scope, flow.nic, flow.protocol, flow.inside)
                    && let Some(c) = self.occupancy.get_mut(&(flow.nic, scope))
                {
                    *c = c.saturating_sub(1);
                    if *c == 0 {
                        self.occupancy.remove(&(flow.nic, scope));
                    }
                }
            }
            Event::BlockAssigned { nic, block, .. } => {
                self.check(Invariant::PortLimit);
                // Blocks held so far are disjoint, so only the nearest one starting at or before
                // the new block's end can overlap it.
                let prev = self
                    .dataplane_blocks
                    .range(..=(block.nat_ip, block.end_port))
                    .next_back()
                    .map(|(&(ip, start), &(end, owner, _))| {
                        (
                            Block {
                                nat_ip: ip,
                                port: start,
                                end_port: end,
                            },
                            owner,
                        )
                    });
                if let Some((other, owner)) = prev
                    && owner != *nic
                    && other.overlaps(block)
                {
                    return Err(Violation::new(
                        Invariant::PortLimit,
                        format!(
                            "blocks overlap: {nic} got {}:{}-{} while {owner} holds {}-{}",
                            block.nat_ip, block.port, block.end_port, other.port, other.end_port
                        ),
                    ));
                }
                self.dataplane_blocks
                    .insert((block.nat_ip, block.port), (block.end_port, *nic, node));
            }
            Event::BlockRemoved { block, .. } => {
                self.dataplane_blocks.remove(&(block.nat_ip, block.port));
            }
            _ => {}
        }
        Ok(())
    }
}

impl Observer for InvariantChecker {
    fn observe(
        &mut self,
        _index: u64,
        now: Instant,
        obs: &Observation<'_>,
    ) -> Result<(), Violation> {
        let now_ns = now.as_nanos();
        // Invariant 10 first: its model follows every observation, whatever 1–8 find.
        let live = self.liveness.observe(now_ns, obs);
        self.observe_safety(now_ns, obs).and(live)
    }
}

impl InvariantChecker {
    /// Invariants 1–8 for one observation.
    fn observe_safety(&mut self, now_ns: u64, obs: &Observation<'_>) -> Result<(), Violation> {
        match obs {
            Observation::Processed {
                ingress,
                before,
                verdict,
                after,
                ..
            } => self.processed(*ingress, before, *verdict, after, now_ns),
            Observation::Transmitted { pkt, .. } => {
                self.check(Invariant::WireValidity);
                wire_ok(pkt).map_err(|e| {
                    Violation::new(Invariant::WireValidity, format!("released fragment {e}"))
                        .with_packet("fragment", pkt)
                })
            }
            Observation::Dataplane {
                node,
                event,
                during,
            } => self.dataplane_event(*node, event, *during, now_ns),
            Observation::BlockAssigned { nic, block } => {
                self.blocks.insert((*nic, family_of(&block.nat_ip)), *block);
                Ok(())
            }
            Observation::BlockReleased { nic, family, .. } => {
                self.blocks.remove(&(*nic, *family));
                self.released_at.insert((*nic, *family), now_ns);
                self.forget_nic_family(*nic, Some(*family));
                Ok(())
            }
            Observation::Reconciled {
                ports_used,
                ports_per_nic,
                table,
            } => {
                self.check(Invariant::Status);
                let mut routed: Vec<NicId> = Vec::new();
                for (nic, family, alloc, dp) in table.iter() {
                    if alloc != dp {
                        return Err(Violation::new(
                            Invariant::Status,
                            format!(
                                "routing table says {nic} {} has {alloc:?} but the dataplane holds {dp:?}",
                                family.name()
                            ),
                        ));
                    }
                    if alloc.is_some() && routed.last() != Some(nic) {
                        routed.push(*nic);
                    }
                }
                let expected = u64::from(*ports_per_nic) * routed.len() as u64;
                if *ports_used != expected {
                    return Err(Violation::new(
                        Invariant::Status,
                        format!(
                            "portsUsed is {ports_used} but P × routed NICs is {ports_per_nic} × {} = {expected}",
                            routed.len()
                        ),
                    ));
                }
                Ok(())
            }
            Observation::NicUpdated(info) => {
                self.nics.insert(info.id, (*info).clone());
                Ok(())
            }
            Observation::NicRemoved(nic) => {
                self.nics.remove(nic);
                self.forget_nic_family(*nic, None);
                Ok(())
            }
            Observation::NodeRestarted { node } => {
                let on_node: Vec<NicId> = self
                    .nics
                    .values()
                    .filter(|n| n.node == *node)
                    .map(|n| n.id)
                    .collect();
                for nic in on_node {
                    self.forget_nic_family(nic, None);
                }
                self.dataplane_blocks.retain(|_, v| v.2 != *node);
                Ok(())
            }
            Observation::Delivered { .. } => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Invariant, InvariantChecker};
    use crate::nat::event::FlowView;
    use crate::nat::{EndReason, Event, NicId, Profile};
    use crate::sim::observe::{Observation, Observer};
    use crate::time::Instant;

    /// A flow ending on an RST before any reply is `linux`'s; under a profile that keeps reset
    /// flows it is a timers violation (a gateway that drops flows early), under `linux` not.
    #[test]
    fn timers_check_flags_an_unanswered_rst_end_under_a_profile_that_keeps_reset_flows() {
        let flow = FlowView {
            nic: NicId(0),
            protocol: 6,
            inside: "10.0.0.1:5000".parse().expect("addr"),
            remote: "198.51.100.10:80".parse().expect("addr"),
            nat: "203.0.113.1:1024".parse().expect("addr"),
        };
        let at = Instant::from_nanos(1_000);
        let ended = Event::FlowEnded {
            at,
            flow,
            reason: EndReason::ResetUnanswered,
            last_active: at,
            deadline: at,
        };
        let obs = Observation::Dataplane {
            node: 0,
            event: &ended,
            during: None,
        };
        for (profile, violates) in [("rfc", true), ("linux", false)] {
            let mut c = InvariantChecker::new(Profile::named(profile).expect("profile"));
            let r = c.observe(0, at, &obs);
            assert_eq!(r.is_err(), violates, "{profile}: {r:?}");
            if let Err(v) = r {
                assert_eq!(v.invariant, Invariant::Timers);
            }
        }
    }

    #[test]
    fn invariants_serialize_and_read_as_their_behaviour_names() {
        for i in Invariant::ALL {
            let v = serde_json::to_value(i).expect("serializes");
            assert_eq!(v, serde_json::Value::String(i.name().to_string()));
            let back: Invariant = serde_json::from_value(v).expect("reads back");
            assert_eq!(back, i);
            assert_eq!(Invariant::from_name(i.name()), Some(i));
        }
    }
}
