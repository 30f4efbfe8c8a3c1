//! Contract cases on leases and holds: renewal and expiry, holds until their task ends or
//! is released, and batches chosen before a hold.

use downbeat_core::context::Actor;
use downbeat_core::ids::TaskId;
use downbeat_core::task::Status;
use downbeat_core::time::Timestamp;

use crate::{Batch, Error, EventQuery, FinishStatus};

use super::support::{Fixture, actor, claim_batch, finish, new_task};

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
