//! Objectives achieved by their tasks: an active objective whose linked tasks are all completed
//! is marked achieved (an `objective.status` event), checked after the completions that may
//! achieve one (a run's end, a completion through MCP or by hand, a new link).
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
