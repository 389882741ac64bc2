//! behaviour §4 "TCP": the state machine with direction checks (RFC 6146 §3.5.2.2, RFC 7857 §2.1,
//! RFC 5382), checked through `flows()` state names and through the timers.

mod common;

use common::*;
use natsim::nat::*;
use natsim::time::Instant;
use natsim::wire::tcp_flags::*;

const TRANSITORY_MS: u64 = 240_000;
const ESTABLISHED_MS: u64 = 7_440_000;

fn only_flow(g: &Gateway) -> FlowInfo {
    let mut f = live(g);
    assert_eq!(f.len(), 1, "{f:?}");
    f.remove(0)
}

fn send_in(g: &mut Gateway, t: Instant, port: u16, flags: u8) -> Verdict {
    inbound(g, t, tcp((R4, 80), (NAT4, port), flags)).0
}

fn send_out(g: &mut Gateway, t: Instant, flags: u8) -> Result<(std::net::IpAddr, u16), Verdict> {
    out(g, t, NIC0, tcp((A4, 5000), (R4, 80), flags))
}

/// SYN, SYN-ACK, ACK at `t`; returns the NAT port.
fn handshake(g: &mut Gateway, t: Instant) -> u16 {
    let p = syn(g, t, NIC0, (A4, 5000), (R4, 80));
    assert_eq!(
        send_in(g, t, p, SYN | ACK),
        Verdict::Forward(Egress::Nic(NIC0))
    );
    send_out(g, t, ACK).expect("ACK forwarded");
    p
}

#[test]
fn syn_from_inside_creates_a_flow_on_the_transitory_timer() {
    let mut g = gw("rfc", 64);
    syn(&mut g, secs(1), NIC0, (A4, 5000), (R4, 80));
    let f = only_flow(&g);
    assert_eq!(f.state, "syn_sent");
    assert_eq!(f.deadline, secs(1).plus_millis(TRANSITORY_MS));
}

#[test]
fn synack_from_outside_then_inside_ack_makes_established() {
    let mut g = gw("rfc", 64);
    let p = syn(&mut g, secs(1), NIC0, (A4, 5000), (R4, 80));
    send_in(&mut g, secs(2), p, SYN | ACK);
    assert_eq!(only_flow(&g).state, "syn_received");
    send_out(&mut g, secs(3), ACK).expect("forwarded");
    let f = only_flow(&g);
    assert_eq!(f.state, "established");
    assert_eq!(f.deadline, secs(3).plus_millis(ESTABLISHED_MS));
}

#[test]
fn inside_ack_without_an_outside_synack_does_not_establish() {
    let mut g = gw("rfc", 64);
    syn(&mut g, secs(1), NIC0, (A4, 5000), (R4, 80));
    send_out(&mut g, secs(2), ACK).expect("forwarded on the flow");
    let f = only_flow(&g);
    assert_eq!(f.state, "syn_sent");
    assert_eq!(f.deadline, secs(2).plus_millis(TRANSITORY_MS));
}

#[test]
fn syn_synack_flood_never_reaches_established_and_expires_on_the_transitory_timer() {
    let mut g = gw("rfc", 64);
    let p = syn(&mut g, secs(0), NIC0, (A4, 5000), (R4, 80));
    let mut t = secs(0);
    for i in 0..200u64 {
        t = ms(i * 100);
        send_out(&mut g, t, SYN).expect("SYN forwarded");
        send_in(&mut g, t, p, SYN | ACK);
        let _ = send_out(&mut g, t, SYN | ACK);
        let f = only_flow(&g);
        assert_ne!(f.state, "established");
    }
    let expiry = t.plus_millis(TRANSITORY_MS);
    assert_eq!(g.poll_timeout(), Some(expiry));
    g.handle_timeout(Instant::from_nanos(expiry.as_nanos() - 1_000_000));
    assert_eq!(g.live_flows(), (1, 0));
    g.handle_timeout(expiry);
    assert_eq!(g.live_flows(), (0, 0));
}

#[test]
fn fin_from_both_sides_moves_the_flow_to_the_transitory_timer() {
    let mut g = gw("rfc", 64);
    let p = handshake(&mut g, secs(1));
    send_out(&mut g, secs(10), FIN | ACK).expect("FIN out");
    let f = only_flow(&g);
    assert_eq!(f.state, "closing");
    assert_eq!(
        f.deadline,
        secs(10).plus_millis(ESTABLISHED_MS),
        "one FIN keeps the established timer"
    );
    assert_eq!(
        send_in(&mut g, secs(11), p, FIN | ACK),
        Verdict::Forward(Egress::Nic(NIC0))
    );
    let f = only_flow(&g);
    assert_eq!(f.state, "closed");
    assert_eq!(f.deadline, secs(11).plus_millis(TRANSITORY_MS));
    g.handle_timeout(secs(11).plus_millis(TRANSITORY_MS));
    assert!(g.flows().is_empty(), "rfc holds no TCP port after close");
}

#[test]
fn rst_is_translated_in_both_directions_and_moves_to_transitory() {
    // Outbound RST.
    let mut g = gw("rfc", 64);
    handshake(&mut g, secs(1));
    let (nat, _) = send_out(&mut g, secs(5), RST).expect("RST forwarded out");
    assert_eq!(nat, ip(NAT4));
    let f = only_flow(&g);
    assert_eq!(f.state, "reset");
    assert_eq!(f.deadline, secs(5).plus_millis(TRANSITORY_MS));
    // Inbound RST.
    let mut g = gw("rfc", 64);
    let p = handshake(&mut g, secs(1));
    let (v, pkt) = inbound(&mut g, secs(5), tcp((R4, 80), (NAT4, p), RST | ACK));
    assert_eq!(v, Verdict::Forward(Egress::Nic(NIC0)));
    let r = parsed(&pkt);
    assert_eq!((r.ip.dst, ports(&r).1), (ip(A4), 5000));
    let f = only_flow(&g);
    assert_eq!(f.state, "reset");
    assert_eq!(f.deadline, secs(5).plus_millis(TRANSITORY_MS));
}

#[test]
fn simultaneous_open_works() {
    // RFC 5382 REQ-2a: inside SYN, then a SYN from the remote (not a SYN-ACK) is let in.
    let mut g = gw("rfc", 64);
    let p = syn(&mut g, secs(1), NIC0, (A4, 5000), (R4, 80));
    assert_eq!(
        send_in(&mut g, secs(2), p, SYN),
        Verdict::Forward(Egress::Nic(NIC0))
    );
    send_out(&mut g, secs(3), SYN | ACK).expect("inside SYN-ACK");
    assert_eq!(
        send_in(&mut g, secs(3), p, SYN | ACK),
        Verdict::Forward(Egress::Nic(NIC0))
    );
    send_out(&mut g, secs(4), ACK).expect("inside ACK");
    assert_eq!(only_flow(&g).state, "established");
}

#[test]
fn inbound_syn_to_a_mapped_port_without_a_flow_is_unsolicited() {
    let mut g = gw("rfc", 64);
    let p = syn(&mut g, secs(1), NIC0, (A4, 5000), (R4, 80));
    for pkt in [
        tcp((R4B, 80), (NAT4, p), SYN),
        tcp((R4, 81), (NAT4, p), SYN),
        tcp((R4B, 9999), (NAT4, p), SYN | ACK),
    ] {
        let (v, _) = inbound(&mut g, secs(2), pkt);
        assert_eq!(v, Verdict::Drop(DropReason::Unsolicited));
    }
    assert_eq!(g.flows().len(), 1);
}

#[test]
fn non_syn_first_packet_is_dropped_as_tcp_no_flow() {
    let mut g = gw("rfc", 64);
    for flags in [
        ACK,
        FIN | ACK,
        RST,
        RST | ACK,
        SYN | ACK,
        SYN | RST,
        PSH | ACK,
        0,
    ] {
        assert_eq!(
            send_out(&mut g, secs(1), flags),
            Err(Verdict::Drop(DropReason::TcpNoFlow)),
            "flags {flags:#x}"
        );
    }
    assert!(g.flows().is_empty());
    assert_eq!(g.counters().dropped(DropReason::TcpNoFlow), 8);
}

#[test]
fn midstream_pickup_accepts_a_plain_ack_as_established() {
    let mut g = gw("linux", 64);
    assert!(g.config().profile.tcp_midstream_pickup);
    let (_, p) = send_out(&mut g, secs(1), PSH | ACK).expect("picked up");
    let f = only_flow(&g);
    assert_eq!(f.state, "established");
    assert_eq!(f.deadline, secs(1).plus_millis(432_000_000));
    assert_eq!(
        send_in(&mut g, secs(2), p, ACK),
        Verdict::Forward(Egress::Nic(NIC0))
    );
}

#[test]
fn midstream_pickup_does_not_open_flows_for_fin_rst_or_synack() {
    let mut g = gw("linux", 64);
    for flags in [FIN | ACK, RST, RST | ACK, SYN | ACK, SYN | RST] {
        assert_eq!(
            send_out(&mut g, secs(1), flags),
            Err(Verdict::Drop(DropReason::TcpNoFlow)),
            "flags {flags:#x}"
        );
    }
    assert!(g.flows().is_empty());
}

#[test]
fn a_new_syn_after_close_starts_a_new_handshake() {
    let mut g = gw("rfc", 64);
    let p = handshake(&mut g, secs(1));
    send_out(&mut g, secs(2), FIN | ACK).expect("FIN");
    send_in(&mut g, secs(2), p, FIN | ACK);
    assert_eq!(only_flow(&g).state, "closed");
    assert_eq!(send_out(&mut g, secs(3), SYN).expect("new SYN").1, p);
    assert_eq!(only_flow(&g).state, "syn_sent");
    send_in(&mut g, secs(3), p, SYN | ACK);
    send_out(&mut g, secs(3), ACK).expect("ACK");
    let f = only_flow(&g);
    assert_eq!(f.state, "established");
    assert_eq!(f.deadline, secs(3).plus_millis(ESTABLISHED_MS));
}

#[test]
fn after_an_rst_any_later_non_rst_packet_from_either_side_puts_the_flow_back_to_established() {
    for (from_inside, flags) in [
        (true, ACK),
        (false, ACK),
        (true, PSH | ACK),
        (false, SYN | ACK),
    ] {
        let mut g = gw("rfc", 64);
        let p = handshake(&mut g, secs(1));
        // A forged or lost RST: the endpoints go on.
        inbound(&mut g, secs(5), tcp((R4, 80), (NAT4, p), RST));
        assert_eq!(only_flow(&g).state, "reset");
        assert_eq!(only_flow(&g).deadline, secs(5).plus_millis(TRANSITORY_MS));
        // A keepalive 150 s later (inside the 240 s transitory timer).
        let t = secs(155);
        if from_inside {
            send_out(&mut g, t, flags).expect("forwarded");
        } else {
            assert_eq!(
                send_in(&mut g, t, p, flags),
                Verdict::Forward(Egress::Nic(NIC0))
            );
        }
        let f = only_flow(&g);
        assert_eq!(f.state, "established", "inside={from_inside} {flags:#x}");
        assert_eq!(f.deadline, t.plus_millis(ESTABLISHED_MS));
        // Still alive after the transitory timer would have run out.
        g.handle_timeout(secs(5).plus_millis(TRANSITORY_MS + 1000));
        assert_eq!(g.live_flows(), (1, 0));
    }
}

#[test]
fn a_second_rst_after_recovery_resets_again() {
    let mut g = gw("rfc", 64);
    let p = handshake(&mut g, secs(1));
    send_out(&mut g, secs(2), RST).expect("RST");
    send_in(&mut g, secs(3), p, ACK);
    assert_eq!(only_flow(&g).state, "established");
    send_in(&mut g, secs(4), p, RST | ACK);
    let f = only_flow(&g);
    assert_eq!(f.state, "reset");
    assert_eq!(f.deadline, secs(4).plus_millis(TRANSITORY_MS));
}

#[test]
fn linux_rst_closes_the_flow_for_10_s_with_no_recovery() {
    let mut g = gw("linux", 64);
    let p = handshake(&mut g, secs(1));
    send_in(&mut g, secs(5), p, RST);
    let f = only_flow(&g);
    assert_eq!(f.state, "reset");
    assert_eq!(f.deadline, secs(15));
    // Later packets are translated but the flow stays in CLOSE (the kernel refreshes the CLOSE
    // timer on each packet).
    send_out(&mut g, secs(8), ACK).expect("forwarded");
    let f = only_flow(&g);
    assert_eq!(f.state, "reset");
    assert_eq!(f.deadline, secs(18));
    g.handle_timeout(secs(18));
    assert_eq!(g.live_flows(), (0, 0));
}

#[test]
fn linux_a_new_syn_after_an_rst_starts_a_new_handshake() {
    let mut g = gw("linux", 64);
    let p = handshake(&mut g, secs(1));
    send_out(&mut g, secs(2), RST).expect("RST");
    assert_eq!(send_out(&mut g, secs(3), SYN).expect("new SYN").1, p);
    assert_eq!(only_flow(&g).state, "syn_sent");
}

#[test]
fn established_flow_idles_out_on_the_established_timer() {
    let mut g = gw("rfc", 64);
    handshake(&mut g, secs(1));
    let expiry = secs(1).plus_millis(ESTABLISHED_MS);
    assert_eq!(g.poll_timeout(), Some(expiry));
    g.handle_timeout(Instant::from_nanos(expiry.as_nanos() - 1_000_000));
    assert_eq!(g.live_flows(), (1, 0));
    g.handle_timeout(expiry);
    assert_eq!(g.live_flows(), (0, 0));
}

// ----- linux TIME_WAIT takeover (behaviour §5) ------------------------------------------------------

fn seg(src: (&str, u16), dst: (&str, u16), flags: u8, seq: u32) -> Vec<u8> {
    natsim::wire::PacketRepr::tcp((ip(src.0), src.1), (ip(dst.0), dst.1), flags, seq, 0, b"").emit()
}

/// A one-port `profile` gateway whose only port is used by (A4, 5000) -> (R4, 80), opened with
/// sequence number 1000 and then closed by both FINs (or an RST from outside).
fn one_port_closed(profile_name: &str, rst: bool) -> (Gateway, u16) {
    let mut g = gw(profile_name, 1);
    let p = out_ok(&mut g, secs(1), NIC0, seg((A4, 5000), (R4, 80), SYN, 1000)).1;
    send_in(&mut g, secs(1), p, SYN | ACK);
    out_ok(&mut g, secs(1), NIC0, seg((A4, 5000), (R4, 80), ACK, 1001));
    if rst {
        send_in(&mut g, secs(2), p, RST);
    } else {
        out_ok(
            &mut g,
            secs(2),
            NIC0,
            seg((A4, 5000), (R4, 80), FIN | ACK, 1001),
        );
        send_in(&mut g, secs(2), p, FIN | ACK);
        out_ok(&mut g, secs(2), NIC0, seg((A4, 5000), (R4, 80), ACK, 1002));
    }
    (g, p)
}

#[test]
fn linux_a_new_syn_takes_over_the_port_of_a_closed_flow_if_its_sequence_number_has_advanced() {
    for rst in [false, true] {
        let (mut g, p) = one_port_closed("linux", rst);
        g.drain_events();
        // Sequence number not past the closed connection's last one: the port stays held.
        assert_eq!(
            out(&mut g, secs(3), NIC0, seg((A4, 5001), (R4, 80), SYN, 500)),
            Err(Verdict::Drop(DropReason::PortsExhausted)),
            "rst={rst}"
        );
        assert_eq!(live(&g)[0].flow.inside.port(), 5000);
        if !rst {
            // Past the first SYN but not past the FIN, which takes a sequence number of its
            // own: the sequence end follows every outbound segment, not just the first.
            assert_eq!(
                out(&mut g, secs(3), NIC0, seg((A4, 5001), (R4, 80), SYN, 1001)),
                Err(Verdict::Drop(DropReason::PortsExhausted))
            );
        }
        // Past it: the closed entry ends and the port is reused at once.
        let (_, port) = out_ok(
            &mut g,
            secs(3),
            NIC0,
            seg((A4, 5001), (R4, 80), SYN, 90_000),
        );
        assert_eq!(port, p, "rst={rst}");
        let f = only_flow(&g);
        assert_eq!((f.flow.inside.port(), f.state), (5001, "syn_sent"));
        assert!(g.drain_events().iter().any(|e| matches!(
            e,
            Event::FlowEnded {
                reason: EndReason::TakenOver,
                flow,
                ..
            } if flow.inside.port() == 5000
        )));
        // Replies now reach the new connection.
        assert_eq!(
            send_in(&mut g, secs(3), p, SYN | ACK),
            Verdict::Forward(Egress::Nic(NIC0))
        );
        assert_no_overloading(&g);
    }
}

#[test]
fn time_wait_takeover_never_ends_a_live_flow() {
    let mut g = gw("linux", 1);
    let p = out_ok(&mut g, secs(1), NIC0, seg((A4, 5000), (R4, 80), SYN, 1000)).1;
    send_in(&mut g, secs(1), p, SYN | ACK);
    out_ok(&mut g, secs(1), NIC0, seg((A4, 5000), (R4, 80), ACK, 1001));
    // One FIN only: closing, not closed.
    out_ok(
        &mut g,
        secs(2),
        NIC0,
        seg((A4, 5000), (R4, 80), FIN | ACK, 1001),
    );
    assert_eq!(
        out(
            &mut g,
            secs(3),
            NIC0,
            seg((A4, 5001), (R4, 80), SYN, 90_000)
        ),
        Err(Verdict::Drop(DropReason::PortsExhausted))
    );
    assert_eq!(only_flow(&g).flow.inside.port(), 5000);
}

#[test]
fn profiles_without_takeover_keep_a_closed_flows_port_until_it_is_free() {
    let (mut g, _) = one_port_closed("rfc", false);
    assert_eq!(
        out(
            &mut g,
            secs(3),
            NIC0,
            seg((A4, 5001), (R4, 80), SYN, 90_000)
        ),
        Err(Verdict::Drop(DropReason::PortsExhausted))
    );
    assert_eq!(only_flow(&g).state, "closed");
}

// ----- an RST before any reply (behaviour §4, `tcp_unanswered_rst_ends_flow`) ---------------

/// A one-port gateway under `profile` with an outbound SYN (A4, 5000) -> (R4, 80) answered by
/// an RST from outside (a closed port), nothing else having come back.
fn syn_answered_by_rst(profile_name: &str) -> (Gateway, u16) {
    let mut g = gw(profile_name, 1);
    let p = out_ok(&mut g, secs(1), NIC0, seg((A4, 5000), (R4, 80), SYN, 1000)).1;
    g.drain_events();
    // The RST itself is translated and delivered.
    assert_eq!(
        send_in(&mut g, secs(1), p, RST | ACK),
        Verdict::Forward(Egress::Nic(NIC0))
    );
    (g, p)
}

#[test]
fn linux_an_rst_before_any_reply_ends_the_flow_at_once_and_frees_its_port() {
    let (mut g, p) = syn_answered_by_rst("linux");
    // It ends at the RST's own instant: the next timer is now.
    assert_eq!(g.poll_timeout(), Some(secs(1)));
    g.handle_timeout(secs(1));
    assert_eq!(g.live_flows(), (0, 0));
    assert!(g.drain_events().iter().any(|e| matches!(
        e,
        Event::FlowEnded {
            reason: EndReason::ResetUnanswered,
            at,
            ..
        } if *at == secs(1)
    )));
    // The only port is free for another connection to the same endpoint at once.
    let (_, port) = out_ok(&mut g, secs(1), NIC0, seg((A4, 5001), (R4, 80), SYN, 7));
    assert_eq!(port, p);
}

#[test]
fn linux_an_rst_after_a_reply_keeps_the_flow_in_close_for_10_s() {
    let mut g = gw("linux", 1);
    let p = handshake(&mut g, secs(1));
    send_in(&mut g, secs(2), p, RST);
    g.handle_timeout(secs(2));
    let f = only_flow(&g);
    assert_eq!((f.state, f.deadline), ("reset", secs(12)));
}

#[test]
fn rfc_an_rst_before_any_reply_keeps_the_flow_on_the_transitory_timer() {
    let (mut g, _) = syn_answered_by_rst("rfc");
    g.handle_timeout(secs(1));
    let f = only_flow(&g);
    assert_eq!(f.state, "reset");
    assert_eq!(f.deadline, secs(1).plus_millis(TRANSITORY_MS));
}
