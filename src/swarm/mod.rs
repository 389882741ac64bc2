//! Property-generated traffic and swarm testing (behaviour §1 use 1, TigerBeetle VOPR style).
//!
//! | module | job |
//! |---|---|
//! | [`features`] | per seed, which features and fault classes are on (swarm testing) |
//! | [`generate`](mod@generate) | seed + features → an ordinary scenario document (the world) |
//! | [`yaml`] | scenario documents back to scenario files, and the load round trip |
//! | [`run`] | one run through `run_scenario` against the real or a broken dataplane |
//! | [`coverage`] | vacuity guards: which interesting paths each run reached |
//! | [`shrink`] | greedy, bounded, deterministic minimisation of a failing document |
//! | [`cli`] | `natsim swarm`: seeds on threads, ordered output, reproductions on disk |
//! | [`shard`] | `natsim swarm --shard K/N` result files and the swarm half of `natsim merge` |
//! | [`fuzz_input`], [`bytes`] | the `sim_world` fuzz input format (bytes → world), read by `--from-fuzz` and the fuzz target |
//! | [`from_fuzz`] | `natsim swarm --from-fuzz`: a `sim_world` fuzz input to a minimised scenario file |
//!
//! A seed is the whole input: `Features::draw(seed)`, then `generate(seed, &features)`, then a
//! run with the document's seed (= the swarm seed). See `docs/swarm.md`.

pub mod bytes;
pub mod cli;
pub mod coverage;
pub mod features;
pub mod from_fuzz;
pub mod fuzz_input;
pub mod generate;
pub mod run;
pub mod shard;
pub mod shrink;
pub mod yaml;

pub use cli::{SwarmOptions, SwarmReport, parse_seeds, reproduce_cmd, swarm, swarm_cmd, world};
pub use coverage::{Path, Reached, Tally};
pub use features::{Families, Features};
pub use generate::generate;
pub use run::{Failure, Outcome, Target, run_case, run_document};
pub use shrink::{Minimised, minimise};
