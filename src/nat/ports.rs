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
