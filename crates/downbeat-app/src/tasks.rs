//! Tasks as every front end names and shows them: resolving references, checking roles and
//! priorities, the status a person sees, and manual status changes through the admission gate.
//!
//! Nothing here renders for a particular front end; answers are domain types.

use std::collections::{HashMap, HashSet};

use downbeat_core::admission;
use downbeat_core::command::executor_setting;
use downbeat_core::graph::{GraphSnapshot, GraphTask, Progress};
use downbeat_core::ids::{RecordId, RecordKind, TaskId};
use downbeat_core::task::{
    Edge, EdgeKind, ExecSettings, NewTask, Priority, Status, Task, TaskPatch,
};
use downbeat_core::time::Millis;
use downbeat_store::TaskFilter;

use crate::error::Error;
use crate::project::Project;

pub use downbeat_core::command::split_command;

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

/// The pending leaves the planner tells apart: those that can start now, and those stuck
/// behind a failed, cancelled or held task (they cannot start until someone acts). The other
/// pending leaves wait on work that will finish.
#[derive(Debug, Clone, Default)]
pub struct Pending {
    pub ready: HashSet<TaskId>,
    pub stuck: HashSet<TaskId>,
}

impl Pending {
    pub fn of(planned: &downbeat_core::graph::Planned) -> Self {
        Self {
            ready: planned.ready.iter().copied().collect(),
            stuck: planned.stuck.iter().map(|(t, _)| *t).collect(),
        }
    }
}

/// The status a person should see: `ready`, `waiting` or `stuck` for pending leaves, rolled up
/// for containers, the stored status otherwise. These are the words of every front end, and of
/// `list --status`.
pub fn shown_status(t: &Task, roll: &HashMap<TaskId, Progress>, pending: &Pending) -> String {
    shown_status_of(t.id, t.status, roll, pending)
}

/// [`shown_status`] of the task `id` whose stored status is `status`.
pub fn shown_status_of(
    id: TaskId,
    status: Status,
    roll: &HashMap<TaskId, Progress>,
    pending: &Pending,
) -> String {
    match roll.get(&id) {
        Some(pr) if pr.is_container => pr.status.to_string(),
        _ if status == Status::Pending => {
            if pending.ready.contains(&id) {
                "ready".into()
            } else if pending.stuck.contains(&id) {
                "stuck".into()
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
        let t = p.store.task(id).await?;
        let edges = p.store.edges_of(id).await?;
        let waits = waits_on(p, &t, &edges).await?;
        if !waits.is_empty() {
            let mut list = Vec::with_capacity(waits.len());
            for o in &waits {
                list.push(format!("{o} ({})", p.store.task(*o).await?.title));
            }
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
    let changed = p.store.set_status(id, to, note, &p.actor().await?).await?;
    if to == Status::Completed {
        // An objective this completes is achieved; failing that is only a missed chance, taken
        // again at the next completion.
        let _ = crate::objectives::settle(p).await;
    }
    Ok(changed)
}

/// The live (non-archived) children of `id`.
pub async fn children(p: &Project, id: TaskId) -> Result<Vec<Task>, Error> {
    Ok(p.store
        .tasks(&TaskFilter {
            parent: Some(id),
            ..Default::default()
        })
        .await?)
}

/// What a leaf waits on, by the core's admission rule ([`admission::waits_on`]) applied to
/// the part of the graph that decides it, read with a few targeted queries instead of the whole
/// graph: the task, its live ancestors and their `blocks` dependencies, and each dependency
/// with its live subtree (archived tasks never hold anything back).
pub async fn waits_on(p: &Project, t: &Task, edges: &[Edge]) -> Result<Vec<TaskId>, Error> {
    let blocking = |id: TaskId, edges: Vec<Edge>| {
        edges
            .into_iter()
            .filter(move |e| e.to == id && e.kind == EdgeKind::Blocks)
    };
    let mut snap = GraphSnapshot::default();
    snap.tasks.push(GraphTask::from(t));
    snap.edges.extend(blocking(t.id, edges.to_vec()));
    let mut parent = t.parent;
    while let Some(up) = parent {
        let pt = p.store.task(up).await?;
        if pt.archived {
            break;
        }
        parent = pt.parent;
        snap.edges.extend(blocking(up, p.store.edges_of(up).await?));
        snap.tasks.push(GraphTask::from(&pt));
    }
    let mut have: HashSet<TaskId> = snap.tasks.iter().map(|g| g.id).collect();
    let deps: Vec<TaskId> = snap.edges.iter().map(|e| e.from).collect();
    for d in deps {
        if have.contains(&d) {
            continue;
        }
        let dt = p.store.task(d).await?;
        if dt.archived {
            continue;
        }
        let mut stack = vec![dt];
        while let Some(x) = stack.pop() {
            if !have.insert(x.id) {
                continue;
            }
            stack.extend(children(p, x.id).await?);
            snap.tasks.push(GraphTask::from(&x));
        }
    }
    Ok(admission::waits_on(&snap, t.id))
}

/// A task to add, as a front end received it: references, names and durations not yet checked.
#[derive(Debug, Default, Clone)]
pub struct AddTask {
    pub title: String,
    pub key: Option<String>,
    /// The container it goes under.
    pub parent: Option<String>,
    /// Tasks it waits on.
    pub after: Vec<String>,
    pub description: Option<String>,
    pub role: Option<String>,
    pub priority: Option<String>,
    pub effort: Option<u32>,
    pub acceptance: Vec<String>,
    pub tags: Vec<String>,
    /// Its footprint: the files it touches.
    pub files: Vec<String>,
    /// A named executor, or `process` with `command` or `shell`.
    pub executor: Option<String>,
    /// A program and its arguments, split like a shell would (no expansion).
    pub command: Option<String>,
    /// A command line for `sh -c`.
    pub shell: Option<String>,
    /// Per attempt (`30m`).
    pub timeout: Option<String>,
    pub max_attempts: Option<u32>,
}

/// The executor setting of a new task: a name, or an inline process spec.
fn executor_of(a: &AddTask) -> Result<Option<String>, Error> {
    executor_setting(
        a.executor.as_deref(),
        a.command.as_deref(),
        a.shell.as_deref(),
    )
    .map_err(Error::invalid)
}

/// Adds a task; every reference, role, priority and duration is checked first.
pub async fn add(p: &Project, a: &AddTask) -> Result<Task, Error> {
    if a.title.trim().is_empty() {
        return Err(Error::invalid("a task needs a title"));
    }
    if let Some(r) = &a.role {
        check_role(p, r)?;
    }
    let parent = match &a.parent {
        Some(s) => Some(resolve(p, s).await?),
        None => None,
    };
    let deps = resolve_all(p, &a.after).await?;
    let timeout = a
        .timeout
        .as_deref()
        .map(|t| Millis::parse(t).map(Millis::duration))
        .transpose()
        .map_err(|e| Error::invalid(format!("timeout: {e}")))?;
    if a.max_attempts == Some(0) {
        return Err(Error::invalid("max attempts must be at least 1"));
    }
    let new = NewTask {
        exec: ExecSettings {
            executor: executor_of(a)?,
            timeout,
            max_attempts: a.max_attempts,
        },
        key: a.key.clone(),
        parent,
        title: a.title.clone(),
        description: a.description.clone().unwrap_or_default(),
        role: a.role.clone(),
        priority: a
            .priority
            .as_deref()
            .map(parse_priority)
            .transpose()?
            .unwrap_or_default(),
        effort: a.effort.unwrap_or(1),
        acceptance: a.acceptance.clone(),
        tags: a.tags.clone(),
        footprint: a.files.clone(),
    };
    let actor = p.actor().await?;
    match p.store.create_task(&new, &deps, &actor).await {
        Ok(t) => Ok(t),
        Err(e) => Err(crate::cycles::told(p, e).await),
    }
}

/// Changes to a task's fields; `None` leaves a field as it is, and `role`/`parent` `"none"`
/// clear it.
#[derive(Debug, Default, Clone)]
pub struct EditTask {
    pub title: Option<String>,
    pub description: Option<String>,
    pub role: Option<String>,
    pub parent: Option<String>,
    pub priority: Option<String>,
    pub effort: Option<u32>,
    pub acceptance: Option<Vec<String>>,
    pub tags: Option<Vec<String>>,
    pub files: Option<Vec<String>>,
}

/// Edits task `q`; refused when nothing would change.
pub async fn edit(p: &Project, q: &str, e: &EditTask) -> Result<Task, Error> {
    let id = resolve(p, q).await?;
    let role = match e.role.as_deref() {
        None => None,
        Some("none") => Some(None),
        Some(r) => {
            check_role(p, r)?;
            Some(Some(r.to_owned()))
        }
    };
    let parent = match e.parent.as_deref() {
        None => None,
        Some("none") => Some(None),
        Some(s) => Some(Some(resolve(p, s).await?)),
    };
    let patch = TaskPatch {
        title: e.title.clone(),
        description: e.description.clone(),
        role,
        priority: e.priority.as_deref().map(parse_priority).transpose()?,
        effort: e.effort,
        acceptance: e.acceptance.clone(),
        tags: e.tags.clone(),
        footprint: e.files.clone(),
        parent,
        exec: None,
    };
    if patch.is_empty() {
        return Err(Error::invalid("nothing to change").with_hint(
            "pass at least one of title, description, role, parent, effort, priority, acceptance, tags, files",
        ));
    }
    let actor = p.actor().await?;
    match p.store.update_task(id, &patch, &actor).await {
        Ok(t) => Ok(t),
        Err(e) => Err(crate::cycles::told(p, e).await),
    }
}

/// An edge kind by its name (`blocks`, `related`, `discovered-from`).
pub fn parse_edge_kind(s: &str) -> Result<EdgeKind, Error> {
    match s {
        "blocks" => Ok(EdgeKind::Blocks),
        "related" => Ok(EdgeKind::Related),
        "discovered-from" | "discovered_from" => Ok(EdgeKind::DiscoveredFrom),
        other => Err(Error::invalid(format!(
            "unknown edge kind `{other}` (blocks, related, discovered-from)"
        ))),
    }
}

/// One dependency a [`set_deps`] call added or removed, or found as asked already.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct DepChange {
    pub task: TaskId,
    pub on: TaskId,
    pub kind: EdgeKind,
    /// False when the edge already was (or was not) there.
    pub changed: bool,
}

/// Makes task `q` depend (or, with `remove`, no longer depend) on each of `on`.
pub async fn set_deps(
    p: &Project,
    q: &str,
    on: &[String],
    kind: EdgeKind,
    remove: bool,
) -> Result<Vec<DepChange>, Error> {
    if on.is_empty() {
        return Err(Error::invalid(
            "a dependency needs at least one task to depend on",
        ));
    }
    let to = resolve(p, q).await?;
    let froms = resolve_all(p, on).await?;
    let actor = p.actor().await?;
    let mut out = Vec::with_capacity(froms.len());
    for from in froms {
        let edge = Edge { from, to, kind };
        let changed = if remove {
            p.store.remove_edge(edge, &actor).await?
        } else {
            match p.store.add_edge(edge, &actor).await {
                Ok(changed) => changed,
                Err(e) => return Err(crate::cycles::told_adding(p, e, Some((from, to))).await),
            }
        };
        out.push(DepChange {
            task: to,
            on: from,
            kind,
            changed,
        });
    }
    Ok(out)
}

/// A file recorded with a completion by hand, relative to the project root.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KeptFile {
    pub path: String,
    pub size: i64,
}

/// Completes task `id` by hand through the admission gate, recording `files` (absolute paths
/// inside the project) as its artifacts. Every file is checked before anything changes.
pub async fn complete(
    p: &Project,
    id: TaskId,
    result: Option<&str>,
    files: &[std::path::PathBuf],
    force: bool,
) -> Result<(Vec<Task>, Vec<KeptFile>), Error> {
    let root = p.root.canonicalize()?;
    let mut kept = Vec::with_capacity(files.len());
    for path in files {
        let meta = std::fs::metadata(path)
            .map_err(|e| Error::not_found(format!("artifact {}: {e}", path.display())))?;
        let canon = path.canonicalize()?;
        let rel = canon.strip_prefix(&root).map_err(|_| {
            Error::invalid(format!(
                "artifact {} is outside the project ({})",
                path.display(),
                root.display()
            ))
        })?;
        kept.push(KeptFile {
            path: rel.display().to_string(),
            size: i64::try_from(meta.len()).unwrap_or(i64::MAX),
        });
    }
    let changed = set_status(p, id, Status::Completed, result, force).await?;
    let actor = p.actor().await?;
    for f in &kept {
        p.store
            .add_artifact(id, &f.path, Some(f.size), None, &actor)
            .await?;
    }
    Ok((changed, kept))
}
