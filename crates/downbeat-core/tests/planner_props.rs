//! Property tests of the planner against naive oracles.
//!
//! Graphs are small random DAGs (edges between random pairs, oriented by a random permutation of
//! the indices, so that the index order is not always topological) with every node kind and
//! state, efforts 0..=5, priorities, groups and footprints.

use std::collections::{HashMap, HashSet};

use downbeat_core::planner::{
    Analysis, Dag, GraphBuilder, NodeIdx, NodeKind, NodeSpec, NodeState, PlanOptions, analyze,
    footprints_overlap,
};
use petgraph::algo::{has_path_connecting, is_cyclic_directed};
use petgraph::graph::DiGraph;
use proptest::prelude::*;
use proptest::sample::Index;

const FOOTPRINTS: [&str; 10] = [
    "src",
    "src/a",
    "src/a/**",
    "src/ab",
    "./src/a/x.rs",
    "docs/*.md",
    "docs/",
    "**",
    "src/b/",
    "tests/t.rs",
];

#[derive(Debug, Clone)]
struct Node {
    kind: NodeKind,
    state: NodeState,
    effort: u32,
    priority: i32,
    group: Option<u32>,
    footprint: Vec<&'static str>,
}

#[derive(Debug, Clone)]
struct Graph {
    nodes: Vec<Node>,
    edges: Vec<(NodeIdx, NodeIdx)>,
    caps: Vec<Option<u32>>,
}

impl Graph {
    fn builder(&self) -> GraphBuilder {
        let mut b = GraphBuilder::new();
        for n in &self.nodes {
            b.add_node(NodeSpec {
                kind: n.kind,
                state: n.state,
                effort: n.effort,
                priority: n.priority,
                group: n.group,
                footprint: &n.footprint,
            });
        }
        for &(f, t) in &self.edges {
            b.add_edge(f, t);
        }
        b
    }
    fn dag(&self) -> Dag {
        self.builder().build().expect("generated graph is acyclic")
    }
    fn petgraph(&self) -> DiGraph<(), ()> {
        let mut g = DiGraph::new();
        let ids: Vec<_> = self.nodes.iter().map(|_| g.add_node(())).collect();
        for &(f, t) in &self.edges {
            g.add_edge(ids[f as usize], ids[t as usize], ());
        }
        g
    }
}

/// `simple`: only `Open` tasks and virtual nodes, no groups or footprints.
fn node(simple: bool) -> impl Strategy<Value = Node> {
    let kind = prop_oneof![
        6 => Just(NodeKind::Task),
        1 => Just(NodeKind::Start),
        1 => Just(NodeKind::End),
    ];
    let state = if simple {
        Just(NodeState::Open).boxed()
    } else {
        prop_oneof![
            6 => Just(NodeState::Open),
            2 => Just(NodeState::Done),
            1 => Just(NodeState::Running),
            1 => Just(NodeState::Held),
        ]
        .boxed()
    };
    let group = if simple {
        Just(None).boxed()
    } else {
        proptest::option::of(0u32..3).boxed()
    };
    let footprint = if simple {
        Just(Vec::new()).boxed()
    } else {
        prop_oneof![
            2 => Just(Vec::new()),
            1 => proptest::collection::vec(proptest::sample::select(&FOOTPRINTS[..]), 1..3),
        ]
        .boxed()
    };
    (kind, state, 0u32..=5, -1i32..=1, group, footprint).prop_map(
        |(kind, state, effort, priority, group, footprint)| Node {
            kind,
            state,
            effort,
            priority,
            group,
            footprint,
        },
    )
}

/// A DAG of `1..=max_nodes` nodes.
fn dag_graph(max_nodes: usize, simple: bool) -> impl Strategy<Value = Graph> {
    (1..=max_nodes).prop_flat_map(move |n| {
        let caps = if simple {
            Just(Vec::new()).boxed()
        } else {
            proptest::collection::vec(proptest::option::of(0u32..3), 0..4).boxed()
        };
        (
            proptest::collection::vec(node(simple), n),
            proptest::collection::vec((0..n, 0..n), 0..=3 * n),
            Just((0..n as NodeIdx).collect::<Vec<_>>()).prop_shuffle(),
            caps,
        )
            .prop_map(|(nodes, pairs, perm, caps)| Graph {
                nodes,
                edges: pairs
                    .into_iter()
                    .filter(|(a, b)| a != b)
                    .map(|(a, b)| (perm[a.min(b)], perm[a.max(b)]))
                    .collect(),
                caps,
            })
    })
}

// ---------------------------------------------------------------- oracle

const SAT: u8 = 0;
const PEND: u8 = 1;
const BLOCK: u8 = 2;

/// The planner's model, computed naively.
struct Oracle {
    /// Planned (remaining) tasks: `Open` and not stuck, or `Running`.
    planned: Vec<bool>,
    stuck: Vec<NodeIdx>,
    /// For each planned task: the planned tasks it waits for (through virtual nodes).
    deps: Vec<HashSet<NodeIdx>>,
    /// Longest dependency path starting at each planned task (effort-weighted).
    bl: Vec<u64>,
}

fn topo_order(n: usize, edges: &[(NodeIdx, NodeIdx)]) -> Vec<usize> {
    let mut indeg = vec![0; n];
    for &(_, t) in edges {
        indeg[t as usize] += 1;
    }
    let mut order: Vec<usize> = (0..n).filter(|&v| indeg[v] == 0).collect();
    let mut i = 0;
    while i < order.len() {
        let v = order[i];
        i += 1;
        for &(f, t) in edges {
            if f as usize == v {
                indeg[t as usize] -= 1;
                if indeg[t as usize] == 0 {
                    order.push(t as usize);
                }
            }
        }
    }
    assert_eq!(order.len(), n, "oracle expects a DAG");
    order
}

impl Oracle {
    fn new(g: &Graph) -> Self {
        let n = g.nodes.len();
        let preds = |v: usize| {
            g.edges
                .iter()
                .filter(move |e| e.1 as usize == v)
                .map(|e| e.0)
        };
        let order = topo_order(n, &g.edges);
        // Status: own status of each node.
        let mut status = vec![SAT; n];
        for &v in &order {
            let worst = preds(v).map(|p| status[p as usize]).max().unwrap_or(SAT);
            let node = &g.nodes[v];
            status[v] = match (node.kind, node.state) {
                (_, NodeState::Held) => BLOCK,
                (NodeKind::Task, NodeState::Done) => SAT,
                (NodeKind::Task, NodeState::Running) => PEND,
                (NodeKind::Task, NodeState::Open) => {
                    if worst == BLOCK {
                        BLOCK
                    } else {
                        PEND
                    }
                }
                _ => worst,
            };
        }
        let is_task = |v: usize| g.nodes[v].kind == NodeKind::Task;
        let planned: Vec<bool> = (0..n).map(|v| is_task(v) && status[v] == PEND).collect();
        let stuck = (0..n)
            .filter(|&v| is_task(v) && g.nodes[v].state == NodeState::Open && status[v] == BLOCK)
            .map(|v| v as NodeIdx)
            .collect();
        let mut deps = vec![HashSet::new(); n];
        for v in 0..n {
            if !planned[v] || g.nodes[v].state == NodeState::Running {
                continue;
            }
            let mut stack: Vec<NodeIdx> = preds(v).collect();
            let mut seen = HashSet::new();
            while let Some(p) = stack.pop() {
                if !seen.insert(p) {
                    continue;
                }
                if is_task(p as usize) {
                    if planned[p as usize] {
                        deps[v].insert(p);
                    }
                } else {
                    stack.extend(preds(p as usize));
                }
            }
        }
        let mut bl = vec![0u64; n];
        for &v in order.iter().rev() {
            if planned[v] {
                let after = (0..n)
                    .filter(|&w| deps[w].contains(&(v as NodeIdx)))
                    .map(|w| bl[w])
                    .max()
                    .unwrap_or(0);
                bl[v] = u64::from(g.nodes[v].effort) + after;
            }
        }
        Oracle {
            planned,
            stuck,
            deps,
            bl,
        }
    }

    fn key(
        &self,
        g: &Graph,
        v: NodeIdx,
    ) -> (std::cmp::Reverse<u64>, std::cmp::Reverse<i32>, NodeIdx) {
        (
            std::cmp::Reverse(self.bl[v as usize]),
            std::cmp::Reverse(g.nodes[v as usize].priority),
            v,
        )
    }

    fn planned_tasks(&self) -> Vec<NodeIdx> {
        (0..self.planned.len())
            .filter(|&v| self.planned[v])
            .map(|v| v as NodeIdx)
            .collect()
    }

    fn cap(g: &Graph, v: NodeIdx) -> Option<(u32, usize)> {
        let group = g.nodes[v as usize].group?;
        let cap = (*g.caps.get(group as usize)?)?;
        Some((group, cap.max(1) as usize))
    }

    /// Whether `v` may join `others` (caps and footprints).
    fn fits(g: &Graph, v: NodeIdx, others: &[NodeIdx]) -> bool {
        if let Some((group, cap)) = Self::cap(g, v) {
            let used = others
                .iter()
                .filter(|&&o| g.nodes[o as usize].group == Some(group))
                .count();
            if used >= cap {
                return false;
            }
        }
        others.iter().all(|&o| {
            g.nodes[v as usize].footprint.iter().all(|a| {
                g.nodes[o as usize]
                    .footprint
                    .iter()
                    .all(|b| !footprints_overlap(a, b))
            })
        })
    }

    fn is_running(g: &Graph, v: NodeIdx) -> bool {
        g.nodes[v as usize].state == NodeState::Running
    }

    /// Greedy layering, naively.
    fn waves(&self, g: &Graph) -> Vec<Vec<NodeIdx>> {
        let tasks = self.planned_tasks();
        let mut wave_of: HashMap<NodeIdx, usize> = HashMap::new();
        let mut waves = Vec::new();
        while wave_of.len() < tasks.len() {
            let w = waves.len();
            let mut admitted: Vec<NodeIdx> = Vec::new();
            if w == 0 {
                admitted.extend(tasks.iter().copied().filter(|&v| Self::is_running(g, v)));
            }
            let mut candidates: Vec<NodeIdx> = tasks
                .iter()
                .copied()
                .filter(|&v| {
                    !Self::is_running(g, v)
                        && !wave_of.contains_key(&v)
                        && self.deps[v as usize]
                            .iter()
                            .all(|d| wave_of.get(d).is_some_and(|&dw| dw < w))
                })
                .collect();
            candidates.sort_by_key(|&v| self.key(g, v));
            for v in candidates {
                if Self::fits(g, v, &admitted) {
                    admitted.push(v);
                }
            }
            admitted.sort_by_key(|&v| self.key(g, v));
            for &v in &admitted {
                wave_of.insert(v, w);
            }
            waves.push(admitted);
            assert!(
                waves.len() <= tasks.len() + 1,
                "oracle layering does not progress"
            );
        }
        waves
    }

    /// List scheduling, naively.
    fn makespan(&self, g: &Graph, workers: u32) -> u64 {
        let k = workers.max(1) as usize;
        let tasks = self.planned_tasks();
        let mut finished: HashSet<NodeIdx> = HashSet::new();
        let mut running: Vec<(u64, NodeIdx)> = tasks
            .iter()
            .filter(|&&v| Self::is_running(g, v))
            .map(|&v| (u64::from(g.nodes[v as usize].effort), v))
            .collect();
        let mut started: HashSet<NodeIdx> = running.iter().map(|r| r.1).collect();
        let mut now = 0;
        loop {
            let mut available: Vec<NodeIdx> = tasks
                .iter()
                .copied()
                .filter(|v| !started.contains(v))
                .filter(|v| self.deps[*v as usize].iter().all(|d| finished.contains(d)))
                .collect();
            available.sort_by_key(|&v| self.key(g, v));
            for v in available {
                if running.len() >= k {
                    break;
                }
                let others: Vec<NodeIdx> = running.iter().map(|r| r.1).collect();
                if Self::fits(g, v, &others) {
                    started.insert(v);
                    running.push((now + u64::from(g.nodes[v as usize].effort), v));
                }
            }
            let Some(t) = running.iter().map(|r| r.0).min() else {
                break;
            };
            now = t;
            running.retain(|&(f, v)| {
                if f == t {
                    finished.insert(v);
                }
                f != t
            });
        }
        assert_eq!(finished.len(), tasks.len(), "oracle schedule is incomplete");
        now
    }
}

fn opts(g: &Graph, workers: Vec<u32>) -> PlanOptions {
    PlanOptions {
        group_caps: g.caps.clone(),
        workers,
    }
}

fn wave_index(a: &Analysis) -> HashMap<NodeIdx, usize> {
    let mut at = HashMap::new();
    for (w, wave) in a.waves.iter().enumerate() {
        for &v in wave {
            assert!(at.insert(v, w).is_none(), "task {v} is in two waves");
        }
    }
    at
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// Waves respect edges (through virtual nodes), caps and footprints, hold every plannable
    /// task once, and equal the naive greedy layering; ready/waiting/stuck are right.
    #[test]
    fn waves_are_valid(g in dag_graph(24, false)) {
        let dag = g.dag();
        let a = analyze(&dag, &opts(&g, vec![]));
        let o = Oracle::new(&g);
        let at = wave_index(&a);

        let planned: HashSet<NodeIdx> = o.planned_tasks().into_iter().collect();
        prop_assert_eq!(&at.keys().copied().collect::<HashSet<_>>(), &planned);
        for (v, deps) in o.deps.iter().enumerate() {
            for d in deps {
                prop_assert!(at[d] < at[&(v as NodeIdx)], "{} -> {} not ordered", d, v);
            }
        }
        for (w, wave) in a.waves.iter().enumerate() {
            for (i, &x) in wave.iter().enumerate() {
                if Oracle::is_running(&g, x) {
                    prop_assert_eq!(w, 0);
                    continue;
                }
                let others: Vec<NodeIdx> =
                    wave.iter().copied().enumerate().filter(|&(j, _)| j != i).map(|e| e.1).collect();
                // `x` fits beside the others, except for caps already exceeded by running tasks.
                for &y in &others {
                    for fa in &g.nodes[x as usize].footprint {
                        for fb in &g.nodes[y as usize].footprint {
                            prop_assert!(!footprints_overlap(fa, fb), "{} and {} overlap in wave {}", x, y, w);
                        }
                    }
                }
                if let Some((group, cap)) = Oracle::cap(&g, x) {
                    let in_group = wave.iter().filter(|&&y| g.nodes[y as usize].group == Some(group));
                    let running = in_group.clone().filter(|&&y| Oracle::is_running(&g, y)).count();
                    prop_assert!(in_group.count() <= cap.max(running));
                }
            }
            prop_assert!(wave.is_sorted_by_key(|&v| o.key(&g, v)));
        }
        prop_assert_eq!(&a.waves, &o.waves(&g));

        let mut ready: Vec<NodeIdx> = planned
            .iter()
            .copied()
            .filter(|&v| !Oracle::is_running(&g, v) && o.deps[v as usize].is_empty())
            .collect();
        ready.sort_by_key(|&v| o.key(&g, v));
        prop_assert_eq!(&a.ready, &ready);
        let mut waiting: Vec<NodeIdx> = planned
            .iter()
            .copied()
            .filter(|&v| !Oracle::is_running(&g, v) && !o.deps[v as usize].is_empty())
            .collect();
        waiting.sort_unstable();
        prop_assert_eq!(&a.waiting, &waiting);
        prop_assert_eq!(&a.stuck, &o.stuck);
        for &v in &a.ready {
            prop_assert!(dag.is_satisfied(v));
            prop_assert!(dag.blockers(v).is_empty());
        }
        for &v in &a.waiting {
            prop_assert!(!dag.is_satisfied(v));
            prop_assert!(!dag.blockers(v).is_empty());
        }

        let max = a.waves.iter().map(Vec::len).max().unwrap_or(0);
        prop_assert_eq!(a.max_parallelism, max);
        let shared = a.waves.iter().map(Vec::len).filter(|&l| l >= 2).sum::<usize>();
        let rate = if planned.is_empty() { 0.0 } else { shared as f64 / planned.len() as f64 };
        prop_assert!((a.parallel_rate - rate).abs() < 1e-12);
    }

    /// Without caps or footprints the waves are the ASAP layering.
    #[test]
    fn unconstrained_waves_are_asap(g in dag_graph(30, true)) {
        let a = analyze(&g.dag(), &opts(&g, vec![]));
        let o = Oracle::new(&g);
        let at = wave_index(&a);
        for v in o.planned_tasks() {
            let asap = o.deps[v as usize].iter().map(|d| at[d] + 1).max().unwrap_or(0);
            prop_assert_eq!(at[&v], asap);
        }
    }

    /// The critical path is a longest path, found by brute force on small graphs, and a real
    /// path whose efforts add up.
    #[test]
    fn critical_path_is_a_longest_path(g in dag_graph(9, false), simple in any::<bool>()) {
        let mut g = g;
        if simple {
            for n in &mut g.nodes {
                n.state = NodeState::Open;
            }
        }
        let a = analyze(&g.dag(), &opts(&g, vec![]));
        let o = Oracle::new(&g);
        // Brute force: every path of the dependency relation, by explicit DFS.
        let n = g.nodes.len();
        let mut best = 0u64;
        let mut stack: Vec<(NodeIdx, u64)> =
            o.planned_tasks().into_iter().map(|v| (v, u64::from(g.nodes[v as usize].effort))).collect();
        while let Some((v, sum)) = stack.pop() {
            best = best.max(sum);
            for w in 0..n {
                if o.deps[w].contains(&v) {
                    stack.push((w as NodeIdx, sum + u64::from(g.nodes[w].effort)));
                }
            }
        }
        prop_assert_eq!(a.critical_path_effort, best);
        let sum: u64 = a.critical_path.iter().map(|&v| u64::from(g.nodes[v as usize].effort)).sum();
        prop_assert_eq!(sum, best);
        for &v in &a.critical_path {
            prop_assert!(o.planned[v as usize]);
        }
        for pair in a.critical_path.windows(2) {
            prop_assert!(o.deps[pair[1] as usize].contains(&pair[0]), "{:?} is not a path", a.critical_path);
        }
        prop_assert_eq!(a.critical_path.is_empty(), o.planned_tasks().is_empty());
    }

    /// Closing a cycle in a DAG makes `build` fail with a real cycle.
    #[test]
    fn closed_cycles_are_found(g in dag_graph(30, true), from in any::<Index>(), to in any::<Index>()) {
        let pg = g.petgraph();
        let n = g.nodes.len();
        let x = from.index(n);
        let reachable: Vec<usize> = (0..n)
            .filter(|&y| has_path_connecting(&pg, (x as u32).into(), (y as u32).into(), None))
            .collect();
        let y = reachable[to.index(reachable.len())];
        let mut g = g;
        g.edges.push((y as NodeIdx, x as NodeIdx));
        let err = g.builder().build().expect_err("a cycle was closed");
        assert_cycle(&g.edges, &err.path)?;
    }

    /// On arbitrary directed graphs, `build` succeeds exactly when petgraph finds no cycle.
    #[test]
    fn build_fails_exactly_on_cycles(
        n in 1usize..20,
        pairs in proptest::collection::vec((0usize..20, 0usize..20), 0..40),
    ) {
        let g = Graph {
            nodes: vec![Node { kind: NodeKind::Task, state: NodeState::Open, effort: 1, priority: 0, group: None, footprint: vec![] }; n],
            edges: pairs.into_iter().map(|(a, b)| ((a % n) as NodeIdx, (b % n) as NodeIdx)).collect(),
            caps: vec![],
        };
        match g.builder().build() {
            Ok(dag) => {
                prop_assert!(!is_cyclic_directed(&g.petgraph()));
                let pos: HashMap<NodeIdx, usize> =
                    dag.topo_order().iter().enumerate().map(|(i, &v)| (v, i)).collect();
                prop_assert_eq!(pos.len(), n);
                for &(f, t) in &g.edges {
                    prop_assert!(pos[&f] < pos[&t]);
                }
            }
            Err(err) => {
                prop_assert!(is_cyclic_directed(&g.petgraph()));
                assert_cycle(&g.edges, &err.path)?;
            }
        }
    }

    /// Makespans equal a naive list-scheduling simulation and stay within the bounds that
    /// always hold.
    #[test]
    fn makespans_match_naive_simulation(g in dag_graph(16, false), simple in any::<bool>()) {
        let mut g = g;
        if simple {
            g.caps.clear();
            for n in &mut g.nodes {
                n.footprint.clear();
            }
        }
        let workers = vec![1, 2, 3, 5, 0, 64];
        let a = analyze(&g.dag(), &opts(&g, workers.clone()));
        let o = Oracle::new(&g);
        let running = o.planned_tasks().iter().filter(|&&v| Oracle::is_running(&g, v)).count();
        for (m, &k) in a.makespans.iter().zip(&workers) {
            prop_assert_eq!(m.workers, k);
            prop_assert_eq!(m.makespan, o.makespan(&g, k), "K = {}", k);
            prop_assert!(a.critical_path_effort <= m.makespan);
            prop_assert!(m.makespan <= a.total_effort);
        }
        if running <= 1 {
            prop_assert_eq!(a.makespans[0].makespan, a.total_effort);
        }
        if simple {
            prop_assert_eq!(a.makespans[5].makespan, a.critical_path_effort);
        }
        let total: u64 = o.planned_tasks().iter().map(|&v| u64::from(g.nodes[v as usize].effort)).sum();
        prop_assert_eq!(a.total_effort, total);
    }
}

fn assert_cycle(edges: &[(NodeIdx, NodeIdx)], path: &[NodeIdx]) -> Result<(), TestCaseError> {
    let set: HashSet<_> = edges.iter().copied().collect();
    prop_assert!(!path.is_empty());
    for i in 0..path.len() {
        let e = (path[i], path[(i + 1) % path.len()]);
        prop_assert!(set.contains(&e), "{:?} is not an edge; cycle {:?}", e, path);
    }
    prop_assert_eq!(path.iter().collect::<HashSet<_>>().len(), path.len());
    Ok(())
}
