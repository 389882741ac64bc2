//! Allocation-free packet building into a reused buffer: natsim's one builder of packets from
//! scratch. The simulator builds millions of packets per second, so hosts write headers straight
//! into a pooled `Vec` here instead of going through [`crate::wire::PacketRepr`]'s owned fields;
//! the packets are the ones `PacketRepr::emit` would write for the same fields (TTL 64,
//! identification 0, no options, TCP window 65535), and tests check that.
//!
//! Lengths are clamped, never truncated by a cast: a datagram whose transport part does not fit
//! the 16-bit IPv4 total length / IPv6 payload length has its payload cut at the limit (65,515
//! transport bytes over IPv4, 65,535 over IPv6), so every length field and checksum describes
//! the bytes actually written, as [`crate::wire::PacketRepr::emit`] does. Each builder returns
//! the payload bytes it wrote, so a caller can tell. Scenario sizes never need the cut: the
//! loader refuses a UDP payload over 65,507 bytes (docs/scenarios.md, "Ranges").

use std::net::{IpAddr, SocketAddr};

use super::checksum;
use super::icmp;
use super::parse::{IpVersion, proto};

/// The byte pattern of [`Payload::Fill`]; hosts only count payload bytes.
pub const FILL: u8 = 0x5a;

/// Most transport bytes (header and payload) an IPv4 datagram without options can carry.
pub const MAX_L4_V4: usize = u16::MAX as usize - 20;
/// Most transport bytes an IPv6 datagram without extension headers can carry.
pub const MAX_L4_V6: usize = u16::MAX as usize;

/// The payload of a built packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Payload<'a> {
    /// These bytes.
    Bytes(&'a [u8]),
    /// This many [`FILL`] bytes.
    Fill(usize),
}

impl Payload<'_> {
    fn len(&self) -> usize {
        match self {
            Payload::Bytes(b) => b.len(),
            Payload::Fill(n) => *n,
        }
    }

    /// Appends at most `room` bytes of the payload; returns how many.
    fn write(&self, buf: &mut Vec<u8>, room: usize) -> usize {
        let n = self.len().min(room);
        match self {
            Payload::Bytes(b) => buf.extend_from_slice(&b[..n]),
            Payload::Fill(_) => buf.resize(buf.len() + n, FILL),
        }
        n
    }
}

fn version_of(a: &IpAddr) -> IpVersion {
    match a {
        IpAddr::V4(_) => IpVersion::V4,
        IpAddr::V6(_) => IpVersion::V6,
    }
}

/// The transport room left for a header of `header_len` bytes carrying `payload` in `version`:
/// (payload bytes that fit, transport length).
fn room(version: IpVersion, header_len: usize, payload: usize) -> (usize, usize) {
    let max = match version {
        IpVersion::V4 => MAX_L4_V4,
        IpVersion::V6 => MAX_L4_V6,
    };
    let n = payload.min(max - header_len);
    (n, header_len + n)
}

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

/// Writes the IP header (family of `src`) for an `l4_len`-byte transport part, which the caller
/// has already clamped to [`MAX_L4_V4`] / [`MAX_L4_V6`]; returns the transport offset.
fn ip_header(buf: &mut Vec<u8>, src: IpAddr, dst: IpAddr, protocol: u8, l4_len: usize) -> usize {
    // A packet with one family's header and the other family's address would be garbage that
    // looks valid to the checkers; callers pick a source of the destination's family.
    assert_eq!(src.is_ipv4(), dst.is_ipv4(), "mixed address families");
    buf.clear();
    // One allocation at most: pooled buffers are often fresh, and growing them field by field
    // reallocated several times per packet.
    buf.reserve(40 + l4_len);
    let (mut s, mut d) = ([0u8; 16], [0u8; 16]);
    let n = addr_bytes(&src, &mut s);
    addr_bytes(&dst, &mut d);
    if n == 4 {
        let total = u16::try_from(20 + l4_len).unwrap_or(u16::MAX);
        buf.extend_from_slice(&[0x45, 0, 0, 0, 0, 0, 0, 0, 64, protocol, 0, 0]);
        buf[2..4].copy_from_slice(&total.to_be_bytes());
        buf.extend_from_slice(&s[..4]);
        buf.extend_from_slice(&d[..4]);
        checksum::set_ipv4_header(buf, 20);
        20
    } else {
        buf.extend_from_slice(&[0x60, 0, 0, 0]);
        buf.extend_from_slice(&u16::try_from(l4_len).unwrap_or(u16::MAX).to_be_bytes());
        buf.push(protocol);
        buf.push(64);
        buf.extend_from_slice(&s);
        buf.extend_from_slice(&d);
        40
    }
}

/// Fills in the transport checksum of the packet whose transport part starts at `l4`.
fn finish(buf: &mut [u8], version: IpVersion, protocol: u8, l4: usize) {
    let (s, d, n) = match version {
        IpVersion::V4 => (12, 16, 4),
        IpVersion::V6 => (8, 24, 16),
    };
    let (head, rest) = buf.split_at_mut(l4);
    checksum::fill_transport_part(version, &head[s..s + n], &head[d..d + n], protocol, rest);
}

/// Sets Don't Fragment on an IPv4 packet and fixes its header checksum; other packets are left
/// as they are.
pub fn set_dont_fragment(buf: &mut [u8]) {
    if buf.len() < 20 || buf[0] >> 4 != 4 {
        return;
    }
    let ihl = usize::from(buf[0] & 0x0F) * 4;
    if ihl < 20 || buf.len() < ihl {
        return;
    }
    buf[6] |= 0x40;
    checksum::set_ipv4_header(buf, ihl);
}

/// Builds a TCP segment (data offset 5, window 65535) into `buf`; returns the payload bytes
/// written.
pub fn tcp(
    buf: &mut Vec<u8>,
    src: SocketAddr,
    dst: SocketAddr,
    flags: u8,
    seq: u32,
    ack: u32,
    payload: Payload<'_>,
) -> usize {
    let version = version_of(&src.ip());
    let (n, l4_len) = room(version, 20, payload.len());
    let l4 = ip_header(buf, src.ip(), dst.ip(), proto::TCP, l4_len);
    buf.extend_from_slice(&src.port().to_be_bytes());
    buf.extend_from_slice(&dst.port().to_be_bytes());
    buf.extend_from_slice(&seq.to_be_bytes());
    buf.extend_from_slice(&ack.to_be_bytes());
    buf.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    payload.write(buf, n);
    finish(buf, version, proto::TCP, l4);
    n
}

/// Builds a UDP datagram into `buf`; returns the payload bytes written.
pub fn udp(buf: &mut Vec<u8>, src: SocketAddr, dst: SocketAddr, payload: Payload<'_>) -> usize {
    let version = version_of(&src.ip());
    let (n, l4_len) = room(version, 8, payload.len());
    let l4 = ip_header(buf, src.ip(), dst.ip(), proto::UDP, l4_len);
    buf.extend_from_slice(&src.port().to_be_bytes());
    buf.extend_from_slice(&dst.port().to_be_bytes());
    // `room` keeps the transport part within 65,535 bytes.
    buf.extend_from_slice(&u16::try_from(l4_len).unwrap_or(u16::MAX).to_be_bytes());
    buf.extend_from_slice(&[0, 0]);
    payload.write(buf, n);
    finish(buf, version, proto::UDP, l4);
    n
}

/// Builds an ICMP (IPv4) or ICMPv6 (IPv6) echo request or reply; returns the data bytes written.
pub fn echo(
    buf: &mut Vec<u8>,
    src: IpAddr,
    dst: IpAddr,
    request: bool,
    ident: u16,
    seq: u16,
    payload: Payload<'_>,
) -> usize {
    let version = version_of(&src);
    let protocol = icmp::protocol_of(version);
    let (n, l4_len) = room(version, 8, payload.len());
    let l4 = ip_header(buf, src, dst, protocol, l4_len);
    buf.extend_from_slice(&[icmp::echo_type(version, request), 0, 0, 0]);
    buf.extend_from_slice(&ident.to_be_bytes());
    buf.extend_from_slice(&seq.to_be_bytes());
    payload.write(buf, n);
    finish(buf, version, protocol, l4);
    n
}

/// Most bytes of a quoted packet an ICMP error carries: the error must fit the minimum MTU
/// (576 bytes for IPv4, RFC 1812 §4.3.2.3; 1280 for IPv6, RFC 4443 §2.4).
pub fn max_quoted(version: IpVersion) -> usize {
    match version {
        IpVersion::V4 => 576 - 28,
        IpVersion::V6 => 1280 - 48,
    }
}

/// Builds an ICMP error of `icmp_type`/`code` (the 4 bytes after the checksum zero) quoting
/// `quoted`, cut to [`max_quoted`]; returns the quoted bytes written.
pub fn icmp_error(
    buf: &mut Vec<u8>,
    src: IpAddr,
    dst: IpAddr,
    icmp_type: u8,
    code: u8,
    quoted: &[u8],
) -> usize {
    let version = version_of(&src);
    let q = &quoted[..quoted.len().min(max_quoted(version))];
    let protocol = icmp::protocol_of(version);
    let l4 = ip_header(buf, src, dst, protocol, 8 + q.len());
    buf.extend_from_slice(&[icmp_type, code, 0, 0, 0, 0, 0, 0]);
    buf.extend_from_slice(q);
    finish(buf, version, protocol, l4);
    q.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{IcmpRepr, PacketRepr, TransportRepr, parse_ip};

    fn sa(s: &str) -> SocketAddr {
        s.parse().expect("test address")
    }

    /// The builder writes exactly what `PacketRepr::emit` writes for the same fields.
    #[test]
    fn builder_matches_the_repr_byte_for_byte() {
        let mut buf = Vec::new();
        for (src, dst) in [
            (sa("10.0.0.1:4000"), sa("198.51.100.1:80")),
            (sa("[fd00::1]:4000"), sa("[2001:db8::1]:80")),
        ] {
            let (s, d) = ((src.ip(), src.port()), (dst.ip(), dst.port()));
            tcp(&mut buf, src, dst, 0x12, 7, 9, Payload::Fill(33));
            assert_eq!(buf, PacketRepr::tcp(s, d, 0x12, 7, 9, &[FILL; 33]).emit());
            udp(&mut buf, src, dst, Payload::Bytes(b"hello"));
            assert_eq!(buf, PacketRepr::udp(s, d, b"hello").emit());
            echo(&mut buf, s.0, d.0, true, 77, 3, Payload::Fill(16));
            assert_eq!(
                buf,
                PacketRepr::echo_request(s.0, d.0, 77, 3, &[FILL; 16]).emit()
            );
            echo(&mut buf, s.0, d.0, false, 77, 3, Payload::Fill(0));
            assert_eq!(buf, PacketRepr::echo_reply(s.0, d.0, 77, 3, &[]).emit());
            let quoted = vec![0x45; 2000];
            let t = if src.is_ipv4() { 3 } else { 1 };
            let n = icmp_error(&mut buf, d.0, s.0, t, 3, &quoted);
            assert_eq!(n, max_quoted(version_of(&d.0)));
            assert_eq!(buf, PacketRepr::icmp_error(d.0, s.0, t, 3, &quoted).emit());
        }
    }

    /// A payload beyond the 16-bit length is cut at the limit, never wrapped by a cast: 70,000
    /// bytes used to become a 4,472-byte datagram.
    #[test]
    fn oversized_payloads_are_clamped_to_the_length_field() {
        let mut buf = Vec::new();
        for (src, dst, max) in [
            (sa("10.0.0.1:1"), sa("10.0.0.2:2"), MAX_L4_V4),
            (sa("[fd00::1]:1"), sa("[fd00::2]:2"), MAX_L4_V6),
        ] {
            let n = udp(&mut buf, src, dst, Payload::Fill(70_000));
            assert_eq!(n, max - 8);
            let meta = parse_ip(&buf).expect("a clamped datagram parses");
            assert_eq!(meta.l4_len(), max);
            let (p, ck) = PacketRepr::parse(&buf).expect("parses");
            assert!(ck.all_ok(), "{ck:?}");
            let TransportRepr::Udp { payload, .. } = p.transport else {
                panic!("not udp")
            };
            assert_eq!(payload.len(), max - 8);

            let n = tcp(&mut buf, src, dst, 0x18, 1, 1, Payload::Fill(70_000));
            assert_eq!(n, max - 20);
            assert!(PacketRepr::parse(&buf).expect("parses").1.all_ok());

            let n = echo(
                &mut buf,
                src.ip(),
                dst.ip(),
                true,
                1,
                1,
                Payload::Fill(70_000),
            );
            assert_eq!(n, max - 8);
            let (p, ck) = PacketRepr::parse(&buf).expect("parses");
            assert!(ck.all_ok());
            assert!(matches!(
                p.transport,
                TransportRepr::Icmp(IcmpRepr::EchoRequest { .. })
            ));
        }
    }
}
