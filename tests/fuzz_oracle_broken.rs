//! The fuzz oracle (`natsim::fuzzing::oracle`) is the shared behaviour §6 checker plus its
//! single-gateway extras, and it drives any dataplane: each test runs one short script of steps
//! against a deliberately broken gateway (`check::broken`) and against the real gateway, and
//! asserts that the broken one is caught, by the invariant that should catch it, while the real
//! one passes the very same script.

use std::net::{IpAddr, Ipv4Addr};

use natsim::check::broken::Breakage;
use natsim::fuzzing::oracle::{FIXTURE_FLOWS, Fixture, NAT_V4, fixture_outbound};
use natsim::fuzzing::{Control, Violation};
use natsim::nat::{Family, FlowInfo, Ingress, NicId};
use natsim::sim::dataplane::{DataplaneFactory, real_gateway};
use natsim::wire::{PacketRepr, proto};

type Script = fn(&mut Fixture) -> Result<(), Violation>;

/// Runs `script` on the fixture (config byte 0: the `rfc` profile) over `factory`'s dataplane;
/// the error names the invariant (a setup failure reads as `setup: ...`).
fn run(factory: &DataplaneFactory, script: Script) -> Result<(), String> {
    let mut f = Fixture::on(0, factory).map_err(|e| format!("setup: {e}"))?;
    script(&mut f).map_err(|v| v.to_string())
}

/// The real gateway passes the script; `breakage` fails it with `invariant`.
fn caught(breakage: Breakage, invariant: &str, script: Script) {
    if let Err(e) = run(&real_gateway, script) {
        panic!("the real gateway fails the script for {breakage:?}: {e}");
    }
    let broken = breakage.factory();
    match run(broken.as_ref(), script) {
        Ok(()) => panic!("the oracle did not catch {breakage:?}"),
        Err(e) => assert!(
            e.contains(&format!("invariant {invariant} violated")),
            "{breakage:?} caught, but not as {invariant}: {e}"
        ),
    }
}

/// NIC 0's IPv4 flow of `protocol`.
fn flow_of(f: &Fixture, protocol: u8) -> FlowInfo {
    f.checker()
        .dataplane()
        .flows()
        .into_iter()
        .find(|x| x.flow.nic == NicId(0) && x.flow.protocol == protocol && x.flow.nat.is_ipv4())
        .expect("the fixture opens it")
}

/// The remote's answer to a UDP flow, as it arrives at the NAT endpoint.
fn udp_reply(flow: &FlowInfo) -> Vec<u8> {
    let (remote, nat) = (flow.flow.remote, flow.flow.nat);
    PacketRepr::udp(
        (remote.ip(), remote.port()),
        (nat.ip(), nat.port()),
        b"answer",
    )
    .emit()
}

fn reply_to_udp_flow(f: &mut Fixture) -> Result<(), Violation> {
    let reply = udp_reply(&flow_of(f, proto::UDP));
    f.checker_mut().packet(Ingress::Outside, reply).map(|_| ())
}

#[test]
fn fuzz_oracle_catches_a_leaky_filter() {
    fn unsolicited(f: &mut Fixture) -> Result<(), Violation> {
        let stranger = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 66));
        let pkt = PacketRepr::udp((stranger, 4000), (IpAddr::V4(NAT_V4), 1030), b"knock").emit();
        f.checker_mut().packet(Ingress::Outside, pkt).map(|_| ())
    }
    caught(
        Breakage::LeakyFilter { port: 1030 },
        "no-inbound-initiation",
        unsolicited,
    );
}

#[test]
fn fuzz_oracle_catches_replies_to_the_wrong_nic() {
    caught(Breakage::ReplyToWrongNic, "isolation", reply_to_udp_flow);
}

#[test]
fn fuzz_oracle_catches_bad_checksums() {
    // The fixture's own opening packets already leave with a broken checksum.
    let broken = Breakage::BadChecksum.factory();
    let err = run(broken.as_ref(), |_| Ok(())).expect_err("caught during setup");
    assert!(err.contains("invariant wire-validity violated"), "{err}");
    assert_eq!(run(&real_gateway, |_| Ok(())), Ok(()));
}

#[test]
fn fuzz_oracle_catches_an_unstable_mapping() {
    fn resend(f: &mut Fixture) -> Result<(), Violation> {
        let (p, iport, remote, rport) = FIXTURE_FLOWS[1];
        for _ in 0..4 {
            let pkt = fixture_outbound(false, p, iport, remote, rport);
            f.checker_mut().packet(Ingress::Inside(NicId(0)), pkt)?;
        }
        Ok(())
    }
    caught(Breakage::UnstableMapping, "mapping-stability", resend);
}

#[test]
fn fuzz_oracle_catches_flows_that_outlive_their_block() {
    fn release_then_reply(f: &mut Fixture) -> Result<(), Violation> {
        let reply = udp_reply(&flow_of(f, proto::UDP));
        let c = f.checker_mut();
        c.control(Control::ReleaseBlock(NicId(0), Family::V4))?;
        c.packet(Ingress::Outside, reply).map(|_| ())
    }
    // The flow-table extra sees the stale flows at the release itself, before any reply: a
    // tracked flow outside its NIC's (now absent) block is a port-limit violation.
    caught(
        Breakage::StaleFlowAfterBlockLoss,
        "port-limit",
        release_then_reply,
    );
}

#[test]
fn fuzz_oracle_catches_an_allocator_that_evicts_live_flows() {
    fn exhaust(f: &mut Fixture) -> Result<(), Violation> {
        // NIC 0 already has a UDP flow to this remote endpoint; eight more inside ports need
        // more than the block's eight ports, so the last one must be refused.
        let (p, _, remote, rport) = FIXTURE_FLOWS[1];
        for iport in 6000..6008 {
            let pkt = fixture_outbound(false, p, iport, remote, rport);
            f.checker_mut().packet(Ingress::Inside(NicId(0)), pkt)?;
        }
        Ok(())
    }
    caught(Breakage::EvictingAllocator, "timers", exhaust);
}

/// docs/behaviour.md §4 "TTL" and §6 invariant 10: under a router-hop profile a live flow's
/// reply that would reach the inside with TTL 0 is answered with Time Exceeded, not forwarded.
/// That answer is the hop's refusal, not an unsolicited drop, so liveness must accept it (the
/// fuzz find `fuzz/artifacts/gateway_packet/crash-liveness-ttl0-reply-*` was this model gap),
/// and the flow stays live for the next reply.
#[test]
fn a_live_flows_reply_with_ttl_0_answered_with_time_exceeded_is_no_liveness_violation() {
    // Config byte 5: the `linux` profile, which decrements TTL.
    let mut f = Fixture::on(5, &real_gateway).expect("fixture");
    let flow = flow_of(&f, proto::UDP);
    for ttl in [0u8, 1] {
        let mut reply = udp_reply(&flow);
        reply[8] = ttl;
        natsim::fuzzing::fix_checksums(&mut reply);
        let (verdict, answer) = f
            .checker_mut()
            .packet(Ingress::Outside, reply)
            .unwrap_or_else(|v| panic!("TTL {ttl}: {v}"));
        assert!(
            matches!(verdict, natsim::nat::Verdict::Respond(_)),
            "TTL {ttl}: {verdict:?}"
        );
        assert_eq!(answer[20], 11, "TTL {ttl}: a Time Exceeded answers it");
    }
    let (verdict, _) = f
        .checker_mut()
        .packet(Ingress::Outside, udp_reply(&flow))
        .unwrap_or_else(|v| panic!("{v}"));
    assert!(
        matches!(verdict, natsim::nat::Verdict::Forward(_)),
        "{verdict:?}"
    );
}

/// A gateway that answers a live UDP flow's replies with Time Exceeded although they arrive
/// with hops to spare (TTL 64).
struct TimeExceededForEveryReply(Box<dyn natsim::sim::dataplane::Dataplane>);

impl natsim::sim::dataplane::Wrapper for TimeExceededForEveryReply {
    fn inner(&self) -> &dyn natsim::sim::dataplane::Dataplane {
        self.0.as_ref()
    }
    fn inner_mut(&mut self) -> &mut dyn natsim::sim::dataplane::Dataplane {
        self.0.as_mut()
    }
    fn process(
        &mut self,
        now: natsim::time::Instant,
        ingress: Ingress,
        pkt: &mut Vec<u8>,
    ) -> natsim::nat::Verdict {
        let v = self.0.process(now, ingress, pkt);
        if ingress == Ingress::Outside && matches!(v, natsim::nat::Verdict::Forward(_)) {
            let quoted = pkt.clone();
            let from = IpAddr::V4(NAT_V4);
            let to = IpAddr::V4(Ipv4Addr::new(
                quoted[12], quoted[13], quoted[14], quoted[15],
            ));
            *pkt = PacketRepr::icmp_error(from, to, 11, 0, &quoted).emit();
            return natsim::nat::Verdict::Respond(natsim::nat::Egress::Outside);
        }
        v
    }
}

/// docs/behaviour.md §4 "TTL" and §6 invariant 10: only a packet that would reach the inside
/// with TTL 0 may be refused with Time Exceeded. The same answer to a live flow's reply that
/// arrived with TTL 64 is a wrongful drop, and liveness catches it.
#[test]
fn liveness_catches_time_exceeded_for_a_reply_with_hops_to_spare() {
    let factory = |cfg| {
        real_gateway(cfg).map(|g| {
            Box::new(TimeExceededForEveryReply(g)) as Box<dyn natsim::sim::dataplane::Dataplane>
        })
    };
    // Config byte 5: the `linux` profile, which decrements TTL.
    let mut f = Fixture::on(5, &factory).expect("fixture");
    let reply = udp_reply(&flow_of(&f, proto::UDP));
    match f.checker_mut().packet(Ingress::Outside, reply) {
        Ok((v, _)) => panic!("not caught: {v:?}"),
        Err(v) => assert!(v.to_string().contains("invariant liveness violated"), "{v}"),
    }
}
