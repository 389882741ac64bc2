//! [`KernelDataplane`]: the simulator's dataplane interface served by a real Linux NAT
//! (netfilter conntrack + nf_nat) in a network namespace natsim creates.
//!
//! The namespace is a router with one TUN device towards the outside (`out0`, default routes)
//! and one TUN device per NIC (`nicN`, a host route per NIC address), MTU 65535 so that the
//! kernel never fragments (the simulator's router and links own MTUs). natsim holds the other
//! end of every TUN: `process` writes the packet to its ingress device, which the kernel
//! forwards synchronously in the writer's context, and reads what comes out of the devices.
//! The ruleset ([`super::rules`]) is regenerated and reloaded after every control change.
//!
//! What comes out decides the verdict: nothing is a drop (a fragment that produced nothing is
//! `Buffered`, since the kernel reassembles fragments before NAT), a packet on another device is
//! `Forward` to that side (`PassThrough` between NICs), a packet back on the ingress device is
//! the kernel's own answer (`Respond`, an ICMP error). Further packets from the same write (a
//! reassembled datagram sent as fragments) go to `poll_transmit`. The kernel gives no reason
//! for a drop, so the reason is inferred from natsim's ruleset and the packet (spoofed source,
//! family without a block, bad checksum, TCP without SYN, ICMP error, else port exhaustion
//! outbound and unsolicited inbound); docs/linux.md says so.

use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::clock::WallClock;
use super::netns::{Namespace, preflight};
use super::rules::{NicRules, ruleset};
use super::settings::{KernelSettings, KernelStats, conntrack_sysctls};
use super::{KernelError, sys};
use super::{conntrack, events};
use crate::nat::counters::ProtoClass;
use crate::nat::{
    Block, ConfigError, Counters, DropReason, Egress, EndReason, Event, Family, FlowInfo, FlowView,
    GatewayConfig, Ingress, NicConfig, NicId, Verdict,
};
use crate::sim::dataplane::{Control, Inspect, Packets};
use crate::time::Instant;
use crate::wire::IpVersion;
use crate::wire::checksum::l4_ok;
use crate::wire::icmp::{self, IcmpKind};
use crate::wire::parse::{parse_ip, proto};
use crate::wire::tcp_flags as tcp_flag;
use crate::wire::tuple::Tuple;
use crate::wire::view::IcmpView;

/// The outside TUN device's name in the namespace.
pub const OUTSIDE_IFACE: &str = "out0";
/// The namespace router's own addresses (sources of the ICMP errors it sends): RFC 6598 shared
/// and ULA space, never used by natsim's scenarios.
pub const ROUTER_V4: &str = "100.127.255.254";
/// See [`ROUTER_V4`].
pub const ROUTER_V6: &str = "fd00:ffff:ffff::fe";
/// Largest packet read back from a TUN device.
const READ_BUF_BYTES: usize = 65_536;

struct KernelNic {
    config: NicConfig,
    iface: String,
    tun: File,
}

/// A real Linux NAT as a simulator dataplane (see the module documentation).
pub struct KernelDataplane {
    // Fields drop in order: the TUN descriptors before the namespace that holds their devices.
    nics: BTreeMap<NicId, KernelNic>,
    outside: File,
    ns: Namespace,
    blocks: BTreeMap<(NicId, u8), Block>,
    settings: KernelSettings,
    clock: WallClock,
    pending: VecDeque<(Egress, Vec<u8>)>,
    counters: Counters,
    nic_counters: BTreeMap<NicId, Counters>,
    translations: BTreeMap<(NicId, u8, SocketAddr, SocketAddr), SocketAddr>,
    stats: KernelStats,
    next_iface: u32,
    buf: Vec<u8>,
    last_now: Instant,
    ct_events: std::os::fd::OwnedFd,
    events: Vec<Event>,
    /// Ends caused by the packet being processed (an RST before any reply): reported after
    /// that packet, from `handle_timeout` at the same instant, as the model reports them.
    after_packet: Vec<Event>,
    /// Connections the kernel reported created and not yet destroyed: original tuple → (entry
    /// id, flow).
    live: BTreeMap<(u8, SocketAddr, SocketAddr), (Option<u32>, FlowView)>,
}

fn family_index(f: Family) -> u8 {
    match f {
        Family::V4 => 4,
        Family::V6 => 6,
    }
}

fn kerr(e: KernelError) -> ConfigError {
    ConfigError::invalid("dataplane.linux", e.to_string())
}

impl KernelDataplane {
    /// Creates the namespace, its outside device and the base ruleset for `config`'s profile.
    pub fn new(config: &GatewayConfig, settings: KernelSettings) -> Result<Self, KernelError> {
        settings.validate().map_err(KernelError::new)?;
        preflight()?;
        let ns = Namespace::create()?;
        let no_autoconf: Vec<(String, String)> = [
            ("net/ipv4/ip_forward", "1"),
            // A packet routed back out of the device it came in on (an inbound packet to a NAT
            // address conntrack did not translate) would otherwise draw an ICMP redirect
            // before the forward hook drops it.
            ("net/ipv4/conf/all/send_redirects", "0"),
            ("net/ipv4/conf/default/send_redirects", "0"),
            ("net/ipv6/conf/all/forwarding", "1"),
            ("net/ipv6/conf/default/addr_gen_mode", "1"),
            ("net/ipv6/conf/default/accept_ra", "0"),
            ("net/ipv6/conf/default/accept_dad", "0"),
            ("net/ipv6/conf/default/router_solicitations", "0"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        ns.sysctls(&no_autoconf)?;
        let outside = ns.run_inside(|| sys::open_tun(OUTSIDE_IFACE))?;
        let ct_events = ns.run_inside(sys::open_conntrack_events)?;
        ns.ip_batch(&format!(
            "link set {OUTSIDE_IFACE} mtu 65535 up\n\
             address add {ROUTER_V4}/32 dev lo\n\
             address add {ROUTER_V6}/128 dev lo\n\
             route add default dev {OUTSIDE_IFACE}\n\
             route add ::/0 dev {OUTSIDE_IFACE}\n"
        ))?;
        ns.nft(&ruleset(OUTSIDE_IFACE, &[]))?;
        let (sysctls, longest_s) = conntrack_sysctls(&config.profile, settings.time_scale);
        ns.sysctls(&sysctls)?;
        let max_gap = Duration::from_secs(longest_s + 2);
        Ok(KernelDataplane {
            nics: BTreeMap::new(),
            outside,
            ns,
            blocks: BTreeMap::new(),
            settings,
            clock: WallClock::new(settings.time_scale, max_gap),
            pending: VecDeque::new(),
            counters: Counters::default(),
            nic_counters: BTreeMap::new(),
            translations: BTreeMap::new(),
            stats: KernelStats::default(),
            next_iface: 0,
            buf: vec![0; READ_BUF_BYTES],
            last_now: Instant::from_nanos(0),
            ct_events,
            events: Vec::new(),
            after_packet: Vec::new(),
            live: BTreeMap::new(),
        })
    }

    /// The namespace's name.
    pub fn namespace(&self) -> &str {
        self.ns.name()
    }

    /// What the dataplane saw besides verdicts.
    pub fn stats(&self) -> KernelStats {
        KernelStats {
            clock: self.clock.stats(),
            ..self.stats
        }
    }

    /// The ruleset now loaded.
    pub fn current_ruleset(&self) -> String {
        let rules: Vec<NicRules<'_>> = self
            .nics
            .iter()
            .map(|(id, n)| NicRules {
                iface: &n.iface,
                addresses: &n.config.addresses,
                v4: self.blocks.get(&(*id, 4)).copied(),
                v6: self.blocks.get(&(*id, 6)).copied(),
            })
            .collect();
        ruleset(OUTSIDE_IFACE, &rules)
    }

    fn reload(&self) -> Result<(), KernelError> {
        self.ns.nft(&self.current_ruleset())
    }

    /// Ends the kernel's connections from `addresses` (a NIC losing its block or going away
    /// ends its flows at once, behaviour §4).
    fn flush_conntrack(&self, addresses: &[IpAddr]) {
        for a in addresses {
            let family = if a.is_ipv4() { "ipv4" } else { "ipv6" };
            // `conntrack -D` exits 1 when nothing matched; either way the entries are gone.
            let _ = std::process::Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    self.ns.name(),
                    "conntrack",
                    "-D",
                    "-f",
                    family,
                ])
                .args(["-s", &a.to_string()])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
        }
    }

    fn device_of(&self, ingress: Ingress) -> Option<&File> {
        match ingress {
            Ingress::Outside => Some(&self.outside),
            Ingress::Inside(id) => self.nics.get(&id).map(|n| &n.tun),
        }
    }

    /// Reads every packet waiting on any device, in device order (outside first).
    fn sweep(&mut self, out: &mut Vec<(Egress, Vec<u8>)>) {
        let mut devices: Vec<(Egress, &File)> = vec![(Egress::Outside, &self.outside)];
        devices.extend(self.nics.iter().map(|(id, n)| (Egress::Nic(*id), &n.tun)));
        for (egress, mut file) in devices {
            loop {
                match file.read(&mut self.buf) {
                    Ok(n) if n > 0 => {
                        let pkt = self.buf[..n].to_vec();
                        if is_chatter(&pkt) {
                            self.stats.ignored_chatter += 1;
                        } else {
                            self.stats.read += 1;
                            out.push((egress, pkt));
                        }
                    }
                    Ok(_) => break,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => {
                        self.stats.read_errors += 1;
                        break;
                    }
                }
            }
        }
    }

    fn wait_any(&self, timeout_us: u64) -> bool {
        let mut files: Vec<&File> = vec![&self.outside];
        files.extend(self.nics.values().map(|n| &n.tun));
        sys::wait_readable(&files, timeout_us).unwrap_or(false)
    }

    fn nic_counter(&mut self, id: NicId) -> &mut Counters {
        self.nic_counters.entry(id).or_default()
    }

    /// The drop reason natsim's ruleset implies for a packet the kernel did not forward.
    fn inferred_drop(&self, ingress: Ingress, pkt: &[u8]) -> DropReason {
        let Ok(meta) = parse_ip(pkt) else {
            return DropReason::Malformed;
        };
        if !l4_ok(pkt, &meta) {
            return DropReason::BadChecksum;
        }
        let tuple = Tuple::parse(pkt);
        let icmp_error = tuple.is_some_and(|t| t.icmp == Some(IcmpKind::Error));
        match ingress {
            Ingress::Outside if icmp_error => DropReason::IcmpErrorNoFlow,
            Ingress::Outside => DropReason::Unsolicited,
            Ingress::Inside(id) => {
                let Some(nic) = self.nics.get(&id) else {
                    return DropReason::UnknownNic;
                };
                let src = meta.src(pkt);
                if !nic.config.addresses.contains(&src) {
                    return DropReason::SpoofedSource;
                }
                if !self
                    .blocks
                    .contains_key(&(id, family_index(Family::of(&src))))
                {
                    return DropReason::NoNatBlock;
                }
                if icmp_error {
                    return DropReason::IcmpErrorNoFlow;
                }
                let tcp_not_syn = tuple
                    .is_some_and(|t| t.protocol == proto::TCP && t.tcp_flags & tcp_flag::SYN == 0);
                if tcp_not_syn {
                    DropReason::TcpNoFlow
                } else {
                    DropReason::PortsExhausted
                }
            }
        }
    }

    /// Learns the translation of a forwarded outbound packet (for [`Inspect::translation_of`]).
    fn learn(&mut self, nic: NicId, before: &[u8], after: &[u8]) {
        let (Some(b), Some(a)) = (Tuple::parse(before), Tuple::parse(after)) else {
            return;
        };
        self.translations
            .insert((nic, b.protocol, b.src_addr(), b.dst_addr()), a.src_addr());
    }

    fn count_forward(&mut self, ingress: Ingress, verdict: Verdict, pkt: &[u8]) {
        let class = match Tuple::parse(pkt).map(|t| t.protocol) {
            Some(proto::TCP) => ProtoClass::Tcp,
            Some(proto::UDP) => ProtoClass::Udp,
            Some(_) => ProtoClass::Icmp,
            None => ProtoClass::Fragment,
        } as usize;
        let bump = |c: &mut Counters| match verdict {
            Verdict::Forward(Egress::Outside) => c.translated_out[class] += 1,
            Verdict::Forward(Egress::Nic(_)) => c.translated_in[class] += 1,
            Verdict::PassThrough => c.passed_through += 1,
            Verdict::Respond(_) => c.generated += 1,
            Verdict::Buffered | Verdict::Drop(_) => {}
        };
        bump(&mut self.counters);
        let nic = match (ingress, verdict) {
            (Ingress::Inside(id), _) | (_, Verdict::Forward(Egress::Nic(id))) => Some(id),
            _ => None,
        };
        if let Some(id) = nic {
            bump(self.nic_counter(id));
        }
    }

    /// Turns the conntrack events queued so far into natsim events at `now`, with what was
    /// being done when they came ([`During`]).
    fn poll_events(&mut self, now: Instant, during: During) {
        let mut buf = vec![0u8; 1 << 16];
        loop {
            match sys::recv_nonblocking(&self.ct_events, &mut buf) {
                Ok(Some(n)) => {
                    for e in events::parse_datagram(&buf[..n]) {
                        self.ct_event(now, e, during);
                    }
                }
                Ok(None) => break,
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => self.stats.events_lost += 1,
                Err(_) => {
                    self.stats.events_lost += 1;
                    break;
                }
            }
        }
    }

    fn ct_event(&mut self, now: Instant, e: events::CtEvent, during: During) {
        let inside = e.original.0;
        let Some(nic) = self
            .nics
            .iter()
            .find(|(_, n)| n.config.addresses.contains(&inside.ip()))
            .map(|(id, _)| *id)
        else {
            return;
        };
        // Connections between NICs are not translated: no flow of the NAT.
        if e.nat.ip() == inside.ip() {
            return;
        }
        let flow = FlowView {
            nic,
            protocol: e.protocol,
            inside,
            remote: e.original.1,
            nat: e.nat,
        };
        let key = (e.protocol, e.original.0, e.original.1);
        match e.kind {
            events::CtKind::New => {
                // The kernel holds one entry per tuple: a new one means the old one is gone,
                // even when its destroy event is still on its way (it is then ignored).
                if let Some((_, old)) = self.live.remove(&key) {
                    self.end_flow(now, old, EndReason::Timeout);
                }
                self.live.insert(key, (e.id, flow));
                self.counters.flows_created += 1;
                self.nic_counter(nic).flows_created += 1;
                self.events.push(Event::FlowCreated { at: now, flow });
            }
            events::CtKind::Destroy => {
                let known = self
                    .live
                    .get(&key)
                    .is_some_and(|(id, _)| e.id.is_none() || *id == e.id);
                if !known {
                    return;
                }
                self.live.remove(&key);
                let closing =
                    matches!(e.tcp_state, Some(events::TCP_TIME_WAIT | events::TCP_CLOSE));
                let reason = if during.flushed {
                    EndReason::BlockRemoved
                } else if e.protocol == proto::TCP && closing && during.inside_syn {
                    EndReason::TakenOver
                } else if e.protocol == proto::TCP && during.rst {
                    // Conntrack deletes an entry whose first reply is an RST on that packet.
                    EndReason::ResetUnanswered
                } else {
                    EndReason::Timeout
                };
                self.end_flow(now, flow, reason);
            }
        }
    }

    fn end_flow(&mut self, now: Instant, flow: FlowView, reason: EndReason) {
        self.counters.flows_ended += 1;
        self.nic_counter(flow.nic).flows_ended += 1;
        let queue = if reason == EndReason::ResetUnanswered {
            &mut self.after_packet
        } else {
            &mut self.events
        };
        queue.push(Event::FlowEnded {
            at: now,
            flow,
            reason,
            last_active: now,
            deadline: now,
        });
        queue.push(Event::PortReleased { at: now, flow });
    }

    fn count_drop(&mut self, ingress: Ingress, reason: DropReason) {
        self.counters.drop(reason);
        if let Ingress::Inside(id) = ingress {
            self.nic_counter(id).drop(reason);
        }
    }
}

/// What the dataplane was doing when conntrack events came: it tells why an entry ended.
#[derive(Clone, Copy, Debug)]
struct During {
    /// Processing an inside TCP SYN: a TIME_WAIT or CLOSE entry destroyed now was taken over
    /// (`nf_nat_used_tuple_harder`).
    inside_syn: bool,
    /// Processing a TCP RST: an entry destroyed now ended on it ("if only reply is a RST ...
    /// delete the conntrack immediately", `nf_conntrack_tcp_packet`).
    rst: bool,
    /// natsim flushed the entries itself (a lost block, a removed NIC).
    flushed: bool,
}

impl During {
    const FLUSH: During = During {
        inside_syn: false,
        rst: false,
        flushed: true,
    };
}

/// Packets the namespace's kernel sends on its own that are not NAT traffic: IPv6 neighbour
/// discovery and MLD, IGMP.
fn is_chatter(pkt: &[u8]) -> bool {
    let Ok(meta) = parse_ip(pkt) else {
        return false;
    };
    match meta.version {
        IpVersion::V4 => meta.protocol == proto::IGMP,
        IpVersion::V6 => {
            meta.protocol == proto::ICMPV6 && meta.has_l4_header() && {
                let t = IcmpView::new_unchecked(&pkt[meta.l4_offset..]).msg_type();
                icmp::v6::is_neighbour_discovery(t) || icmp::v6::is_multicast_listener(t)
            }
        }
    }
}

impl Packets for KernelDataplane {
    fn process(&mut self, now: Instant, ingress: Ingress, pkt: &mut Vec<u8>) -> Verdict {
        self.clock.wait_for(now);
        self.last_now = now;
        let mut late = Vec::new();
        self.sweep(&mut late);
        self.stats.late_outputs += late.len() as u64;
        self.pending.extend(late);
        let Some(mut device) = self.device_of(ingress) else {
            self.count_drop(ingress, DropReason::UnknownNic);
            return Verdict::Drop(DropReason::UnknownNic);
        };
        if device.write(pkt).is_err() {
            // The TUN driver refuses what is not an IP packet it can take.
            self.count_drop(ingress, DropReason::Malformed);
            return Verdict::Drop(DropReason::Malformed);
        }
        self.stats.written += 1;
        let mut outputs = Vec::new();
        self.sweep(&mut outputs);
        if outputs.is_empty() && self.wait_any(self.settings.verdict_wait_us) {
            self.sweep(&mut outputs);
        }
        let tcp_flags = Tuple::parse(pkt)
            .filter(|t| t.protocol == proto::TCP)
            .map(|t| t.tcp_flags);
        let during = During {
            inside_syn: matches!(ingress, Ingress::Inside(_))
                && tcp_flags.is_some_and(|f| f & tcp_flag::SYN != 0),
            rst: tcp_flags.is_some_and(|f| f & tcp_flag::RST != 0),
            flushed: false,
        };
        self.poll_events(now, during);
        let mut outputs = outputs.into_iter();
        let Some((egress, out)) = outputs.next() else {
            let fragment = parse_ip(pkt).is_ok_and(|m| m.fragment.is_some());
            if fragment {
                return Verdict::Buffered;
            }
            let reason = self.inferred_drop(ingress, pkt);
            self.count_drop(ingress, reason);
            return Verdict::Drop(reason);
        };
        self.pending.extend(outputs);
        let verdict = match (ingress, egress) {
            (Ingress::Inside(i), Egress::Nic(j)) if i == j => Verdict::Respond(egress),
            (Ingress::Outside, Egress::Outside) => Verdict::Respond(egress),
            (Ingress::Inside(_), Egress::Nic(_)) => Verdict::PassThrough,
            _ => Verdict::Forward(egress),
        };
        if let (Ingress::Inside(nic), Verdict::Forward(Egress::Outside)) = (ingress, verdict) {
            self.learn(nic, pkt, &out);
        }
        *pkt = out;
        self.count_forward(ingress, verdict, pkt);
        verdict
    }

    fn poll_transmit(&mut self) -> Option<(Egress, Vec<u8>)> {
        self.pending.pop_front()
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        // The kernel runs its own timers on wall time; the only timer here hands over the
        // ends the last packet caused.
        (!self.after_packet.is_empty()).then_some(self.last_now)
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.clock.wait_for(now);
        self.events.append(&mut self.after_packet);
    }
}

impl Control for KernelDataplane {
    fn add_nic(&mut self, id: NicId, nic: NicConfig) -> Result<(), ConfigError> {
        for (other, n) in &self.nics {
            if *other != id
                && let Some(a) = nic
                    .addresses
                    .iter()
                    .find(|a| n.config.addresses.contains(a))
            {
                return Err(ConfigError::invalid(
                    "dataplane.linux",
                    format!(
                        "NICs `{}` and `{}` share address {a}; the kernel dataplane routes NICs by address (one network)",
                        n.config.name, nic.name
                    ),
                ));
            }
        }
        let iface = match self.nics.remove(&id) {
            Some(old) => {
                let mut cmds = String::new();
                for a in &old.config.addresses {
                    cmds.push_str(&format!("route del {} dev {}\n", host_prefix(a), old.iface));
                }
                if !cmds.is_empty() {
                    self.ns.ip_batch(&cmds).map_err(kerr)?;
                }
                self.nics.insert(
                    id,
                    KernelNic {
                        config: nic.clone(),
                        iface: old.iface.clone(),
                        tun: old.tun,
                    },
                );
                old.iface
            }
            None => {
                let iface = format!("nic{}", self.next_iface);
                self.next_iface += 1;
                let name = iface.clone();
                let tun = self
                    .ns
                    .run_inside(move || sys::open_tun(&name))
                    .map_err(kerr)?;
                self.ns
                    .ip(&["link", "set", &iface, "mtu", "65535", "up"])
                    .map_err(kerr)?;
                self.nics.insert(
                    id,
                    KernelNic {
                        config: nic.clone(),
                        iface: iface.clone(),
                        tun,
                    },
                );
                iface
            }
        };
        let mut cmds = String::new();
        for a in &nic.addresses {
            cmds.push_str(&format!("route replace {} dev {iface}\n", host_prefix(a)));
        }
        if !cmds.is_empty() {
            self.ns.ip_batch(&cmds).map_err(kerr)?;
        }
        self.reload().map_err(kerr)
    }

    fn remove_nic(&mut self, now: Instant, id: NicId) {
        self.clock.wait_for(now);
        self.blocks.retain(|(n, _), _| *n != id);
        if let Some(nic) = self.nics.remove(&id) {
            // Closing the descriptor destroys the device and its routes.
            drop(nic.tun);
            self.flush_conntrack(&nic.config.addresses);
            self.poll_events(now, During::FLUSH);
        }
        let _ = self.reload();
    }

    fn assign_block(&mut self, now: Instant, id: NicId, block: Block) -> Result<(), ConfigError> {
        self.clock.wait_for(now);
        let Some(nic) = self.nics.get(&id) else {
            return Err(ConfigError::invalid(
                "block",
                format!("no NIC with id {}", id.0),
            ));
        };
        let family = family_index(Family::of(&block.nat_ip));
        let old = self.blocks.insert((id, family), block);
        if old.is_some_and(|o| o != block) {
            let addrs: Vec<IpAddr> = nic
                .config
                .addresses
                .iter()
                .filter(|a| a.is_ipv4() == block.nat_ip.is_ipv4())
                .copied()
                .collect();
            self.flush_conntrack(&addrs);
            self.poll_events(now, During::FLUSH);
        }
        self.reload().map_err(kerr)
    }

    fn release_block(&mut self, now: Instant, id: NicId, family: Family) -> Option<Block> {
        self.clock.wait_for(now);
        let old = self.blocks.remove(&(id, family_index(family)))?;
        let _ = self.reload();
        if let Some(nic) = self.nics.get(&id) {
            let addrs: Vec<IpAddr> = nic
                .config
                .addresses
                .iter()
                .filter(|a| Family::of(a) == family)
                .copied()
                .collect();
            self.flush_conntrack(&addrs);
            self.poll_events(now, During::FLUSH);
        }
        Some(old)
    }
}

impl KernelDataplane {
    /// The kernel's connection table, as natsim flows of the NICs whose address opened them.
    fn conntrack_flows(&self) -> Vec<FlowInfo> {
        let Ok(out) = std::process::Command::new("ip")
            .args([
                "netns",
                "exec",
                self.ns.name(),
                "conntrack",
                "-L",
                "-o",
                "extended",
            ])
            .stderr(std::process::Stdio::null())
            .output()
        else {
            return Vec::new();
        };
        let text = String::from_utf8_lossy(&out.stdout);
        let mut flows: Vec<FlowInfo> = text
            .lines()
            .filter_map(conntrack::parse_line)
            .filter_map(|e| {
                let inside = e.original.0.ip();
                let nic = self
                    .nics
                    .iter()
                    .find(|(_, n)| n.config.addresses.contains(&inside))
                    .map(|(id, _)| *id)?;
                Some(conntrack::flow_info(
                    &e,
                    nic,
                    self.last_now,
                    self.settings.time_scale,
                ))
            })
            .collect();
        // The kernel lists in hash order; natsim's outputs need a stable one.
        flows.sort_by_key(|f| (f.flow.nic, f.flow.protocol, f.flow.inside, f.flow.remote));
        flows
    }
}

impl Inspect for KernelDataplane {
    fn notes(&self) -> Vec<String> {
        let st = self.stats();
        let mut notes = vec![format!(
            "linux kernel (namespace {}): {} packets written, {} read back; {} outputs after their verdict wait; {} kernel packets ignored (ND, MLD, IGMP); clock: lag at most {} ms, {} ms of idle gaps cut, {} ms waited",
            self.ns.name(),
            st.written,
            st.read,
            st.late_outputs,
            st.ignored_chatter,
            st.clock.lag_max_ms,
            st.clock.skipped_ms,
            st.clock.waited_ms
        )];
        if st.events_lost > 0 || st.read_errors > 0 {
            notes.push(format!(
                "WARNING: {} conntrack event reads and {} device reads failed: the checks may have missed flow ends or outputs",
                st.events_lost, st.read_errors
            ));
        }
        notes
    }

    fn drain_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    fn flows(&self) -> Vec<FlowInfo> {
        self.conntrack_flows()
    }

    fn block_of(&self, id: NicId, family: Family) -> Option<Block> {
        self.blocks.get(&(id, family_index(family))).copied()
    }

    fn counters(&self) -> Counters {
        self.counters.clone()
    }

    fn nic_counters(&self, id: NicId) -> Option<Counters> {
        self.nics
            .contains_key(&id)
            .then(|| self.nic_counters.get(&id).cloned().unwrap_or_default())
    }

    fn translation_of(
        &self,
        nic: NicId,
        protocol: u8,
        inside: SocketAddr,
        remote: SocketAddr,
    ) -> Option<SocketAddr> {
        self.translations
            .get(&(nic, protocol, inside, remote))
            .copied()
    }
}

fn host_prefix(a: &IpAddr) -> String {
    match a {
        IpAddr::V4(v) => format!("{v}/32"),
        IpAddr::V6(v) => format!("{v}/128"),
    }
}
