//! Verdicts where capture readers look: every packet `natsim replay` writes to
//! `inside.pcapng` / `outside.pcapng` carries a pcapng packet comment with its verdict and
//! translation. Read back with the project's own reader always, and with tshark's
//! `frame.comment` filter where tshark is installed (`scripts/install-tshark.sh`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use natsim::replay::pcapng::packet_comments;
use natsim::replay::{ReplayConfig, ReplayOutcome, read_packets, replay, replay_with};
use natsim::swarm::run::Target;
use natsim::wire::{PacketRepr, TransportRepr};

fn corpus(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/pcaps/tcpdump")
        .join(name)
}

fn tmp(name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("replay_comments")
        .join(name)
}

fn run(out: &str, fix_checksums: bool, target: Target) -> ReplayOutcome {
    let config = ReplayConfig {
        out_dir: Some(tmp(out)),
        fix_checksums,
        ..ReplayConfig::default()
    };
    if matches!(target, Target::Real) {
        replay(&corpus("whois.pcap"), &config).expect("replays")
    } else {
        replay_with(&corpus("whois.pcap"), &config, target).expect("replays")
    }
}

/// Every packet's comment, in file order; every packet has one.
fn comments(out: &str, file: &str) -> Vec<String> {
    let path = tmp(out).join(file);
    let bytes = std::fs::read(&path).expect("output");
    let comments = packet_comments(&bytes).expect("own reader parses the output");
    let packets = read_packets(&path).expect("re-reads").0.len();
    assert_eq!(comments.len(), packets);
    comments
        .into_iter()
        .enumerate()
        .map(|(i, c)| c.unwrap_or_else(|| panic!("{file} packet {i} has no comment")))
        .collect()
}

#[test]
fn every_replayed_packet_carries_its_verdict_and_translation() {
    let o = run("whois", true, Target::Real);
    assert_eq!(o.exit_code, 0);
    let outside = comments("whois", "outside.pcapng");
    let inside = comments("whois", "inside.pcapng");
    assert_eq!(outside.len() as u64, o.summary.outputs["outside.pcapng"]);
    assert_eq!(inside.len() as u64, o.summary.outputs["inside.pcapng"]);
    // The SYN leaves translated to the NAT endpoint the outside view shows.
    let syn = &read_packets(tmp("whois").join("outside.pcapng"))
        .expect("re-reads")
        .0[0];
    let (repr, _) = PacketRepr::parse(&syn.ip).expect("parses");
    let TransportRepr::Tcp { src_port, .. } = repr.transport else {
        panic!("a TCP SYN");
    };
    let nat = SocketAddr::new(repr.ip.src, src_port);
    assert_eq!(nat.ip().to_string(), "203.0.113.1");
    assert_eq!(outside[0], format!("translated 10.0.2.15:44188 → {nat}"));
    assert_eq!(
        inside[0],
        format!("translated 10.0.2.15:44188 → {nat}, sent outside")
    );
    // The SYN-ACK comes in to the NAT and is delivered to the host.
    assert_eq!(
        outside[1],
        format!(
            "translated {nat} → 10.0.2.15:44188, delivered to host-10.0.2.15 (reply half, readdressed to the NAT)"
        )
    );
    assert_eq!(
        inside[1],
        format!("translated {nat} → 10.0.2.15:44188, delivered to host-10.0.2.15")
    );
    assert!(
        outside
            .iter()
            .chain(&inside)
            .all(|c| !c.contains("dropped"))
    );
}

#[test]
fn dropped_packets_say_why_and_tshark_finds_them() {
    // Without --fix-checksums the offloaded checksums drop the host's packets, and the replies
    // then have no flow.
    let o = run("whois-drops", false, Target::Real);
    let outside = comments("whois-drops", "outside.pcapng");
    let inside = comments("whois-drops", "inside.pcapng");
    let bad = inside
        .iter()
        .filter(|c| *c == "dropped: bad_checksum")
        .count() as u64;
    assert_eq!(bad, o.summary.gateway["drop.bad_checksum"]);
    let unsolicited = outside
        .iter()
        .filter(|c| c.starts_with("dropped: unsolicited"))
        .count() as u64;
    assert_eq!(unsolicited, o.summary.gateway["drop.unsolicited"]);
    assert!(unsolicited > 0 && bad > 0);
    for (file, want) in [("inside.pcapng", bad), ("outside.pcapng", unsolicited)] {
        if let Some(n) = tshark_count(
            &tmp("whois-drops").join(file),
            "frame.comment contains \"dropped\"",
        ) {
            assert_eq!(n, want, "tshark on {file}");
        }
    }
}

#[test]
fn violations_are_marked_on_the_packets_involved() {
    let target = Target::broken("bad-checksum").expect("known breakage");
    let o = run("whois-broken", true, target);
    assert_eq!(o.exit_code, 4);
    let outside = comments("whois-broken", "outside.pcapng");
    let marked: Vec<&String> = outside
        .iter()
        .filter(|c| c.contains("INVARIANT VIOLATED"))
        .collect();
    assert!(!marked.is_empty());
    assert!(
        marked.iter().all(|c| c.contains("wire-validity")),
        "{marked:?}"
    );
    if let Some(n) = tshark_count(
        &tmp("whois-broken").join("outside.pcapng"),
        "frame.comment contains \"INVARIANT VIOLATED\"",
    ) {
        assert_eq!(n, marked.len() as u64);
    }
}

/// Packets tshark's display `filter` selects, or `None` when tshark is not installed.
fn tshark_count(file: &Path, filter: &str) -> Option<u64> {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(file)
        .arg("-Y")
        .arg(filter)
        .output()
        .ok()?;
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8_lossy(&out.stdout).lines().count() as u64)
}

// ----- `natsim run --pcap-dir` captures carry the same comments -------------------------------

/// Runs `scenario` (with `capture:` set to `links`) through `natsim run --pcap-dir` and returns
/// the written capture.
fn run_capture(scenario: &str, links: &str, out: &str) -> PathBuf {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("scenarios")
            .join(format!("{scenario}.yaml")),
    )
    .expect("scenario");
    let dir = tmp(out);
    std::fs::create_dir_all(&dir).expect("mkdir");
    let file = dir.join(format!("{scenario}.yaml"));
    std::fs::write(&file, format!("{text}\ncapture: [{links}]\n")).expect("write scenario");
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let exit =
        natsim::scenario::cli::run_cmd_to(&mut stdout, &mut stderr, &file, None, Some(&dir), None);
    assert_eq!(u8::from(exit), 0, "{}", String::from_utf8_lossy(&stderr));
    dir.join(format!("{scenario}-seed1.pcapng"))
}

/// Every packet's comment in a `natsim run` capture (the links captured all touch the gateway,
/// so every packet has one).
fn run_comments(file: &Path) -> Vec<String> {
    let bytes = std::fs::read(file).expect("capture");
    let comments = packet_comments(&bytes).expect("own reader parses the run capture");
    assert!(!comments.is_empty());
    comments
        .into_iter()
        .enumerate()
        .map(|(i, c)| c.unwrap_or_else(|| panic!("{} packet {i} has no comment", file.display())))
        .collect()
}

#[test]
fn run_captures_carry_verdicts_and_tshark_filters_them() {
    // port-scan: 402 scan packets to the NAT IP dropped as unsolicited (its expectations), while
    // vm-a's flows are translated both ways.
    let file = run_capture("port-scan", "nic/vm-a, uplink/0", "run-port-scan");
    let comments = run_comments(&file);
    let dropped = comments
        .iter()
        .filter(|c| *c == "dropped: unsolicited")
        .count() as u64;
    assert_eq!(dropped, 402);
    let out = comments
        .iter()
        .filter(|c| c.starts_with("translated 10.0.0.1:") && c.ends_with(", sent outside"))
        .count();
    let delivered = comments
        .iter()
        .filter(|c| c.contains(", delivered to vm-a"))
        .count();
    assert!(out > 0 && delivered > 0, "{comments:?}");
    if let Some(n) = tshark_count(&file, "frame.comment == \"dropped: unsolicited\"") {
        assert_eq!(n, dropped, "tshark on {}", file.display());
    }
    if let Some(n) = tshark_count(
        &file,
        "frame.interface_name == \"nic/vm-a\" && frame.comment contains \"dropped\"",
    ) {
        assert_eq!(n, 0, "nothing unsolicited reaches the NIC's link");
    }
}

#[test]
fn run_captures_mark_violations_on_the_packets_involved() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/tcp-basic.yaml");
    let sc = natsim::scenario::load::load(&path).expect("loads");
    let target = Target::broken("bad-checksum").expect("known breakage");
    let out =
        natsim::scenario::report::run_scenario(&sc, None, &|| target.factory()).expect("runs");
    assert!(out.report.violation.is_some(), "bad-checksum is caught");
    let dir = tmp("run-broken");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let file = dir.join("tcp-basic.pcapng");
    let links: Vec<(String, &[natsim::sim::engine::CapturedPacket])> = out
        .captures
        .iter()
        .map(|(n, p)| (n.clone(), p.as_slice()))
        .collect();
    natsim::scenario::capture::write_pcapng(&file, &links).expect("writes");
    let comments = run_comments(&file);
    let marked: Vec<&String> = comments
        .iter()
        .filter(|c| c.contains("INVARIANT VIOLATED"))
        .collect();
    assert!(!marked.is_empty(), "{comments:?}");
    assert!(
        marked.iter().all(|c| c.contains("wire-validity")),
        "{marked:?}"
    );
    if let Some(n) = tshark_count(&file, "frame.comment contains \"INVARIANT VIOLATED\"") {
        assert_eq!(n, marked.len() as u64);
    }
}
