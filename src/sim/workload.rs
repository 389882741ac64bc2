//! Workload generators: per-NIC flow arrivals (fixed or Poisson), durations (fixed, exponential,
//! Pareto) and destinations (uniform or Zipf), each NIC drawing from its own stream.

use super::config::{Arrivals, Distribution, GeneratorSpec};
use crate::rng::Rng;

/// What a generated flow is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowProto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// ICMP echo.
    Icmp,
}

/// Sampling helpers for one generator.
#[derive(Clone, Debug)]
pub struct Sampler {
    /// Cumulative weights over remotes (Zipf or uniform).
    remote_cdf: Vec<f64>,
}

impl Sampler {
    /// Precomputes the destination distribution.
    pub fn new(spec: &GeneratorSpec) -> Self {
        let n = spec.remotes.len().max(1);
        let weights: Vec<f64> = (1..=n)
            .map(|k| match spec.zipf_s {
                Some(s) => 1.0 / (k as f64).powf(s),
                None => 1.0,
            })
            .collect();
        let total: f64 = weights.iter().sum();
        let mut acc = 0.0;
        let remote_cdf = weights
            .iter()
            .map(|w| {
                acc += w / total;
                acc
            })
            .collect();
        Sampler { remote_cdf }
    }

    /// Time to the next arrival, in nanoseconds (at least 1).
    pub fn next_arrival_ns(spec: &GeneratorSpec, rng: &mut Rng) -> u64 {
        match spec.arrivals {
            Arrivals::Fixed { interval_ms } => interval_ms.saturating_mul(1_000_000).max(1),
            Arrivals::Poisson { rate_per_s } => {
                let u = 1.0 - rng.unit_f64();
                let secs = -u.ln() / rate_per_s.max(1e-9);
                ((secs * 1e9) as u64).max(1)
            }
        }
    }

    /// A flow duration in milliseconds.
    pub fn duration_ms(spec: &GeneratorSpec, rng: &mut Rng) -> u64 {
        match spec.duration {
            Distribution::Fixed { ms } => ms,
            Distribution::Exponential { mean_ms } => {
                let u = 1.0 - rng.unit_f64();
                (-u.ln() * mean_ms) as u64
            }
            Distribution::Pareto { scale_ms, shape } => {
                let u = 1.0 - rng.unit_f64();
                // Capped at a day so a single draw cannot outlive every bound.
                (scale_ms / u.powf(1.0 / shape.max(1e-3))).min(86_400_000.0) as u64
            }
        }
    }

    /// Index into `spec.remotes`.
    pub fn remote(&self, rng: &mut Rng) -> usize {
        let u = rng.unit_f64();
        self.remote_cdf
            .partition_point(|&c| c <= u)
            .min(self.remote_cdf.len().saturating_sub(1))
    }

    /// The protocol of the next flow by the mix weights.
    pub fn proto(spec: &GeneratorSpec, rng: &mut Rng) -> FlowProto {
        let total: u64 = spec.mix.iter().map(|&w| u64::from(w)).sum();
        let mut x = rng.below(total.max(1));
        for (i, &w) in spec.mix.iter().enumerate() {
            if x < u64::from(w) {
                return [FlowProto::Tcp, FlowProto::Udp, FlowProto::Icmp][i];
            }
            x -= u64::from(w);
        }
        FlowProto::Tcp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> GeneratorSpec {
        GeneratorSpec {
            name: "g".into(),
            nics: vec![0],
            start_ns: 0,
            stop_ns: 1,
            arrivals: Arrivals::Poisson { rate_per_s: 10.0 },
            duration: Distribution::Exponential { mean_ms: 100.0 },
            remotes: vec![0, 1, 2, 3],
            zipf_s: Some(1.2),
            mix: [1, 1, 0],
            request_bytes: 100,
            interval_ms: 100,
        }
    }

    #[test]
    fn distributions_have_the_right_means_and_skew() {
        let s = spec();
        let mut rng = Rng::new(3, 9);
        let n = 20_000;
        let mean_gap = (0..n)
            .map(|_| Sampler::next_arrival_ns(&s, &mut rng))
            .sum::<u64>()
            / n;
        assert!((90_000_000..110_000_000).contains(&mean_gap), "{mean_gap}");
        let mean_dur = (0..n)
            .map(|_| Sampler::duration_ms(&s, &mut rng))
            .sum::<u64>()
            / n;
        assert!((90..110).contains(&mean_dur), "{mean_dur}");
        let sampler = Sampler::new(&s);
        let mut hits = [0u32; 4];
        for _ in 0..n {
            hits[sampler.remote(&mut rng)] += 1;
        }
        assert!(hits[0] > hits[1] && hits[1] > hits[3], "{hits:?}");
        assert!((0..1000).all(|_| Sampler::proto(&s, &mut rng) != FlowProto::Icmp));
    }
}
