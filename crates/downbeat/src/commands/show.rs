//! `downbeat show`: one task with its edges, children and history.

use std::fmt::Write as _;

use downbeat_app::error::Error;
use downbeat_app::project::Project;
use downbeat_app::tasks::shown_status;
use downbeat_app::views::view;
use downbeat_core::context::FlagRecord;
use downbeat_core::ids::TaskId;
use downbeat_core::report::{self, ProjectView};
use downbeat_core::task::{Edge, Task};
use serde_json::{Value, json};

use super::render::{clip, ids_json, task_json};
use crate::output::{json as print_json, out};

pub(super) async fn show(p: &Project, q: &str, j: bool) -> Result<(), Error> {
    let downbeat_app::views::Detail {
        task: t,
        edges,
        events,
        git,
    } = downbeat_app::views::detail(p, q, 10).await?;
    let id = t.id;
    let v = view(p).await?;
    let ready = downbeat_app::tasks::Pending::of(&v.planned);
    let shown = shown_status(&t, &v.rollup, &ready);
    let children: Vec<&Task> = v.tasks.iter().filter(|c| c.parent == Some(id)).collect();
    let blockers: Vec<TaskId> = v
        .planned
        .waiting
        .iter()
        .chain(&v.planned.stuck)
        .find(|(w, _)| *w == id)
        .map(|(_, b)| b.clone())
        .unwrap_or_default();
    let raised: Vec<_> = v.flags.iter().filter(|f| f.task == id).collect();
    let follows: Vec<_> = v.flags.iter().filter(|f| f.follow_up == Some(id)).collect();
    let title_of = |x: TaskId| {
        v.task(x)
            .map(|t| t.title.clone())
            .unwrap_or_else(|| "(archived)".into())
    };
    if j {
        let mut o = task_json(&t, &shown);
        o["edges"] = serde_json::to_value(&edges).unwrap_or(Value::Null);
        o["children"] = json!(
            children
                .iter()
                .map(|c| c.id.to_string())
                .collect::<Vec<_>>()
        );
        o["waits_on"] = json!(ids_json(&blockers));
        o["progress"] = serde_json::to_value(v.rollup.get(&id)).unwrap_or(Value::Null);
        o["events"] = serde_json::to_value(&events).unwrap_or(Value::Null);
        if let Some(g) = &git {
            o["git"] = serde_json::to_value(g).unwrap_or(Value::Null);
        }
        o["flags"] = json!(raised);
        o["follows_up"] = json!(follows);
        print_json(&o);
        return Ok(());
    }
    let mut s = String::new();
    let _ = writeln!(s, "{} {}", t.id, t.title);
    let mut field = |k: &str, v: String| {
        if !v.is_empty() {
            let _ = writeln!(s, "  {k:<12} {v}");
        }
    };
    field("status", shown);
    field("key", t.key.clone().unwrap_or_default());
    field("role", t.role.clone().unwrap_or_default());
    field("priority", t.priority.to_string());
    field("effort", t.effort.to_string());
    field(
        "parent",
        t.parent
            .map(|x| format!("{x} {}", title_of(x)))
            .unwrap_or_default(),
    );
    if let Some(pr) = v.rollup.get(&id).filter(|pr| pr.is_container) {
        field(
            "progress",
            report::progress_bar(u64::from(pr.done), u64::from(pr.total), 10),
        );
    }
    field("tags", t.tags.join(", "));
    field("files", t.footprint.join(", "));
    field("created", t.created_at.to_string());
    field(
        "started",
        t.started_at.map(|x| x.to_string()).unwrap_or_default(),
    );
    field(
        "finished",
        t.finished_at.map(|x| x.to_string()).unwrap_or_default(),
    );
    field("result", t.result.clone().unwrap_or_default());
    if let Some(g) = &git {
        field("work", work_line(g));
    }
    if !t.description.is_empty() {
        let _ = writeln!(s, "\n{}", t.description.trim_end());
    }
    if !t.acceptance.is_empty() {
        let _ = writeln!(s, "\nacceptance:");
        for a in &t.acceptance {
            let _ = writeln!(s, "  - {a}");
        }
    }
    let deps: Vec<&Edge> = edges.iter().filter(|e| e.to == id).collect();
    let dependents: Vec<&Edge> = edges.iter().filter(|e| e.from == id).collect();
    if !deps.is_empty() {
        let _ = writeln!(s, "\ndepends on:");
        for e in deps {
            let mark = if blockers.contains(&e.from) {
                " (not done)"
            } else {
                ""
            };
            let _ = writeln!(s, "  {} {} [{}]{mark}", e.from, title_of(e.from), e.kind);
        }
    }
    if !dependents.is_empty() {
        let _ = writeln!(s, "\ndependents:");
        for e in dependents {
            let _ = writeln!(s, "  {} {} [{}]", e.to, title_of(e.to), e.kind);
        }
    }
    if !children.is_empty() {
        let _ = writeln!(s, "\nchildren:");
        for c in children {
            let _ = writeln!(
                s,
                "  {} {} [{}]",
                c.id,
                c.title,
                shown_status(c, &v.rollup, &ready)
            );
        }
    }
    flag_sections(&mut s, &v, &raised, &follows);
    if !events.is_empty() {
        let _ = writeln!(s, "\nhistory:");
        for e in &events {
            let _ = writeln!(
                s,
                "  {} {} {}{}",
                e.at,
                e.actor,
                e.action,
                change_summary(&e.before, &e.after)
            );
        }
    }
    out(&s);
    Ok(())
}

/// The flags a task raised, and those it is the follow-up of.
fn flag_sections(s: &mut String, v: &ProjectView, raised: &[&FlagRecord], follows: &[&FlagRecord]) {
    if !raised.is_empty() {
        let _ = writeln!(s, "\nflags raised:");
        for f in raised {
            let _ = writeln!(s, "  {} {} — {}", f.id, f.flag, report::flag_state(v, f));
            if !f.detail.is_empty() {
                let _ = writeln!(s, "    {}", clip(&f.detail, 200));
            }
        }
    }
    if !follows.is_empty() {
        let _ = writeln!(s, "\nfollows up:");
        for f in follows {
            let by = v
                .task(f.task)
                .map(|t| t.title.as_str())
                .unwrap_or("(archived)");
            let _ = writeln!(
                s,
                "  {} {} raised by {} {by} [{}]",
                f.id, f.flag, f.task, f.state
            );
        }
    }
}

pub(super) fn change_summary(before: &Option<Value>, after: &Option<Value>) -> String {
    match (before, after) {
        (Some(b), Some(a)) if b.get("status").is_some() && a.get("status").is_some() => {
            let res = a
                .get("result")
                .and_then(Value::as_str)
                .map(|r| format!(" — {}", clip(r, 60)))
                .unwrap_or_default();
            format!(
                ": {} → {}{res}",
                b["status"].as_str().unwrap_or("?"),
                a["status"].as_str().unwrap_or("?")
            )
        }
        (_, Some(a)) => match readable(a) {
            r if r.is_empty() => String::new(),
            r => format!(" {}", clip(&r, 100)),
        },
        (Some(b), None) => format!(" (was {})", clip(&readable(b), 100)),
        (None, None) => String::new(),
    }
}

/// The fields of an event's state people read first, then the other short ones, as
/// `key: value` (a title or text as it is, quoted); lists, objects and empty values left out.
fn readable(v: &Value) -> String {
    const FIRST: [&str; 7] = [
        "title", "text", "flag", "detail", "reason", "result", "role",
    ];
    let Some(map) = v.as_object() else {
        return v.to_string();
    };
    let scalar = |x: &Value| match x {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) if n.as_f64() != Some(0.0) => Some(n.to_string()),
        Value::Bool(true) => Some("yes".into()),
        _ => None,
    };
    let mut parts: Vec<String> = Vec::new();
    for k in FIRST {
        if let Some(x) = map.get(k).and_then(scalar) {
            parts.push(if matches!(k, "title" | "text") {
                format!("“{x}”")
            } else {
                format!("{k}: {x}")
            });
        }
    }
    for (k, x) in map {
        const NOISE: [&str; 5] = ["id", "record", "lease_epoch", "attempts", "archived"];
        if FIRST.contains(&k.as_str()) || k.ends_with("_at") || NOISE.contains(&k.as_str()) {
            continue;
        }
        if let Some(x) = scalar(x).filter(|x| x.len() <= 40) {
            parts.push(format!("{k}: {x}"));
        }
    }
    parts.join(", ")
}

/// A task's git work in one line: state, branch, diff size, merge commit, conflicts.
fn work_line(g: &downbeat_core::attempt::GitWork) -> String {
    let merge = g
        .merge
        .as_deref()
        .map(|c| format!(" as {}", &c[..c.len().min(10)]))
        .unwrap_or_default();
    let conflicts = if g.conflicts.is_empty() {
        String::new()
    } else {
        format!(" (conflicts: {})", g.conflicts.join(", "))
    };
    format!(
        "{} on {}: {} file(s), +{} -{}{merge}{conflicts}",
        g.state.name(),
        g.branch,
        g.files,
        g.insertions,
        g.deletions
    )
}
