//! Small pieces of rendering and parsing shared by the command files.

use downbeat_core::ids::TaskId;
use downbeat_core::task::Task;
use serde_json::{Value, json};

pub(crate) fn task_json(t: &Task, shown: &str) -> Value {
    let mut v = serde_json::to_value(t).unwrap_or(Value::Null);
    v["state"] = json!(shown);
    v
}

pub(crate) fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        let mut c: String = s.chars().take(n - 1).collect();
        c.push('…');
        c
    }
}

pub(crate) fn ids_json(v: &[TaskId]) -> Vec<String> {
    v.iter().map(ToString::to_string).collect()
}
