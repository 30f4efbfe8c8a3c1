//! The scheduler: one event loop that claims ready tasks, runs their attempts in parallel and
//! records what happens, durably.
//!
//! Shape: a dispatcher (`dispatcher.rs`) owns all scheduling state and reacts to a closed set of
//! events (an attempt ended, a tick, a change committed elsewhere, a retry came due, the run was
//! cancelled); each attempt runs in its own tokio task and reports back over a channel. State
//! changes are committed in groups: every turn of the loop commits the finished attempts it has
//! collected *and* the claims of the tasks they made ready in one transaction (a claim is
//! conditional on its dependencies being completed at commit time, so an optimistic claim can
//! never outrun a refused completion).
//!
//! - `dispatcher` — the loop and its event handlers;
//! - `graph` — the in-memory graph: unsatisfied counts, the ready heap, retries, others'
//!   changes applied in place;
//! - `admission` — what may start now: holds, role and group caps, file footprints;
//! - `attempt` — one attempt's life outside the loop (prompt, executor, artifacts).
//!
//! What is not scheduling lives beside this module and is re-exported here so the paths stay
//! put: flag rules and discovered work ([`crate::rules`]), the prompt's context
//! ([`crate::prompt_context`]), this machine's identity ([`crate::host`]).
//!
//! Must never: print, read configuration files, or decide anything a task's settings or the
//! options do not say.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use downbeat_core::graph::Caps;
use downbeat_core::ids::TaskId;
use downbeat_core::task::Task;
use downbeat_core::time::Timestamp;
use downbeat_store::Store;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::{FailurePolicy, FlagRule, RetryPolicy};
use crate::executor::{Executor, OutcomeKind};

mod admission;
mod attempt;
mod dispatcher;
mod graph;

pub(crate) use admission::paused;
pub(crate) use graph::dependent_nodes;

pub use crate::host::{default_holder, holder_is_dead, this_host};
pub use crate::prompt_context::prompt_context;
pub use crate::rules::{Dependent, ReportEffects, announce, completion_effects, load_dependents};

/// How one task will be executed, resolved before the run starts.
#[derive(Clone)]
pub struct Resolved {
    /// Executor name, for the ledger and the display.
    pub name: String,
    pub executor: Arc<dyn Executor>,
    /// Whether the executor needs a rendered prompt (the `noop` executor does not).
    pub needs_prompt: bool,
    pub timeout: Option<Duration>,
    pub retry: RetryPolicy,
}

/// Resolves a task's executor from its settings, its role and the defaults; an error names
/// what is missing. The answer may depend only on the task's executor setting and its role:
/// the engine resolves each distinct pair once.
pub type ResolveFn = Arc<dyn Fn(&Task) -> Result<Resolved, String> + Send + Sync>;

/// Everything a run needs besides the store.
#[derive(Clone)]
pub struct RunOptions {
    /// Lease holder name: unique per runner process, e.g. `runner:HOST:PID`.
    pub holder: String,
    /// Attempts at once.
    pub concurrency: usize,
    pub lease: Duration,
    /// Run only these tasks (containers stand for their leaves); empty = everything.
    pub only: Vec<TaskId>,
    /// Run only what this task needs, and the task itself.
    pub until: Option<TaskId>,
    pub resolve: ResolveFn,
    /// At most this many attempts at once per role or named group of roles.
    pub caps: Caps,
    /// Role name → prompt template; tasks without a role use `default_prompt`.
    pub prompts: HashMap<String, String>,
    pub default_prompt: String,
    pub failure: FailurePolicy,
    pub rules: Vec<FlagRule>,
    /// The project root (agents' working directory; artifacts must lie inside).
    pub workspace: PathBuf,
    /// Where attempt directories go: `<runs_dir>/<task>/<attempt>/`.
    pub runs_dir: PathBuf,
    /// Content-addressed artifact store.
    pub artifacts_dir: PathBuf,
    /// The clock (injected so tests control it).
    pub now: Arc<dyn Fn() -> Timestamp + Send + Sync>,
    /// Which tasks this runner takes (a worker's roles, executors, labels); `None` = all.
    pub accepts: Option<AcceptFn>,
    /// Keep running when nothing is left to do, waiting for new work (a worker), until
    /// cancelled.
    pub stay: bool,
}

/// Whether a runner takes a task.
pub type AcceptFn = Arc<dyn Fn(&Task) -> bool + Send + Sync>;

/// What happens during a run, for display and for `--json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum RunEvent {
    Started {
        ready: usize,
        pending: usize,
        concurrency: usize,
    },
    Requeued {
        task: String,
        reason: String,
    },
    /// Processes left running by agents of a dead runner on this machine were killed.
    OrphansKilled {
        count: usize,
    },
    AttemptStarted {
        task: String,
        title: String,
        attempt: u32,
        executor: String,
    },
    AttemptFinished {
        task: String,
        title: String,
        attempt: u32,
        outcome: OutcomeKind,
        status: String,
        error: Option<String>,
        millis: u64,
    },
    Retrying {
        task: String,
        attempt: u32,
        at: String,
    },
    LeaseLost {
        task: String,
    },
    Flag {
        task: String,
        flag: String,
        action: String,
        detail: String,
    },
    Discovered {
        task: String,
        new_task: String,
        title: String,
    },
    Cancelled {
        task: String,
        reason: String,
    },
    /// A hold is in force: nothing but `until` (or, without it, nothing at all) starts.
    Paused {
        hold: u32,
        until: Option<String>,
        reason: String,
    },
    Resumed,
    Stopping {
        reason: String,
    },
    Finished(RunSummary),
}

/// How a run ended.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RunSummary {
    pub completed: u64,
    pub failed: u64,
    pub retried: u64,
    pub cancelled: u64,
    pub rejected: u64,
    /// Tasks in scope still not done (waiting on something that did not finish).
    pub remaining: u64,
    pub interrupted: bool,
    pub stopped_by: Option<String>,
    pub millis: u64,
}

/// Errors that stop a run before or while it runs.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Store(#[from] downbeat_store::Error),
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Cycle(#[from] downbeat_core::graph::TaskCycle),
}

/// Runs the graph until nothing more can run, the token is cancelled, or a rule stops it.
pub async fn run(
    store: Arc<dyn Store>,
    opts: RunOptions,
    events: mpsc::UnboundedSender<RunEvent>,
    cancel: CancellationToken,
) -> Result<RunSummary, RunError> {
    dispatcher::Dispatcher::start(store, opts, events, cancel)
        .await?
        .drive()
        .await
}

/// Sends run events; a receiver that went away is no reason to stop.
#[derive(Clone)]
pub(crate) struct Emitter(mpsc::UnboundedSender<RunEvent>);

impl Emitter {
    pub(crate) fn emit(&self, e: RunEvent) {
        let _ = self.0.send(e);
    }
}
