//! Events the gateway emits for observers (invariant checkers, reports). Recording is opt-in
//! ([`crate::nat::GatewayConfig::record_events`]) so the hot path pays nothing when nobody listens.

use std::net::SocketAddr;

use serde::Serialize;

use super::config::{Block, Family, NicId};
use crate::time::Instant;

/// The identity of a flow as observers see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct FlowView {
    /// The NIC that opened it.
    pub nic: NicId,
    /// IP protocol number (1/58 for ICMP echo flows, whose "port" is the identifier).
    pub protocol: u8,
    /// Inside address and port (identifier for ICMP).
    pub inside: SocketAddr,
    /// Remote address and port (0 for ICMP).
    pub remote: SocketAddr,
    /// Translated address and port.
    pub nat: SocketAddr,
}

/// Why a flow ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// Its idle or transitory timer ran out.
    Timeout,
    /// Its NIC lost the port block (or was removed).
    BlockRemoved,
    /// It was closed (both FINs or an RST) and a new SYN took its port over (`linux`'s
    /// TIME_WAIT takeover, docs/behaviour.md §5). Never a live, open flow.
    TakenOver,
    /// An RST came before any packet came back, and the profile ends such a flow at once
    /// (`linux`, docs/behaviour.md §4 "TCP").
    ResetUnanswered,
}

/// Something observable happened inside the gateway.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A flow was created by an outbound packet.
    FlowCreated {
        /// When.
        at: Instant,
        /// Which flow.
        flow: FlowView,
    },
    /// A packet refreshed a flow's timer (only with `record_refresh_events`).
    FlowRefreshed {
        /// When.
        at: Instant,
        /// Which flow.
        flow: FlowView,
        /// Deadline after the refresh.
        expires_at: Instant,
    },
    /// A flow stopped matching packets; its port may still be held (see `PortReleased`).
    FlowEnded {
        /// When (the exact timer deadline for timeouts).
        at: Instant,
        /// Which flow.
        flow: FlowView,
        /// Why.
        reason: EndReason,
        /// When the flow was last active.
        last_active: Instant,
        /// The deadline the flow had.
        deadline: Instant,
    },
    /// A flow's port became free again in its scope.
    PortReleased {
        /// When.
        at: Instant,
        /// Which flow.
        flow: FlowView,
    },
    /// A new flow was refused for lack of ports (rate-limited per NIC).
    PortsExhausted {
        /// When.
        at: Instant,
        /// The NIC.
        nic: NicId,
        /// The family.
        family: Family,
        /// Protocol.
        protocol: u8,
    },
    /// A new flow was refused because the table is full.
    TableFull {
        /// When.
        at: Instant,
        /// The NIC.
        nic: NicId,
        /// The family.
        family: Family,
    },
    /// A NIC got a block.
    BlockAssigned {
        /// When.
        at: Instant,
        /// The NIC.
        nic: NicId,
        /// The block.
        block: Block,
    },
    /// A NIC lost a block, and with it `flows_flushed` flows.
    BlockRemoved {
        /// When.
        at: Instant,
        /// The NIC.
        nic: NicId,
        /// The block.
        block: Block,
        /// Flows ended with it.
        flows_flushed: u64,
    },
}
