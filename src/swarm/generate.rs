//! Generated worlds: `seed + features → scenario document`. The generator writes an ordinary
//! [`ScenarioFile`] (the same type `natsim run` reads), so a generated world is inspected,
//! minimised and replayed exactly like a hand-written scenario.
//!
//! Every section (topology, gateway, traffic, attacks, faults) draws from its own ChaCha8
//! stream, so switching one feature off does not reshuffle the others' draws. Generated
//! scenarios carry no expectations: the invariant checker (SPEC §6) is the oracle.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_saphyr::{Location, Spanned};

use super::features::{Families, Features};
use crate::nat::config::PORTS_PER_IP;
use crate::nat::{NicId, Profile, port_start_offset};
use crate::rng::Rng;
use crate::scenario::schema::*;
use crate::sim::engine::stream_of;
use crate::sim::link::{LinkConfig, Ratio};
use crate::sim::selector::{LabelExpression, LabelOperator, LabelSelector};
use crate::sim::tcp::CloseMode;
use crate::wire::parse::proto::UDP;

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

fn ip(s: &str) -> IpAddr {
    // Only called on the literals and formatted addresses of this module.
    s.parse()
        .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
}

/// What the generator knows about a NIC while building traffic for it.
#[derive(Clone, Debug)]
struct NicPlan {
    name: String,
    namespace: String,
    network: &'static str,
    v4: Option<String>,
    v6: Option<String>,
    labels: BTreeMap<String, String>,
    node: u16,
    virtual_ip: bool,
    present: bool,
}

impl NicPlan {
    /// One of its address families, drawn.
    fn family(&self, d: &mut Draw) -> bool {
        match (&self.v4, &self.v6) {
            (Some(_), Some(_)) => d.chance(1, 2),
            (Some(_), None) => true,
            _ => false,
        }
    }
    fn addr(&self, v4: bool) -> Option<&str> {
        if v4 {
            self.v4.as_deref()
        } else {
            self.v6.as_deref()
        }
    }
}

/// How the gateway selects NICs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SelectorKind {
    All,
    Labels,
    Expression,
    Absent,
}

impl SelectorKind {
    fn doc(self) -> Option<LabelSelector> {
        match self {
            SelectorKind::All => Some(LabelSelector::default()),
            SelectorKind::Labels => Some(LabelSelector {
                match_labels: [("nat".to_string(), "enabled".to_string())].into(),
                match_expressions: Vec::new(),
            }),
            SelectorKind::Expression => Some(LabelSelector {
                match_labels: BTreeMap::new(),
                match_expressions: vec![LabelExpression {
                    key: "tier".into(),
                    operator: LabelOperator::In,
                    values: vec!["web".into(), "db".into()],
                }],
            }),
            SelectorKind::Absent => None,
        }
    }
    /// Labels that this selector selects (`true`) or not.
    fn labels(self, selected: bool) -> BTreeMap<String, String> {
        let (k, v) = match (self, selected) {
            (SelectorKind::Expression, true) => ("tier", "web"),
            (SelectorKind::Expression, false) => ("tier", "batch"),
            (_, true) => ("nat", "enabled"),
            (_, false) => ("nat", "disabled"),
        };
        [(k.to_string(), v.to_string())].into()
    }
    fn selects(self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            SelectorKind::All => true,
            SelectorKind::Absent => false,
            SelectorKind::Labels => labels.get("nat").is_some_and(|v| v == "enabled"),
            SelectorKind::Expression => labels.get("tier").is_some_and(|v| v == "web" || v == "db"),
        }
    }
}

/// The gateway as the traffic generator sees it.
struct GatewayPlan {
    families: Families,
    ips: u64,
    ports_per_nic: u32,
    selector: SelectorKind,
    /// The run seed (the gateway seeds its port choice with it).
    seed: u64,
    /// The profile keeps the last port of each block unused (dpservice).
    last_port_unusable: bool,
}

impl GatewayPlan {
    fn nat_addr(k: u64, v4: bool) -> String {
        if v4 {
            format!("203.0.113.{k}")
        } else {
            format!("2001:db8:ffff::{k}")
        }
    }
    fn ip_doc(&self, k: u64) -> IpDoc {
        let mut addresses = Vec::new();
        if self.families.v4() {
            addresses.push(ip(&Self::nat_addr(k, true)));
        }
        if self.families.v6() {
            addresses.push(ip(&Self::nat_addr(k, false)));
        }
        IpDoc {
            name: format!("ip{k}"),
            addresses,
        }
    }
    /// A NAT address of a family the gateway serves.
    fn some_nat_addr(&self, d: &mut Draw) -> String {
        let v4 = match self.families {
            Families::V4 => true,
            Families::V6 => false,
            Families::Dual => d.chance(1, 2),
        };
        Self::nat_addr(d.range(1, self.ips), v4)
    }
    /// Where the allocator puts the NICs selected at the start (SPEC §3: (namespace, name)
    /// order, lowest free slot on the first IP with room): NIC name → (ip number, first port,
    /// dataplane NIC id).
    fn expected_blocks(&self, nics: &[NicPlan], v4: bool) -> BTreeMap<String, (u64, u32, u32)> {
        let mut selected: Vec<(usize, &NicPlan)> = nics
            .iter()
            .enumerate()
            .filter(|(_, n)| {
                n.present
                    && !n.virtual_ip
                    && n.network == NET_A
                    && n.addr(v4).is_some()
                    && self.selector.selects(&n.labels)
            })
            .collect();
        selected.sort_by(|(_, a), (_, b)| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        let per_ip = u64::from(PORTS_PER_IP / self.ports_per_nic);
        selected
            .iter()
            .enumerate()
            .filter_map(|(s, (id, n))| {
                let s = s as u64;
                let ip_k = s / per_ip + 1;
                let port = 1024 + (s % per_ip) * u64::from(self.ports_per_nic);
                (ip_k <= self.ips).then(|| (n.name.clone(), (ip_k, port as u32, *id as u32)))
            })
            .collect()
    }

    /// The NAT port a NIC's first UDP flow from `inside` gets: the gateway's documented start
    /// point in the block (SPEC §4, [`port_start_offset`]), free because nothing else of the
    /// NIC is assumed to run.
    fn first_port(&self, block_port: u32, nic_id: u32, inside: IpAddr, src_port: u16) -> u32 {
        let p = self.ports_per_nic;
        let usable = if self.last_port_unusable && p > 1 {
            p - 1
        } else {
            p
        };
        let off = port_start_offset(self.seed, NicId(nic_id), UDP, inside, src_port, usable);
        block_port + u32::from(off)
    }
}

/// A scripted NIC flow that attacks may aim at: name, start, remote, protocol is TCP.
struct FlowRef {
    name: String,
    at_ms: u64,
    remote: &'static str,
    tcp: bool,
}

/// Generates the world for `seed` with the given features.
pub fn generate(seed: u64, f: &Features) -> ScenarioFile {
    let mut topo = Draw::new(seed, "topology");
    let duration_ms = topo.pick(&[3_000u64, 6_000, 10_000, 20_000]);
    let mut gw = gateway_plan(&mut Draw::new(seed, "gateway-plan"), f, seed);
    let (nics, nodes) = nic_plans(&mut topo, f, &gw);
    let topology = topology_doc(&mut topo, f, &nics, nodes);
    let gateway = gateway_doc(&mut Draw::new(seed, "gateway"), f, &gw);
    let overrides = gateway.overrides.clone().into_iter().collect();
    gw.last_port_unusable = Profile::named(&gateway.profile)
        .and_then(|p| p.with_overrides(&overrides).ok())
        .is_some_and(|p| p.last_port_unusable);
    let mut tr = Draw::new(seed, "traffic");
    let (traffic, flows) = traffic_items(&mut tr, f, &gw, &nics, duration_ms);
    let generators = generator_items(
        &mut Draw::new(seed, "generators"),
        f,
        &gw,
        &nics,
        duration_ms,
    );
    let attacks = attack_items(
        &mut Draw::new(seed, "attacks"),
        f,
        &gw,
        &nics,
        &flows,
        duration_ms,
    );
    let faults = fault_items(
        &mut Draw::new(seed, "faults"),
        f,
        &gw,
        &nics,
        nodes,
        duration_ms,
    );
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
        expect: Expectations::default(),
        capture: Vec::new(),
    }
}

fn gateway_plan(d: &mut Draw, f: &Features, seed: u64) -> GatewayPlan {
    let ports_per_nic = if f.scarce_blocks {
        d.pick(&[16_384u32, 32_768])
    } else if f.pressure {
        // Exhaustion within a few flows.
        1 << d.range(0, 2)
    } else {
        1 << d.range(0, 6)
    };
    let selector = if f.relabel {
        d.pick(&[SelectorKind::Labels, SelectorKind::Expression])
    } else if d.chance(1, 25) {
        SelectorKind::Absent
    } else {
        d.pick(&[
            SelectorKind::All,
            SelectorKind::All,
            SelectorKind::All,
            SelectorKind::Labels,
            SelectorKind::Expression,
        ])
    };
    GatewayPlan {
        families: f.families,
        ips: d.range(1, 3),
        ports_per_nic,
        selector,
        seed,
        last_port_unusable: false,
    }
}

fn nic_plans(d: &mut Draw, f: &Features, gw: &GatewayPlan) -> (Vec<NicPlan>, u16) {
    let nodes = if f.distributed { d.range(2, 3) } else { 1 } as u16;
    // Hairpinning needs two NICs.
    let count = d.range(if f.hairpin { 2 } else { 1 }, 6);
    let mut nics = Vec::new();
    let mut add = |d: &mut Draw, name: String, network: &'static str, host: u64| {
        let (p4, p6) = if network == NET_A {
            ("10.0.0", "fd00:")
        } else {
            ("10.1.0", "fd01:")
        };
        let (mut v4, mut v6) = (f.families.v4(), f.families.v6());
        // Dual-stack worlds also hold single-stack NICs.
        if f.families == Families::Dual && d.chance(1, 4) {
            if d.chance(1, 2) {
                v4 = false;
            } else {
                v6 = false;
            }
        }
        let selected = !d.chance(1, 5);
        let mut labels = gw.selector.labels(selected);
        labels.insert("app".into(), d.pick(&["api", "batch"]).into());
        nics.push(NicPlan {
            name,
            namespace: if d.chance(1, 4) { "team-b" } else { "default" }.into(),
            network,
            v4: v4.then(|| format!("{p4}.{host}")),
            v6: v6.then(|| format!("{p6}:{host:x}")),
            labels,
            node: d.range(0, u64::from(nodes) - 1) as u16,
            virtual_ip: f.virtual_ip && d.chance(1, 4),
            present: !(f.nic_churn && d.chance(1, 4)),
        });
    };
    for i in 0..count {
        add(d, format!("vm-{i}"), NET_A, 10 + i);
    }
    if f.second_network {
        for i in 0..d.range(1, 2) {
            add(d, format!("other-{i}"), NET_B, 10 + i);
        }
    }
    (nics, nodes)
}

fn link(d: &mut Draw, f: &Features) -> LinkConfig {
    let ratio = |s: &str| s.parse::<Ratio>().unwrap_or(Ratio::NEVER);
    let mut l = LinkConfig {
        delay_us: d.pick(&[10, 50, 500, 5_000]),
        ..LinkConfig::default()
    };
    if f.loss && d.chance(1, 2) {
        l.loss = ratio(d.pick(&["1/100", "1/30", "1/10"]));
    }
    if f.duplicate && d.chance(1, 2) {
        l.duplicate = ratio(d.pick(&["1/100", "1/20", "1/5"]));
    }
    if f.reorder && d.chance(1, 2) {
        l.reorder = ratio(d.pick(&["1/50", "1/10"]));
        l.reorder_delay_us = d.range(200, 3_000);
        l.jitter_us = d.range(0, 500);
    }
    l
}

fn topology_doc(d: &mut Draw, f: &Features, nics: &[NicPlan], nodes: u16) -> Topology {
    let mut networks = vec![NetworkDoc {
        name: NET_A.into(),
        prefixes: vec!["10.0.0.0/24".into(), "fd00::/64".into()],
        routes: Vec::new(),
    }];
    if f.second_network {
        networks.push(NetworkDoc {
            name: NET_B.into(),
            prefixes: vec!["10.1.0.0/24".into(), "fd01::/64".into()],
            routes: Vec::new(),
        });
    }
    let nic_docs = nics
        .iter()
        .map(|n| {
            spanned(NicDoc {
                name: n.name.clone(),
                namespace: n.namespace.clone(),
                network: n.network.into(),
                addresses: n.v4.iter().chain(n.v6.iter()).map(|a| ip(a)).collect(),
                labels: n.labels.clone(),
                node: n.node,
                virtual_ip: n.virtual_ip,
                present: n.present,
                link: None,
            })
        })
        .collect();
    let svc = |protocol, port, response_bytes| ServiceDoc {
        protocol,
        port,
        response_bytes,
        stun: false,
    };
    let remote = |r: Remote, extra: &[&str], services: Vec<ServiceDoc>| {
        let mut addresses = vec![ip(r.v4)];
        addresses.extend(extra.iter().map(|a| ip(a)));
        addresses.push(ip(r.v6));
        spanned(RemoteDoc {
            name: r.name.into(),
            addresses,
            services,
            link: None,
        })
    };
    let mut remotes = vec![
        remote(
            WEB,
            &[],
            vec![
                svc(ProtoDoc::Tcp, 80, d.range(200, 3_000)),
                svc(ProtoDoc::Tcp, 81, 100),
                svc(ProtoDoc::Udp, 53, 80),
                svc(ProtoDoc::Udp, SINK_UDP_PORT, 0),
            ],
        ),
        remote(
            WEB2,
            &[],
            vec![svc(ProtoDoc::Tcp, 80, 800), svc(ProtoDoc::Udp, 53, 40)],
        ),
        remote(
            EVIL,
            &["192.0.2.67"],
            vec![svc(ProtoDoc::Udp, EVIL_UDP_PORT, 0)],
        ),
    ];
    if f.probe {
        remotes.push(spanned(RemoteDoc {
            name: "stun".into(),
            addresses: vec![ip("198.51.100.50"), ip("198.51.100.51")],
            services: [3478, 3479]
                .into_iter()
                .map(|port| ServiceDoc {
                    protocol: ProtoDoc::Udp,
                    port,
                    response_bytes: 0,
                    stun: true,
                })
                .collect(),
            link: None,
        }));
    }
    Topology {
        networks,
        nodes,
        nics: nic_docs,
        nic_groups: Vec::new(),
        remotes,
        links: LinkDefaults {
            access: link(d, f),
            uplink: link(d, f),
            remote: link(d, f),
        },
    }
}

fn gateway_doc(d: &mut Draw, f: &Features, gw: &GatewayPlan) -> GatewayDoc {
    let mut overrides = BTreeMap::new();
    let mut set = |k: &str, v: serde_json::Value| {
        overrides.insert(k.to_string(), v);
    };
    if d.chance(1, 2) {
        set(
            "limit_scope",
            d.pick(&["remote-ip", "remote-endpoint", "nic"]).into(),
        );
    }
    if f.short_timers {
        set("timeout_udp_ms", d.range(300, 3_000).into());
        set("timeout_udp_stream_ms", d.range(300, 3_000).into());
        set("timeout_icmp_ms", d.range(300, 3_000).into());
        set("timeout_tcp_transitory_ms", d.range(1_000, 4_000).into());
        set("timeout_tcp_established_ms", d.range(2_000, 8_000).into());
        set("hold_udp_ms", d.range(0, 1_000).into());
        set("hold_tcp_fin_ms", d.range(0, 2_000).into());
    }
    for key in [
        "echo_reply_to_nat_ip",
        "icmp_unreachable_on_unsolicited",
        "icmp_unreachable_on_exhaustion",
        "tcp_midstream_pickup",
        "udp_inbound_refresh",
        "last_port_unusable",
    ] {
        if d.chance(1, 6) {
            set(key, d.chance(1, 2).into());
        }
    }
    let families = [(gw.families.v4(), "IPv4"), (gw.families.v6(), "IPv6")]
        .into_iter()
        .filter(|(on, _)| *on)
        .map(|(_, n)| n.to_string())
        .collect();
    GatewayDoc {
        network: NET_A.into(),
        ip_families: families,
        ips: (1..=gw.ips).map(|k| gw.ip_doc(k)).collect(),
        ports_per_nic: gw.ports_per_nic,
        selector: gw.selector.doc(),
        profile: d
            .pick(&["rfc", "dpservice", "gcp", "aws", "azure", "linux"])
            .into(),
        overrides,
        block_quarantine_ms: d.pick(&[0, 500, 2_000, 120_000]),
        max_flows: None,
        nat64: false,
    }
}

fn item(name: String, at_ms: u64, from: &str) -> TrafficItem {
    TrafficItem {
        name,
        at_ms,
        from: from.into(),
        tcp: None,
        udp: None,
        ping: None,
        probe: None,
    }
}

fn tcp_doc(d: &mut Draw, to: String) -> TcpDoc {
    let hold_ms = d.pick(&[0, 0, 500, 2_000, 5_000]);
    TcpDoc {
        to,
        request_bytes: d.range(50, 500),
        expect_bytes: 0,
        hold_ms,
        keepalive_ms: if hold_ms > 0 && d.chance(1, 2) {
            d.range(200, 1_000)
        } else {
            0
        },
        close: d.pick(&[
            CloseMode::Fin,
            CloseMode::Fin,
            CloseMode::Fin,
            CloseMode::Rst,
            CloseMode::None,
        ]),
        src_port: d.chance(1, 4).then(|| 4000 + d.range(0, 3) as u16),
        rto_ms: 200,
        max_retries: d.range(2, 6) as u32,
    }
}

fn udp_doc(d: &mut Draw, to: String, one_way: bool) -> UdpDoc {
    UdpDoc {
        to,
        request_bytes: d.range(20, 300),
        count: d.range(1, 5) as u32,
        interval_ms: d.range(50, 500),
        timeout_ms: if one_way { 0 } else { 500 },
        retries: d.range(0, 2) as u32,
        src_port: d.chance(1, 4).then(|| 4000 + d.range(0, 3) as u16),
    }
}

/// Scripted applications: NIC clients of every enabled protocol, outside clients, probes and
/// hairpin pairs. Returns the items and the NIC flows attacks may target.
fn traffic_items(
    d: &mut Draw,
    f: &Features,
    gw: &GatewayPlan,
    nics: &[NicPlan],
    duration_ms: u64,
) -> (Vec<TrafficItem>, Vec<FlowRef>) {
    let mut items = Vec::new();
    let mut flows = Vec::new();
    let mut protos = Vec::new();
    for (on, p) in [(f.tcp, 't'), (f.udp, 'u'), (f.icmp, 'p')] {
        if on {
            protos.push(p);
        }
    }
    let spread_ms = duration_ms * 2 / 3;
    for k in 0..d.range(2, 10) {
        let nic = &nics[d.index(nics.len())];
        let v4 = nic.family(d);
        let at_ms = d.range(0, spread_ms);
        let name = format!("t{k}");
        let mut it = item(name.clone(), at_ms, &nic.name);
        let remote = d.pick(&[WEB, WEB, WEB, WEB2, EVIL]);
        let raddr = if v4 { remote.v4 } else { remote.v6 };
        match d.pick(&protos) {
            't' => {
                let port = match (remote.name, d.range(0, 7)) {
                    ("web", 0) => CLOSED_TCP_PORT,
                    ("web", 1 | 2) => 81,
                    ("evil", _) => CLOSED_TCP_PORT,
                    _ => 80,
                };
                it.tcp = Some(tcp_doc(d, endpoint(raddr, port)));
                flows.push(FlowRef {
                    name,
                    at_ms,
                    remote: remote.name,
                    tcp: true,
                });
            }
            'u' => {
                let (port, one_way) = match (remote.name, d.range(0, 3)) {
                    ("web", 0) => (SINK_UDP_PORT, true),
                    ("web", 1) => (CLOSED_UDP_PORT, false),
                    ("evil", _) => (EVIL_UDP_PORT, true),
                    _ => (53, false),
                };
                it.udp = Some(udp_doc(d, endpoint(raddr, port), one_way));
                flows.push(FlowRef {
                    name,
                    at_ms,
                    remote: remote.name,
                    tcp: false,
                });
            }
            _ => {
                let to = if d.chance(1, 6) {
                    gw.some_nat_addr(d)
                } else {
                    raddr.to_string()
                };
                it.ping = Some(PingDoc {
                    to,
                    count: d.range(1, 4) as u32,
                    interval_ms: d.range(100, 500),
                    timeout_ms: 1_000,
                    ident: d.chance(1, 4).then(|| d.range(1, 3) as u16),
                });
            }
        }
        items.push(it);
    }
    if f.probe
        && let Some(nic) = nics.iter().find(|n| n.v4.is_some())
    {
        let mut it = item("probe".into(), d.range(0, spread_ms), &nic.name);
        it.probe = Some(ProbeDoc {
            server: "stun".into(),
            timeout_ms: 300,
            src_port: None,
        });
        items.push(it);
    }
    if f.inbound {
        for k in 0..d.range(1, 3) {
            let mut it = item(format!("in{k}"), d.range(0, spread_ms), WEB2.name);
            let target = if d.chance(3, 4) {
                gw.some_nat_addr(d)
            } else {
                let n = &nics[d.index(nics.len())];
                n.v4.clone().or_else(|| n.v6.clone()).unwrap_or_default()
            };
            let port = d.pick(&[1024, 1025, 22, 80]) + d.range(0, 64) as u16;
            match d.range(0, 2) {
                0 => it.udp = Some(udp_doc(d, endpoint(&target, port), true)),
                1 => {
                    let mut t = tcp_doc(d, endpoint(&target, port));
                    t.max_retries = 1;
                    it.tcp = Some(t);
                }
                _ => {
                    it.ping = Some(PingDoc {
                        to: target,
                        count: d.range(1, 3) as u32,
                        interval_ms: 100,
                        timeout_ms: 500,
                        ident: None,
                    })
                }
            }
            items.push(it);
        }
    }
    if f.hairpin {
        items.extend(hairpin_pair(d, gw, nics, spread_ms));
    }
    (items, flows)
}

/// Two NICs sending to each other's NAT endpoint (RFC 4787 REQ-9). Each aims at the port the
/// other's first flow gets ([`GatewayPlan::first_port`]); other flows of the same NICs (other
/// scripted traffic, generators, `nic` scope with small P) can move or refuse it, and then the
/// pair produces unsolicited drops instead, which is also worth running.
fn hairpin_pair(
    d: &mut Draw,
    gw: &GatewayPlan,
    nics: &[NicPlan],
    spread_ms: u64,
) -> Vec<TrafficItem> {
    let v4 = gw.families.v4() && (gw.families == Families::V4 || d.chance(1, 2));
    let blocks = gw.expected_blocks(nics, v4);
    let names: Vec<&String> = blocks.keys().collect();
    if names.len() < 2 {
        return Vec::new();
    }
    let a = d.index(names.len());
    let b = (a + 1 + d.index(names.len() - 1)) % names.len();
    let at_ms = d.range(0, spread_ms);
    let src_port = 4000 + d.range(0, 3) as u16;
    let mut out = Vec::new();
    for (k, (from, to)) in [(a, b), (b, a)].into_iter().enumerate() {
        let (ip_k, block_port, id) = blocks[names[to]];
        let inside = nics
            .get(id as usize)
            .and_then(|n| n.addr(v4))
            .map_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), ip);
        let port = gw.first_port(block_port, id, inside, src_port);
        let addr = GatewayPlan::nat_addr(ip_k, v4);
        let mut it = item(format!("hairpin{k}"), at_ms + 100 * k as u64, names[from]);
        it.udp = Some(UdpDoc {
            to: endpoint(&addr, port as u16),
            request_bytes: 64,
            count: 3,
            interval_ms: 200,
            timeout_ms: 0,
            retries: 0,
            src_port: Some(src_port),
        });
        out.push(it);
    }
    out
}

fn generator_items(
    d: &mut Draw,
    f: &Features,
    gw: &GatewayPlan,
    nics: &[NicPlan],
    duration_ms: u64,
) -> Vec<GeneratorDoc> {
    let mut out = Vec::new();
    let weight = |d: &mut Draw, on: bool| if on { d.range(1, 3) as u32 } else { 0 };
    if f.generators {
        let mut mix = MixDoc {
            tcp: weight(d, f.tcp),
            udp: weight(d, f.udp),
            icmp: weight(d, f.icmp),
        };
        if mix.tcp + mix.udp + mix.icmp == 0 {
            mix.udp = 1;
        }
        let start_ms = d.range(0, duration_ms / 4);
        let duration = match d.range(0, 2) {
            0 => DurationDoc {
                exponential_mean_ms: Some(d.range(300, 3_000) as f64),
                ..DurationDoc::default()
            },
            1 => DurationDoc {
                pareto: Some(ParetoDoc {
                    scale_ms: d.range(100, 500) as f64,
                    shape: d.pick(&[1.25, 1.5, 2.0]),
                }),
                ..DurationDoc::default()
            },
            _ => DurationDoc {
                fixed_ms: Some(d.range(200, 2_000)),
                ..DurationDoc::default()
            },
        };
        out.push(GeneratorDoc {
            name: "mix".into(),
            nics: vec!["vm-*".into()],
            start_ms,
            stop_ms: start_ms + d.range(duration_ms / 4, duration_ms / 2),
            arrivals: ArrivalsDoc {
                poisson_per_s: Some(d.range(1, 8) as f64 / 2.0),
                fixed_ms: None,
            },
            duration,
            destinations: if d.chance(1, 2) {
                vec!["web".into(), "web2".into()]
            } else {
                vec!["web".into()]
            },
            zipf_s: d.chance(1, 2).then_some(1.25),
            mix,
            request_bytes: 100,
            interval_ms: d.range(200, 1_000),
        });
    }
    if f.pressure {
        // One NIC opens many more concurrent flows to one remote than P allows.
        let blocks = gw.expected_blocks(nics, gw.families.v4());
        let chosen = blocks
            .keys()
            .next()
            .cloned()
            .or_else(|| nics.first().map(|n| n.name.clone()));
        if let Some(nic) = chosen {
            let start_ms = d.range(0, duration_ms / 2);
            out.push(GeneratorDoc {
                name: "pressure".into(),
                nics: vec![nic],
                start_ms,
                stop_ms: start_ms + d.range(1_000, 3_000),
                arrivals: ArrivalsDoc {
                    fixed_ms: Some(d.range(20, 100)),
                    poisson_per_s: None,
                },
                duration: DurationDoc {
                    fixed_ms: Some(d.range(2_000, 5_000)),
                    ..DurationDoc::default()
                },
                destinations: vec!["web".into()],
                zipf_s: None,
                mix: MixDoc {
                    tcp: weight(d, f.tcp),
                    udp: u32::from(!f.tcp) + weight(d, f.udp),
                    icmp: 0,
                },
                request_bytes: 100,
                interval_ms: 500,
            });
        }
    }
    out
}

fn attack(name: String, at_ms: u64, from: &str) -> AttackItem {
    AttackItem {
        name,
        at_ms,
        from: from.into(),
        port_scan: None,
        unsolicited: None,
        spoof_reply: None,
        forged_icmp: None,
        rst_inject: None,
    }
}

/// Ports an outside attacker aims at: mostly the start of the NAT port range, where the first
/// blocks live.
fn attack_port(d: &mut Draw) -> u16 {
    match d.range(0, 3) {
        0 | 1 => 1024 + d.range(0, 255) as u16,
        2 => d.range(1, 65_535) as u16,
        _ => d.pick(&[22, 53, 80, 443, 3389]),
    }
}

fn attack_items(
    d: &mut Draw,
    f: &Features,
    gw: &GatewayPlan,
    nics: &[NicPlan],
    flows: &[FlowRef],
    duration_ms: u64,
) -> Vec<AttackItem> {
    let mut out = Vec::new();
    let mut n = 0;
    let mut next = || {
        n += 1;
        format!("a{}", n - 1)
    };
    if f.unsolicited {
        for _ in 0..d.range(1, 3) {
            let mut a = attack(next(), d.range(0, duration_ms), EVIL.name);
            let target = if d.chance(3, 4) {
                gw.some_nat_addr(d)
            } else {
                let nic = &nics[d.index(nics.len())];
                let v4 = nic.family(d);
                nic.addr(v4).unwrap_or_default().to_string()
            };
            a.unsolicited = Some(UnsolicitedDoc {
                target: endpoint(&target, attack_port(d)),
                kind: d.pick(&[
                    UnsolicitedKindDoc::TcpSyn,
                    UnsolicitedKindDoc::Udp,
                    UnsolicitedKindDoc::IcmpEcho,
                ]),
                count: d.range(1, 5) as u32,
                interval_ms: d.range(10, 100),
            });
            out.push(a);
        }
    }
    if f.port_scan {
        let mut a = attack(next(), d.range(0, duration_ms), EVIL.name);
        let first = if d.chance(3, 4) {
            1024 + d.range(0, 256)
        } else {
            d.range(1, 60_000)
        };
        a.port_scan = Some(PortScanDoc {
            target: gw.some_nat_addr(d),
            ports: [first as u16, (first + d.range(16, 256)) as u16],
            protocol: d.pick(&[ProtoDoc::Tcp, ProtoDoc::Udp]),
            interval_us: d.range(100, 2_000),
        });
        out.push(a);
    }
    // Soon after the flow starts, while it most likely still has its mapping (many flows
    // finish within a few round trips).
    let live_after = |d: &mut Draw, fl: &FlowRef| fl.at_ms + d.range(5, 80);
    if f.spoof && !flows.is_empty() {
        for _ in 0..d.range(1, 2) {
            let fl = &flows[d.index(flows.len())];
            let mut a = attack(next(), live_after(d, fl), fl.remote);
            a.spoof_reply = Some(SpoofDoc {
                flow: fl.name.clone(),
                vary: d.pick(&[
                    VaryDoc::SrcPort,
                    VaryDoc::SrcAddr,
                    VaryDoc::DstPort,
                    VaryDoc::Nothing,
                ]),
                count: d.range(1, 3) as u32,
            });
            out.push(a);
        }
    }
    if f.forged_icmp && !flows.is_empty() {
        for _ in 0..d.range(1, 3) {
            let fl = &flows[d.index(flows.len())];
            let mut a = attack(next(), live_after(d, fl), fl.remote);
            a.forged_icmp = Some(ForgedIcmpDoc {
                flow: fl.name.clone(),
                bad_checksum: d.chance(1, 2),
                wrong_port: d.chance(1, 3),
            });
            out.push(a);
        }
    }
    let tcp_flows: Vec<&FlowRef> = flows.iter().filter(|fl| fl.tcp).collect();
    if f.rst_inject && !tcp_flows.is_empty() {
        let fl = tcp_flows[d.index(tcp_flows.len())];
        let mut a = attack(next(), live_after(d, fl), fl.remote);
        a.rst_inject = Some(RstDoc {
            flow: fl.name.clone(),
            from_remote: d.chance(1, 2),
        });
        out.push(a);
    }
    out
}

fn fault(at_ms: u64) -> FaultItem {
    FaultItem {
        at_ms,
        link_down: None,
        link_up: None,
        restart_node: None,
        remove_nat_ip: None,
        add_nat_ip: None,
        add_nic: None,
        delete_nic: None,
        relabel: None,
        attach_virtual_ip: None,
        detach_virtual_ip: None,
        set_ports_per_nic: None,
        delete_gateway: None,
    }
}

/// Link faults and control-plane changes over time, sorted by time.
fn fault_items(
    d: &mut Draw,
    f: &Features,
    gw: &GatewayPlan,
    nics: &[NicPlan],
    nodes: u16,
    duration_ms: u64,
) -> Vec<FaultItem> {
    let mut out = Vec::new();
    let when = |d: &mut Draw| d.range(duration_ms / 10, duration_ms);
    let last_node = u64::from(nodes) - 1;
    if f.link_flap {
        let nic = &nics[d.index(nics.len())];
        let name = match d.range(0, 2) {
            0 => format!("nic/{}", nic.name),
            1 => format!("uplink/{}", d.range(0, last_node)),
            _ => format!("remote/{}", d.pick(&["web", "web2"])),
        };
        let at_ms = when(d);
        let mut down = fault(at_ms);
        down.link_down = Some(name.clone());
        let mut up = fault(at_ms + d.range(200, 3_000));
        up.link_up = Some(name);
        out.extend([down, up]);
    }
    if f.restart {
        let mut x = fault(when(d));
        x.restart_node = Some(d.range(0, last_node) as u16);
        out.push(x);
    }
    // Relabels and VirtualIP changes only touch NICs that exist for the whole run: the
    // IronCore API cannot change an object that does not exist (and the simulator does not
    // refuse it, see docs/swarm.md "Findings").
    let mut stable: Vec<&NicPlan> = nics.iter().filter(|n| n.present).collect();
    if f.nic_churn {
        for n in nics.iter().filter(|n| !n.present) {
            let mut x = fault(when(d));
            x.add_nic = Some(n.name.clone());
            out.push(x);
        }
        if !stable.is_empty() && d.chance(1, 2) {
            let gone = stable.remove(d.index(stable.len()));
            let mut x = fault(when(d));
            x.delete_nic = Some(gone.name.clone());
            out.push(x);
        }
    }
    if f.relabel && !stable.is_empty() {
        let nic = stable[d.index(stable.len())];
        let selected = gw.selector.selects(&nic.labels);
        let at_ms = when(d);
        let mut x = fault(at_ms);
        x.relabel = Some(RelabelDoc {
            nic: nic.name.clone(),
            labels: gw.selector.labels(!selected),
        });
        out.push(x);
        if d.chance(1, 2) {
            let mut back = fault(at_ms + d.range(100, 3_000));
            back.relabel = Some(RelabelDoc {
                nic: nic.name.clone(),
                labels: nic.labels.clone(),
            });
            out.push(back);
        }
    }
    if f.virtual_ip && !stable.is_empty() {
        let nic = stable[d.index(stable.len())];
        let at_ms = when(d);
        let mut x = fault(at_ms);
        if nic.virtual_ip {
            x.detach_virtual_ip = Some(nic.name.clone());
        } else {
            x.attach_virtual_ip = Some(nic.name.clone());
        }
        out.push(x);
        if d.chance(1, 2) {
            let mut back = fault(at_ms + d.range(100, 3_000));
            if nic.virtual_ip {
                back.attach_virtual_ip = Some(nic.name.clone());
            } else {
                back.detach_virtual_ip = Some(nic.name.clone());
            }
            out.push(back);
        }
    }
    if f.p_change {
        let mut x = fault(when(d));
        x.set_ports_per_nic = Some(if f.scarce_blocks {
            d.pick(&[8_192, 16_384, 32_768])
        } else {
            1 << d.range(0, 6)
        });
        out.push(x);
    }
    if f.ip_churn {
        let mut x = fault(when(d));
        x.add_nat_ip = Some(gw.ip_doc(gw.ips + 1));
        out.push(x);
        if d.chance(1, 2) {
            let mut x = fault(when(d));
            x.remove_nat_ip = Some(format!("ip{}", d.range(1, gw.ips)));
            out.push(x);
        }
    }
    if f.delete_gateway {
        let mut x = fault(d.range(duration_ms / 2, duration_ms));
        x.delete_gateway = Some(true);
        out.push(x);
    }
    out.sort_by_key(|x| x.at_ms);
    out
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
