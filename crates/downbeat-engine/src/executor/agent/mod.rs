//! The `agent` executor: the coding-agent CLIs people use (Claude Code, Codex, Gemini CLI,
//! Aider, OpenCode), each driven through a built-in profile written from that CLI's documented
//! non-interactive interface (docs/agents.md names the sources and versions).
//!
//! A profile turns one attempt into a command line: the non-interactive mode, the prompt
//! delivered exactly once, the permission level mapped to the CLI's own flags, the model and
//! extra flags, machine-readable output, the MCP servers handed over, and a resumed session on
//! a retry. The program then runs like any [`Process`]; afterwards the profile reads its
//! output into the attempt (final message → summary, tokens, cost, session id). The ledger
//! keeps the agent, session and cost (`AttemptDetail`), so the next attempt resumes the session
//! on any machine and spending is counted whoever ran it; `agent.json` in the attempt directory
//! keeps the same for `downbeat logs`, which reads it to render the stream.
//!
//! Must never: deliver the prompt twice, let a read-only role edit, or pass a secret of the
//! runner's in arguments.

mod aider;
mod claude;
mod codex;
mod gemini;
mod opencode;
mod preflight;
pub(crate) mod profile;

use std::collections::BTreeMap;
use std::path::Path;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::process::Process;
use super::types::{
    AgentReport, AttemptSpec, Executor, Outcome, OutcomeKind, ProcessSpec, Requirement, Stdin,
    TokenUsage,
};

pub use preflight::{Check, check_program};
pub use profile::{About, AgentKind, AgentOutput, McpServer, Permission};
pub(crate) use profile::{Invocation, Profile};

impl AgentKind {
    pub(crate) fn profile(self) -> &'static dyn Profile {
        match self {
            AgentKind::Claude => &claude::Claude,
            AgentKind::Codex => &codex::Codex,
            AgentKind::Gemini => &gemini::Gemini,
            AgentKind::Aider => &aider::Aider,
            AgentKind::Opencode => &opencode::Opencode,
        }
    }

    /// What the profile was written for, and how to get and set up the CLI.
    pub fn about(self) -> About {
        self.profile().about()
    }

    /// Renders one line of the agent's raw output for people (`None`: nothing worth showing).
    pub fn render_line(self, line: &str) -> Option<String> {
        self.profile().render(line)
    }
}

/// `[executors.NAME] type = "agent"`: a coding-agent CLI through its profile.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSpec {
    /// `claude`, `codex`, `gemini`, `aider` or `opencode`.
    pub agent: String,
    /// The program to run (default: the agent's own name, found on `PATH`).
    pub program: Option<String>,
    /// Passed as the CLI's model flag.
    pub model: Option<String>,
    /// For every task this executor runs; default: by role ([`Permission::for_role`], or the
    /// role's `permission` setting).
    pub permission: Option<Permission>,
    /// Extra arguments, after the profile's own.
    #[serde(default)]
    pub args: Vec<String>,
    /// Extra environment variables.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Grace period between SIGTERM and SIGKILL, in milliseconds (default 5 s).
    pub grace: Option<u64>,
    /// Resume the previous attempt's session on a retry, where the CLI can (default true).
    pub resume: Option<bool>,
    /// Hand the agent the project's MCP servers, Downbeat's own among them (default true).
    pub mcp: Option<bool>,
}

/// Why an [`AgentSpec`] cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgentError {
    #[error("unknown agent `{0}` (built in: claude, codex, gemini, aider, opencode)")]
    UnknownAgent(String),
    #[error("the `program` of an agent executor is empty")]
    EmptyProgram,
}

/// What `agent.json` in an attempt directory records.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentRecord {
    pub agent: Option<AgentKind>,
    pub permission: Option<Permission>,
    pub model: Option<String>,
    /// The session resumed by this attempt.
    pub resumed: Option<String>,
    #[serde(flatten)]
    pub output: AgentOutput,
}

/// The name under which Downbeat's own MCP server is handed to agents.
pub const OWN_SERVER: &str = "downbeat";

/// File name of the record in the attempt directory.
pub const RECORD: &str = "agent.json";

/// Reads an attempt's `agent.json`, if it has one.
pub fn read_record(attempt_dir: &Path) -> Option<AgentRecord> {
    let text = std::fs::read_to_string(attempt_dir.join(RECORD)).ok()?;
    serde_json::from_str(&text).ok()
}

/// Runs an agent CLI for each attempt through its profile.
#[derive(Debug, Clone)]
pub struct Agent {
    kind: AgentKind,
    spec: AgentSpec,
    /// Role → permission, from the project's role settings.
    roles: BTreeMap<String, Permission>,
    mcp: BTreeMap<String, McpServer>,
}

impl Agent {
    /// Checks the spec; `roles` gives per-role permissions, `mcp` the servers to hand over.
    pub fn new(
        spec: AgentSpec,
        roles: BTreeMap<String, Permission>,
        mcp: BTreeMap<String, McpServer>,
    ) -> Result<Self, AgentError> {
        let kind = AgentKind::parse(&spec.agent)
            .ok_or_else(|| AgentError::UnknownAgent(spec.agent.clone()))?;
        if spec.program.as_deref().is_some_and(|p| p.trim().is_empty()) {
            return Err(AgentError::EmptyProgram);
        }
        Ok(Self {
            kind,
            spec,
            roles,
            mcp,
        })
    }

    pub fn kind(&self) -> AgentKind {
        self.kind
    }

    /// The program run for each attempt.
    pub fn program(&self) -> &str {
        self.spec.program.as_deref().unwrap_or(self.kind.name())
    }

    /// The permission an attempt of `role` runs with.
    pub fn permission(&self, role: Option<&str>) -> Permission {
        self.spec
            .permission
            .or_else(|| role.and_then(|r| self.roles.get(r).copied()))
            .unwrap_or_else(|| Permission::for_role(role))
    }

    /// The session the previous attempt of this task left, when resuming applies: the same
    /// agent ran it (a session id means nothing to another CLI).
    fn previous_session(&self, spec: &AttemptSpec) -> Option<String> {
        if spec.attempt < 2 || self.spec.resume == Some(false) || !self.kind.about().resumes {
            return None;
        }
        // The ledger's record (any machine), else the attempt directory on this one.
        if let Some(prev) = &spec.previous {
            return (prev.agent.as_deref() == Some(self.kind.name()))
                .then(|| prev.session.clone())
                .flatten();
        }
        let prev = spec
            .attempt_dir
            .parent()?
            .join((spec.attempt - 1).to_string());
        let record = read_record(&prev)?;
        if record.agent != Some(self.kind) {
            return None;
        }
        record.output.session
    }

    /// The MCP servers of one attempt: Downbeat's own acts as this attempt's agent.
    fn servers_for(&self, spec: &AttemptSpec) -> BTreeMap<String, McpServer> {
        if self.spec.mcp == Some(false)
            || !self.kind.about().takes_mcp
            || !self.kind.profile().takes_mcp_in(&spec.attempt_dir)
        {
            return BTreeMap::new();
        }
        let mut servers = self.mcp.clone();
        if let Some(own) = servers.get_mut(OWN_SERVER) {
            own.env.insert(
                "DOWNBEAT_ACTOR".into(),
                format!("agent:{}:{}", self.kind.name(), spec.task_id),
            );
            own.env
                .insert("DOWNBEAT_MCP_TASK".into(), spec.task_id.clone());
        }
        servers
    }

    fn process_for(&self, inv: &Invocation<'_>) -> ProcessSpec {
        let cmd = self.kind.profile().command(inv);
        let mut argv = vec![self.program().to_owned()];
        argv.extend(cmd.args);
        argv.extend(self.spec.args.iter().cloned());
        argv.extend(cmd.tail);
        let mut env = cmd.env;
        env.extend(self.spec.env.clone());
        ProcessSpec {
            argv,
            shell: None,
            env,
            grace: self.spec.grace.map(std::time::Duration::from_millis),
            stdin: if cmd.stdin_prompt {
                Stdin::Prompt
            } else {
                Stdin::Empty
            },
        }
    }
}

/// What an agent is run for: a task's attempt, or a question that belongs to no task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    Task,
    Question,
}

#[async_trait]
impl Executor for Agent {
    async fn run(&self, spec: &AttemptSpec, cancel: CancellationToken) -> Outcome {
        self.run_for(spec, cancel, Purpose::Task).await.0
    }

    /// Read-only, without MCP servers, a resumed session or how to report back: the answer is
    /// the agent's final message.
    async fn ask(
        &self,
        spec: &AttemptSpec,
        cancel: CancellationToken,
    ) -> (Outcome, Option<String>) {
        self.run_for(spec, cancel, Purpose::Question).await
    }

    fn requirement(&self) -> Option<Requirement> {
        Some(Requirement::Agent {
            program: self.program().to_owned(),
            kind: self.kind,
        })
    }
}

impl Agent {
    /// One run of the agent's CLI; with the final message it gave.
    async fn run_for(
        &self,
        spec: &AttemptSpec,
        cancel: CancellationToken,
        purpose: Purpose,
    ) -> (Outcome, Option<String>) {
        let start = std::time::Instant::now();
        let question = purpose == Purpose::Question;
        let permission = if question {
            Permission::Read
        } else {
            self.permission(spec.role.as_deref())
        };
        let resumed = if question {
            None
        } else {
            self.previous_session(spec)
        };
        let prompt_file = spec.attempt_dir.join(super::types::files::PROMPT);
        // The profile may write files of its own there before the process starts.
        if let Err(e) = std::fs::create_dir_all(&spec.attempt_dir) {
            let mut o = Outcome::new(OutcomeKind::Error, start.elapsed());
            o.error = Some(format!(
                "could not create attempt directory {}: {e}",
                spec.attempt_dir.display()
            ));
            return (o, None);
        }
        let mcp = if question {
            BTreeMap::new()
        } else {
            self.servers_for(spec)
        };
        let inv = Invocation {
            prompt_file: &prompt_file,
            attempt_dir: &spec.attempt_dir,
            permission,
            model: self.spec.model.as_deref(),
            resume: resumed.as_deref(),
            mcp: &mcp,
        };
        let ps = self.process_for(&inv);
        let mut record = AgentRecord {
            agent: Some(self.kind),
            permission: Some(permission),
            model: self.spec.model.clone(),
            resumed: resumed.clone(),
            output: AgentOutput::default(),
        };
        // Written first, so `downbeat logs` knows how to render the stream while it runs.
        write_record(&spec.attempt_dir, &record);
        // The agent learns how to report back, and what it may use to.
        let mut spec = spec.clone();
        if !question {
            spec.prompt =
                with_reporting(&spec.prompt, &spec.attempt_dir, permission, !mcp.is_empty());
        }
        let spec = &spec;
        let process = match Process::new(ps) {
            Ok(p) => p,
            Err(e) => {
                let mut o = Outcome::new(OutcomeKind::Error, start.elapsed());
                o.error = Some(format!("agent `{}`: {e}", self.kind.name()));
                return (o, None);
            }
        };
        let mut outcome = process.run(spec, cancel).await;
        let stdout = read_text(outcome.stdout.as_deref());
        let stderr = read_text(outcome.stderr.as_deref());
        record.output = self.kind.profile().parse(&stdout, &stderr);
        write_record(&spec.attempt_dir, &record);
        apply(&mut outcome, &record.output);
        outcome.detail.agent = Some(self.kind.name().to_owned());
        outcome.detail.session = record.output.session.clone();
        outcome.detail.cost_usd = record.output.cost_usd;
        outcome.duration = start.elapsed();
        let text = record.output.message.filter(|m| !m.trim().is_empty());
        (outcome, text)
    }
}

/// Folds what the profile read into the outcome: tokens, the final message as the summary when
/// the agent wrote no report of its own, and the agent's own verdict on failure.
fn apply(outcome: &mut Outcome, out: &AgentOutput) {
    if out.tokens_in.is_some() || out.tokens_out.is_some() {
        outcome.tokens = Some(TokenUsage {
            prompt: out.tokens_in.unwrap_or(0),
            completion: out.tokens_out.unwrap_or(0),
        });
    }
    if let Some(m) = out
        .message
        .as_deref()
        .map(str::trim)
        .filter(|m| !m.is_empty())
    {
        let report = outcome.report.get_or_insert_with(AgentReport::default);
        if report.summary.is_none() {
            report.summary = Some(m.to_owned());
        }
    }
    if let Some(e) = &out.error
        && outcome.kind == OutcomeKind::Succeeded
    {
        outcome.kind = OutcomeKind::Failed;
        outcome.error = Some(format!("the agent reported a failure: {e}"));
    } else if let Some(e) = &out.error
        && outcome.kind == OutcomeKind::Failed
    {
        outcome.error = Some(match outcome.error.take() {
            Some(prev) => format!("{e} ({prev})"),
            None => e.clone(),
        });
    }
}

/// The prompt with how to report back: the result file (summary, flags, discovered work,
/// artifacts), and Downbeat's MCP tools when the agent has them.
fn with_reporting(prompt: &str, attempt_dir: &Path, permission: Permission, mcp: bool) -> String {
    let result = attempt_dir.join(super::types::files::RESULT);
    let mut s = String::with_capacity(prompt.len() + 1200);
    s.push_str(prompt.trim_end());
    s.push_str("\n\n## How to report back\n\n");
    s.push_str(&format!(
        "Your permission level is `{}`{}. When you are done, end with a short summary of what \
         you did. You may also write JSON to `{}` (also named by $DOWNBEAT_RESULT_FILE), every \
         field optional: `{{\"status\": \"completed\" | \"failed\", \"summary\": \"…\", \
         \"artifacts\": [\"path/in/the/project\"], \"flags\": [\"SECURITY_BREACH: what you found\"], \
         \"discovered\": [{{\"title\": \"…\", \"role\": \"…\", \"description\": \"…\"}}]}}`. \
         Flags alert the rest of the team (the project's rules may add a follow-up that gets \
         what you found); discovered tasks are added to the plan.\n",
        permission.name(),
        match permission {
            Permission::Read => " (read and report; do not change files)",
            Permission::Edit => " (edit files and run commands in the project)",
            Permission::Full => "",
        },
        result.display()
    ));
    if mcp {
        s.push_str(
            "\nThe `downbeat` MCP server is connected: read the project's objectives, decisions \
             and insights with its `context` tool, and record what you learn there too.\n",
        );
    }
    s
}

fn read_text(path: Option<&Path>) -> String {
    path.and_then(|p| std::fs::read(p).ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

fn write_record(dir: &Path, r: &AgentRecord) {
    if let Ok(text) = serde_json::to_string_pretty(r) {
        let _ = std::fs::write(dir.join(RECORD), text);
    }
}

#[cfg(test)]
mod tests;
