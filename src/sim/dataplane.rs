//! The one interface between the simulator and a NAT implementation. The simulator knows nothing
//! of NAT internals: it hands packets and control changes to a [`Dataplane`] and observes
//! verdicts and events. [`crate::nat::Gateway`] implements it; deliberately broken gateways in
//! [`crate::check::broken`] wrap it to show that every invariant checker can fail.

use std::net::SocketAddr;

use crate::nat::{
    Block, ConfigError, Counters, Egress, Event, Family, FlowInfo, Gateway, GatewayConfig, Ingress,
    NicConfig, NicId, Verdict,
};
use crate::time::Instant;

/// A sans-IO NAT dataplane instance (one per simulated dataplane node).
pub trait Dataplane {
    /// Handles one packet (rewritten in place or replaced); see [`Gateway::process`].
    fn process(&mut self, now: Instant, ingress: Ingress, pkt: &mut Vec<u8>) -> Verdict;
    /// A packet the dataplane sends on its own (released fragments).
    fn poll_transmit(&mut self) -> Option<(Egress, Vec<u8>)>;
    /// When [`Dataplane::handle_timeout`] next has work.
    fn poll_timeout(&mut self) -> Option<Instant>;
    /// A time no later than [`Dataplane::poll_timeout`]'s at which to call
    /// [`Dataplane::handle_timeout`]; it may find nothing due (a spurious wakeup). The simulator
    /// asks this after every packet, so implementations may answer cheaply; see
    /// [`Gateway::poll_wakeup`].
    fn poll_wakeup(&mut self) -> Option<Instant> {
        self.poll_timeout()
    }
    /// Advances the clock and runs due timers.
    fn handle_timeout(&mut self, now: Instant);
    /// Adds or updates a NIC.
    fn add_nic(&mut self, id: NicId, nic: NicConfig) -> Result<(), ConfigError>;
    /// Removes a NIC and its flows.
    fn remove_nic(&mut self, now: Instant, id: NicId);
    /// Gives a NIC a port block.
    fn assign_block(&mut self, now: Instant, id: NicId, block: Block) -> Result<(), ConfigError>;
    /// Takes a NIC's block of a family away (its flows end at once).
    fn release_block(&mut self, now: Instant, id: NicId, family: Family) -> Option<Block>;
    /// The block the dataplane holds for a NIC and family (for the status invariant).
    fn block_of(&self, id: NicId, family: Family) -> Option<Block>;
    /// Events recorded since the last call.
    fn drain_events(&mut self) -> Vec<Event>;
    /// Total counters.
    fn counters(&self) -> Counters;
    /// Counters of one NIC.
    fn nic_counters(&self, id: NicId) -> Option<Counters>;
    /// Every tracked flow.
    fn flows(&self) -> Vec<FlowInfo>;
    /// Live flows (IPv4, IPv6), cheap.
    fn live_flows(&self) -> (usize, usize);
    /// The NAT endpoint of a NIC's live flow, if any (see [`Gateway::translation_of`]). Replay
    /// uses it to address a captured reply half to the NAT.
    fn translation_of(
        &self,
        nic: NicId,
        protocol: u8,
        inside: SocketAddr,
        remote: SocketAddr,
    ) -> Option<SocketAddr>;
}

/// Builds a fresh dataplane instance: at start, and again when a node restarts with state loss.
pub type DataplaneFactory = dyn Fn(GatewayConfig) -> Result<Box<dyn Dataplane>, ConfigError>;

/// The factory for the real gateway.
pub fn real_gateway(config: GatewayConfig) -> Result<Box<dyn Dataplane>, ConfigError> {
    Ok(Box::new(Gateway::new(config)?))
}

impl Dataplane for Gateway {
    fn process(&mut self, now: Instant, ingress: Ingress, pkt: &mut Vec<u8>) -> Verdict {
        Gateway::process(self, now, ingress, pkt)
    }
    fn poll_transmit(&mut self) -> Option<(Egress, Vec<u8>)> {
        Gateway::poll_transmit(self)
    }
    fn poll_timeout(&mut self) -> Option<Instant> {
        Gateway::poll_timeout(self)
    }
    fn poll_wakeup(&mut self) -> Option<Instant> {
        Gateway::poll_wakeup(self)
    }
    fn handle_timeout(&mut self, now: Instant) {
        Gateway::handle_timeout(self, now)
    }
    fn add_nic(&mut self, id: NicId, nic: NicConfig) -> Result<(), ConfigError> {
        Gateway::add_nic(self, id, nic)
    }
    fn remove_nic(&mut self, now: Instant, id: NicId) {
        Gateway::remove_nic(self, now, id)
    }
    fn assign_block(&mut self, now: Instant, id: NicId, block: Block) -> Result<(), ConfigError> {
        Gateway::assign_block(self, now, id, block)
    }
    fn release_block(&mut self, now: Instant, id: NicId, family: Family) -> Option<Block> {
        Gateway::release_block(self, now, id, family)
    }
    fn block_of(&self, id: NicId, family: Family) -> Option<Block> {
        Gateway::block_of(self, id, family)
    }
    fn drain_events(&mut self) -> Vec<Event> {
        Gateway::drain_events(self)
    }
    fn counters(&self) -> Counters {
        Gateway::counters(self).clone()
    }
    fn nic_counters(&self, id: NicId) -> Option<Counters> {
        Gateway::nic_counters(self, id).cloned()
    }
    fn flows(&self) -> Vec<FlowInfo> {
        Gateway::flows(self)
    }
    fn live_flows(&self) -> (usize, usize) {
        Gateway::live_flows(self)
    }
    fn translation_of(
        &self,
        nic: NicId,
        protocol: u8,
        inside: SocketAddr,
        remote: SocketAddr,
    ) -> Option<SocketAddr> {
        Gateway::translation_of(self, nic, protocol, inside, remote)
    }
}
