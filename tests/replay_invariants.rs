//! `natsim replay` runs the simulator's behaviour §6 invariant checker over the replay: every
//! invariant is either checked (with a count of checks) or reported not applicable with a
//! reason, and deliberately broken dataplanes (`--broken NAME`) are caught, each violation
//! naming the capture record it happened at. Captures are built in the test.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use natsim::replay::{
    PcapCaptureWriter, ReplayCliOptions, ReplayConfig, ReplayOutcome, ReplaySummary, replay_cmd,
    replay_with,
};
use natsim::swarm::run::Target;
use natsim::wire::PacketRepr;

fn tmp(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("replay_invariants")
        .join(name)
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

const T0: u64 = 1_600_000_000_000_000_000;
const SECOND_NS: u64 = 1_000_000_000;

fn udp(src: (&str, u16), dst: (&str, u16)) -> Vec<u8> {
    PacketRepr::udp((ip(src.0), src.1), (ip(dst.0), dst.1), b"q").emit()
}

/// Writes a raw-IP nanosecond pcap of `(time after T0 in ns, packet)` to `tmp(name)`.
fn write_pcap(name: &str, packets: &[(u64, Vec<u8>)]) -> PathBuf {
    let mut w = PcapCaptureWriter::new(Vec::new()).expect("vec");
    for (t, p) in packets {
        w.write_packet(T0 + t, p).expect("vec");
    }
    let path = tmp(name);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(&path, w.finish().expect("vec")).expect("write");
    path
}

/// Replays `capture` against `target` with the default config.
fn run(capture: &Path, out: &str, target: Target) -> ReplayOutcome {
    let config = ReplayConfig {
        out_dir: Some(tmp(out)),
        ..ReplayConfig::default()
    };
    replay_with(capture, &config, target).expect("replays")
}

/// (checks, violations) of an invariant by SPEC name.
fn invariant(s: &ReplaySummary, name: &str) -> (u64, u64) {
    let i = s
        .invariants
        .iter()
        .find(|i| i.name == name)
        .unwrap_or_else(|| panic!("{name} is reported"));
    (i.checks, i.violations)
}

fn broken(name: &str) -> Target {
    Target::broken(name).expect("known breakage")
}

/// Two hosts query a resolver and get answers; 400 s later (past every profile's UDP timeout
/// under `rfc`, 300 s) the first queries again, so its first flow has expired by then.
fn two_hosts_capture(name: &str) -> PathBuf {
    write_pcap(
        name,
        &[
            (0, udp(("10.0.0.1", 5000), ("8.8.8.8", 53))),
            (1_000, udp(("10.0.0.2", 5001), ("8.8.8.8", 53))),
            (2_000, udp(("8.8.8.8", 53), ("10.0.0.1", 5000))),
            (3_000, udp(("8.8.8.8", 53), ("10.0.0.2", 5001))),
            (400 * SECOND_NS, udp(("10.0.0.1", 5002), ("8.8.8.8", 53))),
        ],
    )
}

#[test]
fn replay_checks_every_invariant_on_a_clean_capture() {
    let capture = two_hosts_capture("clean.pcap");
    let o = run(&capture, "clean", Target::Real);
    let s = &o.summary;
    assert_eq!(o.exit_code, 0, "{:?}", s.violation_examples);
    assert_eq!(s.violation_total(), 0);
    let names: Vec<&str> = s.invariants.iter().map(|i| i.name).collect();
    assert_eq!(
        names,
        [
            "no-inbound-initiation",
            "port-limit",
            "isolation",
            "wire-validity",
            "mapping-stability",
            "timers",
            "selection",
            "status",
            "determinism",
            "liveness"
        ]
    );
    for i in s.invariants.iter().filter(|i| i.name != "determinism") {
        assert!(i.checked, "{} is checked", i.name);
        assert!(i.checks > 0, "{} ran at least once: {i:?}", i.name);
        assert_eq!(i.not_applicable, None);
    }
    let det = &s.invariants[8];
    assert!(!det.checked);
    assert_eq!(det.checks, 0);
    assert!(
        det.not_applicable
            .is_some_and(|why| why.contains("single run"))
    );
    // The expiry of the first flow was checked (timers), and the table says so too.
    assert!(invariant(s, "timers").0 >= 1);
    assert!(
        o.table
            .contains("invariant 9 determinism           | not applicable:"),
        "{}",
        o.table
    );
    let json: serde_json::Value = serde_json::from_str(&s.to_json()).expect("json");
    assert_eq!(json["invariants"][5]["name"], "timers");
    assert_eq!(json["invariants"][8]["checked"], false);
    assert_eq!(json["dataplane"], serde_json::Value::Null);
}

#[test]
fn replay_reports_a_leaky_filter_as_inbound_initiation_at_the_capture_record() {
    // Record 1 is unsolicited: nothing went to 198.51.100.9. Readdressed to the NAT IP with its
    // port kept, it aims at port 1040, the port `leaky-filter` leaks by default.
    let capture = write_pcap(
        "leaky.pcap",
        &[
            (0, udp(("10.0.0.1", 5000), ("8.8.8.8", 53))),
            (1_000, udp(("198.51.100.9", 4444), ("10.0.0.1", 1040))),
        ],
    );
    let real = run(&capture, "leaky-real", Target::Real);
    assert_eq!(real.exit_code, 0, "{:?}", real.summary.violation_examples);
    assert_eq!(real.summary.gateway.get("drop.unsolicited"), Some(&1));

    let o = run(&capture, "leaky", broken("leaky-filter"));
    let s = &o.summary;
    assert_eq!(o.exit_code, 4);
    assert_eq!(invariant(s, "no-inbound-initiation").1, 1);
    assert_eq!(s.violation_total(), 1);
    let v = &s.violation_examples[0];
    assert_eq!(
        (v.invariant.name(), v.packet_index),
        ("no-inbound-initiation", 1)
    );
    assert_eq!(s.dataplane.as_deref(), Some("leaky-filter:1040"));
}

#[test]
fn replay_cmd_with_broken_exits_4_and_rejects_unknown_names() {
    let capture = write_pcap(
        "leaky_cmd.pcap",
        &[
            (0, udp(("10.0.0.1", 5000), ("8.8.8.8", 53))),
            (1_000, udp(("198.51.100.9", 4444), ("10.0.0.1", 1040))),
        ],
    );
    let options = |broken: &str| ReplayCliOptions {
        out: Some(tmp("leaky_cmd")),
        broken: Some(broken.to_string()),
        ..ReplayCliOptions::default()
    };
    assert_eq!(
        replay_cmd(&capture, None, options("leaky-filter:1040")).expect("runs"),
        4
    );
    let e = replay_cmd(&capture, None, options("leaky")).expect_err("unknown name");
    assert!(
        e.to_string().contains("unknown broken dataplane `leaky`"),
        "{e}"
    );
}

#[test]
fn replay_reports_bad_checksums_as_wire_validity() {
    let capture = two_hosts_capture("badsum.pcap");
    let o = run(&capture, "badsum", broken("bad-checksum"));
    let s = &o.summary;
    assert_eq!(o.exit_code, 4);
    // Every packet translated to the outside (records 0, 1 and 4) is corrupted, and only that
    // is reported: the checker's flow model still follows the corrupted packets.
    assert_eq!(
        invariant(s, "wire-validity").1,
        3,
        "{:?}",
        s.violation_examples
    );
    assert_eq!(s.violation_total(), 3, "{:?}", s.violation_examples);
    let at: Vec<u64> = s
        .violation_examples
        .iter()
        .map(|v| v.packet_index)
        .collect();
    assert_eq!(at, [0, 1, 4]);
}

#[test]
fn replay_reports_a_reply_to_the_wrong_nic_as_isolation() {
    let capture = two_hosts_capture("wrongnic.pcap");
    let o = run(&capture, "wrongnic", broken("reply-to-wrong-nic"));
    let s = &o.summary;
    assert_eq!(o.exit_code, 4);
    // Both answers (records 2 and 3) reach the other host.
    assert_eq!(invariant(s, "isolation").1, 2, "{:?}", s.violation_examples);
    assert_eq!(s.violation_total(), 2);
    assert_eq!(s.violation_examples[0].packet_index, 2);
}

#[test]
fn replay_reports_a_dataplane_ignoring_a_block_as_wrong_status() {
    let capture = two_hosts_capture("status.pcap");
    let o = run(&capture, "status", broken("wrong-status"));
    let s = &o.summary;
    assert_eq!(o.exit_code, 4);
    // The second host's block never reached the dataplane: the end-of-capture status check
    // (attributed to the last record, 4) finds the routing table and the dataplane disagree.
    assert_eq!(invariant(s, "status"), (1, 1), "{:?}", s.violation_examples);
    // Liveness also sees the block-less drop of a NIC the control plane gave a block.
    assert_eq!(invariant(s, "liveness").1, 1, "{:?}", s.violation_examples);
    assert_eq!(s.violation_total(), 2);
    assert!(
        s.violation_examples
            .iter()
            .any(|v| v.invariant.name() == "status" && v.packet_index == 4)
    );
    assert_eq!(s.gateway.get("drop.no_nat_block"), Some(&1));
}
