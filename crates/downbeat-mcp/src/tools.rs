//! The tools of both profiles: their input schemas (schemars) and their calls into `ops`.
//!
//! The default profile is a handful of operation-style tools with an `action`; the full profile
//! adds one finer tool per operation. Descriptions are short: every byte of `tools/list` costs
//! the client context.

use std::future::Future;

use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock};
use rmcp::{Peer, RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::ops::{self, ClaimSpec, End, Fields, ListFilter, Out};
use super::{DownbeatMcp, Profile};
use downbeat_app::error::{Error, Kind};
use downbeat_app::project::Project;
use downbeat_app::runs::RunRequest as RunSpec;

/// Names of the tools a profile offers, sorted.
pub fn tool_names(profile: Profile) -> Vec<String> {
    let router = match profile {
        Profile::Default => DownbeatMcp::default_tools(),
        Profile::Full => DownbeatMcp::default_tools() + DownbeatMcp::full_tools(),
    };
    router
        .list_all()
        .into_iter()
        .map(|t| t.name.into())
        .collect()
}

fn result(r: Out) -> CallToolResult {
    match r {
        Ok(v) => CallToolResult::success(vec![ContentBlock::text(v.to_string())]),
        Err(e) => CallToolResult::error(vec![ContentBlock::text(super::message(&e))]),
    }
}

impl DownbeatMcp {
    /// Runs one tool call on a fresh view of the project; a panic becomes a tool error.
    async fn call<F, Fut>(&self, peer: &Peer<RoleServer>, f: F) -> CallToolResult
    where
        F: FnOnce(Project, String) -> Fut,
        Fut: Future<Output = Out> + Send + 'static,
    {
        let (p, client) = match self.project(peer) {
            Ok(x) => x,
            Err(e) => return result(Err(e)),
        };
        match tokio::spawn(f(p, client)).await {
            Ok(r) => result(r),
            Err(e) => result(Err(Error::new(
                Kind::Internal,
                format!("internal error: {e}"),
            ))),
        }
    }
}

// ------------------------------------------------------------------------------------------
// Arguments of the default profile

#[derive(Debug, Default, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(inline)]
pub enum SessionAction {
    #[default]
    Resume,
    Start,
    End,
    Status,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct SessionArgs {
    /// resume (default: open or continue a session, get the brief), start, end, status
    #[serde(default)]
    pub action: SessionAction,
    /// Label of a new session
    pub label: Option<String>,
}

#[derive(Debug, Default, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(inline)]
pub enum PlanAction {
    #[default]
    Apply,
    Check,
    Waves,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct PlanArgs {
    /// apply (default), check (validate only), waves (ready set, waves, critical path)
    #[serde(default)]
    pub action: PlanAction,
    /// Plan-file structure: {tasks:[{key,title,role,description,parent,depends_on:[key],effort,priority,acceptance,files}],objectives:[{title,tasks}],decisions:[{text,why}],insights:[{text}],roles:[{name,description,prompt}]}
    pub plan: Option<Map<String, Value>>,
    /// waves: worker counts for makespans
    pub workers: Option<Vec<u32>>,
}

#[derive(Debug, Default, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(inline)]
pub enum TasksAction {
    #[default]
    List,
    Ready,
    Show,
    Add,
    Update,
    Set,
    Dep,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct TasksArgs {
    /// list (default), ready, show, add, update, set (status), dep
    #[serde(default)]
    pub action: TasksAction,
    /// Task id, prefix or key (show, update, set, dep)
    pub id: Option<String>,
    /// list: statuses, incl. ready, waiting
    pub status: Option<Vec<String>>,
    /// Filter (list, ready) or field (add, update)
    pub role: Option<String>,
    /// list: tag
    pub tag: Option<String>,
    /// list: children of; add/update: parent ("none" detaches)
    pub parent: Option<String>,
    /// list: text in title/description
    pub search: Option<String>,
    pub limit: Option<u32>,
    /// list: include archived
    pub all: Option<bool>,
    pub title: Option<String>,
    pub description: Option<String>,
    /// add: stable name usable as id
    pub key: Option<String>,
    pub effort: Option<u32>,
    /// low, normal, high, critical
    pub priority: Option<String>,
    pub acceptance: Option<Vec<String>>,
    pub tags: Option<Vec<String>>,
    /// Paths/globs the task touches
    pub files: Option<Vec<String>>,
    /// add: tasks it waits for
    pub after: Option<Vec<String>>,
    /// set: start, done, fail, block, unblock, skip, cancel, reopen
    pub to: Option<String>,
    /// set: note recorded as result
    pub note: Option<String>,
    /// set: start or complete even while it waits on unfinished work
    pub force: Option<bool>,
    /// dep: tasks `id` waits for
    pub on: Option<Vec<String>>,
    /// dep: blocks (default), related, discovered-from
    pub kind: Option<String>,
    /// dep: remove instead of add
    pub remove: Option<bool>,
}

impl TasksArgs {
    fn fields(&self) -> Fields {
        Fields {
            title: self.title.clone(),
            description: self.description.clone(),
            role: self.role.clone(),
            parent: self.parent.clone(),
            key: self.key.clone(),
            effort: self.effort,
            priority: self.priority.clone(),
            acceptance: self.acceptance.clone(),
            tags: self.tags.clone(),
            files: self.files.clone(),
            after: self.after.clone(),
            executor: None,
        }
    }

    fn filter(&self) -> ListFilter {
        ListFilter {
            status: self.status.clone().unwrap_or_default(),
            role: self.role.clone(),
            tag: self.tag.clone(),
            parent: self.parent.clone(),
            search: self.search.clone(),
            limit: self.limit,
            all: self.all.unwrap_or(false),
        }
    }
}

fn need_id(id: &Option<String>) -> Result<&str, Error> {
    id.as_deref()
        .ok_or_else(|| Error::invalid("`id` (a task id, prefix or key) is required"))
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct ClaimArgs {
    /// This task (default: the best ready one)
    pub task: Option<String>,
    /// Only tasks of this role
    pub role: Option<String>,
    /// Sub-agent name, part of the lease holder
    pub worker: Option<String>,
    /// Lease without heartbeat, e.g. 10m (default [mcp] lease or 5m)
    pub lease: Option<String>,
    /// Include the specialist prompt (default true)
    pub prompt: Option<bool>,
}

impl ClaimArgs {
    fn spec(self) -> ClaimSpec {
        ClaimSpec {
            task: self.task,
            role: self.role,
            worker: self.worker,
            lease: self.lease,
            prompt: self.prompt.unwrap_or(true),
        }
    }
}

/// A task found while working, added to the graph.
#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
pub struct Discovered {
    pub title: String,
    pub role: Option<String>,
    pub description: Option<String>,
    /// The finished task's dependents also wait for it
    pub blocks_dependents: Option<bool>,
}

fn discovered(list: Option<Vec<Discovered>>) -> Vec<downbeat_engine::executor::DiscoveredTask> {
    list.unwrap_or_default()
        .into_iter()
        .map(|d| downbeat_engine::executor::DiscoveredTask {
            title: d.title,
            role: d.role,
            description: d.description.unwrap_or_default(),
            blocks_dependents: d.blocks_dependents.unwrap_or(false),
        })
        .collect()
}

#[derive(Debug, Default, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(inline)]
pub enum WorkAction {
    Heartbeat,
    #[default]
    Complete,
    Fail,
    Release,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct WorkArgs {
    /// complete (default), fail, heartbeat (renew lease), release (back to pending)
    #[serde(default)]
    pub action: WorkAction,
    /// The claimed task
    pub task: Option<String>,
    /// Fencing token from claim
    pub token: Option<i64>,
    /// complete: what was done
    pub summary: Option<String>,
    /// complete: files produced, inside the project
    pub artifacts: Option<Vec<String>>,
    /// complete: flags for the project's rules, e.g. SECURITY_BREACH
    pub flags: Option<Vec<String>>,
    /// complete: work found along the way
    pub discovered: Option<Vec<Discovered>>,
    /// fail/release: why
    pub reason: Option<String>,
    /// fail: back to pending for another attempt
    pub retry: Option<bool>,
    /// heartbeat: new lease length
    pub lease: Option<String>,
}

impl WorkArgs {
    fn end(self) -> End {
        End {
            task: self.task,
            token: self.token,
            summary: self.summary,
            artifacts: self.artifacts.unwrap_or_default(),
            flags: self.flags.unwrap_or_default(),
            discovered: discovered(self.discovered),
            reason: self.reason,
            retry: self.retry.unwrap_or(false),
            lease: self.lease,
        }
    }
}

#[derive(Debug, Default, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(inline)]
pub enum ContextAction {
    #[default]
    List,
    Objective,
    ObjectiveStatus,
    Insight,
    Decision,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct ContextArgs {
    /// list (default), objective, objective_status, insight, decision
    #[serde(default)]
    pub action: ContextAction,
    /// Objective title, insight or decision text
    pub text: Option<String>,
    /// decision: rationale
    pub why: Option<String>,
    /// insight/decision: related task
    pub task: Option<String>,
    /// objective: tasks achieving it
    pub tasks: Option<Vec<String>>,
    /// decision: the decision it replaces (d2)
    pub supersedes: Option<String>,
    /// objective_status: objective id (o1)
    pub id: Option<String>,
    /// objective_status: active, achieved, dropped
    pub status: Option<String>,
}

#[derive(Debug, Default, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(inline)]
pub enum ReportAction {
    #[default]
    Status,
    Synthesize,
    Handover,
    Maintain,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct ReportArgs {
    /// status (default: progress), synthesize (results report), handover (write it), maintain
    #[serde(default)]
    pub action: ReportAction,
    /// synthesize: parent task (default: whole project)
    pub id: Option<String>,
    /// maintain: act on findings (default: dry run)
    pub apply: Option<bool>,
    /// maintain: staleness threshold, e.g. 24h
    pub stale_after: Option<String>,
    /// maintain: archive retention, e.g. 30d
    pub archive_after: Option<String>,
}

#[derive(Debug, Default, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(inline)]
pub enum RunAction {
    Start,
    #[default]
    Watch,
    Cancel,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct RunToolArgs {
    /// start (in the background), watch (default: progress), cancel
    #[serde(default)]
    pub action: RunAction,
    /// start: attempts at once
    pub concurrency: Option<usize>,
    /// start: only these tasks
    pub only: Option<Vec<String>>,
    /// start: only what this task needs
    pub until: Option<String>,
    /// start: executor for every task, e.g. noop
    pub executor: Option<String>,
    /// watch: events after this sequence number
    pub after: Option<u64>,
}

// ------------------------------------------------------------------------------------------
// The default profile

#[tool_router(router = default_tools, vis = "pub(crate)")]
impl DownbeatMcp {
    #[tool(
        description = "Resume (default) or start/end a session; resume returns the brief: progress, objectives, decisions, in flight, next."
    )]
    async fn session(
        &self,
        peer: Peer<RoleServer>,
        Parameters(a): Parameters<SessionArgs>,
    ) -> CallToolResult {
        self.call(&peer, move |p, _| async move {
            let action = match a.action {
                SessionAction::Resume => "resume",
                SessionAction::Start => "start",
                SessionAction::End => "end",
                SessionAction::Status => "status",
            };
            ops::session(&p, action, a.label.as_deref()).await
        })
        .await
    }

    #[tool(
        description = "Create a whole plan atomically (apply), validate it (check), or get ready set, waves and critical path (waves)."
    )]
    async fn plan(
        &self,
        peer: Peer<RoleServer>,
        Parameters(a): Parameters<PlanArgs>,
    ) -> CallToolResult {
        let g = self.graph_cache();
        self.call(&peer, move |p, _| async move {
            let plan = a.plan.map(Value::Object);
            match a.action {
                PlanAction::Apply => ops::plan_apply(&p, plan.as_ref(), false).await,
                PlanAction::Check => ops::plan_apply(&p, plan.as_ref(), true).await,
                PlanAction::Waves => ops::waves(&p, &g, &a.workers.unwrap_or_default()).await,
            }
        })
        .await
    }

    #[tool(
        description = "Tasks: list (filters, search), ready, show, add, update, set (status by hand), dep (add/remove dependencies)."
    )]
    async fn tasks(
        &self,
        peer: Peer<RoleServer>,
        Parameters(a): Parameters<TasksArgs>,
    ) -> CallToolResult {
        let g = self.graph_cache();
        self.call(&peer, move |p, _| async move {
            match a.action {
                TasksAction::List => ops::list(&p, &g, &a.filter()).await,
                TasksAction::Ready => ops::ready(&p, &g, a.role.as_deref(), a.limit).await,
                TasksAction::Show => ops::show(&p, &g, need_id(&a.id)?).await,
                TasksAction::Add => ops::add(&p, &a.fields()).await,
                TasksAction::Update => ops::update(&p, need_id(&a.id)?, &a.fields()).await,
                TasksAction::Set => {
                    let to =
                        a.to.as_deref()
                            .ok_or_else(|| Error::invalid("`to` is required for set"))?;
                    ops::set_status(
                        &p,
                        need_id(&a.id)?,
                        to,
                        a.note.as_deref(),
                        a.force.unwrap_or(false),
                    )
                    .await
                }
                TasksAction::Dep => {
                    ops::dep(
                        &p,
                        need_id(&a.id)?,
                        a.on.as_deref().unwrap_or_default(),
                        a.kind.as_deref(),
                        a.remove.unwrap_or(false),
                    )
                    .await
                }
            }
        })
        .await
    }

    #[tool(
        description = "Claim a ready task (lease + fencing token) and get its specialist prompt; parallel claimants never get the same task."
    )]
    async fn claim(
        &self,
        peer: Peer<RoleServer>,
        Parameters(a): Parameters<ClaimArgs>,
    ) -> CallToolResult {
        let g = self.graph_cache();
        self.call(&peer, move |p, client| async move {
            ops::claim(&p, &g, &client, &a.spec()).await
        })
        .await
    }

    #[tool(
        description = "Finish claimed work with its token: complete (summary, artifacts, flags, discovered tasks), fail, heartbeat, release."
    )]
    async fn work(
        &self,
        peer: Peer<RoleServer>,
        Parameters(a): Parameters<WorkArgs>,
    ) -> CallToolResult {
        self.call(&peer, move |p, _| async move {
            let action = a.action;
            let e = a.end();
            match action {
                WorkAction::Heartbeat => ops::heartbeat(&p, &e).await,
                WorkAction::Complete => ops::end(&p, &e, "complete").await,
                WorkAction::Fail => ops::end(&p, &e, "fail").await,
                WorkAction::Release => ops::end(&p, &e, "release").await,
            }
        })
        .await
    }

    #[tool(description = "Objectives, insights, decisions: list (default) or record one.")]
    async fn context(
        &self,
        peer: Peer<RoleServer>,
        Parameters(a): Parameters<ContextArgs>,
    ) -> CallToolResult {
        self.call(&peer, move |p, _| async move {
            match a.action {
                ContextAction::List => ops::context_list(&p).await,
                ContextAction::Objective => {
                    ops::objective_add(
                        &p,
                        a.text.as_deref(),
                        a.tasks.as_deref().unwrap_or_default(),
                    )
                    .await
                }
                ContextAction::ObjectiveStatus => {
                    ops::objective_status(&p, a.id.as_deref(), a.status.as_deref()).await
                }
                ContextAction::Insight => {
                    ops::insight_add(&p, a.text.as_deref(), a.task.as_deref()).await
                }
                ContextAction::Decision => {
                    ops::decision_add(
                        &p,
                        a.text.as_deref(),
                        a.why.as_deref(),
                        a.task.as_deref(),
                        a.supersedes.as_deref(),
                    )
                    .await
                }
            }
        })
        .await
    }

    #[tool(
        description = "Status with progress (default), synthesize results of a parent task or the project, write the handover, maintain (dry run unless apply)."
    )]
    async fn report(
        &self,
        peer: Peer<RoleServer>,
        Parameters(a): Parameters<ReportArgs>,
    ) -> CallToolResult {
        let g = self.graph_cache();
        self.call(&peer, move |p, _| async move {
            match a.action {
                ReportAction::Status => ops::status(&p, &g).await,
                ReportAction::Synthesize => ops::synthesize(&p, a.id.as_deref()).await,
                ReportAction::Handover => ops::handover(&p).await,
                ReportAction::Maintain => {
                    ops::maintain(
                        &p,
                        a.apply.unwrap_or(false),
                        a.stale_after.as_deref(),
                        a.archive_after.as_deref(),
                    )
                    .await
                }
            }
        })
        .await
    }

    #[tool(
        description = "Execute the graph with the configured executors in the background: start, watch (default), cancel."
    )]
    async fn run(
        &self,
        peer: Peer<RoleServer>,
        Parameters(a): Parameters<RunToolArgs>,
    ) -> CallToolResult {
        let ctx = self.ctx.clone();
        self.call(&peer, move |p, _| async move {
            match a.action {
                RunAction::Start => {
                    let spec = RunSpec {
                        concurrency: a.concurrency,
                        only: a.only.unwrap_or_default(),
                        until: a.until,
                        executor: a.executor,
                    };
                    ctx.runs.start(p, &spec).await
                }
                RunAction::Watch => ctx.runs.watch(a.after).await,
                RunAction::Cancel => ctx.runs.cancel().await,
            }
        })
        .await
    }
}

// ------------------------------------------------------------------------------------------
// Arguments of the full profile's finer tools

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct IdArgs {
    /// Task id, prefix or key
    pub id: String,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct NoArgs {}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct ListArgs {
    /// Statuses, incl. ready, waiting
    pub status: Option<Vec<String>>,
    pub role: Option<String>,
    pub tag: Option<String>,
    /// Children of this task
    pub parent: Option<String>,
    /// Text in title/description
    pub search: Option<String>,
    pub limit: Option<u32>,
    /// Include archived
    pub all: Option<bool>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct ReadyArgs {
    pub role: Option<String>,
    pub limit: Option<u32>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct AddArgs {
    pub title: String,
    pub description: Option<String>,
    pub role: Option<String>,
    /// Parent task
    pub parent: Option<String>,
    /// Stable name usable as id
    pub key: Option<String>,
    pub effort: Option<u32>,
    /// low, normal, high, critical
    pub priority: Option<String>,
    pub acceptance: Option<Vec<String>>,
    pub tags: Option<Vec<String>>,
    /// Paths/globs the task touches
    pub files: Option<Vec<String>>,
    /// Tasks it waits for
    pub after: Option<Vec<String>>,
    /// Named executor from the configuration, or noop
    pub executor: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct UpdateArgs {
    /// Task id, prefix or key
    pub id: String,
    pub title: Option<String>,
    pub description: Option<String>,
    /// New role; "none" clears it
    pub role: Option<String>,
    /// New parent; "none" detaches
    pub parent: Option<String>,
    pub effort: Option<u32>,
    pub priority: Option<String>,
    pub acceptance: Option<Vec<String>>,
    pub tags: Option<Vec<String>>,
    pub files: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct StatusArgs {
    /// Task id, prefix or key
    pub id: String,
    /// start, done, fail, block, unblock, skip, cancel, reopen
    pub to: String,
    /// Recorded as the task's result
    pub note: Option<String>,
    /// Start or complete even while it waits on unfinished work
    pub force: Option<bool>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct DepArgs {
    /// The waiting task
    pub id: String,
    /// Tasks it waits for
    pub on: Vec<String>,
    /// blocks (default), related, discovered-from
    pub kind: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct WavesArgs {
    /// Worker counts for makespans
    pub workers: Option<Vec<u32>>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct ObjectiveArgs {
    pub title: String,
    /// Tasks achieving it
    pub tasks: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct ObjectiveStatusArgs {
    /// Objective id (o1)
    pub id: String,
    /// active, achieved, dropped
    pub status: String,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct InsightArgs {
    pub text: String,
    pub task: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct DecisionArgs {
    pub text: String,
    /// Rationale
    pub why: Option<String>,
    pub task: Option<String>,
    /// The decision it replaces (d2)
    pub supersedes: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct HeartbeatArgs {
    pub task: String,
    /// Fencing token from claim
    pub token: i64,
    /// New lease length, e.g. 10m
    pub lease: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct CompleteArgs {
    pub task: String,
    /// Fencing token from claim
    pub token: i64,
    /// What was done
    pub summary: Option<String>,
    /// Files produced, inside the project
    pub artifacts: Option<Vec<String>>,
    /// Flags for the project's rules
    pub flags: Option<Vec<String>>,
    /// Work found along the way
    pub discovered: Option<Vec<Discovered>>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct FailArgs {
    pub task: String,
    /// Fencing token from claim
    pub token: i64,
    pub reason: Option<String>,
    /// Back to pending for another attempt
    pub retry: Option<bool>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct ReleaseArgs {
    pub task: String,
    /// Fencing token from claim
    pub token: i64,
    pub reason: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct PromptArgs {
    pub task: String,
    /// Role whose template to use (default: the task's)
    pub role: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct LogArgs {
    /// Duration (1h) or RFC 3339 time
    pub since: Option<String>,
    pub task: Option<String>,
    /// Most recent N (default 50)
    pub limit: Option<u32>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct RolesArgs {
    /// One role with its prompt template
    pub name: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct SynthesizeArgs {
    /// Parent task (default: whole project)
    pub id: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct MaintainArgs {
    /// Act on the findings (default: dry run)
    pub apply: Option<bool>,
    pub stale_after: Option<String>,
    pub archive_after: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct GraphArgs {
    /// mermaid (default) or dot
    pub format: Option<String>,
}

fn end_of(task: String, token: i64) -> End {
    End {
        task: Some(task),
        token: Some(token),
        ..Default::default()
    }
}

// ------------------------------------------------------------------------------------------
// The full profile's finer tools

#[tool_router(router = full_tools, vis = "pub(crate)")]
impl DownbeatMcp {
    #[tool(description = "List tasks with filters and text search.")]
    async fn task_list(
        &self,
        peer: Peer<RoleServer>,
        Parameters(a): Parameters<ListArgs>,
    ) -> CallToolResult {
        let g = self.graph_cache();
        self.call(&peer, move |p, _| async move {
            let f = ListFilter {
                status: a.status.unwrap_or_default(),
                role: a.role,
                tag: a.tag,
                parent: a.parent,
                search: a.search,
                limit: a.limit,
                all: a.all.unwrap_or(false),
            };
            ops::list(&p, &g, &f).await
        })
        .await
    }

    #[tool(description = "Tasks that can start now, best first.")]
    async fn task_ready(
        &self,
        peer: Peer<RoleServer>,
        Parameters(a): Parameters<ReadyArgs>,
    ) -> CallToolResult {
        let g = self.graph_cache();
        self.call(&peer, move |p, _| async move {
            ops::ready(&p, &g, a.role.as_deref(), a.limit).await
        })
        .await
    }

    #[tool(description = "One task with dependencies, dependents, children, lease.")]
    async fn task_show(
        &self,
        peer: Peer<RoleServer>,
        Parameters(a): Parameters<IdArgs>,
    ) -> CallToolResult {
        let g = self.graph_cache();
        self.call(
            &peer,
            move |p, _| async move { ops::show(&p, &g, &a.id).await },
        )
        .await
    }

    #[tool(description = "Add a task.")]
    async fn task_add(
        &self,
        peer: Peer<RoleServer>,
        Parameters(a): Parameters<AddArgs>,
    ) -> CallToolResult {
        self.call(&peer, move |p, _| async move {
            let f = Fields {
                title: Some(a.title),
                description: a.description,
                role: a.role,
                parent: a.parent,
                key: a.key,
                effort: a.effort,
                priority: a.priority,
                acceptance: a.acceptance,
                tags: a.tags,
                files: a.files,
                after: a.after,
                executor: a.executor,
            };
            ops::add(&p, &f).await
        })
        .await
    }

    #[tool(description = "Change a task's fields.")]
    async fn task_update(
        &self,
        peer: Peer<RoleServer>,
        Parameters(a): Parameters<UpdateArgs>,
    ) -> CallToolResult {
        self.call(&peer, move |p, _| async move {
            let f = Fields {
                title: a.title,
                description: a.description,
                role: a.role,
                parent: a.parent,
                effort: a.effort,
                priority: a.priority,
                acceptance: a.acceptance,
                tags: a.tags,
                files: a.files,
                ..Default::default()
            };
            ops::update(&p, &a.id, &f).await
        })
        .await
    }

    #[tool(description = "Change a task's status by hand (state machine checked).")]
    async fn task_status(
        &self,
        peer: Peer<RoleServer>,
        Parameters(a): Parameters<StatusArgs>,
    ) -> CallToolResult {
        self.call(&peer, move |p, _| async move {
            ops::set_status(
                &p,
                &a.id,
                &a.to,
                a.note.as_deref(),
                a.force.unwrap_or(false),
            )
            .await
        })
        .await
    }

    #[tool(description = "Add dependencies; a cycle is refused with its path.")]
    async fn dep_add(
        &self,
        peer: Peer<RoleServer>,
        Parameters(a): Parameters<DepArgs>,
    ) -> CallToolResult {
        self.call(&peer, move |p, _| async move {
            ops::dep(&p, &a.id, &a.on, a.kind.as_deref(), false).await
        })
        .await
    }

    #[tool(description = "Remove dependencies.")]
    async fn dep_remove(
        &self,
        peer: Peer<RoleServer>,
        Parameters(a): Parameters<DepArgs>,
    ) -> CallToolResult {
        self.call(&peer, move |p, _| async move {
            ops::dep(&p, &a.id, &a.on, a.kind.as_deref(), true).await
        })
        .await
    }

    #[tool(description = "Waves, critical path, makespans.")]
    async fn waves(
        &self,
        peer: Peer<RoleServer>,
        Parameters(a): Parameters<WavesArgs>,
    ) -> CallToolResult {
        let g = self.graph_cache();
        self.call(&peer, move |p, _| async move {
            ops::waves(&p, &g, &a.workers.unwrap_or_default()).await
        })
        .await
    }

    #[tool(description = "What waits, on what; what is held.")]
    async fn blocked(
        &self,
        peer: Peer<RoleServer>,
        Parameters(_a): Parameters<NoArgs>,
    ) -> CallToolResult {
        let g = self.graph_cache();
        self.call(&peer, move |p, _| async move { ops::blocked(&p, &g).await })
            .await
    }

    #[tool(description = "Record an objective.")]
    async fn objective_add(
        &self,
        peer: Peer<RoleServer>,
        Parameters(a): Parameters<ObjectiveArgs>,
    ) -> CallToolResult {
        self.call(&peer, move |p, _| async move {
            ops::objective_add(&p, Some(&a.title), a.tasks.as_deref().unwrap_or_default()).await
        })
        .await
    }

    #[tool(description = "Mark an objective active, achieved or dropped.")]
    async fn objective_status(
        &self,
        peer: Peer<RoleServer>,
        Parameters(a): Parameters<ObjectiveStatusArgs>,
    ) -> CallToolResult {
        self.call(&peer, move |p, _| async move {
            ops::objective_status(&p, Some(&a.id), Some(&a.status)).await
        })
        .await
    }

    #[tool(description = "Record an insight.")]
    async fn insight_add(
        &self,
        peer: Peer<RoleServer>,
        Parameters(a): Parameters<InsightArgs>,
    ) -> CallToolResult {
        self.call(&peer, move |p, _| async move {
            ops::insight_add(&p, Some(&a.text), a.task.as_deref()).await
        })
        .await
    }

    #[tool(description = "Record a decision with its rationale.")]
    async fn decision_add(
        &self,
        peer: Peer<RoleServer>,
        Parameters(a): Parameters<DecisionArgs>,
    ) -> CallToolResult {
        self.call(&peer, move |p, _| async move {
            ops::decision_add(
                &p,
                Some(&a.text),
                a.why.as_deref(),
                a.task.as_deref(),
                a.supersedes.as_deref(),
            )
            .await
        })
        .await
    }

    #[tool(description = "Renew the lease of claimed work.")]
    async fn heartbeat(
        &self,
        peer: Peer<RoleServer>,
        Parameters(a): Parameters<HeartbeatArgs>,
    ) -> CallToolResult {
        self.call(&peer, move |p, _| async move {
            let mut e = end_of(a.task, a.token);
            e.lease = a.lease;
            ops::heartbeat(&p, &e).await
        })
        .await
    }

    #[tool(description = "Complete claimed work: summary, artifacts, flags, discovered tasks.")]
    async fn complete(
        &self,
        peer: Peer<RoleServer>,
        Parameters(a): Parameters<CompleteArgs>,
    ) -> CallToolResult {
        self.call(&peer, move |p, _| async move {
            let mut e = end_of(a.task, a.token);
            e.summary = a.summary;
            e.artifacts = a.artifacts.unwrap_or_default();
            e.flags = a.flags.unwrap_or_default();
            e.discovered = discovered(a.discovered);
            ops::end(&p, &e, "complete").await
        })
        .await
    }

    #[tool(description = "Fail claimed work (optionally for a retry).")]
    async fn fail(
        &self,
        peer: Peer<RoleServer>,
        Parameters(a): Parameters<FailArgs>,
    ) -> CallToolResult {
        self.call(&peer, move |p, _| async move {
            let mut e = end_of(a.task, a.token);
            e.reason = a.reason;
            e.retry = a.retry.unwrap_or(false);
            ops::end(&p, &e, "fail").await
        })
        .await
    }

    #[tool(description = "Give claimed work back (pending again).")]
    async fn release(
        &self,
        peer: Peer<RoleServer>,
        Parameters(a): Parameters<ReleaseArgs>,
    ) -> CallToolResult {
        self.call(&peer, move |p, _| async move {
            let mut e = end_of(a.task, a.token);
            e.reason = a.reason;
            ops::end(&p, &e, "release").await
        })
        .await
    }

    #[tool(description = "Render the specialist prompt for a task without claiming it.")]
    async fn prompt(
        &self,
        peer: Peer<RoleServer>,
        Parameters(a): Parameters<PromptArgs>,
    ) -> CallToolResult {
        self.call(&peer, move |p, _| async move {
            ops::prompt(&p, &a.task, a.role.as_deref()).await
        })
        .await
    }

    #[tool(description = "The attempt ledger of a task.")]
    async fn attempts(
        &self,
        peer: Peer<RoleServer>,
        Parameters(a): Parameters<IdArgs>,
    ) -> CallToolResult {
        self.call(
            &peer,
            move |p, _| async move { ops::attempts(&p, &a.id).await },
        )
        .await
    }

    #[tool(description = "The event log, newest last.")]
    async fn log(
        &self,
        peer: Peer<RoleServer>,
        Parameters(a): Parameters<LogArgs>,
    ) -> CallToolResult {
        self.call(&peer, move |p, _| async move {
            ops::log(&p, a.since.as_deref(), a.task.as_deref(), a.limit).await
        })
        .await
    }

    #[tool(description = "Figures derived from the event log.")]
    async fn metrics(
        &self,
        peer: Peer<RoleServer>,
        Parameters(_a): Parameters<NoArgs>,
    ) -> CallToolResult {
        self.call(&peer, move |p, _| async move { ops::metrics(&p).await })
            .await
    }

    #[tool(description = "Specialist roles, or one with its prompt template.")]
    async fn roles(
        &self,
        peer: Peer<RoleServer>,
        Parameters(a): Parameters<RolesArgs>,
    ) -> CallToolResult {
        self.call(&peer, move |p, _| async move {
            ops::roles(&p, a.name.as_deref())
        })
        .await
    }

    #[tool(description = "Write the integration report of a parent task or the project.")]
    async fn synthesize(
        &self,
        peer: Peer<RoleServer>,
        Parameters(a): Parameters<SynthesizeArgs>,
    ) -> CallToolResult {
        self.call(&peer, move |p, _| async move {
            ops::synthesize(&p, a.id.as_deref()).await
        })
        .await
    }

    #[tool(description = "Write the handover document.")]
    async fn handover(
        &self,
        peer: Peer<RoleServer>,
        Parameters(_a): Parameters<NoArgs>,
    ) -> CallToolResult {
        self.call(&peer, move |p, _| async move { ops::handover(&p).await })
            .await
    }

    #[tool(description = "Stale tasks, damage, old work to archive; acts only with apply.")]
    async fn maintain(
        &self,
        peer: Peer<RoleServer>,
        Parameters(a): Parameters<MaintainArgs>,
    ) -> CallToolResult {
        self.call(&peer, move |p, _| async move {
            ops::maintain(
                &p,
                a.apply.unwrap_or(false),
                a.stale_after.as_deref(),
                a.archive_after.as_deref(),
            )
            .await
        })
        .await
    }

    #[tool(description = "The task graph as Mermaid or dot.")]
    async fn graph(
        &self,
        peer: Peer<RoleServer>,
        Parameters(a): Parameters<GraphArgs>,
    ) -> CallToolResult {
        self.call(&peer, move |p, _| async move {
            ops::graph_text(&p, a.format.as_deref()).await
        })
        .await
    }
}
