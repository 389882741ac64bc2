//! Each SPEC §6 invariant checker catches its deliberately broken gateway, and the same scenario
//! passes with the real gateway (so the checker is not merely tripping over the scenario).

use std::path::Path;

use natsim::check::broken::Breakage;
use natsim::scenario::report::summary;
use natsim::scenario::{Report, load_str, run_scenario};
use natsim::sim::real_gateway;

const HEAD: &str = r#"
apiVersion: natsim.dev/v1
kind: Scenario
metadata: {name: broken}
seed: 7
topology:
  networks: [{name: net, prefixes: [10.0.0.0/24]}]
  nics:
    - {name: vm-a, network: net, addresses: [10.0.0.1], labels: {nat: "yes"}}
    - {name: vm-b, network: net, addresses: [10.0.0.2], labels: {nat: "yes"}}
    - {name: vm-v, network: net, addresses: [10.0.0.3], labels: {nat: "yes"}, virtual_ip: true}
  remotes:
    - name: echo
      addresses: [198.51.100.1]
      services: [{protocol: udp, port: 53, response_bytes: 40}, {protocol: tcp, port: 80, response_bytes: 100}]
    - {name: evil, addresses: [192.0.2.66]}
gateway:
  network: net
  ips: [{name: ip1, addresses: [203.0.113.1]}]
  selector: {matchLabels: {nat: "yes"}}
"#;

fn scenario(p: u32, rest: &str) -> String {
    format!("{HEAD}  ports_per_nic: {p}\n{rest}")
}

fn run(yaml: &str, breakage: Option<Breakage>) -> Report {
    let sc = load_str(Path::new("inline.yaml"), yaml).unwrap_or_else(|e| panic!("{e}"));
    let out = match breakage {
        Some(b) => run_scenario(&sc, None, &move || b.factory()),
        None => run_scenario(&sc, None, &|| Box::new(real_gateway)),
    };
    out.expect("runs").report
}

/// The real gateway passes; the broken one violates `invariant`.
fn caught(yaml: &str, breakage: Breakage, invariants: &[&str]) {
    let good = run(yaml, None);
    assert!(good.violation.is_none(), "real gateway: {}", summary(&good));
    let bad = run(yaml, Some(breakage));
    let v = bad
        .violation
        .as_ref()
        .unwrap_or_else(|| panic!("{breakage:?} not caught: {}", summary(&bad)));
    assert!(
        invariants.contains(&v.invariant),
        "{breakage:?} caught as {}: {}",
        v.invariant,
        summary(&bad)
    );
    assert_eq!(bad.exit_code, 4);
    assert!(bad.replay.contains("--seed 7"), "{}", bad.replay);
    let text = summary(&bad);
    assert!(
        text.contains("VIOLATION") && text.contains("replay: natsim run"),
        "{text}"
    );
}

const UDP_STREAM: &str = r#"
traffic:
  - {name: s, from: vm-a, at_ms: 0, udp: {to: "echo:53", count: 6, interval_ms: 200}}
"#;

#[test]
fn no_inbound_initiation_catches_a_leaky_filter() {
    let yaml = scenario(
        64,
        r#"
traffic:
  - {name: s, from: vm-a, udp: {to: "echo:53"}}
attacks:
  - {name: syn, at_ms: 100, from: evil, unsolicited: {target: "203.0.113.1:1030", kind: tcp_syn, count: 3}}
"#,
    );
    caught(
        &yaml,
        Breakage::LeakyFilter { port: 1030 },
        &["no-inbound-initiation"],
    );
}

#[test]
fn port_limit_catches_overlapping_blocks() {
    let yaml = scenario(
        64,
        r#"
traffic:
  - {name: a, from: vm-a, udp: {to: "echo:53"}}
  - {name: b, from: vm-b, at_ms: 5, udp: {to: "echo:53"}}
"#,
    );
    caught(&yaml, Breakage::OverlappingBlocks, &["port-limit"]);
}

#[test]
fn port_limit_catches_a_block_end_off_by_one() {
    let mut rest = String::from("traffic:\n");
    for i in 0..5 {
        rest.push_str(&format!(
            "  - {{name: t{i}, from: vm-a, at_ms: {}, tcp: {{to: \"echo:80\", hold_ms: 5000}}}}\n",
            i * 10
        ));
    }
    // With P = 4 the fifth flow must be refused; the broken gateway hands out port 1028.
    caught(
        &scenario(4, &rest),
        Breakage::BlockEndOffByOne,
        &["port-limit"],
    );
}

#[test]
fn timers_catch_an_evicting_allocator() {
    let mut rest = String::from("traffic:\n");
    for i in 0..3 {
        rest.push_str(&format!(
            "  - {{name: t{i}, from: vm-a, at_ms: {}, tcp: {{to: \"echo:80\", hold_ms: 5000}}}}\n",
            i * 10
        ));
    }
    caught(
        &scenario(2, &rest),
        Breakage::EvictingAllocator,
        &["timers"],
    );
}

#[test]
fn a_stale_flow_after_block_loss_is_caught() {
    let yaml = scenario(
        64,
        &format!("{UDP_STREAM}faults:\n  - {{at_ms: 500, relabel: {{nic: vm-a, labels: {{}}}}}}\n"),
    );
    caught(
        &yaml,
        Breakage::StaleFlowAfterBlockLoss,
        &["no-inbound-initiation", "selection"],
    );
}

#[test]
fn isolation_catches_a_reply_to_the_wrong_nic() {
    caught(
        &scenario(64, UDP_STREAM),
        Breakage::ReplyToWrongNic,
        &["isolation"],
    );
}

#[test]
fn wire_validity_catches_a_bad_checksum() {
    caught(
        &scenario(64, UDP_STREAM),
        Breakage::BadChecksum,
        &["wire-validity"],
    );
}

#[test]
fn mapping_stability_catches_a_moving_mapping() {
    caught(
        &scenario(64, UDP_STREAM),
        Breakage::UnstableMapping,
        &["mapping-stability"],
    );
}

#[test]
fn selection_catches_translation_of_a_virtual_ip_nic() {
    let yaml = scenario(
        64,
        r#"
traffic:
  - {name: v, from: vm-v, udp: {to: "echo:53", retries: 0}}
"#,
    );
    caught(&yaml, Breakage::IgnoresSelection, &["selection"]);
}

#[test]
fn status_catches_a_dataplane_that_drops_assignments() {
    caught(
        &scenario(64, UDP_STREAM),
        Breakage::WrongStatus,
        &["status"],
    );
}

#[test]
fn determinism_catches_a_nondeterministic_gateway() {
    caught(
        &scenario(64, UDP_STREAM),
        Breakage::Nondeterministic,
        &["determinism"],
    );
}

/// docs/behaviour.md §4 ICMP: an error about vm-a's flow (on ip1) addressed to ip2, and one
/// addressed to the flow's own NAT address. The real gateway drops the first and translates the
/// second; the broken one re-addresses the first and delivers it too.
const OUTER_DESTINATION: &str = r#"
traffic:
  - {name: s, from: vm-a, udp: {to: "echo:53", count: 10, interval_ms: 100}}
attacks:
  - {name: other-ip, at_ms: 200, from: echo, forged_icmp: {flow: s, outer_destination: "203.0.113.2"}}
  - {name: own-ip, at_ms: 300, from: echo, forged_icmp: {flow: s}}
expect:
  counters: {drop.icmp_error_no_flow: 1}
"#;

#[test]
fn no_inbound_initiation_catches_a_gateway_that_ignores_the_outer_destination() {
    let yaml = scenario(64, OUTER_DESTINATION).replace(
        "ips: [{name: ip1, addresses: [203.0.113.1]}]",
        "ips: [{name: ip1, addresses: [203.0.113.1]}, {name: ip2, addresses: [203.0.113.2]}]",
    );
    let good = run(&yaml, None);
    assert_eq!(good.exit_code, 0, "{}", summary(&good));
    caught(
        &yaml,
        Breakage::IgnoresOuterDestination,
        &["no-inbound-initiation"],
    );
    let bad = run(&yaml, Some(Breakage::IgnoresOuterDestination));
    assert_eq!(bad.exit_code, 4);
    let v = bad.violation.as_ref().expect("violation");
    assert!(
        v.message.contains("outer side") && v.message.contains("203.0.113.2"),
        "{}",
        summary(&bad)
    );
}
