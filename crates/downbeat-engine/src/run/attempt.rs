//! One attempt's life outside the loop: its prompt rendered, its executor run, its artifacts
//! stored, its end sent back to the loop as a [`Done`]. Also which executor runs a task
//! ([`Resolver`]) and what the loop keeps of a running attempt ([`Running`]).
//!
//! Must never: write to the store (the loop records what an attempt returns) or block the loop.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use downbeat_core::ids::TaskId;
use downbeat_core::task::Task;

use super::held::HeldTask;
use super::places::{Places, Seat};
use downbeat_store::{ArtifactRecord, Claimed, Store};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::types::{Emitter, ResolveFn, Resolved, RunError, RunEvent, RunOptions};
use crate::artifacts;
use crate::config::RetryPolicy;
use crate::executor::{AgentReport, AttemptSpec, Outcome, OutcomeKind};
use crate::prompt_context::{Shared, render_prompt};
use crate::worktree::{Prepared, Start, TaskInfo, Worktrees, tags};
use downbeat_core::attempt::{GitWork, MergeState};

/// An attempt's report back to the loop.
pub(super) struct Done {
    pub(super) claim: Claimed,
    pub(super) outcome: Outcome,
    pub(super) artifacts: Vec<ArtifactRecord>,
    /// Whether the attempt took a place and ran: one claimed ahead may be given back before
    /// it starts (see [`Running::release`]).
    pub(super) started: bool,
    /// The waiting attempt its place went to, if any (see [`Places::pass_on`]).
    pub(super) next: Option<TaskId>,
}

/// What the loop keeps of a running attempt.
pub(super) struct Running {
    pub(super) claim: Claimed,
    pub(super) cancel: CancellationToken,
    pub(super) retry: RetryPolicy,
    pub(super) role: Option<String>,
    pub(super) footprint: Vec<String>,
    /// Its place in line: a claim taken ahead waits there for a place (see
    /// [`Attempts::start`]).
    seat: Arc<Seat>,
    /// Cancelled to give back a claim that has not started: the task returns to pending.
    pub(super) release: CancellationToken,
    /// When the claim was won.
    pub(super) claimed: Instant,
    /// Its start, until announced: a claim taken ahead is announced when the loop hears of
    /// the end whose place it took (see [`Attempts::ended`]).
    announce: Option<RunEvent>,
}

impl Running {
    /// Claimed ahead and still waiting for a place.
    pub(super) fn waiting(&self) -> bool {
        self.seat.waiting()
    }
}

/// Executors resolved once per distinct (executor setting, role) pair.
#[derive(Default)]
pub(super) struct Resolver {
    cache: HashMap<(Option<String>, Option<String>), Resolved>,
}

impl Resolver {
    pub(super) fn get(&mut self, f: &ResolveFn, task: &Task) -> Result<&Resolved, RunError> {
        let key = (task.exec.executor.clone(), task.role.clone());
        self.get_by(f, key, || std::borrow::Cow::Borrowed(task))
    }

    /// [`Resolver::get`] for a task the loop holds: a whole task is made only when its pair
    /// is new.
    pub(super) fn held(&mut self, f: &ResolveFn, task: &HeldTask) -> Result<&Resolved, RunError> {
        let key = (
            task.exec().executor.clone(),
            task.role.as_deref().map(str::to_owned),
        );
        self.get_by(f, key, || std::borrow::Cow::Owned(task.to_task()))
    }

    fn get_by<'t>(
        &mut self,
        f: &ResolveFn,
        key: (Option<String>, Option<String>),
        task: impl FnOnce() -> std::borrow::Cow<'t, Task>,
    ) -> Result<&Resolved, RunError> {
        if !self.cache.contains_key(&key) {
            let task = task();
            let r = f(&task)
                .map_err(|e| RunError::Config(format!("task {} ({}): {e}", task.id, task.title)))?;
            self.cache.insert(key.clone(), r);
        }
        Ok(&self.cache[&key])
    }

    /// Everything resolved so far.
    pub(super) fn into_resolved(self) -> Vec<Resolved> {
        self.cache.into_values().collect()
    }
}

/// The attempts in flight, and what starting one needs.
pub(super) struct Attempts {
    store: Arc<dyn Store>,
    opts: Arc<RunOptions>,
    /// The run's token: each attempt gets a child of it.
    cancel: CancellationToken,
    tx: mpsc::UnboundedSender<Done>,
    pub(super) running: HashMap<TaskId, Running>,
    /// The run's places: an attempt holds one while it works.
    places: Arc<Places>,
    /// What the prompts of the attempts started since [`Attempts::new_batch`] read alike.
    shared: Arc<Shared>,
}

impl Attempts {
    pub(super) fn new(
        store: Arc<dyn Store>,
        opts: Arc<RunOptions>,
        cancel: CancellationToken,
        tx: mpsc::UnboundedSender<Done>,
    ) -> Self {
        Self {
            places: Arc::new(Places::new(opts.concurrency)),
            store,
            opts,
            cancel,
            tx,
            running: HashMap::new(),
            shared: Arc::default(),
        }
    }

    /// The attempts started from now on were claimed together: their prompts share one read
    /// of what they read alike (see [`Shared`]).
    pub(super) fn new_batch(&mut self) {
        self.shared = Arc::default();
    }

    /// Records a claimed attempt as running and starts it: at once when a place is free, else
    /// (a claim taken ahead) as soon as one is, unless it is cancelled or given back first.
    /// `whole`: `task` has every field (else only the loop's, [`HeldTask::to_task`]).
    pub(super) fn start(
        &mut self,
        task: Task,
        whole: bool,
        r: Resolved,
        claim: Claimed,
        events: &Emitter,
    ) {
        let token = self.cancel.child_token();
        let release = CancellationToken::new();
        let seat = Arc::new(Seat::new(claim.task, token.clone(), release.clone()));
        let now = self.places.take(&seat);
        let announce = RunEvent::AttemptStarted {
            task: claim.task.to_string(),
            title: task.title.clone(),
            attempt: claim.number,
            executor: r.name.clone(),
        };
        let announce = if now {
            events.emit(announce);
            None
        } else {
            Some(announce)
        };
        self.running.insert(
            claim.task,
            Running {
                claim,
                cancel: token.clone(),
                retry: r.retry.clone(),
                role: task.role.clone(),
                footprint: task.footprint.clone(),
                seat: seat.clone(),
                release: release.clone(),
                claimed: Instant::now(),
                announce,
            },
        );
        let store = self.store.clone();
        let opts = self.opts.clone();
        let tx = self.tx.clone();
        let shared = self.shared.clone();
        let places = self.places.clone();
        tokio::spawn(async move {
            if !now && !seat.wait().await {
                let _ = tx.send(Done {
                    claim,
                    outcome: failure(OutcomeKind::Cancelled, NOT_STARTED.into()),
                    artifacts: Vec::new(),
                    started: false,
                    next: None,
                });
                return;
            }
            let reads = Reads {
                store: store.as_ref(),
                opts: &opts,
                shared: &shared,
            };
            let (outcome, artifacts) = attempt(reads, &task, whole, &r, claim, token).await;
            // The place goes to a waiting attempt at once; the loop hears of this end first.
            places.pass_on(|next| {
                let _ = tx.send(Done {
                    claim,
                    outcome,
                    artifacts,
                    started: true,
                    next,
                });
            });
        });
    }

    /// The loop heard of a started attempt's end (`next`: the waiting attempt its place went
    /// to): announces the start its place made, and frees the place if it went to nobody.
    pub(super) fn ended(&mut self, next: Option<TaskId>, events: &Emitter) {
        let next = next.or_else(|| self.places.free());
        if let Some(e) = next
            .and_then(|t| self.running.get_mut(&t))
            .and_then(|r| r.announce.take())
        {
            events.emit(e);
        }
    }

    /// Announces the start of an attempt that ends before the end that made room for it was
    /// heard of: not expected (an attempt gives its place up after sending its end), but an
    /// end is never announced without its start.
    pub(super) fn announce_late(&mut self, task: TaskId, events: &Emitter) {
        if let Some(e) = self.running.get_mut(&task).and_then(|r| r.announce.take()) {
            events.emit(e);
        }
    }

    /// Gives back the claims still waiting for a place (those claimed at least `age` ago): each
    /// ends as not started and its task returns to pending.
    pub(super) fn give_back_waiting(&self, age: Duration) {
        for r in self.running.values() {
            if r.waiting() && r.claimed.elapsed() >= age {
                r.release.cancel();
            }
        }
    }
}

/// Why an attempt claimed ahead did not run.
pub(super) const NOT_STARTED: &str = "given back before it started";

/// What an attempt reads besides its task: the store, the run's options, and what the
/// attempts of its batch read alike.
#[derive(Clone, Copy)]
struct Reads<'a> {
    store: &'a dyn Store,
    opts: &'a RunOptions,
    shared: &'a Shared,
}

/// Runs one attempt: renders its prompt (if the executor needs one), prepares its worktree
/// (if it works in one), runs the executor, stores the artifacts a successful attempt reports
/// (one that cannot be stored fails it) and integrates its work.
/// `whole`: `task` has every field (else only the loop's).
async fn attempt(
    reads: Reads<'_>,
    task: &Task,
    whole: bool,
    r: &Resolved,
    claim: Claimed,
    cancel: CancellationToken,
) -> (Outcome, Vec<ArtifactRecord>) {
    let Reads {
        store,
        opts,
        shared,
    } = reads;
    let prompt = if r.needs_prompt {
        match render_prompt(store, opts, task, whole, shared).await {
            Ok(p) => p,
            Err(e) => return (failure(OutcomeKind::Error, e), Vec::new()),
        }
    } else {
        String::new()
    };
    // What the ledger kept of earlier attempts: a retry resumes the last one's session, on any
    // machine, and the merges it recorded are known.
    let ledger = if claim.number > 1 {
        store.attempts(task.id).await.unwrap_or_default()
    } else {
        Vec::new()
    };
    let recorded: Vec<String> = ledger
        .iter()
        .filter_map(|a| a.detail.git.as_ref()?.merge.clone())
        .collect();
    let previous = ledger
        .into_iter()
        .rfind(|a| a.number < claim.number)
        .map(|a| a.detail);
    let isolation = isolation(opts, task, r);
    let prepared = match &isolation {
        Some((w, merge)) => match prepare(w, task, claim.number, merge.clone(), recorded).await {
            Ok(Start::Ready(p)) => Some(p),
            Ok(Start::Landed(commit)) => return (landed_already(commit), Vec::new()),
            Err(e) => return (failure(OutcomeKind::Error, e), Vec::new()),
        },
        None => None,
    };
    let workspace = prepared
        .as_ref()
        .map_or_else(|| opts.workspace.clone(), |p| p.path.clone());
    let spec = AttemptSpec {
        task_id: task.id.to_string(),
        title: task.title.clone(),
        role: task.role.clone(),
        attempt: claim.number,
        prompt,
        workspace: workspace.clone(),
        attempt_dir: opts
            .runs_dir
            .join(task.id.to_string())
            .join(claim.number.to_string()),
        timeout: task_timeout(task).or(r.timeout),
        env: std::iter::once((crate::executor::env::RUNNER.to_owned(), opts.holder.clone()))
            .chain(
                opts.agent_env
                    .iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.clone()?))),
            )
            .collect(),
        env_remove: opts
            .agent_env
            .iter()
            .filter(|(_, v)| v.is_none())
            .map(|(k, _)| k.clone())
            .collect(),
        previous,
    };
    let mut outcome = r.executor.run(&spec, cancel).await;
    scrub_outcome(&opts.scrub, &spec.attempt_dir, &mut outcome).await;
    let mut records = Vec::new();
    if outcome.kind == OutcomeKind::Succeeded
        && let Some(report) = &outcome.report
        && !report.artifacts.is_empty()
    {
        // Off the async threads: a large file must not hold up the runner.
        let (dir, limit) = (opts.artifacts_dir.clone(), opts.artifact_limit);
        let paths = report.artifacts.clone();
        let stored = tokio::task::spawn_blocking(move || {
            paths
                .iter()
                .map(|a| artifacts::store(&workspace, &dir, a, limit))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| e.to_string())
        })
        .await
        .unwrap_or_else(|e| Err(format!("could not store the artifacts: {e}")));
        match stored {
            Ok(recs) => records = recs,
            Err(e) => {
                outcome.kind = OutcomeKind::Failed;
                outcome.error = Some(e);
            }
        }
    }
    if let (Some((w, _)), Some(p)) = (isolation, prepared) {
        integrate(w, p, task, claim.number, &mut outcome).await;
    }
    (outcome, records)
}

/// Masks the runner's known secrets in what the attempt left: its output, result, reply and
/// agent record files (rewritten off the async threads), and the error and report the ledger keeps.
async fn scrub_outcome(secrets: &Arc<Vec<String>>, dir: &std::path::Path, outcome: &mut Outcome) {
    if secrets.is_empty() {
        return;
    }
    let (secrets2, dir) = (secrets.clone(), dir.to_owned());
    let _ = tokio::task::spawn_blocking(move || {
        use crate::executor::files;
        for name in [
            files::STDOUT,
            files::STDERR,
            files::RESULT,
            files::RESPONSE,
            crate::executor::agent::RECORD,
        ] {
            // A file that cannot be rewritten keeps what it has; the ledger is masked below.
            let _ = crate::scrub::file(&dir.join(name), &secrets2);
        }
    })
    .await;
    let mask = |s: &mut Option<String>| {
        if let Some(t) = s.as_mut() {
            *t = crate::scrub::text(t, secrets);
        }
    };
    mask(&mut outcome.error);
    if let Some(r) = outcome.report.as_mut() {
        mask(&mut r.summary);
        for f in &mut r.flags {
            f.detail = crate::scrub::text(&f.detail, secrets);
        }
    }
}

/// The worktrees an attempt of `task` works in, and the branch a resolver starts with merged:
/// a `worktree` / `no-worktree` tag decides, else the executor's default.
fn isolation(
    opts: &RunOptions,
    task: &Task,
    r: &Resolved,
) -> Option<(Arc<Worktrees>, Option<String>)> {
    let w = opts.worktrees.clone()?;
    tags::isolation(&task.tags, r.worktree).map(|merge| (w, merge))
}

async fn prepare(
    w: &Arc<Worktrees>,
    task: &Task,
    attempt: u32,
    merge: Option<String>,
    recorded: Vec<String>,
) -> Result<Start, String> {
    let (w, id) = (w.clone(), task.id.to_string());
    tokio::task::spawn_blocking(move || w.prepare(&id, attempt, merge.as_deref(), &recorded))
        .await
        .map_err(|e| format!("worktree: {e}"))?
        .map_err(|e| format!("worktree: {e}"))
}

/// Commits and merges a finished attempt's work; a successful attempt whose work cannot be
/// merged fails (the conflict policy decides what follows). A failed one keeps its worktree.
async fn integrate(w: Arc<Worktrees>, p: Prepared, task: &Task, n: u32, outcome: &mut Outcome) {
    if outcome.kind != OutcomeKind::Succeeded {
        outcome.detail.git = Some(GitWork {
            branch: p.branch,
            base: p.base,
            ..GitWork::default()
        });
        return;
    }
    let (id, title, role) = (task.id.to_string(), task.title.clone(), task.role.clone());
    let summary = outcome.report.as_ref().and_then(|r| r.summary.clone());
    let done = tokio::task::spawn_blocking(move || {
        let info = TaskInfo {
            id: &id,
            title: &title,
            attempt: n,
            role: role.as_deref(),
            summary: summary.as_deref(),
        };
        w.integrate(&p, &info).map_err(|e| e.to_string())
    })
    .await
    .unwrap_or_else(|e| Err(e.to_string()));
    match done {
        Ok(work) => {
            if work.state == MergeState::Conflict {
                outcome.kind = OutcomeKind::Failed;
                outcome.error = Some(format!(
                    "merge conflict with the integration branch in {}",
                    work.conflicts.join(", ")
                ));
            }
            outcome.detail.git = Some(work);
        }
        Err(e) => {
            outcome.kind = OutcomeKind::Failed;
            outcome.error = Some(format!("could not integrate the work: {e}"));
        }
    }
}

/// An attempt not run: an earlier one's merge is on the integration branch already.
fn landed_already(commit: String) -> Outcome {
    let mut o = Outcome::new(OutcomeKind::Succeeded, Duration::ZERO);
    o.report = Some(AgentReport {
        summary: Some(format!(
            "merged already in {} by an earlier attempt whose end was not recorded",
            &commit[..commit.len().min(12)]
        )),
        ..AgentReport::default()
    });
    o.detail.git = Some(GitWork {
        merge: Some(commit),
        state: MergeState::Merged,
        ..GitWork::default()
    });
    o
}

fn failure(kind: OutcomeKind, e: String) -> Outcome {
    let mut o = Outcome::new(kind, Duration::ZERO);
    o.error = Some(e);
    o
}

/// The task's own timeout, if it sets one.
fn task_timeout(task: &Task) -> Option<Duration> {
    task.exec.timeout
}

/// The ledger's name of an outcome.
pub(super) fn outcome_name(k: OutcomeKind) -> &'static str {
    match k {
        OutcomeKind::Succeeded => "succeeded",
        OutcomeKind::Failed => "failed",
        OutcomeKind::TimedOut => "timed-out",
        OutcomeKind::Cancelled => "cancelled",
        OutcomeKind::Error => "error",
    }
}
