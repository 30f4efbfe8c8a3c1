//! Wave building: greedy layering in topological order.

use super::NodeIdx;
use super::candidates::Candidates;
use super::plan::{Plan, Resources};

/// Without caps or footprints the greedy layering is the ASAP layering: task `v` goes to wave
/// `level[v] - 1` (computed at build time). A counting sort over the priority order keeps each
/// wave in priority order.
pub(super) fn from_levels(order: &[NodeIdx], level: &[u32]) -> Vec<Vec<NodeIdx>> {
    let mut sizes: Vec<usize> = Vec::new();
    for &v in order {
        let w = (level[v as usize] - 1) as usize;
        if w >= sizes.len() {
            sizes.resize(w + 1, 0);
        }
        sizes[w] += 1;
    }
    let mut waves: Vec<Vec<NodeIdx>> = sizes.iter().map(|&s| Vec::with_capacity(s)).collect();
    for &v in order {
        waves[(level[v as usize] - 1) as usize].push(v);
    }
    waves
}

/// The general case. Wave `w`'s candidates are the tasks whose remaining predecessors all sit in
/// waves `< w` (when the last one is placed in wave `w - 1`, they become candidates for `w`), plus
/// those deferred from `w - 1`. They are taken in priority order and admitted unless their group
/// is at its cap or their footprint overlaps one already admitted in the wave. `Running` tasks
/// are admitted to wave 0 first, unconditionally.
///
/// Each wave admits at least its first candidate (caps are at least 1, and nothing is claimed
/// yet), so this terminates; each task is admitted once.
pub(super) fn layered(plan: &Plan<'_>) -> Vec<Vec<NodeIdx>> {
    let Some(rem) = &plan.remaining else {
        return Vec::new();
    };
    let order = &plan.order;
    let mut cnt = rem.indegree.clone();
    let mut resources = Resources::new(plan);
    let mut candidates = Candidates::new(plan);
    let mut stack = Vec::new();
    let mut is_running = plan.running.iter().peekable();
    for r in 0..rem.tasks {
        if is_running.next_if_eq(&&r).is_none() && cnt[r as usize] == 0 {
            candidates.insert(r);
        }
    }
    let mut running = plan.running.clone();
    let mut waves = Vec::new();
    let mut admitted: Vec<u32> = Vec::new();
    while !candidates.is_empty() || !running.is_empty() {
        admitted.clear();
        for &r in &running {
            resources.acquire(order[r as usize]);
            admitted.push(r);
        }
        candidates.select(plan, &mut resources, usize::MAX, |r| admitted.push(r));
        if !running.is_empty() {
            admitted.sort_unstable();
            running.clear();
        }
        for &r in &admitted {
            resources.release(order[r as usize]);
        }
        for &r in &admitted {
            rem.release(&mut cnt, &mut stack, r, |t| candidates.insert(t));
        }
        waves.push(admitted.iter().map(|&r| order[r as usize]).collect());
    }
    waves
}
