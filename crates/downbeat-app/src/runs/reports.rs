//! Integration reports written while a run goes: when the last open task under a container
//! ends, the container's report (`.downbeat/reports/<id>.md`, the same document as
//! `downbeat synthesize <id>`) is written, inner containers before the ones around them.
//!
//! "Open" means pending or running, counted from a snapshot read when the first attempt ends
//! (a task whose end is already in that snapshot is left to the last look). Attempt ends arrive from the engine before they are
//! committed, so a container whose count of open leaves reaches zero is confirmed against the
//! store before its report is written, and tried again shortly if the store does not show it
//! yet. When the run is over, every container above a task that ended in it is checked once
//! more against a fresh snapshot (this also covers tasks that ended without an attempt, such
//! as skipped dependents).
//!
//! A worker shares the graph with other processes, so its own count of open leaves says
//! little: every container above a leaf it ended is looked up in the store a few times
//! shortly after the end (by then committed). The process that ends a container's last leaf
//! is the one that finds it closed; when two end the last leaves at once, both may write it.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;

use downbeat_core::graph::GraphSnapshot;
use downbeat_core::ids::TaskId;
use downbeat_core::task::Status;
use tokio::sync::mpsc;

use crate::project::Project;

/// An attempt end as the run reports it: the task and whether it is still open afterwards
/// (pending again for a retry, say).
pub type Ended = (TaskId, bool);

fn is_open(s: Status) -> bool {
    matches!(s, Status::Pending | Status::Running)
}

/// The containers of a snapshot, their parents, and how many open leaves each holds.
#[derive(Default)]
struct Tree {
    parent: HashMap<TaskId, TaskId>,
    /// Container → open leaves below it (at any depth).
    open_below: HashMap<TaskId, u32>,
    /// Leaves counted as open.
    open: HashSet<TaskId>,
    /// Every task of the snapshot.
    known: HashSet<TaskId>,
}

impl Tree {
    fn of(snap: &GraphSnapshot) -> Self {
        let mut t = Tree::default();
        for task in &snap.tasks {
            t.known.insert(task.id);
            if let Some(p) = task.parent {
                t.parent.insert(task.id, p);
                t.open_below.entry(p).or_insert(0);
            }
        }
        for task in &snap.tasks {
            if !t.open_below.contains_key(&task.id) && is_open(task.status) {
                t.open.insert(task.id);
                for a in t.ancestors(task.id) {
                    *t.open_below.entry(a).or_insert(0) += 1;
                }
            }
        }
        t
    }

    /// The containers above `id`, innermost first (a parent loop is cut).
    fn ancestors(&self, id: TaskId) -> Vec<TaskId> {
        let mut out = Vec::new();
        let mut cur = id;
        while let Some(&p) = self.parent.get(&cur) {
            if out.contains(&p) || p == id {
                break;
            }
            out.push(p);
            cur = p;
        }
        out
    }

    /// Records that leaf `id` ended; returns the containers that have no open leaf left.
    fn ended(&mut self, id: TaskId) -> Vec<TaskId> {
        if !self.open.remove(&id) {
            return Vec::new();
        }
        let mut done = Vec::new();
        for a in self.ancestors(id) {
            let n = self.open_below.entry(a).or_insert(1);
            *n = n.saturating_sub(1);
            if *n == 0 {
                done.push(a);
            }
        }
        done
    }

    fn finished(&self, container: TaskId) -> bool {
        self.open_below.get(&container) == Some(&0)
    }
}

/// How a worker looks again at a container above a leaf it ended: after these pauses, then
/// it leaves the container to whoever ends its next leaf.
const SHARED_LOOKS: [Duration; 3] = [
    Duration::from_millis(100),
    Duration::from_millis(400),
    Duration::from_secs(2),
];

/// Writes the reports of containers whose work ends during the run; returns (container,
/// report path) in the order written, and tells `written_now` of each as it is written. Ends
/// when `ended` closes (the run is over). `shared`: other processes end tasks of the same
/// graph (a worker).
pub async fn write_during_run(
    p: &Project,
    mut ended: mpsc::UnboundedReceiver<Ended>,
    shared: bool,
    written_now: &(dyn Fn(TaskId, &str) + Send + Sync),
) -> Vec<(TaskId, String)> {
    let mut written = Vec::new();
    let mut reported: HashSet<TaskId> = HashSet::new();
    let mut touched: HashSet<TaskId> = HashSet::new();
    let mut due: BTreeSet<(usize, TaskId)> = BTreeSet::new();
    // Shared mode: container → (looks taken, when to look next).
    let mut looks: HashMap<TaskId, (usize, tokio::time::Instant)> = HashMap::new();
    // Read when the first attempt ends, not at start-up, where the run's own start matters.
    let mut tree: Option<Tree> = None;
    let mut closed = false;
    while !closed {
        let mut batch = Vec::new();
        tokio::select! {
            got = ended.recv() => match got {
                Some(e) => batch.push(e),
                None => closed = true,
            },
            () = tokio::time::sleep(Duration::from_millis(100)), if !due.is_empty() || !looks.is_empty() => {}
        }
        while let Ok(e) = ended.try_recv() {
            batch.push(e);
        }
        if tree
            .as_ref()
            .is_none_or(|t| batch.iter().any(|(id, _)| !t.known.contains(id)))
        {
            // The first ends, or tasks added during the run (discovered work, follow-ups).
            if let Ok(snap) = p.store.graph().await {
                tree = Some(Tree::of(&snap));
            }
        }
        let Some(tree) = tree.as_mut() else {
            continue;
        };
        for (id, still_open) in batch {
            touched.insert(id);
            if still_open {
                continue;
            }
            if shared {
                for c in tree.ancestors(id) {
                    if !reported.contains(&c) {
                        looks.insert(c, (0, tokio::time::Instant::now() + SHARED_LOOKS[0]));
                    }
                }
                continue;
            }
            for c in tree.ended(id) {
                if !reported.contains(&c) {
                    due.insert((tree.ancestors(c).len(), c));
                }
            }
        }
        if closed {
            break;
        }
        // Shared mode: the containers whose next look is due join the ones to confirm.
        let now = tokio::time::Instant::now();
        let mut looked: Vec<TaskId> = Vec::new();
        for (&c, &(_, at)) in &looks {
            if at <= now {
                due.insert((tree.ancestors(c).len(), c));
                looked.push(c);
            }
        }
        // Deepest first, so an inner report exists before the outer one is written.
        for (depth, c) in due.clone().into_iter().rev() {
            if confirmed(p, tree, c).await {
                due.remove(&(depth, c));
                looks.remove(&c);
                if let Ok(path) = crate::documents::write_synthesis(p, Some(&c.to_string())).await {
                    written_now(c, &path);
                    written.push((c, path));
                }
                reported.insert(c);
            } else if shared {
                due.remove(&(depth, c));
            }
        }
        for c in looked {
            if let Some((n, at)) = looks.get_mut(&c) {
                *n += 1;
                match SHARED_LOOKS.get(*n) {
                    Some(pause) => *at = now + *pause,
                    None => {
                        looks.remove(&c);
                    }
                }
            }
        }
    }
    // The run is over and committed: one last look at everything it touched.
    if let Ok(snap) = p.store.graph().await {
        let tree = Tree::of(&snap);
        let mut last: BTreeSet<(usize, TaskId)> = BTreeSet::new();
        for id in &touched {
            for c in tree.ancestors(*id) {
                if tree.finished(c) && !reported.contains(&c) {
                    last.insert((tree.ancestors(c).len(), c));
                }
            }
        }
        for (_, c) in last.into_iter().rev() {
            if let Ok(path) = crate::documents::write_synthesis(p, Some(&c.to_string())).await {
                written_now(c, &path);
                written.push((c, path));
            }
        }
    }
    written
}

/// Whether the store shows no open leaf under `container` (the ends seen may not be
/// committed yet).
async fn confirmed(p: &Project, tree: &Tree, container: TaskId) -> bool {
    let mut stack = vec![container];
    while let Some(c) = stack.pop() {
        let Ok(kids) = p
            .store
            .tasks(&downbeat_store::TaskFilter {
                parent: Some(c),
                ..Default::default()
            })
            .await
        else {
            return false;
        };
        for k in kids {
            if tree.open_below.contains_key(&k.id) {
                stack.push(k.id);
            } else if is_open(k.status) {
                return false;
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use downbeat_core::graph::GraphTask;
    use downbeat_core::task::Priority;

    use super::*;

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

    #[test]
    fn a_container_is_done_when_its_last_open_leaf_ends_inner_first() {
        // 1 contains 2 (a container of 3 and 4) and 5; 6 is on its own.
        let snap = GraphSnapshot {
            tasks: vec![
                task(1, None, Status::Pending),
                task(2, Some(1), Status::Pending),
                task(3, Some(2), Status::Completed),
                task(4, Some(2), Status::Running),
                task(5, Some(1), Status::Pending),
                task(6, None, Status::Pending),
            ],
            edges: vec![],
        };
        let mut t = Tree::of(&snap);
        assert_eq!(t.ancestors(id(4)), vec![id(2), id(1)]);
        assert!(t.ended(id(6)).is_empty(), "no container above");
        assert!(t.ended(id(3)).is_empty(), "was not open");
        assert_eq!(t.ended(id(4)), vec![id(2)]);
        assert!(t.ended(id(4)).is_empty(), "counted once");
        assert!(!t.finished(id(1)));
        assert_eq!(t.ended(id(5)), vec![id(1)]);
        assert!(t.finished(id(1)) && t.finished(id(2)));
    }
}
