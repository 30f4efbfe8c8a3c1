//! The statements a completion's effects need, as each backend provides them on the
//! connection and inside the transaction of a batch (see `effects.rs`).

use async_trait::async_trait;
use downbeat_core::context::Actor;
use downbeat_core::flags::FlagState;
use downbeat_core::ids::TaskId;
use downbeat_core::task::{Edge, NewTask, Priority, Task};
use serde_json::Value;

use crate::error::Result;

/// The statements effects need, on the connection and inside the transaction of a batch.
#[async_trait]
pub(crate) trait EffectTx: Send {
    /// The task as stored now (not found: [`crate::Error::NotFound`]).
    async fn task(&mut self, id: TaskId) -> Result<Task>;
    /// The task as stored now, locked against other writers until the transaction ends.
    async fn task_for_update(&mut self, id: TaskId) -> Result<Task> {
        self.task(id).await
    }
    /// Inserts a new pending task without a parent; its id.
    async fn insert_task(&mut self, new: &NewTask, actor: &Actor) -> Result<TaskId>;
    /// Inserts an edge between two existing tasks; whether it was not there yet.
    async fn insert_edge(&mut self, edge: Edge, actor: &Actor) -> Result<bool>;
    /// Writes a task's priority.
    async fn write_priority(&mut self, id: TaskId, priority: Priority, actor: &Actor)
    -> Result<()>;
    /// Appends an event to the log (in this transaction).
    async fn event(
        &mut self,
        action: &str,
        entity: &str,
        before: Option<Value>,
        after: Option<Value>,
        actor: &Actor,
    ) -> Result<()>;
    /// The stored holds entry, locked against other writers until the transaction ends.
    async fn holds_entry(&mut self) -> Result<Option<String>>;
    /// Replaces the holds entry read by [`EffectTx::holds_entry`] (`existed`: it was there).
    async fn write_holds(&mut self, existed: bool, new: &str) -> Result<()>;
    /// Inserts a flag raised by `task`; its number.
    async fn insert_flag(&mut self, row: &FlagRow<'_>, actor: &Actor) -> Result<i64>;
    /// Links flag `id` to the follow-up task its rule added.
    async fn set_follow_up(&mut self, id: i64, follow_up: TaskId) -> Result<()>;
    /// Marks handled, with `note`, the raised flags `follow_up` is the follow-up of; (number,
    /// raising task, flag) of each.
    async fn handle_flags(
        &mut self,
        follow_up: TaskId,
        note: &str,
        actor: &Actor,
    ) -> Result<Vec<(i64, TaskId, String)>>;
    /// A task as the payload of its `task.created` and `task.updated` events.
    fn task_json(&self, task: &Task) -> Value;
    /// Fails if the live `blocks` graph has a cycle or a parent loop.
    async fn check_acyclic(&mut self) -> Result<()>;
}

/// A flag as [`EffectTx::insert_flag`] writes it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FlagRow<'a> {
    pub task: TaskId,
    pub flag: &'a str,
    pub detail: &'a str,
    pub state: FlagState,
    pub note: &'a str,
}
