//! A completion's effects (what its report's flags and discovered work ask of the graph),
//! applied inside the transaction that records the completion: either both land or neither.
//!
//! [`apply`] walks the effects of every accepted finish of a batch in order, the same way on
//! every backend; each backend supplies the few statements it needs through [`EffectTx`], run
//! on the batch's own connection and transaction.
//!
//! Must never: decide what a report means (the core's `flags::effects` does), commit or roll
//! back (the batch does), or touch a finish that was rejected.

use downbeat_core::context::Actor;
use downbeat_core::flags::{Effect, FlagState};
use downbeat_core::ids::{RecordId, RecordKind, TaskId};
use downbeat_core::task::{Edge, EdgeKind, NewTask};
use serde_json::json;

pub(crate) use crate::effect_tx::{EffectTx, FlagRow};
use crate::error::{Error, Result};
use crate::types::Batch;
pub use crate::types::EffectsDone;

/// Whether a batch carries any effect (otherwise a backend keeps its fast path).
pub(crate) fn any(batch: &Batch) -> bool {
    batch.finishes.iter().any(|f| !f.effects.is_empty())
}

/// Applies the effects of every finish of `batch` not in `rejected`, in batch order; the
/// first that fails fails the whole batch (the caller's transaction then rolls back).
pub(crate) async fn apply(
    tx: &mut dyn EffectTx,
    batch: &Batch,
    rejected: &[TaskId],
    actor: &Actor,
) -> Result<Vec<EffectsDone>> {
    let mut out = Vec::new();
    let mut ordering = false;
    for f in &batch.finishes {
        if f.effects.is_empty() || rejected.contains(&f.task) {
            continue;
        }
        let mut done = EffectsDone {
            task: f.task,
            created: Vec::new(),
            holds: Vec::new(),
            stops: Vec::new(),
            changed: false,
            flags: Vec::new(),
            handled: Vec::new(),
        };
        let mut flag = None;
        for e in &f.effects {
            done.changed |= e.changes_graph();
            ordering |= matches!(e, Effect::Discover { blocks, .. } if !blocks.is_empty());
            apply_one(tx, e, actor, &mut done, &mut flag).await?;
        }
        if let Some(last) = flag.take() {
            last.log(tx, actor).await?;
        }
        out.push(done);
    }
    if ordering {
        tx.check_acyclic().await?;
    }
    Ok(out)
}

/// A flag recorded by the walk, whose `flag.raised` event waits for its rules' effects (the
/// follow-up they add goes into it).
struct Recorded {
    id: i64,
    task: TaskId,
    flag: String,
    detail: String,
    state: FlagState,
    note: String,
    follow_up: Option<TaskId>,
}

impl Recorded {
    async fn log(self, tx: &mut dyn EffectTx, actor: &Actor) -> Result<()> {
        let mut after = json!({
            "id": RecordId::new(RecordKind::Flag, self.id).to_string(),
            "flag": self.flag,
            "state": self.state,
        });
        if !self.detail.is_empty() {
            after["detail"] = json!(self.detail);
        }
        if !self.note.is_empty() {
            after["note"] = json!(self.note);
        }
        if let Some(f) = self.follow_up {
            after["follow_up"] = json!(f.to_string());
        }
        let entity = self.task.to_string();
        tx.event("flag.raised", &entity, None, Some(after), actor)
            .await
    }
}

/// Marks handled the flags `task` is the follow-up of, with a `flag.handled` event each (in
/// the caller's transaction): a follow-up's completion, in a batch or by hand.
pub(crate) async fn handled(
    tx: &mut dyn EffectTx,
    task: TaskId,
    actor: &Actor,
) -> Result<Vec<(RecordId, TaskId, String)>> {
    let note = format!("handled by {task}");
    let mut out = Vec::new();
    for (id, from, flag) in tx.handle_flags(task, &note, actor).await? {
        let rid = RecordId::new(RecordKind::Flag, id);
        let before = json!({"id": rid.to_string(), "state": FlagState::Raised});
        let after = json!({
            "id": rid.to_string(),
            "flag": flag,
            "state": FlagState::Handled,
            "by": task.to_string(),
        });
        tx.event(
            "flag.handled",
            &from.to_string(),
            Some(before),
            Some(after),
            actor,
        )
        .await?;
        out.push((rid, from, flag));
    }
    Ok(out)
}

async fn apply_one(
    tx: &mut dyn EffectTx,
    effect: &Effect,
    actor: &Actor,
    done: &mut EffectsDone,
    flag: &mut Option<Recorded>,
) -> Result<()> {
    match effect {
        Effect::Handled { task } => {
            done.handled.extend(handled(tx, *task, actor).await?);
        }
        Effect::RecordFlag {
            task,
            flag: name,
            detail,
            state,
            note,
        } => {
            if let Some(last) = flag.take() {
                last.log(tx, actor).await?;
            }
            let row = FlagRow {
                task: *task,
                flag: name,
                detail,
                state: *state,
                note,
            };
            let id = tx.insert_flag(&row, actor).await?;
            done.flags.push(RecordId::new(RecordKind::Flag, id));
            *flag = Some(Recorded {
                id,
                task: *task,
                flag: name.clone(),
                detail: detail.clone(),
                state: *state,
                note: note.clone(),
                follow_up: None,
            });
        }
        Effect::Unhandled { .. } | Effect::Suppressed { .. } => {}
        Effect::FollowUp {
            from, task, hold, ..
        } => {
            let id = discovered(tx, *from, task, actor).await?;
            done.created.push(id);
            if let Some(rec) = flag.as_mut().filter(|r| r.follow_up.is_none()) {
                tx.set_follow_up(rec.id, id).await?;
                rec.follow_up = Some(id);
            }
            if let Some(reason) = hold {
                done.holds
                    .push(crate::holds::add_within(tx, Some(id), reason, actor).await?);
            }
        }
        Effect::RaisePriority {
            priority, tasks, ..
        } => {
            for &t in tasks {
                let before = tx.task_for_update(t).await?;
                tx.write_priority(t, *priority, actor).await?;
                let after = tx.task(t).await?;
                let (b, a) = (tx.task_json(&before), tx.task_json(&after));
                tx.event("task.updated", &t.to_string(), Some(b), Some(a), actor)
                    .await?;
            }
        }
        Effect::Pause { reason, .. } => {
            done.holds
                .push(crate::holds::add_within(tx, None, reason, actor).await?);
        }
        Effect::Stop { reason, .. } => done.stops.push(reason.clone()),
        Effect::Discover { from, task, blocks } => {
            let id = discovered(tx, *from, task, actor).await?;
            done.created.push(id);
            for &to in blocks {
                let edge = Edge {
                    from: id,
                    to,
                    kind: EdgeKind::Blocks,
                };
                add_edge(tx, edge, actor).await?;
            }
        }
    }
    Ok(())
}

/// Creates a task found while working on `from`, linked to it by a `discovered-from` edge.
async fn discovered(
    tx: &mut dyn EffectTx,
    from: TaskId,
    new: &NewTask,
    actor: &Actor,
) -> Result<TaskId> {
    if new.parent.is_some() {
        return Err(Error::Invalid(
            "a follow-up or discovered task cannot have a parent".into(),
        ));
    }
    let id = tx.insert_task(new, actor).await?;
    let task = tx.task(id).await?;
    let after = tx.task_json(&task);
    tx.event("task.created", &id.to_string(), None, Some(after), actor)
        .await?;
    let edge = Edge {
        from,
        to: id,
        kind: EdgeKind::DiscoveredFrom,
    };
    add_edge(tx, edge, actor).await?;
    Ok(id)
}

/// Adds an edge between two live tasks with its event (the batch checks for cycles once,
/// after its last effect).
async fn add_edge(tx: &mut dyn EffectTx, edge: Edge, actor: &Actor) -> Result<()> {
    if edge.from == edge.to {
        return Err(Error::Invalid(format!(
            "task {} cannot depend on itself",
            edge.from
        )));
    }
    for end in [edge.from, edge.to] {
        if tx.task(end).await?.archived {
            return Err(Error::Invalid(format!("task {end} is archived")));
        }
    }
    if tx.insert_edge(edge, actor).await? {
        let after = json!({"from": edge.from.to_string(), "kind": edge.kind});
        tx.event("edge.added", &edge.to.to_string(), None, Some(after), actor)
            .await?;
    }
    Ok(())
}
