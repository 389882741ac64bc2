//! Known cases of behaviour §3 (selection and port-block allocation), through the public API.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use natsim::api::{
    DataplaneChange, IpFamily, Kind, LabelSelector, NatGateway, NatGatewayIp, Network,
    NetworkInterface, NicVirtualIp, Object, ObjectKey, SourceFile, World, WorldConfig, load,
};
use natsim::time::Instant;

fn key(name: &str) -> ObjectKey {
    ObjectKey::in_default(name)
}

fn network() -> Object {
    Object::Network(Network {
        key: key("net"),
        prefixes: vec![],
        routes: vec![],
    })
}

fn nic(name: &str, n: u32) -> NetworkInterface {
    let addr: IpAddr = std::net::Ipv4Addr::from(0x0a00_0000 + n).into();
    NetworkInterface {
        key: key(name),
        labels: BTreeMap::from([("nat".to_owned(), "on".to_owned())]),
        network: "net".into(),
        ip_families: vec![IpFamily::IPv4],
        ips: vec![addr],
        virtual_ip: None,
        deleting: false,
    }
}

fn gateway(name: &str, ips: &[&str], p: u32) -> NatGateway {
    NatGateway {
        key: key(name),
        ip_families: vec![IpFamily::IPv4],
        network: "net".into(),
        ips: ips
            .iter()
            .map(|n| NatGatewayIp {
                name: (*n).into(),
                addresses: vec![],
            })
            .collect(),
        ports_per_network_interface: p,
        selector: Some(LabelSelector::default()),
    }
}

fn world(quarantine: Duration) -> World {
    let mut w = World::new(WorldConfig {
        block_quarantine: quarantine,
        ..WorldConfig::default()
    });
    w.apply(network()).expect("network");
    w
}

fn ports(w: &World, name: &str) -> Option<(u16, u16)> {
    w.block(&key(name), IpFamily::IPv4)
        .map(|b| (b.port, b.end_port))
}

#[test]
fn iep4_example_two_nics_p64_gets_blocks_1024_and_1088() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/manifests/valid/iep4-example.yaml"
    );
    let text = std::fs::read_to_string(path).expect("example manifest");
    let report = load(&[SourceFile::new("iep4-example.yaml", text)]);
    assert!(!report.has_errors(), "{:?}", report.diagnostics);
    let mut w = World::from_objects(report.objects, WorldConfig::default()).expect("world");
    w.reconcile(Instant::ZERO);
    for family in [IpFamily::IPv4, IpFamily::IPv6] {
        let a = w.block(&key("db-0"), family).expect("db-0 routed");
        let b = w.block(&key("db-1"), family).expect("db-1 routed");
        assert_eq!((a.port, a.end_port), (1024, 1087));
        assert_eq!((b.port, b.end_port), (1088, 1151));
        assert_eq!(a.ip, b.ip);
    }
    assert!(w.block(&key("web-0"), IpFamily::IPv4).is_none());
    let status = w.gateway_status(&key("my-nat")).expect("status");
    assert_eq!(status.ports_used, 128);
}

#[test]
fn p1024_on_two_ips_routes_126_of_128_nics_and_uses_129024_ports() {
    let mut w = world(Duration::ZERO);
    for i in 0..128 {
        w.apply(Object::NetworkInterface(nic(&format!("nic-{i:03}"), i)))
            .expect("nic");
    }
    w.apply(Object::NatGateway(gateway("nat", &["ip1", "ip2"], 1024)))
        .expect("gw");
    w.reconcile(Instant::ZERO);
    assert_eq!(w.routed_count(&key("nat"), IpFamily::IPv4), 126);
    let status = w.gateway_status(&key("nat")).expect("status");
    assert_eq!(status.ports_used, 129_024);
    assert_eq!(status.allocation[0].requested, 128);
    assert_eq!(status.allocation[0].allocated, 126);
    assert!(
        status
            .conditions
            .iter()
            .any(|c| c.type_ == "PortBlocksExhausted")
    );
    // (namespace, name) order: the last two NICs are the ones left without a block.
    assert!(ports(&w, "nic-126").is_none() && ports(&w, "nic-127").is_none());
    // The first IP fills up before the second is used.
    let first = w.block(&key("nic-000"), IpFamily::IPv4).expect("routed");
    let last_on_first = w.block(&key("nic-062"), IpFamily::IPv4).expect("routed");
    let first_on_second = w.block(&key("nic-063"), IpFamily::IPv4).expect("routed");
    assert_eq!(first.ip, last_on_first.ip);
    assert_ne!(first.ip, first_on_second.ip);
    assert_eq!(
        (first_on_second.port, first_on_second.end_port),
        (1024, 2047)
    );
}

#[test]
fn p2048_fits_31_nics_per_ip() {
    let mut w = world(Duration::ZERO);
    for i in 0..40 {
        w.apply(Object::NetworkInterface(nic(&format!("nic-{i:02}"), i)))
            .expect("nic");
    }
    w.apply(Object::NatGateway(gateway("nat", &["ip1"], 2048)))
        .expect("gw");
    w.reconcile(Instant::ZERO);
    assert_eq!(w.routed_count(&key("nat"), IpFamily::IPv4), 31);
    assert_eq!(ports(&w, "nic-30"), Some((62464, 64511)));
}

#[test]
fn nic_with_virtual_ip_is_never_routed() {
    let mut w = world(Duration::ZERO);
    let mut exposed = nic("exposed", 1);
    exposed.virtual_ip = Some(NicVirtualIp::Ephemeral);
    w.apply(Object::NetworkInterface(exposed)).expect("nic");
    w.apply(Object::NetworkInterface(nic("plain", 2)))
        .expect("nic");
    w.apply(Object::NatGateway(gateway("nat", &["ip1"], 64)))
        .expect("gw");
    w.reconcile(Instant::ZERO);
    assert!(ports(&w, "exposed").is_none());
    assert_eq!(ports(&w, "plain"), Some((1024, 1087)));
    // Attaching a VirtualIP later releases the block at once.
    w.set_virtual_ip(&key("plain"), Some(NicVirtualIp::Ref("vip".into())))
        .expect("set");
    let out = w.reconcile(Instant::from_secs(1));
    assert!(matches!(
        out.changes.as_slice(),
        [DataplaneChange::BlockReleased { port: 1024, .. }]
    ));
    assert!(ports(&w, "plain").is_none());
}

#[test]
fn p65536_is_rejected_by_validation_and_by_the_world() {
    let yaml = "apiVersion: networking.ironcore.dev/v1alpha1\nkind: NATGateway\nmetadata: {name: nat}\nspec: {type: Public, ipFamilies: [IPv4], networkRef: {name: net}, ips: [{name: ip1}], portsPerNetworkInterface: 65536, networkInterfaceSelector: {}}\n";
    let report = load(&[SourceFile::new("p.yaml", yaml)]);
    let msg = report
        .errors()
        .map(ToString::to_string)
        .find(|m| m.contains("portsPerNetworkInterface"))
        .expect("P error");
    assert!(msg.contains("zero port blocks per IP"), "{msg}");
    assert!(msg.contains("p.yaml:4:"), "{msg}");
    let mut w = world(Duration::ZERO);
    assert!(
        w.apply(Object::NatGateway(gateway("nat", &["ip1"], 65536)))
            .is_err()
    );
}

#[test]
fn quarantine_keeps_a_released_block_for_120s_then_it_is_reusable() {
    let mut w = world(Duration::from_secs(120));
    // P=32768: exactly one slot per IP, so reuse is visible.
    w.apply(Object::NatGateway(gateway("nat", &["ip1"], 32768)))
        .expect("gw");
    w.apply(Object::NetworkInterface(nic("old", 1)))
        .expect("nic");
    w.reconcile(Instant::ZERO);
    assert_eq!(ports(&w, "old"), Some((1024, 33791)));
    w.delete(Kind::NetworkInterface, &key("old"))
        .expect("delete");
    w.apply(Object::NetworkInterface(nic("new", 2)))
        .expect("nic");
    let out = w.reconcile(Instant::from_secs(10));
    assert_eq!(out.changes.len(), 1, "only the release: {:?}", out.changes);
    assert_eq!(out.next_deadline, Some(Instant::from_secs(130)));
    assert!(ports(&w, "new").is_none());
    w.reconcile(Instant::from_secs(129));
    assert!(
        ports(&w, "new").is_none(),
        "reused before the quarantine ended"
    );
    let out = w.reconcile(Instant::from_secs(130));
    assert_eq!(ports(&w, "new"), Some((1024, 33791)));
    assert!(matches!(
        out.changes.as_slice(),
        [DataplaneChange::BlockAssigned { .. }]
    ));
}

#[test]
fn allocations_are_sticky_when_an_earlier_nic_appears() {
    let mut w = world(Duration::ZERO);
    w.apply(Object::NatGateway(gateway("nat", &["ip1"], 64)))
        .expect("gw");
    w.apply(Object::NetworkInterface(nic("nic-b", 2)))
        .expect("nic");
    w.reconcile(Instant::ZERO);
    w.apply(Object::NetworkInterface(nic("nic-a", 1)))
        .expect("nic");
    let out = w.reconcile(Instant::from_secs(1));
    assert_eq!(ports(&w, "nic-b"), Some((1024, 1087)));
    assert_eq!(ports(&w, "nic-a"), Some((1088, 1151)));
    assert_eq!(out.changes.len(), 1);
}

#[test]
fn exhaustion_never_steals_a_block_from_another_nic() {
    let mut w = world(Duration::ZERO);
    w.apply(Object::NatGateway(gateway("nat", &["ip1"], 32768)))
        .expect("gw");
    w.apply(Object::NetworkInterface(nic("nic-z", 1)))
        .expect("nic");
    w.reconcile(Instant::ZERO);
    // nic-a sorts first but arrives later: it waits.
    w.apply(Object::NetworkInterface(nic("nic-a", 2)))
        .expect("nic");
    let out = w.reconcile(Instant::from_secs(1));
    assert!(out.changes.is_empty());
    assert!(ports(&w, "nic-z").is_some());
    assert!(ports(&w, "nic-a").is_none());
}

#[test]
fn second_gateway_reports_conflict_and_takes_over_when_the_first_is_deleted() {
    let mut w = world(Duration::ZERO);
    w.apply(Object::NetworkInterface(nic("vm", 1)))
        .expect("nic");
    w.apply(Object::NatGateway(gateway("nat-a", &["ip1"], 64)))
        .expect("gw");
    w.apply(Object::NatGateway(gateway("nat-b", &["ip1"], 64)))
        .expect("gw");
    w.reconcile(Instant::ZERO);
    let block = w.block(&key("vm"), IpFamily::IPv4).expect("routed");
    assert_eq!(block.gateway, key("nat-a"));
    let b_status = w.gateway_status(&key("nat-b")).expect("status");
    assert_eq!(b_status.conditions[0].type_, "SelectionConflict");
    w.delete(Kind::NatGateway, &key("nat-a")).expect("delete");
    let out = w.reconcile(Instant::from_secs(1));
    let block = w.block(&key("vm"), IpFamily::IPv4).expect("routed");
    assert_eq!(block.gateway, key("nat-b"));
    assert!(matches!(
        out.changes[0],
        DataplaneChange::BlockReleased { .. }
    ));
    assert!(matches!(
        out.changes[1],
        DataplaneChange::BlockAssigned { .. }
    ));
    assert!(
        w.gateway_status(&key("nat-b"))
            .expect("status")
            .conditions
            .is_empty()
    );
}

#[test]
fn relabelled_or_deleting_nics_are_deselected() {
    let mut w = world(Duration::ZERO);
    let mut gw = gateway("nat", &["ip1"], 64);
    gw.selector = Some(LabelSelector {
        match_labels: BTreeMap::from([("nat".into(), "on".into())]),
        match_expressions: vec![],
    });
    w.apply(Object::NatGateway(gw)).expect("gw");
    w.apply(Object::NetworkInterface(nic("a", 1))).expect("nic");
    w.apply(Object::NetworkInterface(nic("b", 2))).expect("nic");
    w.reconcile(Instant::ZERO);
    w.set_labels(&key("a"), BTreeMap::new()).expect("relabel");
    w.mark_deleting(&key("b")).expect("mark");
    let out = w.reconcile(Instant::from_secs(1));
    assert_eq!(out.changes.len(), 2);
    assert!(ports(&w, "a").is_none() && ports(&w, "b").is_none());
    assert_eq!(w.gateway_status(&key("nat")).expect("status").ports_used, 0);
}

#[test]
fn removing_a_gateway_ip_moves_its_nics_to_the_remaining_ip() {
    let mut w = world(Duration::ZERO);
    w.apply(Object::NatGateway(gateway("nat", &["ip1", "ip2"], 32768)))
        .expect("gw");
    w.apply(Object::NetworkInterface(nic("a", 1))).expect("nic");
    w.reconcile(Instant::ZERO);
    let before = w.block(&key("a"), IpFamily::IPv4).expect("routed");
    w.remove_gateway_ip(&key("nat"), "ip1").expect("remove");
    let out = w.reconcile(Instant::from_secs(1));
    let after = w.block(&key("a"), IpFamily::IPv4).expect("routed again");
    assert_ne!(before.ip, after.ip);
    assert_eq!(out.changes.len(), 2);
    assert!(matches!(
        out.changes[0],
        DataplaneChange::BlockReleased { .. }
    ));
    // Adding an IP gives pending NICs room.
    w.apply(Object::NetworkInterface(nic("b", 2))).expect("nic");
    w.reconcile(Instant::from_secs(2));
    assert!(ports(&w, "b").is_none());
    w.add_gateway_ip(
        &key("nat"),
        NatGatewayIp {
            name: "ip3".into(),
            addresses: vec![],
        },
    )
    .expect("add");
    w.reconcile(Instant::from_secs(3));
    assert!(ports(&w, "b").is_some());
}

#[test]
fn changing_p_recuts_every_block_around_the_quarantined_old_ranges() {
    let mut w = world(Duration::from_secs(120));
    w.apply(Object::NatGateway(gateway("nat", &["ip1"], 64)))
        .expect("gw");
    w.apply(Object::NetworkInterface(nic("a", 1))).expect("nic");
    w.apply(Object::NetworkInterface(nic("b", 2))).expect("nic");
    w.reconcile(Instant::ZERO);
    w.set_ports_per_network_interface(&key("nat"), 1024)
        .expect("set P");
    let out = w.reconcile(Instant::from_secs(1));
    // Both old blocks go; the new ones may not overlap the quarantined old ranges
    // (1024-1151), so slot 0 of P=1024 waits and the NICs get slots 1 and 2.
    assert_eq!(out.changes.len(), 4);
    assert_eq!(ports(&w, "a"), Some((2048, 3071)));
    assert_eq!(ports(&w, "b"), Some((3072, 4095)));
}

#[test]
fn one_block_per_family_chosen_independently() {
    let mut w = world(Duration::ZERO);
    let mut gw = gateway("nat", &["ip1"], 32768);
    gw.ip_families = vec![IpFamily::IPv4, IpFamily::IPv6];
    w.apply(Object::NatGateway(gw)).expect("gw");
    let mut dual = nic("a-dual", 1);
    dual.ip_families = vec![IpFamily::IPv4, IpFamily::IPv6];
    dual.ips.push("fd00::1".parse().expect("v6"));
    w.apply(Object::NetworkInterface(dual)).expect("nic");
    w.apply(Object::NetworkInterface(nic("b-v4", 2)))
        .expect("nic");
    w.reconcile(Instant::ZERO);
    // IPv4 has one slot for two NICs; IPv6 is unaffected.
    assert!(w.block(&key("a-dual"), IpFamily::IPv4).is_some());
    assert!(w.block(&key("a-dual"), IpFamily::IPv6).is_some());
    assert!(w.block(&key("b-v4"), IpFamily::IPv4).is_none());
}

#[test]
fn pinned_addresses_are_honoured_and_never_handed_out_twice() {
    let mut w = world(Duration::ZERO);
    let mut a = gateway("nat-a", &["ip1"], 64);
    a.ips[0].addresses = vec!["203.0.113.1".parse().expect("addr")];
    let b = gateway("nat-b", &["ip1"], 64);
    w.apply(Object::NatGateway(b)).expect("gw");
    w.apply(Object::NatGateway(a)).expect("gw");
    w.reconcile(Instant::ZERO);
    let ip_of = |w: &World, name: &str| w.gateway_status(&key(name)).expect("status").ips[0].ips[0];
    assert_eq!(
        ip_of(&w, "nat-a"),
        "203.0.113.1".parse::<IpAddr>().expect("addr")
    );
    assert_eq!(
        ip_of(&w, "nat-b"),
        "203.0.113.2".parse::<IpAddr>().expect("addr")
    );
    let mut c = gateway("nat-c", &["ip1"], 64);
    c.ips[0].addresses = vec!["203.0.113.2".parse().expect("addr")];
    assert!(w.apply(Object::NatGateway(c)).is_err());
}
