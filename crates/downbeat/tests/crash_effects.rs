//! A completion and its flag effects commit together: `downbeat run` killed with SIGKILL at
//! many points never leaves a completed flagging task without its follow-up, nor a follow-up
//! whose flagging task is not completed.

mod common;

use std::collections::HashMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::Env;
use downbeat_core::task::{EdgeKind, Status};
use downbeat_store::sqlite::SqliteStore;
use downbeat_store::{TaskFilter, TaskStore};

const FLAGGERS: usize = 12;

/// Checks the invariant on the stored graph; returns how many flagging tasks completed.
fn check(e: &Env, rt: &tokio::runtime::Runtime) -> usize {
    let db = e.path().join(".downbeat/downbeat.db");
    let store = rt.block_on(SqliteStore::open(&db, false)).unwrap();
    let tasks = rt.block_on(store.tasks(&TaskFilter::default())).unwrap();
    let edges = rt.block_on(store.edges()).unwrap();
    let by_id: HashMap<_, _> = tasks.iter().map(|t| (t.id, t)).collect();
    let links: Vec<_> = edges
        .iter()
        .filter(|e| e.kind == EdgeKind::DiscoveredFrom)
        .collect();
    let mut completed = 0;
    for t in tasks.iter().filter(|t| t.title.starts_with("flagger")) {
        let follow_ups = links.iter().filter(|l| l.from == t.id).count();
        if t.status == Status::Completed {
            completed += 1;
            assert_eq!(
                follow_ups, 1,
                "completed {} has {follow_ups} follow-ups",
                t.id
            );
        } else {
            assert_eq!(follow_ups, 0, "{} is {} with a follow-up", t.id, t.status);
        }
    }
    for f in tasks.iter().filter(|t| t.title.starts_with("Follow up")) {
        let from: Vec<_> = links.iter().filter(|l| l.to == f.id).collect();
        assert_eq!(
            from.len(),
            1,
            "follow-up {} has {} sources",
            f.id,
            from.len()
        );
        let source = by_id[&from[0].from];
        assert_eq!(source.status, Status::Completed, "source of {}", f.id);
    }
    completed
}

#[test]
fn a_killed_run_never_splits_a_completion_from_its_follow_up() {
    let e = Env::builder().keep("PATH").init().build();
    std::fs::write(
        e.path().join(".downbeat/config.toml"),
        "[run]\nexecutor = \"noop\"\n[[rules]]\nflag = \"FOLLOW\"\naction = \"add-task\"\ntitle = \"Follow up {{ task.title }}\"\n",
    )
    .unwrap();
    let script = r#"sleep 0.05; echo '{"flags": ["FOLLOW"]}' > "$DOWNBEAT_RESULT_FILE""#;
    for i in 0..FLAGGERS {
        e.ok(&["add", &format!("flagger {i}"), "--shell", script]);
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    for round in 0..15u64 {
        if Instant::now() > deadline {
            break;
        }
        let mut runner = e
            .command(&["run", "-j", "3"])
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(60 + 25 * round));
        runner.kill().unwrap();
        runner.wait().unwrap();
        check(&e, &rt);
    }
    let o = e.run(&["run", "-j", "3"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(check(&e, &rt), FLAGGERS);
}
