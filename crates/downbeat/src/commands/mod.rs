//! The commands: one file per area, each parsing its arguments into a request of the
//! application layer (`downbeat-app`) and rendering the answer as text or `--json`. This module
//! dispatches and resolves what only the CLI knows: the environment and the working directory.

mod agents;
mod context;
mod documents;
mod drafting;
mod export;
mod follow;
mod holds;
mod info;
mod init;
mod memory;
mod patterns;
mod plan;
mod render;
mod rules;
mod session_context;
mod show;
mod tasks;
mod templates;
mod views;
mod worktrees;

use downbeat_app::project::{self, Globals};
use downbeat_core::task::Status;
use downbeat_core::time::Timestamp;

use crate::cli::*;
use crate::error::Error;
use crate::output::note;

use context::{decision, insight, objective, session};
use documents::{handover, maintain_cmd, synthesize};
use downbeat_app::tasks::split_command;
use holds::{holds, pause, unpause};
use info::{bench, metrics, roles};
use init::init;
use plan::{check_file, new_plan, plan_cmd};
use show::show;
use tasks::{add, dep, done, edit, list, start, transition};
use views::{blocked, graph, log, ready, status, waves};

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// What selects the project and who acts, from the options and the environment
/// (`DOWNBEAT_DATABASE_URL`, `DOWNBEAT_ACTOR`, `USER`, `DOWNBEAT_NOW`).
pub fn globals(cli: &Cli) -> Result<Globals, Error> {
    let fixed_now = match env("DOWNBEAT_NOW") {
        None => None,
        Some(v) => Some(Timestamp::parse_rfc3339(&v).ok_or_else(|| {
            Error::invalid(format!(
                "DOWNBEAT_NOW=`{v}` is not an RFC 3339 time (e.g. 2026-03-01T09:00:00Z)"
            ))
        })?),
    };
    Ok(Globals {
        db: cli.db.clone().or_else(|| env("DOWNBEAT_DATABASE_URL")),
        project: cli.project.clone(),
        actor: explicit_actor(cli)
            .or_else(|| env("USER").map(|u| format!("cli:{u}")))
            .unwrap_or_else(|| "cli".into()),
        fixed_now,
        cwd: std::env::current_dir()?,
        secrets: project::Secrets::new(|name: &str| std::env::var_os(name))
            .with_known(known_secrets()),
        host: project::HostFacts {
            exe: std::env::current_exe().ok(),
            search_path: std::env::var_os("PATH"),
        },
    })
}

/// The values of environment variables whose names say they hold a secret (`*_API_KEY`,
/// `*_TOKEN`, `*_SECRET`, `*_PASSWORD`, `*_ACCESS_KEY`…): masked in what agents leave behind.
fn known_secrets() -> Vec<String> {
    const MARKS: [&str; 6] = [
        "API_KEY",
        "TOKEN",
        "SECRET",
        "PASSWORD",
        "ACCESS_KEY",
        "PRIVATE_KEY",
    ];
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .filter(|(k, _)| {
            let k = k.to_ascii_uppercase();
            MARKS.iter().any(|m| k.contains(m))
        })
        .map(|(_, v)| v)
        .collect()
}

/// `--actor` or `DOWNBEAT_ACTOR`, when given.
fn explicit_actor(cli: &Cli) -> Option<String> {
    cli.actor.clone().or_else(|| env("DOWNBEAT_ACTOR"))
}

/// Opens the project, telling the user when its schema was upgraded.
async fn open(g: &Globals) -> Result<project::Project, Error> {
    let p = project::open(g).await?;
    if let Some(b) = &p.store.info().backup {
        note(&format!(
            "the database schema was upgraded; a backup of the old database is at {b}"
        ));
    }
    Ok(p)
}

pub async fn dispatch(cli: Cli) -> Result<(), Error> {
    let g = globals(&cli)?;
    let cli_actor = explicit_actor(&cli);
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
                    .map_err(Error::invalid)?;
                crate::bench::bench_run(tasks, shape, concurrency.max(1), keep, argv, j).await
            }
            BenchCmd::Recover {
                tasks,
                database,
                concurrency,
            } => crate::bench::bench_recover(tasks, database, concurrency.max(1), j).await,
            BenchCmd::Workers(a) => crate::bench_workers::bench_workers(&a, j).await,
            BenchCmd::Chaos(a) => crate::bench_chaos::bench_chaos(&a, j).await,
            BenchCmd::Worktrees {
                files,
                tasks,
                samples,
                concurrency,
                keep,
            } => {
                crate::bench_worktrees::bench_worktrees(
                    files,
                    tasks,
                    samples.max(1),
                    concurrency.max(1),
                    keep,
                    j,
                )
                .await
            }
            plan => bench(plan, j),
        };
    }
    if let Command::Mcp(a) = cli.command {
        return match a.command {
            Some(crate::cli::McpCmd::Install(i)) => crate::clients::install(&g, i, j),
            Some(McpCmd::Serve(s)) => serve_mcp(&g, &cli_actor, s).await,
            None => serve_mcp(&g, &cli_actor, a.serve).await,
        };
    }
    if let Command::Agents(crate::cli::AgentsArgs {
        cmd: Some(crate::cli::AgentsCmd::Export(e)),
    }) = cli.command
    {
        return crate::clients::export(&g, e, j);
    }
    if let Command::Db(c) = cli.command {
        return crate::db_cmd::command(c, j).await;
    }
    if let Command::Export(a) = cli.command {
        return export::export(&g, a, j).await;
    }
    if let Command::Import(a) = cli.command {
        return export::import(&g, a, j).await;
    }
    if let Command::Template(c) = cli.command {
        return template(&g, c, j).await;
    }
    if let Command::Plan(c) = cli.command {
        return plan(&g, c, j).await;
    }
    let p = open(&g).await?;
    match cli.command {
        Command::Init
        | Command::Bench(_)
        | Command::Mcp(_)
        | Command::Db(_)
        | Command::Plan(_)
        | Command::Export(_)
        | Command::Import(_)
        | Command::Template(_)
        | Command::GuardAgents { .. }
        | Command::Completions { .. }
        | Command::Man
        | Command::Schema { .. } => unreachable_command(),
        Command::Add(a) => add(&p, a, j).await,
        Command::Edit(a) => edit(&p, a, j).await,
        Command::Show(a) => show(&p, &a.id, j).await,
        Command::List(a) => list(&p, a, j).await,
        Command::Start(a) => start(&p, a, j).await,
        Command::Done(a) => done(&p, a, j).await,
        Command::Fail(a) => transition(&p, &a.id, Status::Failed, a.reason, false, j).await,
        Command::Block(a) => transition(&p, &a.id, Status::Blocked, a.reason, false, j).await,
        Command::Unblock(a) => transition(&p, &a.id, Status::Pending, None, false, j).await,
        Command::Skip(a) => transition(&p, &a.id, Status::Skipped, a.note, false, j).await,
        Command::Cancel(a) => transition(&p, &a.id, Status::Cancelled, a.note, false, j).await,
        Command::Reopen(a) => transition(&p, &a.id, Status::Pending, None, false, j).await,
        Command::Run(a) => crate::run_cmd::run_cmd(&p, a, j).await,
        Command::Serve(a) => {
            let maintain = match downbeat_app::maintenance::schedule(&p)? {
                Some(s) => Some((open(&g).await?, s)),
                None => None,
            };
            crate::web_cmd::serve(p, maintain, a, j).await
        }
        Command::Worker(a) => crate::worker_cmd::worker(&p, a, j).await,
        Command::Workers => crate::worker_cmd::workers(&p, j).await,
        Command::Pause(a) => pause(&p, &a.reason, j).await,
        Command::Unpause(a) => unpause(&p, a.hold, j).await,
        Command::Holds => holds(&p, j).await,
        Command::Retry(a) => transition(&p, &a.id, Status::Pending, None, false, j).await,
        Command::Attempts(a) => crate::run_cmd::attempts(&p, &a.id, j).await,
        Command::Logs(a) => agents::logs(&p, a, j).await,
        Command::Agents(a) => agents::agents(&p, a, j).await,
        Command::Diff(a) => worktrees::diff(&p, a, j).await,
        Command::Land(a) => worktrees::land(&p, a, j).await,
        Command::Worktrees(a) => worktrees::worktrees(&p, a, j).await,
        Command::Dep(c) => dep(&p, c, j).await,
        Command::Ready(a) => ready(&p, a, j).await,
        Command::Blocked => blocked(&p, j).await,
        Command::Waves(a) => waves(&p, a, j).await,
        Command::Status(a) if a.watch => views::watch_status(&p, j).await,
        Command::Status(_) => status(&p, j).await,
        Command::Graph(a) => graph(&p, a, j).await,
        Command::Log(a) => log(&p, a, j).await,
        Command::Session(c) => session(&p, c, j).await,
        Command::Objective(c) => objective(&p, c, j).await,
        Command::Insight(c) => insight(&p, c, j).await,
        Command::Decision(c) => decision(&p, c, j).await,
        Command::Context => session_context::context(&p, j).await,
        Command::Synthesize(a) => synthesize(&p, a.id.as_deref(), a.output, j)
            .await
            .map(|_| ()),
        Command::Handover(a) => handover(&p, a, j).await,
        Command::Maintain(a) => maintain_cmd(&p, a, j).await,
        Command::Roles(a) => roles(&p, a, j),
        Command::Rules(a) => rules::rules_cmd(&p, a, j),
        Command::Memory(c) => memory::memory_cmd(&p, c, j).await,
        Command::Metrics => metrics(&p, j).await,
        Command::Patterns(a) => patterns::patterns_cmd(&p, a, j).await,
    }
}

/// `downbeat template …`: applying needs the project; listing and showing do not.
async fn template(g: &Globals, c: TemplateCmd, j: bool) -> Result<(), Error> {
    match c {
        TemplateCmd::Apply { name, set, dry_run } => {
            templates::apply(&open(g).await?, &name, &set, dry_run, j).await
        }
        c => templates::browse(project::find_root(g).ok().as_deref(), c, j),
    }
}

/// `downbeat plan …`: `check` and `new` work outside a project too.
async fn plan(g: &Globals, c: PlanCmd, j: bool) -> Result<(), Error> {
    let in_project = g.db.is_some() || project::find_root(g).is_ok();
    match c {
        PlanCmd::Check { file, format } if !in_project => check_file(&file, format, j),
        PlanCmd::New {
            output,
            format,
            force,
            template: None,
            ..
        } => new_plan(output.as_deref(), format, force, j),
        PlanCmd::New {
            output,
            format,
            force,
            template: Some(name),
            set,
        } => {
            let root = project::find_root(g).ok();
            let t = templates::Target {
                output: output.as_deref(),
                format,
                force,
            };
            templates::new_from(root.as_deref(), &name, &set, &t, j)
        }
        PlanCmd::Draft(a) => drafting::draft(&open(g).await?, a, j).await,
        PlanCmd::Expand(a) => drafting::expand(&open(g).await?, a, j).await,
        c => plan_cmd(&open(g).await?, c, j).await,
    }
}

fn unreachable_command() -> Result<(), Error> {
    Err(Error::internal("command dispatched twice"))
}

// ------------------------------------------------------------------------------------------
// Helpers

// ------------------------------------------------------------------------------------------
// init, plan

// ------------------------------------------------------------------------------------------
// tasks

// ------------------------------------------------------------------------------------------
// planning views

// ------------------------------------------------------------------------------------------
// session context

// ------------------------------------------------------------------------------------------
// handover, maintenance, roles, metrics, bench

/// `downbeat mcp [serve]`: the MCP server with what this command line and environment say.
async fn serve_mcp(g: &Globals, actor: &Option<String>, a: McpServeArgs) -> Result<(), Error> {
    let profile = a.profile.map(|p| match p {
        McpProfile::Default => downbeat_mcp::Profile::Default,
        McpProfile::Full => downbeat_mcp::Profile::Full,
    });
    let options = downbeat_mcp::ServeOptions {
        token: a.http.as_ref().and_then(|_| env(&a.token_env)),
        http: a.http,
        token_env: a.token_env,
        profile,
        actor: actor.clone(),
        task: a.task.or_else(|| env("DOWNBEAT_MCP_TASK")),
    };
    // Over HTTP the server is a long-running process: it runs the maintenance schedule too
    // (outside a project, or for an agent's own server, there is none).
    let mut maintain = None;
    if options.http.is_some()
        && options.task.is_none()
        && let Ok(p) = open(g).await
    {
        maintain = downbeat_app::maintenance::schedule(&p)?.map(|s| (p, s));
    }
    let holder = crate::schedule::holder("mcp");
    let schedule = maintain.as_ref().map(|(p, s)| (p, *s));
    crate::schedule::alongside(schedule, &holder, downbeat_mcp::serve(g, options)).await
}
