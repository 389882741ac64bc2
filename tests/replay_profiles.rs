//! `natsim replay CAPTURE --profiles all|LIST`: one replay per behaviour profile (behaviour §5)
//! and, per flow, the first packet whose verdicts differ, with the cause (docs/replay.md,
//! "Comparing profiles"). The expected verdicts are read off the profiles' own parameters.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use natsim::nat::Profile;
use natsim::replay::profiles::{parse_profiles, replay_profiles};
use natsim::replay::{PcapCaptureWriter, ReplayCliOptions, ReplayConfig, replay_cmd};
use natsim::wire::PacketRepr;

fn tmp(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("replay_profiles")
        .join(name)
}

fn corpus(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/pcaps/tcpdump")
        .join(name)
}

fn config(out: &str) -> ReplayConfig {
    ReplayConfig {
        out_dir: Some(tmp(out)),
        ..ReplayConfig::default()
    }
}

#[test]
fn echo_to_the_nat_ip_diverges_by_icmp_support_on_a_shared_capture() {
    // e1000g.pcap: ten pings from 129.146.106.55 to the inside host and its ten replies. The
    // requests come from outside, so they reach the NAT IP unsolicited.
    let all = parse_profiles("all").expect("all");
    let (cmp, json) = replay_profiles(&corpus("e1000g.pcap"), &config("e1000g"), &all)
        .expect("replays under every profile");
    assert_eq!(cmp.profiles, Profile::NAMES.to_vec());
    assert_eq!(cmp.packets_compared, 20);
    for r in &cmp.runs {
        assert_eq!(r.verdicts.values().sum::<u64>(), 20, "{}", r.profile);
        assert_eq!(r.violations, 0, "{}", r.profile);
        assert!(r.out_dir.join("inside.pcapng").exists());
    }
    assert_eq!(cmp.divergences.len(), 1, "{}", cmp.table());
    let d = &cmp.divergences[0];
    assert_eq!(d.flow, "icmp 10.5.233.117 id 6901 ↔ 129.146.106.55 id 6901");
    assert_eq!((d.index, d.side.as_str(), d.cause), (0, "outside", "icmp"));
    assert_eq!(d.packets, 10);
    assert_eq!(cmp.packets_diverging, 10);
    for (name, verdict) in &d.verdicts {
        let p = Profile::named(name).expect("profile");
        let want = if !p.icmp_supported {
            "drop: unsupported_icmp"
        } else if p.echo_reply_to_nat_ip {
            "respond"
        } else {
            "drop: unsolicited"
        };
        assert_eq!(verdict, want, "{name}");
    }
    let table = cmp.table();
    assert!(table.contains("| respond "), "{table}");
    assert!(table.contains("ICMP support"), "{table}");
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(json).expect("profiles.json")).expect("json");
    assert_eq!(j["divergences"][0]["index"], 0);
    assert_eq!(j["runs"].as_array().map(Vec::len), Some(6));
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("address")
}

#[test]
fn a_late_reply_diverges_by_the_udp_timer() {
    // A query, then its reply 100 s later: unsolicited where the UDP timeout is shorter.
    let t0 = 1_600_000_000_000_000_000u64;
    let q = PacketRepr::udp((ip("10.0.0.1"), 5000), (ip("198.51.100.9"), 53), b"q").emit();
    let r = PacketRepr::udp((ip("198.51.100.9"), 53), (ip("10.0.0.1"), 5000), b"r").emit();
    let mut w = PcapCaptureWriter::new(Vec::new()).expect("vec");
    w.write_packet(t0, &q).expect("vec");
    w.write_packet(t0 + 100_000_000_000, &r).expect("vec");
    let path = tmp("late-reply.pcap");
    std::fs::create_dir_all(tmp("")).expect("mkdir");
    std::fs::write(&path, w.finish().expect("vec")).expect("write");
    let all = parse_profiles("all").expect("all");
    let (cmp, _) = replay_profiles(&path, &config("late-reply"), &all).expect("replays");
    let short: Vec<&str> = Profile::NAMES
        .iter()
        .copied()
        .filter(|n| Profile::named(n).is_some_and(|p| p.timeout_udp_ms < 100_000))
        .collect();
    assert!(!short.is_empty() && short.len() < 6, "{short:?}");
    assert_eq!(cmp.divergences.len(), 1, "{}", cmp.table());
    let d = &cmp.divergences[0];
    assert_eq!((d.index, d.cause), (1, "timer"));
    assert!(
        d.why.starts_with("timer: the flow had expired under"),
        "{}",
        d.why
    );
    for (name, verdict) in &d.verdicts {
        let want = if short.contains(&name.as_str()) {
            "drop: unsolicited"
        } else {
            "forward inside"
        };
        assert_eq!(verdict, want, "{name}");
    }
}

#[test]
fn profiles_option_through_the_command() {
    let options = |spec: &str| ReplayCliOptions {
        out: Some(tmp("cmd")),
        profiles: Some(spec.to_string()),
        ..ReplayCliOptions::default()
    };
    let code = replay_cmd(&corpus("dns_udp.pcap"), None, options("rfc,azure")).expect("runs");
    assert_eq!(code, 0);
    assert!(tmp("cmd").join("profiles.json").exists());
    assert!(tmp("cmd").join("azure/summary.json").exists());
    let e = replay_cmd(&corpus("dns_udp.pcap"), None, options("rfc,awz")).expect_err("unknown");
    assert!(e.to_string().contains("unknown profile `awz`"), "{e}");
}
