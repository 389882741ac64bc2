//! behaviour §4 "Fragments" (RFC 4787 REQ-14): the first fragment decides the translation, later
//! ones follow in or out of order, and fragment state is bounded in count and time.

mod common;

use std::net::IpAddr;

use common::*;
use natsim::nat::*;
use natsim::time::Instant;
use natsim::wire::{FragmentRepr, IpRepr, PacketRepr, TransportRepr, parse_ip};

/// Splits a UDP datagram (with a valid checksum over the whole) into fragments of `chunk`
/// transport bytes (a multiple of 8).
fn fragments(src: (&str, u16), dst: (&str, u16), ident: u32, payload_len: usize) -> Vec<Vec<u8>> {
    fragments_ip((ip(src.0), src.1), (ip(dst.0), dst.1), ident, payload_len)
}

fn fragments_ip(
    src: (IpAddr, u16),
    dst: (IpAddr, u16),
    ident: u32,
    payload_len: usize,
) -> Vec<Vec<u8>> {
    let payload: Vec<u8> = (0..payload_len).map(|i| i as u8).collect();
    let whole = PacketRepr::udp(src, dst, &payload).emit();
    let m = parse_ip(&whole).expect("parses");
    let l4 = &whole[m.l4_offset..m.end];
    let chunk = 24;
    let n = l4.len().div_ceil(chunk);
    (0..n)
        .map(|i| {
            let part = &l4[i * chunk..((i + 1) * chunk).min(l4.len())];
            let mut iph = IpRepr::new(src.0, dst.0);
            iph.ident = ident;
            iph.fragment = Some(FragmentRepr {
                offset_bytes: (i * chunk) as u32,
                more: i + 1 < n,
            });
            PacketRepr {
                ip: iph,
                transport: TransportRepr::Raw {
                    protocol: 17,
                    payload: part.to_vec(),
                },
            }
            .emit()
        })
        .collect()
}

/// Reassembles translated fragments and checks the whole datagram's checksums; returns it.
fn reassemble(frags: &[Vec<u8>]) -> PacketRepr {
    let mut parts: Vec<(u32, Vec<u8>, IpAddr, IpAddr)> = frags
        .iter()
        .map(|f| {
            let (p, ck) = PacketRepr::parse(f).expect("fragment parses");
            assert!(ck.ip_ok, "fragment IP checksum");
            let m = parse_ip(f).expect("parses");
            let off = m.fragment.expect("is a fragment").offset_bytes;
            (off, f[m.l4_offset..m.end].to_vec(), p.ip.src, p.ip.dst)
        })
        .collect();
    parts.sort_by_key(|p| p.0);
    let (src, dst) = (parts[0].2, parts[0].3);
    assert!(
        parts.iter().all(|p| p.2 == src && p.3 == dst),
        "same addresses"
    );
    let mut l4 = Vec::new();
    for (off, bytes, ..) in parts {
        assert_eq!(off as usize, l4.len(), "contiguous");
        l4.extend_from_slice(&bytes);
    }
    let whole = PacketRepr {
        ip: IpRepr::new(src, dst),
        transport: TransportRepr::Raw {
            protocol: 17,
            payload: l4,
        },
    }
    .emit();
    parsed(&whole)
}

fn send(g: &mut Gateway, t: Instant, ingress: Ingress, pkt: &[u8]) -> (Verdict, Vec<u8>) {
    let mut b = pkt.to_vec();
    let v = g.process(t, ingress, &mut b);
    (v, b)
}

#[test]
fn fragments_in_order_get_the_first_fragments_translation() {
    for (a, r) in [(A4, R4), (A6, R6)] {
        let mut g = gw("rfc", 64);
        let frags = fragments((a, 5000), (r, 53), 77, 60);
        assert!(frags.len() >= 3);
        let mut outs = Vec::new();
        for f in &frags {
            let (v, b) = send(&mut g, secs(1), Ingress::Inside(NIC0), f);
            assert_eq!(v, Verdict::Forward(Egress::Outside));
            outs.push(b);
        }
        let whole = reassemble(&outs);
        let nat = if a == A4 { NAT4 } else { NAT6 };
        assert_eq!(whole.ip.src, ip(nat));
        assert_eq!(g.live_flows().0 + g.live_flows().1, 1);
        // The reply, fragmented too, comes back the same way.
        let p = ports(&whole).0;
        let back = fragments((r, 53), (nat, p), 99, 60);
        let mut ins = Vec::new();
        for f in back.iter().rev().skip(1).rev() {
            let (v, b) = send(&mut g, secs(2), Ingress::Outside, f);
            assert_eq!(v, Verdict::Forward(Egress::Nic(NIC0)));
            ins.push(b);
        }
        let (v, b) = send(&mut g, secs(2), Ingress::Outside, &back[back.len() - 1]);
        assert_eq!(v, Verdict::Forward(Egress::Nic(NIC0)));
        ins.push(b);
        let whole = reassemble(&ins);
        assert_eq!((whole.ip.dst, ports(&whole).1), (ip(a), 5000));
    }
}

#[test]
fn later_fragments_arriving_first_are_buffered_and_released_with_the_first() {
    let mut g = gw("rfc", 64);
    let frags = fragments((A4, 5000), (R4, 53), 78, 60);
    for f in frags[1..].iter().rev() {
        let (v, _) = send(&mut g, secs(1), Ingress::Inside(NIC0), f);
        assert_eq!(v, Verdict::Buffered);
    }
    assert!(g.poll_transmit().is_none());
    let (v, first) = send(&mut g, secs(1), Ingress::Inside(NIC0), &frags[0]);
    assert_eq!(v, Verdict::Forward(Egress::Outside));
    let mut outs = vec![first];
    while let Some((egress, b)) = g.poll_transmit() {
        assert_eq!(egress, Egress::Outside);
        outs.push(b);
    }
    assert_eq!(outs.len(), frags.len());
    assert_eq!(reassemble(&outs).ip.src, ip(NAT4));
    assert_eq!(g.counters().translated_out[3], frags.len() as u64 - 1);
}

#[test]
fn later_fragments_of_a_dropped_first_fragment_are_dropped() {
    let mut g = gw("rfc", 64);
    // Unsolicited fragmented datagram from outside.
    let frags = fragments((R4, 53), (NAT4, 4000), 5, 60);
    assert_eq!(
        send(&mut g, secs(1), Ingress::Outside, &frags[2]).0,
        Verdict::Buffered
    );
    assert_eq!(
        send(&mut g, secs(1), Ingress::Outside, &frags[0]).0,
        Verdict::Drop(DropReason::Unsolicited)
    );
    assert!(g.poll_transmit().is_none());
    assert_eq!(
        send(&mut g, secs(1), Ingress::Outside, &frags[1]).0,
        Verdict::Drop(DropReason::FragmentOfDropped)
    );
    assert_eq!(g.counters().dropped(DropReason::FragmentOfDropped), 2);
    assert!(g.flows().is_empty());
}

#[test]
fn a_flood_of_incomplete_fragments_is_bounded_and_does_not_disturb_other_traffic() {
    let mut cfg = config(profile("rfc"), 64);
    cfg.max_fragment_datagrams = 8;
    cfg.max_fragments_buffered = 16;
    let mut g = build(cfg);
    let mut buffered = 0;
    let mut refused = 0;
    for id in 0..200u32 {
        let frags = fragments((R4, 53), (NAT4, 4000), id, 60);
        match send(&mut g, secs(1), Ingress::Outside, &frags[1]).0 {
            Verdict::Buffered => buffered += 1,
            Verdict::Drop(DropReason::FragmentLimit) => refused += 1,
            v => panic!("{v:?}"),
        }
    }
    assert_eq!((buffered, refused), (8, 192));
    assert_eq!(g.fragment_datagrams(), 8);
    // Unfragmented traffic is unaffected.
    let (_, p) = out_ok(&mut g, secs(1), NIC0, udp((A4, 5000), (R4, 53)));
    let (v, _) = inbound(&mut g, secs(1), udp((R4, 53), (NAT4, p)));
    assert_eq!(v, Verdict::Forward(Egress::Nic(NIC0)));
    // A new fragmented datagram cannot be tracked: its first fragment is refused before it
    // creates a flow.
    let flows = g.flows();
    let frags = fragments((A4, 6000), (R4, 53), 999, 60);
    assert_eq!(
        send(&mut g, secs(1), Ingress::Inside(NIC0), &frags[0]).0,
        Verdict::Drop(DropReason::FragmentLimit)
    );
    assert_eq!(g.flows(), flows);
    // Once the flood times out, fragmented traffic works again.
    g.handle_timeout(secs(31));
    assert_eq!(g.fragment_datagrams(), 0);
    assert_eq!(g.counters().dropped(DropReason::FragmentTimeout), 8);
    assert_eq!(
        send(&mut g, secs(32), Ingress::Inside(NIC0), &frags[0]).0,
        Verdict::Forward(Egress::Outside)
    );
}

#[test]
fn buffered_fragments_time_out() {
    let mut cfg = config(profile("rfc"), 64);
    cfg.fragment_timeout_ms = 1000;
    let mut g = build(cfg);
    let frags = fragments((A4, 5000), (R4, 53), 7, 60);
    assert_eq!(
        send(&mut g, secs(10), Ingress::Inside(NIC0), &frags[1]).0,
        Verdict::Buffered
    );
    assert_eq!(g.poll_timeout(), Some(secs(11)));
    g.handle_timeout(ms(10_999));
    assert_eq!(g.counters().dropped(DropReason::FragmentTimeout), 0);
    g.handle_timeout(secs(11));
    assert_eq!(g.counters().dropped(DropReason::FragmentTimeout), 1);
    assert_eq!(g.fragment_datagrams(), 0);
    // The first fragment now arrives alone; nothing is released.
    assert_eq!(
        send(&mut g, secs(12), Ingress::Inside(NIC0), &frags[0]).0,
        Verdict::Forward(Egress::Outside)
    );
    assert!(g.poll_transmit().is_none());
}

#[test]
fn fragment_state_of_a_first_fragment_expires_on_time_even_with_flows_pending() {
    let mut cfg = config(profile("rfc"), 64);
    cfg.fragment_timeout_ms = 1000;
    let mut g = build(cfg);
    // A flow whose deadline (300 s) is far later than the fragment timeout.
    out_ok(&mut g, secs(0), NIC0, udp((A4, 4000), (R4B, 53)));
    let frags = fragments((A4, 5000), (R4, 53), 8, 60);
    assert_eq!(
        send(&mut g, secs(1), Ingress::Inside(NIC0), &frags[0]).0,
        Verdict::Forward(Egress::Outside)
    );
    assert_eq!(g.fragment_datagrams(), 1);
    assert_eq!(g.poll_timeout(), Some(secs(2)));
    // Only process() calls from here on: the gateway must expire the datagram by itself.
    out_ok(&mut g, secs(2), NIC0, udp((A4, 4000), (R4B, 53)));
    assert_eq!(
        g.fragment_datagrams(),
        0,
        "datagram state outlived its timeout"
    );
    assert_eq!(
        send(&mut g, secs(2), Ingress::Inside(NIC0), &frags[1]).0,
        Verdict::Buffered,
        "a late fragment is not translated with a forgotten decision"
    );
}

#[test]
fn fragments_heading_to_a_nic_that_lost_its_block_are_dropped() {
    let mut g = gw("rfc", 64);
    let (_, p) = out_ok(&mut g, secs(1), NIC0, udp((A4, 5000), (R4, 53)));
    let back = fragments((R4, 53), (NAT4, p), 3, 60);
    assert_eq!(
        send(&mut g, secs(2), Ingress::Outside, &back[0]).0,
        Verdict::Forward(Egress::Nic(NIC0))
    );
    g.release_block(secs(3), NIC0, Family::V4);
    assert_eq!(
        send(&mut g, secs(3), Ingress::Outside, &back[1]).0,
        Verdict::Drop(DropReason::FragmentOfDropped)
    );
}

#[test]
fn fragments_of_the_same_private_address_in_two_networks_keep_apart() {
    let mut g = gw("rfc", 64);
    // The red network's NIC uses the same private address as blue's NIC0, on another NAT IP.
    g.assign_block(secs(1), RED, block("203.0.113.77", 0, 64))
        .expect("red block");
    let blue = fragments((A4, 5000), ("198.51.100.9", 53), 7, 60);
    let red = fragments((A4, 5000), ("198.51.100.9", 53), 7, 60);
    // Blue's later fragment arrives first and waits for blue's first fragment.
    let mut early = blue[1].clone();
    assert_eq!(
        g.process(secs(2), Ingress::Inside(NIC0), &mut early),
        Verdict::Buffered
    );
    // Red's first fragment has the same (src, dst, proto, id) but is another datagram.
    let mut red_first = red[0].clone();
    assert_eq!(
        g.process(secs(2), Ingress::Inside(RED), &mut red_first),
        Verdict::Forward(Egress::Outside)
    );
    assert!(
        g.poll_transmit().is_none(),
        "red's first fragment must not release blue's fragment"
    );
    let mut blue_first = blue[0].clone();
    assert_eq!(
        g.process(secs(2), Ingress::Inside(NIC0), &mut blue_first),
        Verdict::Forward(Egress::Outside)
    );
    let (egress, released) = g.poll_transmit().expect("blue's fragment released");
    assert_eq!(egress, Egress::Outside);
    assert_eq!(parsed(&released).ip.src, ip(NAT4));
}

#[test]
fn later_outbound_fragments_are_dropped_once_the_nic_loses_its_block() {
    let mut g = gw("rfc", 64);
    let frags = fragments((A4, 5000), ("198.51.100.9", 53), 9, 60);
    let mut first = frags[0].clone();
    assert_eq!(
        g.process(secs(1), Ingress::Inside(NIC0), &mut first),
        Verdict::Forward(Egress::Outside)
    );
    g.release_block(secs(2), NIC0, Family::V4);
    let mut later = frags[1].clone();
    assert_eq!(
        g.process(secs(2), Ingress::Inside(NIC0), &mut later),
        Verdict::Drop(DropReason::FragmentOfDropped)
    );
}

/// The flow's UDP timeout has passed, the datagram's fragment state has not (it is made to last
/// ten times longer): later fragments must not outlive the flow their first fragment used.
fn gateway_with_long_fragment_state() -> (Gateway, u64) {
    let p = profile("rfc");
    let udp_timeout_s = p.timeout_udp_ms.div_ceil(1000);
    let mut cfg = config(p, 64);
    cfg.fragment_timeout_ms = 10 * udp_timeout_s * 1000;
    (build(cfg), udp_timeout_s)
}

#[test]
fn later_inbound_fragments_are_dropped_once_their_flow_has_ended() {
    for (a, r) in [(A4, R4), (A6, R6)] {
        let (mut g, udp_timeout_s) = gateway_with_long_fragment_state();
        let (nat, port) = out_ok(&mut g, secs(1), NIC0, udp((a, 5000), (r, 53)));
        let back = fragments_ip((ip(r), 53), (nat, port), 99, 60);
        assert_eq!(
            send(&mut g, secs(2), Ingress::Outside, &back[0]).0,
            Verdict::Forward(Egress::Nic(NIC0)),
            "the first fragment of a live flow's reply is delivered"
        );
        let after = secs(3 + udp_timeout_s);
        assert_eq!(
            send(&mut g, after, Ingress::Outside, &back[1]).0,
            Verdict::Drop(DropReason::Unsolicited),
            "{a}: a later fragment after the flow ended reaches nobody"
        );
        assert!(live(&g).is_empty());
    }
}

#[test]
fn later_outbound_fragments_are_dropped_once_their_flow_has_ended() {
    for (a, r) in [(A4, R4), (A6, R6)] {
        let (mut g, udp_timeout_s) = gateway_with_long_fragment_state();
        let frags = fragments((a, 5000), (r, 53), 9, 60);
        assert_eq!(
            send(&mut g, secs(1), Ingress::Inside(NIC0), &frags[0]).0,
            Verdict::Forward(Egress::Outside)
        );
        let after = secs(2 + udp_timeout_s);
        assert_eq!(
            send(&mut g, after, Ingress::Inside(NIC0), &frags[1]).0,
            Verdict::Drop(DropReason::FragmentOfDropped),
            "{a}: a later fragment after the flow ended does not leave in its name"
        );
    }
}

#[test]
fn a_later_fragment_that_would_leave_with_ttl_0_is_dropped_without_an_answer() {
    // behaviour §4 "TTL": no ICMP error about a non-first fragment (RFC 1812 §4.3.2.7). The
    // fragment is translated, then dropped at the hop, its `translated` count taken back.
    for (a, r) in [(A4, R4), (A6, R6)] {
        let mut g = gw("rfc", 64);
        let frags = fragments((a, 5000), (r, 53), 77, 60);
        assert!(frags.len() >= 3);
        let (v, _) = send(&mut g, secs(1), Ingress::Inside(NIC0), &frags[0]);
        assert_eq!(v, Verdict::Forward(Egress::Outside));
        let (v, _) = send(
            &mut g,
            secs(1),
            Ingress::Inside(NIC0),
            &with_ttl(&frags[1], 1),
        );
        assert_eq!(v, Verdict::Drop(DropReason::TtlExpired), "{a}");
        assert_eq!(g.counters().dropped(DropReason::TtlExpired), 1);
        assert_eq!(g.counters().generated, 0, "no answer");
        let translated_out = |g: &Gateway| g.counters().translated_out.iter().sum::<u64>();
        assert_eq!(translated_out(&g), 1, "count taken back");
        // With a hop to spare it is translated and leaves with 1.
        let (v, b) = send(
            &mut g,
            secs(1),
            Ingress::Inside(NIC0),
            &with_ttl(&frags[2], 2),
        );
        assert_eq!(v, Verdict::Forward(Egress::Outside), "{a}");
        assert_eq!(ttl_of(&b), 1);
        assert_eq!(translated_out(&g), 2);
    }
}
