//! Internet checksums (RFC 1071) and incremental updates (RFC 1624).
//!
//! Sums are kept unfolded in a `u64` so callers can add pieces (pseudo-header, header, payload)
//! before folding once.
//!
//! This module is natsim's only implementation of the IPv4 header and transport (TCP, UDP, ICMP,
//! ICMPv6) checksums: full computation ([`fill_transport`], [`fill_transport_part`]),
//! verification ([`transport_ok`], [`l4_ok`], [`ipv4_header_ok`]) and RFC 1624 incremental
//! updates. The builder ([`crate::wire::build`]), the reprs, the gateway, NAT64, replay's repair
//! of offloaded captures and the fuzzers all call these.

use super::parse::{IpMeta, IpVersion, proto};

/// A one's-complement partial sum of `data` as big-endian 16-bit words (an odd trailing byte
/// padded with zero): not always that sum itself, but equal to it modulo 2^16 − 1 and zero
/// exactly when it is, so partial sums may be added and [`fold`] gives the same value.
#[inline]
pub fn sum(data: &[u8]) -> u64 {
    // An IPv4 address, the most frequent short input on the per-packet path: one load.
    if let Ok(word) = <[u8; 4]>::try_from(data) {
        return u64::from(u32::from_be_bytes(word));
    }
    // One's-complement addition does not care about byte order (RFC 1071 §2(B)): summing the
    // data as little-endian words and swapping the bytes of the folded result gives the
    // big-endian sum. And 2^64 = 1 (mod 2^16 - 1), so adding whole 64-bit words with end-around
    // carry is the same sum as adding 16-bit words, in a quarter of the additions and without a
    // byte swap per load. Two accumulators let consecutive additions overlap.
    let (words, tail) = data.as_chunks::<8>();
    let (pairs, odd) = words.as_chunks::<2>();
    let (mut a, mut b) = (0u64, 0u64);
    for [x, y] in pairs {
        a = add_end_around(a, u64::from_le_bytes(*x));
        b = add_end_around(b, u64::from_le_bytes(*y));
    }
    if let [x] = odd {
        a = add_end_around(a, u64::from_le_bytes(*x));
    }
    // The tail starts at an even offset, so its bytes pair up as in the words; a trailing odd
    // byte lands in the low half of its little-endian word, which the swap makes the high
    // (zero-padded) half. At most 7 bytes, read one by one: a copy of variable length would
    // call `memcpy`.
    let last = tail
        .iter()
        .enumerate()
        .fold(0u64, |w, (i, &byte)| w | u64::from(byte) << (8 * i));
    b = add_end_around(b, last);
    u64::from(fold(add_end_around(a, b)).swap_bytes())
}

/// `a + b` modulo 2^64 - 1 (end-around carry); zero only when both are zero.
#[inline]
fn add_end_around(a: u64, b: u64) -> u64 {
    let (s, carry) = a.overflowing_add(b);
    // With a carry, `s` is at most 2^64 - 2, so adding it back cannot overflow.
    s + u64::from(carry)
}

/// Writes the IPv4 header checksum of the `header_len`-byte header at the start of `buf` (the
/// field is cleared first, so its old value does not count).
pub fn set_ipv4_header(buf: &mut [u8], header_len: usize) {
    buf[10..12].copy_from_slice(&[0, 0]);
    let c = finish(sum(&buf[..header_len]));
    buf[10..12].copy_from_slice(&c.to_be_bytes());
}

/// Folds a partial sum into 16 bits with end-around carry.
#[inline]
pub fn fold(acc: u64) -> u16 {
    // Each step keeps the value modulo 2^16 - 1 and keeps it non-zero if it was, so the result
    // is the one a fold-until-small loop gives. The bounds: < 2^33, < 2^18, <= 0x10002, <= 0xFFFF.
    let acc = (acc >> 32) + (acc & 0xFFFF_FFFF);
    let acc = (acc >> 16) + (acc & 0xFFFF);
    let acc = (acc >> 16) + (acc & 0xFFFF);
    let acc = (acc >> 16) + (acc & 0xFFFF);
    acc as u16
}

/// The checksum field value for a partial sum that excludes the checksum field itself.
#[inline]
pub fn finish(acc: u64) -> u16 {
    !fold(acc)
}

/// True when a region whose sum includes its checksum field verifies.
#[inline]
pub fn verifies(acc: u64) -> bool {
    fold(acc) == 0xFFFF
}

/// The pseudo-header partial sum of either family (RFC 768/793 for IPv4, RFC 8200 §8.1 for
/// IPv6).
pub fn pseudo_header(src: &[u8], dst: &[u8], protocol: u8, l4_len: u32) -> u64 {
    pseudo_header_of_addr_sum(sum(src) + sum(dst), protocol, l4_len)
}

/// The pseudo-header partial sum given the partial sum of both addresses: the protocol and the
/// length words are the same for both families once the length's high half is added (zero for
/// IPv4, whose pseudo-header length is 16 bits).
#[inline]
fn pseudo_header_of_addr_sum(addr_sum: u64, protocol: u8, l4_len: u32) -> u64 {
    addr_sum + u64::from(protocol) + u64::from(l4_len >> 16) + u64::from(l4_len & 0xFFFF)
}

/// Where the transport checksum of `protocol` over `version` sits and what it covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TransportField {
    /// Offset of the 16-bit checksum in the transport header.
    pub at: usize,
    /// The sum covers the pseudo-header (TCP, UDP, ICMPv6; not ICMPv4).
    pub pseudo: bool,
    /// UDP rules: a computed zero is sent as all ones, and over IPv4 zero means "no checksum".
    pub udp: bool,
}

/// The transport checksum field of `protocol` carried over `version`; `None` for protocols
/// without one natsim knows (and for ICMP of the other family).
#[inline]
pub fn transport_field(version: IpVersion, protocol: u8) -> Option<TransportField> {
    let (at, pseudo, udp) = match (version, protocol) {
        (_, proto::TCP) => (16, true, false),
        (_, proto::UDP) => (6, true, true),
        (IpVersion::V4, proto::ICMP) => (2, false, false),
        (IpVersion::V6, proto::ICMPV6) => (2, true, false),
        _ => return None,
    };
    Some(TransportField { at, pseudo, udp })
}

/// Writes the full checksum of the transport part `l4` (header and payload, nothing after it)
/// of a `version` packet from `src` to `dst`. Returns false, leaving `l4` alone, for protocols
/// without a checksum and for a part too short to hold the field.
pub fn fill_transport_part(
    version: IpVersion,
    src: &[u8],
    dst: &[u8],
    protocol: u8,
    l4: &mut [u8],
) -> bool {
    let Some(f) = transport_field(version, protocol) else {
        return false;
    };
    if l4.len() < f.at + 2 {
        return false;
    }
    l4[f.at..f.at + 2].copy_from_slice(&[0, 0]);
    let mut acc = sum(l4);
    if f.pseudo {
        acc += pseudo_header(src, dst, protocol, l4.len() as u32);
    }
    let mut c = finish(acc);
    // RFC 768: a computed zero is sent as all ones; zero means "no checksum".
    if f.udp && c == 0 {
        c = 0xFFFF;
    }
    l4[f.at..f.at + 2].copy_from_slice(&c.to_be_bytes());
    true
}

/// Writes the full transport checksum of a whole parsed packet (UDP: over the bytes its length
/// field counts). Returns false for protocols without one or a header too short to hold it.
pub fn fill_transport(buf: &mut [u8], meta: &IpMeta) -> bool {
    let l4 = meta.l4_offset;
    let mut len = meta.end - l4;
    if meta.protocol == proto::UDP && len >= 6 {
        len = len.min(usize::from(u16::from_be_bytes([buf[l4 + 4], buf[l4 + 5]])));
    }
    let (head, rest) = buf.split_at_mut(l4);
    let (s, d, n) = (meta.src_offset(), meta.dst_offset(), meta.addr_len());
    fill_transport_part(
        meta.version,
        &head[s..s + n],
        &head[d..d + n],
        meta.protocol,
        &mut rest[..len],
    )
}

/// True when the transport part `l4` of a whole `version` packet verifies: TCP over all of
/// `l4`, UDP over the bytes its length field counts (an IPv4 zero checksum means "none" and
/// passes), ICMP/ICMPv6 of the packet's own family. Other protocols pass.
#[inline]
pub fn transport_ok(version: IpVersion, src: &[u8], dst: &[u8], protocol: u8, l4: &[u8]) -> bool {
    transport_ok_with(version, protocol, l4, |len| {
        sum(src) + sum(dst) + sum(&l4[..len])
    })
}

/// [`transport_ok`] given `with_addrs(len)`: the partial sum of both addresses and the first
/// `len` bytes of `l4`, which it asks for only when the pseudo-header counts.
#[inline]
fn transport_ok_with(
    version: IpVersion,
    protocol: u8,
    l4: &[u8],
    with_addrs: impl FnOnce(usize) -> u64,
) -> bool {
    let Some(f) = transport_field(version, protocol) else {
        return true;
    };
    if l4.len() < f.at + 2 {
        // Only a lax-parsed (cut) packet can be this short: nothing to verify against.
        return false;
    }
    let mut len = l4.len();
    if f.udp {
        if version == IpVersion::V4 && l4[6] == 0 && l4[7] == 0 {
            return true;
        }
        len = usize::from(u16::from_be_bytes([l4[4], l4[5]])).min(len);
    }
    let acc = if f.pseudo {
        pseudo_header_of_addr_sum(with_addrs(len), protocol, len as u32)
    } else {
        sum(&l4[..len])
    };
    verifies(acc)
}

/// The gateway's transport check of a strictly parsed packet: [`transport_ok`] for an
/// unfragmented packet; fragments (atomic ones included) pass, their checksum is not checked.
#[inline]
pub fn l4_ok(buf: &[u8], meta: &IpMeta) -> bool {
    if meta.fragment.is_some() {
        return true;
    }
    // Both families keep the destination right after the source, so the two addresses are
    // one run of bytes; and without IPv4 options or IPv6 extension headers the transport
    // header follows them at once, so addresses and transport are one sum (the per-packet hot
    // path of the gateway).
    let (s, d, n) = (meta.src_offset(), meta.dst_offset(), meta.addr_len());
    debug_assert_eq!(d, s + n);
    let l4 = meta.l4_offset;
    if d + n == l4 {
        transport_ok_with(meta.version, meta.protocol, &buf[l4..meta.end], |len| {
            sum(&buf[s..l4 + len])
        })
    } else {
        transport_ok_with(meta.version, meta.protocol, &buf[l4..meta.end], |len| {
            sum(&buf[s..d + n]) + sum(&buf[l4..l4 + len])
        })
    }
}

/// True when the IPv4 header (`header_len` bytes at the start of `buf`) verifies.
#[inline]
pub fn ipv4_header_ok(buf: &[u8], header_len: usize) -> bool {
    verifies(sum(&buf[..header_len]))
}

/// RFC 1624 eqn. 3: the new checksum after a 16-bit word changes from `old` to `new`.
#[inline]
pub fn update_word(check: u16, old: u16, new: u16) -> u16 {
    let acc = u64::from(!check) + u64::from(!old) + u64::from(new);
    !fold(acc)
}

/// RFC 1624 eqn. 3 for a run of 16-bit words (`old` and `new` have the same even length).
pub fn update_bytes(check: u16, old: &[u8], new: &[u8]) -> u16 {
    debug_assert_eq!(old.len(), new.len());
    let acc = u64::from(!check) + (!fold(sum(old)) as u64) + sum(new);
    // `!fold(sum(old))` is the one's-complement negation of the old words' sum.
    !fold(acc)
}

/// True when two checksum values are the same number in one's complement (0x0000 and 0xFFFF are
/// both zero); incremental and full computation may legitimately pick different ones.
pub fn same_value(a: u16, b: u16) -> bool {
    a == b || (a == 0 && b == 0xFFFF) || (a == 0xFFFF && b == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example_sums_to_known_value() {
        // RFC 1071 §3 example bytes: 00 01 f2 03 f4 f5 f6 f7 -> sum 0x2ddf0 -> folded 0xddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum(&data)), 0xddf2);
    }

    #[test]
    fn fold_keeps_zero_and_the_all_ones_value_apart() {
        for (acc, folded) in [
            (0u64, 0u16),
            (0xFFFF, 0xFFFF),
            (0x1_0000, 1),
            (0x1_FFFE, 0xFFFF),
            (0xFFFF_FFFF, 0xFFFF),
            (0x1_0000_0000, 1),
            (u64::MAX, 0xFFFF),
        ] {
            assert_eq!(fold(acc), folded, "{acc:#x}");
        }
    }

    /// RFC 1071's definition, one 16-bit big-endian word at a time: what `sum` is held to.
    fn word_sum(data: &[u8]) -> u64 {
        data.chunks(2)
            .map(|w| u64::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)])))
            .sum()
    }

    proptest::proptest! {
        #[test]
        fn fold_gives_what_folding_until_small_gives(acc in proptest::prelude::any::<u64>()) {
            let mut slow = acc;
            while slow > 0xFFFF {
                slow = (slow & 0xFFFF) + (slow >> 16);
            }
            proptest::prop_assert_eq!(fold(acc), slow as u16);
        }

        #[test]
        fn word_sum_folds_like_the_rfc1071_16_bit_sum(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..1600)) {
            proptest::prop_assert_eq!(fold(sum(&data)), fold(word_sum(&data)));
        }

        /// Partial sums are added before folding (pseudo-header, header, payload): a sum may
        /// differ from the 16-bit word sum, but only by a multiple of 2^16 - 1, and is zero
        /// exactly when that is, so added parts fold like the whole. Runs of 0xFF and of zero
        /// bytes reach the carries and the all-ones value.
        #[test]
        fn partial_sums_add_like_16_bit_word_sums(
            parts in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
                    proptest::strategy::Strategy::prop_map(0usize..300, |n| vec![0xFF; n]),
                    proptest::strategy::Strategy::prop_map(0usize..40, |n| vec![0; n]),
                ],
                1..5,
            )
        ) {
            let fast: u64 = parts.iter().map(|p| sum(p)).sum();
            let naive: u64 = parts.iter().map(|p| word_sum(p)).sum();
            proptest::prop_assert_eq!(fold(fast), fold(naive));
            proptest::prop_assert_eq!(fast == 0, naive == 0);
        }
    }

    proptest::proptest! {
        /// `l4_ok` sums addresses and transport in one run when they are adjacent (no IPv4
        /// options) and in two otherwise; either way it is `transport_ok` of the packet.
        #[test]
        fn l4_ok_is_transport_ok_with_and_without_ipv4_options(
            options in proptest::prelude::any::<bool>(),
            tcp in proptest::prelude::any::<bool>(),
            addrs in proptest::prelude::any::<[u8; 8]>(),
            l4 in proptest::collection::vec(proptest::prelude::any::<u8>(), 20..64),
            udp_len in 8u16..64,
            fix in proptest::prelude::any::<bool>(),
        ) {
            let ihl = if options { 24 } else { 20 };
            let mut buf = vec![0u8; ihl];
            buf[0] = 0x40 | (ihl / 4) as u8;
            buf[8] = 64;
            buf[9] = if tcp { proto::TCP } else { proto::UDP };
            buf[12..20].copy_from_slice(&addrs);
            // NOP options.
            buf[20..].fill(1);
            buf.extend_from_slice(&l4);
            if !tcp {
                let len = udp_len.min(l4.len() as u16);
                buf[ihl + 4..ihl + 6].copy_from_slice(&len.to_be_bytes());
            } else {
                buf[ihl + 12] = 5 << 4;
            }
            let total = buf.len() as u16;
            buf[2..4].copy_from_slice(&total.to_be_bytes());
            set_ipv4_header(&mut buf, ihl);
            if fix {
                let meta = crate::wire::parse::parse_ip(&buf).expect("parses");
                fill_transport(&mut buf, &meta);
            }
            let meta = crate::wire::parse::parse_ip(&buf).expect("parses");
            let expected = transport_ok(
                meta.version,
                &buf[12..16],
                &buf[16..20],
                meta.protocol,
                &buf[meta.l4_offset..meta.end],
            );
            proptest::prop_assert_eq!(l4_ok(&buf, &meta), expected);
            if fix {
                proptest::prop_assert!(expected);
            }
        }
    }

    #[test]
    fn odd_length_is_zero_padded() {
        assert_eq!(sum(&[0x12, 0x34, 0x56]), 0x1234 + 0x5600);
    }

    #[test]
    fn incremental_word_update_matches_full_recomputation() {
        let mut data = [0x45u8, 0x00, 0x00, 0x54, 0x12, 0x34, 0x40, 0x00, 0x40, 0x01];
        let before = finish(sum(&data));
        let old = u16::from_be_bytes([data[4], data[5]]);
        data[4] = 0xAB;
        data[5] = 0xCD;
        let inc = update_word(before, old, 0xABCD);
        assert!(same_value(inc, finish(sum(&data))));
    }
}
