//! The full profile's finer tools, one per operation.

use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::CallToolResult;
use rmcp::{Peer, RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use crate::ops::{self, End, Fields, ListFilter};
use crate::server::DownbeatMcp;

use super::default::{Discovered, discovered};

// ------------------------------------------------------------------------------------------
// Arguments of the full profile's finer tools

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IdArgs {
    /// Task id, prefix or key
    pub id: String,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListArgs {
    /// Statuses, incl. ready, waiting, stuck
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
#[serde(deny_unknown_fields)]
pub struct ReadyArgs {
    pub role: Option<String>,
    pub limit: Option<u32>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
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
    /// N answers, then a resolver decides: N or {n,executors,resolver}
    pub consensus: Option<Value>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
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
#[serde(deny_unknown_fields)]
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
#[serde(deny_unknown_fields)]
pub struct DepArgs {
    /// The waiting task
    pub id: String,
    /// Tasks it waits for
    pub on: Vec<String>,
    /// blocks (default), related, discovered-from
    pub kind: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WavesArgs {
    /// Worker counts for makespans
    pub workers: Option<Vec<u32>>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ObjectiveArgs {
    pub title: String,
    /// Tasks achieving it
    pub tasks: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ObjectiveLinkArgs {
    /// Objective, e.g. o2
    pub id: String,
    /// Tasks achieving it
    pub tasks: Vec<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ObjectiveStatusArgs {
    /// Objective id (o1)
    pub id: String,
    /// active, achieved, dropped
    pub status: String,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InsightArgs {
    pub text: String,
    pub task: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionArgs {
    pub text: String,
    /// Rationale
    pub why: Option<String>,
    pub task: Option<String>,
    /// The decision it replaces (d2)
    pub supersedes: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProposeArgs {
    pub text: String,
    /// Rationale
    pub why: Option<String>,
    pub task: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DecideArgs {
    /// Decision id (d3)
    pub id: String,
    /// Why it was accepted or rejected
    pub why: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionListArgs {
    /// Only proposed decisions not yet accepted or rejected
    #[serde(default)]
    pub pending: bool,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatArgs {
    pub task: String,
    /// Fencing token from claim (`EPOCH.ATTEMPT`)
    pub token: String,
    /// New lease length, e.g. 10m
    pub lease: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteArgs {
    pub task: String,
    /// Fencing token from claim (`EPOCH.ATTEMPT`)
    pub token: String,
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
#[serde(deny_unknown_fields)]
pub struct FailArgs {
    pub task: String,
    /// Fencing token from claim (`EPOCH.ATTEMPT`)
    pub token: String,
    pub reason: Option<String>,
    /// Back to pending for another attempt
    pub retry: Option<bool>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseArgs {
    pub task: String,
    /// Fencing token from claim (`EPOCH.ATTEMPT`)
    pub token: String,
    pub reason: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PromptArgs {
    pub task: String,
    /// Role whose template to use (default: the task's)
    pub role: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogArgs {
    /// Duration (1h) or RFC 3339 time
    pub since: Option<String>,
    pub task: Option<String>,
    /// Most recent N (default 50)
    pub limit: Option<u32>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleAddArgs {
    /// E.g. SECURITY_BREACH
    pub flag: String,
    /// add-task, raise-priority, pause, stop
    pub action: String,
    /// add-task: the follow-up's role
    pub role: Option<String>,
    /// add-task: title template ({{ task.title }}, {{ flag }})
    pub title: Option<String>,
    /// add-task: nothing else starts until it is done
    pub pause: Option<bool>,
    /// raise-priority: new priority (default high)
    pub priority: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleRemoveArgs {
    /// A rule's number, or a flag (all its rules)
    pub which: String,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MemorySyncArgs {
    /// Memory files to write (default: all configured)
    pub files: Option<Vec<String>>,
    /// Say what would change, write nothing
    pub dry_run: Option<bool>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RolesArgs {
    /// One role with its prompt template
    pub name: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SynthesizeArgs {
    /// Parent task (default: whole project)
    pub id: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MaintainArgs {
    /// Act on the findings (default: dry run)
    pub apply: Option<bool>,
    pub stale_after: Option<String>,
    pub archive_after: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GraphArgs {
    /// mermaid (default) or dot
    pub format: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DraftArgs {
    /// What the plan is for
    pub goal: String,
    /// Requirements document text
    pub document: Option<String>,
    /// Agent or executor to ask (default: the architect role's, else [run] executor)
    pub executor: Option<String>,
    /// Most calls; problems go back each time (default 3)
    pub rounds: Option<u32>,
    /// Limit per call, e.g. 10m
    pub timeout: Option<String>,
    /// Apply the plan once checked (default: only propose)
    pub apply: Option<bool>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpandArgs {
    /// The task to split (id, prefix or key)
    pub task: String,
    /// What else the agent should know
    pub guidance: Option<String>,
    /// Agent or executor to ask
    pub executor: Option<String>,
    /// Most calls (default 3)
    pub rounds: Option<u32>,
    /// Limit per call, e.g. 10m
    pub timeout: Option<String>,
    /// Apply the subtasks (default: only propose)
    pub apply: Option<bool>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateArgs {
    /// list, show, check (render, write nothing), apply
    pub action: String,
    /// The template (all but list)
    pub name: Option<String>,
    /// Parameter values by name
    pub values: Option<serde_json::Map<String, serde_json::Value>>,
}

fn end_of(task: String, token: String) -> End {
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
                consensus: a.consensus,
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

    #[tool(
        description = "Link tasks to an objective; it is marked achieved once they are all completed."
    )]
    async fn objective_link(
        &self,
        peer: Peer<RoleServer>,
        Parameters(a): Parameters<ObjectiveLinkArgs>,
    ) -> CallToolResult {
        self.call(&peer, move |p, _| async move {
            ops::objective_link(&p, &a.id, &a.tasks).await
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

    #[tool(description = "Propose a decision: pending, not in force until accepted.")]
    async fn decision_propose(
        &self,
        peer: Peer<RoleServer>,
        Parameters(a): Parameters<ProposeArgs>,
    ) -> CallToolResult {
        self.call(&peer, move |p, _| async move {
            ops::decision_propose(&p, &a.text, a.why.as_deref(), a.task.as_deref()).await
        })
        .await
    }

    #[tool(description = "Accept a proposed decision: in force from now on.")]
    async fn decision_accept(
        &self,
        peer: Peer<RoleServer>,
        Parameters(a): Parameters<DecideArgs>,
    ) -> CallToolResult {
        self.call(&peer, move |p, _| async move {
            ops::decision_decide(&p, &a.id, true, a.why.as_deref()).await
        })
        .await
    }

    #[tool(description = "Reject a proposed decision.")]
    async fn decision_reject(
        &self,
        peer: Peer<RoleServer>,
        Parameters(a): Parameters<DecideArgs>,
    ) -> CallToolResult {
        self.call(&peer, move |p, _| async move {
            ops::decision_decide(&p, &a.id, false, a.why.as_deref()).await
        })
        .await
    }

    #[tool(description = "Decisions with their status (proposed, accepted, rejected).")]
    async fn decision_list(
        &self,
        peer: Peer<RoleServer>,
        Parameters(a): Parameters<DecisionListArgs>,
    ) -> CallToolResult {
        self.call(&peer, move |p, _| async move {
            ops::decision_list(&p, a.pending).await
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
            ops::end(&p, &e, ops::EndAction::Complete).await
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
            ops::end(&p, &e, ops::EndAction::Fail).await
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
            ops::end(&p, &e, ops::EndAction::Release).await
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

    #[tool(description = "Flag rules: what each flag an agent raises triggers, numbered.")]
    async fn rule_list(
        &self,
        peer: Peer<RoleServer>,
        Parameters(_a): Parameters<NoArgs>,
    ) -> CallToolResult {
        self.call(&peer, move |p, _| async move { ops::rule_list(&p) })
            .await
    }

    #[tool(description = "Add a flag rule to the project's configuration (checked first).")]
    async fn rule_add(
        &self,
        peer: Peer<RoleServer>,
        Parameters(a): Parameters<RuleAddArgs>,
    ) -> CallToolResult {
        self.call(&peer, move |p, _| async move {
            let rule = downbeat_core::flags::FlagRule {
                flag: a.flag,
                action: a.action.parse().map_err(downbeat_app::Error::invalid)?,
                role: a.role,
                title: a.title,
                pause: a.pause.unwrap_or(false),
                priority: a.priority,
            };
            ops::rule_add(&p, &rule)
        })
        .await
    }

    #[tool(description = "Remove a flag rule by its number, or every rule of a flag.")]
    async fn rule_remove(
        &self,
        peer: Peer<RoleServer>,
        Parameters(a): Parameters<RuleRemoveArgs>,
    ) -> CallToolResult {
        self.call(
            &peer,
            move |p, _| async move { ops::rule_remove(&p, &a.which) },
        )
        .await
    }

    #[tool(
        description = "Write Downbeat's section (objectives, decisions, insights, conventions) into CLAUDE.md / AGENTS.md."
    )]
    async fn memory_sync(
        &self,
        peer: Peer<RoleServer>,
        Parameters(a): Parameters<MemorySyncArgs>,
    ) -> CallToolResult {
        self.call(&peer, move |p, _| async move {
            ops::memory_sync(&p, a.files, a.dry_run.unwrap_or(false)).await
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

    #[tool(
        description = "Ask an agent for a plan reaching a goal: checked, sent back with its problems, proposed with waves; applied with apply."
    )]
    async fn plan_draft(
        &self,
        peer: Peer<RoleServer>,
        Parameters(a): Parameters<DraftArgs>,
    ) -> CallToolResult {
        self.call(&peer, move |p, _| async move {
            let ask = ops::Ask {
                executor: a.executor,
                rounds: a.rounds,
                timeout: a.timeout,
                apply: a.apply.unwrap_or(false),
            };
            ops::plan_draft(&p, &a.goal, a.document, &ask).await
        })
        .await
    }

    #[tool(
        description = "Ask an agent to split a task into subtasks under it; applied with apply."
    )]
    async fn plan_expand(
        &self,
        peer: Peer<RoleServer>,
        Parameters(a): Parameters<ExpandArgs>,
    ) -> CallToolResult {
        self.call(&peer, move |p, _| async move {
            let ask = ops::Ask {
                executor: a.executor,
                rounds: a.rounds,
                timeout: a.timeout,
                apply: a.apply.unwrap_or(false),
            };
            ops::plan_expand(&p, &a.task, a.guidance, &ask).await
        })
        .await
    }

    #[tool(description = "Workflow templates: list, show, check or apply one with values.")]
    async fn template(
        &self,
        peer: Peer<RoleServer>,
        Parameters(a): Parameters<TemplateArgs>,
    ) -> CallToolResult {
        self.call(&peer, move |p, _| async move {
            ops::template(
                &p,
                &a.action,
                a.name.as_deref(),
                &a.values.unwrap_or_default(),
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
