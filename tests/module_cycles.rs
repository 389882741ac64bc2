//! No cycles between the crate's top-level modules (issue 17): the layers read bottom-up
//! (`wire` → `nat` → `sim` → `kernel` → `check` → `replay` → `scenario` → `diff`, `swarm` →
//! `fuzzing`), and a module that needs something from a layer above it is a placement bug (move
//! the item down, as `check::Target` and `swarm::fuzz_input` were moved).
//!
//! The scan reads every `src/**/*.rs` file, drops `//` comments and the `#[cfg(test)] mod`
//! at a file's end (unit tests may use any layer to build their fixtures), and records an edge
//! `a → b` for every `crate::b` path in a file of module `a`, including each name of a
//! `crate::{b, c::d}` group. The graph is then checked with petgraph; a cycle is listed with one
//! file and line per edge.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use petgraph::algo::{kosaraju_scc, toposort};
use petgraph::graph::{DiGraph, NodeIndex};

/// Where each edge was seen: (from, to) → first "file:line".
type Edges = BTreeMap<(String, String), String>;

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .expect("readable src directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The top-level modules: `src/<m>.rs` and `src/<m>/`, without the crate roots.
fn top_modules() -> Vec<String> {
    let mut tops: Vec<String> = fs::read_dir(src_dir())
        .expect("readable src directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?.to_string();
            if p.is_dir() {
                Some(name)
            } else {
                name.strip_suffix(".rs").map(str::to_string)
            }
        })
        .filter(|m| m != "lib" && m != "main")
        .collect();
    tops.sort();
    tops.dedup();
    tops
}

/// The file's code lines (1-based numbers kept), without comments and without a trailing
/// `#[cfg(test)] mod`.
fn code_lines(text: &str) -> Vec<(usize, String)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim_start();
        if t.starts_with("#[cfg(test)]")
            && lines[i + 1..]
                .iter()
                .map(|l| l.trim_start())
                .find(|l| !l.is_empty())
                .is_some_and(|l| l.starts_with("mod ") || l.starts_with("pub mod "))
        {
            break;
        }
        let code = line.split("//").next().unwrap_or("");
        out.push((i + 1, code.to_string()));
    }
    out
}

fn ident_at(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The top-level names a `crate::` path refers to, `rest` being the text after `crate::`:
/// one identifier, or each first-level name of a `{...}` group (which may span lines, hence
/// the whole file's code joined with the line of each byte).
fn referenced(rest: &str) -> Vec<String> {
    if !rest.starts_with('{') {
        return vec![ident_at(rest).to_string()];
    }
    let mut names = Vec::new();
    let mut depth = 0usize;
    let mut expect_name = false;
    for (i, c) in rest.char_indices() {
        match c {
            '{' => {
                depth += 1;
                expect_name = depth == 1;
            }
            '}' => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            ',' if depth == 1 => expect_name = true,
            c if expect_name && (c.is_ascii_alphabetic() || c == '_') => {
                names.push(ident_at(&rest[i..]).to_string());
                expect_name = false;
            }
            _ => {}
        }
    }
    names
}

fn scan() -> Edges {
    let tops = top_modules();
    let mut files = Vec::new();
    rust_files(&src_dir(), &mut files);
    let mut edges = Edges::new();
    for path in files {
        let rel = path.strip_prefix(src_dir()).expect("under src");
        let first = rel
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .unwrap_or("");
        let from = first.strip_suffix(".rs").unwrap_or(first).to_string();
        if !tops.contains(&from) {
            continue;
        }
        let text = fs::read_to_string(&path).expect("readable source");
        let lines = code_lines(&text);
        // Joined so that a `crate::{` group can be read across lines; `starts` maps a byte
        // offset back to its line.
        let mut joined = String::new();
        let mut starts = Vec::new();
        for (n, l) in &lines {
            starts.push((joined.len(), *n));
            joined.push_str(l);
            joined.push('\n');
        }
        for (at, _) in joined.match_indices("crate::") {
            // `$crate::` in macros and `foo_crate::` are not this crate's paths.
            let before = joined[..at].chars().next_back();
            if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$') {
                continue;
            }
            let line = starts
                .iter()
                .rev()
                .find(|(off, _)| *off <= at)
                .map_or(0, |(_, n)| *n);
            for to in referenced(&joined[at + "crate::".len()..]) {
                if to != from && tops.contains(&to) {
                    edges
                        .entry((from.clone(), to))
                        .or_insert_with(|| format!("src/{}:{line}", rel.display()));
                }
            }
        }
    }
    edges
}

#[test]
fn group_paths_name_each_top_level_module() {
    assert_eq!(
        referenced("{nat::{Gateway, Block}, sim::observe, time::Instant};"),
        ["nat", "sim", "time"]
    );
    assert_eq!(referenced("wire::parse"), ["wire"]);
    let lines = code_lines("use a; // crate::x\n#[cfg(test)]\nmod tests {\nuse crate::y;\n}\n");
    assert_eq!(lines, [(1, "use a; ".to_string())]);
}

#[test]
fn top_level_modules_have_no_cycle() {
    let edges = scan();
    // Not vacuous: edges every layout of the crate has must be found.
    for (from, to) in [
        ("nat", "wire"),
        ("nat", "time"),
        ("sim", "nat"),
        ("check", "sim"),
        ("scenario", "sim"),
        ("swarm", "scenario"),
        ("replay", "check"),
    ] {
        assert!(
            edges.contains_key(&(from.to_string(), to.to_string())),
            "the scan did not find {from} -> {to}; found {:?}",
            edges.keys().collect::<Vec<_>>()
        );
    }
    let mut graph: DiGraph<String, ()> = DiGraph::new();
    let mut index: BTreeMap<String, NodeIndex> = BTreeMap::new();
    for m in top_modules() {
        index.insert(m.clone(), graph.add_node(m));
    }
    for (from, to) in edges.keys() {
        graph.add_edge(index[from], index[to], ());
    }
    if toposort(&graph, None).is_ok() {
        return;
    }
    let mut report = Vec::new();
    for scc in kosaraju_scc(&graph) {
        if scc.len() < 2 {
            continue;
        }
        let names: Vec<&String> = scc.iter().map(|n| &graph[*n]).collect();
        report.push(format!("cycle among {names:?}:"));
        for ((from, to), at) in &edges {
            if names.contains(&from) && names.contains(&to) {
                report.push(format!("  {from} -> {to} ({at})"));
            }
        }
    }
    panic!(
        "top-level modules depend on each other in a cycle:\n{}",
        report.join("\n")
    );
}
