//! A project's work as JSON Lines: `export` writes its tasks, edges and context (sessions,
//! objectives, insights, decisions, the flags agents raised, and its settings kept in `meta`,
//! such as plan records)
//! with every id kept, and `import` writes such a file into an empty project.
//!
//! The file is sorted and stable, so it diffs well: a first line (the header, with the schema
//! version and the tables' id counters), then one line per row, tables in a fixed order, rows
//! by primary key, columns in the schema's order, SQL `NULL` left out, JSON columns (a task's
//! acceptance, tags and files) as JSON. The same project exports the same bytes, and export →
//! import → export gives the same file.
//!
//! What stays behind: the event log, the attempt ledger, artifacts and workers (`db migrate`
//! moves a whole database), and the handover's bookkeeping, which points into the event log.
//!
//! Must never: write into a project that holds anything (the store refuses, in the import's
//! transaction), or accept a row whose table, column or value type it does not know.

use std::collections::BTreeMap;

use downbeat_store::transfer::{
    self, CHUNK_ROWS, Dump, Kind as ColumnKind, TABLES, Table, TableDump,
};
use serde_json::{Map, Value};

use crate::error::Error;
use crate::project::{Globals, database_url};

/// The version of the file's layout (the header's `version`).
pub const VERSION: u64 = 1;

/// The tables an export holds, in the order they are written and imported.
const EXPORTED: &[&str] = &[
    "meta",
    "sessions",
    "tasks",
    "edges",
    "objectives",
    "objective_tasks",
    "insights",
    "decisions",
    "flags",
];

/// `meta` entries that point into the event log, which an export leaves behind.
fn kept_meta(key: &str) -> bool {
    !key.starts_with("handover")
}

/// Exports the project's work as JSON Lines.
pub async fn export(g: &Globals) -> Result<String, Error> {
    let store = transfer::open_transfer(&database_url(g)?, false).await?;
    encode(&store.export().await?)
}

/// What an import wrote: rows per table, in the file's order.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Imported {
    pub tables: Vec<(&'static str, u64)>,
}

/// Writes an export into the project, which must be empty (freshly initialised), in one
/// transaction; `shown` names the file in messages.
pub async fn import(g: &Globals, text: &str, shown: &str) -> Result<Imported, Error> {
    let dump = decode(text).map_err(|e| Error::invalid(format!("{shown}: {e}")))?;
    let store = transfer::open_transfer(&database_url(g)?, false).await?;
    let here = store.info().version;
    if dump.version != here {
        return Err(Error::invalid(format!(
            "{shown} was exported at schema version {}, and this project's database is at version {here}",
            dump.version
        ))
        .with_hint("import it with the downbeat that exported it, into a project of the same version"));
    }
    store.import(&dump).await.map_err(|e| {
        let not_empty = matches!(e, downbeat_store::Error::NotEmpty { .. });
        let err = Error::from(e);
        if not_empty {
            err.with_hint("import into a new project: `downbeat init` in an empty directory, or --db a new database")
        } else {
            err
        }
    })?;
    Ok(Imported {
        tables: dump.tables.iter().map(|t| (t.table.name, t.rows)).collect(),
    })
}

fn table(name: &str) -> Option<&'static Table> {
    TABLES.iter().find(|t| t.name == name)
}

/// The header line: the layout's version, the schema's, and the id counters of the tables
/// that have one.
fn header(dump: &Dump) -> String {
    let counters: Vec<String> = EXPORTED
        .iter()
        .filter_map(|name| {
            let td = dump.table(name)?;
            td.table.counter?;
            Some(format!("{}:{}", Value::from(*name), td.counter))
        })
        .collect();
    format!(
        "{{\"downbeat\":\"export\",\"version\":{VERSION},\"schema\":{},\"counters\":{{{}}}}}",
        dump.version,
        counters.join(",")
    )
}

/// The export of a dump: the header, then the rows of [`EXPORTED`].
pub fn encode(dump: &Dump) -> Result<String, Error> {
    let mut out = header(dump);
    out.push('\n');
    for name in EXPORTED {
        let Some(td) = dump.table(name) else { continue };
        let rows = td.decode()?;
        for row in rows {
            if *name == "meta"
                && !row
                    .get("key")
                    .and_then(Value::as_str)
                    .is_some_and(kept_meta)
            {
                continue;
            }
            out.push_str(&row_line(td.table, &row));
            out.push('\n');
        }
    }
    Ok(out)
}

/// One row: `{"table":NAME,"row":{…}}`, columns in the schema's order, `NULL`s left out,
/// JSON columns as JSON. Columns only one backend has (a PostgreSQL lease's clock skew, live
/// lease state) are left out, so both backends export the same file.
fn row_line(t: &Table, row: &Map<String, Value>) -> String {
    let mut cols = Vec::with_capacity(t.columns.len());
    for c in t.columns.iter().filter(|c| c.in_sqlite) {
        let Some(v) = row.get(c.name).filter(|v| !v.is_null()) else {
            continue;
        };
        let v = match (c.kind, v) {
            (ColumnKind::Json, Value::String(text)) => {
                serde_json::from_str::<Value>(text).unwrap_or_else(|_| v.clone())
            }
            _ => v.clone(),
        };
        cols.push(format!("{}:{v}", Value::from(c.name)));
    }
    format!(
        "{{\"table\":{},\"row\":{{{}}}}}",
        Value::from(t.name),
        cols.join(",")
    )
}

/// A malformed export, with the line at fault.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("the file is empty, not a downbeat export")]
    Empty,
    #[error("line 1 is not the header of a downbeat export ({0})")]
    Header(String),
    #[error("this export has layout version {0}; this downbeat reads version {VERSION}")]
    Version(u64),
    #[error("line {line}: {message}")]
    Line { line: usize, message: String },
}

/// Reads an export back into a [`Dump`] of the tables it holds (rows checked against the
/// schema's columns and their kinds).
pub fn decode(text: &str) -> Result<Dump, DecodeError> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let (_, first) = lines.next().ok_or(DecodeError::Empty)?;
    let h: Map<String, Value> =
        serde_json::from_str(first).map_err(|e| DecodeError::Header(e.to_string()))?;
    if h.get("downbeat").and_then(Value::as_str) != Some("export") {
        return Err(DecodeError::Header("no `\"downbeat\": \"export\"`".into()));
    }
    let version = h.get("version").and_then(Value::as_u64).unwrap_or(0);
    if version != VERSION {
        return Err(DecodeError::Version(version));
    }
    let schema = h
        .get("schema")
        .and_then(Value::as_i64)
        .ok_or_else(|| DecodeError::Header("no schema version".into()))?;
    let counters = h.get("counters").and_then(Value::as_object);
    let mut rows: BTreeMap<usize, Vec<Map<String, Value>>> = BTreeMap::new();
    for (i, line) in lines {
        let bad = |message: String| DecodeError::Line {
            line: i + 1,
            message,
        };
        let (t, row) = parse_row(line).map_err(bad)?;
        rows.entry(t).or_default().push(row);
    }
    let tables = EXPORTED
        .iter()
        .enumerate()
        .filter_map(|(i, name)| {
            let t = table(name)?;
            let rows = rows.remove(&i).unwrap_or_default();
            let counter = counters
                .and_then(|c| c.get(*name))
                .and_then(Value::as_i64)
                .unwrap_or(0);
            Some(table_dump(t, rows, counter))
        })
        .collect();
    Ok(Dump {
        backend: "export",
        version: schema,
        tables,
    })
}

/// One row line: the position of its table in [`EXPORTED`] and the row in the neutral form
/// (JSON columns as text).
fn parse_row(line: &str) -> Result<(usize, Map<String, Value>), String> {
    let v: Map<String, Value> =
        serde_json::from_str(line).map_err(|e| format!("not a JSON object: {e}"))?;
    let name = v.get("table").and_then(Value::as_str).ok_or("no `table`")?;
    let pos = EXPORTED
        .iter()
        .position(|t| *t == name)
        .ok_or_else(|| format!("unknown table `{name}` (known: {})", EXPORTED.join(", ")))?;
    let t = table(name).ok_or_else(|| format!("unknown table `{name}`"))?;
    if let Some(k) = v.keys().find(|k| *k != "table" && *k != "row") {
        return Err(format!(
            "unknown field `{k}` (a line has `table` and `row`)"
        ));
    }
    let Some(Value::Object(row)) = v.get("row") else {
        return Err("`row` must be an object".into());
    };
    let mut out = Map::new();
    for (k, val) in row {
        let c = t
            .columns
            .iter()
            .find(|c| c.name == k)
            .ok_or_else(|| format!("`{name}` has no column `{k}`"))?;
        let val = match (c.kind, val) {
            (_, Value::Null) => continue,
            (ColumnKind::Int, Value::Number(n)) if n.is_i64() => val.clone(),
            (ColumnKind::Text, Value::String(_)) | (ColumnKind::Bool, Value::Bool(_)) => {
                val.clone()
            }
            (ColumnKind::Json, Value::String(s)) => Value::String(s.clone()),
            (ColumnKind::Json, other) => Value::String(other.to_string()),
            (kind, other) => {
                return Err(format!(
                    "`{name}.{k}` must be {}, not {other}",
                    match kind {
                        ColumnKind::Int => "an integer",
                        ColumnKind::Text => "a string",
                        ColumnKind::Bool => "true or false",
                        ColumnKind::Json => "JSON",
                    }
                ));
            }
        };
        out.insert(k.clone(), val);
    }
    Ok((pos, out))
}

/// The rows of one table in chunks, as the store imports them.
fn table_dump(t: &'static Table, rows: Vec<Map<String, Value>>, counter: i64) -> TableDump {
    let n = rows.len() as u64;
    let chunk = usize::try_from(CHUNK_ROWS).unwrap_or(10_000);
    let chunks = rows
        .chunks(chunk)
        .map(|c| Value::Array(c.iter().cloned().map(Value::Object).collect()).to_string())
        .collect();
    TableDump {
        table: t,
        rows: n,
        counter,
        chunks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = concat!(
        r#"{"downbeat":"export","version":1,"schema":7,"counters":{"sessions":0,"objectives":1,"insights":0,"decisions":0}}"#,
        "\n",
        r#"{"table":"meta","row":{"key":"next_task_seq","value":"3"}}"#,
        "\n",
        r#"{"table":"tasks","row":{"seq":1,"id":"aht8g2","title":"A","tags":["x"],"archived":false}}"#,
        "\n",
        r#"{"table":"objectives","row":{"id":1,"title":"O","status":"active"}}"#,
        "\n",
    );

    #[test]
    fn an_export_decodes_into_the_neutral_form() {
        let d = decode(FILE).unwrap();
        assert_eq!(d.version, 7);
        let tasks = d.table("tasks").unwrap().decode().unwrap();
        assert_eq!(tasks[0]["tags"], Value::from(r#"["x"]"#));
        assert_eq!(d.table("objectives").unwrap().counter, 1);
        assert_eq!(d.table("edges").unwrap().rows, 0);
        // And encodes back to the same lines (columns in the schema's order).
        let again = encode(&d).unwrap();
        let lines: Vec<&str> = again.lines().collect();
        assert_eq!(
            lines[2],
            r#"{"table":"tasks","row":{"seq":1,"id":"aht8g2","title":"A","tags":["x"],"archived":false}}"#
        );
        assert_eq!(lines.len(), 4);
    }

    #[test]
    fn bad_lines_are_named() {
        let e = |text: &str| decode(text).unwrap_err().to_string();
        assert!(e("").contains("empty"));
        assert!(e("{\"tasks\": []}").contains("line 1"));
        let head = FILE.lines().next().unwrap();
        let msg = e(&format!("{head}\n{{\"table\":\"events\",\"row\":{{}}}}\n"));
        assert!(msg.contains("line 2: unknown table `events`"), "{msg}");
        let msg = e(&format!(
            "{head}\n{{\"table\":\"tasks\",\"row\":{{\"colour\":1}}}}\n"
        ));
        assert!(msg.contains("no column `colour`"), "{msg}");
        let msg = e(&format!(
            "{head}\n{{\"table\":\"tasks\",\"row\":{{\"seq\":\"one\"}}}}\n"
        ));
        assert!(msg.contains("`tasks.seq` must be an integer"), "{msg}");
        let msg = e(&head.replace("\"version\":1", "\"version\":9"));
        assert!(msg.contains("layout version 9"), "{msg}");
    }
}
