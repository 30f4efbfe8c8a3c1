//! Codex's TOML configuration: `[mcp_servers.NAME]`, edited in place so comments and layout
//! are kept.

use std::path::Path;

use toml_edit::{Array, DocumentMut, InlineTable, Item, Table, Value};

use super::common::{Server, malformed};
use crate::error::Error;

/// Merges `[mcp_servers.<name>]` into a Codex configuration, keeping comments and layout;
/// `None` when nothing would change.
pub fn merge_toml(old: Option<&str>, s: &Server, path: &Path) -> Result<Option<String>, Error> {
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
pub fn codex_snippet(s: &Server) -> String {
    merge_toml(None, s, Path::new("-"))
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// The `args` of `[mcp_servers.<name>]`, when there is such a table and they are strings.
pub fn entry_args(old: &str, name: &str) -> Option<Vec<String>> {
    let doc: DocumentMut = old.parse().ok()?;
    let args = doc
        .get("mcp_servers")?
        .as_table_like()?
        .get(name)?
        .as_table_like()?
        .get("args")?
        .as_array()?;
    args.iter().map(|v| v.as_str().map(str::to_owned)).collect()
}
