//! The discrete-event engine: a virtual clock and an event queue ordered by (time, insertion
//! order), and the loop that pops events and dispatches them to the simulator's parts. The
//! [`Simulator`]'s state and the types its parts share are declared here; each part is a child
//! module with one job, extending `Simulator` with the methods of that job:
//!
//! | part | job |
//! |---|---|
//! | `build` | the topology (router, dataplane nodes, hosts, links) and first work from a [`SimConfig`] |
//! | `route` | links, the router, relay between dataplane nodes |
//! | `node` | dataplane nodes: `process`, draining events and self-sent packets, timers |
//! | `host` | the host stack: sockets, services, reassembly, closed-port answers |
//! | `lifecycle` | applications and workload generators, start to result |
//! | `adversary` | one-shot attacks on a scripted flow |
//! | `control_driver` | NICs and blocks pushed to the dataplanes from the API reconciler |
//! | `faults` | link faults, control-plane changes, node restarts |
//! | `comments` | verdict comments on captured packets |
//! | `results` | what a run reports, observers handed back |
//!
//! Packet path: a NIC host sends on its access link (`host`, `route`) to its dataplane node, which
//! calls [`Packets::process`](super::dataplane::Packets::process) with `Ingress::Inside` (`node`);
//! translated packets go up the node's uplink to the internet router, which delivers them to remote
//! hosts by destination address (`route`). Replies come back through the router to a dataplane node
//! (any node in distributed mode: the node relays a packet for a port block it does not own to the
//! owner, behaviour §4), which translates and sends them down the NIC's access link to the host's
//! stack.

mod adversary;
mod build;
mod comments;
mod control_driver;
mod faults;
mod host;
mod lifecycle;
mod node;
mod results;
mod route;

pub use results::{
    AppResult, GeneratorStats, HostStats, NicReportRow, RunEnd, SimError, SimStats, StatusRow,
    stream_of,
};

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet};

use super::ipfrag::{CannotFragment, Offer, Reassembly, fragment, may_be_fragment};
use super::queue::EventQueue;
use std::net::{IpAddr, SocketAddr};

use foldhash::fast::FixedState;
use hashbrown::HashMap;
use petgraph::stable_graph::{NodeIndex, StableGraph};
use serde::Serialize;

use super::apps::{
    App, AppState, Flood, Io, Outcome, PingClient, Probe, TcpClient, TcpServer, UdpClient,
    encode_endpoint,
};
use super::capture::{Captures, Trail};
use super::comment::{self, Comments, Emitted};
use super::config::{
    AppKind, Attack, Fault, HostRef, PingParams, Proto, ServiceKind, SimConfig, TcpParams,
    UdpParams, Vary,
};
use super::control::{BlockChange, ControlError, ControlPlane, Status};
use super::dataplane::{Dataplane, DataplaneFactory};
use super::ids::{AppId, HostId, LinkEnd, LinkId, NodeId};
use super::link::{Link, Transmit};
use super::observe::{Digest, NicInfo, Observation, Observer, Violation};
use super::packet::{
    IcmpKind, Tuple, build_echo, build_icmp_error, build_tcp, build_udp, build_udp_len,
    quoted_offset,
};
use super::tcp::CloseMode;
use super::workload::{FlowProto, Sampler};
use crate::nat::{
    Block, ConfigError, Egress, Event, Family, Ingress, NetworkId, NicConfig, NicId, Verdict,
};
use crate::rng::Rng;
use crate::time::Instant;
use crate::wire::tcp_flags::{ACK, RST, SYN};

/// A vertex of the topology graph.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeKind {
    /// The internet router.
    Router,
    /// A dataplane node (hypervisor running a NAT dataplane instance).
    Dataplane(NodeId),
    /// A VM NIC (host index).
    Nic(u32),
    /// An internet host (host index).
    Remote(u32),
}

/// What a link connects (its end A / end B).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// NIC host (end 0) – dataplane node (end 1).
    Access { nic: u32, node: NodeId },
    /// Dataplane node (end 0) – router (end 1).
    Uplink { node: NodeId },
    /// Router (end 0) – remote host (end 1).
    Remote { host: HostId },
}

/// How a packet in flight is to be handled on arrival.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Ordinary routing by destination address.
    Plain,
    /// Came through a dataplane from outside (delivered to a NIC).
    FromOutside,
    /// Already translated, relayed to the node owning `nic`; `from_outside` as for
    /// [`Kind::FromOutside`] once there.
    ToNic {
        /// The NIC (index).
        nic: u32,
        /// It came through the gateway from outside (or a hairpin).
        from_outside: bool,
    },
    /// Relayed untranslated to the node owning the destination port block.
    ToNode(NodeId),
}

enum Ev {
    Arrive {
        link: LinkId,
        to: LinkEnd,
        kind: Kind,
        buf: Vec<u8>,
        /// Where the packet was captured so far (only when some link is captured).
        trail: Option<Box<Trail>>,
    },
    AppStart(u32),
    AppTimer {
        app: AppId,
        generation: u32,
    },
    DataplaneTimer(NodeId),
    Fault(u32),
    Reconcile,
    GenArrival {
        generator: u32,
        slot: u32,
    },
}

pub use super::capture::CapturedPacket;

/// A bound port: (host, protocol, port).
type BoundKey = (HostId, u8, u16);

/// A socket: (host, protocol, local port, remote endpoint).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct SocketKey {
    host: HostId,
    proto: u8,
    port: u16,
    remote: SocketAddr,
}

#[derive(Clone, Copy, Debug)]
enum Bound {
    Service(ServiceKind),
    App(AppId),
}

struct Host {
    name: String,
    nic: Option<u32>,
    addresses: Vec<IpAddr>,
    link: LinkId,
    rng: Rng,
    next_port: u16,
    stats: HostStats,
    /// Identification of the next datagram this host fragments.
    next_fragment_ident: u32,
    reassembly: Reassembly,
    /// Path MTUs learned from Fragmentation Needed / Packet Too Big, by destination.
    path_mtu: BTreeMap<IpAddr, usize>,
    /// No answer for closed ports.
    silent_closed_ports: bool,
}

impl Host {
    /// Its counters, with the reassembly ones read from the reassembly buffer that keeps them.
    fn stats(&self) -> HostStats {
        let r = self.reassembly.stats;
        HostStats {
            fragments_received: r.fragments,
            reassembled: r.reassembled,
            reassembly_failed: r.failed,
            ..self.stats
        }
    }
}

struct NicRt {
    spec: super::config::NicSpec,
    host: HostId,
    link: LinkId,
    present: bool,
    ports_now: u64,
    ports_peak: u64,
}

struct Node {
    dp: Box<dyn Dataplane>,
    uplink: LinkId,
    timer_at_ns: Option<u64>,
}

struct GenRt {
    spec: super::config::GeneratorSpec,
    sampler: Sampler,
    rngs: Vec<Rng>,
    stats: GeneratorStats,
}

/// The simulator.
pub struct Simulator {
    cfg: SimConfig,
    now_ns: u64,
    queue: EventQueue<Ev>,
    graph: StableGraph<NodeKind, u32>,
    links: Vec<Link>,
    link_keys: Vec<u64>,
    roles: Vec<Role>,
    link_by_name: BTreeMap<String, LinkId>,
    hosts: Vec<Host>,
    nics: Vec<NicRt>,
    nic_by_addr: HashMap<(u16, IpAddr), u32, FixedState>,
    remote_by_addr: HashMap<IpAddr, HostId, FixedState>,
    remote_hosts: Vec<HostId>,
    nodes: Vec<Node>,
    factory: Box<DataplaneFactory>,
    control: ControlPlane,
    /// Times at which an `Ev::Reconcile` is queued (one event per time is enough).
    reconcile_at: BTreeSet<u64>,
    owners: BTreeMap<(IpAddr, u16), (u16, u32)>,
    apps: Vec<App>,
    app_keys: Vec<(Option<SocketKey>, Option<BoundKey>)>,
    free_apps: Vec<AppId>,
    conns: HashMap<SocketKey, AppId, FixedState>,
    bound: HashMap<BoundKey, Bound, FixedState>,
    pool: Vec<Vec<u8>>,
    out: Vec<Vec<u8>>,
    before: Vec<u8>,
    /// Every observer, each told every observation in order (invariant checker, meters,
    /// coverage); the first violation any of them reports stops the run.
    observers: Vec<Box<dyn Observer>>,
    digest: Digest,
    stats: SimStats,
    results: Vec<AppResult>,
    result_app: Vec<Option<AppId>>,
    /// Per scripted application, the flow it used once it has ended (NIC, protocol, local and
    /// remote endpoint), so an adversary can still aim at what the dataplane holds of it.
    ended_flows: Vec<Option<adversary::FlowKey>>,
    generators: Vec<GenRt>,
    capture: Captures,
    /// Verdict-comment scratch (only used when some link is captured).
    comments: Comments,
    note: String,
    violation: Option<Violation>,
    router_rng: Rng,
    /// The router's ICMP error budget.
    router_icmp: crate::time::TokenBucket,
    table: Vec<StatusRow>,
}

impl Simulator {
    fn schedule(&mut self, at_ns: u64, ev: Ev) {
        self.queue.push(at_ns.max(self.now_ns), ev);
    }

    fn notify(&mut self, obs: &Observation<'_>) {
        fan_out(
            &mut self.observers,
            self.stats.events,
            Instant::from_nanos(self.now_ns),
            obs,
            &mut self.violation,
        );
    }

    /// Runs until idle, the planned duration, a bound, or a violation.
    pub fn run(&mut self) -> RunEnd {
        let limits = self.cfg.limits;
        loop {
            if self.violation.is_some() {
                return RunEnd::Violation;
            }
            let Some(next_ns) = self.queue.peek_time() else {
                return RunEnd::Idle;
            };
            if let Some(d) = limits.duration_ns
                && next_ns > d
            {
                self.now_ns = d;
                return RunEnd::Duration;
            }
            if next_ns > limits.max_time_ns {
                return RunEnd::MaxTime;
            }
            if self.stats.events >= limits.max_events {
                return RunEnd::MaxEvents;
            }
            let Some((at_ns, ev)) = self.queue.pop() else {
                return RunEnd::Idle;
            };
            self.now_ns = at_ns;
            self.stats.events += 1;
            self.dispatch(ev);
        }
    }

    /// Runs until virtual time `until_ns` (events after it stay queued), a bound, or a violation.
    pub fn run_until(&mut self, until_ns: u64) -> RunEnd {
        let saved = self.cfg.limits.duration_ns;
        self.cfg.limits.duration_ns = Some(until_ns.min(saved.unwrap_or(u64::MAX)));
        let end = self.run();
        self.cfg.limits.duration_ns = saved;
        end
    }

    fn dispatch(&mut self, ev: Ev) {
        match ev {
            Ev::Arrive {
                link,
                to,
                kind,
                buf,
                trail,
            } => self.arrive(link, to, kind, buf, trail),
            Ev::AppStart(i) => self.start_app(i),
            Ev::AppTimer { app, generation } => {
                let a = &self.apps[app.index()];
                if a.generation == generation && a.scheduled_ns == Some(self.now_ns) {
                    self.apps[app.index()].scheduled_ns = None;
                    self.with_app(app, |a, io| a.on_timer(io));
                }
            }
            Ev::DataplaneTimer(k) => {
                let node = &mut self.nodes[k.index()];
                if node.timer_at_ns == Some(self.now_ns) {
                    node.timer_at_ns = None;
                    node.dp.handle_timeout(Instant::from_nanos(self.now_ns));
                    self.after_dataplane(k);
                }
            }
            Ev::Fault(i) => self.apply_fault(i),
            Ev::Reconcile => {
                self.reconcile_at.remove(&self.now_ns);
                self.reconcile();
            }
            Ev::GenArrival { generator, slot } => self.gen_arrival(generator, slot),
        }
    }
}

/// Tells every observer one observation; the first violation of the run is kept, stamped with
/// the event index and time (later ones, from any observer, are not: the run stops anyway).
fn fan_out(
    observers: &mut [Box<dyn Observer>],
    index: u64,
    now: Instant,
    obs: &Observation<'_>,
    violation: &mut Option<Violation>,
) {
    for o in observers {
        if let Err(mut v) = o.observe(index, now, obs)
            && violation.is_none()
        {
            v.event_index = index;
            v.at = now;
            *violation = Some(v);
        }
    }
}

fn dst_of(buf: &[u8]) -> Option<IpAddr> {
    let meta = crate::wire::parse_ip(buf).ok()?;
    Some(meta.dst(buf))
}

fn verdict_code(v: Verdict) -> u64 {
    match v {
        Verdict::Forward(Egress::Outside) => 1,
        Verdict::Forward(Egress::Nic(n)) => 2 | u64::from(n.0) << 8,
        Verdict::Respond(Egress::Outside) => 3,
        Verdict::Respond(Egress::Nic(n)) => 4 | u64::from(n.0) << 8,
        Verdict::PassThrough => 5,
        Verdict::Buffered => 6,
        Verdict::Drop(r) => 7 | (r as u64) << 8,
    }
}
