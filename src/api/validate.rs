//! Validation: raw manifests → [`Object`]s, collecting every finding.
//!
//! Two passes. The first checks each document on its own (syntax of names, families,
//! addresses, `portsPerNetworkInterface`, selector operators, ...). The second checks the
//! documents against each other (references resolve, no duplicate objects, no address used
//! twice) and emits warnings for legal but surprising input. Objects with errors are
//! dropped from the result; the caller should not reconcile when there are errors.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use super::diag::{Context, Diagnostic, Loc, Severity, Sink};
use super::load::{SourceFile, parse_sources, shift_findings};
use super::manifest::{
    RawDoc, RawMeta, RawNatGatewaySpec, RawNetworkSpec, RawNicSpec, RawObject, RawRef, RawSelector,
    RawVirtualIpSpec, RawVirtualIpStatus, S,
};
use super::model::{
    DEFAULT_NAMESPACE, DEFAULT_PORTS_PER_NETWORK_INTERFACE, IpFamily, Kind, NatGateway,
    NatGatewayIp, Network, NetworkInterface, NicVirtualIp, Object, ObjectKey, VirtualIp,
};
use super::rules;
use super::selector::{LabelSelector, Operator, Requirement};

/// The result of loading manifests: the objects that passed, and every finding.
#[derive(Clone, Debug, Default)]
pub struct LoadReport {
    /// Valid objects in file order, then document order.
    pub objects: Vec<Object>,
    /// Errors and warnings, sorted by file, then position.
    pub diagnostics: Vec<Diagnostic>,
}

impl LoadReport {
    /// Whether any finding is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|d| d.severity == Severity::Error)
    }

    /// The errors only.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
    }

    /// The warnings only.
    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Warning)
    }
}

/// Parses and validates manifests from several files.
pub fn load(sources: &[SourceFile]) -> LoadReport {
    let mut sink = Sink::default();
    let docs = parse_sources(sources, &mut sink);
    let mut checked = Vec::new();
    for doc in docs {
        let before = sink.items.len();
        let mut c = Checker {
            sink: &mut sink,
            ctx: &doc.ctx,
            doc_loc: doc.loc,
            errors: 0,
            locs: BTreeMap::new(),
        };
        let object = match &doc.raw {
            RawObject::Network(raw) => c.network(raw).map(Object::Network),
            RawObject::NetworkInterface(raw) => c.nic(raw).map(Object::NetworkInterface),
            RawObject::VirtualIp(raw) => c.virtual_ip(raw).map(Object::VirtualIp),
            RawObject::NatGateway(raw) => c.gateway(raw).map(Object::NatGateway),
        };
        let (errors, mut locs) = (c.errors, c.locs);
        // The checker counted lines within the document; make them file lines.
        shift_findings(&mut sink, before, doc.line_offset);
        for loc in locs.values_mut() {
            *loc = loc.shifted(doc.line_offset);
        }
        if let Some(object) = object {
            checked.push(Checked {
                object,
                ctx: doc.ctx,
                loc: doc.loc.shifted(doc.line_offset),
                locs,
                has_errors: errors > 0,
            });
        }
    }
    let keep = cross_check(&checked, &mut sink);
    let objects = checked
        .into_iter()
        .zip(keep)
        .filter(|(c, keep)| *keep && !c.has_errors)
        .map(|(c, _)| c.object)
        .collect();
    LoadReport {
        objects,
        diagnostics: sink.finish(),
    }
}

/// One document after the first pass, with the positions the second pass needs.
struct Checked {
    object: Object,
    ctx: Context,
    loc: Loc,
    /// Field path → position, for fields referred to by cross-object findings.
    locs: BTreeMap<String, Loc>,
    has_errors: bool,
}

impl Checked {
    fn at(&self, field: &str) -> Loc {
        self.locs.get(field).copied().unwrap_or(self.loc)
    }

    fn describe(&self) -> String {
        format!(
            "{} {} ({}:{})",
            self.object.kind(),
            self.object.key(),
            self.ctx.file,
            self.loc.line
        )
    }

    /// Like [`Checked::describe`], pointing at one field.
    fn describe_field(&self, field: &str) -> String {
        format!(
            "{} {} at {field} ({}:{})",
            self.object.kind(),
            self.object.key(),
            self.ctx.file,
            self.at(field).line
        )
    }
}

/// First-pass checks for one document.
struct Checker<'a> {
    sink: &'a mut Sink,
    ctx: &'a Context,
    doc_loc: Loc,
    errors: usize,
    locs: BTreeMap<String, Loc>,
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

    fn network(
        &mut self,
        raw: &RawDoc<RawNetworkSpec, super::manifest::OutputOnly>,
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

    fn nic(
        &mut self,
        raw: &RawDoc<RawNicSpec, super::manifest::OutputOnly>,
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

    fn virtual_ip(
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

    fn gateway(
        &mut self,
        raw: &RawDoc<RawNatGatewaySpec, super::manifest::OutputOnly>,
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

/// Second pass. Returns, per checked object, whether it survives (false = duplicate).
fn cross_check(objects: &[Checked], sink: &mut Sink) -> Vec<bool> {
    let mut keep = vec![true; objects.len()];
    let mut first: BTreeMap<(Kind, &ObjectKey), usize> = BTreeMap::new();
    for (i, c) in objects.iter().enumerate() {
        let id = (c.object.kind(), c.object.key());
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
    let find = |kind: Kind, key: &ObjectKey| {
        live.iter()
            .find(|c| c.object.kind() == kind && c.object.key() == key)
            .copied()
    };
    let networks: BTreeMap<&ObjectKey, &Network> = live
        .iter()
        .filter_map(|c| match &c.object {
            Object::Network(n) => Some((&n.key, n)),
            _ => None,
        })
        .collect();
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
                let net = nic.network_key();
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
                if let Some(NicVirtualIp::Ref(name)) = &nic.virtual_ip {
                    let field = "spec.virtualIP.virtualIPRef.name";
                    let vip_key = nic.key.sibling(name);
                    match find(Kind::VirtualIp, &vip_key) {
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
    let mut private: BTreeMap<(ObjectKey, IpAddr), (&Checked, String)> = BTreeMap::new();
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
                    let field = format!("spec.ips[{i}].value");
                    let id = (nic.network_key(), *addr);
                    if let Some((other, _)) = private.get(&id) {
                        sink.error(
                            &c.ctx,
                            c.at(&field),
                            field,
                            format!("address {addr} is already used in Network {} by {}; valid: an address unique within the network", id.0, other.describe()),
                        );
                    } else {
                        private.insert(id, (c, field));
                    }
                    if let Some(net) = networks.get(&nic.network_key())
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
    for ((net, addr), (nic, nic_field)) in &private {
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

/// Warnings about what the gateways will select.
fn selection_warnings(live: &[&Checked], sink: &mut Sink) {
    let mut nics_by_network: BTreeMap<ObjectKey, Vec<&NetworkInterface>> = BTreeMap::new();
    for c in live {
        if let Object::NetworkInterface(nic) = &c.object {
            nics_by_network
                .entry(nic.network_key())
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
    let mut claimed: BTreeMap<(ObjectKey, IpFamily), ObjectKey> = BTreeMap::new();
    for (c, gw) in gateways {
        let Some(sel) = &gw.selector else { continue };
        let field = "spec.networkInterfaceSelector";
        let at = c.at(field);
        let nics = nics_by_network
            .get(&gw.network_key())
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
                match claimed.get(&(nic.key.clone(), *fam)) {
                    Some(first) => sink.warn(
                        &c.ctx,
                        at,
                        field,
                        format!("selects NetworkInterface {} for {fam}, which NATGateway {first} (first in namespace/name order) already claims; this gateway reports a conflict and leaves it alone", nic.key),
                    ),
                    None => {
                        claimed.insert((nic.key.clone(), *fam), gw.key.clone());
                    }
                }
            }
        }
    }
}
