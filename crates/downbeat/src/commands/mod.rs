//! What each command does: read arguments, call the store and the core, render.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::path::Path;

use downbeat_core::context::ObjectiveStatus;
use downbeat_core::graph::Progress;
use downbeat_core::ids::{RecordId, RecordKind, TaskId};
use downbeat_core::maintain::{self, Finding, Policy};
use downbeat_core::plan::{self, PlanFormat};
use downbeat_core::report::{self, ProjectView};
use downbeat_core::task::{Edge, EdgeKind, NewTask, Priority, Status, Task, TaskPatch};
use downbeat_core::time::{Millis, Timestamp};
use downbeat_store::{EventQuery, TaskFilter, view};
use serde_json::{Value, json};

use crate::cli::*;
use crate::error::{CliError, code};
use crate::output::{json as print_json, note, out, outln, table};
use crate::project::{self, Globals, Project};

pub async fn dispatch(cli: Cli) -> Result<(), CliError> {
    let g = Globals {
        db: cli.db.clone(),
        project: cli.project.clone(),
        actor: cli.actor.clone(),
    };
    let j = cli.json;
    if let Command::Init = cli.command {
        return init(&g, j).await;
    }
    if let Command::Bench(b) = cli.command {
        return match b {
            BenchCmd::Run {
                tasks,
                shape,
                concurrency,
                keep,
                command,
            } => {
                let argv = command
                    .as_deref()
                    .map(split_command)
                    .transpose()
                    .map_err(CliError::invalid)?;
                crate::run_cmd::bench_run(tasks, shape, concurrency.max(1), keep, argv, j).await
            }
            BenchCmd::Recover {
                tasks,
                database,
                concurrency,
            } => crate::run_cmd::bench_recover(tasks, database, concurrency.max(1), j).await,
            BenchCmd::Workers(a) => crate::bench_workers::bench_workers(&a, j).await,
            plan => bench(plan, j),
        };
    }
    if let Command::Mcp(a) = cli.command {
        return match a.command {
            Some(crate::cli::McpCmd::Install(i)) => crate::clients::install(&g, i, j),
            command => crate::mcp::command(&g, crate::cli::McpArgs { command, ..a }).await,
        };
    }
    if let Command::Agents(c) = cli.command {
        return crate::clients::agents(&g, c, j);
    }
    if let Command::Db(c) = cli.command {
        return crate::db_cmd::command(c, j).await;
    }
    let p = project::open(&g).await?;
    match cli.command {
        Command::Init
        | Command::Bench(_)
        | Command::Mcp(_)
        | Command::Agents(_)
        | Command::Db(_)
        | Command::GuardAgents { .. } => unreachable_command(),
        Command::Plan(c) => plan_cmd(&p, c, j).await,
        Command::Add(a) => add(&p, a, j).await,
        Command::Edit(a) => edit(&p, a, j).await,
        Command::Show(a) => show(&p, &a.id, j).await,
        Command::List(a) => list(&p, a, j).await,
        Command::Start(a) => start(&p, a, j).await,
        Command::Done(a) => done(&p, a, j).await,
        Command::Fail(a) => transition(&p, &a.id, Status::Failed, a.reason, j).await,
        Command::Block(a) => transition(&p, &a.id, Status::Blocked, a.reason, j).await,
        Command::Unblock(a) => transition(&p, &a.id, Status::Pending, None, j).await,
        Command::Skip(a) => transition(&p, &a.id, Status::Skipped, a.note, j).await,
        Command::Cancel(a) => transition(&p, &a.id, Status::Cancelled, a.note, j).await,
        Command::Reopen(a) => transition(&p, &a.id, Status::Pending, None, j).await,
        Command::Run(a) => crate::run_cmd::run_cmd(&p, a, j).await,
        Command::Worker(a) => crate::worker_cmd::worker(&p, a, j).await,
        Command::Workers => crate::worker_cmd::workers(&p, j).await,
        Command::Pause(a) => pause(&p, &a.reason, j).await,
        Command::Unpause(a) => unpause(&p, a.hold, j).await,
        Command::Holds => holds(&p, j).await,
        Command::Retry(a) => transition(&p, &a.id, Status::Pending, None, j).await,
        Command::Attempts(a) => crate::run_cmd::attempts(&p, &a.id, j).await,
        Command::Dep(c) => dep(&p, c, j).await,
        Command::Ready(a) => ready(&p, a, j).await,
        Command::Blocked => blocked(&p, j).await,
        Command::Waves(a) => waves(&p, a, j).await,
        Command::Status => status(&p, j).await,
        Command::Graph(a) => graph(&p, a, j).await,
        Command::Log(a) => log(&p, a, j).await,
        Command::Session(c) => session(&p, c, j).await,
        Command::Objective(c) => objective(&p, c, j).await,
        Command::Insight(c) => insight(&p, c, j).await,
        Command::Decision(c) => decision(&p, c, j).await,
        Command::Synthesize(a) => synthesize(&p, a.id.as_deref(), a.output, j)
            .await
            .map(|_| ()),
        Command::Handover(a) => handover(&p, a, j).await,
        Command::Maintain(a) => maintain_cmd(&p, a, j).await,
        Command::Roles(a) => roles(&p, a, j),
        Command::Metrics => metrics(&p, j).await,
    }
}

fn unreachable_args() -> Result<Option<String>, CliError> {
    Err(CliError::invalid(
        "--command and --shell cannot be used together",
    ))
}

/// Splits a command line into arguments: whitespace separates, single and double quotes group,
/// a backslash escapes the next character. No expansion of any kind.
pub fn split_command(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') | (None, '\\') => match chars.next() {
                Some(n) => cur.push(n),
                None => return Err(format!("command `{s}` ends with a lone backslash")),
            },
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err(format!("command `{s}` has an unclosed quote"));
    }
    if in_word {
        out.push(cur);
    }
    if out.is_empty() {
        return Err("the command is empty".into());
    }
    Ok(out)
}

fn unreachable_command() -> Result<(), CliError> {
    Err(CliError::new(code::INTERNAL, "command dispatched twice"))
}

// ------------------------------------------------------------------------------------------
// Helpers

pub(crate) async fn resolve(p: &Project, s: &str) -> Result<TaskId, CliError> {
    Ok(p.store.resolve_task(s).await?)
}

pub(crate) async fn view(p: &Project) -> Result<ProjectView, CliError> {
    view::load(p.store.as_ref(), &p.plan_settings())
        .await
        .map_err(|e| match e {
            downbeat_store::Error::Cycle(c) => CliError::new(
                code::CONFLICT,
                format!("the stored graph is damaged: {c}"),
            )
            .with_hint(
                "run `downbeat maintain` and remove one of the dependencies with `downbeat dep rm`",
            ),
            other => other.into(),
        })
}

pub(crate) fn parse_priority(s: &str) -> Result<Priority, CliError> {
    s.parse()
        .map_err(|e: downbeat_core::task::ParseEnumError| CliError::invalid(e.to_string()))
}

pub(crate) fn check_role(p: &Project, r: &str) -> Result<(), CliError> {
    if p.roles.contains(r) {
        Ok(())
    } else {
        Err(
            CliError::invalid(format!("unknown role `{r}`")).with_hint(format!(
                "known roles: {} (add your own in .downbeat/roles/NAME.toml)",
                p.roles.names().join(", ")
            )),
        )
    }
}

pub(crate) fn record(kind: RecordKind, s: &str) -> Result<RecordId, CliError> {
    RecordId::parse(kind, s).ok_or_else(|| {
        CliError::invalid(format!(
            "`{s}` is not a {} id (like {}3)",
            kind.name(),
            kind.letter()
        ))
    })
}

/// The status a person should see: `ready`/`waiting` for pending leaves, rolled up for containers.
pub(crate) fn shown_status(
    t: &Task,
    roll: &HashMap<TaskId, Progress>,
    ready: &HashSet<TaskId>,
) -> String {
    shown_status_of(t.id, t.status, roll, ready)
}

/// [`shown_status`] of the task `id` whose stored status is `status`.
pub(crate) fn shown_status_of(
    id: TaskId,
    status: Status,
    roll: &HashMap<TaskId, Progress>,
    ready: &HashSet<TaskId>,
) -> String {
    match roll.get(&id) {
        Some(pr) if pr.is_container => pr.status.to_string(),
        _ if status == Status::Pending => {
            if ready.contains(&id) {
                "ready".into()
            } else {
                "waiting".into()
            }
        }
        _ => status.to_string(),
    }
}

fn task_json(t: &Task, shown: &str) -> Value {
    let mut v = serde_json::to_value(t).unwrap_or(Value::Null);
    v["state"] = json!(shown);
    v
}

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        let mut c: String = s.chars().take(n - 1).collect();
        c.push('…');
        c
    }
}

fn ids_json(v: &[TaskId]) -> Vec<String> {
    v.iter().map(ToString::to_string).collect()
}

// ------------------------------------------------------------------------------------------
// init, plan

async fn init(g: &Globals, j: bool) -> Result<(), CliError> {
    let (p, fresh) = project::init(g).await?;
    let info = p.store.info();
    if j {
        print_json(
            &json!({"root": p.root.display().to_string(), "database": info.location, "created": fresh}),
        );
    } else {
        if fresh {
            note(&format!(
                "initialised a downbeat project in {}",
                p.dir().display()
            ));
            note(
                "next: `downbeat plan apply PLAN.toml` or `downbeat add \"TITLE\" --role implementer`",
            );
        } else {
            note(&format!(
                "{} already holds a downbeat project; nothing changed",
                p.dir().display()
            ));
        }
        outln(&p.dir().display().to_string());
    }
    Ok(())
}

async fn plan_cmd(p: &Project, c: PlanCmd, j: bool) -> Result<(), CliError> {
    let (file, dry) = match c {
        PlanCmd::Apply { file, dry_run } => (file, dry_run),
        PlanCmd::Check { file } => (file, true),
    };
    let shown = file.display().to_string();
    let format = PlanFormat::from_path(&shown).ok_or_else(|| {
        CliError::invalid(format!("{shown}: unknown plan format"))
            .with_hint("plan files end in .toml, .yaml, .yml or .json")
    })?;
    let text = std::fs::read_to_string(&file).map_err(|e| {
        let c = if e.kind() == std::io::ErrorKind::NotFound {
            code::NOT_FOUND
        } else {
            code::INVALID
        };
        CliError::new(c, format!("cannot read {shown}: {e}"))
    })?;
    let parsed = plan::parse(&text, format)
        .map_err(|e| CliError::invalid(format!("{shown}: {}", e.message)))?;
    let validated = validate_plan(p, &parsed, &shown).await?;
    let name = validated.name.clone().unwrap_or_else(|| shown.clone());
    if dry {
        if j {
            print_json(
                &json!({"valid": true, "tasks": validated.tasks.len(), "edges": validated.edges.len(), "objectives": validated.objectives.len()}),
            );
        } else {
            outln(&format!(
                "{shown} is valid: {} task(s), {} dependency edge(s), {} objective(s), {} decision(s); nothing written",
                validated.tasks.len(),
                validated.edges.len(),
                validated.objectives.len(),
                validated.decisions.len()
            ));
        }
        return Ok(());
    }
    let applied = apply_plan(p, &validated).await?;
    if j {
        print_json(&json!({
            "plan": name,
            "tasks": applied.tasks.iter().map(|(k, id)| json!({"key": k, "id": id})).collect::<Vec<_>>(),
            "edges": applied.edges,
            "objectives": applied.objectives,
            "decisions": applied.decisions,
            "insights": applied.insights,
        }));
    } else {
        note(&format!(
            "applied {name}: {} task(s), {} dependency edge(s), {} objective(s), {} decision(s), {} insight(s)",
            applied.tasks.len(),
            applied.edges,
            applied.objectives.len(),
            applied.decisions.len(),
            applied.insights.len()
        ));
        let rows: Vec<Vec<String>> = applied
            .tasks
            .iter()
            .zip(&validated.tasks)
            .map(|((k, id), t)| {
                vec![
                    id.to_string(),
                    k.clone().unwrap_or_default(),
                    clip(&t.new.title, 70),
                ]
            })
            .collect();
        out(&table(&["ID", "KEY", "TITLE"], &rows));
    }
    Ok(())
}

/// Validates a parsed plan against the project (roles, existing tasks and keys, cycles formed
/// with stored edges); every problem names the offending task or edge. `shown` prefixes the
/// messages (the file name, or `plan`).
pub(crate) async fn validate_plan(
    p: &Project,
    parsed: &plan::PlanFile,
    shown: &str,
) -> Result<plan::ValidatedPlan, CliError> {
    // References to tasks outside the plan: look them all up once.
    let refs: Vec<String> = parsed
        .tasks
        .iter()
        .flat_map(|t| {
            t.depends_on
                .iter()
                .chain(&t.related)
                .chain(&t.discovered_from)
                .chain(t.parent.iter())
        })
        .chain(parsed.objectives.iter().flat_map(|o| o.tasks.iter()))
        .chain(parsed.decisions.iter().filter_map(|d| d.task.as_ref()))
        .chain(parsed.insights.iter().filter_map(|i| i.task.as_ref()))
        .cloned()
        .collect();
    // Plan keys resolve inside the plan; only the other references need the database.
    let keys: Vec<String> = parsed.tasks.iter().filter_map(|t| t.key.clone()).collect();
    let own: HashSet<&str> = keys.iter().map(String::as_str).collect();
    let mut outside: Vec<String> = refs
        .into_iter()
        .filter(|r| !own.contains(r.as_str()))
        .collect();
    outside.sort();
    outside.dedup();
    let known = p.store.lookup_tasks(&outside).await?;
    let taken = p.store.keys_in_use(&keys).await?;
    let validated = plan::validate(parsed, &p.roles, &|r| known.get(r).copied(), &|k| {
        taken.contains(k)
    })
    .map_err(|e| CliError::invalid(format!("{shown}: {e}")))?;
    if let Some(cycle) = dry_cycle_check(p, &validated).await? {
        return Err(CliError::new(code::CONFLICT, format!("{shown}: {cycle}")));
    }
    Ok(validated)
}

/// Writes the plan's role files, then inserts the plan in one transaction.
pub(crate) async fn apply_plan(
    p: &Project,
    validated: &plan::ValidatedPlan,
) -> Result<downbeat_store::AppliedPlan, CliError> {
    if !validated.roles.is_empty() {
        write_plan_roles(p, &validated.roles)?;
    }
    let actor = p.actor().await?;
    Ok(p.store.apply_plan(validated, &actor).await?)
}

/// Catches cycles before writing so a dry run reports them too (the store re-checks on write).
async fn dry_cycle_check(p: &Project, v: &plan::ValidatedPlan) -> Result<Option<String>, CliError> {
    use downbeat_core::graph::{GraphSnapshot, GraphTask, find_cycle};
    use downbeat_core::plan::TaskRef;
    let mut snap: GraphSnapshot = p.store.graph().await?;
    let base = snap.tasks.iter().map(|t| t.id.seq()).max().unwrap_or(0) + 1_000_000;
    let id_of = |r: TaskRef| match r {
        TaskRef::New(i) => {
            TaskId::from_seq(base + i as u32).unwrap_or(TaskId::from_seq(0).expect("zero"))
        }
        TaskRef::Existing(id) => id,
    };
    let names: HashMap<TaskId, String> = v
        .tasks
        .iter()
        .enumerate()
        .map(|(i, t)| {
            (
                id_of(TaskRef::New(i)),
                t.new
                    .key
                    .clone()
                    .unwrap_or_else(|| format!("\"{}\"", t.new.title)),
            )
        })
        .collect();
    for (i, t) in v.tasks.iter().enumerate() {
        snap.tasks.push(GraphTask {
            id: id_of(TaskRef::New(i)),
            key: t.new.key.clone(),
            parent: t.parent.map(id_of),
            title: t.new.title.clone(),
            status: Status::Pending,
            role: None,
            effort: 1,
            priority: Priority::Normal,
            footprint: vec![],
        });
    }
    for &(f, t, kind) in &v.edges {
        snap.edges.push(Edge {
            from: id_of(f),
            to: id_of(t),
            kind,
        });
    }
    Ok(find_cycle(&snap).map(|c| {
        let mut parts: Vec<String> = c
            .path
            .iter()
            .map(|id| names.get(id).cloned().unwrap_or_else(|| id.to_string()))
            .collect();
        if let Some(first) = parts.first().cloned() {
            parts.push(first);
        }
        format!("dependency cycle: {}", parts.join(" → "))
    }))
}

fn write_plan_roles(
    p: &Project,
    roles: &[(String, downbeat_core::role::RoleFile)],
) -> Result<(), CliError> {
    let dir = p.dir().join("roles");
    std::fs::create_dir_all(&dir)?;
    for (name, r) in roles {
        let path = dir.join(format!("{name}.toml"));
        if path.exists() {
            note(&format!(
                "role `{name}`: {} exists; keeping it",
                path.display()
            ));
            continue;
        }
        let mut s = String::new();
        let q = |v: &str| toml::Value::String(v.to_owned()).to_string();
        if let Some(d) = &r.description {
            let _ = writeln!(s, "description = {}", q(d));
        }
        if let Some(pr) = &r.prompt {
            let _ = writeln!(s, "prompt = {}", q(pr));
        }
        if let Some(m) = r.max_parallel {
            let _ = writeln!(s, "max_parallel = {m}");
        }
        if let Some(st) = &r.stale_after {
            let _ = writeln!(s, "stale_after = {}", q(st));
        }
        std::fs::write(&path, s)?;
        note(&format!("role `{name}` written to {}", path.display()));
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------
// tasks

async fn add(p: &Project, a: AddArgs, j: bool) -> Result<(), CliError> {
    if let Some(r) = &a.role {
        check_role(p, r)?;
    }
    let parent = match &a.parent {
        Some(s) => Some(resolve(p, s).await?),
        None => None,
    };
    let mut deps = Vec::new();
    for d in &a.after {
        deps.push(resolve(p, d).await?);
    }
    let executor = match (a.executor.as_deref(), &a.command, &a.shell) {
        (None | Some("process"), Some(cmd), None) => {
            let argv = split_command(cmd).map_err(CliError::invalid)?;
            Some(json!({"type": "process", "argv": argv}).to_string())
        }
        (None | Some("process"), None, Some(sh)) => {
            Some(json!({"type": "process", "shell": sh}).to_string())
        }
        (Some("process"), None, None) => {
            return Err(CliError::invalid(
                "--executor process needs --command or --shell",
            ));
        }
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            return Err(CliError::invalid(
                "--command and --shell go with --executor process (or no --executor)",
            ));
        }
        (name, None, None) => name.map(str::to_owned),
        (None, Some(_), Some(_)) => unreachable_args()?,
    };
    let timeout_ms = a
        .timeout
        .as_deref()
        .map(|t| Millis::parse(t).map(|m| m.0))
        .transpose()
        .map_err(|e| CliError::invalid(format!("--timeout: {e}")))?;
    if a.max_attempts == Some(0) {
        return Err(CliError::invalid("--max-attempts must be at least 1"));
    }
    let new = NewTask {
        exec: downbeat_core::task::ExecSettings {
            executor,
            timeout_ms,
            max_attempts: a.max_attempts,
        },
        key: a.key,
        parent,
        title: a.title,
        description: a.description.unwrap_or_default(),
        role: a.role,
        priority: a
            .priority
            .as_deref()
            .map(parse_priority)
            .transpose()?
            .unwrap_or_default(),
        effort: a.effort.unwrap_or(1),
        acceptance: a.acceptance,
        tags: a.tags,
        footprint: a.files,
    };
    let t = p.store.create_task(&new, &deps, &p.actor().await?).await?;
    if j {
        print_json(&task_json(&t, "pending"));
    } else {
        note(&format!("created task {}: {}", t.id, t.title));
        outln(&t.id.to_string());
    }
    Ok(())
}

async fn edit(p: &Project, a: EditArgs, j: bool) -> Result<(), CliError> {
    let id = resolve(p, &a.id).await?;
    let role = match a.role.as_deref() {
        None => None,
        Some("none") => Some(None),
        Some(r) => {
            check_role(p, r)?;
            Some(Some(r.to_owned()))
        }
    };
    let parent = match a.parent.as_deref() {
        None => None,
        Some("none") => Some(None),
        Some(s) => Some(Some(resolve(p, s).await?)),
    };
    let patch = TaskPatch {
        title: a.title,
        description: a.description,
        role,
        priority: a.priority.as_deref().map(parse_priority).transpose()?,
        effort: a.effort,
        acceptance: (!a.acceptance.is_empty()).then_some(a.acceptance),
        tags: (!a.tags.is_empty()).then_some(a.tags),
        footprint: (!a.files.is_empty()).then_some(a.files),
        parent,
        exec: None,
    };
    if patch.is_empty() {
        return Err(CliError::invalid("nothing to change")
            .with_hint("pass at least one of --title, --role, --effort, …"));
    }
    let t = p.store.update_task(id, &patch, &p.actor().await?).await?;
    if j {
        print_json(&task_json(&t, t.status.as_str()));
    } else {
        note(&format!("updated task {}", t.id));
    }
    Ok(())
}

async fn pause(p: &Project, reason: &str, j: bool) -> Result<(), CliError> {
    let h = p.store.add_hold(None, reason, &p.actor().await?).await?;
    if j {
        print_json(&h);
    } else {
        outln(&format!(
            "hold {}: nothing new starts anywhere on this project",
            h.id
        ));
        note("running attempts go on; `downbeat unpause` releases the hold");
    }
    Ok(())
}

async fn unpause(p: &Project, hold: Option<u32>, j: bool) -> Result<(), CliError> {
    let released = p.store.release_holds(hold, &p.actor().await?).await?;
    if j {
        print_json(&released);
    } else if released.is_empty() {
        note("no holds were in force");
    } else {
        for h in &released {
            outln(&format!("released hold {}: {}", h.id, h.reason));
        }
    }
    Ok(())
}

fn hold_line(h: &downbeat_store::Hold) -> String {
    match h.task {
        Some(t) => format!(
            "hold {}: only {t} may start until it is done — {}",
            h.id, h.reason
        ),
        None => format!("hold {}: nothing new starts — {}", h.id, h.reason),
    }
}

async fn holds(p: &Project, j: bool) -> Result<(), CliError> {
    let list = p.store.holds().await?;
    if j {
        print_json(&list);
    } else if list.is_empty() {
        note("no holds: work starts as soon as it is ready");
    } else {
        for h in &list {
            outln(&hold_line(h));
        }
    }
    Ok(())
}

async fn transition(
    p: &Project,
    id: &str,
    to: Status,
    note_text: Option<String>,
    j: bool,
) -> Result<(), CliError> {
    let id = resolve(p, id).await?;
    let changed = p
        .store
        .set_status(id, to, note_text.as_deref(), &p.actor().await?)
        .await?;
    if j {
        print_json(
            &changed
                .iter()
                .map(|t| task_json(t, t.status.as_str()))
                .collect::<Vec<_>>(),
        );
    } else {
        for t in &changed {
            outln(&format!("{} {}", t.id, t.status));
        }
        if changed.is_empty() {
            note(&format!("nothing under {id} could move to {to}"));
        }
    }
    Ok(())
}

async fn start(p: &Project, a: StartArgs, j: bool) -> Result<(), CliError> {
    let id = resolve(p, &a.id).await?;
    if !a.force {
        let v = view(p).await?;
        if let Some((_, on)) = v
            .planned
            .waiting
            .iter()
            .chain(&v.planned.stuck)
            .find(|(w, _)| *w == id)
        {
            let list: Vec<String> = on
                .iter()
                .map(|o| {
                    format!(
                        "{o} ({})",
                        v.task(*o).map(|t| t.title.as_str()).unwrap_or("?")
                    )
                })
                .collect();
            return Err(CliError::new(
                code::CONFLICT,
                format!("task {id} waits on unfinished work: {}", list.join(", ")),
            )
            .with_hint("finish those first, or pass --force to start anyway"));
        }
    }
    transition(p, &id.to_string(), Status::Running, a.note, j).await
}

async fn done(p: &Project, a: DoneArgs, j: bool) -> Result<(), CliError> {
    let id = resolve(p, &a.id).await?;
    // Check the artifacts before changing anything.
    let mut arts = Vec::new();
    for path in &a.artifacts {
        let full = if path.is_absolute() {
            path.clone()
        } else {
            std::env::current_dir()?.join(path)
        };
        let meta = std::fs::metadata(&full)
            .map_err(|e| CliError::not_found(format!("artifact {}: {e}", path.display())))?;
        let canon = full.canonicalize()?;
        let root = p.root.canonicalize()?;
        let rel = canon.strip_prefix(&root).map_err(|_| {
            CliError::invalid(format!(
                "artifact {} is outside the project ({})",
                path.display(),
                root.display()
            ))
        })?;
        arts.push((rel.display().to_string(), meta.len() as i64));
    }
    let actor = p.actor().await?;
    let changed = p
        .store
        .set_status(id, Status::Completed, a.result.as_deref(), &actor)
        .await?;
    for (path, size) in &arts {
        p.store
            .add_artifact(id, path, Some(*size), None, &actor)
            .await?;
    }
    if j {
        print_json(
            &json!({"tasks": changed.iter().map(|t| task_json(t, "completed")).collect::<Vec<_>>(), "artifacts": arts.iter().map(|(p, s)| json!({"path": p, "size": s})).collect::<Vec<_>>()}),
        );
    } else {
        for t in &changed {
            outln(&format!("{} {}", t.id, t.status));
        }
    }
    Ok(())
}

async fn show(p: &Project, q: &str, j: bool) -> Result<(), CliError> {
    let id = resolve(p, q).await?;
    let t = p.store.task(id).await?;
    let v = view(p).await?;
    let ready: HashSet<TaskId> = v.planned.ready.iter().copied().collect();
    let shown = shown_status(&t, &v.rollup, &ready);
    let edges = p.store.edges_of(id).await?;
    let children: Vec<&Task> = v.tasks.iter().filter(|c| c.parent == Some(id)).collect();
    let events = p
        .store
        .events(&EventQuery {
            task: Some(id),
            limit: Some(10),
            ..Default::default()
        })
        .await?;
    let blockers: Vec<TaskId> = v
        .planned
        .waiting
        .iter()
        .chain(&v.planned.stuck)
        .find(|(w, _)| *w == id)
        .map(|(_, b)| b.clone())
        .unwrap_or_default();
    let title_of = |x: TaskId| {
        v.task(x)
            .map(|t| t.title.clone())
            .unwrap_or_else(|| "(archived)".into())
    };
    if j {
        let mut o = task_json(&t, &shown);
        o["edges"] = serde_json::to_value(&edges).unwrap_or(Value::Null);
        o["children"] = json!(
            children
                .iter()
                .map(|c| c.id.to_string())
                .collect::<Vec<_>>()
        );
        o["waits_on"] = json!(ids_json(&blockers));
        o["progress"] = serde_json::to_value(v.rollup.get(&id)).unwrap_or(Value::Null);
        o["events"] = serde_json::to_value(&events).unwrap_or(Value::Null);
        print_json(&o);
        return Ok(());
    }
    let mut s = String::new();
    let _ = writeln!(s, "{} {}", t.id, t.title);
    let mut field = |k: &str, v: String| {
        if !v.is_empty() {
            let _ = writeln!(s, "  {k:<12} {v}");
        }
    };
    field("status", shown);
    field("key", t.key.clone().unwrap_or_default());
    field("role", t.role.clone().unwrap_or_default());
    field("priority", t.priority.to_string());
    field("effort", t.effort.to_string());
    field(
        "parent",
        t.parent
            .map(|x| format!("{x} {}", title_of(x)))
            .unwrap_or_default(),
    );
    if let Some(pr) = v.rollup.get(&id).filter(|pr| pr.is_container) {
        field(
            "progress",
            report::progress_bar(u64::from(pr.done), u64::from(pr.total), 10),
        );
    }
    field("tags", t.tags.join(", "));
    field("files", t.footprint.join(", "));
    field("created", t.created_at.to_string());
    field(
        "started",
        t.started_at.map(|x| x.to_string()).unwrap_or_default(),
    );
    field(
        "finished",
        t.finished_at.map(|x| x.to_string()).unwrap_or_default(),
    );
    field("result", t.result.clone().unwrap_or_default());
    if !t.description.is_empty() {
        let _ = writeln!(s, "\n{}", t.description.trim_end());
    }
    if !t.acceptance.is_empty() {
        let _ = writeln!(s, "\nacceptance:");
        for a in &t.acceptance {
            let _ = writeln!(s, "  - {a}");
        }
    }
    let deps: Vec<&Edge> = edges.iter().filter(|e| e.to == id).collect();
    let dependents: Vec<&Edge> = edges.iter().filter(|e| e.from == id).collect();
    if !deps.is_empty() {
        let _ = writeln!(s, "\ndepends on:");
        for e in deps {
            let mark = if blockers.contains(&e.from) {
                " (not done)"
            } else {
                ""
            };
            let _ = writeln!(s, "  {} {} [{}]{mark}", e.from, title_of(e.from), e.kind);
        }
    }
    if !dependents.is_empty() {
        let _ = writeln!(s, "\ndependents:");
        for e in dependents {
            let _ = writeln!(s, "  {} {} [{}]", e.to, title_of(e.to), e.kind);
        }
    }
    if !children.is_empty() {
        let _ = writeln!(s, "\nchildren:");
        for c in children {
            let _ = writeln!(
                s,
                "  {} {} [{}]",
                c.id,
                c.title,
                shown_status(c, &v.rollup, &ready)
            );
        }
    }
    if !events.is_empty() {
        let _ = writeln!(s, "\nhistory:");
        for e in &events {
            let _ = writeln!(
                s,
                "  {} {} {}{}",
                e.at,
                e.actor,
                e.action,
                change_summary(&e.before, &e.after)
            );
        }
    }
    out(&s);
    Ok(())
}

async fn list(p: &Project, a: ListArgs, j: bool) -> Result<(), CliError> {
    let mut statuses = Vec::new();
    for s in &a.status {
        statuses.push(
            s.parse::<Status>()
                .map_err(|e| CliError::invalid(e.to_string()))?,
        );
    }
    let parent = match &a.parent {
        Some(x) => Some(resolve(p, x).await?),
        None => None,
    };
    let filter = TaskFilter {
        statuses,
        role: a.role,
        tag: a.tag,
        parent,
        text: a.search,
        include_archived: a.all,
        limit: a.limit,
    };
    let tasks = p.store.tasks(&filter).await?;
    let v = view(p).await?;
    let ready: HashSet<TaskId> = v.planned.ready.iter().copied().collect();
    if j {
        print_json(
            &tasks
                .iter()
                .map(|t| task_json(t, &shown_status(t, &v.rollup, &ready)))
                .collect::<Vec<_>>(),
        );
        return Ok(());
    }
    let rows: Vec<Vec<String>> = tasks
        .iter()
        .map(|t| {
            vec![
                t.id.to_string(),
                shown_status(t, &v.rollup, &ready),
                t.role.clone().unwrap_or_else(|| "-".into()),
                t.priority.to_string(),
                t.effort.to_string(),
                clip(&t.title, 80),
            ]
        })
        .collect();
    if rows.is_empty() {
        note("no tasks match");
    } else {
        out(&table(
            &["ID", "STATUS", "ROLE", "PRIORITY", "EFFORT", "TITLE"],
            &rows,
        ));
    }
    Ok(())
}

async fn dep(p: &Project, c: DepCmd, j: bool) -> Result<(), CliError> {
    let (task, on, kind, add) = match c {
        DepCmd::Add { task, on, kind } => (task, on, kind, true),
        DepCmd::Rm { task, on, kind } => (task, on, kind, false),
    };
    let kind = match kind {
        EdgeKindArg::Blocks => EdgeKind::Blocks,
        EdgeKindArg::Related => EdgeKind::Related,
        EdgeKindArg::DiscoveredFrom => EdgeKind::DiscoveredFrom,
    };
    let to = resolve(p, &task).await?;
    let actor = p.actor().await?;
    let mut results = Vec::new();
    for o in &on {
        let from = resolve(p, o).await?;
        let edge = Edge { from, to, kind };
        let changed = if add {
            p.store.add_edge(edge, &actor).await?
        } else {
            p.store.remove_edge(edge, &actor).await?
        };
        results.push(json!({"task": to, "on": from, "kind": kind, "changed": changed}));
        if !j {
            let what = match (add, changed) {
                (true, true) => "now waits for",
                (true, false) => "already depended on",
                (false, true) => "no longer depends on",
                (false, false) => "did not depend on",
            };
            let kind_note = if kind == EdgeKind::Blocks {
                String::new()
            } else {
                format!(" ({kind})")
            };
            outln(&format!("{to} {what} {from}{kind_note}"));
        }
    }
    if j {
        print_json(&results);
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------
// planning views

async fn ready(p: &Project, a: LimitArgs, j: bool) -> Result<(), CliError> {
    let v = view(p).await?;
    let ids: Vec<TaskId> = v
        .planned
        .ready
        .iter()
        .copied()
        .take(a.limit.unwrap_or(usize::MAX))
        .collect();
    if j {
        let list: Vec<Value> = ids
            .iter()
            .filter_map(|id| v.task(*id))
            .map(|t| task_json(t, "ready"))
            .collect();
        print_json(&list);
        return Ok(());
    }
    if ids.is_empty() {
        let c = v.counts();
        note(&if c.total == 0 {
            "no tasks yet".to_owned()
        } else if c.done() == c.total {
            "everything is done".to_owned()
        } else {
            format!(
                "nothing is ready: {} running, {} waiting, {} stuck (see `downbeat blocked`)",
                c.running, c.waiting, c.stuck
            )
        });
        return Ok(());
    }
    let rows: Vec<Vec<String>> = ids
        .iter()
        .filter_map(|id| v.task(*id))
        .map(|t| {
            vec![
                t.id.to_string(),
                t.role.clone().unwrap_or_else(|| "-".into()),
                t.priority.to_string(),
                t.effort.to_string(),
                clip(&t.title, 80),
            ]
        })
        .collect();
    out(&table(
        &["ID", "ROLE", "PRIORITY", "EFFORT", "TITLE"],
        &rows,
    ));
    Ok(())
}

async fn blocked(p: &Project, j: bool) -> Result<(), CliError> {
    let v = view(p).await?;
    let held: Vec<&Task> = v
        .tasks
        .iter()
        .filter(|t| {
            matches!(
                t.status,
                Status::Failed | Status::Blocked | Status::Cancelled
            )
        })
        .filter(|t| !v.rollup.get(&t.id).is_some_and(|r| r.is_container))
        .collect();
    if j {
        let entry = |(id, on): &(TaskId, Vec<TaskId>)| json!({"task": id, "title": v.task(*id).map(|t| t.title.clone()), "waits_on": ids_json(on)});
        print_json(&json!({
            "waiting": v.planned.waiting.iter().map(entry).collect::<Vec<_>>(),
            "stuck": v.planned.stuck.iter().map(entry).collect::<Vec<_>>(),
            "held": held.iter().map(|t| json!({"task": t.id, "title": t.title, "status": t.status, "reason": t.result})).collect::<Vec<_>>(),
        }));
        return Ok(());
    }
    let title = |id: TaskId| v.task(id).map(|t| clip(&t.title, 60)).unwrap_or_default();
    let state = |id: TaskId| {
        v.task(id)
            .map(|t| match v.rollup.get(&id) {
                Some(r) if r.is_container => format!("{}, {}/{} done", r.status, r.done, r.total),
                _ => t.status.to_string(),
            })
            .unwrap_or_default()
    };
    let mut s = String::new();
    if !held.is_empty() {
        let _ = writeln!(s, "held ({}):", held.len());
        for t in &held {
            let why = t
                .result
                .as_deref()
                .map(|r| format!(" — {}", clip(r, 60)))
                .unwrap_or_default();
            let _ = writeln!(s, "  {} {} [{}]{why}", t.id, clip(&t.title, 60), t.status);
        }
    }
    for (label, list) in [
        ("stuck behind held tasks", &v.planned.stuck),
        ("waiting", &v.planned.waiting),
    ] {
        if list.is_empty() {
            continue;
        }
        let _ = writeln!(s, "{label} ({}):", list.len());
        for (id, on) in list {
            let _ = writeln!(s, "  {} {}", id, title(*id));
            for o in on {
                let _ = writeln!(s, "      waits on {} {} [{}]", o, title(*o), state(*o));
            }
        }
    }
    if s.is_empty() {
        note("nothing is blocked");
    } else {
        out(&s);
    }
    Ok(())
}

async fn waves(p: &Project, a: WavesArgs, j: bool) -> Result<(), CliError> {
    let mut settings = p.plan_settings();
    if !a.workers.is_empty() {
        if a.workers.contains(&0) {
            return Err(CliError::invalid("--workers values must be at least 1"));
        }
        settings.workers = a.workers;
    }
    let snap = p.store.graph().await?;
    let planned = downbeat_core::graph::plan(&snap, &settings)
        .map_err(|c| CliError::new(code::CONFLICT, c.to_string()))?;
    let titles: HashMap<TaskId, (&str, Option<&str>)> = snap
        .tasks
        .iter()
        .map(|t| (t.id, (t.title.as_str(), t.role.as_deref())))
        .collect();
    if j {
        print_json(&json!({
            "waves": planned.waves.iter().map(|w| ids_json(w)).collect::<Vec<_>>(),
            "critical_path": ids_json(&planned.critical_path),
            "critical_path_effort": planned.critical_path_effort,
            "max_parallelism": planned.max_parallelism,
            "parallel_rate": planned.parallel_rate,
            "total_effort": planned.total_effort,
            "makespans": planned.makespans.iter().map(|(k, m)| json!({"workers": k, "makespan": m, "speedup": if *m > 0 { planned.total_effort as f64 / *m as f64 } else { 1.0 }})).collect::<Vec<_>>(),
            "role_caps": settings.role_caps,
            "groups": settings.groups,
        }));
        return Ok(());
    }
    if planned.waves.is_empty() {
        note("nothing left to schedule");
        return Ok(());
    }
    let mut s = String::new();
    let cp: HashSet<TaskId> = planned.critical_path.iter().copied().collect();
    for (i, w) in planned.waves.iter().enumerate() {
        let _ = writeln!(
            s,
            "wave {} ({} task{}):",
            i + 1,
            w.len(),
            if w.len() == 1 { "" } else { "s" }
        );
        for id in w.iter().take(50) {
            let (title, role) = titles.get(id).copied().unwrap_or(("", None));
            let star = if cp.contains(id) { "*" } else { " " };
            let _ = writeln!(
                s,
                "  {star} {id} {:<12} {}",
                role.unwrap_or("-"),
                clip(title, 70)
            );
        }
        if w.len() > 50 {
            let _ = writeln!(s, "    … and {} more", w.len() - 50);
        }
    }
    let _ = writeln!(
        s,
        "\n* critical path: {} task(s), {} effort unit(s)",
        planned.critical_path.len(),
        planned.critical_path_effort
    );
    let _ = writeln!(s, "max parallelism: {}", planned.max_parallelism);
    let _ = writeln!(
        s,
        "parallel rate: {:.0}% of tasks share a wave",
        planned.parallel_rate * 100.0
    );
    let _ = writeln!(s, "sequential: {} effort unit(s)", planned.total_effort);
    for (k, m) in &planned.makespans {
        let speed = if *m > 0 {
            planned.total_effort as f64 / *m as f64
        } else {
            1.0
        };
        let _ = writeln!(
            s,
            "with {k} worker{}: {m} ({speed:.1}x)",
            if *k == 1 { "" } else { "s" }
        );
    }
    if !settings.role_caps.is_empty() {
        let caps: Vec<String> = settings
            .role_caps
            .iter()
            .map(|(r, c)| format!("{r} ≤ {c}"))
            .collect();
        let _ = writeln!(s, "role caps: {}", caps.join(", "));
    }
    for g in &settings.groups {
        let _ = writeln!(
            s,
            "group {}: {} ≤ {}",
            g.name,
            g.roles.join(" + "),
            g.max_parallel
        );
    }
    out(&s);
    Ok(())
}

/// Leaves per role: (done, total); `(none)` for tasks without a role.
pub(crate) fn per_role(v: &ProjectView) -> BTreeMap<String, (u64, u64)> {
    per_role_of(
        v.tasks.iter().map(|t| (t.id, t.role.as_deref(), t.status)),
        &v.rollup,
    )
}

/// (done, total) leaves per role of the given (id, role, status) tasks; containers (per
/// `rollup`) are left out.
pub(crate) fn per_role_of<'a>(
    tasks: impl IntoIterator<Item = (TaskId, Option<&'a str>, Status)>,
    rollup: &HashMap<TaskId, Progress>,
) -> BTreeMap<String, (u64, u64)> {
    let mut per_role: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for (id, role, status) in tasks {
        if rollup.get(&id).is_some_and(|r| r.is_container) {
            continue;
        }
        let e = per_role
            .entry(role.unwrap_or("(none)").to_owned())
            .or_default();
        e.1 += 1;
        if status.satisfies_dependents() {
            e.0 += 1;
        }
    }
    per_role
}

async fn status(p: &Project, j: bool) -> Result<(), CliError> {
    let v = view(p).await?;
    let c = v.counts();
    let ready: HashSet<TaskId> = v.planned.ready.iter().copied().collect();
    let per_role = per_role(&v);
    let workers = p.store.workers(p.now()).await?;
    let holds = p.store.holds().await?;
    if j {
        print_json(&json!({
            "counts": c,
            "done": c.done(),
            "total": c.total,
            "roles": per_role.iter().map(|(r, (d, t))| json!({"role": r, "done": d, "total": t})).collect::<Vec<_>>(),
            "session": p.store.current_session().await?,
            "objectives": v.objectives,
            "workers": workers,
            "holds": holds,
        }));
        return Ok(());
    }
    let mut s = String::new();
    let pct = (c.done() * 100).checked_div(c.total).unwrap_or(0);
    let _ = writeln!(s, "{} {pct}%", report::progress_bar(c.done(), c.total, 20));
    let _ = writeln!(
        s,
        "{} completed · {} skipped · {} running · {} ready · {} waiting · {} failed · {} blocked · {} cancelled",
        c.completed,
        c.skipped,
        c.running,
        c.ready,
        c.waiting + c.stuck,
        c.failed,
        c.blocked,
        c.cancelled
    );
    if !workers.is_empty() {
        let alive: Vec<_> = workers.iter().filter(|w| w.alive).collect();
        let busy: usize = alive.iter().map(|w| w.holding.len()).sum();
        let slots: u32 = alive.iter().map(|w| w.slots).sum();
        let _ = writeln!(
            s,
            "workers: {} alive ({busy}/{slots} slots busy), {} silent — `downbeat workers` for details",
            alive.len(),
            workers.len() - alive.len()
        );
    }
    for h in &holds {
        let _ = writeln!(
            s,
            "{} (`downbeat unpause {}` releases it)",
            hold_line(h),
            h.id
        );
    }
    if !per_role.is_empty() {
        let _ = writeln!(s, "\nby role:");
        for (r, (d, t)) in &per_role {
            let _ = writeln!(s, "  {r:<14} {}", report::progress_bar(*d, *t, 10));
        }
    }
    // The tree.
    let mut kids: BTreeMap<Option<TaskId>, Vec<&Task>> = BTreeMap::new();
    let live: HashSet<TaskId> = v.tasks.iter().map(|t| t.id).collect();
    for t in &v.tasks {
        let parent = t.parent.filter(|p| live.contains(p));
        kids.entry(parent).or_default().push(t);
    }
    if !v.tasks.is_empty() {
        let _ = writeln!(s, "\ntasks:");
        let mut lines = 0usize;
        let limit = 200;
        let mut stack: Vec<(&Task, usize)> = kids
            .get(&None)
            .map(|r| r.iter().rev().map(|t| (*t, 0)).collect())
            .unwrap_or_default();
        while let Some((t, depth)) = stack.pop() {
            if lines == limit {
                let _ = writeln!(
                    s,
                    "  … ({} tasks in all; `downbeat list` shows every one)",
                    v.tasks.len()
                );
                break;
            }
            lines += 1;
            let shown = shown_status(t, &v.rollup, &ready);
            let mark = match shown.as_str() {
                "completed" => "✓",
                "skipped" => "–",
                "running" => "▶",
                "failed" => "✗",
                "blocked" | "cancelled" => "■",
                "ready" => "○",
                _ => "·",
            };
            let extra = match v.rollup.get(&t.id) {
                Some(r) if r.is_container => format!(" {}/{}", r.done, r.total),
                _ => t
                    .role
                    .as_deref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default(),
            };
            let _ = writeln!(
                s,
                "  {}{mark} {} {}{extra} [{shown}]",
                "  ".repeat(depth),
                t.id,
                clip(&t.title, 70)
            );
            if let Some(ch) = kids.get(&Some(t.id)) {
                for c in ch.iter().rev() {
                    stack.push((c, depth + 1));
                }
            }
        }
    } else {
        let _ = writeln!(
            s,
            "\nno tasks yet: `downbeat plan apply FILE` or `downbeat add TITLE`"
        );
    }
    out(&s);
    Ok(())
}

async fn graph(p: &Project, a: GraphArgs, j: bool) -> Result<(), CliError> {
    let v = view(p).await?;
    let format = if j { GraphFormat::Json } else { a.format };
    if format == GraphFormat::Json {
        let ready: HashSet<TaskId> = v.planned.ready.iter().copied().collect();
        print_json(&json!({
            "tasks": v.tasks.iter().map(|t| json!({"id": t.id, "key": t.key, "title": t.title, "role": t.role, "parent": t.parent, "state": shown_status(t, &v.rollup, &ready)})).collect::<Vec<_>>(),
            "edges": v.edges,
        }));
        return Ok(());
    }
    out(&render_graph(&v, format));
    Ok(())
}

/// The task graph as Mermaid or Graphviz dot text (containers as subgraphs).
pub(crate) fn render_graph(v: &ProjectView, format: GraphFormat) -> String {
    let ready: HashSet<TaskId> = v.planned.ready.iter().copied().collect();
    let live: HashSet<TaskId> = v.tasks.iter().map(|t| t.id).collect();
    let mut kids: BTreeMap<Option<TaskId>, Vec<&Task>> = BTreeMap::new();
    for t in &v.tasks {
        kids.entry(t.parent.filter(|p| live.contains(p)))
            .or_default()
            .push(t);
    }
    let label = |t: &Task| {
        let role = t
            .role
            .as_deref()
            .map(|r| format!(" · {r}"))
            .unwrap_or_default();
        format!(
            "{} {}{role} · {}",
            t.id,
            t.title,
            shown_status(t, &v.rollup, &ready)
        )
    };
    let mut s = String::new();
    match format {
        GraphFormat::Json => {}
        GraphFormat::Mermaid => {
            let esc = |x: &str| x.replace('"', "#quot;");
            let _ = writeln!(s, "flowchart TD");
            // Containers become subgraphs; walk the tree with an explicit stack.
            let mut stack: Vec<(Option<&Task>, usize)> = kids
                .get(&None)
                .map(|r| r.iter().rev().map(|t| (Some(*t), 1)).collect())
                .unwrap_or_default();
            while let Some((t, d)) = stack.pop() {
                let pad = "  ".repeat(d.min(20));
                let Some(t) = t else {
                    let _ = writeln!(s, "{pad}end");
                    continue;
                };
                match kids.get(&Some(t.id)) {
                    Some(ch) => {
                        let _ = writeln!(s, "{pad}subgraph {}[\"{}\"]", t.id, esc(&label(t)));
                        stack.push((None, d));
                        for c in ch.iter().rev() {
                            stack.push((Some(c), d + 1));
                        }
                    }
                    None => {
                        let _ = writeln!(s, "{pad}{}[\"{}\"]", t.id, esc(&label(t)));
                    }
                }
            }
            for e in &v.edges {
                let arrow = match e.kind {
                    EdgeKind::Blocks => "-->",
                    EdgeKind::Related => "-.-",
                    EdgeKind::DiscoveredFrom => "-. discovered .->",
                };
                let _ = writeln!(s, "  {} {arrow} {}", e.from, e.to);
            }
        }
        GraphFormat::Dot => {
            let esc = |x: &str| x.replace('\\', "\\\\").replace('"', "\\\"");
            let _ = writeln!(s, "digraph downbeat {{\n  rankdir=LR;\n  node [shape=box];");
            let mut stack: Vec<(Option<&Task>, usize, bool)> = kids
                .get(&None)
                .map(|r| r.iter().rev().map(|t| (Some(*t), 1, false)).collect())
                .unwrap_or_default();
            while let Some((t, d, close)) = stack.pop() {
                let pad = "  ".repeat(d.min(20));
                let Some(t) = t else {
                    if close {
                        let _ = writeln!(s, "{pad}}}");
                    }
                    continue;
                };
                match kids.get(&Some(t.id)) {
                    Some(ch) => {
                        let _ = writeln!(
                            s,
                            "{pad}subgraph \"cluster_{}\" {{\n{pad}  label=\"{}\";",
                            t.id,
                            esc(&label(t))
                        );
                        stack.push((None, d, true));
                        for c in ch.iter().rev() {
                            stack.push((Some(c), d + 1, false));
                        }
                    }
                    None => {
                        let _ = writeln!(s, "{pad}\"{}\" [label=\"{}\"];", t.id, esc(&label(t)));
                    }
                }
            }
            for e in &v.edges {
                // Edges to containers attach to their cluster via a representative leaf is not
                // needed for reading; draw container ids as plain nodes.
                let style = match e.kind {
                    EdgeKind::Blocks => "",
                    EdgeKind::Related => " [style=dashed, arrowhead=none]",
                    EdgeKind::DiscoveredFrom => " [style=dotted, label=\"discovered\"]",
                };
                let _ = writeln!(s, "  \"{}\" -> \"{}\"{style};", e.from, e.to);
            }
            let _ = writeln!(s, "}}");
        }
    }
    s
}

fn change_summary(before: &Option<Value>, after: &Option<Value>) -> String {
    match (before, after) {
        (Some(b), Some(a)) if b.get("status").is_some() && a.get("status").is_some() => {
            let res = a
                .get("result")
                .and_then(Value::as_str)
                .map(|r| format!(" — {}", clip(r, 60)))
                .unwrap_or_default();
            format!(
                ": {} → {}{res}",
                b["status"].as_str().unwrap_or("?"),
                a["status"].as_str().unwrap_or("?")
            )
        }
        (_, Some(a)) => {
            let s = a.to_string();
            format!(" {}", clip(&s, 100))
        }
        (Some(b), None) => format!(" (was {})", clip(&b.to_string(), 100)),
        (None, None) => String::new(),
    }
}

async fn log(p: &Project, a: LogArgs, j: bool) -> Result<(), CliError> {
    let since = match a.since.as_deref() {
        None => None,
        Some(s) => Some(match Timestamp::parse_rfc3339(s) {
            Some(t) => t,
            None => p.now().saturating_sub(Millis::parse(s).map_err(|e| {
                CliError::invalid(format!("--since: {e}"))
                    .with_hint("or give an RFC 3339 time like 2026-03-01T09:00:00Z")
            })?),
        }),
    };
    let task = match &a.task {
        Some(t) => Some(resolve(p, t).await?),
        None => None,
    };
    let events = p
        .store
        .events(&EventQuery {
            since,
            task,
            limit: a.limit,
            ..Default::default()
        })
        .await?;
    if j {
        print_json(&events);
        return Ok(());
    }
    let mut s = String::new();
    for e in &events {
        let _ = writeln!(
            s,
            "{:>5} {} {:<14} {:<16} {}{}",
            e.seq,
            e.at,
            clip(&e.actor, 14),
            e.action,
            e.entity,
            change_summary(&e.before, &e.after)
        );
    }
    if s.is_empty() {
        note("no events");
    } else {
        out(&s);
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------
// session context

async fn session(p: &Project, c: SessionCmd, j: bool) -> Result<(), CliError> {
    match c {
        SessionCmd::Start { label } => {
            let label = label.unwrap_or_else(|| "session".into());
            let s = p.store.start_session(&label, &p.actor().await?).await?;
            if j {
                print_json(&s);
            } else {
                note(&format!("started session {} \"{}\"", s.id, s.label));
                outln(&s.id.to_string());
            }
        }
        SessionCmd::Resume => {
            let current = resume_session(p).await?;
            let v = view(p).await?;
            let brief = report::brief(&v, Some(&current));
            if j {
                print_json(
                    &json!({"session": current, "brief": brief, "ready": ids_json(&v.planned.ready), "counts": v.counts()}),
                );
            } else {
                out(&brief);
            }
        }
        SessionCmd::Status => {
            let current = p.store.current_session().await?;
            let m = p.store.metrics().await?;
            if j {
                print_json(&json!({"session": current, "metrics": m}));
            } else {
                match &current {
                    Some(s) => outln(&format!(
                        "session {} \"{}\" open since {} ({})",
                        s.id, s.label, s.started_at, s.actor
                    )),
                    None => outln("no open session (`downbeat session start` opens one)"),
                }
                outln(&format!(
                    "{} session(s) so far, {} decision(s), {} insight(s), {} task(s) completed",
                    m.sessions, m.decisions, m.insights, m.tasks_completed
                ));
            }
        }
        SessionCmd::End => {
            let Some(s) = p.store.current_session().await? else {
                return Err(CliError::not_found("no open session"));
            };
            let s = p.store.end_session(s.id, &p.actor().await?).await?;
            if j {
                print_json(&s);
            } else {
                note(&format!("ended session {}", s.id));
            }
        }
    }
    Ok(())
}

/// The open session, or a new one continuing the last.
pub(crate) async fn resume_session(
    p: &Project,
) -> Result<downbeat_core::context::Session, CliError> {
    Ok(match p.store.current_session().await? {
        Some(s) => s,
        None => {
            let prev = p.store.sessions().await?.last().map(|s| s.id.to_string());
            let label = prev
                .map(|x| format!("resumed after {x}"))
                .unwrap_or_else(|| "session".into());
            p.store.start_session(&label, &p.actor().await?).await?
        }
    })
}

async fn objective(p: &Project, c: ObjectiveCmd, j: bool) -> Result<(), CliError> {
    let set = |id: String, st: ObjectiveStatus| async move {
        let id = record(RecordKind::Objective, &id)?;
        let o = p
            .store
            .set_objective_status(id, st, &p.actor().await?)
            .await?;
        if j {
            print_json(&o);
        } else {
            outln(&format!("{} {}", o.id, o.status));
        }
        Ok::<(), CliError>(())
    };
    match c {
        ObjectiveCmd::Add { title, tasks } => {
            let mut ids = Vec::new();
            for t in &tasks {
                ids.push(resolve(p, t).await?);
            }
            let o = p
                .store
                .add_objective(&title, &ids, &p.actor().await?)
                .await?;
            if j {
                print_json(&o);
            } else {
                outln(&o.id.to_string());
            }
        }
        ObjectiveCmd::List => {
            let v = view(p).await?;
            if j {
                print_json(&v.objectives);
                return Ok(());
            }
            let rows: Vec<Vec<String>> = v
                .objectives
                .iter()
                .map(|o| {
                    let (d, t) = o
                        .tasks
                        .iter()
                        .filter_map(|t| v.rollup.get(t))
                        .fold((0, 0), |(d, t), p| (d + p.done, t + p.total));
                    let prog = if o.tasks.is_empty() {
                        "-".into()
                    } else {
                        format!("{d}/{t}")
                    };
                    vec![
                        o.id.to_string(),
                        o.status.to_string(),
                        prog,
                        o.title.clone(),
                    ]
                })
                .collect();
            if rows.is_empty() {
                note("no objectives yet");
            } else {
                out(&table(&["ID", "STATUS", "TASKS", "TITLE"], &rows));
            }
        }
        ObjectiveCmd::Done { id } => set(id, ObjectiveStatus::Achieved).await?,
        ObjectiveCmd::Drop { id } => set(id, ObjectiveStatus::Dropped).await?,
        ObjectiveCmd::Reopen { id } => set(id, ObjectiveStatus::Active).await?,
    }
    Ok(())
}

async fn insight(p: &Project, c: InsightCmd, j: bool) -> Result<(), CliError> {
    match c {
        InsightCmd::Add { text, task } => {
            let task = match task {
                Some(t) => Some(resolve(p, &t).await?),
                None => None,
            };
            let i = p.store.add_insight(&text, task, &p.actor().await?).await?;
            if j {
                print_json(&i);
            } else {
                outln(&i.id.to_string());
            }
        }
        InsightCmd::List => {
            let list = p.store.insights().await?;
            if j {
                print_json(&list);
            } else if list.is_empty() {
                note("no insights yet");
            } else {
                for i in list {
                    let task = i.task.map(|t| format!(" (task {t})")).unwrap_or_default();
                    outln(&format!("{} {}{task}", i.id, i.text));
                }
            }
        }
    }
    Ok(())
}

async fn decision(p: &Project, c: DecisionCmd, j: bool) -> Result<(), CliError> {
    match c {
        DecisionCmd::Add {
            text,
            why,
            supersedes,
            task,
        } => {
            let supersedes = supersedes
                .map(|s| record(RecordKind::Decision, &s))
                .transpose()?;
            let task = match task {
                Some(t) => Some(resolve(p, &t).await?),
                None => None,
            };
            let d = p
                .store
                .add_decision(&text, &why, task, supersedes, &p.actor().await?)
                .await?;
            if j {
                print_json(&d);
            } else {
                outln(&d.id.to_string());
            }
        }
        DecisionCmd::List => {
            let list = p.store.decisions().await?;
            if j {
                print_json(&list);
            } else if list.is_empty() {
                note("no decisions yet");
            } else {
                for d in list {
                    let sup = d
                        .superseded_by
                        .map(|x| format!(" [superseded by {x}]"))
                        .unwrap_or_default();
                    let why = if d.why.is_empty() {
                        String::new()
                    } else {
                        format!(" — {}", d.why)
                    };
                    outln(&format!("{} {}{why}{sup}", d.id, d.text));
                }
            }
        }
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------
// handover, maintenance, roles, metrics, bench

/// The integration report of `id` (or the project) and where it goes by default.
pub(crate) async fn render_synthesis(
    p: &Project,
    id: Option<&str>,
) -> Result<(String, std::path::PathBuf), CliError> {
    let root = match id {
        Some(s) => Some(resolve(p, s).await?),
        None => None,
    };
    let v = view(p).await?;
    let flags = raised_flags(p, &v).await?;
    let doc = report::synthesis(&v, root, &flags);
    let name = root
        .map(|r| format!("{r}.md"))
        .unwrap_or_else(|| "project.md".into());
    Ok((doc, p.dir().join("reports").join(name)))
}

pub(crate) fn write_report(target: &std::path::Path, doc: &str) -> Result<String, CliError> {
    if let Some(dir) = target.parent() {
        std::fs::create_dir_all(dir)?;
    }
    write_atomically(target, doc.as_bytes())?;
    Ok(target.display().to_string())
}

/// Writes an integration report and prints its path (or the report itself with `-o -`).
pub async fn synthesize(
    p: &Project,
    id: Option<&str>,
    output: Option<std::path::PathBuf>,
    j: bool,
) -> Result<String, CliError> {
    let (doc, default) = render_synthesis(p, id).await?;
    let target = output.unwrap_or(default);
    if target.as_os_str() == "-" {
        out(&doc);
        return Ok("-".into());
    }
    let shown = write_report(&target, &doc)?;
    if j {
        print_json(&json!({"path": shown, "bytes": doc.len()}));
    } else {
        outln(&shown);
    }
    Ok(shown)
}

/// Writes the report to its default place without printing; returns the path.
pub async fn synthesize_quiet(p: &Project, id: Option<&str>) -> Result<String, CliError> {
    let (doc, target) = render_synthesis(p, id).await?;
    write_report(&target, &doc)
}

async fn raised_flags(p: &Project, v: &ProjectView) -> Result<Vec<report::RaisedFlag>, CliError> {
    Ok(p.store
        .events(&EventQuery::default())
        .await?
        .into_iter()
        .filter(|e| e.action == "flag.raised")
        .filter_map(|e| {
            let task = p_task(v, &e.entity)?;
            let flag = e.after.as_ref()?.get("flag")?.as_str()?.to_owned();
            Some(report::RaisedFlag { task, flag })
        })
        .collect())
}

fn p_task(v: &ProjectView, entity: &str) -> Option<TaskId> {
    v.tasks
        .iter()
        .find(|t| t.id.to_string() == entity)
        .map(|t| t.id)
}

const HANDOVER_AT: &str = "handover.at_seq";
const HANDOVER_BASE: &str = "handover.baseline_seq";

/// The handover document as of now, and the bookkeeping needed to record writing it.
pub(crate) struct HandoverDoc {
    pub doc: String,
    /// The latest change the document covers.
    last: i64,
    /// The change covered by the previous handover, if any.
    at: Option<i64>,
    /// Decisions recorded after this change are listed as new.
    baseline: i64,
}

/// Renders the handover document without writing anything.
pub(crate) async fn handover_doc(p: &Project) -> Result<HandoverDoc, CliError> {
    let last = view::last_change(p.store.as_ref())
        .await?
        .map(|(s, _)| s)
        .unwrap_or(0);
    let parse = |v: Option<String>| v.and_then(|s| s.parse::<i64>().ok());
    let at = parse(p.store.meta_get(HANDOVER_AT).await?);
    let baseline = if at == Some(last) {
        // Nothing changed since the last handover: render the same document.
        parse(p.store.meta_get(HANDOVER_BASE).await?).unwrap_or(0)
    } else {
        at.unwrap_or(0)
    };
    let new_decisions: Vec<RecordId> = p
        .store
        .events(&EventQuery {
            after_seq: Some(baseline),
            ..Default::default()
        })
        .await?
        .into_iter()
        .filter(|e| e.action == "decision.added")
        .filter_map(|e| RecordId::parse(RecordKind::Decision, &e.entity))
        .collect();
    let v = view(p).await?;
    Ok(HandoverDoc {
        doc: report::handover(&v, &new_decisions),
        last,
        at,
        baseline,
    })
}

/// Writes the handover document to `target` (default .downbeat/handover.md; `-` writes
/// nothing) and records it; returns the path written (or `-`) and the document.
pub(crate) async fn write_handover(
    p: &Project,
    target: Option<std::path::PathBuf>,
) -> Result<(String, String), CliError> {
    let h = handover_doc(p).await?;
    let target = target.unwrap_or_else(|| p.dir().join("handover.md"));
    let to_stdout = target.as_os_str() == "-";
    if !to_stdout {
        write_atomically(&target, h.doc.as_bytes())?;
    }
    let path = if to_stdout {
        "-".to_owned()
    } else {
        target.display().to_string()
    };
    if h.at != Some(h.last) {
        p.store
            .meta_set(HANDOVER_BASE, &h.baseline.to_string())
            .await?;
        p.store.meta_set(HANDOVER_AT, &h.last.to_string()).await?;
        p.store
            .record_event(
                "handover.written",
                "handover",
                Some(json!({"path": path, "as_of_seq": h.last})),
                &p.actor().await?,
            )
            .await?;
    }
    Ok((path, h.doc))
}

async fn handover(p: &Project, a: HandoverArgs, j: bool) -> Result<(), CliError> {
    let (path, doc) = write_handover(p, a.output).await?;
    if path == "-" {
        out(&doc);
    } else if j {
        print_json(&json!({"path": path, "bytes": doc.len()}));
    } else {
        outln(&path);
    }
    Ok(())
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("out")
    ));
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| {
            CliError::new(
                code::STORAGE,
                format!("cannot write {}: {e}", path.display()),
            )
        })
}

/// What maintenance found, and what it did when applied.
pub(crate) struct Maintenance {
    pub findings: Vec<Finding>,
    pub integrity: downbeat_store::Integrity,
    pub actions: Vec<String>,
}

/// Reviews the project (stale tasks, archivable work, damage) and, with `apply`, acts on the
/// findings. Thresholds default to the configuration.
pub(crate) async fn maintenance(
    p: &Project,
    apply: bool,
    stale_after: Option<&str>,
    archive_after: Option<&str>,
) -> Result<Maintenance, CliError> {
    let dur = |what: &str, s: &str| {
        Millis::parse(s).map_err(|e| CliError::invalid(format!("{what}: {e}")))
    };
    let mut policy = Policy {
        stale_after: dur(
            "stale_after",
            stale_after.unwrap_or(&p.config.maintain.stale_after),
        )?,
        archive_after: dur(
            "archive_after",
            archive_after.unwrap_or(&p.config.maintain.archive_after),
        )?,
        ..Default::default()
    };
    for r in p.roles.iter() {
        if let Some(s) = &r.stale_after {
            policy
                .stale_after_role
                .insert(r.name.clone(), dur("stale_after", s)?);
        }
    }
    let tasks = p.store.tasks(&TaskFilter::default()).await?;
    let edges = p.store.graph().await?.edges;
    let findings = maintain::review(&tasks, &edges, p.now(), &policy);
    let integrity = p.store.integrity().await?;
    let mut actions: Vec<String> = Vec::new();
    if apply {
        let actor = p.actor().await?;
        for f in &findings {
            match f {
                Finding::StaleRunning { task, idle, .. } => {
                    let note_text =
                        format!("put back to pending by maintenance: no activity for {idle}");
                    p.store
                        .set_status(*task, Status::Pending, Some(&note_text), &actor)
                        .await?;
                    actions.push(format!("requeued {task}"));
                }
                Finding::Archive { root, tasks } => {
                    let n = p.store.archive(tasks, &actor).await?;
                    actions.push(format!("archived {n} task(s) under {root}"));
                }
                _ => {}
            }
        }
        if integrity != downbeat_store::Integrity::default() {
            let n = p.store.repair(&integrity, &actor).await?;
            actions.push(format!("repaired {n} dangling reference(s)"));
        }
        p.store.optimize().await?;
        p.store
            .record_event("maintain.optimized", "database", None, &actor)
            .await?;
        actions.push("optimised the database".into());
    }
    Ok(Maintenance {
        findings,
        integrity,
        actions,
    })
}

async fn maintain_cmd(p: &Project, a: MaintainArgs, j: bool) -> Result<(), CliError> {
    let Maintenance {
        findings,
        integrity,
        actions,
    } = maintenance(
        p,
        a.apply,
        a.stale_after.as_deref(),
        a.archive_after.as_deref(),
    )
    .await?;
    if j {
        print_json(
            &json!({"findings": findings, "integrity": integrity, "applied": a.apply, "actions": actions}),
        );
        return Ok(());
    }
    let mut s = String::new();
    for f in &findings {
        let line = match f {
            Finding::StaleRunning {
                task,
                idle,
                threshold,
            } => format!(
                "stale: {task} running with no activity for {idle} (threshold {threshold}) → requeue"
            ),
            Finding::StaleBlocked {
                task,
                idle,
                threshold,
            } => {
                format!("stale: {task} blocked for {idle} (threshold {threshold}) → needs a person")
            }
            Finding::Archive { root, tasks } => format!(
                "archive: {root} and its subtree ({} task(s)) finished long ago",
                tasks.len()
            ),
            Finding::Cycle { path } => format!(
                "damaged: dependency cycle {} → remove one edge with `downbeat dep rm`",
                ids_json(path).join(" → ")
            ),
            Finding::ParentLoop { tasks } => format!(
                "damaged: parent loop {} → fix with `downbeat edit ID --parent none`",
                ids_json(tasks).join(" → ")
            ),
        };
        let _ = writeln!(s, "{line}");
    }
    for (f, t, k) in &integrity.dangling_edges {
        let _ = writeln!(
            s,
            "damaged: {k} edge {f} → {t} points at a missing task → remove"
        );
    }
    for (t, parent) in &integrity.orphans {
        let _ = writeln!(s, "damaged: {t} has a missing parent (#{parent}) → detach");
    }
    for (r, t) in &integrity.dangling_links {
        let _ = writeln!(s, "damaged: {r} points at missing task #{t} → unlink");
    }
    if s.is_empty() {
        s.push_str("nothing to do: no stale tasks, no damage, nothing old enough to archive\n");
    }
    if a.apply {
        for act in &actions {
            let _ = writeln!(s, "done: {act}");
        }
    } else if findings.iter().any(Finding::is_fixable)
        || integrity != downbeat_store::Integrity::default()
    {
        s.push_str("(dry run: `downbeat maintain --apply` acts on the findings marked →)\n");
    }
    out(&s);
    Ok(())
}

fn roles(p: &Project, a: RolesArgs, j: bool) -> Result<(), CliError> {
    match a.name {
        Some(n) => {
            let r = p.roles.get(&n).ok_or_else(|| {
                CliError::not_found(format!("no role `{n}`"))
                    .with_hint(format!("known roles: {}", p.roles.names().join(", ")))
            })?;
            if j {
                print_json(r);
            } else {
                let cap = r
                    .max_parallel
                    .map(|c| format!("\nmax parallel: {c}"))
                    .unwrap_or_default();
                out(&format!(
                    "{} ({})\n{}{cap}\n\nprompt template:\n{}\n",
                    r.name,
                    r.source,
                    r.description,
                    r.prompt.trim_end()
                ));
            }
        }
        None => {
            let list: Vec<_> = p.roles.iter().collect();
            if j {
                print_json(&list);
            } else {
                let rows: Vec<Vec<String>> = list
                    .iter()
                    .map(|r| {
                        vec![
                            r.name.clone(),
                            r.max_parallel
                                .map(|c| c.to_string())
                                .unwrap_or_else(|| "-".into()),
                            r.source.clone(),
                            r.description.clone(),
                        ]
                    })
                    .collect();
                out(&table(&["ROLE", "MAX", "SOURCE", "DESCRIPTION"], &rows));
            }
        }
    }
    Ok(())
}

async fn metrics(p: &Project, j: bool) -> Result<(), CliError> {
    let m = p.store.metrics().await?;
    if j {
        print_json(&m);
        return Ok(());
    }
    let pct = |x: Option<f64>| {
        x.map(|x| format!("{:.0}%", x * 100.0))
            .unwrap_or_else(|| "n/a".into())
    };
    out(&format!(
        "tasks completed:         {}\ntasks failed:            {}\nsuccess rate:            {}\nparallel execution rate: {}\nsessions:                {}\ndecisions:               {}\ninsights:                {}\nevents:                  {}\n",
        m.tasks_completed,
        m.tasks_failed,
        pct(m.success_rate),
        pct(m.parallel_execution_rate),
        m.sessions,
        m.decisions,
        m.insights,
        m.events
    ));
    Ok(())
}

fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn bench(b: BenchCmd, j: bool) -> Result<(), CliError> {
    let BenchCmd::Plan { tasks, edges, seed } = b else {
        return Err(CliError::new(code::INTERNAL, "not a planner benchmark"));
    };
    if tasks == 0 {
        return Err(CliError::invalid("--tasks must be at least 1"));
    }
    use downbeat_core::planner::{PlanOptions, analyze, random_graph};
    let t0 = std::time::Instant::now();
    let builder = random_graph(tasks, edges, seed);
    let generated = t0.elapsed();
    let t1 = std::time::Instant::now();
    let dag = builder.build().map_err(|c| {
        CliError::new(
            code::INTERNAL,
            format!("the generated graph has a cycle of {} nodes", c.path.len()),
        )
    })?;
    let built = t1.elapsed();
    let t2 = std::time::Instant::now();
    let a = analyze(
        &dag,
        &PlanOptions {
            group_caps: vec![],
            workers: vec![1, 4, 16],
        },
    );
    let analysed = t2.elapsed();
    let rss = peak_rss_mb();
    if j {
        print_json(&json!({
            "tasks": tasks, "edges": edges, "seed": seed,
            "generate_ms": generated.as_secs_f64() * 1e3,
            "build_ms": built.as_secs_f64() * 1e3,
            "analyze_ms": analysed.as_secs_f64() * 1e3,
            "waves": a.waves.len(), "critical_path_effort": a.critical_path_effort,
            "max_parallelism": a.max_parallelism, "peak_rss_mb": rss,
        }));
    } else {
        outln(&format!(
            "{tasks} tasks, {} edges: generate {:.0} ms, build {:.0} ms, analyze {:.0} ms, plan (build + analyze) {:.0} ms; {} waves, critical path {} units, max parallelism {}; peak RSS {}",
            dag.edge_count(),
            generated.as_secs_f64() * 1e3,
            built.as_secs_f64() * 1e3,
            analysed.as_secs_f64() * 1e3,
            (built + analysed).as_secs_f64() * 1e3,
            a.waves.len(),
            a.critical_path_effort,
            a.max_parallelism,
            rss.map(|r| format!("{r:.0} MB"))
                .unwrap_or_else(|| "n/a".into())
        ));
    }
    Ok(())
}
