//! Properties of the reconciler over random manifests and random change sequences.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Duration;

use natsim::api::{
    Block, DataplaneChange, IpFamily, Kind, LabelSelector, NatGateway, NatGatewayIp, Network,
    NetworkInterface, NicVirtualIp, Object, ObjectKey, Operator, Requirement, World, WorldConfig,
    slots_per_ip,
};
use natsim::time::Instant;
use proptest::prelude::*;

const NETWORKS: [&str; 2] = ["net", "other"];

fn labels_strategy() -> impl Strategy<Value = BTreeMap<String, String>> {
    (
        prop_oneof![Just(None), Just(Some("x")), Just(Some("y"))],
        any::<bool>(),
    )
        .prop_map(|(a, b)| {
            let mut l = BTreeMap::new();
            if let Some(v) = a {
                l.insert("a".to_owned(), v.to_owned());
            }
            if b {
                l.insert("b".to_owned(), "on".to_owned());
            }
            l
        })
}

fn families_strategy() -> impl Strategy<Value = Vec<IpFamily>> {
    prop_oneof![
        3 => Just(vec![IpFamily::IPv4]),
        1 => Just(vec![IpFamily::IPv6]),
        2 => Just(vec![IpFamily::IPv4, IpFamily::IPv6]),
    ]
}

fn nic_strategy(index: u32) -> impl Strategy<Value = NetworkInterface> {
    (
        labels_strategy(),
        families_strategy(),
        prop::sample::select(NETWORKS.to_vec()),
        prop::bool::weighted(0.1),
        prop::bool::weighted(0.1),
    )
        .prop_map(move |(labels, families, network, vip, deleting)| {
            let ips = families
                .iter()
                .map(|f| match f {
                    IpFamily::IPv4 => IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + index)),
                    IpFamily::IPv6 => IpAddr::from(std::net::Ipv6Addr::from(
                        0xfd00_u128 << 112 | u128::from(index),
                    )),
                })
                .collect();
            NetworkInterface {
                key: ObjectKey::in_default(format!("nic-{index:03}")),
                labels,
                network: network.to_owned(),
                ip_families: families,
                ips,
                virtual_ip: vip.then_some(NicVirtualIp::Ephemeral),
                deleting,
            }
        })
}

fn selector_strategy() -> impl Strategy<Value = Option<LabelSelector>> {
    prop_oneof![
        1 => Just(None),
        2 => Just(Some(LabelSelector::default())),
        2 => Just(Some(LabelSelector {
            match_labels: BTreeMap::from([("a".to_owned(), "x".to_owned())]),
            match_expressions: vec![],
        })),
        2 => Just(Some(LabelSelector {
            match_labels: BTreeMap::new(),
            match_expressions: vec![Requirement {
                key: "b".into(),
                operator: Operator::Exists,
                values: BTreeSet::new(),
            }],
        })),
    ]
}

/// P from 2048 (31 slots per IP) to 32768 (1 slot), so exhaustion happens often.
fn p_strategy() -> impl Strategy<Value = u32> {
    (11u32..=15).prop_map(|e| 1 << e)
}

fn gateway_strategy(index: usize) -> impl Strategy<Value = NatGateway> {
    (
        families_strategy(),
        prop::sample::select(NETWORKS.to_vec()),
        0usize..=3,
        p_strategy(),
        selector_strategy(),
    )
        .prop_map(
            move |(families, network, ip_count, p, selector)| NatGateway {
                key: ObjectKey::in_default(format!("nat-{index}")),
                ip_families: families,
                network: network.to_owned(),
                ips: (0..ip_count)
                    .map(|i| NatGatewayIp {
                        name: format!("ip{i}"),
                        addresses: vec![],
                    })
                    .collect(),
                ports_per_network_interface: p,
                selector,
            },
        )
}

fn objects_strategy() -> impl Strategy<Value = Vec<Object>> {
    let nics = (0usize..40).prop_flat_map(|n| (0..n as u32).map(nic_strategy).collect::<Vec<_>>());
    let gateways = (1usize..=3).prop_flat_map(|n| (0..n).map(gateway_strategy).collect::<Vec<_>>());
    (nics, gateways).prop_map(|(nics, gateways)| {
        let mut objects: Vec<Object> = NETWORKS
            .iter()
            .map(|n| {
                Object::Network(Network {
                    key: ObjectKey::in_default(*n),
                    prefixes: vec![],
                    routes: vec![],
                })
            })
            .collect();
        objects.extend(nics.into_iter().map(Object::NetworkInterface));
        objects.extend(gateways.into_iter().map(Object::NatGateway));
        objects
    })
}

#[derive(Clone, Debug)]
enum Op {
    AddNic(NetworkInterface),
    DeleteNic(usize),
    Relabel(usize, BTreeMap<String, String>),
    ToggleVirtualIp(usize),
    SetP(usize, u32),
    AddIp(usize),
    RemoveIp(usize),
    ReplaceGateway(NatGateway),
    DeleteGateway(usize),
    Advance(u64),
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (100u32..200).prop_flat_map(nic_strategy).prop_map(Op::AddNic),
        2 => any::<usize>().prop_map(Op::DeleteNic),
        2 => (any::<usize>(), labels_strategy()).prop_map(|(i, l)| Op::Relabel(i, l)),
        1 => any::<usize>().prop_map(Op::ToggleVirtualIp),
        1 => (any::<usize>(), p_strategy()).prop_map(|(i, p)| Op::SetP(i, p)),
        1 => any::<usize>().prop_map(Op::AddIp),
        1 => any::<usize>().prop_map(Op::RemoveIp),
        1 => (0usize..3).prop_flat_map(gateway_strategy).prop_map(Op::ReplaceGateway),
        1 => any::<usize>().prop_map(Op::DeleteGateway),
        2 => (0u64..200).prop_map(Op::Advance),
    ]
}

fn nth_key<V>(map: &BTreeMap<ObjectKey, V>, i: usize) -> Option<ObjectKey> {
    if map.is_empty() {
        return None;
    }
    map.keys().nth(i % map.len()).cloned()
}

/// Applies one op; errors (e.g. a name that is gone) are fine: the op is a no-op then.
fn apply(w: &mut World, op: &Op, now: &mut Instant) {
    let _ = match op {
        Op::AddNic(n) => w.apply(Object::NetworkInterface(n.clone())),
        Op::DeleteNic(i) => match nth_key(w.network_interfaces(), *i) {
            Some(k) => w.delete(Kind::NetworkInterface, &k),
            None => Ok(()),
        },
        Op::Relabel(i, l) => match nth_key(w.network_interfaces(), *i) {
            Some(k) => w.set_labels(&k, l.clone()),
            None => Ok(()),
        },
        Op::ToggleVirtualIp(i) => match nth_key(w.network_interfaces(), *i) {
            Some(k) => {
                let has = w
                    .network_interfaces()
                    .get(&k)
                    .and_then(|n| n.virtual_ip.clone());
                w.set_virtual_ip(
                    &k,
                    if has.is_some() {
                        None
                    } else {
                        Some(NicVirtualIp::Ephemeral)
                    },
                )
            }
            None => Ok(()),
        },
        Op::SetP(i, p) => match nth_key(w.gateways(), *i) {
            Some(k) => w.set_ports_per_network_interface(&k, *p),
            None => Ok(()),
        },
        Op::AddIp(i) => match nth_key(w.gateways(), *i) {
            Some(k) => {
                let n = w.gateways().get(&k).map_or(0, |g| g.ips.len());
                w.add_gateway_ip(
                    &k,
                    NatGatewayIp {
                        name: format!("extra{n}"),
                        addresses: vec![],
                    },
                )
            }
            None => Ok(()),
        },
        Op::RemoveIp(i) => match nth_key(w.gateways(), *i) {
            Some(k) => {
                let first = w
                    .gateways()
                    .get(&k)
                    .and_then(|g| g.ips.first())
                    .map(|ip| ip.name.clone());
                match first {
                    Some(name) => w.remove_gateway_ip(&k, &name),
                    None => Ok(()),
                }
            }
            None => Ok(()),
        },
        Op::ReplaceGateway(g) => w.apply(Object::NatGateway(g.clone())),
        Op::DeleteGateway(i) => match nth_key(w.gateways(), *i) {
            Some(k) => w.delete(Kind::NatGateway, &k),
            None => Ok(()),
        },
        Op::Advance(s) => {
            *now = Instant::from_secs(now.as_millis() / 1000 + s);
            Ok(())
        }
    };
}

/// Whether `gw` (as desired now) selects `nic` for `family` (behaviour §3, without conflicts).
fn selects(w: &World, gw: &ObjectKey, nic: &ObjectKey, family: IpFamily) -> bool {
    let (Some(g), Some(n)) = (w.gateways().get(gw), w.network_interfaces().get(nic)) else {
        return false;
    };
    g.has_family(family)
        && n.network == g.network
        && !n.deleting
        && n.virtual_ip.is_none()
        && n.address(family).is_some()
        && g.selector.as_ref().is_some_and(|s| s.matches(&n.labels))
}

fn block_map(w: &World) -> BTreeMap<(ObjectKey, IpFamily), Block> {
    w.blocks()
        .into_iter()
        .map(|(nic, b)| ((nic, b.family), b))
        .collect()
}

/// Blocks are inside 1024–65535, exactly P long, and never overlap on one address.
fn assert_disjoint(w: &World) -> Result<(), TestCaseError> {
    let mut by_ip: BTreeMap<IpAddr, Vec<(u16, u16, ObjectKey)>> = BTreeMap::new();
    for (nic, b) in w.blocks() {
        prop_assert!(b.port >= 1024 && b.port <= b.end_port);
        let p = w
            .gateways()
            .get(&b.gateway)
            .map(|g| g.ports_per_network_interface);
        if let Some(p) = p {
            prop_assert_eq!(u32::from(b.end_port - b.port) + 1, p);
        }
        by_ip
            .entry(b.ip)
            .or_default()
            .push((b.port, b.end_port, nic));
    }
    for (ip, mut ranges) in by_ip {
        ranges.sort();
        for pair in ranges.windows(2) {
            prop_assert!(pair[0].1 < pair[1].0, "overlap on {}: {:?}", ip, pair);
        }
    }
    Ok(())
}

/// From scratch, each gateway routes min(its selected NICs, IPs × slotsPerIP) per family,
/// where a NIC selected by several gateways counts for the first in (namespace, name) order.
fn expected_routed(objects: &[Object]) -> BTreeMap<(ObjectKey, IpFamily), usize> {
    let mut gateways: Vec<&NatGateway> = objects
        .iter()
        .filter_map(|o| match o {
            Object::NatGateway(g) => Some(g),
            _ => None,
        })
        .collect();
    gateways.sort_by(|a, b| a.key.cmp(&b.key));
    let mut claimed: BTreeSet<(ObjectKey, IpFamily)> = BTreeSet::new();
    let mut out = BTreeMap::new();
    for g in gateways {
        for &family in &g.ip_families {
            let mut selected = 0usize;
            for o in objects {
                let Object::NetworkInterface(n) = o else {
                    continue;
                };
                let eligible = n.network == g.network
                    && !n.deleting
                    && n.virtual_ip.is_none()
                    && n.address(family).is_some()
                    && g.selector.as_ref().is_some_and(|s| s.matches(&n.labels));
                if eligible && claimed.insert((n.key.clone(), family)) {
                    selected += 1;
                }
            }
            let capacity = g.ips.len() * slots_per_ip(g.ports_per_network_interface) as usize;
            out.insert((g.key.clone(), family), selected.min(capacity));
        }
    }
    out
}

proptest! {
    // 64 cases by default; PROPTEST_CASES=N runs a deeper campaign.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64),
        ..ProptestConfig::default()
    })]

    #[test]
    fn from_scratch_routes_min_of_selected_and_capacity(objects in objects_strategy()) {
        let mut w = World::from_objects(objects.clone(), WorldConfig::default()).expect("valid world");
        w.reconcile(Instant::ZERO);
        assert_disjoint(&w)?;
        for ((gw, family), want) in expected_routed(&objects) {
            prop_assert_eq!(w.routed_count(&gw, family), want, "{} {}", gw, family);
        }
    }

    #[test]
    fn result_is_independent_of_document_order(
        (objects, shuffled) in objects_strategy().prop_flat_map(|o| (Just(o.clone()), Just(o).prop_shuffle()))
    ) {
        let mut a = World::from_objects(objects, WorldConfig::default()).expect("valid world");
        let mut b = World::from_objects(shuffled, WorldConfig::default()).expect("valid world");
        let out_a = a.reconcile(Instant::ZERO);
        let out_b = b.reconcile(Instant::ZERO);
        prop_assert_eq!(out_a, out_b);
        prop_assert_eq!(a.blocks(), b.blocks());
        for key in a.gateways().keys() {
            prop_assert_eq!(a.gateway_status(key), b.gateway_status(key));
        }
    }

    #[test]
    fn change_sequences_keep_blocks_disjoint_sticky_and_the_diff_exact(
        objects in objects_strategy(),
        ops in prop::collection::vec(op_strategy(), 1..25),
        quarantine_s in prop_oneof![Just(0u64), Just(120u64)],
    ) {
        let config = WorldConfig { block_quarantine: Duration::from_secs(quarantine_s), ..WorldConfig::default() };
        let mut w = World::from_objects(objects, config).expect("valid world");
        let mut now = Instant::ZERO;
        w.reconcile(now);
        // (ip, first port) → (owner, released at) for quarantine checks.
        let mut released: BTreeMap<(IpAddr, u16), (ObjectKey, Instant)> = BTreeMap::new();
        for op in &ops {
            let before = block_map(&w);
            let gateways_before = w.gateways().clone();
            apply(&mut w, op, &mut now);
            let out = w.reconcile(now);
            assert_disjoint(&w)?;
            // Releases come before assignments.
            let first_assign = out.changes.iter().position(|c| matches!(c, DataplaneChange::BlockAssigned { .. }));
            if let Some(i) = first_assign {
                let all_assign = out.changes[i..].iter().all(|c| matches!(c, DataplaneChange::BlockAssigned { .. }));
                prop_assert!(all_assign, "release after an assignment: {:?}", out.changes);
            }
            // Replaying the diff on the old blocks gives the new blocks.
            let mut replay: BTreeMap<(ObjectKey, IpFamily), (IpAddr, u16, u16)> =
                before.iter().map(|(k, b)| (k.clone(), (b.ip, b.port, b.end_port))).collect();
            for c in &out.changes {
                match c {
                    DataplaneChange::BlockReleased { nic, family, ip, port, end_port } => {
                        let gone = replay.remove(&(nic.clone(), *family));
                        prop_assert_eq!(gone, Some((*ip, *port, *end_port)));
                        released.insert((*ip, *port), (nic.clone(), now));
                    }
                    DataplaneChange::BlockAssigned { nic, family, ip, port, end_port } => {
                        prop_assert!(replay.insert((nic.clone(), *family), (*ip, *port, *end_port)).is_none());
                        // Quarantine: nobody else gets a released block within the quarantine.
                        for ((rip, rport), (owner, at)) in &released {
                            if rip == ip && *rport >= *port && *rport <= *end_port && owner != nic {
                                prop_assert!(now - *at >= Duration::from_secs(quarantine_s),
                                    "{} got {}:{} released by {} at {} (now {})", nic, ip, rport, owner, at, now);
                            }
                        }
                    }
                }
            }
            let after: BTreeMap<(ObjectKey, IpFamily), (IpAddr, u16, u16)> =
                block_map(&w).into_iter().map(|(k, b)| (k, (b.ip, b.port, b.end_port))).collect();
            prop_assert_eq!(&replay, &after);
            // Sticky: when no gateway changed, a NIC keeps its block while the same gateway
            // holds it, and moves to another gateway only if the old one stopped selecting it.
            if gateways_before == *w.gateways() {
                let after_blocks = block_map(&w);
                for ((nic, family), b) in &before {
                    let Some(now_b) = after_blocks.get(&(nic.clone(), *family)) else { continue };
                    if now_b.gateway == b.gateway {
                        prop_assert_eq!(b, now_b);
                    } else {
                        prop_assert!(!selects(&w, &b.gateway, nic, *family),
                            "{} moved from {} to {} although {} still selects it", nic, b.gateway, now_b.gateway, b.gateway);
                    }
                }
            }
            // With no quarantine, nothing waits while a slot is free.
            if quarantine_s == 0 {
                for key in w.gateways().keys() {
                    if let Some(st) = w.gateway_status(key) {
                        for a in st.allocation {
                            prop_assert_eq!(a.allocated as u64, (a.requested as u64).min(a.capacity));
                        }
                    }
                }
            }
        }
    }
}
