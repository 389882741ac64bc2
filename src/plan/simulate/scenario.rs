//! Turns one plan point and its [`Sample`] into a scenario file (YAML text) the simulator loads
//! through its public loader, so the simulation runs exactly what `natsim run` would.
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

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use super::sample::Sample;
use crate::plan::params::{DurationDist, PointParams, Protocol};
use crate::plan::profiles::ProfileTimers;
use crate::rng::Rng;
use crate::sim::engine::stream_of;

/// Name prefix of sampled NICs with a block.
pub const ALLOCATED_PREFIX: &str = "a-";
/// Name prefix of idle filler NICs (sorted between the two samples: allocation goes by name).
pub const FILLER_PREFIX: &str = "b-";
/// Name prefix of sampled NICs left without a block.
pub const UNALLOCATED_PREFIX: &str = "c-";

/// Most distinct destinations simulated; larger plans keep the hottest ones (see docs).
pub const MAX_DESTINATIONS: u64 = 1_000;

/// Shortest packet spacing inside a UDP/ICMP flow.
const MIN_INTERVAL_MS: u64 = 1_000;

/// A scenario ready to load, plus what the scripted (never-closed) flows offered.
#[derive(Clone, Debug)]
pub struct Built {
    /// Scenario file text.
    pub yaml: String,
    /// Scripted never-closed TCP flows started after warm-up: allocated, unallocated sample.
    pub unclosed_offered: [u64; 2],
    /// Packet spacing inside UDP/ICMP flows, milliseconds.
    pub interval_ms: u64,
}

/// Profile overrides that give the simulated gateway the point's timers. A closed TCP flow in
/// the NAT core waits out the transitory timer and then `hold_tcp_fin_ms`; the plan has a single
/// "close → reusable" figure, so the transitory timer is capped by it and the rest is the hold.
fn overrides(point: &PointParams) -> Vec<(&'static str, String)> {
    let t: &ProfileTimers = &point.gateway.timers;
    let ms = |s: f64| format!("{}", (s * 1000.0).round() as u64);
    let transitory_s = t.tcp_transitory_idle_s.min(t.tcp_close_hold_s);
    let mut o = vec![
        ("timeout_udp_ms", ms(t.udp_idle_s)),
        ("timeout_udp_stream_ms", ms(t.udp_idle_s)),
        ("timeout_tcp_established_ms", ms(t.tcp_established_idle_s)),
        ("timeout_tcp_transitory_ms", ms(transitory_s)),
        ("hold_tcp_fin_ms", ms(t.tcp_close_hold_s - transitory_s)),
        ("hold_udp_ms", ms(t.udp_hold_s)),
        ("hold_icmp_ms", ms(t.icmp_hold_s)),
        ("limit_scope", point.gateway.limit_scope.name().to_string()),
        (
            "last_port_unusable",
            point.gateway.exclusive_block_end.to_string(),
        ),
    ];
    match t.icmp_idle_s {
        Some(s) => {
            o.push(("timeout_icmp_ms", ms(s)));
            o.push(("icmp_supported", "true".into()));
        }
        None => o.push(("icmp_supported", "false".into())),
    }
    o
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

fn duration_yaml(point: &PointParams) -> String {
    let d = &point.traffic.flow_duration;
    let mean_ms = d.mean_s * 1000.0;
    match (d.dist, d.pareto_shape) {
        (DurationDist::Fixed, _) => format!("{{fixed_ms: {}}}", mean_ms.round() as u64),
        (DurationDist::Pareto, Some(alpha)) if alpha > 1.0 => format!(
            "{{pareto: {{scale_ms: {}, shape: {alpha}}}}}",
            mean_ms * (alpha - 1.0) / alpha
        ),
        _ => format!("{{exponential_mean_ms: {mean_ms}}}"),
    }
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

/// Scripted TCP flows that never close, for the NICs named `prefix00000..`; returns the YAML
/// items and how many start at or after warm-up.
fn unclosed_flows(
    point: &PointParams,
    prefix: &str,
    nics: u64,
    interval_ms: u64,
    out: &mut String,
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
                Some(extra_ms) => (life_ms + extra_ms, "fin"),
                None => (life_ms, "none"),
            };
            let u = rng.unit_f64();
            let dest = cdf
                .partition_point(|&c| c <= u)
                .min(cdf.len().saturating_sub(1));
            if at_s >= point.simulation.warmup_s {
                after_warmup += 1;
            }
            let _ = writeln!(
                out,
                "  - {{name: u-{nic}-{j}, at_ms: {}, from: {nic}, tcp: {{to: \"d{dest}:80\", request_bytes: 64, hold_ms: {open_ms}, keepalive_ms: {interval_ms}, close: {close}}}}}",
                (at_s * 1000.0) as u64
            );
        }
    }
    after_warmup
}

/// One workload generator line.
struct Generator<'a> {
    name: String,
    /// NIC name prefix it drives.
    prefix: &'a str,
    rate_per_s: f64,
    /// TCP, UDP, ICMP weights.
    mix: [u64; 3],
    interval_ms: u64,
}

fn generator(out: &mut String, g: &Generator<'_>, point: &PointParams, dests: &str) {
    let Generator {
        name,
        prefix,
        rate_per_s,
        mix,
        interval_ms,
    } = g;
    if *rate_per_s <= 0.0 {
        return;
    }
    let stop_ms = (point.simulation.duration_s * 1000.0).ceil() as u64;
    let zipf = if point.traffic.zipf_s > 0.0 {
        format!(", zipf_s: {}", point.traffic.zipf_s)
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "  - {{name: {name}, nics: [\"{prefix}*\"], stop_ms: {stop_ms}, arrivals: {{poisson_per_s: {rate_per_s}}}, duration: {}, destinations: [{dests}]{zipf}, mix: {{tcp: {}, udp: {}, icmp: {}}}, request_bytes: 64, interval_ms: {interval_ms}}}",
        duration_yaml(point),
        mix[0],
        mix[1],
        mix[2]
    );
}

/// Builds the scenario of `point` for `sample`.
pub fn build(point: &PointParams, sample: &Sample) -> Built {
    let t = &point.traffic;
    let mix = &t.protocol_mix;
    let interval_ms = mix_interval_ms(point);
    let tcp_interval_ms = tcp_interval_ms(point);
    let duration_ms = (point.simulation.duration_s * 1000.0).ceil() as u64;
    let mut y = String::new();
    let _ = write!(
        y,
        "apiVersion: natsim.dev/v1\nkind: Scenario\nmetadata: {{name: plan-point-{}}}\nseed: {}\n\
         limits: {{duration_ms: {duration_ms}, max_events: 4000000000, rerun_for_determinism: false}}\n\
         topology:\n  networks: [{{name: fleet, prefixes: [10.0.0.0/8]}}]\n  nic_groups:\n",
        point.index, point.seed
    );
    let mut first = u32::from(Ipv4Addr::new(10, 0, 0, 1));
    for (prefix, count) in [
        (ALLOCATED_PREFIX, sample.allocated),
        (FILLER_PREFIX, sample.filler),
        (UNALLOCATED_PREFIX, sample.unallocated),
    ] {
        if count == 0 {
            continue;
        }
        let _ = writeln!(
            y,
            "    - {{prefix: {prefix}, count: {count}, network: fleet, first_address: {}}}",
            Ipv4Addr::from(first)
        );
        first += count as u32;
    }
    y.push_str("  remotes:\n");
    let dest_count = destinations(point);
    for k in 0..dest_count {
        let _ = writeln!(
            y,
            "    - {{name: d{k}, addresses: [{}], services: [{{protocol: tcp, port: 80, response_bytes: 0}}, {{protocol: udp, port: 53, response_bytes: 0}}]}}",
            remote_address(k)
        );
    }
    let _ = write!(
        y,
        "gateway:\n  network: fleet\n  ip_families: [IPv4]\n  ports_per_nic: {}\n  selector: {{}}\n  profile: {}\n  overrides: {{",
        sample.ports_per_nic,
        point.gateway.profile.as_str()
    );
    let o = overrides(point)
        .into_iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join(", ");
    y.push_str(&o);
    y.push_str("}\n  ips:");
    if sample.ips == 0 {
        y.push_str(" []");
    }
    y.push('\n');
    for i in 0..sample.ips {
        let _ = writeln!(y, "    - {{name: ip{i}, addresses: [{}]}}", nat_address(i));
    }
    let dests = (0..dest_count)
        .map(|k| format!("d{k}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut gens = String::new();
    // Integer weights for the generator's mix; a million keeps three significant digits.
    let weight = |share: f64| (share * 1e6).round() as u64;
    let closed_tcp_rate = t.flow_rate_per_s * mix.tcp * t.close_fraction;
    let mix_rate = t.flow_rate_per_s * (mix.udp + mix.icmp);
    for (suffix, prefix, count) in [
        ("a", ALLOCATED_PREFIX, sample.allocated),
        ("c", UNALLOCATED_PREFIX, sample.unallocated),
    ] {
        if count == 0 {
            continue;
        }
        let tcp = Generator {
            name: format!("tcp-{suffix}"),
            prefix,
            rate_per_s: closed_tcp_rate,
            mix: [1, 0, 0],
            interval_ms: tcp_interval_ms,
        };
        let other = Generator {
            name: format!("mix-{suffix}"),
            prefix,
            rate_per_s: mix_rate,
            mix: [0, weight(mix.udp), weight(mix.icmp)],
            interval_ms,
        };
        generator(&mut gens, &tcp, point, &dests);
        generator(&mut gens, &other, point, &dests);
    }
    if !gens.is_empty() {
        y.push_str("generators:\n");
        y.push_str(&gens);
    }
    let mut traffic = String::new();
    let unclosed_offered = [
        unclosed_flows(
            point,
            ALLOCATED_PREFIX,
            sample.allocated,
            tcp_interval_ms,
            &mut traffic,
        ),
        unclosed_flows(
            point,
            UNALLOCATED_PREFIX,
            sample.unallocated,
            tcp_interval_ms,
            &mut traffic,
        ),
    ];
    if !traffic.is_empty() {
        y.push_str("traffic:\n");
        y.push_str(&traffic);
    }
    Built {
        yaml: y,
        unclosed_offered,
        interval_ms,
    }
}
