//! The scheduler: one event loop that claims ready tasks, runs their attempts in parallel and
//! records what happens, durably.
//!
//! Shape: a dispatcher (`dispatcher.rs`) owns all scheduling state and reacts to a closed set of
//! events (an attempt ended, a tick, a change committed elsewhere, a retry came due, the run was
//! cancelled); each attempt runs in its own tokio task and reports back over a channel. State
//! changes are committed in groups: every turn of the loop commits the finished attempts it has
//! collected *and* the claims of the tasks they made ready in one transaction (a claim is
//! conditional on its dependencies being completed at commit time, so an optimistic claim can
//! never outrun a refused completion).
//!
//! - `dispatcher` — the loop and its event handlers;
//! - `graph` — the in-memory graph: unsatisfied counts, the ready heap, retries, others'
//!   changes applied in place;
//! - `admission` — what may start now: holds, role and group caps, file footprints;
//! - `attempt` — one attempt's life outside the loop (prompt, executor, artifacts);
//! - `loading` — the whole graph loading in the background while the first attempts run.
//!
//! What is not scheduling lives beside this module and is re-exported here so the paths stay
//! put: flag rules and discovered work ([`crate::rules`]), the prompt's context
//! ([`crate::prompt_context`]), this machine's identity ([`crate::host`]).
//!
//! Must never: print, read configuration files, or decide anything a task's settings or the
//! options do not say.

use std::sync::Arc;

use downbeat_store::Store;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub(crate) mod admission;
mod attempt;
mod dispatcher;
pub(crate) mod graph;
mod held;
mod integration;
mod loading;
mod places;
pub(crate) mod types;

pub use crate::config::DEFAULT_CONTEXT_BUDGET;
pub use crate::host::{default_holder, holder_is_dead, this_host};
pub use crate::prompt_context::prompt_context;
pub use crate::rules::{Dependent, ReportEffects, announce, completion_effects, load_dependents};
pub use integration::{PolicyFx, on_conflict};
pub use types::{
    AcceptFn, DEFAULT_LOAD_WAIT, ResolveFn, Resolved, RunError, RunEvent, RunOptions, RunSummary,
};

/// The executors the pending tasks in scope would run with, resolved as a run resolves them
/// (one per distinct executor setting and role): what a preflight checks before anything
/// starts. A task whose executor cannot be resolved fails it, as it fails a run.
pub async fn executors_in_scope(
    store: &dyn Store,
    opts: &RunOptions,
) -> Result<Vec<Resolved>, RunError> {
    let g = graph::Graph::load(store, opts, (opts.now)()).await?;
    let mut resolver = attempt::Resolver::default();
    dispatcher::resolve_pending(&g, opts, &mut resolver)?;
    Ok(resolver.into_resolved())
}

/// Runs the graph until nothing more can run, the token is cancelled, or a rule stops it.
pub async fn run(
    store: Arc<dyn Store>,
    opts: RunOptions,
    events: mpsc::UnboundedSender<RunEvent>,
    cancel: CancellationToken,
) -> Result<RunSummary, RunError> {
    dispatcher::Dispatcher::start(store, opts, events, cancel)
        .await?
        .drive()
        .await
}
