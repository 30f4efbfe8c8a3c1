//! Maintenance policy: which tasks are stale, what may be archived, what is structurally wrong.
//! It only proposes; the caller applies (and logs) what it accepts.

use std::collections::HashMap;

use serde::Serialize;

use crate::graph::{self, GraphSnapshot, Progress};
use crate::ids::TaskId;
use crate::report::snapshot_of;
use crate::task::{Edge, Status, Task};
use crate::time::{Millis, Timestamp};

/// Thresholds the policy uses.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Default staleness threshold.
    pub stale_after: Millis,
    /// Per-role thresholds.
    pub stale_after_role: HashMap<String, Millis>,
    /// Finished work older than this is archived.
    pub archive_after: Millis,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Finding {
    /// A running task without activity: will be put back to `pending` so it can run again.
    StaleRunning {
        task: TaskId,
        idle: String,
        threshold: String,
    },
    /// A task blocked by hand for long: needs a person; reported only.
    StaleBlocked {
        task: TaskId,
        idle: String,
        threshold: String,
    },
    /// A finished subtree (or lone task) older than the retention: will be archived.
    Archive { root: TaskId, tasks: Vec<TaskId> },
    /// A dependency cycle (only possible in a damaged database): reported, not fixed.
    Cycle { path: Vec<TaskId> },
    /// A parent loop (only possible in a damaged database): reported, not fixed.
    ParentLoop { tasks: Vec<TaskId> },
}

impl Finding {
    /// Whether `--apply` acts on it.
    pub fn is_fixable(&self) -> bool {
        matches!(self, Self::StaleRunning { .. } | Self::Archive { .. })
    }
}

/// Reviews live tasks at time `now`.
pub fn review(tasks: &[Task], edges: &[Edge], now: Timestamp, policy: &Policy) -> Vec<Finding> {
    let mut out = Vec::new();
    let snap: GraphSnapshot = snapshot_of(tasks, edges);
    for l in graph::parent_loops(&snap) {
        out.push(Finding::ParentLoop { tasks: l });
    }
    if let Some(c) = graph::find_cycle(&snap) {
        out.push(Finding::Cycle { path: c.path });
    }
    let roll: HashMap<TaskId, Progress> = graph::rollup(&snap);
    let is_container = |id: &TaskId| roll.get(id).is_some_and(|p| p.is_container);

    for t in tasks.iter().filter(|t| !t.archived && !is_container(&t.id)) {
        let threshold = t
            .role
            .as_deref()
            .and_then(|r| policy.stale_after_role.get(r))
            .copied()
            .unwrap_or(policy.stale_after);
        let idle = now.since(t.updated_at);
        if threshold.0 <= 0 || idle < threshold {
            continue;
        }
        let (idle, threshold) = (idle.human(), threshold.human());
        match t.status {
            Status::Running => out.push(Finding::StaleRunning {
                task: t.id,
                idle,
                threshold,
            }),
            Status::Blocked => out.push(Finding::StaleBlocked {
                task: t.id,
                idle,
                threshold,
            }),
            _ => {}
        }
    }

    // Archive whole top-level subtrees whose every task is finished and old enough.
    if policy.archive_after.0 > 0 {
        let cutoff = now.saturating_sub(policy.archive_after);
        let by_id: HashMap<TaskId, &Task> = tasks
            .iter()
            .filter(|t| !t.archived)
            .map(|t| (t.id, t))
            .collect();
        let mut children: HashMap<TaskId, Vec<TaskId>> = HashMap::new();
        for t in by_id.values() {
            if let Some(p) = t.parent.filter(|p| by_id.contains_key(p)) {
                children.entry(p).or_default().push(t.id);
            }
        }
        let mut roots: Vec<TaskId> = by_id
            .values()
            .filter(|t| t.parent.is_none_or(|p| !by_id.contains_key(&p)))
            .map(|t| t.id)
            .collect();
        roots.sort();
        'root: for root in roots {
            let mut subtree = Vec::new();
            let mut stack = vec![root];
            while let Some(id) = stack.pop() {
                if subtree.len() > by_id.len() {
                    continue 'root; // a loop; reported above
                }
                subtree.push(id);
                match children.get(&id) {
                    Some(kids) => stack.extend(kids.iter().copied()),
                    None => {
                        let t = by_id[&id];
                        let old = t.finished_at.is_some_and(|f| f <= cutoff);
                        if !(t.status.satisfies_dependents() && old) {
                            continue 'root;
                        }
                    }
                }
            }
            subtree.sort();
            out.push(Finding::Archive {
                root,
                tasks: subtree,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::Priority;

    fn t(n: u32, status: Status, updated: i64, parent: Option<u32>, role: Option<&str>) -> Task {
        Task {
            id: TaskId::from_seq(n).unwrap(),
            key: None,
            parent: parent.map(|p| TaskId::from_seq(p).unwrap()),
            title: format!("t{n}"),
            description: String::new(),
            role: role.map(str::to_owned),
            status,
            priority: Priority::Normal,
            effort: 1,
            acceptance: vec![],
            tags: vec![],
            footprint: vec![],
            result: None,
            created_at: Timestamp(0),
            updated_at: Timestamp(updated),
            started_at: None,
            finished_at: status.is_terminal().then_some(Timestamp(updated)),
            archived: false,
            exec: Default::default(),
            attempts: 0,
            not_before: None,
            lease_holder: None,
            lease_expires: None,
            lease_epoch: crate::ids::LeaseEpoch(0),
        }
    }

    #[test]
    fn staleness_uses_per_role_thresholds() {
        let day = Millis::DAY.0;
        let tasks = vec![
            t(1, Status::Running, 0, None, Some("researcher")),
            t(2, Status::Running, 0, None, Some("tester")),
            t(3, Status::Blocked, 0, None, None),
            t(4, Status::Pending, 0, None, None),
        ];
        let mut policy = Policy {
            stale_after: Millis::DAY,
            ..Default::default()
        };
        policy
            .stale_after_role
            .insert("researcher".into(), Millis(3 * day));
        let f = review(&tasks, &[], Timestamp(2 * day), &policy);
        let kinds: Vec<String> = f
            .iter()
            .map(|x| {
                serde_json::to_value(x).unwrap()["kind"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(kinds, ["stale-running", "stale-blocked"]);
        assert!(matches!(&f[0], Finding::StaleRunning { task, .. } if task.seq() == 2));
    }

    #[test]
    fn only_fully_finished_old_subtrees_are_archived() {
        let day = Millis::DAY.0;
        let tasks = vec![
            t(1, Status::Pending, 0, None, None),
            t(2, Status::Completed, 0, Some(1), None),
            t(3, Status::Skipped, 0, Some(1), None),
            t(4, Status::Completed, 0, None, None),
            t(5, Status::Completed, 9 * day, None, None),
            t(6, Status::Pending, 0, None, None),
            t(7, Status::Completed, 0, Some(6), None),
            t(8, Status::Running, 9 * day, Some(6), None),
        ];
        let policy = Policy {
            archive_after: Millis(5 * day),
            ..Default::default()
        };
        let f = review(&tasks, &[], Timestamp(10 * day), &policy);
        let roots: Vec<u32> = f
            .iter()
            .filter_map(|x| match x {
                Finding::Archive { root, .. } => Some(root.seq()),
                _ => None,
            })
            .collect();
        assert_eq!(roots, [1, 4]);
    }
}
