//! Evaluating a scenario's `expect:` section against its report.

use std::collections::BTreeMap;

use serde::Serialize;

use super::report::Report;
use super::schema::{BoundDoc, Expectations, FlowExpect};
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

fn bound(b: &BoundDoc, v: u64) -> (bool, String) {
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

/// Evaluates every expectation (in file order within each section).
pub fn evaluate(e: &Expectations, r: &Report) -> Vec<ExpectationResult> {
    let mut out = Vec::new();
    for name in &e.exercised {
        out.push(exercised(r, name.invariant().name()));
    }
    for (k, b) in &e.counters {
        push_bound(
            &mut out,
            format!("counters.{k}"),
            b,
            r.counters.get(k).copied(),
        );
    }
    for (nic, m) in &e.nic_counters {
        let counters: Option<&BTreeMap<String, u64>> = r.nics.get(nic).map(|n| &n.counters);
        for (k, b) in m {
            push_bound(
                &mut out,
                format!("nic_counters.{nic}.{k}"),
                b,
                counters.and_then(|c| c.get(k).copied()),
            );
        }
    }
    for (host, m) in &e.remote_counters {
        let counters = r.remotes.get(host);
        for (k, b) in m {
            push_bound(
                &mut out,
                format!("remote_counters.{host}.{k}"),
                b,
                counters.and_then(|c| c.get(k).copied()),
            );
        }
    }
    for (name, want) in &e.flows {
        let got = r.flows.iter().find(|f| &f.name == name);
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
        let v = r.flows.iter().find(|f| &f.name == name).map(|f| f.received);
        push_bound(&mut out, format!("received.{name}"), b, v);
    }
    for (name, p) in &e.probes {
        let f = r.flows.iter().find(|f| &f.name == name);
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
            .get(nic)
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
        let st = r.generators.get(g);
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
        .map_or((0, "not_exercised"), |i| (i.checks, i.result));
    ExpectationResult {
        what: format!("exercised.{name}"),
        expected: "exercised (at least 1 check)".into(),
        actual: if checks == 0 {
            "not exercised".into()
        } else {
            format!("{} ({checks} checks)", result.replace('_', " "))
        },
        ok: checks > 0,
    }
}
