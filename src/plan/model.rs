//! Evaluates one plan point with the analytic model: per protocol, the time a flow holds its port,
//! the offered load on the hottest scope key, Erlang-B blocking, and what it takes to meet the
//! target.
//!
//! Scope keys: each protocol has its own ports. Under `remote-ip`/`remote-endpoint` a key is one
//! destination, which gets its Zipf share of the NIC's flows; under `nic` the key is the whole
//! NIC. Under AWS/Azure rules the key is one destination across the whole fleet, because those
//! providers pool ports over all NICs and cap connections per IP and destination.

use serde::Serialize;

use super::analytic::{PORTS_PER_IP, Zipf, busy_ports, erlang_b, erlang_b_max_offered, min_units};
use super::params::{PointParams, Protocol};
use super::profiles::{LimitScope, ProfileTimers};
use super::providers::Rules;

/// The analytic figures for one protocol at one point.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProtocolLoad {
    /// Protocol.
    pub protocol: Protocol,
    /// Share of the NIC's new flows.
    pub share: f64,
    /// False when the profile drops this protocol (Azure and ICMP): all its flows are refused.
    pub supported: bool,
    /// New flows per second per NIC.
    pub rate_per_s: f64,
    /// Mean time a flow holds its port: life + hold after close or idle timeout (+ hold).
    pub hold_s: f64,
    /// Little's law: mean busy ports per NIC for this protocol, over all destinations.
    pub busy_ports_nic: f64,
    /// Little's law: mean busy ports of one NIC on its hottest scope key.
    pub busy_ports_hot: f64,
    /// Erlang-B offered load on the hottest key (per NIC, or fleet-wide for AWS/Azure).
    pub offered_hot: f64,
    /// Ports (servers) available on that key.
    pub servers: u64,
    /// Erlang-B blocking on the hottest key.
    pub blocking_hot: f64,
    /// Flow-weighted blocking over all keys of this protocol.
    pub blocking_weighted: f64,
    /// Per-NIC rate at which the hottest key's mean busy ports reach its servers.
    pub littles_law_max_rate_per_s: Option<f64>,
    /// Per-NIC rate at which the hottest key's blocking reaches the target.
    pub max_rate_per_s_at_target: Option<f64>,
    /// Carried load on the hottest key: offered × (1 − blocking). Little's law on what gets
    /// through; never more than the key's ports, however far the offered load exceeds them.
    pub carried_hot: f64,
}

/// Whether a point meets the target, and why not.
///
/// One model decides: blocking against the target (the hottest key's, or 100 % for NICs left
/// without a block). Little's law is reported as offered against carried load, never as a
/// second verdict: carried busy ports cannot exceed P.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// True when every check passed.
    pub ok: bool,
    /// The blocking check, when it failed (one sentence). Kept apart from `reasons` so that a
    /// simulation can replace the figure it judges ([`crate::plan::run`]).
    pub blocking_reason: Option<String>,
    /// Other failed checks (IP count, provider limits), one sentence each.
    pub reasons: Vec<String>,
    /// Facts worth knowing that do not fail the point.
    pub notes: Vec<String>,
}

/// The analytic answer for one point.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AnalyticPoint {
    /// Ports per NIC as the rules give them (`None`: no per-NIC blocks).
    pub ports_per_nic_effective: Option<u32>,
    /// Servers per key actually usable (P, or P − 1 with the exclusive-end quirk).
    pub ports_usable: Option<u64>,
    /// floor(ports per IP / P) (`None`: no per-NIC blocks).
    pub nics_per_ip: Option<u64>,
    /// IPs per family needed: per-NIC rules, to give every NIC a block; pooled rules, to keep the
    /// hottest destination under the target. `None`: not reachable within the provider's limit.
    pub ips_needed: Option<u64>,
    /// `ips_needed` × number of families.
    pub addresses_needed: Option<u64>,
    /// NICs that get a block with the configured IPs.
    pub nics_allocated: u64,
    /// NICs left without a block (all their flows dropped, `no_nat_block`).
    pub nics_unallocated: u64,
    /// Share of the busiest destination.
    pub hottest_destination_share: f64,
    /// Per-protocol figures, for protocols with a non-zero share.
    pub protocols: Vec<ProtocolLoad>,
    /// Mean busy ports per NIC, all protocols and destinations.
    pub busy_ports_nic: f64,
    /// Mean busy ports of one NIC on its hottest key (the worst protocol): the offered load.
    pub busy_ports_hot: f64,
    /// Carried busy ports on that key: offered × (1 − blocking), at most its ports.
    pub carried_ports_hot: f64,
    /// Protocol whose hottest key blocks most (`None` without any flow).
    pub worst_protocol: Option<Protocol>,
    /// Worst blocking over the hottest keys of all protocols: Erlang-B for supported ones, 1 for
    /// a protocol the profile drops (Azure and ICMP).
    pub blocking_hot: f64,
    /// Flow-weighted blocking of an allocated NIC (including unsupported protocols).
    pub blocking_nic: f64,
    /// Flow-weighted blocking over the whole fleet (unallocated NICs block everything).
    pub blocking_fleet: f64,
    /// Flows refused per second over the whole fleet.
    pub refused_flows_per_s: f64,
    /// Per-NIC new-flow rate at which the worst hottest key reaches the target.
    pub max_rate_per_s_at_target: Option<f64>,
    /// Smallest power-of-two P meeting the target on every hottest key (per-NIC rules).
    pub recommended_ports_per_nic: Option<u32>,
    /// IPs per family needed at the recommended P (per-NIC rules), or the smallest IP count
    /// meeting the target (pooled rules).
    pub recommended_ips: Option<u64>,
    /// Verdict against the target.
    pub verdict: Verdict,
}

/// Mean port-holding time of one flow of `protocol` (Little's law "T"); `None` if unsupported.
pub fn hold_s(
    protocol: Protocol,
    timers: &ProfileTimers,
    mean_life_s: f64,
    close_fraction: f64,
) -> Option<f64> {
    match protocol {
        Protocol::Tcp => Some(
            mean_life_s
                + close_fraction * timers.tcp_close_hold_s
                + (1.0 - close_fraction) * timers.tcp_established_idle_s,
        ),
        Protocol::Udp => Some(mean_life_s + timers.udp_idle_s + timers.udp_hold_s),
        Protocol::Icmp => timers
            .icmp_idle_s
            .map(|idle_s| mean_life_s + idle_s + timers.icmp_hold_s),
    }
}

thread_local! {
    /// `erlang_b_max_offered` by (servers, target bits). The inverse costs dozens of O(servers)
    /// Erlang-B evaluations and depends only on P and the target, which a sweep repeats across
    /// thousands of points; a pure function, so caching cannot change any figure.
    static MAX_OFFERED: std::cell::RefCell<std::collections::BTreeMap<(u64, u64), Option<f64>>> =
        const { std::cell::RefCell::new(std::collections::BTreeMap::new()) };
}

/// [`erlang_b_max_offered`], memoised per thread.
fn max_offered_cached(servers: u64, target: f64) -> Option<f64> {
    let key = (servers, target.to_bits());
    if let Some(hit) = MAX_OFFERED.with(|c| c.borrow().get(&key).copied()) {
        return hit;
    }
    let value = erlang_b_max_offered(servers, target);
    MAX_OFFERED.with(|c| c.borrow_mut().insert(key, value));
    value
}

/// Usable servers on a per-NIC key for a block of `ports` (the quirk takes one away).
pub fn usable(ports: u32, exclusive_block_end: bool) -> u64 {
    let p = u64::from(ports);
    if exclusive_block_end {
        p.saturating_sub(1)
    } else {
        p
    }
}

/// Evaluates one point.
pub fn evaluate(point: &PointParams) -> AnalyticPoint {
    let gw = &point.gateway;
    let traffic = &point.traffic;
    let limits = gw.rules.limits();
    let target = point.blocking_max;
    let zipf = Zipf::new(traffic.destinations, traffic.zipf_s);
    let families = gw.ip_families.len() as u64;

    // Pooled rules (AWS, Azure) key on the destination across the fleet, whatever the profile's
    // scope says; per-NIC rules key on destinations unless the scope is the whole NIC.
    let per_destination = !limits.per_nic_blocks || gw.limit_scope != LimitScope::Nic;
    let hot_share = if per_destination {
        zipf.hottest_share()
    } else {
        1.0
    };
    // Pooled rules multiply one NIC's load by the fleet; per-NIC rules look at one NIC.
    let load_multiplier = if limits.per_nic_blocks {
        1.0
    } else {
        point.nics as f64
    };
    let ips_for_servers = match limits.max_ips {
        Some(max) => gw.ips.min(u64::from(max)),
        None => gw.ips,
    };
    let servers = match (
        gw.ports_per_nic_effective,
        limits.connections_per_ip_per_destination,
    ) {
        (Some(p), _) => usable(p, gw.exclusive_block_end),
        (None, Some(per_ip)) => u64::from(per_ip) * ips_for_servers,
        (None, None) => 0,
    };

    let mut protocols = Vec::new();
    for protocol in Protocol::ALL {
        let share = traffic.protocol_mix.share(protocol);
        if share <= 0.0 {
            continue;
        }
        let rate_per_s = traffic.flow_rate_per_s * share;
        let hold = hold_s(
            protocol,
            &gw.timers,
            traffic.flow_duration.mean_s,
            traffic.close_fraction,
        );
        let Some(hold) = hold else {
            protocols.push(ProtocolLoad {
                protocol,
                share,
                supported: false,
                rate_per_s,
                hold_s: 0.0,
                busy_ports_nic: 0.0,
                busy_ports_hot: 0.0,
                offered_hot: 0.0,
                servers: 0,
                blocking_hot: 1.0,
                blocking_weighted: 1.0,
                littles_law_max_rate_per_s: None,
                max_rate_per_s_at_target: None,
                carried_hot: 0.0,
            });
            continue;
        };
        let busy_nic = busy_ports(rate_per_s, hold);
        let busy_hot = busy_nic * hot_share;
        let offered_hot = busy_hot * load_multiplier;
        let blocking_hot = erlang_b(servers, offered_hot);
        let blocking_weighted = if per_destination {
            zipf.weighted_blocking(servers, busy_nic * load_multiplier)
        } else {
            blocking_hot
        };
        // Per-NIC rate that puts `load` Erlangs on the hottest key.
        let per_nic_rate = |load: f64| {
            let erlangs_per_rate = share * hold * hot_share * load_multiplier;
            (erlangs_per_rate > 0.0).then(|| load / erlangs_per_rate)
        };
        // Little's law bound: the key's mean busy ports equal its servers.
        let littles = per_nic_rate(servers as f64).filter(|_| servers > 0);
        let at_target = max_offered_cached(servers, target).and_then(per_nic_rate);
        protocols.push(ProtocolLoad {
            protocol,
            share,
            supported: true,
            rate_per_s,
            hold_s: hold,
            busy_ports_nic: busy_nic,
            busy_ports_hot: busy_hot,
            offered_hot,
            servers,
            blocking_hot,
            blocking_weighted,
            littles_law_max_rate_per_s: littles,
            max_rate_per_s_at_target: at_target,
            carried_hot: offered_hot * (1.0 - blocking_hot),
        });
    }

    let supported: Vec<&ProtocolLoad> = protocols.iter().filter(|p| p.supported).collect();
    let busy_ports_nic = supported.iter().map(|p| p.busy_ports_nic).sum();
    let busy_ports_hot = supported
        .iter()
        .map(|p| p.busy_ports_hot)
        .fold(0.0, f64::max);
    let offered_hot_max = supported.iter().map(|p| p.offered_hot).fold(0.0, f64::max);
    // Dropped protocols count: their flows are refused on every key (blocking 1).
    let worst = protocols.iter().reduce(|a, b| {
        if b.blocking_hot > a.blocking_hot {
            b
        } else {
            a
        }
    });
    let blocking_hot = worst.map_or(0.0, |p| p.blocking_hot);
    let worst_protocol = worst.map(|p| p.protocol);
    let carried_ports_hot = supported
        .iter()
        .map(|p| p.carried_hot / load_multiplier)
        .fold(0.0, f64::max);
    let drops_protocol = supported.len() < protocols.len();
    let blocking_nic: f64 = protocols
        .iter()
        .map(|p| p.share * p.blocking_weighted)
        .sum();
    let max_rate_per_s_at_target = supported
        .iter()
        .map(|p| p.max_rate_per_s_at_target)
        .try_fold(f64::INFINITY, |acc, r| r.map(|r| acc.min(r)))
        .filter(|r| r.is_finite());

    // Allocation and recommendations.
    let (nics_per_ip, ips_needed, nics_allocated, recommended_ports_per_nic, recommended_ips) =
        match gw.ports_per_nic_effective {
            Some(p) => {
                let per_ip = u64::from(limits.ports_per_ip / p);
                let needed = point.nics.div_ceil(per_ip.max(1));
                let allocated = point.nics.min(per_ip.saturating_mul(gw.ips));
                let loads: Vec<f64> = supported.iter().map(|l| l.offered_hot).collect();
                // No P carries a protocol the profile drops.
                let rec_p = min_power_of_two_ports(&loads, target, gw.exclusive_block_end)
                    .filter(|_| !drops_protocol);
                let rec_ips = rec_p.map(|rp| point.nics.div_ceil(u64::from(PORTS_PER_IP / rp)));
                (Some(per_ip), Some(needed), allocated, rec_p, rec_ips)
            }
            None => {
                let per_ip = u64::from(limits.connections_per_ip_per_destination.unwrap_or(0));
                let max_ips = u64::from(limits.max_ips.unwrap_or(u32::MAX));
                let needed = min_units(per_ip, max_ips, offered_hot_max, target);
                let recommended = needed.filter(|_| !drops_protocol);
                (None, needed, point.nics, None, recommended)
            }
        };
    let nics_unallocated = point.nics - nics_allocated;
    let blocking_fleet = if point.nics == 0 {
        0.0
    } else {
        (nics_allocated as f64 * blocking_nic + nics_unallocated as f64) / point.nics as f64
    };
    let refused_flows_per_s = point.nics as f64 * traffic.flow_rate_per_s * blocking_fleet;

    let mut reasons = Vec::new();
    let mut notes = Vec::new();
    let blocking_reason = (blocking_hot > target).then(|| {
        blocking_text(
            blocking_hot,
            target,
            worst_protocol.map_or("", |p| p.as_str()),
            "Erlang-B",
        )
    });
    for p in &supported {
        if p.offered_hot > p.servers as f64 {
            // Little's law as offered against carried load: the excess is refused, which the
            // blocking figure already judges.
            notes.push(format!(
                "{}: offered load on the hottest key {} Erlangs exceeds its {} ports; {} are \
                 carried, the rest refused",
                p.protocol.as_str(),
                sig3(p.offered_hot),
                p.servers,
                sig3(p.carried_hot)
            ));
        }
    }
    if nics_unallocated > 0 {
        reasons.push(format!(
            "{nics_unallocated} NICs get no port block: {} IPs per family needed, {} configured",
            ips_needed.unwrap_or(0),
            gw.ips
        ));
    }
    if let Some(max) = limits.max_ips {
        if gw.ips > u64::from(max) {
            reasons.push(format!(
                "{} allows at most {max} IPs per gateway, {} configured",
                gw.rules.as_str(),
                gw.ips
            ));
        }
        match ips_needed {
            Some(n) if n > gw.ips => reasons.push(format!(
                "{n} IPs needed to meet the target at the hottest destination, {} configured",
                gw.ips
            )),
            None => reasons.push(format!(
                "the target cannot be met at the hottest destination even with {max} IPs"
            )),
            Some(_) => {}
        }
    }
    for p in protocols.iter().filter(|p| !p.supported) {
        notes.push(format!(
            "profile {} drops {}: {} of flows refused regardless of capacity (counted as 100% \
             blocking of {}; no P or IP count meets the target)",
            gw.profile.as_str(),
            p.protocol.as_str(),
            percent(p.share),
            p.protocol.as_str()
        ));
    }
    if gw.rules == Rules::Gcp && gw.ports_per_nic_effective.map(u64::from) != Some(gw.ports_per_nic)
    {
        notes.push(format!(
            "GCP rounds {} ports per VM up to {}",
            gw.ports_per_nic,
            gw.ports_per_nic_effective.unwrap_or(0)
        ));
    }
    if families > 1 {
        notes.push(format!(
            "{families} families: each needs its own IPs and blocks"
        ));
    }

    AnalyticPoint {
        ports_per_nic_effective: gw.ports_per_nic_effective,
        ports_usable: gw.ports_per_nic_effective.map(|_| servers),
        nics_per_ip,
        ips_needed,
        addresses_needed: ips_needed.map(|n| n * families),
        nics_allocated,
        nics_unallocated,
        hottest_destination_share: hot_share,
        busy_ports_nic,
        busy_ports_hot,
        blocking_hot,
        blocking_nic,
        blocking_fleet,
        refused_flows_per_s,
        max_rate_per_s_at_target,
        recommended_ports_per_nic,
        recommended_ips,
        carried_ports_hot,
        worst_protocol,
        verdict: Verdict {
            ok: reasons.is_empty() && blocking_reason.is_none(),
            blocking_reason,
            reasons,
            notes,
        },
        protocols,
    }
}

/// The blocking check's sentence: `figure` of `protocol`'s new flows blocked on the hottest key,
/// by `basis` (Erlang-B, the simulation, or the worse of both).
pub fn blocking_text(figure: f64, target: f64, protocol: &str, basis: &str) -> String {
    format!(
        "hottest scope key blocks {} of new {protocol} flows ({basis}), above the {} target",
        percent(figure),
        percent(target)
    )
}

/// Smallest power-of-two P (1..=32768) meeting `target` on every load, honouring the quirk.
pub fn min_power_of_two_ports(
    loads: &[f64],
    target: f64,
    exclusive_block_end: bool,
) -> Option<u32> {
    let mut p = 1_u32;
    while p <= super::analytic::MAX_POWER_OF_TWO_PORTS {
        let servers = usable(p, exclusive_block_end);
        if loads.iter().all(|&a| erlang_b(servers, a) <= target) {
            return Some(p);
        }
        p *= 2;
    }
    None
}

/// The same fleet evaluated under IronCore, GCP, AWS and Azure rules, each with its native
/// profile (timer overrides are dropped, since they describe one provider). P is kept as
/// requested (GCP rounds it up) and ignored by the pooled providers.
pub fn compare_providers(base: &PointParams) -> Vec<(Rules, AnalyticPoint)> {
    Rules::ALL
        .into_iter()
        .map(|rules| {
            let mut point = base.clone();
            let profile = rules.limits().native_profile;
            let timers = ProfileTimers::of(profile);
            point.gateway.rules = rules;
            point.gateway.profile = profile;
            point.gateway.timers = timers;
            point.gateway.limit_scope = timers.limit_scope;
            // A P the rules cannot take falls back to GCP's default minimum, which every
            // per-NIC rule accepts.
            point.gateway.ports_per_nic_effective = rules
                .effective_ports_per_nic(base.gateway.ports_per_nic)
                .unwrap_or_else(|_| {
                    rules
                        .effective_ports_per_nic(u64::from(
                            super::providers::GCP_DEFAULT_MIN_PORTS_PER_VM,
                        ))
                        .ok()
                        .flatten()
                });
            (rules, evaluate(&point))
        })
        .collect()
}

/// Formats a probability as a percentage with three significant digits.
pub fn percent(p: f64) -> String {
    let pct = p * 100.0;
    if pct == 0.0 {
        "0%".to_string()
    } else if pct < 1e-10 {
        // Below this the number is float noise from the recurrence, not a usable figure.
        "<1e-10%".to_string()
    } else if pct >= 0.01 {
        format!("{}%", sig3(pct))
    } else {
        format!("{}%", sci3(pct))
    }
}

/// Scientific notation with up to three significant digits: `2.6e-5`, `1e-4`.
pub fn sci3(x: f64) -> String {
    let text = format!("{x:.2e}");
    match text.split_once('e') {
        Some((mantissa, exponent)) if mantissa.contains('.') => {
            let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
            format!("{mantissa}e{exponent}")
        }
        _ => text,
    }
}

/// Three significant digits without trailing zeros (deterministic text for reports).
pub fn sig3(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let magnitude = x.abs().log10().floor() as i32;
    let decimals = (2 - magnitude).clamp(0, 12) as usize;
    let text = format!("{x:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}
