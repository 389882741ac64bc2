//! Per-packet work the replay does around the gateway: checksum checks and repair on ingest,
//! readdressing captured reply halves to the NAT, and short tuple descriptions.

use std::fmt::{self, Write as _};
use std::net::{IpAddr, SocketAddr};

use crate::nat::NicId;
use crate::sim::dataplane::Dataplane;
use crate::wire::checksum::{self, l4_ok as l4_checksum_ok};
use crate::wire::icmp::{self, IcmpKind};
use crate::wire::parse::{IpMeta, IpVersion, parse_ip, parse_ip_lax, proto};
use crate::wire::rewrite::{Side, ports, rewrite_addr, rewrite_icmp_ident, rewrite_port};
use crate::wire::view::{IcmpView, TcpView, UdpView};

/// True when the IPv4 header checksum verifies (always for IPv6, which has none).
#[inline]
pub fn ip_header_ok(buf: &[u8], meta: &IpMeta) -> bool {
    meta.version == IpVersion::V6 || checksum::ipv4_header_ok(buf, meta.l4_offset)
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
    checksum::fill_transport(buf, meta)
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

/// Turns a captured reply half (addressed to the inside host `nic`) into what the internet would
/// have sent: addressed to the NAT endpoint of the flow it answers
/// ([`Inspect::translation_of`](crate::sim::dataplane::Inspect::translation_of)), with incremental
/// checksum updates. Without a live flow the destination becomes `nat_ip` with the port kept, so
/// the gateway sees it as unsolicited. ICMP errors get the quoted packet's source rewritten too (it
/// is what the NAT sent).
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
    // Only read as an ICMP message when it is ICMP of the packet's family (parsing guarantees
    // 8 bytes then); another protocol may have no payload byte at all.
    let icmp_msg = icmp::is_icmp(meta.version, meta.protocol)
        .then(|| IcmpView::new_unchecked(&buf[l4..meta.end]))
        .map(|m| (icmp::classify(meta.version, m.msg_type()), m.ident()));
    let found = match (meta.protocol, icmp_msg) {
        (proto::TCP | proto::UDP, _) => {
            let (sport, dport) = ports(buf, &meta);
            gateway.translation_of(
                nic,
                meta.protocol,
                SocketAddr::new(dst, dport),
                SocketAddr::new(src, sport),
            )
        }
        .map(|nat| {
            set_addr(buf, &meta, Side::Dst, &nat.ip());
            rewrite_port(buf, &meta, Side::Dst, nat.port());
        }),
        (_, Some((IcmpKind::EchoReply, ident))) => gateway
            .translation_of(
                nic,
                meta.protocol,
                SocketAddr::new(dst, ident),
                SocketAddr::new(src, 0),
            )
            .map(|nat| {
                set_addr(buf, &meta, Side::Dst, &nat.ip());
                rewrite_icmp_ident(buf, &meta, nat.port());
            }),
        (_, Some((IcmpKind::Error, _))) => readdress_icmp_error(gateway, nic, buf, &meta),
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
    let (qsrc, qdst) = (qmeta.src(quoted), qmeta.dst(quoted));
    // Checked above: at least the 4 port bytes are there; an identifier needs 6.
    let (qsport, qdport) = ports(quoted, &qmeta);
    let (inside, remote) = match qmeta.protocol {
        proto::TCP | proto::UDP => (SocketAddr::new(qsrc, qsport), SocketAddr::new(qdst, qdport)),
        proto::ICMP | proto::ICMPV6 if qmeta.l4_offset + 6 <= qmeta.end => {
            (SocketAddr::new(qsrc, qsport), SocketAddr::new(qdst, 0))
        }
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
        if !meta.has_l4_header() {
            return write!(f, "fragment proto {} {src} > {dst}", meta.protocol);
        }
        // Strict parsing left the protocol's fixed header (8 bytes for UDP and ICMP, 20 for TCP).
        let l4 = &buf[meta.l4_offset..meta.end];
        match meta.protocol {
            proto::TCP => {
                let h = TcpView::new_unchecked(l4);
                let (s, d) = (
                    SocketAddr::new(src, h.src_port()),
                    SocketAddr::new(dst, h.dst_port()),
                );
                write!(f, "tcp {s} > {d}")
            }
            proto::UDP => {
                let h = UdpView::new_unchecked(l4);
                let (s, d) = (
                    SocketAddr::new(src, h.src_port()),
                    SocketAddr::new(dst, h.dst_port()),
                );
                write!(f, "udp {s} > {d}")
            }
            proto::ICMP | proto::ICMPV6 => {
                let m = IcmpView::new_unchecked(l4);
                let (t, c, id) = (m.msg_type(), m.code(), m.ident());
                write!(f, "icmp type {t} code {c} id {id} {src} > {dst}")
            }
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
