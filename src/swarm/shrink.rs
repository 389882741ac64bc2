//! Minimisation: deterministic greedy delta debugging over the scenario document. Candidates
//! are tried in a fixed order (remove big chunks of list items first, then smaller ones, then
//! simplify single values); a candidate is kept only if it still loads and still fails the
//! same way (same exit code and invariant). The first success restarts the candidate list
//! from the smaller document; the number of runs is bounded.

use std::path::Path;

use super::run::{Failure, Target, run_case};
use super::yaml::round_trip;
use crate::scenario::schema::ScenarioFile;
use crate::sim::link::LinkConfig;

/// What minimisation produced.
#[derive(Clone, Debug)]
pub struct Minimised {
    /// The smallest failing document found.
    pub doc: ScenarioFile,
    /// Runs spent.
    pub runs: u32,
    /// Whether the run budget ran out before no candidate helped.
    pub budget_exhausted: bool,
}

/// Size of a document: list items across the sections minimisation removes from.
pub fn size(doc: &ScenarioFile) -> usize {
    let t = &doc.topology;
    t.nics.len()
        + t.remotes.len()
        + doc.traffic.len()
        + doc.generators.len()
        + doc.attacks.len()
        + doc.faults.len()
        + doc
            .gateway
            .as_ref()
            .map_or(0, |g| g.ips.len() + g.overrides.len())
}

/// The lists minimisation removes items from, with accessors.
#[derive(Clone, Copy, Debug)]
enum List {
    Faults,
    Attacks,
    Generators,
    Traffic,
    Nics,
    Remotes,
    NatIps,
}

impl List {
    const ALL: [List; 7] = [
        List::Faults,
        List::Attacks,
        List::Generators,
        List::Traffic,
        List::Nics,
        List::Remotes,
        List::NatIps,
    ];

    fn len(self, d: &ScenarioFile) -> usize {
        match self {
            List::Faults => d.faults.len(),
            List::Attacks => d.attacks.len(),
            List::Generators => d.generators.len(),
            List::Traffic => d.traffic.len(),
            List::Nics => d.topology.nics.len(),
            List::Remotes => d.topology.remotes.len(),
            List::NatIps => d.gateway.as_ref().map_or(0, |g| g.ips.len()),
        }
    }

    /// Removes `range` (which must be in bounds).
    fn remove(self, d: &mut ScenarioFile, range: std::ops::Range<usize>) {
        match self {
            List::Faults => drop(d.faults.drain(range)),
            List::Attacks => drop(d.attacks.drain(range)),
            List::Generators => drop(d.generators.drain(range)),
            List::Traffic => drop(d.traffic.drain(range)),
            List::Nics => drop(d.topology.nics.drain(range)),
            List::Remotes => drop(d.topology.remotes.drain(range)),
            List::NatIps => {
                if let Some(g) = &mut d.gateway {
                    drop(g.ips.drain(range));
                }
            }
        }
    }
}

/// Chunk removals, big chunks first (ddmin's granularity schedule).
fn removals(doc: &ScenarioFile) -> Vec<ScenarioFile> {
    let mut out = Vec::new();
    for list in List::ALL {
        let n = list.len(doc);
        let mut chunk = n;
        while chunk >= 1 {
            let mut start = 0;
            while start < n {
                let end = (start + chunk).min(n);
                let mut d = doc.clone();
                list.remove(&mut d, start..end);
                out.push(d);
                start = end;
            }
            chunk /= 2;
        }
    }
    out
}

/// Single-value simplifications: each returns a changed copy, or nothing when it would not
/// change the document.
fn simplifications(doc: &ScenarioFile) -> Vec<ScenarioFile> {
    let mut out = Vec::new();
    let mut try_edit = |edit: &dyn Fn(&mut ScenarioFile)| {
        let mut d = doc.clone();
        edit(&mut d);
        // Compare through JSON: the document types do not implement PartialEq.
        if serde_json::to_value(&d).ok() != serde_json::to_value(doc).ok() {
            out.push(d);
        }
    };
    // Shorter runs.
    try_edit(&|d| {
        if let Some(ms) = d.limits.duration_ms {
            d.limits.duration_ms = Some((ms / 2).max(100));
        }
    });
    // Ideal links, one class at a time.
    try_edit(&|d| d.topology.links.access = LinkConfig::default());
    try_edit(&|d| d.topology.links.uplink = LinkConfig::default());
    try_edit(&|d| d.topology.links.remote = LinkConfig::default());
    // One dataplane node.
    try_edit(&|d| {
        d.topology.nodes = 1;
        for n in &mut d.topology.nics {
            n.value.node = 0;
        }
    });
    // Profile overrides, one at a time.
    let keys: Vec<String> = doc
        .gateway
        .as_ref()
        .map(|g| g.overrides.keys().cloned().collect())
        .unwrap_or_default();
    for k in keys {
        try_edit(&|d| {
            if let Some(g) = &mut d.gateway {
                g.overrides.remove(&k);
            }
        });
    }
    try_edit(&|d| {
        if let Some(g) = &mut d.gateway {
            g.block_quarantine_ms = 0;
        }
    });
    // Smaller counts and shorter holds per traffic item.
    for i in 0..doc.traffic.len() {
        try_edit(&|d| {
            let t = &mut d.traffic[i].value;
            if let Some(u) = &mut t.udp {
                u.count = 1;
                u.retries = 0;
            }
            if let Some(p) = &mut t.ping {
                p.count = 1;
            }
            if let Some(tc) = &mut t.tcp {
                tc.hold_ms = 0;
                tc.keepalive_ms = 0;
            }
        });
    }
    // Smaller attacks: one packet, half a scan range (either half).
    for i in 0..doc.attacks.len() {
        try_edit(&|d| {
            let a = &mut d.attacks[i].value;
            if let Some(u) = &mut a.unsolicited {
                u.count = 1;
            }
            if let Some(s) = &mut a.spoof_reply {
                s.count = 1;
            }
        });
        for upper in [false, true] {
            try_edit(&|d| {
                if let Some(s) = &mut d.attacks[i].value.port_scan {
                    let [lo, hi] = s.ports;
                    let mid = lo + (hi - lo) / 2;
                    s.ports = if upper { [mid + 1, hi] } else { [lo, mid] };
                    if s.ports[0] > s.ports[1] {
                        s.ports = [lo, hi];
                    }
                }
            });
        }
    }
    // Shorter generator windows.
    for i in 0..doc.generators.len() {
        try_edit(&|d| {
            let g = &mut d.generators[i].value;
            g.stop_ms = g.start_ms + (g.stop_ms.saturating_sub(g.start_ms)) / 2;
        });
    }
    out
}

/// Shrinks `doc`, which fails as `want` against `target`, spending at most `max_runs` runs.
/// `path` names the candidates (it appears in their reports, not on disk).
pub fn minimise(
    doc: &ScenarioFile,
    target: Target,
    want: &Failure,
    max_runs: u32,
    path: &Path,
) -> Minimised {
    let mut best = doc.clone();
    let mut runs = 0u32;
    'outer: loop {
        let candidates = removals(&best)
            .into_iter()
            .chain(simplifications(&best))
            .collect::<Vec<_>>();
        for c in candidates {
            // Invalid candidates (a removed NIC that traffic still names) cost no run.
            let Ok((_, sc)) = round_trip(&c, path) else {
                continue;
            };
            if runs >= max_runs {
                return Minimised {
                    doc: best,
                    runs,
                    budget_exhausted: true,
                };
            }
            runs += 1;
            if run_case(&sc, target).failure.as_ref() == Some(want) {
                best = c;
                continue 'outer;
            }
        }
        return Minimised {
            doc: best,
            runs,
            budget_exhausted: false,
        };
    }
}
