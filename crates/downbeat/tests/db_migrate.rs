//! `downbeat db migrate`: a project run on SQLite moves to PostgreSQL (and back) and reads the
//! same there; occupied targets, missing sources and bad URLs fail with their exit codes.
//!
//! The server comes from `DOWNBEAT_TEST_POSTGRES_URL`, else `postgres://postgres@127.0.0.1:5432/test`.
//! Each test works in schemas of its own, created fresh and dropped at the end.

mod common;

use common::pg::Schema;
use common::{Env, example};
use serde_json::Value;

impl Env {
    /// A temp dir where `downbeat` runs with a fixed clock and no database chosen by the
    /// environment.
    fn new() -> Self {
        Env::builder()
            .keep_prefix("PG")
            .fixed_clock()
            .actor("tester")
            .build()
    }
}

/// Fails with `code`; returns stderr.
fn fails(dir: &Env, args: &[&str], code: i32) -> String {
    let o = dir.run(args);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(code), "downbeat {args:?}:\n{err}");
    assert!(err.starts_with("error: "), "{err}");
    err
}

/// What a project shows: status, every task, the event log, the metrics and one attempt
/// ledger, all as JSON.
fn views(dir: &Env, db: Option<&str>) -> Vec<Value> {
    let with = |args: &[&str]| {
        let mut a: Vec<&str> = Vec::new();
        if let Some(db) = db {
            a.extend(["--db", db]);
        }
        a.extend(args);
        dir.json(&a)
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
    let project = Env::new();
    let p = &project;
    p.ok(&["init"]);
    p.ok(&[
        "plan",
        "apply",
        example("rate-limiting.toml").to_str().unwrap(),
    ]);
    p.ok(&["run", "--executor", "noop"]);
    let here = views(p, None);
    assert_eq!(here[1].as_array().unwrap().len(), 11, "{}", here[1]);
    assert_eq!(here[0]["counts"]["completed"], 10, "{}", here[0]);

    // A relative SQLite path, a password in the PostgreSQL URL (trust authentication ignores
    // it): it never shows.
    let schema = Schema::new("migrate");
    let secret = "Sup3r-S3cret-Pw";
    let to = with_password(&schema.url, secret);
    let done = p.json(&[
        "db",
        "migrate",
        "--from",
        "sqlite:.downbeat/downbeat.db",
        "--to",
        &to,
    ]);
    assert!(!done.to_string().contains(secret), "{done}");
    assert_eq!(done["from"], "sqlite:.downbeat/downbeat.db");
    assert!(done["to"].as_str().unwrap().contains("***"), "{done}");
    assert!(
        done["to"].as_str().unwrap().contains(&schema.name),
        "{done}"
    );
    assert!(done["millis"].as_u64().is_some(), "{done}");
    let tables = done["tables"].as_object().unwrap();
    assert_eq!(tables.len(), 12, "{done}");
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
    let elsewhere = Env::new();
    let e = &elsewhere;
    let text = e.ok(&[
        "db",
        "migrate",
        "--from",
        &schema.url,
        "--to",
        "sqlite:copy/back.db",
    ]);
    assert!(text.contains("tasks"), "{text}");
    assert!(e.path().join("copy/back.db").exists());
    let back = views(p, Some(e.path().join("copy/back.db").to_str().unwrap()));
    for (a, b) in here.iter().zip(&back) {
        assert_eq!(a, b);
    }

    // New work after the move continues the numbering.
    let added = p.json(&["--db", &schema.url, "add", "After the move"]);
    let same = p.json(&["add", "After the move"]);
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
    let project = Env::new();
    let p = &project;
    p.ok(&["init"]);
    p.ok(&[
        "plan",
        "apply",
        example("rate-limiting.toml").to_str().unwrap(),
    ]);
    let schema = Schema::new("migrate");
    let from = "sqlite:.downbeat/downbeat.db";
    p.ok(&["db", "migrate", "--from", from, "--to", &schema.url]);
    let before = p.json(&["--db", &schema.url, "log"]);

    // An occupied target: conflict, nothing written.
    let err = fails(
        p,
        &["db", "migrate", "--from", from, "--to", &schema.url],
        5,
    );
    assert!(err.contains("is not empty: it holds 11 tasks"), "{err}");
    assert!(err.contains("hint: "), "{err}");
    assert_eq!(before, p.json(&["--db", &schema.url, "log"]));

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
    assert!(!p.path().join("nothing.db").exists());
    assert!(!p.path().join("x.db").exists());

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
