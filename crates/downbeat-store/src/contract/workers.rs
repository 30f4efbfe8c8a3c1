//! Contract cases on the worker registry.

use downbeat_core::ids::TaskId;

use crate::EventQuery;

use super::support::{Fixture, actor, claim_batch, new_task};

/// Worker registry: registration and departure are logged, liveness follows the heartbeat,
/// and each worker's leases are listed with it.
pub async fn workers_register_beat_and_leave(f: Fixture) {
    let s = &*f.store;
    let w = |name: &str, ttl: std::time::Duration| crate::WorkerRecord {
        name: name.into(),
        host: "h1".into(),
        pid: 42,
        roles: vec!["tester".into()],
        executors: vec![],
        labels: vec!["gpu".into()],
        slots: 2,
        started_at: actor(0).now,
        heartbeat_at: actor(0).now,
        ttl,
        alive: false,
        holding: vec![],
    };
    s.register_worker(
        &w("worker:a", std::time::Duration::from_secs(600)),
        &actor(0),
    )
    .await
    .unwrap();
    s.register_worker(&w("worker:b", std::time::Duration::ZERO), &actor(0))
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
