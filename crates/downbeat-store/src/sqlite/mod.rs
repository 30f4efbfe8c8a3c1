//! The embedded SQLite backend: WAL journal, `synchronous=FULL`, a busy timeout, write
//! transactions that take the write lock up front (`BEGIN IMMEDIATE`, so a read-then-write
//! transaction never fails to upgrade), and migrations embedded in the binary with a backup of
//! the database file taken before any migration touches an existing database.

use std::path::{Path, PathBuf};

use downbeat_core::task::ExecSettings;
use sqlx::Sqlite;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};

use crate::shared::prelude::*;

mod context;
mod effects;
mod execution;
mod maintenance;
mod tasks;
mod workers;

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
            // The writer's page cache: the default 2 MiB is smaller than the indexes a large
            // project touches on every commit; pages are allocated only as they are used.
            .pragma("cache_size", "-65536")
            .pragma("temp_store", "memory")
            .foreign_keys(false);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(60))
            .connect_with(opts.clone().pragma("cache_size", READ_CACHE))
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

    /// A connection for reading a whole table: its page cache is cut to 4 MiB ([`SCAN_CACHE`])
    /// while it reads, since a scan's pages are not read again (at a million tasks, the pooled
    /// connections' caches filled by the runner's load were 220 MB of its peak memory). Hand
    /// it back with [`SqliteStore::scanned`].
    async fn scan_conn(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Sqlite>> {
        let mut c = self.conn().await?;
        set_cache(&mut c, SCAN_CACHE).await?;
        Ok(c)
    }

    /// Gives a [`SqliteStore::scan_conn`] connection its usual page cache back.
    async fn scanned(mut c: sqlx::pool::PoolConnection<sqlx::Sqlite>) -> Result<()> {
        set_cache(&mut c, READ_CACHE).await
    }
}

/// A reading connection's page cache (negative: in KiB). Reads that scan fill it, and at a
/// million tasks the four readers' caches were a quarter of a runner's peak memory; a page
/// not cached is read from the operating system's cache.
const READ_CACHE: &str = "-8192";
/// The page cache while a whole table is read.
const SCAN_CACHE: &str = "-4096";

/// Sets the page cache of connection `c` (a value as [`READ_CACHE`] gives it).
async fn set_cache(c: &mut SqliteConnection, kib: &str) -> Result<()> {
    sqlx::query(AssertSqlSafe(format!("PRAGMA cache_size = {kib}")))
        .execute(c)
        .await
        .map_err(db)?;
    Ok(())
}

// ------------------------------------------------------------------------------------------
// Row mapping

const TASK_COLS: &str = "seq, key, parent_seq, title, description, role, status, priority, effort, \
     acceptance, tags, footprint, result, created_at, updated_at, started_at, finished_at, archived, \
     executor, timeout_ms, max_attempts, attempts, not_before, lease_holder, lease_expires, lease_epoch";

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
                timeout: self.19.map(|m| downbeat_core::time::Millis(m).duration()),
                max_attempts: self.20.map(|n| u32::try_from(n).unwrap_or(1)),
            },
            attempts: u32::try_from(self.21).unwrap_or(0),
            not_before: ts(self.22),
            lease_holder: self.23,
            lease_expires: ts(self.24),
            lease_epoch: downbeat_core::ids::LeaseEpoch(self.25),
        })
    }
}

/// Parses one chunk built with [`TASK_JSON`].
fn parse_task_chunk(text: &str) -> Result<Vec<Task>> {
    let rows: Vec<TaskRow> = serde_json::from_str(text)
        .map_err(|e| Error::Database(format!("corrupt task rows: {e}")))?;
    rows.into_iter().map(TaskRow::into_task).collect()
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
    .bind(event_task_seq(action, entity))
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
    let q = sqlx::query(
        "INSERT INTO tasks(seq, id, key, parent_seq, title, description, role, status, priority, effort, \
         acceptance, tags, footprint, created_at, updated_at, executor, timeout_ms, max_attempts) \
         VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(s)
    .bind(id.short())
    .bind(&t.key)
    .bind(parent)
    .bind(t.title.trim());
    let q = bind_task_fields!(q, t).bind(now.0).bind(now.0);
    let r = bind_exec!(q, t.exec).execute(&mut *c).await;
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
    let w = status_write(before, to, note, actor)?;
    sqlx::query(
        "UPDATE tasks SET status = ?, result = ?, started_at = ?, finished_at = ?, updated_at = ?, \
         lease_holder = ?, lease_expires = NULL, not_before = NULL, lease_epoch = lease_epoch + 1 \
         WHERE seq = ?",
    )
    .bind(to.as_str())
    .bind(&w.result)
    .bind(w.started)
    .bind(w.finished)
    .bind(actor.now.0)
    .bind(w.holder)
    .bind(seq(before.id))
    .execute(&mut *c)
    .await
    .map_err(db)?;
    let after = get_task(c, before.id).await?;
    let (b, a) = status_event(before, &after);
    event(
        c,
        actor,
        "task.status",
        &before.id.to_string(),
        Some(b),
        Some(a),
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

#[cfg(test)]
mod tests {
    use super::*;

    async fn cache_size(c: &mut SqliteConnection) -> i64 {
        sqlx::query_scalar("PRAGMA cache_size")
            .fetch_one(c)
            .await
            .unwrap()
    }

    /// A whole-table read cuts its connection's page cache while it scans and gives it back
    /// after: every reading connection has the usual cache afterwards, the writer its own.
    #[tokio::test]
    async fn readers_keep_a_small_cache_and_a_scan_a_smaller_one_the_writer_a_large_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("d.db"), true)
            .await
            .unwrap();
        let mut c = store.scan_conn().await.unwrap();
        assert_eq!(cache_size(&mut c).await, -4096);
        SqliteStore::scanned(c).await.unwrap();
        store.tasks(&TaskFilter::default()).await.unwrap();
        store.edges().await.unwrap();
        let mut held = Vec::new();
        for _ in 0..4 {
            let mut c = store.conn().await.unwrap();
            assert_eq!(cache_size(&mut c).await, -8192);
            held.push(c);
        }
        // The writer keeps the larger cache its commits touch.
        let mut w = store.writer.acquire().await.unwrap();
        assert_eq!(cache_size(&mut w).await, -65536);
    }

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
