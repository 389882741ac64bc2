//! Link-layer stripping: from a captured frame to the IPv4/IPv6 packet inside it.
//!
//! Every decoder works on a borrowed frame and returns a byte range, so stripping never
//! allocates. Anything that is not IP, or that is too short to tell, becomes a [`SkipReason`];
//! nothing panics on any input (all slicing goes through `get`).

use std::fmt;

use serde::Serialize;

use crate::wire::view::{Ipv4View, Ipv6View};

/// Link-layer header type numbers (the `LINKTYPE_*` registry at tcpdump.org) that the reader
/// knows about. Values are as stored in the file after masking the FCS bits.
pub mod linktype {
    /// BSD loopback: 4-byte address family in the writer's byte order.
    pub const NULL: u32 = 0;
    /// Ethernet II / 802.3, with optional 802.1Q / 802.1ad tags.
    pub const ETHERNET: u32 = 1;
    /// PPP, RFC 1661 (optionally with HDLC address/control bytes).
    pub const PPP: u32 = 9;
    /// `DLT_RAW` as some BSDs number it in files (raw IPv4/IPv6).
    pub const RAW_DLT12: u32 = 12;
    /// `DLT_RAW` as OpenBSD numbers it in files (raw IPv4/IPv6).
    pub const RAW_DLT14: u32 = 14;
    /// PPP in HDLC-like framing, RFC 1662.
    pub const PPP_HDLC: u32 = 50;
    /// PPPoE session header followed by PPP (no Ethernet header).
    pub const PPP_ETHER: u32 = 51;
    /// Raw IP: the version nibble tells IPv4 from IPv6.
    pub const RAW: u32 = 101;
    /// OpenBSD loopback: 4-byte address family in network byte order.
    pub const LOOP: u32 = 108;
    /// Linux cooked capture v1 (`any` device).
    pub const LINUX_SLL: u32 = 113;
    /// Solaris ipnet.
    pub const IPNET: u32 = 226;
    /// Raw IPv4 only.
    pub const IPV4: u32 = 228;
    /// Raw IPv6 only.
    pub const IPV6: u32 = 229;
    /// Linux netfilter NFLOG.
    pub const NFLOG: u32 = 239;
    /// Linux cooked capture v2.
    pub const LINUX_SLL2: u32 = 276;

    /// Stable snake_case name of a link type, used as a key in capture summaries.
    pub fn name(link_type: u32) -> std::borrow::Cow<'static, str> {
        let known = match link_type {
            NULL => "null",
            ETHERNET => "ethernet",
            PPP => "ppp",
            RAW_DLT12 => "raw_dlt12",
            RAW_DLT14 => "raw_dlt14",
            PPP_HDLC => "ppp_hdlc",
            PPP_ETHER => "ppp_ether",
            RAW => "raw",
            LOOP => "loop",
            LINUX_SLL => "linux_sll",
            IPNET => "ipnet",
            IPV4 => "ipv4",
            IPV6 => "ipv6",
            NFLOG => "nflog",
            LINUX_SLL2 => "linux_sll2",
            other => return std::borrow::Cow::Owned(format!("linktype_{other}")),
        };
        std::borrow::Cow::Borrowed(known)
    }

    /// Whether [`super::strip_link_layer`] can decode this link type.
    pub fn is_supported(link_type: u32) -> bool {
        matches!(
            link_type,
            NULL | ETHERNET
                | PPP
                | RAW_DLT12
                | RAW_DLT14
                | PPP_HDLC
                | PPP_ETHER
                | RAW
                | LOOP
                | LINUX_SLL
                | IPNET
                | IPV4
                | IPV6
                | NFLOG
                | LINUX_SLL2
        )
    }
}

/// IP version of a yielded packet, taken from the version nibble.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IpVersion {
    /// IPv4 (version nibble 4).
    V4,
    /// IPv6 (version nibble 6).
    V6,
}

/// Which way a packet crossed the capturing interface, when the capture says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CaptureDirection {
    /// Received by the capturing host (SLL types host/broadcast/multicast/otherhost, pcapng
    /// `epb_flags` inbound, NFLOG hooks PRE_ROUTING/LOCAL_IN).
    Inbound,
    /// Sent by the capturing host (SLL type outgoing, pcapng `epb_flags` outbound, NFLOG hooks
    /// LOCAL_OUT/POST_ROUTING).
    Outbound,
}

impl CaptureDirection {
    /// Stable snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            CaptureDirection::Inbound => "inbound",
            CaptureDirection::Outbound => "outbound",
        }
    }
}

/// What a link layer carried instead of IP; detail for [`SkipReason::NotIp`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LinkProtocol {
    /// An EtherType (Ethernet, SLL, SLL2, VLAN inner type), e.g. 0x0806 ARP, 0x8863 PPPoE
    /// discovery, 0x88cc LLDP.
    EtherType(u16),
    /// An 802.3 length field instead of an EtherType: LLC/SNAP frames (STP, CDP, ...).
    Llc,
    /// A PPP protocol number, e.g. 0xc021 LCP, 0x8021 IPCP.
    Ppp(u16),
    /// A BSD loopback / ipnet / NFLOG address family that is not IPv4 or IPv6.
    AddressFamily(u32),
    /// An MPLS label stack whose payload is not IP (e.g. a pseudowire).
    MplsPayload,
}

impl fmt::Display for LinkProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkProtocol::EtherType(t) => write!(f, "ethertype_0x{t:04x}"),
            LinkProtocol::Llc => f.write_str("llc"),
            LinkProtocol::Ppp(p) => write!(f, "ppp_0x{p:04x}"),
            LinkProtocol::AddressFamily(af) => write!(f, "address_family_{af}"),
            LinkProtocol::MplsPayload => f.write_str("mpls_payload"),
        }
    }
}

/// Why a packet record was not yielded as an IP packet. Each reason has a stable code
/// ([`SkipReason::code`]) used as a key in [`super::CaptureSummary`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SkipReason {
    /// The link layer carries a non-IP protocol (ARP, PPPoE discovery, LLDP, LCP, ...).
    NotIp(LinkProtocol),
    /// The reader has no decoder for this link type.
    UnsupportedLinkType(u32),
    /// The captured bytes end inside the link-layer header (or its VLAN/MPLS/PPPoE tags).
    TruncatedLinkHeader,
    /// More stacked VLAN tags or MPLS labels than [`MAX_STACKED_TAGS`].
    TooManyTags,
    /// The link header is complete but no network-layer byte follows it.
    EmptyPayload,
    /// The first nibble is not 4 or 6, or disagrees with what the link layer announced
    /// (`expected`): e.g. an IPv6 packet on a `LINKTYPE_IPV4` interface.
    BadIpVersion {
        /// Version the link layer announced, if it announced one.
        expected: Option<IpVersion>,
        /// Version nibble found in the packet.
        found: u8,
    },
    /// A pcapng packet refers to an interface id with no Interface Description Block.
    UnknownInterface(u32),
    /// A pcapng Simple Packet Block: it carries no timestamp, so it cannot be replayed in time.
    NoTimestamp,
    /// A pcapng packet block whose fixed fields are inconsistent (captured length past the end
    /// of the block). The block framing is intact, so reading goes on with the next block.
    MalformedRecord,
}

impl SkipReason {
    /// Stable snake_case code, e.g. `skip.not_ip`.
    pub fn code(&self) -> &'static str {
        match self {
            SkipReason::NotIp(_) => "skip.not_ip",
            SkipReason::UnsupportedLinkType(_) => "skip.unsupported_link_type",
            SkipReason::TruncatedLinkHeader => "skip.truncated_link_header",
            SkipReason::TooManyTags => "skip.too_many_tags",
            SkipReason::EmptyPayload => "skip.empty_payload",
            SkipReason::BadIpVersion { .. } => "skip.bad_ip_version",
            SkipReason::UnknownInterface(_) => "skip.unknown_interface",
            SkipReason::NoTimestamp => "skip.no_timestamp",
            SkipReason::MalformedRecord => "skip.malformed_record",
        }
    }
}

impl fmt::Display for SkipReason {
    /// The code plus the detail, e.g. `skip.not_ip.ethertype_0x0806`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())?;
        match self {
            SkipReason::NotIp(p) => write!(f, ".{p}"),
            SkipReason::UnsupportedLinkType(t) => write!(f, ".{t}"),
            SkipReason::BadIpVersion { expected, found } => match expected {
                Some(IpVersion::V4) => write!(f, ".expected_4_found_{found}"),
                Some(IpVersion::V6) => write!(f, ".expected_6_found_{found}"),
                None => write!(f, ".found_{found}"),
            },
            SkipReason::UnknownInterface(id) => write!(f, ".{id}"),
            SkipReason::TruncatedLinkHeader
            | SkipReason::TooManyTags
            | SkipReason::EmptyPayload
            | SkipReason::NoTimestamp
            | SkipReason::MalformedRecord => Ok(()),
        }
    }
}

/// Deepest VLAN tag or MPLS label stack the decoder walks before giving up; real networks use
/// two or three, a bound keeps hostile input from looping long.
pub const MAX_STACKED_TAGS: usize = 8;

/// Byte order of fields that the capture writer stored in its host order (BSD null family,
/// NFLOG TLVs). Taken from the file header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostOrder {
    /// The file was written little-endian.
    Little,
    /// The file was written big-endian.
    Big,
}

/// Result of stripping a frame: where the IP packet is, and what the link layer said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stripped {
    /// Byte range of the IP packet inside the frame.
    pub start: usize,
    /// End of the IP packet (exclusive); trailers beyond the IP length field are cut off.
    pub end: usize,
    /// IP version (from the version nibble, checked against the link layer).
    pub version: IpVersion,
    /// Direction, if the link header carries one.
    pub direction: Option<CaptureDirection>,
    /// True if bytes after the IP length field (Ethernet padding, FCS) were cut off.
    pub trailer_trimmed: bool,
}

/// What the link layer announced about its payload.
#[derive(Debug, Clone, Copy)]
enum Announced {
    V4,
    V6,
    /// Raw IP: trust the version nibble.
    Either,
}

/// Payload located by a link decoder, before the IP checks.
#[derive(Debug, Clone, Copy)]
struct Inner {
    start: usize,
    announced: Announced,
    direction: Option<CaptureDirection>,
}

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88a8;
const ETHERTYPE_QINQ_OLD: u16 = 0x9100;
const ETHERTYPE_QINQ_OLD2: u16 = 0x9200;
const ETHERTYPE_MPLS: u16 = 0x8847;
const ETHERTYPE_MPLS_MULTICAST: u16 = 0x8848;
const ETHERTYPE_PPPOE_SESSION: u16 = 0x8864;

const PPP_IPV4: u16 = 0x0021;
const PPP_IPV6: u16 = 0x0057;
const PPP_MPLS: u16 = 0x0281;
const PPP_MPLS_MULTICAST: u16 = 0x0283;

// Link-layer framing (Ethernet, VLAN tags, Linux cooked capture, loopback, PPP, MPLS) is
// replay's own: `wire` starts at the IP header. These checked readers serve those headers only;
// IP fields are read through `crate::wire::view`.
fn be16(frame: &[u8], at: usize) -> Option<u16> {
    let b = frame.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

fn be32(frame: &[u8], at: usize) -> Option<u32> {
    let b = frame.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn host16(frame: &[u8], at: usize, order: HostOrder) -> Option<u16> {
    let b = frame.get(at..at.checked_add(2)?)?;
    Some(match order {
        HostOrder::Little => u16::from_le_bytes([b[0], b[1]]),
        HostOrder::Big => u16::from_be_bytes([b[0], b[1]]),
    })
}

/// Strips the link layer of `frame` (captured with `link_type`) down to the IPv4/IPv6 packet.
///
/// `order` is the byte order of the capture file, needed for link types whose headers are in
/// the capturing host's byte order (NFLOG).
pub fn strip_link_layer(
    link_type: u32,
    frame: &[u8],
    order: HostOrder,
) -> Result<Stripped, SkipReason> {
    let inner = match link_type {
        linktype::ETHERNET => ethernet(frame)?,
        linktype::RAW | linktype::RAW_DLT12 | linktype::RAW_DLT14 => raw(0, Announced::Either),
        linktype::IPV4 => raw(0, Announced::V4),
        linktype::IPV6 => raw(0, Announced::V6),
        linktype::LINUX_SLL => linux_sll(frame)?,
        linktype::LINUX_SLL2 => linux_sll2(frame)?,
        linktype::NULL | linktype::LOOP => bsd_loopback(frame)?,
        linktype::PPP | linktype::PPP_HDLC => ppp(frame, 0)?,
        linktype::PPP_ETHER => pppoe_session(frame, 0)?,
        linktype::NFLOG => nflog(frame, order)?,
        linktype::IPNET => ipnet(frame)?,
        other => return Err(SkipReason::UnsupportedLinkType(other)),
    };
    check_ip(frame, inner)
}

fn raw(start: usize, announced: Announced) -> Inner {
    Inner {
        start,
        announced,
        direction: None,
    }
}

/// Checks the version nibble against the link layer and cuts trailers beyond the IP length.
fn check_ip(frame: &[u8], inner: Inner) -> Result<Stripped, SkipReason> {
    let ip = frame
        .get(inner.start..)
        .ok_or(SkipReason::TruncatedLinkHeader)?;
    let first = *ip.first().ok_or(SkipReason::EmptyPayload)?;
    let found = first >> 4;
    let version = match (inner.announced, found) {
        (Announced::V4 | Announced::Either, 4) => IpVersion::V4,
        (Announced::V6 | Announced::Either, 6) => IpVersion::V6,
        (announced, found) => {
            let expected = match announced {
                Announced::V4 => Some(IpVersion::V4),
                Announced::V6 => Some(IpVersion::V6),
                Announced::Either => None,
            };
            return Err(SkipReason::BadIpVersion { expected, found });
        }
    };
    let len = ip.len();
    let ip_len = match version {
        // Only trust a length that covers at least the fixed header: TSO/GSO captures carry a
        // zero total length and must keep every captured byte.
        // (A buffer shorter than the fixed header has no view, and no length it could trust.)
        IpVersion::V4 => Ipv4View::new_checked(ip)
            .map(|h| usize::from(h.total_len()))
            .filter(|&l| l >= 20 && l < len),
        // Payload length 0 means a jumbogram or a GSO packet: keep everything.
        IpVersion::V6 => Ipv6View::new_checked(ip)
            .map(|h| h.payload_len())
            .filter(|&p| p != 0)
            .map(|p| 40 + usize::from(p))
            .filter(|&l| l < len),
    };
    let end = inner.start + ip_len.unwrap_or(len);
    Ok(Stripped {
        start: inner.start,
        end,
        version,
        direction: inner.direction,
        trailer_trimmed: ip_len.is_some(),
    })
}

/// Maps an EtherType found at `at` (after any tags) to an IP payload.
fn by_ethertype(
    frame: &[u8],
    mut ethertype: u16,
    mut at: usize,
    direction: Option<CaptureDirection>,
) -> Result<Inner, SkipReason> {
    let mut tags = 0;
    while matches!(
        ethertype,
        ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD | ETHERTYPE_QINQ_OLD2
    ) {
        tags += 1;
        if tags > MAX_STACKED_TAGS {
            return Err(SkipReason::TooManyTags);
        }
        // Tag: 2 bytes TCI, then the next EtherType.
        ethertype = be16(frame, at + 2).ok_or(SkipReason::TruncatedLinkHeader)?;
        at += 4;
    }
    match ethertype {
        ETHERTYPE_IPV4 => Ok(Inner {
            start: at,
            announced: Announced::V4,
            direction,
        }),
        ETHERTYPE_IPV6 => Ok(Inner {
            start: at,
            announced: Announced::V6,
            direction,
        }),
        ETHERTYPE_MPLS | ETHERTYPE_MPLS_MULTICAST => {
            mpls(frame, at).map(|i| Inner { direction, ..i })
        }
        ETHERTYPE_PPPOE_SESSION => pppoe_session(frame, at).map(|i| Inner { direction, ..i }),
        t if t < 0x0600 => Err(SkipReason::NotIp(LinkProtocol::Llc)),
        t => Err(SkipReason::NotIp(LinkProtocol::EtherType(t))),
    }
}

/// Ethernet II: 6 dst + 6 src + EtherType, then optional tags.
fn ethernet(frame: &[u8]) -> Result<Inner, SkipReason> {
    let ethertype = be16(frame, 12).ok_or(SkipReason::TruncatedLinkHeader)?;
    by_ethertype(frame, ethertype, 14, None)
}

/// Linux packet types (`PACKET_*` in `<linux/if_packet.h>`) to a direction.
fn sll_direction(packet_type: u16) -> Option<CaptureDirection> {
    match packet_type {
        // HOST, BROADCAST, MULTICAST, OTHERHOST: all arrived at the interface.
        0..=3 => Some(CaptureDirection::Inbound),
        4 => Some(CaptureDirection::Outbound),
        _ => None,
    }
}

/// Linux SLL v1: packet type(2) ARPHRD(2) addr len(2) addr(8) protocol(2).
fn linux_sll(frame: &[u8]) -> Result<Inner, SkipReason> {
    let packet_type = be16(frame, 0).ok_or(SkipReason::TruncatedLinkHeader)?;
    let protocol = be16(frame, 14).ok_or(SkipReason::TruncatedLinkHeader)?;
    by_ethertype(frame, protocol, 16, sll_direction(packet_type))
}

/// Linux SLL v2: protocol(2) reserved(2) ifindex(4) ARPHRD(2) packet type(1) addr len(1)
/// addr(8).
fn linux_sll2(frame: &[u8]) -> Result<Inner, SkipReason> {
    if frame.len() < 20 {
        return Err(SkipReason::TruncatedLinkHeader);
    }
    let protocol = be16(frame, 0).ok_or(SkipReason::TruncatedLinkHeader)?;
    let packet_type = frame
        .get(10)
        .copied()
        .ok_or(SkipReason::TruncatedLinkHeader)?;
    by_ethertype(frame, protocol, 20, sll_direction(u16::from(packet_type)))
}

/// BSD null (family in the writer's byte order) and OpenBSD loop (network order). The family
/// is a small number, so whichever byte order leaves the upper half zero is the right one;
/// this also reads files written on a host of the other endianness.
fn bsd_loopback(frame: &[u8]) -> Result<Inner, SkipReason> {
    let be = be32(frame, 0).ok_or(SkipReason::TruncatedLinkHeader)?;
    let family = if be & 0xffff_0000 != 0 {
        be.swap_bytes()
    } else {
        be
    };
    match family {
        2 => Ok(raw(4, Announced::V4)),
        // AF_INET6 is 10 on Linux, 23 on Windows, 24 on NetBSD/OpenBSD, 28 on FreeBSD and
        // 30 on macOS.
        10 | 23 | 24 | 28 | 30 => Ok(raw(4, Announced::V6)),
        other => Err(SkipReason::NotIp(LinkProtocol::AddressFamily(other))),
    }
}

/// PPP: optional HDLC address/control (0xff 0x03), then a 1- or 2-byte protocol field
/// (protocol-field compression makes odd first bytes 1-byte protocols).
fn ppp(frame: &[u8], start: usize) -> Result<Inner, SkipReason> {
    let mut at = start;
    if frame.get(at..at + 2) == Some(&[0xff, 0x03][..]) {
        at += 2;
    }
    let first = *frame.get(at).ok_or(SkipReason::TruncatedLinkHeader)?;
    let protocol = if first & 1 == 1 {
        at += 1;
        u16::from(first)
    } else {
        let p = be16(frame, at).ok_or(SkipReason::TruncatedLinkHeader)?;
        at += 2;
        p
    };
    match protocol {
        PPP_IPV4 => Ok(raw(at, Announced::V4)),
        PPP_IPV6 => Ok(raw(at, Announced::V6)),
        PPP_MPLS | PPP_MPLS_MULTICAST => mpls(frame, at),
        other => Err(SkipReason::NotIp(LinkProtocol::Ppp(other))),
    }
}

/// PPPoE session stage: ver/type(1) code(1) session(2) length(2), then PPP without HDLC bytes.
fn pppoe_session(frame: &[u8], start: usize) -> Result<Inner, SkipReason> {
    if frame.len() < start + 6 {
        return Err(SkipReason::TruncatedLinkHeader);
    }
    ppp(frame, start + 6)
}

/// MPLS label stack: 4-byte entries until the bottom-of-stack bit; the payload has no type
/// field, so the IP version nibble decides.
fn mpls(frame: &[u8], start: usize) -> Result<Inner, SkipReason> {
    let mut at = start;
    for _ in 0..MAX_STACKED_TAGS {
        let entry = be32(frame, at).ok_or(SkipReason::TruncatedLinkHeader)?;
        at += 4;
        if entry & 0x100 != 0 {
            return match frame.get(at).map(|b| b >> 4) {
                Some(4 | 6) => Ok(raw(at, Announced::Either)),
                Some(_) => Err(SkipReason::NotIp(LinkProtocol::MplsPayload)),
                None => Err(SkipReason::EmptyPayload),
            };
        }
    }
    Err(SkipReason::TooManyTags)
}

/// NFLOG TLV types (`NFULA_*`).
const NFULA_PACKET_HDR: u16 = 1;
const NFULA_PAYLOAD: u16 = 9;

/// NFLOG: family(1) version(1) resource id(2), then TLVs whose length and type are in the
/// capturing host's byte order; the IP packet is the `NFULA_PAYLOAD` TLV.
fn nflog(frame: &[u8], order: HostOrder) -> Result<Inner, SkipReason> {
    let family = *frame.first().ok_or(SkipReason::TruncatedLinkHeader)?;
    let announced = match family {
        2 => Announced::V4,
        10 => Announced::V6,
        other => {
            return Err(SkipReason::NotIp(LinkProtocol::AddressFamily(u32::from(
                other,
            ))));
        }
    };
    let mut direction = None;
    let mut at = 4;
    loop {
        let tlv_len = host16(frame, at, order).ok_or(SkipReason::TruncatedLinkHeader)?;
        let tlv_type = host16(frame, at + 2, order).ok_or(SkipReason::TruncatedLinkHeader)?;
        let tlv_len = usize::from(tlv_len);
        if tlv_len < 4 {
            // A TLV shorter than its own header would loop forever.
            return Err(SkipReason::TruncatedLinkHeader);
        }
        match tlv_type & 0x7fff {
            NFULA_PACKET_HDR => {
                // hw_protocol(2, network order) hook(1) pad(1)
                direction = match frame.get(at + 6) {
                    // NF_INET_PRE_ROUTING, NF_INET_LOCAL_IN
                    Some(0 | 1) => Some(CaptureDirection::Inbound),
                    // NF_INET_LOCAL_OUT, NF_INET_POST_ROUTING
                    Some(3 | 4) => Some(CaptureDirection::Outbound),
                    _ => None,
                };
            }
            NFULA_PAYLOAD => {
                // If the TLV runs past the captured bytes the capture was truncated: yield
                // what was captured (the record's `truncated` flag says so).
                return Ok(Inner {
                    start: at + 4,
                    announced,
                    direction,
                });
            }
            _ => {}
        }
        // TLVs are padded to 4 bytes.
        at += (tlv_len + 3) & !3;
        if at >= frame.len() {
            return Err(SkipReason::EmptyPayload);
        }
    }
}

/// Solaris ipnet: version(1) family(1) htype(2) pktlen(4) ifindex(4) grifindex(4) zsrc(4)
/// zdst(4), all big-endian; 24 bytes.
fn ipnet(frame: &[u8]) -> Result<Inner, SkipReason> {
    if frame.len() < 24 {
        return Err(SkipReason::TruncatedLinkHeader);
    }
    match frame.get(1).copied() {
        Some(2) => Ok(raw(24, Announced::V4)),
        Some(26) => Ok(raw(24, Announced::V6)),
        Some(other) => Err(SkipReason::NotIp(LinkProtocol::AddressFamily(u32::from(
            other,
        )))),
        None => Err(SkipReason::TruncatedLinkHeader),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(len: u16) -> Vec<u8> {
        let mut p = vec![0u8; usize::from(len)];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&len.to_be_bytes());
        p
    }

    #[test]
    fn ethernet_with_stacked_tags_and_padding() {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x88, 0xa8, 0, 1, 0x81, 0x00, 0, 2, 0x08, 0x00]);
        f.extend_from_slice(&v4(20));
        f.extend_from_slice(&[0; 6]); // padding
        let s = strip_link_layer(linktype::ETHERNET, &f, HostOrder::Little).unwrap();
        assert_eq!((s.start, s.end, s.version), (22, 42, IpVersion::V4));
        assert!(s.trailer_trimmed);
    }

    #[test]
    fn ethernet_arp_is_not_ip() {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x08, 0x06, 0, 1]);
        assert_eq!(
            strip_link_layer(linktype::ETHERNET, &f, HostOrder::Little),
            Err(SkipReason::NotIp(LinkProtocol::EtherType(0x0806)))
        );
    }

    #[test]
    fn too_many_vlan_tags() {
        let mut f = vec![0u8; 12];
        for _ in 0..=MAX_STACKED_TAGS {
            f.extend_from_slice(&[0x81, 0x00, 0, 0]);
        }
        f.extend_from_slice(&[0x08, 0x00]);
        f.extend_from_slice(&v4(20));
        assert_eq!(
            strip_link_layer(linktype::ETHERNET, &f, HostOrder::Little),
            Err(SkipReason::TooManyTags)
        );
    }

    #[test]
    fn sll_direction_outgoing() {
        let mut f = vec![0, 4, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0x86, 0xdd];
        let mut ip = vec![0u8; 40];
        ip[0] = 0x60;
        f.extend_from_slice(&ip);
        let s = strip_link_layer(linktype::LINUX_SLL, &f, HostOrder::Little).unwrap();
        assert_eq!(s.direction, Some(CaptureDirection::Outbound));
        assert_eq!(s.version, IpVersion::V6);
        assert!(!s.trailer_trimmed);
    }

    #[test]
    fn null_family_either_byte_order() {
        for family in [[2, 0, 0, 0], [0, 0, 0, 2]] {
            let mut f = family.to_vec();
            f.extend_from_slice(&v4(20));
            let s = strip_link_layer(linktype::NULL, &f, HostOrder::Big).unwrap();
            assert_eq!(s.start, 4);
        }
    }

    #[test]
    fn raw_ipv4_linktype_rejects_ipv6() {
        let mut ip = vec![0u8; 40];
        ip[0] = 0x60;
        assert_eq!(
            strip_link_layer(linktype::IPV4, &ip, HostOrder::Big),
            Err(SkipReason::BadIpVersion {
                expected: Some(IpVersion::V4),
                found: 6
            })
        );
    }

    #[test]
    fn ppp_compressed_protocol_and_mpls() {
        let mut f = vec![0x21];
        f.extend_from_slice(&v4(20));
        assert_eq!(
            strip_link_layer(linktype::PPP, &f, HostOrder::Big)
                .unwrap()
                .start,
            1
        );
        let mut f = vec![0xff, 0x03, 0x02, 0x81, 0, 0, 0x11, 0x40];
        f.extend_from_slice(&v4(20));
        assert_eq!(
            strip_link_layer(linktype::PPP, &f, HostOrder::Big)
                .unwrap()
                .start,
            8
        );
    }

    #[test]
    fn is_supported_matches_the_decoder() {
        for lt in 0..400 {
            let unsupported = matches!(
                strip_link_layer(lt, &[0x45; 64], HostOrder::Little),
                Err(SkipReason::UnsupportedLinkType(_))
            );
            assert_eq!(linktype::is_supported(lt), !unsupported, "link type {lt}");
        }
    }

    #[test]
    fn every_prefix_of_every_header_is_handled() {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x81, 0x00, 0, 1, 0x88, 0x64, 0x11, 0, 0, 1, 0, 22, 0, 0x21]);
        f.extend_from_slice(&v4(20));
        for lt in [0, 1, 9, 50, 51, 101, 108, 113, 226, 228, 229, 239, 276, 160] {
            for cut in 0..=f.len() {
                let _ = strip_link_layer(lt, &f[..cut], HostOrder::Little);
                let _ = strip_link_layer(lt, &f[cut..], HostOrder::Big);
            }
        }
        let s = strip_link_layer(linktype::ETHERNET, &f, HostOrder::Little).unwrap();
        assert_eq!(s.start, 26);
    }
}
