//! JSON configuration files: Claude Code's `.mcp.json`, Cursor, VS Code, Windsurf, Claude
//! Desktop and Gemini CLI. Only the server's entry is touched; every other key, server and
//! setting is kept, in its order.

use std::path::Path;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};

use super::common::{Server, malformed};
use crate::error::Error;

/// How a client's JSON file holds its servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    /// The top-level object of servers: `mcpServers`, or `servers` for VS Code.
    pub servers: &'static str,
    /// Whether an entry says `"type": "stdio"` (Claude Code, VS Code).
    pub stdio_type: bool,
}

/// Merges the server into a JSON configuration; `None` when nothing would change.
pub fn merge_json(
    old: Option<&str>,
    s: &Server,
    style: Style,
    path: &Path,
) -> Result<Option<String>, Error> {
    let mut doc = parse(old, path)?;
    let before = doc.clone();
    set_json_entry(&mut doc, s, style, path)?;
    if old.is_some() && doc == before {
        return Ok(None);
    }
    Ok(Some(json_text(&doc)))
}

/// The entry as it would be written into an empty file (`--print`).
pub fn json_snippet(s: &Server, style: Style) -> Result<String, Error> {
    let mut doc = Json::Object(Vec::new());
    set_json_entry(&mut doc, s, style, Path::new("-"))?;
    Ok(json_text(&doc))
}

/// The `args` of the entry `name` in a configuration, when there is one and they are strings.
pub fn entry_args(old: &str, name: &str, style: Style) -> Option<Vec<String>> {
    let Ok(Json::Object(top)) = serde_json::from_str::<Json>(old) else {
        return None;
    };
    let servers = object_get(&top, style.servers)?;
    let entry = object_get(servers, name)?;
    match entry.iter().find(|(k, _)| k == "args").map(|(_, v)| v) {
        Some(Json::Array(a)) => a
            .iter()
            .map(|v| match v {
                Json::String(s) => Some(s.clone()),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

fn object_get<'a>(obj: &'a [(String, Json)], key: &str) -> Option<&'a [(String, Json)]> {
    match obj.iter().find(|(k, _)| k == key).map(|(_, v)| v) {
        Some(Json::Object(o)) => Some(o),
        _ => None,
    }
}

fn parse(old: Option<&str>, path: &Path) -> Result<Json, Error> {
    match old {
        None => Ok(Json::Object(Vec::new())),
        Some(text) if text.trim().is_empty() => Ok(Json::Object(Vec::new())),
        Some(text) => serde_json::from_str::<Json>(text)
            .map_err(|e| malformed(path, &format!("it is not valid JSON ({e})"))),
    }
}

/// Sets `<servers>.<name>`'s `command`, `args` (and `type` for the clients that want it,
/// `env` keys when given); leaves every other key as it is.
fn set_json_entry(doc: &mut Json, s: &Server, style: Style, path: &Path) -> Result<(), Error> {
    let key = style.servers;
    let Json::Object(top) = doc else {
        return Err(malformed(path, "its top level is not a JSON object"));
    };
    let servers = object_entry(top, key)
        .ok_or_else(|| malformed(path, &format!("`{key}` is not an object")))?;
    let entry = object_entry(servers, &s.name)
        .ok_or_else(|| malformed(path, &format!("`{key}.{}` is not an object", s.name)))?;
    if style.stdio_type {
        set_key(entry, "type", Json::String("stdio".into()));
    }
    set_key(entry, "command", Json::String(s.command.clone()));
    set_key(
        entry,
        "args",
        Json::Array(s.args.iter().cloned().map(Json::String).collect()),
    );
    if !s.env.is_empty() {
        let env = object_entry(entry, "env")
            .ok_or_else(|| malformed(path, &format!("`{key}.{}.env` is not an object", s.name)))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    const CURSOR: Style = Style {
        servers: "mcpServers",
        stdio_type: false,
    };

    fn server() -> Server {
        Server {
            name: "downbeat".into(),
            command: "downbeat".into(),
            args: vec!["--project".into(), "/p".into(), "mcp".into()],
            env: vec![],
        }
    }

    #[test]
    fn json_keeps_key_order_and_other_keys() {
        let text = r#"{"z": 1, "mcpServers": {"other": {"command": "x"}}, "a": [true, null, 1.5]}"#;
        let s = server();
        let out = merge_json(Some(text), &s, CURSOR, Path::new("f"))
            .unwrap()
            .unwrap();
        let z = out.find("\"z\"").unwrap();
        let m = out.find("\"mcpServers\"").unwrap();
        let a = out.find("\"a\"").unwrap();
        assert!(z < m && m < a, "{out}");
        assert!(out.contains("1.5"), "{out}");
        assert_eq!(
            merge_json(Some(&out), &s, CURSOR, Path::new("f")).unwrap(),
            None
        );
    }

    #[test]
    fn entry_args_reads_the_entry_of_the_style() {
        let vscode = Style {
            servers: "servers",
            stdio_type: true,
        };
        let text = json_snippet(&server(), vscode).unwrap();
        assert!(text.starts_with("{\n  \"servers\""), "{text}");
        assert_eq!(
            entry_args(&text, "downbeat", vscode).unwrap(),
            ["--project", "/p", "mcp"]
        );
        assert_eq!(entry_args(&text, "downbeat", CURSOR), None);
        assert_eq!(entry_args(&text, "other", vscode), None);
        assert_eq!(entry_args("{,}", "downbeat", vscode), None);
    }
}
