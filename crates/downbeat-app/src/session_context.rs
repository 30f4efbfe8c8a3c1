//! The session context: one compact document of where the project stands, for a conductor
//! resuming work — objectives with their linked tasks and progress, completed and active
//! tasks, key insights, decisions in force and pending, the agents spawned (from the attempt
//! ledger) and the figures that say how the team works.
//!
//! It stays small whatever the project's size: every list is a count plus its most relevant
//! items (newest first; running work before anything else), and the lists are shortened until
//! both the text and the JSON form fit in [`BUDGET`] bytes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;

use downbeat_core::context::{Decision, DecisionStatus, Metrics, ObjectiveStatus};
use downbeat_core::ids::TaskId;
use downbeat_core::report::{self, Counts, ProjectView, clip};
use downbeat_core::task::Status;
use downbeat_core::time::Timestamp;
use downbeat_store::AttemptRecord;
use serde::Serialize;

use crate::error::Error;
use crate::project::Project;

/// The most either form of the document takes, in bytes.
pub const BUDGET: usize = 6_000;
/// Items per list before the document is shortened to fit.
const ITEMS: usize = 6;
const TITLE: usize = 60;
const TEXT: usize = 90;
/// Linked tasks named per objective.
const LINKED: usize = 3;
/// Entries per breakdown of the agents spawned (the rest summed as `other`).
const KINDS: usize = 6;

/// The session context document.
#[derive(Debug, Clone, Serialize)]
pub struct SessionContext {
    /// Time of the latest change.
    pub as_of: Option<Timestamp>,
    /// The open session, if any.
    pub session: Option<SessionLine>,
    /// Leaf tasks per status (containers left out).
    pub tasks: Counts,
    pub objectives: Listed<ObjectiveItem>,
    /// Completed tasks, most recently finished first.
    pub completed_tasks: Listed<TaskItem>,
    /// Running tasks, most recently started first.
    pub active_tasks: Listed<TaskItem>,
    /// Insights, newest first.
    pub key_insights: Listed<Note>,
    pub decisions: Decisions,
    pub agents: Agents,
    pub metrics: Figures,
}

/// A list cut to its first items: `total` says how many there are.
#[derive(Debug, Clone, Serialize)]
pub struct Listed<T> {
    pub total: usize,
    pub items: Vec<T>,
}

impl<T> Listed<T> {
    fn of(all: Vec<T>, n: usize) -> Self {
        let total = all.len();
        Self {
            total,
            items: all.into_iter().take(n).collect(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SessionLine {
    pub id: String,
    pub label: String,
    pub started_at: Timestamp,
}

#[derive(Debug, Clone, Serialize)]
pub struct ObjectiveItem {
    pub id: String,
    pub title: String,
    pub status: ObjectiveStatus,
    /// The first linked tasks; `linked` counts them all.
    pub tasks: Vec<String>,
    pub linked: usize,
    /// Leaves completed and in all under the linked tasks.
    pub done: u32,
    pub total: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct TaskItem {
    pub id: String,
    pub title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// A completed task's result summary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// Completed: when it finished; running: when it started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<Timestamp>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Note {
    pub id: String,
    pub text: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub why: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
}

/// Decisions in force (accepted, not superseded; newest first) and pending ones (proposed,
/// oldest first: the longest waiting comes first).
#[derive(Debug, Clone, Serialize)]
pub struct Decisions {
    pub in_force: Listed<Note>,
    pub pending: Listed<Note>,
    pub superseded: usize,
    pub rejected: usize,
}

/// The agents spawned: one per attempt in the ledger.
#[derive(Debug, Clone, Serialize)]
pub struct Agents {
    pub spawned: usize,
    /// Tasks with at least one attempt.
    pub tasks: usize,
    /// Most first; the rest summed as `other`.
    pub by_role: Vec<(String, usize)>,
    pub by_executor: Vec<(String, usize)>,
    /// `completed`, `failed`, `lost`, …, and `running` for attempts not ended.
    pub by_outcome: Vec<(String, usize)>,
}

/// How the team works, as rates (0..=1); `None` before there is anything to measure.
#[derive(Debug, Clone, Serialize)]
pub struct Figures {
    /// Share of finished runs that overlapped another run.
    pub parallel_execution_rate: Option<f64>,
    /// Completed / (completed + failed) runs.
    pub success_rate: Option<f64>,
    /// Attempts beyond each task's first / tasks attempted.
    pub rework_rate: Option<f64>,
    /// Attempts / tasks attempted.
    pub agents_per_task: Option<f64>,
    pub tasks_completed: u64,
    pub tasks_failed: u64,
    pub sessions: u64,
    pub decisions_made: u64,
}

/// The session context of the project, within [`BUDGET`].
pub async fn session_context(p: &Project) -> Result<SessionContext, Error> {
    let v = crate::views::view(p).await?;
    let attempts = p.store.all_attempts().await?;
    Ok(fit(&v, &attempts))
}

/// The document with as many items per list as fit in [`BUDGET`] in both forms.
pub fn fit(v: &ProjectView, attempts: &[AttemptRecord]) -> SessionContext {
    let mut n = ITEMS;
    loop {
        let ctx = build(v, attempts, n);
        // Measured as printed with indentation, the larger of the JSON forms.
        let json = serde_json::to_string_pretty(&ctx).map_or(0, |s| s.len());
        if n == 0 || (json <= BUDGET && ctx.text().len() <= BUDGET) {
            return ctx;
        }
        n -= 1;
    }
}

/// The document with at most `n` items per list.
pub fn build(v: &ProjectView, attempts: &[AttemptRecord], n: usize) -> SessionContext {
    let session = v
        .sessions
        .iter()
        .rev()
        .find(|s| s.ended_at.is_none())
        .map(|s| SessionLine {
            id: s.id.to_string(),
            label: clip(&s.label, TITLE),
            started_at: s.started_at,
        });
    SessionContext {
        as_of: v.as_of,
        session,
        tasks: v.counts(),
        objectives: objectives(v, n),
        completed_tasks: tasks_in(v, Status::Completed, n),
        active_tasks: tasks_in(v, Status::Running, n),
        key_insights: {
            let mut all: Vec<_> = v.insights.iter().collect();
            all.sort_by_key(|i| std::cmp::Reverse((i.created_at, i.id.num)));
            let notes = all
                .into_iter()
                .map(|i| Note {
                    id: i.id.to_string(),
                    text: clip(&i.text, TEXT),
                    why: String::new(),
                    task: i.task.map(|t| t.to_string()),
                })
                .collect();
            Listed::of(notes, n)
        },
        decisions: decisions(&v.decisions, n),
        agents: agents(&roles(v), attempts),
        metrics: figures(&v.metrics, attempts),
    }
}

fn objectives(v: &ProjectView, n: usize) -> Listed<ObjectiveItem> {
    let mut all: Vec<_> = v
        .objectives
        .iter()
        .filter(|o| o.status != ObjectiveStatus::Dropped)
        .collect();
    // Active first, newest first within each.
    all.sort_by_key(|o| {
        (
            o.status != ObjectiveStatus::Active,
            std::cmp::Reverse(o.id.num),
        )
    });
    let items = all
        .into_iter()
        .map(|o| {
            let (done, total) = report::objective_progress(v, o).unwrap_or((0, 0));
            ObjectiveItem {
                id: o.id.to_string(),
                title: clip(&o.title, TITLE),
                status: o.status,
                tasks: o
                    .tasks
                    .iter()
                    .take(LINKED)
                    .map(ToString::to_string)
                    .collect(),
                linked: o.tasks.len(),
                done,
                total,
            }
        })
        .collect();
    Listed::of(items, n)
}

/// Leaf tasks in `status`, the latest first (finished, or started).
fn tasks_in(v: &ProjectView, status: Status, n: usize) -> Listed<TaskItem> {
    let when = |t: &downbeat_core::task::Task| match status {
        Status::Completed => t.finished_at,
        _ => t.started_at,
    };
    let mut all: Vec<_> = v
        .tasks
        .iter()
        .filter(|t| t.status == status && !v.rollup.get(&t.id).is_some_and(|p| p.is_container))
        .collect();
    all.sort_by_key(|t| std::cmp::Reverse((when(t), t.id)));
    let items = all
        .into_iter()
        .map(|t| TaskItem {
            id: t.id.to_string(),
            title: clip(&t.title, TITLE),
            role: t.role.clone(),
            outcome: (status == Status::Completed)
                .then(|| t.result.as_deref().map(|r| clip(r, TITLE)))
                .flatten()
                .filter(|r| !r.is_empty()),
            at: when(t),
        })
        .collect();
    Listed::of(items, n)
}

fn decision_note(d: &Decision) -> Note {
    Note {
        id: d.id.to_string(),
        text: clip(&d.text, TEXT),
        why: clip(&d.why, TITLE),
        task: d.task.map(|t| t.to_string()),
    }
}

fn decisions(all: &[Decision], n: usize) -> Decisions {
    let in_force = all
        .iter()
        .rev()
        .filter(|d| d.in_force())
        .map(decision_note)
        .collect();
    let pending = all
        .iter()
        .filter(|d| d.is_pending())
        .map(decision_note)
        .collect();
    Decisions {
        in_force: Listed::of(in_force, n),
        pending: Listed::of(pending, n),
        superseded: all
            .iter()
            .filter(|d| d.status == DecisionStatus::Accepted && d.superseded_by.is_some())
            .count(),
        rejected: all
            .iter()
            .filter(|d| d.status == DecisionStatus::Rejected)
            .count(),
    }
}

/// Counts by key, most first (ties by name), cut to [`KINDS`] with the rest as `other`.
fn breakdown<'a>(keys: impl Iterator<Item = &'a str>) -> Vec<(String, usize)> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for k in keys {
        *counts.entry(k).or_default() += 1;
    }
    let mut all: Vec<(String, usize)> = counts.into_iter().map(|(k, c)| (clip(k, 40), c)).collect();
    all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    if all.len() > KINDS {
        let other: usize = all.drain(KINDS - 1..).map(|(_, c)| c).sum();
        all.push(("other".into(), other));
    }
    all
}

/// Every task's role, `(none)` for a task without one.
fn roles(v: &ProjectView) -> HashMap<TaskId, &str> {
    v.tasks
        .iter()
        .map(|t| (t.id, t.role.as_deref().unwrap_or("(none)")))
        .collect()
}

/// The agents spawned, by role (`roles`; `(archived)` for a task not among them), executor and
/// outcome.
fn agents(roles: &HashMap<TaskId, &str>, attempts: &[AttemptRecord]) -> Agents {
    let tasks: HashSet<TaskId> = attempts.iter().map(|a| a.task).collect();
    Agents {
        spawned: attempts.len(),
        tasks: tasks.len(),
        by_role: breakdown(
            attempts
                .iter()
                .map(|a| roles.get(&a.task).copied().unwrap_or("(archived)")),
        ),
        by_executor: breakdown(attempts.iter().map(|a| a.executor.as_str())),
        by_outcome: breakdown(attempts.iter().map(|a| {
            a.outcome.as_deref().unwrap_or(if a.ended_at.is_none() {
                "running"
            } else {
                "ended"
            })
        })),
    }
}

fn figures(m: &Metrics, attempts: &[AttemptRecord]) -> Figures {
    let tasks = attempts
        .iter()
        .map(|a| a.task)
        .collect::<HashSet<_>>()
        .len();
    let per_task = |x: usize| (tasks > 0).then(|| x as f64 / tasks as f64);
    Figures {
        parallel_execution_rate: m.parallel_execution_rate,
        success_rate: m.success_rate,
        rework_rate: per_task(attempts.len() - tasks),
        agents_per_task: per_task(attempts.len()),
        tasks_completed: m.tasks_completed,
        tasks_failed: m.tasks_failed,
        sessions: m.sessions,
        decisions_made: m.decisions,
    }
}

fn pct(x: Option<f64>) -> String {
    x.map_or_else(|| "-".into(), |x| format!("{:.0}%", x * 100.0))
}

/// Ends a list: "and N more" when items were left out, "None." when there were none.
fn more(s: &mut String, total: usize, shown: usize) {
    if total == 0 {
        let _ = writeln!(s, "None.");
    } else if total > shown {
        let _ = writeln!(s, "- … and {} more", total - shown);
    }
}

fn kinds(list: &[(String, usize)]) -> String {
    if list.is_empty() {
        return "-".into();
    }
    list.iter()
        .map(|(k, c)| format!("{k} {c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn note_line(s: &mut String, n: &Note, tag: &str) {
    let why = if n.why.is_empty() {
        String::new()
    } else {
        format!(" — {}", n.why)
    };
    let task = n
        .task
        .as_ref()
        .map(|t| format!(" (task {t})"))
        .unwrap_or_default();
    let _ = writeln!(s, "- {} {}{tag}{why}{task}", n.id, n.text);
}

fn task_lines(s: &mut String, l: &Listed<TaskItem>) {
    for t in &l.items {
        let role = t
            .role
            .as_ref()
            .map(|r| format!(" [{r}]"))
            .unwrap_or_default();
        let outcome = t
            .outcome
            .as_ref()
            .map(|o| format!(" — {o}"))
            .unwrap_or_default();
        let _ = writeln!(s, "- {}{role} {}{outcome}", t.id, t.title);
    }
    more(s, l.total, l.items.len());
}

impl SessionContext {
    /// The document as text (Markdown-like lines).
    pub fn text(&self) -> String {
        let mut s = String::new();
        let as_of = self
            .as_of
            .map_or_else(|| "no activity yet".into(), |t| t.to_string());
        let _ = writeln!(s, "# Session context ({as_of})\n");
        match &self.session {
            Some(x) => {
                let _ = writeln!(
                    s,
                    "Session {} \"{}\" open since {}.",
                    x.id, x.label, x.started_at
                );
            }
            None => {
                let _ = writeln!(s, "No open session.");
            }
        }
        let c = &self.tasks;
        let _ = writeln!(
            s,
            "Tasks: {} — {} completed, {} running, {} pending ({} ready, {} waiting, {} stuck), {} failed, {} blocked.",
            c.total,
            c.completed,
            c.running,
            c.pending,
            c.ready,
            c.waiting,
            c.stuck,
            c.failed,
            c.blocked
        );
        self.objectives_text(&mut s);
        let _ = writeln!(s, "\n## Active tasks ({})\n", self.active_tasks.total);
        task_lines(&mut s, &self.active_tasks);
        let _ = writeln!(
            s,
            "\n## Completed tasks ({}, latest first)\n",
            self.completed_tasks.total
        );
        task_lines(&mut s, &self.completed_tasks);
        let _ = writeln!(s, "\n## Key insights ({})\n", self.key_insights.total);
        for i in &self.key_insights.items {
            note_line(&mut s, i, "");
        }
        more(
            &mut s,
            self.key_insights.total,
            self.key_insights.items.len(),
        );
        self.decisions_text(&mut s);
        let a = &self.agents;
        let _ = writeln!(
            s,
            "\n## Agents spawned: {} on {} task(s)\n\n- by role: {}\n- by executor: {}\n- by outcome: {}",
            a.spawned,
            a.tasks,
            kinds(&a.by_role),
            kinds(&a.by_executor),
            kinds(&a.by_outcome)
        );
        let m = &self.metrics;
        let _ = writeln!(
            s,
            "\n## Metrics\n\n- parallel execution rate: {}\n- success rate: {}\n- rework rate: {}\n- agents per task: {}\n- tasks completed: {}, failed: {}; sessions: {}; decisions made: {}",
            pct(m.parallel_execution_rate),
            pct(m.success_rate),
            pct(m.rework_rate),
            m.agents_per_task
                .map_or_else(|| "-".into(), |x| format!("{x:.2}")),
            m.tasks_completed,
            m.tasks_failed,
            m.sessions,
            m.decisions_made
        );
        s
    }

    fn objectives_text(&self, s: &mut String) {
        let _ = writeln!(s, "\n## Objectives ({})\n", self.objectives.total);
        for o in &self.objectives.items {
            let mut linked = o.tasks.join(", ");
            if o.linked > o.tasks.len() {
                let _ = write!(linked, " and {} more", o.linked - o.tasks.len());
            }
            let tasks = if o.linked == 0 {
                "no tasks linked".to_string()
            } else {
                format!("{}/{} done; tasks {linked}", o.done, o.total)
            };
            let _ = writeln!(s, "- {} [{}] {} — {tasks}", o.id, o.status, o.title);
        }
        more(s, self.objectives.total, self.objectives.items.len());
    }

    fn decisions_text(&self, s: &mut String) {
        let d = &self.decisions;
        let _ = writeln!(
            s,
            "\n## Decisions ({} in force, {} pending, {} superseded, {} rejected)\n",
            d.in_force.total, d.pending.total, d.superseded, d.rejected
        );
        for n in &d.in_force.items {
            note_line(s, n, "");
        }
        more(s, d.in_force.total, d.in_force.items.len());
        if d.pending.total > 0 {
            let _ = writeln!(s, "\nPending (proposed, not in force):\n");
            for n in &d.pending.items {
                note_line(s, n, " (pending)");
            }
            more(s, d.pending.total, d.pending.items.len());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use downbeat_core::ids::{AttemptId, LeaseEpoch};

    fn id(seq: u32) -> TaskId {
        TaskId::from_seq(seq).unwrap()
    }

    fn attempt(task: u32, number: u32, executor: &str, outcome: Option<&str>) -> AttemptRecord {
        AttemptRecord {
            id: AttemptId(i64::from(number) + 10 * i64::from(task)),
            task: id(task),
            number,
            epoch: LeaseEpoch(i64::from(number)),
            worker: "runner".into(),
            executor: executor.into(),
            started_at: Timestamp(0),
            ended_at: outcome.map(|_| Timestamp(1)),
            outcome: outcome.map(str::to_owned),
            exit_code: None,
            error: None,
            summary: None,
            tokens_prompt: None,
            tokens_completion: None,
            detail: Default::default(),
        }
    }

    /// Four tasks attempted six times: two attempts beyond the first, 1.5 agents per task.
    #[test]
    fn agents_and_rates_come_from_the_ledger() {
        let ledger = [
            attempt(1, 1, "claude", Some("failed")),
            attempt(1, 2, "claude", Some("succeeded")),
            attempt(2, 1, "claude", Some("succeeded")),
            attempt(3, 1, "shell", Some("lost")),
            attempt(3, 2, "shell", None),
            attempt(4, 1, "codex", Some("succeeded")),
        ];
        let roles: HashMap<TaskId, &str> = [
            (id(1), "implementer"),
            (id(2), "implementer"),
            (id(3), "tester"),
        ]
        .into();
        let a = agents(&roles, &ledger);
        assert_eq!((a.spawned, a.tasks), (6, 4));
        let pairs = |v: &[(String, usize)]| -> Vec<(String, usize)> { v.to_vec() };
        assert_eq!(
            pairs(&a.by_role),
            [
                ("implementer".to_string(), 3),
                ("tester".into(), 2),
                ("(archived)".into(), 1)
            ]
        );
        assert_eq!(
            pairs(&a.by_executor),
            [
                ("claude".to_string(), 3),
                ("shell".into(), 2),
                ("codex".into(), 1)
            ]
        );
        assert_eq!(
            pairs(&a.by_outcome),
            [
                ("succeeded".to_string(), 3),
                ("failed".into(), 1),
                ("lost".into(), 1),
                ("running".into(), 1)
            ]
        );
        let f = figures(&Metrics::default(), &ledger);
        assert_eq!(f.rework_rate, Some(0.5));
        assert_eq!(f.agents_per_task, Some(1.5));
        let none = figures(&Metrics::default(), &[]);
        assert_eq!((none.rework_rate, none.agents_per_task), (None, None));
    }

    #[test]
    fn breakdowns_keep_six_entries_and_sum_the_rest() {
        let keys: Vec<String> = (0..9).map(|i| format!("e{i}")).collect();
        let b = breakdown(keys.iter().map(String::as_str).chain(["e0", "e0"]));
        assert_eq!(b.len(), KINDS);
        assert_eq!(b[0], ("e0".to_string(), 3));
        assert_eq!(b[KINDS - 1], ("other".to_string(), 4));
    }
}
