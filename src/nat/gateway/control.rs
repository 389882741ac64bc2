//! The gateway's control part: NICs and port blocks added, changed and taken away (called by
//! the control plane, never per packet).

use super::*;

impl Gateway {
    /// Adds (or replaces the addresses and name of) a NIC. A NIC starts without blocks.
    pub fn add_nic(&mut self, id: NicId, nic: NicConfig) -> Result<(), ConfigError> {
        if usize::from(nic.network.0) >= self.config.networks.len() {
            return Err(ConfigError::invalid(
                "nic.network",
                format!(
                    "network {} does not exist ({} configured)",
                    nic.network.0,
                    self.config.networks.len()
                ),
            ));
        }
        if nic
            .addresses
            .iter()
            .any(|a| matches!(a, IpAddr::V4(v) if v.octets()[0] == 0))
        {
            return Err(ConfigError::invalid(
                "nic.addresses",
                "0.0.0.0/8 is not a usable source address (natsim also uses it for NAT64 handles)",
            ));
        }
        let i = id.0 as usize;
        if i >= 1 << 24 {
            return Err(ConfigError::invalid(
                "nic.id",
                "NIC ids must be below 16777216 (keep them dense)",
            ));
        }
        if self.nics.len() <= i {
            self.nics.resize(i + 1, None);
            self.nic_counters.resize(i + 1, Counters::default());
        }
        match &mut self.nics[i] {
            Some(state) => state.config = nic,
            slot @ None => {
                *slot = Some(NicState {
                    config: nic,
                    blocks: [None, None],
                    last_exhaustion_event_ns: None,
                })
            }
        }
        Ok(())
    }

    /// Removes a NIC, flushing its flows.
    pub fn remove_nic(&mut self, now: Instant, id: NicId) {
        self.advance(now);
        self.release_block(now, id, Family::V4);
        self.release_block(now, id, Family::V6);
        if let Some(slot) = self.nics.get_mut(id.0 as usize) {
            *slot = None;
        }
    }

    /// The NIC's configuration, if it exists.
    pub fn nic(&self, id: NicId) -> Option<&NicConfig> {
        self.nics
            .get(id.0 as usize)
            .and_then(|n| n.as_ref())
            .map(|n| &n.config)
    }

    /// The NIC's block for a family.
    pub fn block_of(&self, id: NicId, family: Family) -> Option<Block> {
        self.nics
            .get(id.0 as usize)
            .and_then(|n| n.as_ref())
            .and_then(|n| n.blocks[family.index()])
            .map(|b| b.block)
    }

    /// Gives a NIC a port block (replacing its block of that family, whose flows end at once).
    /// The block must lie in 1024–65535 and overlap no other NIC's block.
    pub fn assign_block(
        &mut self,
        now: Instant,
        id: NicId,
        block: Block,
    ) -> Result<(), ConfigError> {
        self.advance(now);
        if self.nic(id).is_none() {
            return Err(ConfigError::invalid(
                "block.nic",
                format!("{id} does not exist"),
            ));
        }
        if block.port < FIRST_NAT_PORT {
            return Err(ConfigError::invalid(
                "block.port",
                format!("{} is below 1024; NAT ports are 1024-65535", block.port),
            ));
        }
        if block.end_port < block.port {
            return Err(ConfigError::invalid(
                "block.end_port",
                format!("{} is below block.port {}", block.end_port, block.port),
            ));
        }
        if block.len() > PORTS_PER_IP {
            return Err(ConfigError::invalid(
                "block.end_port",
                "a block holds at most 64512 ports",
            ));
        }
        let family = Family::of(&block.nat_ip);
        if self.block_of(id, family) == Some(block) {
            return Ok(());
        }
        // Overlap check: blocks are disjoint, so among other NICs' blocks on this IP only the
        // one starting last at or before our end can overlap. This NIC's own block (about to be
        // replaced) is skipped, not taken as that candidate.
        let before = self
            .block_index
            .range(..=(block.nat_ip, block.end_port))
            .rev()
            .find(|&(_, &(_, owner))| owner != id);
        if let Some((&(ip, start), &(end, owner))) = before
            && ip == block.nat_ip
            && (Block {
                nat_ip: ip,
                port: start,
                end_port: end,
            })
            .overlaps(&block)
        {
            return Err(ConfigError::invalid(
                "block",
                format!(
                    "{}:{}-{} overlaps {owner}'s block {}-{}",
                    block.nat_ip, block.port, block.end_port, start, end
                ),
            ));
        }
        self.release_block(now, id, family);
        let nat_ip = self.register_nat_ip(block.nat_ip)?;
        let mut usable = block.len();
        if self.config.profile.last_port_unusable && usable > 1 {
            usable -= 1;
        }
        let nb = NicBlock {
            block,
            nat_ip,
            span: BlockSpan {
                start: block.port,
                usable,
            },
        };
        if let Some(Some(n)) = self.nics.get_mut(id.0 as usize) {
            n.blocks[family.index()] = Some(nb);
        }
        self.block_index
            .insert((block.nat_ip, block.port), (block.end_port, id));
        self.record(Event::BlockAssigned {
            at: self.now(),
            nic: id,
            block,
        });
        Ok(())
    }

    /// Takes a NIC's block of a family away; its flows end at once (no hold: the reconciler
    /// quarantines the block). Returns the block it had.
    pub fn release_block(&mut self, now: Instant, id: NicId, family: Family) -> Option<Block> {
        self.advance(now);
        let nb = self.nics.get_mut(id.0 as usize)?.as_mut()?.blocks[family.index()].take()?;
        let flushed = match family {
            Family::V4 => self.flush_nic::<[u8; 4]>(id, nb.span.start),
            Family::V6 => self.flush_nic::<[u8; 16]>(id, nb.span.start),
        };
        self.block_index.remove(&(nb.block.nat_ip, nb.block.port));
        self.frags.forget_nic(id);
        self.record(Event::BlockRemoved {
            at: self.now(),
            nic: id,
            block: nb.block,
            flows_flushed: flushed,
        });
        Some(nb.block)
    }

    fn flush_nic<A: Fam>(&mut self, id: NicId, span_start: u16) -> u64 {
        let scope = self.config.profile.limit_scope;
        let idxs = A::state_ref(&self.fams).table.flows_of_nic(id.0);
        let mut flushed = 0;
        for idx in idxs {
            let f = A::state_ref(&self.fams).table.flows[idx as usize];
            if f.is_live() {
                flushed += 1;
                self.counters.flows_ended += 1;
                self.nic_counters[id.0 as usize].flows_ended += 1;
                let at = self.now();
                let deadline = Instant::from_nanos(self.deadline_ns(f.class, f.last_active_ns));
                let view = self.view::<A>(&f);
                self.record(Event::FlowEnded {
                    at,
                    flow: view,
                    reason: EndReason::BlockRemoved,
                    last_active: Instant::from_nanos(f.last_active_ns),
                    deadline,
                });
            }
            let t = &mut A::state(&mut self.fams).table;
            t.unindex(idx);
            t.release_port(scope, span_start, idx);
            t.free(idx);
        }
        flushed
    }
}
