//! `downbeat run`, `retry` and `attempts`: the CLI side of the execution engine — resolving
//! executors from the configuration, the progress display, Ctrl-C.

use std::collections::HashMap;

use downbeat_engine::run::RunOptions;
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::cli::RunArgs;
use crate::error::{Error, Kind};
use crate::output::{json as print_json, note, outln, table};
use downbeat_app::documents::write_synthesis;
use downbeat_app::project::Project;
use downbeat_app::runs::{RunRequest, outcome, preflight, run_here, run_options};

/// The application layer's request for these arguments.
pub fn request(a: &RunArgs) -> RunRequest {
    RunRequest {
        concurrency: a.concurrency,
        only: a.only.clone(),
        until: a.until.clone(),
        executor: a.executor.clone().or_else(|| a.agent.clone()),
    }
}

pub async fn run_cmd(p: &Project, a: RunArgs, j: bool) -> Result<(), Error> {
    let req = request(&a);
    let opts = run_options(p, &req).await?;
    if a.dry_run {
        return dry_run(p, &opts, j).await;
    }
    if !a.local {
        let live = crate::worker_cmd::live_workers(p).await?;
        if !live.is_empty() {
            use downbeat_app::runs::follow::Followed;
            match crate::worker_cmd::watch_workers(p, &live, j).await? {
                Followed::Done => return Ok(()),
                // What the workers left (their expired leases included) runs here.
                Followed::WorkersGone => {}
            }
        }
    }
    for c in preflight::require(p, &opts).await? {
        if let Some(w) = &c.warning {
            note(&format!("warning: {w}"));
        }
    }
    let page = match a.serve.clone() {
        Some(addr) => Some(crate::web_cmd::bind_beside_run(p.duplicate(), addr).await?),
        None => None,
    };
    // Stops this run's agents at once if this process is killed.
    let guard = crate::guard::start(&opts.holder);
    let cancel = CancellationToken::new();
    crate::signals::stop_on_signals(cancel.clone());
    crate::output::cancel_on_closed_stdout(cancel.clone());
    let page_stop = CancellationToken::new();
    let page = page.map(|s| crate::web_cmd::spawn(s, page_stop.clone()));
    let (tx, show_rx) = mpsc::unbounded_channel();
    let runs = crate::output::verbose().then(|| p.dir().join("runs"));
    let display = tokio::spawn(crate::progress::show_events(show_rx, j, runs));
    let holder = opts.holder.clone();
    let (result, reports) = run_here(p, opts, tx, cancel).await;
    let failures = display.await.unwrap_or_default();
    if !j {
        failure_notes(p, &failures).await;
    }
    page_stop.cancel();
    if let Some(h) = page {
        let _ = h.await;
    }
    drop(guard);
    for (task, path) in &reports {
        if j {
            outln(&json!({"event": "container-report", "task": task, "path": path}).to_string());
        } else {
            note(&format!("integration report for {task}: {path}"));
        }
    }
    if !j {
        spend_note(p, holder).await;
    }
    if result.is_ok() && !j {
        // The run's integration report, next to the others.
        let scope = req.scope();
        if let Ok(path) = write_synthesis(p, scope.as_deref()).await {
            note(&format!("integration report: {path}"));
        }
    }
    if result.is_ok() && p.config.memory.sync_on_run {
        memory_note(p, j).await;
    }
    let summary = result?;
    outcome(&summary)
}

/// The tasks that failed, told again after the run with the last lines of their output.
async fn failure_notes(p: &Project, failures: &[crate::progress::Failure]) {
    use crate::style::{On, Tone, paint};
    if failures.is_empty() {
        return;
    }
    let mut s = format!(
        "{} ({}):",
        paint("failed", Tone::Bad, On::Err),
        failures.len()
    );
    for f in failures {
        let err = f
            .error
            .as_deref()
            .map(|e| format!(": {e}"))
            .unwrap_or_default();
        s.push_str(&format!("\n  {} {}{err}", f.task, f.title));
        let lines = if crate::output::verbose() { 30 } else { 5 };
        for line in downbeat_app::logs::tail(p, &f.task, lines)
            .await
            .unwrap_or_default()
        {
            let line: String = line.chars().take(160).collect();
            s.push_str(&format!("\n    {} {line}", paint("│", Tone::Dim, On::Err)));
        }
    }
    let first = &failures[0].task;
    s.push_str(&format!(
        "\n  `downbeat logs {first}` shows the whole output; `downbeat retry {first}` puts it back to run again"
    ));
    note(&s);
}

/// `[memory] sync_on_run`: the memory files synced at the end of a run, said on stderr (a
/// failure is a warning: the run's own outcome stands).
async fn memory_note(p: &Project, j: bool) {
    match downbeat_app::memory::sync(p, &Default::default()).await {
        Ok(done) if !j => {
            for f in done.files.iter().filter(|f| f.change != "unchanged") {
                note(&format!("memory file {}: {}", f.change, f.path));
            }
        }
        Ok(_) => {}
        Err(e) => note(&format!("warning: memory files not synced: {}", e.message)),
    }
}

/// What this run's attempts spent, when an agent reported tokens.
async fn spend_note(p: &Project, holder: String) {
    let filter = downbeat_app::views::SpendFilter {
        scope: None,
        holder: Some(holder),
    };
    let Ok(rows) = downbeat_app::views::spend(p, &filter).await else {
        return;
    };
    let mut total = downbeat_core::report::RoleSpend::default();
    for r in &rows {
        total.add(r);
    }
    if total.tokens_in + total.tokens_out == 0 && total.cost_usd.is_none() {
        return;
    }
    let cost = total
        .cost_usd
        .map(|c| format!(", ${c:.4}"))
        .unwrap_or_default();
    note(&format!(
        "spent: {} in / {} out tokens over {} attempt(s){cost} (`downbeat metrics` per role)",
        total.tokens_in, total.tokens_out, total.attempts
    ));
}

async fn dry_run(p: &Project, opts: &RunOptions, j: bool) -> Result<(), Error> {
    let tasks = p.store.tasks(&Default::default()).await?;
    let snap = p.store.graph().await?;
    let planned = downbeat_core::graph::plan(&snap, &p.plan_settings())
        .map_err(|c| Error::new(Kind::Conflict, c.to_string()))?;
    let by_id: HashMap<_, _> = tasks.iter().map(|t| (t.id, t)).collect();
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    for (i, w) in planned.waves.iter().enumerate() {
        for id in w {
            let Some(t) = by_id.get(id) else { continue };
            let exec = match (opts.resolve)(t) {
                Ok(r) => r.name,
                Err(e) => {
                    problems.push(format!("task {} ({}): {e}", t.id, t.title));
                    "?".into()
                }
            };
            rows.push((
                i + 1,
                t.id,
                t.role.clone().unwrap_or_else(|| "-".into()),
                exec,
                t.title.clone(),
            ));
        }
    }
    // What the executors need is checked once each of them resolves.
    let checks = if problems.is_empty() {
        preflight::checks(p, opts).await?
    } else {
        Vec::new()
    };
    if j {
        print_json(&json!({
            "waves": rows.iter().map(|(w, id, role, exec, title)| json!({"wave": w, "task": id, "role": role, "executor": exec, "title": title})).collect::<Vec<_>>(),
            "problems": problems,
            "checks": checks,
            "concurrency": opts.concurrency,
        }));
    } else {
        let r: Vec<Vec<String>> = rows
            .iter()
            .map(|(w, id, role, exec, title)| {
                vec![
                    w.to_string(),
                    id.to_string(),
                    role.clone(),
                    exec.clone(),
                    title.clone(),
                ]
            })
            .collect();
        crate::output::out(&table(&["WAVE", "ID", "ROLE", "EXECUTOR", "TITLE"], &r));
        note(&format!(
            "dry run: {} task(s) would run, at most {} at once; nothing was started",
            rows.len(),
            opts.concurrency
        ));
    }
    if let Some(first) = problems.first() {
        return Err(Error::invalid(format!(
            "{} task(s) cannot run: {first}",
            problems.len()
        )));
    }
    if !j {
        for c in &checks {
            note(&check_line(c));
        }
    }
    preflight::refuse_problems(&checks)
}

/// One line of a preflight: what was checked and what was found.
pub fn check_line(c: &downbeat_engine::executor::agent::Check) -> String {
    let what = match c.agent {
        Some(k) => format!("{} ({})", c.program, k.about().title),
        None => c.program.clone(),
    };
    match (&c.problem, &c.warning, &c.version) {
        (Some(p), _, _) => format!("✗ {what}: {p}"),
        (None, Some(w), _) => format!("! {what}: {w}"),
        (None, None, Some(v)) => format!("✓ {what} {v}"),
        (None, None, None) => format!("✓ {what}"),
    }
}

/// Renders the event stream: JSON lines on stdout with `--json`, bars on a terminal, plain lines
/// otherwise.
/// Shows a run's events: bars on a terminal, a line per event otherwise, JSON with `--json`.
pub async fn attempts(p: &Project, id: &str, j: bool) -> Result<(), Error> {
    let (id, list) = downbeat_app::runs::attempts(p, id).await?;
    if j {
        print_json(&list);
        return Ok(());
    }
    if list.is_empty() {
        note(&format!("task {id} has no attempts yet"));
        return Ok(());
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|at| {
            let a = &at.record;
            let took = a
                .ended_at
                .map(|e| format!("{:.1}s", (e.0 - a.started_at.0) as f64 / 1000.0))
                .unwrap_or_else(|| "running".into());
            let tokens = match (a.tokens_prompt, a.tokens_completion) {
                (Some(p), Some(c)) => format!("{p}+{c}"),
                _ => "-".into(),
            };
            let cost = at
                .agent
                .as_ref()
                .and_then(|r| r.output.cost_usd)
                .map_or_else(|| "-".into(), |c| format!("${c:.4}"));
            vec![
                a.number.to_string(),
                a.outcome.clone().unwrap_or_else(|| "running".into()),
                a.exit_code
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "-".into()),
                took,
                a.executor.clone(),
                a.worker.clone(),
                tokens,
                cost,
                a.error
                    .clone()
                    .or_else(|| a.summary.clone())
                    .unwrap_or_default(),
            ]
        })
        .collect();
    crate::output::out(&table(
        &[
            "#", "OUTCOME", "EXIT", "TIME", "EXECUTOR", "WORKER", "TOKENS", "COST", "DETAIL",
        ],
        &rows,
    ));
    note(&format!(
        "output of each attempt: {}",
        p.dir().join("runs").join(id.to_string()).display()
    ));
    Ok(())
}
