//! Learned patterns: the history (tasks, the attempt ledger, raised flags, which plan each task
//! came from) read from the store and handed to [`downbeat_core::patterns::compute`].
//!
//! Templates leave no mark of their own on the tasks they create: a template's plan is recorded
//! under its plan name (`plan:NAME` in `meta`, the template's slug by default), so the per-plan
//! patterns are also the per-template ones.

use std::collections::{BTreeSet, HashMap};

use downbeat_core::patterns::{self, AttemptFacts, History, Patterns, TaskFacts};
use downbeat_core::plan_diff::{Record, record_key};
use downbeat_store::{EventQuery, FlagFilter, TaskFilter};

use crate::error::Error;
use crate::project::Project;

/// The project's patterns; with `role`, only that role's (the overall and plan patterns are
/// still over every task).
pub async fn patterns(p: &Project, role: Option<&str>) -> Result<Patterns, Error> {
    let history = history(p).await?;
    let mut out = patterns::compute(&history);
    if let Some(r) = role {
        p.roles.get(r).ok_or_else(|| {
            Error::invalid(format!("unknown role `{r}`"))
                .with_hint("`downbeat roles` lists the roles")
        })?;
        out.roles.retain(|x| x.name == r);
    }
    Ok(out)
}

/// Everything the patterns are computed from, archived work included.
pub async fn history(p: &Project) -> Result<History, Error> {
    let tasks = p
        .store
        .tasks(&TaskFilter {
            include_archived: true,
            ..Default::default()
        })
        .await?;
    let plan_of = plans_by_key(p).await?;
    let tasks = tasks
        .iter()
        .map(|t| TaskFacts {
            id: t.id,
            parent: t.parent,
            role: t.role.clone(),
            plan: t.key.as_ref().and_then(|k| plan_of.get(k).cloned()),
            template: t
                .tags
                .iter()
                .find_map(|g| g.strip_prefix(crate::templates::TAG_PREFIX))
                .map(str::to_owned),
            effort: t.effort,
        })
        .collect();
    let attempts = p
        .store
        .all_attempts()
        .await?
        .into_iter()
        .map(|a| AttemptFacts {
            task: a.task,
            number: a.number,
            started_at: a.started_at,
            ended_at: a.ended_at,
            succeeded: a.outcome.as_deref() == Some("succeeded"),
        })
        .collect();
    let flags = p
        .store
        .flags(&FlagFilter::default())
        .await?
        .into_iter()
        .map(|f| f.task)
        .collect();
    Ok(History {
        tasks,
        attempts,
        flags,
    })
}

/// Task key → the name of the plan whose last application declared it (the plans found by
/// their `plan.applied` events, their keys in the `plan:NAME` records).
async fn plans_by_key(p: &Project) -> Result<HashMap<String, String>, Error> {
    let names: BTreeSet<String> = p
        .store
        .events(&EventQuery::default())
        .await?
        .into_iter()
        .filter(|e| e.action == "plan.applied")
        .map(|e| e.entity)
        .collect();
    let mut out = HashMap::new();
    for name in names {
        let Some(text) = p.store.meta_get(&record_key(&name)).await? else {
            continue;
        };
        for k in Record::from_json(&text).map(|r| r.keys).unwrap_or_default() {
            out.insert(k, name.clone());
        }
    }
    Ok(out)
}

/// The plan with effort turned into expected seconds by the patterns
/// ([`Patterns::calibrate`]), and what each role used; `None` for the second when the project
/// has too little history (the plan is then in effort units, as without calibration).
pub async fn planned_calibrated(
    p: &Project,
    settings: &downbeat_core::graph::PlanSettings,
) -> Result<
    (
        downbeat_core::graph::GraphSnapshot,
        downbeat_core::graph::Planned,
        Option<Vec<patterns::RoleTime>>,
    ),
    Error,
> {
    let learned = patterns::compute(&history(p).await?);
    let mut snap = p.store.graph().await?;
    let used = learned.calibrate(&mut snap.tasks);
    let planned = downbeat_core::graph::plan(&snap, settings)
        .map_err(|c| Error::new(crate::error::Kind::Conflict, c.to_string()))?;
    Ok((snap, planned, used))
}

/// The patterns as a few lines for a prompt (empty without enough history).
pub async fn summary(p: &Project) -> Result<String, Error> {
    Ok(patterns::compute(&history(p).await?).summary())
}
