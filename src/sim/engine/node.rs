//! Dataplane nodes: a packet through [`Dataplane::process`], the events and self-sent packets
//! drained after it (observed in order), and the node's timer re-armed from `poll_wakeup`.

use super::*;

impl Simulator {
    pub(super) fn on_nic_packet(
        &mut self,
        node: NodeId,
        nic: u32,
        buf: Vec<u8>,
        trail: Option<Box<Trail>>,
    ) {
        self.process_and_route(node, Ingress::Inside(NicId(nic)), buf, trail);
    }

    /// `process` and route the verdict; captured packets get their comments on the way.
    pub(super) fn process_and_route(
        &mut self,
        node: NodeId,
        ingress: Ingress,
        mut buf: Vec<u8>,
        trail: Option<Box<Trail>>,
    ) {
        let clean = self.violation.is_none();
        let verdict = self.process(node, ingress, &mut buf);
        let out = self.verdict_comments(trail.as_deref(), verdict, &buf, clean);
        self.route_verdict(node, ingress, verdict, buf, out);
    }

    pub(super) fn process(&mut self, node: NodeId, ingress: Ingress, buf: &mut Vec<u8>) -> Verdict {
        let now = Instant::from_nanos(self.now_ns);
        // Observers and verdict comments compare the packet before and after.
        if !self.observers.is_empty() || self.capture.any() {
            self.before.clear();
            self.before.extend_from_slice(buf);
        }
        let verdict = self.nodes[node.index()].dp.process(now, ingress, buf);
        self.digest.word(verdict_code(verdict));
        let events = self.nodes[node.index()].dp.drain_events();
        for e in &events {
            self.track_ports(e);
            self.notify(&Observation::Dataplane {
                node: node.0,
                event: e,
                during: Some(ingress),
            });
        }
        if !self.observers.is_empty() {
            let obs = Observation::Processed {
                node: node.0,
                ingress,
                before: &self.before,
                verdict,
                after: buf,
            };
            fan_out(
                &mut self.observers,
                self.stats.events,
                now,
                &obs,
                &mut self.violation,
            );
        }
        self.after_dataplane(node);
        verdict
    }

    /// Drains events and self-originated packets of a node and re-arms its timer.
    pub(super) fn after_dataplane(&mut self, k: NodeId) {
        let events = self.nodes[k.index()].dp.drain_events();
        for e in &events {
            self.track_ports(e);
            self.notify(&Observation::Dataplane {
                node: k.0,
                event: e,
                during: None,
            });
        }
        while let Some((egress, pkt)) = self.nodes[k.index()].dp.poll_transmit() {
            let to_nic = match egress {
                Egress::Nic(n) => Some(n),
                Egress::Outside => None,
            };
            self.notify(&Observation::Transmitted {
                node: k.0,
                to_nic,
                pkt: &pkt,
            });
            let trail = if self.capture.any() {
                self.note.clear();
                let nics = &self.nics;
                self.comments.egress(
                    &mut self.note,
                    &pkt,
                    &pkt,
                    Emitted::Released,
                    egress,
                    &|n, out| {
                        out.push_str(
                            nics.get(n.0 as usize)
                                .map_or("an unknown NIC", |x| x.spec.name.as_str()),
                        );
                    },
                );
                Some(Trail::sent(self.note.clone()))
            } else {
                None
            };
            match to_nic {
                Some(n) => self.send_to_nic(k, n.0, true, pkt, trail),
                None => {
                    let up = self.nodes[k.index()].uplink;
                    self.send(up, LinkEnd::A, Kind::Plain, pkt, trail);
                }
            }
        }
        let node = &mut self.nodes[k.index()];
        if let Some(t) = node.dp.poll_wakeup() {
            let t = t.as_nanos().max(self.now_ns);
            if node.timer_at_ns.is_none_or(|s| t < s) {
                node.timer_at_ns = Some(t);
                self.schedule(t, Ev::DataplaneTimer(k));
            }
        }
    }

    pub(super) fn track_ports(&mut self, e: &Event) {
        let (nic, delta) = match e {
            Event::FlowCreated { flow, .. } => (flow.nic, 1i64),
            Event::PortReleased { flow, .. } => (flow.nic, -1),
            Event::BlockRemoved { nic, .. } => {
                if let Some(n) = self.nics.get_mut(nic.0 as usize) {
                    n.ports_now = 0;
                }
                return;
            }
            _ => return,
        };
        if let Some(n) = self.nics.get_mut(nic.0 as usize) {
            n.ports_now = n.ports_now.saturating_add_signed(delta);
            n.ports_peak = n.ports_peak.max(n.ports_now);
        }
    }
}
