//! The run and the context panels' answers.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;

use crate::reply::Reply;
use crate::shapes::{
    ContextPage, Failure, FlagInfo, HoldInfo, Note, ObjectiveInfo, Point, RunPage, WorkerInfo,
};
use crate::state::State as AppState;

/// Minutes of activity the run panel charts.
const WINDOW_MINUTES: u32 = 60;
/// At most this many failures, insights and flags are listed.
const LIST_MAX: usize = 50;

/// `GET /api/run`.
pub async fn run(State(s): State<Arc<AppState>>) -> Reply<RunPage> {
    let p = s.project();
    let view = s.cache.view(p).await?;
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let (mut done, mut total) = (0u64, 0u64);
    let mut failed = Vec::new();
    for t in &view.snap.tasks {
        if view.has_children(t.id) {
            continue;
        }
        *counts.entry(view.state(t.id, t.status)).or_default() += 1;
        total += 1;
        done += u64::from(t.status.satisfies_dependents());
        if t.status == downbeat_core::task::Status::Failed {
            failed.push(t.id);
        }
    }
    let series = downbeat_app::watch::activity(p, WINDOW_MINUTES).await?;
    let failures = downbeat_app::watch::failures(p, &failed, LIST_MAX).await?;
    let workers = downbeat_app::runs::workers(p).await?;
    Ok(Json(RunPage {
        done,
        total,
        counts,
        series: series
            .iter()
            .map(|m| Point {
                at: m.at.rfc3339(),
                completed: m.completed,
                running: m.running,
            })
            .collect(),
        failures: failures
            .into_iter()
            .map(|f| Failure {
                id: f.id.to_string(),
                title: f.title,
                error: f.error,
                attempts: f.attempts,
            })
            .collect(),
        workers: workers
            .into_iter()
            .map(|w| WorkerInfo {
                name: w.name,
                host: w.host,
                slots: w.slots,
                alive: w.alive,
                heartbeat: w.heartbeat_at.rfc3339(),
                running: w.holding.iter().map(ToString::to_string).collect(),
            })
            .collect(),
    }))
}

/// `GET /api/context`.
pub async fn context(State(s): State<Arc<AppState>>) -> Reply<ContextPage> {
    let p = s.project();
    let view = s.cache.view(p).await?;
    let rollup = view.rollup();
    let objectives = downbeat_app::context::objectives(p)
        .await?
        .into_iter()
        .map(|o| {
            let (done, total) = downbeat_app::watch::objective_progress(&o.tasks, rollup);
            ObjectiveInfo {
                id: o.id.to_string(),
                title: o.title,
                done,
                total,
            }
        })
        .collect();
    let mut decisions: Vec<Note> = downbeat_app::context::decisions(p, false)
        .await?
        .into_iter()
        .filter(|d| d.in_force())
        .map(|d| Note {
            id: d.id.to_string(),
            text: if d.why.is_empty() {
                d.text
            } else {
                format!("{} (why: {})", d.text, d.why)
            },
            task: d.task.map(|t| t.to_string()),
            at: d.created_at.rfc3339(),
        })
        .collect();
    decisions.reverse();
    let mut insights: Vec<Note> = downbeat_app::context::insights(p)
        .await?
        .into_iter()
        .map(|i| Note {
            id: i.id.to_string(),
            text: i.text,
            task: i.task.map(|t| t.to_string()),
            at: i.created_at.rfc3339(),
        })
        .collect();
    insights.reverse();
    insights.truncate(LIST_MAX);
    let flags = downbeat_app::watch::flags(p, LIST_MAX)
        .await?
        .into_iter()
        .map(|f| FlagInfo {
            flag: f.flag,
            task: f.task,
            at: f.at.rfc3339(),
            detail: f.detail,
            state: f.state,
            note: f.note,
            follow_up: f.follow_up,
        })
        .collect();
    let holds = downbeat_app::holds::list(p).await?;
    Ok(Json(ContextPage {
        objectives,
        decisions,
        insights,
        flags,
        holds: holds.iter().map(HoldInfo::of).collect(),
    }))
}
