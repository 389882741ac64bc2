//! Hostile-input corpus (issue 13): every case runs the built `natsim` binary in a fresh
//! folder and states its expectation — the exit code and a piece of the message. Over all
//! cases: no panic (exit 101), no abort or signal, no hang, and no partial output: a failing
//! case leaves no file behind beyond its inputs (nor a temporary one), a passing case
//! leaves exactly the outputs it names, complete.

mod cases;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

pub use cases::cases;

/// Where standard output goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stdout {
    /// Captured.
    Pipe,
    /// `/dev/full`: every write fails with ENOSPC.
    Full,
}

/// One hostile input and what natsim must do with it.
#[derive(Clone, Debug)]
pub struct Case {
    /// Unique name (shown on failure).
    pub name: String,
    /// Arguments after `natsim`; paths are relative to the case's folder.
    pub args: Vec<String>,
    /// Input files to create first: (relative path, bytes). A path ending in `/` is a folder.
    pub files: Vec<(String, Vec<u8>)>,
    /// Expected exit code.
    pub exit: i32,
    /// Pieces of standard output or standard error that must appear (given as one string,
    /// pieces separated by `|`).
    pub expect: Vec<String>,
    /// Outputs a passing run must leave (relative paths); failing runs must leave none,
    /// unless [`Case::outputs_on_failure`] says the failing run writes them on purpose.
    pub outputs: Vec<String>,
    /// The run fails but still writes `outputs`, each complete (a capture replayed up to the
    /// point where it ends early: the files describe what was read, the exit says it is not
    /// the whole capture).
    pub outputs_on_failure: bool,
    /// Where standard output goes.
    pub stdout: Stdout,
}

impl Case {
    /// A case with captured standard output and no outputs.
    pub fn new(name: &str, args: &[&str], exit: i32, expect: &str) -> Case {
        Case {
            name: name.to_owned(),
            args: args.iter().map(|s| (*s).to_owned()).collect(),
            files: Vec::new(),
            exit,
            expect: expect.split('|').map(str::to_owned).collect(),
            outputs: Vec::new(),
            outputs_on_failure: false,
            stdout: Stdout::Pipe,
        }
    }

    /// Adds an input file.
    pub fn file(mut self, path: &str, bytes: impl AsRef<[u8]>) -> Case {
        self.files.push((path.to_owned(), bytes.as_ref().to_vec()));
        self
    }

    /// Names an output a passing run leaves.
    pub fn output(mut self, path: &str) -> Case {
        self.outputs.push(path.to_owned());
        self
    }

    /// Names an output a failing run leaves on purpose (complete, never partial).
    pub fn output_on_failure(mut self, path: &str) -> Case {
        self.outputs.push(path.to_owned());
        self.outputs_on_failure = true;
        self
    }

    /// Sends standard output to `/dev/full`.
    pub fn stdout_full(mut self) -> Case {
        self.stdout = Stdout::Full;
        self
    }
}

/// Every path under `dir`, relative, folders with a trailing `/`.
fn tree(dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("list case folder").flatten() {
            let p = entry.path();
            let rel = p
                .strip_prefix(dir)
                .expect("under the case folder")
                .to_string_lossy()
                .into_owned();
            if p.is_dir() {
                out.insert(format!("{rel}/"));
                stack.push(p);
            } else {
                out.insert(rel);
            }
        }
    }
    out
}

/// Runs one case; returns a description of what went wrong, if anything.
fn run_case(case: &Case, root: &Path) -> Option<String> {
    let dir: PathBuf = root.join(&case.name);
    std::fs::create_dir_all(&dir).expect("case folder");
    for (path, bytes) in &case.files {
        let p = dir.join(path);
        if path.ends_with('/') {
            std::fs::create_dir_all(&p).expect("input folder");
            continue;
        }
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("input parent");
        }
        std::fs::write(&p, bytes).expect("input file");
    }
    let before = tree(&dir);
    let stdout = match case.stdout {
        Stdout::Pipe => Stdio::piped(),
        Stdout::Full => Stdio::from(std::fs::File::create("/dev/full").expect("/dev/full")),
    };
    let child = Command::new(env!("CARGO_BIN_EXE_natsim"))
        .args(&case.args)
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn natsim");
    // No hang: a case gets 60 s (each takes well under a second on an idle machine). The
    // output is read while the child runs, so a long report cannot fill the pipe and block it.
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(out) => out.expect("natsim output"),
        Err(_) => {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            return Some(format!("{}: hung for 60 s", case.name));
        }
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut problems = Vec::new();
    match out.status.code() {
        None => problems.push(format!("killed by a signal ({:?})", out.status)),
        Some(101) => problems.push("panicked (exit 101)".to_owned()),
        Some(c) if c != case.exit => problems.push(format!("exit {c}, expected {}", case.exit)),
        Some(_) => {}
    }
    if text.contains("panicked") || text.contains("RUST_BACKTRACE") {
        problems.push("panic message printed".to_owned());
    }
    for piece in &case.expect {
        if !text.contains(piece.as_str()) {
            problems.push(format!("output lacks {piece:?}"));
        }
    }
    let after = tree(&dir);
    let new: BTreeSet<&String> = after.difference(&before).collect();
    let expected: BTreeSet<&String> = if case.exit == 0 || case.outputs_on_failure {
        case.outputs.iter().collect()
    } else {
        BTreeSet::new()
    };
    if new != expected {
        problems.push(format!("left {new:?}, expected {expected:?}"));
    }
    for f in &new {
        let p = dir.join(f);
        if p.is_file() && std::fs::metadata(&p).map_or(0, |m| m.len()) == 0 {
            problems.push(format!("empty output {f}"));
        }
    }
    if problems.is_empty() {
        None
    } else {
        Some(format!(
            "{}: natsim {}\n    {}\n    output: {}",
            case.name,
            case.args.join(" "),
            problems.join("; "),
            text.lines()
                .take(6)
                .collect::<Vec<_>>()
                .join("\n            ")
        ))
    }
}

#[test]
fn hostile_inputs_fail_cleanly_with_located_messages_and_no_partial_outputs() {
    let all = cases();
    let names: BTreeSet<&str> = all.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names.len(), all.len(), "case names are unique");
    assert!(all.len() >= 150, "the corpus has {} cases", all.len());
    let root = tempfile::tempdir().expect("temp dir");
    let failures: Vec<String> = all
        .iter()
        .filter_map(|c| run_case(c, root.path()))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} hostile cases failed:\n{}",
        failures.len(),
        all.len(),
        failures.join("\n")
    );
}
