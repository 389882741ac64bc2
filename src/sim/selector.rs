//! Kubernetes label selectors (`matchLabels`, `matchExpressions` with `In`, `NotIn`, `Exists`,
//! `DoesNotExist`), as `NATGateway.spec.networkInterfaceSelector` uses them.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A label selector. `{}` selects everything; an absent selector (modelled as `None` by the
/// caller) selects nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LabelSelector {
    /// Every listed label must be present with exactly this value.
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
    /// Every expression must hold.
    #[serde(default)]
    pub match_expressions: Vec<LabelExpression>,
}

/// One `matchExpressions` item.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LabelExpression {
    /// Label key.
    pub key: String,
    /// Operator.
    pub operator: LabelOperator,
    /// Values (for `In` / `NotIn`).
    #[serde(default)]
    pub values: Vec<String>,
}

/// Selector operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum LabelOperator {
    /// The label's value is one of `values`.
    In,
    /// The label is absent or its value is not one of `values`.
    NotIn,
    /// The label is present.
    Exists,
    /// The label is absent.
    DoesNotExist,
}

impl LabelSelector {
    /// True when `labels` satisfy the selector.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|e| {
                let v = labels.get(&e.key);
                match e.operator {
                    LabelOperator::In => v.is_some_and(|v| e.values.contains(v)),
                    LabelOperator::NotIn => v.is_none_or(|v| !e.values.contains(v)),
                    LabelOperator::Exists => v.is_some(),
                    LabelOperator::DoesNotExist => v.is_none(),
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selector_semantics_follow_kubernetes() {
        let labels: BTreeMap<String, String> = [("app".to_string(), "web".to_string())]
            .into_iter()
            .collect();
        assert!(LabelSelector::default().matches(&labels));
        let expr = |operator, values: &[&str]| LabelSelector {
            match_labels: BTreeMap::new(),
            match_expressions: vec![LabelExpression {
                key: "app".into(),
                operator,
                values: values.iter().map(|s| s.to_string()).collect(),
            }],
        };
        assert!(expr(LabelOperator::In, &["web", "db"]).matches(&labels));
        assert!(!expr(LabelOperator::NotIn, &["web"]).matches(&labels));
        assert!(expr(LabelOperator::NotIn, &["web"]).matches(&BTreeMap::new()));
        assert!(expr(LabelOperator::Exists, &[]).matches(&labels));
        assert!(!expr(LabelOperator::DoesNotExist, &[]).matches(&labels));
    }
}
