//! Work from other tools: Task Master's `tasks.json` and beads' `issues.jsonl`, read into a
//! plan (keys from the other tool's ids, parents, dependencies, priorities, the statuses the
//! new tasks start in) and applied through the living-plan path, recorded under the plan's
//! name (`taskmaster-TAG`, `beads`): importing the file again after it changed adds, changes
//! and cancels what changed, and leaves alone tasks that are running or finished. What could
//! not be carried over is reported, naming each item and each field skipped; fields of no
//! version this reader knows are named as such (a newer version of the tool wrote them).
//!
//! Downbeat's own export (JSON Lines) is the other import, `crate::export::import`, into an
//! empty project with ids kept; [`detect`] tells the three apart.
//!
//! Must never: write part of an import (one transaction), or change a task that is running or
//! finished.

mod beads;
mod mapped;
mod taskmaster;

use serde::Serialize;

use crate::error::{Error, Kind};
use crate::plans::{self, ApplyRequest, Outcome};
use crate::project::Project;

pub use mapped::{Mapped, Report};

/// What an import file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Task Master's `tasks.json`.
    Taskmaster,
    /// beads' `issues.jsonl`.
    Beads,
    /// Downbeat's own export.
    Jsonl,
}

impl Source {
    pub fn name(self) -> &'static str {
        match self {
            Source::Taskmaster => "taskmaster",
            Source::Beads => "beads",
            Source::Jsonl => "jsonl",
        }
    }
}

/// Tells what a file is from its content; `None` when it is none of the three.
pub fn detect(text: &str) -> Option<Source> {
    let first = text.lines().find(|l| !l.trim().is_empty())?;
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(first)
        && v.get("downbeat").and_then(|d| d.as_str()) == Some("export")
    {
        return Some(Source::Jsonl);
    }
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(text)
        && taskmaster::looks_like(&v)
    {
        return Some(Source::Taskmaster);
    }
    beads::looks_like(text).then_some(Source::Beads)
}

/// Reads a file of another tool (`tag`: Task Master's tag to import).
pub fn read(source: Source, text: &str, tag: Option<&str>, shown: &str) -> Result<Mapped, Error> {
    let r = match source {
        Source::Taskmaster => taskmaster::read(text, tag),
        Source::Beads => {
            if tag.is_some() {
                return Err(Error::new(Kind::Usage, "--tag is for Task Master files"));
            }
            beads::read(text)
        }
        Source::Jsonl => {
            return Err(Error::internal(
                "a Downbeat export is imported by export::import",
            ));
        }
    };
    r.map_err(|e| Error::invalid(format!("{shown} is not a {} file: {e}", label(source))))
}

fn label(s: Source) -> &'static str {
    match s {
        Source::Taskmaster => "Task Master tasks.json",
        Source::Beads => "beads issues.jsonl",
        Source::Jsonl => "Downbeat export",
    }
}

/// What an import of another tool's file found and, unless a dry run, did.
pub struct Imported {
    pub source: Source,
    pub mapped: Mapped,
    pub outcome: Outcome,
}

/// Imports a file of another tool into the project (see the module documentation).
pub async fn import(
    p: &Project,
    source: Source,
    text: &str,
    tag: Option<&str>,
    shown: &str,
    dry_run: bool,
) -> Result<Imported, Error> {
    let mut mapped = read(source, text, tag, shown)?;
    if mapped.plan.tasks.is_empty() {
        return Err(Error::invalid(format!(
            "{shown} holds no task to import{}",
            if mapped.report.unmapped.is_empty() {
                String::new()
            } else {
                format!(" ({})", mapped.report.unmapped.join("; "))
            }
        )));
    }
    let req = ApplyRequest {
        shown: shown.to_owned(),
        fallback_name: None,
        dry_run,
        skip_conflicts: true,
        skip_option: "--skip-conflicts",
    };
    let outcome = plans::apply_starting(p, &mapped.plan, &req, &mapped.statuses)
        .await
        .map_err(|e| match e.kind {
            Kind::Conflict if e.message.contains("cycle") => e.with_hint(format!(
                "the file's dependencies form a cycle; break it in {}, then import again",
                label(source)
            )),
            _ => e,
        })?;
    for c in &outcome.prepared.diff.conflicts {
        mapped.report.notes.push(format!(
            "{} ({}) was left as it is: {}",
            c.key, c.id, c.reason
        ));
    }
    Ok(Imported {
        source,
        mapped,
        outcome,
    })
}

#[cfg(test)]
mod tests;
