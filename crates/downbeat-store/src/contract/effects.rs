//! Contract cases: a completion and its flag effects commit together or not at all.

use downbeat_core::ids::{AttemptId, LeaseEpoch, TaskId};
use downbeat_core::task::{Edge, EdgeKind, NewTask, Status};

use super::support::*;
use crate::{Batch, EventQuery, Finish, FinishStatus, Store};

/// A completed task's flag effects, as the engine attaches them to its finish.
fn flagged(
    task: TaskId,
    epoch: LeaseEpoch,
    attempt_id: AttemptId,
    dependents: Vec<TaskId>,
) -> Finish {
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
