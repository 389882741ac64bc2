//! Packet-level steps (`packets:`, `expect.packets:`): an expectation that does not hold is
//! unmet, variables carry values between entries, and captured values reach the report.

use std::path::PathBuf;

use natsim::scenario::{Report, load, run_scenario};
use natsim::sim::real_gateway;

const BASE: &str = r#"apiVersion: natsim.dev/v1
kind: Scenario
metadata: {name: packets}
seed: 1
topology:
  networks: [{name: net-a, prefixes: [10.0.0.0/24]}]
  nics:
    - {name: vm-a, network: net-a, addresses: [10.0.0.1]}
  remotes:
    - {name: web, addresses: [198.51.100.10], services: [{protocol: udp, port: 53, response_bytes: 10}]}
    - {name: web2, addresses: [198.51.100.20], services: [{protocol: udp, port: 53, response_bytes: 10}]}
gateway: {network: net-a, ips: [{name: ip1, addresses: [203.0.113.1]}], ports_per_nic: 64, selector: {}}
packets:
  - {name: q1, at_ms: 100, from: vm-a, to: web, udp: {src_port: 5000, dst_port: 53, zero_checksum: true}}
  - {name: q2, at_ms: 200, from: vm-a, to: web2, udp: {src_port: 5000, dst_port: 53}}
"#;

fn run(name: &str, expect: &str) -> Report {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("scenario_packets");
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, format!("{BASE}{expect}")).expect("write");
    let sc = load(&path).unwrap_or_else(|e| panic!("{e}"));
    run_scenario(&sc, None, &|| Box::new(real_gateway))
        .expect("runs")
        .report
}

fn unmet(r: &Report) -> Vec<String> {
    r.expectations
        .iter()
        .filter(|e| !e.ok)
        .map(|e| format!("{}: expected {}, got {}", e.what, e.expected, e.actual))
        .collect()
}

#[test]
fn packet_expectations_that_hold_pass_and_capture_variables_into_the_report() {
    let r = run(
        "holds",
        "expect:\n  packets:\n    - {on: uplink/0, match: {src: 203.0.113.1, dst: 198.51.100.10, udp_checksum: 0}, count: 1, capture: {p: src_port}}\n    - {on: uplink/0, match: {dst: 198.51.100.20, src_port: $p}, count: 1}\n",
    );
    assert!(unmet(&r).is_empty(), "{:?}", unmet(&r));
    assert_eq!(r.exit_code, 0);
    let p = r.variables.get("p").expect("p captured");
    let port: u16 = p.parse().expect("a port");
    assert!((1024..1024 + 64).contains(&port), "{port} in vm-a's block");
    let json = serde_json::to_value(&r).expect("json");
    assert_eq!(json["variables"]["p"], serde_json::Value::String(p.clone()));
}

#[test]
fn a_packet_expectation_that_does_not_hold_is_unmet() {
    // The gateway keeps a zero UDP checksum zero; asking for another value must fail.
    let r = run(
        "wrong-field",
        "expect:\n  packets:\n    - {on: uplink/0, match: {src: 203.0.113.1, dst: 198.51.100.10, udp_checksum: {not: 0}}}\n",
    );
    assert_eq!(r.exit_code, 3, "{:?}", unmet(&r));
    assert_eq!(unmet(&r).len(), 1);
    // `never` fails when a packet matches.
    let r = run(
        "never",
        "expect:\n  packets:\n    - {on: nic/vm-a, match: {src: 198.51.100.10, src_port: 53}, never: true}\n",
    );
    assert_eq!(r.exit_code, 3);
    // A window before the packet was sent sees nothing.
    let r = run(
        "window",
        "expect:\n  packets:\n    - {on: uplink/0, between_ms: [0, 99], match: {dst: 198.51.100.10}}\n",
    );
    assert_eq!(r.exit_code, 3);
}

#[test]
fn a_comparison_with_a_captured_value_fails_when_the_values_differ() {
    // Endpoint-independent mapping gives both datagrams one NAT port: `not: $p` cannot hold.
    let r = run(
        "differs",
        "expect:\n  packets:\n    - {on: uplink/0, match: {dst: 198.51.100.10, proto: udp}, capture: {p: src_port}}\n    - {on: uplink/0, match: {dst: 198.51.100.20, src_port: {not: $p}}}\n",
    );
    assert_eq!(r.exit_code, 3);
    assert!(unmet(&r)[0].contains("packets[1]"), "{:?}", unmet(&r));
}

#[test]
fn a_variable_whose_entry_matched_nothing_leaves_later_comparisons_unmet() {
    let r = run(
        "uncaptured",
        "expect:\n  packets:\n    - {on: uplink/0, match: {dst: 192.0.2.99}, capture: {p: src_port}}\n    - {on: uplink/0, match: {src_port: $p}}\n",
    );
    let u = unmet(&r);
    assert_eq!(u.len(), 2, "{u:?}");
    assert!(u[1].contains("not evaluated: $p not captured"), "{u:?}");
    assert!(!r.variables.contains_key("p"));
}

#[test]
fn a_crafted_packet_built_from_a_captured_nat_port_reaches_the_inside_host() {
    let r = run(
        "inbound-by-variable",
        "  - {name: back, at_ms: 300, from: web, to: 203.0.113.1, udp: {src_port: 53, dst_port: $p}}\n  - {name: wrong, at_ms: 400, from: web, to: 203.0.113.1, udp: {src_port: 53, dst_port: $p+1}}\nexpect:\n  flows: {back: completes, wrong: completes}\n  counters: {drop.unsolicited: 1}\n  packets:\n    - {on: uplink/0, match: {dst: 198.51.100.10, proto: udp}, count: 1, capture: {p: src_port}}\n    - {on: nic/vm-a, between_ms: [300, 310], match: {src: 198.51.100.10, dst_port: 5000}, count: 1}\n",
    );
    assert!(unmet(&r).is_empty(), "{:?}", unmet(&r));
}

#[test]
fn a_crafted_packet_whose_variable_is_captured_only_later_is_not_sent_and_fails() {
    // The capture comes from the datagram sent at 200 ms; the packet is due at 150 ms.
    let r = run(
        "too-early",
        "  - {name: early, at_ms: 150, from: web2, to: 203.0.113.1, udp: {src_port: 53, dst_port: $p}}\nexpect:\n  packets:\n    - {on: uplink/0, match: {dst: 198.51.100.20, proto: udp}, capture: {p: src_port}}\n",
    );
    let early = r.flows.iter().find(|f| f.name == "early").expect("early");
    assert_eq!(early.packets, 0);
    // Not sent is unmet, even though no expectation names the packet.
    assert_eq!(r.exit_code, 3);
    assert!(
        unmet(&r)
            .iter()
            .any(|u| u.starts_with("packets.early: expected sent")),
        "{:?}",
        unmet(&r)
    );
    let json = serde_json::to_value(early).expect("json");
    assert!(json.to_string().contains("not captured"), "{json}");
    assert!(r.variables.contains_key("p"), "captured after it was due");
}

#[test]
fn counters_at_a_time_see_each_phase_and_pausing_leaves_the_trace_unchanged() {
    // By 250 ms vm-a sent the two crafted datagrams and a Port Unreachable for each reply (no
    // socket wants them).
    let phases = "expect:\n  counters_at:\n    - {at_ms: 150, counters: {translated.out.udp: 1, flows.created: 1}}\n    - {at_ms: 250, counters: {translated.out.udp: 2}, nic_counters: {vm-a: {host.sent: 4}}}\n";
    let r = run("phases", phases);
    assert!(unmet(&r).is_empty(), "{:?}", unmet(&r));
    assert_eq!(r.expectations.len(), 4);
    let plain = run("no-phases", "");
    assert_eq!(r.digest, plain.digest, "pausing changed the trace");
    // A phase bound that does not hold is unmet, named with its time.
    let r = run(
        "phase-unmet",
        "expect:\n  counters_at:\n    - {at_ms: 150, counters: {translated.out.udp: 2}}\n",
    );
    assert_eq!(r.exit_code, 3);
    assert!(
        unmet(&r)[0].starts_with("counters_at[0] @ 150 ms: translated.out.udp"),
        "{:?}",
        unmet(&r)
    );
}

#[test]
fn a_phase_after_the_run_s_duration_is_unmet_as_not_reached() {
    let r = run(
        "phase-beyond",
        "limits: {duration_ms: 1000}\nexpect:\n  counters_at:\n    - {at_ms: 5000, counters: {flows.created: 1}}\n",
    );
    assert_eq!(r.exit_code, 3);
    assert!(
        unmet(&r)[0].contains("the run stopped before it"),
        "{:?}",
        unmet(&r)
    );
}

/// A remote behind a 1100-byte link; `extra` is appended (router settings, packets, expect).
fn run_small_mtu(name: &str, router: &str, extra: &str) -> Report {
    let text = format!(
        r#"apiVersion: natsim.dev/v1
kind: Scenario
metadata: {{name: {name}}}
seed: 1
topology:
  networks: [{{name: net-a, prefixes: [10.0.0.0/24]}}]
  nics: [{{name: vm-a, network: net-a, addresses: [10.0.0.1]}}]
  remotes:
    - {{name: web, addresses: [198.51.100.10], services: [{{protocol: tcp, port: 80, response_bytes: 500}}], link: {{mtu_bytes: 1100}}}}
    - {{name: far, addresses: [198.51.100.20]}}
{router}gateway: {{network: net-a, ips: [{{name: ip1, addresses: [203.0.113.1]}}], ports_per_nic: 64, selector: {{}}}}
{extra}"#
    );
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("scenario_packets");
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, text).expect("write");
    let sc = load(&path).unwrap_or_else(|e| panic!("{e}"));
    run_scenario(&sc, None, &|| Box::new(real_gateway))
        .expect("runs")
        .report
}

#[test]
fn the_router_rate_limits_its_icmp_errors_and_path_mtu_discovery_still_gets_through() {
    let traffic = "traffic:\n  - {name: up, from: vm-a, tcp: {to: \"web:80\", request_bytes: 12000, expect_bytes: 500, mss_bytes: 1400, df: true, max_retries: 10}}\nexpect:\n  flows: {up: completes}\n";
    let r = run_small_mtu(
        "rate-limited",
        "  router: {icmp_errors_per_s: 1, icmp_error_burst: 1}\n",
        traffic,
    );
    assert!(unmet(&r).is_empty(), "{:?}", unmet(&r));
    let c = |k: &str| r.counters.get(k).copied().unwrap_or(0);
    assert!(c("sim.icmp_errors_sent") >= 1);
    assert!(c("sim.icmp_errors_rate_limited") >= 1, "{:?}", r.counters);
    // Without a limit to speak of, every too-big segment of the first flight is answered.
    let r = run_small_mtu("not-limited", "", traffic);
    assert!(unmet(&r).is_empty(), "{:?}", unmet(&r));
    assert_eq!(r.counters.get("sim.icmp_errors_rate_limited"), None);
}

#[test]
fn the_router_answers_a_too_big_df_packet_but_never_an_icmp_error() {
    // From `far` (another internet host, so the gateway is not involved) to `web`, whose link is
    // 1100 bytes: an echo request with DF that does not fit gets Fragmentation Needed; an
    // oversized ICMP error with DF gets nothing (RFC 1812 §4.3.2.7), nor does a small one.
    let extra = "packets:\n  - {name: ping, at_ms: 10, from: far, to: web, ip: {df: true}, icmp: {type: 8, id: 9, payload_bytes: 1200}}\n  - {name: err, at_ms: 20, from: far, to: web, ip: {df: true}, icmp: {type: 3, code: 3, quote: {src: web, dst: far, bytes: 1200, udp: {src_port: 1, dst_port: 2, payload_bytes: 1300}}}}\nexpect:\n  packets:\n    - {on: remote/far, match: {src: 198.18.0.1, dst: 198.51.100.20, icmp_type: 3, icmp_code: 4, icmp_rest: 1100, quoted_dst: 198.51.100.10, quoted_src_port: 9}, count: 1}\n    - {on: remote/far, match: {src: 198.18.0.1, quoted_dst_port: 2}, never: true}\n";
    let r = run_small_mtu("no-error-about-errors", "", extra);
    assert!(unmet(&r).is_empty(), "{:?}", unmet(&r));
    assert_eq!(r.counters.get("sim.icmp_errors_sent"), Some(&1));
}

#[test]
fn in_block_of_a_nic_that_holds_no_block_is_unmet_not_vacuously_true() {
    // vm-b is in a network the gateway does not serve: it never gets a block, so "never a
    // packet from its block" checks nothing and must not pass.
    let text = r#"apiVersion: natsim.dev/v1
kind: Scenario
metadata: {name: no-block}
seed: 1
topology:
  networks: [{name: net-a, prefixes: [10.0.0.0/24]}, {name: net-b, prefixes: [10.1.0.0/24]}]
  nics:
    - {name: vm-a, network: net-a, addresses: [10.0.0.1]}
    - {name: vm-b, network: net-b, addresses: [10.1.0.1]}
  remotes:
    - {name: web, addresses: [198.51.100.10], services: [{protocol: udp, port: 53, response_bytes: 10}]}
gateway: {network: net-a, ips: [{name: ip1, addresses: [203.0.113.1]}], ports_per_nic: 64, selector: {}}
packets:
  - {name: q, at_ms: 100, from: vm-a, to: web, udp: {src_port: 5000, dst_port: 53}}
expect:
  packets:
    - {on: uplink/0, match: {src_port: {in_block_of: vm-b}}, never: true}
"#;
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("scenario_packets");
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("no-block.yaml");
    std::fs::write(&path, text).expect("write");
    let sc = load(&path).unwrap_or_else(|e| panic!("{e}"));
    let r = run_scenario(&sc, None, &|| Box::new(real_gateway))
        .expect("runs")
        .report;
    assert_eq!(r.exit_code, 3, "{:?}", unmet(&r));
    assert!(
        unmet(&r)[0].contains("not evaluated: vm-b holds no block at the end"),
        "{:?}",
        unmet(&r)
    );
}
