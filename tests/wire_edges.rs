//! Edge cases of the packet layer, one test per rule: what emit does with reprs that do not fit
//! the wire format, jumbograms, link padding, atomic and tiny fragments, and rewrites applied to
//! packets they do not concern.

use std::net::IpAddr;

use natsim::wire::rewrite::{Side, ports, rewrite_icmp_ident, rewrite_port};
use natsim::wire::{
    EmitError, FragmentRepr, IcmpRepr, PacketRepr, TransportRepr, WireError, parse_ip,
    parse_ip_lax, proto, tcp_flags,
};

fn addr(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

fn v4_udp(payload: &[u8]) -> PacketRepr {
    PacketRepr::udp((addr("10.0.0.1"), 1000), (addr("192.0.2.1"), 2000), payload)
}

fn v6_udp(payload: &[u8]) -> PacketRepr {
    PacketRepr::udp(
        (addr("2001:db8::1"), 1000),
        (addr("2001:db8::2"), 2000),
        payload,
    )
}

fn v4_tcp() -> PacketRepr {
    PacketRepr::tcp(
        (addr("10.0.0.1"), 1000),
        (addr("192.0.2.1"), 80),
        tcp_flags::SYN,
        7,
        0,
        b"",
    )
}

fn parses_ok(bytes: &[u8]) -> PacketRepr {
    let (p, report) = PacketRepr::parse(bytes).expect("parses");
    assert!(report.all_ok(), "{report:?}");
    p
}

#[test]
fn oversized_ipv4_datagram_is_cut_to_a_valid_maximum_packet() {
    let r = v4_udp(&vec![0xA5; 70_000]);
    assert_eq!(r.try_emit(), Err(EmitError::TooLong));
    let bytes = r.emit();
    assert_eq!(bytes.len(), 65_535);
    assert_eq!(u16::from_be_bytes([bytes[2], bytes[3]]), 65_535);
    // The UDP length and checksum describe the bytes actually emitted.
    assert_eq!(u16::from_be_bytes([bytes[24], bytes[25]]), 65_535 - 20);
    match parses_ok(&bytes).transport {
        TransportRepr::Udp { payload, .. } => assert_eq!(payload.len(), 65_535 - 28),
        other => panic!("not UDP: {other:?}"),
    }
}

#[test]
fn oversized_ipv6_datagram_is_cut_to_a_valid_maximum_packet() {
    let mut r = v6_udp(&vec![0x5A; 70_000]);
    r.ip.options = vec![1, 0];
    assert_eq!(r.try_emit(), Err(EmitError::TooLong));
    let bytes = r.emit();
    // Payload length counts the 8-byte hop-by-hop header too.
    assert_eq!(bytes.len(), 40 + 65_535);
    assert_eq!(u16::from_be_bytes([bytes[4], bytes[5]]), 65_535);
    parses_ok(&bytes);
}

#[test]
fn oversized_tcp_options_are_cut_and_reported() {
    let mut r = v4_tcp();
    if let TransportRepr::Tcp { options, .. } = &mut r.transport {
        *options = vec![1; 41];
    }
    assert_eq!(r.try_emit(), Err(EmitError::TcpOptionsTooLong));
    let bytes = r.emit();
    assert_eq!(bytes[20 + 12] >> 4, 15, "data offset at its maximum");
    match parses_ok(&bytes).transport {
        TransportRepr::Tcp { options, .. } => assert_eq!(options, vec![1; 40]),
        other => panic!("not TCP: {other:?}"),
    }
}

#[test]
fn oversized_ip_options_are_cut_and_reported() {
    let mut r = v4_udp(b"x");
    r.ip.options = vec![1; 41];
    assert_eq!(r.try_emit(), Err(EmitError::IpOptionsTooLong));
    let bytes = r.emit();
    assert_eq!(bytes[0], 0x4F);
    assert_eq!(parses_ok(&bytes).ip.options, vec![1; 40]);

    let mut r = v6_udp(b"x");
    r.ip.options = vec![1; 3000];
    assert_eq!(r.try_emit(), Err(EmitError::IpOptionsTooLong));
    let bytes = r.emit();
    assert_eq!(bytes[41], 255, "hop-by-hop length at its maximum");
    assert_eq!(parses_ok(&bytes).ip.options.len(), 2046);
}

#[test]
fn bad_fragment_offsets_are_reported_and_rounded() {
    let mut r = v4_udp(b"12345678");
    r.ip.fragment = Some(FragmentRepr {
        offset_bytes: 13,
        more: false,
    });
    assert_eq!(r.try_emit(), Err(EmitError::BadFragmentOffset));
    let meta = parse_ip(&r.emit()).expect("parses");
    assert_eq!(meta.fragment.map(|f| f.offset_bytes), Some(8));

    r.ip.fragment = Some(FragmentRepr {
        offset_bytes: 70_000,
        more: false,
    });
    assert_eq!(r.try_emit(), Err(EmitError::BadFragmentOffset));
    let meta = parse_ip(&r.emit()).expect("parses");
    assert_eq!(meta.fragment.map(|f| f.offset_bytes), Some(0x1FFF * 8));
}

#[test]
fn mixed_families_are_reported() {
    let mut r = v4_udp(b"x");
    r.ip.dst = addr("2001:db8::2");
    assert_eq!(r.try_emit(), Err(EmitError::MixedFamilies));
}

#[test]
fn jumbogram_is_rejected_whatever_the_buffer_length() {
    let mut bytes = v6_udp(b"x").emit();
    bytes[4..6].fill(0);
    bytes[6] = proto::HOP_BY_HOP;
    assert_eq!(parse_ip(&bytes), Err(WireError::Jumbogram));
    assert_eq!(parse_ip(&bytes[..40]), Err(WireError::Jumbogram));
    // A zero payload without hop-by-hop is an empty packet followed by link padding.
    bytes[6] = proto::NO_NEXT;
    let meta = parse_ip(&bytes).expect("empty payload parses");
    assert_eq!((meta.l4_offset, meta.end), (40, 40));
}

#[test]
fn link_padding_is_not_part_of_the_packet() {
    for r in [v4_udp(b"abc"), v6_udp(b"abc"), {
        let mut r = v6_udp(b"abc");
        r.ip.options = vec![5, 2, 0, 0];
        r
    }] {
        let bytes = r.emit();
        let mut padded = bytes.clone();
        padded.extend_from_slice(&[0xEE; 11]);
        let meta = parse_ip(&padded).expect("parses");
        assert_eq!(meta.end, bytes.len());
        assert_eq!(parses_ok(&padded), parses_ok(&bytes));
    }
}

#[test]
fn echo_with_a_nonzero_code_is_kept_verbatim() {
    let mut bytes =
        PacketRepr::echo_request(addr("10.0.0.1"), addr("192.0.2.1"), 9, 1, b"x").emit();
    bytes[21] = 1;
    // Re-fix the ICMP checksum by hand: the code byte is the low byte of the first word.
    let c = u16::from_be_bytes([bytes[22], bytes[23]]).wrapping_sub(1);
    bytes[22..24].copy_from_slice(&c.to_be_bytes());
    let p = parses_ok(&bytes);
    assert!(matches!(
        p.transport,
        TransportRepr::Icmp(IcmpRepr::Other {
            icmp_type: 8,
            code: 1,
            ..
        })
    ));
    assert_eq!(p.emit(), bytes);
}

#[test]
fn ipv6_udp_zero_checksum_is_a_wrong_checksum() {
    let mut bytes = v6_udp(b"abc").emit();
    bytes[46..48].fill(0);
    let (p, report) = PacketRepr::parse(&bytes).expect("parses");
    assert!(!report.l4_ok);
    assert!(matches!(
        p.transport,
        TransportRepr::Udp {
            zero_checksum: false,
            ..
        }
    ));
}

#[test]
fn atomic_fragment_is_checked_like_a_whole_packet() {
    let mut r = v6_udp(b"abc");
    r.ip.fragment = Some(FragmentRepr {
        offset_bytes: 0,
        more: false,
    });
    r.ip.ident = 77;
    let mut bytes = r.emit();
    let meta = parse_ip(&bytes).expect("parses");
    assert!(meta.is_whole());
    assert_eq!(parses_ok(&bytes), r);
    // Its checksum is verified...
    bytes[meta.l4_offset + 6] ^= 0x40;
    assert!(!PacketRepr::parse(&bytes).expect("parses").1.l4_ok);
    // ...and its UDP length must fit.
    bytes[meta.l4_offset + 4..meta.l4_offset + 6].copy_from_slice(&200u16.to_be_bytes());
    assert_eq!(parse_ip(&bytes), Err(WireError::BadTransportHeader));
}

#[test]
fn first_fragment_needs_a_plausible_transport_header() {
    let frags = v4_udp(&[7; 64]).emit_fragments(16);
    let mut first = frags[0].clone();
    let meta = parse_ip(&first).expect("parses");
    assert!(!meta.is_whole());
    // The UDP length counts the whole datagram, more than this fragment holds: fine.
    assert_eq!(u16::from_be_bytes([first[24], first[25]]), 72);
    // Below the UDP header size it is nonsense even in a fragment.
    first[24..26].copy_from_slice(&4u16.to_be_bytes());
    assert_eq!(parse_ip(&first), Err(WireError::BadTransportHeader));
}

#[test]
fn tiny_first_fragment_is_rejected_and_never_emitted() {
    let mut r = v4_tcp();
    if let TransportRepr::Tcp {
        options, payload, ..
    } = &mut r.transport
    {
        *options = vec![1; 20];
        *payload = vec![0; 40];
    }
    let frags = r.emit_fragments(8);
    // 40 bytes of TCP header go whole into the first fragment.
    assert_eq!(frags[0].len(), 20 + 40);
    assert!(frags.iter().all(|f| parse_ip(f).is_ok()));
    // Cut a first fragment after 8 transport bytes by hand: RFC 1858 tiny fragment.
    let whole = r.emit();
    let mut tiny = whole[..28].to_vec();
    tiny[2..4].copy_from_slice(&28u16.to_be_bytes());
    tiny[6] |= 0x20;
    assert_eq!(parse_ip(&tiny), Err(WireError::BadTransportHeader));
}

#[test]
fn icmp_ident_rewrite_leaves_other_protocols_alone() {
    let bytes = v4_tcp().emit();
    let meta = parse_ip(&bytes).expect("parses");
    let mut b = bytes.clone();
    rewrite_icmp_ident(&mut b, &meta, 0xBEEF);
    assert_eq!(b, bytes);
}

#[test]
fn port_rewrite_of_a_quote_cut_inside_the_ports_is_a_no_op() {
    let bytes = v4_udp(b"abc").emit();
    for len in 20..=23 {
        let mut cut = bytes[..len].to_vec();
        let meta = parse_ip_lax(&cut).expect("lax parses");
        rewrite_port(&mut cut, &meta, Side::Dst, 4242);
        assert_eq!(cut, bytes[..len], "cut at {len}");
        let (src, dst) = ports(&cut, &meta);
        assert_eq!(src, if len >= 22 { 1000 } else { 0 });
        assert_eq!(dst, 0);
    }
}
