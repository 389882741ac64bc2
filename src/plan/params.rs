//! The fully resolved parameters of one plan point: what the analytic model evaluates and what a
//! simulator will replay. Every value here has been validated; nothing is optional any more.

use serde::{Deserialize, Serialize};

use super::profiles::{LimitScope, ProfileName, ProfileTimers};
use super::providers::Rules;
use crate::rng::Rng;

/// An address family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Family {
    /// IPv4.
    IPv4,
    /// IPv6.
    IPv6,
}

/// A transport protocol of the traffic mix; each has its own ports, so its own scope keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// ICMP echo (identifiers mapped like ports).
    Icmp,
}

impl Protocol {
    /// Every protocol, in report order.
    pub const ALL: [Protocol; 3] = [Protocol::Tcp, Protocol::Udp, Protocol::Icmp];

    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Icmp => "icmp",
        }
    }
}

/// The shape of the flow-life distribution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DurationDist {
    /// Every flow lives exactly `mean_s`.
    Fixed,
    /// Exponential with mean `mean_s`.
    Exponential,
    /// Pareto (heavy-tailed) with mean `mean_s` and shape α > 1.
    Pareto,
}

/// How long a flow lives (first to last packet).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct FlowDuration {
    /// Distribution shape.
    pub dist: DurationDist,
    /// Mean life in seconds.
    pub mean_s: f64,
    /// Pareto shape α (> 1 for a finite mean); `None` for the other shapes.
    pub pareto_shape: Option<f64>,
}

impl FlowDuration {
    /// Draws one flow life in seconds (for the simulator; the analytic model uses the mean only).
    pub fn sample_s(&self, rng: &mut Rng) -> f64 {
        // 1 − u lies in (0, 1], so ln and powf stay finite.
        let u = 1.0 - rng.unit_f64();
        match (self.dist, self.pareto_shape) {
            (DurationDist::Fixed, _) => self.mean_s,
            (DurationDist::Exponential, _) => -self.mean_s * u.ln(),
            (DurationDist::Pareto, Some(alpha)) if alpha > 1.0 => {
                let scale_s = self.mean_s * (alpha - 1.0) / alpha;
                scale_s / u.powf(1.0 / alpha)
            }
            (DurationDist::Pareto, _) => self.mean_s,
        }
    }
}

/// Shares of new flows per protocol; normalised to sum to 1.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ProtocolMix {
    /// TCP share.
    pub tcp: f64,
    /// UDP share.
    pub udp: f64,
    /// ICMP share.
    pub icmp: f64,
}

impl ProtocolMix {
    /// The share of `protocol`.
    pub fn share(&self, protocol: Protocol) -> f64 {
        match protocol {
            Protocol::Tcp => self.tcp,
            Protocol::Udp => self.udp,
            Protocol::Icmp => self.icmp,
        }
    }
}

/// Per-NIC traffic.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Traffic {
    /// New flows per second per NIC (Poisson arrivals in the analytic model).
    pub flow_rate_per_s: f64,
    /// Flow life.
    pub flow_duration: FlowDuration,
    /// Fraction of TCP flows that end by a close (FIN/RST); the rest end by idle timeout.
    /// UDP and ICMP flows always end by idle timeout.
    pub close_fraction: f64,
    /// Number of distinct destinations (remote endpoints, each on its own remote IP).
    pub destinations: u64,
    /// Zipf skew over destinations (0 = uniform).
    pub zipf_s: f64,
    /// Protocol shares.
    pub protocol_mix: ProtocolMix,
}

/// The gateway of one point, resolved against its rules and profile.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GatewayParams {
    /// Provider rules.
    pub rules: Rules,
    /// P as requested in the plan.
    pub ports_per_nic: u64,
    /// P as the rules give it (GCP rounds up); `None` for fleet-pooled rules (AWS, Azure).
    pub ports_per_nic_effective: Option<u32>,
    /// Public IPs per family (IEP `spec.ips` entries).
    pub ips: u64,
    /// Address families.
    pub ip_families: Vec<Family>,
    /// Profile the timers came from.
    pub profile: ProfileName,
    /// Timers after overrides.
    pub timers: ProfileTimers,
    /// Scope after overrides.
    pub limit_scope: LimitScope,
    /// Quirk: dpservice treats the block end as exclusive, so a NIC really gets P − 1 ports.
    pub exclusive_block_end: bool,
}

/// Simulation settings carried for the simulator hook; unused by the analytic model.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct SimulationParams {
    /// Virtual run length in seconds.
    pub duration_s: f64,
    /// Leading part of the run excluded from measurements.
    pub warmup_s: f64,
}

/// One swept parameter's value at a point.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Coordinate {
    /// Parameter path, e.g. `gateway.ports_per_nic`.
    pub param: String,
    /// Value as written in the plan (ranges: the computed value).
    pub value: String,
}

/// Everything about one point of a plan.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PointParams {
    /// Position in sweep order (0-based).
    pub index: usize,
    /// Seed for this point's simulation: derived from the plan seed and the index.
    pub seed: u64,
    /// The swept values that make this point, in sweep order.
    pub coordinates: Vec<Coordinate>,
    /// NICs behind the gateway.
    pub nics: u64,
    /// Per-NIC traffic.
    pub traffic: Traffic,
    /// Gateway.
    pub gateway: GatewayParams,
    /// Target: highest acceptable blocking probability.
    pub blocking_max: f64,
    /// Simulation settings.
    pub simulation: SimulationParams,
}

impl PointParams {
    /// The value of swept parameter `param` at this point, if it was swept.
    pub fn coordinate(&self, param: &str) -> Option<&str> {
        self.coordinates
            .iter()
            .find(|c| c.param == param)
            .map(|c| c.value.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mean_of(d: FlowDuration) -> f64 {
        let mut rng = Rng::new(9, 0);
        let n = 200_000;
        (0..n).map(|_| d.sample_s(&mut rng)).sum::<f64>() / f64::from(n)
    }

    #[test]
    fn sampled_means_match() {
        let exp = FlowDuration {
            dist: DurationDist::Exponential,
            mean_s: 10.0,
            pareto_shape: None,
        };
        assert!((mean_of(exp) - 10.0).abs() < 0.2);
        let pareto = FlowDuration {
            dist: DurationDist::Pareto,
            mean_s: 10.0,
            pareto_shape: Some(3.0),
        };
        assert!((mean_of(pareto) - 10.0).abs() < 0.3);
    }
}
