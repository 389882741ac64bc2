//! Applications and workloads: scripted applications started, run through their timers and
//! packets, finished and recorded; workload generators' flow arrivals.

use super::*;

/// Why an application did not start: like a real socket, it cannot send to an address family
/// its host has no address of.
const NO_ADDRESS_OF_FAMILY: &str = "the host has no address of the destination's family";

impl Simulator {
    pub(super) fn new_app(
        &mut self,
        host: HostId,
        state: AppState,
        named: Option<u32>,
        generator: Option<u32>,
    ) -> AppId {
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
                let generation = self.apps[i.index()].generation.wrapping_add(1);
                self.apps[i.index()] = App { generation, ..app };
                self.app_keys[i.index()] = (None, None);
                i
            }
            None => {
                self.apps.push(app);
                self.app_keys.push((None, None));
                AppId((self.apps.len() - 1) as u32)
            }
        }
    }

    /// Runs `f` with I/O scratch at the current time: what it sends collects in the outgoing
    /// buffer, for the caller to flush from the sending host ([`Self::flush_out`]).
    pub(super) fn with_io<R>(&mut self, f: impl FnOnce(&mut Io) -> R) -> R {
        f(&mut Io {
            now_ns: self.now_ns,
            out: &mut self.out,
            pool: &mut self.pool,
        })
    }

    /// Runs `f` on an application with I/O scratch, sends what it wrote, re-arms its timer and
    /// frees it when finished.
    pub(super) fn with_app(&mut self, a: AppId, f: impl FnOnce(&mut App, &mut Io)) {
        f(
            &mut self.apps[a.index()],
            &mut Io {
                now_ns: self.now_ns,
                out: &mut self.out,
                pool: &mut self.pool,
            },
        );
        let h = self.apps[a.index()].host;
        self.flush_out(h);
        self.reschedule(a);
    }

    pub(super) fn reschedule(&mut self, a: AppId) {
        let now_ns = self.now_ns;
        if self.apps[a.index()].finished(now_ns) {
            self.finish_app(a);
            return;
        }
        let app = &self.apps[a.index()];
        if let Some(t) = app.wakeup()
            && app.scheduled_ns != Some(t)
        {
            let generation = app.generation;
            self.apps[a.index()].scheduled_ns = Some(t);
            self.schedule(t, Ev::AppTimer { app: a, generation });
        }
    }

    pub(super) fn finish_app(&mut self, a: AppId) {
        self.snapshot(a);
        let app = &self.apps[a.index()];
        if let Some(g) = app.generator {
            let st = &mut self.generators[g as usize].stats;
            match app.outcome {
                Outcome::Completed => st.completed += 1,
                Outcome::Failed(_) => st.failed += 1,
                Outcome::Running => {}
            }
        }
        let (key, bound) = self.app_keys[a.index()];
        if let Some(k) = key {
            self.conns.remove(&k);
        }
        if let Some(b) = bound {
            self.bound.remove(&b);
        }
        if let Some(n) = app.named {
            self.result_app[n as usize] = None;
            self.ended_flows[n as usize] = self.flow_key(a);
        }
        let app = &mut self.apps[a.index()];
        app.state = AppState::Done;
        app.scheduled_ns = None;
        app.named = None;
        app.generator = None;
        self.app_keys[a.index()] = (None, None);
        self.free_apps.push(a);
    }

    pub(super) fn snapshot(&mut self, a: AppId) {
        let app = &self.apps[a.index()];
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

    /// Replaces the packets of crafted-packet application `app` before it starts: a harness
    /// builds them from what the run has shown so far (`Err`: the application fails with that
    /// reason when it is due). Any other application is left alone.
    pub fn set_crafted(&mut self, app: usize, packets: Result<Vec<Vec<u8>>, &'static str>) {
        if let Some(a) = self.cfg.apps.get_mut(app)
            && matches!(a.kind, AppKind::Crafted(_))
        {
            a.kind = AppKind::Crafted(packets);
        }
    }

    pub(super) fn start_app(&mut self, i: u32) {
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
            AppKind::Crafted(Ok(packets)) => {
                let n = packets.len() as u64;
                for p in packets {
                    self.host_send(h, p);
                }
                let r = &mut self.results[i as usize];
                r.packets = n;
                r.outcome = Outcome::Completed;
            }
            AppKind::Crafted(Err(reason)) => {
                self.results[i as usize].outcome = Outcome::Failed(reason);
            }
            kind => {
                if let Some(a) = self.spawn(h, &kind, Some(i), None) {
                    self.result_app[i as usize] = Some(a);
                }
            }
        }
    }

    /// Starts an application on host `h`. An application whose destination is of a family the
    /// host has no address of does not start (a named one is marked failed).
    pub(super) fn spawn(
        &mut self,
        h: HostId,
        kind: &AppKind,
        named: Option<u32>,
        generator: Option<u32>,
    ) -> Option<AppId> {
        if let Some(dst) = kind.destination()
            && self.source_addr(h, dst).is_none()
        {
            if let Some(i) = named {
                self.results[i as usize].outcome = Outcome::Failed(NO_ADDRESS_OF_FAMILY);
            }
            return None;
        }
        let (state, key, bound) = match *kind {
            AppKind::Tcp(p) => {
                let proto = Proto::Tcp.number();
                let port = p
                    .src_port
                    .unwrap_or_else(|| self.ephemeral_port(h, proto, p.to));
                let local = SocketAddr::new(self.source_addr(h, p.to.ip())?, port);
                let iss = self.hosts[h.index()].rng.next_u64() as u32;
                let c = self.with_io(|io| TcpClient::start(local, p, iss, io));
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
                let local = SocketAddr::new(self.source_addr(h, p.to.ip())?, port);
                let (c, o) = self.with_io(|io| UdpClient::start(local, p, io));
                let key = SocketKey {
                    host: h,
                    proto,
                    port,
                    remote: p.to,
                };
                let a = self.new_app(h, AppState::Udp(c), named, generator);
                self.apps[a.index()].settle(o);
                return Some(self.register(a, h, Some(key), None));
            }
            AppKind::Ping(p) => {
                let local = self.source_addr(h, p.to)?;
                let proto = if p.to.is_ipv4() { 1 } else { 58 };
                let remote = SocketAddr::new(p.to, 0);
                let ident = p
                    .ident
                    .unwrap_or_else(|| self.ephemeral_port(h, proto, remote));
                let (c, o) = self.with_io(|io| PingClient::start(local, ident, p, io));
                let key = SocketKey {
                    host: h,
                    proto,
                    port: ident,
                    remote,
                };
                let a = self.new_app(h, AppState::Ping(c), named, generator);
                self.apps[a.index()].settle(o);
                return Some(self.register(a, h, Some(key), None));
            }
            AppKind::Probe(p) => {
                let proto = Proto::Udp.number();
                let port = p
                    .src_port
                    .unwrap_or_else(|| self.ephemeral_port(h, proto, p.primary));
                let local = SocketAddr::new(self.source_addr(h, p.primary.ip())?, port);
                let c = self.with_io(|io| Probe::start(local, p, io));
                (AppState::Probe(Box::new(c)), None, Some((h, proto, port)))
            }
            AppKind::Crafted(_) => return None,
            AppKind::Attack(ref attack) => {
                let dst = match attack {
                    Attack::PortScan { target, .. } => *target,
                    Attack::Unsolicited { target, .. } => target.ip(),
                    _ => return None,
                };
                let src = self.source_addr(h, dst)?;
                let (f, o) = self.with_io(|io| Flood::start(src, attack.clone(), io));
                let a = self.new_app(h, AppState::Flood(Box::new(f)), named, generator);
                self.apps[a.index()].settle(o);
                return Some(self.register(a, h, None, None));
            }
        };
        let a = self.new_app(h, state, named, generator);
        Some(self.register(a, h, key, bound))
    }

    pub(super) fn register(
        &mut self,
        a: AppId,
        h: HostId,
        key: Option<SocketKey>,
        bound: Option<BoundKey>,
    ) -> AppId {
        if let Some(k) = key {
            self.conns.insert(k, a);
        }
        if let Some(b) = bound {
            self.bound.insert(b, Bound::App(a));
        }
        self.app_keys[a.index()] = (key, bound);
        self.flush_out(h);
        self.reschedule(a);
        a
    }

    pub(super) fn gen_arrival(&mut self, g: u32, slot: u32) {
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
                    mss_bytes: crate::sim::tcp::MSS_BYTES,
                    dont_fragment: false,
                    close_on_peer_fin: true,
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
}
