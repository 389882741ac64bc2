//! Operation-sequence fuzzing of the gateway (quinn-proto style): a typed [`Op`] vocabulary
//! decoded from bytes, a [`Driver`] that applies each operation to a gateway through the
//! [`Checker`], and `encode` for writing seeds.
//!
//! The vocabulary is small on purpose (a handful of hosts, ports and timer steps that sit on
//! the profiles' edges) so that random sequences collide: replies find their flows, ports run
//! out, blocks move under live flows, timers fire mid-conversation.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::bytes::{ByteReader, put_short_bytes};
use super::fix_checksums;
use super::oracle::{Checker, harness_config, profile_from_byte};
use crate::nat::{Block, Family, FlowInfo, Gateway, Ingress, NetworkId, NicConfig, NicId, Verdict};
use crate::time::Instant;
use crate::wire::tcp_flags::{ACK, SYN};
use crate::wire::{IpVersion, PacketRepr, TransportRepr, parse_ip, proto};

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

fn pick<T: Copy>(v: &[T], i: u8) -> T {
    v[usize::from(i) % v.len()]
}

/// The address NIC `nic` sends from (NICs 0 and 2 share 10.0.0.1 / fd00::1 in different
/// networks; NIC 1 is 10.0.0.2 / fd00::2 next to NIC 0).
pub fn nic_addr(nic: u32, v6: bool) -> IpAddr {
    let host = if nic == 1 { 2 } else { 1 };
    if v6 {
        IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, host))
    } else {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, host as u8))
    }
}

fn nic_config(nic: u32) -> NicConfig {
    NicConfig {
        network: NetworkId(if nic == 2 { 1 } else { 0 }),
        addresses: vec![nic_addr(nic, false), nic_addr(nic, true)],
        name: format!("nic-{nic}"),
    }
}

fn remote_addr(v6: bool, i: u8) -> IpAddr {
    if v6 {
        IpAddr::V6(pick(&REMOTES_V6, i))
    } else {
        IpAddr::V4(pick(&REMOTES_V4, i))
    }
}

fn nat_addr(v6: bool, i: u8) -> IpAddr {
    if v6 {
        IpAddr::V6(pick(&NAT_V6, i))
    } else {
        IpAddr::V4(pick(&NAT_V4, i))
    }
}

/// The next address (last byte + 1), to aim just beside a flow.
fn bump(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a).wrapping_add(1))),
        IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a).wrapping_add(1))),
    }
}

/// The other NAT address of the same family.
fn other_nat(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(a) if a == NAT_V4[0] => IpAddr::V4(NAT_V4[1]),
        IpAddr::V4(_) => IpAddr::V4(NAT_V4[0]),
        IpAddr::V6(a) if a == NAT_V6[0] => IpAddr::V6(NAT_V6[1]),
        IpAddr::V6(_) => IpAddr::V6(NAT_V6[0]),
    }
}

/// Builds a packet of `protocol` between two endpoints; for ICMP, `echo_request` picks the
/// message and the source port is the identifier.
fn packet(
    protocol: u8,
    src: SocketAddr,
    dst: SocketAddr,
    flags: u8,
    echo_request: bool,
    payload: &[u8],
) -> PacketRepr {
    match protocol {
        proto::TCP => PacketRepr::tcp(
            (src.ip(), src.port()),
            (dst.ip(), dst.port()),
            flags,
            0x1000,
            0x2000,
            payload,
        ),
        proto::UDP => PacketRepr::udp((src.ip(), src.port()), (dst.ip(), dst.port()), payload),
        _ if echo_request => PacketRepr::echo_request(src.ip(), dst.ip(), src.port(), 1, payload),
        _ => PacketRepr::echo_reply(src.ip(), dst.ip(), dst.port(), 1, payload),
    }
}

fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| i as u8).collect()
}

/// Applies [`Op`]s to a three-NIC gateway under the [`Checker`].
pub struct Driver {
    checker: Checker,
    p: u16,
}

impl Driver {
    /// A gateway with NICs 0–2 ([`nic_addr`]) and, per family, NIC i's block in slot i of the
    /// first NAT IP.
    pub fn new(config: GatewayOpsConfig) -> Self {
        let p = config.ports_per_nic.clamp(1, 8);
        let cfg = harness_config(profile_from_byte(config.profile), u32::from(p));
        let mut gw = match Gateway::new(cfg) {
            Ok(g) => g,
            Err(e) => panic!("ops config rejected: {e}"),
        };
        for nic in 0..NICS {
            let id = NicId(nic);
            let setup = gw.add_nic(id, nic_config(nic)).and_then(|()| {
                for v6 in [false, true] {
                    gw.assign_block(Instant::ZERO, id, Self::block(p, v6, 0, nic as u8))?;
                }
                Ok(())
            });
            if let Err(e) = setup {
                panic!("ops setup rejected: {e}");
            }
        }
        Driver {
            checker: Checker::new(gw),
            p,
        }
    }

    fn block(p: u16, v6: bool, nat: u8, slot: u8) -> Block {
        let start = match slot % 5 {
            4 => 1024 + p / 2,
            s => 1024 + u16::from(s) * p,
        };
        Block {
            nat_ip: nat_addr(v6, nat),
            port: start,
            end_port: start + p - 1,
        }
    }

    /// Runs the final check: every timer fires.
    pub fn finish(mut self) {
        if let Err(v) = self.checker.poll_timeout(u64::MAX / 2_000_000) {
            panic!("{v}");
        }
    }

    fn flow(&self, i: u8) -> Option<FlowInfo> {
        let flows = self.checker.gateway().flows();
        if flows.is_empty() {
            return None;
        }
        flows.get(usize::from(i) % flows.len()).cloned()
    }

    fn send(&mut self, ingress: Ingress, pkt: Vec<u8>) -> Verdict {
        match self.checker.packet(ingress, pkt) {
            Ok((v, _)) => v,
            Err(v) => panic!("{v}"),
        }
    }

    fn send_fragments(&mut self, ingress: Ingress, repr: &PacketRepr, chunk: u8, order: u8) {
        let mut frags = repr.emit_fragments(8 * (1 + usize::from(chunk % 16)));
        if order & 8 != 0 && frags.len() > 1 {
            let again = frags[1].clone();
            frags.push(again);
        }
        if order & 1 != 0 {
            frags.reverse();
        }
        if order & 2 != 0 && frags.len() > 1 {
            frags.remove(0);
        }
        if order & 4 != 0 && frags.len() > 1 {
            frags.pop();
        }
        for f in frags {
            self.send(ingress, f);
        }
    }

    /// Applies one operation and checks the invariants; panics on a violation.
    pub fn run(&mut self, op: &Op) {
        let result = match op {
            Op::Advance { step, timeout } => self
                .checker
                .advance(pick(&STEPS_MS, *step), timeout & 1 != 0),
            Op::PollTimeout => self.checker.poll_timeout(86_400_000),
            Op::AssignBlock { nic, v6, nat, slot } => {
                let id = NicId(u32::from(*nic % 4));
                let block = Self::block(self.p, v6 & 1 != 0, *nat, *slot);
                let fam = Family::of(&block.nat_ip);
                self.checker.control(id, Some(fam), |gw, now| {
                    let _ = gw.assign_block(now, id, block);
                })
            }
            Op::ReleaseBlock { nic, v6 } => {
                let id = NicId(u32::from(*nic % 4));
                let fam = if v6 & 1 != 0 { Family::V6 } else { Family::V4 };
                self.checker.control(id, Some(fam), |gw, now| {
                    let _ = gw.release_block(now, id, fam);
                })
            }
            Op::ToggleNic { nic } => {
                let id = NicId(u32::from(*nic) % NICS);
                self.checker.control(id, None, |gw, now| {
                    if gw.nic(id).is_some() {
                        gw.remove_nic(now, id);
                    } else {
                        let _ = gw.add_nic(id, nic_config(id.0));
                    }
                })
            }
            _ => {
                self.packet_op(op);
                Ok(())
            }
        };
        if let Err(v) = result {
            panic!("{v}");
        }
    }

    fn packet_op(&mut self, op: &Op) {
        match op {
            Op::Out {
                nic,
                v6,
                proto: p,
                iport,
                remote,
                rport,
                flags,
                len,
            } => {
                let (id, v6) = (u32::from(*nic % 4), v6 & 1 != 0);
                let src = SocketAddr::new(nic_addr(id, v6), pick(&INSIDE_PORTS, *iport));
                let dst = SocketAddr::new(remote_addr(v6, *remote), pick(&REMOTE_PORTS, *rport));
                let repr = packet(
                    pick(&PROTOS, *p),
                    src,
                    dst,
                    *flags,
                    true,
                    &payload(usize::from(*len)),
                );
                self.send(Ingress::Inside(NicId(id)), repr.emit());
            }
            Op::Reply {
                flow,
                flags,
                mutate,
            } => {
                let Some(f) = self.flow(*flow) else { return };
                let v = f.flow;
                let (mut remote, mut nat, mut p) = (v.remote, v.nat, v.protocol);
                match mutate % 8 {
                    1 => remote.set_port(remote.port().wrapping_add(1)),
                    2 => remote.set_ip(bump(remote.ip())),
                    3 => nat.set_port(nat.port().wrapping_add(1)),
                    4 => nat.set_ip(other_nat(nat.ip())),
                    5 => {
                        p = match p {
                            proto::TCP => proto::UDP,
                            proto::UDP => proto::TCP,
                            other => other,
                        }
                    }
                    _ => {}
                }
                let mut bytes = packet(p, remote, nat, *flags, false, b"answer").emit();
                if mutate % 8 == 6
                    && let Some(last) = bytes.last_mut()
                {
                    *last ^= 0x5a;
                }
                self.send(Ingress::Outside, bytes);
            }
            Op::Unsolicited {
                v6,
                src,
                nat,
                port,
                proto: p,
                flags,
            } => {
                let v6 = v6 & 1 != 0;
                let from = SocketAddr::new(remote_addr(v6, *src), 80);
                let to = SocketAddr::new(nat_addr(v6, *nat), *port);
                let repr = packet(pick(&PROTOS, *p), from, to, *flags, flags & 1 != 0, b"x");
                self.send(Ingress::Outside, repr.emit());
            }
            Op::IcmpErrorIn {
                flow,
                kind,
                quote,
                mutate,
            } => {
                let Some(f) = self.flow(*flow) else { return };
                let v = f.flow;
                // The packet the remote (or a router on the way) received from the NAT.
                let quoted = packet(v.protocol, v.nat, v.remote, SYN, true, b"quoted-data");
                let from = if kind & 0x10 != 0 {
                    bump(v.remote.ip())
                } else {
                    v.remote.ip()
                };
                let pkt = icmp_error(from, v.nat.ip(), *kind, quoted, *quote, *mutate, true);
                self.send(Ingress::Outside, pkt);
            }
            Op::IcmpErrorOut {
                flow,
                kind,
                quote,
                mutate,
            } => {
                let Some(f) = self.flow(*flow) else { return };
                let v = f.flow;
                // The reply the inside host received through the NAT.
                let quoted = packet(v.protocol, v.remote, v.inside, SYN | ACK, false, b"reply");
                let pkt = icmp_error(
                    v.inside.ip(),
                    v.remote.ip(),
                    *kind,
                    quoted,
                    *quote,
                    *mutate,
                    false,
                );
                self.send(Ingress::Inside(v.nic), pkt);
            }
            Op::FragmentsOut {
                nic,
                v6,
                proto: p,
                iport,
                remote,
                rport,
                chunk,
                order,
            } => {
                let (id, v6) = (u32::from(*nic % 4), v6 & 1 != 0);
                let src = SocketAddr::new(nic_addr(id, v6), pick(&INSIDE_PORTS, *iport));
                let dst = SocketAddr::new(remote_addr(v6, *remote), pick(&REMOTE_PORTS, *rport));
                let repr = packet(pick(&PROTOS, *p), src, dst, SYN, true, &payload(200));
                self.send_fragments(Ingress::Inside(NicId(id)), &repr, *chunk, *order);
            }
            Op::FragmentsIn { flow, chunk, order } => {
                let Some(f) = self.flow(*flow) else { return };
                let v = f.flow;
                let repr = packet(v.protocol, v.remote, v.nat, SYN | ACK, false, &payload(200));
                self.send_fragments(Ingress::Outside, &repr, *chunk, *order);
            }
            Op::Raw {
                outside,
                nic,
                fix,
                bytes,
            } => {
                let mut pkt = bytes.clone();
                if fix & 1 != 0 {
                    fix_checksums(&mut pkt);
                }
                let ingress = if outside & 1 != 0 {
                    Ingress::Outside
                } else {
                    Ingress::Inside(NicId(u32::from(*nic % 4)))
                };
                self.send(ingress, pkt);
            }
            Op::Hairpin { nic, flow, iport } => {
                let Some(f) = self.flow(*flow) else { return };
                let v = f.flow;
                let id = u32::from(*nic) % NICS;
                let v6 = v.nat.is_ipv6();
                let src = SocketAddr::new(nic_addr(id, v6), pick(&INSIDE_PORTS, *iport));
                let repr = packet(v.protocol, src, v.nat, SYN, true, b"hairpin");
                self.send(Ingress::Inside(NicId(id)), repr.emit());
            }
            _ => {}
        }
    }
}

/// Wraps `quoted` in an ICMP error of `kind` from `src` to `dst`, cut to the `quote` length and
/// with the `mutate` damage applied (see [`Op::IcmpErrorIn`]). `quoted_from_nat` says which end
/// of the quoted packet is the NAT side (its source for inbound errors, its destination for
/// outbound ones), which is the end mutations 2 and 3 move.
fn icmp_error(
    src: IpAddr,
    dst: IpAddr,
    kind: u8,
    mut quoted: PacketRepr,
    quote: u8,
    mutate: u8,
    quoted_from_nat: bool,
) -> Vec<u8> {
    let v6 = src.is_ipv6();
    let (t, c) = if v6 {
        pick(&ICMP6_ERRORS, kind & 0x0f)
    } else {
        pick(&ICMP4_ERRORS, kind & 0x0f)
    };
    let mutate = mutate % 8;
    if mutate == 3 {
        if quoted_from_nat {
            quoted.ip.src = other_nat(quoted.ip.src);
        } else {
            quoted.ip.dst = bump(quoted.ip.dst);
        }
    }
    if mutate == 5 {
        if quoted_from_nat {
            quoted.ip.dst = bump(quoted.ip.dst);
        } else {
            quoted.ip.src = bump(quoted.ip.src);
        }
    }
    let mut q = quoted.emit();
    let ihl = parse_ip(&q).map_or(20, |m| m.l4_offset);
    if mutate == 2 {
        // The NAT side's port (or the echo identifier) in the quoted transport header.
        let at = if matches!(quoted.transport, TransportRepr::Icmp(_)) {
            ihl + 4
        } else if quoted_from_nat {
            ihl
        } else {
            ihl + 2
        };
        if let Some(b) = q.get_mut(at + 1) {
            *b = b.wrapping_add(1);
        }
    }
    if mutate == 1 {
        // A bad quoted IPv4 header checksum (REQ-3); IPv6 has none, so damage the hop limit,
        // which nobody checks, to keep the case harmless there.
        let at = if quoted.ip.version() == IpVersion::V4 {
            10
        } else {
            7
        };
        if let Some(b) = q.get_mut(at) {
            *b ^= 0x01;
        }
    }
    let keep = match quote % 5 {
        0 => q.len(),
        1 => ihl + 8,
        2 => ihl + 4,
        3 => ihl,
        _ => 8,
    };
    q.truncate(keep);
    let mut pkt = PacketRepr::icmp_error(src, dst, t, c, &q).emit();
    if mutate == 4 {
        let l4 = parse_ip(&pkt).map_or(20, |m| m.l4_offset);
        if let Some(b) = pkt.get_mut(l4 + 2) {
            *b ^= 0x10;
        }
    }
    pkt
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
