//! Following live workers: while workers on any machine take the ready tasks, a front end
//! shows their progress from the event log until nothing is ready or running.

use std::time::Duration;

use downbeat_core::context::Event;
use downbeat_core::task::Status;
use downbeat_store::{EventQuery, TaskFilter, WorkerRecord};
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Kind};
use crate::project::Project;

/// Live workers registered in the project's database.
pub async fn live_workers(p: &Project) -> Result<Vec<WorkerRecord>, Error> {
    Ok(p.store
        .workers(p.now())
        .await?
        .into_iter()
        .filter(|w| w.alive)
        .collect())
}

/// Whether an event is worth showing while following workers: status changes and workers
/// coming and going.
pub fn shown(e: &Event) -> bool {
    e.action == "task.status" || e.action.starts_with("worker.")
}

/// How often a follower looks whether any worker is still alive.
const WORKERS_CHECK: Duration = Duration::from_secs(2);

/// How following ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Followed {
    /// Every leaf is done.
    Done,
    /// No worker is alive any more (they stopped, or died without a word) while work is left:
    /// nobody else will do it.
    WorkersGone,
}

/// Follows the event log, handing each event to `on_event`, until nothing is ready or running
/// twice in a row (so a completion and its dependent's claim are not missed), no worker is
/// alive any more ([`Followed::WorkersGone`]), or `cancel`. Ends with [`Followed::Done`] when
/// every leaf is done, else [`Kind::RunIncomplete`] with how many are left.
pub async fn follow_workers(
    p: &Project,
    cancel: &CancellationToken,
    on_event: &mut (dyn FnMut(&Event) + Send),
) -> Result<Followed, Error> {
    let store = &p.store;
    let mut last = store.last_event_seq().await?;
    let mut quiet_rounds = 0;
    let mut next_check = tokio::time::Instant::now() + WORKERS_CHECK;
    loop {
        if cancel.is_cancelled() {
            return Err(Error::new(Kind::Interrupted, "interrupted"));
        }
        if tokio::time::Instant::now() >= next_check {
            next_check = tokio::time::Instant::now() + WORKERS_CHECK;
            if live_workers(p).await?.is_empty() {
                return Ok(Followed::WorkersGone);
            }
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
            on_event(e);
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
            if quiet_rounds >= 2 {
                break;
            }
        } else {
            quiet_rounds = 0;
        }
        tokio::select! {
            () = cancel.cancelled() => {}
            () = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
    }
    left_behind(p).await.map(|()| Followed::Done)
}

/// Leaves no worker can start now (containers roll up from their children).
async fn left_behind(p: &Project) -> Result<(), Error> {
    let snap = p.store.graph().await?;
    let parents: std::collections::HashSet<_> =
        snap.tasks.iter().filter_map(|t| t.parent).collect();
    let left = snap
        .tasks
        .iter()
        .filter(|t| !parents.contains(&t.id))
        .filter(|t| matches!(t.status, Status::Pending | Status::Failed | Status::Blocked))
        .count();
    if left == 0 {
        return Ok(());
    }
    Err(Error::new(
        Kind::RunIncomplete,
        format!(
            "{left} task(s) are left that no worker can start now (failed, blocked, waiting on failures, or needing a role no live worker takes)"
        ),
    )
    .with_hint("`downbeat blocked` shows what waits on what; `downbeat workers` who takes what"))
}
