//! The oracle's single-gateway extras (see the [module documentation](super#extras)): checks
//! that need the dataplane's inspection interface or the knowledge of which step ran, which the
//! shared checker, an observer of packets and events, cannot make.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::tuple::{Kind, Tuple, tuple_of};
use super::{Checker, StepKind, Violation};
use crate::check::Invariant;
use crate::nat::{
    Block, Egress, EndReason, Event, Family, FlowInfo, FlowView, Ingress, LimitScope, NicId,
    Verdict,
};
use crate::wire::{parse_ip, proto};

/// What P limits, per [`LimitScope`]: (NIC, protocol, family, remote IP, remote port), with the
/// parts the scope ignores set to `None`.
type ScopeKey = (NicId, u8, Family, Option<IpAddr>, Option<u16>);

/// NIC ids to scan for blocks: the harnesses keep ids below 8.
const NIC_ID_BOUND: u32 = 8;

/// (view, live) identities, counted.
fn identities(flows: &[FlowInfo]) -> BTreeMap<(FlowView, bool), usize> {
    let mut m = BTreeMap::new();
    for f in flows {
        *m.entry((f.flow, f.live)).or_insert(0) += 1;
    }
    m
}

impl Checker {
    /// Expiry exactly at the deadline and within the step; creation at the step's time.
    pub(super) fn check_event_times(&self, events: &[Event]) -> Result<(), Violation> {
        let now = self.dp_now;
        for e in events {
            match e {
                Event::FlowEnded {
                    at,
                    reason: EndReason::Timeout,
                    deadline,
                    last_active,
                    flow,
                } if at != deadline || *at > now || last_active > at => {
                    return Err(self.violation(
                        Invariant::Timers,
                        format!(
                            "flow {flow:?} ended at {at} (deadline {deadline}, last active \
                             {last_active}, now {now})"
                        ),
                    ));
                }
                Event::FlowCreated { at, flow } if *at != now => {
                    return Err(self.violation(
                        Invariant::Timers,
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
        if self.config.profile.last_port_unusable && b.len() > 1 {
            b.end_port - 1
        } else {
            b.end_port
        }
    }

    fn in_block(&self, b: &Block, ip: IpAddr, port: u16) -> bool {
        ip == b.nat_ip && (b.port..=self.usable_end(b)).contains(&port)
    }

    /// The dataplane's flow table against its blocks and NICs.
    pub(super) fn check_flow_table(&self, flows: &[FlowInfo]) -> Result<(), Violation> {
        // The dataplane's clock, not the harness's: after a lazy advance (no `handle_timeout`)
        // due flows legitimately stay until the next call tells the dataplane the time.
        let now = self.dp_now;
        let scope = self.config.profile.limit_scope;
        let mut nat_tuples = BTreeMap::new();
        let mut per_scope: BTreeMap<ScopeKey, u32> = BTreeMap::new();
        for f in flows {
            let v = &f.flow;
            let fam = Family::of(&v.nat.ip());
            let Some(nic) = self.nics.get(&v.nic) else {
                return Err(self.violation(
                    Invariant::PortLimit,
                    format!("flow of a removed NIC is still tracked: {f:?}"),
                ));
            };
            if Family::of(&v.inside.ip()) != fam || Family::of(&v.remote.ip()) != fam {
                return Err(self.violation(Invariant::Isolation, format!("mixed families: {f:?}")));
            }
            if !nic.addresses.contains(&v.inside.ip()) {
                return Err(self.violation(
                    Invariant::Isolation,
                    format!("flow's inside address is not its NIC's: {f:?}"),
                ));
            }
            let Some(block) = self.dp.block_of(v.nic, fam) else {
                return Err(self.violation(
                    Invariant::PortLimit,
                    format!("flow outlived its NIC's block: {f:?}"),
                ));
            };
            if !self.in_block(&block, v.nat.ip(), v.nat.port()) {
                return Err(self.violation(
                    Invariant::PortLimit,
                    format!("flow's NAT endpoint is outside its block {block:?}: {f:?}"),
                ));
            }
            // A flow is never due after a packet, but for one an RST before any reply ended
            // at that very instant (`tcp_unanswered_rst_ends_flow`): its timer fires at `now`.
            let ends_now = f.deadline == now
                && f.state == "reset"
                && self.config.profile.tcp_unanswered_rst_ends_flow;
            if (f.deadline <= now && !ends_now) || f.last_active > now {
                return Err(self.violation(
                    Invariant::Timers,
                    format!("tracked flow is due or from the future (now {now}): {f:?}"),
                ));
            }
            if !f.live {
                continue;
            }
            if let Some(other) = nat_tuples.insert((v.nat, v.remote, v.protocol), v) {
                return Err(self.violation(
                    Invariant::PortLimit,
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
                    Invariant::PortLimit,
                    format!("more than {usable} live flows for scope key {key:?}"),
                ));
            }
        }
        let mut blocks: Vec<(NicId, Block)> = Vec::new();
        for id in 0..NIC_ID_BOUND {
            for fam in [Family::V4, Family::V6] {
                if let Some(b) = self.dp.block_of(NicId(id), fam) {
                    if let Some((o, ob)) = blocks.iter().find(|(_, ob)| ob.overlaps(&b)) {
                        return Err(self.violation(
                            Invariant::PortLimit,
                            format!("blocks overlap: {o} {ob:?} and nic#{id} {b:?}"),
                        ));
                    }
                    blocks.push((NicId(id), b));
                }
            }
        }
        Ok(())
    }

    /// Flows not due before the step survive it unchanged; the outside creates nothing; ICMP
    /// errors change nothing.
    pub(super) fn check_survival(
        &self,
        kind: StepKind,
        before: &[FlowInfo],
        after: &[FlowInfo],
    ) -> Result<(), Violation> {
        let now = self.dp_now;
        let affected = |v: &FlowView| match kind {
            StepKind::Control { nic, family } => {
                v.nic == nic && family.is_none_or(|f| f == Family::of(&v.nat.ip()))
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
        // Under `tcp_time_wait_takeover` a new inside SYN may take over a closed TCP flow's port
        // (behaviour §5): the closed flow ends early, and a new flow with the same NAT and remote
        // endpoints stands in its place.
        let taken_over = |v: &FlowView| {
            self.config.profile.tcp_time_wait_takeover
                && matches!(
                    kind,
                    StepKind::Packet {
                        ingress: Ingress::Inside(_),
                        ..
                    }
                )
                && v.protocol == proto::TCP
                && after.iter().any(|a| {
                    a.flow.protocol == v.protocol
                        && a.flow.nat == v.nat
                        && a.flow.remote == v.remote
                        && a.flow.inside != v.inside
                        && !before.iter().any(|b| b.flow == a.flow)
                })
        };
        for (k, n) in &want {
            if got.get(k).copied().unwrap_or(0) < *n && !taken_over(&k.0) {
                return Err(self.violation(
                    Invariant::Timers,
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
                Invariant::NoInboundInitiation,
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
                    Invariant::MappingStability,
                    format!(
                        "an ICMP error changed flows (RFC 5508 REQ-6): before {survivors:?}, \
                         after {kept:?}"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// A released fragment goes to its NIC's address, or outside from a NAT IP.
    pub(super) fn check_released(&self, egress: Egress, p: &[u8]) -> Result<(), Violation> {
        let Some(t) = tuple_of(p, false) else {
            return Err(self.violation(Invariant::WireValidity, "released packet has no tuple"));
        };
        match egress {
            Egress::Nic(n) => self.check_to_nic_address(n, &t),
            Egress::Outside if self.nat_ips.contains(&t.src) => Ok(()),
            Egress::Outside => Err(self.violation(
                Invariant::PortLimit,
                format!("released fragment leaves with a private source: {t:?}"),
            )),
        }
    }

    fn check_to_nic_address(&self, n: NicId, t: &Tuple) -> Result<(), Violation> {
        match self.nics.get(&n) {
            Some(nic) if nic.addresses.contains(&t.dst) => Ok(()),
            _ => Err(self.violation(
                Invariant::Isolation,
                format!("packet delivered to {n} is not addressed to it: {t:?}"),
            )),
        }
    }

    /// Where the verdict sent the packet, and how it is addressed.
    pub(super) fn check_verdict(
        &self,
        ingress: Ingress,
        verdict: Verdict,
        input: &[u8],
        output: &[u8],
    ) -> Result<(), Violation> {
        let egress = match verdict {
            Verdict::Drop(_) | Verdict::Buffered => return Ok(()),
            Verdict::PassThrough => return self.check_pass_through(ingress, input, output),
            Verdict::Forward(e) | Verdict::Respond(e) => e,
        };
        let Some(t) = tuple_of(output, false) else {
            return Err(self.violation(Invariant::WireValidity, "sent packet has no tuple"));
        };
        match (verdict, ingress, egress) {
            (Verdict::Forward(_), _, Egress::Nic(n)) => {
                if t.kind == (Kind::IcmpError { quoted: None }) {
                    return Err(self.violation(
                        Invariant::NoInboundInitiation,
                        format!(
                            "inbound ICMP error delivered to {n} although its quoted packet has \
                             no readable transport header within its own IP length: {t:?}"
                        ),
                    ));
                }
                self.check_to_nic_address(n, &t)
            }
            (Verdict::Forward(_), Ingress::Inside(n), Egress::Outside) => {
                self.check_leaves_from_block(n, &t)
            }
            (Verdict::Respond(_), Ingress::Inside(n), Egress::Nic(m)) if n == m => {
                self.check_to_nic_address(m, &t)
            }
            (Verdict::Respond(_), Ingress::Outside, Egress::Outside) => {
                if self.nat_ips.contains(&t.src) {
                    Ok(())
                } else {
                    Err(self.violation(
                        Invariant::WireValidity,
                        format!("generated answer not from a NAT IP: {t:?}"),
                    ))
                }
            }
            _ => Err(self.violation(
                Invariant::Isolation,
                format!("impossible route: {verdict:?} for a packet from {ingress:?}: {t:?}"),
            )),
        }
    }

    /// A packet translated outbound from NIC `n` leaves from the NAT IP of the block `n` holds
    /// (whether its port is in the block and matches a flow is the shared checker's).
    fn check_leaves_from_block(&self, n: NicId, t: &Tuple) -> Result<(), Violation> {
        let fam = Family::of(&t.src);
        let Some(block) = self.dp.block_of(n, fam) else {
            return Err(self.violation(
                Invariant::PortLimit,
                format!("{n} has no {} block but translated {t:?}", fam.name()),
            ));
        };
        if t.src != block.nat_ip {
            return Err(self.violation(
                Invariant::PortLimit,
                format!("outbound source is not {n}'s NAT IP {block:?}: {t:?}"),
            ));
        }
        match &t.kind {
            Kind::IcmpError { quoted: None } => Err(self.violation(
                Invariant::PortLimit,
                format!(
                    "outbound ICMP error forwarded although its quoted packet has no readable \
                     transport header within its own IP length: {t:?}"
                ),
            )),
            Kind::Ports { .. }
            | Kind::EchoRequest { .. }
            | Kind::IcmpError { .. }
            | Kind::NoTransport => Ok(()),
            _ => Err(self.violation(
                Invariant::PortLimit,
                format!("untranslatable packet left outbound: {t:?}"),
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
            return Err(self.violation(
                Invariant::Isolation,
                "pass-through of a packet from outside",
            ));
        };
        let end = parse_ip(input).map_or(input.len(), |m| m.end);
        if output != &input[..end] {
            return Err(self.violation(Invariant::Isolation, "pass-through packet was modified"));
        }
        let local = self.nics.get(&n).and_then(|nic| {
            let net = self.config.networks.get(usize::from(nic.network.0))?;
            let dst = parse_ip(input).ok()?.dst(input);
            Some(net.local_prefixes.iter().any(|p| p.contains(&dst)))
        });
        if local == Some(true) {
            Ok(())
        } else {
            Err(self.violation(
                Invariant::Selection,
                "pass-through of a packet to a non-local destination",
            ))
        }
    }
}
