//! Links: one-way delay, jitter, loss, duplication, reordering and MTU, each direction drawing
//! from the link's own random stream. Probabilities are integer ratios (TigerBeetle's VOPR
//! style), never floats, so a scenario means the same thing on every machine.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::rng::Rng;

/// Smallest link MTU (RFC 791: every IPv4 host must take 68-byte datagrams).
pub const MIN_MTU_BYTES: u64 = 68;
/// Largest link MTU (the IPv4 total-length field).
pub const MAX_MTU_BYTES: u64 = 65_535;

/// A probability as `numerator/denominator`, written `"1/100"` in scenario files (`"0"` is
/// never, `"1"` always).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ratio {
    /// Numerator.
    pub num: u64,
    /// Denominator (non-zero for a valid ratio).
    pub den: u64,
}

impl Ratio {
    /// Never.
    pub const NEVER: Ratio = Ratio { num: 0, den: 1 };

    /// True when the event can happen at all (no random draw is spent otherwise, so turning a
    /// fault off never shifts a stream).
    pub fn possible(self) -> bool {
        self.num > 0
    }

    /// Draws once.
    pub fn sample(self, rng: &mut Rng) -> bool {
        if self.num >= self.den {
            return true;
        }
        self.possible() && rng.chance(self.num, self.den)
    }
}

impl FromStr for Ratio {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("`{s}` is not a ratio like \"1/100\" (numerator <= denominator)");
        let (n, d) = match s.split_once('/') {
            Some((n, d)) => (n.trim(), d.trim()),
            None => (s.trim(), "1"),
        };
        let num: u64 = n.parse().map_err(|_| bad())?;
        let den: u64 = d.parse().map_err(|_| bad())?;
        if den == 0 || num > den {
            return Err(bad());
        }
        Ok(Ratio { num, den })
    }
}

impl fmt::Display for Ratio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.num, self.den)
    }
}

impl Serialize for Ratio {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Ratio {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Ratio {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Ratio".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^[0-9]+(/[0-9]+)?$",
            "description": "probability as an integer ratio, e.g. \"1/100\""
        })
    }
}

/// How a link behaves. Every field has a default (an ideal 10 µs link with MTU 1500).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LinkConfig {
    /// One-way base delay in microseconds.
    #[schemars(range(max = crate::time::MAX_DURATION_US))]
    pub delay_us: u64,
    /// Extra delay drawn uniformly from `0..=jitter_us` per packet (may reorder packets).
    #[schemars(range(max = crate::time::MAX_DURATION_US))]
    pub jitter_us: u64,
    /// Probability a packet is lost.
    pub loss: Ratio,
    /// Probability a packet is delivered twice (the copy `delay_us` later).
    pub duplicate: Ratio,
    /// Probability a packet is held back by `reorder_delay_us` (overtaken by later packets).
    pub reorder: Ratio,
    /// Hold-back of a reordered packet, in microseconds.
    #[schemars(range(max = crate::time::MAX_DURATION_US))]
    pub reorder_delay_us: u64,
    /// Largest IP packet carried, in bytes; bigger ones are dropped and counted.
    #[schemars(range(min = MIN_MTU_BYTES, max = MAX_MTU_BYTES))]
    pub mtu_bytes: u32,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            delay_us: 10,
            jitter_us: 0,
            loss: Ratio::NEVER,
            duplicate: Ratio::NEVER,
            reorder: Ratio::NEVER,
            reorder_delay_us: 1000,
            mtu_bytes: 1500,
        }
    }
}

/// Per-link counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LinkStats {
    /// Packets offered.
    pub sent: u64,
    /// Deliveries scheduled (duplicates included).
    pub delivered: u64,
    /// Lost to `loss`.
    pub lost: u64,
    /// Extra copies from `duplicate`.
    pub duplicated: u64,
    /// Held back by `reorder`.
    pub reordered: u64,
    /// Dropped for exceeding the MTU.
    pub mtu_dropped: u64,
    /// Dropped while the link was down.
    pub down_dropped: u64,
    /// Dropped by a targeted loss (`drop_packets`).
    #[serde(skip_serializing_if = "is_zero")]
    pub targeted_dropped: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A predicate on packets for targeted loss. The simulator only calls it; what it matches (a
/// scenario's pattern) is the harness's business.
#[derive(Clone)]
pub struct PacketFilter(pub std::sync::Arc<PacketPredicate>);

/// What a [`PacketFilter`] calls: true for a packet it selects.
pub type PacketPredicate = dyn Fn(&[u8]) -> bool + Send + Sync;

impl fmt::Debug for PacketFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PacketFilter")
    }
}

impl PartialEq for PacketFilter {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for PacketFilter {}

/// Targeted loss on a link: of the packets matching `filter` from now on, the `nth` (1-based)
/// and the `count - 1` matching ones after it are lost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetedDrop {
    /// Which packets count.
    pub filter: PacketFilter,
    /// The first matching packet to lose (1: the first).
    pub nth: u32,
    /// How many matching packets to lose from there.
    pub count: u32,
    /// Matching packets seen so far.
    pub seen: u32,
}

impl TargetedDrop {
    /// Whether `pkt` is one to lose (counting it when it matches).
    fn takes(&mut self, pkt: &[u8]) -> bool {
        if !(self.filter.0)(pkt) {
            return false;
        }
        self.seen = self.seen.saturating_add(1);
        self.seen >= self.nth && self.seen - self.nth < self.count
    }
}

/// What became of a packet offered to a link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transmit {
    /// Not delivered.
    Dropped,
    /// Delivered at `at_ns`, and once more at `duplicate_at_ns` when set.
    Deliver {
        /// Arrival time.
        at_ns: u64,
        /// Arrival time of a duplicate.
        duplicate_at_ns: Option<u64>,
    },
}

/// A link's configuration, state and counters.
#[derive(Clone, Debug)]
pub struct Link {
    /// Name, e.g. `nic/vm-a`, `uplink/0`, `remote/web`.
    pub name: String,
    /// Behaviour.
    pub config: LinkConfig,
    /// False while a fault holds the link down.
    pub up: bool,
    /// Counters.
    pub stats: LinkStats,
    /// Targeted losses in force.
    pub targeted: Vec<TargetedDrop>,
    rng: Rng,
}

impl Link {
    /// A link drawing from `rng`.
    pub fn new(name: String, config: LinkConfig, rng: Rng) -> Self {
        Link {
            name,
            config,
            up: true,
            stats: LinkStats::default(),
            targeted: Vec::new(),
            rng,
        }
    }

    /// Offers packet `pkt` at `now_ns`.
    pub fn transmit(&mut self, now_ns: u64, pkt: &[u8]) -> Transmit {
        let len = pkt.len();
        self.stats.sent += 1;
        if !self.up {
            self.stats.down_dropped += 1;
            return Transmit::Dropped;
        }
        if len > self.config.mtu_bytes as usize {
            self.stats.mtu_dropped += 1;
            return Transmit::Dropped;
        }
        // Every targeted loss sees the packet (each counts its own matches).
        let mut targeted = false;
        for t in &mut self.targeted {
            targeted |= t.takes(pkt);
        }
        if targeted {
            self.stats.targeted_dropped += 1;
            return Transmit::Dropped;
        }
        let c = &self.config;
        if c.loss.sample(&mut self.rng) {
            self.stats.lost += 1;
            return Transmit::Dropped;
        }
        let mut delay_ns = c.delay_us.saturating_mul(1000);
        if c.jitter_us > 0 {
            delay_ns += self.rng.below(c.jitter_us * 1000 + 1);
        }
        if c.reorder.sample(&mut self.rng) {
            self.stats.reordered += 1;
            delay_ns += c.reorder_delay_us.saturating_mul(1000);
        }
        let at_ns = now_ns.saturating_add(delay_ns);
        self.stats.delivered += 1;
        let duplicate_at_ns = c.duplicate.sample(&mut self.rng).then(|| {
            self.stats.duplicated += 1;
            self.stats.delivered += 1;
            at_ns.saturating_add(c.delay_us.saturating_mul(1000).max(1))
        });
        Transmit::Deliver {
            at_ns,
            duplicate_at_ns,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_parses_and_rejects() {
        assert_eq!("1/100".parse::<Ratio>(), Ok(Ratio { num: 1, den: 100 }));
        assert_eq!("0".parse::<Ratio>(), Ok(Ratio { num: 0, den: 1 }));
        assert!("2/1".parse::<Ratio>().is_err());
        assert!("1/0".parse::<Ratio>().is_err());
        assert!("0.5".parse::<Ratio>().is_err());
    }

    #[test]
    fn lossy_link_loses_about_the_ratio_and_down_link_drops_all() {
        let cfg = LinkConfig {
            loss: Ratio { num: 1, den: 10 },
            ..LinkConfig::default()
        };
        let mut l = Link::new("l".into(), cfg, Rng::new(1, 1));
        for i in 0..10_000 {
            l.transmit(i, &[0; 100]);
        }
        assert!((800..1200).contains(&l.stats.lost), "{:?}", l.stats);
        l.up = false;
        assert_eq!(l.transmit(0, &[0; 100]), Transmit::Dropped);
        l.up = true;
        assert_eq!(l.transmit(0, &[0; 2000]), Transmit::Dropped);
        assert_eq!(l.stats.mtu_dropped, 1);
    }
}
