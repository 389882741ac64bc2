//! `natsim plan --shard K/N` and the plan half of `natsim merge`.
//!
//! Only the simulations are sharded: they are the cost (seconds per point), while the analytic
//! figures of every point take microseconds. Shard `K/N` simulates the points at positions `K`,
//! `K+N`, ... of the plan's sweep order and writes what each simulation measured (or why the
//! point cannot be simulated) to `OUT/shards/plan-K-of-N.json`. `natsim merge` checks the set,
//! then runs the unsharded plan command with a simulator hook that hands back the recorded
//! measurements, so the report files and the printed line are the unsharded run's, byte for
//! byte. The plan file must be at the same path with the same contents when merging (its digest
//! is one of the shard inputs).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use super::cli::{PlanOutcome, plan_cmd_with};
use super::file::Plan;
use super::params::PointParams;
use super::run::{SimulateFn, SimulatedPoint};
use crate::exit::{self, Exit};
use crate::output;
use crate::shard::{
    Shard, ShardFile, ShardHeader, check_files, prepare_dir, read_files, write_and_report,
};

/// The `command` of plan shard files.
pub const COMMAND: &str = "plan";

/// What decides a sharded plan's output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanSettings {
    /// The plan file as given.
    pub plan: PathBuf,
    /// Digest of its contents.
    pub plan_digest: String,
    /// The output folder.
    pub out: PathBuf,
    /// Points in the plan.
    pub points: u64,
}

impl PlanSettings {
    fn canonical(&self) -> String {
        format!(
            "plan {} (digest {}); out {}; {} points",
            self.plan.display(),
            self.plan_digest,
            self.out.display(),
            self.points
        )
    }
}

/// One simulated point of a shard.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShardPoint {
    /// The point's position in sweep order.
    pub index: u64,
    /// What its simulation measured, or why it could not be simulated.
    pub outcome: Result<SimulatedPoint, String>,
}

/// A plan shard's result file.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PlanShardFile {
    /// Format, version, command, inputs, shard.
    pub header: ShardHeader,
    /// The inputs, structured.
    pub settings: PlanSettings,
    /// The shard's points, in sweep order.
    pub points: Vec<ShardPoint>,
}

/// Where shard `shard` of a plan writing to `out` puts its results.
pub fn shard_file(out: &Path, shard: Shard) -> PathBuf {
    out.join("shards").join(shard.file_name(COMMAND))
}

fn digest_of(path: &Path) -> Result<String, String> {
    crate::shard::file_digest(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))
}

/// Simulates this shard's points of `plan` with `simulate` on `jobs` threads, in sweep order.
pub fn run_shard(
    plan: &Plan,
    shard: Shard,
    simulate: SimulateFn<'_>,
    jobs: usize,
) -> Vec<ShardPoint> {
    let total = plan.points.len() as u64;
    let count = shard.len_of(total);
    let slots: Vec<Mutex<Option<ShardPoint>>> = (0..count).map(|_| Mutex::new(None)).collect();
    let next = AtomicU64::new(0);
    let point_at = |i: u64| -> Option<&PointParams> {
        usize::try_from(shard.position(i))
            .ok()
            .and_then(|p| plan.points.get(p))
    };
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, usize::try_from(count).unwrap_or(1).max(1)) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count {
                        break;
                    }
                    let Some(point) = point_at(i) else { break };
                    let done = ShardPoint {
                        index: point.index as u64,
                        outcome: simulate(point),
                    };
                    if let Some(slot) = usize::try_from(i).ok().and_then(|i| slots.get(i)) {
                        *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(done);
                    }
                }
            });
        }
    });
    slots
        .into_iter()
        .filter_map(|s| s.into_inner().unwrap_or_else(|e| e.into_inner()))
        .collect()
}

/// `natsim plan PLAN --out OUT --shard K/N`: simulates this shard's points and writes the result
/// file. Exit 0 once it is written (the verdict is the merge's), 2 for an unusable plan or output.
pub fn plan_shard_cmd(
    plan_path: &Path,
    out: &Path,
    jobs: Option<usize>,
    shard: Shard,
    simulate: SimulateFn<'_>,
) -> Exit {
    let plan = match Plan::load(plan_path) {
        Ok(p) => p,
        Err(e) => return Exit(output::print_error(&e)),
    };
    let plan_digest = match digest_of(plan_path) {
        Ok(d) => d,
        Err(e) => return Exit(output::print_error(&e)),
    };
    let path = shard_file(out, shard);
    if let Some(dir) = path.parent()
        && let Err(e) = prepare_dir(dir)
    {
        return Exit(output::print_error(&e));
    }
    let jobs = jobs
        .or_else(|| std::thread::available_parallelism().ok().map(usize::from))
        .unwrap_or(1);
    let points = run_shard(&plan, shard, simulate, jobs);
    let settings = PlanSettings {
        plan: plan_path.to_path_buf(),
        plan_digest,
        out: out.to_path_buf(),
        points: plan.points.len() as u64,
    };
    let file = PlanShardFile {
        header: ShardHeader::new(COMMAND, settings.canonical(), shard),
        settings,
        points,
    };
    let summary = format!(
        "{} of {} points simulated",
        file.points.len(),
        file.settings.points
    );
    let mut out = output::stdout();
    let code = write_and_report(&path, &file, shard, &summary, &mut out);
    Exit(output::finish(code, out, output::stderr()))
}

/// Checks a complete set of plan shard files; returns the settings and every point's recorded
/// simulation, by index.
pub fn combine(
    files: &[(String, PlanShardFile)],
) -> Result<(PlanSettings, Vec<Result<SimulatedPoint, String>>), String> {
    check_files(files, COMMAND)?;
    let Some((_, first)) = files.first() else {
        return Err("no shard result files given".to_owned());
    };
    let settings = first.settings.clone();
    for (name, f) in files {
        let got: Vec<u64> = f.points.iter().map(|p| p.index).collect();
        f.header
            .shard
            .check_positions(name, "points", settings.points, &got)?;
    }
    // Only now is `settings.points` (read from a file) known to be the number of points the
    // files really hold, so allocating by it cannot blow up.
    let mut by_index: Vec<Option<Result<SimulatedPoint, String>>> =
        vec![None; usize::try_from(settings.points).map_err(|e| e.to_string())?];
    for (_, f) in files {
        for p in &f.points {
            if let Some(slot) = usize::try_from(p.index)
                .ok()
                .and_then(|i| by_index.get_mut(i))
            {
                *slot = Some(p.outcome.clone());
            }
        }
    }
    let all = by_index
        .into_iter()
        .enumerate()
        .map(|(i, o)| o.ok_or_else(|| format!("point {i} was simulated by no shard")))
        .collect::<Result<Vec<_>, String>>()?;
    Ok((settings, all))
}

/// Writes the report of a complete set of plan shards exactly as the unsharded plan command does.
pub fn merge(
    settings: &PlanSettings,
    recorded: &[Result<SimulatedPoint, String>],
    jobs: usize,
) -> Result<PlanOutcome, String> {
    let now = digest_of(&settings.plan)?;
    if now != settings.plan_digest {
        return Err(format!(
            "{}: the plan file changed since the shards ran (digest {now}, shards ran {})",
            settings.plan.display(),
            settings.plan_digest
        ));
    }
    let replay = |point: &PointParams| -> Result<SimulatedPoint, String> {
        recorded
            .get(point.index)
            .cloned()
            .unwrap_or_else(|| Err(format!("point {} was simulated by no shard", point.index)))
    };
    plan_cmd_with(&settings.plan, &settings.out, Some(jobs), Some(&replay))
        .map_err(|e| format!("{e:#}"))
}

/// `natsim merge FILE...` for plan shards: exit 2 with a message for an incomplete, duplicated
/// or mixed set (or a changed plan file); otherwise the unsharded plan's files, line and exit code.
pub fn merge_cmd(paths: &[PathBuf], jobs: usize) -> Exit {
    let files: Vec<(String, PlanShardFile)> = match read_files(paths, COMMAND) {
        Ok(f) => f,
        Err(e) => return Exit(output::print_error(&e)),
    };
    let (settings, recorded) = match combine(&files) {
        Ok(x) => x,
        Err(e) => return Exit(output::print_error(&e)),
    };
    if let Err(e) = output::check_output_dir(&settings.out) {
        return Exit(output::print_error(&e));
    }
    match merge(&settings, &recorded, jobs) {
        Ok(outcome) => Exit(print_outcome(&outcome, &settings.out)),
        Err(e) => Exit(output::print_error(&e)),
    }
}

/// The line `natsim plan` prints, and its exit code (1 when a point is over its target).
pub fn print_outcome(outcome: &PlanOutcome, out: &Path) -> u8 {
    let line = format!(
        "{} points, {} over target, {} disagreements; wrote {} files to {}\n",
        outcome.points,
        outcome.failing_points,
        outcome.disagreements,
        outcome.files.len(),
        out.display()
    );
    let code = if outcome.failing_points > 0 {
        exit::FAILED
    } else {
        exit::OK
    };
    output::print_all(code, &line)
}

impl ShardFile for PlanShardFile {
    fn header(&self) -> &ShardHeader {
        &self.header
    }
    fn canonical_input(&self) -> String {
        self.settings.canonical()
    }
}
