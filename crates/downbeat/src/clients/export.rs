//! `downbeat agents export`: one Claude Code subagent per role, each claiming and completing
//! Downbeat tasks through the MCP tools. Only files carrying the generated-by marker are
//! rewritten.

use std::fmt::Write as _;
use std::path::Path;

use downbeat_core::role::Role;
use serde::Serialize;

use super::common::{Action, canonical, check_server_name, read_optional, shown, write_atomic};
use crate::cli::ExportArgs;
use crate::error::Error;
use crate::output::{json as print_json, note, outln};
use downbeat_app::project::{self, Globals};

/// The MCP tools of the server's default profile, and whether role subagents get them (the
/// others are for the conductor: planning, running, sessions).
///
/// Subagent files list them as `mcp__<server>__<tool>`; their prompt mentions `claim`,
/// `work`, and `tasks` and `context` when present here.
pub const MCP_TOOLS: &[(&str, bool)] = &[
    ("session", false),
    ("plan", false),
    ("tasks", true),
    ("claim", true),
    ("work", true),
    ("context", true),
    ("report", true),
    ("run", false),
];

/// The line that marks a subagent file as written by `downbeat agents export`.
pub const MARKER: &str = "# generated-by: downbeat";

#[derive(Debug, Serialize)]
struct Exported {
    role: String,
    path: String,
    action: Action,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

pub fn export(g: &Globals, a: ExportArgs, j: bool) -> Result<(), Error> {
    check_server_name(&a.server)?;
    if let Some(m) = &a.model
        && (m.trim().is_empty() || m.contains(['\n', '\r']))
    {
        return Err(Error::invalid(format!("--model `{m}` is not a model name")));
    }
    let root = canonical(project::find_root(g)?);
    let config = project::load_config(&root)?;
    let roles = project::load_roles(&root, &config)?;
    let selected: Vec<&Role> = if a.roles.is_empty() {
        roles.iter().collect()
    } else {
        let mut v = Vec::new();
        for name in &a.roles {
            let r = roles.get(name.trim()).ok_or_else(|| {
                Error::invalid(format!("unknown role `{name}`")).with_hint(format!(
                    "known roles: {} (add your own in .downbeat/roles/NAME.toml)",
                    roles.names().join(", ")
                ))
            })?;
            if !v.iter().any(|x: &&Role| x.name == r.name) {
                v.push(r);
            }
        }
        v
    };
    let dir = root.join(&a.dir);
    let mut done = Vec::new();
    for r in selected {
        let path = dir.join(format!("{}.md", r.name));
        let old = read_optional(&path)?;
        // Without --model a regenerated file keeps the model it had; `--model none` drops it.
        let kept = old.as_deref().filter(|o| has_marker(o)).and_then(model_of);
        let model = match a.model.as_deref() {
            Some("none") => None,
            Some(m) => Some(m.to_owned()),
            None => kept,
        };
        let text = subagent(r, &a.server, model.as_deref());
        let (action, reason) = match &old {
            None => (Action::Created, None),
            Some(o) if !has_marker(o) && !a.force => (
                Action::Skipped,
                Some("downbeat did not write it (no generated-by marker); --force overwrites it"),
            ),
            Some(o) if *o == text => (Action::Unchanged, None),
            Some(_) => (Action::Updated, None),
        };
        if matches!(action, Action::Created | Action::Updated) {
            write_atomic(&path, &text)?;
        }
        if let Some(why) = reason
            && !j
        {
            note(&format!("skipped {}: {why}", shown(&path, &root)));
        }
        done.push(Exported {
            role: r.name.clone(),
            path: path.display().to_string(),
            action,
            reason: reason.map(str::to_owned),
        });
    }
    if j {
        print_json(&done);
    } else {
        for e in &done {
            outln(&format!(
                "{:<9}  {}",
                e.action.as_str(),
                shown(Path::new(&e.path), &root)
            ));
        }
    }
    Ok(())
}

/// The `model:` of a subagent file's front matter.
fn model_of(text: &str) -> Option<String> {
    let mut lines = text.lines();
    if lines.next().map(str::trim_end) != Some("---") {
        return None;
    }
    lines
        .take_while(|l| l.trim_end() != "---")
        .find_map(|l| l.strip_prefix("model:"))
        .map(|v| {
            let v = v.trim();
            serde_json::from_str::<String>(v)
                .ok()
                .unwrap_or_else(|| v.trim_matches('\'').to_owned())
        })
        .filter(|v| !v.is_empty())
}

/// Whether a subagent file carries the marker in its front matter.
fn has_marker(text: &str) -> bool {
    let mut lines = text.lines();
    if lines.next().map(str::trim_end) != Some("---") {
        return false;
    }
    lines
        .take_while(|l| l.trim_end() != "---")
        .any(|l| l.trim_start().starts_with(MARKER))
}

/// Standard Claude Code tools for a role: read-only for those who judge or find out, editing
/// and a shell for those who change things.
fn standard_tools(role: &str) -> &'static [&'static str] {
    match role {
        "architect" => &["Read", "Grep", "Glob", "Write"],
        "implementer" | "tester" => &["Read", "Edit", "Write", "Bash", "Grep", "Glob"],
        "documenter" => &["Read", "Edit", "Write", "Grep", "Glob"],
        "debugger" | "database" => &["Read", "Edit", "Bash", "Grep", "Glob"],
        "reviewer" => &["Read", "Grep", "Glob"],
        "researcher" => &["Read", "Grep", "Glob", "WebSearch", "WebFetch"],
        _ => &["Read", "Edit", "Write", "Bash", "Grep", "Glob"],
    }
}

fn has_tool(name: &str) -> bool {
    MCP_TOOLS.iter().any(|(t, worker)| *t == name && *worker)
}

/// The role's own instructions without the per-task template: the text before the first
/// template tag. Claimed tasks bring their details through the MCP tools instead.
fn role_intro(r: &Role) -> String {
    let mut kept = Vec::new();
    for line in r.prompt.lines() {
        if line.contains("{{") || line.contains("{%") || line.contains("{#") {
            break;
        }
        kept.push(line);
    }
    let intro = kept.join("\n");
    let intro = intro.trim();
    if intro.is_empty() {
        r.description.trim().to_owned()
    } else {
        intro.to_owned()
    }
}

/// One Claude Code subagent file: YAML front matter, then the prompt.
pub fn subagent(r: &Role, server: &str, model: Option<&str>) -> String {
    let tool = |t: &str| format!("mcp__{server}__{t}");
    let mut tools: Vec<String> = standard_tools(&r.name)
        .iter()
        .map(|t| (*t).to_owned())
        .collect();
    tools.extend(
        MCP_TOOLS
            .iter()
            .filter(|(_, worker)| *worker)
            .map(|(t, _)| tool(t)),
    );
    let description = format!(
        "Downbeat {}: {} Use for Downbeat tasks of the {} role; it claims a task, does it and completes it through the {server} MCP tools.",
        r.name,
        ensure_stop(r.description.trim()),
        r.name
    );
    let mut s = String::new();
    s.push_str("---\n");
    let _ = writeln!(
        s,
        "{MARKER} (`downbeat agents export` rewrites this file; delete this line to keep your edits)"
    );
    let _ = writeln!(s, "name: {}", r.name);
    let _ = writeln!(s, "description: {}", yaml_quote(&description));
    let _ = writeln!(s, "tools: {}", tools.join(", "));
    if let Some(m) = model {
        let _ = writeln!(s, "model: {}", yaml_scalar(m));
    }
    s.push_str("---\n\n");
    s.push_str(&role_intro(r));
    s.push_str("\n\n## Working through Downbeat\n\n");
    let _ = write!(
        s,
        "Your work is planned and tracked in Downbeat, a durable task graph shared by a team of \
         specialists; you work as its {name}. Take work from it and hand results back through \
         the `{server}` MCP tools:\n\n",
        name = r.name
    );
    let _ = writeln!(
        s,
        "1. **Claim.** Call `{}` for the `{}` role, or with the task id you were given. It \
         returns one task: its description, acceptance criteria, objectives and the results of \
         the work it depends on. If nothing is ready, say so and stop.",
        tool("claim"),
        r.name
    );
    let mut look = Vec::new();
    if has_tool("context") {
        look.push(format!(
            "`{}` gives the project's objectives, decisions and insights",
            tool("context")
        ));
    }
    if has_tool("tasks") {
        look.push(format!("`{}` shows the rest of the graph", tool("tasks")));
    }
    if !look.is_empty() {
        let _ = writeln!(
            s,
            "2. **Look around when you need to.** {}.",
            capitalize_first(&look.join("; "))
        );
    }
    let n = if look.is_empty() { 2 } else { 3 };
    let _ = writeln!(
        s,
        "{n}. **Work.** Do what the task asks, and only that; meet each acceptance criterion."
    );
    let _ = writeln!(
        s,
        "{}. **Complete.** Call `{}` with the task id, the token `claim` gave you, and:\n   \
         - a summary: what you did and what the next person needs to know, in a few sentences;\n   \
         - artifacts: the files you produced or changed, relative to the project root;\n   \
         - flags for what someone else must look at (e.g. `SECURITY_BREACH`, `NEEDS_REVIEW`);\n   \
         - discovered tasks: work you found outside this task, each with a title, a role and \
         why. Do not do it yourself.\n\n   \
         On long work, call it with `action: \"heartbeat\"` now and then to keep your lease. \
         If you cannot finish, call it with `action: \"fail\"` and the reason rather than \
         leaving the task claimed.",
        n + 1,
        tool("work")
    );
    s.push_str(
        "\nEnd with a short reply to whoever delegated to you: the task id, the outcome and the \
         summary.\n",
    );
    s
}

fn ensure_stop(s: &str) -> String {
    if s.ends_with(['.', '!', '?']) || s.is_empty() {
        s.to_owned()
    } else {
        format!("{s}.")
    }
}

fn capitalize_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// A YAML double-quoted scalar.
fn yaml_quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            '\n' => q.push_str("\\n"),
            '\r' => q.push_str("\\r"),
            '\t' => q.push_str("\\t"),
            c if c.is_control() || c == '\u{feff}' => {
                let _ = write!(q, "\\u{:04x}", c as u32);
            }
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

/// A scalar written plain when that is unambiguous, quoted otherwise.
fn yaml_scalar(s: &str) -> String {
    let plain = s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.[]".contains(c))
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "y" | "n"
        )
        && s.parse::<f64>().is_err();
    if plain { s.to_owned() } else { yaml_quote(s) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_scalars() {
        assert_eq!(yaml_quote("a \"b\"\n\\"), r#""a \"b\"\n\\""#);
        assert_eq!(yaml_scalar("sonnet"), "sonnet");
        assert_eq!(yaml_scalar("no"), "\"no\"");
        assert_eq!(yaml_scalar("1.5"), "\"1.5\"");
        assert_eq!(yaml_scalar("a: b"), "\"a: b\"");
    }

    #[test]
    fn intro_stops_at_the_template() {
        let r = downbeat_core::role::RoleSet::builtin();
        let intro = role_intro(r.get("tester").unwrap());
        assert!(intro.starts_with("You are the tester."), "{intro}");
        assert!(!intro.contains("{{"), "{intro}");
    }
}
