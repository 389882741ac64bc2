//! Acceptance of issue 5, fuzz half: the `sim_world` fuzz target finds a deliberately broken
//! gateway (the leaky filter of `check::broken`), and the input it found becomes, through
//! `natsim swarm --from-fuzz`'s path (decode → run → minimise → write), a scenario file that
//! reproduces the failure with that dataplane and passes with the real gateway.
//!
//! The input under `fuzz/broken/leaky-filter/` was found by a real `cargo fuzz run -s none
//! sim_world` with `NATSIM_FUZZ_BROKEN=leaky-filter`, started from the seed corpus
//! (`scripts/fuzz-find-broken.sh` repeats that search in CI).

use std::path::{Path, PathBuf};

use natsim::check::broken::Breakage;
use natsim::scenario::report::summary;
use natsim::scenario::{load, run_scenario};
use natsim::sim::real_gateway;
use natsim::swarm::cli::MAX_SHRINK_RUNS;
use natsim::swarm::from_fuzz::{from_fuzz, scenario_path};
use natsim::swarm::run::DEFAULT_LEAKY_PORT;
use natsim::swarm::{Target, run_case};

const FOUND: &str = "fuzz/broken/leaky-filter/sim_world-found-by-libfuzzer";

fn out_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("natsim-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn fuzz_found_leaky_filter_minimises_to_a_reproducing_scenario() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(FOUND);
    let data = std::fs::read(&path).expect("the committed fuzz find");
    let target = Target::broken("leaky-filter").expect("known");
    let dir = out_dir("fuzz-leaky");

    let c = from_fuzz(&data, "found", target, &dir, MAX_SHRINK_RUNS);
    let failure = c.outcome.failure.clone().expect("the input fails");
    assert_eq!(
        failure.invariant, "no-inbound-initiation",
        "{}",
        c.outcome.detail
    );
    assert_eq!(failure.exit_code, 4);
    let rep = c.reproduction.expect("a reproduction is written");
    assert_eq!(rep.path, scenario_path(&dir, "found"));
    assert!(rep.verified, "{rep:?}");
    assert!(rep.size_after <= rep.size_before, "{rep:?}");
    println!(
        "fuzz input {} ({}): minimised {} -> {} list items in {} runs",
        FOUND, c.input, rep.size_before, rep.size_after, rep.runs
    );

    // The written file is an ordinary scenario file: its header says how to reproduce it.
    let text = std::fs::read_to_string(&rep.path).expect("written");
    println!("{text}");
    assert!(
        text.contains("# reproduce: natsim swarm --reproduce"),
        "{text}"
    );
    assert!(text.contains("--broken leaky-filter:1040"), "{text}");
    let sc = load(&rep.path).unwrap_or_else(|e| panic!("{e}"));

    // Against the leaky filter: the same invariant breaks.
    let breakage = Breakage::LeakyFilter {
        port: DEFAULT_LEAKY_PORT,
    };
    let bad = run_scenario(&sc, None, &move || breakage.factory())
        .expect("runs")
        .report;
    assert_eq!(bad.exit_code, 4, "{}", summary(&bad));
    assert_eq!(
        bad.violation.as_ref().map(|v| v.invariant),
        Some("no-inbound-initiation")
    );
    // With the real gateway (what `natsim run FILE` runs) it passes: the failure is the
    // dataplane's, not the scenario's.
    let good = run_scenario(&sc, None, &|| Box::new(real_gateway))
        .expect("runs")
        .report;
    assert_eq!(good.exit_code, 0, "{}", summary(&good));
    assert_eq!(run_case(&sc, Target::Real).failure, None);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_passing_fuzz_input_writes_nothing() {
    let dir = out_dir("fuzz-pass");
    let seed = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/sim_world/seed-v4-udp");
    let data = std::fs::read(seed).expect("seed input");
    let c = from_fuzz(&data, "seed", Target::Real, &dir, MAX_SHRINK_RUNS);
    assert_eq!(c.outcome.failure, None, "{}", c.outcome.detail);
    assert!(c.reproduction.is_none());
    assert!(!dir.exists(), "nothing to write for a passing input");
}
