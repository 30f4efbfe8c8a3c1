//! Contract cases on context records and the event log: metadata, logging of every change,
//! record round trips and event readers.

use downbeat_core::context::ObjectiveStatus;
use downbeat_core::ids::{RecordId, RecordKind};
use downbeat_core::task::Status;
use downbeat_core::time::Timestamp;

use crate::{Error, EventQuery, Store};

use super::support::{Fixture, actor, new_task};

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

pub async fn objectives_are_linked_after_they_are_recorded(f: Fixture) {
    let s = &*f.store;
    let a = s
        .create_task(&new_task("a"), &[], &actor(0))
        .await
        .unwrap()
        .id;
    let b = s
        .create_task(&new_task("b"), &[], &actor(1))
        .await
        .unwrap()
        .id;
    let o = s.add_objective("Ship it", &[a], &actor(2)).await.unwrap();
    let linked = s.link_objective(o.id, &[b, a], &actor(3)).await.unwrap();
    assert_eq!(linked.tasks, vec![a, b]);
    assert_eq!(linked.updated_at, actor(3).now);
    let ev = s.events(&EventQuery::default()).await.unwrap();
    let last = ev.last().unwrap();
    assert_eq!(
        (last.action.as_str(), last.entity.as_str()),
        ("objective.linked", "o1")
    );
    assert_eq!(
        last.after,
        Some(serde_json::json!({"tasks": [b.to_string()]}))
    );
    // Nothing new: no event, nothing changed.
    let again = s.link_objective(o.id, &[b], &actor(4)).await.unwrap();
    assert_eq!(again, linked);
    assert_eq!(s.last_event_seq().await.unwrap(), last.seq);
    // Unknown objective or task: refused, nothing written.
    let missing = RecordId::new(RecordKind::Objective, 9);
    assert!(matches!(
        s.link_objective(missing, &[a], &actor(5)).await,
        Err(Error::NotFound { .. })
    ));
    let ghost = downbeat_core::ids::TaskId::from_seq(999_999).unwrap();
    assert!(s.link_objective(o.id, &[ghost], &actor(5)).await.is_err());
    assert_eq!(s.objectives().await.unwrap()[0].tasks, vec![a, b]);
    assert_eq!(s.last_event_seq().await.unwrap(), last.seq);
}

/// A proposed decision is pending until it is accepted or rejected, each change one event in
/// its transaction; a decision that is not proposed cannot be decided again.
pub async fn decisions_are_proposed_then_decided(f: Fixture) {
    use downbeat_core::context::DecisionStatus;
    let s = &*f.store;
    let t = s
        .create_task(&new_task("a"), &[], &actor(1))
        .await
        .unwrap()
        .id;
    let plain = s
        .add_decision("Use Redis", "shared counters", None, None, &actor(2))
        .await
        .unwrap();
    assert_eq!(plain.status, DecisionStatus::Accepted);
    assert!(plain.in_force());
    let p1 = s
        .propose_decision(" Use Authlib ", "maintained", Some(t), &actor(3))
        .await
        .unwrap();
    assert_eq!(
        (p1.status, p1.text.as_str(), p1.task, p1.decided_at),
        (DecisionStatus::Proposed, "Use Authlib", Some(t), None)
    );
    assert!(p1.is_pending() && !p1.in_force());
    let p2 = s
        .propose_decision("Drop the cache", "", None, &actor(4))
        .await
        .unwrap();
    let a = s
        .decide(p1.id, DecisionStatus::Accepted, "", &actor(5))
        .await
        .unwrap();
    assert_eq!(
        (a.status, a.decided_at),
        (DecisionStatus::Accepted, Some(actor(5).now))
    );
    assert!(a.in_force());
    let r = s
        .decide(p2.id, DecisionStatus::Rejected, " too risky ", &actor(6))
        .await
        .unwrap();
    assert_eq!(
        (r.status, r.decided_why.as_str()),
        (DecisionStatus::Rejected, "too risky")
    );
    assert!(!r.in_force() && !r.is_pending());
    assert_eq!(s.decisions().await.unwrap(), vec![plain.clone(), a, r]);

    // Only a proposal is decided, only as accepted or rejected.
    for (id, to) in [
        (p1.id, DecisionStatus::Rejected),
        (p2.id, DecisionStatus::Accepted),
        (plain.id, DecisionStatus::Rejected),
    ] {
        let err = s.decide(id, to, "", &actor(7)).await.unwrap_err();
        assert!(matches!(err, Error::Conflict(_)), "{err}");
        assert!(err.to_string().contains("not proposed"), "{err}");
    }
    let p3 = s.propose_decision("x", "", None, &actor(7)).await.unwrap();
    assert!(matches!(
        s.decide(p3.id, DecisionStatus::Proposed, "", &actor(8))
            .await,
        Err(Error::Invalid(_))
    ));
    let missing = RecordId::new(RecordKind::Decision, 42);
    assert!(matches!(
        s.decide(missing, DecisionStatus::Accepted, "", &actor(8))
            .await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        s.propose_decision("  ", "", None, &actor(8)).await,
        Err(Error::Invalid(_))
    ));

    let log: Vec<(String, String)> = s
        .events(&EventQuery::default())
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action.starts_with("decision."))
        .map(|e| (e.action, e.entity))
        .collect();
    let want: Vec<(String, String)> = [
        ("decision.added", plain.id),
        ("decision.proposed", p1.id),
        ("decision.proposed", p2.id),
        ("decision.accepted", p1.id),
        ("decision.rejected", p2.id),
        ("decision.proposed", p3.id),
    ]
    .into_iter()
    .map(|(a, id)| (a.to_owned(), id.to_string()))
    .collect();
    assert_eq!(log, want);
    // Decisions made: the one added and the one accepted.
    assert_eq!(s.metrics().await.unwrap().decisions, 2);
}
