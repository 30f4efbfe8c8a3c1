//! Flag rules as a pure function: what a completed task's report (its flags and the work it
//! discovered) asks of the graph, given the project's `[[rules]]` and the task's dependents.
//!
//! [`effects`] turns those facts into a list of [`Effect`]s, plain data that whoever applies
//! them (the engine, later the store inside the completion's transaction) carries out in order.
//!
//! Must never: perform I/O, read the clock or the environment, or render templates itself (the
//! caller hands in the title renderer).

use serde::{Deserialize, Serialize};

use crate::ids::TaskId;
use crate::task::{NewTask, Priority, Status};

/// The title of a follow-up task when its rule sets none.
pub const DEFAULT_FOLLOW_UP_TITLE: &str = "Follow up {{ flag }} from {{ task.title }}";

/// What a flag raised by an agent triggers.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlagRule {
    /// The flag, e.g. `DATABASE_INVESTIGATION`.
    pub flag: String,
    pub action: FlagAction,
    /// For `add-task`: the follow-up's role.
    pub role: Option<String>,
    /// For `add-task`: a template of the follow-up's title; may use `task.title`, `task.id`,
    /// `flag`.
    pub title: Option<String>,
    /// For `add-task`: start nothing else until the follow-up is done.
    #[serde(default)]
    pub pause: bool,
    /// For `raise-priority`: the new priority of the flagging task's dependents (default high).
    pub priority: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FlagAction {
    /// Add a follow-up task (optionally pausing everything else until it is done).
    AddTask,
    /// Raise the priority of the flagging task's dependents.
    RaisePriority,
    /// Start nothing else until the flagging task's follow-ups are done (`add-task` with
    /// `pause = true` is the usual way); alone, pauses the run.
    Pause,
    /// End the run after the running attempts finish.
    Stop,
}

/// A task an agent asks to add.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscoveredTask {
    pub title: String,
    pub role: Option<String>,
    #[serde(default)]
    pub description: String,
    /// Whether the discovering task's dependents must also wait for it.
    #[serde(default)]
    pub blocks_dependents: bool,
}

/// A dependent of a completed task, as flag rules and discovered work see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dependent {
    pub id: TaskId,
    pub status: Status,
    pub priority: Priority,
}

/// A completed task's report, with what the rules need to know about the task.
#[derive(Debug, Clone, Copy)]
pub struct Completion<'a> {
    pub task: TaskId,
    pub title: &'a str,
    /// The flags the report raised, in order.
    pub flags: &'a [String],
    /// The work the report discovered, in order.
    pub discovered: &'a [DiscoveredTask],
    /// The task's transitive dependents (only their pending ones are ever touched).
    pub dependents: &'a [Dependent],
}

/// One thing applying a report does, in the order [`effects`] lists them.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Record that `task` raised `flag` (a `flag.raised` event).
    RecordFlag { task: TaskId, flag: String },
    /// No rule handles `flag`: nothing happens besides the record.
    Unhandled { task: TaskId, flag: String },
    /// Create `task`, linked from `from` by a `discovered-from` edge. With `hold`, then add a
    /// hold on the new task for that reason: nothing else starts until it is done.
    FollowUp {
        from: TaskId,
        flag: String,
        task: NewTask,
        hold: Option<String>,
    },
    /// Set the priority of `tasks` (pending dependents below it) to `priority`.
    RaisePriority {
        from: TaskId,
        flag: String,
        priority: Priority,
        tasks: Vec<TaskId>,
    },
    /// Add a hold on nothing: nothing new starts until it is released.
    Pause {
        from: TaskId,
        flag: String,
        reason: String,
    },
    /// End the run after the running attempts finish.
    Stop {
        from: TaskId,
        flag: String,
        reason: String,
    },
    /// Create `task`, linked from `from` by a `discovered-from` edge, and make each of `blocks`
    /// wait for it (`blocks` edges from the new task).
    Discover {
        from: TaskId,
        task: NewTask,
        blocks: Vec<TaskId>,
    },
}

impl Effect {
    /// Whether applying this effect changes the graph (tasks, edges or priorities).
    pub fn changes_graph(&self) -> bool {
        match self {
            Self::FollowUp { .. } | Self::Discover { .. } => true,
            Self::RaisePriority { tasks, .. } => !tasks.is_empty(),
            Self::RecordFlag { .. } | Self::Unhandled { .. } | Self::Pause { .. } => false,
            Self::Stop { .. } => false,
        }
    }
}

/// The effects of a completed task's report under `rules`, in order: for each flag its record,
/// then what each matching rule does; then the discovered tasks.
///
/// `render_title(template, flag)` renders a follow-up's title template (it may use
/// `task.id`, `task.title` and `flag`); its error is returned as is, and no effect is returned
/// with it.
pub fn effects<E>(
    report: &Completion<'_>,
    rules: &[FlagRule],
    render_title: impl Fn(&str, &str) -> Result<String, E>,
) -> Result<Vec<Effect>, E> {
    let from = report.task;
    let mut out = Vec::new();
    for flag in report.flags {
        out.push(Effect::RecordFlag {
            task: from,
            flag: flag.clone(),
        });
        let matching: Vec<&FlagRule> = rules.iter().filter(|r| &r.flag == flag).collect();
        if matching.is_empty() {
            out.push(Effect::Unhandled {
                task: from,
                flag: flag.clone(),
            });
        }
        for rule in matching {
            out.push(rule_effect(report, rule, flag, &render_title)?);
        }
    }
    for d in report.discovered {
        let blocks = if d.blocks_dependents {
            pending(report.dependents).map(|d| d.id).collect()
        } else {
            Vec::new()
        };
        out.push(Effect::Discover {
            from,
            task: NewTask {
                title: d.title.clone(),
                role: d.role.clone(),
                description: d.description.clone(),
                effort: 1,
                ..Default::default()
            },
            blocks,
        });
    }
    Ok(out)
}

/// What one rule matching `flag` does.
fn rule_effect<E>(
    report: &Completion<'_>,
    rule: &FlagRule,
    flag: &str,
    render_title: &impl Fn(&str, &str) -> Result<String, E>,
) -> Result<Effect, E> {
    let from = report.task;
    let flag = flag.to_owned();
    let reason = format!("flag {flag} raised by {from}");
    Ok(match rule.action {
        FlagAction::AddTask => {
            let template = rule.title.as_deref().unwrap_or(DEFAULT_FOLLOW_UP_TITLE);
            let title = render_title(template, &flag)?;
            Effect::FollowUp {
                from,
                task: NewTask {
                    title,
                    role: rule.role.clone(),
                    effort: 1,
                    priority: Priority::High,
                    ..Default::default()
                },
                hold: rule.pause.then_some(reason),
                flag,
            }
        }
        FlagAction::RaisePriority => {
            let priority = rule
                .priority
                .as_deref()
                .and_then(|p| p.parse().ok())
                .unwrap_or(Priority::High);
            let tasks = pending(report.dependents)
                .filter(|d| d.priority < priority)
                .map(|d| d.id)
                .collect();
            Effect::RaisePriority {
                from,
                flag,
                priority,
                tasks,
            }
        }
        FlagAction::Pause => Effect::Pause { from, flag, reason },
        FlagAction::Stop => Effect::Stop { from, flag, reason },
    })
}

fn pending(dependents: &[Dependent]) -> impl Iterator<Item = &Dependent> {
    dependents.iter().filter(|d| d.status == Status::Pending)
}

/// Whether applying a report with these flags and discovered tasks may change what is allowed
/// to start next (a pausing or stopping rule, raised priorities, discovered work that blocks
/// dependents): a scheduler commits and applies such a report before it starts anything new.
pub fn changes_plan(flags: &[String], discovered: &[DiscoveredTask], rules: &[FlagRule]) -> bool {
    discovered.iter().any(|d| d.blocks_dependents)
        || flags.iter().any(|f| {
            rules.iter().any(|r| {
                &r.flag == f
                    && (r.pause
                        || matches!(
                            r.action,
                            FlagAction::Pause | FlagAction::Stop | FlagAction::RaisePriority
                        ))
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(seq: u32) -> TaskId {
        TaskId::from_seq(seq).expect("valid sequence number")
    }

    fn rule(flag: &str, action: FlagAction) -> FlagRule {
        FlagRule {
            flag: flag.into(),
            action,
            role: None,
            title: None,
            pause: false,
            priority: None,
        }
    }

    fn dep(seq: u32, status: Status, priority: Priority) -> Dependent {
        Dependent {
            id: id(seq),
            status,
            priority,
        }
    }

    /// Renders `{{ flag }}` only, enough to see the template and the flag arrive.
    fn title(template: &str, flag: &str) -> Result<String, String> {
        if template.contains("bad") {
            return Err(format!("cannot render `{template}`"));
        }
        Ok(template.replace("{{ flag }}", flag))
    }

    fn completion<'a>(
        flags: &'a [String],
        discovered: &'a [DiscoveredTask],
        dependents: &'a [Dependent],
    ) -> Completion<'a> {
        Completion {
            task: id(1),
            title: "parse input",
            flags,
            discovered,
            dependents,
        }
    }

    #[test]
    fn a_flag_without_a_rule_is_recorded_and_nothing_else() {
        let flags = vec!["ODD".to_owned()];
        let fx = effects(&completion(&flags, &[], &[]), &[], title).unwrap();
        assert_eq!(
            fx,
            vec![
                Effect::RecordFlag {
                    task: id(1),
                    flag: "ODD".into()
                },
                Effect::Unhandled {
                    task: id(1),
                    flag: "ODD".into()
                },
            ]
        );
        assert!(!fx.iter().any(Effect::changes_graph));
    }

    #[test]
    fn add_task_creates_a_high_priority_follow_up_and_may_hold_everything_else() {
        let flags = vec!["DB".to_owned()];
        let mut r = rule("DB", FlagAction::AddTask);
        r.role = Some("dba".into());
        r.pause = true;
        let fx = effects(&completion(&flags, &[], &[]), &[r], title).unwrap();
        assert_eq!(fx.len(), 2);
        let Effect::FollowUp {
            from,
            flag,
            task,
            hold,
        } = &fx[1]
        else {
            panic!("{fx:?}")
        };
        assert_eq!((*from, flag.as_str()), (id(1), "DB"));
        assert_eq!(task.title, "Follow up DB from {{ task.title }}");
        assert_eq!(task.role.as_deref(), Some("dba"));
        assert_eq!((task.priority, task.effort), (Priority::High, 1));
        assert_eq!(
            hold.as_deref(),
            Some(&*format!("flag DB raised by {}", id(1)))
        );
        assert!(fx[1].changes_graph());
    }

    #[test]
    fn a_title_that_does_not_render_is_an_error() {
        let flags = vec!["DB".to_owned()];
        let mut r = rule("DB", FlagAction::AddTask);
        r.title = Some("bad {{".into());
        let err = effects(&completion(&flags, &[], &[]), &[r], title).unwrap_err();
        assert_eq!(err, "cannot render `bad {{`");
    }

    #[test]
    fn raise_priority_touches_only_pending_dependents_below_the_new_priority() {
        let flags = vec!["HOT".to_owned()];
        let deps = [
            dep(2, Status::Pending, Priority::Low),
            dep(3, Status::Pending, Priority::Critical),
            dep(4, Status::Running, Priority::Low),
            dep(5, Status::Pending, Priority::Normal),
        ];
        let mut r = rule("HOT", FlagAction::RaisePriority);
        r.priority = Some("high".into());
        let fx = effects(&completion(&flags, &[], &deps), &[r.clone()], title).unwrap();
        assert_eq!(
            fx[1],
            Effect::RaisePriority {
                from: id(1),
                flag: "HOT".into(),
                priority: Priority::High,
                tasks: vec![id(2), id(5)],
            }
        );
        // An unknown priority means high; nothing to raise changes nothing.
        r.priority = Some("urgent".into());
        let fx = effects(&completion(&flags, &[], &deps[1..3]), &[r], title).unwrap();
        assert!(
            matches!(&fx[1], Effect::RaisePriority { priority: Priority::High, tasks, .. } if tasks.is_empty())
        );
        assert!(!fx[1].changes_graph());
    }

    #[test]
    fn pause_and_stop_give_their_reason() {
        let flags = vec!["STOP".to_owned(), "WAIT".to_owned()];
        let rules = [
            rule("WAIT", FlagAction::Pause),
            rule("STOP", FlagAction::Stop),
        ];
        let fx = effects(&completion(&flags, &[], &[]), &rules, title).unwrap();
        let reason = |f: &str| format!("flag {f} raised by {}", id(1));
        assert_eq!(
            fx,
            vec![
                Effect::RecordFlag {
                    task: id(1),
                    flag: "STOP".into()
                },
                Effect::Stop {
                    from: id(1),
                    flag: "STOP".into(),
                    reason: reason("STOP")
                },
                Effect::RecordFlag {
                    task: id(1),
                    flag: "WAIT".into()
                },
                Effect::Pause {
                    from: id(1),
                    flag: "WAIT".into(),
                    reason: reason("WAIT")
                },
            ]
        );
    }

    #[test]
    fn every_matching_rule_fires_in_order() {
        let flags = vec!["X".to_owned()];
        let rules = [rule("X", FlagAction::Stop), rule("X", FlagAction::Pause)];
        let fx = effects(&completion(&flags, &[], &[]), &rules, title).unwrap();
        assert!(matches!(fx[1], Effect::Stop { .. }));
        assert!(matches!(fx[2], Effect::Pause { .. }));
    }

    #[test]
    fn discovered_work_comes_last_and_may_block_pending_dependents() {
        let flags = vec!["ODD".to_owned()];
        let found = [
            DiscoveredTask {
                title: "fix the parser".into(),
                role: Some("implementer".into()),
                description: "it drops the last line".into(),
                blocks_dependents: true,
            },
            DiscoveredTask {
                title: "note".into(),
                ..Default::default()
            },
        ];
        let deps = [
            dep(2, Status::Pending, Priority::Normal),
            dep(3, Status::Completed, Priority::Normal),
        ];
        let fx = effects(&completion(&flags, &found, &deps), &[], title).unwrap();
        assert_eq!(fx.len(), 4);
        let Effect::Discover { from, task, blocks } = &fx[2] else {
            panic!("{fx:?}")
        };
        assert_eq!(*from, id(1));
        assert_eq!(task.title, "fix the parser");
        assert_eq!(task.role.as_deref(), Some("implementer"));
        assert_eq!(task.description, "it drops the last line");
        assert_eq!((task.priority, task.effort), (Priority::Normal, 1));
        assert_eq!(blocks, &vec![id(2)]);
        assert!(matches!(&fx[3], Effect::Discover { blocks, .. } if blocks.is_empty()));
        assert!(fx[3].changes_graph());
    }

    #[test]
    fn only_rules_that_hold_stop_or_reorder_change_the_plan() {
        let flags = vec!["X".to_owned()];
        let add = rule("X", FlagAction::AddTask);
        assert!(!changes_plan(&flags, &[], std::slice::from_ref(&add)));
        assert!(changes_plan(
            &flags,
            &[],
            &[FlagRule {
                pause: true,
                ..add.clone()
            }]
        ));
        for a in [
            FlagAction::Pause,
            FlagAction::Stop,
            FlagAction::RaisePriority,
        ] {
            assert!(changes_plan(&flags, &[], &[rule("X", a)]));
            assert!(!changes_plan(&flags, &[], &[rule("Y", a)]));
        }
        let blocking = DiscoveredTask {
            blocks_dependents: true,
            ..Default::default()
        };
        assert!(changes_plan(&[], &[blocking], &[]));
        assert!(!changes_plan(&[], &[DiscoveredTask::default()], &[]));
    }
}
