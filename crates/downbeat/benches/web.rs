//! The web view's speed, on demand: `cargo bench -p downbeat --bench web` (Chromium and
//! ChromeDriver installed). Prints figures; asserts nothing.
//!
//! 1. Page ready with a 10,000-task project: from navigation to the graph drawn (the page's
//!    own `performance.now()` when it is ready, and the wall time the driver saw).
//! 2. A 10,000-task no-op run (`run --executor noop -j 8`) with the page's server up and no
//!    event stream open, against the same run with 100 streams open, alternated
//!    (`WEB_BENCH_ROUNDS`, default 3; `WEB_BENCH_STREAMS_ONLY=1` skips the page).

#[path = "../tests/browser/mod.rs"]
mod browser;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const TOKEN: &str = "0123456789abcdef0123456789abcdef";

fn downbeat(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_downbeat"));
    c.current_dir(dir)
        .args(args)
        .env("DOWNBEAT_WEB_TOKEN", TOKEN);
    c
}

fn ok(dir: &Path, args: &[&str]) {
    let o = downbeat(dir, args).output().unwrap();
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A project of `n` tasks; task i waits on task i - `chain` (none with `chain` 0).
fn project(n: usize, chain: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    ok(dir.path(), &["init"]);
    let mut plan = String::with_capacity(n * 60);
    for i in 0..n {
        plan.push_str(&format!(
            "[[tasks]]\nkey = \"t{i}\"\ntitle = \"Task number {i}\"\n"
        ));
        if chain > 0 && i >= chain {
            plan.push_str(&format!("depends_on = [\"t{}\"]\n", i - chain));
        }
    }
    std::fs::write(dir.path().join("plan.toml"), plan).unwrap();
    ok(dir.path(), &["plan", "apply", "plan.toml"]);
    dir
}

fn serve(dir: &Path) -> (Child, String) {
    let mut child = downbeat(dir, &["serve", "--addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (child, line.trim().to_owned())
}

fn page_ready() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let Some(b) = browser::browser().await else {
            println!("page ready: skipped (no chromium/chromedriver)");
            return;
        };
        for (label, chain) in [("10,000 tasks, 200 waves of 50", 50), ("10,000 tasks, 1 wave", 0)] {
            let dir = project(10_000, chain);
            let (mut server, url) = serve(dir.path());
            for sample in 1..=3 {
                b.client.goto("about:blank").await.unwrap();
                let t0 = Instant::now();
                b.client.goto(&url).await.unwrap();
                loop {
                    let v = b.client.execute("return document.body.dataset.readyMs || null", vec![]).await.unwrap();
                    if let Some(ms) = v.as_str() {
                        let nodes = b
                            .client
                            .execute("return document.querySelectorAll('#nodes .node').length", vec![])
                            .await
                            .unwrap();
                        println!(
                            "page ready, {label}, sample {sample}: {ms} ms in the page, {} ms seen by the driver, {nodes} nodes drawn",
                            t0.elapsed().as_millis()
                        );
                        break;
                    }
                    assert!(t0.elapsed() < Duration::from_secs(60), "the page never got ready");
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            let _ = server.kill();
            let _ = server.wait();
        }
        b.client.clone().close().await.unwrap();
    });
}

/// Opens `n` event streams on `addr` and reads them until `stop`; counts the bytes read.
fn streams(
    addr: &str,
    n: usize,
    stop: Arc<AtomicBool>,
    bytes: Arc<AtomicU64>,
) -> Vec<std::thread::JoinHandle<()>> {
    (0..n)
        .map(|_| {
            let (addr, stop, bytes) = (addr.to_owned(), stop.clone(), bytes.clone());
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(&addr).unwrap();
                s.set_read_timeout(Some(Duration::from_millis(200)))
                    .unwrap();
                write!(s, "GET /api/events HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
                let mut buf = [0u8; 16 * 1024];
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(n) = s.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        bytes.fetch_add(n as u64, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect()
}

fn timed_run(n_streams: usize) -> (f64, u64) {
    let dir = project(10_000, 0);
    let (mut server, url) = serve(dir.path());
    let addr = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let stop = Arc::new(AtomicBool::new(false));
    let bytes = Arc::new(AtomicU64::new(0));
    let readers = streams(&addr, n_streams, stop.clone(), bytes.clone());
    std::thread::sleep(Duration::from_millis(300));
    let t0 = Instant::now();
    let o = downbeat(dir.path(), &["run", "--executor", "noop", "-j", "8"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    let took = t0.elapsed().as_secs_f64();
    assert!(o.success());
    // Let the streams deliver the run's last changes.
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        let _ = r.join();
    }
    let _ = server.kill();
    let _ = server.wait();
    (took, bytes.load(Ordering::Relaxed))
}

fn run_with_streams() {
    let mut without = Vec::new();
    let mut with = Vec::new();
    let rounds: u32 = std::env::var("WEB_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    for round in 1..=rounds {
        let (a, _) = timed_run(0);
        let (b, bytes) = timed_run(100);
        println!(
            "10,000-task no-op run, round {round}: {a:.2} s with no stream, {b:.2} s with 100 streams ({:.1} MB delivered to them)",
            bytes as f64 / 1e6
        );
        without.push(a);
        with.push(b);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (a, b) = (median(&mut without), median(&mut with));
    println!(
        "median: {a:.2} s without streams, {b:.2} s with 100 streams: {:+.1}%",
        (b / a - 1.0) * 100.0
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs nothing.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    if std::env::var_os("WEB_BENCH_STREAMS_ONLY").is_none() {
        page_ready();
    }
    run_with_streams();
}
