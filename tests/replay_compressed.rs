//! Captures are read whatever their container, as Wireshark reads them: gzip and zstd by magic
//! bytes (not by name), libpcap's modified format, and a clear error naming the format for
//! known ones natsim does not read. A compressed or modified capture replays exactly like its
//! plain version: same summary apart from the format, byte-identical outputs.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use natsim::replay::{
    CaptureFormat, CaptureReader, Compression, ReplayConfig, ReplayOutcome, replay,
};

fn testdata(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/pcaps")
        .join(path)
}

fn tmp(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("replay_compressed")
        .join(name);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    p
}

fn run(path: &Path, out: &str) -> ReplayOutcome {
    let config = ReplayConfig {
        out_dir: Some(tmp(out)),
        verdicts: true,
        ..ReplayConfig::default()
    };
    replay(path, &config).expect("replays")
}

/// Replays `plain` and `other`; the outputs are byte-identical and the summaries equal apart
/// from the capture's name and format, which is `format`.
fn same_replay(plain: &Path, other: &Path, format: &str) {
    // Tests run in parallel: one pair of output folders per format.
    let (out_a, out_b) = (format!("{format}.plain"), format!("{format}.other"));
    let a = run(plain, &out_a);
    let b = run(other, &out_b);
    assert_eq!(b.summary.format, format);
    assert!(b.summary.replayed_packets > 0);
    let mut b_summary = b.summary.clone();
    b_summary.format = a.summary.format.clone();
    b_summary.capture = a.summary.capture.clone();
    assert_eq!(a.summary, b_summary);
    for f in ["inside.pcapng", "outside.pcapng", "verdicts.jsonl"] {
        let x = std::fs::read(tmp(&out_a).join(f)).expect("plain output");
        let y = std::fs::read(tmp(&out_b).join(f)).expect("other output");
        assert!(x == y, "{f} differs for {}", other.display());
    }
}

#[test]
fn gzip_capture_replays_like_its_plain_version() {
    same_replay(
        &testdata("tcpdump/dns_udp.pcap"),
        &testdata("compressed/dns_udp.pcap.gz"),
        "pcap+gzip",
    );
}

#[test]
fn zstd_nanosecond_capture_replays_like_its_plain_version() {
    same_replay(
        &testdata("tcpdump/tcp-handshake-nano.pcap"),
        &testdata("compressed/tcp-handshake-nano.pcap.zst"),
        "pcap_nsec+zstd",
    );
}

#[test]
fn zstd_multi_frame_capture_decompresses_fully() {
    // Two frames split in the middle of the first packet record, with a skippable frame
    // between them (testdata/pcaps/compressed/README.md): everything is read, nothing is cut.
    same_replay(
        &testdata("tcpdump/dns_udp.pcap"),
        &testdata("compressed/dns_udp.multiframe.pcap.zst"),
        "pcap+zstd",
    );
    let b = run(
        &testdata("compressed/dns_udp.multiframe.pcap.zst"),
        "pcap+zstd.again",
    );
    assert_eq!(b.summary.capture_error, None);
    assert_eq!(b.summary.packets_read, 2);
}

#[test]
fn compression_is_found_by_magic_not_by_name() {
    // A zstd pcapng file named like a plain pcap.
    let disguised = tmp("disguised.pcap");
    std::fs::copy(
        testdata("compressed/icmp-length-zero.pcapng.zst"),
        &disguised,
    )
    .expect("copy");
    let reader = CaptureReader::open(&disguised).expect("opens");
    assert_eq!(reader.format(), CaptureFormat::PcapNg);
    assert_eq!(reader.compression(), Some(Compression::Zstd));
    // And a plain file named .gz is read as plain.
    let plain = tmp("plain.pcap.gz");
    std::fs::copy(testdata("tcpdump/dns_udp.pcap"), &plain).expect("copy");
    let reader = CaptureReader::open(&plain).expect("opens");
    assert_eq!(
        (reader.format(), reader.compression()),
        (CaptureFormat::Pcap, None)
    );
}

/// libpcap's modified format (magic a1b2cd34): the same header, and 24-byte record headers
/// (8 more bytes: interface index, protocol, packet type, padding).
fn to_modified(pcap: &[u8]) -> Vec<u8> {
    assert_eq!(
        &pcap[..4],
        &[0xd4, 0xc3, 0xb2, 0xa1],
        "a little-endian microsecond pcap"
    );
    let mut out = vec![0x34, 0xcd, 0xb2, 0xa1];
    out.extend_from_slice(&pcap[4..24]);
    let mut at = 24;
    while at < pcap.len() {
        let incl = u32::from_le_bytes(pcap[at + 8..at + 12].try_into().expect("4 bytes")) as usize;
        out.extend_from_slice(&pcap[at..at + 16]);
        out.extend_from_slice(&[2, 0, 0, 0, 0x08, 0x00, 4, 0]);
        out.extend_from_slice(&pcap[at + 16..at + 16 + incl]);
        at += 16 + incl;
    }
    out
}

#[test]
fn modified_pcap_format_replays_like_its_plain_version() {
    let plain = testdata("tcpdump/dns_udp.pcap");
    let modified = tmp("dns_udp_modified.pcap");
    std::fs::write(
        &modified,
        to_modified(&std::fs::read(&plain).expect("read")),
    )
    .expect("write");
    same_replay(&plain, &modified, "pcap_modified");
    // Compressed too.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&std::fs::read(&modified).expect("read"))
        .expect("gzip");
    let both = tmp("dns_udp_modified.pcap.gz");
    std::fs::write(&both, gz.finish().expect("gzip")).expect("write");
    same_replay(&plain, &both, "pcap_modified+gzip");
}

#[test]
fn decompression_stops_at_the_limit_with_a_clear_error() {
    // A valid pcap header, then a megabyte of zeros: 65536 empty records once decompressed,
    // from about a kilobyte of gzip.
    let plain = std::fs::read(testdata("tcpdump/dns_udp.pcap")).expect("read");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&plain[..24]).expect("gzip");
    gz.write_all(&vec![0u8; 1 << 20]).expect("gzip");
    let bomb = gz.finish().expect("gzip");
    assert!(bomb.len() < 4096);
    let limit = 64 * 1024;
    let mut reader =
        CaptureReader::decompressing(&bomb[..], "bomb.pcap.gz", limit).expect("header reads");
    let err = loop {
        match reader.next_record() {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("read past the limit"),
            Err(e) => break e.to_string(),
        }
    };
    assert!(
        err.contains("bomb.pcap.gz") && err.contains("more than 65536 bytes, the limit"),
        "{err}"
    );
}

#[test]
fn known_foreign_formats_are_named() {
    let cases: [(&[u8], &str); 5] = [
        (
            b"snoop\0\0\0\0\0\0\x02\0\0\0\x04",
            "Solaris snoop: not supported",
        ),
        (
            b"GMBU\x00\x02\x00\x00",
            "Microsoft Network Monitor 2.x: not supported",
        ),
        (b"\xfd7zXZ\0\0\x04", "xz-compressed file"),
        (b"BZh91AY&SY", "bzip2-compressed file"),
        (b"PK\x03\x04\x14\0\0\0", "zip archive"),
    ];
    for (bytes, want) in cases {
        let err = CaptureReader::decompressing(bytes, "x.cap", 1 << 20)
            .expect_err("refused")
            .to_string();
        assert!(err.starts_with("x.cap: ") && err.contains(want), "{err}");
    }
    let err = CaptureReader::decompressing(&b"GIF89a and more"[..], "x.gif", 1 << 20)
        .expect_err("refused")
        .to_string();
    assert!(
        err.contains("not a pcap or pcapng file") && err.contains("gzip/zstd"),
        "{err}"
    );
    // A gzip stream holding something else names both.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(b"GIF89a and more").expect("gzip");
    let gz = gz.finish().expect("gzip");
    let err = CaptureReader::decompressing(&gz[..], "x.gz", 1 << 20)
        .expect_err("refused")
        .to_string();
    assert!(
        err.starts_with("x.gz (gzip decompressed): not a pcap"),
        "{err}"
    );
}
