//! Running a scenario and reporting on it: the JSON report (deterministic: ordered maps only),
//! the human summary, and the exit code.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::expect::{
    CounterSnapshot, ExpectationResult, evaluate, evaluate_counters_at, evaluate_node_counters,
};
use super::load::Scenario;
use super::packets::pattern as packet_pattern;
use super::ranges::ms_to_ns;
use crate::check::{Invariant, InvariantChecker};
use crate::nat::DropReason;
use crate::sim::control::Status;
use crate::sim::dataplane::DataplaneFactory;
use crate::sim::engine::{AppResult, GeneratorStats, HostStats, RunEnd, SimStats};
use crate::sim::link::LinkStats;
use crate::sim::{Observer, SimError, Simulator, Violation};
use crate::time::Instant;

/// Exit codes (distinct failure classes), re-exported from [`crate::exit`], where every
/// command's codes are defined.
pub mod exit {
    pub use crate::exit::{BAD_INPUT, BOUND_HIT, OK, UNMET, VIOLATION};
}

/// A NIC's line in the report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NicReport {
    /// Gateway counters of the NIC and host counters (`host.*`), zero values omitted.
    pub counters: BTreeMap<String, u64>,
    /// Peak ports tracked at once (live plus held).
    pub ports_peak: u64,
}

/// What became of one invariant in a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InvariantOutcome {
    /// At least one check ran and none failed.
    Held,
    /// No check ran at all: the run says nothing about this invariant.
    NotExercised,
    /// A check failed.
    Violated,
    /// The invariant cannot apply to this run (determinism against the kernel dataplane, whose
    /// port choice and timers are not reproducible); never a pass.
    NotApplicable,
}

impl InvariantOutcome {
    /// The word in reports (`held`, `not_exercised`, `violated`).
    pub fn as_str(self) -> &'static str {
        match self {
            InvariantOutcome::Held => "held",
            InvariantOutcome::NotExercised => "not_exercised",
            InvariantOutcome::Violated => "violated",
            InvariantOutcome::NotApplicable => "not_applicable",
        }
    }
}

/// One invariant's result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InvariantResult {
    /// Never `held` with 0 checks.
    pub result: InvariantOutcome,
    /// Times it was evaluated (determinism: 1 when the rerun digest was compared).
    pub checks: u64,
}

impl InvariantResult {
    /// The result of an invariant evaluated `checks` times.
    pub fn new(checks: u64, violated: bool) -> Self {
        let result = if violated {
            InvariantOutcome::Violated
        } else if checks == 0 {
            InvariantOutcome::NotExercised
        } else {
            InvariantOutcome::Held
        };
        InvariantResult { result, checks }
    }
}

/// The invariants-line of a summary: "invariants held 6/10, not exercised 4: selection,
/// status, timers, liveness" (plus "violated N: ..." when any was).
pub fn invariants_line(invariants: &BTreeMap<&'static str, InvariantResult>) -> String {
    let by = |r: InvariantOutcome| -> Vec<&str> {
        Invariant::ALL
            .iter()
            .map(|i| i.name())
            .filter(|n| invariants.get(n).is_some_and(|i| i.result == r))
            .collect()
    };
    let (held, idle, bad, na) = (
        by(InvariantOutcome::Held),
        by(InvariantOutcome::NotExercised),
        by(InvariantOutcome::Violated),
        by(InvariantOutcome::NotApplicable),
    );
    let mut s = format!("invariants held {}/{}", held.len(), invariants.len());
    if !idle.is_empty() {
        let _ = write!(s, ", not exercised {}: {}", idle.len(), idle.join(", "));
    }
    if !na.is_empty() {
        let _ = write!(s, ", not applicable {}: {}", na.len(), na.join(", "));
    }
    if !bad.is_empty() {
        let _ = write!(s, ", violated {}: {}", bad.len(), bad.join(", "));
    }
    s
}

/// The second run's digest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Determinism {
    /// Digest of the rerun.
    pub rerun_digest: String,
    /// Same as the first run.
    pub identical: bool,
}

/// The verdict of a run, worst first: what its exit code says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunResult {
    /// An invariant was violated (exit 4).
    Violation,
    /// A run bound (events, virtual time) was hit with work left (exit 5).
    BoundHit,
    /// An expectation was not met (exit 3).
    UnmetExpectations,
    /// Everything held and every expectation was met (exit 0).
    Pass,
}

impl RunResult {
    /// The word in reports and summaries.
    pub fn as_str(self) -> &'static str {
        match self {
            RunResult::Violation => "violation",
            RunResult::BoundHit => "bound_hit",
            RunResult::UnmetExpectations => "unmet_expectations",
            RunResult::Pass => "pass",
        }
    }

    /// The process exit code of this result.
    pub fn exit_code(self) -> u8 {
        match self {
            RunResult::Violation => exit::VIOLATION,
            RunResult::BoundHit => exit::BOUND_HIT,
            RunResult::UnmetExpectations => exit::UNMET,
            RunResult::Pass => exit::OK,
        }
    }
}

impl std::fmt::Display for RunResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// Everything a run produced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Scenario name.
    pub scenario: String,
    /// File, as given.
    pub file: String,
    /// Seed used.
    pub seed: u64,
    /// The verdict.
    pub result: RunResult,
    /// Process exit code.
    pub exit_code: u8,
    /// Why the run stopped.
    pub end: RunEnd,
    /// Virtual time at the end.
    pub virtual_time: Instant,
    /// Simulator counters.
    pub sim: SimStats,
    /// Trace digest (FNV-1a over 64-bit words of the canonical trace).
    pub digest: String,
    /// Rerun comparison (invariant 9).
    pub determinism: Option<Determinism>,
    /// Gateway counters over all nodes plus `sim.*`, zero values omitted.
    pub counters: BTreeMap<String, u64>,
    /// Drops by reason (all reasons).
    pub drops: BTreeMap<&'static str, u64>,
    /// Per NIC.
    pub nics: BTreeMap<String, NicReport>,
    /// Per remote host, `host.*` counters.
    pub remotes: BTreeMap<String, BTreeMap<String, u64>>,
    /// Per link.
    pub links: BTreeMap<String, LinkStats>,
    /// NATGateway status and routing table at the end.
    pub status: Status,
    /// Live flows at the end.
    pub live_flows: usize,
    /// Scripted applications.
    pub flows: Vec<AppResult>,
    /// Generators.
    pub generators: BTreeMap<String, GeneratorStats>,
    /// Invariants.
    pub invariants: BTreeMap<&'static str, InvariantResult>,
    /// The violation that stopped the run.
    pub violation: Option<Violation>,
    /// Expectations.
    pub expectations: Vec<ExpectationResult>,
    /// Variables captured by `expect.packets`: name → value.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub variables: BTreeMap<String, String>,
    /// What the dataplane had to say besides counters (the kernel dataplane: clock lag,
    /// ignored kernel packets, lost conntrack events); none from the model.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dataplane_notes: Vec<String>,
    /// The command that reproduces this run.
    pub replay: String,
}

/// A report plus captured packets.
pub struct RunOutput {
    /// The report.
    pub report: Report,
    /// Captured links: name, packets.
    pub captures: Vec<(String, Vec<crate::sim::engine::CapturedPacket>)>,
}

fn host_counters(h: &HostStats) -> BTreeMap<String, u64> {
    super::names::host_counter_map(h)
}

struct Single {
    sim: Simulator,
    end: RunEnd,
    checks: BTreeMap<&'static str, u64>,
    /// `expect.counters_at`, in file order (`None`: the run stopped before that time).
    snapshots: Vec<Option<CounterSnapshot>>,
}

/// Extra observers of a run, built afresh for each run of a scenario.
pub type MakeObservers<'a> = &'a dyn Fn() -> Vec<Box<dyn Observer>>;

/// One run: the invariant checker observes first, then `extra` in order.
fn run_once(
    sc: &Scenario,
    seed: u64,
    factory: Box<DataplaneFactory>,
    extra: Vec<Box<dyn Observer>>,
) -> Result<Single, SimError> {
    let mut cfg = sc.sim.clone();
    cfg.seed = seed;
    let checker =
        InvariantChecker::with_table_limit(cfg.gateway.profile.clone(), cfg.gateway.max_flows);
    let mut observers: Vec<Box<dyn Observer>> = vec![Box::new(checker)];
    observers.extend(extra);
    let mut sim = Simulator::new(cfg, factory, observers)?;
    let (end, snapshots) = run_in_steps(&mut sim, sc);
    sim.finish();
    let checks = sim
        .observer::<InvariantChecker>()
        .map(|c| c.summary().checks)
        .unwrap_or_default();
    Ok(Single {
        sim,
        end,
        checks,
        snapshots,
    })
}

/// Where a run pauses: to build a crafted packet that uses variables (just before it is due),
/// or to take `expect.counters_at` snapshot `i` (after everything at its time).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Stop {
    Packet(usize),
    Snapshot(usize),
}

/// Runs a scenario, pausing where it must: a crafted packet that uses variables is built from
/// the variables `expect.packets` has captured so far (the same evaluation as at the end, over
/// the packets seen until then); counters are taken at each `expect.counters_at` time. Stopping
/// and resuming leaves the event order, and so the trace, as one uninterrupted run would have it.
fn run_in_steps(sim: &mut Simulator, sc: &Scenario) -> (RunEnd, Vec<Option<CounterSnapshot>>) {
    let packets = sc
        .deferred_packets
        .iter()
        .enumerate()
        .map(|(i, d)| (d.at_ns.saturating_sub(1), Stop::Packet(i)));
    let counters = sc.doc.expect.counters_at.iter().enumerate();
    let snapshots_at = counters.map(|(i, c)| (ms_to_ns(c.value.at_ms), Stop::Snapshot(i)));
    let mut stops: Vec<(u64, Stop)> = packets.chain(snapshots_at).collect();
    stops.sort();
    let mut snapshots = vec![None; sc.doc.expect.counters_at.len()];
    for (at_ns, stop) in stops {
        let end = sim.run_until(at_ns);
        if matches!(end, RunEnd::Violation | RunEnd::MaxEvents | RunEnd::MaxTime) {
            return (end, snapshots);
        }
        match stop {
            Stop::Packet(i) => {
                let d = &sc.deferred_packets[i];
                let status = sim.status();
                let (_, vars) = packet_pattern::evaluate(
                    &sc.packet_checks,
                    &sim.captures(),
                    &packet_pattern::RunFacts::from_status(&status),
                );
                sim.set_crafted(d.app, d.build(&vars));
            }
            // The run's own `limits.duration_ms` ended it before this time: not reached.
            Stop::Snapshot(_) if end == RunEnd::Duration && sim.now().as_nanos() < at_ns => {}
            Stop::Snapshot(i) => {
                let (counters, nics) = counter_maps(sim);
                snapshots[i] = Some(CounterSnapshot {
                    counters,
                    nics: nics.into_iter().map(|(n, r)| (n, r.counters)).collect(),
                });
            }
        }
    }
    (sim.run(), snapshots)
}

/// The report's counters (gateway counters over all nodes, non-zero simulator counters) and
/// per-NIC counters (gateway, host, `ports.peak`), as they stand now.
fn counter_maps(sim: &Simulator) -> (BTreeMap<String, u64>, BTreeMap<String, NicReport>) {
    let mut counters = sim.dataplane_counters().to_map();
    for (k, v) in super::names::sim_counters(&sim.stats()) {
        if v != 0 {
            counters.insert(k.to_string(), v);
        }
    }
    let mut nics = BTreeMap::new();
    for row in sim.nic_reports() {
        let (name, peak) = (row.name, row.ports_peak);
        let mut c = row.counters.map(|c| c.to_map()).unwrap_or_default();
        c.extend(host_counters(&row.host));
        if peak > 0 {
            c.insert(super::names::PORTS_PEAK.into(), peak);
        }
        nics.insert(
            name,
            NicReport {
                counters: c,
                ports_peak: peak,
            },
        );
    }
    (counters, nics)
}

/// Runs a scenario (twice when `limits.rerun_for_determinism`), checks invariants on every
/// event, evaluates expectations and builds the report. `make_factory` builds the dataplane
/// factory for each run (the real gateway, or a broken one in tests).
pub fn run_scenario(
    sc: &Scenario,
    seed: Option<u64>,
    make_factory: &dyn Fn() -> Box<DataplaneFactory>,
) -> Result<RunOutput, SimError> {
    run_scenario_observed(sc, seed, make_factory, &Vec::new).map(|(out, _)| out)
}

/// [`run_scenario`] with extra observers (swarm coverage, say) next to the invariant checker;
/// returns them after the run, those of the first run before those of the rerun.
pub fn run_scenario_observed(
    sc: &Scenario,
    seed: Option<u64>,
    make_factory: &dyn Fn() -> Box<DataplaneFactory>,
    make_observers: MakeObservers<'_>,
) -> Result<(RunOutput, Vec<Box<dyn Observer>>), SimError> {
    let seed = seed.unwrap_or(sc.doc.seed);
    let mut first = run_once(sc, seed, make_factory(), make_observers())?;
    first.sim.take_observer::<InvariantChecker>();
    let mut extra = first.sim.take_observers();
    let digest = first.sim.digest().hex();
    let determinism = if sc.doc.limits.rerun_for_determinism && first.end != RunEnd::Violation {
        let mut second = run_once(sc, seed, make_factory(), make_observers())?;
        second.sim.take_observer::<InvariantChecker>();
        extra.extend(second.sim.take_observers());
        let d2 = second.sim.digest().hex();
        Some(Determinism {
            identical: d2 == digest,
            rerun_digest: d2,
        })
    } else {
        None
    };
    let sim = &first.sim;
    let mut violation = sim.violation().cloned();
    if violation.is_none()
        && let Some(d) = &determinism
        && !d.identical
    {
        violation = Some(Violation::new(
            Invariant::Determinism,
            format!(
                "the same seed gave trace digests {digest} and {}",
                d.rerun_digest
            ),
        ));
    }
    let file = sc.file.display().to_string();
    let dp = sim.dataplane_counters();
    let st = sim.stats();
    let (counters, nics) = counter_maps(sim);
    let drops = DropReason::ALL
        .iter()
        .map(|r| (r.name(), dp.dropped(*r)))
        .collect();
    let remotes = sim
        .remote_reports()
        .into_iter()
        .map(|(n, h)| (n, host_counters(&h)))
        .collect();
    let links = sim.link_reports().into_iter().collect();
    let mut invariants = BTreeMap::new();
    for inv in Invariant::ALL {
        let checks = if inv == Invariant::Determinism {
            u64::from(determinism.is_some())
        } else {
            first.checks.get(inv.name()).copied().unwrap_or(0)
        };
        let violated = violation.as_ref().is_some_and(|v| v.invariant == inv);
        invariants.insert(inv.name(), InvariantResult::new(checks, violated));
    }
    let mut report = Report {
        scenario: sc.doc.metadata.name.clone(),
        file: file.clone(),
        seed,
        result: RunResult::Pass,
        exit_code: exit::OK,
        end: first.end,
        virtual_time: sim.now(),
        sim: st,
        digest,
        determinism,
        counters,
        drops,
        nics,
        remotes,
        links,
        status: sim.status(),
        live_flows: sim.live_flows(),
        flows: sim.app_results().to_vec(),
        generators: sim.generator_results().into_iter().collect(),
        invariants,
        violation,
        expectations: Vec::new(),
        variables: BTreeMap::new(),
        dataplane_notes: sim.dataplane_notes(),
        replay: format!("natsim run {file} --seed {seed}"),
    };
    report.expectations = evaluate(&sc.doc.expect, &report);
    report
        .expectations
        .extend(evaluate_counters_at(&sc.doc.expect, &first.snapshots));
    // A crafted packet that could not be built was never sent: whatever the scenario says
    // about its effects (a `never`, say) would then hold for nothing, so it is unmet itself.
    for f in report.flows.iter().filter(|f| f.kind == "packet") {
        if let crate::sim::apps::Outcome::Failed(reason) = f.outcome {
            report.expectations.push(ExpectationResult {
                what: format!("packets.{}", f.name),
                expected: "sent".into(),
                actual: format!("not sent: {reason}"),
                ok: false,
            });
        }
    }
    let node_counters = |k: u16| sim.node_counters(k).map(|c| c.to_map()).unwrap_or_default();
    report
        .expectations
        .extend(evaluate_node_counters(&sc.doc.expect, &node_counters));
    let captured = sim.captures();
    if !sc.packet_checks.is_empty() {
        let (results, vars) = packet_pattern::evaluate(
            &sc.packet_checks,
            &captured,
            &packet_pattern::RunFacts::from_status(&report.status),
        );
        report.expectations.extend(results);
        report.variables = vars.into_iter().map(|(k, v)| (k, v.to_string())).collect();
    }
    settle(&mut report);
    let captures = captured.into_iter().map(|(n, p)| (n, p.to_vec())).collect();
    Ok((RunOutput { report, captures }, extra))
}

/// Marks a run against a dataplane that is not reproducible (the kernel's): the determinism
/// invariant is `not_applicable` (no rerun was made), and the replay line names the dataplane.
pub fn mark_not_reproducible(report: &mut Report, dataplane_arg: &str) {
    report.determinism = None;
    report.invariants.insert(
        Invariant::Determinism.name(),
        InvariantResult {
            result: InvariantOutcome::NotApplicable,
            checks: 0,
        },
    );
    report.replay = format!("{} {dataplane_arg}", report.replay);
}

/// `--require-exercised`: every invariant must have made at least one check; each one that did
/// not becomes an unmet expectation (exit 3 unless the run already failed worse).
pub fn require_exercised(report: &mut Report) {
    for inv in Invariant::ALL {
        let what = format!("exercised.{}", inv.name());
        if report.expectations.iter().any(|e| e.what == what) {
            continue;
        }
        let e = super::expect::exercised(report, inv.name());
        report.expectations.push(e);
    }
    settle(report);
}

/// Sets the result and exit code from the violation, the run's end and the expectations.
fn settle(report: &mut Report) {
    let result = if report.violation.is_some() {
        RunResult::Violation
    } else if matches!(report.end, RunEnd::MaxEvents | RunEnd::MaxTime) {
        RunResult::BoundHit
    } else if report.expectations.iter().any(|e| !e.ok) {
        RunResult::UnmetExpectations
    } else {
        RunResult::Pass
    };
    report.result = result;
    report.exit_code = result.exit_code();
}

/// A short human summary: seed first (so any failure replays from one line), then the outcome.
pub fn summary(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "scenario {} ({}) seed {}", r.scenario, r.file, r.seed);
    let _ = writeln!(
        s,
        "  result {} (exit {}); ended {:?} at t={} after {} events ({} packet events)",
        r.result, r.exit_code, r.end, r.virtual_time, r.sim.events, r.sim.packet_events
    );
    let det = match &r.determinism {
        Some(d) if d.identical => "rerun identical".to_string(),
        Some(d) => format!("RERUN DIFFERS: {}", d.rerun_digest),
        None => "rerun skipped".to_string(),
    };
    let _ = writeln!(s, "  digest {} ({det})", r.digest);
    let key = |k: &str| r.counters.get(k).copied().unwrap_or(0);
    let _ = writeln!(
        s,
        "  flows created {} ended {}; live at end {}; translated out {} in {}; drops {}",
        key("flows.created"),
        key("flows.ended"),
        r.live_flows,
        ["tcp", "udp", "icmp", "fragment"]
            .iter()
            .map(|p| key(&format!("translated.out.{p}")))
            .sum::<u64>(),
        ["tcp", "udp", "icmp", "fragment"]
            .iter()
            .map(|p| key(&format!("translated.in.{p}")))
            .sum::<u64>(),
        r.drops.values().sum::<u64>()
    );
    let _ = writeln!(s, "  {}", invariants_line(&r.invariants));
    for note in &r.dataplane_notes {
        let _ = writeln!(s, "  dataplane: {note}");
    }
    if let Some(v) = &r.violation {
        let _ = write!(s, "  VIOLATION {v}");
        let _ = writeln!(s, "  replay: {}", r.replay);
    }
    let failed: Vec<&ExpectationResult> = r.expectations.iter().filter(|e| !e.ok).collect();
    let _ = writeln!(
        s,
        "  expectations met {}/{}",
        r.expectations.len() - failed.len(),
        r.expectations.len()
    );
    for e in failed {
        let _ = writeln!(
            s,
            "    UNMET {}: expected {}, got {}",
            e.what, e.expected, e.actual
        );
    }
    if !r.variables.is_empty() {
        let vars: Vec<String> = r
            .variables
            .iter()
            .map(|(k, v)| format!("${k} = {v}"))
            .collect();
        let _ = writeln!(s, "  captured {}", vars.join(", "));
    }
    if r.exit_code == exit::BOUND_HIT {
        let _ = writeln!(s, "  BOUND HIT ({:?}); replay: {}", r.end, r.replay);
    }
    s
}
