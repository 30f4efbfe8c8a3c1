//! What the tools do, returning compact JSON: ids and what changed, never echoes of unchanged
//! state. Every operation reads the store afresh, or the graph through the [`GraphCache`],
//! which checks the event log first; the use cases are the application layer's
//! (`downbeat-app`), the engine's for claims, prompts, artifacts and reports.
//!
//! [`GraphCache`]: downbeat_app::cache::GraphCache

mod claims;
mod drafting;
mod project;
mod shape;
mod tasks;
mod team;

pub use claims::*;
pub use drafting::*;
pub use project::*;
pub use shape::{Out, sanitize};
pub use tasks::*;
pub use team::*;
