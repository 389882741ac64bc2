//! Validation: raw manifests → [`Object`]s, collecting every finding.
//!
//! Two passes. The first checks each document on its own (syntax of names, families,
//! addresses, `portsPerNetworkInterface`, selector operators, ...). The second checks the
//! documents against each other (references resolve, no duplicate objects, no address used
//! twice) and emits warnings for legal but surprising input. Objects with errors are
//! dropped from the result; the caller should not reconcile when there are errors.
//!
//! | module | job |
//! |---|---|
//! | `document` | the first pass: one document's fields, with the positions of its findings |
//! | `cross` | the second pass: references, duplicates, shared addresses, selection warnings |

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use crate::api::diag::{Context, Diagnostic, Loc, Severity, Sink};
use crate::api::load::{ParsedDoc, SourceFile, parse_sources, shift_findings};
use crate::api::manifest::{
    RawDoc, RawMeta, RawNatGatewaySpec, RawNetworkSpec, RawNicSpec, RawObject, RawRef, RawSelector,
    RawVirtualIpSpec, RawVirtualIpStatus, S,
};
use crate::api::model::{
    DEFAULT_NAMESPACE, DEFAULT_PORTS_PER_NETWORK_INTERFACE, IpFamily, Kind, NatGateway,
    NatGatewayIp, Network, NetworkInterface, NicVirtualIp, Object, ObjectKey, VirtualIp,
};
use crate::api::rules;
use crate::api::selector::{LabelSelector, Operator, Requirement};

mod cross;
mod document;

use cross::cross_check;
use document::Checker;

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
    // The first pass runs beside the parse, on the parse threads: documents are independent.
    let checked = parse_sources(sources, &mut sink, &first_pass);
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

/// The first pass over one parsed document: its findings go to `sink` with file lines; the
/// object, if the document describes one, with the positions the second pass needs.
fn first_pass(doc: ParsedDoc, sink: &mut Sink) -> Option<Checked> {
    let before = sink.items.len();
    let mut c = Checker {
        sink,
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
    shift_findings(sink, before, doc.line_offset);
    for loc in locs.values_mut() {
        *loc = loc.shifted(doc.line_offset);
    }
    Some(Checked {
        object: object?,
        ctx: doc.ctx,
        loc: doc.loc.shifted(doc.line_offset),
        locs,
        has_errors: errors > 0,
    })
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
