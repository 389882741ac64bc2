//! Seed inputs for the fuzz targets, built from typed values so they stay valid when the packet
//! layer changes. `tests/fuzz_corpus.rs` checks that `fuzz/corpus/<target>/seed-*` files equal
//! what these functions produce, and rewrites them with `NATSIM_WRITE_FUZZ_SEEDS=1`; seeds taken
//! from capture files are added there (this module does no file I/O).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::ops::{GatewayOpsConfig, Op, encode_input};
use super::oracle::{FIXTURE_P, Fixture, INSIDE_V4, INSIDE_V6, NAT_V4, REMOTE_V4};
use super::world::{Extra, ExtraKind, WorldInput};
use crate::nat::FlowInfo;
use crate::swarm::{Families, Features};
use crate::wire::tcp_flags::{ACK, FIN, PSH, RST, SYN};
use crate::wire::{FragmentRepr, IcmpRepr, IpRepr, PacketRepr, TransportRepr, proto};

/// A named seed.
pub type Seed = (String, Vec<u8>);

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

fn v6(last: u16) -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, last))
}

/// Hand-made packets of every kind the packet layer distinguishes.
pub fn packets() -> Vec<Seed> {
    let (a4, b4) = (v4(10, 0, 0, 1), v4(198, 51, 100, 1));
    let (a6, b6) = (IpAddr::V6(INSIDE_V6), v6(1));
    let mut out: Vec<Seed> = Vec::new();
    let mut frags: Vec<Seed> = Vec::new();
    let mut add = |name: &str, p: PacketRepr| out.push((name.to_string(), p.emit()));
    for (fam, a, b) in [("v4", a4, b4), ("v6", a6, b6)] {
        let mut syn = PacketRepr::tcp((a, 40000), (b, 443), SYN, 1, 0, b"");
        if let TransportRepr::Tcp { options, .. } = &mut syn.transport {
            // MSS 1460, SACK permitted, window scale 7.
            *options = vec![2, 4, 5, 180, 4, 2, 1, 3, 3, 7];
        }
        add(&format!("{fam}-tcp-syn-options"), syn);
        add(
            &format!("{fam}-tcp-data"),
            PacketRepr::tcp((b, 443), (a, 40000), PSH | ACK, 7, 2, b"hello"),
        );
        add(
            &format!("{fam}-tcp-fin"),
            PacketRepr::tcp((a, 40000), (b, 443), FIN | ACK, 2, 8, b""),
        );
        add(
            &format!("{fam}-tcp-rst"),
            PacketRepr::tcp((b, 443), (a, 40000), RST, 8, 0, b""),
        );
        add(
            &format!("{fam}-udp"),
            PacketRepr::udp((a, 5353), (b, 53), b"\x12\x34\x01\x00\x00\x01"),
        );
        add(
            &format!("{fam}-echo-request"),
            PacketRepr::echo_request(a, b, 7, 1, b"ping"),
        );
        add(
            &format!("{fam}-echo-reply"),
            PacketRepr::echo_reply(b, a, 7, 1, b"pong"),
        );
        let quoted = PacketRepr::udp((a, 5353), (b, 53), b"query").emit();
        let (t, c) = if fam == "v4" { (3, 3) } else { (1, 4) };
        add(
            &format!("{fam}-icmp-error-udp"),
            PacketRepr::icmp_error(b, a, t, c, &quoted),
        );
        let quoted_tcp = PacketRepr::tcp((a, 40000), (b, 443), SYN, 1, 0, b"").emit();
        let (t, c) = if fam == "v4" { (11, 0) } else { (3, 0) };
        add(
            &format!("{fam}-icmp-error-tcp-truncated"),
            PacketRepr::icmp_error(b, a, t, c, &quoted_tcp[..quoted_tcp.len() - 12]),
        );
        let quoted_echo = PacketRepr::echo_request(a, b, 7, 1, b"ping").emit();
        let (t, c) = if fam == "v4" { (3, 1) } else { (1, 0) };
        add(
            &format!("{fam}-icmp-error-echo"),
            PacketRepr::icmp_error(b, a, t, c, &quoted_echo),
        );
        add(
            &format!("{fam}-icmp-other"),
            PacketRepr {
                ip: IpRepr::new(b, a),
                transport: TransportRepr::Icmp(IcmpRepr::Other {
                    icmp_type: if fam == "v4" { 13 } else { 135 },
                    code: 0,
                    body: vec![0; 16],
                }),
            },
        );
        add(
            &format!("{fam}-gre"),
            PacketRepr {
                ip: IpRepr::new(a, b),
                transport: TransportRepr::Raw {
                    protocol: 47,
                    payload: vec![0, 0, 0x08, 0],
                },
            },
        );
        let big = PacketRepr::udp((a, 5353), (b, 53), &[0x55; 120]);
        for (i, f) in big.emit_fragments(48).into_iter().enumerate() {
            frags.push((format!("{fam}-udp-fragment-{i}"), f));
        }
    }
    out.append(&mut frags);
    let mut zero = PacketRepr::udp((a4, 5353), (b4, 53), b"no checksum");
    if let TransportRepr::Udp { zero_checksum, .. } = &mut zero.transport {
        *zero_checksum = true;
    }
    out.push(("v4-udp-zero-checksum".into(), zero.emit()));
    let mut opts = PacketRepr::udp((a4, 5353), (b4, 53), b"options");
    // Record route with room for two addresses.
    opts.ip.options = vec![7, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0];
    opts.ip.dont_fragment = true;
    out.push(("v4-ip-options".into(), opts.emit()));
    let mut hbh = PacketRepr::udp((a6, 5353), (b6, 53), b"hop-by-hop");
    // Router alert (MLD).
    hbh.ip.options = vec![5, 2, 0, 0];
    out.push(("v6-hop-by-hop".into(), hbh.emit()));
    let mut atomic = PacketRepr::udp((a6, 5353), (b6, 53), b"atomic");
    atomic.ip.fragment = Some(FragmentRepr {
        offset_bytes: 0,
        more: false,
    });
    atomic.ip.ident = 0x1234_5678;
    out.push(("v6-atomic-fragment".into(), atomic.emit()));
    out
}

/// Appends one `gateway_packet` record.
pub fn packet_record(out: &mut Vec<u8>, flags: u8, pkt: &[u8]) {
    let len = pkt.len().min(usize::from(u16::MAX));
    out.push(flags);
    out.extend_from_slice(&(len as u16).to_be_bytes());
    out.extend_from_slice(&pkt[..len]);
}

/// `gateway_packet` flag bit: from outside.
const OUTSIDE: u8 = 1;
/// `gateway_packet` flag bit: NIC 1.
const NIC1: u8 = 2;
/// `gateway_packet` flag bit: fix checksums.
const FIX: u8 = 4;

fn reply_to(f: &FlowInfo, flags: u8, data: &[u8]) -> PacketRepr {
    let v = f.flow;
    match v.protocol {
        proto::TCP => PacketRepr::tcp(
            (v.remote.ip(), v.remote.port()),
            (v.nat.ip(), v.nat.port()),
            flags,
            100,
            2,
            data,
        ),
        proto::UDP => PacketRepr::udp(
            (v.remote.ip(), v.remote.port()),
            (v.nat.ip(), v.nat.port()),
            data,
        ),
        _ => PacketRepr::echo_reply(v.remote.ip(), v.nat.ip(), v.nat.port(), 1, data),
    }
}

/// What the remote received from the NAT for flow `f` (quoted in inbound ICMP errors).
fn translated(f: &FlowInfo) -> PacketRepr {
    let v = f.flow;
    match v.protocol {
        proto::TCP => PacketRepr::tcp(
            (v.nat.ip(), v.nat.port()),
            (v.remote.ip(), v.remote.port()),
            SYN,
            1,
            0,
            b"",
        ),
        proto::UDP => PacketRepr::udp(
            (v.nat.ip(), v.nat.port()),
            (v.remote.ip(), v.remote.port()),
            b"query",
        ),
        _ => PacketRepr::echo_request(v.nat.ip(), v.remote.ip(), v.nat.port(), 1, b"ping"),
    }
}

/// `gateway_packet` seeds: for several config bytes, replies to the fixture's flows, ICMP errors
/// both ways, hairpins, fragments, unsolicited packets and a packet that needs its checksums
/// fixed.
pub fn gateway_packet() -> Vec<Seed> {
    let mut out = Vec::new();
    // rfc, dpservice, gcp+unreachable, aws+last-port quirk, azure, linux.
    for config in [0u8, 1, 2 | 0x08 | 0x10, 3 | 0x20, 4, 5] {
        let fixture = Fixture::new(config);
        let flows = fixture.checker().dataplane().flows();
        let nic_flag = |f: &FlowInfo| if f.flow.nic.0 == 1 { NIC1 } else { 0 };
        let mut replies = vec![config];
        let mut errors = vec![config];
        for f in &flows {
            let flags = if f.flow.protocol == proto::TCP {
                SYN | ACK
            } else {
                0
            };
            packet_record(&mut replies, OUTSIDE, &reply_to(f, flags, b"answer").emit());
            let quoted = translated(f).emit();
            let (t, c) = if f.flow.nat.is_ipv4() { (3, 3) } else { (1, 4) };
            let err = PacketRepr::icmp_error(f.flow.remote.ip(), f.flow.nat.ip(), t, c, &quoted);
            packet_record(&mut errors, OUTSIDE | 8, &err.emit());
            // The inside host's error about the reply it got (RFC 5508 REQ-5).
            let got = reply_to(f, SYN | ACK, b"answer");
            let mut got_inside = got.clone();
            got_inside.ip.dst = f.flow.inside.ip();
            match &mut got_inside.transport {
                TransportRepr::Tcp { dst_port, .. } | TransportRepr::Udp { dst_port, .. } => {
                    *dst_port = f.flow.inside.port()
                }
                TransportRepr::Icmp(IcmpRepr::EchoReply { ident, .. }) => {
                    *ident = f.flow.inside.port()
                }
                _ => {}
            }
            let back = PacketRepr::icmp_error(
                f.flow.inside.ip(),
                f.flow.remote.ip(),
                t,
                c,
                &got_inside.emit(),
            );
            packet_record(&mut errors, nic_flag(f), &back.emit());
        }
        out.push((format!("replies-{config:02x}"), replies));
        out.push((format!("icmp-errors-{config:02x}"), errors));
    }
    // A TCP handshake finishing, data both ways, close, then a late reply after the timers.
    let fixture = Fixture::new(0);
    let flows = fixture.checker().dataplane().flows();
    if let Some(tcp) = flows.iter().find(|f| f.flow.protocol == proto::TCP) {
        let mut s = vec![0];
        let inside = (tcp.flow.inside.ip(), tcp.flow.inside.port());
        let remote = (tcp.flow.remote.ip(), tcp.flow.remote.port());
        packet_record(&mut s, OUTSIDE, &reply_to(tcp, SYN | ACK, b"").emit());
        packet_record(
            &mut s,
            0,
            &PacketRepr::tcp(inside, remote, ACK, 2, 101, b"").emit(),
        );
        packet_record(&mut s, OUTSIDE, &reply_to(tcp, PSH | ACK, b"data").emit());
        packet_record(
            &mut s,
            0,
            &PacketRepr::tcp(inside, remote, FIN | ACK, 2, 105, b"").emit(),
        );
        packet_record(&mut s, OUTSIDE, &reply_to(tcp, FIN | ACK, b"").emit());
        packet_record(&mut s, OUTSIDE | 0xf8, &reply_to(tcp, ACK, b"late").emit());
        out.push(("tcp-session".into(), s));
    }
    let mut s = vec![0];
    // Unsolicited: to the NAT IP on a port of the block with no flow, and an echo request to the
    // NAT IP itself (answered by the gateway in the rfc profile).
    let nat = IpAddr::V4(NAT_V4);
    let stranger = v4(192, 0, 2, 99);
    packet_record(
        &mut s,
        OUTSIDE,
        &PacketRepr::udp((stranger, 53), (nat, 1024 + FIXTURE_P - 1), b"x").emit(),
    );
    packet_record(
        &mut s,
        OUTSIDE,
        &PacketRepr::tcp((stranger, 80), (nat, 1025), SYN, 5, 0, b"").emit(),
    );
    packet_record(
        &mut s,
        OUTSIDE,
        &PacketRepr::echo_request(stranger, nat, 99, 1, b"hi").emit(),
    );
    // Hairpin: NIC 1 sends to NIC 0's UDP flow's NAT endpoint.
    if let Some(udp) = flows
        .iter()
        .find(|f| f.flow.protocol == proto::UDP && f.flow.nic.0 == 0 && f.flow.nat.is_ipv4())
    {
        packet_record(
            &mut s,
            NIC1,
            &PacketRepr::udp(
                (IpAddr::V4(INSIDE_V4), 6000),
                (udp.flow.nat.ip(), udp.flow.nat.port()),
                b"hairpin",
            )
            .emit(),
        );
    }
    // Pass-through inside the network, and a packet whose checksums the harness fixes.
    packet_record(
        &mut s,
        0,
        &PacketRepr::udp((IpAddr::V4(INSIDE_V4), 1), (v4(10, 0, 0, 9), 2), b"local").emit(),
    );
    let mut broken = PacketRepr::udp(
        (IpAddr::V4(INSIDE_V4), 5353),
        (IpAddr::V4(REMOTE_V4[0]), 53),
        b"fix me",
    )
    .emit();
    broken[10] ^= 0xff;
    packet_record(&mut s, FIX, &broken);
    out.push(("mixed".into(), s));
    // A fragmented reply to each UDP flow, out of order.
    let mut s = vec![0];
    for f in flows.iter().filter(|f| f.flow.protocol == proto::UDP) {
        let mut frags = reply_to(f, 0, &[0x42; 100]).emit_fragments(32);
        frags.reverse();
        for p in frags {
            packet_record(&mut s, OUTSIDE, &p);
        }
    }
    out.push(("fragments".into(), s));
    out
}

/// `gateway_ops` seeds: short scenarios that reach each area of the gateway.
pub fn gateway_ops() -> Vec<Seed> {
    let cfg = |profile: u8, p: u16| GatewayOpsConfig {
        profile,
        ports_per_nic: p,
    };
    let out_op = |nic, v6, proto, iport, remote, rport, flags| Op::Out {
        nic,
        v6,
        proto,
        iport,
        remote,
        rport,
        flags,
        len: 4,
    };
    let tcp_session = vec![
        out_op(0, 0, 0, 2, 0, 2, SYN),
        Op::Reply {
            flow: 0,
            flags: SYN | ACK,
            mutate: 0,
        },
        out_op(0, 0, 0, 2, 0, 2, ACK),
        Op::Reply {
            flow: 0,
            flags: PSH | ACK,
            mutate: 0,
        },
        Op::Reply {
            flow: 0,
            flags: ACK,
            mutate: 1,
        },
        out_op(0, 0, 0, 2, 0, 2, FIN | ACK),
        Op::Reply {
            flow: 0,
            flags: FIN | ACK,
            mutate: 0,
        },
        Op::Advance {
            step: 12,
            timeout: 1,
        },
        Op::Reply {
            flow: 0,
            flags: ACK,
            mutate: 0,
        },
        Op::PollTimeout,
    ];
    let exhaustion = vec![
        out_op(0, 0, 1, 0, 0, 0, 0),
        out_op(0, 0, 1, 1, 0, 0, 0),
        out_op(0, 0, 1, 2, 0, 0, 0),
        out_op(0, 0, 1, 3, 0, 1, 0),
        out_op(0, 0, 1, 4, 1, 0, 0),
        out_op(1, 0, 1, 0, 0, 0, 0),
        Op::Reply {
            flow: 1,
            flags: 0,
            mutate: 0,
        },
        Op::Advance {
            step: 13,
            timeout: 0,
        },
        out_op(0, 0, 1, 2, 0, 0, 0),
        Op::Advance {
            step: 11,
            timeout: 1,
        },
        out_op(0, 0, 1, 2, 0, 0, 0),
    ];
    let icmp = vec![
        out_op(0, 0, 1, 4, 0, 0, 0),
        out_op(2, 1, 0, 2, 1, 2, SYN),
        out_op(1, 0, 2, 7, 0, 0, 0),
        Op::IcmpErrorIn {
            flow: 0,
            kind: 1,
            quote: 0,
            mutate: 0,
        },
        Op::IcmpErrorIn {
            flow: 1,
            kind: 3,
            quote: 1,
            mutate: 1,
        },
        Op::IcmpErrorIn {
            flow: 2,
            kind: 0x10,
            quote: 2,
            mutate: 2,
        },
        Op::IcmpErrorOut {
            flow: 0,
            kind: 1,
            quote: 0,
            mutate: 0,
        },
        Op::IcmpErrorOut {
            flow: 2,
            kind: 0,
            quote: 1,
            mutate: 0,
        },
        Op::Reply {
            flow: 2,
            flags: 0,
            mutate: 0,
        },
        Op::Unsolicited {
            v6: 0,
            src: 2,
            nat: 0,
            port: 1024,
            proto: 2,
            flags: 1,
        },
    ];
    let blocks = vec![
        out_op(0, 0, 1, 0, 0, 0, 0),
        out_op(0, 1, 1, 0, 0, 0, 0),
        out_op(1, 0, 0, 2, 1, 1, SYN),
        Op::ReleaseBlock { nic: 0, v6: 0 },
        Op::Reply {
            flow: 0,
            flags: 0,
            mutate: 0,
        },
        Op::AssignBlock {
            nic: 0,
            v6: 0,
            nat: 1,
            slot: 3,
        },
        Op::AssignBlock {
            nic: 0,
            v6: 0,
            nat: 0,
            slot: 1,
        },
        // Misaligned (overlapping) blocks: refused while another NIC holds the ports.
        Op::AssignBlock {
            nic: 2,
            v6: 0,
            nat: 0,
            slot: 4,
        },
        Op::AssignBlock {
            nic: 1,
            v6: 1,
            nat: 1,
            slot: 4,
        },
        out_op(0, 0, 1, 0, 0, 0, 0),
        Op::ToggleNic { nic: 1 },
        Op::Reply {
            flow: 1,
            flags: ACK,
            mutate: 0,
        },
        Op::ToggleNic { nic: 1 },
        Op::AssignBlock {
            nic: 1,
            v6: 0,
            nat: 1,
            slot: 0,
        },
        out_op(1, 0, 2, 1, 0, 0, 0),
    ];
    let hairpin = vec![
        out_op(0, 0, 1, 4, 3, 3, 0),
        out_op(1, 0, 1, 0, 3, 3, 0),
        Op::Hairpin {
            nic: 1,
            flow: 0,
            iport: 0,
        },
        Op::Hairpin {
            nic: 0,
            flow: 1,
            iport: 4,
        },
        out_op(0, 0, 1, 0, 5, 0, 0),
    ];
    let fragments = vec![
        Op::FragmentsOut {
            nic: 0,
            v6: 0,
            proto: 1,
            iport: 0,
            remote: 0,
            rport: 0,
            chunk: 3,
            order: 0,
        },
        Op::FragmentsOut {
            nic: 1,
            v6: 1,
            proto: 0,
            iport: 1,
            remote: 1,
            rport: 1,
            chunk: 5,
            order: 1,
        },
        Op::FragmentsIn {
            flow: 0,
            chunk: 2,
            order: 1,
        },
        Op::FragmentsIn {
            flow: 1,
            chunk: 4,
            order: 8,
        },
        Op::FragmentsOut {
            nic: 2,
            v6: 0,
            proto: 2,
            iport: 7,
            remote: 2,
            rport: 0,
            chunk: 0,
            order: 6,
        },
        Op::Advance {
            step: 8,
            timeout: 1,
        },
    ];
    let raw = vec![Op::Raw {
        outside: 1,
        nic: 0,
        fix: 1,
        bytes: PacketRepr::udp(
            (IpAddr::V4(REMOTE_V4[0]), 53),
            (IpAddr::V4(super::ops::NAT_V4[0]), 1024),
            b"raw",
        )
        .emit(),
    }];
    let mut seeds = Vec::new();
    for (name, ops) in [
        ("tcp-session", &tcp_session),
        ("exhaustion", &exhaustion),
        ("icmp", &icmp),
        ("blocks", &blocks),
        ("hairpin", &hairpin),
        ("fragments", &fragments),
        ("raw", &raw),
    ] {
        for (profile, p) in [(0u8, 2u16), (1, 1), (5 | 0x20, 4), (4 | 0x18, 8)] {
            seeds.push((
                format!("{name}-{profile:02x}-p{p}"),
                encode_input(cfg(profile, p), ops),
            ));
        }
    }
    seeds
}

/// The feature mask with the named switches on ([`Features::NAMES`]).
fn mask_of(names: &[&str]) -> u32 {
    Features::NAMES
        .iter()
        .enumerate()
        .filter(|(_, n)| names.contains(n))
        .fold(0, |m, (i, _)| m | 1 << i)
}

/// `sim_world` seeds: small worlds covering the feature groups (protocols, inside and outside
/// clients, adversaries, faults and control-plane churn, both families), one with extra
/// adversary items. None trips the `leaky-filter` dataplane (`tests/fuzz_corpus.rs` checks), so
/// finding it from this corpus is the fuzzer's work.
pub fn sim_world() -> Vec<Seed> {
    let world = |families, names: &[&str], seed, extras: Vec<Extra>| {
        WorldInput {
            families,
            mask: mask_of(names),
            seed,
            extras,
        }
        .encode()
    };
    let extra = |kind, private, port, count| Extra {
        kind,
        private,
        target: 0,
        port,
        at: 64,
        count,
    };
    vec![
        (
            "v4-udp".into(),
            world(Families::V4, &["udp"], 1, Vec::new()),
        ),
        (
            "v4-tcp-inbound-hairpin".into(),
            world(
                Families::V4,
                &["tcp", "inbound", "hairpin", "short-timers"],
                2,
                Vec::new(),
            ),
        ),
        (
            "v6-icmp-probe-generators".into(),
            world(
                Families::V6,
                &["icmp", "probe", "generators"],
                3,
                Vec::new(),
            ),
        ),
        (
            "dual-adversaries".into(),
            world(
                Families::Dual,
                &["tcp", "udp", "spoof", "forged-icmp", "rst-inject"],
                4,
                Vec::new(),
            ),
        ),
        (
            "v4-faults-and-churn".into(),
            world(
                Families::V4,
                &[
                    "tcp",
                    "udp",
                    "distributed",
                    "restart",
                    "nic-churn",
                    "relabel",
                    "virtual-ip",
                    "p-change",
                    "ip-churn",
                    "loss",
                    "duplicate",
                    "reorder",
                    "link-flap",
                ],
                5,
                Vec::new(),
            ),
        ),
        (
            "v4-pressure-extras".into(),
            world(
                Families::V4,
                &["udp", "pressure", "generators", "scarce-blocks"],
                6,
                vec![
                    extra(ExtraKind::Udp, false, 5000, 2),
                    extra(ExtraKind::TcpScan, false, 20_000, 15),
                    extra(ExtraKind::IcmpEcho, true, 7, 0),
                ],
            ),
        ),
    ]
}
