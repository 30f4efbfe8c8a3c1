//! `downbeat context`: the session context in one document (objectives, completed and active
//! tasks, key insights, decisions with the pending ones, agents spawned, metrics), and the
//! proposed → accepted/rejected life of a decision as the documents show it.

mod common;

use std::fmt::Write as _;

use common::Env;

/// The largest either form of the document may take.
const BUDGET: usize = 6_000;

#[test]
fn context_of_a_small_project() {
    let e = Env::builder().keep("PATH").fixed_clock().init().build();
    e.write(
        "plan.toml",
        r#"
[[objectives]]
title = "Users can log in"
tasks = ["design", "login"]

[[tasks]]
key = "design"
title = "Design the auth model"
role = "architect"
command = "true"

[[tasks]]
key = "login"
title = "Build the login endpoint"
role = "implementer"
depends_on = ["design"]
command = "true"

[[tasks]]
key = "tests"
title = "Test the login endpoint"
role = "tester"
depends_on = ["login"]
command = "true"

[[decisions]]
text = "Use PostgreSQL"
why = "one database for everything"
"#,
    );
    e.ok(&["plan", "apply", "plan.toml"]);
    e.ok(&["run"]);
    e.ok(&[
        "add",
        "Write the setup guide",
        "--key",
        "guide",
        "--role",
        "documenter",
    ]);
    e.ok(&[
        "add",
        "Review the token handling",
        "--key",
        "review",
        "--role",
        "reviewer",
    ]);
    e.ok(&["start", "review"]);
    e.ok(&[
        "insight",
        "add",
        "Sessions must survive restarts",
        "--task",
        "login",
    ]);
    e.ok(&["session", "start", "week 2"]);
    e.ok(&[
        "decision",
        "propose",
        "Use Authlib",
        "--why",
        "maintained, OAuth2 built in",
    ]);
    e.ok(&[
        "decision",
        "propose",
        "Drop the Redis cache",
        "--why",
        "one less service",
    ]);
    e.ok(&["decision", "reject", "d3", "--why", "login latency"]);
    let text = e.ok(&["context"]);
    insta::assert_snapshot!("context_small", text);

    let j = e.json(&["context"]);
    assert_eq!(j["tasks"]["completed"], 3);
    assert_eq!(j["objectives"]["items"][0]["status"], "achieved");
    assert_eq!(j["decisions"]["in_force"]["total"], 1);
    assert_eq!(j["decisions"]["pending"]["items"][0]["id"], "d2");
    assert_eq!(j["decisions"]["rejected"], 1);
    assert_eq!(j["agents"]["spawned"], 3);
    assert_eq!(j["metrics"]["rework_rate"], 0.0);
    assert_eq!(j["metrics"]["agents_per_task"], 1.0);
    assert_eq!(
        j["active_tasks"]["items"][0]["title"],
        "Review the token handling"
    );
}

/// A proposal is pending: listed as pending, left out of what is in force (the brief, the
/// handover, the memory section) until accepted; a rejected one stays out.
#[test]
fn pending_decisions_are_shown_as_pending_and_not_in_force() {
    let e = Env::builder().keep("PATH").fixed_clock().init().build();
    e.ok(&["decision", "add", "Use PostgreSQL", "--why", "one database"]);
    e.ok(&["decision", "propose", "Use Authlib", "--why", "maintained"]);
    e.ok(&["decision", "propose", "Drop Redis", "--why", "cost"]);
    let pending = e.json(&["decision", "list", "--pending"]);
    let ids: Vec<&str> = pending
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["d2", "d3"]);
    assert_eq!(pending[0]["status"], "proposed");

    let handover = e.ok(&["handover", "-o", "-"]);
    let (in_force, pending_part) = handover
        .split_once("Pending decisions (proposed, not in force):")
        .expect("the handover lists pending decisions");
    assert!(in_force.contains("d1 Use PostgreSQL"), "{handover}");
    assert!(!in_force.contains("Use Authlib"), "{handover}");
    assert!(pending_part.contains("d2 Use Authlib"), "{handover}");
    let brief = e.ok(&["session", "resume"]);
    assert!(
        brief.contains("Pending decisions:\n- d3 Drop Redis (proposed)"),
        "{brief}"
    );
    e.write("CLAUDE.md", "# Notes\n");
    e.ok(&["memory", "sync"]);
    let memory = e.read("CLAUDE.md".as_ref());
    assert!(
        memory.contains("Use PostgreSQL") && !memory.contains("Authlib"),
        "{memory}"
    );

    assert_eq!(e.ok(&["decision", "accept", "d2"]).trim(), "d2 accepted");
    assert_eq!(
        e.ok(&["decision", "reject", "d3", "--why", "still needed"])
            .trim(),
        "d3 rejected"
    );
    let err = e.fails(&["decision", "accept", "d3"], 5);
    assert!(
        err.contains("decision d3 is rejected, not proposed"),
        "{err}"
    );
    e.fails(&["decision", "accept", "d9"], 3);
    assert!(e.ok(&["decision", "list", "--pending"]).is_empty());
    let list = e.ok(&["decision", "list"]);
    assert!(
        list.contains("d3 Drop Redis — cost [rejected: still needed]"),
        "{list}"
    );
    e.ok(&["memory", "sync"]);
    let memory = e.read("CLAUDE.md".as_ref());
    assert!(
        memory.contains("Use Authlib") && !memory.contains("Drop Redis"),
        "{memory}"
    );
    let log = e.json(&["log"]);
    let actions: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|ev| ev["action"].as_str())
        .filter(|a| a.starts_with("decision."))
        .collect();
    assert_eq!(
        actions,
        [
            "decision.added",
            "decision.proposed",
            "decision.proposed",
            "decision.accepted",
            "decision.rejected"
        ]
    );
}

#[test]
fn context_of_500_tasks_stays_within_6_kb() {
    let e = Env::builder().keep("PATH").fixed_clock().init().build();
    let long = "with a title long enough to fill a line of any reasonable terminal and then some";
    let roles = [
        "architect",
        "implementer",
        "tester",
        "documenter",
        "reviewer",
    ];
    let mut plan = String::new();
    for o in 0..20 {
        let tasks: Vec<String> = (0..25).map(|i| format!("\"t{}\"", o * 25 + i)).collect();
        let _ = writeln!(
            plan,
            "[[objectives]]\ntitle = \"Objective {o} {long}\"\ntasks = [{}]\n",
            tasks.join(", ")
        );
    }
    for i in 0..500 {
        // The first 300 run (and complete); the rest wait on a task that fails.
        let deps = if i < 300 {
            ""
        } else {
            "depends_on = [\"gate\"]\n"
        };
        let _ = writeln!(
            plan,
            "[[tasks]]\nkey = \"t{i}\"\ntitle = \"Task {i} {long}\"\nrole = \"{}\"\ncommand = \"true\"\n{deps}",
            roles[i % roles.len()]
        );
    }
    plan.push_str("[[tasks]]\nkey = \"gate\"\ntitle = \"Gate\"\ncommand = \"false\"\n\n");
    for d in 0..40 {
        let _ = writeln!(
            plan,
            "[[decisions]]\ntext = \"Decision {d} {long}\"\nwhy = \"Because {long}\"\n"
        );
    }
    for i in 0..60 {
        let _ = writeln!(plan, "[[insights]]\ntext = \"Insight {i} {long} {long}\"\n");
    }
    e.write("plan.toml", &plan);
    e.ok(&["plan", "apply", "plan.toml"]);
    // The gate fails: the 200 tasks behind it stay blocked.
    let out = e.run(&["run"]);
    assert!(!out.status.success(), "the gate fails");
    for p in 0..12 {
        e.ok(&[
            "decision",
            "propose",
            &format!("Proposal {p} {long}"),
            "--why",
            long,
        ]);
    }
    let text = e.ok(&["context"]);
    let json = e.ok(&["--json", "context"]);
    assert!(
        text.len() <= BUDGET,
        "text is {} bytes:\n{text}",
        text.len()
    );
    assert!(
        json.len() <= BUDGET,
        "JSON is {} bytes:\n{json}",
        json.len()
    );
    // Counts are whole, lists are cut with "and N more", pending decisions are there.
    assert!(text.contains("Tasks: 501"), "{text}");
    assert!(
        text.contains("## Decisions (40 in force, 12 pending"),
        "{text}"
    );
    assert!(text.contains("(pending)"), "{text}");
    assert!(text.contains("more"), "{text}");
    let j: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(j["completed_tasks"]["total"], 300);
    assert_eq!(j["key_insights"]["total"], 60);
    assert_eq!(j["decisions"]["pending"]["total"], 12);
    assert!(
        !j["decisions"]["pending"]["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(j["agents"]["spawned"], 301);
}
