//! Loads a [`ProjectView`] (everything the documents and status displays need) from a store.

use std::collections::HashMap;

use downbeat_core::graph::{self, PlanSettings};
use downbeat_core::report::{ProjectView, snapshot_of};
use downbeat_core::task::Status;

use crate::error::Result;
use crate::store::Store;
use crate::types::{EventQuery, TaskFilter};

/// Reads tasks, context, metrics and the plan. Fails only on storage errors or a cycle in a
/// damaged database.
pub async fn load(store: &dyn Store, settings: &PlanSettings) -> Result<ProjectView> {
    let tasks = store.tasks(&TaskFilter::default()).await?;
    let snap_edges = store.edges().await?;
    let snap = snapshot_of(&tasks, &snap_edges);
    let planned = graph::plan(&snap, settings)?;
    let rollup = graph::rollup(&snap);
    let mut holders = HashMap::new();
    for t in tasks.iter().filter(|t| t.status == Status::Running) {
        let ev = store
            .events(&EventQuery {
                task: Some(t.id),
                limit: Some(20),
                ..Default::default()
            })
            .await?;
        if let Some(e) = ev.iter().rev().find(|e| {
            e.action == "task.status" && e.after.as_ref().is_some_and(|a| a["status"] == "running")
        }) {
            holders.insert(t.id, e.actor.clone());
        }
    }
    let as_of = last_change(store).await?.map(|(_, at)| at);
    Ok(ProjectView {
        tasks,
        edges: snap_edges,
        objectives: store.objectives().await?,
        insights: store.insights().await?,
        decisions: store.decisions().await?,
        sessions: store.sessions().await?,
        artifacts: store.artifacts().await?,
        flags: store.flags(&crate::types::FlagFilter::default()).await?,
        metrics: store.metrics().await?,
        planned,
        rollup,
        holders,
        as_of,
    })
}

/// The latest event that changed the project (handover and `meta.set` bookkeeping excluded):
/// (seq, time).
pub async fn last_change(
    store: &dyn Store,
) -> Result<Option<(i64, downbeat_core::time::Timestamp)>> {
    let recent = store
        .events(&EventQuery {
            limit: Some(8),
            ..Default::default()
        })
        .await?;
    Ok(recent
        .iter()
        .rev()
        .find(|e| !e.action.starts_with("handover.") && !e.action.starts_with("meta."))
        .map(|e| (e.seq, e.at)))
}
