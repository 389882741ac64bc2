//! Internet checksums (RFC 1071) and incremental updates (RFC 1624).
//!
//! Sums are kept unfolded in a `u64` so callers can add pieces (pseudo-header, header, payload)
//! before folding once.

/// The one's-complement partial sum of `data` as big-endian 16-bit words; an odd trailing byte is
/// padded with zero.
pub fn sum(data: &[u8]) -> u64 {
    // 2^16 = 1 (mod 2^16 - 1), so summing big-endian 32-bit words folds to the same one's-
    // complement value as summing 16-bit words, with half the additions. A u64 accumulator
    // cannot overflow for any packet size natsim handles.
    let mut acc: u64 = 0;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let v = u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        acc += (v >> 32) + (v & 0xFFFF_FFFF);
    }
    let rest = chunks.remainder();
    let mut words = rest.chunks_exact(2);
    for w in &mut words {
        acc += u64::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = words.remainder() {
        acc += u64::from(*last) << 8;
    }
    acc
}

/// Writes the IPv4 header checksum of the `header_len`-byte header at the start of `buf` (the
/// field is cleared first, so its old value does not count).
pub fn set_ipv4_header(buf: &mut [u8], header_len: usize) {
    buf[10..12].copy_from_slice(&[0, 0]);
    let c = finish(sum(&buf[..header_len]));
    buf[10..12].copy_from_slice(&c.to_be_bytes());
}

/// Folds a partial sum into 16 bits with end-around carry.
pub fn fold(mut acc: u64) -> u16 {
    while acc > 0xFFFF {
        acc = (acc & 0xFFFF) + (acc >> 16);
    }
    acc as u16
}

/// The checksum field value for a partial sum that excludes the checksum field itself.
pub fn finish(acc: u64) -> u16 {
    !fold(acc)
}

/// True when a region whose sum includes its checksum field verifies.
pub fn verifies(acc: u64) -> bool {
    fold(acc) == 0xFFFF
}

/// The pseudo-header partial sum for TCP/UDP over IPv4 (RFC 793, RFC 768).
pub fn pseudo_header_v4(src: &[u8], dst: &[u8], protocol: u8, l4_len: u32) -> u64 {
    sum(src) + sum(dst) + u64::from(protocol) + u64::from(l4_len)
}

/// The pseudo-header partial sum for upper layers over IPv6 (RFC 8200 §8.1).
pub fn pseudo_header_v6(src: &[u8], dst: &[u8], next_header: u8, l4_len: u32) -> u64 {
    sum(src)
        + sum(dst)
        + u64::from(next_header)
        + u64::from(l4_len >> 16)
        + u64::from(l4_len & 0xFFFF)
}

/// RFC 1624 eqn. 3: the new checksum after a 16-bit word changes from `old` to `new`.
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

    proptest::proptest! {
        #[test]
        fn word_sum_folds_like_the_rfc1071_16_bit_sum(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let mut naive: u64 = 0;
            for w in data.chunks(2) {
                naive += u64::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)]));
            }
            proptest::prop_assert_eq!(fold(sum(&data)), fold(naive));
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
