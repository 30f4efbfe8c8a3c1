//! What every profile shares: the agents, what they may do, one attempt as a profile sees it,
//! what it reads back, and the trait a profile implements. A leaf: profiles and the executor
//! build on it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The agent CLIs with a built-in profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AgentKind {
    Claude,
    Codex,
    Gemini,
    Aider,
    Opencode,
}

impl AgentKind {
    pub const ALL: [AgentKind; 5] = [
        AgentKind::Claude,
        AgentKind::Codex,
        AgentKind::Gemini,
        AgentKind::Aider,
        AgentKind::Opencode,
    ];

    /// The name of its program, its built-in executor and its profile.
    pub fn name(self) -> &'static str {
        match self {
            AgentKind::Claude => "claude",
            AgentKind::Codex => "codex",
            AgentKind::Gemini => "gemini",
            AgentKind::Aider => "aider",
            AgentKind::Opencode => "opencode",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == s)
    }
}

/// What a profile was written from.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct About {
    /// The product's name.
    pub title: &'static str,
    /// The versions whose documented interface the profile follows (`major.minor` prefixes).
    pub versions: &'static [&'static str],
    pub install: &'static str,
    pub login: &'static str,
    /// Whether it can resume its session on a retry.
    pub resumes: bool,
    /// Whether it reports cost.
    pub reports_cost: bool,
    /// Whether MCP servers can be handed to it.
    pub takes_mcp: bool,
}

/// What an agent may do in its working directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Permission {
    /// Read and answer; no edits, no mutating commands.
    Read,
    /// Edit files and run commands in its working directory.
    Edit,
    /// Everything (no sandbox, no approvals).
    Full,
}

impl Permission {
    /// The default for a role: read-only for reviewers and researchers, edit for the rest.
    pub fn for_role(role: Option<&str>) -> Self {
        match role {
            Some("reviewer" | "researcher") => Permission::Read,
            _ => Permission::Edit,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Permission::Read => "read",
            Permission::Edit => "edit",
            Permission::Full => "full",
        }
    }
}

/// An MCP server (stdio) to hand to an agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpServer {
    pub command: String,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

/// One attempt as a profile sees it. The prompt itself is not here: a profile hands the agent
/// the prompt file or stdin, never an argument (no length limit, nothing in `ps`).
pub(crate) struct Invocation<'a> {
    pub prompt_file: &'a Path,
    pub attempt_dir: &'a Path,
    pub permission: Permission,
    pub model: Option<&'a str>,
    /// The session of the previous attempt, to resume.
    pub resume: Option<&'a str>,
    /// MCP servers to hand over (name → server).
    pub mcp: &'a BTreeMap<String, McpServer>,
}

/// What a profile wants run.
#[derive(Debug, Default)]
pub(crate) struct Command {
    /// Options after the program; the executor's extra `args` follow them.
    pub args: Vec<String>,
    /// Positional arguments that must come last, after the extra `args` (a subcommand's).
    pub tail: Vec<String>,
    /// Whether the prompt goes to stdin (else stdin is empty).
    pub stdin_prompt: bool,
    pub env: BTreeMap<String, String>,
}

/// What a profile read from the agent's output.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentOutput {
    /// The agent's final message.
    pub message: Option<String>,
    pub tokens_in: Option<u64>,
    pub tokens_out: Option<u64>,
    pub cost_usd: Option<f64>,
    pub session: Option<String>,
    /// The agent said the run failed, and why.
    pub error: Option<String>,
    /// Edits or commands the agent was refused for lack of permission.
    #[serde(default)]
    pub denied: Vec<String>,
}

/// A built-in profile.
pub(crate) trait Profile: Send + Sync {
    fn about(&self) -> About;
    /// The arguments, stdin and environment of one attempt.
    fn command(&self, inv: &Invocation<'_>) -> Command;
    /// Reads the output (stdout, and stderr where the CLI reports there).
    fn parse(&self, stdout: &str, stderr: &str) -> AgentOutput;
    /// One raw output line for people.
    fn render(&self, line: &str) -> Option<String>;
    /// Whether the CLI will take the MCP servers this attempt would hand it.
    fn takes_mcp_in(&self, _attempt_dir: &Path) -> bool {
        true
    }
    /// The version in what `--version` printed.
    fn version(&self, printed: &str) -> Option<String> {
        printed
            .split_whitespace()
            .find(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit()) && w.contains('.'))
            .map(|w| w.trim_start_matches('v').to_owned())
    }
}

/// Where a profile writes a file of its own for an attempt (an MCP configuration).
pub(crate) fn attempt_file(inv: &Invocation<'_>, name: &str, content: &str) -> PathBuf {
    let path = inv.attempt_dir.join(name);
    let _ = std::fs::write(&path, content);
    path
}

/// JSON of a stream line, if it is one.
pub(crate) fn json_line(line: &str) -> Option<serde_json::Value> {
    let l = line.trim();
    if !l.starts_with('{') {
        return None;
    }
    serde_json::from_str(l).ok()
}

/// The first `n` characters of `s` on one line, for log lines.
pub(crate) fn short(s: &str, n: usize) -> String {
    let one: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one.chars().count() <= n {
        one
    } else {
        let mut t: String = one.chars().take(n).collect();
        t.push('…');
        t
    }
}
