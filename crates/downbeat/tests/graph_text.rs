//! `graph --format dot|mermaid`: statuses, the critical path, containers, escaping.

mod common;

use common::{Env, example};

fn project() -> Env {
    let e = Env::builder().fixed_clock().init().build();
    e.ok(&[
        "plan",
        "apply",
        example("rate-limiting.toml").to_str().unwrap(),
    ]);
    e.ok(&["done", "design"]);
    e
}

#[test]
fn dot_marks_statuses_and_the_critical_path_and_attaches_container_edges_to_clusters() {
    let e = project();
    let dot = e.ok(&["graph", "--format", "dot"]);
    insta::assert_snapshot!("graph_dot", dot);
    // No edge names a container: it would draw a stray box beside its cluster.
    let container = e.json(&["show", "rate-limiting"])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for line in dot.lines().filter(|l| l.contains("->")) {
        assert!(!line.contains(&format!("\"{container}\" ->")), "{line}");
        assert!(!line.contains(&format!("-> \"{container}\"")), "{line}");
    }
    assert!(
        dot.contains(&format!("ltail=\"cluster_{container}\"")),
        "{dot}"
    );
}

#[test]
fn mermaid_marks_statuses_and_escapes_what_it_would_read_as_markup() {
    let e = project();
    e.ok(&["add", "Fix <b> & \"quotes\" #1", "--key", "odd"]);
    let m = e.ok(&["graph", "--format", "mermaid"]);
    let id = e.json(&["show", "odd"])["id"].as_str().unwrap().to_owned();
    assert!(
        m.contains(&format!(
            "{id}[\"{id} Fix #lt;b#gt; #amp; #quot;quotes#quot; #35;1 · ready\"]"
        )),
        "{m}"
    );
    assert!(m.contains("classDef st_completed fill:#d1fae5"), "{m}");
    assert!(m.contains("classDef critical stroke:#c2185b"), "{m}");
    assert!(m.contains("linkStyle "), "{m}");
}

#[test]
fn graphviz_reads_the_dot_output() {
    let dot = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("dot"))
            .find(|d| d.is_file())
    });
    let Some(dot) = dot else {
        assert!(
            std::env::var_os("DOWNBEAT_REQUIRE_GRAPHVIZ").is_none(),
            "graphviz is required (apt-get install graphviz)"
        );
        return eprintln!("skipped: graphviz is not installed");
    };
    let e = project();
    e.ok(&["add", "Fix <b> & \"quotes\" #1 \\ done"]);
    let text = e.ok(&["graph", "--format", "dot"]);
    let mut child = std::process::Command::new(dot)
        .arg("-Tsvg")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && err.trim().is_empty(),
        "{err}\n{text}"
    );
    let svg = String::from_utf8_lossy(&out.stdout);
    assert!(
        svg.contains("Fix &lt;b&gt; &amp; &quot;quotes&quot; #1 \\ done"),
        "{svg}"
    );
}
