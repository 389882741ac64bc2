//! `natsim swarm --seeds A..B [--jobs N] [--out DIR] [--broken NAME]`.
//!
//! Phase 1 runs every seed (on `jobs` threads pulling seeds from a shared counter) and prints
//! one line per seed, in seed order, as soon as every earlier seed is done. Phase 2 minimises
//! the first [`SwarmOptions::minimise_first`] failures (in seed order, again on `jobs`
//! threads) and writes each as `DIR/seed-N.yaml`, then checks that the written file, loaded
//! back, fails the same way. The output depends only on the options, never on `jobs` or
//! thread timing.

use std::collections::BTreeMap;
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

use super::coverage::Tally;
use super::features::Features;
use super::generate::{describe, generate};
use super::run::{Failure, Outcome, Target, run_case, run_document};
use super::shrink::{minimise, size};
use super::yaml::to_yaml;
use crate::exit::Exit;
use crate::scenario::load;
use crate::scenario::schema::ScenarioFile;
use crate::shard::Shard;

/// Default run budget for minimising one failure.
pub const MAX_SHRINK_RUNS: u32 = 400;

/// Swarm settings.
#[derive(Clone, Debug)]
pub struct SwarmOptions {
    /// Seeds to run.
    pub seeds: Range<u64>,
    /// Worker threads (at least 1).
    pub jobs: usize,
    /// Where minimised scenarios go.
    pub out_dir: PathBuf,
    /// The dataplane under test.
    pub target: Target,
    /// Stop after the first failing seed (seeds after it are not reported).
    pub stop_at_first_failure: bool,
    /// How many failures (the first, in seed order) to minimise and write.
    pub minimise_first: usize,
    /// Run budget per minimisation.
    pub max_shrink_runs: u32,
}

impl SwarmOptions {
    /// Defaults for a seed range: all cores, `swarm-out/`, the real gateway, minimise the first
    /// five failures with at most 400 runs each.
    pub fn new(seeds: Range<u64>) -> SwarmOptions {
        SwarmOptions {
            seeds,
            jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
            out_dir: PathBuf::from("swarm-out"),
            target: Target::Real,
            stop_at_first_failure: false,
            minimise_first: 5,
            max_shrink_runs: MAX_SHRINK_RUNS,
        }
    }
}

/// One seed's phase-1 result.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SeedResult {
    /// The seed.
    pub seed: u64,
    /// Features and derived parameters.
    pub params: String,
    /// The run.
    pub outcome: Outcome,
}

/// A written reproduction.
#[derive(Clone, Debug)]
pub struct Reproduction {
    /// The seed.
    pub seed: u64,
    /// The file.
    pub path: PathBuf,
    /// How the original failed.
    pub failure: Failure,
    /// Size before and after (list items).
    pub size_before: usize,
    /// Size after.
    pub size_after: usize,
    /// Runs spent minimising.
    pub runs: u32,
    /// The written file, loaded and run again, failed the same way.
    pub verified: bool,
    /// Error writing or re-loading, if any.
    pub error: Option<String>,
}

/// Everything a swarm produced.
#[derive(Clone, Debug)]
pub struct SwarmReport {
    /// Per seed, in seed order.
    pub results: Vec<SeedResult>,
    /// Minimised reproductions, in seed order.
    pub reproductions: Vec<Reproduction>,
    /// Paths reached by passing runs.
    pub tally: Tally,
    /// The worst exit code.
    pub exit_code: u8,
}

impl SwarmReport {
    /// Failing seeds.
    pub fn failures(&self) -> impl Iterator<Item = &SeedResult> {
        self.results.iter().filter(|r| r.outcome.failure.is_some())
    }
}

/// The world of a seed: features, document, one-line description.
pub fn world(seed: u64) -> (Features, ScenarioFile) {
    let f = Features::draw(seed);
    let doc = generate(seed, &f);
    (f, doc)
}

fn file_of(out_dir: &Path, seed: u64) -> PathBuf {
    out_dir.join(format!("seed-{seed}.yaml"))
}

fn run_seed(seed: u64, opts: &SwarmOptions) -> SeedResult {
    let (f, doc) = world(seed);
    let params = format!("{f} | {}", describe(&doc));
    // A world that does not load is a generator bug, reported as `bad-input`.
    let outcome = run_document(&doc, &file_of(&opts.out_dir, seed), opts.target);
    SeedResult {
        seed,
        params,
        outcome,
    }
}

pub(super) fn seed_line(r: &SeedResult) -> String {
    let o = &r.outcome;
    let verdict = match &o.failure {
        None => format!(
            "pass ({} events; reached {})",
            o.events,
            o.reached.names().join(",")
        ),
        Some(f) => format!("FAIL {f}: {}", o.detail),
    };
    format!("seed {}: {} => {verdict}", r.seed, r.params)
}

/// Minimises one failing seed, writes the file, and re-runs it from disk.
fn reproduce(r: &SeedResult, opts: &SwarmOptions) -> Reproduction {
    let (f, doc) = world(r.seed);
    let failure = r.outcome.failure.clone().unwrap_or(Failure {
        exit_code: 0,
        invariant: String::new(),
    });
    let origin = Origin {
        what: format!("seed {}", r.seed),
        features: f.to_string(),
        seed: r.seed,
    };
    let path = file_of(&opts.out_dir, r.seed);
    minimise_to_file(
        &doc,
        &origin,
        &failure,
        &r.outcome.detail,
        &path,
        opts.target,
        opts.max_shrink_runs,
    )
}

/// Where a failing document came from, for the header of its reproduction file.
#[derive(Clone, Debug)]
pub struct Origin {
    /// What failed, e.g. `seed 39` or `fuzz input crash-1f2e`.
    pub what: String,
    /// The features that were on.
    pub features: String,
    /// The document's seed.
    pub seed: u64,
}

/// Minimises `doc` (which fails as `failure` against `target`, with message `detail`), writes
/// it to `path` as a scenario file whose comment header says where it came from and how to
/// reproduce it, and re-runs the file from disk to check it fails the same way.
pub fn minimise_to_file(
    doc: &ScenarioFile,
    origin: &Origin,
    failure: &Failure,
    detail: &str,
    path: &Path,
    target: Target,
    max_runs: u32,
) -> Reproduction {
    let m = minimise(doc, target, failure, max_runs, path);
    let mut rep = Reproduction {
        seed: origin.seed,
        path: path.to_path_buf(),
        failure: failure.clone(),
        size_before: size(doc),
        size_after: size(&m.doc),
        runs: m.runs,
        verified: false,
        error: None,
    };
    let header = format!(
        "natsim swarm: minimised reproduction of {} ({} list items, was {}; {} runs)\n\
         features: {}\n\
         dataplane: {target}\n\
         failure: {failure}: {detail}\n\
         reproduce: {}",
        origin.what,
        rep.size_after,
        rep.size_before,
        m.runs,
        origin.features,
        reproduce_command(path, target),
    );
    let written = to_yaml(&m.doc, &header).and_then(|text| {
        path.parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|_| crate::output::write_atomic(path, text))
            .map_err(|e| format!("writing {}: {e}", path.display()))
    });
    match written.and_then(|_| load(path).map_err(|e| e.to_string())) {
        Ok(sc) => rep.verified = run_case(&sc, target).failure.as_ref() == Some(failure),
        Err(e) => rep.error = Some(e),
    }
    rep
}

/// The command that runs a written scenario against `target`: `natsim run` for the real
/// gateway, `natsim swarm --reproduce` for a broken one.
pub fn reproduce_command(path: &Path, target: Target) -> String {
    match target.broken_arg() {
        None => format!("natsim run {}", path.display()),
        Some(b) => format!(
            "natsim swarm --reproduce {} --broken {b}   (natsim run uses the real gateway)",
            path.display()
        ),
    }
}

/// One line saying where a reproduction went and whether it reproduces.
pub fn reproduction_line(rep: &Reproduction) -> String {
    format!(
        "{}: minimised {} -> {} list items in {} runs; wrote {}{}",
        rep.failure,
        rep.size_before,
        rep.size_after,
        rep.runs,
        rep.path.display(),
        match (&rep.error, rep.verified) {
            (Some(e), _) => format!(" (ERROR {e})"),
            (None, true) => " (reproduces when loaded)".into(),
            (None, false) => " (DOES NOT REPRODUCE when loaded)".into(),
        }
    )
}

/// Runs `work` over items `0..len` (item `i` is `item(i)`, made when a thread takes it: a
/// seed range of any length costs no memory up front) on `jobs` threads; results come back
/// in item order. `stop(i, r)` says item `i` with result `r` ends the work: items after the
/// first such one are neither started any more nor returned.
fn parallel<T, R>(
    len: u64,
    item: &(dyn Fn(u64) -> T + Sync),
    jobs: usize,
    work: &(dyn Fn(&T) -> R + Sync),
    stop: &(dyn Fn(&R) -> bool + Sync),
    each: &mut dyn FnMut(&R),
) -> Vec<R>
where
    T: Sync,
    R: Send,
{
    let next = AtomicU64::new(0);
    // Index of the first stopping item found so far (items past it are skipped).
    let cut = AtomicU64::new(u64::MAX);
    let (tx, rx) = mpsc::channel::<(u64, R)>();
    let mut done: BTreeMap<u64, R> = BTreeMap::new();
    let mut out = Vec::new();
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1) {
            let tx = tx.clone();
            let (next, cut) = (&next, &cut);
            s.spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let past_cut = i > cut.load(Ordering::Relaxed);
                    if i >= len || past_cut {
                        break;
                    }
                    let r = work(&item(i));
                    if stop(&r) {
                        cut.fetch_min(i, Ordering::Relaxed);
                    }
                    if tx.send((i, r)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        // Emit in order; stop emitting at the first stopping item.
        let mut want = 0u64;
        let mut stopped = false;
        for (i, r) in rx {
            done.insert(i, r);
            while !stopped && let Some(r) = done.remove(&want) {
                each(&r);
                stopped = stop(&r);
                out.push(r);
                want += 1;
            }
        }
    });
    out
}

/// Runs a swarm, printing as it goes.
pub fn swarm(opts: &SwarmOptions, out: &mut dyn Write) -> SwarmReport {
    print_start(opts, out);
    let results = run_seeds(opts, Shard::WHOLE, &mut |r| {
        let _ = writeln!(out, "{}", seed_line(r));
    });
    finish(opts, results, out)
}

/// The first line of a swarm's output.
pub(super) fn print_start(opts: &SwarmOptions, out: &mut dyn Write) {
    let _ = writeln!(
        out,
        "swarm seeds {}..{} against the {} (jobs do not change the output)",
        opts.seeds.start, opts.seeds.end, opts.target
    );
}

/// Phase 1 for the seeds `shard` owns (by position in the range, round-robin): every seed's
/// result in seed order, `each` called on them in that order as they complete. With
/// `stop_at_first_failure`, the shard's first failing seed is its last.
pub(super) fn run_seeds(
    opts: &SwarmOptions,
    shard: Shard,
    each: &mut dyn FnMut(&SeedResult),
) -> Vec<SeedResult> {
    let first_seed = opts.seeds.start;
    // `end - start` cannot underflow for a non-empty range; an empty one runs nothing.
    let total = opts.seeds.end.saturating_sub(first_seed);
    let stop_first = opts.stop_at_first_failure;
    parallel(
        shard.len_of(total),
        &|i| first_seed + shard.position(i),
        opts.jobs,
        &|&s| run_seed(s, opts),
        &|r: &SeedResult| stop_first && r.outcome.failure.is_some(),
        each,
    )
}

/// Phase 2 and the summary, from phase 1's results (all seeds, in seed order): the tally of
/// passing runs, the first failures minimised and written, the closing lines.
pub(super) fn finish(
    opts: &SwarmOptions,
    results: Vec<SeedResult>,
    out: &mut dyn Write,
) -> SwarmReport {
    let mut tally = Tally::default();
    for r in results.iter().filter(|r| r.outcome.failure.is_none()) {
        tally.add(r.outcome.reached);
    }
    let failing: Vec<SeedResult> = results
        .iter()
        .filter(|r| r.outcome.failure.is_some())
        .take(opts.minimise_first)
        .cloned()
        .collect();
    let reproductions = parallel(
        failing.len() as u64,
        &|i| &failing[i as usize],
        opts.jobs,
        &|r| reproduce(r, opts),
        &|_| false,
        &mut |rep: &Reproduction| {
            let _ = writeln!(out, "seed {}: {}", rep.seed, reproduction_line(rep));
        },
    );
    let failed: Vec<String> = results
        .iter()
        .filter(|r| r.outcome.failure.is_some())
        .map(|r| r.seed.to_string())
        .collect();
    // The first failing seeds are enough to go on; each has its own line above.
    let shown = failed.len().min(20);
    let more = if failed.len() > shown { " ..." } else { "" };
    let exit_code = results
        .iter()
        .map(|r| r.outcome.exit_code)
        .max()
        .unwrap_or(0);
    let _ = writeln!(
        out,
        "swarm: {} seeds, {} failed{}",
        results.len(),
        failed.len(),
        if failed.is_empty() {
            String::new()
        } else {
            format!(" (seeds {}{more})", failed[..shown].join(" "))
        }
    );
    let _ = writeln!(out, "reached (passing runs): {}", tally.line());
    SwarmReport {
        results,
        reproductions,
        tally,
        exit_code,
    }
}

/// Parses `--seeds A..B` (end exclusive) or a single seed `N` (= `N..N+1`), for clap's
/// `value_parser`.
pub fn parse_seeds(s: &str) -> Result<Range<u64>, String> {
    let num = |x: &str| {
        x.trim()
            .parse::<u64>()
            .map_err(|_| format!("`{x}` is not a seed"))
    };
    let r = match s.split_once("..") {
        Some((a, b)) => num(a)?..num(b)?,
        None => {
            let n = num(s)?;
            n..n.saturating_add(1)
        }
    };
    if r.is_empty() {
        return Err(format!("`{s}` is an empty range"));
    }
    Ok(r)
}

/// `natsim swarm`: the command-line entry point. `broken` plugs a deliberately broken
/// dataplane by name (testing option: `leaky-filter[:PORT]`, `overlapping-blocks`, ...).
pub fn swarm_cmd(
    seeds: Range<u64>,
    jobs: Option<usize>,
    out_dir: &Path,
    broken: Option<&str>,
    shard: Option<Shard>,
) -> Exit {
    let mut opts = SwarmOptions::new(seeds);
    if let Some(j) = jobs {
        opts.jobs = j.max(1);
    }
    opts.out_dir = out_dir.to_path_buf();
    if let Some(b) = broken {
        match Target::broken(b) {
            Ok(t) => opts.target = t,
            Err(e) => return Exit(crate::output::print_error(&e)),
        }
    }
    if let Err(e) = crate::output::check_output_dir(out_dir) {
        return Exit(crate::output::print_error(&e));
    }
    if let Some(shard) = shard {
        return super::shard::shard_cmd(&opts, shard);
    }
    let mut out = crate::output::stdout();
    let code = with_quiet_panics(|| swarm(&opts, &mut out).exit_code);
    Exit(crate::output::finish(code, out, crate::output::stderr()))
}

/// Runs `f` with a panic hook that prints one line per panic instead of the default message
/// and backtrace: a crash is a result the swarm reports on its own line (and minimises).
pub fn with_quiet_panics<T>(f: impl FnOnce() -> T) -> T {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|info| {
        let at = info
            .location()
            .map_or(String::new(), |l| format!(" at {}:{}", l.file(), l.line()));
        // Never panic inside the hook (that aborts): a lost stderr line is acceptable here.
        let _ = writeln!(std::io::stderr(), "panic{at} (reported as a crash)");
    }));
    let out = f();
    std::panic::set_hook(hook);
    out
}

/// `natsim swarm --reproduce FILE [--broken NAME]`: runs a (minimised) scenario file against
/// the chosen dataplane and prints the outcome; the exit code is the run's.
pub fn reproduce_cmd(path: &Path, broken: Option<&str>) -> Exit {
    let target = match broken.map(Target::broken).transpose() {
        Ok(t) => t.unwrap_or(Target::Real),
        Err(e) => return Exit(crate::output::print_error(&e)),
    };
    let sc = match load(path) {
        Ok(s) => s,
        Err(e) => return Exit(crate::output::print_error(&e)),
    };
    let o = run_case(&sc, target);
    let line = match &o.failure {
        None => format!("{}: pass against the {target}\n", path.display()),
        Some(f) => format!(
            "{}: FAIL {f} against the {target}: {}\n",
            path.display(),
            o.detail
        ),
    };
    Exit(crate::output::print_all(o.exit_code, &line))
}

#[cfg(test)]
mod tests {
    use super::parse_seeds;

    #[test]
    fn seed_ranges_parse() {
        assert_eq!(parse_seeds("0..1000"), Ok(0..1000));
        assert_eq!(parse_seeds("7"), Ok(7..8));
        assert!(parse_seeds("5..5").is_err());
        assert!(parse_seeds("a..b").is_err());
    }
}
