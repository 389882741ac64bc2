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
