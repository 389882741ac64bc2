//! Resolving the `gateway` section and the control plane behind it: the IronCore objects,
//! the reconciler's addresses, the gateway configuration.

use super::*;

/// The dataplane configuration and the control plane: the API objects the topology and the
/// gateway section stand for, merged with the manifests' (see [`crate::scenario::objects`]).
pub(super) fn resolve_control(
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
pub(super) fn reconcile_addresses(
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
