//! What a merge conflict does to a task under the project's conflict policy, and the run
//! event that tells what became of each task's work. Pure: the loop supplies the dependents.

use downbeat_core::attempt::MergeState;
use downbeat_core::flags::Effect;
use downbeat_core::ids::TaskId;
use downbeat_core::task::{NewTask, Priority};

use super::types::RunEvent;
use crate::executor::{Outcome, OutcomeKind};
use crate::worktree::{ConflictPolicy, WorktreeConfig, tags};

/// What the policy adds to an attempt's end.
#[derive(Debug, Default)]
pub struct PolicyFx {
    /// The task fails for good, whatever attempts it has left.
    pub final_failure: bool,
    /// The resolver task, with its blocking edges to the task's dependents.
    pub effects: Vec<Effect>,
}

/// Applies the conflict policy to an attempt whose merge conflicted; any other is left alone.
pub fn on_conflict(
    cfg: &WorktreeConfig,
    task: TaskId,
    title: &str,
    outcome: &mut Outcome,
    dependents: impl FnOnce() -> Vec<TaskId>,
) -> PolicyFx {
    let Some(git) = outcome.detail.git.as_mut() else {
        return PolicyFx::default();
    };
    if git.state != MergeState::Conflict {
        return PolicyFx::default();
    }
    match cfg.conflict {
        ConflictPolicy::Retry => PolicyFx::default(),
        ConflictPolicy::Fail => PolicyFx {
            final_failure: true,
            effects: Vec::new(),
        },
        ConflictPolicy::Resolve => {
            git.state = MergeState::Resolving;
            let files = git.conflicts.join(", ");
            let summary = outcome
                .report
                .as_ref()
                .and_then(|r| r.summary.clone())
                .unwrap_or_default();
            let description = format!(
                "Task {task} (\"{title}\") did its work on branch `{branch}`, but merging it into \
                 the integration branch `{int}` conflicts in: {files}.\n\n\
                 Your working tree holds that merge in progress, conflict markers and all. \
                 Resolve every conflict so that both sides' intent survives, make sure the \
                 project still builds and its tests pass, and leave no conflict markers. \
                 Downbeat commits the merge and integrates it when you are done.\n\n\
                 What task {task} reported: {summary}",
                branch = git.branch,
                int = cfg.branch,
            );
            outcome.kind = OutcomeKind::Succeeded;
            outcome.error = None;
            let resolver = NewTask {
                title: format!("Resolve the merge conflict of {title}"),
                description,
                role: Some(cfg.resolver.clone()),
                priority: Priority::High,
                tags: vec![format!("{}{}", tags::MERGE, git.branch)],
                footprint: git.conflicts.clone(),
                effort: 1,
                ..NewTask::default()
            };
            PolicyFx {
                final_failure: false,
                effects: vec![Effect::Discover {
                    from: task,
                    task: resolver,
                    blocks: dependents(),
                }],
            }
        }
    }
}

/// Whether an attempt's end adds a resolver task (the conflict policy `resolve`).
pub(super) fn adds_resolver(o: &Outcome) -> bool {
    o.detail
        .git
        .as_ref()
        .is_some_and(|g| g.state == MergeState::Resolving)
}

/// The event that tells what became of an attempt's work, if it worked in a worktree.
pub(super) fn integrated(task: TaskId, outcome: &Outcome) -> Option<RunEvent> {
    let git = outcome.detail.git.as_ref()?;
    if git.state == MergeState::NotMerged {
        return None;
    }
    Some(RunEvent::Integrated {
        task: task.to_string(),
        state: git.state.name().to_owned(),
        commit: git.merge.clone(),
        files: git.files,
        conflicts: git.conflicts.clone(),
    })
}
