//! Errors for reading and writing captures.

use std::fmt;

/// A capture that cannot be read (any further). Names the file, and where known the packet
/// index and the byte offset in the file where reading stopped.
#[derive(Debug, thiserror::Error)]
pub struct CaptureError {
    /// File name (or the label given to an in-memory reader).
    pub file: String,
    /// Byte offset in the file of the structure that failed, if known.
    pub offset: Option<u64>,
    /// 0-based index of the packet record being read, if the failure is inside one.
    pub packet_index: Option<u64>,
    /// What went wrong.
    pub kind: CaptureErrorKind,
}

impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file, self.kind)?;
        match (self.packet_index, self.offset) {
            (Some(i), Some(o)) => write!(f, " (packet index {i}, byte offset {o})"),
            (Some(i), None) => write!(f, " (packet index {i})"),
            (None, Some(o)) => write!(f, " (byte offset {o})"),
            (None, None) => Ok(()),
        }
    }
}

/// The reasons a capture cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum CaptureErrorKind {
    /// The operating system failed to open or read the file.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The file has no bytes at all.
    #[error("empty file: no capture header")]
    EmptyFile,
    /// The first four bytes are neither a pcap nor a pcapng magic number.
    #[error(
        "not a pcap or pcapng file (magic 0x{0:08x}; natsim reads pcap, nanosecond and modified \
         pcap, pcapng, each plain or gzip/zstd-compressed)"
    )]
    UnknownMagic(u32),
    /// A known capture or archive format that natsim does not read.
    #[error("{0}: not supported")]
    Unsupported(&'static str),
    /// The file ends inside a header or record.
    #[error("file truncated: {what} needs {needed} bytes, only {available} left")]
    Truncated {
        /// The structure being read.
        what: &'static str,
        /// Bytes it needs.
        needed: u64,
        /// Bytes left in the file.
        available: u64,
    },
    /// A length field larger than any sane record; reading it would mean buffering garbage.
    #[error("{what} length {length} exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The structure being read.
        what: &'static str,
        /// The length the file claims.
        length: u64,
        /// The reader's limit.
        limit: u64,
    },
    /// A header field has an impossible value.
    #[error("invalid {what}: {detail}")]
    Invalid {
        /// The structure being read.
        what: &'static str,
        /// What is wrong with it.
        detail: String,
    },
}

/// A capture that cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum CaptureWriteError {
    /// The underlying writer failed.
    #[error("I/O error writing capture: {0}")]
    Io(#[from] std::io::Error),
    /// pcap-file rejected a block or packet.
    #[error("pcap encoding error: {0}")]
    Encoding(String),
    /// A packet names an interface that was never added.
    #[error("packet refers to interface {interface}, but only {count} interfaces exist")]
    UnknownInterface {
        /// Interface id used.
        interface: u32,
        /// Interfaces added so far.
        count: u32,
    },
    /// Classic pcap stores seconds in 32 bits: no timestamps after 2106-02-07.
    #[error("timestamp {timestamp_ns} ns does not fit a pcap record (32-bit seconds)")]
    TimestampOutOfRange {
        /// The timestamp given.
        timestamp_ns: u64,
    },
    /// Packets larger than the writer's snap length cannot be read back by libpcap/tshark.
    #[error("packet of {length} bytes exceeds the {limit}-byte snap length")]
    PacketTooLarge {
        /// Packet length.
        length: usize,
        /// Limit.
        limit: usize,
    },
    /// pcapng option strings are limited to 65535 bytes.
    #[error("interface name of {length} bytes is longer than {limit} bytes")]
    NameTooLong {
        /// Name length in bytes.
        length: usize,
        /// Limit.
        limit: usize,
    },
}

impl From<pcap_file::PcapError> for CaptureWriteError {
    fn from(e: pcap_file::PcapError) -> Self {
        match e {
            pcap_file::PcapError::IoError(io) => CaptureWriteError::Io(io),
            other => CaptureWriteError::Encoding(other.to_string()),
        }
    }
}
