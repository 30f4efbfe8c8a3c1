//! Contract cases on maintenance: concurrent writers, archiving and the integrity check.

use downbeat_core::task::Status;

use crate::{EventQuery, Store, TaskFilter};

use super::support::{Fixture, actor, new_task};

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
