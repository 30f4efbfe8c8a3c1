//! [`analyze()`](super::analyze()). Statuses, ASAP wave levels and remaining in-degrees are fixed
//! at build time (forward pass); here: one backward pass over the topological order (remaining
//! effort-weighted path lengths, critical path start), one priority sort of the remaining tasks,
//! the lists, the critical path, the waves and the makespan simulations.

use super::candidates::Groups;
use super::footprint::FootprintClaims;
use super::{
    Analysis, C_OPEN, C_RUN, C_VIRT, Dag, Makespan, NodeIdx, NodeKind, NodeState, PlanOptions, SAT,
    makespan, waves,
};

/// What the scheduling algorithms share.
pub(super) struct Plan<'a> {
    pub(super) dag: &'a Dag,
    /// The remaining tasks, highest priority first (rank → node).
    pub(super) order: Vec<NodeIdx>,
    /// Ranks of the `Running` tasks, ascending.
    pub(super) running: Vec<u32>,
    pub(super) total_effort: u64,
    pub(super) critical_path_effort: u64,
    /// Group caps, 0 raised to 1.
    pub(super) caps: Vec<Option<u32>>,
    /// Whether some remaining task is in a capped group or has a footprint.
    pub(super) constrained: bool,
    /// The remaining graph in rank space; built only when a wave or makespan computation needs it.
    pub(super) remaining: Option<Remaining>,
    /// Members of the capped groups; empty unless the general algorithms run.
    pub(super) groups: Groups,
}

impl Plan<'_> {
    /// The group index and cap of `v`, if its group is capped.
    pub(super) fn cap_of(&self, v: NodeIdx) -> Option<(usize, u32)> {
        let g = self.dag.group[v as usize]? as usize;
        let cap = (*self.caps.get(g)?)?;
        Some((g, cap))
    }
}

/// The remaining graph relabelled for the simulations: remaining task of rank `r` is node `r`,
/// pending virtual nodes follow (`tasks..`). Lists hold only remaining edges (from pending
/// nodes to pending virtual nodes and `Open` tasks). Simulations consume tasks roughly in rank
/// order, so they read these lists almost sequentially; only the in-degree counters are accessed
/// at random.
pub(super) struct Remaining {
    /// Number of remaining tasks (ids below are tasks, ids from here on are virtual nodes).
    pub(super) tasks: u32,
    off: Vec<u32>,
    targets: Vec<u32>,
    /// Initial remaining in-degree of each id.
    pub(super) indegree: Vec<u32>,
    /// Effort by rank.
    pub(super) effort: Vec<u32>,
}

impl Remaining {
    fn new(dag: &Dag, order: &[NodeIdx]) -> Self {
        const NONE: u32 = u32::MAX;
        let n = dag.len();
        let tasks = order.len() as u32;
        let mut id = vec![NONE; n];
        for (r, &v) in order.iter().enumerate() {
            id[v as usize] = r as u32;
        }
        let mut virt = Vec::new();
        for (v, &c) in dag.class.iter().enumerate() {
            if c == C_VIRT {
                id[v] = tasks + virt.len() as u32;
                virt.push(v as NodeIdx);
            }
        }
        // Edges to nodes outside the remaining graph go to a dummy id with in-degree 0, and edges
        // into `Running` tasks (whose in-degree is 0 too) stay: decrementing wraps these counters
        // far from 0, so they are never released (see `release`). No filtering, no branch.
        let dummy = tasks + virt.len() as u32;
        let total = dummy as usize + 1;
        let mut off = Vec::with_capacity(total + 1);
        let mut indegree = Vec::with_capacity(total);
        off.push(0u32);
        let mut acc = 0u32;
        for &v in order.iter().chain(&virt) {
            acc += dag.succs(v).len() as u32;
            off.push(acc);
            indegree.push(dag.remaining_in[v as usize]);
        }
        off.push(acc);
        indegree.push(0);
        // Copy the lists in index order (sequential reads), each to its place in id order.
        let mut targets = vec![0u32; acc as usize];
        for v in 0..n {
            let i = id[v];
            if i == NONE {
                continue;
            }
            let list = dag.succs(v as NodeIdx);
            let start = off[i as usize] as usize;
            for (slot, &s) in targets[start..start + list.len()].iter_mut().zip(list) {
                *slot = id[s as usize].min(dummy);
            }
        }
        let effort = order.iter().map(|&v| dag.effort[v as usize]).collect();
        Self {
            tasks,
            off,
            targets,
            indegree,
            effort,
        }
    }

    /// Marks `id` finished: decrements the in-degree of its successors, resolving virtual nodes
    /// on the spot (iteratively), and calls `ready` with the rank of each task that becomes free.
    ///
    /// Each list is walked twice: the decrements first (independent memory accesses the CPU
    /// overlaps), then the zero checks (cache hits). A node found at 0 is marked so that a
    /// duplicate edge does not release it twice. Counters starting at 0 (the dummy, `Running`
    /// tasks) wrap below 0 and would need 2^32 decrements, more than there are edges, to come
    /// back to 0.
    pub(super) fn release(
        &self,
        cnt: &mut [u32],
        stack: &mut Vec<u32>,
        id: u32,
        mut ready: impl FnMut(u32),
    ) {
        const RELEASED: u32 = u32::MAX / 2;
        stack.push(id);
        while let Some(x) = stack.pop() {
            let x = x as usize;
            let list = &self.targets[self.off[x] as usize..self.off[x + 1] as usize];
            for &t in list {
                let c = &mut cnt[t as usize];
                *c = c.wrapping_sub(1);
            }
            for &t in list {
                let c = &mut cnt[t as usize];
                if *c == 0 {
                    *c = RELEASED;
                    if t < self.tasks {
                        ready(t);
                    } else {
                        stack.push(t);
                    }
                }
            }
        }
    }
}

/// Group counters and footprint claims of the tasks currently admitted / running.
pub(super) struct Resources<'p, 'a> {
    plan: &'p Plan<'a>,
    group_used: Vec<u32>,
    footprints: FootprintClaims,
}

impl<'p, 'a> Resources<'p, 'a> {
    pub(super) fn new(plan: &'p Plan<'a>) -> Self {
        Self {
            plan,
            group_used: vec![0; plan.caps.len()],
            footprints: FootprintClaims::new(&plan.dag.footprints),
        }
    }
    /// Whether capped group `g` is at its cap.
    pub(super) fn group_full(&self, g: usize) -> bool {
        self.plan.caps[g].is_some_and(|cap| self.group_used[g] >= cap)
    }
    /// Whether `v` may join the admitted tasks.
    pub(super) fn fits(&self, v: NodeIdx) -> bool {
        if let Some((g, cap)) = self.plan.cap_of(v)
            && self.group_used[g] >= cap
        {
            return false;
        }
        let index = &self.plan.dag.footprints;
        self.footprints.fits(index, index.of(v as usize))
    }
    pub(super) fn acquire(&mut self, v: NodeIdx) {
        if let Some((g, _)) = self.plan.cap_of(v) {
            self.group_used[g] += 1;
        }
        let index = &self.plan.dag.footprints;
        self.footprints.acquire(index, index.of(v as usize));
    }
    pub(super) fn release(&mut self, v: NodeIdx) {
        if let Some((g, _)) = self.plan.cap_of(v) {
            self.group_used[g] -= 1;
        }
        let index = &self.plan.dag.footprints;
        self.footprints.release(index, index.of(v as usize));
    }
}

/// Which algorithms [`analyze_with`] uses where shortcuts exist (tests compare both ways).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Strategy {
    /// Build waves with the general algorithm even without caps or footprints.
    pub(super) always_layered: bool,
    /// Simulate every makespan, even when its value is known in advance.
    pub(super) always_simulate: bool,
}

pub(super) fn analyze(dag: &Dag, opts: &PlanOptions) -> Analysis {
    analyze_with(dag, opts, Strategy::default())
}

pub(super) fn analyze_with(dag: &Dag, opts: &PlanOptions, strategy: Strategy) -> Analysis {
    let back = Backward::new(dag);
    let caps: Vec<Option<u32>> = opts
        .group_caps
        .iter()
        .map(|c| c.map(|c| c.max(1)))
        .collect();
    let Remainder {
        tasks,
        running_count,
        total_effort,
        ready_count,
        waiting,
        stuck,
    } = Remainder::new(dag);
    let order = back.order(dag, tasks);
    let running = running_ranks(dag, &order, running_count);
    let ready = ready_tasks(dag, &order, ready_count);
    let (critical_path, critical_path_effort) = back.critical_path(dag);
    let constrained = is_constrained(dag, &order, &caps);

    let mut plan = Plan {
        dag,
        order,
        running,
        total_effort,
        critical_path_effort,
        caps,
        constrained,
        remaining: None,
        groups: Groups::default(),
    };
    if constrained || strategy.always_layered {
        plan.groups = Groups::new(&plan);
    }
    if constrained
        || strategy.always_layered
        || (strategy.always_simulate && !opts.workers.is_empty())
        || opts
            .workers
            .iter()
            .any(|&k| makespan::needs_simulation(&plan, k))
    {
        plan.remaining = Some(Remaining::new(dag, &plan.order));
    }

    let waves = if plan.constrained || strategy.always_layered {
        waves::layered(&plan)
    } else {
        waves::from_levels(&plan.order, &dag.level)
    };
    let max_parallelism = waves.iter().map(Vec::len).max().unwrap_or(0);
    let in_shared: usize = waves.iter().map(Vec::len).filter(|&l| l >= 2).sum();
    let parallel_rate = if plan.order.is_empty() {
        0.0
    } else {
        in_shared as f64 / plan.order.len() as f64
    };

    let makespans = opts
        .workers
        .iter()
        .map(|&workers| Makespan {
            workers,
            makespan: makespan::makespan(&plan, workers, strategy.always_simulate),
        })
        .collect();

    Analysis {
        ready,
        waiting,
        stuck,
        waves,
        critical_path,
        critical_path_effort,
        max_parallelism,
        parallel_rate,
        total_effort,
        makespans,
    }
}

/// The result of the backward pass over the topological order.
struct Backward {
    /// `bl[v]` = effort of the heaviest remaining path starting at `v`, for pending virtual
    /// nodes and `Open` tasks; 0 for the others, so that the max over successors needs no test.
    bl: Vec<u64>,
    /// The same for `Running` tasks (which are not successors in the remaining graph), sorted
    /// by node.
    running_bl: Vec<(NodeIdx, u64)>,
    /// Where the critical path starts and its effort: the first node in topological order
    /// with the largest value, which has no remaining predecessor.
    critical: Option<(NodeIdx, u64)>,
}

impl Backward {
    fn new(dag: &Dag) -> Self {
        let class = &dag.class;
        let mut bl = vec![0u64; dag.len()];
        let mut running_bl: Vec<(NodeIdx, u64)> = Vec::new();
        let mut critical: Option<(NodeIdx, u64)> = None;
        for &v in dag.topo.iter().rev() {
            let vu = v as usize;
            let c = class[vu];
            if c < C_VIRT {
                continue;
            }
            let mut m = 0;
            for &s in dag.succs(v) {
                m = m.max(bl[s as usize]);
            }
            let own = if c == C_VIRT {
                0
            } else {
                u64::from(dag.effort[vu])
            };
            let b = m + own;
            if c == C_RUN {
                running_bl.push((v, b));
            } else {
                bl[vu] = b;
            }
            if critical.is_none_or(|(_, best)| b >= best) {
                critical = Some((v, b));
            }
        }
        running_bl.sort_unstable();
        Self {
            bl,
            running_bl,
            critical,
        }
    }

    /// The remaining `tasks` (index order, consumed) in priority order.
    fn order(&self, dag: &Dag, tasks: Vec<NodeIdx>) -> Vec<NodeIdx> {
        let class = &dag.class;
        priority_order(
            &tasks,
            |v| {
                if class[v as usize] == C_RUN {
                    self.running_bl
                        .binary_search_by_key(&v, |&(r, _)| r)
                        .map_or(0, |i| self.running_bl[i].1)
                } else {
                    self.bl[v as usize]
                }
            },
            &dag.priority,
        )
    }

    /// The critical path and its effort: from its start, follow successors whose `bl` accounts
    /// for the rest.
    fn critical_path(&self, dag: &Dag) -> (Vec<NodeIdx>, u64) {
        let mut critical_path = Vec::new();
        let mut critical_path_effort = 0;
        if let Some((mut v, effort)) = self.critical {
            critical_path_effort = effort;
            let mut rest = effort;
            loop {
                let vu = v as usize;
                if dag.class[vu] != C_VIRT {
                    critical_path.push(v);
                    rest -= u64::from(dag.effort[vu]);
                }
                if rest == 0 {
                    break;
                }
                // Only pending virtual nodes and `Open` tasks have a non-zero `bl`.
                match dag
                    .succs(v)
                    .iter()
                    .copied()
                    .find(|&s| self.bl[s as usize] == rest)
                {
                    Some(s) => v = s,
                    None => break,
                }
            }
        }
        (critical_path, critical_path_effort)
    }
}

/// The remaining tasks in index order, with their counts and the tasks that cannot be
/// scheduled.
struct Remainder {
    /// `Open` and `Running` tasks, index order.
    tasks: Vec<NodeIdx>,
    running_count: usize,
    total_effort: u64,
    ready_count: usize,
    /// `Open` tasks with an unsatisfied predecessor.
    waiting: Vec<NodeIdx>,
    /// `Open` tasks outside the remaining graph: some predecessor is blocked.
    stuck: Vec<NodeIdx>,
}

impl Remainder {
    fn new(dag: &Dag) -> Self {
        let mut tasks = Vec::new();
        let mut running_count = 0;
        let mut total_effort = 0u64;
        let mut ready_count = 0;
        let mut waiting = Vec::new();
        let mut stuck = Vec::new();
        for (v, &c) in dag.class.iter().enumerate() {
            match c {
                C_OPEN => {
                    tasks.push(v as NodeIdx);
                    total_effort += u64::from(dag.effort[v]);
                    if dag.pred_status[v] == SAT {
                        ready_count += 1;
                    } else {
                        waiting.push(v as NodeIdx);
                    }
                }
                C_RUN => {
                    tasks.push(v as NodeIdx);
                    total_effort += u64::from(dag.effort[v]);
                    running_count += 1;
                }
                _ => {
                    if dag.kind[v] == NodeKind::Task && dag.state[v] == NodeState::Open {
                        stuck.push(v as NodeIdx);
                    }
                }
            }
        }
        Self {
            tasks,
            running_count,
            total_effort,
            ready_count,
            waiting,
            stuck,
        }
    }
}

/// Ranks of the `Running` tasks in `order`, ascending.
fn running_ranks(dag: &Dag, order: &[NodeIdx], running_count: usize) -> Vec<u32> {
    let class = &dag.class;
    let mut running = Vec::with_capacity(running_count);
    if running_count > 0 {
        running.extend(
            (0..order.len() as u32).filter(|&r| class[order[r as usize] as usize] == C_RUN),
        );
    }
    running
}

/// The ready tasks (`Open`, every predecessor satisfied) in priority order.
fn ready_tasks(dag: &Dag, order: &[NodeIdx], ready_count: usize) -> Vec<NodeIdx> {
    let (class, pred_status) = (&dag.class, &dag.pred_status);
    let mut ready = Vec::with_capacity(ready_count);
    ready.extend(
        order
            .iter()
            .copied()
            .filter(|&v| class[v as usize] == C_OPEN && pred_status[v as usize] == SAT),
    );
    ready
}

/// Whether some remaining task is in a capped group or has a footprint.
fn is_constrained(dag: &Dag, order: &[NodeIdx], caps: &[Option<u32>]) -> bool {
    order.iter().any(|&v| {
        let g = dag.group[v as usize].map(|g| g as usize);
        g.is_some_and(|g| caps.get(g).is_some_and(Option::is_some))
            || !dag.footprints.of(v as usize).is_empty()
    })
}

/// The tasks sorted by priority: `bl` descending, then `priority` descending, then index
/// ascending. `tasks` must be in ascending index order.
///
/// The three keys are packed into one `u64` when they fit (the usual case) and radix-sorted;
/// otherwise a comparison sort on tuples is used.
pub(super) fn priority_order(
    tasks: &[NodeIdx],
    bl: impl Fn(NodeIdx) -> u64,
    priority: &[i32],
) -> Vec<NodeIdx> {
    let Some(&max_idx) = tasks.last() else {
        return Vec::new();
    };
    let mut max_bl = 0u64;
    let mut min_p = i32::MAX;
    let mut max_p = i32::MIN;
    for &v in tasks {
        let v = v as usize;
        max_bl = max_bl.max(bl(v as NodeIdx));
        min_p = min_p.min(priority[v]);
        max_p = max_p.max(priority[v]);
    }
    let bits = |x: u64| u64::BITS - x.leading_zeros();
    let prio_key = |p: i32| (i64::from(max_p) - i64::from(p)) as u64;
    let bi = bits(u64::from(max_idx));
    let bp = bits(prio_key(min_p));
    let bb = bits(max_bl);
    if bb + bp + bi <= 64 {
        let mut keys: Vec<u64> = tasks
            .iter()
            .map(|&v| {
                let vu = v as usize;
                // A shift by 64 only happens when the shifted value is 0.
                (max_bl - bl(v)).checked_shl(bp + bi).unwrap_or(0)
                    | prio_key(priority[vu]).checked_shl(bi).unwrap_or(0)
                    | u64::from(v)
            })
            .collect();
        radix_sort(&mut keys, bb + bp + bi);
        let mask = u64::MAX.checked_shr(64 - bi).unwrap_or(0);
        keys.into_iter().map(|k| (k & mask) as NodeIdx).collect()
    } else {
        let mut keys: Vec<(u64, u64, NodeIdx)> = tasks
            .iter()
            .map(|&v| {
                let vu = v as usize;
                (max_bl - bl(v), prio_key(priority[vu]), v)
            })
            .collect();
        keys.sort_unstable();
        keys.into_iter().map(|k| k.2).collect()
    }
}

/// LSD radix sort on the low `bits` bits of the keys (higher bits must be zero), 11 bits per
/// pass; passes where every key has the same digit are skipped.
fn radix_sort(keys: &mut Vec<u64>, bits: u32) {
    const DIGIT: u32 = 11;
    const BUCKETS: usize = 1 << DIGIT;
    const MASK: u64 = BUCKETS as u64 - 1;
    if keys.len() < 512 {
        keys.sort_unstable();
        return;
    }
    let passes = bits.div_ceil(DIGIT) as usize;
    let mut hist = vec![[0usize; BUCKETS]; passes];
    for &k in keys.iter() {
        for (p, h) in hist.iter_mut().enumerate() {
            h[((k >> (p as u32 * DIGIT)) & MASK) as usize] += 1;
        }
    }
    let mut buf = vec![0u64; keys.len()];
    for (p, h) in hist.iter_mut().enumerate() {
        if h.contains(&keys.len()) {
            continue;
        }
        let mut sum = 0;
        for c in h.iter_mut() {
            let x = *c;
            *c = sum;
            sum += x;
        }
        let shift = p as u32 * DIGIT;
        for &k in keys.iter() {
            let b = ((k >> shift) & MASK) as usize;
            buf[h[b]] = k;
            h[b] += 1;
        }
        std::mem::swap(keys, &mut buf);
    }
}
