//! Loading a scenario file: YAML parse (serde-saphyr, locations in errors), then resolution of
//! names into a [`SimConfig`], with every semantic error naming the file, line and field.
//!
//! | module | job |
//! |---|---|
//! | this file | errors, the entry points, the topology and the name tables, cross-item checks |
//! | `gateway` | the gateway section, its IronCore objects and control plane |
//! | `items` | traffic, attacks, faults and generators |
//!
//! This file is about 830 lines: the name tables and the cross-item checks read the same
//! resolved topology, so they stay beside it.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde_saphyr::Spanned;

use crate::api::{IpFamily, Object, ObjectKey, Pools, WorldConfig};
use crate::nat::config::PORTS_PER_IP;
use crate::nat::{Family, GatewayConfig, NetworkConfig, Profile};
use crate::scenario::manifests::load_manifests;
use crate::scenario::names::unknown;
use crate::scenario::objects::{
    DEFAULT_GATEWAY_NAME, gateway_object, merge_networks, merge_nics, topology_networks,
};
use crate::scenario::ranges::ms_to_ns;
use crate::scenario::schema::*;
use crate::sim::config::*;
use crate::sim::control::{ControlConfig, ControlPlane};
use crate::sim::link::LinkConfig;
use crate::time::Instant;

mod gateway;
mod items;
mod packets;

pub use packets::DeferredPacket;

use gateway::{reconcile_addresses, resolve_control};
use items::{resolve_attack, resolve_fault, resolve_generator, resolve_traffic};

/// A scenario that failed to load: file, line (0 when unknown), field path and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioError {
    /// The file.
    pub file: PathBuf,
    /// 1-based line, 0 when unknown.
    pub line: u64,
    /// 1-based column, 0 when unknown.
    pub column: u64,
    /// Dotted field path, e.g. `traffic[2].from`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ScenarioError {}

/// A TCP service's initial retransmission timeout when the scenario gives none.
const SERVER_RTO_MS: u64 = 200;
/// A TCP service's retransmissions before it gives up, when the scenario gives none.
const SERVER_MAX_RETRIES: u32 = 8;

/// Most NICs one scenario may declare (topology NICs plus NIC groups).
pub const MAX_NICS: u64 = 1_000_000;

/// A loaded scenario.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Where it came from.
    pub file: PathBuf,
    /// The parsed document.
    pub doc: ScenarioFile,
    /// What the simulator runs.
    pub sim: SimConfig,
    /// `expect.packets`, checked and compiled.
    pub packet_checks: Vec<crate::scenario::packets::pattern::Compiled>,
    /// Crafted packets that use variables, built just before they are due.
    pub deferred_packets: Vec<DeferredPacket>,
}

struct Ctx<'a> {
    file: &'a Path,
    /// The file's text, to find the line of an error found on resolved values.
    text: &'a str,
}

impl Ctx<'_> {
    fn err(
        &self,
        line: u64,
        column: u64,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> ScenarioError {
        let field = field.into();
        let (line, column) = if line == 0 && !field.is_empty() {
            crate::yaml::locate_key_path(self.text, &field).unwrap_or((0, 0))
        } else {
            (line, column)
        };
        ScenarioError {
            file: self.file.to_path_buf(),
            line,
            column,
            field,
            message: message.into(),
        }
    }
    fn at<T>(
        &self,
        s: &Spanned<T>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> ScenarioError {
        self.err(s.referenced.line(), s.referenced.column(), field, message)
    }
}

/// Reads and resolves a scenario file.
pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
    let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
        file: path.to_path_buf(),
        line: 0,
        column: 0,
        field: String::new(),
        message: format!("cannot read: {e}"),
    })?;
    load_str(path, &text)
}

/// Resolves a scenario given as text (`path` names it in errors).
pub fn load_str(path: &Path, text: &str) -> Result<Scenario, ScenarioError> {
    let cx = Ctx { file: path, text };
    let doc: ScenarioFile = serde_saphyr::from_str_with_options(text, crate::yaml::options())
        .map_err(|e| {
            let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
            cx.err(
                line,
                column,
                "",
                crate::yaml::plain_message(&first_line(&e.to_string())),
            )
        })?;
    let (sim, packet_checks, deferred_packets) = resolve(&cx, &doc, text)?;
    Ok(Scenario {
        file: path.to_path_buf(),
        doc,
        sim,
        packet_checks,
        deferred_packets,
    })
}

/// Resolves a scenario document that is already in memory (a generated world), skipping the
/// YAML text: what runs is what [`load_str`] makes of the document's text, as long as the
/// document writes and reads back unchanged (generated documents do; `swarm::yaml` tests it).
/// Without the text, errors in inline `manifests` carry no line numbers.
pub fn load_doc(path: &Path, doc: ScenarioFile) -> Result<Scenario, ScenarioError> {
    let cx = Ctx {
        file: path,
        text: "",
    };
    let (sim, packet_checks, deferred_packets) = resolve(&cx, &doc, "")?;
    Ok(Scenario {
        file: path.to_path_buf(),
        doc,
        sim,
        packet_checks,
        deferred_packets,
    })
}

/// serde-saphyr renders a snippet after the message; the first line carries the message,
/// prefixed with `error: line N column M:`, which our own `file:line:column` prefix replaces.
fn first_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or("").trim();
    match line.strip_prefix("error: line ") {
        Some(rest) => rest.split_once(": ").map_or(rest, |(_, m)| m).to_string(),
        None => line.to_string(),
    }
}

fn parse_family(cx: &Ctx, s: &str, field: &str) -> Result<Family, ScenarioError> {
    match s {
        "IPv4" => Ok(Family::V4),
        "IPv6" => Ok(Family::V6),
        other => Err(cx.err(0, 0, field, format!("`{other}` is not IPv4 or IPv6"))),
    }
}

/// The address of `addrs` of the family of `like` when there is one, else the first.
fn pick(addrs: &[IpAddr], like: Option<IpAddr>) -> Option<IpAddr> {
    addrs
        .iter()
        .copied()
        .find(|a| like.is_none_or(|l| l.is_ipv4() == a.is_ipv4()))
        .or_else(|| addrs.first().copied())
}

struct Names {
    nics: BTreeMap<String, u32>,
    remotes: BTreeMap<String, u32>,
    remote_addrs: Vec<Vec<IpAddr>>,
    nic_addrs: Vec<Vec<IpAddr>>,
    nat_ips: BTreeMap<String, Vec<IpAddr>>,
}

impl Names {
    /// Resolves a host name or address to an address of the family of `like` when possible.
    fn host_addr(&self, name: &str, like: Option<IpAddr>) -> Option<IpAddr> {
        if let Ok(ip) = name.parse::<IpAddr>() {
            return Some(ip);
        }
        let pick = |addrs: &Vec<IpAddr>| pick(addrs, like);
        if let Some(ipname) = name.strip_prefix("ip:") {
            return self.nat_ips.get(ipname).and_then(pick);
        }
        if let Some(&r) = self.remotes.get(name) {
            return pick(&self.remote_addrs[r as usize]);
        }
        if let Some(&n) = self.nics.get(name) {
            return pick(&self.nic_addrs[n as usize]);
        }
        None
    }

    /// Every address of a host name or `ip:<name>`.
    fn addresses_of(&self, name: &str) -> Option<Vec<IpAddr>> {
        if let Some(ipname) = name.strip_prefix("ip:") {
            return self.nat_ips.get(ipname).cloned();
        }
        if let Some(&r) = self.remotes.get(name) {
            return Some(self.remote_addrs[r as usize].clone());
        }
        let &n = self.nics.get(name)?;
        Some(self.nic_addrs[n as usize].clone())
    }

    /// Why `host` (a NIC or remote name, an address or `ip:<name>`) does not resolve, with the
    /// closest valid names.
    fn unknown_host(&self, host: &str) -> String {
        if let Some(ipname) = host.strip_prefix("ip:") {
            return unknown(
                "gateway IP",
                ipname,
                self.nat_ips.keys().map(String::as_str),
            );
        }
        let hosts = self
            .nics
            .keys()
            .chain(self.remotes.keys())
            .map(String::as_str);
        unknown("NIC or remote host", host, hosts)
    }

    /// Why an endpoint (`host:port`) does not resolve.
    fn endpoint_error(&self, s: &str) -> String {
        let Some((host, port)) = s.rsplit_once(':') else {
            return format!("`{s}` is not host:port");
        };
        if port.parse::<u16>().is_err() {
            return format!("`{s}`: `{port}` is not a port (0..=65535)");
        }
        format!("`{s}`: {}", self.unknown_host(host))
    }

    /// `host:port`, `[v6]:port`, `ip:<name>:port`.
    fn endpoint(&self, s: &str, like: Option<IpAddr>) -> Option<SocketAddr> {
        if let Ok(sa) = s.parse::<SocketAddr>() {
            return Some(sa);
        }
        let (host, port) = s.rsplit_once(':')?;
        let port: u16 = port.parse().ok()?;
        Some(SocketAddr::new(self.host_addr(host, like)?, port))
    }
}

fn resolve(
    cx: &Ctx,
    doc: &ScenarioFile,
    text: &str,
) -> Result<
    (
        SimConfig,
        Vec<crate::scenario::packets::pattern::Compiled>,
        Vec<DeferredPacket>,
    ),
    ScenarioError,
> {
    if doc.api_version != API_VERSION {
        return Err(cx.err(
            0,
            0,
            "apiVersion",
            format!(
                "`{}` is not supported; use `{API_VERSION}`",
                doc.api_version
            ),
        ));
    }
    if doc.kind != "Scenario" {
        return Err(cx.err(
            0,
            0,
            "kind",
            format!("`{}` is not supported; use `Scenario`", doc.kind),
        ));
    }
    super::ranges::check(doc).map_err(|e| cx.err(e.line, e.column, e.field, e.message))?;
    let topo = &doc.topology;
    if topo.nodes == 0 {
        return Err(cx.err(0, 0, "topology.nodes", "at least one dataplane node"));
    }
    // Networks.
    let mut networks = Vec::new();
    let mut net_index = BTreeMap::new();
    for (i, n) in topo.networks.iter().enumerate() {
        let mut prefixes = Vec::new();
        for (j, p) in n.prefixes.iter().chain(n.routes.iter()).enumerate() {
            let net: IpNet = p.parse().map_err(|_| {
                cx.err(
                    0,
                    0,
                    format!("topology.networks[{i}].prefixes[{j}]"),
                    format!("`{p}` is not a prefix"),
                )
            })?;
            prefixes.push(net);
        }
        if net_index.insert(n.name.clone(), i as u16).is_some() {
            return Err(cx.err(
                0,
                0,
                format!("topology.networks[{i}].name"),
                format!("duplicate network `{}`", n.name),
            ));
        }
        networks.push(NetworkConfig {
            name: n.name.clone(),
            local_prefixes: prefixes,
        });
    }
    // Manifests: validated by the API loader, merged with the topology (they win).
    let manifest_objects: Vec<Object> = match &doc.manifests {
        Some(m) => {
            let names: Vec<String> = topo.networks.iter().map(|n| n.name.clone()).collect();
            load_manifests(cx.file, text, m, &names)?
        }
        None => Vec::new(),
    };
    merge_networks(&manifest_objects, &mut networks, &mut net_index)
        .map_err(|(field, message)| cx.err(0, 0, field, message))?;
    // NICs.
    let mut nics = Vec::new();
    let mut names = Names {
        nics: BTreeMap::new(),
        remotes: BTreeMap::new(),
        remote_addrs: Vec::new(),
        nic_addrs: Vec::new(),
        nat_ips: BTreeMap::new(),
    };
    for (i, s) in topo.nics.iter().enumerate() {
        let n = &s.value;
        let field = format!("topology.nics[{i}]");
        let network = *net_index.get(&n.network).ok_or_else(|| {
            cx.at(
                s,
                format!("{field}.network"),
                unknown("network", &n.network, net_index.keys().map(String::as_str)),
            )
        })?;
        if n.node >= topo.nodes {
            return Err(cx.at(
                s,
                format!("{field}.node"),
                format!("node {} does not exist ({} nodes)", n.node, topo.nodes),
            ));
        }
        if n.addresses.is_empty() {
            return Err(cx.at(
                s,
                format!("{field}.addresses"),
                "a NIC needs at least one address",
            ));
        }
        if names
            .nics
            .insert(n.name.clone(), nics.len() as u32)
            .is_some()
        {
            return Err(cx.at(
                s,
                format!("{field}.name"),
                format!("duplicate NIC `{}`", n.name),
            ));
        }
        names.nic_addrs.push(n.addresses.clone());
        nics.push(NicSpec {
            name: n.name.clone(),
            namespace: n.namespace.clone(),
            network,
            addresses: n.addresses.clone(),
            labels: n.labels.clone(),
            node: n.node,
            virtual_ip: n.virtual_ip,
            link: n.link.clone().unwrap_or_else(|| topo.links.access.clone()),
            present: n.present,
            silent_closed_ports: n.silent_closed_ports,
        });
    }
    for (gi, g) in topo.nic_groups.iter().enumerate() {
        let network = *net_index.get(&g.network).ok_or_else(|| {
            cx.err(
                0,
                0,
                format!("topology.nic_groups[{gi}].network"),
                unknown("network", &g.network, net_index.keys().map(String::as_str)),
            )
        })?;
        let base = u32::from(g.first_address);
        // The simulator is sized for up to a million NICs; a larger count is a typo, not a run.
        if nics.len() as u64 + u64::from(g.count) > MAX_NICS {
            return Err(cx.err(
                0,
                0,
                format!("topology.nic_groups[{gi}].count"),
                format!(
                    "{} NICs in all is more than a scenario may have ({MAX_NICS})",
                    nics.len() as u64 + u64::from(g.count)
                ),
            ));
        }
        for k in 0..g.count {
            let name = format!("{}{k:05}", g.prefix);
            let addr = IpAddr::V4(Ipv4Addr::from(base.wrapping_add(k)));
            if names.nics.insert(name.clone(), nics.len() as u32).is_some() {
                return Err(cx.err(
                    0,
                    0,
                    format!("topology.nic_groups[{gi}]"),
                    format!("duplicate NIC `{name}`"),
                ));
            }
            names.nic_addrs.push(vec![addr]);
            nics.push(NicSpec {
                name,
                namespace: "default".into(),
                network,
                addresses: vec![addr],
                labels: g.labels.clone(),
                node: (k % u32::from(topo.nodes)) as u16,
                virtual_ip: false,
                link: topo.links.access.clone(),
                present: true,
                silent_closed_ports: false,
            });
        }
    }
    for i in merge_nics(
        &manifest_objects,
        &mut nics,
        &mut names.nics,
        &net_index,
        &topo.links.access,
    )
    .map_err(|(field, message)| cx.err(0, 0, field, message))?
    {
        let addrs = nics[i as usize].addresses.clone();
        match names.nic_addrs.get_mut(i as usize) {
            Some(a) => *a = addrs,
            None => names.nic_addrs.push(addrs),
        }
    }
    // Remotes.
    let mut remotes = Vec::new();
    for (i, s) in topo.remotes.iter().enumerate() {
        let r = &s.value;
        let field = format!("topology.remotes[{i}]");
        if r.addresses.is_empty() {
            return Err(cx.at(
                s,
                format!("{field}.addresses"),
                "a remote host needs an address",
            ));
        }
        if names
            .remotes
            .insert(r.name.clone(), remotes.len() as u32)
            .is_some()
            || names.nics.contains_key(&r.name)
        {
            return Err(cx.at(
                s,
                format!("{field}.name"),
                format!("duplicate host name `{}`", r.name),
            ));
        }
        names.remote_addrs.push(r.addresses.clone());
        for (j, sv) in r.services.iter().enumerate() {
            if r.services[..j]
                .iter()
                .any(|o| o.protocol == sv.protocol && o.port == sv.port)
            {
                return Err(cx.at(
                    s,
                    format!("{field}.services[{j}]"),
                    format!(
                        "`{}` already has a {:?} service on port {}",
                        r.name, sv.protocol, sv.port
                    ),
                ));
            }
        }
        let services = r
            .services
            .iter()
            .map(|sv| Service {
                proto: match sv.protocol {
                    ProtoDoc::Tcp => Proto::Tcp,
                    ProtoDoc::Udp => Proto::Udp,
                },
                port: sv.port,
                kind: if sv.stun {
                    ServiceKind::Stun
                } else {
                    ServiceKind::Respond {
                        response_bytes: sv.response_bytes,
                        close_first: sv.close_first,
                        rto_ms: sv.rto_ms.unwrap_or(SERVER_RTO_MS).max(1),
                        max_retries: sv.max_retries.unwrap_or(SERVER_MAX_RETRIES),
                    }
                },
            })
            .collect();
        remotes.push(RemoteSpec {
            name: r.name.clone(),
            addresses: r.addresses.clone(),
            services,
            link: r.link.clone().unwrap_or_else(|| topo.links.remote.clone()),
        });
    }
    // Gateway and control plane.
    let (gateway, control) =
        resolve_control(cx, doc, &networks, &net_index, &nics, manifest_objects)?;
    let l = &doc.limits;
    let mut sim = SimConfig {
        seed: doc.seed,
        gateway,
        control,
        nodes: topo.nodes,
        nics,
        remotes,
        uplink: topo.links.uplink.clone(),
        apps: Vec::new(),
        generators: Vec::new(),
        faults: Vec::new(),
        limits: Limits {
            max_events: l.max_events,
            max_time_ns: ms_to_ns(l.max_time_ms),
            duration_ns: l.duration_ms.map(ms_to_ns),
        },
        capture: doc.capture.iter().map(|c| c.as_str().to_string()).collect(),
        router: router_config(cx, topo.router.as_ref())?,
    };
    reconcile_addresses(cx, &mut sim, &mut names)?;
    // Applications.
    let mut apps = Vec::new();
    for (i, s) in doc.traffic.iter().enumerate() {
        apps.push(resolve_traffic(cx, i, s, &names)?);
    }
    for (i, s) in doc.attacks.iter().enumerate() {
        apps.push(resolve_attack(cx, i, s, &names, doc)?);
    }
    let mut deferred = Vec::new();
    let mut crafted_bytes = 0;
    for (i, s) in doc.packets.iter().enumerate() {
        let (spec, later) =
            packets::resolve_packet(cx, i, s, &names, doc, apps.len(), &mut crafted_bytes)?;
        apps.push(spec);
        deferred.extend(later);
    }
    deferred.sort_by_key(|d| (d.at_ns, d.app));
    check_app_names(cx, doc)?;
    check_bindings(cx, doc, &apps)?;
    let links = link_names(&sim);
    let mut faults = Vec::new();
    for (i, s) in doc.faults.iter().enumerate() {
        faults.push(resolve_fault(cx, i, s, &names, &links, topo.nodes)?);
    }
    let mut generators = Vec::new();
    for (i, s) in doc.generators.iter().enumerate() {
        if doc.generators[..i]
            .iter()
            .any(|g| g.value.name == s.value.name)
        {
            return Err(cx.at(
                s,
                format!("generators[{i}].name"),
                format!("duplicate generator `{}`", s.value.name),
            ));
        }
        generators.push(resolve_generator(cx, i, s, &names, &sim.nics)?);
    }
    for (i, c) in doc.capture.iter().enumerate() {
        if !links.iter().any(|l| l == c.as_str()) {
            let (line, column) = c.location();
            return Err(cx.err(
                line,
                column,
                format!("capture[{i}]"),
                unknown("link", c.as_str(), links.iter().map(String::as_str)),
            ));
        }
    }
    let known = super::expect::Known {
        nics: sim.nics.iter().map(|n| n.name.as_str()).collect(),
        remotes: sim.remotes.iter().map(|r| r.name.as_str()).collect(),
        flows: doc
            .traffic
            .iter()
            .map(|t| t.value.name.as_str())
            .chain(doc.attacks.iter().map(|a| a.value.name.as_str()))
            .chain(doc.packets.iter().map(|p| p.value.name.as_str()))
            .collect(),
        probes: doc
            .traffic
            .iter()
            .filter(|t| t.value.probe.is_some())
            .map(|t| t.value.name.as_str())
            .collect(),
        generators: doc
            .generators
            .iter()
            .map(|g| g.value.name.as_str())
            .collect(),
        nodes: topo.nodes,
    };
    super::expect::check_names(&doc.expect, &known)
        .map_err(|e| cx.err(e.line, e.column, e.field, e.message))?;
    let packet_checks = packets::resolve_packet_expectations(cx, doc, &mut sim)?;
    sim.apps = apps;
    sim.faults = faults;
    sim.generators = generators;
    Ok((sim, packet_checks, deferred))
}

fn host_ref(names: &Names, name: &str) -> Option<HostRef> {
    names
        .nics
        .get(name)
        .map(|&i| HostRef::Nic(i))
        .or_else(|| names.remotes.get(name).map(|&i| HostRef::Remote(i)))
}

fn first_addr(names: &Names, h: HostRef) -> Option<IpAddr> {
    match h {
        HostRef::Nic(i) => names.nic_addrs[i as usize].first().copied(),
        HostRef::Remote(i) => names.remote_addrs[i as usize].first().copied(),
    }
}

/// Every link's name, as the simulator names them: `uplink/<node>`, `nic/<nic>`,
/// `remote/<host>`.
fn link_names(sim: &SimConfig) -> Vec<String> {
    (0..sim.nodes)
        .map(|k| format!("uplink/{k}"))
        .chain(sim.nics.iter().map(|n| format!("nic/{}", n.name)))
        .chain(sim.remotes.iter().map(|r| format!("remote/{}", r.name)))
        .collect()
}

/// Traffic items and attacks share one namespace (the report's `flows`, expectations and
/// attack `flow:` references look them up by name), so a name may be used once.
fn check_app_names(cx: &Ctx, doc: &ScenarioFile) -> Result<(), ScenarioError> {
    let mut seen = BTreeMap::new();
    let items = doc
        .traffic
        .iter()
        .enumerate()
        .map(|(i, t)| (format!("traffic[{i}]"), &t.value.name, &t.referenced))
        .chain(
            doc.attacks
                .iter()
                .enumerate()
                .map(|(i, a)| (format!("attacks[{i}]"), &a.value.name, &a.referenced)),
        )
        .chain(
            doc.packets
                .iter()
                .enumerate()
                .map(|(i, p)| (format!("packets[{i}]"), &p.value.name, &p.referenced)),
        );
    for (field, name, at) in items {
        if let Some(first) = seen.insert(name.as_str(), field.clone()) {
            return Err(cx.err(
                at.line(),
                at.column(),
                format!("{field}.name"),
                format!("duplicate traffic name `{name}` (also {first})"),
            ));
        }
    }
    Ok(())
}

/// Two applications on one host with the same protocol, the same fixed local port (or ping
/// identifier) and the same peer, open at the same time, would share one socket: the
/// simulator would deliver every reply to one of them. A probe binds its UDP port for every
/// peer. Reusing a port after the earlier application is done is normal (and the swarm's
/// worlds do it), so only a certain overlap is refused: the later one starts before the
/// earlier one's shortest possible life is over (see [`min_life_ms`]).
fn check_bindings(cx: &Ctx, doc: &ScenarioFile, apps: &[AppSpec]) -> Result<(), ScenarioError> {
    type Peers = Vec<(usize, Option<IpAddr>, Option<u16>, u64, u64)>;
    let mut seen: BTreeMap<((bool, u32), u8, u16), Peers> = BTreeMap::new();
    for (i, (app, item)) in apps.iter().zip(&doc.traffic).enumerate() {
        let (proto, port, peer, peer_port) = match &app.kind {
            AppKind::Tcp(p) => (6, p.src_port, Some(p.to.ip()), Some(p.to.port())),
            AppKind::Udp(p) => (17, p.src_port, Some(p.to.ip()), Some(p.to.port())),
            AppKind::Ping(p) => (
                if p.to.is_ipv4() { 1 } else { 58 },
                p.ident,
                Some(p.to),
                None,
            ),
            AppKind::Probe(p) => (17, p.src_port, None, None),
            AppKind::Attack(_) | AppKind::Crafted(_) => continue,
        };
        let Some(port) = port else { continue };
        let host = match app.host {
            HostRef::Nic(n) => (false, n),
            HostRef::Remote(r) => (true, r),
        };
        let entry = seen.entry((host, proto, port)).or_default();
        let (start, end) = (
            item.value.at_ms,
            item.value.at_ms.saturating_add(min_life_ms(app)),
        );
        for &(j, other, other_port, o_start, o_end) in entry.iter() {
            let same_peer =
                peer.is_none() || other.is_none() || (other == peer && other_port == peer_port);
            let overlap = start == o_start
                || (start > o_start && start < o_end)
                || (o_start > start && o_start < end);
            if same_peer && overlap {
                let what = match proto {
                    6 => "TCP port",
                    17 => "UDP port",
                    _ => "ping identifier",
                };
                return Err(cx.at(
                    item,
                    format!("traffic[{i}]"),
                    format!(
                        "`{}` binds {what} {port} on `{}` towards the same peer as traffic[{j}] \
                         (`{}`): two applications cannot share one socket",
                        item.value.name, item.value.from, doc.traffic[j].value.name
                    ),
                ));
            }
        }
        entry.push((i, peer, peer_port, start, end));
    }
    Ok(())
}

/// The shortest time an application surely keeps its socket after it starts: a TCP client
/// holds its connection `hold_ms` after the response, UDP and ping clients send `count`
/// packets `interval_ms` apart. (Lower bounds: the network may make them last longer.)
fn min_life_ms(app: &AppSpec) -> u64 {
    match &app.kind {
        AppKind::Tcp(p) => p.hold_ms,
        AppKind::Udp(p) => u64::from(p.count.saturating_sub(1)).saturating_mul(p.interval_ms),
        AppKind::Ping(p) => u64::from(p.count.saturating_sub(1)).saturating_mul(p.interval_ms),
        AppKind::Probe(_) | AppKind::Attack(_) | AppKind::Crafted(_) => 0,
    }
}

/// The default access link (for callers building configs by hand).
pub fn default_link() -> LinkConfig {
    LinkConfig::default()
}

/// The router of `topology.router`: defaults where a field is absent; at most one address per
/// family.
fn router_config(
    cx: &Ctx,
    doc: Option<&RouterDoc>,
) -> Result<crate::sim::config::RouterConfig, ScenarioError> {
    let mut r = crate::sim::config::RouterConfig::default();
    let Some(doc) = doc else {
        return Ok(r);
    };
    if !doc.addresses.is_empty() {
        let v4 = doc.addresses.iter().filter(|a| a.is_ipv4()).count();
        if v4 > 1 || doc.addresses.len() - v4 > 1 {
            return Err(cx.err(
                0,
                0,
                "topology.router.addresses",
                "at most one address per family",
            ));
        }
        r.addresses = doc.addresses.clone();
    }
    if let Some(n) = doc.icmp_errors_per_s {
        r.icmp_errors_per_s = n;
    }
    if let Some(n) = doc.icmp_error_burst {
        r.icmp_error_burst = n;
    }
    r.decrement_ttl = doc.decrement_ttl;
    r.unreachable = doc.unreachable;
    Ok(r)
}
