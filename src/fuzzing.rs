//! Fuzz harnesses: one function per cargo-fuzz target, each taking the raw fuzz input.
//!
//! The targets in `fuzz/fuzz_targets/` are one-line wrappers over these functions, and
//! `tests/fuzz_corpus.rs` replays every committed corpus and crash file through the very same
//! functions as plain `#[test]`s, so a crash found by libFuzzer stays a regression test that needs
//! neither libFuzzer nor a nightly toolchain.
//!
//! This module is compiled only with the cargo feature `fuzzing` (enabled by `fuzz/Cargo.toml`
//! and, through natsim's dev-dependency on itself, by the tests); the `sim_world` input format
//! that `natsim swarm --from-fuzz` needs is in [`crate::swarm::fuzz_input`], in every build.
//!
//! | harness | input | oracle |
//! |---|---|---|
//! | [`wire_parse`] | any bytes | parsers agree, emit/parse round trip, incremental rewrites keep checksums valid |
//! | [`gateway_packet`] | config byte + raw packets | the simulator's behaviour §6 checker plus single-gateway extras ([`oracle`]) |
//! | [`gateway_ops`] | config byte + operation sequence ([`ops::Op`]) | the same oracle after every operation, plus flow bookkeeping |
//! | [`pcap_read`] | a pcap/pcapng file | no panic, summary counts consistent, chunked reads equal whole reads |
//! | [`manifest_yaml`] | IronCore manifest text | no panic, deterministic findings, reconciled blocks in range and disjoint |
//! | [`scenario_yaml`] | scenario file text | no panic, deterministic load |
//! | [`sim_world`] | feature mask, generator seed, extra adversaries ([`world::WorldInput`]) | a whole swarm world in the simulator with the invariant checker, against the real gateway or the broken one [`world::ENV_BROKEN`] names |
//!
//! # Why bytes and not `arbitrary`
//!
//! Operations are decoded from raw bytes by a small cursor ([`bytes::ByteReader`]) rather than
//! derived with `arbitrary::Arbitrary`. That keeps the main crate free of a fuzz-only dependency,
//! makes the input format explicit and stable (committed corpus files keep their meaning when a
//! struct gains a field only if we say so), and gives every operation an `encode` method, so seed
//! corpora are written from typed values instead of hand-assembled bytes. Any byte string decodes
//! to some operation sequence: exhausted input reads as zeros, and every choice is taken modulo
//! its range.
//!
//! # Failing
//!
//! A harness reports a broken invariant by panicking with a message that names the invariant
//! (behaviour §6 names, e.g. `no-inbound-initiation`) and the operation index; libFuzzer turns the
//! panic into a crash file. These are the only intended panics: the code under test must never
//! panic, whatever the bytes.

pub mod ops;
pub mod oracle;
mod pcap;
pub mod seeds;
mod wire;
pub mod world;
mod yaml;

pub use crate::swarm::bytes;
pub use yaml::{manifest_yaml, scenario_yaml};

pub use ops::{GatewayOpsConfig, Op};
pub use oracle::{Checker, Control, Violation};
pub use pcap::pcap_read;
pub use wire::{fix_checksums, wire_parse};
pub use world::sim_world;

/// Upper bound on packets one [`gateway_packet`] input injects (keeps each run short).
pub const MAX_PACKETS: usize = 16;
/// Upper bound on operations one [`gateway_ops`] input runs.
pub const MAX_OPS: usize = 256;

/// Target `gateway_packet`: a configured gateway ([`oracle::Fixture`]: two NICs with the same
/// private address in two networks, P = 8, profile and switches from the first byte) opens a few
/// valid flows of every protocol and family, then receives the rest of the input as packets.
///
/// Input: `config: u8`, then records `flags: u8, len: u16 (big endian), len bytes`, at most
/// [`MAX_PACKETS`]; a short last record takes what is left. `flags` bit 0: from outside (else
/// from an inside NIC); bit 1: NIC 1 (else NIC 0); bit 2: fix checksums first
/// ([`fix_checksums`]), so that mutated packets get past checksum verification; bits 3–7:
/// advance the clock by that many seconds before the packet.
pub fn gateway_packet(data: &[u8]) {
    let mut r = bytes::ByteReader::new(data);
    let config = r.u8();
    let mut fixture = oracle::Fixture::new(config);
    for _ in 0..MAX_PACKETS {
        if r.is_empty() {
            break;
        }
        let flags = r.u8();
        let len = usize::from(r.u16());
        let mut pkt = r.bytes(len).to_vec();
        if flags & 4 != 0 {
            fix_checksums(&mut pkt);
        }
        let ingress = if flags & 1 != 0 {
            crate::nat::Ingress::Outside
        } else {
            crate::nat::Ingress::Inside(crate::nat::NicId(u32::from(flags >> 1 & 1)))
        };
        fixture.advance_ms(u64::from(flags >> 3) * 1000, false);
        fixture.packet(ingress, pkt);
    }
    fixture.finish();
}

/// Target `gateway_ops`: a gateway with three NICs (two sharing a network, the third in a second
/// network reusing the first one's private addresses), two NAT IPs per family and a small P,
/// driven by a sequence of [`Op`]s decoded from the input; every invariant of [`oracle`] is
/// checked after every operation.
///
/// Input: two config bytes ([`GatewayOpsConfig::decode`]), then operations ([`Op::decode`]) until
/// the input ends or [`MAX_OPS`] ran.
pub fn gateway_ops(data: &[u8]) {
    let mut r = bytes::ByteReader::new(data);
    let config = GatewayOpsConfig::decode(&mut r);
    let mut driver = ops::Driver::new(config);
    for _ in 0..MAX_OPS {
        if r.is_empty() {
            break;
        }
        let op = Op::decode(&mut r);
        driver.run(&op);
    }
    driver.finish();
}
