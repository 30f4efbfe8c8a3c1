//! The project's memory files (`CLAUDE.md`, `AGENTS.md` by default, `[memory] files`):
//! `sync` writes Downbeat's section into them — what the project is doing, the decisions in
//! force, key insights, conventions — between its markers, leaving every other byte of the
//! file alone; `paths` names them for the prompts, which carry the rest of each file.
//!
//! Must never: write a file whose markers are broken (the whole sync is refused first, so no
//! file is half done), write a file whose bytes would not change, or leave a half-written file
//! (each is written to a temporary file and renamed).

use std::path::{Path, PathBuf};

use downbeat_core::context::ObjectiveStatus;
use downbeat_core::memory::{self, Facts, ObjectiveLine};
use downbeat_core::report::{self, ProjectView};
use serde::Serialize;

use crate::error::{Error, Kind};
use crate::project::Project;

/// Insights the section lists at most (the newest).
const KEY_INSIGHTS: usize = 12;

/// The memory files prompts carry (they may not exist).
pub fn paths(p: &Project) -> Result<Vec<PathBuf>, Error> {
    Ok(p.config
        .memory
        .names()?
        .into_iter()
        .map(|n| p.root.join(n))
        .collect())
}

/// What a sync is asked to do.
#[derive(Debug, Clone, Default)]
pub struct SyncRequest {
    /// These of the memory files only (by name, as in `[memory] files`); `None`: all of them.
    pub files: Option<Vec<String>>,
    /// Say what would change, write nothing.
    pub dry_run: bool,
}

/// What a sync did (or, dry, would do) to one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileSync {
    /// As named in `[memory] files`.
    pub file: String,
    pub path: String,
    /// `created`, `updated` or `unchanged`.
    pub change: &'static str,
    /// The file's size afterwards.
    pub bytes: usize,
}

/// The answer of a sync.
#[derive(Debug, Clone, Serialize)]
pub struct Synced {
    pub dry_run: bool,
    pub files: Vec<FileSync>,
    /// The section written between the markers.
    pub section: String,
}

/// Writes Downbeat's section into the memory files asked for. A file with broken markers
/// refuses the whole sync before anything is written.
pub async fn sync(p: &Project, req: &SyncRequest) -> Result<Synced, Error> {
    let names = chosen(p, req.files.as_deref())?;
    let v = crate::views::view(p).await?;
    let section = memory::section(&facts(p, &v));
    // Everything is read and spliced first: one broken file writes nothing.
    let mut planned = Vec::new();
    for name in names {
        let path = p.root.join(&name);
        let old = read(&path)?;
        let new = memory::splice(old.as_deref(), &section).map_err(|e| {
            Error::invalid(format!("{}: {e}", path.display())).with_hint(
                "fix the markers by hand (or remove both) and sync again; nothing was written",
            )
        })?;
        let change = match &old {
            None => "created",
            Some(o) if *o == new => "unchanged",
            Some(_) => "updated",
        };
        planned.push((name, path, new, change));
    }
    let mut files = Vec::new();
    for (name, path, new, change) in planned {
        if !req.dry_run && change != "unchanged" {
            write(&path, new.as_bytes())?;
        }
        files.push(FileSync {
            file: name,
            path: path.display().to_string(),
            change,
            bytes: new.len(),
        });
    }
    Ok(Synced {
        dry_run: req.dry_run,
        files,
        section,
    })
}

/// The names asked for, each one of the configured memory files.
fn chosen(p: &Project, asked: Option<&[String]>) -> Result<Vec<String>, Error> {
    let known = p.config.memory.names()?;
    let Some(asked) = asked else {
        return Ok(known);
    };
    let mut out = Vec::new();
    for a in asked {
        if !known.contains(a) {
            return Err(Error::invalid(format!(
                "`{a}` is not one of the project's memory files ({})",
                known.join(", ")
            ))
            .with_hint("name the files in `[memory] files` of .downbeat/config.toml"));
        }
        if !out.contains(a) {
            out.push(a.clone());
        }
    }
    Ok(out)
}

/// What the section says, from the project's view.
fn facts<'a>(p: &Project, v: &'a ProjectView) -> Facts<'a> {
    let c = v.counts();
    let objectives = v
        .objectives
        .iter()
        .filter(|o| o.status != ObjectiveStatus::Dropped)
        .map(|o| ObjectiveLine {
            id: o.id.to_string(),
            title: o.title.clone(),
            progress: report::objective_progress(v, o),
            achieved: o.status == ObjectiveStatus::Achieved,
        })
        .collect();
    let decisions = v.decisions.iter().filter(|d| d.in_force()).collect();
    let mut insights: Vec<_> = v.insights.iter().collect();
    insights.sort_by_key(|i| std::cmp::Reverse((i.created_at, i.id)));
    insights.truncate(KEY_INSIGHTS);
    let mut conventions: Vec<String> = p
        .config
        .rules
        .iter()
        .map(|r| format!("Flag `{}` in your report: {}.", r.flag, r.describe()))
        .collect();
    if !conventions.is_empty() {
        conventions.push(
            "Report a flag as `NAME` or `NAME: what you found`; its follow-up gets what you found."
                .into(),
        );
    }
    Facts {
        objectives,
        done: c.done(),
        total: c.total,
        running: c.running,
        ready: c.ready,
        failed: c.failed,
        decisions,
        insights,
        conventions,
    }
}

fn read(path: &Path) -> Result<Option<String>, Error> {
    match std::fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes).map(Some).map_err(|_| {
            Error::invalid(format!("{} is not UTF-8 text", path.display()))
                .with_hint("a memory file is Markdown; nothing was written")
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::new(
            Kind::Storage,
            format!("cannot read {}: {e}", path.display()),
        )),
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory, renamed over it;
/// an existing file keeps its permissions.
fn write(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let fail = |e: std::io::Error| {
        Error::new(
            Kind::Storage,
            format!("cannot write {}: {e}", path.display()),
        )
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(fail)?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("memory");
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        std::io::Write::write_all(&mut f, bytes)?;
        if let Ok(meta) = std::fs::metadata(path) {
            f.set_permissions(meta.permissions())?;
        }
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(fail(e));
    }
    Ok(())
}
