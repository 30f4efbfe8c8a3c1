//! The dispatcher: the scheduler's loop and all its state.
//!
//! Each turn chooses claims from the ready heap, commits them with the attempt ends collected
//! since the last turn in one transaction, and starts the attempts it won. With nothing to
//! commit, it waits for one of a closed set of events ([`Wake`]) and handles it in a method of
//! its own: an attempt ended (its ends are gathered for a moment into one batch), a tick (leases
//! renewed, dead runners' tasks requeued, others' changes caught up), the change feed woke it, a
//! retry came due, the run was cancelled.
//!
//! Must never: run an attempt itself (attempts run in their own tasks and report back), block
//! between awaits, or leave the store behind the in-memory graph in a way a later commit cannot
//! correct (claims are conditional on what the store holds at commit time).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use downbeat_core::context::Actor;
use downbeat_core::flags;
use downbeat_core::ids::{LeaseEpoch, TaskId};
use downbeat_core::planner::{NodeIdx, NodeKind};
use downbeat_core::task::{Status, Task};
use downbeat_core::time::Timestamp;
use downbeat_store::{
    Batch, CapLimit, ChangeFeed, ClaimRequest, Claimed, EffectsDone, EventQuery, Finish,
    FinishStatus, Store,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::admission::{Holds, Occupied, held_back};
use super::attempt::{Attempts, Done, Resolver, outcome_name};
use super::graph::Graph;
use super::integration;
use super::loading::Loading;
use super::places::Pace;
use super::types::{Emitter, RunError, RunEvent, RunOptions, RunSummary};
use crate::config::{FailurePolicy, RetryPolicy};
use crate::executor::{AgentReport, Outcome, OutcomeKind};
use crate::host::holder_is_dead;
use crate::rules::{announce, completion_effects};

/// How long the loop keeps gathering attempt ends for one transaction while other attempts are
/// still in flight (longer while claims are taken ahead, see [`Pace::window`]). A lone attempt
/// (a chain) is committed at once.
const GATHER_WINDOW: Duration = Duration::from_millis(2);
/// A claim taken ahead that has not found a place within this is given back.
const GIVE_BACK_AFTER: Duration = Duration::from_secs(1);
/// At most this many attempt ends per transaction.
const MAX_BATCH: usize = 2048;
/// Foreign events read per check; more means a full reload instead.
const FOREIGN_BATCH: u32 = 5_000;
/// How often a runner returns expired leases of other holders to `pending`.
const REQUEUE_EVERY: Duration = Duration::from_secs(2);
/// How long the loop sleeps when no retry is due and nothing else wakes it.
const IDLE_WAIT: Duration = Duration::from_secs(3600);

/// What woke the loop.
enum Wake {
    /// An attempt ended (`None`: no attempt can ever report again).
    Done(Option<Box<Done>>),
    /// Time to renew leases and look at others' changes.
    Tick,
    /// The change feed signalled a commit (or broke).
    Feed(Result<(), downbeat_store::Error>),
    /// A retry may have come due.
    Timer,
    /// The run's token was cancelled.
    Cancelled,
    /// The whole graph is in (see [`Loading`]).
    Loaded(Box<Result<Graph, RunError>>),
}

/// Attempt ends collected since the last commit.
#[derive(Default)]
struct Turn {
    finishes: Vec<Finish>,
    /// Tasks completed in `finishes`: claims of the tasks they freed wait on them.
    completed: Vec<TaskId>,
    /// Ends whose reports and failure policy are applied once the commit accepted them.
    post: Vec<(Claimed, Outcome)>,
    /// A completion whose flag rules could not be applied (a follow-up title that does not
    /// render): it commits without effects, then the run fails with this error.
    broken: Option<RunError>,
}

/// Claims chosen for the next commit, with their nodes.
#[derive(Default)]
struct Choice {
    claims: Vec<ClaimRequest>,
    nodes: Vec<NodeIdx>,
}

/// The scheduler's loop state.
pub(super) struct Dispatcher {
    store: Arc<dyn Store>,
    opts: Arc<RunOptions>,
    events: Emitter,
    cancel: CancellationToken,
    started: Instant,
    rx: mpsc::UnboundedReceiver<Done>,
    attempts: Attempts,
    resolver: Resolver,
    g: Graph,
    holds: Holds,
    turn: Turn,
    summary: RunSummary,
    /// Why the run is ending, once it is: nothing new starts.
    stopping: Option<String>,
    /// Log position up to which others' changes are in the graph.
    last_seen: i64,
    /// Claims another runner won: looked at again once its events are in.
    recheck: Vec<NodeIdx>,
    /// The caps as the store checks them: over every runner sharing the database.
    limits: Vec<CapLimit>,
    /// Groups the store found at their cap (others' tasks count there): none of their tasks is
    /// chosen again until others' changes have been looked at.
    full: HashSet<u32>,
    feed: Option<Box<dyn ChangeFeed>>,
    /// The whole graph, while it loads: `g` is provisional until then.
    loading: Option<Loading>,
    /// Whether attempts end short enough to claim ahead of free places.
    pace: Pace,
    tick: Duration,
    next_tick: Instant,
    next_requeue: Instant,
}

impl Dispatcher {
    /// Recovers what dead runners left, starts what is plainly ready, loads the graph and
    /// resolves every executor (bad configuration fails before anything else runs).
    pub(super) async fn start(
        store: Arc<dyn Store>,
        opts: RunOptions,
        events: mpsc::UnboundedSender<RunEvent>,
        cancel: CancellationToken,
    ) -> Result<Self, RunError> {
        let started = Instant::now();
        let opts = Arc::new(opts);
        let events = Emitter(events);
        // Recovery: leases that expired, and holders on this machine whose process is gone.
        let reason = "its previous runner is gone or its lease expired";
        requeue_dead(store.as_ref(), &opts, false, &events, reason).await?;

        let (tx, rx) = mpsc::unbounded_channel();
        let mut attempts = Attempts::new(store.clone(), opts.clone(), cancel.clone(), tx);
        let mut resolver = Resolver::default();
        // Changes committed after this point are caught up from the log, so the point is taken
        // before the holds and the graph are read: a hold added in between is not missed.
        let last_seen = store.last_event_seq().await?;
        let mut holds = Holds::load(store.as_ref(), &events).await?;
        let mut started_early = Vec::new();
        if opts.only.is_empty() && opts.until.is_none() && !cancel.is_cancelled() {
            let mut q = QuickStart {
                store: store.as_ref(),
                opts: &opts,
                attempts: &mut attempts,
                resolver: &mut resolver,
                events: &events,
            };
            started_early = q.run(&mut holds).await?;
        }

        // With attempts under way, the whole graph loads beside them and their plain ends
        // commit meanwhile: a large project completes work before its graph is in.
        let now = (opts.now)();
        let (g, loading) = if started_early.is_empty() {
            let g = Graph::reload(store.as_ref(), &opts, &attempts.running, now).await?;
            (g, None)
        } else {
            // A graph that loads within a moment (all but the largest) is simply waited for.
            let mut loading = Loading::start(store.clone(), opts.clone(), now);
            match tokio::time::timeout(opts.load_wait, loading.done()).await {
                Ok(g) => {
                    let mut g = g?;
                    g.settle_loaded(&[], &attempts.running, now);
                    (g, None)
                }
                Err(_) => (
                    Graph::provisional(started_early, &opts, now)?,
                    Some(loading),
                ),
            }
        };
        let tick = (opts.lease / 3)
            .min(Duration::from_millis(500))
            .max(Duration::from_millis(20));
        let feed = store.change_feed().await.ok().flatten();
        let limits = CapLimit::all(&opts.caps);
        let mut d = Self {
            store,
            opts,
            events,
            cancel,
            started,
            rx,
            attempts,
            resolver,
            g,
            holds,
            turn: Turn::default(),
            summary: RunSummary::default(),
            stopping: None,
            last_seen,
            recheck: Vec::new(),
            limits,
            full: HashSet::new(),
            feed,
            loading,
            pace: Pace::default(),
            tick,
            next_tick: Instant::now() + tick,
            next_requeue: Instant::now() + REQUEUE_EVERY,
        };
        if d.loading.is_none() {
            d.announce()?;
        }
        Ok(d)
    }

    /// Resolves the executor of every pending task (bad configuration fails the run here) and
    /// announces the run with the whole graph's counts.
    fn announce(&mut self) -> Result<(), RunError> {
        let pending = resolve_pending(&self.g, &self.opts, &mut self.resolver)?;
        let running = self.attempts.running.len();
        self.events.emit(RunEvent::Started {
            ready: self.g.ready.len(),
            running,
            pending: pending + running,
            concurrency: self.opts.concurrency,
        });
        Ok(())
    }

    /// The whole graph is in: it takes over from the provisional one, brought up to what this
    /// runner did meanwhile, and the ends set aside for it are collected.
    fn on_loaded(&mut self, loaded: Result<Graph, RunError>) -> Result<(), RunError> {
        let Some(mut loading) = self.loading.take() else {
            return Ok(());
        };
        let mut g = loaded?;
        g.settle_loaded(&loading.completed, &self.attempts.running, self.now());
        self.g = g;
        self.announce()?;
        for done in std::mem::take(&mut loading.held) {
            self.collect(done);
        }
        Ok(())
    }

    /// Runs the loop to its end and returns the summary.
    pub(super) async fn drive(mut self) -> Result<RunSummary, RunError> {
        loop {
            let next_retry = self.g.wake_retries(self.now());
            if self.stopping.is_some() || !self.holds.list.is_empty() {
                // Nothing new starts, or only what a hold lets run: claims waiting for a
                // place are given back.
                self.attempts.give_back_waiting(Duration::ZERO);
            }
            let choice = self.choose();
            if !self.turn.finishes.is_empty() || !choice.claims.is_empty() {
                self.commit(choice).await?;
                continue;
            }
            if self.is_over() {
                break;
            }
            match self.wait(next_retry).await {
                Wake::Done(None) => break,
                Wake::Done(Some(done)) => self.on_done(*done).await,
                Wake::Tick => self.on_tick().await?,
                Wake::Feed(result) => self.on_feed(result).await?,
                Wake::Timer => {}
                Wake::Cancelled => self.on_cancel(),
                Wake::Loaded(g) => self.on_loaded(*g)?,
            }
            // Holds: others' come in through the log; a task hold ends with its task.
            let g = &self.g;
            let ended = |t: TaskId| g.tasks.get(&t).is_some_and(|t| t.status.is_terminal());
            self.holds
                .settle(self.store.as_ref(), &self.events, ended)
                .await?;
        }
        Ok(self.finish())
    }

    fn now(&self) -> Timestamp {
        (self.opts.now)()
    }

    fn actor(&self) -> Actor {
        actor(&self.opts)
    }

    fn stopping_or_cancelled(&self) -> bool {
        self.stopping.is_some() || self.cancel.is_cancelled()
    }

    /// Chooses claims: best first, within the global limit, role caps, file footprints and
    /// holds; while attempts end short, also up to [`Dispatcher::ahead`] more, which wait for
    /// a place (see [`super::places`]).
    fn choose(&mut self) -> Choice {
        let mut choice = Choice::default();
        // A completion whose report changes the plan (a pausing or stopping flag, discovered
        // work that blocks dependents) is committed and applied before anything new starts.
        let rules = &self.opts.rules;
        // So is a merge conflict that adds a resolver the dependents must wait for.
        let hold = self.turn.post.iter().any(|(_, o)| {
            o.report
                .as_ref()
                .is_some_and(|r| flags::changes_plan(&r.flags, &r.discovered, rules))
                || integration::adds_resolver(o)
        });
        // A provisional graph has nothing ready; claims wait for the whole graph.
        if self.stopping_or_cancelled() || hold || self.loading.is_some() {
            return choice;
        }
        let mut deferred = Vec::new();
        let mut occupied = Occupied::default();
        let allowed = self.holds.allowed(Some(&self.g.tdag));
        for r in self.attempts.running.values() {
            occupied.take(r.role.as_deref(), &r.footprint, &self.opts.caps);
        }
        let ahead = self.ahead();
        while self.attempts.running.len() + choice.claims.len() < self.opts.concurrency + ahead {
            let Some(item) = self.g.ready.pop() else {
                break;
            };
            // Claims beyond the places wait for one: only tasks no cap or footprint counts.
            let beyond = self.attempts.running.len() + choice.claims.len() >= self.opts.concurrency;
            let v = item.3;
            let Some(task) = self.g.task_of(v).cloned() else {
                continue;
            };
            if task.status != Status::Pending {
                self.g.queued[v as usize] = false;
                continue;
            }
            let role = task.role.as_deref();
            let group = group_of(&self.opts, role);
            let full = group.is_some_and(|g| self.full.contains(&g));
            if full
                || (beyond && (group.is_some() || !task.footprint.is_empty()))
                || held_back(&allowed, task.id)
                || !occupied.admits(role, &task.footprint, &self.opts.caps)
            {
                deferred.push(item);
                continue;
            }
            let Ok(r) = self.resolver.held(&self.opts.resolve, &task) else {
                continue;
            };
            occupied.take(task.role.as_deref(), &task.footprint, &self.opts.caps);
            choice.claims.push(ClaimRequest {
                task: task.id,
                executor: r.name.clone(),
                // Only a task freed this turn depends on completions not yet committed.
                after: if self.g.fresh.contains(&v) {
                    self.turn.completed.clone()
                } else {
                    Vec::new()
                },
            });
            choice.nodes.push(v);
        }
        for d in deferred {
            self.g.ready.push(d);
        }
        choice
    }

    /// How many claims may wait for a place (see [`Pace::ahead`]); none while a hold is in
    /// force.
    fn ahead(&self) -> usize {
        if !self.holds.list.is_empty() {
            return 0;
        }
        self.pace.ahead(self.opts.concurrency, self.opts.stay)
    }

    /// One transaction for everything collected this turn and the claims chosen; then the
    /// accepted ends' reports and failure policy are applied and the won claims started.
    async fn commit(&mut self, choice: Choice) -> Result<(), RunError> {
        let lease_until = later(self.now(), self.opts.lease);
        // Who else waits on these ends is known only from the whole graph.
        let quiet = self.loading.is_none() && self.g.take_quiet(&self.turn.finishes);
        let batch = Batch {
            finishes: std::mem::take(&mut self.turn.finishes),
            claims: choice.claims,
            holder: self.opts.holder.clone(),
            lease_until,
            quiet,
            holds_seen: Some(self.holds.seen),
            caps: self.limits.clone(),
        };
        let res = self.store.commit_batch(&batch, &self.actor()).await?;
        if let Some(e) = self.turn.broken.take() {
            return Err(e);
        }
        let rejected: HashSet<TaskId> = res.rejected.iter().copied().collect();
        self.summary.rejected += rejected.len() as u64;
        let mut reload = !rejected.is_empty();
        let done: HashMap<TaskId, &EffectsDone> = res.effects.iter().map(|d| (d.task, d)).collect();
        for (claim, outcome) in std::mem::take(&mut self.turn.post) {
            let fx = batch
                .finishes
                .iter()
                .find(|f| f.task == claim.task)
                .zip(done.get(&claim.task))
                .map(|(f, d)| (f.effects.as_slice(), *d));
            reload |= self.settle_end(claim, outcome, &rejected, fx).await?;
        }
        self.turn.completed.clear();
        self.g.fresh.clear();
        self.attempts.new_batch();
        for c in &res.claimed {
            if choice
                .nodes
                .iter()
                .any(|&v| self.g.tdag.owner[v as usize] == c.task)
            {
                self.start_claimed(*c)?;
            }
        }
        if res.held {
            // A hold this runner had not seen: read the holds, and choose again.
            self.holds
                .refresh(self.store.as_ref(), &self.events)
                .await?;
        }
        for t in &res.not_claimed {
            if let Some(&v) = self.g.node_of.get(t) {
                self.g.queued[v as usize] = false;
                if res.capped.contains(t) {
                    // Others run the group's places: ready again, chosen once they may end.
                    let group = self
                        .g
                        .task_of(v)
                        .and_then(|t| group_of(&self.opts, t.role.as_deref()));
                    self.full.extend(group);
                    let now = self.now();
                    self.g.consider(v, now);
                } else if res.held {
                    let now = self.now();
                    self.g.consider(v, now);
                } else {
                    self.recheck.push(v);
                }
            }
        }
        if reload && self.stopping.is_none() && self.loading.is_none() {
            self.reload().await?;
        }
        Ok(())
    }

    /// Starts the attempt of a claim this runner won.
    fn start_claimed(&mut self, c: Claimed) -> Result<(), RunError> {
        let Some(t) = self.g.tasks.get_mut(&c.task) else {
            return Ok(());
        };
        t.status = Status::Running;
        // The loop's fields only: the attempt reads the rest if its prompt shows the task.
        let task = t.to_task();
        let r = self.resolver.get(&self.opts.resolve, &task)?.clone();
        self.attempts.start(task, false, r, c, &self.events);
        Ok(())
    }

    /// After the commit: announces what an accepted end's effects did (committed with it), or
    /// applies the failure policy to a task that failed for good. Returns whether the graph
    /// must be loaded again.
    async fn settle_end(
        &mut self,
        claim: Claimed,
        outcome: Outcome,
        rejected: &HashSet<TaskId>,
        effects: Option<(&[flags::Effect], &EffectsDone)>,
    ) -> Result<bool, RunError> {
        let Some(&v) = self.g.node_of.get(&claim.task) else {
            return Ok(false);
        };
        if rejected.contains(&claim.task) {
            self.events.emit(RunEvent::LeaseLost {
                task: claim.task.to_string(),
            });
            return Ok(false);
        }
        if outcome.kind == OutcomeKind::Succeeded {
            return match effects {
                Some((effects, done)) => self.apply_report(effects, done).await,
                None => Ok(false),
            };
        }
        let failed = self
            .g
            .tasks
            .get(&claim.task)
            .is_some_and(|t| t.status == Status::Failed);
        if failed {
            return self.apply_failure_policy(claim.task, v).await;
        }
        Ok(false)
    }

    /// The effects of a completion and its report, computed before it commits (with the
    /// dependents of the in-memory graph): a follow-up handles its flags, the report's flags
    /// go through the rules. `None` when they cannot be (the run fails after the commit).
    fn report_effects(
        &mut self,
        task: TaskId,
        report: Option<&AgentReport>,
    ) -> Option<Vec<flags::Effect>> {
        let none = AgentReport::default();
        let report = report.unwrap_or(&none);
        let (title, lineage) = self
            .g
            .tasks
            .get(&task)
            .map(|t| (t.title.clone(), flags::lineage_of(&t.tags)))
            .unwrap_or_default();
        if lineage.is_empty() && report.flags.is_empty() && report.discovered.is_empty() {
            return Some(Vec::new());
        }
        let needs_dependents =
            !report.flags.is_empty() || report.discovered.iter().any(|d| d.blocks_dependents);
        let dependents = match self.g.node_of.get(&task) {
            Some(&v) if needs_dependents => self.g.dependent_tasks(v),
            _ => Vec::new(),
        };
        let completion = flags::Completion {
            task,
            title: &title,
            flags: &report.flags,
            discovered: &report.discovered,
            dependents: &dependents,
            lineage: &lineage,
            max_depth: self.opts.flag_depth,
        };
        match completion_effects(&self.opts.rules, &completion) {
            Ok(fx) => Some(fx),
            Err(e) => {
                self.turn.broken.get_or_insert(e);
                None
            }
        }
    }

    /// Announces what a completed task's effects did and takes in their stop and holds.
    /// Returns whether the graph changed.
    async fn apply_report(
        &mut self,
        effects: &[flags::Effect],
        done: &EffectsDone,
    ) -> Result<bool, RunError> {
        let events = &self.events;
        let emit = |e: RunEvent| events.emit(e);
        let fx = announce(effects, done, &emit);
        if let Some(reason) = fx.stop {
            self.stopping = Some(reason);
        }
        if !fx.holds.is_empty() {
            // Read back with the others' and the last number, so the next claims are not
            // refused for this runner's own hold.
            self.holds.list.extend(fx.holds);
            self.holds
                .refresh(self.store.as_ref(), &self.events)
                .await?;
        }
        Ok(fx.changed)
    }

    /// What a task that failed for good does to the rest of the run. Returns whether the
    /// graph changed.
    async fn apply_failure_policy(&mut self, task: TaskId, v: NodeIdx) -> Result<bool, RunError> {
        match self.opts.failure {
            FailurePolicy::Continue => Ok(false),
            FailurePolicy::Stop => {
                if self.stopping.is_none() {
                    let reason = format!("task {task} failed and the failure policy is `stop`");
                    self.events.emit(RunEvent::Stopping {
                        reason: reason.clone(),
                    });
                    self.stopping = Some(reason);
                }
                Ok(false)
            }
            FailurePolicy::SkipDependents => {
                let mut changed = false;
                for d in self.g.dependents(v) {
                    let id = self.g.tdag.owner[d as usize];
                    let pending = self
                        .g
                        .tasks
                        .get(&id)
                        .is_some_and(|t| t.status == Status::Pending);
                    if !pending {
                        continue;
                    }
                    let note = format!("dependency {task} failed");
                    self.store
                        .set_status(id, Status::Cancelled, Some(&note), &self.actor())
                        .await?;
                    self.summary.cancelled += 1;
                    self.events.emit(RunEvent::Cancelled {
                        task: id.to_string(),
                        reason: note,
                    });
                    changed = true;
                }
                Ok(changed)
            }
        }
    }

    /// Whether the run is over: nothing runs, nothing can start (ready tasks a hold keeps back
    /// do not count) and no retry is due, or the run is stopping; a worker waits for new work
    /// until it is cancelled or stopped.
    fn is_over(&mut self) -> bool {
        if self.loading.is_some() {
            return false;
        }
        let running = !self.attempts.running.is_empty();
        let held = !running && !self.holds.list.is_empty() && {
            let allowed = self.holds.allowed(Some(&self.g.tdag));
            self.g
                .ready
                .iter()
                .all(|item| held_back(&allowed, self.g.tdag.owner[item.3 as usize]))
        };
        let ending = self.stopping_or_cancelled();
        let nothing_ready = held || self.g.ready.is_empty() || ending;
        let idle = !running && nothing_ready && (self.g.retry_at.is_empty() || held || ending);
        if !idle || (self.opts.stay && !ending) {
            return false;
        }
        if held && !ending {
            self.stopping = self.holds.reason();
        }
        true
    }

    /// Waits for an attempt to end, a tick, the change feed, a retry, or cancellation.
    async fn wait(&mut self, next_retry: Option<Timestamp>) -> Wake {
        let now = self.now();
        let wake = next_retry.map_or(IDLE_WAIT, |at| until(now, at));
        let until_tick = self.next_tick.saturating_duration_since(Instant::now());
        let has_feed = self.feed.is_some();
        let feed = self.feed.as_mut();
        let rx = &mut self.rx;
        let cancel = &self.cancel;
        let interrupted = self.summary.interrupted;
        let loading = self.loading.as_mut();
        let is_loading = loading.is_some();
        tokio::select! {
            loaded = async { loading.expect("guarded").done().await }, if is_loading => {
                Wake::Loaded(Box::new(loaded))
            }
            got = rx.recv() => Wake::Done(got.map(Box::new)),
            _ = tokio::time::sleep(until_tick) => Wake::Tick,
            changed = async { feed.expect("guarded").changed().await }, if has_feed => {
                Wake::Feed(changed)
            }
            _ = tokio::time::sleep(wake) => Wake::Timer,
            _ = cancel.cancelled(), if !interrupted => Wake::Cancelled,
        }
    }

    /// An attempt ended: records it, and while other attempts are in flight gathers their ends
    /// for a short window so one transaction records many of them (group commit).
    async fn on_done(&mut self, done: Done) {
        self.collect(done);
        let (j, worker) = (self.opts.concurrency, self.opts.stay);
        let window_end = Instant::now() + self.pace.window(j, worker, GATHER_WINDOW);
        loop {
            while let Ok(done) = self.rx.try_recv() {
                self.collect(done);
            }
            if self.attempts.running.is_empty() || self.turn.finishes.len() >= MAX_BATCH {
                break;
            }
            let left = window_end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match tokio::time::timeout(left, self.rx.recv()).await {
                Ok(Some(done)) => self.collect(done),
                _ => break,
            }
        }
    }

    /// Turns an attempt's end into a `Finish` for the next commit and updates the in-memory
    /// graph optimistically.
    fn collect(&mut self, done: Done) {
        if let Some(l) = self.loading.as_mut()
            && Loading::needs_graph(&self.opts, &done, self.cancel.is_cancelled())
        {
            l.held.push(done);
            return;
        }
        let Done {
            claim,
            outcome,
            artifacts,
            started,
            next,
        } = done;
        if !started {
            self.give_back(claim);
            return;
        }
        self.pace.ended(outcome.duration);
        self.attempts.announce_late(claim.task, &self.events);
        let policy = self
            .attempts
            .running
            .remove(&claim.task)
            .map(|r| r.retry)
            .unwrap_or_default();
        let task = self.g.tasks.get(&claim.task);
        let title = task.map(|t| t.title.to_string()).unwrap_or_default();
        let max_attempts = task
            .and_then(|t| t.exec().max_attempts)
            .unwrap_or(policy.max_attempts)
            .max(1);
        let interrupted = self.cancel.is_cancelled();
        let mut outcome = outcome;
        let policy_fx = match &self.opts.worktrees {
            Some(w) => {
                let g = &self.g;
                integration::on_conflict(w.config(), claim.task, &title, &mut outcome, || {
                    g.node_of.get(&claim.task).map_or_else(Vec::new, |&v| {
                        g.dependent_tasks(v).into_iter().map(|d| d.id).collect()
                    })
                })
            }
            None => integration::PolicyFx::default(),
        };
        if let Some(e) = integration::integrated(claim.task, &outcome) {
            self.events.emit(e);
        }
        let (status, label) = match outcome.kind {
            OutcomeKind::Failed if policy_fx.final_failure => (FinishStatus::Failed, "failed"),
            OutcomeKind::Succeeded => (FinishStatus::Completed, "completed"),
            OutcomeKind::Cancelled if interrupted => (FinishStatus::Requeue, "pending"),
            OutcomeKind::Cancelled => (FinishStatus::Cancelled, "cancelled"),
            OutcomeKind::Failed | OutcomeKind::TimedOut if claim.number < max_attempts => {
                let at = later(self.now(), retry_delay(&policy, &claim));
                (FinishStatus::Retry { not_before: at }, "retrying")
            }
            _ => (FinishStatus::Failed, "failed"),
        };
        let mut effects = match status {
            FinishStatus::Completed => self
                .report_effects(claim.task, outcome.report.as_ref())
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        effects.extend(policy_fx.effects);
        self.turn.finishes.push(Finish {
            task: claim.task,
            epoch: claim.epoch,
            attempt_id: claim.attempt_id,
            status,
            outcome: outcome_name(outcome.kind).into(),
            exit_code: outcome.exit_code,
            error: outcome.error.clone(),
            summary: outcome.report.as_ref().and_then(|r| r.summary.clone()),
            tokens: outcome
                .tokens
                .map(|t| (t.prompt as i64, t.completion as i64)),
            detail: outcome.detail.clone(),
            artifacts,
            effects,
        });
        self.events.emit(RunEvent::AttemptFinished {
            task: claim.task.to_string(),
            title,
            attempt: claim.number,
            outcome: outcome.kind,
            status: label.into(),
            error: outcome.error.clone(),
            millis: outcome.duration.as_millis() as u64,
        });
        self.record_end(&claim, status);
        self.turn.post.push((claim, outcome));
        self.attempts.ended(next, &self.events);
    }

    /// A claim taken ahead ended before it started: the task returns to pending, and no more
    /// claims are taken ahead until attempts end short again.
    fn give_back(&mut self, claim: Claimed) {
        self.attempts.running.remove(&claim.task);
        self.pace.gave_back();
        self.turn.finishes.push(Finish {
            task: claim.task,
            epoch: claim.epoch,
            attempt_id: claim.attempt_id,
            status: FinishStatus::Requeue,
            outcome: outcome_name(OutcomeKind::Cancelled).into(),
            exit_code: None,
            error: Some(super::attempt::NOT_STARTED.into()),
            summary: None,
            tokens: None,
            detail: Default::default(),
            artifacts: Vec::new(),
            effects: Vec::new(),
        });
        let now = self.now();
        self.g.requeue(claim.task, now);
    }

    /// The in-memory side of an attempt's end: counts, the task's status, what it frees.
    fn record_end(&mut self, claim: &Claimed, status: FinishStatus) {
        // Found by id: the graph may have been reloaded since the attempt started.
        let node = self.g.node_of.get(&claim.task).copied();
        let now = self.now();
        let new_status = match status {
            FinishStatus::Completed => {
                self.summary.completed += 1;
                if let Some(l) = self.loading.as_mut() {
                    l.completed.push(claim.task);
                }
                self.turn.completed.push(claim.task);
                if let Some(v) = node {
                    self.g.complete(v, now);
                }
                return;
            }
            FinishStatus::Retry { not_before } => {
                self.summary.retried += 1;
                self.events.emit(RunEvent::Retrying {
                    task: claim.task.to_string(),
                    attempt: claim.number + 1,
                    at: not_before.to_string(),
                    in_ms: until(self.now(), not_before).as_millis() as u64,
                });
                if let Some(t) = self.g.tasks.get_mut(&claim.task) {
                    t.not_before = Some(not_before);
                }
                self.g.requeue(claim.task, now);
                return;
            }
            FinishStatus::Failed => {
                self.summary.failed += 1;
                Status::Failed
            }
            FinishStatus::Cancelled => {
                self.summary.cancelled += 1;
                Status::Cancelled
            }
            FinishStatus::Requeue => {
                self.summary.stopped += 1;
                Status::Pending
            }
        };
        if let Some(t) = self.g.tasks.get_mut(&claim.task) {
            t.status = new_status;
        }
    }

    /// A tick: renews leases (a lost one cancels its attempt), requeues the tasks of runners
    /// that died (every [`REQUEUE_EVERY`]), catches up with others' changes.
    async fn on_tick(&mut self) -> Result<(), RunError> {
        self.next_tick = Instant::now() + self.tick;
        let until = later(self.now(), self.opts.lease);
        let held: HashMap<TaskId, LeaseEpoch> = self
            .store
            .renew_leases(&self.opts.holder, until)
            .await?
            .into_iter()
            .collect();
        self.attempts.give_back_waiting(GIVE_BACK_AFTER);
        for (t, r) in &self.attempts.running {
            if held.get(t) != Some(&r.claim.epoch) && !r.cancel.is_cancelled() {
                self.events.emit(RunEvent::LeaseLost {
                    task: t.to_string(),
                });
                r.cancel.cancel();
            }
        }
        // Others' changes wait for the whole graph (a provisional one would not find them).
        if self.stopping_or_cancelled() || self.loading.is_some() {
            return Ok(());
        }
        // Leases of runners that died elsewhere (or here) go back to pending.
        if Instant::now() >= self.next_requeue {
            self.next_requeue = Instant::now() + REQUEUE_EVERY;
            let reason = "its runner is gone or its lease expired";
            let requeued =
                requeue_dead(self.store.as_ref(), &self.opts, true, &self.events, reason).await?;
            let now = self.now();
            for t in requeued {
                if self.g.node_of.contains_key(&t) {
                    self.g.requeue(t, now);
                }
            }
        }
        self.catch_up().await
    }

    /// The change feed woke the loop; a broken feed (connection lost) leaves polling on the
    /// tick.
    async fn on_feed(&mut self, result: Result<(), downbeat_store::Error>) -> Result<(), RunError> {
        if result.is_err() {
            self.feed = None;
            return Ok(());
        }
        if self.stopping_or_cancelled() || self.loading.is_some() {
            return Ok(());
        }
        self.catch_up().await
    }

    fn on_cancel(&mut self) {
        self.summary.interrupted = true;
        self.events.emit(RunEvent::Stopping {
            reason: "interrupted".into(),
        });
        for r in self.attempts.running.values() {
            r.cancel.cancel();
        }
    }

    /// Brings the graph up to date with changes others committed since `last_seen`: status
    /// changes are applied in place, anything else reloads the graph.
    async fn catch_up(&mut self) -> Result<(), RunError> {
        // Sequence numbers follow commit order, so everything up to `hi` is already visible.
        let hi = self.store.last_event_seq().await?;
        if hi > self.last_seen {
            let foreign = self
                .store
                .events(&EventQuery {
                    after_seq: Some(self.last_seen),
                    exclude_actor: Some(self.opts.holder.clone()),
                    limit: Some(FOREIGN_BATCH),
                    ..Default::default()
                })
                .await?;
            let complete = foreign.len() < FOREIGN_BATCH as usize;
            let seen = foreign.iter().map(|e| e.seq).max().unwrap_or(0);
            self.holds.changed |=
                !complete || foreign.iter().any(|e| e.action.starts_with("hold."));
            if !complete || !self.g.apply_foreign(&foreign, self.now()) {
                self.reload().await?;
                self.recheck.clear();
            }
            // A reload reflects everything up to `hi` too.
            self.last_seen = hi.max(seen);
        }
        let now = self.now();
        for v in self.recheck.drain(..) {
            self.g.consider(v, now);
        }
        // Places others held may have been given up: try the full groups again.
        self.full.clear();
        Ok(())
    }

    async fn reload(&mut self) -> Result<(), RunError> {
        let now = self.now();
        self.g =
            Graph::reload(self.store.as_ref(), &self.opts, &self.attempts.running, now).await?;
        Ok(())
    }

    fn finish(mut self) -> RunSummary {
        self.summary.remaining = self.g.remaining();
        self.summary.interrupted |= self.cancel.is_cancelled();
        self.summary.stopped_by = self.stopping.take();
        self.summary.millis = self.started.elapsed().as_millis() as u64;
        self.events.emit(RunEvent::Finished(self.summary.clone()));
        self.summary
    }
}

/// Starting before the graph is loaded: loading a large graph takes a while, so tasks that are
/// plainly ready (a direct look at their blockers) start first. Their ends wait in the channel.
struct QuickStart<'a> {
    store: &'a dyn Store,
    opts: &'a RunOptions,
    attempts: &'a mut Attempts,
    resolver: &'a mut Resolver,
    events: &'a Emitter,
}

impl QuickStart<'_> {
    /// Claims and starts the first ready tasks found; returns them.
    async fn run(&mut self, holds: &mut Holds) -> Result<Vec<Task>, RunError> {
        let opts = self.opts;
        let limit = u32::try_from(opts.concurrency.saturating_mul(2)).unwrap_or(u32::MAX);
        let candidates = self.store.ready_tasks(limit, (opts.now)()).await?;
        let mut picked: Vec<Task> = Vec::new();
        let mut claims = Vec::new();
        let mut occupied = Occupied::default();
        // Before the graph is loaded, only the holds' own tasks may start.
        let allowed = holds.allowed(None);
        for task in candidates {
            if claims.len() >= opts.concurrency {
                break;
            }
            if !occupied.admits(task.role.as_deref(), &task.footprint, &opts.caps)
                || held_back(&allowed, task.id)
                || opts.accepts.as_ref().is_some_and(|a| !a(&task))
            {
                continue;
            }
            let r = self.resolver.get(&opts.resolve, &task)?;
            occupied.take(task.role.as_deref(), &task.footprint, &opts.caps);
            claims.push(ClaimRequest {
                task: task.id,
                executor: r.name.clone(),
                after: vec![],
            });
            picked.push(task);
        }
        if claims.is_empty() {
            return Ok(Vec::new());
        }
        let batch = Batch {
            finishes: vec![],
            claims,
            holder: opts.holder.clone(),
            lease_until: later((opts.now)(), opts.lease),
            quiet: false,
            holds_seen: Some(holds.seen),
            caps: CapLimit::all(&opts.caps),
        };
        let res = self.store.commit_batch(&batch, &actor(opts)).await?;
        if res.held {
            holds.refresh(self.store, self.events).await?;
        }
        let mut started = Vec::new();
        self.attempts.new_batch();
        for c in &res.claimed {
            let Some(mut task) = picked.iter().find(|t| t.id == c.task).cloned() else {
                continue;
            };
            task.status = Status::Running;
            let r = self.resolver.get(&opts.resolve, &task)?.clone();
            self.attempts.start(task.clone(), true, r, *c, self.events);
            started.push(task);
        }
        Ok(started)
    }
}

/// Resolves the executor of every pending task in scope this runner takes (bad configuration
/// fails the run before anything more starts); returns how many there are.
pub(super) fn resolve_pending(
    g: &Graph,
    opts: &RunOptions,
    resolver: &mut Resolver,
) -> Result<usize, RunError> {
    let mut pending = 0usize;
    for (v, &t) in g.tdag.owner.iter().enumerate() {
        if !g.in_scope[v] || g.tdag.dag.kind(v as NodeIdx) != NodeKind::Task || g.satisfied[v] {
            continue;
        }
        if let Some(task) = g
            .tasks
            .get(&t)
            .filter(|t| t.status == Status::Pending)
            .filter(|t| opts.accepts.as_ref().is_none_or(|a| a(&t.to_task())))
        {
            resolver.held(&opts.resolve, task)?;
            pending += 1;
        }
    }
    Ok(pending)
}

/// Returns to `pending` the tasks whose lease expired or whose holder is a process of this
/// machine that is gone (not counting this runner when `skip_self`), and kills the processes
/// their agents left behind. Announces each; returns the tasks.
async fn requeue_dead(
    store: &dyn Store,
    opts: &RunOptions,
    skip_self: bool,
    events: &Emitter,
    reason: &str,
) -> Result<Vec<TaskId>, RunError> {
    let dead: Vec<String> = store
        .lease_holders()
        .await?
        .into_iter()
        .filter(|h| !(skip_self && h == &opts.holder) && holder_is_dead(h))
        .collect();
    let orphans = crate::executor::process::kill_orphans(&dead);
    if orphans > 0 {
        events.emit(RunEvent::OrphansKilled { count: orphans });
    }
    let requeued = store
        .requeue_running(Some((opts.now)()), &dead, &actor(opts))
        .await?;
    for t in &requeued {
        events.emit(RunEvent::Requeued {
            task: t.to_string(),
            reason: reason.into(),
        });
    }
    Ok(requeued)
}

/// The capped group a task's role counts against, if any.
fn group_of(opts: &RunOptions, role: Option<&str>) -> Option<u32> {
    role.and_then(|r| opts.caps.group_of(r))
}

/// Who the run's changes are by, and when.
fn actor(opts: &RunOptions) -> Actor {
    Actor::new(opts.holder.clone(), (opts.now)())
}

/// The delay before the next attempt of a failed one.
fn retry_delay(policy: &RetryPolicy, claim: &Claimed) -> Duration {
    policy
        .delay_for(
            claim.number,
            u64::from(claim.task.seq()) ^ claim.attempt_id.0 as u64,
        )
        .unwrap_or(Duration::from_secs(1))
}

/// The moment `d` after `t`.
fn later(t: Timestamp, d: Duration) -> Timestamp {
    Timestamp(t.0 + d.as_millis() as i64)
}

/// How long from `now` until `at` (zero if it has passed).
fn until(now: Timestamp, at: Timestamp) -> Duration {
    Duration::from_millis((at.0 - now.0).max(0) as u64)
}
