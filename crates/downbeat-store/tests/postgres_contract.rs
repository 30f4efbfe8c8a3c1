//! The storage contract, run against the PostgreSQL backend, plus what only PostgreSQL has
//! (URLs, credentials, schemas).
//!
//! The server comes from `DOWNBEAT_TEST_POSTGRES_URL`, else `postgres://postgres@127.0.0.1:5432/test`.
//! Each test works in a schema of its own, created fresh and dropped at the end.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU32, Ordering};

use downbeat_store::contract::Fixture;
use downbeat_store::postgres::PostgresStore;
use downbeat_store::{Error, Store};
use sqlx::Connection;

fn server_url() -> String {
    std::env::var("DOWNBEAT_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".into())
}

fn with_param(url: &str, param: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{param}")
}

/// A schema name no other test (or test run) uses.
fn fresh_schema() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let r = std::collections::hash_map::RandomState::new().hash_one(std::process::id());
    format!(
        "dbt_test_{:012x}_{}",
        r & 0xffff_ffff_ffff,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Drops its schema (and everything in it) when dropped, even when the test panicked.
struct SchemaGuard {
    url: String,
    schema: String,
}

impl Drop for SchemaGuard {
    fn drop(&mut self) {
        let (url, schema) = (self.url.clone(), self.schema.clone());
        // A runtime of its own on a thread of its own: drop may run inside the test's runtime.
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let mut c = sqlx::PgConnection::connect(&url).await?;
                sqlx::query("SET lock_timeout = '30s'")
                    .execute(&mut c)
                    .await?;
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP SCHEMA IF EXISTS {schema} CASCADE"
                )))
                .execute(&mut c)
                .await?;
                c.close().await
            })
        })
        .join();
        if !matches!(done, Ok(Ok(()))) {
            eprintln!(
                "warning: could not drop the test schema {}: {done:?}",
                self.schema
            );
        }
    }
}

fn guard() -> (SchemaGuard, String) {
    let schema = fresh_schema();
    let url = with_param(&server_url(), &format!("schema={schema}"));
    (
        SchemaGuard {
            url: server_url(),
            schema,
        },
        url,
    )
}

async fn fixture() -> Fixture {
    let (guard, url) = guard();
    let store = PostgresStore::open(&url, true)
        .await
        .unwrap_or_else(|e| panic!("open {}: {e}", downbeat_store::redact_url(&url)));
    Fixture {
        store: Box::new(store),
        reopen: Box::new(move || {
            let u = url.clone();
            Box::pin(async move {
                Box::new(PostgresStore::open(&u, false).await.expect("reopen"))
                    as Box<dyn downbeat_store::Store>
            })
        }),
        guard: Box::new(guard),
    }
}

downbeat_store::store_contract_tests!(fixture);
