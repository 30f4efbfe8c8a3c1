//! Errors as clients read them.

use downbeat_app::error::Error;

/// An error's message with its hint, for a client to read.
pub fn message(e: &Error) -> String {
    match &e.hint {
        Some(h) => format!("{} (hint: {h})", e.message),
        None => e.message.clone(),
    }
}
