//! Consensus: one question answered by three executors that disagree, a resolve task that sees
//! the three answers side by side, the integration report saying which agree and which
//! conflict; the plan-file, CLI and MCP ways in, and their refusals.

mod common;

use std::sync::Arc;

use common::{Env, NOW};
use downbeat_app::project::{self, Globals};
use downbeat_core::time::Timestamp;
use downbeat_mcp::{Ctx, DownbeatMcp, Profile};
use rmcp::model::{CallToolRequestParams, ClientCapabilities, ClientConfig, Implementation};
use rmcp::{RoleClient, ServiceExt, service::RunningService};
use serde_json::{Value, json};

/// A process executor whose summary is `summary`, with `notes.md` as its artifact when
/// `notes` is given.
fn answering(name: &str, summary: &str, notes: Option<&str>) -> String {
    let (write, artifacts) = match notes {
        Some(n) => (
            format!("echo '{n}' > notes.md && "),
            ", \"artifacts\": [\"notes.md\"]",
        ),
        None => (String::new(), ""),
    };
    format!(
        "[executors.{name}]\ntype = \"process\"\nshell = \"\"\"{write}echo '{{\"summary\": \"{summary}\"{artifacts}}}' > \"$DOWNBEAT_RESULT_FILE\" \"\"\"\n\n"
    )
}

/// Three answering executors that disagree (the first two only in case and punctuation), and a
/// judge for the reviewer role that keeps the prompt it was given.
fn project() -> Env {
    let e = Env::builder().keep("PATH").fixed_clock().init().build();
    let config = format!(
        "[run]\nexecutor = \"noop\"\n\n{}{}{}[executors.judge]\ntype = \"process\"\nshell = \"\"\"cat > resolve-prompt.txt; echo '{{\"summary\": \"Authlib: answers 1 and 2 chose it\"}}' > \"$DOWNBEAT_RESULT_FILE\" \"\"\"\n\n[roles.reviewer]\nexecutor = \"judge\"\n",
        answering("alice", "Use Authlib.", None),
        answering("bob", "use authlib", None),
        answering("carol", "Use python-jose", Some("jose is smaller")),
    );
    e.write(".downbeat/config.toml", &config);
    e
}

const PLAN: &str = r#"
[[tasks]]
key = "lib"
title = "Choose an auth library"
description = "Which library should the login use?"
role = "architect"
consensus = { executors = ["alice", "bob", "carol"] }

[[tasks]]
key = "build"
title = "Build the login"
depends_on = ["lib"]
"#;

#[test]
fn three_disagreeing_answers_reach_the_resolver_side_by_side_and_the_report_says_which_agree() {
    let e = project();
    e.write("plan.toml", PLAN);
    e.ok(&["plan", "apply", "plan.toml"]);
    let list = e.json(&["list"]);
    let keys: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["key"].as_str())
        .collect();
    for k in [
        "lib",
        "lib.answer-1",
        "lib.answer-2",
        "lib.answer-3",
        "lib.resolve",
    ] {
        assert!(keys.contains(&k), "{k} in {keys:?}");
    }
    e.ok(&["run"]);
    let prompt = std::fs::read_to_string(e.path().join("resolve-prompt.txt")).unwrap();
    insta::assert_snapshot!("resolve_prompt", prompt);
    for answer in [
        "Use Authlib.",
        "use authlib",
        "Use python-jose",
        "artifact: ",
    ] {
        assert!(prompt.contains(answer), "{answer} in {prompt}");
    }
    let build = e.json(&["show", "build"]);
    assert_eq!(build["status"], "completed", "{build}");

    let report = e.ok(&["synthesize", "lib", "-o", "-"]);
    let section = &report
        [report.find("## Consensus").expect(&report)..report.find("## Failures").expect(&report)];
    insta::assert_snapshot!("consensus_report", section);
    assert!(
        section.contains("agreement: answers 1 and 2 agree"),
        "{section}"
    );
    assert!(
        section.contains("conflict: answers 1 and 2 vs answer 3"),
        "{section}"
    );
    assert!(
        section.contains("Authlib: answers 1 and 2 chose it"),
        "{section}"
    );
}

#[test]
fn a_plan_with_a_bad_consensus_is_refused_with_every_problem() {
    let e = project();
    e.write(
        "bad.toml",
        r#"
[[tasks]]
key = "one"
title = "One answer"
consensus = 1

[[tasks]]
key = "who"
title = "Unknown executor"
consensus = { executors = ["alice", "mallory"] }
"#,
    );
    let err = e.fails(&["plan", "apply", "bad.toml"], 4);
    assert!(
        err.contains("task `one` (line 3): consensus needs at least 2 answers to compare, got 1"),
        "{err}"
    );
    assert!(
        err.contains("task `who` (line 8): consensus: unknown executor `mallory`"),
        "{err}"
    );
    assert!(e.json(&["list"]).as_array().unwrap().is_empty());
}

#[test]
fn add_consensus_makes_the_container_its_answers_and_its_resolver() {
    let e = project();
    let out = e.json(&[
        "add",
        "Pick a queue",
        "--consensus",
        "2",
        "--resolver",
        "architect",
    ]);
    assert_eq!(out["key"], "pick-a-queue", "{out}");
    let resolve = e.json(&["show", "pick-a-queue.resolve"]);
    assert_eq!(resolve["role"], "architect", "{resolve}");
    let answer = e.json(&["show", "pick-a-queue.answer-2"]);
    assert_eq!(answer["title"], "Pick a queue (answer 2 of 2)", "{answer}");

    let err = e.fails(&["add", "Alone", "--consensus", "1"], 4);
    assert!(err.contains("at least 2 answers"), "{err}");
    let err = e.fails(&["add", "Who", "--consensus-executors", "alice,mallory"], 4);
    assert!(err.contains("unknown executor `mallory`"), "{err}");
    e.fails(&["add", "Judge", "--resolver", "architect"], 2);
}

type Client = RunningService<RoleClient, ClientConfig>;

async fn client(ctx: Arc<Ctx>) -> Client {
    let (server_io, client_io) = tokio::io::duplex(1 << 20);
    let server = DownbeatMcp::new(ctx);
    tokio::spawn(async move {
        if let Ok(s) = server.serve(server_io).await {
            let _ = s.waiting().await;
        }
    });
    ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new("consensus", "1.0"),
    )
    .serve(client_io)
    .await
    .unwrap()
}

/// Calls a tool; whether it failed, and its text.
async fn call(c: &Client, tool: &str, args: Value) -> (bool, String) {
    let Value::Object(args) = args else {
        panic!("arguments must be an object")
    };
    let r = c
        .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(args))
        .await
        .unwrap();
    let text = r
        .content
        .first()
        .and_then(|b| b.as_text())
        .map(|t| t.text.clone())
        .unwrap_or_default();
    (r.is_error == Some(true), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consensus_through_mcp_plan_and_task_add() {
    let env = Env::builder().build();
    let g = Globals {
        project: Some(env.path().to_owned()),
        actor: "tester".into(),
        ..Default::default()
    };
    let (mut p, _) = project::init(&g).await.unwrap();
    p.fixed_now = Timestamp::parse_rfc3339(NOW);
    let ctx = Arc::new(Ctx::new(Some(g.actor.clone()), p, Profile::Full));
    let c = client(ctx).await;

    let plan = json!({"tasks": [
        {"key": "db", "title": "Choose a database", "consensus": {"n": 3, "resolver": "architect"}}
    ]});
    let (err, text) = call(&c, "plan", json!({"plan": plan})).await;
    assert!(!err, "{text}");
    let (err, text) = call(&c, "tasks", json!({"action": "show", "id": "db.resolve"})).await;
    assert!(!err, "{text}");
    let resolve: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(resolve["role"], "architect", "{text}");
    assert_eq!(resolve["tags"], json!(["consensus:resolve"]), "{text}");
    assert_eq!(resolve["depends_on"].as_array().unwrap().len(), 3, "{text}");

    let (err, text) = call(
        &c,
        "tasks",
        json!({"action": "add", "title": "Pick a cache", "key": "cache", "consensus": 2}),
    )
    .await;
    assert!(!err, "{text}");
    let (err, text) = call(
        &c,
        "tasks",
        json!({"action": "show", "id": "cache.answer-2"}),
    )
    .await;
    assert!(!err, "{text}");

    let (err, text) = call(
        &c,
        "task_add",
        json!({"title": "Pick a log", "consensus": {"executors": ["claude", "nobody"]}}),
    )
    .await;
    assert!(err, "{text}");
    assert!(text.contains("unknown executor `nobody`"), "{text}");
    let (err, text) = call(
        &c,
        "tasks",
        json!({"action": "add", "title": "Pick a log", "consensus": {"count": 2}}),
    )
    .await;
    assert!(err, "{text}");
    assert!(text.contains("unknown field `count`"), "{text}");
    let _ = c.cancel().await;
}

/// Claude Code, Codex and Gemini CLI stand-ins (`tests/fakes/bin`) answer; the resolve task
/// runs on the project's executor and sees the three final messages.
#[test]
fn three_agent_clis_disagree_and_the_resolver_reads_all_three() {
    let fakes = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fakes/bin");
    let e = Env::builder()
        .home_inside()
        .var("PATH", &format!("{}:/usr/bin:/bin", fakes.display()))
        .var("FAKE_AGENT_SCRIPT", "script.json")
        .var("FAKE_AGENT_LOG", "agent.log")
        .fixed_clock()
        .init()
        .build();
    e.write(".downbeat/config.toml", "[run]\nexecutor = \"claude\"\n");
    // The resolve prompt quotes the answers' titles, so its step comes first.
    let script = json!({"steps": [
        {"when": "Resolve: Pick an auth library", "message": "Authlib: two of three answers chose it"},
        {"when": "(answer 1 of 3)", "message": "Use Authlib"},
        {"when": "(answer 2 of 3)", "message": "use Authlib."},
        {"when": "(answer 3 of 3)", "message": "Use python-jose"},
    ]});
    e.write("script.json", &script.to_string());
    e.ok(&[
        "add",
        "Pick an auth library",
        "--key",
        "lib",
        "--consensus-executors",
        "claude,codex,gemini",
    ]);
    e.ok(&["run"]);
    let calls: Vec<Value> = std::fs::read_to_string(e.path().join("agent.log"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(calls.len(), 4, "{calls:?}");
    let by = |needle: &str| {
        calls
            .iter()
            .find(|c| c["prompt"].as_str().unwrap().contains(needle))
            .unwrap_or_else(|| panic!("no call for {needle}"))
    };
    assert_eq!(by("(answer 1 of 3)")["cli"], "claude");
    let resolve = by("Resolve: Pick an auth library");
    assert_eq!(resolve["cli"], "claude");
    let prompt = resolve["prompt"].as_str().unwrap();
    for answer in ["Use Authlib", "use Authlib.", "Use python-jose"] {
        assert!(prompt.contains(answer), "{answer} in {prompt}");
    }
    let answered: Vec<&str> = calls
        .iter()
        .filter(|c| !c["prompt"].as_str().unwrap().contains("Resolve:"))
        .map(|c| c["cli"].as_str().unwrap())
        .collect();
    let mut sorted = answered.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, ["claude", "codex", "gemini"]);
    let report = e.ok(&["synthesize", "lib", "-o", "-"]);
    assert!(
        report.contains("- answer 2 ") && report.contains("by `codex`: use Authlib."),
        "{report}"
    );
    assert!(
        report.contains("conflict: answers 1 and 2 vs answer 3"),
        "{report}"
    );
    assert!(
        report.contains("decision (") && report.contains("Authlib: two of three answers chose it"),
        "{report}"
    );
}
