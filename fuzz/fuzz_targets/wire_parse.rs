//! `wire_parse`: Arbitrary bytes through every packet parser: parsers agree, emit/parse is a fixed point,
//! incremental rewrites keep checksums valid.
//!
//! The harness and its input format live in `natsim::fuzzing::wire_parse`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| natsim::fuzzing::wire_parse(data));
