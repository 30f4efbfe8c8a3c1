//! Task Master's `tasks.json` (task-master-ai; the fields of `packages/tm-core/src/common/types/index.ts`
//! and docs.task-master.dev/capabilities/task-structure): the legacy `{"tasks": [...]}` and the
//! tagged `{"master": {"tasks": [...], "metadata": {...}}, "other-tag": {...}}` layouts. One tag
//! is imported. Tasks become `tm-ID`, subtasks `tm-ID.SUB` under their task; statuses,
//! priorities and dependencies are carried over as the module documentation of `imports`
//! tells.

use std::collections::{BTreeMap, HashSet};

use downbeat_core::plan::{PlanHeader, PlanTask};
use downbeat_core::task::Status;
use serde_json::{Map, Value};

use super::mapped::{Mapped, key, task, title};

/// Fields of a task (and a subtask) carried over.
const MAPPED: &[&str] = &[
    "id",
    "title",
    "description",
    "details",
    "testStrategy",
    "status",
    "priority",
    "dependencies",
    "subtasks",
    "effort",
    "tags",
    "complexity",
    "acceptanceCriteria",
    "relevantFiles",
    "category",
    "parentId",
];

/// Fields of the format Downbeat does not keep.
const SKIPPED: &[&str] = &[
    "createdAt",
    "updatedAt",
    "actualEffort",
    "assignee",
    "databaseId",
    "recommendedSubtasks",
    "expansionPrompt",
    "complexityReasoning",
    "metadata",
    "codebasePatterns",
    "existingInfrastructure",
    "scopeBoundaries",
    "implementationApproach",
    "technicalConstraints",
    "skills",
];

/// Whether `v` looks like a Task Master file with tasks (legacy or tagged).
pub fn looks_like(v: &Value) -> bool {
    let Some(o) = v.as_object() else { return false };
    let tasks = |t: &Value| t.get("tasks").and_then(Value::as_array).map(Vec::len);
    if let Some(n) = tasks(v) {
        return n > 0;
    }
    !o.is_empty()
        && o.values().all(|t| tasks(t).is_some())
        && o.values().any(|t| tasks(t).unwrap_or(0) > 0)
}

/// The tasks of the tag to import, with the tag's name and the other tags.
fn tag_tasks<'a>(
    v: &'a Value,
    tag: Option<&str>,
) -> Result<(String, &'a Vec<Value>, Vec<String>), String> {
    let o = v.as_object().ok_or("the file is not a JSON object")?;
    if let Some(Value::Array(tasks)) = o.get("tasks") {
        if let Some(t) = tag.filter(|t| *t != "master") {
            return Err(format!(
                "the file has no tags (the legacy layout), so it has no tag `{t}`"
            ));
        }
        return Ok(("master".into(), tasks, Vec::new()));
    }
    let tags: Vec<String> = o.keys().cloned().collect();
    let chosen = match tag {
        Some(t) => t.to_owned(),
        None if tags.len() == 1 => tags[0].clone(),
        None if o.contains_key("master") => "master".into(),
        None => {
            return Err(format!(
                "the file has several tags and none is `master`: choose one with --tag ({})",
                tags.join(", ")
            ));
        }
    };
    let tasks = o
        .get(&chosen)
        .and_then(|t| t.get("tasks"))
        .and_then(Value::as_array)
        .ok_or_else(|| {
            format!(
                "the file has no tag `{chosen}` (its tags: {})",
                tags.join(", ")
            )
        })?;
    let others = tags.into_iter().filter(|t| *t != chosen).collect();
    Ok((chosen, tasks, others))
}

/// An id (number or string) as text.
fn id_text(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        _ => None,
    }
}

/// Reads a `tasks.json`, importing `tag` (default: `master`, or the only tag).
pub fn read(text: &str, tag: Option<&str>) -> Result<Mapped, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let (tag, tasks, others) = tag_tasks(&v, tag)?;
    let prefix = if tag == "master" {
        "tm-".to_owned()
    } else {
        key("tm-", &tag).map_or_else(|| "tm-".to_owned(), |k| format!("{k}-"))
    };
    let mut r = Reader {
        prefix,
        out: Mapped::default(),
        counts: BTreeMap::new(),
    };
    r.out.plan.plan = PlanHeader {
        name: Some(format!("taskmaster-{tag}")),
        description: Some(format!("imported from Task Master (tag {tag})")),
    };
    if !others.is_empty() {
        r.out.report.notes.push(format!(
            "only tag `{tag}` was imported; the file has also {} (import them with --tag)",
            others.join(", ")
        ));
    }
    if let Some(meta) = v.get(&tag).and_then(Value::as_object) {
        for k in meta.keys().filter(|k| *k != "tasks") {
            if k == "metadata" {
                r.out.report.skipped("metadata (of the tag)");
            } else {
                r.out.report.unknown(k);
            }
        }
    }
    // Every id first: references resolve against the whole file.
    let mut ids = Ids::default();
    for t in tasks {
        let Some(id) = t.get("id").and_then(id_text) else {
            continue;
        };
        ids.tasks.insert(id.clone());
        for s in t
            .get("subtasks")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(sid) = s.get("id").and_then(id_text) {
                ids.subtasks.insert((id.clone(), sid));
            }
        }
    }
    for (i, t) in tasks.iter().enumerate() {
        r.task(t, i, None, &ids);
    }
    let counts = std::mem::take(&mut r.counts);
    r.out.report.finish_notes(counts);
    Ok(r.out)
}

#[derive(Default)]
struct Ids {
    tasks: HashSet<String>,
    subtasks: HashSet<(String, String)>,
}

struct Reader {
    prefix: String,
    out: Mapped,
    counts: BTreeMap<String, (String, usize)>,
}

impl Reader {
    fn task_key(&self, id: &str) -> Option<String> {
        key(&self.prefix, id)
    }

    fn sub_key(&self, parent: &str, sub: &str) -> Option<String> {
        key(&self.prefix, &format!("{parent}.{sub}"))
    }

    /// One task (`parent`: `None`) or subtask (`parent`: its task's id) and, for a task, its
    /// subtasks.
    fn task(&mut self, t: &Value, pos: usize, parent: Option<&str>, ids: &Ids) {
        let what = match parent {
            Some(p) => format!("subtask #{} of task {p}", pos + 1),
            None => format!("task #{}", pos + 1),
        };
        let Some(o) = t.as_object() else {
            self.out
                .report
                .unmapped
                .push(format!("{what} is not an object"));
            return;
        };
        let Some(id) = o.get("id").and_then(id_text) else {
            self.out
                .report
                .unmapped
                .push(format!("{what} has no id: not imported"));
            return;
        };
        let k = match parent {
            Some(p) => self.sub_key(p, &id),
            None => self.task_key(&id),
        };
        let Some(k) = k else {
            self.out
                .report
                .unmapped
                .push(format!("{what}: id `{id}` cannot be a key: not imported"));
            return;
        };
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
        let mut pt = task(k.clone(), title(&text("title"), &k));
        pt.description = description(&text("description"), &text("details"));
        pt.parent = parent.and_then(|p| self.task_key(p));
        let strategy = text("testStrategy");
        if !strategy.is_empty() {
            pt.acceptance.push(format!("Test strategy: {strategy}"));
        }
        self.extras(o, &mut pt);
        self.status(o, &k);
        self.priority(o, &k, &mut pt);
        self.dependencies(o, &k, parent, ids, &mut pt);
        self.out.plan.tasks.push(pt);
        if parent.is_none() {
            let subtasks = o.get("subtasks").and_then(Value::as_array);
            for (i, s) in subtasks.into_iter().flatten().enumerate() {
                self.task(s, i, Some(&id), ids);
            }
        }
    }

    /// Effort, tags, complexity, acceptance criteria, relevant files, category.
    fn extras(&mut self, o: &Map<String, Value>, pt: &mut PlanTask) {
        if let Some(e) = o.get("effort").and_then(Value::as_f64) {
            pt.effort = Some((e.ceil() as u32).max(1));
        }
        for t in o
            .get("tags")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(t) = t.as_str() {
                pt.tags.push(t.to_owned());
            }
        }
        match o.get("complexity") {
            Some(Value::Number(n)) => pt.tags.push(format!("complexity:{n}")),
            Some(Value::String(s)) => pt.tags.push(format!("complexity:{s}")),
            _ => {}
        }
        if let Some(c) = o.get("category").and_then(Value::as_str) {
            pt.tags.push(format!("category:{c}"));
        }
        for a in o
            .get("acceptanceCriteria")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(a) = a.as_str() {
                pt.acceptance.push(a.to_owned());
            }
        }
        for f in o
            .get("relevantFiles")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(p) = f.get("path").and_then(Value::as_str) {
                pt.files.push(p.to_owned());
            }
        }
    }

    fn status(&mut self, o: &Map<String, Value>, k: &str) {
        let raw = o.get("status").and_then(Value::as_str).unwrap_or("pending");
        let s = match raw {
            "pending" => Status::Pending,
            "done" | "completed" => Status::Completed,
            "cancelled" => Status::Cancelled,
            "blocked" => Status::Blocked,
            "in-progress" | "review" => {
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
                    "{k}: status `{other}` is unknown: imported as pending"
                ));
                Status::Pending
            }
        };
        if s != Status::Pending {
            self.out.statuses.insert(k.to_owned(), s);
        }
    }

    fn priority(&mut self, o: &Map<String, Value>, k: &str, pt: &mut PlanTask) {
        let Some(raw) = o.get("priority").and_then(Value::as_str) else {
            return;
        };
        pt.priority = match raw {
            "low" => Some("low".into()),
            "medium" => None,
            "high" => Some("high".into()),
            "critical" => Some("critical".into()),
            other => {
                self.out.report.unmapped.push(format!(
                    "{k}: priority `{other}` is unknown: imported as normal"
                ));
                None
            }
        };
    }

    /// A task's dependencies: a number or `"N"` names a task (in a subtask: a sibling subtask
    /// first), `"N.M"` a subtask.
    fn dependencies(
        &mut self,
        o: &Map<String, Value>,
        k: &str,
        parent: Option<&str>,
        ids: &Ids,
        pt: &mut PlanTask,
    ) {
        for d in o
            .get("dependencies")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(d) = id_text(d) else { continue };
            let target = if let Some((t, s)) = d.split_once('.') {
                ids.subtasks
                    .contains(&(t.to_owned(), s.to_owned()))
                    .then(|| self.sub_key(t, s))
                    .flatten()
            } else if let Some(p) =
                parent.filter(|p| ids.subtasks.contains(&(p.to_string(), d.clone())))
            {
                self.sub_key(p, &d)
            } else if ids.tasks.contains(&d) {
                self.task_key(&d)
            } else {
                None
            };
            match target {
                None => self.out.report.unmapped.push(format!(
                    "{k}: dependency `{d}` is not in the file: left out"
                )),
                Some(t)
                    if t == k || parent.is_some_and(|p| Some(&t) == self.task_key(p).as_ref()) =>
                {
                    self.out.report.unmapped.push(format!(
                        "{k}: dependency `{d}` is the task itself or its parent: left out"
                    ));
                }
                Some(t) => {
                    if !pt.depends_on.contains(&t) {
                        pt.depends_on.push(t);
                    }
                }
            }
        }
    }
}

/// A task's description and details as one text.
fn description(description: &str, details: &str) -> String {
    match (description.is_empty(), details.is_empty()) {
        (_, true) => description.to_owned(),
        (true, false) => details.to_owned(),
        (false, false) => format!("{description}\n\n## Details\n\n{details}"),
    }
}
