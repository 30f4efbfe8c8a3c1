//! The shapes answers share: compact task lines, id lists, and the errors for unknown actions
//! and missing arguments.

use downbeat_core::graph;
use downbeat_core::ids::TaskId;
use downbeat_core::task::{Priority, Task};
use serde_json::{Map, Value, json};

use downbeat_app::error::Error;

pub type Out = Result<Value, Error>;

pub(crate) fn ids(v: &[TaskId]) -> Vec<String> {
    v.iter().map(ToString::to_string).collect()
}

/// What a task list shows of a task, from a full row or from the planner's snapshot.
pub(crate) struct Line<'a> {
    id: TaskId,
    key: Option<&'a str>,
    title: &'a str,
    role: Option<&'a str>,
    priority: Priority,
    effort: u32,
    parent: Option<TaskId>,
}

impl<'a> From<&'a Task> for Line<'a> {
    fn from(t: &'a Task) -> Self {
        Self {
            id: t.id,
            key: t.key.as_deref(),
            title: &t.title,
            role: t.role.as_deref(),
            priority: t.priority,
            effort: t.effort,
            parent: t.parent,
        }
    }
}

impl<'a> From<&'a graph::GraphTask> for Line<'a> {
    fn from(t: &'a graph::GraphTask) -> Self {
        Self {
            id: t.id,
            key: t.key.as_deref(),
            title: &t.title,
            role: t.role.as_deref(),
            priority: t.priority,
            effort: t.effort,
            parent: t.parent,
        }
    }
}

/// A task in a list: what tells tasks apart, defaults left out.
pub(crate) fn task_line(t: Line<'_>, state: &str) -> Value {
    let mut o = Map::new();
    o.insert("id".into(), json!(t.id));
    if let Some(k) = t.key {
        o.insert("key".into(), json!(k));
    }
    o.insert("title".into(), json!(t.title));
    if let Some(r) = t.role {
        o.insert("role".into(), json!(r));
    }
    o.insert("state".into(), json!(state));
    if t.priority != Priority::default() {
        o.insert("priority".into(), json!(t.priority));
    }
    if t.effort != 1 {
        o.insert("effort".into(), json!(t.effort));
    }
    if let Some(pa) = t.parent {
        o.insert("parent".into(), json!(pa));
    }
    Value::Object(o)
}

// ------------------------------------------------------------------------------------------
// session

pub fn unknown_action(got: &str, known: &[&str]) -> Error {
    Error::invalid(format!(
        "unknown action `{got}` (expected one of: {})",
        known.join(", ")
    ))
}

// ------------------------------------------------------------------------------------------
// plan

// ------------------------------------------------------------------------------------------
// tasks

// ------------------------------------------------------------------------------------------
// claims and their ends

// ------------------------------------------------------------------------------------------
// context: objectives, insights, decisions

pub(crate) fn required<'a>(v: Option<&'a str>, what: &str) -> Result<&'a str, Error> {
    v.filter(|s| !s.trim().is_empty())
        .ok_or_else(|| Error::invalid(format!("`{what}` is required")))
}

// ------------------------------------------------------------------------------------------
// reports

pub use downbeat_app::claims::sanitize;
