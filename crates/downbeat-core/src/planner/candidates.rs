//! Candidate sets for constrained scheduling (caps or footprints), shared by the wave builder and
//! the makespan simulation.
//!
//! Candidates (task ranks) are kept in one bucket per capped group, plus one for the others. A
//! selection round merges the buckets in priority order and skips a whole bucket once its group
//! is at its cap, so candidates held back by a cap cost nothing until a slot frees. Only
//! candidates held back by a footprint overlap are looked at again in each round.
//!
//! Buckets are [`RankSet`]s; a capped group's bucket is indexed by the position of the task
//! among the group's members (in rank order, see [`Groups`]), so all buckets together take
//! about one bit per task.

use super::plan::{Plan, Resources};
use super::rankset::RankSet;

/// The members of each capped group, in rank order (empty when there is no constraint).
#[derive(Default)]
pub(super) struct Groups {
    /// Group index → its members' ranks, ascending.
    members: Vec<Vec<u32>>,
    /// Rank → (capped group or `FREE`, position among the group's members).
    slot: Vec<(u32, u32)>,
}

const FREE: u32 = u32::MAX;

impl Groups {
    pub(super) fn new(plan: &Plan<'_>) -> Self {
        let mut members: Vec<Vec<u32>> = vec![Vec::new(); plan.caps.len()];
        let mut slot = vec![(FREE, 0); plan.order.len()];
        for (r, &v) in plan.order.iter().enumerate() {
            if let Some((g, _)) = plan.cap_of(v) {
                slot[r] = (g as u32, members[g].len() as u32);
                members[g].push(r as u32);
            }
        }
        Self { members, slot }
    }
}

pub(super) struct Candidates<'g> {
    groups_index: &'g Groups,
    /// Candidates not in a capped group, by rank.
    free: RankSet,
    /// Candidates of each capped group, by position among the group's members.
    groups: Vec<RankSet>,
    /// Scratch for [`Candidates::select`].
    cursors: Vec<(Option<usize>, u32)>,
    /// Number of candidates in each group's bucket.
    len_in: Vec<u32>,
    /// Groups whose set may be non-empty, each once.
    active: Vec<usize>,
    is_active: Vec<bool>,
    len: usize,
}

impl<'g> Candidates<'g> {
    pub(super) fn new(plan: &'g Plan<'_>) -> Self {
        let groups = &plan.groups;
        Self {
            groups_index: groups,
            free: RankSet::new(plan.order.len()),
            groups: groups
                .members
                .iter()
                .map(|m| RankSet::new(m.len()))
                .collect(),
            cursors: Vec::new(),
            len_in: vec![0; plan.caps.len()],
            active: Vec::new(),
            is_active: vec![false; plan.caps.len()],
            len: 0,
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(super) fn insert(&mut self, rank: u32) {
        self.len += 1;
        match self.groups_index.slot[rank as usize] {
            (FREE, _) => self.free.insert(rank as usize),
            (g, position) => {
                let g = g as usize;
                if !self.is_active[g] {
                    self.is_active[g] = true;
                    self.active.push(g);
                }
                self.len_in[g] += 1;
                self.groups[g].insert(position as usize);
            }
        }
    }

    /// Takes candidates in priority order while `limit` allows, skipping those whose group is at
    /// its cap or whose footprint overlaps an acquired one; each taken candidate is removed,
    /// acquired in `resources` and passed to `take`.
    pub(super) fn select(
        &mut self,
        plan: &Plan<'_>,
        resources: &mut Resources<'_, '_>,
        limit: usize,
        mut take: impl FnMut(u32),
    ) {
        let (len_in, is_active) = (&self.len_in, &mut self.is_active);
        self.active.retain(|&g| {
            is_active[g] = len_in[g] > 0;
            is_active[g]
        });
        let members = &self.groups_index.members;
        // Cursor per source: the next candidate at or after the last one looked at (a rank).
        // Source `None` is the free bucket.
        let mut cursors = std::mem::take(&mut self.cursors);
        cursors.clear();
        if let Some(r) = self.free.next_from(0) {
            cursors.push((None, r as u32));
        }
        for &g in &self.active {
            if !resources.group_full(g)
                && let Some(i) = self.groups[g].next_from(0)
            {
                cursors.push((Some(g), members[g][i]));
            }
        }
        let mut taken = 0;
        while taken < limit {
            let Some(best) = (0..cursors.len()).min_by_key(|&i| cursors[i].1) else {
                break;
            };
            let (source, rank) = cursors[best];
            let v = plan.order[rank as usize];
            if resources.fits(v) {
                match source {
                    None => self.free.remove(rank as usize),
                    Some(g) => {
                        self.len_in[g] -= 1;
                        let i = self.groups_index.slot[rank as usize].1;
                        self.groups[g].remove(i as usize);
                    }
                }
                self.len -= 1;
                resources.acquire(v);
                taken += 1;
                take(rank);
            }
            let next = match source {
                None => self.free.next_from(rank as usize + 1).map(|r| r as u32),
                Some(g) if resources.group_full(g) => None,
                Some(g) => {
                    let i = self.groups_index.slot[rank as usize].1 as usize;
                    self.groups[g].next_from(i + 1).map(|i| members[g][i])
                }
            };
            match next {
                Some(r) => cursors[best].1 = r,
                None => {
                    cursors.swap_remove(best);
                }
            }
        }
        self.cursors = cursors;
    }
}
