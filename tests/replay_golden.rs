//! Golden checks of individual corpus files against values read off tshark by hand, and the
//! error paths of the reader.

use std::path::{Path, PathBuf};

use natsim::replay::{
    CaptureDirection, CaptureErrorKind, CaptureFormat, CaptureReader, CaptureRecord, IpVersion,
    LinkProtocol, OwnedPacket, SkipReason, SkippedPacket, linktype, read_packets,
};

fn corpus(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/pcaps/tcpdump")
        .join(name)
}

/// Every record of a file, IP packets owned.
fn records(name: &str) -> Vec<Result<OwnedPacket, SkippedPacket>> {
    let mut reader = CaptureReader::open(corpus(name)).expect("opens");
    let mut out = Vec::new();
    while let Some(r) = reader.next_record().expect("reads to the end") {
        out.push(match r {
            CaptureRecord::Packet(p) => Ok(p.to_owned_packet()),
            CaptureRecord::Skipped(s) => Err(s),
        });
    }
    out
}

#[test]
fn linktype_ipv4_yields_one_ipv4_packet() {
    let (packets, summary) = read_packets(corpus("LINKTYPE_IPV4.pcap")).unwrap();
    assert_eq!(packets.len(), 1);
    let p = &packets[0];
    assert_eq!((p.index, p.interface, p.link_type), (0, 0, linktype::IPV4));
    assert_eq!(p.version, IpVersion::V4);
    assert_eq!(p.ip.len(), 57);
    assert_eq!(p.ip[0] >> 4, 4);
    // tshark: 1751997572.592885000
    assert_eq!(p.timestamp_ns, 1_751_997_572_592_885_000);
    assert!(!p.truncated);
    assert_eq!(summary.skipped_packets, 0);
}

#[test]
fn raw_linktypes_pick_the_version_from_the_packet() {
    let (v4, _) = read_packets(corpus("LINKTYPE_RAW_ipv4.pcap")).unwrap();
    let (v6, _) = read_packets(corpus("LINKTYPE_RAW_ipv6.pcap")).unwrap();
    assert_eq!(v4[0].version, IpVersion::V4);
    assert_eq!(v6[0].version, IpVersion::V6);
    assert_eq!(v6[0].link_type, linktype::RAW);
}

#[test]
fn qinq_tags_are_stripped_down_to_arp() {
    let recs = records("802.1ad_QinQ.pcap");
    assert_eq!(recs.len(), 2);
    for (i, r) in recs.iter().enumerate() {
        let s = r.as_ref().expect_err("ARP is skipped");
        assert_eq!(s.index, i as u64);
        // Both the 802.1ad (0x88a8) and the 802.1Q (0x8100) tag were walked: the reason
        // names the inner EtherType.
        assert_eq!(s.reason, SkipReason::NotIp(LinkProtocol::EtherType(0x0806)));
        assert_eq!(s.reason.code(), "skip.not_ip");
        assert_eq!(s.reason.to_string(), "skip.not_ip.ethertype_0x0806");
        assert!(s.timestamp_ns.is_some());
    }
}

#[test]
fn nanosecond_pcap_keeps_nanoseconds_and_sll_direction() {
    let reader = CaptureReader::open(corpus("tcp-handshake-nano.pcap")).unwrap();
    assert_eq!(reader.format(), CaptureFormat::PcapNsec);
    let (packets, summary) = read_packets(corpus("tcp-handshake-nano.pcap")).unwrap();
    let ts: Vec<u64> = packets.iter().map(|p| p.timestamp_ns).collect();
    // tshark frame.time_epoch
    assert_eq!(
        ts,
        [
            1_418_145_369_924_505_488,
            1_418_145_370_052_027_262,
            1_418_145_370_052_115_157
        ]
    );
    let dirs: Vec<_> = packets.iter().map(|p| p.direction).collect();
    assert_eq!(
        dirs,
        [
            Some(CaptureDirection::Outbound),
            Some(CaptureDirection::Inbound),
            Some(CaptureDirection::Outbound)
        ]
    );
    // SLL header is 16 bytes: 76 captured → 60 bytes of IP.
    assert_eq!(packets[0].ip.len(), 60);
    assert_eq!(summary.first_timestamp_ns, Some(ts[0]));
    assert_eq!(summary.last_timestamp_ns, Some(ts[2]));
}

#[test]
fn unsupported_link_type_is_skipped_with_reason() {
    let recs = records("unsupported-link-type-160.pcap");
    assert_eq!(recs.len(), 1);
    let s = recs[0].as_ref().expect_err("skipped");
    assert_eq!(s.reason, SkipReason::UnsupportedLinkType(160));
    assert_eq!(s.link_type, Some(160));
    let (packets, summary) = read_packets(corpus("unsupported-link-type-160.pcap")).unwrap();
    assert!(packets.is_empty());
    assert_eq!(summary.skipped["skip.unsupported_link_type"], 1);
}

#[test]
fn empty_files_have_no_packets_and_no_error() {
    for name in ["empty.pcap", "empty.pcapng"] {
        let (packets, summary) = read_packets(corpus(name)).unwrap();
        assert!(packets.is_empty(), "{name}");
        assert_eq!(summary.packets, 0, "{name}");
        assert_eq!(summary.error, None, "{name}");
    }
}

#[test]
fn malformed_corpus_files_read_to_the_end() {
    let names = [
        "LINKTYPE_IPV4_invalid.pcap",
        "LINKTYPE_IPV6_invalid.pcap",
        "heapoverflow-tcp_print.pcap",
        "ipv6hdr-heapoverflow.pcap",
        "tcp_header_heapoverflow.pcap",
        "udp-length-heapoverflow.pcap",
        "ipv4_invalid_hdr_length.pcap",
        "ipv4_invalid_length.pcap",
        "ipv6_invalid_length.pcap",
        "timestamp_invalid_micro.pcap",
        "timestamp_invalid_nano.pcap",
    ];
    for name in names {
        let (_, summary) = read_packets(corpus(name)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            summary.packets,
            summary.ip_packets + summary.skipped_packets,
            "{name}"
        );
    }
    // The raw-IPv4 link type carrying an IPv6 packet is not silently re-typed.
    let recs = records("LINKTYPE_IPV4_invalid.pcap");
    assert_eq!(
        recs[0].as_ref().unwrap_err().reason,
        SkipReason::BadIpVersion {
            expected: Some(IpVersion::V4),
            found: 6
        }
    );
}

#[test]
fn snap_truncated_packets_are_flagged() {
    let (packets, summary) = read_packets(corpus("quic_handshake_truncated.pcap")).unwrap();
    let truncated: Vec<u64> = packets
        .iter()
        .filter(|p| p.truncated)
        .map(|p| p.index)
        .collect();
    assert_eq!(truncated.len(), 4);
    assert_eq!(summary.truncated_packets, 4);
    for p in packets.iter().filter(|p| p.truncated) {
        // 4 bytes of BSD null header precede the IP packet.
        assert!(p.ip.len() + 4 < p.original_len as usize);
    }
}

#[test]
fn invalid_fractions_are_carried_into_seconds() {
    let (packets, summary) = read_packets(corpus("timestamp_invalid_micro.pcap")).unwrap();
    // Fraction field 1_000_000 µs: one whole second.
    assert_eq!(packets[1].timestamp_ns, 1_418_145_371_000_000_000);
    assert_eq!(summary.anomalies["timestamp_fraction_out_of_range"], 2);
}

#[test]
fn pcapng_microsecond_timestamps_beyond_2106() {
    // EPB high word 1_000_000, default if_tsresol (µs): tshark 4294967296.000000000. pcap-file
    // would report the raw unit count as nanoseconds (1000× too small).
    let (packets, _) = read_packets(corpus("time_2106_overflow.pcapng")).unwrap();
    assert_eq!(packets[0].timestamp_ns, 4_294_967_296_000_000_000);
    let (packets, _) = read_packets(corpus("time_2038.pcap")).unwrap();
    assert_eq!(packets[0].timestamp_ns, 2_145_916_800_000_000_000);
}

#[test]
fn nflog_ipnet_ppp_null_decode() {
    let (nflog, _) = read_packets(corpus("nflog.pcap")).unwrap();
    assert_eq!(nflog.len(), 4);
    assert!(
        nflog
            .iter()
            .all(|p| p.direction == Some(CaptureDirection::Inbound))
    );
    let (ipnet, _) = read_packets(corpus("e1000g.pcap")).unwrap();
    assert_eq!(ipnet.len(), 20);
    let (ppp, _) = read_packets(corpus("mpls-traceroute.pcap")).unwrap();
    assert_eq!(ppp.len(), 18);
    let (null, _) = read_packets(corpus("quic_handshake.pcap")).unwrap();
    assert!(null.iter().all(|p| p.version == IpVersion::V6));
}

#[test]
fn ethernet_padding_is_trimmed() {
    let (packets, summary) = read_packets(corpus("dns_tcp.pcap")).unwrap();
    for p in &packets {
        let total = usize::from(u16::from_be_bytes([p.ip[2], p.ip[3]]));
        assert_eq!(p.ip.len(), total);
    }
    assert_eq!(summary.anomalies["ip_trailer_trimmed"], 4);
}

#[test]
fn zero_byte_file_is_an_error_naming_the_file() {
    let err = CaptureReader::new(&[][..], "nothing.pcap").unwrap_err();
    assert!(matches!(err.kind, CaptureErrorKind::EmptyFile));
    assert_eq!(
        err.to_string(),
        "nothing.pcap: empty file: no capture header (byte offset 0)"
    );
}

#[test]
fn unknown_magic_is_an_error() {
    let err = CaptureReader::new(&b"GIF89a and more bytes here"[..], "x.gif").unwrap_err();
    assert!(matches!(
        err.kind,
        CaptureErrorKind::UnknownMagic(0x4749_4638)
    ));
    let err = CaptureReader::open(corpus("no-such-file.pcap")).unwrap_err();
    assert!(matches!(err.kind, CaptureErrorKind::Io(_)));
    assert!(err.to_string().contains("no-such-file.pcap"));
}

#[test]
fn truncated_file_yields_earlier_packets_then_names_index_and_offset() {
    let bytes = std::fs::read(corpus("ssh.pcap")).unwrap();
    // Cut in the middle of the third record's data.
    let (all, _) = read_packets(corpus("ssh.pcap")).unwrap();
    let cut = 24 + 2 * 16 + (all[0].original_len + all[1].original_len) as usize + 16 + 10;
    let mut reader = CaptureReader::new(&bytes[..cut], "ssh-cut.pcap").unwrap();
    assert_eq!(reader.next_packet().unwrap().map(|p| p.index), Some(0));
    assert_eq!(reader.next_packet().unwrap().map(|p| p.index), Some(1));
    let err = reader.next_packet().unwrap_err();
    assert_eq!(err.packet_index, Some(2));
    let offset = (cut - 10 - 16) as u64;
    assert_eq!(err.offset, Some(offset));
    assert_eq!(
        err.to_string(),
        format!(
            "ssh-cut.pcap: file truncated: pcap record needs {} bytes, only 26 left \
             (packet index 2, byte offset {offset})",
            16 + all[2].original_len
        )
    );
    // Fused: the error is reported once, then the reader ends; the summary keeps it.
    assert!(reader.next_packet().unwrap().is_none());
    let summary = reader.summary();
    assert_eq!(summary.ip_packets, 2);
    assert!(summary.error.unwrap().contains("packet index 2"));
}

#[test]
fn bogus_record_length_is_an_error_not_an_allocation() {
    let mut bytes = std::fs::read(corpus("LINKTYPE_IPV4.pcap")).unwrap();
    // incl_len of the first record (little-endian file) to 0xffff_fff0.
    bytes[32..36].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
    let mut reader = CaptureReader::new(&bytes[..], "bogus.pcap").unwrap();
    let err = reader.next_packet().unwrap_err();
    assert!(
        matches!(err.kind, CaptureErrorKind::TooLarge { .. }),
        "{err}"
    );
    assert_eq!((err.packet_index, err.offset), (Some(0), Some(24)));
}
