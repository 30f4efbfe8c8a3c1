//! Unit tests of the planner.

use std::collections::HashSet;

use super::plan::{Strategy, analyze_with};
use super::random::SplitMix64;
use super::*;

const OPEN: NodeState = NodeState::Open;
const DONE: NodeState = NodeState::Done;
const RUNNING: NodeState = NodeState::Running;
const HELD: NodeState = NodeState::Held;

fn task(effort: u32) -> NodeSpec<'static> {
    NodeSpec {
        kind: NodeKind::Task,
        state: OPEN,
        effort,
        priority: 0,
        group: None,
        footprint: &[],
    }
}

fn in_state(state: NodeState, effort: u32) -> NodeSpec<'static> {
    NodeSpec {
        state,
        ..task(effort)
    }
}

fn start() -> NodeSpec<'static> {
    NodeSpec {
        kind: NodeKind::Start,
        ..task(0)
    }
}

fn end() -> NodeSpec<'static> {
    NodeSpec {
        kind: NodeKind::End,
        ..task(0)
    }
}

fn grouped(group: u32, effort: u32) -> NodeSpec<'static> {
    NodeSpec {
        group: Some(group),
        ..task(effort)
    }
}

fn graph(nodes: &[NodeSpec<'_>], edges: &[(NodeIdx, NodeIdx)]) -> Result<Dag, CycleError> {
    let mut b = GraphBuilder::new();
    for &n in nodes {
        b.add_node(n);
    }
    for &(f, t) in edges {
        b.add_edge(f, t);
    }
    b.build()
}

fn dag(nodes: &[NodeSpec<'_>], edges: &[(NodeIdx, NodeIdx)]) -> Dag {
    graph(nodes, edges).expect("test graph is acyclic")
}

fn plan(dag: &Dag, workers: &[u32], caps: &[Option<u32>]) -> Analysis {
    analyze(
        dag,
        &PlanOptions {
            group_caps: caps.to_vec(),
            workers: workers.to_vec(),
        },
    )
}

fn makespans(a: &Analysis) -> Vec<u64> {
    a.makespans.iter().map(|m| m.makespan).collect()
}

fn assert_is_cycle(edges: &[(NodeIdx, NodeIdx)], path: &[NodeIdx]) {
    let set: HashSet<(NodeIdx, NodeIdx)> = edges.iter().copied().collect();
    assert!(!path.is_empty(), "empty cycle");
    for i in 0..path.len() {
        let (a, b) = (path[i], path[(i + 1) % path.len()]);
        assert!(
            set.contains(&(a, b)),
            "{a} -> {b} is not an edge of {path:?}"
        );
    }
    let distinct: HashSet<_> = path.iter().collect();
    assert_eq!(distinct.len(), path.len(), "cycle repeats a node: {path:?}");
}

// ---------------------------------------------------------------- build and cycles

#[test]
fn self_loop_is_a_cycle_of_one() {
    let err = graph(&[task(1), task(1)], &[(0, 1), (1, 1)]).unwrap_err();
    assert_eq!(err.path, vec![1]);
    assert_eq!(err.to_string(), "dependency cycle through 1 nodes");
}

#[test]
fn two_cycle() {
    let edges = [(0, 1), (1, 2), (2, 1)];
    let err = graph(&[task(1), task(1), task(1)], &edges).unwrap_err();
    assert_eq!(err.path, vec![1, 2]);
    assert_is_cycle(&edges, &err.path);
}

#[test]
fn long_cycle_in_a_big_graph() {
    // 20k nodes: a chain 0 → 1 → … plus random forward edges, then one back edge closing a
    // cycle of length 15_001 (through the chain), plus a separate acyclic tail.
    let n = 20_000u32;
    let mut rng = SplitMix64::new(7);
    let mut edges: Vec<(NodeIdx, NodeIdx)> = (0..n - 1).map(|i| (i, i + 1)).collect();
    for _ in 0..60_000 {
        let a = (rng.next_u64() % u64::from(n)) as u32;
        let b = (rng.next_u64() % u64::from(n)) as u32;
        if a != b {
            edges.push((a.min(b), a.max(b)));
        }
    }
    assert!(graph(&vec![task(1); n as usize], &edges).is_ok());
    edges.push((17_000, 2_000));
    let err = graph(&vec![task(1); n as usize], &edges).unwrap_err();
    assert_is_cycle(&edges, &err.path);
    assert!(err.path.contains(&17_000) && err.path.contains(&2_000));
    assert!(err.path.iter().all(|&v| (2_000..=17_000).contains(&v)));
}

#[test]
fn cycle_found_when_index_order_is_not_topological() {
    // 3 → 0 → 2 → 1 → 3, reached from 4.
    let edges = [(4, 3), (3, 0), (0, 2), (2, 1), (1, 3)];
    let err = graph(&[task(1); 5], &edges).unwrap_err();
    assert_eq!(err.path.len(), 4);
    assert_eq!(err.path[0], 0, "rotated to the smallest index");
    assert_is_cycle(&edges, &err.path);
}

#[test]
fn kahn_order_when_index_order_is_not_topological() {
    let edges = [(2, 1), (1, 0), (2, 0), (2, 1)];
    let d = dag(&[task(1); 3], &edges);
    assert_eq!(d.topo_order(), &[2, 1, 0]);
    assert_eq!(d.preds(0), &[1, 2]);
    assert_eq!(d.succs(2), &[1, 0, 1]);
    assert_eq!(d.edge_count(), 4);
}

#[test]
fn empty_graph() {
    let d = dag(&[], &[]);
    assert!(d.is_empty());
    let a = plan(&d, &[1, 4], &[]);
    assert!(a.waves.is_empty() && a.critical_path.is_empty() && a.ready.is_empty());
    assert_eq!(a.parallel_rate, 0.0);
    assert_eq!(makespans(&a), vec![0, 0]);
}

#[test]
#[should_panic(expected = "node index out of range")]
fn edge_to_unknown_node_panics() {
    let mut b = GraphBuilder::new();
    b.add_node(task(1));
    b.add_edge(0, 1);
}

/// Big enough for the blocked CSR fill: its lists must equal the direct fill's (insertion
/// order), whatever the edge order.
#[test]
fn blocked_csr_fill_keeps_insertion_order() {
    let n = 5_000u32;
    let mut rng = SplitMix64::new(99);
    let edges: Vec<(NodeIdx, NodeIdx)> = (0..300_000)
        .map(|_| {
            let a = (rng.next_u64() % u64::from(n)) as u32;
            let b = (rng.next_u64() % u64::from(n)) as u32;
            (a.min(b), a.max(b) + u32::from(a == b))
        })
        .filter(|&(_, b)| b < n)
        .collect();
    let d = dag(&vec![task(1); n as usize], &edges);
    let mut succ = vec![Vec::new(); n as usize];
    let mut pred = vec![Vec::new(); n as usize];
    for &(f, t) in &edges {
        succ[f as usize].push(t);
        pred[t as usize].push(f);
    }
    for v in 0..n {
        assert_eq!(d.succs(v), succ[v as usize].as_slice());
        assert_eq!(d.preds(v), pred[v as usize].as_slice());
    }
}

// ---------------------------------------------------------------- satisfaction and blockers

#[test]
fn blockers_look_through_start_nodes() {
    // x → S(outer) → S(inner) → t ; E(other) → t ; d (done) → t ; y (open) → S(outer)
    let nodes = [
        task(1),           // 0 x
        start(),           // 1 outer start
        start(),           // 2 inner start
        task(1),           // 3 t
        end(),             // 4 other container's end
        task(1),           // 5 child of the other container
        in_state(DONE, 1), // 6 d
        task(1),           // 7 y
    ];
    let edges = [(0, 1), (1, 2), (2, 3), (5, 4), (4, 3), (6, 3), (7, 1)];
    let d = dag(&nodes, &edges);
    assert_eq!(d.blockers(3), vec![0, 4, 7]);
    assert!(!d.is_satisfied(3));
    assert!(!d.is_satisfied(2));
    assert!(d.is_satisfied(5));
    assert_eq!(d.blockers(5), Vec::<NodeIdx>::new());

    // Once x and y are done, the starts are satisfied and only the End remains.
    let mut nodes = nodes;
    nodes[0].state = DONE;
    nodes[7].state = DONE;
    let d = dag(&nodes, &edges);
    assert!(d.satisfies_dependents(1) && d.satisfies_dependents(2));
    assert_eq!(d.blockers(3), vec![4]);
    nodes[5].state = DONE;
    let d = dag(&nodes, &edges);
    assert!(d.is_satisfied(3));
    assert!(d.blockers(3).is_empty());
}

#[test]
fn held_start_is_reported_as_itself() {
    let nodes = [
        task(1),
        NodeSpec {
            state: HELD,
            ..start()
        },
        task(1),
    ];
    let d = dag(&nodes, &[(0, 1), (1, 2)]);
    assert_eq!(d.blockers(2), vec![1]);
    assert!(d.is_blocked(1) && d.is_blocked(2));
}

// ---------------------------------------------------------------- containers, states

#[test]
fn container_start_and_end() {
    // a → [S → c1, c2 → E] → b
    let nodes = [task(1), start(), task(2), task(5), end(), task(1)];
    let edges = [(0, 1), (1, 2), (1, 3), (2, 4), (3, 4), (4, 5)];
    let d = dag(&nodes, &edges);
    let a = plan(&d, &[1, 2, 8], &[]);
    assert_eq!(a.ready, vec![0]);
    assert_eq!(a.waiting, vec![2, 3, 5]);
    assert!(a.stuck.is_empty());
    assert_eq!(a.waves, vec![vec![0], vec![3, 2], vec![5]]);
    assert_eq!(a.critical_path, vec![0, 3, 5]);
    assert_eq!(a.critical_path_effort, 7);
    assert_eq!(a.total_effort, 9);
    assert_eq!(a.max_parallelism, 2);
    assert!((a.parallel_rate - 0.5).abs() < 1e-12);
    assert_eq!(makespans(&a), vec![9, 7, 7]);
}

#[test]
fn done_children_satisfy_the_container() {
    let nodes = [
        in_state(DONE, 1),
        start(),
        in_state(DONE, 2),
        end(),
        task(1),
    ];
    let d = dag(&nodes, &[(0, 1), (1, 2), (2, 3), (3, 4)]);
    assert!(d.satisfies_dependents(3));
    let a = plan(&d, &[], &[]);
    assert_eq!(a.ready, vec![4]);
    assert_eq!(a.waves, vec![vec![4]]);
}

#[test]
fn held_makes_dependents_stuck() {
    // h (held) → a → b ; h → S → c ; c → E → e ; f independent ; d (done) after a → g
    let nodes = [
        in_state(HELD, 1),    // 0 h
        task(1),              // 1 a
        task(1),              // 2 b
        start(),              // 3 S
        task(1),              // 4 c
        end(),                // 5 E
        task(1),              // 6 e
        task(1),              // 7 f
        in_state(DONE, 1),    // 8 d
        task(1),              // 9 g
        in_state(RUNNING, 2), // 10 r, depends on h but in flight
        task(1),              // 11 after r
    ];
    let edges = [
        (0, 1),
        (1, 2),
        (0, 3),
        (3, 4),
        (4, 5),
        (5, 6),
        (1, 8),
        (8, 9),
        (0, 10),
        (10, 11),
    ];
    let d = dag(&nodes, &edges);
    let a = plan(&d, &[1, 3], &[]);
    assert_eq!(a.stuck, vec![1, 2, 4, 6]);
    assert_eq!(a.ready, vec![7, 9]);
    assert_eq!(a.waiting, vec![11]);
    assert_eq!(a.waves, vec![vec![10, 7, 9], vec![11]]);
    assert_eq!(a.total_effort, 5);
    assert_eq!(a.critical_path, vec![10, 11]);
    assert_eq!(a.critical_path_effort, 3);
    // Three workers: everything ready starts at once.
    assert_eq!(makespans(&a), vec![5, 3]);
    assert!(d.is_blocked(5) && !d.is_blocked(10) && !d.is_blocked(8));
}

#[test]
fn running_tasks_are_in_wave_zero() {
    // r1 (running, 3) → b ; r2 (running) after open x (edge ignored) ; a open ready
    let nodes = [
        in_state(RUNNING, 3), // 0 r1
        task(1),              // 1 b
        task(2),              // 2 x
        in_state(RUNNING, 1), // 3 r2
        task(1),              // 4 a
    ];
    let d = dag(&nodes, &[(0, 1), (2, 3)]);
    let a = plan(&d, &[1, 2, 5], &[]);
    assert_eq!(a.ready, vec![2, 4]);
    assert_eq!(a.waiting, vec![1]);
    assert_eq!(a.waves, vec![vec![0, 2, 3, 4], vec![1]]);
    assert_eq!(a.critical_path, vec![0, 1]);
    assert_eq!(a.critical_path_effort, 4);
    // K=1 with two running tasks: both run from t=0 (3 and 1); the next task starts once both
    // are done: x 3..5, then b 5..6 (before a: same path length, lower index), a 6..7.
    // K=2: r1, r2 at 0; x at 1 (r2 done) → 3; b and a at 3 → 4.
    // K=5: r1, r2, x, a at 0; b at 3 → 4.
    assert_eq!(makespans(&a), vec![7, 4, 4]);
    assert_eq!(a.total_effort, 8);
}

// ---------------------------------------------------------------- caps and footprints

#[test]
fn group_caps_limit_waves_and_concurrency() {
    // Five independent tasks of group 0 (cap 2), two of group 1 (uncapped), one of group 7
    // (no entry: uncapped).
    let mut nodes = vec![grouped(0, 1); 5];
    nodes.extend([grouped(1, 1), grouped(1, 1), grouped(7, 1)]);
    let d = dag(&nodes, &[]);
    let a = plan(&d, &[1, 4, 16], &[Some(2), None]);
    let sizes: Vec<usize> = a.waves.iter().map(Vec::len).collect();
    assert_eq!(sizes, vec![5, 2, 1]);
    for w in &a.waves {
        assert!(w.iter().filter(|&&v| v < 5).count() <= 2);
    }
    assert_eq!(a.waves[0], vec![0, 1, 5, 6, 7]);
    // K=4: 0,1,5,6 at 0; 2,3,7 at 1; 4 at 2 → 3. K=16: cap 2 → 3 rounds.
    assert_eq!(makespans(&a), vec![8, 3, 3]);
    // A cap of 0 behaves as 1.
    let a = plan(&d, &[16], &[Some(0)]);
    assert_eq!(a.waves.len(), 5);
    assert_eq!(makespans(&a), vec![5]);
}

#[test]
fn footprint_overlap_rules() {
    let cases = [
        ("src/auth/**", "src/auth/login.rs", true),
        ("src/auth/", "src/auth/login.rs", true),
        ("src/auth", "src/auth", true),
        ("src/a", "src/ab", false),
        ("src/a", "src/a/b.rs", true),
        ("src/a/b.rs", "src/a", true),
        ("./src/a", "src/a/", true),
        ("src//a", "src/a/x", true),
        ("docs/*.md", "docs/guide/intro.md", true),
        ("docs/*.md", "src/main.rs", false),
        ("**", "anything/at/all", true),
        ("*", "x", true),
        ("", "x/y", true),
        ("src/{a,b}/x", "src/c", true),
        ("src/[ab]", "srcx", false),
        ("src/a?/x", "src/b", true),
        ("src/a/x.rs", "src/a/y.rs", false),
        ("a/b/c", "a/b/c/d/e", true),
        ("a/b/c", "a/b/d", false),
    ];
    for (a, b, want) in cases {
        assert_eq!(footprints_overlap(a, b), want, "{a:?} vs {b:?}");
        assert_eq!(footprints_overlap(b, a), want, "{b:?} vs {a:?}");
    }
}

#[test]
fn footprints_split_waves() {
    let fp_auth: &[&str] = &["src/auth/**"];
    let fp_login: &[&str] = &["./src/auth/login.rs"];
    let fp_ab: &[&str] = &["src/ab/", "docs/x.md"];
    let fp_all: &[&str] = &["**"];
    let with = |footprint, effort| NodeSpec {
        footprint,
        ..task(effort)
    };
    let nodes = [
        with(fp_auth, 3),  // 0
        with(fp_login, 2), // 1 overlaps 0
        with(fp_ab, 1),    // 2 overlaps neither
        with(fp_all, 1),   // 3 overlaps everything
        task(1),           // 4 no footprint
    ];
    let d = dag(&nodes, &[]);
    let a = plan(&d, &[1, 2, 8], &[]);
    assert_eq!(a.waves, vec![vec![0, 2, 4], vec![1], vec![3]]);
    // K=8: 0 (3), 2 (1), 4 (1) at 0; 1 may not start before 0 ends at 3; 3 needs nothing else
    // running: t=3 start 1 (2) → 5; then 3 → 6.
    assert_eq!(makespans(&a), vec![8, 6, 6]);
}

#[test]
fn running_tasks_claim_footprints_in_wave_zero() {
    let fp: &[&str] = &["src"];
    let nodes = [
        NodeSpec {
            footprint: fp,
            ..in_state(RUNNING, 2)
        },
        NodeSpec {
            footprint: fp,
            ..task(1)
        },
    ];
    let d = dag(&nodes, &[]);
    let a = plan(&d, &[4], &[]);
    assert_eq!(a.waves, vec![vec![0], vec![1]]);
    assert_eq!(makespans(&a), vec![3]);
}

// ---------------------------------------------------------------- makespan

#[test]
fn makespan_chain() {
    let d = dag(&[task(2), task(3), task(4)], &[(0, 1), (1, 2)]);
    let a = plan(&d, &[1, 4], &[]);
    assert_eq!(makespans(&a), vec![9, 9]);
    assert_eq!(a.critical_path, vec![0, 1, 2]);
    assert_eq!(a.waves, vec![vec![0], vec![1], vec![2]]);
    assert_eq!(a.parallel_rate, 0.0);
}

#[test]
fn makespan_diamond() {
    let d = dag(
        &[task(1), task(2), task(3), task(1)],
        &[(0, 1), (0, 2), (1, 3), (2, 3)],
    );
    let a = plan(&d, &[1, 2, 3], &[]);
    assert_eq!(makespans(&a), vec![7, 5, 5]);
    assert_eq!(a.critical_path, vec![0, 2, 3]);
    assert_eq!(a.critical_path_effort, 5);
}

#[test]
fn makespan_list_scheduling_by_priority() {
    // Independent tasks of effort 4, 3, 2, 1 on two workers: 4 and 3 first; 2 starts at 3, 1 at
    // 4; both end at 5.
    let d = dag(&[task(1), task(2), task(3), task(4)], &[]);
    let a = plan(&d, &[1, 2], &[]);
    assert_eq!(a.ready, vec![3, 2, 1, 0]);
    assert_eq!(makespans(&a), vec![10, 5]);
}

#[test]
fn zero_effort_tasks_take_no_time() {
    let d = dag(
        &[task(0), task(0), task(3), task(0)],
        &[(0, 1), (1, 2), (2, 3)],
    );
    let a = plan(&d, &[1, 3], &[]);
    assert_eq!(makespans(&a), vec![3, 3]);
    assert_eq!(a.critical_path_effort, 3);
    assert_eq!(a.total_effort, 3);
}

#[test]
fn zero_workers_count_as_one() {
    let d = dag(&[task(2), task(3)], &[]);
    let a = plan(&d, &[0], &[]);
    assert_eq!(
        a.makespans,
        vec![Makespan {
            workers: 0,
            makespan: 5
        }]
    );
}

#[test]
fn priority_breaks_ties() {
    let mut nodes = vec![task(1); 4];
    nodes[2].priority = 5;
    nodes[3].priority = -1;
    nodes[0].effort = 2;
    let d = dag(&nodes, &[]);
    let a = plan(&d, &[], &[]);
    // Longest path first (0), then priority (2), then index (1), then 3.
    assert_eq!(a.ready, vec![0, 2, 1, 3]);
    assert_eq!(a.waves, vec![vec![0, 2, 1, 3]]);
}

#[test]
fn priority_order_fallback_matches_packed_keys() {
    // Keys too wide for one u64: a huge effort and the full priority range.
    let nodes = [
        NodeSpec {
            priority: i32::MIN,
            ..task(u32::MAX)
        },
        NodeSpec {
            priority: i32::MAX,
            ..task(u32::MAX)
        },
        NodeSpec {
            priority: 0,
            ..task(7)
        },
        NodeSpec {
            priority: i32::MAX,
            ..task(7)
        },
    ];
    let edges = [(0, 2), (1, 3)];
    let d = dag(&nodes, &edges);
    let a = plan(&d, &[1], &[]);
    assert_eq!(a.ready, vec![1, 0]);
    assert_eq!(a.waves, vec![vec![1, 0], vec![3, 2]]);
    assert_eq!(a.total_effort, 2 * u64::from(u32::MAX) + 14);
}

#[test]
fn radix_sorted_order_matches_comparison_sort() {
    let d = random_dag(5_000, 20_000, 3);
    let a = plan(&d, &[], &[]);
    let mut bl = vec![0u64; d.len()];
    for &v in d.topo_order().iter().rev() {
        let m = d
            .succs(v)
            .iter()
            .map(|&s| bl[s as usize])
            .max()
            .unwrap_or(0);
        bl[v as usize] = m + u64::from(d.effort(v));
    }
    let key = |v: &NodeIdx| (std::cmp::Reverse(bl[*v as usize]), *v);
    assert!(a.ready.is_sorted_by_key(key));
    for w in &a.waves {
        assert!(w.is_sorted_by_key(key));
    }
    assert_eq!(a.waves.iter().map(Vec::len).sum::<usize>(), 5_000);
}

// ---------------------------------------------------------------- shortcuts vs general paths

/// A random graph with containers, mixed states and no constraints, plus the same with caps.
fn mixed_graph(seed: u64, n: u32) -> Dag {
    let mut rng = SplitMix64::new(seed);
    let mut b = GraphBuilder::new();
    for _ in 0..n {
        let r = rng.next_u64();
        let kind = match r % 10 {
            0 => NodeKind::Start,
            1 => NodeKind::End,
            _ => NodeKind::Task,
        };
        let state = match (r >> 8) % 20 {
            0 => HELD,
            1 | 2 => DONE,
            3 => RUNNING,
            _ => OPEN,
        };
        b.add_node(NodeSpec {
            kind,
            state,
            effort: ((r >> 16) % 6) as u32,
            priority: ((r >> 24) % 3) as i32 - 1,
            group: Some(((r >> 32) % 3) as u32),
            footprint: &[],
        });
    }
    for _ in 0..n * 2 {
        let a = (rng.next_u64() % u64::from(n)) as u32;
        let c = (rng.next_u64() % u64::from(n)) as u32;
        if a != c {
            b.add_edge(a.min(c), a.max(c));
        }
    }
    b.build().expect("forward edges only")
}

#[test]
fn general_waves_and_simulation_agree_with_shortcuts() {
    for seed in 0..40 {
        let d = mixed_graph(seed, 200);
        let tasks = d.kind.iter().filter(|&&k| k == NodeKind::Task).count() as u32;
        let opts = PlanOptions {
            group_caps: vec![],
            workers: vec![1, tasks.max(1), tasks + 5],
        };
        let fast = analyze(&d, &opts);
        let slow = analyze_with(
            &d,
            &opts,
            Strategy {
                always_layered: true,
                always_simulate: true,
            },
        );
        assert_eq!(fast.waves, slow.waves, "seed {seed}");
        let running = d.class.iter().filter(|&&c| c == C_RUN).count();
        if running <= 1 {
            assert_eq!(slow.makespans[0].makespan, fast.total_effort, "seed {seed}");
        }
        assert_eq!(fast.makespans[1..], slow.makespans[1..], "seed {seed}");
        assert_eq!(fast.makespans[2].makespan, fast.critical_path_effort);
    }
}

#[test]
fn uncapped_groups_do_not_constrain() {
    let d = mixed_graph(5, 300);
    let free = plan(&d, &[3], &[]);
    let uncapped = plan(&d, &[3], &[None, None, None]);
    assert_eq!(free.waves, uncapped.waves);
    assert_eq!(free.makespans, uncapped.makespans);
    let capped = plan(&d, &[3], &[Some(1), None, Some(2)]);
    for w in &capped.waves {
        let count = |g, only_running: bool| {
            w.iter()
                .filter(|&&v| d.group(v) == Some(g) && (!only_running || d.state(v) == RUNNING))
                .count()
        };
        assert!(count(0, false) <= count(0, true).max(1));
        assert!(count(2, false) <= count(2, true).max(2));
    }
}

#[test]
fn duplicate_edges_are_harmless() {
    let nodes = [task(1), start(), task(2), end(), task(3)];
    let edges = [(0, 1), (1, 2), (2, 3), (3, 4)];
    let mut doubled = edges.to_vec();
    doubled.extend(edges);
    doubled.push((0, 1));
    let a = plan(&dag(&nodes, &edges), &[1, 2], &[Some(1)]);
    let b = plan(&dag(&nodes, &doubled), &[1, 2], &[Some(1)]);
    assert_eq!(a.waves, b.waves);
    assert_eq!(a.critical_path, b.critical_path);
    assert_eq!(a.makespans, b.makespans);
    let fast = plan(&dag(&nodes, &doubled), &[2], &[]);
    assert_eq!(fast.makespans[0].makespan, 6);
    let slow = analyze_with(
        &dag(&nodes, &doubled),
        &PlanOptions {
            group_caps: vec![],
            workers: vec![2],
        },
        Strategy {
            always_layered: true,
            always_simulate: true,
        },
    );
    assert_eq!(slow.waves, fast.waves);
    assert_eq!(slow.makespans, fast.makespans);
}

// ---------------------------------------------------------------- random graphs

#[test]
fn random_dag_is_deterministic_and_forward() {
    let a = random_dag(1_000, 5_000, 42);
    let b = random_dag(1_000, 5_000, 42);
    let c = random_dag(1_000, 5_000, 43);
    assert_eq!(a.len(), 1_000);
    assert_eq!(a.edge_count(), 5_000);
    let edges = |d: &Dag| -> Vec<(NodeIdx, NodeIdx)> {
        (0..d.len() as NodeIdx)
            .flat_map(|v| d.succs(v).iter().map(move |&s| (v, s)))
            .collect()
    };
    assert_eq!(edges(&a), edges(&b));
    assert_ne!(edges(&a), edges(&c));
    assert!(edges(&a).iter().all(|&(f, t)| f < t));
    assert!((0..1_000).all(|v| (1..=8).contains(&a.effort(v))));
    assert!((0..1_000).all(|v| a.state(v) == OPEN && a.kind(v) == NodeKind::Task));
    assert_eq!(random_dag(1, 10, 0).edge_count(), 0);
    assert_eq!(random_dag(0, 10, 0).len(), 0);
}

#[test]
fn self_overlapping_footprint_entries_are_fine() {
    let own: &[&str] = &["src/a", "src/a/", "./src/a/b.rs", "src/a"];
    let other: &[&str] = &["docs"];
    let nodes = [
        NodeSpec {
            footprint: own,
            ..task(2)
        },
        NodeSpec {
            footprint: other,
            ..task(1)
        },
        NodeSpec {
            footprint: own,
            ..task(1)
        },
    ];
    let d = dag(&nodes, &[]);
    let a = plan(&d, &[3], &[]);
    assert_eq!(a.waves, vec![vec![0, 1], vec![2]]);
    assert_eq!(makespans(&a), vec![3]);
}
