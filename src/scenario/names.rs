//! The names a scenario may use, and how an unknown one is reported: the counter registries
//! (gateway counters derived from [`Counters`], simulator and host counters from their stats
//! types, each listed once here and used by the report too) and "closest valid names" by edit
//! distance.

use std::collections::BTreeMap;

use crate::nat::Counters;
use crate::sim::engine::{HostStats, SimStats};

/// Where a counter name is looked up: the three counter maps of the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CounterScope {
    /// `expect.counters` / report `counters`: gateway counters over all nodes plus `sim.*`.
    Total,
    /// `expect.nic_counters.<nic>`: the NIC's gateway counters, `host.*` and `ports.peak`.
    Nic,
    /// `expect.remote_counters.<host>`: `host.*`.
    Remote,
}

/// The per-NIC peak of ports tracked at once.
pub const PORTS_PEAK: &str = "ports.peak";

/// Simulator-wide counters by name (the report's `sim.*` entries).
pub fn sim_counters(st: &SimStats) -> [(&'static str, u64); 8] {
    [
        ("sim.relayed", st.relayed),
        ("sim.no_route", st.no_route),
        ("sim.no_such_nic", st.no_such_nic),
        ("sim.control_errors", st.control_errors),
        ("sim.restarts", st.restarts),
        ("sim.fragmented_in_transit", st.fragmented_in_transit),
        ("sim.icmp_errors_sent", st.icmp_errors_sent),
        ("sim.icmp_errors_rate_limited", st.icmp_errors_rate_limited),
    ]
}

/// Host counters by name (the report's `host.*` entries of NICs and remote hosts).
pub fn host_counters(h: &HostStats) -> [(&'static str, u64); 10] {
    [
        ("host.sent", h.sent),
        ("host.received", h.received),
        ("host.from_outside", h.from_outside),
        ("host.unsolicited_from_outside", h.unsolicited_from_outside),
        ("host.unmatched", h.unmatched),
        ("host.icmp_errors", h.icmp_errors),
        ("host.fragmented", h.fragmented),
        ("host.fragments_received", h.fragments_received),
        ("host.reassembled", h.reassembled),
        ("host.reassembly_failed", h.reassembly_failed),
    ]
}

/// Host counters as a report map (zero values omitted).
pub fn host_counter_map(h: &HostStats) -> BTreeMap<String, u64> {
    host_counters(h)
        .into_iter()
        .filter(|(_, v)| *v != 0)
        .map(|(k, v)| (k.to_string(), v))
        .collect()
}

/// Every counter name valid in `scope`, sorted.
pub fn counter_names(scope: CounterScope) -> Vec<String> {
    let host = || {
        host_counters(&HostStats::default())
            .into_iter()
            .map(|(k, _)| k.to_string())
    };
    let mut out: Vec<String> = match scope {
        CounterScope::Total => Counters::names()
            .into_iter()
            .chain(
                sim_counters(&SimStats::default())
                    .into_iter()
                    .map(|(k, _)| k.to_string()),
            )
            .collect(),
        CounterScope::Nic => Counters::names()
            .into_iter()
            .chain(host())
            .chain([PORTS_PEAK.to_string()])
            .collect(),
        CounterScope::Remote => host().collect(),
    };
    out.sort();
    out.dedup();
    out
}

/// Levenshtein distance over chars (names are short; O(a·b) is fine).
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// Up to three valid names closest to `name` (edit distance at most a third of the longer
/// name, at least 2), nearest first, ties in name order.
pub fn closest<'a>(name: &str, valid: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let mut scored: Vec<(usize, &str)> = valid
        .into_iter()
        .map(|v| (edit_distance(name, v), v))
        .filter(|&(d, v)| d <= (name.chars().count().max(v.chars().count()) / 3).max(2))
        .collect();
    scored.sort();
    scored.dedup();
    scored.into_iter().take(3).map(|(_, v)| v).collect()
}

/// "no `<what>` named `name`" plus the closest valid names, or all of them when there are few
/// (or that there are none).
pub fn unknown<'a>(what: &str, name: &str, valid: impl IntoIterator<Item = &'a str>) -> String {
    let valid: Vec<&str> = valid.into_iter().collect();
    let mut msg = format!("no {what} named `{name}`");
    let near = closest(name, valid.iter().copied());
    if !near.is_empty() {
        msg.push_str(&format!("; closest: {}", near.join(", ")));
    } else if valid.is_empty() {
        msg.push_str(&format!(" (the scenario declares no {what})"));
    } else if valid.len() <= 8 {
        msg.push_str(&format!("; valid: {}", valid.join(", ")));
    } else {
        msg.push_str(&format!(
            "; {} valid names, e.g. {}",
            valid.len(),
            valid[..3].join(", ")
        ));
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_single_edits() {
        assert_eq!(edit_distance("unsolicted", "unsolicited"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("abc", "abc"), 0);
        assert_eq!(edit_distance("vm-typo", "vm-a"), 4);
    }

    #[test]
    fn closest_names_suggest_the_typo_fix() {
        let names = counter_names(CounterScope::Total);
        let near = closest("drop.unsolicted", names.iter().map(String::as_str));
        assert_eq!(near.first(), Some(&"drop.unsolicited"));
    }

    #[test]
    fn counter_registry_is_derived_from_the_counter_types() {
        let total = counter_names(CounterScope::Total);
        // Every gateway counter the report can show, zero or not, is a valid name.
        for k in crate::nat::Counters::default().to_map_all().keys() {
            assert!(total.contains(k), "{k}");
        }
        for r in crate::nat::DropReason::ALL {
            assert!(total.contains(&format!("drop.{}", r.name())));
        }
        assert!(total.contains(&"sim.relayed".to_string()));
        assert!(!total.contains(&"host.received".to_string()));
        let nic = counter_names(CounterScope::Nic);
        assert!(nic.contains(&"ports.peak".to_string()));
        assert!(nic.contains(&"host.received".to_string()));
        assert!(!nic.contains(&"sim.relayed".to_string()));
        let remote = counter_names(CounterScope::Remote);
        assert!(remote.iter().all(|k| k.starts_with("host.")));
    }
}
