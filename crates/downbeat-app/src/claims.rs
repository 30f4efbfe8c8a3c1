//! Claims made from outside a runner (MCP clients today): a lease and a fencing token on a
//! ready task, its prompt, heartbeats, and the end of the work (complete, fail, release) with
//! its report.
//!
//! The fencing token is a [`Fence`]: the lease epoch the claim got and its attempt, so the end
//! of the work is checked against the task row alone, and the store's fencing check in
//! `commit_batch` decides.

use std::collections::HashSet;
use std::sync::Mutex;

use downbeat_core::admission;
use downbeat_core::graph;
use downbeat_core::ids::{Fence, TaskId};
use downbeat_core::task::{EdgeKind, Status, Task};
use downbeat_core::time::{Millis, Timestamp};
use downbeat_engine::executor::DiscoveredTask;
use downbeat_engine::run::RunEvent;
use downbeat_store::{Batch, CapLimit, ClaimRequest, Finish, FinishStatus, Hold};
use serde::Serialize;

use crate::cache::{GraphCache, View};
use crate::error::Error;
use crate::project::Project;
use crate::runs;
use crate::tasks::{check_role, children, resolve, waits_on};

/// Who holds claims made by this client (and worker).
pub fn holder(client: &str, worker: Option<&str>) -> String {
    match worker {
        Some(w) if !w.is_empty() => format!("mcp:{client}/{}", sanitize(w)),
        _ => format!("mcp:{client}"),
    }
}

/// A client name fit for lease holders and the event log: no `:` or whitespace.
pub fn sanitize(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c == ':' || c.is_whitespace() {
                '-'
            } else {
                c
            }
        })
        .take(64)
        .collect();
    if s.is_empty() { "client".into() } else { s }
}

fn lease_of(p: &Project, lease: Option<&str>) -> Result<Millis, Error> {
    let s = lease.or(p.config.mcp.lease.as_deref()).unwrap_or("5m");
    let m = Millis::parse(s).map_err(|e| Error::invalid(format!("lease: {e}")))?;
    if m.0 <= 0 {
        return Err(Error::invalid("lease must be longer than zero"));
    }
    Ok(m)
}

/// What a claim asks for.
#[derive(Debug, Default, Clone)]
pub struct ClaimSpec {
    pub task: Option<String>,
    pub role: Option<String>,
    pub worker: Option<String>,
    pub lease: Option<String>,
    pub prompt: bool,
}

/// Work a claim took.
#[derive(Debug, Clone, Serialize)]
pub struct ClaimedWork {
    pub task: TaskId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The fencing token, `EPOCH.ATTEMPT`.
    #[serde(serialize_with = "as_text")]
    pub token: Fence,
    /// 1 for the first attempt.
    pub attempt: u32,
    pub lease_until: Timestamp,
    pub holder: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// Where to do the work, when the task works in its own git worktree: completing the
    /// claim commits what is left there and merges it into the integration branch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worktree: Option<crate::worktrees::ClaimWorktree>,
}

fn as_text<S: serde::Serializer>(f: &Fence, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(f)
}

/// The answer to a claim without a named task: the work, or why there is none.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Claim {
    Took(ClaimedWork),
    None {
        /// Always null: no task was claimed.
        task: Option<TaskId>,
        reason: String,
    },
}

impl Claim {
    fn none(reason: impl Into<String>) -> Self {
        Self::None {
            task: None,
            reason: reason.into(),
        }
    }
}

/// Claims a ready task (the given one, else the best one, respecting role caps and file
/// footprints of running work): it becomes `running` under a new lease epoch, the fencing
/// token the end of the work must present. Two claimants never get the same task: the claim
/// is one conditional write.
pub async fn claim(
    p: &Project,
    g: &GraphCache,
    client: &str,
    c: &ClaimSpec,
) -> Result<Claim, Error> {
    let holder = holder(client, c.worker.as_deref());
    let lease = lease_of(p, c.lease.as_deref())?;
    if let Some(r) = &c.role {
        check_role(p, r)?;
    }
    let actor = p.actor().await?;
    // Claims whose holders stopped sending heartbeats go back to pending first.
    p.store.requeue_running(Some(p.now()), &[], &actor).await?;
    // Holds (a pausing flag rule, `downbeat pause`): only their tasks may start. A hold added
    // after this read refuses the claim in the store.
    let (holds, seen) = p.store.holds_and_last().await?;
    let allowed = if holds.is_empty() {
        None
    } else {
        let view = g.view(p).await?;
        let dag = graph::TaskDag::new(&view.snap, &|_| None).ok();
        downbeat_store::holds::allowed(&holds, dag.as_ref())
    };
    // Each candidate with the dependencies whose completion the claim is conditional on.
    let candidates: Vec<(TaskId, Vec<TaskId>)> = match &c.task {
        Some(q) => {
            let named = claimable(p, q).await?;
            if let Some(h) = holds.first()
                && allowed.as_ref().is_some_and(|a| !a.contains(&named.0))
            {
                return Err(Error::conflict(format!(
                    "task {} cannot start: {}",
                    named.0,
                    held(h)
                )));
            }
            vec![named]
        }
        None => match best_ready(p, &*g.view(p).await?, &holds, allowed.as_ref(), c) {
            Ok(list) => list,
            Err(why) => return Ok(Claim::none(why)),
        },
    };
    let lease_until = Timestamp(p.now().0 + lease.0);
    // Caps hold over every runner and client sharing the database: the store counts.
    let caps = p.plan_settings().caps();
    let mut capped = false;
    for (id, after) in candidates.into_iter().take(32) {
        let batch = Batch {
            finishes: vec![],
            claims: vec![ClaimRequest {
                task: id,
                executor: "mcp".into(),
                after,
            }],
            holder: holder.clone(),
            lease_until,
            quiet: false,
            holds_seen: Some(seen),
            // A task named by the claimer is taken whatever the caps say: the person or
            // agent chose it.
            caps: if c.task.is_some() {
                Vec::new()
            } else {
                CapLimit::all(&caps)
            },
        };
        let res = p.store.commit_batch(&batch, &actor).await?;
        if res.capped.contains(&id) {
            capped = true;
            continue;
        }
        if res.held {
            // A hold came in after the holds were read: say which.
            let why = match p.store.holds().await?.first() {
                Some(h) => held(h),
                None => "a hold was added while the task was being chosen and has ended since; claim again".into(),
            };
            if c.task.is_some() {
                return Err(Error::conflict(format!(
                    "task {id} cannot start now: {why}"
                )));
            }
            return Ok(Claim::none(why));
        }
        let Some(got) = res.claimed.first() else {
            if c.task.is_some() {
                return Err(Error::conflict(format!(
                    "task {id} was claimed or changed meanwhile; it is not claimable now"
                )));
            }
            continue;
        };
        let task = p.store.task(got.task).await?;
        let worktree = match crate::worktrees::prepare_claim(p, &task, got.number).await {
            Ok(w) => w,
            Err(err) => {
                // The claim is given back: nobody can do the work without its worktree.
                let fence = Fence {
                    epoch: got.epoch,
                    attempt: got.attempt_id,
                };
                let _ = give_back(p, &task, fence, &err.message).await;
                return Err(err);
            }
        };
        let prompt = if c.prompt {
            Some(render_prompt(p, &task, None).await?)
        } else {
            None
        };
        return Ok(Claim::Took(ClaimedWork {
            task: task.id,
            key: task.key,
            title: task.title,
            role: task.role,
            token: Fence {
                epoch: got.epoch,
                attempt: got.attempt_id,
            },
            attempt: got.number,
            lease_until,
            holder,
            prompt,
            worktree,
        }));
    }
    Ok(Claim::none(if capped {
        "the ready tasks' groups are at their caps, counting the tasks other runners and clients run; claim again when one of them ends"
    } else {
        "every candidate was claimed by someone else meanwhile; claim again"
    }))
}

/// Gives a claim back (pending again) when it cannot be worked on.
async fn give_back(p: &Project, t: &Task, fence: Fence, why: &str) -> Result<(), Error> {
    let batch = Batch {
        finishes: vec![Finish {
            task: t.id,
            epoch: fence.epoch,
            attempt_id: fence.attempt,
            status: FinishStatus::Requeue,
            outcome: "error".into(),
            exit_code: None,
            error: Some(why.to_owned()),
            summary: None,
            tokens: None,
            detail: Default::default(),
            artifacts: Vec::new(),
            effects: Vec::new(),
        }],
        claims: vec![],
        holder: t.lease_holder.clone().unwrap_or_default(),
        lease_until: p.now(),
        quiet: false,
        holds_seen: None,
        caps: vec![],
    };
    p.store.commit_batch(&batch, &p.actor().await?).await?;
    Ok(())
}

/// A task named by the claimant, checked with targeted queries: a pending live leaf whose
/// dependencies are finished. Returns it with its direct leaf dependencies.
async fn claimable(p: &Project, q: &str) -> Result<(TaskId, Vec<TaskId>), Error> {
    let id = resolve(p, q).await?;
    let t = p.store.task(id).await?;
    if t.archived {
        return Err(Error::conflict(format!("task {id} is archived")));
    }
    if !children(p, id).await?.is_empty() {
        return Err(Error::conflict(format!(
            "task {id} has children; claim one of its leaves"
        )));
    }
    match t.status {
        Status::Pending => {}
        Status::Running => {
            return Err(Error::conflict(format!(
                "task {id} is already claimed by {}",
                t.lease_holder.as_deref().unwrap_or("someone")
            )));
        }
        other => {
            return Err(Error::conflict(format!("task {id} is {other}, not ready")));
        }
    }
    let edges = p.store.edges_of(id).await?;
    let waits = waits_on(p, &t, &edges).await?;
    if !waits.is_empty() {
        let names: Vec<String> = waits.iter().map(ToString::to_string).collect();
        return Err(Error::conflict(format!(
            "task {id} is not ready: it waits on {}",
            names.join(", ")
        )));
    }
    let mut after = Vec::new();
    for e in edges
        .iter()
        .filter(|e| e.to == id && e.kind == EdgeKind::Blocks)
    {
        if children(p, e.from).await?.is_empty() {
            after.push(e.from);
        }
    }
    Ok((id, after))
}

/// Why a hold keeps a claim from starting work, and how it ends.
fn held(h: &Hold) -> String {
    match h.task {
        Some(t) => format!(
            "held: only {t} may start until it is done (hold {}: {})",
            h.id, h.reason
        ),
        None => format!(
            "paused: nothing new starts until hold {} is released with `downbeat unpause {}` ({})",
            h.id, h.id, h.reason
        ),
    }
}

/// The ready tasks a claim may take, best first (critical path first), within the role filter,
/// role caps and clear of running work's files; or why there are none.
fn best_ready(
    p: &Project,
    view: &View,
    holds: &[Hold],
    allowed: Option<&HashSet<TaskId>>,
    c: &ClaimSpec,
) -> Result<Vec<(TaskId, Vec<TaskId>)>, String> {
    let planned = &view.planned;
    let running: Vec<&graph::GraphTask> = view
        .snap
        .tasks
        .iter()
        .filter(|t| t.status == Status::Running && !view.has_children(t.id))
        .collect();
    // Role caps, named groups and file footprints: what runs occupies, by the core's rule.
    let caps = p.plan_settings().caps();
    let mut occupied = admission::Occupancy::default();
    for t in &running {
        occupied.take(t.role.as_deref(), &t.footprint, &caps);
    }
    let list: Vec<(TaskId, Vec<TaskId>)> = planned
        .ready
        .iter()
        .filter_map(|id| view.task(*id))
        .filter(|t| c.role.is_none() || t.role == c.role)
        .filter(|t| {
            admission::check(
                t.id,
                t.role.as_deref(),
                &t.footprint,
                &[],
                allowed,
                &occupied,
                &caps,
            )
            .is_ok()
        })
        .map(|t| {
            let after = view
                .snap
                .edges
                .iter()
                .filter(|e| {
                    e.to == t.id && e.kind == EdgeKind::Blocks && !view.has_children(e.from)
                })
                .map(|e| e.from)
                .collect();
            (t.id, after)
        })
        .collect();
    if !list.is_empty() {
        return Ok(list);
    }
    if let Some(h) = holds.first() {
        return Err(held(h));
    }
    Err(if planned.ready.is_empty() {
        format!(
            "nothing is ready: {} running, {} waiting, {} stuck behind failed or held tasks",
            running.len(),
            planned.waiting.len(),
            planned.stuck.len()
        )
    } else {
        format!(
            "{} task(s) ready, none for this claim (role filter, role caps, group caps or file footprints of running work)",
            planned.ready.len()
        )
    })
}

/// The specialist prompt for `task`: the template of `role` (default: the task's role) with the
/// task, the objectives and the dependencies' results.
pub async fn render_prompt(p: &Project, task: &Task, role: Option<&str>) -> Result<String, Error> {
    let role = role.map(str::to_owned).or_else(|| task.role.clone());
    let template = match &role {
        Some(r) => {
            check_role(p, r)?;
            p.roles.get(r).map(|x| x.prompt.clone()).unwrap_or_default()
        }
        None => runs::DEFAULT_PROMPT.to_owned(),
    };
    let budget = p
        .config
        .run
        .context_budget()
        .map_err(|e| Error::invalid(format!("[run] context_budget: {e}")))?;
    let memory = crate::memory::paths(p)?;
    let ctx = downbeat_engine::run::prompt_context(p.store.as_ref(), task, budget, &memory).await?;
    let mut out =
        downbeat_engine::prompt::render(role.as_deref().unwrap_or("default"), &template, &ctx)
            .map_err(|e| Error::invalid(e.to_string()))?;
    out.push_str(&downbeat_engine::prompt::context_sections(&template, &ctx));
    Ok(out)
}

/// Task `q` and its specialist prompt (see [`render_prompt`]).
pub async fn prompt_for(
    p: &Project,
    q: &str,
    role: Option<&str>,
) -> Result<(TaskId, String), Error> {
    let id = resolve(p, q).await?;
    let t = p.store.task(id).await?;
    Ok((id, render_prompt(p, &t, role).await?))
}

/// The end of a claimed piece of work.
#[derive(Debug, Default, Clone)]
pub struct End {
    pub task: Option<String>,
    /// The fencing token the claim returned (`EPOCH.ATTEMPT`).
    pub token: Option<String>,
    pub summary: Option<String>,
    pub artifacts: Vec<String>,
    pub flags: Vec<String>,
    pub discovered: Vec<DiscoveredTask>,
    pub reason: Option<String>,
    pub retry: bool,
    pub lease: Option<String>,
}

/// The claimed task under its token, or why the token is stale. The task row decides: the
/// store refuses a finish whose epoch no longer matches anyway.
async fn claimed(p: &Project, e: &End) -> Result<(Task, Fence), Error> {
    let (Some(q), Some(token)) = (&e.task, &e.token) else {
        return Err(Error::invalid(
            "`task` and `token` (the fencing token the claim returned) are required",
        ));
    };
    let fence = parse_token(token)?;
    let id = resolve(p, q).await?;
    let t = p.store.task(id).await?;
    if t.status == Status::Running && t.lease_epoch == fence.epoch {
        Ok((t, fence))
    } else {
        Err(stale(&t, fence))
    }
}

fn stale(t: &Task, fence: Fence) -> Error {
    let now = if t.status == Status::Running {
        format!(
            "running under another claim (held by {})",
            t.lease_holder.as_deref().unwrap_or("someone")
        )
    } else {
        t.status.to_string()
    };
    Error::conflict(format!(
        "stale fencing token {fence} for task {}: the task is now {now}. Its lease expired, or it was claimed again, reopened or cancelled; this result was not recorded",
        t.id
    ))
    .with_hint("claim the task again to work on it")
}

/// A renewed lease.
#[derive(Debug, Clone, Serialize)]
pub struct Heartbeat {
    pub task: TaskId,
    pub lease_until: Timestamp,
}

pub async fn heartbeat(p: &Project, e: &End) -> Result<Heartbeat, Error> {
    let (t, fence) = claimed(p, e).await?;
    let lease = lease_of(p, e.lease.as_deref())?;
    let holder = t.lease_holder.clone().unwrap_or_default();
    let until = Timestamp(p.now().0 + lease.0);
    let held = p.store.renew_leases(&holder, until).await?;
    if !held.contains(&(t.id, fence.epoch)) {
        return Err(stale(&p.store.task(t.id).await?, fence));
    }
    Ok(Heartbeat {
        task: t.id,
        lease_until: until,
    })
}

/// How claimed work ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndAction {
    /// Done: the summary, artifacts, flags and discovered tasks are recorded.
    Complete,
    /// Failed (or, with `retry`, back to pending for another attempt).
    Fail,
    /// Given back untouched: pending again, for anyone.
    Release,
}

/// What a flag raised with a completion did.
#[derive(Debug, Clone, Serialize)]
pub struct FlagDone {
    pub flag: String,
    pub action: String,
    pub detail: String,
}

/// Claimed work that ended.
#[derive(Debug, Clone, Serialize)]
pub struct Ended {
    pub task: TaskId,
    /// `completed`, `failed`, `pending` (a retry or a release) or `cancelled`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub artifacts: Vec<String>,
    /// Follow-ups and discovered tasks the report created.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub created: Vec<TaskId>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<FlagDone>,
    /// Why a flag rule asks runners to stop.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub holds: Vec<Hold>,
}

/// Where the end leaves the task, and what the ledger calls it.
struct Landing {
    status: FinishStatus,
    outcome: &'static str,
    error: Option<String>,
    summary: Option<String>,
}

fn landing(p: &Project, e: &End, how: EndAction) -> Landing {
    match how {
        EndAction::Complete => Landing {
            status: FinishStatus::Completed,
            outcome: "succeeded",
            error: None,
            summary: e.summary.clone(),
        },
        EndAction::Fail => Landing {
            status: if e.retry {
                FinishStatus::Retry {
                    not_before: p.now(),
                }
            } else {
                FinishStatus::Failed
            },
            outcome: "failed",
            error: Some(e.reason.clone().unwrap_or_else(|| "failed".into())),
            summary: e.summary.clone(),
        },
        EndAction::Release => Landing {
            status: FinishStatus::Requeue,
            outcome: "released",
            error: e.reason.clone(),
            summary: None,
        },
    }
}

/// Checks a completion's report and keeps its artifacts (copied off the async threads), read
/// from `root` (the project, or the task's worktree).
async fn checked_report(
    p: &Project,
    e: &End,
    root: std::path::PathBuf,
) -> Result<Vec<downbeat_store::ArtifactRecord>, Error> {
    for d in &e.discovered {
        if d.title.trim().is_empty() {
            return Err(Error::invalid("a discovered task needs a title"));
        }
        if let Some(r) = &d.role {
            check_role(p, r)?;
        }
    }
    for f in &e.flags {
        let flag = downbeat_core::flags::Flag::parse(f);
        downbeat_core::flags::check_name(&flag.name).map_err(|m| {
            Error::invalid(m).with_hint("report a flag as `NAME` or `NAME: what you found`")
        })?;
    }
    let limit = p
        .config
        .run
        .artifact_limit()
        .map_err(|e| Error::invalid(format!("[run] artifact_limit: {e}")))?;
    let (dir, paths) = (p.dir().join("artifacts"), e.artifacts.clone());
    tokio::task::spawn_blocking(move || {
        paths
            .iter()
            .map(|a| {
                downbeat_engine::artifacts::store(&root, &dir, a, limit)
                    .map_err(|err| Error::invalid(err.to_string()))
            })
            .collect()
    })
    .await
    .map_err(|e| Error::internal(format!("could not store the artifacts: {e}")))?
}

/// What the report of a completion asks of the graph, computed before anything commits.
async fn report_effects(
    p: &Project,
    t: &Task,
    e: &End,
) -> Result<Vec<downbeat_core::flags::Effect>, Error> {
    let lineage = downbeat_core::flags::lineage_of(&t.tags);
    if lineage.is_empty() && e.flags.is_empty() && e.discovered.is_empty() {
        return Ok(Vec::new());
    }
    let flags: Vec<downbeat_core::flags::Flag> = e
        .flags
        .iter()
        .map(|f| downbeat_core::flags::Flag::parse(f))
        .collect();
    let needs = !e.flags.is_empty() || e.discovered.iter().any(|d| d.blocks_dependents);
    let dependents = if needs {
        downbeat_engine::run::load_dependents(p.store.as_ref(), t.id)
            .await
            .map_err(runs::run_error)?
    } else {
        Vec::new()
    };
    let completion = downbeat_core::flags::Completion {
        task: t.id,
        title: &t.title,
        flags: &flags,
        discovered: &e.discovered,
        dependents: &dependents,
        lineage: &lineage,
        max_depth: p.config.flags.max_depth(),
    };
    downbeat_engine::run::completion_effects(&p.config.rules, &completion).map_err(runs::run_error)
}

/// Completes, fails or releases claimed work under its fencing token.
pub async fn end(p: &Project, e: &End, how: EndAction) -> Result<Ended, Error> {
    let (t, fence) = claimed(p, e).await?;
    let tree = p.dir().join("worktrees").join(t.id.to_string());
    let artifacts = if how == EndAction::Complete {
        let root = if tree.is_dir() { tree } else { p.root.clone() };
        checked_report(p, e, root).await?
    } else {
        Vec::new()
    };
    // The report's effects are computed first and commit with the completion, or not at all.
    let mut effects = if how == EndAction::Complete {
        report_effects(p, &t, e).await?
    } else {
        Vec::new()
    };
    let paths: Vec<String> = artifacts.iter().map(|a| a.path.clone()).collect();
    let mut l = landing(p, e, how);
    // Work done in a worktree is committed and merged before the completion is recorded.
    let git = match how {
        EndAction::Complete => integrated(p, &t, e, &mut l, &mut effects).await?,
        EndAction::Release => {
            crate::worktrees::release_claim(p, &t).await?;
            None
        }
        EndAction::Fail => None,
    };
    let batch = Batch {
        finishes: vec![Finish {
            task: t.id,
            epoch: fence.epoch,
            attempt_id: fence.attempt,
            status: l.status,
            outcome: l.outcome.into(),
            exit_code: None,
            error: l.error,
            summary: l.summary,
            tokens: None,
            detail: downbeat_core::attempt::AttemptDetail {
                git,
                ..Default::default()
            },
            artifacts,
            effects,
        }],
        claims: vec![],
        holder: t.lease_holder.clone().unwrap_or_default(),
        lease_until: p.now(),
        quiet: false,
        holds_seen: None,
        caps: vec![],
    };
    let res = p.store.commit_batch(&batch, &p.actor().await?).await?;
    if !res.rejected.is_empty() {
        return Err(stale(&p.store.task(t.id).await?, fence));
    }
    if l.status == FinishStatus::Completed {
        // Taken again at the next completion if it fails now.
        let _ = crate::objectives::settle(p).await;
    }
    let mut out = Ended {
        task: t.id,
        status: match l.status {
            FinishStatus::Completed => "completed",
            FinishStatus::Failed => "failed",
            FinishStatus::Retry { .. } | FinishStatus::Requeue => "pending",
            FinishStatus::Cancelled => "cancelled",
        },
        artifacts: paths,
        created: Vec::new(),
        flags: Vec::new(),
        stop: None,
        holds: Vec::new(),
    };
    if let Some(done) = res.effects.first() {
        let events: Mutex<Vec<RunEvent>> = Mutex::new(Vec::new());
        let emit = |ev: RunEvent| {
            if let Ok(mut v) = events.lock() {
                v.push(ev);
            }
        };
        let fx = downbeat_engine::run::announce(&batch.finishes[0].effects, done, &emit);
        out.flags = events
            .into_inner()
            .unwrap_or_default()
            .into_iter()
            .filter_map(|ev| match ev {
                RunEvent::Flag {
                    flag,
                    action,
                    detail,
                    ..
                } => Some(FlagDone {
                    flag,
                    action,
                    detail,
                }),
                _ => None,
            })
            .collect();
        out.created = fx.created;
        out.stop = fx.stop;
        out.holds = fx.holds;
    }
    Ok(out)
}

/// Integrates the work of a completing claim done in a worktree; a merge conflict turns the
/// completion into what the conflict policy says (a failure, a retry, or a completion with a
/// resolver task).
async fn integrated(
    p: &Project,
    t: &Task,
    e: &End,
    l: &mut Landing,
    effects: &mut Vec<downbeat_core::flags::Effect>,
) -> Result<Option<downbeat_core::attempt::GitWork>, Error> {
    use downbeat_core::attempt::MergeState;
    use downbeat_engine::executor::{AgentReport, Outcome, OutcomeKind};
    let Some(work) =
        crate::worktrees::integrate_claim(p, t, t.attempts, e.summary.as_deref()).await?
    else {
        return Ok(None);
    };
    if work.state != MergeState::Conflict {
        return Ok(Some(work));
    }
    let dependents: Vec<TaskId> = downbeat_engine::run::load_dependents(p.store.as_ref(), t.id)
        .await
        .map_err(runs::run_error)?
        .into_iter()
        .map(|d| d.id)
        .collect();
    let mut o = Outcome::new(OutcomeKind::Failed, std::time::Duration::ZERO);
    o.report = Some(AgentReport {
        summary: e.summary.clone(),
        ..AgentReport::default()
    });
    let error = format!(
        "merge conflict with the integration branch in {}",
        work.conflicts.join(", ")
    );
    o.detail.git = Some(work);
    let fx = downbeat_engine::run::on_conflict(&p.config.worktrees, t.id, &t.title, &mut o, || {
        dependents
    });
    if o.kind == OutcomeKind::Succeeded {
        effects.extend(fx.effects);
    } else {
        effects.clear();
        l.status = if fx.final_failure {
            FinishStatus::Failed
        } else {
            FinishStatus::Retry {
                not_before: p.now(),
            }
        };
        l.outcome = "failed";
        l.error = Some(error);
    }
    Ok(o.detail.git)
}

/// The fence a token names (`EPOCH.ATTEMPT`), or why it names none.
pub fn parse_token(token: &str) -> Result<Fence, Error> {
    token.parse().map_err(Error::invalid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Kind;

    #[test]
    fn a_holder_name_keeps_only_safe_characters() {
        assert_eq!(holder("cli", None), "mcp:cli");
        assert_eq!(holder("cli", Some("")), "mcp:cli");
        assert_eq!(holder("cli", Some("w 1:x")), "mcp:cli/w-1-x");
    }

    #[test]
    fn a_claim_without_work_says_why_with_a_null_task() {
        let v = serde_json::to_value(Claim::none("nothing is ready")).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"task": null, "reason": "nothing is ready"})
        );
    }

    #[test]
    fn a_token_that_is_not_a_fence_is_invalid_input() {
        let e = parse_token("seven").unwrap_err();
        assert_eq!(e.kind, Kind::Invalid);
        assert!(e.message.contains("fencing token"), "{}", e.message);
    }
}
