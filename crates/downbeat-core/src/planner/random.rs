//! Seeded random graphs (splitmix64; no external RNG).

use super::{GraphBuilder, MAX_EDGES, NodeKind, NodeSpec, NodeState};

/// splitmix64 (Steele, Lea, Flood 2014): tiny, fast, good enough for test graphs.
pub(super) struct SplitMix64(u64);

impl SplitMix64 {
    pub(super) fn new(seed: u64) -> Self {
        Self(seed)
    }
    pub(super) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Maps 32 random bits onto `0..n` (Lemire's multiply-shift; negligible bias for test graphs).
fn below(bits: u32, n: u32) -> u32 {
    ((u64::from(bits) * u64::from(n)) >> 32) as u32
}

pub(super) fn random_graph(nodes: u32, edges: u64, seed: u64) -> GraphBuilder {
    let edges = if nodes >= 2 {
        usize::try_from(edges).unwrap_or(usize::MAX).min(MAX_EDGES)
    } else {
        0
    };
    let mut b = GraphBuilder::with_capacity(nodes as usize, edges);
    let mut rng = SplitMix64::new(seed);
    for _ in 0..nodes {
        b.add_node(NodeSpec {
            kind: NodeKind::Task,
            state: NodeState::Open,
            effort: 1 + (rng.next_u64() >> 61) as u32,
            priority: 0,
            group: None,
            footprint: &[],
        });
    }
    for _ in 0..edges {
        let (x, y) = loop {
            let r = rng.next_u64();
            let x = below(r as u32, nodes);
            let y = below((r >> 32) as u32, nodes);
            if x != y {
                break (x, y);
            }
        };
        b.add_edge(x.min(y), x.max(y));
    }
    b
}
