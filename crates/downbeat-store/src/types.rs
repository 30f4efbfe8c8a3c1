//! The values store calls take and give: filters and queries, the batches of finishes and
//! claims the engine commits and what they did, attempt and worker records, schema facts and
//! integrity findings.

use std::time::Duration;

use downbeat_core::ids::{AttemptId, LeaseEpoch, RecordId, TaskId};
use downbeat_core::task::Status;
use downbeat_core::time::Timestamp;
use serde::Serialize;

/// Filters for [`TaskStore::tasks`](crate::TaskStore::tasks); empty means everything live.
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

/// Filters for [`ContextStore::events`](crate::ContextStore::events).
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

/// Filters for [`ContextStore::flags`](crate::ContextStore::flags); every one set must hold.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FlagFilter {
    /// Raised by this task.
    pub task: Option<TaskId>,
    /// Followed up by this task.
    pub follow_up: Option<TaskId>,
    /// In this state.
    pub state: Option<downbeat_core::flags::FlagState>,
}

/// What [`TaskStore::apply_plan`](crate::TaskStore::apply_plan) created.
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
    pub epoch: LeaseEpoch,
    pub attempt_id: AttemptId,
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
    pub epoch: LeaseEpoch,
    pub attempt_id: AttemptId,
    pub status: FinishStatus,
    /// `succeeded`, `failed`, `timed-out`, `cancelled`, `error`, `lost`.
    pub outcome: String,
    pub exit_code: Option<i32>,
    pub error: Option<String>,
    pub summary: Option<String>,
    pub tokens: Option<(i64, i64)>,
    /// Agent, session, cost and git work of the attempt, kept in the ledger.
    pub detail: downbeat_core::attempt::AttemptDetail,
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
    /// ([`Holds::holds_and_last`](crate::Holds::holds_and_last)). When a later hold exists,
    /// no claim of the batch is taken ([`BatchResult::held`]): work chosen before a hold was
    /// seen does not start under it. `None`: no check (the claimer looked at holds otherwise).
    pub holds_seen: Option<u32>,
    /// Caps on running tasks by role that `claims` must respect, counted over every holder
    /// sharing the database (not only this claimer's attempts). Claims are taken in order; one
    /// that would take its group past the cap is refused ([`BatchResult::capped`]). Empty: no
    /// check.
    pub caps: Vec<CapLimit>,
}

/// At most `cap` tasks whose role is one of `roles` running at once, whoever runs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapLimit {
    pub cap: u32,
    pub roles: Vec<String>,
}

impl CapLimit {
    /// The limits of a set of caps ([`Caps::limits`](downbeat_core::graph::Caps::limits)).
    pub fn all(caps: &downbeat_core::graph::Caps) -> Vec<Self> {
        caps.limits()
            .into_iter()
            .map(|(cap, roles)| Self { cap, roles })
            .collect()
    }
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
    /// Claims refused because their group was at its cap ([`Batch::caps`]); also in
    /// `not_claimed`. They may be claimed once a running task of the group ends.
    pub capped: Vec<TaskId>,
    /// What the effects of the accepted finishes did: one entry per accepted finish with
    /// effects, in batch order.
    pub effects: Vec<EffectsDone>,
}

/// One row of the attempt ledger.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttemptRecord {
    pub id: AttemptId,
    pub task: TaskId,
    pub number: u32,
    pub epoch: LeaseEpoch,
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
    /// Agent, session, cost and git work (empty for attempts that recorded none).
    pub detail: downbeat_core::attempt::AttemptDetail,
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
    #[serde(rename = "ttl_ms", serialize_with = "downbeat_core::time::millis::one")]
    pub ttl: Duration,
    /// Filled in by [`WorkerStore::workers`](crate::WorkerStore::workers).
    pub alive: bool,
    /// Filled in by [`WorkerStore::workers`](crate::WorkerStore::workers): the tasks it holds
    /// leases on.
    pub holding: Vec<TaskId>,
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

/// One hold in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hold {
    /// Numbered from 1 within the project.
    pub id: u32,
    /// The only task that may start while the hold is in force; `None`: none may.
    pub task: Option<TaskId>,
    pub reason: String,
    pub by: String,
    pub at: Timestamp,
}

/// What the effects of one accepted finish did, for its caller to announce.
#[derive(Debug, Clone, PartialEq)]
pub struct EffectsDone {
    /// The finished task.
    pub task: TaskId,
    /// Tasks created (follow-ups and discovered work), in the order of their effects.
    pub created: Vec<TaskId>,
    /// Holds added (a follow-up's hold, a pause), in the order of their effects.
    pub holds: Vec<Hold>,
    /// The reasons of the `stop` effects, in order.
    pub stops: Vec<String>,
    /// Whether the graph changed (tasks, edges or priorities).
    pub changed: bool,
    /// The flags recorded, in the order of their effects.
    pub flags: Vec<RecordId>,
    /// The flags this finish handled (it was their follow-up): (flag, raised by, name).
    pub handled: Vec<(RecordId, TaskId, String)>,
}
