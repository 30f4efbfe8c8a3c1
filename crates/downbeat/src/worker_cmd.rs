//! `downbeat worker` and `downbeat workers`: processes on any machine that claim ready tasks
//! from the shared database and run them, and the view of who is alive and what each holds.
//! `downbeat run` hands the work to them when live workers are registered (see
//! [`watch_workers`]).

use std::io::Write as _;

use downbeat_engine::config::parse_duration;
use downbeat_store::WorkerRecord;
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::cli::WorkerArgs;
use crate::error::Error;
use crate::output::{json as print_json, note, outln, table};
use downbeat_app::project::Project;
use downbeat_app::runs::worker::{Worker, WorkerRequest};
use downbeat_app::runs::{follow, reports, split_events};

fn split_list(v: &[String]) -> Vec<String> {
    v.iter()
        .flat_map(|s| s.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `downbeat worker`: registers, takes ready tasks it can run until stopped, deregisters.
pub async fn worker(p: &Project, a: WorkerArgs, j: bool) -> Result<(), Error> {
    let lease = parse_duration(&a.lease).map_err(|e| Error::invalid(format!("--lease: {e}")))?;
    let request = WorkerRequest {
        name: a.name.clone(),
        roles: split_list(&a.roles),
        executors: split_list(&a.executors),
        labels: split_list(&a.labels),
        slots: a.slots.unwrap_or_else(default_slots),
        executor: a.executor.clone(),
        lease,
    };
    let schedule = downbeat_app::maintenance::schedule(p)?;
    let w = Worker::register(p, request).await?;
    let record = w.record().clone();
    let name = record.name.clone();
    note(&format!(
        "worker {name} registered: {} slot(s), roles {}, lease {}",
        record.slots,
        or_any(&record.roles),
        a.lease
    ));
    let cancel = CancellationToken::new();
    let signals = tokio::spawn(stop_on_signal(cancel.clone()));
    let (tx, rx) = mpsc::unbounded_channel();
    let (show_rx, ended_rx) = split_events(rx);
    let runs = crate::output::verbose().then(|| p.dir().join("runs"));
    let display = tokio::spawn(crate::progress::show_events(show_rx, j, runs));
    // Integration reports of containers whose last leaf ends here, written as they happen.
    let announce = move |task: downbeat_core::ids::TaskId, path: &str| {
        if j {
            outln(&json!({"event": "container-report", "task": task, "path": path}).to_string());
        } else {
            note(&format!("integration report for {task}: {path}"));
        }
    };
    let reports = reports::write_during_run(p, ended_rx, true, &announce);
    // Objectives achieved by work done here, a few seconds after their last task.
    let settled = CancellationToken::new();
    let settle = downbeat_app::objectives::settle_while(p, OBJECTIVES_EVERY, &settled);
    let work = async {
        // Stops this worker's agents at once if this process is killed.
        let guard = crate::guard::start(&name);
        let r = w.serve(tx, cancel, &|m: &str| note(m)).await;
        drop(guard);
        settled.cancel();
        r
    };
    let both = async {
        let (r, reports, ()) = tokio::join!(work, reports, settle);
        (r, reports)
    };
    let (result, _) = crate::schedule::alongside(schedule.map(|s| (p, s)), &name, both).await;
    let _ = display.await;
    signals.abort();
    let summary = result?;
    note(&format!(
        "worker {name} deregistered: {} completed, {} failed, {} retried",
        summary.completed, summary.failed, summary.retried
    ));
    Ok(())
}

/// How often a worker looks whether objectives were achieved (only when the log moved).
const OBJECTIVES_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// Cancels on Ctrl-C or SIGTERM (before saying so: a broken stderr must not keep work going).
async fn stop_on_signal(stop: CancellationToken) {
    crate::signals::stopped().await;
    stop.cancel();
    let _ = writeln!(
        std::io::stderr(),
        "\nstopping: running agents get SIGTERM, their tasks go back to pending"
    );
}

fn default_slots() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
}

/// `downbeat workers`: who is registered, alive or not, what each holds.
pub async fn workers(p: &Project, j: bool) -> Result<(), Error> {
    let now = p.now();
    let list = downbeat_app::runs::workers(p).await?;
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

pub use downbeat_app::runs::follow::live_workers;

/// `downbeat run` while workers are alive: the workers take the tasks; this process follows
/// the event log until nothing is ready or running, and exits like a run (0, or 7 when work
/// is left that nobody can start). Answers [`Followed::WorkersGone`] when every worker went
/// away with work left: the caller runs it.
pub async fn watch_workers(
    p: &Project,
    live: &[WorkerRecord],
    j: bool,
) -> Result<follow::Followed, Error> {
    note(&format!(
        "{} worker(s) alive ({}); they take the ready tasks — following their progress (`--local` runs here instead)",
        live.len(),
        live.iter()
            .map(|w| w.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let cancel = CancellationToken::new();
    let c2 = cancel.clone();
    tokio::spawn(async move {
        crate::signals::stopped().await;
        c2.cancel();
    });
    let mut show = |e: &downbeat_core::context::Event| {
        if !follow::shown(e) {
            return;
        }
        if j {
            // One line per change, like the run's own events (JSON Lines).
            outln(
                &json!({"event": e.action, "task": e.entity, "by": e.actor, "after": e.after})
                    .to_string(),
            );
        } else {
            let st = e
                .after
                .as_ref()
                .and_then(|a| a.get("status").and_then(|s| s.as_str()))
                .unwrap_or("");
            note(&format!("{:<10} {} by {}", st, e.entity, e.actor).replace("  by", " by"));
        }
    };
    let followed = follow::follow_workers(p, &cancel, &mut show).await?;
    match followed {
        follow::Followed::Done => note("all tasks are done"),
        follow::Followed::WorkersGone => {
            note("every worker is gone with work left; running the rest here")
        }
    }
    Ok(followed)
}
