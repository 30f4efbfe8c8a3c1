//! The context around the graph that use cases share: sessions, insights, decisions and the
//! project's counters.

use downbeat_core::context::{Decision, DecisionStatus, Insight, Metrics, Session};
use downbeat_core::ids::RecordKind;

use crate::error::Error;
use crate::project::Project;
use crate::tasks::{record, resolve};

/// The open session, or a new one continuing the last.
pub async fn resume_session(p: &Project) -> Result<Session, Error> {
    Ok(match p.store.current_session().await? {
        Some(s) => s,
        None => {
            let prev = p.store.sessions().await?.last().map(|s| s.id.to_string());
            let label = prev
                .map(|x| format!("resumed after {x}"))
                .unwrap_or_else(|| "session".into());
            p.store.start_session(&label, &p.actor().await?).await?
        }
    })
}

/// Opens a session (`label` defaults to `session`).
pub async fn start_session(p: &Project, label: Option<&str>) -> Result<Session, Error> {
    let label = label.unwrap_or("session");
    Ok(p.store.start_session(label, &p.actor().await?).await?)
}

/// Ends the open session.
pub async fn end_session(p: &Project) -> Result<Session, Error> {
    let Some(s) = p.store.current_session().await? else {
        return Err(
            Error::not_found("no open session").with_hint("`downbeat session start` opens one")
        );
    };
    Ok(p.store.end_session(s.id, &p.actor().await?).await?)
}

/// The open session, if any, and the project's counters.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SessionStatus {
    pub session: Option<Session>,
    pub metrics: Metrics,
}

pub async fn session_status(p: &Project) -> Result<SessionStatus, Error> {
    Ok(SessionStatus {
        session: p.store.current_session().await?,
        metrics: p.store.metrics().await?,
    })
}

/// The project's counters (tasks, attempts, tokens, sessions, …).
pub async fn metrics(p: &Project) -> Result<Metrics, Error> {
    Ok(p.store.metrics().await?)
}

/// Records an insight, about task `task` if given.
pub async fn add_insight(p: &Project, text: &str, task: Option<&str>) -> Result<Insight, Error> {
    if text.trim().is_empty() {
        return Err(Error::invalid("an insight needs text"));
    }
    let task = match task {
        Some(t) => Some(resolve(p, t).await?),
        None => None,
    };
    Ok(p.store.add_insight(text, task, &p.actor().await?).await?)
}

pub async fn insights(p: &Project) -> Result<Vec<Insight>, Error> {
    Ok(p.store.insights().await?)
}

/// Records a decision with its reason, about `task` and replacing `supersedes` if given.
pub async fn add_decision(
    p: &Project,
    text: &str,
    why: &str,
    task: Option<&str>,
    supersedes: Option<&str>,
) -> Result<Decision, Error> {
    if text.trim().is_empty() {
        return Err(Error::invalid("a decision needs text"));
    }
    let supersedes = supersedes
        .map(|s| record(RecordKind::Decision, s))
        .transpose()?;
    let task = match task {
        Some(t) => Some(resolve(p, t).await?),
        None => None,
    };
    Ok(p.store
        .add_decision(text, why, task, supersedes, &p.actor().await?)
        .await?)
}

/// Links tasks to objective `id` after it was recorded; the objective as it is afterwards
/// (achieved already when the tasks linked to it are all completed).
pub async fn link_objective(
    p: &Project,
    id: &str,
    tasks: &[String],
) -> Result<downbeat_core::context::Objective, Error> {
    let id = record(RecordKind::Objective, id)?;
    if tasks.is_empty() {
        return Err(Error::invalid("name at least one task to link"));
    }
    let ids = crate::tasks::resolve_all(p, tasks).await?;
    p.store.link_objective(id, &ids, &p.actor().await?).await?;
    crate::objectives::settle(p).await?;
    p.store
        .objectives()
        .await?
        .into_iter()
        .find(|o| o.id == id)
        .ok_or_else(|| Error::not_found(format!("no objective {id}")))
}

/// Every objective with its tasks, oldest first.
pub async fn objectives(p: &Project) -> Result<Vec<downbeat_core::context::Objective>, Error> {
    Ok(p.store.objectives().await?)
}

/// Every decision, oldest first; only the pending ones (proposed, not yet accepted or
/// rejected) with `pending`.
pub async fn decisions(p: &Project, pending: bool) -> Result<Vec<Decision>, Error> {
    let mut all = p.store.decisions().await?;
    if pending {
        all.retain(Decision::is_pending);
    }
    Ok(all)
}

/// Proposes a decision: recorded as pending, not in force (not in prompts, memory files or
/// documents as a decision to follow) until it is accepted.
pub async fn propose_decision(
    p: &Project,
    text: &str,
    why: &str,
    task: Option<&str>,
) -> Result<Decision, Error> {
    if text.trim().is_empty() {
        return Err(Error::invalid("a decision needs text"));
    }
    let task = match task {
        Some(t) => Some(resolve(p, t).await?),
        None => None,
    };
    Ok(p.store
        .propose_decision(text, why, task, &p.actor().await?)
        .await?)
}

/// Accepts (`accept`) or rejects a proposed decision, with an optional reason. Refused to a
/// project acting for a task (an agent's own server): agents propose, the conductor decides.
pub async fn decide(p: &Project, id: &str, accept: bool, why: &str) -> Result<Decision, Error> {
    if let Some(t) = p.acting_for {
        return Err(Error::invalid(format!(
            "acting for task {t}, decisions can be proposed but not accepted or rejected"
        ))
        .with_hint("the conductor accepts or rejects proposals (`downbeat decision accept dN`)"));
    }
    let id = record(RecordKind::Decision, id)?;
    let status = if accept {
        DecisionStatus::Accepted
    } else {
        DecisionStatus::Rejected
    };
    p.store
        .decide(id, status, why, &p.actor().await?)
        .await
        .map_err(|e| match e {
            downbeat_store::Error::Conflict(m) => Error::conflict(m)
                .with_hint("`downbeat decision list` shows where each decision stands"),
            e => e.into(),
        })
}
