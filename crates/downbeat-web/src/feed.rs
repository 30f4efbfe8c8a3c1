//! Live changes as server-sent events, fed from the event log.
//!
//! One poller per server reads the events after the last one it saw (every [`POLL`], and only
//! while a stream is open) and broadcasts them as one pre-formatted [`Batch`]. Each stream subscribes first, then catches up
//! from the log after the id it resumes from (`Last-Event-ID`, or `?after=`), then forwards what
//! the broadcast brings after the last event it sent: nothing is missed between the catch-up and
//! the broadcast, and nothing is sent twice. A stream that falls behind the broadcast reads the
//! log again. Event ids are the log's sequence numbers, so a page that reconnects to another
//! server process (after a restart) resumes where it was.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use downbeat_store::EventQuery;

use crate::hub::Batch;
use crate::state::State as AppState;

/// How often the poller looks for new events.
const POLL: Duration = Duration::from_millis(200);
/// Events read from the log per query.
const PAGE: u32 = 1000;
/// A comment line this often keeps idle connections (and proxies) open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Starts the poller; it ends, and ends every stream, when `cancel` fires.
pub fn spawn_poller(s: Arc<AppState>, cancel: CancellationToken) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let store = s.project().store.clone();
        let mut last = s.feed.latest();
        loop {
            tokio::select! {
                () = cancel.cancelled() => break,
                () = tokio::time::sleep(POLL) => {}
            }
            // Nobody is listening: the log is not read. The first stream to open then gets
            // what came meanwhile from this poller's place on, so nothing after its own
            // catch-up is missed.
            if s.feed.tx.receiver_count() == 0 {
                continue;
            }
            // A database that is briefly away is asked again at the next tick.
            while let Ok(events) = store.events(&after(last)).await {
                let Some(newest) = events.last().map(|e| e.seq) else {
                    break;
                };
                last = newest;
                // Nobody listening is not an error.
                let _ = s.feed.tx.send(Arc::new(Batch::of(&events)));
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

type Tx = mpsc::Sender<Result<Bytes, Infallible>>;

/// `GET /api/events`: the changes after the id resumed from, then live.
pub async fn stream(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<StreamQuery>,
) -> Response {
    let resumed = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok());
    // A new page starts from now: the newest event in the log (the poller's own place may be
    // older while no stream was open).
    let start = match resumed.or(q.after) {
        Some(n) => n,
        None => s
            .project()
            .store
            .last_event_seq()
            .await
            .unwrap_or_else(|_| s.feed.latest()),
    };
    // Subscribe before catching up: what is broadcast meanwhile waits in the receiver.
    let rx = s.feed.tx.subscribe();
    let (tx, out) = mpsc::channel::<Result<Bytes, Infallible>>(64);
    tokio::spawn(pump(s, start, rx, tx));
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(out)),
    )
        .into_response()
}

/// Sends `text`; `false` when the client went away.
async fn send(tx: &Tx, text: Bytes) -> bool {
    text.is_empty() || tx.send(Ok(text)).await.is_ok()
}

/// Catches up from the log after `*last`; `false` when the client went away.
async fn catch_up(s: &AppState, last: &mut i64, tx: &Tx) -> bool {
    loop {
        let events = match s.project().store.events(&after(*last)).await {
            Ok(v) => v,
            // The log is briefly unreadable: what is missed now comes with the broadcast or
            // the next catch-up.
            Err(_) => return true,
        };
        let Some(newest) = events.last().map(|e| e.seq) else {
            return true;
        };
        if !send(tx, Batch::of(&events).after(*last)).await {
            return false;
        }
        *last = newest;
        if events.len() < PAGE as usize {
            return true;
        }
    }
}

async fn pump(s: Arc<AppState>, start: i64, mut rx: broadcast::Receiver<Arc<Batch>>, tx: Tx) {
    let mut last = start;
    // The first message says where the stream starts, so a page knows it is connected.
    let hello = Bytes::from(format!("event: hello\ndata: {{\"after\":{start}}}\n\n"));
    if !send(&tx, hello).await || !catch_up(&s, &mut last, &tx).await {
        return;
    }
    loop {
        let got = tokio::select! {
            () = s.feed.stop.cancelled() => return,
            () = tx.closed() => return,
            () = tokio::time::sleep(KEEP_ALIVE) => {
                if !send(&tx, Bytes::from_static(b": keep-alive\n\n")).await {
                    return;
                }
                continue;
            }
            got = rx.recv() => got,
        };
        match got {
            Ok(b) => {
                if b.last().is_some_and(|l| l > last) {
                    if !send(&tx, b.after(last)).await {
                        return;
                    }
                    last = b.last().unwrap_or(last);
                }
            }
            Err(broadcast::error::RecvError::Lagged(_)) => {
                if !catch_up(&s, &mut last, &tx).await {
                    return;
                }
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}
