//! Running a plan: evaluate every point analytically, optionally simulate it through a hook, and
//! compare the two answers. Points run on a small thread pool; results are ordered by point index
//! and do not depend on the thread count.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::{Deserialize, Serialize};

use super::decide::{Decision, decide};
use super::file::Plan;
use super::interval::{Interval, wilson};
use super::model::{AnalyticPoint, evaluate};
use super::params::PointParams;

/// What a simulation of one point measured. Filled in by the simulator; the planner never
/// invents these numbers.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SimulatedPoint {
    /// New flows the workload tried to open after warm-up.
    pub flows_offered: u64,
    /// New flows refused (all drop reasons that refuse a new flow).
    pub flows_refused: u64,
    /// Drop counters by reason (`ports_exhausted`, `no_nat_block`, `table_full`, ...).
    pub drops_by_reason: BTreeMap<String, u64>,
    /// Highest number of ports one NIC had in use at once.
    pub peak_ports_in_use_nic: u64,
    /// Highest number of ports in use on one scope key at once.
    pub peak_ports_in_use_key: u64,
    /// Blocking on the busiest scope key of the allocated NICs (worst protocol; refusals for lack
    /// of ports or table space, or of a dropped protocol, over new-flow attempts). `None` when no
    /// flow was attempted.
    pub blocking_hot: Option<f64>,
    /// 95 % interval of `blocking_hot` and the sampled flows behind it.
    #[serde(default)]
    pub blocking_hot_interval: Option<Interval>,
    /// 95 % interval of the fleet blocking (`blocking()`) and the sampled flows behind it.
    #[serde(default)]
    pub blocking_interval: Option<Interval>,
    /// Time-averaged ports in use per allocated NIC over the measured window (Little's law's
    /// carried load, all keys).
    pub mean_ports_in_use_nic: f64,
    /// Time-averaged ports in use per allocated NIC on the busiest scope key.
    pub mean_ports_in_use_hot_key: f64,
    /// Refused flows by the reason of their first refusal (fleet-scaled, like `flows_refused`).
    pub refused_by_reason: BTreeMap<String, u64>,
    /// What was actually simulated and how it was scaled to the fleet.
    pub sample: SimSample,
}

/// How a simulated point relates to the fleet: which NICs ran, for how long, and the factors
/// that scale their counts up to the whole fleet.
///
/// NICs with per-NIC port blocks are independent of each other, so the fleet is split into two
/// strata, NICs that get a block and NICs left without one, and each is represented by a sample
/// whose counts are multiplied by `fleet NICs in the stratum / sampled NICs`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SimSample {
    /// Sampled NICs that hold a port block.
    pub nics_allocated: u64,
    /// Fleet NICs each sampled allocated NIC stands for.
    pub scale_allocated: f64,
    /// Sampled NICs left without a block (the gateway's IPs are full).
    pub nics_unallocated: u64,
    /// Fleet NICs each sampled unallocated NIC stands for.
    pub scale_unallocated: f64,
    /// Idle NICs that only fill the last simulated IP's slots, so that the unallocated sample
    /// really finds the IPs full (never measured).
    pub nics_filler: u64,
    /// Virtual run length in seconds.
    pub duration_s: f64,
    /// Leading seconds excluded from every count and peak.
    pub warmup_s: f64,
    /// New flows offered by the sampled NICs after warm-up (unscaled).
    pub flows_offered_sampled: u64,
    /// Of those, refused (unscaled).
    pub flows_refused_sampled: u64,
    /// Simulator events processed (a cost figure).
    pub events: u64,
}

impl SimulatedPoint {
    /// Measured blocking: refused / offered (`None` when nothing was offered).
    pub fn blocking(&self) -> Option<f64> {
        (self.flows_offered > 0).then(|| self.flows_refused as f64 / self.flows_offered as f64)
    }
}

/// The simulator hook: given a point, run it and report what happened, or say why this point
/// cannot be simulated (e.g. pooled AWS/Azure rules, which the simulator does not model). Must be
/// `Sync` because points run on several threads; it must be deterministic in the point (use
/// `point.seed`).
pub type SimulateFn<'a> = &'a (dyn Fn(&PointParams) -> Result<SimulatedPoint, String> + Sync);

/// Analytic vs simulated blocking at one point, judged on the simulation's 95 % intervals.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Comparison {
    /// No simulator was plugged in.
    NotRun,
    /// A simulator was plugged in but cannot model this point.
    NotSimulated {
        /// Why.
        reason: String,
    },
    /// The simulation offered no flows, so there is nothing to compare.
    NoFlows,
    /// Both answers exist.
    Compared {
        /// Analytic fleet blocking.
        analytic_blocking: f64,
        /// Simulated refused / offered, fleet.
        simulated_blocking: f64,
        /// Its 95 % interval and the sampled flows behind it.
        simulated_interval: Option<Interval>,
        /// simulated − analytic, fleet.
        difference: f64,
        /// Analytic (Erlang-B) blocking on the hottest key.
        analytic_hot: f64,
        /// Simulated blocking on the hottest key, if any flow reached it.
        simulated_hot: Option<f64>,
        /// Its 95 % interval.
        simulated_hot_interval: Option<Interval>,
        /// Differences smaller than this are never flagged (`report.tolerance_blocking`).
        tolerance: f64,
        /// Every analytic figure lies inside its simulated interval (or within `tolerance`).
        agrees: bool,
    },
}

/// Everything known about one point.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PointResult {
    /// The point's parameters.
    pub params: PointParams,
    /// The analytic answer.
    pub analytic: AnalyticPoint,
    /// The simulated answer, if a simulator ran and could model the point.
    pub simulated: Option<SimulatedPoint>,
    /// How the two compare.
    pub comparison: Comparison,
    /// The point's one verdict and recommendation (the worse of both answers).
    pub decision: Decision,
}

/// All points of a plan, in index order.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlanResult {
    /// Points in sweep order.
    pub points: Vec<PointResult>,
    /// True when a simulator ran.
    pub simulated: bool,
}

impl PlanResult {
    /// Points whose verdict failed.
    pub fn failing_points(&self) -> usize {
        self.points.iter().filter(|p| !p.decision.ok).count()
    }

    /// Points where simulation and analysis disagree beyond the tolerance.
    pub fn disagreements(&self) -> usize {
        self.points
            .iter()
            .filter(|p| matches!(p.comparison, Comparison::Compared { agrees: false, .. }))
            .count()
    }
}

/// Compares the analytic fleet blocking with a simulation.
pub fn compare(
    analytic: &AnalyticPoint,
    simulated: Option<&Result<SimulatedPoint, String>>,
    tolerance: f64,
) -> Comparison {
    let sim = match simulated {
        None => return Comparison::NotRun,
        Some(Err(reason)) => {
            return Comparison::NotSimulated {
                reason: reason.clone(),
            };
        }
        Some(Ok(sim)) => sim,
    };
    let Some(simulated_blocking) = sim.blocking() else {
        return Comparison::NoFlows;
    };
    // A hook that reports no sampled counts (a stand-in) still gets an interval from its totals.
    let simulated_interval = sim.blocking_interval.or_else(|| {
        wilson(sim.flows_refused, sim.flows_offered).map(|(low, high)| Interval {
            low,
            high,
            flows: sim.flows_offered,
        })
    });
    let covers = |i: Option<&Interval>, x: f64, estimate: f64| match i {
        Some(i) => i.covers(x, tolerance),
        None => (estimate - x).abs() <= tolerance,
    };
    let fleet_agrees = covers(
        simulated_interval.as_ref(),
        analytic.blocking_fleet,
        simulated_blocking,
    );
    let hot_agrees = sim.blocking_hot.is_none_or(|hot| {
        covers(
            sim.blocking_hot_interval.as_ref(),
            analytic.blocking_hot,
            hot,
        )
    });
    Comparison::Compared {
        analytic_blocking: analytic.blocking_fleet,
        simulated_blocking,
        simulated_interval,
        difference: simulated_blocking - analytic.blocking_fleet,
        analytic_hot: analytic.blocking_hot,
        simulated_hot: sim.blocking_hot,
        simulated_hot_interval: sim.blocking_hot_interval,
        tolerance,
        agrees: fleet_agrees && hot_agrees,
    }
}

fn run_point(plan: &Plan, point: &PointParams, simulate: Option<SimulateFn<'_>>) -> PointResult {
    let analytic = evaluate(point);
    let outcome = simulate.map(|f| f(point));
    let comparison = compare(&analytic, outcome.as_ref(), plan.report.tolerance_blocking);
    let simulated = outcome.and_then(Result::ok);
    let decision = decide(point, &analytic, simulated.as_ref());
    PointResult {
        params: point.clone(),
        analytic,
        simulated,
        comparison,
        decision,
    }
}

/// Runs every point of `plan` on `jobs` threads (at least one). The result is identical for any
/// `jobs`: each point depends only on its own parameters and seed, and results are placed by
/// index.
pub fn run_plan(plan: &Plan, simulate: Option<SimulateFn<'_>>, jobs: usize) -> PlanResult {
    run_plan_with_progress(plan, simulate, jobs, &|| {})
}

/// [`run_plan`], calling `point_done` after each point (from the worker thread that ran it), e.g.
/// to advance a progress bar.
pub fn run_plan_with_progress(
    plan: &Plan,
    simulate: Option<SimulateFn<'_>>,
    jobs: usize,
    point_done: &(dyn Fn() + Sync),
) -> PlanResult {
    let count = plan.points.len();
    let jobs = jobs.clamp(1, count.max(1));
    let slots: Vec<Mutex<Option<PointResult>>> = (0..count).map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(point) = plan.points.get(index) else {
                        break;
                    };
                    let result = run_point(plan, point, simulate);
                    point_done();
                    // A poisoned slot means another worker panicked; the scope re-raises that
                    // panic, so storing into the inner value is safe.
                    let mut slot = slots[index].lock().unwrap_or_else(|e| e.into_inner());
                    *slot = Some(result);
                }
            });
        }
    });
    let points = slots
        .into_iter()
        .map(|slot| slot.into_inner().unwrap_or_else(|e| e.into_inner()))
        .zip(&plan.points)
        // Every index below `count` was claimed by exactly one worker; recompute defensively
        // rather than panic if that ever changes.
        .map(|(result, point)| result.unwrap_or_else(|| run_point(plan, point, simulate)))
        .collect();
    PlanResult {
        points,
        simulated: simulate.is_some(),
    }
}
