//! The gateway as a router hop (docs/behaviour.md §4 "TTL"): IPv4 TTL / IPv6 hop limit of
//! forwarded packets, and the rate limit of the ICMP Time Exceeded answers.

use crate::time::TokenBucket;
use crate::wire::parse::IpVersion;
use crate::wire::rewrite;

/// Time Exceeded answers allowed in a burst.
pub const TIME_EXCEEDED_BURST: u32 = 10;
/// One more answer is allowed per this much virtual time (10 per second sustained).
pub const TIME_EXCEEDED_INTERVAL_NS: u64 = 100_000_000;

/// The TTL (IPv4) or hop limit (IPv6) of a parsed packet.
#[inline]
pub(crate) fn hops(pkt: &[u8], version: IpVersion) -> u8 {
    rewrite::hop_limit(pkt, version)
}

/// Decrements the TTL / hop limit by one (the caller made sure it is at least 2), keeping the
/// IPv4 header checksum right.
#[inline]
pub(crate) fn decrement(pkt: &mut [u8], version: IpVersion) {
    rewrite::decrement_hop_limit(pkt, version);
}

/// The Time Exceeded answers' budget: [`TIME_EXCEEDED_BURST`], then one per
/// [`TIME_EXCEEDED_INTERVAL_NS`].
pub(crate) fn answer_budget() -> TokenBucket {
    TokenBucket::new(TIME_EXCEEDED_BURST, TIME_EXCEEDED_INTERVAL_NS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::PacketRepr;

    #[test]
    fn decrement_keeps_the_ipv4_header_checksum_valid() {
        let mut p = PacketRepr::udp(
            ("10.0.0.1".parse().expect("a"), 1),
            ("198.51.100.7".parse().expect("a"), 2),
            b"x",
        )
        .emit();
        let before = hops(&p, IpVersion::V4);
        decrement(&mut p, IpVersion::V4);
        assert_eq!(hops(&p, IpVersion::V4), before - 1);
        assert!(crate::wire::checksum::ipv4_header_ok(&p, 20));
    }

    #[test]
    fn the_answer_budget_allows_a_burst_then_refills_with_time() {
        let mut b = answer_budget();
        let n = (0..100).filter(|_| b.take(0)).count();
        assert_eq!(n, TIME_EXCEEDED_BURST as usize);
        assert!(!b.take(TIME_EXCEEDED_INTERVAL_NS - 1));
        assert!(b.take(TIME_EXCEEDED_INTERVAL_NS));
        assert!(!b.take(TIME_EXCEEDED_INTERVAL_NS));
    }
}
