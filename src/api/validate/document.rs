//! The first pass of validation: each document on its own.

use super::*;

/// First-pass checks for one document.
pub(super) struct Checker<'a> {
    pub(super) sink: &'a mut Sink,
    pub(super) ctx: &'a Context,
    pub(super) doc_loc: Loc,
    pub(super) errors: usize,
    pub(super) locs: BTreeMap<String, Loc>,
}

fn loc_of<T>(s: &S<T>) -> Loc {
    s.referenced.into()
}

impl Checker<'_> {
    fn err(&mut self, loc: Loc, field: impl Into<String>, msg: impl Into<String>) {
        self.errors += 1;
        self.sink.error(self.ctx, loc, field, msg);
    }

    fn warn(&mut self, loc: Loc, field: impl Into<String>, msg: impl Into<String>) {
        self.sink.warn(self.ctx, loc, field, msg);
    }

    fn remember(&mut self, field: impl Into<String>, loc: Loc) {
        self.locs.insert(field.into(), loc);
    }

    /// `metadata`: name, namespace and labels. Returns the key (None if unusable).
    fn metadata(
        &mut self,
        meta: Option<&S<RawMeta>>,
    ) -> Option<(ObjectKey, BTreeMap<String, String>, bool)> {
        let Some(meta) = meta else {
            self.err(
                self.doc_loc,
                "metadata",
                "missing; valid: a mapping with at least `name`",
            );
            return None;
        };
        let name = match &meta.value.name {
            None => {
                self.err(
                    loc_of(meta),
                    "metadata.name",
                    "missing; valid: a DNS label such as `my-nat`",
                );
                None
            }
            Some(n) => match rules::dns_label(&n.value) {
                Ok(()) => Some(n.value.clone()),
                Err(e) => {
                    self.err(loc_of(n), "metadata.name", e);
                    None
                }
            },
        };
        let namespace = match &meta.value.namespace {
            None => DEFAULT_NAMESPACE.to_owned(),
            Some(ns) => match rules::dns_label(&ns.value) {
                Ok(()) => ns.value.clone(),
                Err(e) => {
                    self.err(loc_of(ns), "metadata.namespace", e);
                    DEFAULT_NAMESPACE.to_owned()
                }
            },
        };
        let mut labels = BTreeMap::new();
        for (k, v) in meta.value.labels.iter().flatten() {
            let field = format!("metadata.labels.{k}");
            if let Err(e) = rules::label_key(k) {
                self.err(loc_of(v), field.clone(), e);
            }
            if let Err(e) = rules::label_value(&v.value) {
                self.err(loc_of(v), field, e);
            }
            labels.insert(k.clone(), v.value.clone());
        }
        let deleting = meta.value.deletion_timestamp.is_some();
        if let Some(ts) = &meta.value.deletion_timestamp
            && ts.value.trim().is_empty()
        {
            self.err(
                loc_of(ts),
                "metadata.deletionTimestamp",
                "empty; valid: an RFC 3339 time such as 2024-01-01T00:00:00Z (any non-empty value marks the object as being deleted)",
            );
        }
        self.remember("metadata.name", loc_of(meta));
        name.map(|n| (ObjectKey::new(namespace, n), labels, deleting))
    }

    fn no_deletion_mark(&mut self, meta: Option<&S<RawMeta>>, kind: Kind) {
        if let Some(ts) = meta.and_then(|m| m.value.deletion_timestamp.as_ref()) {
            self.warn(
                loc_of(ts),
                "metadata.deletionTimestamp",
                format!("natsim ignores deletionTimestamp on a {kind}; only NetworkInterfaces model being deleted (delete the object instead)"),
            );
        }
    }

    fn output_only_status<T>(&mut self, status: Option<&S<T>>) {
        if let Some(st) = status {
            self.err(
                loc_of(st),
                "status",
                "status is computed by natsim and cannot be given as input; remove it",
            );
        }
    }

    fn required_spec<'s, T>(&mut self, spec: Option<&'s S<T>>) -> Option<&'s S<T>> {
        if spec.is_none() {
            self.err(
                self.doc_loc,
                "spec",
                "missing; valid: see docs/api.md for the shape of this kind",
            );
        }
        spec
    }

    /// A `{name}` reference: required, a DNS label.
    fn reference(&mut self, r: Option<&S<RawRef>>, field: &str) -> Option<String> {
        let name_field = format!("{field}.name");
        let Some(r) = r else {
            self.err(
                self.doc_loc,
                field,
                format!("missing; valid: `{field}: {{name: <DNS label>}}`"),
            );
            return None;
        };
        let Some(name) = &r.value.name else {
            self.err(loc_of(r), name_field, "missing; valid: a DNS label");
            return None;
        };
        self.remember(name_field.clone(), loc_of(name));
        match rules::dns_label(&name.value) {
            Ok(()) => Some(name.value.clone()),
            Err(e) => {
                self.err(loc_of(name), name_field, e);
                None
            }
        }
    }

    /// A non-empty, duplicate-free list of families.
    fn families(&mut self, list: &S<Vec<S<String>>>, field: &str) -> Vec<IpFamily> {
        let mut out = Vec::new();
        if list.value.is_empty() {
            self.err(
                loc_of(list),
                field,
                "empty; valid: [IPv4], [IPv6] or [IPv4, IPv6]",
            );
        }
        for (i, f) in list.value.iter().enumerate() {
            match rules::family(&f.value) {
                Ok(fam) if out.contains(&fam) => self.err(
                    loc_of(f),
                    format!("{field}[{i}]"),
                    format!("{fam} is listed twice; valid: each family at most once"),
                ),
                Ok(fam) => out.push(fam),
                Err(e) => self.err(loc_of(f), format!("{field}[{i}]"), e),
            }
        }
        out
    }

    fn type_public(&mut self, t: Option<&S<String>>, field: &str) {
        match t {
            None => self.err(self.doc_loc, field, "missing; valid: Public"),
            Some(t) if t.value != "Public" => self.err(
                loc_of(t),
                field,
                format!(
                    "unsupported type `{}`; valid: Public (the only type IronCore supports)",
                    t.value
                ),
            ),
            Some(_) => {}
        }
    }

    pub(super) fn network(
        &mut self,
        raw: &RawDoc<RawNetworkSpec, crate::api::manifest::OutputOnly>,
    ) -> Option<Network> {
        let meta = self.metadata(raw.metadata.as_ref());
        self.no_deletion_mark(raw.metadata.as_ref(), Kind::Network);
        self.output_only_status(raw.status.as_ref());
        let mut prefixes = Vec::new();
        let mut routes = Vec::new();
        if let Some(spec) = &raw.spec {
            for (list, out, name) in [
                (&spec.value.prefixes, &mut prefixes, "spec.prefixes"),
                (&spec.value.routes, &mut routes, "spec.routes"),
            ] {
                for (i, p) in list.iter().flatten().enumerate() {
                    match rules::prefix(&p.value) {
                        Ok(net) => out.push(net),
                        Err(e) => {
                            self.errors += 1;
                            self.sink
                                .error(self.ctx, loc_of(p), format!("{name}[{i}]"), e);
                        }
                    }
                }
            }
        }
        let (key, _, _) = meta?;
        Some(Network {
            key,
            prefixes,
            routes,
        })
    }

    pub(super) fn nic(
        &mut self,
        raw: &RawDoc<RawNicSpec, crate::api::manifest::OutputOnly>,
    ) -> Option<NetworkInterface> {
        let meta = self.metadata(raw.metadata.as_ref());
        self.output_only_status(raw.status.as_ref());
        let spec = &self.required_spec(raw.spec.as_ref())?.value;
        let network = self.reference(spec.network_ref.as_ref(), "spec.networkRef");
        let families = match &spec.ip_families {
            None => {
                self.err(
                    self.doc_loc,
                    "spec.ipFamilies",
                    "missing; valid: [IPv4], [IPv6] or [IPv4, IPv6], matching spec.ips",
                );
                Vec::new()
            }
            Some(list) => self.families(list, "spec.ipFamilies"),
        };
        let mut ips = Vec::new();
        match &spec.ips {
            None => self.err(
                self.doc_loc,
                "spec.ips",
                "missing; valid: one `{value: <address>}` per entry of spec.ipFamilies",
            ),
            Some(list) => {
                for (i, item) in list.value.iter().enumerate() {
                    let field = format!("spec.ips[{i}].value");
                    let Some(v) = &item.value.value else {
                        self.err(loc_of(item), field, "missing; valid: an IP address");
                        continue;
                    };
                    match rules::address(&v.value) {
                        Err(e) => self.err(loc_of(v), field, e),
                        Ok(addr) => {
                            let fam = IpFamily::of(addr);
                            match families.get(i) {
                                Some(want) if *want != fam => self.err(
                                    loc_of(v),
                                    field,
                                    format!("{addr} is {fam} but spec.ipFamilies[{i}] is {want}; valid: spec.ips[i] has the family spec.ipFamilies[i]"),
                                ),
                                _ => {
                                    self.remember(field, loc_of(v));
                                    ips.push(addr);
                                }
                            }
                        }
                    }
                }
                if !families.is_empty() && list.value.len() != families.len() {
                    self.err(
                        loc_of(list),
                        "spec.ips",
                        format!(
                            "{} addresses for {} families; valid: exactly one address per entry of spec.ipFamilies",
                            list.value.len(),
                            families.len()
                        ),
                    );
                }
            }
        }
        let virtual_ip = spec.virtual_ip.as_ref().and_then(|vip| {
            match (&vip.value.virtual_ip_ref, &vip.value.ephemeral) {
                (Some(r), None) => self
                    .reference(Some(r), "spec.virtualIP.virtualIPRef")
                    .map(NicVirtualIp::Ref),
                (None, Some(eph)) => {
                    if let Some(s) = eph
                        .value
                        .virtual_ip_template
                        .as_ref()
                        .and_then(|t| t.spec.as_ref())
                    {
                        self.vip_spec(
                            &s.value,
                            "spec.virtualIP.ephemeral.virtualIPTemplate.spec",
                            loc_of(s),
                        );
                    }
                    Some(NicVirtualIp::Ephemeral)
                }
                _ => {
                    self.err(
                        loc_of(vip),
                        "spec.virtualIP",
                        "valid: exactly one of `virtualIPRef: {name}` or `ephemeral: {...}`",
                    );
                    None
                }
            }
        });
        let (key, labels, deleting) = meta?;
        Some(NetworkInterface {
            key,
            labels,
            network: network?,
            ip_families: families,
            ips,
            virtual_ip,
            deleting,
        })
    }

    fn vip_spec(&mut self, spec: &RawVirtualIpSpec, field: &str, loc: Loc) -> Option<IpFamily> {
        self.doc_loc_override(loc, |c| {
            c.type_public(spec.type_.as_ref(), &format!("{field}.type"))
        });
        match &spec.ip_family {
            None => {
                self.err(
                    loc,
                    format!("{field}.ipFamily"),
                    "missing; valid: IPv4 or IPv6",
                );
                None
            }
            Some(f) => match rules::family(&f.value) {
                Ok(fam) => Some(fam),
                Err(e) => {
                    self.err(loc_of(f), format!("{field}.ipFamily"), e);
                    None
                }
            },
        }
    }

    /// Runs `f` with findings about missing fields pointing at `loc` instead of the document.
    fn doc_loc_override(&mut self, loc: Loc, f: impl FnOnce(&mut Self)) {
        let saved = self.doc_loc;
        self.doc_loc = loc;
        f(self);
        self.doc_loc = saved;
    }

    pub(super) fn virtual_ip(
        &mut self,
        raw: &RawDoc<RawVirtualIpSpec, RawVirtualIpStatus>,
    ) -> Option<VirtualIp> {
        let meta = self.metadata(raw.metadata.as_ref());
        self.no_deletion_mark(raw.metadata.as_ref(), Kind::VirtualIp);
        let spec = self.required_spec(raw.spec.as_ref())?;
        let family = self.vip_spec(&spec.value, "spec", loc_of(spec));
        let mut address = None;
        if let Some(ip) = raw.status.as_ref().and_then(|s| s.value.ip.as_ref()) {
            match rules::address(&ip.value) {
                Err(e) => self.err(loc_of(ip), "status.ip", e),
                Ok(addr) => {
                    if let Some(fam) = family
                        && IpFamily::of(addr) != fam
                    {
                        self.err(
                            loc_of(ip),
                            "status.ip",
                            format!(
                                "{addr} is {} but spec.ipFamily is {fam}; valid: an {fam} address",
                                IpFamily::of(addr)
                            ),
                        );
                    }
                    self.remember("status.ip", loc_of(ip));
                    address = Some(addr);
                }
            }
        }
        let (key, _, _) = meta?;
        Some(VirtualIp {
            key,
            family: family?,
            address,
        })
    }

    pub(super) fn gateway(
        &mut self,
        raw: &RawDoc<RawNatGatewaySpec, crate::api::manifest::OutputOnly>,
    ) -> Option<NatGateway> {
        let meta = self.metadata(raw.metadata.as_ref());
        self.no_deletion_mark(raw.metadata.as_ref(), Kind::NatGateway);
        self.output_only_status(raw.status.as_ref());
        let spec = &self.required_spec(raw.spec.as_ref())?.value;
        self.type_public(spec.type_.as_ref(), "spec.type");
        let families = match (&spec.ip_families, &spec.ip_family) {
            (Some(list), None) => self.families(list, "spec.ipFamilies"),
            (None, Some(one)) => match rules::family(&one.value) {
                Ok(f) => vec![f],
                Err(e) => {
                    self.err(loc_of(one), "spec.ipFamily", e);
                    Vec::new()
                }
            },
            (Some(list), Some(_)) => {
                self.err(
                    loc_of(list),
                    "spec.ipFamilies",
                    "both ipFamilies and ipFamily are given; valid: exactly one of them",
                );
                Vec::new()
            }
            (None, None) => {
                self.err(
                    self.doc_loc,
                    "spec.ipFamilies",
                    "missing; valid: [IPv4], [IPv6] or [IPv4, IPv6] (or the single-family form `ipFamily: IPv4`)",
                );
                Vec::new()
            }
        };
        let network = self.reference(spec.network_ref.as_ref(), "spec.networkRef");
        let ips = self.gateway_ips(spec, &families);
        let ports = match &spec.ports_per_network_interface {
            None => Some(DEFAULT_PORTS_PER_NETWORK_INTERFACE),
            Some(p) => match rules::ports_per_network_interface(p.value.0) {
                Ok(p) => Some(p),
                Err(e) => {
                    self.err(loc_of(p), "spec.portsPerNetworkInterface", e);
                    None
                }
            },
        };
        let selector = match &spec.network_interface_selector {
            None => {
                self.warn(
                    self.doc_loc,
                    "spec.networkInterfaceSelector",
                    "absent, so the gateway selects no NetworkInterface (Kubernetes semantics); use `networkInterfaceSelector: {}` to select every NIC of the network",
                );
                None
            }
            Some(sel) => {
                self.remember("spec.networkInterfaceSelector", loc_of(sel));
                Some(self.selector(&sel.value))
            }
        };
        let (key, _, _) = meta?;
        Some(NatGateway {
            key,
            ip_families: families,
            network: network?,
            ips,
            ports_per_network_interface: ports?,
            selector,
        })
    }

    fn gateway_ips(
        &mut self,
        spec: &RawNatGatewaySpec,
        families: &[IpFamily],
    ) -> Vec<NatGatewayIp> {
        let mut ips: Vec<NatGatewayIp> = Vec::new();
        let Some(list) = &spec.ips else {
            self.warn(
                self.doc_loc,
                "spec.ips",
                "absent, so the gateway has no public address and NATs nothing; valid: a list like `[{name: ip1}]`",
            );
            return ips;
        };
        if list.value.is_empty() {
            self.warn(
                loc_of(list),
                "spec.ips",
                "empty, so the gateway has no public address and NATs nothing; valid: a list like `[{name: ip1}]`",
            );
        }
        let mut seen: BTreeSet<String> = BTreeSet::new();
        for (i, item) in list.value.iter().enumerate() {
            let field = format!("spec.ips[{i}]");
            let name = match &item.value.name {
                None => {
                    self.err(
                        loc_of(item),
                        format!("{field}.name"),
                        "missing; valid: a DNS label such as `ip1`",
                    );
                    continue;
                }
                Some(n) => n,
            };
            if let Err(e) = rules::dns_label(&name.value) {
                self.err(loc_of(name), format!("{field}.name"), e);
                continue;
            }
            if !seen.insert(name.value.clone()) {
                self.err(
                    loc_of(name),
                    format!("{field}.name"),
                    format!(
                        "`{}` is used twice; valid: unique names within spec.ips",
                        name.value
                    ),
                );
                continue;
            }
            let mut addresses: Vec<IpAddr> = Vec::new();
            for (j, a) in item.value.addresses.iter().flatten().enumerate() {
                let afield = format!("{field}.addresses[{j}]");
                match rules::address(&a.value) {
                    Err(e) => self.err(loc_of(a), afield, e),
                    Ok(addr) => {
                        let fam = IpFamily::of(addr);
                        if !families.is_empty() && !families.contains(&fam) {
                            self.err(
                                loc_of(a),
                                afield,
                                format!("{addr} is {fam}, which is not in the gateway's ipFamilies; valid: one address per family in ipFamilies"),
                            );
                        } else if addresses.iter().any(|b| IpFamily::of(*b) == fam) {
                            self.err(
                                loc_of(a),
                                afield,
                                format!("a second {fam} address; valid: at most one pinned address per family"),
                            );
                        } else {
                            self.remember(afield, loc_of(a));
                            addresses.push(addr);
                        }
                    }
                }
            }
            ips.push(NatGatewayIp {
                name: name.value.clone(),
                addresses,
            });
        }
        ips
    }

    fn selector(&mut self, raw: &RawSelector) -> LabelSelector {
        let base = "spec.networkInterfaceSelector";
        let mut sel = LabelSelector::default();
        for (k, v) in raw.match_labels.iter().flatten() {
            let field = format!("{base}.matchLabels.{k}");
            if let Err(e) = rules::label_key(k) {
                self.err(loc_of(v), field.clone(), e);
            }
            if let Err(e) = rules::label_value(&v.value) {
                self.err(loc_of(v), field, e);
            }
            sel.match_labels.insert(k.clone(), v.value.clone());
        }
        for (i, r) in raw.match_expressions.iter().flatten().enumerate() {
            let field = format!("{base}.matchExpressions[{i}]");
            let key = match &r.value.key {
                None => {
                    self.err(
                        loc_of(r),
                        format!("{field}.key"),
                        "missing; valid: a label key",
                    );
                    None
                }
                Some(k) => match rules::label_key(&k.value) {
                    Ok(()) => Some(k.value.clone()),
                    Err(e) => {
                        self.err(loc_of(k), format!("{field}.key"), e);
                        None
                    }
                },
            };
            let operator = match &r.value.operator {
                None => {
                    self.err(
                        loc_of(r),
                        format!("{field}.operator"),
                        "missing; valid: In, NotIn, Exists, DoesNotExist",
                    );
                    None
                }
                Some(o) => match Operator::parse(&o.value) {
                    Some(op) => Some(op),
                    None => {
                        self.err(
                            loc_of(o),
                            format!("{field}.operator"),
                            format!(
                                "unknown operator `{}`; valid: In, NotIn, Exists, DoesNotExist",
                                o.value
                            ),
                        );
                        None
                    }
                },
            };
            let mut values = BTreeSet::new();
            for (j, v) in r.value.values.iter().flatten().enumerate() {
                if let Err(e) = rules::label_value(&v.value) {
                    self.err(loc_of(v), format!("{field}.values[{j}]"), e);
                }
                values.insert(v.value.clone());
            }
            let Some(op) = operator else { continue };
            if op.takes_values() && values.is_empty() {
                self.err(
                    loc_of(r),
                    format!("{field}.values"),
                    format!("operator {op} needs at least one value; valid: a non-empty list"),
                );
            } else if !op.takes_values() && r.value.values.as_ref().is_some_and(|v| !v.is_empty()) {
                self.err(
                    loc_of(r),
                    format!("{field}.values"),
                    format!("operator {op} takes no values; valid: omit `values`"),
                );
            }
            if let Some(key) = key {
                sel.match_expressions.push(Requirement {
                    key,
                    operator: op,
                    values,
                });
            }
        }
        sel
    }
}
