//! Scripted faults: links going down and up, control-plane changes, NIC deletion, and dataplane
//! node restarts with state loss (the control plane re-pushes the blocks).

use super::*;

impl Simulator {
    pub(super) fn apply_fault(&mut self, idx: u32) {
        let Some((_, fault)) = self.cfg.faults.get(idx as usize).cloned() else {
            return;
        };
        let now = Instant::from_nanos(self.now_ns);
        // Control-plane faults change the API world; the reconcile below turns them into
        // block changes, exactly as the reconciler would at this virtual time.
        let result: Result<(), ControlError> = match fault {
            Fault::LinkDown(name) | Fault::LinkUp(name) => {
                let up = matches!(self.cfg.faults[idx as usize].1, Fault::LinkUp(_));
                if let Some(&l) = self.link_by_name.get(&name) {
                    self.links[l.index()].up = up;
                }
                Ok(())
            }
            Fault::RestartNode(k) => {
                self.restart_node(NodeId(k));
                Ok(())
            }
            Fault::RemoveNatIp(name) => self.control.remove_gateway_ip(&name),
            Fault::AddNatIp { name, addresses } => self.control.add_gateway_ip(name, addresses),
            Fault::SetPortsPerNic(p) => self.control.set_ports_per_nic(p),
            Fault::DeleteGateway => self.control.delete_gateway(),
            Fault::AddNic(i) => {
                if self.bring_up_nic(i).is_err() {
                    self.stats.control_errors += 1;
                }
                self.control.add_nic(i)
            }
            Fault::DeleteNic(i) => {
                let r = self.control.delete_nic(i);
                // Release the blocks before the NIC leaves its dataplane.
                self.reconcile();
                let node = NodeId(self.nics[i as usize].spec.node);
                self.nodes[node.index()].dp.remove_nic(now, NicId(i));
                self.after_dataplane(node);
                self.nics[i as usize].present = false;
                let (net, addrs) = (
                    self.nics[i as usize].spec.network,
                    self.nics[i as usize].spec.addresses.clone(),
                );
                for a in addrs {
                    self.nic_by_addr.remove(&(net, a));
                }
                self.notify(&Observation::NicRemoved(NicId(i)));
                r
            }
            Fault::Relabel { nic, labels } => self.control.relabel(nic, labels),
            Fault::AttachVirtualIp(nic) => self.control.set_virtual_ip(nic, true),
            Fault::DetachVirtualIp(nic) => self.control.set_virtual_ip(nic, false),
            Fault::DropPackets { link, drop } => {
                if let Some(&l) = self.link_by_name.get(&link) {
                    self.links[l.index()].targeted.push(drop);
                }
                Ok(())
            }
        };
        if result.is_err() {
            self.stats.control_errors += 1;
        }
        self.digest.word(0xFA17 ^ u64::from(idx));
        self.reconcile();
    }

    pub(super) fn restart_node(&mut self, k: NodeId) {
        if self.nodes.get(k.index()).is_none() {
            return;
        }
        self.stats.restarts += 1;
        let mut gw_cfg = self.cfg.gateway.clone();
        gw_cfg.record_events = true;
        gw_cfg.seed = self.cfg.seed;
        let fresh = match (self.factory)(gw_cfg) {
            Ok(d) => d,
            Err(_) => {
                self.stats.control_errors += 1;
                return;
            }
        };
        self.nodes[k.index()].dp = fresh;
        self.nodes[k.index()].timer_at_ns = None;
        self.notify(&Observation::NodeRestarted { node: k.0 });
        let now = Instant::from_nanos(self.now_ns);
        for i in 0..self.nics.len() as u32 {
            let n = &self.nics[i as usize];
            if !n.present || n.spec.node != k.0 {
                continue;
            }
            self.nics[i as usize].ports_now = 0;
            if self.bring_up_nic(i).is_err() {
                self.stats.control_errors += 1;
            }
            // The control plane re-pushes the blocks the API holds for the NIC.
            for f in [Family::V4, Family::V6] {
                if let Some(b) = self.control.block(i, f) {
                    self.notify(&Observation::BlockAssigned {
                        nic: NicId(i),
                        block: b,
                    });
                    if self.nodes[k.index()]
                        .dp
                        .assign_block(now, NicId(i), b)
                        .is_err()
                    {
                        self.stats.control_errors += 1;
                    }
                }
            }
        }
        self.after_dataplane(k);
        self.report_status();
    }
}
