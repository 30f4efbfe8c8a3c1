//! Learned patterns from a scripted history (claims and completions at known times), the
//! calibrated makespan, and maintenance on a schedule: a worker requeueing a stale task and
//! recording the finding, one round per period however many processes share the database.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::Env;
use downbeat_app::cache::GraphCache;
use downbeat_app::claims::{self, Claim, ClaimSpec, End, EndAction};
use downbeat_app::maintenance::{self, Actions, Schedule};
use downbeat_app::project::{self, Globals, Project};
use downbeat_core::time::Timestamp;
use serde_json::Value;

/// The harness' fixed clock (`common::NOW`) in milliseconds.
fn t0() -> i64 {
    Timestamp::parse_rfc3339(common::NOW).unwrap().0
}

const PLAN: &str = r#"
[plan]
name = "auth"

[[tasks]]
key = "auth"
title = "Auth"

[[tasks]]
key = "a"
parent = "auth"
title = "A"
role = "implementer"
effort = 2

[[tasks]]
key = "b"
parent = "auth"
title = "B"
role = "implementer"
effort = 1

[[tasks]]
key = "c"
parent = "auth"
title = "C"
role = "implementer"
effort = 4

[[tasks]]
key = "t"
parent = "auth"
title = "T"
role = "tester"
effort = 1
"#;

async fn open(e: &Env, at: i64) -> Project {
    let g = Globals {
        project: Some(e.path().to_owned()),
        actor: "tester".into(),
        fixed_now: Some(Timestamp(at)),
        ..Default::default()
    };
    project::open(&g).await.unwrap()
}

/// Claims `key` at `start` and ends it at `end` (completed, or failed).
async fn attempt(e: &Env, key: &str, start: i64, end: i64, ok: bool) {
    let p = open(e, start).await;
    let spec = ClaimSpec {
        task: Some(key.into()),
        role: None,
        worker: None,
        lease: Some("1d".into()),
        prompt: false,
    };
    let Claim::Took(w) = claims::claim(&p, &GraphCache::default(), "script", &spec)
        .await
        .unwrap()
    else {
        panic!("{key} was not claimed")
    };
    let p = open(e, end).await;
    let how = if ok {
        EndAction::Complete
    } else {
        EndAction::Fail
    };
    let end = End {
        task: Some(key.into()),
        token: Some(w.token.to_string()),
        summary: Some("done".into()),
        artifacts: Vec::new(),
        flags: Vec::new(),
        discovered: Vec::new(),
        reason: (!ok).then(|| "broke".into()),
        retry: false,
        lease: None,
    };
    claims::end(&p, &end, how).await.unwrap();
}

fn role<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no role {name} in {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patterns_come_from_a_scripted_history_with_known_durations() {
    let e = Env::builder().fixed_clock().init().build();
    e.write("plan.toml", PLAN);
    e.ok(&["plan", "apply", "plan.toml"]);
    let s = t0();
    // a: 20 s for 2 units; b: fails after 5 s, then 30 s for 1 unit; c: 80 s for 4 units;
    // t: fails after 1 s.
    attempt(&e, "a", s, s + 20_000, true).await;
    attempt(&e, "b", s, s + 5_000, false).await;
    e.ok(&["retry", "b"]);
    attempt(&e, "b", s + 10_000, s + 40_000, true).await;
    attempt(&e, "c", s, s + 80_000, true).await;
    attempt(&e, "t", s, s + 1_000, false).await;

    let v = e.json(&["patterns"]);
    let imp = role(&v, "implementer");
    assert_eq!(imp["tasks"], 3, "{v}");
    assert_eq!(imp["attempts"], 4);
    assert_eq!(imp["retries"], 1);
    assert_eq!(imp["first_try"], 2);
    assert_eq!(imp["ms_per_effort"]["median"], 20_000);
    assert_eq!(imp["ms_per_effort"]["low"], 10_000);
    assert_eq!(imp["ms_per_effort"]["high"], 30_000);
    let tester = role(&v, "tester");
    assert_eq!(
        (tester["tasks"].as_u64(), tester["first_try"].as_u64()),
        (Some(1), Some(0))
    );
    assert!(tester["ms_per_effort"].is_null());
    // Per plan: the template or plan the tasks came from.
    let auth = &v["plans"][0];
    assert_eq!(auth["name"], "auth");
    assert_eq!(auth["tasks"], 4);
    assert_eq!(auth["shape"]["containers"], 1);
    assert_eq!(auth["shape"]["children"]["median"], 4);
    assert_eq!(auth["shape"]["depth"], 2);

    let only = e.json(&["patterns", "--role", "tester"]);
    assert_eq!(only["roles"].as_array().unwrap().len(), 1);
    let text = e.ok(&["patterns"]);
    assert!(text.contains("implementer"), "{text}");
    assert!(text.contains("20s"), "{text}");
    e.fails(&["patterns", "--role", "juggler"], 4);

    // Effort into seconds: implementers by their own median (20 s), the tester and the
    // container by the project's (20 s as well: 10, 30 and 20 s per unit).
    e.ok(&["retry", "t"]);
    let w = e.json(&["waves", "--calibrated"]);
    let plain = e.json(&["waves"]);
    assert_eq!(w["unit"], "seconds", "{w}");
    assert_eq!(plain["unit"], "effort");
    assert!(plain["total_effort"].as_u64().unwrap() >= 1);
    assert_eq!(
        w["total_effort"].as_u64(),
        plain["total_effort"].as_u64().map(|x| x * 20)
    );
    let basis = |r: &str| {
        w["calibration"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["role"] == r)
            .map(|x| (x["basis"].clone(), x["ms_per_effort"].clone()))
    };
    assert_eq!(
        basis("implementer"),
        Some(("calibrated".into(), 20_000.into()))
    );
    assert_eq!(basis("tester"), Some(("project".into(), 20_000.into())));
    assert!(plain["calibration"].is_null());
}

fn log(e: &Env) -> Vec<Value> {
    e.json(&["log"]).as_array().unwrap().clone()
}

fn config(every: &str) -> String {
    format!(
        "[maintain]\nstale_after = \"1h\"\narchive_after = \"0s\"\nevery = \"{every}\"\napply = [\"requeue\"]\n\n[run]\nexecutor = \"noop\"\n"
    )
}

#[test]
fn a_worker_on_a_schedule_requeues_a_stale_task_and_records_the_finding() {
    let mut e = Env::builder().fixed_clock().init().build();
    e.write(".downbeat/config.toml", &config("1s"));
    e.ok(&["add", "Stuck", "--key", "stuck"]);
    e.ok(&["start", "stuck"]);
    // Two days later nobody has touched it.
    e.set_clock("2026-03-03T10:00:00Z");
    let child = e
        .command(&["worker", "--name", "w1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    e.adopt(child);
    let t = Instant::now();
    let found = loop {
        let events = log(&e);
        if let Some(f) = events.iter().find(|x| x["action"] == "maintain.found") {
            break f.clone();
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "no maintain.found event: {events:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(found["after"]["kind"], "stale-running", "{found}");
    assert_eq!(found["after"]["action"], "requeued");
    let events = log(&e);
    assert!(
        events
            .iter()
            .any(|x| x["action"] == "maintain.started" && x["after"]["holder"] == "w1")
    );
    // Requeued with the reason, then run by the worker (a no-op executor).
    let stuck = e.json(&["show", "stuck"]);
    assert_ne!(stuck["status"], "running", "{stuck}");
    let t = Instant::now();
    let status = loop {
        let s = e.json(&["status"]);
        if s["maintenance"]["done"] == true {
            break s;
        }
        assert!(t.elapsed() < Duration::from_secs(60), "no round in {s}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status["maintenance"]["holder"], "w1");
    assert_eq!(status["maintenance"]["findings"], 1);
    let text = e.ok(&["status"]);
    assert!(text.contains("maintenance: last round"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_run_one_round_per_period() {
    let e = Env::builder().fixed_clock().init().build();
    e.write(".downbeat/config.toml", &config("1h"));
    let s = Schedule {
        every: Duration::from_secs(3600),
        allowed: Actions::default(),
    };
    let (p1, p2) = (open(&e, t0()).await, open(&e, t0()).await);
    let (a, b) = tokio::join!(
        maintenance::run_if_due(&p1, &s, "one"),
        maintenance::run_if_due(&p2, &s, "two")
    );
    let ran = [a.unwrap(), b.unwrap()];
    assert_eq!(ran.iter().flatten().count(), 1, "{ran:?}");
    // Later in the same period: nobody; a period on: one of them again.
    let half = open(&e, t0() + 1_800_000).await;
    assert!(
        maintenance::run_if_due(&half, &s, "two")
            .await
            .unwrap()
            .is_none()
    );
    let next = open(&e, t0() + 3_600_000).await;
    let r = maintenance::run_if_due(&next, &s, "two")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((r.holder.as_str(), r.done), ("two", true));
    let started = log(&e)
        .iter()
        .filter(|x| x["action"] == "maintain.started")
        .count();
    assert_eq!(started, 2);
}

#[test]
fn a_bad_schedule_is_refused_when_the_worker_starts() {
    let e = Env::builder().fixed_clock().init().build();
    e.write(
        ".downbeat/config.toml",
        "[maintain]\nevery = \"1h\"\napply = [\"burn\"]\n",
    );
    let err = e.fails(&["worker", "--name", "w"], 4);
    assert!(err.contains("unknown action `burn`"), "{err}");
}

#[test]
fn an_mcp_http_server_runs_the_schedule_too() {
    let mut e = Env::builder().init().build();
    e.write(".downbeat/config.toml", &config("1h"));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = e
        .command(&["mcp", "--http", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    e.adopt(server);
    let start = Instant::now();
    while !log(&e).iter().any(|ev| ev["action"] == "maintain.finished") {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no round: {:?}",
            log(&e)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
