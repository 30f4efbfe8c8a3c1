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
