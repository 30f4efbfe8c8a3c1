//! `downbeat import` of other tools' files: Task Master `tasks.json` (tagged and legacy) and
//! beads `issues.jsonl`, samples written from their documented formats
//! (`tests/samples/`), imported into the expected graph with a report of what was not mapped.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::Env;
use serde_json::Value;

fn sample(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/samples")
        .join(name)
        .display()
        .to_string()
}

/// Every task by key: (status, priority, parent key, keys it waits on).
fn graph(e: &Env) -> BTreeMap<String, (String, String, Option<String>, Vec<String>)> {
    let list = e.json(&["list", "--all"]);
    let tasks = list.as_array().unwrap();
    let key_of: BTreeMap<String, String> = tasks
        .iter()
        .map(|t| {
            (
                t["id"].as_str().unwrap().to_owned(),
                t["key"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let mut out = BTreeMap::new();
    for t in tasks {
        let key = t["key"].as_str().unwrap().to_owned();
        let shown = e.json(&["show", &key]);
        let mut deps: Vec<String> = shown["edges"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["to"] == t["id"] && x["kind"] == "blocks")
            .map(|x| key_of[x["from"].as_str().unwrap()].clone())
            .collect();
        deps.sort();
        out.insert(
            key,
            (
                t["status"].as_str().unwrap().to_owned(),
                t["priority"].as_str().unwrap().to_owned(),
                t["parent"].as_str().map(|p| key_of[p].clone()),
                deps,
            ),
        );
    }
    out
}

fn entry(
    status: &str,
    priority: &str,
    parent: Option<&str>,
    deps: &[&str],
) -> (String, String, Option<String>, Vec<String>) {
    (
        status.into(),
        priority.into(),
        parent.map(str::to_owned),
        deps.iter().map(|d| (*d).to_owned()).collect(),
    )
}

#[test]
fn a_tagged_task_master_file_imports_as_a_graph_with_a_report() {
    let e = Env::builder().fixed_clock().init().build();
    let v = e.json(&["import", &sample("taskmaster-tagged.json")]);
    assert_eq!(v["from"], "taskmaster");
    assert_eq!(v["plan"], "taskmaster-master");
    assert_eq!(v["tasks"].as_array().unwrap().len(), 7);
    let r = &v["report"];
    assert_eq!(
        r["unmapped"],
        serde_json::json!(["tm-3: dependency `9` is not in the file: left out"])
    );
    assert_eq!(r["unknown_fields"]["aiModelUsed"], 1, "{r}");
    assert_eq!(r["skipped_fields"]["expansionPrompt"], 1, "{r}");
    let g = graph(&e);
    let want = BTreeMap::from([
        ("tm-1".to_owned(), entry("completed", "high", None, &[])),
        ("tm-2".to_owned(), entry("pending", "high", None, &["tm-1"])),
        (
            "tm-2.1".to_owned(),
            entry("completed", "normal", Some("tm-2"), &[]),
        ),
        (
            "tm-2.2".to_owned(),
            entry("pending", "normal", Some("tm-2"), &["tm-2.1"]),
        ),
        (
            "tm-2.3".to_owned(),
            entry("pending", "normal", Some("tm-2"), &["tm-2.1", "tm-2.2"]),
        ),
        ("tm-3".to_owned(), entry("blocked", "low", None, &["tm-2"])),
        (
            "tm-4".to_owned(),
            entry("cancelled", "normal", None, &["tm-2"]),
        ),
    ]);
    assert_eq!(g, want);
    // Imported again: the same plan, nothing changes.
    let again = e.json(&["import", &sample("taskmaster-tagged.json")]);
    assert_eq!(again["unchanged"], 7, "{again}");
    assert!(again["tasks"].as_array().unwrap().is_empty());
    // The other tag, next to it.
    let b = e.json(&[
        "import",
        &sample("taskmaster-tagged.json"),
        "--tag",
        "feature-billing",
    ]);
    assert_eq!(b["tasks"][0]["key"], "tm-feature-billing-1");
}

#[test]
fn a_legacy_task_master_file_imports_and_a_dry_run_writes_nothing() {
    let e = Env::builder().fixed_clock().init().build();
    let dry = e.json(&["import", &sample("taskmaster-legacy.json"), "--dry-run"]);
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["tasks"].as_array().unwrap().len(), 5);
    assert!(e.json(&["list"]).as_array().unwrap().is_empty());
    let out = e.run(&[
        "import",
        &sample("taskmaster-legacy.json"),
        "--from",
        "taskmaster",
    ]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("status `in-progress` was imported as pending"),
        "{err}"
    );
    let g = graph(&e);
    assert_eq!(
        g["tm-2.2"],
        entry("pending", "normal", Some("tm-2"), &["tm-2.1"])
    );
    assert_eq!(g["tm-3"], entry("pending", "normal", None, &["tm-2"]));
    assert_eq!(g["tm-1"].0, "completed");
}

#[test]
fn a_beads_file_imports_with_parents_edges_and_what_was_left_out() {
    let e = Env::builder().fixed_clock().init().build();
    e.ok(&["add", "Work already here", "--key", "mine"]);
    let v = e.json(&["import", &sample("beads-issues.jsonl")]);
    assert_eq!(v["from"], "beads");
    let g = graph(&e);
    let want = BTreeMap::from([
        ("mine".to_owned(), entry("pending", "normal", None, &[])),
        ("bd-a1b2".to_owned(), entry("pending", "high", None, &[])),
        (
            "bd-a1b2.1".to_owned(),
            entry("completed", "high", Some("bd-a1b2"), &[]),
        ),
        (
            "bd-a1b2.2".to_owned(),
            entry("pending", "critical", Some("bd-a1b2"), &["bd-a1b2.1"]),
        ),
        ("bd-c3d4".to_owned(), entry("blocked", "low", None, &[])),
        ("bd-e5f6".to_owned(), entry("blocked", "low", None, &[])),
    ]);
    assert_eq!(g, want);
    let edges = e.json(&["show", "bd-e5f6"])["edges"].to_string();
    assert!(edges.contains("discovered-from"), "{edges}");
    let r = &v["report"];
    let unmapped = r["unmapped"].to_string();
    for u in [
        "bd-g7h8: deleted in beads (tombstone): not imported",
        "bd-i9j0: a message, not work: not imported",
        "bd-c3d4: blocks dependency on bd-zz99, which is not imported: left out",
    ] {
        assert!(unmapped.contains(u), "{u}: {unmapped}");
    }
    assert_eq!(r["unknown_fields"]["quality_score"], 1, "{r}");
    // The text report names the unknown field as from a newer version.
    let e2 = Env::builder().fixed_clock().init().build();
    let o = e2.run(&["import", &sample("beads-issues.jsonl")]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("fields this reader does not know (a newer version of the tool?), skipped: quality_score (1)"),
        "{err}"
    );
    assert!(err.contains("not mapped (4):"), "{err}");
}

#[test]
fn a_file_of_no_known_kind_is_refused() {
    let e = Env::builder().fixed_clock().init().build();
    e.write("notes.txt", "just some notes\n");
    let err = e.fails(&["import", "notes.txt"], 4);
    assert!(err.contains("cannot tell what notes.txt is"), "{err}");
    let err = e.fails(&["import", "notes.txt", "--from", "beads"], 4);
    assert!(err.contains("is not a beads issues.jsonl file"), "{err}");
    let _: Value = e.json(&["list"]);
}
