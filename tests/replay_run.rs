//! End-to-end replays of real captures (tcpdump corpus) and of small synthetic ones: concrete
//! translations, the outputs re-read with the replay's own reader, time, checksums, capacity,
//! interface maps, errors and determinism.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use natsim::replay::{
    CaptureDirection, EntrySide, NatPool, OwnedPacket, PcapCaptureWriter, PcapNgCaptureWriter,
    ReplayCliOptions, ReplayConfig, ReplayOutcome, read_packets, replay, replay_cmd,
};
use natsim::wire::tcp_flags::{ACK, SYN};
use natsim::wire::{IcmpRepr, PacketRepr, TransportRepr};

fn corpus(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/pcaps/tcpdump")
        .join(name)
}

fn tmp(name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("replay_run")
        .join(name)
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

/// Replays `capture` into `tmp(out)` with the default config changed by `tweak`.
fn run(capture: &Path, out: &str, tweak: impl FnOnce(&mut ReplayConfig)) -> ReplayOutcome {
    let mut config = ReplayConfig {
        out_dir: Some(tmp(out)),
        verdicts: true,
        ..ReplayConfig::default()
    };
    tweak(&mut config);
    replay(capture, &config).expect("replays")
}

fn count(map: &std::collections::BTreeMap<String, u64>, key: &str) -> u64 {
    map.get(key).copied().unwrap_or(0)
}

fn view(out: &str, file: &str) -> Vec<OwnedPacket> {
    read_packets(tmp(out).join(file))
        .expect("output re-reads")
        .0
}

/// (protocol, source, destination) of a packet whose checksums all verify.
fn endpoints(p: &OwnedPacket) -> (&'static str, SocketAddr, SocketAddr) {
    let (repr, report) = PacketRepr::parse(&p.ip).expect("output parses");
    assert!(report.all_ok(), "checksums of {repr:?}: {report:?}");
    let (proto, sp, dp) = match &repr.transport {
        TransportRepr::Tcp {
            src_port, dst_port, ..
        } => ("tcp", *src_port, *dst_port),
        TransportRepr::Udp {
            src_port, dst_port, ..
        } => ("udp", *src_port, *dst_port),
        TransportRepr::Icmp(
            IcmpRepr::EchoRequest { ident, .. } | IcmpRepr::EchoReply { ident, .. },
        ) => ("echo", *ident, 0),
        other => panic!("unexpected transport {other:?}"),
    };
    (
        proto,
        SocketAddr::new(repr.ip.src, sp),
        SocketAddr::new(repr.ip.dst, dp),
    )
}

fn sa(s: &str) -> SocketAddr {
    s.parse().expect("socket address")
}

#[test]
fn dns_query_goes_out_translated_and_its_answer_comes_back() {
    let o = run(&corpus("dns_udp.pcap"), "dns_udp", |_| {});
    let s = &o.summary;
    assert_eq!(o.exit_code, 0);
    assert_eq!(count(&s.verdicts, "forward.outside"), 1);
    assert_eq!(count(&s.verdicts, "forward.inside"), 1);
    assert_eq!(count(&s.inbound_readdressed, "to_flow"), 1);
    assert_eq!(count(&s.gateway, "flows.created"), 1);
    assert_eq!(s.nics.hosts[0].name, "host-192.168.1.11");
    assert_eq!(
        s.nics.hosts[0].block.as_deref(),
        Some("203.0.113.1:1024-3071")
    );

    let outside = view("dns_udp", "outside.pcapng");
    assert_eq!(outside.len(), 2);
    let (proto, nat, server) = endpoints(&outside[0]);
    assert_eq!((proto, server), ("udp", sa("209.87.249.18:53")));
    assert_eq!(nat.ip(), ip("203.0.113.1"));
    assert!((1024..=3071).contains(&nat.port()), "{nat}");
    assert_eq!(outside[0].direction, Some(CaptureDirection::Outbound));
    // What the internet sent back: the captured answer, addressed to the NAT endpoint.
    assert_eq!(endpoints(&outside[1]), ("udp", server, nat));
    assert_eq!(outside[1].direction, Some(CaptureDirection::Inbound));

    let inside = view("dns_udp", "inside.pcapng");
    let host = sa("192.168.1.11:43966");
    assert_eq!(endpoints(&inside[0]), ("udp", host, server));
    assert_eq!(inside[0].direction, Some(CaptureDirection::Outbound));
    assert_eq!(endpoints(&inside[1]), ("udp", server, host));
    assert_eq!(inside[1].direction, Some(CaptureDirection::Inbound));
    // At speed 1 the views keep the capture's timestamps.
    let (input, _) = read_packets(corpus("dns_udp.pcap")).expect("reads");
    assert_eq!(inside[0].timestamp_ns, input[0].timestamp_ns);
    assert_eq!(inside[1].timestamp_ns, input[1].timestamp_ns);
    // The answer reaching the host is byte for byte the captured one (the two rewrites cancel),
    // but for the TTL: the default `rfc` profile is a router hop (docs/behaviour.md §4 "TTL").
    let mut hopped = input[1].ip.clone();
    hopped[8] -= 1;
    natsim::wire::checksum::set_ipv4_header(&mut hopped, 20);
    assert_eq!(inside[1].ip, hopped);
}

#[test]
fn tcp_handshake_reply_reaches_the_inside_host_by_capture_direction() {
    // Public addresses only, but SLL directions: outgoing = from inside.
    let o = run(&corpus("tcp-handshake-nano.pcap"), "handshake", |_| {});
    let s = &o.summary;
    assert_eq!(count(&s.mapping, "from_inside.direction"), 2);
    assert_eq!(count(&s.mapping, "from_outside.direction"), 1);
    assert_eq!(count(&s.gateway, "translated.out.tcp"), 2);
    assert_eq!(count(&s.gateway, "translated.in.tcp"), 1);
    assert!(s.guesses.is_empty());
    let inside = view("handshake", "inside.pcapng");
    let host = sa("131.155.215.69:46656");
    let server = sa("137.116.81.94:80");
    assert_eq!(endpoints(&inside[1]), ("tcp", server, host));
    let outside = view("handshake", "outside.pcapng");
    let (_, nat, _) = endpoints(&outside[0]);
    assert_eq!(endpoints(&outside[1]), ("tcp", server, nat));
    assert_eq!(endpoints(&outside[2]), ("tcp", nat, server));
}

#[test]
fn offloaded_checksums_drop_unless_fixed() {
    let o = run(&corpus("whois.pcap"), "whois_raw", |_| {});
    let s = &o.summary;
    assert_eq!(count(&s.checksums, "input_bad_checksum"), 6);
    assert_eq!(count(&s.gateway, "drop.bad_checksum"), 6);
    // With the SYN dropped, every answer is unsolicited.
    assert_eq!(count(&s.gateway, "drop.unsolicited"), 5);
    assert_eq!(count(&s.inbound_readdressed, "unsolicited"), 5);

    let o = run(&corpus("whois.pcap"), "whois_fixed", |c| {
        c.fix_checksums = true
    });
    let s = &o.summary;
    assert_eq!(count(&s.checksums, "fixed.transport"), 6);
    assert_eq!(count(&s.checksums, "input_bad_checksum"), 0);
    assert_eq!(count(&s.gateway, "translated.out.tcp"), 6);
    assert_eq!(count(&s.gateway, "translated.in.tcp"), 5);
    assert_eq!(
        s.gateway.keys().filter(|k| k.starts_with("drop.")).count(),
        0
    );
    let inside = view("whois_fixed", "inside.pcapng");
    // The SYN-ACK comes back translated to the inside host.
    assert_eq!(
        endpoints(&inside[1]),
        ("tcp", sa("192.0.47.59:43"), sa("10.0.2.15:44188"))
    );
    let (repr, _) = PacketRepr::parse(&inside[1].ip).expect("parses");
    assert!(matches!(repr.transport, TransportRepr::Tcp { flags, .. } if flags == SYN | ACK));
}

#[test]
fn fragments_follow_their_first_fragment_and_the_guess_is_reported() {
    let o = run(&corpus("afs.pcap"), "afs", |_| {});
    let s = &o.summary;
    assert_eq!(
        s.guesses,
        vec!["inside hosts = {131.151.32.21} (first sender); pass --inside PREFIX to set"]
    );
    assert_eq!(count(&s.inbound_readdressed, "fragment"), 149);
    assert_eq!(count(&s.gateway, "translated.in.fragment"), 149);
    assert_eq!(count(&s.skipped, "skip.unmapped"), 12);
    assert_eq!(o.exit_code, 0);
    // Every inbound packet (fragments included) reached the host, none was dropped.
    assert_eq!(count(&s.verdicts, "forward.inside"), 386);
    assert_eq!(count(&s.verdicts, "drop"), 0);
    let inside = view("afs", "inside.pcapng");
    let delivered = inside
        .iter()
        .filter(|p| p.direction == Some(CaptureDirection::Inbound))
        .count();
    assert_eq!(delivered, 386);

    // Naming the host explicitly gives the same replay without a guess.
    let explicit = run(&corpus("afs.pcap"), "afs_explicit", |c| {
        c.inside_prefixes = vec!["131.151.32.21/32".parse().expect("prefix")];
    });
    assert!(explicit.summary.guesses.is_empty());
    assert_eq!(explicit.summary.gateway, s.gateway);
    assert_eq!(count(&explicit.summary.mapping, "from_outside.prefix"), 386);
}

#[test]
fn ping_from_outside_is_answered_by_the_nat_and_ping_from_inside_is_translated() {
    // 10.5.233.117 is pinged from the internet: the requests reach the NAT IP, which answers
    // them itself (profile rfc: echo_reply_to_nat_ip); the host's own replies are not NATed.
    let o = run(&corpus("e1000g.pcap"), "ping_in", |_| {});
    let s = &o.summary;
    assert_eq!(count(&s.verdicts, "respond.outside"), 10);
    assert_eq!(count(&s.gateway, "drop.unsupported_icmp"), 10);
    assert_eq!(count(&s.gateway, "flows.created"), 0);

    // Make the pinger the inside host: its requests go out translated, the replies come back.
    let o = run(&corpus("e1000g.pcap"), "ping_out", |c| {
        c.inside_prefixes = vec!["129.146.106.55/32".parse().expect("prefix")];
    });
    let s = &o.summary;
    assert_eq!(count(&s.gateway, "translated.out.icmp"), 10);
    assert_eq!(count(&s.gateway, "translated.in.icmp"), 10);
    assert_eq!(count(&s.gateway, "flows.created"), 1);
    let outside = view("ping_out", "outside.pcapng");
    let (proto, nat, _) = endpoints(&outside[0]);
    assert_eq!(proto, "echo");
    assert_eq!(nat.ip(), ip("203.0.113.1"));
    assert!((1024..=3071).contains(&nat.port()), "identifier {nat}");
    let inside = view("ping_out", "inside.pcapng");
    // The reply reaches the pinger with its own identifier 0x1af5 (the "port" of an echo).
    assert_eq!(
        endpoints(&inside[1]),
        ("echo", sa("10.5.233.117:6901"), sa("129.146.106.55:0"))
    );
}

#[test]
fn two_runs_write_identical_bytes() {
    let a = run(&corpus("ssh.pcap"), "det_a", |_| {});
    let b = run(&corpus("ssh.pcap"), "det_b", |_| {});
    assert_eq!(a.table, b.table);
    assert_eq!(a.files.len(), 4);
    for (fa, fb) in a.files.iter().zip(&b.files) {
        assert_eq!(fa.file_name(), fb.file_name());
        let (ba, bb) = (
            std::fs::read(fa).expect("read"),
            std::fs::read(fb).expect("read"),
        );
        assert!(!ba.is_empty());
        assert_eq!(ba, bb, "{}", fa.display());
    }
}

#[test]
fn every_verdict_line_is_json() {
    let o = run(&corpus("afs.pcap"), "afs_lines", |_| {});
    let text = std::fs::read_to_string(tmp("afs_lines").join("verdicts.jsonl")).expect("read");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON object per line"))
        .collect();
    assert_eq!(lines.len() as u64, o.summary.ip_packets);
    assert_eq!(lines[0]["verdict"], "forward");
    assert_eq!(
        lines[0]["before"],
        "udp 131.151.32.21:7001 > 131.151.1.59:7000"
    );
    assert!(
        lines[0]["after"]
            .as_str()
            .expect("after")
            .starts_with("udp 203.0.113.1:")
    );
    let skipped = lines.iter().filter(|l| l["reason"] == "unmapped").count();
    assert_eq!(skipped, 12);
}

/// Writes a raw-IP nanosecond pcap of `(timestamp_ns, packet)` to `tmp(name)`.
fn write_pcap(name: &str, packets: &[(u64, Vec<u8>)]) -> PathBuf {
    let mut w = PcapCaptureWriter::new(Vec::new()).expect("vec");
    for (ts, p) in packets {
        w.write_packet(*ts, p).expect("vec");
    }
    let path = tmp(name);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(&path, w.finish().expect("vec")).expect("write");
    path
}

fn udp(src: &str, dst: &str) -> Vec<u8> {
    PacketRepr::udp((ip(src), 5000), (ip(dst), 53), b"q").emit()
}

const T0: u64 = 1_600_000_000_000_000_000;

#[test]
fn hosts_beyond_the_pool_get_no_block() {
    let packets: Vec<(u64, Vec<u8>)> = (1..=3)
        .map(|i| (T0 + i, udp(&format!("10.0.0.{i}"), "8.8.8.8")))
        .collect();
    let path = write_pcap("capacity.pcap", &packets);
    // P = 32768: one slot per NAT IP, two NAT IPs, three hosts.
    let o = run(&path, "capacity", |c| {
        c.ports_per_nic = 32768;
        c.nat_pool = NatPool {
            size: 2,
            ..NatPool::default()
        };
    });
    let s = &o.summary;
    assert_eq!(
        (s.nics.total, s.nics.with_block, s.nics.without_block),
        (3, 2, 1)
    );
    assert_eq!(
        s.nics.hosts[1].block.as_deref(),
        Some("203.0.113.2:1024-33791")
    );
    assert_eq!(s.nics.hosts[2].block, None);
    assert_eq!(count(&s.gateway, "drop.no_nat_block"), 1);
    assert_eq!(count(&s.verdicts, "forward.outside"), 2);
}

#[test]
fn interface_map_decides_sides_and_unused_entries_are_noted() {
    let mut w = PcapNgCaptureWriter::new(Vec::new()).expect("vec");
    let lan = w.add_interface("lan").expect("vec");
    let wan = w.add_interface("wan").expect("vec");
    // Public addresses on both sides: only the interface map can tell them apart.
    w.write_packet(lan, T0, None, &udp("192.0.2.10", "198.51.100.1"))
        .expect("vec");
    let reply = PacketRepr::udp((ip("198.51.100.1"), 53), (ip("192.0.2.10"), 5000), b"a").emit();
    w.write_packet(wan, T0 + 1000, None, &reply).expect("vec");
    let path = tmp("ifmap.pcapng");
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(&path, w.finish().expect("vec")).expect("write");
    let o = run(&path, "ifmap", |c| {
        c.interfaces.insert("lan".into(), EntrySide::Inside);
        c.interfaces.insert("1".into(), EntrySide::Outside);
        c.interfaces.insert("eth9".into(), EntrySide::Inside);
    });
    let s = &o.summary;
    assert_eq!(count(&s.mapping, "from_inside.interface"), 1);
    assert_eq!(count(&s.mapping, "from_outside.interface"), 1);
    assert_eq!(count(&s.verdicts, "forward.inside"), 1);
    assert_eq!(
        s.notes,
        vec!["interface map entry `eth9` matched no interface of the capture"]
    );
    assert!(s.guesses.is_empty());
}

#[test]
fn time_scales_with_speed_and_backward_timestamps_are_clamped() {
    // The answer comes 400 s after the query: past the rfc profile's 300 s UDP timeout.
    let reply = PacketRepr::udp((ip("8.8.8.8"), 53), (ip("10.0.0.1"), 5000), b"a").emit();
    let packets = vec![
        (T0, udp("10.0.0.1", "8.8.8.8")),
        (T0 + 400_000_000_000, reply.clone()),
    ];
    let path = write_pcap("slow.pcap", &packets);
    let o = run(&path, "slow_1x", |_| {});
    assert_eq!(count(&o.summary.gateway, "drop.unsolicited"), 1);
    assert_eq!(count(&o.summary.gateway, "flows.ended"), 1);
    let o = run(&path, "slow_2x", |c| {
        c.speed = 2.0;
        c.time_offset_ms = 5000;
    });
    assert_eq!(count(&o.summary.gateway, "translated.in.udp"), 1);
    assert_eq!(o.summary.virtual_duration_ns, 200_000_000_000);
    let inside = view("slow_2x", "inside.pcapng");
    assert_eq!(inside[1].timestamp_ns, T0 + 5_000_000_000 + 200_000_000_000);

    let packets = vec![
        (T0 + 10, udp("10.0.0.1", "8.8.8.8")),
        (T0, reply.clone()),
        (T0 + 20, reply),
    ];
    let path = write_pcap("backwards.pcap", &packets);
    let o = run(&path, "backwards", |_| {});
    assert_eq!(count(&o.summary.anomalies, "timestamp_clamped"), 1);
    assert_eq!(count(&o.summary.anomalies, "timestamp_out_of_order"), 1);
    let inside = view("backwards", "inside.pcapng");
    assert_eq!(inside[1].timestamp_ns, T0 + 10);
    assert_eq!(count(&o.summary.gateway, "translated.in.udp"), 2);
}

#[test]
fn unreadable_captures_are_rejected_with_the_file_name_and_partial_ones_reported() {
    let license = corpus("LICENSE.tcpdump");
    let out = tmp("rejected");
    let e = replay(
        &license,
        &ReplayConfig {
            out_dir: Some(out.clone()),
            ..ReplayConfig::default()
        },
    )
    .expect_err("not a capture");
    let msg = e.to_string();
    assert!(
        msg.contains("LICENSE.tcpdump: not a pcap or pcapng file"),
        "{msg}"
    );
    assert!(!out.exists(), "no output for a rejected capture");

    let bytes = std::fs::read(corpus("dns_tcp.pcap")).expect("read");
    let cut = tmp("dns_tcp_cut.pcap");
    std::fs::create_dir_all(cut.parent().expect("parent")).expect("mkdir");
    std::fs::write(&cut, &bytes[..bytes.len() - 30]).expect("write");
    let o = run(&cut, "cut", |_| {});
    let err = o
        .summary
        .capture_error
        .clone()
        .expect("read error reported");
    assert!(err.contains("file truncated"), "{err}");
    assert_eq!(o.summary.replayed_packets, 10);
    assert!(o.table.contains("capture error"));
}

#[test]
fn replay_cmd_reads_a_config_file_and_applies_options() {
    let dir = tmp("cmd");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let config = dir.join("replay.yaml");
    std::fs::write(
        &config,
        "profile: dpservice\nports_per_nic: 64\nverdicts: true\n",
    )
    .expect("write");
    let options = ReplayCliOptions {
        out: Some(dir.join("out")),
        fix_checksums: true,
        ..ReplayCliOptions::default()
    };
    let code = replay_cmd(&corpus("whois.pcap"), Some(&config), options).expect("runs");
    assert_eq!(code, 0);
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("out/summary.json")).expect("summary written"),
    )
    .expect("json");
    assert_eq!(summary["profile"], "dpservice");
    assert_eq!(
        summary["nics"]["hosts"][0]["block"],
        "203.0.113.1:1024-1087"
    );
    assert_eq!(summary["gateway"]["translated.in.tcp"], 5);
    assert!(dir.join("out/verdicts.jsonl").exists());

    std::fs::write(
        &config,
        "profile: rfc\nnat_pool:\n  size: 2\n  firts_ipv6: \"::1\"\n",
    )
    .expect("write");
    let e = replay_cmd(
        &corpus("whois.pcap"),
        Some(&config),
        ReplayCliOptions::default(),
    )
    .expect_err("unknown field");
    let msg = e.to_string();
    assert!(msg.contains("replay.yaml:4:"), "{msg}");
    assert!(msg.contains("nat_pool.firts_ipv6: unknown field"), "{msg}");

    let bad = ReplayCliOptions {
        speed: Some(-1.0),
        ..ReplayCliOptions::default()
    };
    let e = replay_cmd(&corpus("whois.pcap"), None, bad).expect_err("negative speed");
    assert_eq!(e.to_string(), "speed: -1 is not a positive finite number");
}
