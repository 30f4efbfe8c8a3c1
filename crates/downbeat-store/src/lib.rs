//! Durable state of Downbeat behind one trait, [`Store`].
//!
//! Every mutating call is one transaction that also appends to the event log, so the log and
//! the state never disagree. Status changes are checked against the core state machine and new
//! `blocks` edges against cycles *inside* that transaction, so concurrent writers cannot race
//! past a check. Backends: [`sqlite`] (embedded, the default) and [`postgres`] (shared by
//! several processes on several machines). The `contract` suite (behind the `contract-tests`
//! feature, which this crate's own tests enable) states what every backend must do; each
//! backend runs it. [`transfer`] moves a whole project from one database to another.
//!
//! Must never: read the environment or configuration files, print, or decide policy (which
//! tasks are stale, what to archive): callers pass those decisions in.

use std::collections::HashMap;

use async_trait::async_trait;
pub use downbeat_core::context::Artifact;
use downbeat_core::context::{
    Actor, Decision, Event, Insight, Metrics, Objective, ObjectiveStatus, Session,
};
use downbeat_core::graph::{GraphSnapshot, TaskCycle};
use downbeat_core::ids::{RecordId, TaskId};
use downbeat_core::plan::{PlanErrors, ValidatedPlan};
use downbeat_core::task::{Edge, NewTask, Status, Task, TaskPatch, TransitionError};
use downbeat_core::time::Timestamp;
use serde::Serialize;

#[cfg(feature = "contract-tests")]
pub mod contract;
pub mod effects;
pub mod holds;
pub mod postgres;
mod shared;
pub mod sqlite;
pub mod transfer;
pub mod view;

pub use effects::EffectsDone;
pub use holds::Hold;
pub use transfer::Transfer;

/// What can go wrong in a store call.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no {what} matches `{query}`")]
    NotFound { what: &'static str, query: String },
    #[error("`{prefix}` is ambiguous: it matches {}", candidates.join(", "))]
    Ambiguous {
        prefix: String,
        candidates: Vec<String>,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("task {id}: {source}")]
    Transition {
        id: TaskId,
        #[source]
        source: TransitionError,
    },
    #[error(transparent)]
    Cycle(#[from] TaskCycle),
    #[error(transparent)]
    Plan(#[from] PlanErrors),
    #[error(
        "the database schema (version {found}) is newer than this downbeat understands (up to {supported})"
    )]
    SchemaTooNew { found: i64, supported: i64 },
    #[error("cannot open the database at {location}: {message}")]
    Open { location: String, message: String },
    #[error("the database is read-only: {0}")]
    ReadOnly(String),
    #[error("database error: {0}")]
    Database(String),
    /// The database server could not be reached or the connection broke (a restart, a
    /// network failure). Whether a write in flight was committed is unknown; the next call
    /// reconnects.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A project can only be moved into an empty database.
    #[error("the database {location} is not empty: it holds {holds}")]
    NotEmpty { location: String, holds: String },
    /// Moving a project needs both databases at the same schema version.
    #[error(
        "the source database is at schema version {from_version} and the target at version {to_version}; both must be at the same version"
    )]
    SchemaMismatch { from_version: i64, to_version: i64 },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Filters for [`TaskStore::tasks`]; empty means everything live.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskFilter {
    pub statuses: Vec<Status>,
    pub role: Option<String>,
    pub tag: Option<String>,
    pub parent: Option<TaskId>,
    /// Case-insensitive substring of title or description.
    pub text: Option<String>,
    pub include_archived: bool,
    pub limit: Option<u32>,
}

/// Filters for [`ContextStore::events`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventQuery {
    pub since: Option<Timestamp>,
    pub after_seq: Option<i64>,
    /// Only the events about this task (those whose entity is its id).
    pub task: Option<TaskId>,
    /// Leave out events by this actor.
    pub exclude_actor: Option<String>,
    pub limit: Option<u32>,
}

/// What [`TaskStore::apply_plan`] created.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AppliedPlan {
    /// In plan order (parents first): (key, id).
    pub tasks: Vec<(Option<String>, TaskId)>,
    pub edges: usize,
    pub objectives: Vec<RecordId>,
    pub decisions: Vec<RecordId>,
    pub insights: Vec<RecordId>,
}

/// A request to claim a ready task for one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRequest {
    pub task: TaskId,
    /// Name of the executor, for the attempt ledger.
    pub executor: String,
    /// Claim only if all these tasks are completed or skipped at commit time (lets a runner
    /// claim a dependent in the same transaction that completes its dependency).
    pub after: Vec<TaskId>,
}

/// A successful claim: the task is `running` under this lease epoch (the fencing token).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Claimed {
    pub task: TaskId,
    pub epoch: i64,
    pub attempt_id: i64,
    /// 1 for the first attempt.
    pub number: u32,
}

/// Where a finished attempt leaves its task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishStatus {
    Completed,
    Failed,
    /// Back to `pending`, eligible again at `not_before` (a retry after a failure).
    Retry {
        not_before: Timestamp,
    },
    /// Back to `pending` at once (the run was interrupted; the attempt does not count as failed).
    Requeue,
    Cancelled,
}

/// A file recorded with an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactRecord {
    pub path: String,
    pub size: i64,
    pub sha256: String,
}

/// The end of one attempt, to record under the fencing token it was claimed with.
#[derive(Debug, Clone, PartialEq)]
pub struct Finish {
    pub task: TaskId,
    pub epoch: i64,
    pub attempt_id: i64,
    pub status: FinishStatus,
    /// `succeeded`, `failed`, `timed-out`, `cancelled`, `error`, `lost`.
    pub outcome: String,
    pub exit_code: Option<i32>,
    pub error: Option<String>,
    pub summary: Option<String>,
    pub tokens: Option<(i64, i64)>,
    pub artifacts: Vec<ArtifactRecord>,
    /// What the task's report asks of the graph (flag rules, discovered work), applied in the
    /// same transaction when, and only when, this finish is accepted. Dropped with a rejected
    /// finish; one that fails (a task that does not exist, a cycle) fails the whole batch.
    pub effects: Vec<downbeat_core::flags::Effect>,
}

/// What an accepted [`Finish`] writes to its task row, the same on every backend.
pub(crate) struct Landing {
    pub status: Status,
    /// Set for a retry.
    pub not_before: Option<i64>,
    /// `now` when the task ends for good (completed, failed, cancelled).
    pub finished: Option<i64>,
    /// The summary, else the error where the task did not succeed.
    pub result: Option<String>,
}

impl Finish {
    pub(crate) fn landing(&self, now: i64) -> Landing {
        let (status, not_before) = match self.status {
            FinishStatus::Completed => (Status::Completed, None),
            FinishStatus::Failed => (Status::Failed, None),
            FinishStatus::Retry { not_before } => (Status::Pending, Some(not_before.0)),
            FinishStatus::Requeue => (Status::Pending, None),
            FinishStatus::Cancelled => (Status::Cancelled, None),
        };
        let finished = matches!(
            status,
            Status::Completed | Status::Failed | Status::Cancelled
        )
        .then_some(now);
        let result = match (&self.summary, &self.error, status) {
            (Some(s), _, _) => Some(s.clone()),
            (None, Some(e), Status::Failed | Status::Pending | Status::Cancelled) => {
                Some(e.clone())
            }
            _ => None,
        };
        Landing {
            status,
            not_before,
            finished,
            result,
        }
    }
}

/// State changes of the engine, committed together in one transaction (group commit).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    pub finishes: Vec<Finish>,
    pub claims: Vec<ClaimRequest>,
    /// Holder and expiry of the leases taken by `claims`.
    pub holder: String,
    pub lease_until: Timestamp,
    /// Nothing in this batch is work another runner could take (its completions' dependents
    /// are claimed in it or still blocked): listeners are not woken, and see the changes the
    /// next time they look.
    pub quiet: bool,
    /// The number of the last hold the claimer knew of when it chose `claims`
    /// ([`ExecutionStore::holds_and_last`]). When a later hold exists, no
    /// claim of the batch is taken ([`BatchResult::held`]): work chosen before a hold was seen
    /// does not start under it. `None`: no check (the claimer looked at holds otherwise).
    pub holds_seen: Option<u32>,
}

/// What a [`Batch`] did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchResult {
    pub claimed: Vec<Claimed>,
    /// Claims refused because the task was no longer claimable (taken, changed, not yet due).
    pub not_claimed: Vec<TaskId>,
    /// Finishes refused because the lease was lost (the fencing token no longer matches).
    pub rejected: Vec<TaskId>,
    /// A hold later than [`Batch::holds_seen`] exists: every claim is in `not_claimed`. The
    /// claimer reads the holds again and chooses anew.
    pub held: bool,
    /// What the effects of the accepted finishes did: one entry per accepted finish with
    /// effects, in batch order.
    pub effects: Vec<EffectsDone>,
}

/// One row of the attempt ledger.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttemptRecord {
    pub id: i64,
    pub task: TaskId,
    pub number: u32,
    pub epoch: i64,
    pub worker: String,
    pub executor: String,
    pub started_at: Timestamp,
    pub ended_at: Option<Timestamp>,
    pub outcome: Option<String>,
    pub exit_code: Option<i32>,
    pub error: Option<String>,
    pub summary: Option<String>,
    pub tokens_prompt: Option<i64>,
    pub tokens_completion: Option<i64>,
}

/// A worker process that claims tasks from the database.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkerRecord {
    /// Unique; also the lease holder of the tasks it claims.
    pub name: String,
    pub host: String,
    pub pid: i64,
    /// What it takes: empty lists mean anything.
    pub roles: Vec<String>,
    pub executors: Vec<String>,
    pub labels: Vec<String>,
    pub slots: u32,
    pub started_at: Timestamp,
    pub heartbeat_at: Timestamp,
    /// It counts as alive while its last heartbeat is younger than this.
    pub ttl_ms: i64,
    /// Filled in by [`WorkerStore::workers`].
    pub alive: bool,
    /// Filled in by [`WorkerStore::workers`]: the tasks it holds leases on.
    pub holding: Vec<TaskId>,
}

/// Wakes a waiting process when another one commits a change.
#[async_trait]
pub trait ChangeFeed: Send {
    /// Returns when a change was committed since the last call (possibly by this process).
    async fn changed(&mut self) -> Result<()>;
}

/// Schema facts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SchemaInfo {
    pub backend: &'static str,
    pub version: i64,
    /// Where the database lives, without credentials.
    pub location: String,
    /// Backup written before the last migration on this open, if any.
    pub backup: Option<String>,
}

/// Rows the integrity check found.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Integrity {
    /// Edges whose endpoint task does not exist.
    pub dangling_edges: Vec<(i64, i64, String)>,
    /// Tasks whose parent does not exist: (task, missing parent seq).
    pub orphans: Vec<(TaskId, i64)>,
    /// Context rows pointing at missing tasks: (record, missing task seq).
    pub dangling_links: Vec<(String, i64)>,
}

/// The durable state of one project: every part below, as one trait object
/// (`&dyn Store`, `Box<dyn Store>`, `Arc<dyn Store>`). Implemented for every type that
/// implements the parts; methods of the parts are callable on a `dyn Store` without importing
/// them.
pub trait Store:
    TaskStore + ContextStore + ExecutionStore + WorkerStore + MaintenanceStore
{
}

impl<T> Store for T where
    T: TaskStore + ContextStore + ExecutionStore + WorkerStore + MaintenanceStore + ?Sized
{
}

/// Tasks, their edges and the graph the planner reads.
#[async_trait]
pub trait TaskStore: Send + Sync {
    /// Inserts a whole validated plan in one transaction; fails (writing nothing) on a cycle
    /// formed together with existing edges, or a key taken meanwhile.
    async fn apply_plan(&self, plan: &ValidatedPlan, actor: &Actor) -> Result<AppliedPlan>;
    /// Creates one task, blocked by `deps`.
    async fn create_task(&self, new: &NewTask, deps: &[TaskId], actor: &Actor) -> Result<Task>;
    async fn update_task(&self, id: TaskId, patch: &TaskPatch, actor: &Actor) -> Result<Task>;
    /// Moves a task through the state machine. On a container, `cancelled` and `skipped`
    /// apply to every open descendant; other statuses are refused (containers roll up).
    /// Returns every task changed.
    async fn set_status(
        &self,
        id: TaskId,
        to: Status,
        note: Option<&str>,
        actor: &Actor,
    ) -> Result<Vec<Task>>;
    async fn task(&self, id: TaskId) -> Result<Task>;
    /// Resolves a key, a full short id, or a unique id prefix.
    async fn resolve_task(&self, query: &str) -> Result<TaskId>;
    /// Resolves many references at once (keys or ids); unknown ones are absent from the map.
    async fn lookup_tasks(&self, refs: &[String]) -> Result<HashMap<String, TaskId>>;
    /// Which of `keys` are already task keys (one query, whatever the number of keys).
    async fn keys_in_use(&self, keys: &[String]) -> Result<std::collections::HashSet<String>>;
    async fn tasks(&self, filter: &TaskFilter) -> Result<Vec<Task>>;
    async fn task_count(&self) -> Result<u64>;

    // --- edges and the graph ---
    /// Adds an edge; a `blocks` edge that would close a cycle is refused with the path.
    /// Returns false if it already existed.
    async fn add_edge(&self, edge: Edge, actor: &Actor) -> Result<bool>;
    /// Returns false if there was no such edge.
    async fn remove_edge(&self, edge: Edge, actor: &Actor) -> Result<bool>;
    /// Edges touching a task (both directions).
    async fn edges_of(&self, id: TaskId) -> Result<Vec<Edge>>;
    /// All live tasks and their edges, for the planner.
    async fn graph(&self) -> Result<GraphSnapshot>;
    /// Every edge between live (non-archived) tasks, for callers that already hold the tasks.
    async fn edges(&self) -> Result<Vec<Edge>>;
}

/// The session context (sessions, objectives, insights, decisions, artifacts), the event log
/// and the `meta` settings.
#[async_trait]
pub trait ContextStore: Send + Sync {
    /// Starts a session, ending any open one.
    async fn start_session(&self, label: &str, actor: &Actor) -> Result<Session>;
    async fn end_session(&self, id: RecordId, actor: &Actor) -> Result<Session>;
    async fn current_session(&self) -> Result<Option<Session>>;
    async fn sessions(&self) -> Result<Vec<Session>>;
    async fn add_objective(
        &self,
        title: &str,
        tasks: &[TaskId],
        actor: &Actor,
    ) -> Result<Objective>;
    async fn set_objective_status(
        &self,
        id: RecordId,
        status: ObjectiveStatus,
        actor: &Actor,
    ) -> Result<Objective>;
    async fn objectives(&self) -> Result<Vec<Objective>>;
    async fn add_insight(&self, text: &str, task: Option<TaskId>, actor: &Actor)
    -> Result<Insight>;
    async fn insights(&self) -> Result<Vec<Insight>>;
    /// Records a decision; `supersedes` must name an existing decision not yet superseded.
    async fn add_decision(
        &self,
        text: &str,
        why: &str,
        task: Option<TaskId>,
        supersedes: Option<RecordId>,
        actor: &Actor,
    ) -> Result<Decision>;
    async fn decisions(&self) -> Result<Vec<Decision>>;
    async fn add_artifact(
        &self,
        task: TaskId,
        path: &str,
        size: Option<i64>,
        sha256: Option<&str>,
        actor: &Actor,
    ) -> Result<Artifact>;
    async fn artifacts(&self) -> Result<Vec<Artifact>>;

    // --- log and meta ---
    async fn events(&self, q: &EventQuery) -> Result<Vec<Event>>;
    /// Appends an event that is not a side effect of another call (e.g. `handover.written`).
    async fn record_event(
        &self,
        action: &str,
        entity: &str,
        after: Option<serde_json::Value>,
        actor: &Actor,
    ) -> Result<i64>;
    /// Highest event sequence number, 0 when empty.
    async fn last_event_seq(&self) -> Result<i64>;
    /// Figures derived from the event log alone.
    async fn metrics(&self) -> Result<Metrics>;
    async fn meta_get(&self, key: &str) -> Result<Option<String>>;
    /// Sets `key` to `value` and logs `meta.set` (entity: the key, after: `{"value": …}`) in
    /// the same transaction. The call carries no actor or clock: the event is written by
    /// `downbeat` at the time of the log's latest event (0 on an empty log), so a project run
    /// on a fixed clock logs the same thing every time. Meta values are project bookkeeping
    /// (counters, sequence numbers), never credentials.
    async fn meta_set(&self, key: &str, value: &str) -> Result<()>;
    /// Sets `key` to `new` only if its value is still `expected` (`None`: not set), and appends
    /// the event `action` on `entity` in the same transaction. Returns whether it did.
    #[allow(clippy::too_many_arguments)]
    async fn meta_swap(
        &self,
        key: &str,
        expected: Option<&str>,
        new: &str,
        action: &str,
        entity: &str,
        after: Option<serde_json::Value>,
        actor: &Actor,
    ) -> Result<bool>;
}

/// Running work: batches of finishes and claims, leases, the ready set's fast path, the
/// attempt ledger, and holds (kept in `meta`, see `holds.rs`).
#[async_trait]
pub trait ExecutionStore: TaskStore + ContextStore {
    /// Finishes attempts (refusing those whose fencing token is stale) and claims ready tasks,
    /// all in one transaction. A claim succeeds only for a `pending`, live task whose retry
    /// time has come; it sets `running`, a lease, a new epoch and an attempt row.
    async fn commit_batch(&self, batch: &Batch, actor: &Actor) -> Result<BatchResult>;
    /// Extends every lease `holder` has to `until`; returns the tasks it still holds (a task
    /// missing from the answer was taken away: cancelled, reopened or re-leased).
    async fn renew_leases(&self, holder: &str, until: Timestamp) -> Result<Vec<(TaskId, i64)>>;
    /// Puts running tasks back to `pending` whose lease expired before `expired_before`, or
    /// whose holder is one of `holders`; their open attempts end as `lost`. One event each.
    async fn requeue_running(
        &self,
        expired_before: Option<Timestamp>,
        holders: &[String],
        actor: &Actor,
    ) -> Result<Vec<TaskId>>;
    /// Up to `limit` pending, live leaf tasks that can start at `now`, highest priority first,
    /// judged by a direct look at the `blocks` edges into them and into their ancestors: a
    /// quick start for a runner before it has loaded the whole graph. Conservative: a task
    /// blocked by a container (or by an unfinished task) is left out.
    async fn ready_tasks(&self, limit: u32, now: Timestamp) -> Result<Vec<Task>>;
    /// A feed of committed changes, where the backend has one (PostgreSQL: LISTEN/NOTIFY);
    /// `None` means callers poll.
    async fn change_feed(&self) -> Result<Option<Box<dyn ChangeFeed>>> {
        Ok(None)
    }
    /// Holders of running tasks with leases (to detect dead local runners).
    async fn lease_holders(&self) -> Result<Vec<String>>;
    /// The attempt ledger of a task, oldest first.
    async fn attempts(&self, task: TaskId) -> Result<Vec<AttemptRecord>>;

    // --- holds (see `holds.rs`) ---
    /// The holds in force: nothing but their tasks may start while there are any.
    async fn holds(&self) -> Result<Vec<Hold>> {
        holds::active(self).await
    }
    /// The holds in force and the number of the last hold given out (0: none yet), in force
    /// or not, from one read: the number is what a claimer that chose by these holds passes
    /// as [`Batch::holds_seen`].
    async fn holds_and_last(&self) -> Result<(Vec<Hold>, u32)> {
        holds::active_and_last(self).await
    }
    /// Holds back all work but `task` (`None`: all work) until `task` ends or the hold is
    /// released. Logged as `hold.added`.
    async fn add_hold(&self, task: Option<TaskId>, reason: &str, actor: &Actor) -> Result<Hold> {
        holds::add(self, task, reason, actor).await
    }
    /// Releases the hold numbered `id`, or every hold (`None`); returns those released.
    /// Logged as `hold.released`.
    async fn release_holds(&self, id: Option<u32>, actor: &Actor) -> Result<Vec<Hold>> {
        holds::release(self, id, actor).await
    }
}

/// Worker processes that claim tasks from a shared database.
#[async_trait]
pub trait WorkerStore: Send + Sync {
    /// Records a worker (replacing one of the same name) with a fresh heartbeat; logs
    /// `worker.registered`.
    async fn register_worker(&self, w: &WorkerRecord, actor: &Actor) -> Result<()>;
    /// Renews a worker's heartbeat (on the database's clock where it has one); false when no
    /// such worker is registered.
    async fn worker_heartbeat(&self, name: &str, now: Timestamp) -> Result<bool>;
    /// Removes a worker; logs `worker.deregistered` with `reason`. False if it was not there.
    async fn deregister_worker(&self, name: &str, reason: &str, actor: &Actor) -> Result<bool>;
    /// Registered workers, with whether each is alive at `now` (the database's clock where it
    /// has one) and what it holds.
    async fn workers(&self, now: Timestamp) -> Result<Vec<WorkerRecord>>;
}

/// Schema facts, integrity checks and repairs, archiving, compaction.
#[async_trait]
pub trait MaintenanceStore: Send + Sync {
    fn info(&self) -> SchemaInfo;
    async fn integrity(&self) -> Result<Integrity>;
    /// Deletes the given dangling edges and clears the given orphans' parents and the given
    /// dangling links; one event per fix.
    async fn repair(&self, fix: &Integrity, actor: &Actor) -> Result<usize>;
    /// Marks tasks archived (hidden from plans and lists, still satisfying dependents): completed
    /// or skipped leaves, and containers whose children are all archived; other tasks are left
    /// alone. One event each; returns how many changed.
    async fn archive(&self, ids: &[TaskId], actor: &Actor) -> Result<usize>;
    /// Compacts and optimises the storage.
    async fn optimize(&self) -> Result<()>;
}

/// Opens the store a URL names: `sqlite:PATH` (or a bare path ending in `.db`), or
/// `postgres://…` / `postgresql://…` (see [`postgres`] for the parameters, `schema=NAME` among
/// them). With `create`, a missing database (SQLite file, PostgreSQL schema) is created.
pub async fn open(url: &str, create: bool) -> Result<Box<dyn Store>> {
    let store: Box<dyn Store> = open_transfer(url, create).await?;
    Ok(store)
}

/// [`open`], with the [`Transfer`] half of the store (export and import of whole projects).
pub async fn open_transfer(url: &str, create: bool) -> Result<Box<dyn Transfer>> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Box::new(postgres::PostgresStore::open(url, create).await?));
    }
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    Ok(Box::new(
        sqlite::SqliteStore::open(std::path::Path::new(path), create).await?,
    ))
}

/// A URL with any password (in the user info or a `password=` / `sslpassword=` parameter)
/// replaced by `***`, safe to print.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    let mut out = match rest.rsplit_once('@') {
        Some((auth, host)) => {
            let user = auth.split(':').next().unwrap_or("");
            if auth.contains(':') {
                format!("{scheme}://{user}:***@{host}")
            } else {
                format!("{scheme}://{user}@{host}")
            }
        }
        None => format!("{scheme}://{rest}"),
    };
    if let Some(q) = query {
        let pairs: Vec<String> = q
            .split('&')
            .map(|p| match p.split_once('=') {
                Some((k @ ("password" | "sslpassword"), _)) => format!("{k}=***"),
                _ => p.to_owned(),
            })
            .collect();
        out.push('?');
        out.push_str(&pairs.join("&"));
    }
    out
}

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

/// The actor of the events [`ContextStore::meta_set`] writes (the call names none).
pub(crate) const META_ACTOR: &str = "downbeat";

/// The event [`ContextStore::meta_set`] appends: (action, entity, after).
pub(crate) fn meta_set_event<'a>(
    key: &'a str,
    value: &str,
) -> (&'static str, &'a str, serde_json::Value) {
    ("meta.set", key, serde_json::json!({ "value": value }))
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

    #[test]
    fn passwords_never_show() {
        assert_eq!(
            super::redact_url("postgres://bob:s3cret@db/x"),
            "postgres://bob:***@db/x"
        );
        assert_eq!(
            super::redact_url("postgres://bob@db/x"),
            "postgres://bob@db/x"
        );
        assert_eq!(super::redact_url("sqlite:a.db"), "sqlite:a.db");
        assert_eq!(
            super::redact_url("postgres://bob:p@ss@db/x?schema=s&password=pw&sslmode=require"),
            "postgres://bob:***@db/x?schema=s&password=***&sslmode=require"
        );
        assert_eq!(
            super::redact_url("postgres://db/x?password=pw"),
            "postgres://db/x?password=***"
        );
    }
}
