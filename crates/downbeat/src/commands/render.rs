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

/// A plan's preview for people: its waves, critical path and makespan estimates.
pub(crate) fn preview_text(pv: &downbeat_app::plan_preview::Preview) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    for (i, w) in pv.waves.iter().enumerate() {
        let _ = writeln!(s, "wave {}: {}", i + 1, w.join(", "));
    }
    let _ = writeln!(
        s,
        "critical path: {} ({} effort unit(s))",
        pv.critical_path.join(" → "),
        pv.critical_path_effort
    );
    let spans: Vec<String> = pv
        .makespans
        .iter()
        .map(|(k, m)| format!("{k} worker(s): {m}"))
        .collect();
    let _ = writeln!(
        s,
        "makespan: sequential {}{}{}",
        pv.total_effort,
        if spans.is_empty() { "" } else { "; " },
        spans.join(", ")
    );
    s
}

/// A plan's preview as JSON.
pub(crate) fn preview_json(pv: &downbeat_app::plan_preview::Preview) -> Value {
    json!({
        "waves": pv.waves,
        "critical_path": pv.critical_path,
        "critical_path_effort": pv.critical_path_effort,
        "total_effort": pv.total_effort,
        "makespans": pv.makespans.iter().map(|(k, m)| json!({"workers": k, "makespan": m})).collect::<Vec<_>>(),
    })
}
