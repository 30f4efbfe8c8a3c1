//! Filling the CSR arrays from the edge list.
//!
//! The direct way (one pass over the edges, each writing at a random place of both adjacency
//! arrays) is bound by cache misses on large graphs. For those, each side is filled in two
//! cache-friendly passes instead: the edges are first scattered into a scratch buffer grouped by
//! *block* of about `BLOCK` consecutive nodes (a few hundred write streams, all cache-resident),
//! then each block is placed, touching only its own small slice of the offsets and of the
//! adjacency array. Both ways keep every list in insertion order.

use super::NodeIdx;

/// Below this many edges, the direct fill is used.
const DIRECT_MAX_EDGES: usize = 1 << 18;
/// Nodes per block (log2).
const BLOCK_BITS: u32 = 11;

/// Fills `succ` and `pred`; `succ_off`/`pred_off` hold each list's end on entry and its start on
/// exit.
pub(super) fn fill(
    edges: &[(NodeIdx, NodeIdx)],
    succ_off: &mut [u32],
    succ: &mut [NodeIdx],
    pred_off: &mut [u32],
    pred: &mut [NodeIdx],
) {
    let n = succ_off.len() - 1;
    if edges.len() <= DIRECT_MAX_EDGES || n <= 1 << BLOCK_BITS {
        // Walked backwards so that each list keeps insertion order.
        for &(f, t) in edges.iter().rev() {
            let s = &mut succ_off[f as usize];
            *s -= 1;
            succ[*s as usize] = t;
            let p = &mut pred_off[t as usize];
            *p -= 1;
            pred[*p as usize] = f;
        }
        return;
    }
    let mut scratch: Vec<(NodeIdx, NodeIdx)> = vec![(0, 0); edges.len()];
    blocked_fill(edges, &mut scratch, |&(f, t)| (f, t), succ_off, succ);
    blocked_fill(edges, &mut scratch, |&(f, t)| (t, f), pred_off, pred);
}

/// Fills one side. `key` maps an edge to `(list owner, list entry)`.
fn blocked_fill(
    edges: &[(NodeIdx, NodeIdx)],
    scratch: &mut [(NodeIdx, NodeIdx)],
    key: impl Fn(&(NodeIdx, NodeIdx)) -> (NodeIdx, NodeIdx),
    off: &mut [u32],
    adj: &mut [NodeIdx],
) {
    let n = off.len() - 1;
    let blocks = n.div_ceil(1 << BLOCK_BITS);
    // Block `b` covers nodes `b << BLOCK_BITS ..`; its lists occupy `adj[start(b)..end(b)]`,
    // where `end(b)` is the running end of its last node (`off` holds ends on entry). The
    // scratch buffer uses the same layout, so the cursors start at each block's start.
    let block_end = |b: usize| off[((b + 1) << BLOCK_BITS).min(n) - 1] as usize;
    let mut cursor: Vec<usize> = (0..blocks)
        .map(|b| if b == 0 { 0 } else { block_end(b - 1) })
        .collect();
    for e in edges {
        let (owner, entry) = key(e);
        let c = &mut cursor[(owner >> BLOCK_BITS) as usize];
        scratch[*c] = (owner, entry);
        *c += 1;
    }
    // Now `cursor[b]` is block `b`'s end. Place each block's edges, backwards.
    let mut start = 0;
    for end in cursor {
        for &(owner, entry) in scratch[start..end].iter().rev() {
            let o = &mut off[owner as usize];
            *o -= 1;
            adj[*o as usize] = entry;
        }
        start = end;
    }
}
