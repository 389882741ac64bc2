//! `sim_world`: a whole generated world (swarm generator: feature mask, seed, extra outside
//! adversaries) in the simulator with every behaviour §6 invariant checked on every event; against
//! the real gateway, or the broken one `NATSIM_FUZZ_BROKEN` names.
//!
//! The harness and its input format live in `natsim::fuzzing::sim_world`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| natsim::fuzzing::sim_world(data));
