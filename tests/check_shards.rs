//! Sharded `natsim check` (`--shard K/N`, then `natsim merge`): for N in {1, 2, 3, 7} over the
//! scenario library, the merged standard output and exit code are the unsharded check's, byte for
//! byte, and its JUnit file too apart from the wall-clock `time` attributes (which differ between
//! any two runs); a set with a missing shard or from another folder is refused with exit 2.

use std::path::{Path, PathBuf};

mod common;

use common::cli;

fn natsim(args: &[&str]) -> (i32, String, String) {
    cli::natsim(Path::new(env!("CARGO_MANIFEST_DIR")), args, &[])
}

fn tmp(name: &str) -> PathBuf {
    cli::fresh_dir(&format!("check-shards-{name}"))
}

/// The JUnit text with every `time="..."` attribute emptied.
fn without_times(xml: &str) -> String {
    let mut out = String::new();
    let mut rest = xml;
    while let Some(i) = rest.find("time=\"") {
        out.push_str(&rest[..i + 6]);
        rest = &rest[i + 6..];
        let end = rest.find('"').unwrap_or(rest.len());
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Runs `check DIR` unsharded and as N shards merged; returns both (stdout, exit, JUnit).
fn both(dir: &str, n: u32, work: &Path) -> [(String, i32, String); 2] {
    let junit0 = work.join(format!("whole-{n}.xml"));
    let (code0, out0, err0) = natsim(&["check", dir, "--junit", &junit0.display().to_string()]);
    assert!(err0.is_empty() || code0 != 0, "{err0}");
    let shard_out = work.join(format!("shards-{n}"));
    let mut files = Vec::new();
    for k in 0..n {
        let (code, text, err) = natsim(&[
            "check",
            dir,
            "--shard",
            &format!("{k}/{n}"),
            "--shard-out",
            &shard_out.display().to_string(),
        ]);
        assert_eq!(code, 0, "shard {k}/{n}: {text}{err}");
        files.push(
            shard_out
                .join(format!("check-{k}-of-{n}.json"))
                .display()
                .to_string(),
        );
    }
    files.reverse();
    let junit1 = work.join(format!("merged-{n}.xml"));
    let mut args = vec!["merge".to_owned()];
    args.extend(files);
    args.extend(["--junit".to_owned(), junit1.display().to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code1, out1, err1) = natsim(&args);
    assert!(err1.is_empty() || code1 != 0, "{err1}");
    let read = |p: &Path| without_times(&std::fs::read_to_string(p).expect("JUnit written"));
    [(out0, code0, read(&junit0)), (out1, code1, read(&junit1))]
}

#[test]
fn the_library_checked_in_1_2_3_or_7_shards_merges_to_the_unsharded_output() {
    let work = tmp("library");
    for n in [1, 2, 3, 7] {
        let [whole, merged] = both("scenarios", n, &work);
        assert_eq!(whole.1, 0, "{}", whole.0);
        assert!(whole.0.contains("scenarios, 0 failed"), "{}", whole.0);
        assert_eq!(whole, merged, "{n} shards");
    }
}

/// A folder with a failing and an unloadable scenario: the merge reports them as the unsharded
/// check does (lines, details, exit code 2, JUnit `<error>`).
#[test]
fn failures_and_bad_input_merge_like_the_unsharded_check() {
    let work = tmp("failing");
    let dir = work.join("folder");
    std::fs::create_dir_all(&dir).expect("folder");
    let lib = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    for f in ["udp-dns.yaml", "tcp-basic.yaml", "icmp-ping.yaml"] {
        std::fs::copy(lib.join(f), dir.join(f)).expect("copy");
    }
    std::fs::write(
        dir.join("broken.yaml"),
        "apiVersion: natsim.dev/v1\nkind: Nonsense\n",
    )
    .expect("write");
    let d = dir.display().to_string();
    for n in [2, 3] {
        let [whole, merged] = both(&d, n, &work);
        assert_eq!(whole.1, 2, "{}", whole.0);
        assert!(whole.0.contains("BAD INPUT"), "{}", whole.0);
        assert_eq!(whole, merged, "{n} shards");
    }
}

#[test]
fn merge_refuses_a_missing_shard_and_a_shard_of_another_folder() {
    let work = tmp("refuse");
    let out = work.join("s").display().to_string();
    for k in 0..3 {
        let (code, _, err) = natsim(&[
            "check",
            "scenarios",
            "--shard",
            &format!("{k}/3"),
            "--shard-out",
            &out,
        ]);
        assert_eq!(code, 0, "{err}");
    }
    let file = |k: u32, dir: &str| format!("{dir}/check-{k}-of-3.json");
    let (code, _, err) = natsim(&["merge", &file(0, &out), &file(2, &out)]);
    assert_eq!(code, 2);
    assert!(err.contains("missing (1/3)"), "{err}");

    let other = work.join("o");
    let folder = work.join("few");
    std::fs::create_dir_all(&folder).expect("folder");
    let lib = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    std::fs::copy(lib.join("udp-dns.yaml"), folder.join("udp-dns.yaml")).expect("copy");
    let o = other.display().to_string();
    let (code, _, err) = natsim(&[
        "check",
        &folder.display().to_string(),
        "--shard",
        "1/3",
        "--shard-out",
        &o,
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = natsim(&["merge", &file(0, &out), &file(1, &o), &file(2, &out)]);
    assert_eq!(code, 2);
    assert!(err.contains("not shards of the same run"), "{err}");
    let (code, _, err) = natsim(&[
        "merge",
        &file(0, &out),
        &file(1, &out),
        &file(2, &out),
        "--jobs",
        "1",
    ]);
    assert_eq!(code, 0, "{err}");
}
