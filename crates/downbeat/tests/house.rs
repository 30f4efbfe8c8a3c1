//! The house rules of the workspace, checked on its own sources:
//!
//! 1. no production file over [`MAX_FILE_LINES`] lines;
//! 2. no production function over [`MAX_FN_LINES`] lines;
//! 3. no cycle in the module import graph of a crate, except among the modules listed in
//!    [`CYCLE_EXEMPT`] (the planner of downbeat-core, whose parts are written as one piece).
//!
//! Production code is every `crates/*/src/**/*.rs` outside `src/bin/`, each file up to its first
//! `#[cfg(test)]` module; a file declared by `#[cfg(test)] mod name;` is left out whole. The
//! checks read text, not a syntax tree, and rely on the layout `cargo fmt` gives:
//!
//! - comments, string and character literals are blanked first (lines are kept);
//! - a function runs from the line of its `fn` item to the line of the brace that closes its
//!   body (braces counted on the blanked text); a `fn` line ending in `;` before any `{` is a
//!   declaration without a body and is not counted; nested functions count in their parent too;
//! - a file's module depends on every module it names by path: `crate::a::b`, `super::…`,
//!   `self::…`, `use crate::{a, b::c}` groups, and `child::…` for its own child modules. A path
//!   depends on the longest module that prefixes it, so `crate::Error` re-exported from the
//!   crate root is a dependency on the root. `src/main.rs` (a separate binary crate) and
//!   modules written inline in a file are not told apart from their file.
//!
//! Violations that exist today and are being removed are listed in [`KNOWN_EXCEPTIONS`]; an
//! entry that no longer matches a violation fails the test as well, so that the list only
//! shrinks.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Longest production file, in lines.
const MAX_FILE_LINES: usize = 1_200;
/// Longest production function, in lines.
const MAX_FN_LINES: usize = 150;
/// (crate directory, module) whose submodules may depend on one another in a cycle.
const CYCLE_EXEMPT: &[(&str, &str)] = &[("downbeat-core", "planner")];

/// Violations known today and being worked on, by the key the failure message prints.
const KNOWN_EXCEPTIONS: &[&str] = &[
    "file crates/downbeat-store/src/contract.rs",
    "file crates/downbeat-store/src/postgres.rs",
    "file crates/downbeat-store/src/sqlite.rs",
    "fn crates/downbeat-store/src/sqlite.rs::apply_plan",
    "fn crates/downbeat-store/src/sqlite.rs::commit_batch",
    "cycle crates/downbeat-engine: executor, executor::http",
    "cycle crates/downbeat-store: crate, effects, holds, postgres, shared, sqlite, transfer",
];

/// One source file, as the checks see it.
struct Source {
    /// Path from the workspace root, with `/` separators.
    path: String,
    /// The crate's directory name under `crates/`.
    krate: String,
    /// Module path in the crate (empty for the root); `None` for `src/main.rs`.
    module: Option<Vec<String>>,
    /// Lines up to the first `#[cfg(test)]` module, with comments and literals blanked.
    lines: Vec<String>,
    /// Child modules declared as `#[cfg(test)] mod name;` (their files are test code).
    test_children: Vec<String>,
}

/// A broken rule, under the key [`KNOWN_EXCEPTIONS`] uses.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Violation {
    key: String,
    detail: String,
}

impl Source {
    /// Reads `text` as the file at `path` (from the workspace root, e.g.
    /// `crates/downbeat-core/src/plan.rs`).
    fn new(path: &str, text: &str) -> Self {
        let mut parts = path.split('/');
        let krate = parts.nth(1).unwrap_or_default().to_owned();
        let in_src: Vec<&str> = path
            .split("/src/")
            .nth(1)
            .unwrap_or(path)
            .split('/')
            .collect();
        let module = module_path(&in_src);
        let blank = blank_out(text);
        let all: Vec<&str> = blank.lines().collect();
        let mut lines = Vec::new();
        let mut test_children = Vec::new();
        let mut i = 0;
        while i < all.len() {
            if all[i].trim() == "#[cfg(test)]" {
                let mut j = i + 1;
                while j < all.len() && all[j].trim_start().starts_with("#[") {
                    j += 1;
                }
                if let Some(name) = all.get(j).and_then(|l| mod_item(l)) {
                    if all[j].trim_end().ends_with(';') {
                        test_children.push(name);
                    } else {
                        break;
                    }
                }
            }
            lines.push(all[i].to_owned());
            i += 1;
        }
        Self {
            path: path.to_owned(),
            krate,
            module,
            lines,
            test_children,
        }
    }
}

/// The module a file under `src/` defines: `lib.rs` is the root, `a/mod.rs` and `a.rs` are
/// `a`; `main.rs` is `None` (a binary crate of its own).
fn module_path(in_src: &[&str]) -> Option<Vec<String>> {
    let (last, dirs) = in_src.split_last()?;
    let mut module: Vec<String> = dirs.iter().map(|d| (*d).to_owned()).collect();
    match (*last, dirs.is_empty()) {
        ("main.rs", true) => return None,
        ("lib.rs", true) | ("mod.rs", _) => {}
        (file, _) => module.push(file.trim_end_matches(".rs").to_owned()),
    }
    Some(module)
}

/// The name declared by a `mod` item line (`pub(crate) mod name {` / `mod name;`).
fn mod_item(line: &str) -> Option<String> {
    let rest = strip_visibility(line.trim_start());
    let rest = rest.strip_prefix("mod ")?;
    let name: String = rest.chars().take_while(|&c| is_ident(c)).collect();
    (!name.is_empty()).then_some(name)
}

fn strip_visibility(s: &str) -> &str {
    if let Some(rest) = s.strip_prefix("pub(") {
        return rest.split_once(") ").map_or(rest, |(_, r)| r);
    }
    s.strip_prefix("pub ").unwrap_or(s)
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// `text` with comments and the contents of string and character literals replaced by spaces;
/// line breaks are kept so that line numbers stay right.
fn blank_out(text: &str) -> String {
    let b: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let keep = |out: &mut String, c: char| out.push(if c == '\n' { '\n' } else { ' ' });
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < b.len() && b[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == '/' && b.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if b[i] == '*' && b.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    keep(&mut out, b[i]);
                    i += 1;
                }
            }
        } else if c == 'r'
            && (next == Some('"') || next == Some('#'))
            && (i == 0
                || !is_ident(b[i - 1])
                || (b[i - 1] == 'b' && (i < 2 || !is_ident(b[i - 2]))))
        {
            // Raw string: r"…", r#"…"#.
            let mut j = i + 1;
            while b.get(j) == Some(&'#') {
                j += 1;
            }
            if b.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            let hashes = j - i - 1;
            out.push_str(&" ".repeat(j - i));
            out.push('"');
            i = j + 1;
            while i < b.len() {
                if b[i] == '"' && (1..=hashes).all(|k| b.get(i + k) == Some(&'#')) {
                    out.push('"');
                    out.push_str(&" ".repeat(hashes));
                    i += 1 + hashes;
                    break;
                }
                keep(&mut out, b[i]);
                i += 1;
            }
        } else if c == '"' {
            out.push('"');
            i += 1;
            while i < b.len() && b[i] != '"' {
                if b[i] == '\\' {
                    keep(&mut out, b[i]);
                    i += 1;
                }
                if i < b.len() {
                    keep(&mut out, b[i]);
                    i += 1;
                }
            }
            out.push('"');
            i += 1;
        } else if c == '\'' && (next == Some('\\') || b.get(i + 2) == Some(&'\'')) {
            // Character literal ('x', '\n', '\u{1F600}'); a lifetime has no closing quote.
            out.push('\'');
            i += 1;
            while i < b.len() && b[i] != '\'' {
                if b[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < b.len() {
                    keep(&mut out, b[i]);
                    i += 1;
                }
            }
            out.push('\'');
            i += 1;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// The functions of `lines` (blanked), as (line index, name, length in lines).
fn functions(lines: &[String]) -> Vec<(usize, String, usize)> {
    let mut found = Vec::new();
    for (start, line) in lines.iter().enumerate() {
        let Some(name) = fn_item(line) else {
            continue;
        };
        let (mut braces, mut nesting) = (0i64, 0i64);
        let mut opened = false;
        'scan: for (end, l) in lines.iter().enumerate().skip(start) {
            for c in l.chars() {
                match c {
                    '(' | '[' => nesting += 1,
                    ')' | ']' => nesting -= 1,
                    ';' if !opened && nesting == 0 => break 'scan,
                    '{' => {
                        braces += 1;
                        opened = true;
                    }
                    '}' => {
                        braces -= 1;
                        if opened && braces == 0 {
                            found.push((start, name, end - start + 1));
                            break 'scan;
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    found
}

/// The name of the function a line starts, if it starts one.
fn fn_item(line: &str) -> Option<String> {
    let mut rest = strip_visibility(line.trim_start());
    loop {
        let before = rest;
        for q in ["const ", "async ", "unsafe ", "default "] {
            rest = rest.strip_prefix(q).unwrap_or(rest);
        }
        if let Some(r) = rest.strip_prefix("extern ") {
            rest = r.trim_start();
            if let Some(r) = rest.strip_prefix('"') {
                rest = r.split_once('"').map_or(r, |(_, r)| r).trim_start();
            }
        }
        if rest == before {
            break;
        }
    }
    let rest = rest.strip_prefix("fn ")?;
    let name: String = rest.chars().take_while(|&c| is_ident(c)).collect();
    (!name.is_empty()).then_some(name)
}

/// Every path named in `lines` (blanked), as (line index, segments); `use` groups are
/// expanded (`a::{b, c::d}` gives `a::b` and `a::c::d`), a glob ends in `*`.
fn paths(lines: &[String]) -> Vec<(usize, Vec<String>)> {
    let mut found = Vec::new();
    let text = lines.join("\n");
    let b: Vec<char> = text.chars().collect();
    let mut line = 0;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let starts = (c.is_alphabetic() || c == '_')
            && (i == 0 || !(is_ident(b[i - 1]) || b[i - 1] == '$' || b[i - 1] == ':'));
        if starts {
            let mut out = Vec::new();
            let end = path_tree(&b, i, &[], &mut out);
            found.extend(out.into_iter().filter(|p| p.len() > 1).map(|p| (line, p)));
            line += b[i..end].iter().filter(|&&c| c == '\n').count();
            i = end.max(i + 1);
        } else {
            if c == '\n' {
                line += 1;
            }
            i += 1;
        }
    }
    found
}

/// Reads the path (or `use` tree) starting at `b[i]` under `prefix` into `out`; returns the
/// index after it.
fn path_tree(b: &[char], mut i: usize, prefix: &[String], out: &mut Vec<Vec<String>>) -> usize {
    let mut path = prefix.to_vec();
    loop {
        let start = i;
        while i < b.len() && is_ident(b[i]) {
            i += 1;
        }
        if i == start {
            break;
        }
        path.push(b[start..i].iter().collect());
        if !(b.get(i) == Some(&':') && b.get(i + 1) == Some(&':')) {
            break;
        }
        i += 2;
        while b.get(i).is_some_and(|c| c.is_whitespace()) {
            i += 1;
        }
        match b.get(i) {
            Some('*') => {
                path.push("*".into());
                i += 1;
                break;
            }
            Some('{') => {
                i += 1;
                loop {
                    while b.get(i).is_some_and(|&c| c.is_whitespace() || c == ',') {
                        i += 1;
                    }
                    match b.get(i) {
                        None => return i,
                        Some('}') => return i + 1,
                        Some(_) => {
                            let before = i;
                            i = path_tree(b, i, &path, out);
                            // Skip `as name` and anything else up to the next item.
                            while b.get(i).is_some_and(|&c| c != ',' && c != '}' && c != '{') {
                                i += 1;
                            }
                            if i == before {
                                i += 1;
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    out.push(path);
    i
}

/// The module that `path`, named in module `from`, depends on, if it names one of `modules`.
fn resolve(
    from: &[String],
    path: &[String],
    modules: &BTreeSet<Vec<String>>,
) -> Option<Vec<String>> {
    let path: Vec<&String> = path.iter().take_while(|s| s.as_str() != "*").collect();
    let (mut full, rest): (Vec<String>, &[&String]) = match path.first()?.as_str() {
        "crate" => (Vec::new(), &path[1..]),
        "self" => (from.to_vec(), &path[1..]),
        "super" => {
            let mut base = from.to_vec();
            let supers = path.iter().take_while(|s| s.as_str() == "super").count();
            for _ in 0..supers {
                base.pop()?;
            }
            (base, &path[supers..])
        }
        child => {
            let mut m = from.to_vec();
            m.push(child.to_owned());
            if !modules.contains(&m) {
                return None;
            }
            (from.to_vec(), &path[..])
        }
    };
    let base = full.len();
    full.extend(rest.iter().map(|s| (*s).clone()));
    (base..=full.len())
        .rev()
        .map(|k| full[..k].to_vec())
        .find(|m| modules.contains(m))
}

fn module_name(m: &[String]) -> String {
    if m.is_empty() {
        "crate".into()
    } else {
        m.join("::")
    }
}

/// Checks the house rules on `sources` (one workspace); returns every violation.
fn check(sources: &[Source]) -> Vec<Violation> {
    let test_files: BTreeSet<(String, Vec<String>)> = sources
        .iter()
        .filter_map(|s| Some((s, s.module.as_ref()?)))
        .flat_map(|(s, m)| {
            s.test_children.iter().map(move |c| {
                let mut m = m.clone();
                m.push(c.clone());
                (s.krate.clone(), m)
            })
        })
        .collect();
    let sources: Vec<&Source> = sources
        .iter()
        .filter(|s| {
            s.module
                .as_ref()
                .is_none_or(|m| !test_files.contains(&(s.krate.clone(), m.clone())))
        })
        .collect();
    let mut found = Vec::new();
    for s in &sources {
        if s.lines.len() > MAX_FILE_LINES {
            found.push(Violation {
                key: format!("file {}", s.path),
                detail: format!(
                    "{}:1: {} production lines (limit {MAX_FILE_LINES})",
                    s.path,
                    s.lines.len()
                ),
            });
        }
        for (line, name, len) in functions(&s.lines) {
            if len > MAX_FN_LINES {
                found.push(Violation {
                    key: format!("fn {}::{name}", s.path),
                    detail: format!(
                        "{}:{}: fn {name} is {len} lines (limit {MAX_FN_LINES})",
                        s.path,
                        line + 1
                    ),
                });
            }
        }
    }
    let crates: BTreeSet<&str> = sources.iter().map(|s| s.krate.as_str()).collect();
    for krate in crates {
        let files: Vec<&Source> = sources
            .iter()
            .copied()
            .filter(|s| s.krate == krate)
            .collect();
        found.extend(crate_cycles(krate, &files));
    }
    found
}

/// Module → module it depends on → where (path:line) it first does.
type Graph = BTreeMap<Vec<String>, BTreeMap<Vec<String>, String>>;

/// The import cycles among the modules of one crate.
fn crate_cycles(krate: &str, files: &[&Source]) -> Vec<Violation> {
    let mut modules: BTreeSet<Vec<String>> =
        files.iter().filter_map(|s| s.module.clone()).collect();
    modules.insert(Vec::new());
    let exempt = |m: &[String]| {
        CYCLE_EXEMPT
            .iter()
            .any(|&(k, e)| k == krate && m.first().is_some_and(|f| f == e))
    };
    let mut graph: Graph = modules
        .iter()
        .map(|m| (m.clone(), BTreeMap::new()))
        .collect();
    for s in files {
        let Some(from) = &s.module else { continue };
        for (line, path) in paths(&s.lines) {
            let Some(to) = resolve(from, &path, &modules) else {
                continue;
            };
            if &to == from || (exempt(from) && exempt(&to)) {
                continue;
            }
            let at = format!("{}:{}", s.path, line + 1);
            graph
                .entry(from.clone())
                .or_default()
                .entry(to)
                .or_insert(at);
        }
    }
    strongly_connected(&graph)
        .into_iter()
        .filter(|c| c.len() > 1)
        .map(|members| {
            let names: Vec<String> = members.iter().map(|m| module_name(m)).collect();
            let mut detail = format!("crates/{krate}: import cycle among {}:", names.join(", "));
            for m in &members {
                for (to, at) in &graph[m] {
                    if members.contains(to) {
                        let _ = write!(
                            detail,
                            "\n      {} -> {} ({at})",
                            module_name(m),
                            module_name(to)
                        );
                    }
                }
            }
            Violation {
                key: format!("cycle crates/{krate}: {}", names.join(", ")),
                detail,
            }
        })
        .collect()
}

/// Tarjan's algorithm; each component's members sorted.
fn strongly_connected(graph: &Graph) -> Vec<Vec<Vec<String>>> {
    struct State<'g> {
        graph: &'g Graph,
        index: BTreeMap<&'g Vec<String>, usize>,
        low: BTreeMap<&'g Vec<String>, usize>,
        stack: Vec<&'g Vec<String>>,
        on_stack: BTreeSet<&'g Vec<String>>,
        out: Vec<Vec<Vec<String>>>,
    }
    fn visit<'g>(st: &mut State<'g>, v: &'g Vec<String>) {
        let n = st.index.len();
        st.index.insert(v, n);
        st.low.insert(v, n);
        st.stack.push(v);
        st.on_stack.insert(v);
        for w in st.graph[v].keys() {
            if !st.index.contains_key(w) {
                visit(st, w);
                let lw = st.low[w];
                let lv = st.low.get_mut(v).expect("visited");
                *lv = (*lv).min(lw);
            } else if st.on_stack.contains(w) {
                let iw = st.index[w];
                let lv = st.low.get_mut(v).expect("visited");
                *lv = (*lv).min(iw);
            }
        }
        if st.low[v] == st.index[v] {
            let mut component = Vec::new();
            while let Some(w) = st.stack.pop() {
                st.on_stack.remove(w);
                component.push(w.clone());
                if w == v {
                    break;
                }
            }
            component.sort();
            st.out.push(component);
        }
    }
    let mut st = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !st.index.contains_key(v) {
            visit(&mut st, v);
        }
    }
    st.out.sort();
    st.out
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn workspace_sources() -> Vec<Source> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let root = root.canonicalize().expect("workspace root");
    let mut files = Vec::new();
    for krate in std::fs::read_dir(root.join("crates"))
        .expect("crates/")
        .flatten()
    {
        let src = krate.path().join("src");
        let mut found = Vec::new();
        rust_files(&src, &mut found);
        files.extend(
            found
                .into_iter()
                .filter(|p| !p.starts_with(src.join("bin"))),
        );
    }
    files.sort();
    files
        .iter()
        .map(|p| {
            let rel = p.strip_prefix(&root).expect("under the root");
            let rel = rel.to_string_lossy().replace('\\', "/");
            let text = std::fs::read_to_string(p).expect("readable source");
            Source::new(&rel, &text)
        })
        .collect()
}

#[test]
fn house_rules_hold() {
    let found = check(&workspace_sources());
    let keys: BTreeSet<&str> = found.iter().map(|v| v.key.as_str()).collect();
    let known: BTreeSet<&str> = KNOWN_EXCEPTIONS.iter().copied().collect();
    let mut report = String::new();
    let new: Vec<&Violation> = found
        .iter()
        .filter(|v| !known.contains(v.key.as_str()))
        .collect();
    if !new.is_empty() {
        let _ = writeln!(report, "house rules broken:");
        for v in &new {
            let _ = writeln!(report, "  - {}\n    key: \"{}\"", v.detail, v.key);
        }
        let _ = writeln!(
            report,
            "fix: split long files into modules and long functions into named steps; break an \
             import cycle by moving what both sides need into a module of its own (or down to \
             the lower side). Only a violation already being removed belongs in \
             KNOWN_EXCEPTIONS in crates/downbeat/tests/house.rs."
        );
    }
    let stale: Vec<&&str> = known.iter().filter(|k| !keys.contains(**k)).collect();
    if !stale.is_empty() {
        let _ = writeln!(report, "KNOWN_EXCEPTIONS lists violations that are gone:");
        for k in stale {
            let _ = writeln!(report, "  - \"{k}\"");
        }
        let _ = writeln!(
            report,
            "fix: remove them from KNOWN_EXCEPTIONS in crates/downbeat/tests/house.rs."
        );
    }
    let known_still: Vec<&Violation> = found
        .iter()
        .filter(|v| known.contains(v.key.as_str()))
        .collect();
    for v in known_still {
        eprintln!("known exception: {}", v.detail);
    }
    assert!(report.is_empty(), "{report}");
}

#[test]
fn checker_finds_long_functions_files_and_cycles() {
    let long_body = "    let x = 1;\n".repeat(MAX_FN_LINES);
    let lib = format!(
        "//! Root.\n\nmod a;\nmod b;\nmod c;\n\npub fn short() -> u32 {{ 1 }}\n\n\
         pub(crate) fn long(\n    v: [u8; 2],\n) -> u32 {{\n{long_body}    \"}}\".len() as u32\n}}\n\n\
         trait T {{\n    fn declared(&self) -> u32;\n}}\n\n\
         #[cfg(test)]\nmod tests {{\n    fn in_tests() {{\n{long_body}    }}\n}}\n"
    );
    let a = "use crate::{b::Thing, c};\n\npub struct A;\n";
    let b = "pub struct Thing;\n\nfn f() -> super::a::A {\n    crate::a::A\n}\n";
    let c = "// crate::a is named in a comment only.\npub const S: &str = \"super::b\";\n";
    let big = "const X: u8 = 0;\n".repeat(MAX_FILE_LINES + 1);
    let sources = [
        Source::new("crates/demo/src/lib.rs", &lib),
        Source::new("crates/demo/src/a.rs", a),
        Source::new("crates/demo/src/b.rs", b),
        Source::new("crates/demo/src/c.rs", c),
        Source::new("crates/demo/src/big.rs", &big),
    ];
    let found = check(&sources);
    let keys: Vec<&str> = found.iter().map(|v| v.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "fn crates/demo/src/lib.rs::long",
            "file crates/demo/src/big.rs",
            "cycle crates/demo: a, b",
        ],
        "{found:#?}"
    );
    let long = &found[0].detail;
    assert!(
        long.starts_with("crates/demo/src/lib.rs:9: fn long is 155 lines"),
        "{long}"
    );
    assert!(found[2].detail.contains("a -> b (crates/demo/src/a.rs:1)"));
    assert!(found[2].detail.contains("b -> a (crates/demo/src/b.rs:3)"));

    // The planner of downbeat-core may form cycles; a module of its own test code is left out.
    let planner = [
        Source::new(
            "crates/downbeat-core/src/planner/mod.rs",
            "mod x;\n#[cfg(test)]\nmod tests;\npub use x::X;\n",
        ),
        Source::new(
            "crates/downbeat-core/src/planner/x.rs",
            "pub struct X(super::Y);\n",
        ),
        Source::new(
            "crates/downbeat-core/src/planner/tests.rs",
            &format!("fn t() {{\n{long_body}}}\n"),
        ),
    ];
    assert_eq!(check(&planner), []);
}
