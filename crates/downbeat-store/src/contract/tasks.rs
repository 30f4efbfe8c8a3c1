//! Contract cases on tasks and plans: creation and lookup, plan application, the state
//! machine, containers, updates and filters.

use downbeat_core::ids::TaskId;
use downbeat_core::task::{Status, TaskPatch};

use crate::{Error, TaskFilter};

use super::support::{Fixture, actor, apply, blocks, new_task};

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
    // More keyed tasks stored than keys asked about: the asked keys are looked up.
    let mut views = new_task("Write views");
    views.key = Some("views".into());
    s.create_task(&views, &[], &actor(1)).await.unwrap();
    let used = s.keys_in_use(&["views".into()]).await.unwrap();
    assert_eq!(
        used.into_iter().collect::<Vec<_>>(),
        vec!["views".to_owned()]
    );
    assert!(s.keys_in_use(&[]).await.unwrap().is_empty());
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

/// A living plan's changes (updates, moves, edges out and in, new tasks, cancellations and the
/// plan's record) commit together; a task seen in another status refuses them all.
pub async fn plan_changes_apply_in_one_transaction(f: Fixture) {
    use downbeat_core::plan::{TaskRef, ValidatedPlan, ValidatedTask};
    use downbeat_core::plan_diff::PlanChanges;
    use downbeat_core::task::{EdgeKind, NewTask};

    let s = &*f.store;
    let first = apply(
        s,
        "[[tasks]]\nkey = \"a\"\ntitle = \"A\"\n[[tasks]]\nkey = \"b\"\ntitle = \"B\"\ndepends_on = [\"a\"]\n[[tasks]]\nkey = \"c\"\ntitle = \"C\"\n",
    )
    .await
    .unwrap();
    let (a, b, c) = (first.tasks[0].1, first.tasks[1].1, first.tasks[2].1);
    let new = ValidatedTask {
        new: NewTask {
            key: Some("d".into()),
            title: "D".into(),
            effort: 1,
            ..NewTask::default()
        },
        parent: None,
    };
    let changes = PlanChanges {
        plan: ValidatedPlan {
            name: Some("demo".into()),
            tasks: vec![new],
            edges: vec![(TaskRef::Existing(a), TaskRef::New(0), EdgeKind::Blocks)],
            ..ValidatedPlan::default()
        }
        .into(),
        updates: vec![(
            b,
            TaskPatch {
                title: Some("B2".into()),
                ..TaskPatch::default()
            },
        )],
        parents: vec![(b, Some(TaskRef::New(0)))],
        edges_added: vec![(TaskRef::New(0), a, EdgeKind::Related)],
        edges_removed: vec![blocks(a, b)],
        cancel: vec![c],
        expect: vec![(b, Status::Pending), (c, Status::Pending)],
        record: Some(("plan:demo".into(), "{\"keys\":[]}".into())),
        statuses: Vec::new(),
    };
    // A task that moved on since the diff: nothing is written.
    let mut stale = changes.clone();
    stale.expect.push((a, Status::Running));
    let err = s.apply_plan_changes(&stale, &actor(2)).await.unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err}");
    assert_eq!(s.task_count().await.unwrap(), 3);
    assert_eq!(s.task(b).await.unwrap().title, "B");
    assert_eq!(s.meta_get("plan:demo").await.unwrap(), None);
    // Applied: every part at once.
    let out = s.apply_plan_changes(&changes, &actor(3)).await.unwrap();
    assert_eq!(out.tasks.len(), 1);
    let d = out.tasks[0].1;
    let b_now = s.task(b).await.unwrap();
    assert_eq!(b_now.title, "B2");
    assert_eq!(b_now.parent, Some(d));
    assert_eq!(s.task(c).await.unwrap().status, Status::Cancelled);
    let mut edges = s.edges_of(a).await.unwrap();
    edges.sort_by_key(|e| (e.to, e.kind));
    let mut want = vec![
        blocks(a, d),
        downbeat_core::task::Edge {
            from: d,
            to: a,
            kind: EdgeKind::Related,
        },
    ];
    want.sort_by_key(|e| (e.to, e.kind));
    assert_eq!(edges, want);
    assert_eq!(
        s.meta_get("plan:demo").await.unwrap().as_deref(),
        Some("{\"keys\":[]}")
    );
    // A change that closes a cycle is refused whole.
    let cyc = PlanChanges {
        edges_added: vec![(TaskRef::Existing(b), a, EdgeKind::Blocks)],
        updates: vec![(
            a,
            TaskPatch {
                title: Some("A2".into()),
                ..TaskPatch::default()
            },
        )],
        ..PlanChanges::default()
    };
    assert!(matches!(
        s.apply_plan_changes(&cyc, &actor(4)).await,
        Err(Error::Cycle(_))
    ));
    assert_eq!(s.task(a).await.unwrap().title, "A");
}

/// New tasks of a plan start in the statuses it gives them (an import), in the same
/// transaction; a status the state machine does not allow from `pending` refuses everything.
pub async fn plan_changes_start_new_tasks_in_their_status(f: Fixture) {
    use downbeat_core::plan::{TaskRef, ValidatedPlan, ValidatedTask};
    use downbeat_core::plan_diff::PlanChanges;
    use downbeat_core::task::NewTask;

    let s = &*f.store;
    let task = |k: &str| ValidatedTask {
        new: NewTask {
            key: Some(k.into()),
            title: k.to_uppercase(),
            effort: 1,
            ..NewTask::default()
        },
        parent: None,
    };
    let plan = ValidatedPlan {
        name: Some("imported".into()),
        tasks: vec![task("done"), task("held"), task("open")],
        ..ValidatedPlan::default()
    };
    let bad = PlanChanges {
        plan: plan.clone().into(),
        statuses: vec![
            (TaskRef::New(0), Status::Completed),
            (TaskRef::New(2), Status::Failed),
        ],
        ..PlanChanges::default()
    };
    assert!(s.apply_plan_changes(&bad, &actor(1)).await.is_err());
    assert_eq!(s.task_count().await.unwrap(), 0, "nothing was written");
    let good = PlanChanges {
        plan: plan.into(),
        statuses: vec![
            (TaskRef::New(0), Status::Completed),
            (TaskRef::New(1), Status::Blocked),
        ],
        ..PlanChanges::default()
    };
    let out = s.apply_plan_changes(&good, &actor(2)).await.unwrap();
    let status = |i: usize| {
        let id = out.tasks[i].1;
        async move { s.task(id).await.unwrap().status }
    };
    assert_eq!(status(0).await, Status::Completed);
    assert_eq!(status(1).await, Status::Blocked);
    assert_eq!(status(2).await, Status::Pending);
}

/// `tasks_chunked` hands over exactly what `tasks` returns, in the same order, whatever the
/// chunks (a project larger than one chunk of the SQLite backend's reads).
pub async fn tasks_come_in_chunks_in_list_order(f: Fixture) {
    use downbeat_core::plan::{ValidatedPlan, ValidatedTask};
    use downbeat_core::task::NewTask;
    let s = &*f.store;
    let mut plan = ValidatedPlan::default();
    for i in 0..25_000 {
        plan.tasks.push(ValidatedTask {
            new: NewTask {
                title: format!("task {i}"),
                ..Default::default()
            },
            parent: None,
        });
    }
    s.apply_plan(&plan, &actor(0)).await.unwrap();
    let all = s.tasks(&TaskFilter::default()).await.unwrap();
    let mut chunks = Vec::new();
    s.tasks_chunked(&TaskFilter::default(), &mut |c| chunks.push(c))
        .await
        .unwrap();
    assert!(chunks.iter().all(|c| !c.is_empty()));
    let joined: Vec<_> = chunks.into_iter().flatten().collect();
    assert_eq!(joined.len(), 25_000);
    assert_eq!(joined, all);
    // A filter applies to every chunk.
    let mut n = 0;
    let pending = TaskFilter {
        statuses: vec![Status::Completed],
        ..Default::default()
    };
    s.tasks_chunked(&pending, &mut |c| n += c.len())
        .await
        .unwrap();
    assert_eq!(n, 0);
}
