//! Each behaviour §6 invariant checker catches its deliberately broken gateway, and the same scenario
//! passes with the real gateway (so the checker is not merely tripping over the scenario).

use std::path::Path;

use natsim::check::broken::Breakage;
use natsim::scenario::report::summary;
use natsim::scenario::{InvariantOutcome, Report, load_str, run_scenario};
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
        invariants.contains(&v.invariant.name()),
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
/// Loads a scenario of the library.
fn library(name: &str) -> natsim::scenario::Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(format!("{name}.yaml"));
    natsim::scenario::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// The broken gateway fails the library scenario `name` with a liveness violation (exit 4).
fn liveness_catches(name: &str, breakage: Breakage) {
    let sc = library(name);
    let bad = run_scenario(&sc, None, &move || breakage.factory())
        .expect("runs")
        .report;
    let v = bad
        .violation
        .as_ref()
        .unwrap_or_else(|| panic!("{breakage:?} not caught by {name}: {}", summary(&bad)));
    assert_eq!(v.invariant.name(), "liveness", "{}", summary(&bad));
    assert_eq!(bad.exit_code, 4);
    assert_eq!(
        bad.invariants["liveness"].result,
        InvariantOutcome::Violated
    );
}

#[test]
fn liveness_catches_a_sticky_rst() {
    liveness_catches("rst-lost-keepalive", Breakage::StickyRst);
}

#[test]
fn liveness_catches_held_flows_counted_against_the_table() {
    liveness_catches(
        "table-limit-live-only",
        Breakage::HeldFlowsCountAgainstTable,
    );
}

#[test]
fn liveness_catches_no_block_tcp_dropped_as_tcp_no_flow() {
    liveness_catches("no-block-tcp-reason", Breakage::NoBlockTcpAsNoFlow);
}

#[test]
fn liveness_catches_an_immediate_icmp_answer_to_an_unsolicited_syn() {
    liveness_catches(
        "unsolicited-syn-silence",
        Breakage::ImmediateUnsolicitedIcmp,
    );
}

#[test]
fn liveness_catches_established_flows_expiring_at_the_transitory_timer() {
    liveness_catches(
        "tcp-established-idle",
        Breakage::EstablishedAtTransitoryTimer,
    );
}

#[test]
fn liveness_catches_eviction_of_the_oldest_flow_when_the_table_is_full() {
    liveness_catches(
        "table-full-no-eviction",
        Breakage::EvictsOldestWhenTableFull,
    );
}

/// docs/behaviour.md §4 and §6: the real gateway passes every liveness scenario, with the
/// liveness invariant exercised (not merely silent).
#[test]
fn real_gateway_passes_the_liveness_scenarios() {
    for name in [
        "rst-lost-keepalive",
        "table-limit-live-only",
        "no-block-tcp-reason",
        "unsolicited-syn-silence",
        "tcp-established-idle",
        "table-full-no-eviction",
    ] {
        let r = run_scenario(&library(name), None, &|| Box::new(real_gateway))
            .expect("runs")
            .report;
        assert_eq!(r.exit_code, 0, "{name}: {}", summary(&r));
        assert_eq!(
            r.invariants["liveness"].result,
            InvariantOutcome::Held,
            "{name}"
        );
        assert!(r.invariants["liveness"].checks > 0, "{name}");
    }
}

/// docs/behaviour.md §6: "An invariant that ran no check in a run is reported as not
/// exercised, never as held."
#[test]
fn an_invariant_that_ran_no_check_is_not_exercised_never_held() {
    let r = run_scenario(&library("absent-selector"), None, &|| {
        Box::new(real_gateway)
    })
    .expect("runs")
    .report;
    for (name, i) in &r.invariants {
        assert_eq!(
            i.result == InvariantOutcome::Held,
            i.checks > 0,
            "{name}: {i:?}"
        );
        if i.checks == 0 {
            assert_eq!(i.result, InvariantOutcome::NotExercised, "{name}");
        }
    }
    assert!(
        r.invariants
            .values()
            .any(|i| i.result == InvariantOutcome::NotExercised),
        "{}",
        summary(&r)
    );
    let text = summary(&r);
    assert!(text.contains("not exercised"), "{text}");
}

/// `expect.exercised` names an invariant that made no check: unmet, exit 3, naming it.
#[test]
fn expect_exercised_fails_when_the_invariant_made_no_check() {
    let yaml = scenario(64, "expect:\n  exercised: [liveness, timers]\n");
    let r = run(&yaml, None);
    assert_eq!(r.exit_code, 3, "{}", summary(&r));
    let text = summary(&r);
    assert!(text.contains("UNMET exercised.liveness"), "{text}");
    assert!(text.contains("UNMET exercised.timers"), "{text}");
}

/// An unknown invariant name in `expect.exercised` is bad input naming file and line.
#[test]
fn expect_exercised_refuses_an_unknown_invariant_name() {
    let yaml = scenario(64, "expect:\n  exercised: [liveness, livenes]\n");
    let e = match load_str(Path::new("inline.yaml"), &yaml) {
        Ok(_) => panic!("an unknown invariant name was accepted"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("inline.yaml:") && e.contains("livenes"), "{e}");
}

/// `--require-exercised`: every invariant not exercised becomes an unmet expectation (exit 3).
#[test]
fn require_exercised_names_every_unexercised_invariant() {
    // No traffic at all: several invariants have nothing to check.
    let mut r = run(&scenario(64, ""), None);
    assert_eq!(r.exit_code, 0, "{}", summary(&r));
    let idle: Vec<&str> = r
        .invariants
        .iter()
        .filter(|(_, i)| i.checks == 0)
        .map(|(n, _)| *n)
        .collect();
    assert!(idle.contains(&"liveness"), "{idle:?}");
    natsim::scenario::report::require_exercised(&mut r);
    let text = summary(&r);
    assert_eq!(r.exit_code, 3, "{text}");
    for n in idle {
        assert!(text.contains(&format!("UNMET exercised.{n}")), "{text}");
    }
}

/// A host has no address of its destination's family: like a real socket, the application
/// fails to start (named in the report) instead of sending a packet with one family's header
/// and the other's address, and no packet leaves the NIC.
#[test]
fn an_application_to_a_family_its_host_lacks_fails_to_start() {
    let yaml = scenario(
        64,
        "traffic:\n  - {name: v6ping, from: vm-a, ping: {to: \"2001:db8::1\", count: 3}}\n  - {name: v6udp, from: vm-a, udp: {to: \"[2001:db8::1]:53\"}}\n",
    );
    let r = run(&yaml, None);
    for name in ["v6ping", "v6udp"] {
        let app = r
            .flows
            .iter()
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("{name} missing: {}", summary(&r)));
        assert_eq!(
            app.outcome,
            natsim::sim::apps::Outcome::Failed(
                "the host has no address of the destination's family"
            ),
            "{name}"
        );
    }
    assert!(r.violation.is_none(), "{}", summary(&r));
    let sent: u64 = r
        .counters
        .iter()
        .filter(|(k, _)| k.starts_with("translated.out"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(sent, 0, "{}", summary(&r));
}
