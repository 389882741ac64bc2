//! Capture writers: pcapng with one named raw-IP interface per link, and classic pcap.
//!
//! Output is a pure function of the calls made: fixed little-endian byte order (not the host's,
//! which is pcap-file's default), no hostname, OS or capture-time strings, only
//! `shb_userappl = "natsim"`. Both formats use `LINKTYPE_RAW` (101) and nanosecond timestamps,
//! so tshark, tcpdump and this crate's reader read them back exactly.

use std::borrow::Cow;
use std::io::Write;
use std::time::Duration;

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::blocks::section_header::{SectionHeaderBlock, SectionHeaderOption};
use pcap_file::{DataLink, Endianness, TsResolution};

use super::error::CaptureWriteError;
use super::link::CaptureDirection;
use super::timestamp::NANOS_PER_SEC;

/// Snap length written to file and interface headers; also the largest packet accepted, since
/// libpcap (and so tcpdump and tshark) rejects records above 256 KiB.
pub const WRITER_SNAPLEN: u32 = 262_144;

/// The `shb_userappl` string of every pcapng file written.
pub const USER_APPLICATION: &str = "natsim";

/// pcapng `if_tsresol` value for nanoseconds (10^-9 s).
const TSRESOL_NANOS: u8 = 9;

/// pcapng block type of an Enhanced Packet Block.
const ENHANCED_PACKET_BLOCK: u32 = 6;

/// pcapng option values are at most 65535 bytes; pcap-file truncates the length silently.
const MAX_OPTION_BYTES: usize = 65_535;

fn check_len(ip: &[u8]) -> Result<u32, CaptureWriteError> {
    u32::try_from(ip.len())
        .ok()
        .filter(|&l| l <= WRITER_SNAPLEN)
        .ok_or(CaptureWriteError::PacketTooLarge {
            length: ip.len(),
            limit: WRITER_SNAPLEN as usize,
        })
}

/// Writes a pcapng file: call [`add_interface`](Self::add_interface) once per link, then
/// [`write_packet`](Self::write_packet) with the returned interface id.
pub struct PcapNgCaptureWriter<W: Write> {
    inner: PcapNgWriter<W>,
    interfaces: u32,
}

impl<W: Write> PcapNgCaptureWriter<W> {
    /// Writes the section header.
    pub fn new(writer: W) -> Result<Self, CaptureWriteError> {
        let section = SectionHeaderBlock {
            endianness: Endianness::Little,
            major_version: 1,
            minor_version: 0,
            section_length: -1,
            options: vec![SectionHeaderOption::UserApplication(Cow::Borrowed(
                USER_APPLICATION,
            ))],
        };
        let inner = PcapNgWriter::with_section_header(writer, section)?;
        Ok(PcapNgCaptureWriter {
            inner,
            interfaces: 0,
        })
    }

    /// Adds a raw-IP interface named `name` (`if_name`) with nanosecond timestamps; returns
    /// its id. Ids are assigned 0, 1, 2, ... in call order.
    pub fn add_interface(&mut self, name: &str) -> Result<u32, CaptureWriteError> {
        if name.len() > MAX_OPTION_BYTES {
            return Err(CaptureWriteError::NameTooLong {
                length: name.len(),
                limit: MAX_OPTION_BYTES,
            });
        }
        let idb = InterfaceDescriptionBlock {
            linktype: DataLink::RAW,
            snaplen: WRITER_SNAPLEN,
            options: vec![
                InterfaceDescriptionOption::IfName(Cow::Owned(name.to_owned())),
                InterfaceDescriptionOption::IfTsResol(TSRESOL_NANOS),
            ],
        };
        self.inner.write_pcapng_block(idb)?;
        let id = self.interfaces;
        self.interfaces += 1;
        Ok(id)
    }

    /// Number of interfaces added.
    pub fn interface_count(&self) -> u32 {
        self.interfaces
    }

    /// Writes one IP packet on `interface` at `timestamp_ns`; `direction` becomes `epb_flags`.
    pub fn write_packet(
        &mut self,
        interface: u32,
        timestamp_ns: u64,
        direction: Option<CaptureDirection>,
        ip: &[u8],
    ) -> Result<(), CaptureWriteError> {
        self.write_packet_commented(interface, timestamp_ns, direction, ip, "")
    }

    /// [`write_packet`](Self::write_packet) with a packet comment (`opt_comment`, shown by
    /// Wireshark and matched by tshark's `frame.comment`); an empty comment writes none. A
    /// comment longer than an option can hold (65535 bytes) is cut at a character boundary.
    pub fn write_packet_commented(
        &mut self,
        interface: u32,
        timestamp_ns: u64,
        direction: Option<CaptureDirection>,
        ip: &[u8],
        comment: &str,
    ) -> Result<(), CaptureWriteError> {
        if interface >= self.interfaces {
            return Err(CaptureWriteError::UnknownInterface {
                interface,
                count: self.interfaces,
            });
        }
        let captured_len = check_len(ip)?;
        // The Enhanced Packet Block is encoded here rather than through pcap-file, which
        // serialises every block twice (once to measure it) and allocates its option list: this
        // is the replay's per-packet output path. The bytes are exactly pcap-file's
        // (tests/replay_writer.rs pins them): little-endian, data padded to 4 bytes, then
        // `opt_comment` (code 1, padded to 4 bytes) when a comment is given, `epb_flags`
        // (bits 0-1: 01 inbound, 10 outbound) when a direction is, and `opt_endofopt` after any
        // option.
        let comment = truncate_to_char_boundary(comment, MAX_OPTION_BYTES);
        let pad_len = (4 - ip.len() % 4) % 4;
        let comment_pad = (4 - comment.len() % 4) % 4;
        let comment_len = if comment.is_empty() {
            0
        } else {
            4 + comment.len() + comment_pad
        };
        let any_option = direction.is_some() || !comment.is_empty();
        let options_len = comment_len as u32
            + if direction.is_some() { 8 } else { 0 }
            + if any_option { 4 } else { 0 };
        let block_len = 32 + captured_len + pad_len as u32 + options_len;
        let mut head = [0u8; 28];
        let words = [
            ENHANCED_PACKET_BLOCK,
            block_len,
            interface,
            (timestamp_ns >> 32) as u32,
            timestamp_ns as u32,
            captured_len,
            captured_len,
        ];
        for (chunk, w) in head.chunks_exact_mut(4).zip(words) {
            chunk.copy_from_slice(&w.to_le_bytes());
        }
        let w = self.inner.get_mut();
        w.write_all(&head)?;
        w.write_all(ip)?;
        let mut tail = [0u8; 19];
        let mut n = pad_len;
        if !comment.is_empty() {
            tail[n..n + 2].copy_from_slice(&1u16.to_le_bytes());
            tail[n + 2..n + 4].copy_from_slice(&(comment.len() as u16).to_le_bytes());
            w.write_all(&tail[..n + 4])?;
            w.write_all(comment.as_bytes())?;
            tail[..n + 4].fill(0);
            n = comment_pad;
        }
        if let Some(d) = direction {
            let flags: u32 = match d {
                CaptureDirection::Inbound => 1,
                CaptureDirection::Outbound => 2,
            };
            tail[n..n + 2].copy_from_slice(&2u16.to_le_bytes());
            tail[n + 2..n + 4].copy_from_slice(&4u16.to_le_bytes());
            tail[n + 4..n + 8].copy_from_slice(&flags.to_le_bytes());
            n += 8;
        }
        if any_option {
            // opt_endofopt: four zero bytes.
            n += 4;
        }
        tail[n..n + 4].copy_from_slice(&block_len.to_le_bytes());
        n += 4;
        w.write_all(&tail[..n])?;
        Ok(())
    }

    /// Flushes and returns the underlying writer.
    pub fn finish(self) -> Result<W, CaptureWriteError> {
        let mut w = self.inner.into_inner();
        w.flush()?;
        Ok(w)
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn truncate_to_char_boundary(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Writes a classic pcap file: `LINKTYPE_RAW`, nanosecond magic (0xa1b23c4d), little-endian.
/// Classic pcap has no interfaces or directions; use pcapng to keep those.
pub struct PcapCaptureWriter<W: Write> {
    inner: PcapWriter<W>,
}

impl<W: Write> PcapCaptureWriter<W> {
    /// Writes the file header.
    pub fn new(writer: W) -> Result<Self, CaptureWriteError> {
        let header = PcapHeader {
            version_major: 2,
            version_minor: 4,
            ts_correction: 0,
            ts_accuracy: 0,
            snaplen: WRITER_SNAPLEN,
            datalink: DataLink::RAW,
            ts_resolution: TsResolution::NanoSecond,
            endianness: Endianness::Little,
        };
        Ok(PcapCaptureWriter {
            inner: PcapWriter::with_header(writer, header)?,
        })
    }

    /// Writes one IP packet. Fails for timestamps from 2106-02-07 on (32-bit seconds).
    pub fn write_packet(&mut self, timestamp_ns: u64, ip: &[u8]) -> Result<(), CaptureWriteError> {
        if timestamp_ns / NANOS_PER_SEC > u64::from(u32::MAX) {
            return Err(CaptureWriteError::TimestampOutOfRange { timestamp_ns });
        }
        let original_len = check_len(ip)?;
        let packet = PcapPacket::new(Duration::from_nanos(timestamp_ns), original_len, ip);
        self.inner.write_packet(&packet)?;
        Ok(())
    }

    /// Flushes and returns the underlying writer.
    pub fn finish(self) -> Result<W, CaptureWriteError> {
        let mut w = self.inner.into_writer();
        w.flush()?;
        Ok(w)
    }
}
