//! Each coding agent in its own git worktree, their work merged into the integration branch in
//! dependency order: end to end through `downbeat run`, with real git and real repositories, and
//! the Claude Code stand-in (`tests/fakes`) doing the edits.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Env;
use serde_json::{Value, json};

fn fakes() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fakes/bin")
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args([
            "-c",
            "user.name=Someone",
            "-c",
            "user.email=someone@example.com",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A project in a git repository with one commit, the Claude Code stand-in as the `claude`
/// executor (the project's default) following `script`, and `config` appended.
fn repo(script: Value, config: &str) -> Env {
    let e = Env::builder()
        .home_inside()
        .var("PATH", &stand_ins_path())
        .init()
        .build();
    set_up(&e, script, config);
    e
}

fn stand_ins_path() -> String {
    format!("{}:/usr/bin:/bin", fakes().display())
}

/// Writes the configuration (the stand-in following `script`, then `config`, which may add
/// keys of its own to `[run]`) and makes the project a repository with one commit.
fn set_up(e: &Env, script: Value, config: &str) {
    let script_file = e.tmp().join("script.json");
    std::fs::write(&script_file, script.to_string()).unwrap();
    let (run_extra, rest) = match config.strip_prefix("[run]\n") {
        Some(r) => r.split_once("\n\n").unwrap_or((r, "")),
        None => ("", config),
    };
    e.write(
        ".downbeat/config.toml",
        &format!(
            "[run]\nexecutor = \"claude\"\n{run_extra}\n\n[executors.claude]\ntype = \"agent\"\nagent = \"claude\"\nenv = {{ FAKE_AGENT_SCRIPT = \"{}\", FAKE_AGENT_LOG = \"{}\" }}\n\n{rest}",
            script_file.display(),
            log_file(e).display()
        ),
    );
    e.write("README.md", "# demo\n");
    git(e.path(), &["init", "-q", "-b", "main"]);
    git(e.path(), &["add", "-A"]);
    git(e.path(), &["commit", "-q", "-m", "start"]);
}

fn log_file(e: &Env) -> PathBuf {
    e.tmp().join("agent.log")
}

fn calls(e: &Env) -> Vec<Value> {
    std::fs::read_to_string(log_file(e))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn run_ok(e: &Env, args: &[&str]) {
    let o = e.run(args);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

fn show(e: &Env, rev_path: &str) -> String {
    git(e.path(), &["show", rev_path])
}

fn merges_of(e: &Env, id: &str) -> usize {
    let grep = format!("--grep=^Downbeat-Task: {id}$");
    git(
        e.path(),
        &[
            "log",
            "--merges",
            "--first-parent",
            "--format=%H",
            &grep,
            "downbeat/integration",
        ],
    )
    .lines()
    .count()
}

fn id_of(e: &Env, key: &str) -> String {
    e.json(&["show", key])["id"].as_str().unwrap().to_owned()
}

#[test]
fn six_agents_work_in_parallel_in_their_own_worktrees_and_a_dependent_sees_all_their_work() {
    let steps: Vec<Value> = (1..=6)
        .map(|i| {
            json!({"when": format!("Write file number {i}."), "write": {format!("f{i}.txt"): format!("{i}\n")},
                   "message": format!("wrote f{i}.txt"), "sleep_ms": 300})
        })
        .collect();
    let e = repo(
        json!({ "steps": steps }),
        "[roles.tester]\nexecutor = \"check\"\nworktree = true\n\n[executors.check]\ntype = \"process\"\nshell = \"cat f1.txt f2.txt f3.txt f4.txt f5.txt f6.txt > seen.txt\"\n",
    );
    let mut keys = Vec::new();
    for i in 1..=6 {
        let key = format!("w{i}");
        e.ok(&[
            "add",
            &format!("Write file number {i}."),
            "--role",
            "implementer",
            "--key",
            &key,
        ]);
        keys.push(key);
    }
    let mut add = vec![
        "add",
        "Check the files",
        "--role",
        "tester",
        "--key",
        "check",
    ];
    for k in &keys {
        add.extend(["--after", k.as_str()]);
    }
    e.ok(&add);
    run_ok(&e, &["run", "-j", "6"]);

    // Every agent worked in a worktree of its own, none in the user's tree.
    let log = calls(&e);
    assert_eq!(log.len(), 6, "{log:?}");
    let mut cwds: Vec<&str> = log.iter().map(|c| c["cwd"].as_str().unwrap()).collect();
    cwds.sort();
    cwds.dedup();
    assert_eq!(cwds.len(), 6, "{cwds:?}");
    assert!(
        cwds.iter().all(|c| c.contains(".downbeat/worktrees/")),
        "{cwds:?}"
    );
    assert!(
        !e.path().join("f1.txt").exists(),
        "the user's tree is untouched"
    );
    // All of it landed on the integration branch, one merge per task, and the checker, which
    // started from there after all six, saw every file.
    assert_eq!(
        show(&e, "downbeat/integration:seen.txt"),
        "1\n2\n3\n4\n5\n6"
    );
    for k in keys.iter().chain(std::iter::once(&"check".to_owned())) {
        assert_eq!(merges_of(&e, &id_of(&e, k)), 1, "{k}");
    }
    assert_eq!(
        git(e.path(), &["rev-parse", "--abbrev-ref", "HEAD"]),
        "main"
    );
    // The ledger, `diff` and `show` tell each task's change; the worktrees are gone.
    let a = e.json(&["attempts", "w3"]);
    let g = &a[0]["detail"]["git"];
    assert_eq!(
        (g["state"].as_str(), g["files"].as_u64()),
        (Some("merged"), Some(1)),
        "{a}"
    );
    let d = e.json(&["diff", "w3"]);
    assert!(d["diff"].as_str().unwrap().contains("+3"), "{d}");
    assert_eq!(d["branch"], g["branch"]);
    assert!(e.ok(&["diff", "w3", "--stat"]).contains("f3.txt"));
    assert_eq!(e.json(&["show", "w3"])["git"]["state"], "merged");
    assert!(e.ok(&["show", "w3"]).contains("merged on downbeat/tasks/"));
    assert_eq!(e.json(&["worktrees"]), json!([]));
    assert_eq!(e.json(&["status"])["work"]["merged"], 7);
    assert!(
        e.ok(&["status"])
            .contains("work: 7 task(s) merged into downbeat/integration")
    );
    // The integration report lists the merges.
    let report = std::fs::read_to_string(e.path().join(".downbeat/reports/project.md")).unwrap();
    let landed = report.split("## Landed").nth(1).expect("a Landed section");
    assert_eq!(landed.matches("file(s), +1 -0").count(), 6, "{report}");
    // `land` brings it all into the user's branch.
    let l = e.json(&["land"]);
    assert_eq!(
        (l["into"].as_str(), l["how"].as_str()),
        (Some("main"), Some("fast-forward")),
        "{l}"
    );
    assert_eq!(
        std::fs::read_to_string(e.path().join("seen.txt")).unwrap(),
        "1\n2\n3\n4\n5\n6\n"
    );
}

/// Two tasks of one wave write the same file differently; a third waits for both and copies
/// the file as it finds it.
fn conflicting(policy: &str) -> Env {
    let e = repo(
        json!({"steps": [
            {"when": "Resolve the merge conflict", "write": {"shared.txt": "merged\n"}, "message": "kept both"},
            {"when": "Edit shared A", "write": {"shared.txt": "from A\n"}, "message": "A", "sleep_ms": 400},
            {"when": "Edit shared B", "write": {"shared.txt": "from B\n"}, "message": "B", "sleep_ms": 400},
        ]}),
        &format!(
            "[worktrees]\nconflict = \"{policy}\"\n\n[run.retry]\nmax_attempts = 2\ndelay = \"0s\"\njitter = false\n\n[roles.tester]\nexecutor = \"copy\"\nworktree = true\n\n[executors.copy]\ntype = \"process\"\nshell = \"cp shared.txt after.txt\"\n"
        ),
    );
    e.ok(&[
        "add",
        "Edit shared A",
        "--role",
        "implementer",
        "--key",
        "a",
    ]);
    e.ok(&[
        "add",
        "Edit shared B",
        "--role",
        "implementer",
        "--key",
        "b",
    ]);
    e.ok(&[
        "add", "Copy it", "--role", "tester", "--key", "after", "--after", "a", "--after", "b",
    ]);
    git(e.path(), &["add", "-A"]);
    e
}

/// The task of `a` and `b` whose merge conflicted, and its attempts.
fn loser(e: &Env) -> (String, Vec<Value>) {
    for k in ["a", "b"] {
        let at = e.json(&["attempts", k]).as_array().unwrap().clone();
        if at[0]["detail"]["git"]["conflicts"].is_array() {
            return (k.to_owned(), at);
        }
    }
    panic!("no conflict was recorded");
}

#[test]
fn a_conflict_under_the_fail_policy_fails_the_task_and_keeps_its_worktree() {
    let e = conflicting("fail");
    let o = e.run(&["run", "-j", "2"]);
    assert_eq!(
        o.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let (k, at) = loser(&e);
    assert_eq!(at.len(), 1, "no retry under `fail`: {at:?}");
    let err = at[0]["error"].as_str().unwrap();
    assert!(
        err.contains("merge conflict") && err.contains("shared.txt"),
        "{err}"
    );
    assert_eq!(e.json(&["show", &k])["status"], "failed");
    let kept = e.json(&["worktrees"]);
    assert_eq!(kept.as_array().unwrap().len(), 1, "{kept}");
    assert!(
        Path::new(kept[0]["path"].as_str().unwrap())
            .join("shared.txt")
            .exists()
    );
    // The winner landed; the integration branch holds its side only.
    let winner = if k == "a" { "B" } else { "A" };
    assert_eq!(
        show(&e, "downbeat/integration:shared.txt"),
        format!("from {winner}")
    );
    // `maintain --apply` (or `worktrees --clean`) removes what a failed attempt kept.
    let m = e.json(&["maintain", "--apply"]);
    assert!(
        m["actions"].to_string().contains("removed 1 worktree(s)"),
        "{m}"
    );
    assert_eq!(e.json(&["worktrees"]), json!([]));
    assert_eq!(e.json(&["worktrees", "--clean"])["removed"], 0);
}

#[test]
fn a_conflict_under_the_retry_policy_tries_again_from_the_new_tip_and_lands() {
    let e = conflicting("retry");
    run_ok(&e, &["run", "-j", "2"]);
    let (k, at) = loser(&e);
    assert_eq!(at.len(), 2, "{at:?}");
    assert_eq!(at[0]["detail"]["git"]["state"], "conflict");
    assert_eq!(at[1]["detail"]["git"]["state"], "merged");
    // The retry started from the tip that held the winner's merge.
    let winner = if k == "a" { "b" } else { "a" };
    let won = e.json(&["attempts", winner])[0]["detail"]["git"]["merge"].clone();
    assert_eq!(at[1]["detail"]["git"]["base"], won);
    let side = k.to_uppercase();
    assert_eq!(
        show(&e, "downbeat/integration:after.txt"),
        format!("from {side}")
    );
}

#[test]
fn a_conflict_under_the_resolve_policy_adds_a_resolver_that_the_dependents_wait_for() {
    let e = conflicting("resolve");
    run_ok(&e, &["run", "-j", "2"]);
    let (k, at) = loser(&e);
    assert_eq!(at.len(), 1, "{at:?}");
    assert_eq!(at[0]["detail"]["git"]["state"], "resolving");
    assert_eq!(e.json(&["show", &k])["status"], "completed");
    // The resolver worked in a worktree holding the conflicted merge, as a debugger.
    let log = calls(&e);
    let r = log
        .iter()
        .find(|c| {
            c["prompt"]
                .as_str()
                .unwrap()
                .contains("Resolve the merge conflict")
        })
        .expect("the resolver ran");
    let prompt = r["prompt"].as_str().unwrap();
    assert!(
        prompt.contains("shared.txt") && prompt.contains("downbeat/tasks/"),
        "{prompt}"
    );
    let list = e.json(&["list"]);
    let resolver = list
        .as_array()
        .unwrap()
        .iter()
        .find(|t| {
            t["title"]
                .as_str()
                .unwrap()
                .starts_with("Resolve the merge conflict")
        })
        .unwrap()
        .clone();
    assert_eq!(
        (resolver["role"].as_str(), resolver["status"].as_str()),
        (Some("debugger"), Some("completed"))
    );
    // Its merge brought the loser's commit in, and the dependent saw the resolved file.
    let head = at[0]["detail"]["git"]["head"].as_str().unwrap().to_owned();
    assert!(
        Command::new("git")
            .current_dir(e.path())
            .args(["merge-base", "--is-ancestor", &head, "downbeat/integration"])
            .status()
            .unwrap()
            .success()
    );
    assert_eq!(show(&e, "downbeat/integration:after.txt"), "merged");
}

#[test]
fn a_runner_killed_mid_attempt_loses_nothing_and_merges_once() {
    let e = repo(
        json!({"steps": [
            {"attempt": 1, "when": "Slow work", "sleep_ms": 20000, "write": {"slow.txt": "late\n"}},
            {"when": "Slow work", "write": {"slow.txt": "done\n"}, "message": "done"},
        ]}),
        "[run]\nlease = \"2s\"\n",
    );
    e.ok(&["add", "Slow work", "--role", "implementer", "--key", "slow"]);
    let id = id_of(&e, "slow");
    let mut runner = e
        .command(&["run"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let tree = e.path().join(".downbeat/worktrees").join(&id);
    let start = Instant::now();
    // The agent is in its 20 s sleep in its worktree when the runner is killed.
    while !(tree.exists() && start.elapsed() > Duration::from_millis(800)) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the attempt never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    runner.kill().unwrap();
    runner.wait().unwrap();
    assert!(calls(&e).is_empty(), "the first attempt had not ended");
    run_ok(&e, &["run"]);
    assert_eq!(e.json(&["attempts", "slow"]).as_array().unwrap().len(), 2);
    assert_eq!(e.json(&["show", "slow"])["status"], "completed");
    assert_eq!(merges_of(&e, &id), 1);
    assert_eq!(show(&e, "downbeat/integration:slow.txt"), "done");
    assert_eq!(e.json(&["worktrees"]), json!([]));
}

#[test]
fn a_task_reopened_after_its_work_landed_is_done_again() {
    // Its merge is in the ledger: reopening it asks for the work again, which is not the case
    // of a merge a dead runner never recorded (the mid-merge test).
    let e = repo(
        json!({"steps": [
            {"attempt": 1, "when": "Once", "write": {"once.txt": "1\n"}, "message": "wrote it"},
            {"when": "Once", "write": {"once.txt": "2\n"}, "message": "wrote it again"},
        ]}),
        "",
    );
    e.ok(&["add", "Once more", "--role", "implementer", "--key", "once"]);
    run_ok(&e, &["run"]);
    e.ok(&["reopen", "once"]);
    run_ok(&e, &["run"]);
    assert_eq!(calls(&e).len(), 2, "the agent ran again");
    assert_eq!(merges_of(&e, &id_of(&e, "once")), 2);
    assert_eq!(show(&e, "downbeat/integration:once.txt"), "2");
}

#[test]
fn land_refuses_a_dirty_working_tree_and_plain_commands_work_in_the_project() {
    let e = repo(
        json!({"steps": [{"when": "Feature", "write": {"feature.txt": "new\n"}, "message": "added"}]}),
        "[roles.documenter]\nexecutor = \"touch\"\n\n[executors.touch]\ntype = \"process\"\nshell = \"echo ran > ops.txt\"\n",
    );
    e.ok(&["add", "Feature", "--role", "implementer"]);
    e.ok(&["add", "Ops chore", "--role", "documenter"]);
    run_ok(&e, &["run"]);
    // A plain command ran in the project itself, not in a worktree.
    assert!(e.path().join("ops.txt").exists());
    e.write("README.md", "# changed by hand\n");
    let err = e.fails(&["land"], 5);
    assert!(err.contains("uncommitted changes"), "{err}");
    assert!(!e.path().join("feature.txt").exists());
    git(e.path(), &["checkout", "README.md"]);
    e.ok(&["land"]);
    assert_eq!(
        std::fs::read_to_string(e.path().join("feature.txt")).unwrap(),
        "new\n"
    );
    assert!(e.ok(&["land"]).contains("up to date"));
}

#[test]
fn without_a_repository_or_a_commit_the_user_is_told_what_to_do() {
    let e = repo(json!({"steps": []}), "");
    // The integration branch checked out by the user is refused before anything starts.
    e.ok(&[
        "add",
        "Something",
        "--role",
        "implementer",
        "--key",
        "something",
    ]);
    git(e.path(), &["branch", "downbeat/integration"]);
    git(e.path(), &["checkout", "-q", "downbeat/integration"]);
    let err = e.fails(&["run"], 4);
    assert!(err.contains("checked out"), "{err}");
    assert!(calls(&e).is_empty());
    // `diff` of a task that changed nothing says so.
    let err = e.fails(&["diff", "something"], 3);
    assert!(err.contains("no change"), "{err}");
}

#[test]
fn a_runner_killed_mid_merge_leaves_the_branch_whole_and_the_work_merged_once() {
    let e = repo(
        json!({"steps": [{"when": "Merge me", "write": {"m.txt": "1\n"}, "message": "wrote m.txt"}]}),
        "",
    );
    e.ok(&["add", "Merge me", "--role", "implementer", "--key", "m"]);
    let id = id_of(&e, "m");
    // git's reference-transaction hook holds the integration branch's update for 3 s once it
    // is prepared (and marks the moment): the runner is killed right then.
    let mark = e.tmp().join("merging");
    let hook = e.path().join(".git/hooks/reference-transaction");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\n[ \"$1\" = prepared ] || exit 0\nwhile read old new ref; do\n  if [ \"$ref\" = refs/heads/downbeat/integration ] && [ \"$old\" != 0000000000000000000000000000000000000000 ]; then touch '{}'; sleep 3; fi\ndone\nexit 0\n",
            mark.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    let before = git(e.path(), &["rev-parse", "HEAD"]);
    let mut runner = e
        .command(&["run"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !mark.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the merge never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    runner.kill().unwrap();
    runner.wait().unwrap();
    assert_eq!(
        e.json(&["show", "m"])["status"],
        "running",
        "killed before recording"
    );
    // The orphaned git finishes its one ref update or not at all: never half a merge.
    std::thread::sleep(Duration::from_millis(3500));
    // The git process the dead runner started finished its one ref update.
    let tip = git(e.path(), &["rev-parse", "downbeat/integration"]);
    assert_ne!(tip, before);
    assert_eq!(merges_of(&e, &id), 1, "one whole merge");
    std::fs::remove_file(&hook).unwrap();
    run_ok(&e, &["run"]);
    assert_eq!(e.json(&["show", "m"])["status"], "completed");
    assert_eq!(merges_of(&e, &id), 1, "merged exactly once");
    assert_eq!(show(&e, "downbeat/integration:m.txt"), "1");
    // Never recorded: the next run recognised the merge and did not do the work again.
    assert_eq!(calls(&e).len(), 1, "the agent's work was not done twice");
    let at = e.json(&["attempts", "m"]);
    assert!(
        at[1]["summary"]
            .as_str()
            .unwrap()
            .contains("merged already"),
        "{at}"
    );
}

/// Workers on two machines, each in its own clone, sharing one PostgreSQL database and one
/// remote (a bare repository): every task's work lands on the remote's integration branch,
/// once.
#[test]
fn workers_in_their_own_clones_land_everything_on_the_remote_once() {
    let mut e = Env::builder()
        .home_inside()
        .var("PATH", &stand_ins_path())
        .postgres("wtremote")
        .init()
        .build();
    let steps: Vec<Value> = (1..=6)
        .map(|i| json!({"when": format!("Write file number {i}."), "write": {format!("f{i}.txt"): format!("{i}\n")},
                        "message": format!("wrote f{i}.txt"), "sleep_ms": 200}))
        .collect();
    set_up(
        &e,
        json!({ "steps": steps }),
        "[worktrees]\nremote = \"origin\"\n",
    );
    let bare = e.tmp().join("remote.git");
    let seed = e.path().display().to_string();
    git(e.tmp(), &["clone", "-q", "--bare", &seed, "remote.git"]);
    let remote = bare.display().to_string();
    let clones: Vec<PathBuf> = ["one", "two"]
        .iter()
        .map(|n| {
            git(e.tmp(), &["clone", "-q", &remote, n]);
            e.tmp().join(n)
        })
        .collect();
    for i in 1..=6 {
        e.ok(&[
            "add",
            &format!("Write file number {i}."),
            "--role",
            "implementer",
        ]);
    }
    for c in &clones {
        let child = e
            .command(&["worker", "--slots", "3", "--lease", "10s"])
            .current_dir(c)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        e.adopt(child);
    }
    let t0 = Instant::now();
    while e.json(&["status"])["counts"]["completed"] != 6 {
        let failed = e.json(&["list", "--status", "failed"]);
        let failed = failed.as_array().unwrap();
        // A failed attempt says why.
        let why: Vec<Value> = failed
            .iter()
            .map(|t| e.json(&["attempts", t["id"].as_str().unwrap()]))
            .collect();
        assert!(why.is_empty(), "{why:?}");
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "{}",
            e.ok(&["status"])
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    for c in &mut e.children {
        let _ = c.kill();
        let _ = c.wait();
    }
    // Each agent worked in a worktree of one of the clones.
    let log = calls(&e);
    assert_eq!(log.len(), 6, "{log:?}");
    for c in &log {
        let cwd = c["cwd"].as_str().unwrap();
        assert!(
            clones
                .iter()
                .any(|k| cwd.starts_with(&k.display().to_string())),
            "{cwd}"
        );
    }
    // The remote's integration branch holds every file, one merge per task.
    let tree = git(&bare, &["ls-tree", "--name-only", "downbeat/integration"]);
    for i in 1..=6 {
        assert!(tree.lines().any(|l| l == format!("f{i}.txt")), "{tree}");
    }
    let merges = git(
        &bare,
        &[
            "log",
            "--first-parent",
            "--merges",
            "--format=%s",
            "downbeat/integration",
        ],
    );
    assert_eq!(merges.lines().count(), 6, "{merges}");
    // Each merge held the database's merge lock: taken and released once per task.
    let log = e.json(&["log"]);
    let locks = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|ev| ev["entity"] == "worktrees.merging")
        .count();
    assert_eq!(locks, 12, "{log}");
}

#[test]
fn a_run_of_plain_commands_leaves_the_repository_alone() {
    let e = repo(json!({"steps": []}), "");
    e.ok(&["add", "Nothing much", "--role", "implementer"]);
    run_ok(&e, &["run", "--executor", "noop"]);
    let branches = git(e.path(), &["branch", "--list"]);
    assert_eq!(branches, "* main", "no integration branch was made");
    assert_eq!(git(e.path(), &["status", "--porcelain"]), "");
}
