//! What a task's prompt template sees, read from the store: the task, the active objectives,
//! the results and artifacts of the tasks it depends on, the flag it follows up, and within
//! the context budget the team's decisions and insights and the project's memory files; and
//! the prompt rendered from it.
//!
//! Must never: write to the store, or fail an attempt for a database that is away for a moment
//! (reads are tried again for a while), or fail one for a memory file it cannot read (it is
//! left out).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use downbeat_core::context::{Decision, Insight};
use downbeat_core::ids::TaskId;
use downbeat_core::task::{EdgeKind, Task};
use downbeat_store::{FlagFilter, Store, TaskFilter};

use crate::prompt::{
    self, DependencyResult, PromptContext, PromptFlag, PromptMemory, PromptRecord, PromptTask,
    Shown,
};
use crate::run::types::RunOptions;

/// How long an attempt keeps trying to read its prompt's context while the database is
/// unavailable.
const PROMPT_READ_PATIENCE: Duration = Duration::from_secs(60);

/// The role's template rendered with the task, the objectives and the dependencies' results.
///
/// `whole`: `task` has every field. Else (a runner holds only the fields it schedules by) a
/// template that shows the task gets it read from the store.
/// `shared`: what the prompts of attempts started together read alike (see [`Shared`]).
pub(crate) async fn render_prompt(
    store: &dyn Store,
    opts: &RunOptions,
    task: &Task,
    whole: bool,
    shared: &Shared,
) -> Result<String, String> {
    let role = task.role.clone().unwrap_or_default();
    let template = opts.prompts.get(&role).unwrap_or(&opts.default_prompt);
    // The database may be away for a moment (a server restart): that is no reason to fail
    // the task, so the reads are tried again for a while before the attempt gives up.
    let mut pause = Duration::from_millis(250);
    let give_up = Instant::now() + PROMPT_READ_PATIENCE;
    let shown = Shown::of(template);
    let ctx = loop {
        let budget = opts.context_budget;
        let read = async {
            let stored;
            let task = if whole || !shown.task {
                task
            } else {
                stored = store.task(task.id).await?;
                &stored
            };
            read_context(store, task, budget, &opts.memory_files, shown, shared).await
        };
        match read.await {
            Ok(ctx) => break ctx,
            Err(downbeat_store::Error::Unavailable(_)) if Instant::now() < give_up => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
            Err(e) => return Err(e.to_string()),
        }
    };
    let mut out = prompt::render(
        if role.is_empty() { "default" } else { &role },
        template,
        &ctx,
    )
    .map_err(|e| e.to_string())?;
    out.push_str(&prompt::context_sections(template, &ctx));
    Ok(out)
}

/// What a task's prompt template sees, read from the store: the task, the active objectives,
/// the results and artifacts of the tasks it depends on (a container dependency contributes
/// its children's results), the flags it is the follow-up of (with the flagging task's
/// summary and artifacts), and, within `budget` bytes, the decisions in force, the insights
/// about the task, its ancestors, its dependencies, tasks of its role or the whole project, and the memory files
/// among `memory_files` that exist (without Downbeat's own section), in that order. Render it
/// with [`prompt::render`] and [`prompt::context_sections`].
pub async fn prompt_context(
    store: &dyn Store,
    task: &Task,
    budget: usize,
    memory_files: &[PathBuf],
) -> Result<PromptContext, downbeat_store::Error> {
    let shared = Shared::default();
    read_context(store, task, budget, memory_files, Shown::ALL, &shared).await
}

/// What the prompts of attempts started together read alike: the insights, the decisions and
/// the memory files. The first prompt of a batch that needs them reads them, and the others
/// of the batch use that read. A batch is what one commit of the loop starts, so every
/// attempt still sees all that was recorded before it was claimed; the store is read once per
/// batch instead of twice per attempt.
#[derive(Default)]
pub(crate) struct Shared {
    records: tokio::sync::OnceCell<(Vec<Insight>, Vec<Decision>)>,
    memory: tokio::sync::OnceCell<Vec<(String, String)>>,
}

impl Shared {
    /// The insights and the decisions, read by the first caller (an error is not kept: the
    /// next caller reads again).
    async fn records(
        &self,
        store: &dyn Store,
    ) -> Result<&(Vec<Insight>, Vec<Decision>), downbeat_store::Error> {
        self.records
            .get_or_try_init(|| async { tokio::try_join!(store.insights(), store.decisions()) })
            .await
    }

    /// The memory files among `files` that exist, as (file name, text without Downbeat's
    /// own section); files that cannot be read or hold nothing else are left out.
    async fn memory(&self, files: &[PathBuf]) -> &[(String, String)] {
        self.memory.get_or_init(|| read_memory(files)).await
    }
}

/// [`prompt_context`] for a template that shows only `shown`: the objectives and the
/// dependencies' results it does not show are left empty and not read (the dependencies are
/// still read when an insight linked to another task may concern this one through them).
async fn read_context(
    store: &dyn Store,
    task: &Task,
    budget: usize,
    memory_files: &[PathBuf],
    shown: Shown,
    shared: &Shared,
) -> Result<PromptContext, downbeat_store::Error> {
    let role = task.role.clone().unwrap_or_default();
    let objectives = if shown.objectives {
        store
            .objectives()
            .await?
            .into_iter()
            .filter(|o| o.status == downbeat_core::context::ObjectiveStatus::Active)
            .map(|o| o.title)
            .collect()
    } else {
        Vec::new()
    };
    // Read once: it tells whose insights may concern the task, and the prompt shows them.
    let (all_insights, all_decisions) = shared.records(store).await?;
    // Whose insights concern this task: itself, its ancestors, what it depends on. Only an
    // insight linked to another task needs the others worked out.
    let mut about = vec![task.id];
    let linked_elsewhere = all_insights
        .iter()
        .any(|i| i.task.is_some_and(|t| t != task.id));
    let mut dependencies = if shown.dependencies || linked_elsewhere {
        dependency_results(store, task, &mut about).await?
    } else {
        Vec::new()
    };
    let mut flags = followed_up(store, task).await?;
    // Artifacts only matter when there are tasks to attach them to.
    if (shown.dependencies && !dependencies.is_empty()) || !flags.is_empty() {
        let artifacts = store.artifacts().await?;
        let results = dependencies
            .iter_mut()
            .chain(flags.iter_mut().map(|f| &mut f.raised_by));
        for d in results {
            d.artifacts = artifacts
                .iter()
                .filter(|a| a.task.to_string() == d.id)
                .map(|a| a.path.clone())
                .collect();
        }
    }
    // Insights learned on other tasks of the same role concern it too: the few tasks insights
    // are linked to are looked up, never every task of the role.
    if let Some(r) = task.role.as_deref().filter(|r| !r.is_empty()) {
        let mut linked: Vec<_> = all_insights
            .iter()
            .filter_map(|i| i.task)
            .filter(|t| !about.contains(t))
            .collect();
        linked.sort();
        linked.dedup();
        for t in linked {
            if store.task(t).await?.role.as_deref() == Some(r) {
                about.push(t);
            }
        }
    }
    let mut left = budget;
    let (decisions, insights) = team_context(all_decisions, all_insights, &about, &mut left);
    let memory = memory(shared.memory(memory_files).await, &mut left);
    Ok(PromptContext {
        decisions,
        insights,
        flags,
        memory,
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

/// The results of the tasks `task` depends on (a container dependency contributes its
/// children's), artifacts not filled in; adds its ancestors and dependencies to `about`.
async fn dependency_results(
    store: &dyn Store,
    task: &Task,
    about: &mut Vec<TaskId>,
) -> Result<Vec<DependencyResult>, downbeat_store::Error> {
    let mut up = task.parent;
    while let Some(pid) = up.filter(|p| !about.contains(p)) {
        about.push(pid);
        up = store.task(pid).await?.parent;
    }
    let mut dependencies = Vec::new();
    for e in store.edges_of(task.id).await? {
        if e.to != task.id || e.kind != EdgeKind::Blocks {
            continue;
        }
        about.push(e.from);
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
    Ok(dependencies)
}

/// The decisions in force (oldest first) and those of `insights` about `about` or the whole
/// project (newest first), as many as fit in `budget` bytes, decisions first.
fn team_context(
    decisions: &[Decision],
    insights: &[Insight],
    about: &[TaskId],
    left: &mut usize,
) -> (Vec<PromptRecord>, Vec<PromptRecord>) {
    let mut take = |r: &PromptRecord| {
        let size = r.id.len() + r.text.len() + r.why.len() + 8;
        let fits = size <= *left;
        if fits {
            *left -= size;
        }
        fits
    };
    let mut decisions: Vec<_> = decisions.iter().filter(|d| d.in_force()).collect();
    decisions.sort_by_key(|d| (d.created_at, d.id.to_string()));
    let decisions: Vec<PromptRecord> = decisions
        .into_iter()
        .map(|d| PromptRecord {
            id: d.id.to_string(),
            text: d.text.clone(),
            why: d.why.clone(),
        })
        .take_while(|r| take(r))
        .collect();
    let about: std::collections::HashSet<_> = about.iter().copied().collect();
    let mut insights: Vec<_> = insights
        .iter()
        .filter(|i| i.task.is_none_or(|t| about.contains(&t)))
        .collect();
    insights.sort_by_key(|i| std::cmp::Reverse((i.created_at, i.id.to_string())));
    let insights = insights
        .into_iter()
        .map(|i| PromptRecord {
            id: i.id.to_string(),
            text: i.text.clone(),
            why: String::new(),
        })
        .take_while(|r| take(r))
        .collect();
    (decisions, insights)
}

/// The flags `task` is the follow-up of, with the flagging tasks (artifacts filled in by the
/// caller). Only a task carrying a flag's tag can be one, so others cost no query.
async fn followed_up(
    store: &dyn Store,
    task: &Task,
) -> Result<Vec<PromptFlag>, downbeat_store::Error> {
    if downbeat_core::flags::lineage_of(&task.tags).is_empty() {
        return Ok(Vec::new());
    }
    let filter = FlagFilter {
        follow_up: Some(task.id),
        ..Default::default()
    };
    let mut out = Vec::new();
    for f in store.flags(&filter).await? {
        let by = store.task(f.task).await?;
        out.push(PromptFlag {
            id: f.id.to_string(),
            flag: f.flag,
            detail: f.detail,
            raised_by: DependencyResult {
                id: by.id.to_string(),
                title: by.title,
                role: by.role.unwrap_or_default(),
                result: by.result.unwrap_or_default(),
                artifacts: Vec::new(),
            },
        });
    }
    Ok(out)
}

/// The memory files among `files` that exist, as (file name, text without Downbeat's own
/// section). A file that cannot be read, or holds nothing else, is left out.
async fn read_memory(files: &[PathBuf]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for path in files {
        let Ok(text) = tokio::fs::read_to_string(path).await else {
            continue;
        };
        let rest = downbeat_core::memory::without_section(&text);
        if rest.trim().is_empty() {
            continue;
        }
        let file = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        out.push((file, rest));
    }
    out
}

/// The memory files clipped to the `left` bytes of the budget (whole lines).
fn memory(files: &[(String, String)], left: &mut usize) -> Vec<PromptMemory> {
    let mut out = Vec::new();
    for (file, rest) in files {
        if *left == 0 {
            break;
        }
        let (kept, _) = downbeat_core::memory::clip_to(rest, *left);
        *left -= kept.len();
        out.push(PromptMemory {
            file: file.clone(),
            text: kept.to_owned(),
            left_out: rest.len() - kept.len(),
        });
    }
    out
}
