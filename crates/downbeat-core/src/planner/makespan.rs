//! Makespan estimates: event simulation of list scheduling.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::candidates::Candidates;
use super::plan::{Plan, Resources};
use super::rankset::RankSet;

/// Whether [`makespan`] must simulate for `workers` workers, i.e. no shortcut applies: with one
/// worker (and at most one `Running` task) the machine never idles, so the makespan is the total
/// effort; with no constraint and at least as many workers as tasks, every task starts as soon as
/// its predecessors finish, so it is the critical path's effort.
pub(super) fn needs_simulation(plan: &Plan<'_>, workers: u32) -> bool {
    let tasks = plan.order.len();
    let k = workers.max(1) as usize;
    !(tasks == 0 || (k == 1 && plan.running.len() <= 1) || (!plan.constrained && k >= tasks))
}

/// The makespan for `workers` workers (0 counts as 1); `force` skips the shortcuts.
pub(super) fn makespan(plan: &Plan<'_>, workers: u32, force: bool) -> u64 {
    let k = workers.max(1) as usize;
    match &plan.remaining {
        Some(_) if force || needs_simulation(plan, workers) => simulate(plan, k),
        _ if plan.order.is_empty() => 0,
        _ if k == 1 => plan.total_effort,
        _ => plan.critical_path_effort,
    }
}

/// List scheduling with `k` workers. `Running` tasks start at t = 0 (all of them, whatever `k`,
/// caps and footprints). Whenever workers are free, the available tasks are considered in
/// priority order and started unless their group is at its cap among running tasks or their
/// footprint overlaps a running task's. A task takes `effort` time units (0 is allowed).
/// Events are `(finish time, rank)`; all tasks finishing at the same time are released before
/// new ones start.
fn simulate(plan: &Plan<'_>, k: usize) -> u64 {
    let Some(rem) = &plan.remaining else {
        return 0;
    };
    let order = &plan.order;
    let mut cnt = rem.indegree.clone();
    // Without constraints, a plain priority queue; with them, per-group buckets.
    let mut available = RankSet::new(if plan.constrained { 0 } else { order.len() });
    let mut candidates = plan.constrained.then(|| Candidates::new(plan));
    let mut resources = Resources::new(plan);
    let mut events: BinaryHeap<Reverse<(u64, u32)>> =
        BinaryHeap::with_capacity(k.min(order.len()) + plan.running.len());
    let mut stack = Vec::new();
    let mut busy = 0usize;
    let mut is_running = plan.running.iter().peekable();
    for r in 0..rem.tasks {
        if is_running.next_if_eq(&&r).is_some() {
            if plan.constrained {
                resources.acquire(order[r as usize]);
            }
            events.push(Reverse((u64::from(rem.effort[r as usize]), r)));
            busy += 1;
        } else if cnt[r as usize] == 0 {
            match &mut candidates {
                Some(c) => c.insert(r),
                None => available.insert(r as usize),
            }
        }
    }
    let mut now = 0;
    loop {
        if busy < k {
            if let Some(c) = &mut candidates {
                c.select(plan, &mut resources, k - busy, |r| {
                    events.push(Reverse((now + u64::from(rem.effort[r as usize]), r)));
                    busy += 1;
                });
            } else {
                while busy < k
                    && let Some(r) = available.pop_first()
                {
                    events.push(Reverse((now + u64::from(rem.effort[r]), r as u32)));
                    busy += 1;
                }
            }
        }
        let Some(Reverse((t, r))) = events.pop() else {
            break;
        };
        now = t;
        let mut done = Some(r);
        while let Some(r) = done {
            busy -= 1;
            if plan.constrained {
                resources.release(order[r as usize]);
            }
            match &mut candidates {
                Some(c) => rem.release(&mut cnt, &mut stack, r, |t| c.insert(t)),
                None => rem.release(&mut cnt, &mut stack, r, |t| available.insert(t as usize)),
            }
            done = match events.peek() {
                Some(&Reverse((t2, _))) if t2 == t => events.pop().map(|Reverse((_, r))| r),
                _ => None,
            };
        }
    }
    now
}
