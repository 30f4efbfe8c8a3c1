//! A worker as a service: [`Worker::register`] checks the request, builds the engine's options
//! and registers the worker; [`Worker::serve`] takes ready work it can run until cancelled —
//! heartbeats, riding out a lost database connection, deregistering at the end.
//!
//! Must never print: what a person should hear goes through the `notes` callback.

use std::sync::Arc;
use std::time::Duration;

use downbeat_core::context::Actor;
use downbeat_core::task::Task;
use downbeat_engine::run::{AcceptFn, ResolveFn, RunError, RunEvent, RunOptions, RunSummary, run};
use downbeat_store::{Store, WorkerRecord};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::error::Error;
use crate::project::Project;
use crate::runs::{RunRequest, run_error, run_options};

/// Tags of the form `needs:LABEL` name labels a worker must have to take the task.
pub const NEEDS_PREFIX: &str = "needs:";

/// What a worker is asked to be.
#[derive(Debug, Clone, Default)]
pub struct WorkerRequest {
    /// Its name (default `worker:HOST:PID`).
    pub name: Option<String>,
    /// Only tasks of these roles (empty: any).
    pub roles: Vec<String>,
    /// Only tasks these executors run (empty: any).
    pub executors: Vec<String>,
    /// Labels it has, for tasks tagged `needs:LABEL`.
    pub labels: Vec<String>,
    /// Attempts at once.
    pub slots: usize,
    /// The executor for every task, overriding the configuration.
    pub executor: Option<String>,
    /// How long a claim holds without renewal.
    pub lease: Duration,
}

/// Which tasks a worker with these capabilities takes.
pub fn accepts(
    roles: Vec<String>,
    executors: Vec<String>,
    labels: Vec<String>,
    resolve: ResolveFn,
) -> AcceptFn {
    Arc::new(move |t: &Task| {
        let role_ok = roles.is_empty()
            || t.role
                .as_ref()
                .is_some_and(|r| roles.iter().any(|x| x == r));
        let labels_ok = t
            .tags
            .iter()
            .filter_map(|tag| tag.strip_prefix(NEEDS_PREFIX))
            .all(|need| labels.iter().any(|l| l == need));
        let exec_ok = executors.is_empty() || resolve(t).is_ok_and(|r| executors.contains(&r.name));
        role_ok && labels_ok && exec_ok
    })
}

/// A registered worker, ready to serve.
pub struct Worker {
    store: Arc<dyn Store>,
    opts: RunOptions,
    record: WorkerRecord,
}

impl Worker {
    /// Checks the request against the project, builds the engine's options and registers the
    /// worker in the database.
    pub async fn register(p: &Project, req: WorkerRequest) -> Result<Self, Error> {
        for r in &req.roles {
            if p.roles.get(r).is_none() {
                return Err(Error::invalid(format!("unknown role `{r}`"))
                    .with_hint("`downbeat roles` lists them"));
            }
        }
        let lease = req.lease.max(Duration::from_secs(1));
        let request = RunRequest {
            concurrency: Some(req.slots.max(1)),
            executor: req.executor.clone(),
            ..Default::default()
        };
        let mut opts = run_options(p, &request).await?;
        let host = downbeat_engine::run::this_host();
        let name = req
            .name
            .clone()
            .unwrap_or_else(|| format!("worker:{host}:{}", std::process::id()));
        opts.holder = name.clone();
        opts.lease = lease;
        opts.stay = true;
        opts.accepts = Some(accepts(
            req.roles.clone(),
            req.executors.clone(),
            req.labels.clone(),
            opts.resolve.clone(),
        ));
        // A worker that cannot run what it would take says so before it registers.
        super::preflight::require(p, &opts).await?;
        let record = WorkerRecord {
            name: name.clone(),
            host,
            pid: i64::from(std::process::id()),
            roles: req.roles,
            executors: req.executors,
            labels: req.labels,
            slots: u32::try_from(opts.concurrency).unwrap_or(u32::MAX),
            started_at: p.now(),
            heartbeat_at: p.now(),
            ttl: lease,
            alive: true,
            holding: vec![],
        };
        let store = p.store.clone();
        store
            .register_worker(&record, &Actor::new(name, p.now()))
            .await?;
        Ok(Self {
            store,
            opts,
            record,
        })
    }

    /// The worker as registered.
    pub fn record(&self) -> &WorkerRecord {
        &self.record
    }

    /// Takes work until `cancel` (or until there is nothing it could ever take, which a worker
    /// does not decide: it stays), then deregisters. A lost database connection does not end
    /// it: its attempts are stopped, and once the database answers again the tasks it held go
    /// back to pending and it takes work again. The engine's events go to `events`.
    pub async fn serve(
        self,
        events: mpsc::UnboundedSender<RunEvent>,
        cancel: CancellationToken,
        notes: &(dyn Fn(&str) + Send + Sync),
    ) -> Result<RunSummary, Error> {
        let beats = self.heartbeats();
        let result = self.rounds(events, &cancel, notes).await;
        beats.abort();
        let reason = match &result {
            Ok(s) if s.interrupted => "stopped",
            Ok(_) => "finished",
            Err(_) => "error",
        };
        let name = &self.record.name;
        let _ = self
            .store
            .deregister_worker(name, reason, &Actor::new(name.clone(), (self.opts.now)()))
            .await;
        result
    }

    /// The registry's liveness (the task leases renew in the engine's loop).
    fn heartbeats(&self) -> tokio::task::JoinHandle<()> {
        let store = self.store.clone();
        let name = self.record.name.clone();
        let every = (self.opts.lease / 3).max(Duration::from_millis(200));
        let now = self.opts.now.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let _ = store.worker_heartbeat(&name, now()).await;
            }
        })
    }

    async fn rounds(
        &self,
        events: mpsc::UnboundedSender<RunEvent>,
        cancel: &CancellationToken,
        notes: &(dyn Fn(&str) + Send + Sync),
    ) -> Result<RunSummary, Error> {
        let name = &self.record.name;
        let mut total = RunSummary::default();
        loop {
            let round = cancel.child_token();
            let r = run(
                self.store.clone(),
                self.opts.clone(),
                events.clone(),
                round.clone(),
            )
            .await;
            match r {
                Err(RunError::Store(downbeat_store::Error::Unavailable(m)))
                    if !cancel.is_cancelled() =>
                {
                    round.cancel();
                    notes(&format!(
                        "worker {name}: database unavailable ({m}); stopping running attempts and reconnecting"
                    ));
                    if !self.reconnect(cancel, notes).await? {
                        return Ok(total);
                    }
                }
                Ok(s) => {
                    total.completed += s.completed;
                    total.failed += s.failed;
                    total.retried += s.retried;
                    total.interrupted = s.interrupted;
                    return Ok(total);
                }
                Err(e) => return Err(run_error(e)),
            }
        }
    }

    /// Waits until the database answers again (or the worker is stopped: `false`), then
    /// returns the tasks this worker held to pending and registers it again.
    async fn reconnect(
        &self,
        cancel: &CancellationToken,
        notes: &(dyn Fn(&str) + Send + Sync),
    ) -> Result<bool, Error> {
        let name = &self.record.name;
        let mut pause = Duration::from_millis(250);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return Ok(false),
                _ = tokio::time::sleep(pause) => {}
            }
            let actor = Actor::new(name.clone(), (self.opts.now)());
            match self
                .store
                .requeue_running(None, std::slice::from_ref(name), &actor)
                .await
            {
                Ok(back) => {
                    let mut again = self.record.clone();
                    again.heartbeat_at = actor.now;
                    self.store.register_worker(&again, &actor).await?;
                    notes(&format!(
                        "worker {name}: database reachable again; {} task(s) it held went back to pending",
                        back.len()
                    ));
                    return Ok(true);
                }
                Err(downbeat_store::Error::Unavailable(_)) => {
                    pause = (pause * 2).min(Duration::from_secs(5));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}
