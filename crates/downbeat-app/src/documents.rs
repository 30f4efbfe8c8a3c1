//! Documents rendered from the project: integration reports (synthesis) and the handover.
//! Writing a document's file is atomic (a temporary file renamed into place).

use std::path::Path;

use downbeat_core::ids::{RecordId, RecordKind, TaskId};
use downbeat_core::report::{self, ProjectView};
use downbeat_store::{EventQuery, view};
use serde_json::json;

use crate::error::{Error, Kind};
use crate::project::Project;
use crate::tasks::resolve;
use crate::views::view;

/// The integration report of `id` (or the project) and where it goes by default.
pub async fn render_synthesis(
    p: &Project,
    id: Option<&str>,
) -> Result<(String, std::path::PathBuf), Error> {
    let root = match id {
        Some(s) => Some(resolve(p, s).await?),
        None => None,
    };
    let v = view(p).await?;
    let mut doc = report::synthesis(&v, root);
    let spent = crate::views::spend(
        p,
        &crate::views::SpendFilter {
            scope: root,
            holder: None,
        },
    )
    .await?;
    let work: Vec<_> = p
        .store
        .all_attempts()
        .await?
        .into_iter()
        .filter_map(|a| a.detail.git.map(|g| (a.task, g)))
        .collect();
    doc.push_str(&report::landed_section(&v, root, &work));
    doc.push_str(&report::spend_section(&spent));
    let name = root
        .map(|r| format!("{r}.md"))
        .unwrap_or_else(|| "project.md".into());
    Ok((doc, p.dir().join("reports").join(name)))
}

pub fn write_report(target: &std::path::Path, doc: &str) -> Result<String, Error> {
    if let Some(dir) = target.parent() {
        std::fs::create_dir_all(dir)?;
    }
    write_atomically(target, doc.as_bytes())?;
    Ok(target.display().to_string())
}

/// Writes the report to its default place without printing; returns the path.
pub async fn write_synthesis(p: &Project, id: Option<&str>) -> Result<String, Error> {
    let (doc, target) = render_synthesis(p, id).await?;
    write_report(&target, &doc)
}

pub fn p_task(v: &ProjectView, entity: &str) -> Option<TaskId> {
    v.tasks
        .iter()
        .find(|t| t.id.to_string() == entity)
        .map(|t| t.id)
}

/// Where the last handover was recorded: one `meta` entry, written with its
/// `handover.written` event in one transaction.
const HANDOVER_KEY: &str = "handover";
/// The two entries older projects recorded handovers in (read when [`HANDOVER_KEY`] is absent).
const OLD_HANDOVER_AT: &str = "handover.at_seq";
const OLD_HANDOVER_BASE: &str = "handover.baseline_seq";

/// The bookkeeping of the last handover written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Mark {
    /// The latest change the last handover covered.
    at_seq: i64,
    /// Decisions recorded after this change were listed as new in it.
    baseline_seq: i64,
}

/// The handover document as of now, and the bookkeeping needed to record writing it.
pub struct HandoverDoc {
    pub doc: String,
    /// The latest change the document covers.
    last: i64,
    /// The stored entry as read (compared when recording), and what it says.
    stored: Option<String>,
    mark: Option<Mark>,
    /// Decisions recorded after this change are listed as new.
    baseline: i64,
}

async fn read_mark(p: &Project) -> Result<(Option<String>, Option<Mark>), Error> {
    let stored = p.store.meta_get(HANDOVER_KEY).await?;
    if let Some(raw) = &stored {
        let mark = serde_json::from_str(raw).map_err(|e| {
            Error::storage(format!("the stored handover mark is damaged ({e}): {raw}"))
        })?;
        return Ok((stored, Some(mark)));
    }
    let parse = |v: Option<String>| v.and_then(|s| s.parse::<i64>().ok());
    let at = parse(p.store.meta_get(OLD_HANDOVER_AT).await?);
    let base = parse(p.store.meta_get(OLD_HANDOVER_BASE).await?);
    Ok((
        None,
        at.map(|at_seq| Mark {
            at_seq,
            baseline_seq: base.unwrap_or(0),
        }),
    ))
}

/// Renders the handover document without writing anything.
pub async fn handover_doc(p: &Project) -> Result<HandoverDoc, Error> {
    let last = view::last_change(p.store.as_ref())
        .await?
        .map(|(s, _)| s)
        .unwrap_or(0);
    let (stored, mark) = read_mark(p).await?;
    let baseline = match mark {
        // Nothing changed since the last handover: render the same document.
        Some(m) if m.at_seq == last => m.baseline_seq,
        Some(m) => m.at_seq,
        None => 0,
    };
    let new_decisions: Vec<RecordId> = p
        .store
        .events(&EventQuery {
            after_seq: Some(baseline),
            ..Default::default()
        })
        .await?
        .into_iter()
        .filter(|e| matches!(e.action.as_str(), "decision.added" | "decision.accepted"))
        .filter_map(|e| RecordId::parse(RecordKind::Decision, &e.entity))
        .collect();
    let v = view(p).await?;
    Ok(HandoverDoc {
        doc: report::handover(&v, &new_decisions),
        last,
        stored,
        mark,
        baseline,
    })
}

/// Writes the handover document to `target` (default .downbeat/handover.md; `-` writes
/// nothing) and records it (the mark and its `handover.written` event in one transaction);
/// returns the path written (or `-`) and the document.
pub async fn write_handover(
    p: &Project,
    target: Option<std::path::PathBuf>,
) -> Result<(String, String), Error> {
    let h = handover_doc(p).await?;
    let target = target.unwrap_or_else(|| p.dir().join("handover.md"));
    let to_stdout = target.as_os_str() == "-";
    if !to_stdout {
        write_atomically(&target, h.doc.as_bytes())?;
    }
    let path = if to_stdout {
        "-".to_owned()
    } else {
        target.display().to_string()
    };
    if h.mark.map(|m| m.at_seq) != Some(h.last) {
        let mark = Mark {
            at_seq: h.last,
            baseline_seq: h.baseline,
        };
        let new = serde_json::to_string(&mark)
            .map_err(|e| Error::internal(format!("cannot encode the handover mark: {e}")))?;
        // A handover recorded by someone else in between wins; this one is written all the same.
        p.store
            .meta_swap(
                HANDOVER_KEY,
                h.stored.as_deref(),
                &new,
                "handover.written",
                "handover",
                Some(json!({"path": path, "as_of_seq": h.last})),
                &p.actor().await?,
            )
            .await?;
    }
    Ok((path, h.doc))
}

pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("out")
    ));
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| {
            Error::new(
                Kind::Storage,
                format!("cannot write {}: {e}", path.display()),
            )
        })
}
