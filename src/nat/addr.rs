//! Addresses as fixed byte arrays so the flow table can be generic over the family and stay
//! compact (IPv4 flows carry 4-byte addresses, IPv6 flows 16-byte ones).

use std::fmt::Debug;
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::config::Family;

/// An address of one family.
pub(crate) trait Addr:
    Copy + Eq + Ord + Hash + Debug + Default + AsRef<[u8]> + 'static
{
    const FAMILY: Family;
    /// Reads the address at `at` (bounds checked by the parser).
    fn read(buf: &[u8], at: usize) -> Self;
    fn to_ip(self) -> IpAddr;
    /// Feeds the address to a hasher as one integer word.
    fn write_hash<H: Hasher>(&self, h: &mut H);
}

impl Addr for [u8; 4] {
    const FAMILY: Family = Family::V4;
    #[inline]
    fn read(buf: &[u8], at: usize) -> Self {
        let mut a = [0u8; 4];
        a.copy_from_slice(&buf[at..at + 4]);
        a
    }
    fn to_ip(self) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(self))
    }
    #[inline]
    fn write_hash<H: Hasher>(&self, h: &mut H) {
        h.write_u32(u32::from_ne_bytes(*self));
    }
}

impl Addr for [u8; 16] {
    const FAMILY: Family = Family::V6;
    #[inline]
    fn read(buf: &[u8], at: usize) -> Self {
        let mut a = [0u8; 16];
        a.copy_from_slice(&buf[at..at + 16]);
        a
    }
    fn to_ip(self) -> IpAddr {
        IpAddr::V6(Ipv6Addr::from(self))
    }
    #[inline]
    fn write_hash<H: Hasher>(&self, h: &mut H) {
        h.write_u128(u128::from_ne_bytes(*self));
    }
}
