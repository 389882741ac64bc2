//! Building a run: the topology graph (router, dataplane nodes, NIC and remote hosts, the links
//! between them), each component's random stream, the dataplanes, and the first scheduled work.

use super::*;

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
                            lc: &crate::sim::link::LinkConfig,
                            role: Role| {
            let id = LinkId(links.len() as u32);
            graph.add_edge(a, b, id.0);
            let rng = Rng::new(seed, stream_of(&format!("link/{name}")));
            link_by_name.insert(name.clone(), id);
            links.push(Link::new(name, lc.clone(), rng));
            roles.push(role);
            id
        };
        let mut nodes = Vec::new();
        let mut node_idx = Vec::new();
        for k in 0..nodes_n {
            let v = graph.add_node(NodeKind::Dataplane(NodeId(k)));
            let uplink = add_link(
                &mut graph,
                v,
                router,
                format!("uplink/{k}"),
                &cfg.uplink,
                Role::Uplink { node: NodeId(k) },
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
            let h = HostId(hosts.len() as u32);
            let v = graph.add_node(NodeKind::Nic(h.0));
            let link = add_link(
                &mut graph,
                v,
                node_idx[usize::from(n.node)],
                format!("nic/{}", n.name),
                &n.link,
                Role::Access {
                    nic: i as u32,
                    node: NodeId(n.node),
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
                path_mtu: BTreeMap::new(),
                silent_closed_ports: n.silent_closed_ports,
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
            let h = HostId(hosts.len() as u32);
            let v = graph.add_node(NodeKind::Remote(h.0));
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
                path_mtu: BTreeMap::new(),
                silent_closed_ports: false,
            });
            remote_hosts.push(h);
        }
        let mut capture = Captures::new(links.len());
        for name in &cfg.capture {
            let id = *link_by_name
                .get(name)
                .ok_or_else(|| SimError::Topology(format!("capture: no link named `{name}`")))?;
            capture.enable(id.0);
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
                    AppKind::Crafted(_) => "packet",
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
            ended_flows: vec![None; napps],
            generators,
            capture,
            comments: Comments::default(),
            note: String::new(),
            violation: None,
            router_rng: Rng::new(seed, stream_of("router")),
            router_icmp: crate::time::TokenBucket::per_second(
                cfg.router.icmp_error_burst,
                cfg.router.icmp_errors_per_s,
            ),
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
}
