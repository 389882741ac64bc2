//! Which dataplane a harness runs against: the real gateway or one of the deliberately broken
//! gateways of [`super::broken`], by the names `--broken` takes. Shared by `natsim swarm`,
//! `natsim replay --broken` and the fuzz targets, so it lives with the broken gateways rather
//! than in any one of those harnesses (keeps the top-level modules acyclic,
//! `tests/module_cycles.rs`).

use std::fmt;

use super::broken::Breakage;
use crate::kernel::{KernelDataplane, KernelSettings};
use crate::nat::ConfigError;
use crate::sim::dataplane::{Dataplane, DataplaneFactory, real_gateway};

/// The port the `leaky-filter` breakage leaks when no port is named: inside the first block of
/// the first NAT IP for any P, where generated attackers aim most of their packets.
pub const DEFAULT_LEAKY_PORT: u16 = 1040;

/// The dataplane a harness (run, replay, swarm, fuzz target) runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The real gateway.
    Real,
    /// A deliberately broken gateway (testing the swarm itself).
    Broken(Breakage),
    /// The Linux kernel's NAT in a namespace natsim creates (`--dataplane linux`,
    /// docs/linux.md); not reproducible run to run.
    Kernel(KernelSettings),
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
            Target::Kernel(settings) => Box::new(move |cfg| {
                KernelDataplane::new(&cfg, settings)
                    .map(|d| Box::new(d) as Box<dyn Dataplane>)
                    .map_err(|e| ConfigError::invalid("dataplane", e.to_string()))
            }),
        }
    }

    /// True when runs against it are reproducible (the same seed gives the same trace).
    pub fn reproducible(self) -> bool {
        !matches!(self, Target::Kernel(_))
    }

    /// The `--dataplane` argument that selects the kernel (`None` for the model's gateways).
    pub fn dataplane_arg(self) -> Option<String> {
        match self {
            Target::Kernel(s) => Some(format!(
                "--dataplane linux --time-scale {} --verdict-wait-us {}",
                s.time_scale, s.verdict_wait_us
            )),
            _ => None,
        }
    }

    /// The `--broken` argument that selects this dataplane (`None` for the real gateway).
    pub fn broken_arg(self) -> Option<String> {
        match self {
            Target::Real | Target::Kernel(_) => None,
            Target::Broken(Breakage::LeakyFilter { port }) => Some(format!("leaky-filter:{port}")),
            Target::Broken(b) => Some(b.name().to_string()),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Target::Kernel(_) = self {
            return write!(f, "Linux kernel NAT");
        }
        match self.broken_arg() {
            None => write!(f, "real gateway"),
            Some(name) => write!(f, "broken {name} gateway"),
        }
    }
}
