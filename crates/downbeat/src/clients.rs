//! Setting up AI clients to work with Downbeat: the MCP server entry in a client's
//! configuration (`downbeat mcp install`) and Claude Code subagents for the project's roles
//! (`downbeat agents export`).
//!
//! Both only ever touch what they own: one server entry in a client's file (other servers,
//! other keys, and for TOML comments and formatting are kept), and subagent files that carry
//! the generated-by marker. Every write is atomic (a temp file renamed over the target), and a
//! second run with the same inputs changes nothing.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use downbeat_core::role::Role;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::cli::{Client, ExportArgs, InstallArgs, Scope};
use crate::error::{Error, Kind};
use crate::output::{json as print_json, note, out, outln};
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

/// What happened to a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Created,
    Updated,
    Unchanged,
    Skipped,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Updated => "updated",
            Self::Unchanged => "unchanged",
            Self::Skipped => "skipped",
        }
    }
}

// ------------------------------------------------------------------------------------------
// downbeat mcp

/// The server entry to write: what the client starts.
struct Server {
    name: String,
    command: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
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
    let root = canonical(project::find_root(g)?);
    let command = match a.command {
        Some(c) if c.trim().is_empty() => return Err(Error::invalid("--command is empty")),
        Some(c) => c,
        None => match std::env::current_exe() {
            Ok(p) => p.display().to_string(),
            Err(e) => {
                note(&format!(
                    "note: cannot find the path of this program ({e}); using `downbeat` from PATH"
                ));
                "downbeat".to_owned()
            }
        },
    };
    // Where the server finds the project. Project files are read by clients started in the
    // project, whose servers start there too, except Cursor's, which may start elsewhere and
    // expands ${workspaceFolder}. User files serve every project: name this one.
    let mut args = Vec::new();
    match (a.client, a.scope) {
        (_, Scope::User) => {
            args.push("--project".to_owned());
            args.push(root.display().to_string());
        }
        (Client::Cursor, Scope::Project) => {
            args.push("--project".to_owned());
            args.push("${workspaceFolder}".to_owned());
        }
        (Client::Claude | Client::Codex, Scope::Project) => {}
    }
    if let Some(db) = &g.db {
        args.push("--db".to_owned());
        args.push(db.clone());
    }
    args.push("mcp".to_owned());
    let server = Server {
        name: a.name,
        command,
        args,
        env,
    };
    let client = client_name(a.client);
    let scope = match a.scope {
        Scope::Project => "project",
        Scope::User => "user",
    };

    // Claude Code keeps user-scoped servers in its own files; its CLI edits them.
    if a.client == Client::Claude && (a.print || a.scope == Scope::User) {
        let line = claude_add_line(&server, scope);
        if j {
            print_json(
                &json!({"client": client, "scope": scope, "name": server.name, "print": line}),
            );
        } else {
            if a.scope == Scope::User && !a.print {
                note(
                    "downbeat does not edit Claude Code's own files; run this line to add the server for your user:",
                );
            }
            outln(&line);
        }
        return Ok(());
    }
    if a.print {
        let text = match a.client {
            Client::Codex => codex_snippet(&server),
            Client::Claude | Client::Cursor => {
                let mut doc = Json::Object(Vec::new());
                set_json_entry(&mut doc, &server, a.client, Path::new("-"))?;
                json_text(&doc)
            }
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

    let path = match (a.client, a.scope) {
        (Client::Claude, _) => root.join(".mcp.json"),
        (Client::Cursor, Scope::Project) => root.join(".cursor").join("mcp.json"),
        (Client::Cursor, Scope::User) => home()?.join(".cursor").join("mcp.json"),
        (Client::Codex, Scope::Project) => root.join(".codex").join("config.toml"),
        (Client::Codex, Scope::User) => codex_home()?.join("config.toml"),
    };
    let old = read_optional(&path)?;
    let new = match a.client {
        Client::Codex => merge_toml(old.as_deref(), &server, &path)?,
        Client::Claude | Client::Cursor => merge_json(old.as_deref(), &server, a.client, &path)?,
    };
    let action = match (&old, &new) {
        (None, _) => Action::Created,
        (Some(_), None) => Action::Unchanged,
        (Some(_), Some(_)) => Action::Updated,
    };
    if let Some(text) = &new {
        write_atomic(&path, text)?;
    }
    if j {
        print_json(&json!({
            "client": client,
            "scope": scope,
            "name": server.name,
            "path": path.display().to_string(),
            "action": action,
            "command": server.command,
            "args": server.args,
        }));
    } else {
        outln(&format!("{} {}", action.as_str(), shown(&path, &root)));
        if action != Action::Unchanged {
            let next = match (a.client, a.scope) {
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
            };
            note(&format!("note: {next}"));
        }
    }
    Ok(())
}

fn client_name(c: Client) -> &'static str {
    match c {
        Client::Claude => "claude",
        Client::Cursor => "cursor",
        Client::Codex => "codex",
    }
}

/// Server names end up in tool names (`mcp__NAME__claim`) and TOML table names.
fn check_server_name(name: &str) -> Result<(), Error> {
    if !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "server name `{name}` must be letters, digits, `-` or `_`"
        )))
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

fn home() -> Result<PathBuf, Error> {
    std::env::var_os("HOME")
        .or_else(|| std::env::var_os("USERPROFILE"))
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .ok_or_else(|| {
            Error::invalid("HOME is not set, so the user's configuration cannot be found")
                .with_hint("set HOME, or use --scope project")
        })
}

/// Codex's directory: `$CODEX_HOME`, else `~/.codex`.
fn codex_home() -> Result<PathBuf, Error> {
    match std::env::var_os("CODEX_HOME").filter(|h| !h.is_empty()) {
        Some(h) => Ok(PathBuf::from(h)),
        None => Ok(home()?.join(".codex")),
    }
}

fn canonical(p: PathBuf) -> PathBuf {
    std::fs::canonicalize(&p).unwrap_or(p)
}

/// A path as shown to people: relative to the project root when it is inside it.
fn shown(path: &Path, root: &Path) -> String {
    path.strip_prefix(root)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| path.display().to_string())
}

// ------------------------------------------------------------------------------------------
// JSON configuration files (Claude Code, Cursor)

/// Merges the server into a JSON configuration; `None` when nothing would change.
fn merge_json(
    old: Option<&str>,
    s: &Server,
    client: Client,
    path: &Path,
) -> Result<Option<String>, Error> {
    let mut doc = match old {
        None => Json::Object(Vec::new()),
        Some(text) if text.trim().is_empty() => Json::Object(Vec::new()),
        Some(text) => serde_json::from_str::<Json>(text)
            .map_err(|e| malformed(path, &format!("it is not valid JSON ({e})")))?,
    };
    let before = doc.clone();
    set_json_entry(&mut doc, s, client, path)?;
    if old.is_some() && doc == before {
        return Ok(None);
    }
    Ok(Some(json_text(&doc)))
}

/// Sets `mcpServers.<name>`'s `command`, `args` (and `type` for Claude Code, `env` when
/// given); leaves every other key as it is.
fn set_json_entry(doc: &mut Json, s: &Server, client: Client, path: &Path) -> Result<(), Error> {
    let Json::Object(top) = doc else {
        return Err(malformed(path, "its top level is not a JSON object"));
    };
    let servers = object_entry(top, "mcpServers")
        .ok_or_else(|| malformed(path, "`mcpServers` is not an object"))?;
    let entry = object_entry(servers, &s.name)
        .ok_or_else(|| malformed(path, &format!("`mcpServers.{}` is not an object", s.name)))?;
    if client == Client::Claude {
        set_key(entry, "type", Json::String("stdio".into()));
    }
    set_key(entry, "command", Json::String(s.command.clone()));
    set_key(
        entry,
        "args",
        Json::Array(s.args.iter().cloned().map(Json::String).collect()),
    );
    if !s.env.is_empty() {
        let env = object_entry(entry, "env").ok_or_else(|| {
            malformed(
                path,
                &format!("`mcpServers.{}.env` is not an object", s.name),
            )
        })?;
        for (k, v) in &s.env {
            set_key(env, k, Json::String(v.clone()));
        }
    }
    Ok(())
}

/// The object under `key`, inserted empty when missing; `None` when it is something else.
fn object_entry<'a>(
    obj: &'a mut Vec<(String, Json)>,
    key: &str,
) -> Option<&'a mut Vec<(String, Json)>> {
    let i = match obj.iter().position(|(k, _)| k == key) {
        Some(i) => i,
        None => {
            obj.push((key.to_owned(), Json::Object(Vec::new())));
            obj.len() - 1
        }
    };
    match &mut obj[i].1 {
        Json::Object(o) => Some(o),
        _ => None,
    }
}

fn set_key(obj: &mut Vec<(String, Json)>, key: &str, value: Json) {
    match obj.iter_mut().find(|(k, _)| k == key) {
        Some((_, v)) => *v = value,
        None => obj.push((key.to_owned(), value)),
    }
}

fn json_text(doc: &Json) -> String {
    let mut s = serde_json::to_string_pretty(doc).unwrap_or_else(|_| "{}".into());
    s.push('\n');
    s
}

/// A JSON value that keeps the order of object keys, so rewriting a file keeps its layout.
#[derive(Debug, Clone, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Serialize for Json {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Null => ser.serialize_unit(),
            Self::Bool(b) => ser.serialize_bool(*b),
            Self::Number(n) => n.serialize(ser),
            Self::String(s) => ser.serialize_str(s),
            Self::Array(a) => {
                let mut seq = ser.serialize_seq(Some(a.len()))?;
                for v in a {
                    seq.serialize_element(v)?;
                }
                seq.end()
            }
            Self::Object(o) => {
                let mut map = ser.serialize_map(Some(o.len()))?;
                for (k, v) in o {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Json;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_unit<E>(self) -> Result<Json, E> {
                Ok(Json::Null)
            }
            fn visit_none<E>(self) -> Result<Json, E> {
                Ok(Json::Null)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Json, D::Error> {
                Json::deserialize(d)
            }
            fn visit_bool<E>(self, b: bool) -> Result<Json, E> {
                Ok(Json::Bool(b))
            }
            fn visit_i64<E>(self, n: i64) -> Result<Json, E> {
                Ok(Json::Number(n.into()))
            }
            fn visit_u64<E>(self, n: u64) -> Result<Json, E> {
                Ok(Json::Number(n.into()))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<Json, E> {
                serde_json::Number::from_f64(n)
                    .map(Json::Number)
                    .ok_or_else(|| E::custom("a number that is not finite"))
            }
            fn visit_str<E>(self, s: &str) -> Result<Json, E> {
                Ok(Json::String(s.to_owned()))
            }
            fn visit_string<E>(self, s: String) -> Result<Json, E> {
                Ok(Json::String(s))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
                let mut v = Vec::new();
                while let Some(x) = seq.next_element()? {
                    v.push(x);
                }
                Ok(Json::Array(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
                let mut o: Vec<(String, Json)> = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Json>()? {
                    set_key(&mut o, &k, v);
                }
                Ok(Json::Object(o))
            }
        }
        d.deserialize_any(V)
    }
}

// ------------------------------------------------------------------------------------------
// TOML configuration files (Codex)

/// Merges `[mcp_servers.<name>]` into a Codex configuration, keeping comments and layout;
/// `None` when nothing would change.
fn merge_toml(old: Option<&str>, s: &Server, path: &Path) -> Result<Option<String>, Error> {
    use toml_edit::{Array, DocumentMut, InlineTable, Item, Table, Value};
    let text = old.unwrap_or("");
    let mut doc: DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| {
        malformed(
            path,
            &format!("it is not valid TOML ({})", e.to_string().trim_end()),
        )
    })?;
    let servers = doc
        .entry("mcp_servers")
        .or_insert_with(|| {
            let mut t = Table::new();
            t.set_implicit(true);
            Item::Table(t)
        })
        .as_table_like_mut()
        .ok_or_else(|| malformed(path, "`mcp_servers` is not a table"))?;
    if servers.get(&s.name).is_none() {
        servers.insert(&s.name, Item::Table(Table::new()));
    }
    let entry = servers
        .get_mut(&s.name)
        .and_then(Item::as_table_like_mut)
        .ok_or_else(|| malformed(path, &format!("`mcp_servers.{}` is not a table", s.name)))?;
    // Only values that differ are replaced, so an entry that is already right keeps its
    // formatting and the file stays byte for byte the same.
    if entry.get("command").and_then(Item::as_str) != Some(s.command.as_str()) {
        entry.insert("command", toml_edit::value(s.command.clone()));
    }
    let same_args = entry.get("args").and_then(Item::as_array).is_some_and(|a| {
        a.len() == s.args.len() && a.iter().zip(&s.args).all(|(v, w)| v.as_str() == Some(w))
    });
    if !same_args {
        entry.insert(
            "args",
            toml_edit::value(s.args.iter().cloned().collect::<Array>()),
        );
    }
    if !s.env.is_empty() {
        if entry.get("env").is_none() {
            entry.insert("env", toml_edit::value(InlineTable::new()));
        }
        let env = entry
            .get_mut("env")
            .and_then(Item::as_table_like_mut)
            .ok_or_else(|| {
                malformed(
                    path,
                    &format!("`mcp_servers.{}.env` is not a table", s.name),
                )
            })?;
        for (k, v) in &s.env {
            if env.get(k).and_then(Item::as_str) != Some(v.as_str()) {
                env.insert(k, Item::Value(Value::from(v.clone())));
            }
        }
    }
    let new = doc.to_string();
    if old.is_some() && new == text {
        return Ok(None);
    }
    Ok(Some(new))
}

/// The TOML `downbeat mcp install --client codex --print` shows.
fn codex_snippet(s: &Server) -> String {
    merge_toml(None, s, Path::new("-"))
        .ok()
        .flatten()
        .unwrap_or_default()
}

fn malformed(path: &Path, why: &str) -> Error {
    Error::invalid(format!("{}: {why}", path.display())).with_hint(
        "fix the file or move it away, then run the command again; downbeat left it untouched",
    )
}

// ------------------------------------------------------------------------------------------
// Files

fn read_optional(path: &Path) -> Result<Option<String>, Error> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
            Err(malformed(path, "it is not UTF-8 text"))
        }
        Err(e) => Err(Error::new(
            Kind::Internal,
            format!("cannot read {}: {e}", path.display()),
        )),
    }
}

/// Writes a file atomically: a temp file in the same directory, flushed, then renamed over
/// the target (through a symlink to the file it points to). Keeps an existing file's
/// permissions.
fn write_atomic(path: &Path, text: &str) -> Result<(), Error> {
    use std::io::Write as _;
    let fail = |what: &str, e: std::io::Error| {
        Error::new(
            Kind::Internal,
            format!("cannot {what} {}: {e}", path.display()),
        )
    };
    let target = match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            std::fs::canonicalize(path).map_err(|e| fail("follow the link", e))?
        }
        _ => path.to_owned(),
    };
    let dir = target
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| fail("create the directory of", e))?;
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.downbeat-{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        if let Ok(m) = std::fs::metadata(&target) {
            std::fs::set_permissions(&tmp, m.permissions())?;
        }
        std::fs::rename(&tmp, &target)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(fail("write", e));
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------
// downbeat agents export

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
        let text = subagent(r, &a.server, a.model.as_deref());
        let old = read_optional(&path)?;
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
    fn shell_quoting() {
        assert_eq!(shell_quote("/usr/bin/downbeat"), "/usr/bin/downbeat");
        assert_eq!(shell_quote("/a b/it's"), r"'/a b/it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn json_keeps_key_order_and_other_keys() {
        let text = r#"{"z": 1, "mcpServers": {"other": {"command": "x"}}, "a": [true, null, 1.5]}"#;
        let s = Server {
            name: "downbeat".into(),
            command: "downbeat".into(),
            args: vec!["mcp".into()],
            env: vec![],
        };
        let out = merge_json(Some(text), &s, Client::Cursor, Path::new("f"))
            .unwrap()
            .unwrap();
        let z = out.find("\"z\"").unwrap();
        let m = out.find("\"mcpServers\"").unwrap();
        let a = out.find("\"a\"").unwrap();
        assert!(z < m && m < a, "{out}");
        assert!(out.contains("1.5"), "{out}");
        assert_eq!(
            merge_json(Some(&out), &s, Client::Cursor, Path::new("f")).unwrap(),
            None
        );
    }

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
