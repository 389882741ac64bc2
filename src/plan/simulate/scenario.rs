//! Turns one plan point and its [`Sample`] into a typed scenario document ([`ScenarioFile`]), the
//! form a scenario file parses into; the simulator resolves it with the public loader
//! ([`crate::scenario::load_doc`]), so the simulation runs exactly what `natsim run` would run
//! for that document.
//!
//! The world: one network, the sampled NICs, one remote host per destination (each its own IP,
//! TCP port 80 and UDP port 53, no replies beyond TCP's own), and an IronCore gateway whose
//! profile carries the point's resolved timers. Traffic comes from the simulator's workload
//! generators, split into independent Poisson streams (splitting a Poisson process by
//! independent coin flips gives independent Poisson processes):
//!
//! - `tcp-*`: TCP flows closed with FIN, rate × TCP share × close fraction; keepalives only as
//!   often as the established timer needs.
//! - `mix-*`: UDP and ICMP flows, one packet every `interval`; the NAT sees a flow's life as the
//!   span from its first to its last packet.
//! - TCP flows that never close (the rest of the TCP share) are scripted applications drawn
//!   here, because generated TCP flows always close. Such a flow holds its port for its life
//!   plus the established idle timer. Simulated servers never time out a connection whose
//!   client went silent, so a silent client would leave a stale server connection that refuses
//!   the next flow the NAT maps to the same port and server; instead the client stays open
//!   (with keepalives) until `established timer − close hold` after its life and then closes
//!   with FIN, which ties the port up for exactly `life + established timer`. Where the close
//!   hold exceeds the established timer the client just goes silent (`close: none`).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use serde_json::Value;
use serde_saphyr::{Location, Spanned};

use super::meter::Stratum;
use super::sample::Sample;
use crate::plan::params::{DurationDist, PointParams, Protocol};
use crate::plan::profiles::ProfileTimers;
use crate::rng::Rng;
use crate::scenario::schema::{
    ArrivalsDoc, DEFAULT_BLOCK_QUARANTINE_MS, DEFAULT_TCP_MAX_RETRIES, DEFAULT_TCP_RTO_MS,
    DurationDoc, Expectations, GatewayDoc, GeneratorDoc, IpDoc, LabelSelector, LimitsDoc, Metadata,
    MixDoc, NetworkDoc, NicGroupDoc, ParetoDoc, ProtoDoc, RemoteDoc, ScenarioFile, ServiceDoc,
    TcpDoc, Topology, TrafficItem,
};
use crate::sim::engine::stream_of;
use crate::sim::tcp::CloseMode;

/// The NIC groups of a point, in the order the loader creates their NICs: name prefix and
/// stratum. The prefixes sort in this order too, because the allocator hands out blocks by
/// name: sampled NICs with a block first, then idle fillers, then sampled NICs left without.
const GROUPS: [(&str, Stratum); 3] = [
    ("a-", Stratum::Allocated),
    ("b-", Stratum::Filler),
    ("c-", Stratum::Unallocated),
];

/// The one network of a point.
const NETWORK: &str = "fleet";

/// Most distinct destinations simulated; larger plans keep the hottest ones (see docs).
pub const MAX_DESTINATIONS: u64 = 1_000;

/// Shortest packet spacing inside a UDP/ICMP flow.
const MIN_INTERVAL_MS: u64 = 1_000;

/// A scenario ready to load, plus what the scripted (never-closed) flows offered.
#[derive(Clone, Debug)]
pub struct Built {
    /// The scenario document.
    pub doc: ScenarioFile,
    /// The stratum of each NIC in the loader's order (NIC groups expand in document order).
    pub strata: Vec<Stratum>,
    /// Scripted never-closed TCP flows started after warm-up: allocated, unallocated sample.
    pub unclosed_offered: [u64; 2],
    /// Packet spacing inside UDP/ICMP flows, milliseconds.
    pub interval_ms: u64,
}

/// Profile overrides that give the simulated gateway the point's timers. A closed TCP flow in
/// the NAT core waits out the transitory timer and then `hold_tcp_fin_ms`; the plan has a single
/// "close → reusable" figure, so the transitory timer is capped by it and the rest is the hold.
fn overrides(point: &PointParams) -> BTreeMap<String, Value> {
    let t: &ProfileTimers = &point.gateway.timers;
    let ms = |s: f64| Value::from((s * 1000.0).round() as u64);
    let transitory_s = t.tcp_transitory_idle_s.min(t.tcp_close_hold_s);
    let mut o = vec![
        ("timeout_udp_ms", ms(t.udp_idle_s)),
        ("timeout_udp_stream_ms", ms(t.udp_idle_s)),
        ("timeout_tcp_established_ms", ms(t.tcp_established_idle_s)),
        ("timeout_tcp_transitory_ms", ms(transitory_s)),
        ("hold_tcp_fin_ms", ms(t.tcp_close_hold_s - transitory_s)),
        ("hold_udp_ms", ms(t.udp_hold_s)),
        ("hold_icmp_ms", ms(t.icmp_hold_s)),
        ("limit_scope", point.gateway.limit_scope.name().into()),
        (
            "last_port_unusable",
            point.gateway.exclusive_block_end.into(),
        ),
    ];
    match t.icmp_idle_s {
        Some(s) => {
            o.push(("timeout_icmp_ms", ms(s)));
            o.push(("icmp_supported", true.into()));
        }
        None => o.push(("icmp_supported", false.into())),
    }
    o.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// Packet spacing inside UDP/ICMP flows: a tenth of the mean life (so the NAT-visible life,
/// first to last packet, stays close to the drawn one) but at least a second (a DNS query is one
/// packet) and at most half the shortest idle timer (a live flow must never expire).
fn mix_interval_ms(point: &PointParams) -> u64 {
    let t = &point.gateway.timers;
    let mix = &point.traffic.protocol_mix;
    let mut shortest_idle_s = f64::INFINITY;
    if mix.udp > 0.0 {
        shortest_idle_s = shortest_idle_s.min(t.udp_idle_s);
    }
    if let (true, Some(icmp_s)) = (mix.icmp > 0.0, t.icmp_idle_s) {
        shortest_idle_s = shortest_idle_s.min(icmp_s);
    }
    let upper_ms = (shortest_idle_s * 500.0).max(1.0);
    let wanted_ms = (point.traffic.flow_duration.mean_s * 100.0).max(MIN_INTERVAL_MS as f64);
    // Saturating casts; both bounds are finite and positive here or infinite (no UDP/ICMP).
    wanted_ms.min(upper_ms).round().max(1.0) as u64
}

/// TCP keepalive spacing: half the established timer, so long flows stay alive in the NAT.
fn tcp_interval_ms(point: &PointParams) -> u64 {
    ((point.gateway.timers.tcp_established_idle_s * 500.0).round() as u64).max(1)
}

fn duration_doc(point: &PointParams) -> DurationDoc {
    let d = &point.traffic.flow_duration;
    let mean_ms = d.mean_s * 1000.0;
    match (d.dist, d.pareto_shape) {
        (DurationDist::Fixed, _) => DurationDoc {
            fixed_ms: Some(mean_ms.round() as u64),
            ..DurationDoc::default()
        },
        (DurationDist::Pareto, Some(alpha)) if alpha > 1.0 => DurationDoc {
            pareto: Some(ParetoDoc {
                scale_ms: mean_ms * (alpha - 1.0) / alpha,
                shape: alpha,
            }),
            ..DurationDoc::default()
        },
        _ => DurationDoc {
            exponential_mean_ms: Some(mean_ms),
            ..DurationDoc::default()
        },
    }
}

/// A document item without a source location (it was not read from text).
fn spanned<T>(value: T) -> Spanned<T> {
    Spanned::new(value, Location::UNKNOWN, Location::UNKNOWN)
}

/// Remote `k` (0-based): its own address in 198.18.0.0/15 (benchmarking space).
fn remote_address(k: u64) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 0, 1)) + k as u32)
}

/// Public IP `i`: 100.64.0.0/10 has room for every IP a sample can need.
fn nat_address(i: u64) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(100, 64, 0, 1)) + i as u32)
}

fn destinations(point: &PointParams) -> u64 {
    point.traffic.destinations.clamp(1, MAX_DESTINATIONS)
}

/// Cumulative Zipf weights over the simulated destinations (the generators' own rule).
fn zipf_cdf(count: u64, s: f64) -> Vec<f64> {
    let weights: Vec<f64> = (1..=count).map(|k| (k as f64).powf(-s)).collect();
    let total: f64 = weights.iter().sum();
    let mut acc = 0.0;
    weights
        .iter()
        .map(|w| {
            acc += w / total;
            acc
        })
        .collect()
}

/// Scripted TCP flows that never close, for the NICs named `prefix00000..`; appends the items
/// to `out` and returns how many start at or after warm-up.
fn unclosed_flows(
    point: &PointParams,
    prefix: &str,
    nics: u64,
    interval_ms: u64,
    out: &mut Vec<Spanned<TrafficItem>>,
) -> u64 {
    let t = &point.traffic;
    let rate_per_s =
        t.flow_rate_per_s * t.protocol_mix.share(Protocol::Tcp) * (1.0 - t.close_fraction);
    if rate_per_s <= 0.0 || nics == 0 {
        return 0;
    }
    let cdf = zipf_cdf(destinations(point), t.zipf_s);
    let timers = &point.gateway.timers;
    let idle_minus_hold_s = timers.tcp_established_idle_s - timers.tcp_close_hold_s;
    let idle_minus_hold_ms =
        (idle_minus_hold_s >= 0.0).then(|| (idle_minus_hold_s * 1000.0).round() as u64);
    let end_s = point.simulation.duration_s;
    let mut after_warmup = 0;
    for k in 0..nics {
        let nic = format!("{prefix}{k:05}");
        let mut rng = Rng::new(point.seed, stream_of(&format!("plan/unclosed/{nic}")));
        let mut at_s = 0.0;
        for j in 0_u64.. {
            at_s += -(1.0 - rng.unit_f64()).ln() / rate_per_s;
            if at_s >= end_s {
                break;
            }
            let life_ms = (t.flow_duration.sample_s(&mut rng) * 1000.0).round() as u64;
            let (open_ms, close) = match idle_minus_hold_ms {
                Some(extra_ms) => (life_ms + extra_ms, CloseMode::Fin),
                None => (life_ms, CloseMode::None),
            };
            let u = rng.unit_f64();
            let dest = cdf
                .partition_point(|&c| c <= u)
                .min(cdf.len().saturating_sub(1));
            if at_s >= point.simulation.warmup_s {
                after_warmup += 1;
            }
            out.push(spanned(TrafficItem {
                name: format!("u-{nic}-{j}"),
                at_ms: (at_s * 1000.0) as u64,
                from: nic.clone(),
                tcp: Some(TcpDoc {
                    to: format!("d{dest}:80"),
                    request_bytes: 64,
                    expect_bytes: 0,
                    hold_ms: open_ms,
                    keepalive_ms: interval_ms,
                    close,
                    src_port: None,
                    rto_ms: DEFAULT_TCP_RTO_MS,
                    max_retries: DEFAULT_TCP_MAX_RETRIES,
                    mss_bytes: crate::sim::tcp::MSS_BYTES,
                    df: false,
                    close_on_peer_fin: true,
                }),
                udp: None,
                ping: None,
                probe: None,
            }));
        }
    }
    after_warmup
}

/// One workload generator.
struct Generator<'a> {
    name: String,
    /// NIC name prefix it drives.
    prefix: &'a str,
    rate_per_s: f64,
    /// TCP, UDP, ICMP weights.
    mix: MixDoc,
    interval_ms: u64,
}

fn generator(g: Generator<'_>, point: &PointParams, dests: &[String]) -> Option<GeneratorDoc> {
    if g.rate_per_s <= 0.0 {
        return None;
    }
    Some(GeneratorDoc {
        name: g.name,
        nics: vec![format!("{}*", g.prefix)],
        start_ms: 0,
        stop_ms: (point.simulation.duration_s * 1000.0).ceil() as u64,
        arrivals: ArrivalsDoc {
            fixed_ms: None,
            poisson_per_s: Some(g.rate_per_s),
        },
        duration: duration_doc(point),
        destinations: dests.to_vec(),
        zipf_s: (point.traffic.zipf_s > 0.0).then_some(point.traffic.zipf_s),
        mix: g.mix,
        request_bytes: 64,
        interval_ms: g.interval_ms,
    })
}

/// Builds the scenario of `point` for `sample`.
pub fn build(point: &PointParams, sample: &Sample) -> Built {
    let t = &point.traffic;
    let mix = &t.protocol_mix;
    let interval_ms = mix_interval_ms(point);
    let tcp_interval_ms = tcp_interval_ms(point);
    let duration_ms = (point.simulation.duration_s * 1000.0).ceil() as u64;
    let counts = [sample.allocated, sample.filler, sample.unallocated];
    let mut nic_groups = Vec::new();
    let mut strata = Vec::new();
    let mut first = u32::from(Ipv4Addr::new(10, 0, 0, 1));
    for ((prefix, stratum), count) in GROUPS.into_iter().zip(counts) {
        if count == 0 {
            continue;
        }
        nic_groups.push(NicGroupDoc {
            prefix: prefix.to_string(),
            count: count as u32,
            network: NETWORK.into(),
            first_address: Ipv4Addr::from(first),
            labels: BTreeMap::new(),
        });
        strata.extend(std::iter::repeat_n(stratum, count as usize));
        first += count as u32;
    }
    let dest_count = destinations(point);
    let service = |protocol, port| ServiceDoc {
        protocol,
        port,
        response_bytes: 0,
        stun: false,
        close_first: false,
        rto_ms: None,
        max_retries: None,
    };
    let remotes = (0..dest_count)
        .map(|k| {
            spanned(RemoteDoc {
                name: format!("d{k}"),
                addresses: vec![IpAddr::V4(remote_address(k))],
                services: vec![service(ProtoDoc::Tcp, 80), service(ProtoDoc::Udp, 53)],
                link: None,
            })
        })
        .collect();
    let gateway = GatewayDoc {
        name: None,
        network: NETWORK.into(),
        ip_families: vec!["IPv4".into()],
        ips: (0..sample.ips)
            .map(|i| IpDoc {
                name: format!("ip{i}"),
                addresses: vec![IpAddr::V4(nat_address(i))],
            })
            .collect(),
        ports_per_nic: sample.ports_per_nic,
        selector: Some(LabelSelector::default()),
        profile: point.gateway.profile.as_str().into(),
        overrides: overrides(point),
        block_quarantine_ms: DEFAULT_BLOCK_QUARANTINE_MS,
        pools: Vec::new(),
        max_flows: None,
        nat64: false,
    };
    let dests: Vec<String> = (0..dest_count).map(|k| format!("d{k}")).collect();
    let mut generators = Vec::new();
    // Integer weights for the generator's mix; a million keeps three significant digits.
    let weight = |share: f64| (share * 1e6).round() as u32;
    let closed_tcp_rate = t.flow_rate_per_s * mix.tcp * t.close_fraction;
    let mix_rate = t.flow_rate_per_s * (mix.udp + mix.icmp);
    let sampled = [
        ("a", GROUPS[0].0, sample.allocated),
        ("c", GROUPS[2].0, sample.unallocated),
    ];
    for (suffix, prefix, count) in sampled {
        if count == 0 {
            continue;
        }
        let tcp = Generator {
            name: format!("tcp-{suffix}"),
            prefix,
            rate_per_s: closed_tcp_rate,
            mix: MixDoc {
                tcp: 1,
                udp: 0,
                icmp: 0,
            },
            interval_ms: tcp_interval_ms,
        };
        let other = Generator {
            name: format!("mix-{suffix}"),
            prefix,
            rate_per_s: mix_rate,
            mix: MixDoc {
                tcp: 0,
                udp: weight(mix.udp),
                icmp: weight(mix.icmp),
            },
            interval_ms,
        };
        generators.extend(generator(tcp, point, &dests).map(spanned));
        generators.extend(generator(other, point, &dests).map(spanned));
    }
    let mut traffic = Vec::new();
    let unclosed_offered = [
        unclosed_flows(
            point,
            sampled[0].1,
            sample.allocated,
            tcp_interval_ms,
            &mut traffic,
        ),
        unclosed_flows(
            point,
            sampled[1].1,
            sample.unallocated,
            tcp_interval_ms,
            &mut traffic,
        ),
    ];
    let doc = ScenarioFile {
        api_version: "natsim.dev/v1".into(),
        kind: "Scenario".into(),
        metadata: Metadata {
            name: format!("plan-point-{}", point.index),
            description: String::new(),
            covers: Vec::new(),
        },
        seed: point.seed,
        limits: LimitsDoc {
            duration_ms: Some(duration_ms),
            max_events: 4_000_000_000,
            rerun_for_determinism: false,
            ..LimitsDoc::default()
        },
        topology: Topology {
            networks: vec![NetworkDoc {
                name: NETWORK.into(),
                prefixes: vec!["10.0.0.0/8".into()],
                routes: Vec::new(),
            }],
            nodes: 1,
            nics: Vec::new(),
            nic_groups,
            remotes,
            links: Default::default(),
            router: None,
        },
        gateway: Some(gateway),
        manifests: None,
        traffic,
        generators,
        attacks: Vec::new(),
        faults: Vec::new(),
        packets: Vec::new(),
        expect: Expectations::default(),
        capture: Vec::new(),
    };
    Built {
        doc,
        strata,
        unclosed_offered,
        interval_ms,
    }
}
