//! `gateway_ops`: Operation sequences (packets of every protocol, time, blocks, NICs) against a three-NIC
//! gateway; behaviour §6 invariants are checked after every operation.
//!
//! The harness and its input format live in `natsim::fuzzing::gateway_ops`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| natsim::fuzzing::gateway_ops(data));
