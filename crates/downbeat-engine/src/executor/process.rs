//! The `process` executor: runs an agent program for one attempt.
//!
//! The program runs in the workspace, in a process group of its own, with the prompt on
//! stdin (read from `prompt.md`) and the `DOWNBEAT_*` variables in its environment. Its stdout
//! and stderr are `stdout.log` and `stderr.log` in the attempt directory: the program writes
//! them itself, so they are on disk as it runs and survive a crash of the runner, and no
//! output passes through the runner. On timeout or cancellation the whole group gets SIGTERM,
//! then SIGKILL after the grace period. Success is decided by the result file (see
//! [`AgentReport`]) and the exit code.
//!
//! Every process of an attempt carries the runner's name in `DOWNBEAT_RUNNER`. If the runner
//! dies without stopping its agents, [`kill_orphans`] finds them by it: the runner's guard
//! process calls it the moment the runner dies, and the next runner on this machine calls it
//! for runners it finds dead. The program is started without any code running between fork
//! and exec, so the standard library can use `posix_spawn` (no copy of the runner's page
//! tables per attempt).
//!
//! Must never: panic, return while a process of the attempt's group is still running (the
//! group is SIGKILLed once the program ends, so background children are not left behind),
//! interpret the agent's output beyond the result file, or touch the store.

use std::io::{self, Seek, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use super::types::{
    AgentReport, AttemptSpec, Executor, Outcome, OutcomeKind, ProcessSpec, Requirement, Stdin, env,
    files,
};

/// Time between SIGTERM and SIGKILL when [`ProcessSpec::grace`] is not set.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(5);

/// Result files larger than this are rejected rather than read into memory.
const MAX_RESULT_FILE: u64 = 16 * 1024 * 1024;

/// Why a [`ProcessSpec`] cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProcessError {
    #[error("a process executor needs a program: set either `argv` or `shell`")]
    NoCommand,
    #[error("a process executor takes either `argv` or `shell`, not both")]
    BothCommands,
    #[error("the program name (the first element of `argv`) is empty")]
    EmptyProgram,
    #[error("the `shell` command line is empty")]
    EmptyShell,
    #[error("`argv` and `shell` must not contain NUL bytes")]
    NulInCommand,
    #[error("invalid environment variable name `{0}` (it must be non-empty, without `=` or NUL)")]
    BadEnvName(String),
    #[error("the value of environment variable `{0}` contains a NUL byte")]
    NulInEnvValue(String),
}

/// Runs a program for each attempt (see the module documentation).
#[derive(Debug, Clone)]
pub struct Process {
    spec: ProcessSpec,
}

impl Process {
    /// Checks the spec: exactly one of a non-empty `argv` and `shell`, and a valid environment.
    pub fn new(spec: ProcessSpec) -> Result<Self, ProcessError> {
        match (&spec.argv[..], &spec.shell) {
            ([], None) => return Err(ProcessError::NoCommand),
            ([_, ..], Some(_)) => return Err(ProcessError::BothCommands),
            ([program, ..], None) if program.is_empty() => return Err(ProcessError::EmptyProgram),
            ([], Some(shell)) if shell.trim().is_empty() => return Err(ProcessError::EmptyShell),
            _ => {}
        }
        if spec
            .argv
            .iter()
            .chain(&spec.shell)
            .any(|s| s.contains('\0'))
        {
            return Err(ProcessError::NulInCommand);
        }
        for (name, value) in &spec.env {
            if name.is_empty() || name.contains(['=', '\0']) {
                return Err(ProcessError::BadEnvName(name.clone()));
            }
            if value.contains('\0') {
                return Err(ProcessError::NulInEnvValue(name.clone()));
            }
        }
        Ok(Self { spec })
    }

    /// The validated spec.
    pub fn spec(&self) -> &ProcessSpec {
        &self.spec
    }

    /// Program and arguments to execute.
    fn command(&self) -> (&str, Vec<&str>) {
        match (&self.spec.shell, self.spec.argv.split_first()) {
            (Some(shell), _) => ("sh", vec!["-c", shell.as_str()]),
            (None, Some((program, args))) => (program, args.iter().map(String::as_str).collect()),
            // `new` rules this out; spawning "" fails cleanly if it ever happens.
            (None, None) => ("", Vec::new()),
        }
    }

    async fn attempt(&self, spec: &AttemptSpec, cancel: CancellationToken) -> Outcome {
        if cancel.is_cancelled() {
            return error(
                OutcomeKind::Cancelled,
                "cancelled before the program was started".into(),
            );
        }
        let (paths, files) = match prepare(spec).await {
            Ok(prepared) => prepared,
            Err(message) => return error(OutcomeKind::Error, message),
        };
        let (program, args) = self.command();

        let mut cmd = Command::new(program);
        for name in &spec.env_remove {
            cmd.env_remove(name);
        }
        cmd.args(&args)
            .current_dir(&paths.workspace)
            .envs(&spec.env)
            .envs(&self.spec.env)
            .env(env::TASK_ID, &spec.task_id)
            .env(env::TASK_TITLE, &spec.title)
            .env(env::ROLE, spec.role.as_deref().unwrap_or(""))
            .env(env::ATTEMPT, spec.attempt.to_string())
            .env(env::WORKSPACE, &paths.workspace)
            .env(env::ATTEMPT_DIR, &paths.attempt_dir)
            .env(env::PROMPT_FILE, &paths.prompt)
            .env(env::RESULT_FILE, &paths.result)
            .stdin(match self.spec.stdin {
                Stdin::Prompt => Stdio::from(files.prompt),
                Stdin::Empty => Stdio::null(),
            })
            .stdout(Stdio::from(files.stdout))
            .stderr(Stdio::from(files.stderr))
            .process_group(0)
            .kill_on_drop(true);
        let mut child = match cmd.spawn() {
            Ok(child) => child,
            Err(e) => {
                return error(
                    OutcomeKind::Error,
                    format!("could not start `{program}`: {e}"),
                );
            }
        };
        // Declared after `child`, so it is dropped first: if this future is dropped midway,
        // the group is killed while the leader is still unreaped (its pid cannot be reused).
        let mut group = Group(
            child
                .id()
                .and_then(|id| i32::try_from(id).ok())
                .map(Pid::from_raw),
        );

        let deadline = async {
            match spec.timeout {
                Some(t) => tokio::time::sleep(t).await,
                None => std::future::pending().await,
            }
        };
        let ended = tokio::select! {
            biased;
            status = child.wait() => Ended::Exited(status),
            () = deadline => Ended::Stopped(Stop::TimedOut),
            () = cancel.cancelled() => Ended::Stopped(Stop::Cancelled),
        };
        let (status, stopped) = match ended {
            Ended::Exited(status) => (status, None),
            Ended::Stopped(stop) => {
                group.signal(Signal::SIGTERM);
                let grace = self.spec.grace.unwrap_or(DEFAULT_GRACE);
                match tokio::time::timeout(grace, child.wait()).await {
                    Ok(status) => (status, Some((stop, Termination::Terminated))),
                    Err(_) => {
                        group.signal(Signal::SIGKILL);
                        (child.wait().await, Some((stop, Termination::Killed(grace))))
                    }
                }
            }
        };
        // Whatever the program left running in its group goes now.
        group.kill();

        let mut outcome = Outcome::new(OutcomeKind::Failed, Duration::ZERO);
        outcome.stdout = Some(paths.stdout);
        outcome.stderr = Some(paths.stderr.clone());
        let status = match status {
            Ok(status) => status,
            Err(e) => {
                outcome.kind = OutcomeKind::Error;
                outcome.error = Some(format!("could not wait for `{program}`: {e}"));
                return outcome;
            }
        };
        outcome.exit_code = status.code();
        let report = read_report(&paths.result).await;

        if let Some((stop, termination)) = stopped {
            let (kind, what) = match stop {
                Stop::TimedOut => {
                    let t = spec.timeout.unwrap_or_default();
                    (OutcomeKind::TimedOut, format!("timed out after {t:?}"))
                }
                Stop::Cancelled => (OutcomeKind::Cancelled, "cancelled".to_owned()),
            };
            let how = match termination {
                Termination::Terminated => "the process group was terminated".to_owned(),
                Termination::Killed(grace) => format!(
                    "the process group did not end within {grace:?} of SIGTERM and was killed"
                ),
            };
            outcome.kind = kind;
            outcome.error = Some(format!("{what}; {how}"));
            outcome.report = report.ok().flatten();
            return outcome;
        }

        let (kind, message) = judge(status, &report, &paths.result);
        outcome.kind = kind;
        outcome.error = message.map(|m| with_stderr_tail(m, &paths.stderr));
        outcome.report = report.ok().flatten();
        outcome
    }
}

#[async_trait]
impl Executor for Process {
    async fn run(&self, spec: &AttemptSpec, cancel: CancellationToken) -> Outcome {
        let start = Instant::now();
        let mut outcome = self.attempt(spec, cancel).await;
        outcome.duration = start.elapsed();
        outcome
    }

    fn requirement(&self) -> Option<Requirement> {
        // A shell line needs only `sh`; what it runs shows when it runs.
        self.spec
            .argv
            .first()
            .filter(|_| self.spec.shell.is_none())
            .map(|p| Requirement::Program(p.clone()))
    }
}

/// How the wait for the program ended.
enum Ended {
    Exited(io::Result<ExitStatus>),
    Stopped(Stop),
}

/// Why we stopped the program.
#[derive(Clone, Copy)]
enum Stop {
    TimedOut,
    Cancelled,
}

/// How the program ended after being stopped.
#[derive(Clone, Copy)]
enum Termination {
    /// It ended within the grace period after SIGTERM.
    Terminated,
    /// It was SIGKILLed after the grace period.
    Killed(Duration),
}

/// The attempt's process group; SIGKILLed when dropped unless already killed.
struct Group(Option<Pid>);

impl Group {
    /// Sends `signal` to the group. Errors (ESRCH: nobody left) are ignored.
    fn signal(&self, signal: Signal) {
        if let Some(pgid) = self.0 {
            let _ = killpg(pgid, signal);
        }
    }

    /// SIGKILLs the group, once.
    fn kill(&mut self) {
        self.signal(Signal::SIGKILL);
        self.0 = None;
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Where an attempt's files are.
struct Paths {
    workspace: PathBuf,
    attempt_dir: PathBuf,
    prompt: PathBuf,
    result: PathBuf,
    stdout: PathBuf,
    stderr: PathBuf,
}

/// The program's stdin (the prompt file, read from the start) and its log files.
struct Files {
    prompt: std::fs::File,
    stdout: std::fs::File,
    stderr: std::fs::File,
}

/// Creates the attempt directory, writes the prompt, removes a stale result file and
/// creates the log files, in one trip to a blocking thread. Errors are sentences.
async fn prepare(spec: &AttemptSpec) -> Result<(Paths, Files), String> {
    let workspace = spec.workspace.clone();
    let attempt_dir = spec.attempt_dir.clone();
    let prompt_text = spec.prompt.clone();
    let first = spec.attempt <= 1;
    tokio::task::spawn_blocking(move || prepare_now(&workspace, &attempt_dir, first, &prompt_text))
        .await
        .map_err(|e| format!("could not prepare the attempt: {e}"))?
}

fn prepare_now(
    workspace: &Path,
    attempt_dir: &Path,
    first: bool,
    prompt_text: &str,
) -> Result<(Paths, Files), String> {
    let absolute = |p: &Path| {
        std::path::absolute(p).map_err(|e| format!("cannot resolve path {}: {e}", p.display()))
    };
    let workspace = absolute(workspace)?;
    let attempt_dir = absolute(attempt_dir)?;
    match std::fs::metadata(&workspace) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(format!(
                "workspace {} is not a directory",
                workspace.display()
            ));
        }
        Err(e) => return Err(format!("cannot use workspace {}: {e}", workspace.display())),
    }
    // A new attempt directory cannot hold a stale result file; one that already exists (an
    // attempt number used again after the database was restored) may.
    let fresh = make_attempt_dir(&attempt_dir, first).map_err(|e| {
        format!(
            "could not create attempt directory {}: {e}",
            attempt_dir.display()
        )
    })?;
    let prompt = attempt_dir.join(files::PROMPT);
    // Written and then read by the program as its stdin, through one open file.
    let prompt_file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&prompt)
        .and_then(|mut f| {
            f.write_all(prompt_text.as_bytes())?;
            f.seek(io::SeekFrom::Start(0))?;
            Ok(f)
        })
        .map_err(|e| format!("could not write {}: {e}", prompt.display()))?;
    let result = attempt_dir.join(files::RESULT);
    if !fresh {
        match std::fs::remove_file(&result) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(format!(
                    "could not remove stale result file {}: {e}",
                    result.display()
                ));
            }
        }
    }
    let create = |path: &Path| {
        std::fs::File::create(path).map_err(|e| format!("could not create {}: {e}", path.display()))
    };
    let stdout = attempt_dir.join(files::STDOUT);
    let stderr = attempt_dir.join(files::STDERR);
    let files = Files {
        prompt: prompt_file,
        stdout: create(&stdout)?,
        stderr: create(&stderr)?,
    };
    Ok((
        Paths {
            workspace,
            attempt_dir,
            prompt,
            result,
            stdout,
            stderr,
        },
        files,
    ))
}

/// Creates the attempt directory; `Ok(false)` if it exists already. The directory of a first
/// attempt's task is new too, so it is made first: two `mkdir`s, none of them failing, where
/// trying the attempt's directory first would fail and then make both.
fn make_attempt_dir(dir: &Path, first: bool) -> io::Result<bool> {
    if first && let Some(task_dir) = dir.parent() {
        match std::fs::create_dir(task_dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            // The runs directory itself is missing (the first attempt of a project).
            Err(_) => std::fs::create_dir_all(task_dir)?,
        }
    }
    match std::fs::create_dir(dir) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(_) => std::fs::create_dir_all(dir).map(|()| true),
    }
}

/// Reads the result file: `Ok(None)` if there is none, `Err` (a sentence) if it is unreadable
/// or malformed.
async fn read_report(path: &Path) -> Result<Option<AgentReport>, String> {
    // Most programs write none: one stat says so without a trip to a blocking thread.
    if matches!(std::fs::symlink_metadata(path), Err(e) if e.kind() == io::ErrorKind::NotFound) {
        return Ok(None);
    }
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || read_report_now(&path))
        .await
        .map_err(|e| format!("could not read the result file: {e}"))?
}

fn read_report_now(path: &Path) -> Result<Option<AgentReport>, String> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.len() > MAX_RESULT_FILE => {
            return Err(format!(
                "result file {} is too large ({} bytes; the limit is {MAX_RESULT_FILE})",
                path.display(),
                meta.len()
            ));
        }
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(format!(
                "could not read result file {}: {e}",
                path.display()
            ));
        }
    }
    let bytes = std::fs::read(path)
        .map_err(|e| format!("could not read result file {}: {e}", path.display()))?;
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| format!("invalid result file {}: {e}", path.display()))
}

/// Decides the outcome of a program that ended by itself.
fn judge(
    status: ExitStatus,
    report: &Result<Option<AgentReport>, String>,
    result_path: &Path,
) -> (OutcomeKind, Option<String>) {
    use OutcomeKind::{Failed, Succeeded};
    if let Some(signal) = status.signal() {
        let name = Signal::try_from(signal)
            .map(Signal::as_str)
            .unwrap_or("unknown signal");
        return (Failed, Some(format!("killed by signal {signal} ({name})")));
    }
    let report = match report {
        Ok(report) => report.as_ref(),
        Err(message) => return (Failed, Some(message.clone())),
    };
    let code = status.code().unwrap_or(-1);
    match (report.and_then(|r| r.status.as_deref()), code) {
        (None | Some("completed"), 0) => (Succeeded, None),
        (None, code) => (Failed, Some(format!("exited with code {code}"))),
        (Some("completed"), code) => (
            Failed,
            Some(format!(
                "the agent reported status completed but exited with code {code}"
            )),
        ),
        (Some("failed"), 0) => (Failed, Some("the agent reported status failed".to_owned())),
        (Some("failed"), code) => (
            Failed,
            Some(format!(
                "the agent reported status failed and exited with code {code}"
            )),
        ),
        (Some(other), _) => (
            Failed,
            Some(format!(
                "result file {} has unknown status `{other}` (expected `completed` or `failed`)",
                result_path.display()
            )),
        ),
    }
}

/// How many lines of stderr a failure message quotes.
const STDERR_TAIL_LINES: usize = 5;
/// Reading more than this much of stderr's end is pointless for a message.
const STDERR_TAIL_BYTES: u64 = 4096;

/// A failure message with the last lines the program wrote to stderr, if any: `exited with
/// code 127` says little, `sh: 1: claud: not found` says what is wrong.
fn with_stderr_tail(message: String, stderr: &Path) -> String {
    let tail = stderr_tail(stderr);
    if tail.is_empty() {
        message
    } else {
        format!("{message}; stderr ends: {}", tail.join(" | "))
    }
}

fn stderr_tail(path: &Path) -> Vec<String> {
    use std::io::Read as _;
    let Ok(mut f) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    if len > STDERR_TAIL_BYTES {
        let _ = f.seek(io::SeekFrom::Start(len - STDERR_TAIL_BYTES));
    }
    let mut buf = Vec::new();
    let _ = f.take(STDERR_TAIL_BYTES).read_to_end(&mut buf);
    let text = strip_ansi(&String::from_utf8_lossy(&buf));
    let lines: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| l.chars().take(300).collect())
        .collect();
    let skip = lines.len().saturating_sub(STDERR_TAIL_LINES);
    lines.into_iter().skip(skip).collect()
}

/// Text without terminal escape sequences (colours, cursor movement).
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'[') {
            chars.next();
            // Parameters and intermediates, up to the final byte (`@` to `~`).
            for f in chars.by_ref() {
                if ('@'..='~').contains(&f) {
                    break;
                }
            }
        } else {
            chars.next();
        }
    }
    out
}

/// An outcome without output, for failures before the program ran.
fn error(kind: OutcomeKind, message: String) -> Outcome {
    let mut outcome = Outcome::new(kind, Duration::ZERO);
    outcome.error = Some(message);
    outcome
}

/// Stops every process on this machine that an attempt of one of `holders` started (found by
/// the `DOWNBEAT_RUNNER` variable in its environment), with its whole process group: what a
/// runner that died without stopping its agents left behind. Returns how many processes were
/// found. Processes of other users, and programs that cleared their environment, are not seen.
pub fn kill_orphans(holders: &[String]) -> usize {
    if holders.is_empty() {
        return 0;
    }
    let wanted: Vec<Vec<u8>> = holders
        .iter()
        .map(|h| format!("{}={h}", env::RUNNER).into_bytes())
        .collect();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let me = std::process::id();
    let own_group = nix::unistd::getpgrp();
    let mut found = 0;
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        if pid as u32 == me {
            continue;
        }
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        if !environ
            .split(|b| *b == 0)
            .any(|var| wanted.iter().any(|w| var == w.as_slice()))
        {
            continue;
        }
        found += 1;
        let pid = Pid::from_raw(pid);
        if let Ok(group) = nix::unistd::getpgid(Some(pid))
            && group != own_group
            && group.as_raw() > 1
        {
            let _ = killpg(group, Signal::SIGKILL);
        }
        let _ = kill(pid, Signal::SIGKILL);
    }
    found
}
