//! Typed packet representations with `parse` and `emit`, in smoltcp's "repr" style. The gateway's
//! hot path works on raw offsets ([`crate::wire::parse`]); reprs are for building traffic, for
//! packets the gateway originates (ICMP errors, echo replies) and for tests.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::checksum;
use super::parse::{IpVersion, WireError, be16, parse_ip, parse_ip_lax, proto};

/// TCP flag bits.
pub mod tcp_flags {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// PSH.
    pub const PSH: u8 = 0x08;
    /// ACK.
    pub const ACK: u8 = 0x10;
}

/// The IP layer of a packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpRepr {
    /// Source address (same family as `dst`).
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// TTL / hop limit.
    pub ttl: u8,
    /// IPv4 identification or IPv6 fragment identification.
    pub ident: u32,
    /// IPv4 DSCP+ECN or IPv6 traffic class.
    pub tos: u8,
    /// IPv4 don't-fragment flag (ignored for IPv6).
    pub dont_fragment: bool,
    /// Fragmentation: `Some` emits an IPv4 fragment or an IPv6 fragment header.
    pub fragment: Option<FragmentRepr>,
    /// IPv4 options (padded to a multiple of 4 on emit), or IPv6 hop-by-hop option bytes (padded to
    /// 8-byte units minus the 2-byte header on emit). Empty for none.
    pub options: Vec<u8>,
}

/// Fragment fields of an [`IpRepr`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FragmentRepr {
    /// Offset in bytes (a multiple of 8).
    pub offset_bytes: u32,
    /// More-fragments flag.
    pub more: bool,
}

impl IpRepr {
    /// A plain header with TTL 64 and no options.
    pub fn new(src: IpAddr, dst: IpAddr) -> Self {
        IpRepr {
            src,
            dst,
            ttl: 64,
            ident: 0,
            tos: 0,
            dont_fragment: false,
            fragment: None,
            options: Vec::new(),
        }
    }

    /// The IP version, taken from the source address.
    pub fn version(&self) -> IpVersion {
        match self.src {
            IpAddr::V4(_) => IpVersion::V4,
            IpAddr::V6(_) => IpVersion::V6,
        }
    }
}

/// ICMP / ICMPv6 message bodies natsim distinguishes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IcmpRepr {
    /// Echo request (v4 type 8, v6 type 128).
    EchoRequest {
        /// Identifier (mapped like a port).
        ident: u16,
        /// Sequence number.
        seq: u16,
        /// Data.
        data: Vec<u8>,
    },
    /// Echo reply (v4 type 0, v6 type 129).
    EchoReply {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq: u16,
        /// Data.
        data: Vec<u8>,
    },
    /// An error message quoting (a prefix of) the packet that caused it.
    Error {
        /// Type (v4: 3, 11, 12; v6: 1, 2, 3, 4).
        icmp_type: u8,
        /// Code.
        code: u8,
        /// The 4 bytes after the checksum (unused / MTU / pointer).
        rest: u32,
        /// The quoted packet bytes, possibly truncated.
        quoted: Vec<u8>,
    },
    /// Anything else, kept verbatim.
    Other {
        /// Type.
        icmp_type: u8,
        /// Code.
        code: u8,
        /// Bytes after the checksum.
        body: Vec<u8>,
    },
}

/// The transport layer of a packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransportRepr {
    /// TCP segment.
    Tcp {
        /// Source port.
        src_port: u16,
        /// Destination port.
        dst_port: u16,
        /// Sequence number.
        seq: u32,
        /// Acknowledgement number.
        ack: u32,
        /// Flags ([`tcp_flags`]).
        flags: u8,
        /// Window.
        window: u16,
        /// Options bytes (padded to a multiple of 4 on emit).
        options: Vec<u8>,
        /// Payload.
        payload: Vec<u8>,
    },
    /// UDP datagram.
    Udp {
        /// Source port.
        src_port: u16,
        /// Destination port.
        dst_port: u16,
        /// Emit a zero checksum (IPv4 only: "no checksum").
        zero_checksum: bool,
        /// Payload.
        payload: Vec<u8>,
    },
    /// ICMP (IPv4) or ICMPv6 (IPv6) message.
    Icmp(IcmpRepr),
    /// Any other protocol, or a non-first fragment's data.
    Raw {
        /// Protocol number.
        protocol: u8,
        /// Bytes after the IP header chain.
        payload: Vec<u8>,
    },
}

/// A whole packet: IP layer plus transport.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PacketRepr {
    /// IP layer.
    pub ip: IpRepr,
    /// Transport layer.
    pub transport: TransportRepr,
}

/// Whether the checksums of a parsed packet verified.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ChecksumReport {
    /// IPv4 header checksum verified (always true for IPv6).
    pub ip_ok: bool,
    /// Transport checksum verified (true when absent: UDP zero checksum, fragments, raw).
    pub l4_ok: bool,
}

impl ChecksumReport {
    /// Both verified.
    pub fn all_ok(&self) -> bool {
        self.ip_ok && self.l4_ok
    }
}

fn protocol_of(ip_version: IpVersion, t: &TransportRepr) -> u8 {
    match t {
        TransportRepr::Tcp { .. } => proto::TCP,
        TransportRepr::Udp { .. } => proto::UDP,
        TransportRepr::Icmp(_) => match ip_version {
            IpVersion::V4 => proto::ICMP,
            IpVersion::V6 => proto::ICMPV6,
        },
        TransportRepr::Raw { protocol, .. } => *protocol,
    }
}

fn addr_bytes(a: &IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(v) => v.octets().to_vec(),
        IpAddr::V6(v) => v.octets().to_vec(),
    }
}

impl PacketRepr {
    /// Emits the packet with valid checksums.
    pub fn emit(&self) -> Vec<u8> {
        let version = self.ip.version();
        let protocol = protocol_of(version, &self.transport);
        let l4 = self.emit_transport(version, protocol);
        let mut out = Vec::with_capacity(60 + l4.len());
        match (self.ip.src, self.ip.dst) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => {
                let mut opts = self.ip.options.clone();
                while opts.len() % 4 != 0 {
                    opts.push(0);
                }
                let ihl = 20 + opts.len().min(40);
                opts.truncate(40);
                let total = (ihl + l4.len()).min(usize::from(u16::MAX)) as u16;
                out.push(0x40 | (ihl / 4) as u8);
                out.push(self.ip.tos);
                out.extend_from_slice(&total.to_be_bytes());
                out.extend_from_slice(&(self.ip.ident as u16).to_be_bytes());
                let mut ff: u16 = 0;
                if self.ip.dont_fragment {
                    ff |= 0x4000;
                }
                if let Some(f) = self.ip.fragment {
                    if f.more {
                        ff |= 0x2000;
                    }
                    ff |= ((f.offset_bytes / 8) as u16) & 0x1FFF;
                }
                out.extend_from_slice(&ff.to_be_bytes());
                out.push(self.ip.ttl);
                out.push(protocol);
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(&src.octets());
                out.extend_from_slice(&dst.octets());
                out.extend_from_slice(&opts);
                let c = checksum::finish(checksum::sum(&out[..ihl]));
                out[10..12].copy_from_slice(&c.to_be_bytes());
            }
            (IpAddr::V6(src), IpAddr::V6(dst)) => {
                let mut ext = Vec::new();
                let mut first_next = protocol;
                // Chain: [hop-by-hop] [fragment] transport.
                let frag_hdr = self.ip.fragment.map(|f| {
                    let mut h = vec![protocol, 0];
                    let off = ((f.offset_bytes / 8) as u16) << 3 | u16::from(f.more);
                    h.extend_from_slice(&off.to_be_bytes());
                    h.extend_from_slice(&self.ip.ident.to_be_bytes());
                    h
                });
                if frag_hdr.is_some() {
                    first_next = proto::FRAGMENT;
                }
                if !self.ip.options.is_empty() {
                    let mut body = self.ip.options.clone();
                    while (body.len() + 2) % 8 != 0 {
                        body.push(0);
                    }
                    ext.push(first_next);
                    ext.push(((body.len() + 2) / 8 - 1) as u8);
                    ext.extend_from_slice(&body);
                    first_next = proto::HOP_BY_HOP;
                }
                if let Some(h) = frag_hdr {
                    ext.extend_from_slice(&h);
                }
                let payload_len = (ext.len() + l4.len()).min(usize::from(u16::MAX)) as u16;
                let vtf: u32 = (6 << 28) | (u32::from(self.ip.tos) << 20);
                out.extend_from_slice(&vtf.to_be_bytes());
                out.extend_from_slice(&payload_len.to_be_bytes());
                out.push(first_next);
                out.push(self.ip.ttl);
                out.extend_from_slice(&src.octets());
                out.extend_from_slice(&dst.octets());
                out.extend_from_slice(&ext);
            }
            _ => {
                // Mixed families cannot be emitted; callers construct reprs from one family.
                debug_assert!(false, "IpRepr with mixed address families");
            }
        }
        out.extend_from_slice(&l4);
        out
    }

    fn emit_transport(&self, version: IpVersion, protocol: u8) -> Vec<u8> {
        let mut l4 = match &self.transport {
            TransportRepr::Tcp {
                src_port,
                dst_port,
                seq,
                ack,
                flags,
                window,
                options,
                payload,
            } => {
                let mut opts = options.clone();
                while opts.len() % 4 != 0 {
                    opts.push(0);
                }
                opts.truncate(40);
                let doff = 20 + opts.len();
                let mut b = Vec::with_capacity(doff + payload.len());
                b.extend_from_slice(&src_port.to_be_bytes());
                b.extend_from_slice(&dst_port.to_be_bytes());
                b.extend_from_slice(&seq.to_be_bytes());
                b.extend_from_slice(&ack.to_be_bytes());
                b.push(((doff / 4) as u8) << 4);
                b.push(*flags);
                b.extend_from_slice(&window.to_be_bytes());
                b.extend_from_slice(&[0, 0, 0, 0]);
                b.extend_from_slice(&opts);
                b.extend_from_slice(payload);
                b
            }
            TransportRepr::Udp {
                src_port,
                dst_port,
                payload,
                ..
            } => {
                let mut b = Vec::with_capacity(8 + payload.len());
                b.extend_from_slice(&src_port.to_be_bytes());
                b.extend_from_slice(&dst_port.to_be_bytes());
                b.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
                b.extend_from_slice(&[0, 0]);
                b.extend_from_slice(payload);
                b
            }
            TransportRepr::Icmp(icmp) => {
                let v6 = version == IpVersion::V6;
                let (t, c, rest, body): (u8, u8, [u8; 4], &[u8]) = match icmp {
                    IcmpRepr::EchoRequest { ident, seq, data } => {
                        (if v6 { 128 } else { 8 }, 0, pair(*ident, *seq), data)
                    }
                    IcmpRepr::EchoReply { ident, seq, data } => {
                        (if v6 { 129 } else { 0 }, 0, pair(*ident, *seq), data)
                    }
                    IcmpRepr::Error {
                        icmp_type,
                        code,
                        rest,
                        quoted,
                    } => (*icmp_type, *code, rest.to_be_bytes(), quoted),
                    IcmpRepr::Other {
                        icmp_type,
                        code,
                        body,
                    } => {
                        let mut b = vec![*icmp_type, *code, 0, 0];
                        b.extend_from_slice(body);
                        return self.finish_transport(version, protocol, b);
                    }
                };
                let mut b = vec![t, c, 0, 0];
                b.extend_from_slice(&rest);
                b.extend_from_slice(body);
                b
            }
            TransportRepr::Raw { payload, .. } => payload.clone(),
        };
        l4 = self.finish_transport(version, protocol, l4);
        l4
    }

    fn finish_transport(&self, version: IpVersion, protocol: u8, mut l4: Vec<u8>) -> Vec<u8> {
        // Non-first fragments and raw protocols carry no transport checksum of ours.
        if self.ip.fragment.is_some_and(|f| f.offset_bytes != 0) {
            return l4;
        }
        let src = addr_bytes(&self.ip.src);
        let dst = addr_bytes(&self.ip.dst);
        let pseudo = |len: usize| match version {
            IpVersion::V4 => checksum::pseudo_header_v4(&src, &dst, protocol, len as u32),
            IpVersion::V6 => checksum::pseudo_header_v6(&src, &dst, protocol, len as u32),
        };
        match &self.transport {
            TransportRepr::Tcp { .. } => {
                let c = checksum::finish(pseudo(l4.len()) + checksum::sum(&l4));
                l4[16..18].copy_from_slice(&c.to_be_bytes());
            }
            TransportRepr::Udp { zero_checksum, .. } => {
                if !(*zero_checksum && version == IpVersion::V4) {
                    let mut c = checksum::finish(pseudo(l4.len()) + checksum::sum(&l4));
                    if c == 0 {
                        c = 0xFFFF;
                    }
                    l4[6..8].copy_from_slice(&c.to_be_bytes());
                }
            }
            TransportRepr::Icmp(_) => {
                let base = match version {
                    IpVersion::V4 => 0,
                    IpVersion::V6 => pseudo(l4.len()),
                };
                let c = checksum::finish(base + checksum::sum(&l4));
                l4[2..4].copy_from_slice(&c.to_be_bytes());
            }
            TransportRepr::Raw { .. } => {}
        }
        l4
    }

    /// Parses a complete packet strictly and reports whether its checksums verify.
    pub fn parse(buf: &[u8]) -> Result<(PacketRepr, ChecksumReport), WireError> {
        let meta = parse_ip(buf)?;
        Self::from_meta(buf, &meta, false)
    }

    /// Parses a possibly truncated packet (as quoted in an ICMP error). Missing transport fields
    /// make the transport `Raw`.
    pub fn parse_lax(buf: &[u8]) -> Result<PacketRepr, WireError> {
        let meta = parse_ip_lax(buf)?;
        Self::from_meta(buf, &meta, true).map(|(p, _)| p)
    }

    fn from_meta(
        buf: &[u8],
        meta: &super::parse::IpMeta,
        lax: bool,
    ) -> Result<(PacketRepr, ChecksumReport), WireError> {
        let version = meta.version;
        let src = meta.src(buf);
        let dst = meta.dst(buf);
        let mut report = ChecksumReport {
            ip_ok: true,
            l4_ok: true,
        };
        let (ttl, tos, ident, dont_fragment, options) = match version {
            IpVersion::V4 => {
                let ihl = meta.l4_offset;
                report.ip_ok = checksum::verifies(checksum::sum(&buf[..ihl]));
                (
                    buf[8],
                    buf[1],
                    u32::from(be16(buf, 4)),
                    be16(buf, 6) & 0x4000 != 0,
                    buf[20..ihl].to_vec(),
                )
            }
            IpVersion::V6 => {
                let tos = ((be16(buf, 0) >> 4) & 0xFF) as u8;
                let ident = meta.fragment.map_or(0, |f| f.ident);
                let options = if buf[6] == proto::HOP_BY_HOP && buf.len() >= 48 {
                    let len = (usize::from(buf[41]) + 1) * 8;
                    buf[42..(40 + len).min(buf.len())].to_vec()
                } else {
                    Vec::new()
                };
                (buf[7], tos, ident, false, options)
            }
        };
        let fragment = meta.fragment.map(|f| FragmentRepr {
            offset_bytes: f.offset_bytes,
            more: f.more,
        });
        let ip = IpRepr {
            src,
            dst,
            ttl,
            ident,
            tos,
            dont_fragment,
            fragment,
            options,
        };
        let l4 = &buf[meta.l4_offset..meta.end];
        let raw = || TransportRepr::Raw {
            protocol: meta.protocol,
            payload: l4.to_vec(),
        };
        if !meta.has_l4_header() {
            return Ok((
                PacketRepr {
                    ip,
                    transport: raw(),
                },
                report,
            ));
        }
        let src_b = addr_bytes(&src);
        let dst_b = addr_bytes(&dst);
        let pseudo = match version {
            IpVersion::V4 => {
                checksum::pseudo_header_v4(&src_b, &dst_b, meta.protocol, l4.len() as u32)
            }
            IpVersion::V6 => {
                checksum::pseudo_header_v6(&src_b, &dst_b, meta.protocol, l4.len() as u32)
            }
        };
        // A first fragment's checksum covers the whole datagram, which is not here.
        let can_verify = meta.fragment.is_none() && !lax;
        let transport = match meta.protocol {
            proto::TCP if l4.len() >= 20 => {
                let doff = (usize::from(l4[12] >> 4) * 4).clamp(20, l4.len());
                if can_verify {
                    report.l4_ok = checksum::verifies(pseudo + checksum::sum(l4));
                }
                TransportRepr::Tcp {
                    src_port: be16(l4, 0),
                    dst_port: be16(l4, 2),
                    seq: u32::from_be_bytes([l4[4], l4[5], l4[6], l4[7]]),
                    ack: u32::from_be_bytes([l4[8], l4[9], l4[10], l4[11]]),
                    flags: l4[13],
                    window: be16(l4, 14),
                    options: l4[20..doff].to_vec(),
                    payload: l4[doff..].to_vec(),
                }
            }
            proto::UDP if l4.len() >= 8 => {
                let zero = be16(l4, 6) == 0;
                let udp_len = usize::from(be16(l4, 4)).clamp(8, l4.len());
                if can_verify && !(zero && version == IpVersion::V4) {
                    report.l4_ok = checksum::verifies(
                        match version {
                            IpVersion::V4 => checksum::pseudo_header_v4(
                                &src_b,
                                &dst_b,
                                proto::UDP,
                                udp_len as u32,
                            ),
                            IpVersion::V6 => checksum::pseudo_header_v6(
                                &src_b,
                                &dst_b,
                                proto::UDP,
                                udp_len as u32,
                            ),
                        } + checksum::sum(&l4[..udp_len]),
                    );
                }
                TransportRepr::Udp {
                    src_port: be16(l4, 0),
                    dst_port: be16(l4, 2),
                    zero_checksum: zero,
                    payload: l4[8..udp_len].to_vec(),
                }
            }
            p @ (proto::ICMP | proto::ICMPV6)
                if l4.len() >= 8 && (p == proto::ICMP) == (version == IpVersion::V4) =>
            {
                if can_verify {
                    let base = if version == IpVersion::V6 { pseudo } else { 0 };
                    report.l4_ok = checksum::verifies(base + checksum::sum(l4));
                }
                let (t, c) = (l4[0], l4[1]);
                let ident = be16(l4, 4);
                let seq = be16(l4, 6);
                let data = l4[8..].to_vec();
                let icmp = match (version, t) {
                    (IpVersion::V4, 8) | (IpVersion::V6, 128) => {
                        IcmpRepr::EchoRequest { ident, seq, data }
                    }
                    (IpVersion::V4, 0) | (IpVersion::V6, 129) => {
                        IcmpRepr::EchoReply { ident, seq, data }
                    }
                    (IpVersion::V4, 3 | 11 | 12) | (IpVersion::V6, 1..=4) => IcmpRepr::Error {
                        icmp_type: t,
                        code: c,
                        rest: u32::from_be_bytes([l4[4], l4[5], l4[6], l4[7]]),
                        quoted: data,
                    },
                    _ => IcmpRepr::Other {
                        icmp_type: t,
                        code: c,
                        body: l4[4..].to_vec(),
                    },
                };
                TransportRepr::Icmp(icmp)
            }
            _ => raw(),
        };
        Ok((PacketRepr { ip, transport }, report))
    }
}

fn pair(a: u16, b: u16) -> [u8; 4] {
    let [a0, a1] = a.to_be_bytes();
    let [b0, b1] = b.to_be_bytes();
    [a0, a1, b0, b1]
}

/// Convenience constructors for the traffic natsim generates most.
impl PacketRepr {
    /// A TCP segment with the given flags and payload.
    pub fn tcp(
        src: (IpAddr, u16),
        dst: (IpAddr, u16),
        flags: u8,
        seq: u32,
        ack: u32,
        payload: &[u8],
    ) -> Self {
        PacketRepr {
            ip: IpRepr::new(src.0, dst.0),
            transport: TransportRepr::Tcp {
                src_port: src.1,
                dst_port: dst.1,
                seq,
                ack,
                flags,
                window: 65535,
                options: Vec::new(),
                payload: payload.to_vec(),
            },
        }
    }

    /// A UDP datagram.
    pub fn udp(src: (IpAddr, u16), dst: (IpAddr, u16), payload: &[u8]) -> Self {
        PacketRepr {
            ip: IpRepr::new(src.0, dst.0),
            transport: TransportRepr::Udp {
                src_port: src.1,
                dst_port: dst.1,
                zero_checksum: false,
                payload: payload.to_vec(),
            },
        }
    }

    /// An ICMP/ICMPv6 echo request.
    pub fn echo_request(src: IpAddr, dst: IpAddr, ident: u16, seq: u16, data: &[u8]) -> Self {
        PacketRepr {
            ip: IpRepr::new(src, dst),
            transport: TransportRepr::Icmp(IcmpRepr::EchoRequest {
                ident,
                seq,
                data: data.to_vec(),
            }),
        }
    }

    /// An ICMP/ICMPv6 echo reply.
    pub fn echo_reply(src: IpAddr, dst: IpAddr, ident: u16, seq: u16, data: &[u8]) -> Self {
        PacketRepr {
            ip: IpRepr::new(src, dst),
            transport: TransportRepr::Icmp(IcmpRepr::EchoReply {
                ident,
                seq,
                data: data.to_vec(),
            }),
        }
    }

    /// An ICMP error from `src` to `dst` quoting `quoted` (truncated to fit the minimum MTU:
    /// 576 bytes for IPv4, 1280 for IPv6, as RFC 1812 and RFC 4443 ask).
    pub fn icmp_error(src: IpAddr, dst: IpAddr, icmp_type: u8, code: u8, quoted: &[u8]) -> Self {
        let max = if src.is_ipv4() { 576 - 28 } else { 1280 - 48 };
        PacketRepr {
            ip: IpRepr::new(src, dst),
            transport: TransportRepr::Icmp(IcmpRepr::Error {
                icmp_type,
                code,
                rest: 0,
                quoted: quoted[..quoted.len().min(max)].to_vec(),
            }),
        }
    }
}

/// Unspecified addresses, handy as defaults.
pub const V4_UNSPECIFIED: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
/// The IPv6 unspecified address.
pub const V6_UNSPECIFIED: IpAddr = IpAddr::V6(Ipv6Addr::UNSPECIFIED);
