//! The second pass of validation: the documents against each other.

use foldhash::fast::FixedState;
use hashbrown::HashMap;

use super::*;

/// A lookup-only map (never iterated, so its order cannot reach the findings). Keys are
/// borrowed from the objects: a 100k-object manifest must not clone or compare a pair of
/// strings per lookup, as an ordered map of owned keys did.
type Lookup<K, V> = HashMap<K, V, FixedState>;

fn lookup<K, V>() -> Lookup<K, V> {
    HashMap::with_hasher(FixedState::with_seed(0))
}

/// A borrowed object key: (namespace, name).
type KeyRef<'a> = (&'a str, &'a str);

fn key_ref(key: &ObjectKey) -> KeyRef<'_> {
    (key.namespace.as_str(), key.name.as_str())
}

/// The borrowed key of the Network a NIC refers to (its namespace, its `networkRef`).
fn nic_network(nic: &NetworkInterface) -> KeyRef<'_> {
    (nic.key.namespace.as_str(), nic.network.as_str())
}

/// Second pass. Returns, per checked object, whether it survives (false = duplicate).
pub(super) fn cross_check(objects: &[Checked], sink: &mut Sink) -> Vec<bool> {
    let mut keep = vec![true; objects.len()];
    let mut first: Lookup<(Kind, KeyRef), usize> = lookup();
    for (i, c) in objects.iter().enumerate() {
        let id = (c.object.kind(), key_ref(c.object.key()));
        if let Some(&j) = first.get(&id) {
            sink.error(
                &c.ctx,
                c.at("metadata.name"),
                "metadata.name",
                format!(
                    "duplicate object; first defined as {}; valid: one object per kind, namespace and name",
                    objects[j].describe()
                ),
            );
            keep[i] = false;
        } else {
            first.insert(id, i);
        }
    }
    let live: Vec<&Checked> = objects
        .iter()
        .zip(&keep)
        .filter(|(_, k)| **k)
        .map(|(c, _)| c)
        .collect();
    let virtual_ips: Lookup<KeyRef, &Checked> = live
        .iter()
        .filter(|c| c.object.kind() == Kind::VirtualIp)
        .map(|c| (key_ref(c.object.key()), *c))
        .collect();
    // Ordered: the "valid: one of ..." hint lists a namespace's Networks by name.
    let networks: BTreeMap<&ObjectKey, &Network> = live
        .iter()
        .filter_map(|c| match &c.object {
            Object::Network(n) => Some((&n.key, n)),
            _ => None,
        })
        .collect();
    let network_of: Lookup<KeyRef, &Network> =
        networks.iter().map(|(k, n)| (key_ref(k), *n)).collect();
    let missing_network = |ns: &str| -> String {
        let known: Vec<&str> = networks
            .keys()
            .filter(|k| k.namespace == ns)
            .map(|k| k.name.as_str())
            .collect();
        if known.is_empty() {
            format!("valid: the name of a Network in namespace {ns} (there is none; add one)")
        } else {
            format!(
                "valid: one of the Networks in namespace {ns}: {}",
                known.join(", ")
            )
        }
    };

    // References.
    let mut vip_users: BTreeMap<ObjectKey, &Checked> = BTreeMap::new();
    for c in &live {
        match &c.object {
            Object::NetworkInterface(nic) => {
                if !network_of.contains_key(&nic_network(nic)) {
                    let net = nic.network_key();
                    sink.error(
                        &c.ctx,
                        c.at("spec.networkRef.name"),
                        "spec.networkRef.name",
                        format!(
                            "Network {net} not found; {}",
                            missing_network(&net.namespace)
                        ),
                    );
                }
                if let Some(NicVirtualIp::Ref(name)) = &nic.virtual_ip {
                    let field = "spec.virtualIP.virtualIPRef.name";
                    let vip_key = nic.key.sibling(name);
                    match virtual_ips.get(&key_ref(&vip_key)).copied() {
                        None => sink.error(
                            &c.ctx,
                            c.at(field),
                            field,
                            format!("VirtualIP {vip_key} not found; valid: the name of a VirtualIP in namespace {}", vip_key.namespace),
                        ),
                        Some(v) => {
                            if let Object::VirtualIp(vip) = &v.object
                                && !nic.ip_families.contains(&vip.family)
                            {
                                sink.error(
                                    &c.ctx,
                                    c.at(field),
                                    field,
                                    format!("VirtualIP {vip_key} is {} but the NIC has no {} family; valid: a VirtualIP of one of the NIC's ipFamilies", vip.family, vip.family),
                                );
                            }
                            if let Some(other) = vip_users.get(&vip_key) {
                                sink.error(
                                    &c.ctx,
                                    c.at(field),
                                    field,
                                    format!("VirtualIP {vip_key} is already used by {}; valid: one NetworkInterface per VirtualIP", other.describe()),
                                );
                            } else {
                                vip_users.insert(vip_key, c);
                            }
                        }
                    }
                }
            }
            Object::NatGateway(gw) => {
                let net = gw.network_key();
                if !networks.contains_key(&net) {
                    sink.error(
                        &c.ctx,
                        c.at("spec.networkRef.name"),
                        "spec.networkRef.name",
                        format!(
                            "Network {net} not found; {}",
                            missing_network(&net.namespace)
                        ),
                    );
                }
            }
            Object::Network(_) | Object::VirtualIp(_) => {}
        }
    }

    // Public addresses: pinned gateway addresses and VirtualIP addresses are globally unique.
    let mut public: BTreeMap<IpAddr, (&Checked, String)> = BTreeMap::new();
    // Private addresses: unique within a network.
    let mut private: Lookup<(KeyRef, IpAddr), (&Checked, usize)> = lookup();
    for c in &live {
        let mut claim_public = |addr: IpAddr, field: String, sink: &mut Sink| {
            if let Some((other, other_field)) = public.get(&addr) {
                sink.error(
                    &c.ctx,
                    c.at(&field),
                    field.clone(),
                    format!("address {addr} is already used by {}; valid: an address no other object uses", other.describe_field(other_field)),
                );
            } else {
                public.insert(addr, (c, field));
            }
        };
        match &c.object {
            Object::NatGateway(gw) => {
                for (i, ip) in gw.ips.iter().enumerate() {
                    for (j, addr) in ip.addresses.iter().enumerate() {
                        claim_public(*addr, format!("spec.ips[{i}].addresses[{j}]"), sink);
                    }
                }
            }
            Object::VirtualIp(vip) => {
                if let Some(addr) = vip.address {
                    claim_public(addr, "status.ip".into(), sink);
                }
            }
            Object::NetworkInterface(nic) => {
                for (i, addr) in nic.ips.iter().enumerate() {
                    let id = (nic_network(nic), *addr);
                    if let Some((other, _)) = private.get(&id) {
                        let field = ip_field(i);
                        sink.error(
                            &c.ctx,
                            c.at(&field),
                            field,
                            format!("address {addr} is already used in Network {} by {}; valid: an address unique within the network", nic.network_key(), other.describe()),
                        );
                    } else {
                        private.insert(id, (c, i));
                    }
                    if let Some(net) = network_of.get(&nic_network(nic))
                        && !net.prefixes.is_empty()
                        && !net.prefixes.iter().any(|p| p.contains(addr))
                    {
                        // An error, not a warning: the gateway would treat the NIC's own
                        // replies as leaving the network (docs/api.md).
                        sink.error(
                            &c.ctx,
                            c.at(&format!("spec.ips[{i}].value")),
                            format!("spec.ips[{i}].value"),
                            format!(
                                "address {addr} is outside every prefix of Network {} ({}); valid: an address inside one of them",
                                net.key,
                                net.prefixes.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
                            ),
                        );
                    }
                }
            }
            Object::Network(_) => {}
        }
    }
    // A NAT IP or VirtualIP address that is also a NIC's private address cannot be public.
    // Reported in (network, address) order, whatever the lookup map's order.
    let mut public_and_private: Vec<_> = private
        .iter()
        .filter(|((_, addr), _)| public.contains_key(addr))
        .collect();
    public_and_private.sort_by_key(|((net, addr), _)| (*net, *addr));
    for (((ns, name), addr), (nic, i)) in public_and_private {
        let net = ObjectKey::new(*ns, *name);
        let nic_field = &ip_field(*i);
        if let Some((owner, field)) = public.get(addr) {
            sink.error(
                &owner.ctx,
                owner.at(field),
                field.clone(),
                format!(
                    "address {addr} is the private address of {} in Network {net}; valid: a public address no NetworkInterface uses",
                    nic.describe_field(nic_field)
                ),
            );
        }
    }

    selection_warnings(&live, sink);
    keep
}

/// The field of a NIC's `i`th address.
fn ip_field(i: usize) -> String {
    format!("spec.ips[{i}].value")
}

/// Warnings about what the gateways will select.
fn selection_warnings(live: &[&Checked], sink: &mut Sink) {
    // Each list in file order.
    let mut nics_by_network: Lookup<KeyRef, Vec<&NetworkInterface>> = lookup();
    for c in live {
        if let Object::NetworkInterface(nic) = &c.object {
            nics_by_network
                .entry(nic_network(nic))
                .or_default()
                .push(nic);
        }
    }
    let mut gateways: Vec<(&Checked, &NatGateway)> = live
        .iter()
        .filter_map(|c| match &c.object {
            Object::NatGateway(gw) => Some((*c, gw)),
            _ => None,
        })
        .collect();
    gateways.sort_by(|a, b| a.1.key.cmp(&b.1.key));
    // (nic, family) → first gateway (in key order) selecting it.
    let mut claimed: Lookup<(&ObjectKey, IpFamily), &ObjectKey> = lookup();
    for (c, gw) in gateways {
        let Some(sel) = &gw.selector else { continue };
        let field = "spec.networkInterfaceSelector";
        let at = c.at(field);
        let nics = nics_by_network
            .get(&(gw.key.namespace.as_str(), gw.network.as_str()))
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let matching: Vec<&&NetworkInterface> =
            nics.iter().filter(|n| sel.matches(&n.labels)).collect();
        if matching.is_empty() {
            sink.warn(
                &c.ctx,
                at,
                field,
                format!(
                    "selects no NetworkInterface of Network {}",
                    gw.network_key()
                ),
            );
        }
        for nic in matching {
            for fam in &gw.ip_families {
                if nic.address(*fam).is_none() {
                    sink.warn(
                        &c.ctx,
                        at,
                        field,
                        format!("selects NetworkInterface {} which has no {fam} address; it is not NATed for {fam}", nic.key),
                    );
                    continue;
                }
                if nic.virtual_ip.is_some() || nic.deleting {
                    continue;
                }
                match claimed.get(&(&nic.key, *fam)) {
                    Some(first) => sink.warn(
                        &c.ctx,
                        at,
                        field,
                        format!("selects NetworkInterface {} for {fam}, which NATGateway {first} (first in namespace/name order) already claims; this gateway reports a conflict and leaves it alone", nic.key),
                    ),
                    None => {
                        claimed.insert((&nic.key, *fam), &gw.key);
                    }
                }
            }
        }
    }
}
