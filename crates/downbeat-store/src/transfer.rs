//! Moving a whole project from one database to another (`downbeat db migrate`), between
//! any two backends: SQLite to PostgreSQL, back, or SQLite to SQLite as a copy. Both ends are
//! opened by URL with [`open_transfer`], which gives a store together with its [`Transfer`]
//! half.
//!
//! # The neutral form
//!
//! A [`Dump`] holds every table of [`TABLES`] (all of the schema but the migration ledger):
//! its rows, as JSON arrays of row objects in chunks of at most [`CHUNK_ROWS`], the number of
//! rows, and the highest id its counter ever handed out. Each column has one of four
//! [`Kind`]s, which fixes its JSON form whatever the backend:
//!
//! | kind | JSON | SQLite | PostgreSQL |
//! |---|---|---|---|
//! | [`Kind::Int`] | number or `null` | `INTEGER` | `BIGINT` |
//! | [`Kind::Text`] | string or `null` | `TEXT` | `TEXT` |
//! | [`Kind::Bool`] | `true` / `false` | `INTEGER` 0 / 1 | `BOOLEAN` |
//! | [`Kind::Json`] | the JSON *text* as a string, or `null` | `TEXT` | `JSONB` |
//!
//! JSON columns travel as text so that SQL `NULL` and a JSON `null` stay apart. Both halves
//! build and read these chunks in SQL (`json_group_array` / `json_each` in SQLite, `json_agg` /
//! `json_to_recordset` in PostgreSQL), so no row crosses the driver one cell at a time and no
//! row takes a round trip of its own. The target's secondary indexes are dropped for the
//! import and built again before it commits (once, rather than row by row).
//!
//! # What is kept
//!
//! Every row with its ids and sequence numbers: task sequence numbers (so short task ids stay
//! the same), event sequence numbers, session, objective, insight, decision, artifact and
//! attempt ids. After the copy the target's counters (SQLite's `sqlite_sequence`, PostgreSQL's
//! identity sequences, and the `next_task_seq` meta entry) are moved past both the copied ids
//! and the source's own counters, so ids are never handed out twice.
//!
//! One column exists in PostgreSQL only: `tasks.lease_skew` (see [`crate::postgres`]). It is
//! copied between PostgreSQL databases, is 0 for tasks coming from SQLite and is dropped
//! when going to SQLite. Lease expiry times are copied as they are: PostgreSQL keeps them on
//! the database's clock and SQLite on the runners' clocks, which is the same time on machines
//! whose clocks are synchronised. Stop runners before moving a project.
//!
//! # Guarantees
//!
//! The source is read in one read transaction (a consistent snapshot, while other processes
//! may keep writing). The target must be empty: a freshly created schema, with no row in any
//! table and nothing in `meta` but the initial task counter. It is written in one
//! transaction, so a failure leaves it empty. Both must be at the same schema version.

use std::time::Instant;

use async_trait::async_trait;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::store::Store;

mod postgres;
mod sqlite;

/// Rows per chunk of a [`Dump`] (one statement reads or writes one chunk).
pub const CHUNK_ROWS: i64 = 10_000;

/// How a column's values are written in a [`Dump`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Int,
    Text,
    Bool,
    /// JSON, carried as its text.
    Json,
}

/// A column of a copied table.
#[derive(Debug)]
pub struct Column {
    pub name: &'static str,
    pub kind: Kind,
    /// False for a PostgreSQL-only column (always an integer that defaults to 0).
    pub in_sqlite: bool,
}

/// A copied table.
#[derive(Debug)]
pub struct Table {
    pub name: &'static str,
    pub columns: &'static [Column],
    /// The primary key, the order rows are read in.
    pub key: &'static [&'static str],
    /// The column numbered by an autoincrement counter (SQLite) or an identity sequence
    /// (PostgreSQL).
    pub counter: Option<&'static str>,
}

impl Table {
    /// The primary key when it is a single integer column (read in ranges of it).
    pub fn int_key(&self) -> Option<&'static str> {
        match self.key {
            [k] if self
                .columns
                .iter()
                .any(|c| c.name == *k && c.kind == Kind::Int) =>
            {
                Some(k)
            }
            _ => None,
        }
    }

    /// The columns SQLite has.
    pub fn sqlite_columns(&self) -> impl Iterator<Item = &'static Column> + use<> {
        self.columns.iter().filter(|c| c.in_sqlite)
    }
}

const fn int(name: &'static str) -> Column {
    Column {
        name,
        kind: Kind::Int,
        in_sqlite: true,
    }
}
const fn text(name: &'static str) -> Column {
    Column {
        name,
        kind: Kind::Text,
        in_sqlite: true,
    }
}
const fn json(name: &'static str) -> Column {
    Column {
        name,
        kind: Kind::Json,
        in_sqlite: true,
    }
}

/// Every table of the schema (migrations 0001 to 0008) with every column. Exporting checks
/// the live schema against this list and refuses to copy a table or column it does not name,
/// so a new migration cannot be forgotten here silently.
pub static TABLES: &[Table] = &[
    Table {
        name: "meta",
        columns: &[text("key"), text("value")],
        key: &["key"],
        counter: None,
    },
    Table {
        name: "sessions",
        columns: &[
            int("id"),
            text("label"),
            text("actor"),
            int("started_at"),
            int("ended_at"),
        ],
        key: &["id"],
        counter: Some("id"),
    },
    Table {
        name: "tasks",
        columns: &[
            int("seq"),
            text("id"),
            text("key"),
            int("parent_seq"),
            text("title"),
            text("description"),
            text("role"),
            text("status"),
            int("priority"),
            int("effort"),
            json("acceptance"),
            json("tags"),
            json("footprint"),
            text("result"),
            int("created_at"),
            int("updated_at"),
            int("started_at"),
            int("finished_at"),
            Column {
                name: "archived",
                kind: Kind::Bool,
                in_sqlite: true,
            },
            text("executor"),
            int("timeout_ms"),
            int("max_attempts"),
            int("attempts"),
            int("not_before"),
            text("lease_holder"),
            int("lease_expires"),
            int("lease_epoch"),
            Column {
                name: "lease_skew",
                kind: Kind::Int,
                in_sqlite: false,
            },
        ],
        key: &["seq"],
        // Task numbers come from `meta.next_task_seq`.
        counter: None,
    },
    Table {
        name: "edges",
        columns: &[
            int("from_seq"),
            int("to_seq"),
            text("kind"),
            int("created_at"),
        ],
        key: &["from_seq", "to_seq", "kind"],
        counter: None,
    },
    Table {
        name: "objectives",
        columns: &[
            int("id"),
            text("title"),
            text("status"),
            int("session_id"),
            int("created_at"),
            int("updated_at"),
        ],
        key: &["id"],
        counter: Some("id"),
    },
    Table {
        name: "objective_tasks",
        columns: &[int("objective_id"), int("task_seq")],
        key: &["objective_id", "task_seq"],
        counter: None,
    },
    Table {
        name: "insights",
        columns: &[
            int("id"),
            text("text"),
            int("task_seq"),
            int("session_id"),
            int("created_at"),
        ],
        key: &["id"],
        counter: Some("id"),
    },
    Table {
        name: "decisions",
        columns: &[
            int("id"),
            text("text"),
            text("why"),
            int("task_seq"),
            int("supersedes"),
            int("superseded_by"),
            int("session_id"),
            int("created_at"),
            text("status"),
            int("decided_at"),
            text("decided_why"),
        ],
        key: &["id"],
        counter: Some("id"),
    },
    Table {
        name: "artifacts",
        columns: &[
            int("id"),
            int("task_seq"),
            text("path"),
            int("size"),
            text("sha256"),
            int("created_at"),
            int("attempt_id"),
        ],
        key: &["id"],
        counter: Some("id"),
    },
    Table {
        name: "flags",
        columns: &[
            int("id"),
            int("task_seq"),
            text("flag"),
            text("detail"),
            text("state"),
            text("note"),
            int("follow_up_seq"),
            int("raised_at"),
            int("handled_at"),
        ],
        key: &["id"],
        counter: Some("id"),
    },
    Table {
        name: "events",
        columns: &[
            int("seq"),
            int("at"),
            text("actor"),
            int("session_id"),
            text("action"),
            text("entity"),
            int("task_seq"),
            json("before"),
            json("after"),
        ],
        key: &["seq"],
        counter: Some("seq"),
    },
    Table {
        name: "attempts",
        columns: &[
            int("id"),
            int("task_seq"),
            int("number"),
            int("epoch"),
            text("worker"),
            text("executor"),
            int("started_at"),
            int("ended_at"),
            text("outcome"),
            int("exit_code"),
            text("error"),
            text("summary"),
            int("tokens_prompt"),
            int("tokens_completion"),
            text("detail"),
        ],
        key: &["id"],
        counter: Some("id"),
    },
];

/// The whole content of a project database in the neutral form.
#[derive(Debug, Clone)]
pub struct Dump {
    /// The backend it was read from (`sqlite`, `postgres`).
    pub backend: &'static str,
    /// Its schema version.
    pub version: i64,
    /// One entry per table of [`TABLES`], in that order.
    pub tables: Vec<TableDump>,
}

/// The rows of one table.
#[derive(Debug, Clone)]
pub struct TableDump {
    pub table: &'static Table,
    pub rows: u64,
    /// The highest id the table's counter handed out (0 without a counter, or if unused); at
    /// least the highest id among the rows.
    pub counter: i64,
    /// JSON arrays of row objects, keyed by column name.
    pub chunks: Vec<String>,
}

impl TableDump {
    /// The rows as JSON objects (for inspection and tests: this decodes every row).
    pub fn decode(&self) -> Result<Vec<Map<String, Value>>> {
        let mut out = Vec::with_capacity(usize::try_from(self.rows).unwrap_or(0));
        for chunk in &self.chunks {
            let rows: Vec<Map<String, Value>> = serde_json::from_str(chunk).map_err(|e| {
                Error::Database(format!(
                    "a chunk of `{}` is not valid: {e}",
                    self.table.name
                ))
            })?;
            out.extend(rows);
        }
        Ok(out)
    }
}

impl Dump {
    /// The dump of one table.
    pub fn table(&self, name: &str) -> Option<&TableDump> {
        self.tables.iter().find(|t| t.table.name == name)
    }

    /// Rows per table, in [`TABLES`] order.
    pub fn counts(&self) -> Vec<(&'static str, u64)> {
        self.tables.iter().map(|t| (t.table.name, t.rows)).collect()
    }
}

/// The two halves of moving a project, implemented by every backend.
#[async_trait]
pub trait Transfer: Store {
    /// Reads every table in one read transaction (a consistent snapshot).
    async fn export(&self) -> Result<Dump>;
    /// Writes `dump` into this database in one transaction, ids and counters included.
    /// Refuses (writing nothing) unless the database is empty ([`Error::NotEmpty`]) and at the
    /// dump's schema version ([`Error::SchemaMismatch`]); checks before committing that every
    /// row was written.
    async fn import(&self, dump: &Dump) -> Result<()>;
    /// Rows per table, in [`TABLES`] order.
    async fn row_counts(&self) -> Result<Vec<(&'static str, u64)>>;
}

/// [`open`](crate::open), with the [`Transfer`] half of the store (export and import of whole
/// projects).
pub async fn open_transfer(url: &str, create: bool) -> Result<Box<dyn Transfer>> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Box::new(
            crate::postgres::PostgresStore::open(url, create).await?,
        ));
    }
    crate::url::check_supported(url)?;
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    Ok(Box::new(
        crate::sqlite::SqliteStore::open(std::path::Path::new(path), create).await?,
    ))
}

/// What [`migrate`] did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Migrated {
    /// Rows per table, in [`TABLES`] order (equal on both sides).
    pub tables: Vec<(&'static str, u64)>,
    pub millis: u64,
}

/// Copies the project at `from` into the empty database at `to` (created if missing), then
/// checks that every table holds as many rows on both sides.
pub async fn migrate(from: &str, to: &str) -> Result<Migrated> {
    let started = Instant::now();
    let source = open_transfer(from, false).await?;
    let target = open_transfer(to, true).await?;
    let tables = copy(source.as_ref(), target.as_ref()).await?;
    Ok(Migrated {
        tables,
        millis: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    })
}

/// Copies everything in `source` into the empty `target`; returns the rows per table, checked
/// to be equal on both sides after the commit.
pub async fn copy(
    source: &dyn Transfer,
    target: &dyn Transfer,
) -> Result<Vec<(&'static str, u64)>> {
    let (from, to) = (source.info().version, target.info().version);
    if from != to {
        return Err(Error::SchemaMismatch {
            from_version: from,
            to_version: to,
        });
    }
    // Fail early, before reading a large source; `import` checks again in its transaction.
    if let Some(holds) = occupied(&target.row_counts().await?, None) {
        return Err(Error::NotEmpty {
            location: target.info().location,
            holds,
        });
    }
    let dump = source.export().await?;
    target.import(&dump).await?;
    let expected = dump.counts();
    let found = target.row_counts().await?;
    if found != expected {
        let diff: Vec<String> = expected
            .iter()
            .zip(&found)
            .filter(|(a, b)| a != b)
            .map(|((t, a), (_, b))| format!("{t}: {a} read, {b} found"))
            .collect();
        return Err(Error::Database(format!(
            "the copy does not match its source ({}); was another process writing to the target?",
            diff.join(", ")
        )));
    }
    Ok(expected)
}

/// What a database holds that an empty one does not, for [`Error::NotEmpty`]: rows in any
/// table, or (when `meta` is given) entries in `meta` besides the initial task counter.
pub(crate) fn occupied(
    counts: &[(&str, u64)],
    meta: Option<&[(String, String)]>,
) -> Option<String> {
    let mut parts: Vec<String> = counts
        .iter()
        .filter(|(t, n)| *t != "meta" && *n > 0)
        .map(|(t, n)| format!("{n} {}", noun(t, *n)))
        .collect();
    if let Some(meta) = meta {
        let extra: Vec<&str> = meta
            .iter()
            .filter(|(k, v)| !(k == "next_task_seq" && v == "1"))
            .map(|(k, _)| k.as_str())
            .collect();
        if !extra.is_empty() {
            parts.push(format!("settings ({})", extra.join(", ")));
        }
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// What `n` rows of a table are, in words.
fn noun(table: &str, n: u64) -> &str {
    match (table, n) {
        ("objective_tasks", 1) => "objective link",
        ("objective_tasks", _) => "objective links",
        (t, 1) => t.strip_suffix('s').unwrap_or(t),
        (t, _) => t,
    }
}

/// Checks a live table's columns against [`TABLES`] before exporting it.
pub(crate) fn check_columns(table: &Table, live: &[String], sqlite: bool) -> Result<()> {
    let known: Vec<&str> = table
        .columns
        .iter()
        .filter(|c| c.in_sqlite || !sqlite)
        .map(|c| c.name)
        .collect();
    let unknown: Vec<&str> = live
        .iter()
        .map(String::as_str)
        .filter(|c| !known.contains(c))
        .collect();
    let missing: Vec<&str> = known
        .iter()
        .copied()
        .filter(|c| !live.iter().any(|l| l == c))
        .collect();
    if unknown.is_empty() && missing.is_empty() {
        return Ok(());
    }
    Err(Error::Database(format!(
        "cannot copy the table `{}`: this downbeat does not know its columns {:?} and misses {:?}",
        table.name, unknown, missing
    )))
}

/// Tables of live state a move leaves behind: workers register again against the new database.
const NOT_COPIED: &[&str] = &["workers"];

/// Checks the live tables against [`TABLES`].
pub(crate) fn check_tables(live: &[String]) -> Result<()> {
    let unknown: Vec<&str> = live
        .iter()
        .map(String::as_str)
        .filter(|t| !NOT_COPIED.contains(t))
        .filter(|t| !TABLES.iter().any(|k| k.name == *t))
        .collect();
    let missing: Vec<&str> = TABLES
        .iter()
        .map(|t| t.name)
        .filter(|t| !live.iter().any(|l| l == t))
        .collect();
    if unknown.is_empty() && missing.is_empty() {
        return Ok(());
    }
    Err(Error::Database(format!(
        "cannot copy the database: this downbeat does not know its tables {unknown:?} and misses {missing:?}"
    )))
}

/// `"name"`: identifiers are quoted in generated SQL (both dialects), since some column names
/// (`key`, `before`, `after`, `text`) are keywords.
pub(crate) fn quoted(name: &str) -> String {
    format!("\"{name}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_has_its_key_and_counter_among_its_columns() {
        for t in TABLES {
            for k in t.key.iter().chain(t.counter.iter()) {
                assert!(t.columns.iter().any(|c| c.name == *k), "{}.{k}", t.name);
            }
        }
        assert_eq!(TABLES[0].name, "meta");
        assert_eq!(
            TABLES.iter().find(|t| t.name == "tasks").unwrap().int_key(),
            Some("seq")
        );
        assert_eq!(
            TABLES.iter().find(|t| t.name == "edges").unwrap().int_key(),
            None
        );
    }

    #[test]
    fn emptiness_names_what_is_there() {
        let counts = [
            ("meta", 1),
            ("tasks", 3),
            ("edges", 1),
            ("objective_tasks", 2),
            ("events", 0),
        ];
        assert_eq!(
            occupied(&counts, None).as_deref(),
            Some("3 tasks, 1 edge, 2 objective links")
        );
        let fresh = [("next_task_seq".to_owned(), "1".to_owned())];
        assert_eq!(occupied(&[("meta", 1), ("tasks", 0)], Some(&fresh)), None);
        let used = [("next_task_seq".to_owned(), "4".to_owned())];
        assert_eq!(
            occupied(&[("meta", 1)], Some(&used)).as_deref(),
            Some("settings (next_task_seq)")
        );
    }

    #[test]
    fn unknown_columns_are_refused() {
        let tasks = TABLES.iter().find(|t| t.name == "edges").unwrap();
        let mut live: Vec<String> = tasks.columns.iter().map(|c| c.name.to_owned()).collect();
        assert!(check_columns(tasks, &live, true).is_ok());
        live.push("weight".into());
        let e = check_columns(tasks, &live, true).unwrap_err().to_string();
        assert!(e.contains("weight"), "{e}");
    }
}
