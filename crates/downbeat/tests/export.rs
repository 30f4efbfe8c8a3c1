//! `downbeat export` and `downbeat import`: a project's work as JSON Lines and back, ids kept,
//! byte for byte, on both backends.

mod common;

use common::Env;

const PLAN: &str = r#"
[plan]
name = "demo"
[[objectives]]
title = "Ship it"
tasks = ["feature"]
[[tasks]]
key = "feature"
title = "Feature"
role = "architect"
[[tasks]]
key = "design"
parent = "feature"
title = "Design"
role = "architect"
acceptance = ["written down", "with \"quotes\" and ünïcode"]
files = ["docs/design.md"]
[[tasks]]
key = "build"
parent = "feature"
title = "Build"
role = "implementer"
depends_on = ["design"]
related = ["docs"]
priority = "high"
effort = 3
tags = ["backend"]
timeout = "30m"
max_attempts = 2
[[tasks]]
key = "check"
parent = "feature"
title = "Check"
depends_on = ["build"]
command = "make test"
[[tasks]]
key = "docs"
title = "Docs"
role = "documenter"
discovered_from = ["design"]
[[tasks]]
key = "old"
title = "Old"
[[decisions]]
text = "Design first"
why = "it decides the files"
task = "design"
[[insights]]
text = "make test is the suite"
task = "check"
"#;

/// A project with a bit of everything: a plan, a session, finished, cancelled and running
/// work, a superseding decision.
fn busy_project(e: &Env) {
    let plan = e.write("plan.toml", PLAN);
    e.ok(&["plan", "apply", plan.to_str().unwrap()]);
    e.ok(&["session", "start", "week 1"]);
    e.ok(&["start", "design"]);
    e.ok(&["done", "design", "--result", "designed"]);
    e.ok(&["cancel", "old"]);
    e.ok(&["start", "build"]);
    e.ok(&["insight", "add", "builds are slow", "--task", "build"]);
    e.ok(&[
        "decision",
        "add",
        "Design with a sketch",
        "--why",
        "faster",
        "--supersedes",
        "d1",
    ]);
}

fn fresh() -> Env {
    Env::builder().fixed_clock().actor("tester").init().build()
}

#[test]
fn export_import_export_is_byte_identical() {
    let a = fresh();
    busy_project(&a);
    let first = a.ok(&["export"]);
    let lines: Vec<&str> = first.lines().collect();
    assert!(
        lines[0].starts_with(r#"{"downbeat":"export","version":1,"schema":"#),
        "{first}"
    );
    assert!(first.contains(r#""tags":["backend"]"#), "{first}");
    assert!(
        first.contains(r#""key":"plan:demo""#),
        "the plan's record: {first}"
    );
    assert!(
        first.contains(r#""label":"week 1""#),
        "the session: {first}"
    );
    assert!(first.contains(r#""superseded_by":2"#), "{first}");
    assert!(
        !first.contains("\"table\":\"events\""),
        "the log stays behind"
    );
    // Stable: the same project exports the same bytes.
    assert_eq!(a.ok(&["export", "--format", "jsonl"]), first);
    let file = a.write("work.jsonl", &first);

    let b = fresh();
    let out = b.json(&["import", file.to_str().unwrap()]);
    assert_eq!(out["tables"]["tasks"], 6, "{out}");
    assert_eq!(out["tables"]["decisions"], 2, "{out}");
    assert_eq!(b.ok(&["export"]), first);
    // Ids, statuses and links are the project's own.
    let (sa, sb) = (a.json(&["show", "build"]), b.json(&["show", "build"]));
    for k in [
        "id", "title", "state", "priority", "effort", "edges", "exec",
    ] {
        assert_eq!(sa[k], sb[k], "{k}");
    }
    assert_eq!(b.json(&["show", "design"])["result"], "designed");
    // Counters went along: the next task gets the same id in both.
    let na = a.ok(&["add", "Next"]);
    let nb = b.ok(&["add", "Next"]);
    assert_eq!(na, nb);
    // The living plan goes on from its record.
    b.write("plan.toml", PLAN);
    let dry = b.json(&["plan", "apply", "--dry-run", "plan.toml"]);
    assert!(dry["tasks"].as_array().unwrap().is_empty(), "{dry}");
    assert_eq!(dry, a.json(&["plan", "apply", "--dry-run", "plan.toml"]));
}

#[test]
fn import_refuses_a_project_that_holds_anything_and_bad_files() {
    let a = fresh();
    busy_project(&a);
    let file = a.write("work.jsonl", &a.ok(&["export"]));
    let f = file.to_str().unwrap();
    // Into itself: not empty, nothing written.
    let err = a.fails(&["import", f], 5);
    assert!(
        err.contains("not empty") && err.contains("downbeat init"),
        "{err}"
    );
    let b = fresh();
    let text = std::fs::read_to_string(&file).unwrap();
    let bad = b.write(
        "bad.jsonl",
        &text.replacen("\"seq\":1,", "\"seq\":\"one\",", 1),
    );
    let err = b.fails(&["import", bad.to_str().unwrap()], 4);
    assert!(
        err.contains("line ") && err.contains("`tasks.seq` must be an integer"),
        "{err}"
    );
    let other = b.write("other.jsonl", "{\"tasks\": []}\n");
    let err = b.fails(&["import", other.to_str().unwrap()], 4);
    assert!(err.contains("not the header of a downbeat export"), "{err}");
    let newer = b.write(
        "newer.jsonl",
        &text.replacen("\"schema\":", "\"schema\":9", 1),
    );
    let err = b.fails(&["import", newer.to_str().unwrap()], 4);
    assert!(err.contains("schema version 9"), "{err}");
    b.fails(&["import", "missing.jsonl"], 3);
    // Nothing was written by any of these.
    assert!(b.titles().is_empty());
    // From standard input.
    let o = b
        .cmd(&["import", "-"])
        .write_stdin(text.clone())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    insta::assert_snapshot!(
        "import_rows_per_table",
        String::from_utf8(o.stdout).unwrap()
    );
    assert_eq!(b.ok(&["export"]), text);
}

#[test]
fn both_backends_export_the_same_file() {
    let a = fresh();
    busy_project(&a);
    let first = a.ok(&["export"]);
    let file = a.write("work.jsonl", &first);
    let pg = Env::builder()
        .fixed_clock()
        .actor("tester")
        .postgres("export")
        .init()
        .build();
    pg.ok(&["import", file.to_str().unwrap()]);
    assert_eq!(pg.ok(&["export"]), first);
}
