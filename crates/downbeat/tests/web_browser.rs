//! The live page in a real browser: Debian's Chromium driven by its ChromeDriver (WebDriver,
//! through fantoccini). `.ci/run` installs both and sets `DOWNBEAT_REQUIRE_BROWSER`, so in CI a
//! missing browser fails these tests; elsewhere they say they were skipped.
//!
//! Screenshots of the main views are written to `target/tmp/web-screenshots/`.

#[path = "browser/mod.rs"]
mod browser;
mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use browser::{Browser, browser};
use common::Env;
use common::web::{TOKEN, project, serve};
use fantoccini::{Client, Locator};
use serde_json::{Value, json};

/// How long anything the page should show may take before the test gives up (a guard against
/// hanging, not a speed target: `downbeat bench web` measures speed).
const PATIENCE: Duration = Duration::from_secs(20);

async fn js(c: &Client, script: &str) -> Value {
    c.execute(script, vec![]).await.expect(script)
}

/// Waits until `script` returns `true` in the page.
async fn until(c: &Client, script: &str, what: &str) -> Duration {
    let start = Instant::now();
    loop {
        if js(c, script).await == json!(true) {
            return start.elapsed();
        }
        assert!(start.elapsed() < PATIENCE, "the page never showed {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn screenshot(c: &Client, name: &str) {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("web-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let png = c.screenshot().await.unwrap();
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

async fn open(b: &Browser, url: &str) {
    b.client.goto(url).await.unwrap();
    until(
        &b.client,
        "return document.body.dataset.ready === '1'",
        "the graph",
    )
    .await;
    until(
        &b.client,
        "return document.getElementById('conn').dataset.state === 'live'",
        "a live connection",
    )
    .await;
}

fn id_of(env: &Env, key: &str) -> String {
    env.json(&["show", key])["id"].as_str().unwrap().to_owned()
}

/// Starts `downbeat ARGS` in the background, adopted by `env`; its pid.
fn spawn(env: &mut Env, args: &[&str]) -> u32 {
    let child = env
        .command(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    env.adopt(child)
}

/// Stops the adopted process `pid` with SIGTERM and waits for it.
fn stop(env: &mut Env, pid: u32, what: &str) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let child = env.children.iter_mut().find(|c| c.id() == pid).unwrap();
    common::exit_within(child, PATIENCE, what);
}

/// Clicks the element `at` finds.
async fn click(b: &Browser, at: Locator<'_>) {
    b.client.find(at).await.unwrap().click().await.unwrap();
}

/// Waits until the node of task `id` shows `status`, then opens its panel.
async fn open_task_when(b: &Browser, id: &str, status: &str) {
    until(
        &b.client,
        &format!(
            "return document.querySelector('.node[data-id=\"{id}\"]')?.dataset.status === '{status}'"
        ),
        &format!("task {id} {status}"),
    )
    .await;
    click(b, Locator::Css(&format!(".node[data-id=\"{id}\"]"))).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_page_draws_every_task_in_its_wave_and_follows_the_cli() {
    let Some(b) = browser().await else { return };
    let mut env = project(200);
    let s = serve(&mut env, "127.0.0.1:0", Some(TOKEN));
    open(&b, &s.url).await;
    let drawn = js(
        &b.client,
        "return [...document.querySelectorAll('#nodes .node')].map(n => [n.dataset.id, Number(n.dataset.layer)])",
    )
    .await;
    let drawn: std::collections::HashMap<String, u64> = drawn
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_str().unwrap().to_owned(), p[1].as_u64().unwrap()))
        .collect();
    assert_eq!(drawn.len(), 200);
    let waves = env.json(&["waves"]);
    let waves = waves["waves"].as_array().unwrap();
    assert_eq!(waves.len(), 29);
    for (w, wave) in waves.iter().enumerate() {
        for t in wave.as_array().unwrap() {
            let id = t.get("id").unwrap_or(t).as_str().unwrap();
            assert_eq!(drawn[id], w as u64, "task {id}");
        }
    }
    screenshot(&b.client, "graph").await;
    // A change from the CLI turns its node green and shows in the activity list.
    let t0 = id_of(&env, "t0");
    env.ok(&["done", "t0"]);
    let took = until(
        &b.client,
        &format!("return document.querySelector('.node[data-id=\"{t0}\"]').classList.contains('st-completed')"),
        "t0 completed",
    )
    .await;
    eprintln!(
        "t0 turned green {} ms after `downbeat done` returned",
        took.as_millis()
    );
    until(
        &b.client,
        "return document.querySelector('#activity li') !== null",
        "the activity list",
    )
    .await;
    // The run and context panels.
    env.ok(&[
        "decision",
        "add",
        "Keep the schema flat",
        "--why",
        "fewer joins",
    ]);
    click(&b, Locator::Css("button[data-tab=context]")).await;
    until(
        &b.client,
        "return document.getElementById('tab-context').textContent.includes('Keep the schema flat')",
        "the decision",
    )
    .await;
    screenshot(&b.client, "context").await;
    click(&b, Locator::Css("button[data-tab=run]")).await;
    until(
        &b.client,
        "return document.querySelector('#tab-run svg.chart') !== null",
        "the activity chart",
    )
    .await;
    screenshot(&b.client, "run").await;
    b.client.clone().close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_running_agents_output_streams_into_the_task_panel() {
    let Some(b) = browser().await else { return };
    let mut env = Env::builder().init().build();
    env.write(
        "plan.toml",
        "[[tasks]]\nkey = \"talk\"\ntitle = \"Talk while working\"\nshell = \"echo line-one; sleep 1; echo line-two; sleep 60\"\n",
    );
    env.ok(&["plan", "apply", "plan.toml"]);
    let id = id_of(&env, "talk");
    let s = serve(&mut env, "127.0.0.1:0", Some(TOKEN));
    let run_pid = spawn(&mut env, &["run"]);
    open(&b, &s.url).await;
    open_task_when(&b, &id, "running").await;
    until(
        &b.client,
        "return (document.getElementById('output')?.textContent || '').includes('line-two')",
        "the second line of output",
    )
    .await;
    // Still running: the output came while the agent worked.
    assert_eq!(env.json(&["show", "talk"])["status"], "running");
    screenshot(&b.client, "task").await;
    stop(&mut env, run_pid, "the run after SIGTERM");
    b.client.clone().close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_pause_button_holds_back_a_run() {
    let Some(b) = browser().await else { return };
    let mut env = Env::builder().init().build();
    let mut plan = String::new();
    for i in 0..6 {
        plan.push_str(&format!(
            "[[tasks]]\nkey = \"s{i}\"\ntitle = \"Step {i}\"\nshell = \"sleep 1\"\n"
        ));
    }
    env.write("plan.toml", &plan);
    env.ok(&["plan", "apply", "plan.toml"]);
    let s = serve(&mut env, "127.0.0.1:0", Some(TOKEN));
    open(&b, &s.url).await;
    let mut run = env
        .command(&["run", "-j", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    until(
        &b.client,
        "return document.querySelector('.node.st-running') !== null",
        "a running task",
    )
    .await;
    click(&b, Locator::Id("pause")).await;
    until(
        &b.client,
        "return !document.getElementById('holds').hidden",
        "the hold",
    )
    .await;
    let status = common::exit_within(&mut run, PATIENCE, "the run after the pause");
    let mut err = String::new();
    std::io::Read::read_to_string(run.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(7), "{err}");
    assert!(err.contains("paused"), "{err}");
    let done = env
        .json(&["list"])
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["status"] == "completed")
        .count();
    assert!(done < 6, "the hold held nothing back");
    assert_eq!(env.json(&["holds"])[0]["by"], "web");
    // Unpause from the page; the next run finishes the work.
    click(&b, Locator::Id("unpause")).await;
    until(
        &b.client,
        "return document.getElementById('holds').hidden",
        "the hold released",
    )
    .await;
    env.ok(&["run", "-j", "3"]);
    b.client.clone().close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_page_misses_no_event_across_a_server_restart() {
    let Some(b) = browser().await else { return };
    let mut env = project(10);
    let s = serve(&mut env, "127.0.0.1:0", Some(TOKEN));
    open(&b, &s.url).await;
    let start = env.json(&["log", "--limit", "1"])[0]["seq"]
        .as_i64()
        .unwrap();
    // The server goes away; the work goes on.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(s.pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    until(
        &b.client,
        "return document.getElementById('conn').dataset.state === 'reconnecting'",
        "the lost connection",
    )
    .await;
    for k in ["t0", "t1", "t2"] {
        env.ok(&["done", k]);
    }
    env.ok(&["insight", "add", "learned while the page was away"]);
    // Back on the same address: the page catches up, each change once.
    let again = serve(&mut env, &s.addr, Some(TOKEN));
    assert_eq!(again.addr, s.addr);
    env.ok(&["done", "t3"]);
    let log: Vec<i64> = env
        .json(&["log", "--limit", "50"])
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .filter(|&q| q > start)
        .collect();
    assert_eq!(log.len(), 5);
    until(
        &b.client,
        &format!(
            "return document.querySelectorAll('#activity li').length >= {}",
            log.len()
        ),
        "every change",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seen = js(
        &b.client,
        "return [...document.querySelectorAll('#activity li')].map(li => Number(li.dataset.seq))",
    )
    .await;
    let mut seen: Vec<i64> = seen
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    seen.sort_unstable();
    let mut want = log.clone();
    want.sort_unstable();
    assert_eq!(seen, want, "each change exactly once");
    b.client.clone().close().await.unwrap();
}

/// A page of another origin, served without any policy: it posts to the Downbeat server with
/// the browser's cookies.
fn foreign_page() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let mut s = s;
            let mut buf = [0u8; 4096];
            let _ = std::io::Read::read(&mut s, &mut buf);
            let body = "<!doctype html><title>elsewhere</title><p>elsewhere</p>";
            let _ = std::io::Write::write_all(
                &mut s,
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
        }
    });
    format!("http://{addr}/")
}

#[tokio::test(flavor = "multi_thread")]
async fn steering_without_the_token_or_from_elsewhere_is_refused() {
    let Some(b) = browser().await else { return };
    let mut env = project(3);
    let s = serve(&mut env, "127.0.0.1:0", Some(TOKEN));
    // The page opened without its token reads, but cannot steer.
    open(&b, &format!("http://{}/", s.addr)).await;
    click(&b, Locator::Id("pause")).await;
    until(
        &b.client,
        "return document.getElementById('toast').textContent.includes('steering needs the token')",
        "the refusal",
    )
    .await;
    assert!(env.json(&["holds"]).as_array().unwrap().is_empty());
    // With the session cookie set, a page of another origin posts to the server: refused.
    open(&b, &s.url).await;
    b.client.goto(&foreign_page()).await.unwrap();
    let sent = b
        .client
        .execute_async(
            &format!(
                "const done = arguments[0];
                 fetch('http://{}/api/pause', {{method: 'POST', mode: 'no-cors', credentials: 'include',
                   headers: {{'Content-Type': 'text/plain'}}, body: '{{}}'}})
                   .then(() => done('sent'), (e) => done('error: ' + e));",
                s.addr
            ),
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(sent, json!("sent"));
    assert!(env.json(&["holds"]).as_array().unwrap().is_empty());
    // The same request from the page itself steers: the refusal was the origin's.
    open(&b, &format!("http://{}/", s.addr)).await;
    let status = b
        .client
        .execute_async(
            "const done = arguments[0];
             fetch('/api/pause', {method: 'POST', headers: {'Content-Type': 'text/plain'}, body: '{}'})
               .then((r) => done(r.status), (e) => done('error: ' + e));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(status, json!(200));
    assert_eq!(env.json(&["holds"]).as_array().unwrap().len(), 1);
    b.client.clone().close().await.unwrap();
}

/// The pictures in the README and docs/web.md: the example plan part done, one task running
/// with its output, one failed.
#[tokio::test(flavor = "multi_thread")]
async fn pictures_of_a_plan_in_progress() {
    let Some(b) = browser().await else { return };
    let mut env = Env::builder().init().build();
    env.ok(&[
        "plan",
        "apply",
        common::example("rate-limiting.toml").to_str().unwrap(),
    ]);
    env.ok(&[
        "done",
        "design",
        "--result",
        "Token bucket per client, 100 requests/minute",
    ]);
    env.ok(&[
        "decision",
        "add",
        "Use a token bucket per client",
        "--why",
        "smooth bursts",
    ]);
    env.ok(&[
        "insight",
        "add",
        "Redis is already deployed for sessions",
        "--task",
        "redis",
    ]);
    env.ok(&[
        "done",
        "redis",
        "--result",
        "Connection pool shared with sessions",
    ]);
    env.ok(&["start", "config", "--force"]);
    env.ok(&[
        "fail",
        "config",
        "--reason",
        "config schema rejects nested limits",
    ]);
    env.write(
        ".downbeat/config.toml",
        "[executors.work]\ntype = \"process\"\nshell = \"echo 'reading src/middleware/mod.rs'; echo 'writing src/middleware/rate_limit.rs'; echo 'cargo test -p api: 41 passed'; sleep 60\"\n",
    );
    let run_pid = spawn(
        &mut env,
        &["run", "--only", "middleware", "--executor", "work"],
    );
    let s = serve(&mut env, "127.0.0.1:0", Some(TOKEN));
    open(&b, &s.url).await;
    let id = id_of(&env, "middleware");
    until(
        &b.client,
        &format!(
            "return document.querySelector('.node[data-id=\"{id}\"]')?.dataset.status === 'running'"
        ),
        "the middleware running",
    )
    .await;
    click(&b, Locator::Id("fit")).await;
    screenshot(&b.client, "readme-graph").await;
    click(&b, Locator::Css(&format!(".node[data-id=\"{id}\"]"))).await;
    until(
        &b.client,
        "return (document.getElementById('output')?.textContent || '').includes('41 passed')",
        "the output",
    )
    .await;
    screenshot(&b.client, "readme-task").await;
    stop(&mut env, run_pid, "the run after SIGTERM");
    b.client.clone().close().await.unwrap();
}

/// The same with a coding agent: the Claude Code stand-in (`tests/fakes/`), whose stream-json
/// output the page shows rendered by the agent's profile while it works.
#[tokio::test(flavor = "multi_thread")]
async fn a_coding_agents_rendered_output_shows_while_it_works() {
    let Some(b) = browser().await else { return };
    let fakes = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fakes/bin");
    let mut env = Env::builder()
        .home_inside()
        .var("PATH", &format!("{}:/usr/bin:/bin", fakes.display()))
        .var("FAKE_AGENT_SCRIPT", "script.json")
        .init()
        .build();
    env.write(
        "script.json",
        &json!({"steps": [{"when": "Think it over", "sleep_ms": 60000}]}).to_string(),
    );
    env.ok(&[
        "add",
        "Think it over",
        "--key",
        "think",
        "--role",
        "architect",
    ]);
    let id = id_of(&env, "think");
    let s = serve(&mut env, "127.0.0.1:0", Some(TOKEN));
    let run_pid = spawn(&mut env, &["run", "--agent", "claude"]);
    open(&b, &s.url).await;
    open_task_when(&b, &id, "running").await;
    until(
        &b.client,
        "return /session \\S+ · model \\S+/.test(document.getElementById('output')?.textContent || '')",
        "the agent's session line",
    )
    .await;
    assert_eq!(env.json(&["show", "think"])["status"], "running");
    stop(&mut env, run_pid, "the run after SIGTERM");
    b.client.clone().close().await.unwrap();
}
