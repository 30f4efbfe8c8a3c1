//! What a task's prompt template sees, read from the store: the task, the active objectives,
//! the results and artifacts of the tasks it depends on; and the prompt rendered from it.
//!
//! Must never: write to the store, or fail an attempt for a database that is away for a moment
//! (reads are tried again for a while).

use std::time::{Duration, Instant};

use downbeat_core::task::{EdgeKind, Task};
use downbeat_store::{Store, TaskFilter};

use crate::prompt::{self, DependencyResult, PromptContext, PromptTask};
use crate::run::types::RunOptions;

/// How long an attempt keeps trying to read its prompt's context while the database is
/// unavailable.
const PROMPT_READ_PATIENCE: Duration = Duration::from_secs(60);

/// The role's template rendered with the task, the objectives and the dependencies' results.
pub(crate) async fn render_prompt(
    store: &dyn Store,
    opts: &RunOptions,
    task: &Task,
) -> Result<String, String> {
    let role = task.role.clone().unwrap_or_default();
    let template = opts.prompts.get(&role).unwrap_or(&opts.default_prompt);
    // The database may be away for a moment (a server restart): that is no reason to fail
    // the task, so the reads are tried again for a while before the attempt gives up.
    let mut pause = Duration::from_millis(250);
    let give_up = Instant::now() + PROMPT_READ_PATIENCE;
    let ctx = loop {
        match prompt_context(store, task).await {
            Ok(ctx) => break ctx,
            Err(downbeat_store::Error::Unavailable(_)) if Instant::now() < give_up => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
            Err(e) => return Err(e.to_string()),
        }
    };
    prompt::render(
        if role.is_empty() { "default" } else { &role },
        template,
        &ctx,
    )
    .map_err(|e| e.to_string())
}

/// What a task's prompt template sees, read from the store: the task, the active objectives,
/// and the results and artifacts of the tasks it depends on (a container dependency contributes
/// its children's results). Render it with [`prompt::render`].
pub async fn prompt_context(
    store: &dyn Store,
    task: &Task,
) -> Result<PromptContext, downbeat_store::Error> {
    let role = task.role.clone().unwrap_or_default();
    let objectives = store
        .objectives()
        .await?
        .into_iter()
        .filter(|o| o.status == downbeat_core::context::ObjectiveStatus::Active)
        .map(|o| o.title)
        .collect();
    let mut dependencies = Vec::new();
    for e in store.edges_of(task.id).await? {
        if e.to != task.id || e.kind != EdgeKind::Blocks {
            continue;
        }
        let dep = store.task(e.from).await?;
        // A container dependency contributes its children's results.
        let mut sources = vec![dep.clone()];
        let kids = store
            .tasks(&TaskFilter {
                parent: Some(dep.id),
                ..Default::default()
            })
            .await?;
        if !kids.is_empty() {
            sources = kids;
        }
        for d in sources {
            dependencies.push(DependencyResult {
                id: d.id.to_string(),
                title: d.title.clone(),
                role: d.role.clone().unwrap_or_default(),
                result: d.result.clone().unwrap_or_default(),
                artifacts: Vec::new(),
            });
        }
    }
    // Artifacts only matter when there are dependencies to attach them to.
    if !dependencies.is_empty() {
        let artifacts = store.artifacts().await?;
        for d in &mut dependencies {
            d.artifacts = artifacts
                .iter()
                .filter(|a| a.task.to_string() == d.id)
                .map(|a| a.path.clone())
                .collect();
        }
    }
    Ok(PromptContext {
        task: PromptTask {
            id: task.id.to_string(),
            title: task.title.clone(),
            description: task.description.clone(),
            role,
            acceptance: task.acceptance.clone(),
        },
        objectives,
        dependencies,
    })
}
