//! [`CaptureReader`]: pcap and pcapng files to IP packets with timestamps, without panics.
//!
//! The reader streams: it buffers one record at a time (plus read-ahead) and hands out packets
//! that borrow its buffer, so the per-packet path does not allocate. Skipped records and
//! tolerated oddities are counted and reported by [`CaptureReader::summary`].
//!
//! One file (about 900 lines): pcap and pcapng share the record loop, the skip accounting and
//! the read-ahead buffer that the borrowed packets point into; splitting them apart would put
//! the buffer's lifetime rules in two places.

use std::fs::File;
use std::io::Read;
use std::ops::Range;
use std::path::Path;

use pcap_file::pcap::PcapParser;
use pcap_file::{Endianness, TsResolution as PcapTsResolution};

use super::decompress::{Compression, Decoded, MAX_DECOMPRESSED_BYTES, known_unsupported};
use super::error::{CaptureError, CaptureErrorKind};
use super::link::{CaptureDirection, HostOrder, IpVersion, SkipReason, strip_link_layer};
use super::pcapng::{self, u32_at};
use super::source::ByteSource;
use super::summary::{Anomaly, CaptureSummary, InterfaceStats, Stats};
use super::timestamp::{self, TsResolution};

/// Largest packet record or pcapng block the reader buffers. libpcap refuses records above
/// 256 KiB; this is more lenient (GSO/BIG TCP captures) but still bounds memory on garbage.
pub const MAX_RECORD_BYTES: usize = 16 * 1024 * 1024;

/// Mask of the link-type bits in a pcap header; the upper bits carry FCS information.
const PCAP_LINKTYPE_MASK: u32 = 0x03ff_ffff;

const PCAP_MAGIC_US: u32 = 0xa1b2_c3d4;
const PCAP_MAGIC_NS: u32 = 0xa1b2_3c4d;
/// libpcap's "modified" (Kuznetzov) format: microseconds, and 8 more bytes per record header
/// (interface index, protocol, packet type, padding).
const PCAP_MAGIC_MODIFIED: u32 = 0xa1b2_cd34;

/// An IP packet read from a capture. Borrows the reader's buffer until the next read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CapturedPacket<'a> {
    /// 0-based index of the packet record in the file (skipped records count too), so it
    /// matches tshark's `frame.number - 1`.
    pub index: u64,
    /// Capture timestamp, nanoseconds since the Unix epoch.
    pub timestamp_ns: u64,
    /// Interface id: 0 for pcap; for pcapng, the IDB's position counted across all sections.
    pub interface: u32,
    /// Link type of the interface the packet was captured on.
    pub link_type: u32,
    /// Direction, if the link header or pcapng flags record one.
    pub direction: Option<CaptureDirection>,
    /// IP version (checked against the link layer).
    pub version: IpVersion,
    /// The network-layer packet: IPv4 or IPv6 header onwards, link layer and trailers removed.
    pub ip: &'a [u8],
    /// True if the capture stored fewer bytes than were on the wire (snap length): the tail
    /// of `ip` is missing. Yielded anyway so that the caller decides.
    pub truncated: bool,
    /// Original (on the wire) length of the whole frame, link header included.
    pub original_len: u32,
}

impl CapturedPacket<'_> {
    /// Copies the packet out of the reader's buffer.
    pub fn to_owned_packet(&self) -> OwnedPacket {
        OwnedPacket {
            index: self.index,
            timestamp_ns: self.timestamp_ns,
            interface: self.interface,
            link_type: self.link_type,
            direction: self.direction,
            version: self.version,
            ip: self.ip.to_vec(),
            truncated: self.truncated,
            original_len: self.original_len,
        }
    }
}

/// A [`CapturedPacket`] that owns its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedPacket {
    /// See [`CapturedPacket::index`].
    pub index: u64,
    /// See [`CapturedPacket::timestamp_ns`].
    pub timestamp_ns: u64,
    /// See [`CapturedPacket::interface`].
    pub interface: u32,
    /// See [`CapturedPacket::link_type`].
    pub link_type: u32,
    /// See [`CapturedPacket::direction`].
    pub direction: Option<CaptureDirection>,
    /// See [`CapturedPacket::version`].
    pub version: IpVersion,
    /// See [`CapturedPacket::ip`].
    pub ip: Vec<u8>,
    /// See [`CapturedPacket::truncated`].
    pub truncated: bool,
    /// See [`CapturedPacket::original_len`].
    pub original_len: u32,
}

/// A packet record that was not yielded, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SkippedPacket {
    /// 0-based index of the packet record in the file.
    pub index: u64,
    /// Timestamp, if the record has one and its interface is known.
    pub timestamp_ns: Option<u64>,
    /// Interface id, if known.
    pub interface: Option<u32>,
    /// Link type, if the interface is known.
    pub link_type: Option<u32>,
    /// Why it was skipped.
    pub reason: SkipReason,
}

/// One packet record: yielded as IP, or skipped with a reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureRecord<'a> {
    /// An IP packet.
    Packet(CapturedPacket<'a>),
    /// A record that carries no usable IP packet.
    Skipped(SkippedPacket),
}

/// File format of an open capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureFormat {
    /// Classic pcap with microsecond timestamps.
    Pcap,
    /// Classic pcap with nanosecond timestamps (magic 0xa1b23c4d).
    PcapNsec,
    /// pcapng.
    PcapNg,
    /// libpcap's modified pcap (magic 0xa1b2cd34, 24-byte record headers, microseconds).
    PcapModified,
}

impl CaptureFormat {
    /// Stable name: `pcap`, `pcap_nsec`, `pcapng`, `pcap_modified`.
    pub fn name(self) -> &'static str {
        match self {
            CaptureFormat::Pcap => "pcap",
            CaptureFormat::PcapNsec => "pcap_nsec",
            CaptureFormat::PcapNg => "pcapng",
            CaptureFormat::PcapModified => "pcap_modified",
        }
    }

    /// The name with the compression appended (`pcap+gzip`), as the summary shows it.
    pub fn label(self, compression: Option<Compression>) -> &'static str {
        use CaptureFormat as F;
        match (self, compression) {
            (f, None) => f.name(),
            (F::Pcap, Some(Compression::Gzip)) => "pcap+gzip",
            (F::PcapNsec, Some(Compression::Gzip)) => "pcap_nsec+gzip",
            (F::PcapNg, Some(Compression::Gzip)) => "pcapng+gzip",
            (F::PcapModified, Some(Compression::Gzip)) => "pcap_modified+gzip",
            (F::Pcap, Some(Compression::Zstd)) => "pcap+zstd",
            (F::PcapNsec, Some(Compression::Zstd)) => "pcap_nsec+zstd",
            (F::PcapNg, Some(Compression::Zstd)) => "pcapng+zstd",
            (F::PcapModified, Some(Compression::Zstd)) => "pcap_modified+zstd",
        }
    }
}

/// A pcapng interface as the reader needs it.
#[derive(Debug, Clone, Copy)]
struct NgInterface {
    global_id: u32,
    link_type: u32,
    resolution: TsResolution,
    offset_s: i64,
}

#[derive(Debug)]
enum State {
    Pcap {
        /// `None` for the modified format, which pcap-file does not know: its records are
        /// read here.
        parser: Option<PcapParser>,
        /// 16, or 24 in the modified format.
        record_header: usize,
        order: HostOrder,
        link_type: u32,
        nanos: bool,
    },
    PcapNg {
        order: HostOrder,
        interfaces: Vec<NgInterface>,
    },
}

/// Where the IP bytes of a yielded packet are, relative to the unconsumed buffer.
#[derive(Debug, Clone, Copy)]
struct PacketMeta {
    index: u64,
    timestamp_ns: u64,
    interface: u32,
    link_type: u32,
    direction: Option<CaptureDirection>,
    version: IpVersion,
    ip: (usize, usize),
    truncated: bool,
    original_len: u32,
}

enum Step {
    Packet(PacketMeta),
    Skipped(SkippedPacket),
    /// A pcapng block without a packet: read on.
    NoPacket,
    End,
}

/// Fields common to every packet record, before the link layer is stripped.
struct RawRecord {
    index: u64,
    timestamp_ns: u64,
    interface: u32,
    link_type: u32,
    order: HostOrder,
    /// Frame range relative to the unconsumed buffer.
    frame: Range<usize>,
    original_len: u32,
    flags_direction: Option<CaptureDirection>,
}

/// Reads IP packets from a pcap or pcapng stream.
#[derive(Debug)]
pub struct CaptureReader<R> {
    file: String,
    source: ByteSource<R>,
    format: CaptureFormat,
    state: State,
    next_index: u64,
    /// Bytes of the record handed out last; consumed at the start of the next read so that the
    /// returned packet can borrow them.
    pending: usize,
    stats: Stats,
    done: bool,
    /// Set by [`CaptureReader::decompressing`]: how the file was compressed.
    compression: Option<Compression>,
}

impl CaptureReader<Decoded<File>> {
    /// Opens a capture file; detects gzip or zstd compression, then pcap or pcapng, from
    /// magic numbers (see [`super::decompress`]).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, CaptureError> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let file = File::open(path).map_err(|e| CaptureError {
            file: name.clone(),
            offset: None,
            packet_index: None,
            kind: CaptureErrorKind::Io(e),
        })?;
        CaptureReader::decompressing(file, name, MAX_DECOMPRESSED_BYTES)
    }
}

impl<R: Read> CaptureReader<Decoded<R>> {
    /// [`CaptureReader::new`] behind transparent gzip/zstd decompression of at most `limit`
    /// bytes ([`MAX_DECOMPRESSED_BYTES`] for files).
    pub fn decompressing(
        reader: R,
        name: impl Into<String>,
        limit: u64,
    ) -> Result<Self, CaptureError> {
        let name = name.into();
        let decoded = Decoded::new(reader, limit).map_err(|e| CaptureError {
            file: name.clone(),
            offset: Some(0),
            packet_index: None,
            kind: CaptureErrorKind::Io(e),
        })?;
        let compression = decoded.compression();
        let mut reader = CaptureReader::new(decoded, name).map_err(|mut e| {
            if let Some(c) = compression {
                e.file = format!("{} ({} decompressed)", e.file, c.name());
            }
            e
        })?;
        reader.compression = compression;
        Ok(reader)
    }
}

impl<R: Read> CaptureReader<R> {
    /// Reads the file header from `reader`. `name` labels errors (a path, or e.g. `<memory>`).
    pub fn new(reader: R, name: impl Into<String>) -> Result<Self, CaptureError> {
        let file = name.into();
        let mut source = ByteSource::new(reader);
        let err = |kind, offset| CaptureError {
            file: file.clone(),
            offset,
            packet_index: None,
            kind,
        };
        let have = |source: &mut ByteSource<R>, n| {
            source
                .fill(n)
                .map_err(|e| err(CaptureErrorKind::Io(e), Some(0)))
        };
        // Both pcap variants start with a 24-byte file header.
        let need_pcap_header = |source: &mut ByteSource<R>| {
            if have(source, 24)? {
                return Ok(());
            }
            let kind = CaptureErrorKind::Truncated {
                what: "pcap file header",
                needed: 24,
                available: source.available().len() as u64,
            };
            Err(err(kind, Some(0)))
        };
        if !have(&mut source, 4)? {
            let available = source.available().len() as u64;
            let kind = if available == 0 {
                CaptureErrorKind::EmptyFile
            } else {
                CaptureErrorKind::Truncated {
                    what: "magic number",
                    needed: 4,
                    available,
                }
            };
            return Err(err(kind, Some(0)));
        }
        // Eight bytes name more foreign formats (snoop); a shorter file is judged on four.
        let _ = source.fill(8);
        let head = source.available();
        let magic = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        let modified = magic == PCAP_MAGIC_MODIFIED || magic.swap_bytes() == PCAP_MAGIC_MODIFIED;
        if let Some(format) = known_unsupported(head) {
            return Err(err(CaptureErrorKind::Unsupported(format), Some(0)));
        }
        let (format, state) = if magic == pcapng::SECTION_HEADER {
            // The section header itself is read as the first block.
            (
                CaptureFormat::PcapNg,
                State::PcapNg {
                    order: HostOrder::Big,
                    interfaces: Vec::new(),
                },
            )
        } else if modified {
            need_pcap_header(&mut source)?;
            let order = if magic == PCAP_MAGIC_MODIFIED {
                HostOrder::Big
            } else {
                HostOrder::Little
            };
            let link_type = u32_at(source.available(), 20, order).unwrap_or(0) & PCAP_LINKTYPE_MASK;
            source.consume(24);
            (
                CaptureFormat::PcapModified,
                State::Pcap {
                    parser: None,
                    record_header: 24,
                    order,
                    link_type,
                    nanos: false,
                },
            )
        } else if [PCAP_MAGIC_US, PCAP_MAGIC_NS].contains(&magic)
            || [PCAP_MAGIC_US, PCAP_MAGIC_NS].contains(&magic.swap_bytes())
        {
            need_pcap_header(&mut source)?;
            let (_, parser) = PcapParser::new(source.available()).map_err(|e| {
                let detail = e.to_string();
                err(
                    CaptureErrorKind::Invalid {
                        what: "pcap file header",
                        detail,
                    },
                    Some(0),
                )
            })?;
            let header = parser.header();
            let order = match header.endianness {
                Endianness::Big => HostOrder::Big,
                Endianness::Little => HostOrder::Little,
            };
            let nanos = header.ts_resolution == PcapTsResolution::NanoSecond;
            let link_type = u32::from(header.datalink) & PCAP_LINKTYPE_MASK;
            source.consume(24);
            let format = if nanos {
                CaptureFormat::PcapNsec
            } else {
                CaptureFormat::Pcap
            };
            (
                format,
                State::Pcap {
                    parser: Some(parser),
                    record_header: 16,
                    order,
                    link_type,
                    nanos,
                },
            )
        } else {
            return Err(err(CaptureErrorKind::UnknownMagic(magic), Some(0)));
        };
        let mut stats = Stats::default();
        if let State::Pcap { link_type, .. } = state {
            stats.interfaces.push(InterfaceStats {
                link_type,
                ..InterfaceStats::default()
            });
        }
        Ok(CaptureReader {
            file,
            source,
            format,
            state,
            next_index: 0,
            pending: 0,
            stats,
            done: false,
            compression: None,
        })
    }

    /// The file format.
    pub fn format(&self) -> CaptureFormat {
        self.format
    }

    /// How the file was compressed, if it was (only readers from
    /// [`CaptureReader::decompressing`] or [`CaptureReader::open`] look).
    pub fn compression(&self) -> Option<Compression> {
        self.compression
    }

    /// Counters so far (complete once a read returned `Ok(None)` or an error).
    pub fn summary(&self) -> CaptureSummary {
        self.stats.summary(self.format.label(self.compression))
    }

    /// The next record, IP or skipped; `Ok(None)` at the end. After an error every further
    /// call returns `Ok(None)`.
    pub fn next_record(&mut self) -> Result<Option<CaptureRecord<'_>>, CaptureError> {
        loop {
            match self.step()? {
                Step::Packet(meta) => return Ok(Some(CaptureRecord::Packet(self.packet(meta)))),
                Step::Skipped(s) => return Ok(Some(CaptureRecord::Skipped(s))),
                Step::NoPacket => continue,
                Step::End => return Ok(None),
            }
        }
    }

    /// The next IP packet, skipping (and counting) records that carry none.
    pub fn next_packet(&mut self) -> Result<Option<CapturedPacket<'_>>, CaptureError> {
        loop {
            match self.step()? {
                Step::Packet(meta) => return Ok(Some(self.packet(meta))),
                Step::Skipped(_) | Step::NoPacket => continue,
                Step::End => return Ok(None),
            }
        }
    }

    /// Calls `f` for every IP packet, then returns the summary.
    pub fn for_each_packet<F>(&mut self, mut f: F) -> Result<CaptureSummary, CaptureError>
    where
        F: FnMut(&CapturedPacket<'_>),
    {
        while let Some(p) = self.next_packet()? {
            f(&p);
        }
        Ok(self.summary())
    }

    fn packet(&self, m: PacketMeta) -> CapturedPacket<'_> {
        let buf = self.source.available();
        CapturedPacket {
            index: m.index,
            timestamp_ns: m.timestamp_ns,
            interface: m.interface,
            link_type: m.link_type,
            direction: m.direction,
            version: m.version,
            // The range was cut from this very buffer in `step`; `get` keeps this panic-free
            // regardless.
            ip: buf.get(m.ip.0..m.ip.1).unwrap_or(&[]),
            truncated: m.truncated,
            original_len: m.original_len,
        }
    }

    fn error(&mut self, kind: CaptureErrorKind, packet_index: Option<u64>) -> CaptureError {
        self.done = true;
        let e = CaptureError {
            file: self.file.clone(),
            offset: Some(self.source.offset()),
            packet_index,
            kind,
        };
        self.stats.error = Some(e.to_string());
        e
    }

    /// Buffers `n` bytes of the current record, or fails naming what was being read.
    fn need(
        &mut self,
        n: usize,
        what: &'static str,
        index: Option<u64>,
    ) -> Result<(), CaptureError> {
        match self.source.fill(n) {
            Ok(true) => Ok(()),
            Ok(false) => {
                let available = self.source.available().len() as u64;
                Err(self.error(
                    CaptureErrorKind::Truncated {
                        what,
                        needed: n as u64,
                        available,
                    },
                    index,
                ))
            }
            Err(e) => Err(self.error(CaptureErrorKind::Io(e), index)),
        }
    }

    /// True at a clean end of file (no partial record).
    fn at_end(&mut self) -> Result<bool, CaptureError> {
        self.source
            .at_end()
            .map_err(|e| self.error(CaptureErrorKind::Io(e), None))
    }

    fn step(&mut self) -> Result<Step, CaptureError> {
        self.source.consume(std::mem::take(&mut self.pending));
        if self.done {
            return Ok(Step::End);
        }
        if self.at_end()? {
            self.done = true;
            return Ok(Step::End);
        }
        match self.state {
            State::Pcap { .. } => self.step_pcap(),
            State::PcapNg { .. } => self.step_pcapng(),
        }
    }

    fn step_pcap(&mut self) -> Result<Step, CaptureError> {
        let State::Pcap {
            order,
            link_type,
            nanos,
            record_header,
            ..
        } = self.state
        else {
            return Ok(Step::End);
        };
        let index = self.next_index;
        self.need(record_header, "pcap record header", Some(index))?;
        let incl_len = u32_at(self.source.available(), 8, order).unwrap_or(0);
        let data_len = incl_len as usize;
        if data_len > MAX_RECORD_BYTES {
            let kind = CaptureErrorKind::TooLarge {
                what: "pcap record",
                length: u64::from(incl_len),
                limit: MAX_RECORD_BYTES as u64,
            };
            return Err(self.error(kind, Some(index)));
        }
        self.need(record_header + data_len, "pcap record", Some(index))?;
        let State::Pcap { parser, .. } = &self.state else {
            return Ok(Step::End);
        };
        // pcap-file's checked `next_packet` rejects whole files for a caplen above the snap
        // length or a fraction ≥ 1 s, both common in real captures; take the raw record and
        // judge those fields here.
        let raw = match parser {
            // The modified format: the first 16 bytes are a classic record header.
            None => {
                let head = self.source.available();
                let field = |at| u32_at(head, at, order).unwrap_or(0);
                Ok((field(0), field(4), field(12)))
            }
            Some(parser) => parser
                .next_raw_packet(self.source.available())
                .map(|(_, raw)| (raw.ts_sec, raw.ts_frac, raw.orig_len)),
        };
        let raw = match raw {
            Ok(raw) => raw,
            Err(e) => {
                let detail = e.to_string();
                let kind = CaptureErrorKind::Invalid {
                    what: "pcap record",
                    detail,
                };
                return Err(self.error(kind, Some(index)));
            }
        };
        let (ts_sec, ts_frac, original_len) = raw;
        self.pending = record_header + data_len;
        self.next_index += 1;
        let limit = if nanos { 1_000_000_000 } else { 1_000_000 };
        if ts_frac >= limit {
            self.stats.anomaly(Anomaly::TimestampFractionOutOfRange);
        }
        let record = RawRecord {
            index,
            timestamp_ns: timestamp::pcap_to_ns(ts_sec, ts_frac, nanos),
            interface: 0,
            link_type,
            order,
            frame: record_header..record_header + data_len,
            original_len,
            flags_direction: None,
        };
        Ok(self.classify(record))
    }

    fn step_pcapng(&mut self) -> Result<Step, CaptureError> {
        let State::PcapNg {
            order: section_order,
            ..
        } = self.state
        else {
            return Ok(Step::End);
        };
        self.need(8, "pcapng block header", None)?;
        let head = self.source.available();
        let block_type = u32_at(head, 0, section_order).unwrap_or(0);
        // A section header's length is in its own byte order, given by the magic after it.
        let order = if block_type == pcapng::SECTION_HEADER {
            self.need(12, "pcapng section header", None)?;
            match u32_at(self.source.available(), 8, HostOrder::Big) {
                Some(pcapng::BYTE_ORDER_MAGIC) => HostOrder::Big,
                Some(m) if m.swap_bytes() == pcapng::BYTE_ORDER_MAGIC => HostOrder::Little,
                _ => {
                    let kind = CaptureErrorKind::Invalid {
                        what: "pcapng section header",
                        detail: "bad byte-order magic".to_string(),
                    };
                    return Err(self.error(kind, None));
                }
            }
        } else {
            section_order
        };
        let total_len = u32_at(self.source.available(), 4, order).unwrap_or(0);
        if !total_len.is_multiple_of(4) || total_len < 12 {
            let kind = CaptureErrorKind::Invalid {
                what: "pcapng block",
                detail: format!("total length {total_len} is not a multiple of 4 of at least 12"),
            };
            return Err(self.error(kind, None));
        }
        let total = total_len as usize;
        if total > MAX_RECORD_BYTES {
            let kind = CaptureErrorKind::TooLarge {
                what: "pcapng block",
                length: u64::from(total_len),
                limit: MAX_RECORD_BYTES as u64,
            };
            return Err(self.error(kind, None));
        }
        self.need(total, "pcapng block", None)?;
        let block = self.source.available();
        if u32_at(block, total - 4, order) != Some(total_len) {
            let kind = CaptureErrorKind::Invalid {
                what: "pcapng block",
                detail: "trailing length differs from leading length".to_string(),
            };
            return Err(self.error(kind, None));
        }
        self.pending = total;
        let body = 8..total - 4;
        match block_type {
            pcapng::SECTION_HEADER => self.section_header(body),
            pcapng::INTERFACE_DESCRIPTION => self.interface_description(body, order),
            pcapng::ENHANCED_PACKET | pcapng::PACKET => {
                Ok(self.packet_block(body, order, block_type == pcapng::PACKET))
            }
            pcapng::SIMPLE_PACKET => Ok(self.simple_packet(body, order)),
            _ => {
                self.stats.non_packet_blocks += 1;
                Ok(Step::NoPacket)
            }
        }
    }

    fn section_header(&mut self, body: Range<usize>) -> Result<Step, CaptureError> {
        let parsed = pcapng::section_header(self.source.available().get(body).unwrap_or(&[]));
        match parsed {
            Ok(shb) if shb.major_version == 1 => {
                // Interface ids restart at 0 in every section.
                self.state = State::PcapNg {
                    order: shb.order,
                    interfaces: Vec::new(),
                };
                Ok(Step::NoPacket)
            }
            Ok(shb) => {
                let detail = format!("unsupported major version {}", shb.major_version);
                Err(self.error(
                    CaptureErrorKind::Invalid {
                        what: "pcapng section header",
                        detail,
                    },
                    None,
                ))
            }
            Err(detail) => {
                let kind = CaptureErrorKind::Invalid {
                    what: "pcapng section header",
                    detail: detail.to_string(),
                };
                Err(self.error(kind, None))
            }
        }
    }

    fn interface_description(
        &mut self,
        body: Range<usize>,
        order: HostOrder,
    ) -> Result<Step, CaptureError> {
        let parsed =
            pcapng::interface_description(self.source.available().get(body).unwrap_or(&[]), order);
        let idb = match parsed {
            Ok(idb) => idb,
            Err(detail) => {
                let kind = CaptureErrorKind::Invalid {
                    what: "pcapng interface description",
                    detail: detail.to_string(),
                };
                return Err(self.error(kind, None));
            }
        };
        let global_id = u32::try_from(self.stats.interfaces.len()).unwrap_or(u32::MAX);
        self.stats.interfaces.push(InterfaceStats {
            link_type: idb.link_type,
            name: idb.name,
            ..InterfaceStats::default()
        });
        if idb.bad_options {
            self.stats.anomaly(Anomaly::MalformedOptions);
        }
        if let State::PcapNg { interfaces, .. } = &mut self.state {
            interfaces.push(NgInterface {
                global_id,
                link_type: idb.link_type,
                resolution: idb.resolution,
                offset_s: idb.offset_s,
            });
        }
        Ok(Step::NoPacket)
    }

    fn lookup_interface(&self, local_id: u32) -> Option<NgInterface> {
        match &self.state {
            State::PcapNg { interfaces, .. } => interfaces.get(local_id as usize).copied(),
            State::Pcap { .. } => None,
        }
    }

    fn packet_block(&mut self, body: Range<usize>, order: HostOrder, obsolete: bool) -> Step {
        let index = self.next_index;
        self.next_index += 1;
        let parsed = pcapng::packet(
            self.source.available().get(body.clone()).unwrap_or(&[]),
            order,
            obsolete,
        );
        let fields = match parsed {
            Ok(f) => f,
            Err(_) => return self.skip(index, None, None, SkipReason::MalformedRecord),
        };
        if fields.bad_options {
            self.stats.anomaly(Anomaly::MalformedOptions);
        }
        let Some(interface) = self.lookup_interface(fields.interface) else {
            return self.skip(
                index,
                None,
                None,
                SkipReason::UnknownInterface(fields.interface),
            );
        };
        let ts = timestamp::pcapng_to_ns(
            fields.timestamp_units,
            interface.resolution,
            interface.offset_s,
        );
        if ts.saturated {
            self.stats.anomaly(Anomaly::TimestampSaturated);
        }
        let flags_direction = match fields.flags.map(|f| f & 0b11) {
            Some(1) => Some(CaptureDirection::Inbound),
            Some(2) => Some(CaptureDirection::Outbound),
            _ => None,
        };
        let start = body.start + fields.data_start;
        let record = RawRecord {
            index,
            timestamp_ns: ts.timestamp_ns,
            interface: interface.global_id,
            link_type: interface.link_type,
            order,
            frame: start..start + fields.data_len,
            original_len: fields.original_len,
            flags_direction,
        };
        self.classify(record)
    }

    fn simple_packet(&mut self, body: Range<usize>, order: HostOrder) -> Step {
        let index = self.next_index;
        self.next_index += 1;
        let parsed = pcapng::simple_packet(self.source.available().get(body).unwrap_or(&[]), order);
        if parsed.is_err() {
            return self.skip(index, None, None, SkipReason::MalformedRecord);
        }
        // Simple packets belong to the section's first interface.
        match self.lookup_interface(0) {
            Some(i) => self.skip(
                index,
                Some(i.global_id),
                Some(i.link_type),
                SkipReason::NoTimestamp,
            ),
            None => self.skip(index, None, None, SkipReason::UnknownInterface(0)),
        }
    }

    fn skip(
        &mut self,
        index: u64,
        interface: Option<u32>,
        link_type: Option<u32>,
        reason: SkipReason,
    ) -> Step {
        self.stats.record(interface, None);
        self.stats.skipped(reason);
        Step::Skipped(SkippedPacket {
            index,
            timestamp_ns: None,
            interface,
            link_type,
            reason,
        })
    }

    /// Strips the link layer of a record and counts the outcome.
    fn classify(&mut self, r: RawRecord) -> Step {
        self.stats.record(Some(r.interface), Some(r.timestamp_ns));
        let frame = self.source.available().get(r.frame.clone()).unwrap_or(&[]);
        let captured_len = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        if captured_len > r.original_len {
            self.stats.anomaly(Anomaly::CapturedLenExceedsOriginal);
        }
        match strip_link_layer(r.link_type, frame, r.order) {
            Ok(s) => {
                if s.trailer_trimmed {
                    self.stats.anomaly(Anomaly::IpTrailerTrimmed);
                }
                let truncated = captured_len < r.original_len;
                let direction = s.direction.or(r.flags_direction);
                self.stats
                    .yielded(r.interface, s.version, direction, truncated);
                Step::Packet(PacketMeta {
                    index: r.index,
                    timestamp_ns: r.timestamp_ns,
                    interface: r.interface,
                    link_type: r.link_type,
                    direction,
                    version: s.version,
                    ip: (r.frame.start + s.start, r.frame.start + s.end),
                    truncated,
                    original_len: r.original_len,
                })
            }
            Err(reason) => {
                self.stats.skipped(reason);
                Step::Skipped(SkippedPacket {
                    index: r.index,
                    timestamp_ns: Some(r.timestamp_ns),
                    interface: Some(r.interface),
                    link_type: Some(r.link_type),
                    reason,
                })
            }
        }
    }
}

/// Opens `path` and calls `f` for every IP packet; returns the summary.
pub fn for_each_packet<F>(path: impl AsRef<Path>, f: F) -> Result<CaptureSummary, CaptureError>
where
    F: FnMut(&CapturedPacket<'_>),
{
    CaptureReader::open(path)?.for_each_packet(f)
}

/// Reads every IP packet of `path` into memory (convenient for tests and small files).
pub fn read_packets(
    path: impl AsRef<Path>,
) -> Result<(Vec<OwnedPacket>, CaptureSummary), CaptureError> {
    let mut packets = Vec::new();
    let summary = for_each_packet(path, |p| packets.push(p.to_owned_packet()))?;
    Ok((packets, summary))
}
