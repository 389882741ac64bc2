//! Every capture of the tcpdump corpus is read without panicking; the per-file outcome is
//! snapshot-tested so that any change in what the reader yields or skips shows up in review.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use natsim::replay::{CaptureReader, CaptureRecord, CaptureSummary};
use serde::Serialize;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/pcaps/tcpdump")
}

/// Capture files of the corpus, sorted by name (the LICENSE file is not a capture).
fn corpus_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .expect("corpus directory exists")
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"))
        .collect();
    files.sort();
    files
}

/// The compact per-file line of the snapshot.
#[derive(Debug, Serialize)]
struct FileOutcome {
    format: Option<String>,
    link_types: Vec<String>,
    packets: u64,
    ipv4: u64,
    ipv6: u64,
    truncated: u64,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    skipped: BTreeMap<String, u64>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    directions: BTreeMap<String, u64>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    anomalies: BTreeMap<String, u64>,
    first_timestamp_ns: Option<u64>,
    /// IP bytes yielded, a cheap fingerprint of what the stripping produced.
    ip_bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// Reads a whole file record by record, like a replay would; never stops at the first error
/// without recording it.
fn read(path: &Path) -> (Option<CaptureSummary>, u64, Option<String>) {
    let mut reader = match CaptureReader::open(path) {
        Ok(r) => r,
        Err(e) => return (None, 0, Some(e.kind.to_string())),
    };
    let mut ip_bytes = 0u64;
    let mut error = None;
    loop {
        match reader.next_record() {
            Ok(Some(CaptureRecord::Packet(p))) => ip_bytes += p.ip.len() as u64,
            Ok(Some(CaptureRecord::Skipped(_))) => {}
            Ok(None) => break,
            Err(e) => {
                error = Some(
                    e.to_string()
                        .replace(&corpus_dir().display().to_string(), ""),
                );
                break;
            }
        }
    }
    // A fused reader keeps returning the end.
    assert!(matches!(reader.next_record(), Ok(None)));
    (Some(reader.summary()), ip_bytes, error)
}

#[test]
fn whole_corpus_reads_without_panic() {
    let mut table = BTreeMap::new();
    for path in corpus_files() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let (summary, ip_bytes, error) = read(&path);
        let outcome = match summary {
            Some(s) => FileOutcome {
                format: Some(s.format),
                link_types: s.link_types.keys().cloned().collect(),
                packets: s.packets,
                ipv4: s.ipv4_packets,
                ipv6: s.ipv6_packets,
                truncated: s.truncated_packets,
                skipped: s.skipped_detail,
                directions: s.directions,
                anomalies: s.anomalies,
                first_timestamp_ns: s.first_timestamp_ns,
                ip_bytes,
                error,
            },
            None => FileOutcome {
                format: None,
                link_types: Vec::new(),
                packets: 0,
                ipv4: 0,
                ipv6: 0,
                truncated: 0,
                skipped: BTreeMap::new(),
                directions: BTreeMap::new(),
                anomalies: BTreeMap::new(),
                first_timestamp_ns: None,
                ip_bytes: 0,
                error,
            },
        };
        table.insert(name, outcome);
    }
    assert_eq!(table.len(), 91, "corpus files");
    insta::assert_yaml_snapshot!("corpus_outcomes", table);
}
