//! Model-based property test: the gateway against a small, obviously correct reference model
//! of behaviour §4/§5 (IPv4; 2–3 NICs in 1–2 networks, 1–2 NAT IPs, P in 1..=8, every
//! `limit_scope`, several profiles).
//!
//! The model is a plain `Vec` of flows and a `Vec` of endpoint mappings, searched linearly.
//! Port choice is predicted exactly: the endpoint's mapped port when it is free in the scope,
//! else the first free port from [`port_start_offset`] (the gateway's documented start point),
//! wrapping within the usable ports. Every verdict, every translated address and port, the full
//! flow list (live and held, with states and deadlines) and `poll_timeout` are compared after
//! every operation.
//!
//! Not modelled here (covered by the rule tests): fragments, hairpinning, IPv6, ICMP answers.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use common::parsed;
use natsim::nat::*;
use natsim::time::Instant;
use natsim::wire::tcp_flags::*;
use natsim::wire::{IcmpRepr, PacketRepr, TransportRepr};
use proptest::prelude::*;

const TCP: u8 = 6;
const UDP: u8 = 17;
const ICMP: u8 = 1;

const REMOTES: [[u8; 4]; 3] = [[198, 51, 100, 1], [198, 51, 100, 2], [198, 51, 100, 3]];
const RPORTS: [u16; 2] = [53, 80];
const IPORTS: [u16; 3] = [40000, 40001, 40002];
const NAT_IPS: [[u8; 4]; 2] = [[203, 0, 113, 1], [203, 0, 113, 2]];
const PROFILES: [&str; 5] = ["rfc", "dpservice", "gcp", "linux", "azure"];

fn v4(a: [u8; 4]) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(a))
}

// ----- the reference model -------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Class {
    TcpEst,
    TcpTrans,
    TcpReset,
    /// Reset before any reply under `tcp_unanswered_rst_ends_flow`: ends at once.
    TcpResetUnanswered,
    Udp,
    UdpStream,
    Icmp,
    HoldFin,
    HoldRst,
    HoldUdp,
    HoldIcmp,
}

impl Class {
    fn is_hold(self) -> bool {
        matches!(
            self,
            Class::HoldFin | Class::HoldRst | Class::HoldUdp | Class::HoldIcmp
        )
    }
}

// TCP state bits, as RFC 6146 / behaviour §4 describe them.
const OUT_SYN: u8 = 1; // a SYN or SYN-ACK came from outside
const EST: u8 = 2;
const FIN_OUT: u8 = 4;
const FIN_IN: u8 = 8;
const RSTB: u8 = 16;

fn closed(s: u8) -> bool {
    s & RSTB != 0 || (s & FIN_OUT != 0 && s & FIN_IN != 0)
}

fn tcp_next(s: u8, outbound: bool, flags: u8, rst_recovery: bool) -> u8 {
    if flags & RST != 0 {
        return s | RSTB;
    }
    if rst_recovery && s & RSTB != 0 {
        // behaviour §4: any later non-RST packet puts a reset flow back to ESTABLISHED.
        let fin = match (flags & FIN != 0, outbound) {
            (false, _) => 0,
            (true, true) => FIN_OUT,
            (true, false) => FIN_IN,
        };
        return OUT_SYN | EST | fin;
    }
    if flags & SYN != 0 {
        if outbound && flags & ACK == 0 && closed(s) {
            return 0;
        }
        return if outbound { s } else { s | OUT_SYN };
    }
    let mut s = s;
    if outbound && flags & ACK != 0 && s & OUT_SYN != 0 {
        s |= EST;
    }
    if flags & FIN != 0 {
        s |= if outbound { FIN_OUT } else { FIN_IN };
    }
    s
}

fn tcp_class(s: u8) -> Class {
    if s & RSTB != 0 {
        Class::TcpReset
    } else if s & EST == 0 || closed(s) {
        Class::TcpTrans
    } else {
        Class::TcpEst
    }
}

fn tcp_name(s: u8) -> &'static str {
    if s & RSTB != 0 {
        "reset"
    } else if closed(s) {
        "closed"
    } else if s & (FIN_IN | FIN_OUT) != 0 {
        "closing"
    } else if s & EST != 0 {
        "established"
    } else if s & OUT_SYN != 0 {
        "syn_received"
    } else {
        "syn_sent"
    }
}

#[derive(Clone, Debug)]
struct MFlow {
    nic: u32,
    proto: u8,
    inside: [u8; 4],
    iport: u16,
    remote: [u8; 4],
    rport: u16,
    nat_ip: [u8; 4],
    nat_port: u16,
    last_ms: u64,
    state: u8,
    /// When the TCP flow closed (second FIN or RST): its port hold counts from here.
    closed_ms: u64,
    saw_inbound: bool,
    /// TCP: a non-RST packet came back from outside.
    seen_reply: bool,
    class: Class,
    live: bool,
}

#[derive(Clone, Debug)]
struct Mapping {
    nic: u32,
    proto: u8,
    inside: [u8; 4],
    iport: u16,
    nat_port: u16,
    refs: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct MBlock {
    nat_ip: [u8; 4],
    start: u16,
    len: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Expect {
    Out {
        src: SocketAddr,
    },
    In {
        nic: u32,
        dst: SocketAddr,
    },
    /// An ICMP error delivered to `nic`: outer destination and the quoted source restored.
    ErrIn {
        nic: u32,
        dst: IpAddr,
        quoted_src: SocketAddr,
    },
    EchoReply,
    Drop(DropReason),
    /// Operations without a verdict (time, blocks).
    NoPacket,
}

struct Model {
    profile: Profile,
    seed: u64,
    ports: u32,
    max_flows: u32,
    now_ms: u64,
    flows: Vec<MFlow>,
    mappings: Vec<Mapping>,
    blocks: Vec<Option<MBlock>>,
    addrs: Vec<[u8; 4]>,
    nat_ips: Vec<[u8; 4]>,
}

impl Model {
    fn timeout_ms(&self, c: Class) -> u64 {
        let p = &self.profile;
        match c {
            Class::TcpEst => p.timeout_tcp_established_ms,
            Class::TcpTrans => p.timeout_tcp_transitory_ms,
            Class::TcpReset => p
                .timeout_tcp_reset_ms
                .unwrap_or(p.timeout_tcp_transitory_ms),
            Class::TcpResetUnanswered => 0,
            Class::Udp => p.timeout_udp_ms,
            Class::UdpStream => p.timeout_udp_stream_ms,
            Class::Icmp => p.timeout_icmp_ms,
            Class::HoldFin => p.hold_tcp_fin_ms,
            Class::HoldRst => p.hold_tcp_rst_ms,
            Class::HoldUdp => p.hold_udp_ms,
            Class::HoldIcmp => p.hold_icmp_ms,
        }
    }

    fn deadline_ms(&self, f: &MFlow) -> u64 {
        let d = f.last_ms + self.timeout_ms(f.class);
        let scan = self.profile.aging_scan_period_ms;
        if scan > 0 && !f.class.is_hold() {
            d.div_ceil(scan) * scan
        } else {
            d
        }
    }

    fn usable(&self) -> u32 {
        if self.profile.last_port_unusable && self.ports > 1 {
            self.ports - 1
        } else {
            self.ports
        }
    }

    fn free_flow(&mut self, i: usize) {
        let f = self.flows.remove(i);
        let m = self
            .mappings
            .iter()
            .position(|m| {
                m.nic == f.nic && m.proto == f.proto && m.inside == f.inside && m.iport == f.iport
            })
            .expect("every flow holds a mapping reference");
        self.mappings[m].refs -= 1;
        if self.mappings[m].refs == 0 {
            self.mappings.remove(m);
        }
    }

    /// Expires everything due at `now`, earliest deadline first.
    fn advance(&mut self, now_ms: u64) {
        self.now_ms = self.now_ms.max(now_ms);
        loop {
            let due = (0..self.flows.len())
                .map(|i| (self.deadline_ms(&self.flows[i]), i))
                .filter(|&(d, _)| d <= self.now_ms)
                .min();
            let Some((d, i)) = due else { break };
            let f = &self.flows[i];
            if f.class.is_hold() {
                self.free_flow(i);
                continue;
            }
            let hold = match f.proto {
                TCP if f.state & RSTB != 0 => Some(Class::HoldRst),
                TCP if closed(f.state) => Some(Class::HoldFin),
                TCP => None,
                UDP => Some(Class::HoldUdp),
                _ => Some(Class::HoldIcmp),
            }
            .filter(|&c| self.timeout_ms(c) > 0);
            // behaviour §5: a TCP hold counts from the close, alongside the transitory timer; UDP
            // and ICMP holds from expiry.
            let from = if f.proto == TCP { f.closed_ms } else { d };
            match hold.filter(|&c| from + self.timeout_ms(c) > d) {
                Some(c) => {
                    let f = &mut self.flows[i];
                    f.live = false;
                    f.class = c;
                    f.last_ms = from;
                }
                None => self.free_flow(i),
            }
        }
    }

    fn find_out(
        &self,
        nic: u32,
        proto: u8,
        iport: u16,
        remote: [u8; 4],
        rport: u16,
    ) -> Option<usize> {
        let inside = self.addrs[nic as usize];
        self.flows.iter().position(|f| {
            f.live
                && f.nic == nic
                && f.proto == proto
                && f.inside == inside
                && f.iport == iport
                && f.remote == remote
                && f.rport == rport
        })
    }

    fn find_in(
        &self,
        nat_ip: [u8; 4],
        nat_port: u16,
        remote: [u8; 4],
        rport: u16,
        proto: u8,
    ) -> Option<usize> {
        self.flows.iter().position(|f| {
            f.live
                && f.nat_ip == nat_ip
                && f.nat_port == nat_port
                && f.remote == remote
                && f.rport == rport
                && f.proto == proto
        })
    }

    fn refresh(&mut self, i: usize, outbound: bool, flags: u8) {
        let now = self.now_ms;
        let inbound_refresh = self.profile.udp_inbound_refresh;
        let recovery = self.profile.tcp_rst_recovery;
        let unanswered_rst_ends = self.profile.tcp_unanswered_rst_ends_flow;
        let f = &mut self.flows[i];
        let class = match f.proto {
            TCP => {
                let was_closed = closed(f.state);
                let unanswered = !f.seen_reply;
                f.state = tcp_next(f.state, outbound, flags, recovery);
                if f.state == 0 {
                    f.seen_reply = false;
                } else if !outbound && flags & RST == 0 {
                    f.seen_reply = true;
                }
                if closed(f.state) && !was_closed {
                    f.closed_ms = now;
                }
                match tcp_class(f.state) {
                    // behaviour §4 (`linux`): an RST before any reply ends the flow at once.
                    Class::TcpReset if flags & RST != 0 && unanswered && unanswered_rst_ends => {
                        Class::TcpResetUnanswered
                    }
                    c => c,
                }
            }
            UDP => {
                if !outbound {
                    f.saw_inbound = true;
                    if !inbound_refresh {
                        return;
                    }
                }
                if f.saw_inbound {
                    Class::UdpStream
                } else {
                    Class::Udp
                }
            }
            _ => {
                if !outbound {
                    return;
                }
                Class::Icmp
            }
        };
        f.class = class;
        f.last_ms = now;
    }

    /// behaviour §4 port choice.
    fn allocate(
        &mut self,
        nic: u32,
        proto: u8,
        iport: u16,
        remote: [u8; 4],
        rport: u16,
        b: MBlock,
    ) -> Option<u16> {
        let inside = self.addrs[nic as usize];
        let usable = self.usable();
        let scope = self.profile.limit_scope;
        let mapping = self.mappings.iter().position(|m| {
            m.nic == nic && m.proto == proto && m.inside == inside && m.iport == iport
        });
        if scope == LimitScope::Nic
            && let Some(m) = mapping
        {
            self.mappings[m].refs += 1;
            return Some(self.mappings[m].nat_port);
        }
        let used: Vec<u16> = match scope {
            LimitScope::Nic => self
                .mappings
                .iter()
                .filter(|m| m.nic == nic && m.proto == proto)
                .map(|m| m.nat_port)
                .collect(),
            _ => self
                .flows
                .iter()
                .filter(|f| {
                    f.nic == nic
                        && f.proto == proto
                        && f.remote == remote
                        && (scope == LimitScope::RemoteIp || f.rport == rport)
                })
                .map(|f| f.nat_port)
                .collect(),
        };
        if used.len() as u32 >= usable {
            return None;
        }
        let in_block = |p: u16| p >= b.start && u32::from(p - b.start) < usable;
        let preferred = mapping
            .map(|m| self.mappings[m].nat_port)
            .filter(|&p| in_block(p) && !used.contains(&p));
        let port = preferred.or_else(|| {
            let start = port_start_offset(self.seed, NicId(nic), proto, v4(inside), iport, usable);
            (0..usable)
                .map(|i| b.start + ((u32::from(start) + i) % usable) as u16)
                .find(|p| !used.contains(p))
        })?;
        match mapping {
            Some(m) => self.mappings[m].refs += 1,
            None => self.mappings.push(Mapping {
                nic,
                proto,
                inside,
                iport,
                nat_port: port,
                refs: 1,
            }),
        }
        Some(port)
    }

    fn outbound(
        &mut self,
        nic: u32,
        proto: u8,
        iport: u16,
        remote: [u8; 4],
        rport: u16,
        flags: u8,
    ) -> Expect {
        // behaviour §4: a NIC without a block has every outbound packet dropped as no_nat_block,
        // before any other reason.
        let Some(b) = self.blocks[nic as usize] else {
            return Expect::Drop(DropReason::NoNatBlock);
        };
        if proto == ICMP && !self.profile.icmp_supported {
            return Expect::Drop(DropReason::UnsupportedIcmp);
        }
        let i = match self.find_out(nic, proto, iport, remote, rport) {
            Some(i) => {
                self.refresh(i, true, flags);
                i
            }
            None => {
                if proto == TCP {
                    let opening = flags & (SYN | ACK | FIN | RST) == SYN;
                    let pickup = self.profile.tcp_midstream_pickup
                        && flags & (SYN | FIN | RST) == 0
                        && flags & ACK != 0;
                    if !opening && !pickup {
                        return Expect::Drop(DropReason::TcpNoFlow);
                    }
                }
                // Only live flows count against the table (behaviour §4). The model's TCP packets
                // all carry the same sequence numbers, so `linux`'s TIME_WAIT takeover (a SYN
                // past the closed connection's last sequence number) never applies here.
                if self.flows.iter().filter(|f| f.live).count() as u32 >= self.max_flows {
                    return Expect::Drop(DropReason::TableFull);
                }
                let Some(port) = self.allocate(nic, proto, iport, remote, rport, b) else {
                    return Expect::Drop(DropReason::PortsExhausted);
                };
                let (state, class) = match proto {
                    TCP if flags & SYN == 0 => (OUT_SYN | EST, Class::TcpEst),
                    TCP => (0, Class::TcpTrans),
                    UDP => (0, Class::Udp),
                    _ => (0, Class::Icmp),
                };
                self.flows.push(MFlow {
                    nic,
                    proto,
                    inside: self.addrs[nic as usize],
                    iport,
                    remote,
                    rport,
                    nat_ip: b.nat_ip,
                    nat_port: port,
                    last_ms: self.now_ms,
                    state,
                    closed_ms: 0,
                    saw_inbound: false,
                    seen_reply: false,
                    class,
                    live: true,
                });
                self.flows.len() - 1
            }
        };
        let f = &self.flows[i];
        Expect::Out {
            src: SocketAddr::new(v4(f.nat_ip), f.nat_port),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn inbound(
        &mut self,
        proto: u8,
        remote: [u8; 4],
        rport: u16,
        nat_ip: [u8; 4],
        nat_port: u16,
        flags: u8,
        echo_request: bool,
    ) -> Expect {
        if !self.nat_ips.contains(&nat_ip) {
            return Expect::Drop(DropReason::Unsolicited);
        }
        if proto == ICMP {
            if !self.profile.icmp_supported {
                return Expect::Drop(DropReason::UnsupportedIcmp);
            }
            if echo_request {
                return if self.profile.echo_reply_to_nat_ip {
                    Expect::EchoReply
                } else {
                    Expect::Drop(DropReason::Unsolicited)
                };
            }
        }
        let Some(i) = self.find_in(nat_ip, nat_port, remote, rport, proto) else {
            return Expect::Drop(DropReason::Unsolicited);
        };
        self.refresh(i, false, flags);
        let f = &self.flows[i];
        Expect::In {
            nic: f.nic,
            dst: SocketAddr::new(v4(f.inside), f.iport),
        }
    }

    fn icmp_error(
        &self,
        proto: u8,
        nat_ip: [u8; 4],
        nat_port: u16,
        remote: [u8; 4],
        rport: u16,
    ) -> Expect {
        if !self.profile.icmp_supported {
            return Expect::Drop(DropReason::UnsupportedIcmp);
        }
        match self.find_in(nat_ip, nat_port, remote, rport, proto) {
            Some(i) => {
                let f = &self.flows[i];
                Expect::ErrIn {
                    nic: f.nic,
                    dst: v4(f.inside),
                    quoted_src: SocketAddr::new(v4(f.inside), f.iport),
                }
            }
            None => Expect::Drop(DropReason::IcmpErrorNoFlow),
        }
    }

    fn set_block(&mut self, nic: u32, b: Option<MBlock>) {
        if self.blocks[nic as usize] == b {
            return;
        }
        while let Some(i) = self.flows.iter().position(|f| f.nic == nic) {
            self.free_flow(i);
        }
        self.blocks[nic as usize] = b;
    }

    /// The flow list in the gateway's reporting shape, sorted.
    fn report(&self) -> Vec<(FlowView, bool, &'static str, Instant)> {
        let mut v: Vec<_> = self
            .flows
            .iter()
            .map(|f| {
                let view = FlowView {
                    nic: NicId(f.nic),
                    protocol: f.proto,
                    inside: SocketAddr::new(v4(f.inside), f.iport),
                    remote: SocketAddr::new(v4(f.remote), f.rport),
                    nat: SocketAddr::new(v4(f.nat_ip), f.nat_port),
                };
                let state = if !f.live {
                    "held"
                } else if f.proto == TCP {
                    tcp_name(f.state)
                } else {
                    "active"
                };
                (
                    view,
                    f.live,
                    state,
                    Instant::from_millis(self.deadline_ms(f)),
                )
            })
            .collect();
        v.sort();
        v
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.flows
            .iter()
            .map(|f| self.deadline_ms(f))
            .min()
            .map(Instant::from_millis)
    }
}

// ----- operations ----------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum Op {
    Out {
        nic: u8,
        proto: u8,
        iport: u8,
        remote: u8,
        rport: u8,
        flags: u8,
    },
    /// A reply to the model's `flow`-th flow (if any), optionally with one field wrong.
    Reply {
        flow: u8,
        tweak: u8,
        flags: u8,
    },
    Unsolicited {
        proto: u8,
        nat_ip: u8,
        port_off: u8,
        remote: u8,
        rport: u8,
    },
    /// An ICMP error quoting the `flow`-th flow's translated packet, maybe with a wrong field.
    IcmpError {
        flow: u8,
        tweak: u8,
        t: u8,
    },
    Advance {
        ms: u64,
        handle_timeout: bool,
    },
    Block {
        nic: u8,
        variant: u8,
    },
}

fn flags_strategy() -> impl Strategy<Value = u8> {
    prop_oneof![
        4 => Just(SYN),
        2 => Just(SYN | ACK),
        4 => Just(ACK),
        2 => Just(FIN | ACK),
        1 => Just(RST),
    ]
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0u8..3, prop_oneof![Just(TCP), Just(UDP), Just(ICMP)], 0u8..3, 0u8..3, 0u8..2, flags_strategy())
            .prop_map(|(nic, proto, iport, remote, rport, flags)| Op::Out { nic, proto, iport, remote, rport, flags }),
        6 => (any::<u8>(), 0u8..8, flags_strategy()).prop_map(|(flow, tweak, flags)| Op::Reply { flow, tweak, flags }),
        1 => (prop_oneof![Just(TCP), Just(UDP), Just(ICMP)], 0u8..3, any::<u8>(), 0u8..3, 0u8..2)
            .prop_map(|(proto, nat_ip, port_off, remote, rport)| Op::Unsolicited { proto, nat_ip, port_off, remote, rport }),
        2 => (any::<u8>(), 0u8..6, 0u8..3).prop_map(|(flow, tweak, t)| Op::IcmpError { flow, tweak, t }),
        3 => (prop_oneof![
                3 => 1u64..3_000,
                1 => 20_000u64..130_000,
                1 => 200_000u64..500_000,
            ], any::<bool>())
            .prop_map(|(ms, handle_timeout)| Op::Advance { ms, handle_timeout }),
        1 => (0u8..3, 0u8..3).prop_map(|(nic, variant)| Op::Block { nic, variant }),
    ]
}

#[derive(Clone, Debug)]
struct Setup {
    profile: usize,
    scope: LimitScope,
    ports: u32,
    nics: u32,
    nets: u8,
    nat_ips: usize,
    max_flows: u32,
    seed: u64,
    quirk: bool,
}

fn setup_strategy() -> impl Strategy<Value = Setup> {
    (
        0..PROFILES.len(),
        prop_oneof![
            Just(LimitScope::RemoteIp),
            Just(LimitScope::RemoteEndpoint),
            Just(LimitScope::Nic)
        ],
        prop_oneof![Just(1u32), Just(2), Just(4), Just(8)],
        2u32..=3,
        1u8..=2,
        1usize..=2,
        prop_oneof![Just(6u32), Just(1000)],
        any::<u64>(),
        prop::bool::weighted(0.2),
    )
        .prop_map(
            |(profile, scope, ports, nics, nets, nat_ips, max_flows, seed, quirk)| Setup {
                profile,
                scope,
                ports,
                nics,
                nets,
                nat_ips,
                max_flows,
                seed,
                quirk,
            },
        )
}

/// The block NIC `nic` gets in `variant` 1 or 2 (0 = none). Slots never collide across NICs.
fn block_for(s: &Setup, nic: u32, variant: u8) -> Option<MBlock> {
    if variant == 0 {
        return None;
    }
    let slot = nic + 3 * u32::from(variant - 1);
    Some(MBlock {
        nat_ip: NAT_IPS[(nic as usize + usize::from(variant - 1)) % s.nat_ips],
        start: (1024 + slot * s.ports) as u16,
        len: s.ports,
    })
}

fn to_block(b: MBlock) -> Block {
    Block {
        nat_ip: v4(b.nat_ip),
        port: b.start,
        end_port: (u32::from(b.start) + b.len - 1) as u16,
    }
}

fn packet(
    proto: u8,
    src: (IpAddr, u16),
    dst: (IpAddr, u16),
    flags: u8,
    echo_reply: bool,
) -> Vec<u8> {
    match proto {
        TCP => PacketRepr::tcp(src, dst, flags, 7, 9, b"x").emit(),
        UDP => PacketRepr::udp(src, dst, b"x").emit(),
        _ if echo_reply => PacketRepr::echo_reply(src.0, dst.0, dst.1, 1, b"x").emit(),
        _ => PacketRepr::echo_request(src.0, dst.0, src.1, 1, b"x").emit(),
    }
}

/// What the gateway did, in the model's terms.
fn observe(v: Verdict, pkt: &[u8]) -> Expect {
    match v {
        Verdict::Drop(r) => Expect::Drop(r),
        Verdict::Respond(Egress::Outside) => {
            let p = parsed(pkt);
            assert!(matches!(
                p.transport,
                TransportRepr::Icmp(IcmpRepr::EchoReply { .. })
            ));
            Expect::EchoReply
        }
        Verdict::Forward(Egress::Outside) => {
            let p = parsed(pkt);
            let (sport, _) = common::ports(&p);
            Expect::Out {
                src: SocketAddr::new(p.ip.src, sport),
            }
        }
        Verdict::Forward(Egress::Nic(n)) => {
            let p = parsed(pkt);
            match &p.transport {
                TransportRepr::Icmp(IcmpRepr::Error { quoted, .. }) => {
                    let q = PacketRepr::parse_lax(quoted).expect("quote parses");
                    Expect::ErrIn {
                        nic: n.0,
                        dst: p.ip.dst,
                        quoted_src: SocketAddr::new(q.ip.src, common::ports(&q).0),
                    }
                }
                _ => {
                    let (s, d) = common::ports(&p);
                    let port = if matches!(p.transport, TransportRepr::Icmp(_)) {
                        s
                    } else {
                        d
                    };
                    Expect::In {
                        nic: n.0,
                        dst: SocketAddr::new(p.ip.dst, port),
                    }
                }
            }
        }
        other => panic!("unexpected verdict {other:?}"),
    }
}

/// How often each outcome was seen (by `Debug` name), to check the generator's reach.
type Stats = std::collections::BTreeMap<String, u64>;

fn run(setup: &Setup, ops: &[Op], stats: &mut Stats) -> Result<(), TestCaseError> {
    let mut profile = Profile::named(PROFILES[setup.profile]).expect("profile");
    profile.limit_scope = setup.scope;
    profile.last_port_unusable = setup.quirk;
    let nets: Vec<NetworkConfig> = (0..setup.nets)
        .map(|i| NetworkConfig {
            name: format!("net{i}"),
            local_prefixes: vec!["10.0.0.0/24".parse().expect("prefix")],
        })
        .collect();
    let mut g = Gateway::new(GatewayConfig {
        profile: profile.clone(),
        ports_per_nic: setup.ports,
        networks: nets,
        nat_ips: NAT_IPS[..setup.nat_ips].iter().map(|&a| v4(a)).collect(),
        max_flows: setup.max_flows,
        seed: setup.seed,
        ..Default::default()
    })
    .expect("config");
    let addrs: Vec<[u8; 4]> = (0..setup.nics)
        .map(|k| [10, 0, 0, 1 + (k / u32::from(setup.nets)) as u8])
        .collect();
    let mut m = Model {
        profile,
        seed: setup.seed,
        ports: setup.ports,
        max_flows: setup.max_flows,
        now_ms: 0,
        flows: Vec::new(),
        mappings: Vec::new(),
        blocks: vec![None; setup.nics as usize],
        addrs: addrs.clone(),
        nat_ips: NAT_IPS[..setup.nat_ips].to_vec(),
    };
    for k in 0..setup.nics {
        g.add_nic(
            NicId(k),
            NicConfig {
                network: NetworkId((k % u32::from(setup.nets)) as u16),
                addresses: vec![v4(addrs[k as usize])],
                name: format!("nic{k}"),
            },
        )
        .expect("nic");
        let b = block_for(setup, k, 1).expect("block");
        g.assign_block(Instant::ZERO, NicId(k), to_block(b))
            .expect("disjoint blocks");
        m.set_block(k, Some(b));
    }
    let mut now_ms = 0u64;
    for (step, op) in ops.iter().enumerate() {
        let t = Instant::from_millis(now_ms);
        let mut synced = true;
        let (want, got) = match *op {
            Op::Out {
                nic,
                proto,
                iport,
                remote,
                rport,
                flags,
            } => {
                let nic = u32::from(nic) % setup.nics;
                let inside = addrs[nic as usize];
                let (iport, remote) = (IPORTS[usize::from(iport)], REMOTES[usize::from(remote)]);
                let rport = if proto == ICMP {
                    0
                } else {
                    RPORTS[usize::from(rport)]
                };
                m.advance(now_ms);
                let want = m.outbound(nic, proto, iport, remote, rport, flags);
                let mut pkt = packet(
                    proto,
                    (v4(inside), iport),
                    (v4(remote), rport),
                    flags,
                    false,
                );
                let v = g.process(t, Ingress::Inside(NicId(nic)), &mut pkt);
                (want, observe(v, &pkt))
            }
            Op::Reply { flow, tweak, flags } => {
                m.advance(now_ms);
                if m.flows.is_empty() {
                    continue;
                }
                let f = m.flows[usize::from(flow) % m.flows.len()].clone();
                let (mut remote, mut rport, mut nat_ip, mut nat_port) =
                    (f.remote, f.rport, f.nat_ip, f.nat_port);
                match tweak {
                    0 if f.proto != ICMP => rport ^= 1,
                    1 => remote = REMOTES[(usize::from(remote[3]) + 1) % 3],
                    2 => nat_port = nat_port.wrapping_add(1),
                    3 => nat_ip = NAT_IPS[(usize::from(nat_ip[3])) % 2],
                    _ => {}
                }
                let want = m.inbound(f.proto, remote, rport, nat_ip, nat_port, flags, false);
                let mut pkt = packet(
                    f.proto,
                    (v4(remote), rport),
                    (v4(nat_ip), nat_port),
                    flags,
                    true,
                );
                let v = g.process(t, Ingress::Outside, &mut pkt);
                (want, observe(v, &pkt))
            }
            Op::Unsolicited {
                proto,
                nat_ip,
                port_off,
                remote,
                rport,
            } => {
                let nat_ip = if nat_ip == 2 {
                    [203, 0, 113, 99]
                } else {
                    NAT_IPS[usize::from(nat_ip)]
                };
                let nat_port = 1024 + u16::from(port_off) % 32;
                let remote = REMOTES[usize::from(remote)];
                let rport = if proto == ICMP {
                    0
                } else {
                    RPORTS[usize::from(rport)]
                };
                m.advance(now_ms);
                let want = m.inbound(proto, remote, rport, nat_ip, nat_port, SYN, proto == ICMP);
                let mut pkt = packet(
                    proto,
                    (v4(remote), rport),
                    (v4(nat_ip), nat_port),
                    SYN,
                    false,
                );
                let v = g.process(t, Ingress::Outside, &mut pkt);
                (want, observe(v, &pkt))
            }
            Op::IcmpError { flow, tweak, t: ty } => {
                m.advance(now_ms);
                if m.flows.is_empty() {
                    continue;
                }
                let f = m.flows[usize::from(flow) % m.flows.len()].clone();
                let (mut rport, mut nat_port) = (f.rport, f.nat_port);
                match tweak {
                    0 if f.proto != ICMP => rport ^= 1,
                    1 => nat_port = nat_port.wrapping_add(1),
                    _ => {}
                }
                let want = m.icmp_error(f.proto, f.nat_ip, nat_port, f.remote, rport);
                let quoted = packet(
                    f.proto,
                    (v4(f.nat_ip), nat_port),
                    (v4(f.remote), rport),
                    SYN,
                    false,
                );
                let (ty, code) = [(3, 3), (11, 0), (12, 0)][usize::from(ty)];
                let mut pkt =
                    PacketRepr::icmp_error(v4(f.remote), v4(f.nat_ip), ty, code, &quoted).emit();
                let v = g.process(t, Ingress::Outside, &mut pkt);
                (want, observe(v, &pkt))
            }
            Op::Advance { ms, handle_timeout } => {
                now_ms += ms;
                if handle_timeout {
                    g.handle_timeout(Instant::from_millis(now_ms));
                    m.advance(now_ms);
                } else {
                    synced = false;
                }
                (Expect::NoPacket, Expect::NoPacket)
            }
            Op::Block { nic, variant } => {
                let nic = u32::from(nic) % setup.nics;
                m.advance(now_ms);
                let b = block_for(setup, nic, variant);
                match b {
                    Some(b) => g
                        .assign_block(t, NicId(nic), to_block(b))
                        .expect("disjoint"),
                    None => {
                        g.release_block(t, NicId(nic), Family::V4);
                    }
                }
                m.set_block(nic, b);
                (Expect::NoPacket, Expect::NoPacket)
            }
        };
        prop_assert_eq!(&got, &want, "step {}: {:?} at {} ms", step, op, now_ms);
        let name = match &got {
            Expect::Drop(r) => format!("drop.{}", r.name()),
            other => format!("{other:?}")
                .split([' ', '{'])
                .next()
                .unwrap_or("")
                .to_string(),
        };
        *stats.entry(name).or_default() += 1;
        if m.flows.iter().any(|f| !f.live) {
            *stats.entry("held".into()).or_default() += 1;
        }
        if synced {
            let flows: Vec<_> = {
                let mut v: Vec<_> = g
                    .flows()
                    .into_iter()
                    .map(|f| (f.flow, f.live, f.state, f.deadline))
                    .collect();
                v.sort();
                v
            };
            prop_assert_eq!(flows, m.report(), "flows after step {}: {:?}", step, op);
            prop_assert_eq!(
                g.poll_timeout(),
                m.next_deadline(),
                "poll_timeout after step {}",
                step
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn gateway_matches_the_reference_model(
        setup in setup_strategy(),
        ops in proptest::collection::vec(op_strategy(), 1..60),
    ) {
        run(&setup, &ops, &mut Stats::new())?;
    }
}

#[test]
fn the_model_test_reaches_every_outcome() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, TestRng, TestRunner};
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::deterministic_rng(proptest::test_runner::RngAlgorithm::ChaCha),
    );
    let strategy = (
        setup_strategy(),
        proptest::collection::vec(op_strategy(), 1..60),
    );
    let mut stats = Stats::new();
    for _ in 0..256 {
        let (setup, ops) = strategy.new_tree(&mut runner).expect("generates").current();
        run(&setup, &ops, &mut stats).expect("model agrees");
    }
    for outcome in [
        "Out",
        "In",
        "ErrIn",
        "EchoReply",
        "held",
        "drop.unsolicited",
        "drop.ports_exhausted",
        "drop.table_full",
        "drop.no_nat_block",
        "drop.tcp_no_flow",
        "drop.icmp_error_no_flow",
        "drop.unsupported_icmp",
    ] {
        assert!(
            stats.get(outcome).copied().unwrap_or(0) > 0,
            "{outcome} never seen: {stats:?}"
        );
    }
}
