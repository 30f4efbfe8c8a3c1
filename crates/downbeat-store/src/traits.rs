//! The parts of the [`Store`](crate::Store) trait, one per concern: [`TaskStore`],
//! [`ContextStore`], [`ExecutionStore`], [`WorkerStore`], [`MaintenanceStore`]; and
//! [`ChangeFeed`], which wakes a waiting process on a committed change.

use std::collections::HashMap;

use async_trait::async_trait;
use downbeat_core::context::{
    Actor, Artifact, Decision, DecisionStatus, Event, FlagRecord, Insight, Metrics, Objective,
    ObjectiveStatus, Session,
};
use downbeat_core::graph::GraphSnapshot;
use downbeat_core::ids::{LeaseEpoch, RecordId, TaskId};
use downbeat_core::plan::ValidatedPlan;
use downbeat_core::plan_diff::PlanChanges;
use downbeat_core::task::{Edge, NewTask, Status, Task, TaskPatch};
use downbeat_core::time::Timestamp;

use crate::error::Result;
use crate::types::{
    AppliedPlan, AttemptRecord, Batch, BatchResult, EventQuery, FlagFilter, Integrity, SchemaInfo,
    TaskFilter, WorkerRecord,
};

/// Wakes a waiting process when another one commits a change.
#[async_trait]
pub trait ChangeFeed: Send {
    /// Returns when a change was committed since the last call (possibly by this process).
    async fn changed(&mut self) -> Result<()>;
}

/// Tasks, their edges and the graph the planner reads.
#[async_trait]
pub trait TaskStore: Send + Sync {
    /// Inserts a whole validated plan in one transaction; fails (writing nothing) on a cycle
    /// formed together with existing edges, or a key taken meanwhile.
    async fn apply_plan(&self, plan: &ValidatedPlan, actor: &Actor) -> Result<AppliedPlan>;
    /// Carries out a living plan's changes in one transaction: edges removed, tasks updated,
    /// new tasks inserted (with their edges and records), tasks moved, edges added, tasks
    /// cancelled, the plan's record kept in `meta`, then one cycle check and a `plan.applied`
    /// event. Fails with [`Error::Conflict`](crate::Error::Conflict), writing nothing, when a
    /// task of `changes.expect` is no longer in the status it was seen in.
    async fn apply_plan_changes(&self, changes: &PlanChanges, actor: &Actor)
    -> Result<AppliedPlan>;
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
    /// [`TaskStore::tasks`] handed over in chunks as they are read, in the same order, all
    /// from one moment: a caller that keeps less of each task than the whole (a runner of a
    /// million tasks) never holds them all at once. The default hands over one chunk.
    async fn tasks_chunked(
        &self,
        filter: &TaskFilter,
        each: &mut (dyn FnMut(Vec<Task>) + Send),
    ) -> Result<()> {
        each(self.tasks(filter).await?);
        Ok(())
    }
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
    /// Links `tasks` to an objective (those linked already are left as they are); logged as
    /// `objective.linked` with the tasks newly linked, when there are any.
    async fn link_objective(
        &self,
        id: RecordId,
        tasks: &[TaskId],
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
    /// Records a proposed decision: pending, not in force until accepted. Logged as
    /// `decision.proposed`.
    async fn propose_decision(
        &self,
        text: &str,
        why: &str,
        task: Option<TaskId>,
        actor: &Actor,
    ) -> Result<Decision>;
    /// Accepts or rejects a proposed decision, with the reason given (may be empty), logged as
    /// `decision.accepted` or `decision.rejected` in the same transaction. A decision that is
    /// not proposed is refused with [`Error::Conflict`](crate::Error::Conflict).
    async fn decide(
        &self,
        id: RecordId,
        status: DecisionStatus,
        why: &str,
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
    /// Flags agents raised (recorded with the completions that raised them), oldest first.
    async fn flags(&self, filter: &FlagFilter) -> Result<Vec<FlagRecord>>;

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

/// Running work: batches of finishes and claims, leases, the ready set's fast path and the
/// attempt ledger. Every execution store also has the holds of [`Holds`](crate::Holds) (kept
/// in `meta`).
#[async_trait]
pub trait ExecutionStore: TaskStore + ContextStore {
    /// Finishes attempts (refusing those whose fencing token is stale) and claims ready tasks,
    /// all in one transaction. A claim succeeds only for a `pending`, live task whose retry
    /// time has come; it sets `running`, a lease, a new epoch and an attempt row.
    async fn commit_batch(&self, batch: &Batch, actor: &Actor) -> Result<BatchResult>;
    /// Extends every lease `holder` has to `until`; returns the tasks it still holds (a task
    /// missing from the answer was taken away: cancelled, reopened or re-leased).
    async fn renew_leases(
        &self,
        holder: &str,
        until: Timestamp,
    ) -> Result<Vec<(TaskId, LeaseEpoch)>>;
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
    /// The whole attempt ledger, oldest first (one read, for totals over many tasks).
    async fn all_attempts(&self) -> Result<Vec<AttemptRecord>>;
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
