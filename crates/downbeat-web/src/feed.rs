//! Live changes as server-sent events, fed from the event log.
//!
//! One poller per server reads the events after the last one it saw (every
//! [`POLL`]) and broadcasts them. Each stream subscribes first, then catches up from the log
//! after the id it resumes from (`Last-Event-ID`, or `?after=`), then forwards what the
//! broadcast brings with a higher sequence number: nothing is missed between the catch-up and
//! the broadcast, and nothing is sent twice. A stream that falls behind the broadcast reads the
//! log again. Event ids are the log's sequence numbers, so a page that reconnects to another
//! server process (after a restart) resumes where it was.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::Stream;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use downbeat_core::context::Event;
use downbeat_store::EventQuery;

use crate::shapes::Change;
use crate::state::State as AppState;

/// How often the poller looks for new events.
const POLL: Duration = Duration::from_millis(200);
/// Events read from the log per query.
const PAGE: u32 = 500;

/// Starts the poller; it ends, and ends every stream, when `cancel` fires.
pub fn spawn_poller(s: Arc<AppState>, cancel: CancellationToken) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let store = s.project().store.clone();
        let mut last = store.last_event_seq().await.unwrap_or(0);
        s.feed.set_latest(last);
        loop {
            tokio::select! {
                () = cancel.cancelled() => break,
                () = tokio::time::sleep(POLL) => {}
            }
            // A database that is briefly away is asked again at the next tick.
            while let Ok(events) = store.events(&after(last)).await {
                for e in &events {
                    last = last.max(e.seq);
                    // Nobody listening is not an error.
                    let _ = s.feed.tx.send(Arc::new(Change::of(e)));
                }
                s.feed.set_latest(last);
                if events.len() < PAGE as usize {
                    break;
                }
            }
        }
        s.feed.stop.cancel();
    })
}

fn after(seq: i64) -> EventQuery {
    EventQuery {
        after_seq: Some(seq),
        limit: Some(PAGE),
        ..Default::default()
    }
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamQuery {
    /// Resume after this event (a page's first stream; reconnects send `Last-Event-ID`).
    after: Option<i64>,
}

/// `GET /api/events`: the changes after the id resumed from, then live.
pub async fn stream(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<StreamQuery>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let resumed = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok());
    let start = resumed.or(q.after).unwrap_or_else(|| s.feed.latest());
    // Subscribe before catching up: what is broadcast meanwhile waits in the receiver.
    let rx = s.feed.tx.subscribe();
    let (tx, out) = mpsc::channel::<Result<SseEvent, Infallible>>(256);
    tokio::spawn(pump(s, start, rx, tx));
    Sse::new(tokio_stream::wrappers::ReceiverStream::new(out)).keep_alive(
        KeepAlive::new()
            .interval(Duration::from_secs(15))
            .text("keep-alive"),
    )
}

/// Sends one change; `false` when the client went away.
async fn send(tx: &mpsc::Sender<Result<SseEvent, Infallible>>, c: &Change) -> bool {
    let data = serde_json::to_string(c).unwrap_or_default();
    let ev = SseEvent::default().id(c.seq.to_string()).data(data);
    tx.send(Ok(ev)).await.is_ok()
}

/// Catches up from the log after `*last`; `false` when the client went away.
async fn catch_up(
    s: &AppState,
    last: &mut i64,
    tx: &mpsc::Sender<Result<SseEvent, Infallible>>,
) -> bool {
    loop {
        let events: Vec<Event> = match s.project().store.events(&after(*last)).await {
            Ok(v) => v,
            // The log is briefly unreadable: what is missed now comes with the broadcast or
            // the next catch-up.
            Err(_) => return true,
        };
        for e in &events {
            if !send(tx, &Change::of(e)).await {
                return false;
            }
            *last = e.seq;
        }
        if events.len() < PAGE as usize {
            return true;
        }
    }
}

async fn pump(
    s: Arc<AppState>,
    start: i64,
    mut rx: broadcast::Receiver<Arc<Change>>,
    tx: mpsc::Sender<Result<SseEvent, Infallible>>,
) {
    let mut last = start;
    // The first message says where the stream starts, so a page knows it is connected.
    let hello = SseEvent::default()
        .event("hello")
        .data(format!("{{\"after\":{start}}}"));
    if tx.send(Ok(hello)).await.is_err() || !catch_up(&s, &mut last, &tx).await {
        return;
    }
    loop {
        let got = tokio::select! {
            () = s.feed.stop.cancelled() => return,
            () = tx.closed() => return,
            got = rx.recv() => got,
        };
        match got {
            Ok(c) if c.seq > last => {
                if !send(&tx, &c).await {
                    return;
                }
                last = c.seq;
            }
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(_)) => {
                if !catch_up(&s, &mut last, &tx).await {
                    return;
                }
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}
