//! What reaches an agent's prompt: the decisions in force (superseded, proposed and rejected
//! ones left out) and the insights about the task, its ancestors, its dependencies, other tasks
//! of its role or the whole project (not an unrelated task's), within the configured budget. The prompt is captured by a
//! command that copies its standard input.

mod common;

use common::Env;

fn project(budget: Option<&str>) -> Env {
    let e = Env::builder().fixed_clock().init().build();
    let budget = budget
        .map(|b| format!("[run]\ncontext_budget = \"{b}\"\n\n"))
        .unwrap_or_default();
    e.write(
        ".downbeat/config.toml",
        &format!(
            "{budget}[executors.capture]\ntype = \"process\"\nshell = \"cat > prompt-seen.txt\"\n"
        ),
    );
    e.ok(&["add", "Auth work", "--key", "auth"]);
    e.ok(&[
        "add",
        "Design the login",
        "--role",
        "architect",
        "--key",
        "design",
        "--parent",
        "auth",
    ]);
    e.ok(&[
        "add",
        "Build the login",
        "--role",
        "implementer",
        "--key",
        "build",
        "--parent",
        "auth",
        "--after",
        "design",
        "--executor",
        "capture",
    ]);
    e.ok(&["add", "Billing", "--key", "billing"]);
    e.ok(&["decision", "add", "Use Authlib", "--why", "maintained"]);
    e.ok(&[
        "decision",
        "add",
        "Use Authlib 1.3",
        "--why",
        "async support",
        "--supersedes",
        "d1",
    ]);
    // A proposal still pending and a rejected one: neither is in force.
    e.ok(&[
        "decision",
        "propose",
        "Use Keycloak",
        "--why",
        "SSO built in",
    ]);
    e.ok(&["decision", "propose", "Drop SSO", "--why", "simpler"]);
    e.ok(&["decision", "reject", "d4"]);
    e.ok(&["insight", "add", "The API is rate limited to 100 rps"]);
    e.ok(&[
        "insight",
        "add",
        "The session table needs an index",
        "--task",
        "design",
    ]);
    e.ok(&[
        "insight",
        "add",
        "Invoices are immutable",
        "--task",
        "billing",
    ]);
    e.ok(&[
        "insight",
        "add",
        "Auth must keep SSO working",
        "--task",
        "auth",
    ]);
    e.ok(&["done", "design", "--result", "OAuth2 with PKCE"]);
    e
}

#[test]
fn a_prompt_carries_the_decisions_in_force_and_the_insights_about_the_task() {
    let e = project(None);
    e.ok(&["run", "--only", "build"]);
    let prompt = std::fs::read_to_string(e.path().join("prompt-seen.txt")).unwrap();
    let context = &prompt[prompt.find("## Decisions in force").expect(&prompt)..];
    insta::assert_snapshot!(context);
    assert!(
        !prompt.contains("Invoices"),
        "another task's insight stays out"
    );
    assert!(
        !prompt.contains("d1 Use Authlib\n"),
        "a superseded decision stays out"
    );
    assert!(
        !prompt.contains("Keycloak") && !prompt.contains("Drop SSO"),
        "proposed and rejected decisions stay out"
    );
}

#[test]
fn the_budget_keeps_decisions_first_and_drops_the_oldest_insights() {
    let e = project(Some("120"));
    e.ok(&["run", "--only", "build"]);
    let prompt = std::fs::read_to_string(e.path().join("prompt-seen.txt")).unwrap();
    assert!(prompt.contains("d2 Use Authlib 1.3"), "{prompt}");
    assert!(prompt.contains("Auth must keep SSO working"), "{prompt}");
    assert!(!prompt.contains("rate limited"), "{prompt}");
}

#[test]
fn insights_learned_on_tasks_of_the_same_role_reach_its_prompt() {
    let e = project(None);
    e.ok(&[
        "add",
        "Build billing export",
        "--role",
        "implementer",
        "--key",
        "export",
    ]);
    e.ok(&["add", "Test billing", "--role", "tester", "--key", "qa"]);
    e.ok(&[
        "insight",
        "add",
        "cargo build needs OPENSSL_DIR here",
        "--task",
        "export",
    ]);
    e.ok(&[
        "insight",
        "add",
        "Fixtures live in tests/data",
        "--task",
        "qa",
    ]);
    e.ok(&["run", "--only", "build"]);
    let prompt = std::fs::read_to_string(e.path().join("prompt-seen.txt")).unwrap();
    assert!(
        prompt.contains("cargo build needs OPENSSL_DIR here"),
        "{prompt}"
    );
    assert!(
        !prompt.contains("Fixtures live"),
        "a tester's insight stays out: {prompt}"
    );
}

#[test]
fn a_template_that_shows_no_dependencies_still_gets_the_insights_about_them() {
    let e = project(None);
    // No role: the default template shows the task alone.
    e.ok(&[
        "add",
        "Review the login",
        "--key",
        "review",
        "--after",
        "design",
        "--executor",
        "capture",
    ]);
    e.ok(&["run", "--only", "review"]);
    let prompt = std::fs::read_to_string(e.path().join("prompt-seen.txt")).unwrap();
    assert!(prompt.contains("Review the login"), "{prompt}");
    assert!(
        prompt.contains("The session table needs an index"),
        "an insight about a dependency: {prompt}"
    );
    assert!(!prompt.contains("Invoices"), "{prompt}");
}

#[test]
fn a_template_that_shows_objectives_and_dependencies_gets_them() {
    let e = project(None);
    e.write(
        ".downbeat/roles/lister.toml",
        "description = \"Lists\"\nprompt = \"{% for o in objectives %}objective: {{ o }}\\n{% endfor %}{% for d in dependencies %}after: {{ d.title }}: {{ d.result }}\\n{% endfor %}\"\n",
    );
    e.ok(&["objective", "add", "Users can log in"]);
    e.ok(&[
        "add",
        "List the login",
        "--role",
        "lister",
        "--key",
        "list",
        "--after",
        "design",
        "--executor",
        "capture",
    ]);
    e.ok(&["run", "--only", "list"]);
    let prompt = std::fs::read_to_string(e.path().join("prompt-seen.txt")).unwrap();
    assert!(prompt.contains("objective: Users can log in"), "{prompt}");
    assert!(
        prompt.contains("after: Design the login: OAuth2 with PKCE"),
        "{prompt}"
    );
}

/// A task the loop starts (ready only once another completed in the same run) is held
/// without its text; its prompt still shows its description and acceptance criteria, read
/// whole when it starts.
#[test]
fn a_task_started_by_the_loop_shows_its_whole_text() {
    let e = Env::builder().fixed_clock().init().build();
    e.write(
        ".downbeat/config.toml",
        "[run]\nexecutor = \"capture\"\n\n[executors.capture]\ntype = \"process\"\nshell = \"cat > \\\"prompt-$DOWNBEAT_TASK_ID.txt\\\"\"\n",
    );
    e.ok(&["add", "Lay the groundwork", "--key", "first"]);
    let id = e.json(&[
        "add",
        "Write the parser",
        "--key",
        "second",
        "--role",
        "implementer",
        "--after",
        "first",
        "-d",
        "Parse the config file with serde.",
        "--accept",
        "Unknown keys are errors",
    ])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    e.ok(&["run"]);
    let prompt = std::fs::read_to_string(e.path().join(format!("prompt-{id}.txt"))).unwrap();
    assert!(prompt.contains("Write the parser"), "{prompt}");
    assert!(
        prompt.contains("Parse the config file with serde."),
        "{prompt}"
    );
    assert!(prompt.contains("Unknown keys are errors"), "{prompt}");
}

/// What an agent records while the run goes on reaches the prompts of the tasks started
/// after it: a later task's attempt reads the team's records afresh, while attempts started
/// together share one read of them.
#[test]
fn what_an_agent_records_during_the_run_reaches_the_next_prompt() {
    let e = Env::builder().fixed_clock().init().build();
    let bin = common::bin().display().to_string();
    e.write(
        ".downbeat/config.toml",
        &format!(
            "[run]\nexecutor = \"capture\"\n\n[executors.capture]\ntype = \"process\"\n\
             shell = \"cat > \\\"prompt-$DOWNBEAT_TASK_ID.txt\\\" && if [ \\\"$DOWNBEAT_TASK_TITLE\\\" = Learn ]; then '{bin}' insight add 'Retries need jitter' && '{bin}' decision add 'Use exponential backoff' --why 'fewer collisions'; fi\"\n"
        ),
    );
    let id = |v: serde_json::Value| v["id"].as_str().unwrap().to_owned();
    let learn = id(e.json(&["add", "Learn", "--key", "learn"]));
    let apply = id(e.json(&["add", "Apply", "--after", "learn"]));
    // Started with the first, so before anything was learned.
    let beside = id(e.json(&["add", "Beside"]));
    e.ok(&["run", "-j", "2"]);
    let prompt =
        |t: &str| std::fs::read_to_string(e.path().join(format!("prompt-{t}.txt"))).unwrap();
    let later = prompt(&apply);
    assert!(later.contains("Retries need jitter"), "{later}");
    assert!(later.contains("Use exponential backoff"), "{later}");
    for t in [&learn, &beside] {
        let p = prompt(t);
        assert!(!p.contains("Retries need jitter"), "{p}");
    }
}
