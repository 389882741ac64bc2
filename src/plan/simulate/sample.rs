//! Which NICs a simulated point runs, and how their counts scale to the fleet.
//!
//! With per-NIC port blocks (IronCore, GCP) every NIC has its own ports and scope keys, so NICs
//! do not interact and a sample of identical NICs measures the same per-NIC blocking as the
//! whole fleet. The fleet splits into two strata: NICs that get a block (`min(N, IPs × NICs per
//! IP)`) and NICs left without one. Each stratum is represented by a sample sized to a flow
//! budget, and its counts are multiplied by `fleet NICs in the stratum / sampled NICs`.

use crate::plan::analytic::PORTS_PER_IP;
use crate::plan::params::PointParams;

/// Simulated flows per point (warm-up included) the allocated sample is sized to. About 30
/// simulator events per TCP flow: 100,000 flows take roughly a second in a release build.
pub const FLOW_BUDGET: f64 = 100_000.0;

/// Most NICs sampled from one stratum, even when the budget would allow more (idle fleets).
pub const MAX_SAMPLE_NICS: u64 = 2_000;

/// The sample of one point.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    /// P as the rules give it.
    pub ports_per_nic: u32,
    /// Fleet NICs that get a block.
    pub fleet_allocated: u64,
    /// Fleet NICs left without a block.
    pub fleet_unallocated: u64,
    /// Sampled NICs that get a block.
    pub allocated: u64,
    /// Sampled NICs left without one.
    pub unallocated: u64,
    /// Idle NICs that fill the last simulated IP so the unallocated sample finds no free slot.
    pub filler: u64,
    /// Public IPs the simulated gateway gets.
    pub ips: u64,
}

impl Sample {
    /// Sizes the sample of `point`; `Err` says why the point cannot be simulated.
    pub fn of(point: &PointParams) -> Result<Sample, String> {
        let gw = &point.gateway;
        let Some(ports_per_nic) = gw.ports_per_nic_effective else {
            return Err(format!(
                "{} rules pool ports across the fleet; the simulator models per-NIC blocks only",
                gw.rules.as_str()
            ));
        };
        let per_ip = u64::from(PORTS_PER_IP / ports_per_nic.max(1)).max(1);
        let fleet_allocated = point.nics.min(per_ip.saturating_mul(gw.ips));
        let fleet_unallocated = point.nics - fleet_allocated;
        let flows_per_nic = point.traffic.flow_rate_per_s * point.simulation.duration_s;
        let by_budget = if flows_per_nic > 0.0 {
            // Saturating float-to-int cast; at least one NIC whatever the budget says.
            ((FLOW_BUDGET / flows_per_nic).floor() as u64).max(1)
        } else {
            MAX_SAMPLE_NICS
        };
        let allocated = fleet_allocated.min(by_budget).min(MAX_SAMPLE_NICS);
        // Every flow of an unallocated NIC is refused at its first packet, so a few NICs measure
        // that stratum well; a quarter of the allocated sample keeps its cost small.
        let unallocated = fleet_unallocated.min((allocated / 4).max(1));
        // A gateway without IPs (plan `ips: 0`) stays without IPs: nobody gets a block.
        let ips = allocated.div_ceil(per_ip);
        let filler = if unallocated > 0 && ips > 0 {
            ips * per_ip - allocated
        } else {
            0
        };
        Ok(Sample {
            ports_per_nic,
            fleet_allocated,
            fleet_unallocated,
            allocated,
            unallocated,
            filler,
            ips,
        })
    }

    /// Fleet NICs per sampled allocated NIC.
    pub fn scale_allocated(&self) -> f64 {
        ratio(self.fleet_allocated, self.allocated)
    }

    /// Fleet NICs per sampled unallocated NIC.
    pub fn scale_unallocated(&self) -> f64 {
        ratio(self.fleet_unallocated, self.unallocated)
    }
}

fn ratio(fleet: u64, sampled: u64) -> f64 {
    if sampled == 0 {
        0.0
    } else {
        fleet as f64 / sampled as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::file::Plan;

    fn point(rules: &str, rate: f64) -> PointParams {
        let text = format!(
            "apiVersion: natsim.dev/v1\nkind: Plan\nmetadata: {{name: s}}\n\
             fleet:\n  nics: 5000\n  traffic:\n    flow_rate_per_s: {rate}\n    \
             flow_duration: {{mean_s: 5}}\n    protocol_mix: {{tcp: 1}}\n\
             gateway: {{rules: {rules}, ports_per_nic: 1024, ips: 8}}\n\
             target: {{blocking_max: 0.01}}\nsimulation: {{duration_s: 1000, warmup_s: 100}}\n"
        );
        let plan = Plan::parse(&text, "s.yaml").expect("valid plan");
        plan.points[0].clone()
    }

    #[test]
    fn strata_fillers_and_scales() {
        // 63 NICs per IP × 8 IPs = 504 NICs with a block, 4496 without.
        let s = Sample::of(&point("ironcore", 1.0)).expect("simulable");
        assert_eq!((s.fleet_allocated, s.fleet_unallocated), (504, 4496));
        // 100,000 flows / (1 flow/s × 1000 s) = 100 NICs; a quarter of that without a block.
        assert_eq!((s.allocated, s.unallocated), (100, 25));
        // Two IPs hold the 100 sampled NICs; 26 idle fillers take the rest of their slots.
        assert_eq!((s.ips, s.filler), (2, 26));
        assert!((s.scale_allocated() - 5.04).abs() < 1e-12);
        assert!((s.scale_unallocated() - 179.84).abs() < 1e-12);
        // A busy NIC alone exceeds the budget: still one NIC.
        assert_eq!(
            Sample::of(&point("ironcore", 500.0)).map(|s| s.allocated),
            Ok(1)
        );
    }

    #[test]
    fn pooled_rules_are_declined() {
        let err = Sample::of(&point("aws", 1.0)).expect_err("not simulable");
        assert!(err.contains("aws"), "{err}");
    }
}
