//! The harness the integration tests share: a project in a temporary directory and the real
//! `downbeat` binary run in it, with a cleared environment and a fixed clock unless a test
//! asks otherwise.
//!
//! Every test binary compiles this module on its own and uses only part of it.

#![allow(dead_code)]

pub mod pg;
pub mod web;

use std::path::{Path, PathBuf};
use std::process::{Child, Output};

/// The fixed clock of the tests that set one.
pub const NOW: &str = "2026-03-01T09:00:00Z";

/// The `downbeat` binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_downbeat"))
}

/// A file of the workspace's `examples/` directory.
pub fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name)
}

/// How an [`Env`] is made: `Env::builder()`, then options, then [`EnvBuilder::build`].
#[must_use]
pub struct EnvBuilder {
    clear: bool,
    now: Option<String>,
    actor: Option<String>,
    home: bool,
    keep: Vec<String>,
    keep_prefixes: Vec<String>,
    unset: Vec<String>,
    vars: Vec<(String, String)>,
    postgres: Option<(String, String)>,
    normalise: bool,
    init: bool,
}

impl EnvBuilder {
    /// `DOWNBEAT_NOW` set to [`NOW`].
    pub fn fixed_clock(self) -> Self {
        self.clock(NOW)
    }

    /// `DOWNBEAT_NOW` set to `now`.
    pub fn clock(mut self, now: &str) -> Self {
        self.now = Some(now.into());
        self
    }

    /// `DOWNBEAT_ACTOR` set to `actor`.
    pub fn actor(mut self, actor: &str) -> Self {
        self.actor = Some(actor.into());
        self
    }

    /// The temporary directory holds `proj/` (where the binary runs) and `home/` (its HOME).
    pub fn home_inside(mut self) -> Self {
        self.home = true;
        self
    }

    /// The variable `name` passed on from the test's own environment, if set there.
    pub fn keep(mut self, name: &str) -> Self {
        self.keep.push(name.into());
        self
    }

    /// Every variable of the test's environment whose name starts with `prefix` passed on.
    pub fn keep_prefix(mut self, prefix: &str) -> Self {
        self.keep_prefixes.push(prefix.into());
        self
    }

    /// The test's whole environment passed on instead of a cleared one.
    pub fn inherit_env(mut self) -> Self {
        self.clear = false;
        self
    }

    /// The variable `name` removed (meaningful with [`EnvBuilder::inherit_env`]).
    pub fn unset(mut self, name: &str) -> Self {
        self.unset.push(name.into());
        self
    }

    /// An extra variable.
    pub fn var(mut self, name: &str, value: &str) -> Self {
        self.vars.push((name.into(), value.into()));
        self
    }

    /// `DOWNBEAT_DATABASE_URL` naming a fresh schema on the test server
    /// ([`pg::server_url`]), dropped with the `Env`; `tag` goes into the schema's name.
    pub fn postgres(self, tag: &str) -> Self {
        self.postgres_on(pg::server_url(), tag)
    }

    /// As [`EnvBuilder::postgres`], on the server at `base`.
    pub fn postgres_on(mut self, base: String, tag: &str) -> Self {
        self.postgres = Some((base, tag.into()));
        self
    }

    /// The temporary directory's path replaced by `[TMP]` in what `ok` and `fails` return.
    pub fn tmp_placeholder(mut self) -> Self {
        self.normalise = true;
        self
    }

    /// `downbeat init` run once the `Env` is made.
    pub fn init(mut self) -> Self {
        self.init = true;
        self
    }

    pub fn build(self) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        let (cwd, home) = if self.home {
            let (proj, home) = (root.join("proj"), root.join("home"));
            std::fs::create_dir_all(&proj).unwrap();
            std::fs::create_dir_all(&home).unwrap();
            (proj, Some(home))
        } else {
            (root.clone(), None)
        };
        let schema = self.postgres.map(|(base, tag)| pg::Schema::on(base, &tag));
        let mut vars = Vec::new();
        if let Some(home) = &home {
            vars.push(("HOME".to_owned(), home.display().to_string()));
        }
        if let Some(s) = &schema {
            vars.push(("DOWNBEAT_DATABASE_URL".to_owned(), s.url.clone()));
        }
        if let Some(actor) = self.actor {
            vars.push(("DOWNBEAT_ACTOR".to_owned(), actor));
        }
        vars.extend(self.vars);
        let e = Env {
            children: Vec::new(),
            schema,
            dir,
            root,
            cwd,
            home,
            clear: self.clear,
            now: self.now,
            keep: self.keep,
            keep_prefixes: self.keep_prefixes,
            unset: self.unset,
            vars,
            normalise: self.normalise,
        };
        if self.init {
            e.ok(&["init"]);
        }
        e
    }
}

/// A project directory and the way the binary runs in it. Dropping it kills the processes it
/// adopted, then drops its PostgreSQL schema, then removes the directory.
pub struct Env {
    /// Processes killed and reaped when the `Env` is dropped.
    pub children: Vec<Child>,
    schema: Option<pg::Schema>,
    dir: tempfile::TempDir,
    root: PathBuf,
    cwd: PathBuf,
    home: Option<PathBuf>,
    clear: bool,
    now: Option<String>,
    keep: Vec<String>,
    keep_prefixes: Vec<String>,
    unset: Vec<String>,
    vars: Vec<(String, String)>,
    normalise: bool,
}

impl Drop for Env {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Env {
    /// A cleared environment and nothing else: options follow.
    pub fn builder() -> EnvBuilder {
        EnvBuilder {
            clear: true,
            now: None,
            actor: None,
            home: false,
            keep: Vec::new(),
            keep_prefixes: Vec::new(),
            unset: Vec::new(),
            vars: Vec::new(),
            postgres: None,
            normalise: false,
            init: false,
        }
    }

    /// The temporary directory (canonical).
    pub fn tmp(&self) -> &Path {
        &self.root
    }

    /// Where the binary runs: the temporary directory, or its `proj/` with
    /// [`EnvBuilder::home_inside`].
    pub fn path(&self) -> &Path {
        &self.cwd
    }

    /// HOME, with [`EnvBuilder::home_inside`].
    pub fn home(&self) -> &Path {
        self.home.as_deref().expect("an Env built with home_inside")
    }

    /// The database URL, with [`EnvBuilder::postgres`].
    pub fn url(&self) -> &str {
        &self.schema().url
    }

    pub fn schema(&self) -> &pg::Schema {
        self.schema.as_ref().expect("an Env built with postgres")
    }

    /// Moves the fixed clock.
    pub fn set_clock(&mut self, now: &str) {
        self.now = Some(now.into());
    }

    /// The binary with `args`, ready to run, as a standard command.
    pub fn command(&self, args: &[&str]) -> std::process::Command {
        let mut c = std::process::Command::new(bin());
        c.current_dir(&self.cwd);
        if self.clear {
            c.env_clear();
        }
        for name in &self.keep {
            if let Some(v) = std::env::var_os(name) {
                c.env(name, v);
            }
        }
        for prefix in &self.keep_prefixes {
            c.envs(
                std::env::vars_os()
                    .filter(|(k, _)| k.to_str().is_some_and(|k| k.starts_with(prefix.as_str()))),
            );
        }
        // Colour only where a test asks for it (a CI terminal may force it on).
        c.env_remove("CLICOLOR_FORCE");
        for name in &self.unset {
            c.env_remove(name);
        }
        if let Some(now) = &self.now {
            c.env("DOWNBEAT_NOW", now);
        }
        c.envs(self.vars.iter().map(|(k, v)| (k, v)));
        c.args(args);
        c
    }

    /// The binary with `args`, ready to run.
    pub fn cmd(&self, args: &[&str]) -> assert_cmd::Command {
        assert_cmd::Command::from_std(self.command(args))
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// Runs, expects success, returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "downbeat {args:?} failed ({:?}):\n{}",
            o.status.code(),
            String::from_utf8_lossy(&o.stderr)
        );
        self.norm(&String::from_utf8(o.stdout).unwrap())
    }

    /// Runs, expects exit `code` and no panic, returns stderr.
    pub fn fails(&self, args: &[&str], code: i32) -> String {
        let o = self.run(args);
        let err = String::from_utf8(o.stderr).unwrap();
        assert_eq!(
            o.status.code(),
            Some(code),
            "downbeat {args:?}: stderr:\n{err}"
        );
        assert!(!err.contains("panicked"), "{err}");
        self.norm(&err)
    }

    /// `ok` with `--json`, parsed.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = args.to_vec();
        a.push("--json");
        serde_json::from_str(&self.ok(&a)).unwrap()
    }

    /// `s` with the temporary directory replaced by `[TMP]`, with
    /// [`EnvBuilder::tmp_placeholder`]; else `s` as it is.
    pub fn norm(&self, s: &str) -> String {
        if self.normalise {
            s.replace(&self.root.display().to_string(), "[TMP]")
        } else {
            s.to_owned()
        }
    }

    /// A file's text, normalised.
    pub fn read(&self, p: &Path) -> String {
        self.norm(&std::fs::read_to_string(self.cwd.join(p)).unwrap())
    }

    /// Writes `text` to `p` (relative to [`Env::path`], or absolute), making its directory;
    /// returns the path.
    pub fn write(&self, p: impl AsRef<Path>, text: &str) -> PathBuf {
        let p = self.cwd.join(p);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }

    /// Appends `text` to `p` (relative to [`Env::path`], or absolute).
    pub fn append(&self, p: impl AsRef<Path>, text: &str) {
        let p = self.cwd.join(p);
        let old = std::fs::read_to_string(&p).unwrap_or_default();
        std::fs::write(p, old + text).unwrap();
    }

    /// `child` is killed and reaped when the `Env` is dropped.
    pub fn adopt(&mut self, child: Child) -> u32 {
        let pid = child.id();
        self.children.push(child);
        pid
    }
}

impl Env {
    /// The titles `downbeat list` shows.
    pub fn titles(&self) -> Vec<String> {
        self.json(&["list"])
            .as_array()
            .expect("a list")
            .iter()
            .map(|t| t["title"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

/// Waits for `child` to end, failing the test with `what` if it takes longer than `limit`
/// (the child is killed first).
pub fn exit_within(
    child: &mut Child,
    limit: std::time::Duration,
    what: &str,
) -> std::process::ExitStatus {
    let start = std::time::Instant::now();
    loop {
        if let Some(s) = child.try_wait().expect("wait for the child") {
            return s;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("{what} (still running after {limit:?})");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
