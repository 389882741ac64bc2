//! Source classification for automatic side mapping (`natsim::replay::classify`): addresses
//! that can never be a NIC's (unspecified, broadcast, multicast, link-local, loopback, the
//! gateway's own) and neighbour discovery are classified, counted and reported with the first
//! record of each kind; they never become NICs, never shift another host's block and never fail
//! the replay.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use natsim::replay::{PcapCaptureWriter, ReplayConfig, ReplayOutcome, replay};
use natsim::wire::PacketRepr;

fn tmp(name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("replay_sources")
        .join(name)
}

fn corpus(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/pcaps/tcpdump")
        .join(name)
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

fn udp(src: (&str, u16), dst: (&str, u16)) -> Vec<u8> {
    PacketRepr::udp((ip(src.0), src.1), (ip(dst.0), dst.1), b"payload").emit()
}

/// An IPv6 ICMPv6 message of `icmp_type` (checksum left zero: it is never replayed).
fn icmpv6(src: &str, dst: &str, icmp_type: u8) -> Vec<u8> {
    let (IpAddr::V6(s), IpAddr::V6(d)) = (ip(src), ip(dst)) else {
        panic!("IPv6 addresses");
    };
    let mut p = vec![0x60, 0, 0, 0, 0, 8, 58, 255];
    p.extend_from_slice(&s.octets());
    p.extend_from_slice(&d.octets());
    p.extend_from_slice(&[icmp_type, 0, 0, 0, 0, 0, 0, 0]);
    p
}

const T0: u64 = 1_600_000_000_000_000_000;

fn write_pcap(name: &str, packets: &[Vec<u8>]) -> PathBuf {
    let mut w = PcapCaptureWriter::new(Vec::new()).expect("vec");
    for (i, p) in packets.iter().enumerate() {
        w.write_packet(T0 + i as u64 * 1000, p).expect("vec");
    }
    let path = tmp(name);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(&path, w.finish().expect("vec")).expect("write");
    path
}

fn run(path: &Path, out: &str) -> ReplayOutcome {
    let config = ReplayConfig {
        out_dir: Some(tmp(out)),
        verdicts: true,
        ..ReplayConfig::default()
    };
    replay(path, &config).expect("replays")
}

/// The capture a laptop on a public network takes while it boots: DHCP, router
/// advertisements, neighbour solicitation, mDNS, a stray packet from the gateway's own
/// address, then real traffic. Before classification the DHCP client's 0.0.0.0 became an
/// inside NIC and the gateway refused its own configuration.
#[test]
fn dhcp_nd_multicast_and_own_addresses_are_classified_not_nics() {
    let packets = vec![
        udp(("0.0.0.0", 68), ("255.255.255.255", 67)),
        udp(("198.51.100.1", 67), ("255.255.255.255", 68)),
        icmpv6("fe80::1", "ff02::1", 134),
        icmpv6("fe80::1c", "ff02::2", 133),
        icmpv6("2001:db8:1::5", "ff02::1:ff00:1", 135),
        udp(("169.254.3.4", 5353), ("8.8.8.8", 53)),
        udp(("127.0.0.1", 40000), ("127.0.0.1", 53)),
        udp(("203.0.113.1", 1024), ("8.8.8.8", 53)),
        // The first natable sender: the guessed inside host.
        udp(("198.51.100.7", 40000), ("8.8.8.8", 53)),
        udp(("198.51.100.7", 5353), ("224.0.0.251", 5353)),
        udp(("8.8.8.8", 53), ("198.51.100.7", 40000)),
    ];
    let path = write_pcap("boot.pcap", &packets);
    let o = run(&path, "boot");
    let s = &o.summary;
    assert_eq!(o.exit_code, 0);
    assert_eq!(s.violation_total(), 0);
    let classified: Vec<(&str, u64)> = s.classified.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    assert_eq!(
        classified,
        vec![
            ("not_natable_source.gateway_address", 1),
            ("not_natable_source.link_local", 1),
            ("not_natable_source.loopback", 1),
            ("not_natable_source.unspecified", 1),
            ("passed_link_local.broadcast_destination", 1),
            ("passed_link_local.multicast_destination", 1),
            ("passed_link_local.neighbour_discovery", 3),
        ]
    );
    // The guess skipped every sender that cannot be a NIC.
    assert_eq!(
        s.guesses,
        vec!["inside hosts = {198.51.100.7} (first sender); pass --inside PREFIX to set"]
    );
    // One NIC, and it has the first block: nothing shifted it.
    assert_eq!(s.nics.total, 1);
    assert_eq!(s.nics.hosts[0].name, "host-198.51.100.7");
    assert_eq!(
        s.nics.hosts[0].block.as_deref(),
        Some("203.0.113.1:1024-3071")
    );
    assert_eq!(s.replayed_packets, 2);
    assert_eq!(s.verdicts.get("forward.outside"), Some(&1));
    assert_eq!(s.verdicts.get("forward.inside"), Some(&1));
    // Every record is accounted for.
    let skipped: u64 = s.skipped.values().sum();
    let classified: u64 = s.classified.values().sum();
    assert_eq!(s.replayed_packets + skipped + classified, s.packets_read);
    // The first of each kind, with its record index, in the summary and the table.
    assert!(
        s.classified_first.contains(
            &"record 0: not_natable_source (unspecified): udp 0.0.0.0:68 > 255.255.255.255:67"
                .to_string()
        ),
        "{:?}",
        s.classified_first
    );
    assert!(
        s.classified_first
            .iter()
            .any(|c| c.starts_with("record 2: passed_link_local (neighbour_discovery)"))
    );
    assert!(
        s.classified_first
            .iter()
            .any(|c| c.starts_with("record 9: passed_link_local (multicast_destination)"))
    );
    assert_eq!(s.classified_first.len(), 7);
    assert!(
        o.table
            .contains("classified.not_natable_source.unspecified")
    );
    assert!(o.table.contains("classified first"));
    // And a verdict line per classified packet.
    let lines = std::fs::read_to_string(tmp("boot").join("verdicts.jsonl")).expect("verdicts");
    let first: serde_json::Value =
        serde_json::from_str(lines.lines().next().expect("a line")).expect("json");
    assert_eq!(first["verdict"], "not_natable_source");
    assert_eq!(first["reason"], "unspecified");
}

/// Inside hosts by prefix keep their blocks in order of first appearance, whatever
/// classified traffic comes between them.
#[test]
fn classified_packets_do_not_shift_blocks_of_inside_hosts() {
    let packets = vec![
        udp(("10.0.0.9", 68), ("255.255.255.255", 67)),
        udp(("10.0.0.1", 40000), ("8.8.8.8", 53)),
        udp(("10.0.0.5", 5353), ("224.0.0.251", 5353)),
        udp(("10.0.0.2", 40000), ("8.8.8.8", 53)),
    ];
    let path = write_pcap("inside.pcap", &packets);
    let o = run(&path, "inside");
    let hosts: Vec<(&str, Option<&str>)> = o
        .summary
        .nics
        .hosts
        .iter()
        .map(|h| (h.name.as_str(), h.block.as_deref()))
        .collect();
    assert_eq!(
        hosts,
        vec![
            ("host-10.0.0.1", Some("203.0.113.1:1024-3071")),
            ("host-10.0.0.2", Some("203.0.113.1:3072-5119")),
        ]
    );
}

/// Real captures with neighbour discovery, MLD from link-local senders and multicast replay
/// with exit 0 and the classification counted.
#[test]
fn real_nd_and_multicast_captures_replay_with_exit_0() {
    for (name, key, n) in [
        (
            "icmpv6-ra-pref64.pcap",
            "passed_link_local.neighbour_discovery",
            4,
        ),
        ("icmpv6.pcap", "not_natable_source.link_local", 4),
        (
            "IGMP_V2.pcap",
            "passed_link_local.multicast_destination",
            18,
        ),
    ] {
        let o = run(&corpus(name), name);
        assert_eq!(o.exit_code, 0, "{name}");
        assert_eq!(o.summary.classified.get(key), Some(&n), "{name}");
        assert_eq!(o.summary.nics.total, 0, "{name}");
    }
}
