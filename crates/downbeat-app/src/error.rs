//! The application layer's error: what went wrong, what kind of failure it is, and a hint for
//! what to do next.
//!
//! Front ends decide what a kind means to their users (the CLI maps kinds to its documented
//! exit codes in one place; MCP turns errors into tool errors). This module must never choose a
//! process exit code or print anything.

use downbeat_store::Error as StoreError;

/// What kind of failure an [`Error`] is. Front ends map kinds, never messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A bug or an unexpected failure.
    Internal,
    /// Wrong usage of a front end (unknown option, missing argument).
    Usage,
    /// Something named does not exist: a task, a record, the project.
    NotFound,
    /// Input is malformed or invalid: a plan file, an argument value, an ambiguous id prefix.
    Invalid,
    /// The request conflicts with the current state: a dependency cycle, an illegal status
    /// change, a task that still waits on unfinished work.
    Conflict,
    /// The database cannot be used: missing, newer schema, read-only, locked, corrupt.
    Storage,
    /// A run ended with tasks failed or not done.
    RunIncomplete,
    /// Interrupted (Ctrl-C, SIGTERM); the graph is consistent and a new run continues it.
    Interrupted,
    /// An agent or endpoint answered, but not with something usable: a draft that did not
    /// validate within its rounds, or no plan at all.
    Rejected,
    /// An agent or endpoint that was asked could not answer: unreachable, timed out, failed.
    Unavailable,
}

/// An error of a use case: message, optional hint, kind.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    pub message: String,
    pub hint: Option<String>,
    pub kind: Kind,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            hint: None,
            kind,
        }
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(Kind::Invalid, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(Kind::NotFound, message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(Kind::Conflict, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(Kind::Internal, message)
    }
    pub fn storage(message: impl Into<String>) -> Self {
        Self::new(Kind::Storage, message)
    }
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
    /// The same error with another kind.
    pub fn with_kind(mut self, kind: Kind) -> Self {
        self.kind = kind;
        self
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        let message = e.to_string();
        match e {
            StoreError::NotFound { what, .. } => {
                let hint = match what {
                    "task" => {
                        "`downbeat list` shows tasks with their ids; any unique prefix of an id, or a plan key, works"
                    }
                    "objective" => "`downbeat objective list` shows objectives",
                    "decision" => "`downbeat decision list` shows decisions",
                    _ => "check the id",
                };
                Self::not_found(message).with_hint(hint)
            }
            StoreError::Ambiguous { .. } => {
                Self::invalid(message).with_hint("type more characters of the id")
            }
            StoreError::Invalid(_) | StoreError::Plan(_) => Self::invalid(message),
            StoreError::Transition { id, .. } => Self::conflict(message).with_hint(format!(
                "`downbeat show {id}` shows the task's current status"
            )),
            StoreError::Conflict(_) => Self::conflict(message)
                .with_hint("work moved on meanwhile; run the command again to see the new state"),
            StoreError::Cycle(_) => Self::conflict(message).with_hint(
                "remove one of these dependencies (`downbeat dep rm`) or drop the new one",
            ),
            StoreError::SchemaTooNew { .. } => Self::storage(message)
                .with_hint("install a newer downbeat to use this database"),
            StoreError::Open { .. } => Self::storage(message),
            StoreError::ReadOnly(_) => Self::storage(message)
                .with_hint("downbeat needs write access to the database file and its directory"),
            StoreError::NotEmpty { .. } => Self::conflict(message).with_hint(
                "move the project into a new database: a new SQLite file, or a new ?schema=NAME on PostgreSQL",
            ),
            StoreError::SchemaMismatch { .. } => Self::storage(message)
                .with_hint("move the project with a downbeat whose schemas for both backends have the same version"),
            StoreError::Unavailable(_) => Self::storage(message).with_hint(
                "check that the database server is running and reachable, then run the command again",
            ),
            StoreError::Database(m) => {
                let busy = m.contains("locked") || m.contains("busy");
                let e = Self::storage(message);
                if busy {
                    e.with_hint("another process held the database for too long; try again")
                } else {
                    e
                }
            }
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Self::internal(format!("i/o error: {e}"))
    }
}
