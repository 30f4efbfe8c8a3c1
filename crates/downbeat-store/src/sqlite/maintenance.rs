//! Schema facts, integrity checks and repairs, archiving and compaction: [`MaintenanceStore`] for
//! [`SqliteStore`].
//!
//! Must never: open connections or run migrations (`mod.rs` does that), or decode a row or
//! apply a rule that `crate::shared` already has a function for another way.

use super::*;

#[async_trait]
impl MaintenanceStore for SqliteStore {
    fn info(&self) -> SchemaInfo {
        SchemaInfo {
            backend: "sqlite",
            version: self.version,
            location: self.path.display().to_string(),
            backup: self.backup.clone(),
        }
    }

    async fn integrity(&self) -> Result<Integrity> {
        let mut out = Integrity::default();
        let rows = sqlx::query(
            "SELECT from_seq, to_seq, kind FROM edges WHERE from_seq NOT IN (SELECT seq FROM tasks) OR to_seq NOT IN (SELECT seq FROM tasks) ORDER BY 1, 2, 3",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        out.dangling_edges = rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        let rows = sqlx::query(
            "SELECT seq, parent_seq FROM tasks WHERE parent_seq IS NOT NULL AND parent_seq NOT IN (SELECT seq FROM tasks) ORDER BY seq",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        out.orphans = rows.iter().map(|r| (tid(r.get(0)), r.get(1))).collect();
        let rows = sqlx::query(
            "SELECT 'o' || objective_id, task_seq FROM objective_tasks WHERE task_seq NOT IN (SELECT seq FROM tasks)
             UNION ALL SELECT 'i' || id, task_seq FROM insights WHERE task_seq IS NOT NULL AND task_seq NOT IN (SELECT seq FROM tasks)
             UNION ALL SELECT 'd' || id, task_seq FROM decisions WHERE task_seq IS NOT NULL AND task_seq NOT IN (SELECT seq FROM tasks)
             ORDER BY 1, 2",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        out.dangling_links = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        Ok(out)
    }

    async fn repair(&self, fix: &Integrity, actor: &Actor) -> Result<usize> {
        let mut tx = self.write().await?;
        let c: &mut SqliteConnection = &mut tx;
        let mut n = 0;
        for (f, t, k) in &fix.dangling_edges {
            let r = sqlx::query("DELETE FROM edges WHERE from_seq = ? AND to_seq = ? AND kind = ?")
                .bind(f)
                .bind(t)
                .bind(k)
                .execute(&mut *c)
                .await
                .map_err(db)?;
            if r.rows_affected() > 0 {
                n += 1;
                event(
                    c,
                    actor,
                    "maintain.edge_removed",
                    &format!("{f}->{t}"),
                    Some(json!({"from_seq": f, "to_seq": t, "kind": k})),
                    None,
                )
                .await?;
            }
        }
        for (id, parent) in &fix.orphans {
            sqlx::query("UPDATE tasks SET parent_seq = NULL, updated_at = ? WHERE seq = ? AND parent_seq = ?")
                .bind(actor.now.0)
                .bind(seq(*id))
                .bind(parent)
                .execute(&mut *c)
                .await
                .map_err(db)?;
            n += 1;
            event(
                c,
                actor,
                "maintain.orphan_detached",
                &id.to_string(),
                Some(json!({"parent_seq": parent})),
                Some(json!({"parent": null})),
            )
            .await?;
        }
        for (record, t) in &fix.dangling_links {
            let (letter, num) = record.split_at(1);
            let num: i64 = num.parse().unwrap_or(0);
            let sql = match letter {
                "o" => "DELETE FROM objective_tasks WHERE objective_id = ? AND task_seq = ?",
                "i" => "UPDATE insights SET task_seq = NULL WHERE id = ? AND task_seq = ?",
                _ => "UPDATE decisions SET task_seq = NULL WHERE id = ? AND task_seq = ?",
            };
            sqlx::query(sql)
                .bind(num)
                .bind(t)
                .execute(&mut *c)
                .await
                .map_err(db)?;
            n += 1;
            event(
                c,
                actor,
                "maintain.link_removed",
                record,
                Some(json!({"task_seq": t})),
                None,
            )
            .await?;
        }
        tx.commit().await.map_err(db)?;
        Ok(n)
    }

    async fn archive(&self, ids: &[TaskId], actor: &Actor) -> Result<usize> {
        let mut tx = self.write().await?;
        let c: &mut SqliteConnection = &mut tx;
        let mut n = 0;
        // Leaves first; a container goes once all its children are archived. Repeat until no
        // more progress, so the order of `ids` does not matter.
        let mut left: Vec<TaskId> = ids.to_vec();
        loop {
            let mut progressed = false;
            let mut next = Vec::new();
            for id in left {
                let r = sqlx::query(
                    "UPDATE tasks SET archived = 1, updated_at = ? WHERE seq = ? AND archived = 0 AND (
                        (status IN ('completed', 'skipped') AND NOT EXISTS (SELECT 1 FROM tasks c WHERE c.parent_seq = tasks.seq AND c.archived = 0))
                        OR (EXISTS (SELECT 1 FROM tasks c WHERE c.parent_seq = tasks.seq)
                            AND NOT EXISTS (SELECT 1 FROM tasks c WHERE c.parent_seq = tasks.seq AND c.archived = 0)))",
                )
                .bind(actor.now.0)
                .bind(seq(id))
                .execute(&mut *c)
                .await
                .map_err(db)?;
                if r.rows_affected() > 0 {
                    n += 1;
                    progressed = true;
                    event(c, actor, "task.archived", &id.to_string(), None, None).await?;
                } else {
                    next.push(id);
                }
            }
            left = next;
            if !progressed || left.is_empty() {
                break;
            }
        }
        tx.commit().await.map_err(db)?;
        Ok(n)
    }

    async fn optimize(&self) -> Result<()> {
        sqlx::query("PRAGMA optimize")
            .execute(&self.writer)
            .await
            .map_err(db)?;
        sqlx::query("VACUUM")
            .execute(&self.writer)
            .await
            .map_err(db)?;
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.writer)
            .await
            .map_err(db)?;
        Ok(())
    }
}
