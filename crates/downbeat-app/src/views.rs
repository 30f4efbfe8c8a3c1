//! Read models of the whole project: the planned view, per-role counts, and the graph as
//! Mermaid or Graphviz text.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;

use downbeat_core::graph::Progress;
use downbeat_core::ids::TaskId;
use downbeat_core::report::ProjectView;
use downbeat_core::task::{EdgeKind, Status, Task};
use downbeat_store::view;

use crate::error::{Error, Kind};
use crate::project::Project;
use crate::tasks::{resolve, shown_status};
use downbeat_store::TaskFilter;

/// A text format of the task graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphFormat {
    Mermaid,
    Dot,
    Json,
}

/// The graph and its plan under `settings` (worker counts for the makespan, caps).
pub async fn planned_with(
    p: &Project,
    settings: &downbeat_core::graph::PlanSettings,
) -> Result<
    (
        downbeat_core::graph::GraphSnapshot,
        downbeat_core::graph::Planned,
    ),
    Error,
> {
    let snap = p.store.graph().await?;
    let planned = downbeat_core::graph::plan(&snap, settings)
        .map_err(|c| Error::new(Kind::Conflict, c.to_string()))?;
    Ok((snap, planned))
}

pub async fn view(p: &Project) -> Result<ProjectView, Error> {
    view::load(p.store.as_ref(), &p.plan_settings())
        .await
        .map_err(|e| match e {
            downbeat_store::Error::Cycle(c) => Error::new(
                Kind::Conflict,
                format!("the stored graph is damaged: {c}"),
            )
            .with_hint(
                "run `downbeat maintain` and remove one of the dependencies with `downbeat dep rm`",
            ),
            other => other.into(),
        })
}

/// Leaves per role: (done, total); `(none)` for tasks without a role.
pub fn per_role(v: &ProjectView) -> BTreeMap<String, (u64, u64)> {
    per_role_of(
        v.tasks.iter().map(|t| (t.id, t.role.as_deref(), t.status)),
        &v.rollup,
    )
}

/// (done, total) leaves per role of the given (id, role, status) tasks; containers (per
/// `rollup`) are left out.
pub fn per_role_of<'a>(
    tasks: impl IntoIterator<Item = (TaskId, Option<&'a str>, Status)>,
    rollup: &HashMap<TaskId, Progress>,
) -> BTreeMap<String, (u64, u64)> {
    let mut per_role: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for (id, role, status) in tasks {
        if rollup.get(&id).is_some_and(|r| r.is_container) {
            continue;
        }
        let e = per_role
            .entry(role.unwrap_or("(none)").to_owned())
            .or_default();
        e.1 += 1;
        if status.satisfies_dependents() {
            e.0 += 1;
        }
    }
    per_role
}

/// Fill and outline colours of a status as people see it (dot and Mermaid alike).
fn status_colours(shown: &str) -> (&'static str, &'static str) {
    match shown {
        "completed" => ("#d1fae5", "#2e9e57"),
        "running" => ("#fef3c7", "#e8a317"),
        "ready" => ("#dbeafe", "#2f6fde"),
        "failed" => ("#fee2e2", "#d64545"),
        "blocked" | "stuck" => ("#ffedd5", "#b4532a"),
        "cancelled" => ("#ede9fe", "#7c6f8f"),
        "skipped" => ("#ecfdf5", "#8fb49b"),
        _ => ("#f3f4f6", "#9aa3ae"),
    }
}

/// The colour of the critical path.
const CRITICAL: &str = "#c2185b";

/// Text Mermaid shows as it is: `#`, `&`, `<`, `>` and `"` as entity codes.
fn mermaid_escape(x: &str) -> String {
    x.replace('#', "#35;")
        .replace('&', "#amp;")
        .replace('<', "#lt;")
        .replace('>', "#gt;")
        .replace('"', "#quot;")
}

fn dot_escape(x: &str) -> String {
    x.replace('\\', "\\\\").replace('"', "\\\"")
}

/// What both text formats need: the tree, labels, statuses and the critical path.
struct GraphText<'a> {
    v: &'a ProjectView,
    pending: crate::tasks::Pending,
    kids: BTreeMap<Option<TaskId>, Vec<&'a Task>>,
    critical: HashSet<TaskId>,
    /// Consecutive tasks of the critical path: the edges on it.
    critical_edges: HashSet<(TaskId, TaskId)>,
}

impl<'a> GraphText<'a> {
    fn new(v: &'a ProjectView) -> Self {
        let live: HashSet<TaskId> = v.tasks.iter().map(|t| t.id).collect();
        let mut kids: BTreeMap<Option<TaskId>, Vec<&Task>> = BTreeMap::new();
        for t in &v.tasks {
            kids.entry(t.parent.filter(|p| live.contains(p)))
                .or_default()
                .push(t);
        }
        let path = &v.planned.critical_path;
        Self {
            v,
            pending: crate::tasks::Pending::of(&v.planned),
            kids,
            critical: path.iter().copied().collect(),
            critical_edges: path.windows(2).map(|w| (w[0], w[1])).collect(),
        }
    }

    fn shown(&self, t: &Task) -> String {
        shown_status(t, &self.v.rollup, &self.pending)
    }

    fn label(&self, t: &Task) -> String {
        let role = t
            .role
            .as_deref()
            .map(|r| format!(" · {r}"))
            .unwrap_or_default();
        format!("{} {}{role} · {}", t.id, t.title, self.shown(t))
    }

    /// A leaf inside container `id` (the first, depth first), where dot attaches the edges of
    /// the container's cluster.
    fn inner_leaf(&self, id: TaskId) -> TaskId {
        let mut cur = id;
        while let Some(first) = self.kids.get(&Some(cur)).and_then(|k| k.first()) {
            cur = first.id;
        }
        cur
    }

    fn is_container(&self, id: TaskId) -> bool {
        self.kids.contains_key(&Some(id))
    }

    fn mermaid(&self) -> String {
        let mut s = String::from("flowchart TD\n");
        // Containers become subgraphs; walk the tree with an explicit stack.
        let mut stack: Vec<(Option<&Task>, usize)> = self
            .kids
            .get(&None)
            .map(|r| r.iter().rev().map(|t| (Some(*t), 1)).collect())
            .unwrap_or_default();
        let mut classes: BTreeMap<String, Vec<TaskId>> = BTreeMap::new();
        while let Some((t, d)) = stack.pop() {
            let pad = "  ".repeat(d.min(20));
            let Some(t) = t else {
                let _ = writeln!(s, "{pad}end");
                continue;
            };
            let text = mermaid_escape(&self.label(t));
            match self.kids.get(&Some(t.id)) {
                Some(ch) => {
                    let _ = writeln!(s, "{pad}subgraph {}[\"{text}\"]", t.id);
                    stack.push((None, d));
                    for c in ch.iter().rev() {
                        stack.push((Some(c), d + 1));
                    }
                }
                None => {
                    let _ = writeln!(s, "{pad}{}[\"{text}\"]", t.id);
                    classes.entry(self.shown(t)).or_default().push(t.id);
                }
            }
        }
        let mut critical_links = Vec::new();
        for (i, e) in self.v.edges.iter().enumerate() {
            let arrow = match e.kind {
                EdgeKind::Blocks => "-->",
                EdgeKind::Related => "-.-",
                EdgeKind::DiscoveredFrom => "-. discovered .->",
            };
            let _ = writeln!(s, "  {} {arrow} {}", e.from, e.to);
            if self.critical_edges.contains(&(e.from, e.to)) {
                critical_links.push(i.to_string());
            }
        }
        for (status, ids) in &classes {
            let (fill, stroke) = status_colours(status);
            let name = format!("st_{}", status.replace('-', "_"));
            let _ = writeln!(s, "  classDef {name} fill:{fill},stroke:{stroke};");
            let list: Vec<String> = ids.iter().map(ToString::to_string).collect();
            let _ = writeln!(s, "  class {} {name};", list.join(","));
        }
        let critical: Vec<String> = self
            .v
            .planned
            .critical_path
            .iter()
            .filter(|t| !self.is_container(**t))
            .map(ToString::to_string)
            .collect();
        if !critical.is_empty() {
            let _ = writeln!(s, "  classDef critical stroke:{CRITICAL},stroke-width:3px;");
            let _ = writeln!(s, "  class {} critical;", critical.join(","));
        }
        if !critical_links.is_empty() {
            let _ = writeln!(
                s,
                "  linkStyle {} stroke:{CRITICAL},stroke-width:2px;",
                critical_links.join(",")
            );
        }
        s
    }

    fn dot(&self) -> String {
        let mut s = String::from(
            "digraph downbeat {\n  rankdir=LR;\n  compound=true;\n  node [shape=box, style=\"rounded,filled\"];\n",
        );
        let mut stack: Vec<(Option<&Task>, usize, bool)> = self
            .kids
            .get(&None)
            .map(|r| r.iter().rev().map(|t| (Some(*t), 1, false)).collect())
            .unwrap_or_default();
        while let Some((t, d, close)) = stack.pop() {
            let pad = "  ".repeat(d.min(20));
            let Some(t) = t else {
                if close {
                    let _ = writeln!(s, "{pad}}}");
                }
                continue;
            };
            let text = dot_escape(&self.label(t));
            match self.kids.get(&Some(t.id)) {
                Some(ch) => {
                    let _ = writeln!(
                        s,
                        "{pad}subgraph \"cluster_{}\" {{\n{pad}  label=\"{text}\";",
                        t.id
                    );
                    stack.push((None, d, true));
                    for c in ch.iter().rev() {
                        stack.push((Some(c), d + 1, false));
                    }
                }
                None => {
                    let (fill, stroke) = status_colours(&self.shown(t));
                    let crit = if self.critical.contains(&t.id) {
                        format!(", color=\"{CRITICAL}\", penwidth=3")
                    } else {
                        format!(", color=\"{stroke}\"")
                    };
                    let _ = writeln!(
                        s,
                        "{pad}\"{}\" [label=\"{text}\", fillcolor=\"{fill}\"{crit}];",
                        t.id
                    );
                }
            }
        }
        for e in &self.v.edges {
            // A container is a cluster: its edges attach to a leaf inside and are clipped at
            // the cluster's border (`ltail`/`lhead`), never to a node of its own.
            let mut attrs: Vec<String> = match e.kind {
                EdgeKind::Blocks => Vec::new(),
                EdgeKind::Related => vec!["style=dashed".into(), "arrowhead=none".into()],
                EdgeKind::DiscoveredFrom => {
                    vec!["style=dotted".into(), "label=\"discovered\"".into()]
                }
            };
            let (mut from, mut to) = (e.from, e.to);
            if self.is_container(e.from) {
                from = self.inner_leaf(e.from);
                attrs.push(format!("ltail=\"cluster_{}\"", e.from));
            }
            if self.is_container(e.to) {
                to = self.inner_leaf(e.to);
                attrs.push(format!("lhead=\"cluster_{}\"", e.to));
            }
            if self.critical_edges.contains(&(e.from, e.to)) {
                attrs.push(format!("color=\"{CRITICAL}\", penwidth=2"));
            }
            let attrs = if attrs.is_empty() {
                String::new()
            } else {
                format!(" [{}]", attrs.join(", "))
            };
            let _ = writeln!(s, "  \"{from}\" -> \"{to}\"{attrs};");
        }
        s.push_str("}\n");
        s
    }
}

/// The task graph as Mermaid or Graphviz dot text: containers as subgraphs, nodes coloured by
/// the status people see, the remaining critical path outlined (and its edges drawn) in one
/// colour.
pub fn render_graph(v: &ProjectView, format: GraphFormat) -> String {
    let g = GraphText::new(v);
    match format {
        GraphFormat::Json => String::new(),
        GraphFormat::Mermaid => g.mermaid(),
        GraphFormat::Dot => g.dot(),
    }
}

/// What a task list asks for; the statuses and references are checked here.
#[derive(Debug, Default, Clone)]
pub struct ListQuery {
    pub statuses: Vec<String>,
    pub role: Option<String>,
    pub tag: Option<String>,
    pub parent: Option<String>,
    pub text: Option<String>,
    pub include_archived: bool,
    pub limit: Option<u32>,
}

/// A listed task with the status a person sees ([`shown_status`]).
#[derive(Debug, Clone)]
pub struct Listed {
    pub task: Task,
    pub shown: String,
}

/// The tasks matching `q`, each with its shown status.
/// Statuses a person sees that are derived from the graph, not stored: pending tasks that may
/// start now (`ready`) or wait on others (`waiting`).
const DERIVED: [&str; 3] = ["ready", "waiting", "stuck"];

pub async fn list(p: &Project, q: &ListQuery) -> Result<Vec<Listed>, Error> {
    let derived: Vec<&str> = q
        .statuses
        .iter()
        .map(|s| s.trim())
        .filter(|s| DERIVED.contains(s))
        .collect();
    let mut statuses = q
        .statuses
        .iter()
        .filter(|s| !DERIVED.contains(&s.trim()))
        .map(|s| {
            s.parse::<Status>().map_err(|e| {
                Error::invalid(format!("{e}, or one of the derived: ready, waiting, stuck"))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if !derived.is_empty() && !statuses.contains(&Status::Pending) {
        statuses.push(Status::Pending);
    }
    let parent = match &q.parent {
        Some(x) => Some(resolve(p, x).await?),
        None => None,
    };
    let filter = TaskFilter {
        statuses,
        role: q.role.clone(),
        tag: q.tag.clone(),
        parent,
        text: q.text.clone(),
        include_archived: q.include_archived,
        // A derived status is told after reading: the limit applies to what is kept.
        limit: if derived.is_empty() { q.limit } else { None },
    };
    let asked_pending = q.statuses.iter().any(|s| s.trim() == "pending");
    let tasks = p.store.tasks(&filter).await?;
    let v = view(p).await?;
    let pending = crate::tasks::Pending::of(&v.planned);
    let listed = tasks.into_iter().map(|t| Listed {
        shown: shown_status(&t, &v.rollup, &pending),
        task: t,
    });
    if derived.is_empty() {
        return Ok(listed.collect());
    }
    Ok(listed
        .filter(|l| {
            l.task.status != Status::Pending || asked_pending || derived.contains(&l.shown.as_str())
        })
        .take(q.limit.map_or(usize::MAX, |n| n as usize))
        .collect())
}

/// One task's row, its edges (those to archived tasks too) and its latest events.
#[derive(Debug, Clone)]
pub struct Detail {
    pub task: Task,
    pub edges: Vec<downbeat_core::task::Edge>,
    /// At most the number asked for.
    pub events: Vec<downbeat_core::context::Event>,
    /// The git work of its last attempt that worked in a worktree: branch, diff size, merge
    /// state.
    pub git: Option<downbeat_core::attempt::GitWork>,
}

/// [`Detail`] of task `q` with its last `events` events.
pub async fn detail(p: &Project, q: &str, events: u32) -> Result<Detail, Error> {
    let id = resolve(p, q).await?;
    let task = p.store.task(id).await?;
    let edges = p.store.edges_of(id).await?;
    let events = p
        .store
        .events(&downbeat_store::EventQuery {
            task: Some(id),
            limit: Some(events),
            ..Default::default()
        })
        .await?;
    let git = p
        .store
        .attempts(id)
        .await?
        .into_iter()
        .rev()
        .find_map(|a| a.detail.git);
    Ok(Detail {
        task,
        edges,
        events,
        git,
    })
}

/// Whose attempts [`spend`] counts.
#[derive(Debug, Clone, Default)]
pub struct SpendFilter {
    /// Only tasks under this one (itself included).
    pub scope: Option<TaskId>,
    /// Only attempts of this runner (a run's lease holder).
    pub holder: Option<String>,
}

/// The row of [`spend`] that counts the calls of agents drafting plans.
pub const DRAFTING: &str = "(drafting)";

/// Tokens and cost per role, from the attempt ledger and what agent CLIs reported (their cost
/// is kept in each attempt's directory, so attempts run on other machines count tokens only);
/// for the whole project (no scope, no holder), the calls of agents drafting plans too, as the
/// [`DRAFTING`] row.
pub async fn spend(
    p: &Project,
    f: &SpendFilter,
) -> Result<Vec<downbeat_core::report::RoleSpend>, Error> {
    use downbeat_core::report::RoleSpend;
    let tasks = p
        .store
        .tasks(&TaskFilter {
            include_archived: true,
            ..Default::default()
        })
        .await?;
    let parent: HashMap<TaskId, Option<TaskId>> = tasks.iter().map(|t| (t.id, t.parent)).collect();
    let under = |mut id: TaskId, root: TaskId| loop {
        if id == root {
            return true;
        }
        match parent.get(&id).copied().flatten() {
            Some(up) => id = up,
            None => return false,
        }
    };
    let role_of: HashMap<TaskId, Option<&str>> =
        tasks.iter().map(|t| (t.id, t.role.as_deref())).collect();
    let mut per_role: BTreeMap<String, RoleSpend> = BTreeMap::new();
    // One read of the whole ledger, not one per task.
    for a in p.store.all_attempts().await? {
        let Some(role) = role_of.get(&a.task) else {
            continue;
        };
        if f.scope.is_some_and(|root| !under(a.task, root))
            || f.holder.as_ref().is_some_and(|h| *h != a.worker)
        {
            continue;
        }
        let role = role.unwrap_or("-").to_owned();
        // The ledger's cost (whoever ran it); attempts recorded before the ledger kept it
        // have it only in their directory on the machine that ran them.
        let cost = a.detail.cost_usd.or_else(|| {
            let dir = p
                .dir()
                .join("runs")
                .join(a.task.to_string())
                .join(a.number.to_string());
            downbeat_engine::executor::agent::read_record(&dir).and_then(|r| r.output.cost_usd)
        });
        per_role
            .entry(role.clone())
            .or_insert_with(|| RoleSpend {
                role: role.clone(),
                ..RoleSpend::default()
            })
            .add(&RoleSpend {
                role,
                attempts: 1,
                tokens_in: u64::try_from(a.tokens_prompt.unwrap_or(0)).unwrap_or(0),
                tokens_out: u64::try_from(a.tokens_completion.unwrap_or(0)).unwrap_or(0),
                cost_usd: cost,
            });
    }
    // Drafting calls belong to no task: counted for the whole project only.
    if f.scope.is_none()
        && f.holder.is_none()
        && let Some(t) = crate::drafting::ledger::totals(p).await?
        && t.calls > 0
    {
        per_role.insert(
            DRAFTING.to_owned(),
            RoleSpend {
                role: DRAFTING.to_owned(),
                attempts: t.calls,
                tokens_in: t.tokens_in,
                tokens_out: t.tokens_out,
                cost_usd: t.cost_usd,
            },
        );
    }
    Ok(per_role.into_values().collect())
}
