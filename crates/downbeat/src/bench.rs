//! `downbeat bench run|recover`: the real engine and store on generated plans in a temporary
//! project, with throughput and latency figures.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use downbeat_engine::config::RetryPolicy;
use downbeat_engine::executor::Executor;
use downbeat_engine::executor::noop::Noop;
use downbeat_engine::executor::process::Process;
use downbeat_engine::run::{Resolved, RunEvent, RunOptions, default_holder, run};
use nix::sys::resource::UsageWho;
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Kind};
use crate::output::{json as print_json, note, outln};

pub(crate) fn bench_dir() -> Result<std::path::PathBuf, Error> {
    let dir = std::env::temp_dir().join(format!(
        "downbeat-bench-{}-{}",
        std::process::id(),
        downbeat_app::project::now().0
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
        Shape::Layered => {
            let w = layer_width(n);
            for i in w..n {
                let prev = (i / w - 1) * w;
                edge(prev + i % w, i);
                edge(prev + (i + 1) % w, i);
            }
        }
    }
    plan
}

/// Options for benchmark runs: every task through `exec`, nothing else configured.
pub(crate) fn bench_options(
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
                worktree: false,
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
        artifact_limit: downbeat_engine::artifacts::DEFAULT_LIMIT,
        agent_env: Vec::new(),
        scrub: Default::default(),
        now: Arc::new(downbeat_app::project::now),
        accepts: None,
        stay: false,
        worktrees: None,
        context_budget: downbeat_engine::run::DEFAULT_CONTEXT_BUDGET,
        flag_depth: downbeat_core::flags::DEFAULT_MAX_DEPTH,
        memory_files: Vec::new(),

        load_wait: downbeat_engine::run::DEFAULT_LOAD_WAIT,
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
) -> Result<(), Error> {
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
    let actor = downbeat_core::context::Actor::new("bench", downbeat_app::project::now());
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
        let lease_until =
            downbeat_core::time::Timestamp(downbeat_app::project::now().0 + 3_600_000);
        let batch = Batch {
            finishes: vec![],
            claims,
            holder: dead,
            lease_until,
            quiet: false,
            holds_seen: None,
            caps: vec![],
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
    // Timed: the first attempt started, and the first completed (the run stops there; the
    // completion commits in the same turn, and is looked for in the database afterwards).
    let watch = async move {
        let mut requeued = 0u64;
        let (mut first, mut done): (Option<Duration>, Option<Duration>) = (None, None);
        let mut loaded: Option<Duration> = None;
        while let Some(e) = rx.recv().await {
            match e {
                RunEvent::Requeued { .. } => requeued += 1,
                // Announced once the whole graph is in.
                RunEvent::Started { .. } => loaded = Some(t0.elapsed()),
                RunEvent::AttemptStarted { .. } if first.is_none() => {
                    first = Some(t0.elapsed());
                }
                RunEvent::AttemptFinished { status, .. }
                    if status == "completed" && done.is_none() =>
                {
                    done = Some(t0.elapsed());
                    stop.cancel();
                }
                _ => {}
            }
        }
        (requeued, first, done, loaded)
    };
    let (res, (requeued, first, done, loaded)) =
        tokio::join!(run(store.clone(), opts, tx, cancel), watch);
    res.map_err(|e| Error::new(Kind::Internal, e.to_string()))?;
    let total = store.task_count().await?;
    let committed = store
        .tasks(&TaskFilter {
            statuses: vec![downbeat_core::task::Status::Completed],
            limit: Some(1),
            ..Default::default()
        })
        .await?
        .len();
    // The tasks were all pending or running before: a completed one is this run's.
    let done = done.filter(|_| committed > 0);
    if temp {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    if j {
        print_json(
            &json!({"tasks": total, "requeued": requeued, "open_ms": ms(opened),
            "first_dispatch_ms": first.map(ms), "first_completion_ms": done.map(ms),
            "graph_loaded_ms": loaded.map(ms)}),
        );
    } else {
        let when = |d: Option<Duration>| {
            d.map_or("never".to_owned(), |d| {
                format!("{:.0} ms after opening", ms(d))
            })
        };
        outln(&format!(
            "{total} tasks, {requeued} requeued from the dead runner; database opened in {:.0} ms; first attempt started {}, first completion committed {}; whole graph loaded {}",
            ms(opened),
            when(first),
            when(done),
            when(loaded),
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
    /// Layers of about √N tasks, each task depending on two tasks of the layer before.
    Layered,
}

/// Tasks per layer of [`Shape::Layered`]: about √n, at least 2.
fn layer_width(n: usize) -> usize {
    ((n as f64).sqrt().round() as usize).max(2)
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
) -> Result<(), Error> {
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
    let actor = downbeat_core::context::Actor::new("bench", downbeat_app::project::now());
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
                .map_err(|e| Error::invalid(e.to_string()))?,
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
    let (cpu0, programs0) = (
        cpu_seconds(UsageWho::RUSAGE_SELF),
        cpu_seconds(UsageWho::RUSAGE_CHILDREN),
    );
    let summary = run(store.clone(), opts, tx, CancellationToken::new())
        .await
        .map_err(|e| Error::new(Kind::Internal, e.to_string()))?;
    let secs = t0.elapsed().as_secs_f64();
    let per_task = |seconds: f64| seconds * 1e3 / summary.completed.max(1) as f64;
    let cpu_ms = per_task(cpu_seconds(UsageWho::RUSAGE_SELF) - cpu0);
    let programs_ms = per_task(cpu_seconds(UsageWho::RUSAGE_CHILDREN) - programs0);
    let (finished, started) = probe
        .await
        .map_err(|e| Error::new(Kind::Internal, e.to_string()))?;
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
    // The reference, measured in the same run: the same program spawned and waited for as
    // many times, as many at once, with nothing else.
    let (bare, bare_programs_ms) = match &argv {
        Some(a) => {
            let before = cpu_seconds(UsageWho::RUSAGE_CHILDREN);
            let rate = bare_spawn(a, n, concurrency)?;
            let ms = (cpu_seconds(UsageWho::RUSAGE_CHILDREN) - before) * 1e3 / n as f64;
            (Some(rate), Some(ms))
        }
        None => (None, None),
    };
    if j {
        print_json(
            &json!({"executor": exec_name, "tasks": n, "shape": format!("{shape:?}").to_lowercase(), "concurrency": concurrency, "completed": summary.completed, "seconds": secs, "tasks_per_second": rate, "apply_ms": apply_ms, "latency_ms_p50": pct(0.5), "latency_ms_p99": pct(0.99), "bare_spawn_per_second": bare, "share_of_bare_spawn": bare.map(|b| rate / b), "runner_cpu_ms_per_task": cpu_ms, "programs_cpu_ms_per_task": programs_ms, "bare_programs_cpu_ms": bare_programs_ms}),
        );
    } else {
        let mut line = format!(
            "{n} tasks ({shape:?}, {exec_name}, concurrency {concurrency}): {} completed in {secs:.2} s = {rate:.0} tasks/s durable (plan applied in {apply_ms:.0} ms)",
            summary.completed
        );
        line.push_str(&format!(
            "; CPU time per task: the runner's own {cpu_ms:.3} ms, its programs' {programs_ms:.3} ms"
        ));
        if let (Some(p50), Some(p99)) = (pct(0.5), pct(0.99)) {
            line.push_str(&format!(
                "; completion → dependent start p50 {p50:.2} ms, p99 {p99:.2} ms"
            ));
        }
        if let (Some(b), Some(ms)) = (bare, bare_programs_ms) {
            line.push_str(&format!(
                "; the same program spawned bare: {b:.0}/s ({ms:.3} ms of CPU each), so the engine runs at {:.0}% of it",
                rate / b * 100.0
            ));
        }
        outln(&line);
    }
    Ok(())
}

/// CPU time (user and system) used so far by this process, in all its threads
/// (`RUSAGE_SELF`: what the runner itself costs), or by the children it has waited for
/// (`RUSAGE_CHILDREN`: the programs it started).
fn cpu_seconds(who: UsageWho) -> f64 {
    nix::sys::resource::getrusage(who).map_or(0.0, |u| {
        let t = |v: nix::sys::time::TimeVal| v.tv_sec() as f64 + v.tv_usec() as f64 / 1e6;
        t(u.user_time()) + t(u.system_time())
    })
}

/// Spawns `argv` `n` times, `concurrency` at once, waiting for each: processes per second.
fn bare_spawn(argv: &[String], n: usize, concurrency: usize) -> Result<f64, Error> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let t0 = std::time::Instant::now();
    let failed = std::thread::scope(|s| {
        let workers: Vec<_> = (0..concurrency)
            .map(|_| {
                s.spawn(|| {
                    while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < n {
                        let ok = std::process::Command::new(&argv[0])
                            .args(&argv[1..])
                            .stdin(std::process::Stdio::null())
                            .stdout(std::process::Stdio::null())
                            .stderr(std::process::Stdio::null())
                            .status()
                            .is_ok();
                        if !ok {
                            return true;
                        }
                    }
                    false
                })
            })
            .collect();
        workers.into_iter().any(|w| w.join().unwrap_or(true))
    });
    if failed {
        return Err(Error::invalid(format!("cannot spawn `{}`", argv[0])));
    }
    Ok(n as f64 / t0.elapsed().as_secs_f64())
}
