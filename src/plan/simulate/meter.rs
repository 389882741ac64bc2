//! The measuring observer: watches a simulated point through the simulator's observer interface
//! (dataplane events and verdicts, nothing private) and counts refused flows, drops and ports in
//! use after warm-up.
//!
//! **Refused flows.** A refused first packet creates no state, so the client's next packet
//! (a retransmitted SYN, the next datagram of a UDP flow) is refused again or gets through.
//! A refusal counts as a new refused flow unless the same flow (NIC, protocol, inside port,
//! remote endpoint) was refused less than a gap ago; the gap exceeds the longest retransmission
//! wait of a TCP client (6.4 s) and the packet spacing of UDP/ICMP flows. A flow that later gets
//! through forgets its refusal. The first refusal is what Erlang-B calls a blocked call.
//!
//! **Ports in use.** Every flow holds one port from `FlowCreated` to `PortReleased` (live plus
//! held after close), counted per NIC and per scope key; peaks and time averages cover the
//! measured window only.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use foldhash::fast::FixedState;
use hashbrown::HashMap;

use crate::nat::{DropReason, Event, FlowView, Ingress, Verdict};
use crate::plan::interval::{BATCHES, Counts};
use crate::plan::profiles::LimitScope;
use crate::sim::{Observation, Observer, Tuple, Violation};
use crate::time::Instant;

/// What a simulated NIC stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stratum {
    /// Sampled NIC with a block.
    Allocated = 0,
    /// Sampled NIC without a block.
    Unallocated = 1,
    /// Idle filler: never measured.
    Filler = 2,
}

/// A flow as the client sees it: NIC, protocol, inside port (ICMP identifier), remote.
type FlowKey = (u32, u8, u16, IpAddr, u16);

/// A scope key class shared by all NICs: protocol and the scope's part of the remote.
type KeyClass = (u8, IpAddr, u16);

#[derive(Clone, Copy, Debug, Default)]
struct KeyState {
    ports: u32,
    since_ns: u64,
}

/// Counts per stratum (allocated, unallocated).
#[derive(Clone, Debug, Default)]
pub struct StratumCounts {
    /// Refused flows by the reason of their first refusal.
    pub refused: BTreeMap<&'static str, u64>,
    /// Dropped packets by reason.
    pub drops: BTreeMap<&'static str, u64>,
}

/// The observer's state; read it back after the run.
#[derive(Debug)]
pub struct Meter {
    warmup_ns: u64,
    scope: LimitScope,
    strata: Vec<Stratum>,
    tcp_gap_ns: u64,
    other_gap_ns: u64,
    recent_refusals: HashMap<FlowKey, u64, FixedState>,
    inserts_since_prune: u32,
    nic_ports: Vec<u32>,
    keys: HashMap<(u32, KeyClass), KeyState, FixedState>,
    /// Port-nanoseconds per key class over the measured window, summed over NICs.
    class_port_ns: BTreeMap<KeyClass, u128>,
    /// New-flow attempts and refusals (for lack of ports or table space, or a dropped protocol)
    /// per key class on allocated NICs, measured window only, per batch of the window.
    class_flows: BTreeMap<KeyClass, [Counts; BATCHES]>,
    /// New-flow attempts and refusals (any reason) of all allocated NICs, per batch.
    allocated_flows: [Counts; BATCHES],
    /// Length of one batch of the measured window.
    batch_ns: u64,
    measuring: bool,
    /// Counts per stratum, measured window only.
    pub counts: [StratumCounts; 2],
    /// Most ports one NIC held at once in the measured window.
    pub peak_nic: u64,
    /// Most ports one scope key held at once in the measured window.
    pub peak_key: u64,
}

impl Meter {
    /// A meter for NICs of the given strata (indexed like the simulator's NICs).
    pub fn new(
        warmup_ns: u64,
        end_ns: u64,
        scope: LimitScope,
        strata: Vec<Stratum>,
        tcp_gap_ns: u64,
        other_gap_ns: u64,
    ) -> Meter {
        let nics = strata.len();
        Meter {
            warmup_ns,
            scope,
            strata,
            tcp_gap_ns,
            other_gap_ns,
            recent_refusals: HashMap::with_hasher(FixedState::with_seed(0)),
            inserts_since_prune: 0,
            nic_ports: vec![0; nics],
            keys: HashMap::with_hasher(FixedState::with_seed(0)),
            class_port_ns: BTreeMap::new(),
            class_flows: BTreeMap::new(),
            allocated_flows: [Counts::default(); BATCHES],
            batch_ns: (end_ns.saturating_sub(warmup_ns) / BATCHES as u64).max(1),
            measuring: false,
            counts: [StratumCounts::default(), StratumCounts::default()],
            peak_nic: 0,
            peak_key: 0,
        }
    }

    /// The batch of the measured window `now_ns` falls in.
    fn batch(&self, now_ns: u64) -> usize {
        let i = now_ns.saturating_sub(self.warmup_ns) / self.batch_ns;
        (i as usize).min(BATCHES - 1)
    }

    /// Counts one attempt (refused or not) of an allocated NIC on `class`.
    fn attempt(&mut self, class: KeyClass, now_ns: u64, refused_for_key: bool, refused: bool) {
        let b = self.batch(now_ns);
        let key = &mut self.class_flows.entry(class).or_default()[b];
        key.attempts += 1;
        key.refused += u64::from(refused_for_key);
        let all = &mut self.allocated_flows[b];
        all.attempts += 1;
        all.refused += u64::from(refused);
    }

    fn stratum(&self, nic: u32) -> Stratum {
        self.strata
            .get(nic as usize)
            .copied()
            .unwrap_or(Stratum::Filler)
    }

    fn class_of(&self, protocol: u8, remote: std::net::SocketAddr) -> KeyClass {
        match self.scope {
            LimitScope::RemoteIp => (protocol, remote.ip(), 0),
            LimitScope::RemoteEndpoint => (protocol, remote.ip(), remote.port()),
            LimitScope::Nic => (protocol, IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
        }
    }

    /// Enters the measured window: peaks start from what is held right now.
    fn start_measuring(&mut self) {
        self.measuring = true;
        self.peak_nic = self.nic_ports.iter().copied().max().unwrap_or(0).into();
        self.peak_key = self
            .keys
            .values()
            .map(|k| k.ports)
            .max()
            .unwrap_or(0)
            .into();
    }

    fn port_change(&mut self, flow: &FlowView, now_ns: u64, delta: i32) {
        let nic = flow.nic.0;
        let class = self.class_of(flow.protocol, flow.remote);
        let warmup_ns = self.warmup_ns;
        let key = self.keys.entry((nic, class)).or_default();
        if now_ns > warmup_ns {
            let from_ns = key.since_ns.max(warmup_ns);
            *self.class_port_ns.entry(class).or_default() +=
                u128::from(key.ports) * u128::from(now_ns - from_ns);
        }
        key.since_ns = now_ns;
        key.ports = key.ports.saturating_add_signed(delta);
        let key_ports = key.ports;
        if key_ports == 0 {
            self.keys.remove(&(nic, class));
        }
        if let Some(n) = self.nic_ports.get_mut(nic as usize) {
            *n = n.saturating_add_signed(delta);
            if self.measuring {
                self.peak_nic = self.peak_nic.max(u64::from(*n));
            }
        }
        if self.measuring {
            self.peak_key = self.peak_key.max(u64::from(key_ports));
        }
    }

    fn refusal(&mut self, nic: u32, packet: &[u8], reason: DropReason, now_ns: u64) {
        let Some(t) = Tuple::parse(packet) else {
            return;
        };
        // Echo requests carry their identifier as the source port; the remote has no port.
        let remote_port = if t.icmp.is_some() { 0 } else { t.dst_port };
        let key = (nic, t.protocol, t.src_port, t.dst, remote_port);
        let gap_ns = if t.protocol == 6 {
            self.tcp_gap_ns
        } else {
            self.other_gap_ns
        };
        let fresh = self
            .recent_refusals
            .insert(key, now_ns)
            .is_none_or(|last_ns| now_ns.saturating_sub(last_ns) > gap_ns);
        self.inserts_since_prune += 1;
        if self.inserts_since_prune >= 65_536 {
            // Forget refusals older than any gap so the map stays as small as the live set.
            let horizon_ns = self.tcp_gap_ns.max(self.other_gap_ns);
            self.recent_refusals
                .retain(|_, last_ns| now_ns.saturating_sub(*last_ns) <= horizon_ns);
            self.inserts_since_prune = 0;
        }
        if fresh && self.measuring {
            let stratum = self.stratum(nic);
            if let Some(c) = self.counts.get_mut(stratum as usize) {
                *c.refused.entry(reason.name()).or_default() += 1;
            }
            if stratum == Stratum::Allocated {
                let class =
                    self.class_of(t.protocol, std::net::SocketAddr::new(t.dst, remote_port));
                // A dropped protocol (Azure's ICMP) is blocked on its key like a full key.
                let for_key = matches!(
                    reason,
                    DropReason::PortsExhausted
                        | DropReason::TableFull
                        | DropReason::UnsupportedIcmp
                );
                self.attempt(class, now_ns, for_key, true);
            }
        }
    }

    /// Closes the measured window at `end_ns`: adds the time every key held its ports until the
    /// end.
    pub fn finish(&mut self, end_ns: u64) {
        if !self.measuring {
            self.start_measuring();
        }
        let warmup_ns = self.warmup_ns;
        let mut add: Vec<(KeyClass, u128)> = Vec::new();
        for (&(_, class), k) in &self.keys {
            let from_ns = k.since_ns.max(warmup_ns);
            if end_ns > from_ns {
                add.push((class, u128::from(k.ports) * u128::from(end_ns - from_ns)));
            }
        }
        for (class, port_ns) in add {
            *self.class_port_ns.entry(class).or_default() += port_ns;
        }
        for k in self.keys.values_mut() {
            k.since_ns = end_ns;
        }
    }

    /// Mean ports in use over the window, summed over NICs: (all keys, the busiest key class).
    pub fn mean_port_ns(&self) -> (u128, u128) {
        let total = self.class_port_ns.values().sum();
        let hottest = self.class_port_ns.values().copied().max().unwrap_or(0);
        (total, hottest)
    }
}

impl Meter {
    /// Blocking on the busiest scope key: per protocol, the key class with the most new-flow
    /// attempts (the hottest destination); the worst protocol's refused / attempts, per batch of
    /// the window. Counts only refusals for lack of ports or table space, or of a protocol the
    /// profile drops, like the analytic figure. `None` when no flow was attempted.
    pub fn blocking_hot(&self) -> Option<[Counts; BATCHES]> {
        let mut busiest: BTreeMap<u8, [Counts; BATCHES]> = BTreeMap::new();
        for (&(protocol, _, _), batches) in &self.class_flows {
            let b = busiest.entry(protocol).or_default();
            if crate::plan::interval::sum(batches).attempts > crate::plan::interval::sum(b).attempts
            {
                *b = *batches;
            }
        }
        busiest
            .into_values()
            .filter(|b| crate::plan::interval::sum(b).attempts > 0)
            .map(|b| (crate::plan::interval::sum(&b).ratio().unwrap_or(0.0), b))
            .reduce(|a, b| if b.0 > a.0 { b } else { a })
            .map(|(_, b)| b)
    }

    /// Attempts and refusals (any reason) of the allocated NICs, per batch of the window.
    pub fn allocated_flows(&self) -> [Counts; BATCHES] {
        self.allocated_flows
    }
}

/// Drops that refuse a new flow (the first packet found no port, block, table slot, or the
/// profile drops the protocol).
fn refuses(reason: DropReason) -> bool {
    matches!(
        reason,
        DropReason::PortsExhausted
            | DropReason::NoNatBlock
            | DropReason::TableFull
            | DropReason::UnsupportedIcmp
    )
}

impl Observer for Meter {
    fn observe(
        &mut self,
        _index: u64,
        now: Instant,
        obs: &Observation<'_>,
    ) -> Result<(), Violation> {
        let now_ns = now.as_nanos();
        if !self.measuring && now_ns >= self.warmup_ns {
            self.start_measuring();
        }
        match obs {
            Observation::Dataplane { event, .. } => match event {
                Event::FlowCreated { flow, .. } => {
                    let retried = self
                        .recent_refusals
                        .remove(&(
                            flow.nic.0,
                            flow.protocol,
                            flow.inside.port(),
                            flow.remote.ip(),
                            flow.remote.port(),
                        ))
                        .is_some();
                    // A flow that got through on a retry was already counted as an attempt.
                    if !retried && self.measuring && self.stratum(flow.nic.0) == Stratum::Allocated
                    {
                        let class = self.class_of(flow.protocol, flow.remote);
                        self.attempt(class, now_ns, false, false);
                    }
                    self.port_change(flow, now_ns, 1);
                }
                Event::PortReleased { flow, .. } => self.port_change(flow, now_ns, -1),
                _ => {}
            },
            Observation::Processed {
                ingress,
                before,
                verdict: Verdict::Drop(reason),
                ..
            } => {
                let (nic, stratum) = match ingress {
                    Ingress::Inside(nic) => (Some(nic.0), self.stratum(nic.0)),
                    // Inbound drops concern flows of NICs that had a block.
                    Ingress::Outside => (None, Stratum::Allocated),
                };
                if self.measuring
                    && let Some(c) = self.counts.get_mut(stratum as usize)
                {
                    *c.drops.entry(reason.name()).or_default() += 1;
                }
                if let Some(nic) = nic
                    && refuses(*reason)
                {
                    self.refusal(nic, before, *reason, now_ns);
                }
            }
            _ => {}
        }
        Ok(())
    }
}
