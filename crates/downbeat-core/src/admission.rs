//! Admission: may this task start now? One rule, as pure functions, for every path that starts
//! or finishes work — runs, MCP claims and manual status changes alike.
//!
//! A task may start when nothing it depends on is unfinished ([`waits_on`]), no hold keeps it
//! back, its role's (or its group's) cap has room and its files do not overlap those of work
//! already running ([`Occupancy`]). This module must never do I/O; callers pass in what they
//! read.

use std::collections::{HashMap, HashSet};

use crate::graph::{Caps, GraphSnapshot};
use crate::ids::TaskId;
use crate::planner::footprints_overlap;
use crate::task::EdgeKind;

/// Why a task may not start now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// These dependencies (tasks or containers) are not finished.
    WaitsOn(Vec<TaskId>),
    /// A hold keeps everything but its own task (and what that task waits on) back.
    Held,
    /// The role's or the named group's cap is reached.
    Capped { group: String, cap: u32 },
    /// A running task works on an overlapping file.
    Footprint { file: String },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::WaitsOn(on) => {
                let list: Vec<String> = on.iter().map(ToString::to_string).collect();
                write!(f, "waits on unfinished work: {}", list.join(", "))
            }
            Self::Held => f.write_str("held back by a hold in force"),
            Self::Capped { group, cap } => {
                write!(f, "`{group}` already runs {cap} task(s), its cap")
            }
            Self::Footprint { file } => write!(f, "a running task works on `{file}`"),
        }
    }
}

/// What `id` waits on in `snap`: the unfinished `blocks` dependencies of the task and of each of
/// its ancestors (a container's dependencies hold back its whole subtree). A dependency is
/// finished when it is a leaf that is completed or skipped, or a container all of whose leaves
/// are; a dependency missing from the snapshot is archived, and archived work is finished.
/// Whatever the task's own status, so the answer also tells whether a running task started
/// early. In dependency order of appearance, without repeats.
pub fn waits_on(snap: &GraphSnapshot, id: TaskId) -> Vec<TaskId> {
    let index: HashMap<TaskId, usize> = snap
        .tasks
        .iter()
        .enumerate()
        .map(|(i, t)| (t.id, i))
        .collect();
    let mut children: HashMap<TaskId, Vec<usize>> = HashMap::new();
    for (i, t) in snap.tasks.iter().enumerate() {
        if let Some(p) = t.parent.filter(|p| index.contains_key(p)) {
            children.entry(p).or_default().push(i);
        }
    }
    let finished = |dep: TaskId| -> bool {
        let Some(&root) = index.get(&dep) else {
            return true;
        };
        let mut stack = vec![root];
        while let Some(i) = stack.pop() {
            let t = &snap.tasks[i];
            match children.get(&t.id) {
                Some(kids) => stack.extend(kids.iter().copied()),
                None if !t.status.satisfies_dependents() => return false,
                None => {}
            }
        }
        true
    };
    let mut out: Vec<TaskId> = Vec::new();
    let mut seen: HashSet<TaskId> = HashSet::new();
    let mut node = Some(id);
    while let Some(n) = node {
        for e in snap
            .edges
            .iter()
            .filter(|e| e.to == n && e.kind == EdgeKind::Blocks)
        {
            if seen.insert(e.from) && !finished(e.from) {
                out.push(e.from);
            }
        }
        node = index
            .get(&n)
            .and_then(|&i| snap.tasks[i].parent)
            .filter(|p| index.contains_key(p));
    }
    out
}

/// What running work occupies: tasks per capped group, and files.
#[derive(Debug, Clone, Default)]
pub struct Occupancy {
    groups: HashMap<u32, u32>,
    footprints: Vec<String>,
}

impl Occupancy {
    /// Whether a task of `role` working on `footprint` may start next to what runs: its group
    /// (if capped) has room and its files do not overlap theirs.
    pub fn admits(&self, role: Option<&str>, footprint: &[String], caps: &Caps) -> bool {
        self.refusal(role, footprint, caps).is_none()
    }

    /// Why a task of `role` working on `footprint` may not start next to what runs, if so.
    pub fn refusal(
        &self,
        role: Option<&str>,
        footprint: &[String],
        caps: &Caps,
    ) -> Option<Refusal> {
        if let Some(g) = role.and_then(|r| caps.group_of(r))
            && self.groups.get(&g).copied().unwrap_or(0) >= caps.cap(g)
        {
            return Some(Refusal::Capped {
                group: caps.name(g).to_owned(),
                cap: caps.cap(g),
            });
        }
        footprint
            .iter()
            .find(|a| self.footprints.iter().any(|b| footprints_overlap(a, b)))
            .map(|file| Refusal::Footprint { file: file.clone() })
    }

    /// Counts a task of `role` working on `footprint` as running.
    pub fn take(&mut self, role: Option<&str>, footprint: &[String], caps: &Caps) {
        if let Some(g) = role.and_then(|r| caps.group_of(r)) {
            *self.groups.entry(g).or_default() += 1;
        }
        self.footprints.extend(footprint.iter().cloned());
    }
}

/// The whole rule for one task: `waits` is what [`waits_on`] answered, `allowed` the tasks holds
/// let start (`None`: no hold in force), `occupied` what runs already.
pub fn check(
    task: TaskId,
    role: Option<&str>,
    footprint: &[String],
    waits: &[TaskId],
    allowed: Option<&HashSet<TaskId>>,
    occupied: &Occupancy,
    caps: &Caps,
) -> Result<(), Refusal> {
    if !waits.is_empty() {
        return Err(Refusal::WaitsOn(waits.to_vec()));
    }
    if allowed.is_some_and(|a| !a.contains(&task)) {
        return Err(Refusal::Held);
    }
    match occupied.refusal(role, footprint, caps) {
        Some(r) => Err(r),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{GraphTask, NamedGroup};
    use crate::task::{Edge, Priority, Status};

    fn task(seq: u32, parent: Option<u32>, status: Status) -> GraphTask {
        GraphTask {
            id: id(seq),
            key: None,
            parent: parent.map(id),
            title: format!("t{seq}"),
            status,
            role: None,
            effort: 1,
            priority: Priority::Normal,
            footprint: vec![],
        }
    }

    fn id(seq: u32) -> TaskId {
        TaskId::from_seq(seq).expect("id")
    }

    fn blocks(from: u32, to: u32) -> Edge {
        Edge {
            from: id(from),
            to: id(to),
            kind: EdgeKind::Blocks,
        }
    }

    #[test]
    fn a_task_waits_on_its_unfinished_dependencies_and_its_containers() {
        // 1 (container) holds 2 and 3; 4 blocks 1; 5 blocks 2; 6 is done and blocks 2.
        let snap = GraphSnapshot {
            tasks: vec![
                task(1, None, Status::Pending),
                task(2, Some(1), Status::Pending),
                task(3, Some(1), Status::Running),
                task(4, None, Status::Running),
                task(5, None, Status::Failed),
                task(6, None, Status::Completed),
            ],
            edges: vec![blocks(4, 1), blocks(5, 2), blocks(6, 2)],
        };
        assert_eq!(waits_on(&snap, id(2)), vec![id(5), id(4)]);
        assert_eq!(waits_on(&snap, id(3)), vec![id(4)]);
        assert_eq!(waits_on(&snap, id(4)), Vec::<TaskId>::new());
    }

    #[test]
    fn a_container_dependency_is_finished_when_all_its_leaves_are() {
        let mut snap = GraphSnapshot {
            tasks: vec![
                task(1, None, Status::Pending),
                task(2, Some(1), Status::Completed),
                task(3, Some(1), Status::Pending),
                task(4, None, Status::Pending),
            ],
            edges: vec![blocks(1, 4)],
        };
        assert_eq!(waits_on(&snap, id(4)), vec![id(1)]);
        snap.tasks[2].status = Status::Skipped;
        assert!(waits_on(&snap, id(4)).is_empty());
    }

    #[test]
    fn archived_dependencies_and_other_edge_kinds_do_not_hold_back() {
        let snap = GraphSnapshot {
            tasks: vec![
                task(2, None, Status::Pending),
                task(3, None, Status::Pending),
            ],
            edges: vec![
                blocks(1, 2),
                Edge {
                    from: id(3),
                    to: id(2),
                    kind: EdgeKind::Related,
                },
            ],
        };
        assert!(waits_on(&snap, id(2)).is_empty());
    }

    #[test]
    fn check_names_the_first_reason_in_order() {
        let caps = Caps::new(
            &[("tester".into(), 1)],
            &[NamedGroup {
                name: "heavy".into(),
                max_parallel: 1,
                roles: vec!["implementer".into()],
            }],
        );
        let mut occ = Occupancy::default();
        let t = id(7);
        assert_eq!(
            check(t, None, &[], &[id(1)], None, &occ, &caps),
            Err(Refusal::WaitsOn(vec![id(1)]))
        );
        let only_other: HashSet<TaskId> = [id(8)].into();
        assert_eq!(
            check(t, None, &[], &[], Some(&only_other), &occ, &caps),
            Err(Refusal::Held)
        );
        assert_eq!(
            check(t, Some("tester"), &[], &[], None, &occ, &caps),
            Ok(())
        );
        occ.take(Some("tester"), &["src/a.rs".into()], &caps);
        occ.take(Some("implementer"), &[], &caps);
        assert_eq!(
            check(t, Some("tester"), &[], &[], None, &occ, &caps),
            Err(Refusal::Capped {
                group: "tester".into(),
                cap: 1
            })
        );
        assert_eq!(
            check(t, Some("implementer"), &[], &[], None, &occ, &caps),
            Err(Refusal::Capped {
                group: "heavy".into(),
                cap: 1
            })
        );
        assert_eq!(
            check(t, None, &["src/a.rs".into()], &[], None, &occ, &caps),
            Err(Refusal::Footprint {
                file: "src/a.rs".into()
            })
        );
        assert!(occ.admits(Some("reviewer"), &["docs/".into()], &caps));
    }
}
