//! Maintenance: stale tasks, archivable work and structural damage found by the core's policy,
//! and, when asked, acted upon (requeue, archive, repair, optimise).

use downbeat_core::maintain::{self, Finding, Policy};
use downbeat_core::task::Status;
use downbeat_core::time::Millis;
use downbeat_store::TaskFilter;

use crate::error::Error;
use crate::project::Project;

/// What maintenance found, and what it did when applied.
pub struct Maintenance {
    pub findings: Vec<Finding>,
    pub integrity: downbeat_store::Integrity,
    pub actions: Vec<String>,
}

/// Reviews the project (stale tasks, archivable work, damage) and, with `apply`, acts on the
/// findings. Thresholds default to the configuration.
pub async fn maintenance(
    p: &Project,
    apply: bool,
    stale_after: Option<&str>,
    archive_after: Option<&str>,
) -> Result<Maintenance, Error> {
    let dur =
        |what: &str, s: &str| Millis::parse(s).map_err(|e| Error::invalid(format!("{what}: {e}")));
    let mut policy = Policy {
        stale_after: dur(
            "stale_after",
            stale_after.unwrap_or(&p.config.maintain.stale_after),
        )?,
        archive_after: dur(
            "archive_after",
            archive_after.unwrap_or(&p.config.maintain.archive_after),
        )?,
        ..Default::default()
    };
    for r in p.roles.iter() {
        if let Some(s) = &r.stale_after {
            policy
                .stale_after_role
                .insert(r.name.clone(), dur("stale_after", s)?);
        }
    }
    let tasks = p.store.tasks(&TaskFilter::default()).await?;
    let edges = p.store.graph().await?.edges;
    let findings = maintain::review(&tasks, &edges, p.now(), &policy);
    let integrity = p.store.integrity().await?;
    let mut actions: Vec<String> = Vec::new();
    if apply {
        let actor = p.actor().await?;
        for f in &findings {
            match f {
                Finding::StaleRunning { task, idle, .. } => {
                    let note_text =
                        format!("put back to pending by maintenance: no activity for {idle}");
                    p.store
                        .set_status(*task, Status::Pending, Some(&note_text), &actor)
                        .await?;
                    actions.push(format!("requeued {task}"));
                }
                Finding::Archive { root, tasks } => {
                    let n = p.store.archive(tasks, &actor).await?;
                    actions.push(format!("archived {n} task(s) under {root}"));
                }
                _ => {}
            }
        }
        if integrity != downbeat_store::Integrity::default() {
            let n = p.store.repair(&integrity, &actor).await?;
            actions.push(format!("repaired {n} dangling reference(s)"));
        }
        // Worktrees kept by failed attempts of tasks that are not running any more.
        let removed = crate::worktrees::clean(p).await?;
        if removed > 0 {
            actions.push(format!(
                "removed {removed} worktree(s) of tasks not running"
            ));
        }
        p.store.optimize().await?;
        p.store
            .record_event("maintain.optimized", "database", None, &actor)
            .await?;
        actions.push("optimised the database".into());
    }
    Ok(Maintenance {
        findings,
        integrity,
        actions,
    })
}
