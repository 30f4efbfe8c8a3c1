//! The broadcast of changes a server's event streams share (see [`crate::feed`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::shapes::Change;

pub struct Hub {
    pub tx: broadcast::Sender<Arc<Change>>,
    /// The last event broadcast.
    latest: AtomicI64,
    /// Ends every stream when the server stops.
    pub stop: CancellationToken,
}

impl Default for Hub {
    fn default() -> Self {
        Self {
            tx: broadcast::channel(4096).0,
            latest: AtomicI64::new(0),
            stop: CancellationToken::new(),
        }
    }
}

impl Hub {
    pub fn latest(&self) -> i64 {
        self.latest.load(Ordering::Acquire)
    }

    pub fn set_latest(&self, seq: i64) {
        self.latest.store(seq, Ordering::Release);
    }
}
