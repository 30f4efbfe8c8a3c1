//! The default profile: about eight operation-style tools, each with an `action`.

use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::CallToolResult;
use rmcp::{Peer, RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::ops::{self, ClaimSpec, End, Fields, ListFilter};
use crate::server::DownbeatMcp;
use downbeat_app::error::Error;
use downbeat_app::runs::RunRequest as RunSpec;

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
#[serde(deny_unknown_fields)]
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
#[serde(deny_unknown_fields)]
pub struct PlanArgs {
    /// apply (default), check (validate and compare only), waves (ready set, waves, critical path)
    #[serde(default)]
    pub action: PlanAction,
    /// Plan-file structure: {tasks:[{key,title,role,description,parent,depends_on:[key],effort,priority,acceptance,files,command,consensus}],objectives:[{title,tasks}],decisions:[{text,why}],insights:[{text}],roles:[{name,description,prompt}]}
    pub plan: Option<Map<String, Value>>,
    /// apply: leave running or finished tasks the plan would change as they are
    pub skip_conflicts: Option<bool>,
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
#[serde(deny_unknown_fields)]
pub struct TasksArgs {
    /// list (default), ready, show, add, update, set (status), dep
    #[serde(default)]
    pub action: TasksAction,
    /// Task id, prefix or key (show, update, set, dep)
    pub id: Option<String>,
    /// list: statuses, incl. ready, waiting, stuck
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
    /// add: N answers, then a resolver decides: N or {n,executors,resolver}
    pub consensus: Option<Value>,
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
            consensus: self.consensus.clone(),
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

pub(super) fn need_id(id: &Option<String>) -> Result<&str, Error> {
    id.as_deref()
        .ok_or_else(|| Error::invalid("`id` (a task id, prefix or key) is required"))
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
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
#[serde(deny_unknown_fields)]
pub struct Discovered {
    pub title: String,
    pub role: Option<String>,
    pub description: Option<String>,
    /// The finished task's dependents also wait for it
    pub blocks_dependents: Option<bool>,
}

pub(super) fn discovered(
    list: Option<Vec<Discovered>>,
) -> Vec<downbeat_engine::executor::DiscoveredTask> {
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
#[serde(deny_unknown_fields)]
pub struct WorkArgs {
    /// complete (default), fail, heartbeat (renew lease), release (back to pending)
    #[serde(default)]
    pub action: WorkAction,
    /// The claimed task
    pub task: Option<String>,
    /// Fencing token from claim (`EPOCH.ATTEMPT`)
    pub token: Option<String>,
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
#[serde(deny_unknown_fields)]
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
#[serde(deny_unknown_fields)]
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
#[serde(deny_unknown_fields)]
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
        description = "Apply a plan atomically (applied again: only the difference), compare it without writing (check), or get ready set, waves and critical path (waves)."
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
                PlanAction::Apply => {
                    let skip = a.skip_conflicts.unwrap_or(false);
                    ops::plan_apply(&p, plan.as_ref(), false, skip).await
                }
                PlanAction::Check => ops::plan_apply(&p, plan.as_ref(), true, false).await,
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
                WorkAction::Complete => ops::end(&p, &e, ops::EndAction::Complete).await,
                WorkAction::Fail => ops::end(&p, &e, ops::EndAction::Fail).await,
                WorkAction::Release => ops::end(&p, &e, ops::EndAction::Release).await,
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
