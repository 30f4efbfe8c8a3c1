//! Where plans come from: standard input and `--format`, `plan check` outside a project, and
//! the starting plan `plan new` writes.

mod common;

use common::Env;

const YAML: &str = "plan:\n  name: piped\ntasks:\n  - key: design\n    title: Design\n  - key: build\n    title: Build\n    depends_on: [design]\n";

fn project() -> Env {
    Env::builder().fixed_clock().actor("tester").init().build()
}

/// Runs with `stdin` as standard input; returns (exit code, stdout, stderr).
fn piped(e: &Env, args: &[&str], stdin: &str) -> (Option<i32>, String, String) {
    let o = e.cmd(args).write_stdin(stdin).output().unwrap();
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (o.status.code(), text(o.stdout), text(o.stderr))
}

#[test]
fn a_plan_is_read_from_standard_input_with_its_format() {
    let e = project();
    let (code, out, err) = piped(&e, &["plan", "check", "-", "--format", "yaml"], YAML);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.starts_with("stdin is valid: 2 task(s)"), "{out}");
    let (code, out, err) = piped(
        &e,
        &["plan", "apply", "-", "--format", "yaml", "--json"],
        YAML,
    );
    assert_eq!(code, Some(0), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["plan"], "piped", "{v}");
    assert_eq!(v["tasks"].as_array().unwrap().len(), 2, "{v}");
    // Applied again from stdin, edited: the difference, recorded under its name.
    let edited = YAML.replace("title: Build", "title: Build it");
    let (code, out, err) = piped(
        &e,
        &["plan", "apply", "-", "--format", "yaml", "--json"],
        &edited,
    );
    assert_eq!(code, Some(0), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["changed"][0]["key"], "build", "{v}");
    assert_eq!(v["unchanged"], 1, "{v}");
    assert_eq!(e.titles().len(), 2);
}

/// A problem of a plan read from standard input or a file names its task's line: the text of
/// a file is read again for it, standard input's was kept. Nothing is written.
#[test]
fn a_problem_names_its_line_whether_the_plan_was_piped_or_read_from_a_file() {
    let e = project();
    let bad = YAML.replace("depends_on: [design]", "depends_on: [nowhere]");
    for file in ["-", "/dev/stdin"] {
        let (code, _, err) = piped(&e, &["plan", "apply", file, "--format", "yaml"], &bad);
        assert_eq!(code, Some(4), "{err}");
        assert!(
            err.contains("task `build` (line 6): dependency `nowhere`"),
            "{err}"
        );
    }
    e.write("bad.yaml", &bad);
    let err = e.fails(&["plan", "apply", "bad.yaml"], 4);
    assert!(
        err.contains("task `build` (line 6): dependency `nowhere`"),
        "{err}"
    );
    let err = e.fails(&["plan", "check", "bad.yaml"], 4);
    assert!(err.contains("task `build` (line 6)"), "{err}");
    assert!(e.titles().is_empty());
}

#[test]
fn standard_input_needs_a_format_and_dev_stdin_works_too() {
    let e = project();
    let (code, _, err) = piped(&e, &["plan", "apply", "-"], YAML);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--format toml|yaml|json"), "{err}");
    assert!(e.titles().is_empty());
    let json = r#"{"tasks": [{"key": "a", "title": "A"}]}"#;
    let (code, _, err) = piped(
        &e,
        &["plan", "apply", "/dev/stdin", "--format", "json"],
        json,
    );
    assert_eq!(code, Some(0), "{err}");
    // Without a name it is not recorded, and the user is told.
    assert!(err.contains("no `[plan] name`"), "{err}");
    assert_eq!(e.titles(), ["A"]);
}

#[test]
fn format_overrides_the_extension() {
    let e = project();
    let f = e.write("plan.txt", "[[tasks]]\nkey = \"a\"\ntitle = \"A\"\n");
    let p = f.to_str().unwrap();
    let err = e.fails(&["plan", "check", p], 4);
    assert!(
        err.contains("unknown plan format") && err.contains("--format"),
        "{err}"
    );
    e.ok(&["plan", "check", p, "--format", "toml"]);
    // A format that does not match the text is a parse error, with its location.
    let err = e.fails(&["plan", "check", p, "--format", "json"], 4);
    assert!(err.contains("line 1"), "{err}");
}

#[test]
fn plan_check_outside_a_project_checks_the_file_and_says_what_it_could_not() {
    let e = Env::builder().build();
    let plan = r#"
[[tasks]]
key = "design"
title = "Design"
role = "security-auditor"
depends_on = ["ab12cd"]
[[tasks]]
key = "build"
title = "Build"
depends_on = ["design"]
"#;
    let f = e.write("plan.toml", plan);
    let p = f.to_str().unwrap();
    let o = e.run(&["plan", "check", "plan.toml"]);
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert!(o.status.success(), "{err}");
    insta::assert_snapshot!(
        "plan_check_outside_a_project",
        format!("{out}--- stderr\n{err}")
    );
    let v = e.json(&["plan", "check", p]);
    assert_eq!(v["project"], false, "{v}");
    assert_eq!(v["unchecked_references"], serde_json::json!(["ab12cd"]));
    assert_eq!(
        v["unchecked_roles"],
        serde_json::json!(["security-auditor"])
    );
    // What the file says on its own is still checked: cycles, fields, references in it.
    let cyc = e.write(
        "cycle.toml",
        "[[tasks]]\nkey = \"a\"\ntitle = \"A\"\ndepends_on = [\"b\"]\n[[tasks]]\nkey = \"b\"\ntitle = \"B\"\ndepends_on = [\"a\"]\n",
    );
    let err = e.fails(&["plan", "check", cyc.to_str().unwrap()], 5);
    assert!(err.contains("dependency cycle"), "{err}");
    let bad = e.write(
        "bad.toml",
        "[[tasks]]\nkey = \"a\"\ntitle = \"A\"\npriority = \"urgent\"\neffort = 2\n[[tasks]]\ntitle = \"\"\n",
    );
    let err = e.fails(&["plan", "check", bad.to_str().unwrap()], 4);
    assert!(
        err.contains("unknown priority `urgent`") && err.contains("2 problems"),
        "{err}"
    );
    // Applying still needs a project.
    e.fails(&["plan", "apply", p], 3);
    // From standard input too.
    let (code, out, err) = piped(&e, &["plan", "check", "-", "--format", "yaml"], YAML);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("stdin is valid"), "{out}");
}

#[test]
fn plan_check_in_a_project_checks_references_to_its_tasks() {
    let e = project();
    let f = e.write(
        "plan.toml",
        "[[tasks]]\nkey = \"a\"\ntitle = \"A\"\ndepends_on = [\"ghost\"]\n",
    );
    let err = e.fails(&["plan", "check", f.to_str().unwrap()], 4);
    assert!(err.contains("`ghost` is neither"), "{err}");
}

#[test]
fn plan_new_writes_a_starting_plan_that_checks_and_applies() {
    let e = Env::builder().fixed_clock().actor("tester").build();
    // On stdout, toml unless told otherwise; outside a project it checks on its own.
    let toml = e.ok(&["plan", "new"]);
    assert!(toml.starts_with("# A Downbeat plan"), "{toml}");
    let (code, out, err) = piped(&e, &["plan", "check", "-", "--format", "toml"], &toml);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("5 task(s), 4 dependency edge(s)"), "{out}");
    assert!(err.contains("the file on its own"), "{err}");
    // To a file, its format from the extension.
    e.ok(&["plan", "new", "-o", "plan.yaml"]);
    let yaml = std::fs::read_to_string(e.path().join("plan.yaml")).unwrap();
    assert!(yaml.contains("depends_on: [design]"), "{yaml}");
    e.ok(&["plan", "check", "plan.yaml"]);
    let json = e.ok(&["plan", "new", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["tasks"].as_array().unwrap().len(), 5);
    // An existing file is kept unless --force.
    e.write("plan.yaml", "# mine\n");
    let err = e.fails(&["plan", "new", "-o", "plan.yaml"], 5);
    assert!(
        err.contains("already exists") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(e.path().join("plan.yaml")).unwrap(),
        "# mine\n"
    );
    e.ok(&["plan", "new", "-o", "plan.yaml", "--force"]);
    assert_eq!(
        std::fs::read_to_string(e.path().join("plan.yaml")).unwrap(),
        yaml
    );
    // A format the file name contradicts is refused.
    let err = e.fails(&["plan", "new", "-o", "plan.json", "--format", "yaml"], 4);
    assert!(err.contains("the file name says json"), "{err}");
    assert!(!e.path().join("plan.json").exists());
    // In a project it applies, and its `check` task runs its own command.
    e.ok(&["init"]);
    e.ok(&["plan", "check", "plan.yaml"]);
    e.ok(&["plan", "apply", "plan.yaml"]);
    let check = e.json(&["show", "check"]);
    assert_eq!(
        check["exec"]["executor"], r#"{"argv":["make","test"],"type":"process"}"#,
        "{check}"
    );
    let build = e.json(&["show", "build"]);
    assert_eq!(build["exec"]["timeout_ms"], 1_800_000, "{build}");
    assert_eq!(build["exec"]["max_attempts"], 2, "{build}");
    // Applied again unchanged: the command compares equal.
    let again = e.json(&["plan", "apply", "plan.yaml", "--dry-run"]);
    assert_eq!(again["unchanged"], 5, "{again}");
}

#[test]
fn a_bulk_plan_leaves_no_large_write_ahead_log() {
    let e = Env::builder().init().build();
    let tasks: Vec<serde_json::Value> = (0..6_000)
        .map(|i| {
            let deps = if i % 10 == 0 {
                vec![]
            } else {
                vec![format!("t{}", i - 1)]
            };
            serde_json::json!({"key": format!("t{i}"), "title": format!("task {i}"), "depends_on": deps})
        })
        .collect();
    let plan = serde_json::json!({"plan": {"name": "bulk"}, "tasks": tasks});
    e.write("bulk.json", &plan.to_string());
    e.ok(&["plan", "apply", "bulk.json"]);
    // Without a checkpoint these 6,000 tasks leave about 3 MB of log behind.
    let wal = e.path().join(".downbeat/downbeat.db-wal");
    let size = std::fs::metadata(&wal).map_or(0, |m| m.len());
    assert!(
        size < 256 * 1024,
        "the WAL is {size} bytes after a bulk plan"
    );
    assert_eq!(
        e.json(&["list", "--limit", "1"]).as_array().unwrap().len(),
        1
    );
}
