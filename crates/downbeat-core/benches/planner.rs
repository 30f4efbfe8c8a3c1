//! Planner benchmarks on random DAGs with 5 edges per node.
//!
//! `cargo bench -p downbeat-core --bench planner` runs the divan suite. To print one-shot figures
//! instead (handy under `/usr/bin/time -v` to read the peak RSS), set `PLANNER_FIGURES` to a node
//! count and run the bench binary, e.g.
//! `PLANNER_FIGURES=1000000 cargo bench -p downbeat-core --bench planner`.
//! `PLANNER_SHUFFLED=1` relabels the nodes at random first, so that the index order is not
//! topological and `build` has to run Kahn's algorithm; `PLANNER_CAPPED=1` puts the tasks in
//! four groups, three of them capped.

use std::hint::black_box;
use std::time::{Duration, Instant};

use downbeat_core::planner::{
    GraphBuilder, NodeSpec, PlanOptions, analyze, random_dag, random_graph,
};

const SEED: u64 = 0x5EED;
const SIZES: [u32; 2] = [10_000, 1_000_000];

fn opts() -> PlanOptions {
    PlanOptions {
        workers: vec![1, 4, 16],
        group_caps: vec![],
    }
}

fn main() {
    if let Ok(nodes) = std::env::var("PLANNER_FIGURES") {
        let nodes: u32 = nodes.parse().unwrap_or(1_000_000);
        let flag = |name| std::env::var(name).is_ok_and(|v| v == "1");
        figures(nodes, flag("PLANNER_SHUFFLED"), flag("PLANNER_CAPPED"));
        return;
    }
    divan::main();
}

/// `random_graph(nodes, 5 * nodes)` with each node in group `index % 4`, for [`capped_opts`].
fn grouped_graph(nodes: u32, seed: u64) -> GraphBuilder {
    let dag = random_dag(nodes, u64::from(nodes) * 5, seed);
    let mut b = GraphBuilder::with_capacity(dag.len(), dag.edge_count());
    for v in 0..nodes {
        b.add_node(NodeSpec {
            kind: dag.kind(v),
            state: dag.state(v),
            effort: dag.effort(v),
            priority: dag.priority(v),
            group: Some(v % 4),
            footprint: &[],
        });
    }
    for v in 0..nodes {
        for &s in dag.succs(v) {
            b.add_edge(v, s);
        }
    }
    b
}

/// Caps for [`grouped_graph`]: groups 0, 1 and 3 capped at 2, 8 and 3.
fn capped_opts() -> PlanOptions {
    PlanOptions {
        workers: vec![1, 4, 16],
        group_caps: vec![Some(2), Some(8), None, Some(3)],
    }
}

/// `random_graph(nodes, 5 * nodes)` with the node indices permuted at random (edges still listed
/// grouped by original source).
fn shuffled_graph(nodes: u32, seed: u64) -> GraphBuilder {
    let dag = random_dag(nodes, u64::from(nodes) * 5, seed);
    let n = dag.len();
    // Fisher–Yates with xorshift64*.
    let mut state = seed | 1;
    let mut next = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    let mut inv: Vec<u32> = (0..nodes).collect();
    for i in (1..n).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        inv.swap(i, j);
    }
    let mut perm = vec![0u32; n];
    for (new, &old) in inv.iter().enumerate() {
        perm[old as usize] = new as u32;
    }
    let mut b = GraphBuilder::with_capacity(n, dag.edge_count());
    for &old in &inv {
        b.add_node(NodeSpec {
            kind: dag.kind(old),
            state: dag.state(old),
            effort: dag.effort(old),
            priority: dag.priority(old),
            group: dag.group(old),
            footprint: &[],
        });
    }
    for old in 0..nodes {
        for &s in dag.succs(old) {
            b.add_edge(perm[old as usize], perm[s as usize]);
        }
    }
    b
}

/// One-shot timings, printed (best of 3 for build and analyze).
fn figures(nodes: u32, shuffled: bool, capped: bool) {
    let edges = u64::from(nodes) * 5;
    let opts = if capped { capped_opts() } else { opts() };
    let generate = |seed| {
        if shuffled {
            shuffled_graph(nodes, seed)
        } else if capped {
            grouped_graph(nodes, seed)
        } else {
            random_graph(nodes, edges, seed)
        }
    };
    let t = Instant::now();
    let builder = generate(SEED);
    let generate_time = t.elapsed();
    let mut build = Duration::MAX;
    let mut analysis = Duration::MAX;
    let mut builder = Some(builder);
    let mut summary = String::new();
    for _ in 0..3 {
        let b = builder.take().unwrap_or_else(|| generate(SEED));
        let t = Instant::now();
        let dag = b.build().expect("random graphs are acyclic");
        build = build.min(t.elapsed());
        let t = Instant::now();
        let a = analyze(&dag, &opts);
        analysis = analysis.min(t.elapsed());
        summary = format!(
            "waves {}, max parallelism {}, critical path {} tasks / effort {}, total effort {}, makespans {:?}",
            a.waves.len(),
            a.max_parallelism,
            a.critical_path.len(),
            a.critical_path_effort,
            a.total_effort,
            a.makespans
                .iter()
                .map(|m| (m.workers, m.makespan))
                .collect::<Vec<_>>()
        );
    }
    println!("{summary}");
    println!(
        "nodes {nodes}, edges {edges}{}{}",
        if shuffled { " (shuffled)" } else { "" },
        if capped { " (capped groups)" } else { "" }
    );
    println!("generate      {generate_time:?}");
    println!("build         {build:?}");
    println!("analyze       {analysis:?}");
    println!("build+analyze {:?}", build + analysis);
}

#[divan::bench(args = SIZES, sample_count = 5, sample_size = 1)]
fn generate(bencher: divan::Bencher, nodes: u32) {
    bencher.bench(|| random_graph(nodes, u64::from(nodes) * 5, SEED));
}

#[divan::bench(args = SIZES, sample_count = 5, sample_size = 1)]
fn build(bencher: divan::Bencher, nodes: u32) {
    bencher
        .with_inputs(|| random_graph(nodes, u64::from(nodes) * 5, SEED))
        .bench_values(|b| b.build().expect("random graphs are acyclic"));
}

#[divan::bench(args = SIZES, sample_count = 5, sample_size = 1)]
fn build_shuffled(bencher: divan::Bencher, nodes: u32) {
    bencher
        .with_inputs(|| shuffled_graph(nodes, SEED))
        .bench_values(|b| b.build().expect("random graphs are acyclic"));
}

#[divan::bench(args = SIZES, sample_count = 5, sample_size = 1)]
fn analyze_only(bencher: divan::Bencher, nodes: u32) {
    let dag = random_dag(nodes, u64::from(nodes) * 5, SEED);
    let opts = opts();
    bencher.bench(|| analyze(black_box(&dag), &opts));
}

#[divan::bench(args = SIZES, sample_count = 5, sample_size = 1)]
fn analyze_shuffled(bencher: divan::Bencher, nodes: u32) {
    let dag = shuffled_graph(nodes, SEED)
        .build()
        .expect("random graphs are acyclic");
    let opts = opts();
    bencher.bench(|| analyze(black_box(&dag), &opts));
}

#[divan::bench(args = SIZES, sample_count = 5, sample_size = 1)]
fn build_and_analyze(bencher: divan::Bencher, nodes: u32) {
    let opts = opts();
    bencher
        .with_inputs(|| random_graph(nodes, u64::from(nodes) * 5, SEED))
        .bench_values(|b| analyze(&b.build().expect("random graphs are acyclic"), &opts));
}

#[divan::bench(args = SIZES, sample_count = 3, sample_size = 1)]
fn analyze_capped(bencher: divan::Bencher, nodes: u32) {
    let dag = grouped_graph(nodes, SEED)
        .build()
        .expect("random graphs are acyclic");
    let opts = capped_opts();
    bencher.bench(|| analyze(black_box(&dag), &opts));
}
