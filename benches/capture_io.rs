//! Capture I/O throughput: read + strip Ethernet, and pcapng writing, per packet.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use natsim::replay::{CaptureReader, PcapCaptureWriter, PcapNgCaptureWriter};

const PACKETS: u64 = 100_000;

/// A 100-byte IPv4/UDP packet.
fn ip_packet(i: u64) -> Vec<u8> {
    let mut p = vec![0u8; 100];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&100u16.to_be_bytes());
    p[9] = 17;
    p[12..20].copy_from_slice(&i.to_be_bytes());
    p
}

/// An in-memory Ethernet pcap (microsecond) of `PACKETS` frames.
fn ethernet_pcap() -> Vec<u8> {
    let mut out = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    out.extend_from_slice(&65_535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    for i in 0..PACKETS {
        let mut frame = vec![0u8; 12];
        frame.extend_from_slice(&[0x08, 0x00]);
        frame.extend_from_slice(&ip_packet(i));
        let len = u32::try_from(frame.len()).expect("small frame");
        out.extend_from_slice(
            &(1_700_000_000 + u32::try_from(i / 1000).expect("small")).to_le_bytes(),
        );
        out.extend_from_slice(&u32::try_from(i % 1_000_000).expect("small").to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&frame);
    }
    out
}

fn bench(c: &mut Criterion) {
    let pcap = ethernet_pcap();
    let mut group = c.benchmark_group("capture_io");
    group.throughput(Throughput::Elements(PACKETS));
    group.bench_function("read_strip_ethernet", |b| {
        b.iter(|| {
            let mut reader = CaptureReader::new(&pcap[..], "bench").expect("valid pcap");
            let mut bytes = 0usize;
            while let Some(p) = reader.next_packet().expect("valid pcap") {
                bytes += p.ip.len();
            }
            black_box(bytes)
        });
    });
    let packets: Vec<Vec<u8>> = (0..PACKETS).map(ip_packet).collect();
    group.bench_function("write_pcapng", |b| {
        b.iter(|| {
            let mut w = PcapNgCaptureWriter::new(Vec::with_capacity(16 << 20)).expect("vec");
            let iface = w.add_interface("eth0").expect("vec");
            for (i, p) in packets.iter().enumerate() {
                w.write_packet(iface, i as u64 * 1000, None, p)
                    .expect("vec");
            }
            black_box(w.finish().expect("vec").len())
        });
    });
    group.bench_function("write_pcap", |b| {
        b.iter(|| {
            let mut w = PcapCaptureWriter::new(Vec::with_capacity(16 << 20)).expect("vec");
            for (i, p) in packets.iter().enumerate() {
                w.write_packet(i as u64 * 1000, p).expect("vec");
            }
            black_box(w.finish().expect("vec").len())
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
