//! Scenario files: the schema ([`schema`]), loading and name resolution ([`load`](mod@load)), the
//! IronCore API objects a scenario stands for and its `manifests:` ([`objects`],
//! [`manifests`]),
//! expectations ([`expect`]), reports ([`report`]), pcapng capture output ([`capture`]) and the
//! `run` / `check` / `schema` command entry points ([`cli`]).

pub mod capture;
pub mod check_shard;
pub mod cli;
pub mod expect;
pub mod junit;
pub mod load;
pub mod manifests;
pub mod names;
pub mod objects;
pub mod packets;
pub mod ranges;
pub mod report;
pub mod schema;

pub use load::{Scenario, ScenarioError, load, load_doc, load_str};
pub use report::{InvariantOutcome, Report, RunOutput, RunResult, run_scenario};
