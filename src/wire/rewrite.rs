//! In-place rewrites of addresses, ports and ICMP identifiers, keeping every checksum right with
//! RFC 1624 incremental updates (never a full recomputation, so a packet that arrived with a bad
//! checksum still has a bad one: natsim does not "fix" input).

use super::checksum;
use super::parse::{IpMeta, IpVersion, be16, proto, put16};

/// Which end of a packet to rewrite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The source address / port.
    Src,
    /// The destination address / port.
    Dst,
}

/// Offset of the transport checksum covering the pseudo-header, if this packet carries one:
/// TCP, UDP with a non-zero checksum (a zero IPv4 UDP checksum means "none" and stays zero), and
/// ICMPv6. `None` for non-first fragments and other protocols.
#[inline]
fn pseudo_checksum_at(buf: &[u8], meta: &IpMeta) -> Option<(usize, bool)> {
    if !meta.has_l4_header() {
        return None;
    }
    let l4 = meta.l4_offset;
    let (at, udp) = match meta.protocol {
        proto::TCP => (l4 + 16, false),
        proto::UDP => (l4 + 6, true),
        proto::ICMPV6 if meta.version == IpVersion::V6 => (l4 + 2, false),
        _ => return None,
    };
    if at + 2 > meta.end {
        return None;
    }
    if udp && meta.version == IpVersion::V4 && be16(buf, at) == 0 {
        return None;
    }
    Some((at, udp))
}

#[inline]
fn store_checksum(buf: &mut [u8], at: usize, value: u16, udp: bool) {
    // In UDP a computed zero is sent as all ones (RFC 768); zero means "no checksum".
    let v = if udp && value == 0 { 0xFFFF } else { value };
    put16(buf, at, v);
}

/// Replaces the source or destination address with `new` (4 or 16 bytes, matching the packet),
/// updating the IPv4 header checksum and any pseudo-header transport checksum.
pub fn rewrite_addr(buf: &mut [u8], meta: &IpMeta, side: Side, new: &[u8]) {
    let at = match side {
        Side::Src => meta.src_offset(),
        Side::Dst => meta.dst_offset(),
    };
    let len = meta.addr_len();
    debug_assert_eq!(new.len(), len);
    let mut old = [0u8; 16];
    old[..len].copy_from_slice(&buf[at..at + len]);
    let old = &old[..len];
    if old == new {
        return;
    }
    if meta.version == IpVersion::V4 {
        let c = checksum::update_bytes(be16(buf, 10), old, new);
        put16(buf, 10, c);
    }
    if let Some((c_at, udp)) = pseudo_checksum_at(buf, meta) {
        let c = checksum::update_bytes(be16(buf, c_at), old, new);
        store_checksum(buf, c_at, c, udp);
    }
    buf[at..at + len].copy_from_slice(new);
}

/// Replaces a TCP/UDP port, updating the transport checksum. No-op for other protocols, for
/// packets without a transport header and for truncated (lax-parsed) packets that end before the
/// port.
pub fn rewrite_port(buf: &mut [u8], meta: &IpMeta, side: Side, new: u16) {
    if !meta.has_l4_header() || !matches!(meta.protocol, proto::TCP | proto::UDP) {
        return;
    }
    let at = meta.l4_offset + if side == Side::Src { 0 } else { 2 };
    // A quoted packet may be cut inside the transport header.
    if at + 2 > meta.end {
        return;
    }
    let old = be16(buf, at);
    if old == new {
        return;
    }
    if let Some((c_at, udp)) = pseudo_checksum_at(buf, meta) {
        let c = checksum::update_word(be16(buf, c_at), old, new);
        store_checksum(buf, c_at, c, udp);
    }
    put16(buf, at, new);
}

/// Replaces the identifier of an ICMP/ICMPv6 echo message, updating the ICMP checksum. No-op for
/// other protocols (bytes 4..6 of a TCP or UDP header are not an identifier), for packets without
/// a transport header and for truncated packets that end before the identifier.
pub fn rewrite_icmp_ident(buf: &mut [u8], meta: &IpMeta, new: u16) {
    let l4 = meta.l4_offset;
    let icmp = match meta.version {
        IpVersion::V4 => proto::ICMP,
        IpVersion::V6 => proto::ICMPV6,
    };
    // The identifier (bytes 4..6) is enough: the checksum (2..4) sits before it, and a quoted
    // echo cut right after the identifier still deserves its translation.
    if meta.protocol != icmp || !meta.has_l4_header() || l4 + 6 > meta.end {
        return;
    }
    let old = be16(buf, l4 + 4);
    if old == new {
        return;
    }
    let c = checksum::update_word(be16(buf, l4 + 2), old, new);
    put16(buf, l4 + 2, c);
    put16(buf, l4 + 4, new);
}

/// RFC 1624 eqn. 3 over several words at once: `old` and `new` are the partial sums of the
/// words that changed.
#[inline]
fn apply_delta(check: u16, old: u64, new: u64) -> u16 {
    !checksum::fold(u64::from(!check) + u64::from(!checksum::fold(old)) + new)
}

/// Replaces one side's address and its port (TCP/UDP) or the echo identifier (ICMP/ICMPv6) in a
/// single pass: one delta for the IPv4 header checksum and one for the transport checksum. Same
/// result as [`rewrite_addr`] followed by [`rewrite_port`] / [`rewrite_icmp_ident`], at about half
/// the cost; the gateway's per-packet path uses it.
#[inline]
pub fn rewrite_endpoint(buf: &mut [u8], meta: &IpMeta, side: Side, new_addr: &[u8], new_port: u16) {
    let at = match side {
        Side::Src => meta.src_offset(),
        Side::Dst => meta.dst_offset(),
    };
    let len = meta.addr_len();
    debug_assert_eq!(new_addr.len(), len);
    let old_addr = checksum::sum(&buf[at..at + len]);
    let new_addr_sum = checksum::sum(new_addr);
    if meta.version == IpVersion::V4 {
        let c = apply_delta(be16(buf, 10), old_addr, new_addr_sum);
        put16(buf, 10, c);
    }
    let l4 = meta.l4_offset;
    let icmp = match meta.version {
        IpVersion::V4 => proto::ICMP,
        IpVersion::V6 => proto::ICMPV6,
    };
    let port_at = if !meta.has_l4_header() {
        None
    } else if matches!(meta.protocol, proto::TCP | proto::UDP) {
        Some(l4 + if side == Side::Src { 0 } else { 2 })
    } else if meta.protocol == icmp {
        Some(l4 + 4)
    } else {
        None
    }
    .filter(|&p| p + 2 <= meta.end);
    // ICMPv4's checksum covers the identifier but no pseudo-header; the others cover both.
    let (csum, addr_in_csum) = if meta.protocol == proto::ICMP && meta.version == IpVersion::V4 {
        (port_at.map(|_| (l4 + 2, false)), false)
    } else {
        (pseudo_checksum_at(buf, meta), true)
    };
    if let Some((c_at, udp)) = csum {
        let (mut old_s, mut new_s) = (0u64, 0u64);
        if addr_in_csum {
            old_s += old_addr;
            new_s += new_addr_sum;
        }
        if let Some(p) = port_at {
            old_s += u64::from(be16(buf, p));
            new_s += u64::from(new_port);
        }
        let c = apply_delta(be16(buf, c_at), old_s, new_s);
        store_checksum(buf, c_at, c, udp);
    }
    buf[at..at + len].copy_from_slice(new_addr);
    if let Some(p) = port_at {
        put16(buf, p, new_port);
    }
}

/// [`rewrite_endpoint`] for an unfragmented TCP or UDP packet whose headers `parse_ip` accepted
/// (so both ports and the checksum field are present): the same bytes, without the protocol and
/// fragment cases the general one must weigh. The gateway's established-flow fast path uses it;
/// a property test in `tests/wire_props.rs` holds it to [`rewrite_endpoint`].
#[inline(always)]
pub fn rewrite_transport_endpoint(
    buf: &mut [u8],
    meta: &IpMeta,
    side: Side,
    new_addr: &[u8],
    new_port: u16,
) {
    debug_assert!(meta.fragment.is_none() && matches!(meta.protocol, proto::TCP | proto::UDP));
    let len = meta.addr_len();
    debug_assert_eq!(new_addr.len(), len);
    let (at, port_at) = match side {
        Side::Src => (meta.src_offset(), meta.l4_offset),
        Side::Dst => (meta.dst_offset(), meta.l4_offset + 2),
    };
    let (c_at, udp) = if meta.protocol == proto::TCP {
        (meta.l4_offset + 16, false)
    } else {
        (meta.l4_offset + 6, true)
    };
    let old_addr = checksum::sum(&buf[at..at + len]);
    let new_addr_sum = checksum::sum(new_addr);
    if meta.version == IpVersion::V4 {
        let c = apply_delta(be16(buf, 10), old_addr, new_addr_sum);
        put16(buf, 10, c);
    }
    let check = be16(buf, c_at);
    // A zero IPv4 UDP checksum means "no checksum" and stays zero.
    if !(udp && check == 0 && meta.version == IpVersion::V4) {
        let old = old_addr + u64::from(be16(buf, port_at));
        let new = new_addr_sum + u64::from(new_port);
        store_checksum(buf, c_at, apply_delta(check, old, new), udp);
    }
    buf[at..at + len].copy_from_slice(new_addr);
    put16(buf, port_at, new_port);
}

/// Updates the checksum of the ICMP message at `l4` after bytes of its body changed (RFC 1624):
/// `before` is what was at `at` before the change, the buffer holds the new bytes there (same
/// even length). The gateway uses it when it rewrites the packet an ICMP error quotes.
pub fn update_icmp_checksum(buf: &mut [u8], l4: usize, before: &[u8], at: usize) {
    let c = checksum::update_bytes(be16(buf, l4 + 2), before, &buf[at..at + before.len()]);
    put16(buf, l4 + 2, c);
}

/// The TTL (IPv4) or hop limit (IPv6) of a parsed packet.
#[inline]
pub fn hop_limit(buf: &[u8], version: IpVersion) -> u8 {
    match version {
        IpVersion::V4 => buf[8],
        IpVersion::V6 => buf[7],
    }
}

/// Decrements the TTL / hop limit by one (the caller made sure it is at least 1). The IPv4
/// header checksum is updated incrementally (RFC 1624); IPv6 has none, and neither field is
/// part of a transport pseudo-header.
#[inline(always)]
pub fn decrement_hop_limit(buf: &mut [u8], version: IpVersion) {
    match version {
        IpVersion::V4 => {
            // TTL shares its 16-bit checksum word with the protocol byte.
            let old = be16(buf, 8);
            buf[8] -= 1;
            let c = checksum::update_word(be16(buf, 10), old, be16(buf, 8));
            put16(buf, 10, c);
        }
        IpVersion::V6 => buf[7] -= 1,
    }
}

/// Reads the (source, destination) ports of a TCP/UDP packet, or (identifier, 0) for ICMP echo.
/// A field that is not present (non-first fragment, truncated quoted packet) reads as 0.
pub fn ports(buf: &[u8], meta: &IpMeta) -> (u16, u16) {
    let l4 = meta.l4_offset;
    let end = meta.end.min(buf.len());
    let word = |at: usize| {
        if meta.has_l4_header() && at + 2 <= end {
            be16(buf, at)
        } else {
            0
        }
    };
    match meta.protocol {
        proto::TCP | proto::UDP => (word(l4), word(l4 + 2)),
        _ => (word(l4 + 4), 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{PacketRepr, parse_ip};
    use std::net::IpAddr;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    #[test]
    fn rewriting_tcp_source_keeps_checksums_valid() {
        let mut b = PacketRepr::tcp(
            (ip("10.0.0.1"), 1000),
            (ip("8.8.8.8"), 80),
            0x02,
            1,
            0,
            b"abc",
        )
        .emit();
        let m = parse_ip(&b).expect("parses");
        rewrite_addr(&mut b, &m, Side::Src, &[203, 0, 113, 1]);
        rewrite_port(&mut b, &m, Side::Src, 1024);
        let (p, report) = PacketRepr::parse(&b).expect("parses");
        assert!(report.all_ok(), "{report:?}");
        assert_eq!(p.ip.src, ip("203.0.113.1"));
    }

    #[test]
    fn zero_udp_checksum_stays_zero() {
        let mut repr = PacketRepr::udp((ip("10.0.0.1"), 53), (ip("8.8.8.8"), 53), b"q");
        if let crate::wire::TransportRepr::Udp { zero_checksum, .. } = &mut repr.transport {
            *zero_checksum = true;
        }
        let mut b = repr.emit();
        let m = parse_ip(&b).expect("parses");
        rewrite_addr(&mut b, &m, Side::Src, &[203, 0, 113, 1]);
        rewrite_port(&mut b, &m, Side::Src, 4000);
        assert_eq!(be16(&b, m.l4_offset + 6), 0);
        assert!(PacketRepr::parse(&b).expect("parses").1.all_ok());
    }
}
