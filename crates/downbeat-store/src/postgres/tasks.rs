//! Tasks, edges and the graph: [`TaskStore`] for [`PostgresStore`].
//!
//! Must never: open connections or run migrations (`mod.rs` does that), or decode a row or
//! apply a rule that `crate::shared` already has a function for another way.

use super::*;

impl PostgresStore {
    async fn tx_apply_plan(&self, plan: &ValidatedPlan, actor: &Actor) -> R<AppliedPlan> {
        let mut t = self.write().await?;
        lock_graph(&mut t).await?;
        let (out, _) = insert_plan(&mut t, plan, actor).await?;
        // A cycle may form together with what is already stored: check the whole graph.
        if plan.edges.iter().any(|e| e.2.orders_work())
            || plan.tasks.iter().any(|t| t.parent.is_some())
        {
            check_acyclic(t.c()).await?;
        }
        t.event(
            actor,
            "plan.applied",
            plan.name.as_deref().unwrap_or("plan"),
            None,
            Some(json!({"tasks": out.tasks.len(), "edges": out.edges})),
        );
        t.wake = true;
        t.commit().await?;
        Ok(out)
    }

    async fn tx_apply_plan_changes(&self, ch: &PlanChanges, actor: &Actor) -> R<AppliedPlan> {
        let mut t = self.write().await?;
        lock_graph(&mut t).await?;
        for &(id, status) in &ch.expect {
            let now = get_task(t.c(), id, true).await?.status;
            if now != status {
                return Err(moved_on(id, status, now).into());
            }
        }
        for e in &ch.edges_removed {
            remove_edge_in(&mut t, *e, actor).await?;
        }
        for (id, patch) in &ch.updates {
            update_in(&mut t, *id, patch, actor).await?;
        }
        let (mut out, base) = insert_plan(&mut t, &ch.plan, actor).await?;
        let to_id = |r: TaskRef| match r {
            TaskRef::New(i) => tid(base + i as i64),
            TaskRef::Existing(id) => id,
        };
        for &(id, parent) in &ch.parents {
            let patch = TaskPatch {
                parent: Some(parent.map(to_id)),
                ..TaskPatch::default()
            };
            update_in(&mut t, id, &patch, actor).await?;
        }
        for &(from, to, kind) in &ch.edges_added {
            let edge = Edge {
                from: to_id(from),
                to,
                kind,
            };
            if add_edge_in(&mut t, edge, actor).await? {
                out.edges += 1;
            }
        }
        for &(r, status) in &ch.statuses {
            status_in(&mut t, to_id(r), status, Some(STARTED_NOTE), actor).await?;
        }
        let mut cancelled = 0;
        for &id in &ch.cancel {
            cancelled += status_in(&mut t, id, Status::Cancelled, Some(REMOVED_NOTE), actor)
                .await?
                .len();
        }
        if let Some((key, value)) = &ch.record {
            sqlx::query(
                "INSERT INTO meta(key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )
            .bind(key)
            .bind(value)
            .execute(t.c())
            .await
            .map_err(db)?;
        }
        // The whole graph only when the changes reach stored tasks; else the new ones alone.
        if ch.reaches_stored() {
            check_acyclic(t.c()).await?;
        } else if let Some(path) = ch.plan.own_cycle() {
            return Err(Error::Cycle(new_tasks_cycle(path, base)).into());
        }
        t.event(
            actor,
            "plan.applied",
            ch.plan.name.as_deref().unwrap_or("plan"),
            None,
            Some(changes_event(ch, &out, cancelled)),
        );
        t.wake = true;
        t.commit().await?;
        Ok(out)
    }

    async fn tx_create_task(&self, new: &NewTask, deps: &[TaskId], actor: &Actor) -> R<Task> {
        let mut t = self.write().await?;
        let grows_graph = new.parent.is_some() || !deps.is_empty();
        if grows_graph {
            lock_graph(&mut t).await?;
        }
        let refs: Vec<TaskId> = new.parent.into_iter().chain(deps.iter().copied()).collect();
        require_live(t.c(), &refs).await?;
        let s = alloc_seqs(t.c(), 1).await?;
        insert_task(t.c(), s, new, new.parent.map(seq), actor.now).await?;
        let task = get_task(t.c(), tid(s), false).await?;
        t.event(
            actor,
            "task.created",
            &task.id.to_string(),
            None,
            Some(tjson(&task)),
        );
        if !deps.is_empty() {
            let from: Vec<i64> = deps.iter().map(|&d| seq(d)).collect();
            sqlx::query(
                "INSERT INTO edges(from_seq, to_seq, kind, created_at) \
                 SELECT f, $2, 'blocks', $3 FROM unnest($1::bigint[]) AS f ON CONFLICT DO NOTHING",
            )
            .bind(&from)
            .bind(s)
            .bind(actor.now.0)
            .execute(t.c())
            .await
            .map_err(db)?;
            for d in deps {
                t.event(
                    actor,
                    "edge.added",
                    &task.id.to_string(),
                    None,
                    Some(json!({"from": d.to_string(), "kind": "blocks"})),
                );
            }
        }
        if grows_graph {
            check_acyclic(t.c()).await?;
        }
        t.wake = true;
        t.commit().await?;
        Ok(task)
    }

    async fn tx_update_task(&self, id: TaskId, patch: &TaskPatch, actor: &Actor) -> R<Task> {
        let mut tx = self.write().await?;
        if patch.parent.is_some() {
            lock_graph(&mut tx).await?;
        }
        let after = update_in(&mut tx, id, patch, actor).await?;
        if patch.parent.is_some() {
            check_acyclic(tx.c()).await?;
        }
        tx.commit().await?;
        Ok(after)
    }

    async fn tx_set_status(
        &self,
        id: TaskId,
        to: Status,
        note: Option<&str>,
        actor: &Actor,
    ) -> R<Vec<Task>> {
        let mut t = self.write().await?;
        let changed = status_in(&mut t, id, to, note, actor).await?;
        t.commit().await?;
        Ok(changed)
    }

    async fn tx_add_edge(&self, edge: Edge, actor: &Actor) -> R<bool> {
        let mut t = self.write().await?;
        if edge.kind.orders_work() {
            lock_graph(&mut t).await?;
        }
        if !add_edge_in(&mut t, edge, actor).await? {
            return Ok(false);
        }
        if edge.kind.orders_work() {
            check_acyclic(t.c()).await?;
        }
        t.commit().await?;
        Ok(true)
    }

    async fn tx_remove_edge(&self, edge: Edge, actor: &Actor) -> R<bool> {
        let mut t = self.write().await?;
        let removed = remove_edge_in(&mut t, edge, actor).await?;
        t.commit().await?;
        Ok(removed)
    }
}

#[async_trait]
impl TaskStore for PostgresStore {
    async fn apply_plan(&self, plan: &ValidatedPlan, actor: &Actor) -> Result<AppliedPlan> {
        let applied = retrying(move || self.tx_apply_plan(plan, actor)).await?;
        if plan.tasks.len() >= ANALYZE_AFTER {
            self.analyze().await;
        }
        Ok(applied)
    }

    async fn apply_plan_changes(&self, ch: &PlanChanges, actor: &Actor) -> Result<AppliedPlan> {
        retrying(move || self.tx_apply_plan_changes(ch, actor)).await
    }

    async fn create_task(&self, new: &NewTask, deps: &[TaskId], actor: &Actor) -> Result<Task> {
        retrying(move || self.tx_create_task(new, deps, actor)).await
    }

    async fn update_task(&self, id: TaskId, patch: &TaskPatch, actor: &Actor) -> Result<Task> {
        retrying(move || self.tx_update_task(id, patch, actor)).await
    }

    async fn set_status(
        &self,
        id: TaskId,
        to: Status,
        note: Option<&str>,
        actor: &Actor,
    ) -> Result<Vec<Task>> {
        retrying(move || self.tx_set_status(id, to, note, actor)).await
    }

    async fn task(&self, id: TaskId) -> Result<Task> {
        let mut c = self.pool.acquire().await.map_err(db)?;
        Ok(get_task(&mut c, id, false).await?)
    }

    async fn resolve_task(&self, query: &str) -> Result<TaskId> {
        let q = query.trim();
        let by_key: Option<i64> = sqlx::query_scalar("SELECT seq FROM tasks WHERE key = $1")
            .bind(q)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        if let Some(s) = by_key {
            return Ok(tid(s));
        }
        if TaskId::is_prefix_syntax(q) {
            let lower = q.to_ascii_lowercase();
            // `id` sorts byte-wise (COLLATE "C"), so this range is exactly the prefix.
            let rows = sqlx::query(
                "SELECT seq, title FROM tasks WHERE id >= $1 AND id < $2 ORDER BY id LIMIT 6",
            )
            .bind(&lower)
            .bind(format!("{lower}\u{7f}"))
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
            let rows: Vec<(i64, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
            if let Some(id) = by_prefix(q, &rows)? {
                return Ok(id);
            }
        }
        Err(task_not_found(q))
    }

    async fn lookup_tasks(&self, refs: &[String]) -> Result<HashMap<String, TaskId>> {
        let mut out = HashMap::new();
        // Keys first, all in one query; only what is left is resolved as ids or prefixes.
        let rows = sqlx::query("SELECT key, seq FROM tasks WHERE key = ANY($1)")
            .bind(refs)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        for r in &rows {
            out.insert(r.get::<String, _>(0), tid(r.get(1)));
        }
        resolve_rest(self, refs, &mut out).await?;
        Ok(out)
    }

    async fn keys_in_use(&self, keys: &[String]) -> Result<HashSet<String>> {
        let rows: Vec<String> = sqlx::query_scalar("SELECT key FROM tasks WHERE key = ANY($1)")
            .bind(keys)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        Ok(rows.into_iter().collect())
    }

    async fn tasks(&self, f: &TaskFilter) -> Result<Vec<Task>> {
        let mut qb =
            QueryBuilder::<Postgres>::new(format!("SELECT {TASK_COLS} FROM tasks WHERE true"));
        if !f.include_archived {
            qb.push(" AND NOT archived");
        }
        if !f.statuses.is_empty() {
            let list: Vec<&str> = f.statuses.iter().map(|s| s.as_str()).collect();
            qb.push(" AND status = ANY(").push_bind(list).push(")");
        }
        if let Some(r) = &f.role {
            qb.push(" AND role = ").push_bind(r.clone());
        }
        if let Some(t) = &f.tag {
            qb.push(" AND tags ? ").push_bind(t.clone());
        }
        if let Some(p) = f.parent {
            qb.push(" AND parent_seq = ").push_bind(seq(p));
        }
        if let Some(t) = &f.text {
            qb.push(" AND (strpos(lower(title), lower(")
                .push_bind(t.clone())
                .push(")) > 0 OR strpos(lower(description), lower(")
                .push_bind(t.clone())
                .push(")) > 0)");
        }
        qb.push(" ORDER BY seq");
        if let Some(l) = f.limit {
            qb.push(format!(" LIMIT {l}"));
        }
        let rows = qb.build().fetch_all(&self.pool).await.map_err(db)?;
        rows.iter().map(row_task).collect()
    }

    async fn task_count(&self) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM tasks WHERE NOT archived")
            .fetch_one(&self.pool)
            .await
            .map_err(db)?;
        Ok(n as u64)
    }

    async fn add_edge(&self, edge: Edge, actor: &Actor) -> Result<bool> {
        if edge.from == edge.to {
            return Err(Error::Invalid(format!(
                "task {} cannot depend on itself",
                edge.from
            )));
        }
        retrying(move || self.tx_add_edge(edge, actor)).await
    }

    async fn remove_edge(&self, edge: Edge, actor: &Actor) -> Result<bool> {
        retrying(move || self.tx_remove_edge(edge, actor)).await
    }

    async fn edges_of(&self, id: TaskId) -> Result<Vec<Edge>> {
        let rows = sqlx::query(
            "SELECT from_seq, to_seq, kind FROM edges WHERE from_seq = $1 OR to_seq = $1 \
             ORDER BY from_seq, to_seq, kind COLLATE \"C\"",
        )
        .bind(seq(id))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter().map(edge_of).collect()
    }

    async fn edges(&self) -> Result<Vec<Edge>> {
        let mut c = self.pool.acquire().await.map_err(db)?;
        Ok(live_edges(&mut c).await?)
    }

    async fn graph(&self) -> Result<GraphSnapshot> {
        // One snapshot for both reads, so tasks and edges are from the same moment.
        let mut tx = self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await
            .map_err(db)?;
        let snap = snapshot(&mut tx).await?;
        tx.commit().await.map_err(db)?;
        Ok(snap)
    }
}

/// The body of `apply_plan` inside a transaction that holds the graph lock: new tasks, their
/// edges and creation events, and the records; returns what was created and the first new
/// sequence number (the caller checks for cycles and logs `plan.applied`).
async fn insert_plan(t: &mut Tx, plan: &ValidatedPlan, actor: &Actor) -> R<(AppliedPlan, i64)> {
    let base = alloc_seqs(t.c(), plan.tasks.len()).await?;
    let to_seq = |r: TaskRef| match r {
        TaskRef::New(i) => base + i as i64,
        TaskRef::Existing(id) => seq(id),
    };
    // Existing references must still be live (another process may have archived them;
    // archiving takes the graph lock, which this transaction holds).
    let mut existing: Vec<TaskId> = plan
        .edges
        .iter()
        .flat_map(|e| [e.0, e.1])
        .chain(plan.tasks.iter().filter_map(|t| t.parent))
        .filter_map(|r| match r {
            TaskRef::Existing(id) => Some(id),
            TaskRef::New(_) => None,
        })
        .collect();
    existing.sort();
    existing.dedup();
    require_live(t.c(), &existing).await?;
    let mut out = AppliedPlan::default();
    for task in &plan.tasks {
        validate_fields(&task.new.title, task.new.key.as_deref()).map_err(Error::Invalid)?;
    }
    let now = actor.now.0;
    // Tasks, all in one statement.
    if !plan.tasks.is_empty() {
        let rows: Vec<Value> = plan
                .tasks
                .iter()
                .enumerate()
                .map(|(i, task)| {
                    let s = base + i as i64;
                    let n = &task.new;
                    json!({"seq": s, "id": tid(s).short(), "key": n.key, "parent_seq": task.parent.map(to_seq),
                           "title": n.title.trim(), "description": n.description, "role": n.role,
                           "priority": i64::from(n.priority.rank()), "effort": i64::from(n.effort),
                           "acceptance": n.acceptance, "tags": n.tags, "footprint": n.footprint,
                           "executor": n.exec.executor, "timeout_ms": n.exec.timeout_millis(),
                           "max_attempts": n.exec.max_attempts.map(i64::from)})
                })
                .collect();
        sqlx::query(
                "INSERT INTO tasks(seq, id, key, parent_seq, title, description, role, status, priority, effort, \
                 acceptance, tags, footprint, created_at, updated_at, executor, timeout_ms, max_attempts) \
                 SELECT seq, id, key, parent_seq, title, coalesce(description, ''), role, 'pending', priority, effort, \
                        coalesce(acceptance, '[]'), coalesce(tags, '[]'), coalesce(footprint, '[]'), $2, $2, \
                        executor, timeout_ms, max_attempts \
                 FROM jsonb_to_recordset($1::jsonb) AS v(seq bigint, id text, key text, parent_seq bigint, title text, \
                      description text, role text, priority bigint, effort bigint, acceptance jsonb, tags jsonb, \
                      footprint jsonb, executor text, timeout_ms bigint, max_attempts bigint) \
                 ORDER BY seq",
            )
            .bind(Value::Array(rows).to_string())
            .bind(now)
            .execute(t.c())
            .await
            .map_err(|e| match e {
                sqlx::Error::Database(d) if d.code().as_deref() == Some("23505") => {
                    Fail::from(Error::Invalid("a task key of the plan was taken meanwhile by another writer; apply the plan again".into()))
                }
                e => db(e),
            })?;
    }
    for (i, task) in plan.tasks.iter().enumerate() {
        out.tasks.push((task.new.key.clone(), tid(base + i as i64)));
    }
    // Edges: every plan edge ends at a new task, so none can exist yet.
    if !plan.edges.is_empty() {
        let rows: Vec<Value> = plan
                .edges
                .iter()
                .enumerate()
                .map(|(i, &(f, to, kind))| json!({"ord": i, "f": to_seq(f), "t": to_seq(to), "k": kind.as_str()}))
                .collect();
        out.edges += sqlx::query(
                "INSERT INTO edges(from_seq, to_seq, kind, created_at) \
                 SELECT f, t, k, $2 FROM jsonb_to_recordset($1::jsonb) AS v(ord bigint, f bigint, t bigint, k text) \
                 ORDER BY ord ON CONFLICT DO NOTHING",
            )
            .bind(Value::Array(rows).to_string())
            .bind(now)
            .execute(t.c())
            .await
            .map_err(db)?
            .rows_affected() as usize;
    }
    // One creation event per task, carrying its edges.
    for (entity, after) in plan_events(plan, base) {
        t.event(actor, "task.created", &entity, None, Some(after.value()));
    }
    for (title, refs) in &plan.objectives {
        let seqs: Vec<i64> = refs.iter().map(|&r| to_seq(r)).collect();
        let id = insert_objective(t, title, &seqs, actor).await?;
        out.objectives.push(rid(RecordKind::Objective, id));
    }
    for (text, why, task) in &plan.decisions {
        let id = insert_decision(t, text, why, task.map(to_seq), None, actor).await?;
        out.decisions.push(rid(RecordKind::Decision, id));
    }
    for (text, task) in &plan.insights {
        let id = insert_insight(t, text, task.map(to_seq), actor).await?;
        out.insights.push(rid(RecordKind::Insight, id));
    }
    Ok((out, base))
}

/// The body of `update_task` inside a transaction (the caller takes the graph lock for a
/// new parent and checks for cycles).
async fn update_in(tx: &mut Tx, id: TaskId, patch: &TaskPatch, actor: &Actor) -> R<Task> {
    let before = get_task(tx.c(), id, true).await?;
    if let Some(p) = new_parent(id, patch) {
        require_live(tx.c(), &[p]).await?;
    }
    let t = patched(&before, patch)?;
    let q = sqlx::query(
            "UPDATE tasks SET title = $1, description = $2, role = $3, priority = $4, effort = $5, acceptance = $6::jsonb, \
             tags = $7::jsonb, footprint = $8::jsonb, parent_seq = $9, updated_at = $10, executor = $11, timeout_ms = $12, \
             max_attempts = $13 WHERE seq = $14",
        )
        .bind(&t.title);
    let q = bind_task_fields!(q, t)
        .bind(t.parent.map(seq))
        .bind(actor.now.0);
    bind_exec!(q, t.exec)
        .bind(seq(id))
        .execute(tx.c())
        .await
        .map_err(db)?;
    let after = get_task(tx.c(), id, false).await?;
    tx.event(
        actor,
        "task.updated",
        &id.to_string(),
        Some(tjson(&before)),
        Some(tjson(&after)),
    );
    tx.wake = true;
    Ok(after)
}

/// The body of `set_status` inside a transaction.
async fn status_in(
    t: &mut Tx,
    id: TaskId,
    to: Status,
    note: Option<&str>,
    actor: &Actor,
) -> R<Vec<Task>> {
    let task = get_task(t.c(), id, true).await?;
    if task.archived {
        return Err(Error::Invalid(format!("task {id} is archived")).into());
    }
    let kids = children(t.c(), id).await?;
    let mut changed = Vec::new();
    if kids.is_empty() {
        changed.push(write_status(t, &task, to, note, actor).await?);
        if to == Status::Completed {
            // A follow-up completed by hand handles its flags, in this transaction.
            let mut on = super::effects::InBatch {
                t: &mut *t,
                retry: None,
            };
            if let Err(e) = crate::effects::handled(&mut on, id, actor).await {
                return Err(match on.retry {
                    Some(m) => Fail::Retry(m),
                    None => e.into(),
                });
            }
        }
    } else {
        if !matches!(to, Status::Cancelled | Status::Skipped) {
            return Err(Error::Invalid(format!(
                    "task {id} has {} child task(s); its status rolls up from them (a whole subtree can only be cancelled or skipped)",
                    kids.len()
                ))
                .into());
        }
        // Every open leaf of the subtree.
        let mut stack = kids;
        while let Some(s) = stack.pop() {
            let sub = children(t.c(), tid(s)).await?;
            if sub.is_empty() {
                let leaf = get_task(t.c(), tid(s), true).await?;
                if leaf.status.check_transition(to).is_ok() && !leaf.status.is_terminal() {
                    changed.push(write_status(t, &leaf, to, note, actor).await?);
                }
            } else {
                stack.extend(sub);
            }
        }
        changed.sort_by_key(|t| t.id);
    }
    t.wake = true;
    Ok(changed)
}

/// The bodies of `add_edge` (without lock and cycle check) and `remove_edge` inside a
/// transaction.
async fn add_edge_in(t: &mut Tx, edge: Edge, actor: &Actor) -> R<bool> {
    require_live(t.c(), &[edge.from, edge.to]).await?;
    let r = sqlx::query(
            "INSERT INTO edges(from_seq, to_seq, kind, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(seq(edge.from))
        .bind(seq(edge.to))
        .bind(edge.kind.as_str())
        .bind(actor.now.0)
        .execute(t.c())
        .await
        .map_err(db)?;
    if r.rows_affected() == 0 {
        return Ok(false);
    }
    t.event(
        actor,
        "edge.added",
        &edge.to.to_string(),
        None,
        Some(json!({"from": edge.from.to_string(), "kind": edge.kind})),
    );
    t.wake = true;
    Ok(true)
}

async fn remove_edge_in(t: &mut Tx, edge: Edge, actor: &Actor) -> R<bool> {
    let r = sqlx::query("DELETE FROM edges WHERE from_seq = $1 AND to_seq = $2 AND kind = $3")
        .bind(seq(edge.from))
        .bind(seq(edge.to))
        .bind(edge.kind.as_str())
        .execute(t.c())
        .await
        .map_err(db)?;
    if r.rows_affected() == 0 {
        return Ok(false);
    }
    t.event(
        actor,
        "edge.removed",
        &edge.to.to_string(),
        Some(json!({"from": edge.from.to_string(), "kind": edge.kind})),
        None,
    );
    t.wake = true;
    Ok(true)
}
