//! Report determinism, thread-count independence and the simulator hook.

use std::collections::BTreeMap;
use std::path::Path;

use natsim::plan::{
    Comparison, Plan, PointParams, SimulatedPoint, plan_cmd_no_sim, plan_cmd_with, render, run_plan,
};

const SMALL: &str = "\
apiVersion: natsim.dev/v1
kind: Plan
metadata:
  name: small
  description: Two P values, three rates.
fleet:
  nics: 2000
  traffic:
    flow_rate_per_s: 1
    flow_duration: {dist: exponential, mean_s: 10}
    close_fraction: 0.99
    destinations: {count: 10, zipf_s: 1}
    protocol_mix: {tcp: 0.9, udp: 0.1}
gateway:
  ports_per_nic: 64
  ips: 2
  profile: dpservice
target:
  blocking_max: 0.01
sweep:
  - param: gateway.ports_per_nic
    values: [64, 1024]
  - param: fleet.traffic.flow_rate_per_s
    from: 0.5
    to: 1.5
    step: 0.5
report:
  plots:
    - file: blocking.svg
      x: fleet.traffic.flow_rate_per_s
      y: blocking_hot
      series: gateway.ports_per_nic
      log_y: true
    - file: ips.svg
      x: gateway.ports_per_nic
      y: ips_needed
      filter: {fleet.traffic.flow_rate_per_s: 1}
      log_x: true
";

fn small() -> Plan {
    Plan::parse(SMALL, "small.yaml").expect("valid plan")
}

#[test]
fn same_plan_twice_gives_identical_bytes() {
    let dir = std::env::temp_dir().join(format!("natsim-plan-det-{}", std::process::id()));
    for name in ["ips-for-5000-nics", "dns-under-profiles"] {
        let plan = Path::new("plans").join(format!("{name}.yaml"));
        let a = dir.join(format!("{name}-a"));
        let b = dir.join(format!("{name}-b"));
        let out_a = plan_cmd_no_sim(&plan, &a, Some(1)).expect("first run");
        let out_b = plan_cmd_no_sim(&plan, &b, Some(2)).expect("second run");
        assert_eq!(out_a.files.len(), out_b.files.len());
        assert!(out_a.files.len() >= 3, "md, json and at least one svg");
        for (fa, fb) in out_a.files.iter().zip(&out_b.files) {
            assert_eq!(fa.file_name(), fb.file_name());
            let (ba, bb) = (
                std::fs::read(fa).expect("read"),
                std::fs::read(fb).expect("read"),
            );
            assert!(ba == bb, "{} differs between runs", fa.display());
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn results_do_not_depend_on_thread_count() {
    let plan = Plan::load(Path::new("plans/dns-under-profiles.yaml")).expect("valid");
    let one = run_plan(&plan, None, 1);
    for jobs in [2, 3, 8, 1000] {
        let many = run_plan(&plan, None, jobs);
        assert_eq!(one, many, "jobs = {jobs}");
        assert_eq!(render(&plan, &one), render(&plan, &many));
    }
    let indices: Vec<usize> = one.points.iter().map(|p| p.params.index).collect();
    assert_eq!(indices, (0..plan.points.len()).collect::<Vec<_>>());
}

#[test]
fn report_without_simulation_says_not_run() {
    let plan = small();
    let result = run_plan(&plan, None, 2);
    assert!(result.points.iter().all(|p| p.simulated.is_none()));
    assert!(
        result
            .points
            .iter()
            .all(|p| p.comparison == Comparison::NotRun)
    );
    let report = render(&plan, &result).expect("renders");
    assert!(report.markdown.contains("simulation: not run"));
    assert!(report.json.contains("\"simulation\": \"not run\""));
    assert_eq!(report.svgs.len(), 2);
    for (name, svg) in &report.svgs {
        assert!(svg.starts_with("<svg"), "{name}");
        // Human axis titles with units, never raw parameter paths.
        assert!(
            svg.contains("new flows per second per NIC") || svg.contains("ports per NIC (P)"),
            "{name}"
        );
        assert!(
            !svg.contains("fleet.traffic.") && !svg.contains("gateway."),
            "{name}"
        );
    }
    // The filtered plot names its pin in the title.
    let ips = &report.svgs[1].1;
    assert!(
        ips.contains("(flows/s per NIC = 1)"),
        "filter pin in the title"
    );
    insta::assert_snapshot!("plan_small_report_md", report.markdown);
}

#[test]
fn json_is_valid_and_keeps_key_order() {
    let plan = small();
    let report = render(&plan, &run_plan(&plan, None, 1)).expect("renders");
    let value: serde_json::Value = serde_json::from_str(&report.json).expect("valid json");
    assert_eq!(value["kind"], "PlanReport");
    assert_eq!(value["points"].as_array().map(Vec::len), Some(6));
    let first = &value["points"][0]["analytic"];
    assert_eq!(first["nics_per_ip"], 1008);
    assert_eq!(first["ips_needed"], 2);
    // Key order is the struct order: coordinates, analytic, simulated, comparison, decision.
    let text = &report.json;
    let order = [
        "\"coordinates\"",
        "\"analytic\"",
        "\"simulated\"",
        "\"comparison\"",
        "\"decision\"",
    ]
    .map(|k| text.find(k).expect("key present"));
    assert!(order.windows(2).all(|w| w[0] < w[1]));
}

/// A stand-in simulator for testing the hook's plumbing only: it reports a blocking equal to
/// the analytic fleet figure on even points and 10 points higher on odd ones.
fn stand_in(point: &PointParams) -> Result<SimulatedPoint, String> {
    let analytic = natsim::plan::evaluate(point).blocking_fleet;
    let offered = 1_000_000_u64;
    let shift = if point.index.is_multiple_of(2) {
        0.0
    } else {
        0.1
    };
    let refused = ((analytic + shift).min(1.0) * offered as f64).round() as u64;
    Ok(SimulatedPoint {
        flows_offered: offered,
        flows_refused: refused,
        drops_by_reason: BTreeMap::from([("ports_exhausted".to_string(), refused)]),
        refused_by_reason: BTreeMap::from([("ports_exhausted".to_string(), refused)]),
        ..SimulatedPoint::default()
    })
}

#[test]
fn simulator_hook_is_compared_and_flagged() {
    let plan = small();
    let result = run_plan(&plan, Some(&stand_in), 3);
    assert!(result.simulated);
    for p in &result.points {
        match &p.comparison {
            Comparison::Compared { agrees, .. } => {
                assert_eq!(*agrees, p.params.index.is_multiple_of(2))
            }
            other => panic!("expected a comparison, got {other:?}"),
        }
    }
    assert_eq!(result.disagreements(), 3);
    let report = render(&plan, &result).expect("renders");
    assert!(report.markdown.contains("DISAGREES"));
    assert!(report.markdown.contains("**Answer.**"));
    assert!(report.markdown.contains("ports_exhausted="));
    // Same answer on one thread.
    assert_eq!(result, run_plan(&plan, Some(&stand_in), 1));
}

#[test]
fn plan_cmd_with_hook_writes_files() {
    let dir = std::env::temp_dir().join(format!("natsim-plan-hook-{}", std::process::id()));
    let plan_path = dir.join("small.yaml");
    std::fs::create_dir_all(&dir).expect("tmp dir");
    std::fs::write(&plan_path, SMALL).expect("write plan");
    let out = plan_cmd_with(&plan_path, &dir.join("out"), Some(2), Some(&stand_in)).expect("runs");
    assert_eq!(out.points, 6);
    assert_eq!(out.disagreements, 3);
    let names: Vec<String> = out
        .files
        .iter()
        .filter_map(|f| f.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    assert_eq!(
        names,
        ["report.md", "report.json", "blocking.svg", "ips.svg"]
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn report_json_grows_in_proportion_to_points() {
    // No per-point blob is repeated: ten times the points, about ten times the bytes.
    let plan_of = |points: usize| {
        let text = SMALL.replace("to: 1.5", &format!("to: {}", points as f64 * 0.5));
        Plan::parse(&text, "small.yaml").expect("valid plan")
    };
    let size = |plan: &Plan| {
        render(plan, &run_plan(plan, None, 1))
            .expect("renders")
            .json
            .len() as f64
    };
    let (small, large) = (plan_of(10), plan_of(100));
    let (a, b) = (size(&small), size(&large));
    let per_point = (b - a) / (large.points.len() - small.points.len()) as f64;
    assert!(per_point < 4000.0, "{per_point} bytes per point");
    assert!(b / a > 5.0 && b / a < 11.0, "{a} -> {b}");
    let first: serde_json::Value = serde_json::from_str(
        &render(&small, &run_plan(&small, None, 1))
            .expect("renders")
            .json,
    )
    .expect("valid json");
    assert!(first["points"][0].get("params").is_none());
    assert_eq!(first["first_point_params"]["nics"], 2000);
}
