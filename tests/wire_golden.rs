//! Golden packets, smoltcp style: each kind is a hand-built byte array whose checksums were
//! computed independently of natsim (a small Python builder; the arrays are pasted below), then
//! checked both ways: "deconstruct" (`PacketRepr::parse` yields the expected repr and every
//! checksum verifies) and "construct" (`emit` of that repr yields exactly the bytes). A second,
//! test-local one's-complement sum re-verifies the checksums without `natsim::wire::checksum`.

use std::net::IpAddr;

use natsim::wire::rewrite::ports;
use natsim::wire::{
    FragmentRepr, IcmpRepr, IpRepr, PacketRepr, TransportRepr, WireError, parse_ip, parse_ip_lax,
    proto, tcp_flags,
};

#[rustfmt::skip]
const V4_TCP_SYN: [u8; 60] = [
    0x45, 0x00, 0x00, 0x3c, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x06, 0x52, 0x74, 0x0a, 0x00, 0x00, 0x01,
    0xc0, 0x00, 0x02, 0x01, 0xc0, 0x00, 0x00, 0x50, 0x01, 0x02, 0x03, 0x04, 0x00, 0x00, 0x00, 0x00,
    0xa0, 0x02, 0xfa, 0xf0, 0xaa, 0x82, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a,
    0x00, 0x00, 0x12, 0x34, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x07,
];

#[rustfmt::skip]
const V4_UDP: [u8; 33] = [
    0x45, 0x00, 0x00, 0x21, 0x00, 0x01, 0x00, 0x00, 0x40, 0x11, 0xae, 0xc9, 0x0a, 0x00, 0x00, 0x01,
    0xc0, 0x00, 0x02, 0x01, 0x14, 0xe9, 0x00, 0x35, 0x00, 0x0d, 0xda, 0xe1, 0x68, 0x65, 0x6c, 0x6c,
    0x6f,
];

#[rustfmt::skip]
const V4_UDP_ZERO_CHECKSUM: [u8; 32] = [
    0x45, 0x00, 0x00, 0x20, 0x00, 0x02, 0x00, 0x00, 0x40, 0x11, 0xae, 0xc9, 0x0a, 0x00, 0x00, 0x01,
    0xc0, 0x00, 0x02, 0x01, 0x14, 0xe9, 0x00, 0x35, 0x00, 0x0c, 0x00, 0x00, 0x68, 0x69, 0x21, 0x21,
];

#[rustfmt::skip]
const V4_IP_OPTIONS: [u8; 39] = [
    0x47, 0xb8, 0x00, 0x27, 0x00, 0x03, 0x00, 0x00, 0x01, 0x11, 0x55, 0x04, 0x0a, 0x00, 0x00, 0x01,
    0xc0, 0x00, 0x02, 0x01, 0x94, 0x04, 0x00, 0x00, 0x01, 0x01, 0x01, 0x00, 0x03, 0xe8, 0x07, 0xd0,
    0x00, 0x0b, 0x44, 0xad, 0x6f, 0x70, 0x74,
];

#[rustfmt::skip]
const V4_FRAG_FIRST: [u8; 36] = [
    0x45, 0x00, 0x00, 0x24, 0xab, 0xcd, 0x20, 0x00, 0x40, 0x11, 0xe2, 0xf9, 0x0a, 0x00, 0x00, 0x01,
    0xc0, 0x00, 0x02, 0x01, 0x0f, 0xa0, 0x23, 0x28, 0x00, 0x20, 0x7c, 0x53, 0x00, 0x01, 0x02, 0x03,
    0x04, 0x05, 0x06, 0x07,
];

#[rustfmt::skip]
const V4_FRAG_LATER: [u8; 36] = [
    0x45, 0x00, 0x00, 0x24, 0xab, 0xcd, 0x00, 0x02, 0x40, 0x11, 0x02, 0xf8, 0x0a, 0x00, 0x00, 0x01,
    0xc0, 0x00, 0x02, 0x01, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13,
    0x14, 0x15, 0x16, 0x17,
];

#[rustfmt::skip]
const V4_ECHO_REQUEST: [u8; 36] = [
    0x45, 0x00, 0x00, 0x24, 0x00, 0x04, 0x00, 0x00, 0x40, 0x01, 0xae, 0xd3, 0x0a, 0x00, 0x00, 0x01,
    0xc0, 0x00, 0x02, 0x01, 0x08, 0x00, 0x54, 0x35, 0x12, 0x34, 0x00, 0x01, 0x61, 0x62, 0x63, 0x64,
    0x65, 0x66, 0x67, 0x68,
];

#[rustfmt::skip]
const V4_ECHO_REPLY: [u8; 36] = [
    0x45, 0x00, 0x00, 0x24, 0x00, 0x05, 0x00, 0x00, 0x39, 0x01, 0xb5, 0xd2, 0xc0, 0x00, 0x02, 0x01,
    0x0a, 0x00, 0x00, 0x01, 0x00, 0x00, 0x5c, 0x35, 0x12, 0x34, 0x00, 0x01, 0x61, 0x62, 0x63, 0x64,
    0x65, 0x66, 0x67, 0x68,
];

#[rustfmt::skip]
const V4_ICMP_PORT_UNREACHABLE: [u8; 56] = [
    0x45, 0xc0, 0x00, 0x38, 0x00, 0x06, 0x00, 0x00, 0xff, 0x01, 0xee, 0xfc, 0xc0, 0x00, 0x02, 0x01,
    0x0a, 0x00, 0x00, 0x01, 0x03, 0x03, 0x0c, 0xf0, 0x00, 0x00, 0x00, 0x00, 0x45, 0x00, 0x00, 0x21,
    0x00, 0x01, 0x00, 0x00, 0x40, 0x11, 0xae, 0xc9, 0x0a, 0x00, 0x00, 0x01, 0xc0, 0x00, 0x02, 0x01,
    0x14, 0xe9, 0x00, 0x35, 0x00, 0x0d, 0xda, 0xe1,
];

#[rustfmt::skip]
const V6_TCP: [u8; 75] = [
    0x60, 0x00, 0x00, 0x00, 0x00, 0x23, 0x06, 0x40, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x9c, 0x40, 0x01, 0xbb, 0x00, 0x00, 0x03, 0xe8,
    0x00, 0x00, 0x07, 0xd0, 0x80, 0x18, 0x02, 0x00, 0xd4, 0x41, 0x00, 0x00, 0x01, 0x01, 0x08, 0x0a,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02, 0x47, 0x45, 0x54,
];

#[rustfmt::skip]
const V6_UDP: [u8; 55] = [
    0x62, 0x80, 0x00, 0x00, 0x00, 0x0f, 0x11, 0x40, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x14, 0xe9, 0x00, 0x35, 0x00, 0x0f, 0xd2, 0x0d,
    0x70, 0x61, 0x79, 0x6c, 0x6f, 0x61, 0x64,
];

#[rustfmt::skip]
const V6_HOP_BY_HOP: [u8; 59] = [
    0x60, 0x00, 0x00, 0x00, 0x00, 0x13, 0x00, 0x01, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x11, 0x00, 0x05, 0x02, 0x00, 0x00, 0x01, 0x00,
    0x03, 0xe8, 0x07, 0xd0, 0x00, 0x0b, 0xc8, 0x48, 0x68, 0x62, 0x68,
];

#[rustfmt::skip]
const V6_FRAG_FIRST: [u8; 72] = [
    0x60, 0x00, 0x00, 0x00, 0x00, 0x20, 0x2c, 0x40, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x11, 0x00, 0x00, 0x01, 0x12, 0x34, 0x56, 0x78,
    0x0f, 0xa0, 0x23, 0x28, 0x00, 0x30, 0xf3, 0xbf, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
    0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
];

#[rustfmt::skip]
const V6_FRAG_LATER: [u8; 72] = [
    0x60, 0x00, 0x00, 0x00, 0x00, 0x20, 0x2c, 0x40, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x11, 0x00, 0x00, 0x18, 0x12, 0x34, 0x56, 0x78,
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
    0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27,
];

#[rustfmt::skip]
const V6_HBH_FRAG_LATER: [u8; 80] = [
    0x60, 0x00, 0x00, 0x00, 0x00, 0x28, 0x00, 0x40, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x2c, 0x00, 0x05, 0x02, 0x00, 0x00, 0x01, 0x00,
    0x11, 0x00, 0x00, 0x18, 0x12, 0x34, 0x56, 0x78, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17,
    0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27,
];

#[rustfmt::skip]
const V6_ECHO_REQUEST: [u8; 53] = [
    0x60, 0x00, 0x00, 0x00, 0x00, 0x0d, 0x3a, 0x40, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x80, 0x00, 0xe2, 0x28, 0x42, 0x42, 0x00, 0x07,
    0x70, 0x69, 0x6e, 0x67, 0x21,
];

#[rustfmt::skip]
const V6_ECHO_REPLY: [u8; 53] = [
    0x60, 0x00, 0x00, 0x00, 0x00, 0x0d, 0x3a, 0x40, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x81, 0x00, 0xe1, 0x28, 0x42, 0x42, 0x00, 0x07,
    0x70, 0x69, 0x6e, 0x67, 0x21,
];

#[rustfmt::skip]
const V6_ICMP_PORT_UNREACHABLE: [u8; 100] = [
    0x60, 0x00, 0x00, 0x00, 0x00, 0x3c, 0x3a, 0xff, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x01, 0x04, 0x02, 0xc3, 0x00, 0x00, 0x00, 0x00,
    0x62, 0x80, 0x00, 0x00, 0x00, 0x0f, 0x11, 0x40, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x14, 0xe9, 0x00, 0x35, 0x00, 0x0f, 0xd2, 0x0d,
    0x70, 0x61, 0x79, 0x6c,
];

const V4_SRC: &str = "10.0.0.1";
const V4_DST: &str = "192.0.2.1";
const V6_SRC: &str = "2001:db8::1";
const V6_DST: &str = "2001:db8::2";

fn addr(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

fn ip(src: &str, dst: &str) -> IpRepr {
    IpRepr::new(addr(src), addr(dst))
}

fn udp(src_port: u16, dst_port: u16, payload: &[u8]) -> TransportRepr {
    TransportRepr::Udp {
        src_port,
        dst_port,
        zero_checksum: false,
        payload: payload.to_vec(),
    }
}

fn raw(protocol: u8, payload: &[u8]) -> TransportRepr {
    TransportRepr::Raw {
        protocol,
        payload: payload.to_vec(),
    }
}

/// RFC 1071 sum folded to 16 bits, written here so the goldens do not trust the code under test.
fn ones_sum(parts: &[&[u8]]) -> u16 {
    let mut acc: u32 = 0;
    for part in parts {
        for pair in part.chunks(2) {
            let hi = u32::from(pair[0]) << 8;
            let lo = pair.get(1).copied().map_or(0, u32::from);
            acc += hi | lo;
        }
    }
    while acc > 0xFFFF {
        acc = (acc & 0xFFFF) + (acc >> 16);
    }
    acc as u16
}

/// Pseudo-header for `src`/`dst` (4 or 16 bytes each), protocol and transport length.
fn pseudo(src: &[u8], dst: &[u8], protocol: u8, len: usize) -> Vec<u8> {
    let mut p = src.to_vec();
    p.extend_from_slice(dst);
    if src.len() == 4 {
        p.extend_from_slice(&[0, protocol]);
        p.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        p.extend_from_slice(&(len as u32).to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, protocol]);
    }
    p
}

/// Verifies the IPv4 header checksum (if any) and the transport checksum of a whole packet whose
/// IP header chain is `l4_offset` long, with the test-local sum.
fn assert_independent_checksums(bytes: &[u8], l4_offset: usize, protocol: u8) {
    let v4 = bytes[0] >> 4 == 4;
    let (src, dst) = if v4 {
        (&bytes[12..16], &bytes[16..20])
    } else {
        (&bytes[8..24], &bytes[24..40])
    };
    if v4 {
        let ihl = usize::from(bytes[0] & 0x0F) * 4;
        assert_eq!(ones_sum(&[&bytes[..ihl]]), 0xFFFF, "IPv4 header checksum");
    }
    let l4 = &bytes[l4_offset..];
    match protocol {
        proto::UDP if v4 && l4[6..8] == [0, 0] => {}
        proto::TCP | proto::UDP | proto::ICMPV6 => {
            let p = pseudo(src, dst, protocol, l4.len());
            assert_eq!(ones_sum(&[&p, l4]), 0xFFFF, "transport checksum");
        }
        proto::ICMP => assert_eq!(ones_sum(&[l4]), 0xFFFF, "ICMP checksum"),
        _ => panic!("unexpected protocol {protocol}"),
    }
}

/// Deconstruct and construct: the bytes parse to `expected` with all checksums OK, and `expected`
/// emits (and try-emits) exactly the bytes.
fn golden(bytes: &[u8], expected: &PacketRepr) {
    let (repr, report) = PacketRepr::parse(bytes).expect("golden packet parses");
    assert_eq!(&repr, expected, "deconstruct");
    assert!(report.all_ok(), "checksums: {report:?}");
    assert_eq!(expected.emit(), bytes, "construct");
    assert_eq!(expected.try_emit().as_deref(), Ok(bytes), "try_emit");
}

#[test]
fn v4_tcp_syn_with_options() {
    let mut ip = ip(V4_SRC, V4_DST);
    ip.ident = 0x1c46;
    ip.dont_fragment = true;
    let expected = PacketRepr {
        ip,
        transport: TransportRepr::Tcp {
            src_port: 49152,
            dst_port: 80,
            seq: 0x0102_0304,
            ack: 0,
            flags: tcp_flags::SYN,
            window: 64240,
            // MSS 1460, SACK permitted, timestamps, NOP, window scale 7.
            options: vec![
                2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0x12, 0x34, 0, 0, 0, 0, 1, 3, 3, 7,
            ],
            payload: Vec::new(),
        },
    };
    golden(&V4_TCP_SYN, &expected);
    assert_independent_checksums(&V4_TCP_SYN, 20, proto::TCP);
    let meta = parse_ip(&V4_TCP_SYN).expect("parses");
    assert_eq!(
        (meta.l4_offset, meta.end, meta.protocol),
        (20, 60, proto::TCP)
    );
    assert_eq!(ports(&V4_TCP_SYN, &meta), (49152, 80));
}

#[test]
fn v4_udp() {
    let mut ip = ip(V4_SRC, V4_DST);
    ip.ident = 1;
    let expected = PacketRepr {
        ip,
        transport: udp(5353, 53, b"hello"),
    };
    golden(&V4_UDP, &expected);
    assert_independent_checksums(&V4_UDP, 20, proto::UDP);
}

#[test]
fn v4_udp_zero_checksum() {
    let mut ip = ip(V4_SRC, V4_DST);
    ip.ident = 2;
    let expected = PacketRepr {
        ip,
        transport: TransportRepr::Udp {
            src_port: 5353,
            dst_port: 53,
            zero_checksum: true,
            payload: b"hi!!".to_vec(),
        },
    };
    golden(&V4_UDP_ZERO_CHECKSUM, &expected);
    assert_eq!(V4_UDP_ZERO_CHECKSUM[26..28], [0, 0]);
    assert_independent_checksums(&V4_UDP_ZERO_CHECKSUM, 20, proto::UDP);
}

#[test]
fn v4_with_ip_options() {
    let mut ip = ip(V4_SRC, V4_DST);
    ip.ident = 3;
    ip.ttl = 1;
    ip.tos = 0xb8;
    // Router alert, three NOPs, end of list.
    ip.options = vec![0x94, 4, 0, 0, 1, 1, 1, 0];
    let expected = PacketRepr {
        ip,
        transport: udp(1000, 2000, b"opt"),
    };
    golden(&V4_IP_OPTIONS, &expected);
    assert_independent_checksums(&V4_IP_OPTIONS, 28, proto::UDP);
    let meta = parse_ip(&V4_IP_OPTIONS).expect("parses");
    assert_eq!(meta.l4_offset, 28);
    assert_eq!(ports(&V4_IP_OPTIONS, &meta), (1000, 2000));
}

/// The datagram both IPv4 fragment goldens were cut from: 24 payload bytes, cut after 16.
fn v4_fragmented_datagram() -> PacketRepr {
    let mut ip = ip(V4_SRC, V4_DST);
    ip.ident = 0xabcd;
    let payload: Vec<u8> = (0..24).collect();
    PacketRepr {
        ip,
        transport: udp(4000, 9000, &payload),
    }
}

#[test]
fn v4_first_fragment() {
    let mut ip = ip(V4_SRC, V4_DST);
    ip.ident = 0xabcd;
    ip.fragment = Some(FragmentRepr {
        offset_bytes: 0,
        more: true,
    });
    // The first fragment's UDP checksum and length cover the whole datagram, so the repr keeps
    // its transport bytes verbatim; the hot path still sees the ports.
    let expected = PacketRepr {
        ip,
        transport: raw(proto::UDP, &V4_FRAG_FIRST[20..]),
    };
    golden(&V4_FRAG_FIRST, &expected);
    let meta = parse_ip(&V4_FRAG_FIRST).expect("parses");
    assert!(meta.has_l4_header() && !meta.is_whole());
    assert_eq!(ports(&V4_FRAG_FIRST, &meta), (4000, 9000));
    assert_eq!(udp_length_field(&V4_FRAG_FIRST[20..]), 32);
    // Lax parsing decodes the header fields for quoted first fragments.
    let lax = PacketRepr::parse_lax(&V4_FRAG_FIRST).expect("lax parses");
    assert!(matches!(
        lax.transport,
        TransportRepr::Udp {
            src_port: 4000,
            dst_port: 9000,
            ..
        }
    ));
}

fn udp_length_field(l4: &[u8]) -> u16 {
    u16::from_be_bytes([l4[4], l4[5]])
}

#[test]
fn v4_later_fragment() {
    let mut ip = ip(V4_SRC, V4_DST);
    ip.ident = 0xabcd;
    ip.fragment = Some(FragmentRepr {
        offset_bytes: 16,
        more: false,
    });
    let expected = PacketRepr {
        ip,
        transport: raw(proto::UDP, &(8..24).collect::<Vec<u8>>()),
    };
    golden(&V4_FRAG_LATER, &expected);
    let meta = parse_ip(&V4_FRAG_LATER).expect("parses");
    assert!(!meta.has_l4_header());
    assert_eq!(ports(&V4_FRAG_LATER, &meta), (0, 0));
}

#[test]
fn v4_fragments_reassemble_to_a_datagram_with_a_valid_checksum() {
    let mut whole = V4_FRAG_FIRST[..20].to_vec();
    whole.extend_from_slice(&V4_FRAG_FIRST[20..]);
    whole.extend_from_slice(&V4_FRAG_LATER[20..]);
    // Header fields other than lengths do not enter the transport checksum.
    assert_independent_checksums_l4_only(&whole[..20], &whole[20..], proto::UDP);
    assert_eq!(
        v4_fragmented_datagram().emit_fragments(16),
        vec![V4_FRAG_FIRST.to_vec(), V4_FRAG_LATER.to_vec()]
    );
}

fn assert_independent_checksums_l4_only(header: &[u8], l4: &[u8], protocol: u8) {
    let (src, dst) = if header[0] >> 4 == 4 {
        (&header[12..16], &header[16..20])
    } else {
        (&header[8..24], &header[24..40])
    };
    let p = pseudo(src, dst, protocol, l4.len());
    assert_eq!(ones_sum(&[&p, l4]), 0xFFFF);
}

#[test]
fn v4_icmp_echo_request() {
    let mut ip = ip(V4_SRC, V4_DST);
    ip.ident = 4;
    let expected = PacketRepr {
        ip,
        transport: TransportRepr::Icmp(IcmpRepr::EchoRequest {
            ident: 0x1234,
            seq: 1,
            data: b"abcdefgh".to_vec(),
        }),
    };
    golden(&V4_ECHO_REQUEST, &expected);
    assert_independent_checksums(&V4_ECHO_REQUEST, 20, proto::ICMP);
    let meta = parse_ip(&V4_ECHO_REQUEST).expect("parses");
    assert_eq!(ports(&V4_ECHO_REQUEST, &meta), (0x1234, 0));
}

#[test]
fn v4_icmp_echo_reply() {
    let mut ip = ip(V4_DST, V4_SRC);
    ip.ident = 5;
    ip.ttl = 57;
    let expected = PacketRepr {
        ip,
        transport: TransportRepr::Icmp(IcmpRepr::EchoReply {
            ident: 0x1234,
            seq: 1,
            data: b"abcdefgh".to_vec(),
        }),
    };
    golden(&V4_ECHO_REPLY, &expected);
    assert_independent_checksums(&V4_ECHO_REPLY, 20, proto::ICMP);
}

#[test]
fn v4_icmp_port_unreachable_quoting_truncated_udp() {
    let mut ip = ip(V4_DST, V4_SRC);
    ip.ident = 6;
    ip.ttl = 255;
    ip.tos = 0xc0;
    let quoted = &V4_UDP[..28];
    let expected = PacketRepr {
        ip,
        transport: TransportRepr::Icmp(IcmpRepr::Error {
            icmp_type: 3,
            code: 3,
            rest: 0,
            quoted: quoted.to_vec(),
        }),
    };
    golden(&V4_ICMP_PORT_UNREACHABLE, &expected);
    assert_independent_checksums(&V4_ICMP_PORT_UNREACHABLE, 20, proto::ICMP);

    // The quoted packet claims 33 bytes but only 28 are there: strict parsing refuses it, lax
    // parsing clips it and still finds the ports.
    assert_eq!(parse_ip(quoted), Err(WireError::BadTotalLength));
    let meta = parse_ip_lax(quoted).expect("lax parses");
    assert_eq!((meta.l4_offset, meta.end), (20, 28));
    assert_eq!(ports(quoted, &meta), (5353, 53));
    let mut ip = self::ip(V4_SRC, V4_DST);
    ip.ident = 1;
    assert_eq!(
        PacketRepr::parse_lax(quoted).expect("lax parses"),
        PacketRepr {
            ip,
            transport: udp(5353, 53, b""),
        }
    );
}

#[test]
fn v6_tcp() {
    let expected = PacketRepr {
        ip: ip(V6_SRC, V6_DST),
        transport: TransportRepr::Tcp {
            src_port: 40000,
            dst_port: 443,
            seq: 1000,
            ack: 2000,
            flags: tcp_flags::PSH | tcp_flags::ACK,
            window: 512,
            // NOP, NOP, timestamps.
            options: vec![1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2],
            payload: b"GET".to_vec(),
        },
    };
    golden(&V6_TCP, &expected);
    assert_independent_checksums(&V6_TCP, 40, proto::TCP);
}

#[test]
fn v6_udp() {
    let mut ip = ip(V6_SRC, V6_DST);
    ip.tos = 0x28;
    let expected = PacketRepr {
        ip,
        transport: udp(5353, 53, b"payload"),
    };
    golden(&V6_UDP, &expected);
    assert_independent_checksums(&V6_UDP, 40, proto::UDP);
}

#[test]
fn v6_hop_by_hop() {
    let mut ip = ip(V6_SRC, V6_DST);
    ip.ttl = 1;
    // Router alert (MLD), PadN with no data bytes.
    ip.options = vec![5, 2, 0, 0, 1, 0];
    let expected = PacketRepr {
        ip,
        transport: udp(1000, 2000, b"hbh"),
    };
    golden(&V6_HOP_BY_HOP, &expected);
    assert_independent_checksums(&V6_HOP_BY_HOP, 48, proto::UDP);
    let meta = parse_ip(&V6_HOP_BY_HOP).expect("parses");
    assert_eq!((meta.l4_offset, meta.protocol), (48, proto::UDP));
}

fn v6_fragmented_datagram() -> PacketRepr {
    let mut ip = ip(V6_SRC, V6_DST);
    ip.ident = 0x1234_5678;
    let payload: Vec<u8> = (0..40).collect();
    PacketRepr {
        ip,
        transport: udp(4000, 9000, &payload),
    }
}

#[test]
fn v6_first_fragment() {
    let mut ip = ip(V6_SRC, V6_DST);
    ip.ident = 0x1234_5678;
    ip.fragment = Some(FragmentRepr {
        offset_bytes: 0,
        more: true,
    });
    let expected = PacketRepr {
        ip,
        transport: raw(proto::UDP, &V6_FRAG_FIRST[48..]),
    };
    golden(&V6_FRAG_FIRST, &expected);
    let meta = parse_ip(&V6_FRAG_FIRST).expect("parses");
    assert_eq!(meta.v6_fragment_header, Some(40));
    assert_eq!((meta.l4_offset, meta.protocol), (48, proto::UDP));
    assert_eq!(ports(&V6_FRAG_FIRST, &meta), (4000, 9000));
}

#[test]
fn v6_later_fragment() {
    let mut ip = ip(V6_SRC, V6_DST);
    ip.ident = 0x1234_5678;
    ip.fragment = Some(FragmentRepr {
        offset_bytes: 24,
        more: false,
    });
    let expected = PacketRepr {
        ip,
        transport: raw(proto::UDP, &(16..40).collect::<Vec<u8>>()),
    };
    golden(&V6_FRAG_LATER, &expected);
    let meta = parse_ip(&V6_FRAG_LATER).expect("parses");
    assert!(!meta.has_l4_header());
    let frag = meta.fragment.expect("fragment");
    assert_eq!(
        (frag.offset_bytes, frag.more, frag.ident),
        (24, false, 0x1234_5678)
    );
}

#[test]
fn v6_hop_by_hop_then_later_fragment() {
    let mut ip = ip(V6_SRC, V6_DST);
    ip.ident = 0x1234_5678;
    ip.options = vec![5, 2, 0, 0, 1, 0];
    ip.fragment = Some(FragmentRepr {
        offset_bytes: 24,
        more: false,
    });
    let expected = PacketRepr {
        ip,
        transport: raw(proto::UDP, &(16..40).collect::<Vec<u8>>()),
    };
    golden(&V6_HBH_FRAG_LATER, &expected);
    let meta = parse_ip(&V6_HBH_FRAG_LATER).expect("parses");
    assert_eq!(meta.v6_fragment_header, Some(48));
    assert_eq!((meta.l4_offset, meta.protocol), (56, proto::UDP));
}

#[test]
fn v6_fragments_reassemble_and_match_emit_fragments() {
    let mut l4 = V6_FRAG_FIRST[48..].to_vec();
    l4.extend_from_slice(&V6_FRAG_LATER[48..]);
    assert_independent_checksums_l4_only(&V6_FRAG_FIRST[..40], &l4, proto::UDP);
    let d = v6_fragmented_datagram();
    assert_eq!(
        d.emit_fragments(24),
        vec![V6_FRAG_FIRST.to_vec(), V6_FRAG_LATER.to_vec()]
    );
    let mut with_hbh = d;
    with_hbh.ip.options = vec![5, 2, 0, 0, 1, 0];
    let frags = with_hbh.emit_fragments(24);
    assert_eq!(frags.len(), 2);
    assert_eq!(frags[1], V6_HBH_FRAG_LATER);
}

#[test]
fn v6_icmp_echo_request() {
    let expected = PacketRepr {
        ip: ip(V6_SRC, V6_DST),
        transport: TransportRepr::Icmp(IcmpRepr::EchoRequest {
            ident: 0x4242,
            seq: 7,
            data: b"ping!".to_vec(),
        }),
    };
    golden(&V6_ECHO_REQUEST, &expected);
    assert_independent_checksums(&V6_ECHO_REQUEST, 40, proto::ICMPV6);
}

#[test]
fn v6_icmp_echo_reply() {
    let expected = PacketRepr {
        ip: ip(V6_DST, V6_SRC),
        transport: TransportRepr::Icmp(IcmpRepr::EchoReply {
            ident: 0x4242,
            seq: 7,
            data: b"ping!".to_vec(),
        }),
    };
    golden(&V6_ECHO_REPLY, &expected);
    assert_independent_checksums(&V6_ECHO_REPLY, 40, proto::ICMPV6);
}

#[test]
fn v6_icmp_port_unreachable_quoting_truncated_udp() {
    let mut ip = ip(V6_DST, V6_SRC);
    ip.ttl = 255;
    let quoted = &V6_UDP[..52];
    let expected = PacketRepr {
        ip,
        transport: TransportRepr::Icmp(IcmpRepr::Error {
            icmp_type: 1,
            code: 4,
            rest: 0,
            quoted: quoted.to_vec(),
        }),
    };
    golden(&V6_ICMP_PORT_UNREACHABLE, &expected);
    assert_independent_checksums(&V6_ICMP_PORT_UNREACHABLE, 40, proto::ICMPV6);

    assert_eq!(parse_ip(quoted), Err(WireError::BadTotalLength));
    let meta = parse_ip_lax(quoted).expect("lax parses");
    assert_eq!((meta.l4_offset, meta.end), (40, 52));
    assert_eq!(ports(quoted, &meta), (5353, 53));
    let mut ip = self::ip(V6_SRC, V6_DST);
    ip.tos = 0x28;
    assert_eq!(
        PacketRepr::parse_lax(quoted).expect("lax parses"),
        PacketRepr {
            ip,
            transport: udp(5353, 53, b"payl"),
        }
    );
}
