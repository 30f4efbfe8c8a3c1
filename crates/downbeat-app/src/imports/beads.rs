//! beads' `issues.jsonl` (bd; the fields of `internal/types/types.go` in
//! github.com/steveyegge/beads, the version with the `deferred`, `pinned` and `hooked`
//! statuses): one issue per line, its dependencies with it (`issue_id` depends on
//! `depends_on_id`; `parent-child` points from the child to its parent). Issues keep their
//! ids as keys.

use std::collections::{BTreeMap, HashSet};

use downbeat_core::plan::{PlanHeader, PlanTask};
use downbeat_core::task::Status;
use serde_json::{Map, Value};

use super::mapped::{Mapped, key, task, title};

/// Fields carried over.
const MAPPED: &[&str] = &[
    "id",
    "title",
    "description",
    "design",
    "acceptance_criteria",
    "notes",
    "status",
    "priority",
    "issue_type",
    "estimated_minutes",
    "labels",
    "dependencies",
];

/// Fields of the format Downbeat does not keep.
const SKIPPED: &[&str] = &[
    "assignee",
    "created_at",
    "created_by",
    "updated_at",
    "closed_at",
    "close_reason",
    "closed_by_session",
    "due_at",
    "defer_until",
    "external_ref",
    "compaction_level",
    "compacted_at",
    "compacted_at_commit",
    "original_size",
    "comments",
    "deleted_at",
    "deleted_by",
    "delete_reason",
    "original_type",
    "sender",
    "ephemeral",
    "pinned",
    "is_template",
    "bonded_from",
    "creator",
    "validations",
    "await_type",
    "await_id",
    "timeout",
    "waiters",
    "source_formula",
    "source_location",
    "hook_bead",
    "role_bead",
    "agent_state",
    "last_activity",
    "role_type",
    "rig",
    "mol_type",
    "event_kind",
    "actor",
    "target",
    "payload",
];

/// Issue types that are no work (messages, events, agents, roles): not imported.
const NOT_WORK: &[&str] = &["message", "event", "agent", "role"];

/// Whether the first line of `text` looks like a beads issue.
pub fn looks_like(text: &str) -> bool {
    let Some(first) = text.lines().find(|l| !l.trim().is_empty()) else {
        return false;
    };
    serde_json::from_str::<Map<String, Value>>(first)
        .is_ok_and(|o| o.get("id").is_some_and(Value::is_string) && o.contains_key("title"))
}

/// Reads an `issues.jsonl`.
pub fn read(text: &str) -> Result<Mapped, String> {
    let mut issues: Vec<Map<String, Value>> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let o: Map<String, Value> = serde_json::from_str(line)
            .map_err(|e| format!("line {}: not a JSON object: {e}", i + 1))?;
        issues.push(o);
    }
    let mut r = Reader {
        out: Mapped::default(),
        counts: BTreeMap::new(),
        kept: HashSet::new(),
    };
    r.out.plan.plan = PlanHeader {
        name: Some("beads".into()),
        description: Some("imported from beads".into()),
    };
    // The issues that become tasks, first: dependencies resolve against them.
    for o in &issues {
        if let Some(id) = r.keep(o) {
            r.kept.insert(id);
        }
    }
    for (i, o) in issues.iter().enumerate() {
        r.issue(o, i);
    }
    let counts = std::mem::take(&mut r.counts);
    r.out.report.finish_notes(counts);
    Ok(r.out)
}

struct Reader {
    out: Mapped,
    counts: BTreeMap<String, (String, usize)>,
    /// Ids of the issues imported.
    kept: HashSet<String>,
}

impl Reader {
    /// The id of an issue that becomes a task (`None`: it is left out, and the report says
    /// why when it is read).
    fn keep(&self, o: &Map<String, Value>) -> Option<String> {
        let id = o.get("id")?.as_str()?;
        key("", id)?;
        let status = o.get("status").and_then(Value::as_str).unwrap_or("open");
        let kind = o
            .get("issue_type")
            .and_then(Value::as_str)
            .unwrap_or("task");
        let ephemeral = o.get("ephemeral").and_then(Value::as_bool).unwrap_or(false);
        (!matches!(status, "tombstone" | "pinned") && !NOT_WORK.contains(&kind) && !ephemeral)
            .then(|| id.to_owned())
    }

    fn issue(&mut self, o: &Map<String, Value>, line: usize) {
        let Some(id) = o.get("id").and_then(Value::as_str) else {
            self.out
                .report
                .unmapped
                .push(format!("issue #{}: no id: not imported", line + 1));
            return;
        };
        if !self.kept.contains(id) {
            let why = match (
                o.get("status").and_then(Value::as_str),
                o.get("issue_type").and_then(Value::as_str),
            ) {
                (_, _) if key("", id).is_none() => "its id cannot be a key".to_owned(),
                (Some("tombstone"), _) => "deleted in beads (tombstone)".to_owned(),
                (Some("pinned"), _) => "pinned: a context marker, not work".to_owned(),
                (_, Some(t)) if NOT_WORK.contains(&t) => format!("a {t}, not work"),
                _ => "ephemeral".to_owned(),
            };
            self.out
                .report
                .unmapped
                .push(format!("{id}: {why}: not imported"));
            return;
        }
        for f in o.keys() {
            if SKIPPED.contains(&f.as_str()) {
                self.out.report.skipped(f);
            } else if !MAPPED.contains(&f.as_str()) {
                self.out.report.unknown(f);
            }
        }
        let text = |f: &str| {
            o.get(f)
                .and_then(Value::as_str)
                .unwrap_or("")
                .trim()
                .to_owned()
        };
        let mut t = task(id.to_owned(), title(&text("title"), id));
        t.description = description(&text("description"), &text("design"), &text("notes"));
        t.acceptance = text("acceptance_criteria")
            .lines()
            .map(|l| l.trim().trim_start_matches(['-', '*']).trim().to_owned())
            .filter(|l| !l.is_empty())
            .collect();
        if let Some(kind) = o.get("issue_type").and_then(Value::as_str) {
            t.tags.push(format!("type:{kind}"));
        }
        for l in o
            .get("labels")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(l) = l.as_str() {
                t.tags.push(l.to_owned());
            }
        }
        if let Some(m) = o.get("estimated_minutes").and_then(Value::as_u64) {
            t.effort = Some(u32::try_from(m.div_ceil(60)).unwrap_or(u32::MAX).max(1));
        }
        self.status(o, id);
        self.priority(o, id, &mut t);
        self.dependencies(o, id, &mut t);
        self.out.plan.tasks.push(t);
    }

    fn status(&mut self, o: &Map<String, Value>, id: &str) {
        let raw = o.get("status").and_then(Value::as_str).unwrap_or("open");
        let s = match raw {
            "open" => Status::Pending,
            "closed" => Status::Completed,
            "blocked" => Status::Blocked,
            "in_progress" | "hooked" => {
                self.out.report.note_once(
                    &mut self.counts,
                    raw,
                    format!("status `{raw}` was imported as pending: a task runs in Downbeat only while an agent holds it"),
                );
                Status::Pending
            }
            "deferred" => {
                self.out.report.note_once(
                    &mut self.counts,
                    raw,
                    "status `deferred` was imported as blocked (held until unblocked)".into(),
                );
                Status::Blocked
            }
            other => {
                self.out.report.unmapped.push(format!(
                    "{id}: status `{other}` (a custom status) has no equivalent: imported as pending"
                ));
                Status::Pending
            }
        };
        if s != Status::Pending {
            self.out.statuses.insert(id.to_owned(), s);
        }
    }

    /// P0 critical, P1 high, P2 normal, P3 and P4 low.
    fn priority(&mut self, o: &Map<String, Value>, id: &str, t: &mut PlanTask) {
        let Some(p) = o.get("priority") else { return };
        t.priority = match p.as_i64() {
            Some(0) => Some("critical".into()),
            Some(1) => Some("high".into()),
            Some(2) => None,
            Some(3) => Some("low".into()),
            Some(4) => {
                self.out.report.note_once(
                    &mut self.counts,
                    "P4",
                    "priority 4 (backlog) was imported as low, like 3".into(),
                );
                Some("low".into())
            }
            _ => {
                self.out
                    .report
                    .unmapped
                    .push(format!("{id}: priority {p} is not 0-4: imported as normal"));
                None
            }
        };
    }

    fn dependencies(&mut self, o: &Map<String, Value>, id: &str, t: &mut PlanTask) {
        for d in o
            .get("dependencies")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let from = d.get("issue_id").and_then(Value::as_str).unwrap_or(id);
            let Some(on) = d.get("depends_on_id").and_then(Value::as_str) else {
                continue;
            };
            let kind = d.get("type").and_then(Value::as_str).unwrap_or("blocks");
            if from != id {
                self.out.report.unmapped.push(format!(
                    "{id}: a dependency of another issue ({from} → {on}) listed with it: left out"
                ));
                continue;
            }
            if !self.kept.contains(on) {
                self.out.report.unmapped.push(format!(
                    "{id}: {kind} dependency on {on}, which is not imported: left out"
                ));
                continue;
            }
            let list = match kind {
                "blocks" => &mut t.depends_on,
                "related" | "relates-to" => &mut t.related,
                "discovered-from" => &mut t.discovered_from,
                "parent-child" => {
                    match &t.parent {
                        None => t.parent = Some(on.to_owned()),
                        Some(p) => self
                            .out
                            .report
                            .unmapped
                            .push(format!("{id}: a second parent ({on}; kept {p}): left out")),
                    }
                    continue;
                }
                other => {
                    self.out.report.unmapped.push(format!(
                        "{id}: `{other}` dependency on {on} has no equivalent: left out"
                    ));
                    continue;
                }
            };
            if !list.iter().any(|x| x == on) {
                list.push(on.to_owned());
            }
        }
    }
}

/// An issue's description, design and notes as one text.
fn description(description: &str, design: &str, notes: &str) -> String {
    let mut s = description.to_owned();
    for (title, text) in [("Design", design), ("Notes", notes)] {
        if !text.is_empty() {
            if !s.is_empty() {
                s.push_str("\n\n");
            }
            s.push_str(&format!("## {title}\n\n{text}"));
        }
    }
    s
}
