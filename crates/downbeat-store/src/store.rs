//! [`Store`]: the durable state of one project, all its parts as one trait object.

use crate::holds::Holds;
use crate::traits::{ContextStore, ExecutionStore, MaintenanceStore, TaskStore, WorkerStore};

/// The durable state of one project: every part ([`TaskStore`], [`ContextStore`],
/// [`ExecutionStore`] with its [`Holds`], [`WorkerStore`], [`MaintenanceStore`]) as one trait
/// object (`&dyn Store`, `Box<dyn Store>`, `Arc<dyn Store>`). Implemented for every type that
/// implements the parts; methods of the parts are callable on a `dyn Store` without importing
/// them.
pub trait Store:
    TaskStore + ContextStore + ExecutionStore + WorkerStore + MaintenanceStore + Holds
{
}

impl<T> Store for T where
    T: TaskStore + ContextStore + ExecutionStore + WorkerStore + MaintenanceStore + Holds + ?Sized
{
}
