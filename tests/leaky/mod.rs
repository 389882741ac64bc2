//! Shared by the swarm and fuzz acceptance tests: a written scenario reproduces the leaky
//! filter's failure, and the real gateway passes it.

use std::path::PathBuf;

use natsim::check::Invariant;
use natsim::check::broken::Breakage;
use natsim::scenario::report::summary;
use natsim::scenario::{Scenario, run_scenario};
use natsim::sim::real_gateway;
use natsim::swarm::run::DEFAULT_LEAKY_PORT;

/// A fresh scratch directory for one test.
pub fn out_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("natsim-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// Against the leaky filter the scenario breaks no-inbound-initiation (exit 4); with the real
/// gateway (what `natsim run FILE` runs) it passes: the failure is the dataplane's, not the
/// scenario's.
pub fn assert_reproduces_the_leak_and_passes_the_real_gateway(sc: &Scenario) {
    let breakage = Breakage::LeakyFilter {
        port: DEFAULT_LEAKY_PORT,
    };
    let bad = run_scenario(sc, None, &move || breakage.factory())
        .expect("runs")
        .report;
    assert_eq!(bad.exit_code, 4, "{}", summary(&bad));
    assert_eq!(
        bad.violation.as_ref().map(|v| v.invariant),
        Some(Invariant::NoInboundInitiation)
    );
    let good = run_scenario(sc, None, &|| Box::new(real_gateway))
        .expect("runs")
        .report;
    assert_eq!(good.exit_code, 0, "{}", summary(&good));
}
