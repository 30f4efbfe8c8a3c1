//! The project as a whole: sessions, plans, waves, context records, status, documents,
//! maintenance, attempts, the log, metrics, roles and the graph as text.

use downbeat_core::context::ObjectiveStatus;
use downbeat_core::graph;
use downbeat_core::ids::RecordKind;
use downbeat_core::plan::{self, PlanFormat};
use downbeat_core::report::Counts;
use downbeat_core::time::{Millis, Timestamp};
use downbeat_store::EventQuery;
use serde_json::{Map, Value, json};

use downbeat_app::answer::compact;
use downbeat_app::cache::{GraphCache, View};
use downbeat_app::error::{Error, Kind};
use downbeat_app::project::Project;
use downbeat_app::tasks::{record, resolve, resolve_all};
use downbeat_app::{context, documents, maintenance, plans, views};

use super::shape::{Out, ids, required, unknown_action};

pub async fn session(p: &Project, action: &str, label: Option<&str>) -> Out {
    match action {
        "resume" => {
            let s = context::resume_session(p).await?;
            let v = views::view(p).await?;
            let brief = downbeat_core::report::brief(&v, Some(&s));
            Ok(json!({"session": s.id, "brief": brief}))
        }
        "start" => {
            let s = context::start_session(p, label).await?;
            Ok(json!({"session": s.id, "started": true}))
        }
        "end" => {
            let s = context::end_session(p).await?;
            Ok(json!({"session": s.id, "ended": true}))
        }
        "status" => {
            let st = context::session_status(p).await?;
            Ok(json!({"session": st.session, "metrics": st.metrics}))
        }
        other => Err(unknown_action(other, &["resume", "start", "end", "status"])),
    }
}

/// Validates a plan given as JSON (the plan-file structure), compares it with the project and,
/// unless `dry` (`check`), applies it in one transaction: everything the first time, the
/// difference when it was applied before under the same `plan.name`.
pub async fn plan_apply(p: &Project, plan_json: Option<&Value>, dry: bool, skip: bool) -> Out {
    let Some(v) = plan_json else {
        return Err(Error::invalid(
            "`plan` is required: {\"tasks\": [{\"key\": …, \"title\": …, \"role\": …, \"depends_on\": […]}], …}",
        ));
    };
    if !v.is_object() {
        return Err(Error::invalid(
            "`plan` must be a JSON object with the plan-file structure (tasks, objectives, decisions, insights, roles)",
        ));
    }
    let parsed = plan::parse(&v.to_string(), PlanFormat::Json)
        .map_err(|e| Error::invalid(format!("plan: {}", e.message)))?;
    let req = plans::ApplyRequest {
        shown: "plan".into(),
        fallback_name: None,
        dry_run: dry,
        skip_conflicts: skip,
        skip_option: "`skip_conflicts`",
    };
    let outcome = plans::apply(p, &parsed, &req).await?;
    let prepared = &outcome.prepared;
    let d = &prepared.diff;
    let validated = &prepared.validated;
    // The difference, when the plan matched tasks already in the project.
    let diff = |added: Value| {
        if prepared.first {
            return json!({});
        }
        json!({
            "added": added,
            "changed": d.changed.iter().map(|c| compact(json!({
                "id": c.id, "key": c.key,
                "fields": c.fields.iter().map(|f| f.field).collect::<Vec<_>>(),
            }))).collect::<Vec<_>>(),
            "removed": d.removed.iter().map(|r| json!({"id": r.id, "key": r.key, "cancelled": r.cancel})).collect::<Vec<_>>(),
            "conflicts": d.conflicts.iter().map(|c| json!({"id": c.id, "key": c.key, "reason": c.reason})).collect::<Vec<_>>(),
            "unchanged": d.unchanged,
        })
    };
    let Some(plans::Applied { applied, notes }) = &outcome.applied else {
        let added: Vec<&str> = d
            .new
            .tasks
            .iter()
            .filter_map(|t| t.new.key.as_deref())
            .collect();
        let mut v = json!({
            "valid": true,
            "tasks": validated.tasks.len(),
            "edges": validated.edges.len(),
            "objectives": validated.objectives.len(),
        });
        merge(&mut v, diff(json!(added)));
        return Ok(compact(v));
    };
    let mut notes = notes.clone();
    if parsed.plan.name.is_none() {
        notes.push(
            "the plan has no `plan.name`, so this application is not recorded: tasks later left out of it will not be cancelled".into(),
        );
    }
    let keys: Map<String, Value> = applied
        .tasks
        .iter()
        .filter_map(|(k, id)| k.as_ref().map(|k| (k.clone(), json!(id))))
        .collect();
    let mut v = json!({
        "tasks": applied.tasks.iter().map(|(_, id)| id.to_string()).collect::<Vec<_>>(),
        "keys": keys,
        "edges": applied.edges,
        "objectives": applied.objectives,
        "decisions": applied.decisions,
        "insights": applied.insights,
        "roles": d.new.roles.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
        "notes": notes,
    });
    merge(&mut v, diff(Value::Null));
    Ok(compact(v))
}

/// Adds the fields of `extra` (an object) to `v` (an object).
fn merge(v: &mut Value, extra: Value) {
    if let (Value::Object(m), Value::Object(e)) = (v, extra) {
        m.extend(e);
    }
}

/// Waves, the critical path and makespan estimates: the kept plan when no makespan is asked
/// for, else the kept snapshot planned again with the worker counts.
pub async fn waves(p: &Project, g: &GraphCache, workers: &[u32]) -> Out {
    let mut settings = p.plan_settings();
    if !workers.is_empty() {
        if workers.contains(&0) {
            return Err(Error::invalid("workers must be at least 1"));
        }
        settings.workers = workers.to_vec();
    }
    let view = g.view(p).await?;
    let fresh;
    let planned = if settings.workers.is_empty() {
        &view.planned
    } else {
        fresh = graph::plan(&view.snap, &settings)
            .map_err(|c| Error::new(Kind::Conflict, c.to_string()))?;
        &fresh
    };
    Ok(json!({
        "ready": ids(&planned.ready),
        "waves": planned.waves.iter().map(|w| ids(w)).collect::<Vec<_>>(),
        "critical_path": ids(&planned.critical_path),
        "critical_path_effort": planned.critical_path_effort,
        "max_parallelism": planned.max_parallelism,
        "total_effort": planned.total_effort,
        "makespans": planned.makespans.iter().map(|(k, m)| json!({"workers": k, "makespan": m})).collect::<Vec<_>>(),
    }))
}

pub async fn context_list(p: &Project) -> Out {
    let objectives = context::objectives(p).await?;
    let decisions = context::decisions(p, false).await?;
    let insights = context::insights(p).await?;
    Ok(json!({
        "objectives": objectives.iter().map(|o| compact(json!({"id": o.id, "title": o.title, "status": o.status, "tasks": ids(&o.tasks)}))).collect::<Vec<_>>(),
        "decisions": decisions.iter().map(decision_json).collect::<Vec<_>>(),
        "insights": insights.iter().map(|i| compact(json!({"id": i.id, "text": i.text, "task": i.task}))).collect::<Vec<_>>(),
    }))
}

pub async fn objective_add(p: &Project, title: Option<&str>, tasks: &[String]) -> Out {
    let title = required(title, "text")?;
    let ids = resolve_all(p, tasks).await?;
    let o = p
        .store
        .add_objective(title, &ids, &p.actor().await?)
        .await?;
    Ok(json!({"id": o.id}))
}

pub async fn objective_status(p: &Project, id: Option<&str>, status: Option<&str>) -> Out {
    let id = record(RecordKind::Objective, required(id, "id")?)?;
    let status = match required(status, "status")? {
        "done" => ObjectiveStatus::Achieved,
        "drop" => ObjectiveStatus::Dropped,
        "reopen" => ObjectiveStatus::Active,
        s => s
            .parse::<ObjectiveStatus>()
            .map_err(|e| Error::invalid(e.to_string()))?,
    };
    let o = p
        .store
        .set_objective_status(id, status, &p.actor().await?)
        .await?;
    Ok(json!({"id": o.id, "status": o.status}))
}

pub async fn insight_add(p: &Project, text: Option<&str>, task: Option<&str>) -> Out {
    let own = p.acting_for.map(|t| t.to_string());
    let task = task.or(own.as_deref());
    let text = required(text, "text")?;
    let i = context::add_insight(p, text, task).await?;
    Ok(json!({"id": i.id}))
}

pub async fn decision_add(
    p: &Project,
    text: Option<&str>,
    why: Option<&str>,
    task: Option<&str>,
    supersedes: Option<&str>,
) -> Out {
    let own = p.acting_for.map(|t| t.to_string());
    let task = task.or(own.as_deref());
    let text = required(text, "text")?;
    let d = context::add_decision(p, text, why.unwrap_or_default(), task, supersedes).await?;
    Ok(compact(json!({"id": d.id, "supersedes": d.supersedes})))
}

fn decision_json(d: &downbeat_core::context::Decision) -> Value {
    compact(
        json!({"id": d.id, "text": d.text, "why": d.why, "task": d.task, "status": d.status, "supersedes": d.supersedes, "superseded_by": d.superseded_by, "decided_why": d.decided_why}),
    )
}

/// Proposes a decision (about the task this server acts for, unless another is named).
pub async fn decision_propose(
    p: &Project,
    text: &str,
    why: Option<&str>,
    task: Option<&str>,
) -> Out {
    let own = p.acting_for.map(|t| t.to_string());
    let task = task.or(own.as_deref());
    let d = context::propose_decision(p, text, why.unwrap_or_default(), task).await?;
    Ok(json!({"id": d.id, "status": d.status}))
}

/// Accepts or rejects a proposed decision.
pub async fn decision_decide(p: &Project, id: &str, accept: bool, why: Option<&str>) -> Out {
    let d = context::decide(p, id, accept, why.unwrap_or_default()).await?;
    Ok(json!({"id": d.id, "status": d.status}))
}

/// Every decision with its status, or only the pending ones.
pub async fn decision_list(p: &Project, pending: bool) -> Out {
    let list = context::decisions(p, pending).await?;
    Ok(json!({"decisions": list.iter().map(decision_json).collect::<Vec<_>>()}))
}

/// Progress, counts, per role, active objectives and the critical path: read from the planner's
/// snapshot and the objectives alone (not the whole project view the documents need).
pub async fn status(p: &Project, g: &GraphCache) -> Out {
    let view = g.view(p).await?;
    Ok(view.status(|| status_of(p, &view)).await?.clone())
}

async fn status_of(p: &Project, view: &View) -> Out {
    let objectives = context::objectives(p).await?;
    let c = Counts::of(
        view.snap.tasks.iter().map(|t| (t.id, t.status)),
        view.rollup(),
        &view.planned,
    );
    let roles: Map<String, Value> = views::per_role_of(
        view.snap
            .tasks
            .iter()
            .map(|t| (t.id, t.role.as_deref(), t.status)),
        view.rollup(),
    )
    .into_iter()
    .map(|(r, (d, t))| (r, json!(format!("{d}/{t}"))))
    .collect();
    let counts: Map<String, Value> = serde_json::to_value(c)
        .ok()
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, v)| k != "total" && v.as_u64() != Some(0))
        .collect();
    let objectives: Vec<Value> = objectives
        .iter()
        .filter(|o| o.status == ObjectiveStatus::Active)
        .map(|o| {
            let (d, t) = o
                .tasks
                .iter()
                .filter_map(|t| view.rollup().get(t))
                .fold((0, 0), |(d, t), p| (d + p.done, t + p.total));
            compact(json!({"id": o.id, "title": o.title, "progress": (!o.tasks.is_empty()).then(|| format!("{d}/{t}"))}))
        })
        .collect();
    let raised = downbeat_store::FlagFilter {
        state: Some(downbeat_core::flags::FlagState::Raised),
        ..Default::default()
    };
    let flags: Vec<Value> = p
        .store
        .flags(&raised)
        .await?
        .iter()
        .map(|f| {
            compact(json!({"id": f.id, "flag": f.flag, "task": f.task, "follow_up": f.follow_up, "note": f.note}))
        })
        .collect();
    Ok(compact(json!({
        "progress": format!("{}/{}", c.done(), c.total),
        "percent": (c.done() * 100).checked_div(c.total).unwrap_or(0),
        "counts": counts,
        "roles": roles,
        "objectives": objectives,
        "critical_path": ids(&view.planned.critical_path),
        "flags": flags,
    })))
}

/// Texts longer than this come back as a path only.
const INLINE_LIMIT: usize = 16_000;

pub async fn synthesize(p: &Project, id: Option<&str>) -> Out {
    let (doc, target) = documents::render_synthesis(p, id).await?;
    let path = documents::write_report(&target, &doc)?;
    Ok(compact(json!({
        "path": path,
        "bytes": doc.len(),
        "text": (doc.len() <= INLINE_LIMIT).then_some(doc),
    })))
}

pub async fn handover(p: &Project) -> Out {
    let (path, doc) = documents::write_handover(p, None).await?;
    Ok(json!({"path": path, "bytes": doc.len(), "resource": "downbeat://handover"}))
}

pub async fn maintain(
    p: &Project,
    apply: bool,
    stale_after: Option<&str>,
    archive_after: Option<&str>,
) -> Out {
    let m = maintenance::maintenance(p, apply, stale_after, archive_after).await?;
    let damaged = m.integrity != downbeat_store::Integrity::default();
    Ok(compact(json!({
        "applied": apply,
        "findings": m.findings,
        "integrity": damaged.then_some(&m.integrity),
        "actions": m.actions,
    })))
}

pub async fn attempts(p: &Project, q: &str) -> Out {
    let (id, list) = downbeat_app::runs::attempts(p, q).await?;
    Ok(json!({
        "task": id,
        "attempts": list.iter().map(|at| {
            let a = &at.record;
            compact(json!({
                "number": a.number, "token": format!("{}.{}", a.epoch, a.id), "worker": a.worker,
                "executor": a.executor, "started_at": a.started_at, "ended_at": a.ended_at,
                "outcome": a.outcome, "error": a.error, "summary": a.summary,
                "tokens": a.tokens_prompt.map(|i| json!({"in": i, "out": a.tokens_completion})),
                "cost_usd": a.detail.cost_usd.or_else(|| at.agent.as_ref().and_then(|r| r.output.cost_usd)),
                "session": a.detail.session.clone().or_else(|| at.agent.as_ref().and_then(|r| r.output.session.clone())),
                "git": a.detail.git,
            }))
        }).collect::<Vec<_>>(),
    }))
}

pub async fn log(p: &Project, since: Option<&str>, task: Option<&str>, limit: Option<u32>) -> Out {
    let since = match since {
        None => None,
        Some(s) => Some(match Timestamp::parse_rfc3339(s) {
            Some(t) => t,
            None => p.now().saturating_sub(
                Millis::parse(s).map_err(|e| Error::invalid(format!("since: {e}")))?,
            ),
        }),
    };
    let task = match task {
        Some(t) => Some(resolve(p, t).await?),
        None => None,
    };
    let events = p
        .store
        .events(&EventQuery {
            since,
            task,
            limit: Some(limit.unwrap_or(50).min(1000)),
            ..Default::default()
        })
        .await?;
    Ok(json!({"events": events.iter().map(|e| compact(json!({
        "seq": e.seq, "at": e.at, "actor": e.actor, "action": e.action, "entity": e.entity, "after": e.after,
    }))).collect::<Vec<_>>()}))
}

pub async fn metrics(p: &Project) -> Out {
    Ok(serde_json::to_value(context::metrics(p).await?).unwrap_or(Value::Null))
}

pub fn roles(p: &Project, name: Option<&str>) -> Out {
    match name {
        Some(n) => {
            let r = p.roles.get(n).ok_or_else(|| {
                Error::not_found(format!(
                    "no role `{n}` (known: {})",
                    p.roles.names().join(", ")
                ))
            })?;
            Ok(compact(json!({
                "name": r.name, "description": r.description, "prompt": r.prompt,
                "max_parallel": r.max_parallel, "source": r.source,
            })))
        }
        None => Ok(json!({"roles": p.roles.iter().map(|r| compact(json!({
            "name": r.name, "description": r.description, "max_parallel": r.max_parallel,
        }))).collect::<Vec<_>>()})),
    }
}

pub async fn graph_text(p: &Project, format: Option<&str>) -> Out {
    let format = match format.unwrap_or("mermaid") {
        "mermaid" => views::GraphFormat::Mermaid,
        "dot" => views::GraphFormat::Dot,
        other => {
            return Err(Error::invalid(format!(
                "unknown graph format `{other}` (mermaid, dot)"
            )));
        }
    };
    let v = views::view(p).await?;
    Ok(json!({"graph": views::render_graph(&v, format)}))
}
