//! pcapng output of captured links: one interface per link (raw IP, nanosecond timestamps).
//!
//! This is the narrow seam for the replay module's writer (`crate::replay`): callers only use
//! [`write_pcapng`].

use std::borrow::Cow;
use std::io;
use std::path::Path;
use std::time::Duration;

use pcap_file::DataLink;
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};

/// Writes `links` (name, packets as (virtual time in ns, IP bytes)) to one pcapng file, packets
/// in time order across links. The file appears only once complete ([`crate::output`]).
pub fn write_pcapng(
    path: &Path,
    links: &[(String, &[crate::sim::engine::CapturedPacket])],
) -> io::Result<()> {
    let file = crate::output::AtomicFile::create(path)?;
    let mut w = PcapNgWriter::new(file).map_err(io::Error::other)?;
    for (name, _) in links {
        let idb = InterfaceDescriptionBlock {
            linktype: DataLink::RAW,
            snaplen: 0,
            options: vec![
                InterfaceDescriptionOption::IfName(Cow::Owned(name.clone())),
                InterfaceDescriptionOption::IfTsResol(9),
            ],
        };
        w.write_pcapng_block(idb).map_err(io::Error::other)?;
    }
    let mut all: Vec<(u64, u32, &[u8])> = links
        .iter()
        .enumerate()
        .flat_map(|(i, (_, pkts))| pkts.iter().map(move |(t, b)| (*t, i as u32, b.as_slice())))
        .collect();
    all.sort_by_key(|&(t, i, _)| (t, i));
    for (t, i, b) in all {
        let epb = EnhancedPacketBlock {
            interface_id: i,
            timestamp: Duration::from_nanos(t),
            original_len: b.len() as u32,
            data: Cow::Borrowed(b),
            options: Vec::new(),
        };
        w.write_pcapng_block(epb).map_err(io::Error::other)?;
    }
    w.into_inner().commit()
}
