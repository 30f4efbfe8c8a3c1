//! Tasks: list, ready, show, add, update, manual status changes (through the admission gate),
//! dependencies, what is blocked.

use downbeat_core::consensus::ConsensusSpec;
use downbeat_core::ids::TaskId;
use downbeat_core::task::{Edge, EdgeKind, Status};
use downbeat_store::TaskFilter;
use serde_json::{Value, json};

use downbeat_app::answer::compact;
use downbeat_app::cache::{GraphCache, View};
use downbeat_app::error::Error;
use downbeat_app::project::Project;
use downbeat_app::tasks;
use downbeat_app::tasks::resolve;

use super::shape::{Out, ids, task_line};

/// Filters of a task list.
#[derive(Debug, Default, Clone)]
pub struct ListFilter {
    pub status: Vec<String>,
    pub role: Option<String>,
    pub tag: Option<String>,
    pub parent: Option<String>,
    pub search: Option<String>,
    pub limit: Option<u32>,
    pub all: bool,
}

pub async fn list(p: &Project, g: &GraphCache, f: &ListFilter) -> Out {
    let mut statuses = Vec::new();
    for s in &f.status {
        // `ready`, `waiting` and `stuck` are derived: all are stored as pending.
        let st = match s.as_str() {
            "ready" | "waiting" | "stuck" => Status::Pending,
            other => other
                .parse::<Status>()
                .map_err(|e| Error::invalid(e.to_string()))?,
        };
        if !statuses.contains(&st) {
            statuses.push(st);
        }
    }
    let derived: Vec<&str> = f
        .status
        .iter()
        .map(String::as_str)
        .filter(|s| matches!(*s, "ready" | "waiting" | "stuck"))
        .collect();
    let view = g.view(p).await?;
    let parent = match &f.parent {
        Some(x) => Some(resolve_in(p, &view, x).await?),
        None => None,
    };
    let wants_pending = f.status.iter().any(|s| s == "pending");
    // Whether a listed task with this stored status and shown state is left out by a derived
    // status filter (`ready`, `waiting`, `stuck`).
    let left_out = |status: Status, state: &str| {
        !derived.is_empty()
            && status == Status::Pending
            && !wants_pending
            && !derived.contains(&state)
    };
    let full = |n: usize| f.limit.is_some_and(|l| n >= l as usize);
    let mut out = Vec::new();
    if f.tag.is_none() && f.search.is_none() && !f.all {
        // Everything the filter and the lines need is in the planner's snapshot (live tasks
        // in `seq` order, as the store lists them): no second read of the tasks.
        for t in view.snap.tasks.iter().filter(|t| {
            (statuses.is_empty() || statuses.contains(&t.status))
                && f.role.as_ref().is_none_or(|r| t.role.as_ref() == Some(r))
                && parent.is_none_or(|pa| t.parent == Some(pa))
        }) {
            if full(out.len()) {
                break;
            }
            let state = view.state(t.id, t.status);
            if !left_out(t.status, &state) {
                out.push(task_line(t.into(), &state));
            }
        }
        return Ok(json!({"count": out.len(), "tasks": out}));
    }
    let filter = TaskFilter {
        statuses,
        role: f.role.clone(),
        tag: f.tag.clone(),
        parent,
        text: f.search.clone(),
        include_archived: f.all,
        limit: if derived.is_empty() { f.limit } else { None },
    };
    for t in &p.store.tasks(&filter).await? {
        if full(out.len()) {
            break;
        }
        let state = view.state(t.id, t.status);
        if !left_out(t.status, &state) {
            out.push(task_line(t.into(), &state));
        }
    }
    Ok(json!({"count": out.len(), "tasks": out}))
}

/// Ready tasks, best first (critical path first), optionally of one role.
pub async fn ready(p: &Project, g: &GraphCache, role: Option<&str>, limit: Option<u32>) -> Out {
    let view = g.view(p).await?;
    let limit = limit.map(|l| l as usize).unwrap_or(usize::MAX);
    let list: Vec<Value> = view
        .planned
        .ready
        .iter()
        .filter_map(|id| view.task(*id))
        .filter(|t| role.is_none_or(|r| t.role.as_deref() == Some(r)))
        .take(limit)
        .map(|t| {
            compact(json!({
                "id": t.id, "title": t.title, "role": t.role,
                "effort": (t.effort != 1).then_some(t.effort),
                "priority": (t.priority != Default::default()).then_some(t.priority),
            }))
        })
        .collect();
    Ok(json!({"ready": list, "total_ready": view.planned.ready.len()}))
}

/// A task reference resolved by a live task's key in `view` without a query, else by the store.
async fn resolve_in(p: &Project, view: &View, q: &str) -> Result<TaskId, Error> {
    match view.by_key(q) {
        Some(id) => Ok(id),
        None => resolve(p, q).await,
    }
}

/// One task with its dependencies, dependents, children, what it waits on and its lease: the
/// task row and its edges (those to archived tasks too) from the store, its state, children,
/// progress and what it waits on from the kept view. A task the view does not hold (archived,
/// or added since) is read with targeted queries.
pub async fn show(p: &Project, g: &GraphCache, q: &str) -> Out {
    let view = g.view(p).await?;
    let id = resolve_in(p, &view, q).await?;
    let t = p.store.task(id).await?;
    let edges = p.store.edges_of(id).await?;
    let in_view = !t.archived && view.task(id).is_some();
    let kids = if in_view {
        view.children(id).to_vec()
    } else {
        tasks::children(p, id).await?.iter().map(|c| c.id).collect()
    };
    let (state, waits_on) = if !in_view && kids.is_empty() && !t.archived {
        let waits = if t.status == Status::Pending {
            tasks::waits_on(p, &t, &edges).await?
        } else {
            Vec::new()
        };
        let state = match t.status {
            Status::Pending if waits.is_empty() => "ready".to_owned(),
            Status::Pending => "waiting".to_owned(),
            other => other.to_string(),
        };
        (state, waits)
    } else {
        let waits = match t.status {
            Status::Pending => view.waits_on(id).to_vec(),
            _ => Vec::new(),
        };
        (view.state(id, t.status), waits)
    };
    let progress = view
        .rollup()
        .get(&id)
        .filter(|r| r.is_container)
        .map(|r| format!("{}/{}", r.done, r.total));
    let edge_list = |f: &dyn Fn(&&Edge) -> bool, pick: &dyn Fn(&Edge) -> TaskId| -> Vec<String> {
        edges
            .iter()
            .filter(f)
            .map(|e| pick(e).to_string())
            .collect()
    };
    let depends_on = edge_list(&|e| e.to == id && e.kind == EdgeKind::Blocks, &|e| e.from);
    let dependents = edge_list(&|e| e.from == id && e.kind == EdgeKind::Blocks, &|e| e.to);
    let related = edge_list(
        &|e| (e.to == id || e.from == id) && e.kind == EdgeKind::Related,
        &|e| if e.to == id { e.from } else { e.to },
    );
    let discovered_from = edge_list(
        &|e| e.to == id && e.kind == EdgeKind::DiscoveredFrom,
        &|e| e.from,
    );
    let ledger = p.store.attempts(id).await?;
    // The git work of its last attempt in a worktree: branch, diff size, merge state.
    let git = ledger.iter().rev().find_map(|a| a.detail.git.clone());
    // A running task's token as its claim gave it: the epoch and the open attempt.
    let lease = if t.status == Status::Running && t.lease_holder.is_some() {
        let open = ledger
            .iter()
            .rev()
            .find(|a| a.epoch == t.lease_epoch && a.ended_at.is_none());
        let token = open.map(|a| {
            downbeat_core::ids::Fence {
                epoch: a.epoch,
                attempt: a.id,
            }
            .to_string()
        });
        Some(json!({"holder": t.lease_holder, "until": t.lease_expires, "token": token}))
    } else {
        None
    };
    Ok(compact(json!({
        "id": t.id,
        "key": t.key,
        "title": t.title,
        "description": t.description,
        "role": t.role,
        "state": state,
        "priority": t.priority,
        "effort": t.effort,
        "parent": t.parent,
        "acceptance": t.acceptance,
        "tags": t.tags,
        "files": t.footprint,
        "result": t.result,
        "depends_on": depends_on,
        "waits_on": ids(&waits_on),
        "dependents": dependents,
        "related": related,
        "discovered_from": discovered_from,
        "children": ids(&kids),
        "progress": progress,
        "attempts": (t.attempts > 0).then_some(t.attempts),
        "lease": lease,
        "git": git,
        "archived": t.archived.then_some(true),
    })))
}

/// Fields of a task to add or change.
#[derive(Debug, Default, Clone)]
pub struct Fields {
    pub title: Option<String>,
    pub description: Option<String>,
    pub role: Option<String>,
    pub parent: Option<String>,
    pub key: Option<String>,
    pub effort: Option<u32>,
    pub priority: Option<String>,
    pub acceptance: Option<Vec<String>>,
    pub tags: Option<Vec<String>>,
    pub files: Option<Vec<String>>,
    pub after: Option<Vec<String>>,
    pub executor: Option<String>,
    /// `3`, or `{"n": 3, "executors": [...], "resolver": "architect"}`.
    pub consensus: Option<Value>,
}

pub async fn add(p: &Project, f: &Fields) -> Out {
    let Some(title) = f.title.clone() else {
        return Err(Error::invalid("`title` is required to add a task"));
    };
    let consensus = f
        .consensus
        .clone()
        .map(serde_json::from_value::<ConsensusSpec>)
        .transpose()
        .map_err(|e| Error::invalid(format!("`consensus`: {e}")))?;
    let add = tasks::AddTask {
        title,
        key: f.key.clone(),
        parent: f.parent.clone(),
        after: f.after.clone().unwrap_or_default(),
        description: f.description.clone(),
        role: f.role.clone(),
        priority: f.priority.clone(),
        effort: f.effort,
        acceptance: f.acceptance.clone().unwrap_or_default(),
        tags: f.tags.clone().unwrap_or_default(),
        files: f.files.clone().unwrap_or_default(),
        executor: f.executor.clone(),
        ..Default::default()
    };
    let t = match &consensus {
        Some(spec) => downbeat_app::consensus::add(p, &add, spec).await?,
        None => tasks::add(p, &add).await?,
    };
    // An agent's own server: what it adds was discovered while working on its task.
    if let Some(own) = p.acting_for {
        tasks::set_deps(
            p,
            &t.id.to_string(),
            &[own.to_string()],
            EdgeKind::DiscoveredFrom,
            false,
        )
        .await?;
    }
    Ok(compact(json!({"id": t.id, "key": t.key})))
}

pub async fn update(p: &Project, q: &str, f: &Fields) -> Out {
    if f.key.is_some() || f.after.is_some() || f.executor.is_some() || f.consensus.is_some() {
        return Err(Error::invalid(
            "`key`, `after`, `executor` and `consensus` cannot be changed by an update (add dependencies with the dep action)",
        ));
    }
    let changes = tasks::EditTask {
        title: f.title.clone(),
        description: f.description.clone(),
        role: f.role.clone(),
        parent: f.parent.clone(),
        priority: f.priority.clone(),
        effort: f.effort,
        acceptance: f.acceptance.clone(),
        tags: f.tags.clone(),
        files: f.files.clone(),
    };
    let t = tasks::edit(p, q, &changes).await?;
    Ok(json!({"id": t.id, "updated": true}))
}

/// Moves a task through the state machine by hand (`start`, `skip`, `cancel`, `block`, …).
/// Starting or completing a task that waits on unfinished work is refused unless `force`.
pub async fn set_status(p: &Project, q: &str, to: &str, note: Option<&str>, force: bool) -> Out {
    let id = resolve(p, q).await?;
    let to = match to {
        "start" => Status::Running,
        "done" | "complete" => Status::Completed,
        "fail" => Status::Failed,
        "block" => Status::Blocked,
        "unblock" | "reopen" | "retry" => Status::Pending,
        "skip" => Status::Skipped,
        "cancel" => Status::Cancelled,
        other => other.parse::<Status>().map_err(|e| {
            Error::invalid(format!(
                "{e}; or one of start, done, fail, block, unblock, skip, cancel, reopen, retry"
            ))
        })?,
    };
    let changed = tasks::set_status(p, id, to, note, force).await?;
    Ok(json!({
        "changed": changed.iter().map(|t| json!({"id": t.id, "status": t.status})).collect::<Vec<_>>(),
    }))
}

/// Adds (or with `remove`, removes) dependencies of task `q` on each of `on`.
pub async fn dep(p: &Project, q: &str, on: &[String], kind: Option<&str>, remove: bool) -> Out {
    if on.is_empty() {
        return Err(Error::invalid("`on` needs at least one task"));
    }
    let kind = tasks::parse_edge_kind(kind.unwrap_or("blocks"))?;
    let changes = tasks::set_deps(p, q, on, kind, remove).await?;
    let Some(first) = changes.first() else {
        return Err(Error::invalid("`on` needs at least one task"));
    };
    let changed: Vec<String> = changes
        .iter()
        .filter(|c| c.changed)
        .map(|c| c.on.to_string())
        .collect();
    let mut out = json!({"task": first.task, "kind": kind});
    out[if remove { "removed" } else { "added" }] = json!(changed);
    Ok(out)
}

/// What waits, on what; what is held.
pub async fn blocked(p: &Project, g: &GraphCache) -> Out {
    let view = g.view(p).await?;
    let planned = &view.planned;
    // The held leaves' rows, for their reasons.
    let held = p
        .store
        .tasks(&TaskFilter {
            statuses: vec![Status::Failed, Status::Blocked, Status::Cancelled],
            ..Default::default()
        })
        .await?;
    let held: Vec<Value> = held
        .iter()
        .filter(|t| !view.rollup().get(&t.id).is_some_and(|r| r.is_container))
        .map(|t| compact(json!({"id": t.id, "status": t.status, "reason": t.result})))
        .collect();
    let entry = |(id, on): &(TaskId, Vec<TaskId>)| json!({"id": id, "waits_on": ids(on)});
    Ok(json!({
        "held": held,
        "stuck": planned.stuck.iter().map(entry).collect::<Vec<_>>(),
        "waiting": planned.waiting.iter().map(entry).collect::<Vec<_>>(),
    }))
}
