//! Virtual time. natsim never reads a wall clock: every component is handed an [`Instant`].

use std::fmt;
use std::ops::{Add, Sub};
use std::time::Duration;

/// Longest duration any input may name, in milliseconds (365 days): scenario and replay ranges
/// (`scenario::ranges::MAX_MS`) bound durations by it, so their nanoseconds fit in a `u64` many
/// times over.
pub const MAX_DURATION_MS: u64 = 365 * 86_400_000;
/// [`MAX_DURATION_MS`] in microseconds.
pub const MAX_DURATION_US: u64 = MAX_DURATION_MS * 1000;

/// A point on the virtual clock, in nanoseconds since the start of a run. Serialises as the
/// plain number of nanoseconds.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
pub struct Instant(u64);

impl Instant {
    /// The start of every run.
    pub const ZERO: Instant = Instant(0);
    /// Later than any event a run can schedule; used as "never".
    pub const NEVER: Instant = Instant(u64::MAX);

    /// An instant `ns` nanoseconds after the start.
    pub const fn from_nanos(ns: u64) -> Self {
        Instant(ns)
    }
    /// An instant `ms` milliseconds after the start.
    pub const fn from_millis(ms: u64) -> Self {
        Instant(ms.saturating_mul(1_000_000))
    }
    /// An instant `s` seconds after the start.
    pub const fn from_secs(s: u64) -> Self {
        Instant(s.saturating_mul(1_000_000_000))
    }
    /// Nanoseconds since the start.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }
    /// Whole milliseconds since the start (rounded down).
    pub const fn as_millis(self) -> u64 {
        self.0 / 1_000_000
    }
    /// Adds a duration given in milliseconds, saturating at [`Instant::NEVER`].
    pub const fn plus_millis(self, ms: u64) -> Self {
        Instant(self.0.saturating_add(ms.saturating_mul(1_000_000)))
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, rhs: Duration) -> Instant {
        let ns = u64::try_from(rhs.as_nanos()).unwrap_or(u64::MAX);
        Instant(self.0.saturating_add(ns))
    }
}

impl Sub for Instant {
    type Output = Duration;
    fn sub(self, rhs: Instant) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(rhs.0))
    }
}

impl fmt::Display for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{:09}s",
            self.0 / 1_000_000_000,
            self.0 % 1_000_000_000
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instant_arithmetic_saturates_and_displays_seconds() {
        assert_eq!(Instant::from_secs(2).as_millis(), 2000);
        assert_eq!(Instant::from_millis(1500).to_string(), "1.500000000s");
        assert_eq!(Instant::NEVER.plus_millis(5), Instant::NEVER);
        assert_eq!(
            Instant::from_secs(3) - Instant::from_secs(1),
            Duration::from_secs(2)
        );
        assert_eq!(
            Instant::from_secs(1) - Instant::from_secs(3),
            Duration::ZERO
        );
    }
}

/// A token bucket on virtual time: `burst` tokens at most, one more earned every `interval_ns`
/// (0: never). Rate limits of ICMP answers (the gateway's Time Exceeded, the simulator's
/// router) use it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenBucket {
    burst: u32,
    interval_ns: u64,
    tokens: u32,
    last_ns: u64,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(burst: u32, interval_ns: u64) -> Self {
        TokenBucket {
            burst,
            interval_ns,
            tokens: burst,
            last_ns: 0,
        }
    }

    /// A full bucket earning `per_s` tokens a second (rounded to whole nanoseconds per token).
    pub fn per_second(burst: u32, per_s: u32) -> Self {
        let interval_ns = if per_s == 0 {
            0
        } else {
            (1_000_000_000 / u64::from(per_s)).max(1)
        };
        TokenBucket::new(burst, interval_ns)
    }

    /// Takes a token if one is left at `now_ns`.
    pub fn take(&mut self, now_ns: u64) -> bool {
        // An interval of 0 earns nothing (`checked_div` is `None`).
        let elapsed = now_ns.saturating_sub(self.last_ns);
        if let Some(earned) = elapsed.checked_div(self.interval_ns)
            && earned > 0
        {
            let t = u64::from(self.tokens).saturating_add(earned);
            self.tokens = t.min(u64::from(self.burst)) as u32;
            self.last_ns = self
                .last_ns
                .saturating_add(earned.saturating_mul(self.interval_ns));
        }
        if self.tokens == 0 {
            return false;
        }
        self.tokens -= 1;
        true
    }
}

#[cfg(test)]
mod token_bucket_tests {
    use super::TokenBucket;

    #[test]
    fn a_token_bucket_allows_its_burst_then_one_per_interval_and_never_more_than_the_burst() {
        let mut b = TokenBucket::per_second(2, 10);
        assert!(b.take(0) && b.take(0) && !b.take(0));
        assert!(!b.take(99_999_999));
        assert!(b.take(100_000_000));
        // A long idle time refills to the burst, not beyond.
        assert!(b.take(10_000_000_000) && b.take(10_000_000_000) && !b.take(10_000_000_000));
        let mut never = TokenBucket::per_second(1, 0);
        assert!(never.take(0) && !never.take(u64::MAX));
    }
}
