//! What a plan would look like once applied, before anything is written: its own tasks planned
//! on their own (waves, critical path, makespan estimates under the project's caps), named by
//! their keys. Drafts and templates are shown this way before they are written.
//!
//! Tasks outside the plan (references to stored tasks) are left out: the preview is of the new
//! work only. Must never touch the store.

use std::collections::HashMap;

use downbeat_core::graph::{GraphSnapshot, GraphTask, PlanSettings, plan};
use downbeat_core::ids::TaskId;
use downbeat_core::plan::{TaskRef, ValidatedPlan};
use downbeat_core::task::{Edge, EdgeKind, Status};
use serde::Serialize;

use crate::error::{Error, Kind};

/// A plan's tasks planned on their own.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Preview {
    /// Parallel batches of leaf tasks, by name (key, else `#N` in plan order).
    pub waves: Vec<Vec<String>>,
    pub critical_path: Vec<String>,
    pub critical_path_effort: u64,
    pub total_effort: u64,
    pub max_parallelism: usize,
    /// (workers, makespan in effort units).
    pub makespans: Vec<(u32, u64)>,
}

/// How a preview names the task at `i` of a validated plan.
pub fn task_name(v: &ValidatedPlan, i: usize) -> String {
    v.tasks
        .get(i)
        .and_then(|t| t.new.key.clone())
        .unwrap_or_else(|| format!("#{}", i + 1))
}

/// Plans the new tasks of `v` on their own (edges and parents within the plan only).
pub fn preview(v: &ValidatedPlan, settings: &PlanSettings) -> Result<Preview, Error> {
    let id = |i: usize| TaskId::from_seq(i as u32 + 1);
    let mut snap = GraphSnapshot::default();
    let mut names: HashMap<TaskId, String> = HashMap::new();
    for (i, t) in v.tasks.iter().enumerate() {
        let Some(tid) = id(i) else { continue };
        names.insert(tid, task_name(v, i));
        let parent = match t.parent {
            Some(TaskRef::New(p)) => id(p),
            _ => None,
        };
        snap.tasks.push(GraphTask {
            id: tid,
            key: t.new.key.clone(),
            parent,
            title: t.new.title.clone(),
            status: Status::Pending,
            role: t.new.role.clone(),
            effort: t.new.effort,
            priority: t.new.priority,
            footprint: t.new.footprint.clone(),
        });
    }
    for &(from, to, kind) in &v.edges {
        if let (TaskRef::New(f), TaskRef::New(t), EdgeKind::Blocks) = (from, to, kind)
            && let (Some(from), Some(to)) = (id(f), id(t))
        {
            snap.edges.push(Edge { from, to, kind });
        }
    }
    let planned = plan(&snap, settings).map_err(|c| Error::new(Kind::Conflict, c.to_string()))?;
    let named = |ids: &[TaskId]| -> Vec<String> {
        ids.iter()
            .map(|i| names.get(i).cloned().unwrap_or_else(|| i.to_string()))
            .collect()
    };
    Ok(Preview {
        waves: planned.waves.iter().map(|w| named(w)).collect(),
        critical_path: named(&planned.critical_path),
        critical_path_effort: planned.critical_path_effort,
        total_effort: planned.total_effort,
        max_parallelism: planned.max_parallelism,
        makespans: planned.makespans,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use downbeat_core::plan::{PlanFormat, parse, validate};
    use downbeat_core::role::RoleSet;

    #[test]
    fn a_plan_is_planned_on_its_own_by_key() {
        let text = r#"
[[tasks]]
key = "design"
title = "Design"
effort = 2
[[tasks]]
key = "api"
title = "API"
effort = 3
depends_on = ["design"]
[[tasks]]
key = "docs"
title = "Docs"
depends_on = ["design"]
"#;
        let v = validate(
            &parse(text, PlanFormat::Toml).unwrap(),
            &RoleSet::builtin(),
            &|_| None,
            &|_| false,
        )
        .unwrap();
        let p = preview(
            &v,
            &PlanSettings {
                workers: vec![1, 2],
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(p.waves, vec![vec!["design"], vec!["api", "docs"]]);
        assert_eq!(p.critical_path, vec!["design", "api"]);
        assert_eq!(p.critical_path_effort, 5);
        assert_eq!(p.total_effort, 6);
        assert_eq!(p.makespans, vec![(1, 6), (2, 5)]);
    }
}
