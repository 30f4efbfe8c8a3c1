//! Batches of finishes and claims, leases, requeues, the ready-set fast path and the attempt
//! ledger: [`ExecutionStore`] for [`PostgresStore`].
//!
//! Must never: open connections or run migrations (`mod.rs` does that), or decode a row or
//! apply a rule that `crate::shared` already has a function for another way.

use super::*;

/// The answer of `downbeat_commit_batch`, exactly as `commit_batch.sql` builds it: any other
/// shape (a missing or unknown field, a wrong type) is an error, never an empty answer.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchAnswer {
    rejected: Vec<i64>,
    claimed: Vec<ClaimedRow>,
    not_claimed: Vec<i64>,
    held: bool,
    capped: Vec<i64>,
    /// The last event's sequence number (none when the batch wrote no event); checked for
    /// its type, not used.
    #[serde(rename = "last", deserialize_with = "present")]
    _last: Option<i64>,
}

/// A field that must be there, null or not (serde lets a plain `Option` field be missing).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Option<i64>, D::Error> {
    serde::Deserialize::deserialize(d)
}

/// One claim the batch function took.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ClaimedRow {
    seq: i64,
    epoch: LeaseEpoch,
    attempt_id: AttemptId,
    number: u32,
}

impl BatchAnswer {
    fn parse(text: &str) -> Result<Self> {
        serde_json::from_str(text)
            .map_err(|e| Error::Database(format!("the batch function answered {text:.200}: {e}")))
    }

    fn into_result(self) -> Result<BatchResult> {
        let task = |s: i64| {
            u32::try_from(s)
                .ok()
                .and_then(TaskId::from_seq)
                .ok_or_else(|| {
                    Error::Database(format!(
                        "the batch function answered a task number out of range: {s}"
                    ))
                })
        };
        let tasks = |v: Vec<i64>| v.into_iter().map(task).collect::<Result<Vec<_>>>();
        Ok(BatchResult {
            claimed: self
                .claimed
                .into_iter()
                .map(|c| {
                    Ok(Claimed {
                        task: task(c.seq)?,
                        epoch: c.epoch,
                        attempt_id: c.attempt_id,
                        number: c.number,
                    })
                })
                .collect::<Result<_>>()?,
            not_claimed: tasks(self.not_claimed)?,
            rejected: tasks(self.rejected)?,
            held: self.held,
            capped: tasks(self.capped)?,
            effects: Vec::new(),
        })
    }
}

impl PostgresStore {
    async fn tx_commit_batch(&self, batch: &Batch, actor: &Actor) -> R<BatchResult> {
        // One call of the schema's batch function (migration 6), outside a transaction block:
        // the statement is its own transaction, one round trip whatever the batch's size. The
        // events' contents that the client knows are built here; the function adds what only
        // the database knows (which finishes passed the fencing check, epochs, attempt ids).
        let now = actor.now.0;
        let finishes: Vec<Value> = batch
            .finishes
            .iter()
            .map(|f| {
                let Landing {
                    status,
                    not_before,
                    finished,
                    result,
                } = f.landing(now);
                let mut after = json!({"status": status.as_str(), "result": result, "attempt": f.attempt_id,
                                       "outcome": f.outcome});
                if let Some(nb) = not_before {
                    after["not_before"] = json!(Timestamp(nb));
                }
                if !f.artifacts.is_empty() {
                    after["artifacts"] = json!(f.artifacts.iter().map(|a| a.path.clone()).collect::<Vec<_>>());
                }
                json!({"seq": seq(f.task), "id": f.task.to_string(), "epoch": f.epoch, "status": status.as_str(),
                       "result": result, "finished": finished, "not_before": not_before,
                       "attempt_id": f.attempt_id, "outcome": f.outcome, "exit_code": f.exit_code,
                       "error": f.error, "summary": f.summary, "tp": f.tokens.map(|t| t.0),
                       "tc": f.tokens.map(|t| t.1), "detail": crate::shared::detail_json(&f.detail),
                       "after": after,
                       "artifacts": f.artifacts.iter()
                           .map(|a| json!({"path": a.path, "size": a.size, "sha256": a.sha256}))
                           .collect::<Vec<_>>()})
            })
            .collect();
        // The claims of a turn usually share one list of prerequisites (the tasks that turn
        // completed): each distinct list is sent once and claims name theirs by position.
        let mut afters: Vec<&[TaskId]> = Vec::new();
        let claims: Vec<Value> = batch
            .claims
            .iter()
            .map(|cl| {
                let a = afters.iter().position(|l| *l == cl.after.as_slice()).unwrap_or_else(|| {
                    afters.push(&cl.after);
                    afters.len() - 1
                });
                json!({"seq": seq(cl.task), "id": cl.task.to_string(), "executor": cl.executor, "after": a})
            })
            .collect();
        let afters: Vec<Vec<i64>> = afters
            .iter()
            .map(|l| l.iter().map(|t| seq(*t)).collect())
            .collect();
        let input = json!({
            "now": now, "holder": batch.holder, "lease_until": batch.lease_until.0,
            "actor": actor.name, "session": actor.session.map(|s| s.num),
            "lock": LOCK_EVENTS, "channel": CHANGED_CHANNEL, "wake": !batch.quiet,
            "finishes": finishes, "claims": claims, "afters": afters,
            "holds_seen": batch.holds_seen,
            "caps": batch.caps.iter().map(|l| json!({"cap": l.cap, "roles": l.roles})).collect::<Vec<_>>(),
            "cap_lock": LOCK_CAPS,
        });
        if crate::effects::any(batch) {
            return self.with_effects(batch, &input, actor).await;
        }
        let text: String = sqlx::query_scalar("SELECT downbeat_commit_batch($1::jsonb)::text")
            .bind(input.to_string())
            .fetch_one(&self.pool)
            .await
            .map_err(db)?;
        Ok(BatchAnswer::parse(&text)?.into_result()?)
    }

    /// A batch whose finishes carry effects: the batch function and the accepted finishes'
    /// effects in one explicit transaction on one connection, committed or rolled back
    /// together. The graph lock, when an effect adds a `blocks` edge, is taken first.
    async fn with_effects(&self, batch: &Batch, input: &Value, actor: &Actor) -> R<BatchResult> {
        let mut t = self.write().await?;
        let blocks = batch.finishes.iter().flat_map(|f| &f.effects).any(
            |e| matches!(e, downbeat_core::flags::Effect::Discover { blocks, .. } if !blocks.is_empty()),
        );
        if blocks {
            lock_graph(&mut t).await?;
        }
        let text: String = sqlx::query_scalar("SELECT downbeat_commit_batch($1::jsonb)::text")
            .bind(input.to_string())
            .fetch_one(t.c())
            .await
            .map_err(db)?;
        let mut out = BatchAnswer::parse(&text)?.into_result()?;
        let mut on = super::effects::InBatch {
            t: &mut t,
            retry: None,
        };
        match crate::effects::apply(&mut on, batch, &out.rejected, actor).await {
            Ok(done) => out.effects = done,
            Err(e) => {
                return Err(match on.retry {
                    Some(m) => Fail::Retry(m),
                    None => e.into(),
                });
            }
        }
        t.wake = true;
        t.commit().await?;
        Ok(out)
    }

    async fn tx_renew_leases(
        &self,
        holder: &str,
        until: Timestamp,
    ) -> R<Vec<(TaskId, LeaseEpoch)>> {
        let mut t = self.write().await?;
        // `until` is on the holder's clock; `lease_skew` (taken at the claim) moves it to the
        // database's clock.
        sqlx::query(
            "UPDATE tasks SET lease_expires = $1 + lease_skew \
             WHERE lease_holder = $2 AND status = 'running' AND lease_expires IS NOT NULL",
        )
        .bind(until.0)
        .bind(holder)
        .execute(t.c())
        .await
        .map_err(db)?;
        let rows = sqlx::query(
            "SELECT seq, lease_epoch FROM tasks WHERE lease_holder = $1 AND status = 'running' ORDER BY seq",
        )
        .bind(holder)
        .fetch_all(t.c())
        .await
        .map_err(db)?;
        t.commit().await?;
        Ok(rows
            .iter()
            .map(|r| (tid(r.get(0)), LeaseEpoch(r.get(1))))
            .collect())
    }

    async fn tx_requeue_running(
        &self,
        expired_before: Option<Timestamp>,
        holders: &[String],
        actor: &Actor,
    ) -> R<Vec<TaskId>> {
        let mut t = self.write().await?;
        // Expiry is judged on the database's clock: `expired_before` becomes an offset from
        // the caller's `now`. Rows being changed by someone else right now are left alone.
        let offset = expired_before.map(|b| b.0 - actor.now.0);
        let rows = sqlx::query(AssertSqlSafe(format!(
            "WITH clock AS (SELECT {DB_NOW} AS now) \
             SELECT seq, lease_holder, \
                    coalesce($1::bigint IS NOT NULL AND lease_expires < clock.now + $1::bigint, false) AS expired \
             FROM tasks, clock \
             WHERE status = 'running' AND lease_expires IS NOT NULL \
               AND (($1::bigint IS NOT NULL AND lease_expires < clock.now + $1::bigint) OR lease_holder = ANY($2)) \
             ORDER BY seq FOR UPDATE OF tasks SKIP LOCKED"
        )))
        .bind(offset)
        .bind(holders)
        .fetch_all(t.c())
        .await
        .map_err(db)?;
        let mut out = Vec::new();
        let mut fixes = Vec::new();
        for r in &rows {
            let s: i64 = r.get(0);
            let holder: Option<String> = r.get(1);
            let expired: bool = r.get(2);
            let reason = requeue_reason(holder.as_deref(), expired);
            let (before, after) = requeue_event(holder.as_deref(), &reason);
            fixes.push(json!({"seq": s, "result": after["result"], "reason": reason}));
            t.event(
                actor,
                "task.status",
                &tid(s).to_string(),
                Some(before),
                Some(after),
            );
            out.push(tid(s));
        }
        if !fixes.is_empty() {
            let fixes = Value::Array(fixes).to_string();
            sqlx::query(
                "UPDATE tasks SET status = 'pending', lease_holder = NULL, lease_expires = NULL, updated_at = $1, \
                 result = v.result FROM jsonb_to_recordset($2::jsonb) AS v(seq bigint, result text) \
                 WHERE tasks.seq = v.seq",
            )
            .bind(actor.now.0)
            .bind(&fixes)
            .execute(t.c())
            .await
            .map_err(db)?;
            sqlx::query(
                "UPDATE attempts SET ended_at = $1, outcome = 'lost', error = v.reason \
                 FROM jsonb_to_recordset($2::jsonb) AS v(seq bigint, reason text) \
                 WHERE attempts.task_seq = v.seq AND attempts.ended_at IS NULL",
            )
            .bind(actor.now.0)
            .bind(&fixes)
            .execute(t.c())
            .await
            .map_err(db)?;
        }
        t.wake = true;
        t.commit().await?;
        Ok(out)
    }
}

#[async_trait]
impl ExecutionStore for PostgresStore {
    async fn commit_batch(&self, batch: &Batch, actor: &Actor) -> Result<BatchResult> {
        retrying(move || self.tx_commit_batch(batch, actor)).await
    }

    async fn renew_leases(
        &self,
        holder: &str,
        until: Timestamp,
    ) -> Result<Vec<(TaskId, LeaseEpoch)>> {
        retrying(move || self.tx_renew_leases(holder, until)).await
    }

    async fn requeue_running(
        &self,
        expired_before: Option<Timestamp>,
        holders: &[String],
        actor: &Actor,
    ) -> Result<Vec<TaskId>> {
        retrying(move || self.tx_requeue_running(expired_before, holders, actor)).await
    }

    async fn ready_tasks(&self, limit: u32, now: Timestamp) -> Result<Vec<Task>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {TASK_COLS} FROM tasks t WHERE t.status = 'pending' AND NOT t.archived \
             AND (t.not_before IS NULL OR t.not_before <= $1) \
             AND NOT EXISTS (SELECT 1 FROM tasks c WHERE c.parent_seq = t.seq) \
             AND NOT EXISTS (WITH RECURSIVE up(s) AS (SELECT t.seq UNION ALL \
                 SELECT p.parent_seq FROM tasks p JOIN up ON p.seq = up.s WHERE p.parent_seq IS NOT NULL) \
                 SELECT 1 FROM up JOIN edges e ON e.to_seq = up.s AND e.kind = 'blocks' \
                 JOIN tasks b ON b.seq = e.from_seq \
                 WHERE b.status NOT IN ('completed', 'skipped') \
                 OR EXISTS (SELECT 1 FROM tasks bc WHERE bc.parent_seq = b.seq)) \
             ORDER BY t.priority DESC, t.seq LIMIT $2"
        )))
        .bind(now.0)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter().map(row_task).collect()
    }

    async fn change_feed(&self) -> Result<Option<Box<dyn ChangeFeed>>> {
        Ok(Some(Box::new(PgFeed(self.listener().await?))))
    }

    async fn lease_holders(&self) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT lease_holder COLLATE \"C\" FROM tasks \
             WHERE status = 'running' AND lease_expires IS NOT NULL AND lease_holder IS NOT NULL ORDER BY 1",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db)?)
    }

    async fn attempts(&self, task: TaskId) -> Result<Vec<AttemptRecord>> {
        let rows = sqlx::query("SELECT * FROM attempts WHERE task_seq = $1 ORDER BY id")
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
    fn batch_answers_of_another_shape_are_errors() {
        let ok = r#"{"rejected": [3], "claimed": [{"seq": 4, "epoch": 2, "attempt_id": 9, "number": 1}],
                     "not_claimed": [5], "held": false, "capped": [], "last": 17}"#;
        let r = BatchAnswer::parse(ok).unwrap().into_result().unwrap();
        assert_eq!(r.rejected, [tid(3)]);
        assert_eq!(r.not_claimed, [tid(5)]);
        assert_eq!(
            r.claimed,
            [Claimed {
                task: tid(4),
                epoch: LeaseEpoch(2),
                attempt_id: AttemptId(9),
                number: 1
            }]
        );
        let empty = r#"{"rejected": [], "claimed": [], "not_claimed": [], "held": true, "capped": [], "last": null}"#;
        assert!(
            BatchAnswer::parse(empty)
                .unwrap()
                .into_result()
                .unwrap()
                .held
        );
        for bad in [
            "{}",
            "null",
            "[]",
            r#"{"rejected": [], "claimed": [], "not_claimed": [], "held": false, "capped": []}"#,
            r#"{"rejected": [], "claimed": [], "not_claimed": [], "held": false, "last": null}"#,
            r#"{"rejected": [], "claimed": [], "not_claimed": [], "held": false, "capped": ["x"], "last": null}"#,
            r#"{"rejected": [], "claimed": [], "not_claimed": [], "held": false, "capped": [], "last": null, "extra": 1}"#,
            r#"{"rejected": ["x"], "claimed": [], "not_claimed": [], "held": false, "capped": [], "last": null}"#,
            r#"{"rejected": [], "claimed": [{"seq": 4, "epoch": 2, "attempt_id": 9}], "not_claimed": [], "held": false, "capped": [], "last": null}"#,
            r#"{"rejected": [], "claimed": [], "not_claimed": [], "held": null, "capped": [], "last": null}"#,
        ] {
            assert!(
                matches!(BatchAnswer::parse(bad), Err(Error::Database(_))),
                "{bad}"
            );
        }
        let out_of_range = r#"{"rejected": [-1], "claimed": [], "not_claimed": [], "held": false, "capped": [], "last": null}"#;
        assert!(matches!(
            BatchAnswer::parse(out_of_range).unwrap().into_result(),
            Err(Error::Database(_))
        ));
    }
}
