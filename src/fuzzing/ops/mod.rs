//! Operation-sequence fuzzing of the gateway (quinn-proto style): a typed [`Op`] vocabulary
//! decoded from bytes (this file), a [`Driver`] that applies each operation to a gateway through
//! the oracle's [`Checker`](super::oracle::Checker) (`driver.rs`), and `encode` for writing seeds.
//!
//! The vocabulary is small on purpose (a handful of hosts, ports and timer steps that sit on
//! the profiles' edges) so that random sequences collide: replies find their flows, ports run
//! out, blocks move under live flows, timers fire mid-conversation.

mod driver;

use std::net::{Ipv4Addr, Ipv6Addr};

pub use driver::{Driver, nic_addr};

use super::bytes::{ByteReader, put_short_bytes};
use crate::wire::proto;

/// Number of NICs the driver manages (ids 0..3); operations name NIC 3 to reach the "unknown
/// NIC" paths.
pub const NICS: u32 = 3;

/// IPv4 NAT addresses (blocks are assigned on both).
pub const NAT_V4: [Ipv4Addr; 2] = [Ipv4Addr::new(203, 0, 113, 1), Ipv4Addr::new(203, 0, 113, 2)];
/// IPv6 NAT addresses.
pub const NAT_V6: [Ipv6Addr; 2] = [
    Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1),
    Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2),
];

/// IPv4 destinations: two remotes, a third remote, both NAT IPs (hairpin), and a local address
/// (pass-through).
pub const REMOTES_V4: [Ipv4Addr; 6] = [
    Ipv4Addr::new(198, 51, 100, 1),
    Ipv4Addr::new(198, 51, 100, 2),
    Ipv4Addr::new(192, 0, 2, 7),
    NAT_V4[0],
    NAT_V4[1],
    Ipv4Addr::new(10, 0, 0, 2),
];
/// IPv6 destinations, in the same roles as [`REMOTES_V4`] (the third is in `64:ff9b::/96`).
pub const REMOTES_V6: [Ipv6Addr; 6] = [
    Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 1),
    Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 2),
    Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0xc633, 0x6401),
    NAT_V6[0],
    NAT_V6[1],
    Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2),
];
/// Remote ports (1024 and 1025 are NAT ports, for hairpins).
pub const REMOTE_PORTS: [u16; 8] = [53, 80, 443, 1024, 1025, 5000, 0, 65535];
/// Inside ports and ICMP identifiers.
pub const INSIDE_PORTS: [u16; 8] = [1000, 2000, 40000, 1024, 5353, 0, 65535, 7];
/// Clock steps in milliseconds, on and around the profiles' timers.
pub const STEPS_MS: [u64; 18] = [
    1, 999, 1000, 4999, 5000, 16_000, 29_999, 30_000, 30_001, 60_000, 65_000, 120_000, 240_000,
    300_000, 350_000, 1_200_000, 7_440_000, 86_400_001,
];
/// ICMPv4 error (type, code) choices; the last two are not errors natsim translates.
pub const ICMP4_ERRORS: [(u8, u8); 7] = [(3, 1), (3, 3), (3, 4), (11, 0), (12, 0), (3, 13), (5, 0)];
/// ICMPv6 error (type, code) choices; the last is not an error.
pub const ICMP6_ERRORS: [(u8, u8); 7] = [(1, 0), (1, 4), (2, 0), (3, 0), (4, 0), (1, 1), (137, 0)];

/// Gateway settings of a `gateway_ops` run, from two config bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GatewayOpsConfig {
    /// Profile byte ([`profile_from_byte`]).
    pub profile: u8,
    /// P: 1, 2, 4 or 8 (small so that ports run out).
    pub ports_per_nic: u16,
}

impl GatewayOpsConfig {
    /// Reads the two config bytes: the profile byte, then P = 2^(b & 3).
    pub fn decode(r: &mut ByteReader<'_>) -> Self {
        let profile = r.u8();
        let ports_per_nic = 1 << (r.u8() & 3);
        GatewayOpsConfig {
            profile,
            ports_per_nic,
        }
    }

    /// Writes the two config bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.profile);
        out.push(self.ports_per_nic.max(1).trailing_zeros() as u8 & 3);
    }
}

/// Packet kinds of [`Op::Out`] and [`Op::FragmentsOut`] (`proto % 3`).
const PROTOS: [u8; 3] = [proto::TCP, proto::UDP, proto::ICMP];

/// One operation. Numeric fields are raw bytes, reduced modulo their vocabulary when applied, so
/// every decoded value is meaningful and seeds can name entries directly by index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// An outbound packet from a NIC's own address.
    Out {
        /// NIC (mod 4: 3 is unknown).
        nic: u8,
        /// IPv6 (bit 0).
        v6: u8,
        /// [`PROTOS`] index.
        proto: u8,
        /// [`INSIDE_PORTS`] index.
        iport: u8,
        /// [`REMOTES_V4`]/[`REMOTES_V6`] index.
        remote: u8,
        /// [`REMOTE_PORTS`] index.
        rport: u8,
        /// TCP flags.
        flags: u8,
        /// Payload length.
        len: u8,
    },
    /// A reply from a tracked flow's remote to its NAT endpoint, possibly mutated.
    Reply {
        /// Flow index into [`Gateway::flows`].
        flow: u8,
        /// TCP flags.
        flags: u8,
        /// Mutation (mod 8): 0 none, 1 remote port, 2 remote IP, 3 NAT port, 4 NAT IP,
        /// 5 protocol, 6 corrupt a byte, 7 none.
        mutate: u8,
    },
    /// A packet from a remote to a NAT IP and arbitrary port.
    Unsolicited {
        /// IPv6 (bit 0).
        v6: u8,
        /// Source index.
        src: u8,
        /// NAT IP index (mod 2).
        nat: u8,
        /// Destination port.
        port: u16,
        /// [`PROTOS`] index.
        proto: u8,
        /// TCP flags.
        flags: u8,
    },
    /// An ICMP error from outside quoting a flow's translated packet.
    IcmpErrorIn {
        /// Flow index.
        flow: u8,
        /// Error kind ([`ICMP4_ERRORS`]/[`ICMP6_ERRORS`] index; bit 4: sent by a router).
        kind: u8,
        /// Quote length (mod 5): whole, IP + 8, IP + 4, IP only, 8 bytes.
        quote: u8,
        /// Mutation (mod 8): 0 none, 1 quoted IP checksum, 2 quoted port, 3 quoted source,
        /// 4 outer ICMP checksum, 5 quoted destination, 6–7 none.
        mutate: u8,
    },
    /// An ICMP error from an inside host quoting a reply it received.
    IcmpErrorOut {
        /// Flow index.
        flow: u8,
        /// Error kind.
        kind: u8,
        /// Quote length.
        quote: u8,
        /// Mutation, as for [`Op::IcmpErrorIn`].
        mutate: u8,
    },
    /// Advance the clock.
    Advance {
        /// [`STEPS_MS`] index.
        step: u8,
        /// Also call `handle_timeout` (bit 0); else expiry is lazy.
        timeout: u8,
    },
    /// Give a NIC a block.
    AssignBlock {
        /// NIC (mod 4).
        nic: u8,
        /// IPv6 (bit 0).
        v6: u8,
        /// NAT IP index (mod 2).
        nat: u8,
        /// Slot (mod 5): slots 0–3 of size P; 4 is misaligned by P/2 (overlaps).
        slot: u8,
    },
    /// Take a NIC's block away.
    ReleaseBlock {
        /// NIC (mod 4).
        nic: u8,
        /// IPv6 (bit 0).
        v6: u8,
    },
    /// Remove a NIC, or add it back (without blocks) if it was removed.
    ToggleNic {
        /// NIC (mod 3).
        nic: u8,
    },
    /// An outbound datagram sent as fragments.
    FragmentsOut {
        /// NIC.
        nic: u8,
        /// IPv6.
        v6: u8,
        /// [`PROTOS`] index.
        proto: u8,
        /// Inside port index.
        iport: u8,
        /// Remote index.
        remote: u8,
        /// Remote port index.
        rport: u8,
        /// Fragment data size: 8 × (1 + chunk mod 16).
        chunk: u8,
        /// Delivery: bit 0 reverse, bit 1 drop the first, bit 2 drop the last, bit 3 repeat
        /// the second.
        order: u8,
    },
    /// A reply to a tracked flow sent as fragments.
    FragmentsIn {
        /// Flow index.
        flow: u8,
        /// Fragment size.
        chunk: u8,
        /// Delivery order.
        order: u8,
    },
    /// Arbitrary bytes as a packet.
    Raw {
        /// From outside (bit 0), else from NIC `nic`.
        outside: u8,
        /// NIC (mod 4).
        nic: u8,
        /// Fix checksums first (bit 0).
        fix: u8,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// A NIC sends to a tracked flow's NAT endpoint (hairpin).
    Hairpin {
        /// Sending NIC (mod 3).
        nic: u8,
        /// Flow index.
        flow: u8,
        /// Inside port index.
        iport: u8,
    },
    /// Jump to the gateway's next deadline (within a day).
    PollTimeout,
}

/// Number of opcodes.
const OPCODES: u8 = 14;

impl Op {
    /// Decodes one operation: an opcode (mod 14) and its fields.
    pub fn decode(r: &mut ByteReader<'_>) -> Op {
        match r.u8() % OPCODES {
            0 => Op::Out {
                nic: r.u8(),
                v6: r.u8(),
                proto: r.u8(),
                iport: r.u8(),
                remote: r.u8(),
                rport: r.u8(),
                flags: r.u8(),
                len: r.u8(),
            },
            1 => Op::Reply {
                flow: r.u8(),
                flags: r.u8(),
                mutate: r.u8(),
            },
            2 => Op::Unsolicited {
                v6: r.u8(),
                src: r.u8(),
                nat: r.u8(),
                port: r.u16(),
                proto: r.u8(),
                flags: r.u8(),
            },
            3 => Op::IcmpErrorIn {
                flow: r.u8(),
                kind: r.u8(),
                quote: r.u8(),
                mutate: r.u8(),
            },
            4 => Op::IcmpErrorOut {
                flow: r.u8(),
                kind: r.u8(),
                quote: r.u8(),
                mutate: r.u8(),
            },
            5 => Op::Advance {
                step: r.u8(),
                timeout: r.u8(),
            },
            6 => Op::AssignBlock {
                nic: r.u8(),
                v6: r.u8(),
                nat: r.u8(),
                slot: r.u8(),
            },
            7 => Op::ReleaseBlock {
                nic: r.u8(),
                v6: r.u8(),
            },
            8 => Op::ToggleNic { nic: r.u8() },
            9 => Op::FragmentsOut {
                nic: r.u8(),
                v6: r.u8(),
                proto: r.u8(),
                iport: r.u8(),
                remote: r.u8(),
                rport: r.u8(),
                chunk: r.u8(),
                order: r.u8(),
            },
            10 => Op::FragmentsIn {
                flow: r.u8(),
                chunk: r.u8(),
                order: r.u8(),
            },
            11 => Op::Raw {
                outside: r.u8(),
                nic: r.u8(),
                fix: r.u8(),
                bytes: r.short_bytes().to_vec(),
            },
            12 => Op::Hairpin {
                nic: r.u8(),
                flow: r.u8(),
                iport: r.u8(),
            },
            _ => Op::PollTimeout,
        }
    }

    /// Appends the operation's encoding ([`Op::decode`] reads it back).
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Op::Out {
                nic,
                v6,
                proto,
                iport,
                remote,
                rport,
                flags,
                len,
            } => out
                .extend_from_slice(&[0, *nic, *v6, *proto, *iport, *remote, *rport, *flags, *len]),
            Op::Reply {
                flow,
                flags,
                mutate,
            } => out.extend_from_slice(&[1, *flow, *flags, *mutate]),
            Op::Unsolicited {
                v6,
                src,
                nat,
                port,
                proto,
                flags,
            } => {
                out.extend_from_slice(&[2, *v6, *src, *nat]);
                out.extend_from_slice(&port.to_be_bytes());
                out.extend_from_slice(&[*proto, *flags]);
            }
            Op::IcmpErrorIn {
                flow,
                kind,
                quote,
                mutate,
            } => out.extend_from_slice(&[3, *flow, *kind, *quote, *mutate]),
            Op::IcmpErrorOut {
                flow,
                kind,
                quote,
                mutate,
            } => out.extend_from_slice(&[4, *flow, *kind, *quote, *mutate]),
            Op::Advance { step, timeout } => out.extend_from_slice(&[5, *step, *timeout]),
            Op::AssignBlock { nic, v6, nat, slot } => {
                out.extend_from_slice(&[6, *nic, *v6, *nat, *slot])
            }
            Op::ReleaseBlock { nic, v6 } => out.extend_from_slice(&[7, *nic, *v6]),
            Op::ToggleNic { nic } => out.extend_from_slice(&[8, *nic]),
            Op::FragmentsOut {
                nic,
                v6,
                proto,
                iport,
                remote,
                rport,
                chunk,
                order,
            } => out.extend_from_slice(&[
                9, *nic, *v6, *proto, *iport, *remote, *rport, *chunk, *order,
            ]),
            Op::FragmentsIn { flow, chunk, order } => {
                out.extend_from_slice(&[10, *flow, *chunk, *order])
            }
            Op::Raw {
                outside,
                nic,
                fix,
                bytes,
            } => {
                out.extend_from_slice(&[11, *outside, *nic, *fix]);
                put_short_bytes(out, bytes);
            }
            Op::Hairpin { nic, flow, iport } => out.extend_from_slice(&[12, *nic, *flow, *iport]),
            Op::PollTimeout => out.push(13),
        }
    }
}

/// Encodes a whole `gateway_ops` input.
pub fn encode_input(config: GatewayOpsConfig, ops: &[Op]) -> Vec<u8> {
    let mut out = Vec::new();
    config.encode(&mut out);
    for op in ops {
        op.encode(&mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_kinds() -> Vec<Op> {
        vec![
            Op::Out {
                nic: 1,
                v6: 1,
                proto: 2,
                iport: 3,
                remote: 4,
                rport: 5,
                flags: 6,
                len: 7,
            },
            Op::Reply {
                flow: 1,
                flags: 2,
                mutate: 3,
            },
            Op::Unsolicited {
                v6: 0,
                src: 1,
                nat: 1,
                port: 0x1234,
                proto: 1,
                flags: 2,
            },
            Op::IcmpErrorIn {
                flow: 1,
                kind: 2,
                quote: 3,
                mutate: 4,
            },
            Op::IcmpErrorOut {
                flow: 4,
                kind: 3,
                quote: 2,
                mutate: 1,
            },
            Op::Advance {
                step: 3,
                timeout: 1,
            },
            Op::AssignBlock {
                nic: 1,
                v6: 0,
                nat: 1,
                slot: 3,
            },
            Op::ReleaseBlock { nic: 2, v6: 1 },
            Op::ToggleNic { nic: 1 },
            Op::FragmentsOut {
                nic: 0,
                v6: 1,
                proto: 1,
                iport: 2,
                remote: 0,
                rport: 1,
                chunk: 2,
                order: 9,
            },
            Op::FragmentsIn {
                flow: 0,
                chunk: 1,
                order: 1,
            },
            Op::Raw {
                outside: 1,
                nic: 0,
                fix: 1,
                bytes: vec![0x45, 0, 0, 20],
            },
            Op::Hairpin {
                nic: 2,
                flow: 1,
                iport: 0,
            },
            Op::PollTimeout,
        ]
    }

    #[test]
    fn decode_reads_what_encode_wrote() {
        let config = GatewayOpsConfig {
            profile: 0x21,
            ports_per_nic: 4,
        };
        let ops = all_kinds();
        let bytes = encode_input(config, &ops);
        let mut r = ByteReader::new(&bytes);
        assert_eq!(GatewayOpsConfig::decode(&mut r), config);
        for op in &ops {
            assert_eq!(&Op::decode(&mut r), op);
        }
        assert!(r.is_empty());
    }

    #[test]
    fn every_operation_runs_clean_on_every_profile() {
        for profile in 0..6 {
            let config = GatewayOpsConfig {
                profile,
                ports_per_nic: 2,
            };
            let mut d = Driver::new(config);
            for op in all_kinds() {
                d.run(&op);
            }
            d.finish();
        }
    }
}
