//! What the SQLite and PostgreSQL backends do alike, written once: decoding rows into the
//! domain types, the rules of a status write and of a task update, the payloads events carry,
//! the metrics drawn from the event log, and the resolution of task references.
//!
//! Must never: run a statement or hold a connection (the backends do that, each in its own
//! dialect and transaction discipline), nor differ in behaviour between the backends.

use std::collections::HashMap;
use std::str::FromStr;

use downbeat_core::context::{
    Actor, Decision, DecisionStatus, Event, Insight, Metrics, Objective, ObjectiveStatus,
    RunInterval, Session, parallel_rate,
};
use downbeat_core::ids::{AttemptId, LeaseEpoch, MAX_TASK_SEQ, RecordId, RecordKind, TaskId};
use downbeat_core::plan::{TaskRef, ValidatedPlan};
use downbeat_core::plan_diff::PlanChanges;
use downbeat_core::task::{
    EdgeKind, ExecSettings, Priority, Status, Task, TaskPatch, validate_fields,
};
use downbeat_core::time::{Millis, Timestamp};
use serde_json::{Value, json};
use sqlx::Row;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;

use crate::error::{Error, Result};
use crate::traits::TaskStore;
use crate::types::{AppliedPlan, AttemptRecord, WorkerRecord};

/// What both backends' modules work with, imported by each with one glob.
pub(crate) mod prelude {
    pub(crate) use std::collections::{HashMap, HashSet};
    pub(crate) use std::str::FromStr;
    pub(crate) use std::time::Duration;

    pub(crate) use async_trait::async_trait;
    pub(crate) use downbeat_core::context::{
        Actor, Artifact, Decision, DecisionStatus, Event, FlagRecord, Insight, Metrics, Objective,
        ObjectiveStatus, Session,
    };
    pub(crate) use downbeat_core::graph::{self, GraphSnapshot, GraphTask};
    pub(crate) use downbeat_core::ids::{
        AttemptId, LeaseEpoch, MAX_TASK_SEQ, RecordId, RecordKind, TaskId,
    };
    pub(crate) use downbeat_core::plan::{TaskRef, ValidatedPlan};
    pub(crate) use downbeat_core::plan_diff::PlanChanges;
    pub(crate) use downbeat_core::task::{
        Edge, EdgeKind, NewTask, Priority, Status, Task, TaskPatch, validate_fields,
    };
    pub(crate) use downbeat_core::time::{Millis, Timestamp};
    pub(crate) use serde_json::{Value, json};
    pub(crate) use sqlx::{AssertSqlSafe, QueryBuilder, Row, migrate::Migrator};

    pub(crate) use crate::error::{Error, Result};
    pub(crate) use crate::shared::{
        META_ACTOR, REMOVED_NOTE, STARTED_NOTE, bind_exec, bind_task_fields, by_prefix,
        changes_event, decision_verdict, event_task_seq, flags_sql, json_list, meta_set_event,
        moved_on, new_parent, new_tasks_cycle, objectives_of, patched, plan_events, proposed_event,
        requeue_event, requeue_reason, resolve_rest, rid, row_attempt, row_decision, row_event,
        row_flag, row_insight, row_objective, row_session, row_task, row_worker, seq, status_event,
        status_metrics, status_of, status_write, task_not_found, tid, tjson, to_json_list,
        worker_json,
    };
    pub(crate) use crate::traits::{
        ContextStore, ExecutionStore, MaintenanceStore, TaskStore, WorkerStore,
    };
    pub(crate) use crate::types::{
        AppliedPlan, AttemptRecord, Batch, BatchResult, Claimed, EventQuery, FlagFilter, Integrity,
        Landing, SchemaInfo, TaskFilter, WorkerRecord,
    };
}

// ------------------------------------------------------------------------------------------
// Values

pub(crate) fn tid(seq: i64) -> TaskId {
    // Sequence numbers are allocated by this store within range; clamp defensively.
    TaskId::from_seq(u32::try_from(seq).unwrap_or(0).min(MAX_TASK_SEQ))
        .unwrap_or(TaskId::from_seq(0).expect("0 is in range"))
}

pub(crate) fn seq(id: TaskId) -> i64 {
    i64::from(id.seq())
}

pub(crate) fn json_list(s: &str) -> Vec<String> {
    serde_json::from_str(s).unwrap_or_default()
}

pub(crate) fn to_json_list(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

pub(crate) fn status_of(s: &str) -> Result<Status> {
    Status::from_str(s).map_err(|e| Error::Database(format!("corrupt task row: {e}")))
}

pub(crate) fn rid(kind: RecordKind, n: i64) -> RecordId {
    RecordId::new(kind, n)
}

pub(crate) fn tjson(t: &Task) -> Value {
    serde_json::to_value(t).unwrap_or(Value::Null)
}

/// A worker's registration as logged.
pub(crate) fn worker_json(w: &WorkerRecord) -> Value {
    json!({"host": w.host, "pid": w.pid, "roles": w.roles, "executors": w.executors,
           "labels": w.labels, "slots": w.slots, "ttl_ms": Millis::of(w.ttl).0})
}

// ------------------------------------------------------------------------------------------
// Rows

/// A result row read by column name, whichever the backend. JSON list columns are read as
/// text (PostgreSQL selects them `::text`); a flag is an integer in SQLite, a boolean in
/// PostgreSQL.
pub(crate) trait Cols {
    fn int(&self, c: &str) -> i64;
    fn opt_int(&self, c: &str) -> Option<i64>;
    fn text(&self, c: &str) -> String;
    fn opt_text(&self, c: &str) -> Option<String>;
    fn flag(&self, c: &str) -> bool;
}

macro_rules! cols_for {
    ($row:ty, |$r:ident, $c:ident| $flag:expr) => {
        impl Cols for $row {
            fn int(&self, c: &str) -> i64 {
                self.get(c)
            }
            fn opt_int(&self, c: &str) -> Option<i64> {
                self.get(c)
            }
            fn text(&self, c: &str) -> String {
                self.get(c)
            }
            fn opt_text(&self, c: &str) -> Option<String> {
                self.get(c)
            }
            fn flag(&self, $c: &str) -> bool {
                let $r = self;
                $flag
            }
        }
    };
}

cols_for!(SqliteRow, |r, c| r.get::<i64, _>(c) != 0);
cols_for!(PgRow, |r, c| r.get::<bool, _>(c));

pub(crate) fn row_task(r: &impl Cols) -> Result<Task> {
    let ts = |c: &str| r.opt_int(c).map(Timestamp);
    Ok(Task {
        id: tid(r.int("seq")),
        key: r.opt_text("key"),
        parent: r.opt_int("parent_seq").map(tid),
        title: r.text("title"),
        description: r.text("description"),
        role: r.opt_text("role"),
        status: status_of(&r.text("status"))?,
        priority: Priority::from_rank(r.int("priority")),
        effort: u32::try_from(r.int("effort")).unwrap_or(0),
        acceptance: json_list(&r.text("acceptance")),
        tags: json_list(&r.text("tags")),
        footprint: json_list(&r.text("footprint")),
        result: r.opt_text("result"),
        created_at: Timestamp(r.int("created_at")),
        updated_at: Timestamp(r.int("updated_at")),
        started_at: ts("started_at"),
        finished_at: ts("finished_at"),
        archived: r.flag("archived"),
        exec: ExecSettings {
            executor: r.opt_text("executor"),
            timeout: r.opt_int("timeout_ms").map(|m| Millis(m).duration()),
            max_attempts: r
                .opt_int("max_attempts")
                .map(|n| u32::try_from(n).unwrap_or(1)),
        },
        attempts: u32::try_from(r.int("attempts")).unwrap_or(0),
        not_before: ts("not_before"),
        lease_holder: r.opt_text("lease_holder"),
        lease_expires: ts("lease_expires"),
        lease_epoch: LeaseEpoch(r.int("lease_epoch")),
    })
}

pub(crate) fn row_objective(r: &impl Cols, tasks: Vec<i64>) -> Result<Objective> {
    Ok(Objective {
        id: rid(RecordKind::Objective, r.int("id")),
        title: r.text("title"),
        status: ObjectiveStatus::from_str(&r.text("status"))
            .map_err(|e| Error::Database(e.to_string()))?,
        tasks: tasks.into_iter().map(tid).collect(),
        created_at: Timestamp(r.int("created_at")),
        updated_at: Timestamp(r.int("updated_at")),
    })
}

pub(crate) fn row_decision(r: &impl Cols) -> Result<Decision> {
    Ok(Decision {
        id: rid(RecordKind::Decision, r.int("id")),
        text: r.text("text"),
        why: r.text("why"),
        task: r.opt_int("task_seq").map(tid),
        supersedes: r
            .opt_int("supersedes")
            .map(|n| rid(RecordKind::Decision, n)),
        superseded_by: r
            .opt_int("superseded_by")
            .map(|n| rid(RecordKind::Decision, n)),
        created_at: Timestamp(r.int("created_at")),
        status: DecisionStatus::from_str(&r.text("status"))
            .map_err(|e| Error::Database(e.to_string()))?,
        decided_at: r.opt_int("decided_at").map(Timestamp),
        decided_why: r.text("decided_why"),
    })
}

/// The rule of accepting or rejecting a decision, written once for both backends: only a
/// proposed decision is decided, and only as accepted or rejected. `current` is its stored
/// status (`None`: no such decision). Answers the event's action.
pub(crate) fn decision_verdict(
    id: RecordId,
    current: Option<&str>,
    to: DecisionStatus,
) -> Result<&'static str> {
    let Some(current) = current else {
        return Err(Error::NotFound {
            what: "decision",
            query: id.to_string(),
        });
    };
    let action = match to {
        DecisionStatus::Accepted => "decision.accepted",
        DecisionStatus::Rejected => "decision.rejected",
        DecisionStatus::Proposed => {
            return Err(Error::Invalid(
                "a decision is decided as accepted or rejected".into(),
            ));
        }
    };
    if current != DecisionStatus::Proposed.as_str() {
        return Err(Error::Conflict(format!(
            "decision {id} is {current}, not proposed: only a proposed decision can be accepted or rejected"
        )));
    }
    Ok(action)
}

/// The payload of a `decision.proposed` event.
pub(crate) fn proposed_event(text: &str, why: &str, task: Option<i64>) -> Value {
    json!({"text": text.trim(), "why": why.trim(), "task": task.map(|s| tid(s).to_string())})
}

pub(crate) fn row_insight(r: &impl Cols) -> Insight {
    Insight {
        id: rid(RecordKind::Insight, r.int("id")),
        text: r.text("text"),
        task: r.opt_int("task_seq").map(tid),
        created_at: Timestamp(r.int("created_at")),
    }
}

pub(crate) fn row_flag(r: &impl Cols) -> downbeat_core::context::FlagRecord {
    downbeat_core::context::FlagRecord {
        id: rid(RecordKind::Flag, r.int("id")),
        task: tid(r.int("task_seq")),
        flag: r.text("flag"),
        detail: r.text("detail"),
        // Written by this crate only; an unknown word reads as still raised.
        state: r
            .text("state")
            .parse()
            .unwrap_or(downbeat_core::flags::FlagState::Raised),
        note: r.text("note"),
        follow_up: r.opt_int("follow_up_seq").map(tid),
        raised_at: Timestamp(r.int("raised_at")),
        handled_at: r.opt_int("handled_at").map(Timestamp),
    }
}

/// The statement reading flags under `f`, oldest first. Only numbers and the fixed words of
/// a state are spliced in, never text from outside.
pub(crate) fn flags_sql(f: &crate::types::FlagFilter) -> String {
    use std::fmt::Write as _;
    let mut sql = String::from("SELECT * FROM flags WHERE TRUE");
    if let Some(t) = f.task {
        let _ = write!(sql, " AND task_seq = {}", t.seq());
    }
    if let Some(t) = f.follow_up {
        let _ = write!(sql, " AND follow_up_seq = {}", t.seq());
    }
    if let Some(st) = f.state {
        let _ = write!(sql, " AND state = '{}'", st.as_str());
    }
    sql.push_str(" ORDER BY id");
    sql
}

pub(crate) fn row_session(r: &impl Cols) -> Session {
    Session {
        id: rid(RecordKind::Session, r.int("id")),
        label: r.text("label"),
        actor: r.text("actor"),
        started_at: Timestamp(r.int("started_at")),
        ended_at: r.opt_int("ended_at").map(Timestamp),
    }
}

/// An event row (`before` and `after` read as JSON text).
pub(crate) fn row_event(r: &impl Cols) -> Event {
    let parse = |s: Option<String>| s.and_then(|s| serde_json::from_str(&s).ok());
    Event {
        seq: r.int("seq"),
        at: Timestamp(r.int("at")),
        actor: r.text("actor"),
        session: r.opt_int("session_id").map(|n| rid(RecordKind::Session, n)),
        action: r.text("action"),
        entity: r.text("entity"),
        before: parse(r.opt_text("before")),
        after: parse(r.opt_text("after")),
    }
}

pub(crate) fn row_attempt(r: &impl Cols) -> AttemptRecord {
    AttemptRecord {
        id: AttemptId(r.int("id")),
        task: tid(r.int("task_seq")),
        number: u32::try_from(r.int("number")).unwrap_or(0),
        epoch: LeaseEpoch(r.int("epoch")),
        worker: r.text("worker"),
        executor: r.text("executor"),
        started_at: Timestamp(r.int("started_at")),
        ended_at: r.opt_int("ended_at").map(Timestamp),
        outcome: r.opt_text("outcome"),
        exit_code: r.opt_int("exit_code").and_then(|c| i32::try_from(c).ok()),
        error: r.opt_text("error"),
        summary: r.opt_text("summary"),
        tokens_prompt: r.opt_int("tokens_prompt"),
        tokens_completion: r.opt_int("tokens_completion"),
        detail: r
            .opt_text("detail")
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default(),
    }
}

/// A worker row; whether it is alive and what it holds each backend works out its own way.
pub(crate) fn row_worker(r: &impl Cols, alive: bool, holding: Vec<i64>) -> WorkerRecord {
    WorkerRecord {
        name: r.text("name"),
        host: r.text("host"),
        pid: r.int("pid"),
        roles: json_list(&r.text("roles")),
        executors: json_list(&r.text("executors")),
        labels: json_list(&r.text("labels")),
        slots: u32::try_from(r.int("slots")).unwrap_or(0),
        started_at: Timestamp(r.int("started_at")),
        heartbeat_at: Timestamp(r.int("heartbeat_at")),
        ttl: Millis(r.int("ttl_ms")).duration(),
        alive,
        holding: holding.into_iter().map(tid).collect(),
    }
}

/// Objectives with their tasks, from the objective rows and (objective, task) link rows.
pub(crate) fn objectives_of<R: Cols>(
    rows: &[R],
    links: impl IntoIterator<Item = (i64, i64)>,
) -> Result<Vec<Objective>> {
    let mut by: HashMap<i64, Vec<i64>> = HashMap::new();
    for (o, t) in links {
        by.entry(o).or_default().push(t);
    }
    rows.iter()
        .map(|r| row_objective(r, by.remove(&r.int("id")).unwrap_or_default()))
        .collect()
}

// ------------------------------------------------------------------------------------------
// Binding

/// Binds a task's descriptive fields after its title, in the column order both backends'
/// INSERT and UPDATE statements list them: description, role, priority, effort, acceptance,
/// tags, footprint. Works on a `NewTask` and on a `Task`.
macro_rules! bind_task_fields {
    ($q:expr, $t:expr) => {
        $q.bind(&$t.description)
            .bind(&$t.role)
            .bind(i64::from($t.priority.rank()))
            .bind(i64::from($t.effort))
            .bind($crate::shared::to_json_list(&$t.acceptance))
            .bind($crate::shared::to_json_list(&$t.tags))
            .bind($crate::shared::to_json_list(&$t.footprint))
    };
}

/// Binds execution settings (`ExecSettings`): executor, timeout_ms, max_attempts.
macro_rules! bind_exec {
    ($q:expr, $e:expr) => {
        $q.bind(&$e.executor)
            .bind($e.timeout_millis())
            .bind($e.max_attempts.map(i64::from))
    };
}

pub(crate) use {bind_exec, bind_task_fields};

// ------------------------------------------------------------------------------------------
// Rules

/// What a status write of one leaf stores besides the status.
pub(crate) struct StatusWrite {
    pub started: Option<i64>,
    pub finished: Option<i64>,
    /// `note` when given; else cleared when the task goes back to work, kept otherwise.
    pub result: Option<String>,
    /// The actor holds a task it sets running.
    pub holder: Option<String>,
}

/// Checks `before → to` against the state machine and works out the row's other fields.
pub(crate) fn status_write(
    before: &Task,
    to: Status,
    note: Option<&str>,
    actor: &Actor,
) -> Result<StatusWrite> {
    before
        .status
        .check_transition(to)
        .map_err(|source| Error::Transition {
            id: before.id,
            source,
        })?;
    let now = actor.now.0;
    let started = if to == Status::Running {
        Some(now)
    } else {
        before.started_at.map(|t| t.0)
    };
    let finished = match to {
        Status::Completed | Status::Failed | Status::Cancelled | Status::Skipped => Some(now),
        _ => None,
    };
    let result = match (note, to) {
        (Some(n), _) => Some(n.to_owned()),
        (None, Status::Pending | Status::Running) => None,
        (None, _) => before.result.clone(),
    };
    Ok(StatusWrite {
        started,
        finished,
        result,
        holder: (to == Status::Running).then(|| actor.name.clone()),
    })
}

/// The `task.status` event of a status write: (before, after).
pub(crate) fn status_event(before: &Task, after: &Task) -> (Value, Value) {
    (
        json!({"status": before.status, "result": before.result}),
        json!({"status": after.status, "result": after.result}),
    )
}

/// `before` with `patch` applied and checked. A new parent must be checked live by the
/// caller first (unless it is the task itself, refused here).
pub(crate) fn patched(before: &Task, patch: &TaskPatch) -> Result<Task> {
    let mut t = before.clone();
    if let Some(v) = &patch.title {
        t.title = v.trim().to_owned();
    }
    if let Some(v) = &patch.description {
        t.description.clone_from(v);
    }
    if let Some(v) = &patch.role {
        t.role.clone_from(v);
    }
    if let Some(v) = patch.priority {
        t.priority = v;
    }
    if let Some(v) = patch.effort {
        t.effort = v;
    }
    if let Some(v) = &patch.acceptance {
        t.acceptance.clone_from(v);
    }
    if let Some(v) = &patch.tags {
        t.tags.clone_from(v);
    }
    if let Some(v) = &patch.footprint {
        t.footprint.clone_from(v);
    }
    if let Some(v) = &patch.exec {
        t.exec.clone_from(v);
    }
    if let Some(p) = patch.parent {
        if p == Some(before.id) {
            return Err(Error::Invalid(format!(
                "task {} cannot be its own parent",
                before.id
            )));
        }
        t.parent = p;
    }
    validate_fields(&t.title, t.key.as_deref()).map_err(Error::Invalid)?;
    Ok(t)
}

/// The new parent a patch names that must be live (not the task itself: that is refused).
pub(crate) fn new_parent(id: TaskId, patch: &TaskPatch) -> Option<TaskId> {
    patch.parent.flatten().filter(|&p| p != id)
}

/// The `after` of a plan task's `task.created` event. Its fields are in the order a JSON
/// object of them is written in (by name), so the text is the one a `json!` map would give.
#[derive(serde::Serialize)]
pub(crate) struct Created<'a> {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    blocks: Vec<String>,
    #[serde(rename = "discovered-from", skip_serializing_if = "Vec::is_empty")]
    discovered_from: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<&'a str>,
    parent: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    related: Vec<String>,
    role: Option<&'a str>,
    title: &'a str,
}

impl Created<'_> {
    /// As JSON text.
    pub(crate) fn text(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// As a JSON value.
    pub(crate) fn value(&self) -> Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// The `task.created` events of a plan whose new tasks got the numbers from `base` on:
/// (entity, after), in plan order; each carries its title, role, parent, key and the tasks
/// linked to it by kind. Made one at a time as they are taken, so a plan of a million tasks
/// never holds a million of them at once.
pub(crate) fn plan_events(
    plan: &ValidatedPlan,
    base: i64,
) -> impl Iterator<Item = (String, Created<'_>)> + '_ {
    let to_seq = move |r: TaskRef| match r {
        TaskRef::New(i) => base + i as i64,
        TaskRef::Existing(id) => seq(id),
    };
    // The plan's edges by the task they end at, each task's in plan order.
    let mut by_target: Vec<usize> = (0..plan.edges.len()).collect();
    by_target.sort_by_key(|&e| to_seq(plan.edges[e].1));
    let mut next = by_target.into_iter().peekable();
    plan.tasks.iter().enumerate().map(move |(i, t)| {
        let s = base + i as i64;
        let mut after = Created {
            blocks: Vec::new(),
            discovered_from: Vec::new(),
            key: t.new.key.as_deref(),
            parent: t.parent.map(|p| tid(to_seq(p)).to_string()),
            related: Vec::new(),
            role: t.new.role.as_deref(),
            title: t.new.title.trim(),
        };
        // Every plan edge ends at a new task; one ending before this task would be skipped.
        while next.next_if(|&e| to_seq(plan.edges[e].1) < s).is_some() {}
        while let Some(e) = next.next_if(|&e| to_seq(plan.edges[e].1) == s) {
            let (from, _, kind) = plan.edges[e];
            let from = tid(to_seq(from)).to_string();
            match kind {
                EdgeKind::Blocks => after.blocks.push(from),
                EdgeKind::Related => after.related.push(from),
                EdgeKind::DiscoveredFrom => after.discovered_from.push(from),
            }
        }
        (tid(s).to_string(), after)
    })
}

/// A dependency cycle among a plan's new tasks alone ([`ValidatedPlan::own_cycle`]: their
/// indices), numbered from `base`.
pub(crate) fn new_tasks_cycle(path: Vec<usize>, base: i64) -> downbeat_core::graph::TaskCycle {
    downbeat_core::graph::TaskCycle {
        path: path.into_iter().map(|i| tid(base + i as i64)).collect(),
    }
}

/// The note on a task cancelled because it left its plan.
pub(crate) const REMOVED_NOTE: &str = "removed from the plan";

/// The note of a status a task was created in by its plan (an import's).
pub(crate) const STARTED_NOTE: &str = "imported in this status";

/// A task that a living plan's diff saw in one status and finds in another.
pub(crate) fn moved_on(id: TaskId, seen: Status, now: Status) -> Error {
    Error::Conflict(format!(
        "task {id} was {seen} when the plan's changes were computed and is {now} now; nothing was written"
    ))
}

/// The `plan.applied` payload of a living plan's changes; `record` names the `meta` entry the
/// plan's record went to (the record itself is there: for a large plan it is megabytes).
pub(crate) fn changes_event(ch: &PlanChanges, out: &AppliedPlan, cancelled: usize) -> Value {
    json!({"tasks": out.tasks.len(), "edges": out.edges, "updated": ch.updates.len(),
           "moved": ch.parents.len(), "edges_removed": ch.edges_removed.len(),
           "cancelled": cancelled, "record": ch.record.as_ref().map(|r| &r.0)})
}

/// Why a running task is requeued, for its result and its attempt's error.
pub(crate) fn requeue_reason(holder: Option<&str>, expired: bool) -> String {
    let holder = holder.unwrap_or("?");
    if expired {
        format!("lease of {holder} expired")
    } else {
        format!("holder {holder} is gone")
    }
}

/// The `task.status` event of a requeue: (before, after).
pub(crate) fn requeue_event(holder: Option<&str>, reason: &str) -> (Value, Value) {
    (
        json!({"status": "running", "holder": holder}),
        json!({"status": "pending", "result": format!("requeued: {reason}")}),
    )
}

// ------------------------------------------------------------------------------------------
// Events

/// The sequence number of the task an event is about, stored with the event so that a task's
/// history is found through an index of numbers in creation order (task ids look random).
/// An event is about a task when its entity is a task id, except for decision and session
/// events: their record ids (`d12345`, `s10000`) can have the shape of a task id.
pub(crate) fn event_task_seq(action: &str, entity: &str) -> Option<i64> {
    if action.starts_with("decision.")
        || action.starts_with("session.")
        || action.starts_with("meta.")
    {
        return None;
    }
    TaskId::parse_short(entity).map(|t| i64::from(t.seq()))
}

/// The actor of the events [`ContextStore::meta_set`](crate::ContextStore::meta_set) writes
/// (the call names none).
pub(crate) const META_ACTOR: &str = "downbeat";

/// The event [`ContextStore::meta_set`](crate::ContextStore::meta_set) appends: (action,
/// entity, after).
pub(crate) fn meta_set_event<'a>(
    key: &'a str,
    value: &str,
) -> (&'static str, &'a str, serde_json::Value) {
    ("meta.set", key, serde_json::json!({ "value": value }))
}

// ------------------------------------------------------------------------------------------
// Reading

/// Task metrics from the `task.status` events in log order, as (entity, at, status after).
/// The counts of sessions, decisions, insights and events are the caller's to fill in.
pub(crate) fn status_metrics(
    rows: impl IntoIterator<Item = (String, i64, Option<String>)>,
) -> Metrics {
    let mut m = Metrics::default();
    let mut started: HashMap<String, i64> = HashMap::new();
    let mut intervals = Vec::new();
    for (entity, at, st) in rows {
        match st.as_deref() {
            Some("running") => {
                started.insert(entity, at);
            }
            Some(s @ ("completed" | "failed")) => {
                if s == "completed" {
                    m.tasks_completed += 1;
                } else {
                    m.tasks_failed += 1;
                }
                if let Some(st) = started.remove(&entity) {
                    intervals.push(RunInterval {
                        start: Timestamp(st),
                        end: Timestamp(at),
                    });
                }
            }
            _ => {
                started.remove(&entity);
            }
        }
    }
    let finished = m.tasks_completed + m.tasks_failed;
    m.success_rate = (finished > 0).then(|| m.tasks_completed as f64 / finished as f64);
    m.parallel_execution_rate = parallel_rate(&intervals);
    m
}

/// The task an id prefix names, from up to six matching (seq, title) rows in id order: none,
/// the one, or an ambiguity listing five.
pub(crate) fn by_prefix(q: &str, rows: &[(i64, String)]) -> Result<Option<TaskId>> {
    match rows {
        [] => Ok(None),
        [(s, _)] => Ok(Some(tid(*s))),
        _ => {
            let mut candidates: Vec<String> = rows
                .iter()
                .take(5)
                .map(|(s, title)| format!("{} ({title})", tid(*s)))
                .collect();
            if rows.len() > 5 {
                candidates.push("…".into());
            }
            Err(Error::Ambiguous {
                prefix: q.to_owned(),
                candidates,
            })
        }
    }
}

pub(crate) fn task_not_found(q: &str) -> Error {
    Error::NotFound {
        what: "task",
        query: q.to_owned(),
    }
}

/// Resolves the references `out` (the keys found) lacks as ids or prefixes; unknown and
/// ambiguous ones stay out.
pub(crate) async fn resolve_rest<S: TaskStore + ?Sized>(
    store: &S,
    refs: &[String],
    out: &mut HashMap<String, TaskId>,
) -> Result<()> {
    for r in refs {
        if out.contains_key(r) {
            continue;
        }
        match store.resolve_task(r).await {
            Ok(id) => {
                out.insert(r.clone(), id);
            }
            Err(Error::NotFound { .. } | Error::Ambiguous { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// An attempt's detail as the ledger column holds it: `NULL` when there is none.
pub(crate) fn detail_json(d: &downbeat_core::attempt::AttemptDetail) -> Option<String> {
    (!d.is_empty()).then(|| serde_json::to_string(d).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    #[test]
    fn events_name_tasks_by_number_and_nothing_else() {
        use downbeat_core::ids::TaskId;
        for n in [1, 2, 77, 100_000, downbeat_core::ids::MAX_TASK_SEQ] {
            let id = TaskId::from_seq(n).unwrap().to_string();
            assert_eq!(
                super::event_task_seq("task.status", &id),
                Some(i64::from(n))
            );
            assert_eq!(
                super::event_task_seq("flag.raised", &id),
                Some(i64::from(n))
            );
        }
        // A decision or session record id may look like a task id.
        let d = "d12345";
        assert!(TaskId::parse_short(d).is_some());
        assert_eq!(super::event_task_seq("decision.added", d), None);
        assert_eq!(super::event_task_seq("session.started", "s10000"), None);
        for other in ["o3", "project", "", "abc", "a->b"] {
            assert_eq!(super::event_task_seq("hold.added", other), None, "{other}");
        }
    }
}
