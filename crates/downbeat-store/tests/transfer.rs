//! Moving projects between backends (`transfer`): SQLite to PostgreSQL, PostgreSQL to SQLite,
//! SQLite to SQLite; everything arrives with its ids, counters move on, and an occupied or
//! mismatched target is refused without being touched.
//!
//! The PostgreSQL server comes from `DOWNBEAT_TEST_POSTGRES_URL`, else
//! `postgres://postgres@127.0.0.1:5432/test`. Each test works in schemas of its own, created
//! fresh and dropped at the end.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU32, Ordering};

use downbeat_core::context::{Actor, ObjectiveStatus};
use downbeat_core::plan::{self, PlanFormat};
use downbeat_core::role::RoleSet;
use downbeat_core::task::{Edge, EdgeKind, ExecSettings, NewTask, Priority, Status, TaskPatch};
use downbeat_core::time::Timestamp;
use downbeat_store::postgres::PostgresStore;
use downbeat_store::sqlite::SqliteStore;
use downbeat_store::transfer::{self, Dump, Kind, TABLES};
use downbeat_store::{
    ArtifactRecord, Batch, ClaimRequest, ContextStore, Error, EventQuery, Finish, FinishStatus,
    Store, TaskFilter, TaskStore, Transfer,
};
use serde_json::{Map, Value, json};
use sqlx::Connection;

// ------------------------------------------------------------------------------------------
// Databases

fn server_url() -> String {
    std::env::var("DOWNBEAT_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A PostgreSQL schema no other test (or test run) uses, dropped with everything in it when
/// the guard goes, even when the test panicked.
struct Schema {
    name: String,
    url: String,
}

impl Schema {
    fn new() -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let r = std::collections::hash_map::RandomState::new().hash_one(std::process::id());
        let name = format!(
            "dbt_move_{:012x}_{}",
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
        let name = self.name.clone();
        // A runtime of its own on a thread of its own: drop may run inside the test's runtime.
        let done = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(async move {
                    let mut c = sqlx::PgConnection::connect(&server_url()).await?;
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP SCHEMA IF EXISTS {name} CASCADE"
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
                self.name
            );
        }
    }
}

async fn postgres(s: &Schema) -> PostgresStore {
    PostgresStore::open(&s.url, true)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {}: {e}", downbeat_store::redact_url(&s.url)))
}

async fn sqlite(dir: &tempfile::TempDir, name: &str) -> SqliteStore {
    SqliteStore::open(&dir.path().join(name), true)
        .await
        .expect("open sqlite")
}

// ------------------------------------------------------------------------------------------
// A project using every table

fn at(ms: i64) -> Actor {
    Actor::new("builder", Timestamp(1_760_000_000_000 + ms))
}

const PLAN: &str = r#"
[plan]
name = "Move me"

[[objectives]]
title = "Everything arrives"
tasks = ["epic"]

[[tasks]]
key = "epic"
title = "Epic"
description = "A container with children."
role = "architect"

[[tasks]]
key = "design"
parent = "epic"
title = "Design"
role = "architect"
priority = "high"
effort = 2
acceptance = ["a \"quoted\" line", "ünïcödé ✓"]
files = ["docs/design.md"]

[[tasks]]
key = "build"
parent = "epic"
title = "Build"
role = "implementer"
depends_on = ["design"]
files = ["src/lib.rs", "src/main.rs"]

[[tasks]]
key = "test"
parent = "epic"
title = "Test"
role = "tester"
depends_on = ["build"]

[[tasks]]
key = "review"
title = "Review"
role = "reviewer"
depends_on = ["epic"]

[[decisions]]
text = "Keep ids"
why = "short ids are in commit messages"
task = "design"
"#;

/// Fills `s` with a bit of everything: containers, edges of every kind, sessions (one still
/// open), objectives, insights, decisions with a supersession, artifacts, attempts that
/// completed, will retry and still run, an archived task, free events and meta entries.
async fn build(s: &dyn Store) {
    let first = s.start_session("planning", &at(0)).await.unwrap();
    let mut a = at(1);
    a.session = Some(first.id);
    let file = plan::parse(PLAN, PlanFormat::Toml).unwrap();
    let v = plan::validate(&file, &RoleSet::builtin(), &|_| None, &|_| false).unwrap();
    let applied = s.apply_plan(&v, &a).await.unwrap();
    let id = |k: &str| {
        applied
            .tasks
            .iter()
            .find(|(key, _)| key.as_deref() == Some(k))
            .unwrap()
            .1
    };
    let loose = s
        .create_task(
            &NewTask {
                title: "Loose end".into(),
                description: "with\nnewlines and 'quotes' and a tab\t".into(),
                role: Some("implementer".into()),
                priority: Priority::Critical,
                effort: 5,
                tags: vec!["infra".into(), "x".into()],
                footprint: vec!["Cargo.toml".into()],
                acceptance: vec![],
                exec: ExecSettings {
                    executor: Some(r#"{"type":"process","argv":["true"]}"#.into()),
                    timeout: Some(std::time::Duration::from_secs(90)),
                    max_attempts: Some(3),
                },
                ..Default::default()
            },
            &[],
            &at(2),
        )
        .await
        .unwrap()
        .id;
    let chore = s
        .create_task(
            &NewTask {
                title: "Chore".into(),
                key: Some("chore".into()),
                effort: 1,
                ..Default::default()
            },
            &[],
            &at(3),
        )
        .await
        .unwrap()
        .id;
    let dropped = s
        .create_task(
            &NewTask {
                title: "Dropped".into(),
                effort: 1,
                ..Default::default()
            },
            &[chore],
            &at(3),
        )
        .await
        .unwrap()
        .id;
    s.add_edge(
        Edge {
            from: loose,
            to: id("build"),
            kind: EdgeKind::Related,
        },
        &at(4),
    )
    .await
    .unwrap();
    s.add_edge(
        Edge {
            from: id("design"),
            to: loose,
            kind: EdgeKind::DiscoveredFrom,
        },
        &at(4),
    )
    .await
    .unwrap();
    s.update_task(
        chore,
        &TaskPatch {
            description: Some("edited".into()),
            ..Default::default()
        },
        &at(5),
    )
    .await
    .unwrap();

    // Attempts: the chore completes (with an artifact), the design fails once and waits for
    // its retry, the loose end keeps running under its lease.
    let claimed = s
        .commit_batch(
            &Batch {
                claims: [chore, id("design"), loose]
                    .iter()
                    .map(|&task| ClaimRequest {
                        task,
                        executor: "noop".into(),
                        after: vec![],
                    })
                    .collect(),
                holder: "runner-1".into(),
                lease_until: at(60_000).now,
                ..Default::default()
            },
            &at(10),
        )
        .await
        .unwrap()
        .claimed;
    assert_eq!(claimed.len(), 3);
    let of = |t| claimed.iter().find(|c| c.task == t).unwrap();
    let finish = |t, status, outcome: &str| Finish {
        task: t,
        epoch: of(t).epoch,
        attempt_id: of(t).attempt_id,
        status,
        outcome: outcome.into(),
        exit_code: Some(if outcome == "succeeded" { 0 } else { 2 }),
        error: (outcome != "succeeded").then(|| "exit status 2".into()),
        summary: Some(format!("{outcome} ✓")),
        tokens: Some((1_200, 340)),
        detail: downbeat_core::attempt::AttemptDetail {
            agent: Some("claude".into()),
            session: Some(format!("session-{t}")),
            cost_usd: Some(0.125),
            git: None,
        },
        artifacts: vec![ArtifactRecord {
            path: format!("out/{t}.txt"),
            size: 42,
            sha256: "ab".repeat(32),
        }],
        effects: vec![],
    };
    let r = s
        .commit_batch(
            &Batch {
                finishes: vec![
                    Finish {
                        // A flag with a detail, recorded with the completion.
                        effects: vec![downbeat_core::flags::Effect::RecordFlag {
                            task: chore,
                            flag: "ODD".into(),
                            detail: "a 'quoted' detail".into(),
                            state: downbeat_core::flags::FlagState::Raised,
                            note: "no rule for this flag".into(),
                        }],
                        ..finish(chore, FinishStatus::Completed, "succeeded")
                    },
                    finish(
                        id("design"),
                        FinishStatus::Retry {
                            not_before: at(120_000).now,
                        },
                        "failed",
                    ),
                ],
                holder: "runner-1".into(),
                lease_until: at(60_000).now,
                ..Default::default()
            },
            &at(20),
        )
        .await
        .unwrap();
    assert!(r.rejected.is_empty());
    s.set_status(dropped, Status::Cancelled, Some("not needed"), &at(21))
        .await
        .unwrap();

    // Context records.
    let o = s
        .add_objective("Nothing is lost", &[loose, chore], &at(22))
        .await
        .unwrap();
    s.set_objective_status(o.id, ObjectiveStatus::Achieved, &at(23))
        .await
        .unwrap();
    s.add_insight("ids survive the move", Some(loose), &at(24))
        .await
        .unwrap();
    s.add_insight("a project-wide note", None, &at(24))
        .await
        .unwrap();
    let d = s
        .add_decision("Use SQLite", "simple", None, None, &at(25))
        .await
        .unwrap();
    s.add_decision("Use PostgreSQL", "shared", Some(chore), Some(d.id), &at(26))
        .await
        .unwrap();
    s.add_artifact(loose, "docs/notes.md", None, None, &at(27))
        .await
        .unwrap();
    s.archive(&[chore], &at(28)).await.unwrap();
    s.record_event(
        "handover.written",
        "project",
        Some(json!({"path": ".downbeat/handover.md", "n": [1, 2.5, null, "x"]})),
        &at(29),
    )
    .await
    .unwrap();
    s.meta_set("handover.at", "1760000000029").await.unwrap();
    s.end_session(first.id, &at(30)).await.unwrap();
    s.start_session("execution", &at(31)).await.unwrap();
}

// ------------------------------------------------------------------------------------------
// Comparing

/// Every row of every table, with JSON columns parsed (PostgreSQL and SQLite spell the same
/// JSON differently) and the PostgreSQL-only `lease_skew` left out.
fn rows(d: &Dump) -> Vec<(&'static str, Vec<Map<String, Value>>)> {
    d.tables
        .iter()
        .map(|t| {
            let mut rows = t.table_rows();
            for r in &mut rows {
                r.remove("lease_skew");
                for c in t.table.columns.iter().filter(|c| c.kind == Kind::Json) {
                    if let Some(Value::String(s)) = r.get(c.name) {
                        let parsed: Value = serde_json::from_str(s).expect("JSON column");
                        r.insert(c.name.to_owned(), parsed);
                    }
                }
            }
            (t.table.name, rows)
        })
        .collect()
}

trait Decode {
    fn table_rows(&self) -> Vec<Map<String, Value>>;
}

impl Decode for transfer::TableDump {
    fn table_rows(&self) -> Vec<Map<String, Value>> {
        let mut r = self.decode().expect("decodes");
        // Order by key, whatever order the backend read in.
        let key = self.table.key;
        r.sort_by(|a, b| {
            let k = |m: &Map<String, Value>| {
                key.iter()
                    .map(|c| m.get(*c).map(Value::to_string).unwrap_or_default())
                    .collect::<Vec<_>>()
            };
            k(a).cmp(&k(b))
        });
        r
    }
}

/// The source and the target agree on everything the store shows, field by field.
async fn assert_same(source: &dyn Transfer, target: &dyn Transfer) {
    let all = TaskFilter {
        include_archived: true,
        ..Default::default()
    };
    let tasks = source.tasks(&all).await.unwrap();
    assert!(tasks.len() >= 8);
    assert_eq!(tasks, target.tasks(&all).await.unwrap());
    for t in &tasks {
        assert_eq!(
            source.edges_of(t.id).await.unwrap(),
            target.edges_of(t.id).await.unwrap()
        );
        assert_eq!(
            source.attempts(t.id).await.unwrap(),
            target.attempts(t.id).await.unwrap()
        );
    }
    assert_eq!(source.edges().await.unwrap(), target.edges().await.unwrap());
    assert_eq!(
        source.sessions().await.unwrap(),
        target.sessions().await.unwrap()
    );
    assert_eq!(
        source.current_session().await.unwrap(),
        target.current_session().await.unwrap()
    );
    assert_eq!(
        source.objectives().await.unwrap(),
        target.objectives().await.unwrap()
    );
    assert_eq!(
        source.insights().await.unwrap(),
        target.insights().await.unwrap()
    );
    assert_eq!(
        source.decisions().await.unwrap(),
        target.decisions().await.unwrap()
    );
    assert_eq!(
        source.artifacts().await.unwrap(),
        target.artifacts().await.unwrap()
    );
    let events = source.events(&EventQuery::default()).await.unwrap();
    assert!(events.len() > 20);
    assert_eq!(events, target.events(&EventQuery::default()).await.unwrap());
    assert_eq!(
        source.last_event_seq().await.unwrap(),
        target.last_event_seq().await.unwrap()
    );
    assert_eq!(
        source.meta_get("handover.at").await.unwrap(),
        target.meta_get("handover.at").await.unwrap()
    );
    assert_eq!(
        source.metrics().await.unwrap(),
        target.metrics().await.unwrap()
    );
    assert_eq!(
        source.lease_holders().await.unwrap(),
        target.lease_holders().await.unwrap()
    );
    assert_eq!(
        source.row_counts().await.unwrap(),
        target.row_counts().await.unwrap()
    );
    // And row by row, every column of every table.
    let (a, b) = (
        source.export().await.unwrap(),
        target.export().await.unwrap(),
    );
    assert_eq!(rows(&a), rows(&b));
}

/// New rows on the target continue the source's numbering: the next task gets the id the
/// source would give it, and no record id or event number is handed out twice.
async fn assert_counters_moved_on(source: &dyn Store, target: &dyn Store) {
    let new = NewTask {
        title: "After the move".into(),
        effort: 1,
        ..Default::default()
    };
    let existing: Vec<_> = target
        .tasks(&TaskFilter {
            include_archived: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    let last_event = target.last_event_seq().await.unwrap();
    let t = target.create_task(&new, &[], &at(100)).await.unwrap();
    assert!(!existing.contains(&t.id), "{} reused", t.id);
    assert_eq!(
        t.id,
        source.create_task(&new, &[], &at(100)).await.unwrap().id
    );
    assert!(target.last_event_seq().await.unwrap() > last_event);
    let ds = target.decisions().await.unwrap();
    let d = target
        .add_decision("After", "the move", None, None, &at(101))
        .await
        .unwrap();
    assert!(ds.iter().all(|o| o.id.num < d.id.num));
    let ss = target.sessions().await.unwrap();
    let s = target.start_session("after", &at(102)).await.unwrap();
    assert!(ss.iter().all(|o| o.id.num < s.id.num));
    let os = target.objectives().await.unwrap();
    let o = target
        .add_objective("after", &[t.id], &at(103))
        .await
        .unwrap();
    assert!(os.iter().all(|x| x.id.num < o.id.num));
    let is = target.insights().await.unwrap();
    let i = target.add_insight("after", None, &at(104)).await.unwrap();
    assert!(is.iter().all(|x| x.id.num < i.id.num));
    // A claim's attempt id lies past the copied ones.
    let before: Vec<downbeat_core::ids::AttemptId> = {
        let mut ids = Vec::new();
        for id in &existing {
            ids.extend(
                target
                    .attempts(*id)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|a| a.id),
            );
        }
        ids
    };
    assert!(!before.is_empty());
    let c = target
        .commit_batch(
            &Batch {
                claims: vec![ClaimRequest {
                    task: t.id,
                    executor: "noop".into(),
                    after: vec![],
                }],
                holder: "runner-2".into(),
                lease_until: at(200_000).now,
                ..Default::default()
            },
            &at(105),
        )
        .await
        .unwrap();
    let attempt = c.claimed[0].attempt_id;
    assert!(
        before.iter().all(|&a| a < attempt),
        "{attempt} vs {before:?}"
    );
}

// ------------------------------------------------------------------------------------------
// Cases

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_to_postgres_and_back() {
    let dir = tempfile::tempdir().unwrap();
    let source = sqlite(&dir, "source.db").await;
    build(&source).await;
    let schema = Schema::new();
    let pg = postgres(&schema).await;
    let counts = transfer::copy(&source, &pg)
        .await
        .expect("sqlite to postgres");
    assert_eq!(counts, source.row_counts().await.unwrap());
    assert!(counts.iter().all(|(_, n)| *n > 0), "{counts:?}");
    assert_same(&source, &pg).await;

    // And back into a new SQLite file: the round trip loses nothing.
    let back = sqlite(&dir, "back.db").await;
    transfer::copy(&pg, &back)
        .await
        .expect("postgres to sqlite");
    assert_same(&source, &back).await;

    assert_counters_moved_on(&source, &pg).await;
    // `build` is deterministic: a twin of the source shows what comes next after it.
    let twin = sqlite(&dir, "twin.db").await;
    build(&twin).await;
    assert_counters_moved_on(&twin, &back).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_to_sqlite() {
    let schema = Schema::new();
    let source = postgres(&schema).await;
    build(&source).await;
    let dir = tempfile::tempdir().unwrap();
    let target = sqlite(&dir, "moved.db").await;
    transfer::copy(&source, &target)
        .await
        .expect("postgres to sqlite");
    assert_same(&source, &target).await;
    assert_counters_moved_on(&source, &target).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_to_postgres_keeps_lease_skew() {
    let (a, b) = (Schema::new(), Schema::new());
    let source = postgres(&a).await;
    build(&source).await;
    let target = postgres(&b).await;
    transfer::copy(&source, &target).await.unwrap();
    assert_same(&source, &target).await;
    let skews = |d: &Dump| -> Vec<Value> {
        d.table("tasks")
            .unwrap()
            .table_rows()
            .iter()
            .map(|r| r["lease_skew"].clone())
            .collect()
    };
    let from = skews(&source.export().await.unwrap());
    // The test's fixed clock is far from the database's: the running task has a skew.
    assert!(from.iter().any(|v| v.as_i64() != Some(0)), "{from:?}");
    assert_eq!(from, skews(&target.export().await.unwrap()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_to_sqlite_through_urls() {
    let dir = tempfile::tempdir().unwrap();
    let source = sqlite(&dir, "a.db").await;
    build(&source).await;
    let from = format!("sqlite:{}", dir.path().join("a.db").display());
    let to = format!("sqlite:{}", dir.path().join("sub/b.db").display());
    let done = transfer::migrate(&from, &to).await.expect("copy");
    assert_eq!(done.tables, source.row_counts().await.unwrap());
    let target = sqlite(&dir, "sub/b.db").await;
    assert_same(&source, &target).await;
    assert_counters_moved_on(&source, &target).await;
    // A missing source is not created.
    let missing = format!("sqlite:{}", dir.path().join("none.db").display());
    let e = transfer::migrate(
        &missing,
        &format!("sqlite:{}", dir.path().join("c.db").display()),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, Error::Open { .. }), "{e:?}");
    assert!(!dir.path().join("none.db").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_occupied_target_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let source = sqlite(&dir, "source.db").await;
    build(&source).await;
    // PostgreSQL target with one task.
    let schema = Schema::new();
    let pg = postgres(&schema).await;
    pg.create_task(
        &NewTask {
            title: "already here".into(),
            effort: 1,
            ..Default::default()
        },
        &[],
        &at(0),
    )
    .await
    .unwrap();
    let before = rows(&pg.export().await.unwrap());
    let e = transfer::copy(&source, &pg).await.unwrap_err();
    match &e {
        Error::NotEmpty { location, holds } => {
            assert!(location.contains(&schema.name), "{location}");
            assert!(holds.contains("1 task"), "{holds}");
            assert!(holds.contains("1 event"), "{holds}");
        }
        other => panic!("expected NotEmpty, got {other:?}"),
    }
    assert_eq!(before, rows(&pg.export().await.unwrap()));
    // Import itself checks too (inside its transaction), and so does SQLite; a target holding
    // only settings is not empty either.
    let dump = source.export().await.unwrap();
    assert!(matches!(
        pg.import(&dump).await,
        Err(Error::NotEmpty { .. })
    ));
    let other = sqlite(&dir, "other.db").await;
    other.meta_set("handover.at", "1").await.unwrap();
    match other.import(&dump).await {
        Err(Error::NotEmpty { holds, .. }) => assert!(holds.contains("handover.at"), "{holds}"),
        r => panic!("expected NotEmpty, got {r:?}"),
    }
    assert_eq!(other.task_count().await.unwrap(), 0);
    // Into itself: not empty either.
    assert!(matches!(
        transfer::copy(&source, &source).await,
        Err(Error::NotEmpty { .. })
    ));
}

/// A dump whose `tasks` rows break a constraint part-way: everything written before is rolled
/// back.
fn broken(mut d: Dump) -> Dump {
    let tasks = d
        .tables
        .iter_mut()
        .find(|t| t.table.name == "tasks")
        .unwrap();
    let mut rows = tasks.decode().unwrap();
    rows.last_mut().unwrap().insert("title".into(), Value::Null);
    tasks.chunks = vec![serde_json::to_string(&rows).unwrap()];
    d
}

async fn assert_empty(s: &dyn Transfer) {
    let counts = s.row_counts().await.unwrap();
    assert!(
        counts
            .iter()
            .all(|(t, n)| *n == 0 || (*t == "meta" && *n == 1)),
        "{counts:?}"
    );
    assert_eq!(
        s.meta_get("next_task_seq").await.unwrap().as_deref(),
        Some("1")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_import_leaves_the_target_empty() {
    let dir = tempfile::tempdir().unwrap();
    let source = sqlite(&dir, "source.db").await;
    build(&source).await;
    let dump = broken(source.export().await.unwrap());
    let schema = Schema::new();
    let pg = postgres(&schema).await;
    let pg_indexes = || async {
        let mut c = sqlx::PgConnection::connect(&server_url()).await.unwrap();
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = $1 ORDER BY indexname",
        )
        .bind(&schema.name)
        .fetch_all(&mut c)
        .await
        .unwrap();
        c.close().await.unwrap();
        names
    };
    let target_file = dir.path().join("target.db");
    let sqlite_indexes = || async {
        let mut c = sqlx::SqliteConnection::connect(&format!("sqlite:{}", target_file.display()))
            .await
            .unwrap();
        let names: Vec<String> =
            sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'index' ORDER BY name")
                .fetch_all(&mut c)
                .await
                .unwrap();
        c.close().await.unwrap();
        names
    };
    let pg_before = pg_indexes().await;
    assert!(pg_before.len() > 10, "{pg_before:?}");
    let e = pg.import(&dump).await.unwrap_err();
    assert!(e.to_string().contains("title"), "{e}");
    assert_empty(&pg).await;
    assert_eq!(pg_indexes().await, pg_before);
    let target = sqlite(&dir, "target.db").await;
    let sqlite_before = sqlite_indexes().await;
    assert!(sqlite_before.len() > 5, "{sqlite_before:?}");
    let e = target.import(&dump).await.unwrap_err();
    assert!(e.to_string().contains("title"), "{e}");
    assert_empty(&target).await;
    assert_eq!(sqlite_indexes().await, sqlite_before);
    // The targets are still usable as such, and keep their indexes.
    transfer::copy(&source, &pg).await.unwrap();
    transfer::copy(&source, &target).await.unwrap();
    assert_eq!(pg_indexes().await, pg_before);
    assert_eq!(sqlite_indexes().await, sqlite_before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_and_unknown_columns_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let source = sqlite(&dir, "source.db").await;
    build(&source).await;
    let mut dump = source.export().await.unwrap();
    dump.version += 1;
    let target = sqlite(&dir, "target.db").await;
    match target.import(&dump).await {
        Err(Error::SchemaMismatch {
            from_version,
            to_version,
        }) => assert_eq!(from_version, to_version + 1),
        r => panic!("expected SchemaMismatch, got {r:?}"),
    }
    assert_empty(&target).await;
    // A column this version does not know would be lost: refused.
    drop(source);
    let mut c = sqlx::SqliteConnection::connect(&format!(
        "sqlite:{}",
        dir.path().join("source.db").display()
    ))
    .await
    .unwrap();
    sqlx::query("ALTER TABLE tasks ADD COLUMN weight INTEGER")
        .execute(&mut c)
        .await
        .unwrap();
    c.close().await.unwrap();
    let source = sqlite(&dir, "source.db").await;
    let e = source.export().await.unwrap_err();
    assert!(e.to_string().contains("weight"), "{e}");
}

#[tokio::test]
async fn every_column_is_mapped_on_both_backends() {
    // Exporting checks the live schema against `TABLES`: an empty database of each backend
    // exports without complaint, with every table present.
    let dir = tempfile::tempdir().unwrap();
    let s = sqlite(&dir, "empty.db").await;
    let d = s.export().await.unwrap();
    assert_eq!(d.tables.len(), TABLES.len());
    let schema = Schema::new();
    let p = postgres(&schema).await;
    let d = p.export().await.unwrap();
    assert_eq!(d.tables.len(), TABLES.len());
    assert_eq!(d.table("meta").unwrap().rows, 1);
}
