//! behaviour §6 invariant checkers, as observers of simulator and dataplane events
//! ([`crate::sim::Observer`]), and deliberately broken dataplanes ([`broken`]) that show each
//! checker can fail.
//!
//! The checker keeps its own model of the flows, built from what it *sees* the dataplane do to
//! packets (not from what the dataplane claims), plus the control plane's block assignments. Every
//! check is O(1) per event: hash maps keyed by tuples (hashbrown with a fixed hasher, lookups
//! only; nothing iterates them into output).

pub mod broken;
mod invariants;
pub mod liveness;
pub mod target;

pub use invariants::{Invariant, InvariantChecker, InvariantSummary};
pub use target::Target;
