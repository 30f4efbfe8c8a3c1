//! Contract cases: a completion and its flag effects commit together or not at all.

use downbeat_core::ids::{AttemptId, LeaseEpoch, TaskId};
use downbeat_core::task::{Edge, EdgeKind, NewTask, Status};

use super::support::*;
use crate::{Batch, EventQuery, Finish, FinishStatus, FlagFilter, Store};

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
            detail: "15 queries per cart".into(),
            state: downbeat_core::flags::FlagState::Raised,
            note: "waiting for its follow-up".into(),
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

/// Completes claimed task `t` with `effects`.
async fn complete_with(
    s: &dyn Store,
    t: TaskId,
    effects: Vec<downbeat_core::flags::Effect>,
    at: i64,
) -> crate::BatchResult {
    let c = s
        .commit_batch(&claim_batch(&[t], "runner-1", 60_000), &actor(at))
        .await
        .unwrap()
        .claimed[0];
    let mut f = finish(t, c.epoch, c.attempt_id, FinishStatus::Completed);
    f.artifacts.clear();
    f.effects = effects;
    let done = Batch {
        finishes: vec![f],
        ..Default::default()
    };
    s.commit_batch(&done, &actor(at + 1)).await.unwrap()
}

pub async fn flags_are_kept_with_their_state_and_follow_up(f: Fixture) {
    use downbeat_core::flags::{Effect, FlagState};
    let s = &*f.store;
    let a = s
        .create_task(&new_task("a"), &[], &actor(0))
        .await
        .unwrap()
        .id;
    let mut fx = flagged(a, Default::default(), Default::default(), vec![]).effects;
    fx.truncate(2);
    if let Effect::FollowUp { task, hold, .. } = &mut fx[1] {
        task.tags = vec!["flag:DB".into()];
        *hold = None;
    }
    fx.push(Effect::RecordFlag {
        task: a,
        flag: "ODD".into(),
        detail: String::new(),
        state: FlagState::Raised,
        note: "no rule for this flag".into(),
    });
    let r = complete_with(s, a, fx, 1).await;
    let done = &r.effects[0];
    assert_eq!(done.flags.len(), 2);
    let follow = done.created[0];
    let all = s.flags(&FlagFilter::default()).await.unwrap();
    assert_eq!(all.len(), 2);
    let db = &all[0];
    assert_eq!((db.id, db.task, db.flag.as_str()), (done.flags[0], a, "DB"));
    assert_eq!(db.detail, "15 queries per cart");
    assert_eq!((db.state, db.follow_up), (FlagState::Raised, Some(follow)));
    assert_eq!((db.raised_at, db.handled_at), (actor(2).now, None));
    assert_eq!((all[1].flag.as_str(), all[1].follow_up), ("ODD", None));
    let raised = s.events(&EventQuery::default()).await.unwrap();
    let ev = raised
        .iter()
        .find(|e| e.action == "flag.raised" && e.after.as_ref().unwrap()["flag"] == "DB")
        .unwrap();
    let after = ev.after.as_ref().unwrap();
    assert_eq!(after["follow_up"], follow.to_string());
    assert_eq!(after["id"], db.id.to_string());
    // Filters.
    let by_follow_up = FlagFilter {
        follow_up: Some(follow),
        ..Default::default()
    };
    assert_eq!(s.flags(&by_follow_up).await.unwrap(), vec![db.clone()]);
    let none = FlagFilter {
        task: Some(follow),
        ..Default::default()
    };
    assert!(s.flags(&none).await.unwrap().is_empty());
    // The follow-up's completion handles the flag, in its own commit.
    let r = complete_with(s, follow, vec![Effect::Handled { task: follow }], 3).await;
    assert_eq!(r.effects[0].handled, vec![(db.id, a, "DB".to_owned())]);
    let db = s.flags(&by_follow_up).await.unwrap().remove(0);
    assert_eq!(db.state, FlagState::Handled);
    assert_eq!(db.handled_at, Some(actor(4).now));
    assert_eq!(db.note, format!("handled by {follow}"));
    assert_eq!(events_of(s, "flag.handled", &a.to_string()).await, 1);
    let open = FlagFilter {
        state: Some(FlagState::Raised),
        ..Default::default()
    };
    let open = s.flags(&open).await.unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].flag, "ODD");
    // A follow-up completed by hand handles its flag too.
    let b = s
        .create_task(&new_task("b"), &[], &actor(5))
        .await
        .unwrap()
        .id;
    let r = complete_with(
        s,
        b,
        flagged(b, Default::default(), Default::default(), vec![]).effects[..2].to_vec(),
        6,
    )
    .await;
    let by_hand = r.effects[0].created[0];
    s.set_status(by_hand, Status::Completed, None, &actor(8))
        .await
        .unwrap();
    let flags = s
        .flags(&FlagFilter {
            task: Some(b),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(flags[0].state, FlagState::Handled);
    assert_eq!(events_of(s, "flag.handled", &b.to_string()).await, 1);
}
