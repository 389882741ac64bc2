//! The scale-out files (docs/scale-out.md) agree with natsim and with each other: every
//! Kubernetes Job is an Indexed Job whose `NATSIM_SHARDS` equals its `completions`, mounts the
//! claim `pvc.yaml` defines, runs a natsim command that takes its shard from the environment,
//! and is merged from where its shards write, for as many shards as it has; the kustomization
//! lists files that exist; the ClusterFuzzLite build covers every fuzz target and its seeds.
//! (Checked here by parsing; the manifests were not applied to a cluster.)

use std::path::{Path, PathBuf};

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn at<'a>(v: &'a Value, path: &[&str]) -> &'a Value {
    let mut cur = v;
    for key in path {
        cur = match key.parse::<usize>() {
            Ok(i) => &cur[i],
            Err(_) => &cur[*key],
        };
    }
    cur
}

fn text(v: &Value, path: &[&str]) -> String {
    at(v, path)
        .as_str()
        .unwrap_or_else(|| panic!("{path:?} is not a string in {v}"))
        .to_owned()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// (shard count, natsim arguments, claim name) of an Indexed Job.
fn indexed_job(path: &Path) -> (u64, Vec<String>, String) {
    let job = yaml(path);
    assert_eq!(text(&job, &["kind"]), "Job", "{}", path.display());
    let spec = at(&job, &["spec"]);
    assert_eq!(
        text(spec, &["completionMode"]),
        "Indexed",
        "{}",
        path.display()
    );
    let completions = at(spec, &["completions"]).as_u64().expect("completions");
    assert!(
        at(spec, &["backoffLimitPerIndex"]).as_u64().is_some(),
        "{}",
        path.display()
    );
    assert_eq!(
        at(spec, &["maxFailedIndexes"]).as_u64(),
        Some(completions),
        "{}: one failing shard must not stop the others",
        path.display()
    );
    let pod = at(spec, &["template", "spec"]);
    assert_eq!(text(pod, &["restartPolicy"]), "Never");
    let c = at(pod, &["containers", "0"]);
    let env = at(c, &["env"]).as_array().expect("env");
    let shards = env
        .iter()
        .find(|e| e["name"] == "NATSIM_SHARDS")
        .and_then(|e| e["value"].as_str())
        .expect("NATSIM_SHARDS");
    assert_eq!(shards, completions.to_string(), "{}", path.display());
    let args = strings(at(c, &["args"]));
    assert!(
        !args.iter().any(|a| a == "--shard" || a == "--junit"),
        "{}: the shard comes from the environment, and --junit turns that off",
        path.display()
    );
    assert_eq!(text(c, &["volumeMounts", "0", "mountPath"]), "/results");
    let claim = text(pod, &["volumes", "0", "persistentVolumeClaim", "claimName"]);
    (completions, args, claim)
}

/// The one shell command of a merge Job.
fn merge_command(path: &Path, claim: &str) -> String {
    let job = yaml(path);
    let pod = at(&job, &["spec", "template", "spec"]);
    assert_eq!(
        text(pod, &["volumes", "0", "persistentVolumeClaim", "claimName"]),
        claim
    );
    let args = strings(at(pod, &["containers", "0", "args"]));
    assert_eq!(args.len(), 1, "{}", path.display());
    args[0].clone()
}

fn value_after(args: &[String], flag: &str) -> String {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| panic!("no {flag} in {args:?}"))
}

#[test]
fn kubernetes_jobs_agree_with_natsim_and_each_other() {
    let dir = root().join("deploy/kubernetes");
    let pvc = yaml(&dir.join("pvc.yaml"));
    assert_eq!(text(&pvc, &["kind"]), "PersistentVolumeClaim");
    let claim = text(&pvc, &["metadata", "name"]);
    assert!(strings(at(&pvc, &["spec", "accessModes"])).contains(&"ReadWriteMany".to_owned()));

    let (n, args, c) = indexed_job(&dir.join("swarm-job.yaml"));
    assert_eq!(c, claim);
    assert_eq!(args[0], "swarm");
    let out = value_after(&args, "--out");
    assert_eq!(
        merge_command(&dir.join("merge-swarm-job.yaml"), &claim),
        format!("exec natsim merge {out}/shards/swarm-*-of-{n}.json")
    );

    let (n, args, c) = indexed_job(&dir.join("check-job.yaml"));
    assert_eq!(c, claim);
    assert_eq!(args[0], "check");
    assert!(
        root().join(&args[1]).is_dir(),
        "the image ships {}",
        args[1]
    );
    let out = value_after(&args, "--shard-out");
    let merge = merge_command(&dir.join("merge-check-job.yaml"), &claim);
    assert!(
        merge.starts_with(&format!("exec natsim merge {out}/check-*-of-{n}.json")),
        "{merge}"
    );

    let (n, args, c) = indexed_job(&dir.join("plan-job.yaml"));
    assert_eq!(c, claim);
    assert_eq!(args[0], "plan");
    assert!(
        root().join(&args[1]).is_file(),
        "the image ships {}",
        args[1]
    );
    let out = value_after(&args, "--out");
    assert_eq!(
        merge_command(&dir.join("merge-plan-job.yaml"), &claim),
        format!("exec natsim merge {out}/shards/plan-*-of-{n}.json")
    );

    let k = yaml(&dir.join("kustomization.yaml"));
    for r in strings(at(&k, &["resources"])) {
        assert!(dir.join(&r).is_file(), "kustomization lists missing {r}");
    }
    let docker = std::fs::read_to_string(dir.join("Dockerfile")).expect("Dockerfile");
    assert!(
        docker.contains("--bin natsim")
            && docker.contains("/src/scenarios")
            && docker.contains("/src/plans")
    );
}

#[test]
fn clusterfuzzlite_builds_every_fuzz_target_with_its_seeds() {
    let dir = root().join(".clusterfuzzlite");
    let project = yaml(&dir.join("project.yaml"));
    assert_eq!(text(&project, &["language"]), "rust");
    let build = std::fs::read_to_string(dir.join("build.sh")).expect("build.sh");
    assert!(build.contains("cargo fuzz build -O") && build.contains("$(cargo fuzz list)"));
    let manifest = std::fs::read_to_string(root().join("fuzz/Cargo.toml")).expect("fuzz crate");
    let targets: Vec<&str> = manifest
        .lines()
        .filter_map(|l| l.trim().strip_prefix("name = \""))
        .filter_map(|l| l.strip_suffix('"'))
        .filter(|n| *n != "natsim-fuzz")
        .collect();
    assert_eq!(targets.len(), 7, "{targets:?}");
    for t in targets {
        assert!(
            root().join("fuzz/corpus").join(t).is_dir(),
            "no seed corpus for {t}"
        );
    }
    let workflow = yaml(&dir.join("github-workflow-batch.yml"));
    let steps = at(&workflow, &["jobs", "batch-fuzzing", "steps"]);
    assert_eq!(text(steps, &["1", "with", "mode"]), "batch");
    assert!(at(steps, &["1", "with", "storage-repo"]).is_string());
}
