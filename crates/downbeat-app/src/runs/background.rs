//! A run of the execution engine started through MCP: a background tokio task inside the server
//! (one at a time per server process), its progress gathered from the engine's event stream for
//! `watch`, and a cancellation token for `cancel` (running attempts are stopped and their tasks
//! go back to pending, as with Ctrl-C on `downbeat run`).
//!
//! The run is state of this process, not graph state: `watch` reports what the engine reported;
//! the graph itself is always read from the store.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use downbeat_engine::run::{RunEvent, RunSummary};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Kind};
use crate::project::Project;

/// At most this many events are kept for `watch`.
const KEEP_EVENTS: usize = 2000;
/// At most this many events per `watch` answer.
const PAGE: usize = 100;

#[derive(Default)]
pub struct Runs {
    current: tokio::sync::Mutex<Option<Run>>,
    next_id: std::sync::atomic::AtomicU32,
}

struct Run {
    id: u32,
    cancel: CancellationToken,
    handle: JoinHandle<()>,
    progress: Arc<Mutex<Progress>>,
}

#[derive(Default)]
struct Progress {
    /// (sequence number, event) of the latest events.
    events: Vec<(u64, Value)>,
    next_seq: u64,
    to_do: usize,
    completed: u64,
    failed: u64,
    running: BTreeSet<String>,
    summary: Option<RunSummary>,
    error: Option<String>,
    report: Option<String>,
}

impl Progress {
    fn record(&mut self, e: &RunEvent) {
        match e {
            RunEvent::Started { pending, .. } => self.to_do = *pending,
            RunEvent::AttemptStarted { task, .. } => {
                self.running.insert(task.clone());
            }
            RunEvent::AttemptFinished { task, status, .. } => {
                self.running.remove(task);
                match status.as_str() {
                    "completed" => self.completed += 1,
                    "failed" => self.failed += 1,
                    _ => {}
                }
            }
            RunEvent::Finished(s) => self.summary = Some(s.clone()),
            _ => {}
        }
        self.next_seq += 1;
        self.events.push((
            self.next_seq,
            serde_json::to_value(e).unwrap_or(Value::Null),
        ));
        if self.events.len() > KEEP_EVENTS {
            let drop = self.events.len() - KEEP_EVENTS;
            self.events.drain(..drop);
        }
    }
}

impl Runs {
    /// Starts a run in the background; refused while another one started here is going.
    pub async fn start(&self, p: Project, spec: &super::RunRequest) -> Result<Value, Error> {
        let mut current = self.current.lock().await;
        if let Some(r) = current.as_ref()
            && !r.handle.is_finished()
        {
            return Err(Error::new(
                Kind::Conflict,
                format!("run {} is still going: watch it, or cancel it first", r.id),
            ));
        }
        let opts = super::run_options(&p, spec).await?;
        super::preflight::require(&p, &opts).await?;
        let scope = spec.scope();
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        let progress: Arc<Mutex<Progress>> = Arc::default();
        let cancel = CancellationToken::new();
        let (tx, mut rx) = mpsc::unbounded_channel::<RunEvent>();
        // The engine checks the configuration before its first event: the start answers once
        // the run has begun, or with the error that stopped it.
        let (began_tx, began_rx) = tokio::sync::oneshot::channel::<()>();
        let began = Arc::new(Mutex::new(Some(began_tx)));
        let signal = |b: &Mutex<Option<tokio::sync::oneshot::Sender<()>>>| {
            if let Some(tx) = b.lock().ok().and_then(|mut b| b.take()) {
                let _ = tx.send(());
            }
        };
        let sink = progress.clone();
        let began_by_event = began.clone();
        let collector = tokio::spawn(async move {
            while let Some(e) = rx.recv().await {
                if let Ok(mut pr) = sink.lock() {
                    pr.record(&e);
                }
                signal(&began_by_event);
            }
        });
        let store = p.store.clone();
        let token = cancel.clone();
        let done = progress.clone();
        let handle = tokio::spawn(async move {
            let result = downbeat_engine::run::run(store, opts, tx, token).await;
            let _ = collector.await;
            let report = match &result {
                Ok(_) => crate::documents::write_synthesis(&p, scope.as_deref())
                    .await
                    .ok(),
                Err(_) => None,
            };
            if result.is_ok() {
                let _ = crate::objectives::settle(&p).await;
            }
            if result.is_ok() && p.config.memory.sync_on_run {
                // The run's outcome stands whatever happens to the memory files.
                let _ = crate::memory::sync(&p, &Default::default()).await;
            }
            if let Ok(mut pr) = done.lock() {
                pr.report = report;
                if let Err(e) = result {
                    pr.error = Some(super::run_error(e).message);
                }
            }
            signal(&began);
        });
        let _ = tokio::time::timeout(Duration::from_secs(30), began_rx).await;
        let run = Run {
            id,
            cancel,
            handle,
            progress,
        };
        let error = run.progress.lock().ok().and_then(|p| p.error.clone());
        let to_do = run.progress.lock().map(|p| p.to_do).unwrap_or(0);
        *current = Some(run);
        match error {
            Some(e) => Err(Error::invalid(e)),
            None => Ok(json!({"run": id, "started": true, "to_do": to_do})),
        }
    }

    /// Progress of the current (or last) run; events after sequence number `after`.
    pub async fn watch(&self, after: Option<u64>) -> Result<Value, Error> {
        let current = self.current.lock().await;
        let Some(r) = current.as_ref() else {
            return Err(Error::not_found("no run was started by this server")
                .with_hint("start one with the run tool (action start)"));
        };
        Ok(snapshot(r, after))
    }

    /// Stops the current run gracefully and waits (up to a minute) for it to end.
    pub async fn cancel(&self) -> Result<Value, Error> {
        let mut current = self.current.lock().await;
        let Some(r) = current.as_mut() else {
            return Err(Error::not_found("no run was started by this server"));
        };
        if r.handle.is_finished() {
            return Ok(json!({"run": r.id, "state": state(r), "cancelled": false}));
        }
        r.cancel.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(60), &mut r.handle).await;
        let mut out = snapshot(r, Some(u64::MAX));
        out["cancelled"] = json!(true);
        Ok(out)
    }

    /// Stops a run still going when the server shuts down.
    pub async fn shutdown(&self) {
        let mut current = self.current.lock().await;
        if let Some(r) = current.as_mut()
            && !r.handle.is_finished()
        {
            r.cancel.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(60), &mut r.handle).await;
        }
    }
}

fn state(r: &Run) -> &'static str {
    if !r.handle.is_finished() {
        return if r.cancel.is_cancelled() {
            "stopping"
        } else {
            "running"
        };
    }
    let pr = r.progress.lock();
    match pr.as_ref().ok().and_then(|p| p.summary.as_ref()) {
        Some(s) if s.interrupted => "cancelled",
        Some(_) => "finished",
        None => "failed",
    }
}

fn snapshot(r: &Run, after: Option<u64>) -> Value {
    let st = state(r);
    let Ok(pr) = r.progress.lock() else {
        return json!({"run": r.id, "state": st});
    };
    let after = after.unwrap_or(0);
    let events: Vec<&Value> = pr
        .events
        .iter()
        .filter(|(s, _)| *s > after)
        .take(PAGE)
        .map(|(_, e)| e)
        .collect();
    let last = pr
        .events
        .iter()
        .filter(|(s, _)| *s > after)
        .take(PAGE)
        .map(|(s, _)| *s)
        .last()
        .unwrap_or(after.min(pr.next_seq));
    crate::answer::compact(json!({
        "run": r.id,
        "state": st,
        "to_do": pr.to_do,
        "completed": pr.completed,
        "failed": pr.failed,
        "running": pr.running.iter().collect::<Vec<_>>(),
        "summary": pr.summary,
        "error": pr.error,
        "report": pr.report,
        "events": events,
        "next": last,
    }))
}
