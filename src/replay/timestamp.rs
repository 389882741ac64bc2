//! Capture timestamps to nanoseconds since the Unix epoch, without overflow.
//!
//! Every conversion runs in `u128`/`i128` and saturates into `u64`; the callers count a
//! saturation as an anomaly instead of panicking or wrapping.

/// Nanoseconds per second.
pub const NANOS_PER_SEC: u64 = 1_000_000_000;

/// A converted timestamp and whether it had to be clamped into `u64` nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nanos {
    /// Nanoseconds since 1970-01-01T00:00:00Z, clamped to `0..=u64::MAX`.
    pub timestamp_ns: u64,
    /// True if the exact value was below 0 or above `u64::MAX` (about year 2554).
    pub saturated: bool,
}

fn clamp(exact_ns: i128) -> Nanos {
    match u64::try_from(exact_ns) {
        Ok(timestamp_ns) => Nanos {
            timestamp_ns,
            saturated: false,
        },
        Err(_) if exact_ns < 0 => Nanos {
            timestamp_ns: 0,
            saturated: true,
        },
        Err(_) => Nanos {
            timestamp_ns: u64::MAX,
            saturated: true,
        },
    }
}

/// Classic pcap: seconds plus a fraction in micro- or nanoseconds. A fraction of a full second
/// or more is invalid but common in fuzzed files; it is carried into the seconds like libpcap
/// does when it adds the two, and the caller flags it.
pub fn pcap_to_ns(seconds: u32, fraction: u32, nanosecond_resolution: bool) -> u64 {
    let fraction_ns = if nanosecond_resolution {
        u64::from(fraction)
    } else {
        u64::from(fraction) * 1_000
    };
    // u32::MAX * 1e9 + u32::MAX * 1e3 < 2^63: cannot overflow.
    u64::from(seconds) * NANOS_PER_SEC + fraction_ns
}

/// Resolution of pcapng timestamps for one interface (`if_tsresol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TsResolution {
    /// Units of 10^-n seconds.
    Decimal(u8),
    /// Units of 2^-n seconds.
    Binary(u8),
}

impl TsResolution {
    /// Microseconds: the pcapng default when `if_tsresol` is absent.
    pub const MICROS: TsResolution = TsResolution::Decimal(6);

    /// Decodes the `if_tsresol` byte: high bit set means a power of two.
    pub fn from_option_byte(byte: u8) -> TsResolution {
        if byte & 0x80 == 0 {
            TsResolution::Decimal(byte)
        } else {
            TsResolution::Binary(byte & 0x7f)
        }
    }

    /// The `if_tsresol` byte for this resolution.
    pub fn option_byte(self) -> u8 {
        match self {
            TsResolution::Decimal(n) => n & 0x7f,
            TsResolution::Binary(n) => 0x80 | (n & 0x7f),
        }
    }
}

/// pcapng: `units` of `resolution` plus `offset_s` whole seconds (`if_tsoffset`, signed).
pub fn pcapng_to_ns(units: u64, resolution: TsResolution, offset_s: i64) -> Nanos {
    let scaled = u128::from(units) * u128::from(NANOS_PER_SEC);
    let ns: u128 = match resolution {
        // 10^n for n > 38 does not fit u128; any such unit is far below a nanosecond and
        // `units * 1e9 < 2^94 < 10^29` rounds to zero anyway.
        TsResolution::Decimal(n) => 10u128.checked_pow(u32::from(n)).map_or(0, |d| scaled / d),
        TsResolution::Binary(n) => scaled >> n.min(127),
    };
    // ns < 2^94 and |offset| * 1e9 < 2^93: the sum fits i128.
    let exact = ns as i128 + i128::from(offset_s) * i128::from(NANOS_PER_SEC);
    clamp(exact)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcap_fraction_units() {
        assert_eq!(pcap_to_ns(1, 2, false), 1_000_002_000);
        assert_eq!(pcap_to_ns(1, 2, true), 1_000_000_002);
        assert_eq!(
            pcap_to_ns(u32::MAX, u32::MAX, false),
            4_294_967_295_000_000_000 + 4_294_967_295_000
        );
    }

    #[test]
    fn pcapng_resolutions() {
        let r = |b| TsResolution::from_option_byte(b);
        assert_eq!(pcapng_to_ns(1_500_000, r(6), 0).timestamp_ns, 1_500_000_000);
        assert_eq!(pcapng_to_ns(7, r(9), 0).timestamp_ns, 7);
        assert_eq!(pcapng_to_ns(3, r(0), 0).timestamp_ns, 3_000_000_000);
        // 2^-10 s units: 1024 units = 1 s.
        assert_eq!(pcapng_to_ns(1024, r(0x8a), 0).timestamp_ns, 1_000_000_000);
        assert_eq!(pcapng_to_ns(5, r(12), 0).timestamp_ns, 0);
        assert_eq!(pcapng_to_ns(u64::MAX, r(127), 0).timestamp_ns, 0);
        assert_eq!(pcapng_to_ns(u64::MAX, r(0xff), 0).timestamp_ns, 0);
        assert_eq!(pcapng_to_ns(10, r(0), -5).timestamp_ns, 5_000_000_000);
    }

    #[test]
    fn pcapng_saturates() {
        let r = TsResolution::Decimal(0);
        assert_eq!(
            pcapng_to_ns(u64::MAX, r, 0),
            Nanos {
                timestamp_ns: u64::MAX,
                saturated: true
            }
        );
        assert_eq!(
            pcapng_to_ns(1, r, -2),
            Nanos {
                timestamp_ns: 0,
                saturated: true
            }
        );
        assert_eq!(
            pcapng_to_ns(u64::MAX, r, i64::MIN),
            Nanos {
                timestamp_ns: u64::MAX,
                saturated: true
            }
        );
    }
}
