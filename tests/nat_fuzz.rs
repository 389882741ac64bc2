//! Bad input: any byte sequence, from either side, gets a verdict and never panics, and every
//! packet is accounted for exactly once.
//!
//! Accounting rule (asserted here): every call to `process` adds exactly one to the
//! *dispositions* (`translated.out.*` + `translated.in.*` + `translated.hairpin` +
//! `passed_through` + `drop.*`), except
//! - `Respond` with an echo reply to a NAT IP: counted in `generated` only (0 dispositions);
//! - `Buffered`: 0 now; the fragment is counted once later, when released (translated, or
//!   dropped as `fragment_of_dropped`) or when it times out (`fragment_timeout`);
//! - a first fragment that releases buffered fragments: 1 plus one per released fragment.
//!
//! So after all buffered fragments are released or expired:
//! packets in == dispositions + echo replies.

mod common;

use common::*;
use natsim::nat::*;
use natsim::wire::tcp_flags::*;
use natsim::wire::{IcmpRepr, PacketRepr, TransportRepr, parse_ip};
use proptest::prelude::*;

#[derive(Default)]
struct Tally {
    packets_in: u64,
    echo_replies: u64,
    buffered: u64,
}

fn feed(g: &mut Gateway, tally: &mut Tally, t_ms: u64, ingress: Ingress, bytes: &[u8]) {
    let mut pkt = bytes.to_vec();
    let before = g.counters().clone();
    let v = g.process(ms(t_ms), ingress, &mut pkt);
    let after = g.counters().clone();
    tally.packets_in += 1;
    let delta = dispositions(&after) - dispositions(&before);
    match v {
        Verdict::Buffered => {
            tally.buffered += 1;
            assert_eq!(delta, 0, "buffered fragments are counted later");
        }
        Verdict::Respond(_) => {
            let (p, ck) = PacketRepr::parse(&pkt).expect("generated packet parses");
            assert!(ck.all_ok(), "generated packet checksums");
            if matches!(p.transport, TransportRepr::Icmp(IcmpRepr::EchoReply { .. })) {
                tally.echo_replies += 1;
                assert_eq!(delta, 0);
            } else {
                assert_eq!(delta, 1, "an ICMP answer replaces a counted drop");
            }
            assert_eq!(after.generated, before.generated + 1);
        }
        Verdict::Drop(r) => {
            assert!(delta >= 1);
            assert!(after.dropped(r) > before.dropped(r), "{r:?} counted");
        }
        Verdict::Forward(_) | Verdict::PassThrough => {
            assert!(delta >= 1);
            let m = parse_ip(&pkt).expect("forwarded packet parses");
            if matches!(v, Verdict::Forward(_)) && m.fragment.is_none() {
                let (_, ck) = PacketRepr::parse(&pkt).expect("parses");
                assert!(ck.all_ok(), "forwarded packet checksums {ck:?}: {pkt:02x?}");
            }
        }
    }
    while let Some((_, released)) = g.poll_transmit() {
        assert!(parse_ip(&released).is_ok());
    }
}

fn finish(g: &mut Gateway, tally: &Tally) {
    g.handle_timeout(secs(1_000_000));
    while g.poll_transmit().is_some() {}
    assert_eq!(g.fragment_datagrams(), 0);
    assert_eq!(
        dispositions(g.counters()) + tally.echo_replies,
        tally.packets_in,
        "every packet accounted once: {:?}",
        g.counters().to_map()
    );
    assert_no_overloading(g);
}

fn ingress_strategy() -> impl Strategy<Value = Ingress> {
    prop_oneof![
        Just(Ingress::Outside),
        Just(Ingress::Inside(NIC0)),
        Just(Ingress::Inside(NIC1)),
        Just(Ingress::Inside(NicId(7))),
    ]
}

/// Random bytes, biased to start like an IPv4 or IPv6 header.
fn bytes_strategy() -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![Just(0x45u8), Just(0x60), Just(0x46), any::<u8>()],
        proptest::collection::vec(any::<u8>(), 0..120),
    )
        .prop_map(|(first, mut rest)| {
            rest.insert(0, first);
            rest
        })
}

/// Valid packets of every kind the gateway handles, in both directions.
fn valid_packet(kind: u8, port: u16, nat_port: u16) -> (Ingress, Vec<u8>) {
    let inside = Ingress::Inside(NIC0);
    let p = 1024 + nat_port % 64;
    match kind % 15 {
        0 => (inside, tcp((A4, port), (R4, 80), SYN)),
        1 => (inside, udp((A4, port), (R4, 53))),
        2 => (inside, ping(A4, R4, port)),
        3 => (inside, tcp((A6, port), (R6, 80), SYN)),
        4 => (inside, udp((A6, port), (R6, 53))),
        5 => (inside, ping(A6, R6, port)),
        6 => (Ingress::Outside, tcp((R4, 80), (NAT4, p), SYN | ACK)),
        7 => (Ingress::Outside, udp((R4, 53), (NAT4, p))),
        8 => (Ingress::Outside, pong_ip(ip(R4), ip(NAT4), p)),
        9 => (Ingress::Outside, udp((R6, 53), (NAT6, p))),
        10 => (
            Ingress::Outside,
            PacketRepr::icmp_error(ip(R4), ip(NAT4), 3, 3, &udp((NAT4, p), (R4, 53))).emit(),
        ),
        11 => (
            Ingress::Outside,
            PacketRepr::icmp_error(ip(R6), ip(NAT6), 1, 4, &udp((NAT6, p), (R6, 53))).emit(),
        ),
        12 => (Ingress::Outside, ping(R4, NAT4, port)),
        13 => (Ingress::Inside(NIC1), udp((B4, port), (NAT4, p))),
        _ => (inside, udp((A4, port), (B4, 53))),
    }
}

#[derive(Clone, Debug)]
enum Mutation {
    Flip(usize, u8),
    Truncate(usize),
    Extend(Vec<u8>),
}

fn mutation_strategy() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), 1u8..=255).prop_map(|(i, x)| Mutation::Flip(i, x)),
        1 => any::<usize>().prop_map(Mutation::Truncate),
        1 => proptest::collection::vec(any::<u8>(), 1..8).prop_map(Mutation::Extend),
    ]
}

fn mutate(pkt: &mut Vec<u8>, muts: &[Mutation]) {
    for m in muts {
        match m {
            Mutation::Flip(i, x) if !pkt.is_empty() => {
                let n = pkt.len();
                pkt[i % n] ^= x;
            }
            Mutation::Truncate(n) => {
                let n = n % (pkt.len() + 1);
                pkt.truncate(n);
            }
            Mutation::Extend(b) => pkt.extend_from_slice(b),
            Mutation::Flip(..) => {}
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_bytes_get_a_verdict_and_are_counted_once(
        packets in proptest::collection::vec((ingress_strategy(), bytes_strategy()), 1..40),
        verify in any::<bool>(),
    ) {
        let mut cfg = config(profile("rfc"), 64);
        cfg.verify_l4_checksums = verify;
        let mut g = build(cfg);
        let mut tally = Tally::default();
        for (i, (ingress, bytes)) in packets.iter().enumerate() {
            feed(&mut g, &mut tally, i as u64 * 10, *ingress, bytes);
        }
        finish(&mut g, &tally);
    }

    #[test]
    fn mutated_valid_packets_get_a_verdict_and_are_counted_once(
        packets in proptest::collection::vec(
            (any::<u8>(), 5000u16..5008, any::<u16>(), proptest::collection::vec(mutation_strategy(), 0..4)),
            1..40,
        ),
        name in prop_oneof![Just("rfc"), Just("dpservice"), Just("linux")],
    ) {
        let mut g = gw(name, 64);
        let mut tally = Tally::default();
        for (i, (kind, port, nat_port, muts)) in packets.iter().enumerate() {
            let (ingress, mut pkt) = valid_packet(*kind, *port, *nat_port);
            mutate(&mut pkt, muts);
            feed(&mut g, &mut tally, i as u64 * 10, ingress, &pkt);
        }
        finish(&mut g, &tally);
    }
}
