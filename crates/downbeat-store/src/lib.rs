//! Durable state of Downbeat behind one trait, [`Store`].
//!
//! Every mutating call is one transaction that also appends to the event log, so the log and
//! the state never disagree. Status changes are checked against the core state machine and new
//! `blocks` edges against cycles *inside* that transaction, so concurrent writers cannot race
//! past a check. Backends: [`sqlite`] (embedded, the default) and [`postgres`] (shared by
//! several processes on several machines). The `contract` suite (behind the `contract-tests`
//! feature, which this crate's own tests enable) states what every backend must do; each
//! backend runs it. [`transfer`] moves a whole project from one database to another.
//!
//! Must never: read the environment or configuration files, print, or decide policy (which
//! tasks are stale, what to archive): callers pass those decisions in.

#[cfg(feature = "contract-tests")]
pub mod contract;
mod effect_tx;
pub mod effects;
mod error;
pub mod holds;
pub mod postgres;
mod shared;
pub mod sqlite;
mod store;
mod traits;
pub mod transfer;
mod types;
mod url;
pub mod view;

pub use downbeat_core::context::Artifact;
pub use effects::EffectsDone;
pub use error::{Error, Result};
pub use holds::{Hold, Holds};
pub use store::Store;
pub use traits::{
    ChangeFeed, ContextStore, ExecutionStore, MaintenanceStore, TaskStore, WorkerStore,
};
pub use transfer::{Transfer, open_transfer};
pub use types::{
    AppliedPlan, ArtifactRecord, AttemptRecord, Batch, BatchResult, CapLimit, ClaimRequest,
    Claimed, EventQuery, Finish, FinishStatus, FlagFilter, Integrity, SchemaInfo, TaskFilter,
    WorkerRecord,
};
pub use url::{check_supported, redact_url};

/// Opens the store a URL names: `sqlite:PATH` (or a bare path ending in `.db`), or
/// `postgres://…` / `postgresql://…` (see [`postgres`] for the parameters, `schema=NAME` among
/// them). With `create`, a missing database (SQLite file, PostgreSQL schema) is created.
pub async fn open(url: &str, create: bool) -> Result<Box<dyn Store>> {
    let store: Box<dyn Store> = transfer::open_transfer(url, create).await?;
    Ok(store)
}
