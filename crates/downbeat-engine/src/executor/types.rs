//! What executors share: the attempt they are given, the outcome and report they return, the
//! trait itself, and the names of the variables and files of the process protocol.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use downbeat_core::attempt::AttemptDetail;
use downbeat_core::flags::{DiscoveredTask, Flag};

/// A program to run for each attempt.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessSpec {
    /// Program and arguments (no shell). Exactly one of `argv` and `shell` must be set.
    #[serde(default)]
    pub argv: Vec<String>,
    /// A shell command line, run with `sh -c`.
    pub shell: Option<String>,
    /// Extra environment variables.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Grace period between SIGTERM and SIGKILL on cancellation or timeout (default 5 s).
    #[serde(default, with = "opt_millis")]
    pub grace: Option<Duration>,
    /// What the program reads on stdin: the prompt (default), or nothing.
    #[serde(default)]
    pub stdin: Stdin,
}

/// What a program reads on stdin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stdin {
    /// The rendered prompt.
    #[default]
    Prompt,
    /// Nothing (`/dev/null`): for programs that take the prompt otherwise and would read
    /// stdin as more of it.
    Empty,
}

/// Everything about one attempt, ready to run.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptSpec {
    /// Short id of the task.
    pub task_id: String,
    pub title: String,
    pub role: Option<String>,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// The rendered prompt: written to `prompt.md` in the attempt directory and to stdin.
    pub prompt: String,
    /// Working directory of the agent (the project root).
    pub workspace: PathBuf,
    /// A fresh directory for this attempt: prompt, captured output, result file, artifacts.
    pub attempt_dir: PathBuf,
    /// Kill the attempt after this long.
    pub timeout: Option<Duration>,
    /// Extra facts for the environment (`DOWNBEAT_*` are added by the executor).
    pub env: BTreeMap<String, String>,
    /// Variables of the runner's environment the program must not see.
    pub env_remove: Vec<String>,
    /// What the ledger kept of the task's previous attempt (its agent and session), when
    /// there was one.
    pub previous: Option<AttemptDetail>,
}

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OutcomeKind {
    Succeeded,
    Failed,
    TimedOut,
    Cancelled,
    /// The executor could not start the attempt (missing program, bad configuration).
    Error,
}

/// What an executor returns.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub kind: OutcomeKind,
    pub exit_code: Option<i32>,
    /// Why it did not succeed, in a sentence.
    pub error: Option<String>,
    /// What the agent reported through the result protocol, if anything.
    pub report: Option<AgentReport>,
    /// Files holding the captured stdout and stderr, if any.
    pub stdout: Option<PathBuf>,
    pub stderr: Option<PathBuf>,
    pub tokens: Option<TokenUsage>,
    /// Agent, session, cost and git work, for the attempt ledger.
    pub detail: AttemptDetail,
    pub duration: Duration,
}

impl Outcome {
    pub fn new(kind: OutcomeKind, duration: Duration) -> Self {
        Self {
            kind,
            exit_code: None,
            error: None,
            report: None,
            stdout: None,
            stderr: None,
            tokens: None,
            detail: AttemptDetail::default(),
            duration,
        }
    }
}

/// Token counts of an LLM call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TokenUsage {
    pub prompt: u64,
    pub completion: u64,
}

/// The JSON an agent writes to `DOWNBEAT_RESULT_FILE`. Every field is optional.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentReport {
    /// `completed` (default when the process exits 0) or `failed`.
    pub status: Option<String>,
    /// What was done, in a few sentences.
    pub summary: Option<String>,
    /// Files produced, relative to the workspace.
    #[serde(default)]
    pub artifacts: Vec<String>,
    /// Cross-domain flags, e.g. `DATABASE_INVESTIGATION`, `SECURITY_BREACH`: `NAME`,
    /// `NAME: detail` or `{"flag": NAME, "detail": TEXT}`.
    #[serde(default)]
    pub flags: Vec<Flag>,
    /// Work discovered along the way, added to the graph.
    #[serde(default)]
    pub discovered: Vec<DiscoveredTask>,
}

/// Runs attempts.
#[async_trait]
pub trait Executor: Send + Sync {
    /// Runs one attempt to its end. Never panics; every failure is an [`Outcome`].
    async fn run(&self, spec: &AttemptSpec, cancel: CancellationToken) -> Outcome;

    /// What must be installed for it to run, checked before a run starts.
    fn requirement(&self) -> Option<Requirement> {
        None
    }

    /// Puts one question that belongs to no task (a plan being drafted): nothing is to change,
    /// no result protocol is offered, and the answer is the reply's text (`None`: it gave
    /// none). By default the attempt runs as usual and the text is read from its directory
    /// (`response.md`, else `stdout.log`); agents answer read-only.
    async fn ask(
        &self,
        spec: &AttemptSpec,
        cancel: CancellationToken,
    ) -> (Outcome, Option<String>) {
        let outcome = self.run(spec, cancel).await;
        let text = reply_text(&spec.attempt_dir);
        (outcome, text)
    }
}

/// The text a question's attempt left: the reply of an endpoint (`response.md`), else what the
/// program printed (`stdout.log`); `None` when neither holds anything but white space.
pub fn reply_text(attempt_dir: &std::path::Path) -> Option<String> {
    [files::RESPONSE, files::STDOUT]
        .iter()
        .filter_map(|f| std::fs::read(attempt_dir.join(f)).ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .find(|t| !t.trim().is_empty())
}

/// What an executor needs on the machine.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Requirement {
    /// A program, looked up on `PATH` (never run: it could do anything).
    Program(String),
    /// An agent CLI: found, and its `--version` compared with what its profile was written for.
    Agent {
        program: String,
        kind: super::agent::profile::AgentKind,
    },
}

/// Names of the environment variables every process attempt gets.
pub mod env {
    pub const TASK_ID: &str = "DOWNBEAT_TASK_ID";
    pub const TASK_TITLE: &str = "DOWNBEAT_TASK_TITLE";
    pub const ROLE: &str = "DOWNBEAT_ROLE";
    pub const ATTEMPT: &str = "DOWNBEAT_ATTEMPT";
    pub const WORKSPACE: &str = "DOWNBEAT_WORKSPACE";
    pub const ATTEMPT_DIR: &str = "DOWNBEAT_ATTEMPT_DIR";
    pub const PROMPT_FILE: &str = "DOWNBEAT_PROMPT_FILE";
    pub const RESULT_FILE: &str = "DOWNBEAT_RESULT_FILE";
    /// The lease holder (runner or worker) that started the program. Inherited by everything
    /// the program starts, so a later runner can find and stop what a dead one left behind.
    pub const RUNNER: &str = "DOWNBEAT_RUNNER";
}

/// File names inside the attempt directory.
pub mod files {
    pub const PROMPT: &str = "prompt.md";
    pub const STDOUT: &str = "stdout.log";
    pub const STDERR: &str = "stderr.log";
    pub const RESULT: &str = "result.json";
    /// An endpoint's reply (the `http` executor).
    pub const RESPONSE: &str = "response.md";
}

mod opt_millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&(d.as_millis() as u64)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_millis))
    }
}
