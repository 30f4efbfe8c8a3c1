//! `downbeat bench workers`: worker processes sharing one PostgreSQL database. Creates a
//! project in a fresh schema, applies a plan of noop tasks, starts N `downbeat worker`
//! processes of this same binary, and times them until every task is done: durable
//! throughput and, for chains, the time from a task's end in one process to its dependent's
//! start in whichever process takes it. The schema is dropped afterwards unless `--keep`.

use std::collections::HashMap;
use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use downbeat_core::task::Status;
use downbeat_store::{TaskFilter, TaskStore, postgres::PostgresStore};
use serde_json::{Value, json};

use crate::bench::{Shape, bench_plan};
use crate::cli::BenchWorkersArgs;
use crate::error::{Error, Kind};
use crate::output::{json as print_json, note, outln};

/// One line a worker printed, with the moment the benchmark read it.
struct Seen {
    at: Instant,
    started: bool,
    title: String,
}

/// Worker processes that are stopped (SIGTERM, then killed) however the benchmark ends.
struct Workers(Vec<Child>);

impl Workers {
    fn stop(&mut self) {
        for c in &self.0 {
            if let Ok(pid) = i32::try_from(c.id()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        for c in &mut self.0 {
            while Instant::now() < deadline {
                if matches!(c.try_wait(), Ok(Some(_))) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        self.0.clear();
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.stop();
    }
}

fn bench_error(m: impl std::fmt::Display) -> Error {
    Error::new(Kind::Internal, format!("benchmark: {m}"))
}

/// Runs the benchmark; see the module documentation.
pub async fn bench_workers(spec: &BenchWorkersArgs, j: bool) -> Result<(), Error> {
    let base = spec
        .database
        .clone()
        .or_else(|| std::env::var("DOWNBEAT_DATABASE_URL").ok())
        .filter(|u| !u.is_empty())
        .ok_or_else(|| {
            Error::new(
                Kind::Usage,
                "no database: pass --database postgres://… or set DOWNBEAT_DATABASE_URL",
            )
        })?;
    if !(base.starts_with("postgres://") || base.starts_with("postgresql://")) {
        return Err(Error::new(
            Kind::Usage,
            "the workers benchmark needs a PostgreSQL URL (postgres://…)",
        ));
    }
    if base.contains("schema=") {
        return Err(Error::new(
            Kind::Usage,
            "leave `schema=` out of the URL: the benchmark creates a schema of its own and drops it",
        ));
    }
    let schema = format!(
        "downbeat_bench_{}_{}",
        std::process::id(),
        downbeat_app::project::now().0
    );
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}schema={schema}");
    let dir = crate::bench::bench_dir()?;
    let exe = std::env::current_exe().map_err(bench_error)?;
    let command = |args: &[&str]| {
        let mut c = Command::new(&exe);
        c.current_dir(&dir)
            .env("DOWNBEAT_DATABASE_URL", &url)
            .env_remove("DOWNBEAT_NOW")
            .args(args);
        c
    };
    let init = command(&["init"])
        .stdout(Stdio::null())
        .output()
        .map_err(bench_error)?;
    if !init.status.success() {
        return Err(bench_error(format!(
            "`downbeat init` failed: {}",
            String::from_utf8_lossy(&init.stderr).trim()
        )));
    }
    let store = PostgresStore::open(&url, false).await?;
    // Earlier runs' dropped schemas leave dead catalog rows that slow the server down on
    // a server without autovacuum: every run starts from a vacuumed catalog.
    store.vacuum_catalogs().await;
    let result = measure(spec, &store, &command).await;
    if spec.keep {
        note(&format!(
            "kept schema {schema} and project {}",
            dir.display()
        ));
    } else {
        let _ = std::fs::remove_dir_all(&dir);
        store.drop_schema().await?;
    }
    let mut r = result?;
    r["schema"] = json!(schema);
    r["schema_kept"] = json!(spec.keep);
    if j {
        print_json(&r);
    } else {
        let mut line = format!(
            "{} tasks ({}, noop) on {} worker(s) × {} slot(s): {} completed in {:.2} s = {:.0} tasks/s durable (plan applied in {:.0} ms)",
            r["tasks"],
            r["shape"].as_str().unwrap_or(""),
            r["workers"],
            r["slots"],
            r["completed"],
            r["seconds"].as_f64().unwrap_or(0.0),
            r["tasks_per_second"].as_f64().unwrap_or(0.0),
            r["apply_ms"].as_f64().unwrap_or(0.0),
        );
        if let (Some(p50), Some(p99)) = (r["latency_ms_p50"].as_f64(), r["latency_ms_p99"].as_f64())
        {
            line.push_str(&format!(
                "; dependency end → dependent start p50 {p50:.2} ms, p99 {p99:.2} ms, across processes in {} of {} cases",
                r["cross_process"], r["latency_samples"]
            ));
        }
        outln(&line);
    }
    Ok(())
}

async fn measure(
    spec: &BenchWorkersArgs,
    store: &PostgresStore,
    command: &dyn Fn(&[&str]) -> Command,
) -> Result<Value, Error> {
    let n = spec.tasks.max(2) as usize;
    let plan = bench_plan(n, spec.shape);
    let actor = downbeat_core::context::Actor::new("bench", downbeat_app::project::now());
    let t_apply = Instant::now();
    store.apply_plan(&plan, &actor).await?;
    let apply_ms = t_apply.elapsed().as_secs_f64() * 1e3;

    let (tx, rx) = mpsc::channel::<(usize, Seen)>();
    let mut workers = Workers(Vec::new());
    let t0 = Instant::now();
    let slots = spec.slots.max(1).to_string();
    for i in 0..spec.workers.max(1) {
        let name = format!("bench-{i}");
        let mut child = command(&[
            "--json",
            "worker",
            "--executor",
            "noop",
            "--slots",
            &slots,
            "--name",
            &name,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(bench_error)?;
        let out = child
            .stdout
            .take()
            .ok_or_else(|| bench_error("no stdout"))?;
        workers.0.push(child);
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                let at = Instant::now();
                let Ok(v) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                let started = match v["event"].as_str() {
                    Some("attempt-started") => true,
                    Some("attempt-finished") if v["status"] == "completed" => false,
                    _ => continue,
                };
                let title = v["title"].as_str().unwrap_or_default().to_owned();
                if tx.send((i, Seen { at, started, title })).is_err() {
                    break;
                }
            }
        });
    }
    drop(tx);

    // The workers' lines say when every task has ended; the database then says when the
    // last completion is durable.
    let deadline = t0 + Duration::from_secs(600);
    let mut finished: HashMap<String, (usize, Instant)> = HashMap::new();
    let mut started: Vec<(usize, String, Instant)> = Vec::new();
    let unfinished = TaskFilter {
        statuses: vec![Status::Pending, Status::Running],
        limit: Some(1),
        ..Default::default()
    };
    let end = loop {
        if Instant::now() > deadline {
            return Err(bench_error(format!(
                "only {} of {n} tasks ended after {} s",
                finished.len(),
                deadline.duration_since(t0).as_secs()
            )));
        }
        while let Ok((w, s)) = rx.try_recv() {
            if s.started {
                started.push((w, s.title, s.at));
            } else {
                finished.insert(s.title, (w, s.at));
            }
        }
        if finished.len() >= n && store.tasks(&unfinished).await?.is_empty() {
            break Instant::now();
        }
        for c in &mut workers.0 {
            if let Ok(Some(status)) = c.try_wait() {
                return Err(bench_error(format!("a worker exited early ({status})")));
            }
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    let secs = end.duration_since(t0).as_secs_f64();
    workers.stop();
    let completed = store
        .tasks(&TaskFilter {
            statuses: vec![Status::Completed],
            ..Default::default()
        })
        .await?
        .len();

    let mut lat: Vec<f64> = Vec::new();
    let mut cross = 0usize;
    if matches!(spec.shape, Shape::Chain | Shape::Chains) {
        for (w, title, at) in &started {
            let i: usize = title.trim_start_matches("task ").parse().unwrap_or(0);
            if i == 0 || (spec.shape == Shape::Chains && i.is_multiple_of(10)) {
                continue;
            }
            if let Some((pw, prev)) = finished.get(&format!("task {}", i - 1)) {
                lat.push(at.saturating_duration_since(*prev).as_secs_f64() * 1e3);
                cross += usize::from(pw != w);
            }
        }
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 - 1.0) * p).round() as usize)
            .copied()
    };
    if completed < n {
        return Err(bench_error(format!(
            "only {completed} of {n} tasks are done"
        )));
    }
    Ok(json!({
        "tasks": n,
        "shape": format!("{:?}", spec.shape).to_lowercase(),
        "workers": spec.workers.max(1),
        "slots": spec.slots.max(1),
        "completed": completed,
        "seconds": secs,
        "tasks_per_second": completed as f64 / secs,
        "apply_ms": apply_ms,
        "latency_samples": lat.len(),
        "cross_process": cross,
        "latency_ms_p50": pct(0.5),
        "latency_ms_p99": pct(0.99),
    }))
}
