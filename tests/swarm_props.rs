//! Property tests over generated worlds (the same generator `natsim swarm` uses, wrapped in a
//! proptest strategy): every invariant holds on the real gateway, generated scenario files load
//! back to the same document, and vacuity guards show that each property's path was actually
//! reached by enough cases.

use std::cell::RefCell;
use std::path::Path;

use natsim::scenario::load_str;
use natsim::swarm::coverage::{Path as Reach, Tally};
use natsim::swarm::yaml::{round_trip, to_yaml};
use natsim::swarm::{Families, Features, SwarmOptions, Target, generate, run_case, swarm, world};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// A world: a seed and the features it uses (shrinking towards fewer features).
fn worlds() -> impl Strategy<Value = (u64, Features)> {
    let families = prop_oneof![Just(Families::V4), Just(Families::V6), Just(Families::Dual)];
    (any::<u64>(), families, any::<u32>())
        .prop_map(|(seed, fam, mask)| (seed, Features::from_mask(fam, mask)))
}

/// A deterministic runner: the same cases on every machine and every run.
fn runner(cases: u32) -> TestRunner {
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha))
}

/// Least share of cases (in percent) that must reach each guarded path.
const MIN_REACHED_PERCENT: u64 = 5;

#[test]
fn every_invariant_holds_on_generated_worlds_and_every_guarded_path_is_reached() {
    let tally = RefCell::new(Tally::default());
    let result = runner(300).run(&worlds(), |(seed, f)| {
        let doc = generate(seed, &f);
        let (text, sc) = round_trip(&doc, Path::new("generated.yaml"))
            .map_err(|e| TestCaseError::fail(format!("seed {seed} does not load: {e}")))?;
        let out = run_case(&sc, Target::Real);
        prop_assert!(
            out.failure.is_none(),
            "seed {seed} features {f}: {:?} {}\n{text}",
            out.failure,
            out.detail
        );
        tally.borrow_mut().add(out.reached);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let tally = tally.into_inner();
    println!("reached: {}", tally.line());
    for p in Reach::ALL {
        let n = tally.count(p);
        assert!(
            n * 100 >= tally.runs * MIN_REACHED_PERCENT,
            "vacuity guard: only {n} of {} generated cases reached {} (need {MIN_REACHED_PERCENT}%): {}",
            tally.runs,
            p.name(),
            tally.line()
        );
    }
}

#[test]
fn generated_scenario_files_load_back_to_the_same_document() {
    for seed in 0..300 {
        let (_, doc) = world(seed);
        let text = to_yaml(&doc, "header").unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        let sc = load_str(Path::new("x.yaml"), &text)
            .unwrap_or_else(|e| panic!("seed {seed}: {e}\n{text}"));
        let before = serde_json::to_value(&doc).expect("serialises");
        let after = serde_json::to_value(&sc.doc).expect("serialises");
        assert_eq!(before, after, "seed {seed}:\n{text}");
    }
}

#[test]
fn a_world_is_a_function_of_its_seed() {
    for seed in [0, 1, 17, 12_345, u64::MAX] {
        let a = to_yaml(&world(seed).1, "").expect("yaml");
        let b = to_yaml(&world(seed).1, "").expect("yaml");
        assert_eq!(a, b);
    }
    assert_ne!(
        to_yaml(&world(1).1, "").expect("yaml"),
        to_yaml(&world(2).1, "").expect("yaml")
    );
}

#[test]
fn the_swarm_output_does_not_depend_on_the_number_of_jobs() {
    let run = |jobs: usize, target: Target| {
        let mut opts = SwarmOptions::new(0..40);
        opts.jobs = jobs;
        opts.target = target;
        opts.minimise_first = 1;
        opts.max_shrink_runs = 30;
        opts.out_dir = std::env::temp_dir().join(format!(
            "natsim-swarm-jobs-{}-{jobs}-{}",
            std::process::id(),
            target.broken_arg().unwrap_or_default()
        ));
        let mut out = Vec::new();
        let report = swarm(&opts, &mut out);
        let _ = std::fs::remove_dir_all(&opts.out_dir);
        // The output names the output folder; compare without it.
        let text = String::from_utf8(out)
            .expect("utf-8")
            .replace(&opts.out_dir.display().to_string(), "OUT");
        (text, report.exit_code)
    };
    for target in [
        Target::Real,
        Target::broken("unstable-mapping").expect("known"),
    ] {
        let (one, code1) = run(1, target);
        let (three, code3) = run(3, target);
        assert_eq!(one, three);
        assert_eq!(code1, code3);
        assert!(one.contains("seed 39: "), "{one}");
    }
}
