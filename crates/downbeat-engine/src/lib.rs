//! Downbeat's execution engine: runs the task graph with real agents.
//!
//! Must never: print (the CLI renders the event stream), read configuration files or the
//! environment of the calling process beyond what it is handed.

pub mod artifacts;
pub mod config;
pub mod executor;
pub mod host;
pub mod prompt;
pub mod prompt_context;
pub mod rules;
pub mod run;
pub mod scrub;
pub mod worktree;
