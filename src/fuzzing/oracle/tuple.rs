//! The transport facts of a packet the oracle's extras compare with flows and NICs: a small
//! strict (or, for a quoted packet, lax) reading of addresses, ports and ICMP kinds.

use std::net::IpAddr;

use crate::wire::icmp::{is_echo_reply, is_echo_request, is_error as is_icmp_error_type, is_icmp};
use crate::wire::rewrite::ports;
use crate::wire::{parse_ip, parse_ip_lax, proto};

/// What a packet carries above IP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// TCP or UDP.
    Ports { src: u16, dst: u16 },
    /// ICMP/ICMPv6 echo request.
    EchoRequest { ident: u16 },
    /// ICMP/ICMPv6 echo reply.
    EchoReply { ident: u16 },
    /// An ICMP error and (when it parses) the packet it quotes.
    IcmpError { quoted: Option<Box<Tuple>> },
    /// Another ICMP message.
    OtherIcmp,
    /// A fragment without the transport header.
    NoTransport,
    /// Another protocol.
    Other,
}

/// Addresses, protocol and [`Kind`] of a packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Tuple {
    pub(super) protocol: u8,
    pub(super) src: IpAddr,
    pub(super) dst: IpAddr,
    pub(super) kind: Kind,
}

/// True when `buf` parses as an ICMP error.
pub(super) fn is_icmp_error(buf: &[u8]) -> bool {
    parse_ip(buf).is_ok_and(|m| {
        m.has_l4_header()
            && is_icmp(m.version, m.protocol)
            && buf
                .get(m.l4_offset)
                .is_some_and(|&t| is_icmp_error_type(m.version, t))
    })
}

/// Reads the tuple of a packet (strictly, or laxly for a quoted packet, where fields cut off by
/// truncation read as absent: ports need 4 bytes, identifiers 6).
pub(super) fn tuple_of(buf: &[u8], lax: bool) -> Option<Tuple> {
    let meta = if lax {
        parse_ip_lax(buf).ok()?
    } else {
        parse_ip(buf).ok()?
    };
    let l4 = &buf[meta.l4_offset..meta.end];
    let p = meta.protocol;
    let kind = if !meta.has_l4_header() {
        Kind::NoTransport
    } else if matches!(p, proto::TCP | proto::UDP) {
        if l4.len() < 4 {
            return None;
        }
        let (src, dst) = ports(buf, &meta);
        Kind::Ports { src, dst }
    } else if is_icmp(meta.version, p) {
        let t = *l4.first()?;
        let ident = l4.get(4..6).map(|b| u16::from_be_bytes([b[0], b[1]]));
        let v = meta.version;
        if is_echo_request(v, t) {
            Kind::EchoRequest { ident: ident? }
        } else if is_echo_reply(v, t) {
            Kind::EchoReply { ident: ident? }
        } else if is_icmp_error_type(v, t) && !lax {
            Kind::IcmpError {
                quoted: l4.get(8..).and_then(|q| tuple_of(q, true)).map(Box::new),
            }
        } else {
            Kind::OtherIcmp
        }
    } else {
        Kind::Other
    };
    Some(Tuple {
        protocol: p,
        src: meta.src(buf),
        dst: meta.dst(buf),
        kind,
    })
}
