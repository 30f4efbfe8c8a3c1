//! The run's places: an attempt works only while it holds one, so at most `concurrency`
//! attempts work at once however many are claimed. A claim taken ahead waits for a place in
//! a [`Seat`]; an attempt that ends hands its place straight to the first seat waiting, and
//! tells the loop which one it was, so the loop announces each start after the end that made
//! room for it.
//!
//! Must never: lose a place (a seat given up is skipped, never handed one), or let a seat both
//! give up and start.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, Ordering};

use downbeat_core::ids::TaskId;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

const WAITING: u8 = 0;
const WORKING: u8 = 1;
const GIVEN_UP: u8 = 2;

/// One claimed attempt's place in the line.
pub(super) struct Seat {
    pub(super) task: TaskId,
    stage: AtomicU8,
    go: Notify,
}

impl Seat {
    pub(super) fn new(task: TaskId) -> Self {
        Self {
            task,
            stage: AtomicU8::new(WAITING),
            go: Notify::new(),
        }
    }

    /// Still waiting for a place.
    pub(super) fn waiting(&self) -> bool {
        self.stage.load(Ordering::Acquire) == WAITING
    }

    /// Waits until the seat is handed a place (`true`), or gives up when `cancel` or
    /// `release` fires first (`false`). A seat handed its place as it gives up keeps it.
    pub(super) async fn wait(
        &self,
        cancel: &CancellationToken,
        release: &CancellationToken,
    ) -> bool {
        loop {
            tokio::select! {
                biased;
                () = cancel.cancelled() => return !self.give_up(),
                () = release.cancelled() => return !self.give_up(),
                () = self.go.notified() => {
                    if !self.waiting() {
                        return true;
                    }
                }
            }
        }
    }

    fn give_up(&self) -> bool {
        self.stage
            .compare_exchange(WAITING, GIVEN_UP, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Hands the seat a place, unless it gave up.
    fn seat(&self) -> bool {
        self.stage
            .compare_exchange(WAITING, WORKING, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}

struct Line {
    free: usize,
    waiting: VecDeque<std::sync::Arc<Seat>>,
}

impl Line {
    /// The first seat that takes a place, if any.
    fn next(&mut self) -> Option<std::sync::Arc<Seat>> {
        while let Some(s) = self.waiting.pop_front() {
            if s.seat() {
                return Some(s);
            }
        }
        None
    }
}

/// See the module documentation.
pub(super) struct Places(Mutex<Line>);

impl Places {
    pub(super) fn new(n: usize) -> Self {
        Self(Mutex::new(Line {
            free: n.max(1),
            waiting: VecDeque::new(),
        }))
    }

    fn line(&self) -> std::sync::MutexGuard<'_, Line> {
        // The line is consistent after any panic: a poisoned lock is still usable.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes a free place for `seat` (`true`), else puts it in line.
    pub(super) fn take(&self, seat: &std::sync::Arc<Seat>) -> bool {
        let mut line = self.line();
        if line.free > 0 && seat.seat() {
            line.free -= 1;
            return true;
        }
        line.waiting.push_back(seat.clone());
        false
    }

    /// An attempt ended: its place goes to the first seat in line. `report` is called with
    /// that seat's task (or `None`: the loop frees the place with [`Places::free`]) before the
    /// seat starts, so the end is reported before anything its place starts.
    pub(super) fn pass_on(&self, report: impl FnOnce(Option<TaskId>)) {
        let next = {
            let mut line = self.line();
            let next = line.next();
            report(next.as_ref().map(|s| s.task));
            next
        };
        if let Some(s) = next {
            s.go.notify_one();
        }
    }

    /// The loop heard of an end that passed its place to nobody: the place goes to the first
    /// seat in line now (its task is returned), else it is free.
    pub(super) fn free(&self) -> Option<TaskId> {
        let next = {
            let mut line = self.line();
            let next = line.next();
            if next.is_none() {
                line.free += 1;
            }
            next
        };
        next.map(|s| {
            s.go.notify_one();
            s.task
        })
    }
}
