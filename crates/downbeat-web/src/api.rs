//! The routes, and the read side of one task and of the graph.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};

use downbeat_app::error::{Error, Kind};
use downbeat_core::task::EdgeKind;

use crate::reply::{ApiError, Reply};
use crate::shapes::{
    self, ArtifactInfo, AttemptInfo, Change, DiffPage, Graph, HoldInfo, Link, Node, Output,
    TaskPage,
};
use crate::state::State as AppState;
use crate::{assets, feed, guard, pages, steer};

pub fn router(s: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(assets::index))
        .route("/assets/{file}", get(assets::file))
        .route("/api/graph", get(graph))
        .route("/api/tasks/{id}", get(task))
        .route("/api/tasks/{id}/output", get(output))
        .route("/api/tasks/{id}/diff", get(diff))
        .route("/api/run", get(pages::run))
        .route("/api/context", get(pages::context))
        .route("/api/events", get(feed::stream))
        .route("/api/schema", get(schema))
        .route("/api/pause", post(steer::pause))
        .route("/api/unpause", post(steer::unpause))
        .route("/api/tasks/{id}/retry", post(steer::retry))
        .route("/api/tasks/{id}/cancel", post(steer::cancel))
        .route("/api/tasks/{id}/run", post(steer::run_task))
        .fallback(not_found)
        .layer(from_fn_with_state(s.clone(), guard::guard))
        .with_state(s)
}

async fn not_found() -> ApiError {
    ApiError(
        Error::not_found("no such page or API route")
            .with_hint("the API is described at /api/schema and in docs/web.md"),
    )
}

async fn schema() -> Json<serde_json::Value> {
    Json(shapes::schemas())
}

/// `GET /api/graph`.
async fn graph(State(s): State<Arc<AppState>>) -> Reply<Graph> {
    let p = s.project();
    let view = s.cache.view(p).await?;
    let layers = downbeat_core::graph::layers(&view.snap).map_err(|c| {
        Error::new(Kind::Conflict, format!("the stored graph is damaged: {c}"))
            .with_hint("run `downbeat maintain` and remove one of the dependencies")
    })?;
    let rollup = view.rollup();
    let critical: HashSet<_> = view.planned.critical_path.iter().copied().collect();
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let (mut done, mut total) = (0u64, 0u64);
    let mut nodes = Vec::with_capacity(view.snap.tasks.len());
    for t in &view.snap.tasks {
        let status = view.state(t.id, t.status);
        let pr = rollup.get(&t.id);
        let container = pr.is_some_and(|p| p.is_container);
        if !container {
            *counts.entry(status.clone()).or_default() += 1;
            total += 1;
            done += u64::from(t.status.satisfies_dependents());
        }
        nodes.push(Node {
            id: t.id.to_string(),
            key: t.key.clone(),
            title: t.title.clone(),
            status,
            role: t.role.clone(),
            parent: t.parent.map(|p| p.to_string()),
            layer: layers.get(&t.id).copied().unwrap_or(0),
            container,
            done: pr.map_or(0, |p| p.done),
            total: pr.map_or(1, |p| p.total),
            critical: critical.contains(&t.id),
            priority: t.priority.to_string(),
            effort: t.effort,
        });
    }
    let edges = view
        .snap
        .edges
        .iter()
        .map(|e| Link {
            from: e.from.to_string(),
            to: e.to.to_string(),
            kind: e.kind.to_string(),
        })
        .collect();
    let holds = downbeat_app::holds::list(p).await?;
    Ok(Json(Graph {
        seq: view.seq(),
        project: project_name(p),
        counts,
        done,
        total,
        layers: layers.values().max().map_or(0, |m| m + 1),
        nodes,
        edges,
        critical_path: view
            .planned
            .critical_path
            .iter()
            .map(ToString::to_string)
            .collect(),
        holds: holds.iter().map(HoldInfo::of).collect(),
        can_run: s.can_run,
    }))
}

fn project_name(p: &downbeat_app::project::Project) -> String {
    p.root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "project".into())
}

/// `GET /api/tasks/{id}`.
async fn task(State(s): State<Arc<AppState>>, Path(id): Path<String>) -> Reply<TaskPage> {
    let p = s.project();
    let d = downbeat_app::views::detail(p, &id, 30).await?;
    let t = &d.task;
    let (_, attempts) = downbeat_app::runs::attempts(p, &t.id.to_string()).await?;
    let prompt = match attempts.last() {
        Some(_) => downbeat_app::logs::source(p, &t.id.to_string(), None)
            .await
            .ok()
            .and_then(|src| src.prompt()),
        None => None,
    };
    let artifacts = downbeat_app::watch::artifacts_of(p, t.id).await?;
    let blocks = |e: &&downbeat_core::task::Edge| e.kind == EdgeKind::Blocks;
    let mut events: Vec<Change> = d.events.iter().map(Change::of).collect();
    events.sort_by_key(|c| std::cmp::Reverse(c.seq));
    Ok(Json(TaskPage {
        id: t.id.to_string(),
        key: t.key.clone(),
        title: t.title.clone(),
        description: t.description.clone(),
        status: t.status.to_string(),
        role: t.role.clone(),
        parent: t.parent.map(|p| p.to_string()),
        priority: t.priority.to_string(),
        effort: t.effort,
        acceptance: t.acceptance.clone(),
        tags: t.tags.clone(),
        result: t.result.clone(),
        depends_on: d
            .edges
            .iter()
            .filter(blocks)
            .filter(|e| e.to == t.id)
            .map(|e| e.from.to_string())
            .collect(),
        dependents: d
            .edges
            .iter()
            .filter(blocks)
            .filter(|e| e.from == t.id)
            .map(|e| e.to.to_string())
            .collect(),
        prompt,
        artifacts: artifacts
            .into_iter()
            .map(|a| ArtifactInfo {
                path: a.path,
                size: a.size,
                sha256: a.sha256,
            })
            .collect(),
        attempts: attempts.iter().map(attempt_info).collect(),
        events,
        git: d.git,
    }))
}

fn attempt_info(a: &downbeat_app::runs::Attempt) -> AttemptInfo {
    let r = &a.record;
    AttemptInfo {
        number: r.number,
        executor: r.executor.clone(),
        worker: r.worker.clone(),
        started_at: r.started_at.rfc3339(),
        ended_at: r.ended_at.map(|t| t.rfc3339()),
        duration_ms: downbeat_app::watch::duration(r.started_at, r.ended_at).map(|d| d.0),
        outcome: r.outcome.clone(),
        error: r.error.clone(),
        tokens_prompt: r.tokens_prompt,
        tokens_completion: r.tokens_completion,
        cost_usd: r.detail.cost_usd,
        agent: r.detail.agent.clone(),
    }
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputQuery {
    /// The attempt (default: the latest).
    attempt: Option<u32>,
    /// The byte offset to read from (the `next` of the previous answer).
    #[serde(default)]
    from: u64,
}

/// At most this much output per answer.
const OUTPUT_CHUNK: usize = 256 * 1024;

/// `GET /api/tasks/{id}/output?attempt=N&from=OFFSET`.
async fn output(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(q): Query<OutputQuery>,
) -> Reply<Output> {
    let p = s.project();
    let src = downbeat_app::logs::source(p, &id, q.attempt).await?;
    let c = downbeat_app::logs::chunk(p, &src, q.from, OUTPUT_CHUNK).await?;
    Ok(Json(Output {
        attempt: src.attempt,
        next: c.next,
        lines: c.lines,
        ended: c.ended,
    }))
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiffQuery {
    attempt: Option<u32>,
    #[serde(default)]
    stat: bool,
}

/// `GET /api/tasks/{id}/diff?attempt=N&stat=true`: the change the task made in its worktree.
async fn diff(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(q): Query<DiffQuery>,
) -> Reply<DiffPage> {
    let d = downbeat_app::worktrees::diff(s.project(), &id, q.attempt, q.stat).await?;
    Ok(Json(DiffPage {
        task: d.task,
        attempt: d.attempt,
        branch: d.git.branch,
        base: d.git.base,
        head: d.git.head,
        diff: d.diff,
    }))
}
