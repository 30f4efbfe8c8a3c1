//! Flag rules and discovered work, applied: a completed task's report turned into
//! [`downbeat_core::flags::Effect`]s by the pure rule function of the core, then carried out
//! against the store (events recorded, tasks and edges added, priorities raised, holds added)
//! and announced as [`RunEvent`]s.
//!
//! Must never: decide what a report means (the core's [`flags::effects`] does), or act on a
//! `stop` effect beyond reporting it (only a run stops).

use std::collections::HashMap;

use downbeat_core::context::Actor;
use downbeat_core::flags::{self, Completion, Effect};
use downbeat_core::graph::TaskDag;
use downbeat_core::ids::TaskId;
use downbeat_core::planner::{NodeIdx, NodeKind};
use downbeat_core::task::{Edge, EdgeKind, NewTask, Task, TaskPatch};
use downbeat_store::{Hold, Store, TaskFilter};

pub use downbeat_core::flags::Dependent;

use crate::config::FlagRule;
use crate::prompt;
use crate::run::admission::paused;
use crate::run::graph::dependent_nodes;
use crate::run::types::{RunError, RunEvent};

/// What applying an agent's report did besides recording the completion.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReportEffects {
    /// Whether the graph changed (tasks added, priorities raised, edges added).
    pub changed: bool,
    /// A `stop` rule fired: why. Only a run acts on it.
    pub stop: Option<String>,
    /// Holds a pausing rule added (they are stored: every runner, worker and MCP server on the
    /// database honours them).
    pub holds: Vec<Hold>,
    /// Tasks created: follow-ups of flag rules and discovered work, in order.
    pub created: Vec<TaskId>,
}

/// Applies a completed task's flags (through the project's flag rules) and discovered tasks:
/// computes their effects with [`flags::effects`] (rendering follow-up titles with
/// [`prompt::render_title`]) and carries them out in order. A title that does not render fails
/// before anything is written. Every action is also reported through `emit`.
pub async fn apply_completion(
    store: &dyn Store,
    rules: &[FlagRule],
    completion: &Completion<'_>,
    actor: &Actor,
    emit: &(dyn Fn(RunEvent) + Sync),
) -> Result<ReportEffects, RunError> {
    let id = completion.task.to_string();
    let effects = flags::effects(completion, rules, |template, flag| {
        prompt::render_title(template, &id, completion.title, flag)
    })
    .map_err(|e| RunError::Config(e.to_string()))?;
    let mut fx = ReportEffects::default();
    for effect in effects {
        fx.changed |= effect.changes_graph();
        apply_effect(store, effect, actor, emit, &mut fx).await?;
    }
    Ok(fx)
}

/// Carries out one effect, announces it and notes what it did in `fx`.
async fn apply_effect(
    store: &dyn Store,
    effect: Effect,
    actor: &Actor,
    emit: &(dyn Fn(RunEvent) + Sync),
    fx: &mut ReportEffects,
) -> Result<(), RunError> {
    let flag_event = |task: TaskId, flag: String, action: &str, detail: String| RunEvent::Flag {
        task: task.to_string(),
        flag,
        action: action.into(),
        detail,
    };
    match effect {
        Effect::RecordFlag { task, flag } => {
            let payload = serde_json::json!({ "flag": flag });
            store
                .record_event("flag.raised", &task.to_string(), Some(payload), actor)
                .await?;
        }
        Effect::Unhandled { task, flag } => {
            emit(flag_event(
                task,
                flag,
                "none",
                "no rule for this flag".into(),
            ));
        }
        Effect::FollowUp {
            from,
            flag,
            task,
            hold,
        } => {
            let created = add_discovered(store, from, &task, actor).await?;
            fx.created.push(created.id);
            let mut detail = format!("added {} \"{}\"", created.id, task.title);
            if let Some(reason) = hold {
                let h = store.add_hold(Some(created.id), &reason, actor).await?;
                detail.push_str("; everything else waits until it is done");
                emit(paused(&h));
                fx.holds.push(h);
            }
            emit(flag_event(from, flag, "add-task", detail));
        }
        Effect::RaisePriority {
            from,
            flag,
            priority,
            tasks,
        } => {
            let patch = TaskPatch {
                priority: Some(priority),
                ..Default::default()
            };
            for &t in &tasks {
                store.update_task(t, &patch, actor).await?;
            }
            let detail = format!("{} dependent task(s) now {priority}", tasks.len());
            emit(flag_event(from, flag, "raise-priority", detail));
        }
        Effect::Pause { from, flag, reason } => {
            let h = store.add_hold(None, &reason, actor).await?;
            let detail = format!(
                "nothing new starts until hold {} is released (`downbeat unpause`)",
                h.id
            );
            emit(flag_event(from, flag, "pause", detail));
            emit(paused(&h));
            fx.holds.push(h);
        }
        Effect::Stop { from, flag, reason } => {
            emit(flag_event(from, flag, "stop", reason.clone()));
            emit(RunEvent::Stopping {
                reason: reason.clone(),
            });
            fx.stop = Some(reason);
        }
        Effect::Discover { from, task, blocks } => {
            let created = add_discovered(store, from, &task, actor).await?;
            fx.created.push(created.id);
            for to in blocks {
                let edge = Edge {
                    from: created.id,
                    to,
                    kind: EdgeKind::Blocks,
                };
                store.add_edge(edge, actor).await?;
            }
            emit(RunEvent::Discovered {
                task: from.to_string(),
                new_task: created.id.to_string(),
                title: task.title,
            });
        }
    }
    Ok(())
}

/// Creates a task found while working on `from`, linked to it by a `discovered-from` edge.
async fn add_discovered(
    store: &dyn Store,
    from: TaskId,
    new: &NewTask,
    actor: &Actor,
) -> Result<Task, RunError> {
    let created = store.create_task(new, &[], actor).await?;
    store
        .add_edge(
            Edge {
                from,
                to: created.id,
                kind: EdgeKind::DiscoveredFrom,
            },
            actor,
        )
        .await?;
    Ok(created)
}

/// The transitive dependents of task `id` read from the store (for callers outside a run, such
/// as a completion reported through MCP). Empty for a task that is not a live leaf.
pub async fn load_dependents(store: &dyn Store, id: TaskId) -> Result<Vec<Dependent>, RunError> {
    let tasks = store.tasks(&TaskFilter::default()).await?;
    let snap = downbeat_core::report::snapshot_of(&tasks, &store.edges().await?);
    let tdag = TaskDag::new(&snap, &|_| None)?;
    let Some(v) = tdag
        .owner
        .iter()
        .enumerate()
        .position(|(i, t)| *t == id && tdag.dag.kind(i as NodeIdx) == NodeKind::Task)
    else {
        return Ok(Vec::new());
    };
    let by_id: HashMap<TaskId, &Task> = tasks.iter().map(|t| (t.id, t)).collect();
    Ok(dependent_nodes(&tdag, v as NodeIdx)
        .into_iter()
        .filter_map(|d| {
            let t = by_id.get(&tdag.owner[d as usize])?;
            Some(Dependent {
                id: t.id,
                status: t.status,
                priority: t.priority,
            })
        })
        .collect())
}
