//! Executors: what runs one attempt of one task.
//!
//! An executor gets an [`AttemptSpec`] (everything about the attempt, already rendered) and a
//! cancellation token, and returns an [`Outcome`]. It never touches the store: the scheduler
//! records what it returns. It must honour the timeout and the token, and must not leave
//! processes behind.
//!
//! # Result protocol
//!
//! An agent may report back by writing JSON to the file named by `DOWNBEAT_RESULT_FILE`
//! (see [`AgentReport`]). Without a report, the exit code decides success.

use serde::{Deserialize, Serialize};

pub use downbeat_core::flags::DiscoveredTask;

pub mod agent;
pub mod http;
pub mod noop;
pub mod process;
mod types;

pub use types::{
    AgentReport, AttemptSpec, Executor, Outcome, OutcomeKind, ProcessSpec, Requirement, Stdin,
    TokenUsage, env, files, reply_text,
};

/// How a task is executed, as configured per task, per role or as the default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum ExecutorSpec {
    /// Succeeds at once; for trying things out and for benchmarks.
    Noop,
    /// Runs a program.
    Process(ProcessSpec),
    /// Calls an OpenAI-compatible chat-completions endpoint.
    Http(http::HttpSpec),
    /// Runs a coding-agent CLI through its built-in profile.
    Agent(agent::AgentSpec),
}
