//! Worker registrations and heartbeats: [`WorkerStore`] for [`PostgresStore`].
//!
//! Must never: open connections or run migrations (`mod.rs` does that), or decode a row or
//! apply a rule that `crate::shared` already has a function for another way.

use super::*;

#[async_trait]
impl WorkerStore for PostgresStore {
    async fn register_worker(&self, w: &WorkerRecord, actor: &Actor) -> Result<()> {
        retrying(|| async {
            let mut t = self.write().await?;
            sqlx::query(AssertSqlSafe(format!(
                "INSERT INTO workers(name, host, pid, roles, executors, labels, slots, started_at, heartbeat_at, ttl_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, {DB_NOW}, {DB_NOW}, $8) \
                 ON CONFLICT (name) DO UPDATE SET host = EXCLUDED.host, pid = EXCLUDED.pid, roles = EXCLUDED.roles, \
                 executors = EXCLUDED.executors, labels = EXCLUDED.labels, slots = EXCLUDED.slots, \
                 started_at = EXCLUDED.started_at, heartbeat_at = EXCLUDED.heartbeat_at, ttl_ms = EXCLUDED.ttl_ms"
            )))
            .bind(&w.name)
            .bind(&w.host)
            .bind(w.pid)
            .bind(to_json_list(&w.roles))
            .bind(to_json_list(&w.executors))
            .bind(to_json_list(&w.labels))
            .bind(i64::from(w.slots))
            .bind(Millis::of(w.ttl).0)
            .execute(t.c())
            .await
            .map_err(db)?;
            t.event(actor, "worker.registered", &w.name, None, Some(worker_json(w)));
            t.commit().await.map(|_| ())
        })
        .await
    }

    async fn worker_heartbeat(&self, name: &str, _now: Timestamp) -> Result<bool> {
        let r = sqlx::query(AssertSqlSafe(format!(
            "UPDATE workers SET heartbeat_at = {DB_NOW} WHERE name = $1"
        )))
        .bind(name)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(r.rows_affected() > 0)
    }

    async fn deregister_worker(&self, name: &str, reason: &str, actor: &Actor) -> Result<bool> {
        retrying(|| async {
            let mut t = self.write().await?;
            let r = sqlx::query("DELETE FROM workers WHERE name = $1")
                .bind(name)
                .execute(t.c())
                .await
                .map_err(db)?;
            if r.rows_affected() == 0 {
                return Ok(false);
            }
            t.event(
                actor,
                "worker.deregistered",
                name,
                None,
                Some(json!({"reason": reason})),
            );
            t.commit().await.map(|_| true)
        })
        .await
    }

    async fn workers(&self, _now: Timestamp) -> Result<Vec<WorkerRecord>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT w.*, w.heartbeat_at + w.ttl_ms >= {DB_NOW} AS alive, \
             coalesce((SELECT array_agg(t.seq::bigint ORDER BY t.seq) FROM tasks t \
                       WHERE t.status = 'running' AND t.lease_holder = w.name), '{{}}') AS holding \
             FROM workers w ORDER BY w.name COLLATE \"C\""
        )))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Ok(rows
            .iter()
            .map(|r| row_worker(r, r.get("alive"), r.get("holding")))
            .collect())
    }
}
