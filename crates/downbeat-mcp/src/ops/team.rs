//! What the team shares beyond the graph: the flag rules, the memory files, objectives linked
//! to their tasks.

use downbeat_core::flags::FlagRule;
use serde_json::json;

use downbeat_app::error::Error;
use downbeat_app::memory::{self, SyncRequest};
use downbeat_app::project::Project;
use downbeat_app::rules::{self, Which};

use super::shape::Out;

pub fn rule_list(p: &Project) -> Out {
    Ok(json!({ "rules": rules::list(p) }))
}

pub fn rule_add(p: &Project, rule: &FlagRule) -> Out {
    let after = rules::add(p, rule)?;
    Ok(json!({ "added": after.last().map(|l| l.number), "rules": after }))
}

pub fn rule_remove(p: &Project, which: &str) -> Out {
    let (removed, after) = rules::remove(p, &Which::parse(which))?;
    let numbers: Vec<usize> = removed.iter().map(|l| l.number).collect();
    Ok(json!({ "removed": numbers, "rules": after }))
}

pub async fn memory_sync(p: &Project, files: Option<Vec<String>>, dry_run: bool) -> Out {
    let done = memory::sync(p, &SyncRequest { files, dry_run }).await?;
    serde_json::to_value(&done).map_err(|e| Error::internal(e.to_string()))
}

pub async fn objective_link(p: &Project, id: &str, tasks: &[String]) -> Out {
    let o = downbeat_app::context::link_objective(p, id, tasks).await?;
    let tasks: Vec<String> = o.tasks.iter().map(ToString::to_string).collect();
    Ok(json!({"id": o.id, "status": o.status, "tasks": tasks}))
}
