//! Documents and upkeep: `synthesize`, `handover`, `maintain`.

use std::fmt::Write as _;

use downbeat_app::documents::{render_synthesis, write_handover, write_report};
use downbeat_app::error::Error;
use downbeat_app::maintenance::{Maintenance, maintenance};
use downbeat_app::project::Project;
use downbeat_core::maintain::Finding;
use serde_json::json;

use super::render::ids_json;
use crate::cli::*;
use crate::output::{json as print_json, out, outln};

/// Writes an integration report and prints its path (or the report itself with `-o -`).
pub async fn synthesize(
    p: &Project,
    id: Option<&str>,
    output: Option<std::path::PathBuf>,
    j: bool,
) -> Result<String, Error> {
    let (doc, default) = render_synthesis(p, id).await?;
    let target = output.unwrap_or(default);
    if target.as_os_str() == "-" {
        out(&doc);
        return Ok("-".into());
    }
    let shown = write_report(&target, &doc)?;
    if j {
        print_json(&json!({"path": shown, "bytes": doc.len()}));
    } else {
        outln(&shown);
    }
    Ok(shown)
}

pub(super) async fn handover(p: &Project, a: HandoverArgs, j: bool) -> Result<(), Error> {
    let (path, doc) = write_handover(p, a.output).await?;
    if path == "-" {
        out(&doc);
    } else if j {
        print_json(&json!({"path": path, "bytes": doc.len()}));
    } else {
        outln(&path);
    }
    Ok(())
}

pub(super) async fn maintain_cmd(p: &Project, a: MaintainArgs, j: bool) -> Result<(), Error> {
    let Maintenance {
        findings,
        integrity,
        actions,
    } = maintenance(
        p,
        a.apply,
        a.stale_after.as_deref(),
        a.archive_after.as_deref(),
    )
    .await?;
    if j {
        print_json(
            &json!({"findings": findings, "integrity": integrity, "applied": a.apply, "actions": actions}),
        );
        return Ok(());
    }
    let mut s = String::new();
    for f in &findings {
        let line = match f {
            Finding::StaleRunning {
                task,
                idle,
                threshold,
            } => format!(
                "stale: {task} running with no activity for {idle} (threshold {threshold}) → requeue"
            ),
            Finding::StaleBlocked {
                task,
                idle,
                threshold,
            } => {
                format!("stale: {task} blocked for {idle} (threshold {threshold}) → needs a person")
            }
            Finding::Archive { root, tasks } => format!(
                "archive: {root} and its subtree ({} task(s)) finished long ago",
                tasks.len()
            ),
            Finding::Cycle { path } => format!(
                "damaged: dependency cycle {} → remove one edge with `downbeat dep rm`",
                ids_json(path).join(" → ")
            ),
            Finding::ParentLoop { tasks } => format!(
                "damaged: parent loop {} → fix with `downbeat edit ID --parent none`",
                ids_json(tasks).join(" → ")
            ),
        };
        let _ = writeln!(s, "{line}");
    }
    for (f, t, k) in &integrity.dangling_edges {
        let _ = writeln!(
            s,
            "damaged: {k} edge {f} → {t} points at a missing task → remove"
        );
    }
    for (t, parent) in &integrity.orphans {
        let _ = writeln!(s, "damaged: {t} has a missing parent (#{parent}) → detach");
    }
    for (r, t) in &integrity.dangling_links {
        let _ = writeln!(s, "damaged: {r} points at missing task #{t} → unlink");
    }
    if s.is_empty() {
        s.push_str("nothing to do: no stale tasks, no damage, nothing old enough to archive\n");
    }
    if a.apply {
        for act in &actions {
            let _ = writeln!(s, "done: {act}");
        }
    } else if findings.iter().any(Finding::is_fixable)
        || integrity != downbeat_store::Integrity::default()
    {
        s.push_str("(dry run: `downbeat maintain --apply` acts on the findings marked →)\n");
    }
    out(&s);
    Ok(())
}
