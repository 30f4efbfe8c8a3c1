//! The task graph seen by the planner: translates tasks (with their hierarchy) and `blocks`
//! edges into a [`planner::Dag`], and the planner's answers back into task ids.
//!
//! A task with children is a container: it is never scheduled itself, its status and progress
//! roll up from its leaves, a dependency on it waits for its whole subtree, and a dependency of
//! it holds back its whole subtree. In the DAG a container is a pair of virtual nodes.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::ids::TaskId;
use crate::planner::{self, GraphBuilder, NodeIdx, NodeKind, NodeSpec, NodeState, PlanOptions};
use crate::task::{Edge, Priority, Status, Task};

/// What the planner needs of a task.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphTask {
    pub id: TaskId,
    /// The task's plan key, if any (not used by the planner; task lists show it).
    pub key: Option<String>,
    pub parent: Option<TaskId>,
    pub title: String,
    pub status: Status,
    pub role: Option<String>,
    pub effort: u32,
    pub priority: Priority,
    pub footprint: Vec<String>,
}

impl From<&Task> for GraphTask {
    fn from(t: &Task) -> Self {
        Self {
            id: t.id,
            key: t.key.clone(),
            parent: t.parent,
            title: t.title.clone(),
            status: t.status,
            role: t.role.clone(),
            effort: t.effort,
            priority: t.priority,
            footprint: t.footprint.clone(),
        }
    }
}

/// What the DAG is built from: a [`GraphTask`] of a snapshot, or a whole [`Task`] (a runner
/// holding a million tasks builds from them without copying them into a snapshot first).
pub trait GraphNode {
    fn id(&self) -> TaskId;
    fn parent(&self) -> Option<TaskId>;
    fn status(&self) -> Status;
    fn role(&self) -> Option<&str>;
    fn effort(&self) -> u32;
    fn priority(&self) -> Priority;
    fn footprint(&self) -> &[String];
}

/// Implements [`GraphNode`] for a struct with fields of those names (`id`, `parent`,
/// `status`, `role` as an optional string, `effort`, `priority`, `footprint` as a list of
/// strings): the snapshot's and the store's tasks here, the runner's held tasks elsewhere.
#[macro_export]
macro_rules! graph_node {
    ($t:ty) => {
        impl $crate::graph::GraphNode for $t {
            fn id(&self) -> $crate::ids::TaskId {
                self.id
            }
            fn parent(&self) -> Option<$crate::ids::TaskId> {
                self.parent
            }
            fn status(&self) -> $crate::task::Status {
                self.status
            }
            fn role(&self) -> Option<&str> {
                self.role.as_deref()
            }
            fn effort(&self) -> u32 {
                self.effort
            }
            fn priority(&self) -> $crate::task::Priority {
                self.priority
            }
            fn footprint(&self) -> &[String] {
                &self.footprint
            }
        }
    };
}
graph_node!(GraphTask);
graph_node!(Task);

/// All live (non-archived) tasks and their edges.
#[derive(Debug, Clone, Default)]
pub struct GraphSnapshot {
    pub tasks: Vec<GraphTask>,
    pub edges: Vec<Edge>,
}

/// Progress of one task: for a leaf, 0 or 1 of 1; for a container, over its leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Progress {
    pub done: u32,
    pub total: u32,
    /// The stored status for a leaf; the rolled-up one for a container.
    pub status: Status,
    pub is_container: bool,
}

/// The planner's answers in task ids.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Planned {
    /// Pending leaves whose dependencies are all satisfied; best first.
    pub ready: Vec<TaskId>,
    /// Pending leaves that wait, with what they wait on (tasks or containers).
    pub waiting: Vec<(TaskId, Vec<TaskId>)>,
    /// Pending leaves that cannot run until a failed, blocked or cancelled task is dealt with.
    pub stuck: Vec<(TaskId, Vec<TaskId>)>,
    pub waves: Vec<Vec<TaskId>>,
    pub critical_path: Vec<TaskId>,
    pub critical_path_effort: u64,
    pub max_parallelism: usize,
    pub parallel_rate: f64,
    pub total_effort: u64,
    /// (workers, makespan in effort units).
    pub makespans: Vec<(u32, u64)>,
}

/// A cycle among tasks, in order (`[a, b]` = a blocks b blocks a).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("dependency cycle: {}", render_cycle(path))]
pub struct TaskCycle {
    pub path: Vec<TaskId>,
}

fn render_cycle(path: &[TaskId]) -> String {
    let mut s: Vec<String> = path.iter().map(|t| t.to_string()).collect();
    if let Some(first) = path.first() {
        s.push(first.to_string());
    }
    s.join(" → ")
}

struct Mapping {
    /// Per node: the task it belongs to.
    owner: Vec<TaskId>,
}

/// Values by task id: a vector indexed by sequence number when the ids are dense enough (a
/// project's tasks are: numbers are handed out in order and never reused), else a hash map. A
/// graph of a million tasks is built without hashing a million ids twice.
enum ById<V> {
    Dense(Vec<Option<V>>),
    Sparse(HashMap<TaskId, V>),
}

impl<V: Copy> ById<V> {
    /// Room for the ids of `tasks`.
    fn for_tasks<T: GraphNode>(tasks: &[T]) -> Self {
        let max = tasks.iter().map(|t| t.id().seq()).max().unwrap_or(0) as usize;
        if max <= 4 * tasks.len() + 1024 {
            Self::Dense(vec![None; max + 1])
        } else {
            Self::Sparse(HashMap::with_capacity(tasks.len()))
        }
    }

    /// Sets the value of `id`; false if it had one already (which is kept).
    fn insert(&mut self, id: TaskId, v: V) -> bool {
        match self {
            Self::Dense(slots) => match slots.get_mut(id.seq() as usize) {
                Some(slot @ None) => {
                    *slot = Some(v);
                    true
                }
                Some(Some(_)) => false,
                // Not a task of the graph: a parent or an edge end outside it.
                None => false,
            },
            Self::Sparse(map) => match map.entry(id) {
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(v);
                    true
                }
                std::collections::hash_map::Entry::Occupied(_) => false,
            },
        }
    }

    fn get(&self, id: TaskId) -> Option<V> {
        match self {
            Self::Dense(slots) => slots.get(id.seq() as usize).copied().flatten(),
            Self::Sparse(map) => map.get(&id).copied(),
        }
    }
}

/// Which tasks of `tasks` have children, and how many do.
fn containers<T: GraphNode>(tasks: &[T]) -> (ById<()>, usize) {
    let mut is_container = ById::for_tasks(tasks);
    let mut count = 0;
    for p in tasks.iter().filter_map(|t| t.parent()) {
        count += usize::from(is_container.insert(p, ()));
    }
    (is_container, count)
}

fn build(
    snap: &GraphSnapshot,
    group_of: &dyn Fn(&str) -> Option<u32>,
) -> Result<(planner::Dag, Mapping), TaskCycle> {
    build_from(&snap.tasks, &snap.edges, group_of)
}

/// [`build`] from any tasks (none archived) and their edges.
fn build_from<T: GraphNode>(
    tasks: &[T],
    edges: &[Edge],
    group_of: &dyn Fn(&str) -> Option<u32>,
) -> Result<(planner::Dag, Mapping), TaskCycle> {
    let (is_container, n_containers) = containers(tasks);
    let mut b = GraphBuilder::with_capacity(
        tasks.len() + 2 * n_containers,
        edges.len() + 2 * tasks.len(),
    );
    let mut owner = Vec::with_capacity(tasks.len());
    // (in-node, out-node) per task.
    let mut ends: ById<(NodeIdx, NodeIdx)> = ById::for_tasks(tasks);
    let footprints: Vec<Vec<&str>> = tasks
        .iter()
        .map(|t| t.footprint().iter().map(String::as_str).collect())
        .collect();
    for (t, fp) in tasks.iter().zip(&footprints) {
        let id = t.id();
        if is_container.get(id).is_some() {
            let spec = |kind| NodeSpec {
                kind,
                state: NodeState::Open,
                effort: 0,
                priority: 0,
                group: None,
                footprint: &[],
            };
            let s = b.add_node(spec(NodeKind::Start));
            let e = b.add_node(spec(NodeKind::End));
            owner.push(id);
            owner.push(id);
            ends.insert(id, (s, e));
        } else {
            let state = match t.status() {
                Status::Completed | Status::Skipped => NodeState::Done,
                Status::Pending => NodeState::Open,
                Status::Running => NodeState::Running,
                Status::Failed | Status::Blocked | Status::Cancelled => NodeState::Held,
            };
            let v = b.add_node(NodeSpec {
                kind: NodeKind::Task,
                state,
                effort: t.effort(),
                priority: t.priority().rank(),
                group: t.role().and_then(group_of),
                footprint: fp,
            });
            owner.push(id);
            ends.insert(id, (v, v));
        }
    }
    drop(is_container);
    for t in tasks {
        if let (Some(p), Some((cin, cout))) = (t.parent(), ends.get(t.id()))
            && let Some((pin, pout)) = ends.get(p)
        {
            b.add_edge(pin, cin);
            b.add_edge(cout, pout);
        }
    }
    for e in edges.iter().filter(|e| e.kind.orders_work()) {
        if let (Some((_, from_out)), Some((to_in, _))) = (ends.get(e.from), ends.get(e.to)) {
            b.add_edge(from_out, to_in);
        }
    }
    drop(ends);
    match b.build() {
        Ok(dag) => Ok((dag, Mapping { owner })),
        Err(c) => {
            let mut path: Vec<TaskId> = Vec::new();
            for v in c.path {
                let id = owner[v as usize];
                if path.last() != Some(&id) {
                    path.push(id);
                }
            }
            if path.len() > 1 && path.first() == path.last() {
                path.pop();
            }
            Err(TaskCycle { path })
        }
    }
}

/// The planner's DAG of a snapshot with the mapping between nodes and tasks, for callers that
/// track readiness themselves (the execution engine).
#[derive(Debug)]
pub struct TaskDag {
    pub dag: planner::Dag,
    /// The task each node belongs to (both virtual nodes of a container map to it).
    pub owner: Vec<TaskId>,
}

impl TaskDag {
    /// Builds it; `group_of` maps a role to its concurrency group.
    pub fn new(
        snap: &GraphSnapshot,
        group_of: &dyn Fn(&str) -> Option<u32>,
    ) -> Result<Self, TaskCycle> {
        let (dag, map) = build(snap, group_of)?;
        Ok(Self {
            dag,
            owner: map.owner,
        })
    }

    /// [`TaskDag::new`] from tasks (none archived) and their edges, without a snapshot.
    pub fn of_tasks<T: GraphNode>(
        tasks: &[T],
        edges: &[Edge],
        group_of: &dyn Fn(&str) -> Option<u32>,
    ) -> Result<Self, TaskCycle> {
        let (dag, map) = build_from(tasks, edges, group_of)?;
        Ok(Self {
            dag,
            owner: map.owner,
        })
    }

    /// `tasks` and the leaf tasks that must be done before any of them may start (through
    /// `blocks` edges and the hierarchy, transitively): what a hold on `tasks` lets start. A
    /// container brings its leaves.
    pub fn with_prerequisites(&self, tasks: &HashSet<TaskId>) -> HashSet<TaskId> {
        let mut out = tasks.clone();
        if tasks.is_empty() {
            return out;
        }
        let mut seen = vec![false; self.owner.len()];
        let mut stack: Vec<NodeIdx> = Vec::new();
        for (v, t) in self.owner.iter().enumerate() {
            if tasks.contains(t) {
                seen[v] = true;
                stack.push(v as NodeIdx);
            }
        }
        while let Some(v) = stack.pop() {
            if self.dag.kind(v) == NodeKind::Task {
                out.insert(self.owner[v as usize]);
            }
            for &p in self.dag.preds(v) {
                if !std::mem::replace(&mut seen[p as usize], true) {
                    stack.push(p);
                }
            }
        }
        out
    }
}

/// Finds a dependency cycle (through `blocks` edges and the hierarchy), if there is one.
pub fn find_cycle(snap: &GraphSnapshot) -> Option<TaskCycle> {
    build(snap, &|_| None).err()
}

/// [`find_cycle`] over any tasks (none archived) and their edges.
pub fn find_cycle_among<T: GraphNode>(tasks: &[T], edges: &[Edge]) -> Option<TaskCycle> {
    build_from(tasks, edges, &|_| None).err()
}

/// Options for [`plan`]: concurrency caps and worker counts.
#[derive(Debug, Clone, Default)]
pub struct PlanSettings {
    /// Role name → at most this many at once / per wave.
    pub role_caps: Vec<(String, u32)>,
    /// Named groups of roles that share one cap (see [`Caps`]).
    pub groups: Vec<NamedGroup>,
    /// Worker counts to estimate the makespan for.
    pub workers: Vec<u32>,
}

/// A named concurrency group: at most `max_parallel` tasks of its roles at once, together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NamedGroup {
    pub name: String,
    pub max_parallel: u32,
    pub roles: Vec<String>,
}

/// Concurrency caps by role. Every capped role is in exactly one group: a role with a cap of
/// its own (`max_parallel` on the role) is a group by itself, the others are in the named group
/// that lists them. [`check_groups`] rejects a role in two places; should one slip through,
/// the first place wins.
#[derive(Debug, Clone, Default)]
pub struct Caps {
    caps: Vec<u32>,
    names: Vec<String>,
    of_role: HashMap<String, u32>,
}

impl Caps {
    pub fn new(role_caps: &[(String, u32)], groups: &[NamedGroup]) -> Self {
        let mut c = Self::default();
        for (role, cap) in role_caps {
            if !c.of_role.contains_key(role) {
                c.of_role.insert(role.clone(), c.caps.len() as u32);
                c.caps.push(*cap);
                c.names.push(role.clone());
            }
        }
        for g in groups {
            let idx = c.caps.len() as u32;
            c.caps.push(g.max_parallel);
            c.names.push(g.name.clone());
            for role in &g.roles {
                c.of_role.entry(role.clone()).or_insert(idx);
            }
        }
        c
    }

    /// The group a role's tasks count against, if the role is capped.
    pub fn group_of(&self, role: &str) -> Option<u32> {
        self.of_role.get(role).copied()
    }

    /// How many tasks of group `g` may run at once.
    pub fn cap(&self, g: u32) -> u32 {
        self.caps.get(g as usize).copied().unwrap_or(u32::MAX)
    }

    /// The group's name: the role's own name for a role cap.
    pub fn name(&self, g: u32) -> &str {
        self.names.get(g as usize).map_or("", String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.caps.is_empty()
    }

    /// Every group as its cap and its roles (sorted), in group order: what a store needs to
    /// count a group's running tasks whoever runs them.
    pub fn limits(&self) -> Vec<(u32, Vec<String>)> {
        let mut out: Vec<(u32, Vec<String>)> =
            self.caps.iter().map(|&cap| (cap, Vec::new())).collect();
        for (role, &g) in &self.of_role {
            if let Some((_, roles)) = out.get_mut(g as usize) {
                roles.push(role.clone());
            }
        }
        for (_, roles) in &mut out {
            roles.sort();
        }
        out
    }
}

/// Checks that named groups are usable with these role caps: a cap of at least 1, at least one
/// role, and no role capped twice (in two groups, or in a group and by its own cap). The error
/// names the group and the role.
pub fn check_groups(role_caps: &[(String, u32)], groups: &[NamedGroup]) -> Result<(), String> {
    let mut seen: HashMap<&str, &str> = HashMap::new();
    for g in groups {
        if g.max_parallel == 0 {
            return Err(format!(
                "group `{}`: max_parallel must be at least 1",
                g.name
            ));
        }
        if g.roles.is_empty() {
            return Err(format!("group `{}`: lists no roles", g.name));
        }
        for role in &g.roles {
            if role_caps.iter().any(|(r, _)| r == role) {
                return Err(format!(
                    "group `{}`: role `{role}` has a max_parallel of its own; a role is capped by its own limit or by one group, not both",
                    g.name
                ));
            }
            if let Some(other) = seen.insert(role, &g.name) {
                return Err(format!(
                    "role `{role}` is in two groups, `{other}` and `{}`; a role can be in one group",
                    g.name
                ));
            }
        }
    }
    Ok(())
}

impl PlanSettings {
    pub fn caps(&self) -> Caps {
        Caps::new(&self.role_caps, &self.groups)
    }
}

/// Plans the remaining work.
pub fn plan(snap: &GraphSnapshot, settings: &PlanSettings) -> Result<Planned, TaskCycle> {
    let caps = settings.caps();
    let (dag, map) = build(snap, &|r| caps.group_of(r))?;
    let opts = PlanOptions {
        group_caps: (0..caps.caps.len() as u32)
            .map(|g| Some(caps.cap(g)))
            .collect(),
        workers: settings.workers.clone(),
    };
    let a = planner::analyze(&dag, &opts);
    let ids = |v: &[NodeIdx]| -> Vec<TaskId> { v.iter().map(|&n| map.owner[n as usize]).collect() };
    let with_blockers = |v: &[NodeIdx]| -> Vec<(TaskId, Vec<TaskId>)> {
        v.iter()
            .map(|&n| {
                let mut bl = ids(&dag.blockers(n));
                bl.sort();
                bl.dedup();
                (map.owner[n as usize], bl)
            })
            .collect()
    };
    Ok(Planned {
        ready: ids(&a.ready),
        waiting: with_blockers(&a.waiting),
        stuck: with_blockers(&a.stuck),
        waves: a.waves.iter().map(|w| ids(w)).collect(),
        critical_path: ids(&a.critical_path),
        critical_path_effort: a.critical_path_effort,
        max_parallelism: a.max_parallelism,
        parallel_rate: a.parallel_rate,
        total_effort: a.total_effort,
        makespans: a
            .makespans
            .iter()
            .map(|m| (m.workers, m.makespan))
            .collect(),
    })
}

/// The layer of every live task in the whole graph, finished work included: a leaf's layer is
/// the number of leaves on the longest chain of `blocks` dependencies (through containers)
/// before it, a container's the layer its first child may start at. With no caps these are the
/// planner's waves of a graph where nothing is done yet; the web view lays the graph out by
/// them, so finished work keeps its place.
pub fn layers(snap: &GraphSnapshot) -> Result<HashMap<TaskId, u32>, TaskCycle> {
    let (dag, map) = build(snap, &|_| None)?;
    let mut at = vec![0u32; dag.len()];
    for &v in dag.topo_order() {
        at[v as usize] = dag
            .preds(v)
            .iter()
            .map(|&p| at[p as usize] + u32::from(dag.kind(p) == NodeKind::Task))
            .max()
            .unwrap_or(0);
    }
    let mut out = HashMap::with_capacity(snap.tasks.len());
    for (v, &id) in map.owner.iter().enumerate() {
        if dag.kind(v as NodeIdx) != NodeKind::End {
            out.insert(id, at[v]);
        }
    }
    Ok(out)
}

/// Position of each task in `snap.tasks`.
fn task_index(snap: &GraphSnapshot) -> HashMap<TaskId, usize> {
    snap.tasks
        .iter()
        .enumerate()
        .map(|(i, t)| (t.id, i))
        .collect()
}

/// Rolls status and progress up the hierarchy. Tasks whose parent is missing count as roots.
pub fn rollup(snap: &GraphSnapshot) -> HashMap<TaskId, Progress> {
    let index = task_index(snap);
    let n = snap.tasks.len();
    let mut children_count = vec![0u32; n];
    for t in &snap.tasks {
        if let Some(&p) = t.parent.as_ref().and_then(|p| index.get(p)) {
            children_count[p] += 1;
        }
    }
    // Accumulators per task: done, total, and counts of leaf statuses.
    let mut done = vec![0u32; n];
    let mut total = vec![0u32; n];
    let mut counts = vec![[0u32; 7]; n];
    for (i, t) in snap.tasks.iter().enumerate() {
        if children_count[i] > 0 {
            continue;
        }
        // Walk up from the leaf; a parent loop (corrupt data) is cut after n steps.
        let d = u32::from(t.status.satisfies_dependents());
        let si = Status::ALL.iter().position(|s| *s == t.status).unwrap_or(0);
        let mut cur = Some(i);
        let mut steps = 0;
        while let Some(c) = cur {
            done[c] += d;
            total[c] += 1;
            counts[c][si] += 1;
            steps += 1;
            if steps > n {
                break;
            }
            cur = snap.tasks[c]
                .parent
                .as_ref()
                .and_then(|p| index.get(p))
                .copied();
        }
    }
    snap.tasks
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let is_container = children_count[i] > 0;
            let status = if is_container {
                rolled_status(&counts[i], done[i], total[i])
            } else {
                t.status
            };
            (
                t.id,
                Progress {
                    done: done[i],
                    total: total[i],
                    status,
                    is_container,
                },
            )
        })
        .collect()
}

fn rolled_status(counts: &[u32; 7], done: u32, total: u32) -> Status {
    let c = |s: Status| counts[Status::ALL.iter().position(|x| *x == s).unwrap_or(0)];
    if total > 0 && done == total {
        if c(Status::Completed) > 0 {
            Status::Completed
        } else {
            Status::Skipped
        }
    } else if c(Status::Running) > 0 {
        Status::Running
    } else if c(Status::Failed) > 0 {
        Status::Failed
    } else if c(Status::Blocked) > 0 {
        Status::Blocked
    } else if c(Status::Pending) == 0 && c(Status::Cancelled) > 0 {
        Status::Cancelled
    } else {
        Status::Pending
    }
}

/// Parent pointers that loop (only possible in a damaged database): each loop once.
pub fn parent_loops(snap: &GraphSnapshot) -> Vec<Vec<TaskId>> {
    let index = task_index(snap);
    let n = snap.tasks.len();
    let mut state = vec![0u8; n];
    let mut loops = Vec::new();
    for start in 0..n {
        let mut chain = Vec::new();
        let mut cur = Some(start);
        while let Some(c) = cur {
            match state[c] {
                2 => break,
                1 => {
                    let pos = chain.iter().position(|&x| x == c).unwrap_or(0);
                    loops.push(
                        chain[pos..]
                            .iter()
                            .map(|&i: &usize| snap.tasks[i].id)
                            .collect(),
                    );
                    break;
                }
                _ => {}
            }
            state[c] = 1;
            chain.push(c);
            cur = snap.tasks[c]
                .parent
                .as_ref()
                .and_then(|p| index.get(p))
                .copied();
        }
        for c in chain {
            state[c] = 2;
        }
    }
    loops
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::EdgeKind;

    fn id(n: u32) -> TaskId {
        TaskId::from_seq(n).unwrap()
    }

    fn task(n: u32, parent: Option<u32>, status: Status) -> GraphTask {
        GraphTask {
            id: id(n),
            key: None,
            parent: parent.map(id),
            title: format!("t{n}"),
            status,
            role: None,
            effort: 1,
            priority: Priority::Normal,
            footprint: vec![],
        }
    }

    fn blocks(a: u32, b: u32) -> Edge {
        Edge {
            from: id(a),
            to: id(b),
            kind: EdgeKind::Blocks,
        }
    }

    fn group(name: &str, cap: u32, roles: &[&str]) -> NamedGroup {
        NamedGroup {
            name: name.into(),
            max_parallel: cap,
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        }
    }

    #[test]
    fn sparse_ids_give_the_graph_that_dense_ids_give() {
        // The same graph twice: numbered 1..=6, and with numbers far apart (looked up in a
        // hash map instead of a vector). Container 4 holds 5 and 6; 1 → 2 → 4; 3 alone.
        let graph = |n: &dyn Fn(u32) -> u32| GraphSnapshot {
            tasks: vec![
                task(n(1), None, Status::Pending),
                task(n(2), None, Status::Pending),
                task(n(3), None, Status::Pending),
                task(n(4), None, Status::Pending),
                task(n(5), Some(n(4)), Status::Pending),
                task(n(6), Some(n(4)), Status::Pending),
            ],
            edges: vec![blocks(n(1), n(2)), blocks(n(2), n(4)), blocks(n(5), n(6))],
        };
        let far = |k: u32| k * 1_000_000;
        let (dense, sparse) = (
            layers(&graph(&|k| k)).unwrap(),
            layers(&graph(&far)).unwrap(),
        );
        for k in 1..=6 {
            assert_eq!(dense[&id(k)], sparse[&id(far(k))], "task {k}");
        }
        // A cycle through the container is found either way, with the same tasks on it.
        let mut cyclic = graph(&far);
        cyclic.edges.push(blocks(far(6), far(1)));
        let mut on_it = find_cycle(&cyclic).unwrap().path;
        on_it.sort();
        assert!(
            on_it.contains(&id(far(1))) && on_it.contains(&id(far(4))),
            "{on_it:?}"
        );
        let mut cyclic = graph(&|k| k);
        cyclic.edges.push(blocks(6, 1));
        assert!(find_cycle(&cyclic).is_some());
    }

    #[test]
    fn layers_place_finished_work_and_containers() {
        // 1 (done) → 2 → 3; container 4 holds 5 and 6, and waits on 2; 7 is alone.
        let snap = GraphSnapshot {
            tasks: vec![
                task(1, None, Status::Completed),
                task(2, None, Status::Completed),
                task(3, None, Status::Pending),
                task(4, None, Status::Pending),
                task(5, Some(4), Status::Pending),
                task(6, Some(4), Status::Running),
                task(7, None, Status::Failed),
            ],
            edges: vec![blocks(1, 2), blocks(2, 3), blocks(2, 4), blocks(5, 6)],
        };
        let l = layers(&snap).unwrap();
        let at = |n| l[&id(n)];
        assert_eq!(
            (at(1), at(2), at(3), at(4), at(5), at(6), at(7)),
            (0, 1, 2, 2, 2, 3, 0)
        );
        // With nothing done and no caps, they are the planner's waves.
        let mut fresh = snap.clone();
        for t in &mut fresh.tasks {
            t.status = Status::Pending;
        }
        let planned = plan(&fresh, &PlanSettings::default()).unwrap();
        for (w, wave) in planned.waves.iter().enumerate() {
            for t in wave {
                assert_eq!(l[t] as usize, w, "{t}");
            }
        }
        let cyclic = GraphSnapshot {
            tasks: vec![
                task(1, None, Status::Pending),
                task(2, None, Status::Pending),
            ],
            edges: vec![blocks(1, 2), blocks(2, 1)],
        };
        assert!(layers(&cyclic).is_err());
    }

    #[test]
    fn prerequisites_follow_edges_and_the_hierarchy() {
        // 1 → 2 → 5 (5 held); 3 is a container of 4 and blocks 2; 6 is unrelated; 7 is a
        // container of 8 and blocked by 6.
        let snap = GraphSnapshot {
            tasks: vec![
                task(1, None, Status::Pending),
                task(2, None, Status::Pending),
                task(3, None, Status::Pending),
                task(4, Some(3), Status::Pending),
                task(5, None, Status::Pending),
                task(6, None, Status::Pending),
                task(7, None, Status::Pending),
                task(8, Some(7), Status::Pending),
            ],
            edges: vec![blocks(1, 2), blocks(2, 5), blocks(3, 2), blocks(6, 7)],
        };
        let dag = TaskDag::new(&snap, &|_| None).unwrap();
        let of = |held: &[u32]| {
            let mut v: Vec<u32> = dag
                .with_prerequisites(&held.iter().map(|&n| id(n)).collect())
                .iter()
                .map(|t| t.seq())
                .collect();
            v.sort_unstable();
            v
        };
        // Containers never start themselves: their leaves do.
        assert_eq!(of(&[5]), [1, 2, 4, 5]);
        assert_eq!(
            of(&[8]),
            [6, 8],
            "a child waits on its container's blockers"
        );
        assert_eq!(of(&[7]), [6, 7, 8], "a container brings its children");
        assert_eq!(of(&[6]), [6]);
        assert!(of(&[]).is_empty());
    }

    #[test]
    fn limits_list_each_group_with_its_roles() {
        let caps = Caps::new(
            &[("architect".to_owned(), 1)],
            &[group("heavy", 2, &["tester", "implementer"])],
        );
        assert_eq!(
            caps.limits(),
            vec![
                (1, vec!["architect".to_owned()]),
                (2, vec!["implementer".to_owned(), "tester".to_owned()]),
            ]
        );
        assert!(Caps::default().limits().is_empty());
    }

    #[test]
    fn a_named_group_caps_its_roles_together() {
        // Six independent tasks: two testers, two implementers, two reviewers. Testers and
        // implementers share a group of 2; reviewers are free.
        let roles = [
            "tester",
            "tester",
            "implementer",
            "implementer",
            "reviewer",
            "reviewer",
        ];
        let snap = GraphSnapshot {
            tasks: roles
                .iter()
                .enumerate()
                .map(|(i, r)| GraphTask {
                    role: Some((*r).to_owned()),
                    ..task(i as u32 + 1, None, Status::Pending)
                })
                .collect(),
            edges: vec![],
        };
        let settings = PlanSettings {
            groups: vec![group("heavy", 2, &["tester", "implementer"])],
            ..Default::default()
        };
        let p = plan(&snap, &settings).unwrap();
        let heavy = |w: &Vec<TaskId>| w.iter().filter(|t| t.seq() <= 4).count();
        assert_eq!(p.waves.len(), 2, "{:?}", p.waves);
        assert!(p.waves.iter().all(|w| heavy(w) <= 2), "{:?}", p.waves);
        assert_eq!(
            p.waves[0].len(),
            4,
            "both reviewers start at once: {:?}",
            p.waves
        );
        // A role cap of its own is a group of one.
        let caps = Caps::new(
            &[("tester".into(), 1)],
            &[group("heavy", 2, &["implementer"])],
        );
        let (t, i) = (
            caps.group_of("tester").unwrap(),
            caps.group_of("implementer").unwrap(),
        );
        assert_ne!(t, i);
        assert_eq!((caps.cap(t), caps.name(t)), (1, "tester"));
        assert_eq!((caps.cap(i), caps.name(i)), (2, "heavy"));
        assert_eq!(caps.group_of("reviewer"), None);
    }

    #[test]
    fn a_role_is_capped_in_one_place_only() {
        let own = [("tester".to_owned(), 1)];
        let e = check_groups(&own, &[group("heavy", 2, &["tester"])]).unwrap_err();
        assert!(e.contains("`tester`") && e.contains("`heavy`"), "{e}");
        let e = check_groups(
            &[],
            &[group("a", 2, &["tester"]), group("b", 1, &["tester"])],
        )
        .unwrap_err();
        assert!(e.contains("two groups, `a` and `b`"), "{e}");
        assert!(check_groups(&[], &[group("a", 0, &["tester"])]).is_err());
        assert!(check_groups(&[], &[group("a", 1, &[])]).is_err());
        assert!(check_groups(&own, &[group("a", 1, &["implementer"])]).is_ok());
    }

    #[test]
    fn a_dependency_on_a_container_waits_for_its_subtree() {
        // 1 = container with children 2, 3; 4 depends on 1.
        let snap = GraphSnapshot {
            tasks: vec![
                task(1, None, Status::Pending),
                task(2, Some(1), Status::Completed),
                task(3, Some(1), Status::Pending),
                task(4, None, Status::Pending),
            ],
            edges: vec![blocks(1, 4)],
        };
        let p = plan(&snap, &PlanSettings::default()).unwrap();
        assert_eq!(p.ready, vec![id(3)]);
        assert_eq!(p.waiting, vec![(id(4), vec![id(1)])]);
        assert_eq!(p.waves, vec![vec![id(3)], vec![id(4)]]);
        let r = rollup(&snap);
        assert_eq!(r[&id(1)].done, 1);
        assert_eq!(r[&id(1)].total, 2);
        assert!(r[&id(1)].is_container);
    }

    #[test]
    fn a_dependency_of_a_container_holds_its_children() {
        let snap = GraphSnapshot {
            tasks: vec![
                task(1, None, Status::Pending),
                task(2, Some(1), Status::Pending),
                task(3, None, Status::Pending),
            ],
            edges: vec![blocks(3, 1)],
        };
        let p = plan(&snap, &PlanSettings::default()).unwrap();
        assert_eq!(p.ready, vec![id(3)]);
        assert_eq!(p.waiting, vec![(id(2), vec![id(3)])]);
    }

    #[test]
    fn cycles_through_the_hierarchy_are_found() {
        // Child 2 of container 1 blocks its own parent.
        let snap = GraphSnapshot {
            tasks: vec![
                task(1, None, Status::Pending),
                task(2, Some(1), Status::Pending),
            ],
            edges: vec![blocks(2, 1)],
        };
        let c = find_cycle(&snap).unwrap();
        assert!(c.path.contains(&id(1)) && c.path.contains(&id(2)), "{c}");
        let snap = GraphSnapshot {
            tasks: vec![
                task(1, None, Status::Pending),
                task(2, None, Status::Pending),
            ],
            edges: vec![blocks(1, 2), blocks(2, 1)],
        };
        let c = find_cycle(&snap).unwrap();
        assert_eq!(c.path.len(), 2);
        assert!(c.to_string().starts_with("dependency cycle: "));
    }

    #[test]
    fn rolled_up_status_follows_the_leaves() {
        let snap = GraphSnapshot {
            tasks: vec![
                task(1, None, Status::Pending),
                task(2, Some(1), Status::Completed),
                task(3, Some(1), Status::Skipped),
            ],
            edges: vec![],
        };
        assert_eq!(rollup(&snap)[&id(1)].status, Status::Completed);
    }

    #[test]
    fn parent_loops_are_reported_once() {
        let snap = GraphSnapshot {
            tasks: vec![
                task(1, Some(2), Status::Pending),
                task(2, Some(1), Status::Pending),
            ],
            edges: vec![],
        };
        assert_eq!(parent_loops(&snap).len(), 1);
    }
}
