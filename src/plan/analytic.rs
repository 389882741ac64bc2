//! The analytic capacity model: block arithmetic (behaviour §3, §7), Little's law, Erlang-B and Zipf
//! destination skew. Pure functions on numbers; no plan files, no I/O.
//!
//! Everything here is exact or numerically stable by construction, because the report must give
//! the same figures on every machine and the behaviour §7 figures are tested to the last digit.

use thiserror::Error;

/// Usable NAT ports per public IP: 1024..=65535 (behaviour §3).
pub const PORTS_PER_IP: u32 = 64_512;

/// The first usable NAT port (ports below are never handed out).
pub const FIRST_PORT: u32 = 1024;

/// The largest power of two that still leaves one slot per IP (65536 > 64512 would give zero).
pub const MAX_POWER_OF_TWO_PORTS: u32 = 32_768;

/// Errors from the block arithmetic.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum AnalyticError {
    /// P must be a power of two in 1..=64512 (behaviour §2); IronCore divides by zero above 64512.
    #[error("ports per NIC must be a power of two in 1..=64512, got {0}")]
    BadPortsPerNic(u64),
}

/// Checks that `ports_per_nic` is a valid IronCore P: a power of two in `1..=64512`.
pub fn check_ports_per_nic(ports_per_nic: u64) -> Result<u32, AnalyticError> {
    if ports_per_nic == 0
        || ports_per_nic > u64::from(PORTS_PER_IP)
        || !ports_per_nic.is_power_of_two()
    {
        return Err(AnalyticError::BadPortsPerNic(ports_per_nic));
    }
    // In range, so the narrowing cannot fail; keep it checked anyway.
    u32::try_from(ports_per_nic).map_err(|_| AnalyticError::BadPortsPerNic(ports_per_nic))
}

/// NICs that one public IP can serve: `floor(64512 / P)` (IronCore's `slotsPerIP`).
pub fn nics_per_ip(ports_per_nic: u64) -> Result<u64, AnalyticError> {
    let p = check_ports_per_nic(ports_per_nic)?;
    Ok(u64::from(PORTS_PER_IP / p))
}

/// Public IPs needed per family for `nics` NICs: `ceil(nics / nics_per_ip)`.
pub fn ips_needed(nics: u64, ports_per_nic: u64) -> Result<u64, AnalyticError> {
    let per_ip = nics_per_ip(ports_per_nic)?;
    Ok(nics.div_ceil(per_ip))
}

/// Little's law: mean ports busy = new-flow rate × mean time a flow holds its port.
///
/// `hold_s` is the whole time the port is tied up: flow life plus the hold after close, or plus
/// the idle timeout (and any hold after expiry) when the flow ends by timeout.
pub fn busy_ports(rate_per_s: f64, hold_s: f64) -> f64 {
    rate_per_s * hold_s
}

/// The new-flow rate at which the mean busy ports reach `ports` (Little's law inverted):
/// `ports / hold_s`. Above it the scope key is exhausted on average, whatever the variance.
/// Returns `None` for a non-positive hold (the port is never held: no limit).
pub fn littles_law_max_rate_per_s(ports: u32, hold_s: f64) -> Option<f64> {
    (hold_s > 0.0).then(|| f64::from(ports) / hold_s)
}

/// Erlang-B blocking probability: `servers` ports, offered load `offered` = λ·T (Erlangs).
///
/// Uses the recurrence B(0) = 1, B(k) = A·B(k−1) / (k + A·B(k−1)), which never overflows and
/// stays accurate for large `servers` (the textbook formula with factorials does not).
/// Assumes Poisson arrivals and no waiting room (a refused flow is lost, not queued); the result
/// does not depend on the holding-time distribution beyond its mean (Erlang-B insensitivity).
pub fn erlang_b(servers: u64, offered: f64) -> f64 {
    if offered <= 0.0 || offered.is_nan() {
        return if servers == 0 { 1.0 } else { 0.0 };
    }
    let mut b = 1.0_f64;
    for k in 1..=servers {
        let ab = offered * b;
        b = ab / (k as f64 + ab);
        // Once B underflows it stays zero; stop early to keep large P cheap.
        if b == 0.0 {
            break;
        }
    }
    b
}

/// The largest offered load (Erlangs) whose Erlang-B blocking with `servers` ports is at most
/// `target` (0 < target < 1). Returns `None` when `target` is outside (0, 1) or `servers` is zero.
///
/// Safeguarded Newton on ln B (dB/dA = B·(N/A − 1 + B)) inside a bisection bracket: each Erlang-B
/// evaluation costs O(servers), and pooled providers have hundreds of thousands of servers, so
/// the ~10 evaluations Newton needs matter against the ~100 of plain bisection. The returned load
/// always satisfies B ≤ target (the feasible end of the final bracket).
pub fn erlang_b_max_offered(servers: u64, target: f64) -> Option<f64> {
    if servers == 0 || !(target > 0.0 && target < 1.0) {
        return None;
    }
    let n = servers as f64;
    let mut lo = 0.0_f64;
    let mut hi = n.max(1.0);
    // B(N, A) → 1 − N/A for large A, so doubling brackets any target < 1 quickly.
    let mut grow = 0;
    while erlang_b(servers, hi) <= target {
        lo = hi;
        hi *= 2.0;
        grow += 1;
        if grow > 200 {
            return None;
        }
    }
    let ln_target = target.ln();
    let mut a = 0.5 * (lo + hi);
    // A fixed iteration cap keeps the run time bounded; the tolerance is relative to the load.
    for _ in 0..200 {
        let b = erlang_b(servers, a);
        if b <= target {
            lo = a;
        } else {
            hi = a;
        }
        if hi - lo <= hi * 1e-13 {
            break;
        }
        let slope = n / a - 1.0 + b;
        let newton = if b > 0.0 && slope > 0.0 {
            a - (b.ln() - ln_target) / slope
        } else {
            f64::NAN
        };
        // Converged: the step is below the tolerance. Keep the feasible side.
        if (newton - a).abs() <= a * 1e-13 {
            if b > target && erlang_b(servers, newton.min(a)) <= target {
                lo = newton.min(a);
            }
            break;
        }
        // Newton inside the bracket, bisection otherwise.
        a = if newton > lo && newton < hi {
            newton
        } else {
            0.5 * (lo + hi)
        };
    }
    Some(lo)
}

/// The smallest power-of-two P (1..=32768) whose Erlang-B blocking is at most `target` for every
/// offered load in `offered_loads` (one per scope key, e.g. per protocol). `None` if even 32768
/// ports do not meet the target.
pub fn min_ports_per_nic(offered_loads: &[f64], target: f64) -> Option<u32> {
    let mut p = 1_u32;
    while p <= MAX_POWER_OF_TWO_PORTS {
        if offered_loads
            .iter()
            .all(|&a| erlang_b(u64::from(p), a) <= target)
        {
            return Some(p);
        }
        p *= 2;
    }
    None
}

/// The smallest number of units (e.g. public IPs, each adding `servers_per_unit` servers) in
/// `1..=max_units` whose Erlang-B blocking for `offered` is at most `target`.
pub fn min_units(servers_per_unit: u64, max_units: u64, offered: f64, target: f64) -> Option<u64> {
    (1..=max_units).find(|&n| erlang_b(n * servers_per_unit, offered) <= target)
}

/// Zipf destination popularity: destination `k` (1-based) gets share `k^-s / H(D, s)`.
#[derive(Clone, Debug)]
pub struct Zipf {
    count: u64,
    s: f64,
    harmonic: f64,
}

impl Zipf {
    /// `count` ≥ 1 destinations with skew `s` ≥ 0 (s = 0 is uniform).
    pub fn new(count: u64, s: f64) -> Self {
        let count = count.max(1);
        // Sum from the smallest term up, which keeps the rounding error lowest.
        let harmonic = (1..=count).rev().map(|k| (k as f64).powf(-s)).sum();
        Zipf { count, s, harmonic }
    }

    /// Number of destinations.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Share of flows going to destination `rank` (1-based; rank 1 is the busiest).
    pub fn share(&self, rank: u64) -> f64 {
        if rank == 0 || rank > self.count {
            return 0.0;
        }
        (rank as f64).powf(-self.s) / self.harmonic
    }

    /// Share of the busiest destination.
    pub fn hottest_share(&self) -> f64 {
        self.share(1)
    }

    /// Flow-weighted Erlang-B blocking over all destinations, each its own scope key with
    /// `servers` ports and offered load `total_offered × share(k)`: Σ share(k) · B(servers, A_k).
    /// Stops once a destination's blocking underflows, since later (colder) ones block less.
    pub fn weighted_blocking(&self, servers: u64, total_offered: f64) -> f64 {
        if self.s == 0.0 {
            // Uniform: every key carries the same load, so one evaluation is exact.
            return erlang_b(servers, total_offered / self.count as f64);
        }
        let mut sum = 0.0;
        let mut share_left = 1.0;
        for rank in 1..=self.count {
            let share = self.share(rank);
            let b = erlang_b(servers, total_offered * share);
            sum += share * b;
            share_left -= share;
            // Colder keys block less, so the rest adds at most b × share_left: stop once that
            // cannot move the sum (or everything underflowed).
            if b * share_left.max(0.0) <= sum * 1e-15 || b < 1e-300 {
                break;
            }
        }
        sum
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_of_two_check() {
        assert!(check_ports_per_nic(0).is_err());
        assert!(check_ports_per_nic(3).is_err());
        assert!(check_ports_per_nic(65_536).is_err());
        assert_eq!(check_ports_per_nic(1), Ok(1));
        assert_eq!(check_ports_per_nic(32_768), Ok(32_768));
    }

    #[test]
    fn erlang_b_recurrence_small_cases() {
        assert!((erlang_b(1, 1.0) - 0.5).abs() < 1e-15);
        assert!((erlang_b(2, 2.0) - 0.4).abs() < 1e-15);
        assert_eq!(erlang_b(5, 0.0), 0.0);
    }

    #[test]
    fn inverse_round_trips() {
        let a = erlang_b_max_offered(64, 0.01).expect("target in range");
        assert!(erlang_b(64, a) <= 0.01);
        assert!(erlang_b(64, a * 1.000_001) > 0.01);
    }

    #[test]
    fn weighted_blocking_matches_the_full_sum() {
        for (count, s) in [(10_u64, 0.0), (10, 1.0), (200, 0.8)] {
            let z = Zipf::new(count, s);
            let full: f64 = (1..=count)
                .map(|k| z.share(k) * erlang_b(16, 40.0 * z.share(k)))
                .sum();
            let fast = z.weighted_blocking(16, 40.0);
            assert!(
                (full - fast).abs() <= full * 1e-12,
                "{count} {s}: {full} vs {fast}"
            );
        }
    }

    #[test]
    fn zipf_uniform_and_skewed() {
        let z = Zipf::new(4, 0.0);
        assert!((z.hottest_share() - 0.25).abs() < 1e-15);
        let z = Zipf::new(2, 1.0);
        assert!((z.hottest_share() - 2.0 / 3.0).abs() < 1e-15);
        let total: f64 = (1..=2).map(|k| z.share(k)).sum();
        assert!((total - 1.0).abs() < 1e-15);
    }
}
