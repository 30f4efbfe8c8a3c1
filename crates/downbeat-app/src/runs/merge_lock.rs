//! The merge lock of runners on several machines sharing a remote: one `meta` entry
//! (`worktrees.merging`: who holds it, until when), taken and released by compare-and-swap, so
//! workers merge into the remote's integration branch one at a time instead of racing pushes
//! the remote refuses. A holder that dies lets it lapse after [`HOLD`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use downbeat_core::context::Actor;
use downbeat_core::time::Timestamp;
use downbeat_engine::worktree::MergeLock;
use downbeat_store::Store;
use serde::{Deserialize, Serialize};
use tokio::runtime::Handle;

/// The `meta` key.
pub const KEY: &str = "worktrees.merging";

/// How long a holder keeps the lock at most: far longer than one merge and push.
const HOLD: Duration = Duration::from_secs(120);

/// How long a runner waits for the lock before giving up on the merge.
const WAIT: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Held {
    holder: String,
    /// Milliseconds since the epoch.
    until_ms: i64,
}

/// The lock, for [`downbeat_engine::worktree::Worktrees::with_merge_lock`].
pub struct DbMergeLock {
    inner: Arc<Inner>,
}

/// What the lock and each of its [`Release`]s share.
struct Inner {
    store: Arc<dyn Store>,
    holder: String,
    handle: Handle,
    now: Arc<dyn Fn() -> Timestamp + Send + Sync>,
}

impl Inner {
    fn swap(&self, expected: Option<&str>, new: &str) -> Result<bool, String> {
        let actor = Actor::new(self.holder.clone(), (self.now)());
        self.handle
            .block_on(
                self.store
                    .meta_swap(KEY, expected, new, "meta.set", KEY, None, &actor),
            )
            .map_err(|e| e.to_string())
    }
}

impl std::fmt::Debug for DbMergeLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbMergeLock")
            .field("holder", &self.inner.holder)
            .finish()
    }
}

impl DbMergeLock {
    /// `None` outside a runtime (nothing could wait on the database then).
    pub fn new(
        store: Arc<dyn Store>,
        holder: String,
        now: Arc<dyn Fn() -> Timestamp + Send + Sync>,
    ) -> Option<Self> {
        Some(Self {
            inner: Arc::new(Inner {
                store,
                holder,
                handle: Handle::try_current().ok()?,
                now,
            }),
        })
    }
}

/// Releases the lock when dropped, if it is still this holder's.
struct Release {
    lock: Arc<Inner>,
    ours: String,
}

impl Drop for Release {
    fn drop(&mut self) {
        let _ = self.lock.swap(Some(&self.ours), "{}");
    }
}

impl MergeLock for DbMergeLock {
    fn acquire(&self) -> Result<Box<dyn Send>, String> {
        let l = &self.inner;
        let start = Instant::now();
        loop {
            let current = l
                .handle
                .block_on(l.store.meta_get(KEY))
                .map_err(|e| e.to_string())?;
            let now = (l.now)();
            let free = current
                .as_deref()
                .and_then(|v| serde_json::from_str::<Held>(v).ok())
                .is_none_or(|h| h.until_ms < now.0);
            if free {
                let ours = serde_json::to_string(&Held {
                    holder: l.holder.clone(),
                    until_ms: now.0 + HOLD.as_millis() as i64,
                })
                .map_err(|e| e.to_string())?;
                if l.swap(current.as_deref(), &ours)? {
                    return Ok(Box::new(Release {
                        lock: l.clone(),
                        ours,
                    }));
                }
            }
            if start.elapsed() > WAIT {
                return Err(format!(
                    "another runner held it for more than {} s",
                    WAIT.as_secs()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
