use std::net::IpAddr;

use natsim::nat::*;
use natsim::time::Instant;
use natsim::wire::{PacketRepr, TransportRepr, tcp_flags::*};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn gw(p: u32) -> Gateway {
    let mut g = Gateway::new(GatewayConfig {
        ports_per_nic: p,
        networks: vec![NetworkConfig {
            name: "net".into(),
            local_prefixes: vec!["10.0.0.0/24".parse().unwrap()],
        }],
        record_events: true,
        ..Default::default()
    })
    .unwrap();
    g.add_nic(
        NicId(0),
        NicConfig {
            network: NetworkId(0),
            addresses: vec![ip("10.0.0.1")],
            name: "a".into(),
        },
    )
    .unwrap();
    g.assign_block(
        Instant::ZERO,
        NicId(0),
        Block {
            nat_ip: ip("203.0.113.1"),
            port: 1024,
            end_port: 1024 + p as u16 - 1,
        },
    )
    .unwrap();
    g
}

#[test]
fn tcp_roundtrip() {
    let mut g = gw(64);
    let mut pkt =
        PacketRepr::tcp((ip("10.0.0.1"), 40000), (ip("8.8.8.8"), 80), SYN, 1, 0, b"").emit();
    let v = g.process(Instant::from_secs(1), Ingress::Inside(NicId(0)), &mut pkt);
    assert_eq!(v, Verdict::Forward(Egress::Outside));
    let (p, ck) = PacketRepr::parse(&pkt).unwrap();
    assert!(ck.all_ok());
    assert_eq!(p.ip.src, ip("203.0.113.1"));
    let TransportRepr::Tcp { src_port, .. } = p.transport else {
        panic!()
    };
    assert!((1024..1088).contains(&src_port));
    let mut reply = PacketRepr::tcp(
        (ip("8.8.8.8"), 80),
        (ip("203.0.113.1"), src_port),
        SYN | ACK,
        9,
        2,
        b"",
    )
    .emit();
    let v = g.process(Instant::from_secs(2), Ingress::Outside, &mut reply);
    assert_eq!(v, Verdict::Forward(Egress::Nic(NicId(0))));
    let (p, ck) = PacketRepr::parse(&reply).unwrap();
    assert!(ck.all_ok());
    assert_eq!(p.ip.dst, ip("10.0.0.1"));
    let mut bogus = PacketRepr::tcp(
        (ip("8.8.4.4"), 80),
        (ip("203.0.113.1"), src_port),
        SYN | ACK,
        9,
        2,
        b"",
    )
    .emit();
    assert_eq!(
        g.process(Instant::from_secs(2), Ingress::Outside, &mut bogus),
        Verdict::Drop(DropReason::Unsolicited)
    );
    assert_eq!(g.live_flows(), (1, 0));
    g.handle_timeout(Instant::from_secs(10_000));
    assert_eq!(g.live_flows(), (0, 0));
    println!("{:#?}", g.drain_events());
}
