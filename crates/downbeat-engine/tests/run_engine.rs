//! The scheduler against a real SQLite store, with the noop executor and with scripted
//! executors standing in for agents.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use downbeat_core::context::Actor;
use downbeat_core::graph::{Caps, NamedGroup};
use downbeat_core::ids::TaskId;
use downbeat_core::plan::{self, PlanFormat};
use downbeat_core::role::RoleSet;
use downbeat_core::task::Status;
use downbeat_core::time::Timestamp;
use downbeat_engine::config::{FailurePolicy, FlagAction, FlagRule, RetryPolicy};
use downbeat_engine::executor::noop::Noop;
use downbeat_engine::executor::{AgentReport, AttemptSpec, Executor, Outcome, OutcomeKind};
use downbeat_engine::run::{Resolved, RunEvent, RunOptions, run};
use downbeat_store::sqlite::SqliteStore;
use downbeat_store::{EventQuery, Store};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

fn now() -> Timestamp {
    Timestamp(jiff_now())
}

fn jiff_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

struct Project {
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
    store: Arc<dyn Store>,
}

async fn project(plan_text: &str) -> Project {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(&root.join(".downbeat/downbeat.db"), true)
            .await
            .unwrap(),
    );
    if !plan_text.is_empty() {
        let file = plan::parse(plan_text, PlanFormat::Toml).unwrap();
        let v = plan::validate(&file, &RoleSet::builtin(), &|_| None, &|_| false).unwrap();
        store
            .apply_plan(&v, &Actor::new("test", now()))
            .await
            .unwrap();
    }
    Project {
        _dir: dir,
        root,
        store,
    }
}

fn options(p: &Project, exec: Arc<dyn Executor>, retry: RetryPolicy) -> RunOptions {
    RunOptions {
        holder: "runner:test:1".into(),
        concurrency: 8,
        lease: Duration::from_secs(30),
        only: vec![],
        until: None,
        resolve: Arc::new(move |_t| {
            Ok(Resolved {
                worktree: false,
                name: "scripted".into(),
                executor: exec.clone(),
                needs_prompt: false,
                timeout: None,
                retry: retry.clone(),
            })
        }),
        caps: Caps::default(),
        prompts: HashMap::new(),
        default_prompt: "{{ task.title }}".into(),
        failure: FailurePolicy::Continue,
        rules: vec![],
        workspace: p.root.clone(),
        runs_dir: p.root.join(".downbeat/runs"),
        artifacts_dir: p.root.join(".downbeat/artifacts"),
        artifact_limit: downbeat_engine::artifacts::DEFAULT_LIMIT,
        agent_env: Vec::new(),
        scrub: Default::default(),
        now: Arc::new(now),
        accepts: None,
        stay: false,
        worktrees: None,
        context_budget: downbeat_engine::run::DEFAULT_CONTEXT_BUDGET,
        flag_depth: downbeat_core::flags::DEFAULT_MAX_DEPTH,
        memory_files: Vec::new(),

        load_wait: downbeat_engine::run::DEFAULT_LOAD_WAIT,
    }
}

async fn go(p: &Project, opts: RunOptions) -> (downbeat_engine::run::RunSummary, Vec<RunEvent>) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let summary = run(p.store.clone(), opts, tx, CancellationToken::new())
        .await
        .unwrap();
    let mut events = Vec::new();
    while let Ok(e) = rx.try_recv() {
        events.push(e);
    }
    (summary, events)
}

async fn status_of(p: &Project, key: &str) -> Status {
    let id = p.store.resolve_task(key).await.unwrap();
    p.store.task(id).await.unwrap().status
}

/// Each task's first `running` event comes after its dependencies' `completed` events.
async fn assert_dependency_order(p: &Project) {
    let events = p.store.events(&EventQuery::default()).await.unwrap();
    let seq_of = |id: TaskId, st: &str| {
        events
            .iter()
            .find(|e| {
                e.entity == id.to_string()
                    && e.action == "task.status"
                    && e.after.as_ref().is_some_and(|a| a["status"] == st)
            })
            .map(|e| e.seq)
            .unwrap()
    };
    for e in &p.store.graph().await.unwrap().edges {
        assert!(
            seq_of(e.from, "completed") < seq_of(e.to, "running"),
            "{e:?}"
        );
    }
}

/// Sleeps, then succeeds (or follows a per-title script).
struct Scripted {
    sleep: Duration,
    fail_first: HashMap<String, u32>,
    reports: HashMap<String, AgentReport>,
    calls: AtomicU32,
}

impl Scripted {
    fn sleeping(ms: u64) -> Self {
        Self {
            sleep: Duration::from_millis(ms),
            fail_first: HashMap::new(),
            reports: HashMap::new(),
            calls: AtomicU32::new(0),
        }
    }
}

#[async_trait]
impl Executor for Scripted {
    async fn run(&self, spec: &AttemptSpec, cancel: CancellationToken) -> Outcome {
        self.calls.fetch_add(1, Ordering::SeqCst);
        tokio::select! {
            _ = tokio::time::sleep(self.sleep) => {}
            _ = cancel.cancelled() => return Outcome::new(OutcomeKind::Cancelled, Duration::ZERO),
        }
        if let Some(&n) = self.fail_first.get(&spec.title)
            && spec.attempt <= n
        {
            let mut o = Outcome::new(OutcomeKind::Failed, self.sleep);
            o.exit_code = Some(1);
            o.error = Some("exit code 1".into());
            return o;
        }
        let mut o = Outcome::new(OutcomeKind::Succeeded, self.sleep);
        o.report = self.reports.get(&spec.title).cloned();
        o
    }
}

const DIAMOND: &str = r#"
[[tasks]]
key = "schema"
title = "schema"
[[tasks]]
key = "models"
title = "models"
depends_on = ["schema"]
[[tasks]]
key = "api"
title = "api"
depends_on = ["models"]
[[tasks]]
key = "tests"
title = "tests"
depends_on = ["models"]
[[tasks]]
key = "docs"
title = "docs"
depends_on = ["models"]
[[tasks]]
key = "e2e"
title = "e2e"
depends_on = ["api", "tests", "docs"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_task_runs_once_and_in_dependency_order() {
    let p = project(DIAMOND).await;
    let (summary, _) = go(&p, options(&p, Arc::new(Noop), RetryPolicy::default())).await;
    assert_eq!(
        (summary.completed, summary.failed, summary.remaining),
        (6, 0, 0)
    );
    assert_dependency_order(&p).await;
    let snap = p.store.graph().await.unwrap();
    for t in &snap.tasks {
        assert_eq!(p.store.attempts(t.id).await.unwrap().len(), 1);
    }
    // Running again finds nothing to do.
    let (again, _) = go(&p, options(&p, Arc::new(Noop), RetryPolicy::default())).await;
    assert_eq!(again.completed, 0);
}

/// A runner does not wait for a large graph to load before it completes work: the first
/// attempts' plain ends commit while it loads, a failure waits for it (its retry policy needs
/// it), and once it is in the run goes on as ever — every task once, in dependency order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_completes_while_the_graph_loads() {
    let mut plan = String::from(DIAMOND);
    plan.push_str("[[tasks]]\nkey = \"flaky\"\ntitle = \"flaky\"\npriority = \"critical\"\n");
    for i in 0..5_000 {
        plan.push_str(&format!("[[tasks]]\ntitle = \"t{i}\"\n"));
    }
    let p = project(&plan).await;
    let mut exec = Scripted::sleeping(0);
    exec.fail_first.insert("flaky".into(), 1);
    let retry = RetryPolicy {
        max_attempts: 2,
        delay: "10ms".into(),
        ..Default::default()
    };
    let mut opts = options(&p, Arc::new(exec), retry);
    opts.load_wait = Duration::ZERO;
    let (summary, events) = go(&p, opts).await;
    assert_eq!(
        (summary.completed, summary.failed, summary.remaining),
        (5_007, 0, 0)
    );
    // Work completed before the run had its whole graph (and announced its counts).
    let started = events
        .iter()
        .position(|e| matches!(e, RunEvent::Started { .. }))
        .unwrap();
    let first_done = events
        .iter()
        .position(
            |e| matches!(e, RunEvent::AttemptFinished { status, .. } if status == "completed"),
        )
        .unwrap();
    assert!(first_done < started, "{:?}", &events[..started + 1]);
    match &events[started] {
        RunEvent::Started { pending, .. } => assert!(*pending < 5_007, "{pending}"),
        _ => unreachable!(),
    }
    assert_eq!(status_of(&p, "flaky").await, Status::Completed);
    let flaky = p.store.resolve_task("flaky").await.unwrap();
    assert_eq!(p.store.attempts(flaky).await.unwrap().len(), 2);
    assert_dependency_order(&p).await;
    let log = p.store.events(&EventQuery::default()).await.unwrap();
    let ran = log
        .iter()
        .filter(|e| {
            e.action == "task.status" && e.after.as_ref().is_some_and(|a| a["status"] == "running")
        })
        .count();
    assert_eq!(ran, 5_007 + 1, "each task ran once, the flaky one twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn independent_tasks_run_in_parallel() {
    let mut plan = String::new();
    for i in 0..8 {
        plan.push_str(&format!("[[tasks]]\ntitle = \"sleep {i}\"\n"));
    }
    let p = project(&plan).await;
    let start = std::time::Instant::now();
    let (summary, _) = go(
        &p,
        options(
            &p,
            Arc::new(Scripted::sleeping(400)),
            RetryPolicy::default(),
        ),
    )
    .await;
    let took = start.elapsed();
    assert_eq!(summary.completed, 8);
    // Eight 400 ms sleeps one after the other would take 3.2 s.
    assert!(took < Duration::from_millis(2_000), "took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_retried_with_backoff_then_given_up() {
    let p = project("[[tasks]]\nkey = \"flaky\"\ntitle = \"flaky\"\n[[tasks]]\nkey = \"broken\"\ntitle = \"broken\"\n[[tasks]]\nkey = \"after\"\ntitle = \"after\"\ndepends_on = [\"broken\"]\n").await;
    let mut exec = Scripted::sleeping(1);
    exec.fail_first.insert("flaky".into(), 2);
    exec.fail_first.insert("broken".into(), 99);
    let retry = RetryPolicy {
        max_attempts: 3,
        delay: "50ms".into(),
        max_delay: "1s".into(),
        ..Default::default()
    };
    let (summary, events) = go(&p, options(&p, Arc::new(exec), retry)).await;
    assert_eq!(status_of(&p, "flaky").await, Status::Completed);
    assert_eq!(status_of(&p, "broken").await, Status::Failed);
    assert_eq!(
        status_of(&p, "after").await,
        Status::Pending,
        "continue policy leaves dependents waiting"
    );
    assert_eq!(
        (
            summary.completed,
            summary.failed,
            summary.retried,
            summary.remaining
        ),
        (1, 1, 4, 2)
    );
    let flaky = p.store.resolve_task("flaky").await.unwrap();
    let ledger = p.store.attempts(flaky).await.unwrap();
    let outcomes: Vec<&str> = ledger
        .iter()
        .map(|a| a.outcome.as_deref().unwrap())
        .collect();
    assert_eq!(outcomes, ["failed", "failed", "succeeded"]);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, RunEvent::Retrying { .. }))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skip_dependents_policy_cancels_what_cannot_run() {
    let p = project("[[tasks]]\nkey = \"broken\"\ntitle = \"broken\"\n[[tasks]]\nkey = \"after\"\ntitle = \"after\"\ndepends_on = [\"broken\"]\n[[tasks]]\nkey = \"other\"\ntitle = \"other\"\n").await;
    let mut exec = Scripted::sleeping(1);
    exec.fail_first.insert("broken".into(), 99);
    let mut opts = options(&p, Arc::new(exec), RetryPolicy::default());
    opts.failure = FailurePolicy::SkipDependents;
    let (summary, _) = go(&p, opts).await;
    assert_eq!(status_of(&p, "after").await, Status::Cancelled);
    assert_eq!(status_of(&p, "other").await, Status::Completed);
    assert_eq!((summary.failed, summary.cancelled), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flags_trigger_rules_and_discovered_tasks_join_the_graph() {
    let p = project("[[tasks]]\nkey = \"backend\"\ntitle = \"backend\"\n[[tasks]]\nkey = \"frontend\"\ntitle = \"frontend\"\ndepends_on = [\"backend\"]\n").await;
    let mut exec = Scripted::sleeping(1);
    exec.reports.insert(
        "backend".into(),
        AgentReport {
            summary: Some("cart runs 15 queries".into()),
            flags: vec!["DATABASE_INVESTIGATION".into()],
            discovered: vec![downbeat_engine::executor::DiscoveredTask {
                title: "index cart_items".into(),
                role: Some("implementer".into()),
                ..Default::default()
            }],
            ..Default::default()
        },
    );
    let mut opts = options(&p, Arc::new(exec), RetryPolicy::default());
    opts.rules = vec![FlagRule {
        flag: "DATABASE_INVESTIGATION".into(),
        action: FlagAction::AddTask,
        role: Some("debugger".into()),
        title: Some("Investigate the database for {{ task.title }}".into()),
        pause: true,
        priority: None,
    }];
    let (summary, events) = go(&p, opts).await;
    // backend, the follow-up, the discovered task and frontend all ran.
    assert_eq!(summary.completed, 4, "{events:#?}");
    let all = p.store.tasks(&Default::default()).await.unwrap();
    let follow = all
        .iter()
        .find(|t| t.title == "Investigate the database for backend")
        .unwrap();
    assert_eq!(follow.role.as_deref(), Some("debugger"));
    assert!(all.iter().any(|t| t.title == "index cart_items"));
    assert!(events.iter().any(|e| matches!(e, RunEvent::Paused { .. })));
    // The pause held frontend back until the follow-up was done.
    let ev = p.store.events(&EventQuery::default()).await.unwrap();
    let when = |id: String, st: &str| {
        ev.iter()
            .find(|e| e.entity == id && e.after.as_ref().is_some_and(|a| a["status"] == st))
            .unwrap()
            .seq
    };
    let frontend = p.store.resolve_task("frontend").await.unwrap();
    assert!(when(follow.id.to_string(), "completed") < when(frontend.to_string(), "running"));
    assert!(ev.iter().any(|e| e.action == "flag.raised"));
}

/// A hold on a task that waits on another lets that other task start too; everything else
/// waits until the held task is done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_lets_its_task_and_what_it_waits_on_run() {
    let p = project(
        "[[tasks]]\nkey = \"gather\"\ntitle = \"gather\"\n\
         [[tasks]]\nkey = \"fix\"\ntitle = \"fix\"\ndepends_on = [\"gather\"]\n\
         [[tasks]]\nkey = \"other\"\ntitle = \"other\"\n",
    )
    .await;
    let fix = p.store.resolve_task("fix").await.unwrap();
    p.store
        .add_hold(Some(fix), "breach", &Actor::new("test", now()))
        .await
        .unwrap();
    let opts = options(&p, Arc::new(Scripted::sleeping(1)), RetryPolicy::default());
    let (summary, events) = go(&p, opts).await;
    assert_eq!(summary.completed, 3, "{events:#?}");
    assert!(
        p.store.holds().await.unwrap().is_empty(),
        "the hold ended with its task"
    );
    let ev = p.store.events(&EventQuery::default()).await.unwrap();
    let when = |key: &str, st: &str| {
        let id = events_id(&ev, key);
        ev.iter()
            .find(|e| e.entity == id && e.after.as_ref().is_some_and(|a| a["status"] == st))
            .unwrap()
            .seq
    };
    assert!(when("gather", "completed") < when("fix", "running"));
    assert!(
        when("fix", "completed") < when("other", "running"),
        "other waited for the hold"
    );
}

/// The id of the task created with `key`, from the log.
fn events_id(ev: &[downbeat_core::context::Event], key: &str) -> String {
    ev.iter()
        .find(|e| e.action == "task.created" && e.after.as_ref().is_some_and(|a| a["key"] == key))
        .map(|e| e.entity.clone())
        .unwrap_or_else(|| panic!("no task {key} in the log"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_requeues_interrupted_work() {
    let mut plan = String::new();
    for i in 0..3 {
        plan.push_str(&format!("[[tasks]]\nkey = \"t{i}\"\ntitle = \"t{i}\"\n"));
    }
    let p = project(&plan).await;
    let (tx, _rx) = mpsc::unbounded_channel();
    let cancel = CancellationToken::new();
    let c2 = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        c2.cancel();
    });
    let summary = run(
        p.store.clone(),
        options(
            &p,
            Arc::new(Scripted::sleeping(60_000)),
            RetryPolicy::default(),
        ),
        tx,
        cancel,
    )
    .await
    .unwrap();
    assert!(summary.interrupted);
    for i in 0..3 {
        assert_eq!(status_of(&p, &format!("t{i}")).await, Status::Pending);
    }
    let t0 = p.store.resolve_task("t0").await.unwrap();
    assert_eq!(
        p.store.attempts(t0).await.unwrap()[0].outcome.as_deref(),
        Some("cancelled")
    );
}

/// The most attempts running at once among those whose task title `starts_with`.
fn peak(events: &[RunEvent], starts_with: &[&str]) -> i32 {
    let mut running = 0i32;
    let mut peak = 0;
    for e in events {
        match e {
            RunEvent::AttemptStarted { title, .. }
                if starts_with.iter().any(|s| title.starts_with(s)) =>
            {
                running += 1
            }
            RunEvent::AttemptFinished { title, .. }
                if starts_with.iter().any(|s| title.starts_with(s)) =>
            {
                running -= 1
            }
            _ => {}
        }
        peak = peak.max(running);
    }
    peak
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_caps_and_named_groups_limit_parallel_attempts() {
    let mut plan = String::new();
    for (role, n) in [
        ("tester", 6),
        ("implementer", 3),
        ("debugger", 3),
        ("reviewer", 4),
    ] {
        for i in 0..n {
            plan.push_str(&format!(
                "[[tasks]]\ntitle = \"{role} {i}\"\nrole = \"{role}\"\n"
            ));
        }
    }
    let p = project(&plan).await;
    let mut opts = options(
        &p,
        Arc::new(Scripted::sleeping(150)),
        RetryPolicy::default(),
    );
    opts.concurrency = 16;
    // Testers at most 2 at once; implementers and debuggers at most 2 at once together.
    opts.caps = Caps::new(
        &[("tester".into(), 2)],
        &[NamedGroup {
            name: "heavy".into(),
            max_parallel: 2,
            roles: vec!["implementer".into(), "debugger".into()],
        }],
    );
    let (summary, events) = go(&p, opts).await;
    assert_eq!(summary.completed, 16);
    assert_eq!(peak(&events, &["tester"]), 2);
    assert_eq!(peak(&events, &["implementer", "debugger"]), 2);
    // Uncapped roles are not held back by the groups.
    assert_eq!(peak(&events, &["reviewer"]), 4);
}

/// Tasks whose title starts with `slow` run for `slow` (or until cancelled); the others for a
/// millisecond. Counts each title's runs and the most runs at once.
struct Paced {
    slow: Duration,
    runs: std::sync::Mutex<HashMap<String, u32>>,
    succeeded: std::sync::Mutex<HashMap<String, u32>>,
    now: AtomicU32,
    most: AtomicU32,
}

impl Paced {
    fn new(slow: Duration) -> Self {
        Self {
            slow,
            runs: Default::default(),
            succeeded: Default::default(),
            now: AtomicU32::new(0),
            most: AtomicU32::new(0),
        }
    }

    fn runs(&self, title: &str) -> u32 {
        self.runs.lock().unwrap().get(title).copied().unwrap_or(0)
    }

    fn succeeded(&self, title: &str) -> u32 {
        self.succeeded
            .lock()
            .unwrap()
            .get(title)
            .copied()
            .unwrap_or(0)
    }
}

#[async_trait]
impl Executor for Paced {
    async fn run(&self, spec: &AttemptSpec, cancel: CancellationToken) -> Outcome {
        *self
            .runs
            .lock()
            .unwrap()
            .entry(spec.title.clone())
            .or_default() += 1;
        let at_once = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(at_once, Ordering::SeqCst);
        let d = if spec.title.starts_with("slow") {
            self.slow
        } else {
            Duration::from_millis(1)
        };
        let kind = tokio::select! {
            _ = tokio::time::sleep(d) => OutcomeKind::Succeeded,
            _ = cancel.cancelled() => OutcomeKind::Cancelled,
        };
        self.now.fetch_sub(1, Ordering::SeqCst);
        if kind == OutcomeKind::Succeeded {
            *self
                .succeeded
                .lock()
                .unwrap()
                .entry(spec.title.clone())
                .or_default() += 1;
        }
        Outcome::new(kind, d)
    }
}

/// The most tasks the store held as `running` at once, from its event log.
async fn most_running(p: &Project) -> i32 {
    let (mut now, mut most) = (0, 0);
    for e in p.store.events(&EventQuery::default()).await.unwrap() {
        if e.action != "task.status" {
            continue;
        }
        let status = |v: &Option<serde_json::Value>| {
            v.as_ref()
                .and_then(|v| v["status"].as_str().map(str::to_owned))
        };
        if status(&e.after).as_deref() == Some("running") {
            now += 1;
        } else if status(&e.before).as_deref() == Some("running") {
            now -= 1;
        }
        most = most.max(now);
    }
    most
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_attempts_are_claimed_ahead_but_never_more_work_than_the_places() {
    let plan: String = (0..300)
        .map(|i| format!("[[tasks]]\ntitle = \"quick {i}\"\n"))
        .collect();
    let p = project(&plan).await;
    let exec = Arc::new(Paced::new(Duration::ZERO));
    let mut opts = options(&p, exec.clone(), RetryPolicy::default());
    opts.concurrency = 4;
    let (summary, events) = go(&p, opts).await;
    assert_eq!(summary.completed, 300);
    assert!(exec.most.load(Ordering::SeqCst) <= 4);
    assert!(
        peak(&events, &["quick"]) <= 4,
        "announced more than the places"
    );
    // The store held claims beyond the places: the next attempts waited for one.
    let held = most_running(&p).await;
    assert!(
        held > 4,
        "no claim was taken ahead (at most {held} running)"
    );
    for i in 0..300 {
        assert_eq!(exec.runs(&format!("quick {i}")), 1);
    }
}

/// Two places: four critical quick tasks end short, then two `slow` tasks take both places
/// while the quick tasks claimed ahead of them wait.
fn places_taken_plan() -> String {
    let mut plan = String::new();
    for i in 0..4 {
        plan.push_str(&format!(
            "[[tasks]]\ntitle = \"first {i}\"\npriority = \"critical\"\n"
        ));
    }
    for i in 0..2 {
        plan.push_str(&format!(
            "[[tasks]]\ntitle = \"slow {i}\"\npriority = \"high\"\n"
        ));
    }
    for i in 0..10 {
        plan.push_str(&format!("[[tasks]]\ntitle = \"quick {i}\"\n"));
    }
    plan
}

/// Two places, and `slow` tasks that run for `slow` (see [`places_taken_plan`]).
fn two_places(p: &Project, slow: Duration) -> (Arc<Paced>, RunOptions) {
    let exec = Arc::new(Paced::new(slow));
    let mut opts = options(p, exec.clone(), RetryPolicy::default());
    opts.concurrency = 2;
    (exec, opts)
}

/// The titles of the tasks whose ledger holds an attempt given back before it started.
async fn given_back(p: &Project) -> Vec<String> {
    let mut titles = Vec::new();
    for t in p.store.tasks(&Default::default()).await.unwrap() {
        let attempts = p.store.attempts(t.id).await.unwrap();
        if attempts
            .iter()
            .any(|a| a.error.as_deref() == Some("given back before it started"))
        {
            titles.push(t.title.clone());
        }
    }
    titles
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_taken_ahead_that_finds_no_place_is_given_back_and_runs_later() {
    let p = project(&places_taken_plan()).await;
    let (exec, opts) = two_places(&p, Duration::from_millis(2500));
    let (summary, events) = go(&p, opts).await;
    assert_eq!(summary.completed, 16);
    assert!(exec.most.load(Ordering::SeqCst) <= 2);
    assert!(peak(&events, &[""]) <= 2);
    let back = given_back(&p).await;
    assert!(!back.is_empty(), "no claim was given back");
    for title in &back {
        // Given back unstarted, then run once, by a later attempt.
        assert_eq!(exec.runs(title), 1, "{title}");
        let id = p
            .store
            .tasks(&Default::default())
            .await
            .unwrap()
            .into_iter()
            .find(|t| &t.title == title)
            .unwrap()
            .id;
        let attempts = p.store.attempts(id).await.unwrap();
        assert_eq!(
            attempts.last().unwrap().outcome.as_deref(),
            Some("succeeded")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_run_gives_back_the_claims_waiting_for_a_place() {
    let p = project(&places_taken_plan()).await;
    let (exec, opts) = two_places(&p, Duration::from_secs(60));
    let (tx, _rx) = mpsc::unbounded_channel();
    let cancel = CancellationToken::new();
    // Interrupted once both slow tasks work and claims wait behind them.
    let (c2, store, exec2) = (cancel.clone(), p.store.clone(), exec.clone());
    tokio::spawn(async move {
        until_claims_wait(&store, &exec2).await;
        c2.cancel();
    });
    let summary = run(p.store.clone(), opts, tx, cancel).await.unwrap();
    assert!(summary.interrupted);
    assert!(!given_back(&p).await.is_empty(), "no claim was waiting");
    for t in p.store.tasks(&Default::default()).await.unwrap() {
        let runs = exec.runs(&t.title);
        assert!(runs <= 1, "{} ran {runs} times", t.title);
        // What ran to its end is completed; what was stopped, or never started, is pending.
        if exec.succeeded(&t.title) == 1 {
            assert_eq!(t.status, Status::Completed, "{}", t.title);
        } else {
            assert_eq!(t.status, Status::Pending, "{}", t.title);
        }
    }
}

/// Waits until both `slow` tasks work and the store holds a task as running that never ran: a
/// claim waiting for a place.
async fn until_claims_wait(store: &Arc<dyn Store>, exec: &Paced) {
    let running = downbeat_store::TaskFilter {
        statuses: vec![Status::Running],
        ..Default::default()
    };
    for _ in 0..3000 {
        let waiting = store
            .tasks(&running)
            .await
            .unwrap()
            .iter()
            .any(|t| exec.runs(&t.title) == 0);
        if exec.runs("slow 0") + exec.runs("slow 1") == 2 && waiting {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no claim came to wait for a place");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_gives_back_the_claims_waiting_for_a_place() {
    let p = project(&places_taken_plan()).await;
    let (exec, opts) = two_places(&p, Duration::from_millis(800));
    let (store, exec2) = (p.store.clone(), exec.clone());
    let pause = tokio::spawn(async move {
        until_claims_wait(&store, &exec2).await;
        store
            .add_hold(None, "pause", &Actor::new("test", now()))
            .await
            .unwrap();
    });
    let (summary, _) = go(&p, opts).await;
    pause.await.unwrap();
    assert!(summary.stopped_by.is_some(), "the pause stops the run");
    let back = given_back(&p).await;
    assert!(!back.is_empty(), "no claim was given back");
    for title in &back {
        assert_eq!(exec.runs(title), 0, "{title} started after the pause");
    }
    // The slow tasks were at work when the pause came: they end; nothing new starts.
    assert_eq!(exec.succeeded("slow 0") + exec.succeeded("slow 1"), 2);
}
