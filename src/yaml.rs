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

/// A syntax or type error in one of natsim's own YAML files (plans, replay configs): where, the
/// dotted key path at that line when it can be read off, and a message for a user.
#[derive(Clone, Debug, PartialEq)]
pub struct SyntaxError {
    /// 1-based line (0 when unknown).
    pub line: u64,
    /// 1-based column (0 when unknown).
    pub column: u64,
    /// The key path at `line` ([`key_path_at`]).
    pub field: Option<String>,
    /// What is wrong ([`describe_error`]).
    pub message: String,
}

/// Parses `text` with [`options`]; an error says where, and the key path there.
pub fn from_str<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, SyntaxError> {
    serde_saphyr::from_str_with_options(text, options()).map_err(|e| {
        let (line, column, message) = describe_error(&e);
        SyntaxError {
            line,
            column,
            field: key_path_at(text, line),
            message,
        }
    })
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

/// Line and column (1-based) of the block-style key at the dotted `path` of an error's field
/// (`[i]` selects the i-th item of a sequence; a key may itself contain dots, as counter names
/// do), or of the deepest part of the path that can be followed when the rest is in flow style
/// or absent. `None` when not even the first key is in the text. The inverse of
/// [`key_path_at`], used to give a line to errors found after parsing, on the resolved values.
pub fn locate_key_path(text: &str, path: &str) -> Option<(u64, u64)> {
    let lines: Vec<&str> = text.lines().collect();
    let segments = path_segments(path);
    let mut scope = 0..lines.len();
    // Indentation of the enclosing key or item: its children are indented deeper.
    let mut parent: Option<usize> = None;
    let mut found = None;
    let mut s = 0;
    while s < segments.len() {
        let hit = match &segments[s] {
            Segment::Index(n) => nth_item(&lines, scope.clone(), *n).map(|(i, d)| (i, d, 1)),
            Segment::Key(_) => find_key(&lines, scope.clone(), parent, &segments[s..]),
        };
        let Some((i, indent, used)) = hit else { break };
        found = Some((i as u64 + 1, indent as u64 + 1));
        let item = matches!(segments[s], Segment::Index(_));
        // An item's scope starts at its own line (its first key shares the dash's line).
        let from = if item { i } else { i + 1 };
        let end = (i + 1..scope.end)
            .find(|&j| leaves_scope(lines[j], indent, item))
            .unwrap_or(scope.end);
        scope = from..end;
        parent = Some(indent);
        s += used;
    }
    found
}

enum Segment {
    Key(String),
    Index(usize),
}

fn path_segments(path: &str) -> Vec<Segment> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (name, mut rest) = part.split_once('[').map_or((part, ""), |(n, r)| (n, r));
        if !name.is_empty() {
            out.push(Segment::Key(name.to_string()));
        }
        while let Some((index, after)) = rest.split_once(']') {
            if let Ok(n) = index.parse() {
                out.push(Segment::Index(n));
            }
            rest = after.strip_prefix('[').unwrap_or(after);
        }
    }
    out
}

/// The key line in `scope` naming the longest prefix of `segments` (joined by dots): its
/// index, indentation and how many segments it used.
fn find_key(
    lines: &[&str],
    scope: std::ops::Range<usize>,
    parent: Option<usize>,
    segments: &[Segment],
) -> Option<(usize, usize, usize)> {
    let mut child = None;
    for i in scope {
        let Some((indent, key)) = key_of(lines[i]) else {
            continue;
        };
        if parent.is_some_and(|p| indent <= p) {
            return None;
        }
        let c = *child.get_or_insert(indent);
        if indent != c {
            continue;
        }
        let mut joined = String::new();
        for (used, seg) in segments.iter().enumerate() {
            let Segment::Key(k) = seg else { break };
            if used > 0 {
                joined.push('.');
            }
            joined.push_str(k);
            if joined == key {
                return Some((i, indent, used + 1));
            }
        }
    }
    None
}

/// The `n`-th `- ` item of the first sequence in `scope`: its line and the dash's indentation.
fn nth_item(lines: &[&str], scope: std::ops::Range<usize>, n: usize) -> Option<(usize, usize)> {
    let mut dash = None;
    let mut count = 0;
    for i in scope {
        let raw = lines[i];
        let body = raw.trim_start();
        let indent = raw.len() - body.len();
        if body.is_empty() || body.starts_with('#') || !(body.starts_with("- ") || body == "-") {
            continue;
        }
        let d = *dash.get_or_insert(indent);
        if indent != d {
            continue;
        }
        if count == n {
            return Some((i, d));
        }
        count += 1;
    }
    None
}

/// Whether `raw` ends the block of a key (or item, `item`) at `indent`: a content line as
/// shallow, except a compact sequence's `- ` lines under a key.
fn leaves_scope(raw: &str, indent: usize, item: bool) -> bool {
    let body = raw.trim_start();
    if body.is_empty() || body.starts_with('#') {
        return false;
    }
    let at = raw.len() - body.len();
    at < indent || (at == indent && (item || !body.starts_with('-')))
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
    fn key_path_lines_of_keys_and_sequence_items() {
        let text = "# c\ntopology:\n  nodes: 0\ngateway:\n  ips:\n    - name: a\n    - name: b\n      addresses: [x]\n  ports_per_nic: 3\n";
        assert_eq!(
            locate_key_path(text, "topology.nodes").map(|(l, _)| l),
            Some(3)
        );
        assert_eq!(
            locate_key_path(text, "gateway.ports_per_nic").map(|(l, _)| l),
            Some(9)
        );
        assert_eq!(
            locate_key_path(text, "gateway.ips[1]").map(|(l, _)| l),
            Some(7)
        );
        assert_eq!(
            locate_key_path(text, "gateway.ips[1].addresses").map(|(l, _)| l),
            Some(8)
        );
        assert_eq!(locate_key_path(text, "gateway").map(|(l, _)| l), Some(4));
        // Deeper than the text: the deepest node found.
        assert_eq!(
            locate_key_path(text, "gateway.overrides").map(|(l, _)| l),
            Some(4)
        );
        assert_eq!(locate_key_path(text, "nothing").map(|(l, _)| l), None);
        assert_eq!(locate_key_path("{a: 1}", "a").map(|(l, _)| l), None);
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

    #[test]
    fn key_paths_locate_their_line() {
        let text = "limits:\n  max_events: 5\ngateway:\n  overrides:\n    timeout_udp_ms: 9\n\
                    traffic:\n- name: a\n  udp: {count: 1}\n- name: b\n  udp:\n    count: 2\n\
                    expect:\n  counters:\n    drop.unsolicted: 0\n";
        let at = |p: &str| locate_key_path(text, p);
        assert_eq!(at("gateway.overrides.timeout_udp_ms"), Some((5, 5)));
        assert_eq!(at("limits.max_events"), Some((2, 3)));
        assert_eq!(at("traffic[1].udp.count"), Some((11, 5)));
        assert_eq!(at("traffic[1]"), Some((9, 1)));
        // Flow style: the deepest block key that can be followed.
        assert_eq!(at("traffic[0].udp.count"), Some((8, 3)));
        assert_eq!(at("expect.counters.drop.unsolicted"), Some((14, 5)));
        assert_eq!(at("gateway.selector"), Some((3, 1)));
        assert_eq!(at("nosuch.key"), None);
    }
}
