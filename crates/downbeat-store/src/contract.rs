//! The storage contract: what every [`Store`] backend must do, as test functions.
//!
//! A backend's test file provides an async function returning a [`Fixture`] (a fresh, empty
//! database plus a way to open a second handle on it) and invokes [`store_contract_tests!`],
//! which expands into one `#[tokio::test]` per contract case.

use std::future::Future;
use std::pin::Pin;

use downbeat_core::context::{Actor, ObjectiveStatus};
use downbeat_core::ids::{RecordId, RecordKind, TaskId};
use downbeat_core::plan::{self, PlanFormat};
use downbeat_core::role::RoleSet;
use downbeat_core::task::{Edge, EdgeKind, NewTask, Status, TaskPatch};
use downbeat_core::time::Timestamp;

use crate::{Batch, ClaimRequest, Error, EventQuery, Finish, FinishStatus, Store, TaskFilter};

/// Opens another handle on the fixture's database.
pub type Reopen =
    Box<dyn Fn() -> Pin<Box<dyn Future<Output = Box<dyn Store>> + Send>> + Send + Sync>;

/// A fresh, empty database for one contract case.
pub struct Fixture {
    pub store: Box<dyn Store>,
    pub reopen: Reopen,
    /// Whatever must live as long as the database (a temp dir, a schema guard).
    pub guard: Box<dyn std::any::Any + Send + Sync>,
}

/// Expands into one test per contract case, each calling `$make().await` for its fixture.
#[macro_export]
macro_rules! store_contract_tests {
    ($make:path) => {
        $crate::store_contract_tests!(@cases $make;
            creates_and_resolves_tasks,
            ambiguous_prefixes_name_candidates,
            plans_apply_atomically,
            cycles_are_refused_with_their_path,
            transitions_follow_the_state_machine,
            containers_roll_up_and_cascade,
            every_change_is_logged,
            context_records_round_trip,
            updates_and_filters,
            concurrent_writers_lose_nothing,
            archive_and_integrity,
            claims_are_exclusive_and_fenced,
            leases_renew_and_expire,
            retries_wait_for_their_time,
            concurrent_claims_never_overlap,
            stale_epoch_finishes_are_rejected,
            completion_effects_commit_with_the_completion,
            failing_effects_roll_back_the_completion,
            concurrent_edges_cannot_close_a_cycle,
            event_readers_miss_nothing,
            ready_tasks_look_at_blockers_and_ancestors,
            workers_register_beat_and_leave,
            holds_last_until_their_task_ends_or_release,
            claims_chosen_before_a_hold_are_refused,
            meta_set_is_logged,
        );
    };
    (@cases $make:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                $crate::contract::$case($make().await).await;
            }
        )*
    };
}

fn actor(t: i64) -> Actor {
    Actor::new("test", Timestamp(1_700_000_000_000 + t))
}

fn new_task(title: &str) -> NewTask {
    NewTask {
        title: title.into(),
        effort: 1,
        ..Default::default()
    }
}

fn blocks(from: TaskId, to: TaskId) -> Edge {
    Edge {
        from,
        to,
        kind: EdgeKind::Blocks,
    }
}

async fn apply(store: &dyn Store, text: &str) -> Result<crate::AppliedPlan, Error> {
    let file = plan::parse(text, PlanFormat::Toml).expect("test plan parses");
    let refs: Vec<String> = file
        .tasks
        .iter()
        .flat_map(|t| t.depends_on.iter().chain(t.parent.iter()).cloned())
        .collect();
    let known = store.lookup_tasks(&refs).await?;
    let v = plan::validate(
        &file,
        &RoleSet::builtin(),
        &|r| known.get(r).copied(),
        &|_| false,
    )?;
    store.apply_plan(&v, &actor(1)).await
}

pub async fn creates_and_resolves_tasks(f: Fixture) {
    let s = &*f.store;
    let a = s
        .create_task(&new_task("Design schema"), &[], &actor(0))
        .await
        .unwrap();
    let mut keyed = new_task("Write models");
    keyed.key = Some("models".into());
    keyed.role = Some("implementer".into());
    let b = s.create_task(&keyed, &[a.id], &actor(1)).await.unwrap();
    assert_eq!(a.status, Status::Pending);
    assert_ne!(a.id, b.id);
    assert_eq!(s.resolve_task(&a.id.to_string()).await.unwrap(), a.id);
    assert_eq!(s.resolve_task(&b.id.to_string()[..5]).await.unwrap(), b.id);
    assert_eq!(s.resolve_task("models").await.unwrap(), b.id);
    let used = s
        .keys_in_use(&["models".into(), "other".into()])
        .await
        .unwrap();
    assert_eq!(
        used.into_iter().collect::<Vec<_>>(),
        vec!["models".to_owned()]
    );
    let found = s
        .lookup_tasks(&["models".into(), a.id.to_string(), "nope-nope".into()])
        .await
        .unwrap();
    assert_eq!(found.len(), 2);
    assert_eq!(found["models"], b.id);
    assert!(matches!(
        s.resolve_task("zzzzzz").await,
        Err(Error::NotFound { .. })
    ));
    assert_eq!(
        s.task(b.id).await.unwrap().role.as_deref(),
        Some("implementer")
    );
    assert_eq!(s.edges_of(b.id).await.unwrap(), vec![blocks(a.id, b.id)]);
    assert_eq!(s.task_count().await.unwrap(), 2);
    // Duplicate keys are refused.
    let err = s.create_task(&keyed, &[], &actor(2)).await.unwrap_err();
    assert!(err.to_string().contains("already used"), "{err}");
    // Unknown dependencies are refused and nothing is written.
    let ghost = TaskId::from_seq(999).unwrap();
    assert!(matches!(
        s.create_task(&new_task("x"), &[ghost], &actor(3)).await,
        Err(Error::NotFound { .. })
    ));
    assert_eq!(s.task_count().await.unwrap(), 2);
}

pub async fn ambiguous_prefixes_name_candidates(f: Fixture) {
    let s = &*f.store;
    let mut ids = Vec::new();
    for i in 0..300 {
        ids.push(
            s.create_task(&new_task(&format!("t{i}")), &[], &actor(i))
                .await
                .unwrap()
                .id,
        );
    }
    // With 300 ids over 32 first characters, some first character repeats.
    let mut firsts = std::collections::HashMap::new();
    for id in &ids {
        *firsts.entry(id.to_string()[..1].to_owned()).or_insert(0) += 1;
    }
    let (prefix, _) = firsts.iter().find(|(_, n)| **n > 1).unwrap();
    match s.resolve_task(prefix).await {
        Err(Error::Ambiguous { candidates, .. }) => assert!(candidates.len() >= 2),
        other => panic!("expected ambiguity, got {other:?}"),
    }
}

pub async fn plans_apply_atomically(f: Fixture) {
    let s = &*f.store;
    let applied = apply(
        s,
        r#"
        [plan]
        name = "demo"
        [[objectives]]
        title = "Ship it"
        tasks = ["epic"]
        [[tasks]]
        key = "epic"
        title = "Epic"
        [[tasks]]
        key = "a"
        title = "A"
        parent = "epic"
        [[tasks]]
        key = "b"
        title = "B"
        parent = "epic"
        depends_on = ["a"]
        [[decisions]]
        text = "Use SQLite"
        why = "zero set-up"
        "#,
    )
    .await
    .unwrap();
    assert_eq!(applied.tasks.len(), 3);
    assert_eq!(applied.edges, 1);
    assert_eq!(applied.objectives.len(), 1);
    let a = s.resolve_task("a").await.unwrap();
    let b = s.resolve_task("b").await.unwrap();
    let epic = s.resolve_task("epic").await.unwrap();
    assert_eq!(s.task(b).await.unwrap().parent, Some(epic));
    assert_eq!(s.objectives().await.unwrap()[0].tasks, vec![epic]);
    // A second plan that closes a cycle with existing edges writes nothing at all.
    let before = s.task_count().await.unwrap();
    let err = apply(
        s,
        &format!(
            "[[tasks]]\nkey = \"c\"\ntitle = \"C\"\ndepends_on = [\"{b}\"]\n[[tasks]]\nkey = \"d\"\ntitle = \"D\"\ndepends_on = [\"c\"]\n"
        ),
    )
    .await;
    assert!(err.is_ok(), "{err:?}");
    s.add_edge(blocks(s.resolve_task("d").await.unwrap(), a), &actor(5))
        .await
        .expect_err("d → a closes a → b → c → d → a");
    let err = apply(s, &format!("[[tasks]]\nkey = \"late-e\"\ntitle = \"E\"\ndepends_on = [\"{b}\"]\n[[tasks]]\nkey = \"late-f\"\ntitle = \"F\"\nparent = \"{a}\"\ndepends_on = [\"late-e\"]\n")).await;
    assert!(matches!(err, Err(Error::Cycle(_))), "{err:?}");
    assert_eq!(s.task_count().await.unwrap(), before + 2);
    assert!(matches!(
        s.resolve_task("late-e").await,
        Err(Error::NotFound { .. })
    ));
}

pub async fn cycles_are_refused_with_their_path(f: Fixture) {
    let s = &*f.store;
    let a = s
        .create_task(&new_task("a"), &[], &actor(0))
        .await
        .unwrap()
        .id;
    let b = s
        .create_task(&new_task("b"), &[a], &actor(1))
        .await
        .unwrap()
        .id;
    let c = s
        .create_task(&new_task("c"), &[b], &actor(2))
        .await
        .unwrap()
        .id;
    let err = s.add_edge(blocks(c, a), &actor(3)).await.unwrap_err();
    match &err {
        Error::Cycle(cy) => {
            let mut p = cy.path.clone();
            p.sort();
            let mut want = vec![a, b, c];
            want.sort();
            assert_eq!(p, want);
        }
        other => panic!("expected a cycle, got {other:?}"),
    }
    assert!(err.to_string().starts_with("dependency cycle: "), "{err}");
    assert!(
        s.edges_of(a).await.unwrap().iter().all(|e| e.from != c),
        "the refused edge was written"
    );
    assert!(matches!(
        s.add_edge(blocks(a, a), &actor(4)).await,
        Err(Error::Invalid(_))
    ));
    // Non-blocking edges may point anywhere; duplicates are no-ops.
    let rel = Edge {
        from: c,
        to: a,
        kind: EdgeKind::Related,
    };
    assert!(s.add_edge(rel, &actor(5)).await.unwrap());
    assert!(!s.add_edge(rel, &actor(6)).await.unwrap());
    assert!(s.remove_edge(rel, &actor(7)).await.unwrap());
    assert!(!s.remove_edge(rel, &actor(8)).await.unwrap());
}

pub async fn transitions_follow_the_state_machine(f: Fixture) {
    let s = &*f.store;
    let a = s
        .create_task(&new_task("a"), &[], &actor(0))
        .await
        .unwrap()
        .id;
    let t = s
        .set_status(a, Status::Running, None, &actor(1))
        .await
        .unwrap();
    assert_eq!(t[0].status, Status::Running);
    assert_eq!(t[0].started_at, Some(actor(1).now));
    let t = s
        .set_status(a, Status::Completed, Some("done well"), &actor(2))
        .await
        .unwrap();
    assert_eq!(t[0].result.as_deref(), Some("done well"));
    assert_eq!(t[0].finished_at, Some(actor(2).now));
    let err = s
        .set_status(a, Status::Running, None, &actor(3))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Transition { .. }));
    assert!(err.to_string().contains("may become: pending"), "{err}");
    assert_eq!(s.task(a).await.unwrap().status, Status::Completed);
    let t = s
        .set_status(a, Status::Pending, None, &actor(4))
        .await
        .unwrap();
    assert_eq!(t[0].finished_at, None);
}

pub async fn containers_roll_up_and_cascade(f: Fixture) {
    let s = &*f.store;
    let epic = s
        .create_task(&new_task("epic"), &[], &actor(0))
        .await
        .unwrap()
        .id;
    let mut child = new_task("c1");
    child.parent = Some(epic);
    let c1 = s.create_task(&child, &[], &actor(1)).await.unwrap().id;
    child.title = "c2".into();
    let c2 = s.create_task(&child, &[], &actor(2)).await.unwrap().id;
    s.set_status(c1, Status::Completed, None, &actor(3))
        .await
        .unwrap();
    let err = s
        .set_status(epic, Status::Completed, None, &actor(4))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("rolls up"), "{err}");
    let changed = s
        .set_status(epic, Status::Cancelled, Some("descoped"), &actor(5))
        .await
        .unwrap();
    assert_eq!(changed.iter().map(|t| t.id).collect::<Vec<_>>(), vec![c2]);
    assert_eq!(s.task(c1).await.unwrap().status, Status::Completed);
    let snap = s.graph().await.unwrap();
    let roll = downbeat_core::graph::rollup(&snap);
    assert_eq!(roll[&epic].total, 2);
    assert_eq!(roll[&epic].done, 1);
}

/// `meta_set` writes the value and a `meta.set` event together; the event takes the time of
/// the log's latest event and names no task, even for a key shaped like a task id.
pub async fn meta_set_is_logged(f: Fixture) {
    let s = &*f.store;
    s.meta_set("handover.at_seq", "0").await.unwrap();
    let first = s.events(&EventQuery::default()).await.unwrap();
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0].action, "meta.set");
    assert_eq!(first[0].entity, "handover.at_seq");
    assert_eq!(first[0].at, Timestamp(0), "an empty log starts at 0");
    assert_eq!(first[0].after, Some(serde_json::json!({"value": "0"})));
    let a = s
        .create_task(&new_task("a"), &[], &actor(5_000))
        .await
        .unwrap()
        .id;
    s.meta_set("handover.at_seq", "2").await.unwrap();
    assert_eq!(
        s.meta_get("handover.at_seq").await.unwrap().as_deref(),
        Some("2")
    );
    let last = s.events(&EventQuery::default()).await.unwrap();
    let e = last.last().unwrap();
    assert_eq!((e.action.as_str(), e.at), ("meta.set", actor(5_000).now));
    assert_eq!(e.after, Some(serde_json::json!({"value": "2"})));
    // A key that reads like a task id is not that task's history.
    s.meta_set(&a.to_string(), "x").await.unwrap();
    let history = s
        .events(&EventQuery {
            task: Some(a),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        history.iter().all(|e| e.action != "meta.set"),
        "{history:?}"
    );
    assert_eq!(
        s.last_event_seq().await.unwrap(),
        last.last().unwrap().seq + 1
    );
}

pub async fn every_change_is_logged(f: Fixture) {
    let s = &*f.store;
    let a = s
        .create_task(&new_task("a"), &[], &actor(0))
        .await
        .unwrap()
        .id;
    s.set_status(a, Status::Running, None, &actor(10))
        .await
        .unwrap();
    s.set_status(a, Status::Completed, None, &actor(20))
        .await
        .unwrap();
    let all = s.events(&EventQuery::default()).await.unwrap();
    let actions: Vec<&str> = all.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["task.created", "task.status", "task.status"]);
    let last = all.last().unwrap();
    assert_eq!(last.before.as_ref().unwrap()["status"], "running");
    assert_eq!(last.after.as_ref().unwrap()["status"], "completed");
    assert_eq!(last.actor, "test");
    let recent = s
        .events(&EventQuery {
            since: Some(actor(10).now),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(recent.len(), 2);
    let limited = s
        .events(&EventQuery {
            limit: Some(1),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(limited[0].seq, last.seq);
    let m = s.metrics().await.unwrap();
    assert_eq!(m.tasks_completed, 1);
    assert_eq!(m.success_rate, Some(1.0));
    assert_eq!(m.parallel_execution_rate, Some(0.0));
    assert_eq!(s.last_event_seq().await.unwrap(), last.seq);
}

pub async fn context_records_round_trip(f: Fixture) {
    let s = &*f.store;
    let sess = s.start_session("first", &actor(0)).await.unwrap();
    assert_eq!(s.current_session().await.unwrap().unwrap().id, sess.id);
    let second = s.start_session("second", &actor(1)).await.unwrap();
    let all = s.sessions().await.unwrap();
    assert_eq!(all.len(), 2);
    assert!(
        all[0].ended_at.is_some(),
        "starting a session ends the open one"
    );
    s.end_session(second.id, &actor(2)).await.unwrap();
    assert!(s.current_session().await.unwrap().is_none());

    let t = s
        .create_task(&new_task("t"), &[], &actor(3))
        .await
        .unwrap()
        .id;
    let o = s
        .add_objective("Make checkout faster", &[t], &actor(4))
        .await
        .unwrap();
    assert_eq!(o.id.to_string(), "o1");
    assert_eq!(o.tasks, vec![t]);
    let o = s
        .set_objective_status(o.id, ObjectiveStatus::Achieved, &actor(5))
        .await
        .unwrap();
    assert_eq!(o.status, ObjectiveStatus::Achieved);
    let i = s
        .add_insight("cart runs 15 queries", Some(t), &actor(6))
        .await
        .unwrap();
    assert_eq!(s.insights().await.unwrap(), vec![i]);
    let d1 = s
        .add_decision("Use Redis", "shared counters", None, None, &actor(7))
        .await
        .unwrap();
    let d2 = s
        .add_decision(
            "Use Postgres",
            "one less service",
            None,
            Some(d1.id),
            &actor(8),
        )
        .await
        .unwrap();
    let ds = s.decisions().await.unwrap();
    assert_eq!(ds[0].superseded_by, Some(d2.id));
    assert_eq!(ds[1].supersedes, Some(d1.id));
    let err = s
        .add_decision("Again", "", None, Some(d1.id), &actor(9))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("already superseded by d2"),
        "{err}"
    );
    let missing = RecordId::new(RecordKind::Decision, 42);
    assert!(matches!(
        s.add_decision("x", "", None, Some(missing), &actor(9))
            .await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        s.add_objective(" ", &[], &actor(9)).await,
        Err(Error::Invalid(_))
    ));
    s.add_artifact(t, "docs/report.md", Some(12), None, &actor(10))
        .await
        .unwrap();
    assert_eq!(s.artifacts().await.unwrap()[0].path, "docs/report.md");
    s.meta_set("k", "v1").await.unwrap();
    s.meta_set("k", "v2").await.unwrap();
    assert_eq!(s.meta_get("k").await.unwrap().as_deref(), Some("v2"));
    assert_eq!(s.meta_get("nope").await.unwrap(), None);
    let m = s.metrics().await.unwrap();
    assert_eq!((m.decisions, m.sessions, m.insights), (2, 2, 1));
}

pub async fn updates_and_filters(f: Fixture) {
    let s = &*f.store;
    let a = s
        .create_task(&new_task("Fix login bug"), &[], &actor(0))
        .await
        .unwrap()
        .id;
    let b = s
        .create_task(&new_task("Write docs"), &[], &actor(1))
        .await
        .unwrap()
        .id;
    let patch = TaskPatch {
        role: Some(Some("tester".into())),
        tags: Some(vec!["auth".into()]),
        effort: Some(5),
        parent: Some(Some(b)),
        ..Default::default()
    };
    let t = s.update_task(a, &patch, &actor(2)).await.unwrap();
    assert_eq!((t.effort, t.parent), (5, Some(b)));
    let err = s
        .update_task(
            b,
            &TaskPatch {
                parent: Some(Some(a)),
                ..Default::default()
            },
            &actor(3),
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("parent loop") || matches!(err, Error::Cycle(_)),
        "{err}"
    );
    assert_eq!(s.task(b).await.unwrap().parent, None);
    let by_role = s
        .tasks(&TaskFilter {
            role: Some("tester".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(by_role.len(), 1);
    let by_tag = s
        .tasks(&TaskFilter {
            tag: Some("auth".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(by_tag[0].id, a);
    let by_text = s
        .tasks(&TaskFilter {
            text: Some("LOGIN".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(by_text[0].id, a);
    let by_parent = s
        .tasks(&TaskFilter {
            parent: Some(b),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(by_parent.len(), 1);
    let none = s
        .tasks(&TaskFilter {
            statuses: vec![Status::Running],
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(none.is_empty());
}

pub async fn concurrent_writers_lose_nothing(f: Fixture) {
    let other = (f.reopen)().await;
    let stores: Vec<std::sync::Arc<dyn Store>> = vec![f.store.into(), other.into()];
    let root = stores[0]
        .create_task(&new_task("root"), &[], &actor(0))
        .await
        .unwrap()
        .id;
    let mut handles = Vec::new();
    for w in 0..4 {
        let s = stores[w % 2].clone();
        handles.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            for i in 0..25 {
                let t = s
                    .create_task(&new_task(&format!("w{w}-{i}")), &[root], &actor(i))
                    .await
                    .unwrap();
                s.set_status(t.id, Status::Running, None, &actor(i))
                    .await
                    .unwrap();
                mine.push(t.id);
            }
            mine
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.unwrap());
    }
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 100, "ids collided");
    assert_eq!(stores[1].task_count().await.unwrap(), 101);
    let running = stores[0]
        .tasks(&TaskFilter {
            statuses: vec![Status::Running],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(running.len(), 100);
    let events = stores[1].events(&EventQuery::default()).await.unwrap();
    assert_eq!(
        events.iter().filter(|e| e.action == "task.status").count(),
        100
    );
}

pub async fn archive_and_integrity(f: Fixture) {
    let s = &*f.store;
    let a = s
        .create_task(&new_task("a"), &[], &actor(0))
        .await
        .unwrap()
        .id;
    let b = s
        .create_task(&new_task("b"), &[a], &actor(1))
        .await
        .unwrap()
        .id;
    assert_eq!(
        s.archive(&[a], &actor(2)).await.unwrap(),
        0,
        "pending tasks are not archived"
    );
    s.set_status(a, Status::Completed, None, &actor(3))
        .await
        .unwrap();
    assert_eq!(s.archive(&[a], &actor(4)).await.unwrap(), 1);
    let snap = s.graph().await.unwrap();
    assert_eq!(snap.tasks.len(), 1);
    assert!(snap.edges.is_empty());
    assert!(
        s.edges().await.unwrap().is_empty(),
        "edges to archived tasks are not live"
    );
    assert_eq!(s.tasks(&TaskFilter::default()).await.unwrap().len(), 1);
    assert_eq!(
        s.tasks(&TaskFilter {
            include_archived: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .len(),
        2
    );
    assert_eq!(s.integrity().await.unwrap(), crate::Integrity::default());
    assert_eq!(s.task(b).await.unwrap().status, Status::Pending);
    s.optimize().await.unwrap();
}

fn claim_batch(tasks: &[TaskId], holder: &str, until: i64) -> Batch {
    Batch {
        finishes: vec![],
        claims: tasks
            .iter()
            .map(|&task| ClaimRequest {
                task,
                executor: "noop".into(),
                after: vec![],
            })
            .collect(),
        holder: holder.into(),
        lease_until: actor(until).now,
        quiet: false,
        holds_seen: None,
    }
}

fn finish(task: TaskId, epoch: i64, attempt_id: i64, status: FinishStatus) -> Finish {
    Finish {
        task,
        epoch,
        attempt_id,
        status,
        outcome: "succeeded".into(),
        exit_code: Some(0),
        error: None,
        summary: Some("done".into()),
        tokens: None,
        artifacts: vec![crate::ArtifactRecord {
            path: "out.txt".into(),
            size: 3,
            sha256: "abc".into(),
        }],
        effects: vec![],
    }
}

pub async fn claims_are_exclusive_and_fenced(f: Fixture) {
    let other = (f.reopen)().await;
    let s = &*f.store;
    let a = s
        .create_task(&new_task("a"), &[], &actor(0))
        .await
        .unwrap()
        .id;
    let b = s
        .create_task(&new_task("b"), &[], &actor(0))
        .await
        .unwrap()
        .id;
    // Two runners race for the same tasks: each task goes to exactly one.
    let (b1, b2, at) = (
        claim_batch(&[a, b], "runner-1", 60_000),
        claim_batch(&[b, a], "runner-2", 60_000),
        actor(1),
    );
    let (r1, r2) = tokio::join!(s.commit_batch(&b1, &at), other.commit_batch(&b2, &at));
    let (r1, r2) = (r1.unwrap(), r2.unwrap());
    let mut won: Vec<TaskId> = r1
        .claimed
        .iter()
        .chain(&r2.claimed)
        .map(|c| c.task)
        .collect();
    won.sort();
    assert_eq!(won, {
        let mut v = vec![a, b];
        v.sort();
        v
    });
    assert_eq!(r1.not_claimed.len() + r2.not_claimed.len(), 2);
    let claim_a = r1
        .claimed
        .iter()
        .chain(&r2.claimed)
        .find(|c| c.task == a)
        .copied()
        .unwrap();
    assert_eq!(claim_a.number, 1);
    let t = s.task(a).await.unwrap();
    assert_eq!(
        (t.status, t.lease_epoch, t.attempts),
        (Status::Running, claim_a.epoch, 1)
    );
    // A person cancels the task meanwhile: the runner's late completion is refused.
    s.set_status(a, Status::Cancelled, Some("not needed"), &actor(2))
        .await
        .unwrap();
    let late = Batch {
        finishes: vec![finish(
            a,
            claim_a.epoch,
            claim_a.attempt_id,
            FinishStatus::Completed,
        )],
        ..Default::default()
    };
    let r = s.commit_batch(&late, &actor(3)).await.unwrap();
    assert_eq!(r.rejected, vec![a]);
    assert_eq!(s.task(a).await.unwrap().status, Status::Cancelled);
    let ledger = s.attempts(a).await.unwrap();
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0].outcome.as_deref(), Some("succeeded (lease lost)"));
    // The holder of b completes it with the right token.
    let claim_b = r1
        .claimed
        .iter()
        .chain(&r2.claimed)
        .find(|c| c.task == b)
        .copied()
        .unwrap();
    let ok = Batch {
        finishes: vec![finish(
            b,
            claim_b.epoch,
            claim_b.attempt_id,
            FinishStatus::Completed,
        )],
        ..Default::default()
    };
    let r = s.commit_batch(&ok, &actor(4)).await.unwrap();
    assert!(r.rejected.is_empty());
    let t = s.task(b).await.unwrap();
    assert_eq!(
        (t.status, t.result.as_deref(), t.lease_holder),
        (Status::Completed, Some("done"), None)
    );
    assert_eq!(s.artifacts().await.unwrap().len(), 1);
    let ledger = s.attempts(b).await.unwrap();
    assert_eq!(
        (ledger[0].outcome.as_deref(), ledger[0].exit_code),
        (Some("succeeded"), Some(0))
    );
    // A claim conditional on unfinished work is refused; on finished work it succeeds.
    let c = s
        .create_task(&new_task("c"), &[], &actor(5))
        .await
        .unwrap()
        .id;
    let mut cond = claim_batch(&[c], "runner-1", 60_000);
    cond.claims[0].after = vec![a];
    assert_eq!(
        s.commit_batch(&cond, &actor(5)).await.unwrap().not_claimed,
        vec![c]
    );
    cond.claims[0].after = vec![b];
    assert_eq!(
        s.commit_batch(&cond, &actor(5))
            .await
            .unwrap()
            .claimed
            .len(),
        1
    );
    // A completed task cannot be claimed again.
    let r = s
        .commit_batch(&claim_batch(&[b], "runner-1", 60_000), &actor(5))
        .await
        .unwrap();
    assert_eq!(r.not_claimed, vec![b]);
}

/// The wall clock: leases may be kept on the database's clock (PostgreSQL), so the lease
/// cases let real time pass instead of moving a fixed clock.
fn wall() -> Actor {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    Actor::new("test", Timestamp(ms))
}

/// A claim whose lease lasts `ms` from `at`.
fn claim_lasting(tasks: &[TaskId], holder: &str, at: &Actor, ms: i64) -> Batch {
    Batch {
        lease_until: Timestamp(at.now.0 + ms),
        ..claim_batch(tasks, holder, 0)
    }
}

pub async fn leases_renew_and_expire(f: Fixture) {
    const LEASE: i64 = 2_000;
    let s = &*f.store;
    let a = s
        .create_task(&new_task("a"), &[], &actor(0))
        .await
        .unwrap()
        .id;
    let b = s
        .create_task(&new_task("b"), &[], &actor(0))
        .await
        .unwrap()
        .id;
    let at = wall();
    let r = s
        .commit_batch(&claim_lasting(&[a], "runner-1", &at, LEASE), &at)
        .await
        .unwrap();
    let epoch = r.claimed[0].epoch;
    let at = wall();
    s.commit_batch(&claim_lasting(&[b], "runner-2", &at, LEASE), &at)
        .await
        .unwrap();
    assert_eq!(s.lease_holders().await.unwrap(), ["runner-1", "runner-2"]);
    let held = s
        .renew_leases("runner-1", Timestamp(wall().now.0 + 60_000))
        .await
        .unwrap();
    assert_eq!(held, vec![(a, epoch)]);
    // Nothing has expired yet.
    let at = wall();
    assert!(
        s.requeue_running(Some(at.now), &[], &at)
            .await
            .unwrap()
            .is_empty()
    );
    tokio::time::sleep(std::time::Duration::from_millis(LEASE as u64 + 200)).await;
    // Now runner-2's lease has expired, runner-1's (renewed) has not.
    let at = wall();
    let requeued = s.requeue_running(Some(at.now), &[], &at).await.unwrap();
    assert_eq!(requeued, vec![b]);
    let t = s.task(b).await.unwrap();
    assert_eq!(t.status, Status::Pending);
    assert!(t.result.unwrap().contains("expired"));
    assert_eq!(
        s.attempts(b).await.unwrap()[0].outcome.as_deref(),
        Some("lost")
    );
    // A holder known to be dead is requeued at once, whatever its lease says.
    let requeued = s
        .requeue_running(None, &["runner-1".to_owned()], &wall())
        .await
        .unwrap();
    assert_eq!(requeued, vec![a]);
    assert!(
        s.renew_leases("runner-1", Timestamp(wall().now.0 + 60_000))
            .await
            .unwrap()
            .is_empty()
    );
    // A new claim gets a new epoch, so the old holder is fenced off.
    let at = wall();
    let r = s
        .commit_batch(&claim_lasting(&[a], "runner-3", &at, 60_000), &at)
        .await
        .unwrap();
    assert!(r.claimed[0].epoch > epoch);
    assert_eq!(r.claimed[0].number, 2);
}

pub async fn concurrent_claims_never_overlap(f: Fixture) {
    let other = (f.reopen)().await;
    let stores: Vec<std::sync::Arc<dyn Store>> = vec![f.store.into(), other.into()];
    let mut ids = Vec::new();
    for i in 0..40 {
        ids.push(
            stores[0]
                .create_task(&new_task(&format!("t{i}")), &[], &actor(i))
                .await
                .unwrap()
                .id,
        );
    }
    // Four runners on two handles each ask for the whole ready set, in orders of their own, a
    // few tasks per batch.
    let mut handles = Vec::new();
    for w in 0..4usize {
        let s = stores[w % 2].clone();
        let mut order = ids.clone();
        order.rotate_left(w * 10);
        if w % 2 == 1 {
            order.reverse();
        }
        handles.push(tokio::spawn(async move {
            let holder = format!("runner-{w}");
            let mut mine = Vec::new();
            for chunk in order.chunks(7) {
                let r = s
                    .commit_batch(&claim_batch(chunk, &holder, 60_000), &actor(100))
                    .await
                    .unwrap();
                assert_eq!(r.claimed.len() + r.not_claimed.len(), chunk.len());
                mine.extend(r.claimed.into_iter().map(|c| (holder.clone(), c)));
            }
            mine
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.unwrap());
    }
    let mut won: Vec<TaskId> = all.iter().map(|(_, c)| c.task).collect();
    won.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(won, want, "every task claimed exactly once");
    for (holder, c) in &all {
        let t = stores[1].task(c.task).await.unwrap();
        assert_eq!(
            (t.status, t.lease_holder.as_ref(), t.lease_epoch, t.attempts),
            (Status::Running, Some(holder), c.epoch, 1)
        );
        let ledger = stores[0].attempts(c.task).await.unwrap();
        assert_eq!(ledger.len(), 1);
        assert_eq!(
            (ledger[0].id, ledger[0].number, &ledger[0].worker),
            (c.attempt_id, 1, holder)
        );
    }
    let events = stores[0].events(&EventQuery::default()).await.unwrap();
    assert_eq!(
        events.iter().filter(|e| e.action == "task.status").count(),
        40
    );
    assert!(events.windows(2).all(|w| w[0].seq < w[1].seq));
}

pub async fn stale_epoch_finishes_are_rejected(f: Fixture) {
    let s = &*f.store;
    let a = s
        .create_task(&new_task("a"), &[], &actor(0))
        .await
        .unwrap()
        .id;
    let first = s
        .commit_batch(&claim_batch(&[a], "runner-1", 60_000), &actor(1))
        .await
        .unwrap()
        .claimed[0];
    // runner-1 is declared gone; its task is requeued and claimed again by runner-2.
    assert_eq!(
        s.requeue_running(None, &["runner-1".to_owned()], &actor(2))
            .await
            .unwrap(),
        vec![a]
    );
    let second = s
        .commit_batch(&claim_batch(&[a], "runner-2", 60_000), &actor(3))
        .await
        .unwrap()
        .claimed[0];
    assert!(second.epoch > first.epoch);
    assert_eq!(second.number, 2);
    // runner-1 comes back and reports success under its old token: refused, nothing changes.
    let late = Batch {
        finishes: vec![finish(
            a,
            first.epoch,
            first.attempt_id,
            FinishStatus::Completed,
        )],
        ..Default::default()
    };
    let r = s.commit_batch(&late, &actor(4)).await.unwrap();
    assert_eq!(r.rejected, vec![a]);
    let t = s.task(a).await.unwrap();
    assert_eq!(
        (t.status, t.lease_holder.as_deref(), t.lease_epoch),
        (Status::Running, Some("runner-2"), second.epoch)
    );
    assert!(s.artifacts().await.unwrap().is_empty());
    let ledger = s.attempts(a).await.unwrap();
    assert_eq!(ledger.len(), 2);
    assert_eq!(ledger[0].outcome.as_deref(), Some("lost"));
    assert_eq!(ledger[1].ended_at, None);
    // The current holder's finish is accepted; replaying it afterwards is refused.
    let ok = Batch {
        finishes: vec![finish(
            a,
            second.epoch,
            second.attempt_id,
            FinishStatus::Completed,
        )],
        ..Default::default()
    };
    assert!(
        s.commit_batch(&ok, &actor(5))
            .await
            .unwrap()
            .rejected
            .is_empty()
    );
    assert_eq!(s.task(a).await.unwrap().status, Status::Completed);
    assert_eq!(
        s.attempts(a).await.unwrap()[1].outcome.as_deref(),
        Some("succeeded")
    );
    assert_eq!(
        s.commit_batch(&ok, &actor(6)).await.unwrap().rejected,
        vec![a]
    );
    let completions = s
        .events(&EventQuery {
            task: Some(a),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.after.as_ref().is_some_and(|v| v["status"] == "completed"))
        .count();
    assert_eq!(completions, 1);
}

pub async fn retries_wait_for_their_time(f: Fixture) {
    let s = &*f.store;
    let a = s
        .create_task(&new_task("a"), &[], &actor(0))
        .await
        .unwrap()
        .id;
    let c = s
        .commit_batch(&claim_batch(&[a], "r", 60_000), &actor(0))
        .await
        .unwrap()
        .claimed[0];
    let mut fail = finish(
        a,
        c.epoch,
        c.attempt_id,
        FinishStatus::Retry {
            not_before: actor(10_000).now,
        },
    );
    fail.outcome = "failed".into();
    fail.summary = None;
    fail.error = Some("exit code 1".into());
    fail.artifacts.clear();
    s.commit_batch(
        &Batch {
            finishes: vec![fail],
            ..Default::default()
        },
        &actor(1),
    )
    .await
    .unwrap();
    let t = s.task(a).await.unwrap();
    assert_eq!(
        (t.status, t.not_before, t.result.as_deref()),
        (
            Status::Pending,
            Some(actor(10_000).now),
            Some("exit code 1")
        )
    );
    let early = s
        .commit_batch(&claim_batch(&[a], "r", 60_000), &actor(5_000))
        .await
        .unwrap();
    assert_eq!(early.not_claimed, vec![a], "not before its retry time");
    let due = s
        .commit_batch(&claim_batch(&[a], "r", 60_000), &actor(10_000))
        .await
        .unwrap();
    assert_eq!(due.claimed[0].number, 2);
}

/// A completed task's flag effects, as the engine attaches them to its finish.
fn flagged(task: TaskId, epoch: i64, attempt_id: i64, dependents: Vec<TaskId>) -> Finish {
    use downbeat_core::flags::Effect;
    use downbeat_core::task::Priority;
    let mut f = finish(task, epoch, attempt_id, FinishStatus::Completed);
    f.artifacts.clear();
    f.effects = vec![
        Effect::RecordFlag {
            task,
            flag: "DB".into(),
        },
        Effect::FollowUp {
            from: task,
            flag: "DB".into(),
            task: NewTask {
                priority: Priority::High,
                ..new_task("follow up DB")
            },
            hold: Some("flag DB raised".into()),
        },
        Effect::RaisePriority {
            from: task,
            flag: "DB".into(),
            priority: Priority::High,
            tasks: dependents,
        },
        Effect::Stop {
            from: task,
            flag: "DB".into(),
            reason: "flag DB raised".into(),
        },
    ];
    f
}

/// Events of `action` about `entity`.
async fn events_of(s: &dyn Store, action: &str, entity: &str) -> usize {
    let all = s.events(&EventQuery::default()).await.unwrap();
    all.iter()
        .filter(|e| e.action == action && e.entity == entity)
        .count()
}

pub async fn completion_effects_commit_with_the_completion(f: Fixture) {
    let s = &*f.store;
    let a = s
        .create_task(&new_task("a"), &[], &actor(0))
        .await
        .unwrap()
        .id;
    let d = s
        .create_task(&new_task("d"), &[a], &actor(0))
        .await
        .unwrap()
        .id;
    let c = s
        .commit_batch(&claim_batch(&[a], "runner-1", 60_000), &actor(1))
        .await
        .unwrap()
        .claimed[0];
    let done = Batch {
        finishes: vec![flagged(a, c.epoch, c.attempt_id, vec![d])],
        ..Default::default()
    };
    let r = s.commit_batch(&done, &actor(2)).await.unwrap();
    assert!(r.rejected.is_empty());
    assert_eq!(r.effects.len(), 1);
    let fx = &r.effects[0];
    assert_eq!((fx.task, fx.created.len(), fx.changed), (a, 1, true));
    assert_eq!(fx.stops, vec!["flag DB raised".to_owned()]);
    let follow = fx.created[0];
    assert_eq!(s.task(a).await.unwrap().status, Status::Completed);
    assert_eq!(s.task(follow).await.unwrap().title, "follow up DB");
    let linked = Edge {
        from: a,
        to: follow,
        kind: EdgeKind::DiscoveredFrom,
    };
    assert!(s.edges_of(follow).await.unwrap().contains(&linked));
    let raised = s.task(d).await.unwrap().priority;
    assert_eq!(raised, downbeat_core::task::Priority::High);
    assert_eq!(fx.holds.len(), 1);
    assert_eq!(fx.holds[0].task, Some(follow));
    assert_eq!(s.holds().await.unwrap(), fx.holds);
    assert_eq!(events_of(s, "flag.raised", &a.to_string()).await, 1);
    assert_eq!(events_of(s, "hold.added", &follow.to_string()).await, 1);
    assert_eq!(events_of(s, "task.updated", &d.to_string()).await, 1);
    // A stale finish applies none of its effects.
    let b = s
        .create_task(&new_task("b"), &[], &actor(3))
        .await
        .unwrap()
        .id;
    let first = s
        .commit_batch(&claim_batch(&[b], "runner-1", 60_000), &actor(4))
        .await
        .unwrap()
        .claimed[0];
    s.requeue_running(None, &["runner-1".to_owned()], &actor(5))
        .await
        .unwrap();
    s.commit_batch(&claim_batch(&[b], "runner-2", 60_000), &actor(6))
        .await
        .unwrap();
    let tasks = s.task_count().await.unwrap();
    let late = Batch {
        finishes: vec![flagged(b, first.epoch, first.attempt_id, vec![])],
        ..Default::default()
    };
    let r = s.commit_batch(&late, &actor(7)).await.unwrap();
    assert_eq!((r.rejected, r.effects), (vec![b], vec![]));
    assert_eq!(s.task_count().await.unwrap(), tasks);
    assert_eq!(events_of(s, "flag.raised", &b.to_string()).await, 0);
    assert_eq!(s.holds_and_last().await.unwrap().1, 1);
}

pub async fn failing_effects_roll_back_the_completion(f: Fixture) {
    let s = &*f.store;
    let a = s
        .create_task(&new_task("a"), &[], &actor(0))
        .await
        .unwrap()
        .id;
    let c = s
        .commit_batch(&claim_batch(&[a], "runner-1", 60_000), &actor(1))
        .await
        .unwrap()
        .claimed[0];
    let tasks = s.task_count().await.unwrap();
    let missing = TaskId::from_seq(999_999).unwrap();
    // Raising the priority of a task that does not exist fails, after the follow-up and its
    // hold were written: the completion goes with them.
    let done = Batch {
        finishes: vec![flagged(a, c.epoch, c.attempt_id, vec![missing])],
        ..Default::default()
    };
    assert!(s.commit_batch(&done, &actor(2)).await.is_err());
    let t = s.task(a).await.unwrap();
    assert_eq!((t.status, t.lease_epoch), (Status::Running, c.epoch));
    assert_eq!(s.task_count().await.unwrap(), tasks);
    assert_eq!(events_of(s, "flag.raised", &a.to_string()).await, 0);
    assert_eq!(s.holds_and_last().await.unwrap(), (vec![], 0));
    // Discovered work that would block a task that does not exist fails the same way.
    let mut f2 = finish(a, c.epoch, c.attempt_id, FinishStatus::Completed);
    f2.effects = vec![downbeat_core::flags::Effect::Discover {
        from: a,
        task: new_task("found"),
        blocks: vec![missing],
    }];
    let found = Batch {
        finishes: vec![f2],
        ..Default::default()
    };
    assert!(s.commit_batch(&found, &actor(3)).await.is_err());
    assert_eq!(s.task(a).await.unwrap().status, Status::Running);
    assert_eq!(s.task_count().await.unwrap(), tasks);
    assert!(s.artifacts().await.unwrap().is_empty());
    // The same completion without the failing effect lands.
    let ok = Batch {
        finishes: vec![flagged(a, c.epoch, c.attempt_id, vec![])],
        ..Default::default()
    };
    let r = s.commit_batch(&ok, &actor(4)).await.unwrap();
    assert_eq!(r.effects[0].created.len(), 1);
    assert_eq!(s.task(a).await.unwrap().status, Status::Completed);
}

pub async fn concurrent_edges_cannot_close_a_cycle(f: Fixture) {
    let other = (f.reopen)().await;
    let (s1, s2) = (&*f.store, &*other);
    let mut ids = Vec::new();
    for i in 0..24 {
        ids.push(
            s1.create_task(&new_task(&format!("t{i}")), &[], &actor(i))
                .await
                .unwrap()
                .id,
        );
    }
    // Two writers add opposite edges at the same time: each check alone sees no cycle, so
    // the checks must not run side by side.
    for pair in ids.chunks(2) {
        let (x, y) = (pair[0], pair[1]);
        let at = actor(50);
        let (r1, r2) = tokio::join!(
            s1.add_edge(blocks(x, y), &at),
            s2.add_edge(blocks(y, x), &at)
        );
        let ok = [&r1, &r2].iter().filter(|r| matches!(r, Ok(true))).count();
        let cycles = [&r1, &r2]
            .iter()
            .filter(|r| matches!(r, Err(Error::Cycle(_))))
            .count();
        assert_eq!((ok, cycles), (1, 1), "{r1:?} {r2:?}");
    }
    let snap = s2.graph().await.unwrap();
    assert!(downbeat_core::graph::find_cycle(&snap).is_none());
    assert_eq!(snap.edges.len(), 12);
}

pub async fn event_readers_miss_nothing(f: Fixture) {
    let other = (f.reopen)().await;
    let stores: Vec<std::sync::Arc<dyn Store>> = vec![f.store.into(), other.into()];
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..3usize {
        let s = stores[w % 2].clone();
        writers.push(tokio::spawn(async move {
            for i in 0..20 {
                let t = s
                    .create_task(&new_task(&format!("w{w}-{i}")), &[], &actor(i))
                    .await
                    .unwrap();
                s.set_status(t.id, Status::Running, None, &actor(i))
                    .await
                    .unwrap();
            }
        }));
    }
    // A reader following the log by sequence number, as runners do, while others write.
    let reader = {
        let s = stores[1].clone();
        let done = done.clone();
        tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut last = 0;
            loop {
                let finished = done.load(std::sync::atomic::Ordering::SeqCst);
                let ev = s
                    .events(&EventQuery {
                        after_seq: Some(last),
                        ..Default::default()
                    })
                    .await
                    .unwrap();
                for e in &ev {
                    assert!(e.seq > last);
                    last = e.seq;
                    seen.push(e.seq);
                }
                if finished && ev.is_empty() {
                    return seen;
                }
                tokio::task::yield_now().await;
            }
        })
    };
    for w in writers {
        w.await.unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let seen = reader.await.unwrap();
    let all: Vec<i64> = stores[0]
        .events(&EventQuery::default())
        .await
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(all.len(), 120);
    assert_eq!(seen, all, "the reader skipped events committed late");
    assert_eq!(
        stores[0].last_event_seq().await.unwrap(),
        *all.last().unwrap()
    );
}

/// `ready_tasks`: leaves only, blockers of the task and of its ancestors finished, container
/// blockers counted as unfinished, highest priority first.
pub async fn ready_tasks_look_at_blockers_and_ancestors(f: Fixture) {
    let s = &*f.store;
    let applied = apply(
        s,
        r#"
[[tasks]]
key = "a"
title = "A"
[[tasks]]
key = "b"
title = "B"
depends_on = ["a"]
[[tasks]]
key = "epic"
title = "Epic"
[[tasks]]
key = "c1"
title = "C1"
parent = "epic"
[[tasks]]
key = "d"
title = "D"
depends_on = ["epic"]
[[tasks]]
key = "g2"
title = "G2"
depends_on = ["a"]
[[tasks]]
key = "e"
title = "E"
parent = "g2"
[[tasks]]
key = "h"
title = "H"
priority = "high"
"#,
    )
    .await
    .unwrap();
    let id = |k: &str| {
        applied
            .tasks
            .iter()
            .find(|(key, _)| key.as_deref() == Some(k))
            .map(|(_, id)| *id)
            .unwrap()
    };
    let ready = |limit| async move {
        s.ready_tasks(limit, actor(5).now)
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(ready(10).await, vec![id("h"), id("a"), id("c1")]);
    assert_eq!(ready(1).await, vec![id("h")]);
    s.set_status(id("a"), Status::Running, None, &actor(2))
        .await
        .unwrap();
    s.set_status(id("a"), Status::Completed, None, &actor(3))
        .await
        .unwrap();
    assert_eq!(ready(10).await, vec![id("h"), id("b"), id("c1"), id("e")]);
}

/// Worker registry: registration and departure are logged, liveness follows the heartbeat,
/// and each worker's leases are listed with it.
pub async fn workers_register_beat_and_leave(f: Fixture) {
    let s = &*f.store;
    let w = |name: &str, ttl_ms: i64| crate::WorkerRecord {
        name: name.into(),
        host: "h1".into(),
        pid: 42,
        roles: vec!["tester".into()],
        executors: vec![],
        labels: vec!["gpu".into()],
        slots: 2,
        started_at: actor(0).now,
        heartbeat_at: actor(0).now,
        ttl_ms,
        alive: false,
        holding: vec![],
    };
    s.register_worker(&w("worker:a", 600_000), &actor(0))
        .await
        .unwrap();
    s.register_worker(&w("worker:b", -1), &actor(0))
        .await
        .unwrap();
    let t = s
        .create_task(&new_task("t"), &[], &actor(1))
        .await
        .unwrap()
        .id;
    let got = s
        .commit_batch(&claim_batch(&[t], "worker:a", 60_000), &actor(2))
        .await
        .unwrap();
    assert_eq!(got.claimed.len(), 1);
    assert!(s.worker_heartbeat("worker:a", actor(3).now).await.unwrap());
    assert!(
        !s.worker_heartbeat("worker:nobody", actor(3).now)
            .await
            .unwrap()
    );
    let list = s.workers(actor(4).now).await.unwrap();
    let names: Vec<(&str, bool, Vec<TaskId>)> = list
        .iter()
        .map(|w| (w.name.as_str(), w.alive, w.holding.clone()))
        .collect();
    assert_eq!(
        names,
        vec![("worker:a", true, vec![t]), ("worker:b", false, vec![])]
    );
    assert_eq!(list[0].roles, vec!["tester".to_owned()]);
    assert_eq!((list[0].slots, list[0].labels.len()), (2, 1));
    assert!(
        s.deregister_worker("worker:b", "stopped", &actor(5))
            .await
            .unwrap()
    );
    assert!(
        !s.deregister_worker("worker:b", "stopped", &actor(5))
            .await
            .unwrap()
    );
    assert_eq!(s.workers(actor(6).now).await.unwrap().len(), 1);
    let actions: Vec<String> = s
        .events(&EventQuery::default())
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action.starts_with("worker."))
        .map(|e| format!("{} {}", e.action, e.entity))
        .collect();
    assert_eq!(
        actions,
        vec![
            "worker.registered worker:a",
            "worker.registered worker:b",
            "worker.deregistered worker:b"
        ]
    );
}

pub async fn holds_last_until_their_task_ends_or_release(f: Fixture) {
    let s = f.store.as_ref();
    let other = (f.reopen)().await;
    assert!(s.holds().await.unwrap().is_empty());
    let follow_up = s
        .create_task(&new_task("respond to the breach"), &[], &actor(1))
        .await
        .unwrap();
    let other_task = s
        .create_task(&new_task("anything else"), &[], &actor(1))
        .await
        .unwrap();
    // A hold on a task is seen through every handle, and logged.
    let h = s
        .add_hold(Some(follow_up.id), "flag SECURITY_BREACH", &actor(2))
        .await
        .unwrap();
    assert_eq!((h.id, h.task), (1, Some(follow_up.id)));
    assert_eq!(other.holds().await.unwrap(), vec![h.clone()]);
    let log = s.events(&EventQuery::default()).await.unwrap();
    let added = log.iter().find(|e| e.action == "hold.added").unwrap();
    assert_eq!(added.entity, follow_up.id.to_string());
    // Bad input.
    assert!(matches!(
        s.add_hold(None, "  ", &actor(3)).await,
        Err(Error::Invalid(_))
    ));
    assert!(s.release_holds(Some(99), &actor(3)).await.is_err());
    // Concurrent adds through two handles lose nothing.
    let at4 = actor(4);
    let (a, b) = tokio::join!(
        s.add_hold(None, "paused by hand", &at4),
        other.add_hold(Some(other_task.id), "second", &at4),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_ne!(a.id, b.id);
    assert_eq!(s.holds().await.unwrap().len(), 3);
    // A task hold ends with its task.
    s.set_status(follow_up.id, Status::Completed, None, &actor(5))
        .await
        .unwrap();
    let left: Vec<u32> = s.holds().await.unwrap().iter().map(|h| h.id).collect();
    assert_eq!(left, {
        let mut v = vec![a.id, b.id];
        v.sort();
        v
    });
    // Released one by one or all at once; releasing is logged.
    let released = other.release_holds(Some(a.id), &actor(6)).await.unwrap();
    assert_eq!(released.len(), 1);
    assert_eq!(released[0].task, None);
    let released = s.release_holds(None, &actor(7)).await.unwrap();
    assert_eq!(
        released.iter().map(|h| h.id).collect::<Vec<_>>(),
        vec![b.id]
    );
    assert!(s.holds().await.unwrap().is_empty());
    assert!(s.release_holds(None, &actor(8)).await.unwrap().is_empty());
    let log = s.events(&EventQuery::default()).await.unwrap();
    assert_eq!(
        log.iter().filter(|e| e.action == "hold.released").count(),
        2
    );
    // Numbers are not reused.
    let next = s.add_hold(None, "again", &actor(9)).await.unwrap();
    assert!(next.id > b.id, "{next:?}");
}

/// A batch carries the number of the last hold its claimer knew of: when a later hold exists,
/// none of its claims is taken (its finishes are), and the result says so. Released holds
/// still count (their numbers are not reused); a batch that knows the number claims.
pub async fn claims_chosen_before_a_hold_are_refused(f: Fixture) {
    let s = f.store.as_ref();
    let other = (f.reopen)().await;
    let mut ids = Vec::new();
    for t in ["a", "b", "c", "follow-up"] {
        ids.push(
            s.create_task(&new_task(t), &[], &actor(1))
                .await
                .unwrap()
                .id,
        );
    }
    let (a, b, c, follow_up) = (ids[0], ids[1], ids[2], ids[3]);
    assert_eq!(s.holds_and_last().await.unwrap().1, 0);
    let first = s
        .commit_batch(
            &Batch {
                holds_seen: Some(0),
                ..claim_batch(&[a], "w1", 60_000)
            },
            &actor(2),
        )
        .await
        .unwrap();
    assert!(!first.held);
    let got = first.claimed[0];

    // Another runner adds a hold after this one chose b and c.
    let h = other
        .add_hold(Some(follow_up), "flag SECURITY_BREACH", &actor(3))
        .await
        .unwrap();
    assert_eq!(s.holds_and_last().await.unwrap().1, h.id);
    let stale = Batch {
        finishes: vec![finish(
            a,
            got.epoch,
            got.attempt_id,
            FinishStatus::Completed,
        )],
        holds_seen: Some(0),
        ..claim_batch(&[b, c], "w1", 60_000)
    };
    let res = s.commit_batch(&stale, &actor(4)).await.unwrap();
    assert!(res.held, "{res:?}");
    assert!(res.claimed.is_empty());
    assert_eq!(res.not_claimed, vec![b, c]);
    assert!(res.rejected.is_empty());
    assert_eq!(s.task(a).await.unwrap().status, Status::Completed);
    for t in [b, c] {
        let t = s.task(t).await.unwrap();
        assert_eq!((t.status, t.attempts), (Status::Pending, 0));
    }

    // Knowing the hold, the claimer takes what the hold lets start.
    let res = s
        .commit_batch(
            &Batch {
                holds_seen: Some(h.id),
                ..claim_batch(&[follow_up], "w1", 60_000)
            },
            &actor(5),
        )
        .await
        .unwrap();
    assert!(!res.held);
    assert_eq!(res.claimed.len(), 1);
    // A batch without a number is not checked; nor is one without claims.
    let res = s
        .commit_batch(&claim_batch(&[b], "w1", 60_000), &actor(6))
        .await
        .unwrap();
    assert!(!res.held && res.claimed.len() == 1, "{res:?}");
    let empty = Batch {
        holds_seen: Some(0),
        ..claim_batch(&[], "w1", 60_000)
    };
    assert!(!s.commit_batch(&empty, &actor(7)).await.unwrap().held);
    // Released, the hold's number still counts.
    s.release_holds(None, &actor(8)).await.unwrap();
    let res = s
        .commit_batch(
            &Batch {
                holds_seen: Some(0),
                ..claim_batch(&[c], "w1", 60_000)
            },
            &actor(9),
        )
        .await
        .unwrap();
    assert!(res.held);
    assert_eq!(s.task(c).await.unwrap().status, Status::Pending);
}
