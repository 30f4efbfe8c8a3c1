//! Tasks by hand: `add`, `edit`, `start`, `done`, `fail`, `block`, …, `list`, `dep`.

use downbeat_app::error::Error;
use downbeat_app::project::Project;
use downbeat_app::tasks;
use downbeat_core::task::{EdgeKind, Status};
use serde_json::json;

use super::render::{clip, task_json};
use crate::cli::*;
use crate::output::{json as print_json, note, out, outln, table};

pub(super) async fn add(p: &Project, a: AddArgs, j: bool) -> Result<(), Error> {
    let consensus = (a.consensus.is_some() || !a.consensus_executors.is_empty()).then(|| {
        downbeat_core::consensus::ConsensusSpec {
            n: a.consensus,
            executors: a.consensus_executors.clone(),
            resolver: a.resolver.clone(),
        }
    });
    let add = tasks::AddTask {
        title: a.title,
        key: a.key,
        parent: a.parent,
        after: a.after,
        description: a.description,
        role: a.role,
        priority: a.priority,
        effort: a.effort,
        acceptance: a.acceptance,
        tags: a.tags,
        files: a.files,
        executor: a.executor,
        command: a.command,
        shell: a.shell,
        timeout: a.timeout,
        max_attempts: a.max_attempts,
    };
    let t = match &consensus {
        Some(spec) => downbeat_app::consensus::add(p, &add, spec).await?,
        None => tasks::add(p, &add).await?,
    };
    if j {
        print_json(&task_json(&t, "pending"));
    } else {
        note(&format!("created task {}: {}", t.id, t.title));
        if consensus.is_some()
            && let Some(k) = &t.key
        {
            note(&format!(
                "its answers are {k}.answer-1 and on, decided by {k}.resolve"
            ));
        }
        outln(&t.id.to_string());
    }
    Ok(())
}

pub(super) async fn edit(p: &Project, a: EditArgs, j: bool) -> Result<(), Error> {
    let changes = tasks::EditTask {
        title: a.title,
        description: a.description,
        role: a.role,
        parent: a.parent,
        priority: a.priority,
        effort: a.effort,
        acceptance: (!a.acceptance.is_empty()).then_some(a.acceptance),
        tags: (!a.tags.is_empty()).then_some(a.tags),
        files: (!a.files.is_empty()).then_some(a.files),
    };
    let t = tasks::edit(p, &a.id, &changes).await?;
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
    let id = tasks::resolve(p, id).await?;
    let changed = tasks::set_status(p, id, to, note_text.as_deref(), force).await?;
    if j {
        print_json(&changed_json::<String>(&changed, "", &[]));
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

/// What every state-change command prints under `--json` (docs/schemas/state-change.json):
/// the tasks whose status changed, and the artifacts kept (only `done` keeps any). `shown`
/// overrides each task's `state` when not empty.
fn changed_json<A: serde::Serialize>(
    changed: &[downbeat_core::task::Task],
    shown: &str,
    artifacts: &[A],
) -> serde_json::Value {
    json!({
        "tasks": changed
            .iter()
            .map(|t| task_json(t, if shown.is_empty() { t.status.as_str() } else { shown }))
            .collect::<Vec<_>>(),
        "artifacts": artifacts,
    })
}

pub(super) async fn start(p: &Project, a: StartArgs, j: bool) -> Result<(), Error> {
    transition(p, &a.id, Status::Running, a.note, a.force, j).await
}

pub(super) async fn done(p: &Project, a: DoneArgs, j: bool) -> Result<(), Error> {
    let id = tasks::resolve(p, &a.id).await?;
    let cwd = std::env::current_dir()?;
    let files: Vec<_> = a.artifacts.iter().map(|f| cwd.join(f)).collect();
    let (changed, kept) = tasks::complete(p, id, a.result.as_deref(), &files, a.force).await?;
    if j {
        print_json(&changed_json(&changed, "completed", &kept));
    } else {
        for t in &changed {
            outln(&format!("{} {}", t.id, t.status));
        }
    }
    Ok(())
}

pub(super) async fn list(p: &Project, a: ListArgs, j: bool) -> Result<(), Error> {
    let query = downbeat_app::views::ListQuery {
        statuses: a.status,
        role: a.role,
        tag: a.tag,
        parent: a.parent,
        text: a.search,
        include_archived: a.all,
        limit: a.limit,
    };
    let listed = downbeat_app::views::list(p, &query).await?;
    if j {
        print_json(
            &listed
                .iter()
                .map(|l| task_json(&l.task, &l.shown))
                .collect::<Vec<_>>(),
        );
        return Ok(());
    }
    let rows: Vec<Vec<String>> = listed
        .iter()
        .map(|l| {
            let t = &l.task;
            vec![
                t.id.to_string(),
                crate::style::status(&l.shown, crate::style::On::Out),
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
    let changes = tasks::set_deps(p, &task, &on, kind, !add).await?;
    if j {
        print_json(&changes);
        return Ok(());
    }
    for c in &changes {
        let what = match (add, c.changed) {
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
        outln(&format!("{} {what} {}{kind_note}", c.task, c.on));
    }
    Ok(())
}
