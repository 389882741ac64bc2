//! `Gateway::process_batch` against packet-by-packet `Gateway::process`: two gateways built
//! alike are fed the same random batches (each batch at one instant, time jumping between
//! batches so flows expire at a batch's first packet), one batch at a time and one packet at a
//! time. Every verdict, every output buffer, the counters, the events, the flow list and the
//! next timeout must be identical after every batch.
//!
//! The batches mix IPv4 and IPv6; several packets of one flow; new flows on 4-port blocks (so
//! blocks run out inside a batch); replies, unsolicited and garbage packets from outside; TCP
//! with random flags (flows open and close inside a batch); and echo requests. The prefetch
//! stage is forced on for every table size, so the stale-hint cases (a flow created or ended
//! earlier in the same batch) are exercised.

mod common;

use common::*;
use natsim::nat::*;
use natsim::wire::PacketRepr;
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
}

fn gen_strategy() -> impl Strategy<Value = Gen> {
    prop_oneof![
        6 => (0u8..3, any::<bool>(), 0u8..3, 0u8..6, 0u8..3, any::<u8>()).prop_map(
            |(nic, v6, kind, iport, remote, flags)| Gen::Out { nic, v6, kind, iport, remote, flags }
        ),
        4 => (any::<bool>(), 0u8..3, 0u8..16, 0u8..3, any::<u8>()).prop_map(
            |(v6, kind, nat_port, remote, flags)| Gen::In { v6, kind, nat_port, remote, flags }
        ),
        1 => (any::<bool>(), proptest::collection::vec(any::<u8>(), 0..60))
            .prop_map(|(inside, bytes)| Gen::Junk { inside, bytes }),
    ]
}

fn remote_of(v6: bool, r: u8) -> &'static str {
    match (v6, r) {
        (false, 0) => R4,
        (false, _) => R4B,
        (true, 0) => R6,
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
