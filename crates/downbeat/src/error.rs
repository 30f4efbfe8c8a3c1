//! The one place where errors become exit codes and hints.
//!
//! Exit codes are part of the interface (documented in `docs/exit-codes.md`); never renumber.
//! Use cases fail with a [`Kind`]; only [`exit_code`] turns a kind into a number.

pub use downbeat_app::error::{Error, Kind};

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
    /// An agent's answer was not usable: a draft that never validated, or no plan at all.
    pub const REJECTED: u8 = 8;
    /// An agent or endpoint could not answer: unreachable, timed out, failed.
    pub const UNAVAILABLE: u8 = 9;
    /// Interrupted (Ctrl-C); the graph is consistent and `downbeat run` continues it.
    pub const INTERRUPTED: u8 = 130;
}

/// The exit code of a failure of this kind.
pub fn exit_code(kind: Kind) -> u8 {
    match kind {
        Kind::Internal => code::INTERNAL,
        Kind::Usage => code::USAGE,
        Kind::NotFound => code::NOT_FOUND,
        Kind::Invalid => code::INVALID,
        Kind::Conflict => code::CONFLICT,
        Kind::Storage => code::STORAGE,
        Kind::RunIncomplete => code::RUN_INCOMPLETE,
        Kind::Interrupted => code::INTERRUPTED,
        Kind::Rejected => code::REJECTED,
        Kind::Unavailable => code::UNAVAILABLE,
    }
}

/// A kind's name in the JSON error envelope.
pub fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Internal => "internal",
        Kind::Usage => "usage",
        Kind::NotFound => "not_found",
        Kind::Invalid => "invalid",
        Kind::Conflict => "conflict",
        Kind::Storage => "storage",
        Kind::RunIncomplete => "run_incomplete",
        Kind::Interrupted => "interrupted",
        Kind::Rejected => "rejected",
        Kind::Unavailable => "unavailable",
    }
}

/// The error envelope every command prints on stdout under `--json`:
/// `{"error": {"kind", "code", "message", "hint"?}}`.
pub fn envelope(e: &Error) -> serde_json::Value {
    let mut inner = serde_json::json!({
        "kind": kind_name(e.kind),
        "code": exit_code(e.kind),
        "message": e.message,
    });
    if let Some(h) = &e.hint {
        inner["hint"] = serde_json::Value::String(h.clone());
    }
    serde_json::json!({ "error": inner })
}
