//! Replay throughput: read a capture, map, readdress, translate, check, and write both views
//! (no verdict lines), per packet. The capture is synthetic and in memory: 200 000 packets of
//! 20 000 flows (UDP and TCP, both directions) from 64 inside hosts, 1000 flows live at once.

use std::hint::black_box;
use std::net::IpAddr;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use natsim::replay::{CaptureReader, PcapCaptureWriter, ReplayConfig, replay_streams};
use natsim::wire::PacketRepr;
use natsim::wire::tcp_flags::{ACK, PSH, SYN};

const FLOWS: u32 = 20_000;
const PACKETS_PER_FLOW: u32 = 10;
const LIVE_FLOWS: u32 = 1_000;
const PACKETS: u64 = FLOWS as u64 * PACKETS_PER_FLOW as u64;

/// Packet `k` of flow `f`: even k from the inside host, odd k the reply.
fn packet(f: u32, k: u32) -> Vec<u8> {
    let host = IpAddr::from([10, 0, (f % 64) as u8, 10]);
    let remote = IpAddr::from([198, 51, (f / 256 % 256) as u8, (f % 256) as u8]);
    let (hport, rport) = (20_000 + (f % 40_000) as u16, 443);
    let payload = [0x5au8; 64];
    let out = k.is_multiple_of(2);
    let (src, dst) = if out {
        ((host, hport), (remote, rport))
    } else {
        ((remote, rport), (host, hport))
    };
    if f.is_multiple_of(2) {
        PacketRepr::udp(src, dst, &payload).emit()
    } else {
        let flags = match k {
            0 => SYN,
            1 => SYN | ACK,
            _ => PSH | ACK,
        };
        let data: &[u8] = if k < 2 { b"" } else { &payload };
        PacketRepr::tcp(src, dst, flags, 1000 + k * 64, 5000 + k * 64, data).emit()
    }
}

/// The capture: batches of `LIVE_FLOWS` flows, their packets interleaved, 5 µs apart.
fn capture() -> Vec<u8> {
    let mut w = PcapCaptureWriter::new(Vec::with_capacity(40 << 20)).expect("vec");
    let mut t_ns = 1_700_000_000_000_000_000u64;
    for batch in 0..FLOWS / LIVE_FLOWS {
        for k in 0..PACKETS_PER_FLOW {
            for i in 0..LIVE_FLOWS {
                w.write_packet(t_ns, &packet(batch * LIVE_FLOWS + i, k))
                    .expect("vec");
                t_ns += 5_000;
            }
        }
    }
    w.finish().expect("vec")
}

fn bench(c: &mut Criterion) {
    let pcap = capture();
    let config = ReplayConfig::default();
    // Every packet is translated: the bench measures the real path, not drops.
    let check = replay_streams(
        || CaptureReader::new(&pcap[..], "bench"),
        "bench",
        &config,
        Vec::new(),
        Vec::new(),
        None,
    )
    .expect("replays");
    let v = &check.summary.verdicts;
    assert_eq!(v.get("forward.outside"), Some(&(PACKETS / 2)), "{v:?}");
    assert_eq!(v.get("forward.inside"), Some(&(PACKETS / 2)), "{v:?}");
    let mut group = c.benchmark_group("replay");
    group.throughput(Throughput::Elements(PACKETS));
    group.sample_size(20);
    // Output buffers are reused so that the kernel's page faults on fresh memory are not
    // measured (a real replay writes through a BufWriter).
    let (mut inside, mut outside) = (Vec::with_capacity(32 << 20), Vec::with_capacity(32 << 20));
    group.bench_function("translate_write_both_views", |b| {
        b.iter(|| {
            inside.clear();
            outside.clear();
            let outcome = replay_streams(
                || CaptureReader::new(&pcap[..], "bench"),
                "bench",
                &config,
                &mut inside,
                &mut outside,
                None,
            )
            .expect("replays");
            assert_eq!(outcome.summary.replayed_packets, PACKETS);
            assert_eq!(outcome.exit_code, 0);
            black_box(outcome.summary.gateway.len())
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
