//! Worker processes sharing one PostgreSQL database: every task done exactly once by several
//! workers, and a worker killed with SIGKILL loses its task to another (its late completion
//! refused by the fencing token), a database restart in the middle of a run, a wrong password,
//! and the workers benchmark. Each test has a schema of its own, dropped at the end; the
//! restart and password tests run a private server of their own.
//!
//! The server comes from `DOWNBEAT_TEST_POSTGRES_URL`, else `postgres://postgres@127.0.0.1:5432/test`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Env;
use common::pg::server_url;
use downbeat_store::{Batch, Finish, FinishStatus, Store, TaskFilter};
use sqlx::Connection;

/// A project in a temporary directory whose database is a fresh PostgreSQL schema; the
/// schema is dropped and the workers killed when it goes out of scope. The binary runs in
/// the test's own environment, without a fixed clock.
impl Env {
    fn new(tag: &str) -> Self {
        Self::on(server_url(), tag)
    }

    /// A project on the server at `base`.
    fn on(base: String, tag: &str) -> Self {
        Env::builder()
            .inherit_env()
            .unset("DOWNBEAT_NOW")
            .postgres_on(base, tag)
            .init()
            .build()
    }

    fn spawn_worker(&mut self, args: &[&str]) -> u32 {
        let mut a = vec!["worker"];
        a.extend_from_slice(args);
        let child = self
            .command(&a)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.adopt(child)
    }

    /// Polls `cond` on `status --json` until it holds or the time is up.
    fn wait_status(&self, what: &str, cond: impl Fn(&serde_json::Value) -> bool) {
        let t0 = Instant::now();
        loop {
            let s = self.json(&["status"]);
            if cond(&s) {
                return;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "timed out waiting for {what}: {s}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn completed(&self) -> Option<u64> {
        let o = self.command(&["status", "--json"]).output().ok()?;
        if !o.status.success() {
            return None;
        }
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).ok()?;
        v["counts"]["completed"].as_u64()
    }

    fn store(&self, rt: &tokio::runtime::Runtime) -> Box<dyn Store> {
        rt.block_on(downbeat_store::open(self.url(), false))
            .unwrap()
    }
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig} {pid}");
}

#[test]
fn three_workers_do_every_task_exactly_once() {
    let mut e = Env::new("wk3");
    e.append(
        ".downbeat/config.toml",
        "\n[executors.nap]\ntype = \"process\"\nargv = [\"sleep\", \"0.05\"]\n",
    );
    // 30 tasks in three chains, so the workers must also wait for one another's results.
    let mut plan = String::new();
    for i in 0..30 {
        plan.push_str(&format!(
            "[[tasks]]\nkey = \"t{i}\"\ntitle = \"Task {i}\"\n"
        ));
        if i >= 3 {
            plan.push_str(&format!("depends_on = [\"t{}\"]\n", i - 3));
        }
    }
    e.append("plan.toml", &plan);
    e.ok(&["plan", "apply", "plan.toml"]);
    let pids: Vec<u32> = (0..3)
        .map(|_| e.spawn_worker(&["--executor", "nap", "--slots", "2", "--lease", "5s"]))
        .collect();
    e.wait_status("all tasks completed", |s| s["counts"]["completed"] == 30);
    // `run` with live workers hands the work to them and follows along: nothing left.
    let o = e.command(&["run"]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("worker(s) alive"));
    let workers = e.json(&["workers"]);
    assert_eq!(workers["workers"].as_array().unwrap().len(), 3, "{workers}");
    let status = e.json(&["status"]);
    assert_eq!(status["workers"].as_array().unwrap().len(), 3, "{status}");
    assert!(e.ok(&["status"]).contains("workers: 3 alive"));
    for pid in pids {
        signal(pid, "TERM");
    }
    for c in &mut e.children {
        assert!(c.wait().unwrap().success());
    }

    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = e.store(&rt);
    let tasks = rt.block_on(store.tasks(&TaskFilter::default())).unwrap();
    assert_eq!(tasks.len(), 30);
    let mut by_worker = std::collections::HashSet::new();
    for t in &tasks {
        let attempts = rt.block_on(store.attempts(t.id)).unwrap();
        assert_eq!(
            attempts.len(),
            1,
            "task {} ran {} times",
            t.id,
            attempts.len()
        );
        assert_eq!(attempts[0].outcome.as_deref(), Some("succeeded"));
        by_worker.insert(attempts[0].worker.clone());
    }
    assert!(by_worker.len() >= 2, "the work was shared: {by_worker:?}");
    let log = rt
        .block_on(store.events(&Default::default()))
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect::<Vec<_>>();
    let count = |a: &str| log.iter().filter(|x| *x == a).count();
    assert_eq!(
        (count("worker.registered"), count("worker.deregistered")),
        (3, 3)
    );
    assert!(
        rt.block_on(store.workers(Default::default()))
            .unwrap()
            .is_empty()
    );
}

/// The most tasks of `ids` that ran at once, from a journal of `s <ns> <id>` / `e <ns> <id>`
/// lines.
fn most_at_once(journal: &str, ids: &std::collections::HashSet<String>) -> usize {
    let mut marks: Vec<(u128, i32)> = journal
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let (kind, at, id) = (w.next()?, w.next()?.parse().ok()?, w.next()?);
            ids.contains(id)
                .then_some((at, if kind == "s" { 1 } else { -1 }))
        })
        .collect();
    // Ends before starts at the same instant.
    marks.sort();
    let (mut now, mut most) = (0i32, 0i32);
    for (_, d) in marks {
        now += d;
        most = most.max(now);
    }
    most as usize
}

/// A named group's cap holds over all the workers together: each counts the tasks the others
/// run, not only its own.
#[test]
fn a_group_cap_holds_across_workers() {
    let mut e = Env::new("wkcap");
    let journal = e.tmp().join("journal");
    e.append(
        ".downbeat/config.toml",
        &format!(
            "\n[groups.heavy]\nmax_parallel = 2\nroles = [\"tester\", \"implementer\"]\n\n\
             [executors.mark]\ntype = \"process\"\nshell = \"echo s $(date +%s%N) $DOWNBEAT_TASK_ID >> {j}; \
             sleep 0.3; echo e $(date +%s%N) $DOWNBEAT_TASK_ID >> {j}\"\n",
            j = journal.display()
        ),
    );
    let mut plan = String::new();
    for i in 0..12 {
        let role = ["tester", "implementer", "reviewer"][i % 3];
        plan.push_str(&format!(
            "[[tasks]]\nkey = \"t{i}\"\ntitle = \"Task {i}\"\nrole = \"{role}\"\n"
        ));
    }
    e.append("plan.toml", &plan);
    e.ok(&["plan", "apply", "plan.toml"]);
    for _ in 0..3 {
        e.spawn_worker(&["--executor", "mark", "--slots", "3", "--lease", "5s"]);
    }
    e.wait_status("all tasks completed", |s| s["counts"]["completed"] == 12);
    let tasks = e.json(&["list"]);
    let role_ids = |roles: &[&str]| -> std::collections::HashSet<String> {
        tasks
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| roles.contains(&t["role"].as_str().unwrap_or("")))
            .map(|t| t["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let (heavy, free) = (
        role_ids(&["tester", "implementer"]),
        role_ids(&["reviewer"]),
    );
    assert_eq!((heavy.len(), free.len()), (8, 4));
    let text = std::fs::read_to_string(&journal).unwrap();
    assert_eq!(text.lines().count(), 24, "{text}");
    let most = most_at_once(&text, &heavy);
    assert!(
        (1..=2).contains(&most),
        "{most} heavy tasks ran at once:\n{text}"
    );
    // The cap is the group's alone: nine slots in all ran the free tasks side by side.
    assert!(most_at_once(&text, &free) >= 2, "{text}");
}

/// `run` follows live workers; when the last one dies with work left (here: SIGKILLed while it
/// holds a task), the run notices within a few seconds and does the rest itself.
#[test]
fn a_run_following_workers_takes_over_when_they_die() {
    let mut e = Env::new("wkgone");
    e.append(
        ".downbeat/config.toml",
        "\n[executors.nap]\ntype = \"process\"\nargv = [\"sleep\", \"0.1\"]\n\
         [executors.stall]\ntype = \"process\"\nargv = [\"sleep\", \"60\"]\n",
    );
    let mut plan = String::new();
    for i in 0..4 {
        plan.push_str(&format!(
            "[[tasks]]\nkey = \"t{i}\"\ntitle = \"Task {i}\"\n"
        ));
    }
    e.append("plan.toml", &plan);
    e.ok(&["plan", "apply", "plan.toml"]);
    let pid = e.spawn_worker(&["--executor", "stall", "--slots", "1", "--lease", "2s"]);
    e.wait_status("the worker's task running", |s| s["counts"]["running"] == 1);
    let mut run = e
        .command(&["run", "--executor", "nap"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    signal(pid, "KILL");
    let t0 = Instant::now();
    let status = loop {
        if let Some(st) = run.try_wait().unwrap() {
            break st;
        }
        if t0.elapsed() > Duration::from_secs(60) {
            let _ = run.kill();
            panic!("the run kept following a dead worker");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(run.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(status.success(), "{err}");
    assert!(err.contains("1 worker(s) alive"), "{err}");
    assert!(err.contains("every worker is gone"), "{err}");
    assert_eq!(e.json(&["status"])["counts"]["completed"], 4);
}

/// The worker that ends a container's last leaf writes the container's integration report,
/// though other workers ran the other leaves.
#[test]
fn workers_write_the_report_of_a_container_they_finish() {
    let mut e = Env::new("wkrep");
    e.append(
        ".downbeat/config.toml",
        "\n[executors.nap]\ntype = \"process\"\nargv = [\"sleep\", \"0.2\"]\n",
    );
    let mut plan = String::from("[[tasks]]\nkey = \"feature\"\ntitle = \"Feature\"\n");
    for i in 0..6 {
        plan.push_str(&format!(
            "[[tasks]]\nkey = \"leaf{i}\"\ntitle = \"Leaf {i}\"\nparent = \"feature\"\n"
        ));
    }
    e.append("plan.toml", &plan);
    // Both workers wait for work before there is any, so both take leaves.
    let pids: Vec<u32> = (0..2)
        .map(|_| e.spawn_worker(&["--executor", "nap", "--slots", "1", "--lease", "5s"]))
        .collect();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while e.json(&["workers"])["workers"]
        .as_array()
        .is_none_or(|w| w.len() < 2)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the workers did not register"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    e.ok(&["plan", "apply", "plan.toml"]);
    let feature = e.json(&["show", "feature"])["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    let reports = e.path().join(".downbeat/reports");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let report = loop {
        let found = std::fs::read_dir(&reports).ok().and_then(|d| {
            d.filter_map(Result::ok)
                .map(|f| f.path())
                .find(|f| f.to_string_lossy().contains(&feature))
        });
        if let Some(f) = found {
            break f;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no report for {feature} in {}",
            reports.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let text = std::fs::read_to_string(&report).unwrap();
    for i in 0..6 {
        assert!(text.contains(&format!("Leaf {i}")), "{text}");
    }
    for pid in pids {
        signal(pid, "TERM");
    }
    for c in &mut e.children {
        assert!(c.wait().unwrap().success());
    }
    // Both workers ran leaves.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = e.store(&rt);
    let mut by_worker = std::collections::HashSet::new();
    for t in rt.block_on(store.tasks(&TaskFilter::default())).unwrap() {
        for a in rt.block_on(store.attempts(t.id)).unwrap() {
            by_worker.insert(a.worker);
        }
    }
    assert_eq!(by_worker.len(), 2, "{by_worker:?}");
}

#[test]
fn a_killed_workers_task_goes_to_another_and_its_late_completion_is_refused() {
    let mut e = Env::new("wkkill");
    e.append(
        ".downbeat/config.toml",
        "\n[executors.slow]\ntype = \"process\"\nargv = [\"sleep\", \"3\"]\n",
    );
    e.append(
        "plan.toml",
        "[[tasks]]\nkey = \"only\"\ntitle = \"The task\"\n",
    );
    e.ok(&["plan", "apply", "plan.toml"]);
    // A named worker: nothing tells it is gone but its lease running out.
    let a = e.spawn_worker(&["--executor", "slow", "--name", "box-a", "--lease", "1s"]);
    e.wait_status("the task running", |s| s["counts"]["running"] == 1);
    signal(a, "KILL");
    let killed_at = Instant::now();
    e.spawn_worker(&["--executor", "noop", "--name", "box-b", "--lease", "1s"]);
    e.wait_status("the task completed by the other worker", |s| {
        s["counts"]["completed"] == 1
    });
    assert!(
        killed_at.elapsed() < Duration::from_secs(15),
        "re-leased after {:?}",
        killed_at.elapsed()
    );

    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = e.store(&rt);
    let id = rt.block_on(store.resolve_task("only")).unwrap();
    let attempts = rt.block_on(store.attempts(id)).unwrap();
    let summary: Vec<(&str, Option<&str>)> = attempts
        .iter()
        .map(|a| (a.worker.as_str(), a.outcome.as_deref()))
        .collect();
    assert_eq!(
        summary,
        vec![("box-a", Some("lost")), ("box-b", Some("succeeded"))]
    );
    // The dead worker's completion, arriving late, carries the old fencing token.
    let late = Finish {
        task: id,
        epoch: attempts[0].epoch,
        attempt_id: attempts[0].id,
        status: FinishStatus::Completed,
        outcome: "succeeded".into(),
        exit_code: Some(0),
        error: None,
        summary: Some("late".into()),
        tokens: None,
        detail: Default::default(),
        artifacts: vec![],
        effects: vec![],
    };
    let res = rt
        .block_on(store.commit_batch(
            &Batch {
                finishes: vec![late],
                ..Default::default()
            },
            &downbeat_core::context::Actor::new("box-a", downbeat_core::time::Timestamp(0)),
        ))
        .unwrap();
    assert_eq!(res.rejected, vec![id]);
    let w = e.json(&["workers"]);
    let a_state = w["workers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["name"] == "box-a")
        .map(|w| w["alive"].clone());
    assert_eq!(a_state, Some(serde_json::Value::Bool(false)), "{w}");
}

/// `downbeat bench workers` runs its worker processes to the end on a schema of its own,
/// reports what it measured, and drops the schema.
#[test]
fn a_pausing_flag_on_one_worker_holds_back_every_worker() {
    let mut e = Env::new("wkhold");
    std::fs::write(
        e.path().join(".downbeat/config.toml"),
        r#"
[executors.nap]
type = "process"
argv = ["sleep", "0.3"]
[executors.long]
type = "process"
argv = ["sleep", "2"]
[roles.reviewer]
executor = "long"
[run]
executor = "nap"
[[rules]]
flag = "SECURITY_BREACH"
action = "add-task"
role = "reviewer"
title = "Respond to the breach"
pause = true
"#,
    )
    .unwrap();
    let mut plan = String::new();
    for i in 0..12 {
        plan.push_str(&format!(
            "[[tasks]]\nkey = \"w{i}\"\ntitle = \"work {i}\"\n"
        ));
    }
    e.append("plan.toml", &plan);
    e.ok(&["plan", "apply", "plan.toml"]);
    let report = r#"echo '{"flags": ["SECURITY_BREACH"]}' > "$DOWNBEAT_RESULT_FILE""#;
    e.ok(&[
        "add",
        "alarm",
        "--key",
        "alarm",
        "--priority",
        "critical",
        "--shell",
        report,
    ]);
    for _ in 0..2 {
        e.spawn_worker(&["--slots", "2", "--lease", "5s"]);
    }
    e.wait_status("all tasks completed", |s| s["counts"]["completed"] == 14);

    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = e.store(&rt);
    let log = rt.block_on(store.events(&Default::default())).unwrap();
    let hold = log
        .iter()
        .find(|ev| ev.action == "hold.added")
        .expect("a hold");
    let follow_up = hold.entity.clone();
    let done = log
        .iter()
        .find(|ev| {
            ev.entity == follow_up
                && ev.action == "task.status"
                && ev
                    .after
                    .as_ref()
                    .is_some_and(|a| a["status"] == "completed")
        })
        .expect("the follow-up completed")
        .seq;
    // From shortly after the hold until the follow-up's completion 2 s later, nothing else
    // started on any worker. Claims chosen before a worker saw the hold are refused by the
    // store; only a batch that overlaps the hold's own commit may land just after it.
    let seen_by_all = hold.at.0 + 250;
    let started_meanwhile: Vec<&str> = log
        .iter()
        .filter(|ev| ev.seq > hold.seq && ev.seq < done && ev.entity != follow_up)
        .filter(|ev| ev.at.0 > seen_by_all)
        .filter(|ev| {
            ev.action == "task.status"
                && ev.after.as_ref().is_some_and(|a| a["status"] == "running")
        })
        .map(|ev| ev.entity.as_str())
        .collect();
    // On failure, the log says which runner went on and when it could have known.
    let trace: Vec<String> = log
        .iter()
        .map(|ev| {
            let st = ev.after.as_ref().and_then(|a| a.get("status"));
            format!(
                "{} {} {} {} {} {:?}",
                ev.seq, ev.at.0, ev.actor, ev.action, ev.entity, st
            )
        })
        .collect();
    assert!(
        started_meanwhile.is_empty(),
        "started while held: {started_meanwhile:?}\n{}",
        trace.join("\n")
    );
    assert!(
        rt.block_on(store.holds()).unwrap().is_empty(),
        "the hold ended with its task"
    );
}

#[test]
fn the_workers_benchmark_measures_and_cleans_up() {
    let out = Command::new(env!("CARGO_BIN_EXE_downbeat"))
        .env_remove("DOWNBEAT_DATABASE_URL")
        .args([
            "--json",
            "bench",
            "workers",
            "--workers",
            "2",
            "--tasks",
            "40",
            "--shape",
            "chains",
            "--slots",
            "4",
            "--database",
            &server_url(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["completed"], 40, "{r}");
    assert_eq!(r["workers"], 2);
    // Four chains of ten: 36 handoffs from a task to its dependent.
    assert_eq!(r["latency_samples"], 36, "{r}");
    assert!(r["tasks_per_second"].as_f64().unwrap() > 0.0);
    assert!(r["latency_ms_p50"].as_f64().unwrap() >= 0.0);
    let schema = r["schema"].as_str().unwrap().to_owned();
    let left: bool = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async move {
            let mut c = sqlx::PgConnection::connect(&server_url()).await.unwrap();
            let left =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
                    .bind(schema)
                    .fetch_one(&mut c)
                    .await
                    .unwrap();
            c.close().await.unwrap();
            left
        });
    assert!(!left, "the benchmark's schema was left behind");

    // A SQLite URL is refused with a usage error.
    let bad = Command::new(env!("CARGO_BIN_EXE_downbeat"))
        .args(["bench", "workers", "--database", "sqlite:x.db"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("PostgreSQL"));
}

// ------------------------------------------------------------------------------------------
// A PostgreSQL restart in the middle of a run: the workers notice, stop their attempts,
// reconnect when the server is back, and every task still ends completed. The test starts a
// private server (initdb in a temporary directory, a free port on 127.0.0.1) so restarting it
// disturbs nothing else. It needs the server binaries: `pg_config --bindir`, else the newest
// `/usr/lib/postgresql/*/bin`. Running as root, the server runs as the `postgres` user
// (PostgreSQL refuses root).

fn bindir() -> PathBuf {
    if let Ok(o) = Command::new("pg_config").arg("--bindir").output()
        && o.status.success()
    {
        let p = PathBuf::from(String::from_utf8_lossy(&o.stdout).trim());
        if p.join("initdb").exists() {
            return p;
        }
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL server binaries (initdb, pg_ctl) are needed for this test")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    found.sort();
    found
        .pop()
        .expect("no initdb under /usr/lib/postgresql/*/bin")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A private server, stopped and removed on drop.
struct Server {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    root: bool,
}

impl Server {
    fn pg(&self, program: &str, args: &[&str]) -> Command {
        let exe = self.bin.join(program);
        if self.root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe).args(args);
            c
        } else {
            let mut c = Command::new(exe);
            c.args(args);
            c
        }
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn start() -> Self {
        Self::start_with(None)
    }

    /// With `Some(password)`, the server asks for it (scram-sha-256) instead of trusting.
    fn start_with(password: Option<&str>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let pwfile = dir.path().join("pw");
        if let Some(pw) = password {
            std::fs::write(&pwfile, pw).unwrap();
        }
        let root = is_root();
        if root {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .unwrap()
                .success();
            assert!(ok, "chown of the server directory");
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let s = Self {
            dir,
            bin: bindir(),
            port,
            root,
        };
        let pwarg = format!("--pwfile={}", pwfile.display());
        let mut args = vec!["-D".to_owned(), s.data(), "-U".into(), "postgres".into()];
        args.push("--no-sync".into());
        match password {
            Some(_) => args.extend(["-A".into(), "scram-sha-256".into(), pwarg]),
            None => args.extend(["-A".into(), "trust".into()]),
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = s.pg("initdb", &args).output().unwrap();
        assert!(
            o.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        s.ctl("start");
        s
    }

    fn ctl(&self, action: &str) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.path().display()
        );
        let data = self.data();
        let log = self.dir.path().join("server.log").display().to_string();
        let o = self
            .pg(
                "pg_ctl",
                &[
                    "-D", &data, "-l", &log, "-w", "-t", "60", "-m", "fast", "-o", &opts, action,
                ],
            )
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "pg_ctl {action}: {}{}",
            String::from_utf8_lossy(&o.stderr),
            std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
        );
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let d = self.data();
        let _ = self
            .pg("pg_ctl", &["-D", &d, "-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn log_of(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn workers_survive_a_database_restart_and_nothing_is_lost() {
    let server = Server::start();
    let mut p = Env::on(server.url(), "restart");
    p.append(
        ".downbeat/config.toml",
        "\n[executors.nap]\ntype = \"process\"\nargv = [\"sleep\", \"0.1\"]\n",
    );
    let n = 40;
    let mut plan = String::new();
    for i in 0..n {
        plan.push_str(&format!(
            "[[tasks]]\nkey = \"t{i}\"\ntitle = \"Task {i}\"\n"
        ));
        if i >= 2 {
            plan.push_str(&format!("depends_on = [\"t{}\"]\n", i - 2));
        }
    }
    p.append("plan.toml", &plan);
    p.ok(&["plan", "apply", "plan.toml"]);
    let logs: Vec<PathBuf> = (0..2)
        .map(|i| p.path().join(format!("worker{i}.log")))
        .collect();
    for (i, log) in logs.iter().enumerate() {
        let child = p
            .command(&[
                "worker",
                "--executor",
                "nap",
                "--slots",
                "2",
                "--lease",
                "3s",
                "--name",
                &format!("w{i}"),
            ])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap();
        p.children.push(child);
    }
    // Restart once some of the work is done and the rest is in flight.
    let t0 = Instant::now();
    while p.completed().unwrap_or(0) < 6 {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "no progress before the restart"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    server.ctl("restart");
    let t1 = Instant::now();
    loop {
        if p.completed() == Some(n) {
            break;
        }
        for c in &mut p.children {
            assert!(
                c.try_wait().unwrap().is_none(),
                "a worker exited after the restart: {}",
                logs.iter()
                    .map(|l| log_of(l))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
        assert!(
            t1.elapsed() < Duration::from_secs(90),
            "not every task completed after the restart: {:?}\n{}",
            p.completed(),
            logs.iter()
                .map(|l| log_of(l))
                .collect::<Vec<_>>()
                .join("\n")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let said: String = logs.iter().map(|l| log_of(l)).collect();
    eprintln!("{said}");

    // Nothing lost or left half-done: every task completed, every attempt ended.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = p.store(&rt);
    let tasks = rt.block_on(store.tasks(&TaskFilter::default())).unwrap();
    assert_eq!(tasks.len(), n as usize);
    for t in &tasks {
        assert_eq!(t.status, downbeat_core::task::Status::Completed, "{}", t.id);
        let attempts = rt.block_on(store.attempts(t.id)).unwrap();
        assert!(!attempts.is_empty());
        assert!(
            attempts.iter().all(|a| a.ended_at.is_some()),
            "an attempt of {} never ended: {attempts:?}",
            t.id
        );
        assert_eq!(
            attempts
                .iter()
                .filter(|a| a.outcome.as_deref() == Some("succeeded"))
                .count(),
            1,
            "{}: {attempts:?}",
            t.id
        );
    }
}

/// A wrong password gives a clear error (exit 6) that names the user and never shows the
/// password; the right one works.
#[test]
fn a_wrong_password_is_a_clear_error_without_the_password() {
    let server = Server::start_with(Some("right-horse-battery"));
    let url = |pw: &str| {
        format!(
            "postgres://postgres:{pw}@127.0.0.1:{}/postgres",
            server.port
        )
    };
    let e = Env::builder().inherit_env().build();
    let run = |pw: &str, args: &[&str]| {
        e.command(args)
            .env("DOWNBEAT_DATABASE_URL", url(pw))
            .output()
            .unwrap()
    };
    let o = run("wrong-staple-9", &["init"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(6), "{err}");
    assert!(
        err.contains("authentication failed for user `postgres`"),
        "{err}"
    );
    assert!(
        !err.contains("wrong-staple-9"),
        "the password leaked: {err}"
    );
    let o = run("right-horse-battery", &["init"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = run("right-horse-battery", &["--json", "status"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!String::from_utf8_lossy(&o.stdout).contains("right-horse-battery"));
}
