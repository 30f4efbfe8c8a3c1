//! `downbeat pause`, `unpause`, `holds`.

use downbeat_app::error::Error;
use downbeat_app::holds;
use downbeat_app::project::Project;

use crate::output::{json as print_json, note, outln};

pub(super) async fn pause(p: &Project, reason: &str, j: bool) -> Result<(), Error> {
    let h = holds::pause(p, reason).await?;
    if j {
        print_json(&h);
    } else {
        outln(&format!(
            "hold {}: nothing new starts anywhere on this project",
            h.id
        ));
        note("running attempts go on; `downbeat unpause` releases the hold");
    }
    Ok(())
}

pub(super) async fn unpause(p: &Project, hold: Option<u32>, j: bool) -> Result<(), Error> {
    let released = holds::release(p, hold).await?;
    if j {
        print_json(&released);
    } else if released.is_empty() {
        note("no holds were in force");
    } else {
        for h in &released {
            outln(&format!("released hold {}: {}", h.id, h.reason));
        }
    }
    Ok(())
}

pub(super) fn hold_line(h: &downbeat_store::Hold) -> String {
    match h.task {
        Some(t) => format!(
            "hold {}: only {t} may start until it is done — {}",
            h.id, h.reason
        ),
        None => format!("hold {}: nothing new starts — {}", h.id, h.reason),
    }
}

pub(super) async fn holds(p: &Project, j: bool) -> Result<(), Error> {
    let list = holds::list(p).await?;
    if j {
        print_json(&list);
    } else if list.is_empty() {
        note("no holds: work starts as soon as it is ready");
    } else {
        for h in &list {
            outln(&hold_line(h));
        }
    }
    Ok(())
}
