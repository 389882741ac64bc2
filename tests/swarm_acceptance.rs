//! Acceptance of `natsim swarm` (issue 5): the swarm finds a deliberately broken gateway (the
//! leaky filter of `check::broken`) within 1,000 seeds, the minimised scenario it writes
//! reproduces the failure when loaded and run with the same dataplane, and the real gateway
//! passes the same kind of seed range.

use natsim::check::broken::Breakage;
use natsim::scenario::load;
use natsim::swarm::{SwarmOptions, Target, swarm};

mod leaky;
use leaky::out_dir;

#[test]
fn the_swarm_finds_a_leaky_filter_and_its_minimised_scenario_reproduces() {
    let mut opts = SwarmOptions::new(0..1_000);
    opts.jobs = 2;
    opts.out_dir = out_dir("swarm-leaky");
    opts.target = Target::broken("leaky-filter").expect("known");
    opts.stop_at_first_failure = true;
    opts.minimise_first = 1;
    let mut printed = Vec::new();
    let report = swarm(&opts, &mut printed);
    let printed = String::from_utf8(printed).expect("utf-8");

    let first = report
        .failures()
        .next()
        .unwrap_or_else(|| panic!("the leaky filter was not found in 1,000 seeds:\n{printed}"));
    let failure = first.outcome.failure.clone().expect("a failure");
    assert_eq!(failure.invariant, "no-inbound-initiation", "{printed}");
    assert_eq!(failure.exit_code, 4);
    assert_eq!(report.exit_code, 4);
    // Seed first, every derived parameter, then the verdict; one line per seed up to the find.
    assert_eq!(report.results.len() as u64, first.seed + 1);
    let line = format!("seed {}: ", first.seed);
    assert!(
        printed.contains(&line) && printed.contains("P="),
        "{printed}"
    );

    let rep = report.reproductions.first().expect("minimised");
    assert!(rep.verified, "{printed}");
    assert!(rep.size_after < rep.size_before, "{rep:?}");
    assert!(rep.size_after <= 6, "not minimal enough: {rep:?}");
    println!(
        "leaky filter found at seed {} (of {} run); minimised {} -> {} list items in {} runs",
        first.seed,
        report.results.len(),
        rep.size_before,
        rep.size_after,
        rep.runs
    );

    // The written file is an ordinary scenario: load it and run it with the same broken
    // dataplane: the same invariant breaks, with the file's own seed.
    let text = std::fs::read_to_string(&rep.path).expect("written");
    println!("{text}");
    assert!(text.contains(&format!("seed: {}", first.seed)), "{text}");
    let sc = load(&rep.path).unwrap_or_else(|e| panic!("{e}"));
    leaky::assert_reproduces_the_leak_and_passes_the_real_gateway(&sc);
    let _ = std::fs::remove_dir_all(&opts.out_dir);
}

#[test]
fn the_real_gateway_passes_the_swarm() {
    let mut opts = SwarmOptions::new(0..200);
    opts.jobs = 2;
    opts.out_dir = out_dir("swarm-real");
    let mut printed = Vec::new();
    let report = swarm(&opts, &mut printed);
    let printed = String::from_utf8(printed).expect("utf-8");
    assert_eq!(report.failures().count(), 0, "{printed}");
    assert_eq!(report.exit_code, 0);
    assert_eq!(report.results.len(), 200);
    assert!(printed.contains("swarm: 200 seeds, 0 failed"), "{printed}");
    assert!(
        !opts.out_dir.exists(),
        "nothing to write for a passing swarm"
    );
}

/// Every deliberately broken gateway is found within 500 seeds (issue 11), as the invariant
/// meant to catch it or another one that the same breakage trips first.
#[test]
fn the_swarm_finds_every_broken_gateway() {
    for b in Breakage::ALL {
        let (name, meant) = (b.name(), b.invariant().name());
        let mut opts = SwarmOptions::new(0..500);
        opts.jobs = 2;
        opts.out_dir = out_dir(&format!("swarm-{name}"));
        opts.target = Target::broken(name).expect("known");
        opts.stop_at_first_failure = true;
        opts.minimise_first = 0;
        let report = swarm(&opts, &mut Vec::new());
        let found = report.failures().next().unwrap_or_else(|| {
            panic!("{name} not found in 500 seeds");
        });
        let inv = found
            .outcome
            .failure
            .as_ref()
            .map(|f| f.invariant.clone())
            .unwrap_or_default();
        println!(
            "{name}: seed {} violates {inv} (meant: {meant})",
            found.seed
        );
        assert_eq!(found.outcome.exit_code, 4, "{name}: {inv}");
    }
}
