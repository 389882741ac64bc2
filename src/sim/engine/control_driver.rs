//! The control-plane driver: NICs brought up on their dataplane, reconciles of the API world
//! turned into `assign_block` / `release_block` on the owning node, and the status rows
//! observers compare (invariant 8).

use super::*;

impl Simulator {
    pub(super) fn nic_info(&self, i: u32) -> NicInfo {
        let n = &self.nics[i as usize].spec;
        NicInfo {
            id: NicId(i),
            name: n.name.clone(),
            network: n.network,
            addresses: n.addresses.clone(),
            node: n.node,
        }
    }

    pub(super) fn bring_up_nic(&mut self, i: u32) -> Result<(), ConfigError> {
        let (node, cfg) = {
            let n = &mut self.nics[i as usize];
            n.present = true;
            (
                NodeId(n.spec.node),
                NicConfig {
                    network: NetworkId(n.spec.network),
                    addresses: n.spec.addresses.clone(),
                    name: n.spec.name.clone(),
                },
            )
        };
        for a in &cfg.addresses {
            self.nic_by_addr.insert((cfg.network.0, *a), i);
        }
        self.nodes[node.index()].dp.add_nic(NicId(i), cfg)?;
        let info = self.nic_info(i);
        self.notify(&Observation::NicUpdated(&info));
        Ok(())
    }

    /// Reconciles the API world now, applies the resulting block changes to the dataplanes and
    /// queues a reconcile for when the next quarantine ends.
    pub(super) fn reconcile(&mut self) {
        let (changes, next) = self.control.reconcile(Instant::from_nanos(self.now_ns));
        self.apply_changes(changes);
        if let Some(t) = next
            && self.reconcile_at.insert(t.as_nanos())
        {
            self.schedule(t.as_nanos(), Ev::Reconcile);
        }
    }

    pub(super) fn apply_changes(&mut self, changes: Vec<BlockChange>) {
        let now = Instant::from_nanos(self.now_ns);
        let touched = !changes.is_empty();
        for c in changes {
            match c {
                BlockChange::Released { nic, family, block } => {
                    self.notify(&Observation::BlockReleased {
                        nic: NicId(nic),
                        family,
                        block,
                    });
                    let node = NodeId(self.nics[nic as usize].spec.node);
                    self.nodes[node.index()]
                        .dp
                        .release_block(now, NicId(nic), family);
                    self.owners.remove(&(block.nat_ip, block.port));
                    self.after_dataplane(node);
                }
                BlockChange::Assigned { nic, block } => {
                    self.notify(&Observation::BlockAssigned {
                        nic: NicId(nic),
                        block,
                    });
                    let node = NodeId(self.nics[nic as usize].spec.node);
                    if self.nodes[node.index()]
                        .dp
                        .assign_block(now, NicId(nic), block)
                        .is_err()
                    {
                        self.stats.control_errors += 1;
                    }
                    self.owners
                        .insert((block.nat_ip, block.port), (block.end_port, nic));
                    self.after_dataplane(node);
                }
            }
        }
        if touched {
            self.report_status();
        }
    }

    /// Invariant 8: hands the observer, per gateway, `portsUsed` and the routing table as the
    /// API reports them next to what the dataplanes hold. Dataplane blocks no gateway routes
    /// are reported in a last table without a gateway (P = 0).
    pub(super) fn report_status(&mut self) {
        if self.observers.is_empty() {
            return;
        }
        let views = self.control.routing_views();
        let mut table = std::mem::take(&mut self.table);
        let mut routed: BTreeSet<(u32, Family)> = BTreeSet::new();
        for view in &views {
            table.clear();
            for (&(nic, f), &b) in &view.blocks {
                routed.insert((nic, f));
                let d = self
                    .nics
                    .get(nic as usize)
                    .filter(|n| n.present)
                    .and_then(|n| {
                        self.nodes[usize::from(n.spec.node)]
                            .dp
                            .block_of(NicId(nic), f)
                    });
                table.push((NicId(nic), f, Some(b), d));
            }
            self.notify(&Observation::Reconciled {
                ports_used: view.ports_used,
                ports_per_nic: view.ports_per_nic,
                table: &table,
            });
        }
        table.clear();
        for (i, n) in self.nics.iter().enumerate() {
            if !n.present {
                continue;
            }
            for f in [Family::V4, Family::V6] {
                if routed.contains(&(i as u32, f)) {
                    continue;
                }
                let d = self.nodes[usize::from(n.spec.node)]
                    .dp
                    .block_of(NicId(i as u32), f);
                if d.is_some() {
                    table.push((NicId(i as u32), f, None, d));
                }
            }
        }
        if views.is_empty() || !table.is_empty() {
            self.notify(&Observation::Reconciled {
                ports_used: 0,
                ports_per_nic: 0,
                table: &table,
            });
        }
        self.table = table;
    }
}
