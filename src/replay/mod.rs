//! Capture I/O for `natsim replay`: read pcap/pcapng into IP packets, write pcap/pcapng.
//!
//! # Reading
//!
//! [`CaptureReader`] detects the format from the magic number (pcap in either byte order with
//! micro- or nanosecond timestamps, libpcap's modified pcap; pcapng with any number of sections
//! and interfaces; any of them gzip- or zstd-compressed, see [`decompress`]) and
//! yields, per packet record, a [`CapturedPacket`]: file index, timestamp in nanoseconds,
//! interface, link type, direction if known, and the IPv4/IPv6 bytes with the link layer
//! stripped ([`strip_link_layer`]). Records without a usable IP packet are skipped with a
//! [`SkipReason`] and counted; oddities that do not prevent yielding (truncated snap length,
//! padding trimmed, out-of-order or out-of-range timestamps) are counted as anomalies. Both
//! appear in the deterministic [`CaptureSummary`].
//!
//! The reader never panics on any input: every length is checked before slicing, timestamps
//! are computed in 128-bit arithmetic and saturate, and records are bounded by
//! [`MAX_RECORD_BYTES`]. A file that cannot be read (further) returns a [`CaptureError`] that
//! names the file, the packet index and the byte offset; packets before it are still yielded.
//!
//! # Writing
//!
//! [`PcapNgCaptureWriter`] writes one named `LINKTYPE_RAW` interface per link with nanosecond
//! timestamps and optional `epb_flags` direction; [`PcapCaptureWriter`] writes classic
//! nanosecond pcap. Output bytes depend only on the calls made.
//!
//! # pcap-file
//!
//! The pcap-file crate is wrapped here and nowhere else: its `PcapParser` reads classic pcap
//! headers and raw records, and its writers encode both formats. pcapng reading is done in
//! [`pcapng`] because pcap-file 2.0.0 gets pcapng timestamps and options wrong (see there).
//!
//! # Replaying
//!
//! [`replay`] runs a capture through the gateway: [`mapping`] decides each packet's side,
//! [`classify`] takes out what can never be a NIC's traffic (DHCP, multicast, neighbour
//! discovery, ...), [`hosts`] turns inside addresses into NICs with blocks, [`packet`] checks checksums and
//! readdresses reply halves to the NAT, [`run`] drives the loop through the `Dataplane` trait and writes the
//! inside and outside views, [`verify`] runs the simulator's behaviour §6 checker over it, [`report`]
//! summarises; [`profiles`] compares the verdicts of several behaviour profiles;
//! [`config`] and [`cli`] are the configuration and the `natsim replay` command.
//!
//! See `docs/replay-capture.md` for the supported link types and every skip reason, and
//! `docs/replay.md` for replaying.

pub mod classify;
pub mod cli;
pub mod config;
pub mod decompress;
pub mod error;
pub mod hosts;
pub mod link;
pub mod mapping;
pub mod packet;
pub mod pcapng;
pub mod profiles;
pub mod reader;
pub mod report;
pub mod run;
pub mod source;
pub mod summary;
pub mod timestamp;
pub mod verify;
pub mod writer;

pub use cli::{ReplayCliOptions, replay_cmd};
pub use config::{EntrySide, NatPool, ReplayConfig};
pub use decompress::{Compression, MAX_DECOMPRESSED_BYTES};
pub use error::{CaptureError, CaptureErrorKind, CaptureWriteError};
pub use link::{
    CaptureDirection, HostOrder, IpVersion, LinkProtocol, SkipReason, linktype, strip_link_layer,
};
pub use reader::{
    CaptureFormat, CaptureReader, CaptureRecord, CapturedPacket, MAX_RECORD_BYTES, OwnedPacket,
    SkippedPacket, for_each_packet, read_packets,
};
pub use report::ReplaySummary;
pub use run::{
    ReplayError, ReplayOutcome, replay, replay_streams, replay_streams_with, replay_with,
};
pub use summary::{Anomaly, CaptureSummary, InterfaceSummary};
pub use writer::{PcapCaptureWriter, PcapNgCaptureWriter, USER_APPLICATION, WRITER_SNAPLEN};
