//! The SQLite half of [`Transfer`]: rows leave as `json_group_array(json_object(…))` per chunk
//! and come in through `json_each`, one statement per chunk.

use async_trait::async_trait;
use sqlx::sqlite::SqliteConnection;
use sqlx::{AssertSqlSafe, Row};

use super::{CHUNK_ROWS, Dump, Kind, TABLES, Table, TableDump, Transfer, occupied, quoted};
use crate::error::{Error, Result};
use crate::sqlite::{SqliteStore, db};
use crate::traits::MaintenanceStore;

/// Reads one chunk: the JSON array, its row count and its largest key (for an integer key).
fn select_chunk(t: &Table) -> String {
    let fields: Vec<String> = t
        .sqlite_columns()
        .map(|c| {
            let q = quoted(c.name);
            match c.kind {
                Kind::Bool => {
                    format!(
                        "'{}', json(CASE WHEN {q} <> 0 THEN 'true' ELSE 'false' END)",
                        c.name
                    )
                }
                Kind::Int | Kind::Text | Kind::Json => format!("'{}', {q}", c.name),
            }
        })
        .collect();
    let fields = fields.join(", ");
    let name = quoted(t.name);
    match t.int_key() {
        Some(k) => {
            let k = quoted(k);
            format!(
                "SELECT json_group_array(json_object({fields})), count(*), coalesce(max({k}), 0) \
                 FROM (SELECT * FROM {name} WHERE {k} > ?1 ORDER BY {k} LIMIT ?2)"
            )
        }
        None => {
            let key: Vec<String> = t.key.iter().map(|k| quoted(k)).collect();
            format!(
                "SELECT json_group_array(json_object({fields})), count(*), 0 \
                 FROM (SELECT * FROM {name} ORDER BY {} LIMIT ?2 OFFSET ?1)",
                key.join(", ")
            )
        }
    }
}

/// Writes one chunk (a JSON array of row objects bound as `?1`).
fn insert_chunk(t: &Table) -> String {
    let cols: Vec<String> = t.sqlite_columns().map(|c| quoted(c.name)).collect();
    // `->>` gives SQL values: numbers as INTEGER, strings as TEXT, true/false as 1/0.
    let values: Vec<String> = t
        .sqlite_columns()
        .map(|c| format!("j ->> '$.{}'", c.name))
        .collect();
    format!(
        "WITH r(j) AS MATERIALIZED (SELECT jsonb(value) FROM json_each(?1)) \
         INSERT INTO {}({}) SELECT {} FROM r",
        quoted(t.name),
        cols.join(", "),
        values.join(", ")
    )
}

async fn counts_in(c: &mut SqliteConnection) -> Result<Vec<(&'static str, u64)>> {
    let mut out = Vec::with_capacity(TABLES.len());
    for t in TABLES {
        let n: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT count(*) FROM {}",
            quoted(t.name)
        )))
        .fetch_one(&mut *c)
        .await
        .map_err(db)?;
        out.push((t.name, u64::try_from(n).unwrap_or(0)));
    }
    Ok(out)
}

async fn check_schema(c: &mut SqliteConnection) -> Result<()> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' \
         AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name <> '_sqlx_migrations'",
    )
    .fetch_all(&mut *c)
    .await
    .map_err(db)?;
    super::check_tables(&tables)?;
    for t in TABLES {
        let cols: Vec<String> = sqlx::query_scalar("SELECT name FROM pragma_table_info(?1)")
            .bind(t.name)
            .fetch_all(&mut *c)
            .await
            .map_err(db)?;
        super::check_columns(t, &cols, true)?;
    }
    Ok(())
}

#[async_trait]
impl Transfer for SqliteStore {
    async fn export(&self) -> Result<Dump> {
        // A deferred transaction: its first read fixes the snapshot (WAL), later commits by
        // other connections stay invisible to it.
        let mut tx = self.pool.begin().await.map_err(db)?;
        check_schema(&mut tx).await?;
        let mut tables = Vec::with_capacity(TABLES.len());
        for t in TABLES {
            let sql = select_chunk(t);
            let mut chunks = Vec::new();
            let mut rows = 0u64;
            // The last key read (integer keys), else the rows read so far.
            let mut from = if t.int_key().is_some() { i64::MIN } else { 0 };
            loop {
                let r = sqlx::query(AssertSqlSafe(sql.clone()))
                    .bind(from)
                    .bind(CHUNK_ROWS)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(db)?;
                let n: i64 = r.get(1);
                if n == 0 {
                    break;
                }
                chunks.push(r.get::<String, _>(0));
                rows += u64::try_from(n).unwrap_or(0);
                from = if t.int_key().is_some() {
                    r.get(2)
                } else {
                    from + n
                };
                if n < CHUNK_ROWS {
                    break;
                }
            }
            let total: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
                "SELECT count(*) FROM {}",
                quoted(t.name)
            )))
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?;
            if u64::try_from(total).ok() != Some(rows) {
                return Err(Error::Database(format!(
                    "read {rows} rows of `{}` but it holds {total}",
                    t.name
                )));
            }
            let counter = match t.counter {
                None => 0,
                Some(c) => {
                    let used: Option<i64> =
                        sqlx::query_scalar("SELECT seq FROM sqlite_sequence WHERE name = ?1")
                            .bind(t.name)
                            .fetch_optional(&mut *tx)
                            .await
                            .map_err(db)?;
                    let max: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
                        "SELECT coalesce(max({}), 0) FROM {}",
                        quoted(c),
                        quoted(t.name)
                    )))
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(db)?;
                    used.unwrap_or(0).max(max)
                }
            };
            tables.push(TableDump {
                table: t,
                rows,
                counter,
                chunks,
            });
        }
        tx.commit().await.map_err(db)?;
        Ok(Dump {
            backend: "sqlite",
            version: self.info().version,
            tables,
        })
    }

    async fn import(&self, dump: &Dump) -> Result<()> {
        let info = self.info();
        if dump.version != info.version {
            return Err(Error::SchemaMismatch {
                from_version: dump.version,
                to_version: info.version,
            });
        }
        // BEGIN IMMEDIATE: the write lock from the start, so nobody writes in between.
        let mut tx = self.write().await?;
        let counts = counts_in(&mut tx).await?;
        let meta: Vec<(String, String)> = sqlx::query_as("SELECT key, value FROM meta")
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
        if let Some(holds) = occupied(&counts, Some(&meta)) {
            return Err(Error::NotEmpty {
                location: info.location,
                holds,
            });
        }
        // The source's meta replaces the initial one.
        sqlx::query("DELETE FROM meta")
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        // Secondary indexes are built once at the end rather than row by row; primary keys
        // and unique constraints (indexes without SQL of their own) stay and check the rows as
        // they come. Dropping them is part of the transaction: a failure restores them.
        let indexes: Vec<(String, String)> = sqlx::query_as(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL",
        )
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        for (name, _) in &indexes {
            sqlx::query(AssertSqlSafe(format!("DROP INDEX {}", quoted(name))))
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        for td in &dump.tables {
            let t = td.table;
            let sql = insert_chunk(t);
            let mut written = 0;
            for chunk in &td.chunks {
                written += sqlx::query(AssertSqlSafe(sql.clone()))
                    .bind(chunk)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?
                    .rows_affected();
            }
            if written != td.rows {
                return Err(Error::Database(format!(
                    "wrote {written} of the {} rows of `{}`; nothing was kept",
                    td.rows, t.name
                )));
            }
            if t.counter.is_some() && td.counter > 0 {
                // Inserting explicit ids already moved the counter to the largest of them;
                // the source's counter may be further on (ids of deleted rows).
                sqlx::query("UPDATE sqlite_sequence SET seq = max(seq, ?2) WHERE name = ?1")
                    .bind(t.name)
                    .bind(td.counter)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
                sqlx::query(
                    "INSERT INTO sqlite_sequence(name, seq) SELECT ?1, ?2 \
                     WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = ?1)",
                )
                .bind(t.name)
                .bind(td.counter)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            }
        }
        for (_, create) in &indexes {
            sqlx::query(AssertSqlSafe(create.clone()))
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        // The next task number lies past every copied task, whatever the source's meta said.
        sqlx::query(
            "INSERT INTO meta(key, value) VALUES ('next_task_seq', \
                 CAST((SELECT coalesce(max(seq), 0) + 1 FROM tasks) AS TEXT)) \
             ON CONFLICT(key) DO UPDATE SET value = CAST(max(CAST(meta.value AS INTEGER), \
                 CAST(excluded.value AS INTEGER)) AS TEXT)",
        )
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    async fn row_counts(&self) -> Result<Vec<(&'static str, u64)>> {
        let mut c = self.pool.acquire().await.map_err(db)?;
        counts_in(&mut c).await
    }
}
