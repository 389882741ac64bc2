//! Simulator throughput: packet events per second at 10,000 NICs (criterion, with and without
//! the invariant checker), then a scaling curve from 100 to 100,000 NICs with heap usage from a
//! counting allocator, and the heap needed for 1 M concurrent flows.
//!
//! `cargo bench --bench sim` (criterion); `NATSIM_BENCH_SCALING=0` skips the curve.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use criterion::{BatchSize, Criterion, Throughput};
use natsim::check::InvariantChecker;
use natsim::scenario::load_str;
use natsim::sim::{SimConfig, Simulator, real_gateway};

/// Counts live and peak heap bytes.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only adds bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            let now = LIVE.fetch_add(l.size(), Ordering::Relaxed) + l.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) };
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// A fleet of `nics` NICs, each opening a UDP flow every `arrival_ms` that sends a datagram every
/// 500 ms for `flow_ms` to one of 10 remote echo servers.
fn fleet(nics: u32, arrival_ms: u64, flow_ms: u64, stop_ms: u64) -> SimConfig {
    let ips = nics.div_ceil(1008) + 1;
    let mut y = String::from(
        "apiVersion: natsim.dev/v1\nkind: Scenario\nmetadata: {name: bench}\nseed: 1\nlimits: {rerun_for_determinism: false}\ntopology:\n  networks: [{name: n, prefixes: [10.0.0.0/8]}]\n",
    );
    y.push_str(&format!(
        "  nic_groups: [{{prefix: vm-, count: {nics}, network: n, first_address: 10.0.0.1}}]\n  remotes:\n"
    ));
    for r in 0..10 {
        y.push_str(&format!(
            "    - {{name: r{r}, addresses: [198.51.100.{}], services: [{{protocol: udp, port: 53, response_bytes: 64}}]}}\n",
            r + 1
        ));
    }
    y.push_str("gateway:\n  network: n\n  ports_per_nic: 64\n  selector: {}\n  ips:\n");
    for i in 0..ips {
        y.push_str(&format!(
            "    - {{name: ip{i}, addresses: [100.{}.{}.{}]}}\n",
            64 + i / 65536,
            (i / 256) % 256,
            i % 256
        ));
    }
    y.push_str(&format!(
        "generators:\n  - {{name: g, nics: [\"*\"], stop_ms: {stop_ms}, arrivals: {{fixed_ms: {arrival_ms}}}, duration: {{fixed_ms: {flow_ms}}}, destinations: [r0, r1, r2, r3, r4, r5, r6, r7, r8, r9], mix: {{tcp: 0, udp: 1, icmp: 0}}, interval_ms: 500}}\n"
    ));
    load_str(Path::new("bench.yaml"), &y)
        .expect("bench scenario")
        .sim
}

fn build(cfg: SimConfig, checked: bool) -> Simulator {
    let observers: Vec<Box<dyn natsim::sim::Observer>> = if checked {
        vec![Box::new(InvariantChecker::new(cfg.gateway.profile.clone()))]
    } else {
        Vec::new()
    };
    Simulator::new(cfg, Box::new(real_gateway), observers).expect("builds")
}

/// Runs a built simulator to the end; returns it so that dropping it is not timed.
fn run(mut sim: Simulator) -> Simulator {
    sim.run();
    assert!(sim.violation().is_none());
    sim
}

fn criterion_benches(c: &mut Criterion) {
    let cfg = fleet(10_000, 2000, 4000, 4000);
    let events = run(build(cfg.clone(), false)).stats().packet_events;
    let mut g = c.benchmark_group("sim_10k_nics");
    g.sample_size(10);
    // The simulation proper: building the 10,000-NIC world (topology, API objects, the first
    // reconcile) is set-up, measured on its own below.
    g.throughput(Throughput::Elements(events));
    g.bench_function("packet_events", |b| {
        b.iter_batched(|| build(cfg.clone(), false), run, BatchSize::PerIteration)
    });
    g.bench_function("packet_events_checked", |b| {
        b.iter_batched(|| build(cfg.clone(), true), run, BatchSize::PerIteration)
    });
    g.throughput(Throughput::Elements(10_000));
    g.bench_function("build_world", |b| {
        b.iter_batched(
            || cfg.clone(),
            |cfg| build(cfg, false),
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

// Wall-clock time is what a benchmark measures; the simulation itself never reads it.
#[allow(clippy::disallowed_methods)]
fn scaling() {
    println!(
        "\nscaling (unchecked; 4 s of virtual time, a new 4 s UDP flow per NIC every 2 s; \
         events/s over the run, build = constructing the world):"
    );
    println!(
        "{:>8} {:>12} {:>10} {:>10} {:>14} {:>14}",
        "nics", "pkt events", "build s", "run s", "events/s", "peak heap MiB"
    );
    for nics in [100u32, 1_000, 10_000, 100_000] {
        let cfg = fleet(nics, 2000, 4000, 4000);
        let base = LIVE.load(Ordering::Relaxed);
        PEAK.store(base, Ordering::Relaxed);
        let t = std::time::Instant::now();
        let sim = build(cfg, false);
        let build_s = t.elapsed().as_secs_f64();
        let t = std::time::Instant::now();
        let sim = run(sim);
        let run_s = t.elapsed().as_secs_f64();
        let events = sim.stats().packet_events;
        let peak = PEAK.load(Ordering::Relaxed).saturating_sub(base);
        drop(sim);
        println!(
            "{nics:>8} {events:>12} {build_s:>10.3} {run_s:>10.3} {:>14.0} {:>14.1}",
            events as f64 / run_s,
            peak as f64 / (1 << 20) as f64
        );
    }
    // 1 M concurrent flows: 10,000 NICs × 100 long-lived flows each, all open at once.
    let cfg = fleet(10_000, 10, 600_000, 1000);
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let mut sim = Simulator::new(cfg, Box::new(real_gateway), Vec::new()).expect("builds");
    let t = std::time::Instant::now();
    sim.run_until(1_100_000_000);
    let live = sim.live_flows();
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(base);
    println!(
        "\n1M-flow check: {live} live flows after {:.1} s wall, peak heap {:.0} MiB ({} bytes/flow)",
        t.elapsed().as_secs_f64(),
        peak as f64 / (1 << 20) as f64,
        peak / live.max(1)
    );
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    criterion_benches(&mut c);
    c.final_summary();
    if std::env::var("NATSIM_BENCH_SCALING").map_or(true, |v| v != "0") {
        scaling();
    }
}
