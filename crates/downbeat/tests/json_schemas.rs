//! Every `--json` output validates against its documented schema (docs/schemas/, docs/json.md),
//! and every command either has a schema or is listed below as printing no JSON.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead as _;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use clap::CommandFactory as _;
use common::Env;
use downbeat::schemas::COMMANDS;
use serde_json::Value;

/// Commands that print no JSON document on stdout, with why.
const NO_JSON: &[&str] = &[
    // A shell script.
    "completions",
    // The manual page (roff).
    "man",
    // The MCP protocol on stdio (`mcp` without a subcommand is `mcp serve`).
    "mcp",
    "mcp serve",
    // Internal, not for direct use: prints nothing.
    "guard-agents",
];

/// Commands with a schema that the realistic project below does not run, with why.
const NOT_RUN: &[&str] = &[
    // Needs the PostgreSQL server of the tests: `bench_workers_follows_its_schema`.
    "bench workers",
];

/// The plan the stand-in agent drafts, and the subtasks it proposes.
const DRAFT: &str = "```toml\n[plan]\nname = \"cache\"\n\n[[tasks]]\nkey = \"design-cache\"\ntitle = \"Design the cache\"\nrole = \"architect\"\neffort = 2\ntags = [\"complexity:low\", \"risk:low\"]\nfiles = [\"docs/cache.md\"]\n\n[[tasks]]\nkey = \"build-cache\"\ntitle = \"Build the cache\"\nrole = \"implementer\"\ndepends_on = [\"design-cache\"]\neffort = 3\ntags = [\"complexity:medium\", \"risk:medium\"]\nfiles = [\"src/cache.rs\"]\n```\n";
const SUBTASKS: &str = "```toml\n[[tasks]]\nkey = \"outline\"\ntitle = \"Outline the docs\"\nrole = \"documenter\"\neffort = 1\ntags = [\"complexity:low\", \"risk:low\"]\nfiles = [\"docs/outline.md\"]\n\n[[tasks]]\nkey = \"write\"\ntitle = \"Write the pages\"\nrole = \"documenter\"\ndepends_on = [\"outline\"]\neffort = 2\ntags = [\"complexity:low\", \"risk:low\"]\nfiles = [\"docs/pages.md\"]\n```\n";

fn schemas_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/schemas")
}

/// Every schema file of docs/schemas/, parsed, by name.
fn schema_files() -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(schemas_dir()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        assert_eq!(path.extension().and_then(|e| e.to_str()), Some("json"));
        let text = std::fs::read_to_string(&path).unwrap();
        let v: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()));
        out.insert(name, v);
    }
    out
}

/// Validators of every schema file, by name.
struct Schemas(BTreeMap<String, jsonschema::Validator>);

impl Schemas {
    fn load() -> Self {
        let mut m = BTreeMap::new();
        for (name, v) in schema_files() {
            let validator = jsonschema::draft202012::options()
                .should_validate_formats(true)
                .build(&v)
                .unwrap_or_else(|e| panic!("docs/schemas/{name}.json: {e}"));
            m.insert(name, validator);
        }
        Schemas(m)
    }

    /// Fails with every problem found when `doc` does not follow schema `name`.
    fn check(&self, name: &str, doc: &Value, what: &str) {
        let v = self
            .0
            .get(name)
            .unwrap_or_else(|| panic!("no docs/schemas/{name}.json"));
        let problems: Vec<String> = v
            .iter_errors(doc)
            .map(|e| format!("at {}: {e}", e.instance_path()))
            .take(10)
            .collect();
        assert!(
            problems.is_empty(),
            "`downbeat {what} --json` does not follow docs/schemas/{name}.json:\n{}\n\nthe output:\n{}",
            problems.join("\n"),
            serde_json::to_string_pretty(doc).unwrap()
        );
    }
}

/// The schema of a command (its words as in `COMMANDS`).
fn schema_of(command: &str) -> &'static str {
    COMMANDS
        .iter()
        .find(|(c, _)| *c == command)
        .map(|(_, s)| *s)
        .unwrap_or_else(|| panic!("`{command}` has no schema in COMMANDS"))
}

/// The command named by the first words of `args` (the longest one that has a schema).
fn command_of(args: &[&str]) -> String {
    for n in (1..=args.len().min(2)).rev() {
        let words = args[..n].join(" ");
        if COMMANDS.iter().any(|(c, _)| *c == words) {
            return words;
        }
    }
    panic!("no schema for any command in {args:?}")
}

/// Whether `doc` is the error envelope.
fn is_envelope(doc: &Value) -> bool {
    doc.as_object()
        .is_some_and(|o| o.len() == 1 && o.get("error").is_some_and(Value::is_object))
}

/// Every JSON document in `s`: one pretty document, or JSON Lines.
fn documents(s: &str, what: &str) -> Vec<Value> {
    serde_json::Deserializer::from_str(s)
        .into_iter::<Value>()
        .map(|d| d.unwrap_or_else(|e| panic!("`downbeat {what} --json`: not JSON ({e}):\n{s}")))
        .collect()
}

/// The project and what has been checked in it.
struct Check {
    env: Env,
    schemas: Schemas,
    /// Commands whose output was validated.
    seen: BTreeSet<String>,
}

impl Check {
    fn new(env: Env) -> Self {
        Check {
            env,
            schemas: Schemas::load(),
            seen: BTreeSet::new(),
        }
    }

    /// Runs `args --json`, expects exit `code`, and validates every document it printed: the
    /// command's own against its schema, an error against the envelope's (a failure must end
    /// with one, giving its exit code). Returns the documents.
    fn code(&mut self, args: &[&str], code: i32) -> Vec<Value> {
        let what = args.join(" ");
        let mut a = args.to_vec();
        a.push("--json");
        // A command that hangs fails the test rather than holding it up.
        let o = self
            .env
            .cmd(&a)
            .timeout(Duration::from_secs(120))
            .output()
            .unwrap();
        let stdout = String::from_utf8(o.stdout).unwrap();
        assert_eq!(
            o.status.code(),
            Some(code),
            "`downbeat {what} --json`:\n{stdout}\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let docs = documents(&stdout, &what);
        assert!(!docs.is_empty(), "`downbeat {what} --json` printed nothing");
        let command = command_of(args);
        for d in &docs {
            if is_envelope(d) {
                self.schemas.check("error", d, &what);
            } else {
                self.schemas.check(schema_of(&command), d, &what);
            }
        }
        let last = docs.last().unwrap();
        if code == 0 {
            assert!(!docs.iter().any(is_envelope), "{what}: {stdout}");
        } else {
            assert!(is_envelope(last), "`{what}` failed without an envelope");
            assert_eq!(last["error"]["code"], code, "{what}");
            self.seen.insert("error".into());
        }
        if docs.iter().any(|d| !is_envelope(d)) {
            self.seen.insert(command);
        }
        docs
    }

    /// `code(args, 0)`, with its only document.
    fn ok(&mut self, args: &[&str]) -> Value {
        let mut docs = self.code(args, 0);
        assert_eq!(docs.len(), 1, "{args:?} printed {} documents", docs.len());
        docs.pop().unwrap()
    }

    /// Starts `args --json` and validates the first `n` documents it prints (one a line); it
    /// goes on until the `Env` is dropped.
    fn stream(&mut self, args: &[&str], n: usize) -> Vec<Value> {
        let what = args.join(" ");
        let mut a = args.to_vec();
        a.push("--json");
        let mut child = self
            .env
            .command(&a)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        self.env.adopt(child);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            // Read to the end, even once nobody listens: a closed pipe would stop the command.
            for line in std::io::BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let command = command_of(args);
        let mut docs = Vec::new();
        while docs.len() < n {
            let line = rx
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("`{what}`: {} line(s) of {n}", docs.len()));
            let d: Value = serde_json::from_str(&line).unwrap_or_else(|e| {
                panic!("`{what}`: a line is not one JSON document ({e}): {line}")
            });
            self.schemas.check(schema_of(&command), &d, &what);
            docs.push(d);
        }
        self.seen.insert(command);
        docs
    }
}

const CONFIG: &str = r#"[run]
executor = "noop"

[roles.implementer]
executor = "build"
worktree = true

[executors.build]
type = "process"
shell = "echo made > made.txt; printf '{\"flags\":[\"PERFORMANCE_ISSUE: the query is slow\"],\"summary\":\"built\",\"discovered\":[{\"title\":\"Add an index\",\"role\":\"database\"}]}' > \"$DOWNBEAT_RESULT_FILE\""

[executors.broken]
type = "process"
shell = "echo trying; exit 3"

[roles.tester]
max_parallel = 2

[groups.heavy]
max_parallel = 1
roles = ["implementer", "debugger"]

[[rules]]
flag = "PERFORMANCE_ISSUE"
action = "raise-priority"
priority = "high"
"#;

fn git(e: &Env, args: &[&str]) {
    let out = std::process::Command::new("git")
        .current_dir(e.path())
        .args([
            "-c",
            "user.name=Someone",
            "-c",
            "user.email=someone@example.com",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}");
}

/// A project in a git repository: its configuration, a graph of tasks with roles,
/// dependencies and a container.
fn project() -> Check {
    // The agent CLIs' stand-ins (tests/fakes/) answer `plan draft` and `plan expand`.
    let fakes = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fakes/bin");
    let env = Env::builder()
        .fixed_clock()
        .home_inside()
        .var("PATH", &format!("{}:/usr/bin:/bin", fakes.display()))
        .var("DOWNBEAT_SKIP_PYTHON", "1")
        .var("FAKE_AGENT_SCRIPT", "script.json")
        .var("FAKE_AGENT_LOG", "agent.log")
        .build();
    let mut c = Check::new(env);
    let init = c.ok(&["init"]);
    assert_eq!(init["created"], true);
    // An empty project: rates not measured yet, nothing to plan.
    assert!(c.ok(&["metrics"])["success_rate"].is_null());
    c.ok(&["context"]);
    c.ok(&["status"]);
    c.ok(&["waves"]);
    c.ok(&["patterns"]);
    c.ok(&["session", "status"]);
    c.env.write(".downbeat/config.toml", CONFIG);
    c.env.write("README.md", "# demo\n");
    c.env.write(".gitignore", ".downbeat/\nagent.log\n");
    c.env.write("draft.md", DRAFT);
    c.env.write("subtasks.md", SUBTASKS);
    c.env.write(
        "script.json",
        r#"{"steps": [{"when": "split by layer", "message_file": "subtasks.md"}, {"message_file": "draft.md"}]}"#,
    );
    git(&c.env, &["init", "-q", "-b", "main"]);
    git(&c.env, &["add", "-A"]);
    git(&c.env, &["commit", "-q", "-m", "start"]);
    let t = c.ok(&[
        "add",
        "Design the schema",
        "--role",
        "architect",
        "--key",
        "schema",
        "--effort",
        "2",
        "--accept",
        "tables exist",
        "--tag",
        "db",
    ]);
    assert_eq!(t["state"], "pending");
    c.ok(&[
        "add",
        "Build the api",
        "--role",
        "implementer",
        "--key",
        "api",
        "--after",
        "schema",
        "--file",
        "src/**",
    ]);
    c.ok(&[
        "add",
        "Test the api",
        "--role",
        "tester",
        "--key",
        "tests",
        "--after",
        "api",
        "--executor",
        "broken",
        "--max-attempts",
        "1",
    ]);
    c.ok(&["add", "Release", "--key", "release"]);
    c.ok(&["add", "Child", "--key", "child", "--parent", "release"]);
    c.ok(&["add", "Docs", "--key", "docs", "--after", "api"]);
    let edited = c.ok(&[
        "edit",
        "docs",
        "--title",
        "Write the docs",
        "--priority",
        "high",
    ]);
    assert_eq!(edited["priority"], "high");
    c
}

/// The planning views and the hand-made state changes.
fn views_and_changes(c: &mut Check) {
    let dep = c.ok(&["dep", "add", "docs", "--on", "schema"]);
    assert_eq!(dep[0]["changed"], true);
    c.ok(&["dep", "rm", "docs", "--on", "schema"]);
    assert_eq!(c.ok(&["list"]).as_array().unwrap().len(), 6);
    assert!(!c.ok(&["ready"]).as_array().unwrap().is_empty());
    let blocked = c.ok(&["blocked"]);
    assert!(!blocked["waiting"].as_array().unwrap().is_empty());
    c.ok(&["waves", "--workers", "1,2"]);
    c.ok(&["graph"]);
    let started = c.ok(&["start", "schema"]);
    assert_eq!(started["tasks"][0]["status"], "running");
    assert_eq!(started["artifacts"], serde_json::json!([]));
    c.env.write("design.md", "# the design\n");
    let done = c.ok(&[
        "done",
        "schema",
        "--result",
        "designed",
        "--artifact",
        "design.md",
    ]);
    assert_eq!(done["tasks"][0]["status"], "completed");
    assert_eq!(done["artifacts"][0]["path"], "design.md");
    assert_eq!(
        c.ok(&["block", "child", "--reason", "waiting"])["tasks"][0]["status"],
        "blocked"
    );
    c.ok(&["blocked"]);
    c.ok(&["unblock", "child"]);
    c.ok(&["skip", "child", "--note", "not needed"]);
    c.ok(&["reopen", "child"]);
    // On a container: every open task under it.
    let cancelled = c.ok(&["cancel", "release"]);
    assert!(!cancelled["tasks"].as_array().unwrap().is_empty());
    c.ok(&["retry", "child"]);
    c.ok(&["start", "docs", "--force"]);
    c.ok(&["fail", "docs", "--reason", "no time"]);
    c.ok(&["retry", "docs"]);
}

/// A run: a task in a worktree that raises a flag and discovers work, one that fails.
fn run_and_its_records(c: &mut Check) {
    let dry = c.ok(&["run", "--dry-run"]);
    assert!(dry["problems"].as_array().unwrap().is_empty(), "{dry}");
    let events = c.code(&["run", "-j", "2"], 7);
    let kinds: BTreeSet<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    for k in [
        "started",
        "attempt-started",
        "attempt-finished",
        "flag",
        "discovered",
        "integrated",
        "finished",
    ] {
        assert!(kinds.contains(k), "no {k} event in {kinds:?}");
    }
    let show = c.ok(&["show", "api"]);
    assert_eq!(show["flags"][0]["flag"], "PERFORMANCE_ISSUE");
    assert!(show["git"].is_object(), "{show}");
    let attempts = c.ok(&["attempts", "tests"]);
    assert_eq!(attempts[0]["outcome"], "failed");
    let lines = c.code(&["logs", "tests"], 0);
    assert_eq!(lines[0]["line"], "trying");
    let diff = c.ok(&["diff", "api"]);
    assert!(diff["diff"].as_str().unwrap().contains("made.txt"));
    c.ok(&["worktrees"]);
    assert_eq!(c.ok(&["worktrees", "--clean"])["removed"], 0);
    let landed = c.ok(&["land"]);
    assert_eq!(landed["into"], "main");
    let status = c.ok(&["status"]);
    let flags = &status["flags"];
    let raised = flags["raised"].as_array().unwrap().len();
    assert_eq!(
        raised + flags["handled"].as_u64().unwrap() as usize,
        1,
        "{flags}"
    );
    c.code(&["log", "--limit", "5"], 0);
    c.ok(&["metrics"]);
    c.ok(&["patterns"]);
    c.ok(&["context"]);
    let waves = c.ok(&["waves", "--calibrated"]);
    assert_eq!(waves["groups"][0]["name"], "heavy", "{waves}");
    assert_eq!(waves["role_caps"][0][0], "tester", "{waves}");
}

/// Objectives, insights, decisions, sessions, holds and documents.
fn context_records(c: &mut Check) {
    c.ok(&["session", "start", "first round"]);
    let o = c.ok(&["objective", "add", "Ship the api", "--task", "api"]);
    let id = o["id"].as_str().unwrap().to_owned();
    c.ok(&["objective", "link", &id, "tests"]);
    c.ok(&["objective", "done", &id]);
    c.ok(&["objective", "reopen", &id]);
    c.ok(&["objective", "add", "Drop me"]);
    c.ok(&["objective", "drop", "o2"]);
    assert_eq!(c.ok(&["objective", "list"]).as_array().unwrap().len(), 2);
    c.ok(&["insight", "add", "The api is fast", "--task", "api"]);
    c.ok(&["insight", "list"]);
    c.ok(&["decision", "add", "Use SQLite", "--why", "simple"]);
    c.ok(&[
        "decision",
        "add",
        "Use SQLite in WAL mode",
        "--why",
        "readers",
        "--supersedes",
        "d1",
    ]);
    c.ok(&[
        "decision",
        "propose",
        "Use Postgres",
        "--why",
        "scale",
        "--task",
        "api",
    ]);
    assert_eq!(
        c.ok(&["decision", "accept", "d3", "--why", "agreed"])["status"],
        "accepted"
    );
    c.ok(&["decision", "propose", "Use Redis", "--why", "cache"]);
    c.ok(&["decision", "reject", "d4", "--why", "not now"]);
    c.ok(&["decision", "list"]);
    c.ok(&["decision", "list", "--pending"]);
    c.ok(&["session", "status"]);
    c.ok(&["session", "resume"]);
    c.ok(&["context"]);
    c.ok(&["session", "end"]);
    let hold = c.ok(&["pause", "--reason", "lunch"]);
    assert_eq!(hold["reason"], "lunch");
    assert_eq!(c.ok(&["holds"]).as_array().unwrap().len(), 1);
    c.ok(&["status"]);
    c.ok(&["unpause"]);
    c.ok(&["synthesize"]);
    c.ok(&["handover"]);
    // Three hours later: a task running by hand and one held are stale, finished work old.
    c.ok(&["add", "Long job", "--key", "long"]);
    c.ok(&["start", "long"]);
    c.ok(&["add", "Held", "--key", "held"]);
    c.ok(&["block", "held", "--reason", "a person must look"]);
    c.env.set_clock("2026-03-01T12:00:00Z");
    let m = c.ok(&["maintain", "--stale-after", "1h", "--archive-after", "1h"]);
    let kinds: BTreeSet<&str> = m["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["kind"].as_str())
        .collect();
    for k in ["stale-running", "stale-blocked", "archive"] {
        assert!(kinds.contains(k), "no {k} finding: {m}");
    }
    c.ok(&["cancel", "long"]);
    c.ok(&["cancel", "held"]);
    c.ok(&["memory", "sync", "--dry-run"]);
}

/// Roles, rules, agents, templates, plans, export and import, and the rest.
fn configuration_and_files(c: &mut Check) {
    assert!(c.ok(&["roles"]).as_array().unwrap().len() > 3);
    c.ok(&["roles", "tester"]);
    c.ok(&["rules"]);
    c.ok(&["rules", "list"]);
    c.ok(&["rules", "add", "MY_FLAG", "stop"]);
    c.ok(&["rules", "rm", "MY_FLAG"]);
    c.ok(&["agents"]);
    c.ok(&["agents", "check"]);
    c.ok(&["agents", "export", "--roles", "tester"]);
    c.ok(&["workers"]);
    let templates = c.ok(&["template", "list"]);
    let name = templates[0]["name"].as_str().unwrap().to_owned();
    c.ok(&["template", "show", &name]);
    c.ok(&[
        "template",
        "apply",
        "simple",
        "--set",
        "task=Fix the login",
        "--dry-run",
    ]);
    c.ok(&["plan", "new", "-o", "plan.toml"]);
    c.env.write(
        "small.toml",
        "[plan]\nname = \"small\"\n\n[[tasks]]\nkey = \"one\"\ntitle = \"One\"\n\n[[tasks]]\nkey = \"two\"\ntitle = \"Two\"\ndepends_on = [\"one\"]\n",
    );
    c.ok(&["plan", "check", "small.toml"]);
    c.ok(&["plan", "apply", "small.toml", "--dry-run"]);
    let applied = c.ok(&["plan", "apply", "small.toml"]);
    assert!(applied["tasks"][0]["id"].is_string(), "{applied}");
    // Applied again after editing: one task changed, one gone, one finished task touched.
    c.ok(&["done", "one", "--force"]);
    c.env.write(
        "small.toml",
        "[plan]\nname = \"small\"\n\n[[tasks]]\nkey = \"one\"\ntitle = \"The first\"\n\n[[tasks]]\nkey = \"three\"\ntitle = \"Three\"\n",
    );
    let again = c.ok(&["plan", "apply", "small.toml", "--dry-run"]);
    assert_eq!(again["removed"][0]["key"], "two", "{again}");
    assert_eq!(again["conflicts"][0]["key"], "one", "{again}");
    c.ok(&["plan", "apply", "small.toml", "--skip-conflicts"]);
    c.env.write(
        "small.toml",
        "[plan]\nname = \"small\"\n\n[[tasks]]\nkey = \"one\"\ntitle = \"The first\"\n\n[[tasks]]\nkey = \"three\"\ntitle = \"The third\"\n",
    );
    let changed = c.ok(&["plan", "apply", "small.toml", "--dry-run"]);
    assert_eq!(
        changed["changed"][0]["fields"][0]["after"], "The third",
        "{changed}"
    );
    let draft = c.ok(&["plan", "draft", "Add a response cache", "--agent", "claude"]);
    assert_eq!(draft["rounds"][0]["verdict"], "valid", "{draft}");
    let expanded = c.ok(&[
        "plan",
        "expand",
        "tests",
        "--guidance",
        "split by layer",
        "--agent",
        "claude",
    ]);
    assert_eq!(expanded["tasks"].as_array().unwrap().len(), 2, "{expanded}");
    let list = c.ok(&["schema"]);
    assert_eq!(list.as_array().unwrap().len(), COMMANDS.len());
    let own = c.ok(&["schema", "schema"]);
    assert!(own["$id"].as_str().unwrap().ends_with("/schema.json"));
    let lines = c.code(&["export"], 0);
    assert!(lines.len() > 5);
    // The export, into an empty project elsewhere.
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let file = c.env.write("work.jsonl", &text);
    let other = c.env.tmp().join("other");
    std::fs::create_dir_all(&other).unwrap();
    let other = other.to_str().unwrap();
    c.ok(&["init", "-C", other]);
    let imported = c.ok(&["import", file.to_str().unwrap(), "-C", other]);
    assert!(
        imported["tables"]["tasks"].as_u64().unwrap() > 5,
        "{imported}"
    );
    let sample =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/samples/taskmaster-legacy.json");
    c.ok(&["import", sample.to_str().unwrap(), "--dry-run"]);
    c.ok(&["mcp", "install", "--client", "cursor", "--print"]);
    let db = c.env.path().join(".downbeat/downbeat.db");
    let copy = c.env.tmp().join("copy.db");
    c.ok(&[
        "db",
        "migrate",
        "--from",
        &format!("sqlite:{}", db.display()),
        "--to",
        &format!("sqlite:{}", copy.display()),
    ]);
}

/// Errors of several kinds: each the envelope, with its exit code.
fn errors(c: &mut Check) {
    c.code(&["show", "nosuch"], 3);
    c.code(&["dep", "add", "schema", "--on", "tests"], 5);
    c.code(&["add", "Bad", "--priority", "bogus"], 4);
    c.code(&["start", "schema"], 5);
    c.code(&["template", "show", "nosuch"], 3);
}

/// The benches, on tiny inputs.
fn benches(c: &mut Check) {
    c.ok(&["bench", "plan", "--tasks", "50", "--edges", "100"]);
    c.ok(&["bench", "run", "--tasks", "20", "-j", "4"]);
    // With a program: the bare spawn's figures are numbers, not null.
    c.ok(&[
        "bench",
        "run",
        "--tasks",
        "20",
        "-j",
        "4",
        "--command",
        "true",
    ]);
    c.ok(&["bench", "recover", "--tasks", "50", "-j", "4"]);
    c.ok(&[
        "bench", "chaos", "--tasks", "20", "--kills", "1", "--every", "100", "--seed", "3",
    ]);
    c.ok(&[
        "bench",
        "worktrees",
        "--files",
        "10",
        "--tasks",
        "4",
        "--samples",
        "2",
        "-j",
        "2",
    ]);
}

/// The commands that go on until stopped: their first documents.
fn long_running(c: &mut Check) {
    c.stream(&["status", "--watch"], 1);
    c.stream(&["log", "--follow"], 3);
    let serve = c.stream(&["serve", "--addr", "127.0.0.1:0"], 1);
    assert!(
        serve[0]["url"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:")
    );
    c.ok(&["add", "For the worker", "--key", "for-worker"]);
    let events = c.stream(&["worker", "--slots", "1", "--name", "w1"], 3);
    assert!(
        events.iter().any(|e| e["event"] == "attempt-finished"),
        "{events:?}"
    );
    let workers = c.ok(&["workers"]);
    assert_eq!(workers["workers"][0]["name"], "w1");
    c.ok(&["status"]);
    // The worker still runs: `run` leaves the work to it and follows what it does (exit 7: the
    // failed task of the first run is still not done).
    c.ok(&["add", "For the worker too", "--key", "for-worker-too"]);
    let followed = c.code(&["run"], 7);
    assert!(followed.iter().any(|e| e["by"] == "w1"), "{followed:?}");
}

#[test]
fn every_json_output_follows_its_schema() {
    let mut c = project();
    views_and_changes(&mut c);
    run_and_its_records(&mut c);
    context_records(&mut c);
    configuration_and_files(&mut c);
    errors(&mut c);
    benches(&mut c);
    long_running(&mut c);
    let missing: Vec<&str> = COMMANDS
        .iter()
        .map(|(command, _)| *command)
        .filter(|command| !c.seen.contains(*command) && !NOT_RUN.contains(command))
        .collect();
    assert!(missing.is_empty(), "not checked: {missing:?}");
}

#[test]
fn bench_workers_follows_its_schema() {
    let mut c = Check::new(Env::builder().build());
    let url = common::pg::server_url();
    let r = c.ok(&[
        "bench",
        "workers",
        "--workers",
        "2",
        "--tasks",
        "20",
        "--shape",
        "chains",
        "--slots",
        "2",
        "--database",
        &url,
    ]);
    assert_eq!(r["completed"], 20, "{r}");
}

/// Every command of the command line, as its words (a command with an optional subcommand is a
/// command itself too).
fn commands(cmd: &clap::Command, prefix: &str, out: &mut Vec<String>) {
    for sub in cmd.get_subcommands() {
        let words = if prefix.is_empty() {
            sub.get_name().to_owned()
        } else {
            format!("{prefix} {}", sub.get_name())
        };
        if sub.has_subcommands() {
            if !sub.is_subcommand_required_set() {
                out.push(words.clone());
            }
            commands(sub, &words, out);
        } else {
            out.push(words);
        }
    }
}

#[test]
fn every_command_has_a_schema_or_prints_no_json() {
    let mut all = Vec::new();
    commands(&downbeat::cli::Cli::command(), "", &mut all);
    all.retain(|c| c != "help" && !c.ends_with(" help"));
    let with_schema: BTreeSet<&str> = COMMANDS.iter().map(|(c, _)| *c).collect();
    let without: Vec<&String> = all
        .iter()
        .filter(|c| !with_schema.contains(c.as_str()) && !NO_JSON.contains(&c.as_str()))
        .collect();
    assert!(
        without.is_empty(),
        "commands without a JSON schema (add one to docs/schemas and COMMANDS, or to NO_JSON): {without:?}"
    );
    for c in with_schema.iter().chain(NO_JSON) {
        assert!(
            *c == "error" || all.iter().any(|a| a == c),
            "`{c}` is not a command"
        );
    }
    // Every file is some command's, and every command's file exists.
    let files = schema_files();
    let used: BTreeSet<&str> = COMMANDS.iter().map(|(_, s)| *s).collect();
    let on_disk: BTreeSet<&str> = files.keys().map(String::as_str).collect();
    assert_eq!(used, on_disk);
    // The binary carries each of them as the file has it.
    for (command, name) in COMMANDS {
        let (_, text) = downbeat::schemas::schema_of(command)
            .unwrap_or_else(|| panic!("`downbeat schema {command}` has no text"));
        let file = std::fs::read_to_string(schemas_dir().join(format!("{name}.json"))).unwrap();
        assert_eq!(text, file, "{name}");
    }
}

#[test]
fn the_schemas_are_valid_and_share_their_definitions() {
    let mut defs: BTreeMap<String, (String, Value)> = BTreeMap::new();
    for (name, v) in schema_files() {
        assert_eq!(
            v["$schema"], "https://json-schema.org/draft/2020-12/schema",
            "{name}"
        );
        if let Err(e) = jsonschema::meta::validate(&v) {
            panic!("docs/schemas/{name}.json is not a valid schema: {e}");
        }
        assert!(v["description"].is_string(), "{name} has no description");
        assert!(
            v["$id"]
                .as_str()
                .unwrap()
                .ends_with(&format!("/{name}.json")),
            "{name}: $id"
        );
        // A definition shared by several files is the same in each.
        for (def, body) in v["$defs"].as_object().into_iter().flatten() {
            match defs.get(def) {
                Some((first, same)) => assert_eq!(
                    same, body,
                    "$defs/{def} differs between {first}.json and {name}.json"
                ),
                None => {
                    defs.insert(def.clone(), (name.clone(), body.clone()));
                }
            }
        }
    }
}

#[test]
fn schema_prints_the_files() {
    let e = Env::builder().build();
    let list: Value = serde_json::from_str(&e.ok(&["schema", "--json"])).unwrap();
    assert_eq!(list.as_array().unwrap().len(), COMMANDS.len());
    assert_eq!(
        list[0]["schema"],
        format!("docs/schemas/{}.json", COMMANDS[0].1)
    );
    let text = e.ok(&["schema", "objective", "add"]);
    let file = std::fs::read_to_string(schemas_dir().join("objective.json")).unwrap();
    assert_eq!(text.trim_end(), file.trim_end());
    assert!(e.ok(&["schema"]).contains("state-change"));
    let err = e.fails(&["schema", "completions"], 2);
    assert!(err.contains("no JSON schema for `completions`"), "{err}");
    let o = e.run(&["schema", "nosuch", "--json"]);
    assert_eq!(o.status.code(), Some(2));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["error"]["kind"], "usage");
}
