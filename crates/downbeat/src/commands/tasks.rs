//! Tasks by hand: `add`, `edit`, `start`, `done`, `fail`, `block`, …, `list`, `dep`.

use std::collections::HashSet;

use downbeat_app::error::Error;
use downbeat_app::project::Project;
use downbeat_app::tasks::{self, check_role, parse_priority, resolve, shown_status};
use downbeat_app::views::view;
use downbeat_core::ids::TaskId;
use downbeat_core::task::{Edge, EdgeKind, NewTask, Status, TaskPatch};
use downbeat_core::time::Millis;
use downbeat_store::TaskFilter;
use serde_json::json;

use super::render::{clip, split_command, task_json, unreachable_args};
use crate::cli::*;
use crate::output::{json as print_json, note, out, outln, table};

pub(super) async fn add(p: &Project, a: AddArgs, j: bool) -> Result<(), Error> {
    if let Some(r) = &a.role {
        check_role(p, r)?;
    }
    let parent = match &a.parent {
        Some(s) => Some(resolve(p, s).await?),
        None => None,
    };
    let mut deps = Vec::new();
    for d in &a.after {
        deps.push(resolve(p, d).await?);
    }
    let executor = match (a.executor.as_deref(), &a.command, &a.shell) {
        (None | Some("process"), Some(cmd), None) => {
            let argv = split_command(cmd).map_err(Error::invalid)?;
            Some(json!({"type": "process", "argv": argv}).to_string())
        }
        (None | Some("process"), None, Some(sh)) => {
            Some(json!({"type": "process", "shell": sh}).to_string())
        }
        (Some("process"), None, None) => {
            return Err(Error::invalid(
                "--executor process needs --command or --shell",
            ));
        }
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            return Err(Error::invalid(
                "--command and --shell go with --executor process (or no --executor)",
            ));
        }
        (name, None, None) => name.map(str::to_owned),
        (None, Some(_), Some(_)) => unreachable_args()?,
    };
    let timeout_ms = a
        .timeout
        .as_deref()
        .map(|t| Millis::parse(t).map(|m| m.0))
        .transpose()
        .map_err(|e| Error::invalid(format!("--timeout: {e}")))?;
    if a.max_attempts == Some(0) {
        return Err(Error::invalid("--max-attempts must be at least 1"));
    }
    let new = NewTask {
        exec: downbeat_core::task::ExecSettings {
            executor,
            timeout_ms,
            max_attempts: a.max_attempts,
        },
        key: a.key,
        parent,
        title: a.title,
        description: a.description.unwrap_or_default(),
        role: a.role,
        priority: a
            .priority
            .as_deref()
            .map(parse_priority)
            .transpose()?
            .unwrap_or_default(),
        effort: a.effort.unwrap_or(1),
        acceptance: a.acceptance,
        tags: a.tags,
        footprint: a.files,
    };
    let t = p.store.create_task(&new, &deps, &p.actor().await?).await?;
    if j {
        print_json(&task_json(&t, "pending"));
    } else {
        note(&format!("created task {}: {}", t.id, t.title));
        outln(&t.id.to_string());
    }
    Ok(())
}

pub(super) async fn edit(p: &Project, a: EditArgs, j: bool) -> Result<(), Error> {
    let id = resolve(p, &a.id).await?;
    let role = match a.role.as_deref() {
        None => None,
        Some("none") => Some(None),
        Some(r) => {
            check_role(p, r)?;
            Some(Some(r.to_owned()))
        }
    };
    let parent = match a.parent.as_deref() {
        None => None,
        Some("none") => Some(None),
        Some(s) => Some(Some(resolve(p, s).await?)),
    };
    let patch = TaskPatch {
        title: a.title,
        description: a.description,
        role,
        priority: a.priority.as_deref().map(parse_priority).transpose()?,
        effort: a.effort,
        acceptance: (!a.acceptance.is_empty()).then_some(a.acceptance),
        tags: (!a.tags.is_empty()).then_some(a.tags),
        footprint: (!a.files.is_empty()).then_some(a.files),
        parent,
        exec: None,
    };
    if patch.is_empty() {
        return Err(Error::invalid("nothing to change")
            .with_hint("pass at least one of --title, --role, --effort, …"));
    }
    let t = p.store.update_task(id, &patch, &p.actor().await?).await?;
    if j {
        print_json(&task_json(&t, t.status.as_str()));
    } else {
        note(&format!("updated task {}", t.id));
    }
    Ok(())
}

/// A manual status change through the admission gate (`force` lets a task start or complete
/// while it waits on unfinished work).
pub(super) async fn transition(
    p: &Project,
    id: &str,
    to: Status,
    note_text: Option<String>,
    force: bool,
    j: bool,
) -> Result<(), Error> {
    let id = resolve(p, id).await?;
    let changed = tasks::set_status(p, id, to, note_text.as_deref(), force).await?;
    if j {
        print_json(
            &changed
                .iter()
                .map(|t| task_json(t, t.status.as_str()))
                .collect::<Vec<_>>(),
        );
    } else {
        for t in &changed {
            outln(&format!("{} {}", t.id, t.status));
        }
        if changed.is_empty() {
            note(&format!("nothing under {id} could move to {to}"));
        }
    }
    Ok(())
}

pub(super) async fn start(p: &Project, a: StartArgs, j: bool) -> Result<(), Error> {
    transition(p, &a.id, Status::Running, a.note, a.force, j).await
}

pub(super) async fn done(p: &Project, a: DoneArgs, j: bool) -> Result<(), Error> {
    let id = resolve(p, &a.id).await?;
    // Check the artifacts before changing anything.
    let mut arts = Vec::new();
    for path in &a.artifacts {
        let full = if path.is_absolute() {
            path.clone()
        } else {
            std::env::current_dir()?.join(path)
        };
        let meta = std::fs::metadata(&full)
            .map_err(|e| Error::not_found(format!("artifact {}: {e}", path.display())))?;
        let canon = full.canonicalize()?;
        let root = p.root.canonicalize()?;
        let rel = canon.strip_prefix(&root).map_err(|_| {
            Error::invalid(format!(
                "artifact {} is outside the project ({})",
                path.display(),
                root.display()
            ))
        })?;
        arts.push((rel.display().to_string(), meta.len() as i64));
    }
    let changed = tasks::set_status(p, id, Status::Completed, a.result.as_deref(), a.force).await?;
    let actor = p.actor().await?;
    for (path, size) in &arts {
        p.store
            .add_artifact(id, path, Some(*size), None, &actor)
            .await?;
    }
    if j {
        print_json(
            &json!({"tasks": changed.iter().map(|t| task_json(t, "completed")).collect::<Vec<_>>(), "artifacts": arts.iter().map(|(p, s)| json!({"path": p, "size": s})).collect::<Vec<_>>()}),
        );
    } else {
        for t in &changed {
            outln(&format!("{} {}", t.id, t.status));
        }
    }
    Ok(())
}

pub(super) async fn list(p: &Project, a: ListArgs, j: bool) -> Result<(), Error> {
    let mut statuses = Vec::new();
    for s in &a.status {
        statuses.push(
            s.parse::<Status>()
                .map_err(|e| Error::invalid(e.to_string()))?,
        );
    }
    let parent = match &a.parent {
        Some(x) => Some(resolve(p, x).await?),
        None => None,
    };
    let filter = TaskFilter {
        statuses,
        role: a.role,
        tag: a.tag,
        parent,
        text: a.search,
        include_archived: a.all,
        limit: a.limit,
    };
    let tasks = p.store.tasks(&filter).await?;
    let v = view(p).await?;
    let ready: HashSet<TaskId> = v.planned.ready.iter().copied().collect();
    if j {
        print_json(
            &tasks
                .iter()
                .map(|t| task_json(t, &shown_status(t, &v.rollup, &ready)))
                .collect::<Vec<_>>(),
        );
        return Ok(());
    }
    let rows: Vec<Vec<String>> = tasks
        .iter()
        .map(|t| {
            vec![
                t.id.to_string(),
                shown_status(t, &v.rollup, &ready),
                t.role.clone().unwrap_or_else(|| "-".into()),
                t.priority.to_string(),
                t.effort.to_string(),
                clip(&t.title, 80),
            ]
        })
        .collect();
    if rows.is_empty() {
        note("no tasks match");
    } else {
        out(&table(
            &["ID", "STATUS", "ROLE", "PRIORITY", "EFFORT", "TITLE"],
            &rows,
        ));
    }
    Ok(())
}

pub(super) async fn dep(p: &Project, c: DepCmd, j: bool) -> Result<(), Error> {
    let (task, on, kind, add) = match c {
        DepCmd::Add { task, on, kind } => (task, on, kind, true),
        DepCmd::Rm { task, on, kind } => (task, on, kind, false),
    };
    let kind = match kind {
        EdgeKindArg::Blocks => EdgeKind::Blocks,
        EdgeKindArg::Related => EdgeKind::Related,
        EdgeKindArg::DiscoveredFrom => EdgeKind::DiscoveredFrom,
    };
    let to = resolve(p, &task).await?;
    let actor = p.actor().await?;
    let mut results = Vec::new();
    for o in &on {
        let from = resolve(p, o).await?;
        let edge = Edge { from, to, kind };
        let changed = if add {
            p.store.add_edge(edge, &actor).await?
        } else {
            p.store.remove_edge(edge, &actor).await?
        };
        results.push(json!({"task": to, "on": from, "kind": kind, "changed": changed}));
        if !j {
            let what = match (add, changed) {
                (true, true) => "now waits for",
                (true, false) => "already depended on",
                (false, true) => "no longer depends on",
                (false, false) => "did not depend on",
            };
            let kind_note = if kind == EdgeKind::Blocks {
                String::new()
            } else {
                format!(" ({kind})")
            };
            outln(&format!("{to} {what} {from}{kind_note}"));
        }
    }
    if j {
        print_json(&results);
    }
    Ok(())
}
