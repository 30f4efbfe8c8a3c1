//! The `downbeat` binary against PostgreSQL: init, plan apply, run and status in a schema of
//! its own, created fresh and dropped at the end.
//!
//! The server comes from `DOWNBEAT_TEST_POSTGRES_URL`, else `postgres://postgres@127.0.0.1:5432/test`.

use std::hash::BuildHasher;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use sqlx::Connection;

fn server_url() -> String {
    std::env::var("DOWNBEAT_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".into())
}

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name)
}

/// Drops the schema when dropped, even when the test panicked.
struct Schema(String);

impl Drop for Schema {
    fn drop(&mut self) {
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.0);
        let done = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(async move {
                let mut c = sqlx::PgConnection::connect(&server_url()).await?;
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(&mut c)
                    .await?;
                c.close().await
            });
        if let Err(e) = done {
            eprintln!("warning: could not drop the test schema {}: {e}", self.0);
        }
    }
}

struct Env {
    dir: tempfile::TempDir,
    url: String,
    _schema: Schema,
}

impl Env {
    fn new() -> Self {
        let r = std::collections::hash_map::RandomState::new().hash_one(std::process::id());
        let schema = format!("dbt_cli_{:012x}", r & 0xffff_ffff_ffff);
        let base = server_url();
        let sep = if base.contains('?') { '&' } else { '?' };
        Self {
            dir: tempfile::tempdir().unwrap(),
            url: format!("{base}{sep}schema={schema}"),
            _schema: Schema(schema),
        }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::cargo_bin("downbeat").unwrap();
        c.current_dir(self.dir.path())
            .env_clear()
            .envs(std::env::vars().filter(|(k, _)| k.starts_with("PG")))
            .env("DOWNBEAT_DATABASE_URL", &self.url)
            .env("DOWNBEAT_NOW", "2026-03-01T09:00:00Z")
            .env("DOWNBEAT_ACTOR", "tester")
            .args(args);
        c
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.cmd(args).output().unwrap();
        assert!(
            o.status.success(),
            "downbeat {args:?} failed ({:?}):\n{}",
            o.status.code(),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = args.to_vec();
        a.push("--json");
        serde_json::from_str(&self.ok(&a)).unwrap()
    }
}

#[test]
fn init_plan_run_and_status_against_postgres() {
    let e = Env::new();
    // Before `init` the schema does not exist: the error says what to do.
    let o = e.cmd(&["status"]).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("downbeat init"), "{err}");

    let init = e.json(&["init"]);
    assert_eq!(init["created"], true);
    let location = init["database"].as_str().unwrap();
    assert!(location.starts_with("postgres"), "{location}");

    e.ok(&[
        "plan",
        "apply",
        example("rate-limiting.toml").to_str().unwrap(),
    ]);
    let before = e.json(&["status"]);
    assert_eq!(before["counts"]["total"], 10);
    assert_eq!(before["counts"]["completed"], 0);

    e.ok(&["run", "--executor", "noop"]);

    let after = e.json(&["status"]);
    assert_eq!(after["counts"]["total"], 10, "{after}");
    assert_eq!(after["counts"]["completed"], 10, "{after}");
    assert_eq!(after["counts"]["failed"], 0, "{after}");
    // `init` again leaves the project alone.
    assert_eq!(e.json(&["init"])["created"], false);
}
