//! What may start now, besides being ready: the holds in force (a pausing rule fired here or
//! elsewhere, or someone paused by hand), the caps of roles and groups of roles, and the files
//! running attempts declared.
//!
//! Must never: choose between ready tasks (the ready heap's order does) or write anything but
//! the events announcing holds.

use std::collections::HashSet;

use downbeat_core::graph::{Caps, TaskDag};
use downbeat_core::ids::TaskId;
use downbeat_store::{Hold, Store};

use super::types::{Emitter, RunError, RunEvent};
use downbeat_core::admission;

/// The holds this runner knows of.
pub(super) struct Holds {
    /// Holds in force.
    pub(super) list: Vec<Hold>,
    /// The number of the last hold given out: every batch of claims carries it, and the store
    /// takes none of them if a later hold exists.
    pub(super) seen: u32,
    /// Others' holds changed (seen in the log): read them again after this turn.
    pub(super) changed: bool,
}

impl Holds {
    /// Reads the holds in force, announcing each.
    pub(super) async fn load(store: &dyn Store, events: &Emitter) -> Result<Self, RunError> {
        let (list, seen) = store.holds_and_last().await?;
        for h in &list {
            events.emit(paused(h));
        }
        Ok(Self {
            list,
            seen,
            changed: false,
        })
    }

    /// Reads the holds in force and the number of the last one given out again, announcing
    /// the new ones.
    pub(super) async fn refresh(
        &mut self,
        store: &dyn Store,
        events: &Emitter,
    ) -> Result<(), RunError> {
        let before: Vec<u32> = self.list.iter().map(|h| h.id).collect();
        (self.list, self.seen) = store.holds_and_last().await?;
        for h in self.list.iter().filter(|h| !before.contains(&h.id)) {
            events.emit(paused(h));
        }
        Ok(())
    }

    /// The tasks the holds let start (`None`: no hold, anything may start). Without the
    /// graph, only the holds' own tasks.
    pub(super) fn allowed(&self, tdag: Option<&TaskDag>) -> Option<HashSet<TaskId>> {
        downbeat_store::holds::allowed(&self.list, tdag)
    }

    /// After a turn: reads the holds again if others changed them, and drops task holds
    /// whose task has ended (`is_over` tells). Announces the run resuming when the last hold
    /// goes.
    pub(super) async fn settle(
        &mut self,
        store: &dyn Store,
        events: &Emitter,
        is_over: impl Fn(TaskId) -> bool,
    ) -> Result<(), RunError> {
        if !self.changed && self.list.is_empty() {
            return Ok(());
        }
        let before = self.list.len();
        if std::mem::take(&mut self.changed) {
            self.refresh(store, events).await?;
        }
        self.list.retain(|h| h.task.is_none_or(|t| !is_over(t)));
        if before > 0 && self.list.is_empty() {
            events.emit(RunEvent::Resumed);
        }
        Ok(())
    }

    /// Why nothing can start while the first hold is in force.
    pub(super) fn reason(&self) -> Option<String> {
        let h = self.list.first()?;
        Some(match h.task {
            Some(t) => format!(
                "held: only {t} may start (hold {}: {}), and it cannot start now",
                h.id, h.reason
            ),
            None => format!(
                "paused (hold {}: {}); `downbeat unpause` releases it",
                h.id, h.reason
            ),
        })
    }
}

/// The event announcing a hold.
pub(crate) fn paused(h: &Hold) -> RunEvent {
    RunEvent::Paused {
        hold: h.id,
        until: h.task.map(|t| t.to_string()),
        reason: h.reason.clone(),
    }
}

/// Whether the holds in force (as [`Holds::allowed`] gives them) keep `task` from starting.
pub(super) fn held_back(allowed: &Option<HashSet<TaskId>>, task: TaskId) -> bool {
    allowed.as_ref().is_some_and(|a| !a.contains(&task))
}

/// What running and just-claimed attempts occupy: places in capped groups, declared files —
/// the core's admission rule ([`admission::Occupancy`]), asked about whole tasks.
#[derive(Default)]
pub(super) struct Occupied(admission::Occupancy);

impl Occupied {
    /// Whether `task` may start next to them: its group (if capped) has room and its files do
    /// not overlap theirs.
    pub(super) fn admits(&self, role: Option<&str>, footprint: &[String], caps: &Caps) -> bool {
        self.0.admits(role, footprint, caps)
    }

    pub(super) fn take(&mut self, role: Option<&str>, footprint: &[String], caps: &Caps) {
        self.0.take(role, footprint, caps);
    }
}
