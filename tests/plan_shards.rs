//! Sharded `natsim plan` (`--shard K/N`, then `natsim merge`): for N in {1, 2, 3, 7} a 20-point
//! simulated plan gives report files, printed line and exit code byte-identical to the
//! unsharded run; a merge after the plan file changed, or with a shard missing, is refused with
//! exit 2.

use std::path::{Path, PathBuf};

mod common;

use common::cli::{self, files};

const PLAN: &str = r#"apiVersion: natsim.dev/v1
kind: Plan
metadata: {name: sharded}
seed: 3
fleet:
  nics: 40
  traffic:
    flow_rate_per_s: 0.5
    flow_duration: {dist: exponential, mean_s: 5}
    destinations: {count: 5, zipf_s: 1.0}
    protocol_mix: {tcp: 0.5, udp: 0.5}
gateway:
  rules: ironcore
  ports_per_nic: 64
  ips: 1
  ip_families: [IPv4]
  profile: dpservice
target: {blocking_max: 0.01}
sweep:
  - param: gateway.ports_per_nic
    values: [8, 16, 32, 64]
  - param: fleet.traffic.flow_rate_per_s
    values: [0.5, 1, 2, 4, 8]
simulation: {duration_s: 60, warmup_s: 20}
report:
  plots:
    - file: b.svg
      x: fleet.traffic.flow_rate_per_s
      y: blocking_hot
      series: gateway.ports_per_nic
"#;

fn natsim(cwd: &Path, args: &[&str]) -> (i32, String, String) {
    cli::natsim(cwd, args, &[])
}

fn work(name: &str) -> PathBuf {
    let d = cli::fresh_dir(&format!("plan-shards-{name}"));
    std::fs::write(d.join("plan.yaml"), PLAN).expect("plan");
    d
}

fn shards(cwd: &Path, n: u32) -> Vec<String> {
    (0..n)
        .map(|k| {
            let (code, text, err) = natsim(
                cwd,
                &[
                    "plan",
                    "plan.yaml",
                    "--out",
                    "out",
                    "--shard",
                    &format!("{k}/{n}"),
                ],
            );
            assert_eq!(code, 0, "shard {k}/{n}: {text}{err}");
            format!("out/shards/plan-{k}-of-{n}.json")
        })
        .collect()
}

#[test]
fn a_plan_merged_from_1_2_3_or_7_shards_is_byte_identical_to_the_unsharded_plan() {
    let cwd = work("same");
    let (code0, line0, err0) = natsim(&cwd, &["plan", "plan.yaml", "--out", "out"]);
    assert!(code0 == 0 || code0 == 1, "{err0}");
    assert!(line0.starts_with("20 points"), "{line0}");
    let whole = files(&cwd.join("out"));
    assert_eq!(whole.len(), 3, "{:?}", whole.keys());
    for n in [1, 2, 3, 7] {
        std::fs::remove_dir_all(cwd.join("out")).expect("clean");
        let mut paths = shards(&cwd, n);
        paths.reverse();
        let mut args = vec!["merge"];
        args.extend(paths.iter().map(String::as_str));
        let (code, line, err) = natsim(&cwd, &args);
        assert_eq!((code, &line), (code0, &line0), "{n} shards: {err}");
        assert_eq!(files(&cwd.join("out")), whole, "{n} shards");
    }
}

#[test]
fn merge_refuses_a_changed_plan_file_and_a_missing_shard() {
    let cwd = work("refuse");
    let paths = shards(&cwd, 3);
    let (code, _, err) = natsim(&cwd, &["merge", &paths[0], &paths[2]]);
    assert_eq!(code, 2);
    assert!(err.contains("missing (1/3)"), "{err}");
    std::fs::write(cwd.join("plan.yaml"), PLAN.replace("seed: 3", "seed: 4")).expect("edit");
    let (code, _, err) = natsim(&cwd, &["merge", &paths[0], &paths[1], &paths[2]]);
    assert_eq!(code, 2);
    assert!(err.contains("changed since the shards ran"), "{err}");
    let (code, _, err) = natsim(
        &cwd,
        &[
            "plan",
            "plan.yaml",
            "--out",
            "o2",
            "--no-sim",
            "--shard",
            "0/2",
        ],
    );
    assert_eq!(code, 2, "--no-sim is not sharded: {err}");
}
