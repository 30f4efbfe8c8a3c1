//! The broadcast of changes a server's event streams share (see [`crate::feed`]).
//!
//! Changes travel as [`Batch`]es already written in the event-stream format: one poll's worth
//! of events is formatted once and the same bytes go to every stream, so a hundred open pages
//! cost a hundred writes per poll, not a hundred per event.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use bytes::Bytes;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use downbeat_core::context::Event;

use crate::shapes::Change;

/// Consecutive events from the log, formatted as server-sent events.
#[derive(Debug, Clone)]
pub struct Batch {
    /// Each event's sequence number and where its text starts in `text`.
    starts: Vec<(i64, usize)>,
    text: Bytes,
}

impl Batch {
    pub fn of(events: &[Event]) -> Self {
        let mut text = String::with_capacity(events.len() * 200);
        let mut starts = Vec::with_capacity(events.len());
        for e in events {
            starts.push((e.seq, text.len()));
            let data = serde_json::to_string(&Change::of(e)).unwrap_or_default();
            text.push_str("id: ");
            text.push_str(&e.seq.to_string());
            text.push_str("\ndata: ");
            text.push_str(&data);
            text.push_str("\n\n");
        }
        Self {
            starts,
            text: Bytes::from(text),
        }
    }

    /// The last event's sequence number.
    pub fn last(&self) -> Option<i64> {
        self.starts.last().map(|&(seq, _)| seq)
    }

    /// The text of the events after `seq` (shared with every other stream, not copied).
    pub fn after(&self, seq: i64) -> Bytes {
        match self.starts.iter().find(|&&(s, _)| s > seq) {
            Some(&(_, at)) => self.text.slice(at..),
            None => Bytes::new(),
        }
    }
}

pub struct Hub {
    pub tx: broadcast::Sender<Arc<Batch>>,
    /// The last event broadcast.
    latest: AtomicI64,
    /// Ends every stream when the server stops.
    pub stop: CancellationToken,
}

impl Default for Hub {
    fn default() -> Self {
        Self {
            tx: broadcast::channel(1024).0,
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

#[cfg(test)]
mod tests {
    use super::Batch;
    use downbeat_core::context::Event;
    use downbeat_core::time::Timestamp;

    fn event(seq: i64) -> Event {
        Event {
            seq,
            at: Timestamp(0),
            actor: "cli".into(),
            session: None,
            action: "task.status".into(),
            entity: "aht8g2".into(),
            before: None,
            after: Some(serde_json::json!({"status": "completed"})),
        }
    }

    #[test]
    fn a_batch_resumes_after_any_of_its_events() {
        let b = Batch::of(&[event(4), event(5), event(6)]);
        assert_eq!(b.last(), Some(6));
        let all = String::from_utf8(b.after(3).to_vec()).unwrap();
        assert!(all.starts_with("id: 4\ndata: {\"seq\":4,"), "{all}");
        assert_eq!(all.matches("\n\n").count(), 3);
        let tail = String::from_utf8(b.after(5).to_vec()).unwrap();
        assert!(
            tail.starts_with("id: 6\n") && tail.ends_with("\n\n"),
            "{tail}"
        );
        assert!(b.after(6).is_empty());
        assert_eq!(Batch::of(&[]).last(), None);
    }
}
