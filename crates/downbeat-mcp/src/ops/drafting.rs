//! Plans drafted by an agent (`plan_draft`, `plan_expand`) and workflow templates
//! (`template`), on the application layer's `drafting` and `templates` use cases.

use std::time::Duration;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use downbeat_app::answer::compact;
use downbeat_app::drafting::{self, Asking, Document, Draft, DraftRequest, ExpandRequest};
use downbeat_app::error::Error;
use downbeat_app::project::Project;
use downbeat_app::templates;
use downbeat_core::plan::PlanFormat;

use super::shape::{Out, unknown_action};

/// How a drafting tool asks: executor, rounds, timeout (the plan comes back as TOML).
pub struct Ask {
    pub executor: Option<String>,
    pub rounds: Option<u32>,
    pub timeout: Option<String>,
    pub apply: bool,
}

fn asking(a: &Ask) -> Result<Asking, Error> {
    let timeout: Option<Duration> = a
        .timeout
        .as_deref()
        .map(|t| {
            downbeat_engine::config::parse_duration(t)
                .map_err(|e| Error::invalid(format!("timeout {t}: {e}")))
        })
        .transpose()?;
    Ok(Asking {
        executor: a.executor.clone(),
        rounds: a.rounds.unwrap_or(drafting::DEFAULT_ROUNDS),
        timeout,
        format: PlanFormat::Toml,
    })
}

/// `plan_draft`: a plan for `goal` (from `document` when given), applied when asked.
pub async fn plan_draft(p: &Project, goal: &str, document: Option<String>, a: &Ask) -> Out {
    let req = DraftRequest {
        goal: goal.to_owned(),
        document: document.map(|text| Document {
            name: "the document".into(),
            text,
        }),
        asking: asking(a)?,
    };
    let d = drafting::draft(p, &req, CancellationToken::new()).await?;
    answer(p, &d, a.apply).await
}

/// `plan_expand`: subtasks of `task`, placed under it, applied when asked.
pub async fn plan_expand(p: &Project, task: &str, guidance: Option<String>, a: &Ask) -> Out {
    let req = ExpandRequest {
        task: task.to_owned(),
        guidance,
        asking: asking(a)?,
    };
    let d = drafting::expand(p, &req, CancellationToken::new()).await?;
    answer(p, &d, a.apply).await
}

async fn answer(p: &Project, d: &Draft, apply: bool) -> Out {
    let applied = if apply {
        drafting::apply(p, d).await?.applied
    } else {
        None
    };
    let tasks: Vec<Value> = d
        .plan
        .tasks
        .iter()
        .map(|t| {
            compact(json!({
                "key": t.key, "title": t.title, "role": t.role, "parent": t.parent,
                "depends_on": t.depends_on, "effort": t.effort, "tags": t.tags, "files": t.files,
            }))
        })
        .collect();
    let rounds: Vec<Value> = d
        .rounds
        .iter()
        .map(|r| {
            compact(json!({
                "round": r.number, "verdict": r.verdict.name(), "problems": r.verdict.problems(),
                "tokens_in": r.tokens_in, "tokens_out": r.tokens_out, "cost_usd": r.cost_usd,
            }))
        })
        .collect();
    let pv = &d.preview;
    Ok(compact(json!({
        "plan": d.name(),
        "executor": d.executor,
        "rounds": rounds,
        "tasks": tasks,
        "waves": pv.waves,
        "critical_path": pv.critical_path,
        "critical_path_effort": pv.critical_path_effort,
        "makespans": pv.makespans,
        "notes": d.notes,
        "toml": d.text,
        "applied": applied.map(|a| json!({
            "tasks": a.applied.tasks.iter().map(|(k, id)| json!({"key": k, "id": id})).collect::<Vec<_>>(),
            "edges": a.applied.edges,
        })),
    })))
}

/// `template`: `list`, `show`, `check` (render, write nothing) or `apply`.
pub async fn template(
    p: &Project,
    action: &str,
    name: Option<&str>,
    values: &serde_json::Map<String, Value>,
) -> Out {
    if action == "list" {
        let all = templates::list(Some(&p.root))?;
        return Ok(json!(
            all.iter()
                .map(|t| json!({
                    "name": t.name,
                    "description": t.description,
                    "parameters": t.parameters,
                    "builtin": t.source == "builtin",
                }))
                .collect::<Vec<_>>()
        ));
    }
    let name = name.ok_or_else(|| Error::invalid("`name` is required"))?;
    let t = templates::find(Some(&p.root), name)?;
    let sets: Vec<String> = values
        .iter()
        .map(|(k, v)| match v {
            Value::String(s) => format!("{k}={s}"),
            other => format!("{k}={other}"),
        })
        .collect();
    match action {
        "show" => Ok(serde_json::to_value(&t).unwrap_or_default()),
        "check" | "apply" => {
            let a = templates::apply(p, &t, &sets, action == "check").await?;
            let prepared = &a.outcome.prepared;
            Ok(compact(json!({
                "plan": prepared.name,
                "values": a.rendered.values,
                "added": prepared.diff.new.tasks.iter().filter_map(|t| t.new.key.clone()).collect::<Vec<_>>(),
                "changed": prepared.diff.changed.len(),
                "unchanged": prepared.diff.unchanged,
                "waves": a.preview.waves,
                "critical_path": a.preview.critical_path,
                "tasks": a.outcome.applied.as_ref().map(|x| x.applied.tasks.iter().map(|(k, id)| json!({"key": k, "id": id})).collect::<Vec<_>>()),
                "hold": a.hold,
                "would_hold": a.rendered.hold.as_ref().filter(|_| action == "check").map(|(k, _)| k),
            })))
        }
        other => Err(unknown_action(other, &["list", "show", "check", "apply"])),
    }
}
