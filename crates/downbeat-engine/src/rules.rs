//! Flag rules and discovered work: a completed task's report turned into
//! [`downbeat_core::flags::Effect`]s by the pure rule function of the core before the
//! completion commits; the store carries them out in the completion's own transaction
//! (events recorded, tasks and edges added, priorities raised, holds added), and what it did
//! is announced here as [`RunEvent`]s.
//!
//! Must never: decide what a report means (the core's [`flags::effects`] does), write to the
//! store outside the completion's transaction, or act on a `stop` effect beyond reporting it
//! (only a run stops).

use std::collections::HashMap;

use downbeat_core::flags::{self, Completion, Effect};
use downbeat_core::graph::TaskDag;
use downbeat_core::ids::TaskId;
use downbeat_core::planner::{NodeIdx, NodeKind};
use downbeat_core::task::Task;
use downbeat_store::{EffectsDone, Hold, Store, TaskFilter};

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

/// The effects of a completed task's report (its flags through the project's flag rules, and
/// its discovered tasks), computed with [`flags::effects`] before the completion commits:
/// they travel with its [`downbeat_store::Finish`] and the store applies them in the same
/// transaction. A follow-up title that does not render ([`prompt::render_title`]) is a
/// configuration error, and no effect is returned with it.
pub fn completion_effects(
    rules: &[FlagRule],
    completion: &Completion<'_>,
) -> Result<Vec<Effect>, RunError> {
    let id = completion.task.to_string();
    flags::effects(completion, rules, |template, flag| {
        prompt::render_title(template, &id, completion.title, flag)
    })
    .map_err(|e| {
        RunError::Config(format!(
            "the flag rules of task {id} cannot be applied: {e}"
        ))
    })
}

/// Announces through `emit` what a completion's effects did, as the store reports them
/// ([`EffectsDone`]: the tasks created and the holds added, in the order of the effects), and
/// gathers it.
pub fn announce(
    effects: &[Effect],
    done: &EffectsDone,
    emit: &(dyn Fn(RunEvent) + Sync),
) -> ReportEffects {
    let fx = ReportEffects {
        changed: done.changed,
        stop: done.stops.last().cloned(),
        holds: done.holds.clone(),
        created: done.created.clone(),
    };
    let mut created = done.created.iter();
    let mut holds = done.holds.iter();
    for (id, from, flag) in &done.handled {
        emit(RunEvent::Flag {
            task: from.to_string(),
            flag: flag.clone(),
            action: "handled".into(),
            detail: format!("{id} handled by {}", done.task),
        });
    }
    for effect in effects {
        announce_one(effect, &mut created, &mut holds, emit);
    }
    fx
}

/// Announces one effect; `created` and `holds` yield what the store made for it.
fn announce_one<'a>(
    effect: &Effect,
    created: &mut impl Iterator<Item = &'a TaskId>,
    holds: &mut impl Iterator<Item = &'a Hold>,
    emit: &(dyn Fn(RunEvent) + Sync),
) {
    let flag_event = |task: TaskId, flag: &str, action: &str, detail: String| RunEvent::Flag {
        task: task.to_string(),
        flag: flag.to_owned(),
        action: action.into(),
        detail,
    };
    match effect {
        Effect::RecordFlag { .. } | Effect::Handled { .. } => {}
        Effect::Suppressed { task, flag, reason } => {
            emit(flag_event(*task, flag, "suppressed", reason.clone()));
        }
        Effect::Unhandled { task, flag } => {
            emit(flag_event(
                *task,
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
            let id = created.next().map(ToString::to_string).unwrap_or_default();
            let mut detail = format!("added {id} \"{}\"", task.title);
            if hold.is_some()
                && let Some(h) = holds.next()
            {
                detail.push_str("; everything else waits until it is done");
                emit(paused(h));
            }
            emit(flag_event(*from, flag, "add-task", detail));
        }
        Effect::RaisePriority {
            from,
            flag,
            priority,
            tasks,
        } => {
            let detail = format!("{} dependent task(s) now {priority}", tasks.len());
            emit(flag_event(*from, flag, "raise-priority", detail));
        }
        Effect::Pause { from, flag, .. } => {
            if let Some(h) = holds.next() {
                let detail = format!(
                    "nothing new starts until hold {} is released (`downbeat unpause`)",
                    h.id
                );
                emit(flag_event(*from, flag, "pause", detail));
                emit(paused(h));
            }
        }
        Effect::Stop { from, flag, reason } => {
            emit(flag_event(*from, flag, "stop", reason.clone()));
            emit(RunEvent::Stopping {
                reason: reason.clone(),
            });
        }
        Effect::Discover { from, task, .. } => {
            let id = created.next().map(ToString::to_string).unwrap_or_default();
            emit(RunEvent::Discovered {
                task: from.to_string(),
                new_task: id,
                title: task.title.clone(),
            });
        }
    }
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
