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

#[test]
fn same_seed_gives_identical_reports_and_other_seeds_still_pass() {
    for name in [
        "lossy-links",
        "workload-mix",
        "distributed-dataplane",
        "rst-inject",
        "link-flap",
    ] {
        let path = Path::new("scenarios").join(format!("{name}.yaml"));
        let a = run(&path, None);
        let b = run(&path, None);
        assert_eq!(a.digest, b.digest, "{name}");
        let ja = serde_json::to_string_pretty(&a).expect("json");
        let jb = serde_json::to_string_pretty(&b).expect("json");
        assert_eq!(ja, jb, "{name}: report not byte-identical");
        for seed in [2, 3, 99] {
            let c = run(&path, Some(seed));
            assert_eq!(c.exit_code, 0, "{name} seed {seed}: {}", summary(&c));
            assert_eq!(c.seed, seed);
            assert_ne!(
                c.digest, a.digest,
                "{name}: seed {seed} gave the seed-1 trace"
            );
        }
    }
}

#[test]
fn adding_a_host_does_not_change_other_components_draws() {
    use natsim::sim::config::{NicSpec, RemoteSpec};
    use natsim::sim::{Simulator, real_gateway};
    let sc = load(Path::new("scenarios/lossy-links.yaml")).expect("loads");
    let digest = |cfg: natsim::sim::SimConfig| {
        let mut sim = Simulator::new(cfg, Box::new(real_gateway), Vec::new()).expect("builds");
        sim.run();
        sim.digest()
    };
    let base = digest(sc.sim.clone());
    let mut more = sc.sim.clone();
    more.remotes.push(RemoteSpec {
        name: "zz-extra".into(),
        addresses: vec!["198.51.100.99".parse().expect("ip")],
        services: Vec::new(),
        link: natsim::sim::link::LinkConfig::default(),
    });
    let mut nic: NicSpec = more.nics[0].clone();
    nic.name = "zz-nic".into();
    nic.addresses = vec!["10.0.0.99".parse().expect("ip")];
    more.nics.push(nic);
    assert_eq!(digest(more), base, "an idle extra host changed the trace");
}
