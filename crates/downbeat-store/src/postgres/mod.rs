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

use std::hash::BuildHasher;

use sqlx::Connection;
use sqlx::postgres::{
    PgConnectOptions, PgConnection, PgListener, PgPool, PgPoolOptions, PgRow, Postgres,
};

use crate::shared::prelude::*;
use crate::traits::ChangeFeed;

mod context;
mod effects;
mod execution;
mod maintenance;
mod tasks;
mod workers;

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
/// Serialises the claims that check caps (`commit_batch.sql`).
const LOCK_CAPS: i32 = 0x4442_0004;

/// The batch function in force (`commit_batch.sql`), installed by [`install_batch_function`].
const BATCH_FUNCTION: &str = include_str!("commit_batch.sql");

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
        let location = crate::url::redact_url(url);
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

    /// Vacuums the system catalogs a schema's creation and removal leave dead rows in. On a
    /// server without autovacuum they pile up (every table, column, index and dependency of
    /// every dropped schema) and slow every catalog lookup; a role that may not vacuum them
    /// gets a warning from the server and nothing is done. Best effort: errors are ignored.
    pub async fn vacuum_catalogs(&self) {
        let _ = sqlx::query(
            "VACUUM pg_catalog.pg_attribute, pg_catalog.pg_depend, pg_catalog.pg_class, \
             pg_catalog.pg_index, pg_catalog.pg_type, pg_catalog.pg_proc, pg_catalog.pg_namespace, \
             pg_catalog.pg_constraint, pg_catalog.pg_attrdef, pg_catalog.pg_sequence, \
             pg_catalog.pg_statistic, pg_catalog.pg_description",
        )
        .execute(&self.pool)
        .await;
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
                       "entity": e.entity, "task_seq": event_task_seq(&e.action, &e.entity),
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
    let q = sqlx::query(
        "INSERT INTO tasks(seq, id, key, parent_seq, title, description, role, status, priority, effort, \
         acceptance, tags, footprint, created_at, updated_at, executor, timeout_ms, max_attempts) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8, $9, $10::jsonb, $11::jsonb, $12::jsonb, $13, $13, $14, $15, $16)",
    )
    .bind(s)
    .bind(id.short())
    .bind(&t.key)
    .bind(parent)
    .bind(t.title.trim());
    let q = bind_task_fields!(q, t).bind(now.0);
    let r = bind_exec!(q, t.exec).execute(&mut *c).await;
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
    let w = status_write(before, to, note, actor)?;
    sqlx::query(
        "UPDATE tasks SET status = $1, result = $2, started_at = $3, finished_at = $4, updated_at = $5, \
         lease_holder = $6, lease_expires = NULL, not_before = NULL, lease_epoch = lease_epoch + 1 \
         WHERE seq = $7",
    )
    .bind(to.as_str())
    .bind(&w.result)
    .bind(w.started)
    .bind(w.finished)
    .bind(actor.now.0)
    .bind(w.holder)
    .bind(seq(before.id))
    .execute(t.c())
    .await
    .map_err(db)?;
    let after = get_task(t.c(), before.id, false).await?;
    let (b, a) = status_event(before, &after);
    t.event(
        actor,
        "task.status",
        &before.id.to_string(),
        Some(b),
        Some(a),
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

// ------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

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
