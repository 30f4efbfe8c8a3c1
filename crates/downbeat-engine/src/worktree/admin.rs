//! One change to the repository's list of worktrees at a time, across threads and processes.
//!
//! Git reads every worktree's administrative files (`.git/worktrees/<name>/`) when it adds,
//! moves or removes one, and when a checkout asks whether a branch is checked out elsewhere;
//! it fails (`failed to read …/commondir`) on one another git process has half made. Runners
//! sharing a clone (two workers started in one project) therefore take a lock file in the
//! repository's common git directory: exclusive to change the list, shared to check out or to
//! fetch (a fetch checks what it receives against every worktree's `HEAD`, which `worktree
//! add` writes as a null object first).
//!
//! Must never: be held while an agent runs (only around git's own commands).

use std::fs::{File, OpenOptions};
use std::path::PathBuf;

/// The lock file; `None` when it cannot be opened (a read-only repository): git's own checks
/// are then all there is.
#[derive(Debug)]
pub(super) struct AdminLock {
    path: Option<PathBuf>,
}

impl AdminLock {
    pub(super) fn new(git_common_dir: Option<PathBuf>) -> Self {
        Self {
            path: git_common_dir.map(|d| d.join("downbeat-worktrees.lock")),
        }
    }

    fn open(&self) -> Option<File> {
        let p = self.path.as_ref()?;
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(p)
            .ok()
    }

    /// Held while the list of worktrees changes (released when dropped). Each call opens the
    /// file anew, so threads of one process exclude each other too.
    pub(super) fn exclusive(&self) -> Option<File> {
        let f = self.open()?;
        f.lock().ok().map(|()| f)
    }

    /// Held while a worktree is checked out: many at once, never during a change.
    pub(super) fn shared(&self) -> Option<File> {
        let f = self.open()?;
        f.lock_shared().ok().map(|()| f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_holders_share_and_an_exclusive_one_waits_for_them() {
        let tmp = tempfile::tempdir().unwrap();
        let lock = AdminLock::new(Some(tmp.path().to_path_buf()));
        let a = lock.shared().unwrap();
        let b = lock.shared().unwrap();
        let f = OpenOptions::new()
            .write(true)
            .open(tmp.path().join("downbeat-worktrees.lock"))
            .unwrap();
        assert!(matches!(
            f.try_lock(),
            Err(std::fs::TryLockError::WouldBlock)
        ));
        drop((a, b));
        let x = lock.exclusive().unwrap();
        assert!(matches!(
            f.try_lock_shared(),
            Err(std::fs::TryLockError::WouldBlock)
        ));
        drop(x);
        assert!(f.try_lock().is_ok());
    }

    #[test]
    fn without_a_directory_nothing_is_locked() {
        let lock = AdminLock::new(None);
        assert!(lock.exclusive().is_none() && lock.shared().is_none());
    }
}
