//! Batches of finishes and claims, leases, requeues, the ready-set fast path and the attempt
//! ledger: [`ExecutionStore`] for [`SqliteStore`].
//!
//! Must never: open connections or run migrations (`mod.rs` does that), or decode a row or
//! apply a rule that `crate::shared` already has a function for another way.

use super::*;
use crate::types::CapLimit;

/// Task numbers as the JSON array `json_each` reads.
fn json_seqs(seqs: &[i64]) -> String {
    Value::from(seqs.to_vec()).to_string()
}

/// The finishes of a batch: accepted where the fencing token still matches, rejected
/// otherwise; every attempt's end goes to the ledger. Queues each accepted one's event.
async fn land_finishes(
    c: &mut SqliteConnection,
    batch: &Batch,
    now: i64,
    out: &mut BatchResult,
    events: &mut Vec<(String, Value, Value)>,
) -> Result<()> {
    let rows: Vec<Value> = batch
        .finishes
        .iter()
        .map(|f| {
            let l = f.landing(now);
            json!({"seq": seq(f.task), "epoch": f.epoch, "status": l.status.as_str(), "result": l.result,
                   "finished": l.finished, "not_before": l.not_before})
        })
        .collect();
    let accepted: HashSet<i64> = sqlx::query_scalar(
        "UPDATE tasks SET status = v.status, result = v.result, finished_at = v.finished, updated_at = ?1, \
         not_before = v.not_before, lease_holder = NULL, lease_expires = NULL \
         FROM (SELECT value ->> '$.seq' AS seq, value ->> '$.epoch' AS epoch, value ->> '$.status' AS status, \
               value ->> '$.result' AS result, value ->> '$.finished' AS finished, value ->> '$.not_before' AS not_before \
               FROM json_each(?2)) AS v \
         WHERE tasks.seq = v.seq AND tasks.status = 'running' AND tasks.lease_epoch = v.epoch \
         RETURNING tasks.seq",
    )
    .bind(now)
    .bind(Value::Array(rows.clone()).to_string())
    .fetch_all(&mut *c)
    .await
    .map_err(db)?
    .into_iter()
    .collect();
    // The ledger records every attempt's end, accepted or not.
    let ledger: Vec<Value> = batch
        .finishes
        .iter()
        .map(|f| {
            let ok = accepted.contains(&seq(f.task));
            let outcome = if ok { f.outcome.clone() } else { format!("{} (lease lost)", f.outcome) };
            json!({"id": f.attempt_id, "outcome": outcome, "exit_code": f.exit_code, "error": f.error,
                   "summary": f.summary, "tp": f.tokens.map(|t| t.0), "tc": f.tokens.map(|t| t.1),
                   "detail": crate::shared::detail_json(&f.detail)})
        })
        .collect();
    sqlx::query(
        "UPDATE attempts SET ended_at = ?1, outcome = v.outcome, exit_code = v.exit_code, error = v.error, \
         summary = v.summary, tokens_prompt = v.tp, tokens_completion = v.tc, detail = v.detail \
         FROM (SELECT value ->> '$.id' AS id, value ->> '$.outcome' AS outcome, value ->> '$.exit_code' AS exit_code, \
               value ->> '$.error' AS error, value ->> '$.summary' AS summary, value ->> '$.tp' AS tp, value ->> '$.tc' AS tc, \
               value ->> '$.detail' AS detail \
               FROM json_each(?2)) AS v \
         WHERE attempts.id = v.id AND attempts.ended_at IS NULL",
    )
    .bind(now)
    .bind(Value::Array(ledger).to_string())
    .execute(&mut *c)
    .await
    .map_err(db)?;
    for (f, row) in batch.finishes.iter().zip(&rows) {
        if !accepted.contains(&seq(f.task)) {
            out.rejected.push(f.task);
            continue;
        }
        for a in &f.artifacts {
            sqlx::query(
                "INSERT INTO artifacts(task_seq, path, size, sha256, created_at, attempt_id) VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(seq(f.task))
            .bind(&a.path)
            .bind(a.size)
            .bind(&a.sha256)
            .bind(now)
            .bind(f.attempt_id.0)
            .execute(&mut *c)
            .await
            .map_err(db)?;
        }
        let mut after = json!({"status": row["status"], "result": row["result"], "attempt": f.attempt_id, "outcome": f.outcome});
        if let Some(nb) = row["not_before"].as_i64() {
            after["not_before"] = json!(Timestamp(nb));
        }
        if !f.artifacts.is_empty() {
            after["artifacts"] = json!(
                f.artifacts
                    .iter()
                    .map(|a| a.path.clone())
                    .collect::<Vec<_>>()
            );
        }
        events.push((f.task.to_string(), json!({"status": "running"}), after));
    }
    Ok(())
}

/// The claims of a batch (no hold stands in their way): each taken if its task is still
/// claimable and its prerequisites are finished. Queues each taken one's event.
async fn take_claims(
    c: &mut SqliteConnection,
    batch: &Batch,
    now: i64,
    out: &mut BatchResult,
    events: &mut Vec<(String, Value, Value)>,
) -> Result<()> {
    // Conditional claims: refuse those whose prerequisites are not all finished.
    let mut after_seqs: Vec<i64> = batch
        .claims
        .iter()
        .flat_map(|cl| cl.after.iter().map(|t| seq(*t)))
        .collect();
    after_seqs.sort_unstable();
    after_seqs.dedup();
    let open: HashSet<i64> = if after_seqs.is_empty() {
        HashSet::new()
    } else {
        sqlx::query_scalar(
            "SELECT seq FROM tasks WHERE seq IN (SELECT value FROM json_each(?)) AND status NOT IN ('completed', 'skipped')",
        )
        .bind(json_seqs(&after_seqs))
        .fetch_all(&mut *c)
        .await
        .map_err(db)?
        .into_iter()
        .collect()
    };
    let mut wanted: Vec<i64> = Vec::new();
    for cl in &batch.claims {
        if cl.after.iter().any(|t| open.contains(&seq(*t))) {
            out.not_claimed.push(cl.task);
        } else {
            wanted.push(seq(cl.task));
        }
    }
    if !batch.caps.is_empty() && !wanted.is_empty() {
        // Writers are serialised, so the running tasks counted here are all there are until
        // this transaction commits.
        wanted = within_caps(c, &batch.caps, wanted, out).await?;
    }
    let mut got: HashMap<i64, (i64, i64)> = HashMap::new();
    if !wanted.is_empty() {
        // NOT INDEXED keeps the planner on the primary key: through the ready index it
        // would walk every pending task of the project for each batch.
        let rows = sqlx::query(
            "UPDATE tasks NOT INDEXED SET status = 'running', started_at = ?1, finished_at = NULL, updated_at = ?1, \
             lease_holder = ?2, lease_expires = ?3, lease_epoch = lease_epoch + 1, attempts = attempts + 1, \
             not_before = NULL, result = NULL \
             WHERE seq IN (SELECT value FROM json_each(?4)) AND status = 'pending' AND archived = 0 \
             AND (not_before IS NULL OR not_before <= ?1) \
             RETURNING seq, lease_epoch, attempts",
        )
        .bind(now)
        .bind(&batch.holder)
        .bind(batch.lease_until.0)
        .bind(json_seqs(&wanted))
        .fetch_all(&mut *c)
        .await
        .map_err(db)?;
        for r in &rows {
            got.insert(r.get(0), (r.get(1), r.get(2)));
        }
    }
    let executor_of: HashMap<i64, &str> = batch
        .claims
        .iter()
        .map(|cl| (seq(cl.task), cl.executor.as_str()))
        .collect();
    let new_attempts: Vec<Value> = wanted
        .iter()
        .filter_map(|s| got.get(s).map(|(epoch, number)| json!({"seq": s, "number": number, "epoch": epoch, "executor": executor_of.get(s).copied().unwrap_or("")})))
        .collect();
    let mut ids: HashMap<i64, i64> = HashMap::new();
    if !new_attempts.is_empty() {
        let rows = sqlx::query(
            "INSERT INTO attempts(task_seq, number, epoch, worker, executor, started_at) \
             SELECT value ->> '$.seq', value ->> '$.number', value ->> '$.epoch', ?1, value ->> '$.executor', ?2 \
             FROM json_each(?3) WHERE true RETURNING id, task_seq",
        )
        .bind(&batch.holder)
        .bind(now)
        .bind(Value::Array(new_attempts).to_string())
        .fetch_all(&mut *c)
        .await
        .map_err(db)?;
        for r in &rows {
            ids.insert(r.get(1), r.get(0));
        }
    }
    for &s in &wanted {
        let (Some(&(epoch, number)), Some(&attempt_id)) = (got.get(&s), ids.get(&s)) else {
            out.not_claimed.push(tid(s));
            continue;
        };
        let executor = executor_of.get(&s).copied().unwrap_or("");
        events.push((
            tid(s).to_string(),
            json!({"status": "pending"}),
            json!({"status": "running", "attempt": attempt_id, "epoch": epoch, "holder": batch.holder, "executor": executor}),
        ));
        out.claimed.push(Claimed {
            task: tid(s),
            epoch: LeaseEpoch(epoch),
            attempt_id: AttemptId(attempt_id),
            number: u32::try_from(number).unwrap_or(0),
        });
    }
    Ok(())
}

/// The claims in `wanted` that keep every group within its cap, counting the tasks running
/// now (whoever holds them); the others go to `not_claimed` and `capped`.
async fn within_caps(
    c: &mut SqliteConnection,
    caps: &[CapLimit],
    wanted: Vec<i64>,
    out: &mut BatchResult,
) -> Result<Vec<i64>> {
    let running: Vec<(String, i64)> = sqlx::query_as(
        "SELECT role, count(*) FROM tasks WHERE status = 'running' AND archived = 0 \
         AND role IS NOT NULL GROUP BY role",
    )
    .fetch_all(&mut *c)
    .await
    .map_err(db)?;
    let roles: HashMap<i64, String> = sqlx::query_as(
        "SELECT seq, role FROM tasks WHERE seq IN (SELECT value FROM json_each(?)) AND role IS NOT NULL",
    )
    .bind(json_seqs(&wanted))
    .fetch_all(&mut *c)
    .await
    .map_err(db)?
    .into_iter()
    .collect();
    let running: HashMap<String, u32> = running
        .into_iter()
        .map(|(r, n)| (r, u32::try_from(n).unwrap_or(u32::MAX)))
        .collect();
    let (keep, refused) = split_by_caps(caps, &running, &wanted, |s| {
        roles.get(&s).map(String::as_str)
    });
    for s in refused {
        out.not_claimed.push(tid(s));
        out.capped.push(tid(s));
    }
    Ok(keep)
}

/// Splits `wanted` (in claim order) into the claims that fit their group's cap next to the
/// `running` tasks per role, and the ones that do not. A claim whose role is in no group
/// always fits.
fn split_by_caps<'a>(
    caps: &[CapLimit],
    running: &HashMap<String, u32>,
    wanted: &[i64],
    role_of: impl Fn(i64) -> Option<&'a str>,
) -> (Vec<i64>, Vec<i64>) {
    let mut used: Vec<u32> = caps
        .iter()
        .map(|l| l.roles.iter().filter_map(|r| running.get(r)).sum())
        .collect();
    let (mut keep, mut refused) = (Vec::new(), Vec::new());
    for &s in wanted {
        let group =
            role_of(s).and_then(|r| caps.iter().position(|l| l.roles.iter().any(|x| x == r)));
        match group {
            Some(g) if used[g] >= caps[g].cap => refused.push(s),
            Some(g) => {
                used[g] += 1;
                keep.push(s);
            }
            None => keep.push(s),
        }
    }
    (keep, refused)
}

#[async_trait]
impl ExecutionStore for SqliteStore {
    async fn commit_batch(&self, batch: &Batch, actor: &Actor) -> Result<BatchResult> {
        // Set-based: a fixed handful of statements per batch, whatever its size, so a batch of
        // a hundred transitions costs little more than one.
        let mut tx = self.write().await?;
        let c: &mut SqliteConnection = &mut tx;
        let now = actor.now.0;
        let mut out = BatchResult::default();
        let mut events: Vec<(String, Value, Value)> = Vec::new();

        if !batch.finishes.is_empty() {
            land_finishes(c, batch, now, &mut out, &mut events).await?;
        }

        // A hold the claimer had not seen when it chose: no claim is taken. Writers are
        // serialised, so no hold can land between this look and the commit.
        if let Some(seen) = batch.holds_seen
            && !batch.claims.is_empty()
        {
            let raw: Option<String> =
                sqlx::query_scalar("SELECT value FROM meta WHERE key = 'holds'")
                    .fetch_optional(&mut *c)
                    .await
                    .map_err(db)?;
            if crate::holds::later_than(raw.as_deref(), seen)? {
                out.held = true;
                out.not_claimed = batch.claims.iter().map(|cl| cl.task).collect();
            }
        }
        if !batch.claims.is_empty() && !out.held {
            take_claims(c, batch, now, &mut out, &mut events).await?;
        }

        for chunk in events.chunks(ROWS_PER_INSERT * 4) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "INSERT INTO events(at, actor, session_id, action, entity, task_seq, before, after) ",
            );
            qb.push_values(chunk, |mut b, (entity, before, after)| {
                b.push_bind(now)
                    .push_bind(actor.name.clone())
                    .push_bind(actor.session.map(|s| s.num))
                    .push_bind("task.status")
                    .push_bind(entity.clone())
                    .push_bind(event_task_seq("task.status", entity))
                    .push_bind(before.to_string())
                    .push_bind(after.to_string());
            });
            qb.build().execute(&mut *c).await.map_err(db)?;
        }
        // The accepted finishes' effects, after their status events; any failure rolls the
        // whole batch back (the transaction is dropped uncommitted).
        if crate::effects::any(batch) {
            let mut on = super::effects::InBatch(c);
            out.effects = crate::effects::apply(&mut on, batch, &out.rejected, actor).await?;
        }
        tx.commit().await.map_err(db)?;
        Ok(out)
    }

    async fn ready_tasks(&self, limit: u32, now: Timestamp) -> Result<Vec<Task>> {
        let text: String = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT '[' || coalesce(group_concat(j, ','), '') || ']' FROM (SELECT {TASK_JSON} AS j \
             FROM tasks t INDEXED BY tasks_ready WHERE t.status = 'pending' AND t.archived = 0 \
             AND (t.not_before IS NULL OR t.not_before <= ?1) \
             AND NOT EXISTS (SELECT 1 FROM tasks c WHERE c.parent_seq = t.seq) \
             AND NOT EXISTS ({READY_BLOCKERS}) \
             ORDER BY t.priority DESC, t.seq LIMIT ?2)"
        )))
        .bind(now.0)
        .bind(i64::from(limit))
        .fetch_one(&self.pool)
        .await
        .map_err(db)?;
        parse_task_chunk(&text)
    }

    async fn renew_leases(
        &self,
        holder: &str,
        until: Timestamp,
    ) -> Result<Vec<(TaskId, LeaseEpoch)>> {
        let mut tx = self.write().await?;
        let c: &mut SqliteConnection = &mut tx;
        sqlx::query("UPDATE tasks SET lease_expires = ? WHERE lease_holder = ? AND status = 'running' AND lease_expires IS NOT NULL")
            .bind(until.0)
            .bind(holder)
            .execute(&mut *c)
            .await
            .map_err(db)?;
        let rows = sqlx::query("SELECT seq, lease_epoch FROM tasks WHERE lease_holder = ? AND status = 'running' ORDER BY seq")
            .bind(holder)
            .fetch_all(&mut *c)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(rows
            .iter()
            .map(|r| (tid(r.get(0)), LeaseEpoch(r.get(1))))
            .collect())
    }

    async fn requeue_running(
        &self,
        expired_before: Option<Timestamp>,
        holders: &[String],
        actor: &Actor,
    ) -> Result<Vec<TaskId>> {
        let list = serde_json::to_string(holders).map_err(|e| Error::Invalid(e.to_string()))?;
        // Usually nothing is due: look without taking the write lock first. A lease that runs
        // out just after this look is requeued by the next call.
        let due: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM tasks WHERE status = 'running' AND lease_expires IS NOT NULL \
             AND (lease_expires < ? OR lease_holder IN (SELECT value FROM json_each(?))))",
        )
        .bind(expired_before.map(|t| t.0).unwrap_or(i64::MIN))
        .bind(&list)
        .fetch_one(&self.pool)
        .await
        .map_err(db)?;
        if !due {
            return Ok(Vec::new());
        }
        let mut tx = self.write().await?;
        let c: &mut SqliteConnection = &mut tx;
        let rows = sqlx::query(
            "SELECT seq, lease_holder, lease_expires FROM tasks WHERE status = 'running' AND lease_expires IS NOT NULL \
             AND (lease_expires < ? OR lease_holder IN (SELECT value FROM json_each(?))) ORDER BY seq",
        )
        .bind(expired_before.map(|t| t.0).unwrap_or(i64::MIN))
        .bind(list)
        .fetch_all(&mut *c)
        .await
        .map_err(db)?;
        let mut out = Vec::new();
        for r in &rows {
            let s: i64 = r.get(0);
            let holder: Option<String> = r.get(1);
            let expired = r
                .get::<Option<i64>, _>(2)
                .is_some_and(|e| expired_before.is_some_and(|b| e < b.0));
            let reason = requeue_reason(holder.as_deref(), expired);
            sqlx::query(
                "UPDATE tasks SET status = 'pending', lease_holder = NULL, lease_expires = NULL, updated_at = ?, result = ? WHERE seq = ?",
            )
            .bind(actor.now.0)
            .bind(format!("requeued: {reason}"))
            .bind(s)
            .execute(&mut *c)
            .await
            .map_err(db)?;
            sqlx::query("UPDATE attempts SET ended_at = ?, outcome = 'lost', error = ? WHERE task_seq = ? AND ended_at IS NULL")
                .bind(actor.now.0)
                .bind(&reason)
                .bind(s)
                .execute(&mut *c)
                .await
                .map_err(db)?;
            let (before, after) = requeue_event(holder.as_deref(), &reason);
            event(
                c,
                actor,
                "task.status",
                &tid(s).to_string(),
                Some(before),
                Some(after),
            )
            .await?;
            out.push(tid(s));
        }
        tx.commit().await.map_err(db)?;
        Ok(out)
    }

    async fn lease_holders(&self) -> Result<Vec<String>> {
        sqlx::query_scalar(
            "SELECT DISTINCT lease_holder FROM tasks WHERE status = 'running' AND lease_expires IS NOT NULL AND lease_holder IS NOT NULL ORDER BY 1",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db)
    }

    async fn attempts(&self, task: TaskId) -> Result<Vec<AttemptRecord>> {
        let rows = sqlx::query("SELECT * FROM attempts WHERE task_seq = ? ORDER BY id")
            .bind(seq(task))
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        Ok(rows.iter().map(row_attempt).collect())
    }

    async fn all_attempts(&self) -> Result<Vec<AttemptRecord>> {
        let rows = sqlx::query("SELECT * FROM attempts ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        Ok(rows.iter().map(row_attempt).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_fill_each_group_up_to_its_cap_in_order() {
        let caps = vec![
            CapLimit {
                cap: 2,
                roles: vec!["implementer".into(), "tester".into()],
            },
            CapLimit {
                cap: 1,
                roles: vec!["architect".into()],
            },
        ];
        // One tester already runs (elsewhere): the heavy group has one place left.
        let running = HashMap::from([("tester".to_owned(), 1), ("writer".to_owned(), 5)]);
        let roles: HashMap<i64, &str> = HashMap::from([
            (1, "implementer"),
            (2, "tester"),
            (3, "architect"),
            (4, "architect"),
            (5, "writer"),
        ]);
        let (keep, refused) = split_by_caps(&caps, &running, &[1, 2, 3, 4, 5, 6], |s| {
            roles.get(&s).copied()
        });
        assert_eq!(keep, vec![1, 3, 5, 6]);
        assert_eq!(refused, vec![2, 4]);
    }
}
