//! PostgreSQL for the tests that use it: the server, and schemas of their own.
//!
//! The server comes from `DOWNBEAT_TEST_POSTGRES_URL`, else `postgres://postgres@127.0.0.1:5432/test`.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::Connection;

/// The test server's URL.
pub fn server_url() -> String {
    std::env::var("DOWNBEAT_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A fresh schema name and the URL that selects it; the schema is dropped with the guard,
/// even when the test panicked.
pub struct Schema {
    pub name: String,
    pub url: String,
    base: String,
}

impl Schema {
    /// A schema on the test server; `tag` goes into its name.
    pub fn new(tag: &str) -> Self {
        Self::on(server_url(), tag)
    }

    /// A schema on the server at `base`.
    pub fn on(base: String, tag: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let r = std::collections::hash_map::RandomState::new().hash_one(std::process::id());
        let name = format!(
            "dbt_{tag}_{:012x}_{}",
            r & 0xffff_ffff_ffff,
            N.fetch_add(1, Ordering::Relaxed)
        );
        let sep = if base.contains('?') { '&' } else { '?' };
        Self {
            url: format!("{base}{sep}schema={name}"),
            name,
            base,
        }
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name);
        let base = self.base.clone();
        let done = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(async move {
                let mut c = sqlx::PgConnection::connect(&base).await?;
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(&mut c)
                    .await?;
                c.close().await
            });
        if let Err(e) = done {
            eprintln!("warning: could not drop the test schema {}: {e}", self.name);
        }
    }
}
