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
    ("bench chaos", "bench-chaos"),
    ("serve", "serve"),
    ("mcp install", "mcp-install"),
    ("db migrate", "db-migrate"),
    ("schema", "schema"),
    ("error", ERROR),
];

/// The files of `docs/schemas/` with these names, embedded.
macro_rules! files {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../../../docs/schemas/", $name, ".json")))),*]
    };
}

/// Every schema file, by name.
const FILES: &[(&str, &str)] = files![
    "agents",
    "agents-check",
    "agents-export",
    "attempts",
    "bench-chaos",
    "bench-plan",
    "bench-recover",
    "bench-run",
    "bench-workers",
    "bench-worktrees",
    "blocked",
    "context",
    "db-migrate",
    "decision",
    "decisions",
    "dep",
    "diff",
    "document",
    "error",
    "export",
    "graph",
    "hold",
    "holds",
    "import",
    "init",
    "insight",
    "insights",
    "land",
    "log",
    "logs",
    "maintain",
    "mcp-install",
    "memory-sync",
    "metrics",
    "objective",
    "objectives",
    "patterns",
    "plan-apply",
    "plan-check",
    "plan-draft",
    "plan-new",
    "roles",
    "rules",
    "rules-add",
    "rules-rm",
    "run",
    "schema",
    "serve",
    "session",
    "session-resume",
    "session-status",
    "show",
    "state-change",
    "status",
    "task",
    "tasks",
    "template",
    "template-apply",
    "templates",
    "waves",
    "worker",
    "workers",
    "worktrees",
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
