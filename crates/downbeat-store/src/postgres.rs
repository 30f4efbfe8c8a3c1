//! The PostgreSQL backend, for projects shared by several processes on several machines.
//!
//! # URLs
//!
//! `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?PARAMS]` (or `postgresql://`). The usual
//! libpq parameters work (`sslmode`, `sslrootcert`, `sslcert`, `sslkey`, `application_name`,
//! `options`, `host`, `port`, `user`, `password`, `dbname`), as do `PGPASSWORD` and
//! `~/.pgpass`. TLS is rustls: `sslmode=require` encrypts, `sslmode=verify-ca` and
//! `verify-full` also check the server certificate against `sslrootcert` (or the bundled
//! web PKI roots). Passwords never appear in [`SchemaInfo::location`] or in error messages.
//!
//! # Schema
//!
//! `schema=NAME` (a downbeat parameter, not sent to the server) puts the project in its own
//! PostgreSQL schema: every connection runs with `search_path=NAME`, `downbeat init` creates
//! the schema if it does not exist, and other commands refuse to open a schema without
//! downbeat tables. NAME is a lower-case SQL identifier (`[a-z_][a-z0-9_]*`, at most 63
//! characters). Without it the tables live in the first schema of the server's `search_path`
//! (usually `public`). Several projects can share one database, one schema each.
//!
//! # Clocks
//!
//! Leases are kept on the *database's* clock, so runners on machines whose clocks disagree
//! still agree on when a lease has expired. The trait passes absolute times computed on the
//! caller's clock; this backend turns them into durations against the caller's `actor.now`
//! and applies those to `clock_timestamp()`:
//! - a claim (`Batch::lease_until`) expires at `db_now + (lease_until - actor.now)`, and the
//!   difference `db_now - actor.now` is kept with the lease (`lease_skew`);
//! - a renewal (`renew_leases(until)`, which carries no `now`) moves the expiry to
//!   `until + lease_skew`, i.e. the same distance ahead as the caller asked for;
//! - `requeue_running(expired_before)` requeues leases expiring before
//!   `db_now + (expired_before - actor.now)`.
//!
//! So [`Task::lease_expires`] is a time on the database's clock. Everything else (creation
//! and update times, event times, retry times `not_before`) uses `actor.now`, as the SQLite
//! backend does, so runs with a fixed clock give the same results on both backends.
//!
//! # Concurrency
//!
//! Every mutating call is one `READ COMMITTED` transaction. Rows being changed are locked
//! (`SELECT … FOR UPDATE`); claims take their candidates with `FOR UPDATE SKIP LOCKED`, so
//! runners claiming from the same ready set neither share a task nor wait for each other.
//! Calls that may close a `blocks` cycle (and archiving, which changes the live graph) take a
//! transaction-level advisory lock first, so two concurrent edge insertions cannot together
//! form a cycle. Events are appended at the end of each transaction under a second advisory
//! lock held until commit, so event sequence numbers increase in commit order: a reader that
//! has seen event N will never later find a committed event below N (numbers may skip, after
//! a rollback). Deadlocks and serialisation failures are retried a few times.
//!
//! After a commit that can make work claimable, the transaction sends
//! `NOTIFY downbeat_changed` with the latest event sequence number as payload; see
//! [`PostgresStore::listener`]. The channel is per database: projects in other schemas of
//! the same database wake the same listeners, so a notification is a hint to look again.

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
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
use sqlx::postgres::{
    PgConnectOptions, PgConnection, PgListener, PgPool, PgPoolOptions, PgRow, Postgres,
};
use sqlx::{AssertSqlSafe, Connection, QueryBuilder, Row, migrate::Migrator};

use crate::sqlite::{json_list, rid, seq, status_of, tid, tjson, to_json_list, worker_json};
use crate::{
    AppliedPlan, Artifact, AttemptRecord, Batch, BatchResult, ChangeFeed, Claimed, Error,
    EventQuery, Integrity, Result, SchemaInfo, Store, TaskFilter, WorkerRecord,
};

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// [`ChangeFeed`] over LISTEN/NOTIFY.
struct PgFeed(PgListener);

#[async_trait]
impl ChangeFeed for PgFeed {
    async fn changed(&mut self) -> Result<()> {
        self.0.recv().await.map_err(|e| Error::from(db(e)))?;
        // Many commits in a row wake once.
        while self.0.next_buffered().is_some() {}
        Ok(())
    }
}

/// The channel notified after commits that can make work claimable.
pub const CHANGED_CHANNEL: &str = "downbeat_changed";

/// The database's clock in milliseconds since the Unix epoch.
const DB_NOW: &str = "(extract(epoch from clock_timestamp()) * 1000)::bigint";

/// Plans with at least this many tasks refresh the planner's statistics after they land.
const ANALYZE_AFTER: usize = 500;

/// Advisory lock classes (first key; the second is a hash of the current schema, so projects
/// in different schemas of one database do not contend).
const LOCK_EVENTS: i32 = 0x4442_0001;
const LOCK_GRAPH: i32 = 0x4442_0002;
/// Serialises the installation of the batch function by concurrent opens.
const LOCK_FUNCTION: i32 = 0x4442_0003;

/// The batch function in force (`commit_batch.sql`), installed by [`install_batch_function`].
const BATCH_FUNCTION: &str = include_str!("postgres/commit_batch.sql");

/// Tries of a transaction that hit a deadlock or a serialisation failure.
const MAX_TRIES: u32 = 6;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

fn latest_known() -> i64 {
    MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0)
}

/// An open PostgreSQL project database (a pool of connections).
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pub(crate) pool: PgPool,
    location: String,
    schema: String,
    version: i64,
}

// ------------------------------------------------------------------------------------------
// Errors

/// A failure inside a call: a store error, or a transient conflict worth running the
/// transaction again for.
#[derive(Debug)]
enum Fail {
    Store(Error),
    Retry(String),
}

impl From<Error> for Fail {
    fn from(e: Error) -> Self {
        Fail::Store(e)
    }
}

impl From<Fail> for Error {
    fn from(f: Fail) -> Self {
        match f {
            Fail::Store(e) => e,
            Fail::Retry(m) => Error::Database(m),
        }
    }
}

type R<T> = std::result::Result<T, Fail>;

fn db(e: sqlx::Error) -> Fail {
    match &e {
        sqlx::Error::Database(d) => {
            let msg = d.message().to_owned();
            match d.code().as_deref() {
                // serialization_failure, deadlock_detected
                Some("40001" | "40P01") => Fail::Retry(msg),
                // read_only_sql_transaction (a standby, or default_transaction_read_only)
                Some("25006") => Error::ReadOnly(msg).into(),
                Some(c) if c.starts_with("08") || c.starts_with("57P") => {
                    Error::Unavailable(format!(
                        "the connection to PostgreSQL was lost ({msg}); the next call reconnects"
                    ))
                    .into()
                }
                _ => Error::Database(msg).into(),
            }
        }
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => Error::Unavailable(format!(
            "no working connection to PostgreSQL ({e}); the next call reconnects"
        ))
        .into(),
        _ => Error::Database(e.to_string()).into(),
    }
}

/// A driver error as a store error (for callers outside this module).
pub(crate) fn db_error(e: sqlx::Error) -> Error {
    Error::from(db(e))
}

/// Runs a transaction, again after a short random pause when it lost a deadlock or a
/// serialisation conflict (nothing of a failed try is committed).
async fn retrying<T, F, Fut>(mut once: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = R<T>>,
{
    let mut pause = 4u64;
    let mut tries = 0;
    loop {
        tries += 1;
        match once().await {
            Ok(v) => return Ok(v),
            Err(Fail::Store(e)) => return Err(e),
            Err(Fail::Retry(m)) if tries >= MAX_TRIES => {
                return Err(Error::Database(format!(
                    "{m} (gave up after {MAX_TRIES} tries against concurrent writers)"
                )));
            }
            Err(Fail::Retry(_)) => {
                let jitter = std::collections::hash_map::RandomState::new().hash_one(tries) % pause;
                tokio::time::sleep(Duration::from_millis(pause + jitter)).await;
                pause = (pause * 2).min(200);
            }
        }
    }
}

// ------------------------------------------------------------------------------------------
// Opening

/// Passwords in a URL (user info and `password=` parameters), raw and percent-decoded, to be
/// scrubbed from any message.
fn secrets_of(url: &str) -> Vec<String> {
    let mut out = Vec::new();
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    if let Some((userinfo, _)) = authority.rsplit_once('@')
        && let Some((_, pw)) = userinfo.split_once(':')
    {
        out.push(pw.to_owned());
    }
    if let Some((_, query)) = url.split_once('?') {
        for pair in query.split('&') {
            if let Some((k, v)) = pair.split_once('=')
                && (k == "password" || k == "sslpassword")
            {
                out.push(v.to_owned());
            }
        }
    }
    // As sqlx decodes them: percent-decoded, and in the query also `+` as a space.
    let decoded: Vec<String> = out
        .iter()
        .flat_map(|s| [percent_decode(s), percent_decode(&s.replace('+', " "))])
        .collect();
    out.extend(decoded);
    out.retain(|s| !s.is_empty());
    out.sort_by_key(|s| std::cmp::Reverse(s.len()));
    out.dedup();
    out
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn scrub(message: &str, secrets: &[String]) -> String {
    let mut m = message.to_owned();
    for s in secrets {
        m = m.replace(s.as_str(), "***");
    }
    m
}

/// Splits the downbeat `schema` parameter off a URL.
fn split_schema(url: &str) -> std::result::Result<(String, Option<String>), String> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), None));
    };
    let mut schema = None;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("schema", v)) => {
                if schema.is_some() {
                    return Err("the URL names `schema` twice".into());
                }
                schema = Some(percent_decode(v));
            }
            _ => kept.push(pair),
        }
    }
    if let Some(s) = &schema {
        let ok = !s.is_empty()
            && s.len() <= 63
            && s.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !ok {
            return Err(format!(
                "schema `{s}` is not a lower-case SQL identifier (letters a-z, digits and _, not starting with a digit, at most 63 characters)"
            ));
        }
    }
    let url = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((url, schema))
}

fn endpoint(o: &PgConnectOptions) -> String {
    match o.get_socket() {
        Some(s) => s.display().to_string(),
        None => format!("{}:{}", o.get_host(), o.get_port()),
    }
}

/// An actionable explanation of a failed first connection.
fn explain_connect(e: &sqlx::Error, o: &PgConnectOptions) -> String {
    let at = endpoint(o);
    let user = o.get_username();
    let dbname = o.get_database().unwrap_or(user);
    match e {
        sqlx::Error::Configuration(m) => format!(
            "the URL is not valid ({m}); expected postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?schema=NAME&sslmode=MODE]"
        ),
        sqlx::Error::Io(io) => {
            let text = io.to_string();
            if io.kind() == std::io::ErrorKind::ConnectionRefused {
                format!(
                    "connection refused by {at}: check the host and port in the URL, and that PostgreSQL is running there and accepts TCP connections (listen_addresses, port)"
                )
            } else if text.contains("certificate") || text.to_lowercase().contains("tls") {
                format!(
                    "the TLS connection to {at} failed ({text}): check sslmode and sslrootcert in the URL (verify-ca and verify-full need the CA that signed the server's certificate)"
                )
            } else if text.contains("lookup")
                || text.contains("resolve")
                || text.contains("not known")
            {
                format!(
                    "cannot resolve the host `{}` ({text}): check the host name in the URL",
                    o.get_host()
                )
            } else {
                format!(
                    "cannot connect to {at} ({text}): check the host, the port and the network in between"
                )
            }
        }
        sqlx::Error::Tls(t) => format!(
            "the TLS handshake with {at} failed ({t}): check sslmode and sslrootcert in the URL, and that the server has TLS enabled"
        ),
        sqlx::Error::Database(d) => match d.code().as_deref() {
            Some("28P01" | "28000") => format!(
                "authentication failed for user `{user}` ({}): check the user name and password in the URL (or PGPASSWORD, ~/.pgpass), and the server's pg_hba.conf",
                d.message()
            ),
            Some("3D000") => format!(
                "the database `{dbname}` does not exist on {at}: create it (e.g. `createdb {dbname}`) or fix the database name in the URL"
            ),
            Some("53300") => format!(
                "the server at {at} has no free connection slots ({}): close idle clients or raise max_connections",
                d.message()
            ),
            Some("57P03") => format!(
                "the server at {at} is not accepting connections yet ({}): try again shortly",
                d.message()
            ),
            _ => format!("the server at {at} refused the connection: {}", d.message()),
        },
        other => format!("cannot connect to {at}: {other}"),
    }
}

impl PostgresStore {
    /// Connects to the database a `postgres://` URL names and brings its schema up to date.
    /// With `create`, a missing `schema=` schema is created and an empty one initialised;
    /// without, a schema holding no downbeat tables is refused.
    pub async fn open(url: &str, create: bool) -> Result<Self> {
        let location = crate::redact_url(url);
        let secrets = secrets_of(url);
        let fail = |message: String| Error::Open {
            location: location.clone(),
            message: scrub(&message, &secrets),
        };
        let (conn_url, schema) = split_schema(url).map_err(&fail)?;
        let mut opts = PgConnectOptions::from_str(&conn_url).map_err(|e| {
            fail(format!(
                "not a valid PostgreSQL URL ({e}); expected postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?schema=NAME&sslmode=MODE]"
            ))
        })?;
        if let Some(s) = &schema {
            opts = opts.options([("search_path", s.as_str())]);
        }
        if opts.get_application_name().is_none() {
            opts = opts.application_name("downbeat");
        }
        // One connection by hand first: its error says precisely what is wrong, where the pool
        // would retry until a timeout.
        let mut conn = match tokio::time::timeout(
            CONNECT_TIMEOUT,
            PgConnection::connect_with(&opts),
        )
        .await
        {
            Err(_) => {
                return Err(fail(format!(
                    "no answer from {} within {} s: check the host, the port and any firewall in between",
                    endpoint(&opts),
                    CONNECT_TIMEOUT.as_secs()
                )));
            }
            Ok(Err(e)) => return Err(fail(explain_connect(&e, &opts))),
            Ok(Ok(c)) => c,
        };
        let prepared = prepare(&mut conn, schema.as_deref(), create, &opts).await;
        let _ = conn.close().await;
        let (current, applied) = prepared.map_err(|e| match e {
            Error::Open { message, .. } => fail(message),
            Error::Database(m) => fail(m),
            other => other,
        })?;
        let supported = latest_known();
        if applied > supported {
            return Err(Error::SchemaTooNew {
                found: applied,
                supported,
            });
        }
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(30))
            .connect_lazy_with(opts);
        if applied < supported {
            MIGRATOR.run(&pool).await.map_err(|e| {
                let m = match e {
                    sqlx::migrate::MigrateError::Execute(e) => Error::from(db(e)).to_string(),
                    other => other.to_string(),
                };
                fail(format!(
                    "cannot bring the schema `{current}` up to date: {}",
                    m.trim_start_matches("database error: ")
                ))
            })?;
        }
        install_batch_function(&pool).await.map_err(|e| {
            fail(format!(
                "cannot install the batch function in the schema `{current}`: {}",
                e.to_string().trim_start_matches("database error: ")
            ))
        })?;
        Ok(Self {
            pool,
            location,
            schema: current,
            version: supported,
        })
    }

    /// Refreshes the planner's statistics of the tables a bulk load changed (autovacuum would,
    /// but only a minute or more later: until then every plan assumes the old sizes). Best
    /// effort: the data is committed whether or not this succeeds.
    async fn analyze(&self) {
        let _ = sqlx::query("ANALYZE tasks, edges")
            .execute(&self.pool)
            .await;
    }

    /// The schema the tables live in.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// Drops the project's schema with everything in it (the benchmarks' clean-up). Refuses
    /// `public`, which holds more than one project's tables.
    pub async fn drop_schema(self) -> Result<()> {
        if self.schema == "public" {
            return Err(Error::Invalid(
                "refusing to drop the `public` schema".into(),
            ));
        }
        let sql = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.schema);
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&self.pool)
            .await
            .map_err(db)?;
        self.pool.close().await;
        Ok(())
    }

    /// A connection listening on [`CHANGED_CHANNEL`]: each notification's payload is the
    /// latest event sequence number of a commit that may have made work claimable. The
    /// listener reconnects by itself; a notification is a hint, not a guarantee (look at the
    /// store again on a timer too).
    pub async fn listener(&self) -> Result<PgListener> {
        let mut l = PgListener::connect_with(&self.pool)
            .await
            .map_err(|e| Error::from(db(e)))?;
        l.listen(CHANGED_CHANNEL)
            .await
            .map_err(|e| Error::from(db(e)))?;
        Ok(l)
    }

    async fn write(&self) -> R<Tx> {
        Ok(Tx {
            tx: self.pool.begin().await.map_err(db)?,
            events: Vec::new(),
            wake: false,
        })
    }
}

/// Makes `downbeat_commit_batch` the function of [`BATCH_FUNCTION`]: replaced (`CREATE OR
/// REPLACE`) where the schema's body differs from the file's, left alone where it is the same
/// (an open then takes no lock on the function). Concurrent opens take turns under an advisory
/// lock, so two of them never replace it at once.
async fn install_batch_function(pool: &PgPool) -> Result<()> {
    let q = |e: sqlx::Error| Error::from(db(e));
    let body = BATCH_FUNCTION
        .split("$fn$")
        .nth(1)
        .ok_or_else(|| Error::Database("the batch function's source has no $fn$ body".into()))?;
    let mut tx = pool.begin().await.map_err(q)?;
    sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))")
        .bind(LOCK_FUNCTION)
        .execute(&mut *tx)
        .await
        .map_err(q)?;
    let current: Option<String> = sqlx::query_scalar(
        "SELECT p.prosrc FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
         WHERE n.nspname = current_schema() AND p.proname = 'downbeat_commit_batch'",
    )
    .fetch_optional(&mut *tx)
    .await
    .map_err(q)?;
    if current.as_deref() != Some(body) {
        sqlx::raw_sql(BATCH_FUNCTION)
            .execute(&mut *tx)
            .await
            .map_err(q)?;
    }
    tx.commit().await.map_err(q)
}

/// Creates or checks the schema on the first connection; returns the schema in use and the
/// latest migration applied to it.
async fn prepare(
    c: &mut PgConnection,
    schema: Option<&str>,
    create: bool,
    o: &PgConnectOptions,
) -> Result<(String, i64)> {
    let q = |e: sqlx::Error| Error::from(db(e));
    let dbname = o.get_database().unwrap_or(o.get_username()).to_owned();
    let none_there = |what: String| Error::Open {
        location: String::new(),
        message: format!("no database there: {what}; run `downbeat init` to create it"),
    };
    if let Some(s) = schema {
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
                .bind(s)
                .fetch_one(&mut *c)
                .await
                .map_err(q)?;
        if !exists {
            if !create {
                return Err(none_there(format!(
                    "the schema `{s}` does not exist in the database `{dbname}`"
                )));
            }
            // The name was checked to be a plain identifier.
            let r = sqlx::query(AssertSqlSafe(format!(
                "CREATE SCHEMA IF NOT EXISTS \"{s}\""
            )))
            .execute(&mut *c)
            .await;
            match r {
                Ok(_) => {}
                // Created meanwhile by another process.
                Err(sqlx::Error::Database(d))
                    if matches!(d.code().as_deref(), Some("23505" | "42P06")) => {}
                Err(sqlx::Error::Database(d)) if d.code().as_deref() == Some("42501") => {
                    return Err(Error::Database(format!(
                        "cannot create the schema `{s}` in the database `{dbname}` ({}): create it yourself (CREATE SCHEMA {s} AUTHORIZATION {}) or grant CREATE on the database",
                        d.message(),
                        o.get_username()
                    )));
                }
                Err(e) => return Err(q(e)),
            }
        }
    }
    let current: Option<String> = sqlx::query_scalar("SELECT current_schema()")
        .fetch_one(&mut *c)
        .await
        .map_err(q)?;
    let Some(current) = current else {
        return Err(Error::Database(
            "no schema to use: the search_path names no existing schema; add ?schema=NAME to the URL".into(),
        ));
    };
    let has_table: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = current_schema() AND tablename = '_sqlx_migrations')",
    )
    .fetch_one(&mut *c)
    .await
    .map_err(q)?;
    if !has_table {
        let tables: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()",
        )
        .fetch_one(&mut *c)
        .await
        .map_err(q)?;
        if tables > 0 {
            return Err(Error::Database(format!(
                "the schema `{current}` holds tables that are not a downbeat database: give downbeat a schema of its own (?schema=NAME in the URL)"
            )));
        }
        if !create {
            return Err(none_there(format!(
                "the schema `{current}` of the database `{dbname}` holds no downbeat tables"
            )));
        }
        return Ok((current, 0));
    }
    let applied: i64 =
        sqlx::query_scalar("SELECT coalesce(max(version), 0) FROM _sqlx_migrations WHERE success")
            .fetch_one(&mut *c)
            .await
            .map_err(q)?;
    Ok((current, applied))
}

// ------------------------------------------------------------------------------------------
// Transactions

/// An event to append when the transaction commits.
struct Pending {
    at: i64,
    actor: String,
    session: Option<i64>,
    action: String,
    entity: String,
    before: Option<Value>,
    after: Option<Value>,
}

/// A write transaction that appends its events at commit.
struct Tx {
    tx: sqlx::Transaction<'static, Postgres>,
    events: Vec<Pending>,
    /// Notify listeners at commit (the change may have made work claimable).
    wake: bool,
}

impl Tx {
    fn c(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    fn event(
        &mut self,
        actor: &Actor,
        action: &str,
        entity: &str,
        before: Option<Value>,
        after: Option<Value>,
    ) {
        self.events.push(Pending {
            at: actor.now.0,
            actor: actor.name.clone(),
            session: actor.session.map(|s| s.num),
            action: action.to_owned(),
            entity: entity.to_owned(),
            before,
            after,
        });
    }

    /// Appends the events under the event lock, notifies, commits. Returns the last event's
    /// sequence number, 0 if there was none.
    ///
    /// The event lock is held until the commit completes, so sequence numbers follow commit
    /// order. To keep that serial section short, lock, insert and notification are one
    /// statement: the lock is held for that statement, the one round trip to the client that
    /// follows it, and the commit. (Committing asynchronously under the lock and flushing
    /// afterwards was measured too: no faster here, and slower from one task to the next.)
    async fn commit(mut self) -> R<i64> {
        if self.events.is_empty() {
            self.tx.commit().await.map_err(db)?;
            return Ok(0);
        }
        let rows: Vec<Value> = self
            .events
            .iter()
            .enumerate()
            .map(|(i, e)| {
                json!({"ord": i, "at": e.at, "actor": e.actor, "session_id": e.session, "action": e.action,
                       "entity": e.entity, "task_seq": crate::event_task_seq(&e.action, &e.entity),
                       "before": e.before.as_ref().map(Value::to_string),
                       "after": e.after.as_ref().map(Value::to_string)})
            })
            .collect();
        // The lock is a one-row input of the insert, so it is held before any sequence number
        // is drawn (numbers are drawn as rows are inserted, after the sort has read all of its
        // input).
        let last: i64 = sqlx::query_scalar(
            "WITH lock AS MATERIALIZED (SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))), \
             ins AS (INSERT INTO events(at, actor, session_id, action, entity, task_seq, before, after) \
               SELECT v.at, v.actor, v.session_id, v.action, v.entity, v.task_seq, v.before::jsonb, v.after::jsonb \
               FROM lock, jsonb_to_recordset($2::jsonb) AS v(ord bigint, at bigint, actor text, \
                    session_id bigint, action text, entity text, task_seq bigint, before text, after text) \
               ORDER BY v.ord RETURNING seq), \
             top AS (SELECT max(seq) AS seq FROM ins) \
             SELECT top.seq FROM top WHERE NOT $3 OR pg_notify($4, top.seq::text) IS NOT NULL",
        )
        .bind(LOCK_EVENTS)
        .bind(Value::Array(rows).to_string())
        .bind(self.wake)
        .bind(CHANGED_CHANNEL)
        .fetch_optional(self.c())
        .await
        .map_err(db)?
        .flatten()
        .unwrap_or(0);
        self.tx.commit().await.map_err(db)?;
        Ok(last)
    }
}

/// The answer of `downbeat_commit_batch`, exactly as `commit_batch.sql` builds it: any other
/// shape (a missing or unknown field, a wrong type) is an error, never an empty answer.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchAnswer {
    rejected: Vec<i64>,
    claimed: Vec<ClaimedRow>,
    not_claimed: Vec<i64>,
    held: bool,
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
    epoch: i64,
    attempt_id: i64,
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
        })
    }
}

/// Serialises the calls that can close a `blocks` cycle or change which tasks are live.
/// Taken first in a transaction (before any row lock), so it cannot deadlock with row locks.
async fn lock_graph(t: &mut Tx) -> R<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))")
        .bind(LOCK_GRAPH)
        .execute(t.c())
        .await
        .map_err(db)?;
    Ok(())
}

// ------------------------------------------------------------------------------------------
// Row mapping

const TASK_COLS: &str = "seq, key, parent_seq, title, description, role, status, priority, effort, \
     acceptance::text AS acceptance, tags::text AS tags, footprint::text AS footprint, result, \
     created_at, updated_at, started_at, finished_at, archived, executor, timeout_ms, max_attempts, \
     attempts, not_before, lease_holder, lease_expires, lease_epoch";

fn row_task(r: &PgRow) -> Result<Task> {
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
        archived: r.get::<bool, _>("archived"),
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

fn row_objective(r: &PgRow, tasks: Vec<i64>) -> Result<Objective> {
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

fn row_decision(r: &PgRow) -> Decision {
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

fn row_insight(r: &PgRow) -> Insight {
    Insight {
        id: rid(RecordKind::Insight, r.get("id")),
        text: r.get("text"),
        task: r.get::<Option<i64>, _>("task_seq").map(tid),
        created_at: Timestamp(r.get("created_at")),
    }
}

fn row_session(r: &PgRow) -> Session {
    Session {
        id: rid(RecordKind::Session, r.get("id")),
        label: r.get("label"),
        actor: r.get("actor"),
        started_at: Timestamp(r.get("started_at")),
        ended_at: r.get::<Option<i64>, _>("ended_at").map(Timestamp),
    }
}

fn edge_of(r: &PgRow) -> Result<Edge> {
    let kind = EdgeKind::from_str(r.get(2))
        .map_err(|e| Error::Database(format!("corrupt edge row: {e}")))?;
    Ok(Edge {
        from: tid(r.get(0)),
        to: tid(r.get(1)),
        kind,
    })
}

// ------------------------------------------------------------------------------------------
// Statements shared by several calls

async fn get_task(c: &mut PgConnection, id: TaskId, for_update: bool) -> R<Task> {
    let lock = if for_update { " FOR UPDATE" } else { "" };
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {TASK_COLS} FROM tasks WHERE seq = $1{lock}"
    )))
    .bind(seq(id))
    .fetch_optional(&mut *c)
    .await
    .map_err(db)?;
    match row {
        Some(r) => Ok(row_task(&r)?),
        None => Err(Error::NotFound {
            what: "task",
            query: id.to_string(),
        }
        .into()),
    }
}

async fn alloc_seqs(c: &mut PgConnection, n: usize) -> R<i64> {
    let n = n as i64;
    let end: i64 = sqlx::query_scalar(
        "UPDATE meta SET value = (value::bigint + $1)::text WHERE key = 'next_task_seq' RETURNING value::bigint",
    )
    .bind(n)
    .fetch_one(&mut *c)
    .await
    .map_err(db)?;
    if end - 1 > i64::from(MAX_TASK_SEQ) {
        return Err(
            Error::Invalid("the project has reached the maximum number of tasks".into()).into(),
        );
    }
    Ok(end - n)
}

async fn insert_task(
    c: &mut PgConnection,
    s: i64,
    t: &NewTask,
    parent: Option<i64>,
    now: Timestamp,
) -> R<()> {
    validate_fields(&t.title, t.key.as_deref()).map_err(Error::Invalid)?;
    let id = tid(s);
    let r = sqlx::query(
        "INSERT INTO tasks(seq, id, key, parent_seq, title, description, role, status, priority, effort, \
         acceptance, tags, footprint, created_at, updated_at, executor, timeout_ms, max_attempts) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8, $9, $10::jsonb, $11::jsonb, $12::jsonb, $13, $13, $14, $15, $16)",
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
    .bind(&t.exec.executor)
    .bind(t.exec.timeout_ms)
    .bind(t.exec.max_attempts.map(i64::from))
    .execute(&mut *c)
    .await;
    match r {
        Ok(_) => Ok(()),
        Err(sqlx::Error::Database(d)) if d.constraint() == Some("tasks_key_unique") => {
            Err(Error::Invalid(format!(
                "task key `{}` is already used",
                t.key.as_deref().unwrap_or("")
            ))
            .into())
        }
        Err(e) => Err(db(e)),
    }
}

/// Every task must exist and be live; the first that is not (in the given order) fails.
async fn require_live(c: &mut PgConnection, ids: &[TaskId]) -> R<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let seqs: Vec<i64> = ids.iter().map(|&t| seq(t)).collect();
    let rows = sqlx::query("SELECT seq, archived FROM tasks WHERE seq = ANY($1)")
        .bind(&seqs)
        .fetch_all(&mut *c)
        .await
        .map_err(db)?;
    let live: HashMap<i64, bool> = rows
        .iter()
        .map(|r| (r.get::<i64, _>(0), !r.get::<bool, _>(1)))
        .collect();
    for id in ids {
        match live.get(&seq(*id)) {
            Some(true) => {}
            Some(false) => return Err(Error::Invalid(format!("task {id} is archived")).into()),
            None => {
                return Err(Error::NotFound {
                    what: "task",
                    query: id.to_string(),
                }
                .into());
            }
        }
    }
    Ok(())
}

async fn snapshot(c: &mut PgConnection) -> R<GraphSnapshot> {
    let rows = sqlx::query(
        "SELECT seq, key, parent_seq, title, status, role, effort, priority, footprint::text AS footprint \
         FROM tasks WHERE NOT archived ORDER BY seq",
    )
    .fetch_all(&mut *c)
    .await
    .map_err(db)?;
    let mut tasks = Vec::with_capacity(rows.len());
    for r in &rows {
        let fp: &str = r.get("footprint");
        tasks.push(GraphTask {
            id: tid(r.get("seq")),
            key: r.get("key"),
            parent: r.get::<Option<i64>, _>("parent_seq").map(tid),
            title: r.get("title"),
            status: status_of(r.get("status"))?,
            role: r.get("role"),
            effort: u32::try_from(r.get::<i64, _>("effort")).unwrap_or(0),
            priority: Priority::from_rank(r.get("priority")),
            footprint: if fp == "[]" {
                Vec::new()
            } else {
                json_list(fp)
            },
        });
    }
    let edges = live_edges(c).await?;
    Ok(GraphSnapshot { tasks, edges })
}

/// Edges whose both ends are live tasks.
async fn live_edges(c: &mut PgConnection) -> R<Vec<Edge>> {
    let rows = sqlx::query(
        "SELECT e.from_seq, e.to_seq, e.kind FROM edges e \
         JOIN tasks f ON f.seq = e.from_seq AND NOT f.archived \
         JOIN tasks t ON t.seq = e.to_seq AND NOT t.archived \
         ORDER BY e.to_seq, e.from_seq, e.kind COLLATE \"C\"",
    )
    .fetch_all(&mut *c)
    .await
    .map_err(db)?;
    Ok(rows.iter().map(edge_of).collect::<Result<_>>()?)
}

async fn check_acyclic(c: &mut PgConnection) -> R<()> {
    let snap = snapshot(c).await?;
    if let Some(l) = graph::parent_loops(&snap).into_iter().next() {
        let names: Vec<String> = l.iter().map(ToString::to_string).collect();
        return Err(Error::Invalid(format!("parent loop: {}", names.join(" → "))).into());
    }
    match graph::find_cycle(&snap) {
        Some(cy) => Err(Error::Cycle(cy).into()),
        None => Ok(()),
    }
}

async fn children(c: &mut PgConnection, id: TaskId) -> R<Vec<i64>> {
    sqlx::query_scalar("SELECT seq FROM tasks WHERE parent_seq = $1 AND NOT archived ORDER BY seq")
        .bind(seq(id))
        .fetch_all(&mut *c)
        .await
        .map_err(db)
}

/// Writes a status change of one (locked) leaf with its event. `note` becomes the result text.
async fn write_status(
    t: &mut Tx,
    before: &Task,
    to: Status,
    note: Option<&str>,
    actor: &Actor,
) -> R<Task> {
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
        "UPDATE tasks SET status = $1, result = $2, started_at = $3, finished_at = $4, updated_at = $5, \
         lease_holder = $6, lease_expires = NULL, not_before = NULL, lease_epoch = lease_epoch + 1 \
         WHERE seq = $7",
    )
    .bind(to.as_str())
    .bind(&result)
    .bind(started)
    .bind(finished)
    .bind(now)
    .bind(holder)
    .bind(seq(before.id))
    .execute(t.c())
    .await
    .map_err(db)?;
    let after = get_task(t.c(), before.id, false).await?;
    t.event(
        actor,
        "task.status",
        &before.id.to_string(),
        Some(json!({"status": before.status, "result": before.result})),
        Some(json!({"status": after.status, "result": after.result})),
    );
    Ok(after)
}

async fn objective_in(c: &mut PgConnection, id: i64, for_update: bool) -> R<Objective> {
    let lock = if for_update { " FOR UPDATE" } else { "" };
    let r = sqlx::query(AssertSqlSafe(format!(
        "SELECT id, title, status, created_at, updated_at FROM objectives WHERE id = $1{lock}"
    )))
    .bind(id)
    .fetch_optional(&mut *c)
    .await
    .map_err(db)?
    .ok_or_else(|| Error::NotFound {
        what: "objective",
        query: rid(RecordKind::Objective, id).to_string(),
    })?;
    let tasks: Vec<i64> = sqlx::query_scalar(
        "SELECT task_seq FROM objective_tasks WHERE objective_id = $1 ORDER BY task_seq",
    )
    .bind(id)
    .fetch_all(&mut *c)
    .await
    .map_err(db)?;
    Ok(row_objective(&r, tasks)?)
}

async fn insert_objective(t: &mut Tx, title: &str, tasks: &[i64], actor: &Actor) -> R<i64> {
    if title.trim().is_empty() {
        return Err(Error::Invalid("an objective needs a non-empty title".into()).into());
    }
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO objectives(title, status, session_id, created_at, updated_at) VALUES ($1, 'active', $2, $3, $3) RETURNING id",
    )
    .bind(title.trim())
    .bind(actor.session.map(|s| s.num))
    .bind(actor.now.0)
    .fetch_one(t.c())
    .await
    .map_err(db)?;
    if !tasks.is_empty() {
        sqlx::query(
            "INSERT INTO objective_tasks(objective_id, task_seq) SELECT $1, s FROM unnest($2::bigint[]) AS s \
             ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(tasks)
        .execute(t.c())
        .await
        .map_err(db)?;
    }
    let o = rid(RecordKind::Objective, id);
    let ids: Vec<String> = tasks.iter().map(|&s| tid(s).to_string()).collect();
    t.event(
        actor,
        "objective.added",
        &o.to_string(),
        None,
        Some(json!({"title": title.trim(), "tasks": ids})),
    );
    Ok(id)
}

async fn insert_insight(t: &mut Tx, text: &str, task: Option<i64>, actor: &Actor) -> R<i64> {
    if text.trim().is_empty() {
        return Err(Error::Invalid("an insight needs a non-empty text".into()).into());
    }
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO insights(text, task_seq, session_id, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(text.trim())
    .bind(task)
    .bind(actor.session.map(|s| s.num))
    .bind(actor.now.0)
    .fetch_one(t.c())
    .await
    .map_err(db)?;
    let r = rid(RecordKind::Insight, id);
    t.event(
        actor,
        "insight.added",
        &r.to_string(),
        None,
        Some(json!({"text": text.trim(), "task": task.map(|s| tid(s).to_string())})),
    );
    Ok(id)
}

async fn insert_decision(
    t: &mut Tx,
    text: &str,
    why: &str,
    task: Option<i64>,
    supersedes: Option<i64>,
    actor: &Actor,
) -> R<i64> {
    if text.trim().is_empty() {
        return Err(Error::Invalid("a decision needs a non-empty text".into()).into());
    }
    if let Some(old) = supersedes {
        let row: Option<Option<i64>> =
            sqlx::query_scalar("SELECT superseded_by FROM decisions WHERE id = $1 FOR UPDATE")
                .bind(old)
                .fetch_optional(t.c())
                .await
                .map_err(db)?;
        match row {
            None => {
                return Err(Error::NotFound {
                    what: "decision",
                    query: rid(RecordKind::Decision, old).to_string(),
                }
                .into());
            }
            Some(Some(by)) => {
                return Err(Error::Invalid(format!(
                    "decision {} is already superseded by {}",
                    rid(RecordKind::Decision, old),
                    rid(RecordKind::Decision, by)
                ))
                .into());
            }
            Some(None) => {}
        }
    }
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO decisions(text, why, task_seq, supersedes, session_id, created_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(text.trim())
    .bind(why.trim())
    .bind(task)
    .bind(supersedes)
    .bind(actor.session.map(|s| s.num))
    .bind(actor.now.0)
    .fetch_one(t.c())
    .await
    .map_err(db)?;
    if let Some(old) = supersedes {
        sqlx::query("UPDATE decisions SET superseded_by = $1 WHERE id = $2")
            .bind(id)
            .bind(old)
            .execute(t.c())
            .await
            .map_err(db)?;
    }
    let r = rid(RecordKind::Decision, id);
    t.event(
        actor,
        "decision.added",
        &r.to_string(),
        None,
        Some(json!({"text": text.trim(), "why": why.trim(), "supersedes": supersedes.map(|s| rid(RecordKind::Decision, s).to_string())})),
    );
    Ok(id)
}

// ------------------------------------------------------------------------------------------
// The mutating calls, one transaction each (run again by `retrying` after a deadlock).

impl PostgresStore {
    async fn tx_apply_plan(&self, plan: &ValidatedPlan, actor: &Actor) -> R<AppliedPlan> {
        let mut t = self.write().await?;
        lock_graph(&mut t).await?;
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
                           "executor": n.exec.executor, "timeout_ms": n.exec.timeout_ms,
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
        let mut deps: HashMap<i64, Vec<(String, &'static str)>> = HashMap::new();
        for &(f, to, kind) in &plan.edges {
            deps.entry(to_seq(to))
                .or_default()
                .push((tid(to_seq(f)).to_string(), kind.as_str()));
        }
        for (i, task) in plan.tasks.iter().enumerate() {
            let s = base + i as i64;
            let mut after = json!({"title": task.new.title.trim(), "role": task.new.role, "parent": task.parent.map(|p| tid(to_seq(p)).to_string())});
            if let Some(k) = &task.new.key {
                after["key"] = json!(k);
            }
            for (from, kind) in deps.remove(&s).unwrap_or_default() {
                let list = after
                    .as_object_mut()
                    .map(|o| o.entry(kind).or_insert_with(|| json!([])));
                if let Some(Value::Array(a)) = list {
                    a.push(json!(from));
                }
            }
            t.event(
                actor,
                "task.created",
                &tid(s).to_string(),
                None,
                Some(after),
            );
        }
        // A cycle may form together with what is already stored: check the whole graph.
        if plan.edges.iter().any(|e| e.2.orders_work())
            || plan.tasks.iter().any(|t| t.parent.is_some())
        {
            check_acyclic(t.c()).await?;
        }
        for (title, refs) in &plan.objectives {
            let seqs: Vec<i64> = refs.iter().map(|&r| to_seq(r)).collect();
            let id = insert_objective(&mut t, title, &seqs, actor).await?;
            out.objectives.push(rid(RecordKind::Objective, id));
        }
        for (text, why, task) in &plan.decisions {
            let id = insert_decision(&mut t, text, why, task.map(to_seq), None, actor).await?;
            out.decisions.push(rid(RecordKind::Decision, id));
        }
        for (text, task) in &plan.insights {
            let id = insert_insight(&mut t, text, task.map(to_seq), actor).await?;
            out.insights.push(rid(RecordKind::Insight, id));
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
        let before = get_task(tx.c(), id, true).await?;
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
                return Err(Error::Invalid(format!("task {id} cannot be its own parent")).into());
            }
            if let Some(p) = p {
                require_live(tx.c(), &[p]).await?;
            }
            t.parent = p;
        }
        validate_fields(&t.title, t.key.as_deref()).map_err(Error::Invalid)?;
        sqlx::query(
            "UPDATE tasks SET title = $1, description = $2, role = $3, priority = $4, effort = $5, acceptance = $6::jsonb, \
             tags = $7::jsonb, footprint = $8::jsonb, parent_seq = $9, updated_at = $10, executor = $11, timeout_ms = $12, \
             max_attempts = $13 WHERE seq = $14",
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
        .execute(tx.c())
        .await
        .map_err(db)?;
        if patch.parent.is_some() {
            check_acyclic(tx.c()).await?;
        }
        let after = get_task(tx.c(), id, false).await?;
        tx.event(
            actor,
            "task.updated",
            &id.to_string(),
            Some(tjson(&before)),
            Some(tjson(&after)),
        );
        tx.wake = true;
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
        let task = get_task(t.c(), id, true).await?;
        if task.archived {
            return Err(Error::Invalid(format!("task {id} is archived")).into());
        }
        let kids = children(t.c(), id).await?;
        let mut changed = Vec::new();
        if kids.is_empty() {
            changed.push(write_status(&mut t, &task, to, note, actor).await?);
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
                        changed.push(write_status(&mut t, &leaf, to, note, actor).await?);
                    }
                } else {
                    stack.extend(sub);
                }
            }
            changed.sort_by_key(|t| t.id);
        }
        t.wake = true;
        t.commit().await?;
        Ok(changed)
    }

    async fn tx_add_edge(&self, edge: Edge, actor: &Actor) -> R<bool> {
        let mut t = self.write().await?;
        if edge.kind.orders_work() {
            lock_graph(&mut t).await?;
        }
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
        if edge.kind.orders_work() {
            check_acyclic(t.c()).await?;
        }
        t.event(
            actor,
            "edge.added",
            &edge.to.to_string(),
            None,
            Some(json!({"from": edge.from.to_string(), "kind": edge.kind})),
        );
        t.wake = true;
        t.commit().await?;
        Ok(true)
    }

    async fn tx_remove_edge(&self, edge: Edge, actor: &Actor) -> R<bool> {
        let mut t = self.write().await?;
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
        t.commit().await?;
        Ok(true)
    }

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
        Ok(row_decision(&row))
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
        let (action, entity, after) = crate::meta_set_event(key, value);
        t.event(
            &Actor::new(crate::META_ACTOR, Timestamp(at)),
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
                let crate::Landing {
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
                       "tc": f.tokens.map(|t| t.1), "after": after,
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
        });
        let text: String = sqlx::query_scalar("SELECT downbeat_commit_batch($1::jsonb)::text")
            .bind(input.to_string())
            .fetch_one(&self.pool)
            .await
            .map_err(db)?;
        Ok(BatchAnswer::parse(&text)?.into_result()?)
    }

    async fn tx_renew_leases(&self, holder: &str, until: Timestamp) -> R<Vec<(TaskId, i64)>> {
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
        Ok(rows.iter().map(|r| (tid(r.get(0)), r.get(1))).collect())
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
            let reason = if expired {
                format!("lease of {} expired", holder.as_deref().unwrap_or("?"))
            } else {
                format!("holder {} is gone", holder.as_deref().unwrap_or("?"))
            };
            let result = format!("requeued: {reason}");
            fixes.push(json!({"seq": s, "result": result, "reason": reason}));
            t.event(
                actor,
                "task.status",
                &tid(s).to_string(),
                Some(json!({"status": "running", "holder": holder})),
                Some(json!({"status": "pending", "result": result})),
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

// ------------------------------------------------------------------------------------------

#[async_trait]
impl Store for PostgresStore {
    fn info(&self) -> SchemaInfo {
        SchemaInfo {
            backend: "postgres",
            version: self.version,
            location: self.location.clone(),
            backup: None,
        }
    }

    async fn apply_plan(&self, plan: &ValidatedPlan, actor: &Actor) -> Result<AppliedPlan> {
        let applied = retrying(move || self.tx_apply_plan(plan, actor)).await?;
        if plan.tasks.len() >= ANALYZE_AFTER {
            self.analyze().await;
        }
        Ok(applied)
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
        let rows = sqlx::query("SELECT key, seq FROM tasks WHERE key = ANY($1)")
            .bind(refs)
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
        retrying(move || self.tx_add_artifact(task, path, size, sha256, actor)).await
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
        let counts = sqlx::query(
            "SELECT count(*) FILTER (WHERE action = 'session.started'), \
                    count(*) FILTER (WHERE action = 'decision.added'), \
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

    async fn commit_batch(&self, batch: &Batch, actor: &Actor) -> Result<BatchResult> {
        retrying(move || self.tx_commit_batch(batch, actor)).await
    }

    async fn renew_leases(&self, holder: &str, until: Timestamp) -> Result<Vec<(TaskId, i64)>> {
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

    async fn register_worker(&self, w: &WorkerRecord, actor: &Actor) -> Result<()> {
        retrying(|| async {
            let mut t = self.write().await?;
            sqlx::query(AssertSqlSafe(format!(
                "INSERT INTO workers(name, host, pid, roles, executors, labels, slots, started_at, heartbeat_at, ttl_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, {DB_NOW}, {DB_NOW}, $8) \
                 ON CONFLICT (name) DO UPDATE SET host = EXCLUDED.host, pid = EXCLUDED.pid, roles = EXCLUDED.roles, \
                 executors = EXCLUDED.executors, labels = EXCLUDED.labels, slots = EXCLUDED.slots, \
                 started_at = EXCLUDED.started_at, heartbeat_at = EXCLUDED.heartbeat_at, ttl_ms = EXCLUDED.ttl_ms"
            )))
            .bind(&w.name)
            .bind(&w.host)
            .bind(w.pid)
            .bind(to_json_list(&w.roles))
            .bind(to_json_list(&w.executors))
            .bind(to_json_list(&w.labels))
            .bind(i64::from(w.slots))
            .bind(w.ttl_ms)
            .execute(t.c())
            .await
            .map_err(db)?;
            t.event(actor, "worker.registered", &w.name, None, Some(worker_json(w)));
            t.commit().await.map(|_| ())
        })
        .await
    }

    async fn worker_heartbeat(&self, name: &str, _now: Timestamp) -> Result<bool> {
        let r = sqlx::query(AssertSqlSafe(format!(
            "UPDATE workers SET heartbeat_at = {DB_NOW} WHERE name = $1"
        )))
        .bind(name)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(r.rows_affected() > 0)
    }

    async fn deregister_worker(&self, name: &str, reason: &str, actor: &Actor) -> Result<bool> {
        retrying(|| async {
            let mut t = self.write().await?;
            let r = sqlx::query("DELETE FROM workers WHERE name = $1")
                .bind(name)
                .execute(t.c())
                .await
                .map_err(db)?;
            if r.rows_affected() == 0 {
                return Ok(false);
            }
            t.event(
                actor,
                "worker.deregistered",
                name,
                None,
                Some(json!({"reason": reason})),
            );
            t.commit().await.map(|_| true)
        })
        .await
    }

    async fn workers(&self, _now: Timestamp) -> Result<Vec<WorkerRecord>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT w.*, w.heartbeat_at + w.ttl_ms >= {DB_NOW} AS alive, \
             coalesce((SELECT array_agg(t.seq::bigint ORDER BY t.seq) FROM tasks t \
                       WHERE t.status = 'running' AND t.lease_holder = w.name), '{{}}') AS holding \
             FROM workers w ORDER BY w.name COLLATE \"C\""
        )))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Ok(rows
            .iter()
            .map(|r| WorkerRecord {
                name: r.get("name"),
                host: r.get("host"),
                pid: r.get("pid"),
                roles: json_list(r.get("roles")),
                executors: json_list(r.get("executors")),
                labels: json_list(r.get("labels")),
                slots: u32::try_from(r.get::<i64, _>("slots")).unwrap_or(0),
                started_at: Timestamp(r.get("started_at")),
                heartbeat_at: Timestamp(r.get("heartbeat_at")),
                ttl_ms: r.get("ttl_ms"),
                alive: r.get("alive"),
                holding: r
                    .get::<Vec<i64>, _>("holding")
                    .into_iter()
                    .map(tid)
                    .collect(),
            })
            .collect())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_answers_of_another_shape_are_errors() {
        let ok = r#"{"rejected": [3], "claimed": [{"seq": 4, "epoch": 2, "attempt_id": 9, "number": 1}],
                     "not_claimed": [5], "held": false, "last": 17}"#;
        let r = BatchAnswer::parse(ok).unwrap().into_result().unwrap();
        assert_eq!(r.rejected, [tid(3)]);
        assert_eq!(r.not_claimed, [tid(5)]);
        assert_eq!(
            r.claimed,
            [Claimed {
                task: tid(4),
                epoch: 2,
                attempt_id: 9,
                number: 1
            }]
        );
        let empty =
            r#"{"rejected": [], "claimed": [], "not_claimed": [], "held": true, "last": null}"#;
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
            r#"{"rejected": [], "claimed": [], "not_claimed": [], "held": false}"#,
            r#"{"rejected": [], "claimed": [], "not_claimed": [], "held": false, "last": null, "extra": 1}"#,
            r#"{"rejected": ["x"], "claimed": [], "not_claimed": [], "held": false, "last": null}"#,
            r#"{"rejected": [], "claimed": [{"seq": 4, "epoch": 2, "attempt_id": 9}], "not_claimed": [], "held": false, "last": null}"#,
            r#"{"rejected": [], "claimed": [], "not_claimed": [], "held": null, "last": null}"#,
        ] {
            assert!(
                matches!(BatchAnswer::parse(bad), Err(Error::Database(_))),
                "{bad}"
            );
        }
        let out_of_range =
            r#"{"rejected": [-1], "claimed": [], "not_claimed": [], "held": false, "last": null}"#;
        assert!(matches!(
            BatchAnswer::parse(out_of_range).unwrap().into_result(),
            Err(Error::Database(_))
        ));
    }

    #[test]
    fn schema_parameter_is_split_off_and_checked() {
        assert_eq!(
            split_schema("postgres://u@h/db?schema=proj_1&sslmode=require").unwrap(),
            (
                "postgres://u@h/db?sslmode=require".to_owned(),
                Some("proj_1".to_owned())
            )
        );
        assert_eq!(
            split_schema("postgres://u@h/db?schema=x").unwrap(),
            ("postgres://u@h/db".to_owned(), Some("x".to_owned()))
        );
        assert_eq!(
            split_schema("postgres://u@h/db").unwrap(),
            ("postgres://u@h/db".to_owned(), None)
        );
        assert!(split_schema("postgres://u@h/db?schema=Bad-Name").is_err());
        assert!(split_schema("postgres://u@h/db?schema=a&schema=b").is_err());
        assert!(split_schema("postgres://u@h/db?schema=9a").is_err());
    }

    #[test]
    fn secrets_are_found_and_scrubbed() {
        let url = "postgres://bob:p%40ss@db:5432/x?sslmode=require&password=other";
        let s = secrets_of(url);
        assert!(s.contains(&"p%40ss".to_owned()));
        assert!(s.contains(&"p@ss".to_owned()));
        assert!(s.contains(&"other".to_owned()));
        assert_eq!(
            scrub("failed for p@ss and other", &s),
            "failed for *** and ***"
        );
        assert!(secrets_of("postgres://bob@db/x").is_empty());
    }
}
