//! The graph snapshot and its plan, kept between calls and checked against the event log on
//! every call.
//!
//! Several servers, CLIs, runners and workers may share the database, so a kept [`View`] is
//! never trusted as it is: each call first asks the store for the events after the one the
//! view was built at. None: the view is current. Only task status changes (and records that
//! leave the graph alone): they are applied to the kept snapshot (in place when no other call
//! holds it), which is planned again without reading the graph. Anything else (new tasks,
//! edges, field changes, archiving, repairs, unknown events, or more than [`FOLLOW_LIMIT`]):
//! the snapshot is read again.
//!
//! This is sound because every write that changes what the snapshot holds (live tasks with
//! their key, parent, title, status, role, effort, priority and files; live edges) appends an
//! event in the same transaction, and event sequence numbers follow commit order on both
//! backends: a reader that has seen event N never later finds a committed event below N. The
//! sequence number is read before the snapshot, so a view holds at least what its number
//! says, and every later change shows up as a later event. The `report status` answer kept
//! with a view also holds the objectives, which change only with events too.
//!
//! Nothing kept depends on the clock: the snapshot has no retry times or lease expiry (lease
//! renewals write no event and change nothing here), and a claim requeues expired leases (a
//! write with its events) before it looks.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use downbeat_core::context::Event;
use downbeat_core::events::{EventKind, GraphEffect};
use downbeat_core::graph::{self, GraphSnapshot, GraphTask, PlanSettings, Planned, Progress};
use downbeat_core::ids::TaskId;
use downbeat_core::task::Status;
use downbeat_store::EventQuery;
use serde_json::Value;

use crate::error::{Error, Kind};
use crate::project::Project;

/// At most this many events are applied to a kept view; more, and the snapshot is read again.
pub const FOLLOW_LIMIT: u32 = 64;

/// The settings the kept plan is made with: the project's, without worker counts (only `plan
/// waves` estimates makespans, from the kept snapshot).
fn settings_of(p: &Project) -> PlanSettings {
    let mut s = p.plan_settings();
    s.workers.clear();
    s
}

/// Whether two plans' settings are the same (every field: a new one must be added here).
fn same(a: &PlanSettings, b: &PlanSettings) -> bool {
    let PlanSettings {
        role_caps,
        groups,
        workers,
    } = a;
    *role_caps == b.role_caps && *groups == b.groups && *workers == b.workers
}

/// The snapshot of the live graph as of event `seq`, planned, with what the tools look up.
pub struct View {
    /// The last event this view reflects.
    seq: i64,
    /// The settings it was planned with, without worker counts (the settings may change while
    /// the server runs).
    settings: PlanSettings,
    pub snap: GraphSnapshot,
    /// The plan without makespan estimates.
    pub planned: Planned,
    lookup: Arc<Lookup>,
    /// Made on first use (a claim needs none of them).
    rollup: OnceLock<HashMap<TaskId, Progress>>,
    pending: OnceLock<crate::tasks::Pending>,
    waiting: OnceLock<HashMap<TaskId, Vec<TaskId>>>,
    status: tokio::sync::OnceCell<Value>,
}

/// What depends only on which tasks are live, their parents and keys: shared by the views that
/// follow one another through status changes.
struct Lookup {
    /// Position of each task in `snap.tasks`.
    index: HashMap<TaskId, usize>,
    /// Live children of each container, in `seq` order.
    children: HashMap<TaskId, Vec<TaskId>>,
    keys: HashMap<String, TaskId>,
}

impl Lookup {
    fn of(snap: &GraphSnapshot) -> Self {
        let index: HashMap<TaskId, usize> = snap
            .tasks
            .iter()
            .enumerate()
            .map(|(i, t)| (t.id, i))
            .collect();
        let mut children: HashMap<TaskId, Vec<TaskId>> = HashMap::new();
        for t in &snap.tasks {
            if let Some(pa) = t.parent.filter(|pa| index.contains_key(pa)) {
                children.entry(pa).or_default().push(t.id);
            }
        }
        let keys = snap
            .tasks
            .iter()
            .filter_map(|t| t.key.as_ref().map(|k| (k.clone(), t.id)))
            .collect();
        Self {
            index,
            children,
            keys,
        }
    }
}

impl View {
    fn build(seq: i64, settings: PlanSettings, snap: GraphSnapshot) -> Result<Self, Error> {
        let lookup = Arc::new(Lookup::of(&snap));
        Self::plan(seq, settings, snap, lookup)
    }

    /// Plans `snap`, whose tasks `lookup` was made for.
    fn plan(
        seq: i64,
        settings: PlanSettings,
        snap: GraphSnapshot,
        lookup: Arc<Lookup>,
    ) -> Result<Self, Error> {
        let planned = graph::plan(&snap, &settings).map_err(|c| {
            Error::new(Kind::Conflict, format!("the stored graph is damaged: {c}"))
                .with_hint("run maintenance and remove one of the dependencies")
        })?;
        Ok(Self {
            seq,
            settings,
            snap,
            planned,
            lookup,
            rollup: OnceLock::new(),
            pending: OnceLock::new(),
            waiting: OnceLock::new(),
            status: tokio::sync::OnceCell::new(),
        })
    }

    /// The `report status` answer as of this view, made by `make` on first use. It holds the
    /// objectives too, which change only with events, like everything else the view holds: a
    /// view is used only while no event came after it.
    pub async fn status<F, Fut>(&self, make: F) -> Result<&Value, Error>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Value, Error>>,
    {
        self.status.get_or_try_init(make).await
    }

    /// The last event this view reflects: a client that follows the log goes on after it.
    pub fn seq(&self) -> i64 {
        self.seq
    }

    /// Status and progress rolled up the hierarchy.
    pub fn rollup(&self) -> &HashMap<TaskId, Progress> {
        self.rollup.get_or_init(|| graph::rollup(&self.snap))
    }

    fn pending(&self) -> &crate::tasks::Pending {
        self.pending
            .get_or_init(|| crate::tasks::Pending::of(&self.planned))
    }

    /// What a waiting or stuck pending leaf waits on (nothing for other tasks).
    pub fn waits_on(&self, id: TaskId) -> &[TaskId] {
        self.waiting
            .get_or_init(|| {
                self.planned
                    .waiting
                    .iter()
                    .chain(&self.planned.stuck)
                    .map(|(t, on)| (*t, on.clone()))
                    .collect()
            })
            .get(&id)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// A live task.
    pub fn task(&self, id: TaskId) -> Option<&GraphTask> {
        self.lookup.index.get(&id).map(|&i| &self.snap.tasks[i])
    }

    /// The live task whose key is `q`. Keys never change and are unique among all tasks,
    /// archived ones included, so a key found here names the same task the store would.
    pub fn by_key(&self, q: &str) -> Option<TaskId> {
        self.lookup.keys.get(q.trim()).copied()
    }

    /// Live children of a task, in `seq` order.
    pub fn children(&self, id: TaskId) -> &[TaskId] {
        self.lookup
            .children
            .get(&id)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// Whether a live task has live children.
    pub fn has_children(&self, id: TaskId) -> bool {
        self.lookup.children.contains_key(&id)
    }

    /// The state a client sees for a task whose stored status is `status`: `ready`, `waiting`
    /// or `stuck` for pending leaves, rolled up for containers, the stored status otherwise.
    pub fn state(&self, id: TaskId, status: Status) -> String {
        crate::tasks::shown_status_of(id, status, self.rollup(), self.pending())
    }

    /// The status changes `events` (all after `self.seq`, in order) make to the snapshot, as
    /// (position, status); `None` when they may change anything else, and the graph has to be
    /// read again.
    fn changes(&self, events: &[Event]) -> Option<Vec<(usize, Status)>> {
        let mut out = Vec::new();
        for e in events {
            match EventKind::parse(&e.action).effect() {
                GraphEffect::None => continue,
                GraphEffect::Structure => return None,
                GraphEffect::Status => {}
            }
            let id = TaskId::parse_short(&e.entity)?;
            let &i = self.lookup.index.get(&id)?;
            let status = e
                .after
                .as_ref()
                .and_then(|a| a.get("status"))
                .and_then(|s| s.as_str())
                .and_then(|s| s.parse::<Status>().ok())?;
            out.push((i, status));
        }
        Some(out)
    }
}

/// The kept view, shared by every connection of a server.
#[derive(Default)]
pub struct GraphCache {
    slot: Mutex<Option<Arc<View>>>,
    /// Views built from a fresh snapshot, and from a kept one and status events.
    reads: AtomicU64,
    follows: AtomicU64,
}

impl GraphCache {
    /// The current view of the graph: the kept one when no event came after it, else a new
    /// one (from the kept snapshot and status events when that is enough).
    pub async fn view(&self, p: &Project) -> Result<Arc<View>, Error> {
        let settings = settings_of(p);
        let kept = self.kept()?;
        let seq = match kept {
            Some(v) if same(&v.settings, &settings) => {
                let events = p
                    .store
                    .events(&EventQuery {
                        after_seq: Some(v.seq),
                        limit: Some(FOLLOW_LIMIT),
                        ..Default::default()
                    })
                    .await?;
                let Some(last) = events.iter().map(|e| e.seq).max() else {
                    return Ok(v);
                };
                // With fewer than the limit, these are all the events after the view's, so
                // `last` is the newest committed one.
                if events.len() < FOLLOW_LIMIT as usize {
                    if let Some(changes) = v.changes(&events) {
                        self.follows.fetch_add(1, Ordering::Relaxed);
                        return self.follow(v, &changes, last, settings);
                    }
                    last
                } else {
                    p.store.last_event_seq().await?
                }
            }
            _ => p.store.last_event_seq().await?,
        };
        // The number first, then the snapshot: the view holds at least what `seq` says.
        let snap = p.store.graph().await?;
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.keep(View::build(seq, settings, snap)?)
    }

    /// The view after `v` with the task statuses `changes` made, as of event `seq`. The kept
    /// snapshot is changed in place when no other call is using it, else copied.
    fn follow(
        &self,
        v: Arc<View>,
        changes: &[(usize, Status)],
        seq: i64,
        settings: PlanSettings,
    ) -> Result<Arc<View>, Error> {
        {
            let mut slot = self.lock()?;
            if slot.as_ref().is_some_and(|k| Arc::ptr_eq(k, &v)) {
                *slot = None;
            }
        }
        let (mut snap, lookup) = match Arc::try_unwrap(v) {
            Ok(view) => (view.snap, view.lookup),
            Err(v) => (v.snap.clone(), v.lookup.clone()),
        };
        for &(i, status) in changes {
            snap.tasks[i].status = status;
        }
        self.keep(View::plan(seq, settings, snap, lookup)?)
    }

    fn kept(&self) -> Result<Option<Arc<View>>, Error> {
        Ok(self.lock()?.clone())
    }

    /// Keeps `v` unless a newer view was kept meanwhile (by a concurrent call).
    fn keep(&self, v: View) -> Result<Arc<View>, Error> {
        let v = Arc::new(v);
        let mut slot = self.lock()?;
        if slot.as_ref().is_none_or(|k| k.seq <= v.seq) {
            *slot = Some(v.clone());
        }
        Ok(v)
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Option<Arc<View>>>, Error> {
        self.slot
            .lock()
            .map_err(|_| Error::new(Kind::Internal, "graph cache lock poisoned"))
    }

    /// How many views were built from a fresh snapshot and how many from events.
    #[cfg(test)]
    pub fn counts(&self) -> (u64, u64) {
        (
            self.reads.load(Ordering::Relaxed),
            self.follows.load(Ordering::Relaxed),
        )
    }
}

#[cfg(test)]
mod tests {
    use std::hash::BuildHasher;

    use downbeat_core::context::Actor;
    use downbeat_core::task::{Edge, EdgeKind, NewTask};
    use downbeat_core::time::Timestamp;
    use downbeat_store::{Batch, ClaimRequest, Finish, FinishStatus};

    use super::*;
    use crate::project::{self, Globals};

    fn actor(name: &str) -> Actor {
        Actor::new(
            name,
            Timestamp::parse_rfc3339("2026-03-01T09:00:00Z").unwrap(),
        )
    }

    async fn add(p: &Project, title: &str, after: &[TaskId]) -> TaskId {
        let new = NewTask {
            title: title.into(),
            effort: 1,
            ..Default::default()
        };
        p.store
            .create_task(&new, after, &actor("b"))
            .await
            .unwrap()
            .id
    }

    /// The view must plan exactly what a fresh snapshot of the store plans.
    async fn same_as_fresh(p: &Project, v: &View) {
        let fresh = View::build(0, settings_of(p), p.store.graph().await.unwrap()).unwrap();
        let of = |v: &View| {
            v.snap
                .tasks
                .iter()
                .map(|t| (t.id, t.status, t.title.clone(), t.parent))
                .collect::<Vec<_>>()
        };
        assert_eq!(of(v), of(&fresh));
        assert_eq!(v.snap.edges, fresh.snap.edges);
        assert_eq!(v.planned.ready, fresh.planned.ready);
        assert_eq!(v.planned.waiting, fresh.planned.waiting);
        assert_eq!(v.planned.stuck, fresh.planned.stuck);
        assert_eq!(v.planned.waves, fresh.planned.waves);
        assert_eq!(v.planned.critical_path, fresh.planned.critical_path);
        assert_eq!(v.rollup(), fresh.rollup());
    }

    /// One server's cache (`a`) while a second handle on the same database (`b`, its own
    /// connections, as another process would have) changes the graph.
    async fn follows_other_writers(g: &Globals) {
        let a = project::open(g).await.unwrap();
        let b = project::open(g).await.unwrap();
        let cache = GraphCache::default();
        let t1 = add(&b, "one", &[]).await;
        let t2 = add(&b, "two", &[t1]).await;

        // Nothing changed: the same view, read once.
        let v1 = cache.view(&a).await.unwrap();
        let v2 = cache.view(&a).await.unwrap();
        assert!(Arc::ptr_eq(&v1, &v2));
        assert_eq!(cache.counts(), (1, 0));
        assert_eq!(v1.planned.ready, vec![t1]);

        // A new task (structural): read again.
        let t3 = add(&b, "three", &[]).await;
        let v = cache.view(&a).await.unwrap();
        assert_eq!(cache.counts(), (2, 0));
        assert!(v.pending().ready.contains(&t3));
        same_as_fresh(&a, &v).await;

        // A claim and its completion elsewhere: status events, followed without a read.
        let holder = "elsewhere".to_owned();
        let until = Timestamp(actor("b").now.0 + 60_000);
        let claim = |t| Batch {
            claims: vec![ClaimRequest {
                task: t,
                executor: "test".into(),
                after: vec![],
            }],
            holder: holder.clone(),
            lease_until: until,
            ..Default::default()
        };
        let got = b.store.commit_batch(&claim(t1), &actor("b")).await.unwrap();
        let c = got.claimed[0];
        // (The view before is still held here, so the kept snapshot is copied.)
        let v = cache.view(&a).await.unwrap();
        assert_eq!(cache.counts(), (2, 1));
        assert_eq!(v.task(t1).unwrap().status, Status::Running);
        assert!(!v.pending().ready.contains(&t1));
        same_as_fresh(&a, &v).await;
        // (Nothing holds the kept view now, so its snapshot is changed in place.)
        drop(v);
        let done = Batch {
            finishes: vec![Finish {
                task: t1,
                epoch: c.epoch,
                attempt_id: c.attempt_id,
                status: FinishStatus::Completed,
                outcome: "succeeded".into(),
                exit_code: None,
                error: None,
                summary: None,
                tokens: None,
                detail: Default::default(),
                artifacts: vec![],
                effects: vec![],
            }],
            holder: holder.clone(),
            lease_until: until,
            ..Default::default()
        };
        b.store.commit_batch(&done, &actor("b")).await.unwrap();
        let v = cache.view(&a).await.unwrap();
        assert_eq!(cache.counts(), (2, 2));
        assert_eq!(v.planned.ready.len(), 2);
        assert!(v.pending().ready.contains(&t2));
        same_as_fresh(&a, &v).await;

        // A manual status change and a context record: followed too.
        b.store
            .set_status(t3, Status::Skipped, None, &actor("b"))
            .await
            .unwrap();
        b.store
            .add_insight("noted", None, &actor("b"))
            .await
            .unwrap();
        let v = cache.view(&a).await.unwrap();
        assert_eq!(cache.counts(), (2, 3));
        assert_eq!(v.planned.ready, vec![t2]);
        same_as_fresh(&a, &v).await;
        let again = cache.view(&a).await.unwrap();
        assert!(Arc::ptr_eq(&v, &again));

        // An edge, a field change, an archive: read again each time.
        let t4 = add(&b, "four", &[]).await;
        cache.view(&a).await.unwrap();
        let (reads, follows) = cache.counts();
        b.store
            .add_edge(
                Edge {
                    from: t4,
                    to: t2,
                    kind: EdgeKind::Blocks,
                },
                &actor("b"),
            )
            .await
            .unwrap();
        let v = cache.view(&a).await.unwrap();
        assert_eq!(cache.counts(), (reads + 1, follows));
        assert_eq!(v.planned.ready, vec![t4]);
        same_as_fresh(&a, &v).await;
        let patch = downbeat_core::task::TaskPatch {
            title: Some("four, renamed".into()),
            ..Default::default()
        };
        b.store.update_task(t4, &patch, &actor("b")).await.unwrap();
        let v = cache.view(&a).await.unwrap();
        assert_eq!(cache.counts(), (reads + 2, follows));
        assert_eq!(v.task(t4).unwrap().title, "four, renamed");
        assert_eq!(b.store.archive(&[t3], &actor("b")).await.unwrap(), 1);
        let v = cache.view(&a).await.unwrap();
        assert_eq!(cache.counts(), (reads + 3, follows));
        assert!(v.task(t3).is_none());
        same_as_fresh(&a, &v).await;

        // More status events than are followed: read again.
        let many: Vec<TaskId> = {
            let mut v = Vec::new();
            for i in 0..FOLLOW_LIMIT {
                v.push(add(&b, &format!("many {i}"), &[]).await);
            }
            v
        };
        cache.view(&a).await.unwrap();
        let (reads, follows) = cache.counts();
        for t in &many {
            b.store
                .set_status(*t, Status::Blocked, None, &actor("b"))
                .await
                .unwrap();
        }
        let v = cache.view(&a).await.unwrap();
        assert_eq!(cache.counts(), (reads + 1, follows));
        same_as_fresh(&a, &v).await;

        // Other settings (the configuration was edited): planned again.
        let mut a = a;
        a.config.groups.insert(
            "heavy".into(),
            project::GroupConfig {
                max_parallel: 1,
                roles: vec!["implementer".into()],
            },
        );
        let v = cache.view(&a).await.unwrap();
        assert_eq!(cache.counts(), (reads + 2, follows));
        assert_eq!(v.settings.groups.len(), 1);
        assert!(Arc::ptr_eq(&v, &cache.view(&a).await.unwrap()));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_views_follow_other_writers() {
        let dir = tempfile::tempdir().unwrap();
        let g = Globals {
            project: Some(dir.path().to_owned()),
            db: Some(format!(
                "sqlite:{}",
                dir.path()
                    .join(project::DIR)
                    .join(project::DB_FILE)
                    .display()
            )),
            actor: "tester".into(),
            fixed_now: None,
            cwd: dir.path().to_owned(),
            secrets: Default::default(),
            host: Default::default(),
        };
        project::init(&g).await.unwrap();
        follows_other_writers(&g).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_views_follow_other_writers() {
        let base = std::env::var("DOWNBEAT_TEST_POSTGRES_URL")
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".into());
        let r = std::collections::hash_map::RandomState::new().hash_one(std::process::id());
        let schema = format!("dbt_mcp_cache_{:012x}", r & 0xffff_ffff_ffff);
        let sep = if base.contains('?') { '&' } else { '?' };
        let dir = tempfile::tempdir().unwrap();
        let g = Globals {
            project: Some(dir.path().to_owned()),
            db: Some(format!("{base}{sep}schema={schema}")),
            actor: "tester".into(),
            fixed_now: None,
            cwd: dir.path().to_owned(),
            secrets: Default::default(),
            host: Default::default(),
        };
        project::init(&g).await.unwrap();
        let outcome = tokio::spawn({
            let g = g.clone();
            async move { follows_other_writers(&g).await }
        })
        .await;
        let store = downbeat_store::postgres::PostgresStore::open(g.db.as_deref().unwrap(), false)
            .await
            .unwrap();
        store.drop_schema().await.unwrap();
        if let Err(e) = outcome {
            std::panic::resume_unwind(e.into_panic());
        }
    }
}
