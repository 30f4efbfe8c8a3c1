//! The agent CLIs' built-in profiles, end to end through `downbeat run`, against stand-ins
//! under each CLI's own name (`tests/fakes/bin`, documented in `tests/fakes/README.md`). A
//! stand-in refuses unknown flags, fails when the prompt arrives twice or not at all, edits only
//! when the permission flags allow it, writes its CLI's output format, and logs each call.

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use common::Env;
use serde_json::{Value, json};

const AGENTS: [&str; 5] = ["claude", "codex", "gemini", "aider", "opencode"];

fn fakes() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fakes/bin")
}

/// A project with the stand-ins first on `PATH`, the script `script` (see the README of the
/// fakes), their log in `agent.log` and their sessions under HOME.
fn project(config: &str, script: Value) -> Env {
    project_with(config, script, &[])
}

fn project_with(config: &str, script: Value, vars: &[(&str, &str)]) -> Env {
    let path = format!("{}:/usr/bin:/bin", fakes().display());
    let mut b = Env::builder()
        .home_inside()
        .var("PATH", &path)
        .var("FAKE_AGENT_SCRIPT", "script.json")
        .var("FAKE_AGENT_LOG", "agent.log");
    for (k, v) in vars {
        b = b.var(k, v);
    }
    let e = b.init().build();
    e.append(".downbeat/config.toml", config);
    e.write("script.json", &script.to_string());
    e
}

/// The stand-ins' log: one object per call.
fn calls(e: &Env) -> Vec<Value> {
    std::fs::read_to_string(e.path().join("agent.log"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn attempts(e: &Env, task: &str) -> Vec<Value> {
    e.json(&["attempts", task]).as_array().unwrap().clone()
}

#[test]
fn every_profile_edits_for_implementers_and_only_reads_for_reviewers() {
    let script = json!({"steps": [
        {"when": "Review the greeting", "write": {"review.txt": "no\n"}, "message": "The greeting reads well"},
        {"when": "Write the greeting", "write": {"hello.txt": "hi\n"}, "message": "Wrote hello.txt",
         "usage": {"input_tokens": 120, "output_tokens": 30}, "cost_usd": 0.02},
    ]});
    for agent in AGENTS {
        let e = project(
            "[worktrees]\nmode = \"off\"\n\n[executors.aider]\ntype = \"agent\"\nagent = \"aider\"\nmodel = \"sonnet\"\n",
            script.clone(),
        );
        assert!(
            std::process::Command::new("git")
                .arg("init")
                .arg("-q")
                .current_dir(e.path())
                .status()
                .unwrap()
                .success()
        );
        e.ok(&[
            "add",
            "Write the greeting",
            "--role",
            "implementer",
            "--key",
            "write",
        ]);
        e.ok(&[
            "add",
            "Review the greeting",
            "--role",
            "reviewer",
            "--key",
            "review",
            "--after",
            "write",
        ]);
        let o = e.run(&["run", "--agent", agent]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(0), "{agent}: {err}");
        assert_eq!(
            e.read(&e.path().join("hello.txt")),
            "hi\n",
            "{agent}: the implementer edits"
        );
        assert!(
            !e.path().join("review.txt").exists(),
            "{agent}: the reviewer only reads"
        );
        let log = calls(&e);
        assert_eq!(log.len(), 2, "{agent}: {log:?}");
        assert_eq!(log[0]["permission"], "edit", "{agent}");
        assert_eq!(log[1]["permission"], "read", "{agent}");
        assert_eq!(log[1]["denied"], json!(["review.txt"]), "{agent}");
        // The prompt arrived once (a stand-in fails otherwise) and is the rendered one.
        let prompt = log[0]["prompt"].as_str().unwrap();
        assert!(prompt.contains("Write the greeting"), "{agent}");
        assert!(
            prompt.contains("## How to report back") && prompt.contains("DOWNBEAT_RESULT_FILE"),
            "{agent}: {prompt}"
        );
        let a = &attempts(&e, "write")[0];
        let record = &a["agent"];
        assert_eq!(record["agent"], agent, "{a}");
        assert_eq!(
            record["session"].is_null(),
            agent == "aider",
            "{agent}: {record}"
        );
        assert_eq!(
            record["cost_usd"].as_f64().is_some(),
            matches!(agent, "claude" | "aider" | "opencode"),
            "{agent}: {record}"
        );
        // The ledger keeps the same, for attempts run on any machine.
        let detail = &a["detail"];
        assert_eq!(detail["agent"], agent, "{a}");
        assert_eq!(detail["session"], record["session"], "{agent}: {a}");
        assert_eq!(detail["cost_usd"], record["cost_usd"], "{agent}: {a}");
        assert_eq!(
            (a["tokens_prompt"].as_i64(), a["tokens_completion"].as_i64()),
            (Some(120), Some(30)),
            "{agent}: {a}"
        );
        assert_eq!(a["summary"], "Wrote hello.txt", "{agent}: {a}");
        assert_eq!(
            e.json(&["show", "write"])["result"],
            "Wrote hello.txt",
            "{agent}"
        );
        // Aider's own commits stay off: Downbeat decides what is committed.
        let commits = std::process::Command::new("git")
            .args(["rev-list", "--all", "--count"])
            .current_dir(e.path())
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&commits.stdout).trim(),
            "0",
            "{agent} committed"
        );
        let rendered = e.ok(&["logs", "write"]);
        assert!(
            rendered.contains("Wrote hello.txt") || rendered.contains("hello.txt"),
            "{agent}: {rendered}"
        );
    }
}

#[test]
fn agents_reach_the_project_through_downbeats_mcp_server_acting_for_their_task() {
    let script = json!({"steps": [{"when": "Learn", "message": "noted",
    "mcp": [
        {"server": "downbeat", "tool": "context", "arguments": {"action": "insight", "text": "the cache needs a TTL"}},
        {"server": "downbeat", "tool": "tasks", "arguments": {"action": "add", "title": "Expire cache entries"}},
        {"server": "downbeat", "tool": "claim", "arguments": {}},
    ]}]});
    for agent in ["claude", "codex", "opencode"] {
        let e = project("", script.clone());
        e.ok(&[
            "add",
            "Learn about the cache",
            "--role",
            "implementer",
            "--key",
            "learn",
        ]);
        e.ok(&["run", "--agent", agent, "--only", "learn"]);
        let own = e.json(&["show", "learn"])["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let log = calls(&e);
        assert_eq!(log[0]["mcp_servers"], json!(["downbeat"]), "{agent}");
        let results = log[0]["mcp_results"].as_array().unwrap();
        assert_eq!(results[0]["ok"], true, "{agent}: {results:?}");
        assert_eq!(results[1]["ok"], true, "{agent}: {results:?}");
        // It acts for its own task: no claiming of other work.
        assert_eq!(results[2]["ok"], false, "{agent}: {results:?}");
        assert!(
            results[2].to_string().contains("claims no other work"),
            "{agent}: {results:?}"
        );
        // What it records is about its task, and under its name.
        let insights = e.json(&["insight", "list"]);
        assert_eq!(insights[0]["text"], "the cache needs a TTL", "{agent}");
        assert_eq!(insights[0]["task"], own, "{agent}: {insights}");
        let list = e.json(&["list"]);
        let added_id = list
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["title"] == "Expire cache entries")
            .map(|t| t["id"].as_str().unwrap().to_owned())
            .unwrap_or_else(|| panic!("{agent}: not added: {list}"));
        let added = e.json(&["show", &added_id]);
        let edges = added["edges"].to_string();
        assert!(
            edges.contains("discovered-from") && edges.contains(&own),
            "{agent}: {edges}"
        );
        let events = e.json(&["log"]);
        let by = events
            .as_array()
            .unwrap()
            .iter()
            .find(|ev| ev["action"] == "insight.added")
            .map(|ev| ev["actor"].as_str().unwrap().to_owned());
        assert_eq!(by, Some(format!("agent:{agent}:{own}")));
    }
}

#[test]
fn a_retry_resumes_the_session_the_failed_attempt_left() {
    let script = json!({"steps": [
        {"attempt": 1, "error": "the model is overloaded"},
        {"message": "done on the second try"},
    ]});
    for agent in ["claude", "codex", "gemini", "opencode"] {
        let e = project(
            "[run.retry]\nmax_attempts = 2\ndelay = \"0s\"\njitter = false\n",
            script.clone(),
        );
        e.ok(&[
            "add",
            "Flaky work",
            "--role",
            "implementer",
            "--key",
            "flaky",
        ]);
        let o = e.run(&["run", "--agent", agent]);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{agent}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let a = attempts(&e, "flaky");
        assert_eq!(a.len(), 2, "{agent}: {a:?}");
        assert_eq!(a[0]["outcome"], "failed", "{agent}");
        assert!(
            a[0]["error"].as_str().unwrap().contains("overloaded"),
            "{agent}: {}",
            a[0]
        );
        let log = calls(&e);
        assert!(log[0]["resumed"].is_null(), "{agent}");
        assert_eq!(log[1]["resumed"], log[0]["session_id"], "{agent}: {log:?}");
    }
}

#[test]
fn a_retry_resumes_the_session_from_the_ledger_when_the_attempt_directory_is_elsewhere() {
    // The first attempt ran "on another machine": its directory is not here, the ledger is.
    let script = json!({"steps": [
        {"attempt": 1, "error": "the model is overloaded"},
        {"message": "done on the second try"},
    ]});
    let e = project("", script);
    e.ok(&[
        "add",
        "Flaky work",
        "--role",
        "implementer",
        "--key",
        "flaky",
    ]);
    assert_eq!(e.run(&["run", "--agent", "claude"]).status.code(), Some(7));
    std::fs::remove_dir_all(e.path().join(".downbeat/runs")).unwrap();
    e.ok(&["retry", "flaky"]);
    let o = e.run(&["run", "--agent", "claude"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let log = calls(&e);
    assert_eq!(log.len(), 2, "{log:?}");
    assert!(log[1]["resumed"].is_string(), "{log:?}");
    assert_eq!(log[1]["resumed"], log[0]["session_id"], "{log:?}");
}

#[test]
fn preflight_lists_every_missing_program_before_anything_starts() {
    let e = project(
        "[executors.cl]\ntype = \"agent\"\nagent = \"claude\"\nprogram = \"claude-not-installed\"\n\n[executors.tool]\ntype = \"process\"\nargv = [\"no-such-tool-here\", \"--go\"]\n",
        json!({"steps": []}),
    );
    e.ok(&["add", "One", "--executor", "cl", "--key", "one"]);
    e.ok(&["add", "Two", "--executor", "tool", "--key", "two"]);
    let err = e.fails(&["run"], 4);
    assert!(err.contains("2 executor(s) cannot run here"), "{err}");
    assert!(
        err.contains("`claude-not-installed` is not installed")
            && err.contains("npm install -g @anthropic-ai/claude-code"),
        "{err}"
    );
    assert!(
        err.contains("`no-such-tool-here` was not found on PATH"),
        "{err}"
    );
    assert!(
        attempts(&e, "one").is_empty() && attempts(&e, "two").is_empty(),
        "nothing started"
    );
    let dry = e.fails(&["run", "--dry-run"], 4);
    assert!(
        dry.contains("✗ claude-not-installed (Claude Code)"),
        "{dry}"
    );
    let check = e.run(&["agents", "check"]);
    assert_eq!(check.status.code(), Some(4));
    let listing = String::from_utf8_lossy(&check.stdout);
    assert!(listing.contains("✗ no-such-tool-here"), "{listing}");
}

#[test]
fn a_version_the_profile_was_not_written_for_is_a_warning_not_a_stop() {
    let e = project_with("", json!({"steps": []}), &[("FAKE_AGENT_VERSION", "9.0.1")]);
    e.ok(&["add", "Anything", "--key", "any"]);
    let o = e.run(&["run", "--agent", "codex"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains("warning: Codex CLI 9.0.1 found; the profile was written for 0.157"),
        "{err}"
    );
    let listed = e.json(&["agents"]);
    let codex = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "codex")
        .unwrap();
    assert_eq!(codex["check"]["version"], "9.0.1");
    assert!(
        codex["check"]["warning"]
            .as_str()
            .unwrap()
            .contains("written for 0.157")
    );
}

#[test]
fn logs_follow_an_agent_while_it_works() {
    let script = json!({"steps": [{"when": "Slow", "sleep_ms": 1500, "write": {"out.txt": "x"}, "message": "finished slowly"}]});
    let e = project("", script);
    e.ok(&["add", "Slow work", "--role", "implementer", "--key", "slow"]);
    let mut runner = e
        .command(&["run", "--agent", "claude"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while attempts(&e, "slow").is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the attempt never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let follow = e.command(&["logs", "slow", "--follow"]).output().unwrap();
    let shown = String::from_utf8_lossy(&follow.stdout);
    assert!(
        follow.status.success(),
        "{}",
        String::from_utf8_lossy(&follow.stderr)
    );
    // It ended with the attempt, with the agent's last message rendered.
    assert!(
        shown.contains("› finished slowly") && shown.contains("✓ done"),
        "{shown}"
    );
    assert!(runner.wait().unwrap().success());
    let raw = e.ok(&["logs", "slow", "--raw"]);
    assert!(raw.lines().all(|l| l.starts_with('{')), "{raw}");
    e.fails(&["logs", "slow", "--attempt", "4"], 3);
}

#[test]
fn an_unknown_agent_and_a_broken_spec_are_refused_before_a_run() {
    let e = project(
        "[executors.x]\ntype = \"agent\"\nagent = \"cursor\"\n",
        json!({"steps": []}),
    );
    e.ok(&["add", "T", "--executor", "x"]);
    let err = e.fails(&["run"], 4);
    assert!(err.contains("unknown agent `cursor`"), "{err}");
    let err = e.fails(&["run", "--agent", "cursor"], 2);
    assert!(err.contains("cursor"), "{err}");
}

/// The stand-ins' own tests: each holds its CLI's documented interface (flags, prompt
/// handling, permissions, output format, sessions, MCP).
#[test]
fn the_stand_ins_hold_their_documented_interface() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fakes");
    let o = std::process::Command::new("python3")
        .args(["-m", "unittest", "test_fakes.py"])
        .current_dir(&dir)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("OK"), "{err}");
}

#[test]
fn the_result_protocol_works_through_every_profile() {
    let script = json!({"steps": [{"when": "Investigate", "message": "found more work",
        "result_file": {"summary": "Investigated", "flags": ["PERFORMANCE_ISSUE"],
                        "discovered": [{"title": "Add an index", "role": "implementer"}]}}]});
    for agent in AGENTS {
        let e = project(
            "[executors.aider]\ntype = \"agent\"\nagent = \"aider\"\nmodel = \"sonnet\"\n",
            script.clone(),
        );
        e.ok(&[
            "add",
            "Investigate the slow page",
            "--role",
            "debugger",
            "--key",
            "inv",
        ]);
        e.ok(&["run", "--agent", agent]);
        assert_eq!(
            e.json(&["show", "inv"])["result"],
            "Investigated",
            "{agent}: the report's summary wins"
        );
        let titles = e.titles();
        assert!(
            titles.contains(&"Add an index".to_owned()),
            "{agent}: {titles:?}"
        );
    }
}

#[test]
fn tokens_and_cost_add_up_per_role_in_metrics_the_run_and_the_report() {
    let script = json!({"steps": [{"message": "ok", "usage": {"input_tokens": 1000, "output_tokens": 200}, "cost_usd": 0.05}]});
    let e = project("", script);
    e.ok(&["add", "Build it", "--role", "implementer"]);
    e.ok(&["add", "Test it", "--role", "tester"]);
    e.ok(&["add", "Build more", "--role", "implementer"]);
    let o = e.run(&["run", "--agent", "claude"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("spent: 3000 in / 600 out tokens over 3 attempt(s), $0.1500"),
        "{err}"
    );
    let m = e.json(&["metrics"]);
    let spend = m["spend"].as_array().unwrap();
    assert_eq!(spend[0]["role"], "implementer");
    assert_eq!(
        (
            spend[0]["attempts"].as_u64(),
            spend[0]["tokens_in"].as_u64()
        ),
        (Some(2), Some(2000))
    );
    assert!((spend[0]["cost_usd"].as_f64().unwrap() - 0.1).abs() < 1e-9);
    assert_eq!(spend[1]["role"], "tester");
    let report = e.read(&e.path().join(".downbeat/reports/project.md"));
    assert!(
        report.contains("| **total** | 3 | 3000 | 600 | $0.1500 |"),
        "{report}"
    );
}
