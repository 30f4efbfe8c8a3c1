//! What the contract cases share: the fixture a backend provides and small helpers.
//!
//! This module names none of its siblings.

use std::future::Future;
use std::pin::Pin;

use downbeat_core::context::Actor;
use downbeat_core::ids::{AttemptId, LeaseEpoch, TaskId};
use downbeat_core::plan::{self, PlanFormat};
use downbeat_core::role::RoleSet;
use downbeat_core::task::{Edge, EdgeKind, NewTask};
use downbeat_core::time::Timestamp;

use crate::{Batch, ClaimRequest, Error, Finish, FinishStatus, Store};

/// Opens another handle on the fixture's database.
pub type Reopen =
    Box<dyn Fn() -> Pin<Box<dyn Future<Output = Box<dyn Store>> + Send>> + Send + Sync>;

/// A fresh, empty database for one contract case.
pub struct Fixture {
    pub store: Box<dyn Store>,
    pub reopen: Reopen,
    /// Whatever must live as long as the database (a temp dir, a schema guard).
    pub guard: Box<dyn std::any::Any + Send + Sync>,
}

pub(super) fn actor(t: i64) -> Actor {
    Actor::new("test", Timestamp(1_700_000_000_000 + t))
}

pub(super) fn new_task(title: &str) -> NewTask {
    NewTask {
        title: title.into(),
        effort: 1,
        ..Default::default()
    }
}

pub(super) fn blocks(from: TaskId, to: TaskId) -> Edge {
    Edge {
        from,
        to,
        kind: EdgeKind::Blocks,
    }
}

pub(super) async fn apply(store: &dyn Store, text: &str) -> Result<crate::AppliedPlan, Error> {
    let file = plan::parse(text, PlanFormat::Toml).expect("test plan parses");
    let refs: Vec<String> = file
        .tasks
        .iter()
        .flat_map(|t| t.depends_on.iter().chain(t.parent.iter()).cloned())
        .collect();
    let known = store.lookup_tasks(&refs).await?;
    let v = plan::validate(
        &file,
        &RoleSet::builtin(),
        &|r| known.get(r).copied(),
        &|_| false,
    )?;
    store.apply_plan(&v, &actor(1)).await
}

pub(super) fn claim_batch(tasks: &[TaskId], holder: &str, until: i64) -> Batch {
    Batch {
        finishes: vec![],
        claims: tasks
            .iter()
            .map(|&task| ClaimRequest {
                task,
                executor: "noop".into(),
                after: vec![],
            })
            .collect(),
        holder: holder.into(),
        lease_until: actor(until).now,
        quiet: false,
        holds_seen: None,
        caps: vec![],
    }
}

pub(super) fn finish(
    task: TaskId,
    epoch: LeaseEpoch,
    attempt_id: AttemptId,
    status: FinishStatus,
) -> Finish {
    Finish {
        task,
        epoch,
        attempt_id,
        status,
        outcome: "succeeded".into(),
        exit_code: Some(0),
        error: None,
        summary: Some("done".into()),
        tokens: None,
        detail: Default::default(),
        artifacts: vec![crate::ArtifactRecord {
            path: "out.txt".into(),
            size: 3,
            sha256: "abc".into(),
        }],
        effects: vec![],
    }
}
