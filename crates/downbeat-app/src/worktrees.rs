//! The integration of agents' work: the change a task made (`diff`), bringing the integration
//! branch into the user's branch (`land`), and the worktrees left on disk.

use std::sync::Arc;

use downbeat_core::attempt::GitWork;
use downbeat_core::ids::TaskId;
use downbeat_engine::worktree::{LandError, Landed, Worktrees};
use serde::Serialize;

use crate::error::{Error, Kind};
use crate::project::Project;
use crate::runs::worktree_error;

/// The project's worktrees, or an error saying why there are none.
fn required(p: &Project) -> Result<Arc<Worktrees>, Error> {
    crate::runs::worktrees(p)?.ok_or_else(|| {
        Error::invalid(format!(
            "{} is not in a git repository, or worktree isolation is off",
            p.root.display()
        ))
        .with_hint("see docs/worktrees.md: [worktrees] mode, and `git init` with a first commit")
    })
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::new(Kind::Internal, e.to_string()))?
}

/// A task's change: the git work of its last attempt that made one, and the diff.
#[derive(Debug, Clone, Serialize)]
pub struct TaskDiff {
    pub task: String,
    pub attempt: u32,
    #[serde(flatten)]
    pub git: GitWork,
    /// `git diff` (or `--stat`) from `base` to `head`.
    pub diff: String,
}

/// The change task `q` made, against what it started from (its last attempt with one, or
/// attempt `attempt`).
pub async fn diff(
    p: &Project,
    q: &str,
    attempt: Option<u32>,
    stat: bool,
) -> Result<TaskDiff, Error> {
    let id: TaskId = crate::tasks::resolve(p, q).await?;
    let ledger = p.store.attempts(id).await?;
    let found = ledger
        .into_iter()
        .rev()
        .filter(|a| attempt.is_none_or(|n| a.number == n))
        .find_map(|a| {
            let git = a.detail.git?;
            git.head.is_some().then_some((a.number, git))
        });
    let Some((number, git)) = found else {
        return Err(Error::not_found(match attempt {
            Some(n) => format!("attempt {n} of task {id} made no change in a worktree"),
            None => {
                format!("task {id} has no change: no attempt of it changed files in a worktree")
            }
        })
        .with_hint("`downbeat attempts TASK` lists its attempts"));
    };
    let w = required(p)?;
    let (base, head) = (git.base.clone(), git.head.clone().unwrap_or_default());
    let text = blocking(move || w.diff(&base, &head, stat).map_err(worktree_error)).await?;
    Ok(TaskDiff {
        task: id.to_string(),
        attempt: number,
        git,
        diff: text,
    })
}

/// Brings the integration branch into `into` (default: the checked-out branch).
pub async fn land(p: &Project, into: Option<String>) -> Result<Landed, Error> {
    let w = required(p)?;
    blocking(move || {
        w.land(into.as_deref()).map_err(|e| match e {
            LandError::Dirty | LandError::Diverged { .. } | LandError::Conflict { .. } => {
                Error::new(Kind::Conflict, e.to_string())
            }
            LandError::NoBranch(_) | LandError::NoIntegration(_) => Error::not_found(e.to_string()),
            LandError::Detached => Error::invalid(e.to_string()),
            LandError::Git(g) => Error::new(Kind::Internal, g.to_string()),
            LandError::Fetch(m) => Error::new(Kind::Internal, m),
        })
    })
    .await
}

/// The worktrees left on disk (failed attempts kept for inspection), as (task, attempt, path).
pub async fn list(p: &Project) -> Result<Vec<(String, u32, String)>, Error> {
    let Some(w) = crate::runs::worktrees(p)? else {
        return Ok(Vec::new());
    };
    blocking(move || {
        Ok(w.list()
            .map_err(worktree_error)?
            .into_iter()
            .map(|(t, n, path)| (t, n, path.display().to_string()))
            .collect())
    })
    .await
}

/// Removes the worktrees of tasks that are not running: completed, cancelled, failed or
/// pending ones (a failed attempt's is kept until this or its retry), and the idle ones kept
/// for reuse. Returns how many of the former.
pub async fn clean(p: &Project) -> Result<usize, Error> {
    let Some(w) = crate::runs::worktrees(p)? else {
        return Ok(0);
    };
    let mut running = std::collections::HashSet::new();
    for (t, _, _) in list(p).await? {
        if let Ok(id) = p.store.resolve_task(&t).await
            && p.store.task(id).await?.status == downbeat_core::task::Status::Running
        {
            running.insert(t);
        }
    }
    blocking(move || {
        let mut n = 0;
        for (t, _, path) in w.list().map_err(worktree_error)? {
            if !running.contains(&t) {
                w.remove(&path);
                n += 1;
            }
        }
        // The idle worktrees kept for reuse go too: they only save time.
        w.drain_pool();
        Ok(n)
    })
    .await
}

/// The worktrees a task works in, and the branch a resolver starts with merged.
type Isolation = (Arc<Worktrees>, Option<String>);

/// Where claimed work is to be done, when its task works in a worktree.
#[derive(Debug, Clone, Serialize)]
pub struct ClaimWorktree {
    /// Work here, not in the project.
    pub path: String,
    pub branch: String,
    /// An earlier attempt's merge of this task is on the integration branch already (its end
    /// was never recorded): complete the task without doing the work again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merged_already: Option<String>,
}

/// The worktrees task `t` works in when claimed from outside a runner, and the branch a
/// resolver starts with merged: its tags, else its role's `worktree`, else the mode (`auto`:
/// when its executor is a coding agent).
fn isolation_for(p: &Project, t: &downbeat_core::task::Task) -> Result<Option<Isolation>, Error> {
    use downbeat_engine::worktree::{WorktreeMode, tags};
    let Some(w) = crate::runs::worktrees(p)? else {
        return Ok(None);
    };
    let role = t.role.as_ref().and_then(|r| p.config.roles.get(r));
    let default = match (role.and_then(|r| r.worktree), p.config.worktrees.mode) {
        (Some(on), _) => on,
        (None, WorktreeMode::Always) => true,
        (None, WorktreeMode::Off) => false,
        (None, WorktreeMode::Auto) => crate::runs::resolver(p, None)
            .ok()
            .and_then(|f| f(t).ok())
            .is_some_and(|r| r.worktree),
    };
    Ok(tags::isolation(&t.tags, default).map(|merge| (w, merge)))
}

/// Prepares the worktree of a claimed attempt, when its task works in one.
pub async fn prepare_claim(
    p: &Project,
    t: &downbeat_core::task::Task,
    attempt: u32,
) -> Result<Option<ClaimWorktree>, Error> {
    use downbeat_engine::worktree::Start;
    let Some((w, merge)) = isolation_for(p, t)? else {
        return Ok(None);
    };
    let id = t.id.to_string();
    let path = w
        .root()
        .join(crate::project::DIR)
        .join("worktrees")
        .join(&id);
    let recorded: Vec<String> = p
        .store
        .attempts(t.id)
        .await?
        .into_iter()
        .filter_map(|a| a.detail.git?.merge)
        .collect();
    let start = blocking(move || {
        w.ensure_branch().map_err(worktree_error)?;
        w.prepare(&id, attempt, merge.as_deref(), &recorded)
            .map_err(worktree_error)
    })
    .await?;
    Ok(Some(match start {
        Start::Ready(prep) => ClaimWorktree {
            path: prep.path.display().to_string(),
            branch: prep.branch,
            merged_already: None,
        },
        Start::Landed(commit) => ClaimWorktree {
            path: path.display().to_string(),
            branch: String::new(),
            merged_already: Some(commit),
        },
    }))
}

/// Commits and merges the work of a claimed attempt that completes, when it was done in a
/// worktree: the git record for the ledger (a conflict is an answer, not an error).
pub async fn integrate_claim(
    p: &Project,
    t: &downbeat_core::task::Task,
    attempt: u32,
    summary: Option<&str>,
) -> Result<Option<GitWork>, Error> {
    let Some((w, _)) = isolation_for(p, t)? else {
        return Ok(None);
    };
    let (id, title, role) = (t.id.to_string(), t.title.clone(), t.role.clone());
    let summary = summary.map(str::to_owned);
    blocking(move || {
        let Some(prep) = w.resume(&id, attempt).map_err(worktree_error)? else {
            return Ok(None);
        };
        let info = downbeat_engine::worktree::TaskInfo {
            id: &id,
            title: &title,
            attempt,
            role: role.as_deref(),
            summary: summary.as_deref(),
        };
        w.integrate(&prep, &info).map(Some).map_err(|e| {
            Error::conflict(format!(
                "the work in {} cannot be integrated: {e}",
                prep.path.display()
            ))
        })
    })
    .await
}

/// Removes the worktree of work given back untouched.
pub async fn release_claim(p: &Project, t: &downbeat_core::task::Task) -> Result<(), Error> {
    let Some((w, _)) = isolation_for(p, t)? else {
        return Ok(());
    };
    let id = t.id.to_string();
    blocking(move || w.remove_task(&id).map(|_| ()).map_err(worktree_error)).await
}

/// Where the agents' work stands with respect to the integration branch, for `status`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WorkSummary {
    /// The integration branch.
    pub branch: String,
    /// Tasks whose last attempt's work was merged.
    pub merged: usize,
    /// Tasks whose last attempt conflicted (waiting for a retry, failed, or resolving), with
    /// the files.
    pub conflicts: Vec<(String, Vec<String>)>,
    /// Worktrees left on disk.
    pub kept: usize,
}

/// The [`WorkSummary`], when the project works in worktrees (`None` otherwise: nothing is
/// read then).
pub async fn summary(p: &Project) -> Result<Option<WorkSummary>, Error> {
    use downbeat_core::attempt::MergeState;
    let Some(w) = crate::runs::worktrees(p)? else {
        return Ok(None);
    };
    let mut last: std::collections::HashMap<TaskId, GitWork> = Default::default();
    for a in p.store.all_attempts().await? {
        if let Some(g) = a.detail.git {
            last.insert(a.task, g);
        }
    }
    let mut s = WorkSummary {
        branch: w.config().branch.clone(),
        kept: list(p).await?.len(),
        ..WorkSummary::default()
    };
    let mut conflicts: Vec<_> = last
        .iter()
        .filter(|(_, g)| matches!(g.state, MergeState::Conflict | MergeState::Resolving))
        .map(|(t, g)| (t.to_string(), g.conflicts.clone()))
        .collect();
    conflicts.sort();
    s.conflicts = conflicts;
    s.merged = last
        .values()
        .filter(|g| g.state == MergeState::Merged)
        .count();
    Ok(Some(s))
}
