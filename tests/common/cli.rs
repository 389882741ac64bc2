//! Running the `natsim` binary and looking at what it wrote, for the command-line tests.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs the `natsim` binary in `cwd` with `args` and the extra environment `env` (a Kubernetes
/// Indexed Job's shard variables from the test's own environment are removed first); returns
/// (exit code, stdout, stderr).
pub fn natsim(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_natsim"));
    cmd.current_dir(cwd)
        .args(args)
        .env_remove("JOB_COMPLETION_INDEX")
        .env_remove("NATSIM_SHARDS");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("runs natsim");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A scratch directory for one test, empty and unique to this process: `natsim-<name>-<pid>`
/// under the system's temporary directory.
pub fn fresh_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("natsim-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// The files directly in `dir` (not in its subfolders) by name, with their bytes; empty when
/// `dir` does not exist.
pub fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return BTreeMap::new();
    };
    entries
        .flatten()
        .filter(|e| e.path().is_file())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).expect("readable"),
            )
        })
        .collect()
}
