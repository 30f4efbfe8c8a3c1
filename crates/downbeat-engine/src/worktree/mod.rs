//! Worktree isolation: each attempt of a coding agent works in its own git worktree, on its
//! own branch, created from the integration branch once everything the task depends on has
//! been merged there; a successful attempt's work is committed and merged into the integration
//! branch, one merge at a time, before the task counts as completed.
//!
//! Merges never touch a working tree: `git merge-tree --write-tree` computes the merge,
//! `commit-tree` records it, and the integration branch moves by a compare-and-swap of its ref
//! (`update-ref NEW OLD`, or a push that is refused unless it fast-forwards the remote's
//! branch). A runner killed at any point leaves the branch at one merge or the next, never in
//! between. Every merge commit carries a `Downbeat-Task:` trailer: an attempt about to start
//! for a task whose merge is already there (its runner died before recording it) is not run
//! again.
//!
//! All calls block (they run git): callers run them off the async threads.
//!
//! Must never: rewrite or force-push a branch the user has, touch the user's working tree
//! (except `land`, which refuses a dirty one), or merge a task's work twice.

mod admin;
mod git;
mod land;
mod types;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use admin::AdminLock;

use downbeat_core::attempt::{GitWork, MergeState};

pub use git::{Git, GitError, Identity, parse_shortstat};
pub use land::{LandError, Landed};
pub use types::{
    ConflictPolicy, MergeLock, Prepared, Start, WorktreeConfig, WorktreeError, WorktreeMode, tags,
};

/// The all-zero object id: `update-ref` creates a ref only if it does not exist yet.
const ZERO: &str = "0000000000000000000000000000000000000000";

/// Where attempts' branches go: `downbeat/tasks/<task>-<attempt>`.
const BRANCH_PREFIX: &str = "downbeat/tasks/";

/// Where idle worktrees wait for their next attempt, under the worktrees' directory.
const POOL: &str = ".pool";

/// Idle worktrees kept at most.
const POOL_SIZE: usize = 16;

/// How often a merge is tried again when another runner moved the branch meanwhile.
const MAX_TRIES: u32 = 20;

/// What a task's commit and merge say about it.
#[derive(Debug, Clone, Copy)]
pub struct TaskInfo<'a> {
    pub id: &'a str,
    pub title: &'a str,
    pub attempt: u32,
    pub role: Option<&'a str>,
    pub summary: Option<&'a str>,
}

impl TaskInfo<'_> {
    fn trailers(&self, branch: &str) -> String {
        format!(
            "Downbeat-Task: {}\nDownbeat-Attempt: {}\nDownbeat-Branch: {branch}",
            self.id, self.attempt
        )
    }

    fn commit_message(&self, branch: &str) -> String {
        let mut m = self.title.trim().to_owned();
        if let Some(s) = self.summary.map(str::trim).filter(|s| !s.is_empty()) {
            m.push_str("\n\n");
            m.push_str(s);
        }
        m.push_str("\n\n");
        m.push_str(&self.trailers(branch));
        m
    }

    fn merge_message(&self, branch: &str) -> String {
        format!(
            "Merge task {}: {}\n\n{}",
            self.id,
            self.title.trim(),
            self.trailers(branch)
        )
    }
}

/// The worktrees of one project's repository.
#[derive(Debug)]
pub struct Worktrees {
    /// At the top of the user's working tree.
    git: Git,
    /// Where attempts' worktrees go.
    dir: PathBuf,
    config: WorktreeConfig,
    /// One merge at a time from this process (other processes: the ref's compare-and-swap).
    merging: Mutex<()>,
    /// One change to the repository's list of worktrees at a time, across processes too
    /// ([`AdminLock`]).
    admin: AdminLock,
    /// One exchange with the remote at a time from this process: a fetch writes the
    /// remote-tracking ref and a push updates it, and git refuses a second writer of a ref
    /// (`cannot lock ref`) instead of waiting.
    remote_io: Mutex<()>,
    /// Names handed to worktrees put in the pool.
    pooled: std::sync::atomic::AtomicU64,
    /// Between runners with a remote: one merge at a time (see [`MergeLock`]).
    shared_lock: Option<std::sync::Arc<dyn MergeLock>>,
}

impl Worktrees {
    /// Isolation for `workspace`: `None` when it is off or the workspace is not in a git work
    /// tree. Worktrees go under `dir`.
    pub fn open(
        workspace: &Path,
        dir: PathBuf,
        config: WorktreeConfig,
    ) -> Result<Option<Self>, WorktreeError> {
        if config.mode == WorktreeMode::Off {
            return Ok(None);
        }
        let out = Git::new(workspace).output(
            &[
                "rev-parse",
                "--path-format=absolute",
                "--show-toplevel",
                "--git-common-dir",
            ],
            None,
        )?;
        if !out.status.success() {
            return Ok(None);
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let mut lines = text.lines();
        let top = PathBuf::from(lines.next().unwrap_or_default().trim());
        let common_dir = lines.next().map(|l| PathBuf::from(l.trim()));
        let git = Git::new(top);
        if !git.check(&["check-ref-format", "--branch", &config.branch])? {
            return Err(WorktreeError::BadBranch(config.branch.clone()));
        }
        Ok(Some(Self {
            git,
            dir,
            config,
            merging: Mutex::new(()),
            admin: AdminLock::new(common_dir),
            remote_io: Mutex::new(()),
            pooled: std::sync::atomic::AtomicU64::new(0),
            shared_lock: None,
        }))
    }

    /// Merges take `lock` first, when a remote is configured (without one, the branch is
    /// local and this process's own lock and the ref's compare-and-swap suffice).
    pub fn with_merge_lock(mut self, lock: std::sync::Arc<dyn MergeLock>) -> Self {
        if self.config.remote.is_some() {
            self.shared_lock = Some(lock);
        }
        self
    }

    pub fn config(&self) -> &WorktreeConfig {
        &self.config
    }

    /// The repository's top directory.
    pub fn root(&self) -> &Path {
        self.git.dir()
    }

    fn int_ref(&self) -> String {
        format!("refs/heads/{}", self.config.branch)
    }

    /// Where the integration branch's tip is read: the local branch, or the remote's as last
    /// fetched.
    fn tip_ref(&self) -> String {
        match &self.config.remote {
            Some(r) => format!("refs/remotes/{r}/{}", self.config.branch),
            None => self.int_ref(),
        }
    }

    /// Fetches the remote's integration branch; its tip, or `None` when it has none. A fetch
    /// that lost a race for the tracking ref to another process using this clone is tried
    /// again. It holds the worktree lock shared, never while this thread holds it.
    fn fetch(&self, remote: &str) -> Result<Option<String>, WorktreeError> {
        let spec = format!("+{}:{}", self.int_ref(), self.tip_ref());
        let args = [
            "fetch",
            "--quiet",
            "--no-tags",
            "--no-write-fetch-head",
            remote,
            &spec,
        ];
        let mut tries = 0;
        loop {
            let out = {
                let _io = self.remote_io.lock().unwrap_or_else(|e| e.into_inner());
                // What it receives is checked against every ref, each worktree's `HEAD`
                // included, and `worktree add` writes a new one's as a null object first.
                let _reading = self.admin.shared();
                self.git.output(&args, None)?
            };
            if out.status.success() {
                return Ok(self.git.commit_of(&self.tip_ref())?);
            }
            let msg = String::from_utf8_lossy(&out.stderr);
            if msg.contains("couldn't find remote ref") {
                return Ok(None);
            }
            tries += 1;
            if !ref_contended(&msg) || tries >= MAX_TRIES {
                return Err(self.git.failed(&args, &out).into());
            }
            std::thread::sleep(std::time::Duration::from_millis(20 * u64::from(tries)));
        }
    }

    /// `git push` to the remote, one exchange at a time from this process ([`Self::fetch`]).
    fn push(&self, remote: &str, spec: &str) -> Result<std::process::Output, WorktreeError> {
        let _io = self.remote_io.lock().unwrap_or_else(|e| e.into_inner());
        Ok(self.git.output(&["push", "--quiet", remote, spec], None)?)
    }

    /// The integration branch's tip now (fetched first with a remote); the branch is made
    /// when there is none yet ([`Worktrees::ensure_branch`]).
    pub fn tip(&self) -> Result<String, WorktreeError> {
        let tip = match &self.config.remote {
            Some(r) => self.fetch(r)?,
            None => self.git.commit_of(&self.int_ref())?,
        };
        match tip {
            Some(t) => Ok(t),
            None => self.ensure_branch(),
        }
    }

    /// Makes sure the integration branch exists (created from `HEAD`) and that no working
    /// tree has it checked out; returns its tip.
    pub fn ensure_branch(&self) -> Result<String, WorktreeError> {
        if let Some(remote) = self.config.remote.clone() {
            if let Some(t) = self.fetch(&remote)? {
                return Ok(t);
            }
            let head = self.git.commit_of("HEAD")?.ok_or(WorktreeError::NoCommit)?;
            let spec = format!("{head}:{}", self.int_ref());
            // Refused if another worker created it meanwhile: then theirs is fetched.
            let _ = self.push(&remote, &spec)?;
            return self.fetch(&remote)?.ok_or(WorktreeError::NoCommit);
        }
        self.check_not_checked_out()?;
        self.exclude_worktrees()?;
        if let Some(t) = self.git.commit_of(&self.int_ref())? {
            return Ok(t);
        }
        let head = self.git.commit_of("HEAD")?.ok_or(WorktreeError::NoCommit)?;
        let r = self.int_ref();
        let _ = self.git.output(
            &[
                "update-ref",
                "-m",
                "downbeat: integration branch",
                &r,
                &head,
                ZERO,
            ],
            None,
        )?;
        self.git.commit_of(&r)?.ok_or(WorktreeError::NoCommit)
    }

    /// Keeps the worktrees' directory out of the user's `git status` and `git add --all` (a
    /// project made before `init` wrote it into `.downbeat/.gitignore` lacks it there): a line
    /// in the repository's own `info/exclude`, which is not part of any commit.
    fn exclude_worktrees(&self) -> Result<(), WorktreeError> {
        let Ok(rel) = self.dir.strip_prefix(self.git.dir()) else {
            return Ok(());
        };
        let line = format!("/{}/", rel.to_string_lossy().trim_end_matches('/'));
        let common = self
            .git
            .run(&["rev-parse", "--path-format=absolute", "--git-common-dir"])?;
        let file = Path::new(&common).join("info").join("exclude");
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        if text.lines().any(|l| l.trim() == line) {
            return Ok(());
        }
        let mut new = text;
        if !new.is_empty() && !new.ends_with('\n') {
            new.push('\n');
        }
        new.push_str(&line);
        new.push('\n');
        let _ = std::fs::create_dir_all(file.parent().unwrap_or(Path::new(".")));
        std::fs::write(&file, new)
            .map_err(|e| WorktreeError::Io(format!("could not write {}: {e}", file.display())))
    }

    fn check_not_checked_out(&self) -> Result<(), WorktreeError> {
        let list = self.git.run(&["worktree", "list", "--porcelain"])?;
        let want = format!("branch {}", self.int_ref());
        let mut path = "";
        for line in list.lines() {
            if let Some(p) = line.strip_prefix("worktree ") {
                path = p;
            } else if line == want {
                return Err(WorktreeError::CheckedOut {
                    branch: self.config.branch.clone(),
                    path: path.to_owned(),
                });
            }
        }
        Ok(())
    }

    /// The merge commit of the integration branch that brought `task`'s work in, if any.
    pub fn landed(&self, task: &str, tip: &str) -> Result<Option<String>, WorktreeError> {
        let grep = format!("--grep=^Downbeat-Task: {task}$");
        let found = self.git.run(&[
            "log",
            "--first-parent",
            "--merges",
            "--format=%H",
            "-n1",
            &grep,
            tip,
        ])?;
        Ok((!found.is_empty()).then_some(found))
    }

    /// One path per task, whatever the attempt: agent CLIs keep sessions per directory, and
    /// a retry resumes the last attempt's session only from the same one.
    fn path_for(&self, task: &str) -> PathBuf {
        self.dir.join(task)
    }

    /// The branch of one attempt.
    pub fn branch_for(task: &str, attempt: u32) -> String {
        format!("{BRANCH_PREFIX}{task}-{attempt}")
    }

    /// A fresh worktree for one attempt, from the integration branch's tip; with `merge`
    /// (a resolver), that branch merged into it, conflicts left for the agent. `recorded` are
    /// the merges of the task the ledger knows: a merge of it that is not among them was made
    /// by a runner that died before recording it, and the attempt is not run again
    /// ([`Start::Landed`]); a recorded one means the task was reopened to be done again.
    pub fn prepare(
        &self,
        task: &str,
        attempt: u32,
        merge: Option<&str>,
        recorded: &[String],
    ) -> Result<Start, WorktreeError> {
        let tip = self.tip()?;
        if let Some(m) = self.landed(task, &tip)?
            && !recorded.contains(&m)
        {
            return Ok(Start::Landed(m));
        }
        let admin = self.admin.exclusive();
        let path = self.path_for(task);
        let branch = Self::branch_for(task, attempt);
        std::fs::create_dir_all(self.dir.join(POOL)).map_err(|e| {
            WorktreeError::Io(format!("could not create {}: {e}", self.dir.display()))
        })?;
        // The task's earlier attempt's worktree is reused in place; else an idle one from the
        // pool is moved here (a rename); else one is made (every file written: slow on a large
        // repository). Either way it is then checked out fresh, so only the files that differ
        // are written.
        if !self.registered(&path)? {
            if path.exists() {
                // Left by a runner killed while it was being made or removed.
                self.remove_unlocked(&path);
            }
            if !self.take_from_pool(&path)? {
                // Registered here, its files written below, outside the lock.
                let p = path.to_string_lossy().into_owned();
                self.git.run(&[
                    "worktree",
                    "add",
                    "--quiet",
                    "--force",
                    "--no-checkout",
                    "--detach",
                    &p,
                    &tip,
                ])?;
            }
        }
        drop(admin);
        // Other worktrees may be added meanwhile; the checkout reads their files.
        let _reading = self.admin.shared();
        let wt = Git::new(&path);
        if merging(&path) {
            let _ = wt.output(&["merge", "--abort"], None)?;
        }
        wt.run(&["checkout", "--quiet", "--force", "-B", &branch, &tip])?;
        wt.run(&["clean", "-ffdq"])?;
        let mut conflicts = Vec::new();
        if let Some(from) = merge {
            let wt = Git::new(&path);
            let args = ["merge", "--no-ff", "--no-commit", "--quiet", from];
            let out = wt.output(&args, Some(&Identity::downbeat()))?;
            conflicts = lines(&wt.run(&["diff", "--name-only", "--diff-filter=U"])?);
            if !out.status.success() && conflicts.is_empty() {
                return Err(wt.failed(&args, &out).into());
            }
        }
        Ok(Start::Ready(Prepared {
            path,
            branch,
            base: tip,
            conflicts,
        }))
    }

    /// The worktree `prepare` made for attempt `attempt` of `task`, if it is still there
    /// (work claimed by an MCP client ends in another call than the one that prepared it).
    pub fn resume(&self, task: &str, attempt: u32) -> Result<Option<Prepared>, WorktreeError> {
        let path = self.path_for(task);
        let branch = Self::branch_for(task, attempt);
        let found = {
            let _admin = self.admin.exclusive();
            self.list_unlocked()?
                .into_iter()
                .any(|(t, n, p)| t == task && n == attempt && p == path)
        };
        if !found {
            return Ok(None);
        }
        // Where the branch was created: the oldest entry of its log.
        let r = format!("refs/heads/{branch}");
        let log = self.git.run(&["reflog", "show", "--format=%H", &r])?;
        let Some(base) = log.lines().last().map(str::to_owned) else {
            return Ok(None);
        };
        let wt = Git::new(&path);
        // A resolver's merge: every file it changed is checked for markers left behind.
        let conflicts = if merging(&path) {
            lines(&wt.run(&["diff", "--name-only", "HEAD"])?)
        } else {
            Vec::new()
        };
        Ok(Some(Prepared {
            path,
            branch,
            base,
            conflicts,
        }))
    }

    /// Commits what the attempt left uncommitted and merges its branch into the integration
    /// branch. A conflict is an answer ([`MergeState::Conflict`], files named), not an error;
    /// the worktree is removed unless the work is not merged.
    pub fn integrate(&self, p: &Prepared, t: &TaskInfo<'_>) -> Result<GitWork, WorktreeError> {
        let wt = Git::new(&p.path);
        let who = Identity::role(t.role);
        for f in &p.conflicts {
            if has_markers(&p.path.join(f)) {
                return Err(WorktreeError::MarkersLeft(f.clone()));
            }
        }
        wt.run(&["add", "--all"])?;
        // Nothing staged and no merge to conclude: git says so and commits nothing.
        let msg = t.commit_message(&p.branch);
        let args = ["commit", "--quiet", "--no-verify", "-m", &msg];
        let out = wt.output(&args, Some(&who))?;
        if !out.status.success() && (merging(&p.path) || !nothing_to_commit(&out)) {
            return Err(wt.failed(&args, &out).into());
        }
        let head = wt.commit_of("HEAD")?.ok_or(WorktreeError::NoCommit)?;
        let mut work = GitWork {
            branch: p.branch.clone(),
            base: p.base.clone(),
            ..GitWork::default()
        };
        if head == p.base {
            work.state = MergeState::Unchanged;
            self.recycle(&p.path);
            return Ok(work);
        }
        let stat = wt.run(&["diff", "--shortstat", &p.base, &head])?;
        (work.files, work.insertions, work.deletions) = parse_shortstat(&stat);
        work.head = Some(head.clone());
        if let Some(remote) = &self.config.remote {
            let spec = format!("{head}:refs/heads/{}", p.branch);
            let out = self.push(remote, &spec)?;
            if !out.status.success() {
                return Err(self.git.failed(&["push", remote, &spec], &out).into());
            }
        }
        self.merge(&head, t, &p.branch, &mut work)?;
        if work.state == MergeState::Merged {
            self.recycle(&p.path);
        }
        Ok(work)
    }

    /// Merges `head` into the integration branch, trying again while others move it.
    fn merge(
        &self,
        head: &str,
        t: &TaskInfo<'_>,
        branch: &str,
        work: &mut GitWork,
    ) -> Result<(), WorktreeError> {
        let _one = self.merging.lock().unwrap_or_else(|e| e.into_inner());
        let _shared = match &self.shared_lock {
            Some(l) => Some(
                l.acquire()
                    .map_err(|e| WorktreeError::Io(format!("the merge lock: {e}")))?,
            ),
            None => None,
        };
        let who = Identity::role(t.role);
        for _ in 0..MAX_TRIES {
            let tip = self.tip()?;
            if self
                .git
                .check(&["merge-base", "--is-ancestor", head, &tip])?
            {
                work.state = MergeState::Merged;
                work.merge = Some(tip);
                return Ok(());
            }
            let args = [
                "merge-tree",
                "--write-tree",
                "--name-only",
                "--no-messages",
                &tip,
                head,
            ];
            let out = self.git.output(&args, None)?;
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            match out.status.code() {
                Some(0) => {}
                Some(1) => {
                    work.state = MergeState::Conflict;
                    work.conflicts = lines(&text).into_iter().skip(1).collect();
                    return Ok(());
                }
                _ => return Err(self.git.failed(&args, &out).into()),
            }
            let tree = text.lines().next().unwrap_or_default().trim().to_owned();
            let msg = t.merge_message(branch);
            let commit = self.git.run_as(
                &["commit-tree", &tree, "-p", &tip, "-p", head, "-m", &msg],
                Some(&who),
            )?;
            let moved = match &self.config.remote {
                Some(remote) => {
                    let spec = format!("{commit}:{}", self.int_ref());
                    self.push(remote, &spec)?.status.success()
                }
                None => {
                    let r = self.int_ref();
                    let m = format!("downbeat: merge task {}", t.id);
                    self.git
                        .output(&["update-ref", "-m", &m, &r, &commit, &tip], None)?
                        .status
                        .success()
                }
            };
            if moved {
                work.state = MergeState::Merged;
                work.merge = Some(commit);
                return Ok(());
            }
        }
        Err(WorktreeError::Contended(MAX_TRIES))
    }

    /// Whether `path` is one of the repository's worktrees.
    fn registered(&self, path: &Path) -> Result<bool, WorktreeError> {
        let list = self.git.run(&["worktree", "list", "--porcelain"])?;
        Ok(list
            .lines()
            .filter_map(|l| l.strip_prefix("worktree "))
            .any(|p| Path::new(p) == path))
    }

    /// Moves an idle worktree of the pool to `path`; `false` when the pool is empty.
    fn take_from_pool(&self, path: &Path) -> Result<bool, WorktreeError> {
        let pool = self.dir.join(POOL);
        let idle: Vec<PathBuf> = std::fs::read_dir(&pool)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        let to = path.to_string_lossy().into_owned();
        for from in idle {
            let f = from.to_string_lossy().into_owned();
            if self.git.check(&["worktree", "move", &f, &to])? {
                return Ok(true);
            }
            self.remove_unlocked(&from);
        }
        Ok(false)
    }

    /// Puts a worktree whose work is merged into the pool for a later attempt, or removes it
    /// when the pool is full.
    pub fn recycle(&self, path: &Path) {
        let _admin = self.admin.exclusive();
        let pool = self.dir.join(POOL);
        let idle = std::fs::read_dir(&pool).map(|d| d.count()).unwrap_or(0);
        let n = self
            .pooled
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let to = pool.join(format!("{}-{n}", std::process::id()));
        let (from, to) = (
            path.to_string_lossy().into_owned(),
            to.to_string_lossy().into_owned(),
        );
        // Still on its branch: nobody else checks that branch out, and the next attempt
        // moves it to its own.
        let kept = idle < POOL_SIZE
            && self
                .git
                .check(&["worktree", "move", &from, &to])
                .unwrap_or(false);
        if !kept {
            self.remove_unlocked(path);
        }
    }

    /// Removes the pool's idle worktrees; returns how many.
    pub fn drain_pool(&self) -> usize {
        let _admin = self.admin.exclusive();
        let idle: Vec<PathBuf> = std::fs::read_dir(self.dir.join(POOL))
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        for p in &idle {
            self.remove_unlocked(p);
        }
        idle.len()
    }

    /// Removes one worktree (its branch stays).
    pub fn remove(&self, path: &Path) {
        let _admin = self.admin.exclusive();
        self.remove_unlocked(path);
    }

    fn remove_unlocked(&self, path: &Path) {
        let p = path.to_string_lossy().into_owned();
        let removed = self
            .git
            .check(&["worktree", "remove", "--force", "--force", &p])
            .unwrap_or(false);
        if !removed {
            let _ = std::fs::remove_dir_all(path);
            let _ = self.git.check(&["worktree", "prune"]);
        }
    }

    /// The worktrees Downbeat made, as (task id, attempt, path).
    pub fn list(&self) -> Result<Vec<(String, u32, PathBuf)>, WorktreeError> {
        let _admin = self.admin.exclusive();
        self.list_unlocked()
    }

    fn list_unlocked(&self) -> Result<Vec<(String, u32, PathBuf)>, WorktreeError> {
        let mut out = Vec::new();
        let list = self.git.run(&["worktree", "list", "--porcelain"])?;
        let mut path: Option<PathBuf> = None;
        for line in list.lines() {
            if let Some(p) = line.strip_prefix("worktree ") {
                path = Some(PathBuf::from(p)).filter(|p| p.parent() == Some(self.dir.as_path()));
            } else if let (Some(p), Some(b)) = (&path, line.strip_prefix("branch refs/heads/"))
                && let Some((task, n)) = b
                    .strip_prefix(BRANCH_PREFIX)
                    .and_then(|r| r.rsplit_once('-'))
                && let Ok(n) = n.parse()
            {
                out.push((task.to_owned(), n, p.clone()));
            }
        }
        Ok(out)
    }

    /// Removes every worktree of `task` (earlier attempts' kept for inspection).
    pub fn remove_task(&self, task: &str) -> Result<usize, WorktreeError> {
        let _admin = self.admin.exclusive();
        self.remove_task_unlocked(task)
    }

    fn remove_task_unlocked(&self, task: &str) -> Result<usize, WorktreeError> {
        let mut n = 0;
        for (t, _, path) in self.list_unlocked()? {
            if t == task {
                self.remove_unlocked(&path);
                n += 1;
            }
        }
        Ok(n)
    }

    /// `git diff` of an attempt's work: from what it started from to its last commit.
    pub fn diff(&self, base: &str, head: &str, stat: bool) -> Result<String, WorktreeError> {
        let mut args = vec!["diff", "--no-color"];
        if stat {
            args.push("--stat");
        }
        args.extend([base, head]);
        Ok(self.git.run(&args)?)
    }

    /// Brings the integration branch into `into` (default: the checked-out branch).
    pub fn land(&self, into: Option<&str>) -> Result<Landed, LandError> {
        if let Some(r) = &self.config.remote {
            self.fetch(r).map_err(|e| match e {
                WorktreeError::Git(g) => LandError::Git(g),
                other => LandError::Fetch(other.to_string()),
            })?;
        }
        land::land(&self.git, &self.tip_ref(), &self.config.branch, into)
    }

    /// The merge commits on the integration branch since `since` (oldest first), as
    /// (commit, subject).
    pub fn merges_since(
        &self,
        since: Option<&str>,
    ) -> Result<Vec<(String, String)>, WorktreeError> {
        let tip = self.tip()?;
        let range = match since {
            Some(s) => format!("{s}..{tip}"),
            None => tip,
        };
        let text = self.git.run(&[
            "log",
            "--first-parent",
            "--merges",
            "--reverse",
            "--format=%H %s",
            &range,
        ])?;
        Ok(text
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(h, s)| (h.to_owned(), s.to_owned()))
            .collect())
    }
}

fn lines(s: &str) -> Vec<String> {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Whether the worktree at `path` is in the middle of a merge (its `MERGE_HEAD` exists).
/// Whether git failed because another process held a ref or the refs' lock file: worth
/// trying again.
fn ref_contended(stderr: &str) -> bool {
    stderr.contains("cannot lock ref")
        || (stderr.contains("Unable to create") && stderr.contains(".lock"))
}

fn merging(path: &Path) -> bool {
    let dot_git = path.join(".git");
    let dir = match std::fs::read_to_string(&dot_git) {
        Ok(text) => match text.trim().strip_prefix("gitdir: ") {
            Some(d) => path.join(d),
            None => return false,
        },
        Err(_) => dot_git,
    };
    dir.join("MERGE_HEAD").exists()
}

/// Whether `git commit` failed only because there was nothing to commit.
fn nothing_to_commit(out: &std::process::Output) -> bool {
    let text = String::from_utf8_lossy(&out.stdout);
    text.contains("nothing to commit") || text.contains("nothing added to commit")
}

/// Whether a file still holds merge conflict markers.
fn has_markers(path: &Path) -> bool {
    std::fs::read(path)
        .map(|b| {
            String::from_utf8_lossy(&b)
                .lines()
                .any(|l| l.starts_with("<<<<<<< ") || l.starts_with(">>>>>>> "))
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests;
