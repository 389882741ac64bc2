//! Typed packet representations with `parse` and `emit`, in smoltcp's "repr" style. The gateway's
//! hot path works on raw offsets ([`crate::wire::parse`]); reprs are for building traffic, for
//! packets the gateway originates (ICMP errors, echo replies) and for tests.
//!
//! One file (about 860 lines): `parse` and `emit` mirror each other field by field and are
//! read side by side, and the constructors at the end are the one packet builder the
//! simulator, replay and fuzzers share.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::checksum;
use super::icmp::{self, IcmpKind};
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

    /// A segment that asks to open a connection: SYN without ACK or RST. A SYN with RST is
    /// invalid and opens nothing, so RFC 5382 REQ-4's silence for unsolicited SYNs does not
    /// apply to it; the gateway and the liveness checker both decide with this.
    pub const fn is_opening_syn(flags: u8) -> bool {
        flags & (SYN | ACK | RST) == SYN
    }
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
    /// Any other protocol, or the data of a fragment that does not hold the whole datagram.
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

/// Largest IPv4 options field (IHL is 4 bits: 60-byte header).
const V4_OPTIONS_MAX: usize = 40;
/// Largest TCP options field (data offset is 4 bits: 60-byte header).
const TCP_OPTIONS_MAX: usize = 40;
/// Largest IPv6 hop-by-hop option area: (255 + 1) * 8 bytes minus the 2-byte header.
const V6_HBH_BODY_MAX: usize = 256 * 8 - 2;
/// Largest fragment offset in bytes (13-bit field in 8-byte units, both families).
const FRAGMENT_OFFSET_MAX: u32 = 0x1FFF * 8;

/// Why a repr cannot be emitted exactly; [`PacketRepr::emit`] clamps instead (see there).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EmitError {
    /// Source and destination are of different families.
    MixedFamilies,
    /// IPv4 options beyond 40 bytes or IPv6 hop-by-hop options beyond 2046 bytes (after padding).
    IpOptionsTooLong,
    /// TCP options beyond 40 bytes (after padding).
    TcpOptionsTooLong,
    /// The datagram does not fit the 16-bit IPv4 total length / IPv6 payload length.
    TooLong,
    /// Fragment offset not a multiple of 8 or beyond 65528.
    BadFragmentOffset,
}

impl fmt::Display for EmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EmitError::MixedFamilies => "mixed_families",
            EmitError::IpOptionsTooLong => "ip_options_too_long",
            EmitError::TcpOptionsTooLong => "tcp_options_too_long",
            EmitError::TooLong => "too_long",
            EmitError::BadFragmentOffset => "bad_fragment_offset",
        })
    }
}

impl std::error::Error for EmitError {}

/// `bytes` zero-padded to a multiple of `unit` after `bias` leading header bytes, then cut to
/// `max`. Zero is the end-of-list option (IPv4, TCP) and Pad1 (IPv6), so padding keeps the
/// options' meaning.
fn padded(bytes: &[u8], bias: usize, unit: usize, max: usize) -> Vec<u8> {
    let mut v = bytes.to_vec();
    while !(v.len() + bias).is_multiple_of(unit) {
        v.push(0);
    }
    v.truncate(max);
    v
}

impl PacketRepr {
    /// Checks that [`PacketRepr::emit`] would represent this repr exactly (nothing clamped), then
    /// emits it.
    pub fn try_emit(&self) -> Result<Vec<u8>, EmitError> {
        let v6 = match (self.ip.src, self.ip.dst) {
            (IpAddr::V4(_), IpAddr::V4(_)) => false,
            (IpAddr::V6(_), IpAddr::V6(_)) => true,
            _ => return Err(EmitError::MixedFamilies),
        };
        let ip_opts_ok = if v6 {
            padded(&self.ip.options, 2, 8, usize::MAX).len() <= V6_HBH_BODY_MAX
        } else {
            padded(&self.ip.options, 0, 4, usize::MAX).len() <= V4_OPTIONS_MAX
        };
        if !ip_opts_ok {
            return Err(EmitError::IpOptionsTooLong);
        }
        if let TransportRepr::Tcp { options, .. } = &self.transport
            && padded(options, 0, 4, usize::MAX).len() > TCP_OPTIONS_MAX
        {
            return Err(EmitError::TcpOptionsTooLong);
        }
        if let Some(f) = self.ip.fragment
            && (!f.offset_bytes.is_multiple_of(8) || f.offset_bytes > FRAGMENT_OFFSET_MAX)
        {
            return Err(EmitError::BadFragmentOffset);
        }
        let (_, max_l4) = self.l4_room();
        if self.transport_unclamped_len() > max_l4 {
            return Err(EmitError::TooLong);
        }
        Ok(self.emit())
    }

    /// Length of the IP header chain and the most transport bytes the length field allows.
    fn l4_room(&self) -> (usize, usize) {
        match self.ip.version() {
            IpVersion::V4 => {
                let ihl = 20 + padded(&self.ip.options, 0, 4, V4_OPTIONS_MAX).len();
                (ihl, usize::from(u16::MAX) - ihl)
            }
            IpVersion::V6 => {
                let hbh = if self.ip.options.is_empty() {
                    0
                } else {
                    2 + padded(&self.ip.options, 2, 8, V6_HBH_BODY_MAX).len()
                };
                let ext = hbh + if self.ip.fragment.is_some() { 8 } else { 0 };
                (40 + ext, usize::from(u16::MAX) - ext)
            }
        }
    }

    fn transport_unclamped_len(&self) -> usize {
        match &self.transport {
            TransportRepr::Tcp {
                options, payload, ..
            } => 20 + padded(options, 0, 4, TCP_OPTIONS_MAX).len() + payload.len(),
            TransportRepr::Udp { payload, .. } => 8 + payload.len(),
            TransportRepr::Icmp(
                IcmpRepr::EchoRequest { data, .. } | IcmpRepr::EchoReply { data, .. },
            ) => 8 + data.len(),
            TransportRepr::Icmp(IcmpRepr::Error { quoted, .. }) => 8 + quoted.len(),
            TransportRepr::Icmp(IcmpRepr::Other { body, .. }) => 4 + body.len(),
            TransportRepr::Raw { payload, .. } => payload.len(),
        }
    }

    /// Emits the packet with valid checksums.
    ///
    /// `emit` never fails and never writes inconsistent length fields; a repr that does not fit
    /// the wire format is clamped, and [`PacketRepr::try_emit`] reports it instead:
    /// - IPv4 options beyond 40 bytes, IPv6 hop-by-hop options beyond 2046 bytes and TCP options
    ///   beyond 40 bytes are cut (after zero padding to their unit);
    /// - a datagram longer than the 16-bit length field allows has its transport bytes cut at
    ///   the limit (the UDP length and every checksum then describe the bytes actually emitted);
    /// - a fragment offset is rounded down to a multiple of 8 and capped at 65528;
    /// - IPv4 keeps the low 16 bits of `ident`;
    /// - mixed address families emit an empty buffer (and assert in debug builds).
    ///
    /// A first-fragment repr (`offset_bytes == 0`, `more`) with a TCP/UDP/ICMP transport is
    /// emitted as if its payload were the whole datagram; to build real fragments, emit the
    /// datagram with [`PacketRepr::emit_fragments`].
    pub fn emit(&self) -> Vec<u8> {
        let version = self.ip.version();
        let protocol = protocol_of(version, &self.transport);
        let (header_len, max_l4) = self.l4_room();
        let mut l4 = self.emit_transport(version);
        if l4.len() > max_l4 {
            l4.truncate(max_l4);
            if let TransportRepr::Udp { .. } = self.transport
                && self.ip.fragment.is_none_or(|f| f.offset_bytes == 0)
            {
                // Keep the UDP length consistent with the cut datagram.
                l4[4..6].copy_from_slice(&(max_l4 as u16).to_be_bytes());
            }
        }
        let l4 = self.finish_transport(version, protocol, l4);
        let mut out = Vec::with_capacity(header_len + l4.len());
        let frag_field = self
            .ip
            .fragment
            .map(|f| (f.offset_bytes.min(FRAGMENT_OFFSET_MAX) / 8) as u16);
        match (self.ip.src, self.ip.dst) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => {
                let opts = padded(&self.ip.options, 0, 4, V4_OPTIONS_MAX);
                let ihl = 20 + opts.len();
                // Fits: l4 was cut to 65535 - ihl above.
                let total = (ihl + l4.len()) as u16;
                out.push(0x40 | (ihl / 4) as u8);
                out.push(self.ip.tos);
                out.extend_from_slice(&total.to_be_bytes());
                out.extend_from_slice(&(self.ip.ident as u16).to_be_bytes());
                let mut ff: u16 = 0;
                if self.ip.dont_fragment {
                    ff |= 0x4000;
                }
                if let (Some(f), Some(off)) = (self.ip.fragment, frag_field) {
                    if f.more {
                        ff |= 0x2000;
                    }
                    ff |= off;
                }
                out.extend_from_slice(&ff.to_be_bytes());
                out.push(self.ip.ttl);
                out.push(protocol);
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(&src.octets());
                out.extend_from_slice(&dst.octets());
                out.extend_from_slice(&opts);
                checksum::set_ipv4_header(&mut out, ihl);
            }
            (IpAddr::V6(src), IpAddr::V6(dst)) => {
                // Chain: [hop-by-hop] [fragment] transport. Each header names the next one, so
                // build from the transport outwards.
                let mut next = protocol;
                let mut frag_hdr = Vec::new();
                if let (Some(f), Some(off)) = (self.ip.fragment, frag_field) {
                    frag_hdr.extend_from_slice(&[next, 0]);
                    frag_hdr.extend_from_slice(&(off << 3 | u16::from(f.more)).to_be_bytes());
                    frag_hdr.extend_from_slice(&self.ip.ident.to_be_bytes());
                    next = proto::FRAGMENT;
                }
                let mut hbh = Vec::new();
                if !self.ip.options.is_empty() {
                    let body = padded(&self.ip.options, 2, 8, V6_HBH_BODY_MAX);
                    hbh.push(next);
                    hbh.push(((body.len() + 2) / 8 - 1) as u8);
                    hbh.extend_from_slice(&body);
                    next = proto::HOP_BY_HOP;
                }
                // Fits: l4 was cut to 65535 - (extension headers) above.
                let payload_len = (hbh.len() + frag_hdr.len() + l4.len()) as u16;
                let vtf: u32 = (6 << 28) | (u32::from(self.ip.tos) << 20);
                out.extend_from_slice(&vtf.to_be_bytes());
                out.extend_from_slice(&payload_len.to_be_bytes());
                out.push(next);
                out.push(self.ip.ttl);
                out.extend_from_slice(&src.octets());
                out.extend_from_slice(&dst.octets());
                out.extend_from_slice(&hbh);
                out.extend_from_slice(&frag_hdr);
            }
            _ => {
                // Mixed families cannot be emitted; callers construct reprs from one family.
                // An empty buffer fails every parse instead of passing for a packet.
                debug_assert!(false, "IpRepr with mixed address families");
                return Vec::new();
            }
        }
        out.extend_from_slice(&l4);
        out
    }

    /// Emits the datagram split into fragments carrying at most `max_data_len` transport bytes
    /// each (rounded down to a multiple of 8, at least 8), as a router would: the first fragment
    /// carries the whole transport header (enlarged to hold it if need be) with the whole
    /// datagram's checksum and length, every fragment
    /// has `ip.ident` and the same hop-by-hop options (IPv6); IPv4 options go in the first
    /// fragment only and DF is cleared. `ip.fragment` of `self` is ignored. A datagram that fits
    /// in one fragment is returned whole and unfragmented.
    pub fn emit_fragments(&self, max_data_len: usize) -> Vec<Vec<u8>> {
        let mut whole = self.clone();
        whole.ip.fragment = None;
        let bytes = whole.emit();
        let chunk = (max_data_len / 8 * 8).max(8);
        let Ok(meta) = parse_ip_lax(&bytes) else {
            return vec![bytes];
        };
        let l4 = &bytes[meta.l4_offset..meta.end];
        let protocol = protocol_of(self.ip.version(), &self.transport);
        // The first fragment carries the whole transport header (RFC 8200 §4.5 requires it for
        // IPv6; for IPv4 "tiny fragments" are an attack, RFC 1858, that strict parsing rejects).
        let header_len = match (&self.transport, l4.get(12)) {
            (TransportRepr::Tcp { .. }, Some(doff)) => usize::from(doff >> 4) * 4,
            (TransportRepr::Raw { .. }, _) => 0,
            _ => 8,
        };
        let first = chunk.max(header_len.div_ceil(8) * 8);
        if l4.len() <= first {
            return vec![bytes];
        }
        let mut pieces = vec![(0, &l4[..first])];
        pieces.extend(
            l4[first..]
                .chunks(chunk)
                .enumerate()
                .map(|(i, data)| (first + i * chunk, data)),
        );
        pieces
            .into_iter()
            .enumerate()
            .map(|(i, (offset, data))| {
                let mut ip = whole.ip.clone();
                ip.dont_fragment = false;
                ip.fragment = Some(FragmentRepr {
                    offset_bytes: offset as u32,
                    more: offset + data.len() < l4.len(),
                });
                if i > 0 && ip.version() == IpVersion::V4 {
                    ip.options.clear();
                }
                PacketRepr {
                    ip,
                    transport: TransportRepr::Raw {
                        protocol,
                        payload: data.to_vec(),
                    },
                }
                .emit()
            })
            .collect()
    }

    /// The transport bytes with zero checksum fields (lengths as the repr says, before clamping).
    fn emit_transport(&self, version: IpVersion) -> Vec<u8> {
        match &self.transport {
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
                let opts = padded(options, 0, 4, TCP_OPTIONS_MAX);
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
                // Saturates for oversized reprs; `emit` rewrites it after cutting the datagram.
                let len = u16::try_from(8 + payload.len()).unwrap_or(u16::MAX);
                b.extend_from_slice(&len.to_be_bytes());
                b.extend_from_slice(&[0, 0]);
                b.extend_from_slice(payload);
                b
            }
            TransportRepr::Icmp(icmp) => {
                let (t, c, rest, body): (u8, u8, [u8; 4], &[u8]) = match icmp {
                    IcmpRepr::EchoRequest { ident, seq, data } => {
                        (icmp::echo_type(version, true), 0, pair(*ident, *seq), data)
                    }
                    IcmpRepr::EchoReply { ident, seq, data } => {
                        (icmp::echo_type(version, false), 0, pair(*ident, *seq), data)
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
                        return b;
                    }
                };
                let mut b = vec![t, c, 0, 0];
                b.extend_from_slice(&rest);
                b.extend_from_slice(body);
                b
            }
            TransportRepr::Raw { payload, .. } => payload.clone(),
        }
    }

    fn finish_transport(&self, version: IpVersion, protocol: u8, mut l4: Vec<u8>) -> Vec<u8> {
        // Non-first fragments and raw protocols carry no transport checksum of ours.
        if self.ip.fragment.is_some_and(|f| f.offset_bytes != 0) {
            return l4;
        }
        match self.transport {
            // Raw bytes are kept verbatim, checksum included.
            TransportRepr::Raw { .. } => return l4,
            TransportRepr::Udp {
                zero_checksum: true,
                ..
            } if version == IpVersion::V4 => return l4,
            _ => {}
        }
        let src = addr_bytes(&self.ip.src);
        let dst = addr_bytes(&self.ip.dst);
        checksum::fill_transport_part(version, &src, &dst, protocol, &mut l4);
        l4
    }

    /// Parses a complete packet strictly and reports whether its checksums verify.
    ///
    /// The repr holds what natsim needs, so a few fields are not kept and `emit` writes them as
    /// zero: the IPv6 flow label, IPv4's reserved flag bit, the TCP urgent pointer and the TCP
    /// header's reserved/NS bits, and IPv6 extension headers other than a leading hop-by-hop
    /// header and the fragment header. Fragments that do not hold the whole datagram (including
    /// first fragments, whose transport checksum covers data not present) are kept verbatim as
    /// [`TransportRepr::Raw`]; the hot path reads their ports with [`crate::wire::rewrite::ports`].
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
                report.ip_ok = checksum::ipv4_header_ok(buf, ihl);
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
                // The header walk checked that a leading hop-by-hop header fits before `end`;
                // its option area is everything after the 2-byte header, padding included.
                let options = if buf[6] == proto::HOP_BY_HOP && meta.end >= 48 {
                    let len = (usize::from(buf[41]) + 1) * 8;
                    buf[42..(40 + len).min(meta.end)].to_vec()
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
        // A non-first fragment has no transport header; a first fragment has one, but its
        // checksum (and UDP length) cover the whole datagram, which a repr of this packet alone
        // cannot reproduce, so strict parsing keeps its bytes verbatim. Lax parsing (quoted
        // packets, never re-emitted as they are) decodes what is there.
        if !meta.has_l4_header() || (!lax && !meta.is_whole()) {
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
        // A first fragment's checksum covers the whole datagram, which is not here.
        let can_verify = meta.is_whole() && !lax;
        let l4_verifies = || checksum::transport_ok(version, &src_b, &dst_b, meta.protocol, l4);
        let transport = match meta.protocol {
            proto::TCP if l4.len() >= 20 => {
                let doff = (usize::from(l4[12] >> 4) * 4).clamp(20, l4.len());
                if can_verify {
                    report.l4_ok = l4_verifies();
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
                // Zero means "no checksum" only over IPv4; over IPv6 it is just a wrong
                // checksum (RFC 8200 §8.1), reported through `l4_ok`, and emit never writes it.
                let zero = be16(l4, 6) == 0 && version == IpVersion::V4;
                let udp_len = usize::from(be16(l4, 4)).clamp(8, l4.len());
                if can_verify {
                    // `transport_ok` passes an IPv4 zero checksum and sums `udp_len` bytes.
                    report.l4_ok = l4_verifies();
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
                    report.l4_ok = l4_verifies();
                }
                let (t, c) = (l4[0], l4[1]);
                let ident = be16(l4, 4);
                let seq = be16(l4, 6);
                let data = l4[8..].to_vec();
                // Echo is defined with code 0 only; another code is kept verbatim as `Other` so
                // that emit reproduces it.
                let icmp = match icmp::classify(version, t) {
                    IcmpKind::EchoRequest if c == 0 => IcmpRepr::EchoRequest { ident, seq, data },
                    IcmpKind::EchoReply if c == 0 => IcmpRepr::EchoReply { ident, seq, data },
                    IcmpKind::Error => IcmpRepr::Error {
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
        let version = if src.is_ipv4() {
            IpVersion::V4
        } else {
            IpVersion::V6
        };
        let max = super::build::max_quoted(version);
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
