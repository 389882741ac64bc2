//! Generated worlds: `seed + features → scenario document`. The generator writes an ordinary
//! [`ScenarioFile`] (the same type `natsim run` reads), so a generated world is inspected,
//! minimised and replayed exactly like a hand-written scenario.
//!
//! Every section (topology, gateway, traffic, attacks, faults) draws from its own ChaCha8
//! stream, so switching one feature off does not reshuffle the others' draws. Generated
//! scenarios carry no expectations: the invariant checker (behaviour §6) is the oracle.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_saphyr::{Location, Spanned};

use super::features::{Families, Features};
use crate::nat::config::PORTS_PER_IP;
use crate::nat::{NicId, Profile, port_start_offset};
use crate::rng::Rng;
use crate::scenario::schema::*;
use crate::scenario::schema::{LabelExpression, LabelOperator, LabelSelector};
use crate::sim::engine::stream_of;
use crate::sim::link::{LinkConfig, Ratio};
use crate::sim::tcp::CloseMode;
use crate::wire::parse::proto::UDP;

mod adversity;
mod traffic;
mod world;

use adversity::{attack_items, fault_items};
use traffic::{FlowRef, generator_items, traffic_items};
use world::{GatewayPlan, NicPlan, gateway_doc, gateway_plan, nic_plans, topology_doc};

/// Events a generated run may take before it counts as a bound hit (exit 5). Generated
/// traffic stays far below this; hitting it means the simulator or gateway loops.
pub const MAX_EVENTS: u64 = 3_000_000;

/// The gateway's network and the one the gateway never serves.
const NET_A: &str = "net-a";
const NET_B: &str = "net-b";

fn spanned<T>(value: T) -> Spanned<T> {
    Spanned::new(value, Location::UNKNOWN, Location::UNKNOWN)
}

/// A thin layer of helpers over one section's random stream.
struct Draw(Rng);

impl Draw {
    fn new(seed: u64, section: &str) -> Draw {
        Draw(Rng::new(seed, stream_of(&format!("swarm/world/{section}"))))
    }
    fn chance(&mut self, num: u64, den: u64) -> bool {
        self.0.chance(num, den)
    }
    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.0.below(hi.saturating_sub(lo) + 1)
    }
    fn index(&mut self, len: usize) -> usize {
        self.0.below(len as u64) as usize
    }
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.index(items.len())]
    }
}

/// Makes UDP requests and responses larger than the default 1,500-byte MTU, so that hosts send
/// them in fragments. Draws from its own stream: the rest of the world stays as it was.
fn oversize_udp(d: &mut Draw, topology: &mut Topology, traffic: &mut [TrafficItem]) {
    for item in traffic.iter_mut() {
        if let Some(udp) = item.udp.as_mut() {
            udp.request_bytes = d.range(1_500, 4_000);
        }
    }
    for remote in topology.remotes.iter_mut() {
        for svc in remote.value.services.iter_mut() {
            if matches!(svc.protocol, ProtoDoc::Udp) && !svc.stun && svc.response_bytes > 0 {
                svc.response_bytes = d.range(1_500, 4_000);
            }
        }
    }
}

/// Takes the victim NIC's link down around each RST injected from the remote, so the RST passes
/// the gateway but never reaches the endpoint, which goes on (docs/behaviour.md §4: such an
/// RST must not shorten the connection).
fn lose_rsts(attacks: &[AttackItem], traffic: &[TrafficItem], faults: &mut Vec<FaultItem>) {
    for a in attacks {
        let Some(r) = a.rst_inject.as_ref().filter(|r| r.from_remote) else {
            continue;
        };
        let Some(t) = traffic.iter().find(|t| t.name == r.flow) else {
            continue;
        };
        let link = format!("nic/{}", t.from);
        let mut down = adversity::fault(a.at_ms.saturating_sub(20));
        down.link_down = Some(link.clone());
        let mut up = adversity::fault(a.at_ms + 100);
        up.link_up = Some(link);
        faults.push(down);
        faults.push(up);
    }
    faults.sort_by_key(|f| f.at_ms);
}

/// A remote host of the fixed internet: name, IPv4 address, IPv6 address.
#[derive(Clone, Copy)]
struct Remote {
    name: &'static str,
    v4: &'static str,
    v6: &'static str,
}

const WEB: Remote = Remote {
    name: "web",
    v4: "198.51.100.10",
    v6: "2001:db8:100::10",
};
const WEB2: Remote = Remote {
    name: "web2",
    v4: "198.51.100.20",
    v6: "2001:db8:100::20",
};
const EVIL: Remote = Remote {
    name: "evil",
    v4: "192.0.2.66",
    v6: "2001:db8:bad::66",
};

/// Closed ports on `web`: TCP answers RST, UDP an ICMP port unreachable (an ICMP error that
/// the gateway must translate back, RFC 5508).
const CLOSED_TCP_PORT: u16 = 8080;
const CLOSED_UDP_PORT: u16 = 7777;
/// `web` discards datagrams to this port (a one-way stream).
const SINK_UDP_PORT: u16 = 9;
/// `evil` discards datagrams to this port (targets for spoofed replies).
const EVIL_UDP_PORT: u16 = 5000;

/// `host:port` with IPv6 in brackets.
fn endpoint(addr: &str, port: u16) -> String {
    if addr.contains(':') {
        format!("[{addr}]:{port}")
    } else {
        format!("{addr}:{port}")
    }
}

/// The outside remote every generated world has, for adversaries (`evil`, two IPv4 addresses
/// and one IPv6 address, a UDP sink on 5000).
pub const ADVERSARY: &str = EVIL.name;

/// An attack list item from remote `from` at `at_ms` with no attack set yet (the caller sets
/// one), for harnesses that add their own adversaries to a generated world.
pub fn attack_item(name: String, at_ms: u64, from: &str) -> Spanned<AttackItem> {
    spanned(adversity::attack(name, at_ms, from))
}

fn ip(s: &str) -> IpAddr {
    // Only called on the literals and formatted addresses of this module.
    s.parse()
        .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
}

/// Generates the world for `seed` with the given features.
pub fn generate(seed: u64, f: &Features) -> ScenarioFile {
    let mut topo = Draw::new(seed, "topology");
    let duration_ms = topo.pick(&[3_000u64, 6_000, 10_000, 20_000]);
    let mut gw = gateway_plan(&mut Draw::new(seed, "gateway-plan"), f, seed);
    let (nics, nodes) = nic_plans(&mut topo, f, &gw);
    let topology = topology_doc(&mut topo, f, &nics, nodes);
    let mut gateway = gateway_doc(&mut Draw::new(seed, "gateway"), f, &gw);
    if f.small_table {
        gateway.max_flows = Some(Draw::new(seed, "small-table").range(2, 9) as u32);
    }
    if f.lost_rst {
        // Drawn from its own stream, so the rest of the world stays as it was.
        let ms = Draw::new(seed, "lost-rst").range(500, 1_500);
        gateway
            .overrides
            .insert("timeout_tcp_transitory_ms".into(), ms.into());
    }
    let overrides = gateway.overrides.clone().into_iter().collect();
    gw.last_port_unusable = Profile::named(&gateway.profile)
        .and_then(|p| p.with_overrides(&overrides).ok())
        .is_some_and(|p| p.last_port_unusable);
    let mut topology = topology;
    let mut tr = Draw::new(seed, "traffic");
    let (mut traffic, flows) = traffic_items(&mut tr, f, &gw, &nics, duration_ms);
    unshare_sockets(&mut traffic);
    if f.fragments {
        oversize_udp(
            &mut Draw::new(seed, "fragments"),
            &mut topology,
            &mut traffic,
        );
    }
    let generators = generator_items(
        &mut Draw::new(seed, "generators"),
        f,
        &gw,
        &nics,
        duration_ms,
    );
    let mut attacks = attack_items(
        &mut Draw::new(seed, "attacks"),
        f,
        &gw,
        &nics,
        &flows,
        duration_ms,
    );
    if f.icmp_outer_destination {
        // Its own stream, so the other attacks of every seed stay as they were.
        attacks.extend(adversity::readdressed_icmp(
            &mut Draw::new(seed, "icmp-outer-destination"),
            &gw,
            &flows,
        ));
    }
    let mut faults = fault_items(
        &mut Draw::new(seed, "faults"),
        f,
        &gw,
        &nics,
        nodes,
        duration_ms,
    );
    if f.lost_rst {
        lose_rsts(&attacks, &traffic, &mut faults);
    }
    ScenarioFile {
        api_version: API_VERSION.into(),
        kind: "Scenario".into(),
        metadata: Metadata {
            name: format!("swarm-{seed}"),
            description: format!("generated by natsim swarm: features {f}"),
            covers: vec!["swarm".into()],
        },
        seed,
        limits: LimitsDoc {
            max_events: MAX_EVENTS,
            duration_ms: Some(duration_ms + 5_000),
            ..LimitsDoc::default()
        },
        topology,
        gateway: Some(gateway),
        manifests: None,
        traffic: traffic.into_iter().map(spanned).collect(),
        generators: generators.into_iter().map(spanned).collect(),
        attacks: attacks.into_iter().map(spanned).collect(),
        faults: faults.into_iter().map(spanned).collect(),
        packets: Vec::new(),
        expect: Expectations::default(),
        capture: Vec::new(),
    }
}

/// One line of the derived parameters of a scenario document (read back from the document, so
/// it also describes a minimised one).
pub fn describe(doc: &ScenarioFile) -> String {
    let t = &doc.topology;
    let gw = doc.gateway.as_ref();
    let scope = gw
        .and_then(|g| g.overrides.get("limit_scope"))
        .and_then(|v| v.as_str())
        .unwrap_or("profile");
    let selector = match gw.and_then(|g| g.selector.as_ref()) {
        None => "none",
        Some(s) if s.match_labels.is_empty() && s.match_expressions.is_empty() => "all",
        Some(s) if !s.match_expressions.is_empty() => "expression",
        Some(_) => "labels",
    };
    format!(
        "nics={} nodes={} P={} ips={} families={} profile={} scope={} selector={} traffic={} generators={} attacks={} faults={} duration_ms={}",
        t.nics.len(),
        t.nodes,
        gw.map_or(0, |g| g.ports_per_nic),
        gw.map_or(0, |g| g.ips.len()),
        gw.map_or(String::new(), |g| g.ip_families.join("+")),
        gw.map_or("none", |g| g.profile.as_str()),
        scope,
        selector,
        doc.traffic.len(),
        doc.generators.len(),
        doc.attacks.len(),
        doc.faults.len(),
        doc.limits.duration_ms.unwrap_or(0),
    )
}

/// Scenario loading refuses two applications that would share one socket (same host,
/// protocol, fixed port and peer, surely open at once: `scenario::load`), so a drawn fixed
/// port that would collide is dropped (the item takes an ephemeral port). No draw changes,
/// so worlds without a collision stay byte-identical.
fn unshare_sockets(traffic: &mut [TrafficItem]) {
    // (from, protocol, port, peer, start, earliest end) of the items kept so far.
    let mut open: Vec<(String, u8, u16, String, u64, u64)> = Vec::new();
    for it in traffic.iter_mut() {
        let (at, from) = (it.at_ms, it.from.clone());
        let claim = if let Some(t) = it.tcp.as_mut() {
            t.src_port.map(|p| (6, p, t.to.clone(), t.hold_ms))
        } else if let Some(u) = it.udp.as_mut() {
            let life = u64::from(u.count.saturating_sub(1)).saturating_mul(u.interval_ms);
            u.src_port.map(|p| (17, p, u.to.clone(), life))
        } else if let Some(p) = it.ping.as_mut() {
            let life = u64::from(p.count.saturating_sub(1)).saturating_mul(p.interval_ms);
            p.ident.map(|i| (1, i, p.to.clone(), life))
        } else {
            None
        };
        let Some((proto, port, to, life)) = claim else {
            continue;
        };
        let end = at.saturating_add(life);
        let clash = open.iter().any(|(f, pr, po, peer, s, e)| {
            *f == from
                && *pr == proto
                && *po == port
                && *peer == to
                && (at == *s || (at > *s && at < *e) || (*s > at && *s < end))
        });
        if clash {
            if let Some(t) = it.tcp.as_mut() {
                t.src_port = None;
            } else if let Some(u) = it.udp.as_mut() {
                u.src_port = None;
            } else if let Some(p) = it.ping.as_mut() {
                p.ident = None;
            }
        } else {
            open.push((from, proto, port, to, at, end));
        }
    }
}
