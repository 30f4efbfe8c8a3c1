//! The vocabulary of worktree isolation: its configuration, what a prepared attempt is, and
//! why preparing or integrating failed.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::git::GitError;

/// `[worktrees]` in the project configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorktreeConfig {
    /// Which tasks work in worktrees (when the project is a git repository).
    #[serde(default)]
    pub mode: WorktreeMode,
    /// The integration branch: every task's work is merged there, in dependency order.
    /// Created from the current `HEAD` when absent.
    #[serde(default = "default_branch")]
    pub branch: String,
    /// What a merge conflict does.
    #[serde(default)]
    pub conflict: ConflictPolicy,
    /// The role of the task added to resolve a conflict (`conflict = "resolve"`).
    #[serde(default = "default_resolver")]
    pub resolver: String,
    /// Workers on several machines: task branches are pushed to this remote and merged into
    /// the integration branch there (each worker works in its own clone).
    pub remote: Option<String>,
}

impl Default for WorktreeConfig {
    fn default() -> Self {
        Self {
            mode: WorktreeMode::default(),
            branch: default_branch(),
            conflict: ConflictPolicy::default(),
            resolver: default_resolver(),
            remote: None,
        }
    }
}

fn default_branch() -> String {
    "downbeat/integration".into()
}

fn default_resolver() -> String {
    "debugger".into()
}

/// Which tasks work in their own worktree.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorktreeMode {
    /// Tasks run by a coding-agent CLI (`type = "agent"`); plain commands and endpoints work
    /// in the project itself.
    #[default]
    Auto,
    /// Every task that runs something.
    Always,
    /// None.
    Off,
}

/// What a merge conflict with the integration branch does to the task.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConflictPolicy {
    /// The task fails for good, the conflicting files named; its worktree is kept.
    Fail,
    /// The task is tried again from the new tip of the integration branch (within its
    /// attempts).
    #[default]
    Retry,
    /// The task completes, and a resolver task (the `resolver` role) is added that works in a
    /// worktree holding the conflicted merge; the task's dependents wait for it.
    Resolve,
}

impl ConflictPolicy {
    pub fn name(self) -> &'static str {
        match self {
            ConflictPolicy::Fail => "fail",
            ConflictPolicy::Retry => "retry",
            ConflictPolicy::Resolve => "resolve",
        }
    }
}

/// Tags that set a task's isolation against its role's: `worktree` and `no-worktree`.
pub mod tags {
    pub const ON: &str = "worktree";
    pub const OFF: &str = "no-worktree";
    /// `merge:BRANCH` on a resolver task: its worktree starts with BRANCH merged, conflicts
    /// and all.
    pub const MERGE: &str = "merge:";

    /// Whether a task with `tags` works in a worktree when its executor's default is
    /// `default`, and the branch a resolver starts with merged: `None` for no worktree.
    pub fn isolation(tags: &[String], default: bool) -> Option<Option<String>> {
        let merge = tags
            .iter()
            .find_map(|t| t.strip_prefix(MERGE))
            .map(str::to_owned);
        let has = |tag: &str| tags.iter().any(|t| t == tag);
        let on = !has(OFF) && (has(ON) || merge.is_some() || default);
        on.then_some(merge)
    }
}

/// An attempt's worktree, ready for the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    pub path: PathBuf,
    pub branch: String,
    /// The integration branch commit it starts from.
    pub base: String,
    /// Files left in conflict by the merge a resolver starts with.
    pub conflicts: Vec<String>,
}

/// What preparing an attempt found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// Work here.
    Ready(Prepared),
    /// An earlier attempt of the task was merged already (by a runner that stopped before
    /// recording it): this commit of the integration branch holds its work.
    Landed(String),
}

/// Why worktree isolation could not be set up or finished.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorktreeError {
    #[error(transparent)]
    Git(#[from] GitError),
    #[error(
        "the repository has no commit yet: commit something before a run, or set [worktrees] mode = \"off\""
    )]
    NoCommit,
    #[error(
        "the integration branch `{branch}` is checked out in {path}: check out another branch there, or name another in [worktrees] branch"
    )]
    CheckedOut { branch: String, path: String },
    #[error("`{0}` is not a valid branch name for [worktrees] branch")]
    BadBranch(String),
    #[error("conflict markers remain in {0}: resolve them before ending")]
    MarkersLeft(String),
    #[error("the integration branch kept moving: {0} tries to merge failed")]
    Contended(u32),
    #[error("{0}")]
    Io(String),
}

/// Serialises merges into the integration branch between runners on several machines (with a
/// remote): held while one merge is computed and pushed. The database provides it, so workers
/// queue instead of racing pushes the remote refuses.
pub trait MergeLock: Send + Sync + std::fmt::Debug {
    /// Blocks until this runner holds the lock; dropping the answer releases it.
    fn acquire(&self) -> Result<Box<dyn Send>, String>;
}
