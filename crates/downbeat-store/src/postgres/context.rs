//! Sessions, objectives, insights, decisions, artifacts, the event log and `meta`: [`ContextStore`]
//! for [`PostgresStore`].
//!
//! Must never: open connections or run migrations (`mod.rs` does that), or decode a row or
//! apply a rule that `crate::shared` already has a function for another way.

use super::*;

impl PostgresStore {
    async fn tx_start_session(&self, label: &str, actor: &Actor) -> R<Session> {
        let mut t = self.write().await?;
        // One session start at a time, so two starts cannot leave two sessions open.
        sqlx::query("LOCK TABLE sessions IN SHARE ROW EXCLUSIVE MODE")
            .execute(t.c())
            .await
            .map_err(db)?;
        let open: Vec<i64> =
            sqlx::query_scalar("SELECT id FROM sessions WHERE ended_at IS NULL ORDER BY id")
                .fetch_all(t.c())
                .await
                .map_err(db)?;
        if !open.is_empty() {
            sqlx::query("UPDATE sessions SET ended_at = $1 WHERE id = ANY($2)")
                .bind(actor.now.0)
                .bind(&open)
                .execute(t.c())
                .await
                .map_err(db)?;
        }
        for id in open {
            t.event(
                actor,
                "session.ended",
                &rid(RecordKind::Session, id).to_string(),
                None,
                None,
            );
        }
        let row = sqlx::query(
            "INSERT INTO sessions(label, actor, started_at) VALUES ($1, $2, $3) RETURNING *",
        )
        .bind(label)
        .bind(&actor.name)
        .bind(actor.now.0)
        .fetch_one(t.c())
        .await
        .map_err(db)?;
        let s = row_session(&row);
        let mut a = actor.clone();
        a.session = Some(s.id);
        t.event(
            &a,
            "session.started",
            &s.id.to_string(),
            None,
            Some(json!({"label": label})),
        );
        t.commit().await?;
        Ok(s)
    }

    async fn tx_end_session(&self, id: RecordId, actor: &Actor) -> R<Session> {
        let mut t = self.write().await?;
        let row = sqlx::query(
            "UPDATE sessions SET ended_at = $1 WHERE id = $2 AND ended_at IS NULL RETURNING *",
        )
        .bind(actor.now.0)
        .bind(id.num)
        .fetch_optional(t.c())
        .await
        .map_err(db)?;
        let Some(row) = row else {
            return Err(Error::NotFound {
                what: "open session",
                query: id.to_string(),
            }
            .into());
        };
        t.event(actor, "session.ended", &id.to_string(), None, None);
        t.commit().await?;
        Ok(row_session(&row))
    }

    async fn tx_add_objective(&self, title: &str, tasks: &[TaskId], actor: &Actor) -> R<Objective> {
        let mut t = self.write().await?;
        require_live(t.c(), tasks).await?;
        let seqs: Vec<i64> = tasks.iter().map(|&t| seq(t)).collect();
        let id = insert_objective(&mut t, title, &seqs, actor).await?;
        let o = objective_in(t.c(), id, false).await?;
        t.commit().await?;
        Ok(o)
    }

    async fn tx_set_objective_status(
        &self,
        id: RecordId,
        status: ObjectiveStatus,
        actor: &Actor,
    ) -> R<Objective> {
        let mut t = self.write().await?;
        let before = objective_in(t.c(), id.num, true).await?;
        if before.status == status {
            return Ok(before);
        }
        sqlx::query("UPDATE objectives SET status = $1, updated_at = $2 WHERE id = $3")
            .bind(status.as_str())
            .bind(actor.now.0)
            .bind(id.num)
            .execute(t.c())
            .await
            .map_err(db)?;
        t.event(
            actor,
            "objective.status",
            &id.to_string(),
            Some(json!({"status": before.status})),
            Some(json!({"status": status})),
        );
        let o = objective_in(t.c(), id.num, false).await?;
        t.commit().await?;
        Ok(o)
    }

    async fn tx_link_objective(
        &self,
        id: RecordId,
        tasks: &[TaskId],
        actor: &Actor,
    ) -> R<Objective> {
        let mut t = self.write().await?;
        objective_in(t.c(), id.num, true).await?;
        require_live(t.c(), tasks).await?;
        let mut added = Vec::new();
        for &task in tasks {
            let r = sqlx::query(
                "INSERT INTO objective_tasks(objective_id, task_seq) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            )
            .bind(id.num)
            .bind(seq(task))
            .execute(t.c())
            .await
            .map_err(db)?;
            if r.rows_affected() == 1 {
                added.push(task.to_string());
            }
        }
        if !added.is_empty() {
            sqlx::query("UPDATE objectives SET updated_at = $1 WHERE id = $2")
                .bind(actor.now.0)
                .bind(id.num)
                .execute(t.c())
                .await
                .map_err(db)?;
            t.event(
                actor,
                "objective.linked",
                &id.to_string(),
                None,
                Some(json!({ "tasks": added })),
            );
        }
        let o = objective_in(t.c(), id.num, false).await?;
        t.commit().await?;
        Ok(o)
    }

    async fn tx_add_insight(&self, text: &str, task: Option<TaskId>, actor: &Actor) -> R<Insight> {
        let mut t = self.write().await?;
        if let Some(id) = task {
            require_live(t.c(), &[id]).await?;
        }
        let id = insert_insight(&mut t, text, task.map(seq), actor).await?;
        let row = sqlx::query("SELECT * FROM insights WHERE id = $1")
            .bind(id)
            .fetch_one(t.c())
            .await
            .map_err(db)?;
        t.commit().await?;
        Ok(row_insight(&row))
    }

    async fn tx_add_decision(
        &self,
        text: &str,
        why: &str,
        task: Option<TaskId>,
        supersedes: Option<RecordId>,
        actor: &Actor,
    ) -> R<Decision> {
        let mut t = self.write().await?;
        if let Some(id) = task {
            require_live(t.c(), &[id]).await?;
        }
        let id = insert_decision(
            &mut t,
            text,
            why,
            task.map(seq),
            supersedes.map(|s| s.num),
            actor,
        )
        .await?;
        let row = sqlx::query("SELECT * FROM decisions WHERE id = $1")
            .bind(id)
            .fetch_one(t.c())
            .await
            .map_err(db)?;
        t.commit().await?;
        Ok(row_decision(&row)?)
    }

    async fn tx_propose_decision(
        &self,
        text: &str,
        why: &str,
        task: Option<TaskId>,
        actor: &Actor,
    ) -> R<Decision> {
        if text.trim().is_empty() {
            return Err(Error::Invalid("a decision needs a non-empty text".into()).into());
        }
        let mut t = self.write().await?;
        if let Some(id) = task {
            require_live(t.c(), &[id]).await?;
        }
        let row = sqlx::query(
            "INSERT INTO decisions(text, why, task_seq, session_id, created_at, status) \
             VALUES ($1, $2, $3, $4, $5, 'proposed') RETURNING *",
        )
        .bind(text.trim())
        .bind(why.trim())
        .bind(task.map(seq))
        .bind(actor.session.map(|s| s.num))
        .bind(actor.now.0)
        .fetch_one(t.c())
        .await
        .map_err(db)?;
        let d = row_decision(&row)?;
        let after = proposed_event(text, why, task.map(seq));
        t.event(
            actor,
            "decision.proposed",
            &d.id.to_string(),
            None,
            Some(after),
        );
        t.commit().await?;
        Ok(d)
    }

    async fn tx_decide(
        &self,
        id: RecordId,
        status: DecisionStatus,
        why: &str,
        actor: &Actor,
    ) -> R<Decision> {
        let mut t = self.write().await?;
        let current: Option<String> =
            sqlx::query_scalar("SELECT status FROM decisions WHERE id = $1 FOR UPDATE")
                .bind(id.num)
                .fetch_optional(t.c())
                .await
                .map_err(db)?;
        let action = decision_verdict(id, current.as_deref(), status)?;
        let row = sqlx::query(
            "UPDATE decisions SET status = $1, decided_at = $2, decided_why = $3 WHERE id = $4 RETURNING *",
        )
        .bind(status.as_str())
        .bind(actor.now.0)
        .bind(why.trim())
        .bind(id.num)
        .fetch_one(t.c())
        .await
        .map_err(db)?;
        t.event(
            actor,
            action,
            &id.to_string(),
            Some(json!({"status": "proposed"})),
            Some(json!({"status": status.as_str(), "why": why.trim()})),
        );
        t.commit().await?;
        Ok(row_decision(&row)?)
    }

    async fn tx_add_artifact(
        &self,
        task: TaskId,
        path: &str,
        size: Option<i64>,
        sha256: Option<&str>,
        actor: &Actor,
    ) -> R<Artifact> {
        let mut t = self.write().await?;
        require_live(t.c(), &[task]).await?;
        sqlx::query(
            "INSERT INTO artifacts(task_seq, path, size, sha256, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(seq(task))
        .bind(path)
        .bind(size)
        .bind(sha256)
        .bind(actor.now.0)
        .execute(t.c())
        .await
        .map_err(db)?;
        t.event(
            actor,
            "artifact.added",
            &task.to_string(),
            None,
            Some(json!({"path": path, "size": size})),
        );
        t.commit().await?;
        Ok(Artifact {
            task,
            path: path.to_owned(),
            size,
            sha256: sha256.map(str::to_owned),
            created_at: actor.now,
        })
    }

    async fn tx_record_event(
        &self,
        action: &str,
        entity: &str,
        after: Option<Value>,
        actor: &Actor,
    ) -> R<i64> {
        let mut t = self.write().await?;
        t.event(actor, action, entity, None, after);
        t.commit().await
    }

    async fn tx_meta_set(&self, key: &str, value: &str) -> R<()> {
        let mut t = self.write().await?;
        sqlx::query(
            "INSERT INTO meta(key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(t.c())
        .await
        .map_err(db)?;
        let at: i64 = sqlx::query_scalar(
            "SELECT coalesce((SELECT at FROM events ORDER BY seq DESC LIMIT 1), 0)::bigint",
        )
        .fetch_one(t.c())
        .await
        .map_err(db)?;
        let (action, entity, after) = meta_set_event(key, value);
        t.event(
            &Actor::new(META_ACTOR, Timestamp(at)),
            action,
            entity,
            None,
            Some(after),
        );
        t.commit().await?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn tx_meta_swap(
        &self,
        key: &str,
        expected: Option<&str>,
        new: &str,
        action: &str,
        entity: &str,
        after: Option<Value>,
        actor: &Actor,
    ) -> R<bool> {
        let mut t = self.write().await?;
        // Under READ COMMITTED a concurrent update of the row makes this one wait and look at
        // the row again, so two swaps from the same value cannot both succeed.
        let swapped = match expected {
            None => {
                sqlx::query(
                    "INSERT INTO meta(key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
                )
                .bind(key)
                .bind(new)
                .execute(t.c())
                .await
            }
            Some(old) => {
                sqlx::query("UPDATE meta SET value = $1 WHERE key = $2 AND value = $3")
                    .bind(new)
                    .bind(key)
                    .bind(old)
                    .execute(t.c())
                    .await
            }
        }
        .map_err(db)?
        .rows_affected()
            == 1;
        if !swapped {
            return Ok(false);
        }
        t.event(actor, action, entity, None, after);
        // Holds live here: every runner must hear of one at once.
        t.wake = true;
        t.commit().await?;
        Ok(true)
    }
}

#[async_trait]
impl ContextStore for PostgresStore {
    async fn start_session(&self, label: &str, actor: &Actor) -> Result<Session> {
        retrying(move || self.tx_start_session(label, actor)).await
    }

    async fn end_session(&self, id: RecordId, actor: &Actor) -> Result<Session> {
        retrying(move || self.tx_end_session(id, actor)).await
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
        retrying(move || self.tx_add_objective(title, tasks, actor)).await
    }

    async fn set_objective_status(
        &self,
        id: RecordId,
        status: ObjectiveStatus,
        actor: &Actor,
    ) -> Result<Objective> {
        retrying(move || self.tx_set_objective_status(id, status, actor)).await
    }

    async fn link_objective(
        &self,
        id: RecordId,
        tasks: &[TaskId],
        actor: &Actor,
    ) -> Result<Objective> {
        retrying(move || self.tx_link_objective(id, tasks, actor)).await
    }

    async fn objectives(&self) -> Result<Vec<Objective>> {
        // One snapshot, so links and objectives agree.
        let mut tx = self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await
            .map_err(db)?;
        let rows = sqlx::query(
            "SELECT id, title, status, created_at, updated_at FROM objectives ORDER BY id",
        )
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        let links = sqlx::query(
            "SELECT objective_id, task_seq FROM objective_tasks ORDER BY objective_id, task_seq",
        )
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        objectives_of(&rows, links.iter().map(|l| (l.get(0), l.get(1))))
    }

    async fn add_insight(
        &self,
        text: &str,
        task: Option<TaskId>,
        actor: &Actor,
    ) -> Result<Insight> {
        retrying(move || self.tx_add_insight(text, task, actor)).await
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
        retrying(move || self.tx_add_decision(text, why, task, supersedes, actor)).await
    }

    async fn propose_decision(
        &self,
        text: &str,
        why: &str,
        task: Option<TaskId>,
        actor: &Actor,
    ) -> Result<Decision> {
        retrying(move || self.tx_propose_decision(text, why, task, actor)).await
    }

    async fn decide(
        &self,
        id: RecordId,
        status: DecisionStatus,
        why: &str,
        actor: &Actor,
    ) -> Result<Decision> {
        retrying(move || self.tx_decide(id, status, why, actor)).await
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
        retrying(move || self.tx_add_artifact(task, path, size, sha256, actor)).await
    }

    async fn flags(&self, filter: &FlagFilter) -> Result<Vec<FlagRecord>> {
        let rows = sqlx::query(AssertSqlSafe(flags_sql(filter)))
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        Ok(rows.iter().map(row_flag).collect())
    }

    async fn artifacts(&self) -> Result<Vec<Artifact>> {
        let rows = sqlx::query(
            "SELECT task_seq, path, size, sha256, created_at FROM artifacts \
             ORDER BY task_seq, path COLLATE \"C\", id",
        )
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
        let mut qb = QueryBuilder::<Postgres>::new("");
        if q.limit.is_some() {
            qb.push("SELECT * FROM (");
        }
        qb.push(
            "SELECT seq, at, actor, session_id, action, entity, before::text AS before, after::text AS after \
             FROM events WHERE true",
        );
        if let Some(s) = q.since {
            qb.push(" AND at >= ").push_bind(s.0);
        }
        if let Some(a) = q.after_seq {
            qb.push(" AND seq > ").push_bind(a);
        }
        if let Some(t) = q.task {
            qb.push(" AND task_seq = ").push_bind(i64::from(t.seq()));
        }
        if let Some(a) = &q.exclude_actor {
            qb.push(" AND actor <> ").push_bind(a.clone());
        }
        match q.limit {
            // The most recent `l`, still in order.
            Some(l) => qb.push(format!(
                " ORDER BY seq DESC LIMIT {l}) AS recent ORDER BY seq"
            )),
            None => qb.push(" ORDER BY seq"),
        };
        let rows = qb.build().fetch_all(&self.pool).await.map_err(db)?;
        Ok(rows.iter().map(row_event).collect())
    }

    async fn record_event(
        &self,
        action: &str,
        entity: &str,
        after: Option<Value>,
        actor: &Actor,
    ) -> Result<i64> {
        retrying(|| self.tx_record_event(action, entity, after.clone(), actor)).await
    }

    async fn last_event_seq(&self) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT coalesce(max(seq), 0)::bigint FROM events")
                .fetch_one(&self.pool)
                .await
                .map_err(db)?,
        )
    }

    async fn metrics(&self) -> Result<Metrics> {
        let rows = sqlx::query(
            "SELECT entity, at, after ->> 'status' AS st FROM events WHERE action = 'task.status' ORDER BY seq",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        let mut m = status_metrics(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))));
        let counts = sqlx::query(
            "SELECT count(*) FILTER (WHERE action = 'session.started'), \
                    count(*) FILTER (WHERE action IN ('decision.added', 'decision.accepted')), \
                    count(*) FILTER (WHERE action = 'insight.added'), \
                    count(*) FROM events",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(db)?;
        let n = |i: usize| counts.get::<i64, _>(i) as u64;
        m.sessions = n(0);
        m.decisions = n(1);
        m.insights = n(2);
        m.events = n(3);
        Ok(m)
    }

    async fn meta_get(&self, key: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar("SELECT value FROM meta WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?)
    }

    async fn meta_set(&self, key: &str, value: &str) -> Result<()> {
        retrying(|| self.tx_meta_set(key, value)).await
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
        retrying(|| self.tx_meta_swap(key, expected, new, action, entity, after.clone(), actor))
            .await
    }
}
