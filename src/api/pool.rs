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

/// Special-purpose ranges that can never be public NAT addresses, from the IANA
/// special-purpose address registries (RFC 6890 and its updates) plus the multicast and
/// reserved blocks: (prefix, registry name). Documentation and benchmarking ranges are
/// allowed on purpose: the default pools are documentation prefixes (RFC 5737, RFC 3849).
pub const SPECIAL_PURPOSE: &[(&str, &str)] = &[
    ("0.0.0.0/8", "\"this network\" (RFC 791, RFC 6890)"),
    ("127.0.0.0/8", "loopback (RFC 1122, RFC 6890)"),
    ("169.254.0.0/16", "link-local (RFC 3927, RFC 6890)"),
    ("224.0.0.0/4", "multicast (RFC 5771)"),
    ("240.0.0.0/4", "reserved (RFC 1112, RFC 6890)"),
    (
        "255.255.255.255/32",
        "limited broadcast (RFC 919, RFC 6890)",
    ),
    ("::/128", "unspecified address (RFC 4291, RFC 6890)"),
    ("::1/128", "loopback (RFC 4291, RFC 6890)"),
    (
        "::ffff:0:0/96",
        "IPv4-mapped addresses (RFC 4291, RFC 6890)",
    ),
    ("fe80::/10", "link-local unicast (RFC 4291, RFC 6890)"),
    ("ff00::/8", "multicast (RFC 4291)"),
];

/// Checks one `--pool` prefix: no host bits, not the whole address space, no overlap with a
/// [`SPECIAL_PURPOSE`] range. The message names the range and what would be valid.
pub fn check_pool(net: &IpNet) -> Result<(), String> {
    if net.trunc() != *net {
        return Err(format!(
            "{net} has host bits set; valid: the prefix itself, {}",
            net.trunc()
        ));
    }
    if net.prefix_len() == 0 {
        return Err(format!(
            "{net} is the whole address space (it includes loopback, multicast and other special-purpose ranges); valid: a prefix of public addresses such as {}",
            default_of(family_of(net))
        ));
    }
    for (text, name) in SPECIAL_PURPOSE {
        let Ok(special) = text.parse::<IpNet>() else {
            continue;
        };
        if special.contains(net) || net.contains(&special) {
            return Err(format!(
                "{net} overlaps {special}, {name} in the IANA special-purpose address registry; a NAT pool must hold addresses that can be public, such as {}",
                default_of(family_of(net))
            ));
        }
    }
    Ok(())
}

fn default_of(family: IpFamily) -> &'static str {
    match family {
        IpFamily::IPv4 => DEFAULT_POOL_V4,
        IpFamily::IPv6 => DEFAULT_POOL_V6,
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
    fn pools_with_host_bits_or_special_purpose_ranges_are_refused_by_name() {
        let check = |s: &str| check_pool(&s.parse::<IpNet>().expect("prefix"));
        assert!(check("198.51.100.0/24").is_ok());
        assert!(check(DEFAULT_POOL_V4).is_ok());
        assert!(check(DEFAULT_POOL_V6).is_ok());
        for (pool, named) in [
            ("203.0.113.5/24", "host bits"),
            ("0.0.0.0/0", "whole address space"),
            ("::/0", "whole address space"),
            ("127.0.0.0/8", "loopback"),
            ("127.0.0.1/32", "loopback"),
            ("224.0.0.0/24", "multicast"),
            ("169.254.1.0/24", "link-local"),
            ("fe80::/64", "link-local"),
            ("ff02::/16", "multicast"),
            ("0.0.0.0/8", "this network"),
            ("128.0.0.0/1", "special-purpose"),
        ] {
            let e = check(pool).expect_err(pool);
            assert!(e.contains(named), "{pool}: {e}");
        }
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
