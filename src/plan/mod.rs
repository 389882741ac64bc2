//! Capacity planning: how many public IPs, which P, and when ports run out.
//!
//! A plan file describes a fleet, its traffic and a gateway, plus sweeps over any of those; each
//! point of the sweep is evaluated with an analytic model and in the simulator
//! ([`simulate`](mod@simulate)), and the results become a Markdown report, a JSON dump and SVG
//! plots.
//!
//! | module | job |
//! |---|---|
//! | [`answer`] | the answer paragraph; points grouped into alternatives and conditions |
//! | [`analytic`] | block arithmetic, Little's law, Erlang-B and its inverses, Zipf skew |
//! | [`profiles`] | plan-side timer table of the behaviour profiles (behaviour §5) |
//! | [`providers`] | IronCore, GCP, AWS and Azure capacity rules (behaviour §7) |
//! | [`params`] | the resolved parameters of one point (also the simulator's input) |
//! | [`settings`] | every parameter by dotted path, typed and validated |
//! | [`file`](mod@file) | the YAML plan format, errors with file, line and field |
//! | [`sweep`] | deterministic cartesian expansion of sweeps |
//! | [`model`] | evaluates one point; provider comparison |
//! | [`run`] | runs all points on threads, simulator hook, comparison |
//! | [`interval`] | confidence intervals on simulated blocking (Wilson, batch means) |
//! | [`decide`] | one verdict and recommendation per point from the worse of both answers |
//! | [`simulate`](mod@simulate) | the simulator hook: a point as a sampled scenario, measured and scaled |
//! | [`mdtable`] | Markdown tables (padded, or streamed when long) |
//! | [`report`], [`plot`] | `report.md`, `report.json`, SVG plots |
//! | [`cli`] | `natsim plan PLAN --out DIR` |
//!
//! `docs/planning.md` documents the plan format, the formulas and their assumptions.

pub mod analytic;
pub mod answer;
pub mod cli;
pub mod decide;
pub mod file;
pub mod interval;
pub mod mdtable;
pub mod model;
pub mod params;
pub mod plot;
pub mod profiles;
pub mod providers;
pub mod report;
pub mod run;
pub mod settings;
pub mod shard;
pub mod simulate;
pub mod sweep;

pub use cli::{PlanOutcome, plan_cmd, plan_cmd_no_sim, plan_cmd_with};
pub use file::{Plan, PlanError};
pub use model::{AnalyticPoint, compare_providers, evaluate};
pub use params::PointParams;
pub use profiles::{LimitScope, ProfileName, ProfileTimers};
pub use providers::Rules;
pub use report::{RenderedReport, render, render_svgs, write_plan_report, write_report};
pub use run::{
    Comparison, PlanResult, PointResult, SimSample, SimulateFn, SimulatedPoint, run_plan,
    run_plan_with_progress,
};
pub use simulate::simulate;
