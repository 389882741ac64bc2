//! The invariant oracle of the gateway harnesses: the simulator's behaviour §6 checker
//! ([`InvariantChecker`]) plus the checks only a harness that drives a single dataplane by
//! itself can make ([`extras`](self#extras)).
//!
//! [`Checker`] drives any [`Dataplane`] (the real gateway, or a deliberately broken one of
//! [`crate::check::broken`]) one step at a time (a packet, the clock, a control change) and turns
//! every step into the [`Observation`]s the simulator emits, in the simulator's order, as replay
//! does (`src/replay/run.rs`): the events recorded while a packet was processed, then its
//! `Processed`, then what `poll_transmit` releases (`Transmitted`); a control change as
//! `NicUpdated` / `BlockReleased` / `BlockAssigned` / `NicRemoved`, then the dataplane's events.
//! The shared checker judges invariants 1–7 and 10 (liveness) from those observations alone, with
//! its own flow model, exactly as in a simulation.
//!
//! # Extras
//!
//! The shared checker only observes; it never asks the dataplane anything. The oracle also holds
//! the dataplane's inspection interface ([`Dataplane::flows`], [`Dataplane::block_of`]) and knows
//! what each step was, so after every step it checks what the checker cannot see
//! (`extras.rs`):
//!
//! - **flow table**: every tracked flow (live or held) has its NIC's address and family and lies
//!   in the usable part of its NIC's *current* block (so no flow outlives its block or NIC); no
//!   two live flows share (NAT IP, NAT port, remote IP, remote port, protocol); live flows per NIC
//!   and scope key ≤ the block's usable ports; blocks of different NICs never overlap; nothing
//!   tracked is past its deadline;
//! - **survival**: every flow not yet due before a step is still tracked after it with the same
//!   identity and NAT endpoint (only control steps end flows early, and only the affected NIC's);
//!   a packet from outside creates, revives or rekeys no flow; an ICMP error, in either
//!   direction, leaves every flow exactly as it was (RFC 5508 REQ-6);
//! - **event times**: expiry events fire exactly at their deadline, within the step; flows are
//!   created at the step's time;
//! - **routes and addresses** of what the dataplane sends: a packet for NIC n is addressed to
//!   one of n's addresses; a packet leaving from NIC n does so from n's NAT IP while n holds a
//!   block (also later fragments, which carry no ports for the checker's model); a generated
//!   answer to the outside comes from a NAT IP, a released fragment to the outside too; no
//!   impossible route (e.g. outside to outside);
//! - **ICMP errors with unreadable quotes**: an ICMP error whose quoted packet has no readable
//!   transport header within its own IP length is never translated (the shared checker skips
//!   errors whose quote it cannot read);
//! - **pass-through**: a `PassThrough` packet came from inside, is unchanged and goes to a local
//!   prefix of the NIC's network.
//!
//! Status (invariant 8) is not fed: the harness is the only control plane, and its view of the
//! blocks is read from the dataplane, so the comparison could not fail. Determinism (9) needs two
//! runs (`sim_world` does that through the simulator).

mod extras;
mod fixture;
mod tuple;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

pub use fixture::{
    FIXTURE_FLOWS, FIXTURE_P, Fixture, INSIDE_V4, INSIDE_V6, NAT_V4, NAT_V6, REMOTE_V4, REMOTE_V6,
    fixture_outbound, harness_config, profile_from_byte, two_networks,
};

use crate::check::{Invariant, InvariantChecker};
use crate::nat::{Block, ConfigError, Egress, Family, FlowInfo, GatewayConfig, Ingress, NicConfig};
use crate::nat::{NicId, Verdict};
use crate::sim::dataplane::{Dataplane, DataplaneFactory};
use crate::sim::observe::{self, NicInfo, Observation, Observer};
use crate::time::Instant;

/// The node id of the one dataplane in observations.
const NODE: u16 = 0;

/// A broken invariant: which one, at which step, and what was seen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The invariant (behaviour §6).
    pub invariant: Invariant,
    /// 0-based index of the step (packet or operation) that broke it.
    pub step: usize,
    /// What was seen.
    pub detail: String,
}

impl Violation {
    /// The shared checker's violation at `step`, its packets appended to the detail.
    fn from_checker(v: observe::Violation, step: usize) -> Self {
        let mut detail = v.message;
        for p in &v.packets {
            detail.push_str("\n  ");
            detail.push_str(p);
        }
        Violation {
            invariant: v.invariant,
            step,
            detail,
        }
    }
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

/// A control-plane change the harness makes (the gateway's control interface, typed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Control {
    /// Adds (or updates) a NIC.
    AddNic(NicId, NicConfig),
    /// Removes a NIC: its blocks are released, its flows end.
    RemoveNic(NicId),
    /// Gives a NIC a block (replacing its block of that family).
    AssignBlock(NicId, Block),
    /// Takes a NIC's block of a family away.
    ReleaseBlock(NicId, Family),
}

impl Control {
    fn nic(&self) -> NicId {
        match self {
            Control::AddNic(n, _)
            | Control::RemoveNic(n)
            | Control::AssignBlock(n, _)
            | Control::ReleaseBlock(n, _) => *n,
        }
    }

    /// The family whose flows the change may end (`None`: both).
    fn family(&self) -> Option<Family> {
        match self {
            Control::AssignBlock(_, b) => Some(Family::of(&b.nat_ip)),
            Control::ReleaseBlock(_, f) => Some(*f),
            Control::AddNic(..) | Control::RemoveNic(_) => None,
        }
    }
}

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

/// Drives one dataplane and checks the invariants after every step.
pub struct Checker {
    dp: Box<dyn Dataplane>,
    config: GatewayConfig,
    /// The NICs the dataplane accepted.
    nics: BTreeMap<NicId, NicConfig>,
    /// NAT IPs of blocks the dataplane took (the gateway's public addresses).
    nat_ips: BTreeSet<IpAddr>,
    invariants: InvariantChecker,
    /// The harness's clock.
    now: Instant,
    /// The last time handed to the dataplane: its clock (it only moves forward).
    dp_now: Instant,
    step: usize,
}

impl Checker {
    /// A dataplane built by `factory` for `config` (with `record_events` on, so expiry events
    /// can be checked), no NICs yet.
    pub fn new(config: GatewayConfig, factory: &DataplaneFactory) -> Result<Self, ConfigError> {
        let dp = factory(config.clone())?;
        let invariants =
            InvariantChecker::with_table_limit(config.profile.clone(), config.max_flows);
        Ok(Checker {
            dp,
            config,
            nics: BTreeMap::new(),
            nat_ips: BTreeSet::new(),
            invariants,
            now: Instant::ZERO,
            dp_now: Instant::ZERO,
            step: 0,
        })
    }

    /// The dataplane under test.
    pub fn dataplane(&self) -> &dyn Dataplane {
        self.dp.as_ref()
    }

    /// Whether the dataplane holds NIC `id`.
    pub fn has_nic(&self, id: NicId) -> bool {
        self.nics.contains_key(&id)
    }

    /// The harness's clock.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Steps run so far.
    pub fn steps(&self) -> usize {
        self.step
    }

    fn violation(&self, invariant: Invariant, detail: impl Into<String>) -> Violation {
        Violation {
            invariant,
            step: self.step,
            detail: detail.into(),
        }
    }

    /// Hands one observation to the shared checker.
    fn observe(&mut self, obs: &Observation<'_>) -> Result<(), Violation> {
        let step = self.step;
        self.invariants
            .observe(step as u64, self.now, obs)
            .map_err(|v| Violation::from_checker(v, step))
    }

    /// Drains the dataplane's events into the checker (`during`: the ingress of the packet
    /// being processed), then checks their times.
    fn observe_events(&mut self, during: Option<Ingress>) -> Result<(), Violation> {
        let events = self.dp.drain_events();
        for event in &events {
            self.observe(&Observation::Dataplane {
                node: NODE,
                event,
                during,
            })?;
        }
        self.check_event_times(&events)
    }

    /// Sends `pkt` into the dataplane at the current time and checks everything; returns the
    /// verdict and the bytes after processing.
    pub fn packet(
        &mut self,
        ingress: Ingress,
        mut pkt: Vec<u8>,
    ) -> Result<(Verdict, Vec<u8>), Violation> {
        let input = pkt.clone();
        let icmp_error = tuple::is_icmp_error(&input);
        let before = self.dp.flows();
        self.dp_now = self.now;
        let verdict = self.dp.process(self.now, ingress, &mut pkt);
        self.observe_events(Some(ingress))?;
        self.observe(&Observation::Processed {
            node: NODE,
            ingress,
            before: &input,
            verdict,
            after: &pkt,
        })?;
        self.finish_step(
            StepKind::Packet {
                ingress,
                icmp_error,
            },
            &before,
        )?;
        self.check_verdict(ingress, verdict, &input, &pkt)?;
        self.step += 1;
        Ok((verdict, pkt))
    }

    /// Moves the clock forward by `ms`; with `timeout`, also calls
    /// [`Dataplane::handle_timeout`] (otherwise expiry happens lazily in the next call).
    pub fn advance(&mut self, ms: u64, timeout: bool) -> Result<(), Violation> {
        let before = self.dp.flows();
        self.now = self.now.plus_millis(ms);
        if timeout {
            self.dp_now = self.now;
            self.dp.handle_timeout(self.now);
        }
        self.observe_events(None)?;
        self.finish_step(StepKind::Time, &before)?;
        self.step += 1;
        Ok(())
    }

    /// Moves the clock to the dataplane's next deadline if it has one within `limit_ms`.
    pub fn poll_timeout(&mut self, limit_ms: u64) -> Result<(), Violation> {
        let before = self.dp.flows();
        if let Some(t) = self.dp.poll_timeout()
            && t <= self.now.plus_millis(limit_ms)
        {
            self.now = self.now.max(t);
            self.dp_now = self.now;
            self.dp.handle_timeout(self.now);
        }
        self.observe_events(None)?;
        self.finish_step(StepKind::Time, &before)?;
        self.step += 1;
        Ok(())
    }

    /// Runs a control-plane change as a step; errors the dataplane returns are fine (refused
    /// changes are part of the input space).
    pub fn control(&mut self, change: Control) -> Result<(), Violation> {
        let before = self.dp.flows();
        let kind = StepKind::Control {
            nic: change.nic(),
            family: change.family(),
        };
        let _refused = self.apply(change)?;
        self.finish_step(kind, &before)?;
        self.step += 1;
        Ok(())
    }

    /// Applies a change while setting a world up (not a step): a refusal or a violation is an
    /// error of the harness's own setup.
    pub fn setup(&mut self, change: Control) -> Result<(), String> {
        match self.apply(change) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("setup refused: {e}")),
            Err(v) => Err(v.to_string()),
        }
    }

    /// Makes the change and tells the checker as the simulator's control plane does: a NIC once
    /// added, a block released before the one replacing it is assigned, a removed NIC's blocks
    /// released, then the dataplane's events.
    fn apply(&mut self, change: Control) -> Result<Result<(), ConfigError>, Violation> {
        let now = self.now;
        let result = match change {
            Control::AddNic(id, nic) => {
                let r = self.dp.add_nic(id, nic.clone());
                if r.is_ok() {
                    let info = NicInfo {
                        id,
                        name: nic.name.clone(),
                        network: nic.network.0,
                        addresses: nic.addresses.clone(),
                        node: NODE,
                    };
                    self.nics.insert(id, nic);
                    self.observe(&Observation::NicUpdated(&info))?;
                }
                r
            }
            Control::RemoveNic(id) => {
                let held: Vec<(Family, Block)> = [Family::V4, Family::V6]
                    .into_iter()
                    .filter_map(|f| self.dp.block_of(id, f).map(|b| (f, b)))
                    .collect();
                self.dp_now = now;
                self.dp.remove_nic(now, id);
                for (family, block) in held {
                    self.observe(&Observation::BlockReleased {
                        nic: id,
                        family,
                        block,
                    })?;
                }
                self.nics.remove(&id);
                self.observe(&Observation::NicRemoved(id))?;
                Ok(())
            }
            Control::AssignBlock(id, block) => {
                let family = Family::of(&block.nat_ip);
                let old = self.dp.block_of(id, family);
                self.dp_now = now;
                let r = self.dp.assign_block(now, id, block);
                let new = self.dp.block_of(id, family);
                if new != old {
                    if let Some(old) = old {
                        self.observe(&Observation::BlockReleased {
                            nic: id,
                            family,
                            block: old,
                        })?;
                    }
                    if let Some(b) = new {
                        self.nat_ips.insert(b.nat_ip);
                        self.observe(&Observation::BlockAssigned { nic: id, block: b })?;
                    }
                }
                r
            }
            Control::ReleaseBlock(id, family) => {
                self.dp_now = now;
                if let Some(block) = self.dp.release_block(now, id, family) {
                    self.observe(&Observation::BlockReleased {
                        nic: id,
                        family,
                        block,
                    })?;
                }
                Ok(())
            }
        };
        self.observe_events(None)?;
        Ok(result)
    }

    /// Common end of every step: released packets, events, the flow table and survival.
    fn finish_step(&mut self, kind: StepKind, before: &[FlowInfo]) -> Result<(), Violation> {
        while let Some((egress, p)) = self.dp.poll_transmit() {
            let to_nic = match egress {
                Egress::Nic(n) => Some(n),
                Egress::Outside => None,
            };
            self.observe(&Observation::Transmitted {
                node: NODE,
                to_nic,
                pkt: &p,
            })?;
            self.check_released(egress, &p)?;
        }
        self.observe_events(None)?;
        let after = self.dp.flows();
        self.check_flow_table(&after)?;
        self.check_survival(kind, before, &after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::proto;

    #[test]
    fn fixture_opens_its_flows() {
        let f = Fixture::new(0);
        let live = f.checker().dataplane().live_flows();
        assert_eq!(live, (6, 6));
    }

    /// The survival extra must be able to fail: state created from outside and early expiry.
    #[test]
    fn oracle_rejects_state_from_outside_and_early_expiry() {
        let f = Fixture::new(0);
        let c = f.checker();
        let flows = c.dataplane().flows();
        let kind = StepKind::Packet {
            ingress: Ingress::Outside,
            icmp_error: false,
        };
        let fewer = &flows[1..];
        let r = c.check_survival(kind, fewer, &flows);
        assert_eq!(
            r.map_err(|v| v.invariant),
            Err(Invariant::NoInboundInitiation)
        );
        let r = c.check_survival(kind, &flows, fewer);
        assert_eq!(r.map_err(|v| v.invariant), Err(Invariant::Timers));
        assert!(c.check_survival(kind, &flows, &flows).is_ok());
        // And an ICMP error may not change a flow at all.
        let icmp = StepKind::Packet {
            ingress: Ingress::Inside(NicId(0)),
            icmp_error: true,
        };
        let mut touched = flows.clone();
        if let Some(f) = touched.iter_mut().find(|f| f.flow.protocol == proto::UDP) {
            f.last_active = f.last_active.plus_millis(1);
            f.deadline = f.deadline.plus_millis(1);
        }
        let r = c.check_survival(icmp, &flows, &touched);
        assert_eq!(r.map_err(|v| v.invariant), Err(Invariant::MappingStability));
    }
}
