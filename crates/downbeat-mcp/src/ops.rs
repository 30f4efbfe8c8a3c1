//! What the tools do, returning compact JSON: ids and what changed, never echoes of unchanged
//! state. Every operation reads the store afresh, or the graph through the [`GraphCache`],
//! which checks the event log first; the CLI's functions are reused where they exist, and the
//! engine's for claims, prompts, artifacts and reports.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use downbeat_core::context::ObjectiveStatus;
use downbeat_core::graph;
use downbeat_core::ids::{RecordKind, TaskId};
use downbeat_core::plan::{self, PlanFormat};
use downbeat_core::report::Counts;
use downbeat_core::task::{
    Edge, EdgeKind, ExecSettings, NewTask, Priority, Status, Task, TaskPatch,
};
use downbeat_core::time::{Millis, Timestamp};
use downbeat_engine::executor::{AgentReport, DiscoveredTask};
use downbeat_engine::run::RunEvent;
use downbeat_store::{Batch, ClaimRequest, EventQuery, Finish, FinishStatus, Hold, TaskFilter};
use serde_json::{Map, Value, json};

use downbeat_app::answer::compact;
use downbeat_app::cache::{GraphCache, View};
use downbeat_app::error::{Error, Kind};
use downbeat_app::project::Project;
use downbeat_app::tasks::{check_role, parse_priority, record, resolve, resolve_all};
use downbeat_app::{context, documents, maintenance, plans, runs, tasks, views};

pub type Out = Result<Value, Error>;

fn ids(v: &[TaskId]) -> Vec<String> {
    v.iter().map(ToString::to_string).collect()
}

/// What a task list shows of a task, from a full row or from the planner's snapshot.
struct Line<'a> {
    id: TaskId,
    key: Option<&'a str>,
    title: &'a str,
    role: Option<&'a str>,
    priority: Priority,
    effort: u32,
    parent: Option<TaskId>,
}

impl<'a> From<&'a Task> for Line<'a> {
    fn from(t: &'a Task) -> Self {
        Self {
            id: t.id,
            key: t.key.as_deref(),
            title: &t.title,
            role: t.role.as_deref(),
            priority: t.priority,
            effort: t.effort,
            parent: t.parent,
        }
    }
}

impl<'a> From<&'a graph::GraphTask> for Line<'a> {
    fn from(t: &'a graph::GraphTask) -> Self {
        Self {
            id: t.id,
            key: t.key.as_deref(),
            title: &t.title,
            role: t.role.as_deref(),
            priority: t.priority,
            effort: t.effort,
            parent: t.parent,
        }
    }
}

/// A task in a list: what tells tasks apart, defaults left out.
fn task_line(t: Line<'_>, state: &str) -> Value {
    let mut o = Map::new();
    o.insert("id".into(), json!(t.id));
    if let Some(k) = t.key {
        o.insert("key".into(), json!(k));
    }
    o.insert("title".into(), json!(t.title));
    if let Some(r) = t.role {
        o.insert("role".into(), json!(r));
    }
    o.insert("state".into(), json!(state));
    if t.priority != Priority::default() {
        o.insert("priority".into(), json!(t.priority));
    }
    if t.effort != 1 {
        o.insert("effort".into(), json!(t.effort));
    }
    if let Some(pa) = t.parent {
        o.insert("parent".into(), json!(pa));
    }
    Value::Object(o)
}

// ------------------------------------------------------------------------------------------
// session

pub async fn session(p: &Project, action: &str, label: Option<&str>) -> Out {
    match action {
        "resume" => {
            let s = context::resume_session(p).await?;
            let v = views::view(p).await?;
            let brief = downbeat_core::report::brief(&v, Some(&s));
            Ok(json!({"session": s.id, "brief": brief}))
        }
        "start" => {
            let s = p
                .store
                .start_session(label.unwrap_or("session"), &p.actor().await?)
                .await?;
            Ok(json!({"session": s.id, "started": true}))
        }
        "end" => {
            let Some(s) = p.store.current_session().await? else {
                return Err(Error::not_found("no open session"));
            };
            let s = p.store.end_session(s.id, &p.actor().await?).await?;
            Ok(json!({"session": s.id, "ended": true}))
        }
        "status" => {
            let current = p.store.current_session().await?;
            let m = p.store.metrics().await?;
            Ok(json!({"session": current, "metrics": m}))
        }
        other => Err(unknown_action(other, &["resume", "start", "end", "status"])),
    }
}

pub fn unknown_action(got: &str, known: &[&str]) -> Error {
    Error::invalid(format!(
        "unknown action `{got}` (expected one of: {})",
        known.join(", ")
    ))
}

// ------------------------------------------------------------------------------------------
// plan

/// Validates a plan given as JSON (the plan-file structure) and, unless `dry`, applies it in
/// one transaction.
pub async fn plan_apply(p: &Project, plan_json: Option<&Value>, dry: bool) -> Out {
    let Some(v) = plan_json else {
        return Err(Error::invalid(
            "`plan` is required: {\"tasks\": [{\"key\": …, \"title\": …, \"role\": …, \"depends_on\": […]}], …}",
        ));
    };
    if !v.is_object() {
        return Err(Error::invalid(
            "`plan` must be a JSON object with the plan-file structure (tasks, objectives, decisions, insights, roles)",
        ));
    }
    let parsed = plan::parse(&v.to_string(), PlanFormat::Json)
        .map_err(|e| Error::invalid(format!("plan: {}", e.message)))?;
    let validated = plans::validate_plan(p, &parsed, "plan").await?;
    if dry {
        return Ok(json!({
            "valid": true,
            "tasks": validated.tasks.len(),
            "edges": validated.edges.len(),
            "objectives": validated.objectives.len(),
        }));
    }
    let plans::Applied { applied, notes } = plans::apply_plan(p, &validated).await?;
    let keys: Map<String, Value> = applied
        .tasks
        .iter()
        .filter_map(|(k, id)| k.as_ref().map(|k| (k.clone(), json!(id))))
        .collect();
    Ok(compact(json!({
        "tasks": applied.tasks.iter().map(|(_, id)| id.to_string()).collect::<Vec<_>>(),
        "keys": keys,
        "edges": applied.edges,
        "objectives": applied.objectives,
        "decisions": applied.decisions,
        "insights": applied.insights,
        "roles": validated.roles.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
        "notes": notes,
    })))
}

/// Waves, the critical path and makespan estimates: the kept plan when no makespan is asked
/// for, else the kept snapshot planned again with the worker counts.
pub async fn waves(p: &Project, g: &GraphCache, workers: &[u32]) -> Out {
    let mut settings = p.plan_settings();
    if !workers.is_empty() {
        if workers.contains(&0) {
            return Err(Error::invalid("workers must be at least 1"));
        }
        settings.workers = workers.to_vec();
    }
    let view = g.view(p).await?;
    let fresh;
    let planned = if settings.workers.is_empty() {
        &view.planned
    } else {
        fresh = graph::plan(&view.snap, &settings)
            .map_err(|c| Error::new(Kind::Conflict, c.to_string()))?;
        &fresh
    };
    Ok(json!({
        "ready": ids(&planned.ready),
        "waves": planned.waves.iter().map(|w| ids(w)).collect::<Vec<_>>(),
        "critical_path": ids(&planned.critical_path),
        "critical_path_effort": planned.critical_path_effort,
        "max_parallelism": planned.max_parallelism,
        "total_effort": planned.total_effort,
        "makespans": planned.makespans.iter().map(|(k, m)| json!({"workers": k, "makespan": m})).collect::<Vec<_>>(),
    }))
}

// ------------------------------------------------------------------------------------------
// tasks

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
        // `ready` and `waiting` are derived: both are stored as pending.
        let st = match s.as_str() {
            "ready" | "waiting" => Status::Pending,
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
        .filter(|s| matches!(*s, "ready" | "waiting"))
        .collect();
    let view = g.view(p).await?;
    let parent = match &f.parent {
        Some(x) => Some(resolve_in(p, &view, x).await?),
        None => None,
    };
    let wants_pending = f.status.iter().any(|s| s == "pending");
    // Whether a listed task with this stored status and shown state is left out by a derived
    // status filter (`ready`, `waiting`).
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

/// Live (non-archived) children of a task.
async fn children(p: &Project, id: TaskId) -> Result<Vec<Task>, Error> {
    Ok(p.store
        .tasks(&TaskFilter {
            parent: Some(id),
            ..Default::default()
        })
        .await?)
}

/// Whether `id` lets its dependents start: a leaf when completed or skipped, a container when
/// every leaf under it is (archived tasks always do). Reads only that task's subtree.
async fn satisfied(p: &Project, id: TaskId) -> Result<bool, Error> {
    let t = p.store.task(id).await?;
    if t.archived {
        return Ok(true);
    }
    let mut stack = vec![(t, children(p, id).await?)];
    while let Some((t, kids)) = stack.pop() {
        if kids.is_empty() {
            if !t.status.satisfies_dependents() {
                return Ok(false);
            }
            continue;
        }
        for k in kids {
            let grand = children(p, k.id).await?;
            stack.push((k, grand));
        }
    }
    Ok(true)
}

/// What a leaf waits on, read with a few targeted queries instead of the whole graph: the
/// unfinished `blocks` dependencies of the task and of each of its ancestors (a container's
/// dependencies hold back its whole subtree), as the planner sees them.
async fn leaf_waits_on(p: &Project, t: &Task, edges: &[Edge]) -> Result<Vec<TaskId>, Error> {
    let mut out = Vec::new();
    let mut node_edges = edges.to_vec();
    let mut node = t.id;
    let mut parent = t.parent;
    loop {
        for e in node_edges
            .iter()
            .filter(|e| e.to == node && e.kind == EdgeKind::Blocks)
        {
            if !out.contains(&e.from) && !satisfied(p, e.from).await? {
                out.push(e.from);
            }
        }
        let Some(up) = parent else { break };
        let pt = p.store.task(up).await?;
        if pt.archived {
            break;
        }
        node = up;
        parent = pt.parent;
        node_edges = p.store.edges_of(up).await?;
    }
    Ok(out)
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
        children(p, id).await?.iter().map(|c| c.id).collect()
    };
    let (state, waits_on) = if !in_view && kids.is_empty() && !t.archived {
        let waits = if t.status == Status::Pending {
            leaf_waits_on(p, &t, &edges).await?
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
    let lease = (t.status == Status::Running && t.lease_holder.is_some()).then(
        || json!({"holder": t.lease_holder, "until": t.lease_expires, "token": t.lease_epoch}),
    );
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
}

pub async fn add(p: &Project, f: &Fields) -> Out {
    let Some(title) = f.title.clone() else {
        return Err(Error::invalid("`title` is required to add a task"));
    };
    if let Some(r) = &f.role {
        check_role(p, r)?;
    }
    let parent = match &f.parent {
        Some(s) => Some(resolve(p, s).await?),
        None => None,
    };
    let deps = resolve_all(p, f.after.as_deref().unwrap_or_default()).await?;
    let new = NewTask {
        exec: ExecSettings {
            executor: f.executor.clone(),
            ..Default::default()
        },
        key: f.key.clone(),
        parent,
        title,
        description: f.description.clone().unwrap_or_default(),
        role: f.role.clone(),
        priority: f
            .priority
            .as_deref()
            .map(parse_priority)
            .transpose()?
            .unwrap_or_default(),
        effort: f.effort.unwrap_or(1),
        acceptance: f.acceptance.clone().unwrap_or_default(),
        tags: f.tags.clone().unwrap_or_default(),
        footprint: f.files.clone().unwrap_or_default(),
    };
    let t = p.store.create_task(&new, &deps, &p.actor().await?).await?;
    Ok(compact(json!({"id": t.id, "key": t.key})))
}

pub async fn update(p: &Project, q: &str, f: &Fields) -> Out {
    let id = resolve(p, q).await?;
    let role = match f.role.as_deref() {
        None => None,
        Some("none") => Some(None),
        Some(r) => {
            check_role(p, r)?;
            Some(Some(r.to_owned()))
        }
    };
    let parent = match f.parent.as_deref() {
        None => None,
        Some("none") => Some(None),
        Some(s) => Some(Some(resolve(p, s).await?)),
    };
    if f.key.is_some() || f.after.is_some() {
        return Err(Error::invalid(
            "`key` and `after` cannot be changed by an update (add dependencies with the dep action)",
        ));
    }
    let patch = TaskPatch {
        title: f.title.clone(),
        description: f.description.clone(),
        role,
        priority: f.priority.as_deref().map(parse_priority).transpose()?,
        effort: f.effort,
        acceptance: f.acceptance.clone(),
        tags: f.tags.clone(),
        footprint: f.files.clone(),
        parent,
        exec: None,
    };
    if patch.is_empty() {
        return Err(Error::invalid(
            "nothing to change: pass at least one of title, description, role, parent, effort, priority, acceptance, tags, files",
        ));
    }
    let t = p.store.update_task(id, &patch, &p.actor().await?).await?;
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
    let kind = match kind.unwrap_or("blocks") {
        "blocks" => EdgeKind::Blocks,
        "related" => EdgeKind::Related,
        "discovered-from" | "discovered_from" => EdgeKind::DiscoveredFrom,
        other => {
            return Err(Error::invalid(format!(
                "unknown edge kind `{other}` (blocks, related, discovered-from)"
            )));
        }
    };
    let to = resolve(p, q).await?;
    let froms = resolve_all(p, on).await?;
    let actor = p.actor().await?;
    let mut changed = Vec::new();
    for from in froms {
        let edge = Edge { from, to, kind };
        let did = if remove {
            p.store.remove_edge(edge, &actor).await?
        } else {
            p.store.add_edge(edge, &actor).await?
        };
        if did {
            changed.push(from.to_string());
        }
    }
    let mut out = json!({"task": to, "kind": kind});
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

// ------------------------------------------------------------------------------------------
// claims and their ends

/// Who holds claims made by this client (and worker).
pub fn holder(client: &str, worker: Option<&str>) -> String {
    match worker {
        Some(w) if !w.is_empty() => format!("mcp:{client}/{}", super::sanitize(w)),
        _ => format!("mcp:{client}"),
    }
}

fn lease_of(p: &Project, lease: Option<&str>) -> Result<Millis, Error> {
    let s = lease.or(p.config.mcp.lease.as_deref()).unwrap_or("5m");
    let m = Millis::parse(s).map_err(|e| Error::invalid(format!("lease: {e}")))?;
    if m.0 <= 0 {
        return Err(Error::invalid("lease must be longer than zero"));
    }
    Ok(m)
}

/// What a claim asks for.
#[derive(Debug, Default, Clone)]
pub struct ClaimSpec {
    pub task: Option<String>,
    pub role: Option<String>,
    pub worker: Option<String>,
    pub lease: Option<String>,
    pub prompt: bool,
}

/// Claims a ready task (the given one, else the best one, respecting role caps and file
/// footprints of running work): it becomes `running` under a new lease epoch, the fencing
/// token the end of the work must present. Two claimants never get the same task: the claim
/// is one conditional write.
pub async fn claim(p: &Project, g: &GraphCache, client: &str, c: &ClaimSpec) -> Out {
    let holder = holder(client, c.worker.as_deref());
    let lease = lease_of(p, c.lease.as_deref())?;
    if let Some(r) = &c.role {
        check_role(p, r)?;
    }
    let actor = p.actor().await?;
    // Claims whose holders stopped sending heartbeats go back to pending first.
    p.store.requeue_running(Some(p.now()), &[], &actor).await?;
    // Each candidate with the dependencies whose completion the claim is conditional on.
    // Holds (a pausing flag rule, `downbeat pause`): only their tasks may start. A hold added
    // after this read refuses the claim in the store.
    let (holds, seen) = p.store.holds_and_last().await?;
    let allowed = if holds.is_empty() {
        None
    } else {
        let view = g.view(p).await?;
        let dag = downbeat_core::graph::TaskDag::new(&view.snap, &|_| None).ok();
        downbeat_store::holds::allowed(&holds, dag.as_ref())
    };
    let candidates: Vec<(TaskId, Vec<TaskId>)> = match &c.task {
        Some(q) => {
            let named = claimable(p, q).await?;
            if let Some(h) = holds.first()
                && allowed.as_ref().is_some_and(|a| !a.contains(&named.0))
            {
                return Err(Error::new(
                    Kind::Conflict,
                    format!("task {} cannot start: {}", named.0, held(h)),
                ));
            }
            vec![named]
        }
        None => match best_ready(p, &*g.view(p).await?, &holds, allowed.as_ref(), c) {
            Ok(list) => list,
            Err(why) => return Ok(json!({"task": null, "reason": why})),
        },
    };
    let lease_until = Timestamp(p.now().0 + lease.0);
    for (id, after) in candidates.into_iter().take(32) {
        let batch = Batch {
            finishes: vec![],
            claims: vec![ClaimRequest {
                task: id,
                executor: "mcp".into(),
                after,
            }],
            holder: holder.clone(),
            lease_until,
            quiet: false,
            holds_seen: Some(seen),
        };
        let res = p.store.commit_batch(&batch, &actor).await?;
        if res.held {
            // A hold came in after the holds were read: say which.
            let why = match p.store.holds().await?.first() {
                Some(h) => held(h),
                None => "a hold was added while the task was being chosen and has ended since; claim again".into(),
            };
            if c.task.is_some() {
                return Err(Error::new(
                    Kind::Conflict,
                    format!("task {id} cannot start now: {why}"),
                ));
            }
            return Ok(json!({"task": null, "reason": why}));
        }
        let Some(got) = res.claimed.first() else {
            if c.task.is_some() {
                return Err(Error::new(
                    Kind::Conflict,
                    format!("task {id} was claimed or changed meanwhile; it is not claimable now"),
                ));
            }
            continue;
        };
        let task = p.store.task(got.task).await?;
        let prompt = if c.prompt {
            Some(render_prompt(p, &task, None).await?)
        } else {
            None
        };
        return Ok(compact(json!({
            "task": task.id,
            "key": task.key,
            "title": task.title,
            "role": task.role,
            "token": got.epoch,
            "attempt": got.number,
            "lease_until": lease_until,
            "holder": holder,
            "prompt": prompt,
        })));
    }
    Ok(
        json!({"task": null, "reason": "every candidate was claimed by someone else meanwhile; claim again"}),
    )
}

/// A task named by the claimant, checked with targeted queries: a pending live leaf whose
/// dependencies are finished. Returns it with its direct leaf dependencies.
async fn claimable(p: &Project, q: &str) -> Result<(TaskId, Vec<TaskId>), Error> {
    let id = resolve(p, q).await?;
    let t = p.store.task(id).await?;
    let conflict = |m: String| Error::new(Kind::Conflict, m);
    if t.archived {
        return Err(conflict(format!("task {id} is archived")));
    }
    if !children(p, id).await?.is_empty() {
        return Err(conflict(format!(
            "task {id} has children; claim one of its leaves"
        )));
    }
    match t.status {
        Status::Pending => {}
        Status::Running => {
            return Err(conflict(format!(
                "task {id} is already claimed by {}",
                t.lease_holder.as_deref().unwrap_or("someone")
            )));
        }
        other => return Err(conflict(format!("task {id} is {other}, not ready"))),
    }
    let edges = p.store.edges_of(id).await?;
    let waits = leaf_waits_on(p, &t, &edges).await?;
    if !waits.is_empty() {
        return Err(conflict(format!(
            "task {id} is not ready: it waits on {}",
            ids(&waits).join(", ")
        )));
    }
    let mut after = Vec::new();
    for e in edges
        .iter()
        .filter(|e| e.to == id && e.kind == EdgeKind::Blocks)
    {
        if children(p, e.from).await?.is_empty() {
            after.push(e.from);
        }
    }
    Ok((id, after))
}

/// The ready tasks a claim may take, best first (critical path first), within the role filter,
/// role caps and clear of running work's files; or why there are none.
/// Why a hold keeps a claim from starting work, and how it ends.
fn held(h: &Hold) -> String {
    match h.task {
        Some(t) => format!(
            "held: only {t} may start until it is done (hold {}: {})",
            h.id, h.reason
        ),
        None => format!(
            "paused: nothing new starts until hold {} is released with `downbeat unpause {}` ({})",
            h.id, h.id, h.reason
        ),
    }
}

fn best_ready(
    p: &Project,
    view: &View,
    holds: &[Hold],
    allowed: Option<&HashSet<TaskId>>,
    c: &ClaimSpec,
) -> Result<Vec<(TaskId, Vec<TaskId>)>, String> {
    let planned = &view.planned;
    let running: Vec<&graph::GraphTask> = view
        .snap
        .tasks
        .iter()
        .filter(|t| t.status == Status::Running && !view.has_children(t.id))
        .collect();
    // Role caps and named groups: running tasks count against their role's group.
    let caps = p.plan_settings().caps();
    let mut per_group: HashMap<u32, u32> = HashMap::new();
    for t in &running {
        if let Some(g) = t.role.as_deref().and_then(|r| caps.group_of(r)) {
            *per_group.entry(g).or_default() += 1;
        }
    }
    let list: Vec<(TaskId, Vec<TaskId>)> = planned
        .ready
        .iter()
        .filter_map(|id| view.task(*id))
        .filter(|t| c.role.is_none() || t.role == c.role)
        .filter(|t| allowed.is_none_or(|a| a.contains(&t.id)))
        .filter(|t| {
            t.role
                .as_deref()
                .and_then(|r| caps.group_of(r))
                .is_none_or(|g| per_group.get(&g).copied().unwrap_or(0) < caps.cap(g))
        })
        .filter(|t| {
            !t.footprint.iter().any(|a| {
                running.iter().any(|r| {
                    r.footprint
                        .iter()
                        .any(|b| downbeat_core::planner::footprints_overlap(a, b))
                })
            })
        })
        .map(|t| {
            let after = view
                .snap
                .edges
                .iter()
                .filter(|e| {
                    e.to == t.id && e.kind == EdgeKind::Blocks && !view.has_children(e.from)
                })
                .map(|e| e.from)
                .collect();
            (t.id, after)
        })
        .collect();
    if !list.is_empty() {
        return Ok(list);
    }
    if let Some(h) = holds.first() {
        return Err(held(h));
    }
    Err(if planned.ready.is_empty() {
        format!(
            "nothing is ready: {} running, {} waiting, {} stuck behind failed or held tasks",
            running.len(),
            planned.waiting.len(),
            planned.stuck.len()
        )
    } else {
        format!(
            "{} task(s) ready, none for this claim (role filter, role caps, group caps or file footprints of running work)",
            planned.ready.len()
        )
    })
}

/// The specialist prompt for `task`: the template of `role` (default: the task's role) with the
/// task, the objectives and the dependencies' results.
pub async fn render_prompt(p: &Project, task: &Task, role: Option<&str>) -> Result<String, Error> {
    let role = role.map(str::to_owned).or_else(|| task.role.clone());
    let template = match &role {
        Some(r) => {
            check_role(p, r)?;
            p.roles.get(r).map(|x| x.prompt.clone()).unwrap_or_default()
        }
        None => runs::DEFAULT_PROMPT.to_owned(),
    };
    let ctx = downbeat_engine::run::prompt_context(p.store.as_ref(), task).await?;
    downbeat_engine::prompt::render(role.as_deref().unwrap_or("default"), &template, &ctx)
        .map_err(|e| Error::invalid(e.to_string()))
}

pub async fn prompt(p: &Project, q: &str, role: Option<&str>) -> Out {
    let id = resolve(p, q).await?;
    let t = p.store.task(id).await?;
    Ok(json!({"task": id, "prompt": render_prompt(p, &t, role).await?}))
}

/// The end of a claimed piece of work.
#[derive(Debug, Default, Clone)]
pub struct End {
    pub task: Option<String>,
    pub token: Option<i64>,
    pub summary: Option<String>,
    pub artifacts: Vec<String>,
    pub flags: Vec<String>,
    pub discovered: Vec<DiscoveredTask>,
    pub reason: Option<String>,
    pub retry: bool,
    pub lease: Option<String>,
}

/// The claimed task and its open attempt under `token`, or why the token is stale.
async fn claimed(
    p: &Project,
    e: &End,
) -> Result<(Task, downbeat_store::AttemptRecord, i64), Error> {
    let (Some(q), Some(token)) = (&e.task, e.token) else {
        return Err(Error::invalid(
            "`task` and `token` (the fencing token the claim returned) are required",
        ));
    };
    let id = resolve(p, q).await?;
    let t = p.store.task(id).await?;
    let attempt = p
        .store
        .attempts(id)
        .await?
        .into_iter()
        .rev()
        .find(|a| a.epoch == token && a.ended_at.is_none());
    match attempt {
        Some(a) if t.status == Status::Running && t.lease_epoch == token => Ok((t, a, token)),
        _ => Err(stale(&t, token)),
    }
}

fn stale(t: &Task, token: i64) -> Error {
    let now = if t.status == Status::Running {
        format!(
            "running under token {} (held by {})",
            t.lease_epoch,
            t.lease_holder.as_deref().unwrap_or("someone")
        )
    } else {
        t.status.to_string()
    };
    Error::new(
        Kind::Conflict,
        format!(
            "stale fencing token {token} for task {}: the task is now {now}. Its lease expired, or it was claimed again, reopened or cancelled; this result was not recorded",
            t.id
        ),
    )
    .with_hint("claim the task again to work on it")
}

pub async fn heartbeat(p: &Project, e: &End) -> Out {
    let (t, _, token) = claimed(p, e).await?;
    let lease = lease_of(p, e.lease.as_deref())?;
    let holder = t.lease_holder.clone().unwrap_or_default();
    let until = Timestamp(p.now().0 + lease.0);
    let held = p.store.renew_leases(&holder, until).await?;
    if !held.contains(&(t.id, token)) {
        return Err(stale(&p.store.task(t.id).await?, token));
    }
    Ok(json!({"task": t.id, "lease_until": until}))
}

/// Completes, fails or releases claimed work under its fencing token.
pub async fn end(p: &Project, e: &End, how: &str) -> Out {
    let (t, attempt, token) = claimed(p, e).await?;
    let mut artifacts = Vec::new();
    let (status, outcome, error, summary) = match how {
        "complete" => {
            for d in &e.discovered {
                if d.title.trim().is_empty() {
                    return Err(Error::invalid("a discovered task needs a title"));
                }
                if let Some(r) = &d.role {
                    check_role(p, r)?;
                }
            }
            if let Some(f) = e.flags.iter().find(|f| f.trim().is_empty()) {
                return Err(Error::invalid(format!("empty flag `{f}`")));
            }
            for a in &e.artifacts {
                let rec = downbeat_engine::artifacts::store(&p.root, &p.dir().join("artifacts"), a)
                    .map_err(|err| Error::invalid(err.to_string()))?;
                artifacts.push(rec);
            }
            (
                FinishStatus::Completed,
                "succeeded",
                None,
                e.summary.clone(),
            )
        }
        "fail" => (
            if e.retry {
                FinishStatus::Retry {
                    not_before: p.now(),
                }
            } else {
                FinishStatus::Failed
            },
            "failed",
            Some(e.reason.clone().unwrap_or_else(|| "failed".into())),
            e.summary.clone(),
        ),
        "release" => (FinishStatus::Requeue, "released", e.reason.clone(), None),
        other => return Err(unknown_action(other, &["complete", "fail", "release"])),
    };
    let paths: Vec<String> = artifacts.iter().map(|a| a.path.clone()).collect();
    let batch = Batch {
        finishes: vec![Finish {
            task: t.id,
            epoch: token,
            attempt_id: attempt.id,
            status,
            outcome: outcome.into(),
            exit_code: None,
            error,
            summary,
            tokens: None,
            artifacts,
        }],
        claims: vec![],
        holder: t.lease_holder.clone().unwrap_or_default(),
        lease_until: p.now(),
        quiet: false,
        holds_seen: None,
    };
    let actor = p.actor().await?;
    let res = p.store.commit_batch(&batch, &actor).await?;
    if !res.rejected.is_empty() {
        return Err(stale(&p.store.task(t.id).await?, token));
    }
    let shown = match status {
        FinishStatus::Completed => "completed",
        FinishStatus::Failed => "failed",
        FinishStatus::Retry { .. } | FinishStatus::Requeue => "pending",
        FinishStatus::Cancelled => "cancelled",
    };
    let mut out = json!({"task": t.id, "status": shown, "artifacts": paths});
    if how == "complete" && (!e.flags.is_empty() || !e.discovered.is_empty()) {
        let report = AgentReport {
            status: None,
            summary: e.summary.clone(),
            artifacts: vec![],
            flags: e.flags.clone(),
            discovered: e.discovered.clone(),
        };
        let needs = !e.flags.is_empty() || e.discovered.iter().any(|d| d.blocks_dependents);
        let dependents = if needs {
            downbeat_engine::run::load_dependents(p.store.as_ref(), t.id)
                .await
                .map_err(runs::run_error)?
        } else {
            Vec::new()
        };
        let events: Mutex<Vec<RunEvent>> = Mutex::new(Vec::new());
        let emit = |ev: RunEvent| {
            if let Ok(mut v) = events.lock() {
                v.push(ev);
            }
        };
        let fx = downbeat_engine::run::apply_report(
            p.store.as_ref(),
            &p.config.rules,
            t.id,
            &t.title,
            &dependents,
            &report,
            &actor,
            &emit,
        )
        .await
        .map_err(runs::run_error)?;
        let flags: Vec<Value> = events
            .into_inner()
            .unwrap_or_default()
            .into_iter()
            .filter_map(|ev| match ev {
                RunEvent::Flag {
                    flag,
                    action,
                    detail,
                    ..
                } => Some(json!({"flag": flag, "action": action, "detail": detail})),
                _ => None,
            })
            .collect();
        out["created"] = json!(ids(&fx.created));
        out["flags"] = json!(flags);
        if let Some(s) = fx.stop {
            out["stop"] = json!(s);
        }
        if !fx.holds.is_empty() {
            out["holds"] = json!(fx.holds);
        }
    }
    Ok(compact(out))
}

// ------------------------------------------------------------------------------------------
// context: objectives, insights, decisions

pub async fn context_list(p: &Project) -> Out {
    let objectives = p.store.objectives().await?;
    let decisions = p.store.decisions().await?;
    let insights = p.store.insights().await?;
    Ok(json!({
        "objectives": objectives.iter().map(|o| compact(json!({"id": o.id, "title": o.title, "status": o.status, "tasks": ids(&o.tasks)}))).collect::<Vec<_>>(),
        "decisions": decisions.iter().map(|d| compact(json!({"id": d.id, "text": d.text, "why": d.why, "task": d.task, "supersedes": d.supersedes, "superseded_by": d.superseded_by}))).collect::<Vec<_>>(),
        "insights": insights.iter().map(|i| compact(json!({"id": i.id, "text": i.text, "task": i.task}))).collect::<Vec<_>>(),
    }))
}

fn required<'a>(v: Option<&'a str>, what: &str) -> Result<&'a str, Error> {
    v.filter(|s| !s.trim().is_empty())
        .ok_or_else(|| Error::invalid(format!("`{what}` is required")))
}

pub async fn objective_add(p: &Project, title: Option<&str>, tasks: &[String]) -> Out {
    let title = required(title, "text")?;
    let ids = resolve_all(p, tasks).await?;
    let o = p
        .store
        .add_objective(title, &ids, &p.actor().await?)
        .await?;
    Ok(json!({"id": o.id}))
}

pub async fn objective_status(p: &Project, id: Option<&str>, status: Option<&str>) -> Out {
    let id = record(RecordKind::Objective, required(id, "id")?)?;
    let status = match required(status, "status")? {
        "done" => ObjectiveStatus::Achieved,
        "drop" => ObjectiveStatus::Dropped,
        "reopen" => ObjectiveStatus::Active,
        s => s
            .parse::<ObjectiveStatus>()
            .map_err(|e| Error::invalid(e.to_string()))?,
    };
    let o = p
        .store
        .set_objective_status(id, status, &p.actor().await?)
        .await?;
    Ok(json!({"id": o.id, "status": o.status}))
}

pub async fn insight_add(p: &Project, text: Option<&str>, task: Option<&str>) -> Out {
    let text = required(text, "text")?;
    let task = match task {
        Some(t) => Some(resolve(p, t).await?),
        None => None,
    };
    let i = p.store.add_insight(text, task, &p.actor().await?).await?;
    Ok(json!({"id": i.id}))
}

pub async fn decision_add(
    p: &Project,
    text: Option<&str>,
    why: Option<&str>,
    task: Option<&str>,
    supersedes: Option<&str>,
) -> Out {
    let text = required(text, "text")?;
    let supersedes = supersedes
        .map(|s| record(RecordKind::Decision, s))
        .transpose()?;
    let task = match task {
        Some(t) => Some(resolve(p, t).await?),
        None => None,
    };
    let d = p
        .store
        .add_decision(
            text,
            why.unwrap_or_default(),
            task,
            supersedes,
            &p.actor().await?,
        )
        .await?;
    Ok(compact(json!({"id": d.id, "supersedes": d.supersedes})))
}

// ------------------------------------------------------------------------------------------
// reports

/// Progress, counts, per role, active objectives and the critical path: read from the planner's
/// snapshot and the objectives alone (not the whole project view the documents need).
pub async fn status(p: &Project, g: &GraphCache) -> Out {
    let view = g.view(p).await?;
    Ok(view.status(|| status_of(p, &view)).await?.clone())
}

async fn status_of(p: &Project, view: &View) -> Out {
    let objectives = p.store.objectives().await?;
    let c = Counts::of(
        view.snap.tasks.iter().map(|t| (t.id, t.status)),
        view.rollup(),
        &view.planned,
    );
    let roles: Map<String, Value> = views::per_role_of(
        view.snap
            .tasks
            .iter()
            .map(|t| (t.id, t.role.as_deref(), t.status)),
        view.rollup(),
    )
    .into_iter()
    .map(|(r, (d, t))| (r, json!(format!("{d}/{t}"))))
    .collect();
    let counts: Map<String, Value> = serde_json::to_value(c)
        .ok()
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, v)| k != "total" && v.as_u64() != Some(0))
        .collect();
    let objectives: Vec<Value> = objectives
        .iter()
        .filter(|o| o.status == ObjectiveStatus::Active)
        .map(|o| {
            let (d, t) = o
                .tasks
                .iter()
                .filter_map(|t| view.rollup().get(t))
                .fold((0, 0), |(d, t), p| (d + p.done, t + p.total));
            compact(json!({"id": o.id, "title": o.title, "progress": (!o.tasks.is_empty()).then(|| format!("{d}/{t}"))}))
        })
        .collect();
    Ok(compact(json!({
        "progress": format!("{}/{}", c.done(), c.total),
        "percent": (c.done() * 100).checked_div(c.total).unwrap_or(0),
        "counts": counts,
        "roles": roles,
        "objectives": objectives,
        "critical_path": ids(&view.planned.critical_path),
    })))
}

/// Texts longer than this come back as a path only.
const INLINE_LIMIT: usize = 16_000;

pub async fn synthesize(p: &Project, id: Option<&str>) -> Out {
    let (doc, target) = documents::render_synthesis(p, id).await?;
    let path = documents::write_report(&target, &doc)?;
    Ok(compact(json!({
        "path": path,
        "bytes": doc.len(),
        "text": (doc.len() <= INLINE_LIMIT).then_some(doc),
    })))
}

pub async fn handover(p: &Project) -> Out {
    let (path, doc) = documents::write_handover(p, None).await?;
    Ok(json!({"path": path, "bytes": doc.len(), "resource": "downbeat://handover"}))
}

pub async fn maintain(
    p: &Project,
    apply: bool,
    stale_after: Option<&str>,
    archive_after: Option<&str>,
) -> Out {
    let m = maintenance::maintenance(p, apply, stale_after, archive_after).await?;
    let damaged = m.integrity != downbeat_store::Integrity::default();
    Ok(compact(json!({
        "applied": apply,
        "findings": m.findings,
        "integrity": damaged.then_some(&m.integrity),
        "actions": m.actions,
    })))
}

pub async fn attempts(p: &Project, q: &str) -> Out {
    let id = resolve(p, q).await?;
    let list = p.store.attempts(id).await?;
    Ok(json!({
        "task": id,
        "attempts": list.iter().map(|a| compact(json!({
            "number": a.number, "token": a.epoch, "worker": a.worker, "executor": a.executor,
            "started_at": a.started_at, "ended_at": a.ended_at, "outcome": a.outcome,
            "error": a.error, "summary": a.summary,
        }))).collect::<Vec<_>>(),
    }))
}

pub async fn log(p: &Project, since: Option<&str>, task: Option<&str>, limit: Option<u32>) -> Out {
    let since = match since {
        None => None,
        Some(s) => Some(match Timestamp::parse_rfc3339(s) {
            Some(t) => t,
            None => p.now().saturating_sub(
                Millis::parse(s).map_err(|e| Error::invalid(format!("since: {e}")))?,
            ),
        }),
    };
    let task = match task {
        Some(t) => Some(resolve(p, t).await?),
        None => None,
    };
    let events = p
        .store
        .events(&EventQuery {
            since,
            task,
            limit: Some(limit.unwrap_or(50).min(1000)),
            ..Default::default()
        })
        .await?;
    Ok(json!({"events": events.iter().map(|e| compact(json!({
        "seq": e.seq, "at": e.at, "actor": e.actor, "action": e.action, "entity": e.entity, "after": e.after,
    }))).collect::<Vec<_>>()}))
}

pub async fn metrics(p: &Project) -> Out {
    Ok(serde_json::to_value(p.store.metrics().await?).unwrap_or(Value::Null))
}

pub fn roles(p: &Project, name: Option<&str>) -> Out {
    match name {
        Some(n) => {
            let r = p.roles.get(n).ok_or_else(|| {
                Error::not_found(format!(
                    "no role `{n}` (known: {})",
                    p.roles.names().join(", ")
                ))
            })?;
            Ok(compact(json!({
                "name": r.name, "description": r.description, "prompt": r.prompt,
                "max_parallel": r.max_parallel, "source": r.source,
            })))
        }
        None => Ok(json!({"roles": p.roles.iter().map(|r| compact(json!({
            "name": r.name, "description": r.description, "max_parallel": r.max_parallel,
        }))).collect::<Vec<_>>()})),
    }
}

pub async fn graph_text(p: &Project, format: Option<&str>) -> Out {
    let format = match format.unwrap_or("mermaid") {
        "mermaid" => views::GraphFormat::Mermaid,
        "dot" => views::GraphFormat::Dot,
        other => {
            return Err(Error::invalid(format!(
                "unknown graph format `{other}` (mermaid, dot)"
            )));
        }
    };
    let v = views::view(p).await?;
    Ok(json!({"graph": views::render_graph(&v, format)}))
}
