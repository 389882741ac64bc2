//! `scenario_yaml`: text through the scenario_yaml loader (see natsim::fuzzing::scenario_yaml).
//!
//! The harness and its input format live in `natsim::fuzzing::scenario_yaml`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| natsim::fuzzing::scenario_yaml(data));
