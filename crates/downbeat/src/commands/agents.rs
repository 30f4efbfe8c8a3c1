//! `downbeat agents`, `agents check`, `logs`.

use downbeat_app::error::Error;
use downbeat_app::project::Project;
use downbeat_app::{agents, logs};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::cli::{AgentsArgs, AgentsCmd, LogsArgs};
use crate::output::{json as print_json, note, outln, table};
use crate::run_cmd::check_line;

pub(super) async fn agents(p: &Project, a: AgentsArgs, j: bool) -> Result<(), Error> {
    match a.cmd {
        None => list(p, j).await,
        Some(AgentsCmd::Check { executor }) => check(p, executor, j).await,
        Some(AgentsCmd::Export(_)) => Err(Error::internal(
            "`agents export` is handled before the project opens",
        )),
    }
}

async fn list(p: &Project, j: bool) -> Result<(), Error> {
    let list = agents::list(p).await?;
    if j {
        print_json(&list);
        return Ok(());
    }
    let yes = |b: bool| if b { "yes" } else { "-" }.to_owned();
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|a| {
            let state = match (&a.check.problem, &a.check.version) {
                (Some(_), _) => "not installed".to_owned(),
                (None, Some(v)) => v.clone(),
                (None, None) => "installed".to_owned(),
            };
            vec![
                a.name.to_owned(),
                a.about.title.to_owned(),
                state,
                a.about.versions.join(", "),
                yes(a.about.resumes),
                yes(a.about.reports_cost),
                yes(a.about.takes_mcp),
            ]
        })
        .collect();
    crate::output::out(&table(
        &[
            "AGENT",
            "CLI",
            "FOUND",
            "PROFILE FOR",
            "RESUMES",
            "COST",
            "MCP",
        ],
        &rows,
    ));
    for a in &list {
        if let Some(w) = &a.check.warning {
            note(&format!("{}: {w}", a.name));
        }
        if a.check.problem.is_some() {
            note(&format!("{}: install with `{}`", a.name, a.about.install));
        }
    }
    note(
        "permissions: reviewers and researchers read, other roles edit ([roles.NAME] permission = \"read\" | \"edit\" | \"full\"); see docs/agents.md",
    );
    Ok(())
}

async fn check(p: &Project, executor: Option<String>, j: bool) -> Result<(), Error> {
    let checks = agents::check(p, executor).await?;
    if j {
        print_json(&json!({ "checks": checks }));
    } else if checks.is_empty() {
        outln("nothing pending needs a program (noop and HTTP executors only)");
    } else {
        for c in &checks {
            outln(&check_line(c));
        }
    }
    downbeat_app::runs::preflight::refuse_problems(&checks)
}

pub(super) async fn logs(p: &Project, a: LogsArgs, j: bool) -> Result<(), Error> {
    let src = logs::source(p, &a.id, a.attempt).await?;
    let cancel = CancellationToken::new();
    let c2 = cancel.clone();
    tokio::spawn(async move {
        crate::signals::stopped().await;
        c2.cancel();
    });
    let raw = a.raw || j;
    let mut show = |line: &str| {
        if j {
            outln(&json!({"task": src.task, "attempt": src.attempt, "line": line}).to_string());
        } else if raw {
            outln(line);
        } else if let Some(r) = src.render(line) {
            outln(&r);
        }
    };
    logs::read(p, &src, a.follow, &cancel, &mut show).await?;
    if !j {
        let err = std::fs::read_to_string(src.stderr()).unwrap_or_default();
        let tail: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        if !tail.is_empty() {
            note(&format!("stderr ({} lines, last shown):", tail.len()));
            for l in &tail[tail.len().saturating_sub(10)..] {
                note(&format!("  {l}"));
            }
        }
        note(&format!("raw output: {}", src.dir.display()));
    }
    Ok(())
}
