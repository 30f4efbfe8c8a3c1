//! Maintenance: stale tasks, archivable work and structural damage found by the core's policy,
//! and, when asked, acted upon (requeue, archive, repair, optimise) — by hand (`maintain
//! --apply`) or on a schedule in the long-running front ends ([`scheduled`]).
//!
//! A schedule is shared by every process on the database: a round starts only by swapping the
//! `meta` entry [`KEY`] (who ran last, and when) while it still holds what was read, and only
//! when the last round is a period old, so one process runs it per period.

use std::time::Duration;

use downbeat_core::maintain::{self, Finding, Policy};
use downbeat_core::task::{Status, Task};
use downbeat_core::time::{Millis, Timestamp};
use downbeat_store::TaskFilter;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::error::Error;
use crate::project::Project;

/// The `meta` key of the schedule: the last round (`Round` as JSON).
pub const KEY: &str = "maintain.scheduled";

/// What maintenance found, and what it did when applied.
pub struct Maintenance {
    pub findings: Vec<Finding>,
    pub integrity: downbeat_store::Integrity,
    pub actions: Vec<String>,
}

/// Which repairs a round may make.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Actions {
    /// Stale running tasks back to pending.
    pub requeue: bool,
    pub archive: bool,
    /// Dangling references removed.
    pub repair: bool,
    /// Worktrees of tasks not running removed.
    pub worktrees: bool,
    pub optimize: bool,
}

impl Actions {
    /// Every one (`maintain --apply`).
    pub const ALL: Actions = Actions {
        requeue: true,
        archive: true,
        repair: true,
        worktrees: true,
        optimize: true,
    };

    /// From `[maintain] apply`.
    pub fn parse(names: &[String]) -> Result<Actions, Error> {
        let mut a = Actions::default();
        for n in names {
            match n.as_str() {
                "requeue" => a.requeue = true,
                "archive" => a.archive = true,
                "repair" => a.repair = true,
                "worktrees" => a.worktrees = true,
                "optimize" => a.optimize = true,
                other => {
                    return Err(Error::invalid(format!(
                        "[maintain] apply: unknown action `{other}`"
                    ))
                    .with_hint("the actions are requeue, archive, repair, worktrees, optimize"));
                }
            }
        }
        Ok(a)
    }
}

/// Reviews the project (stale tasks, archivable work, damage) and, with `apply`, acts on the
/// findings. Thresholds default to the configuration.
pub async fn maintenance(
    p: &Project,
    apply: bool,
    stale_after: Option<&str>,
    archive_after: Option<&str>,
) -> Result<Maintenance, Error> {
    let (tasks, findings, integrity) = review(p, stale_after, archive_after).await?;
    let mut actions = Vec::new();
    if apply {
        actions = act(p, &tasks, &findings, &integrity, Actions::ALL, false).await?;
    }
    Ok(Maintenance {
        findings,
        integrity,
        actions,
    })
}

type Reviewed = (Vec<Task>, Vec<Finding>, downbeat_store::Integrity);

async fn review(
    p: &Project,
    stale_after: Option<&str>,
    archive_after: Option<&str>,
) -> Result<Reviewed, Error> {
    let dur =
        |what: &str, s: &str| Millis::parse(s).map_err(|e| Error::invalid(format!("{what}: {e}")));
    let mut policy = Policy {
        stale_after: dur(
            "stale_after",
            stale_after.unwrap_or(&p.config.maintain.stale_after),
        )?,
        archive_after: dur(
            "archive_after",
            archive_after.unwrap_or(&p.config.maintain.archive_after),
        )?,
        ..Default::default()
    };
    for r in p.roles.iter() {
        if let Some(s) = &r.stale_after {
            policy
                .stale_after_role
                .insert(r.name.clone(), dur("stale_after", s)?);
        }
    }
    let tasks = p.store.tasks(&TaskFilter::default()).await?;
    let edges = p.store.graph().await?.edges;
    let findings = maintain::review(&tasks, &edges, p.now(), &policy);
    let integrity = p.store.integrity().await?;
    Ok((tasks, findings, integrity))
}

/// Acts on `findings` as `allowed` says. `spare_leased`: leave running tasks whose lease is
/// still in force (a runner renews it; its agent is alive however long it has been quiet).
async fn act(
    p: &Project,
    live: &[Task],
    findings: &[Finding],
    integrity: &downbeat_store::Integrity,
    allowed: Actions,
    spare_leased: bool,
) -> Result<Vec<String>, Error> {
    let actor = p.actor().await?;
    let now = p.now();
    let mut actions: Vec<String> = Vec::new();
    for f in findings {
        match f {
            Finding::StaleRunning { task, idle, .. } if allowed.requeue => {
                let leased = live
                    .iter()
                    .find(|t| t.id == *task)
                    .and_then(|t| t.lease_expires)
                    .is_some_and(|e| e > now);
                if spare_leased && leased {
                    continue;
                }
                let note_text =
                    format!("put back to pending by maintenance: no activity for {idle}");
                p.store
                    .set_status(*task, Status::Pending, Some(&note_text), &actor)
                    .await?;
                actions.push(format!("requeued {task}"));
            }
            Finding::Archive { root, tasks } if allowed.archive => {
                let n = p.store.archive(tasks, &actor).await?;
                actions.push(format!("archived {n} task(s) under {root}"));
            }
            _ => {}
        }
    }
    if allowed.repair && *integrity != downbeat_store::Integrity::default() {
        let n = p.store.repair(integrity, &actor).await?;
        actions.push(format!("repaired {n} dangling reference(s)"));
    }
    if allowed.worktrees {
        // Worktrees kept by failed attempts of tasks that are not running any more.
        let removed = crate::worktrees::clean(p).await?;
        if removed > 0 {
            actions.push(format!(
                "removed {removed} worktree(s) of tasks not running"
            ));
        }
    }
    if allowed.optimize {
        p.store.optimize().await?;
        p.store
            .record_event("maintain.optimized", "database", None, &actor)
            .await?;
        actions.push("optimised the database".into());
    }
    Ok(actions)
}

/// A schedule: how often, and what a round may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    pub every: Duration,
    pub allowed: Actions,
}

/// The project's schedule (`[maintain] every`, `apply`); `None` when it has none.
pub fn schedule(p: &Project) -> Result<Option<Schedule>, Error> {
    let m = &p.config.maintain;
    let allowed = Actions::parse(&m.apply)?;
    let Some(every) = m.every.as_deref() else {
        return Ok(None);
    };
    let every =
        Millis::parse(every).map_err(|e| Error::invalid(format!("[maintain] every: {e}")))?;
    Ok((every.0 > 0).then(|| Schedule {
        every: every.duration(),
        allowed,
    }))
}

/// One scheduled round: who ran it, when, what it found and did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Round {
    pub holder: String,
    /// Milliseconds since the epoch.
    pub at_ms: i64,
    /// `false` while it runs (or when its process stopped in the middle).
    #[serde(default)]
    pub done: bool,
    #[serde(default)]
    pub findings: usize,
    #[serde(default)]
    pub actions: Vec<String>,
}

impl Round {
    pub fn at(&self) -> Timestamp {
        Timestamp(self.at_ms)
    }
}

/// The last scheduled round, if any ran.
pub async fn last_round(p: &Project) -> Result<Option<Round>, Error> {
    Ok(p.store
        .meta_get(KEY)
        .await?
        .and_then(|v| serde_json::from_str(&v).ok()))
}

/// Runs one round as `holder` if the last one (by anyone) is a period old and no other process
/// took this period first; `None` when it was not this process's turn. Every finding is
/// recorded as a `maintain.found` event (with what was done about it), the round between
/// `maintain.started` and `maintain.finished`.
pub async fn run_if_due(p: &Project, s: &Schedule, holder: &str) -> Result<Option<Round>, Error> {
    let now = p.now();
    let current = p.store.meta_get(KEY).await?;
    let last: Option<Round> = current
        .as_deref()
        .and_then(|v| serde_json::from_str(v).ok());
    // A tenth of a period's slack, so timers firing a little early still find it due.
    let period = Millis::of(s.every).0;
    if last.is_some_and(|l| now.0 - l.at_ms < period - period / 10) {
        return Ok(None);
    }
    let mut round = Round {
        holder: holder.to_owned(),
        at_ms: now.0,
        done: false,
        findings: 0,
        actions: Vec::new(),
    };
    let started = to_json(&round)?;
    let actor = p.actor().await?;
    let ours = p
        .store
        .meta_swap(
            KEY,
            current.as_deref(),
            &started,
            "maintain.started",
            "maintenance",
            Some(json!({"holder": holder})),
            &actor,
        )
        .await?;
    if !ours {
        return Ok(None);
    }
    let (tasks, findings, integrity) = review(p, None, None).await?;
    let actions = act(p, &tasks, &findings, &integrity, s.allowed, true).await?;
    for f in &findings {
        let (entity, done) = match f {
            Finding::StaleRunning { task, .. } => {
                let requeued = format!("requeued {task}");
                (
                    task.to_string(),
                    actions.contains(&requeued).then_some("requeued"),
                )
            }
            Finding::StaleBlocked { task, .. } => (task.to_string(), None),
            Finding::Archive { root, .. } => {
                let prefix = format!("under {root}");
                let archived = actions.iter().any(|a| a.ends_with(&prefix));
                (root.to_string(), archived.then_some("archived"))
            }
            Finding::Cycle { .. } | Finding::ParentLoop { .. } => ("graph".to_owned(), None),
        };
        let mut after = serde_json::to_value(f).unwrap_or_default();
        after["action"] = json!(done.unwrap_or("reported"));
        p.store
            .record_event("maintain.found", &entity, Some(after), &actor)
            .await?;
    }
    round.done = true;
    round.findings = findings.len();
    round.actions = actions;
    let finished = to_json(&round)?;
    let after = json!({"findings": round.findings, "actions": round.actions});
    p.store
        .meta_swap(
            KEY,
            Some(&started),
            &finished,
            "maintain.finished",
            "maintenance",
            Some(after),
            &p.actor().await?,
        )
        .await?;
    Ok(Some(round))
}

fn to_json(r: &Round) -> Result<String, Error> {
    serde_json::to_string(r).map_err(|e| Error::internal(e.to_string()))
}

/// What a scheduled round came to, for the front end to show.
pub enum Ran {
    Round(Round),
    Failed(Error),
}

/// Runs [`run_if_due`] now and then every period until `cancel`, as `holder`. A round that
/// fails (the database briefly away) is reported and the schedule goes on.
pub async fn scheduled(
    p: &Project,
    s: Schedule,
    holder: &str,
    cancel: CancellationToken,
    report: &(dyn Fn(Ran) + Send + Sync),
) {
    loop {
        match run_if_due(p, &s, holder).await {
            Ok(Some(r)) => report(Ran::Round(r)),
            Ok(None) => {}
            Err(e) => report(Ran::Failed(e)),
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(s.every) => {}
        }
    }
}
