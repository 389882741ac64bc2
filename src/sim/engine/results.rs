//! What a run reports: the report types (results, counters per node, NIC, remote host and
//! link, status rows, why a run ended), their getters, and the observers handed back.

use super::*;

/// One row of the status comparison: NIC, family, the block the API's routing table gives it,
/// the dataplane's block.
pub type StatusRow = (NicId, Family, Option<Block>, Option<Block>);

/// One NIC's line of a report: see [`Simulator::nic_reports`].
#[derive(Clone, Debug)]
pub struct NicReportRow {
    /// NIC name.
    pub name: String,
    /// Its host's counters.
    pub host: HostStats,
    /// Most ports it had tracked at once (live plus held).
    pub ports_peak: u64,
    /// The dataplane's counters for it (none once it was deleted).
    pub counters: Option<crate::nat::Counters>,
}

/// Per-host counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct HostStats {
    /// Packets sent.
    pub sent: u64,
    /// Packets received.
    pub received: u64,
    /// Received through a dataplane from outside (or hairpinned).
    pub from_outside: u64,
    /// Received from outside and matching no socket.
    pub unsolicited_from_outside: u64,
    /// Received and matching no socket, service or echo.
    pub unmatched: u64,
    /// ICMP errors received.
    pub icmp_errors: u64,
    /// Datagrams this host sent in fragments (larger than its link's MTU).
    pub fragmented: u64,
    /// Fragments received.
    pub fragments_received: u64,
    /// Datagrams reassembled from fragments.
    pub reassembled: u64,
    /// Incomplete datagrams given up (timed out, evicted, inconsistent).
    pub reassembly_failed: u64,
}

/// Aggregate results of one workload generator.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GeneratorStats {
    /// Flows started.
    pub started: u64,
    /// Completed.
    pub completed: u64,
    /// Failed.
    pub failed: u64,
}

/// Result of a scripted application.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AppResult {
    /// Name.
    pub name: String,
    /// Kind (`tcp`, `udp`, `ping`, `probe`, `attack`, `packet`).
    pub kind: &'static str,
    /// Outcome.
    pub outcome: Outcome,
    /// Bytes received (TCP) or replies (UDP/ping).
    pub received: u64,
    /// TCP retransmission timeouts / UDP datagrams without reply.
    pub retries: u64,
    /// ICMP errors received about the flow.
    pub icmp_errors: u64,
    /// RFC 5780 mapping behaviour (probes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mapping: Option<&'static str>,
    /// RFC 5780 filtering behaviour (probes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filtering: Option<&'static str>,
    /// Packets sent (attacks).
    pub packets: u64,
}

/// Simulator-wide counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SimStats {
    /// Events processed.
    pub events: u64,
    /// Of which packet arrivals.
    pub packet_events: u64,
    /// Packets relayed between dataplane nodes.
    pub relayed: u64,
    /// Packets the router could not deliver.
    pub no_route: u64,
    /// Packets for NICs that do not exist (deleted).
    pub no_such_nic: u64,
    /// Control-plane changes a dataplane refused.
    pub control_errors: u64,
    /// Dataplane node restarts.
    pub restarts: u64,
    /// IPv4 datagrams routers split to fit a link's MTU.
    pub fragmented_in_transit: u64,
    /// ICMP errors the router sent (Packet Too Big; Time Exceeded and Destination Unreachable
    /// when it is set to).
    #[serde(skip_serializing_if = "is_zero")]
    pub icmp_errors_sent: u64,
    /// ICMP errors the router did not send: over its rate limit.
    #[serde(skip_serializing_if = "is_zero")]
    pub icmp_errors_rate_limited: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Why a run stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunEnd {
    /// Nothing left to do.
    Idle,
    /// The planned duration was reached.
    Duration,
    /// `max_events` reached with work left.
    MaxEvents,
    /// `max_time` reached with work left.
    MaxTime,
    /// An observer reported a violation.
    Violation,
}

/// Errors building a simulator.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The dataplane refused the configuration.
    #[error("gateway configuration: {0}")]
    Config(#[from] ConfigError),
    /// The topology is inconsistent.
    #[error("{0}")]
    Topology(String),
    /// The control plane (IronCore API objects) refused the configuration.
    #[error("control plane: {0}")]
    Control(#[from] ControlError),
}

/// A component's random stream id: a stable hash of its name, so adding a component never
/// shifts another's stream.
pub fn stream_of(name: &str) -> u64 {
    let mut d = Digest::default();
    d.bytes(name.as_bytes());
    d.value()
}

impl Simulator {
    /// Finalises results of applications still running.
    pub fn finish(&mut self) {
        for i in 0..self.result_app.len() {
            if let Some(a) = self.result_app[i] {
                self.snapshot(a);
            }
        }
    }

    /// The virtual time now.
    pub fn now(&self) -> Instant {
        Instant::from_nanos(self.now_ns)
    }

    /// The violation that stopped the run, if any.
    pub fn violation(&self) -> Option<&Violation> {
        self.violation.as_ref()
    }

    /// Trace digest so far.
    pub fn digest(&self) -> Digest {
        self.digest
    }

    /// Simulator counters.
    pub fn stats(&self) -> SimStats {
        self.stats
    }

    /// Results of scripted applications, in scenario order.
    pub fn app_results(&self) -> &[AppResult] {
        &self.results
    }

    /// Generator results, by name.
    pub fn generator_results(&self) -> Vec<(String, GeneratorStats)> {
        self.generators
            .iter()
            .map(|g| (g.spec.name.clone(), g.stats))
            .collect()
    }

    /// Counters summed over dataplane nodes.
    pub fn dataplane_counters(&self) -> crate::nat::Counters {
        let mut total = crate::nat::Counters::default();
        for n in &self.nodes {
            total.add(&n.dp.counters());
        }
        total
    }

    /// One dataplane node's counters (`None`: no such node).
    pub fn node_counters(&self, node: u16) -> Option<crate::nat::Counters> {
        self.nodes.get(usize::from(node)).map(|n| n.dp.counters())
    }

    /// Per NIC, in NIC order: name, host counters, peak tracked ports and the dataplane's
    /// counters for it (looked up by index: a report of 100,000 NICs must not search by name).
    pub fn nic_reports(&self) -> Vec<NicReportRow> {
        self.nics
            .iter()
            .enumerate()
            .map(|(i, n)| NicReportRow {
                name: n.spec.name.clone(),
                host: self.hosts[n.host.index()].stats(),
                ports_peak: n.ports_peak,
                counters: self.nodes[usize::from(n.spec.node)]
                    .dp
                    .nic_counters(NicId(i as u32)),
            })
            .collect()
    }

    /// Per remote host: (name, counters).
    pub fn remote_reports(&self) -> Vec<(String, HostStats)> {
        self.remote_hosts
            .iter()
            .map(|&h| {
                (
                    self.hosts[h.index()].name.clone(),
                    self.hosts[h.index()].stats(),
                )
            })
            .collect()
    }

    /// Per link: (name, counters).
    pub fn link_reports(&self) -> Vec<(String, crate::sim::link::LinkStats)> {
        self.links
            .iter()
            .map(|l| (l.name.clone(), l.stats))
            .collect()
    }

    /// The run gateway's `NATGateway.status` and routing table, as the API reports them.
    pub fn status(&self) -> Status {
        self.control.status()
    }

    /// The control plane (the IronCore API world and the NIC ↔ key maps).
    pub fn control(&self) -> &ControlPlane {
        &self.control
    }

    /// The block the dataplane of a NIC's node holds for it (`None` for an absent NIC).
    pub fn dataplane_block(&self, nic: u32, family: Family) -> Option<Block> {
        let n = self.nics.get(nic as usize).filter(|n| n.present)?;
        self.nodes[usize::from(n.spec.node)]
            .dp
            .block_of(NicId(nic), family)
    }

    /// What each dataplane node has to say besides counters ([`Inspect::notes`](crate::sim::dataplane::Inspect::notes)), prefixed
    /// with the node when there are several.
    pub fn dataplane_notes(&self) -> Vec<String> {
        let many = self.nodes.len() > 1;
        self.nodes
            .iter()
            .enumerate()
            .flat_map(|(k, n)| {
                n.dp.notes().into_iter().map(move |line| {
                    if many {
                        format!("node {k}: {line}")
                    } else {
                        line
                    }
                })
            })
            .collect()
    }

    /// Live flows over all nodes.
    pub fn live_flows(&self) -> usize {
        self.nodes
            .iter()
            .map(|n| {
                let (a, b) = n.dp.live_flows();
                a + b
            })
            .sum()
    }

    /// Captured packets per captured link.
    pub fn captures(&self) -> Vec<(String, &[CapturedPacket])> {
        (0..self.links.len() as u32)
            .filter_map(|i| {
                self.capture
                    .of(i)
                    .map(|c| (self.links[i as usize].name.clone(), c))
            })
            .collect()
    }

    /// The topology graph (router, dataplane nodes, NICs, remote hosts; edges are link ids).
    pub fn graph(&self) -> &StableGraph<NodeKind, u32> {
        &self.graph
    }

    /// The configuration the run was built from.
    pub fn config(&self) -> &SimConfig {
        &self.cfg
    }

    /// The first observer of type `T`, to read its results after (or during) a run.
    pub fn observer<T: Observer>(&self) -> Option<&T> {
        self.observers
            .iter()
            .find_map(|o| (&**o as &dyn Any).downcast_ref::<T>())
    }

    /// Takes the first observer of type `T` out of the run (it sees nothing after this).
    pub fn take_observer<T: Observer>(&mut self) -> Option<Box<T>> {
        let i = self
            .observers
            .iter()
            .position(|o| (&**o as &dyn Any).is::<T>())?;
        (self.observers.remove(i) as Box<dyn Any>)
            .downcast::<T>()
            .ok()
    }

    /// Takes every observer out of the run, in the order they were given.
    pub fn take_observers(&mut self) -> Vec<Box<dyn Observer>> {
        std::mem::take(&mut self.observers)
    }
}
