//! Scheduled maintenance beside a long-running command (`worker`, `serve`, `mcp --http`):
//! `downbeat_app::maintenance::scheduled` run next to the command's own work, its rounds told
//! on stderr.

use std::future::Future;

use downbeat_app::maintenance::{self, Ran, Schedule};
use downbeat_app::project::Project;
use tokio_util::sync::CancellationToken;

use crate::output::note;

/// Who runs the rounds of this process: `KIND:HOST:PID`.
pub fn holder(kind: &str) -> String {
    format!(
        "{kind}:{}:{}",
        downbeat_engine::host::this_host(),
        std::process::id()
    )
}

/// Runs `work`, and the project's maintenance schedule (if `schedule` has one) beside it until
/// `work` ends.
pub async fn alongside<T>(
    schedule: Option<(&Project, Schedule)>,
    holder: &str,
    work: impl Future<Output = T>,
) -> T {
    let Some((p, s)) = schedule else {
        return work.await;
    };
    note(&format!(
        "maintenance every {} ({})",
        downbeat_core::time::Millis::of(s.every).human(),
        allowed(&s)
    ));
    // The rounds stop when `work` ends: dropped between two writes at worst, each of them a
    // transaction of its own (a round left unfinished shows as such in `status`).
    let rounds = maintenance::scheduled(p, s, holder, CancellationToken::new(), &report);
    tokio::pin!(work, rounds);
    tokio::select! {
        r = &mut work => r,
        () = &mut rounds => work.await,
    }
}

fn allowed(s: &Schedule) -> String {
    let a = s.allowed;
    let names: Vec<&str> = [
        (a.requeue, "requeue"),
        (a.archive, "archive"),
        (a.repair, "repair"),
        (a.worktrees, "worktrees"),
        (a.optimize, "optimize"),
    ]
    .into_iter()
    .filter_map(|(on, n)| on.then_some(n))
    .collect();
    if names.is_empty() {
        "report only".into()
    } else {
        format!("applies {}", names.join(", "))
    }
}

fn report(r: Ran) {
    match r {
        Ran::Round(r) if r.findings == 0 => note("maintenance: nothing found"),
        Ran::Round(r) => {
            let did = if r.actions.is_empty() {
                String::new()
            } else {
                format!("; {}", r.actions.join(", "))
            };
            note(&format!("maintenance: {} finding(s){did}", r.findings));
        }
        Ran::Failed(e) => note(&format!("warning: maintenance failed: {}", e.message)),
    }
}
