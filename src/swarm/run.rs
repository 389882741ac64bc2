//! Running one scenario for the swarm: through [`run_scenario`](crate::scenario::run_scenario) exactly as `natsim run` does
//! (so a failure found here reproduces there), with the [`Coverage`] observer next to the
//! invariant checker, a chosen dataplane (the real gateway or a deliberately broken one), and panics
//! caught so a crash is a result rather than the end of the swarm.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::coverage::{Coverage, Reached};
use super::yaml::round_trip;
pub use crate::check::target::{DEFAULT_LEAKY_PORT, Target};
use crate::exit;
use crate::scenario::Scenario;
use crate::scenario::report::run_scenario_observed;
use crate::scenario::schema::ScenarioFile;
use crate::sim::Observer;

/// Exit status of a run that panicked (what Rust gives a panicking `natsim run`).
pub const CRASH: u8 = 101;

/// What kind of failure a run ended in; minimisation keeps a change only if the kind stays.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Failure {
    /// Exit code (4 violation, 5 bound, 2 bad input, [`CRASH`]).
    pub exit_code: u8,
    /// The violated invariant (`bound` for exit 5, `bad-input`, `crash`).
    pub invariant: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (exit {})", self.invariant, self.exit_code)
    }
}

/// The result of one run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// Exit code `natsim run` would give.
    pub exit_code: u8,
    /// Set unless the run passed.
    pub failure: Option<Failure>,
    /// One-line detail of the failure (the violation message, the panic, the error).
    pub detail: String,
    /// Simulator events.
    pub events: u64,
    /// Guarded paths reached.
    pub reached: Reached,
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".into())
}

/// Runs a scenario document against `target` the way a scenario file with its text runs: written
/// as YAML and loaded back under the name `path` (nothing is written to disk), then
/// [`run_case`]. A document that does not load is a failure `bad-input` (exit 2): generated
/// documents always should.
pub fn run_document(doc: &ScenarioFile, path: &Path, target: Target) -> Outcome {
    match round_trip(doc, path) {
        Ok((_, sc)) => run_case(&sc, target),
        Err(e) => Outcome::bad_input(e.to_string()),
    }
}

impl Outcome {
    /// A document that does not load: failure `bad-input` (exit 2).
    pub fn bad_input(detail: String) -> Outcome {
        Outcome {
            exit_code: exit::BAD_INPUT,
            failure: Some(Failure {
                exit_code: exit::BAD_INPUT,
                invariant: "bad-input".into(),
            }),
            detail,
            events: 0,
            reached: Reached::default(),
        }
    }
}

/// Runs a scenario (with its own seed) against `target`.
pub fn run_case(sc: &Scenario, target: Target) -> Outcome {
    let factory = || target.factory();
    let coverage = || vec![Box::new(Coverage::default()) as Box<dyn Observer>];
    let res = catch_unwind(AssertUnwindSafe(|| {
        run_scenario_observed(sc, None, &factory, &coverage)
    }));
    let fail = |code: u8, what: &str, detail: String| Outcome {
        exit_code: code,
        failure: Some(Failure {
            exit_code: code,
            invariant: what.into(),
        }),
        detail,
        events: 0,
        reached: Reached::default(),
    };
    match res {
        Err(p) => fail(CRASH, "crash", panic_text(p.as_ref())),
        Ok(Err(e)) => fail(exit::BAD_INPUT, "bad-input", e.to_string()),
        Ok(Ok((out, observers))) => {
            // Paths reached by the run and its determinism rerun.
            let reached = observers
                .iter()
                .filter_map(|o| (&**o as &dyn std::any::Any).downcast_ref::<Coverage>())
                .fold(Reached::default(), |r, c| r.union(c.reached));
            let r = &out.report;
            let failure = match (r.exit_code, &r.violation) {
                (exit::OK, _) => None,
                (code, Some(v)) => Some(Failure {
                    exit_code: code,
                    invariant: v.invariant.name().into(),
                }),
                (code, None) => Some(Failure {
                    exit_code: code,
                    invariant: r.result.as_str().into(),
                }),
            };
            let detail = match &r.violation {
                Some(v) => v.message.lines().next().unwrap_or("").to_string(),
                None if failure.is_some() => format!("{:?} at t={}", r.end, r.virtual_time),
                None => String::new(),
            };
            Outcome {
                exit_code: r.exit_code,
                failure,
                detail,
                events: r.sim.events,
                reached: Reached::from_report(r).union(reached),
            }
        }
    }
}
