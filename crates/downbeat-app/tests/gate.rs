//! The admission gate on manual status changes (`tasks::set_status`), on a SQLite project in a
//! temporary directory.

use downbeat_app::project::{self, Globals, Project};
use downbeat_app::{Kind, tasks};
use downbeat_core::task::{NewTask, Status, Task};
use downbeat_core::time::Timestamp;

async fn project() -> (tempfile::TempDir, Project) {
    let dir = tempfile::tempdir().unwrap();
    let g = Globals {
        project: Some(dir.path().to_owned()),
        actor: "tester".into(),
        fixed_now: Timestamp::parse_rfc3339("2026-03-01T09:00:00Z"),
        cwd: dir.path().to_owned(),
        ..Default::default()
    };
    let (p, _) = project::init(&g).await.unwrap();
    (dir, p)
}

/// A project with `design` and `build`, which waits on it.
async fn design_then_build() -> (tempfile::TempDir, Project, Task, Task) {
    let (dir, p) = project().await;
    let actor = p.actor().await.unwrap();
    let design = p
        .store
        .create_task(&new("design"), &[], &actor)
        .await
        .unwrap();
    let build = p
        .store
        .create_task(&new("build"), &[design.id], &actor)
        .await
        .unwrap();
    (dir, p, design, build)
}

fn new(title: &str) -> NewTask {
    NewTask {
        title: title.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn starting_or_completing_a_waiting_task_is_refused_with_what_it_waits_on() {
    let (_dir, p, design, build) = design_then_build().await;
    for to in [Status::Running, Status::Completed] {
        let e = tasks::set_status(&p, build.id, to, None, false)
            .await
            .unwrap_err();
        assert_eq!(e.kind, Kind::Conflict, "{e}");
        assert!(e.message.contains(&design.id.to_string()), "{e}");
        assert!(e.message.contains("design"), "{e}");
        assert!(e.hint.as_deref().unwrap_or("").contains("--force"), "{e:?}");
        assert_eq!(
            p.store.task(build.id).await.unwrap().status,
            Status::Pending
        );
    }
    // Other manual changes are not gated.
    let skipped = tasks::set_status(&p, build.id, Status::Blocked, Some("later"), false)
        .await
        .unwrap();
    assert_eq!(skipped[0].status, Status::Blocked);
    tasks::set_status(&p, build.id, Status::Pending, None, false)
        .await
        .unwrap();
    // Forced, it goes through.
    let forced = tasks::set_status(&p, build.id, Status::Running, None, true)
        .await
        .unwrap();
    assert_eq!(forced[0].status, Status::Running);
}

#[tokio::test]
async fn a_task_whose_dependencies_are_done_passes_the_gate() {
    let (_dir, p, design, build) = design_then_build().await;
    tasks::set_status(&p, design.id, Status::Running, None, false)
        .await
        .unwrap();
    tasks::set_status(&p, design.id, Status::Completed, None, false)
        .await
        .unwrap();
    let done = tasks::set_status(&p, build.id, Status::Completed, Some("shipped"), false)
        .await
        .unwrap();
    assert_eq!(done[0].status, Status::Completed);
}

#[tokio::test]
async fn a_running_task_that_was_forced_still_cannot_complete_early() {
    let (_dir, p, _design, build) = design_then_build().await;
    tasks::set_status(&p, build.id, Status::Running, None, true)
        .await
        .unwrap();
    let e = tasks::set_status(&p, build.id, Status::Completed, None, false)
        .await
        .unwrap_err();
    assert_eq!(e.kind, Kind::Conflict, "{e}");
}
