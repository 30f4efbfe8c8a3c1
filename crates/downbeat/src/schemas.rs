//! The JSON Schemas (draft 2020-12) of what commands print under `--json`, kept in
//! `docs/schemas/` and embedded here; `downbeat schema [COMMAND]` prints them (docs/json.md).

use crate::error::{Error, Kind};
use crate::output::{json as print_json, out, outln, table};

/// The schema of the error envelope every command prints when it fails under `--json`.
pub const ERROR: &str = "error";

/// Each command that prints JSON (its words, as typed after `downbeat`) and the schema
/// (a file of `docs/schemas/` without `.json`) its output follows. Several commands that
/// answer alike share one.
pub const COMMANDS: &[(&str, &str)] = &[
    ("init", "init"),
    ("plan apply", "plan-apply"),
    ("plan check", "plan-check"),
    ("plan new", "plan-new"),
    ("plan draft", "plan-draft"),
    ("plan expand", "plan-draft"),
    ("add", "task"),
    ("edit", "task"),
    ("show", "show"),
    ("list", "tasks"),
    ("start", "state-change"),
    ("done", "state-change"),
    ("fail", "state-change"),
    ("block", "state-change"),
    ("unblock", "state-change"),
    ("skip", "state-change"),
    ("cancel", "state-change"),
    ("reopen", "state-change"),
    ("retry", "state-change"),
    ("run", "run"),
    ("worker", "worker"),
    ("workers", "workers"),
    ("pause", "hold"),
    ("unpause", "holds"),
    ("holds", "holds"),
    ("attempts", "attempts"),
    ("logs", "logs"),
    ("diff", "diff"),
    ("land", "land"),
    ("worktrees", "worktrees"),
    ("agents", "agents"),
    ("agents check", "agents-check"),
    ("agents export", "agents-export"),
    ("dep add", "dep"),
    ("dep rm", "dep"),
    ("ready", "tasks"),
    ("blocked", "blocked"),
    ("waves", "waves"),
    ("status", "status"),
    ("graph", "graph"),
    ("log", "log"),
    ("session start", "session"),
    ("session resume", "session-resume"),
    ("session status", "session-status"),
    ("session end", "session"),
    ("objective add", "objective"),
    ("objective list", "objectives"),
    ("objective link", "objective"),
    ("objective done", "objective"),
    ("objective drop", "objective"),
    ("objective reopen", "objective"),
    ("insight add", "insight"),
    ("insight list", "insights"),
    ("decision add", "decision"),
    ("decision propose", "decision"),
    ("decision accept", "decision"),
    ("decision reject", "decision"),
    ("decision list", "decisions"),
    ("context", "context"),
    ("synthesize", "document"),
    ("handover", "document"),
    ("maintain", "maintain"),
    ("roles", "roles"),
    ("rules", "rules"),
    ("rules list", "rules"),
    ("rules add", "rules-add"),
    ("rules rm", "rules-rm"),
    ("memory sync", "memory-sync"),
    ("metrics", "metrics"),
    ("patterns", "patterns"),
    ("export", "export"),
    ("import", "import"),
    ("template list", "templates"),
    ("template show", "template"),
    ("template apply", "template-apply"),
    ("bench plan", "bench-plan"),
    ("bench run", "bench-run"),
    ("bench workers", "bench-workers"),
    ("bench worktrees", "bench-worktrees"),
    ("bench recover", "bench-recover"),
    ("serve", "serve"),
    ("mcp install", "mcp-install"),
    ("db migrate", "db-migrate"),
    ("schema", "schema"),
    ("error", ERROR),
];

/// Every schema file, by name.
const FILES: &[(&str, &str)] = &[
    ("agents-check", include_str!("../../../docs/schemas/agents-check.json")),
    ("agents-export", include_str!("../../../docs/schemas/agents-export.json")),
    ("agents", include_str!("../../../docs/schemas/agents.json")),
    ("attempts", include_str!("../../../docs/schemas/attempts.json")),
    ("bench-plan", include_str!("../../../docs/schemas/bench-plan.json")),
    ("bench-recover", include_str!("../../../docs/schemas/bench-recover.json")),
    ("bench-run", include_str!("../../../docs/schemas/bench-run.json")),
    ("bench-workers", include_str!("../../../docs/schemas/bench-workers.json")),
    ("bench-worktrees", include_str!("../../../docs/schemas/bench-worktrees.json")),
    ("blocked", include_str!("../../../docs/schemas/blocked.json")),
    ("context", include_str!("../../../docs/schemas/context.json")),
    ("db-migrate", include_str!("../../../docs/schemas/db-migrate.json")),
    ("decision", include_str!("../../../docs/schemas/decision.json")),
    ("decisions", include_str!("../../../docs/schemas/decisions.json")),
    ("dep", include_str!("../../../docs/schemas/dep.json")),
    ("diff", include_str!("../../../docs/schemas/diff.json")),
    ("document", include_str!("../../../docs/schemas/document.json")),
    ("error", include_str!("../../../docs/schemas/error.json")),
    ("export", include_str!("../../../docs/schemas/export.json")),
    ("graph", include_str!("../../../docs/schemas/graph.json")),
    ("hold", include_str!("../../../docs/schemas/hold.json")),
    ("holds", include_str!("../../../docs/schemas/holds.json")),
    ("import", include_str!("../../../docs/schemas/import.json")),
    ("init", include_str!("../../../docs/schemas/init.json")),
    ("insight", include_str!("../../../docs/schemas/insight.json")),
    ("insights", include_str!("../../../docs/schemas/insights.json")),
    ("land", include_str!("../../../docs/schemas/land.json")),
    ("log", include_str!("../../../docs/schemas/log.json")),
    ("logs", include_str!("../../../docs/schemas/logs.json")),
    ("maintain", include_str!("../../../docs/schemas/maintain.json")),
    ("mcp-install", include_str!("../../../docs/schemas/mcp-install.json")),
    ("memory-sync", include_str!("../../../docs/schemas/memory-sync.json")),
    ("metrics", include_str!("../../../docs/schemas/metrics.json")),
    ("objective", include_str!("../../../docs/schemas/objective.json")),
    ("objectives", include_str!("../../../docs/schemas/objectives.json")),
    ("patterns", include_str!("../../../docs/schemas/patterns.json")),
    ("plan-apply", include_str!("../../../docs/schemas/plan-apply.json")),
    ("plan-check", include_str!("../../../docs/schemas/plan-check.json")),
    ("plan-draft", include_str!("../../../docs/schemas/plan-draft.json")),
    ("plan-new", include_str!("../../../docs/schemas/plan-new.json")),
    ("roles", include_str!("../../../docs/schemas/roles.json")),
    ("rules-add", include_str!("../../../docs/schemas/rules-add.json")),
    ("rules-rm", include_str!("../../../docs/schemas/rules-rm.json")),
    ("rules", include_str!("../../../docs/schemas/rules.json")),
    ("run", include_str!("../../../docs/schemas/run.json")),
    ("schema", include_str!("../../../docs/schemas/schema.json")),
    ("serve", include_str!("../../../docs/schemas/serve.json")),
    ("session-resume", include_str!("../../../docs/schemas/session-resume.json")),
    ("session-status", include_str!("../../../docs/schemas/session-status.json")),
    ("session", include_str!("../../../docs/schemas/session.json")),
    ("show", include_str!("../../../docs/schemas/show.json")),
    ("state-change", include_str!("../../../docs/schemas/state-change.json")),
    ("status", include_str!("../../../docs/schemas/status.json")),
    ("task", include_str!("../../../docs/schemas/task.json")),
    ("tasks", include_str!("../../../docs/schemas/tasks.json")),
    ("template-apply", include_str!("../../../docs/schemas/template-apply.json")),
    ("template", include_str!("../../../docs/schemas/template.json")),
    ("templates", include_str!("../../../docs/schemas/templates.json")),
    ("waves", include_str!("../../../docs/schemas/waves.json")),
    ("worker", include_str!("../../../docs/schemas/worker.json")),
    ("workers", include_str!("../../../docs/schemas/workers.json")),
    ("worktrees", include_str!("../../../docs/schemas/worktrees.json")),
];

/// The schema a command's output follows (`error`: the error envelope), as its file has it.
pub fn schema_of(command: &str) -> Option<(&'static str, &'static str)> {
    let (_, name) = COMMANDS.iter().find(|(c, _)| *c == command)?;
    FILES
        .iter()
        .find(|(n, _)| n == name)
        .map(|(n, text)| (*n, *text))
}

/// `downbeat schema [COMMAND…]`: the commands with a schema, or one command's schema.
pub fn command(words: &[String], j: bool) -> Result<(), Error> {
    if words.is_empty() {
        if j {
            let list: Vec<_> = COMMANDS
                .iter()
                .map(|(c, f)| serde_json::json!({"command": c, "schema": format!("docs/schemas/{f}.json")}))
                .collect();
            print_json(&list);
        } else {
            let rows: Vec<Vec<String>> = COMMANDS
                .iter()
                .map(|(c, f)| vec![(*c).to_owned(), format!("docs/schemas/{f}.json")])
                .collect();
            out(&table(&["COMMAND", "SCHEMA"], &rows));
        }
        return Ok(());
    }
    let asked = words.join(" ");
    match schema_of(&asked) {
        Some((_, text)) => {
            outln(text.trim_end());
            Ok(())
        }
        None => Err(Error::new(
            Kind::Usage,
            format!("no JSON schema for `{asked}`: it is not a command that prints JSON"),
        )
        .with_hint("`downbeat schema` lists the commands that have one")),
    }
}
