//! The statements a completion's effects need, inside the explicit transaction of a batch
//! that carries effects: [`EffectTx`] for PostgreSQL.
//!
//! Must never: commit (the batch does), or hide a transient conflict (it is kept, so the
//! whole batch runs again).

use super::*;
use crate::effects::EffectTx;

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

    fn task_json(&self, task: &Task) -> Value {
        tjson(task)
    }

    async fn check_acyclic(&mut self) -> Result<()> {
        let r = check_acyclic(self.t.c()).await;
        r.map_err(|f| self.fail(f))
    }
}
