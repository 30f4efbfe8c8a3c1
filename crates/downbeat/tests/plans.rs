//! Living plans: a plan applied again after editing writes only the difference.

mod common;

use common::Env;

const FIRST: &str = r#"
[plan]
name = "demo"
[[tasks]]
key = "design"
title = "Design"
[[tasks]]
key = "build"
title = "Build"
depends_on = ["design"]
[[tasks]]
key = "docs"
title = "Docs"
depends_on = ["design"]
[[tasks]]
key = "old"
title = "Old"
"#;

const SECOND: &str = r#"
[plan]
name = "demo"
[[tasks]]
key = "design"
title = "Design"
[[tasks]]
key = "build"
title = "Build it"
priority = "high"
depends_on = ["test"]
[[tasks]]
key = "docs"
title = "Docs"
depends_on = ["design"]
[[tasks]]
key = "test"
title = "Test"
depends_on = ["design"]
"#;

fn project() -> Env {
    Env::builder().fixed_clock().actor("tester").init().build()
}

/// The ids of the tasks `key` waits on.
fn deps(e: &Env, key: &str) -> Vec<String> {
    let t = e.json(&["show", key]);
    let mut d: Vec<String> = t["edges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["to"] == t["id"])
        .map(|x| x["from"].as_str().unwrap_or_default().to_owned())
        .collect();
    d.sort();
    d
}

fn id(e: &Env, key: &str) -> String {
    e.json(&["show", key])["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn status(e: &Env, key: &str) -> String {
    e.json(&["show", key])["status"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn applying_an_edited_plan_again_writes_only_the_difference() {
    let e = project();
    let plan = e.write("plan.toml", FIRST);
    let p = plan.to_str().unwrap();
    e.ok(&["plan", "apply", p]);
    // The same plan again changes nothing.
    let same = e.json(&["plan", "apply", p]);
    assert_eq!(same["unchanged"], 4, "{same}");
    assert_eq!(same["tasks"].as_array().unwrap().len(), 0, "{same}");
    e.write("plan.toml", SECOND);
    // A dry run shows the diff and writes nothing.
    insta::assert_snapshot!(
        "living_plan_dry_run",
        e.ok(&["plan", "apply", "--dry-run", p])
    );
    let dry = e.json(&["plan", "apply", "--dry-run", p]);
    insta::assert_json_snapshot!("living_plan_dry_run_json", dry);
    assert_eq!(e.titles().len(), 4);
    assert_eq!(status(&e, "old"), "pending");
    // Applied: one task added, one changed, the one left out cancelled (never deleted).
    let out = e.ok(&["plan", "apply", p]);
    assert!(out.contains("+  ") && out.contains("Test"), "{out}");
    assert_eq!(status(&e, "old"), "cancelled");
    let build = e.json(&["show", "build"]);
    assert_eq!(build["title"], "Build it", "{build}");
    assert_eq!(build["priority"], "high", "{build}");
    assert_eq!(deps(&e, "build"), [id(&e, "test")], "{build}");
    // And now it is in step.
    let again = e.json(&["plan", "apply", "--dry-run", p]);
    assert_eq!(again["unchanged"], 4, "{again}");
}

#[test]
fn running_or_finished_tasks_are_never_changed() {
    let e = project();
    let plan = e.write("plan.toml", FIRST);
    let p = plan.to_str().unwrap();
    e.ok(&["plan", "apply", p]);
    e.ok(&["start", "design"]);
    e.ok(&["done", "design"]);
    e.ok(&["start", "old"]);
    let edited = SECOND.replace("title = \"Design\"", "title = \"Design v2\"");
    e.write("plan.toml", &edited);
    let err = e.fails(&["plan", "apply", p], 5);
    assert!(
        err.contains("design") && err.contains("completed") && err.contains("old"),
        "{err}"
    );
    assert!(err.contains("--skip-conflicts"), "{err}");
    // Nothing was written.
    assert_eq!(e.titles().len(), 4);
    assert_eq!(e.json(&["show", "build"])["title"], "Build");
    // Skipping the conflicts applies the rest and leaves those tasks alone.
    let out = e.json(&["plan", "apply", "--skip-conflicts", p]);
    assert_eq!(out["conflicts"].as_array().unwrap().len(), 2, "{out}");
    assert_eq!(e.json(&["show", "design"])["title"], "Design");
    assert_eq!(status(&e, "old"), "running");
    assert_eq!(e.json(&["show", "build"])["title"], "Build it");
}

#[test]
fn dependencies_added_outside_the_plan_survive_it() {
    let e = project();
    let plan = e.write("plan.toml", FIRST);
    let p = plan.to_str().unwrap();
    e.ok(&["plan", "apply", p]);
    e.ok(&["dep", "add", "docs", "--on", "old"]);
    let dry = e.json(&["plan", "apply", "--dry-run", p]);
    assert_eq!(dry["unchanged"], 4, "{dry}");
    // A plan without the dependency it declared before loses it.
    e.write(
        "plan.toml",
        &FIRST.replace(
            "depends_on = [\"design\"]\n[[tasks]]\nkey = \"docs\"",
            "[[tasks]]\nkey = \"docs\"",
        ),
    );
    let out = e.json(&["plan", "apply", p]);
    let changed = &out["changed"][0];
    assert_eq!(changed["key"], "build", "{out}");
    assert_eq!(changed["fields"][0]["field"], "dependencies", "{out}");
    assert_eq!(changed["fields"][0]["before"], "design", "{out}");
    assert_eq!(deps(&e, "docs").len(), 2);
    assert!(deps(&e, "build").is_empty());
}

#[test]
fn a_plan_applied_again_needs_a_key_on_every_task() {
    let e = project();
    let plan = e.write("plan.toml", FIRST);
    let p = plan.to_str().unwrap();
    e.ok(&["plan", "apply", p]);
    e.append("plan.toml", "[[tasks]]\ntitle = \"Keyless\"\n");
    let err = e.fails(&["plan", "apply", p], 4);
    assert!(err.contains("\"Keyless\") has no key"), "{err}");
    assert_eq!(e.titles().len(), 4);
}

/// A plan whose new tasks go under a stored container can close a cycle through it: that is
/// still checked against the whole graph (a plan of new tasks alone is not read against it),
/// and nothing is written.
#[test]
fn a_cycle_through_a_stored_container_is_refused() {
    let e = Env::builder().init().build();
    e.ok(&["add", "Auth", "--key", "auth"]);
    e.ok(&["add", "Child", "--key", "child", "--parent", "auth"]);
    e.write(
        "q.toml",
        "[[tasks]]\nkey = \"y\"\ntitle = \"Y\"\ndepends_on = [\"auth\"]\n[[tasks]]\nkey = \"z\"\ntitle = \"Z\"\nparent = \"auth\"\ndepends_on = [\"y\"]\n",
    );
    let err = e.fails(&["plan", "apply", "q.toml"], 5);
    assert!(
        err.contains("dependency cycle: auth → y → z → auth"),
        "{err}"
    );
    assert_eq!(e.json(&["list"]).as_array().unwrap().len(), 2);
    // New tasks that only wait on stored ones are applied.
    e.write(
        "r.toml",
        "[[tasks]]\nkey = \"after\"\ntitle = \"After\"\ndepends_on = [\"auth\"]\n",
    );
    e.ok(&["plan", "apply", "r.toml"]);
    assert_eq!(e.json(&["list"]).as_array().unwrap().len(), 3);
}
