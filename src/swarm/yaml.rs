//! Writing scenario documents back out as scenario files that read like hand-written ones:
//! fields in declaration order, absent options and default values left out, list items in
//! flow style (`- {name: t0, from: vm-0, udp: {to: "198.51.100.10:53"}}`). What is left out
//! must load back to the same document; `round_trip` is how every generated world is run, and
//! a test checks the equality over many seeds.

use std::path::Path;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

use crate::scenario::schema::ScenarioFile;
use crate::scenario::{Scenario, ScenarioError, load_str};

/// A document tree that keeps key order (serde_json's own map sorts keys).
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
enum Tree {
    Map(IndexMap<String, Tree>),
    Seq(Vec<Tree>),
    Leaf(Value),
}

/// How a subtree is written.
struct Styled<'a> {
    tree: &'a Tree,
    flow: bool,
}

impl Serialize for Styled<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.tree {
            Tree::Leaf(v) => v.serialize(s),
            Tree::Seq(items) => {
                // Lists of scalars are short: `[a, b]`. Lists of maps are written one item per
                // line, each item in flow style.
                let scalars = items.iter().all(|t| matches!(t, Tree::Leaf(_)));
                let styled: Vec<Styled> = items
                    .iter()
                    .map(|t| Styled {
                        tree: t,
                        flow: self.flow || !scalars,
                    })
                    .collect();
                if self.flow || scalars {
                    serde_saphyr::FlowSeq(styled).serialize(s)
                } else {
                    styled.serialize(s)
                }
            }
            Tree::Map(m) => {
                let styled: IndexMap<&str, Styled> = m
                    .iter()
                    .map(|(k, t)| {
                        (
                            k.as_str(),
                            Styled {
                                tree: t,
                                flow: self.flow || flow_key(k, t),
                            },
                        )
                    })
                    .collect();
                if self.flow {
                    serde_saphyr::FlowMap(styled).serialize(s)
                } else {
                    styled.serialize(s)
                }
            }
        }
    }
}

/// Small maps outside lists that read better on one line.
fn flow_key(k: &str, t: &Tree) -> bool {
    matches!(
        k,
        "labels" | "overrides" | "access" | "uplink" | "remote" | "selector"
    ) && matches!(t, Tree::Map(_))
}

/// Keys whose empty value is the default. `selector` is deliberately absent (`{}` selects
/// everything, absence nothing), and so is a relabel's `labels` (required there).
const EMPTY_IS_DEFAULT: [&str; 29] = [
    "access",
    "uplink",
    "remote",
    "traffic",
    "generators",
    "attacks",
    "faults",
    "capture",
    "covers",
    "nic_groups",
    "routes",
    "services",
    "overrides",
    "expect",
    "match_expressions",
    "matchExpressions",
    "matchLabels",
    "nics",
    "counters",
    "nic_counters",
    "remote_counters",
    "flows",
    "received",
    "probes",
    "no_inbound_from_outside",
    "routing",
    "allocated",
    "links",
    "exercised",
];

/// Keys whose value equals their serde default in every struct that has them (checked by the
/// round-trip test). `at_ms` is not here: faults require it.
fn is_default(k: &str, v: &Value) -> bool {
    let want: Value = match k {
        "delay_us" => 10.into(),
        "jitter_us" | "node" | "expect_bytes" | "hold_ms" | "keepalive_ms" => 0.into(),
        "loss" | "duplicate" | "reorder" => "0/1".into(),
        "reorder_delay_us" => 1000.into(),
        "mtu_bytes" => 1500.into(),
        "nat64" | "virtual_ip" | "stun" | "bad_checksum" | "wrong_port" => false.into(),
        "no_unsolicited_delivery" => false.into(),
        "present" | "rerun_for_determinism" | "from_remote" => true.into(),
        "namespace" => "default".into(),
        "profile" => "rfc".into(),
        "close" => "fin".into(),
        "rto_ms" => 200.into(),
        "max_retries" => 6.into(),
        "max_time_ms" => (7u64 * 86_400_000).into(),
        "block_quarantine_ms" => 120_000.into(),
        _ => return false,
    };
    *v == want
}

/// Maps whose keys are user data (label names, profile fields, counter names), not schema
/// fields: inside them only nulls are pruned, never a "default".
const USER_MAPS: [&str; 12] = [
    "labels",
    "matchLabels",
    "overrides",
    "counters",
    "nic_counters",
    "remote_counters",
    "flows",
    "received",
    "probes",
    "routing",
    "allocated",
    "values",
];

/// Drops nulls, defaults, and empty defaulted collections (children first, so a map emptied
/// by pruning goes too), and empty NIC labels (a NIC is the map with `network` and
/// `addresses`). In `user` data only nulls go.
fn prune(t: &mut Tree, user: bool) {
    match t {
        Tree::Map(m) => {
            for (k, x) in m.iter_mut() {
                prune(x, user || USER_MAPS.contains(&k.as_str()));
            }
            let nic_like = m.contains_key("network") && m.contains_key("addresses");
            m.retain(|k, x| match x {
                Tree::Leaf(Value::Null) => false,
                _ if user => true,
                Tree::Leaf(v) => !is_default(k, v),
                Tree::Map(c) if c.is_empty() => {
                    !(EMPTY_IS_DEFAULT.contains(&k.as_str()) || (nic_like && k == "labels"))
                }
                Tree::Seq(c) if c.is_empty() => !EMPTY_IS_DEFAULT.contains(&k.as_str()),
                _ => true,
            });
        }
        Tree::Seq(items) => items.iter_mut().for_each(|x| prune(x, user)),
        Tree::Leaf(_) => {}
    }
}

/// A scenario document as YAML text: `header` as comment lines, then the document.
pub fn to_yaml(doc: &ScenarioFile, header: &str) -> Result<String, String> {
    // Through JSON text: serde_json writes struct fields in declaration order, and the
    // untagged `Tree` keeps that order when reading it back.
    let json = serde_json::to_string(doc).map_err(|e| e.to_string())?;
    let mut tree: Tree = serde_json::from_str(&json).map_err(|e| e.to_string())?;
    prune(&mut tree, false);
    let body = serde_saphyr::to_string(&Styled {
        tree: &tree,
        flow: false,
    })
    .map_err(|e| e.to_string())?;
    let mut out = String::new();
    for line in header.lines() {
        out.push_str("# ");
        out.push_str(line);
        out.push('\n');
    }
    out.push_str(&body);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    Ok(out)
}

/// Writes the document out and reads it back through the ordinary loader, so what runs is
/// exactly what a scenario file with this text would run.
pub fn round_trip(doc: &ScenarioFile, path: &Path) -> Result<(String, Scenario), ScenarioError> {
    let text = to_yaml(doc, "").map_err(|message| ScenarioError {
        file: path.to_path_buf(),
        line: 0,
        column: 0,
        field: String::new(),
        message,
    })?;
    let sc = load_str(path, &text)?;
    Ok((text, sc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::swarm::cli::world;

    #[test]
    fn an_empty_selector_is_kept_and_an_absent_one_stays_absent() {
        let (_, mut doc) = world(3);
        let gw = doc.gateway.as_mut().expect("a gateway");
        gw.selector = Some(Default::default());
        let text = to_yaml(&doc, "").expect("yaml");
        assert!(text.contains("selector: {}"), "{text}");
        let (_, sc) = round_trip(&doc, Path::new("x.yaml")).expect("loads");
        assert!(sc.doc.gateway.and_then(|g| g.selector).is_some());

        doc.gateway.as_mut().expect("a gateway").selector = None;
        let text = to_yaml(&doc, "").expect("yaml");
        assert!(!text.contains("selector"), "{text}");
    }

    #[test]
    fn defaults_are_left_out_and_the_header_is_a_comment() {
        let (_, doc) = world(5);
        let text = to_yaml(&doc, "line one\nline two").expect("yaml");
        assert!(text.starts_with("# line one\n# line two\napiVersion: natsim.dev/v1\n"));
        assert!(!text.contains("null"), "{text}");
        assert!(!text.contains("mtu_bytes: 1500"), "{text}");
        assert!(!text.contains("expect"), "{text}");
    }
}
