//! Manifest loading (issue 13): one manifest file of 1k, 10k and 100k documents (a Network,
//! a NATGateway, NICs), read, validated and reconciled — what `natsim reconcile FILE` does
//! after reading the file. The time per document must stay flat (linear loading).
//!
//! Run with modest sample sizes on the shared machine:
//! `nice -n 19 cargo bench --bench manifest_load -- --warm-up-time 1 --measurement-time 10`.
//! The same file shape for the CLI: `python3 scripts/fleet-manifest.py 100000`.

use std::hint::black_box;
use std::net::Ipv4Addr;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use natsim::api::{SourceFile, World, WorldConfig, load};
use natsim::time::Instant;

/// One file: a Network, a NATGateway over `ips` addresses with P = 64, and `nics` NICs,
/// block style, as `kubectl get -o yaml` writes them.
fn fleet_manifest(nics: usize, ips: usize) -> String {
    let mut text = String::with_capacity(nics * 260 + 4096);
    text.push_str(
        "apiVersion: networking.ironcore.dev/v1alpha1\nkind: Network\nmetadata:\n  name: net\nspec:\n  prefixes:\n  - 10.0.0.0/8\n",
    );
    text.push_str(
        "---\napiVersion: networking.ironcore.dev/v1alpha1\nkind: NATGateway\nmetadata:\n  name: nat\nspec:\n  type: Public\n  ipFamilies: [IPv4]\n  networkRef:\n    name: net\n  portsPerNetworkInterface: 64\n  networkInterfaceSelector:\n    matchLabels:\n      nat: \"on\"\n  ips:\n",
    );
    for i in 0..ips {
        text.push_str(&format!("  - name: ip{i}\n"));
    }
    for i in 0..nics {
        let a = Ipv4Addr::from(0x0a00_0001 + u32::try_from(i).unwrap_or(0));
        text.push_str(&format!(
            "---\napiVersion: networking.ironcore.dev/v1alpha1\nkind: NetworkInterface\nmetadata:\n  name: nic-{i:06}\n  labels:\n    nat: \"on\"\nspec:\n  networkRef:\n    name: net\n  ipFamilies: [IPv4]\n  ips:\n  - value: {a}\n"
        ));
    }
    text
}

fn bench_manifest_load(c: &mut Criterion) {
    let mut group = c.benchmark_group("manifest_load");
    // Ten samples: the 100k point takes about a second each.
    group.sample_size(10);
    for nics in [1_000usize, 10_000, 100_000] {
        // Enough addresses for every NIC: 1008 blocks of 64 ports per address.
        let ips = nics.div_ceil(1008);
        let text = fleet_manifest(nics, ips);
        let sources = [SourceFile::new("fleet.yaml", text)];
        group.throughput(Throughput::Elements(nics as u64 + 2));
        group.bench_with_input(
            BenchmarkId::new("validate_and_reconcile", nics),
            &sources,
            |b, sources| {
                b.iter(|| {
                    let report = load(sources);
                    assert!(!report.has_errors(), "bench manifest is valid");
                    let mut world = World::from_objects(report.objects, WorldConfig::default())
                        .expect("valid objects");
                    let out = world.reconcile(Instant::ZERO);
                    assert_eq!(out.changes.len(), nics);
                    black_box(world)
                });
            },
        );
    }
    group.finish();
}

criterion_group!(benches, bench_manifest_load);
criterion_main!(benches);
