//! Learned patterns: what finished work says about the estimates. From the attempt ledger, the
//! tasks' effort, role, plan and hierarchy and the flags they raised, per role and per plan:
//! how long an effort unit actually took (median and spread), how often the first attempt
//! succeeded, how many retries and flags there were, and how work was decomposed.
//!
//! Plain data in, plain data out; the caller reads the history.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::ids::TaskId;
use crate::time::Timestamp;

/// A role or plan needs this many timed completions before its durations count as calibrated.
pub const MIN_SAMPLES: u32 = 3;

/// What the patterns need of a task.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskFacts {
    pub id: TaskId,
    pub parent: Option<TaskId>,
    pub role: Option<String>,
    /// The plan it came from (by the plan's recorded keys), if any.
    pub plan: Option<String>,
    /// The workflow template it came from (its `template:NAME` tag), if any.
    pub template: Option<String>,
    pub effort: u32,
}

/// One attempt of the ledger.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptFacts {
    pub task: TaskId,
    /// 1 for the first attempt.
    pub number: u32,
    pub started_at: Timestamp,
    /// `None` while it runs (then it is left out).
    pub ended_at: Option<Timestamp>,
    pub succeeded: bool,
}

/// The history the patterns are computed from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    pub tasks: Vec<TaskFacts>,
    pub attempts: Vec<AttemptFacts>,
    /// The task that raised each flag, one entry per flag.
    pub flags: Vec<TaskId>,
}

/// Median and spread of a set of values (nearest-rank quartiles).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Spread {
    pub samples: u32,
    pub median: i64,
    /// 25th percentile.
    pub low: i64,
    /// 75th percentile.
    pub high: i64,
    pub min: i64,
    pub max: i64,
}

impl Spread {
    /// `None` for no values.
    pub fn of(values: &[i64]) -> Option<Spread> {
        if values.is_empty() {
            return None;
        }
        let mut v = values.to_vec();
        v.sort_unstable();
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2
        };
        // Nearest rank: the smallest value with at least q of the values at or below it.
        let rank = |num: usize| v[(num * n).div_ceil(4).max(1) - 1];
        Some(Spread {
            samples: n as u32,
            median,
            low: rank(1),
            high: rank(3),
            min: v[0],
            max: v[n - 1],
        })
    }
}

/// How work was broken down: children per container, depth of the hierarchy.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Shape {
    /// Tasks with children.
    pub containers: u32,
    /// Children per container.
    pub children: Option<Spread>,
    /// Levels from a top-level task down to its deepest task (1: no children).
    pub depth: u32,
}

/// The patterns of one group of tasks (a role, a plan, or all of them).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pattern {
    pub name: String,
    /// Tasks with at least one finished attempt.
    pub tasks: u32,
    /// Finished attempts.
    pub attempts: u32,
    /// Milliseconds per effort unit of the attempts that succeeded (effort 0 counts as 1).
    pub ms_per_effort: Option<Spread>,
    /// Tasks whose first attempt succeeded.
    pub first_try: u32,
    /// `first_try / tasks`.
    pub first_try_rate: Option<f64>,
    /// Attempts after a task's first.
    pub retries: u32,
    /// Flags raised by these tasks.
    pub flags: u32,
    pub shape: Shape,
}

impl Pattern {
    /// The median milliseconds per effort unit, when there are [`MIN_SAMPLES`] of them.
    pub fn calibrated(&self) -> Option<i64> {
        self.ms_per_effort
            .filter(|s| s.samples >= MIN_SAMPLES)
            .map(|s| s.median)
    }
}

/// Patterns overall, per role and per plan (names sorted; tasks without a role or plan appear
/// only overall).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Patterns {
    pub overall: Pattern,
    pub roles: Vec<Pattern>,
    pub plans: Vec<Pattern>,
    /// Per workflow template, over every plan made from it.
    pub templates: Vec<Pattern>,
}

impl Patterns {
    /// The role's pattern, if it has history.
    pub fn role(&self, name: &str) -> Option<&Pattern> {
        self.roles.iter().find(|p| p.name == name)
    }

    /// A few lines for a prompt: per calibrated role, time per effort unit and first-try rate.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        for p in std::iter::once(&self.overall).chain(&self.roles) {
            let Some(ms) = p.calibrated() else { continue };
            let rate = p
                .first_try_rate
                .map_or(String::new(), |r| format!(", {:.0}% first try", r * 100.0));
            out.push_str(&format!(
                "- {}: one effort unit took {} (median of {}){rate}, {} retries, {} flags\n",
                p.name,
                crate::time::Millis(ms).human(),
                p.ms_per_effort.map_or(0, |s| s.samples),
                p.retries,
                p.flags,
            ));
        }
        if let Some(s) = &self.overall.shape.children {
            out.push_str(&format!(
                "- decomposition: {} children per container (median), {} levels deep at most\n",
                s.median, self.overall.shape.depth
            ));
        }
        out
    }
}

/// Where the expected time of a role's effort unit came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Basis {
    /// The role's own median ([`MIN_SAMPLES`] or more timed completions).
    Calibrated,
    /// Too little history of its own: the project's median.
    Project,
}

/// What [`Patterns::calibrate`] used for one role (`(none)` for tasks without one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoleTime {
    pub role: String,
    pub ms_per_effort: i64,
    pub basis: Basis,
}

impl Patterns {
    /// Turns the tasks' effort into expected seconds: effort × the role's median time per
    /// unit, or the project's median for roles with too little history (rounded up, at least
    /// one second for any effort). `None`, and nothing changed, when the project itself has
    /// too little history: then effort units stay what the planner weighs.
    pub fn calibrate(&self, tasks: &mut [crate::graph::GraphTask]) -> Option<Vec<RoleTime>> {
        let project = self.overall.calibrated()?;
        let mut used: BTreeMap<String, RoleTime> = BTreeMap::new();
        for t in tasks {
            let role = t.role.as_deref().unwrap_or("(none)");
            let rt = used.entry(role.to_owned()).or_insert_with(|| {
                match t.role.as_deref().and_then(|r| self.role(r)?.calibrated()) {
                    Some(ms) => RoleTime {
                        role: role.to_owned(),
                        ms_per_effort: ms,
                        basis: Basis::Calibrated,
                    },
                    None => RoleTime {
                        role: role.to_owned(),
                        ms_per_effort: project,
                        basis: Basis::Project,
                    },
                }
            });
            if t.effort > 0 {
                let ms = i64::from(t.effort) * rt.ms_per_effort;
                t.effort = u32::try_from((ms + 999) / 1000).unwrap_or(u32::MAX).max(1);
            }
        }
        Some(used.into_values().collect())
    }
}

/// Computes the patterns of `history`.
pub fn compute(history: &History) -> Patterns {
    let by_id: HashMap<TaskId, &TaskFacts> = history.tasks.iter().map(|t| (t.id, t)).collect();
    let mut attempts: HashMap<TaskId, Vec<&AttemptFacts>> = HashMap::new();
    for a in history.attempts.iter().filter(|a| a.ended_at.is_some()) {
        if by_id.contains_key(&a.task) {
            attempts.entry(a.task).or_default().push(a);
        }
    }
    let mut flags: HashMap<TaskId, u32> = HashMap::new();
    for t in &history.flags {
        *flags.entry(*t).or_default() += 1;
    }
    let mut children: HashMap<TaskId, u32> = HashMap::new();
    for t in &history.tasks {
        if let Some(p) = t.parent.filter(|p| by_id.contains_key(p)) {
            *children.entry(p).or_default() += 1;
        }
    }
    let depth = depths(&history.tasks, &by_id);
    let facts = Facts {
        attempts: &attempts,
        flags: &flags,
        children: &children,
        depth: &depth,
    };
    let mut roles: BTreeMap<&str, Vec<&TaskFacts>> = BTreeMap::new();
    let mut plans: BTreeMap<&str, Vec<&TaskFacts>> = BTreeMap::new();
    let mut templates: BTreeMap<&str, Vec<&TaskFacts>> = BTreeMap::new();
    for t in &history.tasks {
        if let Some(n) = &t.template {
            templates.entry(n).or_default().push(t);
        }
        if let Some(r) = &t.role {
            roles.entry(r).or_default().push(t);
        }
        if let Some(p) = &t.plan {
            plans.entry(p).or_default().push(t);
        }
    }
    let all: Vec<&TaskFacts> = history.tasks.iter().collect();
    Patterns {
        overall: facts.pattern("all", &all),
        roles: roles.iter().map(|(n, ts)| facts.pattern(n, ts)).collect(),
        plans: plans.iter().map(|(n, ts)| facts.pattern(n, ts)).collect(),
        templates: templates
            .iter()
            .map(|(n, ts)| facts.pattern(n, ts))
            .collect(),
    }
}

/// Per task: levels from it down to its deepest descendant (1: a leaf). Without recursion.
fn depths(tasks: &[TaskFacts], by_id: &HashMap<TaskId, &TaskFacts>) -> HashMap<TaskId, u32> {
    let mut depth: HashMap<TaskId, u32> = tasks.iter().map(|t| (t.id, 1)).collect();
    for t in tasks {
        // Walk up from every task, raising each ancestor's height; a parent loop stops the walk.
        let (mut cur, mut h) = (t.parent, 1u32);
        let mut steps = 0usize;
        while let Some(p) = cur.filter(|p| by_id.contains_key(p)) {
            h += 1;
            steps += 1;
            let d = depth.entry(p).or_insert(1);
            if *d >= h || steps > tasks.len() {
                break;
            }
            *d = h;
            cur = by_id[&p].parent;
        }
    }
    depth
}

/// What every group's pattern is computed from.
struct Facts<'a> {
    attempts: &'a HashMap<TaskId, Vec<&'a AttemptFacts>>,
    flags: &'a HashMap<TaskId, u32>,
    children: &'a HashMap<TaskId, u32>,
    depth: &'a HashMap<TaskId, u32>,
}

impl Facts<'_> {
    fn pattern(&self, name: &str, tasks: &[&TaskFacts]) -> Pattern {
        let mut p = Pattern {
            name: name.to_owned(),
            tasks: 0,
            attempts: 0,
            ms_per_effort: None,
            first_try: 0,
            first_try_rate: None,
            retries: 0,
            flags: 0,
            shape: Shape::default(),
        };
        let mut per_unit = Vec::new();
        let mut kids = Vec::new();
        for t in tasks {
            p.flags += self.flags.get(&t.id).copied().unwrap_or(0);
            if let Some(&n) = self.children.get(&t.id) {
                kids.push(i64::from(n));
            }
            p.shape.depth = p
                .shape
                .depth
                .max(self.depth.get(&t.id).copied().unwrap_or(1));
            let Some(list) = self.attempts.get(&t.id) else {
                continue;
            };
            p.tasks += 1;
            p.attempts += list.len() as u32;
            let first = list.iter().map(|a| a.number).min().unwrap_or(1);
            p.retries += list.iter().filter(|a| a.number > first).count() as u32;
            if list.iter().any(|a| a.number == first && a.succeeded) {
                p.first_try += 1;
            }
            for a in list.iter().filter(|a| a.succeeded) {
                if let Some(end) = a.ended_at {
                    per_unit.push(end.since(a.started_at).0.max(0) / i64::from(t.effort.max(1)));
                }
            }
        }
        p.ms_per_effort = Spread::of(&per_unit);
        p.first_try_rate = (p.tasks > 0).then(|| f64::from(p.first_try) / f64::from(p.tasks));
        p.shape.containers = kids.len() as u32;
        p.shape.children = Spread::of(&kids);
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u32) -> TaskId {
        TaskId::from_seq(n).unwrap()
    }

    fn task(
        n: u32,
        parent: Option<u32>,
        role: Option<&str>,
        plan: Option<&str>,
        effort: u32,
    ) -> TaskFacts {
        TaskFacts {
            id: id(n),
            parent: parent.map(id),
            role: role.map(str::to_owned),
            plan: plan.map(str::to_owned),
            template: None,
            effort,
        }
    }

    fn attempt(task: u32, number: u32, start: i64, end: i64, succeeded: bool) -> AttemptFacts {
        AttemptFacts {
            task: id(task),
            number,
            started_at: Timestamp(start),
            ended_at: Some(Timestamp(end)),
            succeeded,
        }
    }

    /// A container (1) of three implementer tasks and a tester task, plus a lone reviewer task.
    fn history() -> History {
        History {
            tasks: vec![
                task(1, None, None, Some("auth"), 0),
                task(2, Some(1), Some("implementer"), Some("auth"), 2),
                task(3, Some(1), Some("implementer"), Some("auth"), 1),
                task(4, Some(1), Some("implementer"), Some("auth"), 4),
                task(5, Some(1), Some("tester"), Some("auth"), 1),
                task(6, None, Some("reviewer"), None, 1),
            ],
            attempts: vec![
                // 2: 20 s for 2 units → 10 s per unit, first try.
                attempt(2, 1, 0, 20_000, true),
                // 3: fails once, then 30 s for 1 unit.
                attempt(3, 1, 0, 5_000, false),
                attempt(3, 2, 10_000, 40_000, true),
                // 4: 80 s for 4 units → 20 s per unit, first try.
                attempt(4, 1, 0, 80_000, true),
                // 5: two failures, still running the third (left out).
                attempt(5, 1, 0, 1_000, false),
                attempt(5, 2, 2_000, 3_000, false),
                AttemptFacts {
                    task: id(5),
                    number: 3,
                    started_at: Timestamp(4_000),
                    ended_at: None,
                    succeeded: false,
                },
            ],
            flags: vec![id(3), id(5), id(5)],
        }
    }

    #[test]
    fn spread_uses_nearest_rank_quartiles_and_the_middle_mean() {
        assert_eq!(Spread::of(&[]), None);
        let s = Spread::of(&[30, 10, 20, 40]).unwrap();
        assert_eq!(
            (s.samples, s.median, s.low, s.high, s.min, s.max),
            (4, 25, 10, 30, 10, 40)
        );
        let s = Spread::of(&[5, 1, 3]).unwrap();
        assert_eq!((s.median, s.low, s.high), (3, 1, 5));
    }

    #[test]
    fn a_role_s_durations_retries_and_first_try_rate_come_from_its_attempts() {
        let p = compute(&history());
        let imp = p.role("implementer").unwrap();
        assert_eq!((imp.tasks, imp.attempts, imp.retries), (3, 4, 1));
        assert_eq!(imp.first_try, 2);
        assert_eq!(imp.first_try_rate, Some(2.0 / 3.0));
        let s = imp.ms_per_effort.unwrap();
        assert_eq!(
            (s.samples, s.median, s.low, s.high),
            (3, 20_000, 10_000, 30_000)
        );
        assert_eq!(imp.calibrated(), Some(20_000));
        assert_eq!(imp.flags, 1);

        let tester = p.role("tester").unwrap();
        assert_eq!((tester.tasks, tester.attempts, tester.retries), (1, 2, 1));
        assert_eq!((tester.first_try, tester.flags), (0, 2));
        assert_eq!(tester.ms_per_effort, None);
        assert_eq!(tester.calibrated(), None);

        // No attempts at all: counted by name, nothing measured.
        let rev = p.role("reviewer").unwrap();
        assert_eq!((rev.tasks, rev.first_try_rate), (0, None));
        let names: Vec<&str> = p.roles.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["implementer", "reviewer", "tester"]);
    }

    #[test]
    fn plans_and_the_whole_project_have_their_decomposition_shape() {
        let p = compute(&history());
        assert_eq!(p.plans.len(), 1);
        let auth = &p.plans[0];
        assert_eq!((auth.name.as_str(), auth.tasks, auth.flags), ("auth", 4, 3));
        assert_eq!(auth.shape.containers, 1);
        assert_eq!(auth.shape.children.unwrap().median, 4);
        assert_eq!(auth.shape.depth, 2);
        let all = &p.overall;
        assert_eq!((all.tasks, all.attempts, all.retries), (4, 6, 2));
        assert_eq!(all.ms_per_effort.unwrap().median, 20_000);
        assert_eq!(all.shape.depth, 2);
    }

    #[test]
    fn tasks_made_from_a_template_have_its_pattern_across_plans() {
        let mut h = history();
        for t in &mut h.tasks {
            t.template = Some("complex".into());
        }
        let p = compute(&h);
        assert_eq!(p.templates.len(), 1);
        let t = &p.templates[0];
        assert_eq!((t.name.as_str(), t.tasks, t.attempts), ("complex", 4, 6));
        assert_eq!(t.ms_per_effort.unwrap().median, 20_000);
        assert!(compute(&history()).templates.is_empty());
    }

    #[test]
    fn the_summary_names_calibrated_roles_only() {
        let s = compute(&history()).summary();
        assert!(s.contains("- implementer: one effort unit took 20s (median of 3), 67% first try, 1 retries, 1 flags"), "{s}");
        assert!(!s.contains("tester"), "{s}");
        assert!(s.contains("4 children per container"), "{s}");
    }

    #[test]
    fn calibration_weighs_effort_by_each_role_s_median_or_the_project_s() {
        let p = compute(&history());
        let g = |n: u32, role: Option<&str>, effort: u32| crate::graph::GraphTask {
            id: id(n),
            key: None,
            parent: None,
            title: String::new(),
            status: crate::task::Status::Pending,
            role: role.map(str::to_owned),
            effort,
            priority: crate::task::Priority::Normal,
            footprint: Vec::new(),
        };
        let mut tasks = vec![
            g(7, Some("implementer"), 3),
            g(8, Some("tester"), 2),
            g(9, None, 0),
        ];
        let used = p.calibrate(&mut tasks).unwrap();
        let efforts: Vec<u32> = tasks.iter().map(|t| t.effort).collect();
        // 3 × 20 s, 2 × the project's 20 s, and no effort stays none.
        assert_eq!(efforts, [60, 40, 0]);
        let basis: Vec<(&str, Basis)> = used.iter().map(|r| (r.role.as_str(), r.basis)).collect();
        assert_eq!(
            basis,
            [
                ("(none)", Basis::Project),
                ("implementer", Basis::Calibrated),
                ("tester", Basis::Project)
            ]
        );
        // Too little history: nothing is converted.
        let mut tasks = vec![g(7, Some("implementer"), 3)];
        assert_eq!(compute(&History::default()).calibrate(&mut tasks), None);
        assert_eq!(tasks[0].effort, 3);
    }

    #[test]
    fn depth_follows_the_deepest_branch() {
        let h = History {
            tasks: vec![
                task(1, None, None, None, 1),
                task(2, Some(1), None, None, 1),
                task(3, Some(2), None, None, 1),
                task(4, Some(1), None, None, 1),
            ],
            ..Default::default()
        };
        let p = compute(&h);
        assert_eq!(p.overall.shape.depth, 3);
        assert_eq!(p.overall.shape.containers, 2);
    }
}
