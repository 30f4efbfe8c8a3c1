//! Workflow templates end to end: the built-in `simple`, `complex` and `emergency`, a
//! project's own with typed parameters, strict rendering, `plan new --template`.

mod common;

use common::Env;
use serde_json::{Value, json};

fn project() -> Env {
    Env::builder().fixed_clock().init().build()
}

fn task<'a>(list: &'a Value, key: &str) -> &'a Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|t| t["key"] == key)
        .unwrap_or_else(|| panic!("no {key} in {list}"))
}

#[test]
fn the_builtin_templates_are_listed_and_shown() {
    let e = project();
    let list = e.json(&["template", "list"]);
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["complex", "emergency", "simple"]);
    let show = e.json(&["template", "show", "emergency"]);
    assert_eq!(show["parameters"]["service"]["required"], true);
    assert_eq!(
        show["parameters"]["severity"]["values"],
        json!(["sev1", "sev2", "sev3"])
    );
    let text = e.ok(&["template", "show", "complex"]);
    let frontend = text.lines().find(|l| l.starts_with("frontend")).unwrap();
    let cols: Vec<&str> = frontend.split_whitespace().collect();
    assert_eq!(cols[..3], ["frontend", "bool", "true"], "{text}");
    assert!(
        text.contains("feature         string  (required)"),
        "{text}"
    );
}

#[test]
fn the_emergency_template_raises_priority_pauses_other_work_and_ends_with_a_post_mortem() {
    let e = project();
    e.ok(&["add", "Refactor the settings page", "--key", "refactor"]);
    let v = e.json(&[
        "template",
        "apply",
        "emergency",
        "--set",
        "service=billing api",
        "--set",
        "security=true",
    ]);
    assert_eq!(v["plan"], "billing-api-incident", "{v}");
    assert_eq!(v["values"]["severity"], "sev1");
    let list = e.json(&["list"]);
    for k in [
        "billing-api-triage",
        "billing-api-security",
        "billing-api-mitigate",
        "billing-api-verify",
        "billing-api-document",
        "billing-api-postmortem",
    ] {
        assert_eq!(task(&list, k)["priority"], "critical", "{k}");
        // Marked with its template, which `downbeat patterns` learns by.
        let tags = task(&list, k)["tags"].as_array().unwrap().clone();
        assert!(tags.contains(&"template:emergency".into()), "{k}: {tags:?}");
    }
    // The post-mortem is last: the critical path ends with it.
    let path = v["preview"]["critical_path"].as_array().unwrap();
    assert_eq!(path.last().unwrap(), "billing-api-postmortem");
    assert_eq!(
        v["preview"]["waves"][0],
        json!(["billing-api-triage", "billing-api-security"])
    );
    // Everything else waits: one hold, on the post-mortem (the incident's work is what it
    // waits on).
    let postmortem = e.json(&["show", "billing-api-postmortem"]);
    let holds = e.json(&["holds"]);
    assert_eq!(holds.as_array().unwrap().len(), 1, "{holds}");
    assert_eq!(holds[0]["task"], postmortem["id"]);
    assert_eq!(v["hold"]["id"], holds[0]["id"]);
    // Applied again with the same values: nothing changes, no second hold.
    let again = e.json(&[
        "template",
        "apply",
        "emergency",
        "--set",
        "service=billing api",
        "--set",
        "security=true",
    ]);
    assert_eq!(again["unchanged"], 7, "{again}");
    assert_eq!(e.json(&["holds"]).as_array().unwrap().len(), 1);
    // Other work cannot start while the incident lasts…
    let err = e.fails(&["run", "--executor", "noop", "--only", "refactor"], 7);
    assert!(err.contains("held"), "{err}");
    // …and starts once the post-mortem is done.
    e.ok(&["run", "--executor", "noop"]);
    assert_eq!(e.json(&["show", "refactor"])["status"], "completed");
    assert!(e.json(&["holds"]).as_array().unwrap().is_empty());
}

#[test]
fn parameters_are_checked_and_named() {
    let e = project();
    let err = e.fails(
        &[
            "template",
            "apply",
            "emergency",
            "--set",
            "servce=x",
            "--set",
            "severity=sev9",
        ],
        4,
    );
    assert!(err.contains("has no parameter `servce`"), "{err}");
    assert!(
        err.contains("`sev9` is not one of sev1, sev2, sev3"),
        "{err}"
    );
    assert!(err.contains("needs `service`"), "{err}");
    let err = e.fails(
        &[
            "template",
            "apply",
            "complex",
            "--set",
            "feature=x",
            "--set",
            "effort=lots",
        ],
        4,
    );
    assert!(
        err.contains("parameter `effort` is an integer, not `lots`"),
        "{err}"
    );
    let err = e.fails(&["template", "show", "nope"], 3);
    assert!(err.contains("no template `nope`"), "{err}");
    assert!(e.json(&["list"]).as_array().unwrap().is_empty());
}

#[test]
fn a_project_template_has_typed_parameters_and_a_dry_run_writes_nothing() {
    let e = project();
    e.write(
        ".downbeat/templates/release.toml",
        r#"description = "Cut a release"

body = '''
[plan]
name = "release-{{ version | slug }}"

[[tasks]]
key = "release-{{ version | slug }}"
title = "Release {{ version }}"
{% for i in range(shards) %}
[[tasks]]
key = "release-{{ version | slug }}-test-{{ i }}"
parent = "release-{{ version | slug }}"
title = "Test shard {{ i }} of {{ shards }}"
role = "tester"
{% endfor %}{% if announce %}
[[tasks]]
key = "release-{{ version | slug }}-announce"
parent = "release-{{ version | slug }}"
title = "Announce \"{{ version }}\" on {{ channel }}"
role = "documenter"
{% endif %}
'''

[parameters.version]
type = "string"
required = true

[parameters.shards]
type = "int"
default = 2

[parameters.announce]
type = "bool"
default = true

[parameters.channel]
type = "enum"
values = ["blog", "mail"]
default = "blog"
"#,
    );
    let list = e.json(&["template", "list"]);
    let release = list
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "release")
        .unwrap();
    assert!(
        release["source"]
            .as_str()
            .unwrap()
            .ends_with("release.toml")
    );
    let dry = e.json(&[
        "template",
        "apply",
        "release",
        "--set",
        "version=2.0 \"beta\"",
        "--set",
        "shards=3",
        "--dry-run",
    ]);
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["tasks"].as_array().unwrap().len(), 5, "{dry}");
    assert!(
        e.json(&["list"]).as_array().unwrap().is_empty(),
        "a dry run writes nothing"
    );
    e.ok(&[
        "template",
        "apply",
        "release",
        "--set",
        "version=2.0 \"beta\"",
        "--set",
        "shards=3",
    ]);
    let list = e.json(&["list"]);
    assert_eq!(
        task(&list, "release-2-0-beta-announce")["title"],
        "Announce \"2.0 \"beta\"\" on blog"
    );
    assert!(task(&list, "release-2-0-beta-test-2")["title"] == "Test shard 2 of 3");
    // A template naming a value it does not declare fails to render, naming it.
    e.write(
        ".downbeat/templates/broken.toml",
        "description = \"x\"\nbody = '''\n[[tasks]]\ntitle = \"{{ nme }}\"\n'''\n[parameters.name]\ntype = \"string\"\nrequired = true\n",
    );
    let err = e.fails(&["template", "apply", "broken", "--set", "name=x"], 4);
    assert!(
        err.contains("cannot render its plan") && err.contains("undefined"),
        "{err}"
    );
}

#[test]
fn plan_new_from_a_template_needs_no_project() {
    let e = Env::builder().build();
    e.ok(&[
        "plan",
        "new",
        "--template",
        "simple",
        "--set",
        "task=Fix the login bug",
        "-o",
        "fix.toml",
    ]);
    let text = e.read(std::path::Path::new("fix.toml"));
    assert!(text.contains("name = \"fix-the-login-bug\""), "{text}");
    let check = e.json(&["plan", "check", "fix.toml"]);
    assert_eq!(check["tasks"], 5, "{check}");
    // In another format, converted.
    let json_plan = e.ok(&[
        "plan",
        "new",
        "--template",
        "complex",
        "--set",
        "feature=Notifications",
        "--format",
        "json",
    ]);
    let v: Value = serde_json::from_str(&json_plan).unwrap();
    assert_eq!(v["plan"]["name"], "notifications");
    assert_eq!(v["objectives"][0]["title"], "Notifications");
    let err = e.fails(&["plan", "new", "--template", "simple"], 4);
    assert!(err.contains("needs `task`"), "{err}");
}
