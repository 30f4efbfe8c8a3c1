//! `log --follow`: the event log as it grows, one line (or one JSON object) per change, until
//! Ctrl-C, SIGTERM or a closed stdout.

use std::fmt::Write as _;

use downbeat_app::error::Error;
use downbeat_app::project::Project;
use downbeat_core::context::Event;
use downbeat_core::ids::TaskId;
use tokio_util::sync::CancellationToken;

use super::render::clip;
use super::show::change_summary;
use crate::output::{out, outln};

/// One event as `log` prints it.
pub(super) fn line(e: &Event) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:>5} {} {:<14} {:<16} {}{}",
        e.seq,
        e.at,
        clip(&e.actor, 14),
        e.action,
        e.entity,
        change_summary(&e.before, &e.after)
    );
    s
}

/// Prints the changes after event `after` (about `task` only, if given) as they come.
pub(super) async fn follow(
    p: &Project,
    after: i64,
    task: Option<TaskId>,
    j: bool,
) -> Result<(), Error> {
    let cancel = CancellationToken::new();
    crate::signals::stop_on_signals(cancel.clone());
    downbeat_app::watch::follow(p, after, task, &cancel, &mut |events: &[Event]| {
        for e in events {
            if j {
                outln(&serde_json::to_string(e).unwrap_or_default());
            } else {
                out(&line(e));
            }
        }
    })
    .await
}
