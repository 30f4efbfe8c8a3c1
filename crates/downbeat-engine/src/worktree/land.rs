//! Bringing the integration branch into the user's branch: a fast-forward where it can, a
//! merge otherwise; never a force, never a rewrite, never over uncommitted changes.

use serde::Serialize;

use super::git::{Git, GitError, Identity};

/// What `land` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Landed {
    /// The branch that received the work.
    pub into: String,
    /// Its commit before and after.
    pub from: String,
    pub to: String,
    /// `fast-forward`, `merge`, or `up-to-date`.
    pub how: &'static str,
    /// Commits that came in.
    pub commits: u32,
}

/// Why `land` refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LandError {
    #[error(transparent)]
    Git(#[from] GitError),
    #[error("{0}")]
    Fetch(String),
    #[error("the working tree has uncommitted changes: commit or stash them, then land")]
    Dirty,
    #[error("HEAD is detached: check out the branch to land into, or pass --into BRANCH")]
    Detached,
    #[error("there is no branch `{0}`")]
    NoBranch(String),
    #[error("there is no integration branch `{0}` yet: run some work first")]
    NoIntegration(String),
    #[error(
        "`{into}` has commits the integration branch lacks: check it out and run `downbeat land` to merge"
    )]
    Diverged { into: String },
    #[error(
        "merging the integration branch into `{into}` conflicts in {files}: the merge was undone; resolve by hand with `git merge {from}`"
    )]
    Conflict {
        into: String,
        from: String,
        files: String,
    },
}

/// Lands `from_ref` (the integration branch, `branch` by name) into `into`, or into the
/// checked-out branch.
pub fn land(
    git: &Git,
    from_ref: &str,
    branch: &str,
    into: Option<&str>,
) -> Result<Landed, LandError> {
    let src = git
        .commit_of(from_ref)?
        .ok_or_else(|| LandError::NoIntegration(branch.to_owned()))?;
    let out = git.output(&["symbolic-ref", "--quiet", "--short", "HEAD"], None)?;
    let current = out
        .status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned());
    let target = match (into, &current) {
        (Some(i), _) => i.to_owned(),
        (None, Some(c)) => c.clone(),
        (None, None) => return Err(LandError::Detached),
    };
    let target_ref = format!("refs/heads/{target}");
    let old = git
        .commit_of(&target_ref)?
        .ok_or_else(|| LandError::NoBranch(target.clone()))?;
    let count = |a: &str, b: &str| -> Result<u32, GitError> {
        Ok(git
            .run(&["rev-list", "--count", &format!("{a}..{b}")])?
            .parse()
            .unwrap_or(0))
    };
    let commits = count(&old, &src)?;
    let done = |to: String, how| Landed {
        into: target.clone(),
        from: old.clone(),
        to,
        how,
        commits,
    };
    if commits == 0 {
        return Ok(done(old.clone(), "up-to-date"));
    }
    let ff = git.check(&["merge-base", "--is-ancestor", &old, &src])?;
    if current.as_deref() != Some(target.as_str()) {
        // Not checked out: only a fast-forward, which touches no working tree.
        if !ff {
            return Err(LandError::Diverged { into: target });
        }
        let m = format!("downbeat land: fast-forward to {branch}");
        git.run(&["update-ref", "-m", &m, &target_ref, &src, &old])?;
        return Ok(done(src, "fast-forward"));
    }
    if !git
        .run(&["status", "--porcelain", "--untracked-files=no"])?
        .is_empty()
    {
        return Err(LandError::Dirty);
    }
    let msg = format!("Land {branch} into {target}");
    let args = ["merge", "--no-edit", "--quiet", "-m", &msg, &src];
    let out = git.output(&args, Some(&Identity::downbeat()))?;
    if !out.status.success() {
        let files = git
            .run(&["diff", "--name-only", "--diff-filter=U"])
            .unwrap_or_default()
            .lines()
            .collect::<Vec<_>>()
            .join(", ");
        let _ = git.output(&["merge", "--abort"], None);
        if files.is_empty() {
            return Err(git.failed(&args, &out).into());
        }
        return Err(LandError::Conflict {
            into: target,
            from: branch.to_owned(),
            files,
        });
    }
    let to = git.commit_of("HEAD")?.unwrap_or_default();
    Ok(done(to, if ff { "fast-forward" } else { "merge" }))
}
