//! Allocation-free packet building and a compact five-tuple view for the simulator's hot path.
//!
//! [`crate::wire::PacketRepr`] builds packets through owned `Vec`s; the simulator builds millions
//! of packets per second, so hosts write headers straight into a reused buffer here. Tests check
//! every builder against `PacketRepr::parse` (checksums included).

use std::net::{IpAddr, SocketAddr};

use crate::wire::checksum;
use crate::wire::parse::{IpMeta, IpVersion, be16, parse_ip, parse_ip_lax, proto};

/// Payload bytes are a fixed pattern; hosts only count them (except the RFC 5780 probe, which
/// carries a few bytes of meaning and uses [`build_udp`]'s explicit payload).
const FILL: u8 = 0x5a;

fn addr_bytes(a: &IpAddr, out: &mut [u8; 16]) -> usize {
    match a {
        IpAddr::V4(v) => {
            out[..4].copy_from_slice(&v.octets());
            4
        }
        IpAddr::V6(v) => {
            out.copy_from_slice(&v.octets());
            16
        }
    }
}

/// Writes the IP header for an `l4_len`-byte transport part and returns the transport offset.
fn ip_header(buf: &mut Vec<u8>, src: IpAddr, dst: IpAddr, protocol: u8, l4_len: usize) -> usize {
    buf.clear();
    // One allocation at most: pooled buffers are often fresh, and growing them field by field
    // reallocated several times per packet.
    buf.reserve(40 + l4_len);
    let (mut s, mut d) = ([0u8; 16], [0u8; 16]);
    let n = addr_bytes(&src, &mut s);
    addr_bytes(&dst, &mut d);
    if n == 4 {
        let total = (20 + l4_len) as u16;
        buf.extend_from_slice(&[0x45, 0, 0, 0, 0, 0, 0, 0, 64, protocol, 0, 0]);
        buf[2..4].copy_from_slice(&total.to_be_bytes());
        buf.extend_from_slice(&s[..4]);
        buf.extend_from_slice(&d[..4]);
        checksum::set_ipv4_header(buf, 20);
        20
    } else {
        buf.extend_from_slice(&[0x60, 0, 0, 0]);
        buf.extend_from_slice(&(l4_len as u16).to_be_bytes());
        buf.push(protocol);
        buf.push(64);
        buf.extend_from_slice(&s);
        buf.extend_from_slice(&d);
        40
    }
}

/// Fills in the transport checksum at `l4 + field` over the pseudo-header and transport part.
fn l4_checksum(buf: &mut [u8], l4: usize, field: usize, pseudo: bool) {
    let v6 = buf[0] >> 4 == 6;
    let (src, dst) = if v6 { (8, 24) } else { (12, 16) };
    let alen = if v6 { 16 } else { 4 };
    let l4_len = (buf.len() - l4) as u32;
    let protocol = if v6 { buf[6] } else { buf[9] };
    let mut acc = checksum::sum(&buf[l4..]);
    if pseudo || v6 {
        let (s, d) = (&buf[src..src + alen], &buf[dst..dst + alen]);
        acc += if v6 {
            checksum::pseudo_header_v6(s, d, protocol, l4_len)
        } else {
            checksum::pseudo_header_v4(s, d, protocol, l4_len)
        };
    }
    let mut c = checksum::finish(acc);
    if protocol == proto::UDP && c == 0 {
        c = 0xFFFF;
    }
    buf[l4 + field..l4 + field + 2].copy_from_slice(&c.to_be_bytes());
}

/// Builds a TCP segment with `payload_len` pattern bytes into `buf`.
pub fn build_tcp(
    buf: &mut Vec<u8>,
    src: SocketAddr,
    dst: SocketAddr,
    flags: u8,
    seq: u32,
    ack: u32,
    payload_len: usize,
) {
    let l4 = ip_header(buf, src.ip(), dst.ip(), proto::TCP, 20 + payload_len);
    buf.extend_from_slice(&src.port().to_be_bytes());
    buf.extend_from_slice(&dst.port().to_be_bytes());
    buf.extend_from_slice(&seq.to_be_bytes());
    buf.extend_from_slice(&ack.to_be_bytes());
    buf.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    buf.resize(buf.len() + payload_len, FILL);
    l4_checksum(buf, l4, 16, true);
}

/// Builds a UDP datagram carrying `payload` into `buf`.
pub fn build_udp(buf: &mut Vec<u8>, src: SocketAddr, dst: SocketAddr, payload: &[u8]) {
    let len = 8 + payload.len();
    let l4 = ip_header(buf, src.ip(), dst.ip(), proto::UDP, len);
    buf.extend_from_slice(&src.port().to_be_bytes());
    buf.extend_from_slice(&dst.port().to_be_bytes());
    buf.extend_from_slice(&(len as u16).to_be_bytes());
    buf.extend_from_slice(&[0, 0]);
    buf.extend_from_slice(payload);
    l4_checksum(buf, l4, 6, true);
}

/// Builds a UDP datagram with `payload_len` pattern bytes into `buf`.
pub fn build_udp_len(buf: &mut Vec<u8>, src: SocketAddr, dst: SocketAddr, payload_len: usize) {
    let len = 8 + payload_len;
    let l4 = ip_header(buf, src.ip(), dst.ip(), proto::UDP, len);
    buf.extend_from_slice(&src.port().to_be_bytes());
    buf.extend_from_slice(&dst.port().to_be_bytes());
    buf.extend_from_slice(&(len as u16).to_be_bytes());
    buf.extend_from_slice(&[0, 0]);
    buf.resize(buf.len() + payload_len, FILL);
    l4_checksum(buf, l4, 6, true);
}

/// Builds an ICMP (IPv4) or ICMPv6 (IPv6) echo request or reply.
pub fn build_echo(
    buf: &mut Vec<u8>,
    src: IpAddr,
    dst: IpAddr,
    request: bool,
    ident: u16,
    seq: u16,
    payload_len: usize,
) {
    let v6 = src.is_ipv6();
    let protocol = if v6 { proto::ICMPV6 } else { proto::ICMP };
    let icmp_type = match (v6, request) {
        (false, true) => 8,
        (false, false) => 0,
        (true, true) => 128,
        (true, false) => 129,
    };
    let l4 = ip_header(buf, src, dst, protocol, 8 + payload_len);
    buf.extend_from_slice(&[icmp_type, 0, 0, 0]);
    buf.extend_from_slice(&ident.to_be_bytes());
    buf.extend_from_slice(&seq.to_be_bytes());
    buf.resize(buf.len() + payload_len, FILL);
    l4_checksum(buf, l4, 2, false);
}

/// Builds an ICMP error (v4 type/code, or v6 type/code) quoting `quoted` (truncated to fit the
/// minimum MTU as RFC 1812 / RFC 4443 ask).
pub fn build_icmp_error(
    buf: &mut Vec<u8>,
    src: IpAddr,
    dst: IpAddr,
    icmp_type: u8,
    code: u8,
    quoted: &[u8],
) {
    let v6 = src.is_ipv6();
    let max = if v6 { 1280 - 48 } else { 576 - 28 };
    let q = &quoted[..quoted.len().min(max)];
    let protocol = if v6 { proto::ICMPV6 } else { proto::ICMP };
    let l4 = ip_header(buf, src, dst, protocol, 8 + q.len());
    buf.extend_from_slice(&[icmp_type, code, 0, 0, 0, 0, 0, 0]);
    buf.extend_from_slice(q);
    l4_checksum(buf, l4, 2, false);
}

/// ICMP message classes the simulator distinguishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IcmpKind {
    /// Echo request (v4 8, v6 128).
    EchoRequest,
    /// Echo reply (v4 0, v6 129).
    EchoReply,
    /// An error message (v4 3/11/12, v6 1–4).
    Error,
    /// Anything else.
    Other,
}

/// The facts of a packet the simulator and checkers key on. For ICMP echo the identifier is in
/// `src_port` (request) or `dst_port` (reply) so echo flows key exactly like port flows; the
/// other port is 0, as the gateway's flow view has it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tuple {
    /// IP protocol number.
    pub protocol: u8,
    /// Source address.
    pub src: IpAddr,
    /// Source port (ICMP echo request: identifier).
    pub src_port: u16,
    /// Destination address.
    pub dst: IpAddr,
    /// Destination port (ICMP echo reply: identifier).
    pub dst_port: u16,
    /// TCP flags (0 for other protocols).
    pub tcp_flags: u8,
    /// TCP sequence number.
    pub seq: u32,
    /// TCP acknowledgement number.
    pub ack: u32,
    /// Transport payload length (TCP/UDP data, ICMP data after the 8-byte header).
    pub payload_len: usize,
    /// Offset of the payload in the buffer.
    pub payload_offset: usize,
    /// ICMP class, when the protocol is ICMP/ICMPv6.
    pub icmp: Option<IcmpKind>,
    /// ICMP echo sequence number.
    pub icmp_seq: u16,
}

fn icmp_kind(version: IpVersion, t: u8) -> IcmpKind {
    match (version, t) {
        (IpVersion::V4, 8) | (IpVersion::V6, 128) => IcmpKind::EchoRequest,
        (IpVersion::V4, 0) | (IpVersion::V6, 129) => IcmpKind::EchoReply,
        (IpVersion::V4, 3 | 11 | 12) | (IpVersion::V6, 1..=4) => IcmpKind::Error,
        _ => IcmpKind::Other,
    }
}

impl Tuple {
    /// Parses the tuple of an unfragmented (or first-fragment) packet; `None` for anything
    /// malformed or without a transport header.
    pub fn parse(buf: &[u8]) -> Option<Tuple> {
        let meta = parse_ip(buf).ok()?;
        Self::from_meta(buf, &meta)
    }

    /// Like [`Tuple::parse`] for a possibly truncated packet quoted in an ICMP error.
    pub fn parse_quoted(buf: &[u8]) -> Option<Tuple> {
        let meta = parse_ip_lax(buf).ok()?;
        if buf.len() < meta.l4_offset + 8 {
            return None;
        }
        Self::from_meta(buf, &meta)
    }

    fn from_meta(buf: &[u8], meta: &IpMeta) -> Option<Tuple> {
        if !meta.has_l4_header() {
            return None;
        }
        let l4 = meta.l4_offset;
        let end = meta.end.min(buf.len());
        let mut t = Tuple {
            protocol: meta.protocol,
            src: meta.src(buf),
            src_port: 0,
            dst: meta.dst(buf),
            dst_port: 0,
            tcp_flags: 0,
            seq: 0,
            ack: 0,
            payload_len: 0,
            payload_offset: end,
            icmp: None,
            icmp_seq: 0,
        };
        match meta.protocol {
            proto::TCP if end >= l4 + 20 => {
                t.src_port = be16(buf, l4);
                t.dst_port = be16(buf, l4 + 2);
                t.seq = u32::from_be_bytes([buf[l4 + 4], buf[l4 + 5], buf[l4 + 6], buf[l4 + 7]]);
                t.ack = u32::from_be_bytes([buf[l4 + 8], buf[l4 + 9], buf[l4 + 10], buf[l4 + 11]]);
                t.tcp_flags = buf[l4 + 13];
                let off = usize::from(buf[l4 + 12] >> 4) * 4;
                t.payload_offset = (l4 + off).min(end);
                t.payload_len = end - t.payload_offset;
            }
            proto::TCP => {
                // A quoted TCP header may be cut after 8 bytes: ports and sequence are there.
                t.src_port = be16(buf, l4);
                t.dst_port = be16(buf, l4 + 2);
            }
            proto::UDP => {
                t.src_port = be16(buf, l4);
                t.dst_port = be16(buf, l4 + 2);
                t.payload_offset = (l4 + 8).min(end);
                t.payload_len = end - t.payload_offset;
            }
            p if p == proto::ICMP || p == proto::ICMPV6 => {
                let kind = icmp_kind(meta.version, buf[l4]);
                t.icmp = Some(kind);
                let ident = be16(buf, l4 + 4);
                t.icmp_seq = be16(buf, l4 + 6);
                match kind {
                    IcmpKind::EchoRequest => t.src_port = ident,
                    IcmpKind::EchoReply => t.dst_port = ident,
                    _ => {}
                }
                t.payload_offset = (l4 + 8).min(end);
                t.payload_len = end - t.payload_offset;
            }
            _ => {}
        }
        Some(t)
    }

    /// The source endpoint.
    pub fn src_addr(&self) -> SocketAddr {
        SocketAddr::new(self.src, self.src_port)
    }

    /// The destination endpoint.
    pub fn dst_addr(&self) -> SocketAddr {
        SocketAddr::new(self.dst, self.dst_port)
    }
}

/// Offset of the packet quoted in an ICMP error, or `None` when `buf` is not one.
pub fn quoted_offset(buf: &[u8]) -> Option<usize> {
    let meta = parse_ip(buf).ok()?;
    let t = icmp_kind(meta.version, *buf.get(meta.l4_offset)?);
    let is_icmp = meta.protocol == proto::ICMP || meta.protocol == proto::ICMPV6;
    (is_icmp && t == IcmpKind::Error && meta.end >= meta.l4_offset + 8 + 20)
        .then_some(meta.l4_offset + 8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{IcmpRepr, PacketRepr, TransportRepr};

    fn sa(s: &str) -> SocketAddr {
        s.parse().expect("test address")
    }

    #[test]
    fn builders_emit_packets_that_parse_with_valid_checksums() {
        let mut buf = Vec::new();
        for (src, dst) in [
            (sa("10.0.0.1:4000"), sa("198.51.100.1:80")),
            (sa("[fd00::1]:4000"), sa("[2001:db8::1]:80")),
        ] {
            build_tcp(&mut buf, src, dst, 0x12, 7, 9, 33);
            let (p, ck) = PacketRepr::parse(&buf).expect("tcp parses");
            assert!(ck.all_ok(), "{ck:?}");
            let TransportRepr::Tcp {
                seq,
                ack,
                flags,
                payload,
                ..
            } = p.transport
            else {
                panic!("not tcp")
            };
            assert_eq!((seq, ack, flags, payload.len()), (7, 9, 0x12, 33));
            let t = Tuple::parse(&buf).expect("tuple");
            assert_eq!((t.src_addr(), t.dst_addr(), t.payload_len), (src, dst, 33));

            build_udp(&mut buf, src, dst, b"hello");
            let (p, ck) = PacketRepr::parse(&buf).expect("udp parses");
            assert!(ck.all_ok());
            assert!(matches!(p.transport, TransportRepr::Udp { .. }));
            build_udp_len(&mut buf, src, dst, 100);
            assert!(PacketRepr::parse(&buf).expect("udp").1.all_ok());

            build_echo(&mut buf, src.ip(), dst.ip(), true, 77, 3, 16);
            let (p, ck) = PacketRepr::parse(&buf).expect("echo parses");
            assert!(ck.all_ok());
            assert!(matches!(
                p.transport,
                TransportRepr::Icmp(IcmpRepr::EchoRequest {
                    ident: 77,
                    seq: 3,
                    ..
                })
            ));
            let t = Tuple::parse(&buf).expect("tuple");
            assert_eq!((t.src_port, t.icmp), (77, Some(IcmpKind::EchoRequest)));

            let quoted = buf.clone();
            build_icmp_error(
                &mut buf,
                dst.ip(),
                src.ip(),
                if src.is_ipv4() { 3 } else { 1 },
                3,
                &quoted,
            );
            let (_, ck) = PacketRepr::parse(&buf).expect("error parses");
            assert!(ck.all_ok());
            let off = quoted_offset(&buf).expect("is an error");
            let q = Tuple::parse_quoted(&buf[off..]).expect("quoted tuple");
            assert_eq!(q.src_port, 77);
        }
    }
}
