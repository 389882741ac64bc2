//! The [`Driver`]: applies [`Op`]s to a three-NIC gateway under the oracle's [`Checker`].

use std::net::{IpAddr, SocketAddr};

use super::*;
use crate::fuzzing::fix_checksums;
use crate::fuzzing::oracle::{Checker, Control, harness_config, profile_from_byte};
use crate::nat::{Block, Family, FlowInfo, Ingress, NetworkId, NicConfig, NicId, Verdict};
use crate::sim::dataplane::real_gateway;
use crate::wire::tcp_flags::{ACK, SYN};
use crate::wire::{IpVersion, PacketRepr, TransportRepr, parse_ip, proto};

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
        let mut checker = match Checker::new(cfg, &real_gateway) {
            Ok(c) => c,
            Err(e) => panic!("ops config rejected: {e}"),
        };
        for nic in 0..NICS {
            let id = NicId(nic);
            let mut setup = checker.setup(Control::AddNic(id, nic_config(nic)));
            for v6 in [false, true] {
                setup = setup.and_then(|()| {
                    checker.setup(Control::AssignBlock(id, Self::block(p, v6, 0, nic as u8)))
                });
            }
            if let Err(e) = setup {
                panic!("ops setup rejected: {e}");
            }
        }
        Driver { checker, p }
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
        let flows = self.checker.dataplane().flows();
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
                self.checker.control(Control::AssignBlock(id, block))
            }
            Op::ReleaseBlock { nic, v6 } => {
                let id = NicId(u32::from(*nic % 4));
                let fam = if v6 & 1 != 0 { Family::V6 } else { Family::V4 };
                self.checker.control(Control::ReleaseBlock(id, fam))
            }
            Op::ToggleNic { nic } => {
                let id = NicId(u32::from(*nic) % NICS);
                if self.checker.has_nic(id) {
                    self.checker.control(Control::RemoveNic(id))
                } else {
                    self.checker.control(Control::AddNic(id, nic_config(id.0)))
                }
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
