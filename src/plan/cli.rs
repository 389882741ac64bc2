//! The `natsim plan PLAN --out DIR` command as a library function; `main.rs` only parses
//! arguments and maps the outcome to an exit code.

use std::path::{Path, PathBuf};

use std::io::IsTerminal as _;

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::file::Plan;
use super::report::{render_svgs, write_plan_report};
use super::run::{SimulateFn, run_plan_with_progress};
use super::simulate::simulate;

/// What a plan run produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanOutcome {
    /// Points evaluated.
    pub points: usize,
    /// Points whose analytic verdict failed the target.
    pub failing_points: usize,
    /// Points where simulation disagreed with the analysis beyond the tolerance.
    pub disagreements: usize,
    /// Files written (`report.md`, `report.json`, plots).
    pub files: Vec<PathBuf>,
}

/// Loads `plan_path`, evaluates every point on `jobs` threads (default: available cores), both
/// analytically and in the simulator ([`simulate`]), and writes the report into `out_dir`.
pub fn plan_cmd(
    plan_path: &Path,
    out_dir: &Path,
    jobs: Option<usize>,
) -> anyhow::Result<PlanOutcome> {
    plan_cmd_with(plan_path, out_dir, jobs, Some(&simulate))
}

/// [`plan_cmd`] without the simulation (`natsim plan --no-sim`): analytic figures only, in
/// seconds even for 100,000 points.
pub fn plan_cmd_no_sim(
    plan_path: &Path,
    out_dir: &Path,
    jobs: Option<usize>,
) -> anyhow::Result<PlanOutcome> {
    plan_cmd_with(plan_path, out_dir, jobs, None)
}

/// [`plan_cmd`] with an optional simulator hook run on every point.
pub fn plan_cmd_with(
    plan_path: &Path,
    out_dir: &Path,
    jobs: Option<usize>,
    simulate: Option<SimulateFn<'_>>,
) -> anyhow::Result<PlanOutcome> {
    let plan = Plan::load(plan_path)?;
    let jobs = jobs
        .or_else(|| std::thread::available_parallelism().ok().map(usize::from))
        .unwrap_or(1);
    let result = with_progress(plan.points.len(), simulate.is_some(), |done| {
        run_plan_with_progress(&plan, simulate, jobs, done)
    });
    let svgs = render_svgs(&plan, &result).map_err(anyhow::Error::msg)?;
    // Markdown and JSON are streamed to their files: a 100,000-point report is hundreds of
    // megabytes of text that never needs to be in memory at once.
    let files = write_plan_report(&plan, &result, &svgs, out_dir)
        .with_context(|| format!("writing the report into {}", out_dir.display()))?;
    Ok(PlanOutcome {
        points: result.points.len(),
        failing_points: result.failing_points(),
        disagreements: result.disagreements(),
        files,
    })
}

/// Runs `f` with a progress bar on stderr when simulating (seconds per point) and stderr is a
/// terminal; otherwise (analytic only, CI, redirected output) with no output at all.
fn with_progress<T>(points: usize, simulating: bool, f: impl FnOnce(&(dyn Fn() + Sync)) -> T) -> T {
    if !(simulating && std::io::stderr().is_terminal()) {
        return f(&|| {});
    }
    let bar = ProgressBar::with_draw_target(Some(points as u64), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "simulating {pos}/{len} points [{bar:40}] {elapsed} (eta {eta})",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    let out = f(&|| bar.inc(1));
    bar.finish_and_clear();
    out
}
