//! Contract cases on claims and batches: exclusivity and fencing, concurrent claimers, stale
//! epochs and retry times.

use downbeat_core::ids::TaskId;
use downbeat_core::task::Status;

use crate::{Batch, EventQuery, FinishStatus, Store};

use super::support::{Fixture, actor, claim_batch, finish, new_task};

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
    // The ledger keeps the attempt's detail (agent, session, cost, git work) as given.
    let detail = sample_detail();
    let mut fin = finish(
        b,
        claim_b.epoch,
        claim_b.attempt_id,
        FinishStatus::Completed,
    );
    fin.detail = detail.clone();
    let ok = Batch {
        finishes: vec![fin],
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
    assert_eq!(ledger[0].detail, detail);
    assert!(s.attempts(a).await.unwrap()[0].detail.is_empty());
    // The whole ledger in one read: both tasks' attempts, oldest first.
    let all = s.all_attempts().await.unwrap();
    let mut both = s.attempts(a).await.unwrap();
    both.extend(ledger);
    both.sort_by_key(|x| x.id);
    assert_eq!(all, both);
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

/// An attempt's detail with every field set, as a run of a coding agent in a worktree leaves.
fn sample_detail() -> downbeat_core::attempt::AttemptDetail {
    downbeat_core::attempt::AttemptDetail {
        agent: Some("codex".into()),
        session: Some("0199a213-81c0".into()),
        cost_usd: Some(0.0375),
        git: Some(downbeat_core::attempt::GitWork {
            branch: "downbeat/t/b/1".into(),
            base: "aaaa".into(),
            head: Some("bbbb".into()),
            merge: Some("cccc".into()),
            state: downbeat_core::attempt::MergeState::Merged,
            files: 2,
            insertions: 10,
            deletions: 1,
            ..Default::default()
        }),
    }
}

/// Group caps in a batch hold over every claimer sharing the database: running tasks of a
/// group are counted whoever holds them, claims are taken in order up to the cap, a finish in
/// the same batch frees its place first, and racing claimers never exceed a cap together.
pub async fn group_caps_hold_across_claimers(f: Fixture) {
    let other = (f.reopen)().await;
    let s = &*f.store;
    let make = |title: &str, role: &str| {
        let mut t = new_task(title);
        t.role = Some(role.into());
        t
    };
    let mut id = std::collections::HashMap::new();
    for (title, role) in [
        ("t1", "tester"),
        ("t2", "tester"),
        ("t3", "tester"),
        ("i1", "implementer"),
        ("w1", "writer"),
    ] {
        let t = s
            .create_task(&make(title, role), &[], &actor(0))
            .await
            .unwrap();
        id.insert(title, t.id);
    }
    let caps = vec![
        crate::CapLimit {
            cap: 2,
            roles: vec!["implementer".into(), "tester".into()],
        },
        crate::CapLimit {
            cap: 1,
            roles: vec!["architect".into()],
        },
    ];
    let capped = |tasks: &[TaskId], holder: &str| Batch {
        caps: caps.clone(),
        ..claim_batch(tasks, holder, 60_000)
    };
    let r1 = s
        .commit_batch(&capped(&[id["t1"]], "runner-1"), &actor(1))
        .await
        .unwrap();
    assert_eq!(r1.claimed.len(), 1);
    // Another claimer: one place is left in the group, the writer is not capped.
    let r2 = other
        .commit_batch(
            &capped(&[id["t2"], id["i1"], id["t3"], id["w1"]], "runner-2"),
            &actor(2),
        )
        .await
        .unwrap();
    let won: Vec<TaskId> = r2.claimed.iter().map(|c| c.task).collect();
    assert_eq!(won, vec![id["t2"], id["w1"]]);
    assert_eq!(r2.capped, vec![id["i1"], id["t3"]]);
    assert!(r2.capped.iter().all(|t| r2.not_claimed.contains(t)));
    assert_eq!(s.task(id["t3"]).await.unwrap().status, Status::Pending);
    // The first runner's tester ends in the batch that claims the next one: it fits.
    let c1 = r1.claimed[0];
    let mut b = capped(&[id["t3"], id["i1"]], "runner-1");
    b.finishes = vec![finish(
        c1.task,
        c1.epoch,
        c1.attempt_id,
        FinishStatus::Completed,
    )];
    let r3 = s.commit_batch(&b, &actor(3)).await.unwrap();
    assert_eq!(r3.rejected, vec![]);
    assert_eq!(
        r3.claimed.iter().map(|c| c.task).collect::<Vec<_>>(),
        vec![id["t3"]]
    );
    assert_eq!(r3.capped, vec![id["i1"]]);
    // A claimer without caps is not held to them.
    let r4 = other
        .commit_batch(&claim_batch(&[id["i1"]], "runner-3", 60_000), &actor(4))
        .await
        .unwrap();
    assert_eq!(r4.claimed.len(), 1);
    assert!(r4.capped.is_empty());
    // Racing claimers of a group of one: exactly one wins each round.
    for round in 0..5 {
        let a = s
            .create_task(&make(&format!("a{round}"), "architect"), &[], &actor(5))
            .await
            .unwrap()
            .id;
        let b = s
            .create_task(&make(&format!("b{round}"), "architect"), &[], &actor(5))
            .await
            .unwrap()
            .id;
        let (x, y) = (capped(&[a], "runner-1"), capped(&[b], "runner-2"));
        let at = actor(6 + round);
        let (rx, ry) = tokio::join!(s.commit_batch(&x, &at), other.commit_batch(&y, &at));
        let (rx, ry) = (rx.unwrap(), ry.unwrap());
        let winners: Vec<_> = rx.claimed.iter().chain(&ry.claimed).copied().collect();
        assert_eq!(winners.len(), 1, "round {round}: {rx:?} {ry:?}");
        assert_eq!(rx.capped.len() + ry.capped.len(), 1, "round {round}");
        // The winner ends; the next round starts with the group empty.
        let w = winners[0];
        let (store, holder) = if rx.claimed.is_empty() {
            (&other, "runner-2")
        } else {
            (&f.store, "runner-1")
        };
        let end = Batch {
            finishes: vec![finish(
                w.task,
                w.epoch,
                w.attempt_id,
                FinishStatus::Completed,
            )],
            ..claim_batch(&[], holder, 60_000)
        };
        assert_eq!(
            store.commit_batch(&end, &at).await.unwrap().rejected,
            vec![]
        );
    }
}
