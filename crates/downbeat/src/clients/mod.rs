//! Setting up AI clients to work with Downbeat: the MCP server entry in a client's
//! configuration (`downbeat mcp install`) and Claude Code subagents for the project's roles
//! (`downbeat agents export`).
//!
//! Both only ever touch what they own: one server entry in a client's file (other servers,
//! other keys, and for TOML comments and formatting are kept), and subagent files that carry
//! the generated-by marker. Every write is atomic (a temp file renamed over the target), and a
//! second run with the same inputs changes nothing. A user-wide entry that serves another
//! project is never repointed without `--force`.
//!
//! Parts: `paths` (where each client keeps its files), `json_file` and `codex` (the two
//! formats), `export` (`agents export`), `common` (what they share).

mod codex;
mod common;
mod export;
mod json_file;
mod paths;

pub use common::Action;
pub use export::{MARKER, MCP_TOOLS, export, subagent};

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::cli::{Client, InstallArgs, Scope};
use crate::error::{Error, Kind};
use crate::output::{json as print_json, note, out, outln};
use common::{
    Server, canonical, check_server_name, project_arg, read_optional, shown, write_atomic,
};
use downbeat_app::project::{self, Globals};
use json_file::Style;
use paths::{Dirs, Os};

/// How a client's file holds its servers.
#[derive(Debug, Clone, Copy)]
enum Format {
    Json(Style),
    Toml,
}

fn format(c: Client) -> Format {
    let style = |servers, stdio_type| {
        Format::Json(Style {
            servers,
            stdio_type,
        })
    };
    match c {
        Client::Claude => style("mcpServers", true),
        Client::Vscode => style("servers", true),
        Client::Cursor | Client::Windsurf | Client::ClaudeDesktop | Client::Gemini => {
            style("mcpServers", false)
        }
        Client::Codex => Format::Toml,
    }
}

/// `downbeat mcp install`.
pub fn install(g: &Globals, a: InstallArgs, j: bool) -> Result<(), Error> {
    check_server_name(&a.name)?;
    let env = a
        .env
        .iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
            _ => Err(Error::invalid(format!("--env `{kv}` is not KEY=VALUE"))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let client = client_name(a.client);
    let project_file = paths::project_file(a.client);
    if a.scope == Scope::Project && project_file.is_none() {
        return Err(Error::new(
            Kind::Usage,
            format!("{client} has no project configuration, only one for the user"),
        )
        .with_hint(format!(
            "run `downbeat mcp install --client {client} --scope user`; the entry names this project with --project"
        )));
    }
    let root = canonical(project::find_root(g)?);
    let server = Server {
        name: a.name.clone(),
        command: server_command(a.command.as_deref())?,
        args: server_args(a.client, a.scope, &root, g.db.as_deref()),
        env,
    };
    let scope = match a.scope {
        Scope::Project => "project",
        Scope::User => "user",
    };

    // Claude Code keeps user-scoped servers in its own files; its CLI edits them.
    if a.client == Client::Claude && (a.print || a.scope == Scope::User) {
        return print_claude_line(&server, &a, &root, j);
    }
    let fmt = format(a.client);
    if a.print {
        let text = match fmt {
            Format::Toml => codex::codex_snippet(&server),
            Format::Json(style) => json_file::json_snippet(&server, style)?,
        };
        if j {
            print_json(
                &json!({"client": client, "scope": scope, "name": server.name, "print": text}),
            );
        } else {
            out(&text);
        }
        return Ok(());
    }

    let path = match (a.scope, project_file) {
        (Scope::Project, Some(f)) => root.join(f),
        _ => user_path(a.client)?,
    };
    let old = read_optional(&path)?;
    let new = match fmt {
        Format::Toml => codex::merge_toml(old.as_deref(), &server, &path)?,
        Format::Json(style) => json_file::merge_json(old.as_deref(), &server, style, &path)?,
    };
    // A user-wide entry serves every project: one that serves another is not taken over
    // without being asked to.
    let repointed = match (a.scope, old.as_deref()) {
        (Scope::User, Some(text)) => other_project(text, &server.name, fmt, &root),
        _ => None,
    };
    if let Some(other) = &repointed
        && !a.force
    {
        return Err(repoint_refused(&server.name, &path, other, &root));
    }
    let action = match (&old, &new) {
        (None, _) => Action::Created,
        (Some(_), None) => Action::Unchanged,
        (Some(_), Some(_)) => Action::Updated,
    };
    if let Some(text) = &new {
        write_atomic(&path, text)?;
    }
    if j {
        let mut v = json!({
            "client": client,
            "scope": scope,
            "name": server.name,
            "path": path.display().to_string(),
            "action": action,
            "command": server.command,
            "args": server.args,
        });
        if let Some(other) = &repointed {
            v["repointed_from"] = json!(other);
        }
        print_json(&v);
    } else {
        outln(&format!("{} {}", action.as_str(), shown(&path, &root)));
        if let Some(other) = &repointed {
            note(&format!(
                "note: `{}` pointed at {other}; it now serves {}",
                server.name,
                root.display()
            ));
        }
        if action != Action::Unchanged {
            note(&format!("note: {}", next_step(a.client, a.scope)));
        }
    }
    Ok(())
}

/// Claude Code: the `claude mcp add` line to run, after checking (for user scope) that it
/// would not take the entry from another project.
fn print_claude_line(server: &Server, a: &InstallArgs, root: &Path, j: bool) -> Result<(), Error> {
    let user = a.scope == Scope::User && !a.print;
    let scope = if a.scope == Scope::User {
        "user"
    } else {
        "project"
    };
    let mut line = claude_add_line(server, scope);
    if user {
        // `claude mcp add` replaces an entry of the same name without a word: look first.
        if let Some((path, other)) = claude_code_other_project(&server.name, root) {
            if !a.force {
                return Err(repoint_refused(&server.name, &path, &other, root));
            }
            line = format!(
                "claude mcp remove --scope user {} && {line}",
                shell_quote(&server.name)
            );
        }
    }
    if j {
        print_json(
            &json!({"client": "claude", "scope": scope, "name": server.name, "print": line}),
        );
    } else {
        if user {
            note(
                "downbeat does not edit Claude Code's own files; run this line to add the server for your user:",
            );
        }
        outln(&line);
    }
    Ok(())
}

/// The program the client starts: `--command`, else the absolute path of this downbeat.
fn server_command(given: Option<&str>) -> Result<String, Error> {
    match given {
        Some(c) if c.trim().is_empty() => Err(Error::invalid("--command is empty")),
        Some(c) => Ok(c.to_owned()),
        None => match std::env::current_exe() {
            Ok(p) => Ok(p.display().to_string()),
            Err(e) => {
                note(&format!(
                    "note: cannot find the path of this program ({e}); using `downbeat` from PATH"
                ));
                Ok("downbeat".to_owned())
            }
        },
    }
}

/// Where the server finds the project. Project files are read by clients started in the
/// project, whose servers start there too, except Cursor's and VS Code's, which may start
/// them elsewhere and expand `${workspaceFolder}`. User files serve every project (and Claude
/// Desktop starts its servers in no project at all): name this one.
fn server_args(c: Client, scope: Scope, root: &Path, db: Option<&str>) -> Vec<String> {
    let mut args = Vec::new();
    match (c, scope) {
        (_, Scope::User) => {
            args.push("--project".to_owned());
            args.push(root.display().to_string());
        }
        (Client::Cursor | Client::Vscode, Scope::Project) => {
            args.push("--project".to_owned());
            args.push("${workspaceFolder}".to_owned());
        }
        (_, Scope::Project) => {}
    }
    if let Some(db) = db {
        args.push("--db".to_owned());
        args.push(db.to_owned());
    }
    args.push("mcp".to_owned());
    args
}

fn user_path(c: Client) -> Result<PathBuf, Error> {
    match paths::user_file(c, Os::current(), &Dirs::from_env()) {
        Ok(Some(p)) => Ok(p),
        Ok(None) => Err(Error::internal(format!(
            "{} keeps no user file downbeat edits",
            client_name(c)
        ))),
        Err(paths::Missing(var)) => Err(Error::invalid(format!(
            "{var} is not set, so the user's configuration cannot be found"
        ))
        .with_hint(if paths::project_file(c).is_some() {
            format!("set {var}, or use --scope project")
        } else {
            format!("set {var}")
        })),
    }
}

/// Claude Code's user file and the project its entry `name` serves, when that is another
/// one. The file is only read; one that cannot be read or parsed is passed over.
fn claude_code_other_project(name: &str, root: &Path) -> Option<(PathBuf, String)> {
    let path = paths::claude_code_user_file(&Dirs::from_env()).ok()?;
    let text = std::fs::read_to_string(&path).ok()?;
    let other = other_project(&text, name, format(Client::Claude), root)?;
    Some((path, other))
}

/// The project the existing entry `name` serves, when it names one that is not `root`.
fn other_project(old: &str, name: &str, fmt: Format, root: &Path) -> Option<String> {
    let args = match fmt {
        Format::Json(style) => json_file::entry_args(old, name, style)?,
        Format::Toml => codex::entry_args(old, name)?,
    };
    let theirs = project_arg(&args)?;
    if theirs == root.display().to_string() || canonical(PathBuf::from(theirs)) == root {
        None
    } else {
        Some(theirs.to_owned())
    }
}

fn repoint_refused(name: &str, path: &Path, other: &str, root: &Path) -> Error {
    Error::conflict(format!(
        "the user-wide entry `{name}` in {} serves another project, {other}; this project is {}",
        path.display(),
        root.display()
    ))
    .with_hint(format!(
        "add a second entry for this project with --name {}, or repoint `{name}` here with --force",
        second_name(name, root)
    ))
}

/// `NAME-<directory>`: a name for a second entry, for the project in `root`.
fn second_name(name: &str, root: &Path) -> String {
    let dir: String = root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let dir = dir.trim_matches('-');
    if dir.is_empty() {
        return format!("{name}-2");
    }
    let mut s = format!("{name}-{dir}");
    s.truncate(64);
    s
}

/// What to do or expect once the file is written.
fn next_step(c: Client, scope: Scope) -> &'static str {
    match (c, scope) {
        (Client::Claude, _) => {
            "Claude Code asks to approve the servers of a project's .mcp.json when it starts there"
        }
        (Client::Cursor, _) => {
            "Cursor lists the server under its MCP settings, where it can be switched on"
        }
        (Client::Codex, Scope::Project) => {
            "Codex reads .codex/config.toml only in projects it trusts"
        }
        (Client::Codex, Scope::User) => "Codex starts the server in its next session",
        (Client::Vscode, _) => {
            "VS Code lists the server under `MCP: List Servers`, where it can be started and trusted"
        }
        (Client::Windsurf, _) => {
            "Windsurf picks the server up when its MCP servers are refreshed in Cascade"
        }
        (Client::ClaudeDesktop, _) => {
            "Claude Desktop starts the server once it is quit completely and opened again"
        }
        (Client::Gemini, Scope::Project) => {
            "Gemini CLI reads .gemini/settings.json in folders it trusts; /mcp lists the server"
        }
        (Client::Gemini, Scope::User) => {
            "Gemini CLI starts the server in its next session; /mcp lists it"
        }
    }
}

fn client_name(c: Client) -> &'static str {
    match c {
        Client::Claude => "claude",
        Client::Cursor => "cursor",
        Client::Codex => "codex",
        Client::Vscode => "vscode",
        Client::Windsurf => "windsurf",
        Client::ClaudeDesktop => "claude-desktop",
        Client::Gemini => "gemini",
    }
}

fn claude_add_line(s: &Server, scope: &str) -> String {
    let mut line = format!("claude mcp add --scope {scope}");
    for (k, v) in &s.env {
        let _ = write!(line, " --env {}", shell_quote(&format!("{k}={v}")));
    }
    let _ = write!(
        line,
        " {} -- {}",
        shell_quote(&s.name),
        shell_quote(&s.command)
    );
    for a in &s.args {
        line.push(' ');
        line.push_str(&shell_quote(a));
    }
    line
}

/// Quotes a word for a POSIX shell when it needs it.
fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./=:,@%+".contains(c))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quoting() {
        assert_eq!(shell_quote("/usr/bin/downbeat"), "/usr/bin/downbeat");
        assert_eq!(shell_quote("/a b/it's"), r"'/a b/it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn second_names() {
        assert_eq!(
            second_name("downbeat", Path::new("/w/my shop")),
            "downbeat-my-shop"
        );
        assert_eq!(second_name("downbeat", Path::new("/")), "downbeat-2");
        assert_eq!(second_name("x", Path::new(&"a".repeat(100))).len(), 64);
    }

    #[test]
    fn another_project_is_told_apart_from_this_one() {
        let style = Style {
            servers: "mcpServers",
            stdio_type: false,
        };
        let fmt = Format::Json(style);
        let file = |p: &str| {
            format!(
                r#"{{"mcpServers": {{"downbeat": {{"command": "d", "args": ["--project", "{p}", "mcp"]}}}}}}"#
            )
        };
        let root = Path::new("/nonexistent/this");
        assert_eq!(
            other_project(&file("/nonexistent/other"), "downbeat", fmt, root).as_deref(),
            Some("/nonexistent/other")
        );
        assert_eq!(
            other_project(&file("/nonexistent/this"), "downbeat", fmt, root),
            None
        );
        assert_eq!(
            other_project(&file("/nonexistent/other"), "tasks", fmt, root),
            None
        );
        let toml = "[mcp_servers.downbeat]\nargs = [\"--project=/nonexistent/other\", \"mcp\"]\n";
        assert_eq!(
            other_project(toml, "downbeat", Format::Toml, root).as_deref(),
            Some("/nonexistent/other")
        );
    }
}
