//! Objectives linked to their tasks after they were recorded, and achieved once those tasks
//! are all completed: by hand, through a run, or at once when linked to finished work.

mod common;

use common::Env;
use serde_json::Value;

fn objective(e: &Env, id: &str) -> Value {
    e.json(&["objective", "list"])
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("no objective {id}"))
}

#[test]
fn objectives_are_linked_later_and_achieved_when_their_tasks_are_done() {
    let e = Env::builder().keep("PATH").fixed_clock().init().build();
    e.ok(&["add", "Auth", "--key", "auth"]);
    e.ok(&["add", "Login", "--key", "login", "--parent", "auth"]);
    e.ok(&["add", "Logout", "--key", "logout", "--parent", "auth"]);
    e.ok(&["add", "Docs", "--key", "docs", "--shell", "true"]);
    e.ok(&["objective", "add", "Users can log in"]);
    assert!(
        e.ok(&["status"])
            .contains("objective o1 Users can log in — no tasks linked")
    );
    let o = e.json(&["objective", "link", "o1", "auth", "docs"]);
    assert_eq!(o["status"], "active");
    assert_eq!(o["tasks"].as_array().unwrap().len(), 2);
    // Linking again changes nothing and logs nothing more.
    e.ok(&["objective", "link", "o1", "docs"]);
    let linked = e
        .json(&["log"])
        .as_array()
        .unwrap()
        .iter()
        .filter(|ev| ev["action"] == "objective.linked")
        .count();
    assert_eq!(linked, 1);

    e.ok(&["done", "login"]);
    e.ok(&["done", "logout"]);
    assert_eq!(objective(&e, "o1")["status"], "active");
    assert!(
        e.ok(&["status"])
            .contains("objective o1 Users can log in — 2/3 tasks done")
    );
    // The last linked task, completed by a run.
    e.ok(&["run"]);
    assert_eq!(objective(&e, "o1")["status"], "achieved");
    let log = e.json(&["log"]);
    let achieved = log
        .as_array()
        .unwrap()
        .iter()
        .find(|ev| ev["action"] == "objective.status" && ev["entity"] == "o1")
        .expect("an objective.status event");
    assert_eq!(achieved["after"]["status"], "achieved");
    assert!(
        e.ok(&["status"])
            .contains("objective o1 Users can log in — achieved")
    );

    // Linked to finished work: achieved at once.
    e.ok(&["objective", "add", "Docs are written"]);
    let o = e.json(&["objective", "link", "o2", "docs"]);
    assert_eq!(o["status"], "achieved");
    // Completed by hand: achieved too.
    e.ok(&["add", "Review", "--key", "review"]);
    e.ok(&["objective", "add", "Reviewed", "--task", "review"]);
    e.ok(&["done", "review"]);
    assert_eq!(objective(&e, "o3")["status"], "achieved");

    // Bad input is clear.
    let err = e.fails(&["objective", "link", "o9", "docs"], 3);
    assert!(err.contains("o9"), "{err}");
    let err = e.fails(&["objective", "link", "o1", "nosuch"], 3);
    assert!(err.contains("nosuch"), "{err}");
    e.fails(&["objective", "link", "o1"], 2);
}

/// Under a worker that keeps running, an objective is achieved a few seconds after its last
/// task completes there, not only when the worker stops.
#[test]
fn a_running_worker_achieves_objectives_as_their_tasks_complete() {
    let mut e = Env::builder().keep("PATH").init().build();
    e.ok(&["add", "Ship it", "--key", "ship", "--shell", "true"]);
    e.ok(&["objective", "add", "Shipped", "--task", "ship"]);
    let worker = e
        .command(&["worker", "--slots", "1"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = e.adopt(worker);
    let start = std::time::Instant::now();
    while objective(&e, "o1")["status"] != "achieved" {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "never achieved: {}",
            objective(&e, "o1")
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let child = e.children.iter_mut().find(|c| c.id() == pid).unwrap();
    assert!(
        child.try_wait().unwrap().is_none(),
        "the worker is still running"
    );
}
