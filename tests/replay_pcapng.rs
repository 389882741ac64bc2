//! pcapng features the corpus lacks, on hand-built files: both byte orders, several sections,
//! `if_tsresol` (decimal and binary), `if_tsoffset`, `if_tzone` (which pcap-file 2.0.0
//! rejects), `epb_flags`, obsolete and simple packet blocks, unknown interfaces, malformed
//! packet blocks and non-packet blocks.

use natsim::replay::{
    CaptureDirection, CaptureReader, CaptureRecord, OwnedPacket, SkipReason, SkippedPacket,
};

/// Builds pcapng blocks in one byte order.
struct Ng {
    big: bool,
    out: Vec<u8>,
}

impl Ng {
    fn u16(&self, v: u16) -> [u8; 2] {
        if self.big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }
    fn u32(&self, v: u32) -> [u8; 4] {
        if self.big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }
    fn block(&mut self, block_type: u32, body: &[u8]) {
        let mut body = body.to_vec();
        while !body.len().is_multiple_of(4) {
            body.push(0);
        }
        let total = u32::try_from(body.len() + 12).unwrap();
        let (t, l) = (self.u32(block_type), self.u32(total));
        self.out.extend_from_slice(&t);
        self.out.extend_from_slice(&l);
        self.out.extend_from_slice(&body);
        self.out.extend_from_slice(&l);
    }
    fn option(&self, code: u16, value: &[u8]) -> Vec<u8> {
        let mut o = self.u16(code).to_vec();
        o.extend_from_slice(&self.u16(u16::try_from(value.len()).unwrap()));
        o.extend_from_slice(value);
        while !o.len().is_multiple_of(4) {
            o.push(0);
        }
        o
    }
    fn section(&mut self) {
        let mut body = self.u32(0x1a2b_3c4d).to_vec();
        body.extend_from_slice(&self.u16(1));
        body.extend_from_slice(&self.u16(0));
        body.extend_from_slice(&[0xff; 8]);
        self.block(0x0a0d_0d0a, &body);
    }
    fn interface(&mut self, link_type: u16, options: &[Vec<u8>]) {
        let mut body = self.u16(link_type).to_vec();
        body.extend_from_slice(&[0, 0]);
        body.extend_from_slice(&self.u32(0));
        for o in options {
            body.extend_from_slice(o);
        }
        if !options.is_empty() {
            body.extend_from_slice(&[0, 0, 0, 0]);
        }
        self.block(1, &body);
    }
    fn epb(&mut self, interface: u32, units: u64, data: &[u8], flags: Option<u32>) {
        let mut body = self.u32(interface).to_vec();
        body.extend_from_slice(&self.u32((units >> 32) as u32));
        body.extend_from_slice(&self.u32(units as u32));
        body.extend_from_slice(&self.u32(u32::try_from(data.len()).unwrap()));
        body.extend_from_slice(&self.u32(u32::try_from(data.len()).unwrap()));
        body.extend_from_slice(data);
        while !body.len().is_multiple_of(4) {
            body.push(0);
        }
        if let Some(f) = flags {
            let o = self.option(2, &self.u32(f));
            body.extend_from_slice(&o);
            body.extend_from_slice(&[0, 0, 0, 0]);
        }
        self.block(6, &body);
    }
}

fn ipv4() -> Vec<u8> {
    let mut p = vec![0x45, 0, 0, 20];
    p.resize(20, 0);
    p
}

fn read(
    bytes: &[u8],
) -> (
    Vec<Result<OwnedPacket, SkippedPacket>>,
    natsim::replay::CaptureSummary,
) {
    let mut reader = CaptureReader::new(bytes, "<built>").unwrap();
    let mut out = Vec::new();
    while let Some(r) = reader.next_record().unwrap() {
        out.push(match r {
            CaptureRecord::Packet(p) => Ok(p.to_owned_packet()),
            CaptureRecord::Skipped(s) => Err(s),
        });
    }
    (out, reader.summary())
}

fn two_sections(big_first: bool) -> Vec<u8> {
    let mut ng = Ng {
        big: big_first,
        out: Vec::new(),
    };
    ng.section();
    let tzone = ng.option(10, &ng.u32(0));
    let name = ng.option(2, b"wan0");
    let offset_s = if big_first {
        (-10i64).to_be_bytes()
    } else {
        (-10i64).to_le_bytes()
    };
    let offset = ng.option(14, &offset_s);
    // raw IP, 2^-10 s units, if_tsoffset -10 s, plus an if_tzone option.
    ng.interface(101, &[name, ng.option(9, &[0x8a]), offset, tzone]);
    ng.epb(0, 1024 * 100, &ipv4(), Some(1)); // 100 s - 10 s
    ng.block(5, &[0; 12]); // interface statistics: not a packet
    ng.epb(7, 0, &ipv4(), None); // no interface 7
    let mut bad = ng.u32(0).to_vec();
    bad.extend_from_slice(&[0; 8]);
    bad.extend_from_slice(&ng.u32(1000)); // caplen past the block
    bad.extend_from_slice(&ng.u32(1000));
    ng.block(6, &bad);
    // Simple packet block: no timestamp.
    let mut spb = ng.u32(20).to_vec();
    spb.extend_from_slice(&ipv4());
    ng.block(3, &spb);

    // Second section in the other byte order; interface ids restart at 0 locally.
    let mut second = Ng {
        big: !big_first,
        out: Vec::new(),
    };
    second.section();
    second.interface(1, &[second.option(9, &[9])]); // Ethernet, ns
    let mut frame = vec![0u8; 12];
    frame.extend_from_slice(&[0x86, 0xdd]);
    let mut v6 = vec![0x60, 0, 0, 0, 0, 0, 59, 64];
    v6.resize(40, 0);
    frame.extend_from_slice(&v6);
    second.epb(0, 1_234_567_890_123_456_789, &frame, Some(2));
    let mut out = ng.out;
    out.extend_from_slice(&second.out);
    out
}

#[test]
fn sections_resolutions_offsets_flags_and_skips() {
    for big_first in [false, true] {
        let (recs, summary) = read(&two_sections(big_first));
        assert_eq!(recs.len(), 5, "big_first={big_first}");

        let p = recs[0].as_ref().unwrap();
        assert_eq!((p.index, p.interface, p.link_type), (0, 0, 101));
        assert_eq!(p.timestamp_ns, 90_000_000_000);
        assert_eq!(p.direction, Some(CaptureDirection::Inbound));

        assert_eq!(
            recs[1].as_ref().unwrap_err().reason,
            SkipReason::UnknownInterface(7)
        );
        assert_eq!(
            recs[2].as_ref().unwrap_err().reason,
            SkipReason::MalformedRecord
        );
        let spb = recs[3].as_ref().unwrap_err();
        assert_eq!(
            (spb.reason, spb.interface),
            (SkipReason::NoTimestamp, Some(0))
        );

        let p = recs[4].as_ref().unwrap();
        assert_eq!((p.index, p.interface, p.link_type), (4, 1, 1));
        assert_eq!(p.timestamp_ns, 1_234_567_890_123_456_789);
        assert_eq!(p.direction, Some(CaptureDirection::Outbound));
        assert_eq!(p.ip.len(), 40);

        assert_eq!(summary.interfaces[&0].name.as_deref(), Some("wan0"));
        assert_eq!(summary.interfaces[&1].link_name, "ethernet");
        assert_eq!(summary.non_packet_blocks, 1);
        assert_eq!(summary.skipped_packets, 3);
        assert_eq!(summary.error, None);
    }
}

#[test]
fn pcap_file_rejects_what_we_accept() {
    // pcap-file's own pcapng parser fails on the valid if_tzone option; documents why the
    // reader decodes pcapng blocks itself.
    let bytes = two_sections(false);
    let mut reader = pcap_file::pcapng::PcapNgReader::new(&bytes[..]).unwrap();
    let idb = reader.next_block().expect("a block");
    let err = idb.expect_err("pcap-file 2.0.0 rejects a valid if_tzone");
    assert!(err.to_string().contains("IfTzone"), "{err}");
}

#[test]
fn bad_block_lengths_are_errors_with_offsets() {
    let mut ng = Ng {
        big: false,
        out: Vec::new(),
    };
    ng.section();
    let section_len = ng.out.len() as u64;
    ng.epb(0, 0, &ipv4(), None);
    let mut bytes = ng.out.clone();
    // Trailing length differs from the leading one.
    let last = bytes.len() - 4;
    bytes[last] ^= 0x10;
    let mut reader = CaptureReader::new(&bytes[..], "t.pcapng").unwrap();
    let err = reader.next_record().unwrap_err();
    assert_eq!(err.offset, Some(section_len));
    assert!(err.to_string().contains("trailing length"), "{err}");

    // Length not a multiple of 4.
    let mut bytes = ng.out.clone();
    let at = usize::try_from(section_len).unwrap() + 4;
    bytes[at] = 0x21;
    let err = CaptureReader::new(&bytes[..], "t.pcapng")
        .unwrap()
        .next_record()
        .unwrap_err();
    assert!(err.to_string().contains("multiple of 4"), "{err}");
}
