//! Inside hosts: each distinct inside address seen in the capture becomes a NIC of the
//! gateway, in order of first appearance, named `host-<addr>`, with a port block by IronCore's
//! slot arithmetic (the API reconciler's own functions, not a copy).
//!
//! Slots are counted per family: the i-th IPv4 host gets IPv4 slot i, the i-th IPv6 host IPv6
//! slot i. With `slotsPerIP = floor(64512 / P)`, slot i lies on pool address
//! `i / slotsPerIP` and covers ports `1024 + (i mod slotsPerIP)·P ..= 1024 + (i mod slotsPerIP)·P
//! + P − 1`. A host beyond the pool's capacity gets a NIC without a block: its traffic to the
//! internet drops as `no_nat_block`, as an un-NATed NIC's would.

use std::net::IpAddr;

use foldhash::fast::FixedState;
use hashbrown::HashMap;

use super::config::NatPool;
use crate::api;
use crate::nat::{Block, Family, NetworkId, NicConfig, NicId};

/// NIC ids index a vector in the gateway, which refuses ids from 2^24 on.
pub const MAX_HOSTS: usize = 1 << 24;

/// The block of `slot` for a family, or `None` when the pool has no address for it. The
/// slot arithmetic is the API reconciler's ([`api::slots_per_ip`], [`api::block_ports`]):
/// the i-th slot of a family is slot `i mod slotsPerIP` of pool address `i / slotsPerIP`,
/// which is where the reconciler puts the i-th NIC when every NIC arrives in order and none
/// leaves.
pub fn slot_block(slot: u32, ports_per_nic: u32, pool: &NatPool, family: Family) -> Option<Block> {
    let slots_per_ip = api::slots_per_ip(ports_per_nic);
    let ip_index = slot.checked_div(slots_per_ip)?;
    let nat_ip = match family {
        Family::V4 => pool.ipv4(ip_index)?,
        Family::V6 => pool.ipv6(ip_index)?,
    };
    let (port, end_port) = api::block_ports(ports_per_nic, slot % slots_per_ip);
    Some(Block {
        nat_ip,
        port,
        end_port,
    })
}

/// One inside host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Host {
    /// Its address.
    pub address: IpAddr,
    /// `host-<addr>`.
    pub name: String,
    /// Its block, if the pool had room.
    pub block: Option<Block>,
}

/// The inside hosts seen so far; `NicId(i)` is `hosts()[i]`.
pub struct Hosts {
    index: HashMap<IpAddr, NicId, FixedState>,
    hosts: Vec<Host>,
    next_slot: [u32; 2],
    ports_per_nic: u32,
    pool: NatPool,
}

/// The result of [`Hosts::get_or_add`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostLookup {
    /// Seen before.
    Known(NicId),
    /// Added now (the caller adds it to the dataplane and its outputs).
    Added(NicId),
    /// [`MAX_HOSTS`] reached.
    Full,
}

impl Hosts {
    /// No hosts yet.
    pub fn new(ports_per_nic: u32, pool: NatPool) -> Hosts {
        Hosts {
            index: HashMap::with_hasher(FixedState::with_seed(0)),
            hosts: Vec::new(),
            next_slot: [0, 0],
            ports_per_nic,
            pool,
        }
    }

    /// Every host, by NIC id.
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// The host behind a NIC.
    pub fn get(&self, nic: NicId) -> Option<&Host> {
        self.hosts.get(nic.0 as usize)
    }

    /// The NIC of `address`, allocating a NIC id and (if the pool has room) a block when it is
    /// new. The caller configures the dataplane: it has to tell the invariant checker about the
    /// NIC and the block first.
    pub fn get_or_add(&mut self, address: IpAddr) -> HostLookup {
        if let Some(&id) = self.index.get(&address) {
            return HostLookup::Known(id);
        }
        if self.hosts.len() >= MAX_HOSTS {
            return HostLookup::Full;
        }
        let id = NicId(self.hosts.len() as u32);
        let family = Family::of(&address);
        let slot = &mut self.next_slot[family.index()];
        let block = slot_block(*slot, self.ports_per_nic, &self.pool, family);
        *slot = slot.saturating_add(1);
        self.index.insert(address, id);
        self.hosts.push(Host {
            address,
            name: format!("host-{address}"),
            block,
        });
        HostLookup::Added(id)
    }

    /// The dataplane configuration of a host's NIC: one address in the capture's network.
    pub fn nic_config(host: &Host) -> NicConfig {
        NicConfig {
            network: NetworkId(0),
            addresses: vec![host.address],
            name: host.name.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_arithmetic_matches_ironcore() {
        let pool = NatPool {
            size: 2,
            ..NatPool::default()
        };
        let b = |slot| slot_block(slot, 2048, &pool, Family::V4);
        // floor(64512 / 2048) = 31 slots per IP.
        let first = b(0).expect("slot 0");
        assert_eq!((first.port, first.end_port), (1024, 3071));
        let last = b(30).expect("slot 30");
        assert_eq!(
            (last.port, last.end_port),
            (1024 + 30 * 2048, 1024 + 31 * 2048 - 1)
        );
        assert_eq!(last.nat_ip, pool.ipv4(0).expect("ip"));
        let next = b(31).expect("slot 31");
        assert_eq!((next.nat_ip, next.port), (pool.ipv4(1).expect("ip"), 1024));
        assert_eq!(b(62), None);
        let whole = slot_block(0, 64512, &pool, Family::V6).expect("one slot per IP");
        assert_eq!((whole.port, whole.end_port), (1024, 65535));
        assert_eq!(
            slot_block(1, 64512, &pool, Family::V6).map(|b| b.nat_ip),
            pool.ipv6(1)
        );
    }
}
