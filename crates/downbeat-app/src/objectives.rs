//! Objectives achieved by their tasks: an active objective whose linked tasks are all completed
//! is marked achieved (an `objective.status` event), checked after the completions that may
//! achieve one (a run's end, a completion through MCP or by hand, a new link) and, while a
//! worker runs, every few seconds after the log moved ([`settle_while`]).
//!
//! Must never: reopen or drop an objective, or touch one without linked tasks.

use downbeat_core::context::ObjectiveStatus;
use downbeat_core::ids::RecordId;
use downbeat_core::report;

use crate::error::Error;
use crate::project::Project;

/// Marks achieved the active objectives whose linked tasks are all completed; their ids.
pub async fn settle(p: &Project) -> Result<Vec<RecordId>, Error> {
    let objectives = p.store.objectives().await?;
    let linked = |o: &&downbeat_core::context::Objective| {
        o.status == ObjectiveStatus::Active && !o.tasks.is_empty()
    };
    if !objectives.iter().any(|o| linked(&o)) {
        return Ok(Vec::new());
    }
    let tasks = p.store.tasks(&Default::default()).await?;
    let rollup = downbeat_core::graph::rollup(&report::snapshot_of(&tasks, &[]));
    let done = report::achieved_objectives(&objectives, &rollup);
    if !done.is_empty() {
        let actor = p.actor().await?;
        for id in &done {
            p.store
                .set_objective_status(*id, ObjectiveStatus::Achieved, &actor)
                .await?;
        }
    }
    Ok(done)
}

/// Settles objectives every `period` while `cancel` is not fired, whenever the event log moved
/// since the last look: what a long-running worker does, so an objective is achieved soon after
/// its last task completes there.
pub async fn settle_while(
    p: &Project,
    period: std::time::Duration,
    cancel: &tokio_util::sync::CancellationToken,
) {
    let mut seen = -1;
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(period) => {}
        }
        let Ok(last) = p.store.last_event_seq().await else {
            continue;
        };
        if last != seen && settle(p).await.is_ok() {
            // Its own events count as seen: nothing is read again until something else moves.
            seen = p.store.last_event_seq().await.unwrap_or(last);
        }
    }
}
