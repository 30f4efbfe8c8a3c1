//! `downbeat export` and `downbeat import`: a project's work as JSON Lines, and back into an
//! empty project; the files of other tools (Task Master, beads) into any project, with a
//! report of what could not be mapped.

use std::io::Read as _;

use downbeat_app::export;
use downbeat_app::imports::{self, Source};
use downbeat_app::plans::Applied;
use downbeat_app::project::{Globals, Project};
use serde_json::json;

use super::plan::{diff_json, diff_table, first_application, summary};
use crate::cli::{ExportFormat, ImportFormat, WorkExportArgs, WorkImportArgs};
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
    let source = match a.from {
        Some(ImportFormat::Taskmaster) => Source::Taskmaster,
        Some(ImportFormat::Beads) => Source::Beads,
        Some(ImportFormat::Jsonl) => Source::Jsonl,
        None => imports::detect(&text).ok_or_else(|| {
            let export = export::decode(&text).err().map_or_else(String::new, |e| format!(" ({e})"));
            Error::invalid(format!(
                "cannot tell what {shown} is: not a Downbeat export{export}, nor a Task Master tasks.json or a beads issues.jsonl with tasks"
            ))
            .with_hint("name it with --from taskmaster|beads|jsonl")
        })?,
    };
    if source != Source::Jsonl {
        let p = downbeat_app::project::open(g).await?;
        return foreign(&p, source, &text, &shown, &a, j).await;
    }
    if a.tag.is_some() || a.dry_run {
        return Err(Error::new(
            Kind::Usage,
            "--tag and --dry-run are for the files of other tools; a Downbeat export goes into an empty project whole",
        ));
    }
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

/// `import` of another tool's file: the plan it maps to applied (or compared, with
/// `--dry-run`), then the report.
async fn foreign(
    p: &Project,
    source: Source,
    text: &str,
    shown: &str,
    a: &WorkImportArgs,
    j: bool,
) -> Result<(), Error> {
    let done = imports::import(p, source, text, a.tag.as_deref(), shown, a.dry_run).await?;
    let prepared = &done.outcome.prepared;
    let d = &prepared.diff;
    let name = prepared.name.clone().unwrap_or_else(|| shown.to_owned());
    let report = &done.mapped.report;
    if j {
        let created = done
            .outcome
            .applied
            .as_ref()
            .map(|x| x.applied.tasks.as_slice());
        let mut v = diff_json(&name, d, created, a.dry_run);
        v["imported"] = json!(shown);
        v["from"] = json!(source.name());
        v["report"] = json!(report);
        print_json(&v);
        return Ok(());
    }
    match &done.outcome.applied {
        None => {
            out(&diff_table(d, None));
            note(&format!("{name}: {}; nothing written", summary(d, true)));
        }
        Some(Applied { applied, .. }) if prepared.first => {
            first_application(&name, prepared, applied)
        }
        Some(Applied { applied, .. }) => {
            out(&diff_table(d, Some(&applied.tasks)));
            note(&format!("imported {name}: {}", summary(d, false)));
        }
    }
    for line in report_lines(report) {
        note(&line);
    }
    Ok(())
}

/// The report for people: what could not be mapped, the fields skipped and unknown, notes.
fn report_lines(r: &imports::Report) -> Vec<String> {
    let mut out = Vec::new();
    let counted = |m: &std::collections::BTreeMap<String, usize>| {
        m.iter()
            .map(|(k, n)| format!("{k} ({n})"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !r.unmapped.is_empty() {
        out.push(format!("not mapped ({}):", r.unmapped.len()));
        out.extend(r.unmapped.iter().map(|u| format!("  - {u}")));
    }
    if !r.skipped_fields.is_empty() {
        out.push(format!(
            "fields Downbeat does not keep, skipped: {}",
            counted(&r.skipped_fields)
        ));
    }
    if !r.unknown_fields.is_empty() {
        out.push(format!(
            "fields this reader does not know (a newer version of the tool?), skipped: {}",
            counted(&r.unknown_fields)
        ));
    }
    out.extend(r.notes.iter().map(|n| format!("note: {n}")));
    out
}
