//! Finding the project, reading its configuration and roles, and opening its store.
//!
//! Precedence: built-in defaults < `.downbeat/config.toml` < what the front end passes in
//! [`Globals`] (its environment and options). This module never reads the environment.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use downbeat_core::context::Actor;
use downbeat_core::graph::{NamedGroup, PlanSettings};
use downbeat_core::role::RoleSet;
use downbeat_core::time::{Millis, Timestamp};
use downbeat_store::Store;
use serde::Deserialize;

use crate::error::{Error, Kind};

pub const DIR: &str = ".downbeat";
pub const DB_FILE: &str = "downbeat.db";
pub const CONFIG_FILE: &str = "config.toml";

/// `.downbeat/config.toml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub planner: PlannerConfig,
    /// Per-role settings (override the role files' caps and thresholds).
    #[serde(default)]
    pub roles: BTreeMap<String, RoleConfig>,
    /// Named concurrency groups: roles that share one cap.
    #[serde(default)]
    pub groups: BTreeMap<String, GroupConfig>,
    #[serde(default)]
    pub maintain: MaintainConfig,
    /// How `downbeat run` executes tasks.
    #[serde(default)]
    pub run: downbeat_engine::config::RunConfig,
    /// Named executors, referred to by tasks, roles and `[run] executor`.
    #[serde(default)]
    pub executors: downbeat_engine::config::Executors,
    /// What flags raised by agents trigger.
    #[serde(default)]
    pub rules: Vec<downbeat_engine::config::FlagRule>,
    /// The flag rules' loop guard.
    #[serde(default)]
    pub flags: FlagsConfig,
    /// The project's memory files (`CLAUDE.md`, `AGENTS.md`).
    #[serde(default)]
    pub memory: MemoryConfig,
    /// The MCP server (`downbeat mcp`).
    #[serde(default)]
    pub mcp: McpConfig,
    /// MCP servers handed to every agent CLI that takes them (besides Downbeat's own).
    #[serde(default)]
    pub mcp_servers: BTreeMap<String, downbeat_engine::executor::agent::McpServer>,
    /// Each coding agent in its own git worktree, their work merged in dependency order.
    #[serde(default)]
    pub worktrees: downbeat_engine::worktree::WorktreeConfig,
}

/// `[mcp]`: defaults of `downbeat mcp`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpConfig {
    /// Tool profile: `default` (a few operation-style tools) or `full` (finer tools too).
    pub profile: Option<String>,
    /// How long a claim made through MCP holds its task without a heartbeat (default `5m`).
    pub lease: Option<String>,
    /// Streamable HTTP: sessions open at once, at most (default 256); more are refused.
    pub max_sessions: Option<usize>,
    /// Streamable HTTP: a session idle this long is closed (default `5m`).
    pub session_idle: Option<String>,
}

/// `[flags]`: how far flag follow-ups may lead.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlagsConfig {
    /// A follow-up of a follow-up of … this many deep adds no further one (default 3).
    pub max_depth: Option<u32>,
}

impl FlagsConfig {
    pub fn max_depth(&self) -> u32 {
        self.max_depth
            .unwrap_or(downbeat_core::flags::DEFAULT_MAX_DEPTH)
    }
}

/// `[memory]`: the memory files prompts carry and `downbeat memory sync` writes.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryConfig {
    /// Files at the project root (default `CLAUDE.md` and `AGENTS.md`).
    pub files: Option<Vec<String>>,
    /// Sync the memory files when a run ends (default false).
    #[serde(default)]
    pub sync_on_run: bool,
}

/// The memory files when `[memory] files` names none.
pub const MEMORY_FILES: [&str; 2] = ["CLAUDE.md", "AGENTS.md"];

impl MemoryConfig {
    /// The memory files' names, checked: plain relative paths inside the project.
    pub fn names(&self) -> Result<Vec<String>, Error> {
        let names = match &self.files {
            Some(f) => f.clone(),
            None => MEMORY_FILES.iter().map(|s| (*s).to_owned()).collect(),
        };
        for n in &names {
            let p = Path::new(n);
            let plain = !n.is_empty()
                && p.components()
                    .all(|c| matches!(c, std::path::Component::Normal(_)));
            if !plain {
                return Err(Error::invalid(format!(
                    "{DIR}/{CONFIG_FILE}: [memory] files: `{n}` is not a path inside the project"
                )));
            }
        }
        Ok(names)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlannerConfig {
    /// Worker counts for the makespan estimate.
    #[serde(default = "default_workers")]
    pub workers: Vec<u32>,
}

impl Default for PlannerConfig {
    fn default() -> Self {
        Self {
            workers: default_workers(),
        }
    }
}

fn default_workers() -> Vec<u32> {
    vec![1, 2, 4, 8]
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleConfig {
    pub max_parallel: Option<u32>,
    pub stale_after: Option<String>,
    /// Executor for tasks of this role that name none.
    pub executor: Option<String>,
    /// Per-attempt timeout for tasks of this role (`30m`).
    pub timeout: Option<String>,
    /// Attempts in all for tasks of this role.
    pub max_attempts: Option<u32>,
    /// What agent CLIs may do for tasks of this role (`read`, `edit`, `full`); by default
    /// reviewers and researchers read, everyone else edits.
    pub permission: Option<downbeat_engine::executor::agent::Permission>,
    /// Whether tasks of this role work in their own git worktree (default: coding agents do,
    /// plain commands do not; see `[worktrees] mode`).
    pub worktree: Option<bool>,
}

/// `[groups.NAME]`: at most `max_parallel` tasks of these roles at once, together.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupConfig {
    pub max_parallel: u32,
    pub roles: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaintainConfig {
    /// A running or blocked task with no activity for this long is stale (per-role overrides
    /// in `[roles.NAME]`).
    #[serde(default = "default_stale")]
    pub stale_after: String,
    /// Completed work finished longer ago than this is archived.
    #[serde(default = "default_archive")]
    pub archive_after: String,
    /// How often `worker`, `serve` and `mcp --http` run maintenance on their own (one of
    /// them per period when several share a database); unset or `0s`: never.
    #[serde(default)]
    pub every: Option<String>,
    /// What those scheduled rounds may do: `requeue`, `archive`, `repair`, `worktrees`,
    /// `optimize`. Anything else is only reported.
    #[serde(default = "default_apply")]
    pub apply: Vec<String>,
}

impl Default for MaintainConfig {
    fn default() -> Self {
        Self {
            stale_after: default_stale(),
            archive_after: default_archive(),
            every: None,
            apply: default_apply(),
        }
    }
}

fn default_apply() -> Vec<String> {
    vec!["requeue".into()]
}

fn default_stale() -> String {
    "24h".into()
}
fn default_archive() -> String {
    "30d".into()
}

pub const DEFAULT_CONFIG: &str = r#"# Downbeat project configuration. Every key is optional.

[planner]
# Worker counts for which `downbeat waves` estimates the makespan.
workers = [1, 2, 4, 8]

[maintain]
# Running or blocked tasks without activity for this long are stale.
stale_after = "24h"
# Completed work finished longer ago than this is archived by `downbeat maintain --apply`.
archive_after = "30d"
# Run maintenance on a schedule in `downbeat worker`, `serve` and `mcp --http` (off
# unless set; one process per period when several share the database), doing only what
# `apply` allows (requeue, archive, repair, worktrees, optimize):
# every = "1h"
# apply = ["requeue"]

# Named concurrency groups: roles that share one cap (a role is in one group at
# most, and then has no max_parallel of its own):
# [groups.heavy]
# max_parallel = 2
# roles = ["implementer", "tester"]

# Per-role settings:
# [roles.tester]
# max_parallel = 2      # at most 2 testers per wave / at once
# stale_after = "48h"
# executor = "tests"    # a named executor (below)
# timeout = "10m"
# max_attempts = 3
# permission = "edit"   # what agent CLIs may do: read | edit | full (reviewers, researchers: read)
# worktree = true       # this role's tasks work in their own git worktree

[run]
# executor = "claude"   # default executor: an agent CLI (claude, codex, gemini, aider,
#                       # opencode; `downbeat agents` lists them), noop, or a name below
# concurrency = 4
# lease = "30s"
# failure = "continue"  # continue | skip-dependents | stop
# [run.retry]
# max_attempts = 1
# backoff = "exponential"   # or "fixed"
# delay = "2s"
# max_delay = "1m"
# jitter = true

# In a git repository, coding agents work in worktrees of their own and their work is
# merged into an integration branch in dependency order (docs/worktrees.md):
# [worktrees]
# mode = "auto"         # auto (coding agents) | always | off
# branch = "downbeat/integration"
# conflict = "retry"    # retry | fail | resolve (adds a task for the `resolver` role)
# resolver = "debugger"
# remote = "origin"     # workers on several machines, each in its own clone

# Named executors (docs/executors.md; agent CLIs: docs/agents.md):
# [executors.claude]
# type = "agent"
# agent = "claude"      # claude | codex | gemini | aider | opencode
# model = "sonnet"
# args = ["--max-turns", "30"]
# [executors.tests]
# type = "process"
# shell = "cargo test"

# MCP servers every agent CLI gets, besides Downbeat's own:
# [mcp_servers.docs]
# command = "docs-mcp"
# args = ["--root", "docs"]

# The MCP server (`downbeat mcp`, see docs/mcp.md):
# [mcp]
# profile = "default"   # or "full": finer tools as well
# lease = "5m"          # a claim without a heartbeat for this long goes back to pending

# Memory files: every agent prompt carries them (Downbeat's own section left out), and
# `downbeat memory sync` writes that section into them (docs/memory.md):
# [memory]
# files = ["CLAUDE.md", "AGENTS.md"]
# sync_on_run = true    # sync them when a run ends

# Flag rules: what a flag an agent reports (`NAME` or `NAME: what it found`) triggers.
# Edit them here or with `downbeat rules add|rm` (docs/executors.md, "Flag rules").
# action = add-task (role, title, pause) | raise-priority (priority) | pause | stop
# A follow-up that raises its own flag again adds nothing more, and follow-ups of
# follow-ups stop at a depth:
# [flags]
# max_depth = 3

# A security breach: a security specialist responds, and nothing else starts until then.
[[rules]]
flag = "SECURITY_BREACH"
action = "add-task"
role = "security"
title = "Respond to the security issue found in {{ task.title }}"
pause = true

# A question for the database: a follow-up for the database specialist.
[[rules]]
flag = "DATABASE_INVESTIGATION"
action = "add-task"
role = "database"
title = "Investigate the database issue found in {{ task.title }}"

# A performance issue: the work waiting on the flagging task goes first.
[[rules]]
flag = "PERFORMANCE_ISSUE"
action = "raise-priority"
priority = "high"
"#;

/// Where the project is and who acts in it, as the front end resolved it (from its options
/// and the environment: this layer reads neither).
#[derive(Debug, Clone, Default)]
pub struct Globals {
    /// A database URL given explicitly (`--db` or `DOWNBEAT_DATABASE_URL`).
    pub db: Option<String>,
    /// The project directory given explicitly (`--project`); relative to `cwd`.
    pub project: Option<PathBuf>,
    /// Who acts, as the event log records it.
    pub actor: String,
    /// A fixed clock (reproducible output), or the wall clock when `None`.
    pub fixed_now: Option<Timestamp>,
    /// The directory the project is looked for from (upwards).
    pub cwd: PathBuf,
    /// Where secrets named by the configuration (an HTTP executor's `api_key_env`) are read.
    pub secrets: Secrets,
    /// Facts about this machine that runs need.
    pub host: HostFacts,
}

/// What the front end knows of the machine it runs on.
#[derive(Debug, Clone, Default)]
pub struct HostFacts {
    /// This program, for the MCP server handed to agents (`None`: agents get none of ours).
    pub exe: Option<PathBuf>,
    /// The program search path (`PATH`), to find a process executor's program before a run.
    pub search_path: Option<std::ffi::OsString>,
}

/// A lookup of secrets by name.
type Lookup = dyn Fn(&str) -> Option<std::ffi::OsString> + Send + Sync;

/// Reads a secret by the name the configuration gives it (an environment variable, for the
/// CLI). Never printed: its `Debug` says only whether it is set.
#[derive(Clone, Default)]
pub struct Secrets(Option<std::sync::Arc<Lookup>>, std::sync::Arc<Vec<String>>);

impl Secrets {
    pub fn new(
        lookup: impl Fn(&str) -> Option<std::ffi::OsString> + Send + Sync + 'static,
    ) -> Self {
        Self(Some(std::sync::Arc::new(lookup)), Default::default())
    }

    /// With `values`: the secrets the front end knows of (API keys and tokens in its
    /// environment), masked in what agents leave behind.
    pub fn with_known(self, values: Vec<String>) -> Self {
        Self(self.0, std::sync::Arc::new(values))
    }

    /// The secret named `name`, if it is set.
    pub fn get(&self, name: &str) -> Option<std::ffi::OsString> {
        self.0.as_ref().and_then(|f| f(name))
    }

    /// The secrets the front end knows of.
    pub fn known(&self) -> &[String] {
        &self.1
    }
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Secrets(..)"
        } else {
            "Secrets(none)"
        })
    }
}

/// An opened project: where it is, its settings and its store.
pub struct Project {
    pub root: PathBuf,
    pub config: Config,
    pub roles: RoleSet,
    pub store: std::sync::Arc<dyn Store>,
    pub actor_name: String,
    pub fixed_now: Option<Timestamp>,
    /// Where secrets named by the configuration are read.
    pub secrets: Secrets,
    pub host: HostFacts,
    /// The database URL given explicitly (`--db`, `DOWNBEAT_DATABASE_URL`), if any.
    pub db_url: Option<String>,
    /// The task this front end acts for (an agent's own MCP server): what it records is about
    /// that task, and it claims no other work.
    pub acting_for: Option<downbeat_core::ids::TaskId>,
}

impl Project {
    /// Who acts, and when: the clock is read here (or fixed by `DOWNBEAT_NOW`).
    pub async fn actor(&self) -> Result<Actor, Error> {
        let mut a = Actor::new(self.actor_name.clone(), self.now());
        a.session = self.store.current_session().await?.map(|s| s.id);
        Ok(a)
    }

    pub fn now(&self) -> Timestamp {
        self.fixed_now.unwrap_or_else(now)
    }

    pub fn plan_settings(&self) -> PlanSettings {
        let mut caps: Vec<(String, u32)> = self
            .roles
            .iter()
            .filter_map(|r| r.max_parallel.map(|c| (r.name.clone(), c)))
            .collect();
        caps.sort();
        PlanSettings {
            role_caps: caps,
            groups: self.named_groups(),
            workers: self.config.planner.workers.clone(),
        }
    }

    /// The `[groups.NAME]` sections, in name order.
    pub fn named_groups(&self) -> Vec<NamedGroup> {
        self.config
            .groups
            .iter()
            .map(|(name, g)| NamedGroup {
                name: name.clone(),
                max_parallel: g.max_parallel,
                roles: g.roles.clone(),
            })
            .collect()
    }

    pub fn dir(&self) -> PathBuf {
        self.root.join(DIR)
    }

    /// The same project and store, for another use case that takes a project of its own (a
    /// background run started by a server).
    pub fn duplicate(&self) -> Project {
        Project {
            root: self.root.clone(),
            config: self.config.clone(),
            roles: self.roles.clone(),
            store: self.store.clone(),
            actor_name: self.actor_name.clone(),
            fixed_now: self.fixed_now,
            secrets: self.secrets.clone(),
            host: self.host.clone(),
            db_url: self.db_url.clone(),
            acting_for: self.acting_for,
        }
    }
}

/// The wall clock.
pub fn now() -> Timestamp {
    Timestamp(jiff::Timestamp::now().as_millisecond())
}

/// The directory the project lives in: `--project`, else the nearest ancestor of the working
/// directory holding `.downbeat/`.
pub fn find_root(g: &Globals) -> Result<PathBuf, Error> {
    let cwd = &g.cwd;
    if let Some(p) = &g.project {
        let p = if p.is_absolute() {
            p.clone()
        } else {
            cwd.join(p)
        };
        return Ok(p);
    }
    let mut cur: Option<&Path> = Some(cwd);
    while let Some(dir) = cur {
        if dir.join(DIR).is_dir() {
            return Ok(dir.to_owned());
        }
        cur = dir.parent();
    }
    Err(Error::not_found(format!(
        "no downbeat project in {} or any parent directory",
        cwd.display()
    ))
    .with_hint(
        "run `downbeat init` at the root of your project, or pass --db / set DOWNBEAT_DATABASE_URL",
    ))
}

fn db_url(g: &Globals, root: &Path) -> String {
    g.db.clone()
        .unwrap_or_else(|| format!("sqlite:{}", root.join(DIR).join(DB_FILE).display()))
}

pub fn load_config(root: &Path) -> Result<Config, Error> {
    let path = root.join(DIR).join(CONFIG_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => toml::from_str(&text).map_err(|e| {
            Error::invalid(format!("{}: {}", path.display(), e.to_string().trim_end()))
                .with_hint(
                    "fix the key shown; docs/configuration.md describes every key (`downbeat init` in an empty directory writes a commented default)",
                )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
        Err(e) => Err(Error::new(
            Kind::Storage,
            format!("cannot read {}: {e}", path.display()),
        )),
    }
}

/// Built-in roles, then `.downbeat/roles/*.toml`, then `[roles.*]` from the config.
pub fn load_roles(root: &Path, config: &Config) -> Result<RoleSet, Error> {
    let mut roles = RoleSet::builtin();
    let dir = root.join(DIR).join("roles");
    if let Ok(entries) = std::fs::read_dir(&dir) {
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        for f in files {
            let name = f
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_owned();
            let text = std::fs::read_to_string(&f)?;
            let shown = format!("{DIR}/roles/{name}.toml");
            roles
                .merge_toml(&name, &shown, &text)
                .map_err(|e| Error::invalid(e.to_string()))?;
        }
    }
    for (name, rc) in &config.roles {
        if !roles.contains(name) {
            return Err(Error::invalid(format!(
                "{DIR}/{CONFIG_FILE}: [roles.{name}] names an unknown role (known: {})",
                roles.names().join(", ")
            )));
        }
        let file = downbeat_core::role::RoleFile {
            max_parallel: rc.max_parallel,
            stale_after: rc.stale_after.clone(),
            ..Default::default()
        };
        let source = roles
            .get(name)
            .map(|r| r.source.clone())
            .unwrap_or_default();
        roles
            .merge(name, &source, file)
            .map_err(|e| Error::invalid(e.to_string()))?;
    }
    for r in roles.iter() {
        if let Some(s) = &r.stale_after {
            Millis::parse(s)
                .map_err(|e| Error::invalid(format!("role `{}`: stale_after: {e}", r.name)))?;
        }
    }
    Ok(roles)
}

/// The project's root and the URL of its database: `--db` (then the root may be missing, and
/// is the working directory), else `.downbeat/downbeat.db` under the root.
fn locate(g: &Globals) -> Result<(PathBuf, String), Error> {
    let root = match find_root(g) {
        Ok(r) => r,
        Err(_) if g.db.is_some() => g.cwd.clone(),
        Err(e) => return Err(e),
    };
    let url = db_url(g, &root);
    Ok((root, url))
}

/// The URL of the project's database, as [`open`] finds it (for operations on the whole
/// database: export, import).
pub fn database_url(g: &Globals) -> Result<String, Error> {
    locate(g).map(|(_, url)| url)
}

/// Opens an existing project.
pub async fn open(g: &Globals) -> Result<Project, Error> {
    let (root, url) = locate(g)?;
    let store = downbeat_store::open(&url, false).await.map_err(|e| {
        let missing = matches!(&e, downbeat_store::Error::Open { message, .. } if message.starts_with("no database there"));
        let err = Error::from(e);
        if missing {
            err.with_kind(Kind::NotFound).with_hint("run `downbeat init` to create the project database")
        } else {
            err
        }
    })?;
    assemble(g, root, store)
}

/// The project's settings around an opened store.
fn assemble(g: &Globals, root: PathBuf, store: Box<dyn Store>) -> Result<Project, Error> {
    let store: std::sync::Arc<dyn Store> = std::sync::Arc::from(store);
    let config = load_config(&root)?;
    let roles = load_roles(&root, &config)?;
    let p = Project {
        root,
        config,
        roles,
        store,
        actor_name: g.actor.clone(),
        fixed_now: g.fixed_now,
        secrets: g.secrets.clone(),
        host: g.host.clone(),
        db_url: g.db.clone(),
        acting_for: None,
    };
    check_groups(&p)?;
    crate::rule_check::check_all(&p.roles, &p.config.rules, &format!("{DIR}/{CONFIG_FILE}"))?;
    Ok(p)
}

/// Named groups must list known roles, and a role is capped in one place only.
fn check_groups(p: &Project) -> Result<(), Error> {
    for (name, g) in &p.config.groups {
        if let Some(unknown) = g.roles.iter().find(|r| !p.roles.contains(r)) {
            return Err(Error::invalid(format!(
                "{DIR}/{CONFIG_FILE}: [groups.{name}] names an unknown role `{unknown}` (known: {})",
                p.roles.names().join(", ")
            )));
        }
    }
    let settings = p.plan_settings();
    downbeat_core::graph::check_groups(&settings.role_caps, &settings.groups)
        .map_err(|e| Error::invalid(format!("{DIR}/{CONFIG_FILE}: {e}")))
}

/// Creates `.downbeat/` (config and database) in the project root; idempotent.
pub async fn init(g: &Globals) -> Result<(Project, bool), Error> {
    let root = match &g.project {
        Some(p) if p.is_absolute() => p.clone(),
        Some(p) => g.cwd.join(p),
        None => g.cwd.clone(),
    };
    let dir = root.join(DIR);
    let url = db_url(g, &root);
    downbeat_store::check_supported(&url)?;
    let is_file = !(url.starts_with("postgres://") || url.starts_with("postgresql://"));
    let fresh = !dir.join(DB_FILE).exists();
    std::fs::create_dir_all(dir.join("roles")).map_err(|e| {
        Error::new(
            Kind::Storage,
            format!("cannot create {}: {e}", dir.display()),
        )
        .with_hint("downbeat needs write access to the project directory")
    })?;
    let cfg = dir.join(CONFIG_FILE);
    if !cfg.exists() {
        std::fs::write(&cfg, DEFAULT_CONFIG).map_err(|e| {
            Error::new(
                Kind::Storage,
                format!("cannot write {}: {e}", cfg.display()),
            )
        })?;
    }
    let gi = dir.join(".gitignore");
    if !gi.exists() {
        // What runs leave behind stays out of the repository; config and roles stay in.
        let _ = std::fs::write(
            &gi,
            "downbeat.db*\nruns/\nreports/\nartifacts/\nworktrees/\n",
        );
    }
    let store = downbeat_store::open(&url, true).await?;
    // A server database has no file to look for: it is new if nothing was ever logged.
    let fresh = if is_file {
        fresh
    } else {
        store.last_event_seq().await? == 0
    };
    Ok((assemble(g, root, store)?, fresh))
}
