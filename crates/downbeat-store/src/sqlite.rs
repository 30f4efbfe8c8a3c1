//! The embedded SQLite backend: WAL journal, `synchronous=FULL`, a busy timeout, write
//! transactions that take the write lock up front (`BEGIN IMMEDIATE`, so a read-then-write
//! transaction never fails to upgrade), and migrations embedded in the binary with a backup of
//! the database file taken before any migration touches an existing database.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use downbeat_core::context::{
    Actor, Decision, Event, Insight, Metrics, Objective, ObjectiveStatus, RunInterval, Session,
    parallel_rate,
};
use downbeat_core::graph::{self, GraphSnapshot, GraphTask};
use downbeat_core::ids::{MAX_TASK_SEQ, RecordId, RecordKind, TaskId};
use downbeat_core::plan::{TaskRef, ValidatedPlan};
use downbeat_core::task::{
    Edge, EdgeKind, ExecSettings, NewTask, Priority, Status, Task, TaskPatch, validate_fields,
};
use downbeat_core::time::Timestamp;
use serde_json::{Value, json};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, QueryBuilder, Row, Sqlite, migrate::Migrator};

use crate::{
    AppliedPlan, Artifact, AttemptRecord, Batch, BatchResult, Claimed, Error, EventQuery,
    Integrity, Result, SchemaInfo, Store, TaskFilter, WorkerRecord,
};

/// Rows per multi-row INSERT (15 columns × 100 stays far below SQLite's bound-parameter limit).
const ROWS_PER_INSERT: usize = 100;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// An open SQLite project database.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// Reads (and nothing that must be serialised with the writes below).
    pub(crate) pool: SqlitePool,
    /// One connection for every write. SQLite allows one writer at a time anyway, and in WAL
    /// mode a connection drops its whole page cache whenever another connection has written
    /// since its last transaction: writes spread over a pool re-read every page they touch
    /// from the operating system, which grows with the database. One writer keeps its cache.
    writer: SqlitePool,
    path: PathBuf,
    version: i64,
    backup: Option<String>,
}

pub(crate) fn db(e: sqlx::Error) -> Error {
    if let sqlx::Error::Database(d) = &e {
        let msg = d.message().to_owned();
        if msg.contains("readonly") || msg.contains("read-only") {
            return Error::ReadOnly(msg);
        }
        return Error::Database(msg);
    }
    Error::Database(e.to_string())
}

fn latest_known() -> i64 {
    MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0)
}

impl SqliteStore {
    /// Opens (or with `create`, creates) the database at `path` and brings its schema up to
    /// date, backing the file up first when an existing database needs migrating.
    pub async fn open(path: &Path, create: bool) -> Result<Self> {
        let location = path.display().to_string();
        let open_err = |message: String| Error::Open {
            location: location.clone(),
            message,
        };
        let existed = path.exists();
        if !existed && !create {
            return Err(open_err("no database there".into()));
        }
        if !existed && let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| open_err(format!("cannot create {}: {e}", dir.display())))?;
        }
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(create)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(30))
            // The default page cache (2 MiB) is smaller than the indexes a large project
            // touches on every commit; pages are allocated only as they are used.
            .pragma("cache_size", "-65536")
            .pragma("temp_store", "memory")
            .foreign_keys(false);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(60))
            .connect_with(opts.clone())
            .await
            .map_err(|e| match db(e) {
                Error::ReadOnly(m) => Error::ReadOnly(format!("{location}: {m}")),
                other => open_err(
                    other
                        .to_string()
                        .trim_start_matches("database error: ")
                        .to_owned(),
                ),
            })?;

        // Which migrations has this file seen?
        let has_table: bool = sqlx::query_scalar(
            "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
        )
        .fetch_one(&pool)
        .await
        .map_err(|e| open_err(e.to_string()))?;
        let applied: i64 = if has_table {
            sqlx::query_scalar(
                "SELECT coalesce(max(version), 0) FROM _sqlx_migrations WHERE success",
            )
            .fetch_one(&pool)
            .await
            .map_err(db)?
        } else {
            let any: i64 =
                sqlx::query_scalar("SELECT count(*) FROM sqlite_master WHERE type = 'table'")
                    .fetch_one(&pool)
                    .await
                    .map_err(|e| open_err(e.to_string()))?;
            if any > 0 {
                return Err(open_err(
                    "the file is an SQLite database but not a downbeat one".into(),
                ));
            }
            0
        };
        let supported = latest_known();
        if applied > supported {
            return Err(Error::SchemaTooNew {
                found: applied,
                supported,
            });
        }
        let mut backup = None;
        if applied < supported {
            if applied > 0 {
                let target = format!("{}.bak-v{applied}", path.display());
                let _ = std::fs::remove_file(&target);
                sqlx::query("VACUUM INTO ?")
                    .bind(&target)
                    .execute(&pool)
                    .await
                    .map_err(db)?;
                backup = Some(target);
            }
            MIGRATOR.run(&pool).await.map_err(|e| match e {
                sqlx::migrate::MigrateError::Execute(e) => db(e),
                other => Error::Database(other.to_string()),
            })?;
        }
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(60))
            .connect_with(opts)
            .await
            .map_err(db)?;
        Ok(Self {
            pool,
            writer,
            path: path.to_owned(),
            version: supported,
            backup,
        })
    }

    pub(crate) async fn write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        self.writer.begin_with("BEGIN IMMEDIATE").await.map_err(db)
    }

    /// The writer connection, for a single write statement outside a transaction.
    async fn write_conn(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Sqlite>> {
        self.writer.acquire().await.map_err(db)
    }

    async fn conn(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Sqlite>> {
        self.pool.acquire().await.map_err(db)
    }
}

// ------------------------------------------------------------------------------------------
// Row mapping

const TASK_COLS: &str = "seq, key, parent_seq, title, description, role, status, priority, effort, \
     acceptance, tags, footprint, result, created_at, updated_at, started_at, finished_at, archived, \
     executor, timeout_ms, max_attempts, attempts, not_before, lease_holder, lease_expires, lease_epoch";

pub(crate) fn tid(seq: i64) -> TaskId {
    // Sequence numbers are allocated by this store within range; clamp defensively.
    TaskId::from_seq(u32::try_from(seq).unwrap_or(0).min(MAX_TASK_SEQ))
        .unwrap_or(TaskId::from_seq(0).expect("0 is in range"))
}

pub(crate) fn seq(id: TaskId) -> i64 {
    i64::from(id.seq())
}

pub(crate) fn json_list(s: &str) -> Vec<String> {
    serde_json::from_str(s).unwrap_or_default()
}

pub(crate) fn to_json_list(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

pub(crate) fn status_of(s: &str) -> Result<Status> {
    Status::from_str(s).map_err(|e| Error::Database(format!("corrupt task row: {e}")))
}

fn row_task(r: &SqliteRow) -> Result<Task> {
    let ts = |c: &str| r.get::<Option<i64>, _>(c).map(Timestamp);
    Ok(Task {
        id: tid(r.get("seq")),
        key: r.get("key"),
        parent: r.get::<Option<i64>, _>("parent_seq").map(tid),
        title: r.get("title"),
        description: r.get("description"),
        role: r.get("role"),
        status: status_of(r.get("status"))?,
        priority: Priority::from_rank(r.get("priority")),
        effort: u32::try_from(r.get::<i64, _>("effort")).unwrap_or(0),
        acceptance: json_list(r.get("acceptance")),
        tags: json_list(r.get("tags")),
        footprint: json_list(r.get("footprint")),
        result: r.get("result"),
        created_at: Timestamp(r.get("created_at")),
        updated_at: Timestamp(r.get("updated_at")),
        started_at: ts("started_at"),
        finished_at: ts("finished_at"),
        archived: r.get::<i64, _>("archived") != 0,
        exec: ExecSettings {
            executor: r.get("executor"),
            timeout_ms: r.get("timeout_ms"),
            max_attempts: r
                .get::<Option<i64>, _>("max_attempts")
                .map(|n| u32::try_from(n).unwrap_or(1)),
        },
        attempts: u32::try_from(r.get::<i64, _>("attempts")).unwrap_or(0),
        not_before: ts("not_before"),
        lease_holder: r.get("lease_holder"),
        lease_expires: ts("lease_expires"),
        lease_epoch: r.get("lease_epoch"),
    })
}

/// The task columns as one JSON array per row: reading many rows this way (SQLite builds one
/// JSON text per chunk of rows) costs a fraction of decoding every cell through the driver.
const TASK_JSON: &str = "json_array(seq, key, parent_seq, title, description, role, status, priority, effort, \
     json(acceptance), json(tags), json(footprint), result, created_at, updated_at, started_at, finished_at, \
     archived, executor, timeout_ms, max_attempts, attempts, not_before, lease_holder, lease_expires, lease_epoch)";

/// An unfinished blocker of task `t` or of one of its ancestors (a container blocker counts as
/// unfinished, whatever its row says). `INDEXED BY edges_to`: left to itself, the query
/// planner builds a temporary index over every edge for each candidate task, which made a
/// 20,000-wide fan-out take seconds to find its one ready task.
const READY_BLOCKERS: &str = "WITH RECURSIVE up(s) AS (SELECT t.seq UNION ALL \
     SELECT p.parent_seq FROM tasks p JOIN up ON p.seq = up.s WHERE p.parent_seq IS NOT NULL) \
     SELECT 1 FROM up JOIN edges e INDEXED BY edges_to ON e.to_seq = up.s AND e.kind = 'blocks' \
     JOIN tasks b ON b.seq = e.from_seq \
     WHERE b.status NOT IN ('completed', 'skipped') OR EXISTS (SELECT 1 FROM tasks bc WHERE bc.parent_seq = b.seq)";

/// A worker's registration as logged.
pub(crate) fn worker_json(w: &WorkerRecord) -> Value {
    json!({"host": w.host, "pid": w.pid, "roles": w.roles, "executors": w.executors,
           "labels": w.labels, "slots": w.slots, "ttl_ms": w.ttl_ms})
}

/// Rows per chunk when reading many tasks.
const TASK_CHUNK: u32 = 20_000;

/// One task row in [`TASK_JSON`]'s order.
#[derive(serde::Deserialize)]
struct TaskRow(
    i64,
    Option<String>,
    Option<i64>,
    String,
    String,
    Option<String>,
    String,
    i64,
    i64,
    Vec<String>,
    Vec<String>,
    Vec<String>,
    Option<String>,
    i64,
    i64,
    Option<i64>,
    Option<i64>,
    i64,
    Option<String>,
    Option<i64>,
    Option<i64>,
    i64,
    Option<i64>,
    Option<String>,
    Option<i64>,
    i64,
);

impl TaskRow {
    fn into_task(self) -> Result<Task> {
        let ts = |v: Option<i64>| v.map(Timestamp);
        Ok(Task {
            id: tid(self.0),
            key: self.1,
            parent: self.2.map(tid),
            title: self.3,
            description: self.4,
            role: self.5,
            status: status_of(&self.6)?,
            priority: Priority::from_rank(self.7),
            effort: u32::try_from(self.8).unwrap_or(0),
            acceptance: self.9,
            tags: self.10,
            footprint: self.11,
            result: self.12,
            created_at: Timestamp(self.13),
            updated_at: Timestamp(self.14),
            started_at: ts(self.15),
            finished_at: ts(self.16),
            archived: self.17 != 0,
            exec: ExecSettings {
                executor: self.18,
                timeout_ms: self.19,
                max_attempts: self.20.map(|n| u32::try_from(n).unwrap_or(1)),
            },
            attempts: u32::try_from(self.21).unwrap_or(0),
            not_before: ts(self.22),
            lease_holder: self.23,
            lease_expires: ts(self.24),
            lease_epoch: self.25,
        })
    }
}

/// Parses one chunk built with [`TASK_JSON`].
fn parse_task_chunk(text: &str) -> Result<Vec<Task>> {
    let rows: Vec<TaskRow> = serde_json::from_str(text)
        .map_err(|e| Error::Database(format!("corrupt task rows: {e}")))?;
    rows.into_iter().map(TaskRow::into_task).collect()
}

pub(crate) fn rid(kind: RecordKind, n: i64) -> RecordId {
    RecordId::new(kind, n)
}

pub(crate) fn tjson(t: &Task) -> Value {
    serde_json::to_value(t).unwrap_or(Value::Null)
}

// ------------------------------------------------------------------------------------------
// Statements shared by several calls (all take a connection, so they work inside a transaction)

async fn event(
    c: &mut SqliteConnection,
    actor: &Actor,
    action: &str,
    entity: &str,
    before: Option<Value>,
    after: Option<Value>,
) -> Result<i64> {
    let r = sqlx::query(
        "INSERT INTO events(at, actor, session_id, action, entity, task_seq, before, after) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(actor.now.0)
    .bind(&actor.name)
    .bind(actor.session.map(|s| s.num))
    .bind(action)
    .bind(entity)
    .bind(crate::event_task_seq(action, entity))
    .bind(before.map(|v| v.to_string()))
    .bind(after.map(|v| v.to_string()))
    .execute(&mut *c)
    .await
    .map_err(db)?;
    Ok(r.last_insert_rowid())
}

async fn get_task(c: &mut SqliteConnection, id: TaskId) -> Result<Task> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {TASK_COLS} FROM tasks WHERE seq = ?"
    )))
    .bind(seq(id))
    .fetch_optional(&mut *c)
    .await
    .map_err(db)?;
    match row {
        Some(r) => row_task(&r),
        None => Err(Error::NotFound {
            what: "task",
            query: id.to_string(),
        }),
    }
}

async fn alloc_seqs(c: &mut SqliteConnection, n: usize) -> Result<i64> {
    let next: String = sqlx::query_scalar("SELECT value FROM meta WHERE key = 'next_task_seq'")
        .fetch_one(&mut *c)
        .await
        .map_err(db)?;
    let base: i64 = next
        .parse()
        .map_err(|_| Error::Database("corrupt task counter".into()))?;
    let end = base + n as i64;
    if end - 1 > i64::from(MAX_TASK_SEQ) {
        return Err(Error::Invalid(
            "the project has reached the maximum number of tasks".into(),
        ));
    }
    sqlx::query("UPDATE meta SET value = ? WHERE key = 'next_task_seq'")
        .bind(end.to_string())
        .execute(&mut *c)
        .await
        .map_err(db)?;
    Ok(base)
}

async fn insert_task(
    c: &mut SqliteConnection,
    s: i64,
    t: &NewTask,
    parent: Option<i64>,
    now: Timestamp,
) -> Result<()> {
    validate_fields(&t.title, t.key.as_deref()).map_err(Error::Invalid)?;
    let id = tid(s);
    let r = sqlx::query(
        "INSERT INTO tasks(seq, id, key, parent_seq, title, description, role, status, priority, effort, \
         acceptance, tags, footprint, created_at, updated_at, executor, timeout_ms, max_attempts) \
         VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(s)
    .bind(id.short())
    .bind(&t.key)
    .bind(parent)
    .bind(t.title.trim())
    .bind(&t.description)
    .bind(&t.role)
    .bind(i64::from(t.priority.rank()))
    .bind(i64::from(t.effort))
    .bind(to_json_list(&t.acceptance))
    .bind(to_json_list(&t.tags))
    .bind(to_json_list(&t.footprint))
    .bind(now.0)
    .bind(now.0)
    .bind(&t.exec.executor)
    .bind(t.exec.timeout_ms)
    .bind(t.exec.max_attempts.map(i64::from))
    .execute(&mut *c)
    .await;
    match r {
        Ok(_) => Ok(()),
        Err(sqlx::Error::Database(d))
            if d.message().contains("UNIQUE") && d.message().contains("key") =>
        {
            Err(Error::Invalid(format!(
                "task key `{}` is already used",
                t.key.as_deref().unwrap_or("")
            )))
        }
        Err(e) => Err(db(e)),
    }
}

async fn require_live(c: &mut SqliteConnection, id: TaskId) -> Result<()> {
    let live: Option<i64> = sqlx::query_scalar("SELECT archived FROM tasks WHERE seq = ?")
        .bind(seq(id))
        .fetch_optional(&mut *c)
        .await
        .map_err(db)?;
    match live {
        Some(0) => Ok(()),
        Some(_) => Err(Error::Invalid(format!("task {id} is archived"))),
        None => Err(Error::NotFound {
            what: "task",
            query: id.to_string(),
        }),
    }
}

/// Live tasks as one JSON text: far cheaper than decoding every cell through the driver. The
/// rows come in order from an ordered subquery (a rowid scan needs no sort); an ORDER BY inside
/// the aggregate would sort them again through a temporary b-tree (twice the time).
const SNAPSHOT_TASKS: &str = "SELECT '[' || coalesce(group_concat(j, ','), '') || ']' FROM \
     (SELECT json_array(seq, key, parent_seq, title, status, role, effort, priority, \
     json(footprint)) AS j FROM tasks WHERE archived = 0 ORDER BY seq)";

/// Edges whose both ends are live tasks as one JSON text, ordered in the subquery, which walks
/// `edges_to` (to, from, kind) without sorting.
const LIVE_EDGES: &str = "SELECT '[' || coalesce(group_concat(j, ','), '') || ']' FROM \
     (SELECT json_array(e.from_seq, e.to_seq, e.kind) AS j FROM edges e \
     JOIN tasks f ON f.seq = e.from_seq AND f.archived = 0 \
     JOIN tasks t ON t.seq = e.to_seq AND t.archived = 0 \
     ORDER BY e.to_seq, e.from_seq, e.kind)";

/// The planner's snapshot, read by one statement (so tasks and edges are from the same moment
/// without a transaction around them).
async fn snapshot(c: &mut SqliteConnection) -> Result<GraphSnapshot> {
    let (tasks, edges): (String, String) = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT ({SNAPSHOT_TASKS}), ({LIVE_EDGES})"
    )))
    .fetch_one(&mut *c)
    .await
    .map_err(db)?;
    #[derive(serde::Deserialize)]
    struct Row<'a>(
        i64,
        Option<String>,
        Option<i64>,
        String,
        &'a str,
        Option<String>,
        i64,
        i64,
        Vec<String>,
    );
    let rows: Vec<Row<'_>> = serde_json::from_str(&tasks)
        .map_err(|e| Error::Database(format!("corrupt task rows: {e}")))?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(GraphTask {
            id: tid(r.0),
            key: r.1,
            parent: r.2.map(tid),
            title: r.3,
            status: status_of(r.4)?,
            role: r.5,
            effort: u32::try_from(r.6).unwrap_or(0),
            priority: Priority::from_rank(r.7),
            footprint: r.8,
        });
    }
    Ok(GraphSnapshot {
        tasks: out,
        edges: parse_edges(&edges)?,
    })
}

/// Edges whose both ends are live tasks.
async fn live_edges(c: &mut SqliteConnection) -> Result<Vec<Edge>> {
    let text: String = sqlx::query_scalar(LIVE_EDGES)
        .fetch_one(&mut *c)
        .await
        .map_err(db)?;
    parse_edges(&text)
}

fn parse_edges(text: &str) -> Result<Vec<Edge>> {
    let rows: Vec<(i64, i64, &str)> = serde_json::from_str(text)
        .map_err(|e| Error::Database(format!("corrupt edge rows: {e}")))?;
    rows.into_iter()
        .map(|(from, to, kind)| {
            let kind = EdgeKind::from_str(kind)
                .map_err(|e| Error::Database(format!("corrupt edge row: {e}")))?;
            Ok(Edge {
                from: tid(from),
                to: tid(to),
                kind,
            })
        })
        .collect()
}

async fn check_acyclic(c: &mut SqliteConnection) -> Result<()> {
    let snap = snapshot(c).await?;
    if let Some(l) = graph::parent_loops(&snap).into_iter().next() {
        let names: Vec<String> = l.iter().map(ToString::to_string).collect();
        return Err(Error::Invalid(format!(
            "parent loop: {}",
            names.join(" → ")
        )));
    }
    match graph::find_cycle(&snap) {
        Some(cy) => Err(Error::Cycle(cy)),
        None => Ok(()),
    }
}

async fn children(c: &mut SqliteConnection, id: TaskId) -> Result<Vec<i64>> {
    sqlx::query_scalar("SELECT seq FROM tasks WHERE parent_seq = ? AND archived = 0 ORDER BY seq")
        .bind(seq(id))
        .fetch_all(&mut *c)
        .await
        .map_err(db)
}

/// Writes a status change of one leaf with its event. `note` becomes the result text.
async fn write_status(
    c: &mut SqliteConnection,
    before: &Task,
    to: Status,
    note: Option<&str>,
    actor: &Actor,
) -> Result<Task> {
    before
        .status
        .check_transition(to)
        .map_err(|source| Error::Transition {
            id: before.id,
            source,
        })?;
    let now = actor.now.0;
    let started = if to == Status::Running {
        Some(now)
    } else {
        before.started_at.map(|t| t.0)
    };
    let finished = match to {
        Status::Completed | Status::Failed | Status::Cancelled | Status::Skipped => Some(now),
        _ => None,
    };
    let result = match (note, to) {
        (Some(n), _) => Some(n.to_owned()),
        (None, Status::Pending | Status::Running) => None,
        (None, _) => before.result.clone(),
    };
    let holder = (to == Status::Running).then(|| actor.name.clone());
    sqlx::query(
        "UPDATE tasks SET status = ?, result = ?, started_at = ?, finished_at = ?, updated_at = ?, \
         lease_holder = ?, lease_expires = NULL, not_before = NULL, lease_epoch = lease_epoch + 1 \
         WHERE seq = ?",
    )
    .bind(to.as_str())
    .bind(&result)
    .bind(started)
    .bind(finished)
    .bind(now)
    .bind(holder)
    .bind(seq(before.id))
    .execute(&mut *c)
    .await
    .map_err(db)?;
    let after = get_task(c, before.id).await?;
    event(
        c,
        actor,
        "task.status",
        &before.id.to_string(),
        Some(json!({"status": before.status, "result": before.result})),
        Some(json!({"status": after.status, "result": after.result})),
    )
    .await?;
    Ok(after)
}

async fn objective_in(c: &mut SqliteConnection, id: i64) -> Result<Objective> {
    let r = sqlx::query(
        "SELECT id, title, status, created_at, updated_at FROM objectives WHERE id = ?",
    )
    .bind(id)
    .fetch_optional(&mut *c)
    .await
    .map_err(db)?
    .ok_or_else(|| Error::NotFound {
        what: "objective",
        query: rid(RecordKind::Objective, id).to_string(),
    })?;
    let tasks: Vec<i64> = sqlx::query_scalar(
        "SELECT task_seq FROM objective_tasks WHERE objective_id = ? ORDER BY task_seq",
    )
    .bind(id)
    .fetch_all(&mut *c)
    .await
    .map_err(db)?;
    row_objective(&r, tasks)
}

fn row_objective(r: &SqliteRow, tasks: Vec<i64>) -> Result<Objective> {
    Ok(Objective {
        id: rid(RecordKind::Objective, r.get("id")),
        title: r.get("title"),
        status: ObjectiveStatus::from_str(r.get("status"))
            .map_err(|e| Error::Database(e.to_string()))?,
        tasks: tasks.into_iter().map(tid).collect(),
        created_at: Timestamp(r.get("created_at")),
        updated_at: Timestamp(r.get("updated_at")),
    })
}

fn row_decision(r: &SqliteRow) -> Decision {
    Decision {
        id: rid(RecordKind::Decision, r.get("id")),
        text: r.get("text"),
        why: r.get("why"),
        task: r.get::<Option<i64>, _>("task_seq").map(tid),
        supersedes: r
            .get::<Option<i64>, _>("supersedes")
            .map(|n| rid(RecordKind::Decision, n)),
        superseded_by: r
            .get::<Option<i64>, _>("superseded_by")
            .map(|n| rid(RecordKind::Decision, n)),
        created_at: Timestamp(r.get("created_at")),
    }
}

fn row_insight(r: &SqliteRow) -> Insight {
    Insight {
        id: rid(RecordKind::Insight, r.get("id")),
        text: r.get("text"),
        task: r.get::<Option<i64>, _>("task_seq").map(tid),
        created_at: Timestamp(r.get("created_at")),
    }
}

fn row_session(r: &SqliteRow) -> Session {
    Session {
        id: rid(RecordKind::Session, r.get("id")),
        label: r.get("label"),
        actor: r.get("actor"),
        started_at: Timestamp(r.get("started_at")),
        ended_at: r.get::<Option<i64>, _>("ended_at").map(Timestamp),
    }
}

async fn insert_objective(
    c: &mut SqliteConnection,
    title: &str,
    tasks: &[i64],
    actor: &Actor,
) -> Result<i64> {
    if title.trim().is_empty() {
        return Err(Error::Invalid(
            "an objective needs a non-empty title".into(),
        ));
    }
    let id = sqlx::query("INSERT INTO objectives(title, status, session_id, created_at, updated_at) VALUES (?, 'active', ?, ?, ?)")
        .bind(title.trim())
        .bind(actor.session.map(|s| s.num))
        .bind(actor.now.0)
        .bind(actor.now.0)
        .execute(&mut *c)
        .await
        .map_err(db)?
        .last_insert_rowid();
    for t in tasks {
        sqlx::query("INSERT OR IGNORE INTO objective_tasks(objective_id, task_seq) VALUES (?, ?)")
            .bind(id)
            .bind(t)
            .execute(&mut *c)
            .await
            .map_err(db)?;
    }
    let o = rid(RecordKind::Objective, id);
    let ids: Vec<String> = tasks.iter().map(|&s| tid(s).to_string()).collect();
    event(
        c,
        actor,
        "objective.added",
        &o.to_string(),
        None,
        Some(json!({"title": title.trim(), "tasks": ids})),
    )
    .await?;
    Ok(id)
}

async fn insert_insight(
    c: &mut SqliteConnection,
    text: &str,
    task: Option<i64>,
    actor: &Actor,
) -> Result<i64> {
    if text.trim().is_empty() {
        return Err(Error::Invalid("an insight needs a non-empty text".into()));
    }
    let id = sqlx::query(
        "INSERT INTO insights(text, task_seq, session_id, created_at) VALUES (?, ?, ?, ?)",
    )
    .bind(text.trim())
    .bind(task)
    .bind(actor.session.map(|s| s.num))
    .bind(actor.now.0)
    .execute(&mut *c)
    .await
    .map_err(db)?
    .last_insert_rowid();
    let r = rid(RecordKind::Insight, id);
    event(
        c,
        actor,
        "insight.added",
        &r.to_string(),
        None,
        Some(json!({"text": text.trim(), "task": task.map(|s| tid(s).to_string())})),
    )
    .await?;
    Ok(id)
}

async fn insert_decision(
    c: &mut SqliteConnection,
    text: &str,
    why: &str,
    task: Option<i64>,
    supersedes: Option<i64>,
    actor: &Actor,
) -> Result<i64> {
    if text.trim().is_empty() {
        return Err(Error::Invalid("a decision needs a non-empty text".into()));
    }
    if let Some(old) = supersedes {
        let row: Option<Option<i64>> =
            sqlx::query_scalar("SELECT superseded_by FROM decisions WHERE id = ?")
                .bind(old)
                .fetch_optional(&mut *c)
                .await
                .map_err(db)?;
        match row {
            None => {
                return Err(Error::NotFound {
                    what: "decision",
                    query: rid(RecordKind::Decision, old).to_string(),
                });
            }
            Some(Some(by)) => {
                return Err(Error::Invalid(format!(
                    "decision {} is already superseded by {}",
                    rid(RecordKind::Decision, old),
                    rid(RecordKind::Decision, by)
                )));
            }
            Some(None) => {}
        }
    }
    let id = sqlx::query("INSERT INTO decisions(text, why, task_seq, supersedes, session_id, created_at) VALUES (?, ?, ?, ?, ?, ?)")
        .bind(text.trim())
        .bind(why.trim())
        .bind(task)
        .bind(supersedes)
        .bind(actor.session.map(|s| s.num))
        .bind(actor.now.0)
        .execute(&mut *c)
        .await
        .map_err(db)?
        .last_insert_rowid();
    if let Some(old) = supersedes {
        sqlx::query("UPDATE decisions SET superseded_by = ? WHERE id = ?")
            .bind(id)
            .bind(old)
            .execute(&mut *c)
            .await
            .map_err(db)?;
    }
    let r = rid(RecordKind::Decision, id);
    event(
        c,
        actor,
        "decision.added",
        &r.to_string(),
        None,
        Some(json!({"text": text.trim(), "why": why.trim(), "supersedes": supersedes.map(|s| rid(RecordKind::Decision, s).to_string())})),
    )
    .await?;
    Ok(id)
}

// ------------------------------------------------------------------------------------------

#[async_trait]
impl Store for SqliteStore {
    fn info(&self) -> SchemaInfo {
        SchemaInfo {
            backend: "sqlite",
            version: self.version,
            location: self.path.display().to_string(),
            backup: self.backup.clone(),
        }
    }

    async fn apply_plan(&self, plan: &ValidatedPlan, actor: &Actor) -> Result<AppliedPlan> {
        let mut tx = self.write().await?;
        let c: &mut SqliteConnection = &mut tx;
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
        // Tasks, many rows per statement.
        let now = actor.now.0;
        for (c0, chunk) in plan.tasks.chunks(ROWS_PER_INSERT).enumerate() {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "INSERT INTO tasks(seq, id, key, parent_seq, title, description, role, status, priority, effort, \
                 acceptance, tags, footprint, created_at, updated_at, executor, timeout_ms, max_attempts) ",
            );
            qb.push_values(chunk.iter().enumerate(), |mut b, (j, t)| {
                let s = base + (c0 * ROWS_PER_INSERT + j) as i64;
                b.push_bind(s)
                    .push_bind(tid(s).short())
                    .push_bind(t.new.key.clone())
                    .push_bind(t.parent.map(to_seq))
                    .push_bind(t.new.title.trim().to_owned())
                    .push_bind(t.new.description.clone())
                    .push_bind(t.new.role.clone())
                    .push_bind("pending")
                    .push_bind(i64::from(t.new.priority.rank()))
                    .push_bind(i64::from(t.new.effort))
                    .push_bind(to_json_list(&t.new.acceptance))
                    .push_bind(to_json_list(&t.new.tags))
                    .push_bind(to_json_list(&t.new.footprint))
                    .push_bind(now)
                    .push_bind(now)
                    .push_bind(t.new.exec.executor.clone())
                    .push_bind(t.new.exec.timeout_ms)
                    .push_bind(t.new.exec.max_attempts.map(i64::from));
            });
            qb.build().execute(&mut *c).await.map_err(|e| match e {
                sqlx::Error::Database(d) if d.message().contains("UNIQUE") => {
                    Error::Invalid("a task key of the plan was taken meanwhile by another writer; apply the plan again".into())
                }
                e => db(e),
            })?;
        }
        for (i, t) in plan.tasks.iter().enumerate() {
            out.tasks.push((t.new.key.clone(), tid(base + i as i64)));
        }
        // Edges: every plan edge ends at a new task, so none can exist yet.
        for chunk in plan.edges.chunks(ROWS_PER_INSERT * 4) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "INSERT OR IGNORE INTO edges(from_seq, to_seq, kind, created_at) ",
            );
            qb.push_values(chunk, |mut b, &(f, t, kind)| {
                b.push_bind(to_seq(f))
                    .push_bind(to_seq(t))
                    .push_bind(kind.as_str())
                    .push_bind(now);
            });
            out.edges += qb
                .build()
                .execute(&mut *c)
                .await
                .map_err(db)?
                .rows_affected() as usize;
        }
        // One creation event per task, carrying its edges.
        let mut deps: HashMap<i64, Vec<(String, &'static str)>> = HashMap::new();
        for &(f, t, kind) in &plan.edges {
            deps.entry(to_seq(t))
                .or_default()
                .push((tid(to_seq(f)).to_string(), kind.as_str()));
        }
        let events: Vec<(String, String)> = plan
            .tasks
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let s = base + i as i64;
                let mut after = json!({"title": t.new.title.trim(), "role": t.new.role, "parent": t.parent.map(|p| tid(to_seq(p)).to_string())});
                if let Some(k) = &t.new.key {
                    after["key"] = json!(k);
                }
                for (from, kind) in deps.remove(&s).unwrap_or_default() {
                    let list = after.as_object_mut().map(|o| o.entry(kind).or_insert_with(|| json!([])));
                    if let Some(Value::Array(a)) = list {
                        a.push(json!(from));
                    }
                }
                (tid(s).to_string(), after.to_string())
            })
            .collect();
        for chunk in events.chunks(ROWS_PER_INSERT * 2) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "INSERT INTO events(at, actor, session_id, action, entity, task_seq, before, after) ",
            );
            qb.push_values(chunk, |mut b, (entity, after)| {
                b.push_bind(now)
                    .push_bind(actor.name.clone())
                    .push_bind(actor.session.map(|s| s.num))
                    .push_bind("task.created")
                    .push_bind(entity.clone())
                    .push_bind(crate::event_task_seq("task.created", entity))
                    .push_bind(Option::<String>::None)
                    .push_bind(after.clone());
            });
            qb.build().execute(&mut *c).await.map_err(db)?;
        }
        // A cycle may form together with what is already stored: check the whole graph.
        if plan.edges.iter().any(|e| e.2.orders_work())
            || plan.tasks.iter().any(|t| t.parent.is_some())
        {
            check_acyclic(c).await?;
        }
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
        let before = get_task(c, id).await?;
        let mut t = before.clone();
        if let Some(v) = &patch.title {
            t.title = v.trim().to_owned();
        }
        if let Some(v) = &patch.description {
            t.description.clone_from(v);
        }
        if let Some(v) = &patch.role {
            t.role.clone_from(v);
        }
        if let Some(v) = patch.priority {
            t.priority = v;
        }
        if let Some(v) = patch.effort {
            t.effort = v;
        }
        if let Some(v) = &patch.acceptance {
            t.acceptance.clone_from(v);
        }
        if let Some(v) = &patch.tags {
            t.tags.clone_from(v);
        }
        if let Some(v) = &patch.footprint {
            t.footprint.clone_from(v);
        }
        if let Some(v) = &patch.exec {
            t.exec.clone_from(v);
        }
        if let Some(p) = patch.parent {
            if p == Some(id) {
                return Err(Error::Invalid(format!(
                    "task {id} cannot be its own parent"
                )));
            }
            if let Some(p) = p {
                require_live(c, p).await?;
            }
            t.parent = p;
        }
        validate_fields(&t.title, t.key.as_deref()).map_err(Error::Invalid)?;
        sqlx::query(
            "UPDATE tasks SET title = ?, description = ?, role = ?, priority = ?, effort = ?, acceptance = ?, \
             tags = ?, footprint = ?, parent_seq = ?, updated_at = ?, executor = ?, timeout_ms = ?, max_attempts = ? WHERE seq = ?",
        )
        .bind(&t.title)
        .bind(&t.description)
        .bind(&t.role)
        .bind(i64::from(t.priority.rank()))
        .bind(i64::from(t.effort))
        .bind(to_json_list(&t.acceptance))
        .bind(to_json_list(&t.tags))
        .bind(to_json_list(&t.footprint))
        .bind(t.parent.map(seq))
        .bind(actor.now.0)
        .bind(&t.exec.executor)
        .bind(t.exec.timeout_ms)
        .bind(t.exec.max_attempts.map(i64::from))
        .bind(seq(id))
        .execute(&mut *c)
        .await
        .map_err(db)?;
        if patch.parent.is_some() {
            check_acyclic(c).await?;
        }
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
        let c: &mut SqliteConnection = &mut tx;
        let task = get_task(c, id).await?;
        if task.archived {
            return Err(Error::Invalid(format!("task {id} is archived")));
        }
        let kids = children(c, id).await?;
        let mut changed = Vec::new();
        if kids.is_empty() {
            changed.push(write_status(c, &task, to, note, actor).await?);
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
            match rows.len() {
                0 => {}
                1 => return Ok(tid(rows[0].get("seq"))),
                _ => {
                    let mut candidates: Vec<String> = rows
                        .iter()
                        .take(5)
                        .map(|r| format!("{} ({})", tid(r.get("seq")), r.get::<String, _>("title")))
                        .collect();
                    if rows.len() > 5 {
                        candidates.push("…".into());
                    }
                    return Err(Error::Ambiguous {
                        prefix: q.to_owned(),
                        candidates,
                    });
                }
            }
        }
        Err(Error::NotFound {
            what: "task",
            query: q.to_owned(),
        })
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
        for r in refs {
            if out.contains_key(r) {
                continue;
            }
            match self.resolve_task(r).await {
                Ok(id) => {
                    out.insert(r.clone(), id);
                }
                Err(Error::NotFound { .. } | Error::Ambiguous { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    async fn keys_in_use(&self, keys: &[String]) -> Result<HashSet<String>> {
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
        let mut out: Vec<Task> = Vec::new();
        let mut after = 0i64;
        let mut left = f.limit.unwrap_or(u32::MAX);
        // One read transaction, so every chunk sees the same moment.
        let mut tx = self.pool.begin().await.map_err(db)?;
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
            out.extend(parse_task_chunk(row.get(0))?);
            after = row.try_get::<i64, _>(1).map_err(db)?;
            left = left.saturating_sub(u32::try_from(n).unwrap_or(u32::MAX));
            if n < i64::from(chunk) {
                break;
            }
        }
        tx.commit().await.map_err(db)?;
        Ok(out)
    }

    async fn task_count(&self) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM tasks WHERE archived = 0")
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
        let mut tx = self.write().await?;
        let c: &mut SqliteConnection = &mut tx;
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
        if edge.kind.orders_work() {
            check_acyclic(c).await?;
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
        tx.commit().await.map_err(db)?;
        Ok(true)
    }

    async fn remove_edge(&self, edge: Edge, actor: &Actor) -> Result<bool> {
        let mut tx = self.write().await?;
        let c: &mut SqliteConnection = &mut tx;
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
        tx.commit().await.map_err(db)?;
        Ok(true)
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
        let mut c = self.conn().await?;
        live_edges(&mut c).await
    }

    async fn graph(&self) -> Result<GraphSnapshot> {
        let mut c = self.conn().await?;
        snapshot(&mut c).await
    }

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
        let mut by: HashMap<i64, Vec<i64>> = HashMap::new();
        for l in &links {
            by.entry(l.get(0)).or_default().push(l.get(1));
        }
        rows.iter()
            .map(|r| row_objective(r, by.remove(&r.get::<i64, _>("id")).unwrap_or_default()))
            .collect()
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
        Ok(row_decision(&row))
    }

    async fn decisions(&self) -> Result<Vec<Decision>> {
        let rows = sqlx::query("SELECT * FROM decisions ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        Ok(rows.iter().map(row_decision).collect())
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
        let parse = |s: Option<String>| s.and_then(|s| serde_json::from_str(&s).ok());
        Ok(rows
            .iter()
            .map(|r| Event {
                seq: r.get("seq"),
                at: Timestamp(r.get("at")),
                actor: r.get("actor"),
                session: r
                    .get::<Option<i64>, _>("session_id")
                    .map(|n| rid(RecordKind::Session, n)),
                action: r.get("action"),
                entity: r.get("entity"),
                before: parse(r.get("before")),
                after: parse(r.get("after")),
            })
            .collect())
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
        let mut m = Metrics::default();
        let mut started: HashMap<String, i64> = HashMap::new();
        let mut intervals = Vec::new();
        for r in &rows {
            let entity: String = r.get(0);
            let at: i64 = r.get(1);
            let st: Option<String> = r.get(2);
            match st.as_deref() {
                Some("running") => {
                    started.insert(entity, at);
                }
                Some(s @ ("completed" | "failed")) => {
                    if s == "completed" {
                        m.tasks_completed += 1;
                    } else {
                        m.tasks_failed += 1;
                    }
                    if let Some(st) = started.remove(&entity) {
                        intervals.push(RunInterval {
                            start: Timestamp(st),
                            end: Timestamp(at),
                        });
                    }
                }
                _ => {
                    started.remove(&entity);
                }
            }
        }
        let finished = m.tasks_completed + m.tasks_failed;
        m.success_rate = (finished > 0).then(|| m.tasks_completed as f64 / finished as f64);
        m.parallel_execution_rate = parallel_rate(&intervals);
        let count = |sql: &'static str| async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(&self.pool)
                .await
                .map(|n| n as u64)
                .map_err(db)
        };
        m.sessions = count("SELECT count(*) FROM events WHERE action = 'session.started'").await?;
        m.decisions = count("SELECT count(*) FROM events WHERE action = 'decision.added'").await?;
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
        let (action, entity, after) = crate::meta_set_event(key, value);
        event(
            c,
            &Actor::new(crate::META_ACTOR, Timestamp(at)),
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

    async fn commit_batch(&self, batch: &Batch, actor: &Actor) -> Result<BatchResult> {
        // Set-based: a fixed handful of statements per batch, whatever its size, so a batch of
        // a hundred transitions costs little more than one.
        let mut tx = self.write().await?;
        let c: &mut SqliteConnection = &mut tx;
        let now = actor.now.0;
        let mut out = BatchResult::default();
        let mut events: Vec<(String, Value, Value)> = Vec::new();

        if !batch.finishes.is_empty() {
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
                           "summary": f.summary, "tp": f.tokens.map(|t| t.0), "tc": f.tokens.map(|t| t.1)})
                })
                .collect();
            sqlx::query(
                "UPDATE attempts SET ended_at = ?1, outcome = v.outcome, exit_code = v.exit_code, error = v.error, \
                 summary = v.summary, tokens_prompt = v.tp, tokens_completion = v.tc \
                 FROM (SELECT value ->> '$.id' AS id, value ->> '$.outcome' AS outcome, value ->> '$.exit_code' AS exit_code, \
                       value ->> '$.error' AS error, value ->> '$.summary' AS summary, value ->> '$.tp' AS tp, value ->> '$.tc' AS tc \
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
                    .bind(f.attempt_id)
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
                .bind(serde_json::to_string(&after_seqs).map_err(|e| Error::Invalid(e.to_string()))?)
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
                .bind(serde_json::to_string(&wanted).map_err(|e| Error::Invalid(e.to_string()))?)
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
                    epoch,
                    attempt_id,
                    number: u32::try_from(number).unwrap_or(0),
                });
            }
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
                    .push_bind(crate::event_task_seq("task.status", entity))
                    .push_bind(before.to_string())
                    .push_bind(after.to_string());
            });
            qb.build().execute(&mut *c).await.map_err(db)?;
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

    async fn renew_leases(&self, holder: &str, until: Timestamp) -> Result<Vec<(TaskId, i64)>> {
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
        Ok(rows.iter().map(|r| (tid(r.get(0)), r.get(1))).collect())
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
            let reason = if expired {
                format!("lease of {} expired", holder.as_deref().unwrap_or("?"))
            } else {
                format!("holder {} is gone", holder.as_deref().unwrap_or("?"))
            };
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
            event(
                c,
                actor,
                "task.status",
                &tid(s).to_string(),
                Some(json!({"status": "running", "holder": holder})),
                Some(json!({"status": "pending", "result": format!("requeued: {reason}")})),
            )
            .await?;
            out.push(tid(s));
        }
        tx.commit().await.map_err(db)?;
        Ok(out)
    }

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
        .bind(w.ttl_ms)
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
                let heartbeat_at = Timestamp(r.get("heartbeat_at"));
                let ttl_ms: i64 = r.get("ttl_ms");
                let holding: Vec<i64> = serde_json::from_str(r.get("holding")).unwrap_or_default();
                WorkerRecord {
                    name: r.get("name"),
                    host: r.get("host"),
                    pid: r.get("pid"),
                    roles: json_list(r.get("roles")),
                    executors: json_list(r.get("executors")),
                    labels: json_list(r.get("labels")),
                    slots: u32::try_from(r.get::<i64, _>("slots")).unwrap_or(0),
                    started_at: Timestamp(r.get("started_at")),
                    heartbeat_at,
                    ttl_ms,
                    alive: heartbeat_at.0 + ttl_ms >= now.0,
                    holding: holding.into_iter().map(tid).collect(),
                }
            })
            .collect())
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
        Ok(rows
            .iter()
            .map(|r| AttemptRecord {
                id: r.get("id"),
                task: tid(r.get("task_seq")),
                number: u32::try_from(r.get::<i64, _>("number")).unwrap_or(0),
                epoch: r.get("epoch"),
                worker: r.get("worker"),
                executor: r.get("executor"),
                started_at: Timestamp(r.get("started_at")),
                ended_at: r.get::<Option<i64>, _>("ended_at").map(Timestamp),
                outcome: r.get("outcome"),
                exit_code: r
                    .get::<Option<i64>, _>("exit_code")
                    .and_then(|c| i32::try_from(c).ok()),
                error: r.get("error"),
                summary: r.get("summary"),
                tokens_prompt: r.get("tokens_prompt"),
                tokens_completion: r.get("tokens_completion"),
            })
            .collect())
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Events written before they carried their task's number get it when the schema is
    /// brought up to date, and a task's history is complete afterwards.
    #[tokio::test]
    async fn old_events_get_their_task_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v4.db");
        let (a, b) = (tid(1).to_string(), tid(2).to_string());
        {
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(
                    SqliteConnectOptions::new()
                        .filename(&path)
                        .create_if_missing(true),
                )
                .await
                .unwrap();
            MIGRATOR.run_to(4, &pool).await.unwrap();
            for (n, id) in [(1, &a), (2, &b)] {
                sqlx::query("INSERT INTO tasks(seq, id, title, status, created_at, updated_at) VALUES (?, ?, 't', 'pending', 0, 0)")
                    .bind(n)
                    .bind(id)
                    .execute(&pool)
                    .await
                    .unwrap();
            }
            // Two events about `a`, one about `b`, and a decision whose record id happens to
            // read like `b`'s id (record ids can have that shape).
            for (action, entity) in [
                ("task.created", &a),
                ("task.created", &b),
                ("task.status", &a),
                ("decision.added", &b),
            ] {
                sqlx::query("INSERT INTO events(at, actor, action, entity) VALUES (0, 'x', ?, ?)")
                    .bind(action)
                    .bind(entity)
                    .execute(&pool)
                    .await
                    .unwrap();
            }
            pool.close().await;
        }
        let s = SqliteStore::open(&path, false).await.unwrap();
        assert!(s.backup.is_some(), "the old file is kept before migrating");
        let of = |t| {
            let s = s.clone();
            async move {
                s.events(&EventQuery {
                    task: Some(t),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_iter()
                .map(|e| e.action)
                .collect::<Vec<_>>()
            }
        };
        assert_eq!(of(tid(1)).await, ["task.created", "task.status"]);
        assert_eq!(of(tid(2)).await, ["task.created"]);
        // New events are found the same way.
        s.record_event("flag.raised", &b, None, &Actor::new("y", Timestamp(1)))
            .await
            .unwrap();
        assert_eq!(of(tid(2)).await, ["task.created", "flag.raised"]);
    }
}
