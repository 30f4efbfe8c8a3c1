//! The whole graph loading in the background while the quick start's attempts run.
//!
//! A runner that starts on a large project claims the first ready tasks by one indexed query
//! and starts them before it knows the graph; loading every task and edge takes seconds at a
//! million tasks. Meanwhile the loop works with a provisional graph of its own running tasks
//! ([`Graph::provisional`]): the plain successes among their ends commit at once, so work is
//! done (and survives the next crash) before the load ends. Ends that need the whole graph —
//! a failure (its policy looks at dependents), a report with flags or discovered work, work in
//! a worktree — wait here until it is in.
//!
//! Must never: claim (nothing is ready in a provisional graph), or let the loop look at others'
//! changes before the whole graph is in (they would not find their tasks and reload it).

use downbeat_core::ids::TaskId;
use downbeat_core::time::Timestamp;
use downbeat_store::Store;
use std::sync::Arc;
use tokio::task::JoinHandle;

use super::attempt::Done;
use super::graph::Graph;
use super::types::{RunError, RunOptions};
use crate::executor::OutcomeKind;

/// The load in flight and what the loop set aside for it.
pub(super) struct Loading {
    handle: JoinHandle<Result<Graph, RunError>>,
    /// Ends that need the whole graph, collected once it is in.
    pub(super) held: Vec<Done>,
    /// Tasks this runner completed meanwhile.
    pub(super) completed: Vec<TaskId>,
}

impl Loading {
    /// Starts loading the whole graph on its own task.
    pub(super) fn start(store: Arc<dyn Store>, opts: Arc<RunOptions>, now: Timestamp) -> Self {
        let handle = tokio::spawn(async move { Graph::load(store.as_ref(), &opts, now).await });
        Self {
            handle,
            held: Vec::new(),
            completed: Vec::new(),
        }
    }

    /// The loaded graph, once it is in.
    pub(super) async fn done(&mut self) -> Result<Graph, RunError> {
        match (&mut self.handle).await {
            Ok(g) => g,
            Err(e) => Err(RunError::Internal(format!(
                "the graph could not be loaded: {e}"
            ))),
        }
    }

    /// Whether an attempt's end needs the whole graph to be recorded: anything but a plain
    /// success (or an interrupted attempt going back to pending) outside a worktree.
    pub(super) fn needs_graph(opts: &RunOptions, done: &Done, interrupted: bool) -> bool {
        if !done.started {
            return false;
        }
        let o = &done.outcome;
        let plain = match o.kind {
            OutcomeKind::Succeeded => o
                .report
                .as_ref()
                .is_none_or(|r| r.flags.is_empty() && r.discovered.is_empty()),
            OutcomeKind::Cancelled => interrupted,
            _ => false,
        };
        !plain || opts.worktrees.is_some()
    }
}

impl Drop for Loading {
    fn drop(&mut self) {
        self.handle.abort();
    }
}
