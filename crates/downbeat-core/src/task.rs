//! Tasks, their status state machine, priorities and dependency edges.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ids::{LeaseEpoch, TaskId};
use crate::time::Timestamp;

/// The stored status of a task. `ready` is not stored: it is derived (a `pending` task whose
/// blocking dependencies are all satisfied), so no write is needed when a dependency finishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pending,
    Running,
    Completed,
    Failed,
    /// Held by hand (waiting on something outside the graph).
    Blocked,
    Cancelled,
    /// Deliberately not done; satisfies dependents like `completed`.
    Skipped,
}

impl Status {
    pub const ALL: [Status; 7] = [
        Status::Pending,
        Status::Running,
        Status::Completed,
        Status::Failed,
        Status::Blocked,
        Status::Cancelled,
        Status::Skipped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Blocked => "blocked",
            Self::Cancelled => "cancelled",
            Self::Skipped => "skipped",
        }
    }

    /// Whether dependents may start once this task is in this status.
    pub fn satisfies_dependents(self) -> bool {
        matches!(self, Self::Completed | Self::Skipped)
    }

    /// Whether the task has reached an end (it will not run again unless reopened).
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Skipped | Self::Cancelled)
    }

    /// The statuses a task may move to from this one.
    pub fn allowed_next(self) -> &'static [Status] {
        use Status::*;
        match self {
            Pending => &[Running, Completed, Blocked, Cancelled, Skipped],
            Running => &[Completed, Failed, Pending, Blocked, Cancelled],
            Failed => &[Pending, Cancelled, Skipped],
            Blocked => &[Pending, Cancelled, Skipped],
            Completed | Cancelled | Skipped => &[Pending],
        }
    }

    /// Checks a transition; the error names what is allowed instead.
    pub fn check_transition(self, to: Status) -> Result<(), TransitionError> {
        if self.allowed_next().contains(&to) {
            Ok(())
        } else {
            Err(TransitionError { from: self, to })
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = ParseEnumError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| ParseEnumError::new("status", s, &Self::ALL.map(Status::as_str)))
    }
}

/// An illegal status change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot move a {from} task to {to}; from {from} it may become: {}", list(self.from.allowed_next()))]
pub struct TransitionError {
    pub from: Status,
    pub to: Status,
}

fn list(s: &[Status]) -> String {
    s.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
}

/// A value that is not one of an enum's names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{got}` (expected one of: {})", expected.join(", "))]
pub struct ParseEnumError {
    pub what: &'static str,
    pub got: String,
    pub expected: Vec<&'static str>,
}

impl ParseEnumError {
    pub fn new(what: &'static str, got: &str, expected: &[&'static str]) -> Self {
        Self {
            what,
            got: got.to_owned(),
            expected: expected.to_vec(),
        }
    }
}

/// How urgent a task is. Stored as 0..=3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    Low,
    #[default]
    Normal,
    High,
    Critical,
}

impl Priority {
    pub const ALL: [Priority; 4] = [
        Priority::Low,
        Priority::Normal,
        Priority::High,
        Priority::Critical,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Normal => "normal",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }
    pub fn rank(self) -> i32 {
        self as i32
    }
    pub fn from_rank(r: i64) -> Self {
        match r {
            i64::MIN..=0 => Self::Low,
            1 => Self::Normal,
            2 => Self::High,
            _ => Self::Critical,
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Priority {
    type Err = ParseEnumError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| ParseEnumError::new("priority", s, &Self::ALL.map(Priority::as_str)))
    }
}

/// The type of a dependency edge. Only `blocks` orders work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EdgeKind {
    /// `from` must be satisfied before `to` may start.
    Blocks,
    /// Informational link.
    Related,
    /// `to` was discovered while working on `from`.
    DiscoveredFrom,
}

impl EdgeKind {
    pub const ALL: [EdgeKind; 3] = [
        EdgeKind::Blocks,
        EdgeKind::Related,
        EdgeKind::DiscoveredFrom,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Blocks => "blocks",
            Self::Related => "related",
            Self::DiscoveredFrom => "discovered-from",
        }
    }
    pub fn orders_work(self) -> bool {
        self == Self::Blocks
    }
}

impl fmt::Display for EdgeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EdgeKind {
    type Err = ParseEnumError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| ParseEnumError::new("edge kind", s, &Self::ALL.map(EdgeKind::as_str)))
    }
}

/// A dependency: `from` relates to `to` (for `blocks`: `to` waits for `from`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Edge {
    pub from: TaskId,
    pub to: TaskId,
    pub kind: EdgeKind,
}

/// A task as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Task {
    pub id: TaskId,
    /// Optional stable name from a plan file (`schema`, `rate-limit-tests`); unique.
    pub key: Option<String>,
    pub parent: Option<TaskId>,
    pub title: String,
    pub description: String,
    pub role: Option<String>,
    pub status: Status,
    pub priority: Priority,
    /// Effort estimate in abstract units (the planner's durations).
    pub effort: u32,
    pub acceptance: Vec<String>,
    pub tags: Vec<String>,
    /// Paths or globs this task declares it will touch.
    pub footprint: Vec<String>,
    /// Result summary, or the reason for a failure/hold.
    pub result: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    pub archived: bool,
    pub exec: ExecSettings,
    /// Attempts started so far.
    pub attempts: u32,
    /// A retry waits until then.
    pub not_before: Option<Timestamp>,
    /// Who holds the task while it runs, and until when.
    pub lease_holder: Option<String>,
    pub lease_expires: Option<Timestamp>,
    /// Fencing token: grows by one with every claim.
    pub lease_epoch: LeaseEpoch,
}

/// How a task is to be executed; unset fields fall back to the role's and the project's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ExecSettings {
    /// A named executor from the configuration, or an inline JSON spec.
    pub executor: Option<String>,
    /// Per attempt; shown as `timeout_ms`.
    #[serde(rename = "timeout_ms", serialize_with = "crate::time::millis::option")]
    pub timeout: Option<Duration>,
    /// Attempts allowed in all (1 = no retry).
    pub max_attempts: Option<u32>,
}

impl ExecSettings {
    /// The timeout in whole milliseconds, as stored.
    pub fn timeout_millis(&self) -> Option<i64> {
        self.timeout.map(|d| crate::time::Millis::of(d).0)
    }
}

/// Fields of a task to be created.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewTask {
    pub exec: ExecSettings,
    pub key: Option<String>,
    pub parent: Option<TaskId>,
    pub title: String,
    pub description: String,
    pub role: Option<String>,
    pub priority: Priority,
    pub effort: u32,
    pub acceptance: Vec<String>,
    pub tags: Vec<String>,
    pub footprint: Vec<String>,
}

/// A change to a task's descriptive fields (status changes go through the state machine).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskPatch {
    pub title: Option<String>,
    pub description: Option<String>,
    /// `Some(None)` clears the role.
    pub role: Option<Option<String>>,
    pub priority: Option<Priority>,
    pub effort: Option<u32>,
    pub acceptance: Option<Vec<String>>,
    pub tags: Option<Vec<String>>,
    pub footprint: Option<Vec<String>>,
    /// `Some(None)` detaches from the parent.
    pub parent: Option<Option<TaskId>>,
    /// Replaces the execution settings.
    pub exec: Option<ExecSettings>,
}

impl TaskPatch {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Checks the fields every task must satisfy, wherever it comes from.
pub fn validate_fields(title: &str, key: Option<&str>) -> Result<(), String> {
    if title.trim().is_empty() {
        return Err("a task needs a non-empty title".into());
    }
    if title.chars().count() > 500 {
        return Err("a task title may be at most 500 characters".into());
    }
    if let Some(k) = key
        && (k.is_empty()
            || k.len() > 64
            || !k
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(format!(
            "task key `{k}` must be 1-64 characters of letters, digits, `-`, `_` or `.`"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn illegal_transition_names_the_allowed_ones() {
        let err = Status::Completed
            .check_transition(Status::Running)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot move a completed task to running; from completed it may become: pending"
        );
    }

    #[test]
    fn every_status_can_be_reopened_or_finished() {
        for s in Status::ALL {
            assert!(!s.allowed_next().contains(&s), "{s} loops onto itself");
            let reach_pending = s == Status::Pending || s.check_transition(Status::Pending).is_ok();
            assert!(reach_pending, "{s} cannot be reopened");
        }
    }

    #[test]
    fn enums_parse_their_names() {
        for s in Status::ALL {
            assert_eq!(s.as_str().parse::<Status>().unwrap(), s);
        }
        assert_eq!(
            "discovered-from".parse::<EdgeKind>().unwrap(),
            EdgeKind::DiscoveredFrom
        );
        let err = "urgent".parse::<Priority>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown priority `urgent` (expected one of: low, normal, high, critical)"
        );
        assert_eq!(
            Priority::from_rank(Priority::High.rank() as i64),
            Priority::High
        );
    }

    #[test]
    fn keys_are_checked() {
        assert!(validate_fields("x", Some("schema-v2")).is_ok());
        assert!(validate_fields(" ", None).is_err());
        assert!(validate_fields("x", Some("has space")).is_err());
    }
}
