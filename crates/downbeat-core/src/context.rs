//! Session context: the orchestrator's long-term memory (sessions, objectives, insights,
//! decisions) and the event log every change appends to.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::ids::{RecordId, TaskId};
use crate::task::ParseEnumError;
use crate::time::Timestamp;

/// A working session of a conductor (a person or an LLM client).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Session {
    pub id: RecordId,
    pub label: String,
    pub actor: String,
    pub started_at: Timestamp,
    pub ended_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectiveStatus {
    Active,
    Achieved,
    Dropped,
}

impl ObjectiveStatus {
    pub const ALL: [ObjectiveStatus; 3] = [Self::Active, Self::Achieved, Self::Dropped];
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Achieved => "achieved",
            Self::Dropped => "dropped",
        }
    }
}

impl fmt::Display for ObjectiveStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ObjectiveStatus {
    type Err = ParseEnumError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|o| o.as_str() == s)
            .ok_or_else(|| ParseEnumError::new("objective status", s, &Self::ALL.map(Self::as_str)))
    }
}

/// A goal of the work, optionally tied to the tasks that achieve it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Objective {
    pub id: RecordId,
    pub title: String,
    pub status: ObjectiveStatus,
    pub tasks: Vec<TaskId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// Something learned that later work should know.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Insight {
    pub id: RecordId,
    pub text: String,
    pub task: Option<TaskId>,
    pub created_at: Timestamp,
}

/// A flag an agent raised, where it stands and what handled it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlagRecord {
    /// `f3`.
    pub id: RecordId,
    /// The task that raised it.
    pub task: TaskId,
    pub flag: String,
    /// What the agent said about it.
    pub detail: String,
    pub state: crate::flags::FlagState,
    /// What the rules did, why nothing happened, or what handled it.
    pub note: String,
    /// The follow-up task its rule added: completing it handles the flag.
    pub follow_up: Option<TaskId>,
    pub raised_at: Timestamp,
    pub handled_at: Option<Timestamp>,
}

/// Where a decision stands: proposed (pending), accepted (in force unless superseded) or
/// rejected. A decision recorded with `decision add` is accepted at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DecisionStatus {
    Proposed,
    Accepted,
    Rejected,
}

impl DecisionStatus {
    pub const ALL: [DecisionStatus; 3] = [Self::Proposed, Self::Accepted, Self::Rejected];
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Proposed => "proposed",
            Self::Accepted => "accepted",
            Self::Rejected => "rejected",
        }
    }
}

impl fmt::Display for DecisionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DecisionStatus {
    type Err = ParseEnumError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|o| o.as_str() == s)
            .ok_or_else(|| ParseEnumError::new("decision status", s, &Self::ALL.map(Self::as_str)))
    }
}

/// A choice made, with its rationale; a later decision may supersede it. A proposed decision
/// waits to be accepted or rejected and is not in force until accepted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub id: RecordId,
    pub text: String,
    pub why: String,
    pub task: Option<TaskId>,
    pub supersedes: Option<RecordId>,
    /// Set when a later decision supersedes this one.
    pub superseded_by: Option<RecordId>,
    pub created_at: Timestamp,
    pub status: DecisionStatus,
    /// When a proposal was accepted or rejected.
    pub decided_at: Option<Timestamp>,
    /// The reason given when it was accepted or rejected (empty when none was).
    pub decided_why: String,
}

impl Decision {
    /// Accepted and not superseded: what agents and documents follow.
    pub fn in_force(&self) -> bool {
        self.status == DecisionStatus::Accepted && self.superseded_by.is_none()
    }

    /// Proposed, waiting to be accepted or rejected.
    pub fn is_pending(&self) -> bool {
        self.status == DecisionStatus::Proposed
    }
}

/// One entry of the append-only event log: who changed what, when, from what to what.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    pub seq: i64,
    pub at: Timestamp,
    pub actor: String,
    pub session: Option<RecordId>,
    /// What happened, e.g. `task.created`, `task.status`, `edge.added`, `decision.added`.
    pub action: String,
    /// The entity it happened to: a task id, `o3`, `d2`, …
    pub entity: String,
    /// JSON of the state before (absent for creations).
    pub before: Option<serde_json::Value>,
    /// JSON of the state after (absent for removals).
    pub after: Option<serde_json::Value>,
}

/// A file a task produced, recorded by path (relative to the project root).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Artifact {
    pub task: TaskId,
    pub path: String,
    pub size: Option<i64>,
    pub sha256: Option<String>,
    pub created_at: Timestamp,
}

/// Who performs a change and when; every mutating store call takes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub name: String,
    pub now: Timestamp,
    pub session: Option<RecordId>,
}

impl Actor {
    pub fn new(name: impl Into<String>, now: Timestamp) -> Self {
        Self {
            name: name.into(),
            now,
            session: None,
        }
    }
}

/// Figures derived from the event log.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Metrics {
    pub tasks_completed: u64,
    pub tasks_failed: u64,
    /// completed / (completed + failed), 0..=1; `None` before anything finished.
    pub success_rate: Option<f64>,
    /// Share of finished runs (running → completed/failed) that overlapped another run.
    pub parallel_execution_rate: Option<f64>,
    pub sessions: u64,
    pub decisions: u64,
    pub insights: u64,
    pub events: u64,
}

/// One task run interval reconstructed from the log, for [`Metrics`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunInterval {
    pub start: Timestamp,
    pub end: Timestamp,
}

/// Share of intervals that overlap at least one other interval.
pub fn parallel_rate(intervals: &[RunInterval]) -> Option<f64> {
    if intervals.is_empty() {
        return None;
    }
    let mut v: Vec<(i64, i64, usize)> = intervals
        .iter()
        .enumerate()
        .map(|(i, r)| (r.start.0, r.end.0, i))
        .collect();
    v.sort_unstable();
    let mut overlapped = vec![false; v.len()];
    // Sweep: track the interval with the furthest end seen so far.
    let mut best: Option<(i64, usize)> = None;
    for (pos, &(s, e, _)) in v.iter().enumerate() {
        if let Some((end, at)) = best
            && s < end
        {
            overlapped[pos] = true;
            overlapped[at] = true;
        }
        if best.is_none_or(|(end, _)| e > end) {
            best = Some((e, pos));
        }
    }
    let n = overlapped.iter().filter(|&&o| o).count();
    Some(n as f64 / v.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iv(s: i64, e: i64) -> RunInterval {
        RunInterval {
            start: Timestamp(s),
            end: Timestamp(e),
        }
    }

    #[test]
    fn parallel_rate_counts_overlaps() {
        assert_eq!(parallel_rate(&[]), None);
        assert_eq!(parallel_rate(&[iv(0, 10), iv(10, 20)]), Some(0.0));
        assert_eq!(
            parallel_rate(&[iv(0, 10), iv(5, 20), iv(30, 40)]),
            Some(2.0 / 3.0)
        );
        // A long interval overlapping two short ones that do not overlap each other.
        assert_eq!(
            parallel_rate(&[iv(0, 100), iv(10, 20), iv(30, 40)]),
            Some(1.0)
        );
    }
}
