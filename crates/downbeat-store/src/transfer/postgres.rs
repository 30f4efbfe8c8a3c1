//! The PostgreSQL half of [`Transfer`]: rows leave as `json_agg` per chunk and come in
//! through `json_to_recordset`, one statement per chunk.

use async_trait::async_trait;
use sqlx::postgres::PgConnection;
use sqlx::{AssertSqlSafe, Row};

use super::{CHUNK_ROWS, Dump, Kind, TABLES, Table, TableDump, Transfer, occupied, quoted};
use crate::error::{Error, Result};
use crate::postgres::{PostgresStore, db_error as db};
use crate::traits::MaintenanceStore;

/// Reads one chunk: the JSON array, its row count and its largest key (for an integer key).
fn select_chunk(t: &Table) -> String {
    let cols: Vec<String> = t
        .columns
        .iter()
        .map(|c| {
            let q = quoted(c.name);
            match c.kind {
                // As text, like SQLite stores it (see the module documentation).
                Kind::Json => format!("{q}::text AS {q}"),
                Kind::Int | Kind::Text | Kind::Bool => q,
            }
        })
        .collect();
    let cols = cols.join(", ");
    let name = quoted(t.name);
    match t.int_key() {
        Some(k) => {
            let k = quoted(k);
            format!(
                "SELECT coalesce(json_agg(r)::text, '[]'), count(*), coalesce(max(r.{k}), 0)::bigint \
                 FROM (SELECT {cols} FROM {name} WHERE {k} > $1 ORDER BY {k} LIMIT $2) r"
            )
        }
        None => {
            let key: Vec<String> = t.key.iter().map(|k| quoted(k)).collect();
            format!(
                "SELECT coalesce(json_agg(r)::text, '[]'), count(*), 0::bigint \
                 FROM (SELECT {cols} FROM {name} ORDER BY {} LIMIT $2 OFFSET $1) r",
                key.join(", ")
            )
        }
    }
}

/// Writes one chunk (a JSON array of row objects bound as `$1`).
fn insert_chunk(t: &Table) -> String {
    let cols: Vec<String> = t.columns.iter().map(|c| quoted(c.name)).collect();
    let values: Vec<String> = t
        .columns
        .iter()
        .map(|c| {
            let v = format!("v.{}", quoted(c.name));
            match c.kind {
                Kind::Json => format!("{v}::jsonb"),
                // Absent in rows from SQLite.
                Kind::Int if !c.in_sqlite => format!("coalesce({v}, 0)"),
                Kind::Int | Kind::Text | Kind::Bool => v,
            }
        })
        .collect();
    let types: Vec<String> = t
        .columns
        .iter()
        .map(|c| {
            let ty = match c.kind {
                Kind::Int => "bigint",
                Kind::Text | Kind::Json => "text",
                Kind::Bool => "boolean",
            };
            format!("{} {ty}", quoted(c.name))
        })
        .collect();
    format!(
        "INSERT INTO {}({}) SELECT {} FROM json_to_recordset($1::json) AS v({})",
        quoted(t.name),
        cols.join(", "),
        values.join(", "),
        types.join(", ")
    )
}

async fn counts_in(c: &mut PgConnection) -> Result<Vec<(&'static str, u64)>> {
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

async fn check_schema(c: &mut PgConnection) -> Result<()> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT tablename::text FROM pg_tables \
         WHERE schemaname = current_schema() AND tablename <> '_sqlx_migrations'",
    )
    .fetch_all(&mut *c)
    .await
    .map_err(db)?;
    super::check_tables(&tables)?;
    for t in TABLES {
        let cols: Vec<String> = sqlx::query_scalar(
            "SELECT column_name::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1",
        )
        .bind(t.name)
        .fetch_all(&mut *c)
        .await
        .map_err(db)?;
        super::check_columns(t, &cols, false)?;
    }
    Ok(())
}

#[async_trait]
impl Transfer for PostgresStore {
    async fn export(&self) -> Result<Dump> {
        // One snapshot for every statement of the transaction.
        let mut tx = self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await
            .map_err(db)?;
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
                    // Sequences are outside transactions: this is the latest value handed
                    // out, possibly to rows committed after the snapshot (a harmless gap).
                    let r = sqlx::query(AssertSqlSafe(format!(
                        "SELECT coalesce(pg_sequence_last_value(pg_get_serial_sequence($1, $2)::regclass), 0), \
                                (SELECT coalesce(max({}), 0) FROM {})",
                        quoted(c),
                        quoted(t.name)
                    )))
                    .bind(t.name)
                    .bind(c)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(db)?;
                    r.get::<i64, _>(0).max(r.get::<i64, _>(1))
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
            backend: "postgres",
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
        let mut tx = self.pool.begin().await.map_err(db)?;
        // Other writers wait until the copy is committed (readers do not).
        let names: Vec<String> = TABLES.iter().map(|t| quoted(t.name)).collect();
        sqlx::query(AssertSqlSafe(format!(
            "LOCK TABLE {} IN EXCLUSIVE MODE",
            names.join(", ")
        )))
        .execute(&mut *tx)
        .await
        .map_err(db)?;
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
        // Secondary indexes are built once at the end rather than row by row (several times
        // faster for large projects); primary keys and unique constraints stay and check the
        // rows as they come. Dropping them is part of the transaction: a failure restores them.
        let indexes: Vec<(String, String)> = sqlx::query_as(
            "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) \
             FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid \
             WHERE t.relnamespace = current_schema()::regnamespace AND t.relname = ANY($1) \
               AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)",
        )
        .bind(TABLES.iter().map(|t| t.name).collect::<Vec<_>>())
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        for (name, _) in &indexes {
            sqlx::query(AssertSqlSafe(format!("DROP INDEX {name}")))
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
            if let Some(c) = t.counter {
                // Explicit ids leave an identity sequence where it was: move it past them.
                sqlx::query(AssertSqlSafe(format!(
                    "SELECT setval(pg_get_serial_sequence($1, $2), v) \
                     FROM (SELECT greatest($3, (SELECT max({}) FROM {})) AS v) x WHERE v >= 1",
                    quoted(c),
                    quoted(t.name)
                )))
                .bind(t.name)
                .bind(c)
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
            "INSERT INTO meta(key, value) \
             SELECT 'next_task_seq', (coalesce(max(seq), 0) + 1)::text FROM tasks \
             ON CONFLICT (key) DO UPDATE \
             SET value = greatest(meta.value::bigint, excluded.value::bigint)::text",
        )
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        // Fresh statistics for the planner; the copy stands even if this fails.
        let _ = sqlx::raw_sql(AssertSqlSafe(format!("ANALYZE {}", names.join(", "))))
            .execute(&self.pool)
            .await;
        Ok(())
    }

    async fn row_counts(&self) -> Result<Vec<(&'static str, u64)>> {
        let mut c = self.pool.acquire().await.map_err(db)?;
        counts_in(&mut c).await
    }
}
