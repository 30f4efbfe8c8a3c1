//! Footprints: normalisation, interning of normalised prefixes, and claim counters.
//!
//! Every normalised prefix (`src/auth`) and each of its ancestors (`src`, and the empty root) gets
//! a dense id, with its *chain*: itself, then its ancestors up to the root. Two prefixes overlap
//! iff one is in the other's chain, so checking an entry against a set of claimed prefixes costs
//! `O(depth)` array lookups: is any id of its chain claimed, or is it an ancestor of a claimed one.
//! Dense ids make the "sets" plain counter arrays: no hashing after build time.

use std::collections::HashMap;

const GLOB_META: [char; 4] = ['*', '?', '[', '{'];

/// The normalised components of a footprint entry: empty and `.` components dropped, cut before
/// the first component holding a glob metacharacter.
pub(super) fn components(entry: &str) -> impl Iterator<Item = &str> {
    entry
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .take_while(|c| !c.contains(GLOB_META))
}

/// See [`super::footprints_overlap`].
pub(super) fn overlap(a: &str, b: &str) -> bool {
    let mut a = components(a);
    let mut b = components(b);
    loop {
        match (a.next(), b.next()) {
            (Some(x), Some(y)) if x == y => {}
            (Some(_), Some(_)) => return false,
            _ => return true,
        }
    }
}

/// Interned prefixes and per-node prefix lists, frozen.
#[derive(Debug, Default)]
pub(super) struct FootprintIndex {
    /// `chain[chain_off[id]..chain_off[id + 1]]`: `id`, then its ancestors, root last.
    chain_off: Vec<usize>,
    chain: Vec<u32>,
    /// Per node: `node_ids[node_off[v]..node_off[v + 1]]`. Empty until some node has a footprint
    /// (nodes past its end have none).
    node_off: Vec<usize>,
    node_ids: Vec<u32>,
}

impl FootprintIndex {
    /// Number of interned prefixes (ids are `0..prefix_count()`).
    pub(super) fn prefix_count(&self) -> usize {
        self.chain_off.len().saturating_sub(1)
    }
    /// The prefix ids of node `v`'s footprint (deduplicated).
    pub(super) fn of(&self, v: usize) -> &[u32] {
        if v + 1 < self.node_off.len() {
            &self.node_ids[self.node_off[v]..self.node_off[v + 1]]
        } else {
            &[]
        }
    }
    /// `id`, then its ancestors up to the root.
    pub(super) fn chain(&self, id: u32) -> &[u32] {
        let id = id as usize;
        &self.chain[self.chain_off[id]..self.chain_off[id + 1]]
    }
}

/// Builds a [`FootprintIndex`] node by node.
#[derive(Debug, Default)]
pub(super) struct FootprintInterner {
    ids: HashMap<Box<str>, u32>,
    index: FootprintIndex,
    scratch: String,
}

impl FootprintInterner {
    /// Records node `node`'s entries; nodes must be pushed in order (skipping is allowed only
    /// while no node has had entries).
    pub(super) fn push_node(&mut self, node: usize, entries: &[&str]) {
        if self.index.node_off.is_empty() {
            if entries.is_empty() {
                return;
            }
            self.index.node_off = vec![0; node + 1];
        }
        let start = self.index.node_ids.len();
        for entry in entries {
            let id = self.intern(entry);
            self.index.node_ids.push(id);
        }
        self.index.node_ids[start..].sort_unstable();
        let mut kept = start;
        for i in start..self.index.node_ids.len() {
            if kept == start || self.index.node_ids[i] != self.index.node_ids[kept - 1] {
                self.index.node_ids[kept] = self.index.node_ids[i];
                kept += 1;
            }
        }
        self.index.node_ids.truncate(kept);
        self.index.node_off.push(self.index.node_ids.len());
    }

    pub(super) fn finish(self) -> FootprintIndex {
        self.index
    }

    fn intern(&mut self, entry: &str) -> u32 {
        let mut path = std::mem::take(&mut self.scratch);
        path.clear();
        let mut id = self.intern_child(&path, None);
        for comp in components(entry) {
            if !path.is_empty() {
                path.push('/');
            }
            path.push_str(comp);
            id = self.intern_child(&path, Some(id));
        }
        self.scratch = path;
        id
    }

    fn intern_child(&mut self, path: &str, parent: Option<u32>) -> u32 {
        if let Some(&id) = self.ids.get(path) {
            return id;
        }
        let index = &mut self.index;
        if index.chain_off.is_empty() {
            index.chain_off.push(0);
        }
        let id = index.prefix_count() as u32;
        index.chain.push(id);
        if let Some(parent) = parent {
            let p = parent as usize;
            let range = index.chain_off[p]..index.chain_off[p + 1];
            index.chain.extend_from_within(range);
        }
        index.chain_off.push(index.chain.len());
        self.ids.insert(path.into(), id);
        id
    }
}

/// Multiset of claimed prefixes, with the ancestors of claimed prefixes, as counters.
#[derive(Debug)]
pub(super) struct FootprintClaims {
    /// How many claims hold exactly this prefix.
    claimed: Vec<u32>,
    /// How many claims hold a strict descendant of this prefix.
    below: Vec<u32>,
}

impl FootprintClaims {
    pub(super) fn new(index: &FootprintIndex) -> Self {
        let n = index.prefix_count();
        Self {
            claimed: vec![0; n],
            below: vec![0; n],
        }
    }
    /// Whether none of `ids` overlaps a claimed prefix.
    pub(super) fn fits(&self, index: &FootprintIndex, ids: &[u32]) -> bool {
        ids.iter().all(|&p| {
            self.below[p as usize] == 0
                && index
                    .chain(p)
                    .iter()
                    .all(|&c| self.claimed[c as usize] == 0)
        })
    }
    pub(super) fn acquire(&mut self, index: &FootprintIndex, ids: &[u32]) {
        for &p in ids {
            let chain = index.chain(p);
            self.claimed[p as usize] += 1;
            for &a in &chain[1..] {
                self.below[a as usize] += 1;
            }
        }
    }
    pub(super) fn release(&mut self, index: &FootprintIndex, ids: &[u32]) {
        for &p in ids {
            let chain = index.chain(p);
            self.claimed[p as usize] -= 1;
            for &a in &chain[1..] {
                self.below[a as usize] -= 1;
            }
        }
    }
}
