//! Which side each captured packet enters the gateway from, and which inside host it belongs
//! to. The rules, first match wins:
//!
//! 1. **interface map**: the packet's capture interface is mapped to a side;
//! 2. **inside prefixes**: source inside and destination not → from inside; destination inside
//!    and source not → from outside (a reply half); both inside → internal;
//! 3. **capture direction** (Linux SLL packet type, pcapng `epb_flags`, NFLOG hook): outgoing →
//!    from inside, incoming → from outside (the capturing host is the inside host);
//! 4. **guess**, only when the capture has no inside-prefix address at all: the source of the
//!    first IP packet is the inside host.
//!
//! Anything else is unmapped and skipped (`skip.unmapped`).

use std::net::IpAddr;

use ipnet::IpNet;

use super::config::EntrySide;
use super::link::CaptureDirection;

/// A set of prefixes matched on raw address bytes (no `IpAddr` built on the hot path).
#[derive(Clone, Debug, Default)]
pub struct PrefixSet {
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u128)>,
}

impl PrefixSet {
    /// The set of `prefixes`.
    pub fn new(prefixes: &[IpNet]) -> PrefixSet {
        let mut set = PrefixSet::default();
        for p in prefixes {
            match p {
                IpNet::V4(n) => {
                    let mask = u32::from(n.netmask());
                    set.v4.push((u32::from(n.network()) & mask, mask));
                }
                IpNet::V6(n) => {
                    let mask = u128::from(n.netmask());
                    set.v6.push((u128::from(n.network()) & mask, mask));
                }
            }
        }
        set
    }

    /// True when the 4- or 16-byte address is in one of the prefixes.
    #[inline]
    pub fn contains_bytes(&self, addr: &[u8]) -> bool {
        if let Ok(a) = <[u8; 4]>::try_from(addr) {
            let a = u32::from_be_bytes(a);
            self.v4.iter().any(|&(net, mask)| a & mask == net)
        } else if let Ok(a) = <[u8; 16]>::try_from(addr) {
            let a = u128::from_be_bytes(a);
            self.v6.iter().any(|&(net, mask)| a & mask == net)
        } else {
            false
        }
    }

    /// True when `addr` is in one of the prefixes.
    pub fn contains(&self, addr: IpAddr) -> bool {
        match addr {
            IpAddr::V4(a) => self.contains_bytes(&a.octets()),
            IpAddr::V6(a) => self.contains_bytes(&a.octets()),
        }
    }
}

/// Which rule decided a packet's side; counted in the summary as `mapping.<name>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rule {
    /// Rule 1, interface map.
    Interface,
    /// Rule 2, inside prefixes (one end inside).
    Prefix,
    /// Rule 2, both ends inside.
    Internal,
    /// Rule 3, capture direction.
    Direction,
    /// Rule 4, the guessed inside host.
    Guess,
}

impl Rule {
    /// All rules, in counter order.
    pub const ALL: [Rule; 5] = [
        Rule::Interface,
        Rule::Prefix,
        Rule::Internal,
        Rule::Direction,
        Rule::Guess,
    ];

    /// Stable name.
    pub fn name(self) -> &'static str {
        match self {
            Rule::Interface => "interface",
            Rule::Prefix => "prefix",
            Rule::Internal => "internal",
            Rule::Direction => "direction",
            Rule::Guess => "guess",
        }
    }
}

/// Where a packet goes in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mapping {
    /// Enters from inside; the source is the inside host.
    FromInside(Rule),
    /// Enters from outside; the destination is the inside host.
    FromOutside(Rule),
    /// Both ends are inside hosts: delivered without the NAT, seen on the inside only.
    Internal,
    /// No rule applies.
    Unmapped,
}

/// Applies the rules to one packet at a time.
#[derive(Clone, Debug)]
pub struct Mapper {
    inside: PrefixSet,
    /// Set when the capture has no inside-prefix address at all: the guessed inside host.
    guessed: Option<IpAddr>,
}

impl Mapper {
    /// A mapper over `inside` prefixes; `guessed` is the host rule 4 uses, if it applies.
    pub fn new(inside: PrefixSet, guessed: Option<IpAddr>) -> Mapper {
        Mapper { inside, guessed }
    }

    /// The guessed inside host, if rule 4 applies to this capture.
    pub fn guessed(&self) -> Option<IpAddr> {
        self.guessed
    }

    /// The inside prefixes.
    pub fn inside(&self) -> &PrefixSet {
        &self.inside
    }

    /// Decides the side of a packet with raw source and destination address bytes.
    #[inline]
    pub fn map(
        &self,
        interface_side: Option<EntrySide>,
        direction: Option<CaptureDirection>,
        src: &[u8],
        dst: &[u8],
    ) -> Mapping {
        match interface_side {
            Some(EntrySide::Inside) => return Mapping::FromInside(Rule::Interface),
            Some(EntrySide::Outside) => return Mapping::FromOutside(Rule::Interface),
            None => {}
        }
        match (
            self.inside.contains_bytes(src),
            self.inside.contains_bytes(dst),
        ) {
            (true, false) => return Mapping::FromInside(Rule::Prefix),
            (false, true) => return Mapping::FromOutside(Rule::Prefix),
            (true, true) => return Mapping::Internal,
            (false, false) => {}
        }
        match direction {
            Some(CaptureDirection::Outbound) => return Mapping::FromInside(Rule::Direction),
            Some(CaptureDirection::Inbound) => return Mapping::FromOutside(Rule::Direction),
            None => {}
        }
        if let Some(g) = self.guessed {
            if addr_eq(g, src) {
                return Mapping::FromInside(Rule::Guess);
            }
            if addr_eq(g, dst) {
                return Mapping::FromOutside(Rule::Guess);
            }
        }
        Mapping::Unmapped
    }
}

fn addr_eq(a: IpAddr, bytes: &[u8]) -> bool {
    match a {
        IpAddr::V4(a) => a.octets()[..] == *bytes,
        IpAddr::V6(a) => a.octets()[..] == *bytes,
    }
}

/// The source and destination address bytes of an IP packet, if its fixed header is there
/// (the reader has checked the version nibble; nothing else is assumed).
#[inline]
pub fn addresses(ip: &[u8]) -> Option<(&[u8], &[u8])> {
    match ip.first()? >> 4 {
        4 if ip.len() >= 20 => Some((&ip[12..16], &ip[16..20])),
        6 if ip.len() >= 40 => Some((&ip[8..24], &ip[24..40])),
        _ => None,
    }
}

/// An address from 4 or 16 bytes.
pub fn to_ip(bytes: &[u8]) -> Option<IpAddr> {
    if let Ok(a) = <[u8; 4]>::try_from(bytes) {
        Some(IpAddr::from(a))
    } else {
        <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapper(guess: Option<&str>) -> Mapper {
        let prefixes: Vec<IpNet> = ["10.0.0.0/8", "fc00::/7"]
            .iter()
            .map(|p| p.parse().expect("prefix"))
            .collect();
        Mapper::new(
            PrefixSet::new(&prefixes),
            guess.map(|g| g.parse().expect("ip")),
        )
    }

    const IN: [u8; 4] = [10, 1, 2, 3];
    const OUT: [u8; 4] = [8, 8, 8, 8];
    const OTHER: [u8; 4] = [1, 1, 1, 1];

    #[test]
    fn rules_apply_in_order() {
        let m = mapper(None);
        assert_eq!(
            m.map(None, None, &IN, &OUT),
            Mapping::FromInside(Rule::Prefix)
        );
        assert_eq!(
            m.map(None, None, &OUT, &IN),
            Mapping::FromOutside(Rule::Prefix)
        );
        assert_eq!(m.map(None, None, &IN, &IN), Mapping::Internal);
        assert_eq!(m.map(None, None, &OUT, &OTHER), Mapping::Unmapped);
        // The interface map beats the addresses.
        assert_eq!(
            m.map(Some(EntrySide::Outside), None, &IN, &OUT),
            Mapping::FromOutside(Rule::Interface)
        );
        // Direction decides only when the addresses do not.
        let out = Some(CaptureDirection::Outbound);
        assert_eq!(
            m.map(None, out, &OUT, &IN),
            Mapping::FromOutside(Rule::Prefix)
        );
        assert_eq!(
            m.map(None, out, &OUT, &OTHER),
            Mapping::FromInside(Rule::Direction)
        );
    }

    #[test]
    fn guess_is_the_last_resort() {
        let m = mapper(Some("1.1.1.1"));
        assert_eq!(
            m.map(None, None, &OTHER, &OUT),
            Mapping::FromInside(Rule::Guess)
        );
        assert_eq!(
            m.map(None, None, &OUT, &OTHER),
            Mapping::FromOutside(Rule::Guess)
        );
        assert_eq!(m.map(None, None, &OUT, &[9, 9, 9, 9]), Mapping::Unmapped);
        let v6: IpAddr = "fd00::1".parse().expect("ip");
        assert!(m.inside().contains(v6));
    }

    #[test]
    fn addresses_need_the_fixed_header() {
        assert_eq!(addresses(&[0x45; 19]), None);
        let mut p = [0u8; 20];
        p[0] = 0x45;
        p[12..16].copy_from_slice(&IN);
        assert_eq!(addresses(&p), Some((&IN[..], &[0u8; 4][..])));
        assert_eq!(addresses(&[0x60; 39]), None);
    }
}
