//! Sessions, objectives, insights, decisions, artifacts, the event log and `meta`: [`ContextStore`]
//! for [`SqliteStore`].
//!
//! Must never: open connections or run migrations (`mod.rs` does that), or decode a row or
//! apply a rule that `crate::shared` already has a function for another way.

use super::*;

#[async_trait]
impl ContextStore for SqliteStore {
    async fn start_session(&self, label: &str, actor: &Actor) -> Result<Session> {
        let mut tx = self.write().await?;
        let c: &mut SqliteConnection = &mut tx;
        let open: Vec<i64> = sqlx::query_scalar("SELECT id FROM sessions WHERE ended_at IS NULL")
            .fetch_all(&mut *c)
            .await
            .map_err(db)?;
        for id in open {
            sqlx::query("UPDATE sessions SET ended_at = ? WHERE id = ?")
                .bind(actor.now.0)
                .bind(id)
                .execute(&mut *c)
                .await
                .map_err(db)?;
            event(
                c,
                actor,
                "session.ended",
                &rid(RecordKind::Session, id).to_string(),
                None,
                None,
            )
            .await?;
        }
        let id = sqlx::query("INSERT INTO sessions(label, actor, started_at) VALUES (?, ?, ?)")
            .bind(label)
            .bind(&actor.name)
            .bind(actor.now.0)
            .execute(&mut *c)
            .await
            .map_err(db)?
            .last_insert_rowid();
        let r = rid(RecordKind::Session, id);
        let mut a = actor.clone();
        a.session = Some(r);
        event(
            c,
            &a,
            "session.started",
            &r.to_string(),
            None,
            Some(json!({"label": label})),
        )
        .await?;
        let row = sqlx::query("SELECT * FROM sessions WHERE id = ?")
            .bind(id)
            .fetch_one(&mut *c)
            .await
            .map_err(db)?;
        let s = row_session(&row);
        tx.commit().await.map_err(db)?;
        Ok(s)
    }

    async fn end_session(&self, id: RecordId, actor: &Actor) -> Result<Session> {
        let mut tx = self.write().await?;
        let c: &mut SqliteConnection = &mut tx;
        let r = sqlx::query("UPDATE sessions SET ended_at = ? WHERE id = ? AND ended_at IS NULL")
            .bind(actor.now.0)
            .bind(id.num)
            .execute(&mut *c)
            .await
            .map_err(db)?;
        if r.rows_affected() == 0 {
            return Err(Error::NotFound {
                what: "open session",
                query: id.to_string(),
            });
        }
        event(c, actor, "session.ended", &id.to_string(), None, None).await?;
        let row = sqlx::query("SELECT * FROM sessions WHERE id = ?")
            .bind(id.num)
            .fetch_one(&mut *c)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(row_session(&row))
    }

    async fn current_session(&self) -> Result<Option<Session>> {
        let row =
            sqlx::query("SELECT * FROM sessions WHERE ended_at IS NULL ORDER BY id DESC LIMIT 1")
                .fetch_optional(&self.pool)
                .await
                .map_err(db)?;
        Ok(row.as_ref().map(row_session))
    }

    async fn sessions(&self) -> Result<Vec<Session>> {
        let rows = sqlx::query("SELECT * FROM sessions ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        Ok(rows.iter().map(row_session).collect())
    }

    async fn add_objective(
        &self,
        title: &str,
        tasks: &[TaskId],
        actor: &Actor,
    ) -> Result<Objective> {
        let mut tx = self.write().await?;
        let c: &mut SqliteConnection = &mut tx;
        for t in tasks {
            require_live(c, *t).await?;
        }
        let seqs: Vec<i64> = tasks.iter().map(|&t| seq(t)).collect();
        let id = insert_objective(c, title, &seqs, actor).await?;
        let o = objective_in(c, id).await?;
        tx.commit().await.map_err(db)?;
        Ok(o)
    }

    async fn set_objective_status(
        &self,
        id: RecordId,
        status: ObjectiveStatus,
        actor: &Actor,
    ) -> Result<Objective> {
        let mut tx = self.write().await?;
        let c: &mut SqliteConnection = &mut tx;
        let before = objective_in(c, id.num).await?;
        if before.status == status {
            return Ok(before);
        }
        sqlx::query("UPDATE objectives SET status = ?, updated_at = ? WHERE id = ?")
            .bind(status.as_str())
            .bind(actor.now.0)
            .bind(id.num)
            .execute(&mut *c)
            .await
            .map_err(db)?;
        event(
            c,
            actor,
            "objective.status",
            &id.to_string(),
            Some(json!({"status": before.status})),
            Some(json!({"status": status})),
        )
        .await?;
        let o = objective_in(c, id.num).await?;
        tx.commit().await.map_err(db)?;
        Ok(o)
    }

    async fn link_objective(
        &self,
        id: RecordId,
        tasks: &[TaskId],
        actor: &Actor,
    ) -> Result<Objective> {
        let mut tx = self.write().await?;
        let c: &mut SqliteConnection = &mut tx;
        objective_in(c, id.num).await?;
        let mut added = Vec::new();
        for &t in tasks {
            require_live(c, t).await?;
            let r = sqlx::query(
                "INSERT OR IGNORE INTO objective_tasks(objective_id, task_seq) VALUES (?, ?)",
            )
            .bind(id.num)
            .bind(seq(t))
            .execute(&mut *c)
            .await
            .map_err(db)?;
            if r.rows_affected() == 1 {
                added.push(t.to_string());
            }
        }
        if !added.is_empty() {
            sqlx::query("UPDATE objectives SET updated_at = ? WHERE id = ?")
                .bind(actor.now.0)
                .bind(id.num)
                .execute(&mut *c)
                .await
                .map_err(db)?;
            let after = json!({ "tasks": added });
            event(
                c,
                actor,
                "objective.linked",
                &id.to_string(),
                None,
                Some(after),
            )
            .await?;
        }
        let o = objective_in(c, id.num).await?;
        tx.commit().await.map_err(db)?;
        Ok(o)
    }

    async fn objectives(&self) -> Result<Vec<Objective>> {
        let rows = sqlx::query(
            "SELECT id, title, status, created_at, updated_at FROM objectives ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        let links = sqlx::query(
            "SELECT objective_id, task_seq FROM objective_tasks ORDER BY objective_id, task_seq",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        objectives_of(&rows, links.iter().map(|l| (l.get(0), l.get(1))))
    }

    async fn add_insight(
        &self,
        text: &str,
        task: Option<TaskId>,
        actor: &Actor,
    ) -> Result<Insight> {
        let mut tx = self.write().await?;
        let c: &mut SqliteConnection = &mut tx;
        if let Some(t) = task {
            require_live(c, t).await?;
        }
        let id = insert_insight(c, text, task.map(seq), actor).await?;
        let row = sqlx::query("SELECT * FROM insights WHERE id = ?")
            .bind(id)
            .fetch_one(&mut *c)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(row_insight(&row))
    }

    async fn insights(&self) -> Result<Vec<Insight>> {
        let rows = sqlx::query("SELECT * FROM insights ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        Ok(rows.iter().map(row_insight).collect())
    }

    async fn add_decision(
        &self,
        text: &str,
        why: &str,
        task: Option<TaskId>,
        supersedes: Option<RecordId>,
        actor: &Actor,
    ) -> Result<Decision> {
        let mut tx = self.write().await?;
        let c: &mut SqliteConnection = &mut tx;
        if let Some(t) = task {
            require_live(c, t).await?;
        }
        let id = insert_decision(
            c,
            text,
            why,
            task.map(seq),
            supersedes.map(|s| s.num),
            actor,
        )
        .await?;
        let row = sqlx::query("SELECT * FROM decisions WHERE id = ?")
            .bind(id)
            .fetch_one(&mut *c)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        row_decision(&row)
    }

    async fn propose_decision(
        &self,
        text: &str,
        why: &str,
        task: Option<TaskId>,
        actor: &Actor,
    ) -> Result<Decision> {
        if text.trim().is_empty() {
            return Err(Error::Invalid("a decision needs a non-empty text".into()));
        }
        let mut tx = self.write().await?;
        let c: &mut SqliteConnection = &mut tx;
        if let Some(t) = task {
            require_live(c, t).await?;
        }
        let row = sqlx::query(
            "INSERT INTO decisions(text, why, task_seq, session_id, created_at, status) \
             VALUES (?, ?, ?, ?, ?, 'proposed') RETURNING *",
        )
        .bind(text.trim())
        .bind(why.trim())
        .bind(task.map(seq))
        .bind(actor.session.map(|s| s.num))
        .bind(actor.now.0)
        .fetch_one(&mut *c)
        .await
        .map_err(db)?;
        let d = row_decision(&row)?;
        let after = proposed_event(text, why, task.map(seq));
        event(
            c,
            actor,
            "decision.proposed",
            &d.id.to_string(),
            None,
            Some(after),
        )
        .await?;
        tx.commit().await.map_err(db)?;
        Ok(d)
    }

    async fn decide(
        &self,
        id: RecordId,
        status: DecisionStatus,
        why: &str,
        actor: &Actor,
    ) -> Result<Decision> {
        let mut tx = self.write().await?;
        let c: &mut SqliteConnection = &mut tx;
        let current: Option<String> =
            sqlx::query_scalar("SELECT status FROM decisions WHERE id = ?")
                .bind(id.num)
                .fetch_optional(&mut *c)
                .await
                .map_err(db)?;
        let action = decision_verdict(id, current.as_deref(), status)?;
        let row = sqlx::query(
            "UPDATE decisions SET status = ?, decided_at = ?, decided_why = ? WHERE id = ? RETURNING *",
        )
        .bind(status.as_str())
        .bind(actor.now.0)
        .bind(why.trim())
        .bind(id.num)
        .fetch_one(&mut *c)
        .await
        .map_err(db)?;
        event(
            c,
            actor,
            action,
            &id.to_string(),
            Some(json!({"status": "proposed"})),
            Some(json!({"status": status.as_str(), "why": why.trim()})),
        )
        .await?;
        tx.commit().await.map_err(db)?;
        row_decision(&row)
    }

    async fn decisions(&self) -> Result<Vec<Decision>> {
        let rows = sqlx::query("SELECT * FROM decisions ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter().map(row_decision).collect()
    }

    async fn add_artifact(
        &self,
        task: TaskId,
        path: &str,
        size: Option<i64>,
        sha256: Option<&str>,
        actor: &Actor,
    ) -> Result<Artifact> {
        let mut tx = self.write().await?;
        let c: &mut SqliteConnection = &mut tx;
        require_live(c, task).await?;
        sqlx::query("INSERT INTO artifacts(task_seq, path, size, sha256, created_at) VALUES (?, ?, ?, ?, ?)")
            .bind(seq(task))
            .bind(path)
            .bind(size)
            .bind(sha256)
            .bind(actor.now.0)
            .execute(&mut *c)
            .await
            .map_err(db)?;
        event(
            c,
            actor,
            "artifact.added",
            &task.to_string(),
            None,
            Some(json!({"path": path, "size": size})),
        )
        .await?;
        tx.commit().await.map_err(db)?;
        Ok(Artifact {
            task,
            path: path.to_owned(),
            size,
            sha256: sha256.map(str::to_owned),
            created_at: actor.now,
        })
    }

    async fn flags(&self, filter: &FlagFilter) -> Result<Vec<FlagRecord>> {
        let rows = sqlx::query(AssertSqlSafe(flags_sql(filter)))
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        Ok(rows.iter().map(row_flag).collect())
    }

    async fn artifacts(&self) -> Result<Vec<Artifact>> {
        let rows = sqlx::query("SELECT task_seq, path, size, sha256, created_at FROM artifacts ORDER BY task_seq, path, id")
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        Ok(rows
            .iter()
            .map(|r| Artifact {
                task: tid(r.get(0)),
                path: r.get(1),
                size: r.get(2),
                sha256: r.get(3),
                created_at: Timestamp(r.get(4)),
            })
            .collect())
    }

    async fn events(&self, q: &EventQuery) -> Result<Vec<Event>> {
        let mut sql = String::from(
            "SELECT seq, at, actor, session_id, action, entity, before, after FROM events WHERE 1=1",
        );
        if q.since.is_some() {
            sql.push_str(" AND at >= ?");
        }
        if q.after_seq.is_some() {
            sql.push_str(" AND seq > ?");
        }
        if q.task.is_some() {
            sql.push_str(" AND task_seq = ?");
        }
        if q.exclude_actor.is_some() {
            sql.push_str(" AND actor <> ?");
        }
        sql.push_str(" ORDER BY seq");
        if let Some(l) = q.limit {
            // The most recent `l`, still in order.
            sql = format!("SELECT * FROM ({sql} DESC LIMIT {l}) ORDER BY seq");
        }
        // Only fixed fragments and a number are spliced in; values are bound.
        let mut query = sqlx::query(AssertSqlSafe(sql));
        if let Some(s) = q.since {
            query = query.bind(s.0);
        }
        if let Some(a) = q.after_seq {
            query = query.bind(a);
        }
        if let Some(t) = q.task {
            query = query.bind(seq(t));
        }
        if let Some(a) = &q.exclude_actor {
            query = query.bind(a);
        }
        let rows = query.fetch_all(&self.pool).await.map_err(db)?;
        Ok(rows.iter().map(row_event).collect())
    }

    async fn record_event(
        &self,
        action: &str,
        entity: &str,
        after: Option<Value>,
        actor: &Actor,
    ) -> Result<i64> {
        let mut c = self.write_conn().await?;
        event(&mut c, actor, action, entity, None, after).await
    }

    async fn last_event_seq(&self) -> Result<i64> {
        sqlx::query_scalar("SELECT coalesce(max(seq), 0) FROM events")
            .fetch_one(&self.pool)
            .await
            .map_err(db)
    }

    async fn metrics(&self) -> Result<Metrics> {
        let rows = sqlx::query(
            "SELECT entity, at, json_extract(after, '$.status') AS st FROM events WHERE action = 'task.status' ORDER BY seq",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        let mut m = status_metrics(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))));
        let count = |sql: &'static str| async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(&self.pool)
                .await
                .map(|n| n as u64)
                .map_err(db)
        };
        m.sessions = count("SELECT count(*) FROM events WHERE action = 'session.started'").await?;
        m.decisions = count(
            "SELECT count(*) FROM events WHERE action IN ('decision.added', 'decision.accepted')",
        )
        .await?;
        m.insights = count("SELECT count(*) FROM events WHERE action = 'insight.added'").await?;
        m.events = count("SELECT count(*) FROM events").await?;
        Ok(m)
    }

    async fn meta_get(&self, key: &str) -> Result<Option<String>> {
        sqlx::query_scalar("SELECT value FROM meta WHERE key = ?")
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)
    }

    async fn meta_set(&self, key: &str, value: &str) -> Result<()> {
        let mut tx = self.write().await?;
        let c: &mut SqliteConnection = &mut tx;
        sqlx::query("INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value")
            .bind(key)
            .bind(value)
            .execute(&mut *c)
            .await
            .map_err(db)?;
        let at: i64 = sqlx::query_scalar(
            "SELECT coalesce((SELECT at FROM events ORDER BY seq DESC LIMIT 1), 0)",
        )
        .fetch_one(&mut *c)
        .await
        .map_err(db)?;
        let (action, entity, after) = meta_set_event(key, value);
        event(
            c,
            &Actor::new(META_ACTOR, Timestamp(at)),
            action,
            entity,
            None,
            Some(after),
        )
        .await?;
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    async fn meta_swap(
        &self,
        key: &str,
        expected: Option<&str>,
        new: &str,
        action: &str,
        entity: &str,
        after: Option<Value>,
        actor: &Actor,
    ) -> Result<bool> {
        let mut tx = self.write().await?;
        let c: &mut SqliteConnection = &mut tx;
        let swapped = match expected {
            None => {
                sqlx::query(
                    "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO NOTHING",
                )
                .bind(key)
                .bind(new)
                .execute(&mut *c)
                .await
            }
            Some(old) => {
                sqlx::query("UPDATE meta SET value = ? WHERE key = ? AND value = ?")
                    .bind(new)
                    .bind(key)
                    .bind(old)
                    .execute(&mut *c)
                    .await
            }
        }
        .map_err(db)?
        .rows_affected()
            == 1;
        if !swapped {
            return Ok(false);
        }
        event(c, actor, action, entity, None, after).await?;
        tx.commit().await.map_err(db)?;
        Ok(true)
    }
}
