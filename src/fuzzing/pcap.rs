//! The `pcap_read` harness.

use std::io::{self, Cursor, Read};

use crate::replay::{CaptureReader, CaptureRecord, CaptureSummary, IpVersion, OwnedPacket};
use crate::wire::PacketRepr;

/// What one pass over a capture produced, comparable between passes.
#[derive(Debug, PartialEq, Eq)]
struct Pass {
    header_error: Option<String>,
    records: Vec<Record>,
    error: Option<String>,
    summary: Option<CaptureSummary>,
}

#[derive(Debug, PartialEq, Eq)]
enum Record {
    Packet(OwnedPacket),
    Skipped(u64, String),
}

/// A reader that hands out at most a few bytes per call (1 to 7, cycling), so that every record
/// and block boundary falls inside a refill somewhere.
struct Trickle<'a> {
    data: &'a [u8],
    step: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        self.step = self.step % 7 + 1;
        let n = self.step.min(out.len()).min(self.data.len());
        out[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// Target `pcap_read`: the input as a pcap or pcapng file, read to the end by
/// [`CaptureReader`].
///
/// Oracle: no panic; the summary's counts agree with the records yielded (packets = IP +
/// skipped, IPv4 + IPv6 = IP, per-reason, per-interface, per-direction and per-link-type sums);
/// every yielded packet starts with the version nibble it claims and parses (or not) without
/// panicking; an error is reported once and recorded in the summary; and reading the same bytes
/// through a reader that returns 1–7 bytes per call gives exactly the same records, error and
/// summary.
pub fn pcap_read(data: &[u8]) {
    let whole = read_all(Cursor::new(data));
    let trickled = read_all(Trickle { data, step: 0 });
    assert_eq!(
        whole, trickled,
        "pcap: chunked reads differ from whole reads"
    );
}

fn read_all<R: Read>(input: R) -> Pass {
    let mut reader = match CaptureReader::new(input, "fuzz") {
        Ok(r) => r,
        Err(e) => {
            return Pass {
                header_error: Some(e.to_string()),
                records: Vec::new(),
                error: None,
                summary: None,
            };
        }
    };
    let mut records = Vec::new();
    let mut error = None;
    loop {
        match reader.next_record() {
            Ok(Some(CaptureRecord::Packet(p))) => {
                let first = p.ip.first().map(|b| b >> 4);
                let want = match p.version {
                    IpVersion::V4 => 4,
                    IpVersion::V6 => 6,
                };
                assert_eq!(first, Some(want), "pcap: packet version mismatch: {p:?}");
                // The replay path hands these bytes to the gateway; the parsers must cope.
                let _ = PacketRepr::parse(p.ip);
                records.push(Record::Packet(p.to_owned_packet()));
            }
            Ok(Some(CaptureRecord::Skipped(s))) => {
                records.push(Record::Skipped(s.index, s.reason.to_string()))
            }
            Ok(None) => break,
            Err(e) => {
                error = Some(e.to_string());
                break;
            }
        }
    }
    // After the end or an error, the reader stays at the end.
    assert!(
        matches!(reader.next_record(), Ok(None)),
        "pcap: reader yields after its end"
    );
    let summary = reader.summary();
    check_summary(&summary, &records, error.as_deref());
    Pass {
        header_error: None,
        records,
        error,
        summary: Some(summary),
    }
}

fn check_summary(s: &CaptureSummary, records: &[Record], error: Option<&str>) {
    let yielded = records
        .iter()
        .filter(|r| matches!(r, Record::Packet(_)))
        .count() as u64;
    let skipped = records.len() as u64 - yielded;
    let ctx = || format!("{s:#?}");
    assert_eq!(s.ip_packets, yielded, "pcap: ip_packets: {}", ctx());
    assert_eq!(
        s.skipped_packets,
        skipped,
        "pcap: skipped_packets: {}",
        ctx()
    );
    assert_eq!(
        s.packets,
        s.ip_packets + s.skipped_packets,
        "pcap: packets != ip + skipped: {}",
        ctx()
    );
    assert_eq!(
        s.ipv4_packets + s.ipv6_packets,
        s.ip_packets,
        "pcap: v4 + v6: {}",
        ctx()
    );
    assert_eq!(
        s.skipped.values().sum::<u64>(),
        s.skipped_packets,
        "pcap: skip reasons: {}",
        ctx()
    );
    assert_eq!(
        s.skipped_detail.values().sum::<u64>(),
        s.skipped_packets,
        "pcap: skip details: {}",
        ctx()
    );
    assert_eq!(
        s.directions.values().sum::<u64>(),
        s.ip_packets,
        "pcap: directions: {}",
        ctx()
    );
    assert!(
        s.truncated_packets <= s.ip_packets,
        "pcap: truncated: {}",
        ctx()
    );
    let per_if: u64 = s.interfaces.values().map(|i| i.packets).sum();
    let per_if_ip: u64 = s.interfaces.values().map(|i| i.ip_packets).sum();
    assert!(per_if <= s.packets, "pcap: interface packets: {}", ctx());
    assert_eq!(per_if_ip, s.ip_packets, "pcap: interface ip: {}", ctx());
    assert_eq!(
        s.link_types.values().sum::<u64>(),
        per_if,
        "pcap: link types: {}",
        ctx()
    );
    for i in s.interfaces.values() {
        assert!(i.ip_packets <= i.packets, "pcap: interface: {}", ctx());
    }
    assert_eq!(
        s.error.as_deref(),
        error,
        "pcap: summary error differs from the error returned"
    );
    let mut last = None;
    for r in records {
        let index = match r {
            Record::Packet(p) => p.index,
            Record::Skipped(i, _) => *i,
        };
        assert!(
            last.is_none_or(|l| index > l),
            "pcap: record indexes not increasing"
        );
        last = Some(index);
    }
}
