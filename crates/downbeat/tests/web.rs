//! `downbeat serve`: the JSON API, the event stream and the access rules over real HTTP, and
//! the page itself in a real browser (Chromium driven through ChromeDriver; see
//! `tests/web_browser.rs`).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::Env;
use common::web::{TOKEN, http, project, serve};
use serde_json::Value;

fn get_json(addr: &str, path: &str) -> Value {
    let (status, _, body) = http(addr, "GET", path, &[], "");
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap()
}

#[test]
fn the_graph_answers_every_task_in_its_wave() {
    let mut env = project(20);
    let s = serve(&mut env, "127.0.0.1:0", None);
    let g = get_json(&s.addr, "/api/graph");
    let nodes = g["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 20);
    assert_eq!(g["total"], 20);
    assert_eq!(g["counts"]["ready"], 7);
    assert_eq!(g["counts"]["waiting"], 13);
    let waves = env.json(&["waves"]);
    let waves = waves["waves"].as_array().unwrap();
    for (w, wave) in waves.iter().enumerate() {
        for t in wave.as_array().unwrap() {
            let id = t.get("id").unwrap_or(t).as_str().unwrap();
            let n = nodes.iter().find(|n| n["id"] == id).unwrap();
            assert_eq!(n["layer"], w, "{n}");
        }
    }
    assert_eq!(g["layers"], waves.len());
    assert_eq!(g["edges"].as_array().unwrap().len(), 13);
    assert_eq!(g["critical_path"].as_array().unwrap().len(), 3);
    // A finished task keeps its place.
    env.ok(&["done", "t0"]);
    let g = get_json(&s.addr, "/api/graph");
    let t0 = g["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["key"] == "t0")
        .unwrap()
        .clone();
    assert_eq!(
        (t0["status"].as_str(), t0["layer"].as_u64()),
        (Some("completed"), Some(0))
    );
    assert_eq!(g["done"], 1);
}

#[test]
fn a_task_its_attempts_and_its_output() {
    let mut env = Env::builder().init().build();
    env.write(
        "plan.toml",
        "[[tasks]]\nkey = \"say\"\ntitle = \"Say things\"\nshell = \"echo first line; echo second line\"\n",
    );
    env.ok(&["plan", "apply", "plan.toml"]);
    env.ok(&["insight", "add", "say says two lines", "--task", "say"]);
    env.ok(&["run"]);
    let s = serve(&mut env, "127.0.0.1:0", None);
    let t = get_json(&s.addr, "/api/tasks/say");
    assert_eq!(t["status"], "completed");
    assert_eq!(t["attempts"].as_array().unwrap().len(), 1);
    assert_eq!(t["attempts"][0]["outcome"], "succeeded");
    assert!(t["attempts"][0]["duration_ms"].is_number());
    assert!(t["prompt"].as_str().unwrap().contains("Say things"), "{t}");
    assert!(!t["events"].as_array().unwrap().is_empty());
    let o = get_json(&s.addr, "/api/tasks/say/output");
    assert_eq!(o["lines"], serde_json::json!(["first line", "second line"]));
    assert_eq!(o["ended"], true);
    let next = o["next"].as_u64().unwrap();
    let again = get_json(&s.addr, &format!("/api/tasks/say/output?from={next}"));
    assert_eq!(again["lines"], serde_json::json!([]));
    let c = get_json(&s.addr, "/api/context");
    assert_eq!(c["insights"][0]["text"], "say says two lines");
    let r = get_json(&s.addr, "/api/run");
    assert_eq!(
        (r["done"].as_u64(), r["total"].as_u64()),
        (Some(1), Some(1))
    );
    let completed: u64 = r["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["completed"].as_u64().unwrap())
        .sum();
    assert_eq!(completed, 1);
    // Errors are JSON with a kind.
    let (status, _, body) = http(&s.addr, "GET", "/api/tasks/nosuch", &[], "");
    assert_eq!(status, 404, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["error"]["kind"],
        "not_found"
    );
    let (status, _, body) = http(&s.addr, "GET", "/api/tasks/say/output?form=3", &[], "");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("form"), "{body}");
    let schema = get_json(&s.addr, "/api/schema");
    for name in [
        "Graph",
        "TaskPage",
        "Output",
        "RunPage",
        "ContextPage",
        "Change",
        "Done",
        "ErrorBody",
    ] {
        assert!(schema[name]["properties"].is_object(), "{name}");
    }
}

#[test]
fn steering_needs_the_token_and_this_page() {
    let mut env = project(3);
    let s = serve(&mut env, "127.0.0.1:0", Some(TOKEN));
    let bearer = format!("Bearer {TOKEN}");
    let cookie = format!("downbeat_{}={TOKEN}", s.addr.rsplit(':').next().unwrap());
    let origin = format!("http://{}", s.addr);
    // Reading is open on loopback; a foreign Host is refused (DNS rebinding).
    assert_eq!(http(&s.addr, "GET", "/api/graph", &[], "").0, 200);
    let (status, _, body) = http(
        &s.addr,
        "GET",
        "/api/graph",
        &[("Host", "evil.example:80")],
        "",
    );
    assert_eq!(status, 421, "{body}");
    // No token: refused, nothing changed.
    let (status, _, body) = http(&s.addr, "POST", "/api/pause", &[], "{}");
    assert_eq!(status, 401, "{body}");
    // The token from another origin, or the cookie without saying where from: refused.
    for h in [
        vec![
            ("Authorization", bearer.as_str()),
            ("Origin", "http://evil.example"),
        ],
        vec![("Cookie", cookie.as_str()), ("Origin", "null")],
        vec![("Cookie", cookie.as_str())],
        vec![
            ("Cookie", cookie.as_str()),
            ("Sec-Fetch-Site", "cross-site"),
        ],
    ] {
        let (status, _, body) = http(&s.addr, "POST", "/api/pause", &h, "{}");
        assert_eq!(status, 403, "{h:?}: {body}");
    }
    assert!(env.json(&["holds"]).as_array().unwrap().is_empty());
    // The printed address sets the cookie; the page's own requests steer.
    let path = &s.url[s.url.find("/?").unwrap()..];
    let (status, head, _) = http(&s.addr, "GET", path, &[], "");
    assert_eq!(status, 303);
    assert!(
        head.contains(&format!("{cookie}; Path=/; HttpOnly; SameSite=Strict")),
        "{head}"
    );
    let (status, _, _) = http(&s.addr, "GET", "/?token=wrong", &[], "");
    assert_eq!(status, 401);
    let (status, _, body) = http(
        &s.addr,
        "POST",
        "/api/pause",
        &[("Cookie", cookie.as_str()), ("Origin", origin.as_str())],
        r#"{"reason": "look first"}"#,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(env.json(&["holds"])[0]["reason"], "look first");
    // A program with the bearer token; unknown fields are refused by name.
    let (status, _, body) = http(
        &s.addr,
        "POST",
        "/api/unpause",
        &[("Authorization", bearer.as_str())],
        r#"{"hold": 1}"#,
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("unknown field `hold`"), "{body}");
    let (status, _, body) = http(
        &s.addr,
        "POST",
        "/api/unpause",
        &[("Authorization", bearer.as_str())],
        "",
    );
    assert_eq!(status, 200, "{body}");
    assert!(env.json(&["holds"]).as_array().unwrap().is_empty());
    let (status, _, body) = http(
        &s.addr,
        "POST",
        "/api/tasks/t2/cancel",
        &[("Authorization", bearer.as_str())],
        "",
    );
    assert_eq!(status, 200, "{body}");
    let (status, _, body) = http(
        &s.addr,
        "POST",
        "/api/tasks/t2/retry",
        &[("Authorization", bearer.as_str())],
        "",
    );
    assert_eq!(status, 200, "{body}");
    let log = env.json(&["log", "--limit", "3"]);
    assert!(log.to_string().contains("\"actor\":\"web\""), "{log}");
    // Running a task that waits is refused, saying why.
    let (status, _, body) = http(
        &s.addr,
        "POST",
        "/api/tasks/nosuch/run",
        &[("Authorization", bearer.as_str())],
        "",
    );
    assert_eq!(status, 404, "{body}");
}

#[test]
fn beyond_loopback_every_request_needs_the_token() {
    let mut env = project(2);
    let s = serve(&mut env, "0.0.0.0:0", Some(TOKEN));
    assert!(s.url.starts_with("http://0.0.0.0:"), "{}", s.url);
    let addr = s.addr;
    let (status, _, body) = http(&addr, "GET", "/api/graph", &[], "");
    assert_eq!(status, 401, "{body}");
    let bearer = format!("Bearer {TOKEN}");
    let (status, _, _) = http(
        &addr,
        "GET",
        "/api/graph",
        &[("Authorization", bearer.as_str())],
        "",
    );
    assert_eq!(status, 200);
    // The page's shell loads, and asks for the token.
    assert_eq!(http(&addr, "GET", "/", &[], "").0, 200);
}

/// Reads server-sent events from `path` until `want` data lines came (or 20 s).
fn read_events(addr: &str, path: &str, last_id: Option<i64>, want: usize) -> Vec<Value> {
    read_events_until(addr, path, last_id, |found| found.len() >= want)
}

/// Reads server-sent events from `path` until `enough` says so (or 20 s).
fn read_events_until(
    addr: &str,
    path: &str,
    last_id: Option<i64>,
    enough: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n");
    if let Some(id) = last_id {
        req.push_str(&format!("Last-Event-ID: {id}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut buf = String::new();
    let start = Instant::now();
    let mut chunk = [0u8; 4096];
    loop {
        let found: Vec<Value> = buf
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .filter_map(|d| serde_json::from_str::<Value>(d).ok())
            .filter(|v| v.get("seq").is_some())
            .collect();
        if enough(&found) || start.elapsed() > Duration::from_secs(20) {
            return found;
        }
        match s.read(&mut chunk) {
            Ok(0) => return found,
            Ok(n) => buf.push_str(&String::from_utf8_lossy(&chunk[..n])),
            Err(_) => {}
        }
    }
}

#[test]
fn the_event_stream_resumes_and_follows() {
    let mut env = project(3);
    let s = serve(&mut env, "127.0.0.1:0", None);
    let log: Vec<i64> = env
        .json(&["log", "--limit", "100"])
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    let first = *log.iter().min().unwrap();
    let last = *log.iter().max().unwrap();
    // From an id on: everything after it, in order, once.
    let got = read_events(&s.addr, "/api/events", Some(first), (last - first) as usize);
    let seqs: Vec<i64> = got.iter().map(|v| v["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, ((first + 1)..=last).collect::<Vec<_>>());
    // Live: a change made by the CLI arrives, with its new status.
    let addr = s.addr.clone();
    let reader = std::thread::spawn(move || {
        read_events(&addr, &format!("/api/events?after={last}"), None, 1)
    });
    std::thread::sleep(Duration::from_millis(500));
    env.ok(&["done", "t0"]);
    let got = reader.join().unwrap();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["action"], "task.status");
    assert_eq!(got[0]["status"], "completed");
    assert_eq!(got[0]["seq"], last + 1);
}

#[test]
fn serve_refuses_bad_addresses_and_stops_on_sigterm() {
    let mut env = project(1);
    let s = serve(&mut env, "127.0.0.1:0", None);
    let err = env.fails(&["serve", "--addr", &s.addr], 5);
    assert!(
        err.contains("cannot listen on") && err.contains("--addr 127.0.0.1:0"),
        "{err}"
    );
    let err = env.fails(&["serve", "--addr", "nowhere"], 2);
    assert!(err.contains("invalid address"), "{err}");
    let mut c = env.command(&["serve", "--addr", "127.0.0.1:0"]);
    c.env("DOWNBEAT_WEB_TOKEN", "short");
    let o = c.output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let outside = Env::builder().build();
    let err = outside.fails(&["serve"], 3);
    assert!(err.contains("downbeat init"), "{err}");
    // SIGTERM stops it, an open event stream included.
    let addr = s.addr.clone();
    let stream = std::thread::spawn(move || read_events(&addr, "/api/events", None, 1_000));
    std::thread::sleep(Duration::from_millis(300));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(s.pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let child = env.children.iter_mut().find(|c| c.id() == s.pid).unwrap();
    let status = common::exit_within(child, Duration::from_secs(10), "serve after SIGTERM");
    assert!(status.success(), "{status:?}");
    stream.join().unwrap();
}

#[test]
fn run_serve_shows_the_page_while_the_run_goes() {
    let mut env = Env::builder().init().build();
    let mut plan = String::new();
    for i in 0..3 {
        plan.push_str(&format!(
            "[[tasks]]\nkey = \"s{i}\"\ntitle = \"Step {i}\"\nshell = \"sleep 1\"\n"
        ));
    }
    env.write("plan.toml", &plan);
    env.ok(&["plan", "apply", "plan.toml"]);
    let mut c = env.command(&["run", "-j", "1", "--serve", "127.0.0.1:0"]);
    c.env("DOWNBEAT_WEB_TOKEN", TOKEN);
    let mut child = c
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("live page: ") {
        line.clear();
        assert!(err.read_line(&mut line).unwrap() > 0, "no address printed");
    }
    let url = line.trim().trim_start_matches("live page: ").to_owned();
    let addr = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let pid = env.adopt(child);
    let g = get_json(&addr, "/api/graph");
    assert_eq!(
        (g["total"].as_u64(), g["can_run"].as_bool()),
        (Some(3), Some(false))
    );
    let bearer = format!("Bearer {TOKEN}");
    let (status, _, body) = http(
        &addr,
        "POST",
        "/api/tasks/s2/run",
        &[("Authorization", bearer.as_str())],
        "",
    );
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("a run is going in this process"), "{body}");
    // The rest of stderr is drained so the run never blocks on it.
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    let child = env.children.iter_mut().find(|c| c.id() == pid).unwrap();
    let status = common::exit_within(child, Duration::from_secs(60), "the run");
    assert!(status.success(), "{status:?}");
    // The page stops with the run.
    assert!(TcpStream::connect(&addr).is_err());
}

#[test]
fn on_postgresql_the_page_follows_workers_and_never_shows_the_password() {
    let base = common::pg::server_url();
    // Trust authentication ignores it; the URL carries it all the same.
    let secret = "s3cret-pw-9f2c";
    let with_password = match base.split_once("://").and_then(|(s, rest)| {
        let (user, host) = rest.split_once('@')?;
        (!user.contains(':')).then(|| format!("{s}://{user}:{secret}@{host}"))
    }) {
        Some(u) => u,
        None => return eprintln!("skipped: the test server's URL already has a password"),
    };
    let mut env = Env::builder()
        .inherit_env()
        .unset("DOWNBEAT_NOW")
        .postgres_on(with_password, "web")
        .init()
        .build();
    let mut plan = String::new();
    for i in 0..6 {
        plan.push_str(&format!(
            "[[tasks]]\nkey = \"w{i}\"\ntitle = \"Work {i}\"\nshell = \"sleep 0.2\"\n"
        ));
    }
    env.write("plan.toml", &plan);
    env.ok(&["plan", "apply", "plan.toml"]);
    let s = serve(&mut env, "127.0.0.1:0", None);
    let addr = s.addr.clone();
    let stream = std::thread::spawn(move || {
        read_events_until(&addr, "/api/events", None, |found| {
            found.iter().filter(|e| e["status"] == "completed").count() >= 6
        })
    });
    std::thread::sleep(Duration::from_millis(300));
    let worker = env
        .command(&["worker", "--slots", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    env.adopt(worker);
    let start = Instant::now();
    loop {
        let g = get_json(&s.addr, "/api/graph");
        if g["done"] == 6 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the worker never finished: {g}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let r = get_json(&s.addr, "/api/run");
    assert_eq!(r["workers"].as_array().unwrap().len(), 1, "{r}");
    assert_eq!(r["workers"][0]["alive"], true);
    // Every status change of the worker's came through the stream: running, then completed.
    let events = stream.join().unwrap();
    let completed = events.iter().filter(|e| e["status"] == "completed").count();
    assert_eq!(completed, 6, "{events:?}");
    let mut answers = vec![events.iter().map(Value::to_string).collect::<String>()];
    for path in [
        "/api/graph",
        "/api/run",
        "/api/context",
        "/api/tasks/w0",
        "/api/schema",
        "/",
        "/assets/app.js",
    ] {
        answers.push(http(&s.addr, "GET", path, &[], "").2);
    }
    for a in &answers {
        assert!(!a.contains(secret), "the password was shown: {a}");
    }
}

#[test]
fn the_context_shows_flags_with_their_state_and_follow_up() {
    let mut env = Env::builder().init().build();
    env.write(
        "plan.toml",
        "[[tasks]]\nkey = \"audit\"\ntitle = \"Audit the login\"\nshell = '''cat > \"$DOWNBEAT_RESULT_FILE\" <<'JSON'\n{\"summary\": \"found a token\", \"flags\": [\"SECURITY_BREACH: a token in config.py\"]}\nJSON'''\n",
    );
    env.ok(&["plan", "apply", "plan.toml"]);
    env.ok(&[
        "decision",
        "add",
        "Secrets live in the vault",
        "--why",
        "audits",
    ]);
    // The default rule holds everything but the security follow-up: the run stops there.
    let _ = env.run(&["run"]);
    let s = serve(&mut env, "127.0.0.1:0", None);
    let c = get_json(&s.addr, "/api/context");
    let f = &c["flags"][0];
    assert_eq!(f["flag"], "SECURITY_BREACH", "{c}");
    assert_eq!(f["detail"], "a token in config.py");
    assert_eq!(f["state"], "raised");
    let follow_up = f["follow_up"].as_str().unwrap();
    assert_eq!(c["holds"][0]["task"], follow_up, "{c}");
    assert_eq!(
        c["decisions"][0]["text"],
        "Secrets live in the vault (why: audits)"
    );
    let g = get_json(&s.addr, "/api/graph");
    assert_eq!(g["holds"][0]["task"], follow_up);
    // Completing the follow-up handles the flag.
    env.ok(&["done", follow_up, "--force"]);
    let c = get_json(&s.addr, "/api/context");
    assert_eq!(c["flags"][0]["state"], "handled", "{c}");
}

#[test]
fn serve_runs_the_maintenance_schedule() {
    let mut env = Env::builder().init().build();
    env.write(
        ".downbeat/config.toml",
        "[maintain]\nstale_after = \"1h\"\nevery = \"1s\"\napply = [\"requeue\"]\n",
    );
    let _s = serve(&mut env, "127.0.0.1:0", None);
    let start = Instant::now();
    loop {
        let log = env.json(&["log"]);
        let actions: Vec<&str> = log
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        if actions.contains(&"maintain.started") && actions.contains(&"maintain.finished") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no round: {actions:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
