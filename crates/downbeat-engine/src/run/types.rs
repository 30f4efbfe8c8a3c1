//! The scheduler's vocabulary: options, events, the summary, errors, and how executors and
//! acceptance are resolved for a task.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use downbeat_core::graph::Caps;
use downbeat_core::ids::TaskId;
use downbeat_core::task::Task;
use downbeat_core::time::Timestamp;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::config::{FailurePolicy, FlagRule, RetryPolicy};
use crate::executor::{Executor, OutcomeKind};

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
    /// Whether its attempts work in their own git worktree (when the run has worktrees; a
    /// task's `worktree` / `no-worktree` tag overrides it).
    pub worktree: bool,
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
    /// The largest artifact stored, in bytes.
    pub artifact_limit: u64,
    /// Environment every attempt gets instead of the runner's own for these names: Downbeat's
    /// credentials never reach an agent (`None` removes the variable, `Some` replaces it).
    pub agent_env: Vec<(String, Option<String>)>,
    /// Secrets masked in what attempts leave behind (output files, agent record, the error and
    /// summary in the ledger), prepared by [`crate::scrub::prepare`].
    pub scrub: Arc<Vec<String>>,
    /// The clock (injected so tests control it).
    pub now: Arc<dyn Fn() -> Timestamp + Send + Sync>,
    /// Which tasks this runner takes (a worker's roles, executors, labels); `None` = all.
    pub accepts: Option<AcceptFn>,
    /// Keep running when nothing is left to do, waiting for new work (a worker), until
    /// cancelled.
    pub stay: bool,
    /// Worktree isolation, when the project is a git repository and it is not off.
    pub worktrees: Option<Arc<crate::worktree::Worktrees>>,
    /// Bytes of decisions, insights and memory files a prompt carries at most.
    pub context_budget: usize,
    /// Follow-up chains end at this depth (`[flags] max_depth`).
    pub flag_depth: u32,
    /// The project's memory files (`CLAUDE.md`, `AGENTS.md`) every prompt carries when they
    /// exist, read when the prompt is rendered.
    pub memory_files: Vec<PathBuf>,
    /// How long a starting runner that has started work waits for the whole graph before it
    /// goes on with a provisional one, committing that work's plain ends meanwhile
    /// ([`DEFAULT_LOAD_WAIT`]).
    pub load_wait: Duration,
}

/// [`RunOptions::load_wait`] in practice: a graph that loads within it (all but the largest)
/// is simply waited for.
pub const DEFAULT_LOAD_WAIT: Duration = Duration::from_millis(250);

/// Whether a runner takes a task.
pub type AcceptFn = Arc<dyn Fn(&Task) -> bool + Send + Sync>;

/// What happens during a run, for display and for `--json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum RunEvent {
    Started {
        /// Ready tasks not started yet.
        ready: usize,
        /// Tasks this run started before the whole graph was read (a restart starts work
        /// at once).
        running: usize,
        /// Tasks in scope still to do, `running` included.
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
        /// When the next attempt may start (RFC 3339, UTC).
        at: String,
        /// How long until then, in milliseconds.
        in_ms: u64,
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
    /// A task's work and the integration branch: `merged`, `unchanged`, `conflict` (with the
    /// files and what the conflict policy does), `resolving`.
    Integrated {
        task: String,
        state: String,
        commit: Option<String>,
        files: u32,
        conflicts: Vec<String>,
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
    /// Attempts stopped because the run was interrupted; their tasks are pending again.
    pub stopped: u64,
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
    /// A part of the runner stopped unexpectedly (it panicked): a bug, not the user's input.
    #[error("{0}")]
    Internal(String),
}

/// Sends run events; a receiver that went away is no reason to stop.
#[derive(Clone)]
pub(crate) struct Emitter(pub(crate) mpsc::UnboundedSender<RunEvent>);

impl Emitter {
    pub(crate) fn emit(&self, e: RunEvent) {
        let _ = self.0.send(e);
    }
}
