//! How the simulator's virtual time maps onto the kernel's wall clock: the one place natsim
//! reads a wall clock while it runs a dataplane (the kernel's conntrack timers run on it).
//!
//! Virtual time is scaled: `wall = virtual × time_scale` from the first packet on, and every
//! conntrack timeout is scaled the same way (`super::dataplane`), so a 30 s UDP timeout at scale
//! 0.1 is 3 s of wall time. An idle gap longer than the longest scaled timeout plus a margin is
//! cut to that length: after it every conntrack entry has expired either way, so waiting longer
//! changes nothing the kernel does. When the kernel is slower than the scaled clock (many
//! packets in a short virtual time), packets go in late; the largest lag is in the run report's
//! dataplane notes.

use std::time::Duration;

use crate::time::Instant;

/// Wall-clock time (`std::time::Instant`); the only reading of it in the kernel dataplane.
#[allow(clippy::disallowed_methods)]
fn wall_now() -> std::time::Instant {
    // The kernel dataplane runs against a real kernel, whose timers run on wall time.
    std::time::Instant::now()
}

/// The mapping from virtual time to wall time, with its statistics.
#[derive(Debug)]
pub struct WallClock {
    scale: f64,
    max_gap: Duration,
    origin: Option<(std::time::Instant, u64)>,
    skipped: Duration,
    lag_max: Duration,
    waited: Duration,
}

/// What the clock did during a run (for reports).
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct ClockStats {
    /// Wall time cut from idle gaps, in ms.
    pub skipped_ms: u64,
    /// The largest lag of a packet behind its scaled time, in ms.
    pub lag_max_ms: u64,
    /// Wall time spent waiting for the scaled clock, in ms.
    pub waited_ms: u64,
}

impl WallClock {
    /// A clock at `scale` wall seconds per virtual second; idle gaps are cut to `max_gap`.
    pub fn new(scale: f64, max_gap: Duration) -> WallClock {
        WallClock {
            scale,
            max_gap,
            origin: None,
            skipped: Duration::ZERO,
            lag_max: Duration::ZERO,
            waited: Duration::ZERO,
        }
    }

    /// Waits until the wall clock has reached virtual time `now` (returns at once when late).
    pub fn wait_for(&mut self, now: Instant) {
        let now_ns = now.as_nanos();
        let wall = wall_now();
        let (origin_wall, origin_ns) = *self.origin.get_or_insert((wall, now_ns));
        let scaled =
            Duration::from_secs_f64(now_ns.saturating_sub(origin_ns) as f64 * 1e-9 * self.scale);
        let due = scaled.saturating_sub(self.skipped);
        let elapsed = wall.saturating_duration_since(origin_wall);
        if due > elapsed + self.max_gap {
            self.skipped += due - elapsed - self.max_gap;
        }
        let due = scaled.saturating_sub(self.skipped);
        if due > elapsed {
            let wait = due - elapsed;
            std::thread::sleep(wait);
            self.waited += wait;
        } else {
            self.lag_max = self.lag_max.max(elapsed - due);
        }
    }

    /// Statistics so far.
    pub fn stats(&self) -> ClockStats {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        ClockStats {
            skipped_ms: ms(self.skipped),
            lag_max_ms: ms(self.lag_max),
            waited_ms: ms(self.waited),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_gaps_longer_than_the_cap_are_cut() {
        let mut c = WallClock::new(1.0, Duration::from_millis(20));
        c.wait_for(Instant::from_nanos(0));
        let t = wall_now();
        // One virtual hour at scale 1 would be an hour of wall time; the cap cuts it to 20 ms.
        c.wait_for(Instant::from_nanos(3_600_000_000_000));
        let took = wall_now().saturating_duration_since(t);
        assert!(took >= Duration::from_millis(19), "{took:?}");
        assert!(took < Duration::from_secs(5), "{took:?}");
        assert!(c.stats().skipped_ms >= 3_599_000);
    }
}
