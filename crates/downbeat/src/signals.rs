//! Ctrl-C and SIGTERM: the first stops work gracefully, a second exits at once.

use std::io::Write as _;

use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

/// Resolves at the next Ctrl-C (SIGINT) or SIGTERM.
pub async fn stopped() {
    let mut term = signal(SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        Some(()) = async { match term.as_mut() { Some(t) => t.recv().await, None => std::future::pending().await } } => {}
    }
}

/// Cancels `cancel` at the first Ctrl-C or SIGTERM — before saying so, so that a closed or
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
