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
