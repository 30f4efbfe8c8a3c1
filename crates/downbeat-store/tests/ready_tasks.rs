//! `Store::ready_tasks` (the SQL fast path) against the planner's ready set, on random small
//! graphs, on SQLite and on PostgreSQL.
//!
//! The planner (`downbeat_core::graph::plan`) is the reference. The fast path documents two
//! differences, both leaving tasks out: a task whose retry time (`not_before`) has not come,
//! and a task blocked (directly or through an ancestor) by a container, whatever the
//! container's progress. Apart from those the two sets must be equal, and the fast path's
//! order must be priority first, then creation order, with `limit` taking a prefix.

use std::collections::BTreeSet;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU32, Ordering};

use downbeat_core::context::Actor;
use downbeat_core::graph::{PlanSettings, plan};
use downbeat_core::ids::TaskId;
use downbeat_core::task::{Edge, EdgeKind, NewTask, Status};
use downbeat_core::time::Timestamp;
use downbeat_store::Store;
use downbeat_store::postgres::PostgresStore;
use downbeat_store::sqlite::SqliteStore;
use proptest::prelude::*;
use proptest::sample::Index;
use sqlx::Connection;

const NOW: i64 = 1_000_000;
/// Pending (the candidates) and finished (the satisfied blockers) come most often.
const STATUSES: [Status; 10] = [
    Status::Pending,
    Status::Pending,
    Status::Pending,
    Status::Completed,
    Status::Completed,
    Status::Skipped,
    Status::Running,
    Status::Failed,
    Status::Blocked,
    Status::Cancelled,
];

/// One random project: per task its parent (an earlier task), status, priority rank and retry
/// time; and `blocks` edges between any two tasks (those closing a cycle are refused).
#[derive(Debug, Clone)]
struct Case {
    tasks: Vec<TaskSpec>,
    edges: Vec<(Index, Index)>,
}

#[derive(Debug, Clone)]
struct TaskSpec {
    parent: Option<Index>,
    status: Status,
    priority: i64,
    /// None: no retry time; true: due (at or before now); false: later.
    due: Option<bool>,
}

fn case() -> impl Strategy<Value = Case> {
    let task = (
        prop::option::weighted(0.5, any::<Index>()),
        prop::sample::select(STATUSES.to_vec()),
        0i64..4,
        prop::option::weighted(0.2, any::<bool>()),
    )
        .prop_map(|(parent, status, priority, due)| TaskSpec {
            parent,
            status,
            priority,
            due,
        });
    (
        prop::collection::vec(task, 1..9),
        prop::collection::vec((any::<Index>(), any::<Index>()), 0..12),
    )
        .prop_map(|(tasks, edges)| Case { tasks, edges })
}

/// Raw access to the database behind a store, to write rows the API would refuse (any status
/// on any task, retry times).
enum Raw {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl Raw {
    async fn exec(&mut self, sql: &'static str, binds: &[Option<i64>], status: Option<&str>) {
        macro_rules! run {
            ($c:expr, $sql:expr) => {{
                let mut q = sqlx::query($sql);
                if let Some(s) = status {
                    q = q.bind(s.to_owned());
                }
                for b in binds {
                    q = q.bind(*b);
                }
                q.execute($c).await.expect("raw statement");
            }};
        }
        match self {
            Raw::Sqlite(c) => run!(&mut *c, sql),
            Raw::Postgres(c) => {
                // The same statement with numbered parameters.
                let mut n = 0;
                let numbered: String = sql
                    .chars()
                    .map(|ch| {
                        if ch == '?' {
                            n += 1;
                            format!("${n}")
                        } else {
                            ch.to_string()
                        }
                    })
                    .collect();
                run!(&mut *c, sqlx::AssertSqlSafe(numbered))
            }
        }
    }
}

/// Empties the project (tasks and edges) so the next case starts from task 1.
async fn reset(raw: &mut Raw) {
    raw.exec("DELETE FROM edges", &[], None).await;
    raw.exec("DELETE FROM attempts", &[], None).await;
    raw.exec("DELETE FROM tasks", &[], None).await;
    raw.exec(
        "UPDATE meta SET value = '1' WHERE key = 'next_task_seq'",
        &[],
        None,
    )
    .await;
}

/// Builds the case, then compares the fast path with the planner.
async fn check(store: &dyn Store, raw: &mut Raw, case: &Case) -> Result<(), TestCaseError> {
    reset(raw).await;
    let actor = Actor::new("prop", Timestamp(NOW));
    let n = case.tasks.len();
    let mut ids: Vec<TaskId> = Vec::with_capacity(n);
    let mut parent_of: Vec<Option<usize>> = Vec::with_capacity(n);
    for (i, t) in case.tasks.iter().enumerate() {
        let parent = match (&t.parent, i) {
            (Some(ix), i) if i > 0 => Some(ix.index(i)),
            _ => None,
        };
        let new = NewTask {
            title: format!("t{i}"),
            parent: parent.map(|p| ids[p]),
            ..Default::default()
        };
        ids.push(
            store
                .create_task(&new, &[], &actor)
                .await
                .expect("create")
                .id,
        );
        parent_of.push(parent);
    }
    for (f, t) in &case.edges {
        let (f, t) = (f.index(n), t.index(n));
        let edge = Edge {
            from: ids[f],
            to: ids[t],
            kind: EdgeKind::Blocks,
        };
        // Self edges and cycles (through parents too) are refused: the case goes on without.
        let _ = store.add_edge(edge, &actor).await;
    }
    for (i, t) in case.tasks.iter().enumerate() {
        let not_before = t.due.map(|due| if due { NOW } else { NOW + 1 });
        raw.exec(
            "UPDATE tasks SET status = ?, priority = ?, not_before = ? WHERE seq = ?",
            &[Some(t.priority), not_before, Some(i64::from(ids[i].seq()))],
            Some(t.status.as_str()),
        )
        .await;
    }

    let snap = store.graph().await.expect("graph");
    let planned = plan(&snap, &PlanSettings::default()).expect("no cycle");
    let core: BTreeSet<TaskId> = planned.ready.iter().copied().collect();

    let is_container = |i: usize| parent_of.contains(&Some(i));
    let edges = store.edges().await.expect("edges");
    let index_of = |id: TaskId| ids.iter().position(|&x| x == id).expect("known task");
    // The task and its ancestors.
    let line = |mut i: usize| {
        let mut v = vec![i];
        while let Some(p) = parent_of[i] {
            v.push(p);
            i = p;
        }
        v
    };
    let blocked_by_container = |i: usize| {
        let line = line(i);
        edges.iter().any(|e| {
            e.kind == EdgeKind::Blocks
                && line.contains(&index_of(e.to))
                && is_container(index_of(e.from))
        })
    };
    let expected: BTreeSet<TaskId> = core
        .iter()
        .copied()
        .filter(|&id| {
            let i = index_of(id);
            case.tasks[i].due != Some(false) && !blocked_by_container(i)
        })
        .collect();

    let all = store
        .ready_tasks(100, Timestamp(NOW))
        .await
        .expect("ready tasks");
    let fast: BTreeSet<TaskId> = all.iter().map(|t| t.id).collect();
    prop_assert_eq!(fast.len(), all.len(), "no task twice");
    prop_assert!(
        fast.is_subset(&core),
        "the fast path offers tasks the planner does not: {:?} (planner {:?})",
        fast.difference(&core).collect::<Vec<_>>(),
        core
    );
    prop_assert_eq!(&fast, &expected, "planner ready set {:?}", core);
    // Priority first, then creation order; `limit` takes a prefix of that order.
    let order: Vec<(i64, u32)> = all
        .iter()
        .map(|t| (-i64::from(t.priority.rank()), t.id.seq()))
        .collect();
    let mut sorted = order.clone();
    sorted.sort_unstable();
    prop_assert_eq!(order, sorted);
    let two = store
        .ready_tasks(2, Timestamp(NOW))
        .await
        .expect("ready tasks");
    let prefix: Vec<TaskId> = all.iter().take(2).map(|t| t.id).collect();
    prop_assert_eq!(two.iter().map(|t| t.id).collect::<Vec<_>>(), prefix);
    Ok(())
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn sqlite_fast_path_agrees_with_the_planner() {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("ready.db");
    let (store, raw) = rt.block_on(async {
        let store = SqliteStore::open(&path, true).await.expect("open");
        let raw = sqlx::SqliteConnection::connect(&format!("sqlite:{}", path.display()))
            .await
            .expect("raw connection");
        (store, Raw::Sqlite(raw))
    });
    let raw = std::cell::RefCell::new(raw);
    proptest!(config(), |(c in case())| {
        rt.block_on(check(&store, &mut raw.borrow_mut(), &c))?;
    });
}

fn server_url() -> String {
    std::env::var("DOWNBEAT_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A schema no other test run uses, dropped at the end.
fn fresh_schema() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let r = std::collections::hash_map::RandomState::new().hash_one(std::process::id());
    format!(
        "dbt_ready_{:012x}_{}",
        r & 0xffff_ffff_ffff,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

#[test]
fn postgres_fast_path_agrees_with_the_planner() {
    let rt = runtime();
    let schema = fresh_schema();
    let base = server_url();
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}schema={schema}");
    let (store, raw) = rt.block_on(async {
        let store = PostgresStore::open(&url, true)
            .await
            .unwrap_or_else(|e| panic!("open {}: {e}", downbeat_store::redact_url(&url)));
        let mut raw = sqlx::PgConnection::connect(&base)
            .await
            .expect("raw connection");
        sqlx::query(sqlx::AssertSqlSafe(format!("SET search_path TO {schema}")))
            .execute(&mut raw)
            .await
            .expect("search path");
        (store, Raw::Postgres(raw))
    });
    let raw = std::cell::RefCell::new(raw);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        proptest!(config(), |(c in case())| {
            rt.block_on(check(&store, &mut raw.borrow_mut(), &c))?;
        });
    }));
    rt.block_on(store.drop_schema())
        .expect("drop the test schema");
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}
