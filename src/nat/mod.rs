//! The NAT gateway under test, sans-IO: time and packets are passed in, verdicts come out.
//!
//! - [`config`]: networks, NICs, NAT IPs, P, blocks; [`profile`]: timers and behaviour switches.
//! - `table`: the connection-tracking slab, its two indexes, timer lists and port allocator state;
//!   `ports`: the per-scope free-sets; `mapping`: the endpoint mappings; `tcp`: the TCP state machine; `frag`: fragment state.
//! - [`Gateway`]: the translator tying them together; [`counters`] and [`event`]: what
//!   observers see.

mod addr;
pub mod config;
pub mod counters;
mod deferred;
pub mod event;
mod frag;
mod gateway;
mod index;
mod mapping;
pub mod nat64;
mod ports;
mod prefetch;
pub mod profile;
mod table;
mod tcp;
mod ttl;

/// The gateway's transport checksum check (fragments pass), which lives in [`crate::wire`].
pub use crate::wire::checksum::l4_ok as l4_checksum_ok;
pub use config::{
    Block, ConfigError, Family, GatewayConfig, NetworkConfig, NetworkId, NicConfig, NicId,
};
pub use counters::{Counters, DropReason};
pub use deferred::MAX_PENDING as MAX_PENDING_SYN_ANSWERS;
pub use event::{EndReason, Event, FlowView};
pub use gateway::{BatchPacket, Egress, FlowInfo, Gateway, Ingress, Verdict};
pub use ports::port_start_offset;
pub use profile::{LimitScope, Profile, ProfileName};
pub use ttl::{TIME_EXCEEDED_BURST, TIME_EXCEEDED_INTERVAL_NS};
