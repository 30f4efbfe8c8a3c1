//! `downbeat export` and `downbeat import`: a project's work as JSON Lines, and back into an
//! empty project.

use std::io::Read as _;

use downbeat_app::export;
use downbeat_app::project::Globals;
use serde_json::json;

use crate::cli::{ExportFormat, WorkExportArgs, WorkImportArgs};
use crate::error::{Error, Kind};
use crate::output::{json as print_json, note, out, table};

pub(super) async fn export(g: &Globals, a: WorkExportArgs, _j: bool) -> Result<(), Error> {
    // The file is JSON already: `--json` changes nothing.
    match a.format {
        ExportFormat::Jsonl => out(&export::export(g).await?),
    }
    Ok(())
}

pub(super) async fn import(g: &Globals, a: WorkImportArgs, j: bool) -> Result<(), Error> {
    let stdin = a.file.as_os_str() == "-";
    let shown = if stdin {
        "stdin".to_owned()
    } else {
        a.file.display().to_string()
    };
    let text = if stdin {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| Error::invalid(format!("cannot read standard input: {e}")))?;
        text
    } else {
        std::fs::read_to_string(&a.file).map_err(|e| {
            let kind = if e.kind() == std::io::ErrorKind::NotFound {
                Kind::NotFound
            } else {
                Kind::Invalid
            };
            Error::new(kind, format!("cannot read {shown}: {e}"))
        })?
    };
    let done = export::import(g, &text, &shown).await?;
    if j {
        let tables: serde_json::Map<String, serde_json::Value> = done
            .tables
            .iter()
            .map(|(t, n)| ((*t).to_owned(), json!(n)))
            .collect();
        print_json(&json!({"imported": shown, "tables": tables}));
    } else {
        let rows: Vec<Vec<String>> = done
            .tables
            .iter()
            .filter(|(t, _)| *t != "meta")
            .map(|(t, n)| vec![(*t).to_owned(), n.to_string()])
            .collect();
        out(&table(&["TABLE", "ROWS"], &rows));
        note(&format!("imported {shown}"));
    }
    Ok(())
}
