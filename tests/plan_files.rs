//! Plan-file parsing: good files load, bad files fail naming file, line, column and field.

use natsim::plan::{Plan, PlanError};

const GOOD: &str = "\
apiVersion: natsim.dev/v1
kind: Plan
metadata:
  name: small
fleet:
  nics: 100
  traffic:
    flow_rate_per_s: 1
    flow_duration: {dist: exponential, mean_s: 10}
    destinations: {count: 4, zipf_s: 1}
    protocol_mix: {tcp: 1}
gateway:
  ports_per_nic: 64
  ips: 1
target:
  blocking_max: 0.01
";

fn error_of(text: &str) -> String {
    match Plan::parse(text, "bad.yaml") {
        Ok(plan) => panic!("expected an error, got {plan}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn good_plan_loads_with_defaults() {
    let plan = Plan::parse(GOOD, "good.yaml").expect("valid plan");
    assert_eq!(plan.points.len(), 1);
    let p = &plan.points[0];
    assert_eq!(p.nics, 100);
    assert_eq!(p.gateway.ports_per_nic_effective, Some(64));
    assert_eq!(p.traffic.close_fraction, 1.0);
    assert_eq!(p.gateway.profile.as_str(), "rfc");
    assert_eq!(p.gateway.limit_scope.name(), "remote-ip");
    assert_eq!(plan.seed, 1);
}

#[test]
fn worked_plans_load() {
    for name in ["ips-for-5000-nics", "dns-under-profiles", "providers"] {
        let path = std::path::PathBuf::from(format!("plans/{name}.yaml"));
        let plan = Plan::load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert!(!plan.points.is_empty(), "{name}");
        assert!(!plan.report.plots.is_empty(), "{name}");
    }
}

#[test]
fn missing_file_names_the_path() {
    let err =
        Plan::load(std::path::Path::new("plans/does-not-exist.yaml")).expect_err("no such file");
    assert!(matches!(err, PlanError::Io { .. }));
    assert!(err.to_string().starts_with("plans/does-not-exist.yaml: "));
}

#[test]
fn unknown_field_is_an_error() {
    let bad = GOOD.replace("    flow_rate_per_s: 1\n", "    flow_rate: 1\n");
    insta::assert_snapshot!("plan_unknown_field", error_of(&bad));
}

#[test]
fn duplicate_key_is_an_error() {
    let bad = GOOD.replace("  ips: 1\n", "  ips: 1\n  ips: 2\n");
    insta::assert_snapshot!("plan_duplicate_key", error_of(&bad));
}

#[test]
fn ports_per_nic_must_be_a_power_of_two() {
    let bad = GOOD.replace("ports_per_nic: 64", "ports_per_nic: 100");
    insta::assert_snapshot!("plan_ports_not_power_of_two", error_of(&bad));
}

#[test]
fn ports_per_nic_above_64512_is_rejected() {
    let bad = GOOD.replace("ports_per_nic: 64", "ports_per_nic: 65536");
    let e = error_of(&bad);
    assert!(
        e.starts_with("bad.yaml:13:18: gateway.ports_per_nic:"),
        "{e}"
    );
}

#[test]
fn wrong_type_names_line_and_field() {
    let bad = GOOD.replace("nics: 100", "nics: many");
    insta::assert_snapshot!("plan_wrong_type", error_of(&bad));
}

#[test]
fn bad_sweep_value_points_at_the_value() {
    let bad = format!("{GOOD}sweep:\n  - param: gateway.profile\n    values: [rfc, gce]\n");
    insta::assert_snapshot!("plan_bad_sweep_value", error_of(&bad));
}

#[test]
fn range_values_are_checked_like_written_ones() {
    let bad = format!(
        "{GOOD}sweep:\n  - param: gateway.ports_per_nic\n    from: 64\n    to: 256\n    step: 64\n"
    );
    insta::assert_snapshot!("plan_bad_range_value", error_of(&bad));
}

#[test]
fn unknown_sweep_param() {
    let bad = format!("{GOOD}sweep:\n  - param: gateway.portsPerNic\n    values: [64]\n");
    insta::assert_snapshot!("plan_unknown_sweep_param", error_of(&bad));
}

#[test]
fn wrong_api_version() {
    let bad = GOOD.replace("natsim.dev/v1", "natsim.dev/v2");
    insta::assert_snapshot!("plan_wrong_api_version", error_of(&bad));
}

#[test]
fn plot_x_must_be_swept() {
    let bad = format!(
        "{GOOD}report:\n  plots:\n    - file: a.svg\n      x: fleet.nics\n      y: blocking_hot\n"
    );
    insta::assert_snapshot!("plan_plot_x_not_swept", error_of(&bad));
}

#[test]
fn plot_must_pin_other_swept_params() {
    let bad = format!(
        "{GOOD}sweep:\n  - param: fleet.nics\n    values: [1, 2]\n  - param: gateway.ips\n    values: [1, 2]\nreport:\n  plots:\n    - file: a.svg\n      x: fleet.nics\n      y: blocking_hot\n"
    );
    let e = error_of(&bad);
    assert!(
        e.contains("`gateway.ips` is swept but is neither x, series nor in filter"),
        "{e}"
    );
}

#[test]
fn pareto_needs_a_shape_above_one() {
    let bad = GOOD.replace(
        "{dist: exponential, mean_s: 10}",
        "{dist: pareto, mean_s: 10, pareto_shape: 0.9}",
    );
    let e = error_of(&bad);
    assert!(e.starts_with("bad.yaml:9:"), "{e}");
    assert!(
        e.contains("fleet.traffic.flow_duration.pareto_shape"),
        "{e}"
    );
}

#[test]
fn sweeps_expand_in_documented_order() {
    let text = format!(
        "{GOOD}sweep:\n  - param: gateway.ports_per_nic\n    values: [64, 2048]\n  - param: fleet.traffic.flow_rate_per_s\n    from: 0.1\n    to: 0.3\n    step: 0.1\n"
    );
    let plan = Plan::parse(&text, "order.yaml").expect("valid");
    let got: Vec<(String, String)> = plan
        .points
        .iter()
        .map(|p| {
            (
                p.coordinates[0].value.clone(),
                p.coordinates[1].value.clone(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = [
        ("64", "0.1"),
        ("64", "0.2"),
        ("64", "0.3"),
        ("2048", "0.1"),
        ("2048", "0.2"),
        ("2048", "0.3"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(got, want);
    let indices: Vec<usize> = plan.points.iter().map(|p| p.index).collect();
    assert_eq!(indices, [0, 1, 2, 3, 4, 5]);
    // Seeds differ per point and are reproducible.
    let again = Plan::parse(&text, "order.yaml").expect("valid");
    assert_eq!(
        plan.points.iter().map(|p| p.seed).collect::<Vec<_>>(),
        again.points.iter().map(|p| p.seed).collect::<Vec<_>>()
    );
    assert_ne!(plan.points[0].seed, plan.points[1].seed);
}

#[test]
fn plan_duration_beyond_365_days_is_refused_with_its_range() {
    let text = format!("{GOOD}simulation:\n  duration_s: 1e12\n");
    let e = Plan::parse(&text, "bad.yaml")
        .map(|_| ())
        .expect_err("1e12 s is refused")
        .to_string();
    assert!(e.contains("bad.yaml:18:"), "{e}");
    assert!(e.contains("simulation.duration_s"), "{e}");
    assert!(e.contains("out of range (0, 31536000]"), "{e}");
}
