//! Writers: round trips through the reader, determinism, pinned bytes, and error cases.

use natsim::replay::{
    CaptureDirection, CaptureFormat, CaptureReader, CaptureWriteError, IpVersion, OwnedPacket,
    PcapCaptureWriter, PcapNgCaptureWriter, WRITER_SNAPLEN, linktype,
};
use proptest::prelude::*;

/// An IP packet whose length fields match its size (the reader trims to them).
fn ip_packet(version: IpVersion, payload: &[u8]) -> Vec<u8> {
    match version {
        IpVersion::V4 => {
            let total = u16::try_from(20 + payload.len()).expect("small packet");
            let mut p = vec![
                0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
            ];
            p[2..4].copy_from_slice(&total.to_be_bytes());
            p.extend_from_slice(payload);
            p
        }
        IpVersion::V6 => {
            let plen = u16::try_from(payload.len()).expect("small packet");
            let mut p = vec![0u8; 40];
            p[0] = 0x60;
            p[4..6].copy_from_slice(&plen.to_be_bytes());
            p[6] = 17;
            p[7] = 64;
            p.extend_from_slice(payload);
            p
        }
    }
}

/// One packet to write: interface, timestamp, direction, bytes.
type Out = (u32, u64, Option<CaptureDirection>, Vec<u8>);

fn write_pcapng(names: &[&str], packets: &[Out]) -> Vec<u8> {
    let mut w = PcapNgCaptureWriter::new(Vec::new()).unwrap();
    for (i, name) in names.iter().enumerate() {
        assert_eq!(w.add_interface(name).unwrap(), i as u32);
    }
    for (interface, ts, dir, ip) in packets {
        w.write_packet(*interface, *ts, *dir, ip).unwrap();
    }
    w.finish().unwrap()
}

fn write_pcap(packets: &[Out]) -> Vec<u8> {
    let mut w = PcapCaptureWriter::new(Vec::new()).unwrap();
    for (_, ts, _, ip) in packets {
        w.write_packet(*ts, ip).unwrap();
    }
    w.finish().unwrap()
}

fn read_back(bytes: &[u8]) -> Vec<OwnedPacket> {
    let mut reader = CaptureReader::new(bytes, "<memory>").unwrap();
    let mut out = Vec::new();
    while let Some(p) = reader.next_packet().unwrap() {
        out.push(p.to_owned_packet());
    }
    let summary = reader.summary();
    assert_eq!(summary.skipped_packets, 0, "{summary:?}");
    assert!(
        summary
            .anomalies
            .keys()
            .all(|k| k == "timestamp_out_of_order"),
        "{summary:?}"
    );
    out
}

fn sample() -> Vec<Out> {
    vec![
        (
            0,
            1_700_000_000_123_456_789,
            Some(CaptureDirection::Outbound),
            ip_packet(IpVersion::V4, b"hello"),
        ),
        (
            1,
            1_700_000_000_223_456_789,
            Some(CaptureDirection::Inbound),
            ip_packet(IpVersion::V6, b"world!"),
        ),
        (
            0,
            1_700_000_001_000_000_001,
            None,
            ip_packet(IpVersion::V4, &[]),
        ),
        (1, 0, None, ip_packet(IpVersion::V6, &[0xab; 1500])),
    ]
}

#[test]
fn pcapng_round_trip() {
    let packets = sample();
    let bytes = write_pcapng(&["inside", "outside"], &packets);
    let mut reader = CaptureReader::new(&bytes[..], "<memory>").unwrap();
    assert_eq!(reader.format(), CaptureFormat::PcapNg);
    while reader.next_packet().unwrap().is_some() {}
    let summary = reader.summary();
    assert_eq!(summary.interfaces[&0].name.as_deref(), Some("inside"));
    assert_eq!(summary.interfaces[&1].name.as_deref(), Some("outside"));
    assert_eq!(summary.link_types["raw"], 4);
    let back = read_back(&bytes);
    assert_eq!(back.len(), packets.len());
    for (i, (p, (interface, ts, dir, ip))) in back.iter().zip(&packets).enumerate() {
        assert_eq!(p.index, i as u64);
        assert_eq!(p.interface, *interface);
        assert_eq!(p.timestamp_ns, *ts);
        assert_eq!(p.direction, *dir);
        assert_eq!(&p.ip, ip);
        assert_eq!(p.link_type, linktype::RAW);
        assert!(!p.truncated);
    }
}

#[test]
fn pcap_round_trip() {
    let mut packets = sample();
    packets.push((
        0,
        u64::from(u32::MAX) * 1_000_000_000 + 999_999_999,
        None,
        ip_packet(IpVersion::V4, b"2106"),
    ));
    let bytes = write_pcap(&packets);
    assert_eq!(
        CaptureReader::new(&bytes[..], "m").unwrap().format(),
        CaptureFormat::PcapNsec
    );
    let back = read_back(&bytes);
    assert_eq!(back.len(), packets.len());
    for (p, (_, ts, _, ip)) in back.iter().zip(&packets) {
        assert_eq!((p.interface, p.timestamp_ns, p.direction), (0, *ts, None));
        assert_eq!(&p.ip, ip);
    }
}

#[test]
fn writing_twice_gives_identical_bytes() {
    let packets = sample();
    assert_eq!(
        write_pcapng(&["a", "b"], &packets),
        write_pcapng(&["a", "b"], &packets)
    );
    assert_eq!(write_pcap(&packets), write_pcap(&packets));
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .chunks(16)
        .map(|line| {
            line.iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Pins the exact encoding, so a pcap-file upgrade or a refactor that changes output bytes
/// (byte order, options, padding) shows up in review.
#[test]
fn encoding_is_pinned() {
    let packets = vec![(
        0,
        1_000_000_000_000_000_123,
        Some(CaptureDirection::Inbound),
        vec![0x45, 0, 0, 20],
    )];
    let ng = write_pcapng(&["eth0"], &packets);
    let pcap = write_pcap(&packets);
    insta::assert_snapshot!("pcapng_bytes", hex(&ng));
    insta::assert_snapshot!("pcap_bytes", hex(&pcap));
    assert!(ng.windows(6).any(|w| w == b"natsim"));
}

#[test]
fn writer_errors() {
    let mut ng = PcapNgCaptureWriter::new(Vec::new()).unwrap();
    assert!(matches!(
        ng.write_packet(0, 0, None, &[0x45]),
        Err(CaptureWriteError::UnknownInterface {
            interface: 0,
            count: 0
        })
    ));
    ng.add_interface("x").unwrap();
    let big = vec![0x45; WRITER_SNAPLEN as usize + 1];
    assert!(matches!(
        ng.write_packet(0, 0, None, &big),
        Err(CaptureWriteError::PacketTooLarge { .. })
    ));
    assert!(
        ng.write_packet(0, u64::MAX, None, &big[..WRITER_SNAPLEN as usize])
            .is_ok()
    );
    assert!(matches!(
        ng.add_interface(&"n".repeat(70_000)),
        Err(CaptureWriteError::NameTooLong { .. })
    ));

    let mut pcap = PcapCaptureWriter::new(Vec::new()).unwrap();
    let after_2106 = (u64::from(u32::MAX) + 1) * 1_000_000_000;
    assert!(matches!(
        pcap.write_packet(after_2106, &[0x45]),
        Err(CaptureWriteError::TimestampOutOfRange { .. })
    ));
    assert!(matches!(
        pcap.write_packet(0, &big),
        Err(CaptureWriteError::PacketTooLarge { .. })
    ));
}

fn arb_packet() -> impl Strategy<Value = (bool, Vec<u8>)> {
    (
        any::<bool>(),
        proptest::collection::vec(any::<u8>(), 0..600),
    )
}

fn arb_direction() -> impl Strategy<Value = Option<CaptureDirection>> {
    prop_oneof![
        Just(None),
        Just(Some(CaptureDirection::Inbound)),
        Just(Some(CaptureDirection::Outbound))
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn random_packets_round_trip(
        interfaces in 1u32..4,
        raw in proptest::collection::vec((any::<u32>(), any::<u64>(), arb_direction(), arb_packet()), 0..40),
    ) {
        let packets: Vec<Out> = raw
            .into_iter()
            .map(|(i, ts, dir, (v6, payload))| {
                let version = if v6 { IpVersion::V6 } else { IpVersion::V4 };
                (i % interfaces, ts, dir, ip_packet(version, &payload))
            })
            .collect();
        let names: Vec<String> = (0..interfaces).map(|i| format!("link{i}")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();

        let back = read_back(&write_pcapng(&names, &packets));
        prop_assert_eq!(back.len(), packets.len());
        for (p, (interface, ts, dir, ip)) in back.iter().zip(&packets) {
            prop_assert_eq!(p.interface, *interface);
            prop_assert_eq!(p.timestamp_ns, *ts);
            prop_assert_eq!(p.direction, *dir);
            prop_assert_eq!(&p.ip, ip);
        }

        // Classic pcap: no interfaces or directions, 32-bit seconds.
        let pcap_packets: Vec<Out> = packets
            .iter()
            .map(|(_, ts, _, ip)| (0, ts % (u64::from(u32::MAX) * 1_000_000_000), None, ip.clone()))
            .collect();
        let back = read_back(&write_pcap(&pcap_packets));
        prop_assert_eq!(back.len(), pcap_packets.len());
        for (p, (_, ts, _, ip)) in back.iter().zip(&pcap_packets) {
            prop_assert_eq!(p.timestamp_ns, *ts);
            prop_assert_eq!(&p.ip, ip);
        }
    }
}
