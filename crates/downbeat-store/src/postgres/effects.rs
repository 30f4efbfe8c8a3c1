//! The statements a completion's effects need, inside the explicit transaction of a batch
//! that carries effects: [`EffectTx`] for PostgreSQL.
//!
//! Must never: commit (the batch does), or hide a transient conflict (it is kept, so the
//! whole batch runs again).

use super::*;
use crate::effects::{EffectTx, FlagRow};

/// The batch's transaction, and the transient conflict one of its statements hit, if any.
pub(super) struct InBatch<'a> {
    pub(super) t: &'a mut Tx,
    pub(super) retry: Option<String>,
}

impl InBatch<'_> {
    fn fail(&mut self, f: Fail) -> Error {
        if let Fail::Retry(m) = &f {
            self.retry = Some(m.clone());
        }
        f.into()
    }
}

#[async_trait]
impl EffectTx for InBatch<'_> {
    async fn task(&mut self, id: TaskId) -> Result<Task> {
        let r = get_task(self.t.c(), id, false).await;
        r.map_err(|f| self.fail(f))
    }

    async fn task_for_update(&mut self, id: TaskId) -> Result<Task> {
        let r = get_task(self.t.c(), id, true).await;
        r.map_err(|f| self.fail(f))
    }

    async fn insert_task(&mut self, new: &NewTask, actor: &Actor) -> Result<TaskId> {
        let r = async {
            let s = alloc_seqs(self.t.c(), 1).await?;
            insert_task(self.t.c(), s, new, None, actor.now).await?;
            Ok(tid(s))
        }
        .await;
        r.map_err(|f| self.fail(f))
    }

    async fn insert_edge(&mut self, edge: Edge, actor: &Actor) -> Result<bool> {
        let r = sqlx::query(
            "INSERT INTO edges(from_seq, to_seq, kind, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(seq(edge.from))
        .bind(seq(edge.to))
        .bind(edge.kind.as_str())
        .bind(actor.now.0)
        .execute(self.t.c())
        .await
        .map_err(db);
        match r {
            Ok(r) => Ok(r.rows_affected() == 1),
            Err(f) => Err(self.fail(f)),
        }
    }

    async fn write_priority(
        &mut self,
        id: TaskId,
        priority: Priority,
        actor: &Actor,
    ) -> Result<()> {
        let r = sqlx::query("UPDATE tasks SET priority = $1, updated_at = $2 WHERE seq = $3")
            .bind(i64::from(priority.rank()))
            .bind(actor.now.0)
            .bind(seq(id))
            .execute(self.t.c())
            .await
            .map_err(db);
        r.map(drop).map_err(|f| self.fail(f))
    }

    async fn event(
        &mut self,
        action: &str,
        entity: &str,
        before: Option<Value>,
        after: Option<Value>,
        actor: &Actor,
    ) -> Result<()> {
        // Appended at the commit, under the event lock, after the batch function's own.
        self.t.event(actor, action, entity, before, after);
        Ok(())
    }

    async fn holds_entry(&mut self) -> Result<Option<String>> {
        let r = sqlx::query_scalar("SELECT value FROM meta WHERE key = 'holds' FOR UPDATE")
            .fetch_optional(self.t.c())
            .await
            .map_err(db);
        r.map_err(|f| self.fail(f))
    }

    async fn write_holds(&mut self, existed: bool, new: &str) -> Result<()> {
        let sql = if existed {
            "UPDATE meta SET value = $1 WHERE key = 'holds'"
        } else {
            // No row to lock: another writer may add the entry first; then this batch runs
            // again and reads theirs.
            "INSERT INTO meta(key, value) VALUES ('holds', $1) ON CONFLICT (key) DO NOTHING"
        };
        let r = sqlx::query(sql)
            .bind(new)
            .execute(self.t.c())
            .await
            .map_err(db);
        match r {
            Ok(r) if r.rows_affected() == 1 => Ok(()),
            Ok(_) => Err(self.fail(Fail::Retry(
                "the holds entry was added by another writer meanwhile".into(),
            ))),
            Err(f) => Err(self.fail(f)),
        }
    }

    async fn insert_flag(&mut self, row: &FlagRow<'_>, actor: &Actor) -> Result<i64> {
        let handled =
            (row.state == downbeat_core::flags::FlagState::Handled).then_some(actor.now.0);
        let r = sqlx::query_scalar(
            "INSERT INTO flags(task_seq, flag, detail, state, note, raised_at, handled_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(seq(row.task))
        .bind(row.flag)
        .bind(row.detail)
        .bind(row.state.as_str())
        .bind(row.note)
        .bind(actor.now.0)
        .bind(handled)
        .fetch_one(self.t.c())
        .await
        .map_err(db);
        r.map_err(|f| self.fail(f))
    }

    async fn set_follow_up(&mut self, id: i64, follow_up: TaskId) -> Result<()> {
        let r = sqlx::query("UPDATE flags SET follow_up_seq = $1 WHERE id = $2")
            .bind(seq(follow_up))
            .bind(id)
            .execute(self.t.c())
            .await
            .map_err(db);
        r.map(drop).map_err(|f| self.fail(f))
    }

    async fn handle_flags(
        &mut self,
        follow_up: TaskId,
        note: &str,
        actor: &Actor,
    ) -> Result<Vec<(i64, TaskId, String)>> {
        let r = sqlx::query(
            "UPDATE flags SET state = 'handled', note = $1, handled_at = $2 \
             WHERE follow_up_seq = $3 AND state = 'raised' RETURNING id, task_seq, flag",
        )
        .bind(note)
        .bind(actor.now.0)
        .bind(seq(follow_up))
        .fetch_all(self.t.c())
        .await
        .map_err(db);
        let rows = r.map_err(|f| self.fail(f))?;
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
        let r = check_acyclic(self.t.c()).await;
        r.map_err(|f| self.fail(f))
    }
}
