//! `downbeat run`, `retry` and `attempts`: the CLI side of the execution engine — resolving
//! executors from the configuration, the progress display, Ctrl-C.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use downbeat_core::ids::TaskId;
use downbeat_core::task::Task;
use downbeat_engine::config::{RetryPolicy, parse_duration};
use downbeat_engine::executor::noop::Noop;
use downbeat_engine::executor::process::Process;
use downbeat_engine::executor::{Executor, ExecutorSpec};
use downbeat_engine::run::{Resolved, RunEvent, RunOptions, RunSummary, default_holder, run};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::cli::RunArgs;
use crate::error::{CliError, code};
use crate::output::{json as print_json, note, outln, table};
use crate::project::Project;

/// Resolves executors the way the configuration says, caching one executor per spec.
pub fn resolver(
    p: &Project,
    override_name: Option<String>,
) -> Result<downbeat_engine::run::ResolveFn, CliError> {
    let cfg = p.config.clone();
    let cache: Arc<Mutex<HashMap<String, Arc<dyn Executor>>>> = Arc::default();
    let default_timeout = cfg
        .run
        .timeout
        .as_deref()
        .map(parse_duration)
        .transpose()
        .map_err(|e| CliError::invalid(format!("[run] timeout: {e}")))?;
    for (name, r) in &cfg.roles {
        if let Some(t) = &r.timeout {
            parse_duration(t)
                .map_err(|e| CliError::invalid(format!("[roles.{name}] timeout: {e}")))?;
        }
    }
    cfg.run
        .retry
        .delay_for(1, 0)
        .map_err(|e| CliError::invalid(format!("[run.retry]: {e}")))?;
    Ok(Arc::new(move |t: &Task| {
        let role_cfg = t.role.as_ref().and_then(|r| cfg.roles.get(r));
        let name = override_name
            .clone()
            .or_else(|| t.exec.executor.clone())
            .or_else(|| role_cfg.and_then(|r| r.executor.clone()))
            .or_else(|| cfg.run.executor.clone())
            .ok_or_else(|| {
                "no executor: set one on the task (--executor), for its role ([roles.NAME] executor), or for the project ([run] executor), or pass `downbeat run --executor NAME`".to_owned()
            })?;
        let spec: ExecutorSpec = if name.trim_start().starts_with('{') {
            serde_json::from_str(&name)
                .map_err(|e| format!("invalid inline executor {name}: {e}"))?
        } else if name == "noop" {
            ExecutorSpec::Noop
        } else {
            cfg.executors.get(&name).cloned().ok_or_else(|| {
                let known: Vec<&str> = cfg.executors.keys().map(String::as_str).collect();
                format!(
                    "unknown executor `{name}` (configured: {}; built in: noop)",
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                )
            })?
        };
        let key = serde_json::to_string(&spec).unwrap_or_default();
        let executor: Arc<dyn Executor> = {
            let mut c = cache
                .lock()
                .map_err(|_| "executor cache poisoned".to_owned())?;
            match c.get(&key) {
                Some(e) => e.clone(),
                None => {
                    let e: Arc<dyn Executor> = match &spec {
                        ExecutorSpec::Noop => Arc::new(Noop),
                        ExecutorSpec::Process(ps) => Arc::new(
                            Process::new(ps.clone())
                                .map_err(|e| format!("executor `{name}`: {e}"))?,
                        ),
                        ExecutorSpec::Http(hs) => Arc::new(
                            hs.api_key(|var| std::env::var_os(var))
                                .and_then(|key| {
                                    downbeat_engine::executor::http::Http::new(hs.clone(), key)
                                })
                                .map_err(|e| format!("executor `{name}`: {e}"))?,
                        ),
                    };
                    c.insert(key, e.clone());
                    e
                }
            }
        };
        let timeout = match role_cfg.and_then(|r| r.timeout.as_deref()) {
            Some(t) => Some(parse_duration(t)?),
            None => default_timeout,
        };
        let mut retry: RetryPolicy = cfg.run.retry.clone();
        if let Some(m) = role_cfg.and_then(|r| r.max_attempts) {
            retry.max_attempts = m;
        }
        let display = if name.trim_start().starts_with('{') {
            "inline".to_owned()
        } else {
            name
        };
        Ok(Resolved {
            name: display,
            needs_prompt: !matches!(spec, ExecutorSpec::Noop),
            executor,
            timeout,
            retry,
        })
    }))
}

/// The template for tasks whose role has none.
pub const DEFAULT_PROMPT: &str =
    "## Task {{ task.id }}: {{ task.title }}\n\n{{ task.description }}\n";

/// Role name → prompt template, each checked to render.
pub fn role_prompts(p: &Project) -> Result<HashMap<String, String>, CliError> {
    let mut prompts = HashMap::new();
    for r in p.roles.iter() {
        downbeat_engine::prompt::check(&r.name, &r.prompt)
            .map_err(|e| CliError::invalid(e.to_string()))?;
        prompts.insert(r.name.clone(), r.prompt.clone());
    }
    Ok(prompts)
}

/// The engine's options for a run of this project, as `downbeat run` would make them from
/// these arguments (`only`, `until` are task references).
pub async fn run_options(p: &Project, a: &RunArgs) -> Result<RunOptions, CliError> {
    let mut only = Vec::new();
    for o in &a.only {
        only.push(p.store.resolve_task(o).await?);
    }
    let until = match &a.until {
        Some(u) => Some(p.store.resolve_task(u).await?),
        None => None,
    };
    let resolve = resolver(p, a.executor.clone())?;
    let concurrency = a
        .concurrency
        .or(p.config.run.concurrency)
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
        })
        .max(1);
    let lease = match &p.config.run.lease {
        Some(l) => parse_duration(l).map_err(|e| CliError::invalid(format!("[run] lease: {e}")))?,
        None => Duration::from_secs(30),
    };
    let prompts = role_prompts(p)?;
    let caps = p.plan_settings().caps();
    let fixed = p.fixed_now;
    let opts = RunOptions {
        holder: default_holder(),
        concurrency,
        lease,
        only,
        until,
        resolve,
        caps,
        prompts,
        default_prompt: DEFAULT_PROMPT.into(),
        failure: p.config.run.failure,
        rules: p.config.rules.clone(),
        workspace: p.root.clone(),
        runs_dir: p.dir().join("runs"),
        artifacts_dir: p.dir().join("artifacts"),
        now: Arc::new(move || fixed.unwrap_or_else(crate::project::now)),
        accepts: None,
        stay: false,
    };
    Ok(opts)
}

/// A run's error as the CLI reports it.
pub fn run_error(e: downbeat_engine::run::RunError) -> CliError {
    match e {
        downbeat_engine::run::RunError::Store(s) => CliError::from(s),
        downbeat_engine::run::RunError::Config(m) => {
            CliError::invalid(m).with_hint("see docs/executors.md for how executors are chosen")
        }
        downbeat_engine::run::RunError::Cycle(c) => CliError::new(code::CONFLICT, c.to_string()),
    }
}

pub async fn run_cmd(p: &Project, a: RunArgs, j: bool) -> Result<(), CliError> {
    let opts = run_options(p, &a).await?;
    if a.dry_run {
        return dry_run(p, &opts, j).await;
    }
    if !a.local {
        let live = crate::worker_cmd::live_workers(p).await?;
        if !live.is_empty() {
            return crate::worker_cmd::watch_workers(p, &live, j).await;
        }
    }
    // Stops this run's agents at once if this process is killed.
    let guard = crate::guard::start(&opts.holder);
    let store = p.store.clone();
    let cancel = CancellationToken::new();
    let c2 = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("\ninterrupted: stopping running agents (Ctrl-C again to exit at once)");
            c2.cancel();
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        }
    });
    let (tx, rx) = mpsc::unbounded_channel();
    let (show_rx, ended_rx) = split_events(rx);
    let display = tokio::spawn(show_events(show_rx, j));
    let (result, reports) = tokio::join!(
        run(store, opts, tx, cancel),
        crate::container_reports::write_during_run(p, ended_rx, false, &|_, _| {})
    );
    let _ = display.await;
    drop(guard);
    for (task, path) in &reports {
        if j {
            outln(&json!({"event": "container-report", "task": task, "path": path}).to_string());
        } else {
            note(&format!("integration report for {task}: {path}"));
        }
    }
    if result.is_ok() && !j {
        // The run's integration report, next to the others.
        let scope = if let Some(u) = &a.until {
            Some(u.clone())
        } else if a.only.len() == 1 {
            Some(a.only[0].clone())
        } else {
            None
        };
        if let Ok(path) = crate::commands::synthesize_quiet(p, scope.as_deref()).await {
            note(&format!("integration report: {path}"));
        }
    }
    let summary = result.map_err(run_error)?;
    outcome_code(&summary)
}

/// Passes the engine's events on for display, and the ends of attempts to the container
/// reports ([`crate::container_reports::write_during_run`]).
pub(crate) fn split_events(
    mut rx: mpsc::UnboundedReceiver<RunEvent>,
) -> (
    mpsc::UnboundedReceiver<RunEvent>,
    mpsc::UnboundedReceiver<crate::container_reports::Ended>,
) {
    let (show_tx, show_rx) = mpsc::unbounded_channel();
    let (ended_tx, ended_rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(e) = rx.recv().await {
            if let RunEvent::AttemptFinished { task, status, .. } = &e
                && let Some(id) = TaskId::parse_short(task)
            {
                let still_open = matches!(status.as_str(), "pending" | "retrying");
                let _ = ended_tx.send((id, still_open));
            }
            let _ = show_tx.send(e);
        }
    });
    (show_rx, ended_rx)
}

fn outcome_code(s: &RunSummary) -> Result<(), CliError> {
    if s.interrupted {
        return Err(CliError::new(
            code::INTERRUPTED,
            "the run was interrupted; running tasks went back to pending",
        )
        .with_hint("`downbeat run` picks up where it stopped"));
    }
    if s.failed > 0 || s.remaining > 0 || s.stopped_by.is_some() {
        let mut msg = format!("{} task(s) failed, {} not done", s.failed, s.remaining);
        if let Some(r) = &s.stopped_by {
            msg.push_str(&format!("; stopped: {r}"));
        }
        return Err(CliError::new(code::RUN_INCOMPLETE, msg).with_hint("`downbeat blocked` shows what is stuck; `downbeat attempts ID` shows what happened; `downbeat retry ID` tries again"));
    }
    Ok(())
}

async fn dry_run(p: &Project, opts: &RunOptions, j: bool) -> Result<(), CliError> {
    let tasks = p.store.tasks(&Default::default()).await?;
    let snap = p.store.graph().await?;
    let planned = downbeat_core::graph::plan(&snap, &p.plan_settings())
        .map_err(|c| CliError::new(code::CONFLICT, c.to_string()))?;
    let by_id: HashMap<_, _> = tasks.iter().map(|t| (t.id, t)).collect();
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    for (i, w) in planned.waves.iter().enumerate() {
        for id in w {
            let Some(t) = by_id.get(id) else { continue };
            let exec = match (opts.resolve)(t) {
                Ok(r) => r.name,
                Err(e) => {
                    problems.push(format!("task {} ({}): {e}", t.id, t.title));
                    "?".into()
                }
            };
            rows.push((
                i + 1,
                t.id,
                t.role.clone().unwrap_or_else(|| "-".into()),
                exec,
                t.title.clone(),
            ));
        }
    }
    if j {
        print_json(&json!({
            "waves": rows.iter().map(|(w, id, role, exec, title)| json!({"wave": w, "task": id, "role": role, "executor": exec, "title": title})).collect::<Vec<_>>(),
            "problems": problems,
            "concurrency": opts.concurrency,
        }));
    } else {
        let r: Vec<Vec<String>> = rows
            .iter()
            .map(|(w, id, role, exec, title)| {
                vec![
                    w.to_string(),
                    id.to_string(),
                    role.clone(),
                    exec.clone(),
                    title.clone(),
                ]
            })
            .collect();
        crate::output::out(&table(&["WAVE", "ID", "ROLE", "EXECUTOR", "TITLE"], &r));
        note(&format!(
            "dry run: {} task(s) would run, at most {} at once; nothing was started",
            rows.len(),
            opts.concurrency
        ));
    }
    if let Some(first) = problems.first() {
        return Err(CliError::invalid(format!(
            "{} task(s) cannot run: {first}",
            problems.len()
        )));
    }
    Ok(())
}

/// Renders the event stream: JSON lines on stdout with `--json`, bars on a terminal, plain lines
/// otherwise.
/// Shows a run's events: bars on a terminal, a line per event otherwise, JSON with `--json`.
pub async fn show_events(rx: mpsc::UnboundedReceiver<RunEvent>, j: bool) {
    let tty = std::io::stderr().is_terminal() && !j;
    show_events_on(rx, j, tty.then(indicatif::ProgressDrawTarget::stderr)).await;
}

/// [`show_events`] with the bars drawn on `bars_on` (`None`: a line per event on stderr).
async fn show_events_on(
    mut rx: mpsc::UnboundedReceiver<RunEvent>,
    j: bool,
    bars_on: Option<indicatif::ProgressDrawTarget>,
) {
    let tty = bars_on.is_some() && !j;
    let mp = indicatif::MultiProgress::with_draw_target(
        bars_on.unwrap_or_else(indicatif::ProgressDrawTarget::hidden),
    );
    let overall = tty.then(|| {
        let b = mp.add(indicatif::ProgressBar::new(0));
        b.set_style(
            indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} done · {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    });
    let mut bars: HashMap<String, indicatif::ProgressBar> = HashMap::new();
    let mut total = 0u64;
    while let Some(e) = rx.recv().await {
        if j {
            if let Ok(s) = serde_json::to_string(&e) {
                outln(&s);
            }
            continue;
        }
        let line = describe(&e);
        match (&overall, &e) {
            (Some(o), RunEvent::Started { pending, .. }) => {
                total = *pending as u64;
                o.set_length(total);
            }
            (
                Some(_),
                RunEvent::AttemptStarted {
                    task,
                    title,
                    attempt,
                    executor,
                },
            ) => {
                let b = mp.add(indicatif::ProgressBar::new_spinner());
                b.set_style(
                    indicatif::ProgressStyle::with_template("  {spinner} {elapsed:>4} {msg}")
                        .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
                );
                b.enable_steady_tick(Duration::from_millis(120));
                b.set_message(format!("{task} {title} (attempt {attempt}, {executor})"));
                bars.insert(task.clone(), b);
            }
            (Some(o), RunEvent::AttemptFinished { task, status, .. }) => {
                if let Some(b) = bars.remove(task) {
                    b.finish_and_clear();
                    mp.remove(&b);
                }
                if status == "completed" {
                    o.inc(1);
                }
                let _ = mp.println(line);
            }
            (Some(o), RunEvent::Finished(_)) => {
                o.finish_and_clear();
                note(&line);
            }
            (Some(_), _) => {
                let _ = mp.println(line);
            }
            (None, _) => note(&line),
        }
        if let Some(o) = &overall {
            o.set_message(format!("{} running", bars.len()));
        }
    }
    let _ = total;
}

fn describe(e: &RunEvent) -> String {
    match e {
        RunEvent::Started {
            ready,
            pending,
            concurrency,
        } => format!("run: {pending} task(s) to do, {ready} ready, up to {concurrency} at once"),
        RunEvent::Requeued { task, reason } => format!("requeued {task}: {reason}"),
        RunEvent::OrphansKilled { count } => {
            format!("killed   {count} agent process(es) a dead runner left behind")
        }
        RunEvent::AttemptStarted {
            task,
            title,
            attempt,
            executor,
        } => format!("started  {task} {title} (attempt {attempt}, {executor})"),
        RunEvent::AttemptFinished {
            task,
            title,
            status,
            error,
            millis,
            ..
        } => {
            let err = error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default();
            format!(
                "{status:<10}{task} {title} in {:.1}s{err}",
                *millis as f64 / 1000.0
            )
        }
        RunEvent::Retrying { task, attempt, at } => {
            format!("retry    {task}: attempt {attempt} at {at}")
        }
        RunEvent::LeaseLost { task } => format!(
            "lost     {task}: its lease was taken away (cancelled, reopened or expired); its agent is stopped"
        ),
        RunEvent::Flag {
            task,
            flag,
            action,
            detail,
        } => format!("flag     {flag} from {task}: {action} — {detail}"),
        RunEvent::Discovered {
            task,
            new_task,
            title,
        } => format!("added    {new_task} {title} (discovered by {task})"),
        RunEvent::Cancelled { task, reason } => format!("cancelled {task}: {reason}"),
        RunEvent::Paused {
            hold,
            until: Some(until),
            reason,
        } => format!("paused   nothing else starts until {until} is done (hold {hold}: {reason})"),
        RunEvent::Paused {
            hold,
            until: None,
            reason,
        } => format!(
            "paused   nothing new starts until hold {hold} is released with `downbeat unpause` ({reason})"
        ),
        RunEvent::Resumed => "resumed".into(),
        RunEvent::Stopping { reason } => format!("stopping: {reason}"),
        RunEvent::Finished(s) => format!(
            "run finished in {:.1}s: {} completed, {} failed, {} retried, {} cancelled, {} not done",
            s.millis as f64 / 1000.0,
            s.completed,
            s.failed,
            s.retried,
            s.cancelled,
            s.remaining
        ),
    }
}

pub async fn attempts(p: &Project, id: &str, j: bool) -> Result<(), CliError> {
    let id = p.store.resolve_task(id).await?;
    let list = p.store.attempts(id).await?;
    if j {
        print_json(&list);
        return Ok(());
    }
    if list.is_empty() {
        note(&format!("task {id} has no attempts yet"));
        return Ok(());
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|a| {
            let took = a
                .ended_at
                .map(|e| format!("{:.1}s", (e.0 - a.started_at.0) as f64 / 1000.0))
                .unwrap_or_else(|| "running".into());
            let tokens = match (a.tokens_prompt, a.tokens_completion) {
                (Some(p), Some(c)) => format!("{p}+{c}"),
                _ => "-".into(),
            };
            vec![
                a.number.to_string(),
                a.outcome.clone().unwrap_or_else(|| "running".into()),
                a.exit_code
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "-".into()),
                took,
                a.executor.clone(),
                a.worker.clone(),
                tokens,
                a.error
                    .clone()
                    .or_else(|| a.summary.clone())
                    .unwrap_or_default(),
            ]
        })
        .collect();
    crate::output::out(&table(
        &[
            "#", "OUTCOME", "EXIT", "TIME", "EXECUTOR", "WORKER", "TOKENS", "DETAIL",
        ],
        &rows,
    ));
    note(&format!(
        "output of each attempt: {}",
        p.dir().join("runs").join(id.to_string()).display()
    ));
    Ok(())
}

/// A fresh temporary directory for a benchmark project.
pub(crate) fn bench_dir() -> Result<std::path::PathBuf, CliError> {
    let dir = std::env::temp_dir().join(format!(
        "downbeat-bench-{}-{}",
        std::process::id(),
        crate::project::now().0
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// `n` one-effort tasks in the given shape.
pub(crate) fn bench_plan(n: usize, shape: Shape) -> downbeat_core::plan::ValidatedPlan {
    use downbeat_core::plan::{TaskRef, ValidatedPlan, ValidatedTask};
    use downbeat_core::task::{EdgeKind, NewTask};
    let mut plan = ValidatedPlan::default();
    for i in 0..n {
        plan.tasks.push(ValidatedTask {
            new: NewTask {
                title: format!("task {i}"),
                effort: 1,
                ..Default::default()
            },
            parent: None,
        });
    }
    let mut edge = |a: usize, b: usize| {
        plan.edges
            .push((TaskRef::New(a), TaskRef::New(b), EdgeKind::Blocks))
    };
    match shape {
        Shape::Independent => {}
        Shape::Chain => (1..n).for_each(|i| edge(i - 1, i)),
        Shape::Fanout => {
            for i in 1..n - 1 {
                edge(0, i);
                edge(i, n - 1);
            }
        }
        Shape::Chains => (1..n).filter(|i| i % 10 != 0).for_each(|i| edge(i - 1, i)),
    }
    plan
}

/// Options for benchmark runs: every task through `exec`, nothing else configured.
fn bench_options(
    dir: &std::path::Path,
    concurrency: usize,
    holder: String,
    exec: Arc<dyn Executor>,
    needs_prompt: bool,
) -> RunOptions {
    RunOptions {
        holder,
        concurrency,
        lease: Duration::from_secs(30),
        only: vec![],
        until: None,
        resolve: Arc::new(move |_| {
            Ok(Resolved {
                name: "bench".into(),
                executor: exec.clone(),
                needs_prompt,
                timeout: None,
                retry: RetryPolicy::default(),
            })
        }),
        caps: Default::default(),
        prompts: HashMap::new(),
        default_prompt: String::new(),
        failure: Default::default(),
        rules: vec![],
        workspace: dir.to_path_buf(),
        runs_dir: dir.join("runs"),
        artifacts_dir: dir.join("artifacts"),
        now: Arc::new(crate::project::now),
        accepts: None,
        stay: false,
    }
}

/// Simulates a runner killed with SIGKILL in the middle of a large run (tasks left `running`
/// under the lease of a process that no longer exists), then times a new runner from opening
/// the database to its first started attempt.
pub async fn bench_recover(
    tasks: u32,
    database: Option<std::path::PathBuf>,
    concurrency: usize,
    j: bool,
) -> Result<(), CliError> {
    use downbeat_store::{Batch, ClaimRequest, TaskFilter};
    let temp = database.is_none();
    let path = match database {
        Some(p) => p,
        None => bench_dir()?.join("downbeat.db"),
    };
    let dir = path
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default();
    let url = format!("sqlite:{}", path.display());
    let actor = downbeat_core::context::Actor::new("bench", crate::project::now());
    {
        let store = downbeat_store::open(&url, true).await?;
        if store.task_count().await? == 0 {
            let n = tasks.max(2) as usize;
            let t = std::time::Instant::now();
            store
                .apply_plan(&bench_plan(n, Shape::Chains), &actor)
                .await?;
            note(&format!(
                "created {n} tasks in chains of ten in {:.1} s",
                t.elapsed().as_secs_f64()
            ));
        }
        // The crash: a runner whose process is gone left tasks running under its lease.
        let mut child = std::process::Command::new("true").spawn()?;
        child.wait()?;
        let dead = format!(
            "runner:{}:{}",
            downbeat_engine::run::this_host(),
            child.id()
        );
        let pending = store
            .tasks(&TaskFilter {
                statuses: vec![downbeat_core::task::Status::Pending],
                limit: Some(u32::try_from(concurrency).unwrap_or(u32::MAX)),
                ..Default::default()
            })
            .await?;
        let claims = pending
            .iter()
            .map(|t| ClaimRequest {
                task: t.id,
                executor: "bench".into(),
                after: vec![],
            })
            .collect();
        let lease_until = downbeat_core::time::Timestamp(crate::project::now().0 + 3_600_000);
        let batch = Batch {
            finishes: vec![],
            claims,
            holder: dead,
            lease_until,
            quiet: false,
            holds_seen: None,
        };
        let got = store.commit_batch(&batch, &actor).await?;
        note(&format!(
            "left {} tasks running under a dead runner's lease",
            got.claimed.len()
        ));
    }
    // The restart, timed from opening the database.
    let t0 = std::time::Instant::now();
    let store: Arc<dyn downbeat_store::Store> = Arc::from(downbeat_store::open(&url, false).await?);
    let opened = t0.elapsed();
    let opts = bench_options(&dir, concurrency, default_holder(), Arc::new(Noop), false);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    let watch = async move {
        let mut requeued = 0u64;
        let mut first: Option<Duration> = None;
        while let Some(e) = rx.recv().await {
            match e {
                RunEvent::Requeued { .. } => requeued += 1,
                RunEvent::AttemptStarted { .. } if first.is_none() => {
                    first = Some(t0.elapsed());
                    stop.cancel();
                }
                _ => {}
            }
        }
        (requeued, first)
    };
    let (res, (requeued, first)) = tokio::join!(run(store.clone(), opts, tx, cancel), watch);
    res.map_err(|e| CliError::new(code::INTERNAL, e.to_string()))?;
    let total = store.task_count().await?;
    if temp {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    if j {
        print_json(
            &json!({"tasks": total, "requeued": requeued, "open_ms": ms(opened),
            "first_dispatch_ms": first.map(ms)}),
        );
    } else {
        outln(&format!(
            "{total} tasks, {requeued} requeued from the dead runner; database opened in {:.0} ms; first attempt started {}",
            ms(opened),
            first.map_or("never".to_owned(), |d| format!(
                "{:.0} ms after opening",
                ms(d)
            ))
        ));
    }
    Ok(())
}

/// Shapes of the run benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Shape {
    /// N tasks without dependencies.
    Independent,
    /// One root, N-2 tasks that depend on it, one task that depends on all of them.
    Fanout,
    /// N tasks, each depending on the previous one.
    Chain,
    /// Chains of ten tasks.
    Chains,
}

/// Runs N noop tasks through the real engine and store in a temporary project; prints
/// throughput, and for chains the time from a task's completion to its dependent's start.
pub async fn bench_run(
    tasks: u32,
    shape: Shape,
    concurrency: usize,
    keep: bool,
    argv: Option<Vec<String>>,
    j: bool,
) -> Result<(), CliError> {
    let dir = bench_dir()?;
    let store: Arc<dyn downbeat_store::Store> = Arc::from(
        downbeat_store::open(
            &format!("sqlite:{}", dir.join("downbeat.db").display()),
            true,
        )
        .await?,
    );
    let n = tasks.max(2) as usize;
    let plan = bench_plan(n, shape);
    let actor = downbeat_core::context::Actor::new("bench", crate::project::now());
    let t_apply = std::time::Instant::now();
    store.apply_plan(&plan, &actor).await?;
    let apply_ms = t_apply.elapsed().as_secs_f64() * 1e3;
    let (exec, exec_name): (Arc<dyn Executor>, String) = match &argv {
        None => (Arc::new(Noop), "noop".into()),
        Some(a) => (
            Arc::new(
                Process::new(downbeat_engine::executor::ProcessSpec {
                    argv: a.clone(),
                    ..Default::default()
                })
                .map_err(|e| CliError::invalid(e.to_string()))?,
            ),
            format!("process {}", a.join(" ")),
        ),
    };
    let needs_prompt = argv.is_some();
    let opts = bench_options(&dir, concurrency, default_holder(), exec, needs_prompt);
    let (tx, mut rx) = mpsc::unbounded_channel();
    // Latency probe: when each task finished, and when each started.
    let probe = tokio::spawn(async move {
        let mut finished: HashMap<String, std::time::Instant> = HashMap::new();
        let mut started: Vec<(String, std::time::Instant)> = Vec::new();
        while let Some(e) = rx.recv().await {
            match e {
                RunEvent::AttemptFinished { title, .. } => {
                    finished.insert(title, std::time::Instant::now());
                }
                RunEvent::AttemptStarted { title, .. } => {
                    started.push((title, std::time::Instant::now()))
                }
                _ => {}
            }
        }
        (finished, started)
    });
    let t0 = std::time::Instant::now();
    let summary = run(store.clone(), opts, tx, CancellationToken::new())
        .await
        .map_err(|e| CliError::new(code::INTERNAL, e.to_string()))?;
    let secs = t0.elapsed().as_secs_f64();
    let (finished, started) = probe
        .await
        .map_err(|e| CliError::new(code::INTERNAL, e.to_string()))?;
    let mut lat: Vec<f64> = Vec::new();
    if shape == Shape::Chain {
        for (title, at) in &started {
            let i: usize = title.trim_start_matches("task ").parse().unwrap_or(0);
            if i > 0
                && let Some(prev) = finished.get(&format!("task {}", i - 1))
            {
                lat.push(at.duration_since(*prev).as_secs_f64() * 1e3);
            }
        }
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 - 1.0) * p).round() as usize)
            .copied()
    };
    let rate = summary.completed as f64 / secs;
    if !keep {
        let _ = std::fs::remove_dir_all(&dir);
    }
    if j {
        print_json(
            &json!({"executor": exec_name, "tasks": n, "shape": format!("{shape:?}").to_lowercase(), "concurrency": concurrency, "completed": summary.completed, "seconds": secs, "tasks_per_second": rate, "apply_ms": apply_ms, "latency_ms_p50": pct(0.5), "latency_ms_p99": pct(0.99)}),
        );
    } else {
        let mut line = format!(
            "{n} tasks ({shape:?}, {exec_name}, concurrency {concurrency}): {} completed in {secs:.2} s = {rate:.0} tasks/s durable (plan applied in {apply_ms:.0} ms)",
            summary.completed
        );
        if let (Some(p50), Some(p99)) = (pct(0.5), pct(0.99)) {
            line.push_str(&format!(
                "; completion → dependent start p50 {p50:.2} ms, p99 {p99:.2} ms"
            ));
        }
        outln(&line);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use downbeat_engine::executor::OutcomeKind;
    use indicatif::{InMemoryTerm, ProgressDrawTarget};

    use super::*;

    fn started(task: &str, title: &str) -> RunEvent {
        RunEvent::AttemptStarted {
            task: task.into(),
            title: title.into(),
            attempt: 1,
            executor: "work".into(),
        }
    }

    /// Waits until the screen shows everything in `want`; returns the screen.
    async fn screen_with(term: &InMemoryTerm, want: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let s = term.contents();
            if want.iter().all(|w| s.contains(w)) {
                return s;
            }
            assert!(Instant::now() < deadline, "never showed {want:?}:\n{s}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn a_terminal_shows_an_overall_bar_and_a_line_per_running_task() {
        let term = InMemoryTerm::new(12, 100);
        let (tx, rx) = mpsc::unbounded_channel();
        let shown = tokio::spawn(show_events_on(
            rx,
            false,
            Some(ProgressDrawTarget::term_like(Box::new(term.clone()))),
        ));
        tx.send(RunEvent::Started {
            ready: 2,
            pending: 3,
            concurrency: 2,
        })
        .unwrap();
        tx.send(started("t1", "write the parser")).unwrap();
        tx.send(started("t2", "test the parser")).unwrap();
        let s = screen_with(
            &term,
            &[
                "0/3 done · 2 running",
                "t1 write the parser (attempt 1, work)",
                "t2 test the parser (attempt 1, work)",
            ],
        )
        .await;
        assert!(!s.contains("started  t1"), "a bar, not a line:\n{s}");
        tx.send(RunEvent::AttemptFinished {
            task: "t1".into(),
            title: "write the parser".into(),
            attempt: 1,
            outcome: OutcomeKind::Succeeded,
            status: "completed".into(),
            error: None,
            millis: 1500,
        })
        .unwrap();
        // The finished task leaves its bar for a line above the bars; the overall bar moves.
        let s = screen_with(
            &term,
            &[
                "completed t1 write the parser in 1.5s",
                "1/3 done · 1 running",
            ],
        )
        .await;
        assert!(!s.contains("t1 write the parser (attempt"), "{s}");
        assert!(s.contains("t2 test the parser (attempt 1, work)"), "{s}");
        drop(tx);
        shown.await.unwrap();
    }

    #[tokio::test]
    async fn json_mode_draws_no_bars() {
        let term = InMemoryTerm::new(12, 100);
        let (tx, rx) = mpsc::unbounded_channel();
        let shown = tokio::spawn(show_events_on(
            rx,
            true,
            Some(ProgressDrawTarget::term_like(Box::new(term.clone()))),
        ));
        tx.send(started("t1", "a")).unwrap();
        drop(tx);
        shown.await.unwrap();
        assert_eq!(term.contents().trim(), "");
    }
}
