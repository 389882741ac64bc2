//! The scenario's `manifests:` key: IronCore objects loaded through the API loader
//! ([`crate::api::load`]), with every API finding turned into a [`ScenarioError`] that names
//! the manifest file (or the scenario file, for inline manifests) and the line.
//!
//! Manifests may refer to networks declared only in `topology.networks` (namespace
//! `default`): the loader sees those as bare `Network` objects in an extra source, so such
//! references resolve without the manifests repeating them.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::load::ScenarioError;
use super::schema::Manifests;
use crate::api::{self, Diagnostic, Kind, Object, ObjectKey, SourceFile};

/// Where one source's diagnostics point: the file and the offset of its first line.
struct Origin {
    file: PathBuf,
    /// Added to a diagnostic's line (inline manifests start below the `manifests:` key).
    line_offset: u64,
    /// Added to a diagnostic's column (the block scalar's indentation).
    column_offset: u64,
}

/// The name of the extra source holding the topology's networks.
const TOPOLOGY_SOURCE: &str = "<topology.networks>";

/// Loads the manifests of the scenario at `scenario` (text `text`). `topology_networks` are
/// the names of `topology.networks`. Returns the valid objects, or the first error (with the
/// others appended to its message).
pub fn load_manifests(
    scenario: &Path,
    text: &str,
    manifests: &Manifests,
    topology_networks: &[String],
) -> Result<Vec<Object>, ScenarioError> {
    let (sources, origins) = sources(scenario, text, manifests)?;
    // First pass: which Networks the manifests declare themselves (those win over the
    // topology's, so the extra source must not repeat them).
    let declared: BTreeSet<ObjectKey> = api::load(&sources)
        .objects
        .iter()
        .filter(|o| o.kind() == Kind::Network)
        .map(|o| o.key().clone())
        .collect();
    let mut extra = String::new();
    for name in topology_networks {
        // Names that are not DNS labels cannot be referenced from a manifest anyway.
        if api::rules::dns_label(name).is_err() || declared.contains(&ObjectKey::in_default(name)) {
            continue;
        }
        extra.push_str(&format!(
            "---\napiVersion: {}\nkind: Network\nmetadata: {{name: {name}}}\n",
            api::API_VERSION
        ));
    }
    let mut all = sources;
    if !extra.is_empty() {
        all.push(SourceFile::new(TOPOLOGY_SOURCE, extra));
    }
    let report = api::load(&all);
    let errors: Vec<&Diagnostic> = report.errors().collect();
    if let Some(first) = errors.first() {
        let mut err = to_error(first, &origins, scenario);
        for more in &errors[1..] {
            let e = to_error(more, &origins, scenario);
            err.message.push_str(&format!("\n{e}"));
        }
        return Err(err);
    }
    Ok(report
        .objects
        .into_iter()
        // The topology's bare networks are stand-ins for validation only.
        .filter(|o| {
            !(o.kind() == Kind::Network
                && !declared.contains(o.key())
                && topology_networks.iter().any(|n| *n == o.key().name)
                && o.key().namespace == api::DEFAULT_NAMESPACE)
        })
        .collect())
}

/// The API sources of the manifests, and where each one's lines are in the user's files.
fn sources(
    scenario: &Path,
    text: &str,
    manifests: &Manifests,
) -> Result<(Vec<SourceFile>, Vec<Origin>), ScenarioError> {
    match manifests {
        Manifests::Inline(yaml) => {
            let (line_offset, column_offset) = inline_offset(text);
            Ok((
                vec![SourceFile::new(
                    scenario.display().to_string(),
                    yaml.clone(),
                )],
                vec![Origin {
                    file: scenario.to_path_buf(),
                    line_offset,
                    column_offset,
                }],
            ))
        }
        Manifests::Files(paths) => {
            let dir = scenario.parent().unwrap_or(Path::new(""));
            let mut sources = Vec::new();
            let mut origins = Vec::new();
            for (i, p) in paths.iter().enumerate() {
                let path = dir.join(p);
                let yaml = std::fs::read_to_string(&path).map_err(|e| ScenarioError {
                    file: scenario.to_path_buf(),
                    line: 0,
                    column: 0,
                    field: format!("manifests[{i}]"),
                    message: format!("cannot read {}: {e}", path.display()),
                })?;
                sources.push(SourceFile::new(path.display().to_string(), yaml));
                origins.push(Origin {
                    file: path,
                    line_offset: 0,
                    column_offset: 0,
                });
            }
            Ok((sources, origins))
        }
    }
}

/// Where inline manifests start in the scenario file: the line of the top-level
/// `manifests:` key (its block scalar's first line is one below) and the block's
/// indentation. `(0, 0)` when the key is not found as a block scalar.
fn inline_offset(text: &str) -> (u64, u64) {
    let mut lines = text.lines().enumerate();
    for (i, line) in lines.by_ref() {
        let Some(rest) = line.strip_prefix("manifests:") else {
            continue;
        };
        let indicator = rest.trim_start();
        if !(indicator.starts_with('|') || indicator.starts_with('>')) {
            return (i as u64, 0);
        }
        let indent = text
            .lines()
            .skip(i + 1)
            .find(|l| !l.trim().is_empty())
            .map_or(0, |l| l.len() - l.trim_start().len());
        return (i as u64 + 1, indent as u64);
    }
    (0, 0)
}

fn to_error(d: &Diagnostic, origins: &[Origin], scenario: &Path) -> ScenarioError {
    let origin = origins.get(d.file_index);
    let (file, line, column) = match origin {
        Some(o) if d.loc.line > 0 => (
            o.file.clone(),
            u64::from(d.loc.line) + o.line_offset,
            u64::from(d.loc.column) + o.column_offset,
        ),
        Some(o) => (o.file.clone(), 0, 0),
        // The topology's networks: point at the scenario file.
        None => (scenario.to_path_buf(), 0, 0),
    };
    let mut field = d.object.clone().unwrap_or_default();
    if !d.field.is_empty() {
        if !field.is_empty() {
            field.push_str(": ");
        }
        field.push_str(&d.field);
    }
    ScenarioError {
        file,
        line,
        column,
        field,
        message: d.message.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_offset_points_below_the_key_at_the_block_indent() {
        let text = "a: 1\nmanifests: |\n  apiVersion: x\n  kind: Network\n";
        assert_eq!(inline_offset(text), (2, 2));
        assert_eq!(inline_offset("manifests: [a.yaml]\n"), (0, 0));
        assert_eq!(inline_offset("x: 1\n"), (0, 0));
    }
}
