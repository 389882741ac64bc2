//! behaviour §4 "ICMP": echo identifiers mapped like ports; ICMP error translation in both
//! directions with every checksum valid (RFC 5508 REQ-3/4/5); no ICMP message touches flow state.

mod common;

use std::net::IpAddr;

use common::*;
use natsim::nat::*;
use natsim::wire::checksum;
use natsim::wire::tcp_flags::*;
use natsim::wire::{IcmpRepr, PacketRepr, TransportRepr, parse_ip_lax};

fn icmp_error(src: IpAddr, dst: IpAddr, t: u8, code: u8, quoted: &[u8]) -> Vec<u8> {
    PacketRepr::icmp_error(src, dst, t, code, quoted).emit()
}

/// The ICMP error's quoted bytes.
fn quoted_of(pkt: &[u8]) -> Vec<u8> {
    match parsed(pkt).transport {
        TransportRepr::Icmp(IcmpRepr::Error { quoted, .. }) => quoted,
        other => panic!("not an ICMP error: {other:?}"),
    }
}

/// Asserts the quoted IPv4 header's checksum verifies (recomputed over the embedded header).
fn assert_embedded_ip_checksum_ok(quoted: &[u8]) {
    let m = parse_ip_lax(quoted).expect("quoted packet parses");
    if quoted[0] >> 4 == 4 {
        assert!(
            checksum::verifies(checksum::sum(&quoted[..m.l4_offset])),
            "embedded IPv4 header checksum"
        );
    }
}

/// Sends `inside_pkt` out from NIC 0 and returns the translated bytes.
fn translate_out(g: &mut Gateway, inside_pkt: &[u8]) -> Vec<u8> {
    let mut pkt = inside_pkt.to_vec();
    assert_eq!(
        g.process(secs(1), Ingress::Inside(NIC0), &mut pkt),
        Verdict::Forward(Egress::Outside)
    );
    pkt
}

// ----- echo ----------------------------------------------------------------------------------

#[test]
fn echo_identifiers_are_mapped_like_ports() {
    let mut g = gw("rfc", 1);
    let (nat, id) = out_ok(&mut g, secs(1), NIC0, ping(A4, R4, 5));
    assert_eq!((nat, id), (ip(NAT4), 1024));
    assert_eq!(
        out(&mut g, secs(1), NIC0, ping(A4, R4, 6)),
        Err(Verdict::Drop(DropReason::PortsExhausted)),
        "one identifier per remote IP with P = 1"
    );
    assert_eq!(out_ok(&mut g, secs(1), NIC0, ping(A4, R4B, 6)).1, 1024);
    let (v, pkt) = inbound(&mut g, secs(2), pong_ip(ip(R4), ip(NAT4), 1024));
    assert_eq!(v, Verdict::Forward(Egress::Nic(NIC0)));
    let r = parsed(&pkt);
    assert_eq!((r.ip.dst, ports(&r).0), (ip(A4), 5));
    let (v, _) = inbound(&mut g, secs(2), pong_ip(ip(R4), ip(NAT4), 1025));
    assert_eq!(v, Verdict::Drop(DropReason::Unsolicited));
    let (v, _) = inbound(&mut g, secs(2), pong_ip(ip("192.0.2.9"), ip(NAT4), 1024));
    assert_eq!(v, Verdict::Drop(DropReason::Unsolicited));
    assert_no_overloading(&g);
}

// ----- inbound errors ------------------------------------------------------------------------

fn check_inbound_error(
    g: &mut Gateway,
    inside_pkt: Vec<u8>,
    router: &str,
    t: u8,
    code: u8,
    inside: IpAddr,
) {
    let translated = translate_out(g, &inside_pkt);
    let nat_src = parsed(&translated).ip.src;
    let before = g.flows();
    let err = icmp_error(ip(router), nat_src, t, code, &translated);
    let (v, pkt) = inbound(g, secs(2), err);
    assert_eq!(v, Verdict::Forward(Egress::Nic(NIC0)), "type {t}/{code}");
    let outer = parsed(&pkt); // outer IP and ICMP checksums verify
    assert_eq!(outer.ip.dst, inside, "outer destination restored");
    assert_eq!(outer.ip.src, ip(router));
    let quoted = quoted_of(&pkt);
    assert_embedded_ip_checksum_ok(&quoted);
    let q = PacketRepr::parse_lax(&quoted).expect("quoted parses");
    assert_eq!(q.ip.src, inside, "embedded source restored");
    let (sport, _) = ports(&q);
    assert_eq!(
        sport,
        ports(&PacketRepr::parse_lax(&inside_pkt).expect("orig")).0
    );
    // The whole packet was quoted: the restored quote is the original, byte for byte, with
    // its own transport checksum valid again.
    let (_, ck) = PacketRepr::parse(&quoted).expect("complete quote parses");
    assert!(ck.all_ok(), "embedded checksums: {ck:?}");
    // rfc is a router hop: the quote shows the TTL the packet left the gateway with.
    assert_eq!(quoted, hop(&inside_pkt));
    assert_eq!(g.flows(), before, "ICMP errors do not touch flows");
}

#[test]
fn inbound_icmpv4_errors_quoting_a_live_flow_are_translated() {
    for (t, code) in [(3, 3), (3, 4), (11, 0), (12, 0)] {
        let mut g = gw("rfc", 64);
        check_inbound_error(&mut g, udp((A4, 5000), (R4, 53)), R4, t, code, ip(A4));
        check_inbound_error(
            &mut g,
            tcp((A4, 5001), (R4, 80), SYN),
            "192.0.2.254",
            t,
            code,
            ip(A4),
        );
        check_inbound_error(&mut g, ping(A4, R4, 77), "192.0.2.254", t, code, ip(A4));
    }
}

#[test]
fn inbound_icmpv6_errors_quoting_a_live_flow_are_translated() {
    for (t, code) in [(1, 4), (2, 0), (3, 0), (4, 0)] {
        let mut g = gw("rfc", 64);
        check_inbound_error(&mut g, udp((A6, 5000), (R6, 53)), R6, t, code, ip(A6));
        check_inbound_error(
            &mut g,
            tcp((A6, 5001), (R6, 80), SYN),
            "2001:db8:9::1",
            t,
            code,
            ip(A6),
        );
        check_inbound_error(&mut g, ping(A6, R6, 77), "2001:db8:9::1", t, code, ip(A6));
    }
}

#[test]
fn inbound_error_quoting_nothing_live_is_dropped() {
    let mut g = gw("rfc", 64);
    let translated = translate_out(&mut g, &udp((A4, 5000), (R4, 53)));
    // A quote of a packet that never went out through this flow.
    let mut other = translated.clone();
    other[23] ^= 1; // destination port low byte (IPv4 header 20 + 2)
    let err = icmp_error(ip(R4), ip(NAT4), 3, 3, &udp((NAT4, 2000), (R4, 53)));
    assert_eq!(
        inbound(&mut g, secs(2), err).0,
        Verdict::Drop(DropReason::IcmpErrorNoFlow)
    );
    // The flow expires: its errors are no longer translated.
    g.handle_timeout(secs(10_000));
    let err = icmp_error(ip(R4), ip(NAT4), 3, 3, &translated);
    assert_eq!(
        inbound(&mut g, secs(10_000), err).0,
        Verdict::Drop(DropReason::IcmpErrorNoFlow)
    );
    assert_eq!(g.counters().dropped(DropReason::IcmpErrorNoFlow), 2);
}

#[test]
fn inbound_error_with_a_bad_icmp_checksum_is_dropped() {
    let mut g = gw("rfc", 64);
    let translated = translate_out(&mut g, &udp((A4, 5000), (R4, 53)));
    let mut err = icmp_error(ip(R4), ip(NAT4), 3, 3, &translated);
    err[22] ^= 0x55; // the ICMP checksum
    assert_eq!(
        inbound(&mut g, secs(2), err).0,
        Verdict::Drop(DropReason::BadChecksum)
    );
}

#[test]
fn inbound_error_with_a_bad_embedded_ip_checksum_is_dropped() {
    let mut cfg = config(profile("rfc"), 64);
    cfg.verify_l4_checksums = false; // REQ-3 applies regardless
    let mut g = build(cfg);
    let mut translated = translate_out(&mut g, &udp((A4, 5000), (R4, 53)));
    translated[10] ^= 0x11; // embedded IPv4 header checksum
    // The outer ICMP checksum is computed over the corrupted quote, so only the embedded one
    // is wrong.
    let err = icmp_error(ip(R4), ip(NAT4), 3, 3, &translated);
    assert_eq!(
        inbound(&mut g, secs(2), err).0,
        Verdict::Drop(DropReason::BadChecksum)
    );
}

#[test]
fn no_icmp_message_creates_refreshes_or_deletes_a_flow() {
    let mut g = gw("rfc", 64);
    let tr_udp = translate_out(&mut g, &udp((A4, 5000), (R4, 53)));
    let tr_ping = translate_out(&mut g, &ping(A4, R4, 9));
    let tr_tcp = translate_out(&mut g, &tcp((A4, 5001), (R4, 80), SYN));
    let id = ports(&parsed(&tr_ping)).0;
    let before = g.flows();
    let t = secs(30);
    let msgs = vec![
        icmp_error(ip(R4), ip(NAT4), 3, 3, &tr_udp),
        icmp_error(ip(R4), ip(NAT4), 11, 0, &tr_ping),
        icmp_error(ip(R4), ip(NAT4), 3, 1, &tr_tcp),
        pong_ip(ip(R4), ip(NAT4), id),
        icmp_error(ip(R4), ip(NAT4), 3, 3, &udp((NAT4, 2000), (R4, 53))),
        ping(R4, NAT4, 3),
    ];
    for m in msgs {
        let _ = inbound(&mut g, t, m);
        assert_eq!(g.flows(), before, "deadlines and states unchanged");
    }
    // An inside host's ICMP error about an inbound reply does not refresh either.
    let (_, reply) = inbound(&mut g, t, udp((R4, 53), (NAT4, ports(&parsed(&tr_udp)).0)));
    let before = g.flows();
    let mut err = icmp_error(ip(A4), ip(R4), 3, 3, &reply);
    assert_eq!(
        g.process(secs(31), Ingress::Inside(NIC0), &mut err),
        Verdict::Forward(Egress::Outside)
    );
    assert_eq!(g.flows(), before);
}

// ----- outbound errors (REQ-5) ---------------------------------------------------------------

#[test]
fn outbound_error_about_an_inbound_reply_is_translated() {
    for (inside, remote, nat, t) in [(A4, R4, NAT4, 3u8), (A6, R6, NAT6, 1u8)] {
        let mut g = gw("rfc", 64);
        let translated = translate_out(&mut g, &udp((inside, 5000), (remote, 53)));
        let p = ports(&parsed(&translated)).0;
        let (v, reply) = inbound(&mut g, secs(2), udp((remote, 53), (nat, p)));
        assert_eq!(v, Verdict::Forward(Egress::Nic(NIC0)));
        let mut err = icmp_error(ip(inside), ip(remote), t, 4, &reply);
        assert_eq!(
            g.process(secs(3), Ingress::Inside(NIC0), &mut err),
            Verdict::Forward(Egress::Outside)
        );
        let outer = parsed(&err);
        assert_eq!((outer.ip.src, outer.ip.dst), (ip(nat), ip(remote)));
        let quoted = quoted_of(&err);
        assert_embedded_ip_checksum_ok(&quoted);
        let (q, ck) = PacketRepr::parse(&quoted).expect("complete quote");
        assert!(ck.all_ok(), "{ck:?}");
        assert_eq!((q.ip.dst, ports(&q).1), (ip(nat), p));
        assert_eq!(
            quoted,
            hop(&udp((remote, 53), (nat, p))),
            "the remote sees its own packet (as it left the gateway's hop)"
        );
    }
}

#[test]
fn outbound_error_about_no_flow_is_dropped() {
    let mut g = gw("rfc", 64);
    let mut err = icmp_error(ip(A4), ip(R4), 3, 3, &udp((R4, 53), (A4, 5000)));
    assert_eq!(
        g.process(secs(1), Ingress::Inside(NIC0), &mut err),
        Verdict::Drop(DropReason::IcmpErrorNoFlow)
    );
}

// ----- outer destination (docs/behaviour.md §4 ICMP) -----------------------------------------

const NAT4B: &str = "203.0.113.2";

/// The standard gateway with a second IPv4 NAT address, NIC 1's block moved onto it.
fn two_nat_ips() -> Gateway {
    let mut cfg = config(profile("rfc"), 64);
    cfg.nat_ips.push(ip(NAT4B));
    let mut g = build(cfg);
    g.release_block(secs(0), NIC1, Family::V4);
    g.assign_block(secs(0), NIC1, block(NAT4B, 0, 64))
        .expect("block on the second NAT IP");
    g.drain_events();
    g
}

#[test]
fn an_inbound_error_is_translated_only_if_its_outer_destination_is_the_flows_nat_address() {
    let mut g = two_nat_ips();
    // RED's flow on NAT4, NIC 1's on NAT4B, both to the same remote endpoint.
    let mut red = udp((A4, 5000), (R4, 53));
    assert_eq!(
        g.process(secs(1), Ingress::Inside(RED), &mut red),
        Verdict::Forward(Egress::Outside)
    );
    let mut b = udp((B4, 5000), (R4, 53));
    assert_eq!(
        g.process(secs(1), Ingress::Inside(NIC1), &mut b),
        Verdict::Forward(Egress::Outside)
    );
    assert_eq!(parsed(&b).ip.src, ip(NAT4B));
    // The issue 19 fuzz find: an error quoting RED's packet (on NAT4) addressed to NAT4B.
    let before = g.flows();
    let counted = g.counters().dropped(DropReason::IcmpErrorNoFlow);
    for to in [NAT4B, "192.0.2.1"] {
        let (v, _) = inbound(&mut g, secs(2), icmp_error(ip(R4), ip(to), 3, 3, &red));
        let expected = if to == NAT4B {
            DropReason::IcmpErrorNoFlow
        } else {
            DropReason::Unsolicited
        };
        assert_eq!(v, Verdict::Drop(expected), "error addressed to {to}");
    }
    assert_eq!(
        g.counters().dropped(DropReason::IcmpErrorNoFlow),
        counted + 1,
        "counted as drop.icmp_error_no_flow"
    );
    assert_eq!(g.flows(), before, "a dropped error touches no flow");
    // The same error addressed to the quoted source is translated to RED.
    let (v, pkt) = inbound(&mut g, secs(2), icmp_error(ip(R4), ip(NAT4), 3, 3, &red));
    assert_eq!(v, Verdict::Forward(Egress::Nic(RED)));
    assert_eq!(parsed(&pkt).ip.dst, ip(A4));
}

#[test]
fn an_inbound_icmpv6_error_to_another_nat_address_is_dropped() {
    // The issue 19 find also has an IPv6 form (its fuzz artifacts, replayed by
    // tests/fuzz_corpus.rs, are the IPv4 and 4-op ones).
    let mut cfg = config(profile("rfc"), 1);
    cfg.nat_ips.push(ip("2001:db8:ff::2"));
    let mut g = build(cfg);
    let mut pkt = udp((A6, 5000), (R6, 53));
    assert_eq!(
        g.process(secs(1), Ingress::Inside(NIC0), &mut pkt),
        Verdict::Forward(Egress::Outside)
    );
    let (v, _) = inbound(
        &mut g,
        secs(2),
        icmp_error(ip(R6), ip("2001:db8:ff::2"), 1, 4, &pkt),
    );
    assert_eq!(v, Verdict::Drop(DropReason::IcmpErrorNoFlow));
    let (v, _) = inbound(&mut g, secs(2), icmp_error(ip(R6), ip(NAT6), 1, 4, &pkt));
    assert_eq!(v, Verdict::Forward(Egress::Nic(NIC0)));
}

#[test]
fn an_outbound_error_is_translated_only_if_its_outer_destination_is_the_remote() {
    for (inside, remote, other, nat, t) in [(A4, R4, R4B, NAT4, 3u8), (A6, R6, R6B, NAT6, 1u8)] {
        let mut g = gw("rfc", 64);
        let translated = translate_out(&mut g, &udp((inside, 5000), (remote, 53)));
        let p = ports(&parsed(&translated)).0;
        let (_, reply) = inbound(&mut g, secs(2), udp((remote, 53), (nat, p)));
        let before = g.flows();
        let mut err = icmp_error(ip(inside), ip(other), t, 4, &reply);
        assert_eq!(
            g.process(secs(3), Ingress::Inside(NIC0), &mut err),
            Verdict::Drop(DropReason::IcmpErrorNoFlow),
            "an error about {remote}'s packet sent to {other}"
        );
        assert_eq!(g.flows(), before);
        let mut err = icmp_error(ip(inside), ip(remote), t, 4, &reply);
        assert_eq!(
            g.process(secs(3), Ingress::Inside(NIC0), &mut err),
            Verdict::Forward(Egress::Outside)
        );
    }
}

// ----- hairpinned errors (docs/behaviour.md §4 Hairpinning) ------------------------------------

#[test]
fn an_inside_error_to_a_nat_address_is_hairpinned_to_the_matching_flow_never_sent_out() {
    let mut g = gw("rfc", 64);
    // A and B talk through their NAT endpoints (the hairpin test of nat_spec.rs).
    let (_, pa) = out_ok(&mut g, secs(1), NIC0, udp((A4, 5000), (R4, 53)));
    let mut pkt = udp((B4, 6000), (NAT4, pa));
    assert_eq!(
        g.process(secs(2), Ingress::Inside(NIC1), &mut pkt),
        Verdict::Drop(DropReason::Unsolicited)
    );
    let pb = g
        .flows()
        .into_iter()
        .find(|f| f.live && f.flow.nic == NIC1)
        .expect("B's flow")
        .flow
        .nat
        .port();
    let mut reply = udp((A4, 5000), (NAT4, pb));
    assert_eq!(
        g.process(secs(3), Ingress::Inside(NIC0), &mut reply),
        Verdict::Forward(Egress::Nic(NIC1))
    );
    // B's host answers the hairpinned packet with a port unreachable, addressed (as hosts do)
    // to the packet's source, A's NAT address.
    let before = g.flows();
    let counters = g.counters().clone();
    let mut err = icmp_error(ip(B4), ip(NAT4), 3, 3, &reply);
    assert_eq!(
        g.process(secs(4), Ingress::Inside(NIC1), &mut err),
        Verdict::Forward(Egress::Nic(NIC0)),
        "hairpinned to A, not sent out to the gateway's own address"
    );
    let outer = parsed(&err);
    assert_eq!(
        (outer.ip.src, outer.ip.dst),
        (ip(NAT4), ip(A4)),
        "A sees B's external address, never its private one"
    );
    let quoted = quoted_of(&err);
    assert_embedded_ip_checksum_ok(&quoted);
    let q = PacketRepr::parse_lax(&quoted).expect("quoted parses");
    assert_eq!(
        (q.ip.src, ports(&q).0, q.ip.dst, ports(&q).1),
        (ip(A4), 5000, ip(NAT4), pb),
        "A's own packet as B's NAT endpoint received it"
    );
    let after = g.counters();
    assert_eq!(after.hairpinned, counters.hairpinned + 1);
    assert_eq!(
        after.translated_out, counters.translated_out,
        "counted once, as hairpinned"
    );
    assert_eq!(g.flows(), before, "no ICMP message touches a flow");
    assert!(g.poll_transmit().is_none());
}

#[test]
fn an_inside_error_to_a_nat_address_matching_no_flow_is_dropped_not_sent_out() {
    let mut g = gw("rfc", 64);
    // B received a reply from R4 and blames it on A's NAT address, where no flow of A answers.
    let translated = translate_out(&mut g, &udp((A4, 5000), (R4, 53)));
    let pa = ports(&parsed(&translated)).0;
    let mut b = udp((B4, 6000), (R4, 53));
    let pb = match g.process(secs(1), Ingress::Inside(NIC1), &mut b) {
        Verdict::Forward(Egress::Outside) => ports(&parsed(&b)).0,
        v => panic!("{v:?}"),
    };
    let (_, reply) = inbound(&mut g, secs(2), udp((R4, 53), (NAT4, pb)));
    let mut err = icmp_error(ip(B4), ip(NAT4), 3, 3, &reply);
    assert_eq!(
        g.process(secs(3), Ingress::Inside(NIC1), &mut err),
        Verdict::Drop(DropReason::IcmpErrorNoFlow),
        "outer destination is not the quoted source"
    );
    // Quoting a packet from A's NAT endpoint to which B has no flow: dropped, never looped.
    let fake = udp((NAT4, pa), (B4, 6001));
    let mut err = icmp_error(ip(B4), ip(NAT4), 3, 3, &fake);
    assert_eq!(
        g.process(secs(3), Ingress::Inside(NIC1), &mut err),
        Verdict::Drop(DropReason::IcmpErrorNoFlow)
    );
    assert!(g.poll_transmit().is_none());
}

// ----- truncation ----------------------------------------------------------------------------

#[test]
fn truncated_quoted_packets_are_handled_at_every_length() {
    for (inside, remote, nat, router, t) in [
        (A4, R4, NAT4, "192.0.2.254", 11u8),
        (A6, R6, NAT6, "2001:db8:9::1", 3u8),
    ] {
        let mut g = gw("rfc", 64);
        let mut forwarded = 0;
        for sent in [
            udp((inside, 5000), (remote, 53)),
            tcp((inside, 5001), (remote, 80), SYN),
            ping(inside, remote, 3),
        ] {
            let translated = translate_out(&mut g, &sent);
            let orig = hop(&sent);
            let hdr = if inside.contains(':') { 40 } else { 20 };
            for len in 0..=translated.len() {
                let err = icmp_error(ip(router), ip(nat), t, 0, &translated[..len]);
                let (v, pkt) = inbound(&mut g, secs(2), err);
                match v {
                    Verdict::Forward(Egress::Nic(NIC0)) => {
                        assert!(len >= hdr + 8, "forwarded a quote of {len} bytes");
                        let outer = parsed(&pkt);
                        assert_eq!(outer.ip.dst, ip(inside));
                        let quoted = quoted_of(&pkt);
                        assert_embedded_ip_checksum_ok(&quoted);
                        let q = PacketRepr::parse_lax(&quoted).expect("quote");
                        assert_eq!(q.ip.src, ip(inside));
                        // A checksum field cut in half cannot be updated (the carry needs
                        // both bytes); every other byte is restored.
                        let tcp_ck_half = orig[9] == 6 || orig[6] == 6;
                        let cmp = if tcp_ck_half && len == hdr + 17 {
                            len - 1
                        } else {
                            len
                        };
                        assert_eq!(quoted[..cmp], orig[..cmp], "restored prefix of {len}");
                        forwarded += 1;
                    }
                    Verdict::Drop(DropReason::Malformed | DropReason::IcmpErrorNoFlow) => {
                        assert!(len < hdr + 8, "dropped a quote of {len} bytes: {v:?}");
                    }
                    other => panic!("unexpected verdict {other:?} at {len}"),
                }
            }
        }
        assert!(forwarded > 0);
    }
}
