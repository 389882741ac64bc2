//! The simulator's packet conveniences, on top of the one builder in [`crate::wire::build`]:
//! payloads are a fixed pattern (hosts only count them), except the RFC 5780 probe, which
//! carries a few bytes of meaning and uses [`build_udp`]'s explicit payload. The tuple and ICMP
//! classes are [`crate::wire`]'s, re-exported so simulator code names them here.
//!
//! Sizes are clamped by the builder (a payload that does not fit the 16-bit length field is cut
//! at the limit); scenario sizes are range-checked at load so that never happens in a run.

use std::net::{IpAddr, SocketAddr};

use crate::wire::build::{self, Payload};

pub use crate::wire::icmp::IcmpKind;
pub use crate::wire::tuple::{Tuple, quoted_offset};

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
    build::tcp(buf, src, dst, flags, seq, ack, Payload::Fill(payload_len));
}

/// Builds a UDP datagram carrying `payload` into `buf`.
pub fn build_udp(buf: &mut Vec<u8>, src: SocketAddr, dst: SocketAddr, payload: &[u8]) {
    build::udp(buf, src, dst, Payload::Bytes(payload));
}

/// Builds a UDP datagram with `payload_len` pattern bytes into `buf`.
pub fn build_udp_len(buf: &mut Vec<u8>, src: SocketAddr, dst: SocketAddr, payload_len: usize) {
    build::udp(buf, src, dst, Payload::Fill(payload_len));
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
    build::echo(
        buf,
        src,
        dst,
        request,
        ident,
        seq,
        Payload::Fill(payload_len),
    );
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
    build::icmp_error(buf, src, dst, icmp_type, code, quoted);
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
