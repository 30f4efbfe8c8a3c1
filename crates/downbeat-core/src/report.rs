//! Human documents rendered from a [`ProjectView`]: the progress bar, the resume brief and the
//! handover. Pure functions of their input: the same view renders the same bytes.

use std::collections::HashMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::consensus;
use crate::context::{
    Artifact, Decision, DecisionStatus, FlagRecord, Insight, Metrics, Objective, ObjectiveStatus,
    Session,
};
use crate::flags::FlagState;
use crate::graph::{GraphSnapshot, GraphTask, Planned, Progress};
use crate::ids::TaskId;
use crate::task::{Edge, Status, Task};
use crate::time::Timestamp;

/// Everything the documents need, loaded in one go by the caller.
#[derive(Debug, Clone, Default)]
pub struct ProjectView {
    pub tasks: Vec<Task>,
    pub edges: Vec<Edge>,
    pub objectives: Vec<Objective>,
    pub insights: Vec<Insight>,
    pub decisions: Vec<Decision>,
    pub sessions: Vec<Session>,
    pub artifacts: Vec<Artifact>,
    /// Flags agents raised, oldest first.
    pub flags: Vec<FlagRecord>,
    pub metrics: Metrics,
    pub planned: Planned,
    pub rollup: HashMap<TaskId, Progress>,
    /// Who moved each running task to `running` (from the event log).
    pub holders: HashMap<TaskId, String>,
    /// Time of the latest change, the "as of" of the documents.
    pub as_of: Option<Timestamp>,
}

impl ProjectView {
    pub fn task(&self, id: TaskId) -> Option<&Task> {
        self.tasks.iter().find(|t| t.id == id)
    }

    /// Leaf counts per (rolled-up) status, and the overall progress over leaves.
    pub fn counts(&self) -> Counts {
        Counts::of(
            self.tasks.iter().map(|t| (t.id, t.status)),
            &self.rollup,
            &self.planned,
        )
    }
}

/// Builds the planner's snapshot from full tasks.
pub fn snapshot_of(tasks: &[Task], edges: &[Edge]) -> GraphSnapshot {
    GraphSnapshot {
        tasks: tasks
            .iter()
            .filter(|t| !t.archived)
            .map(|t| GraphTask {
                id: t.id,
                key: t.key.clone(),
                parent: t.parent,
                title: t.title.clone(),
                status: t.status,
                role: t.role.clone(),
                effort: t.effort,
                priority: t.priority,
                footprint: t.footprint.clone(),
            })
            .collect(),
        edges: edges.to_vec(),
    }
}

/// Leaf tasks by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub total: u64,
    pub completed: u64,
    pub skipped: u64,
    pub running: u64,
    pub pending: u64,
    pub ready: u64,
    pub waiting: u64,
    pub stuck: u64,
    pub failed: u64,
    pub blocked: u64,
    pub cancelled: u64,
}

impl Counts {
    /// Counts of the given tasks' statuses, containers (per `rollup`) left out, with the
    /// plan's ready, waiting and stuck leaves.
    pub fn of(
        tasks: impl IntoIterator<Item = (TaskId, Status)>,
        rollup: &HashMap<TaskId, Progress>,
        planned: &Planned,
    ) -> Self {
        let mut c = Counts::default();
        for (id, status) in tasks {
            if rollup.get(&id).is_some_and(|p| p.is_container) {
                continue;
            }
            c.total += 1;
            match status {
                Status::Completed => c.completed += 1,
                Status::Skipped => c.skipped += 1,
                Status::Running => c.running += 1,
                Status::Failed => c.failed += 1,
                Status::Blocked => c.blocked += 1,
                Status::Cancelled => c.cancelled += 1,
                Status::Pending => c.pending += 1,
            }
        }
        c.ready = planned.ready.len() as u64;
        c.waiting = planned.waiting.len() as u64;
        c.stuck = planned.stuck.len() as u64;
        c
    }

    pub fn done(&self) -> u64 {
        self.completed + self.skipped
    }
}

/// `[████████░░] 8/10` with `width` cells.
pub fn progress_bar(done: u64, total: u64, width: usize) -> String {
    let filled = if total == 0 {
        0
    } else {
        ((done as f64 / total as f64) * width as f64).round() as usize
    };
    let filled = filled.min(width);
    format!(
        "[{}{}] {done}/{total}",
        "█".repeat(filled),
        "░".repeat(width - filled)
    )
}

/// `s` on one line, cut to `max` characters with an ellipsis.
pub fn clip(s: &str, max: usize) -> String {
    let one_line = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= max {
        one_line
    } else {
        let mut out: String = one_line.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

fn task_line(v: &ProjectView, id: TaskId, title_max: usize) -> String {
    match v.task(id) {
        Some(t) => {
            let role = t
                .role
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default();
            format!("{id} {}{role}", clip(&t.title, title_max))
        }
        None => id.to_string(),
    }
}

/// The active objectives of `objectives` that linked tasks have achieved: every task linked to
/// it is completed (a container: rolled up from its whole subtree, per `rollup`). A linked
/// task missing from `rollup` is archived, which only finished work is.
pub fn achieved_objectives(
    objectives: &[Objective],
    rollup: &HashMap<TaskId, Progress>,
) -> Vec<crate::ids::RecordId> {
    objectives
        .iter()
        .filter(|o| o.status == ObjectiveStatus::Active && !o.tasks.is_empty())
        .filter(|o| {
            o.tasks
                .iter()
                .all(|t| rollup.get(t).is_none_or(|p| p.status == Status::Completed))
        })
        .map(|o| o.id)
        .collect()
}

/// (done, total) leaves of the tasks linked to objective `o`; `None` when it has none.
pub fn objective_progress(v: &ProjectView, o: &Objective) -> Option<(u32, u32)> {
    if o.tasks.is_empty() {
        return None;
    }
    let mut done = 0;
    let mut total = 0;
    for t in &o.tasks {
        if let Some(p) = v.rollup.get(t) {
            done += p.done;
            total += p.total;
        }
    }
    Some((done, total))
}

const BRIEF_LIST: usize = 8;
const BRIEF_TITLE: usize = 70;

/// The compact brief `session resume` prints: enough to pick the work up again, bounded in size
/// whatever the size of the project.
pub fn brief(v: &ProjectView, session: Option<&Session>) -> String {
    let mut s = String::new();
    let c = v.counts();
    if let Some(sess) = session {
        let _ = writeln!(
            s,
            "Session {} \"{}\" (started {})",
            sess.id,
            clip(&sess.label, 60),
            sess.started_at
        );
    }
    let _ = writeln!(
        s,
        "Progress {} · {} running · {} ready · {} waiting · {} failed · {} blocked",
        progress_bar(c.done(), c.total, 10),
        c.running,
        c.ready,
        c.waiting + c.stuck,
        c.failed,
        c.blocked
    );
    let active: Vec<&Objective> = v
        .objectives
        .iter()
        .filter(|o| o.status == ObjectiveStatus::Active)
        .collect();
    if !active.is_empty() {
        let _ = writeln!(s, "\nObjectives:");
        for o in active.iter().take(BRIEF_LIST) {
            let prog = objective_progress(v, o)
                .map(|(d, t)| format!(" [{d}/{t}]"))
                .unwrap_or_default();
            let _ = writeln!(s, "- {} {}{prog}", o.id, clip(&o.title, BRIEF_TITLE));
        }
        more(&mut s, active.len(), "objectives");
    }
    let current: Vec<&Decision> = v.decisions.iter().filter(|d| d.in_force()).collect();
    if !current.is_empty() {
        let _ = writeln!(s, "\nLatest decisions:");
        for d in current.iter().rev().take(5) {
            let why = if d.why.is_empty() {
                String::new()
            } else {
                format!(" — {}", clip(&d.why, 60))
            };
            let _ = writeln!(s, "- {} {}{why}", d.id, clip(&d.text, BRIEF_TITLE));
        }
    }
    let pending: Vec<&Decision> = v.decisions.iter().filter(|d| d.is_pending()).collect();
    if !pending.is_empty() {
        let _ = writeln!(s, "\nPending decisions:");
        for d in pending.iter().rev().take(BRIEF_LIST) {
            let _ = writeln!(s, "- {} {} (proposed)", d.id, clip(&d.text, BRIEF_TITLE));
        }
        more(&mut s, pending.len(), "pending decisions");
    }
    let running: Vec<&Task> = v
        .tasks
        .iter()
        .filter(|t| t.status == Status::Running && !is_container(v, t.id))
        .collect();
    if !running.is_empty() {
        let _ = writeln!(s, "\nIn flight:");
        for t in running.iter().take(BRIEF_LIST) {
            let who = v
                .holders
                .get(&t.id)
                .map(|h| format!(" — held by {h}"))
                .unwrap_or_default();
            let _ = writeln!(s, "- {}{who}", task_line(v, t.id, BRIEF_TITLE));
        }
        more(&mut s, running.len(), "running tasks");
    }
    if !v.planned.ready.is_empty() {
        let _ = writeln!(s, "\nNext (ready now):");
        for id in v.planned.ready.iter().take(BRIEF_LIST) {
            let _ = writeln!(s, "- {}", task_line(v, *id, BRIEF_TITLE));
        }
        more(&mut s, v.planned.ready.len(), "ready tasks");
    }
    let problems = c.failed + c.blocked + c.stuck;
    if problems > 0 {
        let _ = writeln!(
            s,
            "\nAttention: {} failed, {} blocked by hand, {} stuck behind them (`downbeat blocked`).",
            c.failed, c.blocked, c.stuck
        );
    }
    if c.total == 0 {
        let _ = writeln!(
            s,
            "\nNo tasks yet: `downbeat plan apply FILE` or `downbeat add TITLE`."
        );
    }
    s
}

fn more(s: &mut String, n: usize, what: &str) {
    if n > BRIEF_LIST {
        let _ = writeln!(s, "- … and {} more {what}", n - BRIEF_LIST);
    }
}

fn is_container(v: &ProjectView, id: TaskId) -> bool {
    v.rollup.get(&id).is_some_and(|p| p.is_container)
}

/// The handover document: where the work stands, for whoever picks it up. Decisions recorded
/// after event `decisions_after_seq` are listed as new; `decision_seqs` maps decisions to the
/// sequence number of the event that recorded them.
pub fn handover(v: &ProjectView, new_decisions: &[crate::ids::RecordId]) -> String {
    let mut s = String::new();
    let as_of = v
        .as_of
        .map(|t| t.to_string())
        .unwrap_or_else(|| "(no activity yet)".into());
    let _ = writeln!(s, "# Handover\n\nState as of {as_of}.\n");
    handover_progress(&mut s, v);
    handover_objectives(&mut s, v);
    handover_in_flight(&mut s, v);
    handover_decisions(&mut s, v, new_decisions);
    handover_insights(&mut s, v);
    handover_flags(&mut s, v);
    handover_blockers(&mut s, v);
    handover_next_wave(&mut s, v);
    handover_artifacts(&mut s, v);
    handover_metrics(&mut s, v);
    s
}

/// The handover's "Progress" section: a bar and the task count per status.
fn handover_progress(s: &mut String, v: &ProjectView) {
    let c = v.counts();
    let _ = writeln!(s, "## Progress\n");
    let _ = writeln!(s, "{}", progress_bar(c.done(), c.total, 20));
    let _ = writeln!(
        s,
        "\n| status | tasks |\n|---|---|\n| completed | {} |\n| skipped | {} |\n| running | {} |\n| ready | {} |\n| waiting | {} |\n| failed | {} |\n| blocked | {} |\n| cancelled | {} |\n",
        c.completed,
        c.skipped,
        c.running,
        c.ready,
        c.waiting + c.stuck,
        c.failed,
        c.blocked,
        c.cancelled
    );
}

/// The handover's "Objectives" section: one checkbox line per objective.
fn handover_objectives(s: &mut String, v: &ProjectView) {
    let _ = writeln!(s, "## Objectives\n");
    if v.objectives.is_empty() {
        let _ = writeln!(s, "None recorded.\n");
        return;
    }
    for o in &v.objectives {
        let mark = match o.status {
            ObjectiveStatus::Achieved => "x",
            ObjectiveStatus::Active => " ",
            ObjectiveStatus::Dropped => "-",
        };
        let prog = objective_progress(v, o)
            .map(|(d, t)| format!(" — {d}/{t} tasks done"))
            .unwrap_or_default();
        let _ = writeln!(s, "- [{mark}] {} {} ({}){prog}", o.id, o.title, o.status);
    }
    s.push('\n');
}

/// The handover's "In flight" section: running tasks (not containers) with their holders.
fn handover_in_flight(s: &mut String, v: &ProjectView) {
    let _ = writeln!(s, "## In flight\n");
    let running: Vec<&Task> = v
        .tasks
        .iter()
        .filter(|t| t.status == Status::Running && !is_container(v, t.id))
        .collect();
    if running.is_empty() {
        let _ = writeln!(s, "Nothing is running.\n");
        return;
    }
    for t in running {
        let who = v
            .holders
            .get(&t.id)
            .map(String::as_str)
            .unwrap_or("unknown");
        let since = t.started_at.map(|t| t.to_string()).unwrap_or_default();
        let _ = writeln!(
            s,
            "- {} — held by {who} since {since}",
            task_line(v, t.id, 200)
        );
    }
    s.push('\n');
}

/// The handover's decisions section: the new ones, then the older ones still in force.
fn handover_decisions(s: &mut String, v: &ProjectView, new_decisions: &[crate::ids::RecordId]) {
    let _ = writeln!(s, "## Decisions since the last handover\n");
    let new: Vec<&Decision> = v
        .decisions
        .iter()
        .filter(|d| new_decisions.contains(&d.id) && d.status == DecisionStatus::Accepted)
        .collect();
    if new.is_empty() {
        let _ = writeln!(s, "None.\n");
    } else {
        for d in new {
            decision_line(s, d);
        }
        s.push('\n');
    }
    let older: Vec<&Decision> = v
        .decisions
        .iter()
        .filter(|d| !new_decisions.contains(&d.id) && d.in_force())
        .collect();
    if !older.is_empty() {
        let _ = writeln!(s, "Earlier decisions still in force:\n");
        for d in older {
            decision_line(s, d);
        }
        s.push('\n');
    }
    let pending: Vec<&Decision> = v.decisions.iter().filter(|d| d.is_pending()).collect();
    if !pending.is_empty() {
        let _ = writeln!(s, "Pending decisions (proposed, not in force):\n");
        for d in pending {
            decision_line(s, d);
        }
        s.push('\n');
    }
}

/// The handover's "Insights" section.
fn handover_insights(s: &mut String, v: &ProjectView) {
    let _ = writeln!(s, "## Insights\n");
    if v.insights.is_empty() {
        let _ = writeln!(s, "None recorded.\n");
        return;
    }
    for i in &v.insights {
        let task = i.task.map(|t| format!(" (task {t})")).unwrap_or_default();
        let _ = writeln!(s, "- {} {}{task}", i.id, i.text);
    }
    s.push('\n');
}

/// The handover's "Flags" section, when any flag was raised: those still waiting first.
fn handover_flags(s: &mut String, v: &ProjectView) {
    if v.flags.is_empty() {
        return;
    }
    let _ = writeln!(s, "## Flags\n");
    let waiting = |f: &&FlagRecord| f.state == FlagState::Raised;
    for f in v.flags.iter().filter(waiting) {
        flag_line(s, v, f);
    }
    for f in v.flags.iter().filter(|f| !waiting(f)) {
        flag_line(s, v, f);
    }
    s.push('\n');
}

/// One flag as the documents list it: what, who raised it, where it stands and what handles
/// it; its detail on a line of its own.
pub fn flag_line(s: &mut String, v: &ProjectView, f: &FlagRecord) {
    let _ = writeln!(
        s,
        "- {} {} by {} — {}",
        f.id,
        f.flag,
        task_line(v, f.task, 120),
        flag_state(v, f)
    );
    if !f.detail.is_empty() {
        let _ = writeln!(s, "  - detail: {}", clip(&f.detail, 300));
    }
}

/// Where a flag stands, in words: `handled by abc123 Fix it`, `raised: follow-up abc123 Fix it
/// is running`, `suppressed: ...`, `raised: no rule for this flag`.
pub fn flag_state(v: &ProjectView, f: &FlagRecord) -> String {
    match (f.state, f.follow_up) {
        (FlagState::Handled, Some(fu)) => format!("handled by {}", task_line(v, fu, 80)),
        (FlagState::Raised, Some(fu)) => {
            let status = v
                .task(fu)
                .map(|t| t.status.to_string())
                .unwrap_or_else(|| "archived".into());
            format!("raised: follow-up {} is {status}", task_line(v, fu, 80))
        }
        (state, _) if f.note.is_empty() => state.to_string(),
        (state, _) => format!("{state}: {}", f.note),
    }
}

/// The handover's "Blockers" section: failed or blocked tasks, then tasks that cannot start.
fn handover_blockers(s: &mut String, v: &ProjectView) {
    let _ = writeln!(s, "## Blockers\n");
    let held: Vec<&Task> = v
        .tasks
        .iter()
        .filter(|t| matches!(t.status, Status::Failed | Status::Blocked) && !is_container(v, t.id))
        .collect();
    if held.is_empty() && v.planned.stuck.is_empty() {
        let _ = writeln!(s, "None.\n");
        return;
    }
    for t in held {
        let why = t
            .result
            .as_deref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default();
        let _ = writeln!(s, "- {} is {}{why}", task_line(v, t.id, 200), t.status);
    }
    for (id, on) in &v.planned.stuck {
        let on: Vec<String> = on.iter().map(ToString::to_string).collect();
        let _ = writeln!(
            s,
            "- {} cannot start until {} is dealt with",
            task_line(v, *id, 200),
            on.join(", ")
        );
    }
    s.push('\n');
}

/// The handover's "Next wave" section: the first planned wave and what remains after it.
fn handover_next_wave(s: &mut String, v: &ProjectView) {
    let _ = writeln!(s, "## Next wave\n");
    match v.planned.waves.first() {
        None => {
            let _ = writeln!(s, "Nothing left to schedule.\n");
        }
        Some(w) => {
            for id in w {
                let _ = writeln!(s, "- {}", task_line(v, *id, 200));
            }
            let _ = writeln!(
                s,
                "\n{} wave(s) remain; critical path {} effort units over {} task(s).\n",
                v.planned.waves.len(),
                v.planned.critical_path_effort,
                v.planned.critical_path.len()
            );
        }
    }
}

/// The handover's "Artifacts" section.
fn handover_artifacts(s: &mut String, v: &ProjectView) {
    let _ = writeln!(s, "## Artifacts\n");
    if v.artifacts.is_empty() {
        let _ = writeln!(s, "None recorded.\n");
        return;
    }
    for a in &v.artifacts {
        let size = a.size.map(|n| format!(" ({n} bytes)")).unwrap_or_default();
        let _ = writeln!(s, "- {} — {}{size}", a.task, a.path);
    }
    s.push('\n');
}

/// The handover's closing "Metrics" section (no trailing blank line).
fn handover_metrics(s: &mut String, v: &ProjectView) {
    let m = &v.metrics;
    let pct = |x: Option<f64>| {
        x.map(|x| format!("{:.0}%", x * 100.0))
            .unwrap_or_else(|| "n/a".into())
    };
    let _ = writeln!(
        s,
        "## Metrics\n\n- tasks completed: {}\n- success rate: {}\n- parallel execution rate: {}\n- sessions: {}\n- decisions: {}",
        m.tasks_completed,
        pct(m.success_rate),
        pct(m.parallel_execution_rate),
        m.sessions,
        m.decisions
    );
}

fn decision_line(s: &mut String, d: &Decision) {
    let why = if d.why.is_empty() {
        String::new()
    } else {
        format!(" — because {}", d.why)
    };
    let sup = d
        .supersedes
        .map(|x| format!(" (supersedes {x})"))
        .unwrap_or_default();
    let _ = writeln!(s, "- {} {}{why}{sup}", d.id, d.text);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_bars_fill_proportionally() {
        assert_eq!(progress_bar(8, 10, 10), "[████████░░] 8/10");
        assert_eq!(progress_bar(0, 0, 4), "[░░░░] 0/0");
        assert_eq!(progress_bar(3, 3, 4), "[████] 3/3");
    }

    #[test]
    fn clipping_keeps_one_line() {
        assert_eq!(clip("a\nb", 10), "a b");
        assert_eq!(clip("abcdef", 4), "abc…");
    }
}

/// The integration report of a container's subtree (or of the whole project when `root` is
/// `None`): what was done and by which role, results, failures and what they hold back, flags
/// raised, and completeness against acceptance criteria.
pub fn synthesis(v: &ProjectView, root: Option<TaskId>) -> String {
    let in_scope = scope_of(v, root);
    let leaves: Vec<&Task> = v
        .tasks
        .iter()
        .filter(|t| in_scope.contains(&t.id) && !is_container(v, t.id))
        .collect();
    let mut s = String::new();
    let title = match root.and_then(|r| v.task(r)) {
        Some(t) => format!("{} {}", t.id, t.title),
        None => "the whole project".to_owned(),
    };
    let _ = writeln!(s, "# Integration report: {title}\n");
    let done = leaves
        .iter()
        .filter(|t| t.status.satisfies_dependents())
        .count() as u64;
    let _ = writeln!(s, "{}\n", progress_bar(done, leaves.len() as u64, 20));

    let _ = writeln!(s, "## Done\n");
    let finished: Vec<&&Task> = leaves
        .iter()
        .filter(|t| t.status == Status::Completed)
        .collect();
    if finished.is_empty() {
        let _ = writeln!(s, "Nothing yet.\n");
    } else {
        for t in &finished {
            let role = t.role.as_deref().unwrap_or("no role");
            let result = t
                .result
                .as_deref()
                .map(|r| format!(": {}", clip(r, 300)))
                .unwrap_or_default();
            let _ = writeln!(s, "- {} {} ({role}){result}", t.id, t.title);
            for a in v.artifacts.iter().filter(|a| a.task == t.id) {
                let _ = writeln!(s, "  - artifact: {}", a.path);
            }
        }
        s.push('\n');
    }

    consensus_section(&mut s, v, &in_scope);

    let _ = writeln!(s, "## Failures and what they hold back\n");
    let failed: Vec<&&Task> = leaves
        .iter()
        .filter(|t| {
            matches!(
                t.status,
                Status::Failed | Status::Cancelled | Status::Blocked
            )
        })
        .collect();
    if failed.is_empty() {
        let _ = writeln!(s, "None.\n");
    } else {
        for t in &failed {
            let why = t
                .result
                .as_deref()
                .map(|r| format!(": {}", clip(r, 200)))
                .unwrap_or_default();
            let _ = writeln!(s, "- {} {} is {}{why}", t.id, t.title, t.status);
            let held: Vec<String> = v
                .planned
                .stuck
                .iter()
                .filter(|(_, on)| on.contains(&t.id))
                .map(|(id, _)| id.to_string())
                .collect();
            if !held.is_empty() {
                let _ = writeln!(s, "  - holds back: {}", held.join(", "));
            }
        }
        s.push('\n');
    }

    let _ = writeln!(s, "## Flags raised\n");
    let raised: Vec<&FlagRecord> = v
        .flags
        .iter()
        .filter(|f| in_scope.contains(&f.task))
        .collect();
    if raised.is_empty() {
        let _ = writeln!(s, "None.\n");
    } else {
        for f in raised {
            flag_line(&mut s, v, f);
        }
        s.push('\n');
    }

    let _ = writeln!(s, "## Completeness\n");
    let open: Vec<&&Task> = leaves
        .iter()
        .filter(|t| !t.status.satisfies_dependents())
        .collect();
    let _ = writeln!(s, "{done} of {} task(s) done.", leaves.len());
    let unmet: Vec<&&Task> = leaves
        .iter()
        .filter(|t| !t.acceptance.is_empty() && t.status != Status::Completed)
        .collect();
    let met = leaves
        .iter()
        .filter(|t| !t.acceptance.is_empty() && t.status == Status::Completed)
        .count();
    let _ = writeln!(
        s,
        "{met} task(s) with acceptance criteria completed, {} not.",
        unmet.len()
    );
    if !unmet.is_empty() {
        let _ = writeln!(s, "\nAcceptance criteria not yet met:\n");
        for t in unmet {
            let _ = writeln!(s, "- {} {} [{}]", t.id, t.title, t.status);
            for c in &t.acceptance {
                let _ = writeln!(s, "  - [ ] {c}");
            }
        }
    }
    if !open.is_empty() {
        let _ = writeln!(
            s,
            "\nStill open: {}",
            open.iter()
                .map(|t| t.id.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    s
}

/// Each consensus task in scope: its answers, which of them agree (equal after
/// [`consensus::normalise`]) and which conflict, and the resolve task's decision. Nothing when
/// there is no consensus task.
fn consensus_section(
    s: &mut String,
    v: &ProjectView,
    in_scope: &std::collections::HashSet<TaskId>,
) {
    let has = |t: &Task, tag: &str| t.tags.iter().any(|x| x == tag);
    let containers: Vec<&Task> = v
        .tasks
        .iter()
        .filter(|t| in_scope.contains(&t.id) && has(t, consensus::TAG))
        .collect();
    if containers.is_empty() {
        return;
    }
    let _ = writeln!(s, "## Consensus\n");
    let _ = writeln!(
        s,
        "Answers agree when their summaries are equal once case, runs of whitespace and trailing punctuation are set aside.\n"
    );
    for c in containers {
        let mut kids: Vec<&Task> = v.tasks.iter().filter(|t| t.parent == Some(c.id)).collect();
        kids.sort_by_key(|t| t.id.seq());
        let answers: Vec<&Task> = kids
            .iter()
            .copied()
            .filter(|t| has(t, consensus::ANSWER_TAG))
            .collect();
        let _ = writeln!(s, "### {} {} ({} answers)\n", c.id, c.title, answers.len());
        for (i, a) in answers.iter().enumerate() {
            let by = match a.exec.executor.as_deref() {
                Some(e) if e.trim_start().starts_with('{') => " by a process".to_owned(),
                Some(e) => format!(" by `{e}`"),
                None => String::new(),
            };
            let said = match (&a.status, a.result.as_deref()) {
                (Status::Completed, Some(r)) => format!(": {}", clip(r, 300)),
                (st, _) => format!(" [{st}]"),
            };
            let _ = writeln!(s, "- answer {} {}{by}{said}", i + 1, a.id);
        }
        let done: Vec<(usize, &str)> = answers
            .iter()
            .enumerate()
            .filter(|(_, a)| a.status == Status::Completed)
            .map(|(i, a)| (i, a.result.as_deref().unwrap_or("")))
            .collect();
        let texts: Vec<&str> = done.iter().map(|(_, r)| *r).collect();
        let groups: Vec<Vec<usize>> = consensus::agreement(&texts)
            .into_iter()
            .map(|g| g.into_iter().map(|k| done[k].0 + 1).collect())
            .collect();
        let name = |g: &[usize]| {
            let n: Vec<String> = g.iter().map(usize::to_string).collect();
            match n.as_slice() {
                [one] => format!("answer {one}"),
                [rest @ .., last] => format!("answers {} and {last}", rest.join(", ")),
                [] => String::new(),
            }
        };
        match groups.len() {
            0 => {
                let _ = writeln!(s, "- no answers to compare yet");
            }
            1 if groups[0].len() == answers.len() => {
                let _ = writeln!(s, "- agreement: all {} answers agree", answers.len());
            }
            _ => {
                for g in groups.iter().filter(|g| g.len() > 1) {
                    let _ = writeln!(s, "- agreement: {} agree", name(g));
                }
                if groups.len() > 1 {
                    let sides: Vec<String> = groups.iter().map(|g| name(g)).collect();
                    let _ = writeln!(s, "- conflict: {}", sides.join(" vs "));
                }
            }
        }
        for r in kids.iter().filter(|t| has(t, consensus::RESOLVE_TAG)) {
            let role = r.role.as_deref().unwrap_or("no role");
            match (&r.status, r.result.as_deref()) {
                (Status::Completed, Some(d)) => {
                    let _ = writeln!(s, "- decision ({} {role}): {}", r.id, clip(d, 500));
                }
                (st, _) => {
                    let _ = writeln!(s, "- decision: not yet ({} {role} is {st})", r.id);
                }
            }
        }
        s.push('\n');
    }
}

fn scope_of(v: &ProjectView, root: Option<TaskId>) -> std::collections::HashSet<TaskId> {
    let Some(root) = root else {
        return v.tasks.iter().map(|t| t.id).collect();
    };
    let mut out = std::collections::HashSet::new();
    let mut stack = vec![root];
    while let Some(id) = stack.pop() {
        if out.insert(id) {
            stack.extend(
                v.tasks
                    .iter()
                    .filter(|t| t.parent == Some(id))
                    .map(|t| t.id),
            );
        }
    }
    out
}

/// What the attempts of one role cost: tokens from the ledger, money where the agent reported it.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct RoleSpend {
    /// `-` for tasks without a role.
    pub role: String,
    pub attempts: u64,
    pub tokens_in: u64,
    pub tokens_out: u64,
    /// Summed over the attempts that reported a cost; `None` when none did.
    pub cost_usd: Option<f64>,
}

impl RoleSpend {
    /// Adds another row's figures to this one.
    pub fn add(&mut self, other: &RoleSpend) {
        self.attempts += other.attempts;
        self.tokens_in += other.tokens_in;
        self.tokens_out += other.tokens_out;
        self.cost_usd = match (self.cost_usd, other.cost_usd) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0.0) + b.unwrap_or(0.0)),
        };
    }
}

/// A markdown section of tokens and cost per role, with the total; empty without attempts.
/// The "Landed" section of an integration report: the merges of the tasks in scope into the
/// integration branch, in the order of `work` (the ledger's), with their change's size; and
/// the conflicts still waiting for a resolver. Empty when no task in scope worked in a
/// worktree.
pub fn landed_section(
    v: &ProjectView,
    root: Option<TaskId>,
    work: &[(TaskId, crate::attempt::GitWork)],
) -> String {
    use crate::attempt::MergeState;
    use std::fmt::Write as _;
    let scope = scope_of(v, root);
    let title = |id: TaskId| v.task(id).map(|t| t.title.as_str()).unwrap_or("(archived)");
    let mut merged = String::new();
    let mut open = String::new();
    for (id, g) in work.iter().filter(|(id, _)| scope.contains(id)) {
        match (g.state, &g.merge) {
            (MergeState::Merged, Some(m)) if g.head.is_some() => {
                let _ = writeln!(
                    merged,
                    "| `{}` | {id} {} | {} file(s), +{} -{} |",
                    &m[..m.len().min(10)],
                    title(*id),
                    g.files,
                    g.insertions,
                    g.deletions
                );
            }
            (MergeState::Resolving, _) => {
                let _ = writeln!(
                    open,
                    "- {id} {}: conflicted in {}; a resolver task integrates it",
                    title(*id),
                    g.conflicts.join(", ")
                );
            }
            _ => {}
        }
    }
    if merged.is_empty() && open.is_empty() {
        return String::new();
    }
    let mut s = String::from("\n## Landed\n\n");
    if !merged.is_empty() {
        s.push_str("Merged into the integration branch, in order:\n\n| commit | task | change |\n|---|---|---|\n");
        s.push_str(&merged);
    }
    if !open.is_empty() {
        s.push_str("\nConflicts:\n\n");
        s.push_str(&open);
    }
    s
}

pub fn spend_section(rows: &[RoleSpend]) -> String {
    use std::fmt::Write as _;
    if rows.iter().all(|r| r.attempts == 0) {
        return String::new();
    }
    let cost = |c: Option<f64>| c.map_or_else(|| "-".to_owned(), |c| format!("${c:.4}"));
    let mut s = String::from(
        "\n## Spend\n\n| role | attempts | tokens in | tokens out | cost |\n|---|---|---|---|---|\n",
    );
    let mut total = RoleSpend {
        role: "total".into(),
        ..RoleSpend::default()
    };
    for r in rows {
        total.add(r);
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} |",
            r.role,
            r.attempts,
            r.tokens_in,
            r.tokens_out,
            cost(r.cost_usd)
        );
    }
    let _ = writeln!(
        s,
        "| **total** | {} | {} | {} | {} |",
        total.attempts,
        total.tokens_in,
        total.tokens_out,
        cost(total.cost_usd)
    );
    s
}

#[cfg(test)]
mod spend_tests {
    use super::*;

    #[test]
    fn spend_adds_up_per_role_and_in_total() {
        let rows = vec![
            RoleSpend {
                role: "implementer".into(),
                attempts: 2,
                tokens_in: 100,
                tokens_out: 20,
                cost_usd: Some(0.5),
            },
            RoleSpend {
                role: "tester".into(),
                attempts: 1,
                tokens_in: 10,
                tokens_out: 2,
                cost_usd: None,
            },
        ];
        let s = spend_section(&rows);
        assert!(
            s.contains("| implementer | 2 | 100 | 20 | $0.5000 |"),
            "{s}"
        );
        assert!(s.contains("| tester | 1 | 10 | 2 | - |"), "{s}");
        assert!(s.contains("| **total** | 3 | 110 | 22 | $0.5000 |"), "{s}");
        assert_eq!(spend_section(&[]), "");
    }
}
