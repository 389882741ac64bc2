//! `manifest_yaml`: text through the manifest_yaml loader (see natsim::fuzzing::manifest_yaml).
//!
//! The harness and its input format live in `natsim::fuzzing::manifest_yaml`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| natsim::fuzzing::manifest_yaml(data));
