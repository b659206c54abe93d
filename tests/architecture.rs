//! The one-way module rule of docs/ARCHITECTURE.md, checked on the source text.
//!
//! Every `src/**/*.rs` file is read and each path into the crate it names is collected as an edge
//! from its module to the module it names: `use crate::a::{b, c::d}`, inline `crate::a::f()`,
//! `super::x` / `self::x`, and (in a folder's `mod.rs`) `use child::…`. A plain text scan: comments
//! are dropped, and a path counts whether it is a `use` or an expression. Then:
//!
//! - no two files may use each other (a module and its own `mod.rs` parent excepted: a parent
//!   declares and re-exports its children, and the children use its shared types);
//! - no cycle among the top-level modules;
//! - every edge between two top-level modules must be in `ALLOWED` below.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Which top-level modules each top-level module may use, and why (docs/ARCHITECTURE.md).
/// Leaf helpers (`sanitize`, `local_file`, `timefmt`, `process`, `exit`) use nothing of the crate
/// but each other.
const ALLOWED: &[(&str, &[&str])] = &[
    // Front ends: drive a job through setup and runner, read the store through history, and
    // show fal's errors and the model's fields. `cli` is the binary's entry, so it may start the
    // studio (`kontext` with no command) and ask `tui::graphics` for `doctor`; the studio never
    // uses `cli` (exit codes live in the leaf `exit`).
    (
        "cli",
        &[
            "tui",
            "setup",
            "runner",
            "history",
            "fal",
            "model",
            "config",
            "emulator",
            "exit",
            "sanitize",
            "local_file",
            "timefmt",
            "process",
        ],
    ),
    (
        "tui",
        &[
            "setup",
            "runner",
            "history",
            "fal",
            "model",
            "config",
            "exit",
            "sanitize",
            "local_file",
            "timefmt",
            "process",
        ],
    ),
    // setup decides whom to talk to: fal with a key, or the built-in emulator; checks directories
    // and the history's integrity for every command.
    ("setup", &["config", "fal", "emulator", "history", "model", "runner", "sanitize", "local_file", "process"]),
    ("config", &["fal", "model", "sanitize", "local_file", "process"]),
    // runner: one job over fal, written through its own JobJournal hook (history implements it).
    ("runner", &["fal", "model", "sanitize", "local_file", "timefmt", "process"]),
    // history: the durable store; implements runner's JobJournal hook and resumes jobs.
    ("history", &["runner", "fal", "model", "sanitize", "local_file", "timefmt", "process"]),
    // fal: the queue protocol; knows the model's types, nothing of files, history or terminals.
    ("fal", &["model", "sanitize"]),
    // model: the endpoint's schema, no I/O.
    ("model", &["sanitize"]),
    // emulator: a stand-alone fal look-alike; it shares no code with `fal` (it speaks HTTP).
    // It validates, bills and describes endpoints from the same schema data as the client
    // (`model::schema`, `model::cost`), so its 422s and bills cannot drift from them.
    ("emulator", &["model", "sanitize", "local_file", "timefmt"]),
    ("sanitize", &[]),
    ("local_file", &[]),
    ("timefmt", &[]),
    ("process", &[]),
    ("exit", &[]),
];

/// Known pairs still to break (issue 8); each entry is a debt, not a permission. Empty now.
const KNOWN_PAIRS: &[&str] = &[];
/// Top-level edges still to break, with `KNOWN_PAIRS`.
const KNOWN_TOP: &[&str] = &[];

type Module = Vec<String>;

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `src/a/b.rs` → `[a, b]`, `src/a/mod.rs` → `[a]`, `src/lib.rs` → `[]`.
fn module_of(path: &Path) -> Module {
    let rel = path.strip_prefix(src_dir()).expect("under src");
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    let last = parts.pop().expect("file name");
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" && stem != "lib" {
        parts.push(stem.to_string());
    }
    parts
}

/// The source without `//` comments (doc comments included) and without string literals' text.
fn code_of(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let mut in_str = false;
        let mut prev = ' ';
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            if in_str {
                if c == '"' && prev != '\\' {
                    in_str = false;
                    out.push('"');
                }
                prev = if prev == '\\' && c == '\\' { ' ' } else { c };
                continue;
            }
            if c == '/' && chars.peek() == Some(&'/') {
                break;
            }
            if c == '"' && prev != '\'' {
                in_str = true;
            }
            out.push(c);
            prev = c;
        }
        out.push('\n');
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Parses a path from `s` (after its first segment's `::`), expanding `{a, b::{c}}` groups;
/// returns each full path's segments.
fn paths_from(s: &str, prefix: Vec<String>, out: &mut Vec<Vec<String>>) -> usize {
    let bytes: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut segs = prefix;
    loop {
        while i < bytes.len() && bytes[i].is_whitespace() {
            i += 1;
        }
        if i < bytes.len() && bytes[i] == '{' {
            i += 1;
            loop {
                while i < bytes.len() && (bytes[i].is_whitespace() || bytes[i] == ',') {
                    i += 1;
                }
                if i >= bytes.len() {
                    return i;
                }
                if bytes[i] == '}' {
                    return i + 1;
                }
                let rest: String = bytes[i..].iter().collect();
                i += paths_from(&rest, segs.clone(), out);
                // skip a trailing `as name`
                while i < bytes.len() && !matches!(bytes[i], ',' | '}') {
                    i += 1;
                }
            }
        }
        let start = i;
        while i < bytes.len() && is_ident(bytes[i]) {
            i += 1;
        }
        if i > start {
            segs.push(bytes[start..i].iter().collect());
        }
        if i + 1 < bytes.len() && bytes[i] == ':' && bytes[i + 1] == ':' {
            i += 2;
            continue;
        }
        out.push(segs);
        return i;
    }
}

/// The longest known module that `path` (absolute segments) names.
fn resolve(path: &[String], modules: &BTreeSet<Module>) -> Option<Module> {
    (1..=path.len()).rev().map(|n| path[..n].to_vec()).find(|m| modules.contains(m))
}

/// Each module a file's code names.
fn edges_of(module: &Module, code: &str, modules: &BTreeSet<Module>) -> BTreeSet<Module> {
    let mut found = BTreeSet::new();
    let chars: Vec<char> = code.chars().collect();
    let children: BTreeSet<&str> = modules
        .iter()
        .filter(|m| m.len() == module.len() + 1 && m.starts_with(module))
        .map(|m| m.last().unwrap().as_str())
        .collect();
    let mut i = 0;
    while i < chars.len() {
        if !is_ident(chars[i]) || (i > 0 && (is_ident(chars[i - 1]) || chars[i - 1] == ':')) {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && is_ident(chars[i]) {
            i += 1;
        }
        let word: String = chars[start..i].iter().collect();
        if !(i + 1 < chars.len() && chars[i] == ':' && chars[i + 1] == ':') {
            continue;
        }
        // Where the path starts, as absolute segments.
        let base: Option<Module> = match word.as_str() {
            "crate" => Some(Vec::new()),
            "self" => Some(module.clone()),
            "super" => Some(module[..module.len().saturating_sub(1)].to_vec()),
            w if children.contains(w) => {
                let mut m = module.clone();
                m.push(w.to_string());
                Some(m)
            }
            _ => None,
        };
        let Some(mut base) = base else { continue };
        let rest: String = chars[i + 2..].iter().collect();
        // `super::super::x`
        let mut rest = rest.as_str();
        while let Some(r) = rest.strip_prefix("super::") {
            base.pop();
            rest = r;
        }
        let mut paths = Vec::new();
        paths_from(rest, base, &mut paths);
        for p in paths {
            if let Some(m) = resolve(&p, modules)
                && &m != module
            {
                found.insert(m);
            }
        }
    }
    found
}

struct Graph {
    /// module → the modules it names
    edges: BTreeMap<Module, BTreeSet<Module>>,
}

fn graph() -> Graph {
    let mut files = Vec::new();
    rust_files(&src_dir(), &mut files);
    files.retain(|f| f.file_name().is_some_and(|n| n != "main.rs"));
    let modules: BTreeSet<Module> = files.iter().map(|f| module_of(f)).collect();
    let mut edges = BTreeMap::new();
    for f in &files {
        let module = module_of(f);
        let code = code_of(&std::fs::read_to_string(f).expect("read source"));
        edges.insert(module.clone(), edges_of(&module, &code, &modules));
    }
    Graph { edges }
}

fn name(m: &Module) -> String {
    if m.is_empty() { "crate".into() } else { m.join("::") }
}

/// `a` is `b`'s ancestor or the other way round.
fn nested(a: &Module, b: &Module) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

#[test]
fn the_scanner_reads_groups_super_and_inline_paths() {
    let modules: BTreeSet<Module> =
        [vec![], vec!["a"], vec!["a", "b"], vec!["a", "c"], vec!["d"], vec!["d", "e"], vec!["f"]]
            .into_iter()
            .map(|m| m.into_iter().map(String::from).collect())
            .collect();
    let me: Module = vec!["a".into(), "b".into()];
    let code = code_of(
        "use crate::{d::e::{X, Y as Z}, sanitize};\nuse super::c::Thing;\n// crate::f::nothing\nlet s = \"crate::f\";\nfn g() { crate::f::go(); }\n",
    );
    let got: BTreeSet<String> = edges_of(&me, &code, &modules).iter().map(name).collect();
    let want: BTreeSet<String> = ["d::e", "a::c", "f"].into_iter().map(String::from).collect();
    assert_eq!(got, want);
}

#[test]
fn no_two_files_use_each_other() {
    let g = graph();
    let mut pairs = Vec::new();
    for (a, targets) in &g.edges {
        for b in targets {
            if a < b && !nested(a, b) && g.edges.get(b).is_some_and(|t| t.contains(a)) {
                let pair = format!("{} <-> {}", name(a), name(b));
                if !KNOWN_PAIRS.contains(&pair.as_str()) {
                    pairs.push(pair);
                }
            }
        }
    }
    assert!(
        pairs.is_empty(),
        "these modules use each other (docs/ARCHITECTURE.md: one way):\n  {}",
        pairs.join("\n  ")
    );
}

fn top_level_edges(g: &Graph) -> BTreeMap<String, BTreeSet<String>> {
    let mut top: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (a, targets) in &g.edges {
        let Some(ta) = a.first() else { continue };
        for b in targets {
            let Some(tb) = b.first() else { continue };
            if ta != tb && !KNOWN_TOP.contains(&format!("{ta} -> {tb}").as_str()) {
                top.entry(ta.clone()).or_default().insert(tb.clone());
            }
        }
    }
    top
}

#[test]
fn top_level_modules_depend_only_the_documented_way() {
    let g = graph();
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut wrong = Vec::new();
    for (a, targets) in top_level_edges(&g) {
        let Some(ok) = allowed.get(a.as_str()) else {
            wrong.push(format!("{a}: a new top-level module; add it to ALLOWED in tests/architecture.rs"));
            continue;
        };
        for b in targets {
            let edge = format!("{a} -> {b}");
            if !ok.contains(&b.as_str()) && !KNOWN_TOP.contains(&edge.as_str()) {
                wrong.push(edge);
            }
        }
    }
    assert!(wrong.is_empty(), "against the direction of docs/ARCHITECTURE.md:\n  {}", wrong.join("\n  "));
}

#[test]
fn no_cycle_among_top_level_modules() {
    let top = top_level_edges(&graph());
    // Depth-first search for a back edge.
    fn visit(
        n: &str,
        top: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(n.to_string(), 1);
        stack.push(n.to_string());
        for m in top.get(n).into_iter().flatten() {
            match state.get(m.as_str()).copied().unwrap_or(0) {
                1 => {
                    let from = stack.iter().position(|s| s == m).unwrap();
                    let mut cycle = stack[from..].to_vec();
                    cycle.push(m.clone());
                    return Some(cycle);
                }
                0 => {
                    if let Some(c) = visit(m, top, state, stack) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(n.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in top.keys() {
        if state.get(n.as_str()).copied().unwrap_or(0) == 0
            && let Some(c) = visit(n, &top, &mut state, &mut Vec::new())
        {
            panic!("a cycle among top-level modules: {}", c.join(" -> "));
        }
    }
}

/// docs/ARCHITECTURE.md: `model` is the endpoint's schema and does no I/O and no HTTP; files are
/// looked at by `runner` (`check_local_image`, `check_input_file`), given to `Draft::validate_with`.
#[test]
fn model_does_no_io() {
    let mut files = Vec::new();
    rust_files(&src_dir().join("model"), &mut files);
    let mut found = Vec::new();
    for f in files {
        let code = code_of(&std::fs::read_to_string(&f).expect("read source"));
        for word in ["std::fs", "fs::", "File::", "std::io::Read", "reqwest", "tokio", "std::net"] {
            if code.contains(word) {
                found.push(format!("{}: {word}", f.display()));
            }
        }
    }
    assert!(found.is_empty(), "model does I/O:\n  {}", found.join("\n  "));
}

/// docs/ARCHITECTURE.md (the studio): each pane owns its state and talks to the others only
/// through `PaneEvent`s the app routes, so no file of `tui/panes/` names another pane's file,
/// and the shared drawing pieces (`tui/widgets`) and the job store know no pane.
#[test]
fn panes_do_not_reach_into_each_other() {
    let g = graph();
    // The unit tests' harness is no pane.
    let pane = |m: &Module| m.len() == 3 && m[0] == "tui" && m[1] == "panes" && m[2] != "harness";
    let mut wrong = Vec::new();
    for (a, targets) in &g.edges {
        let shared_piece = a == &["tui", "widgets"] || a == &["tui", "job_store"] || a == &["tui", "context"];
        for b in targets {
            if (pane(a) || shared_piece) && pane(b) && a != b {
                wrong.push(format!("{} -> {}", name(a), name(b)));
            }
        }
    }
    assert!(g.edges.keys().filter(|m| pane(m)).count() >= 6, "the panes are where the test looks");
    assert!(wrong.is_empty(), "a pane (or a shared piece) uses a pane's file:\n  {}", wrong.join("\n  "));
}

/// `cargo test --test architecture -- --ignored --nocapture print_edges` lists the graph.
#[test]
#[ignore]
fn print_edges() {
    let g = graph();
    for (a, t) in &g.edges {
        println!("{} -> {}", name(a), t.iter().map(name).collect::<Vec<_>>().join(", "));
    }
    for (a, t) in top_level_edges(&g) {
        println!("TOP {a} -> {}", t.iter().cloned().collect::<Vec<_>>().join(", "));
    }
}
