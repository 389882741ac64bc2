//! # natsim: a deterministic testbed for cloud NAT gateways
//!
//! natsim runs a complete NAT gateway modelled on IronCore's `NATGateway` (IEP-4) inside a
//! deterministic simulator and checks its invariants. The crate reads top-down:
//!
//! | module | job |
//! |---|---|
//! | [`time`], [`rng`] | virtual clock and seeded ChaCha8 streams: the only sources of time and chance |
//! | [`wire`] | packet views and builders (IPv4/IPv6, TCP, UDP, ICMP/ICMPv6), RFC 1624 checksums |
//! | [`nat`] | the sans-IO gateway: port-block allocator, connection tracking, translator |
//! | [`api`] | IronCore manifests, validation, reconciliation of NICs to port blocks, status |
//! | [`replay`] | pcap/pcapng ingest and capture output |
//! | [`plan`] | capacity planning: analytic model |
//! | [`sim`] | deterministic network simulator: event queue, topology, links, hosts, traffic |
//! | [`check`] | behaviour §6 invariant checkers (observers of simulator events) and broken gateways |
//! | [`scenario`] | scenario files: schema, loading, expectations, reports, `run`/`check` entry points |
//! | [`swarm`] | generated worlds, swarm testing, minimisation of failures to scenario files |
//! | [`shard`] | splitting a run into shards (`--shard K/N`, Kubernetes Indexed Jobs) and checking a set for `natsim merge` |
//! | `fuzzing` | the cargo-fuzz harnesses (cargo feature `fuzzing`, enabled by `fuzz/` and the tests) |
//! | [`exit`], [`output`] | the commands' exit codes; all-or-nothing output files, checked stdout/stderr |
//!
//! See `ARCHITECTURE.md` for how a packet flows through these modules.

pub mod api;
pub mod check;
pub mod demo;
pub mod diff;
pub mod exit;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod kernel;
pub mod nat;
pub mod output;
pub mod plan;
pub mod replay;
pub mod rng;
pub mod scenario;
pub mod shard;
pub mod sim;
pub mod swarm;
pub mod time;
pub mod wire;
pub mod yaml;
