//! NAT64 (behaviour §4: `64:ff9b::/96`, using the NIC's IPv4 block).

use std::net::IpAddr;

use natsim::nat::{
    Block, DropReason, Egress, Gateway, GatewayConfig, Ingress, NetworkConfig, NetworkId,
    NicConfig, NicId, Verdict,
};
use natsim::time::Instant;
use natsim::wire::{IcmpRepr, PacketRepr, TransportRepr, tcp_flags::*};

fn ip(s: &str) -> IpAddr {
    s.parse().expect("address")
}

const NAT: &str = "203.0.113.9";

fn gateway(nat64: bool, p: u16) -> Gateway {
    let mut g = Gateway::new(GatewayConfig {
        ports_per_nic: u32::from(p),
        nat64,
        networks: vec![NetworkConfig {
            name: "n".into(),
            local_prefixes: vec![
                "10.0.0.0/24".parse().expect("prefix"),
                "fd00::/64".parse().expect("prefix"),
            ],
        }],
        ..Default::default()
    })
    .expect("config");
    g.add_nic(
        NicId(0),
        NicConfig {
            network: NetworkId(0),
            addresses: vec![ip("10.0.0.1"), ip("fd00::1")],
            name: "a".into(),
        },
    )
    .expect("nic");
    g.assign_block(
        Instant::ZERO,
        NicId(0),
        Block {
            nat_ip: ip(NAT),
            port: 2048,
            end_port: 2048 + p - 1,
        },
    )
    .expect("block");
    g
}

fn parse_ok(b: &[u8]) -> PacketRepr {
    let (p, ck) = PacketRepr::parse(b).expect("parses");
    assert!(ck.all_ok(), "checksums: {ck:?}");
    p
}

#[test]
fn nat64_tcp_handshake_translates_both_ways_with_valid_checksums() {
    let mut g = gateway(true, 64);
    let mut syn = PacketRepr::tcp(
        (ip("fd00::1"), 40000),
        (ip("64:ff9b::198.51.100.7"), 80),
        SYN,
        1,
        0,
        b"",
    )
    .emit();
    assert_eq!(
        g.process(Instant::from_secs(1), Ingress::Inside(NicId(0)), &mut syn),
        Verdict::Forward(Egress::Outside)
    );
    let out = parse_ok(&syn);
    assert_eq!((out.ip.src, out.ip.dst), (ip(NAT), ip("198.51.100.7")));
    let TransportRepr::Tcp {
        src_port, dst_port, ..
    } = out.transport
    else {
        panic!("tcp expected")
    };
    assert!((2048..2112).contains(&src_port));
    assert_eq!(dst_port, 80);
    let mut synack = PacketRepr::tcp(
        (ip("198.51.100.7"), 80),
        (ip(NAT), src_port),
        SYN | ACK,
        9,
        2,
        b"hi",
    )
    .emit();
    assert_eq!(
        g.process(Instant::from_secs(1), Ingress::Outside, &mut synack),
        Verdict::Forward(Egress::Nic(NicId(0)))
    );
    let back = parse_ok(&synack);
    assert_eq!(
        (back.ip.src, back.ip.dst),
        (ip("64:ff9b::198.51.100.7"), ip("fd00::1"))
    );
    let TransportRepr::Tcp {
        dst_port, payload, ..
    } = back.transport
    else {
        panic!("tcp expected")
    };
    assert_eq!((dst_port, payload.as_slice()), (40000, &b"hi"[..]));
    let flows = g.flows();
    assert_eq!(flows.len(), 1);
    assert_eq!(
        flows[0].flow.inside,
        "[fd00::1]:40000".parse().expect("socket")
    );
}

#[test]
fn nat64_echo_request_and_reply_are_translated_between_icmpv6_and_icmp() {
    let mut g = gateway(true, 64);
    let mut req =
        PacketRepr::echo_request(ip("fd00::1"), ip("64:ff9b::9.9.9.9"), 77, 1, b"ping").emit();
    assert_eq!(
        g.process(Instant::from_secs(1), Ingress::Inside(NicId(0)), &mut req),
        Verdict::Forward(Egress::Outside)
    );
    let TransportRepr::Icmp(IcmpRepr::EchoRequest { ident, .. }) = parse_ok(&req).transport else {
        panic!("echo request expected")
    };
    let mut rep = PacketRepr::echo_reply(ip("9.9.9.9"), ip(NAT), ident, 1, b"ping").emit();
    assert_eq!(
        g.process(Instant::from_secs(1), Ingress::Outside, &mut rep),
        Verdict::Forward(Egress::Nic(NicId(0)))
    );
    let back = parse_ok(&rep);
    assert_eq!(back.ip.dst, ip("fd00::1"));
    assert!(matches!(
        back.transport,
        TransportRepr::Icmp(IcmpRepr::EchoReply { ident: 77, .. })
    ));
}

#[test]
fn nat64_shares_the_nics_ipv4_block_with_native_ipv4_flows() {
    let mut g = gateway(true, 2);
    let now = Instant::from_secs(1);
    let mut a = PacketRepr::udp((ip("10.0.0.1"), 1000), (ip("198.51.100.7"), 53), b"a").emit();
    assert!(matches!(
        g.process(now, Ingress::Inside(NicId(0)), &mut a),
        Verdict::Forward(_)
    ));
    let mut b = PacketRepr::udp(
        (ip("fd00::1"), 1001),
        (ip("64:ff9b::198.51.100.7"), 53),
        b"b",
    )
    .emit();
    assert!(matches!(
        g.process(now, Ingress::Inside(NicId(0)), &mut b),
        Verdict::Forward(_)
    ));
    let mut c = PacketRepr::udp(
        (ip("fd00::1"), 1002),
        (ip("64:ff9b::198.51.100.7"), 53),
        b"c",
    )
    .emit();
    assert_eq!(
        g.process(now, Ingress::Inside(NicId(0)), &mut c),
        Verdict::Drop(DropReason::PortsExhausted)
    );
}

#[test]
fn nat64_without_an_ipv4_block_is_dropped_as_no_nat_block() {
    let mut g = gateway(true, 64);
    g.release_block(Instant::from_secs(1), NicId(0), natsim::nat::Family::V4);
    let mut b = PacketRepr::udp(
        (ip("fd00::1"), 1001),
        (ip("64:ff9b::198.51.100.7"), 53),
        b"b",
    )
    .emit();
    assert_eq!(
        g.process(Instant::from_secs(2), Ingress::Inside(NicId(0)), &mut b),
        Verdict::Drop(DropReason::NoNatBlock)
    );
}

#[test]
fn nat64_off_sends_well_known_prefix_traffic_through_napt66() {
    let mut g = gateway(false, 64);
    let mut b = PacketRepr::udp(
        (ip("fd00::1"), 1001),
        (ip("64:ff9b::198.51.100.7"), 53),
        b"b",
    )
    .emit();
    // No IPv6 block: NAPT66 has nothing to translate with.
    assert_eq!(
        g.process(Instant::from_secs(1), Ingress::Inside(NicId(0)), &mut b),
        Verdict::Drop(DropReason::NoNatBlock)
    );
}

#[test]
fn nat64_reply_from_the_wrong_remote_is_unsolicited() {
    let mut g = gateway(true, 64);
    let mut b = PacketRepr::udp(
        (ip("fd00::1"), 1001),
        (ip("64:ff9b::198.51.100.7"), 53),
        b"b",
    )
    .emit();
    g.process(Instant::from_secs(1), Ingress::Inside(NicId(0)), &mut b);
    let TransportRepr::Udp { src_port, .. } = parse_ok(&b).transport else {
        panic!("udp expected")
    };
    let mut r = PacketRepr::udp((ip("198.51.100.8"), 53), (ip(NAT), src_port), b"x").emit();
    assert_eq!(
        g.process(Instant::from_secs(1), Ingress::Outside, &mut r),
        Verdict::Drop(DropReason::Unsolicited)
    );
    assert_eq!(g.live_flows(), (1, 0));
}
