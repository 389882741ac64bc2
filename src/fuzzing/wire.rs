//! The `wire_parse` harness and the checksum fixer the gateway harnesses use.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::wire::checksum;
use crate::wire::icmp;
use crate::wire::parse::{IpMeta, IpVersion};
use crate::wire::rewrite::{Side, rewrite_addr, rewrite_icmp_ident, rewrite_port};
use crate::wire::view::UdpView;
use crate::wire::{IcmpRepr, PacketRepr, TransportRepr, parse_ip, parse_ip_lax, proto};

/// Target `wire_parse`: any bytes through every parser.
///
/// Oracle:
/// - strict and lax IP parsing and [`PacketRepr::parse`]/[`PacketRepr::parse_lax`] never panic,
///   return offsets inside the buffer, and agree (strict success implies the same lax result;
///   `PacketRepr::parse` succeeds exactly when `parse_ip` does);
/// - a parsed repr is a fixed point: it emits exactly (`try_emit` succeeds), the emitted bytes
///   parse back to the same repr with every checksum valid, and emit again to the same bytes
///   (parsing already applies the normalisation `tests/wire_props.rs` describes, so no further
///   normalisation is needed);
/// - on a packet whose checksums verify, the NAT's in-place rewrites (address, port, ICMP
///   identifier; RFC 1624 incremental updates) keep them valid and change exactly the fields the
///   repr says.
pub fn wire_parse(data: &[u8]) {
    let strict = parse_ip(data);
    let lax = parse_ip_lax(data);
    for meta in [&strict, &lax].into_iter().flatten() {
        assert!(
            meta.l4_offset <= meta.end && meta.end <= data.len(),
            "wire: offsets outside the buffer: {meta:?} for {} bytes",
            data.len()
        );
    }
    if let Ok(m) = &strict {
        assert_eq!(lax.as_ref(), Ok(m), "wire: lax parse disagrees with strict");
    }
    let parsed = PacketRepr::parse(data);
    assert_eq!(
        parsed.is_ok(),
        strict.is_ok(),
        "wire: PacketRepr::parse and parse_ip disagree: {parsed:?} vs {strict:?}"
    );
    let parsed_lax = PacketRepr::parse_lax(data);
    assert_eq!(
        parsed_lax.is_ok(),
        lax.is_ok(),
        "wire: PacketRepr::parse_lax and parse_ip_lax disagree"
    );
    let (Ok((repr, report)), Ok(meta)) = (parsed, strict) else {
        return;
    };
    let bytes = match repr.try_emit() {
        Ok(b) => b,
        Err(e) => panic!("wire: a parsed packet does not emit exactly ({e}): {repr:?}"),
    };
    assert_eq!(bytes, repr.emit(), "wire: try_emit and emit differ");
    match PacketRepr::parse(&bytes) {
        Ok((again, again_report)) => {
            assert_eq!(again, repr, "wire: emit/parse round trip changed the repr");
            assert!(
                again_report.all_ok(),
                "wire: emitted packet has a bad checksum: {again_report:?}"
            );
            assert_eq!(again.emit(), bytes, "wire: second emit differs");
        }
        Err(e) => panic!("wire: emitted packet does not parse ({e}): {repr:?}"),
    }
    if report.all_ok() {
        check_rewrites(data, &meta, &repr);
    }
}

/// Applies the gateway's three in-place rewrites to a copy of a packet whose checksums verify,
/// and checks the result against the same edit made on the repr.
fn check_rewrites(data: &[u8], meta: &IpMeta, repr: &PacketRepr) {
    let h = fnv(data);
    let (port, ident) = ((h >> 8) as u16, (h >> 24) as u16);
    let new_src = match meta.version {
        IpVersion::V4 => IpAddr::V4(Ipv4Addr::from((h >> 32) as u32)),
        IpVersion::V6 => IpAddr::V6(Ipv6Addr::from(u128::from(h) << 64 | u128::from(!h))),
    };
    let mut buf = data[..meta.end].to_vec();
    rewrite_addr(&mut buf, meta, Side::Src, &addr_octets(new_src));
    rewrite_port(&mut buf, meta, Side::Dst, port);
    rewrite_icmp_ident(&mut buf, meta, ident);
    let (got, got_report) = match PacketRepr::parse(&buf) {
        Ok(p) => p,
        Err(e) => panic!("wire: rewritten packet does not parse ({e})"),
    };
    assert!(
        got_report.all_ok(),
        "wire: incremental rewrite broke a checksum: {got_report:?} (before: {repr:?})"
    );
    if !meta.is_whole() {
        // Fragments are kept as raw bytes; only the checksums are comparable.
        return;
    }
    let mut want = repr.clone();
    want.ip.src = new_src;
    match &mut want.transport {
        TransportRepr::Tcp { dst_port, .. } | TransportRepr::Udp { dst_port, .. } => {
            *dst_port = port
        }
        TransportRepr::Icmp(IcmpRepr::EchoRequest { ident: i, .. })
        | TransportRepr::Icmp(IcmpRepr::EchoReply { ident: i, .. }) => *i = ident,
        // The identifier field is bytes 4..6 of any ICMP message; the rewrite does not look at
        // the type, so an error's `rest` and another message's body change the same way.
        TransportRepr::Icmp(IcmpRepr::Error { rest, .. }) => {
            *rest = u32::from(ident) << 16 | (*rest & 0xFFFF)
        }
        TransportRepr::Icmp(IcmpRepr::Other { body, .. }) => {
            if let Some(b) = body.get_mut(..2) {
                b.copy_from_slice(&ident.to_be_bytes());
            }
        }
        TransportRepr::Raw { .. } => {}
    }
    assert_eq!(got, want, "wire: in-place rewrite and repr edit disagree");
}

fn addr_octets(a: IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(v) => v.octets().to_vec(),
        IpAddr::V6(v) => v.octets().to_vec(),
    }
}

/// FNV-1a: a cheap deterministic hash to derive rewrite values from the input itself.
fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Recomputes every checksum of a packet in place so that fuzzed packets get past the gateway's
/// checksum verification: the IPv4 header checksum; for an ICMP error, the IPv4 header checksum
/// of the quoted packet (when its header is complete); then the transport checksum of a whole
/// packet (TCP, UDP unless an IPv4 zero checksum, ICMP, ICMPv6). Does nothing to bytes that do
/// not parse strictly (the gateway drops those as malformed anyway).
pub fn fix_checksums(buf: &mut [u8]) {
    let Ok(meta) = parse_ip(buf) else {
        return;
    };
    let l4 = meta.l4_offset;
    if meta.version == IpVersion::V4 {
        checksum::set_ipv4_header(buf, l4);
    }
    if !meta.is_whole() {
        return;
    }
    if icmp::is_icmp(meta.version, meta.protocol) && meta.end >= l4 + 8 {
        fix_quoted_ip_header(&mut buf[l4 + 8..meta.end]);
    }
    // An IPv4 UDP zero checksum means "none" and stays so.
    let udp_none = meta.protocol == proto::UDP
        && meta.version == IpVersion::V4
        && UdpView::new_unchecked(&buf[l4..meta.end]).checksum() == 0;
    if !udp_none {
        checksum::fill_transport(buf, &meta);
    }
}

fn fix_quoted_ip_header(quoted: &mut [u8]) {
    if let Ok(q) = parse_ip_lax(quoted)
        && q.version == IpVersion::V4
    {
        checksum::set_ipv4_header(quoted, q.l4_offset);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fix_checksums_repairs_a_corrupted_packet() {
        let a = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let b = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        let quoted = PacketRepr::udp((b, 53), (a, 4000), b"q").emit();
        let mut err = PacketRepr::icmp_error(a, b, 3, 3, &quoted).emit();
        // Break the outer, the quoted IP and the ICMP checksums.
        err[11] ^= 1;
        err[28 + 11] ^= 1;
        err[22] ^= 1;
        fix_checksums(&mut err);
        let (_, report) = PacketRepr::parse(&err).expect("parses");
        assert!(report.all_ok());
        assert!(checksum::verifies(checksum::sum(&err[28..48])));
    }
}
