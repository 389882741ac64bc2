//! Sharded swarms (`natsim swarm --shard K/N`, then `natsim merge`): for N in {1, 2, 3, 7} the
//! merged output (standard output, minimised scenario files, exit code) is byte for byte the
//! unsharded swarm's, and `natsim merge` refuses incomplete, duplicated and mixed sets with exit 2.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

mod common;

use common::cli::{self, files};

use natsim::shard::Shard;
use natsim::swarm::shard::{combine, merge, run_shard, shard_file};
use natsim::swarm::{SwarmOptions, Target, swarm};

fn out_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("natsim-shards-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// (stdout, files, exit code) of the unsharded swarm, then of N shards merged, in one out dir.
fn both(opts: &SwarmOptions, n: u32) -> [(String, BTreeMap<String, Vec<u8>>, u8); 2] {
    let _ = std::fs::remove_dir_all(&opts.out_dir);
    let mut whole = Vec::new();
    let report = swarm(opts, &mut whole);
    let unsharded = (
        String::from_utf8(whole).expect("utf-8"),
        files(&opts.out_dir),
        report.exit_code,
    );
    let _ = std::fs::remove_dir_all(&opts.out_dir);
    let mut shard_files = Vec::new();
    for k in 0..n {
        let shard = Shard::new(k, n).expect("shard");
        let file = run_shard(opts, shard, &mut Vec::new());
        // Through JSON, as the files travel between machines.
        let text = serde_json::to_string(&file).expect("serialises");
        let back = serde_json::from_str(&text).expect("reads back");
        shard_files.push((shard_file(&opts.out_dir, shard).display().to_string(), back));
    }
    // Any order of the files gives the same result.
    shard_files.reverse();
    let (settings, results) = combine(&shard_files).expect("a complete set");
    let mut merged = Vec::new();
    let report = merge(&settings, results, 2, &mut merged).expect("merges");
    let sharded = (
        String::from_utf8(merged).expect("utf-8"),
        files(&opts.out_dir),
        report.exit_code,
    );
    [unsharded, sharded]
}

#[test]
fn a_swarm_merged_from_1_2_3_or_7_shards_is_byte_identical_to_the_unsharded_swarm() {
    let mut opts = SwarmOptions::new(0..300);
    opts.jobs = 2;
    opts.out_dir = out_dir("real");
    for n in [1, 2, 3, 7] {
        let [whole, merged] = both(&opts, n);
        assert_eq!(whole.0, merged.0, "stdout differs for {n} shards");
        assert_eq!(whole.1, merged.1, "files differ for {n} shards");
        assert_eq!(whole.2, merged.2, "exit code differs for {n} shards");
        assert!(whole.0.contains("swarm: 300 seeds"), "{}", whole.0);
    }
}

/// With failures: the merge minimises the first failures in seed order and writes the same
/// reproduction files; with `stop_at_first_failure` it stops where the unsharded swarm stops.
#[test]
fn failures_are_minimised_by_the_merge_exactly_as_by_the_unsharded_swarm() {
    let mut opts = SwarmOptions::new(0..60);
    opts.jobs = 2;
    opts.out_dir = out_dir("leaky");
    opts.target = Target::broken("leaky-filter").expect("known");
    opts.minimise_first = 2;
    opts.max_shrink_runs = 60;
    for (n, stop) in [(3, false), (7, true)] {
        opts.stop_at_first_failure = stop;
        let [whole, merged] = both(&opts, n);
        assert_eq!(
            whole.2, 4,
            "the leaky filter is found in 60 seeds:\n{}",
            whole.0
        );
        assert!(!whole.1.is_empty(), "a reproduction is written");
        assert_eq!(whole, merged, "{n} shards, stop at first failure {stop}");
    }
}

fn natsim(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    cli::natsim(Path::new("."), args, env)
}

/// Through the command line, with the shard taken from a Kubernetes Indexed Job's environment
/// (as `scripts/shards-local.sh` sets it): the merge prints what the unsharded swarm prints, and
/// refuses a missing, a duplicated or a foreign shard with exit 2 and a message naming it.
#[test]
fn merge_refuses_incomplete_duplicated_and_mixed_sets() {
    let dir = out_dir("cli");
    let other = out_dir("cli-other");
    let out = dir.display().to_string();
    let (code, whole, _) = natsim(&["swarm", "--seeds", "0..20", "--out", &out], &[]);
    assert_eq!(code, 0, "{whole}");
    for k in ["0", "1", "2"] {
        let (code, text, err) = natsim(
            &["swarm", "--seeds", "0..20", "--out", &out],
            &[("JOB_COMPLETION_INDEX", k), ("NATSIM_SHARDS", "3")],
        );
        assert_eq!(code, 0, "{text}{err}");
        assert!(text.contains(&format!("shard {k}/3")), "{text}");
    }
    let shard = |k: u32| {
        shard_file(&dir, Shard::new(k, 3).expect("shard"))
            .display()
            .to_string()
    };
    let (code, merged, err) = natsim(&["merge", &shard(2), &shard(0), &shard(1)], &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(merged, whole);

    let (code, _, err) = natsim(&["merge", &shard(0), &shard(2)], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("missing (1/3)"), "{err}");
    let (code, _, err) = natsim(&["merge", &shard(0), &shard(1), &shard(1), &shard(2)], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("given twice"), "{err}");
    let other_out = other.display().to_string();
    let (code, _, err) = natsim(
        &[
            "swarm", "--seeds", "0..21", "--out", &other_out, "--shard", "1/3",
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let foreign = shard_file(&other, Shard::new(1, 3).expect("shard"))
        .display()
        .to_string();
    let (code, _, err) = natsim(&["merge", &shard(0), &foreign, &shard(2)], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("not shards of the same run"), "{err}");
    let (code, _, err) = natsim(
        &["swarm", "--seeds", "0..20", "--out", &out],
        &[("NATSIM_SHARDS", "3")],
    );
    assert_eq!(code, 2);
    assert!(err.contains("JOB_COMPLETION_INDEX"), "{err}");
}

/// The local stand-in for an Indexed Job runs the shards as separate processes and merges.
#[test]
fn the_local_stand_in_runs_shards_as_processes_and_merges() {
    let dir = out_dir("script");
    let out = dir.display().to_string();
    let (_, whole, _) = natsim(&["swarm", "--seeds", "0..30", "--out", &out], &[]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/shards-local.sh");
    let run = Command::new("bash")
        .arg(script)
        .args(["3", &out, env!("CARGO_BIN_EXE_natsim")])
        .args(["swarm", "--seeds", "0..30", "--out", &out])
        .output()
        .expect("runs the script");
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&run.stdout), whole);
}
