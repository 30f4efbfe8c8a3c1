//! The `noop` executor: succeeds at once without running anything.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use super::types::{AttemptSpec, Executor, Outcome, OutcomeKind};

/// Succeeds immediately (cancelled if the token is already cancelled).
#[derive(Debug, Clone, Copy, Default)]
pub struct Noop;

#[async_trait]
impl Executor for Noop {
    async fn run(&self, _spec: &AttemptSpec, cancel: CancellationToken) -> Outcome {
        let start = Instant::now();
        let kind = if cancel.is_cancelled() {
            OutcomeKind::Cancelled
        } else {
            OutcomeKind::Succeeded
        };
        let mut o = Outcome::new(kind, Duration::ZERO);
        o.duration = start.elapsed();
        o
    }
}
