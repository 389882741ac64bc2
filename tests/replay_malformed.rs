//! The reader never panics: every prefix of the small corpus files, random mutations of them,
//! and reads split at every chunk boundary. These double as the seed replay for fuzzing.

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use natsim::replay::{CaptureReader, CaptureRecord, CaptureSummary, OwnedPacket};
use proptest::prelude::*;

fn corpus_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/pcaps/tcpdump");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("corpus directory exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"))
        .collect();
    files.sort();
    files
}

/// Reads everything the reader will give; returns packets, the summary and whether it
/// stopped on an error. Panics only if the reader does.
fn drain<R: Read>(reader: R) -> Option<(Vec<OwnedPacket>, CaptureSummary, bool)> {
    let mut reader = CaptureReader::new(reader, "<input>").ok()?;
    let mut packets = Vec::new();
    let failed = loop {
        match reader.next_record() {
            Ok(Some(CaptureRecord::Packet(p))) => {
                assert!(matches!(p.ip.first().map(|b| b >> 4), Some(4 | 6)));
                packets.push(p.to_owned_packet());
            }
            Ok(Some(CaptureRecord::Skipped(_))) => {}
            Ok(None) => break false,
            Err(_) => break true,
        }
    };
    let summary = reader.summary();
    assert_eq!(
        summary.packets,
        summary.ip_packets + summary.skipped_packets
    );
    Some((packets, summary, failed))
}

#[test]
fn every_prefix_of_small_files() {
    for path in corpus_files() {
        let bytes = std::fs::read(&path).unwrap();
        // Every cut for small files; for large ones every cut in the headers and 200 spread
        // over the rest.
        let cuts: Vec<usize> = if bytes.len() <= 8 * 1024 {
            (0..=bytes.len()).collect()
        } else {
            (0..256)
                .chain((0..200).map(|i| i * bytes.len() / 200))
                .collect()
        };
        for cut in cuts {
            if let Some((_, summary, failed)) = drain(&bytes[..cut]) {
                // A cut inside a record is reported, never silently accepted.
                assert!(failed || summary.error.is_none());
            }
        }
    }
}

/// Returns at most `step` bytes per read, cycling through 1..=7, to hit every refill boundary.
struct Chunky<'a> {
    data: &'a [u8],
    step: usize,
}

impl Read for Chunky<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        self.step = self.step % 7 + 1;
        let n = self.step.min(out.len()).min(self.data.len());
        out[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

#[test]
fn chunked_reads_match_whole_reads() {
    for path in corpus_files() {
        let bytes = std::fs::read(&path).unwrap();
        let whole = drain(&bytes[..]);
        let chunked = drain(Chunky {
            data: &bytes,
            step: 0,
        });
        assert_eq!(whole, chunked, "{}", path.display());
    }
}

fn small_seeds() -> Vec<Vec<u8>> {
    corpus_files()
        .into_iter()
        .map(|p| std::fs::read(p).unwrap())
        .filter(|b| b.len() <= 4096)
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn mutated_seeds_never_panic(
        seed in any::<prop::sample::Index>(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..16),
        cut in any::<prop::sample::Index>(),
    ) {
        let seeds = small_seeds();
        let mut bytes = seeds[seed.index(seeds.len())].clone();
        for (at, value) in edits {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        let keep = cut.index(bytes.len() + 1);
        drain(&bytes[..]);
        drain(&bytes[..keep]);
    }

    #[test]
    fn random_bytes_after_a_valid_magic_never_panic(
        pcapng in any::<bool>(),
        body in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        let mut bytes = if pcapng {
            vec![0x0a, 0x0d, 0x0d, 0x0a, 0x1c, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0]
        } else {
            vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 1, 0, 0, 0]
        };
        bytes.extend_from_slice(&body);
        drain(&bytes[..]);
    }
}
