//! behaviour §4 rules, one test per rule: what is NATed, flow creation and filtering, port choice
//! and exhaustion per `limit_scope`, hairpinning, other protocols, block changes, configuration.

mod common;

use common::*;
use natsim::nat::*;
use natsim::time::Instant;
use natsim::wire::tcp_flags::*;
use natsim::wire::{IcmpRepr, IpRepr, PacketRepr, TransportRepr};

// ----- what is NATed --------------------------------------------------------------------------

#[test]
fn traffic_to_the_networks_own_prefixes_passes_untranslated() {
    let mut g = gw("rfc", 64);
    for dst in [B4, "10.0.0.99"] {
        let orig = udp((A4, 5000), (dst, 53));
        let mut pkt = orig.clone();
        let v = g.process(secs(1), Ingress::Inside(NIC0), &mut pkt);
        assert_eq!(v, Verdict::PassThrough);
        assert_eq!(pkt, orig, "passed-through packets are not modified");
    }
    assert!(g.flows().is_empty());
    assert_eq!(g.counters().passed_through, 2);
}

#[test]
fn only_traffic_to_outside_destinations_is_translated() {
    let mut g = gw("rfc", 64);
    let (nat, port) = out_ok(&mut g, secs(1), NIC0, udp((A4, 5000), (R4, 53)));
    assert_eq!(nat, ip(NAT4));
    let b = g.block_of(NIC0, Family::V4).expect("block");
    assert!((b.port..=b.end_port).contains(&port));
    assert_eq!(g.counters().translated_out[1], 1);
}

#[test]
fn two_networks_with_the_same_prefix_stay_isolated() {
    let mut g = gw("rfc", 64);
    let (_, p_blue) = out_ok(&mut g, secs(1), NIC0, udp((A4, 5000), (R4, 53)));
    let (_, p_red) = out_ok(&mut g, secs(1), RED, udp((A4, 5000), (R4, 53)));
    assert_ne!(p_blue, p_red, "each NIC's port comes from its own block");
    for (port, nic) in [(p_blue, NIC0), (p_red, RED)] {
        let (v, pkt) = inbound(&mut g, secs(2), udp((R4, 53), (NAT4, port)));
        assert_eq!(v, Verdict::Forward(Egress::Nic(nic)));
        let p = parsed(&pkt);
        assert_eq!((p.ip.dst, ports(&p).1), (ip(A4), 5000));
    }
    assert_no_overloading(&g);
}

// ----- flows and unsolicited traffic --------------------------------------------------------

#[test]
fn the_first_outbound_packet_creates_a_flow() {
    let mut g = gw("rfc", 64);
    assert!(g.flows().is_empty());
    out_ok(&mut g, secs(1), NIC0, udp((A4, 5000), (R4, 53)));
    let flows = g.flows();
    assert_eq!(flows.len(), 1);
    assert_eq!(flows[0].flow.inside, "10.0.0.1:5000".parse().expect("addr"));
    assert_eq!(
        flows[0].flow.remote,
        "198.51.100.7:53".parse().expect("addr")
    );
    out_ok(&mut g, secs(2), NIC0, udp((A4, 5000), (R4, 53)));
    assert_eq!(g.flows().len(), 1, "later packets use the same flow");
    assert_eq!(g.counters().flows_created, 1);
}

#[test]
fn unsolicited_inbound_is_dropped_and_creates_no_state() {
    let mut g = gw("rfc", 64);
    out_ok(&mut g, secs(1), NIC0, udp((A4, 5000), (R4, 53)));
    let before = g.flows();
    let packets = [
        udp((R4, 53), (NAT4, 1024)),
        udp((R4B, 53), (NAT4, 1030)),
        tcp((R4, 80), (NAT4, 1024), SYN),
        tcp((R4, 80), (NAT4, 1024), ACK),
        udp((R4, 53), ("203.0.113.99", 1024)),
        pong_ip(ip(R4), ip(NAT4), 1024),
    ];
    let n = packets.len() as u64;
    for pkt in packets {
        let (v, _) = inbound(&mut g, secs(2), pkt);
        assert_eq!(v, Verdict::Drop(DropReason::Unsolicited));
    }
    assert_eq!(g.flows(), before);
    assert_eq!(g.counters().dropped(DropReason::Unsolicited), n);
    assert_eq!(g.counters().to_map().get("drop.unsolicited"), Some(&n));
}

#[test]
fn echo_request_to_the_nat_ip_is_answered_when_the_profile_says_so() {
    let mut g = gw("rfc", 64);
    assert!(g.config().profile.echo_reply_to_nat_ip, "default on in rfc");
    let (v, pkt) = inbound(&mut g, secs(1), ping(R4, NAT4, 77));
    assert_eq!(v, Verdict::Respond(Egress::Outside));
    let p = parsed(&pkt);
    assert_eq!((p.ip.src, p.ip.dst), (ip(NAT4), ip(R4)));
    assert!(matches!(
        p.transport,
        TransportRepr::Icmp(IcmpRepr::EchoReply { ident: 77, .. })
    ));
    assert!(g.flows().is_empty());
    assert_eq!(g.counters().generated, 1);

    let mut g = gw("gcp", 64);
    let (v, _) = inbound(&mut g, secs(1), ping(R4, NAT4, 77));
    assert_eq!(v, Verdict::Drop(DropReason::Unsolicited));
}

#[test]
fn unsolicited_inbound_can_be_answered_with_icmp_3_13() {
    let mut p = profile("rfc");
    p.icmp_unreachable_on_unsolicited = true;
    let mut g = build(config(p, 64));
    let (v, pkt) = inbound(&mut g, secs(1), udp((R4, 53), (NAT4, 1024)));
    assert_eq!(v, Verdict::Respond(Egress::Outside));
    let p = parsed(&pkt);
    assert_eq!((p.ip.src, p.ip.dst), (ip(NAT4), ip(R4)));
    assert!(matches!(
        p.transport,
        TransportRepr::Icmp(IcmpRepr::Error {
            icmp_type: 3,
            code: 13,
            ..
        })
    ));
    assert!(g.flows().is_empty());
    assert_eq!(g.counters().dropped(DropReason::Unsolicited), 1);
}

fn req4_gateway() -> Gateway {
    let mut p = profile("rfc");
    p.icmp_unreachable_on_unsolicited = true;
    build(config(p, 64))
}

/// The NAT port NIC 0's TCP (A4, 5000) -> (R4, 80) gets (the allocator is deterministic).
fn predicted_tcp_port() -> u16 {
    let mut g = req4_gateway();
    syn(&mut g, secs(0), NIC0, (A4, 5000), (R4, 80))
}

#[test]
fn an_unsolicited_inbound_tcp_syn_is_answered_only_after_6_s() {
    let mut g = req4_gateway();
    let syn_in = tcp((R4, 80), (NAT4, 1030), SYN);
    let (v, _) = inbound(&mut g, secs(1), syn_in.clone());
    assert_eq!(
        v,
        Verdict::Drop(DropReason::Unsolicited),
        "the SYN itself is dropped"
    );
    assert!(g.poll_transmit().is_none(), "no answer at once");
    assert_eq!(g.pending_syn_answers(), 1);
    assert_eq!(g.poll_timeout(), Some(secs(7)));
    g.handle_timeout(ms(6_999));
    assert!(g.poll_transmit().is_none(), "no answer before 6 s");
    g.handle_timeout(secs(7));
    let (egress, answer) = g.poll_transmit().expect("answer after 6 s");
    assert_eq!(egress, Egress::Outside);
    let a = parsed(&answer);
    assert_eq!((a.ip.src, a.ip.dst), (ip(NAT4), ip(R4)));
    match a.transport {
        TransportRepr::Icmp(IcmpRepr::Error {
            icmp_type: 3,
            code: 13,
            quoted,
            ..
        }) => assert_eq!(&quoted[..20], &syn_in[..20], "quotes the SYN"),
        other => panic!("not ICMP 3/13: {other:?}"),
    }
    assert!(g.poll_transmit().is_none(), "one answer");
    assert_eq!(g.counters().generated, 1);
    assert_eq!(g.counters().dropped(DropReason::Unsolicited), 1);
    assert!(g.flows().is_empty());
    assert_eq!(g.pending_syn_answers(), 0);
}

/// A SYN that also carries RST (or ACK) opens nothing, so REQ-4's silence is not owed to it:
/// with the option on it is answered at once like any other unsolicited packet. The liveness
/// checker classifies it with the same predicate (`wire::tcp_flags::is_opening_syn`).
#[test]
fn an_unsolicited_syn_with_rst_or_ack_is_not_deferred() {
    for flags in [SYN | RST, SYN | ACK] {
        let mut g = req4_gateway();
        let (v, _) = inbound(&mut g, secs(1), tcp((R4, 80), (NAT4, 1030), flags));
        assert_eq!(v, Verdict::Respond(Egress::Outside), "flags {flags:#04x}");
        assert_eq!(g.pending_syn_answers(), 0, "flags {flags:#04x}");
        assert_eq!(g.counters().dropped(DropReason::Unsolicited), 1);
    }
    assert!(is_opening_syn(SYN));
    assert!(is_opening_syn(SYN | FIN));
}

#[test]
fn an_unsolicited_syn_gets_no_answer_if_the_inside_syn_of_that_connection_is_translated_within_6_s()
{
    let p = predicted_tcp_port();
    let mut g = req4_gateway();
    let (v, _) = inbound(&mut g, secs(1), tcp((R4, 80), (NAT4, p), SYN));
    assert_eq!(v, Verdict::Drop(DropReason::Unsolicited));
    // Simultaneous open (RFC 5382 REQ-2a): the inside host's own SYN 5 s later.
    assert_eq!(syn(&mut g, secs(6), NIC0, (A4, 5000), (R4, 80)), p);
    let (v, _) = inbound(&mut g, secs(6), tcp((R4, 80), (NAT4, p), SYN));
    assert_eq!(v, Verdict::Forward(Egress::Nic(NIC0)));
    g.handle_timeout(secs(30));
    assert!(g.poll_transmit().is_none(), "never answered");
    assert_eq!(g.counters().generated, 0);
    // An inside SYN of another connection does not cancel an answer.
    let (v, _) = inbound(&mut g, secs(40), tcp((R4B, 80), (NAT4, p), SYN));
    assert_eq!(v, Verdict::Drop(DropReason::Unsolicited));
    syn(&mut g, secs(41), NIC0, (A4, 5001), (R4B, 80));
    g.handle_timeout(secs(46));
    assert!(
        g.poll_transmit().is_some(),
        "the other connection's answer is sent"
    );
}

#[test]
fn unsolicited_syn_answers_are_bounded_in_count() {
    let mut g = req4_gateway();
    let extra = 10u16;
    for i in 0..MAX_PENDING_SYN_ANSWERS as u16 + extra {
        let (v, _) = inbound(&mut g, secs(1), tcp((R4, 80), (NAT4, 1024 + i), SYN));
        assert_eq!(v, Verdict::Drop(DropReason::Unsolicited));
    }
    assert_eq!(g.pending_syn_answers(), MAX_PENDING_SYN_ANSWERS);
    g.handle_timeout(secs(7));
    let mut n = 0;
    while g.poll_transmit().is_some() {
        n += 1;
    }
    assert_eq!(n, MAX_PENDING_SYN_ANSWERS);
}

// ----- filtering -----------------------------------------------------------------------------

#[test]
fn inbound_is_translated_only_when_it_matches_the_reply_tuple_exactly() {
    let mut g = gw("rfc", 64);
    let (_, p) = out_ok(&mut g, secs(1), NIC0, udp((A4, 5000), (R4, 53)));
    let cases = [
        ("wrong remote port", udp((R4, 54), (NAT4, p))),
        ("wrong remote address", udp((R4B, 53), (NAT4, p))),
        ("wrong NAT port", udp((R4, 53), (NAT4, p + 1))),
        ("wrong protocol", tcp((R4, 53), (NAT4, p), SYN | ACK)),
    ];
    for (what, pkt) in cases {
        let (v, _) = inbound(&mut g, secs(2), pkt);
        assert_eq!(v, Verdict::Drop(DropReason::Unsolicited), "{what}");
    }
    let (v, pkt) = inbound(&mut g, secs(2), udp((R4, 53), (NAT4, p)));
    assert_eq!(v, Verdict::Forward(Egress::Nic(NIC0)));
    let r = parsed(&pkt);
    assert_eq!((r.ip.dst, ports(&r)), (ip(A4), (53, 5000)));
    assert_eq!(g.flows().len(), 1);
}

// ----- port choice and the meaning of P ------------------------------------------------------

fn scope_profile(scope: LimitScope) -> Profile {
    let mut p = profile("rfc");
    p.limit_scope = scope;
    p
}

#[test]
fn remote_ip_scope_allows_p_flows_per_remote_ip_and_then_refuses() {
    let mut g = build(config(scope_profile(LimitScope::RemoteIp), 4));
    for i in 0..4 {
        out_ok(&mut g, secs(1), NIC0, udp((A4, 5000 + i), (R4, 53 + i)));
    }
    assert_eq!(
        out(&mut g, secs(1), NIC0, udp((A4, 6000), (R4, 99))),
        Err(Verdict::Drop(DropReason::PortsExhausted))
    );
    // Another remote IP still has all P ports.
    for i in 0..4 {
        out_ok(&mut g, secs(1), NIC0, udp((A4, 7000 + i), (R4B, 53)));
    }
    // Another NIC is not affected.
    out_ok(&mut g, secs(1), NIC1, udp((B4, 6000), (R4, 99)));
    let c = g.nic_counters(NIC0).expect("counters");
    assert_eq!(c.dropped(DropReason::PortsExhausted), 1);
    assert_eq!(g.counters().dropped(DropReason::PortsExhausted), 1);
    assert_no_overloading(&g);
}

#[test]
fn remote_endpoint_scope_allows_p_flows_per_remote_port() {
    let mut g = build(config(scope_profile(LimitScope::RemoteEndpoint), 4));
    for i in 0..4 {
        out_ok(&mut g, secs(1), NIC0, udp((A4, 5000 + i), (R4, 53)));
    }
    assert_eq!(
        out(&mut g, secs(1), NIC0, udp((A4, 6000), (R4, 53))),
        Err(Verdict::Drop(DropReason::PortsExhausted))
    );
    for i in 0..4 {
        out_ok(&mut g, secs(1), NIC0, udp((A4, 7000 + i), (R4, 54)));
    }
    assert_no_overloading(&g);
}

#[test]
fn nic_scope_allows_p_mappings_per_nic_and_protocol() {
    let mut g = build(config(scope_profile(LimitScope::Nic), 4));
    let mut mapped = Vec::new();
    for i in 0..4 {
        let remote = if i % 2 == 0 { R4 } else { R4B };
        mapped.push(out_ok(&mut g, secs(1), NIC0, udp((A4, 5000 + i), (remote, 53))).1);
    }
    // A fifth inside endpoint is refused whatever the remote.
    assert_eq!(
        out(&mut g, secs(1), NIC0, udp((A4, 6000), ("192.0.2.1", 1))),
        Err(Verdict::Drop(DropReason::PortsExhausted))
    );
    // A mapped endpoint reaches new remotes through its mapping.
    let (_, p) = out_ok(&mut g, secs(1), NIC0, udp((A4, 5000), ("192.0.2.1", 1)));
    assert_eq!(p, mapped[0]);
    // The limit is per protocol.
    out_ok(&mut g, secs(1), NIC0, tcp((A4, 6000), (R4, 80), SYN));
    assert_no_overloading(&g);
}

#[test]
fn an_endpoint_mapping_outlives_its_first_flow_while_another_flow_uses_it() {
    // nic scope, one port: the port belongs to the endpoint's mapping, which must last while
    // any flow of the endpoint does, not only while the flow that made it does.
    let mut g = build(config(scope_profile(LimitScope::Nic), 1));
    let (_, p) = out_ok(&mut g, secs(0), NIC0, udp((A4, 5000), (R4, 53)));
    assert_eq!(
        out_ok(&mut g, secs(100), NIC0, udp((A4, 5000), (R4B, 53))).1,
        p
    );
    // rfc: UDP 300 s idle, then a 120 s hold; the first flow is gone at 420 s. The second is
    // refreshed and stays.
    for t in [200, 290, 380, 470] {
        out_ok(&mut g, secs(t), NIC0, udp((A4, 5000), (R4B, 53)));
    }
    assert_eq!(live(&g).len(), 1, "only the second flow is left");
    assert_eq!(
        out(&mut g, secs(480), NIC0, udp((A4, 5001), (R4, 53))),
        Err(Verdict::Drop(DropReason::PortsExhausted)),
        "the port is still the first endpoint's"
    );
    assert_eq!(
        out_ok(&mut g, secs(480), NIC0, udp((A4, 5000), ("192.0.2.1", 9))).1,
        p,
        "the endpoint keeps its mapping"
    );
    let (v, pkt) = inbound(&mut g, secs(481), udp((R4B, 53), (NAT4, p)));
    assert_eq!(v, Verdict::Forward(Egress::Nic(NIC0)));
    assert_eq!(ports(&parsed(&pkt)), (53, 5000));
    assert_no_overloading(&g);
}

#[test]
fn one_nat_port_is_reused_towards_different_remotes() {
    let mut g = gw("rfc", 1);
    let (_, p1) = out_ok(&mut g, secs(1), NIC0, udp((A4, 5000), (R4, 53)));
    let (_, p2) = out_ok(&mut g, secs(1), NIC0, udp((A4, 5001), (R4B, 53)));
    assert_eq!(p1, p2);
    assert_eq!(p1, 1024);
    assert_no_overloading(&g);
}

#[test]
fn endpoint_independent_mapping_reuses_the_previous_port() {
    // In remote-ip scope the port is taken towards R4 by the first flow, so only other remote
    // IPs can share it; in remote-endpoint scope other ports of R4 can too.
    for (name, remotes) in [
        ("rfc", vec![(R4B, 53), ("192.0.2.1", 9)]),
        ("dpservice", vec![(R4B, 53), (R4, 54), ("192.0.2.1", 9)]),
    ] {
        let mut g = gw(name, 64);
        let (_, p) = out_ok(&mut g, secs(1), NIC0, udp((A4, 5000), (R4, 53)));
        for (remote, rport) in remotes {
            let (_, q) = out_ok(&mut g, secs(1), NIC0, udp((A4, 5000), (remote, rport)));
            assert_eq!(p, q, "{name}: {remote}:{rport}");
        }
    }
}

#[test]
fn never_two_live_flows_share_nat_endpoint_and_remote_endpoint() {
    for scope in [
        LimitScope::RemoteIp,
        LimitScope::RemoteEndpoint,
        LimitScope::Nic,
    ] {
        let mut g = build(config(scope_profile(scope), 8));
        let remotes = [(R4, 53), (R4, 54), (R4B, 53)];
        for i in 0..40u16 {
            let (r, rp) = remotes[usize::from(i) % 3];
            let _ = out(&mut g, secs(1), NIC0, udp((A4, 5000 + i % 13), (r, rp)));
            let _ = out(&mut g, secs(1), NIC1, udp((B4, 5000 + i % 7), (r, rp)));
        }
        assert_no_overloading(&g);
    }
}

#[test]
fn a_one_port_block_is_reused_after_timeout_and_hold() {
    // rfc: UDP 300 s idle, then the port is held 120 s.
    let mut g = gw("rfc", 1);
    out_ok(&mut g, secs(0), NIC0, udp((A4, 5000), (R4, 53)));
    let other = || udp((A4, 5001), (R4, 53));
    assert_eq!(
        out(&mut g, secs(299), NIC0, other()),
        Err(Verdict::Drop(DropReason::PortsExhausted))
    );
    assert_eq!(
        out(&mut g, ms(419_999), NIC0, other()),
        Err(Verdict::Drop(DropReason::PortsExhausted)),
        "held until 300 s + 120 s"
    );
    assert_eq!(out_ok(&mut g, secs(420), NIC0, other()).1, 1024);
}

#[test]
fn a_one_port_block_is_reused_after_tcp_close_and_time_wait() {
    // gcp: transitory 30 s after both FINs and a 120 s TIME_WAIT hold, both from the close
    // (docs/behaviour.md §5): the port is free 120 s after the second FIN.
    let mut g = gw("gcp", 1);
    let p = syn(&mut g, secs(0), NIC0, (A4, 5000), (R4, 80));
    let (v, _) = inbound(&mut g, secs(0), tcp((R4, 80), (NAT4, p), SYN | ACK));
    assert!(matches!(v, Verdict::Forward(_)));
    out_ok(&mut g, secs(0), NIC0, tcp((A4, 5000), (R4, 80), ACK));
    out_ok(&mut g, secs(10), NIC0, tcp((A4, 5000), (R4, 80), FIN | ACK));
    let (v, _) = inbound(&mut g, secs(10), tcp((R4, 80), (NAT4, p), FIN | ACK));
    assert!(matches!(v, Verdict::Forward(_)));
    let other = || tcp((A4, 5001), (R4, 80), SYN);
    assert_eq!(
        out(&mut g, ms(129_999), NIC0, other()),
        Err(Verdict::Drop(DropReason::PortsExhausted))
    );
    assert_eq!(out_ok(&mut g, secs(130), NIC0, other()).1, 1024);
}

#[test]
fn a_refused_packet_never_evicts_a_live_flow() {
    let mut g = gw("rfc", 2);
    let (_, p0) = out_ok(&mut g, secs(1), NIC0, udp((A4, 5000), (R4, 53)));
    out_ok(&mut g, secs(1), NIC0, udp((A4, 5001), (R4, 53)));
    let before = g.flows();
    for i in 0..50 {
        assert_eq!(
            out(&mut g, secs(2), NIC0, udp((A4, 6000 + i), (R4, 53))),
            Err(Verdict::Drop(DropReason::PortsExhausted))
        );
    }
    assert_eq!(g.flows(), before);
    let (v, _) = inbound(&mut g, secs(3), udp((R4, 53), (NAT4, p0)));
    assert_eq!(v, Verdict::Forward(Egress::Nic(NIC0)));
}

#[test]
fn exhaustion_is_counted_per_nic_with_a_rate_limited_event() {
    let mut g = gw("rfc", 1);
    out_ok(&mut g, secs(1), NIC0, udp((A4, 5000), (R4, 53)));
    g.drain_events();
    for t in [1000, 1500, 1999, 2000, 2001] {
        let _ = out(&mut g, ms(t), NIC0, udp((A4, 6000), (R4, 53)));
    }
    let events: Vec<_> = g
        .drain_events()
        .into_iter()
        .filter(|e| matches!(e, Event::PortsExhausted { .. }))
        .collect();
    assert_eq!(
        events.len(),
        2,
        "one per exhaustion_event_interval_ms: {events:?}"
    );
    assert_eq!(
        g.nic_counters(NIC0)
            .expect("nic")
            .dropped(DropReason::PortsExhausted),
        5
    );
    assert_eq!(
        g.nic_counters(NIC1)
            .expect("nic")
            .dropped(DropReason::PortsExhausted),
        0
    );
}

#[test]
fn exhaustion_can_answer_the_inside_host_with_icmp_3_1() {
    let mut p = profile("rfc");
    p.icmp_unreachable_on_exhaustion = true;
    let mut g = build(config(p, 1));
    out_ok(&mut g, secs(1), NIC0, udp((A4, 5000), (R4, 53)));
    let orig = udp((A4, 6000), (R4, 53));
    let mut pkt = orig.clone();
    let v = g.process(secs(1), Ingress::Inside(NIC0), &mut pkt);
    assert_eq!(v, Verdict::Respond(Egress::Nic(NIC0)));
    let r = parsed(&pkt);
    assert_eq!((r.ip.src, r.ip.dst), (ip(NAT4), ip(A4)));
    let TransportRepr::Icmp(IcmpRepr::Error {
        icmp_type: 3,
        code: 1,
        quoted,
        ..
    }) = r.transport
    else {
        panic!("expected ICMP 3/1, got {:?}", r.transport)
    };
    assert_eq!(quoted, orig, "quotes the refused packet");
    assert_eq!(g.counters().dropped(DropReason::PortsExhausted), 1);
    assert_eq!(g.flows().len(), 1);
}

#[test]
fn a_full_table_refuses_new_flows_as_table_full() {
    let mut cfg = config(profile("rfc"), 64);
    cfg.max_flows = 2;
    let mut g = build(cfg);
    out_ok(&mut g, secs(1), NIC0, udp((A4, 5000), (R4, 53)));
    out_ok(&mut g, secs(1), NIC1, udp((B4, 5000), (R4, 53)));
    assert_eq!(
        out(&mut g, secs(1), NIC0, udp((A4, 5001), (R4, 53))),
        Err(Verdict::Drop(DropReason::TableFull))
    );
    assert_eq!(
        g.nic_counters(NIC0)
            .expect("nic")
            .dropped(DropReason::TableFull),
        1
    );
    assert!(
        g.drain_events()
            .iter()
            .any(|e| matches!(e, Event::TableFull { nic: NIC0, .. }))
    );
    // Existing flows still work; expired ones make room.
    out_ok(&mut g, secs(2), NIC0, udp((A4, 5000), (R4, 53)));
    // rfc UDP: NIC 1's flow idles out at 1 + 300 s; from then on it no longer counts.
    assert_eq!(
        out(&mut g, ms(300_999), NIC0, udp((A4, 5001), (R4, 53))),
        Err(Verdict::Drop(DropReason::TableFull))
    );
    out_ok(&mut g, secs(301), NIC0, udp((A4, 5001), (R4, 53)));
}

#[test]
fn an_expired_flow_no_longer_counts_against_the_table_limit_even_while_its_port_is_held() {
    let mut cfg = config(profile("rfc"), 64);
    cfg.max_flows = 2;
    let mut g = build(cfg);
    out_ok(&mut g, secs(0), NIC0, udp((A4, 5000), (R4, 53)));
    out_ok(&mut g, secs(0), NIC0, udp((A4, 5001), (R4, 53)));
    // Both expire at 300 s and their ports are held until 420 s (rfc UDP hold 120 s).
    g.handle_timeout(secs(300));
    assert_eq!(g.live_flows(), (0, 0));
    assert_eq!(g.tracked_flows(), (2, 0), "both ports still held");
    out_ok(&mut g, secs(310), NIC0, udp((A4, 6000), (R4, 53)));
    out_ok(&mut g, secs(310), NIC1, udp((B4, 6000), (R4, 53)));
    assert_eq!(g.tracked_flows(), (4, 0));
    assert_eq!(
        out(&mut g, secs(310), NIC1, udp((B4, 6001), (R4, 53))),
        Err(Verdict::Drop(DropReason::TableFull)),
        "two live flows fill the table"
    );
    assert_eq!(g.counters().dropped(DropReason::TableFull), 1);
}

#[test]
fn a_closed_tcp_flow_on_its_transitory_timer_still_counts_against_the_table_limit() {
    let mut cfg = config(profile("rfc"), 64);
    cfg.max_flows = 1;
    let mut g = build(cfg);
    let p = syn(&mut g, secs(0), NIC0, (A4, 5000), (R4, 80));
    inbound(&mut g, secs(0), tcp((R4, 80), (NAT4, p), SYN | ACK));
    out_ok(&mut g, secs(0), NIC0, tcp((A4, 5000), (R4, 80), ACK));
    out_ok(&mut g, secs(1), NIC0, tcp((A4, 5000), (R4, 80), FIN | ACK));
    inbound(&mut g, secs(1), tcp((R4, 80), (NAT4, p), FIN | ACK));
    assert_eq!(live(&g)[0].state, "closed");
    assert_eq!(
        out(&mut g, secs(2), NIC1, udp((B4, 6000), (R4, 53))),
        Err(Verdict::Drop(DropReason::TableFull))
    );
    // rfc transitory 240 s from the last packet; then the slot is free.
    g.handle_timeout(secs(241));
    out_ok(&mut g, secs(241), NIC1, udp((B4, 6000), (R4, 53)));
}

#[test]
fn a_nic_without_a_block_has_every_outbound_packet_dropped_as_no_nat_block() {
    let mut g = gw("rfc", 64);
    let p = syn(&mut g, secs(1), NIC0, (A4, 5000), (R4, 80));
    inbound(&mut g, secs(1), tcp((R4, 80), (NAT4, p), SYN | ACK));
    out_ok(&mut g, secs(1), NIC0, tcp((A4, 5000), (R4, 80), ACK));
    g.release_block(secs(2), NIC0, Family::V4);
    // Mid-stream TCP of any flags (this reason comes before `tcp_no_flow`), new TCP, UDP, ping.
    let mut packets: Vec<Vec<u8>> = [ACK, PSH | ACK, FIN | ACK, RST, RST | ACK, SYN | ACK, SYN, 0]
        .into_iter()
        .map(|f| tcp((A4, 5000), (R4, 80), f))
        .collect();
    packets.push(udp((A4, 5000), (R4, 53)));
    packets.push(ping(A4, R4, 7));
    let n = packets.len() as u64;
    for pkt in packets {
        assert_eq!(
            out(&mut g, secs(3), NIC0, pkt),
            Err(Verdict::Drop(DropReason::NoNatBlock))
        );
    }
    let c = g.nic_counters(NIC0).expect("nic");
    assert_eq!(c.dropped(DropReason::NoNatBlock), n);
    assert_eq!(c.dropped(DropReason::TcpNoFlow), 0);
    // The other family still has its block.
    out_ok(&mut g, secs(3), NIC0, udp((A6, 5000), (R6, 53)));
}

#[test]
fn last_port_unusable_quirk_leaves_p_minus_one_ports() {
    let mut p = profile("dpservice");
    assert!(!p.last_port_unusable, "opt-in");
    p.last_port_unusable = true;
    let mut g = build(config(p, 4));
    let mut used = Vec::new();
    for i in 0..3 {
        used.push(out_ok(&mut g, secs(1), NIC0, udp((A4, 5000 + i), (R4, 53))).1);
    }
    assert_eq!(
        out(&mut g, secs(1), NIC0, udp((A4, 6000), (R4, 53))),
        Err(Verdict::Drop(DropReason::PortsExhausted))
    );
    used.sort_unstable();
    assert_eq!(
        used,
        vec![1024, 1025, 1026],
        "the block's end port 1027 is never used"
    );
    // Without the quirk all four fit.
    let mut g = gw("dpservice", 4);
    for i in 0..4 {
        out_ok(&mut g, secs(1), NIC0, udp((A4, 5000 + i), (R4, 53)));
    }
}

#[test]
fn the_port_search_starts_at_port_start_offset() {
    let cfg = config(profile("rfc"), 64);
    let seed = cfg.seed;
    let mut g = build(cfg);
    for i in 0..20u16 {
        let remote = format!("192.0.2.{}", i + 1);
        let (_, p) = out_ok(&mut g, secs(1), NIC0, udp((A4, 9000 + i), (&remote, 53)));
        let start = port_start_offset(seed, NIC0, 17, ip(A4), 9000 + i, 64);
        // Different remotes, so every scope is empty: the start point itself is chosen.
        assert_eq!(p, 1024 + start);
    }
}

// ----- hairpinning ---------------------------------------------------------------------------

#[test]
fn hairpinned_packet_reaches_the_peer_with_the_external_source() {
    let mut g = gw("rfc", 64);
    // A's endpoint gets its mapping through an ordinary flow.
    let (_, pa) = out_ok(&mut g, secs(1), NIC0, udp((A4, 5000), (R4, 53)));
    // B sends to A's NAT endpoint: B's flow exists now, the packet is unsolicited at A.
    let mut pkt = udp((B4, 6000), (NAT4, pa));
    assert_eq!(
        g.process(secs(2), Ingress::Inside(NIC1), &mut pkt),
        Verdict::Drop(DropReason::Unsolicited)
    );
    let pb = live(&g)
        .into_iter()
        .find(|f| f.flow.nic == NIC1)
        .expect("B's flow to A's NAT endpoint")
        .flow
        .nat
        .port();
    // A answers B's NAT endpoint: hairpinned to B, source = A's external endpoint.
    let before = g.counters().clone();
    let mut pkt = udp((A4, 5000), (NAT4, pb));
    assert_eq!(
        g.process(secs(3), Ingress::Inside(NIC0), &mut pkt),
        Verdict::Forward(Egress::Nic(NIC1))
    );
    let r = parsed(&pkt);
    assert_eq!((r.ip.src, r.ip.dst), (ip(NAT4), ip(B4)));
    assert_eq!(ports(&r), (pa, 6000));
    let after = g.counters();
    assert_eq!(after.hairpinned, before.hairpinned + 1);
    assert_eq!(
        after.translated_out, before.translated_out,
        "a hairpinned packet is counted once, as hairpinned"
    );
    assert_eq!(dispositions(after), dispositions(&before) + 1);
    assert_eq!(g.nic_counters(NIC0).expect("nic").hairpinned, 1);
    assert_no_overloading(&g);
}

#[test]
fn hairpin_to_a_nat_endpoint_without_a_flow_is_dropped_not_looped() {
    let mut g = gw("rfc", 64);
    let before = dispositions(g.counters());
    let mut pkt = udp((A4, 5000), (NAT4, 4000));
    assert_eq!(
        g.process(secs(1), Ingress::Inside(NIC0), &mut pkt),
        Verdict::Drop(DropReason::Unsolicited)
    );
    assert_eq!(dispositions(g.counters()), before + 1, "counted once");
    assert!(g.poll_transmit().is_none());
    let mut pkt = ping(A4, NAT4, 5);
    assert_eq!(
        g.process(secs(1), Ingress::Inside(NIC0), &mut pkt),
        Verdict::Drop(DropReason::Unsolicited),
        "no echo reply to a hairpinned ping"
    );
}

// ----- other protocols, spoofing -------------------------------------------------------------

fn raw(src: &str, dst: &str, protocol: u8) -> Vec<u8> {
    PacketRepr {
        ip: IpRepr::new(ip(src), ip(dst)),
        transport: TransportRepr::Raw {
            protocol,
            payload: vec![1, 2, 3, 4, 5, 6, 7, 8],
        },
    }
    .emit()
}

#[test]
fn other_protocols_are_dropped_as_unsupported_and_create_no_state() {
    let mut g = gw("rfc", 64);
    for proto in [47u8, 50, 132] {
        let mut pkt = raw(A4, R4, proto);
        assert_eq!(
            g.process(secs(1), Ingress::Inside(NIC0), &mut pkt),
            Verdict::Drop(DropReason::UnsupportedProtocol)
        );
        let (v, _) = inbound(&mut g, secs(1), raw(R4, NAT4, proto));
        assert_eq!(v, Verdict::Drop(DropReason::UnsupportedProtocol));
        let mut pkt = raw(A6, R6, proto);
        assert_eq!(
            g.process(secs(1), Ingress::Inside(NIC0), &mut pkt),
            Verdict::Drop(DropReason::UnsupportedProtocol)
        );
    }
    assert!(g.flows().is_empty());
    assert_eq!(g.counters().dropped(DropReason::UnsupportedProtocol), 9);
}

#[test]
fn a_spoofed_source_from_a_nic_is_dropped() {
    let mut g = gw("rfc", 64);
    for src in [B4, "10.0.0.77", R4] {
        assert_eq!(
            out(&mut g, secs(1), NIC0, udp((src, 5000), (R4B, 53))),
            Err(Verdict::Drop(DropReason::SpoofedSource))
        );
    }
    assert_eq!(
        out(&mut g, secs(1), NicId(9), udp((A4, 5000), (R4, 53))),
        Err(Verdict::Drop(DropReason::UnknownNic))
    );
    assert!(g.flows().is_empty());
}

// ----- checksums -----------------------------------------------------------------------------

#[test]
fn packets_with_bad_checksums_are_dropped_when_verifying() {
    let mut g = gw("rfc", 64);
    let mut bad_l4 = udp((A4, 5000), (R4, 53));
    let n = bad_l4.len();
    bad_l4[n - 1] ^= 0x40;
    assert_eq!(
        out(&mut g, secs(1), NIC0, bad_l4),
        Err(Verdict::Drop(DropReason::BadChecksum))
    );
    let mut bad_ip = tcp((A4, 5000), (R4, 80), SYN);
    bad_ip[10] ^= 1;
    assert_eq!(
        out(&mut g, secs(1), NIC0, bad_ip),
        Err(Verdict::Drop(DropReason::BadChecksum))
    );
    assert!(g.flows().is_empty());
}

#[test]
fn packets_with_bad_checksums_are_not_fixed_when_not_verifying() {
    let mut cfg = config(profile("rfc"), 64);
    cfg.verify_l4_checksums = false;
    let mut g = build(cfg);
    for (mut pkt, what) in [
        (udp((A4, 5000), (R4, 53)), "udp"),
        (tcp((A4, 5000), (R4, 80), SYN), "tcp"),
        (ping(A4, R4, 9), "icmp"),
    ] {
        let n = pkt.len();
        pkt[n - 1] ^= 0x40;
        let v = g.process(secs(1), Ingress::Inside(NIC0), &mut pkt);
        assert_eq!(v, Verdict::Forward(Egress::Outside), "{what}");
        let (p, ck) = PacketRepr::parse(&pkt).expect("parses");
        assert_eq!(p.ip.src, ip(NAT4));
        assert!(ck.ip_ok, "{what}: IP header checksum is ours and valid");
        assert!(!ck.l4_ok, "{what}: a bad transport checksum stays bad");
    }
}

#[test]
fn zero_udp_checksum_stays_zero_in_both_directions() {
    let mut g = gw("rfc", 64);
    let zero = |src: (&str, u16), dst: (&str, u16)| {
        let mut r = PacketRepr::udp((ip(src.0), src.1), (ip(dst.0), dst.1), b"abc");
        if let TransportRepr::Udp { zero_checksum, .. } = &mut r.transport {
            *zero_checksum = true;
        }
        r.emit()
    };
    let mut pkt = zero((A4, 5000), (R4, 53));
    assert_eq!(
        g.process(secs(1), Ingress::Inside(NIC0), &mut pkt),
        Verdict::Forward(Egress::Outside)
    );
    let p = parsed(&pkt);
    assert!(matches!(
        p.transport,
        TransportRepr::Udp {
            zero_checksum: true,
            ..
        }
    ));
    let port = ports(&p).0;
    let (v, pkt) = inbound(&mut g, secs(2), zero((R4, 53), (NAT4, port)));
    assert_eq!(v, Verdict::Forward(Egress::Nic(NIC0)));
    assert!(matches!(
        parsed(&pkt).transport,
        TransportRepr::Udp {
            zero_checksum: true,
            ..
        }
    ));
}

// ----- IPv6 (NAPT66) -------------------------------------------------------------------------

#[test]
fn ipv6_tcp_udp_and_echo_are_translated_like_ipv4() {
    let mut g = gw("rfc", 64);
    let (nat, p) = out_ok(&mut g, secs(1), NIC0, tcp((A6, 5000), (R6, 443), SYN));
    assert_eq!(nat, ip(NAT6));
    let (v, pkt) = inbound(&mut g, secs(1), tcp((R6, 443), (NAT6, p), SYN | ACK));
    assert_eq!(v, Verdict::Forward(Egress::Nic(NIC0)));
    let r = parsed(&pkt);
    assert_eq!((r.ip.dst, ports(&r).1), (ip(A6), 5000));

    let (_, p) = out_ok(&mut g, secs(1), NIC0, udp((A6, 5000), (R6, 53)));
    let (v, pkt) = inbound(&mut g, secs(1), udp((R6, 53), (NAT6, p)));
    assert_eq!(v, Verdict::Forward(Egress::Nic(NIC0)));
    assert_eq!(parsed(&pkt).ip.dst, ip(A6));

    let (_, id) = out_ok(&mut g, secs(1), NIC0, ping(A6, R6, 42));
    let (v, pkt) = inbound(&mut g, secs(1), pong_ip(ip(R6), ip(NAT6), id));
    assert_eq!(v, Verdict::Forward(Egress::Nic(NIC0)));
    let r = parsed(&pkt);
    assert_eq!((r.ip.dst, ports(&r).0), (ip(A6), 42));
    assert_eq!(g.live_flows(), (0, 3));
    assert_no_overloading(&g);
}

#[test]
fn ipv6_exhaustion_and_filtering_follow_the_same_rules() {
    let mut g = gw("rfc", 2);
    let (_, p) = out_ok(&mut g, secs(1), NIC0, udp((A6, 5000), (R6, 53)));
    out_ok(&mut g, secs(1), NIC0, udp((A6, 5001), (R6, 53)));
    assert_eq!(
        out(&mut g, secs(1), NIC0, udp((A6, 5002), (R6, 53))),
        Err(Verdict::Drop(DropReason::PortsExhausted))
    );
    out_ok(&mut g, secs(1), NIC0, udp((A6, 5002), (R6B, 53)));
    // IPv4 is a separate family with its own block.
    out_ok(&mut g, secs(1), NIC0, udp((A4, 5002), (R4, 53)));
    let (v, _) = inbound(&mut g, secs(1), udp((R6, 54), (NAT6, p)));
    assert_eq!(v, Verdict::Drop(DropReason::Unsolicited));
    assert_no_overloading(&g);
}

#[test]
fn ipv6_passes_through_inside_the_network() {
    let mut g = gw("rfc", 64);
    let mut pkt = udp((A6, 5000), (B6, 53));
    assert_eq!(
        g.process(secs(1), Ingress::Inside(NIC0), &mut pkt),
        Verdict::PassThrough
    );
}

// ----- block changes at run time -------------------------------------------------------------

#[test]
fn a_nic_that_loses_its_block_loses_its_flows_at_once() {
    let mut g = gw("rfc", 64);
    let (_, p) = out_ok(&mut g, secs(1), NIC0, udp((A4, 5000), (R4, 53)));
    out_ok(&mut g, secs(1), NIC0, udp((A6, 5000), (R6, 53)));
    g.drain_events();
    let released = g.release_block(secs(2), NIC0, Family::V4);
    assert_eq!(released, Some(block(NAT4, 0, 64)));
    assert_eq!(g.live_flows(), (0, 1), "only the IPv4 flows go");
    assert!(
        g.flows()
            .iter()
            .all(|f| f.flow.nic != NIC0 || f.flow.nat.is_ipv6())
    );
    let (v, _) = inbound(&mut g, secs(2), udp((R4, 53), (NAT4, p)));
    assert_eq!(v, Verdict::Drop(DropReason::Unsolicited));
    assert_eq!(
        out(&mut g, secs(3), NIC0, udp((A4, 5000), (R4, 53))),
        Err(Verdict::Drop(DropReason::NoNatBlock))
    );
    let ev = g.drain_events();
    assert!(ev.iter().any(|e| matches!(
        e,
        Event::BlockRemoved {
            flows_flushed: 1,
            ..
        }
    )));
    assert!(ev.iter().any(|e| matches!(
        e,
        Event::FlowEnded {
            reason: EndReason::BlockRemoved,
            ..
        }
    )));
}

#[test]
fn reassigning_a_block_moves_new_flows_and_ends_old_ones() {
    let mut g = gw("rfc", 64);
    let (_, p) = out_ok(&mut g, secs(1), NIC0, udp((A4, 5000), (R4, 53)));
    let new = block(NAT4, 10, 64);
    g.assign_block(secs(2), NIC0, new).expect("free block");
    assert_eq!(g.live_flows().0, 0);
    let (v, _) = inbound(&mut g, secs(2), udp((R4, 53), (NAT4, p)));
    assert_eq!(v, Verdict::Drop(DropReason::Unsolicited));
    let (_, q) = out_ok(&mut g, secs(3), NIC0, udp((A4, 5000), (R4, 53)));
    assert!((new.port..=new.end_port).contains(&q));
    assert_no_overloading(&g);
    // The old block is free for another NIC now.
    g.assign_block(secs(4), NIC1, block(NAT4, 0, 64))
        .expect("released block can be reused");
}

#[test]
fn overlapping_blocks_are_rejected_naming_the_field() {
    let mut g = gw("rfc", 64);
    let e = g
        .assign_block(
            secs(1),
            NIC1,
            Block {
                nat_ip: ip(NAT4),
                port: 1050,
                end_port: 1100,
            },
        )
        .expect_err("overlaps NIC 0's block");
    let ConfigError::Invalid { field, .. } = &e;
    assert_eq!(field, "block");
    assert!(e.to_string().contains("overlaps"), "{e}");
}

#[test]
fn growing_a_block_over_a_lower_neighbour_is_rejected() {
    // NIC 1 has 1088-1151, RED has 1152-1215. Growing RED's block down over NIC 1's must fail
    // even though the nearest block at or before the new end is RED's own.
    let mut g = gw("rfc", 64);
    let e = g.assign_block(
        secs(1),
        RED,
        Block {
            nat_ip: ip(NAT4),
            port: 1100,
            end_port: 1215,
        },
    );
    assert!(e.is_err(), "overlap with NIC 1 accepted");
    assert_eq!(g.block_of(RED, Family::V4), Some(block(NAT4, 2, 64)));
    // Growing upwards into free space is fine.
    g.assign_block(
        secs(1),
        RED,
        Block {
            nat_ip: ip(NAT4),
            port: 1152,
            end_port: 1400,
        },
    )
    .expect("no overlap");
}

#[test]
fn blocks_below_port_1024_are_rejected() {
    let mut g = gw("rfc", 64);
    for (port, end_port, field) in [
        (0, 63, "block.port"),
        (1000, 1100, "block.port"),
        (2000, 1999, "block.end_port"),
    ] {
        let e = g
            .assign_block(
                secs(1),
                NIC0,
                Block {
                    nat_ip: ip(NAT4),
                    port,
                    end_port,
                },
            )
            .expect_err("invalid block");
        let ConfigError::Invalid { field: f, .. } = e;
        assert_eq!(f, field);
    }
}

#[test]
fn invalid_ports_per_nic_is_rejected_naming_the_field() {
    for p in [0, 3, 100, 65536, 1 << 17] {
        let e = Gateway::new(config(profile("rfc"), p))
            .err()
            .expect("invalid P");
        let ConfigError::Invalid { field, .. } = &e;
        assert_eq!(field, "ports_per_nic", "P={p}");
        assert!(e.to_string().starts_with("ports_per_nic"), "{e}");
    }
    for p in [1, 2, 64, 2048, 32768] {
        assert!(Gateway::new(config(profile("rfc"), p)).is_ok(), "P={p}");
    }
}

#[test]
fn removing_a_nic_ends_its_flows() {
    let mut g = gw("rfc", 64);
    out_ok(&mut g, secs(1), NIC0, udp((A4, 5000), (R4, 53)));
    out_ok(&mut g, secs(1), NIC1, udp((B4, 5000), (R4, 53)));
    g.remove_nic(secs(2), NIC0);
    assert_eq!(g.live_flows(), (1, 0));
    assert_eq!(
        out(&mut g, secs(3), NIC0, udp((A4, 5000), (R4, 53))),
        Err(Verdict::Drop(DropReason::UnknownNic))
    );
    let _ = Instant::ZERO;
}

// ----- TTL -------------------------------------------------------------------------------------

#[test]
fn rfc_and_linux_decrement_ttl_and_hop_limit_of_forwarded_packets_and_cloud_profiles_do_not() {
    for name in Profile::NAMES {
        let hop = u8::from(matches!(name, "rfc" | "linux"));
        let mut g = gw(name, 64);
        for (inside, remote, nat) in [(A4, R4, NAT4), (A6, R6, NAT6)] {
            let mut pkt = with_ttl(&udp((inside, 5000), (remote, 53)), 30);
            let v = g.process(secs(1), Ingress::Inside(NIC0), &mut pkt);
            assert_eq!(v, Verdict::Forward(Egress::Outside), "{name}");
            let port = ports(&parsed(&pkt)).0; // checksums verify after the decrement
            assert_eq!(ttl_of(&pkt), 30 - hop, "{name} out");
            let (v, back) = inbound(
                &mut g,
                secs(1),
                with_ttl(&udp((remote, 53), (nat, port)), 20),
            );
            assert_eq!(v, Verdict::Forward(Egress::Nic(NIC0)), "{name}");
            parsed(&back);
            assert_eq!(ttl_of(&back), 20 - hop, "{name} in");
        }
    }
}

#[test]
fn a_packet_that_would_leave_with_ttl_0_is_dropped_and_answered_with_time_exceeded() {
    for (inside, remote, nat, t) in [(A4, R4, NAT4, 11u8), (A6, R6, NAT6, 3u8)] {
        let mut g = gw("rfc", 64);
        // Outbound, TTL 1: no flow, Time Exceeded to the inside host from the NIC's NAT IP.
        let mut pkt = with_ttl(&udp((inside, 5000), (remote, 53)), 1);
        let v = g.process(secs(1), Ingress::Inside(NIC0), &mut pkt);
        assert_eq!(v, Verdict::Respond(Egress::Nic(NIC0)));
        let a = parsed(&pkt);
        assert_eq!((a.ip.src, a.ip.dst), (ip(nat), ip(inside)));
        assert!(matches!(
            a.transport,
            TransportRepr::Icmp(IcmpRepr::Error { icmp_type, code: 0, .. }) if icmp_type == t
        ));
        assert!(g.flows().is_empty(), "creates no flow");
        // Inbound reply of a live flow, TTL 1: answered to the remote from the NAT IP, with
        // only public addresses in the quote.
        let (_, port) = out_ok(&mut g, secs(2), NIC0, udp((inside, 5000), (remote, 53)));
        let (v, back) = inbound(
            &mut g,
            secs(3),
            with_ttl(&udp((remote, 53), (nat, port)), 1),
        );
        assert_eq!(v, Verdict::Respond(Egress::Outside));
        let a = parsed(&back);
        assert_eq!((a.ip.src, a.ip.dst), (ip(nat), ip(remote)));
        match a.transport {
            TransportRepr::Icmp(IcmpRepr::Error {
                icmp_type,
                code: 0,
                quoted,
                ..
            }) => {
                assert_eq!(icmp_type, t);
                let q = PacketRepr::parse_lax(&quoted).expect("quote");
                assert_eq!((q.ip.src, q.ip.dst), (ip(remote), ip(nat)));
            }
            other => panic!("not Time Exceeded: {other:?}"),
        }
        assert_eq!(g.counters().dropped(DropReason::TtlExpired), 2);
        assert_eq!(g.counters().generated, 2);
        // TTL 2 still passes and leaves with 1.
        let (v, back) = inbound(
            &mut g,
            secs(4),
            with_ttl(&udp((remote, 53), (nat, port)), 2),
        );
        assert_eq!(v, Verdict::Forward(Egress::Nic(NIC0)));
        assert_eq!(ttl_of(&back), 1);
    }
}

#[test]
fn an_inbound_icmp_error_that_would_leave_with_ttl_0_is_dropped_without_an_answer() {
    // RFC 1812 §4.3.2.7: no ICMP error about an ICMP error. The error matches a live flow and
    // is translated, then dropped at the hop; its `translated` count is taken back.
    for (inside, remote, nat) in [(A4, R4, NAT4), (A6, R6, NAT6)] {
        let mut g = gw("rfc", 64);
        let mut sent = udp((inside, 5000), (remote, 53));
        let v = g.process(secs(1), Ingress::Inside(NIC0), &mut sent);
        assert_eq!(v, Verdict::Forward(Egress::Outside));
        let error = |ttl| {
            with_ttl(
                &PacketRepr::icmp_error(ip(remote), ip(nat), 3, 3, &sent).emit(),
                ttl,
            )
        };
        let translated_in = |g: &Gateway| g.counters().translated_in.iter().sum::<u64>();
        let (v, _) = inbound(&mut g, secs(2), error(1));
        assert_eq!(v, Verdict::Drop(DropReason::TtlExpired), "{inside}");
        assert_eq!(g.counters().dropped(DropReason::TtlExpired), 1);
        assert_eq!(g.counters().generated, 0, "no answer");
        assert_eq!(translated_in(&g), 0, "count taken back");
        let nic = g.nic_counters(NIC0).expect("NIC 0");
        assert_eq!(nic.translated_in.iter().sum::<u64>(), 0, "per NIC too");
        // With a hop to spare it is translated and leaves with 1.
        let (v, back) = inbound(&mut g, secs(3), error(2));
        assert_eq!(v, Verdict::Forward(Egress::Nic(NIC0)), "{inside}");
        assert_eq!(ttl_of(&back), 1);
        assert_eq!(translated_in(&g), 1);
    }
}

#[test]
fn time_exceeded_answers_are_rate_limited() {
    let mut g = gw("linux", 64);
    let mut answered = 0;
    for _ in 0..3 * TIME_EXCEEDED_BURST {
        let mut pkt = with_ttl(&udp((A4, 5000), (R4, 53)), 1);
        match g.process(secs(1), Ingress::Inside(NIC0), &mut pkt) {
            Verdict::Respond(Egress::Nic(NIC0)) => answered += 1,
            v => assert_eq!(v, Verdict::Drop(DropReason::TtlExpired)),
        }
    }
    assert_eq!(answered, TIME_EXCEEDED_BURST);
    assert_eq!(
        g.counters().dropped(DropReason::TtlExpired),
        u64::from(3 * TIME_EXCEEDED_BURST)
    );
    // The budget refills with virtual time.
    let mut pkt = with_ttl(&udp((A4, 5000), (R4, 53)), 1);
    let later = Instant::from_nanos(secs(1).as_nanos() + TIME_EXCEEDED_INTERVAL_NS);
    assert_eq!(
        g.process(later, Ingress::Inside(NIC0), &mut pkt),
        Verdict::Respond(Egress::Nic(NIC0))
    );
}

#[test]
fn ttl_decrement_is_a_profile_field_scenarios_can_override() {
    let mut overrides = serde_json::Map::new();
    overrides.insert("ttl_decrement".into(), serde_json::Value::Bool(false));
    let p = profile("rfc")
        .with_overrides(&overrides)
        .expect("known field");
    let mut g = build(config(p, 64));
    let mut pkt = with_ttl(&udp((A4, 5000), (R4, 53)), 1);
    assert_eq!(
        g.process(secs(1), Ingress::Inside(NIC0), &mut pkt),
        Verdict::Forward(Egress::Outside)
    );
    assert_eq!(ttl_of(&pkt), 1, "transparent");
}
