//! Evaluating a scenario's `expect:` section against its report.

use std::collections::BTreeMap;

use serde::Serialize;

use super::report::{InvariantOutcome, Report};
use super::schema::{BoundDoc, Expectations, FlowExpect, Name};
use crate::sim::apps::Outcome;

/// One expectation and whether it held.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ExpectationResult {
    /// What was checked, e.g. `counters.drop.unsolicited`.
    pub what: String,
    /// The expectation.
    pub expected: String,
    /// What the run produced.
    pub actual: String,
    /// Held.
    pub ok: bool,
}

/// Whether `v` is within `b`, and `b` in words.
pub(crate) fn bound(b: &BoundDoc, v: u64) -> (bool, String) {
    match b {
        BoundDoc::Exact(x) => (v == *x, format!("= {x}")),
        BoundDoc::Range { eq, min, max } => {
            let ok = eq.is_none_or(|e| v == e)
                && min.is_none_or(|m| v >= m)
                && max.is_none_or(|m| v <= m);
            let mut parts = Vec::new();
            if let Some(e) = eq {
                parts.push(format!("= {e}"));
            }
            if let Some(m) = min {
                parts.push(format!(">= {m}"));
            }
            if let Some(m) = max {
                parts.push(format!("<= {m}"));
            }
            (ok, parts.join(", "))
        }
    }
}

fn push_bound(out: &mut Vec<ExpectationResult>, what: String, b: &BoundDoc, v: Option<u64>) {
    let value = v.unwrap_or(0);
    let (ok, expected) = bound(b, value);
    out.push(ExpectationResult {
        what,
        expected,
        actual: value.to_string(),
        ok,
    });
}

/// Counters taken at one virtual time during a run (`expect.counters_at`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CounterSnapshot {
    /// Gateway and simulator counters, as the report's `counters`.
    pub counters: BTreeMap<String, u64>,
    /// Per NIC, as the report's `nics[..].counters`.
    pub nics: BTreeMap<String, BTreeMap<String, u64>>,
}

/// Evaluates `expect.node_counters` with `counters_of(node)`, a node's counters at the end.
pub fn evaluate_node_counters(
    e: &Expectations,
    counters_of: &dyn Fn(u16) -> BTreeMap<String, u64>,
) -> Vec<ExpectationResult> {
    let mut out = Vec::new();
    for (node, m) in &e.node_counters {
        let counters = counters_of(*node);
        for (k, b) in m {
            let what = format!("node_counters.{node}.{k}");
            push_bound(&mut out, what, b, counters.get(k.as_str()).copied());
        }
    }
    out
}

/// Evaluates `expect.counters_at` against the snapshots taken (in the same order; `None`: the run
/// stopped before that time, which is unmet).
pub fn evaluate_counters_at(
    e: &Expectations,
    snapshots: &[Option<CounterSnapshot>],
) -> Vec<ExpectationResult> {
    let mut out = Vec::new();
    for (i, at) in e.counters_at.iter().enumerate() {
        let at = &at.value;
        let Some(Some(snap)) = snapshots.get(i) else {
            out.push(ExpectationResult {
                what: format!("counters_at[{i}] @ {} ms", at.at_ms),
                expected: "the run reaches that time".into(),
                actual: "the run stopped before it".into(),
                ok: false,
            });
            continue;
        };
        for (k, b) in &at.counters {
            let v = snap.counters.get(k.as_str()).copied();
            push_bound(
                &mut out,
                format!("counters_at[{i}] @ {} ms: {k}", at.at_ms),
                b,
                v,
            );
        }
        for (nic, m) in &at.nic_counters {
            let counters = snap.nics.get(nic.as_str());
            for (k, b) in m {
                let v = counters.and_then(|c| c.get(k.as_str()).copied());
                let what = format!("counters_at[{i}] @ {} ms: {nic}.{k}", at.at_ms);
                push_bound(&mut out, what, b, v);
            }
        }
    }
    out
}

/// Evaluates every expectation (in file order within each section).
pub fn evaluate(e: &Expectations, r: &Report) -> Vec<ExpectationResult> {
    let mut out = Vec::new();
    for name in &e.exercised {
        out.push(exercised(r, name.name()));
    }
    for (k, b) in &e.counters {
        push_bound(
            &mut out,
            format!("counters.{k}"),
            b,
            r.counters.get(k.as_str()).copied(),
        );
    }
    for (nic, m) in &e.nic_counters {
        let counters: Option<&BTreeMap<String, u64>> =
            r.nics.get(nic.as_str()).map(|n| &n.counters);
        for (k, b) in m {
            push_bound(
                &mut out,
                format!("nic_counters.{nic}.{k}"),
                b,
                counters.and_then(|c| c.get(k.as_str()).copied()),
            );
        }
    }
    for (host, m) in &e.remote_counters {
        let counters = r.remotes.get(host.as_str());
        for (k, b) in m {
            push_bound(
                &mut out,
                format!("remote_counters.{host}.{k}"),
                b,
                counters.and_then(|c| c.get(k.as_str()).copied()),
            );
        }
    }
    for (name, want) in &e.flows {
        let got = r.flows.iter().find(|f| f.name == name.as_str());
        let actual = got.map_or_else(
            || "no such flow".to_string(),
            |f| match f.outcome {
                Outcome::Completed => "completes".into(),
                Outcome::Failed(why) => format!("fails ({why})"),
                Outcome::Running => "running".into(),
            },
        );
        let ok = got.is_some_and(|f| {
            matches!(
                (want, f.outcome),
                (FlowExpect::Completes, Outcome::Completed)
                    | (FlowExpect::Fails, Outcome::Failed(_))
                    | (FlowExpect::Running, Outcome::Running)
            )
        });
        out.push(ExpectationResult {
            what: format!("flows.{name}"),
            expected: format!("{want:?}").to_lowercase(),
            actual,
            ok,
        });
    }
    for (name, b) in &e.received {
        let v = r
            .flows
            .iter()
            .find(|f| f.name == name.as_str())
            .map(|f| f.received);
        push_bound(&mut out, format!("received.{name}"), b, v);
    }
    for (name, p) in &e.probes {
        let f = r.flows.iter().find(|f| f.name == name.as_str());
        let got = (
            f.and_then(|f| f.mapping).unwrap_or("none"),
            f.and_then(|f| f.filtering).unwrap_or("none"),
        );
        out.push(ExpectationResult {
            what: format!("probes.{name}"),
            expected: format!("mapping {}, filtering {}", p.mapping, p.filtering),
            actual: format!("mapping {}, filtering {}", got.0, got.1),
            ok: got.0 == p.mapping && got.1 == p.filtering,
        });
    }
    for nic in &e.no_inbound_from_outside {
        let v = r
            .nics
            .get(nic.as_str())
            .and_then(|n| n.counters.get("host.from_outside").copied());
        push_bound(
            &mut out,
            format!("no_inbound_from_outside.{nic}"),
            &BoundDoc::Exact(0),
            v,
        );
    }
    if e.no_unsolicited_delivery {
        let total: u64 = r
            .nics
            .values()
            .filter_map(|n| n.counters.get("host.unsolicited_from_outside"))
            .sum();
        push_bound(
            &mut out,
            "no_unsolicited_delivery".into(),
            &BoundDoc::Exact(0),
            Some(total),
        );
    }
    for (g, ge) in &e.generators {
        let st = r.generators.get(g.as_str());
        for (label, b, v) in [
            ("started", &ge.started, st.map(|s| s.started)),
            ("completed", &ge.completed, st.map(|s| s.completed)),
            ("failed", &ge.failed, st.map(|s| s.failed)),
        ] {
            if let Some(b) = b {
                push_bound(&mut out, format!("generators.{g}.{label}"), b, v);
            }
        }
    }
    if let Some(p) = e.ports_used {
        push_bound(
            &mut out,
            "ports_used".into(),
            &BoundDoc::Exact(p),
            Some(r.status.ports_used),
        );
    }
    for (fam, n) in &e.allocated {
        let v = r.status.allocated.get(fam.as_str()).copied();
        push_bound(
            &mut out,
            format!("allocated.{fam}"),
            &BoundDoc::Exact(*n),
            v,
        );
    }
    for (nic, fams) in &e.routing {
        for (fam, want) in fams {
            let key = format!("default/{nic}");
            let got = r
                .status
                .routing
                .iter()
                .find(|(k, _)| **k == key || k.ends_with(&format!("/{nic}")))
                .and_then(|(_, m)| m.get(fam.as_str()))
                .map_or_else(
                    || "none".to_string(),
                    |b| format!("{}:{}-{}", b.nat_ip, b.port, b.end_port),
                );
            out.push(ExpectationResult {
                what: format!("routing.{nic}.{fam}"),
                expected: want.clone(),
                actual: got.clone(),
                ok: &got == want,
            });
        }
    }
    if let Some(b) = &e.live_flows {
        push_bound(&mut out, "live_flows".into(), b, Some(r.live_flows as u64));
    }
    out
}

/// "`name` made at least one check" as an expectation line.
pub fn exercised(r: &Report, name: &str) -> ExpectationResult {
    let (checks, result) = r
        .invariants
        .get(name)
        .map_or((0, InvariantOutcome::NotExercised), |i| {
            (i.checks, i.result)
        });
    ExpectationResult {
        what: format!("exercised.{name}"),
        expected: "exercised (at least 1 check)".into(),
        actual: if result == InvariantOutcome::NotApplicable {
            "not applicable to this dataplane".into()
        } else if checks == 0 {
            "not exercised".into()
        } else {
            format!("{} ({checks} checks)", result.as_str().replace('_', " "))
        },
        ok: checks > 0,
    }
}

/// The names `expect:` may refer to, as the scenario declared them.
pub struct Known<'a> {
    /// NIC names (topology, NIC groups, manifests).
    pub nics: Vec<&'a str>,
    /// Remote host names.
    pub remotes: Vec<&'a str>,
    /// Scripted application names (traffic and attacks): their outcomes are reported.
    pub flows: Vec<&'a str>,
    /// Traffic items that are RFC 5780 probes.
    pub probes: Vec<&'a str>,
    /// Generator names.
    pub generators: Vec<&'a str>,
    /// Dataplane nodes.
    pub nodes: u16,
}

/// An unknown name in `expect:`: where it was written, its field path and the message.
pub struct NameError {
    /// 1-based line (0 unknown).
    pub line: u64,
    /// 1-based column (0 unknown).
    pub column: u64,
    /// Field path, e.g. `expect.nic_counters.vm-typo`.
    pub field: String,
    /// "no NIC named ...; closest: ...".
    pub message: String,
}

const FAMILIES: [&str; 2] = ["IPv4", "IPv6"];

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Checks that every name in `e` resolves: counters against the counter registry of their
/// scope ([`super::names::counter_names`]), NICs, remote hosts, flows, probes, generators and
/// address families against what the scenario declares. A name that resolves to nothing would
/// read as 0 or "none" and could make an expectation pass that checks nothing.
pub fn check_names(e: &Expectations, k: &Known) -> Result<(), NameError> {
    use super::names::{CounterScope, counter_names, unknown};
    let total = counter_names(CounterScope::Total);
    let per_nic = counter_names(CounterScope::Nic);
    let per_remote = counter_names(CounterScope::Remote);
    let need = |name: &Name, field: String, what: &str, valid: &[&str]| {
        if valid.contains(&name.as_str()) {
            return Ok(());
        }
        let (line, column) = name.location();
        Err(NameError {
            line,
            column,
            field,
            message: unknown(what, name.as_str(), valid.iter().copied()),
        })
    };
    let (total, per_nic, per_remote) = (strs(&total), strs(&per_nic), strs(&per_remote));
    for c in e.counters.keys() {
        need(c, format!("expect.counters.{c}"), "counter", &total)?;
    }
    for (nic, m) in &e.nic_counters {
        need(nic, format!("expect.nic_counters.{nic}"), "NIC", &k.nics)?;
        for c in m.keys() {
            need(
                c,
                format!("expect.nic_counters.{nic}.{c}"),
                "NIC counter",
                &per_nic,
            )?;
        }
    }
    let gateway_only: Vec<&str> = total
        .iter()
        .copied()
        .filter(|c| !c.starts_with("sim."))
        .collect();
    for (node, m) in &e.node_counters {
        if *node >= k.nodes {
            return Err(NameError {
                line: 0,
                column: 0,
                field: format!("expect.node_counters.{node}"),
                message: format!(
                    "node {node} does not exist (nodes 0..={})",
                    k.nodes.saturating_sub(1)
                ),
            });
        }
        for c in m.keys() {
            let f = format!("expect.node_counters.{node}.{c}");
            need(c, f, "gateway counter", &gateway_only)?;
        }
    }
    for (i, at) in e.counters_at.iter().enumerate() {
        let at = &at.value;
        for c in at.counters.keys() {
            need(
                c,
                format!("expect.counters_at[{i}].counters.{c}"),
                "counter",
                &total,
            )?;
        }
        for (nic, m) in &at.nic_counters {
            let f = format!("expect.counters_at[{i}].nic_counters.{nic}");
            need(nic, f.clone(), "NIC", &k.nics)?;
            for c in m.keys() {
                need(c, format!("{f}.{c}"), "NIC counter", &per_nic)?;
            }
        }
    }
    for (host, m) in &e.remote_counters {
        need(
            host,
            format!("expect.remote_counters.{host}"),
            "remote host",
            &k.remotes,
        )?;
        for c in m.keys() {
            need(
                c,
                format!("expect.remote_counters.{host}.{c}"),
                "remote host counter",
                &per_remote,
            )?;
        }
    }
    for f in e.flows.keys() {
        need(f, format!("expect.flows.{f}"), "traffic item", &k.flows)?;
    }
    for f in e.received.keys() {
        need(f, format!("expect.received.{f}"), "traffic item", &k.flows)?;
    }
    let behaviours = [
        "endpoint-independent",
        "address-dependent",
        "address-and-port-dependent",
        "unknown",
    ];
    for (p, want) in &e.probes {
        need(
            p,
            format!("expect.probes.{p}"),
            "probe traffic item",
            &k.probes,
        )?;
        for (label, v) in [("mapping", &want.mapping), ("filtering", &want.filtering)] {
            if !behaviours.contains(&v.as_str()) {
                let (line, column) = p.location();
                return Err(NameError {
                    line,
                    column,
                    field: format!("expect.probes.{p}.{label}"),
                    message: unknown("behaviour", v, behaviours),
                });
            }
        }
    }
    for nic in &e.no_inbound_from_outside {
        need(nic, "expect.no_inbound_from_outside".into(), "NIC", &k.nics)?;
    }
    for g in e.generators.keys() {
        need(
            g,
            format!("expect.generators.{g}"),
            "generator",
            &k.generators,
        )?;
    }
    for (nic, fams) in &e.routing {
        need(nic, format!("expect.routing.{nic}"), "NIC", &k.nics)?;
        for fam in fams.keys() {
            need(
                fam,
                format!("expect.routing.{nic}.{fam}"),
                "address family",
                &FAMILIES,
            )?;
        }
    }
    for fam in e.allocated.keys() {
        need(
            fam,
            format!("expect.allocated.{fam}"),
            "address family",
            &FAMILIES,
        )?;
    }
    Ok(())
}
