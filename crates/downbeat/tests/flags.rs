//! Flags end to end: the rules `init` writes firing through real runs (a process executor
//! whose script reports flags), a flag's state and what handled it, the loop guard, the
//! follow-up's prompt, and `downbeat rules`.

mod common;

use common::Env;
use serde_json::Value;

/// A project as `init` makes it (its default rules), plus `extra` configuration at the end.
fn project(extra: &str) -> Env {
    let e = Env::builder().keep("PATH").fixed_clock().init().build();
    e.append(".downbeat/config.toml", extra);
    e
}

/// Follow-ups of the security and database roles write the prompt they get to
/// `prompts/<task>.md`.
const CAPTURE: &str = r#"
[executors.capture]
type = "process"
shell = "mkdir -p prompts && cat > prompts/$DOWNBEAT_TASK_ID.md"

[roles.security]
executor = "capture"

[roles.database]
executor = "capture"
"#;

/// A shell line reporting `json` as the attempt's result.
fn reporting(json: &str) -> String {
    format!("cat > \"$DOWNBEAT_RESULT_FILE\" <<'JSON'\n{json}\nJSON")
}

/// The log's sequence number of the first event matching `f`.
fn seq_of(log: &Value, f: impl Fn(&Value) -> bool) -> i64 {
    log.as_array()
        .unwrap()
        .iter()
        .find(|e| f(e))
        .and_then(|e| e["seq"].as_i64())
        .unwrap_or_else(|| panic!("no such event in {log}"))
}

#[test]
fn the_default_rules_fire_in_a_real_run() {
    let e = project(CAPTURE);
    let audit = reporting(
        r#"{"summary": "found a token and a slow cart", "artifacts": ["out/audit.md"],
 "flags": ["SECURITY_BREACH: an API token is committed in config.py",
           {"flag": "DATABASE_INVESTIGATION", "detail": "the cart runs 15 queries"},
           "PERFORMANCE_ISSUE"]}"#,
    );
    let script = format!("mkdir -p out && echo findings > out/audit.md && {audit}");
    e.ok(&[
        "add",
        "Audit the checkout",
        "--key",
        "audit",
        "--shell",
        &script,
    ]);
    e.ok(&[
        "add",
        "Ship the checkout",
        "--key",
        "ship",
        "--after",
        "audit",
        "--priority",
        "low",
        "--shell",
        "true",
    ]);
    let out = e.run(&["run", "-j", "4"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("paused"), "{stderr}");
    assert!(stderr.contains("handled"), "{stderr}");

    // SECURITY_BREACH: a follow-up for the security role, everything else held until done.
    let flags = e.json(&["show", "audit"])["flags"].clone();
    let by = |name: &str| {
        flags
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["flag"] == name)
            .unwrap_or_else(|| panic!("no {name} in {flags}"))
            .clone()
    };
    let security = by("SECURITY_BREACH");
    assert_eq!(security["detail"], "an API token is committed in config.py");
    assert_eq!(security["state"], "handled");
    let fix = security["follow_up"].as_str().unwrap().to_owned();
    let task = e.json(&["show", &fix]);
    assert_eq!(task["role"], "security");
    assert_eq!(
        task["title"],
        "Respond to the security issue found in Audit the checkout"
    );
    assert_eq!(task["status"], "completed");
    assert_eq!(task["follows_up"][0]["id"], security["id"]);
    let log = e.json(&["log", "--limit", "200"]);
    let done = seq_of(&log, |ev| {
        ev["entity"] == fix.as_str() && ev["after"]["status"] == "completed"
    });
    let ship = e.json(&["show", "ship"])["id"].as_str().unwrap().to_owned();
    let shipped = seq_of(&log, |ev| {
        ev["entity"] == ship.as_str() && ev["after"]["status"] == "running"
    });
    assert!(done < shipped, "the ship waited for the security follow-up");
    let holds: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|ev| ev["action"].as_str())
        .filter(|a| a.starts_with("hold."))
        .collect();
    // The hold lapsed when its follow-up was done.
    assert_eq!(holds, ["hold.added"]);
    assert_eq!(e.json(&["holds"]), serde_json::json!([]));

    // DATABASE_INVESTIGATION: a follow-up for the database role.
    let db = by("DATABASE_INVESTIGATION");
    assert_eq!(db["detail"], "the cart runs 15 queries");
    assert_eq!(db["state"], "handled");
    let dba = e.json(&["show", db["follow_up"].as_str().unwrap()]);
    assert_eq!(dba["role"], "database");
    assert_eq!(
        dba["tags"],
        serde_json::json!(["flag:DATABASE_INVESTIGATION"])
    );

    // PERFORMANCE_ISSUE: the dependents go first.
    let perf = by("PERFORMANCE_ISSUE");
    assert_eq!(perf["state"], "handled");
    assert!(
        perf["note"].as_str().unwrap().contains("raised to high"),
        "{perf}"
    );
    assert_eq!(e.json(&["show", "ship"])["priority"], "high");

    // Every flag is handled: status counts them, the documents say what handled them.
    let status = e.json(&["status"]);
    assert_eq!(status["flags"]["handled"], 3, "{status}");
    assert_eq!(status["flags"]["raised"], serde_json::json!([]));
    let text = e.ok(&["status"]);
    assert!(
        text.contains("flags: 0 raised, 3 handled, 0 suppressed"),
        "{text}"
    );
    let report = std::fs::read_to_string(e.ok(&["synthesize"]).trim()).unwrap();
    assert!(
        report.contains(&format!(
            "SECURITY_BREACH by {}",
            e.json(&["show", "audit"])["id"].as_str().unwrap()
        )),
        "{report}"
    );
    assert!(report.contains(&format!("handled by {fix}")), "{report}");
    let handover = std::fs::read_to_string(e.ok(&["handover"]).trim()).unwrap();
    assert!(handover.contains("## Flags"), "{handover}");
    assert!(
        handover.contains("detail: the cart runs 15 queries"),
        "{handover}"
    );

    // The follow-up's prompt carries the flag, its detail, the flagging task's summary and
    // artifacts.
    let prompt = e.read(&e.path().join(format!("prompts/{fix}.md")));
    let section = &prompt[prompt
        .find("## The flag this task follows up")
        .expect(&prompt)..];
    insta::assert_snapshot!("security_follow_up_prompt", section);
}

#[test]
fn a_flag_raised_again_by_its_follow_up_spawns_nothing_and_chains_stop_at_their_depth() {
    // The security follow-up raises its own flag again and a database one; the database
    // follow-up raises a third flag at the depth limit.
    let again =
        reporting(r#"{"flags": ["SECURITY_BREACH: still there", "DATABASE_INVESTIGATION"]}"#);
    let deeper = reporting(r#"{"flags": ["NEEDS_DOCS"]}"#);
    let e = project(&format!(
        r#"
[flags]
max_depth = 2

[executors.again]
type = "process"
shell = '''{again}'''

[executors.deeper]
type = "process"
shell = '''{deeper}'''

[roles.security]
executor = "again"

[roles.database]
executor = "deeper"
"#
    ));
    e.ok(&[
        "rules",
        "add",
        "NEEDS_DOCS",
        "add-task",
        "--role",
        "documenter",
    ]);
    let audit = reporting(r#"{"flags": ["SECURITY_BREACH"]}"#);
    e.ok(&["add", "Audit", "--key", "audit", "--shell", &audit]);
    let out = e.run(&["run"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("suppressed"), "{stderr}");
    // Audit, the security follow-up, the database follow-up: nothing more.
    assert_eq!(e.titles().len(), 3, "{:?}", e.titles());
    assert_eq!(e.json(&["holds"]), serde_json::json!([]));
    let status = e.json(&["status"]);
    let suppressed = status["flags"]["suppressed"].as_array().unwrap().clone();
    assert_eq!(suppressed.len(), 2, "{status}");
    assert_eq!(suppressed[0]["flag"], "SECURITY_BREACH");
    assert_eq!(suppressed[0]["detail"], "still there");
    let note = suppressed[0]["note"].as_str().unwrap();
    assert!(
        note.contains("exists because of SECURITY_BREACH already"),
        "{note}"
    );
    assert_eq!(suppressed[1]["flag"], "NEEDS_DOCS");
    let note = suppressed[1]["note"].as_str().unwrap();
    assert!(note.contains("[flags] max_depth = 2"), "{note}");
    // The flags that were followed up are handled by their follow-ups.
    assert_eq!(status["flags"]["handled"], 2, "{status}");
    let text = e.ok(&["status"]);
    assert!(
        text.contains("flags: 0 raised, 2 handled, 2 suppressed"),
        "{text}"
    );
    assert!(text.contains("NEEDS_DOCS"), "{text}");
}

#[test]
fn rules_are_listed_added_and_removed_keeping_the_rest_of_the_file() {
    let e = Env::builder().init().build();
    let cfg = e.path().join(".downbeat/config.toml");
    let text = format!("# My own note, kept.\n{}", e.read(&cfg));
    e.write(&cfg, &text);
    let rules = e.json(&["rules"]);
    let flags: Vec<&str> = rules
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["flag"].as_str().unwrap())
        .collect();
    assert_eq!(
        flags,
        [
            "SECURITY_BREACH",
            "DATABASE_INVESTIGATION",
            "PERFORMANCE_ISSUE"
        ]
    );
    assert_eq!(rules[0]["number"], 1);
    assert_eq!(rules[0]["role"], "security");
    assert_eq!(rules[0]["pause"], true);

    let added = e.json(&[
        "rules",
        "add",
        "TESTS_RED",
        "add-task",
        "--role",
        "debugger",
        "--title",
        "Fix the tests {{ task.title }} broke",
    ]);
    assert_eq!(added["added"]["number"], 4);
    let after = e.read(&cfg);
    assert!(after.starts_with("# My own note, kept.\n"), "{after}");
    assert!(
        after.contains("[[rules]]\nflag = \"TESTS_RED\"\naction = \"add-task\"\nrole = \"debugger\"\ntitle = \"Fix the tests {{ task.title }} broke\"\n"),
        "{after}"
    );
    // Checked before anything is written.
    let before = e.read(&cfg);
    let err = e.fails(&["rules", "add", "X", "add-task", "--role", "nobody"], 4);
    assert!(err.contains("unknown role `nobody`"), "{err}");
    let err = e.fails(
        &[
            "rules",
            "add",
            "X",
            "add-task",
            "--title",
            "{{ task.owner }}",
        ],
        4,
    );
    assert!(err.contains("title"), "{err}");
    let err = e.fails(&["rules", "add", "X", "stop", "--priority", "high"], 4);
    assert!(
        err.contains("`priority` applies to action `raise-priority`"),
        "{err}"
    );
    let err = e.fails(&["rules", "add", "X Y", "stop"], 4);
    assert!(err.contains("not allowed"), "{err}");
    let err = e.fails(&["rules", "add", "X", "shout"], 4);
    assert!(err.contains("unknown action `shout`"), "{err}");
    let err = e.fails(
        &[
            "rules",
            "add",
            "PERFORMANCE_ISSUE",
            "raise-priority",
            "--priority",
            "high",
        ],
        5,
    );
    assert!(
        err.contains("the same rule is there already (rule 3)"),
        "{err}"
    );
    assert_eq!(e.read(&cfg), before);

    // Removed by flag: the rule and its own comment go, the comments above it stay.
    let removed = e.json(&["rules", "rm", "DATABASE_INVESTIGATION"]);
    assert_eq!(removed["removed"][0]["number"], 2);
    assert_eq!(removed["rules"].as_array().unwrap().len(), 3);
    let after = e.read(&cfg);
    assert!(!after.contains("DATABASE_INVESTIGATION"), "{after}");
    assert!(!after.contains("# A question for the database"), "{after}");
    assert!(after.contains("# A security breach"), "{after}");
    assert!(after.contains("# Flag rules: what a flag"), "{after}");
    // Removing the first rule keeps the general comments above it.
    e.ok(&["rules", "rm", "1"]);
    let after = e.read(&cfg);
    assert!(!after.contains("SECURITY_BREACH\""), "{after}");
    assert!(after.contains("# Flag rules: what a flag"), "{after}");
    assert!(after.contains("# max_depth = 3"), "{after}");
    let left: Vec<String> = e
        .json(&["rules"])
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["flag"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(left, ["PERFORMANCE_ISSUE", "TESTS_RED"]);
    let err = e.fails(&["rules", "rm", "9"], 3);
    assert!(err.contains("no rule 9"), "{err}");
    let err = e.fails(&["rules", "rm", "NOPE"], 3);
    assert!(err.contains("no rule for flag `NOPE`"), "{err}");
    e.ok(&["rules", "rm", "PERFORMANCE_ISSUE"]);
    e.ok(&["rules", "rm", "TESTS_RED"]);
    assert_eq!(e.json(&["rules"]), serde_json::json!([]));
    let after = e.read(&cfg);
    assert!(after.starts_with("# My own note, kept.\n"), "{after}");
    assert!(after.contains("# Flag rules: what a flag"), "{after}");
    // A rule that does not load is refused when the project opens, naming it.
    e.append(
        ".downbeat/config.toml",
        "\n[[rules]]\nflag = \"X\"\naction = \"add-task\"\nrole = \"ghost\"\n",
    );
    let err = e.fails(&["status"], 4);
    assert!(
        err.contains("[[rules]] 1: rule for X: unknown role `ghost`"),
        "{err}"
    );
}
