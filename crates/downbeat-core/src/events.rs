//! The kinds of event in the event log, and what each does to a kept copy of the task graph.
//!
//! The log stores an event's kind as text (`task.status`, `hold.added`, …). Readers that keep
//! the graph in memory between reads — the engine's scheduler, the MCP server's kept view —
//! decide from [`EventKind::effect`] whether to ignore an event, apply a status change in
//! place, or read the graph again. A kind this build does not know is read as changing the
//! structure: reading again is always correct, only slower.

/// A kind of event in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    TaskCreated,
    TaskUpdated,
    TaskStatus,
    TaskArchived,
    EdgeAdded,
    EdgeRemoved,
    PlanApplied,
    /// One call of an agent or endpoint drafting a plan (tokens, cost, verdict).
    PlanDrafted,
    SessionStarted,
    SessionEnded,
    ObjectiveAdded,
    ObjectiveStatus,
    ObjectiveLinked,
    InsightAdded,
    DecisionAdded,
    DecisionProposed,
    DecisionAccepted,
    DecisionRejected,
    ArtifactAdded,
    FlagRaised,
    FlagHandled,
    HoldAdded,
    HoldReleased,
    WorkerRegistered,
    WorkerDeregistered,
    HandoverWritten,
    MetaSet,
    MaintainLinkRemoved,
    MaintainOrphanDetached,
    MaintainEdgeRemoved,
    MaintainOptimized,
    /// A scheduled maintenance round began, found something, ended.
    MaintainStarted,
    MaintainFound,
    MaintainFinished,
    /// Written by a newer build, or by hand: treated as changing the structure.
    Unknown,
}

/// What an event does to a kept copy of the task graph (tasks, their parents, statuses and
/// edges).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphEffect {
    /// Nothing: context records, holds, workers, sessions, bookkeeping.
    None,
    /// One task's status (and retry time) changed: apply it in place.
    Status,
    /// Tasks, parents or edges changed: read the graph again.
    Structure,
}

const KINDS: [(EventKind, &str); 34] = [
    (EventKind::TaskCreated, "task.created"),
    (EventKind::TaskUpdated, "task.updated"),
    (EventKind::TaskStatus, "task.status"),
    (EventKind::TaskArchived, "task.archived"),
    (EventKind::EdgeAdded, "edge.added"),
    (EventKind::EdgeRemoved, "edge.removed"),
    (EventKind::PlanApplied, "plan.applied"),
    (EventKind::PlanDrafted, "plan.drafted"),
    (EventKind::SessionStarted, "session.started"),
    (EventKind::SessionEnded, "session.ended"),
    (EventKind::ObjectiveAdded, "objective.added"),
    (EventKind::ObjectiveStatus, "objective.status"),
    (EventKind::ObjectiveLinked, "objective.linked"),
    (EventKind::InsightAdded, "insight.added"),
    (EventKind::DecisionAdded, "decision.added"),
    (EventKind::DecisionProposed, "decision.proposed"),
    (EventKind::DecisionAccepted, "decision.accepted"),
    (EventKind::DecisionRejected, "decision.rejected"),
    (EventKind::ArtifactAdded, "artifact.added"),
    (EventKind::FlagRaised, "flag.raised"),
    (EventKind::FlagHandled, "flag.handled"),
    (EventKind::HoldAdded, "hold.added"),
    (EventKind::HoldReleased, "hold.released"),
    (EventKind::WorkerRegistered, "worker.registered"),
    (EventKind::WorkerDeregistered, "worker.deregistered"),
    (EventKind::HandoverWritten, "handover.written"),
    (EventKind::MetaSet, "meta.set"),
    (EventKind::MaintainLinkRemoved, "maintain.link_removed"),
    (
        EventKind::MaintainOrphanDetached,
        "maintain.orphan_detached",
    ),
    (EventKind::MaintainEdgeRemoved, "maintain.edge_removed"),
    (EventKind::MaintainOptimized, "maintain.optimized"),
    (EventKind::MaintainStarted, "maintain.started"),
    (EventKind::MaintainFound, "maintain.found"),
    (EventKind::MaintainFinished, "maintain.finished"),
];

impl EventKind {
    /// The kind an action text names; [`EventKind::Unknown`] for any other text.
    pub fn parse(action: &str) -> Self {
        KINDS
            .iter()
            .find(|(_, s)| *s == action)
            .map_or(Self::Unknown, |(k, _)| *k)
    }

    /// The action text the log stores (`""` for [`EventKind::Unknown`]).
    pub fn as_str(self) -> &'static str {
        KINDS
            .iter()
            .find(|(k, _)| *k == self)
            .map_or("", |(_, s)| s)
    }

    /// What an event of this kind does to a kept graph.
    pub fn effect(self) -> GraphEffect {
        use EventKind::*;
        match self {
            TaskStatus => GraphEffect::Status,
            TaskCreated
            | TaskUpdated
            | TaskArchived
            | EdgeAdded
            | EdgeRemoved
            | PlanApplied
            | MaintainOrphanDetached
            | MaintainEdgeRemoved
            | Unknown => GraphEffect::Structure,
            PlanDrafted | SessionStarted | SessionEnded | ObjectiveAdded | ObjectiveStatus
            | ObjectiveLinked | InsightAdded | DecisionAdded | DecisionProposed
            | DecisionAccepted | DecisionRejected | ArtifactAdded | FlagRaised | FlagHandled
            | HoldAdded | HoldReleased | WorkerRegistered | WorkerDeregistered
            | HandoverWritten | MetaSet | MaintainLinkRemoved | MaintainOptimized
            | MaintainStarted | MaintainFound | MaintainFinished => GraphEffect::None,
        }
    }

    /// Whether this kind is one of the holds' (`hold.added`, `hold.released`).
    pub fn is_hold(self) -> bool {
        matches!(self, Self::HoldAdded | Self::HoldReleased)
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_through_its_text() {
        for (k, s) in KINDS {
            assert_eq!(EventKind::parse(s), k);
            assert_eq!(k.as_str(), s);
        }
        assert_eq!(EventKind::parse("task.teleported"), EventKind::Unknown);
    }

    #[test]
    fn unknown_and_structural_kinds_force_a_reload() {
        assert_eq!(EventKind::parse("x.y").effect(), GraphEffect::Structure);
        assert_eq!(EventKind::TaskStatus.effect(), GraphEffect::Status);
        assert_eq!(
            EventKind::MaintainEdgeRemoved.effect(),
            GraphEffect::Structure
        );
        assert_eq!(EventKind::HandoverWritten.effect(), GraphEffect::None);
        assert_eq!(EventKind::MetaSet.effect(), GraphEffect::None);
    }
}
