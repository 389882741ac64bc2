//! The testbed's own strength, as mutation testing measures it (`scripts/mutants.sh testbed`):
//! the scenario library and 500 swarm seeds against the real gateway, with no unit test and no
//! behaviour-named gateway test involved. It runs in the normal suite too (a few seconds in
//! release): it is the suite's one statement that the whole library and 500 generated worlds
//! pass on the real gateway.

use std::path::Path;

use natsim::scenario::cli::check_cmd_to;
use natsim::swarm::{SwarmOptions, swarm};

/// Swarm seeds the testbed runs per mutant.
const SWARM_SEEDS: u64 = 500;

#[test]
fn scenario_library_and_500_swarm_seeds_pass_on_the_gateway() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let exit = check_cmd_to(&mut out, &mut err, &root.join("scenarios"), None);
    assert_eq!(
        exit.0,
        0,
        "scenario library failed:\n{}{}",
        String::from_utf8_lossy(&out),
        String::from_utf8_lossy(&err)
    );

    let dir = std::env::temp_dir().join(format!("natsim-testbed-{}", std::process::id()));
    let mut opts = SwarmOptions::new(0..SWARM_SEEDS);
    opts.out_dir = dir.clone();
    opts.stop_at_first_failure = true;
    opts.minimise_first = 0;
    let mut log = Vec::new();
    let report = swarm(&opts, &mut log);
    let _ = std::fs::remove_dir_all(&dir);
    let failed: Vec<u64> = report.failures().map(|r| r.seed).collect();
    assert!(
        failed.is_empty(),
        "swarm seeds failed: {failed:?}\n{}",
        String::from_utf8_lossy(&log)
    );
    assert_eq!(report.results.len() as u64, SWARM_SEEDS, "every seed ran");
}
