//! The invariant checker on later fragments (which carry no ports): a later fragment delivered
//! to a NIC must belong to a live flow of that NIC, matched by remote and NAT address.

use std::net::{IpAddr, SocketAddr};

use natsim::check::InvariantChecker;
use natsim::nat::{Block, Egress, Ingress, NicId, Profile, Verdict};
use natsim::sim::ipfrag::fragment;
use natsim::sim::observe::{NicInfo, Observation, Observer, Violation};
use natsim::sim::packet::build_udp_len;
use natsim::time::Instant;

const NAT: &str = "203.0.113.1";
const REMOTE: &str = "198.51.100.10";

fn ip(s: &str) -> IpAddr {
    s.parse().expect("address")
}

fn sa(s: &str) -> SocketAddr {
    s.parse().expect("endpoint")
}

fn udp(src: &str, dst: &str, payload: usize) -> Vec<u8> {
    let mut b = Vec::new();
    build_udp_len(&mut b, sa(src), sa(dst), payload);
    b
}

/// The later fragments of a datagram (identification 5).
fn later_fragments(pkt: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    fragment(pkt, 1500, Some(5), &mut out).expect("fragments");
    out.split_off(1)
}

/// Two NICs with blocks; NIC 0 has a UDP flow 10.0.0.1:4000 -> REMOTE:53 as NAT:1024.
fn checker_with_flow() -> InvariantChecker {
    let mut c = InvariantChecker::new(Profile::default());
    let mut i = 0;
    let mut feed = |c: &mut InvariantChecker, o: Observation<'_>| {
        i += 1;
        c.observe(i, Instant::ZERO, &o)
            .expect("no violation while setting up");
    };
    for (n, addr, port) in [(0u32, "10.0.0.1", 1024u16), (1, "10.0.0.2", 1088)] {
        let info = NicInfo {
            id: NicId(n),
            name: format!("vm-{n}"),
            network: 0,
            addresses: vec![ip(addr)],
            node: 0,
        };
        feed(&mut c, Observation::NicUpdated(&info));
        let block = Block {
            nat_ip: ip(NAT),
            port,
            end_port: port + 63,
        };
        feed(
            &mut c,
            Observation::BlockAssigned {
                nic: NicId(n),
                block,
            },
        );
    }
    let before = udp("10.0.0.1:4000", &format!("{REMOTE}:53"), 16);
    let after = udp(&format!("{NAT}:1024"), &format!("{REMOTE}:53"), 16);
    feed(
        &mut c,
        Observation::Processed {
            node: 0,
            ingress: Ingress::Inside(NicId(0)),
            before: &before,
            verdict: Verdict::Forward(Egress::Outside),
            after: &after,
        },
    );
    c
}

fn deliver(
    c: &mut InvariantChecker,
    to: u32,
    before: &[u8],
    after: &[u8],
) -> Result<(), Violation> {
    c.observe(
        100,
        Instant::ZERO,
        &Observation::Processed {
            node: 0,
            ingress: Ingress::Outside,
            before,
            verdict: Verdict::Forward(Egress::Nic(NicId(to))),
            after,
        },
    )
}

#[test]
fn later_fragment_of_a_live_flow_delivered_to_its_nic_passes() {
    let mut c = checker_with_flow();
    let before = later_fragments(&udp(&format!("{REMOTE}:53"), &format!("{NAT}:1024"), 3000));
    let after = later_fragments(&udp(&format!("{REMOTE}:53"), "10.0.0.1:4000", 3000));
    for (b, a) in before.iter().zip(&after) {
        deliver(&mut c, 0, b, a).expect("a reply's later fragment");
    }
}

#[test]
fn later_fragment_from_a_stranger_is_inbound_initiation() {
    let mut c = checker_with_flow();
    let before = later_fragments(&udp("192.0.2.66:53", &format!("{NAT}:1024"), 3000));
    let after = later_fragments(&udp("192.0.2.66:53", "10.0.0.1:4000", 3000));
    let v = deliver(&mut c, 0, &before[0], &after[0]).expect_err("caught");
    assert_eq!(v.invariant.name(), "no-inbound-initiation");
}

#[test]
fn later_fragment_delivered_to_another_nic_breaks_isolation() {
    let mut c = checker_with_flow();
    let before = later_fragments(&udp(&format!("{REMOTE}:53"), &format!("{NAT}:1024"), 3000));
    let after = later_fragments(&udp(&format!("{REMOTE}:53"), "10.0.0.2:4000", 3000));
    let v = deliver(&mut c, 1, &before[0], &after[0]).expect_err("caught");
    assert_eq!(v.invariant.name(), "isolation");
}
