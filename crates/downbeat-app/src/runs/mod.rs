//! Runs of the execution engine as front ends start them: executors resolved from the
//! configuration (task > role > project), the engine's options, background runs, and the
//! integration reports written while a run goes.

pub mod background;
pub mod follow;
pub mod merge_lock;
pub mod preflight;
pub mod reports;
pub mod worker;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use downbeat_core::ids::TaskId;
use downbeat_core::task::Task;
use downbeat_engine::config::{RetryPolicy, parse_duration};
use downbeat_engine::executor::agent::{
    Agent, AgentKind, AgentRecord, AgentSpec, McpServer, OWN_SERVER, Permission, read_record,
};
use downbeat_engine::executor::noop::Noop;
use downbeat_engine::executor::process::Process;
use downbeat_engine::executor::{Executor, ExecutorSpec};
use downbeat_engine::run::{Resolved, RunEvent, RunOptions, RunSummary, default_holder};
use downbeat_engine::worktree::{WorktreeError, WorktreeMode, Worktrees};
use tokio::sync::mpsc;

use crate::error::{Error, Kind};
use crate::project::Project;

/// Resolves executors the way the configuration says, caching one executor per spec.
pub fn resolver(
    p: &Project,
    override_name: Option<String>,
) -> Result<downbeat_engine::run::ResolveFn, Error> {
    let cfg = p.config.clone();
    let secrets = p.secrets.clone();
    let permissions: BTreeMap<String, Permission> = cfg
        .roles
        .iter()
        .filter_map(|(r, c)| c.permission.map(|x| (r.clone(), x)))
        .collect();
    let servers = agent_servers(p);
    let cache: Arc<Mutex<HashMap<String, Arc<dyn Executor>>>> = Arc::default();
    let default_timeout = cfg
        .run
        .timeout
        .as_deref()
        .map(parse_duration)
        .transpose()
        .map_err(|e| Error::invalid(format!("[run] timeout: {e}")))?;
    for (name, r) in &cfg.roles {
        if let Some(t) = &r.timeout {
            parse_duration(t)
                .map_err(|e| Error::invalid(format!("[roles.{name}] timeout: {e}")))?;
        }
    }
    cfg.run
        .retry
        .delay_for(1, 0)
        .map_err(|e| Error::invalid(format!("[run.retry]: {e}")))?;
    Ok(Arc::new(move |t: &Task| {
        let role_cfg = t.role.as_ref().and_then(|r| cfg.roles.get(r));
        let name = override_name
            .clone()
            .or_else(|| t.exec.executor.clone())
            .or_else(|| role_cfg.and_then(|r| r.executor.clone()))
            .or_else(|| cfg.run.executor.clone())
            .ok_or_else(|| {
                "no executor: set one on the task (--executor), for its role ([roles.NAME] executor), or for the project ([run] executor), or pass `downbeat run --executor NAME`".to_owned()
            })?;
        let spec = spec_named(&cfg.executors, &name)?;
        let key = serde_json::to_string(&spec).unwrap_or_default();
        let executor: Arc<dyn Executor> = {
            let mut c = cache
                .lock()
                .map_err(|_| "executor cache poisoned".to_owned())?;
            match c.get(&key) {
                Some(e) => e.clone(),
                None => {
                    let e = build_executor(&spec, &name, &permissions, &servers, &secrets)?;
                    c.insert(key, e.clone());
                    e
                }
            }
        };
        let timeout = match role_cfg.and_then(|r| r.timeout.as_deref()) {
            Some(t) => Some(parse_duration(t)?),
            None => default_timeout,
        };
        let mut retry: RetryPolicy = cfg.run.retry.clone();
        if let Some(m) = role_cfg.and_then(|r| r.max_attempts) {
            retry.max_attempts = m;
        }
        let display = if name.trim_start().starts_with('{') {
            "inline".to_owned()
        } else {
            name
        };
        let worktree = role_cfg
            .and_then(|r| r.worktree)
            .unwrap_or(match cfg.worktrees.mode {
                WorktreeMode::Always => true,
                WorktreeMode::Auto => matches!(spec, ExecutorSpec::Agent(_)),
                WorktreeMode::Off => false,
            });
        Ok(Resolved {
            worktree,
            name: display,
            needs_prompt: !matches!(spec, ExecutorSpec::Noop),
            executor,
            timeout,
            retry,
        })
    }))
}

/// What an executor's name stands for: an inline JSON spec, `noop`, an executor of the
/// configuration, or a built-in agent profile. Errors are sentences naming what is known.
pub(crate) fn spec_named(
    executors: &downbeat_engine::config::Executors,
    name: &str,
) -> Result<ExecutorSpec, String> {
    if name.trim_start().starts_with('{') {
        return serde_json::from_str(name)
            .map_err(|e| format!("invalid inline executor {name}: {e}"));
    }
    if name == "noop" {
        return Ok(ExecutorSpec::Noop);
    }
    if let Some(spec) = executors.get(name) {
        return Ok(spec.clone());
    }
    if AgentKind::parse(name).is_some() {
        return Ok(ExecutorSpec::Agent(AgentSpec {
            agent: name.to_owned(),
            ..Default::default()
        }));
    }
    let known: Vec<&str> = executors.keys().map(String::as_str).collect();
    Err(format!(
        "unknown executor `{name}` (configured: {}; built in: noop, claude, codex, gemini, aider, opencode)",
        if known.is_empty() {
            "none".to_owned()
        } else {
            known.join(", ")
        }
    ))
}

/// Builds the executor a spec describes (`name` names it in errors); an HTTP executor's API key
/// is looked up in `secrets`.
pub(crate) fn build_executor(
    spec: &ExecutorSpec,
    name: &str,
    permissions: &BTreeMap<String, Permission>,
    servers: &BTreeMap<String, McpServer>,
    secrets: &crate::project::Secrets,
) -> Result<Arc<dyn Executor>, String> {
    Ok(match spec {
        ExecutorSpec::Noop => Arc::new(Noop),
        ExecutorSpec::Process(ps) => {
            Arc::new(Process::new(ps.clone()).map_err(|e| format!("executor `{name}`: {e}"))?)
        }
        ExecutorSpec::Agent(a) => Arc::new(
            Agent::new(a.clone(), permissions.clone(), servers.clone())
                .map_err(|e| format!("executor `{name}`: {e}"))?,
        ),
        ExecutorSpec::Http(hs) => Arc::new(
            hs.api_key(|var| secrets.get(var))
                .and_then(|key| downbeat_engine::executor::http::Http::new(hs.clone(), key))
                .map_err(|e| format!("executor `{name}`: {e}"))?,
        ),
    })
}

/// The MCP servers handed to agent CLIs: the project's `[mcp_servers]`, and Downbeat's own
/// (this program's `mcp` for this project) unless the configuration names another by that name.
pub fn agent_servers(p: &Project) -> BTreeMap<String, McpServer> {
    let mut servers = p.config.mcp_servers.clone();
    // A database reached with a password is not handed to agents: the server would need it.
    let url = p.db_url.as_deref();
    let secret = url.is_some_and(|u| downbeat_store::redact_url(u) != u);
    if let (Some(exe), false) = (&p.host.exe, secret) {
        let mut args = vec![
            "mcp".to_owned(),
            "--project".to_owned(),
            p.root.display().to_string(),
        ];
        if let Some(u) = url {
            args.extend(["--db".to_owned(), u.to_owned()]);
        }
        servers
            .entry(OWN_SERVER.to_owned())
            .or_insert_with(|| McpServer {
                command: exe.display().to_string(),
                args,
                env: BTreeMap::new(),
            });
    }
    servers
}

/// What agents get instead of Downbeat's own credentials: no MCP bearer token or web token, and the
/// database URL without its password (a `downbeat` an agent starts then fails to log in,
/// rather than reaching the database with the runner's secret or opening another one).
pub fn agent_env(p: &Project) -> Vec<(String, Option<String>)> {
    let mut env = vec![
        ("DOWNBEAT_MCP_TOKEN".to_owned(), None),
        ("DOWNBEAT_WEB_TOKEN".to_owned(), None),
    ];
    if let Some(url) = &p.db_url {
        let shown = downbeat_store::redact_url(url);
        if shown != *url {
            env.push(("DOWNBEAT_DATABASE_URL".to_owned(), Some(shown)));
        }
    }
    env
}

/// The secrets masked in what attempts leave behind: those the front end knows of, the
/// database password, and the API keys of the configured HTTP executors.
pub fn scrub_list(p: &Project) -> Vec<String> {
    let mut out: Vec<String> = p.secrets.known().to_vec();
    if let Some(url) = &p.db_url {
        out.extend(url_password(url));
    }
    for e in p.config.executors.values() {
        if let downbeat_engine::executor::ExecutorSpec::Http(h) = e
            && let Some(k) = h.api_key_env.as_deref().and_then(|n| p.secrets.get(n))
        {
            out.push(k.to_string_lossy().into_owned());
        }
    }
    downbeat_engine::scrub::prepare(out)
}

/// The password in a database URL (`user:password@host`, or `password=` in its query).
fn url_password(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let (rest, query) = rest
        .split_once('?')
        .map_or((rest, None), |(r, q)| (r, Some(q)));
    if let Some((auth, _)) = rest.rsplit_once('@')
        && let Some((_, pw)) = auth.split_once(':')
        && !pw.is_empty()
    {
        return Some(pw.to_owned());
    }
    query?
        .split('&')
        .find_map(|kv| kv.strip_prefix("password="))
        .map(str::to_owned)
}

/// The template for tasks whose role has none.
pub const DEFAULT_PROMPT: &str =
    "## Task {{ task.id }}: {{ task.title }}\n\n{{ task.description }}\n";

/// Role name → prompt template, each checked to render.
pub fn role_prompts(p: &Project) -> Result<HashMap<String, String>, Error> {
    let mut prompts = HashMap::new();
    for r in p.roles.iter() {
        downbeat_engine::prompt::check(&r.name, &r.prompt)
            .map_err(|e| Error::invalid(e.to_string()))?;
        prompts.insert(r.name.clone(), r.prompt.clone());
    }
    Ok(prompts)
}

/// What a run is asked to do; every field may be left to the project's configuration.
#[derive(Debug, Default, Clone)]
pub struct RunRequest {
    /// At most this many attempts at once (default: `[run] concurrency`, else the cores).
    pub concurrency: Option<usize>,
    /// Only these tasks (references: ids, prefixes, plan keys) and what they contain.
    pub only: Vec<String>,
    /// This task (a reference) and everything it waits on.
    pub until: Option<String>,
    /// The executor for every task, overriding the configuration.
    pub executor: Option<String>,
}

impl RunRequest {
    /// The task a run's integration report is about: `until`, or the one `only` task.
    pub fn scope(&self) -> Option<String> {
        self.until
            .clone()
            .or_else(|| (self.only.len() == 1).then(|| self.only[0].clone()))
    }
}

/// The engine's options for a run of this project.
pub async fn run_options(p: &Project, a: &RunRequest) -> Result<RunOptions, Error> {
    let mut only = Vec::new();
    for o in &a.only {
        only.push(p.store.resolve_task(o).await?);
    }
    let until = match &a.until {
        Some(u) => Some(p.store.resolve_task(u).await?),
        None => None,
    };
    let resolve = resolver(p, a.executor.clone())?;
    let concurrency = a
        .concurrency
        .or(p.config.run.concurrency)
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
        })
        .max(1);
    let lease = match &p.config.run.lease {
        Some(l) => parse_duration(l).map_err(|e| Error::invalid(format!("[run] lease: {e}")))?,
        None => Duration::from_secs(30),
    };
    let prompts = role_prompts(p)?;
    let caps = p.plan_settings().caps();
    let fixed = p.fixed_now;
    let opts = RunOptions {
        holder: default_holder(),
        concurrency,
        lease,
        only,
        until,
        resolve,
        caps,
        prompts,
        default_prompt: DEFAULT_PROMPT.into(),
        failure: p.config.run.failure,
        rules: p.config.rules.clone(),
        workspace: p.root.clone(),
        runs_dir: p.dir().join("runs"),
        artifacts_dir: p.dir().join("artifacts"),
        artifact_limit: p
            .config
            .run
            .artifact_limit()
            .map_err(|e| Error::invalid(format!("[run] artifact_limit: {e}")))?,
        agent_env: agent_env(p),
        scrub: std::sync::Arc::new(scrub_list(p)),
        now: Arc::new(move || fixed.unwrap_or_else(crate::project::now)),
        accepts: None,
        stay: false,
        worktrees: worktrees(p)?,
        context_budget: p
            .config
            .run
            .context_budget()
            .map_err(|e| Error::invalid(format!("[run] context_budget: {e}")))?,
        flag_depth: p.config.flags.max_depth(),
        memory_files: crate::memory::paths(p)?,

        load_wait: downbeat_engine::run::DEFAULT_LOAD_WAIT,
    };
    Ok(opts)
}

/// The project's worktrees: `None` when isolation is off or the project is not in a git
/// repository. Opening runs no command that changes anything.
/// With a remote, merges take the database's merge lock ([`merge_lock`]).
pub fn worktrees(p: &Project) -> Result<Option<Arc<Worktrees>>, Error> {
    let fixed = p.fixed_now;
    let lock = merge_lock::DbMergeLock::new(
        p.store.clone(),
        default_holder(),
        Arc::new(move || fixed.unwrap_or_else(crate::project::now)),
    );
    Worktrees::open(
        &p.root,
        p.dir().join("worktrees"),
        p.config.worktrees.clone(),
    )
    .map(|w| {
        w.map(|w| match lock {
            Some(l) => Arc::new(w.with_merge_lock(Arc::new(l))),
            None => Arc::new(w),
        })
    })
    .map_err(worktree_error)
}

/// A worktree failure as the front ends report it.
pub fn worktree_error(e: WorktreeError) -> Error {
    match e {
        WorktreeError::Git(g) => Error::new(Kind::Internal, g.to_string()).with_hint(
            "worktree isolation needs git 2.38 or later; [worktrees] mode = \"off\" turns it off",
        ),
        WorktreeError::Io(m) => Error::new(Kind::Internal, m),
        WorktreeError::Contended(_) => Error::conflict(e.to_string()),
        other => Error::invalid(other.to_string()),
    }
}

/// A run's error as the front ends report it.
/// One row of the ledger with what an agent CLI reported of it (cost, session, refusals),
/// kept beside its output in the attempt directory.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Attempt {
    #[serde(flatten)]
    pub record: downbeat_store::AttemptRecord,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentRecord>,
}

/// Task `q` and its attempt ledger, oldest first.
pub async fn attempts(p: &Project, q: &str) -> Result<(TaskId, Vec<Attempt>), Error> {
    let id = crate::tasks::resolve(p, q).await?;
    let runs = p.dir().join("runs").join(id.to_string());
    let list = p
        .store
        .attempts(id)
        .await?
        .into_iter()
        .map(|record| Attempt {
            agent: read_record(&runs.join(record.number.to_string())),
            record,
        })
        .collect();
    Ok((id, list))
}

/// The registered workers, alive or not, with what each holds.
pub async fn workers(p: &Project) -> Result<Vec<downbeat_store::WorkerRecord>, Error> {
    Ok(p.store.workers(p.now()).await?)
}

pub fn run_error(e: downbeat_engine::run::RunError) -> Error {
    match e {
        downbeat_engine::run::RunError::Store(s) => Error::from(s),
        downbeat_engine::run::RunError::Config(m) => {
            Error::invalid(m).with_hint("see docs/executors.md for how executors are chosen")
        }
        downbeat_engine::run::RunError::Cycle(c) => Error::new(Kind::Conflict, c.to_string()),
        downbeat_engine::run::RunError::Internal(m) => Error::internal(m),
    }
}

/// Runs `opts` in this process until it ends or `cancel`: the engine's events go to `show`,
/// and each container's integration report is written as soon as its subtree has ended.
/// Returns the run's summary and the reports written (task, path).
pub async fn run_here(
    p: &Project,
    opts: RunOptions,
    show: mpsc::UnboundedSender<RunEvent>,
    cancel: tokio_util::sync::CancellationToken,
) -> (Result<RunSummary, Error>, Vec<(TaskId, String)>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let (mut show_rx, ended_rx) = split_events(rx);
    let forward = tokio::spawn(async move {
        while let Some(e) = show_rx.recv().await {
            let _ = show.send(e);
        }
    });
    let (result, reports) = tokio::join!(
        downbeat_engine::run::run(p.store.clone(), opts, tx, cancel),
        reports::write_during_run(p, ended_rx, false, &|_, _| {})
    );
    let _ = forward.await;
    if result.is_ok() {
        // Objectives the run's completions achieved (taken again at the next completion if
        // this fails).
        let _ = crate::objectives::settle(p).await;
    }
    (result.map_err(run_error), reports)
}

/// Passes the engine's events on for display, and the ends of attempts to the container
/// reports ([`reports::write_during_run`]).
pub fn split_events(
    mut rx: mpsc::UnboundedReceiver<RunEvent>,
) -> (
    mpsc::UnboundedReceiver<RunEvent>,
    mpsc::UnboundedReceiver<reports::Ended>,
) {
    let (show_tx, show_rx) = mpsc::unbounded_channel();
    let (ended_tx, ended_rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(e) = rx.recv().await {
            if let RunEvent::AttemptFinished { task, status, .. } = &e
                && let Some(id) = TaskId::parse_short(task)
            {
                let still_open = matches!(status.as_str(), "pending" | "retrying");
                let _ = ended_tx.send((id, still_open));
            }
            let _ = show_tx.send(e);
        }
    });
    (show_rx, ended_rx)
}

/// A finished run as an answer: `Ok` when everything it was asked to do is done.
pub fn outcome(s: &RunSummary) -> Result<(), Error> {
    if s.interrupted {
        return Err(Error::new(
            Kind::Interrupted,
            "the run was interrupted; running tasks went back to pending",
        )
        .with_hint("`downbeat run` picks up where it stopped"));
    }
    if s.failed > 0 || s.remaining > 0 || s.stopped_by.is_some() {
        let mut msg = format!("{} task(s) failed, {} not done", s.failed, s.remaining);
        if let Some(r) = &s.stopped_by {
            msg.push_str(&format!("; stopped: {r}"));
        }
        return Err(Error::new(Kind::RunIncomplete, msg).with_hint("`downbeat blocked` shows what is stuck; `downbeat attempts ID` shows what happened; `downbeat retry ID` tries again"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use downbeat_engine::run::RunError;

    #[test]
    fn each_run_error_keeps_its_kind() {
        let internal = run_error(RunError::Internal(
            "the graph could not be loaded: task panicked".into(),
        ));
        assert_eq!(internal.kind, Kind::Internal);
        assert_eq!(internal.hint, None);
        let config = run_error(RunError::Config("no executor named `x`".into()));
        assert_eq!(config.kind, Kind::Invalid);
        assert!(config.hint.is_some());
    }
}
