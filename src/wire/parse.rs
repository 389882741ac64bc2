//! Zero-copy packet parsing for the gateway's hot path: one pass over the headers that yields
//! offsets, never copies, and rejects anything malformed with a named reason.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// IP protocol numbers natsim handles.
pub mod proto {
    /// ICMP for IPv4.
    pub const ICMP: u8 = 1;
    /// IGMP (IPv4 multicast group membership).
    pub const IGMP: u8 = 2;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// ICMPv6.
    pub const ICMPV6: u8 = 58;
    /// IPv6 hop-by-hop options.
    pub const HOP_BY_HOP: u8 = 0;
    /// IPv6 routing header.
    pub const ROUTING: u8 = 43;
    /// IPv6 fragment header.
    pub const FRAGMENT: u8 = 44;
    /// IPv6 authentication header.
    pub const AH: u8 = 51;
    /// IPv6 "no next header".
    pub const NO_NEXT: u8 = 59;
    /// IPv6 destination options.
    pub const DEST_OPTS: u8 = 60;
}

/// Why a byte sequence is not a packet natsim can handle. Names are stable (`malformed.<name>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WireError {
    /// Shorter than the fixed header.
    Truncated,
    /// IP version is neither 4 nor 6.
    BadVersion,
    /// IPv4 IHL below 5 or beyond the buffer.
    BadHeaderLength,
    /// IP total/payload length inconsistent with the buffer.
    BadTotalLength,
    /// An IPv6 extension header runs past the packet.
    BadExtensionHeader,
    /// IPv6 jumbograms (payload length 0) are not supported.
    Jumbogram,
    /// Transport header shorter than its fixed part or its own length field.
    BadTransportHeader,
}

impl WireError {
    /// Stable snake_case name used in counters and reports.
    pub fn name(self) -> &'static str {
        match self {
            WireError::Truncated => "truncated",
            WireError::BadVersion => "bad_version",
            WireError::BadHeaderLength => "bad_header_length",
            WireError::BadTotalLength => "bad_total_length",
            WireError::BadExtensionHeader => "bad_extension_header",
            WireError::Jumbogram => "jumbogram",
            WireError::BadTransportHeader => "bad_transport_header",
        }
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::error::Error for WireError {}

/// IP version of a packet.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum IpVersion {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

/// Fragmentation facts of a packet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fragment {
    /// Fragment offset in bytes.
    pub offset_bytes: u32,
    /// More-fragments flag.
    pub more: bool,
    /// Identification (16 bits for IPv4, 32 for IPv6).
    pub ident: u32,
}

impl Fragment {
    /// True for the first fragment, which carries the transport header.
    pub fn is_first(&self) -> bool {
        self.offset_bytes == 0
    }

    /// True for an IPv6 "atomic fragment" (offset 0, no more fragments, RFC 6946): it holds the
    /// whole datagram, so its transport checksum and lengths can be checked like an unfragmented
    /// packet's.
    pub fn is_atomic(&self) -> bool {
        self.offset_bytes == 0 && !self.more
    }
}

/// Offsets and facts of one parsed IP packet. All offsets index the buffer that was parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpMeta {
    /// IP version.
    pub version: IpVersion,
    /// Offset of the transport header (or of the fragment's data for non-first fragments).
    pub l4_offset: usize,
    /// End of the IP datagram (bytes past it, such as link padding, are not part of the packet).
    pub end: usize,
    /// The final protocol / next header.
    pub protocol: u8,
    /// Set when the packet is a fragment (IPv4 MF or offset; any IPv6 fragment header).
    pub fragment: Option<Fragment>,
    /// Offset of the IPv6 fragment header, when there is one.
    pub v6_fragment_header: Option<usize>,
}

impl IpMeta {
    /// Length of the transport part (header + payload) in this packet.
    pub fn l4_len(&self) -> usize {
        self.end - self.l4_offset
    }

    /// True when this packet carries the transport header (unfragmented or first fragment).
    pub fn has_l4_header(&self) -> bool {
        self.fragment.is_none_or(|f| f.is_first())
    }

    /// True when this packet holds the whole datagram (unfragmented, or an IPv6 atomic fragment),
    /// so the transport checksum and the UDP length describe exactly the bytes present. A first
    /// fragment has the transport header but not the whole datagram its checksum covers.
    pub fn is_whole(&self) -> bool {
        self.fragment.is_none_or(|f| f.is_atomic())
    }

    /// Offset of the source address.
    pub fn src_offset(&self) -> usize {
        match self.version {
            IpVersion::V4 => 12,
            IpVersion::V6 => 8,
        }
    }

    /// Offset of the destination address.
    pub fn dst_offset(&self) -> usize {
        match self.version {
            IpVersion::V4 => 16,
            IpVersion::V6 => 24,
        }
    }

    /// Address length in bytes.
    pub fn addr_len(&self) -> usize {
        match self.version {
            IpVersion::V4 => 4,
            IpVersion::V6 => 16,
        }
    }

    /// The source address.
    pub fn src(&self, buf: &[u8]) -> IpAddr {
        read_addr(buf, self.src_offset(), self.version)
    }

    /// The destination address.
    pub fn dst(&self, buf: &[u8]) -> IpAddr {
        read_addr(buf, self.dst_offset(), self.version)
    }
}

/// Reads an address of `version` at `offset` (the caller has checked the bounds via parsing).
pub fn read_addr(buf: &[u8], offset: usize, version: IpVersion) -> IpAddr {
    match version {
        IpVersion::V4 => {
            let mut a = [0u8; 4];
            a.copy_from_slice(&buf[offset..offset + 4]);
            IpAddr::V4(Ipv4Addr::from(a))
        }
        IpVersion::V6 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(&buf[offset..offset + 16]);
            IpAddr::V6(Ipv6Addr::from(a))
        }
    }
}

/// True for the IPv6 extension headers [`parse_ip`] walks (hop-by-hop, routing, fragment,
/// authentication, destination options); anything else is the upper-layer protocol.
pub fn is_v6_extension_header(next: u8) -> bool {
    matches!(
        next,
        proto::HOP_BY_HOP | proto::ROUTING | proto::FRAGMENT | proto::AH | proto::DEST_OPTS
    )
}

/// Length in bytes of the IPv6 extension header `next` whose length byte is `len_byte`
/// (authentication headers count 4-byte units beyond the first two, RFC 4302; the others
/// 8-byte units beyond the first, RFC 8200).
pub fn v6_extension_header_len(next: u8, len_byte: u8) -> usize {
    if next == proto::AH {
        (usize::from(len_byte) + 2) * 4
    } else {
        (usize::from(len_byte) + 1) * 8
    }
}

/// Reads a big-endian u16 at `at`.
#[inline]
pub fn be16(buf: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([buf[at], buf[at + 1]])
}

/// Writes a big-endian u16 at `at`.
#[inline]
pub fn put16(buf: &mut [u8], at: usize, v: u16) {
    buf[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

/// Parses the IP header chain of `buf` strictly (lengths must be consistent; `buf` may be longer
/// than the datagram, e.g. Ethernet padding, and [`IpMeta::end`] says where it stops).
/// Transport headers are checked for their minimum size when present.
pub fn parse_ip(buf: &[u8]) -> Result<IpMeta, WireError> {
    let first = *buf.first().ok_or(WireError::Truncated)?;
    let meta = match first >> 4 {
        4 => parse_v4(buf, false)?,
        6 => parse_v6(buf, false)?,
        _ => return Err(WireError::BadVersion),
    };
    if meta.has_l4_header() {
        check_l4(buf, &meta)?;
    }
    Ok(meta)
}

/// Parses a packet quoted inside an ICMP error: it may be truncated anywhere after the fixed IP
/// header, so lengths are clipped to what is present instead of rejected, and the transport
/// header is not checked (callers read only the fields that are there).
pub fn parse_ip_lax(buf: &[u8]) -> Result<IpMeta, WireError> {
    let first = *buf.first().ok_or(WireError::Truncated)?;
    match first >> 4 {
        4 => parse_v4(buf, true),
        6 => parse_v6(buf, true),
        _ => Err(WireError::BadVersion),
    }
}

fn parse_v4(buf: &[u8], lax: bool) -> Result<IpMeta, WireError> {
    if buf.len() < 20 {
        return Err(WireError::Truncated);
    }
    let ihl = usize::from(buf[0] & 0x0F) * 4;
    if ihl < 20 || ihl > buf.len() {
        return Err(WireError::BadHeaderLength);
    }
    let total = usize::from(be16(buf, 2));
    let end = if lax {
        total.clamp(ihl, buf.len())
    } else {
        if total < ihl || total > buf.len() {
            return Err(WireError::BadTotalLength);
        }
        total
    };
    let flags_frag = be16(buf, 6);
    let more = flags_frag & 0x2000 != 0;
    let offset_bytes = u32::from(flags_frag & 0x1FFF) * 8;
    let fragment = (more || offset_bytes != 0).then_some(Fragment {
        offset_bytes,
        more,
        ident: u32::from(be16(buf, 4)),
    });
    Ok(IpMeta {
        version: IpVersion::V4,
        l4_offset: ihl,
        end,
        protocol: buf[9],
        fragment,
        v6_fragment_header: None,
    })
}

fn parse_v6(buf: &[u8], lax: bool) -> Result<IpMeta, WireError> {
    if buf.len() < 40 {
        return Err(WireError::Truncated);
    }
    let payload = usize::from(be16(buf, 4));
    let end = if lax {
        (40 + payload).min(buf.len())
    } else {
        // RFC 2675: a jumbogram has payload length 0 and its real length in a hop-by-hop option.
        // A hop-by-hop header is at least 8 bytes, so "payload 0 followed by hop-by-hop" can only
        // be a jumbogram (or garbage), whatever the buffer length; without hop-by-hop a zero
        // payload is simply an empty packet (trailing bytes are link padding).
        if payload == 0 && buf[6] == proto::HOP_BY_HOP {
            return Err(WireError::Jumbogram);
        }
        if 40 + payload > buf.len() {
            return Err(WireError::BadTotalLength);
        }
        40 + payload
    };
    let mut next = buf[6];
    let mut at = 40usize;
    let mut fragment = None;
    let mut v6_fragment_header = None;
    // Walk extension headers; the chain is bounded by the packet length since each step advances.
    loop {
        match next {
            proto::HOP_BY_HOP | proto::ROUTING | proto::DEST_OPTS => {
                if at + 8 > end {
                    return Err(WireError::BadExtensionHeader);
                }
                let len = v6_extension_header_len(next, buf[at + 1]);
                if at + len > end {
                    return Err(WireError::BadExtensionHeader);
                }
                next = buf[at];
                at += len;
            }
            proto::AH => {
                if at + 8 > end {
                    return Err(WireError::BadExtensionHeader);
                }
                let len = v6_extension_header_len(next, buf[at + 1]);
                if at + len > end {
                    return Err(WireError::BadExtensionHeader);
                }
                next = buf[at];
                at += len;
            }
            proto::FRAGMENT => {
                if at + 8 > end || fragment.is_some() {
                    return Err(WireError::BadExtensionHeader);
                }
                let off_flags = be16(buf, at + 2);
                fragment = Some(Fragment {
                    offset_bytes: u32::from(off_flags >> 3) * 8,
                    more: off_flags & 1 != 0,
                    ident: u32::from_be_bytes([buf[at + 4], buf[at + 5], buf[at + 6], buf[at + 7]]),
                });
                v6_fragment_header = Some(at);
                next = buf[at];
                at += 8;
                // Headers after a non-first fragment's header are not this packet's to parse.
                if fragment.is_some_and(|f| !f.is_first()) {
                    break;
                }
            }
            _ => break,
        }
    }
    Ok(IpMeta {
        version: IpVersion::V6,
        l4_offset: at,
        end,
        protocol: next,
        fragment,
        v6_fragment_header,
    })
}

fn check_l4(buf: &[u8], meta: &IpMeta) -> Result<(), WireError> {
    let l4 = &buf[meta.l4_offset..meta.end];
    // A first fragment only carries part of the transport payload, so only the fixed header is
    // required to be present then (an atomic fragment is whole and checked like any packet).
    let whole = meta.is_whole();
    match meta.protocol {
        proto::TCP => {
            if l4.len() < 20 {
                return Err(WireError::BadTransportHeader);
            }
            let data_offset = usize::from(l4[12] >> 4) * 4;
            if data_offset < 20 || data_offset > l4.len() {
                return Err(WireError::BadTransportHeader);
            }
        }
        proto::UDP => {
            if l4.len() < 8 {
                return Err(WireError::BadTransportHeader);
            }
            let udp_len = usize::from(be16(l4, 4));
            // A first fragment's UDP length counts the whole datagram, so it may exceed what is
            // here, but it can never be shorter than the UDP header.
            if udp_len < 8 || (whole && udp_len > l4.len()) {
                return Err(WireError::BadTransportHeader);
            }
        }
        proto::ICMP | proto::ICMPV6 if l4.len() < 8 => {
            return Err(WireError::BadTransportHeader);
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_short_buffers_are_truncated() {
        assert_eq!(parse_ip(&[]), Err(WireError::Truncated));
        assert_eq!(parse_ip(&[0x45, 0, 0]), Err(WireError::Truncated));
        assert_eq!(parse_ip(&[0x60; 39]), Err(WireError::Truncated));
        assert_eq!(parse_ip(&[0x15; 40]), Err(WireError::BadVersion));
    }

    #[test]
    fn ipv4_ihl_below_five_is_rejected() {
        let mut b = [0u8; 20];
        b[0] = 0x44;
        assert_eq!(parse_ip(&b), Err(WireError::BadHeaderLength));
    }
}
