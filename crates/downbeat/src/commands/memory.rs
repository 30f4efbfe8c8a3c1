//! `downbeat memory sync`: Downbeat's section in the project's memory files.

use downbeat_app::error::Error;
use downbeat_app::memory::{self, SyncRequest};
use downbeat_app::project::Project;

use crate::cli::{MemoryCmd, MemorySyncArgs};
use crate::output::{json as print_json, note, out};

pub(super) async fn memory_cmd(p: &Project, c: MemoryCmd, j: bool) -> Result<(), Error> {
    match c {
        MemoryCmd::Sync(a) => sync(p, a, j).await,
    }
}

async fn sync(p: &Project, a: MemorySyncArgs, j: bool) -> Result<(), Error> {
    let files = match a.file.as_str() {
        "both" | "all" => None,
        f => Some(vec![f.to_owned()]),
    };
    let req = SyncRequest {
        files,
        dry_run: a.dry_run,
    };
    let done = memory::sync(p, &req).await?;
    if j {
        print_json(&done);
        return Ok(());
    }
    let mut s = String::new();
    for f in &done.files {
        let verb = match (done.dry_run, f.change) {
            (true, "created") => "would create",
            (true, "updated") => "would update",
            (_, change) => change,
        };
        s.push_str(&format!("{verb:<13} {}\n", f.path));
    }
    out(&s);
    if done.dry_run {
        note("dry run: nothing was written; the section would read:");
        note(done.section.trim_end());
    }
    Ok(())
}
