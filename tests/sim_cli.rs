//! The `run` / `check` / `schema` entry points: exit codes, error messages with file, line and
//! field, JSON report and pcapng output.

use std::path::Path;

use natsim::scenario::cli::{check_cmd_to, run_cmd_to};

fn run(path: &str, seed: Option<u64>) -> (u8, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run_cmd_to(&mut out, &mut err, Path::new(path), seed, None, None);
    (
        code.0,
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
    )
}

#[test]
fn run_prints_a_summary_and_exits_zero_on_a_passing_scenario() {
    let (code, out, err) = run("scenarios/tcp-basic.yaml", None);
    println!("{out}{err}");
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.starts_with("scenario tcp-basic (scenarios/tcp-basic.yaml) seed 1"),
        "{out}"
    );
}
