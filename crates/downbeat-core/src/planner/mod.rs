//! The planner: graph algorithms over a flat (CSR) DAG.
//!
//! It knows nothing of tasks, stores or I/O. Callers (the domain layer) translate their task graph
//! into [`NodeSpec`]s and edges, call [`GraphBuilder::build`] and then [`analyze`], and translate
//! node indices back. Containers (tasks with children) are modelled by the caller as a pair of
//! zero-cost virtual nodes, [`NodeKind::Start`] and [`NodeKind::End`]: children depend on the
//! container's `Start`, the container's `End` depends on every child, a dependency *on* the
//! container is an edge from its `End`, and a dependency *of* the container is an edge into its
//! `Start`.
//!
//! Must never: allocate per edge beyond the CSR arrays, recurse (graphs have 1M nodes), or touch
//! I/O.
//!
//! # Model
//!
//! Every node has a *status* fixed at build time:
//!
//! - a `Done` task is **satisfied**;
//! - a `Held` node (of any kind) is **blocked**;
//! - an `Open` task is blocked (*stuck*) if any predecessor is blocked, else **pending**;
//! - a `Running` task is pending whatever its predecessors are (it is in flight and assumed to
//!   finish); edges *into* a `Running` task are not dependencies for planning purposes;
//! - a virtual node that is not `Held` (its state is otherwise ignored) is blocked if any
//!   predecessor is blocked, satisfied if every predecessor is satisfied, pending otherwise.
//!
//! The *remaining graph* is made of the pending nodes and of the edges between them that do not
//! end at a `Running` task. Waves, the critical path and the makespans are computed on it;
//! dependencies never pass through a satisfied (`Done`) node.
//!
//! # Complexity
//!
//! [`GraphBuilder::build`] and [`analyze`] run in `O(n + m)` plus one sort of the remaining tasks
//! by priority (a radix sort on packed `u64` keys in the usual case) and, per worker count, an
//! event simulation costing `O(m + n log n)`. Arrays are flat and indexed by `u32`; nothing is
//! allocated per node or per edge, and without caps or footprints no hashing or comparison sort
//! happens on the hot path. With caps, candidates wait in one priority bucket per capped group,
//! so a full group costs nothing; a candidate held back by a footprint overlap is looked at again
//! at each scheduling step while the overlap lasts.
//!
//! Memory proportional to the edges: the builder's edge list, the two CSR arrays, a scratch copy
//! of the edge list while [`GraphBuilder::build`] fills the CSR arrays of a large graph (in a
//! cache-friendly two-pass way), and a CSR copy of the remaining graph relabelled by priority
//! while [`analyze`] simulates. All are flat `u32` arrays; nothing is allocated per edge.

mod candidates;
mod csr;
mod footprint;
mod makespan;
mod plan;
mod random;
mod rankset;
#[cfg(test)]
mod tests;
mod waves;

use std::collections::HashSet;

use footprint::{FootprintIndex, FootprintInterner};

/// Index of a node in a [`Dag`]; dense, `0..dag.len()`.
pub type NodeIdx = u32;

/// What a node stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeKind {
    /// A schedulable task (a leaf of the hierarchy).
    Task,
    /// Virtual start of a container: zero cost, never scheduled, never in a wave.
    Start,
    /// Virtual end of a container: zero cost, never scheduled, never in a wave.
    End,
}

/// Where a node stands, as far as planning is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeState {
    /// Finished in a way that satisfies dependents (completed or skipped).
    Done,
    /// Not started; the planner schedules it once its predecessors are satisfied.
    Open,
    /// In flight; the planner assumes it will finish and places it in the first wave.
    Running,
    /// Stopped (failed, cancelled, blocked by hand): not scheduled, and its dependents cannot be.
    Held,
}

/// One node as the caller describes it.
#[derive(Debug, Clone, Copy)]
pub struct NodeSpec<'a> {
    /// What the node stands for.
    pub kind: NodeKind,
    /// Where the node stands.
    pub state: NodeState,
    /// Effort estimate in abstract units (the task's `effort`, default 1). Ignored for virtual nodes.
    pub effort: u32,
    /// Higher runs first among tasks with equal critical-path priority.
    pub priority: i32,
    /// Concurrency group (for tasks: the role), an index into [`PlanOptions::group_caps`].
    pub group: Option<u32>,
    /// Declared file footprint: paths or globs (`src/auth/`, `src/auth/**`, `docs/*.md`).
    pub footprint: &'a [&'a str],
}

/// A cycle found while building: the node indices along it, first == last not repeated
/// (`[a, b, c]` means a → b → c → a).
///
/// The path is rotated so that its smallest index comes first; a self-loop gives `[a]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("dependency cycle through {} nodes", path.len())]
pub struct CycleError {
    /// The nodes along the cycle.
    pub path: Vec<NodeIdx>,
}

/// Largest number of nodes a graph may hold (`NodeIdx::MAX` itself is never handed out).
pub const MAX_NODES: usize = NodeIdx::MAX as usize;
/// Largest number of edges (duplicates included) a graph may hold.
pub const MAX_EDGES: usize = u32::MAX as usize;

/// Collects nodes and edges, then freezes them into a [`Dag`].
#[derive(Debug, Default)]
pub struct GraphBuilder {
    kind: Vec<NodeKind>,
    state: Vec<NodeState>,
    /// Zero for virtual nodes.
    effort: Vec<u32>,
    priority: Vec<i32>,
    group: Vec<Option<u32>>,
    /// `(from, to)` in insertion order.
    edges: Vec<(NodeIdx, NodeIdx)>,
    footprints: FootprintInterner,
}

impl GraphBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }
    /// An empty builder with room for `nodes` nodes and `edges` edges.
    pub fn with_capacity(nodes: usize, edges: usize) -> Self {
        let nodes = nodes.min(MAX_NODES);
        Self {
            kind: Vec::with_capacity(nodes),
            state: Vec::with_capacity(nodes),
            effort: Vec::with_capacity(nodes),
            priority: Vec::with_capacity(nodes),
            group: Vec::with_capacity(nodes),
            edges: Vec::with_capacity(edges.min(MAX_EDGES)),
            footprints: FootprintInterner::default(),
        }
    }
    /// Adds a node; indices are handed out densely from 0.
    ///
    /// Footprint entries are normalised and interned here (see [`footprints_overlap`]); they are
    /// kept for tasks only. Virtual nodes keep neither effort, group nor footprint.
    ///
    /// # Panics
    ///
    /// If the builder already holds [`MAX_NODES`] nodes.
    pub fn add_node(&mut self, node: NodeSpec<'_>) -> NodeIdx {
        let idx = self.kind.len();
        assert!(
            idx < MAX_NODES,
            "GraphBuilder::add_node: a graph holds at most {MAX_NODES} nodes"
        );
        let is_task = node.kind == NodeKind::Task;
        self.kind.push(node.kind);
        self.state.push(node.state);
        self.effort.push(if is_task { node.effort } else { 0 });
        self.priority.push(node.priority);
        self.group.push(if is_task { node.group } else { None });
        self.footprints
            .push_node(idx, if is_task { node.footprint } else { &[] });
        idx as NodeIdx
    }
    /// `from` must finish before `to` may start. Duplicate edges are allowed and harmless;
    /// a self-loop is a cycle of length 1.
    ///
    /// # Panics
    ///
    /// If `from` or `to` was not handed out by [`GraphBuilder::add_node`], or if the builder
    /// already holds [`MAX_EDGES`] edges.
    pub fn add_edge(&mut self, from: NodeIdx, to: NodeIdx) {
        let n = self.kind.len();
        assert!(
            (from as usize) < n && (to as usize) < n,
            "GraphBuilder::add_edge({from}, {to}): node index out of range (the graph has {n} nodes)"
        );
        assert!(
            self.edges.len() < MAX_EDGES,
            "GraphBuilder::add_edge: a graph holds at most {MAX_EDGES} edges"
        );
        self.edges.push((from, to));
    }
    /// Number of nodes added so far.
    pub fn node_count(&self) -> usize {
        self.kind.len()
    }
    /// Number of edges added so far, duplicates included.
    pub fn edge_count(&self) -> usize {
        self.edges.len()
    }
    /// Freezes into CSR form; fails with the path of one cycle if the graph has any.
    ///
    /// Runs Kahn's algorithm once (the order is kept in the [`Dag`]; when every edge goes from a
    /// lower to a higher index, the index order is kept instead), then fixes every node's status
    /// (see the [module docs](self)). `O(n + m)`, no recursion.
    pub fn build(self) -> Result<Dag, CycleError> {
        let GraphBuilder {
            kind,
            state,
            effort,
            priority,
            group,
            edges,
            footprints,
        } = self;
        let n = kind.len();
        let m = edges.len();

        // CSR by counting sort. The offsets first hold each list's end, and are decremented while
        // filling (edges walked backwards so each list keeps insertion order); they end up holding
        // each list's start. On the way, check whether the insertion order is topological.
        let mut succ_off = vec![0u32; n + 1];
        let mut pred_off = vec![0u32; n + 1];
        let mut index_order_is_topological = true;
        for &(f, t) in &edges {
            succ_off[f as usize] += 1;
            pred_off[t as usize] += 1;
            index_order_is_topological &= f < t;
        }
        prefix_sums(&mut succ_off);
        prefix_sums(&mut pred_off);
        let mut succ: Vec<NodeIdx> = vec![0; m];
        let mut pred: Vec<NodeIdx> = vec![0; m];
        csr::fill(&edges, &mut succ_off, &mut succ, &mut pred_off, &mut pred);
        drop(edges);

        let topo = if index_order_is_topological {
            // Every edge goes from a lower to a higher index: the identity is a topological order
            // (and there is no cycle). Common when callers add nodes in dependency order.
            (0..n as NodeIdx).collect()
        } else {
            let topo = kahn(&succ_off, &succ, &pred_off);
            if topo.len() < n {
                return Err(CycleError {
                    path: find_cycle(&topo, &pred_off, &pred),
                });
            }
            topo
        };

        // Statuses, classes, ASAP wave levels and remaining in-degrees, pulled from the
        // predecessors in topological order.
        let mut pred_status = vec![SAT; n];
        let mut class = vec![C_SAT; n];
        let mut level = vec![0u32; n];
        let mut remaining_in = vec![0u32; n];
        for &v in &topo {
            let v = v as usize;
            let mut agg = SAT;
            let mut lvl = 0;
            let mut k = 0;
            for &p in &pred[pred_off[v] as usize..pred_off[v + 1] as usize] {
                let p = p as usize;
                agg |= STATUS_OF_CLASS[class[p] as usize];
                // `level` is 0 exactly for nodes outside the remaining graph.
                let l = level[p];
                k += u32::from(l != 0);
                lvl = lvl.max(l);
            }
            let c = classify(kind[v], state[v], agg);
            pred_status[v] = agg;
            class[v] = c;
            match c {
                C_RUN => level[v] = 1,
                C_OPEN => {
                    level[v] = lvl + 1;
                    remaining_in[v] = k;
                }
                C_VIRT => {
                    level[v] = lvl;
                    remaining_in[v] = k;
                }
                _ => {}
            }
        }

        Ok(Dag {
            kind,
            state,
            effort,
            priority,
            group,
            succ_off,
            succ,
            pred_off,
            pred,
            topo,
            pred_status,
            class,
            level,
            remaining_in,
            footprints: footprints.finish(),
        })
    }
}

/// Kahn's algorithm (FIFO, sources in index order). Returns fewer than `n` nodes if there is a
/// cycle. Each dequeued node's successor list is walked twice: first the in-degree decrements
/// (independent memory accesses the CPU can overlap), then the zero checks (cache hits).
fn kahn(succ_off: &[u32], succ: &[NodeIdx], pred_off: &[u32]) -> Vec<NodeIdx> {
    const QUEUED: u32 = u32::MAX;
    let n = succ_off.len() - 1;
    let mut indeg: Vec<u32> = pred_off.windows(2).map(|w| w[1] - w[0]).collect();
    let mut topo: Vec<NodeIdx> = Vec::with_capacity(n);
    topo.extend(
        indeg
            .iter()
            .enumerate()
            .filter(|&(_, &d)| d == 0)
            .map(|(v, _)| v as NodeIdx),
    );
    let mut head = 0;
    while head < topo.len() {
        let v = topo[head] as usize;
        head += 1;
        let list = &succ[succ_off[v] as usize..succ_off[v + 1] as usize];
        for &s in list {
            let d = &mut indeg[s as usize];
            *d = d.wrapping_sub(1);
        }
        for &s in list {
            let d = &mut indeg[s as usize];
            if *d == 0 {
                // Duplicate edges list `s` twice; mark it so it is queued once.
                *d = QUEUED;
                topo.push(s);
            }
        }
    }
    topo
}

/// Turns per-node counts (`v[..n]`, `v[n] == 0`) into running ends: `v[i] = sum(count[..=i])`,
/// `v[n] = total`.
fn prefix_sums(v: &mut [u32]) {
    let mut acc = 0u32;
    let n = v.len() - 1;
    for x in &mut v[..n] {
        acc += *x;
        *x = acc;
    }
    v[n] = acc;
}

/// One cycle among the nodes Kahn could not order (those not in `ordered`). Each such node has
/// at least one such predecessor, so walking backwards must revisit a node; the revisited
/// stretch, reversed, is a cycle.
fn find_cycle(ordered: &[NodeIdx], pred_off: &[u32], pred: &[NodeIdx]) -> Vec<NodeIdx> {
    const ORDERED: u32 = u32::MAX - 1;
    const UNSEEN: u32 = u32::MAX;
    let n = pred_off.len() - 1;
    // Position in the walk, or a marker.
    let mut mark = vec![UNSEEN; n];
    for &v in ordered {
        mark[v as usize] = ORDERED;
    }
    let Some(start) = mark.iter().position(|&x| x == UNSEEN) else {
        return Vec::new();
    };
    let mut walk: Vec<NodeIdx> = Vec::new();
    let mut v = start;
    loop {
        let seen = mark[v];
        if seen != UNSEEN {
            let mut cycle = walk.split_off(seen as usize);
            cycle.reverse();
            if let Some((min_at, _)) = cycle.iter().enumerate().min_by_key(|&(_, &x)| x) {
                cycle.rotate_left(min_at);
            }
            return cycle;
        }
        mark[v] = walk.len() as u32;
        walk.push(v as NodeIdx);
        let preds = &pred[pred_off[v] as usize..pred_off[v + 1] as usize];
        match preds.iter().find(|&&p| mark[p as usize] != ORDERED) {
            Some(&p) => v = p as usize,
            // Cannot happen (see above); return the walk rather than panic.
            None => return walk,
        }
    }
}

// Statuses, encoded so that the aggregate over predecessors (the worst) is a bitwise `or`.
const SAT: u8 = 0;
const PEND: u8 = 1;
const BLOCK: u8 = 3;

// Node classes (status refined by role).
/// Satisfied.
const C_SAT: u8 = 0;
/// Blocked: `Held`, or depends on a blocked node (a stuck task, a blocked container end…).
const C_BLOCK: u8 = 1;
/// Pending virtual node.
const C_VIRT: u8 = 2;
/// Pending `Open` task.
const C_OPEN: u8 = 3;
/// `Running` task.
const C_RUN: u8 = 4;

fn classify(kind: NodeKind, state: NodeState, pred_status: u8) -> u8 {
    match (kind, state) {
        (_, NodeState::Held) => C_BLOCK,
        (NodeKind::Task, NodeState::Done) => C_SAT,
        (NodeKind::Task, NodeState::Running) => C_RUN,
        (NodeKind::Task, NodeState::Open) => {
            if pred_status == BLOCK {
                C_BLOCK
            } else {
                C_OPEN
            }
        }
        (NodeKind::Start | NodeKind::End, _) => match pred_status {
            SAT => C_SAT,
            PEND => C_VIRT,
            _ => C_BLOCK,
        },
    }
}

/// The status of each class, by class.
const STATUS_OF_CLASS: [u8; 5] = [SAT, BLOCK, PEND, PEND, PEND];

/// An immutable DAG in CSR form, with a topological order computed at build time.
///
/// Accessors taking a [`NodeIdx`] panic if it is `>= self.len()`.
#[derive(Debug)]
pub struct Dag {
    kind: Vec<NodeKind>,
    state: Vec<NodeState>,
    effort: Vec<u32>,
    priority: Vec<i32>,
    group: Vec<Option<u32>>,
    succ_off: Vec<u32>,
    succ: Vec<NodeIdx>,
    pred_off: Vec<u32>,
    pred: Vec<NodeIdx>,
    /// Kahn order (FIFO, sources in index order).
    topo: Vec<NodeIdx>,
    /// Max status over each node's predecessors (`SAT` for sources).
    pred_status: Vec<u8>,
    /// Each node's class (`C_*`).
    class: Vec<u8>,
    /// For nodes of the remaining graph: the first wave a dependent may use (ASAP layering);
    /// 0 for the others.
    level: Vec<u32>,
    /// For pending virtual nodes and `Open` tasks: the number of remaining edges into them; 0 for
    /// the others.
    remaining_in: Vec<u32>,
    footprints: FootprintIndex,
}

impl Dag {
    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.kind.len()
    }
    /// Whether the graph has no node.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Number of edges, duplicates included.
    pub fn edge_count(&self) -> usize {
        self.succ.len()
    }
    /// The node's kind.
    pub fn kind(&self, v: NodeIdx) -> NodeKind {
        self.kind[v as usize]
    }
    /// The node's state.
    pub fn state(&self, v: NodeIdx) -> NodeState {
        self.state[v as usize]
    }
    /// The node's effort (0 for virtual nodes).
    pub fn effort(&self, v: NodeIdx) -> u32 {
        self.effort[v as usize]
    }
    /// The node's priority.
    pub fn priority(&self, v: NodeIdx) -> i32 {
        self.priority[v as usize]
    }
    /// The node's group (`None` for virtual nodes).
    pub fn group(&self, v: NodeIdx) -> Option<u32> {
        self.group[v as usize]
    }
    /// Direct predecessors, in insertion order (duplicates kept).
    pub fn preds(&self, v: NodeIdx) -> &[NodeIdx] {
        let v = v as usize;
        &self.pred[self.pred_off[v] as usize..self.pred_off[v + 1] as usize]
    }
    /// Direct successors, in insertion order (duplicates kept).
    pub fn succs(&self, v: NodeIdx) -> &[NodeIdx] {
        let v = v as usize;
        &self.succ[self.succ_off[v] as usize..self.succ_off[v + 1] as usize]
    }
    /// The topological order computed at build time: the index order if every edge goes from a
    /// lower to a higher index, else Kahn's (FIFO, sources in index order first).
    pub fn topo_order(&self) -> &[NodeIdx] {
        &self.topo
    }
    /// Whether every predecessor of `v` is satisfied (a `Done` task, or a virtual node whose own
    /// predecessors are all satisfied).
    ///
    /// A `Held` virtual node is never satisfied. For a node without predecessors: `true`.
    pub fn is_satisfied(&self, v: NodeIdx) -> bool {
        self.pred_status[v as usize] == SAT
    }
    /// Whether `v` itself counts as satisfied for its dependents: a `Done` task, or a non-`Held`
    /// virtual node for which [`Dag::is_satisfied`] holds.
    pub fn satisfies_dependents(&self, v: NodeIdx) -> bool {
        self.class[v as usize] == C_SAT
    }
    /// Whether `v` can never be satisfied while the graph stays as it is: it is `Held`, or it is
    /// an `Open` task or a virtual node depending (transitively) on a `Held` node. `Done` and
    /// `Running` tasks are never blocked.
    pub fn is_blocked(&self, v: NodeIdx) -> bool {
        self.class[v as usize] == C_BLOCK
    }
    /// The unsatisfied blockers of `v`, seen from the user's side: an unsatisfied real predecessor
    /// is reported as itself, an unsatisfied `End` predecessor as itself (the caller maps it to the
    /// container), a `Start` predecessor is looked through (its own unsatisfied predecessors are
    /// reported instead). Sorted, deduplicated.
    ///
    /// A `Held` `Start` is reported as itself (it blocks by its own state, not through its
    /// predecessors). Looking through is iterative and visits each `Start` once.
    pub fn blockers(&self, v: NodeIdx) -> Vec<NodeIdx> {
        let mut out = Vec::new();
        let mut seen_starts: HashSet<NodeIdx> = HashSet::new();
        let mut stack = vec![v];
        while let Some(x) = stack.pop() {
            for &p in self.preds(x) {
                if self.satisfies_dependents(p) {
                    continue;
                }
                let pu = p as usize;
                if self.kind[pu] == NodeKind::Start && self.state[pu] != NodeState::Held {
                    if seen_starts.insert(p) {
                        stack.push(p);
                    }
                } else {
                    out.push(p);
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// Limits the schedule must respect.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// `group_caps[g]` = at most this many tasks of group `g` in one wave, and running at once
    /// in the makespan simulation. `None` or a missing entry = unlimited.
    ///
    /// A cap of 0 is treated as 1 (the plan must always make progress).
    pub group_caps: Vec<Option<u32>>,
    /// Worker counts K for which to estimate the makespan.
    ///
    /// K = 0 is simulated as K = 1 (and reported as given).
    pub workers: Vec<u32>,
}

/// Makespan estimate for one worker count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Makespan {
    /// The worker count K, as given in [`PlanOptions::workers`].
    pub workers: u32,
    /// Total time (effort units) with list scheduling, critical-path first.
    pub makespan: u64,
}

/// Everything the planner says about a DAG.
#[derive(Debug, Clone, Default)]
pub struct Analysis {
    /// `Open` tasks whose predecessors are all satisfied; highest priority first
    /// (longest remaining critical path, then `priority`, then index).
    pub ready: Vec<NodeIdx>,
    /// `Open` tasks not ready but plannable (every blocker will eventually finish).
    /// Ascending index.
    pub waiting: Vec<NodeIdx>,
    /// `Open` tasks that can never run while the graph stays as it is: they depend, directly or
    /// transitively, on a `Held` node. Ascending index.
    pub stuck: Vec<NodeIdx>,
    /// Parallel batches of `Open`/`Running` tasks. Every edge goes from an earlier wave to a later
    /// one; no wave holds more tasks of a group than its cap; no two tasks in one wave have
    /// overlapping footprints. `Running` tasks are all in wave 0. Within a wave: priority order.
    ///
    /// (`Running` tasks ignore caps, footprints and incoming edges; `Open` tasks joining wave 0
    /// respect the caps and footprints the `Running` ones use.)
    pub waves: Vec<Vec<NodeIdx>>,
    /// Effort-weighted longest path through the remaining (`Open`/`Running`) tasks, in order.
    ///
    /// Consecutive entries are linked by an edge, possibly through virtual nodes.
    pub critical_path: Vec<NodeIdx>,
    /// Sum of effort along `critical_path`.
    pub critical_path_effort: u64,
    /// Size of the largest wave.
    pub max_parallelism: usize,
    /// Share of planned tasks that sit in a wave with at least one other task (0.0..=1.0).
    pub parallel_rate: f64,
    /// Sum of effort of the remaining tasks (the sequential makespan).
    pub total_effort: u64,
    /// One entry per `PlanOptions::workers` value, in the same order.
    pub makespans: Vec<Makespan>,
}

/// Plans the remaining work of `dag`.
pub fn analyze(dag: &Dag, opts: &PlanOptions) -> Analysis {
    plan::analyze(dag, opts)
}

/// Whether two footprint entries may touch the same file: one is a path-component prefix of the
/// other once glob parts are cut off (`src/auth/**` ~ `src/auth/login.rs`, `src/a` !~ `src/ab`).
///
/// Normalisation: empty and `.` components are dropped (so a leading `./`, a trailing `/` and
/// doubled slashes do not matter), and the path is cut before the first component containing a
/// glob metacharacter (`*?[{`). An entry that normalises to nothing (`**`, `*`, `.`) overlaps
/// everything.
pub fn footprints_overlap(a: &str, b: &str) -> bool {
    footprint::overlap(a, b)
}

/// A seeded random DAG for benchmarks and tests: `nodes` tasks, about `edges` edges, all from a
/// lower to a higher index, efforts 1..=8, no groups, no footprints, all `Open`.
///
/// Deterministic for a given `(nodes, edges, seed)`. Exactly `edges` edges (duplicates possible)
/// when `nodes >= 2` (at most [`MAX_EDGES`]); none otherwise.
pub fn random_dag(nodes: u32, edges: u64, seed: u64) -> Dag {
    random::random_graph(nodes, edges, seed)
        .build()
        .expect("edges go from a lower to a higher index, so the graph is acyclic")
}

/// The [`GraphBuilder`] that [`random_dag`] builds, for measuring [`GraphBuilder::build`] alone.
pub fn random_graph(nodes: u32, edges: u64, seed: u64) -> GraphBuilder {
    random::random_graph(nodes, edges, seed)
}
