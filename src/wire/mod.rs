//! The packet layer, at the bottom of the crate: parsing (strict for packets, lax for packets
//! quoted in ICMP errors), typed reprs with emit, and RFC 1071/1624 checksums.
//!
//! The gateway's hot path uses [`parse::parse_ip`] and rewrites bytes in place with incremental
//! checksum updates ([`rewrite`]); everything else uses [`repr::PacketRepr`].

pub mod checksum;
pub mod parse;
pub mod repr;
pub mod rewrite;

pub use parse::{Fragment, IpMeta, IpVersion, WireError, parse_ip, parse_ip_lax, proto};
pub use repr::{
    ChecksumReport, EmitError, FragmentRepr, IcmpRepr, IpRepr, PacketRepr, TransportRepr, tcp_flags,
};
