//! `log --follow` and `-C DIR`.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use common::Env;

#[test]
fn log_follow_prints_changes_as_they_happen_until_sigterm() {
    let mut env = Env::builder().init().build();
    env.ok(&["add", "First", "--key", "first"]);
    let child = env
        .command(&["log", "--follow", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut child = child;
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    env.adopt(child);
    // What was there: one object a line.
    let first: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(first["action"], "task.created");
    // What comes.
    env.ok(&["done", "first", "--result", "done it"]);
    let next: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(next["action"], "task.status");
    assert_eq!(next["after"]["status"], "completed");
    assert_eq!(
        next["seq"].as_i64(),
        Some(first["seq"].as_i64().unwrap() + 1)
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let child = env.children.iter_mut().find(|c| c.id() == pid).unwrap();
    let status = common::exit_within(child, Duration::from_secs(10), "log --follow after SIGTERM");
    assert!(status.success(), "{status:?}");
}

#[test]
fn log_follow_of_one_task_shows_only_its_changes() {
    let mut env = Env::builder().init().build();
    env.ok(&["add", "Watched", "--key", "watched"]);
    env.ok(&["add", "Other", "--key", "other"]);
    let mut child = env
        .command(&["log", "--follow", "--task", "watched"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    env.adopt(child);
    assert!(lines.next().unwrap().unwrap().contains("task.created"));
    env.ok(&["done", "other"]);
    env.ok(&["done", "watched"]);
    let line = lines.next().unwrap().unwrap();
    let id = env.json(&["show", "watched"])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(line.contains("task.status") && line.contains(&id), "{line}");
}

#[test]
fn dash_c_runs_as_if_started_there() {
    let env = Env::builder().build();
    let sub = env.tmp().join("elsewhere");
    std::fs::create_dir_all(&sub).unwrap();
    env.ok(&["-C", "elsewhere", "init"]);
    assert!(sub.join(".downbeat/config.toml").is_file());
    env.ok(&["-C", "elsewhere", "add", "Over there"]);
    let titles: Vec<String> = env
        .json(&["-C", "elsewhere", "list"])
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["title"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(titles, ["Over there"]);
    let err = env.fails(&["-C", "nowhere", "status"], 3);
    assert!(err.contains("cannot change to nowhere"), "{err}");
}
