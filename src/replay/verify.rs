//! Invariant checking during a replay: the simulator's own checker
//! ([`crate::check::InvariantChecker`], behaviour §6) fed the [`Observation`]s a replay produces, in
//! the simulator's order (see [`super::run`]). What is replay-specific lives here: the event
//! index is the capture record index, a violation does not stop the replay but is counted per
//! invariant with the first [`MAX_EXAMPLES`] kept, and the report says for each invariant of
//! behaviour §6 whether it was checked, how often, or why it cannot apply.
//!
//! After a violation the checker's model may lack the offending flow (it rejects what it cannot
//! admit), so later packets of that flow can be counted again: counts after the first violation
//! are an upper bound.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::check::{Invariant, InvariantChecker};
use crate::nat::Profile;
use crate::sim::observe::{Observation, Observer};
use crate::time::Instant;

/// Examples kept per run.
pub const MAX_EXAMPLES: usize = 20;

/// The invariants a replay cannot check, with the reason (shown in the summary).
pub const NOT_APPLICABLE: [(Invariant, &str); 1] = [(
    Invariant::Determinism,
    "a single run; compare the outputs of two replays instead",
)];

/// One violation, located in the capture.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// The invariant (serialized by its behaviour §6 name).
    pub invariant: Invariant,
    /// Index of the capture record being replayed when it happened (for checks at the end of
    /// the capture, the last record).
    pub packet_index: u64,
    /// Virtual time.
    pub time_ns: u64,
    /// What was wrong.
    pub detail: String,
    /// The packets involved, summarised and in hex.
    pub packets: Vec<String>,
}

/// Where in the replay an observation happens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct At {
    /// Capture record index.
    pub packet_index: u64,
    /// Virtual time.
    pub time_ns: u64,
}

/// One invariant of behaviour §6 in the replay summary.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InvariantReport {
    /// Its number in behaviour §6.
    pub number: u8,
    /// SPEC name.
    pub name: &'static str,
    /// Whether the replay checks it.
    pub checked: bool,
    /// Checks performed (0 when not applicable).
    pub checks: u64,
    /// Violations found.
    pub violations: u64,
    /// Why it cannot be checked on a replay, when it cannot.
    pub not_applicable: Option<&'static str>,
}

/// The checker and what it found.
pub struct ReplayChecks {
    checker: InvariantChecker,
    /// Violations by invariant name (rare, so a map is cheap enough).
    counts: BTreeMap<&'static str, u64>,
    examples: Vec<Violation>,
}

impl ReplayChecks {
    /// A checker for a gateway running `profile` (with the replay's overrides).
    pub fn new(profile: Profile) -> ReplayChecks {
        ReplayChecks {
            checker: InvariantChecker::new(profile),
            counts: BTreeMap::new(),
            examples: Vec::new(),
        }
    }

    /// Hands one observation to the checker; a violation is counted and the replay goes on.
    #[inline]
    pub fn observe(&mut self, at: At, obs: &Observation<'_>) {
        let now = Instant::from_nanos(at.time_ns);
        if let Err(v) = self.checker.observe(at.packet_index, now, obs) {
            *self.counts.entry(v.invariant.name()).or_insert(0) += 1;
            if self.examples.len() < MAX_EXAMPLES {
                self.examples.push(Violation {
                    invariant: v.invariant,
                    packet_index: at.packet_index,
                    time_ns: at.time_ns,
                    detail: v.message,
                    packets: v.packets,
                });
            }
        }
    }

    /// All violations.
    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }

    /// The first violations.
    pub fn examples(&self) -> &[Violation] {
        &self.examples
    }

    /// Every invariant of behaviour §6, in order: checked (with its number of checks) or not
    /// applicable (with the reason).
    pub fn report(&self) -> Vec<InvariantReport> {
        let checks = self.checker.summary().checks;
        Invariant::ALL
            .iter()
            .enumerate()
            .map(|(i, inv)| {
                let name = inv.name();
                let not_applicable = NOT_APPLICABLE
                    .iter()
                    .find(|(x, _)| x == inv)
                    .map(|(_, why)| *why);
                InvariantReport {
                    number: i as u8 + 1,
                    name,
                    checked: not_applicable.is_none(),
                    checks: if not_applicable.is_none() {
                        checks.get(name).copied().unwrap_or(0)
                    } else {
                        0
                    },
                    violations: self.counts.get(name).copied().unwrap_or(0),
                    not_applicable,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nat::{Block, Egress, Ingress, NicId, Verdict};
    use crate::sim::observe::NicInfo;
    use crate::wire::PacketRepr;

    fn ip(s: &str) -> std::net::IpAddr {
        s.parse().expect("address")
    }

    #[test]
    fn violations_are_counted_located_and_the_replay_goes_on() {
        let mut c = ReplayChecks::new(Profile::named("rfc").expect("profile"));
        let at = |i| At {
            packet_index: i,
            time_ns: i * 1000,
        };
        let info = NicInfo {
            id: NicId(0),
            name: "host-10.0.0.1".into(),
            network: 0,
            addresses: vec![ip("10.0.0.1")],
            node: 0,
        };
        c.observe(at(0), &Observation::NicUpdated(&info));
        c.observe(
            at(0),
            &Observation::BlockAssigned {
                nic: NicId(0),
                block: Block {
                    nat_ip: ip("203.0.113.1"),
                    port: 1024,
                    end_port: 3071,
                },
            },
        );
        // Two unsolicited packets delivered to the NIC: both counted, the first located.
        let before = PacketRepr::udp((ip("8.8.8.8"), 53), (ip("203.0.113.1"), 1040), b"a").emit();
        let after = PacketRepr::udp((ip("8.8.8.8"), 53), (ip("10.0.0.1"), 1040), b"a").emit();
        for i in [3, 5] {
            c.observe(
                at(i),
                &Observation::Processed {
                    node: 0,
                    ingress: Ingress::Outside,
                    before: &before,
                    verdict: Verdict::Forward(Egress::Nic(NicId(0))),
                    after: &after,
                },
            );
        }
        assert_eq!(c.total(), 2);
        assert_eq!(c.examples()[0].packet_index, 3);
        assert_eq!(c.examples()[0].time_ns, 3000);
        assert_eq!(c.examples()[0].invariant, Invariant::NoInboundInitiation);
        let report = c.report();
        assert_eq!(report.len(), 10);
        assert_eq!(report[0].name, "no-inbound-initiation");
        assert_eq!((report[0].checks, report[0].violations), (2, 2));
        assert!(report[0].checked);
        assert_eq!(report[8].name, "determinism");
        assert!(!report[8].checked);
        assert!(report[8].not_applicable.is_some());
    }
}
