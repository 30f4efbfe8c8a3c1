//! `downbeat diff`, `land`, `worktrees`.

use downbeat_app::error::Error;
use downbeat_app::project::Project;
use downbeat_app::worktrees;
use serde_json::json;

use crate::cli::{DiffArgs, LandArgs, WorktreesArgs};
use crate::output::{json as print_json, note, out, outln, table};

pub(super) async fn diff(p: &Project, a: DiffArgs, j: bool) -> Result<(), Error> {
    let d = worktrees::diff(p, &a.id, a.attempt, a.stat).await?;
    if j {
        print_json(&d);
        return Ok(());
    }
    note(&format!(
        "task {} attempt {} on {}: {} file(s), +{} -{}, {}",
        d.task,
        d.attempt,
        d.git.branch,
        d.git.files,
        d.git.insertions,
        d.git.deletions,
        d.git.state.name()
    ));
    out(&d.diff);
    if !d.diff.ends_with('\n') && !d.diff.is_empty() {
        outln("");
    }
    Ok(())
}

pub(super) async fn land(p: &Project, a: LandArgs, j: bool) -> Result<(), Error> {
    let l = worktrees::land(p, a.into).await?;
    if j {
        print_json(&l);
    } else if l.how == "up-to-date" {
        outln(&format!(
            "{} is up to date with the integration branch",
            l.into
        ));
    } else {
        outln(&format!(
            "landed {} commit(s) into {} ({}): {} → {}",
            l.commits,
            l.into,
            l.how,
            &l.from[..l.from.len().min(10)],
            &l.to[..l.to.len().min(10)]
        ));
    }
    Ok(())
}

pub(super) async fn worktrees(p: &Project, a: WorktreesArgs, j: bool) -> Result<(), Error> {
    if a.clean {
        let n = worktrees::clean(p).await?;
        if j {
            print_json(&json!({"removed": n}));
        } else {
            outln(&format!("removed {n} worktree(s)"));
        }
        return Ok(());
    }
    let list = worktrees::list(p).await?;
    if j {
        let rows: Vec<_> = list
            .iter()
            .map(|(t, n, path)| json!({"task": t, "attempt": n, "path": path}))
            .collect();
        print_json(&rows);
    } else if list.is_empty() {
        note("no worktrees are left");
    } else {
        let rows: Vec<Vec<String>> = list
            .into_iter()
            .map(|(t, n, path)| vec![t, n.to_string(), path])
            .collect();
        out(&table(&["TASK", "ATTEMPT", "PATH"], &rows));
    }
    Ok(())
}
