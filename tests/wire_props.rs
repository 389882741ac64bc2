//! Property tests for the packet layer: emit/parse round trips for every kind of repr, RFC 1624
//! incremental rewrites against full recomputation (including packets whose checksums were wrong
//! on input), and panic freedom on truncated and arbitrary bytes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use natsim::wire::checksum::same_value;
use natsim::wire::rewrite::{
    Side, ports, rewrite_addr, rewrite_endpoint, rewrite_icmp_ident, rewrite_port,
    rewrite_transport_endpoint,
};
use natsim::wire::{
    FragmentRepr, IcmpRepr, IpMeta, IpRepr, IpVersion, PacketRepr, TransportRepr, parse_ip,
    parse_ip_lax, proto,
};
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------------

fn addr_pair(v6: bool) -> BoxedStrategy<(IpAddr, IpAddr)> {
    if v6 {
        (any::<u128>(), any::<u128>())
            .prop_map(|(a, b)| (Ipv6Addr::from(a).into(), Ipv6Addr::from(b).into()))
            .boxed()
    } else {
        (any::<u32>(), any::<u32>())
            .prop_map(|(a, b)| (Ipv4Addr::from(a).into(), Ipv4Addr::from(b).into()))
            .boxed()
    }
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..=max)
}

/// An IP layer without fragmentation; IPv4 options of 0..=40 bytes, IPv6 hop-by-hop options of
/// 0..=100 bytes (both unpadded: emit pads).
fn ip_layer(v6: bool) -> impl Strategy<Value = IpRepr> {
    let opts_max = if v6 { 100 } else { 40 };
    (
        addr_pair(v6),
        any::<u8>(),
        any::<u32>(),
        any::<u8>(),
        any::<bool>(),
        prop_oneof![Just(Vec::new()), bytes(opts_max)],
    )
        .prop_map(|((src, dst), ttl, ident, tos, df, options)| IpRepr {
            src,
            dst,
            ttl,
            ident,
            tos,
            dont_fragment: df,
            fragment: None,
            options,
        })
}

fn tcp() -> impl Strategy<Value = TransportRepr> {
    (any::<(u16, u16, u32, u32, u8, u16)>(), bytes(40), bytes(64)).prop_map(
        |((src_port, dst_port, seq, ack, flags, window), options, payload)| TransportRepr::Tcp {
            src_port,
            dst_port,
            seq,
            ack,
            flags,
            window,
            options,
            payload,
        },
    )
}

fn udp() -> impl Strategy<Value = TransportRepr> {
    (any::<(u16, u16, bool)>(), bytes(64)).prop_map(
        |((src_port, dst_port, zero_checksum), payload)| TransportRepr::Udp {
            src_port,
            dst_port,
            zero_checksum,
            payload,
        },
    )
}

fn echo() -> impl Strategy<Value = TransportRepr> {
    (any::<(bool, u16, u16)>(), bytes(64)).prop_map(|((request, ident, seq), data)| {
        TransportRepr::Icmp(if request {
            IcmpRepr::EchoRequest { ident, seq, data }
        } else {
            IcmpRepr::EchoReply { ident, seq, data }
        })
    })
}

fn icmp_other_kinds(v6: bool) -> impl Strategy<Value = TransportRepr> {
    let error_types: &'static [u8] = if v6 { &[1, 2, 3, 4] } else { &[3, 11, 12] };
    let error = (
        prop::sample::select(error_types),
        any::<u8>(),
        any::<u32>(),
        bytes(80),
    )
        .prop_map(|(icmp_type, code, rest, quoted)| {
            TransportRepr::Icmp(IcmpRepr::Error {
                icmp_type,
                code,
                rest,
                quoted,
            })
        });
    // Anything that is neither echo (with code 0) nor a recognised error; the body holds at
    // least the 4 bytes that complete the 8-byte ICMP header.
    let other = (any::<u8>(), any::<u8>(), 4..=64usize, any::<u64>())
        .prop_filter("not echo or error", move |(t, c, _, _)| {
            let echo = if v6 {
                *t == 128 || *t == 129
            } else {
                *t == 0 || *t == 8
            };
            let error = if v6 {
                (1..=4).contains(t)
            } else {
                matches!(*t, 3 | 11 | 12)
            };
            !(error || (echo && *c == 0))
        })
        .prop_map(|(icmp_type, code, len, seed)| {
            let body = (0..len)
                .map(|i| (seed >> (i % 8 * 8)) as u8 ^ i as u8)
                .collect();
            TransportRepr::Icmp(IcmpRepr::Other {
                icmp_type,
                code,
                body,
            })
        });
    prop_oneof![error, other]
}

/// Protocol numbers a `Raw` transport may use in an unfragmented packet: not ones the parser
/// decodes, and not IPv6 extension headers (the parser would walk into them).
fn raw_protocol() -> impl Strategy<Value = u8> {
    any::<u8>().prop_filter("decoded or extension header", |p| {
        !matches!(
            *p,
            proto::ICMP
                | proto::TCP
                | proto::UDP
                | proto::ICMPV6
                | proto::HOP_BY_HOP
                | proto::ROUTING
                | proto::FRAGMENT
                | proto::AH
                | proto::DEST_OPTS
        )
    })
}

fn raw(protocol: impl Strategy<Value = u8>) -> impl Strategy<Value = TransportRepr> {
    (protocol, bytes(64)).prop_map(|(protocol, payload)| TransportRepr::Raw { protocol, payload })
}

/// A whole datagram whose transport the NAT rewrites (TCP, UDP, ICMP echo).
fn translatable(v6: bool) -> impl Strategy<Value = PacketRepr> {
    (ip_layer(v6), prop_oneof![tcp(), udp(), echo()])
        .prop_map(|(ip, transport)| PacketRepr { ip, transport })
}

/// Any whole, unfragmented datagram.
fn whole_packet(v6: bool) -> impl Strategy<Value = PacketRepr> {
    (
        ip_layer(v6),
        prop_oneof![
            3 => tcp(),
            3 => udp(),
            2 => echo(),
            2 => icmp_other_kinds(v6),
            1 => raw(raw_protocol()),
        ],
    )
        .prop_map(|(ip, transport)| PacketRepr { ip, transport })
}

/// A non-first fragment (any protocol number; the data is opaque), or for IPv6 an atomic
/// fragment (offset 0, last) that carries a whole transport.
fn fragment_packet(v6: bool) -> BoxedStrategy<PacketRepr> {
    let later = (ip_layer(v6), 1..=0x1FFFu32, any::<bool>(), raw(any::<u8>())).prop_map(
        |(mut ip, units, more, transport)| {
            ip.fragment = Some(FragmentRepr {
                offset_bytes: units * 8,
                more,
            });
            PacketRepr { ip, transport }
        },
    );
    if v6 {
        let atomic = whole_packet(true).prop_map(|mut p| {
            p.ip.fragment = Some(FragmentRepr {
                offset_bytes: 0,
                more: false,
            });
            p
        });
        prop_oneof![later, atomic].boxed()
    } else {
        later.boxed()
    }
}

fn packet(v6: bool) -> impl Strategy<Value = PacketRepr> {
    prop_oneof![
        4 => whole_packet(v6),
        1 => fragment_packet(v6),
    ]
}

fn any_packet() -> impl Strategy<Value = PacketRepr> {
    any::<bool>().prop_flat_map(packet)
}

// ---------------------------------------------------------------------------------------------
// Equivalence: what emit normalises
// ---------------------------------------------------------------------------------------------

fn pad(mut v: Vec<u8>, bias: usize, unit: usize) -> Vec<u8> {
    while !(v.len() + bias).is_multiple_of(unit) {
        v.push(0);
    }
    v
}

/// The repr that parsing the emitted bytes of `r` must give back. Emit pads IPv4 and TCP options
/// to 4 bytes (with end-of-list zeros) and IPv6 hop-by-hop options to 8-byte units (with Pad1
/// zeros); IPv4 keeps 16 bits of `ident`; IPv6 has no DF bit and carries `ident` only in a
/// fragment header; a zero UDP checksum exists only over IPv4.
fn normalised(r: &PacketRepr) -> PacketRepr {
    let mut n = r.clone();
    let v6 = n.ip.version() == IpVersion::V6;
    if v6 {
        if !n.ip.options.is_empty() {
            n.ip.options = pad(n.ip.options, 2, 8);
        }
        n.ip.dont_fragment = false;
        if n.ip.fragment.is_none() {
            n.ip.ident = 0;
        }
    } else {
        n.ip.options = pad(n.ip.options, 0, 4);
        n.ip.ident &= 0xFFFF;
    }
    match &mut n.transport {
        TransportRepr::Tcp { options, .. } => *options = pad(std::mem::take(options), 0, 4),
        TransportRepr::Udp { zero_checksum, .. } if v6 => *zero_checksum = false,
        _ => {}
    }
    n
}

// ---------------------------------------------------------------------------------------------
// Checksum helpers
// ---------------------------------------------------------------------------------------------

/// Offsets of every checksum field in a packet: the IPv4 header checksum and the transport
/// checksum when this packet carries the transport header.
fn checksum_fields(meta: &IpMeta) -> Vec<usize> {
    let mut at = Vec::new();
    if meta.version == IpVersion::V4 {
        at.push(10);
    }
    if meta.has_l4_header() {
        let l4 = meta.l4_offset;
        match meta.protocol {
            proto::TCP => at.push(l4 + 16),
            proto::UDP => at.push(l4 + 6),
            proto::ICMP | proto::ICMPV6 => at.push(l4 + 2),
            _ => {}
        }
    }
    at
}

fn word(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// `a - b` in one's complement, as a residue mod 0xFFFF (so +0 and -0 compare equal).
fn ones_diff(a: u16, b: u16) -> u32 {
    (u32::from(a) + 0xFFFF - u32::from(b)) % 0xFFFF
}

/// Asserts `got` equals `want` byte for byte, except that checksum fields only need to be the
/// same one's-complement value (incremental updates may produce -0 where a full computation
/// produces +0).
fn assert_same_packet(got: &[u8], want: &[u8], fields: &[usize]) -> Result<(), TestCaseError> {
    prop_assert_eq!(got.len(), want.len());
    let (mut g, mut w) = (got.to_vec(), want.to_vec());
    for &at in fields {
        prop_assert!(
            same_value(word(got, at), word(want, at)),
            "checksum at {} differs: got {:#06x}, want {:#06x}",
            at,
            word(got, at),
            word(want, at)
        );
        g[at..at + 2].fill(0);
        w[at..at + 2].fill(0);
    }
    prop_assert_eq!(g, w);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Rewrites
// ---------------------------------------------------------------------------------------------

/// The NAT-style edit applied both ways: in place on bytes, and on the repr before re-emitting.
#[derive(Clone, Debug)]
struct Edit {
    side: Side,
    addr: IpAddr,
    port: u16,
    ident: u16,
}

fn edit(v6: bool) -> impl Strategy<Value = Edit> {
    (any::<bool>(), addr_pair(v6), any::<u16>(), any::<u16>()).prop_map(
        |(src, (addr, _), port, ident)| Edit {
            side: if src { Side::Src } else { Side::Dst },
            addr,
            port,
            ident,
        },
    )
}

fn addr_octets(a: IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(v) => v.octets().to_vec(),
        IpAddr::V6(v) => v.octets().to_vec(),
    }
}

fn apply_in_place(buf: &mut [u8], meta: &IpMeta, e: &Edit, transport: bool) {
    rewrite_addr(buf, meta, e.side, &addr_octets(e.addr));
    if transport {
        rewrite_port(buf, meta, e.side, e.port);
        rewrite_icmp_ident(buf, meta, e.ident);
    }
}

fn apply_to_repr(r: &PacketRepr, e: &Edit) -> PacketRepr {
    let mut r = r.clone();
    match e.side {
        Side::Src => r.ip.src = e.addr,
        Side::Dst => r.ip.dst = e.addr,
    }
    match &mut r.transport {
        TransportRepr::Tcp {
            src_port, dst_port, ..
        }
        | TransportRepr::Udp {
            src_port, dst_port, ..
        } => match e.side {
            Side::Src => *src_port = e.port,
            Side::Dst => *dst_port = e.port,
        },
        TransportRepr::Icmp(
            IcmpRepr::EchoRequest { ident, .. } | IcmpRepr::EchoReply { ident, .. },
        ) => *ident = e.ident,
        _ => {}
    }
    r
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Every kind of repr survives emit then parse (up to emit's normalisation), its checksums
    /// verify, and the parsed repr emits the same bytes again.
    #[test]
    fn parse_of_emit_gives_the_repr_back(r in any_packet()) {
        let bytes = r.try_emit().expect("generated reprs fit the wire format");
        prop_assert_eq!(&bytes, &r.emit());
        let (parsed, report) = PacketRepr::parse(&bytes).expect("emitted packet parses");
        prop_assert_eq!(&parsed, &normalised(&r));
        prop_assert!(report.all_ok(), "{:?}", report);
        prop_assert_eq!(parsed.emit(), bytes);
    }

    /// A zero IPv4 UDP checksum is emitted as zero and parsed back as such; a computed checksum
    /// is never zero.
    #[test]
    fn udp_zero_checksum_only_when_asked(r in translatable(false)) {
        let bytes = r.emit();
        let meta = parse_ip(&bytes).expect("parses");
        if let TransportRepr::Udp { zero_checksum, .. } = r.transport {
            let field = word(&bytes, meta.l4_offset + 6);
            prop_assert_eq!(field == 0, zero_checksum);
        }
    }

    /// Splitting a datagram into fragments: each fragment parses strictly and round-trips byte
    /// for byte, the first one holds the transport header (with the whole datagram's checksum),
    /// and the fragments' data concatenates to the datagram's transport bytes.
    #[test]
    fn fragments_round_trip_and_reassemble(
        r in any::<bool>().prop_flat_map(translatable),
        chunk in 8..=48usize,
    ) {
        let whole = r.emit();
        let whole_meta = parse_ip(&whole).expect("parses");
        let frags = r.emit_fragments(chunk);
        let mut data = Vec::new();
        for (i, f) in frags.iter().enumerate() {
            let meta = parse_ip(f).expect("fragment parses");
            let (p, report) = PacketRepr::parse(f).expect("fragment parses");
            prop_assert!(report.all_ok());
            prop_assert_eq!(&p.emit(), f);
            if frags.len() > 1 {
                let fr = p.ip.fragment.expect("is a fragment");
                prop_assert_eq!(fr.offset_bytes as usize, data.len());
                prop_assert_eq!(fr.more, i + 1 < frags.len());
                let is_raw = matches!(p.transport, TransportRepr::Raw { .. });
                prop_assert!(is_raw, "fragment not kept verbatim: {:?}", p.transport);
                prop_assert_eq!(ports(f, &meta), if i == 0 {
                    ports(&whole, &whole_meta)
                } else {
                    (0, 0)
                });
            }
            data.extend_from_slice(&f[meta.l4_offset..meta.end]);
        }
        prop_assert_eq!(&data[..], &whole[whole_meta.l4_offset..]);
    }

    /// In-place rewrites of address, port and echo identifier give the same packet as editing
    /// the repr and emitting it again (checksums compared as one's-complement values).
    #[test]
    fn incremental_rewrite_equals_recomputation(
        (r, e) in any::<bool>().prop_flat_map(|v6| (translatable(v6), edit(v6))),
    ) {
        let mut bytes = r.emit();
        let meta = parse_ip(&bytes).expect("parses");
        apply_in_place(&mut bytes, &meta, &e, true);
        let want = apply_to_repr(&r, &e).emit();
        assert_same_packet(&bytes, &want, &checksum_fields(&meta))?;
        let (_, report) = PacketRepr::parse(&bytes).expect("rewritten packet parses");
        prop_assert!(report.all_ok(), "{:?}", report);
    }

    /// The fused per-packet rewrite gives the same bytes as the separate address and
    /// port/identifier rewrites (checksums compared as one's-complement values).
    #[test]
    fn fused_endpoint_rewrite_equals_separate_rewrites(
        r in any::<bool>().prop_flat_map(translatable),
        src in any::<bool>(),
        port in any::<u16>(),
        seed in any::<u8>(),
    ) {
        let mut a = r.emit();
        let meta = parse_ip(&a).expect("parses");
        let side = if src { Side::Src } else { Side::Dst };
        let addr: Vec<u8> = (0..meta.addr_len()).map(|i| seed.wrapping_mul(31).wrapping_add(i as u8)).collect();
        let mut b = a.clone();
        rewrite_endpoint(&mut a, &meta, side, &addr, port);
        rewrite_addr(&mut b, &meta, side, &addr);
        rewrite_port(&mut b, &meta, side, port);
        rewrite_icmp_ident(&mut b, &meta, port);
        assert_same_packet(&a, &b, &checksum_fields(&meta))?;
        prop_assert!(PacketRepr::parse(&a).expect("parses").1.all_ok());
    }

    /// The fast path's TCP/UDP rewrite writes exactly the bytes of the general one, whatever
    /// the checksum field held on input (a wrong value, or an IPv4 UDP zero meaning "none").
    #[test]
    fn transport_endpoint_rewrite_writes_what_the_general_rewrite_writes(
        r in any::<bool>().prop_flat_map(translatable),
        src in any::<bool>(),
        port in any::<u16>(),
        seed in any::<u8>(),
        check in prop_oneof![Just(None), Just(Some(0u16)), any::<u16>().prop_map(Some)],
    ) {
        let mut a = r.emit();
        let meta = parse_ip(&a).expect("parses");
        prop_assume!(meta.fragment.is_none() && matches!(meta.protocol, proto::TCP | proto::UDP));
        if let Some(c) = check {
            let at = meta.l4_offset + if meta.protocol == proto::TCP { 16 } else { 6 };
            a[at..at + 2].copy_from_slice(&c.to_be_bytes());
        }
        let side = if src { Side::Src } else { Side::Dst };
        let addr: Vec<u8> = (0..meta.addr_len()).map(|i| seed.wrapping_mul(31).wrapping_add(i as u8)).collect();
        let mut b = a.clone();
        rewrite_endpoint(&mut a, &meta, side, &addr, port);
        rewrite_transport_endpoint(&mut b, &meta, side, &addr, port);
        prop_assert_eq!(a, b);
    }

    /// The same for the fragments of a datagram: the first fragment's transport checksum covers
    /// data it does not hold, and must still come out as the rewritten datagram's checksum.
    #[test]
    fn incremental_rewrite_of_fragments_equals_recomputation(
        (r, e) in any::<bool>().prop_flat_map(|v6| (translatable(v6), edit(v6))),
        chunk in 8..=48usize,
    ) {
        let got: Vec<Vec<u8>> = r
            .emit_fragments(chunk)
            .into_iter()
            .map(|mut f| {
                let meta = parse_ip(&f).expect("fragment parses");
                apply_in_place(&mut f, &meta, &e, true);
                f
            })
            .collect();
        let want = apply_to_repr(&r, &e).emit_fragments(chunk);
        prop_assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            let meta = parse_ip(w).expect("fragment parses");
            assert_same_packet(g, w, &checksum_fields(&meta))?;
        }
    }

    /// A packet whose checksums were wrong on input stays wrong by exactly the same amount after
    /// a rewrite: incremental updates never "fix" (or newly break) a checksum.
    #[test]
    fn wrong_checksums_stay_wrong_by_the_same_delta(
        (r, e) in any::<bool>().prop_flat_map(|v6| (translatable(v6), edit(v6))),
        deltas in (1..0xFFFFu32, 1..0xFFFFu32),
    ) {
        let mut bytes = r.emit();
        let meta = parse_ip(&bytes).expect("parses");
        let fields = checksum_fields(&meta);
        let mut expected_delta = Vec::new();
        for (i, &at) in fields.iter().enumerate() {
            let old = word(&bytes, at);
            let is_udp = meta.protocol == proto::UDP && at == meta.l4_offset + 6;
            // A zero IPv4 UDP checksum means "none": it is not corrupted, and stays zero.
            if is_udp && meta.version == IpVersion::V4 && old == 0 {
                expected_delta.push(None);
                continue;
            }
            let delta = if i == 0 { deltas.0 } else { deltas.1 };
            let mut bad = ((u32::from(old) + delta) % 0xFFFF) as u16;
            // Avoid writing a zero UDP checksum, which would change the packet's meaning.
            if is_udp && bad == 0 {
                bad = 0xFFFF;
            }
            bytes[at..at + 2].copy_from_slice(&bad.to_be_bytes());
            expected_delta.push(Some(ones_diff(bad, old)));
        }
        prop_assert!(!PacketRepr::parse(&bytes).expect("parses").1.all_ok());
        apply_in_place(&mut bytes, &meta, &e, true);
        let want = apply_to_repr(&r, &e).emit();
        for (&at, delta) in fields.iter().zip(&expected_delta) {
            match delta {
                None => prop_assert_eq!(word(&bytes, at), 0),
                Some(d) => prop_assert_eq!(
                    ones_diff(word(&bytes, at), word(&want, at)),
                    *d,
                    "checksum at {} drifted", at
                ),
            }
        }
    }

    /// Lax parsing (and the rewrites the NAT applies to quoted packets) never panics on any
    /// prefix of a packet, and strict parsing rejects every proper prefix of a packet with a
    /// declared length instead of misreading it.
    #[test]
    fn every_prefix_is_handled_without_panic(
        (r, e) in any::<bool>().prop_flat_map(|v6| (packet(v6), edit(v6))),
    ) {
        let bytes = r.emit();
        for len in 0..=bytes.len() {
            let prefix = &bytes[..len];
            let _ = PacketRepr::parse_lax(prefix);
            let strict = PacketRepr::parse(prefix);
            if len < bytes.len() {
                prop_assert!(strict.is_err(), "prefix of {} bytes parsed strictly", len);
            }
            if let Ok(meta) = parse_ip_lax(prefix) {
                prop_assert!(meta.l4_offset <= meta.end && meta.end <= prefix.len());
                let _ = ports(prefix, &meta);
                let mut m = prefix.to_vec();
                apply_in_place(&mut m, &meta, &e, true);
            }
        }
    }

    /// Arbitrary bytes (biased towards plausible IPv4/IPv6 headers) never make a parser or a
    /// rewrite panic, and whatever `parse` accepts is a fixed point of emit-then-parse.
    #[test]
    fn arbitrary_bytes_never_panic(
        mut buf in bytes(160),
        version in prop_oneof![Just(None), Just(Some(4u8)), Just(Some(6u8))],
        fix_length in any::<bool>(),
        e in any::<bool>().prop_flat_map(edit),
    ) {
        check_arbitrary(&mut buf, version, fix_length, &e)?;
    }

    /// Valid packets with a few bytes flipped.
    #[test]
    fn mutated_packets_never_panic(
        r in any_packet(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        e in any::<bool>().prop_flat_map(edit),
    ) {
        let mut buf = r.emit();
        for (i, x) in flips {
            let at = i.index(buf.len());
            buf[at] ^= x;
        }
        check_arbitrary(&mut buf, None, false, &e)?;
    }
}

fn check_arbitrary(
    buf: &mut [u8],
    version: Option<u8>,
    fix_length: bool,
    e: &Edit,
) -> Result<(), TestCaseError> {
    if let (Some(v), Some(&first)) = (version, buf.first()) {
        buf[0] = (v << 4) | (first & 0x0F);
        if v == 4 && fix_length && buf.len() >= 20 {
            buf[0] = 0x45;
            let total = buf.len() as u16;
            buf[2..4].copy_from_slice(&total.to_be_bytes());
        }
        if v == 6 && fix_length && buf.len() >= 40 {
            let payload = (buf.len() - 40) as u16;
            buf[4..6].copy_from_slice(&payload.to_be_bytes());
        }
    }
    let _ = PacketRepr::parse_lax(buf);
    if let Ok(meta) = parse_ip_lax(buf) {
        prop_assert!(meta.l4_offset <= meta.end && meta.end <= buf.len());
        let _ = ports(buf, &meta);
    }
    if let Ok(meta) = parse_ip(buf) {
        prop_assert!(meta.l4_offset <= meta.end && meta.end <= buf.len());
        let _ = ports(buf, &meta);
        if e.addr.is_ipv6() == (meta.version == IpVersion::V6) {
            let mut m = buf.to_vec();
            apply_in_place(&mut m, &meta, e, true);
        }
    }
    if let Ok((p, _)) = PacketRepr::parse(buf) {
        let again = p.emit();
        let (q, report) = PacketRepr::parse(&again).expect("re-emitted packet parses");
        prop_assert_eq!(&q, &p);
        prop_assert!(report.all_ok(), "{:?}", report);
    }
    Ok(())
}
