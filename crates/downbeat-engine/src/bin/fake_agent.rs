//! `downbeat-fake-agent`: a deterministic, scripted stand-in for a real agent CLI.
//!
//! Built only with the `fake-agent` feature, which the engine's own tests turn on: the tests of
//! the process executor run this program instead of a real agent. Every behaviour they need
//! (output, exit codes, result reports, hanging, crashing, leaving children behind, failing a
//! given number of times) is selected with arguments.
//! It must never do anything that is not asked for on its command line, never talk to the
//! network, and never panic: bad arguments are reported on stderr with exit code 2.
//!
//! # Arguments
//!
//! Steps run in this order: state counting, environment dump, prompt echo, output, child,
//! sleeping, artifacts, report, crash, exit.
//!
//! - `--fail-times N --state FILE`: count runs in FILE; the first N runs print a message on
//!   stderr and exit 1 at once, later runs go on normally.
//! - `--env-out FILE`: write the `DOWNBEAT_*` environment variables as a JSON object to FILE.
//! - `--echo-prompt`: copy stdin to stdout.
//! - `--stdout TEXT`, `--stderr TEXT` (repeatable): print TEXT as a line.
//! - `--stream N`, `--stream-interval-ms MS`: print N numbered lines (`line 1` …) to stdout,
//!   flushing each, MS milliseconds apart (default 0).
//! - `--spawn-child-sleep-ms MS`: start a copy of this program with `--sleep-ms MS` in the
//!   background, print `child pid: PID` on stdout and do not wait for it.
//! - `--sleep-ms MS`: sleep before finishing.
//! - `--hang`: sleep until killed. `--ignore-term`: block SIGTERM from the start, so only
//!   SIGKILL ends the program.
//! - `--artifact PATH` (repeatable): write a small file at PATH (relative to the working
//!   directory, parent directories created) and list it in the report.
//! - `--summary TEXT`, `--flag NAME` (repeatable), `--discover TITLE[:ROLE]` (repeatable; the
//!   role is what follows the last `:`), `--report-status STATUS` (any string, normally
//!   `completed` or `failed`), `--report`: write a result report as JSON to the file named
//!   by `DOWNBEAT_RESULT_FILE`. A report is written only if one of these is given.
//! - `--bad-report`: write invalid JSON to the result file instead.
//! - `--crash`: abort (SIGABRT) instead of exiting.
//! - `--exit N`: exit code (default 0).
//! - `--help`: print this list.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{SigSet, Signal};
use serde_json::{Value, json};

const HELP: &str = "\
downbeat-fake-agent: a scripted fake agent for Downbeat's tests

Steps run in this order: state counting, environment dump, prompt echo, output, child,
sleeping, artifacts, report, crash, exit.

Options:
  --fail-times N --state FILE  exit 1 on the first N runs counted in FILE
  --env-out FILE               write the DOWNBEAT_* variables to FILE as JSON
  --echo-prompt                copy stdin to stdout
  --stdout TEXT                print TEXT on stdout (repeatable)
  --stderr TEXT                print TEXT on stderr (repeatable)
  --stream N                   print N numbered lines on stdout, flushing each
  --stream-interval-ms MS      pause between streamed lines (default 0)
  --spawn-child-sleep-ms MS    start a background copy sleeping MS ms; print its pid
  --sleep-ms MS                sleep before finishing
  --hang                       sleep until killed
  --ignore-term                block SIGTERM (only SIGKILL ends the program)
  --artifact PATH              write a small file at PATH and list it (repeatable)
  --summary TEXT               summary in the report
  --flag NAME                  flag in the report (repeatable)
  --discover TITLE[:ROLE]      discovered task in the report (repeatable)
  --report-status STATUS       status in the report (completed, failed, or anything)
  --report                     write a report even if nothing else asks for one
  --bad-report                 write invalid JSON to the result file
  --crash                      abort (SIGABRT) instead of exiting
  --exit N                     exit code (default 0)
  --help                       print this help

The report goes to the file named by DOWNBEAT_RESULT_FILE.
Unknown arguments: a message on stderr and exit code 2.
";

/// Everything the command line asks for.
#[derive(Debug, Default)]
struct Script {
    exit: i32,
    sleep_ms: Option<u64>,
    hang: bool,
    ignore_term: bool,
    stdout: Vec<String>,
    stderr: Vec<String>,
    stream: u64,
    stream_interval_ms: u64,
    echo_prompt: bool,
    summary: Option<String>,
    flags: Vec<String>,
    discover: Vec<String>,
    artifacts: Vec<String>,
    report_status: Option<String>,
    report: bool,
    bad_report: bool,
    crash: bool,
    spawn_child_sleep_ms: Option<u64>,
    fail_times: Option<u64>,
    state: Option<PathBuf>,
    env_out: Option<PathBuf>,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let script = match parse(&args) {
        Ok(Some(script)) => script,
        Ok(None) => {
            out(HELP.trim_end());
            return;
        }
        Err(message) => usage_error(&message),
    };
    let code = match run(&script) {
        Ok(code) => code,
        Err(message) => {
            err(&format!("downbeat-fake-agent: {message}"));
            1
        }
    };
    std::process::exit(code);
}

/// Prints a usage error and exits with code 2.
fn usage_error(message: &str) -> ! {
    err(&format!("downbeat-fake-agent: {message} (see --help)"));
    std::process::exit(2)
}

/// Parses the arguments; `Ok(None)` means `--help`.
fn parse(args: &[String]) -> Result<Option<Script>, String> {
    let mut s = Script::default();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{arg} needs a value"))
        };
        match arg.as_str() {
            "--help" | "-h" => return Ok(None),
            "--exit" => s.exit = number(arg, &value()?)?,
            "--sleep-ms" => s.sleep_ms = Some(number(arg, &value()?)?),
            "--hang" => s.hang = true,
            "--ignore-term" => s.ignore_term = true,
            "--stdout" => s.stdout.push(value()?),
            "--stderr" => s.stderr.push(value()?),
            "--stream" => s.stream = number(arg, &value()?)?,
            "--stream-interval-ms" => s.stream_interval_ms = number(arg, &value()?)?,
            "--echo-prompt" => s.echo_prompt = true,
            "--summary" => s.summary = Some(value()?),
            "--flag" => s.flags.push(value()?),
            "--discover" => s.discover.push(value()?),
            "--artifact" => s.artifacts.push(value()?),
            "--report-status" => s.report_status = Some(value()?),
            "--report" => s.report = true,
            "--bad-report" => s.bad_report = true,
            "--crash" => s.crash = true,
            "--spawn-child-sleep-ms" => s.spawn_child_sleep_ms = Some(number(arg, &value()?)?),
            "--fail-times" => s.fail_times = Some(number(arg, &value()?)?),
            "--state" => s.state = Some(PathBuf::from(value()?)),
            "--env-out" => s.env_out = Some(PathBuf::from(value()?)),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    if s.fail_times.is_some() != s.state.is_some() {
        return Err("--fail-times and --state go together".to_owned());
    }
    Ok(Some(s))
}

fn number<T: std::str::FromStr>(option: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("{option} expects a number, not `{value}`"))
}

/// Runs the script and returns the exit code.
fn run(s: &Script) -> Result<i32, String> {
    if s.ignore_term {
        let mut set = SigSet::empty();
        set.add(Signal::SIGTERM);
        set.thread_block()
            .map_err(|e| format!("could not block SIGTERM: {e}"))?;
    }

    if let (Some(times), Some(state)) = (s.fail_times, &s.state) {
        let runs = count_run(state)?;
        if runs <= times {
            err(&format!(
                "failing on purpose (run {runs} of the first {times})"
            ));
            return Ok(1);
        }
    }

    if let Some(path) = &s.env_out {
        let vars: BTreeMap<String, String> = std::env::vars()
            .filter(|(k, _)| k.starts_with("DOWNBEAT_"))
            .collect();
        let text = serde_json::to_string_pretty(&vars).map_err(|e| e.to_string())?;
        write_file(path, text.as_bytes())?;
    }

    if s.echo_prompt {
        let mut prompt = Vec::new();
        std::io::stdin()
            .read_to_end(&mut prompt)
            .map_err(|e| format!("could not read stdin: {e}"))?;
        let mut stdout = std::io::stdout().lock();
        // Errors writing our own output (a closed pipe) are not worth failing over.
        let _ = stdout.write_all(&prompt);
        let _ = stdout.flush();
    }

    for line in &s.stdout {
        out(line);
    }
    for line in &s.stderr {
        err(line);
    }
    for n in 1..=s.stream {
        out(&format!("line {n}"));
        if n < s.stream && s.stream_interval_ms > 0 {
            std::thread::sleep(Duration::from_millis(s.stream_interval_ms));
        }
    }

    if let Some(ms) = s.spawn_child_sleep_ms {
        let me = std::env::current_exe().map_err(|e| format!("cannot find own program: {e}"))?;
        let child = Command::new(me)
            .args(["--sleep-ms", &ms.to_string()])
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| format!("could not start the child: {e}"))?;
        out(&format!("child pid: {}", child.id()));
        // Dropping a std Child neither kills nor waits for it.
        drop(child);
    }

    if let Some(ms) = s.sleep_ms {
        std::thread::sleep(Duration::from_millis(ms));
    }
    if s.hang {
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }

    for artifact in &s.artifacts {
        write_file(
            Path::new(artifact),
            b"artifact written by downbeat-fake-agent\n",
        )?;
    }

    let wants_report = s.report
        || s.summary.is_some()
        || s.report_status.is_some()
        || !s.flags.is_empty()
        || !s.discover.is_empty()
        || !s.artifacts.is_empty();
    if s.bad_report || wants_report {
        let path = std::env::var_os("DOWNBEAT_RESULT_FILE")
            .ok_or_else(|| "DOWNBEAT_RESULT_FILE is not set".to_owned())?;
        let text = if s.bad_report {
            "{ this is not json".to_owned()
        } else {
            serde_json::to_string_pretty(&report(s)).map_err(|e| e.to_string())?
        };
        write_file(Path::new(&path), text.as_bytes())?;
    }

    if s.crash {
        std::process::abort();
    }
    Ok(s.exit)
}

/// The result report the script asks for.
fn report(s: &Script) -> Value {
    let mut report = serde_json::Map::new();
    if let Some(status) = &s.report_status {
        report.insert("status".into(), json!(status));
    }
    if let Some(summary) = &s.summary {
        report.insert("summary".into(), json!(summary));
    }
    if !s.artifacts.is_empty() {
        report.insert("artifacts".into(), json!(s.artifacts));
    }
    if !s.flags.is_empty() {
        report.insert("flags".into(), json!(s.flags));
    }
    if !s.discover.is_empty() {
        let tasks: Vec<Value> = s
            .discover
            .iter()
            .map(|d| match d.rsplit_once(':') {
                Some((title, role)) => json!({ "title": title, "role": role }),
                None => json!({ "title": d }),
            })
            .collect();
        report.insert("discovered".into(), Value::Array(tasks));
    }
    Value::Object(report)
}

/// Increments the run counter in `state` and returns this run's number (1 for the first).
fn count_run(state: &Path) -> Result<u64, String> {
    let before = match std::fs::read_to_string(state) {
        Ok(text) => text
            .trim()
            .parse::<u64>()
            .map_err(|_| format!("state file {} does not hold a number", state.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => {
            return Err(format!(
                "could not read state file {}: {e}",
                state.display()
            ));
        }
    };
    let runs = before.saturating_add(1);
    write_file(state, runs.to_string().as_bytes())?;
    Ok(runs)
}

/// Writes a file, creating its parent directories.
fn write_file(path: &Path, contents: &[u8]) -> Result<(), String> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("could not create {}: {e}", parent.display()))?;
    }
    std::fs::write(path, contents).map_err(|e| format!("could not write {}: {e}", path.display()))
}

/// Prints a line on stdout and flushes; a closed stdout is ignored (no panic, unlike `println!`).
fn out(line: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}");
    let _ = stdout.flush();
}

/// Prints a line on stderr; errors are ignored.
fn err(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}
