//! Holds: "start nothing but this until it is done" — what a pausing flag rule leaves behind,
//! durable and seen by every runner, worker and MCP server on the database.
//!
//! A hold names a task (the follow-up a rule added, say): while that task is neither completed,
//! skipped nor cancelled, only it may start. A hold without a task holds back all work until it
//! is released by hand. Holds live in one `meta` entry (`holds`: the list and the last number
//! given out) changed with
//! compare-and-swap, each change logged in the same transaction (`hold.added`,
//! `hold.released`), so every backend gets them from [`ContextStore::meta_swap`] alone, through
//! [`Holds`], which every [`ExecutionStore`] has. Holds of tasks that ended are dropped from the
//! list on the next change.

use std::collections::HashSet;

use async_trait::async_trait;
use downbeat_core::context::Actor;
use downbeat_core::graph::TaskDag;
use downbeat_core::ids::TaskId;
use downbeat_core::time::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::effect_tx::EffectTx;
use crate::error::{Error, Result};
use crate::traits::{ContextStore, ExecutionStore, TaskStore};
pub use crate::types::Hold;

const KEY: &str = "holds";

/// The holds of a store, on every [`ExecutionStore`] (and so on every
/// [`Store`](crate::Store), where they are callable without importing this trait).
#[async_trait]
pub trait Holds: ExecutionStore {
    /// The holds in force: nothing but their tasks may start while there are any.
    async fn holds(&self) -> Result<Vec<Hold>> {
        active(self).await
    }
    /// The holds in force and the number of the last hold given out (0: none yet), in force
    /// or not, from one read: the number is what a claimer that chose by these holds passes
    /// as [`Batch::holds_seen`](crate::Batch::holds_seen).
    async fn holds_and_last(&self) -> Result<(Vec<Hold>, u32)> {
        active_and_last(self).await
    }
    /// Holds back all work but `task` (`None`: all work) until `task` ends or the hold is
    /// released. Logged as `hold.added`.
    async fn add_hold(&self, task: Option<TaskId>, reason: &str, actor: &Actor) -> Result<Hold> {
        add(self, task, reason, actor).await
    }
    /// Releases the hold numbered `id`, or every hold (`None`); returns those released.
    /// Logged as `hold.released`.
    async fn release_holds(&self, id: Option<u32>, actor: &Actor) -> Result<Vec<Hold>> {
        release(self, id, actor).await
    }
}

impl<T: ExecutionStore + ?Sized> Holds for T {}

/// What the holds in force let start (`None`: there is no hold, anything may). A hold
/// without a task lets nothing start; holds on tasks let those tasks start, and the tasks
/// they wait on in `dag` (a follow-up with dependencies is not held up by its own hold).
/// Without a graph, only the holds' own tasks.
pub fn allowed(holds: &[Hold], dag: Option<&TaskDag>) -> Option<HashSet<TaskId>> {
    if holds.is_empty() {
        return None;
    }
    let tasks: HashSet<TaskId> = holds.iter().filter_map(|h| h.task).collect();
    Some(match dag {
        Some(d) => d.with_prerequisites(&tasks),
        None => tasks,
    })
}

/// The stored form (task as its sequence number).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Stored {
    id: u32,
    task: Option<u32>,
    reason: String,
    by: String,
    at: i64,
}

impl Stored {
    fn hold(&self) -> Option<Hold> {
        let task = match self.task {
            Some(seq) => Some(TaskId::from_seq(seq)?),
            None => None,
        };
        Some(Hold {
            id: self.id,
            task,
            reason: self.reason.clone(),
            by: self.by.clone(),
            at: Timestamp(self.at),
        })
    }
}

/// The stored entry: the holds and the last number given out (numbers are not reused).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Book {
    last: u32,
    holds: Vec<Stored>,
}

/// The stored entry's text as a book (none stored: an empty one).
fn parse(raw: Option<&str>) -> Result<Book> {
    match raw {
        Some(text) => serde_json::from_str(text)
            .map_err(|e| Error::Invalid(format!("the stored holds cannot be read: {e}"))),
        None => Ok(Book::default()),
    }
}

async fn load<S: TaskStore + ContextStore + ?Sized>(store: &S) -> Result<(Option<String>, Book)> {
    let raw = store.meta_get(KEY).await?;
    let book = parse(raw.as_deref())?;
    Ok((raw, book))
}

/// Whether the stored holds entry `raw` gave out a hold numbered after `seen`: the check a
/// batch makes, inside its transaction, before it takes any claim.
pub(crate) fn later_than(raw: Option<&str>, seen: u32) -> Result<bool> {
    Ok(parse(raw)?.last > seen)
}

/// Whether the hold is still in force: it holds back everything, or its task has not ended.
async fn in_force<S: TaskStore + ContextStore + ?Sized>(store: &S, h: &Stored) -> Result<bool> {
    let Some(task) = h.task.and_then(TaskId::from_seq) else {
        return Ok(h.task.is_none());
    };
    match store.task(task).await {
        Ok(t) => Ok(!t.archived && !t.status.is_terminal()),
        Err(Error::NotFound { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

async fn live<S: TaskStore + ContextStore + ?Sized>(
    store: &S,
    list: Vec<Stored>,
) -> Result<Vec<Stored>> {
    let mut out = Vec::with_capacity(list.len());
    for h in list {
        if in_force(store, &h).await? {
            out.push(h);
        }
    }
    Ok(out)
}

pub(crate) async fn active<S: TaskStore + ContextStore + ?Sized>(store: &S) -> Result<Vec<Hold>> {
    Ok(active_and_last(store).await?.0)
}

/// The holds in force and the number of the last hold given out, from one read of the entry.
pub(crate) async fn active_and_last<S: TaskStore + ContextStore + ?Sized>(
    store: &S,
) -> Result<(Vec<Hold>, u32)> {
    let (_, book) = load(store).await?;
    let last = book.last;
    let holds = live(store, book.holds)
        .await?
        .iter()
        .filter_map(Stored::hold)
        .collect();
    Ok((holds, last))
}

fn encode(book: &Book) -> String {
    serde_json::to_string(book).unwrap_or_default()
}

/// Tries a change until no other writer got in between.
const ATTEMPTS: usize = 50;

pub(crate) async fn add<S: TaskStore + ContextStore + ?Sized>(
    store: &S,
    task: Option<TaskId>,
    reason: &str,
    actor: &Actor,
) -> Result<Hold> {
    if reason.trim().is_empty() {
        return Err(Error::Invalid("a hold needs a reason".into()));
    }
    if let Some(t) = task {
        store.task(t).await?;
    }
    for _ in 0..ATTEMPTS {
        let (raw, book) = load(store).await?;
        let id = book.last + 1;
        let mut kept = live(store, book.holds).await?;
        let new = Stored {
            id,
            task: task.map(TaskId::seq),
            reason: reason.trim().to_owned(),
            by: actor.name.clone(),
            at: actor.now.0,
        };
        kept.push(new.clone());
        let entity = task.map_or_else(|| "project".to_owned(), |t| t.to_string());
        let after = json!({"hold": id, "task": task.map(|t| t.to_string()), "reason": new.reason});
        if store
            .meta_swap(
                KEY,
                raw.as_deref(),
                &encode(&Book {
                    last: id,
                    holds: kept,
                }),
                "hold.added",
                &entity,
                Some(after),
                actor,
            )
            .await?
        {
            return new
                .hold()
                .ok_or_else(|| Error::Invalid("hold task out of range".into()));
        }
    }
    Err(Error::Database(
        "the holds kept changing under this change; try again".into(),
    ))
}

/// Adds a hold inside a transaction that is writing already (a completion's effects): the
/// entry is read locked and written back directly (no compare-and-swap needed under the lock),
/// with the same `hold.added` event as [`add`].
pub(crate) async fn add_within(
    tx: &mut dyn EffectTx,
    task: Option<TaskId>,
    reason: &str,
    actor: &Actor,
) -> Result<Hold> {
    if reason.trim().is_empty() {
        return Err(Error::Invalid("a hold needs a reason".into()));
    }
    if let Some(t) = task {
        tx.task(t).await?;
    }
    let raw = tx.holds_entry().await?;
    let book = parse(raw.as_deref())?;
    let id = book.last + 1;
    let mut kept = Vec::with_capacity(book.holds.len() + 1);
    for h in book.holds {
        let live = match h.task.and_then(TaskId::from_seq) {
            None => h.task.is_none(),
            Some(t) => match tx.task(t).await {
                Ok(t) => !t.archived && !t.status.is_terminal(),
                Err(Error::NotFound { .. }) => false,
                Err(e) => return Err(e),
            },
        };
        if live {
            kept.push(h);
        }
    }
    let new = Stored {
        id,
        task: task.map(TaskId::seq),
        reason: reason.trim().to_owned(),
        by: actor.name.clone(),
        at: actor.now.0,
    };
    kept.push(new.clone());
    let entity = task.map_or_else(|| "project".to_owned(), |t| t.to_string());
    let after = json!({"hold": id, "task": task.map(|t| t.to_string()), "reason": new.reason});
    let text = encode(&Book {
        last: id,
        holds: kept,
    });
    tx.write_holds(raw.is_some(), &text).await?;
    tx.event("hold.added", &entity, None, Some(after), actor)
        .await?;
    new.hold()
        .ok_or_else(|| Error::Invalid("hold task out of range".into()))
}

pub(crate) async fn release<S: TaskStore + ContextStore + ?Sized>(
    store: &S,
    id: Option<u32>,
    actor: &Actor,
) -> Result<Vec<Hold>> {
    for _ in 0..ATTEMPTS {
        let (raw, book) = load(store).await?;
        let kept = live(store, book.holds).await?;
        let (gone, stay): (Vec<Stored>, Vec<Stored>) =
            kept.into_iter().partition(|h| id.is_none_or(|i| h.id == i));
        if let Some(i) = id
            && gone.is_empty()
        {
            return Err(Error::NotFound {
                what: "hold in force",
                query: i.to_string(),
            });
        }
        if gone.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<u32> = gone.iter().map(|h| h.id).collect();
        if store
            .meta_swap(
                KEY,
                raw.as_deref(),
                &encode(&Book {
                    last: book.last,
                    holds: stay,
                }),
                "hold.released",
                "project",
                Some(json!({"holds": ids})),
                actor,
            )
            .await?
        {
            return Ok(gone.iter().filter_map(Stored::hold).collect());
        }
    }
    Err(Error::Database(
        "the holds kept changing under this change; try again".into(),
    ))
}
