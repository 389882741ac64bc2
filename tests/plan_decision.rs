//! One verdict per point, consistent with its recommendation and its own simulated figure
//! (docs/planning.md "Verdict and recommendation"). A sweep over P × rate × profile × protocol
//! runs in the real simulator and every point is checked.

use std::collections::BTreeMap;

use natsim::plan::decide::Basis;
use natsim::plan::{Plan, PointParams, PointResult, SimulatedPoint, run_plan, simulate};

/// Checks that a point's verdict does not contradict its recommendation or its simulation.
fn assert_consistent(p: &PointResult) {
    let (a, d, target) = (&p.analytic, &p.decision, p.params.blocking_max);
    let at = format!("point {} ({:?})", p.params.index, p.params.coordinates);
    // The judged figure is the worse of both answers.
    assert!(d.blocking >= a.blocking_hot, "{at}: {d:?}");
    if let Some(sim) = p.simulated.as_ref().and_then(|s| s.blocking_hot) {
        assert!(
            d.blocking >= sim,
            "{at}: judged {} < simulated {sim}",
            d.blocking
        );
    }
    assert_eq!(d.ok, d.reasons.is_empty(), "{at}: {d:?}");
    if d.ok {
        assert!(d.blocking <= target, "{at}");
        if let Some(sim) = p.simulated.as_ref().and_then(|s| s.blocking_hot) {
            assert!(sim <= target, "{at}: ok at a simulated {sim}");
        }
    }
    let Some(p_eff) = a.ports_per_nic_effective else {
        return;
    };
    let ips = p.params.gateway.ips;
    match (d.recommended_ports_per_nic, d.recommended_ips) {
        (Some(rec_p), Some(rec_ips)) => {
            if d.ok {
                // An ok point never needs more than it has.
                assert!(
                    rec_p <= p_eff,
                    "{at}: ok but recommends P = {rec_p} > {p_eff}"
                );
                assert!(a.ips_needed.is_some_and(|n| n <= ips), "{at}");
            } else {
                // A failing point is never told to keep what it has.
                assert!(
                    !(rec_p == p_eff && rec_ips <= ips),
                    "{at}: FAIL but recommends its own P = {p_eff} and {rec_ips} ≤ {ips} IPs"
                );
            }
            if d.blocking > target {
                assert!(
                    rec_p > p_eff,
                    "{at}: blocks {} but recommends P = {rec_p}",
                    d.blocking
                );
            }
        }
        (None, _) => assert!(!d.ok, "{at}: ok but no P meets the target"),
        (Some(_), None) => panic!("{at}: a P without IPs"),
    }
}

const SWEEP: &str = "\
apiVersion: natsim.dev/v1
kind: Plan
metadata: {name: decision-sweep}
seed: 5
fleet:
  nics: 40
  traffic:
    flow_rate_per_s: 1
    flow_duration: {dist: exponential, mean_s: 5}
    destinations: {count: 4, zipf_s: 1}
    protocol_mix: {tcp: 1}
gateway: {rules: ironcore, ports_per_nic: 64, ips: 1}
target: {blocking_max: 0.01}
sweep:
  - param: gateway.ports_per_nic
    values: [32, 128]
  - param: fleet.traffic.flow_rate_per_s
    values: [0.5, 2, 8]
  - param: gateway.profile
    values: [dpservice, rfc]
  - param: fleet.traffic.protocol_mix.udp
    values: [0, 1]
simulation: {duration_s: 120, warmup_s: 60}
";

#[test]
fn verdict_never_contradicts_recommendation_or_simulation() {
    let plan = Plan::parse(SWEEP, "decision-sweep.yaml").expect("valid plan");
    assert_eq!(plan.points.len(), 24);
    let result = run_plan(&plan, Some(&simulate), 2);
    let mut judged_on_sim = 0;
    for p in &result.points {
        assert!(p.simulated.is_some(), "point {} simulated", p.params.index);
        assert_consistent(p);
        judged_on_sim += usize::from(p.decision.basis == Basis::Simulated);
    }
    // The sweep reaches the regime where retries and the aging scan block more than Erlang-B.
    assert!(judged_on_sim > 0);
}

/// A stand-in that reports a hot-key blocking `factor` × Erlang-B (capped at 1) with a tight
/// interval, to exercise the decision without the simulator's cost.
fn worse(point: &PointParams) -> Result<SimulatedPoint, String> {
    let a = natsim::plan::evaluate(point);
    let factor = [0.5, 1.0, 3.0, 40.0][point.index % 4];
    let hot = (a.blocking_hot * factor + if factor > 1.0 { 0.004 } else { 0.0 }).min(1.0);
    let offered = 1_000_000_u64;
    let refused = (hot * offered as f64).round() as u64;
    Ok(SimulatedPoint {
        flows_offered: offered,
        flows_refused: refused,
        blocking_hot: Some(hot),
        refused_by_reason: BTreeMap::from([("ports_exhausted".to_string(), refused)]),
        ..SimulatedPoint::default()
    })
}

#[test]
fn worse_simulation_decides_verdict_and_recommendation() {
    let text = SWEEP.replace("values: [0, 1]", "values: [0, 0.5, 1]");
    let plan = Plan::parse(&text, "decision-sweep.yaml").expect("valid plan");
    let result = run_plan(&plan, Some(&worse), 2);
    for p in &result.points {
        assert_consistent(p);
        let sim = p.simulated.as_ref().and_then(|s| s.blocking_hot);
        if sim.is_some_and(|s| s > p.analytic.blocking_hot) {
            assert_eq!(p.decision.basis, Basis::Simulated);
            assert!(p.decision.why.is_some(), "explained next to the row");
        } else {
            assert_eq!(p.decision.basis, Basis::ErlangB);
        }
    }
}

#[test]
fn little_law_is_not_a_second_verdict() {
    // Issue 18's example: P = 32768, 30 s hold, 1095 flows/s: offered 32850 Erlangs exceed the
    // ports, yet Erlang-B blocks 0.61 % < 1 %: one verdict, ok, consistent with P = 32768.
    let text = "\
apiVersion: natsim.dev/v1
kind: Plan
metadata: {name: littles}
fleet:
  nics: 1
  traffic:
    flow_rate_per_s: 1095
    flow_duration: {dist: fixed, mean_s: 0}
    protocol_mix: {tcp: 1}
gateway:
  ports_per_nic: 32768
  profile: dpservice
  limit_scope: nic
target: {blocking_max: 0.01}
";
    let plan = Plan::parse(text, "littles.yaml").expect("valid plan");
    let result = run_plan(&plan, None, 1);
    let p = &result.points[0];
    assert!(p.analytic.busy_ports_hot > 32768.0);
    assert!(p.analytic.carried_ports_hot <= 32768.0);
    assert!(p.decision.ok, "{:?}", p.decision);
    assert_eq!(p.decision.recommended_ports_per_nic, Some(32768));
    assert_consistent(p);
}
