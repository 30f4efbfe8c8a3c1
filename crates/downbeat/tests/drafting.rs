//! `plan draft` and `plan expand` end to end: against a fake OpenAI-compatible endpoint (a
//! small HTTP server in the test that answers with scripted replies and keeps the requests)
//! and against the agent CLI stand-ins of `tests/fakes` (scripted through `message_file`).
//! One invalid answer first, then a valid one, so the round that sends the problems back is
//! exercised; and the ends: never valid, not a plan, an endpoint that is down, a timeout, a
//! missing agent program.

mod common;

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use common::Env;
use serde_json::{Value, json};

/// A plan with two problems: a task without effort, and a role the project does not have.
const INVALID: &str = r#"Here is the plan.

```toml
[plan]
name = "oauth2-login"

[[tasks]]
key = "design"
title = "Design the token flow"
role = "wizard"
effort = 2
tags = ["complexity:medium", "risk:high"]
files = ["docs/auth.md"]

[[tasks]]
key = "callback"
title = "Handle the provider callback"
role = "implementer"
depends_on = ["design"]
tags = ["complexity:high", "risk:medium"]
files = ["src/auth/callback.rs"]
```
"#;

/// The corrected plan.
const VALID: &str = r#"The corrected plan:

```toml
[plan]
name = "oauth2-login"
description = "Sign in with OAuth2"

[[tasks]]
key = "auth"
title = "OAuth2 login"
role = "architect"

[[tasks]]
key = "design"
parent = "auth"
title = "Design the token flow"
role = "architect"
effort = 2
tags = ["complexity:medium", "risk:high"]
files = ["docs/auth.md"]

[[tasks]]
key = "callback"
parent = "auth"
title = "Handle the provider callback"
role = "implementer"
depends_on = ["design"]
effort = 3
tags = ["complexity:high", "risk:medium"]
files = ["src/auth/callback.rs"]

[[tasks]]
key = "docs"
parent = "auth"
title = "Document the login"
role = "documenter"
depends_on = ["design"]
effort = 1
tags = ["complexity:low", "risk:low"]
```
"#;

/// A fake OpenAI-compatible endpoint: each chat completion gets the next scripted reply (the
/// last one again once they run out); the requests' bodies are kept.
struct FakeLlm {
    url: String,
    bodies: Arc<Mutex<Vec<Value>>>,
}

impl FakeLlm {
    fn start(replies: &[&str]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/v1", listener.local_addr().unwrap());
        let bodies: Arc<Mutex<Vec<Value>>> = Arc::default();
        let replies: Vec<String> = replies.iter().map(|r| (*r).to_owned()).collect();
        let kept = bodies.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (replies, kept) = (replies.clone(), kept.clone());
                std::thread::spawn(move || serve(stream, &replies, &kept));
            }
        });
        Self { url, bodies }
    }

    /// The prompts received, in order.
    fn prompts(&self) -> Vec<String> {
        self.bodies
            .lock()
            .unwrap()
            .iter()
            .map(|b| b["messages"][0]["content"].as_str().unwrap().to_owned())
            .collect()
    }
}

/// Answers the requests of one connection (keep-alive) until it closes.
fn serve(stream: TcpStream, replies: &[String], kept: &Mutex<Vec<Value>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = stream;
    loop {
        let mut length = 0usize;
        let mut first = true;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" && !first {
                break;
            }
            first = false;
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let n = {
            let mut k = kept.lock().unwrap();
            k.push(serde_json::from_slice(&body).unwrap());
            k.len()
        };
        let reply = &replies[(n - 1).min(replies.len() - 1)];
        let answer = json!({
            "id": format!("chatcmpl-{n}"),
            "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1000, "completion_tokens": 200, "total_tokens": 1200},
        })
        .to_string();
        let _ = write!(
            out,
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{answer}",
            answer.len()
        );
    }
}

/// A project whose configuration has the `llm` executor at `url`.
fn project(url: &str) -> Env {
    let e = Env::builder().fixed_clock().init().build();
    e.append(
        ".downbeat/config.toml",
        &format!("\n[executors.llm]\ntype = \"http\"\nbase_url = \"{url}\"\nmodel = \"m\"\n"),
    );
    e
}

fn id(e: &Env, key: &str) -> String {
    e.json(&["show", key])["id"].as_str().unwrap().to_owned()
}

fn parent(e: &Env, key: &str) -> Value {
    e.json(&["show", key])["parent"].clone()
}

/// Whether `to` waits on `from`.
fn blocks(e: &Env, from: &str, to: &str) -> bool {
    let (f, t) = (id(e, from), id(e, to));
    e.json(&["show", to])["edges"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["from"] == f.as_str() && x["to"] == t.as_str() && x["kind"] == "blocks")
}

fn keys(e: &Env) -> Vec<String> {
    let mut k: Vec<String> = e
        .json(&["list"])
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["key"].as_str().map(str::to_owned))
        .collect();
    k.sort();
    k
}

#[test]
fn a_draft_over_http_sends_the_problems_back_then_applies() {
    let llm = FakeLlm::start(&[INVALID, VALID]);
    let e = project(&llm.url);
    let v = e.json(&[
        "plan",
        "draft",
        "Add OAuth2 login",
        "--executor",
        "llm",
        "--apply",
    ]);
    let rounds = v["rounds"].as_array().unwrap();
    assert_eq!(rounds.len(), 2, "{v}");
    assert_eq!(rounds[0]["verdict"], "invalid");
    let problems = rounds[0]["problems"].to_string();
    assert!(
        problems.contains("task `callback` has no `effort`"),
        "{problems}"
    );
    assert!(problems.contains("unknown role `wizard`"), "{problems}");
    assert_eq!(rounds[1]["verdict"], "valid");
    assert_eq!(rounds[1]["tokens_in"], 1000);
    assert_eq!(v["plan"], "oauth2-login");
    assert_eq!(v["waves"], json!([["design"], ["callback", "docs"]]));
    assert_eq!(v["critical_path"], json!(["design", "callback"]));
    assert_eq!(v["critical_path_effort"], 5);
    assert_eq!(v["tasks"][2]["complexity"], "high");
    assert_eq!(v["tasks"][2]["risk"], "medium");
    assert!(v["notes"][0].as_str().unwrap().contains("docs"), "{v}");
    assert_eq!(v["applied"]["tasks"].as_array().unwrap().len(), 4);
    // The graph: a container with three tasks, the edges of the plan.
    assert_eq!(keys(&e), vec!["auth", "callback", "design", "docs"]);
    let auth = id(&e, "auth");
    for k in ["design", "callback", "docs"] {
        assert_eq!(parent(&e, k), auth.as_str(), "{k}");
    }
    assert!(blocks(&e, "design", "callback"));
    assert!(blocks(&e, "design", "docs"));
    assert!(!blocks(&e, "callback", "docs"));
    // What the endpoint was told: the goal, the roles, the format; then the problems.
    let prompts = llm.prompts();
    assert_eq!(prompts.len(), 2);
    assert!(prompts[0].contains("Add OAuth2 login") && prompts[0].contains("`implementer`"));
    assert!(prompts[0].contains("## The plan format"));
    assert!(prompts[1].starts_with(prompts[0].trim_end()));
    assert!(prompts[1].contains("## What is wrong with it"));
    assert!(prompts[1].contains("task `callback` has no `effort`"));
    // Both calls are counted: in the log and in the spend.
    let metrics = e.json(&["metrics"]);
    let drafting = metrics["spend"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["role"] == "(drafting)")
        .unwrap_or_else(|| panic!("{metrics}"));
    assert_eq!(drafting["attempts"], 2);
    assert_eq!(drafting["tokens_in"], 2000);
    assert_eq!(drafting["tokens_out"], 400);
    let log = e.json(&["log"]).to_string();
    assert_eq!(log.matches("plan.drafted").count(), 2, "{log}");
}

#[test]
fn a_draft_written_to_a_file_applies_later_as_a_living_plan() {
    let llm = FakeLlm::start(&[VALID]);
    let e = project(&llm.url);
    let o = e.run(&[
        "plan",
        "draft",
        "Add OAuth2 login",
        "--executor",
        "llm",
        "-o",
        "auth.toml",
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    // The proposal before anything is written.
    assert!(out.contains("wave 1: design"), "{out}");
    assert!(out.contains("wave 2: callback, docs"), "{out}");
    assert!(
        out.contains("critical path: design → callback (5 effort unit(s))"),
        "{out}"
    );
    assert!(out.contains("makespan: sequential 6"), "{out}");
    assert!(err.contains("wrote auth.toml"), "{err}");
    assert!(keys(&e).is_empty(), "nothing applied without --apply");
    e.ok(&["plan", "apply", "auth.toml"]);
    assert_eq!(keys(&e), vec!["auth", "callback", "design", "docs"]);
    let again = e.json(&["plan", "apply", "auth.toml", "--dry-run"]);
    assert_eq!(again["unchanged"], 4, "{again}");
    // Drafted again, the same plan name and keys are taken: sent back, never applied over.
    let v = e.fails(
        &[
            "plan",
            "draft",
            "Add OAuth2 login",
            "--executor",
            "llm",
            "--rounds",
            "1",
        ],
        8,
    );
    assert!(v.contains("task key `design` is already used"), "{v}");
    assert!(v.contains("a plan named `oauth2-login` was applied"), "{v}");
}

#[test]
fn a_draft_that_never_validates_lists_the_last_problems_and_writes_nothing() {
    let llm = FakeLlm::start(&[INVALID]);
    let e = project(&llm.url);
    let err = e.fails(
        &[
            "plan",
            "draft",
            "Add OAuth2 login",
            "--executor",
            "llm",
            "--rounds",
            "2",
            "-o",
            "plan.toml",
            "--apply",
        ],
        8,
    );
    assert!(
        err.contains("the draft did not pass the checks after 2 round(s); nothing was written"),
        "{err}"
    );
    assert!(err.contains("  - task `callback` has no `effort`"), "{err}");
    assert!(err.contains(".downbeat/drafts/1"), "{err}");
    assert_eq!(llm.prompts().len(), 2);
    assert!(!e.path().join("plan.toml").exists());
    assert!(keys(&e).is_empty());
}

#[test]
fn an_answer_that_is_not_a_plan_says_so() {
    let llm = FakeLlm::start(&["I would rather not plan this."]);
    let e = project(&llm.url);
    let err = e.fails(
        &["plan", "draft", "Add OAuth2 login", "--executor", "llm"],
        8,
    );
    assert!(
        err.contains("the agent's answer is not a plan after 3 round(s): the answer holds no plan"),
        "{err}"
    );
    // The agent was told so each time.
    let prompts = llm.prompts();
    assert_eq!(prompts.len(), 3);
    assert!(prompts[2].contains("the answer holds no plan"));
}

#[test]
fn an_endpoint_that_is_down_or_silent_ends_with_exit_code_9() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = project(&format!("http://127.0.0.1:{port}/v1"));
    let err = e.fails(
        &["plan", "draft", "Add OAuth2 login", "--executor", "llm"],
        9,
    );
    assert!(err.contains("`llm` could not answer"), "{err}");
    assert!(err.contains("unreachable"), "{err}");
    // A server that accepts and never answers: the call's limit ends it.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", silent.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in silent.incoming().flatten() {
            held.push(s);
        }
    });
    let e = project(&url);
    let err = e.fails(
        &[
            "plan",
            "draft",
            "Add OAuth2 login",
            "--executor",
            "llm",
            "--timeout",
            "1s",
        ],
        9,
    );
    assert!(err.contains("`llm` did not answer within 1s"), "{err}");
    let log = e.json(&["log"]).to_string();
    assert!(log.contains("timed-out"), "{log}");
}

#[test]
fn a_missing_agent_or_no_agent_at_all_is_refused_before_asking() {
    let e = Env::builder()
        .fixed_clock()
        .var("PATH", "/usr/bin:/bin")
        .init()
        .build();
    let err = e.fails(
        &["plan", "draft", "Add OAuth2 login", "--agent", "claude"],
        4,
    );
    assert!(err.contains("executor `claude` cannot draft here"), "{err}");
    assert!(err.contains("not installed"), "{err}");
    let err = e.fails(&["plan", "draft", "Add OAuth2 login"], 4);
    assert!(err.contains("no agent to draft with"), "{err}");
    let err = e.fails(&["plan", "draft", "  ", "--agent", "claude"], 4);
    assert!(err.contains("the goal is empty"), "{err}");
}

fn fakes() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fakes/bin")
}

#[test]
fn every_agent_cli_drafts_read_only_with_a_round_of_problems() {
    for agent in ["claude", "codex", "gemini", "aider", "opencode"] {
        let path = format!("{}:/usr/bin:/bin", fakes().display());
        let e = Env::builder()
            .fixed_clock()
            .home_inside()
            .var("PATH", &path)
            .var("FAKE_AGENT_SCRIPT", "script.json")
            .var("FAKE_AGENT_LOG", "agent.log")
            .init()
            .build();
        assert!(
            std::process::Command::new("git")
                .args(["init", "-q"])
                .current_dir(e.path())
                .status()
                .unwrap()
                .success()
        );
        e.write("invalid.md", INVALID);
        e.write("valid.md", VALID);
        e.write(
            "script.json",
            &json!({"steps": [
                {"attempt": 1, "message_file": "invalid.md", "usage": {"input_tokens": 300, "output_tokens": 50}},
                {"attempt": 2, "message_file": "valid.md", "usage": {"input_tokens": 400, "output_tokens": 60}},
            ]})
            .to_string(),
        );
        e.ok(&["add", "Existing work", "--key", "existing"]);
        let v = e.json(&["plan", "draft", "Add OAuth2 login", "--agent", agent]);
        let rounds = v["rounds"].as_array().unwrap();
        assert_eq!(rounds.len(), 2, "{agent}: {v}");
        assert_eq!(rounds[0]["verdict"], "invalid", "{agent}");
        assert_eq!(rounds[1]["verdict"], "valid", "{agent}");
        assert_eq!(
            v["waves"],
            json!([["design"], ["callback", "docs"]]),
            "{agent}"
        );
        let log: Vec<Value> = std::fs::read_to_string(e.path().join("agent.log"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(log.len(), 2, "{agent}");
        for call in &log {
            assert_eq!(call["permission"], "read", "{agent}: drafting never edits");
            assert!(
                !call["prompt"]
                    .as_str()
                    .unwrap()
                    .contains("## How to report back"),
                "{agent}"
            );
        }
        assert!(
            log[1]["prompt"]
                .as_str()
                .unwrap()
                .contains("task `callback` has no `effort`"),
            "{agent}"
        );
        assert_eq!(keys(&e), vec!["existing"], "{agent}: nothing applied");
    }
}

#[test]
fn expand_places_the_subtasks_under_the_task() {
    let subtasks = r#"```toml
[[tasks]]
key = "schema"
title = "Write the schema"
role = "implementer"
effort = 2
tags = ["complexity:low", "risk:low"]
files = ["db/schema.sql"]

[[tasks]]
key = "migrate"
title = "Migrate the data"
role = "implementer"
depends_on = ["schema", "backup"]
effort = 3
tags = ["complexity:high", "risk:high"]
files = ["db/migrate.rs"]
```"#;
    let llm = FakeLlm::start(&[subtasks]);
    let e = project(&llm.url);
    e.ok(&["add", "Take a backup", "--key", "backup"]);
    e.ok(&[
        "add",
        "Move to PostgreSQL",
        "--key",
        "move",
        "--description",
        "Leave SQLite behind",
    ]);
    let v = e.json(&["plan", "expand", "move", "--executor", "llm", "--apply"]);
    let mv = id(&e, "move");
    assert_eq!(v["plan"], format!("expand-{mv}"));
    assert_eq!(v["waves"], json!([["schema"], ["migrate"]]));
    assert_eq!(parent(&e, "migrate"), mv.as_str());
    assert_eq!(parent(&e, "schema"), mv.as_str());
    assert!(blocks(&e, "backup", "migrate"));
    assert!(blocks(&e, "schema", "migrate"));
    let prompt = &llm.prompts()[0];
    assert!(prompt.contains("`move`: Move to PostgreSQL"), "{prompt}");
    assert!(prompt.contains("Leave SQLite behind"));
    // A container cannot be split again; nor can a finished task.
    let err = e.fails(&["plan", "expand", "move", "--executor", "llm"], 5);
    assert!(err.contains("has subtasks already"), "{err}");
    e.ok(&["done", "backup", "--force"]);
    let err = e.fails(&["plan", "expand", "backup", "--executor", "llm"], 5);
    assert!(
        err.contains("only a pending, blocked or failed task"),
        "{err}"
    );
}

/// An MCP client drafts and applies: the same rounds through the `plan_draft` tool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_clients_draft_and_expand_plans() {
    use downbeat_app::project::{self, Globals};
    use downbeat_mcp::{Ctx, DownbeatMcp, Profile};
    use rmcp::ServiceExt as _;
    use rmcp::model::{CallToolRequestParams, ClientCapabilities, ClientConfig, Implementation};

    let subtasks = "```toml\n[[tasks]]\nkey = \"split-a\"\ntitle = \"A\"\neffort = 1\ntags = [\"complexity:low\", \"risk:low\"]\nfiles = [\"a\"]\n```";
    let llm = FakeLlm::start(&[INVALID, VALID, subtasks]);
    let env = Env::builder().build();
    let g = Globals {
        project: Some(env.path().to_owned()),
        actor: "tester".into(),
        ..Default::default()
    };
    project::init(&g).await.unwrap();
    env.append(
        ".downbeat/config.toml",
        &format!(
            "\n[executors.llm]\ntype = \"http\"\nbase_url = \"{}\"\nmodel = \"m\"\n",
            llm.url
        ),
    );
    let p = project::open(&g).await.unwrap();
    let ctx = std::sync::Arc::new(Ctx::new(Some("tester".into()), p, Profile::Full));
    let (server_io, client_io) = tokio::io::duplex(1 << 20);
    tokio::spawn(async move {
        if let Ok(s) = DownbeatMcp::new(ctx).serve(server_io).await {
            let _ = s.waiting().await;
        }
    });
    let c = ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new("drafter", "1.0"),
    )
    .serve(client_io)
    .await
    .unwrap();
    let call = |tool: &'static str, args: Value| {
        let c = &c;
        async move {
            let Value::Object(args) = args else { panic!() };
            let r = c
                .call_tool(CallToolRequestParams::new(tool).with_arguments(args))
                .await
                .unwrap();
            let text = r.content[0].as_text().unwrap().text.clone();
            (
                r.is_error == Some(true),
                serde_json::from_str::<Value>(&text).unwrap_or(Value::String(text)),
            )
        }
    };
    let (err, v) = call(
        "plan_draft",
        json!({"goal": "Add OAuth2 login", "executor": "llm", "apply": true}),
    )
    .await;
    assert!(!err, "{v}");
    assert_eq!(v["rounds"][0]["verdict"], "invalid");
    assert_eq!(v["rounds"][1]["verdict"], "valid");
    assert_eq!(v["applied"]["tasks"].as_array().unwrap().len(), 4, "{v}");
    assert!(
        v["toml"]
            .as_str()
            .unwrap()
            .contains("name = \"oauth2-login\"")
    );
    let (err, v) = call(
        "plan_expand",
        json!({"task": "docs", "executor": "llm", "apply": true}),
    )
    .await;
    assert!(!err, "{v}");
    assert_eq!(v["tasks"][0]["parent"], "docs");
    let (err, v) = call("plan_draft", json!({"goal": "x", "agnet": "claude"})).await;
    assert!(err, "{v}");
    assert!(v.to_string().contains("unknown field"), "{v}");
    let _ = c.cancel().await;
}
