//! The deterministic network simulator.
//!
//! - [`engine`]: virtual clock, event queue ordered by (time, sequence number) and the event
//!   loop; its child modules are the parts: topology building, routing and relay, dataplane
//!   nodes, the host stack, application lifecycle, adversaries, the control-plane driver,
//!   faults, capture comments and results.
//! - [`ids`]: typed ids of hosts, applications and links, and link ends.
//! - [`link`]: delay, jitter, loss, duplication, reordering, MTU; integer-ratio probabilities.
//! - [`dataplane`]: the [`Dataplane`] interface (packets and timers, control, inspection), the
//!   only way the simulator touches a NAT; [`dataplane::Wrapper`] for dataplanes wrapping one.
//! - [`control`]: the control plane, a thin adapter over the IronCore API reconciler
//!   ([`crate::api::World`]): scripted changes become API mutations, reconcile output becomes
//!   `assign_block` / `release_block` calls, status comes from `gateway_status` /
//!   `gateway_routing`.
//! - [`tcp`], [`apps`], [`workload`]: host applications (TCP/UDP/ping clients and servers,
//!   RFC 5780 probe, adversaries) and workload generators.
//! - [`observe`]: what observers see ([`Observation`]), how they report a [`Violation`], and
//!   the trace [`Digest`]. [`packet`]: allocation-free packet builders and the [`Tuple`] view.
//! - [`config`]: the resolved run configuration that scenario files compile to.
//! - [`comment`]: verdict comments of captured packets (shared with replay); [`capture`]:
//!   the captured links, each packet annotated with its verdict as the run goes on.
//!
//! Every component draws from its own ChaCha8 stream keyed by a hash of its *name*
//! ([`engine::stream_of`]), so adding a host or link never changes another's draws.

pub mod apps;
pub mod capture;
pub mod comment;
pub mod config;
pub mod control;
pub mod dataplane;
pub mod engine;
pub mod ids;
pub mod ipfrag;
pub mod link;
pub mod observe;
pub mod packet;
pub mod queue;
pub mod tcp;
pub mod workload;

pub use config::SimConfig;
pub use control::{ControlConfig, ControlPlane, Status};
pub use dataplane::{Dataplane, DataplaneFactory, real_gateway};
pub use engine::{RunEnd, SimError, Simulator};
pub use observe::{Digest, Invariant, Observation, Observer, Violation};
pub use packet::Tuple;
