//! Deliberately broken dataplanes. Each wraps the real [`Gateway`] and breaks one rule, so that
//! a test can show the matching invariant checker fails ("a checker that cannot fail is
//! worthless", SPEC §6).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::nat::{
    Block, ConfigError, Counters, DropReason, Egress, Event, Family, FlowInfo, Gateway,
    GatewayConfig, Ingress, NicConfig, NicId, Verdict,
};
use crate::sim::dataplane::{Dataplane, DataplaneFactory};
use crate::sim::packet::{Tuple, build_tcp, build_udp_len, quoted_offset};
use crate::time::Instant;
use crate::wire::parse::{parse_ip, parse_ip_lax, proto};
use crate::wire::rewrite::{Side, rewrite_addr, rewrite_port};

/// The ways a dataplane can be broken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Breakage {
    /// Lets unsolicited TCP/UDP to this destination port through to the first NIC.
    LeakyFilter {
        /// The leaking port.
        port: u16,
    },
    /// Every NIC translates into the first slot of its NAT IP (one gateway instance per NIC).
    OverlappingBlocks,
    /// Uses one port past the end of each block.
    BlockEndOffByOne,
    /// Flushes a NIC's live flows to make room when its ports are exhausted.
    EvictingAllocator,
    /// Keeps a NIC's flows (and translation) after its block is released.
    StaleFlowAfterBlockLoss,
    /// Delivers inbound replies to the next NIC.
    ReplyToWrongNic,
    /// Corrupts the transport checksum of outbound packets.
    BadChecksum,
    /// Moves a live flow to another NAT port every third outbound packet.
    UnstableMapping,
    /// Translates NICs without a block with the first NAT IP anyway.
    IgnoresSelection,
    /// Silently ignores every second block assignment.
    WrongStatus,
    /// Drops the first outbound packet in every other instance (a process-global counter).
    Nondeterministic,
    /// Translates ICMP errors whatever their outer destination: an error the real gateway drops
    /// because it is not addressed to the quoted packet's source (docs/behaviour.md §4 ICMP) is
    /// re-addressed to it and translated (the gateway's behaviour before issue 19).
    IgnoresOuterDestination,
}

impl Breakage {
    /// Every breakage, with the invariant that should catch it.
    pub const CATALOGUE: [(Breakage, &'static str); 12] = [
        (Breakage::LeakyFilter { port: 0 }, "no-inbound-initiation"),
        (Breakage::OverlappingBlocks, "port-limit"),
        (Breakage::BlockEndOffByOne, "port-limit"),
        (Breakage::EvictingAllocator, "timers"),
        (Breakage::StaleFlowAfterBlockLoss, "no-inbound-initiation"),
        (Breakage::ReplyToWrongNic, "isolation"),
        (Breakage::BadChecksum, "wire-validity"),
        (Breakage::UnstableMapping, "mapping-stability"),
        (Breakage::IgnoresSelection, "selection"),
        (Breakage::WrongStatus, "status"),
        (Breakage::Nondeterministic, "determinism"),
        (Breakage::IgnoresOuterDestination, "no-inbound-initiation"),
    ];

    /// A factory building this broken dataplane.
    pub fn factory(self) -> Box<DataplaneFactory> {
        Box::new(
            move |cfg: GatewayConfig| -> Result<Box<dyn Dataplane>, ConfigError> {
                // Only the nondeterministic breakage counts its instances, so other tests running in
                // parallel cannot disturb the alternation.
                static INSTANCES: AtomicU64 = AtomicU64::new(0);
                let instance = if self == Breakage::Nondeterministic {
                    INSTANCES.fetch_add(1, Ordering::Relaxed)
                } else {
                    0
                };
                Ok(Box::new(Broken {
                    inner: Gateway::new(cfg.clone())?,
                    per_nic: BTreeMap::new(),
                    config: cfg,
                    kind: self,
                    nics: BTreeMap::new(),
                    told: BTreeMap::new(),
                    assignments: 0,
                    outbound: 0,
                    odd_instance: instance % 2 == 1,
                    hidden: Vec::new(),
                }))
            },
        )
    }
}

struct Broken {
    inner: Gateway,
    /// OverlappingBlocks: one gateway per NIC.
    per_nic: BTreeMap<NicId, Gateway>,
    config: GatewayConfig,
    kind: Breakage,
    nics: BTreeMap<NicId, NicConfig>,
    /// The blocks the control plane believes it handed out.
    told: BTreeMap<(NicId, Family), Block>,
    assignments: u64,
    outbound: u64,
    odd_instance: bool,
    hidden: Vec<Event>,
}

/// Re-addresses an ICMP error to its quoted packet's source when it is addressed elsewhere (the
/// rule `IgnoresOuterDestination` ignores); false when `pkt` is no such error.
fn readdress_to_quoted_source(pkt: &mut [u8]) -> bool {
    let Ok(meta) = parse_ip(pkt) else {
        return false;
    };
    let Some(off) = quoted_offset(pkt) else {
        return false;
    };
    let Ok(qm) = parse_ip_lax(&pkt[off..meta.end]) else {
        return false;
    };
    if qm.version != meta.version {
        return false;
    }
    let len = meta.addr_len();
    let qsrc = pkt[off + qm.src_offset()..off + qm.src_offset() + len].to_vec();
    if pkt[meta.dst_offset()..meta.dst_offset() + len] == qsrc[..] {
        return false;
    }
    rewrite_addr(pkt, &meta, Side::Dst, &qsrc);
    true
}

/// Rebuilds a TCP/UDP packet with a new destination (valid checksums).
fn redirect(pkt: &mut Vec<u8>, to: IpAddr) -> bool {
    let Some(t) = Tuple::parse(pkt) else {
        return false;
    };
    let dst = std::net::SocketAddr::new(to, t.dst_port);
    match t.protocol {
        proto::TCP => build_tcp(
            pkt,
            t.src_addr(),
            dst,
            t.tcp_flags,
            t.seq,
            t.ack,
            t.payload_len,
        ),
        proto::UDP => build_udp_len(pkt, t.src_addr(), dst, t.payload_len),
        _ => return false,
    }
    true
}

impl Broken {
    fn gw_for(&mut self, nic: NicId) -> &mut Gateway {
        if self.kind == Breakage::OverlappingBlocks
            && let Some(g) = self.per_nic.get_mut(&nic)
        {
            return g;
        }
        &mut self.inner
    }
}

impl Dataplane for Broken {
    fn process(&mut self, now: Instant, ingress: Ingress, pkt: &mut Vec<u8>) -> Verdict {
        match (self.kind, ingress) {
            (Breakage::OverlappingBlocks, Ingress::Outside) => {
                let original = pkt.clone();
                let mut last = Verdict::Drop(DropReason::Unsolicited);
                for g in self.per_nic.values_mut() {
                    pkt.clone_from(&original);
                    last = g.process(now, ingress, pkt);
                    if matches!(last, Verdict::Forward(_)) {
                        return last;
                    }
                }
                pkt.clone_from(&original);
                last
            }
            (Breakage::OverlappingBlocks, Ingress::Inside(n)) => {
                self.gw_for(n).process(now, ingress, pkt)
            }
            (Breakage::LeakyFilter { port }, Ingress::Outside) => {
                let v = self.inner.process(now, ingress, pkt);
                let leak = Tuple::parse(pkt).is_some_and(|t| t.dst_port == port || port == 0);
                if v == Verdict::Drop(DropReason::Unsolicited) && leak {
                    let first = self
                        .nics
                        .iter()
                        .next()
                        .map(|(id, c)| (*id, c.addresses.clone()));
                    if let Some((id, addrs)) = first
                        && let Some(&a) = addrs.first()
                        && redirect(pkt, a)
                    {
                        return Verdict::Forward(Egress::Nic(id));
                    }
                }
                v
            }
            (Breakage::EvictingAllocator, Ingress::Inside(n)) => {
                let original = pkt.clone();
                let v = self.inner.process(now, ingress, pkt);
                if v != Verdict::Drop(DropReason::PortsExhausted) {
                    return v;
                }
                let fam = if original.first().is_some_and(|b| b >> 4 == 6) {
                    Family::V6
                } else {
                    Family::V4
                };
                if let Some(b) = self.inner.block_of(n, fam) {
                    self.inner.release_block(now, n, fam);
                    let _ = self.inner.assign_block(now, n, b);
                    // Hide the block churn so only the evicted flows show.
                    let events = self.inner.drain_events();
                    self.hidden.extend(events.into_iter().filter(|e| {
                        !matches!(e, Event::BlockAssigned { .. } | Event::BlockRemoved { .. })
                    }));
                }
                *pkt = original;
                self.inner.process(now, ingress, pkt)
            }
            (Breakage::ReplyToWrongNic, Ingress::Outside) => {
                match self.inner.process(now, ingress, pkt) {
                    Verdict::Forward(Egress::Nic(n)) => {
                        let other = self.nics.keys().find(|k| **k != n).copied().unwrap_or(n);
                        Verdict::Forward(Egress::Nic(other))
                    }
                    v => v,
                }
            }
            (Breakage::BadChecksum, Ingress::Inside(_)) => {
                let v = self.inner.process(now, ingress, pkt);
                if v == Verdict::Forward(Egress::Outside)
                    && let Ok(meta) = parse_ip(pkt)
                {
                    let at = match meta.protocol {
                        proto::TCP => meta.l4_offset + 16,
                        proto::UDP => meta.l4_offset + 6,
                        _ => meta.l4_offset + 2,
                    };
                    if let Some(b) = pkt.get_mut(at) {
                        *b ^= 0x01;
                    }
                }
                v
            }
            (Breakage::UnstableMapping, Ingress::Inside(_)) => {
                let v = self.inner.process(now, ingress, pkt);
                if v == Verdict::Forward(Egress::Outside)
                    && let Ok(meta) = parse_ip(pkt)
                    && matches!(meta.protocol, proto::TCP | proto::UDP)
                {
                    self.outbound += 1;
                    if self.outbound.is_multiple_of(3)
                        && let Some(t) = Tuple::parse(pkt)
                    {
                        rewrite_port(pkt, &meta, Side::Src, t.src_port.wrapping_add(1).max(1024));
                    }
                }
                v
            }
            (Breakage::IgnoresSelection, Ingress::Inside(_)) => {
                let original = pkt.clone();
                let v = self.inner.process(now, ingress, pkt);
                if v == Verdict::Drop(DropReason::NoNatBlock)
                    && let Some(&nat) = self.config.nat_ips.first()
                {
                    *pkt = original;
                    if let Ok(meta) = parse_ip(pkt)
                        && nat.is_ipv4() == (meta.version == crate::wire::IpVersion::V4)
                    {
                        let bytes = match nat {
                            IpAddr::V4(a) => a.octets().to_vec(),
                            IpAddr::V6(a) => a.octets().to_vec(),
                        };
                        rewrite_addr(pkt, &meta, Side::Src, &bytes);
                        return Verdict::Forward(Egress::Outside);
                    }
                }
                v
            }
            (Breakage::IgnoresOuterDestination, _) => {
                let original = pkt.clone();
                let v = self.inner.process(now, ingress, pkt);
                if v != Verdict::Drop(DropReason::IcmpErrorNoFlow) {
                    return v;
                }
                let mut again = original.clone();
                if readdress_to_quoted_source(&mut again) {
                    let retry = self.inner.process(now, ingress, &mut again);
                    if matches!(retry, Verdict::Forward(_)) {
                        *pkt = again;
                        return retry;
                    }
                }
                *pkt = original;
                v
            }
            (Breakage::Nondeterministic, Ingress::Inside(_)) => {
                self.outbound += 1;
                if self.odd_instance && self.outbound == 1 {
                    return Verdict::Drop(DropReason::TableFull);
                }
                self.inner.process(now, ingress, pkt)
            }
            _ => self.inner.process(now, ingress, pkt),
        }
    }

    fn poll_transmit(&mut self) -> Option<(Egress, Vec<u8>)> {
        self.inner.poll_transmit()
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        let own = self.inner.poll_timeout();
        let others = self.per_nic.values_mut().filter_map(|g| g.poll_timeout());
        own.into_iter().chain(others).min()
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.inner.handle_timeout(now);
        for g in self.per_nic.values_mut() {
            g.handle_timeout(now);
        }
    }

    fn add_nic(&mut self, id: NicId, nic: NicConfig) -> Result<(), ConfigError> {
        self.nics.insert(id, nic.clone());
        if self.kind == Breakage::OverlappingBlocks {
            let mut g = Gateway::new(self.config.clone())?;
            g.add_nic(id, nic.clone())?;
            self.per_nic.insert(id, g);
        }
        self.inner.add_nic(id, nic)
    }

    fn remove_nic(&mut self, now: Instant, id: NicId) {
        self.nics.remove(&id);
        if let Some(mut g) = self.per_nic.remove(&id) {
            g.remove_nic(now, id);
            self.hidden.extend(g.drain_events());
        }
        self.inner.remove_nic(now, id)
    }

    fn assign_block(&mut self, now: Instant, id: NicId, block: Block) -> Result<(), ConfigError> {
        self.told.insert((id, Family::of(&block.nat_ip)), block);
        self.assignments += 1;
        match self.kind {
            Breakage::OverlappingBlocks => {
                let first = Block {
                    port: 1024,
                    end_port: 1024 + (block.end_port - block.port),
                    ..block
                };
                self.gw_for(id).assign_block(now, id, first)
            }
            Breakage::BlockEndOffByOne if block.end_port < u16::MAX => {
                let wider = Block {
                    end_port: block.end_port + 1,
                    ..block
                };
                self.inner
                    .assign_block(now, id, wider)
                    .or_else(|_| self.inner.assign_block(now, id, block))
            }
            Breakage::WrongStatus if self.assignments.is_multiple_of(2) => Ok(()),
            _ => self.inner.assign_block(now, id, block),
        }
    }

    fn release_block(&mut self, now: Instant, id: NicId, family: Family) -> Option<Block> {
        let told = self.told.remove(&(id, family));
        match self.kind {
            Breakage::StaleFlowAfterBlockLoss => told,
            _ => self.gw_for(id).release_block(now, id, family),
        }
    }

    fn block_of(&self, id: NicId, family: Family) -> Option<Block> {
        match self.kind {
            // These lie the same way the control plane believes, so only their packets show.
            Breakage::BlockEndOffByOne
            | Breakage::OverlappingBlocks
            | Breakage::StaleFlowAfterBlockLoss => self.told.get(&(id, family)).copied(),
            _ => self.inner.block_of(id, family),
        }
    }

    fn drain_events(&mut self) -> Vec<Event> {
        let mut e = std::mem::take(&mut self.hidden);
        e.extend(self.inner.drain_events());
        for g in self.per_nic.values_mut() {
            e.extend(g.drain_events());
        }
        e
    }

    fn counters(&self) -> Counters {
        self.inner.counters().clone()
    }

    fn nic_counters(&self, id: NicId) -> Option<Counters> {
        self.inner.nic_counters(id).cloned()
    }

    fn flows(&self) -> Vec<FlowInfo> {
        let mut f = self.inner.flows();
        for g in self.per_nic.values() {
            f.extend(g.flows());
        }
        f
    }

    fn live_flows(&self) -> (usize, usize) {
        self.inner.live_flows()
    }

    fn translation_of(
        &self,
        nic: NicId,
        protocol: u8,
        inside: std::net::SocketAddr,
        remote: std::net::SocketAddr,
    ) -> Option<std::net::SocketAddr> {
        // OverlappingBlocks keeps each NIC's flows in its own gateway.
        self.per_nic
            .get(&nic)
            .unwrap_or(&self.inner)
            .translation_of(nic, protocol, inside, remote)
    }
}
