//! Tasks, edges and the graph: [`TaskStore`] for [`SqliteStore`].
//!
//! Must never: open connections or run migrations (`mod.rs` does that), or decode a row or
//! apply a rule that `crate::shared` already has a function for another way.

use super::*;
use sqlx::Arguments as _;
use sqlx::sqlite::SqliteArguments;
use std::future::Future as _;
use std::task::Poll;

#[async_trait]
impl TaskStore for SqliteStore {
    async fn apply_plan(&self, plan: &ValidatedPlan, actor: &Actor) -> Result<AppliedPlan> {
        let mut tx = self.write().await?;
        let c: &mut SqliteConnection = &mut tx;
        let (out, _) = insert_plan(c, plan, actor).await?;
        // A cycle may form together with what is already stored: check the whole graph.
        if plan.edges.iter().any(|e| e.2.orders_work())
            || plan.tasks.iter().any(|t| t.parent.is_some())
        {
            check_acyclic(c).await?;
        }
        event(
            c,
            actor,
            "plan.applied",
            plan.name.as_deref().unwrap_or("plan"),
            None,
            Some(json!({"tasks": out.tasks.len(), "edges": out.edges})),
        )
        .await?;
        tx.commit().await.map_err(db)?;
        self.checkpoint_after_bulk(out.tasks.len()).await;
        Ok(out)
    }

    async fn apply_plan_changes(&self, ch: &PlanChanges, actor: &Actor) -> Result<AppliedPlan> {
        let mut tx = self.write().await?;
        let c: &mut SqliteConnection = &mut tx;
        for &(id, status) in &ch.expect {
            let now = get_task(c, id).await?.status;
            if now != status {
                return Err(moved_on(id, status, now));
            }
        }
        for e in &ch.edges_removed {
            remove_edge_in(c, *e, actor).await?;
        }
        for (id, patch) in &ch.updates {
            update_in(c, *id, patch, actor).await?;
        }
        // The new tasks' own cycle check needs only the plan: it runs on another thread
        // while the plan is written (unless the whole stored graph is checked below).
        let own_cycle = (!ch.reaches_stored()).then(|| {
            let plan = std::sync::Arc::clone(&ch.plan);
            tokio::task::spawn_blocking(move || plan.own_cycle())
        });
        let (mut out, base) = insert_plan(c, &ch.plan, actor).await?;
        let to_id = |r: TaskRef| match r {
            TaskRef::New(i) => tid(base + i as i64),
            TaskRef::Existing(id) => id,
        };
        for &(id, parent) in &ch.parents {
            let patch = TaskPatch {
                parent: Some(parent.map(to_id)),
                ..TaskPatch::default()
            };
            update_in(c, id, &patch, actor).await?;
        }
        for &(from, to, kind) in &ch.edges_added {
            let edge = Edge {
                from: to_id(from),
                to,
                kind,
            };
            if add_edge_in(c, edge, actor).await? {
                out.edges += 1;
            }
        }
        for &(r, status) in &ch.statuses {
            status_in(c, to_id(r), status, Some(STARTED_NOTE), actor).await?;
        }
        let mut cancelled = 0;
        for &id in &ch.cancel {
            cancelled += status_in(c, id, Status::Cancelled, Some(REMOVED_NOTE), actor)
                .await?
                .len();
        }
        if let Some((key, value)) = &ch.record {
            sqlx::query("INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value")
                .bind(key)
                .bind(value)
                .execute(&mut *c)
                .await
                .map_err(db)?;
        }
        // The whole graph only when the changes reach stored tasks; else the new ones alone.
        match own_cycle {
            None => check_acyclic(c).await?,
            Some(check) => {
                let cycle = check
                    .await
                    .map_err(|e| Error::Database(format!("the cycle check stopped: {e}")))?;
                if let Some(path) = cycle {
                    return Err(Error::Cycle(new_tasks_cycle(path, base)));
                }
            }
        }
        event(
            c,
            actor,
            "plan.applied",
            ch.plan.name.as_deref().unwrap_or("plan"),
            None,
            Some(changes_event(ch, &out, cancelled)),
        )
        .await?;
        tx.commit().await.map_err(db)?;
        self.checkpoint_after_bulk(out.tasks.len()).await;
        Ok(out)
    }

    async fn create_task(&self, new: &NewTask, deps: &[TaskId], actor: &Actor) -> Result<Task> {
        let mut tx = self.write().await?;
        let c: &mut SqliteConnection = &mut tx;
        if let Some(p) = new.parent {
            require_live(c, p).await?;
        }
        for d in deps {
            require_live(c, *d).await?;
        }
        let s = alloc_seqs(c, 1).await?;
        insert_task(c, s, new, new.parent.map(seq), actor.now).await?;
        let task = get_task(c, tid(s)).await?;
        event(
            c,
            actor,
            "task.created",
            &task.id.to_string(),
            None,
            Some(tjson(&task)),
        )
        .await?;
        for d in deps {
            sqlx::query("INSERT OR IGNORE INTO edges(from_seq, to_seq, kind, created_at) VALUES (?, ?, 'blocks', ?)")
                .bind(seq(*d))
                .bind(s)
                .bind(actor.now.0)
                .execute(&mut *c)
                .await
                .map_err(db)?;
            event(
                c,
                actor,
                "edge.added",
                &task.id.to_string(),
                None,
                Some(json!({"from": d.to_string(), "kind": "blocks"})),
            )
            .await?;
        }
        if new.parent.is_some() {
            // A new leaf under a parent cannot close a cycle unless the parent's subtree blocks
            // one of `deps`; the check is cheap enough to always run when the graph grew.
            check_acyclic(c).await?;
        } else if !deps.is_empty() {
            check_acyclic(c).await?;
        }
        tx.commit().await.map_err(db)?;
        Ok(task)
    }

    async fn update_task(&self, id: TaskId, patch: &TaskPatch, actor: &Actor) -> Result<Task> {
        let mut tx = self.write().await?;
        let c: &mut SqliteConnection = &mut tx;
        let after = update_in(c, id, patch, actor).await?;
        if patch.parent.is_some() {
            check_acyclic(c).await?;
        }
        tx.commit().await.map_err(db)?;
        Ok(after)
    }

    async fn set_status(
        &self,
        id: TaskId,
        to: Status,
        note: Option<&str>,
        actor: &Actor,
    ) -> Result<Vec<Task>> {
        let mut tx = self.write().await?;
        let changed = status_in(&mut tx, id, to, note, actor).await?;
        tx.commit().await.map_err(db)?;
        Ok(changed)
    }

    async fn task(&self, id: TaskId) -> Result<Task> {
        let mut c = self.conn().await?;
        get_task(&mut c, id).await
    }

    async fn resolve_task(&self, query: &str) -> Result<TaskId> {
        let q = query.trim();
        let mut c = self.conn().await?;
        let by_key: Option<i64> = sqlx::query_scalar("SELECT seq FROM tasks WHERE key = ?")
            .bind(q)
            .fetch_optional(&mut *c)
            .await
            .map_err(db)?;
        if let Some(s) = by_key {
            return Ok(tid(s));
        }
        if TaskId::is_prefix_syntax(q) {
            let lower = q.to_ascii_lowercase();
            let rows = sqlx::query(
                "SELECT seq, title FROM tasks WHERE id >= ? AND id < ? ORDER BY id LIMIT 6",
            )
            .bind(&lower)
            .bind(format!("{lower}\u{7f}"))
            .fetch_all(&mut *c)
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
        let list = serde_json::to_string(refs).map_err(|e| Error::Invalid(e.to_string()))?;
        let rows =
            sqlx::query("SELECT key, seq FROM tasks WHERE key IN (SELECT value FROM json_each(?))")
                .bind(list)
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
        // Fewer keyed tasks stored than keys asked about (a large plan applied to a young
        // project): the stored keys are read instead of the asked ones being sent. Counting
        // stops one past the keys asked about, so a small question to a large project costs
        // no more than before.
        let stored: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM (SELECT 1 FROM tasks WHERE key IS NOT NULL LIMIT ?)",
        )
        .bind(keys.len() as i64 + 1)
        .fetch_one(&self.pool)
        .await
        .map_err(db)?;
        if stored as usize <= keys.len() {
            if stored == 0 {
                return Ok(HashSet::new());
            }
            let asked: HashSet<&str> = keys.iter().map(String::as_str).collect();
            let rows: Vec<String> =
                sqlx::query_scalar("SELECT key FROM tasks WHERE key IS NOT NULL")
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db)?;
            return Ok(rows
                .into_iter()
                .filter(|k| asked.contains(k.as_str()))
                .collect());
        }
        let list = serde_json::to_string(keys).map_err(|e| Error::Invalid(e.to_string()))?;
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT key FROM tasks WHERE key IN (SELECT value FROM json_each(?))",
        )
        .bind(list)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Ok(rows.into_iter().collect())
    }

    async fn tasks(&self, f: &TaskFilter) -> Result<Vec<Task>> {
        let mut out: Vec<Task> = Vec::new();
        self.tasks_chunked(f, &mut |chunk| out.extend(chunk))
            .await?;
        Ok(out)
    }

    async fn tasks_chunked(
        &self,
        f: &TaskFilter,
        each: &mut (dyn FnMut(Vec<Task>) + Send),
    ) -> Result<()> {
        let mut sql = format!("SELECT {TASK_COLS} FROM tasks WHERE 1=1");
        if !f.include_archived {
            sql.push_str(" AND archived = 0");
        }
        if !f.statuses.is_empty() {
            let list: Vec<String> = f
                .statuses
                .iter()
                .map(|s| format!("'{}'", s.as_str()))
                .collect();
            sql.push_str(&format!(" AND status IN ({})", list.join(",")));
        }
        if f.role.is_some() {
            sql.push_str(" AND role = ?");
        }
        if f.tag.is_some() {
            sql.push_str(
                " AND EXISTS (SELECT 1 FROM json_each(tasks.tags) WHERE json_each.value = ?)",
            );
        }
        if f.parent.is_some() {
            sql.push_str(" AND parent_seq = ?");
        }
        if f.text.is_some() {
            sql.push_str(" AND (instr(lower(title), lower(?)) > 0 OR instr(lower(description), lower(?)) > 0)");
        }
        // Chunks in `seq` order (keyset pagination), each read as one JSON text in the order of
        // its subquery.
        sql.push_str(" AND seq > ? ORDER BY seq LIMIT ?");
        let sql = format!(
            "SELECT '[' || coalesce(group_concat(j, ','), '') || ']', max(seq), count(*) \
             FROM (SELECT seq, {TASK_JSON} AS j FROM tasks{})",
            sql.trim_start_matches(&format!("SELECT {TASK_COLS} FROM tasks") as &str)
        );
        let mut after = 0i64;
        let mut left = f.limit.unwrap_or(u32::MAX);
        // One read transaction, so every chunk sees the same moment; a whole table's read
        // with a small page cache.
        let whole = left > TASK_CHUNK;
        let mut conn = if whole {
            self.scan_conn().await?
        } else {
            self.conn().await?
        };
        let mut tx = sqlx::Connection::begin(&mut *conn).await.map_err(db)?;
        while left > 0 {
            let chunk = left.min(TASK_CHUNK);
            // Only fixed fragments and enum names are spliced in; values are bound.
            let mut q = sqlx::query(AssertSqlSafe(sql.clone()));
            if let Some(r) = &f.role {
                q = q.bind(r);
            }
            if let Some(t) = &f.tag {
                q = q.bind(t);
            }
            if let Some(p) = f.parent {
                q = q.bind(seq(p));
            }
            if let Some(t) = &f.text {
                q = q.bind(t).bind(t);
            }
            let row = q
                .bind(after)
                .bind(i64::from(chunk))
                .fetch_one(&mut *tx)
                .await
                .map_err(db)?;
            let n: i64 = row.get(2);
            if n == 0 {
                break;
            }
            each(parse_task_chunk(row.get(0))?);
            after = row.try_get::<i64, _>(1).map_err(db)?;
            left = left.saturating_sub(u32::try_from(n).unwrap_or(u32::MAX));
            if n < i64::from(chunk) {
                break;
            }
        }
        tx.commit().await.map_err(db)?;
        if whole {
            Self::scanned(conn).await?;
        }
        Ok(())
    }

    async fn task_count(&self) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM tasks WHERE archived = 0")
            .fetch_one(&self.pool)
            .await
            .map_err(db)?;
        Ok(n as u64)
    }

    async fn add_edge(&self, edge: Edge, actor: &Actor) -> Result<bool> {
        let mut tx = self.write().await?;
        let c: &mut SqliteConnection = &mut tx;
        if !add_edge_in(c, edge, actor).await? {
            return Ok(false);
        }
        if edge.kind.orders_work() {
            check_acyclic(c).await?;
        }
        tx.commit().await.map_err(db)?;
        Ok(true)
    }

    async fn remove_edge(&self, edge: Edge, actor: &Actor) -> Result<bool> {
        let mut tx = self.write().await?;
        let removed = remove_edge_in(&mut tx, edge, actor).await?;
        tx.commit().await.map_err(db)?;
        Ok(removed)
    }

    async fn edges_of(&self, id: TaskId) -> Result<Vec<Edge>> {
        let rows = sqlx::query("SELECT from_seq, to_seq, kind FROM edges WHERE from_seq = ? OR to_seq = ? ORDER BY from_seq, to_seq, kind")
            .bind(seq(id))
            .bind(seq(id))
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter()
            .map(|r| {
                Ok(Edge {
                    from: tid(r.get(0)),
                    to: tid(r.get(1)),
                    kind: EdgeKind::from_str(r.get(2))
                        .map_err(|e| Error::Database(e.to_string()))?,
                })
            })
            .collect()
    }

    async fn edges(&self) -> Result<Vec<Edge>> {
        let mut c = self.scan_conn().await?;
        let edges = live_edges(&mut c).await?;
        Self::scanned(c).await?;
        Ok(edges)
    }

    async fn graph(&self) -> Result<GraphSnapshot> {
        let mut c = self.conn().await?;
        snapshot(&mut c).await
    }
}

/// The body of `apply_plan` inside a transaction: new tasks, their edges and creation
/// events, and the records; returns what was created and the first new sequence number (the
/// caller checks for cycles and logs `plan.applied`).
async fn insert_plan(
    c: &mut SqliteConnection,
    plan: &ValidatedPlan,
    actor: &Actor,
) -> Result<(AppliedPlan, i64)> {
    let base = alloc_seqs(c, plan.tasks.len()).await?;
    let to_seq = |r: TaskRef| match r {
        TaskRef::New(i) => base + i as i64,
        TaskRef::Existing(id) => seq(id),
    };
    // Existing references must still be live (another process may have archived them).
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
    for id in &existing {
        require_live(c, *id).await?;
    }
    let mut out = AppliedPlan::default();
    for t in &plan.tasks {
        validate_fields(&t.new.title, t.new.key.as_deref()).map_err(Error::Invalid)?;
    }
    // Tasks, many rows per statement (see `Rows`). `OR FAIL`: a failing statement fails the
    // whole transaction here anyway, so SQLite need not journal each statement to undo it
    // alone (about half the time of a million rows).
    let now = actor.now.0;
    let tasks = Rows::new(
        "INSERT OR FAIL INTO tasks(seq, id, key, parent_seq, title, description, role, status, priority, effort, \
             acceptance, tags, footprint, created_at, updated_at, executor, timeout_ms, max_attempts) VALUES ",
        format!(
            "(?, ?, ?, ?, ?, coalesce(?, ''), ?, 'pending', ?, ?, coalesce(?, '[]'), \
             coalesce(?, '[]'), coalesce(?, '[]'), {now}, {now}, ?, ?, ?)"
        ),
        ROWS_PER_INSERT,
    );
    let statements = plan
        .tasks
        .chunks(tasks.full)
        .enumerate()
        .map(|(c0, chunk)| {
            let mut args = SqliteArguments::default();
            for (j, t) in chunk.iter().enumerate() {
                let s = base + (c0 * tasks.full + j) as i64;
                let list = |v: &[String]| (!v.is_empty()).then(|| to_json_list(v));
                let _ = args.add(s);
                let _ = args.add(tid(s).short());
                let _ = args.add(t.new.key.clone());
                let _ = args.add(t.parent.map(to_seq));
                let _ = args.add(t.new.title.trim().to_owned());
                let _ =
                    args.add((!t.new.description.is_empty()).then(|| t.new.description.clone()));
                let _ = args.add(t.new.role.clone());
                let _ = args.add(i64::from(t.new.priority.rank()));
                let _ = args.add(i64::from(t.new.effort));
                let _ = args.add(list(&t.new.acceptance));
                let _ = args.add(list(&t.new.tags));
                let _ = args.add(list(&t.new.footprint));
                let _ = args.add(t.new.exec.executor.clone());
                let _ = args.add(t.new.exec.timeout_millis());
                let _ = args.add(t.new.exec.max_attempts.map(i64::from));
            }
            tasks.statement(chunk.len(), args)
        });
    execute_overlapped(c, statements).await.map_err(key_taken)?;
    for (i, t) in plan.tasks.iter().enumerate() {
        out.tasks.push((t.new.key.clone(), tid(base + i as i64)));
    }
    // Edges: every plan edge ends at a new task, so none can exist yet.
    let edges = Rows::new(
        "INSERT OR IGNORE INTO edges(from_seq, to_seq, kind, created_at) VALUES ",
        format!("(?, ?, ?, {now})"),
        ROWS_PER_INSERT * 4,
    );
    let statements = plan.edges.chunks(edges.full).map(|chunk| {
        let mut args = SqliteArguments::default();
        for &(f, t, kind) in chunk {
            let _ = args.add(to_seq(f));
            let _ = args.add(to_seq(t));
            let _ = args.add(kind.as_str());
        }
        edges.statement(chunk.len(), args)
    });
    out.edges += execute_overlapped(c, statements).await.map_err(db)? as usize;
    // One creation event per task, carrying its edges.
    let created = Rows::new(
        "INSERT OR FAIL INTO events(at, actor, session_id, action, entity, task_seq, before, after) VALUES ",
        format!(
            "({now}, ?, {}, 'task.created', ?, ?, NULL, ?)",
            actor
                .session
                .map_or("NULL".to_owned(), |s| s.num.to_string())
        ),
        ROWS_PER_INSERT * 2,
    );
    let mut events = plan_events(plan, base).peekable();
    let statements = std::iter::from_fn(|| {
        events.peek()?;
        let mut args = SqliteArguments::default();
        let mut n = 0;
        for (entity, after) in events.by_ref().take(created.full) {
            let task_seq = event_task_seq("task.created", &entity);
            let _ = args.add(actor.name.clone());
            let _ = args.add(entity);
            let _ = args.add(task_seq);
            let _ = args.add(after.text());
            n += 1;
        }
        Some(created.statement(n, args))
    });
    execute_overlapped(c, statements).await.map_err(db)?;
    for (title, refs) in &plan.objectives {
        let seqs: Vec<i64> = refs.iter().map(|&r| to_seq(r)).collect();
        out.objectives.push(rid(
            RecordKind::Objective,
            insert_objective(c, title, &seqs, actor).await?,
        ));
    }
    for (text, why, task) in &plan.decisions {
        out.decisions.push(rid(
            RecordKind::Decision,
            insert_decision(c, text, why, task.map(to_seq), None, actor).await?,
        ));
    }
    for (text, task) in &plan.insights {
        out.insights.push(rid(
            RecordKind::Insight,
            insert_insight(c, text, task.map(to_seq), actor).await?,
        ));
    }
    Ok((out, base))
}

/// The body of `update_task` inside a transaction (the caller checks for cycles).
async fn update_in(
    c: &mut SqliteConnection,
    id: TaskId,
    patch: &TaskPatch,
    actor: &Actor,
) -> Result<Task> {
    let before = get_task(c, id).await?;
    if let Some(p) = new_parent(id, patch) {
        require_live(c, p).await?;
    }
    let t = patched(&before, patch)?;
    let q = sqlx::query(
            "UPDATE tasks SET title = ?, description = ?, role = ?, priority = ?, effort = ?, acceptance = ?, \
             tags = ?, footprint = ?, parent_seq = ?, updated_at = ?, executor = ?, timeout_ms = ?, max_attempts = ? WHERE seq = ?",
        )
        .bind(&t.title);
    let q = bind_task_fields!(q, t)
        .bind(t.parent.map(seq))
        .bind(actor.now.0);
    bind_exec!(q, t.exec)
        .bind(seq(id))
        .execute(&mut *c)
        .await
        .map_err(db)?;
    let after = get_task(c, id).await?;
    event(
        c,
        actor,
        "task.updated",
        &id.to_string(),
        Some(tjson(&before)),
        Some(tjson(&after)),
    )
    .await?;
    Ok(after)
}

/// The body of `set_status` inside a transaction.
async fn status_in(
    c: &mut SqliteConnection,
    id: TaskId,
    to: Status,
    note: Option<&str>,
    actor: &Actor,
) -> Result<Vec<Task>> {
    let task = get_task(c, id).await?;
    if task.archived {
        return Err(Error::Invalid(format!("task {id} is archived")));
    }
    let kids = children(c, id).await?;
    let mut changed = Vec::new();
    if kids.is_empty() {
        changed.push(write_status(c, &task, to, note, actor).await?);
        if to == Status::Completed {
            // A follow-up completed by hand handles its flags, in this transaction.
            crate::effects::handled(&mut super::effects::InBatch(c), id, actor).await?;
        }
    } else {
        if !matches!(to, Status::Cancelled | Status::Skipped) {
            return Err(Error::Invalid(format!(
                "task {id} has {} child task(s); its status rolls up from them (a whole subtree can only be cancelled or skipped)",
                kids.len()
            )));
        }
        // Every open leaf of the subtree.
        let mut stack = kids;
        while let Some(s) = stack.pop() {
            let sub = children(c, tid(s)).await?;
            if sub.is_empty() {
                let leaf = get_task(c, tid(s)).await?;
                if leaf.status.check_transition(to).is_ok() && !leaf.status.is_terminal() {
                    changed.push(write_status(c, &leaf, to, note, actor).await?);
                }
            } else {
                stack.extend(sub);
            }
        }
        changed.sort_by_key(|t| t.id);
    }
    Ok(changed)
}

/// The bodies of `add_edge` (without the cycle check) and `remove_edge` inside a transaction.
async fn add_edge_in(c: &mut SqliteConnection, edge: Edge, actor: &Actor) -> Result<bool> {
    if edge.from == edge.to {
        return Err(Error::Invalid(format!(
            "task {} cannot depend on itself",
            edge.from
        )));
    }
    require_live(c, edge.from).await?;
    require_live(c, edge.to).await?;
    let r = sqlx::query(
        "INSERT OR IGNORE INTO edges(from_seq, to_seq, kind, created_at) VALUES (?, ?, ?, ?)",
    )
    .bind(seq(edge.from))
    .bind(seq(edge.to))
    .bind(edge.kind.as_str())
    .bind(actor.now.0)
    .execute(&mut *c)
    .await
    .map_err(db)?;
    if r.rows_affected() == 0 {
        return Ok(false);
    }
    event(
        c,
        actor,
        "edge.added",
        &edge.to.to_string(),
        None,
        Some(json!({"from": edge.from.to_string(), "kind": edge.kind})),
    )
    .await?;
    Ok(true)
}

async fn remove_edge_in(c: &mut SqliteConnection, edge: Edge, actor: &Actor) -> Result<bool> {
    let r = sqlx::query("DELETE FROM edges WHERE from_seq = ? AND to_seq = ? AND kind = ?")
        .bind(seq(edge.from))
        .bind(seq(edge.to))
        .bind(edge.kind.as_str())
        .execute(&mut *c)
        .await
        .map_err(db)?;
    if r.rows_affected() == 0 {
        return Ok(false);
    }
    event(
        c,
        actor,
        "edge.removed",
        &edge.to.to_string(),
        Some(json!({"from": edge.from.to_string(), "kind": edge.kind})),
        None,
    )
    .await?;
    Ok(true)
}

/// Plans above this many new tasks leave a WAL worth giving back at once.
const BULK_TASKS: usize = 5_000;

impl SqliteStore {
    /// After a bulk write, the write-ahead log is copied into the database and truncated, so
    /// it does not stay hundreds of megabytes until the next automatic checkpoint. Best effort:
    /// a reader still on an old snapshot only makes it partial.
    async fn checkpoint_after_bulk(&self, new_tasks: usize) {
        if new_tasks >= BULK_TASKS {
            let _ = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&self.writer)
                .await;
        }
    }
}

/// A failed insert of a plan's tasks: a key taken since the plan was checked, else `db`.
fn key_taken(e: sqlx::Error) -> Error {
    match e {
        sqlx::Error::Database(d) if d.message().contains("UNIQUE") => Error::Invalid(
            "a task key of the plan was taken meanwhile by another writer; apply the plan again"
                .into(),
        ),
        e => db(e),
    }
}

/// A multi-row `INSERT`: its text for a given number of rows. What is the same for every row
/// is written into the row's text (numbers and constants, never text from outside), so a row
/// binds only what varies: most of a bulk insert's time on the connection's thread went to
/// binding, copying and freeing values. (Numbered parameters shared by all rows would do the
/// same, but SQLite finds a numbered parameter's name by a linear search, once per parameter
/// on every execution: quadratic in the parameters of a statement.)
struct Rows {
    head: &'static str,
    row: String,
    /// The text for full statements of `full` rows, made once.
    full_text: String,
    /// The rows of a full statement: how many rows the caller puts in each.
    full: usize,
}

impl Rows {
    fn new(head: &'static str, row: String, full: usize) -> Self {
        Self {
            full_text: Self::text(head, &row, full),
            head,
            row,
            full,
        }
    }

    fn text(head: &str, row: &str, rows: usize) -> String {
        let mut out = String::with_capacity(head.len() + rows * (row.len() + 2));
        out.push_str(head);
        for r in 0..rows {
            if r > 0 {
                out.push_str(", ");
            }
            out.push_str(row);
        }
        out
    }

    /// The statement for `rows` rows with their arguments.
    fn statement(
        &self,
        rows: usize,
        args: SqliteArguments,
    ) -> sqlx::query::Query<'static, Sqlite, SqliteArguments> {
        let text = if rows == self.full {
            self.full_text.clone()
        } else {
            Self::text(self.head, &self.row, rows)
        };
        sqlx::query_with(AssertSqlSafe(text), args)
    }
}

/// Runs `statements` one after another on `c`, each built while the one before it runs on the
/// connection's thread (a plan of a million tasks is a few thousand statements of many rows:
/// building them is a good part of the work). Returns the rows they changed.
async fn execute_overlapped(
    c: &mut SqliteConnection,
    mut statements: impl Iterator<Item = sqlx::query::Query<'static, Sqlite, SqliteArguments>>,
) -> std::result::Result<u64, sqlx::Error> {
    let mut rows = 0;
    let Some(mut current) = statements.next() else {
        return Ok(0);
    };
    loop {
        let next;
        {
            let mut running = std::pin::pin!(current.execute(&mut *c));
            // The first poll hands the statement to the connection's thread.
            let first = std::future::poll_fn(|cx| Poll::Ready(running.as_mut().poll(cx))).await;
            next = statements.next();
            rows += match first {
                Poll::Ready(done) => done?,
                Poll::Pending => running.await?,
            }
            .rows_affected();
        }
        match next {
            Some(q) => current = q,
            None => return Ok(rows),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Rows;

    #[test]
    fn rows_repeat_the_row_for_full_and_short_statements() {
        let rows = Rows::new("INSERT INTO t(a, b) VALUES ", "(?, 7)".into(), 2);
        assert_eq!(rows.full_text, "INSERT INTO t(a, b) VALUES (?, 7), (?, 7)");
        assert_eq!(
            Rows::text(rows.head, &rows.row, 1),
            "INSERT INTO t(a, b) VALUES (?, 7)"
        );
    }
}
