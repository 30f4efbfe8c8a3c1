//! Adding a consensus task by hand (CLI `add --consensus`, MCP task add with `consensus`): the
//! task is written as a one-task plan and applied through the plan path, so it becomes the
//! same container, answers and resolve task a plan file gives (`plan::expand_consensus`), in
//! one transaction.

use downbeat_core::consensus::ConsensusSpec;
use downbeat_core::plan::{PlanFile, PlanTask};
use downbeat_core::task::Task;

use crate::error::{Error, Kind};
use crate::plans::{self, ApplyRequest};
use crate::project::Project;
use crate::tasks::{AddTask, check_role};

/// Adds `a` as a consensus task under `spec`; answers the container. Without a key, one is
/// made from the title (the answers' keys are named after it).
pub async fn add(p: &Project, a: &AddTask, spec: &ConsensusSpec) -> Result<Task, Error> {
    if a.title.trim().is_empty() {
        return Err(Error::invalid("a task needs a title"));
    }
    spec.answers().map_err(Error::invalid)?;
    if let Some(e) = plans::unknown_executors(p, spec).into_iter().next() {
        return Err(Error::invalid(format!("consensus: {e}")));
    }
    check_role(p, spec.resolver())?;
    if let Some(r) = &a.role {
        check_role(p, r)?;
    }
    let key = match &a.key {
        Some(k) => k.clone(),
        None => free_key(p, &a.title).await?,
    };
    let task = PlanTask {
        key: Some(key.clone()),
        title: a.title.clone(),
        description: a.description.clone().unwrap_or_default(),
        role: a.role.clone(),
        parent: a.parent.clone(),
        depends_on: a.after.clone(),
        related: Vec::new(),
        discovered_from: Vec::new(),
        priority: a.priority.clone(),
        effort: a.effort,
        acceptance: a.acceptance.clone(),
        tags: a.tags.clone(),
        files: a.files.clone(),
        executor: a.executor.clone(),
        command: a.command.clone(),
        shell: a.shell.clone(),
        timeout: a.timeout.clone(),
        max_attempts: a.max_attempts,
        consensus: Some(Box::new(spec.clone())),
    };
    let plan = PlanFile {
        tasks: vec![task],
        ..Default::default()
    };
    let req = ApplyRequest {
        shown: "task".into(),
        fallback_name: None,
        dry_run: false,
        skip_conflicts: false,
        skip_option: "",
    };
    plans::apply(p, &plan, &req).await?;
    let id = p
        .store
        .lookup_tasks(std::slice::from_ref(&key))
        .await?
        .remove(&key)
        .ok_or_else(|| Error::new(Kind::Internal, format!("task `{key}` was not written")))?;
    Ok(p.store.task(id).await?)
}

/// A key made from `title` that no task uses yet: its letters and digits, lower case, words
/// joined by `-`, at most 40 characters; `-2`, `-3`, … appended when taken.
async fn free_key(p: &Project, title: &str) -> Result<String, Error> {
    let mut base = String::new();
    for c in title.chars() {
        if c.is_ascii_alphanumeric() {
            base.push(c.to_ascii_lowercase());
        } else if !base.is_empty() && !base.ends_with('-') {
            base.push('-');
        }
        if base.len() >= 40 {
            break;
        }
    }
    let base = match base.trim_end_matches('-') {
        "" => "consensus".to_owned(),
        b => b.to_owned(),
    };
    let candidates: Vec<String> = std::iter::once(base.clone())
        .chain((2..=50).map(|i| format!("{base}-{i}")))
        .collect();
    let taken = p.store.keys_in_use(&candidates).await?;
    candidates
        .into_iter()
        .find(|k| !taken.contains(k))
        .ok_or_else(|| {
            Error::invalid(format!("every key like `{base}` is taken"))
                .with_hint("give the task a key with --key")
        })
}
