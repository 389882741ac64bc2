//! NAT core benchmarks (issue 2 and 15 targets): established-flow translation at 1k / 64k / 1M
//! live flows for IPv4 and IPv6, packet by packet (`process`) and batched (`process_batch`), the
//! new-flow path, a packet refused on an exhausted block for P = 64 and P = 32768, table memory
//! per live flow, and the RFC 9693 connection setup rate, tear-down rate and table capacity.
//!
//! Run: `cargo bench --bench nat`. Results and targets: `reports/BENCHMARKS.md`.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use natsim::nat::{
    BatchPacket, Block, Gateway, GatewayConfig, Ingress, LimitScope, NetworkConfig, NetworkId,
    NicConfig, NicId, Profile, Verdict,
};
use natsim::time::Instant;
use natsim::wire::PacketRepr;

const NICS: u32 = 64;
const PORTS: u32 = 1024;

fn inside_ip(v6: bool, nic: u32) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, nic as u16 + 1))
    } else {
        IpAddr::V4(Ipv4Addr::new(10, 0, (nic >> 8) as u8, nic as u8 + 1))
    }
}

fn nat_ip(v6: bool, i: u32) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, i as u16 + 1))
    } else {
        IpAddr::V4(Ipv4Addr::new(203, 0, 113, i as u8 + 1))
    }
}

fn remote_ip(v6: bool, i: u32) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::new(
            0x2001,
            0xdb8,
            0xffff,
            0,
            0,
            0,
            (i >> 16) as u16,
            i as u16,
        ))
    } else {
        IpAddr::V4(Ipv4Addr::new(198, 18, (i >> 8) as u8, i as u8))
    }
}

/// A gateway with `nics` NICs, each with a `ports`-port block (63 blocks per NAT IP).
fn gateway(v6: bool, nics: u32, ports: u32, scope: LimitScope) -> Gateway {
    gateway_with_ceiling(v6, nics, ports, scope, 8 << 20)
}

/// [`gateway`] with a connection-table ceiling of `max_flows`.
fn gateway_with_ceiling(
    v6: bool,
    nics: u32,
    ports: u32,
    scope: LimitScope,
    max_flows: u32,
) -> Gateway {
    let profile = Profile {
        limit_scope: scope,
        ..Profile::rfc()
    };
    let mut g = Gateway::new(GatewayConfig {
        profile,
        ports_per_nic: ports,
        networks: vec![NetworkConfig {
            name: "bench".into(),
            local_prefixes: vec![],
        }],
        max_flows,
        ..Default::default()
    })
    .expect("valid config");
    let per_ip = 64512 / ports;
    for n in 0..nics {
        g.add_nic(
            NicId(n),
            NicConfig {
                network: NetworkId(0),
                addresses: vec![inside_ip(v6, n)],
                name: format!("nic{n}"),
            },
        )
        .expect("nic");
        let slot = n % per_ip;
        let port = 1024 + (slot * ports) as u16;
        g.assign_block(
            Instant::ZERO,
            NicId(n),
            Block {
                nat_ip: nat_ip(v6, n / per_ip),
                port,
                end_port: port + (ports - 1) as u16,
            },
        )
        .expect("block");
    }
    g
}

/// Packets of `flows` distinct UDP flows spread over the NICs: flow i goes from NIC i % NICS,
/// inside port 1024 + i / NICS % 60000, to remote i / NICS / 60000... kept within P per remote IP.
fn flow_packets(v6: bool, flows: u32) -> Vec<Vec<u8>> {
    (0..flows)
        .map(|i| {
            let nic = i % NICS;
            let k = i / NICS;
            // Each NIC sends to remote IP k / 512 from inside port k: at most 512 flows per
            // (NIC, remote IP), below P = 1024.
            let src = (inside_ip(v6, nic), 1024 + (k % 60000) as u16);
            let dst = (remote_ip(v6, k / 512), 53);
            PacketRepr::udp(src, dst, &[0u8; 18]).emit()
        })
        .collect()
}

/// The order flows are visited in, scrambled so large tables are not walked sequentially: by
/// default flow `i × 2654435761 mod flows` (the figures of every session so far), or with
/// `NATSIM_BENCH_ORDER=shuffle` a seeded random permutation (ChaCha8 through `natsim::rng`).
/// The default order is an arithmetic progression of slots, so the addresses it touches one
/// after another are a fixed stride apart; at a million flows its cost depends on the flow size
/// in a way a random order does not (reports/BENCHMARKS.md, fifteenth session).
fn visit_order(flows: u32) -> Vec<u32> {
    let mut order: Vec<u32> = (0..flows)
        .map(|i| ((u64::from(i) * 2_654_435_761) % u64::from(flows)) as u32)
        .collect();
    if std::env::var("NATSIM_BENCH_ORDER").is_ok_and(|v| v == "shuffle") {
        let mut rng = natsim::rng::Rng::new(15, 0);
        for i in (1..order.len()).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            order.swap(i, j);
        }
    }
    order
}

fn established(c: &mut Criterion) {
    let mut group = c.benchmark_group("established");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .sample_size(20);
    for v6 in [false, true] {
        for flows in [1_000u32, 65_536, 1_000_000] {
            let mut g = gateway(v6, NICS, PORTS, LimitScope::RemoteIp);
            let pkts = flow_packets(v6, flows);
            let now = Instant::from_secs(1);
            for (i, p) in pkts.iter().enumerate() {
                let mut b = p.clone();
                let v = g.process(now, Ingress::Inside(NicId(i as u32 % NICS)), &mut b);
                assert!(matches!(v, Verdict::Forward(_)), "setup flow {i}: {v:?}");
            }
            let order = visit_order(flows);
            // Packets sit in one contiguous buffer with a fixed stride in the order they are
            // visited, like a NIC's receive ring, which is read front to back: the flows are
            // scrambled, the ring is not, so the benchmark adds no cache misses of its own.
            const STRIDE: usize = 128;
            let len = pkts[0].len();
            assert!(pkts.iter().all(|p| p.len() == len) && len <= STRIDE);
            let mut ring = vec![0u8; pkts.len() * STRIDE];
            for (k, &i) in order.iter().enumerate() {
                ring[k * STRIDE..k * STRIDE + len].copy_from_slice(&pkts[i as usize]);
            }
            drop(pkts);
            const BATCH: usize = 1024;
            group.throughput(Throughput::Elements(BATCH as u64));
            let name = if v6 { "ipv6" } else { "ipv4" };
            let mut cursor = 0usize;
            let mut buf = Vec::with_capacity(128);
            group.bench_function(BenchmarkId::new(name, flows), |b| {
                b.iter(|| {
                    for _ in 0..BATCH {
                        let (k, i) = (cursor, order[cursor] as usize);
                        cursor = if cursor + 1 == order.len() {
                            0
                        } else {
                            cursor + 1
                        };
                        buf.clear();
                        buf.extend_from_slice(&ring[k * STRIDE..k * STRIDE + len]);
                        black_box(g.process(
                            now,
                            Ingress::Inside(NicId(i as u32 % NICS)),
                            &mut buf,
                        ));
                    }
                })
            });
            // The same packets through `process_batch`, VECTOR at a time (as a poll-mode
            // driver hands them over).
            const VECTOR: usize = 32;
            let mut batch: Vec<BatchPacket> = (0..VECTOR)
                .map(|_| BatchPacket::new(Ingress::Outside, Vec::with_capacity(128)))
                .collect();
            group.bench_function(BenchmarkId::new(format!("{name}-batch"), flows), |b| {
                b.iter(|| {
                    for _ in 0..BATCH / VECTOR {
                        for p in batch.iter_mut() {
                            let (k, i) = (cursor, order[cursor] as usize);
                            cursor = if cursor + 1 == order.len() {
                                0
                            } else {
                                cursor + 1
                            };
                            p.ingress = Ingress::Inside(NicId(i as u32 % NICS));
                            p.buf.clear();
                            p.buf.extend_from_slice(&ring[k * STRIDE..k * STRIDE + len]);
                        }
                        g.process_batch(now, &mut batch);
                        black_box(&batch);
                    }
                })
            });
            let (v4b, v6b) = g.table_bytes();
            let (l4, l6) = g.live_flows();
            let (bytes, live) = if v6 { (v6b, l6) } else { (v4b, l4) };
            println!(
                "table memory {name} {flows} flows: {} bytes/flow",
                bytes / live.max(1)
            );
        }
    }
    group.finish();
}

// Benchmarks measure wall time by design; the determinism lint is for the simulator.
#[allow(clippy::disallowed_methods)]
fn new_flows(c: &mut Criterion) {
    let mut group = c.benchmark_group("new_flow");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .sample_size(20);
    group.throughput(Throughput::Elements(1));
    for v6 in [false, true] {
        let name = if v6 { "ipv6" } else { "ipv4" };
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                // Fresh gateway per measurement; flows go to distinct (remote, port) pairs so
                // every packet takes the creation path.
                let mut g = gateway(v6, NICS, PORTS, LimitScope::RemoteEndpoint);
                let now = Instant::from_secs(1);
                let pkts: Vec<Vec<u8>> = (0..iters)
                    .map(|i| {
                        let nic = (i % u64::from(NICS)) as u32;
                        let k = i / u64::from(NICS);
                        let src = (inside_ip(v6, nic), 1024 + (k % 60000) as u16);
                        let dst = (remote_ip(v6, (k / 60000) as u32), 1 + (k % 60000) as u16);
                        PacketRepr::udp(src, dst, &[0u8; 18]).emit()
                    })
                    .collect();
                let mut total = Duration::ZERO;
                let mut buf = Vec::with_capacity(128);
                for (i, p) in pkts.iter().enumerate() {
                    buf.clear();
                    buf.extend_from_slice(p);
                    let t = std::time::Instant::now();
                    black_box(g.process(now, Ingress::Inside(NicId(i as u32 % NICS)), &mut buf));
                    total += t.elapsed();
                }
                total
            })
        });
    }
    group.finish();
}

fn rejected(c: &mut Criterion) {
    let mut group = c.benchmark_group("rejected_exhausted");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20);
    group.throughput(Throughput::Elements(1));
    for p in [64u32, 32_768] {
        let mut g = gateway(false, 1, p, LimitScope::RemoteIp);
        let now = Instant::from_secs(1);
        for k in 0..p {
            let mut b = PacketRepr::udp(
                (inside_ip(false, 0), 1024 + k as u16),
                (remote_ip(false, 0), 53),
                b"x",
            )
            .emit();
            assert!(matches!(
                g.process(now, Ingress::Inside(NicId(0)), &mut b),
                Verdict::Forward(_)
            ));
        }
        let probe = PacketRepr::udp(
            (inside_ip(false, 0), 1024 + p as u16),
            (remote_ip(false, 0), 53),
            b"x",
        )
        .emit();
        let mut buf = Vec::with_capacity(128);
        group.bench_function(BenchmarkId::from_parameter(p), |b| {
            b.iter(|| {
                buf.clear();
                buf.extend_from_slice(&probe);
                let v = g.process(now, Ingress::Inside(NicId(0)), &mut buf);
                debug_assert!(matches!(v, Verdict::Drop(_)));
                black_box(v)
            })
        });
    }
    group.finish();
}

/// `N` UDP packets of `N` distinct new flows (distinct remote endpoints, so each takes the
/// creation path), spread over the NICs.
fn new_flow_packets(v6: bool, n: u32) -> Vec<BatchPacket> {
    (0..n)
        .map(|i| {
            let nic = i % NICS;
            let k = i / NICS;
            let src = (inside_ip(v6, nic), 1024 + (k % 60000) as u16);
            let dst = (remote_ip(v6, k / 60000), 1 + (k % 60000) as u16);
            BatchPacket::new(
                Ingress::Inside(NicId(nic)),
                PacketRepr::udp(src, dst, &[0u8; 18]).emit(),
            )
        })
        .collect()
}

/// RFC 9693 (benchmarking stateful NATxy gateways) on the gateway itself: the connection setup
/// rate (new flows per second into an empty table, whole batches of distinct new flows), the
/// connection tear-down rate (flows ended and their ports released per second, all due at one
/// `handle_timeout`), and the connection-table capacity (printed: flows per GiB of table
/// memory, and the configured ceiling enforced exactly).
fn rfc9693(c: &mut Criterion) {
    const N: u32 = 65_536;
    let mut group = c.benchmark_group("rfc9693");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .sample_size(20)
        .throughput(Throughput::Elements(u64::from(N)));
    let now = Instant::from_secs(1);
    for v6 in [false, true] {
        let name = if v6 { "ipv6" } else { "ipv4" };
        let packets = new_flow_packets(v6, N);
        group.bench_function(BenchmarkId::new("setup", name), |b| {
            b.iter_batched_ref(
                || {
                    (
                        gateway(v6, NICS, PORTS, LimitScope::RemoteEndpoint),
                        packets.clone(),
                    )
                },
                |(g, batch)| {
                    for chunk in batch.chunks_mut(32) {
                        g.process_batch(now, chunk);
                    }
                },
                BatchSize::LargeInput,
            )
        });
        group.bench_function(BenchmarkId::new("teardown", name), |b| {
            b.iter_batched_ref(
                || {
                    let mut g = gateway(v6, NICS, PORTS, LimitScope::RemoteEndpoint);
                    let mut batch = packets.clone();
                    g.process_batch(now, &mut batch);
                    assert_eq!(g.tracked_flows(), if v6 { (0, N) } else { (N, 0) });
                    g
                },
                |g| {
                    // Past every timeout and hold: all N flows end and their ports are freed.
                    g.handle_timeout(Instant::from_secs(100_000));
                    debug_assert_eq!(g.tracked_flows(), (0, 0));
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
    // Capacity: a table filled to its configured ceiling takes exactly that many flows and
    // refuses the next one as `table_full`; memory per flow there gives flows per GiB.
    for v6 in [false, true] {
        let name = if v6 { "ipv6" } else { "ipv4" };
        let mut g = gateway_with_ceiling(v6, NICS, PORTS, LimitScope::RemoteEndpoint, N);
        let mut batch = new_flow_packets(v6, N + 1);
        g.process_batch(now, &mut batch);
        let accepted = batch
            .iter()
            .filter(|p| matches!(p.verdict, Verdict::Forward(_)))
            .count();
        assert_eq!(accepted, N as usize, "{name}: the table takes its ceiling");
        assert!(
            matches!(
                batch[N as usize].verdict,
                Verdict::Drop(natsim::nat::DropReason::TableFull)
            ),
            "{name}: the flow past the ceiling is refused as table_full"
        );
        let (v4b, v6b) = g.table_bytes();
        let per_flow = (if v6 { v6b } else { v4b }) / N as usize;
        println!(
            "rfc9693 capacity {name}: ceiling {N} flows enforced exactly; {per_flow} bytes/flow \
             at {N} flows = {:.1} M flows per GiB of table memory",
            (1u64 << 30) as f64 / per_flow as f64 / 1e6
        );
    }
}

criterion_group!(benches, established, new_flows, rejected, rfc9693);
criterion_main!(benches);
