//! The MCP server: every tool of both profiles through an in-process client, resources,
//! prompts, concurrent claims, error cases, the real binary over stdio, and the HTTP transport.

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::{Env, NOW};
use downbeat_app::project::{self, Globals};
use downbeat_core::time::Timestamp;
use downbeat_mcp::{Ctx, DownbeatMcp, Profile};
use rmcp::model::{
    CallToolRequestParams, ClientCapabilities, ClientConfig, GetPromptRequestParams,
    Implementation, ReadResourceRequestParams, ResourceContents,
};
use rmcp::service::RunningService;
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Value, json};

type Client = RunningService<RoleClient, ClientConfig>;

/// A project served in process; the binary runs in it with a cleared environment.
struct Fixture {
    env: Env,
    ctx: Arc<Ctx>,
}

impl Fixture {
    async fn new(profile: Profile) -> Self {
        Self::with_clock(profile, Timestamp::parse_rfc3339(NOW)).await
    }

    async fn with_clock(profile: Profile, now: Option<Timestamp>) -> Self {
        let env = Env::builder().build();
        let g = Globals {
            project: Some(env.path().to_owned()),
            actor: "tester".into(),
            ..Default::default()
        };
        let (mut p, _) = project::init(&g).await.unwrap();
        p.fixed_now = now;
        let ctx = Arc::new(Ctx::new(Some(g.actor.clone()), p, profile));
        Self { env, ctx }
    }

    /// A project in a git repository with one commit, its configuration `config`.
    async fn in_repo(config: &str) -> Self {
        let env = Env::builder().build();
        env.write(".downbeat/config.toml", config);
        env.write("README.md", "# demo\n");
        for args in [
            &["init", "-q", "-b", "main"][..],
            &["add", "-A"],
            &["commit", "-q", "-m", "start"],
        ] {
            let ok = std::process::Command::new("git")
                .current_dir(env.path())
                .args(["-c", "user.name=t", "-c", "user.email=t@t"])
                .args(args)
                .status()
                .unwrap()
                .success();
            assert!(ok, "git {args:?}");
        }
        let g = Globals {
            project: Some(env.path().to_owned()),
            actor: "tester".into(),
            ..Default::default()
        };
        let (mut p, _) = project::init(&g).await.unwrap();
        p.fixed_now = Timestamp::parse_rfc3339(NOW);
        let ctx = Arc::new(Ctx::new(Some(g.actor.clone()), p, Profile::Full));
        Self { env, ctx }
    }

    fn path(&self) -> &Path {
        self.env.path()
    }

    async fn client(&self, name: &str) -> Client {
        let (server_io, client_io) = tokio::io::duplex(1 << 20);
        let server = DownbeatMcp::new(self.ctx.clone());
        tokio::spawn(async move {
            if let Ok(s) = server.serve(server_io).await {
                let _ = s.waiting().await;
            }
        });
        ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new(name, "1.0"),
        )
        .serve(client_io)
        .await
        .unwrap()
    }
}

/// Calls a tool; returns whether it was an error and its text (parsed as JSON when it is).
async fn call_raw(c: &Client, tool: &str, args: Value) -> (bool, Value) {
    let Value::Object(args) = args else {
        panic!("arguments must be an object")
    };
    let r = c
        .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(args))
        .await
        .unwrap_or_else(|e| panic!("{tool}: protocol error {e}"));
    let text = r
        .content
        .first()
        .and_then(|b| b.as_text())
        .map(|t| t.text.clone())
        .unwrap_or_default();
    let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (r.is_error == Some(true), v)
}

/// Calls a tool that must succeed.
async fn call(c: &Client, tool: &str, args: Value) -> Value {
    let (err, v) = call_raw(c, tool, args.clone()).await;
    assert!(!err, "{tool} {args} failed: {v}");
    v
}

/// Calls a tool that must fail with a message containing `needle`.
async fn fails(c: &Client, tool: &str, args: Value, needle: &str) -> String {
    let (err, v) = call_raw(c, tool, args.clone()).await;
    let text = match &v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    assert!(err, "{tool} {args} should fail, got {text}");
    assert!(
        text.contains(needle),
        "{tool} {args}: expected `{needle}` in: {text}"
    );
    text
}

fn small_plan() -> Value {
    json!({
        "plan": {"name": "Ship the feature"},
        "objectives": [{"title": "Ship it", "tasks": ["impl"]}],
        "decisions": [{"text": "Use SQLite", "why": "embedded"}],
        "tasks": [
            {"key": "feature", "title": "Feature", "role": "architect"},
            {"key": "design", "parent": "feature", "title": "Design", "role": "architect", "effort": 2},
            {"key": "impl", "parent": "feature", "title": "Implement", "role": "implementer", "depends_on": ["design"], "files": ["src/lib.rs"]},
            {"key": "test", "parent": "feature", "title": "Test", "role": "tester", "depends_on": ["impl"]},
            {"key": "docs", "parent": "feature", "title": "Docs", "role": "documenter", "depends_on": ["design"]}
        ]
    })
}

fn str_of<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str()
        .unwrap_or_else(|| panic!("no string `{k}` in {v}"))
}

// ------------------------------------------------------------------------------------------
// tools/list

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_tools_list_fits_the_budget() {
    let f = Fixture::new(Profile::Default).await;
    let c = f.client("lister").await;
    let tools = c.list_tools(None).await.unwrap();
    let bytes = serde_json::to_string(&tools).unwrap().len();
    let names: Vec<&str> = tools.tools.iter().map(|t| t.name.as_ref()).collect();
    assert_eq!(
        names,
        [
            "claim", "context", "plan", "report", "run", "session", "tasks", "work"
        ]
    );
    assert!(
        bytes <= 10_000,
        "tools/list of the default profile is {bytes} bytes"
    );
    insta::assert_snapshot!(
        "default_tools_list",
        serde_json::to_string_pretty(&tools.tools).unwrap()
    );
    insta::assert_snapshot!("default_tools_list_bytes", bytes.to_string());
    let _ = c.cancel().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_profile_adds_finer_tools() {
    let f = Fixture::new(Profile::Full).await;
    let c = f.client("lister").await;
    let tools = c.list_all_tools().await.unwrap();
    let names: Vec<String> = tools.iter().map(|t| t.name.to_string()).collect();
    assert_eq!(names, downbeat_mcp::tools::tool_names(Profile::Full));
    insta::assert_snapshot!("full_tool_names", names.join("\n"));
    for t in &tools {
        let d = t.description.as_deref().unwrap_or_default();
        assert!(!d.is_empty() && d.len() <= 160, "{}: {d}", t.name);
    }
    let _ = c.cancel().await;
}

// ------------------------------------------------------------------------------------------
// The default profile, every tool and action

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_default_tool_and_action() {
    let f = Fixture::new(Profile::Default).await;
    let c = f.client("conductor").await;

    // session
    let s = call(&c, "session", json!({})).await;
    assert!(str_of(&s, "brief").contains("No tasks yet"), "{s}");
    let s = call(
        &c,
        "session",
        json!({"action": "start", "label": "mcp work"}),
    )
    .await;
    assert_eq!(s["started"], true);
    let st = call(&c, "session", json!({"action": "status"})).await;
    assert_eq!(st["session"]["label"], "mcp work");

    // plan
    let checked = call(&c, "plan", json!({"action": "check", "plan": small_plan()})).await;
    assert_eq!(
        checked,
        json!({"valid": true, "tasks": 5, "edges": 3, "objectives": 1})
    );
    let applied = call(&c, "plan", json!({"plan": small_plan()})).await;
    assert_eq!(applied["tasks"].as_array().unwrap().len(), 5);
    let design = str_of(&applied["keys"], "design").to_owned();
    let impl_ = str_of(&applied["keys"], "impl").to_owned();
    assert_eq!(applied["objectives"], json!(["o1"]));
    assert_eq!(applied["decisions"], json!(["d1"]));
    let waves = call(&c, "plan", json!({"action": "waves", "workers": [1, 2]})).await;
    assert_eq!(waves["ready"], json!([design.clone()]));
    assert_eq!(waves["waves"].as_array().unwrap().len(), 3);
    assert_eq!(waves["critical_path_effort"], 4);
    assert_eq!(waves["makespans"].as_array().unwrap().len(), 2);

    // session resume now has a brief with work in it
    let s = call(&c, "session", json!({"action": "resume"})).await;
    assert!(str_of(&s, "brief").contains("Next (ready now)"), "{s}");

    // tasks
    let l = call(&c, "tasks", json!({})).await;
    assert_eq!(l["count"], 5);
    let l = call(
        &c,
        "tasks",
        json!({"action": "list", "search": "implement"}),
    )
    .await;
    assert_eq!(l["tasks"][0]["id"], impl_);
    assert_eq!(l["tasks"][0]["state"], "waiting");
    let l = call(&c, "tasks", json!({"status": ["ready"]})).await;
    assert_eq!(l["count"], 1, "{l}");
    let r = call(&c, "tasks", json!({"action": "ready"})).await;
    assert_eq!(r["ready"][0]["id"], design);
    let sh = call(&c, "tasks", json!({"action": "show", "id": "impl"})).await;
    assert_eq!(sh["depends_on"], json!([design.clone()]));
    assert_eq!(sh["waits_on"], json!([design.clone()]));
    assert_eq!(sh["files"], json!(["src/lib.rs"]));
    let added = call(
        &c,
        "tasks",
        json!({"action": "add", "title": "Review", "role": "reviewer", "parent": "feature", "after": ["impl"], "key": "review"}),
    )
    .await;
    let review = str_of(&added, "id").to_owned();
    assert_eq!(added["key"], "review");
    let up = call(
        &c,
        "tasks",
        json!({"action": "update", "id": "review", "priority": "high", "effort": 2}),
    )
    .await;
    assert_eq!(up, json!({"id": review, "updated": true}));
    let d = call(
        &c,
        "tasks",
        json!({"action": "dep", "id": "review", "on": ["docs"]}),
    )
    .await;
    assert_eq!(d["added"].as_array().unwrap().len(), 1);
    let d = call(
        &c,
        "tasks",
        json!({"action": "dep", "id": "review", "on": ["docs"], "remove": true}),
    )
    .await;
    assert_eq!(d["removed"].as_array().unwrap().len(), 1);
    let set = call(
        &c,
        "tasks",
        json!({"action": "set", "id": "review", "to": "block", "note": "waiting for a person"}),
    )
    .await;
    assert_eq!(set["changed"][0]["status"], "blocked");
    call(
        &c,
        "tasks",
        json!({"action": "set", "id": "review", "to": "unblock"}),
    )
    .await;

    // context
    let o = call(
        &c,
        "context",
        json!({"action": "objective", "text": "Docs are complete", "tasks": ["docs"]}),
    )
    .await;
    assert_eq!(o["id"], "o2");
    let i = call(
        &c,
        "context",
        json!({"action": "insight", "text": "The cache is cold at start", "task": "design"}),
    )
    .await;
    assert_eq!(i["id"], "i1");
    let dd = call(
        &c,
        "context",
        json!({"action": "decision", "text": "Use Postgres", "why": "scale", "supersedes": "d1"}),
    )
    .await;
    assert_eq!(dd, json!({"id": "d2", "supersedes": "d1"}));
    let os = call(
        &c,
        "context",
        json!({"action": "objective_status", "id": "o2", "status": "dropped"}),
    )
    .await;
    assert_eq!(os["status"], "dropped");
    let ctx = call(&c, "context", json!({})).await;
    assert_eq!(ctx["objectives"].as_array().unwrap().len(), 2);
    assert_eq!(ctx["decisions"][0]["superseded_by"], "d2");
    assert_eq!(ctx["insights"][0]["task"], design);

    // claim, heartbeat, complete with artifact, flag and discovered task
    let cl = call(&c, "claim", json!({"role": "architect"})).await;
    assert_eq!(cl["task"], design);
    let token = cl["token"].as_str().unwrap().to_owned();
    assert!(
        str_of(&cl, "prompt").contains("You are the architect"),
        "{cl}"
    );
    assert!(
        str_of(&cl, "prompt").contains("Ship it"),
        "objectives in the prompt: {cl}"
    );
    assert_eq!(cl["holder"], "mcp:conductor");
    let hb = call(
        &c,
        "work",
        json!({"action": "heartbeat", "task": design, "token": token, "lease": "10m"}),
    )
    .await;
    assert_eq!(hb["lease_until"], "2026-03-01T09:10:00Z");
    std::fs::create_dir_all(f.path().join("docs")).unwrap();
    std::fs::write(f.path().join("docs/design.md"), "# Design\n").unwrap();
    let done = call(
        &c,
        "work",
        json!({
            "task": design, "token": token, "summary": "Token bucket per client",
            "artifacts": ["docs/design.md"], "flags": ["NEEDS_REVIEW"],
            "discovered": [{"title": "Benchmark the bucket", "role": "debugger"}]
        }),
    )
    .await;
    assert_eq!(done["status"], "completed");
    assert_eq!(done["artifacts"], json!(["docs/design.md"]));
    assert_eq!(done["created"].as_array().unwrap().len(), 1);
    assert_eq!(done["flags"][0]["flag"], "NEEDS_REVIEW");
    assert!(f.path().join(".downbeat/artifacts").is_dir());

    // the dependent's prompt carries the dependency's result and artifact
    let cl = call(&c, "claim", json!({"task": "impl", "worker": "w1"})).await;
    let p = str_of(&cl, "prompt");
    assert!(
        p.contains("Token bucket per client") && p.contains("artifact: docs/design.md"),
        "{p}"
    );
    assert_eq!(cl["holder"], "mcp:conductor/w1");
    let failed = call(
        &c,
        "work",
        json!({"action": "fail", "task": "impl", "token": cl["token"], "reason": "tests broke", "retry": true}),
    )
    .await;
    assert_eq!(failed["status"], "pending");
    let cl = call(&c, "claim", json!({"task": "impl", "prompt": false})).await;
    assert!(cl.get("prompt").is_none());
    assert_eq!(cl["attempt"], 2);
    let rel = call(
        &c,
        "work",
        json!({"action": "release", "task": "impl", "token": cl["token"]}),
    )
    .await;
    assert_eq!(rel["status"], "pending");
    let cl = call(&c, "claim", json!({"task": "impl"})).await;
    call(
        &c,
        "work",
        json!({"action": "complete", "task": "impl", "token": cl["token"], "summary": "done"}),
    )
    .await;

    // report
    let st = call(&c, "report", json!({})).await;
    assert_eq!(st["progress"], "2/6");
    assert_eq!(st["roles"]["implementer"], "1/1");
    let syn = call(
        &c,
        "report",
        json!({"action": "synthesize", "id": "feature"}),
    )
    .await;
    assert!(str_of(&syn, "path").ends_with(".md"));
    assert!(
        str_of(&syn, "text").contains("Token bucket per client"),
        "{syn}"
    );
    let h = call(&c, "report", json!({"action": "handover"})).await;
    assert!(str_of(&h, "path").ends_with("handover.md"));
    assert!(f.path().join(".downbeat/handover.md").exists());
    let m = call(&c, "report", json!({"action": "maintain"})).await;
    assert_eq!(m["applied"], false);
    let m = call(&c, "report", json!({"action": "maintain", "apply": true})).await;
    assert_eq!(m["applied"], true);
    assert!(
        m["actions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "optimised the database")
    );

    // run: start with the noop executor, watch to the end, cancel after the end
    fails(&c, "run", json!({}), "no run was started").await;
    let started = call(
        &c,
        "run",
        json!({"action": "start", "executor": "noop", "concurrency": 2}),
    )
    .await;
    assert_eq!(started["run"], 1);
    let w = watch_until_done(&c).await;
    assert_eq!(w["state"], "finished", "{w}");
    assert_eq!(w["summary"]["completed"], 4, "{w}");
    assert!(w["events"].as_array().unwrap().len() > 2);
    let again = call(&c, "run", json!({"action": "watch", "after": w["next"]})).await;
    assert!(again.get("events").is_none(), "{again}");
    let cancelled = call(&c, "run", json!({"action": "cancel"})).await;
    assert_eq!(cancelled["cancelled"], false);
    let st = call(&c, "report", json!({"action": "status"})).await;
    assert_eq!(st["progress"], "6/6", "{st}");

    let end = call(&c, "session", json!({"action": "end"})).await;
    assert_eq!(end["ended"], true);
    let _ = c.cancel().await;
}

async fn watch_until_done(c: &Client) -> Value {
    for _ in 0..400 {
        let w = call(c, "run", json!({"action": "watch"})).await;
        if w["state"] != "running" && w["state"] != "stopping" {
            return w;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("the run did not finish")
}

/// A plan applied again over MCP writes the difference like `downbeat plan apply`: `check`
/// shows it, `apply` changes the edited task and cancels the removed one, and a change to a
/// running task is refused unless `skip_conflicts`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_applied_again_writes_the_difference() {
    let f = Fixture::new(Profile::Default).await;
    let c = f.client("conductor").await;
    let first = call(&c, "plan", json!({"plan": small_plan()})).await;
    let docs = str_of(&first["keys"], "docs").to_owned();
    let test = str_of(&first["keys"], "test").to_owned();
    // Edited: `docs` gets a new title and priority, `test` leaves the plan, `review` joins it.
    let mut edited = small_plan();
    let tasks = edited["tasks"].as_array_mut().unwrap();
    tasks.retain(|t| t["key"] != "test");
    for t in tasks.iter_mut().filter(|t| t["key"] == "docs") {
        t["title"] = json!("Write the docs");
        t["priority"] = json!("high");
    }
    tasks.push(
        json!({"key": "review", "parent": "feature", "title": "Review", "depends_on": ["impl"]}),
    );
    let checked = call(&c, "plan", json!({"action": "check", "plan": edited})).await;
    assert_eq!(
        checked,
        json!({
            "valid": true, "tasks": 5, "edges": 3, "objectives": 1,
            "added": ["review"],
            "changed": [{"id": docs, "key": "docs", "fields": ["title", "priority"]}],
            "removed": [{"id": test, "key": "test", "cancelled": true}],
            "unchanged": 3,
        })
    );
    let l = call(&c, "tasks", json!({})).await;
    assert_eq!(l["count"], 5, "check wrote nothing: {l}");
    let applied = call(&c, "plan", json!({"plan": edited})).await;
    assert_eq!(applied["tasks"].as_array().unwrap().len(), 1, "{applied}");
    assert!(applied["keys"]["review"].is_string(), "{applied}");
    assert_eq!(applied["changed"][0]["key"], "docs", "{applied}");
    assert_eq!(applied["removed"][0]["cancelled"], true, "{applied}");
    assert!(
        applied.get("decisions").is_none(),
        "records are not added twice: {applied}"
    );
    let shown = call(&c, "tasks", json!({"action": "show", "id": "docs"})).await;
    assert_eq!(shown["title"], "Write the docs", "{shown}");
    assert_eq!(shown["priority"], "high", "{shown}");
    let shown = call(&c, "tasks", json!({"action": "show", "id": "test"})).await;
    assert_eq!(shown["state"], "cancelled", "{shown}");
    // In step now: applying it again changes nothing.
    // A plan without a name is applied, and the answer says it is not recorded.
    let unnamed = call(
        &c,
        "plan",
        json!({"plan": {"tasks": [{"key": "extra", "title": "Extra"}]}}),
    )
    .await;
    assert!(
        unnamed["notes"][0]
            .as_str()
            .unwrap()
            .contains("not recorded"),
        "{unnamed}"
    );
    let again = call(&c, "plan", json!({"plan": edited})).await;
    assert_eq!(again, json!({"edges": 0, "unchanged": 5}), "{again}");
    assert!(
        again.get("notes").is_none(),
        "a named plan is recorded: {again}"
    );
    // A running task is never changed: refused, naming it, unless skip_conflicts.
    call(
        &c,
        "tasks",
        json!({"action": "set", "id": "design", "to": "start"}),
    )
    .await;
    for t in edited["tasks"].as_array_mut().unwrap() {
        if t["key"] == "design" {
            t["effort"] = json!(5);
        }
    }
    let msg = fails(&c, "plan", json!({"plan": edited}), "design").await;
    assert!(
        msg.contains("running") && msg.contains("skip_conflicts"),
        "{msg}"
    );
    let skipped = call(&c, "plan", json!({"plan": edited, "skip_conflicts": true})).await;
    assert_eq!(skipped["conflicts"][0]["key"], "design", "{skipped}");
    let shown = call(&c, "tasks", json!({"action": "show", "id": "design"})).await;
    assert_eq!(shown["effort"], 2, "{shown}");
    let _ = c.cancel().await;
}

// ------------------------------------------------------------------------------------------
// Flags through MCP: the rules `init` writes, a flag's state, the loop guard

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_rules_fire_through_mcp_with_the_loop_guard() {
    let f = Fixture::new(Profile::Full).await;
    let c = f.client("conductor").await;
    let rules = call(&c, "rule_list", json!({})).await;
    assert_eq!(rules["rules"].as_array().unwrap().len(), 3, "{rules}");
    call(
        &c,
        "tasks",
        json!({"action": "add", "title": "Audit the login", "role": "reviewer", "key": "audit"}),
    )
    .await;
    call(
        &c,
        "tasks",
        json!({"action": "add", "title": "Ship", "key": "ship", "after": ["audit"], "priority": "low"}),
    )
    .await;
    let cl = call(&c, "claim", json!({"task": "audit"})).await;
    let done = call(
        &c,
        "work",
        json!({
            "task": "audit", "token": cl["token"], "summary": "found a token",
            "flags": ["SECURITY_BREACH: a token in config.py", "DATABASE_INVESTIGATION", "PERFORMANCE_ISSUE"]
        }),
    )
    .await;
    let actions: Vec<&str> = done["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["add-task", "add-task", "raise-priority"],
        "{done}"
    );
    let created = done["created"].as_array().unwrap().clone();
    assert_eq!(created.len(), 2, "{done}");
    assert_eq!(done["holds"].as_array().unwrap().len(), 1, "{done}");
    let ship = call(&c, "tasks", json!({"action": "show", "id": "ship"})).await;
    assert_eq!(ship["priority"], "high", "{ship}");

    // The hold lets only the security follow-up start; its prompt carries the flag.
    let cl = call(&c, "claim", json!({})).await;
    assert_eq!(cl["task"], created[0], "{cl}");
    let prompt = str_of(&cl, "prompt");
    assert!(
        prompt.contains("You are the security specialist"),
        "{prompt}"
    );
    assert!(
        prompt.contains("## The flag this task follows up"),
        "{prompt}"
    );
    assert!(prompt.contains("detail: a token in config.py"), "{prompt}");
    assert!(prompt.contains("its summary: found a token"), "{prompt}");

    // It raises its own flag again: nothing new, and its completion handles the first one.
    let done = call(
        &c,
        "work",
        json!({"task": cl["task"], "token": cl["token"], "summary": "rotated", "flags": ["SECURITY_BREACH"]}),
    )
    .await;
    let flags = done["flags"].as_array().unwrap();
    assert_eq!(flags[0]["action"], "handled", "{done}");
    assert_eq!(flags[0]["flag"], "SECURITY_BREACH");
    assert_eq!(flags[1]["action"], "suppressed", "{done}");
    assert!(
        done.get("created").is_none() && done.get("holds").is_none(),
        "{done}"
    );
    let status = call(&c, "report", json!({})).await;
    let open = status["flags"].as_array().unwrap();
    assert_eq!(open.len(), 1, "{status}");
    assert_eq!(open[0]["flag"], "DATABASE_INVESTIGATION");
    assert_eq!(open[0]["follow_up"], created[1]);

    // Rules through MCP, checked before they are written.
    let added = call(
        &c,
        "rule_add",
        json!({"flag": "NEEDS_DOCS", "action": "add-task", "role": "documenter"}),
    )
    .await;
    assert_eq!(added["added"], 4, "{added}");
    fails(
        &c,
        "rule_add",
        json!({"flag": "X", "action": "add-task", "role": "ghost"}),
        "unknown role `ghost`",
    )
    .await;
    let gone = call(&c, "rule_remove", json!({"which": "NEEDS_DOCS"})).await;
    assert_eq!(gone["removed"], json!([4]), "{gone}");
    assert_eq!(gone["rules"].as_array().unwrap().len(), 3);

    // Memory files: a dry run writes nothing.
    let dry = call(&c, "memory_sync", json!({"dry_run": true})).await;
    assert_eq!(dry["files"][0]["change"], "created", "{dry}");
    assert!(
        str_of(&dry, "section").contains("DATABASE_INVESTIGATION"),
        "{dry}"
    );
    assert!(!f.env.path().join("CLAUDE.md").exists());
    let synced = call(&c, "memory_sync", json!({"files": ["AGENTS.md"]})).await;
    assert_eq!(synced["files"].as_array().unwrap().len(), 1, "{synced}");
    assert!(f.env.path().join("AGENTS.md").exists());
    let _ = c.cancel().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objectives_are_linked_through_mcp_and_achieved_by_their_tasks() {
    let f = Fixture::new(Profile::Full).await;
    let c = f.client("conductor").await;
    call(
        &c,
        "tasks",
        json!({"action": "add", "title": "Login", "key": "login"}),
    )
    .await;
    let o = call(&c, "objective_add", json!({"title": "Users can log in"})).await;
    assert_eq!(o["id"], "o1");
    let linked = call(
        &c,
        "objective_link",
        json!({"id": "o1", "tasks": ["login"]}),
    )
    .await;
    assert_eq!(linked["status"], "active", "{linked}");
    assert_eq!(linked["tasks"].as_array().unwrap().len(), 1);
    fails(
        &c,
        "objective_link",
        json!({"id": "o7", "tasks": ["login"]}),
        "o7",
    )
    .await;
    let cl = call(&c, "claim", json!({"task": "login"})).await;
    call(
        &c,
        "work",
        json!({"task": "login", "token": cl["token"], "summary": "done"}),
    )
    .await;
    let ctx = call(&c, "context", json!({})).await;
    assert_eq!(ctx["objectives"][0]["status"], "achieved", "{ctx}");
    let _ = c.cancel().await;
}

// ------------------------------------------------------------------------------------------
// The full profile's finer tools

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templates_over_mcp() {
    let f = Fixture::new(Profile::Full).await;
    let c = f.client("templates").await;
    let list = call(&c, "template", json!({"action": "list"})).await;
    assert_eq!(list.as_array().unwrap().len(), 3);
    let show = call(&c, "template", json!({"action": "show", "name": "complex"})).await;
    assert_eq!(show["parameters"]["feature"]["required"], true);
    let values = json!({"service": "billing", "security": true});
    let check = call(
        &c,
        "template",
        json!({"action": "check", "name": "emergency", "values": values}),
    )
    .await;
    assert_eq!(check["would_hold"], "billing-postmortem");
    assert!(
        check.get("tasks").is_none(),
        "a check writes nothing: {check}"
    );
    let applied = call(
        &c,
        "template",
        json!({"action": "apply", "name": "emergency", "values": values}),
    )
    .await;
    assert_eq!(applied["tasks"].as_array().unwrap().len(), 7, "{applied}");
    assert_eq!(applied["hold"]["id"], 1);
    fails(
        &c,
        "template",
        json!({"action": "apply", "name": "emergency", "values": {"servce": "x"}}),
        "no parameter `servce`",
    )
    .await;
    fails(
        &c,
        "template",
        json!({"action": "list", "nmae": "x"}),
        "unknown field",
    )
    .await;
    let _ = c.cancel().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_full_tool() {
    let f = Fixture::new(Profile::Full).await;
    let c = f.client("fine").await;
    call(&c, "plan", json!({"plan": small_plan()})).await;

    let a = call(
        &c,
        "task_add",
        json!({"title": "Spike", "role": "researcher", "key": "spike", "files": ["notes/*.md"]}),
    )
    .await;
    let spike = str_of(&a, "id").to_owned();
    call(
        &c,
        "task_update",
        json!({"id": "spike", "description": "Look around", "role": "none"}),
    )
    .await;
    let l = call(&c, "task_list", json!({"search": "spike"})).await;
    assert_eq!(l["tasks"][0]["id"], spike);
    assert!(l["tasks"][0].get("role").is_none());
    let r = call(&c, "task_ready", json!({"limit": 1})).await;
    assert_eq!(r["ready"].as_array().unwrap().len(), 1);
    assert_eq!(r["total_ready"], 2);
    let s = call(&c, "task_show", json!({"id": "spike"})).await;
    assert_eq!(s["description"], "Look around");
    call(&c, "dep_add", json!({"id": "spike", "on": ["design"]})).await;
    let s = call(&c, "task_show", json!({"id": "spike"})).await;
    assert_eq!(s["state"], "waiting");
    call(&c, "dep_remove", json!({"id": "spike", "on": ["design"]})).await;
    let st = call(
        &c,
        "task_status",
        json!({"id": "spike", "to": "skip", "note": "not needed"}),
    )
    .await;
    assert_eq!(st["changed"][0]["status"], "skipped");
    let w = call(&c, "waves", json!({})).await;
    assert_eq!(w["critical_path"].as_array().unwrap().len(), 3);
    let b = call(&c, "blocked", json!({})).await;
    assert_eq!(b["waiting"].as_array().unwrap().len(), 3);

    let o = call(
        &c,
        "objective_add",
        json!({"title": "Fast", "tasks": ["impl"]}),
    )
    .await;
    call(
        &c,
        "objective_status",
        json!({"id": o["id"], "status": "achieved"}),
    )
    .await;
    call(&c, "insight_add", json!({"text": "noted"})).await;
    let d = call(
        &c,
        "decision_add",
        json!({"text": "Keep it small", "why": "time"}),
    )
    .await;
    assert_eq!(d["id"], "d2");

    let pr = call(&c, "prompt", json!({"task": "design"})).await;
    assert!(str_of(&pr, "prompt").contains("You are the architect"));
    let pr = call(&c, "prompt", json!({"task": "design", "role": "reviewer"})).await;
    assert!(str_of(&pr, "prompt").contains("You are the reviewer"));

    let cl = call(&c, "claim", json!({"task": "design"})).await;
    let t = cl["token"].clone();
    call(&c, "heartbeat", json!({"task": "design", "token": t})).await;
    call(
        &c,
        "release",
        json!({"task": "design", "token": t, "reason": "lunch"}),
    )
    .await;
    let cl = call(&c, "claim", json!({"task": "design"})).await;
    call(
        &c,
        "fail",
        json!({"task": "design", "token": cl["token"], "reason": "wrong approach"}),
    )
    .await;
    call(&c, "task_status", json!({"id": "design", "to": "retry"})).await;
    let cl = call(&c, "claim", json!({"task": "design"})).await;
    let done = call(
        &c,
        "complete",
        json!({"task": "design", "token": cl["token"], "summary": "ok"}),
    )
    .await;
    assert_eq!(done["status"], "completed");
    let at = call(&c, "attempts", json!({"id": "design"})).await;
    let outcomes: Vec<&str> = at["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["released", "failed", "succeeded"]);

    let lg = call(&c, "log", json!({"task": "design", "limit": 3})).await;
    assert_eq!(lg["events"].as_array().unwrap().len(), 3);
    let m = call(&c, "metrics", json!({})).await;
    assert_eq!(m["tasks_completed"], 1);
    let roles = call(&c, "roles", json!({})).await;
    assert_eq!(roles["roles"].as_array().unwrap().len(), 9);
    let one = call(&c, "roles", json!({"name": "tester"})).await;
    assert!(str_of(&one, "prompt").contains("tester"));
    let syn = call(&c, "synthesize", json!({})).await;
    assert!(str_of(&syn, "path").ends_with("project.md"));
    let h = call(&c, "handover", json!({})).await;
    assert!(h["bytes"].as_u64().unwrap() > 100);
    let mt = call(&c, "maintain", json!({"stale_after": "1h"})).await;
    assert_eq!(mt["applied"], false);
    let g = call(&c, "graph", json!({})).await;
    assert!(str_of(&g, "graph").starts_with("flowchart TD"));
    let g = call(&c, "graph", json!({"format": "dot"})).await;
    assert!(str_of(&g, "graph").starts_with("digraph"));

    // The default tools are there too.
    call(&c, "report", json!({})).await;
    let _ = c.cancel().await;
}

/// Every task's `task_show` state and waits_on against the planner's list and blocked view.
async fn check_show_against_planner(c: &Client) {
    let listed = call(c, "task_list", json!({})).await;
    let blocked = call(c, "blocked", json!({})).await;
    let mut waits: std::collections::HashMap<String, Vec<String>> = Default::default();
    let strings = |v: &Value| -> Vec<String> {
        let mut out: Vec<String> = v
            .as_array()
            .map(|a| a.iter().map(|x| x.as_str().unwrap().to_owned()).collect())
            .unwrap_or_default();
        out.sort();
        out
    };
    for w in blocked["waiting"]
        .as_array()
        .unwrap()
        .iter()
        .chain(blocked["stuck"].as_array().unwrap())
    {
        waits.insert(str_of(w, "id").to_owned(), strings(&w["waits_on"]));
    }
    for t in listed["tasks"].as_array().unwrap() {
        let id = str_of(t, "id");
        let s = call(c, "task_show", json!({"id": id})).await;
        assert_eq!(s["state"], t["state"], "{id}: {s} vs {t}");
        let on = strings(s.get("waits_on").unwrap_or(&Value::Null));
        assert_eq!(on, waits.get(id).cloned().unwrap_or_default(), "{id}: {s}");
    }
}

/// `list` answers from the planner's snapshot unless it filters by tag or text: an empty text
/// filter (which every task matches) takes the other path, which must give the same answer.
async fn check_list_paths(c: &Client) {
    for filter in [
        json!({}),
        json!({"status": ["ready"]}),
        json!({"status": ["waiting"]}),
        json!({"status": ["ready", "waiting"]}),
        json!({"status": ["ready", "pending"]}),
        json!({"status": ["completed", "running", "failed", "skipped"]}),
        json!({"role": "implementer"}),
        json!({"role": "implementer", "status": ["ready"]}),
        json!({"parent": "e1"}),
        json!({"parent": "s1", "status": ["waiting"]}),
        json!({"limit": 3}),
        json!({"status": ["ready"], "limit": 1}),
        json!({"status": ["waiting"], "limit": 2}),
    ] {
        let fast = call(c, "task_list", filter.clone()).await;
        let mut other = filter.clone();
        other["search"] = json!("");
        let slow = call(c, "task_list", other).await;
        assert_eq!(fast, slow, "{filter}");
    }
}

/// `show` reads one leaf with targeted queries and `list` the planner's snapshot; their
/// answers must agree with the planner's and with the full task rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_agrees_with_the_planner() {
    let f = Fixture::new(Profile::Full).await;
    let c = f.client("checker").await;
    let plan = json!({"tasks": [
        {"key": "e1", "title": "Epic one"},
        {"key": "s1", "parent": "e1", "title": "Story one"},
        {"key": "a", "parent": "s1", "title": "A", "role": "implementer"},
        {"key": "b", "parent": "s1", "title": "B", "depends_on": ["a"]},
        {"key": "c", "parent": "e1", "title": "C"},
        {"key": "e2", "title": "Epic two", "depends_on": ["s1"]},
        {"key": "d", "parent": "e2", "title": "D", "role": "implementer"},
        {"key": "e", "parent": "e2", "title": "E", "depends_on": ["c"]},
        {"key": "f", "title": "F", "depends_on": ["e1"]},
        {"key": "g", "title": "G"},
        {"key": "h", "title": "H", "depends_on": ["g"]},
        {"key": "i", "title": "I", "depends_on": ["h", "a"]}
    ]});
    call(&c, "plan", json!({"plan": plan})).await;
    check_show_against_planner(&c).await;
    check_list_paths(&c).await;
    for (task, to) in [("a", "done"), ("g", "skip"), ("c", "start"), ("h", "start")] {
        call(&c, "task_status", json!({"id": task, "to": to})).await;
    }
    check_show_against_planner(&c).await;
    check_list_paths(&c).await;
    for (task, to) in [("c", "fail"), ("b", "done"), ("h", "done")] {
        call(&c, "task_status", json!({"id": task, "to": to})).await;
    }
    check_show_against_planner(&c).await;
    check_list_paths(&c).await;
    let _ = c.cancel().await;
}

/// Ids of `tasks ready`, best first.
async fn ready_ids(c: &Client) -> Vec<String> {
    let r = call(c, "tasks", json!({"action": "ready"})).await;
    r["ready"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| str_of(t, "id").to_owned())
        .collect()
}

/// A server keeps the graph between calls; another server on the same database (its own
/// connections and kept graph) and another process must still be seen at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_sharing_a_database_see_each_others_changes() {
    let f = Fixture::new(Profile::Default).await;
    let g = Globals {
        project: Some(f.path().to_owned()),
        actor: "other".into(),
        ..Default::default()
    };
    let mut p = project::open(&g).await.unwrap();
    p.fixed_now = Timestamp::parse_rfc3339(NOW);
    let other = Arc::new(Ctx::new(Some(g.actor.clone()), p, Profile::Default));
    let a = f.client("a").await;
    let b = {
        let (server_io, client_io) = tokio::io::duplex(1 << 20);
        let server = DownbeatMcp::new(other);
        tokio::spawn(async move {
            if let Ok(s) = server.serve(server_io).await {
                let _ = s.waiting().await;
            }
        });
        ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("b", "1.0"),
        )
        .serve(client_io)
        .await
        .unwrap()
    };
    call(&a, "plan", json!({"plan": small_plan()})).await;
    let design = ready_ids(&a).await;
    assert_eq!(design.len(), 1);
    // Asked twice with nothing in between: the same answer.
    assert_eq!(ready_ids(&a).await, design);
    let status = call(&a, "report", json!({})).await;
    assert_eq!(status["progress"], "0/4");

    // The other server claims the design and completes it.
    let cl = call(&b, "claim", json!({})).await;
    assert_eq!(cl["task"], json!(design[0]));
    assert!(ready_ids(&a).await.is_empty());
    let status = call(&a, "report", json!({})).await;
    assert_eq!(status["counts"]["running"], 1, "{status}");
    let shown = call(&a, "tasks", json!({"action": "show", "id": "design"})).await;
    assert_eq!(shown["state"], "running");
    call(
        &b,
        "work",
        json!({"task": cl["task"], "token": cl["token"], "summary": "done"}),
    )
    .await;
    let after = ready_ids(&a).await;
    assert_eq!(after.len(), 2, "impl and docs: {after:?}");
    let status = call(&a, "report", json!({})).await;
    assert_eq!(status["progress"], "1/4");
    let shown = call(&a, "tasks", json!({"action": "show", "id": "impl"})).await;
    assert_eq!(shown["state"], "ready");

    // A task added, a dependency and a rename there show up here.
    let added = call(
        &b,
        "tasks",
        json!({"action": "add", "title": "Late", "key": "late", "effort": 9}),
    )
    .await;
    let ready = ready_ids(&a).await;
    assert_eq!(ready[0], str_of(&added, "id"), "{ready:?}");
    let listed = call(&a, "tasks", json!({"action": "list", "status": ["ready"]})).await;
    assert_eq!(listed["count"], 3);
    call(
        &b,
        "tasks",
        json!({"action": "dep", "id": "late", "on": ["test"]}),
    )
    .await;
    let shown = call(&a, "tasks", json!({"action": "show", "id": "late"})).await;
    assert_eq!(shown["state"], "waiting");
    assert_eq!(ready_ids(&a).await.len(), 2);
    call(
        &b,
        "tasks",
        json!({"action": "update", "id": "docs", "title": "Write the docs"}),
    )
    .await;
    let listed = call(&a, "tasks", json!({"action": "list", "status": ["ready"]})).await;
    assert!(listed.to_string().contains("Write the docs"), "{listed}");

    // Objectives recorded there show in the status here (which is kept with the graph).
    let objective = call(
        &b,
        "context",
        json!({"action": "objective", "text": "Document it", "tasks": ["docs"]}),
    )
    .await;
    let status = call(&a, "report", json!({})).await;
    assert!(status.to_string().contains("Document it"), "{status}");
    call(
        &b,
        "context",
        json!({"action": "objective_status", "id": objective["id"], "status": "done"}),
    )
    .await;
    let status = call(&a, "report", json!({})).await;
    assert!(!status.to_string().contains("Document it"), "{status}");

    // The claim here takes what is ready now, not what was ready when it last looked.
    let mine = call(&a, "claim", json!({})).await;
    let theirs = call(&b, "claim", json!({})).await;
    assert_ne!(mine["task"], theirs["task"]);
    assert!(ready_ids(&a).await.is_empty());
    assert!(ready_ids(&b).await.is_empty());

    // Another process: the CLI skips a task; both servers see it on their next call.
    let out = f
        .env
        .command(&["skip", "late"])
        .env("DOWNBEAT_NOW", NOW)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = call(&a, "report", json!({})).await;
    assert_eq!(status["counts"]["skipped"], 1, "{status}");
    let shown = call(&b, "tasks", json!({"action": "show", "id": "late"})).await;
    assert_eq!(shown["state"], "skipped");
    let _ = a.cancel().await;
    let _ = b.cancel().await;
}

/// Decisions proposed through MCP wait until accepted or rejected; the context resource shows
/// them as pending, and the tools refuse arguments they do not know.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_are_proposed_and_decided_over_mcp() {
    let f = Fixture::new(Profile::Full).await;
    let c = f.client("conductor").await;
    call(&c, "plan", json!({"plan": small_plan()})).await;
    let p = call(
        &c,
        "decision_propose",
        json!({"text": "Use Authlib", "why": "maintained"}),
    )
    .await;
    assert_eq!(p["status"], "proposed");
    let id = p["id"].as_str().unwrap().to_owned();
    let other = call(&c, "decision_propose", json!({"text": "Drop Redis"})).await;
    let pending = call(&c, "decision_list", json!({"pending": true})).await;
    assert_eq!(
        pending["decisions"].as_array().unwrap().len(),
        2,
        "{pending}"
    );

    let read = c
        .read_resource(ReadResourceRequestParams::new("downbeat://context"))
        .await
        .unwrap();
    let ResourceContents::TextResourceContents { text, .. } = &read.contents[0] else {
        panic!("{read:?}")
    };
    let ctx: Value = serde_json::from_str(text).unwrap();
    assert_eq!(ctx["decisions"]["pending"]["total"], 2, "{ctx}");
    assert_eq!(
        ctx["decisions"]["pending"]["items"][0]["text"],
        "Use Authlib"
    );
    assert!(text.len() <= 6_000);

    fails(
        &c,
        "decision_accept",
        json!({"id": id, "reason": "x"}),
        "unknown field `reason`",
    )
    .await;
    let a = call(&c, "decision_accept", json!({"id": id})).await;
    assert_eq!(a["status"], "accepted");
    let r = call(
        &c,
        "decision_reject",
        json!({"id": other["id"], "why": "still needed"}),
    )
    .await;
    assert_eq!(r["status"], "rejected");
    fails(&c, "decision_reject", json!({"id": id}), "not proposed").await;
    let all = call(&c, "decision_list", json!({})).await;
    let statuses: Vec<&str> = all["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["status"].as_str())
        .collect();
    assert!(statuses.ends_with(&["accepted", "rejected"]), "{all}");
    let _ = c.cancel().await;
}

// ------------------------------------------------------------------------------------------
// Resources and prompts

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resources_and_prompts() {
    let f = Fixture::new(Profile::Default).await;
    let c = f.client("reader").await;
    call(&c, "plan", json!({"plan": small_plan()})).await;

    let res = c.list_all_resources().await.unwrap();
    let uris: Vec<&str> = res.iter().map(|r| r.uri.as_str()).collect();
    assert_eq!(
        uris,
        [
            "downbeat://handover",
            "downbeat://graph.mmd",
            "downbeat://context"
        ]
    );
    let tpl = c.list_all_resource_templates().await.unwrap();
    assert_eq!(tpl[0].uri_template, "downbeat://task/{id}");

    let text = |r: rmcp::model::ReadResourceResult| match &r.contents[0] {
        ResourceContents::TextResourceContents { text, .. } => text.clone(),
        other => panic!("{other:?}"),
    };
    let h = text(
        c.read_resource(ReadResourceRequestParams::new("downbeat://handover"))
            .await
            .unwrap(),
    );
    assert!(h.contains("Ship it"), "{h}");
    assert!(
        !f.path().join(".downbeat/handover.md").exists(),
        "reading the resource writes nothing"
    );
    let g = text(
        c.read_resource(ReadResourceRequestParams::new("downbeat://graph.mmd"))
            .await
            .unwrap(),
    );
    assert!(
        g.starts_with("flowchart TD") && g.contains("subgraph"),
        "{g}"
    );
    let t: Value = serde_json::from_str(&text(
        c.read_resource(ReadResourceRequestParams::new("downbeat://task/impl"))
            .await
            .unwrap(),
    ))
    .unwrap();
    assert_eq!(t["title"], "Implement");
    let missing = c
        .read_resource(ReadResourceRequestParams::new("downbeat://task/nope"))
        .await;
    assert!(missing.is_err());
    assert!(
        c.read_resource(ReadResourceRequestParams::new("downbeat://other"))
            .await
            .is_err()
    );

    let prompts = c.list_all_prompts().await.unwrap();
    let names: Vec<&str> = prompts.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "architect",
            "database",
            "debugger",
            "documenter",
            "implementer",
            "researcher",
            "reviewer",
            "security",
            "tester"
        ]
    );
    let mut args = serde_json::Map::new();
    args.insert("task".into(), json!("test"));
    let p = c
        .get_prompt(GetPromptRequestParams::new("tester").with_arguments(args))
        .await
        .unwrap();
    let body = serde_json::to_string(&p.messages).unwrap();
    assert!(
        body.contains("You are the tester") && body.contains("Task"),
        "{body}"
    );
    assert!(
        c.get_prompt(GetPromptRequestParams::new("tester"))
            .await
            .is_err()
    );
    assert!(
        c.get_prompt(GetPromptRequestParams::new("poet"))
            .await
            .is_err()
    );
    let _ = c.cancel().await;
}

// ------------------------------------------------------------------------------------------
// Claims under contention

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_claimants_never_get_the_same_task() {
    let f = Fixture::new(Profile::Default).await;
    let a = f.client("agent-a").await;
    let b = f.client("agent-b").await;
    let tasks: Vec<Value> = (0..24)
        .map(|i| json!({"title": format!("Task {i}"), "role": "implementer"}))
        .collect();
    call(&a, "plan", json!({"plan": {"tasks": tasks}})).await;
    let claim_all = |c: Client, worker: &'static str| async move {
        let mut got = Vec::new();
        loop {
            let r = call(&c, "claim", json!({"worker": worker, "prompt": false})).await;
            match r["task"].as_str() {
                Some(t) => got.push(t.to_owned()),
                None => break,
            }
        }
        (c, got)
    };
    let c2 = f.client("agent-a").await;
    let (ra, rb, rc) = tokio::join!(
        claim_all(a, "one"),
        claim_all(b, "one"),
        claim_all(c2, "two")
    );
    let all: Vec<String> = ra.1.iter().chain(&rb.1).chain(&rc.1).cloned().collect();
    let unique: HashSet<&String> = all.iter().collect();
    assert_eq!(all.len(), 24, "every task claimed once: {all:?}");
    assert_eq!(unique.len(), 24, "no task claimed twice: {all:?}");
    let _ = (
        ra.0.cancel().await,
        rb.0.cancel().await,
        rc.0.cancel().await,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_respect_role_caps_and_file_footprints() {
    let f = Fixture::new(Profile::Default).await;
    std::fs::write(
        f.path().join(".downbeat/config.toml"),
        "[roles.tester]\nmax_parallel = 1\n",
    )
    .unwrap();
    let c = f.client("capped").await;
    call(
        &c,
        "plan",
        json!({"plan": {"tasks": [
            {"key": "t1", "title": "T1", "role": "tester"}, {"key": "t2", "title": "T2", "role": "tester"},
            {"title": "F1", "role": "implementer", "files": ["src/a.rs"]},
            {"title": "F2", "role": "implementer", "files": ["src/*.rs"]}
        ]}}),
    )
    .await;
    let mut titles = Vec::new();
    loop {
        let r = call(&c, "claim", json!({"prompt": false})).await;
        match r["title"].as_str() {
            Some(t) => titles.push(t.to_owned()),
            None => {
                assert!(str_of(&r, "reason").contains("role caps"), "{r}");
                break;
            }
        }
    }
    titles.sort();
    assert_eq!(titles.len(), 2, "{titles:?}");
    // A named task can still be claimed explicitly.
    call(&c, "claim", json!({"task": "t2", "prompt": false}))
        .await
        .get("token")
        .expect("token");
    let _ = c.cancel().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_respect_named_groups_and_holds() {
    let f = Fixture::new(Profile::Default).await;
    std::fs::write(
        f.path().join(".downbeat/config.toml"),
        "[groups.heavy]\nmax_parallel = 1\nroles = [\"tester\", \"implementer\"]\n",
    )
    .unwrap();
    let c = f.client("grouped").await;
    call(
        &c,
        "plan",
        json!({"plan": {"tasks": [
            {"key": "t1", "title": "T1", "role": "tester"},
            {"key": "i1", "title": "I1", "role": "implementer"},
            {"key": "r1", "title": "R1", "role": "reviewer"},
            {"key": "r2", "title": "R2", "role": "reviewer"}
        ]}}),
    )
    .await;
    // One of the group, then the free reviewer; then the group is full.
    let first = call(&c, "claim", json!({"prompt": false})).await;
    assert!(["T1", "I1"].contains(&str_of(&first, "title")), "{first}");
    let second = call(&c, "claim", json!({"prompt": false, "role": "reviewer"})).await;
    assert_eq!(str_of(&second, "title"), "R1", "{second}");
    let r = call(&c, "claim", json!({"prompt": false, "role": "tester"})).await;
    assert!(
        r["task"].is_null() && str_of(&r, "reason").contains("group caps"),
        "{r}"
    );
    // A pause from the command line holds back every claim, named or not.
    let cli = |args: &[&str]| f.env.command(args).output().unwrap();
    assert!(cli(&["pause", "--reason", "breach"]).status.success());
    let r = call(&c, "claim", json!({"prompt": false})).await;
    assert!(r["task"].is_null(), "{r}");
    assert!(
        str_of(&r, "reason").contains("paused") && str_of(&r, "reason").contains("breach"),
        "{r}"
    );
    let err = fails(
        &c,
        "claim",
        json!({"task": "r2", "prompt": false}),
        "cannot start",
    )
    .await;
    assert!(err.contains("downbeat unpause 1"), "{err}");
    assert!(cli(&["unpause"]).status.success());
    let r = call(&c, "claim", json!({"task": "r2", "prompt": false})).await;
    assert_eq!(str_of(&r, "title"), "R2", "{r}");
    let _ = c.cancel().await;
}

// ------------------------------------------------------------------------------------------
// Errors: tool errors, nothing half-written, the server keeps going

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_calls_are_tool_errors() {
    let f = Fixture::new(Profile::Default).await;
    let c = f.client("clumsy").await;
    call(&c, "plan", json!({"plan": small_plan()})).await;

    // Wrong types and unknown actions.
    fails(
        &c,
        "work",
        json!({"task": "design", "token": 7}),
        "failed to deserialize",
    )
    .await;
    fails(
        &c,
        "tasks",
        json!({"action": "explode"}),
        "failed to deserialize",
    )
    .await;
    fails(&c, "tasks", json!({"limit": -3}), "failed to deserialize").await;
    // Unknown ids.
    fails(
        &c,
        "tasks",
        json!({"action": "show", "id": "zzzzzz"}),
        "no task matches",
    )
    .await;
    fails(&c, "tasks", json!({"action": "show"}), "`id`").await;
    fails(&c, "claim", json!({"task": "nope"}), "no task matches").await;
    fails(
        &c,
        "context",
        json!({"action": "objective_status", "id": "o9", "status": "achieved"}),
        "o9",
    )
    .await;
    fails(
        &c,
        "context",
        json!({"action": "decision", "text": "x", "supersedes": "q1"}),
        "not a decision id",
    )
    .await;
    fails(
        &c,
        "tasks",
        json!({"action": "add", "title": "x", "role": "poet"}),
        "unknown role",
    )
    .await;
    // Plan validation names the offending task and edge; nothing is written.
    let bad = json!({"tasks": [
        {"key": "a", "title": "A", "depends_on": ["ghost"]},
        {"key": "b", "title": "B", "role": "poet"}
    ]});
    let msg = fails(&c, "plan", json!({"plan": bad}), "task `a`").await;
    assert!(msg.contains("`ghost`") && msg.contains("task `b`"), "{msg}");
    fails(
        &c,
        "plan",
        json!({"plan": {"tasks": [{"title": "x", "colour": "red"}]}}),
        "colour",
    )
    .await;
    fails(&c, "plan", json!({}), "`plan` is required").await;
    let cyc = json!({"tasks": [
        {"key": "x", "title": "X", "depends_on": ["y"]},
        {"key": "y", "title": "Y", "depends_on": ["x"]}
    ]});
    fails(&c, "plan", json!({"plan": cyc}), "dependency cycle").await;
    let l = call(&c, "tasks", json!({})).await;
    assert_eq!(l["count"], 5, "failed plans wrote nothing");
    // A cycle through an added dependency.
    fails(
        &c,
        "tasks",
        json!({"action": "dep", "id": "design", "on": ["test"]}),
        "dependency cycle",
    )
    .await;
    // Illegal transitions.
    fails(
        &c,
        "tasks",
        json!({"action": "set", "id": "design", "to": "fail"}),
        "cannot move a pending task to failed",
    )
    .await;
    fails(
        &c,
        "tasks",
        json!({"action": "set", "id": "design", "to": "sideways"}),
        "sideways",
    )
    .await;
    fails(
        &c,
        "claim",
        json!({"task": "test"}),
        "is not ready: it waits on",
    )
    .await;
    fails(&c, "claim", json!({"task": "feature"}), "has children").await;
    // Stale fencing tokens.
    let cl = call(&c, "claim", json!({"task": "design", "prompt": false})).await;
    let token = cl["token"].as_str().unwrap().to_owned();
    fails(
        &c,
        "claim",
        json!({"task": "design"}),
        "already claimed by mcp:clumsy",
    )
    .await;
    fails(
        &c,
        "work",
        json!({"task": "design", "token": later_epoch(&token), "summary": "x"}),
        "stale fencing token",
    )
    .await;
    fails(
        &c,
        "work",
        json!({"task": "design", "token": "seven", "summary": "x"}),
        "is not a fencing token",
    )
    .await;
    // Someone reopens the task by hand: the old token is stale now.
    call(
        &c,
        "tasks",
        json!({"action": "set", "id": "design", "to": "reopen"}),
    )
    .await;
    let msg = fails(
        &c,
        "work",
        json!({"task": "design", "token": token, "summary": "late"}),
        "stale fencing token",
    )
    .await;
    assert!(msg.contains("claim the task again"), "{msg}");
    fails(
        &c,
        "work",
        json!({"action": "heartbeat", "task": "design", "token": token}),
        "stale fencing token",
    )
    .await;
    let cl = call(&c, "claim", json!({"task": "design", "prompt": false})).await;
    fails(
        &c,
        "work",
        json!({"task": "design", "token": cl["token"], "artifacts": ["../outside.txt"]}),
        "artifact",
    )
    .await;
    fails(&c, "work", json!({"task": "design", "token": cl["token"], "discovered": [{"title": "x", "role": "poet"}]}), "unknown role").await;
    // Still running under the same token: the refused completions wrote nothing.
    let sh = call(&c, "tasks", json!({"action": "show", "id": "design"})).await;
    assert_eq!(sh["state"], "running");
    fails(&c, "work", json!({"task": "design"}), "`token`").await;
    fails(
        &c,
        "report",
        json!({"action": "maintain", "stale_after": "soon"}),
        "stale_after",
    )
    .await;
    fails(
        &c,
        "run",
        json!({"action": "start", "executor": "nonexistent"}),
        "unknown executor",
    )
    .await;
    // The server is fine.
    call(&c, "work", json!({"task": "design", "token": cl["token"]})).await;
    let _ = c.cancel().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_lease_goes_back_to_the_pool_and_its_token_goes_stale() {
    let f = Fixture::with_clock(Profile::Default, None).await;
    let slow = f.client("slow").await;
    let quick = f.client("quick").await;
    call(
        &slow,
        "plan",
        json!({"plan": {"tasks": [{"title": "Only"}]}}),
    )
    .await;
    let first = call(&slow, "claim", json!({"lease": "1s", "prompt": false})).await;
    let r = call(&quick, "claim", json!({"prompt": false})).await;
    assert!(r["task"].is_null(), "still held: {r}");
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    let second = call(&quick, "claim", json!({"prompt": false})).await;
    assert_eq!(second["task"], first["task"]);
    let epoch = |v: &Value| -> i64 {
        let t = v["token"].as_str().expect("a token");
        t.split_once('.').expect("EPOCH.ATTEMPT").0.parse().unwrap()
    };
    assert!(epoch(&second) > epoch(&first), "{first} then {second}");
    fails(
        &slow,
        "work",
        json!({"task": first["task"], "token": first["token"], "summary": "late"}),
        "stale fencing token",
    )
    .await;
    call(
        &quick,
        "work",
        json!({"task": second["task"], "token": second["token"], "summary": "on time"}),
    )
    .await;
    let _ = (slow.cancel().await, quick.cancel().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_can_be_cancelled() {
    let f = Fixture::new(Profile::Full).await;
    let c = f.client("runner").await;
    let slow = json!({"type": "process", "argv": ["sleep", "30"]}).to_string();
    call(&c, "task_add", json!({"title": "Slow", "executor": slow})).await;
    call(&c, "run", json!({"action": "start"})).await;
    fails(&c, "run", json!({"action": "start"}), "still going").await;
    for _ in 0..200 {
        let w = call(&c, "run", json!({"action": "watch"})).await;
        if w.get("running").is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let t0 = std::time::Instant::now();
    let r = call(&c, "run", json!({"action": "cancel"})).await;
    assert_eq!(r["cancelled"], true);
    assert_eq!(r["state"], "cancelled", "{r}");
    assert!(t0.elapsed().as_secs() < 20);
    let l = call(&c, "task_list", json!({"search": "slow"})).await;
    assert_eq!(l["tasks"][0]["state"], "ready", "back to pending: {l}");
    let _ = c.cancel().await;
}

// ------------------------------------------------------------------------------------------
// The real binary

/// An initialised project where the binary runs with a cleared environment and a fixed clock.
fn init_dir() -> Env {
    Env::builder().fixed_clock().init().build()
}

fn server_cmd(dir: &Env, args: &[&str]) -> tokio::process::Command {
    let mut cmd = dir.command(&["mcp"]);
    cmd.args(args)
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    cmd.into()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_stdio() {
    use rmcp::transport::TokioChildProcess;
    let dir = init_dir();
    let (transport, _stderr) = TokioChildProcess::builder(server_cmd(&dir, &[]))
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let c: Client = ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new("e2e", "1.0"),
    )
    .serve(transport)
    .await
    .unwrap();
    let info = c.peer_info().unwrap();
    assert_eq!(
        info.server_info.as_ref().map(|s| s.name.as_str()),
        Some("downbeat")
    );
    assert_eq!(c.list_all_tools().await.unwrap().len(), 8);
    call(&c, "plan", json!({"plan": small_plan()})).await;
    let cl = call(&c, "claim", json!({})).await;
    assert_eq!(cl["title"], "Design");
    call(
        &c,
        "work",
        json!({"task": cl["task"], "token": cl["token"], "summary": "ok"}),
    )
    .await;
    let s = call(&c, "session", json!({})).await;
    assert!(str_of(&s, "brief").contains("Progress"), "{s}");
    let _ = c.cancel().await;

    // Another process sees the same graph.
    let out = dir
        .command(&["list", "--json", "--status", "completed"])
        .output()
        .unwrap();
    let done: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(done[0]["title"], "Design");

    // `mcp serve` is the same as `mcp`; `[mcp] profile = "full"` selects the full profile.
    std::fs::write(
        dir.path().join(".downbeat/config.toml"),
        "[mcp]\nprofile = \"full\"\n",
    )
    .unwrap();
    let (transport, _) = TokioChildProcess::builder(server_cmd(&dir, &["serve"]))
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let c: Client = ClientConfig::default().serve(transport).await.unwrap();
    assert_eq!(
        c.list_all_tools().await.unwrap().len(),
        downbeat_mcp::tools::tool_names(Profile::Full).len()
    );
    let _ = c.cancel().await;
}

/// Starts `downbeat mcp --http ADDR` and returns the child and the address it listens on.
async fn http_server(dir: &Env, token: Option<&str>) -> (tokio::process::Child, String) {
    use tokio::io::AsyncBufReadExt;
    let mut cmd = server_cmd(dir, &["--http", "127.0.0.1:0"]);
    if let Some(t) = token {
        cmd.env("DOWNBEAT_MCP_TOKEN", t);
    }
    let mut child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let line = tokio::time::timeout(std::time::Duration::from_secs(20), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|s| s.strip_suffix("/mcp"))
        .unwrap_or_else(|| panic!("unexpected: {line}"))
        .to_owned();
    (child, addr)
}

/// POSTs an initialize request; returns the status code and the body.
async fn post_initialize(addr: &str, auth: Option<&str>) -> (u16, String) {
    let auth = auth
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    post_initialize_with(addr, &auth).await
}

/// [`post_initialize`] with extra header lines (each ending in `\r\n`).
async fn post_initialize_with(addr: &str, auth: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-03-26","capabilities":{},"clientInfo":{"name":"http-test","version":"1"}}}"#;
    let req = format!(
        "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    // Read until the JSON-RPC result (or the end of a short response) has arrived.
    loop {
        let n = tokio::time::timeout(std::time::Duration::from_secs(10), s.read(&mut chunk))
            .await
            .unwrap()
            .unwrap();
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        if text.contains("\"result\"")
            || (text.starts_with("HTTP/1.1 4") && text.contains("\r\n\r\n"))
        {
            break;
        }
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_on_loopback_works() {
    let dir = init_dir();
    let (mut child, addr) = http_server(&dir, None).await;
    let (code, body) = post_initialize(&addr, None).await;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"downbeat\""), "{body}");
    let _ = child.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_refuses_pages_of_other_origins() {
    let dir = init_dir();
    let (mut child, addr) = http_server(&dir, None).await;
    for bad in ["http://evil.example", "null"] {
        let (code, body) = post_initialize_with(&addr, &format!("Origin: {bad}\r\n")).await;
        assert_eq!(code, 403, "{bad}: {body}");
    }
    let (code, body) = post_initialize_with(&addr, "Origin: http://localhost:5173\r\n").await;
    assert_eq!(code, 200, "{body}");
    let _ = child.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_bearer_token_is_required_when_set() {
    let dir = init_dir();
    let (mut child, addr) = http_server(&dir, Some("s3cret-token")).await;
    let (code, body) = post_initialize(&addr, None).await;
    assert_eq!(code, 401, "{body}");
    let (code, _) = post_initialize(&addr, Some("Bearer wrong")).await;
    assert_eq!(code, 401);
    let (code, _) = post_initialize(&addr, Some("Basic s3cret-token")).await;
    assert_eq!(code, 401);
    let (code, body) = post_initialize(&addr, Some("Bearer s3cret-token")).await;
    assert_eq!(code, 200, "{body}");
    let _ = child.kill().await;
    let out = child.wait_with_output().await.unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("s3cret-token"),
        "the token is never logged: {err}"
    );
}

#[test]
fn http_refuses_a_public_address_without_a_token() {
    let dir = init_dir();
    let out = dir
        .command(&["mcp", "--http", "0.0.0.0:0"])
        .env_remove("DOWNBEAT_NOW")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refusing to serve MCP on 0.0.0.0:0 without a bearer token"),
        "{err}"
    );
    assert!(err.contains("DOWNBEAT_MCP_TOKEN"), "{err}");
    assert!(out.stdout.is_empty());
    let out = dir
        .command(&["mcp", "--http", "0.0.0.0:0", "--token-env", "MY_TOKEN"])
        .env_remove("DOWNBEAT_NOW")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("set MY_TOKEN"));
    // Checked before the project is even looked for.
    let out = dir
        .command(&["mcp", "--http", "no-port"])
        .current_dir(std::env::temp_dir())
        .env_remove("DOWNBEAT_NOW")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected an address"));
}

// ------------------------------------------------------------------------------------------
// the admission gate on manual status changes

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_status_changes_go_through_the_admission_gate() {
    for profile in [Profile::Default, Profile::Full] {
        let f = Fixture::new(profile).await;
        let c = f.client("conductor").await;
        let applied = call(&c, "plan", json!({"plan": small_plan()})).await;
        let design = str_of(&applied["keys"], "design").to_owned();
        let impl_ = str_of(&applied["keys"], "impl").to_owned();
        // `impl` waits on `design`: neither starting nor completing it by hand is allowed.
        for to in ["start", "done"] {
            let text = fails(
                &c,
                "tasks",
                json!({"action": "set", "id": impl_, "to": to}),
                "waits on unfinished work",
            )
            .await;
            assert!(text.contains(&design), "{text}");
            assert!(text.contains("force"), "{text}");
        }
        if profile == Profile::Full {
            fails(
                &c,
                "task_status",
                json!({"id": impl_, "to": "done"}),
                "waits on unfinished work",
            )
            .await;
        }
        let shown = call(&c, "tasks", json!({"action": "show", "id": impl_})).await;
        assert_eq!(shown["state"], "waiting", "{shown}");
        // Forced, the change goes through; once `design` is done, no force is needed.
        let forced = call(
            &c,
            "tasks",
            json!({"action": "set", "id": impl_, "to": "start", "force": true}),
        )
        .await;
        assert_eq!(forced["changed"][0]["status"], "running", "{forced}");
        call(
            &c,
            "tasks",
            json!({"action": "set", "id": design, "to": "done"}),
        )
        .await;
        let done = call(
            &c,
            "tasks",
            json!({"action": "set", "id": impl_, "to": "done"}),
        )
        .await;
        assert_eq!(done["changed"][0]["status"], "completed", "{done}");
        let _ = c.cancel().await;
    }
}

/// The token of a later claim of the same attempt: the epoch one higher.
fn later_epoch(token: &str) -> String {
    let (epoch, attempt) = token.split_once('.').expect("EPOCH.ATTEMPT");
    format!("{}.{attempt}", epoch.parse::<i64>().unwrap() + 1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_started_over_mcp_drives_an_agent_cli_through_its_profile() {
    let f = Fixture::new(Profile::Default).await;
    let fakes = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fakes/bin");
    let dir = f.path().to_owned();
    std::fs::write(
        dir.join("script.json"),
        json!({"steps": [{"write": {"notes.md": "# Notes\n"}, "message": "Wrote the notes",
                          "usage": {"input_tokens": 50, "output_tokens": 5}}]})
        .to_string(),
    )
    .unwrap();
    let config = format!(
        "\n[executors.cl]\ntype = \"agent\"\nagent = \"claude\"\nprogram = \"{}\"\nenv = {{ FAKE_AGENT_SCRIPT = \"{}\", FAKE_AGENT_LOG = \"{}\", FAKE_AGENT_STATE = \"{}\" }}\n",
        fakes.join("claude").display(),
        dir.join("script.json").display(),
        dir.join("agent.log").display(),
        dir.join("state").display(),
    );
    let cfg = dir.join(".downbeat/config.toml");
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str(&config);
    std::fs::write(&cfg, text).unwrap();
    let c = f.client("conductor").await;
    call(
        &c,
        "plan",
        json!({"plan": {"tasks": [{"key": "notes", "title": "Write the notes", "role": "documenter"}]}}),
    )
    .await;
    call(&c, "run", json!({"action": "start", "executor": "cl"})).await;
    let w = watch_until_done(&c).await;
    assert_eq!(w["summary"]["completed"], 1, "{w}");
    assert_eq!(
        std::fs::read_to_string(dir.join("notes.md")).unwrap(),
        "# Notes\n"
    );
    let log = std::fs::read_to_string(dir.join("agent.log")).unwrap();
    let call0: Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
    assert_eq!(call0["permission"], "edit");
    let t = call(&c, "tasks", json!({"action": "show", "id": "notes"})).await;
    assert!(t.to_string().contains("Wrote the notes"), "{t}");
    let _ = c.cancel().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_argument_names_are_refused_naming_the_allowed_ones() {
    let f = Fixture::new(Profile::Default).await;
    let c = f.client("typo").await;
    call(&c, "plan", json!({"plan": small_plan()})).await;
    fails(
        &c,
        "claim",
        json!({"tsak": "design"}),
        "unknown field `tsak`, expected one of",
    )
    .await;
    // Nothing was claimed by the misspelt call.
    let st = call(&c, "report", json!({"action": "status"})).await;
    assert!(!st.to_string().contains("\"running\":1"), "{st}");
    fails(
        &c,
        "tasks",
        json!({"action": "list", "stauts": "pending"}),
        "unknown field `stauts`",
    )
    .await;
    let _ = c.cancel().await;
    let f = Fixture::new(Profile::Full).await;
    let c = f.client("typo").await;
    fails(
        &c,
        "task_add",
        json!({"title": "x", "rol": "tester"}),
        "unknown field `rol`",
    )
    .await;
    let _ = c.cancel().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completing_with_a_named_pipe_as_artifact_is_refused_at_once() {
    let f = Fixture::new(Profile::Default).await;
    let c = f.client("piper").await;
    call(&c, "plan", json!({"plan": small_plan()})).await;
    let cl = call(&c, "claim", json!({"task": "design", "prompt": false})).await;
    nix::unistd::mkfifo(&f.path().join("out.pipe"), nix::sys::stat::Mode::S_IRWXU).unwrap();
    let refused = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        fails(
            &c,
            "work",
            json!({"task": "design", "token": cl["token"], "artifacts": ["out.pipe"]}),
            "is a named pipe, not a regular file",
        ),
    )
    .await;
    assert!(refused.is_ok(), "work complete hung on a named pipe");
    // Still claimed: the refused completion recorded nothing.
    call(&c, "work", json!({"task": "design", "token": cl["token"]})).await;
    let _ = c.cancel().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_that_are_not_json_get_a_parse_error_and_the_session_goes_on() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let dir = init_dir();
    let mut child = server_cmd(&dir, &[])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let deep = format!("{}{}\n", "[".repeat(200), "]".repeat(200));
    let init = r#"{"jsonrpc":"2.0","id":7,"method":"initialize","params":{"protocolVersion":"2025-03-26","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    let input = format!("{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ini\n{deep}{init}\n");
    stdin.write_all(input.as_bytes()).await.unwrap();
    let mut next = async || -> Value {
        let line = tokio::time::timeout(std::time::Duration::from_secs(20), lines.next_line())
            .await
            .expect("an answer")
            .unwrap()
            .expect("a line");
        serde_json::from_str(&line).unwrap()
    };
    for what in ["cut short", "nested too deep"] {
        let v = next().await;
        assert_eq!(v["error"]["code"], -32700, "{what}: {v}");
        assert!(v["id"].is_null(), "{what}: {v}");
    }
    let v = next().await;
    assert_eq!(v["id"], 7, "{v}");
    assert_eq!(v["result"]["serverInfo"]["name"], "downbeat", "{v}");
    drop(stdin);
    let status = tokio::time::timeout(std::time::Duration::from_secs(20), child.wait())
        .await
        .expect("the server ends when its input does")
        .unwrap();
    assert!(status.success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_sessions_are_capped() {
    let dir = init_dir();
    dir.append(
        ".downbeat/config.toml",
        "\n[mcp]\nmax_sessions = 2\nsession_idle = \"1m\"\n",
    );
    let (mut child, addr) = http_server(&dir, None).await;
    for _ in 0..2 {
        let (code, body) = post_initialize(&addr, None).await;
        assert_eq!(code, 200, "{body}");
    }
    let (code, body) = post_initialize(&addr, None).await;
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("too many open sessions (2"), "{body}");
    let _ = child.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_http_sessions_expire_and_make_room() {
    let dir = init_dir();
    dir.append(
        ".downbeat/config.toml",
        "\n[mcp]\nmax_sessions = 1\nsession_idle = \"1s\"\n",
    );
    let (mut child, addr) = http_server(&dir, None).await;
    let (code, body) = post_initialize(&addr, None).await;
    assert_eq!(code, 200, "{body}");
    let (code, _) = post_initialize(&addr, None).await;
    assert_eq!(code, 503);
    let start = std::time::Instant::now();
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        let (code, body) = post_initialize(&addr, None).await;
        if code == 200 {
            break;
        }
        assert!(
            start.elapsed().as_secs() < 20,
            "the idle session never expired: {body}"
        );
    }
    let _ = child.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claimed_work_is_done_in_a_worktree_and_merged_when_it_completes() {
    let f = Fixture::in_repo("[worktrees]\nmode = \"always\"\nconflict = \"retry\"\n").await;
    let c = f.client("agent").await;
    call(
        &c,
        "plan",
        json!({"plan": {"tasks": [
            {"key": "a", "title": "Write A", "role": "implementer"},
            {"key": "b", "title": "Write B", "role": "implementer"},
        ]}}),
    )
    .await;
    let claim = |task: &'static str| {
        let c = &c;
        async move { call(c, "claim", json!({"task": task, "prompt": false})).await }
    };
    let (a, b) = (claim("a").await, claim("b").await);
    let tree = |v: &Value| PathBuf::from(v["worktree"]["path"].as_str().unwrap());
    assert!(
        tree(&a).is_dir() && tree(&b).is_dir() && tree(&a) != tree(&b),
        "{a} {b}"
    );
    assert!(
        a["worktree"]["branch"]
            .as_str()
            .unwrap()
            .starts_with("downbeat/tasks/")
    );
    // Both write the same file: the first completion merges, the second conflicts and, under
    // `retry`, goes back to pending.
    std::fs::write(tree(&a).join("s.txt"), "from A\n").unwrap();
    std::fs::write(tree(&b).join("s.txt"), "from B\n").unwrap();
    let done = |v: &Value| json!({"action": "complete", "task": v["task"], "token": v["token"], "summary": "wrote s.txt"});
    let ea = call(&c, "work", done(&a)).await;
    assert_eq!(ea["status"], "completed", "{ea}");
    assert!(!tree(&a).exists(), "a merged attempt's worktree is removed");
    let eb = call(&c, "work", done(&b)).await;
    assert_eq!(eb["status"], "pending", "{eb}");
    let at = call(&c, "attempts", json!({"id": "b"})).await;
    assert_eq!(at["attempts"][0]["git"]["state"], "conflict", "{at}");
    assert_eq!(at["attempts"][0]["git"]["conflicts"], json!(["s.txt"]));
    // Claimed again, B starts from the tip that holds A's change.
    let b2 = claim("b").await;
    assert_eq!(
        std::fs::read_to_string(tree(&b2).join("s.txt")).unwrap(),
        "from A\n"
    );
    std::fs::write(tree(&b2).join("s.txt"), "from A and B\n").unwrap();
    assert_eq!(call(&c, "work", done(&b2)).await["status"], "completed");
    let show = std::process::Command::new("git")
        .current_dir(f.path())
        .args(["show", "downbeat/integration:s.txt"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&show.stdout), "from A and B\n");
    let at = call(&c, "attempts", json!({"id": "b"})).await;
    assert_eq!(at["attempts"][1]["git"]["state"], "merged", "{at}");
    let shown = call(&c, "tasks", json!({"action": "show", "id": "b"})).await;
    assert_eq!(shown["git"]["state"], "merged", "{shown}");
    assert_eq!(shown["git"]["files"], 1, "{shown}");
    let _ = c.cancel().await;
}
