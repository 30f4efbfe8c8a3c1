//! The one place where errors become exit codes and hints.
//!
//! Exit codes are part of the interface (documented in `docs/exit-codes.md`); never renumber.

use downbeat_store::Error as StoreError;

/// Documented exit codes.
pub mod code {
    pub const OK: u8 = 0;
    /// A bug or an unexpected failure.
    pub const INTERNAL: u8 = 1;
    /// Wrong command-line usage (unknown flag, missing argument).
    pub const USAGE: u8 = 2;
    /// Something named does not exist: a task, a record, the project.
    pub const NOT_FOUND: u8 = 3;
    /// Input is malformed or invalid: a plan file, an argument value, an ambiguous id prefix.
    pub const INVALID: u8 = 4;
    /// The request conflicts with the current state: a dependency cycle, an illegal status change.
    pub const CONFLICT: u8 = 5;
    /// The database cannot be used: missing, newer schema, read-only, locked, corrupt.
    pub const STORAGE: u8 = 6;
    /// `downbeat run` ended with tasks failed or not done.
    pub const RUN_INCOMPLETE: u8 = 7;
    /// Interrupted (Ctrl-C); the graph is consistent and `downbeat run` continues it.
    pub const INTERRUPTED: u8 = 130;
}

/// An error on its way to the user: message, optional hint, exit code.
#[derive(Debug)]
pub struct CliError {
    pub message: String,
    pub hint: Option<String>,
    pub code: u8,
}

impl CliError {
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            hint: None,
            code,
        }
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(code::INVALID, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(code::NOT_FOUND, message)
    }
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<StoreError> for CliError {
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
            StoreError::Transition { id, .. } => Self::new(code::CONFLICT, message).with_hint(
                format!("`downbeat show {id}` shows the task's current status"),
            ),
            StoreError::Cycle(_) => Self::new(code::CONFLICT, message).with_hint(
                "remove one of these dependencies (`downbeat dep rm`) or drop the new one",
            ),
            StoreError::SchemaTooNew { .. } => Self::new(code::STORAGE, message)
                .with_hint("install a newer downbeat to use this database"),
            StoreError::Open { .. } => Self::new(code::STORAGE, message),
            StoreError::ReadOnly(_) => Self::new(code::STORAGE, message)
                .with_hint("downbeat needs write access to the database file and its directory"),
            StoreError::NotEmpty { .. } => Self::new(code::CONFLICT, message).with_hint(
                "move the project into a new database: a new SQLite file, or a new ?schema=NAME on PostgreSQL",
            ),
            StoreError::SchemaMismatch { .. } => Self::new(code::STORAGE, message)
                .with_hint("move the project with a downbeat whose schemas for both backends have the same version"),
            StoreError::Unavailable(_) => Self::new(code::STORAGE, message).with_hint(
                "check that the database server is running and reachable, then run the command again",
            ),
            StoreError::Database(m) => {
                let busy = m.contains("locked") || m.contains("busy");
                let e = Self::new(code::STORAGE, message);
                if busy {
                    e.with_hint("another process held the database for too long; try again")
                } else {
                    e
                }
            }
        }
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        Self::new(code::INTERNAL, format!("i/o error: {e}"))
    }
}
