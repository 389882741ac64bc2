//! pcapng output of captured links: one interface per link (raw IP, nanosecond timestamps), every
//! packet a gateway handled with its verdict comment (`crate::sim::capture`).
//!
//! Written with the replay module's writer ([`crate::replay::PcapNgCaptureWriter`]), so run and
//! replay captures are encoded alike; callers only use [`write_pcapng`].

use std::io;
use std::path::Path;

use crate::replay::PcapNgCaptureWriter;
use crate::sim::engine::CapturedPacket;

/// Writes `links` (name, captured packets) to one pcapng file, packets in time order across
/// links, each with its comment. The file appears only once complete ([`crate::output`]).
pub fn write_pcapng(path: &Path, links: &[(String, &[CapturedPacket])]) -> io::Result<()> {
    let file = crate::output::AtomicFile::create(path)?;
    let mut w = PcapNgCaptureWriter::new(file).map_err(io::Error::other)?;
    for (name, _) in links {
        w.add_interface(name).map_err(io::Error::other)?;
    }
    let mut all: Vec<(u64, u32, &CapturedPacket)> = links
        .iter()
        .enumerate()
        .flat_map(|(i, (_, pkts))| pkts.iter().map(move |p| (p.time_ns, i as u32, p)))
        .collect();
    all.sort_by_key(|&(t, i, _)| (t, i));
    for (t, i, p) in all {
        w.write_packet_commented(i, t, None, &p.bytes, &p.comment)
            .map_err(io::Error::other)?;
    }
    w.finish().map_err(io::Error::other)?.commit()
}
