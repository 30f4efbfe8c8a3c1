//! The run's places: an attempt works only while it holds one, so at most `concurrency`
//! attempts work at once however many are claimed. A claim taken ahead waits for a place in
//! a [`Seat`]; an attempt that ends hands its place straight to the first seat waiting, and
//! tells the loop which one it was, so the loop announces each start after the end that made
//! room for it.
//!
//! [`Pace`] decides when claims are taken ahead at all: only while attempts end short.
//!
//! Must never: lose a place (a seat given up is skipped, never handed one), or let a seat both
//! give up and start.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
    /// The attempt's token, and the loop's token to give the claim back: a seat whose
    /// attempt is cancelled or given back is never handed a place.
    cancel: CancellationToken,
    release: CancellationToken,
}

impl Seat {
    pub(super) fn new(task: TaskId, cancel: CancellationToken, release: CancellationToken) -> Self {
        Self {
            task,
            stage: AtomicU8::new(WAITING),
            go: Notify::new(),
            cancel,
            release,
        }
    }

    /// Still waiting for a place.
    pub(super) fn waiting(&self) -> bool {
        self.stage.load(Ordering::Acquire) == WAITING
    }

    /// Waits until the seat is handed a place (`true`), or gives up when its attempt is
    /// cancelled or given back first (`false`). A seat handed its place just before keeps it.
    pub(super) async fn wait(&self) -> bool {
        loop {
            tokio::select! {
                biased;
                () = self.cancel.cancelled() => return self.give_up(),
                () = self.release.cancelled() => return self.give_up(),
                () = self.go.notified() => {
                    if !self.waiting() {
                        return self.stage.load(Ordering::Acquire) == WORKING;
                    }
                }
            }
        }
    }

    /// Gives up waiting; `true` if the seat had been handed a place already.
    fn give_up(&self) -> bool {
        let _ = self
            .stage
            .compare_exchange(WAITING, GIVEN_UP, Ordering::AcqRel, Ordering::Acquire);
        self.stage.load(Ordering::Acquire) == WORKING
    }

    /// Hands the seat a place, unless it gave up or its attempt no longer wants one.
    fn seat(&self) -> bool {
        let to = if self.cancel.is_cancelled() || self.release.is_cancelled() {
            GIVEN_UP
        } else {
            WORKING
        };
        self.stage
            .compare_exchange(WAITING, to, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
            && to == WORKING
    }
}

struct Line {
    free: usize,
    waiting: VecDeque<Arc<Seat>>,
}

impl Line {
    /// The first seat that takes a place, if any.
    fn next(&mut self) -> Option<Arc<Seat>> {
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
    pub(super) fn take(&self, seat: &Arc<Seat>) -> bool {
        let mut line = self.line();
        if line.free > 0 && seat.seat() {
            line.free -= 1;
            return true;
        }
        // A seat whose attempt no longer wants a place has given up already.
        if seat.waiting() {
            line.waiting.push_back(seat.clone());
        }
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

/// Attempts that end within this are short.
const SHORT_END: Duration = Duration::from_millis(25);
/// Claims taken ahead, per place, while attempts end short.
const AHEAD: usize = 2;
/// How long ends are gathered into one commit while claims are taken ahead: the places do
/// not wait for the commit then, so a longer window only makes fewer, larger commits.
const AHEAD_WINDOW: Duration = Duration::from_millis(4);

/// How attempts have been ending: claims are taken ahead of free places only while they end
/// short, so that a place does not stand empty while the end that freed it commits. With
/// long attempts a claim taken ahead would only wait, holding its task from other runners.
#[derive(Debug, Default)]
pub(super) struct Pace {
    /// Attempts that ended short in a row.
    short_ends: usize,
}

impl Pace {
    /// A started attempt ended after `took`.
    pub(super) fn ended(&mut self, took: Duration) {
        self.short_ends = if took < SHORT_END {
            self.short_ends + 1
        } else {
            0
        };
    }

    /// A claim taken ahead found no place in time: none is taken ahead until attempts have
    /// ended short again.
    pub(super) fn gave_back(&mut self) {
        self.short_ends = 0;
    }

    /// How many claims may wait for a place: [`AHEAD`] per place once `concurrency` attempts
    /// in a row ended short, else none. A worker takes none: another worker may run the task
    /// at once (with four workers on PostgreSQL, claims ahead made the throughput swing lower,
    /// 3.3k–6.2k tasks/s against 5.3k–6.5k).
    pub(super) fn ahead(&self, concurrency: usize, worker: bool) -> usize {
        if self.short_ends >= concurrency && !worker {
            concurrency.saturating_mul(AHEAD)
        } else {
            0
        }
    }

    /// How long to gather ends into one commit: `usual`, or longer while claims are taken
    /// ahead.
    pub(super) fn window(&self, concurrency: usize, worker: bool, usual: Duration) -> Duration {
        if self.ahead(concurrency, worker) > 0 {
            AHEAD_WINDOW.max(usual)
        } else {
            usual
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u32) -> TaskId {
        TaskId::from_seq(n).unwrap()
    }

    fn seat(n: u32) -> (Arc<Seat>, CancellationToken, CancellationToken) {
        let (cancel, release) = (CancellationToken::new(), CancellationToken::new());
        let s = Seat::new(id(n), cancel.clone(), release.clone());
        (Arc::new(s), cancel, release)
    }

    fn passed_to(places: &Places) -> Option<TaskId> {
        let mut to = None;
        places.pass_on(|next| to = next);
        to
    }

    #[tokio::test]
    async fn places_go_in_line_order_and_skip_seats_that_gave_up() {
        let places = Places::new(2);
        let (a, b, c, d) = (seat(1), seat(2), seat(3), seat(4));
        assert!(places.take(&a.0));
        assert!(places.take(&b.0));
        assert!(!places.take(&c.0), "two places, both taken");
        assert!(!places.take(&d.0));
        // `c` is given back before a place frees: the place goes to `d`.
        c.2.cancel();
        assert!(!c.0.wait().await);
        assert_eq!(passed_to(&places), Some(id(4)));
        assert!(d.0.wait().await);
        // Nobody waits: the place is free once the loop says so, and taken again.
        assert_eq!(passed_to(&places), None);
        assert_eq!(places.free(), None);
        let e = seat(5);
        assert!(places.take(&e.0));
        assert!(!places.take(&seat(6).0));
    }

    #[tokio::test]
    async fn a_cancelled_seat_is_never_handed_a_place() {
        let places = Places::new(1);
        let (a, b) = (seat(1), seat(2));
        assert!(places.take(&a.0));
        assert!(!places.take(&b.0));
        b.1.cancel();
        // Cancelled before it noticed: the place passes it by and is freed by the loop.
        assert_eq!(passed_to(&places), None);
        assert!(!b.0.wait().await);
        assert_eq!(places.free(), None);
        assert!(places.take(&seat(3).0));
    }

    #[tokio::test]
    async fn a_place_its_end_passed_to_nobody_goes_to_whoever_waits_when_the_loop_frees_it() {
        let places = Places::new(1);
        let (a, b) = (seat(1), seat(2));
        assert!(places.take(&a.0));
        // `a` ends with nobody waiting; `b` is claimed before the loop hears of that end.
        assert_eq!(passed_to(&places), None);
        assert!(
            !places.take(&b.0),
            "the place is free only once the loop frees it"
        );
        assert_eq!(places.free(), Some(id(2)));
        assert!(b.0.wait().await);
    }

    #[test]
    fn claims_are_taken_ahead_only_while_attempts_end_short() {
        let mut pace = Pace::default();
        for _ in 0..3 {
            pace.ended(Duration::from_millis(2));
        }
        assert_eq!(pace.ahead(4, false), 0, "three short ends of four places");
        pace.ended(Duration::from_millis(24));
        assert_eq!(pace.ahead(4, false), 8);
        let usual = Duration::from_millis(2);
        assert_eq!(pace.window(4, false, usual), AHEAD_WINDOW);
        assert_eq!(pace.ahead(4, true), 0, "a worker never claims ahead");
        assert_eq!(pace.window(4, true, usual), usual);
        pace.ended(Duration::from_millis(25));
        assert_eq!(pace.ahead(4, false), 0, "a long end stops it");
        for _ in 0..4 {
            pace.ended(Duration::ZERO);
        }
        assert_eq!(pace.ahead(4, false), 8);
        pace.gave_back();
        assert_eq!(pace.ahead(4, false), 0, "a claim given back stops it");
    }
}
