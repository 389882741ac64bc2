//! The discrete-event engine: a virtual clock, an event queue ordered by (time, insertion order),
//! the topology, and the dispatch of packets between hosts, dataplane nodes and the router.
//!
//! Packet path: a NIC host sends on its access link to its dataplane node, which calls
//! [`Dataplane::process`] with `Ingress::Inside`; translated packets go up the node's uplink to
//! the internet router, which delivers them to remote hosts by destination address. Replies come
//! back through the router to a dataplane node (any node in distributed mode: the node relays a
//! packet for a port block it does not own to the owner, behaviour §4), which translates and sends
//! them down the NIC's access link.

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet};

use super::ipfrag::{Offer, Reassembly, fragment, may_be_fragment};
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
    Dataplane(u16),
    /// A VM NIC (host index).
    Nic(u32),
    /// An internet host (host index).
    Remote(u32),
}

/// What a link connects (its end 0 / end 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// NIC host (end 0) – dataplane node (end 1).
    Access { nic: u32, node: u16 },
    /// Dataplane node (end 0) – router (end 1).
    Uplink { node: u16 },
    /// Router (end 0) – remote host (end 1).
    Remote { host: u32 },
}

/// How a packet in flight is to be handled on arrival.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Ordinary routing by destination address.
    Plain,
    /// Came through a dataplane from outside (delivered to a NIC).
    FromOutside,
    /// Already translated, relayed to the node owning NIC `0`.
    ToNic(u32, bool),
    /// Relayed untranslated to the node owning the destination port block.
    ToNode(u16),
}

enum Ev {
    Arrive {
        link: u32,
        to: u8,
        kind: Kind,
        buf: Vec<u8>,
        /// Where the packet was captured so far (only when some link is captured).
        trail: Option<Box<Trail>>,
    },
    AppStart(u32),
    AppTimer {
        app: u32,
        generation: u32,
    },
    DataplaneTimer(u16),
    Fault(u32),
    Reconcile,
    GenArrival {
        generator: u32,
        slot: u32,
    },
}

pub use super::capture::CapturedPacket;

/// One row of the status comparison: NIC, family, the block the API's routing table gives it,
/// the dataplane's block.
pub type StatusRow = (NicId, Family, Option<Block>, Option<Block>);

/// A bound port: (host, protocol, port).
type BoundKey = (u32, u8, u16);

/// A socket: (host, protocol, local port, remote endpoint).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct SocketKey {
    host: u32,
    proto: u8,
    port: u16,
    remote: SocketAddr,
}

#[derive(Clone, Copy, Debug)]
enum Bound {
    Service(ServiceKind),
    App(u32),
}

/// One NIC's line of a report: see [`Simulator::nic_reports`].
#[derive(Clone, Debug)]
pub struct NicReportRow {
    /// NIC name.
    pub name: String,
    /// Its host's counters.
    pub host: HostStats,
    /// Most ports it had tracked at once (live plus held).
    pub ports_peak: u64,
    /// The dataplane's counters for it (none once it was deleted).
    pub counters: Option<crate::nat::Counters>,
}

/// Per-host counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct HostStats {
    /// Packets sent.
    pub sent: u64,
    /// Packets received.
    pub received: u64,
    /// Received through a dataplane from outside (or hairpinned).
    pub from_outside: u64,
    /// Received from outside and matching no socket.
    pub unsolicited_from_outside: u64,
    /// Received and matching no socket, service or echo.
    pub unmatched: u64,
    /// ICMP errors received.
    pub icmp_errors: u64,
    /// Datagrams this host sent in fragments (larger than its link's MTU).
    pub fragmented: u64,
    /// Fragments received.
    pub fragments_received: u64,
    /// Datagrams reassembled from fragments.
    pub reassembled: u64,
    /// Incomplete datagrams given up (timed out, evicted, inconsistent).
    pub reassembly_failed: u64,
}

struct Host {
    name: String,
    nic: Option<u32>,
    addresses: Vec<IpAddr>,
    link: u32,
    rng: Rng,
    next_port: u16,
    stats: HostStats,
    /// Identification of the next datagram this host fragments.
    next_fragment_ident: u32,
    reassembly: Reassembly,
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
    host: u32,
    link: u32,
    present: bool,
    ports_now: u64,
    ports_peak: u64,
}

struct Node {
    dp: Box<dyn Dataplane>,
    uplink: u32,
    timer_at_ns: Option<u64>,
}

/// Aggregate results of one workload generator.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GeneratorStats {
    /// Flows started.
    pub started: u64,
    /// Completed.
    pub completed: u64,
    /// Failed.
    pub failed: u64,
}

struct GenRt {
    spec: super::config::GeneratorSpec,
    sampler: Sampler,
    rngs: Vec<Rng>,
    stats: GeneratorStats,
}

/// Result of a scripted application.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AppResult {
    /// Name.
    pub name: String,
    /// Kind (`tcp`, `udp`, `ping`, `probe`, `attack`).
    pub kind: &'static str,
    /// Outcome.
    pub outcome: Outcome,
    /// Bytes received (TCP) or replies (UDP/ping).
    pub received: u64,
    /// TCP retransmission timeouts / UDP datagrams without reply.
    pub retries: u64,
    /// ICMP errors received about the flow.
    pub icmp_errors: u64,
    /// RFC 5780 mapping behaviour (probes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mapping: Option<&'static str>,
    /// RFC 5780 filtering behaviour (probes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filtering: Option<&'static str>,
    /// Packets sent (attacks).
    pub packets: u64,
}

/// Simulator-wide counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SimStats {
    /// Events processed.
    pub events: u64,
    /// Of which packet arrivals.
    pub packet_events: u64,
    /// Packets relayed between dataplane nodes.
    pub relayed: u64,
    /// Packets the router could not deliver.
    pub no_route: u64,
    /// Packets for NICs that do not exist (deleted).
    pub no_such_nic: u64,
    /// Control-plane changes a dataplane refused.
    pub control_errors: u64,
    /// Dataplane node restarts.
    pub restarts: u64,
    /// IPv4 datagrams routers split to fit a link's MTU.
    pub fragmented_in_transit: u64,
}

/// Why a run stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunEnd {
    /// Nothing left to do.
    Idle,
    /// The planned duration was reached.
    Duration,
    /// `max_events` reached with work left.
    MaxEvents,
    /// `max_time` reached with work left.
    MaxTime,
    /// An observer reported a violation.
    Violation,
}

/// Errors building a simulator.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The dataplane refused the configuration.
    #[error("gateway configuration: {0}")]
    Config(#[from] ConfigError),
    /// The topology is inconsistent.
    #[error("{0}")]
    Topology(String),
    /// The control plane (IronCore API objects) refused the configuration.
    #[error("control plane: {0}")]
    Control(#[from] ControlError),
}

/// A component's random stream id: a stable hash of its name, so adding a component never
/// shifts another's stream.
pub fn stream_of(name: &str) -> u64 {
    let mut d = Digest::default();
    d.bytes(name.as_bytes());
    d.value()
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
    link_by_name: BTreeMap<String, u32>,
    hosts: Vec<Host>,
    nics: Vec<NicRt>,
    nic_by_addr: HashMap<(u16, IpAddr), u32, FixedState>,
    remote_by_addr: HashMap<IpAddr, u32, FixedState>,
    remote_hosts: Vec<u32>,
    nodes: Vec<Node>,
    factory: Box<DataplaneFactory>,
    control: ControlPlane,
    /// Times at which an `Ev::Reconcile` is queued (one event per time is enough).
    reconcile_at: BTreeSet<u64>,
    owners: BTreeMap<(IpAddr, u16), (u16, u32)>,
    apps: Vec<App>,
    app_keys: Vec<(Option<SocketKey>, Option<BoundKey>)>,
    free_apps: Vec<u32>,
    conns: HashMap<SocketKey, u32, FixedState>,
    bound: HashMap<(u32, u8, u16), Bound, FixedState>,
    pool: Vec<Vec<u8>>,
    out: Vec<Vec<u8>>,
    before: Vec<u8>,
    /// Every observer, each told every observation in order (invariant checker, meters,
    /// coverage); the first violation any of them reports stops the run.
    observers: Vec<Box<dyn Observer>>,
    digest: Digest,
    stats: SimStats,
    results: Vec<AppResult>,
    result_app: Vec<Option<u32>>,
    generators: Vec<GenRt>,
    capture: Captures,
    /// Verdict-comment scratch (only used when some link is captured).
    comments: Comments,
    note: String,
    violation: Option<Violation>,
    router_rng: Rng,
    table: Vec<StatusRow>,
}

impl Simulator {
    /// Builds the topology, the dataplanes and the initial control-plane state, and schedules
    /// the scripted work. The `observers` (an invariant checker, a meter, ...) see everything
    /// from the start, each in list order; [`Simulator::observer`] reads one back.
    pub fn new(
        cfg: SimConfig,
        factory: Box<DataplaneFactory>,
        observers: Vec<Box<dyn Observer>>,
    ) -> Result<Self, SimError> {
        let seed = cfg.seed;
        let mut gw_cfg = cfg.gateway.clone();
        gw_cfg.record_events = true;
        gw_cfg.seed = seed;
        let nodes_n = cfg.nodes.max(1);
        let mut graph = StableGraph::new();
        let router = graph.add_node(NodeKind::Router);
        let mut links = Vec::new();
        let mut roles = Vec::new();
        let mut link_by_name = BTreeMap::new();
        let mut add_link = |graph: &mut StableGraph<NodeKind, u32>,
                            a: NodeIndex,
                            b: NodeIndex,
                            name: String,
                            lc: &super::link::LinkConfig,
                            role: Role| {
            let id = links.len() as u32;
            graph.add_edge(a, b, id);
            let rng = Rng::new(seed, stream_of(&format!("link/{name}")));
            link_by_name.insert(name.clone(), id);
            links.push(Link::new(name, lc.clone(), rng));
            roles.push(role);
            id
        };
        let mut nodes = Vec::new();
        let mut node_idx = Vec::new();
        for k in 0..nodes_n {
            let v = graph.add_node(NodeKind::Dataplane(k));
            let uplink = add_link(
                &mut graph,
                v,
                router,
                format!("uplink/{k}"),
                &cfg.uplink,
                Role::Uplink { node: k },
            );
            nodes.push(Node {
                dp: factory(gw_cfg.clone())?,
                uplink,
                timer_at_ns: None,
            });
            node_idx.push(v);
        }
        let mut hosts = Vec::new();
        let mut nics = Vec::new();
        for (i, n) in cfg.nics.iter().enumerate() {
            if n.node >= nodes_n {
                return Err(SimError::Topology(format!(
                    "NIC {} is on node {} but there are {} nodes",
                    n.name, n.node, nodes_n
                )));
            }
            let h = hosts.len() as u32;
            let v = graph.add_node(NodeKind::Nic(h));
            let link = add_link(
                &mut graph,
                v,
                node_idx[usize::from(n.node)],
                format!("nic/{}", n.name),
                &n.link,
                Role::Access {
                    nic: i as u32,
                    node: n.node,
                },
            );
            let mut rng = Rng::new(seed, stream_of(&format!("host/{}", n.name)));
            let next_port = 32768 + rng.below(20000) as u16;
            hosts.push(Host {
                name: n.name.clone(),
                nic: Some(i as u32),
                addresses: n.addresses.clone(),
                link,
                rng,
                next_port,
                stats: HostStats::default(),
                next_fragment_ident: 1,
                reassembly: Reassembly::default(),
            });
            nics.push(NicRt {
                spec: n.clone(),
                host: h,
                link,
                present: false,
                ports_now: 0,
                ports_peak: 0,
            });
        }
        let mut remote_by_addr = HashMap::with_hasher(FixedState::with_seed(seed));
        let mut remote_hosts = Vec::new();
        let mut bound = HashMap::with_hasher(FixedState::with_seed(seed));
        for r in &cfg.remotes {
            let h = hosts.len() as u32;
            let v = graph.add_node(NodeKind::Remote(h));
            let link = add_link(
                &mut graph,
                router,
                v,
                format!("remote/{}", r.name),
                &r.link,
                Role::Remote { host: h },
            );
            for a in &r.addresses {
                remote_by_addr.insert(*a, h);
            }
            for s in &r.services {
                bound.insert((h, s.proto.number(), s.port), Bound::Service(s.kind));
            }
            let mut rng = Rng::new(seed, stream_of(&format!("host/{}", r.name)));
            let next_port = 32768 + rng.below(20000) as u16;
            hosts.push(Host {
                name: r.name.clone(),
                nic: None,
                addresses: r.addresses.clone(),
                link,
                rng,
                next_port,
                stats: HostStats::default(),
                next_fragment_ident: 1,
                reassembly: Reassembly::default(),
            });
            remote_hosts.push(h);
        }
        let mut capture = Captures::new(links.len());
        for name in &cfg.capture {
            let id = *link_by_name
                .get(name)
                .ok_or_else(|| SimError::Topology(format!("capture: no link named `{name}`")))?;
            capture.enable(id);
        }
        let generators = cfg
            .generators
            .iter()
            .map(|g| GenRt {
                sampler: Sampler::new(g),
                rngs: g
                    .nics
                    .iter()
                    .map(|&n| {
                        let nic = cfg.nics.get(n as usize).map_or("", |x| x.name.as_str());
                        Rng::new(seed, stream_of(&format!("gen/{}/{}", g.name, nic)))
                    })
                    .collect(),
                spec: g.clone(),
                stats: GeneratorStats::default(),
            })
            .collect();
        let results = cfg
            .apps
            .iter()
            .map(|a| AppResult {
                name: a.name.clone(),
                kind: match a.kind {
                    AppKind::Tcp(_) => "tcp",
                    AppKind::Udp(_) => "udp",
                    AppKind::Ping(_) => "ping",
                    AppKind::Probe(_) => "probe",
                    AppKind::Attack(_) => "attack",
                },
                outcome: Outcome::Running,
                received: 0,
                retries: 0,
                icmp_errors: 0,
                mapping: None,
                filtering: None,
                packets: 0,
            })
            .collect::<Vec<_>>();
        let napps = results.len();
        let mut sim = Simulator {
            control: ControlPlane::new(&cfg)?,
            reconcile_at: BTreeSet::new(),
            now_ns: 0,
            queue: EventQueue::new(),
            graph,
            link_keys: links.iter().map(|l| stream_of(&l.name)).collect(),
            links,
            roles,
            link_by_name,
            hosts,
            nics,
            nic_by_addr: HashMap::with_hasher(FixedState::with_seed(seed)),
            remote_by_addr,
            remote_hosts,
            nodes,
            factory,
            owners: BTreeMap::new(),
            apps: Vec::new(),
            app_keys: Vec::new(),
            free_apps: Vec::new(),
            conns: HashMap::with_hasher(FixedState::with_seed(seed)),
            bound,
            pool: Vec::new(),
            out: Vec::new(),
            before: Vec::new(),
            observers,
            digest: Digest::default(),
            stats: SimStats::default(),
            results,
            result_app: vec![None; napps],
            generators,
            capture,
            comments: Comments::default(),
            note: String::new(),
            violation: None,
            router_rng: Rng::new(seed, stream_of("router")),
            table: Vec::new(),
            cfg,
        };
        let present: Vec<u32> = (0..sim.nics.len() as u32)
            .filter(|&i| sim.nics[i as usize].spec.present)
            .collect();
        for &i in &present {
            sim.bring_up_nic(i)?;
        }
        sim.reconcile();
        for i in 0..sim.cfg.apps.len() {
            let at = sim.cfg.apps[i].at_ns;
            sim.schedule(at, Ev::AppStart(i as u32));
        }
        for (i, (at, _)) in sim.cfg.faults.clone().iter().enumerate() {
            sim.schedule(*at, Ev::Fault(i as u32));
        }
        for g in 0..sim.generators.len() {
            for slot in 0..sim.generators[g].spec.nics.len() {
                let first = {
                    let gen_rt = &mut sim.generators[g];
                    gen_rt.spec.start_ns
                        + Sampler::next_arrival_ns(&gen_rt.spec, &mut gen_rt.rngs[slot])
                };
                sim.schedule(
                    first,
                    Ev::GenArrival {
                        generator: g as u32,
                        slot: slot as u32,
                    },
                );
            }
        }
        Ok(sim)
    }

    fn schedule(&mut self, at_ns: u64, ev: Ev) {
        self.queue.push(at_ns.max(self.now_ns), ev);
    }

    fn nic_info(&self, i: u32) -> NicInfo {
        let n = &self.nics[i as usize].spec;
        NicInfo {
            id: NicId(i),
            name: n.name.clone(),
            network: n.network,
            addresses: n.addresses.clone(),
            node: n.node,
        }
    }

    fn bring_up_nic(&mut self, i: u32) -> Result<(), ConfigError> {
        let (node, cfg) = {
            let n = &mut self.nics[i as usize];
            n.present = true;
            (
                n.spec.node,
                NicConfig {
                    network: NetworkId(n.spec.network),
                    addresses: n.spec.addresses.clone(),
                    name: n.spec.name.clone(),
                },
            )
        };
        for a in &cfg.addresses {
            self.nic_by_addr.insert((cfg.network.0, *a), i);
        }
        self.nodes[usize::from(node)].dp.add_nic(NicId(i), cfg)?;
        let info = self.nic_info(i);
        self.notify(&Observation::NicUpdated(&info));
        Ok(())
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

    // ----- control plane -------------------------------------------------------------------

    /// Reconciles the API world now, applies the resulting block changes to the dataplanes and
    /// queues a reconcile for when the next quarantine ends.
    fn reconcile(&mut self) {
        let (changes, next) = self.control.reconcile(Instant::from_nanos(self.now_ns));
        self.apply_changes(changes);
        if let Some(t) = next
            && self.reconcile_at.insert(t.as_nanos())
        {
            self.schedule(t.as_nanos(), Ev::Reconcile);
        }
    }

    fn apply_changes(&mut self, changes: Vec<BlockChange>) {
        let now = Instant::from_nanos(self.now_ns);
        let touched = !changes.is_empty();
        for c in changes {
            match c {
                BlockChange::Released { nic, family, block } => {
                    self.notify(&Observation::BlockReleased {
                        nic: NicId(nic),
                        family,
                        block,
                    });
                    let node = self.nics[nic as usize].spec.node;
                    self.nodes[usize::from(node)]
                        .dp
                        .release_block(now, NicId(nic), family);
                    self.owners.remove(&(block.nat_ip, block.port));
                    self.after_dataplane(node);
                }
                BlockChange::Assigned { nic, block } => {
                    self.notify(&Observation::BlockAssigned {
                        nic: NicId(nic),
                        block,
                    });
                    let node = self.nics[nic as usize].spec.node;
                    if self.nodes[usize::from(node)]
                        .dp
                        .assign_block(now, NicId(nic), block)
                        .is_err()
                    {
                        self.stats.control_errors += 1;
                    }
                    self.owners
                        .insert((block.nat_ip, block.port), (block.end_port, nic));
                    self.after_dataplane(node);
                }
            }
        }
        if touched {
            self.report_status();
        }
    }

    /// Invariant 8: hands the observer, per gateway, `portsUsed` and the routing table as the
    /// API reports them next to what the dataplanes hold. Dataplane blocks no gateway routes
    /// are reported in a last table without a gateway (P = 0).
    fn report_status(&mut self) {
        if self.observers.is_empty() {
            return;
        }
        let views = self.control.routing_views();
        let mut table = std::mem::take(&mut self.table);
        let mut routed: BTreeSet<(u32, Family)> = BTreeSet::new();
        for view in &views {
            table.clear();
            for (&(nic, f), &b) in &view.blocks {
                routed.insert((nic, f));
                let d = self
                    .nics
                    .get(nic as usize)
                    .filter(|n| n.present)
                    .and_then(|n| {
                        self.nodes[usize::from(n.spec.node)]
                            .dp
                            .block_of(NicId(nic), f)
                    });
                table.push((NicId(nic), f, Some(b), d));
            }
            self.notify(&Observation::Reconciled {
                ports_used: view.ports_used,
                ports_per_nic: view.ports_per_nic,
                table: &table,
            });
        }
        table.clear();
        for (i, n) in self.nics.iter().enumerate() {
            if !n.present {
                continue;
            }
            for f in [Family::V4, Family::V6] {
                if routed.contains(&(i as u32, f)) {
                    continue;
                }
                let d = self.nodes[usize::from(n.spec.node)]
                    .dp
                    .block_of(NicId(i as u32), f);
                if d.is_some() {
                    table.push((NicId(i as u32), f, None, d));
                }
            }
        }
        if views.is_empty() || !table.is_empty() {
            self.notify(&Observation::Reconciled {
                ports_used: 0,
                ports_per_nic: 0,
                table: &table,
            });
        }
        self.table = table;
    }

    fn apply_fault(&mut self, idx: u32) {
        let Some((_, fault)) = self.cfg.faults.get(idx as usize).cloned() else {
            return;
        };
        let now = Instant::from_nanos(self.now_ns);
        // Control-plane faults change the API world; the reconcile below turns them into
        // block changes, exactly as the reconciler would at this virtual time.
        let result: Result<(), ControlError> = match fault {
            Fault::LinkDown(name) | Fault::LinkUp(name) => {
                let up = matches!(self.cfg.faults[idx as usize].1, Fault::LinkUp(_));
                if let Some(&l) = self.link_by_name.get(&name) {
                    self.links[l as usize].up = up;
                }
                Ok(())
            }
            Fault::RestartNode(k) => {
                self.restart_node(k);
                Ok(())
            }
            Fault::RemoveNatIp(name) => self.control.remove_gateway_ip(&name),
            Fault::AddNatIp { name, addresses } => self.control.add_gateway_ip(name, addresses),
            Fault::SetPortsPerNic(p) => self.control.set_ports_per_nic(p),
            Fault::DeleteGateway => self.control.delete_gateway(),
            Fault::AddNic(i) => {
                if self.bring_up_nic(i).is_err() {
                    self.stats.control_errors += 1;
                }
                self.control.add_nic(i)
            }
            Fault::DeleteNic(i) => {
                let r = self.control.delete_nic(i);
                // Release the blocks before the NIC leaves its dataplane.
                self.reconcile();
                let node = self.nics[i as usize].spec.node;
                self.nodes[usize::from(node)].dp.remove_nic(now, NicId(i));
                self.after_dataplane(node);
                self.nics[i as usize].present = false;
                let (net, addrs) = (
                    self.nics[i as usize].spec.network,
                    self.nics[i as usize].spec.addresses.clone(),
                );
                for a in addrs {
                    self.nic_by_addr.remove(&(net, a));
                }
                self.notify(&Observation::NicRemoved(NicId(i)));
                r
            }
            Fault::Relabel { nic, labels } => self.control.relabel(nic, labels),
            Fault::AttachVirtualIp(nic) => self.control.set_virtual_ip(nic, true),
            Fault::DetachVirtualIp(nic) => self.control.set_virtual_ip(nic, false),
        };
        if result.is_err() {
            self.stats.control_errors += 1;
        }
        self.digest.word(0xFA17 ^ u64::from(idx));
        self.reconcile();
    }

    fn restart_node(&mut self, k: u16) {
        if self.nodes.get(usize::from(k)).is_none() {
            return;
        }
        self.stats.restarts += 1;
        let mut gw_cfg = self.cfg.gateway.clone();
        gw_cfg.record_events = true;
        gw_cfg.seed = self.cfg.seed;
        let fresh = match (self.factory)(gw_cfg) {
            Ok(d) => d,
            Err(_) => {
                self.stats.control_errors += 1;
                return;
            }
        };
        self.nodes[usize::from(k)].dp = fresh;
        self.nodes[usize::from(k)].timer_at_ns = None;
        self.notify(&Observation::NodeRestarted { node: k });
        let now = Instant::from_nanos(self.now_ns);
        for i in 0..self.nics.len() as u32 {
            let n = &self.nics[i as usize];
            if !n.present || n.spec.node != k {
                continue;
            }
            self.nics[i as usize].ports_now = 0;
            if self.bring_up_nic(i).is_err() {
                self.stats.control_errors += 1;
            }
            // The control plane re-pushes the blocks the API holds for the NIC.
            for f in [Family::V4, Family::V6] {
                if let Some(b) = self.control.block(i, f) {
                    self.notify(&Observation::BlockAssigned {
                        nic: NicId(i),
                        block: b,
                    });
                    if self.nodes[usize::from(k)]
                        .dp
                        .assign_block(now, NicId(i), b)
                        .is_err()
                    {
                        self.stats.control_errors += 1;
                    }
                }
            }
        }
        self.after_dataplane(k);
        self.report_status();
    }

    // ----- run loop ------------------------------------------------------------------------

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
                let a = &self.apps[app as usize];
                if a.generation == generation && a.scheduled_ns == Some(self.now_ns) {
                    self.apps[app as usize].scheduled_ns = None;
                    self.with_app(app, |a, io| a.on_timer(io));
                }
            }
            Ev::DataplaneTimer(k) => {
                let node = &mut self.nodes[usize::from(k)];
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

    // ----- links ---------------------------------------------------------------------------

    fn send(&mut self, link: u32, from: u8, kind: Kind, buf: Vec<u8>, trail: Option<Box<Trail>>) {
        self.send_from(link, from, kind, buf, None, trail);
    }

    /// Sends on a link, splitting a datagram larger than its MTU: by the sending host's own
    /// stack when `source_host` is given (IPv6 too: only the source may), else as a router
    /// (IPv4 without DF). What cannot be fragmented goes on and the link drops and counts it.
    fn send_from(
        &mut self,
        link: u32,
        from: u8,
        kind: Kind,
        buf: Vec<u8>,
        source_host: Option<u32>,
        trail: Option<Box<Trail>>,
    ) {
        let mtu = self.links[link as usize].config.mtu_bytes as usize;
        if buf.len() > mtu {
            let ident = source_host.map(|h| self.hosts[h as usize].next_fragment_ident);
            let mut pieces = Vec::new();
            if fragment(&buf, mtu, ident, &mut pieces).is_ok() {
                match source_host {
                    Some(h) => {
                        let host = &mut self.hosts[h as usize];
                        host.next_fragment_ident = host.next_fragment_ident.wrapping_add(1);
                        host.stats.fragmented += 1;
                    }
                    None => self.stats.fragmented_in_transit += 1,
                }
                self.recycle(buf);
                for p in pieces {
                    self.transmit(link, from, kind, p, trail.clone());
                }
                return;
            }
        }
        self.transmit(link, from, kind, buf, trail);
    }

    fn transmit(
        &mut self,
        link: u32,
        from: u8,
        kind: Kind,
        buf: Vec<u8>,
        mut trail: Option<Box<Trail>>,
    ) {
        let now = self.now_ns;
        self.capture.record(link, now, &buf, &mut trail);
        match self.links[link as usize].transmit(now, buf.len()) {
            Transmit::Dropped => {
                if let Some(t) = trail.as_deref().filter(|t| t.captured()) {
                    let text = format!("lost on link {}", self.links[link as usize].name);
                    self.capture.annotate(t, &text);
                }
                self.pool.push(buf);
            }
            Transmit::Deliver {
                at_ns,
                duplicate_at_ns,
            } => {
                let to = 1 - from;
                if let Some(d) = duplicate_at_ns {
                    let mut copy = self.pool.pop().unwrap_or_default();
                    copy.clear();
                    copy.extend_from_slice(&buf);
                    self.schedule(
                        d,
                        Ev::Arrive {
                            link,
                            to,
                            kind,
                            buf: copy,
                            trail: trail.clone(),
                        },
                    );
                }
                self.schedule(
                    at_ns,
                    Ev::Arrive {
                        link,
                        to,
                        kind,
                        buf,
                        trail,
                    },
                );
            }
        }
    }

    fn arrive(&mut self, link: u32, to: u8, kind: Kind, buf: Vec<u8>, trail: Option<Box<Trail>>) {
        self.stats.packet_events += 1;
        self.digest.word(self.now_ns);
        // Links enter the digest by a hash of their name, not their index, so adding a host
        // elsewhere leaves an otherwise identical trace with the same digest.
        self.digest
            .word(self.link_keys[link as usize] ^ u64::from(to));
        self.digest.bytes(&buf);
        let clean = self.violation.is_none();
        match (self.roles[link as usize], to) {
            (Role::Access { nic, .. }, 0) => {
                let h = self.nics[nic as usize].host;
                self.deliver(h, kind, buf);
                self.mark_delivered(trail.as_deref(), clean);
            }
            (Role::Access { nic, node }, _) => self.on_nic_packet(node, nic, buf, trail),
            (Role::Uplink { node }, 0) => self.on_router_packet(node, kind, buf, trail),
            (Role::Uplink { .. }, _) => self.at_router(kind, buf, false, trail),
            (Role::Remote { .. }, 0) => self.at_router(kind, buf, true, trail),
            (Role::Remote { host }, _) => {
                self.deliver(host, kind, buf);
                self.mark_delivered(trail.as_deref(), clean);
            }
        }
    }

    // ----- verdict comments of captured packets (sim::capture) -----------------------------

    /// A violation found while a captured packet was delivered is marked on it.
    fn mark_delivered(&mut self, trail: Option<&Trail>, clean: bool) {
        if let Some(t) = trail.filter(|t| t.captured())
            && clean
            && self.violation.is_some()
        {
            self.note.clear();
            self.push_violation();
            let text = self.note.trim_start_matches("; ").to_string();
            self.capture.annotate(t, &text);
        }
    }

    /// Appends the run's violation to `note` (`; INVARIANT VIOLATED (1): invariant: message`).
    fn push_violation(&mut self) {
        if let Some(v) = &self.violation {
            comment::violations(&mut self.note, 1, [(v.invariant, v.message.as_str())]);
        }
    }

    /// After a node processed a packet (`self.before` as it entered, `after` as it left): its
    /// captures get the verdict, and the trail of what the node sends for it is returned with
    /// the node's comment on that (`None` when no link is captured).
    fn verdict_comments(
        &mut self,
        trail: Option<&Trail>,
        verdict: Verdict,
        after: &[u8],
        clean: bool,
    ) -> Option<Box<Trail>> {
        if !self.capture.any() {
            return None;
        }
        let violated = clean && self.violation.is_some();
        let nics = &self.nics;
        let host = |n: NicId, out: &mut String| {
            out.push_str(
                nics.get(n.0 as usize)
                    .map_or("an unknown NIC", |x| x.spec.name.as_str()),
            );
        };
        if let Some(t) = trail.filter(|t| t.captured()) {
            self.note.clear();
            self.comments
                .ingress(&mut self.note, &self.before, after, verdict, &host);
            if violated && let Some(v) = &self.violation {
                comment::violations(&mut self.note, 1, [(v.invariant, v.message.as_str())]);
            }
            self.capture.annotate(t, &self.note);
        }
        self.note.clear();
        let origin = format_args!("event {}", self.stats.events);
        let (emitted, egress) = match verdict {
            Verdict::Forward(e) => (Emitted::Forward, e),
            Verdict::Respond(e) => (Emitted::Respond(&origin), e),
            Verdict::PassThrough => {
                self.comments
                    .ingress(&mut self.note, &self.before, after, verdict, &host);
                return Some(Trail::sent(self.note.clone()));
            }
            Verdict::Buffered | Verdict::Drop(_) => return None,
        };
        self.comments
            .egress(&mut self.note, &self.before, after, emitted, egress, &host);
        if violated && let Some(v) = &self.violation {
            comment::violations(&mut self.note, 1, [(v.invariant, v.message.as_str())]);
        }
        Some(Trail::sent(self.note.clone()))
    }

    /// Marks the captures of a packet the simulator itself drops (no route, no such NIC).
    fn mark_dropped(&mut self, trail: Option<&Trail>, why: &str) {
        if let Some(t) = trail.filter(|t| t.captured()) {
            self.capture.annotate(t, why);
        }
    }

    fn recycle(&mut self, buf: Vec<u8>) {
        if self.pool.len() < 4096 {
            self.pool.push(buf);
        }
    }

    // ----- router --------------------------------------------------------------------------

    fn at_router(
        &mut self,
        kind: Kind,
        buf: Vec<u8>,
        from_internet: bool,
        trail: Option<Box<Trail>>,
    ) {
        let target_node = match kind {
            Kind::ToNic(m, _) => self.nics.get(m as usize).map(|n| n.spec.node),
            Kind::ToNode(k) => Some(k),
            Kind::Plain | Kind::FromOutside => {
                let Some(dst) = dst_of(&buf) else {
                    self.mark_dropped(trail.as_deref(), "dropped by the router: no address");
                    self.recycle(buf);
                    return;
                };
                if let Some(&h) = self.remote_by_addr.get(&dst) {
                    let link = self.hosts[h as usize].link;
                    self.send(link, 0, Kind::Plain, buf, trail);
                    return;
                }
                if !from_internet {
                    self.stats.no_route += 1;
                    self.mark_dropped(trail.as_deref(), "dropped by the router: no route");
                    self.recycle(buf);
                    return;
                }
                // The underlay may deliver to any node (behaviour §4 distributed dataplane).
                let n = self.nodes.len() as u64;
                Some(if n > 1 {
                    self.router_rng.below(n) as u16
                } else {
                    0
                })
            }
        };
        match target_node.and_then(|k| self.nodes.get(usize::from(k)).map(|n| n.uplink)) {
            Some(uplink) => self.send(uplink, 1, kind, buf, trail),
            None => {
                self.stats.no_route += 1;
                self.mark_dropped(trail.as_deref(), "dropped by the router: no route");
                self.recycle(buf);
            }
        }
    }

    // ----- dataplane nodes -----------------------------------------------------------------

    fn on_nic_packet(&mut self, node: u16, nic: u32, buf: Vec<u8>, trail: Option<Box<Trail>>) {
        self.process_and_route(node, Ingress::Inside(NicId(nic)), buf, trail);
    }

    /// `process` and route the verdict; captured packets get their comments on the way.
    fn process_and_route(
        &mut self,
        node: u16,
        ingress: Ingress,
        mut buf: Vec<u8>,
        trail: Option<Box<Trail>>,
    ) {
        let clean = self.violation.is_none();
        let verdict = self.process(node, ingress, &mut buf);
        let out = self.verdict_comments(trail.as_deref(), verdict, &buf, clean);
        self.route_verdict(node, ingress, verdict, buf, out);
    }

    fn on_router_packet(&mut self, node: u16, kind: Kind, buf: Vec<u8>, trail: Option<Box<Trail>>) {
        match kind {
            Kind::ToNic(m, fo) => self.send_to_nic(node, m, fo, buf, trail),
            Kind::ToNode(_) => self.process_and_route(node, Ingress::Outside, buf, trail),
            Kind::Plain | Kind::FromOutside => {
                if self.nodes.len() > 1
                    && let Some(owner) = self.owner_node(&buf)
                    && owner != node
                {
                    self.stats.relayed += 1;
                    let uplink = self.nodes[usize::from(node)].uplink;
                    self.send(uplink, 0, Kind::ToNode(owner), buf, trail);
                    return;
                }
                self.process_and_route(node, Ingress::Outside, buf, trail);
            }
        }
    }

    /// The node owning the destination (NAT IP, port) of an inbound packet, from the blocks the
    /// control plane handed out (the simulator's own knowledge, not the dataplane's).
    fn owner_node(&self, buf: &[u8]) -> Option<u16> {
        let t = Tuple::parse(buf)?;
        let (ip, port) = match t.icmp {
            Some(IcmpKind::Error) => {
                let off = quoted_offset(buf)?;
                let q = Tuple::parse_quoted(&buf[off..])?;
                (q.src, q.src_port)
            }
            Some(IcmpKind::EchoReply) => (t.dst, t.dst_port),
            Some(_) => return None,
            None => (t.dst, t.dst_port),
        };
        let (&(bip, _), &(end, nic)) = self.owners.range(..=(ip, port)).next_back()?;
        (bip == ip && port <= end).then(|| self.nics[nic as usize].spec.node)
    }

    fn process(&mut self, node: u16, ingress: Ingress, buf: &mut Vec<u8>) -> Verdict {
        let now = Instant::from_nanos(self.now_ns);
        // Observers and verdict comments compare the packet before and after.
        if !self.observers.is_empty() || self.capture.any() {
            self.before.clear();
            self.before.extend_from_slice(buf);
        }
        let verdict = self.nodes[usize::from(node)].dp.process(now, ingress, buf);
        self.digest.word(verdict_code(verdict));
        let events = self.nodes[usize::from(node)].dp.drain_events();
        for e in &events {
            self.track_ports(e);
            self.notify(&Observation::Dataplane {
                node,
                event: e,
                during: Some(ingress),
            });
        }
        if !self.observers.is_empty() {
            let obs = Observation::Processed {
                node,
                ingress,
                before: &self.before,
                verdict,
                after: buf,
            };
            fan_out(
                &mut self.observers,
                self.stats.events,
                now,
                &obs,
                &mut self.violation,
            );
        }
        self.after_dataplane(node);
        verdict
    }

    /// Drains events and self-originated packets of a node and re-arms its timer.
    fn after_dataplane(&mut self, k: u16) {
        let events = self.nodes[usize::from(k)].dp.drain_events();
        for e in &events {
            self.track_ports(e);
            self.notify(&Observation::Dataplane {
                node: k,
                event: e,
                during: None,
            });
        }
        while let Some((egress, pkt)) = self.nodes[usize::from(k)].dp.poll_transmit() {
            let to_nic = match egress {
                Egress::Nic(n) => Some(n),
                Egress::Outside => None,
            };
            self.notify(&Observation::Transmitted {
                node: k,
                to_nic,
                pkt: &pkt,
            });
            let trail = if self.capture.any() {
                self.note.clear();
                let nics = &self.nics;
                self.comments.egress(
                    &mut self.note,
                    &pkt,
                    &pkt,
                    Emitted::Released,
                    egress,
                    &|n, out| {
                        out.push_str(
                            nics.get(n.0 as usize)
                                .map_or("an unknown NIC", |x| x.spec.name.as_str()),
                        );
                    },
                );
                Some(Trail::sent(self.note.clone()))
            } else {
                None
            };
            match to_nic {
                Some(n) => self.send_to_nic(k, n.0, true, pkt, trail),
                None => {
                    let up = self.nodes[usize::from(k)].uplink;
                    self.send(up, 0, Kind::Plain, pkt, trail);
                }
            }
        }
        let node = &mut self.nodes[usize::from(k)];
        if let Some(t) = node.dp.poll_wakeup() {
            let t = t.as_nanos().max(self.now_ns);
            if node.timer_at_ns.is_none_or(|s| t < s) {
                node.timer_at_ns = Some(t);
                self.schedule(t, Ev::DataplaneTimer(k));
            }
        }
    }

    fn track_ports(&mut self, e: &Event) {
        let (nic, delta) = match e {
            Event::FlowCreated { flow, .. } => (flow.nic, 1i64),
            Event::PortReleased { flow, .. } => (flow.nic, -1),
            Event::BlockRemoved { nic, .. } => {
                if let Some(n) = self.nics.get_mut(nic.0 as usize) {
                    n.ports_now = 0;
                }
                return;
            }
            _ => return,
        };
        if let Some(n) = self.nics.get_mut(nic.0 as usize) {
            n.ports_now = n.ports_now.saturating_add_signed(delta);
            n.ports_peak = n.ports_peak.max(n.ports_now);
        }
    }

    fn route_verdict(
        &mut self,
        node: u16,
        ingress: Ingress,
        verdict: Verdict,
        buf: Vec<u8>,
        trail: Option<Box<Trail>>,
    ) {
        match verdict {
            Verdict::Forward(Egress::Outside) | Verdict::Respond(Egress::Outside) => {
                let up = self.nodes[usize::from(node)].uplink;
                self.send(up, 0, Kind::Plain, buf, trail);
            }
            Verdict::Forward(Egress::Nic(m)) => self.send_to_nic(node, m.0, true, buf, trail),
            Verdict::Respond(Egress::Nic(m)) => self.send_to_nic(node, m.0, false, buf, trail),
            Verdict::PassThrough => {
                let (Ingress::Inside(src), Some(dst)) = (ingress, dst_of(&buf)) else {
                    self.recycle(buf);
                    return;
                };
                let net = self.nics[src.0 as usize].spec.network;
                match self.nic_by_addr.get(&(net, dst)) {
                    Some(&m) => self.send_to_nic(node, m, false, buf, trail),
                    None => {
                        self.stats.no_route += 1;
                        self.mark_dropped(trail.as_deref(), "no route to an inside host");
                        self.recycle(buf);
                    }
                }
            }
            Verdict::Buffered | Verdict::Drop(_) => self.recycle(buf),
        }
    }

    fn send_to_nic(
        &mut self,
        node: u16,
        m: u32,
        from_outside: bool,
        buf: Vec<u8>,
        trail: Option<Box<Trail>>,
    ) {
        let Some(n) = self.nics.get(m as usize).filter(|n| n.present) else {
            self.stats.no_such_nic += 1;
            self.mark_dropped(trail.as_deref(), "dropped: the NIC is gone");
            self.recycle(buf);
            return;
        };
        if n.spec.node == node {
            let kind = if from_outside {
                Kind::FromOutside
            } else {
                Kind::Plain
            };
            let link = n.link;
            self.send(link, 1, kind, buf, trail);
        } else {
            self.stats.relayed += 1;
            let up = self.nodes[usize::from(node)].uplink;
            self.send(up, 0, Kind::ToNic(m, from_outside), buf, trail);
        }
    }

    // ----- hosts ---------------------------------------------------------------------------

    fn host_send(&mut self, h: u32, buf: Vec<u8>) {
        let host = &mut self.hosts[h as usize];
        if let Some(n) = host.nic
            && !self.nics[n as usize].present
        {
            self.pool.push(buf);
            return;
        }
        host.stats.sent += 1;
        let link = host.link;
        let from = match self.roles[link as usize] {
            Role::Access { .. } => 0,
            _ => 1,
        };
        self.send_from(link, from, Kind::Plain, buf, Some(h), None);
    }

    fn flush_out(&mut self, h: u32) {
        let mut out = std::mem::take(&mut self.out);
        for b in out.drain(..) {
            self.host_send(h, b);
        }
        self.out = out;
    }

    fn deliver(&mut self, h: u32, kind: Kind, buf: Vec<u8>) {
        let from_outside = matches!(kind, Kind::FromOutside);
        let nic = self.hosts[h as usize].nic;
        self.notify(&Observation::Delivered {
            nic: nic.map(NicId),
            from_outside,
            pkt: &buf,
        });
        let st = &mut self.hosts[h as usize].stats;
        st.received += 1;
        if from_outside {
            st.from_outside += 1;
        }
        let buf = if may_be_fragment(&buf) {
            match self.hosts[h as usize].reassembly.offer(self.now_ns, buf) {
                Offer::Whole(whole) => whole,
                Offer::Pending | Offer::Dropped => return,
            }
        } else {
            buf
        };
        let Some(t) = Tuple::parse(&buf) else {
            self.unmatched(h, from_outside);
            self.recycle(buf);
            return;
        };
        match t.icmp {
            Some(IcmpKind::EchoRequest) => {
                let mut b = self.pool.pop().unwrap_or_default();
                build_echo(
                    &mut b,
                    t.dst,
                    t.src,
                    false,
                    t.src_port,
                    t.icmp_seq,
                    t.payload_len,
                );
                self.host_send(h, b);
            }
            Some(IcmpKind::EchoReply) => {
                let key = SocketKey {
                    host: h,
                    proto: t.protocol,
                    port: t.dst_port,
                    remote: SocketAddr::new(t.src, 0),
                };
                match self.conns.get(&key).copied() {
                    Some(a) => self.with_app(a, |app, io| app.on_packet(&t, &buf, io)),
                    None => self.unmatched(h, from_outside),
                }
            }
            Some(IcmpKind::Error) => {
                self.hosts[h as usize].stats.icmp_errors += 1;
                let q = quoted_offset(&buf).and_then(|o| Tuple::parse_quoted(&buf[o..]));
                let app = q.and_then(|q| {
                    let remote = if q.icmp.is_some() {
                        SocketAddr::new(q.dst, 0)
                    } else {
                        q.dst_addr()
                    };
                    self.conns
                        .get(&SocketKey {
                            host: h,
                            proto: q.protocol,
                            port: q.src_port,
                            remote,
                        })
                        .copied()
                });
                match app {
                    Some(a) => self.apps[a as usize].on_icmp_error(),
                    None => self.unmatched(h, from_outside),
                }
            }
            Some(IcmpKind::Other) => self.unmatched(h, from_outside),
            None => self.deliver_l4(h, &t, &buf, from_outside),
        }
        self.recycle(buf);
    }

    fn unmatched(&mut self, h: u32, from_outside: bool) {
        let st = &mut self.hosts[h as usize].stats;
        st.unmatched += 1;
        if from_outside {
            st.unsolicited_from_outside += 1;
        }
    }

    fn deliver_l4(&mut self, h: u32, t: &Tuple, buf: &[u8], from_outside: bool) {
        let key = SocketKey {
            host: h,
            proto: t.protocol,
            port: t.dst_port,
            remote: t.src_addr(),
        };
        if let Some(&a) = self.conns.get(&key) {
            self.with_app(a, |app, io| app.on_packet(t, buf, io));
            return;
        }
        match self.bound.get(&(h, t.protocol, t.dst_port)).copied() {
            Some(Bound::App(a)) => self.with_app(a, |app, io| app.on_packet(t, buf, io)),
            Some(Bound::Service(kind)) => self.serve(h, kind, t, buf, key),
            None => {
                self.unmatched(h, from_outside);
                self.refuse(h, t, buf);
            }
        }
    }

    /// What a host's stack does with a packet for a closed port: RST for TCP (unless it is one),
    /// ICMP port unreachable for UDP.
    fn refuse(&mut self, h: u32, t: &Tuple, buf: &[u8]) {
        let mut b = self.pool.pop().unwrap_or_default();
        if t.protocol == Proto::Tcp.number() {
            if t.tcp_flags & RST != 0 {
                self.pool.push(b);
                return;
            }
            let seq = if t.tcp_flags & ACK != 0 { t.ack } else { 0 };
            let ack = t
                .seq
                .wrapping_add(t.payload_len as u32 + u32::from(t.tcp_flags & SYN != 0));
            build_tcp(&mut b, t.dst_addr(), t.src_addr(), RST | ACK, seq, ack, 0);
        } else {
            let (ty, code) = if t.dst.is_ipv4() { (3, 3) } else { (1, 4) };
            build_icmp_error(&mut b, t.dst, t.src, ty, code, buf);
        }
        self.host_send(h, b);
    }

    fn serve(&mut self, h: u32, kind: ServiceKind, t: &Tuple, buf: &[u8], key: SocketKey) {
        let tcp = t.protocol == Proto::Tcp.number();
        match kind {
            ServiceKind::Respond { response_bytes } if tcp => {
                if t.tcp_flags & (SYN | ACK) != SYN {
                    self.unmatched(h, false);
                    self.refuse(h, t, buf);
                    return;
                }
                let iss = self.hosts[h as usize].rng.next_u64() as u32;
                let now_ns = self.now_ns;
                let mut out = std::mem::take(&mut self.out);
                let server = {
                    let mut io = Io {
                        now_ns,
                        out: &mut out,
                        pool: &mut self.pool,
                    };
                    TcpServer::accept(t.dst_addr(), t, iss, response_bytes, &mut io)
                };
                self.out = out;
                let a = self.new_app(h, AppState::TcpServer(Box::new(server)), None, None);
                self.conns.insert(key, a);
                self.app_keys[a as usize].0 = Some(key);
                self.flush_out(h);
                self.reschedule(a);
            }
            ServiceKind::Respond { response_bytes } => {
                if response_bytes > 0 {
                    let mut b = self.pool.pop().unwrap_or_default();
                    build_udp_len(&mut b, t.dst_addr(), t.src_addr(), response_bytes as usize);
                    self.host_send(h, b);
                }
            }
            ServiceKind::Stun if !tcp => {
                let cmd = buf.get(t.payload_offset).copied().unwrap_or(0);
                let addrs = &self.hosts[h as usize].addresses;
                let other_ip = addrs.iter().copied().find(|a| *a != t.dst).unwrap_or(t.dst);
                let other_port = self
                    .cfg
                    .remotes
                    .iter()
                    .flat_map(|r| r.services.iter())
                    .find(|s| s.kind == ServiceKind::Stun && s.port != t.dst_port)
                    .map_or(t.dst_port, |s| s.port);
                let from = match cmd {
                    1 => SocketAddr::new(t.dst, other_port),
                    2 => SocketAddr::new(other_ip, other_port),
                    3 => SocketAddr::new(other_ip, t.dst_port),
                    _ => t.dst_addr(),
                };
                let mut payload = Vec::with_capacity(19);
                encode_endpoint(t.src_addr(), &mut payload);
                let mut b = self.pool.pop().unwrap_or_default();
                build_udp(&mut b, from, t.src_addr(), &payload);
                self.host_send(h, b);
            }
            ServiceKind::Stun => self.refuse(h, t, buf),
        }
    }

    // ----- applications --------------------------------------------------------------------

    fn new_app(
        &mut self,
        host: u32,
        state: AppState,
        named: Option<u32>,
        generator: Option<u32>,
    ) -> u32 {
        let app = App {
            host,
            named,
            generator,
            generation: 0,
            state,
            outcome: Outcome::Running,
            scheduled_ns: None,
            linger_until_ns: None,
        };
        match self.free_apps.pop() {
            Some(i) => {
                let generation = self.apps[i as usize].generation.wrapping_add(1);
                self.apps[i as usize] = App { generation, ..app };
                self.app_keys[i as usize] = (None, None);
                i
            }
            None => {
                self.apps.push(app);
                self.app_keys.push((None, None));
                (self.apps.len() - 1) as u32
            }
        }
    }

    /// Runs `f` on an application with I/O scratch, sends what it wrote, re-arms its timer and
    /// frees it when finished.
    fn with_app(&mut self, a: u32, f: impl FnOnce(&mut App, &mut Io)) {
        let now_ns = self.now_ns;
        let mut out = std::mem::take(&mut self.out);
        {
            let mut io = Io {
                now_ns,
                out: &mut out,
                pool: &mut self.pool,
            };
            f(&mut self.apps[a as usize], &mut io);
        }
        self.out = out;
        let h = self.apps[a as usize].host;
        self.flush_out(h);
        self.reschedule(a);
    }

    fn reschedule(&mut self, a: u32) {
        let now_ns = self.now_ns;
        if self.apps[a as usize].finished(now_ns) {
            self.finish_app(a);
            return;
        }
        let app = &self.apps[a as usize];
        if let Some(t) = app.wakeup()
            && app.scheduled_ns != Some(t)
        {
            let generation = app.generation;
            self.apps[a as usize].scheduled_ns = Some(t);
            self.schedule(t, Ev::AppTimer { app: a, generation });
        }
    }

    fn finish_app(&mut self, a: u32) {
        self.snapshot(a);
        let app = &self.apps[a as usize];
        if let Some(g) = app.generator {
            let st = &mut self.generators[g as usize].stats;
            match app.outcome {
                Outcome::Completed => st.completed += 1,
                Outcome::Failed(_) => st.failed += 1,
                Outcome::Running => {}
            }
        }
        let (key, bound) = self.app_keys[a as usize];
        if let Some(k) = key {
            self.conns.remove(&k);
        }
        if let Some(b) = bound {
            self.bound.remove(&b);
        }
        if let Some(n) = app.named {
            self.result_app[n as usize] = None;
        }
        let app = &mut self.apps[a as usize];
        app.state = AppState::Done;
        app.scheduled_ns = None;
        app.named = None;
        app.generator = None;
        self.app_keys[a as usize] = (None, None);
        self.free_apps.push(a);
    }

    fn snapshot(&mut self, a: u32) {
        let app = &self.apps[a as usize];
        let Some(n) = app.named else { return };
        let r = &mut self.results[n as usize];
        r.outcome = app.outcome;
        match &app.state {
            AppState::TcpClient(c) => {
                r.received = c.ep.bytes_received;
                r.retries = c.ep.retransmits;
            }
            AppState::Udp(u) => {
                r.received = u64::from(u.replies);
                r.retries = u64::from(u.missing);
                r.icmp_errors = u64::from(u.icmp_errors);
            }
            AppState::Ping(p) => r.received = u64::from(p.replies),
            AppState::Probe(p) => {
                r.mapping = Some(p.mapping.name());
                r.filtering = Some(p.filtering.name());
            }
            AppState::Flood(f) => r.packets = u64::from(f.packets),
            AppState::TcpServer(_) | AppState::Done => {}
        }
    }

    fn ephemeral_port(&mut self, h: u32, proto: u8, remote: SocketAddr) -> u16 {
        for _ in 0..64 {
            let host = &mut self.hosts[h as usize];
            let p = host.next_port;
            host.next_port = if p >= 60999 { 32768 } else { p + 1 };
            let key = SocketKey {
                host: h,
                proto,
                port: p,
                remote,
            };
            if !self.conns.contains_key(&key) && !self.bound.contains_key(&(h, proto, p)) {
                return p;
            }
        }
        self.hosts[h as usize].next_port
    }

    fn source_addr(&self, h: u32, dst: IpAddr) -> IpAddr {
        let addrs = &self.hosts[h as usize].addresses;
        addrs
            .iter()
            .copied()
            .find(|a| a.is_ipv4() == dst.is_ipv4())
            .or_else(|| addrs.first().copied())
            .unwrap_or(dst)
    }

    fn host_index(&self, r: HostRef) -> Option<u32> {
        match r {
            HostRef::Nic(i) => self.nics.get(i as usize).map(|n| n.host),
            HostRef::Remote(i) => self.remote_hosts.get(i as usize).copied(),
        }
    }

    fn start_app(&mut self, i: u32) {
        let spec = self.cfg.apps[i as usize].clone();
        let Some(h) = self.host_index(spec.host) else {
            return;
        };
        match spec.kind {
            AppKind::Attack(
                Attack::SpoofReply { .. } | Attack::ForgedIcmp { .. } | Attack::RstInject { .. },
            ) => {
                let sent = self.one_shot_attack(h, &spec.kind);
                let r = &mut self.results[i as usize];
                r.packets = u64::from(sent);
                r.outcome = if sent > 0 {
                    Outcome::Completed
                } else {
                    Outcome::Failed("no live flow to target")
                };
            }
            kind => {
                if let Some(a) = self.spawn(h, &kind, Some(i), None) {
                    self.result_app[i as usize] = Some(a);
                }
            }
        }
    }

    /// Starts an application on host `h`.
    fn spawn(
        &mut self,
        h: u32,
        kind: &AppKind,
        named: Option<u32>,
        generator: Option<u32>,
    ) -> Option<u32> {
        let now_ns = self.now_ns;
        let (state, key, bound) = match *kind {
            AppKind::Tcp(p) => {
                let proto = Proto::Tcp.number();
                let port = p
                    .src_port
                    .unwrap_or_else(|| self.ephemeral_port(h, proto, p.to));
                let local = SocketAddr::new(self.source_addr(h, p.to.ip()), port);
                let iss = self.hosts[h as usize].rng.next_u64() as u32;
                let mut out = std::mem::take(&mut self.out);
                let c = TcpClient::start(
                    local,
                    p,
                    iss,
                    &mut Io {
                        now_ns,
                        out: &mut out,
                        pool: &mut self.pool,
                    },
                );
                self.out = out;
                let key = SocketKey {
                    host: h,
                    proto,
                    port,
                    remote: p.to,
                };
                (AppState::TcpClient(Box::new(c)), Some(key), None)
            }
            AppKind::Udp(p) => {
                let proto = Proto::Udp.number();
                let port = p
                    .src_port
                    .unwrap_or_else(|| self.ephemeral_port(h, proto, p.to));
                let local = SocketAddr::new(self.source_addr(h, p.to.ip()), port);
                let mut out = std::mem::take(&mut self.out);
                let (c, o) = UdpClient::start(
                    local,
                    p,
                    &mut Io {
                        now_ns,
                        out: &mut out,
                        pool: &mut self.pool,
                    },
                );
                self.out = out;
                let key = SocketKey {
                    host: h,
                    proto,
                    port,
                    remote: p.to,
                };
                let a = self.new_app(h, AppState::Udp(c), named, generator);
                self.apps[a as usize].settle(o);
                return Some(self.register(a, h, Some(key), None));
            }
            AppKind::Ping(p) => {
                let local = self.source_addr(h, p.to);
                let proto = if p.to.is_ipv4() { 1 } else { 58 };
                let remote = SocketAddr::new(p.to, 0);
                let ident = p
                    .ident
                    .unwrap_or_else(|| self.ephemeral_port(h, proto, remote));
                let mut out = std::mem::take(&mut self.out);
                let (c, o) = PingClient::start(
                    local,
                    ident,
                    p,
                    &mut Io {
                        now_ns,
                        out: &mut out,
                        pool: &mut self.pool,
                    },
                );
                self.out = out;
                let key = SocketKey {
                    host: h,
                    proto,
                    port: ident,
                    remote,
                };
                let a = self.new_app(h, AppState::Ping(c), named, generator);
                self.apps[a as usize].settle(o);
                return Some(self.register(a, h, Some(key), None));
            }
            AppKind::Probe(p) => {
                let proto = Proto::Udp.number();
                let port = p
                    .src_port
                    .unwrap_or_else(|| self.ephemeral_port(h, proto, p.primary));
                let local = SocketAddr::new(self.source_addr(h, p.primary.ip()), port);
                let mut out = std::mem::take(&mut self.out);
                let c = Probe::start(
                    local,
                    p,
                    &mut Io {
                        now_ns,
                        out: &mut out,
                        pool: &mut self.pool,
                    },
                );
                self.out = out;
                (AppState::Probe(Box::new(c)), None, Some((h, proto, port)))
            }
            AppKind::Attack(ref attack) => {
                let dst = match attack {
                    Attack::PortScan { target, .. } => *target,
                    Attack::Unsolicited { target, .. } => target.ip(),
                    _ => return None,
                };
                let src = self.source_addr(h, dst);
                let mut out = std::mem::take(&mut self.out);
                let (f, o) = Flood::start(
                    src,
                    attack.clone(),
                    &mut Io {
                        now_ns,
                        out: &mut out,
                        pool: &mut self.pool,
                    },
                );
                self.out = out;
                let a = self.new_app(h, AppState::Flood(Box::new(f)), named, generator);
                self.apps[a as usize].settle(o);
                return Some(self.register(a, h, None, None));
            }
        };
        let a = self.new_app(h, state, named, generator);
        Some(self.register(a, h, key, bound))
    }

    fn register(&mut self, a: u32, h: u32, key: Option<SocketKey>, bound: Option<BoundKey>) -> u32 {
        if let Some(k) = key {
            self.conns.insert(k, a);
        }
        if let Some(b) = bound {
            self.bound.insert(b, Bound::App(a));
        }
        self.app_keys[a as usize] = (key, bound);
        self.flush_out(h);
        self.reschedule(a);
        a
    }

    /// The NAT endpoint and transport facts of a scripted flow, looked up through the
    /// dataplane's public flow list (an adversary "watching the wire").
    fn flow_target(&self, name: &str) -> Option<(u8, SocketAddr, SocketAddr, Option<u32>)> {
        let idx = self.results.iter().position(|r| r.name == name)?;
        let a = self.result_app[idx]?;
        let app = &self.apps[a as usize];
        let (nic, proto, local, remote) = match &app.state {
            AppState::TcpClient(c) => (
                self.hosts[app.host as usize].nic?,
                6,
                c.ep.local,
                c.ep.remote,
            ),
            AppState::Udp(u) => (self.hosts[app.host as usize].nic?, 17, u.local, u.to()),
            _ => return None,
        };
        let node = self.nics[nic as usize].spec.node;
        let flow = self.nodes[usize::from(node)]
            .dp
            .flows()
            .into_iter()
            .find(|f| {
                f.live
                    && f.flow.nic == NicId(nic)
                    && f.flow.inside == local
                    && f.flow.remote == remote
            })?;
        let server_seq = self.remote_by_addr.get(&remote.ip()).and_then(|&sh| {
            let key = SocketKey {
                host: sh,
                proto,
                port: remote.port(),
                remote: flow.flow.nat,
            };
            match &self.apps[*self.conns.get(&key)? as usize].state {
                AppState::TcpServer(s) => Some(s.ep.next_seq()),
                _ => None,
            }
        });
        Some((proto, flow.flow.nat, remote, server_seq))
    }

    fn one_shot_attack(&mut self, h: u32, kind: &AppKind) -> u32 {
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
        let seq = server_seq.unwrap_or(1);
        let other_ip = self.hosts[h as usize]
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
                if proto == 6 {
                    build_tcp(&mut quoted, qsrc, remote, ACK, 1, 1, 0);
                } else {
                    build_udp_len(&mut quoted, qsrc, remote, 16);
                }
                let (ty, code) = if nat.is_ipv4() { (3, 1) } else { (1, 3) };
                let mut b = Vec::new();
                build_icmp_error(&mut b, remote.ip(), to, ty, code, &quoted);
                if *bad_checksum {
                    let l4 = if nat.is_ipv4() { 20 } else { 40 };
                    b[l4 + 2] ^= 0x55;
                }
                pkts.push(b);
            }
            Attack::RstInject { from_remote, .. } => {
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

    fn gen_arrival(&mut self, g: u32, slot: u32) {
        let now = self.now_ns;
        let (nic, kind, next) = {
            let gr = &mut self.generators[g as usize];
            if now > gr.spec.stop_ns {
                return;
            }
            let nic = gr.spec.nics[slot as usize];
            let rng = &mut gr.rngs[slot as usize];
            let dur_ms = Sampler::duration_ms(&gr.spec, rng);
            let ri = gr.sampler.remote(rng);
            let proto = Sampler::proto(&gr.spec, rng);
            let next = now + Sampler::next_arrival_ns(&gr.spec, rng);
            let remote = gr.spec.remotes.get(ri).copied().unwrap_or(0);
            let Some(r) = self.cfg.remotes.get(remote as usize) else {
                return;
            };
            let nic_addrs = &self.cfg.nics[nic as usize].addresses;
            let addr = r
                .addresses
                .iter()
                .copied()
                .find(|a| nic_addrs.iter().any(|n| n.is_ipv4() == a.is_ipv4()))
                .or_else(|| r.addresses.first().copied());
            let Some(addr) = addr else { return };
            let service = |p: Proto| r.services.iter().find(|s| s.proto == p).map(|s| s.port);
            let interval = gr.spec.interval_ms.max(1);
            let count = (dur_ms / interval).max(1) as u32;
            let kind = match (proto, service(Proto::Tcp), service(Proto::Udp)) {
                (FlowProto::Tcp, Some(port), _) => AppKind::Tcp(TcpParams {
                    to: SocketAddr::new(addr, port),
                    request_bytes: gr.spec.request_bytes,
                    expect_bytes: 0,
                    hold_ms: dur_ms,
                    keepalive_ms: gr.spec.interval_ms,
                    close: CloseMode::Fin,
                    src_port: None,
                    rto_ms: 200,
                    max_retries: 6,
                }),
                (FlowProto::Udp, _, Some(port)) => AppKind::Udp(UdpParams {
                    to: SocketAddr::new(addr, port),
                    request_bytes: gr.spec.request_bytes,
                    count,
                    interval_ms: interval,
                    timeout_ms: 0,
                    retries: 0,
                    src_port: None,
                }),
                _ => AppKind::Ping(PingParams {
                    to: addr,
                    count,
                    interval_ms: interval,
                    timeout_ms: 1000,
                    ident: None,
                }),
            };
            (nic, kind, next)
        };
        if next <= self.generators[g as usize].spec.stop_ns {
            self.schedule(next, Ev::GenArrival { generator: g, slot });
        }
        if !self.nics[nic as usize].present {
            return;
        }
        self.generators[g as usize].stats.started += 1;
        let h = self.nics[nic as usize].host;
        if self.spawn(h, &kind, None, Some(g)).is_none() {
            self.generators[g as usize].stats.failed += 1;
        }
    }

    // ----- results -------------------------------------------------------------------------

    /// Finalises results of applications still running.
    pub fn finish(&mut self) {
        for i in 0..self.result_app.len() {
            if let Some(a) = self.result_app[i] {
                self.snapshot(a);
            }
        }
    }

    /// The virtual time now.
    pub fn now(&self) -> Instant {
        Instant::from_nanos(self.now_ns)
    }

    /// The violation that stopped the run, if any.
    pub fn violation(&self) -> Option<&Violation> {
        self.violation.as_ref()
    }

    /// Trace digest so far.
    pub fn digest(&self) -> Digest {
        self.digest
    }

    /// Simulator counters.
    pub fn stats(&self) -> SimStats {
        self.stats
    }

    /// Results of scripted applications, in scenario order.
    pub fn app_results(&self) -> &[AppResult] {
        &self.results
    }

    /// Generator results, by name.
    pub fn generator_results(&self) -> Vec<(String, GeneratorStats)> {
        self.generators
            .iter()
            .map(|g| (g.spec.name.clone(), g.stats))
            .collect()
    }

    /// Counters summed over dataplane nodes.
    pub fn dataplane_counters(&self) -> crate::nat::Counters {
        let mut total = crate::nat::Counters::default();
        for n in &self.nodes {
            total.add(&n.dp.counters());
        }
        total
    }

    /// Per NIC, in NIC order: name, host counters, peak tracked ports and the dataplane's
    /// counters for it (looked up by index: a report of 100,000 NICs must not search by name).
    pub fn nic_reports(&self) -> Vec<NicReportRow> {
        self.nics
            .iter()
            .enumerate()
            .map(|(i, n)| NicReportRow {
                name: n.spec.name.clone(),
                host: self.hosts[n.host as usize].stats(),
                ports_peak: n.ports_peak,
                counters: self.nodes[usize::from(n.spec.node)]
                    .dp
                    .nic_counters(NicId(i as u32)),
            })
            .collect()
    }

    /// Per remote host: (name, counters).
    pub fn remote_reports(&self) -> Vec<(String, HostStats)> {
        self.remote_hosts
            .iter()
            .map(|&h| {
                (
                    self.hosts[h as usize].name.clone(),
                    self.hosts[h as usize].stats(),
                )
            })
            .collect()
    }

    /// Per link: (name, counters).
    pub fn link_reports(&self) -> Vec<(String, super::link::LinkStats)> {
        self.links
            .iter()
            .map(|l| (l.name.clone(), l.stats))
            .collect()
    }

    /// The run gateway's `NATGateway.status` and routing table, as the API reports them.
    pub fn status(&self) -> Status {
        self.control.status()
    }

    /// The control plane (the IronCore API world and the NIC ↔ key maps).
    pub fn control(&self) -> &ControlPlane {
        &self.control
    }

    /// The block the dataplane of a NIC's node holds for it (`None` for an absent NIC).
    pub fn dataplane_block(&self, nic: u32, family: Family) -> Option<Block> {
        let n = self.nics.get(nic as usize).filter(|n| n.present)?;
        self.nodes[usize::from(n.spec.node)]
            .dp
            .block_of(NicId(nic), family)
    }

    /// Live flows over all nodes.
    pub fn live_flows(&self) -> usize {
        self.nodes
            .iter()
            .map(|n| {
                let (a, b) = n.dp.live_flows();
                a + b
            })
            .sum()
    }

    /// Captured packets per captured link.
    pub fn captures(&self) -> Vec<(String, &[CapturedPacket])> {
        (0..self.links.len() as u32)
            .filter_map(|i| {
                self.capture
                    .of(i)
                    .map(|c| (self.links[i as usize].name.clone(), c))
            })
            .collect()
    }

    /// The topology graph (router, dataplane nodes, NICs, remote hosts; edges are link ids).
    pub fn graph(&self) -> &StableGraph<NodeKind, u32> {
        &self.graph
    }

    /// The configuration the run was built from.
    pub fn config(&self) -> &SimConfig {
        &self.cfg
    }

    /// The first observer of type `T`, to read its results after (or during) a run.
    pub fn observer<T: Observer>(&self) -> Option<&T> {
        self.observers
            .iter()
            .find_map(|o| (&**o as &dyn Any).downcast_ref::<T>())
    }

    /// Takes the first observer of type `T` out of the run (it sees nothing after this).
    pub fn take_observer<T: Observer>(&mut self) -> Option<Box<T>> {
        let i = self
            .observers
            .iter()
            .position(|o| (&**o as &dyn Any).is::<T>())?;
        (self.observers.remove(i) as Box<dyn Any>)
            .downcast::<T>()
            .ok()
    }

    /// Takes every observer out of the run, in the order they were given.
    pub fn take_observers(&mut self) -> Vec<Box<dyn Observer>> {
        std::mem::take(&mut self.observers)
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
