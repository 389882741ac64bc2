//! Acceptance of issue 5, fuzz half: the `sim_world` fuzz target finds a deliberately broken
//! gateway (the leaky filter of `check::broken`), and the input it found becomes, through
//! `natsim swarm --from-fuzz`'s path (decode → run → minimise → write), a scenario file that
//! reproduces the failure with that dataplane and passes with the real gateway.
//!
//! The input under `fuzz/broken/leaky-filter/` was found by a real `cargo fuzz run -s none
//! sim_world` with `NATSIM_FUZZ_BROKEN=leaky-filter`, started from the seed corpus
//! (`scripts/fuzz-find-broken.sh` repeats that search in CI).

use std::path::Path;

use natsim::scenario::load;
use natsim::swarm::cli::MAX_SHRINK_RUNS;
use natsim::swarm::from_fuzz::{from_fuzz, scenario_path};
use natsim::swarm::{Target, run_case};

mod leaky;
use leaky::out_dir;

const FOUND: &str = "fuzz/broken/leaky-filter/sim_world-found-by-libfuzzer";

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

    leaky::assert_reproduces_the_leak_and_passes_the_real_gateway(&sc);
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
