//! Flag rules as a pure function: what a completed task's report (its flags and the work it
//! discovered) asks of the graph, given the project's `[[rules]]` and the task's dependents.
//!
//! [`effects`] turns those facts into a list of [`Effect`]s, plain data that the store carries
//! out in order inside the completion's transaction: each flag recorded with its state
//! ([`FlagState`]), follow-up tasks, raised priorities, holds, stops, discovered tasks.
//!
//! The loop guard lives here too. A follow-up carries a `flag:NAME` tag for every flag of the
//! chain that led to it (its lineage, [`lineage_of`]); a flag raised by a task whose lineage
//! holds that flag already, or by a task `max_depth` follow-ups deep, adds no follow-up and no
//! hold: the flag is recorded as [`FlagState::Suppressed`] with the reason.
//!
//! Must never: perform I/O, read the clock or the environment, or render templates itself (the
//! caller hands in the title renderer).

use serde::{Deserialize, Serialize};

use crate::ids::TaskId;
use crate::task::{NewTask, Priority, Status};

/// The title of a follow-up task when its rule sets none.
pub const DEFAULT_FOLLOW_UP_TITLE: &str = "Follow up {{ flag }} from {{ task.title }}";

/// The prefix of the tags that name the flags a follow-up exists because of.
pub const FLAG_TAG: &str = "flag:";

/// How deep follow-up chains go by default (`[flags] max_depth`): a follow-up of a follow-up
/// of a follow-up adds no further one.
pub const DEFAULT_MAX_DEPTH: u32 = 3;

/// What a flag raised by an agent triggers.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FlagRule {
    /// The flag, e.g. `DATABASE_INVESTIGATION`.
    pub flag: String,
    pub action: FlagAction,
    /// For `add-task`: the follow-up's role.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// For `add-task`: a template of the follow-up's title; may use `task.title`, `task.id`,
    /// `flag`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// For `add-task`: start nothing else until the follow-up is done.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pause: bool,
    /// For `raise-priority`: the new priority of the flagging task's dependents (default high).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<String>,
}

impl FlagRule {
    /// Checks what can be checked without the project: the flag's name, and that each field
    /// belongs to the rule's action. Roles and title templates are the caller's to check.
    pub fn check(&self) -> Result<(), String> {
        check_name(&self.flag)?;
        let only = |field: &str, action: &str| {
            Err(format!(
                "rule for {}: `{field}` applies to action `{action}` only",
                self.flag
            ))
        };
        if self.action != FlagAction::AddTask {
            if self.role.is_some() {
                return only("role", "add-task");
            }
            if self.title.is_some() {
                return only("title", "add-task");
            }
            if self.pause {
                return only("pause", "add-task");
            }
        }
        if let Some(p) = &self.priority {
            if self.action != FlagAction::RaisePriority {
                return only("priority", "raise-priority");
            }
            p.parse::<Priority>()
                .map_err(|e| format!("rule for {}: priority: {e}", self.flag))?;
        }
        Ok(())
    }

    /// One line saying what the rule does.
    pub fn describe(&self) -> String {
        match self.action {
            FlagAction::AddTask => {
                let role = self
                    .role
                    .as_deref()
                    .map(|r| format!(" for the {r} role"))
                    .unwrap_or_default();
                let pause = if self.pause {
                    ", and nothing else starts until it is done"
                } else {
                    ""
                };
                format!("adds a follow-up task{role}{pause}")
            }
            FlagAction::RaisePriority => format!(
                "raises the flagging task's pending dependents to {} priority",
                self.priority.as_deref().unwrap_or("high")
            ),
            FlagAction::Pause => "pauses everything until the hold is released".into(),
            FlagAction::Stop => "ends the run after the running attempts finish".into(),
        }
    }
}

/// Whether `name` can be a flag: letters, digits, `_`, `-` and `.`.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("a flag needs a name".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
    {
        return Err(format!(
            "flag `{name}`: `{c}` is not allowed (letters, digits, `_`, `-`, `.`)"
        ));
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
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

impl FlagAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AddTask => "add-task",
            Self::RaisePriority => "raise-priority",
            Self::Pause => "pause",
            Self::Stop => "stop",
        }
    }
}

impl std::str::FromStr for FlagAction {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "add-task" => Self::AddTask,
            "raise-priority" => Self::RaisePriority,
            "pause" => Self::Pause,
            "stop" => Self::Stop,
            _ => {
                return Err(format!(
                    "unknown action `{s}` (add-task, raise-priority, pause, stop)"
                ));
            }
        })
    }
}

/// A flag as an agent raised it: its name and what it found.
///
/// Reported as a string, `NAME` or `NAME: detail`, or as an object
/// `{"flag": "NAME", "detail": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Flag {
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

impl Flag {
    /// `NAME` or `NAME: detail` (a prefix that is no flag name leaves the whole text the name,
    /// so that [`check_name`] can say what is wrong with it).
    pub fn parse(s: &str) -> Self {
        let s = s.trim();
        if let Some((name, detail)) = s.split_once(':')
            && check_name(name.trim()).is_ok()
        {
            return Self {
                name: name.trim().to_owned(),
                detail: detail.trim().to_owned(),
            };
        }
        Self {
            name: s.to_owned(),
            detail: String::new(),
        }
    }
}

impl From<&str> for Flag {
    fn from(s: &str) -> Self {
        Self::parse(s)
    }
}

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Object {
            flag: String,
            #[serde(default)]
            detail: String,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Text(String),
            Object(Object),
        }
        match Form::deserialize(d).map_err(|_| {
            serde::de::Error::custom(
                "a flag is a string (`NAME` or `NAME: detail`) or {\"flag\": NAME, \"detail\": TEXT}",
            )
        })? {
            Form::Text(s) => Ok(Self::parse(&s)),
            Form::Object(o) => Ok(Self {
                name: o.flag.trim().to_owned(),
                detail: o.detail.trim().to_owned(),
            }),
        }
    }
}

/// Where a raised flag stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FlagState {
    /// Waiting: for its follow-up to be completed, or for someone to act (no rule).
    Raised,
    /// Its follow-up was completed, or its rules did all they do at once.
    Handled,
    /// The loop guard kept its rules from adding a follow-up or a hold.
    Suppressed,
}

impl FlagState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Raised => "raised",
            Self::Handled => "handled",
            Self::Suppressed => "suppressed",
        }
    }
}

impl std::fmt::Display for FlagState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for FlagState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "raised" => Ok(Self::Raised),
            "handled" => Ok(Self::Handled),
            "suppressed" => Ok(Self::Suppressed),
            _ => Err(format!("unknown flag state `{s}`")),
        }
    }
}

/// The flags a task exists because of, outermost first: its `flag:NAME` tags.
pub fn lineage_of(tags: &[String]) -> Vec<String> {
    tags.iter()
        .filter_map(|t| t.strip_prefix(FLAG_TAG))
        .map(str::to_owned)
        .collect()
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
    pub flags: &'a [Flag],
    /// The work the report discovered, in order.
    pub discovered: &'a [DiscoveredTask],
    /// The task's transitive dependents (only their pending ones are ever touched).
    pub dependents: &'a [Dependent],
    /// The flags the task exists because of ([`lineage_of`] its tags): a follow-up's
    /// completion handles its flag, and the loop guard reads it.
    pub lineage: &'a [String],
    /// Follow-up chains end at this depth (`[flags] max_depth`).
    pub max_depth: u32,
}

/// One thing applying a report does, in the order [`effects`] lists them.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// `task`, a follow-up, is complete: the flags it follows up are handled.
    Handled { task: TaskId },
    /// Record that `task` raised `flag`, in `state` (a `flag.raised` event); the effects that
    /// follow, up to the next record, are its rules'.
    RecordFlag {
        task: TaskId,
        flag: String,
        detail: String,
        state: FlagState,
        /// What the rules did, or why nothing happened.
        note: String,
    },
    /// No rule handles `flag`: nothing happens besides the record.
    Unhandled { task: TaskId, flag: String },
    /// The loop guard kept a rule of `flag` from adding a follow-up or a hold.
    Suppressed {
        task: TaskId,
        flag: String,
        reason: String,
    },
    /// Create `task`, linked from `from` by a `discovered-from` edge, as the follow-up of the
    /// flag recorded last. With `hold`, then add a hold on the new task for that reason:
    /// nothing else starts until it is done.
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
            Self::RecordFlag { .. }
            | Self::Unhandled { .. }
            | Self::Suppressed { .. }
            | Self::Handled { .. }
            | Self::Pause { .. }
            | Self::Stop { .. } => false,
        }
    }
}

/// The effects of a completed task's report under `rules`, in order: the flags it handles
/// (when it is a follow-up); for each flag its record, then what each matching rule does; then
/// the discovered tasks.
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
    if !report.lineage.is_empty() {
        out.push(Effect::Handled { task: from });
    }
    for flag in report.flags {
        let name = &flag.name;
        let mut fx = Vec::new();
        for rule in rules.iter().filter(|r| &r.flag == name) {
            fx.push(rule_effect(report, rule, name, &render_title)?);
        }
        let (state, note) = state_of(&fx);
        out.push(Effect::RecordFlag {
            task: from,
            flag: name.clone(),
            detail: flag.detail.clone(),
            state,
            note,
        });
        if fx.is_empty() {
            out.push(Effect::Unhandled {
                task: from,
                flag: name.clone(),
            });
        }
        out.extend(fx);
    }
    let inherited = lineage_tags(report.lineage);
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
                tags: inherited.clone(),
                ..Default::default()
            },
            blocks,
        });
    }
    Ok(out)
}

fn lineage_tags(lineage: &[String]) -> Vec<String> {
    lineage.iter().map(|f| format!("{FLAG_TAG}{f}")).collect()
}

/// A flag's state once its rules' effects `fx` are applied, and what they did.
fn state_of(fx: &[Effect]) -> (FlagState, String) {
    if fx.is_empty() {
        return (FlagState::Raised, "no rule for this flag".into());
    }
    if fx.iter().any(|e| matches!(e, Effect::FollowUp { .. })) {
        return (FlagState::Raised, "waiting for its follow-up".into());
    }
    let mut notes = Vec::new();
    let mut acted = false;
    for e in fx {
        match e {
            Effect::Suppressed { reason, .. } if !notes.contains(reason) => {
                notes.push(reason.clone());
            }
            Effect::RaisePriority {
                priority, tasks, ..
            } => {
                acted = true;
                notes.push(format!(
                    "{} dependent task(s) raised to {priority}",
                    tasks.len()
                ));
            }
            Effect::Pause { .. } => {
                acted = true;
                notes.push("everything paused until the hold is released".into());
            }
            Effect::Stop { .. } => {
                acted = true;
                notes.push("the run stopped".into());
            }
            _ => {}
        }
    }
    let state = if acted {
        FlagState::Handled
    } else {
        FlagState::Suppressed
    };
    (state, notes.join("; "))
}

/// Why the loop guard keeps a flag raised by this report from spawning anything, if it does.
fn guard(report: &Completion<'_>, flag: &str) -> Option<String> {
    if report.lineage.iter().any(|f| f == flag) {
        return Some(format!(
            "not followed up: {} exists because of {flag} already",
            report.task
        ));
    }
    let depth = u32::try_from(report.lineage.len()).unwrap_or(u32::MAX);
    (depth >= report.max_depth).then(|| {
        format!(
            "not followed up: {} is {depth} follow-up(s) deep, the limit ([flags] max_depth = {})",
            report.task, report.max_depth
        )
    })
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
    let spawns = matches!(rule.action, FlagAction::AddTask | FlagAction::Pause);
    if spawns && let Some(why) = guard(report, &flag) {
        return Ok(Effect::Suppressed {
            task: from,
            flag,
            reason: why,
        });
    }
    Ok(match rule.action {
        FlagAction::AddTask => {
            let template = rule.title.as_deref().unwrap_or(DEFAULT_FOLLOW_UP_TITLE);
            let title = render_title(template, &flag)?;
            let mut tags = lineage_tags(report.lineage);
            tags.push(format!("{FLAG_TAG}{flag}"));
            Effect::FollowUp {
                from,
                task: NewTask {
                    title,
                    role: rule.role.clone(),
                    description: format!("Follow-up of flag {flag} raised by task {from}."),
                    effort: 1,
                    priority: Priority::High,
                    tags,
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
pub fn changes_plan(flags: &[Flag], discovered: &[DiscoveredTask], rules: &[FlagRule]) -> bool {
    discovered.iter().any(|d| d.blocks_dependents)
        || flags.iter().any(|f| {
            rules.iter().any(|r| {
                r.flag == f.name
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
        flags: &'a [Flag],
        discovered: &'a [DiscoveredTask],
        dependents: &'a [Dependent],
    ) -> Completion<'a> {
        Completion {
            task: id(1),
            title: "parse input",
            flags,
            discovered,
            dependents,
            lineage: &[],
            max_depth: DEFAULT_MAX_DEPTH,
        }
    }

    fn flags(names: &[&str]) -> Vec<Flag> {
        names.iter().map(|n| Flag::parse(n)).collect()
    }

    fn record(flag: &str, state: FlagState, note: &str) -> Effect {
        Effect::RecordFlag {
            task: id(1),
            flag: flag.into(),
            detail: String::new(),
            state,
            note: note.into(),
        }
    }

    #[test]
    fn a_flag_without_a_rule_is_recorded_and_nothing_else() {
        let flags = flags(&["ODD"]);
        let fx = effects(&completion(&flags, &[], &[]), &[], title).unwrap();
        assert_eq!(
            fx,
            vec![
                record("ODD", FlagState::Raised, "no rule for this flag"),
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
        let flags = flags(&["DB"]);
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
        assert_eq!(task.tags, vec!["flag:DB".to_owned()]);
        assert_eq!(
            hold.as_deref(),
            Some(&*format!("flag DB raised by {}", id(1)))
        );
        assert!(fx[1].changes_graph());
        assert!(matches!(
            &fx[0],
            Effect::RecordFlag { state: FlagState::Raised, note, .. } if note == "waiting for its follow-up"
        ));
    }

    #[test]
    fn a_flag_raised_again_by_its_own_follow_up_spawns_nothing() {
        let flags = flags(&["DB: the index is gone", "PERF"]);
        let mut add = rule("DB", FlagAction::AddTask);
        add.pause = true;
        let rules = [
            add,
            rule("DB", FlagAction::Pause),
            rule("PERF", FlagAction::AddTask),
        ];
        let lineage = ["DB".to_owned()];
        let report = Completion {
            lineage: &lineage,
            ..completion(&flags, &[], &[])
        };
        let fx = effects(&report, &rules, title).unwrap();
        // The follow-up's completion handles its flag first.
        assert_eq!(fx[0], Effect::Handled { task: id(1) });
        let Effect::RecordFlag {
            flag,
            detail,
            state,
            note,
            ..
        } = &fx[1]
        else {
            panic!("{fx:?}")
        };
        assert_eq!(
            (flag.as_str(), detail.as_str()),
            ("DB", "the index is gone")
        );
        assert_eq!(*state, FlagState::Suppressed);
        assert!(note.contains("exists because of DB already"), "{note}");
        assert!(matches!(&fx[2], Effect::Suppressed { flag, .. } if flag == "DB"));
        assert!(matches!(&fx[3], Effect::Suppressed { flag, .. } if flag == "DB"));
        // Another flag is followed up, its task carrying the whole chain.
        let Effect::FollowUp { task, .. } = &fx[5] else {
            panic!("{fx:?}")
        };
        assert_eq!(
            task.tags,
            vec!["flag:DB".to_owned(), "flag:PERF".to_owned()]
        );
        assert!(!fx.iter().any(|e| matches!(e, Effect::Pause { .. })));
    }

    #[test]
    fn follow_up_chains_end_at_the_depth_limit() {
        let flags = flags(&["C"]);
        let lineage = ["A".to_owned(), "B".to_owned()];
        let rules = [rule("C", FlagAction::AddTask), rule("C", FlagAction::Stop)];
        let report = Completion {
            lineage: &lineage,
            max_depth: 2,
            ..completion(&flags, &[], &[])
        };
        let fx = effects(&report, &rules, title).unwrap();
        let Effect::RecordFlag { state, note, .. } = &fx[1] else {
            panic!("{fx:?}")
        };
        // A stop still stops: only what spawns is held back.
        assert_eq!(*state, FlagState::Handled);
        assert!(note.contains("2 follow-up(s) deep"), "{note}");
        assert!(matches!(&fx[2], Effect::Suppressed { .. }));
        assert!(matches!(&fx[3], Effect::Stop { .. }));
        // One level less deep, the follow-up is added.
        let report = Completion {
            max_depth: 3,
            ..report
        };
        let fx = effects(&report, &rules, title).unwrap();
        assert!(matches!(&fx[2], Effect::FollowUp { .. }), "{fx:?}");
    }

    #[test]
    fn flags_read_as_names_with_an_optional_detail() {
        assert_eq!(
            Flag::parse(" DB_SLOW: 15 queries: per cart "),
            Flag {
                name: "DB_SLOW".into(),
                detail: "15 queries: per cart".into()
            }
        );
        assert_eq!(Flag::parse("PLAIN").detail, "");
        // No flag name before the colon: all of it is the name, which the check refuses.
        assert_eq!(Flag::parse("a b: c").name, "a b: c");
        assert!(check_name("a b: c").is_err());
        let v: Vec<Flag> =
            serde_json::from_str(r#"["X", "Y: why", {"flag": "Z", "detail": "found"}]"#).unwrap();
        assert_eq!(v[1].detail, "why");
        assert_eq!((v[2].name.as_str(), v[2].detail.as_str()), ("Z", "found"));
        let bad = serde_json::from_str::<Vec<Flag>>(r#"[{"flag": "Z", "extra": 1}]"#);
        assert!(bad.unwrap_err().to_string().contains("a flag is a string"));
    }

    #[test]
    fn rules_are_checked_field_by_action() {
        let mut r = rule("X", FlagAction::Stop);
        assert_eq!(r.check(), Ok(()));
        r.role = Some("reviewer".into());
        assert!(
            r.check()
                .unwrap_err()
                .contains("`role` applies to action `add-task`")
        );
        let mut r = rule("X", FlagAction::RaisePriority);
        r.priority = Some("urgent".into());
        assert!(r.check().unwrap_err().contains("priority"));
        r.priority = Some("critical".into());
        assert_eq!(r.check(), Ok(()));
        assert!(rule("A B", FlagAction::Stop).check().is_err());
        assert_eq!(
            lineage_of(&["x".into(), "flag:A".into(), "flag:B".into()]),
            vec!["A".to_owned(), "B".to_owned()]
        );
    }

    #[test]
    fn a_title_that_does_not_render_is_an_error() {
        let flags = flags(&["DB"]);
        let mut r = rule("DB", FlagAction::AddTask);
        r.title = Some("bad {{".into());
        let err = effects(&completion(&flags, &[], &[]), &[r], title).unwrap_err();
        assert_eq!(err, "cannot render `bad {{`");
    }

    #[test]
    fn raise_priority_touches_only_pending_dependents_below_the_new_priority() {
        let flags = flags(&["HOT"]);
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
        let flags = flags(&["STOP", "WAIT"]);
        let rules = [
            rule("WAIT", FlagAction::Pause),
            rule("STOP", FlagAction::Stop),
        ];
        let fx = effects(&completion(&flags, &[], &[]), &rules, title).unwrap();
        let reason = |f: &str| format!("flag {f} raised by {}", id(1));
        assert_eq!(
            fx,
            vec![
                record("STOP", FlagState::Handled, "the run stopped"),
                Effect::Stop {
                    from: id(1),
                    flag: "STOP".into(),
                    reason: reason("STOP")
                },
                record(
                    "WAIT",
                    FlagState::Handled,
                    "everything paused until the hold is released"
                ),
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
        let flags = flags(&["X"]);
        let rules = [rule("X", FlagAction::Stop), rule("X", FlagAction::Pause)];
        let fx = effects(&completion(&flags, &[], &[]), &rules, title).unwrap();
        assert!(matches!(fx[1], Effect::Stop { .. }));
        assert!(matches!(fx[2], Effect::Pause { .. }));
    }

    #[test]
    fn discovered_work_comes_last_and_may_block_pending_dependents() {
        let flags = flags(&["ODD"]);
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
        assert!(task.tags.is_empty());
        assert_eq!(blocks, &vec![id(2)]);
        assert!(matches!(&fx[3], Effect::Discover { blocks, .. } if blocks.is_empty()));
        assert!(fx[3].changes_graph());
    }

    #[test]
    fn only_rules_that_hold_stop_or_reorder_change_the_plan() {
        let flags = flags(&["X"]);
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
