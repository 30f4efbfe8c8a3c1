//! The loop's view of the graph: the planner DAG of the tasks, counts of unsatisfied
//! predecessors, the ready heap ordered by remaining critical path, and retries waiting for
//! their time. Changes committed by others are applied in place ([`Graph::apply_foreign`]) or
//! by loading the graph again.
//!
//! Must never: write to the store, or decide what may start beside what is ready (holds, caps
//! and footprints are the admission's business).

use std::collections::{BinaryHeap, HashMap, HashSet};

use downbeat_core::graph::TaskDag;
use downbeat_core::ids::TaskId;
use downbeat_core::planner::{NodeIdx, NodeKind, NodeState};
use downbeat_core::task::{Status, Task};

use super::held::HeldTask;
use downbeat_core::time::Timestamp;
use downbeat_store::{Finish, FinishStatus, Store, TaskFilter};

use super::attempt::Running;
use super::types::{AcceptFn, RunError, RunOptions};
use downbeat_core::events::{EventKind, GraphEffect};
use downbeat_core::flags::Dependent;

/// An entry of the ready heap: (remaining critical path, priority, tie-break, node), best
/// first.
pub(super) type ReadyItem = (u64, i32, u64, NodeIdx);

/// The tasks by id, in id order (the order the store reads them in): a million tasks are held
/// once, found by binary search, with no index beside them.
pub(super) struct TaskTable {
    list: Vec<HeldTask>,
}

impl TaskTable {
    fn new(mut list: Vec<HeldTask>) -> Self {
        if !list.is_sorted_by_key(|t| t.id) {
            list.sort_unstable_by_key(|t| t.id);
        }
        Self { list }
    }

    fn at(&self, id: &TaskId) -> Option<usize> {
        self.list.binary_search_by_key(id, |t| t.id).ok()
    }

    pub(super) fn get(&self, id: &TaskId) -> Option<&HeldTask> {
        self.list.get(self.at(id)?)
    }

    pub(super) fn get_mut(&mut self, id: &TaskId) -> Option<&mut HeldTask> {
        let i = self.at(id)?;
        self.list.get_mut(i)
    }
}

/// The loop's view of the graph.
pub(super) struct Graph {
    pub(super) tdag: TaskDag,
    pub(super) tasks: TaskTable,
    pub(super) node_of: HashMap<TaskId, NodeIdx>,
    unsat: Vec<u32>,
    pub(super) satisfied: Vec<bool>,
    rank: Vec<u64>,
    pub(super) in_scope: Vec<bool>,
    pub(super) ready: BinaryHeap<ReadyItem>,
    /// Workers sharing a database break ties in an order of their own, so they rarely
    /// reach for the same task; a lone runner takes ties in graph order.
    salt: Option<u64>,
    pub(super) queued: Vec<bool>,
    pub(super) retry_at: Vec<(Timestamp, NodeIdx)>,
    accepts: Option<AcceptFn>,
    /// A task became free of its dependencies that this runner does not take now (another
    /// runner's role, outside the run's scope, or due later): the next commit wakes the others.
    handoff: bool,
    /// Tasks freed by completions not yet committed: their claims wait on those completions.
    pub(super) fresh: HashSet<NodeIdx>,
}

impl Graph {
    /// Loads every task and edge and queues what is ready now.
    pub(super) async fn load(
        store: &dyn Store,
        opts: &RunOptions,
        now: Timestamp,
    ) -> Result<Self, RunError> {
        // Converted as they are read: the whole tasks of a chunk at a time, never all.
        let mut tasks: Vec<HeldTask> = Vec::new();
        store
            .tasks_chunked(&TaskFilter::default(), &mut |chunk| {
                tasks.extend(chunk.into_iter().map(HeldTask::from));
            })
            .await?;
        let edges = store.edges().await?;
        Self::build(tasks, edges, opts, now)
    }

    /// A graph of `running` tasks alone, without their parents or edges: what the loop works
    /// with while the whole graph loads ([`super::loading`]). Nothing in it is ready.
    pub(super) fn provisional(
        running: Vec<Task>,
        opts: &RunOptions,
        now: Timestamp,
    ) -> Result<Self, RunError> {
        let tasks = running
            .into_iter()
            .map(|t| {
                HeldTask::from(Task {
                    parent: None,
                    status: Status::Running,
                    ..t
                })
            })
            .collect();
        Self::build(tasks, Vec::new(), opts, now)
    }

    /// The whole graph loaded while this runner went on, brought up to what it did meanwhile:
    /// its own completions (the load may have read the tasks before they committed) and the
    /// attempts running now are out of the ready queue.
    pub(super) fn settle_loaded(
        &mut self,
        completed: &[TaskId],
        running: &HashMap<TaskId, Running>,
        now: Timestamp,
    ) {
        for t in completed {
            if let Some(&v) = self.node_of.get(t) {
                if !self.satisfied[v as usize] {
                    self.complete(v, now);
                }
                if let Some(task) = self.tasks.get_mut(t) {
                    task.status = Status::Completed;
                }
            }
        }
        // Committed already: the claims of what they freed wait on nothing.
        self.fresh.clear();
        self.keep_out(running);
    }

    fn build(
        tasks: Vec<HeldTask>,
        edges: Vec<downbeat_core::task::Edge>,
        opts: &RunOptions,
        now: Timestamp,
    ) -> Result<Self, RunError> {
        // Built from the tasks themselves: a snapshot's copy of a million of them would be a
        // large part of the load's peak memory. The store left archived tasks out.
        let tdag = TaskDag::of_tasks(&tasks, &edges, &|_| None)?;
        drop(edges);
        let dag = &tdag.dag;
        let n = dag.len();
        let mut node_of = HashMap::with_capacity(tasks.len());
        for (v, t) in tdag.owner.iter().enumerate() {
            if dag.kind(v as NodeIdx) == NodeKind::Task {
                node_of.insert(*t, v as NodeIdx);
            }
        }
        let (unsat, satisfied) = unsatisfied(dag);
        let rank = critical_path(dag, &satisfied);
        let in_scope = scope(&tdag, &node_of, opts);
        let tasks = TaskTable::new(tasks);
        let mut g = Self {
            tdag,
            tasks,
            node_of,
            unsat,
            satisfied,
            rank,
            in_scope,
            ready: BinaryHeap::new(),
            queued: vec![false; n],
            retry_at: Vec::new(),
            accepts: opts.accepts.clone(),
            handoff: false,
            fresh: HashSet::new(),
            salt: opts.stay.then(|| {
                opts.holder.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                    (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
                })
            }),
        };
        for v in 0..n as NodeIdx {
            g.consider(v, now);
        }
        Ok(g)
    }

    /// Loads the graph again, keeping the tasks of `running` out of the ready queue whatever
    /// the snapshot says.
    pub(super) async fn reload(
        store: &dyn Store,
        opts: &RunOptions,
        running: &HashMap<TaskId, Running>,
        now: Timestamp,
    ) -> Result<Self, RunError> {
        let mut g = Self::load(store, opts, now).await?;
        g.keep_out(running);
        Ok(g)
    }

    /// Keeps the tasks of `running` out of the ready queue whatever the snapshot says.
    fn keep_out(&mut self, running: &HashMap<TaskId, Running>) {
        for t in running.keys() {
            if let Some(&v) = self.node_of.get(t) {
                self.queued[v as usize] = true;
                if let Some(task) = self.tasks.get_mut(t) {
                    task.status = Status::Running;
                }
            }
        }
        let ready: Vec<_> = std::mem::take(&mut self.ready)
            .into_iter()
            .filter(|(_, _, _, v)| !running.contains_key(&self.tdag.owner[*v as usize]))
            .collect();
        self.ready = ready.into_iter().collect();
    }

    /// Applies status changes made by others; false when an event needs a full reload
    /// (structure changed, or a finished task was reopened).
    pub(super) fn apply_foreign(
        &mut self,
        events: &[downbeat_core::context::Event],
        now: Timestamp,
    ) -> bool {
        for e in events {
            match EventKind::parse(&e.action).effect() {
                GraphEffect::None => continue,
                GraphEffect::Structure => return false,
                GraphEffect::Status => {}
            }
            let Some(id) = TaskId::parse_short(&e.entity) else {
                return false;
            };
            let Some(&v) = self.node_of.get(&id) else {
                return false;
            };
            let after = e.after.as_ref();
            let Some(st) = after
                .and_then(|a| a.get("status"))
                .and_then(|s| s.as_str())
                .and_then(|s| s.parse::<Status>().ok())
            else {
                return false;
            };
            let i = v as usize;
            match st {
                Status::Completed | Status::Skipped if !self.satisfied[i] => self.complete(v, now),
                Status::Completed | Status::Skipped => {}
                _ if self.satisfied[i] => return false,
                _ => {}
            }
            if let Some(t) = self.tasks.get_mut(&id) {
                t.status = st;
                t.not_before = after
                    .and_then(|a| a.get("not_before"))
                    .and_then(|s| s.as_str())
                    .and_then(Timestamp::parse_rfc3339);
            }
            if st == Status::Pending {
                self.queued[i] = false;
                self.consider(v, now);
            }
        }
        true
    }

    fn tie(&self, v: NodeIdx) -> u64 {
        match self.salt {
            // splitmix64 of the node and the salt: a fixed, runner-specific shuffle.
            Some(salt) => {
                let mut z = (u64::from(v) ^ salt).wrapping_add(0x9e37_79b9_7f4a_7c15);
                z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                z ^ (z >> 31)
            }
            None => u64::MAX - u64::from(v),
        }
    }

    pub(super) fn task_of(&self, v: NodeIdx) -> Option<&HeldTask> {
        self.tasks.get(&self.tdag.owner[v as usize])
    }

    /// Queues `v` if it is a pending, in-scope task whose dependencies are all satisfied.
    pub(super) fn consider(&mut self, v: NodeIdx, now: Timestamp) {
        let i = v as usize;
        if self.queued[i] || self.unsat[i] != 0 || self.tdag.dag.kind(v) != NodeKind::Task {
            return;
        }
        let Some(t) = self.task_of(v) else { return };
        if t.status != Status::Pending {
            return;
        }
        if !self.in_scope[i] || self.accepts.as_ref().is_some_and(|a| !a(&t.to_task())) {
            self.handoff = true;
            return;
        }
        if let Some(nb) = t.not_before.filter(|nb| *nb > now) {
            self.retry_at.push((nb, v));
            self.queued[i] = true;
            self.handoff = true;
            return;
        }
        let prio = t.priority.rank();
        self.ready.push((self.rank[i], prio, self.tie(v), v));
        self.queued[i] = true;
    }

    /// `task` is pending again (its claim given back, requeued or to be retried): queued anew
    /// if it may run.
    pub(super) fn requeue(&mut self, task: TaskId, now: Timestamp) {
        if let Some(t) = self.tasks.get_mut(&task) {
            t.status = Status::Pending;
        }
        if let Some(&v) = self.node_of.get(&task) {
            self.queued[v as usize] = false;
            self.consider(v, now);
        }
    }

    /// Marks a task node done and queues what it unblocks.
    pub(super) fn complete(&mut self, v: NodeIdx, now: Timestamp) {
        if let Some(t) = self.tasks.get_mut(&self.tdag.owner[v as usize]) {
            t.status = Status::Completed;
        }
        let mut stack = vec![v];
        self.satisfied[v as usize] = true;
        while let Some(u) = stack.pop() {
            let succs: Vec<NodeIdx> = self.tdag.dag.succs(u).to_vec();
            for s in succs {
                let si = s as usize;
                self.unsat[si] = self.unsat[si].saturating_sub(1);
                if self.unsat[si] == 0 {
                    if self.tdag.dag.kind(s) == NodeKind::Task {
                        self.fresh.insert(s);
                        self.consider(s, now);
                    } else if !self.satisfied[si] {
                        self.satisfied[si] = true;
                        stack.push(s);
                    }
                }
            }
        }
    }

    /// Whether a commit of these finishes, with the claims just taken from the ready queue,
    /// can leave other runners asleep: only when nothing it makes ready is left for them
    /// (every task freed is claimed here, as when a chain passes from one task to the next)
    /// and nothing goes back to pending. Others still see the changes on their next look.
    pub(super) fn take_quiet(&mut self, finishes: &[Finish]) -> bool {
        let handoff = std::mem::take(&mut self.handoff);
        !handoff
            && self.ready.is_empty()
            && finishes
                .iter()
                .all(|f| matches!(f.status, FinishStatus::Completed))
    }

    /// Moves retries whose time has come to the ready queue; returns the next retry time.
    pub(super) fn wake_retries(&mut self, now: Timestamp) -> Option<Timestamp> {
        let mut next = None;
        let mut keep = Vec::new();
        for (at, v) in std::mem::take(&mut self.retry_at) {
            if at <= now {
                let i = v as usize;
                let prio = self.task_of(v).map(|t| t.priority.rank()).unwrap_or(0);
                let tie = self.tie(v);
                self.ready.push((self.rank[i], prio, tie, v));
            } else {
                next = Some(next.map_or(at, |n: Timestamp| n.min(at)));
                keep.push((at, v));
            }
        }
        self.retry_at = keep;
        next
    }

    /// Transitive dependents of `v` that are tasks.
    pub(super) fn dependents(&self, v: NodeIdx) -> Vec<NodeIdx> {
        dependent_nodes(&self.tdag, v)
    }

    /// The dependents of `v` as flag rules and discovered work see them.
    pub(super) fn dependent_tasks(&self, v: NodeIdx) -> Vec<Dependent> {
        self.dependents(v)
            .into_iter()
            .filter_map(|d| {
                let id = self.tdag.owner[d as usize];
                self.tasks.get(&id).map(|t| Dependent {
                    id,
                    status: t.status,
                    priority: t.priority,
                })
            })
            .collect()
    }

    pub(super) fn remaining(&self) -> u64 {
        (0..self.tdag.dag.len())
            .filter(|&i| {
                self.in_scope[i]
                    && self.tdag.dag.kind(i as NodeIdx) == NodeKind::Task
                    && !self.satisfied[i]
            })
            .count() as u64
    }
}

/// Counts of unsatisfied predecessors and satisfaction of every node, in topological order: a
/// task is satisfied when done, a container's virtual node when all its predecessors are.
fn unsatisfied(dag: &downbeat_core::planner::Dag) -> (Vec<u32>, Vec<bool>) {
    let n = dag.len();
    let mut satisfied = vec![false; n];
    let mut unsat = vec![0u32; n];
    for &v in dag.topo_order() {
        let u = dag
            .preds(v)
            .iter()
            .filter(|&&p| !satisfied[p as usize])
            .count() as u32;
        unsat[v as usize] = u;
        satisfied[v as usize] = match dag.kind(v) {
            NodeKind::Task => dag.state(v) == NodeState::Done,
            _ => u == 0,
        };
    }
    (unsat, satisfied)
}

/// The remaining critical path through each node (effort-weighted), in reverse topological
/// order.
fn critical_path(dag: &downbeat_core::planner::Dag, satisfied: &[bool]) -> Vec<u64> {
    let mut rank = vec![0u64; dag.len()];
    for &v in dag.topo_order().iter().rev() {
        let own = if dag.kind(v) == NodeKind::Task && !satisfied[v as usize] {
            u64::from(dag.effort(v))
        } else {
            0
        };
        let best = dag
            .succs(v)
            .iter()
            .map(|&s| rank[s as usize])
            .max()
            .unwrap_or(0);
        rank[v as usize] = own + best;
    }
    rank
}

/// Transitive dependents of node `v` that are tasks (no recursion: an explicit stack).
pub(crate) fn dependent_nodes(tdag: &TaskDag, v: NodeIdx) -> Vec<NodeIdx> {
    let mut seen = HashSet::new();
    let mut stack = vec![v];
    let mut out = Vec::new();
    while let Some(u) = stack.pop() {
        for &s in tdag.dag.succs(u) {
            if seen.insert(s) {
                if tdag.dag.kind(s) == NodeKind::Task {
                    out.push(s);
                }
                stack.push(s);
            }
        }
    }
    out
}

/// Which task nodes the run may dispatch.
fn scope(tdag: &TaskDag, node_of: &HashMap<TaskId, NodeIdx>, opts: &RunOptions) -> Vec<bool> {
    let dag = &tdag.dag;
    let n = dag.len();
    if opts.only.is_empty() && opts.until.is_none() {
        return vec![true; n];
    }
    // Nodes that stand for a task: its own node, or for a container every node it owns.
    let nodes_for = |t: TaskId| -> Vec<NodeIdx> {
        match node_of.get(&t) {
            Some(&v) => vec![v],
            None => (0..n as NodeIdx)
                .filter(|&v| tdag.owner[v as usize] == t)
                .collect(),
        }
    };
    let mut allowed = vec![opts.only.is_empty(); n];
    if !opts.only.is_empty() {
        for &t in &opts.only {
            let starts = nodes_for(t);
            if starts.len() == 1 {
                allowed[starts[0] as usize] = true;
                continue;
            }
            // A container: everything between its Start and End.
            let mut stack: Vec<NodeIdx> = starts
                .iter()
                .copied()
                .filter(|&v| dag.kind(v) == NodeKind::Start)
                .collect();
            let end: HashSet<NodeIdx> = starts
                .iter()
                .copied()
                .filter(|&v| dag.kind(v) == NodeKind::End)
                .collect();
            while let Some(u) = stack.pop() {
                if allowed[u as usize] || end.contains(&u) {
                    continue;
                }
                allowed[u as usize] = true;
                stack.extend(dag.succs(u).iter().copied());
            }
        }
    }
    if let Some(t) = opts.until {
        let mut needed = vec![false; n];
        let mut stack = nodes_for(t);
        while let Some(u) = stack.pop() {
            if needed[u as usize] {
                continue;
            }
            needed[u as usize] = true;
            stack.extend(dag.preds(u).iter().copied());
        }
        for i in 0..n {
            allowed[i] &= needed[i];
        }
    }
    allowed
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    use crate::config::FailurePolicy;
    use downbeat_core::context::Actor;
    use downbeat_core::plan::{self, PlanFormat};
    use downbeat_core::role::RoleSet;
    use downbeat_store::TaskStore;
    use downbeat_store::sqlite::SqliteStore;

    const PLAN: &str = r#"
[[tasks]]
key = "a"
title = "a"
role = "implementer"

[[tasks]]
key = "b"
title = "b"
role = "tester"
depends_on = ["a"]

[[tasks]]
key = "c"
title = "c"
role = "implementer"
"#;

    /// The graph of [`PLAN`] as a runner taking `roles` sees it.
    async fn graph(roles: &'static [&'static str]) -> (tempfile::TempDir, Graph, Vec<TaskId>) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("d.db"), true)
            .await
            .unwrap();
        let file = plan::parse(PLAN, PlanFormat::Toml).unwrap();
        let v = plan::validate(&file, &RoleSet::builtin(), &|_| None, &|_| false).unwrap();
        store
            .apply_plan(&v, &Actor::new("test", Timestamp(1)))
            .await
            .unwrap();
        let mut ids = Vec::new();
        for k in ["a", "b", "c"] {
            ids.push(store.resolve_task(k).await.unwrap());
        }
        let opts = RunOptions {
            holder: "worker:test:1".into(),
            concurrency: 4,
            lease: Duration::from_secs(30),
            only: vec![],
            until: None,
            resolve: Arc::new(|_| Err("unused".into())),
            caps: downbeat_core::graph::Caps::default(),
            prompts: HashMap::new(),
            default_prompt: String::new(),
            failure: FailurePolicy::Continue,
            rules: vec![],
            workspace: dir.path().to_owned(),
            runs_dir: dir.path().join("runs"),
            artifacts_dir: dir.path().join("artifacts"),
            artifact_limit: crate::artifacts::DEFAULT_LIMIT,
            agent_env: Vec::new(),
            scrub: Default::default(),
            now: Arc::new(|| Timestamp(1)),
            accepts: Some(Arc::new(move |t: &Task| {
                t.role.as_deref().is_some_and(|r| roles.contains(&r))
            })),
            stay: true,
            worktrees: None,
            context_budget: crate::config::DEFAULT_CONTEXT_BUDGET,
            flag_depth: downbeat_core::flags::DEFAULT_MAX_DEPTH,
            memory_files: Vec::new(),

            load_wait: crate::run::DEFAULT_LOAD_WAIT,
        };
        let g = Graph::load(&store, &opts, Timestamp(1)).await.unwrap();
        (dir, g, ids)
    }

    fn done(task: TaskId, status: FinishStatus) -> Finish {
        Finish {
            task,
            epoch: downbeat_core::ids::LeaseEpoch(1),
            attempt_id: downbeat_core::ids::AttemptId(1),
            status,
            outcome: "succeeded".into(),
            exit_code: Some(0),
            error: None,
            summary: None,
            tokens: None,
            detail: Default::default(),
            artifacts: vec![],
            effects: vec![],
        }
    }

    /// Takes everything ready, as a turn with free slots claims it.
    fn claim_all(g: &mut Graph) -> Vec<TaskId> {
        let mut out = Vec::new();
        while let Some(item) = g.ready.pop() {
            out.push(g.tdag.owner[item.3 as usize]);
        }
        out
    }

    #[tokio::test]
    async fn a_dependent_claimed_in_the_same_turn_wakes_no_one() {
        let (_d, mut g, ids) = graph(&["implementer", "tester"]).await;
        let (a, b) = (ids[0], ids[1]);
        g.take_quiet(&[]);
        claim_all(&mut g);
        g.complete(g.node_of[&a], Timestamp(2));
        let v = g.node_of[&b];
        assert!(g.fresh.contains(&v), "b waits on a's completion");
        assert_eq!(claim_all(&mut g), vec![b]);
        assert!(g.take_quiet(&[done(a, FinishStatus::Completed)]));
    }

    #[tokio::test]
    async fn work_left_for_others_wakes_them() {
        // b is freed but this runner does not take testers.
        let (_d, mut g, ids) = graph(&["implementer"]).await;
        let a = ids[0];
        g.take_quiet(&[]);
        claim_all(&mut g);
        g.complete(g.node_of[&a], Timestamp(2));
        assert!(claim_all(&mut g).is_empty());
        assert!(!g.take_quiet(&[done(a, FinishStatus::Completed)]));
        // Ready work this runner leaves unclaimed (no free slot) wakes them too.
        let (_d, mut g, ids) = graph(&["implementer", "tester"]).await;
        g.take_quiet(&[]);
        assert!(!g.ready.is_empty());
        assert!(!g.take_quiet(&[done(ids[2], FinishStatus::Completed)]));
        // So does a task that goes back to pending.
        claim_all(&mut g);
        let retry = FinishStatus::Retry {
            not_before: Timestamp(5),
        };
        assert!(!g.take_quiet(&[done(ids[0], retry)]));
        assert!(g.take_quiet(&[done(ids[2], FinishStatus::Completed)]));
    }
}
