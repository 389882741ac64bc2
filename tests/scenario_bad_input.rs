//! Bad scenario input, table-driven: every unknown name (in any section) and every
//! out-of-range number is refused at load with exit 2, naming the file, the line where the
//! input has one, the field path, and the closest valid names or the valid range.

use std::path::{Path, PathBuf};

use natsim::scenario::cli::run_cmd_to;
use natsim::scenario::ranges::{MAX_MS, MAX_MTU_BYTES, MAX_US, MIN_MTU_BYTES};

/// A small valid scenario; traffic is the last list at line 13, so a case's text that starts
/// with `  - ` adds traffic items (from line 15 on), and other text adds top-level sections.
const BASE: &str = r#"apiVersion: natsim.dev/v1
kind: Scenario
metadata: {name: bad}
topology:
  networks: [{name: net-a, prefixes: [10.0.0.0/24]}]
  nics:
    - {name: vm-a, network: net-a, addresses: [10.0.0.1]}
  remotes:
    - name: web
      addresses: [198.51.100.10]
      services: [{protocol: tcp, port: 80, response_bytes: 100}, {protocol: udp, port: 53, response_bytes: 10}]
gateway: {network: net-a, ips: [{name: ip1, addresses: [203.0.113.1]}], ports_per_nic: 64, selector: {}}
traffic:
  - {name: get, from: vm-a, tcp: {to: "web:80"}}
"#;

struct Case {
    /// What it shows (also the file name).
    name: &'static str,
    /// Replacements in [`BASE`].
    edit: &'static [(&'static str, &'static str)],
    /// Text appended to [`BASE`].
    append: &'static str,
    /// Expected line (`None`: the input has no line for the field).
    line: Option<u64>,
    /// Expected field path.
    field: &'static str,
    /// Expected part of the message (closest names, the valid range).
    message: &'static str,
}

const fn case(
    name: &'static str,
    append: &'static str,
    line: u64,
    field: &'static str,
    message: &'static str,
) -> Case {
    Case {
        name,
        edit: &[],
        append,
        line: Some(line),
        field,
        message,
    }
}

fn cases() -> Vec<Case> {
    vec![
        // Unknown names, section by section.
        case(
            "counter-typo",
            "expect:\n  counters: {drop.unsolicted: 0}\n",
            16,
            "expect.counters.drop.unsolicted",
            "no counter named `drop.unsolicted`; closest: drop.unsolicited",
        ),
        case(
            "nic-counters-unknown-nic",
            "expect:\n  nic_counters: {vm-typo: {host.received: 1}}\n",
            16,
            "expect.nic_counters.vm-typo",
            "no NIC named `vm-typo`",
        ),
        case(
            "nic-counter-typo",
            "expect:\n  nic_counters:\n    vm-a:\n      host.recieved: 1\n",
            18,
            "expect.nic_counters.vm-a.host.recieved",
            "closest: host.received",
        ),
        case(
            "remote-counters-unknown-host",
            "expect:\n  remote_counters: {nosuchhost: {host.received: 1}}\n",
            16,
            "expect.remote_counters.nosuchhost",
            "no remote host named `nosuchhost`",
        ),
        case(
            "remote-counter-is-a-gateway-counter",
            "expect:\n  remote_counters: {web: {drop.unsolicited: 0}}\n",
            16,
            "expect.remote_counters.web.drop.unsolicited",
            "no remote host counter named `drop.unsolicited`",
        ),
        case(
            "total-counter-is-a-host-counter",
            "expect:\n  counters: {host.received: 1}\n",
            16,
            "expect.counters.host.received",
            "no counter named `host.received`",
        ),
        case(
            "flow-typo",
            "expect:\n  flows: {gte: completes}\n",
            16,
            "expect.flows.gte",
            "no traffic item named `gte`; closest: get",
        ),
        case(
            "received-unknown",
            "expect:\n  received: {nothing: 1}\n",
            16,
            "expect.received.nothing",
            "no traffic item named `nothing`",
        ),
        case(
            "probe-not-a-probe",
            "expect:\n  probes: {get: {mapping: endpoint-independent, filtering: endpoint-independent}}\n",
            16,
            "expect.probes.get",
            "no probe traffic item named `get`",
        ),
        case(
            "generator-unknown",
            "expect:\n  generators: {mix: {started: 1}}\n",
            16,
            "expect.generators.mix",
            "no generator named `mix`",
        ),
        case(
            "routing-unknown-nic",
            "expect:\n  routing: {vm-b: {IPv4: none}}\n",
            16,
            "expect.routing.vm-b",
            "no NIC named `vm-b`; closest: vm-a",
        ),
        case(
            "routing-unknown-family",
            "expect:\n  routing: {vm-a: {IPv5: none}}\n",
            16,
            "expect.routing.vm-a.IPv5",
            "no address family named `IPv5`; closest: IPv4, IPv6",
        ),
        case(
            "allocated-unknown-family",
            "expect:\n  allocated: {ipv4: 1}\n",
            16,
            "expect.allocated.ipv4",
            "closest: IPv4",
        ),
        case(
            "no-inbound-unknown-nic",
            "expect:\n  no_inbound_from_outside: [vm-x]\n",
            16,
            "expect.no_inbound_from_outside",
            "no NIC named `vm-x`",
        ),
        case(
            "capture-unknown-link",
            "capture: [nic/vm-a, nic/vm-b]\n",
            15,
            "capture[1]",
            "no link named `nic/vm-b`; closest: nic/vm-a",
        ),
        case(
            "fault-link-down-unknown",
            "faults:\n  - {at_ms: 5, link_down: uplink/1}\n",
            16,
            "faults[0].link_down",
            "no link named `uplink/1`; closest: uplink/0",
        ),
        case(
            "fault-restart-unknown-node",
            "faults:\n  - {at_ms: 5, restart_node: 3}\n",
            16,
            "faults[0].restart_node",
            "node 3 does not exist",
        ),
        case(
            "fault-delete-unknown-nic",
            "faults:\n  - {at_ms: 5, delete_nic: vm-aa}\n",
            16,
            "faults[0].delete_nic",
            "no NIC named `vm-aa`; closest: vm-a",
        ),
        case(
            "fault-remove-unknown-ip",
            "faults:\n  - {at_ms: 5, remove_nat_ip: ip2}\n",
            16,
            "faults[0].remove_nat_ip",
            "no gateway IP named `ip2`; closest: ip1",
        ),
        case(
            "traffic-from-unknown",
            "  - {name: x, from: vm-b, udp: {to: \"web:53\"}}\n",
            15,
            "traffic[1].from",
            "no NIC or remote host named `vm-b`; closest: vm-a",
        ),
        case(
            "traffic-to-unknown-host",
            "  - {name: x, from: vm-a, udp: {to: \"webb:53\"}}\n",
            15,
            "traffic[1].udp.to",
            "no NIC or remote host named `webb`; closest: web",
        ),
        case(
            "traffic-to-unknown-gateway-ip",
            "  - {name: x, from: vm-a, udp: {to: \"ip:ip9:1024\"}}\n",
            15,
            "traffic[1].udp.to",
            "no gateway IP named `ip9`; closest: ip1",
        ),
        case(
            "ping-to-unknown",
            "  - {name: x, from: vm-a, ping: {to: wbe}}\n",
            15,
            "traffic[1].ping.to",
            "closest: web",
        ),
        case(
            "duplicate-traffic-name",
            "  - {name: get, from: vm-a, udp: {to: \"web:53\"}}\n",
            15,
            "traffic[1].name",
            "duplicate traffic name `get` (also traffic[0])",
        ),
        case(
            "attack-name-clashes-with-traffic",
            "attacks:\n  - {name: get, from: web, rst_inject: {flow: get}}\n",
            16,
            "attacks[0].name",
            "duplicate traffic name `get`",
        ),
        case(
            "two-apps-one-socket",
            "  - {name: a, from: vm-a, udp: {to: \"web:53\", src_port: 5000}}\n  - {name: b, from: vm-a, udp: {to: \"web:53\", src_port: 5000}}\n",
            16,
            "traffic[2]",
            "binds UDP port 5000 on `vm-a`",
        ),
        case(
            "attack-from-unknown",
            "attacks:\n  - {name: scan, from: evil, port_scan: {target: \"ip:ip1\", ports: [1, 2]}}\n",
            16,
            "attacks[0].from",
            "no remote host named `evil`",
        ),
        case(
            "attack-unknown-flow",
            "attacks:\n  - {name: r, from: web, rst_inject: {flow: gett}}\n",
            16,
            "attacks[0].rst_inject.flow",
            "no traffic item named `gett`; closest: get",
        ),
        case(
            "generator-unknown-destination",
            "generators:\n  - {name: g, nics: [vm-a], stop_ms: 10, arrivals: {fixed_ms: 5}, duration: {fixed_ms: 1}, destinations: [wbe]}\n",
            16,
            "generators[0].destinations",
            "no remote host named `wbe`; closest: web",
        ),
        case(
            "generator-unknown-nic",
            "generators:\n  - {name: g, nics: [vm-b], stop_ms: 10, arrivals: {fixed_ms: 5}, duration: {fixed_ms: 1}, destinations: [web]}\n",
            16,
            "generators[0].nics",
            "no NIC named `vm-b`; closest: vm-a",
        ),
        Case {
            name: "duplicate-service",
            edit: &[(
                "{protocol: udp, port: 53, response_bytes: 10}",
                "{protocol: tcp, port: 80}",
            )],
            append: "",
            line: Some(9),
            field: "topology.remotes[0].services[1]",
            message: "already has a Tcp service on port 80",
        },
        // Numbers: checked, never wrapped.
        case(
            "ping-interval-wraps",
            "  - {name: p, from: vm-a, ping: {to: web, count: 3, interval_ms: 18446744073710}}\n",
            15,
            "traffic[1].ping.interval_ms",
            "18446744073710 is out of range 0..=31536000000 ms",
        ),
        case(
            "tcp-hold-wraps",
            "  - {name: h, from: vm-a, tcp: {to: \"web:80\", hold_ms: 18446744073710}}\n",
            15,
            "traffic[1].tcp.hold_ms",
            "18446744073710 is out of range 0..=31536000000 ms",
        ),
        case(
            "at-ms-i64-max",
            "  - {name: late, from: vm-a, at_ms: 9223372036854775807, udp: {to: \"web:53\"}}\n",
            15,
            "traffic[1].at_ms",
            "9223372036854775807 is out of range",
        ),
        case(
            "tcp-request-bytes-unbounded",
            "  - {name: big, from: vm-a, tcp: {to: \"web:80\", request_bytes: 100000000000}}\n",
            15,
            "traffic[1].tcp.request_bytes",
            "100000000000 is out of range 0..=104857600 bytes",
        ),
        case(
            "udp-datagram-too-big",
            "  - {name: big, from: vm-a, udp: {to: \"web:53\", request_bytes: 70000}}\n",
            15,
            "traffic[1].udp.request_bytes",
            "70000 is out of range 0..=65507 bytes",
        ),
        Case {
            name: "response-bytes-unbounded",
            edit: &[("response_bytes: 100}", "response_bytes: 1000000000000}")],
            append: "",
            line: Some(9),
            field: "topology.remotes[0].services[0].response_bytes",
            message: "1000000000000 is out of range 0..=104857600 bytes",
        },
        // The issue's case: a UDP answer of 70000 bytes does not fit one datagram. It is refused
        // at load (exit 2, field named) rather than split or cut (docs/scenarios.md, "Ranges").
        Case {
            name: "udp-response-bytes-too-big",
            edit: &[("response_bytes: 10}", "response_bytes: 70000}")],
            append: "",
            line: Some(9),
            field: "topology.remotes[0].services[1].response_bytes",
            message: "70000 is out of range 0..=65507 bytes",
        },
        case(
            "poisson-rate-unbounded",
            "generators:\n  - {name: g, nics: [vm-a], stop_ms: 10, arrivals: {poisson_per_s: 1e9}, duration: {fixed_ms: 1}, destinations: [web]}\n",
            16,
            "generators[0].arrivals.poisson_per_s",
            "1000000000 is out of range (0, 10000] flows/s per NIC",
        ),
        case(
            "fault-at-ms-wraps",
            "faults:\n  - {at_ms: 18446744073709551615, delete_gateway: true}\n",
            16,
            "faults[0].at_ms",
            "out of range 0..=31536000000 ms",
        ),
        Case {
            name: "mtu-zero",
            edit: &[(
                "{name: vm-a, network: net-a, addresses: [10.0.0.1]}",
                "{name: vm-a, network: net-a, addresses: [10.0.0.1], link: {mtu_bytes: 0}}",
            )],
            append: "",
            line: Some(7),
            field: "topology.nics[0].link.mtu_bytes",
            message: "0 is out of range 68..=65535 bytes",
        },
        Case {
            name: "mtu-21",
            edit: &[(
                "  remotes:\n",
                "  links: {uplink: {mtu_bytes: 21}}\n  remotes:\n",
            )],
            append: "",
            // Flow style: the line of the deepest block-style key (`links`), which holds it.
            line: Some(8),
            field: "topology.links.uplink.mtu_bytes",
            message: "21 is out of range 68..=65535 bytes",
        },
        Case {
            name: "max-time-wraps",
            edit: &[],
            append: "limits: {max_time_ms: 18446744073709551615}\n",
            line: Some(15),
            field: "limits.max_time_ms",
            message: "out of range 1..=31536000000 ms",
        },
        gateway_case(
            "gateway-network-typo",
            &("{network: net-a,", "{network: net-b,"),
            "gateway.network",
            "net-b",
        ),
        gateway_case(
            "gateway-profile-typo",
            &("selector: {}}", "selector: {}, profile: dpservise}"),
            "gateway.profile",
            "unknown profile `dpservise`",
        ),
        gateway_case(
            "gateway-override-unknown-field",
            &(
                "selector: {}}",
                "selector: {}, overrides: {timeout_udp: 5}}",
            ),
            "gateway.overrides",
            "unknown profile field `timeout_udp`",
        ),
        gateway_case(
            "gateway-override-timeout-wraps",
            &(
                "selector: {}}",
                "selector: {}, overrides: {timeout_udp_ms: 18446744073709551615}}",
            ),
            "gateway.overrides.timeout_udp_ms",
            "18446744073709551615 is out of range 0..=31536000000 ms",
        ),
        gateway_case(
            "gateway-override-hold-negative",
            &(
                "selector: {}}",
                "selector: {}, overrides: {hold_tcp_fin_ms: -5}}",
            ),
            "gateway.overrides.hold_tcp_fin_ms",
            "-5 is not a whole number of milliseconds",
        ),
        // Packet steps: crafted packets and packet expectations.
        case(
            "tcp-mss-too-large",
            "  - {name: big, from: vm-a, tcp: {to: \"web:80\", mss_bytes: 70000}}\n",
            15,
            "traffic[1].tcp.mss_bytes",
            "70000 is out of range 8..=65495 bytes",
        ),
        Case {
            name: "router-two-addresses-of-a-family",
            edit: &[(
                "  remotes:\n",
                "  router: {addresses: [198.18.0.1, 198.18.0.2]}\n  remotes:\n",
            )],
            append: "",
            line: Some(8),
            field: "topology.router.addresses",
            message: "at most one address per family",
        },
        case(
            "drop-packets-unknown-link",
            "faults:\n  - {at_ms: 0, drop_packets: {on: nic/vm-b, match: {tcp_flags: A}}}\n",
            16,
            "faults[0].drop_packets.on",
            "no link named `nic/vm-b`",
        ),
        case(
            "drop-packets-with-a-variable",
            "faults:\n  - {at_ms: 0, drop_packets: {on: nic/vm-a, match: {src_port: $p}}}\n",
            16,
            "faults[0].drop_packets.match.src_port",
            "a drop filter takes no variables",
        ),
        case(
            "drop-packets-never-matches",
            "faults:\n  - {at_ms: 0, drop_packets: {on: nic/vm-a, match: {proto: udp, tcp_flags: A}}}\n",
            16,
            "faults[0].drop_packets.match.tcp_flags",
            "the pattern can never match",
        ),
        Case {
            name: "service-rto-zero",
            edit: &[(
                "{protocol: tcp, port: 80, response_bytes: 100}",
                "{protocol: tcp, port: 80, response_bytes: 100, rto_ms: 0}",
            )],
            append: "",
            line: Some(9),
            field: "topology.remotes[0].services[0].rto_ms",
            message: "0 is out of range 1..=",
        },
        case(
            "node-counters-no-such-node",
            "expect:\n  node_counters:\n    1: {flows.created: 1}\n",
            17,
            "expect.node_counters.1",
            "node 1 does not exist (nodes 0..=0)",
        ),
        case(
            "node-counters-sim-counter",
            "expect:\n  node_counters:\n    0: {sim.relayed: 1}\n",
            17,
            "expect.node_counters.0.sim.relayed",
            "no gateway counter named `sim.relayed`",
        ),
        case(
            "packet-fragments-padding-too-much",
            "packets:\n  - {name: p, from: vm-a, to: web, udp: {src_port: 1, dst_port: 2, payload_bytes: 60000}, fragments: {data_bytes: 8}, padding_bytes: 65535}\n",
            16,
            "packets[0].padding_bytes",
            "at most 1048576",
        ),
        case(
            "forged-icmp-type-not-an-error",
            "attacks:\n  - {name: f, from: web, forged_icmp: {flow: get, type: 8}}\n",
            16,
            "attacks[0].forged_icmp.type",
            "8 is not an ICMP or ICMPv6 error type",
        ),
        case(
            "packet-unknown-sender",
            "packets:\n  - {name: p, from: vm-typo, to: web, udp: {src_port: 1, dst_port: 2}}\n",
            16,
            "packets[0].from",
            "no NIC or remote host named `vm-typo`",
        ),
        case(
            "packet-unknown-destination",
            "packets:\n  - {name: p, from: vm-a, to: wbe, udp: {src_port: 1, dst_port: 2}}\n",
            16,
            "packets[0].to",
            "no NIC or remote host named `wbe`; closest: web",
        ),
        case(
            "packet-two-transports",
            "packets:\n  - {name: p, from: vm-a, to: web, udp: {src_port: 1, dst_port: 2}, tcp: {src_port: 1, dst_port: 2}}\n",
            16,
            "packets[0]",
            "exactly one of tcp, udp, icmp",
        ),
        case(
            "packet-icmp-error-quotes-nothing",
            "packets:\n  - {name: p, from: web, to: vm-a, icmp: {type: 3, code: 4, rest: 1400}}\n",
            16,
            "packets[0].icmp.quote",
            "ICMP type 3 is an error and must quote a packet",
        ),
        case(
            "packet-echo-with-a-quote",
            "packets:\n  - {name: p, from: vm-a, to: web, icmp: {type: 8, quote: {src: vm-a, dst: web, udp: {src_port: 1, dst_port: 2}}}}\n",
            16,
            "packets[0].icmp.quote",
            "ICMP type 8 is not an error and quotes nothing",
        ),
        case(
            "packet-mixed-families",
            "packets:\n  - {name: p, from: vm-a, to: web, src: \"2001:db8::1\", udp: {src_port: 1, dst_port: 2}}\n",
            16,
            "packets[0].src",
            "are of different families",
        ),
        case(
            "packet-bad-tcp-flag",
            "packets:\n  - {name: p, from: vm-a, to: web, tcp: {src_port: 1, dst_port: 80, flags: SX}}\n",
            16,
            "packets[0].tcp.flags",
            "`X` in `SX` is not a TCP flag letter",
        ),
        case(
            "packet-payload-too-large",
            "packets:\n  - {name: p, from: vm-a, to: web, udp: {src_port: 1, dst_port: 2, payload_bytes: 70000}}\n",
            16,
            "packets[0].udp.payload_bytes",
            "70000 is out of range 0..=65535 bytes",
        ),
        case(
            "packet-fragment-index-missing",
            "packets:\n  - {name: p, from: vm-a, to: web, udp: {src_port: 1, dst_port: 2, payload_bytes: 32}, fragments: {data_bytes: 16, order: [0, 3]}}\n",
            16,
            "packets[0].fragments.order[1]",
            "the datagram has 3 fragments (0..=2)",
        ),
        case(
            "packet-name-taken-by-traffic",
            "packets:\n  - {name: get, from: vm-a, to: web, udp: {src_port: 1, dst_port: 2}}\n",
            16,
            "packets[0].name",
            "duplicate traffic name `get`",
        ),
        case(
            "packet-variable-captured-by-nothing",
            "packets:\n  - {name: p, at_ms: 10, from: web, to: ip:ip1, udp: {src_port: 53, dst_port: $nat}}\n",
            16,
            "packets[0].udp.dst_port",
            "variable `$nat` is not captured by any `expect.packets` entry",
        ),
        case(
            "packet-variable-of-the-wrong-kind",
            "packets:\n  - {name: p, at_ms: 10, from: web, to: $a, udp: {src_port: 53, dst_port: 1}}\nexpect:\n  packets:\n    - {on: uplink/0, capture: {a: src_port}}\n",
            16,
            "packets[0].to",
            "variable `$a` holds a number (`src_port`), and this field an address",
        ),
        case(
            "packet-variable-at-time-zero",
            "packets:\n  - {name: p, from: web, to: ip:ip1, udp: {src_port: 53, dst_port: $n}}\nexpect:\n  packets:\n    - {on: uplink/0, capture: {n: src_port}}\n",
            16,
            "packets[0].at_ms",
            "send it after 0 ms",
        ),
        case(
            "packet-variable-other-field-still-checked",
            "packets:\n  - {name: p, at_ms: 10, from: web, to: ip:ip1, udp: {src_port: 70000, dst_port: $n}}\nexpect:\n  packets:\n    - {on: uplink/0, capture: {n: src_port}}\n",
            16,
            "packets[0].udp.src_port",
            "70000 is out of range 0..=65535",
        ),
        case(
            "counters-at-counter-typo",
            "expect:\n  counters_at:\n    - {at_ms: 10, counters: {drop.unsolicted: 0}}\n",
            17,
            "expect.counters_at[0].counters.drop.unsolicted",
            "no counter named `drop.unsolicted`; closest: drop.unsolicited",
        ),
        case(
            "counters-at-unknown-nic",
            "expect:\n  counters_at:\n    - {at_ms: 10, nic_counters: {vm-typo: {host.received: 1}}}\n",
            17,
            "expect.counters_at[0].nic_counters.vm-typo",
            "no NIC named `vm-typo`",
        ),
        case(
            "counters-at-time-out-of-range",
            "expect:\n  counters_at:\n    - {at_ms: 99999999999999, counters: {flows.created: 1}}\n",
            17,
            "expect.counters_at[0].at_ms",
            "99999999999999 is out of range",
        ),
        case(
            "expect-packets-number-wider-than-the-field",
            "expect:\n  packets:\n    - {on: uplink/0, match: {proto: 262}, never: true}\n",
            17,
            "expect.packets[0].match.proto",
            "262 is more than `proto` can hold (255): nothing can match",
        ),
        case(
            "drop-packets-in-block-of",
            "faults:\n  - {at_ms: 0, drop_packets: {on: nic/vm-a, match: {src_port: {in_block_of: vm-a}}}}\n",
            16,
            "faults[0].drop_packets.match.src_port",
            "a drop filter takes no `in_block_of`",
        ),
        case(
            "expect-packets-unknown-link",
            "expect:\n  packets:\n    - {on: nic/vm-typo, match: {proto: udp}}\n",
            17,
            "expect.packets[0].on",
            "no link named `nic/vm-typo`",
        ),
        case(
            "expect-packets-variable-not-captured",
            "expect:\n  packets:\n    - {on: uplink/0, match: {src_port: $p}}\n",
            17,
            "expect.packets[0].match.src_port",
            "variable `$p` is not captured by an earlier expectation",
        ),
        case(
            "expect-packets-variable-of-the-wrong-kind",
            "expect:\n  packets:\n    - {on: uplink/0, capture: {a: src}}\n    - {on: uplink/0, match: {src_port: $a}}\n",
            18,
            "expect.packets[1].match.src_port",
            "variable `$a` holds an address and `src_port` a number",
        ),
        case(
            "expect-packets-never-matches",
            "expect:\n  packets:\n    - {on: uplink/0, match: {tcp_flags: S, icmp_type: 3}}\n",
            17,
            "expect.packets[0].match.tcp_flags",
            "no packet has both `icmp_type` and `tcp_flags`: the pattern can never match",
        ),
        case(
            "expect-packets-min-above-max",
            "expect:\n  packets:\n    - {on: uplink/0, match: {src_port: {min: 2000, max: 1000}}}\n",
            17,
            "expect.packets[0].match.src_port",
            "min 2000 is above max 1000: nothing can match",
        ),
        case(
            "expect-packets-never-and-count",
            "expect:\n  packets:\n    - {on: uplink/0, never: true, count: 1}\n",
            17,
            "expect.packets[0].never",
            "give `never` or `count`, not both",
        ),
        case(
            "expect-packets-capture-from-nothing",
            "expect:\n  packets:\n    - {on: uplink/0, never: true, capture: {p: src_port}}\n",
            17,
            "expect.packets[0].capture",
            "a capture needs a matching packet",
        ),
        case(
            "expect-packets-unknown-nic-block",
            "expect:\n  packets:\n    - {on: uplink/0, match: {src_port: {in_block_of: vm-b}}}\n",
            17,
            "expect.packets[0].match.src_port",
            "no NIC named `vm-b`",
        ),
        case(
            "expect-packets-address-not-an-address",
            "expect:\n  packets:\n    - {on: uplink/0, match: {dst: web}}\n",
            17,
            "expect.packets[0].match.dst",
            "`web` is not an address, `$variable` or `*`",
        ),
        case(
            "expect-packets-window-backwards",
            "expect:\n  packets:\n    - {on: uplink/0, between_ms: [50, 10]}\n",
            17,
            "expect.packets[0].between_ms",
            "[50, 10] ends before it begins",
        ),
        Case {
            name: "gateway-override-block-style",
            edit: &[(
                "gateway: {network: net-a, ips: [{name: ip1, addresses: [203.0.113.1]}], ports_per_nic: 64, selector: {}}\n",
                "gateway:\n  network: net-a\n  ips: [{name: ip1, addresses: [203.0.113.1]}]\n  selector: {}\n  overrides:\n    timeout_tcp_established_ms: 99999999999999\n",
            )],
            append: "",
            line: Some(17),
            field: "gateway.overrides.timeout_tcp_established_ms",
            message: "99999999999999 is out of range 0..=31536000000 ms",
        },
    ]
}

/// A case that edits the one-line `gateway:` section of [`BASE`] (line 12).
const fn gateway_case(
    name: &'static str,
    edit: &'static (&'static str, &'static str),
    field: &'static str,
    message: &'static str,
) -> Case {
    Case {
        name,
        edit: std::slice::from_ref(edit),
        append: "",
        line: Some(12),
        field,
        message,
    }
}

fn text(c: &Case) -> String {
    let mut t = BASE.to_string();
    for (from, to) in c.edit {
        assert!(t.contains(from), "{}: edit `{from}` does not apply", c.name);
        t = t.replacen(from, to, 1);
    }
    t.push_str(c.append);
    t
}

fn run(path: &Path) -> (u8, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run_cmd_to(&mut out, &mut err, path, None, None, None);
    let all = String::from_utf8_lossy(&out).into_owned() + &String::from_utf8_lossy(&err);
    (code.0, all)
}

#[test]
fn the_base_scenario_is_valid() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bad_scenarios");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("base.yaml");
    std::fs::write(&path, BASE).unwrap();
    let (code, out) = run(&path);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn every_unknown_name_and_out_of_range_number_is_bad_input_naming_file_line_and_field() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bad_scenarios");
    std::fs::create_dir_all(&dir).unwrap();
    let mut failures = Vec::new();
    for c in cases() {
        let path = dir.join(format!("{}.yaml", c.name));
        std::fs::write(&path, text(&c)).unwrap();
        let (code, out) = run(&path);
        let file = path.display().to_string();
        let prefix = match c.line {
            Some(l) => format!("{file}:{l}:"),
            None => format!("{file}: {}", c.field),
        };
        let ok = code == 2
            && out.contains(&prefix)
            && out.contains(&format!("{}: ", c.field))
            && out.contains(c.message);
        if !ok {
            failures.push(format!(
                "{}: exit {code}, wanted 2 with `{prefix}`, field `{}`, `{}`:\n{out}",
                c.name, c.field, c.message
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_json_schema_carries_the_same_bounds() {
    let schema: serde_json::Value =
        serde_json::from_str(&natsim::scenario::schema::json_schema()).unwrap();
    let defs = &schema["$defs"];
    let prop = |def: &str, field: &str| defs[def]["properties"][field].clone();
    assert_eq!(prop("PingDoc", "interval_ms")["maximum"], MAX_MS);
    assert_eq!(prop("TcpDoc", "hold_ms")["maximum"], MAX_MS);
    assert_eq!(prop("TrafficItem", "at_ms")["maximum"], MAX_MS);
    assert_eq!(prop("PacketItem", "at_ms")["maximum"], MAX_MS);
    assert_eq!(prop("UdpFieldsDoc", "payload_bytes")["maximum"], 65_535);
    assert_eq!(prop("FragmentsDoc", "data_bytes")["minimum"], 8);
    assert_eq!(prop("PortScanDoc", "interval_us")["maximum"], MAX_US);
    assert_eq!(prop("LinkConfig", "mtu_bytes")["minimum"], MIN_MTU_BYTES);
    assert_eq!(prop("LinkConfig", "mtu_bytes")["maximum"], MAX_MTU_BYTES);
    assert_eq!(prop("TcpDoc", "rto_ms")["minimum"], 1);
    assert_eq!(prop("UdpDoc", "request_bytes")["maximum"], 65_507);
    assert_eq!(
        prop("ArrivalsDoc", "poisson_per_s")["maximum"],
        natsim::scenario::ranges::MAX_RATE_PER_S
    );
}

/// Replay-config numbers that feed virtual time are bounded: no wrap, no saturation.
#[test]
fn replay_config_speed_and_time_offset_are_range_checked() {
    use natsim::replay::ReplayConfig;
    for (text, field, msg) in [
        ("speed: 1e-300\n", "speed", "out of range 0.001..=1000000"),
        (
            "time_offset_ms: 18446744073709551615\n",
            "time_offset_ms",
            "out of range 0..=31536000000 ms",
        ),
    ] {
        let e = ReplayConfig::parse(text, "r.yaml")
            .expect_err(text)
            .to_string();
        assert!(
            e.contains("r.yaml:1:") && e.contains(field) && e.contains(msg),
            "{e}"
        );
    }
}
