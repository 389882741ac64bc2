//! The world: NIC plans, the gateway plan, the topology and gateway documents.

use super::*;

/// What the generator knows about a NIC while building traffic for it.
#[derive(Clone, Debug)]
pub(super) struct NicPlan {
    pub(super) name: String,
    pub(super) namespace: String,
    pub(super) network: &'static str,
    pub(super) v4: Option<String>,
    pub(super) v6: Option<String>,
    pub(super) labels: BTreeMap<String, String>,
    pub(super) node: u16,
    pub(super) virtual_ip: bool,
    pub(super) present: bool,
}

impl NicPlan {
    /// One of its address families, drawn.
    pub(super) fn family(&self, d: &mut Draw) -> bool {
        match (&self.v4, &self.v6) {
            (Some(_), Some(_)) => d.chance(1, 2),
            (Some(_), None) => true,
            _ => false,
        }
    }
    pub(super) fn addr(&self, v4: bool) -> Option<&str> {
        if v4 {
            self.v4.as_deref()
        } else {
            self.v6.as_deref()
        }
    }
}

/// How the gateway selects NICs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum SelectorKind {
    All,
    Labels,
    Expression,
    Absent,
}

impl SelectorKind {
    pub(super) fn doc(self) -> Option<LabelSelector> {
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
    pub(super) fn labels(self, selected: bool) -> BTreeMap<String, String> {
        let (k, v) = match (self, selected) {
            (SelectorKind::Expression, true) => ("tier", "web"),
            (SelectorKind::Expression, false) => ("tier", "batch"),
            (_, true) => ("nat", "enabled"),
            (_, false) => ("nat", "disabled"),
        };
        [(k.to_string(), v.to_string())].into()
    }
    pub(super) fn selects(self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            SelectorKind::All => true,
            SelectorKind::Absent => false,
            SelectorKind::Labels => labels.get("nat").is_some_and(|v| v == "enabled"),
            SelectorKind::Expression => labels.get("tier").is_some_and(|v| v == "web" || v == "db"),
        }
    }
}

/// The gateway as the traffic generator sees it.
pub(super) struct GatewayPlan {
    pub(super) families: Families,
    pub(super) ips: u64,
    pub(super) ports_per_nic: u32,
    pub(super) selector: SelectorKind,
    /// The run seed (the gateway seeds its port choice with it).
    pub(super) seed: u64,
    /// The profile keeps the last port of each block unused (dpservice).
    pub(super) last_port_unusable: bool,
}

impl GatewayPlan {
    pub(super) fn nat_addr(k: u64, v4: bool) -> String {
        if v4 {
            format!("203.0.113.{k}")
        } else {
            format!("2001:db8:ffff::{k}")
        }
    }
    pub(super) fn ip_doc(&self, k: u64) -> IpDoc {
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
    pub(super) fn some_nat_addr(&self, d: &mut Draw) -> String {
        let v4 = match self.families {
            Families::V4 => true,
            Families::V6 => false,
            Families::Dual => d.chance(1, 2),
        };
        Self::nat_addr(d.range(1, self.ips), v4)
    }
    /// Where the allocator puts the NICs selected at the start (behaviour §3: (namespace, name)
    /// order, lowest free slot on the first IP with room): NIC name → (ip number, first port,
    /// dataplane NIC id).
    pub(super) fn expected_blocks(
        &self,
        nics: &[NicPlan],
        v4: bool,
    ) -> BTreeMap<String, (u64, u32, u32)> {
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
    /// point in the block (behaviour §4, [`port_start_offset`]), free because nothing else of the
    /// NIC is assumed to run.
    pub(super) fn first_port(
        &self,
        block_port: u32,
        nic_id: u32,
        inside: IpAddr,
        src_port: u16,
    ) -> u32 {
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

pub(super) fn gateway_plan(d: &mut Draw, f: &Features, seed: u64) -> GatewayPlan {
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

pub(super) fn nic_plans(d: &mut Draw, f: &Features, gw: &GatewayPlan) -> (Vec<NicPlan>, u16) {
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

pub(super) fn link(d: &mut Draw, f: &Features) -> LinkConfig {
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

pub(super) fn topology_doc(d: &mut Draw, f: &Features, nics: &[NicPlan], nodes: u16) -> Topology {
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
                silent_closed_ports: false,
            })
        })
        .collect();
    let svc = |protocol, port, response_bytes| ServiceDoc {
        protocol,
        port,
        response_bytes,
        stun: false,
        close_first: false,
        rto_ms: None,
        max_retries: None,
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
                    close_first: false,
                    rto_ms: None,
                    max_retries: None,
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
        router: None,
    }
}

pub(super) fn gateway_doc(d: &mut Draw, f: &Features, gw: &GatewayPlan) -> GatewayDoc {
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
        name: None,
        pools: Vec::new(),
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
