//! Confidence intervals for simulated blocking: a Wilson score interval on refused / attempted
//! flows, widened to a batch-means interval when the measured window's batches vary more than
//! independent flows would (refusals come in bursts: a full key refuses every flow for a while,
//! and retried flows come back while it is still full).
//!
//! Both are 95 % intervals. The wider of the two is reported, so a count of zero refusals still
//! gets a useful upper bound (Wilson) and correlated refusals are not mistaken for precision
//! (batch means).

use serde::{Deserialize, Serialize};

/// Batches the measured window is cut into for batch means.
pub const BATCHES: usize = 10;

/// z for a two-sided 95 % interval.
const Z_95: f64 = 1.959_963_985;
/// Student's t, 97.5 % quantile, `BATCHES − 1` = 9 degrees of freedom.
const T_95_9: f64 = 2.262_157_163;

/// Refused and attempted flows in one batch of the measured window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// New flows attempted.
    pub attempts: u64,
    /// Of those, refused.
    pub refused: u64,
}

impl Counts {
    /// refused / attempts (`None` without attempts).
    pub fn ratio(self) -> Option<f64> {
        (self.attempts > 0).then(|| self.refused as f64 / self.attempts as f64)
    }
}

/// A 95 % interval around a simulated probability.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// Lower bound.
    pub low: f64,
    /// Upper bound.
    pub high: f64,
    /// Flows (attempts) behind the estimate.
    pub flows: u64,
}

impl Interval {
    /// True when `x` lies inside, or within `floor` of, the interval.
    pub fn covers(&self, x: f64, floor: f64) -> bool {
        x >= self.low - floor && x <= self.high + floor
    }
}

/// Wilson score interval for `refused` of `attempts` (`None` without attempts).
pub fn wilson(refused: u64, attempts: u64) -> Option<(f64, f64)> {
    if attempts == 0 {
        return None;
    }
    let n = attempts as f64;
    let p = refused as f64 / n;
    let z2 = Z_95 * Z_95;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = Z_95 / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    // At p = 0 (or 1) the bound is exactly 0 (or 1); rounding would leave ±1e-19 behind.
    let lo = if refused == 0 {
        0.0
    } else {
        (centre - half).max(0.0)
    };
    let hi = if refused >= attempts {
        1.0
    } else {
        (centre + half).min(1.0)
    };
    Some((lo, hi))
}

/// Batch-means interval for the ratio estimator Σ refused / Σ attempts over `batches`
/// (`None` with fewer than two batches holding attempts).
pub fn batch_means(batches: &[Counts]) -> Option<(f64, f64)> {
    let used: Vec<Counts> = batches.iter().copied().filter(|b| b.attempts > 0).collect();
    if used.len() < 2 {
        return None;
    }
    let total: Counts = sum(&used);
    let ratio = total.ratio()?;
    let k = used.len() as f64;
    let mean_attempts = total.attempts as f64 / k;
    let spread: f64 = used
        .iter()
        .map(|b| (b.refused as f64 - ratio * b.attempts as f64).powi(2))
        .sum::<f64>()
        / (k - 1.0);
    // t for BATCHES − 1 degrees of freedom; fewer used batches are rare (a window without
    // attempts) and the 9-df quantile then understates the width only slightly.
    let half = T_95_9 * (spread / k).sqrt() / mean_attempts;
    Some(((ratio - half).max(0.0), (ratio + half).min(1.0)))
}

/// Sum of batch counts.
pub fn sum(batches: &[Counts]) -> Counts {
    batches.iter().fold(Counts::default(), |acc, b| Counts {
        attempts: acc.attempts + b.attempts,
        refused: acc.refused + b.refused,
    })
}

/// The reported interval: the wider of Wilson and batch means (`None` without attempts).
pub fn interval(batches: &[Counts]) -> Option<Interval> {
    let total = sum(batches);
    let (mut low, mut high) = wilson(total.refused, total.attempts)?;
    if let Some((bl, bh)) = batch_means(batches) {
        low = low.min(bl);
        high = high.max(bh);
    }
    Some(Interval {
        low,
        high,
        flows: total.attempts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_known_values() {
        // 10 of 100: the textbook Wilson interval is [0.0552, 0.1744].
        let (lo, hi) = wilson(10, 100).expect("attempts");
        assert!((lo - 0.0552).abs() < 1e-4, "{lo}");
        assert!((hi - 0.1744).abs() < 1e-4, "{hi}");
        // Zero refusals still bound the probability from above.
        let (lo, hi) = wilson(0, 1000).expect("attempts");
        assert_eq!(lo, 0.0);
        assert!(hi > 0.003 && hi < 0.004, "{hi}");
        assert_eq!(wilson(0, 0), None);
    }

    #[test]
    fn bursty_batches_widen_the_interval() {
        // Same totals (50 of 1000); evenly spread vs all refusals in one batch.
        let even = [Counts {
            attempts: 100,
            refused: 5,
        }; BATCHES];
        let mut bursty = [Counts {
            attempts: 100,
            refused: 0,
        }; BATCHES];
        bursty[3].refused = 50;
        let e = interval(&even).expect("flows");
        let b = interval(&bursty).expect("flows");
        assert_eq!(e.flows, 1000);
        assert!(b.high - b.low > 2.0 * (e.high - e.low), "{e:?} {b:?}");
        assert!(b.covers(0.05, 0.0) && e.covers(0.05, 0.0));
    }
}
