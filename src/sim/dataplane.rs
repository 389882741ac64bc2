//! The one interface between the simulator and a NAT implementation. The simulator knows nothing
//! of NAT internals: it hands packets and control changes to a [`Dataplane`] and observes
//! verdicts and events. [`crate::nat::Gateway`] implements it; deliberately broken gateways in
//! [`crate::check::broken`] wrap it to show that every invariant checker can fail.
//!
//! The interface is split by role, so a new dataplane (a kernel one, a batched one) implements
//! the small packet part and takes defaults for the rest where it has nothing to say:
//!
//! - [`Packets`]: packets and timers (5 methods, `poll_wakeup` defaulted), sans-IO in the
//!   quinn-proto style: `process`, `poll_transmit`, `poll_timeout`, `handle_timeout`.
//! - [`Control`]: what the control plane does to it (NICs and port blocks).
//! - [`Inspect`]: what harnesses and checkers read back (blocks, events, counters, flows); all
//!   but `block_of` and `counters` have defaults.
//!
//! [`Dataplane`] is the combination (implemented for every type that has all three), so
//! `Box<dyn Dataplane>` is what the simulator and replay hold. A dataplane that wraps another
//! and changes a few calls implements [`Wrapper`]: every call it does not override is forwarded
//! to the inner dataplane, written once here.

use std::net::SocketAddr;

use crate::nat::{
    Block, ConfigError, Counters, Egress, Event, Family, FlowInfo, Gateway, GatewayConfig, Ingress,
    NicConfig, NicId, Verdict,
};
use crate::time::Instant;

/// Packets and timers: the part every dataplane must provide.
pub trait Packets {
    /// Handles one packet (rewritten in place or replaced); see [`Gateway::process`].
    fn process(&mut self, now: Instant, ingress: Ingress, pkt: &mut Vec<u8>) -> Verdict;
    /// A packet the dataplane sends on its own (released fragments).
    fn poll_transmit(&mut self) -> Option<(Egress, Vec<u8>)>;
    /// When [`Packets::handle_timeout`] next has work.
    fn poll_timeout(&mut self) -> Option<Instant>;
    /// A time no later than [`Packets::poll_timeout`]'s at which to call
    /// [`Packets::handle_timeout`]; it may find nothing due (a spurious wakeup). The simulator
    /// asks this after every packet, so implementations may answer cheaply; see
    /// [`Gateway::poll_wakeup`].
    fn poll_wakeup(&mut self) -> Option<Instant> {
        self.poll_timeout()
    }
    /// Advances the clock and runs due timers.
    fn handle_timeout(&mut self, now: Instant);
}

/// What the control plane does to a dataplane.
pub trait Control {
    /// Adds or updates a NIC.
    fn add_nic(&mut self, id: NicId, nic: NicConfig) -> Result<(), ConfigError>;
    /// Removes a NIC and its flows.
    fn remove_nic(&mut self, now: Instant, id: NicId);
    /// Gives a NIC a port block.
    fn assign_block(&mut self, now: Instant, id: NicId, block: Block) -> Result<(), ConfigError>;
    /// Takes a NIC's block of a family away (its flows end at once).
    fn release_block(&mut self, now: Instant, id: NicId, family: Family) -> Option<Block>;
}

/// What harnesses and checkers read back. A dataplane that cannot report events or flows (a
/// kernel dataplane without conntrack events, say) keeps the defaults: no events, no flows.
pub trait Inspect {
    /// The block the dataplane holds for a NIC and family (for the status invariant).
    fn block_of(&self, id: NicId, family: Family) -> Option<Block>;
    /// Events recorded since the last call.
    fn drain_events(&mut self) -> Vec<Event> {
        Vec::new()
    }
    /// Total counters.
    fn counters(&self) -> Counters;
    /// Counters of one NIC.
    fn nic_counters(&self, _id: NicId) -> Option<Counters> {
        None
    }
    /// Every tracked flow.
    fn flows(&self) -> Vec<FlowInfo> {
        Vec::new()
    }
    /// Live flows (IPv4, IPv6); implementations should answer cheaply.
    fn live_flows(&self) -> (usize, usize) {
        self.flows()
            .iter()
            .filter(|f| f.live)
            .fold((0, 0), |(v4, v6), f| match Family::of(&f.flow.nat.ip()) {
                Family::V4 => (v4 + 1, v6),
                Family::V6 => (v4, v6 + 1),
            })
    }
    /// The NAT endpoint of a NIC's live flow, if any (see [`Gateway::translation_of`]). Replay
    /// uses it to address a captured reply half to the NAT.
    fn translation_of(
        &self,
        _nic: NicId,
        _protocol: u8,
        _inside: SocketAddr,
        _remote: SocketAddr,
    ) -> Option<SocketAddr> {
        None
    }
    /// What the dataplane has to say about the run besides counters, one line each, for the
    /// report (the kernel dataplane: its clock lag, ignored kernel packets, lost conntrack
    /// events). A dataplane with nothing to add says nothing.
    fn notes(&self) -> Vec<String> {
        Vec::new()
    }
}

/// A sans-IO NAT dataplane instance (one per simulated dataplane node): packets and timers,
/// control and inspection together.
pub trait Dataplane: Packets + Control + Inspect {}

impl<T: Packets + Control + Inspect + ?Sized> Dataplane for T {}

/// Builds a fresh dataplane instance: at start, and again when a node restarts with state loss.
pub type DataplaneFactory = dyn Fn(GatewayConfig) -> Result<Box<dyn Dataplane>, ConfigError>;

/// The factory for the real gateway.
pub fn real_gateway(config: GatewayConfig) -> Result<Box<dyn Dataplane>, ConfigError> {
    Ok(Box::new(Gateway::new(config)?))
}

/// A dataplane wrapping another: every method forwards to [`Wrapper::inner`] /
/// [`Wrapper::inner_mut`] unless the wrapper overrides it, so a deliberately broken gateway
/// writes only what it breaks. Implementing it makes the type a [`Dataplane`].
pub trait Wrapper {
    /// The wrapped dataplane.
    fn inner(&self) -> &dyn Dataplane;
    /// The wrapped dataplane, mutably.
    fn inner_mut(&mut self) -> &mut dyn Dataplane;

    /// See [`Packets::process`].
    fn process(&mut self, now: Instant, ingress: Ingress, pkt: &mut Vec<u8>) -> Verdict {
        self.inner_mut().process(now, ingress, pkt)
    }
    /// See [`Packets::poll_transmit`].
    fn poll_transmit(&mut self) -> Option<(Egress, Vec<u8>)> {
        self.inner_mut().poll_transmit()
    }
    /// See [`Packets::poll_timeout`].
    fn poll_timeout(&mut self) -> Option<Instant> {
        self.inner_mut().poll_timeout()
    }
    /// See [`Packets::poll_wakeup`].
    fn poll_wakeup(&mut self) -> Option<Instant> {
        self.inner_mut().poll_wakeup()
    }
    /// See [`Packets::handle_timeout`].
    fn handle_timeout(&mut self, now: Instant) {
        self.inner_mut().handle_timeout(now)
    }
    /// See [`Control::add_nic`].
    fn add_nic(&mut self, id: NicId, nic: NicConfig) -> Result<(), ConfigError> {
        self.inner_mut().add_nic(id, nic)
    }
    /// See [`Control::remove_nic`].
    fn remove_nic(&mut self, now: Instant, id: NicId) {
        self.inner_mut().remove_nic(now, id)
    }
    /// See [`Control::assign_block`].
    fn assign_block(&mut self, now: Instant, id: NicId, block: Block) -> Result<(), ConfigError> {
        self.inner_mut().assign_block(now, id, block)
    }
    /// See [`Control::release_block`].
    fn release_block(&mut self, now: Instant, id: NicId, family: Family) -> Option<Block> {
        self.inner_mut().release_block(now, id, family)
    }
    /// See [`Inspect::block_of`].
    fn block_of(&self, id: NicId, family: Family) -> Option<Block> {
        self.inner().block_of(id, family)
    }
    /// See [`Inspect::drain_events`].
    fn drain_events(&mut self) -> Vec<Event> {
        self.inner_mut().drain_events()
    }
    /// See [`Inspect::counters`].
    fn counters(&self) -> Counters {
        self.inner().counters()
    }
    /// See [`Inspect::nic_counters`].
    fn nic_counters(&self, id: NicId) -> Option<Counters> {
        self.inner().nic_counters(id)
    }
    /// See [`Inspect::flows`].
    fn flows(&self) -> Vec<FlowInfo> {
        self.inner().flows()
    }
    /// See [`Inspect::live_flows`].
    fn live_flows(&self) -> (usize, usize) {
        self.inner().live_flows()
    }
    /// See [`Inspect::translation_of`].
    fn translation_of(
        &self,
        nic: NicId,
        protocol: u8,
        inside: SocketAddr,
        remote: SocketAddr,
    ) -> Option<SocketAddr> {
        self.inner().translation_of(nic, protocol, inside, remote)
    }
    /// See [`Inspect::notes`].
    fn notes(&self) -> Vec<String> {
        self.inner().notes()
    }
}

impl<W: Wrapper> Packets for W {
    fn process(&mut self, now: Instant, ingress: Ingress, pkt: &mut Vec<u8>) -> Verdict {
        Wrapper::process(self, now, ingress, pkt)
    }
    fn poll_transmit(&mut self) -> Option<(Egress, Vec<u8>)> {
        Wrapper::poll_transmit(self)
    }
    fn poll_timeout(&mut self) -> Option<Instant> {
        Wrapper::poll_timeout(self)
    }
    fn poll_wakeup(&mut self) -> Option<Instant> {
        Wrapper::poll_wakeup(self)
    }
    fn handle_timeout(&mut self, now: Instant) {
        Wrapper::handle_timeout(self, now)
    }
}

impl<W: Wrapper> Control for W {
    fn add_nic(&mut self, id: NicId, nic: NicConfig) -> Result<(), ConfigError> {
        Wrapper::add_nic(self, id, nic)
    }
    fn remove_nic(&mut self, now: Instant, id: NicId) {
        Wrapper::remove_nic(self, now, id)
    }
    fn assign_block(&mut self, now: Instant, id: NicId, block: Block) -> Result<(), ConfigError> {
        Wrapper::assign_block(self, now, id, block)
    }
    fn release_block(&mut self, now: Instant, id: NicId, family: Family) -> Option<Block> {
        Wrapper::release_block(self, now, id, family)
    }
}

impl<W: Wrapper> Inspect for W {
    fn block_of(&self, id: NicId, family: Family) -> Option<Block> {
        Wrapper::block_of(self, id, family)
    }
    fn drain_events(&mut self) -> Vec<Event> {
        Wrapper::drain_events(self)
    }
    fn counters(&self) -> Counters {
        Wrapper::counters(self)
    }
    fn nic_counters(&self, id: NicId) -> Option<Counters> {
        Wrapper::nic_counters(self, id)
    }
    fn flows(&self) -> Vec<FlowInfo> {
        Wrapper::flows(self)
    }
    fn live_flows(&self) -> (usize, usize) {
        Wrapper::live_flows(self)
    }
    fn translation_of(
        &self,
        nic: NicId,
        protocol: u8,
        inside: SocketAddr,
        remote: SocketAddr,
    ) -> Option<SocketAddr> {
        Wrapper::translation_of(self, nic, protocol, inside, remote)
    }
    fn notes(&self) -> Vec<String> {
        Wrapper::notes(self)
    }
}

impl Packets for Gateway {
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
}

impl Control for Gateway {
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
}

impl Inspect for Gateway {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A dataplane with only the packet part and the two required inspection methods: the
    /// defaults give it no events, no flows and no translations.
    struct Minimal;

    impl Packets for Minimal {
        fn process(&mut self, _: Instant, _: Ingress, _: &mut Vec<u8>) -> Verdict {
            Verdict::Drop(crate::nat::DropReason::Malformed)
        }
        fn poll_transmit(&mut self) -> Option<(Egress, Vec<u8>)> {
            None
        }
        fn poll_timeout(&mut self) -> Option<Instant> {
            Some(Instant::from_nanos(7))
        }
        fn handle_timeout(&mut self, _: Instant) {}
    }

    impl Control for Minimal {
        fn add_nic(&mut self, _: NicId, _: NicConfig) -> Result<(), ConfigError> {
            Ok(())
        }
        fn remove_nic(&mut self, _: Instant, _: NicId) {}
        fn assign_block(&mut self, _: Instant, _: NicId, _: Block) -> Result<(), ConfigError> {
            Ok(())
        }
        fn release_block(&mut self, _: Instant, _: NicId, _: Family) -> Option<Block> {
            None
        }
    }

    impl Inspect for Minimal {
        fn block_of(&self, _: NicId, _: Family) -> Option<Block> {
            None
        }
        fn counters(&self) -> Counters {
            Counters::default()
        }
    }

    /// Counts the packets it forwards and changes nothing else.
    struct CountingWrapper {
        inner: Box<dyn Dataplane>,
        packets: u32,
    }

    impl Wrapper for CountingWrapper {
        fn inner(&self) -> &dyn Dataplane {
            &*self.inner
        }
        fn inner_mut(&mut self) -> &mut dyn Dataplane {
            &mut *self.inner
        }
        fn process(&mut self, now: Instant, ingress: Ingress, pkt: &mut Vec<u8>) -> Verdict {
            self.packets += 1;
            self.inner.process(now, ingress, pkt)
        }
    }

    #[test]
    fn a_packet_only_dataplane_gets_inspection_defaults() {
        let mut d: Box<dyn Dataplane> = Box::new(Minimal);
        assert_eq!(d.poll_wakeup(), Some(Instant::from_nanos(7)));
        assert!(d.drain_events().is_empty());
        assert!(d.flows().is_empty());
        assert_eq!(d.live_flows(), (0, 0));
        assert_eq!(d.nic_counters(NicId(0)), None);
        let any: SocketAddr = "192.0.2.1:1".parse().expect("address");
        assert_eq!(d.translation_of(NicId(0), 17, any, any), None);
    }

    #[test]
    fn a_wrapper_forwards_what_it_does_not_override() {
        let mut w = CountingWrapper {
            inner: Box::new(Minimal),
            packets: 0,
        };
        let mut pkt = vec![0u8; 4];
        let v = Packets::process(&mut w, Instant::ZERO, Ingress::Outside, &mut pkt);
        assert_eq!(v, Verdict::Drop(crate::nat::DropReason::Malformed));
        assert_eq!(w.packets, 1);
        // Forwarded: the inner dataplane's answer, through the combined interface.
        let d: &mut dyn Dataplane = &mut w;
        assert_eq!(d.poll_timeout(), Some(Instant::from_nanos(7)));
        assert_eq!(d.poll_wakeup(), Some(Instant::from_nanos(7)));
        let nic = NicConfig {
            network: crate::nat::NetworkId(0),
            addresses: Vec::new(),
            name: "n".into(),
        };
        assert!(d.add_nic(NicId(1), nic).is_ok());
    }
}
