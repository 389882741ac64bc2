//! The packet layer, at the bottom of the crate: parsing (strict for packets, lax for packets
//! quoted in ICMP errors), typed views of header fields, typed reprs with emit, the one packet
//! builder, ICMP classification, the five-tuple, and RFC 1071/1624 checksums.
//!
//! The gateway's hot path uses [`parse::parse_ip`] and rewrites bytes in place with incremental
//! checksum updates ([`rewrite`]); the simulator builds packets with [`build`]; everything else
//! uses [`repr::PacketRepr`] and the [`view`]s. Outside this module, raw byte offsets of packet
//! fields are read only on the NAT fast path (`src/nat/gateway.rs`, `src/nat/ttl.rs`; see
//! ARCHITECTURE.md).

pub mod build;
pub mod checksum;
pub mod icmp;
pub mod parse;
pub mod repr;
pub mod rewrite;
pub mod tuple;
pub mod view;

pub use icmp::IcmpKind;
pub use parse::{Fragment, IpMeta, IpVersion, WireError, parse_ip, parse_ip_lax, proto};
pub use repr::{
    ChecksumReport, EmitError, FragmentRepr, IcmpRepr, IpRepr, PacketRepr, TransportRepr, tcp_flags,
};
pub use tuple::Tuple;
pub use view::{IcmpView, Ipv4View, Ipv6View, TcpView, UdpView};
