//! Scripted applications (inside and outside clients, probes, hairpin pairs) and workload
//! generators.

use super::*;

/// A scripted NIC flow that attacks may aim at: name, start, remote, protocol is TCP.
pub(super) struct FlowRef {
    pub(super) name: String,
    pub(super) at_ms: u64,
    pub(super) remote: &'static str,
    pub(super) tcp: bool,
}

pub(super) fn item(name: String, at_ms: u64, from: &str) -> TrafficItem {
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

pub(super) fn tcp_doc(d: &mut Draw, to: String) -> TcpDoc {
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
        mss_bytes: crate::sim::tcp::MSS_BYTES,
        df: false,
        close_on_peer_fin: true,
    }
}

pub(super) fn udp_doc(d: &mut Draw, to: String, one_way: bool) -> UdpDoc {
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
pub(super) fn traffic_items(
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
pub(super) fn hairpin_pair(
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

pub(super) fn generator_items(
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
