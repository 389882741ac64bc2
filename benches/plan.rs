//! Cost of one simulated plan point: the 1,000-NIC fleet of `plans/bench-50-points.yaml` at
//! P = 2048 and 8 new flows per second per NIC (a sample sized to the 100,000-flow budget,
//! 300 s of virtual time), analytic model excluded.
//!
//! `cargo bench --bench plan`.

use std::path::Path;

use criterion::Criterion;
use natsim::plan::{Plan, simulate};

fn main() {
    let plan = Plan::load(Path::new("plans/bench-50-points.yaml")).expect("bench plan");
    let point = plan
        .points
        .iter()
        .find(|p| {
            p.coordinate("gateway.ports_per_nic") == Some("2048")
                && p.coordinate("fleet.traffic.flow_rate_per_s") == Some("8")
        })
        .expect("the P = 2048, 8/s point")
        .clone();
    let mut c = Criterion::default().sample_size(10).configure_from_args();
    c.bench_function("simulate one plan point (1000 NICs, 8/s, 300 s)", |b| {
        b.iter(|| simulate(&point).expect("simulates"))
    });
    c.final_summary();
}
