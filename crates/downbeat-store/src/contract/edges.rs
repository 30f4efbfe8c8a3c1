//! Contract cases on edges: cycles refused (also under concurrent writers) and readiness
//! through blockers and ancestors.

use downbeat_core::task::{Edge, EdgeKind, Status};

use crate::Error;

use super::support::{Fixture, actor, apply, blocks, new_task};

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
