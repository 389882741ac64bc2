//! One verdict and one recommendation per point, from one model: the hottest key's blocking
//! against the target. Without a simulation that is Erlang-B; with one, the worse of Erlang-B
//! and the simulated figure, so that no verdict contradicts its own simulated number and the
//! recommendation never says "keep this P" for a point that fails.
//!
//! When the simulation is worse, the recommendation is sized for the **equivalent offered
//! load**: the load at which Erlang-B on the point's ports gives the simulated blocking. That
//! load stands in for what Erlang-B leaves out (client retries re-offering refused flows, the
//! dpservice aging scan lengthening holds); larger P are judged at it. It is an extrapolation
//! from the simulated P; `docs/planning.md` says so.

use serde::Serialize;

use super::analytic::{PORTS_PER_IP, erlang_b_max_offered};
use super::interval::Interval;
use super::model::{AnalyticPoint, blocking_text, min_power_of_two_ports, percent};
use super::params::{PointParams, Protocol};
use super::profiles::ProfileName;
use super::run::SimulatedPoint;

/// Which figure the verdict judged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// Erlang-B (no simulation, or the simulation was not worse).
    ErlangB,
    /// The simulated blocking, worse than Erlang-B.
    Simulated,
}

/// The point's verdict and recommendation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Decision {
    /// True when every check passed.
    pub ok: bool,
    /// The hottest-key blocking judged against the target.
    pub blocking: f64,
    /// Where that figure came from.
    pub basis: Basis,
    /// Failed checks, one sentence each.
    pub reasons: Vec<String>,
    /// Why the simulated figure was used, shown next to the point's row (`None`: Erlang-B).
    pub why: Option<String>,
    /// Equivalent offered load over the point's Erlang-B load (1 when judged on Erlang-B).
    pub load_factor: f64,
    /// Smallest power-of-two P meeting the target at the judged load (per-NIC rules).
    pub recommended_ports_per_nic: Option<u32>,
    /// IPs per family at that P (per-NIC rules), or the smallest IP count meeting the target
    /// (pooled rules). `None`: not reachable.
    pub recommended_ips: Option<u64>,
}

/// Decides one point from its analytic answer and, if it ran, its simulation.
pub fn decide(
    point: &PointParams,
    analytic: &AnalyticPoint,
    simulated: Option<&SimulatedPoint>,
) -> Decision {
    let target = point.blocking_max;
    let analytic_hot = analytic.blocking_hot;
    let sim_hot = simulated.and_then(|s| s.blocking_hot.map(|b| (b, s.blocking_hot_interval)));
    let mut decision = Decision {
        ok: true,
        blocking: analytic_hot,
        basis: Basis::ErlangB,
        reasons: Vec::new(),
        why: None,
        load_factor: 1.0,
        recommended_ports_per_nic: analytic.recommended_ports_per_nic,
        recommended_ips: analytic.recommended_ips,
    };
    let mut basis_text = "Erlang-B".to_string();
    let mut protocol = analytic.worst_protocol.map_or("", Protocol::as_str);
    if let Some((sim, interval)) = sim_hot
        && sim > analytic_hot
    {
        decision.blocking = sim;
        decision.basis = Basis::Simulated;
        protocol = "";
        basis_text = format!("simulated{}", interval_text(interval.as_ref()));
        let beyond = interval.is_none_or(|i| i.low > analytic_hot);
        decision.why = Some(if beyond {
            format!(
                "simulated {}{} is above Erlang-B's {} beyond its uncertainty: {}",
                percent(sim),
                interval_text(interval.as_ref()),
                percent(analytic_hot),
                causes(point, analytic)
            )
        } else {
            format!(
                "simulated {}{} is within its uncertainty of Erlang-B's {}; judged on the worse \
                 figure",
                percent(sim),
                interval_text(interval.as_ref()),
                percent(analytic_hot)
            )
        });
        // Per-NIC rules only: pooled providers are not simulated.
        if let Some(servers) = analytic.ports_usable {
            let (factor, rec_p) = equivalent_load(point, analytic, servers, sim);
            decision.load_factor = factor;
            decision.recommended_ports_per_nic = rec_p;
            decision.recommended_ips = rec_p.map(|rp| {
                point
                    .nics
                    .div_ceil(u64::from(PORTS_PER_IP / rp.max(1)).max(1))
            });
        }
    }
    if decision.blocking > target {
        decision.reasons.push(blocking_text(
            decision.blocking,
            target,
            protocol,
            &basis_text,
        ));
    }
    decision
        .reasons
        .extend(analytic.verdict.reasons.iter().cloned());
    decision.ok = decision.reasons.is_empty();
    decision
}

/// `" (95% 1.2–3.4%, 12345 flows)"`, or nothing without an interval.
pub fn interval_text(interval: Option<&Interval>) -> String {
    interval.map_or_else(String::new, |i| {
        format!(
            " (95% {}–{}, {} flows)",
            percent(i.low),
            percent(i.high),
            i.flows
        )
    })
}

/// The load factor at which Erlang-B on `servers` ports gives `sim`, and the smallest P that
/// meets the target at the scaled loads.
fn equivalent_load(
    point: &PointParams,
    analytic: &AnalyticPoint,
    servers: u64,
    sim: f64,
) -> (f64, Option<u32>) {
    let loads: Vec<f64> = analytic
        .protocols
        .iter()
        .filter(|l| l.supported)
        .map(|l| l.offered_hot)
        .collect();
    let drops = analytic.protocols.iter().any(|l| !l.supported);
    let max_load = loads.iter().copied().fold(0.0, f64::max);
    // Erlang-B reaches 1 only at infinite load: cap the figure just below it.
    let equivalent = erlang_b_max_offered(servers, sim.min(1.0 - 1e-9));
    let (factor, scaled): (f64, Vec<f64>) = match equivalent {
        // Slightly above the inverse, so that P itself fails when the simulation failed it.
        Some(a) if max_load > 0.0 => {
            let k = (a * (1.0 + 1e-9) / max_load).max(1.0);
            (k, loads.iter().map(|l| l * k).collect())
        }
        Some(a) => (1.0, vec![a * (1.0 + 1e-9)]),
        None => (1.0, loads),
    };
    let rec = min_power_of_two_ports(
        &scaled,
        point.blocking_max,
        point.gateway.exclusive_block_end,
    )
    .filter(|_| !drops);
    (factor, rec)
}

/// What Erlang-B leaves out at this point, as far as the point's settings tell.
fn causes(point: &PointParams, analytic: &AnalyticPoint) -> String {
    let mut out = Vec::new();
    let tcp = point.traffic.protocol_mix.tcp;
    if tcp > 0.0 {
        out.push("TCP clients resend a refused SYN for 25 s, re-offering load while the key is full (Erlang-B drops refused flows)");
    }
    if point.traffic.protocol_mix.udp > 0.0 {
        out.push("UDP flows keep sending after a refusal");
    }
    if point.gateway.profile == ProfileName::Dpservice {
        out.push("dpservice's 5 s aging scan frees ports in bursts (holds ≈ 2.5 s longer)");
    }
    if analytic.protocols.iter().any(|l| !l.supported) {
        out.push("the profile drops ICMP");
    }
    if out.is_empty() {
        out.push("fixed holds make the key fill and drain in waves");
    }
    out.join("; ")
}
