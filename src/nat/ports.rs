//! The free-set of one scope key: which port offsets of a NIC's block are in use. Small sets are
//! a short inline array; large ones switch to a bitmap. A full set is detected in O(1) from its
//! count, so a packet refused on an exhausted block costs the same whatever P is.

use std::net::IpAddr;

use super::config::NicId;
use crate::rng::mix64;

const SMALL: usize = 11;

/// Where the search for a free NAT port starts when an inside endpoint has no reusable mapped
/// port (behaviour §4 "Port choice"): a seeded hash of the inside endpoint, as an offset in
/// `0..usable` from the start of the NIC's block. The gateway then takes the first free offset at
/// or after it, wrapping within the usable ports.
///
/// Public and documented so reference models and checkers can predict the gateway's choice
/// exactly. Returns 0 when `usable` is 0.
pub fn port_start_offset(
    seed: u64,
    nic: NicId,
    protocol: u8,
    inside: IpAddr,
    inside_port: u16,
    usable: u32,
) -> u16 {
    if usable == 0 {
        return 0;
    }
    let mut h = mix64(seed ^ 0x706F_7274_5F73_7461);
    h = mix64(h ^ (u64::from(nic.0) << 24) ^ (u64::from(protocol) << 16) ^ u64::from(inside_port));
    match inside {
        IpAddr::V4(a) => h = mix64(h ^ u64::from(u32::from(a))),
        IpAddr::V6(a) => {
            let v = u128::from(a);
            h = mix64(h ^ (v >> 64) as u64);
            h = mix64(h ^ v as u64);
        }
    }
    (h % u64::from(usable)) as u16
}

/// Port offsets (relative to the block start) in use for one scope key.
#[derive(Clone, Debug)]
pub(crate) enum PortSet {
    /// Up to [`SMALL`] offsets, unsorted.
    Small { len: u8, ports: [u16; SMALL] },
    /// A bitmap over the whole block.
    Bits { count: u32, words: Box<[u64]> },
}

impl PortSet {
    pub(crate) fn new() -> Self {
        PortSet::Small {
            len: 0,
            ports: [0; SMALL],
        }
    }

    pub(crate) fn len(&self) -> u32 {
        match self {
            PortSet::Small { len, .. } => u32::from(*len),
            PortSet::Bits { count, .. } => *count,
        }
    }

    pub(crate) fn contains(&self, off: u16) -> bool {
        match self {
            PortSet::Small { len, ports } => ports[..usize::from(*len)].contains(&off),
            PortSet::Bits { words, .. } => words[usize::from(off) / 64] & (1 << (off % 64)) != 0,
        }
    }

    /// Marks `off` used. `block_len` sizes the bitmap on promotion.
    pub(crate) fn insert(&mut self, off: u16, block_len: u32) {
        debug_assert!(!self.contains(off));
        match self {
            PortSet::Small { len, ports } => {
                if usize::from(*len) < SMALL {
                    ports[usize::from(*len)] = off;
                    *len += 1;
                    return;
                }
                let mut words = vec![0u64; (block_len as usize).div_ceil(64)].into_boxed_slice();
                for &p in ports.iter() {
                    words[usize::from(p) / 64] |= 1 << (p % 64);
                }
                words[usize::from(off) / 64] |= 1 << (off % 64);
                *self = PortSet::Bits {
                    count: SMALL as u32 + 1,
                    words,
                };
            }
            PortSet::Bits { count, words } => {
                words[usize::from(off) / 64] |= 1 << (off % 64);
                *count += 1;
            }
        }
    }

    pub(crate) fn remove(&mut self, off: u16) {
        match self {
            PortSet::Small { len, ports } => {
                let n = usize::from(*len);
                if let Some(i) = ports[..n].iter().position(|&p| p == off) {
                    ports[i] = ports[n - 1];
                    *len -= 1;
                }
            }
            PortSet::Bits { count, words } => {
                let w = &mut words[usize::from(off) / 64];
                if *w & (1 << (off % 64)) != 0 {
                    *w &= !(1 << (off % 64));
                    *count -= 1;
                }
            }
        }
    }

    /// The first free offset at or after `start`, wrapping within `0..block_len`; `None` when
    /// full. Costs O(1) for small sets and O(block_len / 64) word scans for bitmaps.
    pub(crate) fn first_free_from(&self, start: u16, block_len: u32) -> Option<u16> {
        if self.len() >= block_len {
            return None;
        }
        let start = u32::from(start) % block_len;
        match self {
            PortSet::Small { len, ports } => {
                let used = &ports[..usize::from(*len)];
                let mut c = start;
                // At most len+1 candidates: each rejected one is a distinct used port.
                for _ in 0..=used.len() {
                    if !used.contains(&(c as u16)) {
                        return Some(c as u16);
                    }
                    c = (c + 1) % block_len;
                }
                None
            }
            PortSet::Bits { words, .. } => {
                let nwords = words.len();
                let first_word = (start / 64) as usize;
                for step in 0..=nwords {
                    let wi = (first_word + step) % nwords;
                    let mut w = words[wi];
                    if step == 0 {
                        // Treat ports before `start` in the first word as used on the first pass.
                        w |= (1u64 << (start % 64)) - 1;
                    }
                    if step == nwords {
                        w = words[wi];
                    }
                    if w != u64::MAX {
                        let bit = w.trailing_ones();
                        let off = wi as u32 * 64 + bit;
                        if off < block_len {
                            return Some(off as u16);
                        }
                    }
                }
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn small_set_promotes_to_bitmap_and_keeps_members() {
        let mut s = PortSet::new();
        for p in 0..20u16 {
            s.insert(p * 3, 64);
        }
        assert!(matches!(s, PortSet::Bits { .. }));
        assert_eq!(s.len(), 20);
        assert!(s.contains(57) && !s.contains(58));
        assert_eq!(s.first_free_from(0, 64), Some(1));
        s.remove(0);
        assert_eq!(s.first_free_from(63, 64), Some(63));
        for p in 58..64u16 {
            s.insert(p, 64);
        }
        assert_eq!(s.first_free_from(58, 64), Some(0), "wraps past the end");
    }

    #[test]
    fn full_set_has_no_free_port() {
        let mut s = PortSet::new();
        for p in 0..64u16 {
            s.insert(p, 64);
        }
        assert_eq!(s.first_free_from(17, 64), None);
    }

    /// How many distinct start points `port_start_offset` gives for 64 variants of one input, at
    /// each of four base points, in a 60 000-port block.
    fn distinct_starts(vary: impl Fn(u64, u16) -> (u64, NicId, u8, IpAddr, u16)) -> Vec<usize> {
        (0..4u64)
            .map(|base| {
                let starts: std::collections::BTreeSet<u16> = (0..64u16)
                    .map(|i| {
                        let (seed, nic, proto, inside, port) = vary(base, i);
                        port_start_offset(seed, nic, proto, inside, port, 60_000)
                    })
                    .collect();
                starts.len()
            })
            .collect()
    }

    /// Asserts that every base point spreads its 64 variants over at least 60 start points. 64
    /// well-spread values in 60 000 share a start point in about one pair per 30 draws, so 60 leaves
    /// room for any sound hash; one that ignores an input or masks its bits gives far fewer.
    fn assert_spread(what: &str, counts: &[usize]) {
        assert!(
            counts.iter().all(|&n| n >= 60),
            "{what}: distinct start points per 64 variants {counts:?}"
        );
    }

    const V4: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));

    fn v6(high: u64, low: u64) -> IpAddr {
        IpAddr::V6(std::net::Ipv6Addr::from(
            (u128::from(high) << 64) | u128::from(low),
        ))
    }

    #[test]
    fn the_port_search_start_is_zero_when_no_port_is_usable() {
        assert_eq!(port_start_offset(7, NicId(1), 17, V4, 5000, 0), 0);
        assert_eq!(port_start_offset(7, NicId(1), 6, v6(1, 2), 443, 0), 0);
    }

    #[test]
    fn the_port_search_start_lies_within_the_usable_ports() {
        for usable in [1u32, 2, 3, 63, 64, 100, 1000, 64_511, 65_535] {
            for i in 0..200u16 {
                let v4 = IpAddr::V4(std::net::Ipv4Addr::from(0x0A00_0000 + u32::from(i)));
                for inside in [v4, v6(u64::from(i), 1)] {
                    let start = port_start_offset(u64::from(i), NicId(1), 17, inside, i, usable);
                    assert!(
                        u32::from(start) < usable,
                        "start {start} of {usable} usable"
                    );
                }
            }
        }
    }

    /// Behaviour §4 "Port choice": the start point is a seeded hash of the inside endpoint. Each
    /// input changes it, so different seeds, NICs, protocols, inside addresses (both halves of an
    /// IPv6 one) and inside ports spread over the block instead of piling up on one start point.
    #[test]
    fn the_port_search_start_is_a_seeded_hash_of_every_input() {
        let port = |b: u64| 1000 + b as u16;
        let s = |b: u64| b * 0x1_0001;
        assert_spread(
            "seed",
            &distinct_starts(|b, i| (b * 64 + u64::from(i), NicId(1), 17, V4, port(b))),
        );
        assert_spread(
            "nic",
            &distinct_starts(|b, i| (s(b), NicId(u32::from(i)), 17, V4, port(b))),
        );
        assert_spread(
            "protocol",
            &distinct_starts(|b, i| (s(b), NicId(1), i as u8, V4, port(b))),
        );
        assert_spread(
            "inside port",
            &distinct_starts(|b, i| (s(b), NicId(1), 17, V4, i)),
        );
        assert_spread(
            "inside IPv4 address",
            &distinct_starts(|b, i| {
                let a = std::net::Ipv4Addr::from(0x0A00_0000 + u32::from(i));
                (s(b), NicId(1), 17, IpAddr::V4(a), port(b))
            }),
        );
        assert_spread(
            "upper half of an inside IPv6 address",
            &distinct_starts(|b, i| (s(b), NicId(1), 17, v6(u64::from(i), 1), port(b))),
        );
        assert_spread(
            "lower half of an inside IPv6 address",
            &distinct_starts(|b, i| (s(b), NicId(1), 17, v6(1, u64::from(i)), port(b))),
        );
    }

    #[test]
    fn removing_from_a_small_set_keeps_the_other_members() {
        let mut s = PortSet::new();
        for p in [10u16, 20, 30, 40, 50] {
            s.insert(p, 64);
        }
        s.remove(20);
        assert!(matches!(s, PortSet::Small { .. }));
        assert_eq!(s.len(), 4);
        assert!(!s.contains(20));
        assert!([10, 30, 40, 50].iter().all(|&p| s.contains(p)), "{s:?}");
        s.remove(50);
        s.remove(10);
        assert_eq!(s.len(), 2);
        assert!(s.contains(30) && s.contains(40) && !s.contains(10) && !s.contains(50));
        s.remove(10);
        s.remove(63);
        assert_eq!(s.len(), 2, "removing a port not in the set changes nothing");
        assert_eq!(s.first_free_from(30, 64), Some(31));
        assert_eq!(
            s.first_free_from(10, 64),
            Some(10),
            "a removed port is free again"
        );
    }

    #[test]
    fn removing_from_a_bitmap_clears_only_that_port() {
        let mut s = PortSet::new();
        // Every even port of a 200-port block: four words, promoted to a bitmap.
        for p in (0..200u16).step_by(2) {
            s.insert(p, 200);
        }
        assert!(matches!(s, PortSet::Bits { .. }));
        // 70 and 134 are in words 1 and 2 at bits 6: a mix-up of word and bit index would touch
        // ports 65 or 130 instead.
        for p in [70u16, 134] {
            let before = s.len();
            s.remove(p);
            assert!(!s.contains(p), "{p} removed");
            assert_eq!(s.len(), before - 1);
        }
        assert!(
            (0..200u16)
                .step_by(2)
                .filter(|p| ![70, 134].contains(p))
                .all(|p| s.contains(p))
        );
        assert!((1..200u16).step_by(2).all(|p| !s.contains(p)));
        let before = s.len();
        s.remove(71);
        s.remove(70);
        assert_eq!(
            s.len(),
            before,
            "removing a port not in the set changes nothing"
        );
        assert_eq!(s.first_free_from(66, 200), Some(67));
        assert_eq!(s.first_free_from(68, 200), Some(69));
    }

    proptest! {
        #[test]
        fn first_free_matches_linear_scan(used in proptest::collection::btree_set(0u16..100, 0..100), start in 0u16..100) {
            let block_len = 100u32;
            let mut s = PortSet::new();
            for &p in &used { s.insert(p, block_len); }
            let expect = (0..block_len).map(|i| ((u32::from(start) + i) % block_len) as u16).find(|p| !used.contains(p));
            prop_assert_eq!(s.first_free_from(start, block_len), expect);
        }
    }
}
