//! Packet-level scenario steps: `packets:` crafts a packet with every field chosen and sends it
//! from a host at a time; `expect.packets:` states which packets must (or must never) appear on
//! a link in a time window, captures fields of a matched packet into variables and compares
//! later matches with them (docs/scenarios.md, "Packet steps").
//!
//! The schema types live here; [`craft`] turns a `packets:` item into bytes through `wire`'s
//! typed representation, [`pattern`] reads fields off captured packets and evaluates the
//! expectations after the run.

pub mod craft;
pub mod pattern;

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::schema::BoundDoc;

/// Most payload or padding bytes a crafted packet may ask for (the IPv4 total length field).
pub const MAX_PACKET_BYTES: u32 = 65_535;

/// A crafted packet (`packets:`): sent once by `from` at `at_ms`; exactly one of `tcp`, `udp`,
/// `icmp`.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PacketItem {
    /// Name (reported under `flows`, like an application).
    pub name: String,
    /// When it is sent.
    #[serde(default)]
    #[schemars(range(max = super::ranges::MAX_MS))]
    pub at_ms: u64,
    /// The NIC or remote host that sends it (it leaves on that host's link).
    pub from: String,
    /// Destination: an address, a NIC or remote host name, or `ip:<gateway IP name>`.
    pub to: String,
    /// Source address when not the sender's own address of the destination's family (a
    /// spoofed or chosen source).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src: Option<String>,
    /// IP header fields.
    #[serde(default)]
    pub ip: IpFieldsDoc,
    /// A TCP segment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TcpFieldsDoc>,
    /// A UDP datagram.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub udp: Option<UdpFieldsDoc>,
    /// An ICMP (IPv4) or ICMPv6 (IPv6) message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icmp: Option<IcmpFieldsDoc>,
    /// Zero bytes after the IP datagram (what Ethernet padding leaves behind a short frame); the
    /// IP length fields do not count them. With `fragments`, after each fragment.
    #[serde(default)]
    #[schemars(range(max = MAX_PACKET_BYTES))]
    pub padding_bytes: u32,
    /// Send the datagram as IP fragments, in a chosen order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fragments: Option<FragmentsDoc>,
}

/// How a crafted datagram is fragmented and which fragments are sent in what order (all at the
/// item's time, back to back).
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FragmentsDoc {
    /// Transport bytes per fragment (a multiple of 8, at least 8), as a router splits it.
    #[schemars(range(min = 8, max = MAX_PACKET_BYTES))]
    pub data_bytes: u32,
    /// Fragment indexes (0: the first fragment) in sending order; an index may be left out (a
    /// lost fragment) or repeated (a duplicate). Default: all, in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<Vec<u32>>,
}

fn default_ttl() -> u8 {
    64
}

/// IP header fields of a crafted packet.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IpFieldsDoc {
    /// TTL (IPv4) or hop limit (IPv6).
    #[serde(default = "default_ttl")]
    pub ttl: u8,
    /// Don't Fragment (IPv4 only).
    #[serde(default)]
    pub df: bool,
    /// Identification (IPv4: 16 bits).
    #[serde(default)]
    pub id: u16,
    /// Type of service / traffic class.
    #[serde(default)]
    pub tos: u8,
    /// IPv4 options (IPv6: hop-by-hop option area) as hex, zero-padded to their unit.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub options_hex: String,
}

impl Default for IpFieldsDoc {
    fn default() -> Self {
        IpFieldsDoc {
            ttl: default_ttl(),
            df: false,
            id: 0,
            tos: 0,
            options_hex: String::new(),
        }
    }
}

fn default_window() -> u16 {
    65_535
}

/// A crafted TCP segment.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TcpFieldsDoc {
    /// Source port.
    pub src_port: NumField,
    /// Destination port.
    pub dst_port: NumField,
    /// Flags as letters: `F` FIN, `S` SYN, `R` RST, `P` PSH, `A` ACK, `U` URG, `E` ECE,
    /// `C` CWR (e.g. `SA`); empty: none.
    #[serde(default)]
    pub flags: String,
    /// Sequence number (modulo 2^32 when computed from a variable).
    #[serde(default)]
    pub seq: NumField,
    /// Acknowledgement number (modulo 2^32 when computed from a variable).
    #[serde(default)]
    pub ack: NumField,
    /// Window.
    #[serde(default = "default_window")]
    pub window: u16,
    /// Options as hex, zero-padded to a multiple of 4 bytes (at most 40).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub options_hex: String,
    /// Payload bytes (zeros).
    #[serde(default)]
    #[schemars(range(max = MAX_PACKET_BYTES))]
    pub payload_bytes: u32,
}

/// A crafted UDP datagram.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UdpFieldsDoc {
    /// Source port.
    pub src_port: NumField,
    /// Destination port.
    pub dst_port: NumField,
    /// Payload bytes (zeros).
    #[serde(default)]
    #[schemars(range(max = MAX_PACKET_BYTES))]
    pub payload_bytes: u32,
    /// Send a zero checksum ("no checksum"; IPv4 only, RFC 768).
    #[serde(default)]
    pub zero_checksum: bool,
}

/// A crafted ICMP or ICMPv6 message: an echo request or reply (`id`, `seq`, `payload_bytes`),
/// an error (`quote` required, `rest` the 4 bytes after the checksum: the MTU of Fragmentation
/// Needed or Packet Too Big), or any other type (`rest` and `payload_bytes` as its body).
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IcmpFieldsDoc {
    /// Type (IPv4: 8 echo request, 0 echo reply, 3/11/12 errors; IPv6: 128, 129, 1–4).
    #[serde(rename = "type")]
    pub icmp_type: u8,
    /// Code.
    #[serde(default)]
    pub code: u8,
    /// Echo identifier.
    #[serde(default)]
    pub id: NumField,
    /// Echo sequence number.
    #[serde(default)]
    pub seq: NumField,
    /// The 4 bytes after the checksum of an error or other message (unused / MTU / pointer).
    #[serde(default)]
    pub rest: NumField,
    /// Echo data or other message body bytes (zeros).
    #[serde(default)]
    #[schemars(range(max = MAX_PACKET_BYTES))]
    pub payload_bytes: u32,
    /// The packet an error quotes (required for errors, refused otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quote: Option<Box<QuotedDoc>>,
}

/// The packet an ICMP error quotes, built like a crafted packet (a quote of a quote is
/// refused).
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QuotedDoc {
    /// Its source address (an address, host name or `ip:<gateway IP name>`).
    pub src: String,
    /// Its destination.
    pub dst: String,
    /// IP header fields.
    #[serde(default)]
    pub ip: IpFieldsDoc,
    /// TCP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TcpFieldsDoc>,
    /// UDP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub udp: Option<UdpFieldsDoc>,
    /// ICMP (an echo; an error quoting an error is refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icmp: Option<IcmpFieldsDoc>,
    /// Quote only this many bytes of it (default: IPv4 the IP header + 8 bytes, RFC 792;
    /// IPv6 the whole packet up to 1232 bytes, RFC 4443).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = MAX_PACKET_BYTES))]
    pub bytes: Option<u32>,
}

/// A number in a crafted packet: a literal, or a variable captured by `expect.packets`
/// (`$p`, `$seq+1`, `$ack-100`), read when the packet is sent.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum NumField {
    /// A number.
    Num(u64),
    /// `$name`, `$name+N` or `$name-N`.
    Var(String),
}

impl Default for NumField {
    fn default() -> Self {
        NumField::Num(0)
    }
}

impl From<u64> for NumField {
    fn from(n: u64) -> Self {
        NumField::Num(n)
    }
}

/// `$name`, `$name+N`, `$name-N` → (name, offset).
pub fn parse_var(s: &str) -> Option<(&str, i64)> {
    let rest = s.strip_prefix('$')?;
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    let (name, tail) = rest.split_at(end);
    if name.is_empty() {
        return None;
    }
    let offset = match tail.chars().next() {
        None => 0,
        Some('+') => i64::try_from(tail[1..].parse::<u64>().ok()?).ok()?,
        Some('-') => -i64::try_from(tail[1..].parse::<u64>().ok()?).ok()?,
        Some(_) => return None,
    };
    Some((name, offset))
}

/// A packet expectation (`expect.packets:`): packets on link `on` within `between_ms` that
/// match `match`, counted against `count` (default: at least one) or `never`.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PacketExpect {
    /// A link: `nic/<name>`, `remote/<name>`, `uplink/<node>` (it is captured for the check).
    pub on: String,
    /// `[from, to]` in milliseconds of virtual time, both included (default: the whole run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub between_ms: Option<[u64; 2]>,
    /// The fields a packet must have (all of them).
    #[serde(rename = "match", default)]
    pub pattern: PatternDoc,
    /// How many matching packets (default: at least one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<BoundDoc>,
    /// No packet may match (the same as `count: 0`).
    #[serde(default)]
    pub never: bool,
    /// Variables set from the first matching packet: variable name → field.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub capture: BTreeMap<String, Field>,
}

/// The fields of a pattern; an absent field matches anything. A field a packet does not have
/// (ports of an ICMP message, say) does not match.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PatternDoc {
    /// Source address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src: Option<FieldMatchDoc>,
    /// Destination address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst: Option<FieldMatchDoc>,
    /// Protocol: `tcp`, `udp`, `icmp` (ICMPv4 or ICMPv6), or a number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proto: Option<FieldMatchDoc>,
    /// TCP/UDP source port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src_port: Option<FieldMatchDoc>,
    /// TCP/UDP destination port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst_port: Option<FieldMatchDoc>,
    /// TTL / hop limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<FieldMatchDoc>,
    /// IPv4 Don't Fragment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub df: Option<bool>,
    /// IPv4 identification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_id: Option<FieldMatchDoc>,
    /// IP total length (header and payload; padding not counted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<FieldMatchDoc>,
    /// Bytes after the IP datagram.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub padding: Option<FieldMatchDoc>,
    /// TCP flags, exactly, as letters (`SA`, `R`, `A`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_flags: Option<String>,
    /// TCP sequence number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_seq: Option<FieldMatchDoc>,
    /// TCP acknowledgement number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_ack: Option<FieldMatchDoc>,
    /// UDP checksum (0: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub udp_checksum: Option<FieldMatchDoc>,
    /// ICMP type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icmp_type: Option<FieldMatchDoc>,
    /// ICMP code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icmp_code: Option<FieldMatchDoc>,
    /// Echo identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icmp_id: Option<FieldMatchDoc>,
    /// The 4 bytes after an ICMP error's checksum (the MTU of Fragmentation Needed: its low
    /// 16 bits; of Packet Too Big: all of it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icmp_rest: Option<FieldMatchDoc>,
    /// Source address of the packet an ICMP error quotes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quoted_src: Option<FieldMatchDoc>,
    /// Destination address of the quoted packet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quoted_dst: Option<FieldMatchDoc>,
    /// Source port (or echo identifier) of the quoted packet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quoted_src_port: Option<FieldMatchDoc>,
    /// Destination port of the quoted packet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quoted_dst_port: Option<FieldMatchDoc>,
}

/// How one field must look: a number, a string (an address, a protocol name, `$variable` for
/// "the same as a captured value", `*` for "present"), or a test.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum FieldMatchDoc {
    /// Equal to this number.
    Number(u64),
    /// Equal to this address, protocol name or variable; `*`: present.
    Text(String),
    /// Every condition given.
    Test(FieldTestDoc),
}

/// Conditions on a field; all given ones must hold.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldTestDoc {
    /// Equal to (a number, address or `$variable`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eq: Option<ValueDoc>,
    /// Different from (a number, address or `$variable`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not: Option<ValueDoc>,
    /// At least.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<u64>,
    /// At most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<u64>,
    /// Inside the port block (port fields) or on the NAT address (address fields) this NIC
    /// holds at the end of the run, in either family.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_block_of: Option<String>,
}

/// A value to compare with.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum ValueDoc {
    /// A number.
    Number(u64),
    /// An address or `$variable`.
    Text(String),
}

/// A field of a packet, as captured into a variable or matched.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    /// Source address.
    Src,
    /// Destination address.
    Dst,
    /// Protocol number.
    Proto,
    /// TCP/UDP source port.
    SrcPort,
    /// TCP/UDP destination port.
    DstPort,
    /// TTL / hop limit.
    Ttl,
    /// IPv4 Don't Fragment (1 or 0).
    Df,
    /// IPv4 identification.
    IpId,
    /// IP total length.
    Length,
    /// Bytes after the IP datagram.
    Padding,
    /// TCP flags byte.
    TcpFlags,
    /// TCP sequence number.
    TcpSeq,
    /// TCP acknowledgement number.
    TcpAck,
    /// UDP checksum.
    UdpChecksum,
    /// ICMP type.
    IcmpType,
    /// ICMP code.
    IcmpCode,
    /// Echo identifier.
    IcmpId,
    /// The 4 bytes after an ICMP error's checksum.
    IcmpRest,
    /// Quoted packet's source address.
    QuotedSrc,
    /// Quoted packet's destination address.
    QuotedDst,
    /// Quoted packet's source port or echo identifier.
    QuotedSrcPort,
    /// Quoted packet's destination port.
    QuotedDstPort,
}

impl Field {
    /// Its name in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            Field::Src => "src",
            Field::Dst => "dst",
            Field::Proto => "proto",
            Field::SrcPort => "src_port",
            Field::DstPort => "dst_port",
            Field::Ttl => "ttl",
            Field::Df => "df",
            Field::IpId => "ip_id",
            Field::Length => "length",
            Field::Padding => "padding",
            Field::TcpFlags => "tcp_flags",
            Field::TcpSeq => "tcp_seq",
            Field::TcpAck => "tcp_ack",
            Field::UdpChecksum => "udp_checksum",
            Field::IcmpType => "icmp_type",
            Field::IcmpCode => "icmp_code",
            Field::IcmpId => "icmp_id",
            Field::IcmpRest => "icmp_rest",
            Field::QuotedSrc => "quoted_src",
            Field::QuotedDst => "quoted_dst",
            Field::QuotedSrcPort => "quoted_src_port",
            Field::QuotedDstPort => "quoted_dst_port",
        }
    }

    /// Holds an address (else a number).
    pub fn is_address(self) -> bool {
        matches!(
            self,
            Field::Src | Field::Dst | Field::QuotedSrc | Field::QuotedDst
        )
    }

    /// What it holds, in words: "an address" or "a number".
    pub fn kind(self) -> &'static str {
        if self.is_address() {
            "an address"
        } else {
            "a number"
        }
    }

    /// The largest number the field can hold (its width on the wire); 0 for addresses.
    pub fn max_value(self) -> u64 {
        match self {
            Field::Src | Field::Dst | Field::QuotedSrc | Field::QuotedDst => 0,
            Field::Df => 1,
            Field::Proto | Field::Ttl | Field::TcpFlags | Field::IcmpType | Field::IcmpCode => {
                u64::from(u8::MAX)
            }
            Field::SrcPort
            | Field::DstPort
            | Field::QuotedSrcPort
            | Field::QuotedDstPort
            | Field::IpId
            | Field::UdpChecksum
            | Field::IcmpId
            | Field::Length => u64::from(u16::MAX),
            Field::TcpSeq | Field::TcpAck | Field::IcmpRest => u64::from(u32::MAX),
            // Bytes after the datagram: what a frame can carry, at most.
            Field::Padding => u64::from(u16::MAX),
        }
    }

    /// Holds a port, or an echo identifier (the gateway maps it like a port, from the same
    /// block).
    pub fn is_port(self) -> bool {
        matches!(
            self,
            Field::SrcPort
                | Field::DstPort
                | Field::QuotedSrcPort
                | Field::QuotedDstPort
                | Field::IcmpId
        )
    }
}

impl PatternDoc {
    /// The fields given, in a fixed order, each with how it must look (`df` and `tcp_flags`,
    /// typed apart in the file, are read separately).
    pub fn fields(&self) -> Vec<(Field, &FieldMatchDoc)> {
        let all = [
            (Field::Src, &self.src),
            (Field::Dst, &self.dst),
            (Field::Proto, &self.proto),
            (Field::SrcPort, &self.src_port),
            (Field::DstPort, &self.dst_port),
            (Field::Ttl, &self.ttl),
            (Field::IpId, &self.ip_id),
            (Field::Length, &self.length),
            (Field::Padding, &self.padding),
            (Field::TcpSeq, &self.tcp_seq),
            (Field::TcpAck, &self.tcp_ack),
            (Field::UdpChecksum, &self.udp_checksum),
            (Field::IcmpType, &self.icmp_type),
            (Field::IcmpCode, &self.icmp_code),
            (Field::IcmpId, &self.icmp_id),
            (Field::IcmpRest, &self.icmp_rest),
            (Field::QuotedSrc, &self.quoted_src),
            (Field::QuotedDst, &self.quoted_dst),
            (Field::QuotedSrcPort, &self.quoted_src_port),
            (Field::QuotedDstPort, &self.quoted_dst_port),
        ];
        all.into_iter()
            .filter_map(|(f, m)| m.as_ref().map(|m| (f, m)))
            .collect()
    }
}
