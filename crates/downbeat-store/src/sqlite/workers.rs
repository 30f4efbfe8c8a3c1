//! Worker registrations and heartbeats: [`WorkerStore`] for [`SqliteStore`].
//!
//! Must never: open connections or run migrations (`mod.rs` does that), or decode a row or
//! apply a rule that `crate::shared` already has a function for another way.

use super::*;

#[async_trait]
impl WorkerStore for SqliteStore {
    async fn register_worker(&self, w: &WorkerRecord, actor: &Actor) -> Result<()> {
        let mut tx = self.write().await?;
        let c: &mut SqliteConnection = &mut tx;
        sqlx::query(
            "INSERT OR REPLACE INTO workers(name, host, pid, roles, executors, labels, slots, started_at, heartbeat_at, ttl_ms) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&w.name)
        .bind(&w.host)
        .bind(w.pid)
        .bind(to_json_list(&w.roles))
        .bind(to_json_list(&w.executors))
        .bind(to_json_list(&w.labels))
        .bind(i64::from(w.slots))
        .bind(actor.now.0)
        .bind(actor.now.0)
        .bind(Millis::of(w.ttl).0)
        .execute(&mut *c)
        .await
        .map_err(db)?;
        event(
            c,
            actor,
            "worker.registered",
            &w.name,
            None,
            Some(worker_json(w)),
        )
        .await?;
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    async fn worker_heartbeat(&self, name: &str, now: Timestamp) -> Result<bool> {
        let r = sqlx::query("UPDATE workers SET heartbeat_at = ? WHERE name = ?")
            .bind(now.0)
            .bind(name)
            .execute(&self.writer)
            .await
            .map_err(db)?;
        Ok(r.rows_affected() > 0)
    }

    async fn deregister_worker(&self, name: &str, reason: &str, actor: &Actor) -> Result<bool> {
        let mut tx = self.write().await?;
        let c: &mut SqliteConnection = &mut tx;
        let r = sqlx::query("DELETE FROM workers WHERE name = ?")
            .bind(name)
            .execute(&mut *c)
            .await
            .map_err(db)?;
        if r.rows_affected() == 0 {
            return Ok(false);
        }
        event(
            c,
            actor,
            "worker.deregistered",
            name,
            None,
            Some(json!({"reason": reason})),
        )
        .await?;
        tx.commit().await.map_err(db)?;
        Ok(true)
    }

    async fn workers(&self, now: Timestamp) -> Result<Vec<WorkerRecord>> {
        let rows = sqlx::query(
            "SELECT w.*, (SELECT json_group_array(t.seq) FROM tasks t WHERE t.status = 'running' AND t.lease_holder = w.name) AS holding \
             FROM workers w ORDER BY w.name",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Ok(rows
            .iter()
            .map(|r| {
                let alive = r.get::<i64, _>("heartbeat_at") + r.get::<i64, _>("ttl_ms") >= now.0;
                let holding: Vec<i64> = serde_json::from_str(r.get("holding")).unwrap_or_default();
                row_worker(r, alive, holding)
            })
            .collect())
    }
}
