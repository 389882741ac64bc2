//! The simulator hook: runs a plan point in natsim's deterministic simulator and measures what
//! the analytic model predicts (refused flows, ports in use).
//!
//! | module | job |
//! |---|---|
//! | [`sample`] | which NICs run, fleet scaling (strata: NICs with and without a block) |
//! | [`scenario`] | the point as a scenario file: NICs, destinations, gateway, workload |
//! | [`meter`] | the observer that counts refusals, drops and ports after warm-up |
//!
//! The run: load the scenario with the public loader, run to the end of warm-up, snapshot the
//! generators, run to the end, and scale each stratum's counts to the fleet. Everything derives
//! from `point.seed`, so a point gives the same numbers on any thread and with any `--jobs`.
//! `docs/planning.md` ("Simulation") documents the choices and where the two answers differ.

pub mod meter;
pub mod sample;
pub mod scenario;

use std::collections::BTreeMap;
use std::path::Path;

use self::meter::Meter;
use self::sample::Sample;
use self::scenario::Built;
use super::interval;
use super::params::PointParams;
use super::run::{SimSample, SimulatedPoint};
use crate::sim::engine::GeneratorStats;
use crate::sim::{RunEnd, Simulator, real_gateway};

/// Longest wait between two SYNs of one TCP client (200 ms RTO doubled six times is 6.4 s),
/// with margin: refusals of one flow closer than this are one refused flow.
const TCP_REFUSAL_GAP_NS: u64 = 30_000_000_000;
/// Ephemeral source ports a simulated host cycles through (32768..=60999).
const EPHEMERAL_PORTS: f64 = 28_232.0;
/// The TCP gap never goes below the retransmission wait.
const TCP_REFUSAL_GAP_MIN_NS: u64 = 7_000_000_000;

fn secs_to_ns(s: f64) -> u64 {
    // Saturating cast: plan validation keeps durations finite and non-negative.
    (s * 1e9).round() as u64
}

/// Generator flows started, by stratum (allocated, unallocated).
fn started(stats: &[(String, GeneratorStats)]) -> [u64; 2] {
    let mut out = [0, 0];
    for (name, s) in stats {
        if name.ends_with("-a") {
            out[0] += s.started;
        } else if name.ends_with("-c") {
            out[1] += s.started;
        }
    }
    out
}

fn scaled(value: u64, scale: f64) -> f64 {
    value as f64 * scale
}

/// The fleet blocking's interval: the allocated NICs' blocking interval mapped through the
/// stratified estimate `(offered_a × b + refused_c) / (offered_a + offered_c)`, with the
/// unallocated stratum (which refuses everything, `no_nat_block`) taken as exact.
/// `offered` is fleet-scaled per stratum; `flows` the sampled flows behind the figure.
fn fleet_interval(
    allocated: &[interval::Counts],
    offered: [f64; 2],
    refused_unallocated: f64,
    flows: u64,
) -> Option<interval::Interval> {
    let total = offered[0] + offered[1];
    if total <= 0.0 {
        return None;
    }
    let fleet = |b: f64| (offered[0] * b + refused_unallocated) / total;
    let (low, high) = match interval::interval(allocated) {
        Some(i) => (fleet(i.low), fleet(i.high)),
        None => (fleet(0.0), fleet(0.0)),
    };
    Some(interval::Interval {
        low: low.clamp(0.0, 1.0),
        high: high.clamp(0.0, 1.0),
        flows,
    })
}

/// Runs `point` in the simulator. `Err` names why the point cannot be simulated (pooled
/// AWS/Azure rules) or what went wrong building or running it.
pub fn simulate(point: &PointParams) -> Result<SimulatedPoint, String> {
    let sample = Sample::of(point)?;
    let Built {
        doc,
        strata,
        unclosed_offered,
        interval_ms,
    } = scenario::build(point, &sample);
    let name = format!("plan-point-{}.yaml", point.index);
    let sc = crate::scenario::load_doc(Path::new(&name), doc)
        .map_err(|e| format!("building the scenario: {e}"))?;
    if strata.len() != sc.sim.nics.len() {
        return Err(format!(
            "building the scenario: {} NICs planned, {} loaded",
            strata.len(),
            sc.sim.nics.len()
        ));
    }
    let warmup_ns = secs_to_ns(point.simulation.warmup_s);
    let end_ns = secs_to_ns(point.simulation.duration_s);
    // A flow's source port comes back after the host cycled through every ephemeral port; the
    // gap must stay shorter than that or two flows would merge.
    let wrap_ns = secs_to_ns(EPHEMERAL_PORTS / point.traffic.flow_rate_per_s.max(1e-9) / 2.0);
    let tcp_gap_ns = TCP_REFUSAL_GAP_NS.min(wrap_ns).max(TCP_REFUSAL_GAP_MIN_NS);
    let other_gap_ns = interval_ms * 1_000_000 + 1_000_000_000;
    let meter = Box::new(Meter::new(
        warmup_ns,
        end_ns,
        point.gateway.limit_scope,
        strata,
        tcp_gap_ns,
        other_gap_ns,
    ));
    let mut sim = Simulator::new(sc.sim, Box::new(real_gateway), vec![meter])
        .map_err(|e| format!("starting the simulator: {e}"))?;
    let check = |end: RunEnd| match end {
        RunEnd::Idle | RunEnd::Duration => Ok(()),
        other => Err(format!("the simulation stopped early ({other:?})")),
    };
    check(sim.run_until(warmup_ns))?;
    let before = started(&sim.generator_results());
    check(sim.run())?;
    let after = started(&sim.generator_results());
    let events = sim.stats().events;
    let mut meter = sim
        .take_observer::<Meter>()
        .ok_or("the simulator lost its meter")?;
    drop(sim);
    meter.finish(end_ns);

    let offered = [
        after[0] - before[0] + unclosed_offered[0],
        after[1] - before[1] + unclosed_offered[1],
    ];
    let scales = [sample.scale_allocated(), sample.scale_unallocated()];
    let mut refused_by_reason: BTreeMap<String, f64> = BTreeMap::new();
    let mut drops_by_reason: BTreeMap<String, f64> = BTreeMap::new();
    let mut refused_sampled = 0;
    for (counts, scale) in meter.counts.iter().zip(scales) {
        for (&reason, &n) in &counts.refused {
            refused_sampled += n;
            *refused_by_reason.entry(reason.to_string()).or_default() += scaled(n, scale);
        }
        for (&reason, &n) in &counts.drops {
            *drops_by_reason.entry(reason.to_string()).or_default() += scaled(n, scale);
        }
    }
    let round = |m: BTreeMap<String, f64>| -> BTreeMap<String, u64> {
        m.into_iter().map(|(k, v)| (k, v.round() as u64)).collect()
    };
    let flows_offered = (scaled(offered[0], scales[0]) + scaled(offered[1], scales[1])).round();
    let flows_refused: f64 = refused_by_reason.values().sum();
    let window_ns = end_ns.saturating_sub(warmup_ns).max(1);
    let per_nic = u128::from(window_ns) * u128::from(sample.allocated.max(1));
    let (total_port_ns, hot_port_ns) = meter.mean_port_ns();
    let hot_batches = meter.blocking_hot();
    let blocking_hot_interval = hot_batches.as_ref().and_then(|b| interval::interval(b));
    let blocking_interval = fleet_interval(
        &meter.allocated_flows(),
        [scaled(offered[0], scales[0]), scaled(offered[1], scales[1])],
        meter.counts[1].refused.values().sum::<u64>() as f64 * scales[1],
        offered[0] + offered[1],
    );
    Ok(SimulatedPoint {
        flows_offered: flows_offered as u64,
        flows_refused: flows_refused.round() as u64,
        drops_by_reason: round(drops_by_reason),
        peak_ports_in_use_nic: meter.peak_nic,
        peak_ports_in_use_key: meter.peak_key,
        blocking_hot: hot_batches.and_then(|b| interval::sum(&b).ratio()),
        blocking_hot_interval,
        blocking_interval,
        mean_ports_in_use_nic: total_port_ns as f64 / per_nic as f64,
        mean_ports_in_use_hot_key: hot_port_ns as f64 / per_nic as f64,
        refused_by_reason: round(refused_by_reason),
        sample: SimSample {
            nics_allocated: sample.allocated,
            scale_allocated: scales[0],
            nics_unallocated: sample.unallocated,
            scale_unallocated: scales[1],
            nics_filler: sample.filler,
            duration_s: point.simulation.duration_s,
            warmup_s: point.simulation.warmup_s,
            flows_offered_sampled: offered[0] + offered[1],
            flows_refused_sampled: refused_sampled,
            events,
        },
    })
}
