//! Public address pools and deterministic address allocation.
//!
//! Pools are prefixes given by the caller (`--pool`, repeatable), used in the order given.
//! Allocation takes the lowest free address of the first prefix that has one. Addresses that
//! are pinned by a manifest, or held by any object, are never handed out twice. The
//! network address and IPv4 broadcast address of a prefix are skipped (for IPv4 prefixes
//! shorter than /31, and IPv6 prefixes shorter than /127 — its subnet-router anycast
//! address), because real pools never assign them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

use super::model::IpFamily;

/// The IPv4 pool used when the caller gives none: TEST-NET-3 (RFC 5737).
pub const DEFAULT_POOL_V4: &str = "203.0.113.0/24";
/// The IPv6 pool used when the caller gives none: a /96 of the documentation prefix
/// (RFC 3849).
pub const DEFAULT_POOL_V6: &str = "2001:db8:ffff::/96";

/// Public prefixes, per family, in the caller's order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pools {
    prefixes: Vec<IpNet>,
}

impl Default for Pools {
    fn default() -> Self {
        Pools::new(&[])
    }
}

impl Pools {
    /// Pools from the caller's prefixes. A family without any prefix falls back to its
    /// default pool (so `--pool 198.51.100.0/24` alone still gives IPv6 gateways addresses).
    pub fn new(prefixes: &[IpNet]) -> Self {
        let mut all: Vec<IpNet> = prefixes.iter().map(IpNet::trunc).collect();
        for (family, default) in [
            (IpFamily::IPv4, DEFAULT_POOL_V4),
            (IpFamily::IPv6, DEFAULT_POOL_V6),
        ] {
            if !all.iter().any(|p| family_of(p) == family)
                && let Ok(net) = default.parse::<IpNet>()
            {
                all.push(net);
            }
        }
        Pools { prefixes: all }
    }

    /// All prefixes, in allocation order.
    pub fn prefixes(&self) -> &[IpNet] {
        &self.prefixes
    }

    /// The lowest address of `family` for which `used` is false, or `None` when the pools
    /// are full. `used` is called once per candidate, in address order.
    pub fn lowest_free(&self, family: IpFamily, used: &dyn Fn(IpAddr) -> bool) -> Option<IpAddr> {
        self.prefixes
            .iter()
            .filter(|p| family_of(p) == family)
            .find_map(|p| lowest_free_in(p, used))
    }
}

fn family_of(net: &IpNet) -> IpFamily {
    match net {
        IpNet::V4(_) => IpFamily::IPv4,
        IpNet::V6(_) => IpFamily::IPv6,
    }
}

/// First and last assignable address of a prefix, as integers.
fn assignable_range(net: &IpNet) -> (u128, u128) {
    match net {
        IpNet::V4(n) => {
            let first = u128::from(u32::from(n.network()));
            let last = u128::from(u32::from(n.broadcast()));
            if n.prefix_len() < 31 {
                (first + 1, last - 1)
            } else {
                (first, last)
            }
        }
        IpNet::V6(n) => {
            let first = u128::from(n.network());
            let last = u128::from(n.broadcast());
            if n.prefix_len() < 127 {
                (first + 1, last)
            } else {
                (first, last)
            }
        }
    }
}

fn to_addr(net: &IpNet, v: u128) -> IpAddr {
    match net {
        IpNet::V4(_) => IpAddr::V4(Ipv4Addr::from(u32::try_from(v).unwrap_or(u32::MAX))),
        IpNet::V6(_) => IpAddr::V6(Ipv6Addr::from(v)),
    }
}

fn lowest_free_in(net: &IpNet, used: &dyn Fn(IpAddr) -> bool) -> Option<IpAddr> {
    let (first, last) = assignable_range(net);
    let mut candidate = first;
    while candidate <= last {
        let addr = to_addr(net, candidate);
        if !used(addr) {
            return Some(addr);
        }
        candidate += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn used(addrs: &[&str]) -> impl Fn(IpAddr) -> bool {
        let set: BTreeSet<IpAddr> = addrs.iter().filter_map(|a| a.parse().ok()).collect();
        move |a| set.contains(&a)
    }

    #[test]
    fn default_pools_cover_both_families_and_skip_network_address() {
        let pools = Pools::default();
        assert_eq!(
            pools.lowest_free(IpFamily::IPv4, &used(&[])),
            "203.0.113.1".parse().ok()
        );
        assert_eq!(
            pools.lowest_free(IpFamily::IPv6, &used(&[])),
            "2001:db8:ffff::1".parse().ok()
        );
    }

    #[test]
    fn allocation_takes_lowest_gap_then_next_prefix() {
        let nets: Vec<IpNet> = ["192.0.2.0/30", "198.51.100.0/24"]
            .iter()
            .filter_map(|s| s.parse().ok())
            .collect();
        let pools = Pools::new(&nets);
        assert_eq!(
            pools.lowest_free(IpFamily::IPv4, &used(&["192.0.2.1"])),
            "192.0.2.2".parse().ok()
        );
        // /30 has two assignable addresses; both used → next prefix.
        assert_eq!(
            pools.lowest_free(IpFamily::IPv4, &used(&["192.0.2.1", "192.0.2.2"])),
            "198.51.100.1".parse().ok()
        );
        // Gap after a used run.
        assert_eq!(
            pools.lowest_free(
                IpFamily::IPv4,
                &used(&["192.0.2.1", "192.0.2.2", "198.51.100.1", "198.51.100.3"])
            ),
            "198.51.100.2".parse().ok()
        );
    }

    #[test]
    fn full_pool_yields_none() {
        let nets: Vec<IpNet> = ["192.0.2.0/31"]
            .iter()
            .filter_map(|s| s.parse().ok())
            .collect();
        let pools = Pools::new(&nets);
        assert_eq!(
            pools.lowest_free(IpFamily::IPv4, &used(&["192.0.2.0", "192.0.2.1"])),
            None
        );
    }
}
