//! Ctrl-C, SIGTERM and SIGHUP: the first stops work gracefully, a second exits at once.

use std::io::Write as _;

use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

/// Resolves at the next Ctrl-C (SIGINT), SIGTERM or SIGHUP (the terminal went away).
pub async fn stopped() {
    let mut term = signal(SignalKind::terminate()).ok();
    let mut hup = signal(SignalKind::hangup()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        Some(()) = next(&mut term) => {}
        Some(()) = next(&mut hup) => {}
    }
}

/// The next delivery of a signal listened to, or never.
async fn next(s: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
    match s.as_mut() {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}

/// Cancels `cancel` at the first Ctrl-C, SIGTERM or SIGHUP — before saying so, so that a closed or
/// broken stderr can never keep the work going — and exits with 130 at a second one.
pub fn stop_on_signals(cancel: CancellationToken) {
    tokio::spawn(async move {
        stopped().await;
        cancel.cancel();
        let _ = writeln!(
            std::io::stderr(),
            "\ninterrupted: stopping running agents (Ctrl-C again to exit at once)"
        );
        stopped().await;
        std::process::exit(130);
    });
}
