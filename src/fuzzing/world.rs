//! Target `sim_world`: a whole generated world, decoded from the fuzz input, run in the
//! simulator with every behaviour §6 invariant checked on every event.
//!
//! The world comes from the swarm generator (`swarm::generate`, the code behind `natsim
//! swarm`), so the fuzzer explores the same worlds the swarm does, but chooses them by coverage
//! instead of by seed order: the input picks the address families, the feature mask and the
//! generator seed, and may add a few outside adversary items whose ports, protocols and targets
//! are raw input bytes, so that coverage guidance (and libFuzzer's comparison tracing) can steer
//! packets at exact ports. Unlike the packet-level targets, this one runs through the
//! simulator's `Dataplane` seam, so it can be pointed at a deliberately broken gateway
//! ([`ENV_BROKEN`]); a failing input becomes a minimised scenario file with `natsim swarm
//! --from-fuzz FILE` (see `docs/fuzzing.md`).

use std::sync::OnceLock;

use crate::swarm::Target;
pub use crate::swarm::fuzz_input::{
    EXTRA_BYTES, Extra, ExtraKind, HEADER_BYTES, MAX_EXTRAS, WorldInput,
};

/// Environment variable naming the dataplane `sim_world` runs against: unset or empty is the
/// real gateway, otherwise a `natsim swarm --broken` name (`leaky-filter[:PORT]`, ...).
pub const ENV_BROKEN: &str = "NATSIM_FUZZ_BROKEN";

/// The dataplane [`ENV_BROKEN`] names, read once per process.
///
/// # Panics
///
/// On a name `natsim swarm --broken` does not know (at the first input, so a typo does not
/// look like a clean campaign).
pub fn target_from_env() -> Target {
    static TARGET: OnceLock<Target> = OnceLock::new();
    *TARGET.get_or_init(|| match std::env::var(ENV_BROKEN) {
        Ok(name) if !name.is_empty() => {
            Target::broken(&name).unwrap_or_else(|e| panic!("{ENV_BROKEN}={name}: {e}"))
        }
        _ => Target::Real,
    })
}

/// Target `sim_world` against the dataplane of [`target_from_env`] (the real gateway unless
/// [`ENV_BROKEN`] is set). Input format: [`WorldInput::decode`].
pub fn sim_world(data: &[u8]) {
    sim_world_against(data, target_from_env());
}

/// [`sim_world`] against a given dataplane: panics when the run fails (an invariant violation,
/// a run bound, a world that does not load, or a crash), with a message that starts with the
/// invariant's name.
pub fn sim_world_against(data: &[u8], target: Target) {
    let input = WorldInput::decode(data);
    let outcome = input.run(target);
    if let Some(failure) = &outcome.failure {
        let broken = target
            .broken_arg()
            .map_or(String::new(), |b| format!(" --broken {b}"));
        panic!(
            "{failure}: {}\n  world: {input}\n  against the {target}; minimised scenario file: \
             natsim swarm --from-fuzz <this input>{broken}",
            outcome.detail
        );
    }
}
