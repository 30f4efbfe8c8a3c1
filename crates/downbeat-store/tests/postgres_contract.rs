//! The storage contract, run against the PostgreSQL backend, plus what only PostgreSQL has
//! (URLs, credentials, schemas).
//!
//! The server comes from `DOWNBEAT_TEST_POSTGRES_URL`, else `postgres://postgres@127.0.0.1:5432/test`.
//! Each test works in a schema of its own, created fresh and dropped at the end.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU32, Ordering};

use downbeat_store::contract::Fixture;
use downbeat_store::postgres::PostgresStore;
use downbeat_store::{ContextStore, Error, ExecutionStore, MaintenanceStore, TaskStore};
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

// ------------------------------------------------------------------------------------------
// PostgreSQL only

const SECRET: &str = "Sup3r-S3cret-Pw";

/// The server URL with a password in it (the test server's own, if its URL has one; else
/// a made-up one, which trust authentication ignores).
fn url_with_password() -> (String, String) {
    let base = server_url();
    let (scheme, rest) = base.split_once("://").expect("a URL");
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    match authority.rsplit_once('@') {
        Some((userinfo, _)) if userinfo.contains(':') => {
            let pw = userinfo.split_once(':').unwrap().1.to_owned();
            (base.clone(), pw)
        }
        Some((user, _)) => (
            format!("{scheme}://{user}:{SECRET}@{}", &rest[user.len() + 1..]),
            SECRET.to_owned(),
        ),
        None => (format!("{scheme}://:{SECRET}@{rest}"), SECRET.to_owned()),
    }
}

fn assert_no_secret(e: &Error, secret: &str) {
    assert!(!e.to_string().contains(secret), "{e}");
    assert!(!format!("{e:?}").contains(secret), "{e:?}");
}

#[tokio::test]
async fn unreachable_servers_are_open_errors_without_the_password() {
    let cases = [
        format!("postgres://postgres:{SECRET}@127.0.0.1:1/test"),
        format!("postgresql://postgres@127.0.0.1:1/test?password={SECRET}&schema=x"),
    ];
    for url in cases {
        let e = downbeat_store::open(&url, true).await.err().expect("fails");
        match &e {
            Error::Open { location, message } => {
                assert!(location.contains("***"), "{location}");
                assert!(message.contains("refused"), "{message}");
                assert!(message.contains("127.0.0.1:1"), "{message}");
            }
            other => panic!("expected an open error, got {other:?}"),
        }
        assert_no_secret(&e, SECRET);
    }
    // Not a URL a driver can use.
    let e = PostgresStore::open(&format!("postgres://u:{SECRET}@h:notaport/db"), true)
        .await
        .expect_err("fails");
    assert!(matches!(e, Error::Open { .. }), "{e:?}");
    assert_no_secret(&e, SECRET);
    let e = PostgresStore::open("postgres://u@h/db?schema=Not-Valid", true)
        .await
        .expect_err("fails");
    assert!(
        e.to_string().contains("not a lower-case SQL identifier"),
        "{e}"
    );
}

#[tokio::test]
async fn a_missing_database_is_named() {
    let (url, secret) = url_with_password();
    let (base, _) = url.split_once('?').unwrap_or((&url, ""));
    let (server, _) = base.rsplit_once('/').expect("a database name");
    let e = PostgresStore::open(&format!("{server}/downbeat_no_such_db"), true)
        .await
        .expect_err("fails");
    let msg = e.to_string();
    assert!(matches!(e, Error::Open { .. }), "{e:?}");
    assert!(
        msg.contains("`downbeat_no_such_db` does not exist"),
        "{msg}"
    );
    assert_no_secret(&e, &secret);
}

#[tokio::test]
async fn the_password_never_shows_in_info() {
    let (guard, _) = guard();
    let (url, secret) = url_with_password();
    let url = with_param(&url, &format!("schema={}", guard.schema));
    let store = PostgresStore::open(&url, true).await.expect("open");
    let info = store.info();
    assert_eq!(info.backend, "postgres");
    assert_eq!(info.version, latest_version());
    assert!(!info.location.contains(&secret), "{}", info.location);
    assert!(info.location.contains("***"), "{}", info.location);
    assert_eq!(store.schema(), guard.schema);
}

#[tokio::test]
async fn opening_without_create_needs_an_initialised_schema() {
    let (guard, url) = guard();
    // The schema does not exist: not created, and the error says what to do.
    let e = PostgresStore::open(&url, false).await.expect_err("fails");
    let msg = e.to_string();
    assert!(msg.contains("no database there"), "{msg}");
    assert!(msg.contains("downbeat init"), "{msg}");
    assert!(msg.contains(&guard.schema), "{msg}");
    // An empty schema is refused too; a schema holding other tables is not taken over.
    let mut c = sqlx::PgConnection::connect(&server_url()).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "CREATE SCHEMA {}",
        guard.schema
    )))
    .execute(&mut c)
    .await
    .unwrap();
    let e = PostgresStore::open(&url, false).await.expect_err("fails");
    assert!(e.to_string().contains("no database there"), "{e}");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "CREATE TABLE {}.other (x int)",
        guard.schema
    )))
    .execute(&mut c)
    .await
    .unwrap();
    let e = PostgresStore::open(&url, true).await.expect_err("fails");
    assert!(e.to_string().contains("not a downbeat database"), "{e}");
    c.close().await.unwrap();
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    let (guard, url) = guard();
    drop(PostgresStore::open(&url, true).await.expect("create"));
    let mut c = sqlx::PgConnection::connect(&server_url()).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {}._sqlx_migrations(version, description, success, checksum, execution_time) \
         VALUES (99, 'from the future', true, '\\x00', 0)",
        guard.schema
    )))
    .execute(&mut c)
    .await
    .unwrap();
    c.close().await.unwrap();
    match downbeat_store::open(&url, false).await {
        Err(Error::SchemaTooNew { found, supported }) => {
            assert_eq!((found, supported), (99, latest_version()))
        }
        other => panic!("expected SchemaTooNew, got {:?}", other.err()),
    }
}

/// The batch function that runs is the one of `commit_batch.sql`: a schema whose function was
/// changed gets it back when a store opens it, and an answer of another shape is an error,
/// never an empty result.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_batch_function_comes_from_its_file() {
    use downbeat_core::task::NewTask;
    use downbeat_store::{Batch, ClaimRequest};
    let (guard, url) = guard();
    let s = PostgresStore::open(&url, true).await.expect("create");
    let actor = downbeat_core::context::Actor::new("t", downbeat_core::time::Timestamp(1_000));
    let new = NewTask {
        title: "a".into(),
        ..Default::default()
    };
    let a = s.create_task(&new, &[], &actor).await.unwrap().id;
    let mut c = sqlx::PgConnection::connect(&server_url()).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "CREATE OR REPLACE FUNCTION {}.downbeat_commit_batch(p jsonb) RETURNS jsonb \
         LANGUAGE sql AS $$ SELECT '{{\"claimed\": [], \"unexpected\": 1}}'::jsonb $$",
        guard.schema
    )))
    .execute(&mut c)
    .await
    .unwrap();
    c.close().await.unwrap();
    let batch = Batch {
        claims: vec![ClaimRequest {
            task: a,
            executor: "shell".into(),
            after: vec![],
        }],
        holder: "t".into(),
        lease_until: downbeat_core::time::Timestamp(60_000),
        ..Default::default()
    };
    match s.commit_batch(&batch, &actor).await {
        Err(Error::Database(m)) => assert!(m.contains("batch function"), "{m}"),
        other => panic!("expected a database error, got {other:?}"),
    }
    drop(s);
    let s = PostgresStore::open(&url, false).await.expect("reopen");
    let r = s.commit_batch(&batch, &actor).await.unwrap();
    assert_eq!(r.claimed.len(), 1, "{r:?}");
    assert_eq!(r.claimed[0].task, a);
}

/// Events written before they carried their task's number (schema 4) get it from migration 5.
#[tokio::test]
async fn old_events_get_their_task_numbers() {
    use downbeat_core::task::NewTask;
    let (guard, url) = guard();
    let s = PostgresStore::open(&url, true).await.expect("create");
    let mut ids = Vec::new();
    for (title, ms) in [("a", 1), ("b", 2)] {
        let new = NewTask {
            title: title.into(),
            effort: 1,
            ..Default::default()
        };
        ids.push(s.create_task(&new, &[], &at(ms)).await.unwrap().id);
    }
    let (a, b) = (ids[0], ids[1]);
    s.record_event("flag.raised", &a.to_string(), None, &at(3))
        .await
        .unwrap();
    drop(s);
    // Back to schema 4: no numbers, the old indexes; plus a decision whose record id reads
    // like `b`'s id.
    let mut c = sqlx::PgConnection::connect(&server_url()).await.unwrap();
    let n = &guard.schema;
    for stmt in [
        format!(
            "INSERT INTO {n}.events(at, actor, action, entity) VALUES (4, 'x', 'decision.added', '{b}')"
        ),
        format!("DROP INDEX {n}.events_task"),
        format!("ALTER TABLE {n}.events DROP COLUMN task_seq"),
        format!("CREATE INDEX events_entity ON {n}.events(entity)"),
        format!("CREATE INDEX events_action ON {n}.events(action)"),
        format!("DROP FUNCTION {n}.downbeat_commit_batch(jsonb)"),
        format!("ALTER TABLE {n}.attempts DROP COLUMN detail"),
        format!("DROP TABLE {n}.flags"),
        format!(
            "ALTER TABLE {n}.decisions DROP COLUMN status, DROP COLUMN decided_at, DROP COLUMN decided_why"
        ),
        format!("DELETE FROM {n}._sqlx_migrations WHERE version >= 5"),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(stmt))
            .execute(&mut c)
            .await
            .unwrap();
    }
    c.close().await.unwrap();
    let s = PostgresStore::open(&url, false).await.expect("migrate");
    let of = |t| {
        let s = &s;
        async move {
            s.events(&downbeat_store::EventQuery {
                task: Some(t),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.action)
            .collect::<Vec<_>>()
        }
    };
    assert_eq!(of(a).await, ["task.created", "flag.raised"]);
    assert_eq!(of(b).await, ["task.created"]);
}

/// The latest schema version: the number of PostgreSQL migrations shipped.
fn latest_version() -> i64 {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/postgres");
    std::fs::read_dir(dir)
        .expect("migrations")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "sql"))
        })
        .count() as i64
}

fn at(ms: i64) -> downbeat_core::context::Actor {
    downbeat_core::context::Actor::new("test", downbeat_core::time::Timestamp(ms))
}

fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_follow_the_database_clock() {
    use downbeat_store::{Batch, ClaimRequest};
    let (_guard, url) = guard();
    let store = PostgresStore::open(&url, true).await.expect("open");
    // A runner whose clock is far behind (a fixed clock in 2023) asks for a 60 s lease.
    let behind = 1_700_000_000_000;
    let a = store
        .create_task(
            &downbeat_core::task::NewTask {
                title: "a".into(),
                effort: 1,
                ..Default::default()
            },
            &[],
            &at(behind),
        )
        .await
        .unwrap()
        .id;
    let batch = Batch {
        claims: vec![ClaimRequest {
            task: a,
            executor: "noop".into(),
            after: vec![],
        }],
        holder: "slow-clock".into(),
        lease_until: downbeat_core::time::Timestamp(behind + 60_000),
        ..Default::default()
    };
    let claimed = store.commit_batch(&batch, &at(behind)).await.unwrap();
    assert_eq!(claimed.claimed.len(), 1);
    // The database and this test share a machine, so its clock is the database's.
    let near = |t: downbeat_core::time::Timestamp, want: i64| (t.0 - want).abs() < 10_000;
    let t = store.task(a).await.unwrap();
    let expires = t.lease_expires.expect("a lease");
    assert!(near(expires, wall_ms() + 60_000), "{expires:?}");
    // Caller-clock fields keep the caller's clock.
    assert_eq!(t.started_at.map(|t| t.0), Some(behind));
    // A runner whose clock is an hour ahead does not take the lease away.
    let ahead = wall_ms() + 3_600_000;
    assert!(
        store
            .requeue_running(Some(at(ahead).now), &[], &at(ahead))
            .await
            .unwrap()
            .is_empty()
    );
    // Renewal keeps the distance the holder asks for, on the database's clock.
    let held = store
        .renew_leases(
            "slow-clock",
            downbeat_core::time::Timestamp(behind + 120_000),
        )
        .await
        .unwrap();
    assert_eq!(held.len(), 1);
    let expires = store.task(a).await.unwrap().lease_expires.unwrap();
    assert!(near(expires, wall_ms() + 120_000), "{expires:?}");
    // A lease 'expired before' a point 200 s ahead of any clock is requeued.
    let requeued = store
        .requeue_running(Some(at(behind + 200_000).now), &[], &at(behind))
        .await
        .unwrap();
    assert_eq!(requeued, vec![a]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_notify_listeners() {
    let (_guard, url) = guard();
    let store = PostgresStore::open(&url, true).await.expect("open");
    let mut listener = store.listener().await.expect("listen");
    store
        .create_task(
            &downbeat_core::task::NewTask {
                title: "a".into(),
                effort: 1,
                ..Default::default()
            },
            &[],
            &at(0),
        )
        .await
        .unwrap();
    let want = store.last_event_seq().await.unwrap().to_string();
    // Other schemas of the database notify the same channel: wait for ours.
    let got = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            let n = listener.recv().await.expect("a notification");
            assert_eq!(n.channel(), downbeat_store::postgres::CHANGED_CHANNEL);
            if n.payload() == want {
                return;
            }
        }
    })
    .await;
    assert!(got.is_ok(), "no notification with payload {want}");
}

/// A quiet batch (nothing in it for other runners) commits without waking listeners; the
/// next ordinary batch does wake them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_batches_wake_no_one() {
    use downbeat_store::{Batch, ClaimRequest};
    let (guard, url) = guard();
    let store = PostgresStore::open(&url, true).await.expect("open");
    // Payloads are sequence numbers, and other tests' schemas notify the same channel: move
    // this schema's numbers far from theirs.
    let mut c = sqlx::PgConnection::connect(&server_url()).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT setval(pg_get_serial_sequence('{}.events', 'seq'), $1)",
        guard.schema
    )))
    .bind(wall_ms() * 1000 + i64::from(std::process::id() % 1000))
    .execute(&mut c)
    .await
    .unwrap();
    c.close().await.unwrap();
    let mut ids = Vec::new();
    for title in ["a", "b"] {
        let new = downbeat_core::task::NewTask {
            title: title.into(),
            effort: 1,
            ..Default::default()
        };
        ids.push(store.create_task(&new, &[], &at(0)).await.unwrap().id);
    }
    let mut listener = store.listener().await.expect("listen");
    let claim = |task, quiet| Batch {
        claims: vec![ClaimRequest {
            task,
            executor: "noop".into(),
            after: vec![],
        }],
        holder: "h".into(),
        lease_until: downbeat_core::time::Timestamp(wall_ms() + 60_000),
        quiet,
        holds_seen: None,
        ..Default::default()
    };
    assert_eq!(
        store
            .commit_batch(&claim(ids[0], true), &at(1))
            .await
            .unwrap()
            .claimed
            .len(),
        1
    );
    let hushed = store.last_event_seq().await.unwrap().to_string();
    assert_eq!(
        store
            .commit_batch(&claim(ids[1], false), &at(2))
            .await
            .unwrap()
            .claimed
            .len(),
        1
    );
    let loud = store.last_event_seq().await.unwrap().to_string();
    // Notifications arrive in commit order, and other schemas notify the same channel.
    let seen = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        let mut ours = Vec::new();
        loop {
            let n = listener.recv().await.expect("a notification");
            if n.payload() == hushed || n.payload() == loud {
                ours.push(n.payload().to_owned());
            }
            if n.payload() == loud {
                return ours;
            }
        }
    })
    .await
    .expect("the ordinary batch notifies");
    assert_eq!(seen, vec![loud]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connections_are_replaced() {
    let (guard, url) = guard();
    let app = format!("app_{}", guard.schema);
    let url = with_param(&url, &format!("application_name={app}"));
    let store = PostgresStore::open(&url, true).await.expect("open");
    store.task_count().await.unwrap();
    // The server ends every connection of the store (a restart, a failover, an idle timeout).
    let mut c = sqlx::PgConnection::connect(&server_url()).await.unwrap();
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
    )
    .bind(&app)
    .fetch_all(&mut c)
    .await
    .unwrap();
    assert!(!killed.is_empty());
    c.close().await.unwrap();
    // The next calls get a fresh connection (or, at worst, a clear error once).
    let mut ok = 0;
    for _ in 0..3 {
        match store.task_count().await {
            Ok(0) => ok += 1,
            Ok(n) => panic!("{n} tasks"),
            Err(e) => assert!(matches!(e, Error::Database(_)), "{e:?}"),
        }
    }
    assert!(ok >= 2);
}
