//! A PostgreSQL restart in the middle of a run: the workers notice, stop their attempts,
//! reconnect when the server is back, and every task still ends completed.
//!
//! The test starts a private PostgreSQL server (initdb in a temporary directory, a free port
//! on 127.0.0.1) so restarting it disturbs nothing else. It needs the server binaries:
//! `pg_config --bindir`, else the newest `/usr/lib/postgresql/*/bin`. Running as root, the
//! server runs as the `postgres` user (PostgreSQL refuses root).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use downbeat_store::TaskFilter;

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
        let dir = tempfile::tempdir().unwrap();
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
        let o = s
            .pg(
                "initdb",
                &[
                    "-D",
                    &s.data(),
                    "-A",
                    "trust",
                    "-U",
                    "postgres",
                    "--no-sync",
                ],
            )
            .output()
            .unwrap();
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

struct Project {
    dir: tempfile::TempDir,
    url: String,
    workers: Vec<Child>,
}

impl Drop for Project {
    fn drop(&mut self) {
        for c in &mut self.workers {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Project {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_downbeat"));
        c.current_dir(self.dir.path())
            .env("DOWNBEAT_DATABASE_URL", &self.url)
            .env_remove("DOWNBEAT_NOW")
            .args(args);
        c
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.cmd(args).output().unwrap();
        assert!(
            o.status.success(),
            "downbeat {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }

    fn write(&self, rel: &str, text: &str) {
        let p = self.dir.path().join(rel);
        let old = std::fs::read_to_string(&p).unwrap_or_default();
        std::fs::write(p, old + text).unwrap();
    }

    fn completed(&self) -> Option<u64> {
        let o = self.cmd(&["status", "--json"]).output().ok()?;
        if !o.status.success() {
            return None;
        }
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).ok()?;
        v["counts"]["completed"].as_u64()
    }
}

fn log_of(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn workers_survive_a_database_restart_and_nothing_is_lost() {
    let server = Server::start();
    let mut p = Project {
        dir: tempfile::tempdir().unwrap(),
        url: server.url(),
        workers: Vec::new(),
    };
    p.ok(&["init"]);
    p.write(
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
    p.write("plan.toml", &plan);
    p.ok(&["plan", "apply", "plan.toml"]);
    let logs: Vec<PathBuf> = (0..2)
        .map(|i| p.dir.path().join(format!("worker{i}.log")))
        .collect();
    for (i, log) in logs.iter().enumerate() {
        let child = p
            .cmd(&[
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
        p.workers.push(child);
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
        for c in &mut p.workers {
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
    let store = rt.block_on(downbeat_store::open(&p.url, false)).unwrap();
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
