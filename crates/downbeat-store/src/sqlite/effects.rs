//! The statements a completion's effects need, on the connection of the batch's transaction:
//! [`EffectTx`] for SQLite.
//!
//! Must never: commit, or take the write lock itself (the batch holds it).

use super::*;
use crate::effects::{EffectTx, FlagRow};

/// The batch's connection, inside its `BEGIN IMMEDIATE` transaction.
pub(super) struct InBatch<'a>(pub(super) &'a mut SqliteConnection);

#[async_trait]
impl EffectTx for InBatch<'_> {
    async fn task(&mut self, id: TaskId) -> Result<Task> {
        get_task(self.0, id).await
    }

    async fn insert_task(&mut self, new: &NewTask, actor: &Actor) -> Result<TaskId> {
        let s = alloc_seqs(self.0, 1).await?;
        insert_task(self.0, s, new, None, actor.now).await?;
        Ok(tid(s))
    }

    async fn insert_edge(&mut self, edge: Edge, actor: &Actor) -> Result<bool> {
        let r = sqlx::query(
            "INSERT OR IGNORE INTO edges(from_seq, to_seq, kind, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind(seq(edge.from))
        .bind(seq(edge.to))
        .bind(edge.kind.as_str())
        .bind(actor.now.0)
        .execute(&mut *self.0)
        .await
        .map_err(db)?;
        Ok(r.rows_affected() == 1)
    }

    async fn write_priority(
        &mut self,
        id: TaskId,
        priority: Priority,
        actor: &Actor,
    ) -> Result<()> {
        sqlx::query("UPDATE tasks SET priority = ?, updated_at = ? WHERE seq = ?")
            .bind(i64::from(priority.rank()))
            .bind(actor.now.0)
            .bind(seq(id))
            .execute(&mut *self.0)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn event(
        &mut self,
        action: &str,
        entity: &str,
        before: Option<Value>,
        after: Option<Value>,
        actor: &Actor,
    ) -> Result<()> {
        event(self.0, actor, action, entity, before, after).await?;
        Ok(())
    }

    async fn holds_entry(&mut self) -> Result<Option<String>> {
        // Writers are serialised: the batch's write lock keeps the entry as read.
        sqlx::query_scalar("SELECT value FROM meta WHERE key = 'holds'")
            .fetch_optional(&mut *self.0)
            .await
            .map_err(db)
    }

    async fn write_holds(&mut self, _existed: bool, new: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO meta(key, value) VALUES ('holds', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        )
        .bind(new)
        .execute(&mut *self.0)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn insert_flag(&mut self, row: &FlagRow<'_>, actor: &Actor) -> Result<i64> {
        let handled =
            (row.state == downbeat_core::flags::FlagState::Handled).then_some(actor.now.0);
        sqlx::query_scalar(
            "INSERT INTO flags(task_seq, flag, detail, state, note, raised_at, handled_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(seq(row.task))
        .bind(row.flag)
        .bind(row.detail)
        .bind(row.state.as_str())
        .bind(row.note)
        .bind(actor.now.0)
        .bind(handled)
        .fetch_one(&mut *self.0)
        .await
        .map_err(db)
    }

    async fn set_follow_up(&mut self, id: i64, follow_up: TaskId) -> Result<()> {
        sqlx::query("UPDATE flags SET follow_up_seq = ? WHERE id = ?")
            .bind(seq(follow_up))
            .bind(id)
            .execute(&mut *self.0)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn handle_flags(
        &mut self,
        follow_up: TaskId,
        note: &str,
        actor: &Actor,
    ) -> Result<Vec<(i64, TaskId, String)>> {
        let rows = sqlx::query(
            "UPDATE flags SET state = 'handled', note = ?, handled_at = ? \
             WHERE follow_up_seq = ? AND state = 'raised' RETURNING id, task_seq, flag",
        )
        .bind(note)
        .bind(actor.now.0)
        .bind(seq(follow_up))
        .fetch_all(&mut *self.0)
        .await
        .map_err(db)?;
        let mut out: Vec<(i64, TaskId, String)> = rows
            .iter()
            .map(|r| (r.get(0), tid(r.get(1)), r.get(2)))
            .collect();
        out.sort_by_key(|r| r.0);
        Ok(out)
    }

    fn task_json(&self, task: &Task) -> Value {
        tjson(task)
    }

    async fn check_acyclic(&mut self) -> Result<()> {
        check_acyclic(self.0).await
    }
}
