//! The five-tuple and the few transport facts the simulator, the checkers and replay key on:
//! natsim's one packet-to-tuple parser.

use std::net::{IpAddr, SocketAddr};

use super::icmp::{self, IcmpKind};
use super::parse::{IpMeta, parse_ip, parse_ip_lax, proto};
use super::view::{IcmpView, TcpView, UdpView};

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
        // Both parses leave at least 8 transport bytes in `buf` (strict: the protocol's fixed
        // header; quoted: checked above), so the unchecked views read only bytes that are there.
        // A quoted packet's fields are read even where its own length field says it ended.
        let h = &buf[l4..];
        match meta.protocol {
            proto::TCP => {
                let tcp = TcpView::new_unchecked(h);
                t.src_port = tcp.src_port();
                t.dst_port = tcp.dst_port();
                // A quoted TCP header may be cut after 8 bytes: ports and sequence are there.
                if end >= l4 + TcpView::<&[u8]>::HEADER_LEN {
                    t.seq = tcp.seq();
                    t.ack = tcp.ack();
                    t.tcp_flags = tcp.flags();
                    t.payload_offset = (l4 + tcp.header_len()).min(end);
                    t.payload_len = end - t.payload_offset;
                }
            }
            proto::UDP => {
                let udp = UdpView::new_unchecked(h);
                t.src_port = udp.src_port();
                t.dst_port = udp.dst_port();
                t.payload_offset = (l4 + 8).min(end);
                t.payload_len = end - t.payload_offset;
            }
            proto::ICMP | proto::ICMPV6 => {
                let msg = IcmpView::new_unchecked(h);
                let kind = icmp::classify(meta.version, msg.msg_type());
                t.icmp = Some(kind);
                t.icmp_seq = msg.seq_no();
                match kind {
                    IcmpKind::EchoRequest => t.src_port = msg.ident(),
                    IcmpKind::EchoReply => t.dst_port = msg.ident(),
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
    let t = *buf.get(meta.l4_offset)?;
    let is_icmp = meta.protocol == proto::ICMP || meta.protocol == proto::ICMPV6;
    (is_icmp && icmp::is_error(meta.version, t) && meta.end >= meta.l4_offset + 8 + 20)
        .then_some(meta.l4_offset + 8)
}
