//! Tasks as every front end names and shows them: resolving references, checking roles and
//! priorities, the status a person sees, and manual status changes through the admission gate.
//!
//! Nothing here renders for a particular front end; answers are domain types.

use std::collections::{HashMap, HashSet};

use downbeat_core::admission;
use downbeat_core::graph::Progress;
use downbeat_core::ids::{RecordId, RecordKind, TaskId};
use downbeat_core::task::{Priority, Status, Task};

use crate::error::Error;
use crate::project::Project;

pub async fn resolve(p: &Project, s: &str) -> Result<TaskId, Error> {
    Ok(p.store.resolve_task(s).await?)
}

pub fn parse_priority(s: &str) -> Result<Priority, Error> {
    s.parse()
        .map_err(|e: downbeat_core::task::ParseEnumError| Error::invalid(e.to_string()))
}

pub fn check_role(p: &Project, r: &str) -> Result<(), Error> {
    if p.roles.contains(r) {
        Ok(())
    } else {
        Err(
            Error::invalid(format!("unknown role `{r}`")).with_hint(format!(
                "known roles: {} (add your own in .downbeat/roles/NAME.toml)",
                p.roles.names().join(", ")
            )),
        )
    }
}

pub fn record(kind: RecordKind, s: &str) -> Result<RecordId, Error> {
    RecordId::parse(kind, s).ok_or_else(|| {
        Error::invalid(format!(
            "`{s}` is not a {} id (like {}3)",
            kind.name(),
            kind.letter()
        ))
    })
}

/// The status a person should see: `ready`/`waiting` for pending leaves, rolled up for containers.
pub fn shown_status(t: &Task, roll: &HashMap<TaskId, Progress>, ready: &HashSet<TaskId>) -> String {
    shown_status_of(t.id, t.status, roll, ready)
}

/// [`shown_status`] of the task `id` whose stored status is `status`.
pub fn shown_status_of(
    id: TaskId,
    status: Status,
    roll: &HashMap<TaskId, Progress>,
    ready: &HashSet<TaskId>,
) -> String {
    match roll.get(&id) {
        Some(pr) if pr.is_container => pr.status.to_string(),
        _ if status == Status::Pending => {
            if ready.contains(&id) {
                "ready".into()
            } else {
                "waiting".into()
            }
        }
        _ => status.to_string(),
    }
}

/// Resolves every reference, in order.
pub async fn resolve_all(p: &Project, refs: &[String]) -> Result<Vec<TaskId>, Error> {
    let mut out = Vec::with_capacity(refs.len());
    for r in refs {
        out.push(resolve(p, r).await?);
    }
    Ok(out)
}

/// A manual status change (start, done, fail, block, …) through the admission gate: starting
/// or completing a task that still waits on unfinished dependencies is refused, with them
/// named, unless `force`. Returns the tasks that changed (a container moves its subtree).
pub async fn set_status(
    p: &Project,
    id: TaskId,
    to: Status,
    note: Option<&str>,
    force: bool,
) -> Result<Vec<Task>, Error> {
    if matches!(to, Status::Running | Status::Completed) && !force {
        let snap = p.store.graph().await?;
        let waits = admission::waits_on(&snap, id);
        if !waits.is_empty() {
            let list: Vec<String> = waits
                .iter()
                .map(|o| {
                    let title = snap
                        .tasks
                        .iter()
                        .find(|t| t.id == *o)
                        .map_or("?", |t| t.title.as_str());
                    format!("{o} ({title})")
                })
                .collect();
            let verb = if to == Status::Running {
                "start"
            } else {
                "complete"
            };
            return Err(Error::conflict(format!(
                "task {id} waits on unfinished work: {}",
                list.join(", ")
            ))
            .with_hint(format!(
                "finish those first, or force it to {verb} anyway (--force; `force: true` over MCP)"
            )));
        }
    }
    Ok(p.store.set_status(id, to, note, &p.actor().await?).await?)
}
