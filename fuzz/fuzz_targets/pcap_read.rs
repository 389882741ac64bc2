//! `pcap_read`: Arbitrary bytes as a pcap/pcapng file, read to the end twice (whole and in 1-7 byte
//! reads); summary counts must agree.
//!
//! The harness and its input format live in `natsim::fuzzing::pcap_read`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| natsim::fuzzing::pcap_read(data));
