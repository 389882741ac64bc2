//! Reading manifest files: split multi-document YAML, parse each document with positions,
//! and turn parser errors into [`Diagnostic`](super::Diagnostic)s.
//!
//! Documents are split by hand at `---` / `...` lines so that one broken document does not
//! hide the others (the parser stops at its first error). Each document is parsed on its own
//! text, and every position found while parsing and checking it is shifted by the number of
//! lines before it afterwards ([`Loc::shifted`]), so messages name lines of the original
//! file. (Padding each document with the preceding line breaks, as an earlier version did,
//! made loading quadratic in the number of documents.)

use serde::de::DeserializeOwned;
use serde_saphyr::{MessageFormatter, Options, UserMessageFormatter};

use super::diag::{Context, Diagnostic, Loc, Sink};
use super::manifest::{Head, NOT_A_WHOLE_NUMBER, RawObject};
use super::model::{DEFAULT_NAMESPACE, Kind};

/// The canonical API group/version.
pub const API_VERSION: &str = "networking.ironcore.dev/v1alpha1";
/// The pre-rename group (IronCore's samples before it was renamed from onmetal), accepted
/// as an alias.
pub const LEGACY_API_VERSION: &str = "networking.api.onmetal.de/v1alpha1";

/// One manifest file's contents, named the way diagnostics should show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceFile {
    /// Name used in diagnostics (usually the path as given).
    pub name: String,
    /// The YAML text.
    pub text: String,
}

impl SourceFile {
    /// A named source.
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        SourceFile {
            name: name.into(),
            text: text.into(),
        }
    }
}

/// A document that parsed into the shape of its kind.
#[derive(Debug)]
pub(crate) struct ParsedDoc {
    /// File and `Kind namespace/name` for messages.
    pub ctx: Context,
    /// Where the document starts (its `kind:` line when known), counted within the
    /// document's own text: add `line_offset` for the file line.
    pub loc: Loc,
    /// Lines of the file before the document's text.
    pub line_offset: u32,
    /// The document; its spans are counted within the document's own text too.
    pub raw: RawObject,
}

/// One document's text. Line `n` of `text` is line `n + line_offset` of the file.
struct Chunk {
    /// First line with content, counted in the file.
    first_line: u32,
    line_offset: u32,
    text: String,
}

impl Chunk {
    /// The first content line, counted within the chunk's text.
    fn first_line_in_text(&self) -> u32 {
        self.first_line - self.line_offset
    }
}

/// Splits a YAML stream into documents at `---` and `...` markers in column 0. Directive
/// lines (`%YAML`) are blanked: each chunk is parsed on its own.
fn split_documents(text: &str) -> Vec<Chunk> {
    // Lines are copied in runs (one copy per run of ordinary lines, not one per line): a
    // 100k-document file is split on the one thread that has to read it all.
    let mut chunks = Vec::new();
    let mut current = String::new();
    let mut run_start = 0usize;
    let mut first_line = 1u32;
    let mut line_offset = 0u32;
    let mut has_content = false;
    let mut line_no = 0u32;
    let mut pos = 0usize;
    for line in text.split_inclusive('\n') {
        let (start, end) = (pos, pos + line.len());
        pos = end;
        line_no = line_no.saturating_add(1);
        let bare = line.trim_end_matches(['\n', '\r']);
        let is_start = bare == "---" || bare.starts_with("--- ") || bare.starts_with("---\t");
        let is_end = bare == "..." || bare.starts_with("... ");
        if is_start || is_end {
            current.push_str(&text[run_start..start]);
            if has_content {
                chunks.push(Chunk {
                    first_line,
                    line_offset,
                    text: std::mem::take(&mut current),
                });
            }
            // The next chunk starts at this line; its positions are shifted afterwards.
            current.clear();
            line_offset = line_no - 1;
            first_line = line_no;
            has_content = false;
            if is_start {
                // The marker line is the first line of the next run.
                run_start = start;
                let rest = bare[3..].trim();
                has_content |= !rest.is_empty() && !rest.starts_with('#');
            } else {
                current.push('\n');
                run_start = end;
            }
            continue;
        }
        if bare.starts_with('%') {
            // Directives are blanked.
            current.push_str(&text[run_start..start]);
            current.push('\n');
            run_start = end;
            continue;
        }
        let trimmed = bare.trim();
        if !trimmed.is_empty() && !trimmed.starts_with('#') {
            if !has_content {
                first_line = line_no;
            }
            has_content = true;
        }
    }
    current.push_str(&text[run_start..]);
    if has_content {
        chunks.push(Chunk {
            first_line,
            line_offset,
            text: current,
        });
    }
    chunks
}

/// Shifts the positions of the findings `sink` gained since it held `from` items by
/// `line_offset` lines: they were counted within one document's text.
pub(crate) fn shift_findings(sink: &mut Sink, from: usize, line_offset: u32) {
    for d in sink.items.iter_mut().skip(from) {
        d.loc = d.loc.shifted(line_offset);
    }
}

/// Parses every document of every file and hands each parsed document to `then` (the
/// caller's per-document work, e.g. the first validation pass), on the same thread. Findings
/// go to `sink`; what `then` returns is collected in file order, then document order.
///
/// Documents are independent, so they are parsed (and handed to `then`) on up to
/// [`PARSE_THREADS`] threads, each taking a contiguous run of them; results and findings are
/// put back in document order, so the output does not depend on the number of threads.
/// `then` gets a sink of its own per document; its findings keep the positions it gives them.
pub(crate) fn parse_sources<T: Send>(
    sources: &[SourceFile],
    sink: &mut Sink,
    then: &(dyn Fn(ParsedDoc, &mut Sink) -> Option<T> + Sync),
) -> Vec<T> {
    enum Item {
        Empty(Context),
        Doc(Context, Chunk),
    }
    let mut items = Vec::new();
    for (file_index, source) in sources.iter().enumerate() {
        let file_ctx = Context {
            file: source.name.clone(),
            file_index,
            object: None,
        };
        let chunks = split_documents(&source.text);
        if chunks.is_empty() {
            items.push(Item::Empty(file_ctx.clone()));
        }
        for (index, chunk) in chunks.into_iter().enumerate() {
            let doc_ctx = Context {
                object: Some(format!("document {}", index + 1)),
                ..file_ctx.clone()
            };
            items.push(Item::Doc(doc_ctx, chunk));
        }
    }
    let docs: Vec<(&Context, &Chunk)> = items
        .iter()
        .filter_map(|item| match item {
            Item::Doc(ctx, chunk) => Some((ctx, chunk)),
            Item::Empty(_) => None,
        })
        .collect();
    let parse_one = |(ctx, chunk): &(&Context, &Chunk)| {
        let mut local = Sink { items: Vec::new() };
        let parsed = parse_chunk(chunk, ctx, &mut local);
        shift_findings(&mut local, 0, chunk.line_offset);
        let done = parsed.and_then(|doc| then(doc, &mut local));
        (done, local.items)
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(PARSE_THREADS);
    let mut results: Vec<(Option<T>, Vec<Diagnostic>)> =
        if threads <= 1 || docs.len() < MIN_DOCS_PER_THREAD * 2 {
            docs.iter().map(parse_one).collect::<Vec<_>>()
        } else {
            let per_thread = docs.len().div_ceil(threads).max(MIN_DOCS_PER_THREAD);
            std::thread::scope(|scope| {
                let handles: Vec<_> = docs
                    .chunks(per_thread)
                    .map(|part| scope.spawn(move || part.iter().map(parse_one).collect::<Vec<_>>()))
                    .collect();
                handles
                    .into_iter()
                    .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                    .collect()
            })
        }
        .into_iter()
        .rev()
        .collect();
    let mut parsed_docs = Vec::new();
    for item in &items {
        match item {
            Item::Empty(file_ctx) => sink.warn(
                file_ctx,
                Loc::new(1, 1),
                "",
                "file contains no documents; expected Network, NetworkInterface, VirtualIP or NATGateway manifests",
            ),
            Item::Doc(..) => {
                let Some((parsed, findings)) = results.pop() else {
                    break;
                };
                sink.items.extend(findings);
                parsed_docs.extend(parsed);
            }
        }
    }
    parsed_docs
}

/// At most this many threads parse documents (more buy little on the machines natsim runs on).
const PARSE_THREADS: usize = 8;
/// Fewer documents than this per thread are parsed on the calling thread.
const MIN_DOCS_PER_THREAD: usize = 256;

/// How every manifest document is read. Kubernetes types manifests strictly, and so does
/// natsim: a plain `42` or `true` where a string belongs is refused (the API server refuses
/// it too) instead of being read as the text "42" ([`Options::no_schema`]), and explicit
/// tags other than YAML's own (`!foo`, `!!python/object`) are refused instead of ignored.
fn yaml_options() -> Options {
    let mut options = Options::default();
    options.no_schema = true;
    options.reject_unsupported_tags = true;
    options.reject_tagged_field_names = true;
    // Messages are built from the bare error; no snippet needed.
    options.with_snippet = false;
    options
}

/// Parses one document. Valid documents take one parser pass: the kind is read off the
/// document's top-level `kind:` line, and the document parsed straight into that kind's
/// shape. Everything else (no recognisable `kind:` line, a parse error, a wrong kind or
/// apiVersion) goes the careful way, [`parse_chunk_checked`], which names the problem.
/// (Parsing every document twice, once for its kind and once typed, made a 100k-document
/// file take twice as long.)
fn parse_chunk(chunk: &Chunk, file_ctx: &Context, sink: &mut Sink) -> Option<ParsedDoc> {
    if let Some(kind) = sniff_kind(&chunk.text)
        && let Some(doc) = parse_chunk_fast(chunk, kind, file_ctx)
    {
        return Some(doc);
    }
    parse_chunk_checked(chunk, file_ctx, sink)
}

/// The kind named by a block-style top-level `kind: X` line, if it is one natsim knows.
/// A guess only: [`parse_chunk_fast`] confirms it against the parsed document.
fn sniff_kind(text: &str) -> Option<Kind> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix("kind:")?;
        let value = rest.split(" #").next().unwrap_or(rest).trim();
        Kind::parse(value.trim_matches(['"', '\'']))
    })
}

/// One typed pass for a document whose kind was sniffed. `None` when anything is off; the
/// caller then re-reads the document with [`parse_chunk_checked`] for the diagnostics.
fn parse_chunk_fast(chunk: &Chunk, kind: Kind, file_ctx: &Context) -> Option<ParsedDoc> {
    let text = &chunk.text;
    let raw = match kind {
        Kind::Network => RawObject::Network(parse_typed(text).ok()?),
        Kind::NetworkInterface => RawObject::NetworkInterface(parse_typed(text).ok()?),
        Kind::VirtualIp => RawObject::VirtualIp(parse_typed(text).ok()?),
        Kind::NatGateway => RawObject::NatGateway(parse_typed(text).ok()?),
    };
    let (api_version, kind_field, metadata) = raw.head();
    let api_ok =
        api_version.is_some_and(|v| v.value == API_VERSION || v.value == LEGACY_API_VERSION);
    let kind_field = kind_field.filter(|k| Kind::parse(&k.value) == Some(kind))?;
    if !api_ok {
        return None;
    }
    let meta = metadata.map(|m| &m.value);
    let name = meta.and_then(|m| m.name.as_ref()).map(|n| n.value.as_str());
    let namespace = meta
        .and_then(|m| m.namespace.as_ref())
        .map_or(DEFAULT_NAMESPACE, |n| n.value.as_str());
    let object = match name {
        Some(n) => format!("{} {namespace}/{n}", kind_field.value),
        None => format!("{} (unnamed)", kind_field.value),
    };
    Some(ParsedDoc {
        ctx: Context {
            object: Some(object),
            ..file_ctx.clone()
        },
        loc: Loc::new(Loc::from(kind_field.referenced).line, 1),
        line_offset: chunk.line_offset,
        raw,
    })
}

fn parse_typed<T: DeserializeOwned>(text: &str) -> Result<Box<T>, serde_saphyr::Error> {
    serde_saphyr::from_str_with_options::<T>(text, yaml_options()).map(Box::new)
}

/// Parses one document in two passes: a tolerant [`Head`] pass for `apiVersion`, `kind` and
/// the object's name (so every message names the object), then the typed pass.
fn parse_chunk_checked(chunk: &Chunk, file_ctx: &Context, sink: &mut Sink) -> Option<ParsedDoc> {
    let doc_loc = Loc::new(chunk.first_line_in_text(), 1);
    let head: Head = match serde_saphyr::from_str_with_options(&chunk.text, yaml_options()) {
        Ok(head) => head,
        Err(e) => {
            let ctx = Context {
                object: guess_object(&chunk.text).or_else(|| file_ctx.object.clone()),
                ..file_ctx.clone()
            };
            report_parse_error(&e, &chunk.text, &ctx, doc_loc, sink);
            return None;
        }
    };
    let name = head
        .metadata
        .as_ref()
        .and_then(|m| m.name.as_ref())
        .and_then(|v| v.as_str().map(str::to_owned));
    let namespace = head
        .metadata
        .as_ref()
        .and_then(|m| m.namespace.as_ref())
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned());
    let kind_text = head.kind.as_ref().map(|k| k.value.clone());
    let object = match (&kind_text, &name) {
        (Some(k), Some(n)) => Some(format!("{k} {namespace}/{n}")),
        (Some(k), None) => Some(format!("{k} (unnamed)")),
        (None, Some(n)) => Some(format!("{namespace}/{n}")),
        (None, None) => file_ctx.object.clone(),
    };
    let ctx = Context {
        object,
        ..file_ctx.clone()
    };
    let mut ok = true;
    match &head.api_version {
        None => {
            sink.error(
                &ctx,
                doc_loc,
                "apiVersion",
                format!("missing; valid: {API_VERSION} (or the legacy alias {LEGACY_API_VERSION})"),
            );
            ok = false;
        }
        Some(v) if v.value != API_VERSION && v.value != LEGACY_API_VERSION => {
            sink.error(
                &ctx,
                v.referenced.into(),
                "apiVersion",
                format!(
                    "unsupported apiVersion `{}`; valid: {API_VERSION} (or the legacy alias {LEGACY_API_VERSION})",
                    v.value
                ),
            );
            ok = false;
        }
        Some(_) => {}
    }
    let kinds = "Network, NetworkInterface, VirtualIP, NATGateway";
    let kind = match &head.kind {
        None => {
            sink.error(&ctx, doc_loc, "kind", format!("missing; valid: {kinds}"));
            return None;
        }
        Some(k) => match Kind::parse(&k.value) {
            Some(kind) => (kind, Loc::from(k.referenced)),
            None => {
                sink.error(
                    &ctx,
                    k.referenced.into(),
                    "kind",
                    format!("unknown kind `{}`; valid: {kinds}", k.value),
                );
                return None;
            }
        },
    };
    if !ok {
        return None;
    }
    let (kind, kind_loc) = kind;
    let text = &chunk.text;
    let raw = match kind {
        Kind::Network => typed(text, &ctx, doc_loc, sink).map(RawObject::Network),
        Kind::NetworkInterface => typed(text, &ctx, doc_loc, sink).map(RawObject::NetworkInterface),
        Kind::VirtualIp => typed(text, &ctx, doc_loc, sink).map(RawObject::VirtualIp),
        Kind::NatGateway => typed(text, &ctx, doc_loc, sink).map(RawObject::NatGateway),
    }?;
    Some(ParsedDoc {
        ctx,
        loc: Loc::new(kind_loc.line, 1),
        line_offset: chunk.line_offset,
        raw,
    })
}

fn typed<T: DeserializeOwned>(
    text: &str,
    ctx: &Context,
    doc_loc: Loc,
    sink: &mut Sink,
) -> Option<Box<T>> {
    match parse_typed::<T>(text) {
        Ok(v) => Some(v),
        Err(e) => {
            report_parse_error(&e, text, ctx, doc_loc, sink);
            None
        }
    }
}

fn report_parse_error(
    e: &serde_saphyr::Error,
    text: &str,
    ctx: &Context,
    doc_loc: Loc,
    sink: &mut Sink,
) {
    let loc = e.location().map(Loc::from).unwrap_or(doc_loc);
    let field = if loc.line > 0 {
        path_at(text, loc)
    } else {
        String::new()
    };
    let raw_message = UserMessageFormatter.format_message(e.without_snippet());
    let message = explain_parse_message(&raw_message);
    sink.error(ctx, loc, field, message);
}

/// Names the object of a document the parser rejected, by reading its block-style
/// `kind:` and `metadata:` lines. Best effort, for messages only.
fn guess_object(text: &str) -> Option<String> {
    let mut kind = None;
    let mut name = None;
    let mut namespace = None;
    let mut in_metadata = false;
    let value = |s: &str| s.trim().trim_matches(['"', '\'']).to_owned();
    let field_in = |flow: &str, key: &str| {
        flow.split([',', '{', '}'])
            .filter_map(|part| part.trim().strip_prefix(key))
            .find_map(|rest| rest.trim_start().strip_prefix(':').map(&value))
    };
    for line in text.lines() {
        let top_level = !line.starts_with([' ', '\t', '#', '-']);
        if top_level {
            in_metadata = false;
        }
        if let Some(rest) = line.strip_prefix("kind:") {
            kind.get_or_insert_with(|| value(rest));
        } else if let Some(rest) = line.strip_prefix("metadata:") {
            in_metadata = true;
            name = name.or_else(|| field_in(rest, "name"));
            namespace = namespace.or_else(|| field_in(rest, "namespace"));
        } else if in_metadata {
            let t = line.trim_start();
            if let Some(rest) = t.strip_prefix("name:") {
                name.get_or_insert_with(|| value(rest));
            } else if let Some(rest) = t.strip_prefix("namespace:") {
                namespace.get_or_insert_with(|| value(rest));
            }
        }
    }
    let ns = namespace.unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned());
    match (kind, name) {
        (Some(k), Some(n)) => Some(format!("{k} {ns}/{n}")),
        (Some(k), None) => Some(format!("{k} (unnamed)")),
        (None, Some(n)) => Some(format!("{ns}/{n}")),
        (None, None) => None,
    }
}

/// Adds the "what would be valid" half to the parser's terse messages.
fn explain_parse_message(msg: &str) -> String {
    // Keep the text on one line; the parser's messages may quote characters.
    let clean: String = msg
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if clean.starts_with("unknown field") {
        format!("{clean} (natsim rejects fields it does not know; check the spelling)")
    } else if clean.starts_with("duplicate mapping key") {
        format!("{clean}: each key may appear once per mapping")
    } else if clean == "expected mapping start" {
        format!("{clean}: this must be a mapping of `key: value` pairs")
    } else if clean == "expected string scalar" {
        format!("{clean}: write a plain string here")
    } else if clean == "value requires quoting" {
        "not a string: YAML reads this unquoted value as a number, boolean or null, and Kubernetes refuses that for a string field; valid: the text in quotes, such as \"42\"".to_owned()
    } else if clean.starts_with("unsupported tag") {
        format!(
            "{clean}: manifests are plain Kubernetes YAML and natsim does not interpret tags; remove the tag"
        )
    } else if clean.starts_with("tag `") {
        "a tag on a field name is not allowed; remove the tag".to_owned()
    } else if clean.starts_with(NOT_A_WHOLE_NUMBER) {
        clean
    } else if clean.starts_with("invalid i") || clean.starts_with("invalid u") {
        "not a whole number; valid: an integer such as 64".to_owned()
    } else if clean.starts_with("expected") {
        format!("{clean}: wrong kind of value here; see docs/api.md for the shape of each field")
    } else if clean.starts_with("missing field") || clean.starts_with("unknown variant") {
        clean
    } else {
        format!(
            "YAML syntax error: {clean}; check brackets, quotes and indentation on this line and the ones before"
        )
    }
}

/// Best-effort dotted path of the block-style YAML node at `loc` (`spec.ips[1].name`).
///
/// It walks upwards from the error line, collecting the keys and sequence dashes that are
/// less indented than the node. Flow-style collections (`{...}`, `[...]`) are named by the
/// key that holds them. Good enough for messages; never used for semantics.
pub(crate) fn path_at(text: &str, loc: Loc) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let Some(start) = (loc.line as usize).checked_sub(1) else {
        return String::new();
    };
    if start >= lines.len() {
        return String::new();
    }
    let mut segments: Vec<String> = Vec::new();
    // Column (0-based) that an ancestor's key or dash must not exceed.
    let mut limit = loc.column.saturating_sub(1) as usize;
    let mut on_error_line = true;
    let mut after_dash = false;
    for idx in (0..=start).rev() {
        let Some(parsed) = parse_line(lines[idx]) else {
            continue;
        };
        // Rightmost item first: the key, then the dashes before it.
        if let Some((pos, key)) = &parsed.key {
            let fits = if on_error_line || after_dash {
                *pos <= limit
            } else {
                *pos < limit
            };
            if fits {
                segments.push(key.clone());
                limit = *pos;
                after_dash = false;
            }
        }
        for &dash in parsed.dashes.iter().rev() {
            let fits = if on_error_line {
                dash <= limit
            } else {
                dash < limit
            };
            if fits {
                segments.push(format!("[{}]", sequence_index(&lines, idx, dash)));
                limit = dash;
                after_dash = true;
            }
        }
        on_error_line = false;
        if limit == 0 && !after_dash {
            break;
        }
    }
    let mut path = String::new();
    for seg in segments.iter().rev() {
        if !path.is_empty() && !seg.starts_with('[') {
            path.push('.');
        }
        path.push_str(seg);
    }
    path
}

struct ParsedLine {
    dashes: Vec<usize>,
    key: Option<(usize, String)>,
}

/// Splits a block-style line into its sequence dashes and its key (if any).
fn parse_line(line: &str) -> Option<ParsedLine> {
    let content = line.split(" #").next().unwrap_or(line);
    let trimmed = content.trim_start();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return None;
    }
    let mut pos = content.len() - trimmed.len();
    let mut rest = trimmed;
    let mut dashes = Vec::new();
    while rest == "-" || rest.starts_with("- ") {
        dashes.push(pos);
        let after = rest[1..].trim_start();
        pos += rest.len() - after.len();
        rest = after;
    }
    let key = key_of(rest).map(|k| (pos, k));
    Some(ParsedLine { dashes, key })
}

/// The key of `key: value` / `key:` (quotes stripped), if the text starts with one.
fn key_of(rest: &str) -> Option<String> {
    if rest.starts_with(['{', '[', '|', '>', '&', '*', '!']) {
        return None;
    }
    let (key, quoted) = if let Some(inner) = rest.strip_prefix('"') {
        (inner.split('"').next()?, true)
    } else if let Some(inner) = rest.strip_prefix('\'') {
        (inner.split('\'').next()?, true)
    } else {
        let end = rest
            .find(": ")
            .or_else(|| rest.strip_suffix(':').map(str::len))?;
        (&rest[..end], false)
    };
    if quoted {
        // An unterminated quote leaves nothing after the key (found by fuzzing).
        let after = rest.get(key.len() + 2..)?;
        if !after.starts_with(':') {
            return None;
        }
    }
    Some(key.trim().to_owned())
}

/// How many items of the sequence whose dashes sit at column `dash` precede line `idx`.
fn sequence_index(lines: &[&str], idx: usize, dash: usize) -> usize {
    let mut count = 0;
    for line in lines[..idx].iter().rev() {
        let Some(parsed) = parse_line(line) else {
            continue;
        };
        if parsed.dashes.contains(&dash) {
            count += 1;
            continue;
        }
        let indent = parsed
            .dashes
            .first()
            .copied()
            .or(parsed.key.as_ref().map(|k| k.0))
            .unwrap_or(0);
        if indent <= dash {
            break;
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_keeps_file_line_numbers() {
        let text = "# c\n---\na: 1\n---\n\nb: 2\n...\n---\n# only a comment\n";
        let chunks = split_documents(text);
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks[0].first_line, 3);
        assert_eq!(chunks[0].line_offset, 1);
        assert_eq!(chunks[0].text.lines().nth(1), Some("a: 1"));
        assert_eq!(chunks[1].first_line, 6);
        assert_eq!(chunks[1].line_offset, 3);
        assert_eq!(chunks[1].text.lines().nth(2), Some("b: 2"));
    }

    /// The line-by-line splitter the run-copying one replaced, kept as the reference.
    fn split_reference(text: &str) -> Vec<(u32, u32, String)> {
        let mut chunks = Vec::new();
        let mut current = String::new();
        let (mut first_line, mut line_offset, mut has_content, mut line_no) = (1, 0, false, 0u32);
        for line in text.split_inclusive('\n') {
            line_no += 1;
            let bare = line.trim_end_matches(['\n', '\r']);
            let is_start = bare == "---" || bare.starts_with("--- ") || bare.starts_with("---\t");
            let is_end = bare == "..." || bare.starts_with("... ");
            if is_start || is_end {
                if has_content {
                    chunks.push((first_line, line_offset, std::mem::take(&mut current)));
                }
                current.clear();
                line_offset = line_no - 1;
                first_line = line_no;
                has_content = false;
                if is_start {
                    current.push_str(line);
                    let rest = bare[3..].trim();
                    has_content |= !rest.is_empty() && !rest.starts_with('#');
                } else {
                    current.push('\n');
                }
                continue;
            }
            if bare.starts_with('%') {
                current.push('\n');
                continue;
            }
            let trimmed = bare.trim();
            if !trimmed.is_empty() && !trimmed.starts_with('#') {
                if !has_content {
                    first_line = line_no;
                }
                has_content = true;
            }
            current.push_str(line);
        }
        if has_content {
            chunks.push((first_line, line_offset, current));
        }
        chunks
    }

    proptest::proptest! {
        #[test]
        fn split_matches_the_line_by_line_reference(
            lines in proptest::collection::vec(
                proptest::sample::select(vec![
                    "---", "--- a: 1", "---\t# c", "--- # c", "...", "... x", "%YAML 1.2",
                    "a: 1", "  - b", "# comment", "", "   ", "----", "x: ---", "\r",
                ]),
                0..40,
            ),
            crlf in proptest::bool::ANY,
            final_newline in proptest::bool::ANY,
        ) {
            let eol = if crlf { "\r\n" } else { "\n" };
            let mut text = lines.join(eol);
            if final_newline {
                text.push_str(eol);
            }
            let got: Vec<(u32, u32, String)> = split_documents(&text)
                .into_iter()
                .map(|c| (c.first_line, c.line_offset, c.text))
                .collect();
            proptest::prop_assert_eq!(got, split_reference(&text));
        }
    }

    #[test]
    fn split_copies_each_line_once() {
        // Linear loading: the chunks together are no longer than the file (no padding).
        let text = "---\na: 1\n".repeat(2000);
        let chunks = split_documents(&text);
        assert_eq!(chunks.len(), 2000);
        let total: usize = chunks.iter().map(|c| c.text.len()).sum();
        assert!(total <= text.len(), "{total} > {}", text.len());
    }

    #[test]
    fn path_at_names_nested_keys_and_sequence_items() {
        let text = "spec:\n  ips:\n  - name: a\n  - name: b\n    addresses:\n    - x\n  portsPerNetworkInterface: 7\n";
        assert_eq!(path_at(text, Loc::new(4, 11)), "spec.ips[1].name");
        assert_eq!(path_at(text, Loc::new(6, 7)), "spec.ips[1].addresses[0]");
        assert_eq!(
            path_at(text, Loc::new(7, 29)),
            "spec.portsPerNetworkInterface"
        );
        assert_eq!(path_at(text, Loc::new(1, 1)), "spec");
    }
}
