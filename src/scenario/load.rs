//! Loading a scenario file: YAML parse (serde-saphyr, locations in errors), then resolution of
//! names into a [`SimConfig`], with every semantic error naming the file, line and field.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde_saphyr::Spanned;

use super::manifests::load_manifests;
use super::names::unknown;
use super::objects::{
    DEFAULT_GATEWAY_NAME, gateway_object, merge_networks, merge_nics, topology_networks,
};
use super::ranges::ms_to_ns;
use super::schema::*;
use crate::api::{IpFamily, Object, ObjectKey, Pools, WorldConfig};
use crate::nat::config::PORTS_PER_IP;
use crate::nat::{Family, GatewayConfig, NetworkConfig, Profile};
use crate::sim::config::*;
use crate::sim::control::{ControlConfig, ControlPlane};
use crate::sim::link::LinkConfig;
use crate::time::Instant;

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
    let sim = resolve(&cx, &doc, text)?;
    Ok(Scenario {
        file: path.to_path_buf(),
        doc,
        sim,
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
    let sim = resolve(&cx, &doc, "")?;
    Ok(Scenario {
        file: path.to_path_buf(),
        doc,
        sim,
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
        let pick = |addrs: &Vec<IpAddr>| {
            addrs
                .iter()
                .copied()
                .find(|a| like.is_none_or(|l| l.is_ipv4() == a.is_ipv4()))
                .or_else(|| addrs.first().copied())
        };
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

fn resolve(cx: &Ctx, doc: &ScenarioFile, text: &str) -> Result<SimConfig, ScenarioError> {
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
    };
    super::expect::check_names(&doc.expect, &known)
        .map_err(|e| cx.err(e.line, e.column, e.field, e.message))?;
    sim.apps = apps;
    sim.faults = faults;
    sim.generators = generators;
    Ok(sim)
}

/// The dataplane configuration and the control plane: the API objects the topology and the
/// gateway section stand for, merged with the manifests' (see [`super::objects`]).
fn resolve_control(
    cx: &Ctx,
    doc: &ScenarioFile,
    networks: &[NetworkConfig],
    net_index: &BTreeMap<String, u16>,
    nics: &[NicSpec],
    manifest_objects: Vec<Object>,
) -> Result<(GatewayConfig, ControlConfig), ScenarioError> {
    let merge_err = |(field, message): (String, String)| cx.err(0, 0, field, message);
    let mut objects = topology_networks(&doc.topology.networks, nics, &manifest_objects);
    let (mut gateway, world, primary) = match &doc.gateway {
        None => (
            GatewayConfig {
                networks: networks.to_vec(),
                ..GatewayConfig::default()
            },
            WorldConfig::default(),
            None,
        ),
        Some(g) => {
            let (cfg, families, world) = resolve_gateway(cx, g, networks, net_index)?;
            if let Some(gw) = gateway_object(g, &families, &manifest_objects).map_err(merge_err)? {
                objects.push(Object::NatGateway(gw));
            }
            let name = g.name.as_deref().unwrap_or(DEFAULT_GATEWAY_NAME);
            (cfg, world, Some(ObjectKey::in_default(name)))
        }
    };
    objects.extend(manifest_objects);
    // Without a gateway section, the run's gateway is the manifests' first (namespace, name).
    let primary = primary.or_else(|| {
        objects
            .iter()
            .filter_map(|o| match o {
                Object::NatGateway(g) => Some(g.key.clone()),
                _ => None,
            })
            .min()
    });
    if let Some(p) = objects.iter().find_map(|o| match o {
        Object::NatGateway(g) if Some(&g.key) == primary.as_ref() => {
            Some(g.ports_per_network_interface)
        }
        _ => None,
    }) {
        gateway.ports_per_nic = p;
    }
    Ok((
        gateway,
        ControlConfig {
            world,
            objects,
            gateway: primary,
        },
    ))
}

/// Builds the control plane once and reconciles it at time zero: any API refusal is a
/// scenario error, and the gateways' addresses (pinned or from the pools) become the
/// dataplane's NAT IPs and the names `ip:<name>` resolves.
fn reconcile_addresses(
    cx: &Ctx,
    sim: &mut SimConfig,
    names: &mut Names,
) -> Result<(), ScenarioError> {
    let mut control =
        ControlPlane::new(sim).map_err(|e| cx.err(0, 0, "", format!("IronCore objects: {e}")))?;
    control.reconcile(Instant::ZERO);
    let world = control.world();
    let mut nat_ips = Vec::new();
    for key in world.gateways().keys() {
        let Some(status) = world.gateway_status(key) else {
            continue;
        };
        for ip in status.ips {
            if control.gateway() == Some(key) {
                names.nat_ips.insert(ip.name.clone(), ip.ips.clone());
            }
            nat_ips.extend(ip.ips);
        }
    }
    sim.gateway.nat_ips = nat_ips;
    Ok(())
}

/// The dataplane configuration, the gateway's families and the reconciler's knobs from the
/// `gateway:` section (its API object is built by [`gateway_object`]).
fn resolve_gateway(
    cx: &Ctx,
    g: &GatewayDoc,
    networks: &[NetworkConfig],
    net_index: &BTreeMap<String, u16>,
) -> Result<(GatewayConfig, Vec<IpFamily>, WorldConfig), ScenarioError> {
    if !g.network.is_empty() && !net_index.contains_key(&g.network) {
        return Err(cx.err(
            0,
            0,
            "gateway.network",
            unknown("network", &g.network, net_index.keys().map(String::as_str)),
        ));
    }
    let p = g.ports_per_nic;
    if p > PORTS_PER_IP {
        return Err(cx.err(0, 0, "gateway.ports_per_nic", format!("{p} is above 64512: an IP would hold zero port blocks (IronCore divides by zero here)")));
    }
    if p == 0 || !p.is_power_of_two() {
        return Err(cx.err(
            0,
            0,
            "gateway.ports_per_nic",
            format!("{p} is not a power of two in 1..=64512"),
        ));
    }
    let mut families = Vec::new();
    for (i, f) in g.ip_families.iter().enumerate() {
        let fam = parse_family(cx, f, &format!("gateway.ip_families[{i}]"))?;
        if families.contains(&fam) {
            return Err(cx.err(
                0,
                0,
                format!("gateway.ip_families[{i}]"),
                format!("duplicate family {f}"),
            ));
        }
        families.push(fam);
    }
    if families.is_empty() {
        return Err(cx.err(0, 0, "gateway.ip_families", "at least one family"));
    }
    let mut ip_names = std::collections::BTreeSet::new();
    for (i, ip) in g.ips.iter().enumerate() {
        if !ip_names.insert(ip.name.as_str()) {
            return Err(cx.err(
                0,
                0,
                format!("gateway.ips[{i}].name"),
                format!("duplicate IP name `{}`", ip.name),
            ));
        }
    }
    let mut pools = Vec::new();
    for (i, p) in g.pools.iter().enumerate() {
        pools.push(p.parse::<ipnet::IpNet>().map_err(|_| {
            cx.err(
                0,
                0,
                format!("gateway.pools[{i}]"),
                format!("`{p}` is not a prefix"),
            )
        })?);
    }
    let world = WorldConfig {
        pools: Pools::new(&pools),
        block_quarantine: std::time::Duration::from_millis(g.block_quarantine_ms),
    };
    let base = Profile::named(&g.profile).ok_or_else(|| {
        cx.err(
            0,
            0,
            "gateway.profile",
            format!(
                "unknown profile `{}`; one of {}",
                g.profile,
                Profile::NAMES.join(", ")
            ),
        )
    })?;
    let overrides: serde_json::Map<String, serde_json::Value> =
        g.overrides.clone().into_iter().collect();
    let profile = base
        .with_overrides(&overrides)
        .map_err(|e| cx.err(0, 0, "gateway.overrides", e))?;
    let mut cfg = GatewayConfig {
        profile,
        ports_per_nic: p,
        networks: networks.to_vec(),
        nat64: g.nat64,
        ..GatewayConfig::default()
    };
    if let Some(m) = g.max_flows {
        cfg.max_flows = m;
    }
    cfg.validate()
        .map_err(|e| cx.err(0, 0, "gateway", e.to_string()))?;
    let families = families
        .into_iter()
        .map(crate::sim::control::ip_family)
        .collect();
    Ok((cfg, families, world))
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

fn resolve_traffic(
    cx: &Ctx,
    i: usize,
    s: &Spanned<TrafficItem>,
    names: &Names,
) -> Result<AppSpec, ScenarioError> {
    let t = &s.value;
    let field = format!("traffic[{i}]");
    let host = host_ref(names, &t.from)
        .ok_or_else(|| cx.at(s, format!("{field}.from"), names.unknown_host(&t.from)))?;
    let like = first_addr(names, host);
    let set = [
        t.tcp.is_some(),
        t.udp.is_some(),
        t.ping.is_some(),
        t.probe.is_some(),
    ];
    if set.iter().filter(|b| **b).count() != 1 {
        return Err(cx.at(s, field, "exactly one of tcp, udp, ping, probe"));
    }
    let ep = |to: &str, sub: &str| {
        names
            .endpoint(to, like)
            .ok_or_else(|| cx.at(s, format!("{field}.{sub}.to"), names.endpoint_error(to)))
    };
    let kind = if let Some(d) = &t.tcp {
        AppKind::Tcp(TcpParams {
            to: ep(&d.to, "tcp")?,
            request_bytes: d.request_bytes,
            expect_bytes: d.expect_bytes,
            hold_ms: d.hold_ms,
            keepalive_ms: d.keepalive_ms,
            close: d.close,
            src_port: d.src_port,
            rto_ms: d.rto_ms.max(1),
            max_retries: d.max_retries,
        })
    } else if let Some(d) = &t.udp {
        AppKind::Udp(UdpParams {
            to: ep(&d.to, "udp")?,
            request_bytes: d.request_bytes,
            count: d.count,
            interval_ms: d.interval_ms,
            timeout_ms: d.timeout_ms,
            retries: d.retries,
            src_port: d.src_port,
        })
    } else if let Some(d) = &t.ping {
        AppKind::Ping(PingParams {
            to: names
                .host_addr(&d.to, like)
                .ok_or_else(|| cx.at(s, format!("{field}.ping.to"), names.unknown_host(&d.to)))?,
            count: d.count,
            interval_ms: d.interval_ms,
            timeout_ms: d.timeout_ms,
            ident: d.ident,
        })
    } else if let Some(d) = &t.probe {
        let r = names.remotes.get(&d.server).ok_or_else(|| {
            cx.at(
                s,
                format!("{field}.probe.server"),
                unknown(
                    "remote host",
                    &d.server,
                    names.remotes.keys().map(String::as_str),
                ),
            )
        })?;
        let addrs = &names.remote_addrs[*r as usize];
        if addrs.len() < 2 {
            return Err(cx.at(
                s,
                format!("{field}.probe.server"),
                "an RFC 5780 server needs two addresses",
            ));
        }
        AppKind::Probe(ProbeParams {
            primary: SocketAddr::new(addrs[0], 3478),
            alternate: SocketAddr::new(addrs[1], 3479),
            timeout_ms: d.timeout_ms,
            src_port: d.src_port,
        })
    } else {
        return Err(cx.at(s, field, "exactly one of tcp, udp, ping, probe"));
    };
    Ok(AppSpec {
        name: t.name.clone(),
        at_ns: ms_to_ns(t.at_ms),
        host,
        kind,
    })
}

fn resolve_attack(
    cx: &Ctx,
    i: usize,
    s: &Spanned<AttackItem>,
    names: &Names,
    doc: &ScenarioFile,
) -> Result<AppSpec, ScenarioError> {
    let a = &s.value;
    let field = format!("attacks[{i}]");
    let r = *names.remotes.get(&a.from).ok_or_else(|| {
        cx.at(
            s,
            format!("{field}.from"),
            unknown(
                "remote host",
                &a.from,
                names.remotes.keys().map(String::as_str),
            ),
        )
    })?;
    let like = names.remote_addrs[r as usize].first().copied();
    let set = [
        a.port_scan.is_some(),
        a.unsolicited.is_some(),
        a.spoof_reply.is_some(),
        a.forged_icmp.is_some(),
        a.rst_inject.is_some(),
    ];
    if set.iter().filter(|b| **b).count() != 1 {
        return Err(cx.at(
            s,
            field,
            "exactly one of port_scan, unsolicited, spoof_reply, forged_icmp, rst_inject",
        ));
    }
    let flow_ok = |flow: &str, sub: &str| {
        if doc.traffic.iter().any(|t| t.value.name == flow) {
            Ok(flow.to_string())
        } else {
            Err(cx.at(
                s,
                format!("{field}.{sub}.flow"),
                unknown(
                    "traffic item",
                    flow,
                    doc.traffic.iter().map(|t| t.value.name.as_str()),
                ),
            ))
        }
    };
    let attack = if let Some(d) = &a.port_scan {
        let target = names.host_addr(&d.target, like).ok_or_else(|| {
            cx.at(
                s,
                format!("{field}.port_scan.target"),
                names.unknown_host(&d.target),
            )
        })?;
        if d.ports[1] < d.ports[0] {
            return Err(cx.at(
                s,
                format!("{field}.port_scan.ports"),
                "last port below first",
            ));
        }
        Attack::PortScan {
            target,
            first_port: d.ports[0],
            last_port: d.ports[1],
            proto: match d.protocol {
                ProtoDoc::Tcp => Proto::Tcp,
                ProtoDoc::Udp => Proto::Udp,
            },
            interval_us: d.interval_us,
        }
    } else if let Some(d) = &a.unsolicited {
        Attack::Unsolicited {
            target: names.endpoint(&d.target, like).ok_or_else(|| {
                cx.at(
                    s,
                    format!("{field}.unsolicited.target"),
                    names.endpoint_error(&d.target),
                )
            })?,
            kind: match d.kind {
                UnsolicitedKindDoc::TcpSyn => UnsolicitedKind::TcpSyn,
                UnsolicitedKindDoc::Udp => UnsolicitedKind::Udp,
                UnsolicitedKindDoc::IcmpEcho => UnsolicitedKind::IcmpEcho,
                UnsolicitedKindDoc::Fragment => UnsolicitedKind::Fragment,
            },
            count: d.count.max(1),
            interval_ms: d.interval_ms,
        }
    } else if let Some(d) = &a.spoof_reply {
        Attack::SpoofReply {
            flow: flow_ok(&d.flow, "spoof_reply")?,
            vary: match d.vary {
                VaryDoc::SrcPort => Vary::SrcPort,
                VaryDoc::SrcAddr => Vary::SrcAddr,
                VaryDoc::DstPort => Vary::DstPort,
                VaryDoc::Nothing => Vary::Nothing,
            },
            count: d.count,
        }
    } else if let Some(d) = &a.forged_icmp {
        Attack::ForgedIcmp {
            flow: flow_ok(&d.flow, "forged_icmp")?,
            bad_checksum: d.bad_checksum,
            wrong_port: d.wrong_port,
            outer_destination: match &d.outer_destination {
                None => None,
                Some(a) => Some(a.parse::<IpAddr>().map_err(|_| {
                    cx.at(
                        s,
                        format!("{field}.forged_icmp.outer_destination"),
                        format!("`{a}` is not an IP address"),
                    )
                })?),
            },
        }
    } else if let Some(d) = &a.rst_inject {
        Attack::RstInject {
            flow: flow_ok(&d.flow, "rst_inject")?,
            from_remote: d.from_remote,
        }
    } else {
        return Err(cx.at(s, field, "no action"));
    };
    Ok(AppSpec {
        name: a.name.clone(),
        at_ns: ms_to_ns(a.at_ms),
        host: HostRef::Remote(r),
        kind: AppKind::Attack(attack),
    })
}

fn resolve_fault(
    cx: &Ctx,
    i: usize,
    s: &Spanned<FaultItem>,
    names: &Names,
    links: &[String],
    nodes: u16,
) -> Result<(u64, Fault), ScenarioError> {
    let f = &s.value;
    let field = format!("faults[{i}]");
    for (sub, l) in [("link_down", &f.link_down), ("link_up", &f.link_up)] {
        if let Some(l) = l
            && !links.contains(l)
        {
            return Err(cx.at(
                s,
                format!("{field}.{sub}"),
                unknown("link", l, links.iter().map(String::as_str)),
            ));
        }
    }
    if let Some(k) = f.restart_node
        && k >= nodes
    {
        return Err(cx.at(
            s,
            format!("{field}.restart_node"),
            format!("node {k} does not exist (nodes 0..={})", nodes - 1),
        ));
    }
    let nic = |n: &str, sub: &str| {
        names.nics.get(n).copied().ok_or_else(|| {
            cx.at(
                s,
                format!("{field}.{sub}"),
                unknown("NIC", n, names.nics.keys().map(String::as_str)),
            )
        })
    };
    let mut actions: Vec<Fault> = Vec::new();
    if let Some(l) = &f.link_down {
        actions.push(Fault::LinkDown(l.clone()));
    }
    if let Some(l) = &f.link_up {
        actions.push(Fault::LinkUp(l.clone()));
    }
    if let Some(k) = f.restart_node {
        actions.push(Fault::RestartNode(k));
    }
    if let Some(n) = &f.remove_nat_ip {
        if !names.nat_ips.contains_key(n) {
            return Err(cx.at(
                s,
                format!("{field}.remove_nat_ip"),
                unknown("gateway IP", n, names.nat_ips.keys().map(String::as_str)),
            ));
        }
        actions.push(Fault::RemoveNatIp(n.clone()));
    }
    if let Some(ip) = &f.add_nat_ip {
        actions.push(Fault::AddNatIp {
            name: ip.name.clone(),
            addresses: ip.addresses.clone(),
        });
    }
    if let Some(n) = &f.add_nic {
        actions.push(Fault::AddNic(nic(n, "add_nic")?));
    }
    if let Some(n) = &f.delete_nic {
        actions.push(Fault::DeleteNic(nic(n, "delete_nic")?));
    }
    if let Some(r) = &f.relabel {
        actions.push(Fault::Relabel {
            nic: nic(&r.nic, "relabel.nic")?,
            labels: r.labels.clone(),
        });
    }
    if let Some(n) = &f.attach_virtual_ip {
        actions.push(Fault::AttachVirtualIp(nic(n, "attach_virtual_ip")?));
    }
    if let Some(n) = &f.detach_virtual_ip {
        actions.push(Fault::DetachVirtualIp(nic(n, "detach_virtual_ip")?));
    }
    if let Some(p) = f.set_ports_per_nic {
        if p == 0 || p > PORTS_PER_IP || !p.is_power_of_two() {
            return Err(cx.at(
                s,
                format!("{field}.set_ports_per_nic"),
                format!("{p} is not a power of two in 1..=64512"),
            ));
        }
        actions.push(Fault::SetPortsPerNic(p));
    }
    if f.delete_gateway == Some(true) {
        actions.push(Fault::DeleteGateway);
    }
    if actions.len() != 1 {
        return Err(cx.at(s, field, "exactly one action per fault item"));
    }
    Ok((ms_to_ns(f.at_ms), actions.remove(0)))
}

fn resolve_generator(
    cx: &Ctx,
    i: usize,
    s: &Spanned<GeneratorDoc>,
    names: &Names,
    nics: &[NicSpec],
) -> Result<GeneratorSpec, ScenarioError> {
    let g = &s.value;
    let field = format!("generators[{i}]");
    let mut sel = Vec::new();
    for pat in &g.nics {
        let before = sel.len();
        if let Some(prefix) = pat.strip_suffix('*') {
            sel.extend(
                (0..nics.len() as u32).filter(|&k| nics[k as usize].name.starts_with(prefix)),
            );
        } else if let Some(&k) = names.nics.get(pat) {
            sel.push(k);
        }
        if sel.len() == before {
            return Err(cx.at(
                s,
                format!("{field}.nics"),
                if pat.ends_with('*') {
                    format!("`{pat}` matches no NIC")
                } else {
                    unknown("NIC", pat, names.nics.keys().map(String::as_str))
                },
            ));
        }
    }
    sel.sort_unstable();
    sel.dedup();
    let arrivals = match (g.arrivals.fixed_ms, g.arrivals.poisson_per_s) {
        (Some(ms), None) => Arrivals::Fixed { interval_ms: ms },
        (None, Some(r)) if r > 0.0 => Arrivals::Poisson { rate_per_s: r },
        _ => {
            return Err(cx.at(
                s,
                format!("{field}.arrivals"),
                "exactly one of fixed_ms, poisson_per_s (> 0)",
            ));
        }
    };
    let d = &g.duration;
    let duration = match (d.fixed_ms, d.exponential_mean_ms, &d.pareto) {
        (Some(ms), None, None) => Distribution::Fixed { ms },
        (None, Some(m), None) => Distribution::Exponential { mean_ms: m },
        (None, None, Some(p)) => Distribution::Pareto {
            scale_ms: p.scale_ms,
            shape: p.shape,
        },
        _ => {
            return Err(cx.at(
                s,
                format!("{field}.duration"),
                "exactly one of fixed_ms, exponential_mean_ms, pareto",
            ));
        }
    };
    let mut remotes = Vec::new();
    for r in &g.destinations {
        remotes.push(*names.remotes.get(r).ok_or_else(|| {
            cx.at(
                s,
                format!("{field}.destinations"),
                unknown("remote host", r, names.remotes.keys().map(String::as_str)),
            )
        })?);
    }
    if remotes.is_empty() {
        return Err(cx.at(
            s,
            format!("{field}.destinations"),
            "at least one destination",
        ));
    }
    Ok(GeneratorSpec {
        name: g.name.clone(),
        nics: sel,
        start_ns: ms_to_ns(g.start_ms),
        stop_ns: ms_to_ns(g.stop_ms),
        arrivals,
        duration,
        remotes,
        zipf_s: g.zipf_s,
        mix: [g.mix.tcp, g.mix.udp, g.mix.icmp],
        request_bytes: g.request_bytes,
        interval_ms: g.interval_ms,
    })
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
            AppKind::Attack(_) => continue,
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
        AppKind::Probe(_) | AppKind::Attack(_) => 0,
    }
}

/// The default access link (for callers building configs by hand).
pub fn default_link() -> LinkConfig {
    LinkConfig::default()
}
