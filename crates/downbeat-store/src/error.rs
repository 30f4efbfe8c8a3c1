//! What can go wrong in a store call: [`Error`], and the [`Result`] every store call returns.

use downbeat_core::graph::TaskCycle;
use downbeat_core::ids::TaskId;
use downbeat_core::plan::PlanErrors;
use downbeat_core::task::TransitionError;

/// What can go wrong in a store call.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no {what} matches `{query}`")]
    NotFound { what: &'static str, query: String },
    #[error("`{prefix}` is ambiguous: it matches {}", candidates.join(", "))]
    Ambiguous {
        prefix: String,
        candidates: Vec<String>,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("task {id}: {source}")]
    Transition {
        id: TaskId,
        #[source]
        source: TransitionError,
    },
    /// The state changed under a write that depended on it (a living plan's diff).
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Cycle(#[from] TaskCycle),
    #[error(transparent)]
    Plan(#[from] PlanErrors),
    #[error(
        "the database schema (version {found}) is newer than this downbeat understands (up to {supported})"
    )]
    SchemaTooNew { found: i64, supported: i64 },
    #[error("cannot open the database at {location}: {message}")]
    Open { location: String, message: String },
    #[error("the database is read-only: {0}")]
    ReadOnly(String),
    #[error("database error: {0}")]
    Database(String),
    /// The database server could not be reached or the connection broke (a restart, a
    /// network failure). Whether a write in flight was committed is unknown; the next call
    /// reconnects.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A project can only be moved into an empty database.
    #[error("the database {location} is not empty: it holds {holds}")]
    NotEmpty { location: String, holds: String },
    /// Moving a project needs both databases at the same schema version.
    #[error(
        "the source database is at schema version {from_version} and the target at version {to_version}; both must be at the same version"
    )]
    SchemaMismatch { from_version: i64, to_version: i64 },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
