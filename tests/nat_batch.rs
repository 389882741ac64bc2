//! The gateway's line-rate paths against its general path, on random traffic:
//!
//! - `Gateway::process_batch` against packet-by-packet `Gateway::process`: two gateways built
//!   alike are fed the same random batches (each batch at one instant, time jumping between
//!   batches so flows expire at a batch's first packet), one batch at a time and one packet at a
//!   time. Every verdict, every output buffer, the counters, the events, the flow list and the
//!   next timeout must be identical after every batch. The prefetch stage is forced on for every
//!   table size, so the stale-hint cases (a flow created or ended earlier in the same batch) are
//!   exercised.
//! - The established-flow fast path against the general path: the same, packet by packet, with
//!   the fast path on in one gateway and off in the other, on the standard topology (networks
//!   with local prefixes) and on one without local prefixes that translates NAT64.
//!
//! The traffic mixes IPv4 and IPv6; several packets of one flow; new flows on 4-port blocks (so
//! blocks run out); replies, unsolicited and garbage packets from outside; hairpin packets to the
//! gateway's own NAT addresses; TCP with random flags (flows open and close); echo requests; and
//! copies of all of these with one byte changed (TTL, lengths, fragment bits, header length,
//! checksums), with the IPv4 header checksum made right again or not, so that every check the
//! fast path makes is seen to hand the packet back.

mod common;

use common::*;
use natsim::nat::*;
use natsim::wire::{PacketRepr, checksum};
use proptest::prelude::*;

const P: u32 = 4;

/// One generated packet, described by small choices so batches hit the same flows often.
#[derive(Clone, Debug)]
enum Gen {
    /// From NIC `nic` (0..3), family, protocol (0 UDP, 1 TCP, 2 echo), inside port choice,
    /// remote choice, TCP flags.
    Out {
        nic: u8,
        v6: bool,
        kind: u8,
        iport: u8,
        remote: u8,
        flags: u8,
    },
    /// From outside to the NAT IP: a reply or unsolicited (any port of the first blocks).
    In {
        v6: bool,
        kind: u8,
        nat_port: u8,
        remote: u8,
        flags: u8,
    },
    /// Arbitrary bytes from either side.
    Junk { inside: bool, bytes: Vec<u8> },
    /// Another packet with byte `at` (modulo its length) set to `value`; `fix` recomputes the
    /// IPv4 header checksum afterwards.
    Mutated {
        base: Box<Gen>,
        at: u8,
        value: u8,
        fix: bool,
    },
}

fn gen_strategy() -> impl Strategy<Value = Gen> {
    let plain = plain_strategy();
    prop_oneof![
        8 => plain.clone(),
        2 => (plain, any::<u8>(), any::<u8>(), any::<bool>()).prop_map(
            |(base, at, value, fix)| Gen::Mutated { base: Box::new(base), at, value, fix }
        ),
    ]
}

fn plain_strategy() -> impl Strategy<Value = Gen> + Clone {
    prop_oneof![
        6 => (0u8..3, any::<bool>(), 0u8..3, 0u8..6, 0u8..4, any::<u8>()).prop_map(
            |(nic, v6, kind, iport, remote, flags)| Gen::Out { nic, v6, kind, iport, remote, flags }
        ),
        4 => (any::<bool>(), 0u8..3, 0u8..16, 0u8..3, any::<u8>()).prop_map(
            |(v6, kind, nat_port, remote, flags)| Gen::In { v6, kind, nat_port, remote, flags }
        ),
        1 => (any::<bool>(), proptest::collection::vec(any::<u8>(), 0..60))
            .prop_map(|(inside, bytes)| Gen::Junk { inside, bytes }),
    ]
}

/// A remote address; choice 3 is the gateway's own NAT address (hairpin).
fn remote_of(v6: bool, r: u8) -> &'static str {
    match (v6, r) {
        (false, 0) => R4,
        (false, 3) => NAT4,
        (false, _) => R4B,
        (true, 0) => R6,
        (true, 3) => NAT6,
        (true, _) => R6B,
    }
}

fn packet(g: &Gen) -> (Ingress, Vec<u8>) {
    match g {
        Gen::Out {
            nic,
            v6,
            kind,
            iport,
            remote,
            flags,
        } => {
            let (id, src) = match (nic, v6) {
                (0, false) => (NIC0, A4),
                (0, true) => (NIC0, A6),
                (1, false) => (NIC1, B4),
                (1, true) => (NIC1, B6),
                (_, false) => (RED, A4),
                (_, true) => (RED, A6),
            };
            let sport = 40000 + u16::from(*iport);
            let dst = remote_of(*v6, *remote);
            let bytes = match kind {
                0 => udp((src, sport), (dst, 53)),
                1 => tcp((src, sport), (dst, 80), *flags & 0x17),
                _ => ping(src, dst, sport),
            };
            (Ingress::Inside(id), bytes)
        }
        Gen::In {
            v6,
            kind,
            nat_port,
            remote,
            flags,
        } => {
            let nat = if *v6 { NAT6 } else { NAT4 };
            let port = 1024 + u16::from(*nat_port);
            let src = remote_of(*v6, *remote);
            let bytes = match kind {
                0 => udp((src, 53), (nat, port)),
                1 => tcp((src, 80), (nat, port), *flags & 0x17),
                _ => pong_ip(ip(src), ip(nat), port),
            };
            (Ingress::Outside, bytes)
        }
        Gen::Junk { inside, bytes } => (
            if *inside {
                Ingress::Inside(NIC0)
            } else {
                Ingress::Outside
            },
            bytes.clone(),
        ),
        Gen::Mutated {
            base,
            at,
            value,
            fix,
        } => {
            let (ingress, mut bytes) = packet(base);
            if !bytes.is_empty() {
                let k = usize::from(*at) % bytes.len();
                bytes[k] = *value;
                let ihl = usize::from(bytes[0] & 0x0F) * 4;
                if *fix && bytes[0] >> 4 == 4 && (20..=bytes.len()).contains(&ihl) {
                    checksum::set_ipv4_header(&mut bytes, ihl);
                }
            }
            (ingress, bytes)
        }
    }
}

fn gateway(profile_name: &str) -> Gateway {
    let mut g = gw(profile_name, P);
    g.set_batch_prefetch_min_flows(0);
    g
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn a_batch_gives_exactly_what_packet_by_packet_processing_gives(
        profile_ix in 0usize..3,
        batches in proptest::collection::vec(
            (0u64..400_000, proptest::collection::vec(gen_strategy(), 1..40)),
            1..12,
        ),
    ) {
        let profile_name = ["rfc", "linux", "dpservice"][profile_ix];
        let mut one = gateway(profile_name);
        let mut many = gateway(profile_name);
        let mut t_ms = 1_000;
        for (step, (advance_ms, gens)) in batches.iter().enumerate() {
            t_ms += advance_ms;
            let now = ms(t_ms);
            let mut batch: Vec<BatchPacket> = gens
                .iter()
                .map(|g| {
                    let (ingress, bytes) = packet(g);
                    BatchPacket::new(ingress, bytes)
                })
                .collect();
            let singles: Vec<(Verdict, Vec<u8>)> = batch
                .iter()
                .map(|p| {
                    let mut b = p.buf.clone();
                    (one.process(now, p.ingress, &mut b), b)
                })
                .collect();
            many.process_batch(now, &mut batch);
            for (k, (p, (v, b))) in batch.iter().zip(&singles).enumerate() {
                prop_assert_eq!(p.verdict, *v, "batch {} packet {}", step, k);
                prop_assert_eq!(&p.buf, b, "batch {} packet {}", step, k);
            }
            prop_assert_eq!(one.counters(), many.counters(), "batch {}", step);
            prop_assert_eq!(one.drain_events(), many.drain_events(), "batch {}", step);
            prop_assert_eq!(one.flows(), many.flows(), "batch {}", step);
            prop_assert_eq!(one.poll_timeout(), many.poll_timeout(), "batch {}", step);
        }
    }
}

/// The standard topology (`local`: its networks have local prefixes) or one without local
/// prefixes that translates NAT64; the fast path on or off.
fn gateway_with_fast_path(profile_name: &str, local: bool, fast: bool) -> Gateway {
    let mut cfg = config(profile(profile_name), P);
    if !local {
        for net in &mut cfg.networks {
            net.local_prefixes.clear();
        }
        cfg.nat64 = true;
    }
    let mut g = build(cfg);
    g.set_fast_path(fast);
    g
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn the_fast_path_gives_exactly_what_the_general_path_gives(
        profile_ix in 0usize..4,
        local in any::<bool>(),
        steps in proptest::collection::vec((0u64..200_000, gen_strategy()), 1..120),
    ) {
        let profile_name = ["rfc", "linux", "dpservice", "aws"][profile_ix];
        let mut general = gateway_with_fast_path(profile_name, local, false);
        let mut fast = gateway_with_fast_path(profile_name, local, true);
        let mut t_ms = 1_000;
        for (step, (advance_ms, g)) in steps.iter().enumerate() {
            // Most packets come at the same instant as the one before.
            if advance_ms % 4 == 0 {
                t_ms += advance_ms;
            }
            let now = ms(t_ms);
            let (ingress, bytes) = packet(g);
            let (mut a, mut b) = (bytes.clone(), bytes);
            let va = general.process(now, ingress, &mut a);
            let vb = fast.process(now, ingress, &mut b);
            prop_assert_eq!(va, vb, "packet {}: {:?}", step, g);
            prop_assert_eq!(&a, &b, "packet {}: {:?}", step, g);
            prop_assert_eq!(general.counters(), fast.counters(), "packet {}", step);
            prop_assert_eq!(general.drain_events(), fast.drain_events(), "packet {}", step);
            prop_assert_eq!(general.flows(), fast.flows(), "packet {}", step);
            prop_assert_eq!(general.poll_timeout(), fast.poll_timeout(), "packet {}", step);
        }
        prop_assert_eq!(general.fast_path_packets(), 0);
    }
}

/// The fast path is taken for established traffic in both directions and both families, on
/// the standard topology (whose networks have local prefixes), and not for a new flow, a
/// packet to the NIC's own network, a hairpin packet, a bad checksum or TTL 1.
#[test]
fn the_fast_path_takes_established_packets_and_nothing_else() {
    let mut g = gateway_with_fast_path("rfc", true, true);
    let now = secs(1);
    let taken = |g: &mut Gateway, ingress, mut pkt: Vec<u8>| {
        let before = g.fast_path_packets();
        let v = g.process(now, ingress, &mut pkt);
        (g.fast_path_packets() - before, v, pkt)
    };
    for (src, dst, nat) in [(A4, R4, NAT4), (A6, R6, NAT6)] {
        let (n, v, first) = taken(&mut g, Ingress::Inside(NIC0), udp((src, 40000), (dst, 53)));
        assert_eq!((n, v), (0, Verdict::Forward(Egress::Outside)), "a new flow");
        let (n, v, _) = taken(&mut g, Ingress::Inside(NIC0), udp((src, 40000), (dst, 53)));
        assert_eq!(
            (n, v),
            (1, Verdict::Forward(Egress::Outside)),
            "established, out"
        );
        let nat_port = ports(&parsed(&first)).0;
        let reply = udp_ip((ip(dst), 53), (ip(nat), nat_port));
        let (n, v, _) = taken(&mut g, Ingress::Outside, reply);
        assert_eq!(
            (n, v),
            (1, Verdict::Forward(Egress::Nic(NIC0))),
            "established, in"
        );
        let local = if src == A4 { B4 } else { B6 };
        let (n, v, _) = taken(
            &mut g,
            Ingress::Inside(NIC0),
            udp((src, 40000), (local, 53)),
        );
        assert_eq!((n, v), (0, Verdict::PassThrough), "own network");
        let (n, _, _) = taken(&mut g, Ingress::Inside(NIC0), udp((src, 40001), (nat, 53)));
        assert_eq!(n, 0, "hairpin, new");
        let (n, _, _) = taken(&mut g, Ingress::Inside(NIC0), udp((src, 40001), (nat, 53)));
        assert_eq!(n, 0, "hairpin, established");
        let mut bad = udp((src, 40000), (dst, 53));
        let last = bad.len() - 1;
        bad[last] ^= 0xFF;
        let (n, v, _) = taken(&mut g, Ingress::Inside(NIC0), bad);
        assert_eq!(
            (n, v),
            (0, Verdict::Drop(DropReason::BadChecksum)),
            "bad checksum"
        );
    }
    let mut ttl1 = udp((A4, 40000), (R4, 53));
    ttl1[8] = 1;
    checksum::set_ipv4_header(&mut ttl1, 20);
    let (n, _, _) = taken(&mut g, Ingress::Inside(NIC0), ttl1);
    assert_eq!(n, 0, "TTL 1");
}

/// The generator reaches what the property is about: flows made and reused inside one batch,
/// blocks running out, replies translated in, and expiry at a batch's first packet.
#[test]
fn the_batch_property_reaches_its_cases() {
    let mut g = gateway("rfc");
    let now = secs(1);
    // Five UDP flows from one NIC to one remote: the fifth finds the 4-port block full (rfc
    // scopes ports per remote endpoint, so all five share one scope).
    let mut batch: Vec<BatchPacket> = (0..5)
        .map(|k| BatchPacket::new(Ingress::Inside(NIC0), udp((A4, 40000 + k), (R4, 53))))
        .chain(std::iter::once(BatchPacket::new(
            Ingress::Inside(NIC0),
            udp((A4, 40000), (R4, 53)),
        )))
        .collect();
    g.process_batch(now, &mut batch);
    let verdicts: Vec<Verdict> = batch.iter().map(|p| p.verdict).collect();
    assert!(
        verdicts[..4]
            .iter()
            .all(|v| *v == Verdict::Forward(Egress::Outside))
    );
    assert_eq!(verdicts[4], Verdict::Drop(DropReason::PortsExhausted));
    assert_eq!(verdicts[5], Verdict::Forward(Egress::Outside));
    let nat_port = ports(&parsed(&batch[0].buf)).0;
    let mut replies = vec![BatchPacket::new(
        Ingress::Outside,
        PacketRepr::udp((ip(R4), 53), (ip(NAT4), nat_port), b"").emit(),
    )];
    g.process_batch(now, &mut replies);
    assert_eq!(replies[0].verdict, Verdict::Forward(Egress::Nic(NIC0)));
    // Long after every timeout: the batch's first packet expires the old flows.
    let late = secs(100_000);
    let mut again = vec![BatchPacket::new(
        Ingress::Outside,
        PacketRepr::udp((ip(R4), 53), (ip(NAT4), nat_port), b"").emit(),
    )];
    g.process_batch(late, &mut again);
    assert_eq!(again[0].verdict, Verdict::Drop(DropReason::Unsolicited));
}

/// The prefetch stage's slot is used: a batch of packets of established flows (both
/// directions, both families) finds every flow at the slot the prefetch stage named, and
/// translates exactly as packet-by-packet processing does.
#[test]
fn a_batch_takes_the_flow_slot_its_prefetch_stage_found() {
    let mut one = gateway("rfc");
    let mut many = gateway("rfc");
    let t = ms(1_000);
    let mut outbound = Vec::new();
    let mut replies = Vec::new();
    for (src, dst) in [(A4, R4), (A6, R6)] {
        for sport in 40_000..40_004 {
            // Open the flow in both gateways; its translation gives the reply.
            let bytes = udp((src, sport), (dst, 53));
            let (nat, port) = out_ok(&mut one, t, NIC0, bytes.clone());
            assert_eq!(out_ok(&mut many, t, NIC0, bytes.clone()), (nat, port));
            outbound.push((Ingress::Inside(NIC0), bytes));
            replies.push((Ingress::Outside, udp_ip((ip(dst), 53), (nat, port))));
        }
    }
    let mut batch: Vec<BatchPacket> = outbound
        .iter()
        .chain(&replies)
        .map(|(ingress, bytes)| BatchPacket::new(*ingress, bytes.clone()))
        .collect();
    let before = many.candidate_packets();
    let singles: Vec<(Verdict, Vec<u8>)> = batch
        .iter()
        .map(|p| {
            let mut b = p.buf.clone();
            (one.process(t, p.ingress, &mut b), b)
        })
        .collect();
    many.process_batch(t, &mut batch);
    for (p, (v, b)) in batch.iter().zip(&singles) {
        assert!(matches!(p.verdict, Verdict::Forward(_)), "{:?}", p.verdict);
        assert_eq!((p.verdict, &p.buf), (*v, b));
    }
    assert_eq!(many.candidate_packets() - before, batch.len() as u64);
    assert_eq!(
        one.candidate_packets(),
        0,
        "packet by packet has no candidates"
    );
}

/// A candidate that went stale inside its batch is not taken: the prefetch stage found the
/// flow's slot before the batch's instant expired the flow, so when the reply's turn comes the
/// slot holds no live flow, and the reply is looked up (and refused as unsolicited) as
/// packet-by-packet processing does.
#[test]
fn a_batch_does_not_take_a_slot_whose_flow_expired_at_the_batch_instant() {
    let mut one = gateway("rfc");
    let mut many = gateway("rfc");
    let mut replies = Vec::new();
    for g in [&mut one, &mut many] {
        let (nat, port) = out_ok(g, ms(1_000), NIC0, udp((A4, 40_000), (R4, 53)));
        replies.push(udp_ip((ip(R4), 53), (nat, port)));
    }
    assert_eq!(replies[0], replies[1]);
    // An hour on: the flow and any hold on its port are over.
    let t = ms(3_601_000);
    let mut single = replies[0].clone();
    let v = one.process(t, Ingress::Outside, &mut single);
    assert_eq!(v, Verdict::Drop(DropReason::Unsolicited));
    let mut batch = vec![BatchPacket::new(Ingress::Outside, replies[1].clone())];
    many.process_batch(t, &mut batch);
    assert_eq!((batch[0].verdict, &batch[0].buf), (v, &single));
    assert_eq!(many.candidate_packets(), 0);
    assert_eq!(one.counters(), many.counters());
    assert_eq!(one.flows(), many.flows());
}
