//! Downbeat's application layer: one typed use case per thing a front end can ask for, on top
//! of the engine, the store and the core.
//!
//! Every front end — the CLI, the MCP server, the web view — calls this crate and nothing of
//! each other. This crate must never read the environment, parse command lines, print, choose
//! exit codes or speak a wire protocol: front ends pass in what they resolved ([`Globals`]) and
//! render the typed answers they get back.

pub mod agents;
pub mod answer;
pub mod cache;
pub mod claims;
pub mod consensus;
pub mod context;
pub mod cycles;
pub mod documents;
pub mod drafting;
pub mod error;
pub mod export;
pub mod holds;
pub mod imports;
pub mod logs;
pub mod maintenance;
pub mod memory;
pub mod objectives;
pub mod patterns;
pub mod plan_preview;
pub mod plans;
pub mod project;
pub mod rule_check;
pub mod rules;
pub mod runs;
pub mod session_context;
pub mod tasks;
pub mod templates;
pub mod views;
pub mod watch;
pub mod worktrees;

pub use error::{Error, Kind, Result};
pub use project::{Globals, Project};
