//! One-shot adversaries: spoofed replies, forged ICMP errors and injected RSTs aimed at a
//! scripted flow's NAT endpoint, found through the dataplane's flow list.

use super::*;

/// A scripted application's flow as the dataplane keys it: NIC, protocol, inside endpoint
/// (an echo's identifier as its port) and remote endpoint (port 0 for echo).
pub(super) type FlowKey = (u32, u8, SocketAddr, SocketAddr);

impl Simulator {
    /// The flow application `a` uses, while it runs.
    pub(super) fn flow_key(&self, a: AppId) -> Option<FlowKey> {
        let app = &self.apps[a.index()];
        let nic = self.hosts[app.host.index()].nic?;
        match &app.state {
            AppState::TcpClient(c) => Some((nic, 6, c.ep.local, c.ep.remote)),
            AppState::Udp(u) => Some((nic, 17, u.local, u.to())),
            AppState::Ping(p) => {
                let proto = if p.local.is_ipv4() { 1 } else { 58 };
                let local = SocketAddr::new(p.local, p.ident);
                Some((nic, proto, local, SocketAddr::new(p.to(), 0)))
            }
            _ => None,
        }
    }

    /// The NAT endpoint and transport facts of a scripted flow, looked up through the
    /// dataplane's public flow list (an adversary "watching the wire"): the application's flow
    /// while it runs, or the one it used after it ended (the dataplane may still hold it).
    pub(super) fn flow_target(
        &self,
        name: &str,
    ) -> Option<(u8, SocketAddr, SocketAddr, Option<u32>)> {
        let idx = self.results.iter().position(|r| r.name == name)?;
        let (nic, proto, local, remote) = match self.result_app[idx] {
            Some(a) => self.flow_key(a)?,
            None => self.ended_flows[idx]?,
        };
        let node = NodeId(self.nics[nic as usize].spec.node);
        let flow = self.nodes[node.index()].dp.flows().into_iter().find(|f| {
            f.live && f.flow.nic == NicId(nic) && f.flow.inside == local && f.flow.remote == remote
        })?;
        let server_seq = self.remote_by_addr.get(&remote.ip()).and_then(|&sh| {
            let key = SocketKey {
                host: sh,
                proto,
                port: remote.port(),
                remote: flow.flow.nat,
            };
            match &self.apps[self.conns.get(&key)?.index()].state {
                AppState::TcpServer(s) => Some(s.ep.next_seq()),
                _ => None,
            }
        });
        Some((proto, flow.flow.nat, remote, server_seq))
    }

    pub(super) fn one_shot_attack(&mut self, h: HostId, kind: &AppKind) -> u32 {
        let AppKind::Attack(attack) = kind else {
            return 0;
        };
        let name = match attack {
            Attack::SpoofReply { flow, .. }
            | Attack::ForgedIcmp { flow, .. }
            | Attack::RstInject { flow, .. } => flow,
            _ => return 0,
        };
        let Some((proto, nat, remote, server_seq)) = self.flow_target(name) else {
            return 0;
        };
        // An echo flow can be quoted by a forged error; the other attacks need ports.
        if !matches!(proto, 6 | 17) && !matches!(attack, Attack::ForgedIcmp { .. }) {
            return 0;
        }
        let seq = server_seq.unwrap_or(1);
        let other_ip = self.hosts[h.index()]
            .addresses
            .iter()
            .copied()
            .find(|a| *a != remote.ip() && a.is_ipv4() == remote.is_ipv4())
            .unwrap_or(remote.ip());
        let mut pkts = Vec::new();
        match attack {
            Attack::SpoofReply { vary, count, .. } => {
                let (src, dst) = match vary {
                    Vary::SrcPort => (
                        SocketAddr::new(remote.ip(), remote.port().wrapping_add(1)),
                        nat,
                    ),
                    Vary::SrcAddr => (SocketAddr::new(other_ip, remote.port()), nat),
                    Vary::DstPort => (
                        remote,
                        SocketAddr::new(nat.ip(), nat.port().wrapping_add(1)),
                    ),
                    Vary::Nothing => (remote, nat),
                };
                for _ in 0..*count {
                    let mut b = Vec::new();
                    if proto == 6 {
                        build_tcp(&mut b, src, dst, ACK, seq, 0, 0);
                    } else {
                        build_udp_len(&mut b, src, dst, 16);
                    }
                    pkts.push(b);
                }
            }
            Attack::ForgedIcmp {
                bad_checksum,
                wrong_port,
                outer_destination,
                type_code,
                ..
            } => {
                let to = outer_destination.unwrap_or(nat.ip());
                if to.is_ipv4() != nat.is_ipv4() {
                    return 0;
                }
                let qsrc = if *wrong_port {
                    SocketAddr::new(nat.ip(), nat.port().wrapping_add(1))
                } else {
                    nat
                };
                let mut quoted = Vec::new();
                match proto {
                    6 => build_tcp(&mut quoted, qsrc, remote, ACK, 1, 1, 0),
                    17 => build_udp_len(&mut quoted, qsrc, remote, 16),
                    // An echo flow: the quoted echo request carries the NAT identifier.
                    _ => build_echo(&mut quoted, qsrc.ip(), remote.ip(), true, qsrc.port(), 1, 8),
                }
                let version = if nat.is_ipv4() {
                    crate::wire::IpVersion::V4
                } else {
                    crate::wire::IpVersion::V6
                };
                let default = crate::wire::icmp::ErrorMessage::HostUnreachable.type_code(version);
                let (ty, code) = type_code.unwrap_or(default);
                let mut b = Vec::new();
                build_icmp_error(&mut b, remote.ip(), to, ty, code, &quoted);
                if *bad_checksum {
                    let l4 = if nat.is_ipv4() { 20 } else { 40 };
                    b[l4 + 2] ^= 0x55;
                }
                pkts.push(b);
            }
            Attack::RstInject {
                from_remote,
                seq_offset,
                ..
            } => {
                let seq = (i64::from(seq) + seq_offset).rem_euclid(1 << 32) as u32;
                let src = if *from_remote {
                    remote
                } else {
                    SocketAddr::new(remote.ip(), remote.port().wrapping_add(7))
                };
                let mut b = Vec::new();
                build_tcp(&mut b, src, nat, RST, seq, 0, 0);
                pkts.push(b);
            }
            _ => {}
        }
        let n = pkts.len() as u32;
        for b in pkts {
            self.host_send(h, b);
        }
        n
    }
}
