//! `downbeat db migrate`: a project run on SQLite moves to PostgreSQL (and back) and reads the
//! same there; occupied targets, missing sources and bad URLs fail with their exit codes.
//!
//! The server comes from `DOWNBEAT_TEST_POSTGRES_URL`, else `postgres://postgres@127.0.0.1:5432/test`.
//! Each test works in schemas of its own, created fresh and dropped at the end.

use std::hash::BuildHasher;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use assert_cmd::Command;
use serde_json::Value;
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

/// A fresh schema name; the schema is dropped with the guard, even when the test panicked.
struct Schema {
    name: String,
    url: String,
}

impl Schema {
    fn new() -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let r = std::collections::hash_map::RandomState::new().hash_one(std::process::id());
        let name = format!(
            "dbt_migrate_{:012x}_{}",
            r & 0xffff_ffff_ffff,
            N.fetch_add(1, Ordering::Relaxed)
        );
        let base = server_url();
        let sep = if base.contains('?') { '&' } else { '?' };
        Self {
            url: format!("{base}{sep}schema={name}"),
            name,
        }
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name);
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
            eprintln!("warning: could not drop the test schema {}: {e}", self.name);
        }
    }
}

/// `downbeat` in `dir`, with a fixed clock and no database chosen by the environment.
fn cmd(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::cargo_bin("downbeat").unwrap();
    c.current_dir(dir)
        .env_clear()
        .envs(std::env::vars().filter(|(k, _)| k.starts_with("PG")))
        .env("DOWNBEAT_NOW", "2026-03-01T09:00:00Z")
        .env("DOWNBEAT_ACTOR", "tester")
        .args(args);
    c
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let o = cmd(dir, args).output().unwrap();
    assert!(
        o.status.success(),
        "downbeat {args:?} failed ({:?}):\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

fn json(dir: &Path, args: &[&str]) -> Value {
    let mut a = args.to_vec();
    a.push("--json");
    serde_json::from_str(&ok(dir, &a)).unwrap()
}

/// Fails with `code`; returns stderr.
fn fails(dir: &Path, args: &[&str], code: i32) -> String {
    let o = cmd(dir, args).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(code), "downbeat {args:?}:\n{err}");
    assert!(err.starts_with("error: "), "{err}");
    err
}

/// What a project shows: status, every task, the event log, the metrics and one attempt
/// ledger, all as JSON.
fn views(dir: &Path, db: Option<&str>) -> Vec<Value> {
    let with = |args: &[&str]| {
        let mut a: Vec<&str> = Vec::new();
        if let Some(db) = db {
            a.extend(["--db", db]);
        }
        a.extend(args);
        json(dir, &a)
    };
    vec![
        with(&["status"]),
        with(&["list", "--all"]),
        with(&["log"]),
        with(&["metrics"]),
        with(&["attempts", "middleware"]),
        with(&["decision", "list"]),
        with(&["objective", "list"]),
    ]
}

#[test]
fn a_finished_project_moves_to_postgres_and_back() {
    let project = tempfile::tempdir().unwrap();
    let p = project.path();
    ok(p, &["init"]);
    ok(
        p,
        &[
            "plan",
            "apply",
            example("rate-limiting.toml").to_str().unwrap(),
        ],
    );
    ok(p, &["run", "--executor", "noop"]);
    let here = views(p, None);
    assert_eq!(here[1].as_array().unwrap().len(), 11, "{}", here[1]);
    assert_eq!(here[0]["counts"]["completed"], 10, "{}", here[0]);

    // A relative SQLite path, a password in the PostgreSQL URL (trust authentication ignores
    // it): it never shows.
    let schema = Schema::new();
    let secret = "Sup3r-S3cret-Pw";
    let to = with_password(&schema.url, secret);
    let done = json(
        p,
        &[
            "db",
            "migrate",
            "--from",
            "sqlite:.downbeat/downbeat.db",
            "--to",
            &to,
        ],
    );
    assert!(!done.to_string().contains(secret), "{done}");
    assert_eq!(done["from"], "sqlite:.downbeat/downbeat.db");
    assert!(done["to"].as_str().unwrap().contains("***"), "{done}");
    assert!(
        done["to"].as_str().unwrap().contains(&schema.name),
        "{done}"
    );
    assert!(done["millis"].as_u64().is_some(), "{done}");
    let tables = done["tables"].as_object().unwrap();
    assert_eq!(tables.len(), 11, "{done}");
    assert_eq!(tables["tasks"], 11);
    assert_eq!(tables["edges"], 10);
    assert_eq!(tables["attempts"], 10);
    assert_eq!(tables["objectives"], 2);
    assert_eq!(tables["decisions"], 1);
    assert_eq!(
        tables["events"].as_u64().unwrap(),
        here[2].as_array().unwrap().len() as u64
    );

    // The same project, read from PostgreSQL: every view equal, no field excepted.
    let there = views(p, Some(&schema.url));
    for (a, b) in here.iter().zip(&there) {
        assert_eq!(a, b);
    }

    // Back into SQLite, from a directory that holds no project.
    let elsewhere = tempfile::tempdir().unwrap();
    let e = elsewhere.path();
    let text = ok(
        e,
        &[
            "db",
            "migrate",
            "--from",
            &schema.url,
            "--to",
            "sqlite:copy/back.db",
        ],
    );
    assert!(text.contains("tasks"), "{text}");
    assert!(e.join("copy/back.db").exists());
    let back = views(p, Some(e.join("copy/back.db").to_str().unwrap()));
    for (a, b) in here.iter().zip(&back) {
        assert_eq!(a, b);
    }

    // New work after the move continues the numbering.
    let added = json(p, &["--db", &schema.url, "add", "After the move"]);
    let same = json(p, &["add", "After the move"]);
    assert!(added["id"].is_string(), "{added}");
    assert_eq!(added["id"], same["id"], "{added}");
}

fn with_password(url: &str, pw: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let authority = rest.split(['/', '?']).next().unwrap();
    match authority.rsplit_once('@') {
        Some((userinfo, _)) if userinfo.contains(':') => url.to_owned(),
        Some((user, _)) => format!("{scheme}://{user}:{pw}@{}", &rest[user.len() + 1..]),
        None => format!("{scheme}://:{pw}@{rest}"),
    }
}

#[test]
fn refusals_have_their_exit_codes() {
    let project = tempfile::tempdir().unwrap();
    let p = project.path();
    ok(p, &["init"]);
    ok(
        p,
        &[
            "plan",
            "apply",
            example("rate-limiting.toml").to_str().unwrap(),
        ],
    );
    let schema = Schema::new();
    let from = "sqlite:.downbeat/downbeat.db";
    ok(p, &["db", "migrate", "--from", from, "--to", &schema.url]);
    let before = json(p, &["--db", &schema.url, "log"]);

    // An occupied target: conflict, nothing written.
    let err = fails(
        p,
        &["db", "migrate", "--from", from, "--to", &schema.url],
        5,
    );
    assert!(err.contains("is not empty: it holds 11 tasks"), "{err}");
    assert!(err.contains("hint: "), "{err}");
    assert_eq!(before, json(p, &["--db", &schema.url, "log"]));

    // The same database on both sides: invalid.
    let err = fails(p, &["db", "migrate", "--from", from, "--to", from], 4);
    assert!(err.contains("same database"), "{err}");

    // A missing source: not found, and not created.
    let err = fails(
        p,
        &[
            "db",
            "migrate",
            "--from",
            "sqlite:nothing.db",
            "--to",
            "sqlite:x.db",
        ],
        3,
    );
    assert!(err.contains("nothing.db"), "{err}");
    assert!(!p.join("nothing.db").exists());
    assert!(!p.join("x.db").exists());

    // URLs the store cannot open, and an unreachable server (without its password).
    let err = fails(
        p,
        &["db", "migrate", "--from", from, "--to", "mysql://u:pw@h/db"],
        6,
    );
    assert!(err.contains("unsupported database URL"), "{err}");
    assert!(!err.contains(":pw@"), "{err}");
    let secret = "Sup3r-S3cret-Pw";
    let err = fails(
        p,
        &[
            "db",
            "migrate",
            "--from",
            from,
            "--to",
            &format!("postgres://postgres:{secret}@127.0.0.1:1/test?schema=x"),
        ],
        6,
    );
    assert!(err.contains("refused"), "{err}");
    assert!(!err.contains(secret), "{err}");

    // Usage: both URLs are required.
    fails(p, &["db", "migrate", "--from", from], 2);
}
