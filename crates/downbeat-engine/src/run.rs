//! The scheduler: one event loop that claims ready tasks, runs their attempts in parallel and
//! records what happens, durably.
//!
//! Shape: the loop owns all scheduling state; each attempt runs in its own tokio task and
//! reports back over a channel. State changes are committed in groups: every turn of the loop
//! commits the finished attempts it has collected *and* the claims of the tasks they made ready
//! in one transaction (a claim is conditional on its dependencies being completed at commit
//! time, so an optimistic claim can never outrun a refused completion).
//!
//! Must never: print, read configuration files, or decide anything a task's settings or the
//! options do not say.

use std::collections::{BinaryHeap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use downbeat_core::context::Actor;
use downbeat_core::graph::{Caps, TaskDag};
use downbeat_core::ids::TaskId;
use downbeat_core::planner::{NodeIdx, NodeKind, NodeState, footprints_overlap};
use downbeat_core::task::{Edge, EdgeKind, NewTask, Priority, Status, Task, TaskPatch};
use downbeat_core::time::Timestamp;
use downbeat_store::{
    Batch, ClaimRequest, Claimed, EventQuery, Finish, FinishStatus, Hold, Store, TaskFilter,
};
use serde::Serialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::artifacts;
use crate::config::{FailurePolicy, FlagAction, FlagRule, RetryPolicy};
use crate::executor::{AgentReport, AttemptSpec, Executor, Outcome, OutcomeKind};
use crate::prompt::{self, DependencyResult, PromptContext, PromptTask};

/// How long the loop keeps gathering attempt ends for one transaction while other attempts are
/// still in flight. A lone attempt (a chain) is committed at once.
const GATHER_WINDOW: Duration = Duration::from_millis(2);
/// At most this many attempt ends per transaction.
const MAX_BATCH: usize = 2048;

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

/// Foreign events read per check; more means a full reload instead.
const FOREIGN_BATCH: u32 = 5_000;

/// How long an attempt keeps trying to read its prompt's context while the database is
/// unavailable.
const PROMPT_READ_PATIENCE: Duration = Duration::from_secs(60);

/// How often a runner returns expired leases of other holders to `pending`.
const REQUEUE_EVERY: Duration = Duration::from_secs(2);

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

/// Executors resolved once per distinct (executor setting, role) pair.
#[derive(Default)]
struct Resolver {
    cache: HashMap<(Option<String>, Option<String>), Resolved>,
}

impl Resolver {
    fn get(&mut self, f: &ResolveFn, task: &Task) -> Result<&Resolved, RunError> {
        let key = (task.exec.executor.clone(), task.role.clone());
        if !self.cache.contains_key(&key) {
            let r = f(task)
                .map_err(|e| RunError::Config(format!("task {} ({}): {e}", task.id, task.title)))?;
            self.cache.insert(key.clone(), r);
        }
        Ok(&self.cache[&key])
    }
}

/// An attempt's report back to the loop.
struct Done {
    claim: Claimed,
    outcome: Outcome,
    artifacts: Vec<downbeat_store::ArtifactRecord>,
}

struct Running {
    claim: Claimed,
    cancel: CancellationToken,
    retry: RetryPolicy,
    role: Option<String>,
    footprint: Vec<String>,
}

/// The loop's view of the graph.
struct Graph {
    tdag: TaskDag,
    tasks: HashMap<TaskId, Task>,
    node_of: HashMap<TaskId, NodeIdx>,
    unsat: Vec<u32>,
    satisfied: Vec<bool>,
    rank: Vec<u64>,
    in_scope: Vec<bool>,
    /// (remaining critical path, priority, tie-break, node): best first.
    ready: BinaryHeap<(u64, i32, u64, NodeIdx)>,
    /// Workers sharing a database break ties in an order of their own, so they rarely
    /// reach for the same task; a lone runner takes ties in graph order.
    salt: Option<u64>,
    queued: Vec<bool>,
    retry_at: Vec<(Timestamp, NodeIdx)>,
    accepts: Option<AcceptFn>,
    /// A task became free of its dependencies that this runner does not take now (another
    /// runner's role, outside the run's scope, or due later): the next commit wakes the others.
    handoff: bool,
    /// Tasks freed by completions not yet committed: their claims wait on those completions.
    fresh: HashSet<NodeIdx>,
}

impl Graph {
    async fn load(store: &dyn Store, opts: &RunOptions, now: Timestamp) -> Result<Self, RunError> {
        let tasks = store.tasks(&TaskFilter::default()).await?;
        let snap = downbeat_core::report::snapshot_of(&tasks, &store.edges().await?);
        let tdag = TaskDag::new(&snap, &|_| None)?;
        let dag = &tdag.dag;
        let n = dag.len();
        let mut node_of = HashMap::with_capacity(tasks.len());
        for (v, t) in tdag.owner.iter().enumerate() {
            if dag.kind(v as NodeIdx) == NodeKind::Task {
                node_of.insert(*t, v as NodeIdx);
            }
        }
        // Satisfaction and counts of unsatisfied predecessors, in topological order.
        let mut satisfied = vec![false; n];
        let mut unsat = vec![0u32; n];
        for &v in dag.topo_order() {
            let u = dag
                .preds(v)
                .iter()
                .filter(|&&p| !satisfied[p as usize])
                .count() as u32;
            unsat[v as usize] = u;
            satisfied[v as usize] = match dag.kind(v) {
                NodeKind::Task => dag.state(v) == NodeState::Done,
                _ => u == 0,
            };
        }
        // Remaining critical path through each node (effort-weighted), in reverse order.
        let mut rank = vec![0u64; n];
        for &v in dag.topo_order().iter().rev() {
            let own = if dag.kind(v) == NodeKind::Task && !satisfied[v as usize] {
                u64::from(dag.effort(v))
            } else {
                0
            };
            let best = dag
                .succs(v)
                .iter()
                .map(|&s| rank[s as usize])
                .max()
                .unwrap_or(0);
            rank[v as usize] = own + best;
        }
        let in_scope = scope(&tdag, &node_of, opts);
        let tasks: HashMap<TaskId, Task> = tasks.into_iter().map(|t| (t.id, t)).collect();
        let mut g = Self {
            tdag,
            tasks,
            node_of,
            unsat,
            satisfied,
            rank,
            in_scope,
            ready: BinaryHeap::new(),
            queued: vec![false; n],
            retry_at: Vec::new(),
            accepts: opts.accepts.clone(),
            handoff: false,
            fresh: HashSet::new(),
            salt: opts.stay.then(|| {
                opts.holder.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                    (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
                })
            }),
        };
        for v in 0..n as NodeIdx {
            g.consider(v, now);
        }
        Ok(g)
    }

    /// Applies status changes made by others; false when an event needs a full reload
    /// (structure changed, or a finished task was reopened).
    fn apply_foreign(&mut self, events: &[downbeat_core::context::Event], now: Timestamp) -> bool {
        for e in events {
            if e.action != "task.status" {
                if e.action.starts_with("task.")
                    || e.action.starts_with("edge.")
                    || e.action == "plan.applied"
                {
                    return false;
                }
                continue;
            }
            let Some(id) = TaskId::parse_short(&e.entity) else {
                return false;
            };
            let Some(&v) = self.node_of.get(&id) else {
                return false;
            };
            let after = e.after.as_ref();
            let Some(st) = after
                .and_then(|a| a.get("status"))
                .and_then(|s| s.as_str())
                .and_then(|s| s.parse::<Status>().ok())
            else {
                return false;
            };
            let i = v as usize;
            match st {
                Status::Completed | Status::Skipped if !self.satisfied[i] => self.complete(v, now),
                Status::Completed | Status::Skipped => {}
                _ if self.satisfied[i] => return false,
                _ => {}
            }
            if let Some(t) = self.tasks.get_mut(&id) {
                t.status = st;
                t.not_before = after
                    .and_then(|a| a.get("not_before"))
                    .and_then(|s| s.as_str())
                    .and_then(Timestamp::parse_rfc3339);
            }
            if st == Status::Pending {
                self.queued[i] = false;
                self.consider(v, now);
            }
        }
        true
    }

    fn tie(&self, v: NodeIdx) -> u64 {
        match self.salt {
            // splitmix64 of the node and the salt: a fixed, runner-specific shuffle.
            Some(salt) => {
                let mut z = (u64::from(v) ^ salt).wrapping_add(0x9e37_79b9_7f4a_7c15);
                z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                z ^ (z >> 31)
            }
            None => u64::MAX - u64::from(v),
        }
    }

    fn task_of(&self, v: NodeIdx) -> Option<&Task> {
        self.tasks.get(&self.tdag.owner[v as usize])
    }

    /// Queues `v` if it is a pending, in-scope task whose dependencies are all satisfied.
    fn consider(&mut self, v: NodeIdx, now: Timestamp) {
        let i = v as usize;
        if self.queued[i] || self.unsat[i] != 0 || self.tdag.dag.kind(v) != NodeKind::Task {
            return;
        }
        let Some(t) = self.task_of(v) else { return };
        if t.status != Status::Pending {
            return;
        }
        if !self.in_scope[i] || self.accepts.as_ref().is_some_and(|a| !a(t)) {
            self.handoff = true;
            return;
        }
        if let Some(nb) = t.not_before.filter(|nb| *nb > now) {
            self.retry_at.push((nb, v));
            self.queued[i] = true;
            self.handoff = true;
            return;
        }
        let prio = t.priority.rank();
        self.ready.push((self.rank[i], prio, self.tie(v), v));
        self.queued[i] = true;
    }

    /// Marks a task node done and queues what it unblocks.
    fn complete(&mut self, v: NodeIdx, now: Timestamp) {
        if let Some(t) = self.tasks.get_mut(&self.tdag.owner[v as usize]) {
            t.status = Status::Completed;
        }
        let mut stack = vec![v];
        self.satisfied[v as usize] = true;
        while let Some(u) = stack.pop() {
            let succs: Vec<NodeIdx> = self.tdag.dag.succs(u).to_vec();
            for s in succs {
                let si = s as usize;
                self.unsat[si] = self.unsat[si].saturating_sub(1);
                if self.unsat[si] == 0 {
                    if self.tdag.dag.kind(s) == NodeKind::Task {
                        self.fresh.insert(s);
                        self.consider(s, now);
                    } else if !self.satisfied[si] {
                        self.satisfied[si] = true;
                        stack.push(s);
                    }
                }
            }
        }
    }

    /// Whether a commit of these finishes, with the claims just taken from the ready queue,
    /// can leave other runners asleep: only when nothing it makes ready is left for them
    /// (every task freed is claimed here, as when a chain passes from one task to the next)
    /// and nothing goes back to pending. Others still see the changes on their next look.
    fn take_quiet(&mut self, finishes: &[Finish]) -> bool {
        let handoff = std::mem::take(&mut self.handoff);
        !handoff
            && self.ready.is_empty()
            && finishes
                .iter()
                .all(|f| matches!(f.status, FinishStatus::Completed))
    }

    /// Moves retries whose time has come to the ready queue; returns the next retry time.
    fn wake_retries(&mut self, now: Timestamp) -> Option<Timestamp> {
        let mut next = None;
        let mut keep = Vec::new();
        for (at, v) in std::mem::take(&mut self.retry_at) {
            if at <= now {
                let i = v as usize;
                let prio = self.task_of(v).map(|t| t.priority.rank()).unwrap_or(0);
                let tie = self.tie(v);
                self.ready.push((self.rank[i], prio, tie, v));
            } else {
                next = Some(next.map_or(at, |n: Timestamp| n.min(at)));
                keep.push((at, v));
            }
        }
        self.retry_at = keep;
        next
    }

    /// Transitive dependents of `v` that are tasks.
    fn dependents(&self, v: NodeIdx) -> Vec<NodeIdx> {
        dependent_nodes(&self.tdag, v)
    }

    /// The dependents of `v` as flag rules and discovered work see them.
    fn dependent_tasks(&self, v: NodeIdx) -> Vec<Dependent> {
        self.dependents(v)
            .into_iter()
            .filter_map(|d| {
                let id = self.tdag.owner[d as usize];
                self.tasks.get(&id).map(|t| Dependent {
                    id,
                    status: t.status,
                    priority: t.priority,
                })
            })
            .collect()
    }

    fn remaining(&self) -> u64 {
        (0..self.tdag.dag.len())
            .filter(|&i| {
                self.in_scope[i]
                    && self.tdag.dag.kind(i as NodeIdx) == NodeKind::Task
                    && !self.satisfied[i]
            })
            .count() as u64
    }
}

/// Transitive dependents of node `v` that are tasks (no recursion: an explicit stack).
fn dependent_nodes(tdag: &TaskDag, v: NodeIdx) -> Vec<NodeIdx> {
    let mut seen = HashSet::new();
    let mut stack = vec![v];
    let mut out = Vec::new();
    while let Some(u) = stack.pop() {
        for &s in tdag.dag.succs(u) {
            if seen.insert(s) {
                if tdag.dag.kind(s) == NodeKind::Task {
                    out.push(s);
                }
                stack.push(s);
            }
        }
    }
    out
}

/// The transitive dependents of task `id` read from the store (for callers outside a run, such
/// as a completion reported through MCP). Empty for a task that is not a live leaf.
pub async fn load_dependents(store: &dyn Store, id: TaskId) -> Result<Vec<Dependent>, RunError> {
    let tasks = store.tasks(&TaskFilter::default()).await?;
    let snap = downbeat_core::report::snapshot_of(&tasks, &store.edges().await?);
    let tdag = TaskDag::new(&snap, &|_| None)?;
    let Some(v) = tdag
        .owner
        .iter()
        .enumerate()
        .position(|(i, t)| *t == id && tdag.dag.kind(i as NodeIdx) == NodeKind::Task)
    else {
        return Ok(Vec::new());
    };
    let by_id: HashMap<TaskId, &Task> = tasks.iter().map(|t| (t.id, t)).collect();
    Ok(dependent_nodes(&tdag, v as NodeIdx)
        .into_iter()
        .filter_map(|d| {
            let t = by_id.get(&tdag.owner[d as usize])?;
            Some(Dependent {
                id: t.id,
                status: t.status,
                priority: t.priority,
            })
        })
        .collect())
}

/// Which task nodes the run may dispatch.
fn scope(tdag: &TaskDag, node_of: &HashMap<TaskId, NodeIdx>, opts: &RunOptions) -> Vec<bool> {
    let dag = &tdag.dag;
    let n = dag.len();
    if opts.only.is_empty() && opts.until.is_none() {
        return vec![true; n];
    }
    // Nodes that stand for a task: its own node, or for a container every node it owns.
    let nodes_for = |t: TaskId| -> Vec<NodeIdx> {
        match node_of.get(&t) {
            Some(&v) => vec![v],
            None => (0..n as NodeIdx)
                .filter(|&v| tdag.owner[v as usize] == t)
                .collect(),
        }
    };
    let mut allowed = vec![opts.only.is_empty(); n];
    if !opts.only.is_empty() {
        for &t in &opts.only {
            let starts = nodes_for(t);
            if starts.len() == 1 {
                allowed[starts[0] as usize] = true;
                continue;
            }
            // A container: everything between its Start and End.
            let mut stack: Vec<NodeIdx> = starts
                .iter()
                .copied()
                .filter(|&v| dag.kind(v) == NodeKind::Start)
                .collect();
            let end: HashSet<NodeIdx> = starts
                .iter()
                .copied()
                .filter(|&v| dag.kind(v) == NodeKind::End)
                .collect();
            while let Some(u) = stack.pop() {
                if allowed[u as usize] || end.contains(&u) {
                    continue;
                }
                allowed[u as usize] = true;
                stack.extend(dag.succs(u).iter().copied());
            }
        }
    }
    if let Some(t) = opts.until {
        let mut needed = vec![false; n];
        let mut stack = nodes_for(t);
        while let Some(u) = stack.pop() {
            if needed[u as usize] {
                continue;
            }
            needed[u as usize] = true;
            stack.extend(dag.preds(u).iter().copied());
        }
        for i in 0..n {
            allowed[i] &= needed[i];
        }
    }
    allowed
}

/// Runs the graph until nothing more can run, the token is cancelled, or a rule stops it.
pub async fn run(
    store: Arc<dyn Store>,
    opts: RunOptions,
    events: mpsc::UnboundedSender<RunEvent>,
    cancel: CancellationToken,
) -> Result<RunSummary, RunError> {
    let started = Instant::now();
    let emit = |e: RunEvent| {
        let _ = events.send(e);
    };
    let now = || (opts.now)();
    let actor = || Actor::new(opts.holder.clone(), now());

    // Recovery: leases that expired, and holders on this machine whose process is gone.
    let dead: Vec<String> = store
        .lease_holders()
        .await?
        .into_iter()
        .filter(|h| holder_is_dead(h))
        .collect();
    let orphans = crate::executor::process::kill_orphans(&dead);
    if orphans > 0 {
        emit(RunEvent::OrphansKilled { count: orphans });
    }
    for t in store.requeue_running(Some(now()), &dead, &actor()).await? {
        emit(RunEvent::Requeued {
            task: t.to_string(),
            reason: "its previous runner is gone or its lease expired".into(),
        });
    }

    let (tx, mut rx) = mpsc::unbounded_channel::<Done>();
    let mut running: HashMap<TaskId, Running> = HashMap::new();
    let mut summary = RunSummary::default();
    let mut finishes: Vec<Finish> = Vec::new();
    let mut completed_now: Vec<TaskId> = Vec::new();
    let mut post: Vec<(Claimed, Outcome)> = Vec::new();
    let mut resolver = Resolver::default();

    // Changes committed after this point are caught up from the log, so the point is taken
    // before the holds and the graph are read: a hold added in between is not missed.
    let mut last_seen = store.last_event_seq().await?;
    // Holds in force (a pausing rule fired here or elsewhere, or someone paused by hand),
    // and the number of the last one given out: every batch of claims carries it, and the
    // store takes none of them if a later hold exists.
    let (mut holds, mut holds_seen) = store.holds_and_last().await?;
    for h in &holds {
        emit(paused(h));
    }

    // Quick start: loading a large graph takes a while, so tasks that are plainly ready (a
    // direct look at their blockers) start before it is loaded. Their ends wait in the channel.
    if opts.only.is_empty() && opts.until.is_none() && !cancel.is_cancelled() {
        let limit = u32::try_from(opts.concurrency.saturating_mul(2)).unwrap_or(u32::MAX);
        let candidates = store.ready_tasks(limit, now()).await?;
        let mut picked: Vec<Task> = Vec::new();
        let mut claims = Vec::new();
        let mut occupied = Occupied::default();
        // Before the graph is loaded, only the holds' own tasks may start.
        let allowed = downbeat_store::holds::allowed(&holds, None);
        for task in candidates {
            if claims.len() >= opts.concurrency {
                break;
            }
            if !occupied.admits(&task, &opts.caps)
                || held_back(&allowed, task.id)
                || opts.accepts.as_ref().is_some_and(|a| !a(&task))
            {
                continue;
            }
            let r = resolver.get(&opts.resolve, &task)?;
            occupied.take(task.role.as_deref(), &task.footprint, &opts.caps);
            claims.push(ClaimRequest {
                task: task.id,
                executor: r.name.clone(),
                after: vec![],
            });
            picked.push(task);
        }
        if !claims.is_empty() {
            let batch = Batch {
                finishes: vec![],
                claims,
                holder: opts.holder.clone(),
                lease_until: Timestamp(now().0 + opts.lease.as_millis() as i64),
                quiet: false,
                holds_seen: Some(holds_seen),
            };
            let res = store.commit_batch(&batch, &actor()).await?;
            if res.held {
                read_holds(store.as_ref(), &mut holds, &mut holds_seen, &emit).await?;
            }
            for c in &res.claimed {
                let Some(mut task) = picked.iter().find(|t| t.id == c.task).cloned() else {
                    continue;
                };
                task.status = Status::Running;
                let r = resolver.get(&opts.resolve, &task)?.clone();
                start_attempt(
                    &store,
                    &opts,
                    &mut running,
                    task,
                    r,
                    *c,
                    &cancel,
                    &tx,
                    &emit,
                );
            }
        }
    }

    let mut g = reload_graph(store.as_ref(), &opts, &running, now()).await?;
    // Resolve every executor up front: bad configuration fails before anything runs.
    let mut pending = 0usize;
    for (v, &t) in g.tdag.owner.iter().enumerate() {
        if !g.in_scope[v] || g.tdag.dag.kind(v as NodeIdx) != NodeKind::Task || g.satisfied[v] {
            continue;
        }
        if let Some(task) = g
            .tasks
            .get(&t)
            .filter(|t| t.status == Status::Pending)
            .filter(|t| opts.accepts.as_ref().is_none_or(|a| a(t)))
        {
            resolver.get(&opts.resolve, task)?;
            pending += 1;
        }
    }
    emit(RunEvent::Started {
        ready: g.ready.len(),
        pending: pending + running.len(),
        concurrency: opts.concurrency,
    });

    let mut stopping: Option<String> = None;
    let mut holds_changed = false;
    let tick = (opts.lease / 3)
        .min(Duration::from_millis(500))
        .max(Duration::from_millis(20));
    let mut next_tick = Instant::now() + tick;
    let mut next_requeue = Instant::now() + REQUEUE_EVERY;
    // Claims another runner won: looked at again once its events are in.
    let mut recheck: Vec<NodeIdx> = Vec::new();
    let mut feed = store.change_feed().await.ok().flatten();

    loop {
        let t_now = now();
        let next_retry = g.wake_retries(t_now);

        // Choose claims: best first, within the global limit, role caps and file footprints.
        let mut claims = Vec::new();
        let mut claim_nodes = Vec::new();
        // A completion whose report changes the plan (a pausing or stopping flag, discovered
        // work that blocks dependents) is committed and applied before anything new starts.
        let hold = post.iter().any(|(_, o)| {
            o.report
                .as_ref()
                .is_some_and(|r| changes_plan(r, &opts.rules))
        });
        if stopping.is_none() && !cancel.is_cancelled() && !hold {
            let mut deferred = Vec::new();
            let mut occupied = Occupied::default();
            let allowed = downbeat_store::holds::allowed(&holds, Some(&g.tdag));
            for r in running.values() {
                occupied.take(r.role.as_deref(), &r.footprint, &opts.caps);
            }
            while running.len() + claims.len() < opts.concurrency {
                let Some(item) = g.ready.pop() else { break };
                let v = item.3;
                let Some(task) = g.task_of(v).cloned() else {
                    continue;
                };
                if task.status != Status::Pending {
                    g.queued[v as usize] = false;
                    continue;
                }
                if held_back(&allowed, task.id) {
                    deferred.push(item);
                    continue;
                }
                if !occupied.admits(&task, &opts.caps) {
                    deferred.push(item);
                    continue;
                }
                let Ok(r) = resolver.get(&opts.resolve, &task) else {
                    continue;
                };
                occupied.take(task.role.as_deref(), &task.footprint, &opts.caps);
                claims.push(ClaimRequest {
                    task: task.id,
                    executor: r.name.clone(),
                    // Only a task freed this turn depends on completions not yet committed.
                    after: if g.fresh.contains(&v) {
                        completed_now.clone()
                    } else {
                        Vec::new()
                    },
                });
                claim_nodes.push(v);
            }
            for d in deferred {
                g.ready.push(d);
            }
        }

        // One transaction for everything collected this turn.
        if !finishes.is_empty() || !claims.is_empty() {
            let lease_until = Timestamp(now().0 + opts.lease.as_millis() as i64);
            let quiet = g.take_quiet(&finishes);
            let batch = Batch {
                finishes: std::mem::take(&mut finishes),
                claims,
                holder: opts.holder.clone(),
                lease_until,
                quiet,
                holds_seen: Some(holds_seen),
            };
            let res = store.commit_batch(&batch, &actor()).await?;
            let rejected: HashSet<TaskId> = res.rejected.iter().copied().collect();
            summary.rejected += rejected.len() as u64;
            // Post-process the finishes that were accepted.
            let mut reload = !rejected.is_empty();
            for (claim, outcome) in std::mem::take(&mut post) {
                let Some(&v) = g.node_of.get(&claim.task) else {
                    continue;
                };
                if rejected.contains(&claim.task) {
                    emit(RunEvent::LeaseLost {
                        task: claim.task.to_string(),
                    });
                    continue;
                }
                if outcome.kind == OutcomeKind::Succeeded {
                    if let Some(report) = &outcome.report {
                        let needs_dependents = !report.flags.is_empty()
                            || report.discovered.iter().any(|d| d.blocks_dependents);
                        let dependents = if needs_dependents {
                            g.dependent_tasks(v)
                        } else {
                            Vec::new()
                        };
                        let title = g
                            .tasks
                            .get(&claim.task)
                            .map(|t| t.title.clone())
                            .unwrap_or_default();
                        let effects = apply_report(
                            store.as_ref(),
                            &opts.rules,
                            claim.task,
                            &title,
                            &dependents,
                            report,
                            &actor(),
                            &emit,
                        )
                        .await?;
                        reload |= effects.changed;
                        if let Some(reason) = effects.stop {
                            stopping = Some(reason);
                        }
                        if !effects.holds.is_empty() {
                            // Read back with the others' and the last number, so the next
                            // claims are not refused for this runner's own hold.
                            holds.extend(effects.holds);
                            read_holds(store.as_ref(), &mut holds, &mut holds_seen, &emit).await?;
                        }
                    }
                } else if let Some(t) = g.tasks.get(&claim.task)
                    && t.status == Status::Failed
                {
                    match opts.failure {
                        FailurePolicy::Continue => {}
                        FailurePolicy::Stop => {
                            if stopping.is_none() {
                                let reason = format!(
                                    "task {} failed and the failure policy is `stop`",
                                    claim.task
                                );
                                emit(RunEvent::Stopping {
                                    reason: reason.clone(),
                                });
                                stopping = Some(reason);
                            }
                        }
                        FailurePolicy::SkipDependents => {
                            for d in g.dependents(v) {
                                let id = g.tdag.owner[d as usize];
                                if g.tasks
                                    .get(&id)
                                    .is_some_and(|t| t.status == Status::Pending)
                                {
                                    let note = format!("dependency {} failed", claim.task);
                                    store
                                        .set_status(id, Status::Cancelled, Some(&note), &actor())
                                        .await?;
                                    summary.cancelled += 1;
                                    emit(RunEvent::Cancelled {
                                        task: id.to_string(),
                                        reason: note,
                                    });
                                    reload = true;
                                }
                            }
                        }
                    }
                }
            }
            completed_now.clear();
            g.fresh.clear();
            for c in &res.claimed {
                if !claim_nodes
                    .iter()
                    .any(|&v| g.tdag.owner[v as usize] == c.task)
                {
                    continue;
                }
                let Some(t) = g.tasks.get_mut(&c.task) else {
                    continue;
                };
                t.status = Status::Running;
                let task = t.clone();
                let r = resolver.get(&opts.resolve, &task)?.clone();
                start_attempt(
                    &store,
                    &opts,
                    &mut running,
                    task,
                    r,
                    *c,
                    &cancel,
                    &tx,
                    &emit,
                );
            }
            if res.held {
                // A hold this runner had not seen: read the holds, and choose again.
                read_holds(store.as_ref(), &mut holds, &mut holds_seen, &emit).await?;
            }
            for t in &res.not_claimed {
                if let Some(&v) = g.node_of.get(t) {
                    g.queued[v as usize] = false;
                    if res.held {
                        g.consider(v, now());
                    } else {
                        recheck.push(v);
                    }
                }
            }
            if reload && stopping.is_none() {
                g = reload_graph(store.as_ref(), &opts, &running, now()).await?;
            }
            continue;
        }

        // Nothing to commit: is the run over? Ready tasks that a hold keeps back do not count.
        let held = running.is_empty() && !holds.is_empty() && {
            let allowed = downbeat_store::holds::allowed(&holds, Some(&g.tdag));
            g.ready
                .iter()
                .all(|item| held_back(&allowed, g.tdag.owner[item.3 as usize]))
        };
        let nothing_ready =
            held || g.ready.is_empty() || stopping.is_some() || cancel.is_cancelled();
        let idle = running.is_empty()
            && nothing_ready
            && (g.retry_at.is_empty() || held || stopping.is_some() || cancel.is_cancelled());
        if idle && (!opts.stay || cancel.is_cancelled() || stopping.is_some()) {
            if held && stopping.is_none() && !cancel.is_cancelled() {
                let h = &holds[0];
                stopping = Some(match h.task {
                    Some(t) => format!(
                        "held: only {t} may start (hold {}: {}), and it cannot start now",
                        h.id, h.reason
                    ),
                    None => format!(
                        "paused (hold {}: {}); `downbeat unpause` releases it",
                        h.id, h.reason
                    ),
                });
            }
            break;
        }

        // Wait for an attempt to finish, a tick, a retry, or cancellation.
        let wake = next_retry
            .map(|at| Duration::from_millis((at.0 - now().0).max(0) as u64))
            .unwrap_or(Duration::from_secs(3600));
        let until_tick = next_tick.saturating_duration_since(Instant::now());
        tokio::select! {
            got = rx.recv() => {
                let Some(done) = got else { break };
                collect(done, &mut running, &mut g, &mut finishes, &mut completed_now, &mut post, &mut summary, cancel.is_cancelled(), now(), &emit);
                // Group commit: while other attempts are in flight, gather their ends for a
                // short window so one transaction records many of them.
                let window_end = Instant::now() + GATHER_WINDOW;
                loop {
                    while let Ok(done) = rx.try_recv() {
                        collect(done, &mut running, &mut g, &mut finishes, &mut completed_now, &mut post, &mut summary, cancel.is_cancelled(), now(), &emit);
                    }
                    if running.is_empty() || finishes.len() >= MAX_BATCH {
                        break;
                    }
                    let left = window_end.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    match tokio::time::timeout(left, rx.recv()).await {
                        Ok(Some(done)) => collect(done, &mut running, &mut g, &mut finishes, &mut completed_now, &mut post, &mut summary, cancel.is_cancelled(), now(), &emit),
                        _ => break,
                    }
                }
            }
            _ = tokio::time::sleep(until_tick) => {
                next_tick = Instant::now() + tick;
                let until = Timestamp(now().0 + opts.lease.as_millis() as i64);
                let held: HashMap<TaskId, i64> = store.renew_leases(&opts.holder, until).await?.into_iter().collect();
                for (t, r) in &running {
                    if held.get(t) != Some(&r.claim.epoch) && !r.cancel.is_cancelled() {
                        emit(RunEvent::LeaseLost { task: t.to_string() });
                        r.cancel.cancel();
                    }
                }
                // Leases of runners that died elsewhere (or here) go back to pending.
                if Instant::now() >= next_requeue && stopping.is_none() && !cancel.is_cancelled() {
                    next_requeue = Instant::now() + REQUEUE_EVERY;
                    let dead: Vec<String> = store.lease_holders().await?.into_iter().filter(|h| h != &opts.holder && holder_is_dead(h)).collect();
                    let orphans = crate::executor::process::kill_orphans(&dead);
                    if orphans > 0 {
                        emit(RunEvent::OrphansKilled { count: orphans });
                    }
                    for t in store.requeue_running(Some(now()), &dead, &actor()).await? {
                        emit(RunEvent::Requeued { task: t.to_string(), reason: "its runner is gone or its lease expired".into() });
                        if let Some(&v) = g.node_of.get(&t) {
                            if let Some(task) = g.tasks.get_mut(&t) {
                                task.status = Status::Pending;
                            }
                            g.queued[v as usize] = false;
                            g.consider(v, now());
                        }
                    }
                }
                if stopping.is_none() && !cancel.is_cancelled() {
                    g = catch_up(store.as_ref(), &opts, g, &running, &mut last_seen, &mut recheck, &mut holds_changed, now()).await?;
                }
            }
            changed = async { feed.as_mut().expect("guarded").changed().await }, if feed.is_some() => {
                if changed.is_err() {
                    // The feed broke (connection lost): fall back to polling on the tick.
                    feed = None;
                } else if stopping.is_none() && !cancel.is_cancelled() {
                    g = catch_up(store.as_ref(), &opts, g, &running, &mut last_seen, &mut recheck, &mut holds_changed, now()).await?;
                }
            }
            _ = tokio::time::sleep(wake) => {}
            _ = cancel.cancelled(), if !summary.interrupted => {
                summary.interrupted = true;
                emit(RunEvent::Stopping { reason: "interrupted".into() });
                for r in running.values() {
                    r.cancel.cancel();
                }
            }
        }
        // Holds: others' come in through the log; a task hold ends with its task.
        if holds_changed || !holds.is_empty() {
            let before: Vec<u32> = holds.iter().map(|h| h.id).collect();
            if std::mem::take(&mut holds_changed) {
                read_holds(store.as_ref(), &mut holds, &mut holds_seen, &emit).await?;
            }
            holds.retain(|h| {
                h.task
                    .is_none_or(|t| g.tasks.get(&t).is_none_or(|t| !t.status.is_terminal()))
            });
            if !before.is_empty() && holds.is_empty() {
                emit(RunEvent::Resumed);
            }
        }
    }
    summary.remaining = g.remaining();
    summary.interrupted |= cancel.is_cancelled();
    summary.stopped_by = stopping;
    summary.millis = started.elapsed().as_millis() as u64;
    emit(RunEvent::Finished(summary.clone()));
    Ok(summary)
}

/// Reads the holds in force and the number of the last one given out, announcing the new
/// ones.
async fn read_holds(
    store: &dyn Store,
    holds: &mut Vec<Hold>,
    seen: &mut u32,
    emit: &(dyn Fn(RunEvent) + Sync),
) -> Result<(), RunError> {
    let before: Vec<u32> = holds.iter().map(|h| h.id).collect();
    (*holds, *seen) = store.holds_and_last().await?;
    for h in holds.iter().filter(|h| !before.contains(&h.id)) {
        emit(paused(h));
    }
    Ok(())
}

/// The event announcing a hold.
fn paused(h: &Hold) -> RunEvent {
    RunEvent::Paused {
        hold: h.id,
        until: h.task.map(|t| t.to_string()),
        reason: h.reason.clone(),
    }
}

/// Whether the holds in force (as [`downbeat_store::holds::allowed`] gives them) keep
/// `task` from starting.
fn held_back(allowed: &Option<HashSet<TaskId>>, task: TaskId) -> bool {
    allowed.as_ref().is_some_and(|a| !a.contains(&task))
}

/// What running and just-claimed attempts occupy: places in capped groups, declared files.
#[derive(Default)]
struct Occupied {
    groups: HashMap<u32, u32>,
    footprints: Vec<String>,
}

impl Occupied {
    /// Whether `task` may start next to them: its group (if capped) has room and its files do
    /// not overlap theirs.
    fn admits(&self, task: &Task, caps: &Caps) -> bool {
        let full = task
            .role
            .as_deref()
            .and_then(|r| caps.group_of(r))
            .is_some_and(|g| self.groups.get(&g).copied().unwrap_or(0) >= caps.cap(g));
        !full
            && !task
                .footprint
                .iter()
                .any(|a| self.footprints.iter().any(|b| footprints_overlap(a, b)))
    }

    fn take(&mut self, role: Option<&str>, footprint: &[String], caps: &Caps) {
        if let Some(g) = role.and_then(|r| caps.group_of(r)) {
            *self.groups.entry(g).or_default() += 1;
        }
        self.footprints.extend(footprint.iter().cloned());
    }
}

/// Records a claimed attempt as running and starts it.
#[allow(clippy::too_many_arguments)]
fn start_attempt(
    store: &Arc<dyn Store>,
    opts: &RunOptions,
    running: &mut HashMap<TaskId, Running>,
    task: Task,
    r: Resolved,
    claim: Claimed,
    cancel: &CancellationToken,
    tx: &mpsc::UnboundedSender<Done>,
    emit: &dyn Fn(RunEvent),
) {
    let token = cancel.child_token();
    running.insert(
        claim.task,
        Running {
            claim,
            cancel: token.clone(),
            retry: r.retry.clone(),
            role: task.role.clone(),
            footprint: task.footprint.clone(),
        },
    );
    emit(RunEvent::AttemptStarted {
        task: claim.task.to_string(),
        title: task.title.clone(),
        attempt: claim.number,
        executor: r.name.clone(),
    });
    spawn_attempt(store.clone(), opts, task, r, claim, token, tx.clone());
}

/// Brings the graph up to date with changes others committed since `last_seen`: status
/// changes are applied in place, anything else reloads the graph.
#[allow(clippy::too_many_arguments)]
async fn catch_up(
    store: &dyn Store,
    opts: &RunOptions,
    mut g: Graph,
    running: &HashMap<TaskId, Running>,
    last_seen: &mut i64,
    recheck: &mut Vec<NodeIdx>,
    holds_changed: &mut bool,
    now: Timestamp,
) -> Result<Graph, RunError> {
    // Sequence numbers follow commit order, so everything up to `hi` is already visible.
    let hi = store.last_event_seq().await?;
    if hi > *last_seen {
        let foreign = store
            .events(&EventQuery {
                after_seq: Some(*last_seen),
                exclude_actor: Some(opts.holder.clone()),
                limit: Some(FOREIGN_BATCH),
                ..Default::default()
            })
            .await?;
        let complete = foreign.len() < FOREIGN_BATCH as usize;
        let seen = foreign.iter().map(|e| e.seq).max().unwrap_or(0);
        *holds_changed |= !complete || foreign.iter().any(|e| e.action.starts_with("hold."));
        if !complete || !g.apply_foreign(&foreign, now) {
            g = reload_graph(store, opts, running, now).await?;
            recheck.clear();
        }
        // A reload reflects everything up to `hi` too.
        *last_seen = hi.max(seen);
    }
    for v in recheck.drain(..) {
        g.consider(v, now);
    }
    Ok(g)
}

async fn reload_graph(
    store: &dyn Store,
    opts: &RunOptions,
    running: &HashMap<TaskId, Running>,
    now: Timestamp,
) -> Result<Graph, RunError> {
    let mut g = Graph::load(store, opts, now).await?;
    // Tasks we are running are not ready, whatever the snapshot says.
    for t in running.keys() {
        if let Some(&v) = g.node_of.get(t) {
            g.queued[v as usize] = true;
        }
    }
    let ready: Vec<_> = std::mem::take(&mut g.ready)
        .into_iter()
        .filter(|(_, _, _, v)| !running.contains_key(&g.tdag.owner[*v as usize]))
        .collect();
    g.ready = ready.into_iter().collect();
    Ok(g)
}

/// Turns an attempt's outcome into a `Finish` and updates the in-memory graph optimistically.
#[allow(clippy::too_many_arguments)]
fn collect(
    done: Done,
    running: &mut HashMap<TaskId, Running>,
    g: &mut Graph,
    finishes: &mut Vec<Finish>,
    completed_now: &mut Vec<TaskId>,
    post: &mut Vec<(Claimed, Outcome)>,
    summary: &mut RunSummary,
    interrupted: bool,
    now: Timestamp,
    emit: &dyn Fn(RunEvent),
) {
    let Done {
        claim,
        outcome,
        artifacts,
    } = done;
    // Found by id: the graph may have been reloaded since the attempt started.
    let node = g.node_of.get(&claim.task).copied();
    let policy = running
        .remove(&claim.task)
        .map(|r| r.retry)
        .unwrap_or_default();
    let title = g
        .tasks
        .get(&claim.task)
        .map(|t| t.title.clone())
        .unwrap_or_default();
    let max_attempts = g
        .tasks
        .get(&claim.task)
        .and_then(|t| t.exec.max_attempts)
        .unwrap_or(policy.max_attempts)
        .max(1);
    let (status, label) = match outcome.kind {
        OutcomeKind::Succeeded => (FinishStatus::Completed, "completed"),
        OutcomeKind::Cancelled if interrupted => (FinishStatus::Requeue, "pending"),
        OutcomeKind::Cancelled => (FinishStatus::Cancelled, "cancelled"),
        OutcomeKind::Failed | OutcomeKind::TimedOut if claim.number < max_attempts => {
            let delay = policy
                .delay_for(
                    claim.number,
                    u64::from(claim.task.seq()) ^ claim.attempt_id as u64,
                )
                .unwrap_or(Duration::from_secs(1));
            let at = Timestamp(now.0 + delay.as_millis() as i64);
            (FinishStatus::Retry { not_before: at }, "retrying")
        }
        _ => (FinishStatus::Failed, "failed"),
    };
    let summary_text = outcome.report.as_ref().and_then(|r| r.summary.clone());
    finishes.push(Finish {
        task: claim.task,
        epoch: claim.epoch,
        attempt_id: claim.attempt_id,
        status,
        outcome: outcome_name(outcome.kind).into(),
        exit_code: outcome.exit_code,
        error: outcome.error.clone(),
        summary: summary_text,
        tokens: outcome
            .tokens
            .map(|t| (t.prompt as i64, t.completion as i64)),
        artifacts,
    });
    emit(RunEvent::AttemptFinished {
        task: claim.task.to_string(),
        title,
        attempt: claim.number,
        outcome: outcome.kind,
        status: label.into(),
        error: outcome.error.clone(),
        millis: outcome.duration.as_millis() as u64,
    });
    match status {
        FinishStatus::Completed => {
            summary.completed += 1;
            completed_now.push(claim.task);
            if let Some(v) = node {
                g.complete(v, now);
            }
        }
        FinishStatus::Retry { not_before } => {
            summary.retried += 1;
            emit(RunEvent::Retrying {
                task: claim.task.to_string(),
                attempt: claim.number + 1,
                at: not_before.to_string(),
            });
            if let Some(t) = g.tasks.get_mut(&claim.task) {
                t.status = Status::Pending;
                t.not_before = Some(not_before);
            }
            if let Some(v) = node {
                g.queued[v as usize] = false;
                g.consider(v, now);
            }
        }
        FinishStatus::Failed => {
            summary.failed += 1;
            if let Some(t) = g.tasks.get_mut(&claim.task) {
                t.status = Status::Failed;
            }
        }
        FinishStatus::Cancelled => {
            summary.cancelled += 1;
            if let Some(t) = g.tasks.get_mut(&claim.task) {
                t.status = Status::Cancelled;
            }
        }
        FinishStatus::Requeue => {
            if let Some(t) = g.tasks.get_mut(&claim.task) {
                t.status = Status::Pending;
            }
        }
    }
    post.push((claim, outcome));
}

/// Whether applying `report` may change what is allowed to start next.
fn changes_plan(report: &AgentReport, rules: &[FlagRule]) -> bool {
    report.discovered.iter().any(|d| d.blocks_dependents)
        || report.flags.iter().any(|f| {
            rules.iter().any(|r| {
                &r.flag == f
                    && (r.pause
                        || matches!(
                            r.action,
                            FlagAction::Pause | FlagAction::Stop | FlagAction::RaisePriority
                        ))
            })
        })
}

fn outcome_name(k: OutcomeKind) -> &'static str {
    match k {
        OutcomeKind::Succeeded => "succeeded",
        OutcomeKind::Failed => "failed",
        OutcomeKind::TimedOut => "timed-out",
        OutcomeKind::Cancelled => "cancelled",
        OutcomeKind::Error => "error",
    }
}

/// A dependent of a completed task, as flag rules and discovered work see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dependent {
    pub id: TaskId,
    pub status: Status,
    pub priority: Priority,
}

/// What applying an agent's report did besides recording the completion.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReportEffects {
    /// Whether the graph changed (tasks added, priorities raised, edges added).
    pub changed: bool,
    /// A `stop` rule fired: why. Only a run acts on it.
    pub stop: Option<String>,
    /// Holds a pausing rule added (they are stored: every runner, worker and MCP server on the
    /// database honours them).
    pub holds: Vec<Hold>,
    /// Tasks created: follow-ups of flag rules and discovered work, in order.
    pub created: Vec<TaskId>,
}

/// Applies the flags (through the project's flag rules) and the discovered tasks of a completed
/// task's report: records `flag.raised` events, adds follow-up and discovered tasks linked by
/// `discovered-from` edges, raises dependents' priorities. `dependents` are the completed
/// task's transitive dependents ([`load_dependents`] reads them from the store). Every action
/// is also reported through `emit`.
#[allow(clippy::too_many_arguments)]
pub async fn apply_report(
    store: &dyn Store,
    rules: &[FlagRule],
    task_id: TaskId,
    title: &str,
    dependents: &[Dependent],
    report: &AgentReport,
    actor: &Actor,
    emit: &(dyn Fn(RunEvent) + Sync),
) -> Result<ReportEffects, RunError> {
    let mut fx = ReportEffects::default();
    for flag in &report.flags {
        store
            .record_event(
                "flag.raised",
                &task_id.to_string(),
                Some(serde_json::json!({"flag": flag})),
                actor,
            )
            .await?;
        let rules: Vec<&FlagRule> = rules.iter().filter(|r| &r.flag == flag).collect();
        if rules.is_empty() {
            emit(RunEvent::Flag {
                task: task_id.to_string(),
                flag: flag.clone(),
                action: "none".into(),
                detail: "no rule for this flag".into(),
            });
        }
        for rule in rules {
            match rule.action {
                FlagAction::AddTask => {
                    let tmpl = rule
                        .title
                        .as_deref()
                        .unwrap_or("Follow up {{ flag }} from {{ task.title }}");
                    let t = prompt::render_title(tmpl, &task_id.to_string(), title, flag)
                        .map_err(|e| RunError::Config(e.to_string()))?;
                    let new = NewTask {
                        title: t.clone(),
                        role: rule.role.clone(),
                        effort: 1,
                        priority: Priority::High,
                        ..Default::default()
                    };
                    let created = add_discovered(store, task_id, &new, actor).await?;
                    fx.changed = true;
                    fx.created.push(created.id);
                    let mut detail = format!("added {} \"{t}\"", created.id);
                    if rule.pause {
                        let reason = format!("flag {flag} raised by {task_id}");
                        let h = store.add_hold(Some(created.id), &reason, actor).await?;
                        detail.push_str("; everything else waits until it is done");
                        emit(paused(&h));
                        fx.holds.push(h);
                    }
                    emit(RunEvent::Flag {
                        task: task_id.to_string(),
                        flag: flag.clone(),
                        action: "add-task".into(),
                        detail,
                    });
                }
                FlagAction::RaisePriority => {
                    let p: Priority = rule
                        .priority
                        .as_deref()
                        .and_then(|p| p.parse().ok())
                        .unwrap_or(Priority::High);
                    let mut n = 0;
                    for d in dependents {
                        if d.status == Status::Pending && d.priority < p {
                            store
                                .update_task(
                                    d.id,
                                    &TaskPatch {
                                        priority: Some(p),
                                        ..Default::default()
                                    },
                                    actor,
                                )
                                .await?;
                            n += 1;
                        }
                    }
                    fx.changed |= n > 0;
                    emit(RunEvent::Flag {
                        task: task_id.to_string(),
                        flag: flag.clone(),
                        action: "raise-priority".into(),
                        detail: format!("{n} dependent task(s) now {p}"),
                    });
                }
                FlagAction::Pause => {
                    let reason = format!("flag {flag} raised by {task_id}");
                    let h = store.add_hold(None, &reason, actor).await?;
                    emit(RunEvent::Flag {
                        task: task_id.to_string(),
                        flag: flag.clone(),
                        action: "pause".into(),
                        detail: format!(
                            "nothing new starts until hold {} is released (`downbeat unpause`)",
                            h.id
                        ),
                    });
                    emit(paused(&h));
                    fx.holds.push(h);
                }
                FlagAction::Stop => {
                    let reason = format!("flag {flag} raised by {task_id}");
                    emit(RunEvent::Flag {
                        task: task_id.to_string(),
                        flag: flag.clone(),
                        action: "stop".into(),
                        detail: reason.clone(),
                    });
                    emit(RunEvent::Stopping {
                        reason: reason.clone(),
                    });
                    fx.stop = Some(reason);
                }
            }
        }
    }
    for d in &report.discovered {
        let new = NewTask {
            title: d.title.clone(),
            role: d.role.clone(),
            description: d.description.clone(),
            effort: 1,
            ..Default::default()
        };
        let created = add_discovered(store, task_id, &new, actor).await?;
        fx.created.push(created.id);
        if d.blocks_dependents {
            for dep in dependents.iter().filter(|d| d.status == Status::Pending) {
                store
                    .add_edge(
                        Edge {
                            from: created.id,
                            to: dep.id,
                            kind: EdgeKind::Blocks,
                        },
                        actor,
                    )
                    .await?;
            }
        }
        emit(RunEvent::Discovered {
            task: task_id.to_string(),
            new_task: created.id.to_string(),
            title: d.title.clone(),
        });
        fx.changed = true;
    }
    Ok(fx)
}

/// Creates a task found while working on `from`, linked to it by a `discovered-from` edge.
async fn add_discovered(
    store: &dyn Store,
    from: TaskId,
    new: &NewTask,
    actor: &Actor,
) -> Result<Task, RunError> {
    let created = store.create_task(new, &[], actor).await?;
    store
        .add_edge(
            Edge {
                from,
                to: created.id,
                kind: EdgeKind::DiscoveredFrom,
            },
            actor,
        )
        .await?;
    Ok(created)
}

fn spawn_attempt(
    store: Arc<dyn Store>,
    opts: &RunOptions,
    task: Task,
    r: Resolved,
    claim: Claimed,
    cancel: CancellationToken,
    tx: mpsc::UnboundedSender<Done>,
) {
    let opts = opts.clone();
    tokio::spawn(async move {
        let attempt_dir = opts
            .runs_dir
            .join(task.id.to_string())
            .join(claim.number.to_string());
        let timeout = task
            .exec
            .timeout_ms
            .map(|ms| Duration::from_millis(ms.max(0) as u64))
            .or(r.timeout);
        let prompt_text = if r.needs_prompt {
            render_prompt(store.as_ref(), &opts, &task).await
        } else {
            Ok(String::new())
        };
        let (outcome, artifacts) = match prompt_text {
            Err(e) => {
                let mut o = Outcome::new(OutcomeKind::Error, Duration::ZERO);
                o.error = Some(e);
                (o, Vec::new())
            }
            Ok(prompt) => {
                let spec = AttemptSpec {
                    task_id: task.id.to_string(),
                    title: task.title.clone(),
                    role: task.role.clone(),
                    attempt: claim.number,
                    prompt,
                    workspace: opts.workspace.clone(),
                    attempt_dir,
                    timeout,
                    env: [(crate::executor::env::RUNNER.to_owned(), opts.holder.clone())].into(),
                };
                let mut outcome = r.executor.run(&spec, cancel).await;
                let mut records = Vec::new();
                if outcome.kind == OutcomeKind::Succeeded
                    && let Some(report) = &outcome.report
                {
                    for a in &report.artifacts {
                        match artifacts::store(&opts.workspace, &opts.artifacts_dir, a) {
                            Ok(rec) => records.push(rec),
                            Err(e) => {
                                outcome.kind = OutcomeKind::Failed;
                                outcome.error = Some(e.to_string());
                                records.clear();
                                break;
                            }
                        }
                    }
                }
                (outcome, records)
            }
        };
        let _ = tx.send(Done {
            claim,
            outcome,
            artifacts,
        });
    });
}

/// The role's template rendered with the task, the objectives and the dependencies' results.
async fn render_prompt(
    store: &dyn Store,
    opts: &RunOptions,
    task: &Task,
) -> Result<String, String> {
    let role = task.role.clone().unwrap_or_default();
    let template = opts.prompts.get(&role).unwrap_or(&opts.default_prompt);
    // The database may be away for a moment (a server restart): that is no reason to fail
    // the task, so the reads are tried again for a while before the attempt gives up.
    let mut pause = Duration::from_millis(250);
    let give_up = Instant::now() + PROMPT_READ_PATIENCE;
    let ctx = loop {
        match prompt_context(store, task).await {
            Ok(ctx) => break ctx,
            Err(downbeat_store::Error::Unavailable(_)) if Instant::now() < give_up => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
            Err(e) => return Err(e.to_string()),
        }
    };
    prompt::render(
        if role.is_empty() { "default" } else { &role },
        template,
        &ctx,
    )
    .map_err(|e| e.to_string())
}

/// What a task's prompt template sees, read from the store: the task, the active objectives,
/// and the results and artifacts of the tasks it depends on (a container dependency contributes
/// its children's results). Render it with [`prompt::render`].
pub async fn prompt_context(
    store: &dyn Store,
    task: &Task,
) -> Result<PromptContext, downbeat_store::Error> {
    let role = task.role.clone().unwrap_or_default();
    let objectives = store
        .objectives()
        .await?
        .into_iter()
        .filter(|o| o.status == downbeat_core::context::ObjectiveStatus::Active)
        .map(|o| o.title)
        .collect();
    let mut dependencies = Vec::new();
    for e in store.edges_of(task.id).await? {
        if e.to != task.id || e.kind != EdgeKind::Blocks {
            continue;
        }
        let dep = store.task(e.from).await?;
        // A container dependency contributes its children's results.
        let mut sources = vec![dep.clone()];
        let kids = store
            .tasks(&TaskFilter {
                parent: Some(dep.id),
                ..Default::default()
            })
            .await?;
        if !kids.is_empty() {
            sources = kids;
        }
        for d in sources {
            dependencies.push(DependencyResult {
                id: d.id.to_string(),
                title: d.title.clone(),
                role: d.role.clone().unwrap_or_default(),
                result: d.result.clone().unwrap_or_default(),
                artifacts: Vec::new(),
            });
        }
    }
    // Artifacts only matter when there are dependencies to attach them to.
    if !dependencies.is_empty() {
        let artifacts = store.artifacts().await?;
        for d in &mut dependencies {
            d.artifacts = artifacts
                .iter()
                .filter(|a| a.task.to_string() == d.id)
                .map(|a| a.path.clone())
                .collect();
        }
    }
    Ok(PromptContext {
        task: PromptTask {
            id: task.id.to_string(),
            title: task.title.clone(),
            description: task.description.clone(),
            role,
            acceptance: task.acceptance.clone(),
        },
        objectives,
        dependencies,
    })
}

/// Whether a lease holder named `runner:HOST:PID` is a process of this machine that is gone.
pub fn holder_is_dead(holder: &str) -> bool {
    let mut parts = holder.rsplitn(3, ':');
    let (Some(pid), Some(host), Some(_)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let Ok(pid) = pid.parse::<u32>() else {
        return false;
    };
    if host != this_host() || pid == std::process::id() {
        return false;
    }
    !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// This machine's name, for lease holders.
pub fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "localhost".into())
}

/// The holder name of this process: `runner:HOST:PID`.
pub fn default_holder() -> String {
    format!("runner:{}:{}", this_host(), std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;
    use downbeat_core::plan::{self, PlanFormat};
    use downbeat_core::role::RoleSet;
    use downbeat_store::TaskStore;
    use downbeat_store::sqlite::SqliteStore;

    const PLAN: &str = r#"
[[tasks]]
key = "a"
title = "a"
role = "implementer"

[[tasks]]
key = "b"
title = "b"
role = "tester"
depends_on = ["a"]

[[tasks]]
key = "c"
title = "c"
role = "implementer"
"#;

    /// The graph of [`PLAN`] as a runner taking `roles` sees it.
    async fn graph(roles: &'static [&'static str]) -> (tempfile::TempDir, Graph, Vec<TaskId>) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("d.db"), true)
            .await
            .unwrap();
        let file = plan::parse(PLAN, PlanFormat::Toml).unwrap();
        let v = plan::validate(&file, &RoleSet::builtin(), &|_| None, &|_| false).unwrap();
        store
            .apply_plan(&v, &Actor::new("test", Timestamp(1)))
            .await
            .unwrap();
        let mut ids = Vec::new();
        for k in ["a", "b", "c"] {
            ids.push(store.resolve_task(k).await.unwrap());
        }
        let opts = RunOptions {
            holder: "worker:test:1".into(),
            concurrency: 4,
            lease: Duration::from_secs(30),
            only: vec![],
            until: None,
            resolve: Arc::new(|_| Err("unused".into())),
            caps: downbeat_core::graph::Caps::default(),
            prompts: HashMap::new(),
            default_prompt: String::new(),
            failure: FailurePolicy::Continue,
            rules: vec![],
            workspace: dir.path().to_owned(),
            runs_dir: dir.path().join("runs"),
            artifacts_dir: dir.path().join("artifacts"),
            now: Arc::new(|| Timestamp(1)),
            accepts: Some(Arc::new(move |t: &Task| {
                t.role.as_deref().is_some_and(|r| roles.contains(&r))
            })),
            stay: true,
        };
        let g = Graph::load(&store, &opts, Timestamp(1)).await.unwrap();
        (dir, g, ids)
    }

    fn done(task: TaskId, status: FinishStatus) -> Finish {
        Finish {
            task,
            epoch: 1,
            attempt_id: 1,
            status,
            outcome: "succeeded".into(),
            exit_code: Some(0),
            error: None,
            summary: None,
            tokens: None,
            artifacts: vec![],
        }
    }

    /// Takes everything ready, as a turn with free slots claims it.
    fn claim_all(g: &mut Graph) -> Vec<TaskId> {
        let mut out = Vec::new();
        while let Some(item) = g.ready.pop() {
            out.push(g.tdag.owner[item.3 as usize]);
        }
        out
    }

    #[tokio::test]
    async fn a_dependent_claimed_in_the_same_turn_wakes_no_one() {
        let (_d, mut g, ids) = graph(&["implementer", "tester"]).await;
        let (a, b) = (ids[0], ids[1]);
        g.take_quiet(&[]);
        claim_all(&mut g);
        g.complete(g.node_of[&a], Timestamp(2));
        let v = g.node_of[&b];
        assert!(g.fresh.contains(&v), "b waits on a's completion");
        assert_eq!(claim_all(&mut g), vec![b]);
        assert!(g.take_quiet(&[done(a, FinishStatus::Completed)]));
    }

    #[tokio::test]
    async fn work_left_for_others_wakes_them() {
        // b is freed but this runner does not take testers.
        let (_d, mut g, ids) = graph(&["implementer"]).await;
        let a = ids[0];
        g.take_quiet(&[]);
        claim_all(&mut g);
        g.complete(g.node_of[&a], Timestamp(2));
        assert!(claim_all(&mut g).is_empty());
        assert!(!g.take_quiet(&[done(a, FinishStatus::Completed)]));
        // Ready work this runner leaves unclaimed (no free slot) wakes them too.
        let (_d, mut g, ids) = graph(&["implementer", "tester"]).await;
        g.take_quiet(&[]);
        assert!(!g.ready.is_empty());
        assert!(!g.take_quiet(&[done(ids[2], FinishStatus::Completed)]));
        // So does a task that goes back to pending.
        claim_all(&mut g);
        let retry = FinishStatus::Retry {
            not_before: Timestamp(5),
        };
        assert!(!g.take_quiet(&[done(ids[0], retry)]));
        assert!(g.take_quiet(&[done(ids[2], FinishStatus::Completed)]));
    }
}
