//! Which captured packets are not traffic of an inside host through the NAT, and why.
//!
//! Automatic side mapping turns the inside end of every packet into a NIC. Some addresses can
//! never be a NIC's: a DHCP client's `0.0.0.0`, the limited broadcast, multicast groups,
//! link-local and loopback addresses, and the gateway's own NAT addresses. Neighbour discovery
//! (ICMPv6 133–137: router solicitation and advertisement, neighbour solicitation and
//! advertisement, redirect) is link-local control traffic the router answers itself. None of
//! this is NATed (docs/behaviour.md §4: only traffic from a selected NIC towards the default
//! route is), so such packets are classified instead of replayed: they create no NIC (and so
//! shift no other host's block), get a verdict, and are counted.
//!
//! Verdicts:
//! * `not_natable_source`: the end that would become the NIC (the source of a packet from
//!   inside, the destination of one from outside) is not a unicast host address.
//! * `passed_link_local`: neighbour discovery, or a packet from an inside host to a link-scoped
//!   destination (multicast, broadcast, link-local, loopback, unspecified): it stays on the
//!   link and never reaches the default route, so the gateway has nothing to do with it.

use super::config::NatPool;
use super::mapping::Mapping;

/// What kind of address an address is, when it cannot be a NIC's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum AddressClass {
    /// `0.0.0.0/8` ("this network", a DHCP client's source) or `::`.
    Unspecified,
    /// `255.255.255.255`.
    Broadcast,
    /// `224.0.0.0/4` or `ff00::/8`.
    Multicast,
    /// `169.254.0.0/16` or `fe80::/10`.
    LinkLocal,
    /// `127.0.0.0/8` or `::1`.
    Loopback,
    /// One of the gateway's own NAT addresses (the NAT pool).
    GatewayAddress,
}

impl AddressClass {
    /// Stable name.
    pub fn name(self) -> &'static str {
        match self {
            AddressClass::Unspecified => "unspecified",
            AddressClass::Broadcast => "broadcast",
            AddressClass::Multicast => "multicast",
            AddressClass::LinkLocal => "link_local",
            AddressClass::Loopback => "loopback",
            AddressClass::GatewayAddress => "gateway_address",
        }
    }

    /// The class of a 4- or 16-byte address that is not a unicast host address, or `None`.
    /// `own` holds the gateway's own addresses.
    pub fn of(addr: &[u8], own: &NatPool) -> Option<AddressClass> {
        if let Ok(a) = <[u8; 4]>::try_from(addr) {
            return match a {
                [0, ..] => Some(AddressClass::Unspecified),
                [255, 255, 255, 255] => Some(AddressClass::Broadcast),
                [224..=239, ..] => Some(AddressClass::Multicast),
                [169, 254, ..] => Some(AddressClass::LinkLocal),
                [127, ..] => Some(AddressClass::Loopback),
                _ if own.contains_bytes(addr) => Some(AddressClass::GatewayAddress),
                _ => None,
            };
        }
        let a = u128::from_be_bytes(<[u8; 16]>::try_from(addr).ok()?);
        if a == 0 {
            Some(AddressClass::Unspecified)
        } else if a == 1 {
            Some(AddressClass::Loopback)
        } else if a >> 120 == 0xff {
            Some(AddressClass::Multicast)
        } else if a >> 118 == 0xfe80 >> 6 {
            Some(AddressClass::LinkLocal)
        } else if own.contains_bytes(addr) {
            Some(AddressClass::GatewayAddress)
        } else {
            None
        }
    }
}

/// Why a packet is not replayed through the gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Class {
    /// The would-be NIC address is of this class.
    NotNatableSource(AddressClass),
    /// ICMPv6 neighbour discovery (router's or host's).
    NeighbourDiscovery,
    /// From an inside host to a destination of this class.
    LinkScopedDestination(AddressClass),
}

impl Class {
    /// The verdict: `not_natable_source` or `passed_link_local`.
    pub fn verdict(self) -> &'static str {
        match self {
            Class::NotNatableSource(_) => "not_natable_source",
            Class::NeighbourDiscovery | Class::LinkScopedDestination(_) => "passed_link_local",
        }
    }

    /// What was found: `unspecified`, `neighbour_discovery`, `multicast_destination`, ...
    pub fn kind(self) -> String {
        match self {
            Class::NotNatableSource(c) => c.name().to_string(),
            Class::NeighbourDiscovery => "neighbour_discovery".to_string(),
            Class::LinkScopedDestination(c) => format!("{}_destination", c.name()),
        }
    }

    /// Summary key: `<verdict>.<kind>`.
    pub fn key(self) -> String {
        format!("{}.{}", self.verdict(), self.kind())
    }
}

/// True for ICMPv6 types 133–137 directly after the IPv6 header (ND is sent without extension
/// headers: RFC 4861 requires hop limit 255 and nothing to hide behind).
pub fn is_neighbour_discovery(ip: &[u8]) -> bool {
    ip.first().is_some_and(|b| b >> 4 == 6)
        && ip.get(6) == Some(&58)
        && ip
            .get(40)
            .is_some_and(|t| crate::wire::icmp::v6::is_neighbour_discovery(*t))
}

/// Classifies a packet the mapping sent to `mapping`, with source and destination address
/// bytes `src`, `dst`; `None` for a packet to replay. `own` holds the gateway's NAT addresses.
pub fn classify(
    mapping: Mapping,
    ip: &[u8],
    src: &[u8],
    dst: &[u8],
    own: &NatPool,
) -> Option<Class> {
    if is_neighbour_discovery(ip) {
        return Some(Class::NeighbourDiscovery);
    }
    let host_end = match mapping {
        Mapping::FromOutside(_) => dst,
        Mapping::FromInside(_) | Mapping::Internal | Mapping::Unmapped => src,
    };
    if let Some(c) = AddressClass::of(host_end, own) {
        return Some(Class::NotNatableSource(c));
    }
    match mapping {
        Mapping::Internal => AddressClass::of(dst, own).map(Class::NotNatableSource),
        // A packet to the gateway's own address is hairpinned (docs/behaviour.md §4): replay it.
        Mapping::FromInside(_) => AddressClass::of(dst, own)
            .filter(|c| *c != AddressClass::GatewayAddress)
            .map(Class::LinkScopedDestination),
        // Neither side known: a link-scoped destination is not NATed from either side.
        Mapping::Unmapped => AddressClass::of(dst, own).map(Class::LinkScopedDestination),
        Mapping::FromOutside(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replay::mapping::Rule;

    fn own() -> NatPool {
        NatPool {
            size: 1,
            ..NatPool::default()
        }
    }

    fn class(a: &str) -> Option<AddressClass> {
        let ip: std::net::IpAddr = a.parse().expect("ip");
        match ip {
            std::net::IpAddr::V4(v) => AddressClass::of(&v.octets(), &own()),
            std::net::IpAddr::V6(v) => AddressClass::of(&v.octets(), &own()),
        }
    }

    #[test]
    fn address_classes() {
        assert_eq!(class("0.0.0.0"), Some(AddressClass::Unspecified));
        assert_eq!(class("0.1.2.3"), Some(AddressClass::Unspecified));
        assert_eq!(class("::"), Some(AddressClass::Unspecified));
        assert_eq!(class("255.255.255.255"), Some(AddressClass::Broadcast));
        assert_eq!(class("224.0.0.251"), Some(AddressClass::Multicast));
        assert_eq!(class("239.255.255.250"), Some(AddressClass::Multicast));
        assert_eq!(class("ff02::1"), Some(AddressClass::Multicast));
        assert_eq!(class("169.254.1.1"), Some(AddressClass::LinkLocal));
        assert_eq!(class("fe80::1"), Some(AddressClass::LinkLocal));
        assert_eq!(class("febf::1"), Some(AddressClass::LinkLocal));
        assert_eq!(class("fec0::1"), None);
        assert_eq!(class("127.0.0.1"), Some(AddressClass::Loopback));
        assert_eq!(class("::1"), Some(AddressClass::Loopback));
        assert_eq!(class("203.0.113.1"), Some(AddressClass::GatewayAddress));
        assert_eq!(class("203.0.113.2"), None);
        assert_eq!(class("10.0.0.1"), None);
        assert_eq!(class("2001:db8::1"), None);
    }

    #[test]
    fn hairpin_to_the_gateway_is_replayed_but_not_from_it() {
        let inside = [10, 0, 0, 2];
        let nat = [203, 0, 113, 1];
        let ip = [0x45u8; 20];
        let from_inside = Mapping::FromInside(Rule::Prefix);
        assert_eq!(classify(from_inside, &ip, &inside, &nat, &own()), None);
        assert_eq!(
            classify(from_inside, &ip, &nat, &inside, &own()),
            Some(Class::NotNatableSource(AddressClass::GatewayAddress))
        );
        assert_eq!(
            classify(from_inside, &ip, &inside, &[224, 0, 0, 22], &own()),
            Some(Class::LinkScopedDestination(AddressClass::Multicast))
        );
        // From outside, the destination is the would-be NIC.
        let from_outside = Mapping::FromOutside(Rule::Direction);
        assert_eq!(
            classify(from_outside, &ip, &[8, 8, 8, 8], &[255; 4], &own()),
            Some(Class::NotNatableSource(AddressClass::Broadcast))
        );
    }

    #[test]
    fn neighbour_discovery_is_recognised() {
        let mut ip = [0u8; 48];
        ip[0] = 0x60;
        ip[6] = 58;
        for (t, nd) in [
            (133, true),
            (134, true),
            (137, true),
            (128, false),
            (138, false),
        ] {
            ip[40] = t;
            assert_eq!(is_neighbour_discovery(&ip), nd, "type {t}");
        }
        ip[6] = 0; // hop-by-hop first: MLD, not ND
        ip[40] = 135;
        assert!(!is_neighbour_discovery(&ip));
    }
}
