//! `natsim swarm --shard K/N` and the swarm half of `natsim merge`.
//!
//! A shard runs phase 1 (every seed it owns, round-robin by position in the range) and writes
//! its results to `OUT/shards/swarm-K-of-N.json`; it minimises nothing. `natsim merge` checks
//! that the files are one complete set ([`crate::shard::check_files`]) and that each holds exactly
//! the seeds its shard owns, then prints the seed lines in seed order and runs phase 2
//! (minimisation of the first failures) and the summary with the code the unsharded swarm uses:
//! its standard output, its files in `OUT` and its exit code are those of the unsharded run,
//! byte for byte.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::cli::{
    SeedResult, SwarmOptions, SwarmReport, finish, print_start, run_seeds, seed_line,
};
use super::run::Target;
use crate::exit::Exit;
use crate::output;
use crate::shard::{
    Shard, ShardFile, ShardHeader, check_files, prepare_dir, read_files, write_and_report,
};

/// The `command` of swarm shard files.
pub const COMMAND: &str = "swarm";

/// The settings that decide a swarm's output (not `--jobs`), as a shard file records them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwarmSettings {
    /// First seed.
    pub seeds_start: u64,
    /// End of the seed range (excluded).
    pub seeds_end: u64,
    /// The broken dataplane by name (`--broken`), or none for the real gateway.
    pub broken: Option<String>,
    /// Whether the swarm stops at the first failing seed.
    pub stop_at_first_failure: bool,
    /// How many failures are minimised.
    pub minimise_first: usize,
    /// Run budget per minimisation.
    pub max_shrink_runs: u32,
    /// Where minimised scenarios are written (the merge writes them there).
    pub out_dir: PathBuf,
}

impl SwarmSettings {
    fn of(opts: &SwarmOptions) -> SwarmSettings {
        SwarmSettings {
            seeds_start: opts.seeds.start,
            seeds_end: opts.seeds.end,
            broken: opts.target.broken_arg(),
            stop_at_first_failure: opts.stop_at_first_failure,
            minimise_first: opts.minimise_first,
            max_shrink_runs: opts.max_shrink_runs,
            out_dir: opts.out_dir.clone(),
        }
    }

    /// The canonical one-line text of the settings (the shard header's `input`).
    fn canonical(&self) -> String {
        format!(
            "seeds {}..{}; dataplane {}; stop at first failure {}; minimise first {}; max shrink runs {}; out {}",
            self.seeds_start,
            self.seeds_end,
            self.broken.as_deref().unwrap_or("real"),
            self.stop_at_first_failure,
            self.minimise_first,
            self.max_shrink_runs,
            self.out_dir.display()
        )
    }

    /// Options that reproduce the sharded swarm, running on `jobs` threads.
    fn options(&self, jobs: usize) -> Result<SwarmOptions, String> {
        if self.seeds_start >= self.seeds_end {
            return Err(format!(
                "empty seed range {}..{}",
                self.seeds_start, self.seeds_end
            ));
        }
        let mut opts = SwarmOptions::new(self.seeds_start..self.seeds_end);
        opts.jobs = jobs.max(1);
        opts.target = match &self.broken {
            None => Target::Real,
            Some(b) => Target::broken(b)?,
        };
        opts.stop_at_first_failure = self.stop_at_first_failure;
        opts.minimise_first = self.minimise_first;
        opts.max_shrink_runs = self.max_shrink_runs;
        opts.out_dir = self.out_dir.clone();
        Ok(opts)
    }
}

/// A swarm shard's result file.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SwarmShardFile {
    /// Format, version, command, inputs, shard.
    pub header: ShardHeader,
    /// The inputs, structured (their canonical text is `header.input`).
    pub settings: SwarmSettings,
    /// Phase-1 results of the shard's seeds, in seed order.
    pub results: Vec<SeedResult>,
}

/// Where shard `shard` of a swarm writing to `out_dir` puts its results.
pub fn shard_file(out_dir: &Path, shard: Shard) -> PathBuf {
    out_dir.join("shards").join(shard.file_name(COMMAND))
}

/// Runs phase 1 of shard `shard`, printing its seed lines, and returns its result file.
pub fn run_shard(opts: &SwarmOptions, shard: Shard, out: &mut dyn Write) -> SwarmShardFile {
    let _ = writeln!(
        out,
        "swarm seeds {}..{} shard {shard} against the {} (jobs do not change the output)",
        opts.seeds.start, opts.seeds.end, opts.target
    );
    let results = run_seeds(opts, shard, &mut |r| {
        let _ = writeln!(out, "{}", seed_line(r));
    });
    let settings = SwarmSettings::of(opts);
    SwarmShardFile {
        header: ShardHeader::new(COMMAND, settings.canonical(), shard),
        settings,
        results,
    }
}

/// `natsim swarm --shard K/N`: phase 1 of one shard, results written to
/// [`shard_file`]. Exit 0 once the file is written, whatever the seeds found (the verdict is the
/// merge's; a Job must not retry a shard that found a failure); 2 when it cannot be written.
pub fn shard_cmd(opts: &SwarmOptions, shard: Shard) -> Exit {
    let path = shard_file(&opts.out_dir, shard);
    if let Some(dir) = path.parent()
        && let Err(e) = prepare_dir(dir)
    {
        return Exit(output::print_error(&e));
    }
    let mut out = output::stdout();
    let file = super::cli::with_quiet_panics(|| run_shard(opts, shard, &mut out));
    let failed = file
        .results
        .iter()
        .filter(|r| r.outcome.failure.is_some())
        .count();
    let summary = format!("{} seeds, {failed} failed", file.results.len());
    let code = write_and_report(&path, &file, shard, &summary, &mut out);
    Exit(output::finish(code, out, output::stderr()))
}

/// Checks a complete set of swarm shard files and puts their results back into one list in seed
/// order, as the unsharded phase 1 would have returned it.
pub fn combine(
    files: &[(String, SwarmShardFile)],
) -> Result<(SwarmSettings, Vec<SeedResult>), String> {
    check_files(files, COMMAND)?;
    let Some((_, first)) = files.first() else {
        return Err("no shard result files given".to_owned());
    };
    let settings = first.settings.clone();
    let total = settings.seeds_end.saturating_sub(settings.seeds_start);
    let mut all: Vec<SeedResult> = Vec::new();
    for (name, f) in files {
        let shard = f.header.shard;
        let expected = shard.len_of(total);
        let stopped_early = settings.stop_at_first_failure
            && f.results
                .last()
                .is_some_and(|r| r.outcome.failure.is_some());
        let len = f.results.len() as u64;
        if len > expected || (len < expected && !stopped_early) {
            return Err(format!(
                "{name}: shard {shard} of seeds {}..{} holds {len} results, expected {expected}",
                settings.seeds_start, settings.seeds_end
            ));
        }
        for (i, r) in f.results.iter().enumerate() {
            let seed = settings.seeds_start + shard.position(i as u64);
            if r.seed != seed {
                return Err(format!(
                    "{name}: result {} is seed {}, but shard {shard} runs seed {seed} there",
                    i + 1,
                    r.seed
                ));
            }
        }
        all.extend(f.results.iter().cloned());
    }
    all.sort_by_key(|r| r.seed);
    if settings.stop_at_first_failure
        && let Some(first_fail) = all.iter().position(|r| r.outcome.failure.is_some())
    {
        // The unsharded swarm stops there; every seed before it is in some shard's results,
        // because each shard ran until its own first failure, which is no earlier.
        all.truncate(first_fail + 1);
    }
    let complete = all
        .iter()
        .enumerate()
        .all(|(i, r)| r.seed == settings.seeds_start + i as u64);
    if !complete {
        return Err("the shards' results leave gaps in the seed range".to_owned());
    }
    Ok((settings, all))
}

/// Prints the merged swarm exactly as the unsharded swarm prints it and runs its phase 2.
pub fn merge(
    settings: &SwarmSettings,
    results: Vec<SeedResult>,
    jobs: usize,
    out: &mut dyn Write,
) -> Result<SwarmReport, String> {
    let opts = settings.options(jobs)?;
    print_start(&opts, out);
    for r in &results {
        let _ = writeln!(out, "{}", seed_line(r));
    }
    Ok(finish(&opts, results, out))
}

/// `natsim merge FILE...` for swarm shards: exit 2 with a message when the set is incomplete,
/// has duplicates or mixes runs; otherwise the unsharded swarm's output and exit code.
pub fn merge_cmd(paths: &[PathBuf], jobs: usize) -> Exit {
    let files: Vec<(String, SwarmShardFile)> = match read_files(paths, COMMAND) {
        Ok(f) => f,
        Err(e) => return Exit(output::print_error(&e)),
    };
    let (settings, results) = match combine(&files) {
        Ok(x) => x,
        Err(e) => return Exit(output::print_error(&e)),
    };
    if let Err(e) = output::check_output_dir(&settings.out_dir) {
        return Exit(output::print_error(&e));
    }
    let mut out = output::stdout();
    let code = super::cli::with_quiet_panics(|| merge(&settings, results, jobs, &mut out))
        .map(|r| r.exit_code);
    match code {
        Ok(c) => Exit(output::finish(c, out, output::stderr())),
        Err(e) => Exit(output::print_error(&e)),
    }
}

impl ShardFile for SwarmShardFile {
    fn header(&self) -> &ShardHeader {
        &self.header
    }
    fn canonical_input(&self) -> String {
        self.settings.canonical()
    }
}
