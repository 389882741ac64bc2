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
use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
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
        if interface >= self.interfaces {
            return Err(CaptureWriteError::UnknownInterface {
                interface,
                count: self.interfaces,
            });
        }
        let original_len = check_len(ip)?;
        // epb_flags bits 0-1: 01 inbound, 10 outbound.
        let options = match direction {
            None => Vec::new(),
            Some(CaptureDirection::Inbound) => vec![EnhancedPacketOption::Flags(1)],
            Some(CaptureDirection::Outbound) => vec![EnhancedPacketOption::Flags(2)],
        };
        // pcap-file writes `timestamp.as_nanos()` as the raw 64-bit unit count, which is right
        // exactly because every interface declares if_tsresol = 9.
        let epb = EnhancedPacketBlock {
            interface_id: interface,
            timestamp: Duration::from_nanos(timestamp_ns),
            original_len,
            data: Cow::Borrowed(ip),
            options,
        };
        self.inner.write_pcapng_block(epb)?;
        Ok(())
    }

    /// Flushes and returns the underlying writer.
    pub fn finish(self) -> Result<W, CaptureWriteError> {
        let mut w = self.inner.into_inner();
        w.flush()?;
        Ok(w)
    }
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
