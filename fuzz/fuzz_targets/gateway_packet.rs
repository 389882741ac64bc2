//! `gateway_packet`: A configured two-NIC gateway with live flows receives the input as packets; behaviour §6
//! invariants are checked after each one.
//!
//! The harness and its input format live in `natsim::fuzzing::gateway_packet`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| natsim::fuzzing::gateway_packet(data));
