//! Schema facts, integrity checks and repairs, archiving and compaction: [`MaintenanceStore`] for
//! [`PostgresStore`].
//!
//! Must never: open connections or run migrations (`mod.rs` does that), or decode a row or
//! apply a rule that `crate::shared` already has a function for another way.

use super::*;

impl PostgresStore {
    async fn tx_repair(&self, fix: &Integrity, actor: &Actor) -> R<usize> {
        let mut t = self.write().await?;
        let mut n = 0;
        for (f, to, k) in &fix.dangling_edges {
            let r =
                sqlx::query("DELETE FROM edges WHERE from_seq = $1 AND to_seq = $2 AND kind = $3")
                    .bind(f)
                    .bind(to)
                    .bind(k)
                    .execute(t.c())
                    .await
                    .map_err(db)?;
            if r.rows_affected() > 0 {
                n += 1;
                t.event(
                    actor,
                    "maintain.edge_removed",
                    &format!("{f}->{to}"),
                    Some(json!({"from_seq": f, "to_seq": to, "kind": k})),
                    None,
                );
            }
        }
        for (id, parent) in &fix.orphans {
            sqlx::query(
                "UPDATE tasks SET parent_seq = NULL, updated_at = $1 WHERE seq = $2 AND parent_seq = $3",
            )
            .bind(actor.now.0)
            .bind(seq(*id))
            .bind(parent)
            .execute(t.c())
            .await
            .map_err(db)?;
            n += 1;
            t.event(
                actor,
                "maintain.orphan_detached",
                &id.to_string(),
                Some(json!({"parent_seq": parent})),
                Some(json!({"parent": null})),
            );
        }
        for (record, task) in &fix.dangling_links {
            let (letter, num) = record.split_at(1);
            let num: i64 = num.parse().unwrap_or(0);
            let sql = match letter {
                "o" => "DELETE FROM objective_tasks WHERE objective_id = $1 AND task_seq = $2",
                "i" => "UPDATE insights SET task_seq = NULL WHERE id = $1 AND task_seq = $2",
                _ => "UPDATE decisions SET task_seq = NULL WHERE id = $1 AND task_seq = $2",
            };
            sqlx::query(sql)
                .bind(num)
                .bind(task)
                .execute(t.c())
                .await
                .map_err(db)?;
            n += 1;
            t.event(
                actor,
                "maintain.link_removed",
                record,
                Some(json!({"task_seq": task})),
                None,
            );
        }
        t.commit().await?;
        Ok(n)
    }

    async fn tx_archive(&self, ids: &[TaskId], actor: &Actor) -> R<usize> {
        let mut t = self.write().await?;
        // Archiving changes which tasks are live: no plan or edge may check against a graph
        // that is changing under it.
        lock_graph(&mut t).await?;
        let mut n = 0;
        // Leaves first; a container goes once all its children are archived. Repeat until no
        // more progress, so the order of `ids` does not matter.
        let mut left: Vec<TaskId> = ids.to_vec();
        loop {
            let mut progressed = false;
            let mut next = Vec::new();
            for id in left {
                let r = sqlx::query(
                    "UPDATE tasks SET archived = TRUE, updated_at = $1 WHERE seq = $2 AND NOT archived AND (
                        (status IN ('completed', 'skipped') AND NOT EXISTS (SELECT 1 FROM tasks c WHERE c.parent_seq = tasks.seq AND NOT c.archived))
                        OR (EXISTS (SELECT 1 FROM tasks c WHERE c.parent_seq = tasks.seq)
                            AND NOT EXISTS (SELECT 1 FROM tasks c WHERE c.parent_seq = tasks.seq AND NOT c.archived)))",
                )
                .bind(actor.now.0)
                .bind(seq(id))
                .execute(t.c())
                .await
                .map_err(db)?;
                if r.rows_affected() > 0 {
                    n += 1;
                    progressed = true;
                    t.event(actor, "task.archived", &id.to_string(), None, None);
                } else {
                    next.push(id);
                }
            }
            left = next;
            if !progressed || left.is_empty() {
                break;
            }
        }
        t.commit().await?;
        Ok(n)
    }
}

#[async_trait]
impl MaintenanceStore for PostgresStore {
    fn info(&self) -> SchemaInfo {
        SchemaInfo {
            backend: "postgres",
            version: self.version,
            location: self.location.clone(),
            backup: None,
        }
    }

    async fn integrity(&self) -> Result<Integrity> {
        let mut out = Integrity::default();
        let rows = sqlx::query(
            "SELECT from_seq, to_seq, kind FROM edges \
             WHERE from_seq NOT IN (SELECT seq FROM tasks) OR to_seq NOT IN (SELECT seq FROM tasks) \
             ORDER BY from_seq, to_seq, kind COLLATE \"C\"",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        out.dangling_edges = rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        let rows = sqlx::query(
            "SELECT seq, parent_seq FROM tasks \
             WHERE parent_seq IS NOT NULL AND parent_seq NOT IN (SELECT seq FROM tasks) ORDER BY seq",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        out.orphans = rows.iter().map(|r| (tid(r.get(0)), r.get(1))).collect();
        let rows = sqlx::query(
            "SELECT ('o' || objective_id) COLLATE \"C\" AS rec, task_seq FROM objective_tasks \
               WHERE task_seq NOT IN (SELECT seq FROM tasks) \
             UNION ALL SELECT ('i' || id) COLLATE \"C\", task_seq FROM insights \
               WHERE task_seq IS NOT NULL AND task_seq NOT IN (SELECT seq FROM tasks) \
             UNION ALL SELECT ('d' || id) COLLATE \"C\", task_seq FROM decisions \
               WHERE task_seq IS NOT NULL AND task_seq NOT IN (SELECT seq FROM tasks) \
             ORDER BY 1, 2",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        out.dangling_links = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        Ok(out)
    }

    async fn repair(&self, fix: &Integrity, actor: &Actor) -> Result<usize> {
        retrying(move || self.tx_repair(fix, actor)).await
    }

    async fn archive(&self, ids: &[TaskId], actor: &Actor) -> Result<usize> {
        retrying(move || self.tx_archive(ids, actor)).await
    }

    async fn optimize(&self) -> Result<()> {
        // VACUUM cannot run in a transaction: one plain statement. Tables the user does not
        // own are skipped with a warning by the server.
        sqlx::raw_sql(
            "VACUUM (ANALYZE) meta, sessions, tasks, edges, objectives, objective_tasks, insights, \
             decisions, artifacts, events, attempts",
        )
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }
}
