//! What a run reports: results, counters per node, NIC, remote host and link, status, captures,
//! and the observers handed back.

use super::*;

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
