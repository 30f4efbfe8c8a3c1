//! Plan files: a whole task graph (tasks, hierarchy, dependencies, objectives, decisions,
//! insights, roles) in TOML, YAML or JSON, validated as a whole before anything is written.
//!
//! Parsing takes text, not paths: reading the file is the caller's business.

use serde::{Deserialize, Serialize};

use crate::command::executor_setting;
use crate::consensus::{self, ConsensusSpec};
use crate::ids::TaskId;
use crate::role::{RoleFile, RoleSet, check_role_name};
use crate::task::{EdgeKind, ExecSettings, NewTask, Priority, validate_fields};
use crate::time::Millis;

/// The formats a plan may be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanFormat {
    Toml,
    Yaml,
    Json,
}

impl PlanFormat {
    /// Picks the format from a file name's extension.
    pub fn from_path(path: &str) -> Option<Self> {
        let ext = path.rsplit('.').next()?.to_ascii_lowercase();
        match ext.as_str() {
            "toml" => Some(Self::Toml),
            "yaml" | "yml" => Some(Self::Yaml),
            "json" => Some(Self::Json),
            _ => None,
        }
    }
}

/// A plan file as written.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PlanFile {
    #[serde(default, skip_serializing_if = "PlanHeader::is_empty")]
    pub plan: PlanHeader,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<PlanRole>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub objectives: Vec<PlanObjective>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tasks: Vec<PlanTask>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub decisions: Vec<PlanDecision>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub insights: Vec<PlanInsight>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PlanHeader {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PlanRole {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_parallel: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stale_after: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PlanObjective {
    pub title: String,
    /// Task keys (of this plan) or existing task ids/keys this objective is achieved by.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tasks: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PlanTask {
    /// Name other entries of the plan use to refer to this task; stored as the task's key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub title: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub related: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub discovered_from: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub effort: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acceptance: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Declared file footprint (paths or globs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
    /// A named executor from the configuration, or `process` with `command` or `shell`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executor: Option<String>,
    /// The task's own program and its arguments, split like a shell would (no expansion); run
    /// by the process executor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// The task's own command line for `sh -c`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shell: Option<String>,
    /// Kill an attempt after this long (`90s`, `30m`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// Attempts allowed in all (1 = no retry).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    /// Answered independently N times, then resolved (see [`expand_consensus`]); boxed, as
    /// few tasks have one and a plan may hold a million.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consensus: Option<Box<ConsensusSpec>>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PlanDecision {
    pub text: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub why: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PlanInsight {
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
}

/// A plan file that could not be read as a plan.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ParseError {
    /// The parser's message, with line and column where it gives them.
    pub message: String,
}

/// Parses plan text in the given format.
pub fn parse(text: &str, format: PlanFormat) -> Result<PlanFile, ParseError> {
    let r = match format {
        PlanFormat::Toml => toml::from_str::<PlanFile>(text).map_err(|e| e.to_string()),
        PlanFormat::Yaml => serde_saphyr::from_str::<PlanFile>(text).map_err(|e| e.to_string()),
        PlanFormat::Json => serde_json::from_str::<PlanFile>(text).map_err(|e| e.to_string()),
    };
    // Some parsers start their message with their own `error: `; the caller says that once.
    r.map_err(|message| ParseError {
        message: message.trim_end().trim_start_matches("error: ").to_owned(),
    })
}

impl PlanHeader {
    fn is_empty(&self) -> bool {
        self.name.is_none() && self.description.is_none()
    }
}

/// Writes a plan as text in `format` (fields left at their defaults are left out).
pub fn to_text(plan: &PlanFile, format: PlanFormat) -> Result<String, String> {
    match format {
        PlanFormat::Toml => toml::to_string(plan).map_err(|e| e.to_string()),
        PlanFormat::Yaml => serde_saphyr::to_string(plan).map_err(|e| e.to_string()),
        PlanFormat::Json => serde_json::to_string_pretty(plan)
            .map(|s| s + "\n")
            .map_err(|e| e.to_string()),
    }
}

/// A reference from the plan, resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TaskRef {
    /// The n-th task of [`ValidatedPlan::tasks`].
    New(usize),
    /// A task already in the store.
    Existing(TaskId),
}

/// One task of a validated plan, ready to insert.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatedTask {
    pub new: NewTask,
    /// Resolved parent (overrides `new.parent`, which is `None` for new parents).
    pub parent: Option<TaskRef>,
}

/// A plan that passed every check; inserting it cannot fail on the plan's account except for
/// cycles formed together with edges already in the store (the store checks those).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ValidatedPlan {
    pub name: Option<String>,
    /// Parents come before their children.
    pub tasks: Vec<ValidatedTask>,
    pub edges: Vec<(TaskRef, TaskRef, EdgeKind)>,
    pub objectives: Vec<(String, Vec<TaskRef>)>,
    pub decisions: Vec<(String, String, Option<TaskRef>)>,
    pub insights: Vec<(String, Option<TaskRef>)>,
    /// Role definitions to merge into the project (name, definition).
    pub roles: Vec<(String, RoleFile)>,
}

impl ValidatedPlan {
    /// A dependency cycle among the plan's new tasks alone (their `blocks` edges and their
    /// hierarchy), as the indices of the tasks on it; links to stored tasks are left out. Only
    /// numbers are copied, so a plan of a million tasks is checked in its own memory.
    pub fn own_cycle(&self) -> Option<Vec<usize>> {
        use crate::graph::{GraphNode, find_cycle_among};
        use crate::task::{Edge, Status};
        struct Node {
            id: TaskId,
            parent: Option<TaskId>,
        }
        impl GraphNode for Node {
            fn id(&self) -> TaskId {
                self.id
            }
            fn parent(&self) -> Option<TaskId> {
                self.parent
            }
            fn status(&self) -> Status {
                Status::Pending
            }
            fn role(&self) -> Option<&str> {
                None
            }
            fn effort(&self) -> u32 {
                1
            }
            fn priority(&self) -> Priority {
                Priority::Normal
            }
            fn footprint(&self) -> &[String] {
                &[]
            }
        }
        let id = |r: TaskRef| match r {
            TaskRef::New(i) => u32::try_from(i + 1).ok().and_then(TaskId::from_seq),
            TaskRef::Existing(_) => None,
        };
        let nodes: Vec<Node> = (0..self.tasks.len())
            .filter_map(|i| {
                Some(Node {
                    id: id(TaskRef::New(i))?,
                    parent: self.tasks[i].parent.and_then(id),
                })
            })
            .collect();
        let edges: Vec<Edge> = self
            .edges
            .iter()
            .filter_map(|&(f, t, kind)| {
                Some(Edge {
                    from: id(f)?,
                    to: id(t)?,
                    kind,
                })
            })
            .collect();
        let cycle = find_cycle_among(&nodes, &edges)?;
        Some(cycle.path.iter().map(|t| t.seq() as usize - 1).collect())
    }
}

/// Everything wrong with a plan, each naming the offending entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the plan has {} problem{}:\n{}", problems.len(), if problems.len() == 1 { "" } else { "s" }, problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
pub struct PlanErrors {
    pub problems: Vec<String>,
}

/// Validates `plan` against the project's roles; `existing` resolves references to tasks
/// already stored (by key or id), and `key_taken` says whether a key is already used.
pub fn validate(
    plan: &PlanFile,
    roles: &RoleSet,
    existing: &dyn Fn(&str) -> Option<TaskId>,
    key_taken: &dyn Fn(&str) -> bool,
) -> Result<ValidatedPlan, PlanErrors> {
    let (expanded, problems) = expand_consensus(plan);
    let (mut out, order, parents) = check(&expanded, problems, roles, existing, key_taken)?;
    out.tasks = order
        .iter()
        .map(|&i| ValidatedTask {
            new: new_task(&expanded.tasks[i]),
            parent: None,
        })
        .collect();
    renumber(&order, &parents, &mut out);
    Ok(out)
}

/// [`validate`], taking the plan: the tasks' texts move into the validated plan instead of
/// being copied, and the parsed plan is gone when it returns (a plan of a million tasks is
/// held once, not twice).
pub fn validate_owned(
    plan: PlanFile,
    roles: &RoleSet,
    existing: &dyn Fn(&str) -> Option<TaskId>,
    key_taken: &dyn Fn(&str) -> bool,
) -> Result<ValidatedPlan, PlanErrors> {
    let (expanded, problems) = expand_consensus(&plan);
    let mut plan = match expanded {
        std::borrow::Cow::Owned(expanded) => expanded,
        std::borrow::Cow::Borrowed(_) => plan,
    };
    let (mut out, order, parents) = check(&plan, problems, roles, existing, key_taken)?;
    out.tasks = order
        .iter()
        .map(|&i| ValidatedTask {
            new: new_task_owned(std::mem::take(&mut plan.tasks[i])),
            parent: None,
        })
        .collect();
    drop(plan);
    renumber(&order, &parents, &mut out);
    Ok(out)
}

/// The checks of [`validate`] on a plan whose consensus tasks are written out (`problems`:
/// those of their specs): the plan's name, roles, edges and records, the order its tasks go in
/// (parents first) and each task's parent, or everything wrong with it.
#[allow(clippy::type_complexity)]
fn check(
    plan: &PlanFile,
    problems: Vec<String>,
    roles: &RoleSet,
    existing: &dyn Fn(&str) -> Option<TaskId>,
    key_taken: &dyn Fn(&str) -> bool,
) -> Result<(ValidatedPlan, Vec<usize>, Vec<Option<TaskRef>>), PlanErrors> {
    let mut v = Validation {
        plan,
        existing,
        keys: foldhash::HashMap::with_capacity_and_hasher(plan.tasks.len(), Default::default()),
        problems,
    };
    let mut out = ValidatedPlan {
        name: plan.plan.name.clone(),
        ..Default::default()
    };
    let roles = v.check_roles(roles, &mut out.roles);
    v.check_tasks(&roles, key_taken);
    let parents = v.check_references(&mut out.edges);
    let order = v.parent_order(&parents);
    v.check_records(&mut out);
    if !v.problems.is_empty() {
        return Err(PlanErrors {
            problems: v.problems,
        });
    }
    Ok((out, order, parents))
}

/// The plan with every consensus task written out: the task itself becomes a container
/// (tagged `consensus`, its own execution settings dropped), followed by its N answer
/// subtasks and its resolve subtask, which depends on every answer (names and texts from
/// [`consensus`]). Tasks without `consensus` are left as they are, so expanding twice changes
/// nothing. Returns the problems of the consensus specs too; a task whose spec has a problem is
/// kept as an ordinary task.
pub fn expand_consensus(plan: &PlanFile) -> (std::borrow::Cow<'_, PlanFile>, Vec<String>) {
    let mut problems = Vec::new();
    // Most plans have none: no copy of a plan of a million tasks.
    if plan.tasks.iter().all(|t| t.consensus.is_none()) {
        return (std::borrow::Cow::Borrowed(plan), problems);
    }
    let mut out = PlanFile {
        plan: plan.plan.clone(),
        roles: plan.roles.clone(),
        objectives: plan.objectives.clone(),
        tasks: Vec::with_capacity(plan.tasks.len()),
        decisions: plan.decisions.clone(),
        insights: plan.insights.clone(),
    };
    for (i, t) in plan.tasks.iter().enumerate() {
        let Some(spec) = &t.consensus else {
            out.tasks.push(t.clone());
            continue;
        };
        let mut plain = t.clone();
        plain.consensus = None;
        let n = match spec.answers() {
            Ok(n) => n,
            Err(e) => {
                problems.push(format!("{}: {e}", task_label(i, t)));
                out.tasks.push(plain);
                continue;
            }
        };
        let Some(key) = t.key.clone() else {
            problems.push(format!(
                "{}: a consensus task needs a `key` (its answers are named after it)",
                task_label(i, t)
            ));
            out.tasks.push(plain);
            continue;
        };
        if !spec.executors.is_empty() && (t.command.is_some() || t.shell.is_some()) {
            problems.push(format!(
                "{}: consensus `executors` and a `command` or `shell` do not go together",
                task_label(i, t)
            ));
            out.tasks.push(plain);
            continue;
        }
        out.tasks.extend(consensus_tasks(plain, spec, &key, n));
    }
    (std::borrow::Cow::Owned(out), problems)
}

/// A consensus task written out: the container, its answers, its resolve task.
fn consensus_tasks(t: PlanTask, spec: &ConsensusSpec, key: &str, n: u32) -> Vec<PlanTask> {
    let with_tag = |tag: &str| {
        let mut tags = t.tags.clone();
        tags.push(tag.to_owned());
        tags
    };
    let mut out = Vec::with_capacity(n as usize + 2);
    for j in 1..=n {
        out.push(PlanTask {
            key: Some(consensus::answer_key(key, j)),
            title: consensus::answer_title(&t.title, j, n),
            parent: Some(key.to_owned()),
            depends_on: Vec::new(),
            related: Vec::new(),
            discovered_from: Vec::new(),
            tags: with_tag(consensus::ANSWER_TAG),
            executor: spec
                .executor_of(j as usize - 1)
                .map(str::to_owned)
                .or_else(|| t.executor.clone()),
            consensus: None,
            ..t.clone()
        });
    }
    out.push(PlanTask {
        key: Some(consensus::resolve_key(key)),
        title: consensus::resolve_title(&t.title),
        description: consensus::resolve_description(&t.title, &t.description, n),
        role: Some(spec.resolver().to_owned()),
        parent: Some(key.to_owned()),
        depends_on: (1..=n).map(|j| consensus::answer_key(key, j)).collect(),
        related: Vec::new(),
        discovered_from: Vec::new(),
        effort: None,
        files: Vec::new(),
        tags: with_tag(consensus::RESOLVE_TAG),
        executor: None,
        command: None,
        shell: None,
        timeout: None,
        max_attempts: None,
        consensus: None,
        ..t.clone()
    });
    let container = PlanTask {
        tags: with_tag(consensus::TAG),
        files: Vec::new(),
        executor: None,
        command: None,
        shell: None,
        timeout: None,
        max_attempts: None,
        consensus: None,
        ..t
    };
    out.insert(0, container);
    out
}

/// How problems name a task of the plan: by key, else by position and title.
pub fn task_label(i: usize, t: &PlanTask) -> String {
    match &t.key {
        Some(k) => format!("task `{k}`"),
        None => format!("task #{} (\"{}\")", i + 1, t.title),
    }
}

/// The state shared by the steps of [`validate`]: the plan, how to find stored tasks, the
/// plan's own keys, and the problems found so far (in the order they are reported).
struct Validation<'a> {
    plan: &'a PlanFile,
    existing: &'a dyn Fn(&str) -> Option<TaskId>,
    keys: foldhash::HashMap<&'a str, usize>,
    problems: Vec<String>,
}

impl<'a> Validation<'a> {
    /// Checks the roles the plan declares and merges them into a copy of `roles`, which is
    /// returned: roles declared by the plan count as known.
    fn check_roles(&mut self, roles: &RoleSet, accepted: &mut Vec<(String, RoleFile)>) -> RoleSet {
        let mut roles = roles.clone();
        for r in &self.plan.roles {
            if let Err(e) = check_role_name(&r.name) {
                self.problems.push(e.to_string());
                continue;
            }
            let file = RoleFile {
                description: r.description.clone(),
                prompt: r.prompt.clone(),
                max_parallel: r.max_parallel,
                stale_after: r.stale_after.clone(),
            };
            match roles.merge(&r.name, "plan", file.clone()) {
                Ok(()) => accepted.push((r.name.clone(), file)),
                Err(e) => self.problems.push(e.to_string()),
            }
        }
        roles
    }

    /// Checks each task's own fields and key, recording the keys for [`Self::resolve`].
    fn check_tasks(&mut self, roles: &RoleSet, key_taken: &dyn Fn(&str) -> bool) {
        let plan = self.plan;
        for (i, t) in plan.tasks.iter().enumerate() {
            if let Err(e) = validate_fields(&t.title, t.key.as_deref()) {
                self.problems.push(format!("{}: {e}", task_label(i, t)));
            }
            if let Some(k) = t.key.as_deref() {
                if self.keys.contains_key(k) {
                    self.problems
                        .push(format!("task key `{k}` is used twice in the plan"));
                } else if key_taken(k) {
                    self.problems.push(format!(
                        "task key `{k}` is already used by a task in the project"
                    ));
                }
                self.keys.entry(k).or_insert(i);
            }
            if let Some(r) = &t.role
                && !roles.contains(r)
            {
                self.problems.push(format!(
                    "{}: unknown role `{r}` (known: {})",
                    task_label(i, t),
                    roles.names().join(", ")
                ));
            }
            if let Some(p) = &t.priority
                && let Err(e) = p.parse::<Priority>()
            {
                self.problems.push(format!("{}: {e}", task_label(i, t)));
            }
            if let Some(d) = &t.timeout
                && let Err(e) = Millis::parse(d)
            {
                self.problems
                    .push(format!("{}: timeout: {e}", task_label(i, t)));
            }
            if let Err(e) = executor_setting(
                t.executor.as_deref(),
                t.command.as_deref(),
                t.shell.as_deref(),
            ) {
                self.problems.push(format!("{}: {e}", task_label(i, t)));
            }
            if t.max_attempts == Some(0) {
                self.problems.push(format!(
                    "{}: max_attempts must be at least 1",
                    task_label(i, t)
                ));
            }
        }
    }

    /// A plan key first, then a stored task.
    fn resolve(&self, r: &str) -> Option<TaskRef> {
        if let Some(&i) = self.keys.get(r) {
            return Some(TaskRef::New(i));
        }
        (self.existing)(r).map(TaskRef::Existing)
    }

    /// [`Self::resolve`], reporting a reference that resolves to nothing (`who` names the
    /// entry that makes it, only then).
    fn resolve_or_report(
        &mut self,
        who: impl FnOnce() -> String,
        what: &str,
        r: &str,
    ) -> Option<TaskRef> {
        let got = self.resolve(r);
        if got.is_none() {
            self.problems.push(format!(
                "{}: {what} `{r}` is neither a task key in this plan nor an existing task",
                who()
            ));
        }
        got
    }

    /// Resolves each task's parent (returned, one per task) and its edges (into `edges`, once
    /// each, leaving out edges from a task to itself), and reports tasks that are their own
    /// parent or name themselves in an edge list (after the other problems of the references).
    fn check_references(
        &mut self,
        edges: &mut Vec<(TaskRef, TaskRef, EdgeKind)>,
    ) -> Vec<Option<TaskRef>> {
        let plan = self.plan;
        let mut parents: Vec<Option<TaskRef>> = Vec::with_capacity(plan.tasks.len());
        let mut own = Vec::new();
        for (i, t) in plan.tasks.iter().enumerate() {
            let me = TaskRef::New(i);
            let label = || task_label(i, t);
            let parent = t
                .parent
                .as_deref()
                .and_then(|p| self.resolve_or_report(label, "parent", p));
            if parent == Some(me) {
                own.push(format!("{}: a task cannot be its own parent", label()));
            }
            parents.push(parent);
            // Every edge of this task ends at it: a repeated one can only repeat one of its own.
            let first = edges.len();
            let mut many = None;
            for (list, kind, what) in [
                (&t.depends_on, EdgeKind::Blocks, "dependency"),
                (&t.related, EdgeKind::Related, "related task"),
                (
                    &t.discovered_from,
                    EdgeKind::DiscoveredFrom,
                    "discovered-from task",
                ),
            ] {
                let mut names_itself = false;
                for r in list {
                    let Some(from) = self.resolve_or_report(label, what, r) else {
                        continue;
                    };
                    if from == me {
                        names_itself = true;
                    } else if !repeats(&edges[first..], &mut many, from, kind) {
                        edges.push((from, me, kind));
                    }
                }
                if names_itself {
                    own.push(format!("{}: a task cannot depend on itself", label()));
                }
            }
        }
        self.problems.append(&mut own);
        parents
    }

    /// Parent order (parents before children); a parent loop among new tasks is reported and
    /// the plan's own order returned in its place.
    fn parent_order(&mut self, parents: &[Option<TaskRef>]) -> Vec<usize> {
        match parent_order(parents) {
            Ok(o) => o,
            Err(cycle) => {
                let plan = self.plan;
                let names: Vec<String> = cycle
                    .iter()
                    .map(|&i| task_label(i, &plan.tasks[i]))
                    .collect();
                self.problems
                    .push(format!("parent loop: {}", names.join(" → ")));
                (0..plan.tasks.len()).collect()
            }
        }
    }

    /// Checks the objectives, decisions and insights and resolves their task references into
    /// `out`.
    fn check_records(&mut self, out: &mut ValidatedPlan) {
        let plan = self.plan;
        for o in &plan.objectives {
            if o.title.trim().is_empty() {
                self.problems
                    .push("an objective needs a non-empty title".into());
            }
            let refs = o
                .tasks
                .iter()
                .filter_map(|r| {
                    self.resolve_or_report(|| format!("objective \"{}\"", o.title), "task", r)
                })
                .collect();
            out.objectives.push((o.title.clone(), refs));
        }
        for d in &plan.decisions {
            if d.text.trim().is_empty() {
                self.problems
                    .push("a decision needs a non-empty text".into());
            }
            let task = d.task.as_deref().and_then(|r| {
                self.resolve_or_report(|| format!("decision \"{}\"", d.text), "task", r)
            });
            out.decisions.push((d.text.clone(), d.why.clone(), task));
        }
        for ins in &plan.insights {
            if ins.text.trim().is_empty() {
                self.problems
                    .push("an insight needs a non-empty text".into());
            }
            let task = ins.task.as_deref().and_then(|r| {
                self.resolve_or_report(|| format!("insight \"{}\"", ins.text), "task", r)
            });
            out.insights.push((ins.text.clone(), task));
        }
    }
}

/// Fills `out.tasks` in `order` (parents first) and renumbers every [`TaskRef::New`] in `out`
/// to match.
fn renumber(order: &[usize], parents: &[Option<TaskRef>], out: &mut ValidatedPlan) {
    let mut new_index = vec![0usize; parents.len()];
    for (pos, &i) in order.iter().enumerate() {
        new_index[i] = pos;
    }
    let remap = |r: TaskRef| match r {
        TaskRef::New(i) => TaskRef::New(new_index[i]),
        e => e,
    };
    for (t, &i) in out.tasks.iter_mut().zip(order) {
        t.parent = parents[i].map(remap);
    }
    for e in &mut out.edges {
        e.0 = remap(e.0);
        e.1 = remap(e.1);
    }
    for o in &mut out.objectives {
        for r in &mut o.1 {
            *r = remap(*r);
        }
    }
    for d in &mut out.decisions {
        d.2 = d.2.map(remap);
    }
    for ins in &mut out.insights {
        ins.1 = ins.1.map(remap);
    }
}

/// [`new_task`], moving the texts out of the plan task.
fn new_task_owned(t: PlanTask) -> NewTask {
    let (exec, priority) = (exec_of(&t), priority_of(&t));
    let title = if t.title.trim().len() == t.title.len() {
        t.title
    } else {
        t.title.trim().to_owned()
    };
    NewTask {
        exec,
        key: t.key,
        parent: None,
        title,
        description: t.description,
        role: t.role,
        priority,
        effort: t.effort.unwrap_or(1),
        acceptance: t.acceptance,
        tags: t.tags,
        footprint: t.files,
    }
}

/// The task to insert for a plan task that passed validation (its parent is set apart).
fn new_task(t: &PlanTask) -> NewTask {
    NewTask {
        exec: exec_of(t),
        key: t.key.clone(),
        parent: None,
        title: t.title.trim().to_owned(),
        description: t.description.clone(),
        role: t.role.clone(),
        priority: priority_of(t),
        effort: t.effort.unwrap_or(1),
        acceptance: t.acceptance.clone(),
        tags: t.tags.clone(),
        footprint: t.files.clone(),
    }
}

/// A validated plan task's execution settings.
fn exec_of(t: &PlanTask) -> ExecSettings {
    ExecSettings {
        executor: executor_setting(
            t.executor.as_deref(),
            t.command.as_deref(),
            t.shell.as_deref(),
        )
        .unwrap_or_else(|_| t.executor.clone()),
        timeout: t
            .timeout
            .as_deref()
            .and_then(|d| Millis::parse(d).ok())
            .map(Millis::duration),
        max_attempts: t.max_attempts,
    }
}

/// A validated plan task's priority.
fn priority_of(t: &PlanTask) -> Priority {
    t.priority
        .as_deref()
        .and_then(|p| p.parse().ok())
        .unwrap_or_default()
}

/// Whether the edge from `from` of `kind` repeats one of `edges` (all of them ending at the
/// same task): a scan while the task has few, then a set (`many`) that remembers each one
/// asked about.
fn repeats(
    edges: &[(TaskRef, TaskRef, EdgeKind)],
    many: &mut Option<foldhash::HashSet<(TaskRef, EdgeKind)>>,
    from: TaskRef,
    kind: EdgeKind,
) -> bool {
    if many.is_none() && edges.len() <= 16 {
        return edges.iter().any(|e| e.0 == from && e.2 == kind);
    }
    let set = many.get_or_insert_with(|| edges.iter().map(|e| (e.0, e.2)).collect());
    !set.insert((from, kind))
}

/// Orders new tasks so every parent precedes its children; on a loop, returns it.
fn parent_order(parents: &[Option<TaskRef>]) -> Result<Vec<usize>, Vec<usize>> {
    let n = parents.len();
    let mut state = vec![0u8; n]; // 0 = unvisited, 1 = on stack, 2 = done
    let mut order = Vec::with_capacity(n);
    for start in 0..n {
        if state[start] != 0 {
            continue;
        }
        // Walk up the parent chain, then emit top-down.
        let mut chain = Vec::new();
        let mut cur = start;
        loop {
            if state[cur] == 2 {
                break;
            }
            if state[cur] == 1 {
                let pos = chain.iter().position(|&c| c == cur).unwrap_or(0);
                return Err(chain[pos..].to_vec());
            }
            state[cur] = 1;
            chain.push(cur);
            match parents[cur] {
                Some(TaskRef::New(p)) => cur = p,
                _ => break,
            }
        }
        for &c in chain.iter().rev() {
            state[c] = 2;
            order.push(c);
        }
    }
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roles() -> RoleSet {
        RoleSet::builtin()
    }

    fn check(text: &str) -> Result<ValidatedPlan, PlanErrors> {
        let plan = parse(text, PlanFormat::Toml).unwrap();
        validate(&plan, &roles(), &|_| None, &|_| false)
    }

    #[test]
    fn a_good_plan_orders_parents_first() {
        let v = check(
            r#"
            [[tasks]]
            key = "child"
            title = "Child"
            parent = "epic"
            depends_on = ["other"]
            [[tasks]]
            key = "epic"
            title = "Epic"
            [[tasks]]
            key = "other"
            title = "Other"
            role = "tester"
            priority = "high"
            effort = 3
            "#,
        )
        .unwrap();
        let titles: Vec<_> = v.tasks.iter().map(|t| t.new.title.as_str()).collect();
        assert_eq!(titles, ["Epic", "Child", "Other"]);
        assert_eq!(v.tasks[1].parent, Some(TaskRef::New(0)));
        assert_eq!(
            v.edges,
            [(TaskRef::New(2), TaskRef::New(1), EdgeKind::Blocks)]
        );
    }

    #[test]
    fn every_problem_is_reported_with_its_task() {
        let err = check(
            r#"
            [[tasks]]
            key = "a"
            title = "A"
            role = "wizard"
            depends_on = ["nope", "a"]
            [[tasks]]
            key = "a"
            title = "Again"
            priority = "urgent"
            [[tasks]]
            key = "p"
            title = "P"
            parent = "q"
            [[tasks]]
            key = "q"
            title = "Q"
            parent = "p"
            "#,
        )
        .unwrap_err();
        let all = err.problems.join("\n");
        assert!(all.contains("task key `a` is used twice"), "{all}");
        assert!(all.contains("unknown role `wizard`"), "{all}");
        assert!(all.contains("dependency `nope` is neither"), "{all}");
        assert!(all.contains("cannot depend on itself"), "{all}");
        assert!(all.contains("unknown priority `urgent`"), "{all}");
        assert!(all.contains("parent loop"), "{all}");
    }

    #[test]
    fn a_repeated_reference_makes_one_edge() {
        // Few references are compared one by one; a task with many goes through a set.
        let many: Vec<String> = (0..40).map(|i| format!("\"d{}\"", i % 20)).collect();
        let mut text = String::new();
        for i in 0..20 {
            text.push_str(&format!("[[tasks]]\nkey = \"d{i}\"\ntitle = \"D{i}\"\n"));
        }
        text.push_str(&format!(
            "[[tasks]]\nkey = \"few\"\ntitle = \"Few\"\ndepends_on = [\"d1\", \"d2\", \"d1\"]\nrelated = [\"d1\"]\n\
             [[tasks]]\nkey = \"many\"\ntitle = \"Many\"\ndepends_on = [{}]\n",
            many.join(", ")
        ));
        let v = check(&text).unwrap();
        let into = |i: usize| {
            let mut e: Vec<_> = v
                .edges
                .iter()
                .filter(|e| e.1 == TaskRef::New(i))
                .map(|e| (e.0, e.2))
                .collect();
            e.sort();
            e
        };
        assert_eq!(
            into(20),
            [
                (TaskRef::New(1), EdgeKind::Blocks),
                (TaskRef::New(1), EdgeKind::Related),
                (TaskRef::New(2), EdgeKind::Blocks)
            ]
        );
        let many = into(21);
        assert_eq!(many.len(), 20, "{many:?}");
        assert!(many.iter().all(|e| e.1 == EdgeKind::Blocks));
    }

    #[test]
    fn parse_errors_carry_a_location() {
        let err = parse("[[tasks]]\ntitle = \n", PlanFormat::Toml).unwrap_err();
        assert!(err.message.contains("line 2"), "{}", err.message);
        let err = parse("{\"tasks\": [ {\"titel\": \"x\"} ]}", PlanFormat::Json).unwrap_err();
        assert!(
            err.message.contains("unknown field `titel`"),
            "{}",
            err.message
        );
        assert!(err.message.contains("column"), "{}", err.message);
        let err = parse("tasks:\n  - title: x\n    effort: lots\n", PlanFormat::Yaml).unwrap_err();
        assert!(err.message.contains('3'), "{}", err.message);
    }

    #[test]
    fn a_task_command_becomes_its_process_executor() {
        let v = check(
            r#"
            [[tasks]]
            title = "Test"
            command = "cargo test --workspace"
            timeout = "30m"
            max_attempts = 2
            [[tasks]]
            title = "Lint"
            shell = "cargo fmt --check && cargo clippy"
            "#,
        )
        .unwrap();
        assert_eq!(
            v.tasks[0].new.exec.executor.as_deref(),
            Some(r#"{"argv":["cargo","test","--workspace"],"type":"process"}"#)
        );
        assert_eq!(v.tasks[0].new.exec.max_attempts, Some(2));
        assert!(
            v.tasks[1]
                .new
                .exec
                .executor
                .as_deref()
                .unwrap()
                .contains("\"shell\"")
        );
        let err = check(
            r#"
            [[tasks]]
            key = "t"
            title = "T"
            executor = "claude"
            command = "make"
            [[tasks]]
            key = "u"
            title = "U"
            command = "echo 'open"
            "#,
        )
        .unwrap_err();
        let all = err.problems.join("\n");
        assert!(
            all.contains("task `t`: a command or a shell line goes with the process executor"),
            "{all}"
        );
        assert!(
            all.contains("task `u`: command `echo 'open` has an unclosed quote"),
            "{all}"
        );
    }

    #[test]
    fn a_consensus_task_becomes_a_container_with_answers_and_a_resolve_task() {
        let v = check(
            r#"
            [[tasks]]
            key = "lib"
            title = "Choose an auth library"
            description = "Which library?"
            role = "architect"
            consensus = { executors = ["claude", "codex", "gemini"], resolver = "security" }
            [[tasks]]
            key = "build"
            title = "Build it"
            depends_on = ["lib"]
            "#,
        )
        .unwrap();
        let keys: Vec<_> = v
            .tasks
            .iter()
            .map(|t| t.new.key.as_deref().unwrap())
            .collect();
        assert_eq!(
            keys,
            [
                "lib",
                "lib.answer-1",
                "lib.answer-2",
                "lib.answer-3",
                "lib.resolve",
                "build"
            ]
        );
        assert!(v.tasks[0].new.tags.contains(&"consensus".to_owned()));
        let execs: Vec<_> = v.tasks[1..4]
            .iter()
            .map(|t| t.new.exec.executor.as_deref().unwrap())
            .collect();
        assert_eq!(execs, ["claude", "codex", "gemini"]);
        assert_eq!(
            v.tasks[2].new.title,
            "Choose an auth library (answer 2 of 3)"
        );
        assert_eq!(v.tasks[2].new.role.as_deref(), Some("architect"));
        assert_eq!(v.tasks[2].parent, Some(TaskRef::New(0)));
        let resolve = &v.tasks[4];
        assert_eq!(resolve.new.role.as_deref(), Some("security"));
        assert!(resolve.new.description.contains("Which library?"));
        for a in 1..4 {
            assert!(
                v.edges
                    .contains(&(TaskRef::New(a), TaskRef::New(4), EdgeKind::Blocks))
            );
        }
        // Dependents wait for the container, so for the decision.
        assert!(
            v.edges
                .contains(&(TaskRef::New(0), TaskRef::New(5), EdgeKind::Blocks))
        );
    }

    #[test]
    fn consensus_problems_are_reported_with_their_task() {
        let err = check(
            r#"
            [[tasks]]
            key = "one"
            title = "One answer"
            consensus = 1
            [[tasks]]
            title = "No key"
            consensus = 3
            [[tasks]]
            key = "odd"
            title = "Odd"
            consensus = { n = 3, executors = ["claude"] }
            [[tasks]]
            key = "who"
            title = "Who resolves"
            consensus = { n = 2, resolver = "wizard" }
            "#,
        )
        .unwrap_err();
        let all = err.problems.join("\n");
        assert!(
            all.contains("task `one`: consensus needs at least 2 answers to compare, got 1"),
            "{all}"
        );
        assert!(
            all.contains("task #2 (\"No key\"): a consensus task needs a `key`"),
            "{all}"
        );
        assert!(
            all.contains("task `odd`: consensus names 1 executor for 3 answers"),
            "{all}"
        );
        assert!(
            all.contains("task `who.resolve`: unknown role `wizard`"),
            "{all}"
        );
    }

    #[test]
    fn a_consensus_plan_writes_back_as_it_was_written() {
        let text = "[[tasks]]\nkey = \"q\"\ntitle = \"Q\"\nconsensus = 3\n";
        let plan = parse(text, PlanFormat::Toml).unwrap();
        let back = to_text(&plan, PlanFormat::Toml).unwrap();
        assert_eq!(parse(&back, PlanFormat::Toml).unwrap(), plan);
        assert!(back.contains("consensus = 3"), "{back}");
        let (expanded, problems) = expand_consensus(&plan);
        assert!(problems.is_empty());
        assert_eq!(*expand_consensus(&expanded).0, *expanded);
        // A plan without consensus tasks is not copied.
        assert!(matches!(
            expand_consensus(&expanded).0,
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn yaml_and_json_plans_parse() {
        let y = parse("tasks:\n  - key: a\n    title: A\n", PlanFormat::Yaml).unwrap();
        let j = parse(r#"{"tasks":[{"key":"a","title":"A"}]}"#, PlanFormat::Json).unwrap();
        assert_eq!(y, j);
    }

    #[test]
    fn references_to_existing_tasks_resolve() {
        let plan = parse(
            "[[tasks]]\ntitle = \"T\"\ndepends_on = [\"old\"]\n",
            PlanFormat::Toml,
        )
        .unwrap();
        let id = TaskId::from_seq(7).unwrap();
        let v = validate(&plan, &roles(), &|r| (r == "old").then_some(id), &|_| false).unwrap();
        assert_eq!(v.edges[0].0, TaskRef::Existing(id));
    }
}
