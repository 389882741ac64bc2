//! Per-packet work the replay does around the gateway: checksum checks and repair on ingest,
//! readdressing captured reply halves to the NAT, and short tuple descriptions.

use std::fmt::{self, Write as _};
use std::net::{IpAddr, SocketAddr};

use crate::nat::{NicId, l4_checksum_ok};
use crate::sim::dataplane::Dataplane;
use crate::wire::checksum;
use crate::wire::parse::{IpMeta, IpVersion, be16, parse_ip, parse_ip_lax, proto, put16};
use crate::wire::rewrite::{Side, rewrite_addr, rewrite_icmp_ident, rewrite_port};

/// True when the IPv4 header checksum verifies (always for IPv6, which has none).
#[inline]
pub fn ip_header_ok(buf: &[u8], meta: &IpMeta) -> bool {
    meta.version == IpVersion::V6 || checksum::verifies(checksum::sum(&buf[..meta.l4_offset]))
}

/// True when every checksum the gateway verifies is right (IPv4 header; transport of a whole
/// packet).
#[inline]
pub fn checksums_ok(buf: &[u8], meta: &IpMeta) -> bool {
    ip_header_ok(buf, meta) && (!meta.is_whole() || l4_checksum_ok(buf, meta))
}

/// Which checksums [`fix_checksums`] rewrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fixed {
    /// The IPv4 header checksum.
    pub ip_header: bool,
    /// The TCP/UDP/ICMP/ICMPv6 checksum.
    pub transport: bool,
}

/// Recomputes the IPv4 header checksum and, for whole packets, the transport checksum when they
/// do not verify (captures taken on a host with checksum offload carry garbage there).
pub fn fix_checksums(buf: &mut [u8], meta: &IpMeta) -> Fixed {
    let mut fixed = Fixed::default();
    if !ip_header_ok(buf, meta) {
        checksum::set_ipv4_header(buf, meta.l4_offset);
        fixed.ip_header = true;
    }
    if meta.is_whole() && !l4_checksum_ok(buf, meta) {
        fixed.transport = recompute_transport_checksum(buf, meta);
    }
    fixed
}

/// Writes the full transport checksum of a whole packet. Returns false for protocols without
/// one (or a header too short to hold it).
pub fn recompute_transport_checksum(buf: &mut [u8], meta: &IpMeta) -> bool {
    let l4 = meta.l4_offset;
    let icmp = match meta.version {
        IpVersion::V4 => proto::ICMP,
        IpVersion::V6 => proto::ICMPV6,
    };
    let (at, pseudo, udp) = match meta.protocol {
        proto::TCP => (l4 + 16, true, false),
        proto::UDP => (l4 + 6, true, true),
        p if p == icmp => (l4 + 2, meta.version == IpVersion::V6, false),
        _ => return false,
    };
    if at + 2 > meta.end {
        return false;
    }
    let mut len = meta.end - l4;
    if udp {
        len = len.min(usize::from(be16(buf, l4 + 4)));
    }
    put16(buf, at, 0);
    let mut acc = checksum::sum(&buf[l4..l4 + len]);
    if pseudo {
        let src = &buf[meta.src_offset()..meta.src_offset() + meta.addr_len()];
        let dst = &buf[meta.dst_offset()..meta.dst_offset() + meta.addr_len()];
        acc += match meta.version {
            IpVersion::V4 => checksum::pseudo_header_v4(src, dst, meta.protocol, len as u32),
            IpVersion::V6 => checksum::pseudo_header_v6(src, dst, meta.protocol, len as u32),
        };
    }
    let mut c = checksum::finish(acc);
    // RFC 768: a computed zero is sent as all ones; zero means "no checksum".
    if udp && c == 0 {
        c = 0xFFFF;
    }
    put16(buf, at, c);
    true
}

/// What [`readdress_inbound`] did to a captured reply half.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Readdress {
    /// It answers a live flow: now addressed to that flow's NAT endpoint.
    ToFlow,
    /// No live flow: addressed to the NAT IP, port kept (it is unsolicited, as it would be).
    Unsolicited,
    /// A non-first fragment: addressed to the NAT IP (the gateway matches it by IP ID).
    Fragment,
    /// Did not parse: left alone (the gateway drops it as malformed).
    Unparsed,
}

impl Readdress {
    /// All outcomes, in counter order.
    pub const ALL: [Readdress; 4] = [
        Readdress::ToFlow,
        Readdress::Unsolicited,
        Readdress::Fragment,
        Readdress::Unparsed,
    ];

    /// Stable name.
    pub fn name(self) -> &'static str {
        match self {
            Readdress::ToFlow => "to_flow",
            Readdress::Unsolicited => "unsolicited",
            Readdress::Fragment => "fragment",
            Readdress::Unparsed => "unparsed",
        }
    }
}

fn addr_bytes(ip: &IpAddr) -> ([u8; 16], usize) {
    let mut out = [0u8; 16];
    match ip {
        IpAddr::V4(a) => {
            out[..4].copy_from_slice(&a.octets());
            (out, 4)
        }
        IpAddr::V6(a) => {
            out.copy_from_slice(&a.octets());
            (out, 16)
        }
    }
}

fn set_addr(buf: &mut [u8], meta: &IpMeta, side: Side, ip: &IpAddr) {
    let (bytes, len) = addr_bytes(ip);
    if len == meta.addr_len() {
        rewrite_addr(buf, meta, side, &bytes[..len]);
    }
}

fn is_echo_reply(meta: &IpMeta, t: u8) -> bool {
    matches!(
        (meta.version, meta.protocol, t),
        (IpVersion::V4, proto::ICMP, 0) | (IpVersion::V6, proto::ICMPV6, 129)
    )
}

fn is_icmp_error(meta: &IpMeta, t: u8) -> bool {
    matches!(
        (meta.version, meta.protocol, t),
        (IpVersion::V4, proto::ICMP, 3 | 11 | 12) | (IpVersion::V6, proto::ICMPV6, 1..=4)
    )
}

/// Turns a captured reply half (addressed to the inside host `nic`) into what the internet
/// would have sent: addressed to the NAT endpoint of the flow it answers
/// ([`Dataplane::translation_of`]), with incremental checksum updates. Without a live flow the
/// destination becomes `nat_ip` with the port kept, so the gateway sees it as unsolicited.
/// ICMP errors get the quoted packet's source rewritten too (it is what the NAT sent).
pub fn readdress_inbound(
    gateway: &dyn Dataplane,
    nic: NicId,
    nat_ip: IpAddr,
    buf: &mut [u8],
) -> Readdress {
    let Ok(meta) = parse_ip(buf) else {
        return Readdress::Unparsed;
    };
    if !meta.has_l4_header() {
        set_addr(buf, &meta, Side::Dst, &nat_ip);
        return Readdress::Fragment;
    }
    let l4 = meta.l4_offset;
    let src = meta.src(buf);
    let dst = meta.dst(buf);
    // Only read as an ICMP type when it is ICMP (parsing guarantees 8 bytes then); another
    // protocol may have no payload byte at all.
    let icmp_type = match (meta.version, meta.protocol) {
        (IpVersion::V4, proto::ICMP) | (IpVersion::V6, proto::ICMPV6) => buf.get(l4).copied(),
        _ => None,
    };
    let found = match meta.protocol {
        proto::TCP | proto::UDP => gateway
            .translation_of(
                nic,
                meta.protocol,
                SocketAddr::new(dst, be16(buf, l4 + 2)),
                SocketAddr::new(src, be16(buf, l4)),
            )
            .map(|nat| {
                set_addr(buf, &meta, Side::Dst, &nat.ip());
                rewrite_port(buf, &meta, Side::Dst, nat.port());
            }),
        _ if icmp_type.is_some_and(|t| is_echo_reply(&meta, t)) => gateway
            .translation_of(
                nic,
                meta.protocol,
                SocketAddr::new(dst, be16(buf, l4 + 4)),
                SocketAddr::new(src, 0),
            )
            .map(|nat| {
                set_addr(buf, &meta, Side::Dst, &nat.ip());
                rewrite_icmp_ident(buf, &meta, nat.port());
            }),
        _ if icmp_type.is_some_and(|t| is_icmp_error(&meta, t)) => {
            readdress_icmp_error(gateway, nic, buf, &meta)
        }
        _ => None,
    };
    match found {
        Some(()) => Readdress::ToFlow,
        None => {
            set_addr(buf, &meta, Side::Dst, &nat_ip);
            Readdress::Unsolicited
        }
    }
}

/// An ICMP error quoting a packet the inside host sent: the quoted source becomes the NAT
/// endpoint, the outer destination the NAT IP; the ICMP checksum is recomputed if it was right.
fn readdress_icmp_error(
    gateway: &dyn Dataplane,
    nic: NicId,
    buf: &mut [u8],
    meta: &IpMeta,
) -> Option<()> {
    let q_off = meta.l4_offset + 8;
    let quoted = buf.get(q_off..meta.end)?;
    let qmeta = parse_ip_lax(quoted).ok()?;
    if !qmeta.has_l4_header() || qmeta.l4_offset + 4 > qmeta.end {
        return None;
    }
    let ql4 = qmeta.l4_offset;
    let (qsrc, qdst) = (qmeta.src(quoted), qmeta.dst(quoted));
    let (inside, remote) = match qmeta.protocol {
        proto::TCP | proto::UDP => (
            SocketAddr::new(qsrc, be16(quoted, ql4)),
            SocketAddr::new(qdst, be16(quoted, ql4 + 2)),
        ),
        proto::ICMP | proto::ICMPV6 if qmeta.l4_offset + 6 <= qmeta.end => (
            SocketAddr::new(qsrc, be16(quoted, ql4 + 4)),
            SocketAddr::new(qdst, 0),
        ),
        _ => return None,
    };
    let nat = gateway.translation_of(nic, qmeta.protocol, inside, remote)?;
    let was_ok = l4_checksum_ok(buf, meta);
    let quoted = &mut buf[q_off..meta.end];
    set_addr(quoted, &qmeta, Side::Src, &nat.ip());
    if matches!(qmeta.protocol, proto::TCP | proto::UDP) {
        rewrite_port(quoted, &qmeta, Side::Src, nat.port());
    } else {
        rewrite_icmp_ident(quoted, &qmeta, nat.port());
    }
    set_addr(buf, meta, Side::Dst, &nat.ip());
    if was_ok {
        recompute_transport_checksum(buf, meta);
    }
    Some(())
}

/// A packet's tuple for verdict lines, e.g. `tcp 10.0.0.1:4000 > 8.8.8.8:80`; `-` when it does
/// not parse.
pub struct Tuple<'a>(pub &'a [u8]);

impl fmt::Display for Tuple<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let buf = self.0;
        let Ok(meta) = parse_ip(buf) else {
            return f.write_char('-');
        };
        let (src, dst) = (meta.src(buf), meta.dst(buf));
        let l4 = meta.l4_offset;
        let port = |at: usize| be16(buf, at);
        if !meta.has_l4_header() {
            return write!(f, "fragment proto {} {src} > {dst}", meta.protocol);
        }
        match meta.protocol {
            proto::TCP => write!(
                f,
                "tcp {} > {}",
                SocketAddr::new(src, port(l4)),
                SocketAddr::new(dst, port(l4 + 2))
            ),
            proto::UDP => write!(
                f,
                "udp {} > {}",
                SocketAddr::new(src, port(l4)),
                SocketAddr::new(dst, port(l4 + 2))
            ),
            proto::ICMP | proto::ICMPV6 => write!(
                f,
                "icmp type {} code {} id {} {src} > {dst}",
                buf[l4],
                buf[l4 + 1],
                port(l4 + 4)
            ),
            p => write!(f, "proto {p} {src} > {dst}"),
        }
    }
}

pub use crate::sim::comment::Endpoint;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::PacketRepr;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("address")
    }

    #[test]
    fn fix_repairs_both_checksums() {
        let mut b = PacketRepr::udp((ip("10.0.0.1"), 53), (ip("8.8.8.8"), 53), b"query").emit();
        b[10] ^= 0xff;
        b[26] ^= 0x55;
        let m = parse_ip(&b).expect("parses");
        assert!(!checksums_ok(&b, &m));
        let fixed = fix_checksums(&mut b, &m);
        assert_eq!(
            fixed,
            Fixed {
                ip_header: true,
                transport: true
            }
        );
        assert!(checksums_ok(&b, &m));
        assert!(PacketRepr::parse(&b).expect("parses").1.all_ok());
        assert_eq!(fix_checksums(&mut b, &m), Fixed::default());
    }

    #[test]
    fn fix_repairs_icmpv6_and_tcp() {
        let mut e = PacketRepr::echo_request(ip("fd00::1"), ip("2001:db8::9"), 7, 1, b"x").emit();
        let m = parse_ip(&e).expect("parses");
        e[42] ^= 1;
        assert!(fix_checksums(&mut e, &m).transport);
        assert!(PacketRepr::parse(&e).expect("parses").1.all_ok());
        let mut t =
            PacketRepr::tcp((ip("10.0.0.1"), 1), (ip("1.1.1.1"), 2), 0x02, 9, 0, b"ab").emit();
        let m = parse_ip(&t).expect("parses");
        t[36] ^= 1;
        assert!(fix_checksums(&mut t, &m).transport);
        assert!(PacketRepr::parse(&t).expect("parses").1.all_ok());
    }

    #[test]
    fn tuple_describes_packets() {
        let b = PacketRepr::udp((ip("10.0.0.1"), 53), (ip("8.8.8.8"), 5353), b"q").emit();
        assert_eq!(Tuple(&b).to_string(), "udp 10.0.0.1:53 > 8.8.8.8:5353");
        assert_eq!(Tuple(&[1, 2]).to_string(), "-");
    }
}
