//! behaviour §5: the timers of every profile, exact on the virtual clock (dpservice rounds up to its
//! 5 s aging scan), port holds after close, Azure's missing ICMP, Linux's UDP stream timer,
//! and `poll_timeout` returning the exact next deadline.

mod common;

use common::*;
use natsim::nat::*;
use natsim::time::Instant;
use natsim::wire::PacketRepr;
use natsim::wire::tcp_flags::*;

const S: u64 = 1000;

/// (profile, udp, tcp established, tcp transitory, icmp (None = dropped), hold udp, hold fin,
/// hold rst) in milliseconds, as behaviour §5's table says.
#[allow(clippy::type_complexity)]
const TABLE: [(&str, u64, u64, u64, Option<u64>, u64, u64, u64); 6] = [
    (
        "rfc",
        300 * S,
        7440 * S,
        240 * S,
        Some(60 * S),
        120 * S,
        0,
        0,
    ),
    (
        "dpservice",
        30 * S,
        86_400 * S,
        30 * S,
        Some(30 * S),
        0,
        0,
        0,
    ),
    ("gcp", 30 * S, 1200 * S, 30 * S, Some(30 * S), 0, 120 * S, 0),
    ("aws", 350 * S, 350 * S, 350 * S, Some(350 * S), 0, 0, 0),
    (
        "azure",
        240 * S,
        240 * S,
        30 * S,
        None,
        65 * S,
        65 * S,
        16 * S,
    ),
    (
        "linux",
        30 * S,
        432_000 * S,
        120 * S,
        Some(30 * S),
        0,
        120 * S,
        0,
    ),
];

/// Flows start at this time: not a multiple of 5 s, so dpservice's rounding shows.
const T0_MS: u64 = 1_234;

/// The deadline a profile gives a flow last active at `t_ms` with timeout `timeout_ms`.
fn expected_deadline(name: &str, t_ms: u64, timeout_ms: u64) -> Instant {
    let d = t_ms + timeout_ms;
    if name == "dpservice" {
        ms(d.div_ceil(5 * S) * 5 * S)
    } else {
        ms(d)
    }
}

/// The single live flow is alive 1 ms before `deadline` and gone at it; `poll_timeout` said so.
fn assert_expires_exactly_at(g: &mut Gateway, deadline: Instant, what: &str) {
    assert_eq!(g.poll_timeout(), Some(deadline), "{what}: poll_timeout");
    g.handle_timeout(Instant::from_nanos(deadline.as_nanos() - 1_000_000));
    assert_eq!(live(g).len(), 1, "{what}: expired before {deadline}",);
    g.handle_timeout(deadline);
    assert_eq!(live(g).len(), 0, "{what}: still alive at {deadline}");
}

#[test]
fn every_profile_matches_the_spec_table() {
    for (name, udp_ms, est, trans, icmp, hold_udp, hold_fin, hold_rst) in TABLE {
        let p = profile(name);
        assert_eq!(p.timeout_udp_ms, udp_ms, "{name}");
        assert_eq!(p.timeout_tcp_established_ms, est, "{name}");
        assert_eq!(p.timeout_tcp_transitory_ms, trans, "{name}");
        assert_eq!(p.icmp_supported, icmp.is_some(), "{name}");
        if let Some(i) = icmp {
            assert_eq!(p.timeout_icmp_ms, i, "{name}");
        }
        assert_eq!(p.hold_udp_ms, hold_udp, "{name}");
        assert_eq!(p.hold_tcp_fin_ms, hold_fin, "{name}");
        assert_eq!(p.hold_tcp_rst_ms, hold_rst, "{name}");
        let scope = if name == "rfc" {
            LimitScope::RemoteIp
        } else {
            LimitScope::RemoteEndpoint
        };
        assert_eq!(p.limit_scope, scope, "{name}");
    }
    assert_eq!(profile("linux").timeout_udp_stream_ms, 120 * S);
    assert_eq!(profile("dpservice").aging_scan_period_ms, 5 * S);
}

#[test]
fn udp_flows_expire_exactly_at_each_profiles_udp_timeout() {
    for (name, udp_ms, ..) in TABLE {
        let mut g = gw(name, 64);
        out_ok(&mut g, ms(T0_MS), NIC0, udp((A4, 5000), (R4, 53)));
        let d = expected_deadline(name, T0_MS, udp_ms);
        assert_eq!(live(&g)[0].deadline, d, "{name}");
        assert_expires_exactly_at(&mut g, d, &format!("{name} udp"));
    }
}

#[test]
fn tcp_established_flows_expire_exactly_at_each_profiles_timeout() {
    for (name, _, est, ..) in TABLE {
        let mut g = gw(name, 64);
        let p = syn(&mut g, ms(T0_MS), NIC0, (A4, 5000), (R4, 80));
        let (v, _) = inbound(&mut g, ms(T0_MS), tcp((R4, 80), (NAT4, p), SYN | ACK));
        assert_eq!(v, Verdict::Forward(Egress::Nic(NIC0)));
        out_ok(&mut g, ms(T0_MS), NIC0, tcp((A4, 5000), (R4, 80), ACK));
        assert_eq!(live(&g)[0].state, "established");
        let d = expected_deadline(name, T0_MS, est);
        assert_expires_exactly_at(&mut g, d, &format!("{name} tcp established"));
    }
}

#[test]
fn tcp_opening_flows_expire_exactly_at_each_profiles_transitory_timeout() {
    for (name, _, _, trans, ..) in TABLE {
        let mut g = gw(name, 64);
        syn(&mut g, ms(T0_MS), NIC0, (A4, 5000), (R4, 80));
        let d = expected_deadline(name, T0_MS, trans);
        assert_expires_exactly_at(&mut g, d, &format!("{name} tcp transitory"));
    }
}

#[test]
fn icmp_echo_flows_expire_exactly_at_each_profiles_icmp_timeout() {
    for (name, _, _, _, icmp, ..) in TABLE {
        let mut g = gw(name, 64);
        match icmp {
            Some(i) => {
                out_ok(&mut g, ms(T0_MS), NIC0, ping(A4, R4, 1));
                let d = expected_deadline(name, T0_MS, i);
                assert_expires_exactly_at(&mut g, d, &format!("{name} icmp"));
            }
            None => {
                assert_eq!(
                    out(&mut g, ms(T0_MS), NIC0, ping(A4, R4, 1)),
                    Err(Verdict::Drop(DropReason::UnsupportedIcmp)),
                    "{name} drops ICMP"
                );
                let (v, _) = inbound(&mut g, ms(T0_MS), ping(R4, NAT4, 1));
                assert_eq!(v, Verdict::Drop(DropReason::UnsupportedIcmp));
                assert!(g.flows().is_empty());
            }
        }
    }
}

#[test]
fn udp_port_is_held_after_expiry_per_profile() {
    for (name, udp_ms, _, _, _, hold_udp, ..) in TABLE {
        let mut g = gw(name, 64);
        out_ok(&mut g, ms(T0_MS), NIC0, udp((A4, 5000), (R4, 53)));
        let end = expected_deadline(name, T0_MS, udp_ms);
        g.handle_timeout(end);
        let flows = g.flows();
        if hold_udp == 0 {
            assert!(flows.is_empty(), "{name}: no hold");
        } else {
            assert_eq!(flows.len(), 1, "{name}");
            assert!(!flows[0].live && flows[0].state == "held");
            assert_eq!(flows[0].deadline, end.plus_millis(hold_udp), "{name}");
            assert_eq!(g.poll_timeout(), Some(end.plus_millis(hold_udp)));
            g.handle_timeout(end.plus_millis(hold_udp));
            assert!(g.flows().is_empty());
        }
    }
}

/// Handshake, then `close` (both FINs, or an RST) at T0; returns the gateway.
fn closed_tcp(name: &str, rst: bool) -> Gateway {
    let mut g = gw(name, 64);
    let t = ms(T0_MS);
    let p = syn(&mut g, t, NIC0, (A4, 5000), (R4, 80));
    inbound(&mut g, t, tcp((R4, 80), (NAT4, p), SYN | ACK));
    out_ok(&mut g, t, NIC0, tcp((A4, 5000), (R4, 80), ACK));
    if rst {
        out_ok(&mut g, t, NIC0, tcp((A4, 5000), (R4, 80), RST));
    } else {
        out_ok(&mut g, t, NIC0, tcp((A4, 5000), (R4, 80), FIN | ACK));
        inbound(&mut g, t, tcp((R4, 80), (NAT4, p), FIN | ACK));
    }
    g
}

#[test]
fn tcp_port_is_held_after_close_per_profile() {
    // The hold counts from the close and runs alongside the transitory (or, after an RST, the
    // reset) timer: the port is free at the later of the two ends.
    for (name, _, _, trans, _, _, hold_fin, hold_rst) in TABLE {
        for (rst, hold) in [(false, hold_fin), (true, hold_rst)] {
            let mut g = closed_tcp(name, rst);
            let timer = if rst {
                profile(name).timeout_tcp_reset_ms.unwrap_or(trans)
            } else {
                trans
            };
            let end = expected_deadline(name, T0_MS, timer);
            assert_expires_exactly_at(&mut g, end, &format!("{name} closed rst={rst}"));
            let flows = g.flows();
            let hold_end = ms(T0_MS + hold);
            if hold == 0 || hold_end <= end {
                assert!(flows.is_empty(), "{name} rst={rst}: no hold past {end}");
            } else {
                assert_eq!(flows.len(), 1, "{name} rst={rst}");
                assert_eq!(flows[0].deadline, hold_end, "{name} rst={rst}");
                g.handle_timeout(Instant::from_nanos(hold_end.as_nanos() - 1));
                assert_eq!(g.flows().len(), 1, "{name} rst={rst}: freed early");
                g.handle_timeout(hold_end);
                assert!(g.flows().is_empty());
            }
        }
    }
}

#[test]
fn tcp_port_hold_counts_from_the_close_and_ends_at_the_later_of_hold_and_transitory() {
    // gcp: transitory 30 s, TIME_WAIT hold 120 s. The closing ACK 20 s after the second FIN
    // moves the transitory end to T0 + 50 s; the port is still free at T0 + 120 s (hold from
    // the close), not at T0 + 50 + 120 s (the sum).
    let mut g = closed_tcp("gcp", false);
    out_ok(
        &mut g,
        ms(T0_MS + 20 * S),
        NIC0,
        tcp((A4, 5000), (R4, 80), ACK),
    );
    let trans_end = expected_deadline("gcp", T0_MS + 20 * S, 30 * S);
    assert_expires_exactly_at(&mut g, trans_end, "gcp closed, refreshed");
    assert_eq!(g.flows()[0].deadline, ms(T0_MS + 120 * S));
    g.handle_timeout(ms(T0_MS + 120 * S));
    assert!(g.flows().is_empty(), "port free 120 s after the close");
    // A hold shorter than the transitory timer adds nothing: free when the flow expires.
    let mut p = profile("gcp");
    p.hold_tcp_fin_ms = 10 * S;
    let mut g = build(config(p, 64));
    let t = ms(T0_MS);
    let port = syn(&mut g, t, NIC0, (A4, 5000), (R4, 80));
    inbound(&mut g, t, tcp((R4, 80), (NAT4, port), SYN | ACK));
    out_ok(&mut g, t, NIC0, tcp((A4, 5000), (R4, 80), ACK));
    out_ok(&mut g, t, NIC0, tcp((A4, 5000), (R4, 80), FIN | ACK));
    inbound(&mut g, t, tcp((R4, 80), (NAT4, port), FIN | ACK));
    assert_expires_exactly_at(&mut g, ms(T0_MS + 30 * S), "gcp short hold");
    assert!(g.flows().is_empty());
}

#[test]
fn linux_udp_switches_to_the_stream_timer_after_bidirectional_traffic() {
    let mut g = gw("linux", 64);
    let (_, p) = out_ok(&mut g, secs(1), NIC0, udp((A4, 5000), (R4, 53)));
    assert_eq!(live(&g)[0].deadline, secs(31));
    let (v, _) = inbound(&mut g, secs(2), udp((R4, 53), (NAT4, p)));
    assert_eq!(v, Verdict::Forward(Egress::Nic(NIC0)));
    assert_eq!(live(&g)[0].deadline, secs(122));
    out_ok(&mut g, secs(3), NIC0, udp((A4, 5000), (R4, 53)));
    assert_expires_exactly_at(&mut g, secs(123), "linux udp stream");
}

#[test]
fn udp_inbound_refresh_is_a_profile_option() {
    for refresh in [true, false] {
        let mut p = profile("rfc");
        p.udp_inbound_refresh = refresh;
        let mut g = build(config(p, 64));
        let (_, port) = out_ok(&mut g, secs(0), NIC0, udp((A4, 5000), (R4, 53)));
        inbound(&mut g, secs(100), udp((R4, 53), (NAT4, port)));
        let want = if refresh { secs(400) } else { secs(300) };
        assert_eq!(live(&g)[0].deadline, want, "refresh={refresh}");
        // Outbound packets always refresh.
        out_ok(&mut g, secs(200), NIC0, udp((A4, 5000), (R4, 53)));
        assert_eq!(live(&g)[0].deadline, secs(500));
    }
}

#[test]
fn dpservice_expiry_rounds_up_to_the_aging_scan() {
    let mut g = gw("dpservice", 64);
    out_ok(&mut g, ms(1), NIC0, udp((A4, 5000), (R4, 53)));
    out_ok(&mut g, ms(5_000), NIC0, udp((A4, 5001), (R4, 53)));
    // 30.001 s rounds to 35 s; 35 s is already on the scan grid.
    let d: Vec<_> = live(&g).iter().map(|f| f.deadline).collect();
    assert_eq!(d, vec![secs(35), secs(35)]);
    g.handle_timeout(ms(34_999));
    assert_eq!(live(&g).len(), 2);
    g.handle_timeout(secs(35));
    assert_eq!(live(&g).len(), 0);
}

/// A probe that never refreshes: an ICMP error quoting the flow's translated packet.
fn probe(g: &mut Gateway, t: Instant, translated: &[u8]) -> Verdict {
    let src = PacketRepr::parse(translated).expect("parses").0;
    let mut err = PacketRepr::icmp_error(src.ip.dst, src.ip.src, 3, 0, translated).emit();
    g.process(t, Ingress::Outside, &mut err)
}

#[test]
fn many_flows_of_different_classes_expire_at_their_exact_deadlines_through_process() {
    // Only process() drives the clock: a stale lower bound must never delay an expiry.
    let mut g = gw("rfc", 64);
    let mut cases: Vec<(Instant, Vec<u8>, &str)> = Vec::new();
    let mut go = |g: &mut Gateway, t: Instant, nic: NicId, pkt: Vec<u8>, life_ms: u64, what| {
        let mut b = pkt;
        assert_eq!(
            g.process(t, Ingress::Inside(nic), &mut b),
            Verdict::Forward(Egress::Outside),
            "{what}"
        );
        cases.push((t.plus_millis(life_ms), b, what));
    };
    go(
        &mut g,
        ms(0),
        NIC0,
        udp((A4, 1), (R4, 53)),
        300_000,
        "udp v4",
    );
    go(
        &mut g,
        ms(7),
        NIC1,
        udp((B6, 2), (R6, 53)),
        300_000,
        "udp v6",
    );
    go(&mut g, ms(10), NIC0, ping(A4, R4, 3), 60_000, "icmp v4");
    go(&mut g, ms(13), NIC1, ping(B6, R6, 4), 60_000, "icmp v6");
    go(
        &mut g,
        ms(20),
        NIC0,
        tcp((A4, 5), (R4, 80), SYN),
        240_000,
        "tcp syn v4",
    );
    go(
        &mut g,
        ms(21),
        NIC0,
        tcp((A6, 6), (R6, 80), SYN),
        240_000,
        "tcp syn v6",
    );
    go(
        &mut g,
        ms(500),
        RED,
        udp((A4, 8), (R4B, 53)),
        300_000,
        "udp red",
    );
    go(
        &mut g,
        ms(59_000),
        RED,
        ping(A4, R4B, 7),
        60_000,
        "icmp late",
    );
    cases.sort_by_key(|c| c.0);
    for (deadline, translated, what) in &cases {
        let before = Instant::from_nanos(deadline.as_nanos() - 1_000_000);
        assert!(
            matches!(probe(&mut g, before, translated), Verdict::Forward(_)),
            "{what}: gone before {deadline}"
        );
        assert_eq!(
            probe(&mut g, *deadline, translated),
            Verdict::Drop(DropReason::IcmpErrorNoFlow),
            "{what}: alive at {deadline}"
        );
    }
    assert_eq!(live(&g).len(), 0);
    // The held ports (UDP and ICMP in rfc) end exactly 120 s after their flows.
    let mut holds: Vec<Instant> = cases
        .iter()
        .filter(|c| !c.2.starts_with("tcp"))
        .map(|c| c.0.plus_millis(120_000))
        .filter(|&h| h > g.now())
        .collect();
    assert!(!holds.is_empty());
    holds.sort();
    for h in holds {
        assert_eq!(g.poll_timeout(), Some(h));
        g.handle_timeout(h);
    }
    assert!(g.flows().is_empty());
}

#[test]
fn poll_timeout_returns_the_exact_next_deadline() {
    let mut g = gw("rfc", 64);
    assert_eq!(g.poll_timeout(), None);
    out_ok(&mut g, secs(10), NIC0, udp((A4, 5000), (R4, 53)));
    assert_eq!(g.poll_timeout(), Some(secs(310)));
    out_ok(&mut g, secs(20), NIC0, ping(A6, R6, 1));
    assert_eq!(g.poll_timeout(), Some(secs(80)), "the v6 ICMP flow is next");
    g.handle_timeout(secs(80));
    assert_eq!(g.poll_timeout(), Some(secs(200)), "then its 120 s hold");
    g.handle_timeout(secs(200));
    assert_eq!(g.poll_timeout(), Some(secs(310)));
    g.handle_timeout(secs(310));
    assert_eq!(g.poll_timeout(), Some(secs(430)));
    g.handle_timeout(secs(430));
    assert_eq!(g.poll_timeout(), None);
    assert!(g.flows().is_empty());
}

/// `poll_wakeup` never answers later than `poll_timeout` (so a driver waking on it misses no
/// expiry), may answer earlier after a refresh (the stale timer entry), and waking then is a
/// harmless no-op that moves it on to the real deadline.
#[test]
fn poll_wakeup_is_a_lower_bound_and_spurious_wakeups_are_harmless() {
    let mut g = gw("rfc", 64);
    assert_eq!(g.poll_wakeup(), None);
    out_ok(&mut g, secs(10), NIC0, udp((A4, 5000), (R4, 53)));
    assert_eq!(g.poll_wakeup(), Some(secs(310)));
    // The refresh moves the real deadline to 350 s; the stale entry still says 310 s.
    out_ok(&mut g, secs(50), NIC0, udp((A4, 5000), (R4, 53)));
    assert_eq!(g.poll_wakeup(), Some(secs(310)));
    g.handle_timeout(secs(310));
    assert!(g.flows()[0].live, "nothing expires at the stale time");
    assert_eq!(g.poll_wakeup(), Some(secs(350)));
    assert_eq!(g.poll_timeout(), Some(secs(350)));
    g.handle_timeout(secs(350));
    assert!(
        g.flows().iter().all(|f| !f.live),
        "expired exactly at the real deadline"
    );
    assert_eq!(g.poll_wakeup(), g.poll_timeout(), "then the hold's end");
}
