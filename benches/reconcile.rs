//! Reconciler performance: 100 000 NICs over 100 IPs with P = 64 (100 × 1008 slots).
//!
//! `from_scratch`: one reconcile of a world where everything is new.
//! `one_nic_added`: adding one NIC to the reconciled world (the NIC is deleted again, and
//! the virtual clock moved past the quarantine, outside the timed part).
//!
//! Loading manifests from YAML is measured by `benches/manifest_load.rs`.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use natsim::api::{
    IpFamily, Kind, LabelSelector, NatGateway, NatGatewayIp, Network, NetworkInterface, Object,
    ObjectKey, World, WorldConfig,
};
use natsim::time::Instant;

const NICS: u32 = 100_000;
const IPS: usize = 100;
const P: u32 = 64;

fn nic(i: u32) -> NetworkInterface {
    NetworkInterface {
        key: ObjectKey::in_default(format!("nic-{i:06}")),
        labels: BTreeMap::from([("nat".to_owned(), "on".to_owned())]),
        network: "net".into(),
        ip_families: vec![IpFamily::IPv4],
        ips: vec![IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i))],
        virtual_ip: None,
        deleting: false,
    }
}

fn unreconciled_world() -> World {
    let mut w = World::new(WorldConfig::default());
    let mut apply = |o: Object| w.apply(o).expect("valid bench object");
    apply(Object::Network(Network {
        key: ObjectKey::in_default("net"),
        prefixes: vec![],
        routes: vec![],
    }));
    apply(Object::NatGateway(NatGateway {
        key: ObjectKey::in_default("nat"),
        ip_families: vec![IpFamily::IPv4],
        network: "net".into(),
        ips: (0..IPS)
            .map(|i| NatGatewayIp {
                name: format!("ip{i}"),
                addresses: vec![],
            })
            .collect(),
        ports_per_network_interface: P,
        selector: Some(LabelSelector::default()),
    }));
    for i in 0..NICS {
        apply(Object::NetworkInterface(nic(i)));
    }
    w
}

fn bench(c: &mut Criterion) {
    let template = unreconciled_world();
    let mut group = c.benchmark_group("reconcile");
    group.sample_size(10);
    group.bench_function("from_scratch_100k_nics_100_ips_p64", |b| {
        b.iter_batched(
            || template.clone(),
            |mut w| {
                let out = w.reconcile(Instant::ZERO);
                assert_eq!(out.changes.len(), NICS as usize);
                w
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();

    let mut world = template;
    world.reconcile(Instant::ZERO);
    let gw = ObjectKey::in_default("nat");
    assert_eq!(world.routed_count(&gw, IpFamily::IPv4), NICS as usize);
    let mut now = Instant::ZERO;
    let extra = nic(NICS);
    let mut group = c.benchmark_group("reconcile");
    group.bench_function("one_nic_added_to_100k", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                now = now + Duration::from_secs(121);
                // Wall-clock timing is the point of a benchmark; the library never does this.
                #[allow(clippy::disallowed_methods)]
                let start = std::time::Instant::now();
                world
                    .apply(Object::NetworkInterface(extra.clone()))
                    .expect("valid nic");
                let out = world.reconcile(now);
                total += start.elapsed();
                assert_eq!(black_box(out).changes.len(), 1);
                world
                    .delete(Kind::NetworkInterface, &extra.key)
                    .expect("present");
                world.reconcile(now);
            }
            total
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
