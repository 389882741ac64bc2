//! `natsim demo`: a fixed walk through the gateway's behaviours (TCP, UDP, ICMP, an ICMP error,
//! unsolicited inbound, hairpin, exhaustion), printing each packet's translation or drop. It is
//! the quickest way to see what the NAT does, and its output is deterministic.

use std::fmt::Write as _;
use std::net::IpAddr;

use crate::nat::{
    Block, Egress, Gateway, GatewayConfig, Ingress, NetworkConfig, NetworkId, NicConfig, NicId,
    Profile, Verdict,
};
use crate::time::Instant;
use crate::wire::icmp::ErrorMessage;
use crate::wire::{IpVersion, PacketRepr, TransportRepr, tcp_flags};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))
}

fn describe(pkt: &[u8]) -> String {
    match PacketRepr::parse(pkt) {
        Ok((p, _)) => {
            let (proto, sp, dp) = match &p.transport {
                TransportRepr::Tcp {
                    src_port, dst_port, ..
                } => ("tcp", *src_port, *dst_port),
                TransportRepr::Udp {
                    src_port, dst_port, ..
                } => ("udp", *src_port, *dst_port),
                TransportRepr::Icmp(i) => {
                    let id = match i {
                        crate::wire::IcmpRepr::EchoRequest { ident, .. }
                        | crate::wire::IcmpRepr::EchoReply { ident, .. } => *ident,
                        _ => 0,
                    };
                    ("icmp", id, 0)
                }
                TransportRepr::Raw { .. } => ("raw", 0, 0),
            };
            format!("{proto} {}:{sp} -> {}:{dp}", p.ip.src, p.ip.dst)
        }
        Err(e) => format!("unparseable ({e})"),
    }
}

/// Runs the demo with the named profile and returns the printed report.
pub fn run(profile: &str) -> Result<String, String> {
    let profile = Profile::named(profile).ok_or_else(|| {
        format!(
            "unknown profile `{profile}`; valid: {}",
            Profile::NAMES.join(", ")
        )
    })?;
    let config = GatewayConfig {
        profile,
        ports_per_nic: 64,
        networks: vec![NetworkConfig {
            name: "demo".into(),
            local_prefixes: vec!["10.0.0.0/24".parse().map_err(|e| format!("{e}"))?],
        }],
        ..GatewayConfig::default()
    };
    let mut gw = Gateway::new(config).map_err(|e| e.to_string())?;
    let nat = ip("203.0.113.10");
    for (i, addr) in ["10.0.0.1", "10.0.0.2"].iter().enumerate() {
        let id = NicId(i as u32);
        gw.add_nic(
            id,
            NicConfig {
                network: NetworkId(0),
                addresses: vec![ip(addr)],
                name: format!("vm{}", i + 1),
            },
        )
        .map_err(|e| e.to_string())?;
        let port = 1024 + 64 * i as u16;
        gw.assign_block(
            Instant::ZERO,
            id,
            Block {
                nat_ip: nat,
                port,
                end_port: port + 63,
            },
        )
        .map_err(|e| e.to_string())?;
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "natsim demo: profile {}, P = 64, NAT IP {nat}",
        gw.config().profile.name
    );
    let _ = writeln!(
        out,
        "vm1 10.0.0.1 -> block {nat}:1024-1087, vm2 10.0.0.2 -> block {nat}:1088-1151\n"
    );
    let mut step =
        |gw: &mut Gateway, t_s: u64, what: &str, ingress: Ingress, pkt: Vec<u8>| -> Vec<u8> {
            let mut buf = pkt;
            let before = describe(&buf);
            let v = gw.process(Instant::from_secs(t_s), ingress, &mut buf);
            let after = match v {
                Verdict::Forward(Egress::Outside) => format!("-> internet  {}", describe(&buf)),
                Verdict::Forward(Egress::Nic(n)) => format!("-> {n}  {}", describe(&buf)),
                Verdict::Respond(e) => format!("answered ({e:?}): {}", describe(&buf)),
                Verdict::PassThrough => "passes untranslated (inside the network)".into(),
                Verdict::Buffered => "buffered".into(),
                Verdict::Drop(r) => format!("DROPPED ({})", r.name()),
            };
            let _ = writeln!(out, "t={t_s:>3}s {what:<34} {before}\n        {after}");
            buf
        };
    let vm1 = Ingress::Inside(NicId(0));
    let vm2 = Ingress::Inside(NicId(1));
    let web = ip("198.51.100.80");
    let syn = step(
        &mut gw,
        1,
        "vm1 opens TCP to a web server",
        vm1,
        PacketRepr::tcp(
            (ip("10.0.0.1"), 40000),
            (web, 443),
            tcp_flags::SYN,
            1,
            0,
            b"",
        )
        .emit(),
    );
    let nat_port = PacketRepr::parse(&syn)
        .ok()
        .map_or(0, |(p, _)| match p.transport {
            TransportRepr::Tcp { src_port, .. } => src_port,
            _ => 0,
        });
    step(
        &mut gw,
        1,
        "server answers SYN-ACK",
        Ingress::Outside,
        PacketRepr::tcp(
            (web, 443),
            (nat, nat_port),
            tcp_flags::SYN | tcp_flags::ACK,
            9,
            2,
            b"",
        )
        .emit(),
    );
    step(
        &mut gw,
        1,
        "attacker sends SYN-ACK from elsewhere",
        Ingress::Outside,
        PacketRepr::tcp(
            (ip("192.0.2.66"), 443),
            (nat, nat_port),
            tcp_flags::SYN | tcp_flags::ACK,
            9,
            2,
            b"",
        )
        .emit(),
    );
    step(
        &mut gw,
        2,
        "vm2 asks DNS",
        vm2,
        PacketRepr::udp((ip("10.0.0.2"), 5353), (ip("9.9.9.9"), 53), b"query").emit(),
    );
    step(
        &mut gw,
        2,
        "vm1 pings",
        vm1,
        PacketRepr::echo_request(ip("10.0.0.1"), ip("9.9.9.9"), 7, 1, b"ping").emit(),
    );
    step(
        &mut gw,
        3,
        "vm1 talks to vm2 directly",
        vm1,
        PacketRepr::udp((ip("10.0.0.1"), 9000), (ip("10.0.0.2"), 9000), b"hi").emit(),
    );
    step(
        &mut gw,
        3,
        "unsolicited SYN to the NAT IP",
        Ingress::Outside,
        PacketRepr::tcp(
            (ip("192.0.2.66"), 5555),
            (nat, 1030),
            tcp_flags::SYN,
            1,
            0,
            b"",
        )
        .emit(),
    );
    step(
        &mut gw,
        3,
        "ping to the NAT IP itself",
        Ingress::Outside,
        PacketRepr::echo_request(ip("192.0.2.66"), nat, 1, 1, b"hello").emit(),
    );
    let quoted = PacketRepr::tcp((nat, nat_port), (web, 443), tcp_flags::ACK, 2, 10, b"").emit();
    let (t, c) = ErrorMessage::HostUnreachable.type_code(IpVersion::V4);
    step(
        &mut gw,
        4,
        "router reports 'unreachable' for vm1",
        Ingress::Outside,
        PacketRepr::icmp_error(ip("198.51.100.1"), nat, t, c, &quoted).emit(),
    );
    let mut refused = 0;
    for k in 0..65u16 {
        let mut b = PacketRepr::udp((ip("10.0.0.2"), 20000 + k), (ip("9.9.9.9"), 443), b"x").emit();
        if matches!(
            gw.process(Instant::from_secs(5), vm2, &mut b),
            Verdict::Drop(_)
        ) {
            refused += 1;
        }
    }
    let _ = writeln!(
        out,
        "t=  5s vm2 opens 65 UDP flows to 9.9.9.9   {refused} refused: P = 64 per remote IP (limit_scope remote-ip)"
    );
    let c = gw.counters().to_map();
    let _ = writeln!(out, "\ncounters:");
    for (k, v) in &c {
        let _ = writeln!(out, "  {k:<28} {v}");
    }
    Ok(out)
}
