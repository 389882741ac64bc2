//! Running a plan: evaluate every point analytically, optionally simulate it through a hook, and
//! compare the two answers. Points run on a small thread pool; results are ordered by point index
//! and do not depend on the thread count.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Serialize;

use super::file::Plan;
use super::model::{AnalyticPoint, evaluate};
use super::params::PointParams;

/// What a simulation of one point measured. Filled in by the simulator; the planner never
/// invents these numbers.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
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
}

impl SimulatedPoint {
    /// Measured blocking: refused / offered (`None` when nothing was offered).
    pub fn blocking(&self) -> Option<f64> {
        (self.flows_offered > 0).then(|| self.flows_refused as f64 / self.flows_offered as f64)
    }
}

/// The simulator hook: given a point, run it and report what happened. Must be `Sync` because
/// points run on several threads; it must be deterministic in the point (use `point.seed`).
pub type SimulateFn<'a> = &'a (dyn Fn(&PointParams) -> SimulatedPoint + Sync);

/// Analytic vs simulated fleet blocking at one point.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Comparison {
    /// No simulator was plugged in.
    NotRun,
    /// The simulation offered no flows, so there is nothing to compare.
    NoFlows,
    /// Both answers exist.
    Compared {
        /// Analytic fleet blocking.
        analytic_blocking: f64,
        /// Simulated refused / offered.
        simulated_blocking: f64,
        /// simulated − analytic.
        difference: f64,
        /// The tolerance used.
        tolerance: f64,
        /// |difference| ≤ tolerance.
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
    /// The simulated answer, if a simulator ran.
    pub simulated: Option<SimulatedPoint>,
    /// How the two compare.
    pub comparison: Comparison,
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
    /// Points whose analytic verdict failed.
    pub fn failing_points(&self) -> usize {
        self.points
            .iter()
            .filter(|p| !p.analytic.verdict.ok)
            .count()
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
    simulated: Option<&SimulatedPoint>,
    tolerance: f64,
) -> Comparison {
    let Some(sim) = simulated else {
        return Comparison::NotRun;
    };
    let Some(simulated_blocking) = sim.blocking() else {
        return Comparison::NoFlows;
    };
    let difference = simulated_blocking - analytic.blocking_fleet;
    Comparison::Compared {
        analytic_blocking: analytic.blocking_fleet,
        simulated_blocking,
        difference,
        tolerance,
        agrees: difference.abs() <= tolerance,
    }
}

fn run_point(plan: &Plan, point: &PointParams, simulate: Option<SimulateFn<'_>>) -> PointResult {
    let analytic = evaluate(point);
    let simulated = simulate.map(|f| f(point));
    let comparison = compare(
        &analytic,
        simulated.as_ref(),
        plan.report.tolerance_blocking,
    );
    PointResult {
        params: point.clone(),
        analytic,
        simulated,
        comparison,
    }
}

/// Runs every point of `plan` on `jobs` threads (at least one). The result is identical for any
/// `jobs`: each point depends only on its own parameters and seed, and results are placed by
/// index.
pub fn run_plan(plan: &Plan, simulate: Option<SimulateFn<'_>>, jobs: usize) -> PlanResult {
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
