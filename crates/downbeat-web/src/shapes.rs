//! The JSON the API answers with: one type per answer, documented by its JSON schema
//! (`GET /api/schema`, and `docs/web.md`).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Serialize;

use downbeat_core::context::Event;

/// A change from the event log, as the event stream sends it (`id:` is `seq`).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Change {
    /// The event's sequence number in the log.
    pub seq: i64,
    /// RFC 3339, UTC.
    pub at: String,
    pub actor: String,
    /// What happened: `task.status`, `task.created`, `hold.added`, `flag.raised`, …
    pub action: String,
    /// What it happened to: a task id, `o3`, `d2`, …
    pub entity: String,
    /// For a status change, the new stored status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// A short text: a new task's title, a result, a flag, a reason (at most 200 characters).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

impl Change {
    pub fn of(e: &Event) -> Self {
        let field = |k: &str| {
            e.after
                .as_ref()
                .and_then(|a| a.get(k))
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        let status = (e.action == "task.status")
            .then(|| field("status"))
            .flatten();
        let text = ["title", "flag", "reason", "text", "result"]
            .iter()
            .find_map(|k| field(k))
            .map(|t| cut(&t, 200));
        Self {
            seq: e.seq,
            at: e.at.rfc3339(),
            actor: e.actor.clone(),
            action: e.action.clone(),
            entity: e.entity.clone(),
            status,
            text,
        }
    }
}

/// `s` cut to at most `max` characters, with `…` when cut.
pub fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// `GET /api/graph`: every live task laid out by layers, its edges and the holds in force.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Graph {
    /// The last event this answer reflects: follow `/api/events?after=SEQ` from here.
    pub seq: i64,
    /// The project directory's name.
    pub project: String,
    /// Leaves per shown status (`ready`, `waiting`, `running`, `completed`, …).
    pub counts: BTreeMap<String, u64>,
    /// Leaves done / leaves in all.
    pub done: u64,
    pub total: u64,
    /// Number of layers (columns).
    pub layers: u32,
    pub nodes: Vec<Node>,
    pub edges: Vec<Link>,
    /// The remaining critical path, first task first.
    pub critical_path: Vec<String>,
    pub holds: Vec<HoldInfo>,
    /// Whether the page may start a run of a ready task in this server's process.
    pub can_run: bool,
}

/// One task in the graph.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Node {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub title: String,
    /// What people see: `ready`/`waiting` for pending leaves, the rolled-up status for a
    /// container, the stored status otherwise.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// Its column: the number of leaves on the longest chain of dependencies before it
    /// (finished ones included); with nothing done, the planner's wave.
    pub layer: u32,
    pub container: bool,
    /// Leaves done and in all under it (0 or 1 of 1 for a leaf).
    pub done: u32,
    pub total: u32,
    /// On the remaining critical path.
    pub critical: bool,
    pub priority: String,
    pub effort: u32,
}

/// A dependency: `from` must finish before `to` (`blocks`), or a weaker link.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Link {
    pub from: String,
    pub to: String,
    pub kind: String,
}

/// A hold in force: nothing but `task` (or nothing at all) starts until it is released.
#[derive(Debug, Serialize, JsonSchema)]
pub struct HoldInfo {
    pub id: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    pub reason: String,
    pub by: String,
    pub at: String,
}

impl HoldInfo {
    pub fn of(h: &downbeat_store::Hold) -> Self {
        Self {
            id: h.id,
            task: h.task.map(|t| t.to_string()),
            reason: h.reason.clone(),
            by: h.by.clone(),
            at: h.at.rfc3339(),
        }
    }
}

/// `GET /api/tasks/{id}`: one task with its history.
#[derive(Debug, Serialize, JsonSchema)]
pub struct TaskPage {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub title: String,
    pub description: String,
    /// The stored status.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    pub priority: String,
    pub effort: u32,
    pub acceptance: Vec<String>,
    pub tags: Vec<String>,
    /// The result summary, or the reason for a failure or block.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// The tasks it waits on and those waiting on it (`blocks` edges).
    pub depends_on: Vec<String>,
    pub dependents: Vec<String>,
    /// The prompt of its latest attempt, if it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    pub artifacts: Vec<ArtifactInfo>,
    /// Oldest first.
    pub attempts: Vec<AttemptInfo>,
    /// Its latest events, newest first.
    pub events: Vec<Change>,
    /// The git work of its last attempt in a worktree: branch, diff size, merge state.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<serde_json::Value>")]
    pub git: Option<downbeat_core::attempt::GitWork>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ArtifactInfo {
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// One attempt from the ledger.
#[derive(Debug, Serialize, JsonSchema)]
pub struct AttemptInfo {
    /// 1 for the first.
    pub number: u32,
    pub executor: String,
    /// Who ran it (a runner or worker, or an MCP client).
    pub worker: String,
    pub started_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<String>,
    /// Wall time, for an attempt that ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<i64>,
    /// `completed`, `failed`, `cancelled`, …; absent while it runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens_prompt: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens_completion: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
}

/// `GET /api/tasks/{id}/output`: rendered output lines of an attempt from a byte offset on.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Output {
    pub attempt: u32,
    /// Ask again with `from=NEXT` for what follows.
    pub next: u64,
    pub lines: Vec<String>,
    /// The attempt has ended: nothing more will come.
    pub ended: bool,
}

/// `GET /api/tasks/{id}/diff`: what a task changed in its worktree.
#[derive(Debug, Serialize, JsonSchema)]
pub struct DiffPage {
    pub task: String,
    pub attempt: u32,
    pub branch: String,
    /// The commit it started from.
    pub base: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head: Option<String>,
    /// `git diff` from `base` to `head` (or its `--stat`).
    pub diff: String,
}

/// `GET /api/run`: how the work goes.
#[derive(Debug, Serialize, JsonSchema)]
pub struct RunPage {
    pub done: u64,
    pub total: u64,
    pub counts: BTreeMap<String, u64>,
    /// Per minute over the last hour of activity (oldest first): tasks completed and the most
    /// tasks running at once.
    pub series: Vec<Point>,
    /// Failed tasks with the end of their last attempt's error.
    pub failures: Vec<Failure>,
    pub workers: Vec<WorkerInfo>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Point {
    /// The minute's start, RFC 3339.
    pub at: String,
    pub completed: u32,
    pub running: u32,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Failure {
    pub id: String,
    pub title: String,
    /// The last lines of the error of its last attempt (or the task's result).
    pub error: String,
    pub attempts: u32,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct WorkerInfo {
    pub name: String,
    pub host: String,
    pub slots: u32,
    pub alive: bool,
    /// RFC 3339.
    pub heartbeat: String,
    pub running: Vec<String>,
}

/// `GET /api/context`: what the team knows.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ContextPage {
    pub objectives: Vec<ObjectiveInfo>,
    /// Decisions in force (superseded ones left out), newest first.
    pub decisions: Vec<Note>,
    /// The latest insights, newest first.
    pub insights: Vec<Note>,
    /// Flags raised, newest first.
    pub flags: Vec<FlagInfo>,
    pub holds: Vec<HoldInfo>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ObjectiveInfo {
    pub id: String,
    pub title: String,
    /// Leaves done and in all under its linked tasks.
    pub done: u32,
    pub total: u32,
}

/// A decision or an insight.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Note {
    pub id: String,
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    pub at: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct FlagInfo {
    pub flag: String,
    /// The task that raised it.
    pub task: String,
    pub at: String,
    /// What the agent said about it.
    pub detail: String,
    /// `raised` (waiting for its follow-up or for someone), `handled` or `suppressed` (the loop
    /// guard kept its rules from acting again).
    pub state: String,
    /// What its rules did, why nothing happened, or what handled it.
    pub note: String,
    /// The follow-up task whose completion handles it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub follow_up: Option<String>,
}

/// The answer of a steering action.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Done {
    /// What was done, in words.
    pub message: String,
    /// The tasks or holds it changed.
    pub changed: Vec<String>,
}

/// Every error: `{"error": {...}}` with an HTTP status that says its kind.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ErrorBody {
    pub error: ErrorInfo,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ErrorInfo {
    /// `not_found`, `invalid`, `conflict`, `storage`, `refused`, `internal`, …
    pub kind: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// `GET /api/schema`: the JSON schema of every answer, by name.
pub fn schemas() -> serde_json::Value {
    let mut out = serde_json::Map::new();
    macro_rules! add {
        ($($t:ty),*) => {$(
            out.insert(
                stringify!($t).to_owned(),
                serde_json::to_value(schemars::schema_for!($t)).unwrap_or_default(),
            );
        )*};
    }
    add!(
        Graph,
        TaskPage,
        Output,
        RunPage,
        ContextPage,
        Change,
        Done,
        ErrorBody
    );
    serde_json::Value::Object(out)
}
