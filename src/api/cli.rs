//! The `natsim validate` and `natsim reconcile` commands, as library functions.
//!
//! `validate` prints every finding and fails on errors. `reconcile` validates, reconciles at
//! virtual time zero and prints, per gateway in (namespace, name) order, the `NATGateway`
//! (normalised spec and status) and its `NATGatewayRouting`, as a YAML stream in the style
//! of `kubectl get -o yaml`. Output is deterministic: the same files give the same bytes.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use ipnet::IpNet;
use serde::Serialize;

use super::load::{API_VERSION, SourceFile};
use super::model::{IpFamily, NatGateway, Object};
use super::pool::{Pools, check_pool};
use super::selector::LabelSelector;
use super::status::{NatGatewayDestination, NatGatewayStatus};
use super::validate::load;
use super::world::{World, WorldConfig};
use crate::time::Instant;
use crate::{exit, output};

/// Reads files; unreadable ones become error lines (and make the command fail).
pub fn read_sources(files: &[PathBuf]) -> (Vec<SourceFile>, Vec<String>) {
    let mut sources = Vec::new();
    let mut errors = Vec::new();
    for path in files {
        match std::fs::read_to_string(path) {
            Ok(text) => sources.push(SourceFile::new(path.display().to_string(), text)),
            Err(e) => errors.push(format!("error: {}: cannot read file: {e}", path.display())),
        }
    }
    (sources, errors)
}

/// `natsim validate FILE...`: prints every error and warning to stdout, then a summary.
/// Exit code 0 when there are no errors (warnings allowed), 1 otherwise, 2 when a file
/// cannot be read or the output is lost ([`crate::exit`]).
pub fn validate(files: &[PathBuf]) -> ExitCode {
    let (sources, read_errors) = read_sources(files);
    let mut out = output::stdout();
    let ok = validate_with(&sources, &read_errors, &mut out).unwrap_or(false);
    let code = if !read_errors.is_empty() {
        exit::BAD_INPUT
    } else {
        verdict(ok)
    };
    exit::code(output::finish(code, out, output::stderr()))
}

/// `natsim reconcile FILE... [--pool PREFIX]...`: YAML to stdout, findings to stderr.
/// Empty `pools` means the default pools ([`super::DEFAULT_POOL_V4`],
/// [`super::DEFAULT_POOL_V6`]). Exit code 0 on success, 1 when the manifests are invalid,
/// 2 for an unreadable file, an unusable `--pool` ([`super::pool::check_pool`], or one
/// overlapping a Network's prefixes or a NIC's address) or a lost output.
pub fn reconcile(files: &[PathBuf], pools: &[IpNet]) -> ExitCode {
    let mut out = output::stdout();
    let mut err = output::stderr();
    let code = reconcile_cmd(files, pools, &mut out, &mut err);
    exit::code(output::finish(code, out, err))
}

fn reconcile_cmd(
    files: &[PathBuf],
    pools: &[IpNet],
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    let bad_pools: Vec<String> = pools.iter().filter_map(|p| check_pool(p).err()).collect();
    for e in &bad_pools {
        let _ = writeln!(err, "error: --pool {e}");
    }
    if !bad_pools.is_empty() {
        return exit::BAD_INPUT;
    }
    let (sources, read_errors) = read_sources(files);
    for e in &read_errors {
        let _ = writeln!(err, "{e}");
    }
    if !read_errors.is_empty() {
        return exit::BAD_INPUT;
    }
    match reconcile_checked(&sources, pools, out, err) {
        Ok((code, world)) => {
            // The process ends right after this: freeing a 100k-NIC world object by object
            // took about a tenth of a second (5 % of the run) for nothing.
            std::mem::forget(world);
            code
        }
        // Lost output: `output::finish` reports it.
        Err(_) => exit::BAD_INPUT,
    }
}

fn verdict(ok: bool) -> u8 {
    if ok { exit::OK } else { exit::FAILED }
}

/// Pools that hold a Network's own (or routed) prefix, or a NIC's private address, would
/// hand out addresses that are not public: one message per overlap.
fn pool_conflicts(world_objects: &[Object], pools: &[IpNet]) -> Vec<String> {
    let mut found = Vec::new();
    for pool in pools {
        for object in world_objects {
            match object {
                Object::Network(net) => {
                    for (field, list) in [
                        ("spec.prefixes", &net.prefixes),
                        ("spec.routes", &net.routes),
                    ] {
                        if let Some(p) = list.iter().find(|p| p.contains(pool) || pool.contains(*p))
                        {
                            found.push(format!(
                                "--pool {pool} overlaps Network {} {field} {p}: addresses inside a network are not public; valid: a pool outside every Network's prefixes and routes",
                                net.key
                            ));
                        }
                    }
                }
                Object::NetworkInterface(nic) => {
                    if let Some(a) = nic.ips.iter().find(|a| pool.contains(*a)) {
                        found.push(format!(
                            "--pool {pool} contains {a}, the private address of NetworkInterface {}; valid: a pool outside every NIC's addresses",
                            nic.key
                        ));
                    }
                }
                Object::VirtualIp(_) | Object::NatGateway(_) => {}
            }
        }
    }
    found
}

/// Validates `sources`, writing one line per finding and a summary. Returns whether there
/// were no errors.
pub fn validate_to(sources: &[SourceFile], out: &mut dyn Write) -> io::Result<bool> {
    validate_with(sources, &[], out)
}

/// [`validate_to`], with errors from reading the files printed first and counted.
fn validate_with(
    sources: &[SourceFile],
    read_errors: &[String],
    out: &mut dyn Write,
) -> io::Result<bool> {
    for e in read_errors {
        writeln!(out, "{e}")?;
    }
    let report = load(sources);
    for d in &report.diagnostics {
        writeln!(out, "{d}")?;
    }
    let errors = report.errors().count() + read_errors.len();
    let warnings = report.warnings().count();
    writeln!(
        out,
        "{}: {errors} error(s), {warnings} warning(s) in {} file(s), {} valid object(s)",
        if errors == 0 { "ok" } else { "invalid" },
        sources.len() + read_errors.len(),
        report.objects.len()
    )?;
    Ok(errors == 0)
}

/// Validates, reconciles at time zero with `pools`, and writes the gateways as YAML to
/// `out`; findings go to `err`. Returns whether the manifests were valid.
pub fn reconcile_to(
    sources: &[SourceFile],
    pools: &[IpNet],
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> io::Result<bool> {
    reconcile_checked(sources, pools, out, err).map(|(code, _)| code == exit::OK)
}

/// [`reconcile_to`] with the exit code (1 for invalid manifests, 2 for pools that conflict
/// with them) and the reconciled world, if there is one.
fn reconcile_checked(
    sources: &[SourceFile],
    pools: &[IpNet],
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> io::Result<(u8, Option<World>)> {
    let report = load(sources);
    for d in &report.diagnostics {
        writeln!(err, "{d}")?;
    }
    if report.has_errors() {
        writeln!(
            err,
            "invalid: {} error(s); nothing reconciled",
            report.errors().count()
        )?;
        return Ok((exit::FAILED, None));
    }
    let conflicts = pool_conflicts(&report.objects, pools);
    for c in &conflicts {
        writeln!(err, "error: {c}")?;
    }
    if !conflicts.is_empty() {
        return Ok((exit::BAD_INPUT, None));
    }
    let config = WorldConfig {
        pools: Pools::new(pools),
        ..WorldConfig::default()
    };
    let mut world = match World::from_objects(report.objects, config) {
        Ok(w) => w,
        Err(e) => {
            writeln!(err, "error: {e}")?;
            return Ok((exit::FAILED, None));
        }
    };
    world.reconcile(Instant::ZERO);
    out.write_all(render_gateways(&world).as_bytes())?;
    Ok((exit::OK, Some(world)))
}

/// Every reconciled gateway and its routing table as a YAML stream (one `NATGateway` and one
/// `NATGatewayRouting` document per gateway, in (namespace, name) order).
pub fn render_gateways(world: &World) -> String {
    let mut out = String::new();
    for (key, gw) in world.gateways() {
        let (Some(status), Some(routing)) = (world.gateway_status(key), world.gateway_routing(key))
        else {
            continue;
        };
        let meta = MetaOut {
            name: key.name.clone(),
            namespace: key.namespace.clone(),
        };
        let docs = [
            serde_saphyr::to_string(&GatewayDoc {
                api_version: API_VERSION,
                kind: "NATGateway",
                metadata: meta.clone(),
                spec: SpecOut::from(gw),
                status,
            }),
            serde_saphyr::to_string(&RoutingDoc {
                api_version: API_VERSION,
                kind: "NATGatewayRouting",
                metadata: meta,
                network_ref: RefOut {
                    name: gw.network.clone(),
                },
                destinations: routing.destinations,
            }),
        ];
        for doc in docs {
            out.push_str("---\n");
            match doc {
                Ok(text) => out.push_str(&text),
                // Serializing these plain structs cannot fail; say so in-band if it ever does.
                Err(e) => out.push_str(&format!("# serialization failed: {e}\n")),
            }
        }
    }
    out
}

#[derive(Clone, Serialize)]
struct MetaOut {
    name: String,
    namespace: String,
}

#[derive(Serialize)]
struct RefOut {
    name: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GatewayDoc {
    api_version: &'static str,
    kind: &'static str,
    metadata: MetaOut,
    spec: SpecOut,
    status: NatGatewayStatus,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RoutingDoc {
    api_version: &'static str,
    kind: &'static str,
    metadata: MetaOut,
    network_ref: RefOut,
    destinations: Vec<NatGatewayDestination>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SpecOut {
    #[serde(rename = "type")]
    type_: &'static str,
    ip_families: Vec<IpFamily>,
    network_ref: RefOut,
    ips: Vec<IpOut>,
    ports_per_network_interface: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    network_interface_selector: Option<SelectorOut>,
}

#[derive(Serialize)]
struct IpOut {
    name: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    addresses: Vec<std::net::IpAddr>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SelectorOut {
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    match_labels: std::collections::BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    match_expressions: Vec<RequirementOut>,
}

#[derive(Serialize)]
struct RequirementOut {
    key: String,
    operator: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    values: Vec<String>,
}

impl From<&LabelSelector> for SelectorOut {
    fn from(s: &LabelSelector) -> Self {
        SelectorOut {
            match_labels: s.match_labels.clone(),
            match_expressions: s
                .match_expressions
                .iter()
                .map(|r| RequirementOut {
                    key: r.key.clone(),
                    operator: r.operator.to_string(),
                    values: r.values.iter().cloned().collect(),
                })
                .collect(),
        }
    }
}

impl From<&NatGateway> for SpecOut {
    fn from(gw: &NatGateway) -> Self {
        SpecOut {
            type_: "Public",
            ip_families: gw.ip_families.clone(),
            network_ref: RefOut {
                name: gw.network.clone(),
            },
            ips: gw
                .ips
                .iter()
                .map(|ip| IpOut {
                    name: ip.name.clone(),
                    addresses: ip.addresses.clone(),
                })
                .collect(),
            ports_per_network_interface: gw.ports_per_network_interface,
            network_interface_selector: gw.selector.as_ref().map(SelectorOut::from),
        }
    }
}
