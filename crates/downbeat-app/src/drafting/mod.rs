//! From a goal to a plan: an agent (any agent CLI profile, an OpenAI-compatible endpoint, any
//! configured executor) drafts a plan, and Downbeat checks it the way `plan apply` would. The
//! problems of an answer go back to the agent for another round, a bounded number of times;
//! what passes is a [`Draft`], shown (waves, critical path, makespan) before anything is
//! written, then written to a file ([`write`]) or applied through the living-plan path
//! ([`apply`]). [`expand`] does the same for one stored task: its subtasks, placed under it.
//!
//! Each call is recorded ([`ledger`]): a `plan.drafted` event with its tokens and cost, and the
//! project's drafting totals, which `spend` shows. A call's prompt and answer stay in
//! `.downbeat/drafts/N/ROUND/`.
//!
//! Must never: write a plan that did not pass every check, change a stored task (a draft whose
//! keys or name are already taken is sent back), let the agent edit files (agents answer
//! read-only), or retry an agent that could not answer.

mod answer;
mod context;
pub mod ledger;
mod prompt;
pub mod types;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use downbeat_core::ids::TaskId;
use downbeat_core::plan::{self, PlanFile, PlanFormat};
use downbeat_core::plan_diff::{editable, record_key};
use downbeat_core::task::{EdgeKind, Task};
use downbeat_engine::executor::{AttemptSpec, Executor, ExecutorSpec, OutcomeKind};
use downbeat_store::TaskFilter;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Kind};
use crate::plan_preview::preview;
use crate::plans::{self, ApplyRequest};
use crate::project::Project;
use crate::runs::{agent_env, build_executor, preflight::check_requirement, spec_named};

use answer::Reading;
use ledger::Call;
use prompt::{Facts, Subject, TaskBrief};
pub use types::{
    Asking, DEFAULT_ROUNDS, DEFAULT_TIMEOUT, Document, Draft, DraftRequest, ExpandRequest, Round,
    Verdict,
};

/// Asks for a plan that reaches `req.goal` (see the module documentation).
pub async fn draft(
    p: &Project,
    req: &DraftRequest,
    cancel: CancellationToken,
) -> Result<Draft, Error> {
    if req.goal.trim().is_empty() {
        return Err(Error::invalid(
            "the goal is empty: say what the plan is for",
        ));
    }
    let asker = asker(p, &req.asking).await?;
    let facts = gather(p).await?;
    let learned = crate::patterns::summary(p).await?;
    let first = prompt::first(&Facts {
        subject: Subject::Goal(&req.goal),
        document: req.document.as_ref(),
        roles: roles(p),
        layout: &facts.0,
        memory: &facts.1,
        patterns: &learned,
        format: req.asking.format,
    });
    let mode = Mode::Draft {
        goal: req.goal.clone(),
    };
    converse(p, &asker, &mode, first, &req.asking, cancel).await
}

/// Asks for subtasks of one stored task, placed under it (see the module documentation).
pub async fn expand(
    p: &Project,
    req: &ExpandRequest,
    cancel: CancellationToken,
) -> Result<Draft, Error> {
    let id = p.store.resolve_task(&req.task).await?;
    let task = p.store.task(id).await?;
    expandable(p, &task).await?;
    let asker = asker(p, &req.asking).await?;
    let brief = brief(p, &task).await?;
    let facts = gather(p).await?;
    let learned = crate::patterns::summary(p).await?;
    let first = prompt::first(&Facts {
        subject: Subject::Expand {
            task: &brief,
            guidance: req.guidance.as_deref(),
        },
        document: None,
        roles: roles(p),
        layout: &facts.0,
        memory: &facts.1,
        patterns: &learned,
        format: req.asking.format,
    });
    let mode = Mode::Expand {
        task: id,
        reference: brief.reference.clone(),
    };
    converse(p, &asker, &mode, first, &req.asking, cancel).await
}

/// Writes a draft's plan to `path` (in the draft's format); an existing file is refused
/// unless `force`.
pub fn write(d: &Draft, path: &Path, force: bool) -> Result<(), Error> {
    crate::plans::write_text(path, d.format, &d.text, force)
}

/// Applies a draft through the living-plan path: recorded under its name, so the file written
/// with it can be edited and applied again.
pub async fn apply(p: &Project, d: &Draft) -> Result<plans::Outcome, Error> {
    let req = ApplyRequest {
        shown: d.name().to_owned(),
        fallback_name: None,
        dry_run: false,
        skip_conflicts: false,
        skip_option: "--skip-conflicts",
    };
    plans::apply(p, &d.plan, &req).await
}

/// What the checks of an answer depend on.
enum Mode {
    Draft { goal: String },
    Expand { task: TaskId, reference: String },
}

impl Mode {
    /// What the ledger's events are about.
    fn entity(&self) -> String {
        match self {
            Mode::Draft { .. } => "plan".into(),
            Mode::Expand { task, .. } => task.to_string(),
        }
    }
}

/// The executor a draft asks, with its name and the limit of one call.
struct Asker {
    name: String,
    executor: Arc<dyn Executor>,
    timeout: Duration,
}

/// Resolves the executor to ask and checks that it can run here.
async fn asker(p: &Project, a: &Asking) -> Result<Asker, Error> {
    if a.rounds == 0 {
        return Err(Error::invalid("--rounds must be at least 1"));
    }
    let name = a
        .executor
        .clone()
        .or_else(|| {
            p.config
                .roles
                .get("architect")
                .and_then(|r| r.executor.clone())
        })
        .or_else(|| p.config.run.executor.clone())
        .ok_or_else(|| {
            Error::invalid("no agent to draft with").with_hint(
                "name one with --agent NAME (claude, codex, gemini, aider, opencode) or --executor NAME, or set [roles.architect] executor or [run] executor in .downbeat/config.toml",
            )
        })?;
    let spec = spec_named(&p.config.executors, &name).map_err(Error::invalid)?;
    if matches!(spec, ExecutorSpec::Noop) {
        return Err(Error::invalid(format!(
            "executor `{name}` (noop) gives no answer, so it cannot draft a plan"
        ))
        .with_hint("name an agent with --agent NAME, or an http executor with --executor NAME"));
    }
    let executor = build_executor(&spec, &name, &BTreeMap::new(), &BTreeMap::new(), &p.secrets)
        .map_err(Error::invalid)?;
    if let Some(need) = executor.requirement() {
        let check = check_requirement(p, need).await;
        if let Some(problem) = check.problem {
            return Err(
                Error::invalid(format!("executor `{name}` cannot draft here: {problem}"))
                    .with_hint("`downbeat agents` shows which agent CLIs this machine has"),
            );
        }
    }
    let timeout = match a.timeout {
        Some(t) => t,
        None => match p.config.run.timeout.as_deref() {
            Some(t) => downbeat_engine::config::parse_duration(t)
                .map_err(|e| Error::invalid(format!("[run] timeout: {e}")))?,
            None => DEFAULT_TIMEOUT,
        },
    };
    Ok(Asker {
        name,
        executor,
        timeout,
    })
}

/// The repository's layout and memory files, read off the async threads.
async fn gather(p: &Project) -> Result<(context::Layout, Vec<context::Memory>), Error> {
    let root = p.root.clone();
    tokio::task::spawn_blocking(move || (context::layout(&root), context::memory(&root)))
        .await
        .map_err(|e| Error::internal(format!("reading the repository failed: {e}")))
}

fn roles(p: &Project) -> Vec<(String, String)> {
    p.roles
        .iter()
        .map(|r| (r.name.clone(), r.description.clone()))
        .collect()
}

/// A fresh directory for one draft's calls: `.downbeat/drafts/N`.
fn draft_dir(p: &Project) -> Result<PathBuf, Error> {
    let base = p.dir().join("drafts");
    std::fs::create_dir_all(&base)?;
    let mut n = std::fs::read_dir(&base)?.count() + 1;
    loop {
        let dir = base.join(n.to_string());
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => n += 1,
            Err(e) => return Err(e.into()),
        }
    }
}

/// The rounds of one draft: ask, check, send the problems back, until a plan passes or the
/// rounds are used up.
async fn converse(
    p: &Project,
    asker: &Asker,
    mode: &Mode,
    first: String,
    a: &Asking,
    cancel: CancellationToken,
) -> Result<Draft, Error> {
    let dir = draft_dir(p)?;
    let label = dir
        .file_name()
        .map(|n| format!("draft-{}", n.to_string_lossy()))
        .unwrap_or_else(|| "draft".into());
    let env = agent_env(p);
    let mut rounds: Vec<Round> = Vec::new();
    let mut last: Option<(String, Vec<String>)> = None;
    for n in 1..=a.rounds {
        let prompt = match &last {
            None => first.clone(),
            Some((answer, problems)) => prompt::again(&first, answer, problems, a.format),
        };
        let spec = AttemptSpec {
            task_id: label.clone(),
            title: match mode {
                Mode::Draft { goal } => goal.clone(),
                Mode::Expand { reference, .. } => format!("expand {reference}"),
            },
            role: Some("architect".into()),
            attempt: n,
            prompt,
            workspace: p.root.clone(),
            attempt_dir: dir.join(n.to_string()),
            timeout: Some(asker.timeout),
            env: env
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), v.clone()?)))
                .collect(),
            env_remove: env
                .iter()
                .filter(|(_, v)| v.is_none())
                .map(|(k, _)| k.clone())
                .collect(),
            previous: None,
        };
        let (outcome, text) = asker.executor.ask(&spec, cancel.clone()).await;
        let mut round = Round {
            number: n,
            verdict: Verdict::NotAPlan(String::new()),
            tokens_in: outcome.tokens.map_or(0, |t| t.prompt),
            tokens_out: outcome.tokens.map_or(0, |t| t.completion),
            cost_usd: outcome.detail.cost_usd,
            duration: outcome.duration,
            dir: spec.attempt_dir.clone(),
        };
        if let Some((verdict, err)) = failure(asker, outcome.kind, outcome.error.as_deref()) {
            record(p, asker, mode, &round, verdict, 0).await?;
            return Err(err);
        }
        let text = text.unwrap_or_default();
        let (verdict, done) = evaluate(p, mode, &text, a.format).await?;
        round.verdict = verdict;
        record(
            p,
            asker,
            mode,
            &round,
            round.verdict.name(),
            round.verdict.problems().len(),
        )
        .await?;
        rounds.push(round);
        if let Some(mut d) = done {
            d.executor = asker.name.clone();
            d.rounds = rounds;
            d.saved = dir.join(format!("plan.{}", prompt::tag(a.format)));
            std::fs::write(&d.saved, &d.text)?;
            return Ok(d);
        }
        let problems = rounds
            .last()
            .map(|r| r.verdict.problems())
            .unwrap_or_default();
        last = Some((text, problems));
    }
    Err(rejected(&rounds, &dir))
}

/// An outcome that is no answer: the ledger's verdict and the error to end with.
fn failure(asker: &Asker, kind: OutcomeKind, error: Option<&str>) -> Option<(&'static str, Error)> {
    let name = &asker.name;
    let why = error.unwrap_or("no reason given");
    match kind {
        OutcomeKind::Succeeded => None,
        OutcomeKind::Cancelled => Some((
            "cancelled",
            Error::new(Kind::Interrupted, "drafting was interrupted; nothing was written"),
        )),
        OutcomeKind::TimedOut => Some((
            "timed-out",
            Error::new(
                Kind::Unavailable,
                format!(
                    "`{name}` did not answer within {}; nothing was written",
                    shown_duration(asker.timeout)
                ),
            )
            .with_hint("allow it longer with --timeout, or ask for less"),
        )),
        OutcomeKind::Failed | OutcomeKind::Error => Some((
            "failed",
            Error::new(
                Kind::Unavailable,
                format!("`{name}` could not answer: {why}; nothing was written"),
            )
            .with_hint(
                "check that the endpoint is up or the agent is logged in (`downbeat agents check`), then try again",
            ),
        )),
    }
}

/// `90s`, `15m`, `2h`: a limit as people write it.
fn shown_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => format!("{}ms", d.as_millis()),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// Records one call in the ledger.
async fn record(
    p: &Project,
    asker: &Asker,
    mode: &Mode,
    round: &Round,
    verdict: &'static str,
    problems: usize,
) -> Result<(), Error> {
    let dir = round
        .dir
        .strip_prefix(&p.root)
        .unwrap_or(&round.dir)
        .display()
        .to_string();
    let call = Call {
        round: round.number,
        executor: asker.name.clone(),
        verdict,
        problems,
        tokens_in: round.tokens_in,
        tokens_out: round.tokens_out,
        cost_usd: round.cost_usd,
        duration_ms: u64::try_from(round.duration.as_millis()).unwrap_or(u64::MAX),
        dir,
    };
    ledger::record(p, &mode.entity(), &call).await
}

/// The end of a draft whose rounds are used up: the last problems, listed.
fn rejected(rounds: &[Round], dir: &Path) -> Error {
    let n = rounds.len();
    let last = rounds.last().map(|r| &r.verdict);
    let message = match last {
        Some(Verdict::NotAPlan(why)) => format!(
            "the agent's answer is not a plan after {n} round(s): {why}; nothing was written"
        ),
        _ => {
            let problems = last.map(Verdict::problems).unwrap_or_default();
            format!(
                "the draft did not pass the checks after {n} round(s); nothing was written. The last problems:\n{}",
                problems
                    .iter()
                    .map(|p| format!("  - {p}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        }
    };
    Error::new(Kind::Rejected, message).with_hint(format!(
        "the prompts and answers are in {}; try more --rounds, another agent, or a clearer goal",
        dir.display()
    ))
}

/// Checks one answer: a verdict, and the draft when it passed. Errors only when the project
/// itself cannot be read.
async fn evaluate(
    p: &Project,
    mode: &Mode,
    text: &str,
    format: PlanFormat,
) -> Result<(Verdict, Option<Draft>), Error> {
    let (agent_text, mut plan) = match answer::read(text, format) {
        Reading::NotAPlan(why) => return Ok((Verdict::NotAPlan(why), None)),
        Reading::Unparsable(e) => return Ok((Verdict::Invalid(vec![e]), None)),
        Reading::Plan(t, plan) => (t, plan),
    };
    let changed = place(p, mode, &mut plan).await?;
    // Every problem at once: the draft's own, then what the project's checks find.
    let mut problems = answer::problems(&plan);
    problems.extend(taken(p, mode, &plan).await?);
    let req = ApplyRequest {
        shown: "the draft".into(),
        fallback_name: None,
        dry_run: true,
        skip_conflicts: false,
        skip_option: "--skip-conflicts",
    };
    let outcome = match plans::apply(p, &plan, &req).await {
        Ok(o) => Some(o),
        Err(e) if matches!(e.kind, Kind::Invalid | Kind::Conflict | Kind::NotFound) => {
            problems.extend(answer::problems_of(&e.message));
            None
        }
        Err(e) => return Err(e),
    };
    let Some(outcome) = outcome.filter(|_| problems.is_empty()) else {
        return Ok((Verdict::Invalid(problems), None));
    };
    let validated = std::sync::Arc::unwrap_or_clone(outcome.prepared.validated);
    let preview = match preview(&validated, &p.plan_settings()) {
        Ok(v) => v,
        Err(e) => return Ok((Verdict::Invalid(vec![e.message]), None)),
    };
    let text = if changed {
        plan::to_text(&plan, format).map_err(Error::internal)?
    } else {
        agent_text
    };
    let notes = answer::notes(&plan);
    let expanded = match mode {
        Mode::Expand { task, .. } => Some(*task),
        Mode::Draft { .. } => None,
    };
    Ok((
        Verdict::Valid,
        Some(Draft {
            executor: String::new(),
            plan,
            text,
            format,
            validated,
            preview,
            rounds: Vec::new(),
            notes,
            expanded,
            saved: PathBuf::new(),
        }),
    ))
}

/// What Downbeat sets itself: a draft's name when the agent gave none; an expansion's name
/// and its subtasks' parent. Whether it changed the plan.
async fn place(p: &Project, mode: &Mode, plan: &mut PlanFile) -> Result<bool, Error> {
    match mode {
        Mode::Draft { goal } => {
            if plan.plan.name.is_some() {
                return Ok(false);
            }
            plan.plan.name = Some(free_name(p, &slug(goal)).await?);
            Ok(true)
        }
        Mode::Expand { task, reference } => {
            plan.plan.name = Some(expansion_name(*task));
            for t in &mut plan.tasks {
                if t.parent.is_none() {
                    t.parent = Some(reference.clone());
                }
            }
            Ok(true)
        }
    }
}

/// Problems of a plan that would touch what the project has: keys already used, a name
/// already recorded, the expanded task inside the plan.
async fn taken(p: &Project, mode: &Mode, plan: &PlanFile) -> Result<Vec<String>, Error> {
    let mut out = Vec::new();
    let keys: Vec<String> = plan.tasks.iter().filter_map(|t| t.key.clone()).collect();
    let mut used: Vec<String> = p.store.keys_in_use(&keys).await?.into_iter().collect();
    used.sort();
    if let Mode::Expand { reference, .. } = mode
        && keys.contains(reference)
    {
        out.push(format!(
            "`{reference}` is the task being split: list only its subtasks"
        ));
        used.retain(|k| k != reference);
    }
    for k in used {
        out.push(format!(
            "task key `{k}` is already used by a task of the project; choose another key"
        ));
    }
    if let (Mode::Draft { .. }, Some(name)) = (mode, &plan.plan.name)
        && p.store.meta_get(&record_key(name)).await?.is_some()
    {
        out.push(format!(
            "a plan named `{name}` was applied in this project before; give this one another `[plan] name`"
        ));
    }
    Ok(out)
}

/// The plan name of an expansion of `task`.
fn expansion_name(task: TaskId) -> String {
    format!("expand-{task}")
}

/// A plan name made of a goal's first words.
fn slug(goal: &str) -> String {
    let mut s = String::new();
    for word in goal
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        if s.len() + word.len() > 40 {
            break;
        }
        if !s.is_empty() {
            s.push('-');
        }
        s.push_str(&word.to_ascii_lowercase());
    }
    if s.is_empty() { "draft".into() } else { s }
}

/// `base`, or `base-2`, `base-3`, … : the first name no plan of the project was applied under.
async fn free_name(p: &Project, base: &str) -> Result<String, Error> {
    let mut name = base.to_owned();
    let mut n = 1;
    while p.store.meta_get(&record_key(&name)).await?.is_some() {
        n += 1;
        name = format!("{base}-{n}");
    }
    Ok(name)
}

/// Refuses a task that cannot be split: running or finished, already a container, or split
/// before.
async fn expandable(p: &Project, task: &Task) -> Result<(), Error> {
    let id = task.id;
    if !editable(task.status) {
        return Err(Error::conflict(format!(
            "task {id} is {}; only a pending, blocked or failed task can be split into subtasks",
            task.status
        ))
        .with_hint(format!(
            "`downbeat reopen {id}` puts a finished task back to pending"
        )));
    }
    let children = p
        .store
        .tasks(&TaskFilter {
            parent: Some(id),
            include_archived: true,
            limit: Some(1),
            ..TaskFilter::default()
        })
        .await?;
    if !children.is_empty() {
        return Err(Error::conflict(format!(
            "task {id} has subtasks already; split one of them, or add to it with `downbeat add --parent {id}`"
        )));
    }
    if p.store
        .meta_get(&record_key(&expansion_name(id)))
        .await?
        .is_some()
    {
        return Err(Error::conflict(format!(
            "task {id} was split before (plan `{}`); apply that plan's file again to change its subtasks",
            expansion_name(id)
        )));
    }
    Ok(())
}

/// The task to split as the prompt shows it: its fields, the tasks containing it, and what it
/// waits on.
async fn brief(p: &Project, task: &Task) -> Result<TaskBrief, Error> {
    let reference = |t: &Task| t.key.clone().unwrap_or_else(|| t.id.to_string());
    let mut ancestors = Vec::new();
    let mut up = task.parent;
    while let Some(id) = up {
        let t = p.store.task(id).await?;
        ancestors.push(t.title.clone());
        up = t.parent;
        if ancestors.len() > 64 {
            break;
        }
    }
    ancestors.reverse();
    let mut dependencies = Vec::new();
    for e in p.store.edges_of(task.id).await? {
        if e.to == task.id && e.kind == EdgeKind::Blocks {
            let d = p.store.task(e.from).await?;
            dependencies.push((reference(&d), d.title.clone(), d.status.to_string()));
        }
    }
    Ok(TaskBrief {
        reference: reference(task),
        title: task.title.clone(),
        description: task.description.clone(),
        role: task.role.clone(),
        effort: task.effort,
        acceptance: task.acceptance.clone(),
        files: task.footprint.clone(),
        ancestors,
        dependencies,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_goal_makes_a_short_plan_name() {
        assert_eq!(slug("Add OAuth2 login!"), "add-oauth2-login");
        assert_eq!(slug("  ** "), "draft");
        assert!(slug(&"word ".repeat(30)).len() <= 40);
    }
}
