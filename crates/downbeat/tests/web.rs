//! `downbeat serve`: the JSON API, the event stream and the access rules over real HTTP, and
//! the page itself in a real browser (Chromium driven through ChromeDriver; see
//! `tests/web_browser.rs`).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::Env;
use serde_json::Value;

const TOKEN: &str = "0123456789abcdef0123456789abcdef";

/// A server started by `downbeat serve`, adopted by its `Env`.
struct Server {
    /// `127.0.0.1:PORT`.
    addr: String,
    /// The printed address, with the token.
    url: String,
    pid: u32,
}

fn serve(env: &mut Env, addr: &str, token: Option<&str>) -> Server {
    let mut c = env.command(&["serve", "--addr", addr]);
    if let Some(t) = token {
        c.env("DOWNBEAT_WEB_TOKEN", t);
    }
    let mut child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line.trim().to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "printed {url:?}");
    let addr = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let pid = env.adopt(child);
    Server { addr, url, pid }
}

/// One HTTP/1.1 exchange: (status, headers, body).
fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.push_str(&format!("Host: {addr}\r\n"));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head.to_owned(), body.to_owned())
}

fn get_json(addr: &str, path: &str) -> Value {
    let (status, _, body) = http(addr, "GET", path, &[], "");
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap()
}

fn project(n: usize) -> Env {
    let env = Env::builder().init().build();
    let mut plan = String::new();
    for i in 0..n {
        plan.push_str(&format!(
            "[[tasks]]\nkey = \"t{i}\"\ntitle = \"Task {i}\"\n"
        ));
        if i >= 7 {
            plan.push_str(&format!("depends_on = [\"t{}\"]\n", i - 7));
        }
    }
    env.write("plan.toml", &plan);
    env.ok(&["plan", "apply", "plan.toml"]);
    env
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
    let mut c = env.command(&["serve", "--addr", "0.0.0.0:0"]);
    c.env("DOWNBEAT_WEB_TOKEN", TOKEN);
    let mut child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    env.adopt(child);
    let port = line
        .trim()
        .trim_start_matches("http://0.0.0.0:")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let addr = format!("127.0.0.1:{port}");
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
        if found.len() >= want || start.elapsed() > Duration::from_secs(20) {
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
