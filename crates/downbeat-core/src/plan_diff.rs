//! Living plans: what applying a plan again changes. [`diff`] compares a validated plan with
//! the tasks already stored under its keys and with what the plan's last application recorded
//! ([`Record`]), and answers with a [`PlanDiff`]: tasks to add, tasks to change (fields, parent,
//! dependencies), tasks to cancel because they left the plan, and conflicts — tasks that are
//! running or finished, which a plan never changes.
//!
//! Must never: read or write anything (the caller loads the stored tasks and applies
//! [`PlanDiff::changes`] in one transaction), or delete a task (removed means cancelled).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::ids::TaskId;
use crate::plan::{TaskRef, ValidatedPlan, ValidatedTask};
use crate::task::{Edge, EdgeKind, Status, Task, TaskPatch};

/// The `meta` key under which a plan's last application is recorded.
pub fn record_key(plan: &str) -> String {
    format!("plan:{plan}")
}

/// What a plan's last application declared: its task keys and its edges into keyed tasks, by
/// name (a key of the plan, or the id of a task outside it). Edges another writer added are not
/// in it, so applying the plan again never removes them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub keys: Vec<String>,
    /// (from, to, kind): `to` is always a key of the plan.
    pub edges: Vec<(String, String, EdgeKind)>,
}

impl Record {
    /// What applying `plan` declares (sorted, so the same plan records the same text).
    pub fn of(plan: &ValidatedPlan) -> Self {
        let name = |r: TaskRef| match r {
            TaskRef::New(i) => plan.tasks[i].new.key.clone(),
            TaskRef::Existing(id) => Some(id.to_string()),
        };
        // Sorted lists rather than sets: a million keys are sorted once instead of being
        // inserted one by one into a tree.
        let mut keys: Vec<String> = plan
            .tasks
            .iter()
            .filter_map(|t| t.new.key.clone())
            .collect();
        keys.sort_unstable();
        keys.dedup();
        let mut edges: Vec<(String, String, EdgeKind)> = plan
            .edges
            .iter()
            .filter_map(|&(f, t, kind)| Some((name(f)?, name(t)?, kind)))
            .collect();
        edges.sort_unstable();
        edges.dedup();
        Self { keys, edges }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads a stored record; `None` when the text is not one.
    pub fn from_json(text: &str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }

    /// Every name the record uses (keys and edge ends), for the caller to resolve.
    pub fn names(&self) -> Vec<String> {
        let mut all: BTreeSet<&String> = self.keys.iter().collect();
        for (f, t, _) in &self.edges {
            all.insert(f);
            all.insert(t);
        }
        all.into_iter().cloned().collect()
    }
}

/// What the store holds that a diff compares against.
#[derive(Debug, Default)]
pub struct Stored<'a> {
    /// Stored tasks by key: at least every key of the plan and of the previous record that is
    /// in the project.
    pub by_key: HashMap<String, &'a Task>,
    /// Every stored edge into a task of `by_key`.
    pub incoming: Vec<Edge>,
    /// The plan's last application, if it was applied before under the same name.
    pub previous: Option<&'a Record>,
    /// The record's names resolved to tasks (names that resolve to nothing are absent).
    pub previous_ids: HashMap<String, TaskId>,
    /// Tasks with a running task below them (containers), which cancelling would stop.
    pub busy: HashSet<TaskId>,
    /// Titles and texts of the objectives, decisions and insights already stored: the plan's
    /// records with the same text are not added again.
    pub objectives: HashSet<String>,
    pub decisions: HashSet<String>,
    pub insights: HashSet<String>,
}

/// One field of a stored task that the plan changes, as people read it. For `dependencies`,
/// `before` lists the dependencies removed and `after` those added (by key where there is one;
/// kinds other than `blocks` in parentheses).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldChange {
    pub field: &'static str,
    pub before: String,
    pub after: String,
}

/// A stored task the plan matches by key.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Changed {
    pub id: TaskId,
    pub key: String,
    pub title: String,
    pub status: Status,
    pub fields: Vec<FieldChange>,
    #[serde(skip)]
    pub patch: TaskPatch,
    /// The new parent, when it changes (`Some(None)`: no parent any more).
    #[serde(skip)]
    pub parent: Option<Option<TaskRef>>,
    #[serde(skip)]
    pub deps_added: Vec<(TaskRef, EdgeKind)>,
    #[serde(skip)]
    pub deps_removed: Vec<Edge>,
}

/// A task that left the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Removed {
    pub id: TaskId,
    pub key: String,
    pub title: String,
    pub status: Status,
    /// Cancelled by the apply; otherwise it is already finished and stays as it is.
    pub cancel: bool,
}

/// A change the plan asks for that would touch a running or finished task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Conflict {
    pub id: TaskId,
    pub key: String,
    pub title: String,
    pub status: Status,
    pub reason: String,
}

/// A task the plan adds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Added {
    pub key: Option<String>,
    pub title: String,
}

/// What applying a plan again does.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlanDiff {
    /// The new tasks with their edges and the records to add, ready to insert: references to
    /// matched tasks are [`TaskRef::Existing`]. When every task of the plan is new, this is
    /// the validated plan itself, shared rather than copied.
    pub new: Arc<ValidatedPlan>,
    pub changed: Vec<Changed>,
    pub removed: Vec<Removed>,
    pub conflicts: Vec<Conflict>,
    /// Matched tasks the plan leaves as they are.
    pub unchanged: usize,
    /// The status of every stored task the diff touches, as it was read.
    seen: Vec<(TaskId, Status)>,
}

impl PlanDiff {
    pub fn added(&self) -> Vec<Added> {
        self.new
            .tasks
            .iter()
            .map(|t| Added {
                key: t.new.key.clone(),
                title: t.new.title.clone(),
            })
            .collect()
    }

    /// True when applying changes nothing.
    pub fn is_empty(&self) -> bool {
        self.new.tasks.is_empty()
            && self.changed.is_empty()
            && self.removed.iter().all(|r| !r.cancel)
            && self.new.objectives.is_empty()
            && self.new.decisions.is_empty()
            && self.new.insights.is_empty()
    }

    /// The record of this application: what `plan` declares, except that a task left alone
    /// because of a conflict keeps what `previous` recorded for it, so the next application
    /// tries the same change again.
    pub fn record(&self, plan: &ValidatedPlan, previous: Option<&Record>) -> Record {
        let mut r = Record::of(plan);
        let Some(prev) = previous else { return r };
        let held: BTreeSet<&str> = self.conflicts.iter().map(|c| c.key.as_str()).collect();
        r.edges.retain(|(_, t, _)| !held.contains(t.as_str()));
        r.edges.extend(
            prev.edges
                .iter()
                .filter(|(_, t, _)| held.contains(t.as_str()))
                .cloned(),
        );
        r.keys.retain(|k| !held.contains(k.as_str()));
        r.keys.extend(
            prev.keys
                .iter()
                .filter(|k| held.contains(k.as_str()))
                .cloned(),
        );
        r.keys.sort();
        r.keys.dedup();
        r.edges.sort();
        r.edges.dedup();
        r
    }

    /// The writes that carry the diff out (conflicting tasks are left out: they are in
    /// [`Self::conflicts`], never in [`Self::changed`] or cancelled).
    pub fn changes(&self, record: Option<(String, String)>) -> PlanChanges {
        let mut edges_added = Vec::new();
        let mut parents = Vec::new();
        let mut updates = Vec::new();
        let mut edges_removed = Vec::new();
        for c in &self.changed {
            if !c.patch.is_empty() {
                updates.push((c.id, c.patch.clone()));
            }
            if let Some(p) = c.parent {
                parents.push((c.id, p));
            }
            edges_added.extend(c.deps_added.iter().map(|&(f, k)| (f, c.id, k)));
            edges_removed.extend(c.deps_removed.iter().copied());
        }
        PlanChanges {
            plan: Arc::clone(&self.new),
            updates,
            parents,
            edges_added,
            edges_removed,
            cancel: self
                .removed
                .iter()
                .filter(|r| r.cancel)
                .map(|r| r.id)
                .collect(),
            expect: self.seen.clone(),
            record,
            statuses: Vec::new(),
        }
    }
}

/// The writes of a living plan, carried out by the store in one transaction
/// (`TaskStore::apply_plan_changes`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlanChanges {
    /// New tasks, their edges, and the records to add (shared with the diff).
    pub plan: Arc<ValidatedPlan>,
    pub updates: Vec<(TaskId, TaskPatch)>,
    /// Stored tasks moved under another parent (possibly a new task), or to the top.
    pub parents: Vec<(TaskId, Option<TaskRef>)>,
    /// Edges into stored tasks (from a new task or a stored one).
    pub edges_added: Vec<(TaskRef, TaskId, EdgeKind)>,
    pub edges_removed: Vec<Edge>,
    /// Tasks to cancel (a container: its open subtree).
    pub cancel: Vec<TaskId>,
    /// Each touched task with the status it had when the diff was made: if one has moved on
    /// meanwhile, nothing is written.
    pub expect: Vec<(TaskId, Status)>,
    /// The `meta` entry recording this application: (key, value).
    pub record: Option<(String, String)>,
    /// Statuses new tasks start in instead of `pending` (leaves only: a container's status
    /// rolls up), as an import carries them over from another tool.
    pub statuses: Vec<(TaskRef, Status)>,
}

impl PlanChanges {
    /// Whether these writes can close a dependency cycle through stored tasks: they change a
    /// stored task, add an edge into one, or put a new task under one. If not, a cycle can only
    /// be among the new tasks ([`ValidatedPlan::own_cycle`]), and the stored graph need not be
    /// read for it.
    pub fn reaches_stored(&self) -> bool {
        !self.updates.is_empty()
            || !self.parents.is_empty()
            || !self.edges_added.is_empty()
            || self
                .plan
                .edges
                .iter()
                .any(|e| matches!(e.1, TaskRef::Existing(_)))
            || self
                .plan
                .tasks
                .iter()
                .any(|t| matches!(t.parent, Some(TaskRef::Existing(_))))
    }
}

/// May a plan change a task in this status? Running and finished work is never changed.
pub fn editable(s: Status) -> bool {
    matches!(s, Status::Pending | Status::Blocked | Status::Failed)
}

fn list(v: &[String]) -> String {
    format!("[{}]", v.join(", "))
}

fn opt(v: &Option<String>) -> String {
    v.clone().unwrap_or_else(|| "-".into())
}

/// The changes of a stored task's own fields to match `t`; fills `patch`.
fn field_changes(s: &Task, t: &ValidatedTask, patch: &mut TaskPatch) -> Vec<FieldChange> {
    let n = &t.new;
    let mut out = Vec::new();
    let mut note = |field: &'static str, before: String, after: String| {
        out.push(FieldChange {
            field,
            before,
            after,
        })
    };
    if s.title != n.title {
        note("title", s.title.clone(), n.title.clone());
        patch.title = Some(n.title.clone());
    }
    if s.description != n.description {
        note("description", s.description.clone(), n.description.clone());
        patch.description = Some(n.description.clone());
    }
    if s.role != n.role {
        note("role", opt(&s.role), opt(&n.role));
        patch.role = Some(n.role.clone());
    }
    if s.priority != n.priority {
        note("priority", s.priority.to_string(), n.priority.to_string());
        patch.priority = Some(n.priority);
    }
    if s.effort != n.effort {
        note("effort", s.effort.to_string(), n.effort.to_string());
        patch.effort = Some(n.effort);
    }
    if s.acceptance != n.acceptance {
        note("acceptance", list(&s.acceptance), list(&n.acceptance));
        patch.acceptance = Some(n.acceptance.clone());
    }
    if s.tags != n.tags {
        note("tags", list(&s.tags), list(&n.tags));
        patch.tags = Some(n.tags.clone());
    }
    if s.footprint != n.footprint {
        note("files", list(&s.footprint), list(&n.footprint));
        patch.footprint = Some(n.footprint.clone());
    }
    if s.exec != n.exec {
        if s.exec.executor != n.exec.executor {
            note("executor", opt(&s.exec.executor), opt(&n.exec.executor));
        }
        if s.exec.timeout != n.exec.timeout {
            let ms = |d: Option<std::time::Duration>| {
                d.map_or("-".into(), |d| format!("{}ms", d.as_millis()))
            };
            note("timeout", ms(s.exec.timeout), ms(n.exec.timeout));
        }
        if s.exec.max_attempts != n.exec.max_attempts {
            let a = |v: Option<u32>| v.map_or("-".into(), |v| v.to_string());
            note(
                "max_attempts",
                a(s.exec.max_attempts),
                a(n.exec.max_attempts),
            );
        }
        patch.exec = Some(n.exec.clone());
    }
    out
}

/// The `dependencies` line of a changed task.
fn dependency_change(
    new: &ValidatedPlan,
    keys: &HashMap<TaskId, &String>,
    added: &[(TaskRef, EdgeKind)],
    removed: &[Edge],
) -> FieldChange {
    let named = |r: TaskRef, k: EdgeKind| {
        let n = match r {
            TaskRef::New(j) => new.tasks[j]
                .new
                .key
                .clone()
                .unwrap_or_else(|| format!("\"{}\"", new.tasks[j].new.title)),
            TaskRef::Existing(id) => keys.get(&id).map_or(id.to_string(), |k| (*k).clone()),
        };
        match k {
            EdgeKind::Blocks => n,
            k => format!("{n} ({k})"),
        }
    };
    let removed: Vec<String> = removed
        .iter()
        .map(|e| named(TaskRef::Existing(e.from), e.kind))
        .collect();
    let added: Vec<String> = added.iter().map(|&(f, k)| named(f, k)).collect();
    FieldChange {
        field: "dependencies",
        before: removed.join(", "),
        after: added.join(", "),
    }
}

/// Compares `plan` (validated as if every task were new) with what is stored.
pub fn diff(plan: &Arc<ValidatedPlan>, stored: &Stored<'_>) -> PlanDiff {
    let mut d = PlanDiff::default();
    // Which plan tasks are stored already, and the new index of the others.
    let matched: Vec<Option<&Task>> = plan
        .tasks
        .iter()
        .map(|t| {
            t.new
                .key
                .as_ref()
                .and_then(|k| stored.by_key.get(k).copied())
        })
        .collect();
    let (all_new, mut new, new_index) = unmatched(plan, &matched);
    let remap = |r: TaskRef| match r {
        TaskRef::New(i) => match matched[i] {
            Some(t) => TaskRef::Existing(t.id),
            None => TaskRef::New(new_index[i]),
        },
        e => e,
    };
    for t in &mut new.tasks {
        t.parent = t.parent.map(remap);
    }
    new.name = plan.name.clone();
    new.roles = plan.roles.clone();
    // Edges: into new tasks they travel with the new tasks; into stored ones they are compared.
    let mut wanted: HashMap<TaskId, BTreeSet<(TaskRef, EdgeKind)>> = HashMap::new();
    for &(f, t, kind) in &plan.edges {
        match remap(t) {
            TaskRef::New(_) if all_new => {}
            TaskRef::New(_) => new.edges.push((remap(f), remap(t), kind)),
            TaskRef::Existing(to) => {
                wanted.entry(to).or_default().insert((remap(f), kind));
            }
        }
    }
    let mut have: HashMap<TaskId, Vec<Edge>> = HashMap::new();
    for e in &stored.incoming {
        have.entry(e.to).or_default().push(*e);
    }
    let declared_before = |e: &Edge, to_key: &str| {
        stored.previous.is_some_and(|p| {
            p.edges.iter().any(|(f, t, k)| {
                *k == e.kind && t == to_key && stored.previous_ids.get(f) == Some(&e.from)
            })
        })
    };
    let referred: HashSet<TaskId> = plan
        .edges
        .iter()
        .map(|e| remap(e.0))
        .chain(plan.tasks.iter().filter_map(|t| t.parent.map(remap)))
        .filter_map(|r| match r {
            TaskRef::Existing(id) => Some(id),
            TaskRef::New(_) => None,
        })
        .collect();
    let keys: HashMap<TaskId, &String> = stored.by_key.iter().map(|(k, t)| (t.id, k)).collect();
    let mut in_plan: HashSet<TaskId> = HashSet::new();
    for (i, t) in plan.tasks.iter().enumerate() {
        let Some(s) = matched[i] else { continue };
        in_plan.insert(s.id);
        let key = s.key.clone().unwrap_or_default();
        let mut patch = TaskPatch::default();
        let mut fields = field_changes(s, t, &mut patch);
        let parent = t.parent.map(remap);
        let parent_change = match parent {
            Some(TaskRef::Existing(p)) if s.parent == Some(p) => None,
            None if s.parent.is_none() => None,
            p => Some(p),
        };
        if let Some(p) = parent_change {
            let after = match p {
                Some(TaskRef::Existing(id)) => id.to_string(),
                Some(TaskRef::New(j)) => new.tasks[j]
                    .new
                    .key
                    .clone()
                    .unwrap_or_else(|| format!("\"{}\" (new)", new.tasks[j].new.title)),
                None => "-".into(),
            };
            fields.push(FieldChange {
                field: "parent",
                before: s.parent.map_or("-".into(), |p| p.to_string()),
                after,
            });
        }
        let want = wanted.remove(&s.id).unwrap_or_default();
        let got = have.get(&s.id).map(Vec::as_slice).unwrap_or_default();
        let deps_added: Vec<(TaskRef, EdgeKind)> = want
            .iter()
            .filter(|(f, k)| match f {
                TaskRef::Existing(f) => !got.iter().any(|e| e.from == *f && e.kind == *k),
                TaskRef::New(_) => true,
            })
            .copied()
            .collect();
        let deps_removed: Vec<Edge> = got
            .iter()
            .filter(|e| !want.contains(&(TaskRef::Existing(e.from), e.kind)))
            .filter(|e| declared_before(e, &key))
            .copied()
            .collect();
        if !deps_added.is_empty() || !deps_removed.is_empty() {
            fields.push(dependency_change(&new, &keys, &deps_added, &deps_removed));
        }
        if fields.is_empty() {
            d.unchanged += 1;
            continue;
        }
        if !editable(s.status) || s.archived {
            let what: Vec<&str> = fields.iter().map(|f| f.field).collect();
            d.conflicts.push(Conflict {
                id: s.id,
                key,
                title: s.title.clone(),
                status: s.status,
                reason: format!(
                    "the plan changes its {} but the task is {}",
                    what.join(", "),
                    s.status
                ),
            });
            continue;
        }
        d.seen.push((s.id, s.status));
        d.changed.push(Changed {
            id: s.id,
            key,
            title: s.title.clone(),
            status: s.status,
            fields,
            patch,
            parent: parent_change,
            deps_added,
            deps_removed,
        });
    }
    removals(stored, &in_plan, &referred, &mut d);
    records(plan, stored, &remap, &mut new);
    d.new = if all_new {
        shared(plan, new)
    } else {
        Arc::new(new)
    };
    d
}

/// The plan's tasks no stored task matches, copied (with their index among them), unless
/// every task is new and no edge ends at a stored one (a first application): then the plan
/// goes in as it is, nothing is copied, and the first value says so.
fn unmatched(plan: &ValidatedPlan, matched: &[Option<&Task>]) -> (bool, ValidatedPlan, Vec<usize>) {
    let all_new = matched.iter().all(Option::is_none)
        && plan.edges.iter().all(|e| matches!(e.1, TaskRef::New(_)));
    let mut new = ValidatedPlan::default();
    let mut new_index = vec![usize::MAX; plan.tasks.len()];
    for (i, m) in matched.iter().enumerate() {
        if m.is_none() {
            new_index[i] = if all_new { i } else { new.tasks.len() };
            if !all_new {
                new.tasks.push(plan.tasks[i].clone());
            }
        }
    }
    (all_new, new, new_index)
}

/// The new part of a plan whose every task is new: the plan itself, shared, unless some of
/// its records (in `new`) are stored already; then the plan without them.
fn shared(plan: &Arc<ValidatedPlan>, new: ValidatedPlan) -> Arc<ValidatedPlan> {
    if new.objectives == plan.objectives
        && new.decisions == plan.decisions
        && new.insights == plan.insights
    {
        return Arc::clone(plan);
    }
    let mut own = ValidatedPlan::clone(plan);
    own.objectives = new.objectives;
    own.decisions = new.decisions;
    own.insights = new.insights;
    Arc::new(own)
}

/// Tasks the last application had that the plan no longer lists (unless it still refers to
/// them): cancelled, kept when finished, conflicts when work on them is running.
fn removals(
    stored: &Stored<'_>,
    in_plan: &HashSet<TaskId>,
    referred: &HashSet<TaskId>,
    d: &mut PlanDiff,
) {
    if let Some(prev) = stored.previous {
        for k in &prev.keys {
            let Some(s) = stored.by_key.get(k) else {
                continue;
            };
            if in_plan.contains(&s.id) || referred.contains(&s.id) || s.archived {
                continue;
            }
            let r = Removed {
                id: s.id,
                key: k.clone(),
                title: s.title.clone(),
                status: s.status,
                cancel: !s.status.is_terminal(),
            };
            if s.status == Status::Running || stored.busy.contains(&s.id) {
                d.conflicts.push(Conflict {
                    id: s.id,
                    key: k.clone(),
                    title: s.title.clone(),
                    status: s.status,
                    reason: "the plan removes it but work on it is running".into(),
                });
                continue;
            }
            if r.cancel {
                d.seen.push((s.id, s.status));
            }
            d.removed.push(r);
        }
    }
}

/// The plan's objectives, decisions and insights not stored yet, with references remapped.
fn records(
    plan: &ValidatedPlan,
    stored: &Stored<'_>,
    remap: &dyn Fn(TaskRef) -> TaskRef,
    out: &mut ValidatedPlan,
) {
    for (title, refs) in &plan.objectives {
        if !stored.objectives.contains(title) {
            out.objectives
                .push((title.clone(), refs.iter().map(|&r| remap(r)).collect()));
        }
    }
    for (text, why, task) in &plan.decisions {
        if !stored.decisions.contains(text) {
            out.decisions
                .push((text.clone(), why.clone(), task.map(remap)));
        }
    }
    for (text, task) in &plan.insights {
        if !stored.insights.contains(text) {
            out.insights.push((text.clone(), task.map(remap)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{PlanFormat, parse, validate};
    use crate::role::RoleSet;
    use crate::time::Timestamp;

    fn plan(text: &str) -> ValidatedPlan {
        let p = parse(text, PlanFormat::Toml).unwrap();
        validate(&p, &RoleSet::builtin(), &|_| None, &|_| false).unwrap()
    }

    fn stored(seq: u32, key: &str, title: &str, status: Status) -> Task {
        Task {
            id: TaskId::from_seq(seq).unwrap(),
            key: Some(key.into()),
            parent: None,
            title: title.into(),
            description: String::new(),
            role: None,
            status,
            priority: Default::default(),
            effort: 1,
            acceptance: vec![],
            tags: vec![],
            footprint: vec![],
            result: None,
            created_at: Timestamp(0),
            updated_at: Timestamp(0),
            started_at: None,
            finished_at: None,
            archived: false,
            exec: Default::default(),
            attempts: 0,
            not_before: None,
            lease_holder: None,
            lease_expires: None,
            lease_epoch: Default::default(),
        }
    }

    #[test]
    fn matches_by_key_and_sorts_out_adds_changes_removals_and_conflicts() {
        let v = Arc::new(plan(
            "[[tasks]]\nkey = \"a\"\ntitle = \"A2\"\n[[tasks]]\nkey = \"n\"\ntitle = \"N\"\ndepends_on = [\"a\"]\n[[tasks]]\nkey = \"done\"\ntitle = \"Done again\"\n",
        ));
        let a = stored(1, "a", "A", Status::Pending);
        let done = stored(2, "done", "Done", Status::Completed);
        let gone = stored(3, "gone", "Gone", Status::Blocked);
        let previous = Record {
            keys: vec!["a".into(), "done".into(), "gone".into()],
            edges: vec![],
        };
        let s = Stored {
            by_key: [("a", &a), ("done", &done), ("gone", &gone)]
                .into_iter()
                .map(|(k, t)| (k.to_owned(), t))
                .collect(),
            previous: Some(&previous),
            ..Stored::default()
        };
        let d = diff(&v, &s);
        assert_eq!(d.added().len(), 1);
        assert_eq!(
            d.new.edges,
            [(TaskRef::Existing(a.id), TaskRef::New(0), EdgeKind::Blocks)]
        );
        assert_eq!(d.changed.len(), 1);
        assert_eq!(d.changed[0].patch.title.as_deref(), Some("A2"));
        assert_eq!(d.conflicts.len(), 1);
        assert_eq!(d.conflicts[0].key, "done");
        assert_eq!(d.removed.len(), 1);
        assert!(d.removed[0].cancel);
        let ch = d.changes(None);
        assert_eq!(ch.cancel, [gone.id]);
        assert_eq!(
            ch.expect,
            [(a.id, Status::Pending), (gone.id, Status::Blocked)]
        );
        // The conflicting task keeps what the last application recorded.
        assert!(
            d.record(&v, Some(&previous))
                .keys
                .contains(&"done".to_owned())
        );
    }

    /// A plan applied for the first time goes in as it was validated: the diff and the
    /// changes share it instead of copying its tasks; records already stored leave it.
    #[test]
    fn a_first_application_shares_the_validated_plan() {
        let v = Arc::new(plan(
            "[[tasks]]\nkey = \"a\"\ntitle = \"A\"\n[[tasks]]\nkey = \"b\"\ntitle = \"B\"\ndepends_on = [\"a\"]\n[[objectives]]\ntitle = \"Ship\"\n",
        ));
        let d = diff(&v, &Stored::default());
        assert!(Arc::ptr_eq(&d.new, &v));
        assert!(Arc::ptr_eq(&d.changes(None).plan, &v));
        assert_eq!(d.added().len(), 2);
        // An objective stored already is left out: the plan is copied without it.
        let s = Stored {
            objectives: ["Ship".to_owned()].into(),
            ..Stored::default()
        };
        let d = diff(&v, &s);
        assert!(!Arc::ptr_eq(&d.new, &v));
        assert!(d.new.objectives.is_empty());
        assert_eq!(d.new.tasks, v.tasks);
        assert_eq!(d.new.edges, v.edges);
    }
}
