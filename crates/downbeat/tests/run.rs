//! `downbeat run` end to end: real processes (`sh`), a real database, the real binary.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Env, exit_within};

impl Env {
    fn new(config: &str) -> Self {
        let e = Env::builder().keep("PATH").init().build();
        std::fs::write(e.path().join(".downbeat/config.toml"), config).unwrap();
        e
    }

    fn plan(&self, text: &str) {
        std::fs::write(self.path().join("plan.toml"), text).unwrap();
        self.ok(&["plan", "apply", "plan.toml"]);
    }
}

const SH: &str = "[executors.sh]\ntype = \"process\"\nshell = \"sleep 0.4\"\n";

#[test]
fn runs_tasks_in_parallel_and_dependents_after() {
    let e = Env::new(&format!("{SH}[run]\nexecutor = \"sh\"\n"));
    let mut plan = String::new();
    for i in 0..4 {
        plan.push_str(&format!(
            "[[tasks]]\nkey = \"p{i}\"\ntitle = \"parallel {i}\"\n"
        ));
    }
    plan.push_str("[[tasks]]\nkey = \"last\"\ntitle = \"last\"\ndepends_on = [\"p0\", \"p1\", \"p2\", \"p3\"]\n");
    e.plan(&plan);
    let start = Instant::now();
    let out = e.run(&["run", "-j", "4"]);
    let took = start.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Five 0.4 s tasks in sequence take 2 s; four in parallel and one after take ~0.8 s.
    assert!(took < Duration::from_millis(1_900), "took {took:?}");
    let list = e.json(&["list"]);
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .all(|t| t["status"] == "completed"),
        "{list}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("run finished") && stderr.contains("5 completed"),
        "{stderr}"
    );
    let attempts = e.json(&["attempts", "last"]);
    assert_eq!(attempts[0]["outcome"], "succeeded");
    assert_eq!(attempts[0]["executor"], "sh");
}

#[test]
fn agents_report_results_flags_and_artifacts() {
    let config = r#"
[run]
executor = "noop"

[[rules]]
flag = "SECURITY_BREACH"
action = "add-task"
role = "reviewer"
title = "Respond to the security issue found in {{ task.title }}"
pause = true
"#;
    let e = Env::new(config);
    let script = r#"mkdir -p out && echo report > out/audit.md && cat > "$DOWNBEAT_RESULT_FILE" <<'JSON'
{"summary": "found a hard-coded token", "flags": ["SECURITY_BREACH"], "artifacts": ["out/audit.md"], "discovered": [{"title": "Rotate the leaked token", "role": "implementer"}]}
JSON"#;
    e.ok(&[
        "add",
        "Audit the login code",
        "--key",
        "audit",
        "--shell",
        script,
    ]);
    e.ok(&[
        "add",
        "Ship the release",
        "--key",
        "ship",
        "--after",
        "audit",
    ]);
    let out = e.run(&["run", "-j", "2"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("flag     SECURITY_BREACH"), "{stderr}");
    let show = e.json(&["show", "audit"]);
    assert_eq!(show["result"], "found a hard-coded token");
    let titles = e.titles();
    assert!(
        titles.contains(&"Respond to the security issue found in Audit the login code".to_owned()),
        "{titles:?}"
    );
    assert!(
        titles.contains(&"Rotate the leaked token".to_owned()),
        "{titles:?}"
    );
    // The artifact is stored by content.
    let handover = std::fs::read_to_string(e.ok(&["handover"]).trim()).unwrap();
    assert!(handover.contains("out/audit.md (7 bytes)"), "{handover}");
    assert!(
        e.path()
            .join(".downbeat/artifacts")
            .read_dir()
            .unwrap()
            .next()
            .is_some()
    );
    let log = e.ok(&["log"]);
    assert!(log.contains("flag.raised"), "{log}");
    // The integration report of the run.
    let stderr_path = stderr
        .lines()
        .find_map(|l| l.strip_prefix("integration report: "))
        .unwrap()
        .to_owned();
    let report = std::fs::read_to_string(stderr_path).unwrap();
    assert!(report.contains("SECURITY_BREACH by"), "{report}");
    assert!(report.contains("artifact: out/audit.md"), "{report}");
    assert!(report.contains("found a hard-coded token"), "{report}");
}

#[test]
fn each_container_gets_its_integration_report_when_its_work_ends() {
    let e = Env::new("[run]\nexecutor = \"noop\"\n");
    // release > (backend > api, db), docs; a free task outside.
    e.plan(
        r#"
[[tasks]]
key = "release"
title = "Release"
[[tasks]]
key = "backend"
title = "Backend"
parent = "release"
[[tasks]]
key = "api"
title = "Build the API"
parent = "backend"
[[tasks]]
key = "db"
title = "Migrate the database"
parent = "backend"
depends_on = ["api"]
[[tasks]]
key = "docs"
title = "Write the docs"
parent = "release"
depends_on = ["backend"]
[[tasks]]
key = "free"
title = "Unrelated"
"#,
    );
    let id = |key: &str| e.json(&["show", key])["id"].as_str().unwrap().to_owned();
    let o = e.run(&["run", "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let reports: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "container-report")
        .collect();
    let order: Vec<&str> = reports
        .iter()
        .map(|r| r["task"].as_str().unwrap())
        .collect();
    // The inner container first, each once, no report for a task without children.
    assert_eq!(order, vec![id("backend"), id("release")], "{reports:?}");
    for r in &reports {
        let doc = std::fs::read_to_string(r["path"].as_str().unwrap()).unwrap();
        assert!(doc.contains("Build the API"), "{doc}");
    }
    let release = std::fs::read_to_string(reports[1]["path"].as_str().unwrap()).unwrap();
    assert!(release.contains("Write the docs"), "{release}");
    // Without --json the paths are noted on stderr.
    e.ok(&[
        "add",
        "Another API task",
        "--key",
        "api2",
        "--parent",
        "backend",
    ]);
    let o = e.run(&["run"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains(&format!("integration report for {}", id("backend"))),
        "{err}"
    );
}

#[test]
fn a_pause_from_anywhere_holds_back_new_work_until_unpaused() {
    let e = Env::new(
        "[executors.slow]\ntype = \"process\"\nshell = \"touch started-$DOWNBEAT_TASK_ID; sleep 0.6\"\n[run]\nexecutor = \"slow\"\nlease = \"3s\"\n",
    );
    e.plan("[[tasks]]\nkey = \"a\"\ntitle = \"a\"\n[[tasks]]\nkey = \"b\"\ntitle = \"b\"\ndepends_on = [\"a\"]\n");
    let a = e.json(&["show", "a"])["id"].as_str().unwrap().to_owned();
    // Paused from another process while `a` runs: `a` finishes, `b` does not start.
    let runner = e.command(&["run"]).stderr(Stdio::piped()).spawn().unwrap();
    wait_for("a started", Duration::from_secs(20), || {
        e.path().join(format!("started-{a}")).exists()
    });
    let hold = e.json(&["pause", "--reason", "investigating a breach"]);
    assert_eq!(hold["id"], 1);
    let o = runner.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(7), "{err}");
    assert!(
        err.contains("paused (hold 1: investigating a breach)"),
        "{err}"
    );
    assert_eq!(e.json(&["show", "a"])["status"], "completed");
    assert_eq!(e.json(&["show", "b"])["status"], "pending");
    // Everyone sees it; a new run does not start anything either.
    assert!(
        e.ok(&["holds"])
            .contains("hold 1: nothing new starts — investigating a breach")
    );
    assert_eq!(e.json(&["status"])["holds"][0]["id"], 1);
    let o = e.run(&["run"]);
    assert_eq!(o.status.code(), Some(7));
    assert_eq!(e.json(&["show", "b"])["status"], "pending");
    // Bad input is clear.
    let o = e.run(&["unpause", "7"]);
    assert_eq!(
        o.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("no hold in force matches `7`"));
    // Released: the work goes on.
    assert!(e.ok(&["unpause"]).contains("released hold 1"));
    assert_eq!(e.json(&["holds"]), serde_json::json!([]));
    e.ok(&["run"]);
    assert_eq!(e.json(&["show", "b"])["status"], "completed");
    let log = e.json(&["log"]);
    let actions: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|ev| ev["action"].as_str())
        .filter(|a| a.starts_with("hold."))
        .collect();
    assert_eq!(actions, vec!["hold.added", "hold.released"]);
}

#[test]
fn a_pause_rule_holds_everything_until_released() {
    let e = Env::new(
        "[run]\nexecutor = \"noop\"\n[[rules]]\nflag = \"STOP_THE_LINE\"\naction = \"pause\"\n",
    );
    let script = r#"echo '{"flags": ["STOP_THE_LINE"]}' > "$DOWNBEAT_RESULT_FILE""#;
    e.ok(&["add", "check", "--key", "check", "--shell", script]);
    e.ok(&["add", "ship", "--key", "ship", "--after", "check"]);
    let o = e.run(&["run"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(7), "{err}");
    assert!(err.contains("flag     STOP_THE_LINE"), "{err}");
    assert!(err.contains("`downbeat unpause` releases it"), "{err}");
    assert_eq!(e.json(&["show", "ship"])["status"], "pending");
    let holds = e.json(&["holds"]);
    assert!(holds[0]["task"].is_null(), "{holds}");
    e.ok(&["unpause", "1"]);
    e.ok(&["run"]);
    assert_eq!(e.json(&["show", "ship"])["status"], "completed");
}

#[test]
fn bad_configuration_fails_before_anything_runs() {
    let e = Env::new("[run]\nexecutor = \"missing\"\n");
    e.ok(&["add", "something"]);
    let o = e.run(&["run"]);
    assert_eq!(o.status.code(), Some(4));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("unknown executor `missing`"), "{err}");
    assert!(
        e.json(&["attempts", e.json(&["list"])[0]["id"].as_str().unwrap()])
            .as_array()
            .unwrap()
            .is_empty()
    );
    let e = Env::new("");
    e.ok(&["add", "something"]);
    let o = e.run(&["run"]);
    assert_eq!(o.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no executor"));
    let dry = e.ok(&["run", "--dry-run", "--executor", "noop"]);
    assert!(dry.contains("noop"), "{dry}");
    let e = Env::new("[executors.bad]\ntype = \"process\"\n");
    e.ok(&["add", "x", "--executor", "bad"]);
    let o = e.run(&["run"]);
    assert_eq!(
        o.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let e = Env::new("[executors.x]\ntype = \"teleport\"\n");
    let o = e.run(&["status"]);
    assert_eq!(o.status.code(), Some(4));
}

#[test]
fn failed_runs_exit_7_and_retry_reopens() {
    let e = Env::new("[run]\nexecutor = \"noop\"\n");
    e.ok(&[
        "add",
        "breaks",
        "--key",
        "b",
        "--shell",
        "echo boom >&2; exit 2",
    ]);
    let o = e.run(&["run"]);
    assert_eq!(
        o.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let a = e.json(&["attempts", "b"]);
    assert_eq!(
        (a[0]["outcome"].as_str(), a[0]["exit_code"].as_i64()),
        (Some("failed"), Some(2))
    );
    let id = e.json(&["show", "b"])["id"].as_str().unwrap().to_owned();
    let stderr_log = e
        .path()
        .join(".downbeat/runs")
        .join(&id)
        .join("1/stderr.log");
    assert_eq!(std::fs::read_to_string(stderr_log).unwrap(), "boom\n");
    let report = e.ok(&["synthesize", "-o", "-"]);
    assert!(
        report.contains("breaks is failed") && report.contains("0 of 1 task(s) done"),
        "{report}"
    );
    e.ok(&["retry", "b"]);
    assert_eq!(e.json(&["show", "b"])["status"], "pending");
}

#[test]
fn cancelling_a_running_task_stops_its_agent() {
    let e = Env::new("[run]\nexecutor = \"noop\"\nlease = \"3s\"\n");
    e.ok(&["add", "long", "--key", "long", "--shell", "sleep 60"]);
    let mut runner = e.command(&["run"]).stderr(Stdio::piped()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while e.json(&["show", "long"])["status"] != "running" {
        assert!(Instant::now() < deadline, "the task never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    let start = Instant::now();
    e.ok(&["cancel", "long", "--note", "not needed"]);
    let status = runner.wait().unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(15),
        "the run took {:?} to notice",
        start.elapsed()
    );
    assert_eq!(status.code(), Some(7));
    assert_eq!(e.json(&["show", "long"])["status"], "cancelled");
    let a = e.json(&["attempts", "long"]);
    assert!(
        a[0]["outcome"].as_str().unwrap().contains("lease lost"),
        "{a}"
    );
}

#[test]
fn a_killed_runner_loses_nothing_and_repeats_nothing() {
    let e = Env::new(
        "[executors.work]\ntype = \"process\"\nshell = \"sleep 0.15\"\n[run]\nexecutor = \"work\"\n",
    );
    let mut plan = String::new();
    for i in 0..24 {
        plan.push_str(&format!("[[tasks]]\nkey = \"t{i}\"\ntitle = \"t{i}\"\n"));
        if i >= 4 {
            plan.push_str(&format!("depends_on = [\"t{}\"]\n", i - 4));
        }
    }
    e.plan(&plan);
    // Kill the runner with SIGKILL three times mid-run, then let a run finish.
    for round in 0..3 {
        let mut runner = e
            .command(&["run", "-j", "4"])
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(350 + 100 * round));
        runner.kill().unwrap();
        runner.wait().unwrap();
    }
    let o = e.run(&["run", "-j", "4"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let tasks = e.json(&["list"]);
    for t in tasks.as_array().unwrap() {
        assert_eq!(t["status"], "completed", "{t}");
        let id = t["id"].as_str().unwrap();
        let attempts = e.json(&["attempts", id]);
        let ok = attempts
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["outcome"] == "succeeded")
            .count();
        assert_eq!(ok, 1, "task {id} succeeded {ok} times: {attempts}");
    }
}

/// Whether a process is still running (a zombie waiting to be reaped does not count).
fn alive(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())) {
        // The state follows the command name in parentheses.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ok() {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// The first attempt starts a background child and waits; a later attempt finds the marker
/// and succeeds at once.
const LONG_AGENT: &str = "[executors.work]\ntype = \"process\"\nshell = \"if [ -f leader.pid ]; then exit 0; fi; sleep 300 & echo $! > child.tmp; mv child.tmp child.pid; echo $$ > leader.tmp; mv leader.tmp leader.pid; wait\"\n[run]\nexecutor = \"work\"\n";

/// Starts `downbeat run` on one long task and waits until its agent and the agent's own
/// child are running; returns the runner and the two pids.
fn run_long_agent(e: &Env) -> (std::process::Child, String, String) {
    e.ok(&["add", "long", "--key", "long"]);
    let runner = e.command(&["run"]).stderr(Stdio::null()).spawn().unwrap();
    let file = |name: &str| std::fs::read_to_string(e.path().join(name)).unwrap_or_default();
    wait_for("the agent started", Duration::from_secs(20), || {
        !file("leader.pid").is_empty() && !file("child.pid").is_empty()
    });
    let (leader, child) = (file("leader.pid"), file("child.pid"));
    assert!(alive(&leader) && alive(&child));
    (runner, leader, child)
}

/// The runner's agent guard: its child process running `downbeat guard-agents`.
fn guard_of(runner: u32) -> Option<i32> {
    let tasks = std::fs::read_dir(format!("/proc/{runner}/task")).ok()?;
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|c| {
            c.split_whitespace()
                .filter_map(|p| p.parse::<i32>().ok())
                .collect::<Vec<_>>()
        })
        .find(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains("guard-agents"))
        })
}

#[test]
fn agents_of_a_killed_runner_are_stopped_at_once() {
    let e = Env::new(LONG_AGENT);
    let (mut runner, leader, child) = run_long_agent(&e);
    assert!(guard_of(runner.id()).is_some(), "the runner has a guard");
    runner.kill().unwrap();
    runner.wait().unwrap();
    // The guard stops the program and what it started, without waiting for another run.
    wait_for(
        "the agent died with its runner",
        Duration::from_secs(10),
        || !alive(&leader) && !alive(&child),
    );
    let o = e.run(&["run", "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        !String::from_utf8_lossy(&o.stdout).contains("orphans-killed"),
        "nothing was left for the next run"
    );
    assert_eq!(e.json(&["show", "long"])["status"], "completed");
}

#[test]
fn agents_left_behind_are_stopped_by_the_next_runner() {
    let e = Env::new(LONG_AGENT);
    let (mut runner, leader, child) = run_long_agent(&e);
    // Runner and guard both killed (as by an out-of-memory kill of everything): the agents
    // run on until a runner on this machine finds them.
    let guard = guard_of(runner.id()).expect("the runner has a guard");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(guard),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    runner.kill().unwrap();
    runner.wait().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(alive(&leader) && alive(&child), "nobody stopped them yet");
    let o = e.run(&["run", "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let events = String::from_utf8_lossy(&o.stdout);
    // Both are found, or the program first and its child stopped with its process group.
    assert!(events.contains(r#""event":"orphans-killed""#), "{events}");
    wait_for("the orphans were killed", Duration::from_secs(10), || {
        !alive(&leader) && !alive(&child)
    });
    assert_eq!(e.json(&["show", "long"])["status"], "completed");
}

#[test]
fn ctrl_c_stops_agents_gracefully_and_a_new_run_picks_up() {
    // The agent acknowledges SIGTERM; after an interruption it succeeds at once.
    let e = Env::new(
        "[executors.work]\ntype = \"process\"\nshell = \"if [ -f got-term ]; then exit 0; fi; trap 'echo term > got-term; exit 143' TERM; touch started; sleep 30 & wait\"\n[run]\nexecutor = \"work\"\n",
    );
    e.plan("[[tasks]]\nkey = \"a\"\ntitle = \"a\"\n[[tasks]]\nkey = \"b\"\ntitle = \"b\"\ndepends_on = [\"a\"]\n");
    let runner = e.command(&["run"]).stderr(Stdio::piped()).spawn().unwrap();
    wait_for("the agent started", Duration::from_secs(20), || {
        e.path().join("started").exists()
    });
    let pid = nix::unistd::Pid::from_raw(runner.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let start = Instant::now();
    let o = runner.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "stopping took {:?}",
        start.elapsed()
    );
    assert_eq!(o.status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    assert_eq!(
        std::fs::read_to_string(e.path().join("got-term")).unwrap(),
        "term\n",
        "the agent got SIGTERM"
    );
    // Consistent: the interrupted task is pending again, its attempt is closed, nothing else ran.
    assert_eq!(e.json(&["show", "a"])["status"], "pending");
    assert_eq!(e.json(&["show", "b"])["status"], "pending");
    let a = e.json(&["attempts", "a"]);
    assert_eq!(a.as_array().unwrap().len(), 1, "{a}");
    assert!(!a[0]["ended_at"].is_null(), "{a}");
    // A new run picks up where it stopped.
    e.ok(&["run"]);
    assert_eq!(e.json(&["show", "a"])["status"], "completed");
    assert_eq!(e.json(&["show", "b"])["status"], "completed");
}

#[test]
fn sigterm_and_sighup_stop_a_run_whose_stderr_is_gone() {
    for signal in [
        nix::sys::signal::Signal::SIGTERM,
        nix::sys::signal::Signal::SIGHUP,
    ] {
        stopped_by(signal);
    }
}

fn stopped_by(signal: nix::sys::signal::Signal) {
    // The runner's stderr is a pipe nobody reads any more: saying "interrupted" fails, and
    // stopping must not depend on it.
    let e = Env::new(
        "[executors.work]\ntype = \"process\"\nshell = \"touch started; sleep 30 & wait\"\n[run]\nexecutor = \"work\"\n",
    );
    e.ok(&["add", "long", "--key", "long"]);
    let mut runner = e.command(&["run"]).stderr(Stdio::piped()).spawn().unwrap();
    drop(runner.stderr.take());
    wait_for("the agent started", Duration::from_secs(20), || {
        e.path().join("started").exists()
    });
    let pid = nix::unistd::Pid::from_raw(runner.id() as i32);
    nix::sys::signal::kill(pid, signal).unwrap();
    let start = Instant::now();
    let status = runner.wait().unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "stopping took {:?}",
        start.elapsed()
    );
    assert_eq!(status.code(), Some(130), "{status:?}");
    assert_eq!(e.json(&["show", "long"])["status"], "pending");
    let a = e.json(&["attempts", "long"]);
    assert!(!a[0]["ended_at"].is_null(), "the attempt is closed: {a}");
}

#[test]
fn http_executor_configuration_errors_are_clear() {
    let e = Env::new(
        "[executors.llm]\ntype = \"http\"\nbase_url = \"http://127.0.0.1:9/v1\"\nmodel = \"m\"\napi_key_env = \"DOWNBEAT_TEST_SURELY_UNSET_KEY\"\n[run]\nexecutor = \"llm\"\n",
    );
    e.ok(&["add", "ask the model", "--key", "ask"]);
    let o = e.run(&["run"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(4), "{err}");
    assert!(
        err.contains("DOWNBEAT_TEST_SURELY_UNSET_KEY") && err.contains("not set"),
        "{err}"
    );
    assert!(
        e.json(&["attempts", "ask"]).as_array().unwrap().is_empty(),
        "nothing ran"
    );
    // Without a key, an unreachable endpoint fails the attempt and says why.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let e = Env::new(&format!(
        "[executors.llm]\ntype = \"http\"\nbase_url = \"http://127.0.0.1:{port}/v1\"\nmodel = \"m\"\n[run]\nexecutor = \"llm\"\n"
    ));
    e.ok(&["add", "ask the model", "--key", "ask"]);
    let o = e.run(&["run"]);
    assert_eq!(
        o.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let a = e.json(&["attempts", "ask"]);
    assert!(
        a[0]["error"].as_str().unwrap().contains("unreachable"),
        "{a}"
    );
}

#[test]
fn an_artifact_that_is_a_named_pipe_fails_the_attempt_instead_of_hanging_the_run() {
    let e = Env::new(
        "[executors.work]\ntype = \"process\"\nshell = \"mkfifo out.pipe; echo '{\\\"artifacts\\\": [\\\"out.pipe\\\"]}' > \\\"$DOWNBEAT_RESULT_FILE\\\"\"\n[run]\nexecutor = \"work\"\n[run.retry]\nmax_attempts = 1\n",
    );
    e.ok(&["add", "makes a pipe", "--key", "pipe"]);
    let mut runner = e
        .command(&["run"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let status = exit_within(
        &mut runner,
        Duration::from_secs(30),
        "the run hung on a named pipe",
    );
    assert_eq!(status.code(), Some(7));
    let a = e.json(&["attempts", "pipe"]);
    assert!(
        a[0]["error"]
            .as_str()
            .unwrap()
            .contains("is a named pipe, not a regular file"),
        "{a}"
    );
}

#[test]
fn a_run_whose_stdout_reader_goes_away_stops_its_agents_and_says_interrupted() {
    use std::io::BufRead as _;
    let e = Env::new(
        "[executors.work]\ntype = \"process\"\nshell = \"touch started-$DOWNBEAT_TASK_ID; sleep 30 & wait\"\n[run]\nexecutor = \"work\"\nconcurrency = 1\n",
    );
    e.ok(&["add", "first", "--key", "first"]);
    e.ok(&["add", "second", "--key", "second"]);
    let mut runner = e
        .command(&["run", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(runner.stdout.take().unwrap()).lines();
    // Read until an attempt has started, then go away like `| head -2` does.
    for line in lines.by_ref() {
        if line.unwrap().contains("attempt-started") {
            break;
        }
    }
    drop(lines);
    // The next event finds the pipe closed: the run is cancelled, its agent stopped.
    let start = Instant::now();
    let status = exit_within(
        &mut runner,
        Duration::from_secs(60),
        "the run went on with nobody reading it",
    );
    assert_eq!(status.code(), Some(130), "{status:?}");
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "it waited for the agent: {:?}",
        start.elapsed()
    );
    assert_eq!(e.json(&["show", "first"])["status"], "pending");
    let a = e.json(&["attempts", "first"]);
    assert!(
        a.as_array()
            .unwrap()
            .iter()
            .all(|x| !x["ended_at"].is_null()),
        "{a}"
    );
}
