//! pcapng block bodies: the few fields the reader needs, decoded leniently.
//!
//! pcap-file 2.0.0 parses pcapng too, but is unusable here as is: its Enhanced Packet Block
//! timestamps ignore `if_tsresol` (a microsecond file reads 1000× too small), its `if_tzone`
//! option check rejects every valid option (length must be 1, then it reads 4 bytes), any
//! malformed or non-UTF-8 option fails the whole block, and its generic block API needs the
//! `byteorder_slice` crate which it does not re-export. These functions take a block body (the
//! bytes between the length fields) and never fail on options: a bad option list only drops
//! the options.

use super::link::HostOrder;
use super::timestamp::TsResolution;

/// Section Header Block type (a byte palindrome: readable before the byte order is known).
pub const SECTION_HEADER: u32 = 0x0a0d_0d0a;
/// Interface Description Block type.
pub const INTERFACE_DESCRIPTION: u32 = 1;
/// Obsolete Packet Block type.
pub const PACKET: u32 = 2;
/// Simple Packet Block type.
pub const SIMPLE_PACKET: u32 = 3;
/// Enhanced Packet Block type.
pub const ENHANCED_PACKET: u32 = 6;
/// Byte-order magic of a Section Header Block, as read big-endian from a big-endian file.
pub const BYTE_ORDER_MAGIC: u32 = 0x1a2b_3c4d;

/// Reads a `u16` at `at` in `order`.
pub fn u16_at(b: &[u8], at: usize, order: HostOrder) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    let a = [s[0], s[1]];
    Some(match order {
        HostOrder::Little => u16::from_le_bytes(a),
        HostOrder::Big => u16::from_be_bytes(a),
    })
}

/// Reads a `u32` at `at` in `order`.
pub fn u32_at(b: &[u8], at: usize, order: HostOrder) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    let a = [s[0], s[1], s[2], s[3]];
    Some(match order {
        HostOrder::Little => u32::from_le_bytes(a),
        HostOrder::Big => u32::from_be_bytes(a),
    })
}

/// Reads a `u64` at `at` in `order`.
pub fn u64_at(b: &[u8], at: usize, order: HostOrder) -> Option<u64> {
    let s = b.get(at..at.checked_add(8)?)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Some(match order {
        HostOrder::Little => u64::from_le_bytes(a),
        HostOrder::Big => u64::from_be_bytes(a),
    })
}

/// Iterates the options of a block: `(code, value)` until `opt_endofopt` or the end. Returns
/// `None` if the list is malformed (an option runs past the block).
fn options(b: &[u8], order: HostOrder) -> Option<Vec<(u16, &[u8])>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < b.len() {
        let code = u16_at(b, at, order)?;
        let len = usize::from(u16_at(b, at + 2, order)?);
        if code == 0 {
            break;
        }
        let value = b.get(at + 4..at + 4 + len)?;
        out.push((code, value));
        // Values are padded to 4 bytes.
        at += 4 + ((len + 3) & !3);
    }
    Some(out)
}

/// Finds one option's value without allocating (the per-packet path). `Err` if malformed.
fn find_option(b: &[u8], order: HostOrder, wanted: u16) -> Result<Option<&[u8]>, ()> {
    let mut at = 0;
    while at < b.len() {
        let code = u16_at(b, at, order).ok_or(())?;
        let len = usize::from(u16_at(b, at + 2, order).ok_or(())?);
        if code == 0 {
            return Ok(None);
        }
        let value = b.get(at + 4..at + 4 + len).ok_or(())?;
        if code == wanted {
            return Ok(Some(value));
        }
        at += 4 + ((len + 3) & !3);
    }
    Ok(None)
}

/// A decoded Section Header Block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SectionHeader {
    /// Byte order of every block in the section.
    pub order: HostOrder,
    /// Major version (only 1 is defined).
    pub major_version: u16,
}

/// Decodes a Section Header Block body (starting at the byte-order magic).
pub fn section_header(body: &[u8]) -> Result<SectionHeader, &'static str> {
    let order = match u32_at(body, 0, HostOrder::Big) {
        Some(BYTE_ORDER_MAGIC) => HostOrder::Big,
        Some(m) if m.swap_bytes() == BYTE_ORDER_MAGIC => HostOrder::Little,
        Some(_) => return Err("bad byte-order magic"),
        None => return Err("section header body shorter than its magic"),
    };
    // magic(4) major(2) minor(2) section length(8)
    let major_version = u16_at(body, 4, order).ok_or("section header shorter than 16 bytes")?;
    if body.len() < 16 {
        return Err("section header shorter than 16 bytes");
    }
    Ok(SectionHeader {
        order,
        major_version,
    })
}

/// A decoded Interface Description Block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceDescription {
    /// Link type (16 bits in pcapng).
    pub link_type: u32,
    /// `if_tsresol`, microseconds if absent.
    pub resolution: TsResolution,
    /// `if_tsoffset` in seconds, 0 if absent.
    pub offset_s: i64,
    /// `if_name`, if present and UTF-8.
    pub name: Option<String>,
    /// True if the option list was malformed and ignored.
    pub bad_options: bool,
}

/// Decodes an Interface Description Block body.
pub fn interface_description(
    body: &[u8],
    order: HostOrder,
) -> Result<InterfaceDescription, &'static str> {
    // link type(2) reserved(2) snaplen(4) options
    let link_type = u16_at(body, 0, order).ok_or("interface description shorter than 8 bytes")?;
    if body.len() < 8 {
        return Err("interface description shorter than 8 bytes");
    }
    let mut idb = InterfaceDescription {
        link_type: u32::from(link_type),
        resolution: TsResolution::MICROS,
        offset_s: 0,
        name: None,
        bad_options: false,
    };
    match options(&body[8..], order) {
        Some(opts) => {
            for (code, value) in opts {
                match (code, value) {
                    (2, name) => idb.name = std::str::from_utf8(name).ok().map(str::to_owned),
                    (9, &[byte]) => idb.resolution = TsResolution::from_option_byte(byte),
                    (14, v) if v.len() == 8 => {
                        // Signed per the pcapng spec (pcap-file reads it as u64).
                        idb.offset_s = u64_at(v, 0, order).map_or(0, |o| o as i64);
                    }
                    _ => {}
                }
            }
        }
        None => idb.bad_options = true,
    }
    Ok(idb)
}

/// The packet fields of an Enhanced or obsolete Packet Block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketFields {
    /// Interface id local to the section.
    pub interface: u32,
    /// Timestamp in units of the interface's `if_tsresol`.
    pub timestamp_units: u64,
    /// Original length on the wire.
    pub original_len: u32,
    /// Offset of the packet data in the body.
    pub data_start: usize,
    /// Captured length.
    pub data_len: usize,
    /// `epb_flags` / `pack_flags`, if present.
    pub flags: Option<u32>,
    /// True if the option list was malformed and ignored.
    pub bad_options: bool,
}

/// Decodes an Enhanced Packet Block body; `obsolete` selects the Packet Block layout (16-bit
/// interface id and drop count instead of a 32-bit interface id).
pub fn packet(body: &[u8], order: HostOrder, obsolete: bool) -> Result<PacketFields, &'static str> {
    // interface(4) | interface(2) drops(2); ts high(4) ts low(4) caplen(4) origlen(4)
    let short = "packet block shorter than its fixed header";
    let interface = if obsolete {
        u32::from(u16_at(body, 0, order).ok_or(short)?)
    } else {
        u32_at(body, 0, order).ok_or(short)?
    };
    let high = u32_at(body, 4, order).ok_or(short)?;
    let low = u32_at(body, 8, order).ok_or(short)?;
    let captured = u32_at(body, 12, order).ok_or(short)?;
    let original_len = u32_at(body, 16, order).ok_or(short)?;
    let data_len = usize::try_from(captured).map_err(|_| "captured length overflows usize")?;
    let data_end = 20usize
        .checked_add(data_len)
        .filter(|&end| end <= body.len())
        .ok_or("captured length runs past the block")?;
    let opts_start = data_end.saturating_add(3) & !3;
    let opts = body.get(opts_start..).unwrap_or(&[]);
    let (flags, bad_options) = match find_option(opts, order, 2) {
        Ok(Some(v)) => (u32_at(v, 0, order).filter(|_| v.len() == 4), v.len() != 4),
        Ok(None) => (None, false),
        Err(()) => (None, true),
    };
    Ok(PacketFields {
        interface,
        timestamp_units: (u64::from(high) << 32) | u64::from(low),
        original_len,
        data_start: 20,
        data_len,
        flags,
        bad_options,
    })
}

/// Decodes a Simple Packet Block body: original length and the captured data range. The
/// captured length is the smaller of the original length and the block's data area.
pub fn simple_packet(body: &[u8], order: HostOrder) -> Result<(u32, usize, usize), &'static str> {
    let original_len = u32_at(body, 0, order).ok_or("simple packet block shorter than 4 bytes")?;
    let area = body.len() - 4;
    let data_len = usize::try_from(original_len).map_or(area, |o| o.min(area));
    Ok((original_len, 4, data_len))
}

/// The packet comment (`opt_comment`, the first one) of every packet block of a whole pcapng
/// file, in file order (`None` for a packet without one, or a Simple Packet Block). Reads
/// back the verdicts `natsim replay` and `natsim run --pcap-dir` write on their packets.
pub fn packet_comments(file: &[u8]) -> Result<Vec<Option<String>>, &'static str> {
    let mut out = Vec::new();
    let mut order = HostOrder::Little;
    let mut at = 0usize;
    while at < file.len() {
        let head = file
            .get(at..at + 8)
            .ok_or("file ends inside a block header")?;
        let raw_type = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        if raw_type == SECTION_HEADER {
            let body = file.get(at + 8..).ok_or("section header truncated")?;
            order = section_header(body)?.order;
        }
        let block_type = u32_at(head, 0, order).ok_or("block header")?;
        let len = u32_at(head, 4, order).ok_or("block header")? as usize;
        if len < 12 || !len.is_multiple_of(4) {
            return Err("invalid block length");
        }
        let body = file
            .get(at + 8..at + len - 4)
            .ok_or("block runs past the end of the file")?;
        match block_type {
            ENHANCED_PACKET | PACKET => {
                let fields = packet(body, order, block_type == PACKET)?;
                let opts_start = (fields.data_start + fields.data_len + 3) & !3;
                let opts = body.get(opts_start..).unwrap_or(&[]);
                let comment = find_option(opts, order, 1)
                    .map_err(|()| "malformed packet options")?
                    .map(|v| String::from_utf8_lossy(v).into_owned());
                out.push(comment);
            }
            SIMPLE_PACKET => out.push(None),
            _ => {}
        }
        at += len;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idb_options_and_bad_options() {
        let mut b = vec![1, 0, 0, 0, 0, 0, 4, 0];
        b.extend_from_slice(&[9, 0, 1, 0, 0x89, 0, 0, 0]); // tsresol 2^-9
        b.extend_from_slice(&[2, 0, 3, 0, b'e', b't', b'h', 0]);
        b.extend_from_slice(&[14, 0, 8, 0]);
        b.extend_from_slice(&(-3i64).to_le_bytes());
        b.extend_from_slice(&[0, 0, 0, 0]);
        let idb = interface_description(&b, HostOrder::Little).unwrap();
        assert_eq!(idb.link_type, 1);
        assert_eq!(idb.resolution, TsResolution::Binary(9));
        assert_eq!(idb.offset_s, -3);
        assert_eq!(idb.name.as_deref(), Some("eth"));
        let mut bad = b[..8].to_vec();
        bad.extend_from_slice(&[9, 0, 200, 0]);
        assert!(
            interface_description(&bad, HostOrder::Little)
                .unwrap()
                .bad_options
        );
    }

    #[test]
    fn epb_bounds() {
        let mut b = vec![0u8; 20];
        b[12] = 5; // caplen 5 but no data
        assert!(packet(&b, HostOrder::Little, false).is_err());
        b.extend_from_slice(&[0x45, 0, 0, 0, 0, 0, 0, 0]);
        b.extend_from_slice(&[2, 0, 4, 0, 2, 0, 0, 0, 0, 0, 0, 0]);
        let p = packet(&b, HostOrder::Little, false).unwrap();
        assert_eq!((p.data_start, p.data_len, p.flags), (20, 5, Some(2)));
        assert!(packet(&b[..3], HostOrder::Little, false).is_err());
    }
}
