//! Downbeat's core: the domain model, the task state machine and the planner.
//!
//! Nothing in this crate performs I/O: no files, no network, no environment, no clock. Time and
//! ids come in as values from the caller.

pub mod admission;
pub mod attempt;
pub mod command;
pub mod consensus;
pub mod context;
pub mod events;
pub mod flags;
pub mod graph;
pub mod ids;
pub mod maintain;
pub mod memory;
pub mod patterns;
pub mod plan;
pub mod plan_diff;
pub mod plan_lines;
pub mod planner;
pub mod report;
pub mod role;
pub mod task;
pub mod time;
