//! Shared harness for the gateway tests: a standard topology, packet builders and assertions.
//!
//! Topology (both families):
//! - network 0 `blue`: 10.0.0.0/24 and fd00::/64; NIC 0 = 10.0.0.1 / fd00::1,
//!   NIC 1 = 10.0.0.2 / fd00::2.
//! - network 1 `red`: the same prefixes; NIC 2 = 10.0.0.1 / fd00::1 (same addresses as NIC 0).
//! - NAT IPs 203.0.113.1 and 2001:db8:ff::1; NIC k gets block k of size P on each
//!   (`[1024 + k·P, 1024 + (k+1)·P − 1]`).
#![allow(dead_code)]

pub mod cli;

use std::net::IpAddr;

use natsim::nat::*;
use natsim::time::Instant;
use natsim::wire::{IcmpRepr, PacketRepr, TransportRepr, parse_ip};

pub const NAT4: &str = "203.0.113.1";
pub const NAT6: &str = "2001:db8:ff::1";
pub const NIC0: NicId = NicId(0);
pub const NIC1: NicId = NicId(1);
pub const RED: NicId = NicId(2);
pub const A4: &str = "10.0.0.1";
pub const B4: &str = "10.0.0.2";
pub const A6: &str = "fd00::1";
pub const B6: &str = "fd00::2";
pub const R4: &str = "198.51.100.7";
pub const R4B: &str = "198.51.100.8";
pub const R6: &str = "2001:db8:1::7";
pub const R6B: &str = "2001:db8:1::8";

pub fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

pub fn secs(s: u64) -> Instant {
    Instant::from_secs(s)
}

pub fn ms(v: u64) -> Instant {
    Instant::from_millis(v)
}

pub fn profile(name: &str) -> Profile {
    Profile::named(name).expect("known profile")
}

/// The standard configuration with profile `p`, `ports` per NIC.
pub fn config(p: Profile, ports: u32) -> GatewayConfig {
    GatewayConfig {
        profile: p,
        ports_per_nic: ports,
        networks: vec![
            NetworkConfig {
                name: "blue".into(),
                local_prefixes: vec![
                    "10.0.0.0/24".parse().expect("prefix"),
                    "fd00::/64".parse().expect("prefix"),
                ],
            },
            NetworkConfig {
                name: "red".into(),
                local_prefixes: vec![
                    "10.0.0.0/24".parse().expect("prefix"),
                    "fd00::/64".parse().expect("prefix"),
                ],
            },
        ],
        nat_ips: vec![ip(NAT4), ip(NAT6)],
        record_events: true,
        ..Default::default()
    }
}

pub fn block(nat: &str, k: u32, ports: u32) -> Block {
    let start = 1024 + k * ports;
    Block {
        nat_ip: ip(nat),
        port: start as u16,
        end_port: (start + ports - 1) as u16,
    }
}

/// A gateway on the standard topology with blocks assigned at time zero.
pub fn build(cfg: GatewayConfig) -> Gateway {
    let ports = cfg.ports_per_nic;
    let mut g = Gateway::new(cfg).expect("valid config");
    let nics = [
        (NIC0, 0, A4, A6, "a"),
        (NIC1, 0, B4, B6, "b"),
        (RED, 1, A4, A6, "red-a"),
    ];
    for (k, (id, net, v4, v6, name)) in nics.into_iter().enumerate() {
        g.add_nic(
            id,
            NicConfig {
                network: NetworkId(net),
                addresses: vec![ip(v4), ip(v6)],
                name: name.into(),
            },
        )
        .expect("nic");
        g.assign_block(Instant::ZERO, id, block(NAT4, k as u32, ports))
            .expect("v4 block");
        g.assign_block(Instant::ZERO, id, block(NAT6, k as u32, ports))
            .expect("v6 block");
    }
    g.drain_events();
    g
}

pub fn gw(profile_name: &str, ports: u32) -> Gateway {
    build(config(profile(profile_name), ports))
}

// ----- packets -------------------------------------------------------------------------------

pub fn tcp(src: (&str, u16), dst: (&str, u16), flags: u8) -> Vec<u8> {
    PacketRepr::tcp((ip(src.0), src.1), (ip(dst.0), dst.1), flags, 1000, 0, b"").emit()
}

pub fn tcp_ip(src: (IpAddr, u16), dst: (IpAddr, u16), flags: u8) -> Vec<u8> {
    PacketRepr::tcp(src, dst, flags, 1000, 0, b"").emit()
}

pub fn udp(src: (&str, u16), dst: (&str, u16)) -> Vec<u8> {
    PacketRepr::udp((ip(src.0), src.1), (ip(dst.0), dst.1), b"payload").emit()
}

pub fn udp_ip(src: (IpAddr, u16), dst: (IpAddr, u16)) -> Vec<u8> {
    PacketRepr::udp(src, dst, b"payload").emit()
}

pub fn ping(src: &str, dst: &str, ident: u16) -> Vec<u8> {
    PacketRepr::echo_request(ip(src), ip(dst), ident, 1, b"ping").emit()
}

pub fn pong_ip(src: IpAddr, dst: IpAddr, ident: u16) -> Vec<u8> {
    PacketRepr::echo_reply(src, dst, ident, 1, b"ping").emit()
}

/// Parses strictly and asserts every checksum verifies.
pub fn parsed(pkt: &[u8]) -> PacketRepr {
    let (p, ck) = PacketRepr::parse(pkt).expect("forwarded packet parses");
    assert!(ck.all_ok(), "checksums of forwarded packet: {ck:?}");
    p
}

/// (source port, destination port), or (identifier, 0) for ICMP echo.
pub fn ports(p: &PacketRepr) -> (u16, u16) {
    match &p.transport {
        TransportRepr::Tcp {
            src_port, dst_port, ..
        }
        | TransportRepr::Udp {
            src_port, dst_port, ..
        } => (*src_port, *dst_port),
        TransportRepr::Icmp(IcmpRepr::EchoRequest { ident, .. })
        | TransportRepr::Icmp(IcmpRepr::EchoReply { ident, .. }) => (*ident, 0),
        other => panic!("no ports in {other:?}"),
    }
}

/// Sends `pkt` from `nic`; on `Forward(Outside)` returns the translated (source address,
/// source port or identifier) after checking the packet's checksums; otherwise the verdict.
pub fn out(
    g: &mut Gateway,
    t: Instant,
    nic: NicId,
    mut pkt: Vec<u8>,
) -> Result<(IpAddr, u16), Verdict> {
    match g.process(t, Ingress::Inside(nic), &mut pkt) {
        Verdict::Forward(Egress::Outside) => {
            let p = parsed(&pkt);
            Ok((p.ip.src, ports(&p).0))
        }
        v => Err(v),
    }
}

/// Like [`out`] but panics unless translated.
pub fn out_ok(g: &mut Gateway, t: Instant, nic: NicId, pkt: Vec<u8>) -> (IpAddr, u16) {
    out(g, t, nic, pkt).expect("translated outbound")
}

/// Sends `pkt` from outside; returns the verdict and the (possibly rewritten) packet.
pub fn inbound(g: &mut Gateway, t: Instant, mut pkt: Vec<u8>) -> (Verdict, Vec<u8>) {
    let v = g.process(t, Ingress::Outside, &mut pkt);
    (v, pkt)
}

/// Opens a TCP flow with a SYN and returns its NAT port.
pub fn syn(g: &mut Gateway, t: Instant, nic: NicId, src: (&str, u16), dst: (&str, u16)) -> u16 {
    out_ok(g, t, nic, tcp(src, dst, natsim::wire::tcp_flags::SYN)).1
}

/// Live flows.
pub fn live(g: &Gateway) -> Vec<FlowInfo> {
    g.flows().into_iter().filter(|f| f.live).collect()
}

/// behaviour §4: never two live flows with the same (NAT IP, NAT port, remote IP, remote port,
/// protocol); every NAT port in its NIC's block.
pub fn assert_no_overloading(g: &Gateway) {
    let mut seen = std::collections::BTreeSet::new();
    for f in live(g) {
        let key = (f.flow.nat, f.flow.remote, f.flow.protocol);
        assert!(seen.insert(key), "port overloaded: {f:?}");
        let fam = Family::of(&f.flow.nat.ip());
        let b = g
            .block_of(f.flow.nic, fam)
            .expect("live flow's NIC has a block");
        assert_eq!(b.nat_ip, f.flow.nat.ip());
        assert!(
            (b.port..=b.end_port).contains(&f.flow.nat.port()),
            "{f:?} outside {b:?}"
        );
    }
}

/// True when the buffer parses as an IP packet.
pub fn parses(pkt: &[u8]) -> bool {
    parse_ip(pkt).is_ok()
}

/// The "disposition" sum: every packet handed to `process` adds exactly one to it, except echo
/// replies to a NAT IP (counted in `generated` only) and buffered fragments (counted when
/// released, dropped or timed out).
pub fn dispositions(c: &Counters) -> u64 {
    c.translated_out.iter().sum::<u64>()
        + c.translated_in.iter().sum::<u64>()
        + c.hairpinned
        + c.passed_through
        + c.dropped_total()
}

/// `pkt` as it leaves a router hop: IPv4 TTL / IPv6 hop limit one lower (IPv4 header checksum
/// recomputed). Profiles `rfc` and `linux` are a router hop (docs/behaviour.md §4 "TTL").
pub fn hop(pkt: &[u8]) -> Vec<u8> {
    let mut p = pkt.to_vec();
    if p[0] >> 4 == 4 {
        p[8] -= 1;
        let header_len = usize::from(p[0] & 0x0f) * 4;
        natsim::wire::checksum::set_ipv4_header(&mut p, header_len);
    } else {
        p[7] -= 1;
    }
    p
}

/// `pkt` with its IPv4 TTL / IPv6 hop limit set to `ttl` (checksums recomputed).
pub fn with_ttl(pkt: &[u8], ttl: u8) -> Vec<u8> {
    let (mut p, _) = PacketRepr::parse(pkt).expect("parses");
    p.ip.ttl = ttl;
    p.emit()
}

/// The IPv4 TTL / IPv6 hop limit of `pkt`.
pub fn ttl_of(pkt: &[u8]) -> u8 {
    if pkt[0] >> 4 == 4 { pkt[8] } else { pkt[7] }
}
