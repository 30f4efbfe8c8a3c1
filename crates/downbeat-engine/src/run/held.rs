//! What the loop keeps of each task: the fields it schedules by, not the text.
//!
//! A runner holds every task of the project for the whole run. A whole [`Task`] is 376 bytes
//! before its strings, most of them fields the loop never reads (description, acceptance,
//! result, timestamps, lease fields), so at a million tasks the loop keeps [`HeldTask`]s
//! instead, converted chunk by chunk as the store reads them. An attempt that shows its task
//! in a prompt reads the whole task from the store when it starts
//! ([`crate::prompt_context::render_prompt`]).
//!
//! Must never: be given to an executor or a prompt as if it were the whole task.

use downbeat_core::ids::{LeaseEpoch, TaskId};
use downbeat_core::task::{ExecSettings, Priority, Status, Task};
use downbeat_core::time::Timestamp;

/// The loop's fields of a task.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct HeldTask {
    pub(super) id: TaskId,
    pub(super) parent: Option<TaskId>,
    pub(super) status: Status,
    pub(super) priority: Priority,
    pub(super) effort: u32,
    pub(super) attempts: u32,
    pub(super) not_before: Option<Timestamp>,
    pub(super) title: Box<str>,
    pub(super) role: Option<Box<str>>,
    pub(super) tags: Box<[String]>,
    pub(super) footprint: Box<[String]>,
    /// `None` when every setting is unset (most tasks).
    exec: Option<Box<ExecSettings>>,
}

const NO_SETTINGS: ExecSettings = ExecSettings {
    executor: None,
    timeout: None,
    max_attempts: None,
};

impl From<Task> for HeldTask {
    fn from(t: Task) -> Self {
        Self {
            id: t.id,
            parent: t.parent,
            status: t.status,
            priority: t.priority,
            effort: t.effort,
            attempts: t.attempts,
            not_before: t.not_before,
            title: t.title.into_boxed_str(),
            role: t.role.map(String::into_boxed_str),
            tags: t.tags.into_boxed_slice(),
            footprint: t.footprint.into_boxed_slice(),
            exec: (t.exec != NO_SETTINGS).then(|| Box::new(t.exec)),
        }
    }
}

impl HeldTask {
    pub(super) fn exec(&self) -> &ExecSettings {
        self.exec.as_deref().unwrap_or(&NO_SETTINGS)
    }

    /// A [`Task`] with the loop's fields and the others empty: enough to choose its executor
    /// and to ask whether a runner takes it, not to show it.
    pub(super) fn to_task(&self) -> Task {
        Task {
            id: self.id,
            key: None,
            parent: self.parent,
            title: self.title.to_string(),
            description: String::new(),
            role: self.role.as_deref().map(str::to_owned),
            status: self.status,
            priority: self.priority,
            effort: self.effort,
            acceptance: Vec::new(),
            tags: self.tags.to_vec(),
            footprint: self.footprint.to_vec(),
            result: None,
            created_at: Timestamp(0),
            updated_at: Timestamp(0),
            started_at: None,
            finished_at: None,
            archived: false,
            exec: self.exec().clone(),
            attempts: self.attempts,
            not_before: self.not_before,
            lease_holder: None,
            lease_expires: None,
            lease_epoch: LeaseEpoch(0),
        }
    }
}

downbeat_core::graph_node!(HeldTask);

#[cfg(test)]
mod tests {
    use super::*;

    fn task() -> Task {
        Task {
            id: TaskId::from_seq(7).unwrap(),
            key: Some("k".into()),
            parent: TaskId::from_seq(2),
            title: "Write the parser".into(),
            description: "long text".into(),
            role: Some("implementer".into()),
            status: Status::Pending,
            priority: Priority::High,
            effort: 3,
            acceptance: vec!["parses".into()],
            tags: vec!["needs:gpu".into()],
            footprint: vec!["src/**".into()],
            result: None,
            created_at: Timestamp(5),
            updated_at: Timestamp(6),
            started_at: None,
            finished_at: None,
            archived: false,
            exec: ExecSettings::default(),
            attempts: 2,
            not_before: Some(Timestamp(9)),
            lease_holder: None,
            lease_expires: None,
            lease_epoch: LeaseEpoch(4),
        }
    }

    #[test]
    fn keeps_what_the_loop_reads_and_is_a_third_of_a_task() {
        let t = task();
        let h = HeldTask::from(t.clone());
        let back = h.to_task();
        assert_eq!(
            (
                back.id,
                back.parent,
                back.status,
                back.priority,
                back.effort
            ),
            (t.id, t.parent, t.status, t.priority, t.effort)
        );
        assert_eq!((back.title, back.role), (t.title, t.role));
        assert_eq!((back.tags, back.footprint), (t.tags, t.footprint));
        assert_eq!((back.attempts, back.not_before), (2, Some(Timestamp(9))));
        assert!(back.description.is_empty() && back.acceptance.is_empty());
        assert!(h.exec.is_none());
        assert!(std::mem::size_of::<HeldTask>() * 3 <= std::mem::size_of::<Task>());
    }

    #[test]
    fn execution_settings_are_kept_when_set() {
        let mut t = task();
        t.exec.max_attempts = Some(5);
        t.exec.executor = Some("claude".into());
        let h = HeldTask::from(t.clone());
        assert_eq!(h.exec(), &t.exec);
        assert_eq!(h.to_task().exec, t.exec);
    }
}
