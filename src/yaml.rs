//! Shared helpers for the YAML files natsim reads (plans, replay configs): turn a serde-saphyr
//! error into a line, a column and a clean message, and recover the dotted key path at a line so
//! the error can name the field.

/// Line, column (1-based; 0 when unknown) and message of a serde-saphyr error, without the
/// snippet, the trailing " at line L, column C" (callers print the location first) and the
/// library-user hints ([`plain_message`]).
pub fn describe_error(e: &serde_saphyr::Error) -> (u64, u64, String) {
    let location = e.location();
    let line = location.map(|l| l.line()).unwrap_or(0);
    let column = location.map(|l| l.column()).unwrap_or(0);
    let mut message = e.without_snippet().to_string();
    let suffix = format!(" at line {line}, column {column}");
    if let Some(stripped) = message.strip_suffix(&suffix) {
        message = stripped.to_string();
    }
    (line, column, plain_message(&message))
}

/// The serde-saphyr options for natsim's own files (scenarios, plans, replay configs):
/// explicit YAML tags other than YAML's own (`!foo`, `!!python/object`) are refused instead of
/// being silently dropped, on values and on field names alike. (Manifests are stricter still:
/// `api::load` also types strings as Kubernetes does.)
pub fn options() -> serde_saphyr::Options {
    let mut options = serde_saphyr::Options::default();
    options.reject_unsupported_tags = true;
    options.reject_tagged_field_names = true;
    options
}

/// Replaces the hints serde-saphyr writes for programmers using the library ("set
/// DuplicateKeyPolicy in Options", "use from_str_multiple") with what a user of natsim can do.
pub fn plain_message(message: &str) -> String {
    const DUPLICATE_HINT: &str = ", set DuplicateKeyPolicy in Options if acceptable";
    const MULTI_DOC: &str = "multiple YAML documents detected; ";
    let mut out = message.replace(
        DUPLICATE_HINT,
        " (each key may appear once per mapping; remove or rename one)",
    );
    if let Some(start) = out.find(MULTI_DOC) {
        let rest = &out[start + MULTI_DOC.len()..];
        // The hint names a library function (`use from_str_multiple...`); drop it.
        let end = rest
            .find(" at line ")
            .map_or(out.len(), |i| start + MULTI_DOC.len() + i);
        out.replace_range(
            start..end,
            "this file holds one YAML document, but a `---` line starts another; remove it or move the second document to its own file",
        );
    }
    out
}

/// The dotted path of the block-style mapping key at `line` (1-based), read off the indentation
/// of the lines above it. Sequence items are entered without an index. `None` for flow style or
/// anything the heuristic cannot follow; the line and column are still exact.
pub fn key_path_at(text: &str, line: u64) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let index = usize::try_from(line).ok()?.checked_sub(1)?;
    let (mut indent, key) = key_of(lines.get(index)?)?;
    let mut path = vec![key];
    for raw in lines[..index].iter().rev() {
        if indent == 0 {
            break;
        }
        if let Some((i, k)) = key_of(raw)
            && i < indent
        {
            path.push(k);
            indent = i;
        }
    }
    path.reverse();
    Some(path.join("."))
}

/// The line (1-based) of the block-style node at a dotted field path such as
/// `gateway.ips[1].name` or `topology.nodes`, for errors found after parsing, where only the
/// path is known. Follows keys by indentation and sequence items by their dashes; `None` for
/// flow style or anything the heuristic cannot follow. When a path goes deeper than the text
/// (a computed field), the deepest node found is named.
pub fn line_of_path(text: &str, path: &str) -> Option<u64> {
    let lines: Vec<&str> = text.lines().collect();
    let indent_of = |idx: usize| {
        let raw = lines[idx];
        let trimmed = raw.trim_start();
        let blank = trimmed.is_empty() || trimmed.starts_with('#') || raw.starts_with("---");
        (!blank).then(|| raw.len() - trimmed.len())
    };
    let is_item = |idx: usize| {
        let body = lines[idx].trim_start();
        body == "-" || body.starts_with("- ")
    };
    // The current node's lines: from..end.
    let (mut from, mut end) = (0usize, lines.len());
    let mut found = None;
    for part in path.split('.') {
        let (key, rest) = part.split_once('[').unwrap_or((part, ""));
        let indexes = rest
            .split('[')
            .filter_map(|i| i.trim_end_matches(']').parse::<usize>().ok());
        let mut steps: Vec<(Option<&str>, Option<usize>)> = Vec::new();
        if !key.is_empty() {
            steps.push((Some(key), None));
        }
        steps.extend(indexes.map(|i| (None, Some(i))));
        for step in steps {
            let hit = match step {
                (Some(key), _) => {
                    // Keys of this node sit at the smallest key indentation in its lines.
                    let keys: Vec<(usize, usize, String)> = (from..end)
                        .filter_map(|i| key_of(lines[i]).map(|(ind, k)| (i, ind, k)))
                        .collect();
                    let top = keys.iter().map(|k| k.1).min();
                    keys.into_iter()
                        .find(|(_, ind, k)| Some(*ind) == top && k == key)
                        .map(|(i, _, _)| (i, i + 1))
                }
                (None, Some(wanted)) => {
                    let items: Vec<usize> = (from..end).filter(|&i| is_item(i)).collect();
                    let top = items.iter().filter_map(|&i| indent_of(i)).min();
                    items
                        .into_iter()
                        .filter(|&i| indent_of(i) == top)
                        .nth(wanted)
                        // A dash item's first key sits on the dash line itself.
                        .map(|i| (i, i))
                }
                (None, None) => None,
            };
            let Some((idx, first_child)) = hit else {
                return found;
            };
            found = Some(idx as u64 + 1);
            let own = indent_of(idx).unwrap_or(0);
            end = (idx + 1..end)
                .find(|&j| indent_of(j).is_some_and(|i| i <= own))
                .unwrap_or(end);
            from = first_child;
        }
    }
    found
}

/// Indentation and key of a `key: value` line ("- key:" counts as indented by 2).
pub fn key_of(raw: &str) -> Option<(usize, String)> {
    let trimmed = raw.trim_start();
    let mut indent = raw.len() - trimmed.len();
    let mut body = trimmed;
    while let Some(rest) = body.strip_prefix("- ") {
        indent += 2;
        body = rest.trim_start();
    }
    if body.starts_with('#') || body.starts_with('{') {
        return None;
    }
    let (key, _) = body.split_once(':')?;
    let key = key.trim();
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
    plain.then(|| (indent, key.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_of_path_finds_keys_and_sequence_items() {
        let text = "# c\ntopology:\n  nodes: 0\ngateway:\n  ips:\n    - name: a\n    - name: b\n      addresses: [x]\n  ports_per_nic: 3\n";
        assert_eq!(line_of_path(text, "topology.nodes"), Some(3));
        assert_eq!(line_of_path(text, "gateway.ports_per_nic"), Some(9));
        assert_eq!(line_of_path(text, "gateway.ips[1]"), Some(7));
        assert_eq!(line_of_path(text, "gateway.ips[1].addresses"), Some(8));
        assert_eq!(line_of_path(text, "gateway"), Some(4));
        // Deeper than the text: the deepest node found.
        assert_eq!(line_of_path(text, "gateway.overrides"), Some(4));
        assert_eq!(line_of_path(text, "nothing"), None);
        assert_eq!(line_of_path("{a: 1}", "a"), None);
    }

    #[test]
    fn key_path_follows_indentation_through_sequence_items() {
        let text = "gateway:\n  ips:\n    - name: a\n      addresses: [x]\n";
        assert_eq!(
            key_path_at(text, 4).as_deref(),
            Some("gateway.ips.addresses")
        );
        assert_eq!(key_path_at(text, 1).as_deref(), Some("gateway"));
        assert_eq!(key_path_at("a: {b: 1}\n", 2), None);
    }

    #[test]
    fn library_hints_become_plain_messages() {
        for text in ["a: 1\na: 2\n", "a: 1\n---\nb: 2\n"] {
            let e = serde_saphyr::from_str::<serde_json::Value>(text).expect_err(text);
            let (_, _, msg) = describe_error(&e);
            assert!(!msg.contains("DuplicateKeyPolicy"), "{msg}");
            assert!(!msg.contains("from_str"), "{msg}");
            assert!(!msg.contains("Options"), "{msg}");
        }
    }
}
