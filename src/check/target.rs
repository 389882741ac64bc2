//! Which dataplane a harness runs against: the real gateway or one of the deliberately broken
//! gateways of [`super::broken`], by the names `--broken` takes. Shared by `natsim swarm`,
//! `natsim replay --broken` and the fuzz targets, so it lives with the broken gateways rather
//! than in any one of those harnesses (keeps the top-level modules acyclic,
//! `tests/module_cycles.rs`).

use std::fmt;

use super::broken::Breakage;
use crate::sim::dataplane::{DataplaneFactory, real_gateway};

/// The port the `leaky-filter` breakage leaks when no port is named: inside the first block of
/// the first NAT IP for any P, where generated attackers aim most of their packets.
pub const DEFAULT_LEAKY_PORT: u16 = 1040;

/// The dataplane a harness (swarm, replay, fuzz target) runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The real gateway.
    Real,
    /// A deliberately broken gateway (testing the swarm itself).
    Broken(Breakage),
}

impl Target {
    /// Parses `--broken NAME` (`leaky-filter[:PORT]` takes an optional port, default
    /// [`DEFAULT_LEAKY_PORT`]).
    pub fn broken(name: &str) -> Result<Target, String> {
        let (base, arg) = match name.split_once(':') {
            Some((b, a)) => (b, Some(a)),
            None => (name, None),
        };
        let known = || {
            Breakage::ALL
                .iter()
                .map(|b| b.name())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let b = &Breakage::from_name(base)
            .ok_or_else(|| format!("unknown broken dataplane `{name}`; one of {}", known()))?;
        match (b, arg) {
            (Breakage::LeakyFilter { .. }, None) => Ok(Target::Broken(Breakage::LeakyFilter {
                port: DEFAULT_LEAKY_PORT,
            })),
            (Breakage::LeakyFilter { .. }, Some(p)) => p
                .parse::<u16>()
                .map(|port| Target::Broken(Breakage::LeakyFilter { port }))
                .map_err(|_| format!("`{p}` is not a port")),
            (_, Some(_)) => Err(format!("`{base}` takes no argument")),
            (b, None) => Ok(Target::Broken(*b)),
        }
    }

    /// A factory for this dataplane.
    pub fn factory(self) -> Box<DataplaneFactory> {
        match self {
            Target::Real => Box::new(real_gateway),
            Target::Broken(b) => b.factory(),
        }
    }

    /// The `--broken` argument that selects this dataplane (`None` for the real gateway).
    pub fn broken_arg(self) -> Option<String> {
        match self {
            Target::Real => None,
            Target::Broken(Breakage::LeakyFilter { port }) => Some(format!("leaky-filter:{port}")),
            Target::Broken(b) => Some(b.name().to_string()),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.broken_arg() {
            None => write!(f, "real gateway"),
            Some(name) => write!(f, "broken {name} gateway"),
        }
    }
}
