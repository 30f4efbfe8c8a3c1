//! Claims by MCP clients: a lease and a fencing token on a ready task, its prompt, heartbeats,
//! and the end of the work (complete, fail, release) with its report.

use std::collections::HashSet;
use std::sync::Mutex;

use downbeat_core::admission;
use downbeat_core::graph;
use downbeat_core::ids::TaskId;
use downbeat_core::task::{EdgeKind, Status, Task};
use downbeat_core::time::{Millis, Timestamp};
use downbeat_engine::executor::DiscoveredTask;
use downbeat_engine::run::RunEvent;
use downbeat_store::{Batch, ClaimRequest, Finish, FinishStatus, Hold};
use serde_json::{Value, json};

use downbeat_app::answer::compact;
use downbeat_app::cache::{GraphCache, View};
use downbeat_app::error::{Error, Kind};
use downbeat_app::project::Project;
use downbeat_app::runs;
use downbeat_app::tasks::{check_role, resolve};

use super::shape::{Out, ids};

use super::tasks::{children, leaf_waits_on};

/// Who holds claims made by this client (and worker).
pub fn holder(client: &str, worker: Option<&str>) -> String {
    match worker {
        Some(w) if !w.is_empty() => format!("mcp:{client}/{}", super::shape::sanitize(w)),
        _ => format!("mcp:{client}"),
    }
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

/// Claims a ready task (the given one, else the best one, respecting role caps and file
/// footprints of running work): it becomes `running` under a new lease epoch, the fencing
/// token the end of the work must present. Two claimants never get the same task: the claim
/// is one conditional write.
pub async fn claim(p: &Project, g: &GraphCache, client: &str, c: &ClaimSpec) -> Out {
    let holder = holder(client, c.worker.as_deref());
    let lease = lease_of(p, c.lease.as_deref())?;
    if let Some(r) = &c.role {
        check_role(p, r)?;
    }
    let actor = p.actor().await?;
    // Claims whose holders stopped sending heartbeats go back to pending first.
    p.store.requeue_running(Some(p.now()), &[], &actor).await?;
    // Each candidate with the dependencies whose completion the claim is conditional on.
    // Holds (a pausing flag rule, `downbeat pause`): only their tasks may start. A hold added
    // after this read refuses the claim in the store.
    let (holds, seen) = p.store.holds_and_last().await?;
    let allowed = if holds.is_empty() {
        None
    } else {
        let view = g.view(p).await?;
        let dag = downbeat_core::graph::TaskDag::new(&view.snap, &|_| None).ok();
        downbeat_store::holds::allowed(&holds, dag.as_ref())
    };
    let candidates: Vec<(TaskId, Vec<TaskId>)> = match &c.task {
        Some(q) => {
            let named = claimable(p, q).await?;
            if let Some(h) = holds.first()
                && allowed.as_ref().is_some_and(|a| !a.contains(&named.0))
            {
                return Err(Error::new(
                    Kind::Conflict,
                    format!("task {} cannot start: {}", named.0, held(h)),
                ));
            }
            vec![named]
        }
        None => match best_ready(p, &*g.view(p).await?, &holds, allowed.as_ref(), c) {
            Ok(list) => list,
            Err(why) => return Ok(json!({"task": null, "reason": why})),
        },
    };
    let lease_until = Timestamp(p.now().0 + lease.0);
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
        };
        let res = p.store.commit_batch(&batch, &actor).await?;
        if res.held {
            // A hold came in after the holds were read: say which.
            let why = match p.store.holds().await?.first() {
                Some(h) => held(h),
                None => "a hold was added while the task was being chosen and has ended since; claim again".into(),
            };
            if c.task.is_some() {
                return Err(Error::new(
                    Kind::Conflict,
                    format!("task {id} cannot start now: {why}"),
                ));
            }
            return Ok(json!({"task": null, "reason": why}));
        }
        let Some(got) = res.claimed.first() else {
            if c.task.is_some() {
                return Err(Error::new(
                    Kind::Conflict,
                    format!("task {id} was claimed or changed meanwhile; it is not claimable now"),
                ));
            }
            continue;
        };
        let task = p.store.task(got.task).await?;
        let prompt = if c.prompt {
            Some(render_prompt(p, &task, None).await?)
        } else {
            None
        };
        return Ok(compact(json!({
            "task": task.id,
            "key": task.key,
            "title": task.title,
            "role": task.role,
            "token": got.epoch,
            "attempt": got.number,
            "lease_until": lease_until,
            "holder": holder,
            "prompt": prompt,
        })));
    }
    Ok(
        json!({"task": null, "reason": "every candidate was claimed by someone else meanwhile; claim again"}),
    )
}

/// A task named by the claimant, checked with targeted queries: a pending live leaf whose
/// dependencies are finished. Returns it with its direct leaf dependencies.
async fn claimable(p: &Project, q: &str) -> Result<(TaskId, Vec<TaskId>), Error> {
    let id = resolve(p, q).await?;
    let t = p.store.task(id).await?;
    let conflict = |m: String| Error::new(Kind::Conflict, m);
    if t.archived {
        return Err(conflict(format!("task {id} is archived")));
    }
    if !children(p, id).await?.is_empty() {
        return Err(conflict(format!(
            "task {id} has children; claim one of its leaves"
        )));
    }
    match t.status {
        Status::Pending => {}
        Status::Running => {
            return Err(conflict(format!(
                "task {id} is already claimed by {}",
                t.lease_holder.as_deref().unwrap_or("someone")
            )));
        }
        other => return Err(conflict(format!("task {id} is {other}, not ready"))),
    }
    let edges = p.store.edges_of(id).await?;
    let waits = leaf_waits_on(p, &t, &edges).await?;
    if !waits.is_empty() {
        return Err(conflict(format!(
            "task {id} is not ready: it waits on {}",
            ids(&waits).join(", ")
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

/// The ready tasks a claim may take, best first (critical path first), within the role filter,
/// role caps and clear of running work's files; or why there are none.
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
    let ctx = downbeat_engine::run::prompt_context(p.store.as_ref(), task).await?;
    downbeat_engine::prompt::render(role.as_deref().unwrap_or("default"), &template, &ctx)
        .map_err(|e| Error::invalid(e.to_string()))
}

pub async fn prompt(p: &Project, q: &str, role: Option<&str>) -> Out {
    let id = resolve(p, q).await?;
    let t = p.store.task(id).await?;
    Ok(json!({"task": id, "prompt": render_prompt(p, &t, role).await?}))
}

/// The end of a claimed piece of work.
#[derive(Debug, Default, Clone)]
pub struct End {
    pub task: Option<String>,
    pub token: Option<i64>,
    pub summary: Option<String>,
    pub artifacts: Vec<String>,
    pub flags: Vec<String>,
    pub discovered: Vec<DiscoveredTask>,
    pub reason: Option<String>,
    pub retry: bool,
    pub lease: Option<String>,
}

/// The claimed task and its open attempt under `token`, or why the token is stale.
async fn claimed(
    p: &Project,
    e: &End,
) -> Result<(Task, downbeat_store::AttemptRecord, i64), Error> {
    let (Some(q), Some(token)) = (&e.task, e.token) else {
        return Err(Error::invalid(
            "`task` and `token` (the fencing token the claim returned) are required",
        ));
    };
    let id = resolve(p, q).await?;
    let t = p.store.task(id).await?;
    let attempt = p
        .store
        .attempts(id)
        .await?
        .into_iter()
        .rev()
        .find(|a| a.epoch == token && a.ended_at.is_none());
    match attempt {
        Some(a) if t.status == Status::Running && t.lease_epoch == token => Ok((t, a, token)),
        _ => Err(stale(&t, token)),
    }
}

fn stale(t: &Task, token: i64) -> Error {
    let now = if t.status == Status::Running {
        format!(
            "running under token {} (held by {})",
            t.lease_epoch,
            t.lease_holder.as_deref().unwrap_or("someone")
        )
    } else {
        t.status.to_string()
    };
    Error::new(
        Kind::Conflict,
        format!(
            "stale fencing token {token} for task {}: the task is now {now}. Its lease expired, or it was claimed again, reopened or cancelled; this result was not recorded",
            t.id
        ),
    )
    .with_hint("claim the task again to work on it")
}

pub async fn heartbeat(p: &Project, e: &End) -> Out {
    let (t, _, token) = claimed(p, e).await?;
    let lease = lease_of(p, e.lease.as_deref())?;
    let holder = t.lease_holder.clone().unwrap_or_default();
    let until = Timestamp(p.now().0 + lease.0);
    let held = p.store.renew_leases(&holder, until).await?;
    if !held.contains(&(t.id, token)) {
        return Err(stale(&p.store.task(t.id).await?, token));
    }
    Ok(json!({"task": t.id, "lease_until": until}))
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

/// Completes, fails or releases claimed work under its fencing token.
pub async fn end(p: &Project, e: &End, how: EndAction) -> Out {
    let (t, attempt, token) = claimed(p, e).await?;
    let mut artifacts = Vec::new();
    let (status, outcome, error, summary) = match how {
        EndAction::Complete => {
            for d in &e.discovered {
                if d.title.trim().is_empty() {
                    return Err(Error::invalid("a discovered task needs a title"));
                }
                if let Some(r) = &d.role {
                    check_role(p, r)?;
                }
            }
            if let Some(f) = e.flags.iter().find(|f| f.trim().is_empty()) {
                return Err(Error::invalid(format!("empty flag `{f}`")));
            }
            for a in &e.artifacts {
                let rec = downbeat_engine::artifacts::store(&p.root, &p.dir().join("artifacts"), a)
                    .map_err(|err| Error::invalid(err.to_string()))?;
                artifacts.push(rec);
            }
            (
                FinishStatus::Completed,
                "succeeded",
                None,
                e.summary.clone(),
            )
        }
        EndAction::Fail => (
            if e.retry {
                FinishStatus::Retry {
                    not_before: p.now(),
                }
            } else {
                FinishStatus::Failed
            },
            "failed",
            Some(e.reason.clone().unwrap_or_else(|| "failed".into())),
            e.summary.clone(),
        ),
        EndAction::Release => (FinishStatus::Requeue, "released", e.reason.clone(), None),
    };
    let paths: Vec<String> = artifacts.iter().map(|a| a.path.clone()).collect();
    let reported = how == EndAction::Complete && (!e.flags.is_empty() || !e.discovered.is_empty());
    // The report's effects are computed first and commit with the completion, or not at all.
    let effects = if reported {
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
            flags: &e.flags,
            discovered: &e.discovered,
            dependents: &dependents,
        };
        downbeat_engine::run::completion_effects(&p.config.rules, &completion)
            .map_err(runs::run_error)?
    } else {
        Vec::new()
    };
    let batch = Batch {
        finishes: vec![Finish {
            task: t.id,
            epoch: token,
            attempt_id: attempt.id,
            status,
            outcome: outcome.into(),
            exit_code: None,
            error,
            summary,
            tokens: None,
            artifacts,
            effects,
        }],
        claims: vec![],
        holder: t.lease_holder.clone().unwrap_or_default(),
        lease_until: p.now(),
        quiet: false,
        holds_seen: None,
    };
    let actor = p.actor().await?;
    let res = p.store.commit_batch(&batch, &actor).await?;
    if !res.rejected.is_empty() {
        return Err(stale(&p.store.task(t.id).await?, token));
    }
    let shown = match status {
        FinishStatus::Completed => "completed",
        FinishStatus::Failed => "failed",
        FinishStatus::Retry { .. } | FinishStatus::Requeue => "pending",
        FinishStatus::Cancelled => "cancelled",
    };
    let mut out = json!({"task": t.id, "status": shown, "artifacts": paths});
    if let Some(done) = res.effects.first() {
        let events: Mutex<Vec<RunEvent>> = Mutex::new(Vec::new());
        let emit = |ev: RunEvent| {
            if let Ok(mut v) = events.lock() {
                v.push(ev);
            }
        };
        let fx = downbeat_engine::run::announce(&batch.finishes[0].effects, done, &emit);
        let flags: Vec<Value> = events
            .into_inner()
            .unwrap_or_default()
            .into_iter()
            .filter_map(|ev| match ev {
                RunEvent::Flag {
                    flag,
                    action,
                    detail,
                    ..
                } => Some(json!({"flag": flag, "action": action, "detail": detail})),
                _ => None,
            })
            .collect();
        out["created"] = json!(ids(&fx.created));
        out["flags"] = json!(flags);
        if let Some(s) = fx.stop {
            out["stop"] = json!(s);
        }
        if !fx.holds.is_empty() {
            out["holds"] = json!(fx.holds);
        }
    }
    Ok(compact(out))
}
