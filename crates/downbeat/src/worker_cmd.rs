//! `downbeat worker` and `downbeat workers`: processes on any machine that claim ready tasks
//! from the shared database and run them, and the view of who is alive and what each holds.
//! `downbeat run` hands the work to them when live workers are registered (see
//! [`watch_workers`]).

use std::sync::Arc;
use std::time::Duration;

use downbeat_core::context::Actor;
use downbeat_core::task::{Status, Task};
use downbeat_engine::config::parse_duration;
use downbeat_engine::run::{AcceptFn, run, this_host};
use downbeat_store::{EventQuery, TaskFilter, WorkerRecord};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::cli::WorkerArgs;
use crate::error::{Error, Kind};
use crate::output::{json as print_json, note, outln, table};
use downbeat_app::project::Project;
use downbeat_app::runs::{RunRequest, reports, run_error, run_options, split_events};

/// Tags of the form `needs:LABEL` name labels a worker must have to take the task.
pub const NEEDS_PREFIX: &str = "needs:";

fn split_list(v: &[String]) -> Vec<String> {
    v.iter()
        .flat_map(|s| s.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Which tasks a worker with these capabilities takes.
pub fn accepts(
    roles: Vec<String>,
    executors: Vec<String>,
    labels: Vec<String>,
    resolve: downbeat_engine::run::ResolveFn,
) -> AcceptFn {
    Arc::new(move |t: &Task| {
        let role_ok = roles.is_empty()
            || t.role
                .as_ref()
                .is_some_and(|r| roles.iter().any(|x| x == r));
        let labels_ok = t
            .tags
            .iter()
            .filter_map(|tag| tag.strip_prefix(NEEDS_PREFIX))
            .all(|need| labels.iter().any(|l| l == need));
        let exec_ok = executors.is_empty() || resolve(t).is_ok_and(|r| executors.contains(&r.name));
        role_ok && labels_ok && exec_ok
    })
}

/// `downbeat worker`: registers, takes ready tasks it can run until stopped, deregisters.
pub async fn worker(p: &Project, a: WorkerArgs, j: bool) -> Result<(), Error> {
    let roles = split_list(&a.roles);
    let executors = split_list(&a.executors);
    let labels = split_list(&a.labels);
    for r in &roles {
        if p.roles.get(r).is_none() {
            return Err(Error::invalid(format!("unknown role `{r}`"))
                .with_hint("`downbeat roles` lists them"));
        }
    }
    let lease = parse_duration(&a.lease)
        .map_err(|e| Error::invalid(format!("--lease: {e}")))?
        .max(Duration::from_secs(1));
    let request = RunRequest {
        concurrency: Some(a.slots.unwrap_or_else(default_slots).max(1)),
        executor: a.executor.clone(),
        ..Default::default()
    };
    let mut opts = run_options(p, &request).await?;
    let name = a
        .name
        .clone()
        .unwrap_or_else(|| format!("worker:{}:{}", this_host(), std::process::id()));
    opts.holder = name.clone();
    opts.lease = lease;
    opts.stay = true;
    opts.accepts = Some(accepts(
        roles.clone(),
        executors.clone(),
        labels.clone(),
        opts.resolve.clone(),
    ));
    let record = WorkerRecord {
        name: name.clone(),
        host: this_host(),
        pid: i64::from(std::process::id()),
        roles,
        executors,
        labels,
        slots: u32::try_from(opts.concurrency).unwrap_or(u32::MAX),
        started_at: p.now(),
        heartbeat_at: p.now(),
        ttl_ms: i64::try_from(lease.as_millis()).unwrap_or(i64::MAX),
        alive: true,
        holding: vec![],
    };
    let store = p.store.clone();
    let actor = Actor::new(name.clone(), p.now());
    store.register_worker(&record, &actor).await?;
    note(&format!(
        "worker {name} registered: {} slot(s), roles {}, lease {}",
        record.slots,
        if record.roles.is_empty() {
            "any".to_owned()
        } else {
            record.roles.join(",")
        },
        a.lease
    ));

    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    let signals = tokio::spawn(async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
        }
        eprintln!("\nstopping: running agents get SIGTERM, their tasks go back to pending");
        stop.cancel();
    });
    // Heartbeats: the registry's liveness (the task leases renew in the engine's loop).
    let beat_store = store.clone();
    let beat_name = name.clone();
    let beat_every = (lease / 3).max(Duration::from_millis(200));
    let now = opts.now.clone();
    let beats = tokio::spawn(async move {
        loop {
            tokio::time::sleep(beat_every).await;
            let _ = beat_store.worker_heartbeat(&beat_name, now()).await;
        }
    });

    let (tx, rx) = mpsc::unbounded_channel();
    let (show_rx, ended_rx) = split_events(rx);
    let display = tokio::spawn(crate::run_cmd::show_events(show_rx, j));
    // Integration reports of containers whose last leaf ends here, written as they happen.
    let announce = move |task: downbeat_core::ids::TaskId, path: &str| {
        if j {
            outln(&json!({"event": "container-report", "task": task, "path": path}).to_string());
        } else {
            note(&format!("integration report for {task}: {path}"));
        }
    };
    let reports = reports::write_during_run(p, ended_rx, true, &announce);
    // A lost database connection (a server restart, a network failure) does not end the
    // worker: its attempts are stopped, and once the database answers again the tasks it
    // held go back to pending (a commit whose answer was lost may or may not have landed;
    // either way nothing is left running without a runner) and it takes work again.
    let work = async {
        let mut total = downbeat_engine::run::RunSummary::default();
        // Stops this worker's agents at once if this process is killed.
        let guard = crate::guard::start(&name);
        let result = loop {
            let round = cancel.child_token();
            let r = run(store.clone(), opts.clone(), tx.clone(), round.clone()).await;
            match r {
                Err(downbeat_engine::run::RunError::Store(downbeat_store::Error::Unavailable(
                    m,
                ))) if !cancel.is_cancelled() => {
                    round.cancel();
                    note(&format!(
                        "worker {name}: database unavailable ({m}); stopping running attempts and reconnecting"
                    ));
                    if !reconnect(store.as_ref(), &record, &name, &cancel, &opts).await? {
                        break Ok(total);
                    }
                }
                Ok(s) => {
                    total.completed += s.completed;
                    total.failed += s.failed;
                    total.retried += s.retried;
                    total.interrupted = s.interrupted;
                    break Ok(total);
                }
                Err(e) => break Err(e),
            }
        };
        drop(guard);
        drop(tx);
        Ok::<_, Error>(result)
    };
    let (result, _) = tokio::join!(work, reports);
    let result = result?;
    let _ = display.await;
    beats.abort();
    signals.abort();
    let reason = match &result {
        Ok(s) if s.interrupted => "stopped",
        Ok(_) => "finished",
        Err(_) => "error",
    };
    let _ = store
        .deregister_worker(&name, reason, &Actor::new(name.clone(), p.now()))
        .await;
    let summary = result.map_err(run_error)?;
    note(&format!(
        "worker {name} deregistered: {} completed, {} failed, {} retried",
        summary.completed, summary.failed, summary.retried
    ));
    Ok(())
}

/// Waits until the database answers again (or the worker is stopped: `false`), then returns
/// the tasks this worker held to pending and registers it again.
async fn reconnect(
    store: &dyn downbeat_store::Store,
    record: &WorkerRecord,
    name: &str,
    cancel: &CancellationToken,
    opts: &downbeat_engine::run::RunOptions,
) -> Result<bool, Error> {
    let mut pause = Duration::from_millis(250);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return Ok(false),
            _ = tokio::time::sleep(pause) => {}
        }
        let actor = Actor::new(name.to_owned(), (opts.now)());
        match store
            .requeue_running(None, &[name.to_owned()], &actor)
            .await
        {
            Ok(back) => {
                let mut again = record.clone();
                again.heartbeat_at = actor.now;
                store.register_worker(&again, &actor).await?;
                note(&format!(
                    "worker {name}: database reachable again; {} task(s) it held went back to pending",
                    back.len()
                ));
                return Ok(true);
            }
            Err(downbeat_store::Error::Unavailable(_)) => {
                pause = (pause * 2).min(Duration::from_secs(5));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

fn default_slots() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
}

/// `downbeat workers`: who is registered, alive or not, what each holds.
pub async fn workers(p: &Project, j: bool) -> Result<(), Error> {
    let now = p.now();
    let list = p.store.workers(now).await?;
    if j {
        print_json(&json!({ "workers": list }));
        return Ok(());
    }
    if list.is_empty() {
        outln("no workers registered (start one with `downbeat worker`)");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|w| {
            vec![
                w.name.clone(),
                if w.alive { "alive" } else { "silent" }.to_owned(),
                w.host.clone(),
                or_any(&w.roles),
                format!("{}/{}", w.holding.len(), w.slots),
                w.holding
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(" "),
                ago(now.0 - w.heartbeat_at.0),
            ]
        })
        .collect();
    outln(
        table(
            &[
                "worker",
                "state",
                "host",
                "roles",
                "busy",
                "holds",
                "heartbeat",
            ],
            &rows,
        )
        .trim_end(),
    );
    Ok(())
}

fn or_any(v: &[String]) -> String {
    if v.is_empty() {
        "any".into()
    } else {
        v.join(",")
    }
}

fn ago(ms: i64) -> String {
    match ms.max(0) {
        ms if ms < 1_000 => format!("{ms} ms ago"),
        ms if ms < 120_000 => format!("{} s ago", ms / 1_000),
        ms => format!("{} min ago", ms / 60_000),
    }
}

/// Live workers registered in the project's database.
pub async fn live_workers(p: &Project) -> Result<Vec<WorkerRecord>, Error> {
    Ok(p.store
        .workers(p.now())
        .await?
        .into_iter()
        .filter(|w| w.alive)
        .collect())
}

/// `downbeat run` while workers are alive: the workers take the tasks; this process follows
/// the event log until nothing is ready or running, and exits like a run (0, or 7 when work
/// is left that nobody can start).
pub async fn watch_workers(p: &Project, live: &[WorkerRecord], j: bool) -> Result<(), Error> {
    note(&format!(
        "{} worker(s) alive ({}); they take the ready tasks — following their progress (`--local` runs here instead)",
        live.len(),
        live.iter()
            .map(|w| w.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let store = p.store.clone();
    let mut last = store.last_event_seq().await?;
    let cancel = CancellationToken::new();
    let c2 = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            c2.cancel();
        }
    });
    let mut quiet_rounds = 0;
    loop {
        if cancel.is_cancelled() {
            return Err(Error::new(Kind::Interrupted, "interrupted"));
        }
        let events = store
            .events(&EventQuery {
                after_seq: Some(last),
                limit: Some(10_000),
                ..Default::default()
            })
            .await?;
        for e in &events {
            last = last.max(e.seq);
            if e.action != "task.status" && !e.action.starts_with("worker.") {
                continue;
            }
            if j {
                print_json(
                    &json!({"event": e.action, "task": e.entity, "by": e.actor, "after": e.after}),
                );
            } else {
                let st = e
                    .after
                    .as_ref()
                    .and_then(|a| a.get("status").and_then(|s| s.as_str()))
                    .unwrap_or("");
                note(&format!("{:<10} {} by {}", st, e.entity, e.actor).replace("  by", " by"));
            }
        }
        let running = store
            .tasks(&TaskFilter {
                statuses: vec![Status::Running],
                limit: Some(1),
                ..Default::default()
            })
            .await?;
        let ready = store.ready_tasks(1, p.now()).await?;
        if running.is_empty() && ready.is_empty() {
            quiet_rounds += 1;
            // Twice in a row, so a completion and its dependent's claim are not missed.
            if quiet_rounds >= 2 {
                break;
            }
        } else {
            quiet_rounds = 0;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Leaves only: containers roll up from their children.
    let snap = store.graph().await?;
    let parents: std::collections::HashSet<_> =
        snap.tasks.iter().filter_map(|t| t.parent).collect();
    let left: Vec<_> = snap
        .tasks
        .iter()
        .filter(|t| !parents.contains(&t.id))
        .filter(|t| matches!(t.status, Status::Pending | Status::Failed | Status::Blocked))
        .collect();
    if left.is_empty() {
        note("all tasks are done");
        Ok(())
    } else {
        Err(Error::new(
            Kind::RunIncomplete,
            format!(
                "{} task(s) are left that no worker can start now (failed, blocked, waiting on failures, or needing a role no live worker takes)",
                left.len()
            ),
        )
        .with_hint("`downbeat blocked` shows what waits on what; `downbeat workers` who takes what"))
    }
}
