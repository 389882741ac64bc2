//! Kubernetes LabelSelector semantics (`matchLabels` AND every `matchExpressions` entry).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// A `matchExpressions` operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Operator {
    /// The label is present and its value is in `values`.
    In,
    /// The label is absent, or present with a value not in `values`.
    NotIn,
    /// The label is present (any value).
    Exists,
    /// The label is absent.
    DoesNotExist,
}

impl Operator {
    /// Parses the Kubernetes spelling.
    pub fn parse(s: &str) -> Option<Operator> {
        match s {
            "In" => Some(Operator::In),
            "NotIn" => Some(Operator::NotIn),
            "Exists" => Some(Operator::Exists),
            "DoesNotExist" => Some(Operator::DoesNotExist),
            _ => None,
        }
    }

    /// Whether the operator takes a non-empty `values` list (`In`, `NotIn`) or none at all.
    pub const fn takes_values(self) -> bool {
        matches!(self, Operator::In | Operator::NotIn)
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Operator::In => "In",
            Operator::NotIn => "NotIn",
            Operator::Exists => "Exists",
            Operator::DoesNotExist => "DoesNotExist",
        })
    }
}

/// One `matchExpressions` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requirement {
    /// Label key.
    pub key: String,
    /// Operator.
    pub operator: Operator,
    /// Values for `In`/`NotIn`; empty otherwise.
    pub values: BTreeSet<String>,
}

impl Requirement {
    /// Whether `labels` satisfy this requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.key);
        match self.operator {
            Operator::In => value.is_some_and(|v| self.values.contains(v)),
            Operator::NotIn => value.is_none_or(|v| !self.values.contains(v)),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
        }
    }
}

/// A Kubernetes LabelSelector. The empty selector (`{}`) matches every label set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelSelector {
    /// `matchLabels`: every pair must be present.
    pub match_labels: BTreeMap<String, String>,
    /// `matchExpressions`: every requirement must hold.
    pub match_expressions: Vec<Requirement>,
}

impl LabelSelector {
    /// Whether `labels` match the selector.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|r| r.matches(labels))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn req(key: &str, operator: Operator, values: &[&str]) -> Requirement {
        Requirement {
            key: key.into(),
            operator,
            values: values.iter().map(|v| v.to_string()).collect(),
        }
    }

    #[test]
    fn empty_selector_matches_everything() {
        assert!(LabelSelector::default().matches(&labels(&[])));
        assert!(LabelSelector::default().matches(&labels(&[("a", "b")])));
    }

    #[test]
    fn operators_follow_kubernetes_semantics() {
        let l = labels(&[("tier", "db"), ("env", "prod")]);
        assert!(req("tier", Operator::In, &["db", "web"]).matches(&l));
        assert!(!req("tier", Operator::In, &["web"]).matches(&l));
        assert!(!req("missing", Operator::In, &["x"]).matches(&l));
        assert!(req("tier", Operator::NotIn, &["web"]).matches(&l));
        assert!(!req("tier", Operator::NotIn, &["db"]).matches(&l));
        // NotIn matches when the key is absent.
        assert!(req("missing", Operator::NotIn, &["x"]).matches(&l));
        assert!(req("env", Operator::Exists, &[]).matches(&l));
        assert!(!req("missing", Operator::Exists, &[]).matches(&l));
        assert!(req("missing", Operator::DoesNotExist, &[]).matches(&l));
        assert!(!req("env", Operator::DoesNotExist, &[]).matches(&l));
    }

    #[test]
    fn match_labels_and_expressions_are_anded() {
        let sel = LabelSelector {
            match_labels: labels(&[("tier", "db")]),
            match_expressions: vec![req("env", Operator::In, &["prod"])],
        };
        assert!(sel.matches(&labels(&[("tier", "db"), ("env", "prod")])));
        assert!(!sel.matches(&labels(&[("tier", "db"), ("env", "dev")])));
        assert!(!sel.matches(&labels(&[("env", "prod")])));
    }
}
