//! Integration tests of the `process` executor, driven by `downbeat-fake-agent`.
//!
//! Timing assertions are deliberately loose (upper bounds of several seconds, lower bounds
//! only where the executor guarantees them) so the tests hold on a loaded machine.

mod common;
use common::Fixture;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use downbeat_engine::executor::process::{Process, ProcessError};
use downbeat_engine::executor::{
    AgentReport, AttemptSpec, DiscoveredTask, Executor, Outcome, OutcomeKind, ProcessSpec, files,
};
use tokio_util::sync::CancellationToken;

const FAKE_AGENT: &str = env!("CARGO_BIN_EXE_downbeat-fake-agent");

fn fake(args: &[&str]) -> Process {
    let mut argv = vec![FAKE_AGENT.to_owned()];
    argv.extend(args.iter().map(|a| (*a).to_owned()));
    Process::new(ProcessSpec {
        argv,
        ..ProcessSpec::default()
    })
    .expect("valid spec")
}

fn fake_with_grace(args: &[&str], grace: Duration) -> Process {
    let mut argv = vec![FAKE_AGENT.to_owned()];
    argv.extend(args.iter().map(|a| (*a).to_owned()));
    Process::new(ProcessSpec {
        argv,
        grace: Some(grace),
        ..ProcessSpec::default()
    })
    .expect("valid spec")
}

async fn run(process: &Process, spec: &AttemptSpec) -> Outcome {
    bounded(process.run(spec, CancellationToken::new())).await
}

/// Fails the test instead of hanging it if the executor never returns.
async fn bounded<T>(fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(120), fut)
        .await
        .expect("the executor did not return within 120 s")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn stdout_of(outcome: &Outcome) -> String {
    read(outcome.stdout.as_deref().expect("stdout captured"))
}

fn stderr_of(outcome: &Outcome) -> String {
    read(outcome.stderr.as_deref().expect("stderr captured"))
}

fn error_of(outcome: &Outcome) -> &str {
    outcome
        .error
        .as_deref()
        .unwrap_or_else(|| panic!("expected an error in {outcome:?}"))
}

/// Whether the process is gone: no `/proc/PID`, or a zombie waiting to be reaped.
fn is_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => {
            // The state follows the command name, which is in parentheses.
            let state = stat.rsplit_once(')').map(|(_, rest)| rest.trim_start());
            matches!(state.and_then(|s| s.chars().next()), Some('Z' | 'X'))
        }
    }
}

async fn wait_gone(pid: u32) -> bool {
    for _ in 0..100 {
        if is_gone(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

fn child_pid(stdout: &str) -> u32 {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("child pid: "))
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("no child pid in {stdout:?}"))
}

#[tokio::test]
async fn success_captures_output_and_prompt() {
    let fx = Fixture::new();
    let spec = fx.spec();
    let outcome = run(
        &fake(&["--echo-prompt", "--stdout", "hello", "--stderr", "oops"]),
        &spec,
    )
    .await;
    assert_eq!(outcome.kind, OutcomeKind::Succeeded, "{outcome:?}");
    assert_eq!(outcome.exit_code, Some(0));
    assert_eq!(outcome.error, None);
    assert_eq!(outcome.report, None);
    assert_eq!(
        outcome.stdout.as_deref(),
        Some(fx.file(files::STDOUT).as_path())
    );
    assert_eq!(
        outcome.stderr.as_deref(),
        Some(fx.file(files::STDERR).as_path())
    );
    assert_eq!(stdout_of(&outcome), format!("{}hello\n", spec.prompt));
    assert_eq!(stderr_of(&outcome), "oops\n");
    assert_eq!(read(&fx.file(files::PROMPT)), spec.prompt);
    assert!(outcome.duration > Duration::ZERO);
}

#[tokio::test]
async fn attempt_directories_are_made_whatever_exists_already() {
    let fx = Fixture::new();
    let task_dir = fx.attempt_dir.parent().expect("task dir").to_path_buf();
    let runs = task_dir.parent().expect("runs dir").to_path_buf();
    let process = fake(&["--echo-prompt"]);
    // The first attempt of a project: neither the runs directory nor the task's exists.
    let outcome = run(&process, &fx.spec()).await;
    assert_eq!(outcome.kind, OutcomeKind::Succeeded, "{outcome:?}");
    assert_eq!(read(&fx.file(files::PROMPT)), fx.spec().prompt);
    // A first attempt of another task: the runs directory exists, the task's does not.
    let mut other = fx.spec();
    other.attempt_dir = runs.join("t2").join("1");
    let outcome = run(&process, &other).await;
    assert_eq!(outcome.kind, OutcomeKind::Succeeded, "{outcome:?}");
    assert_eq!(stdout_of(&outcome), other.prompt);
    // A retry: the task's directory exists, the attempt's does not.
    let mut retry = fx.spec();
    retry.attempt = 2;
    retry.attempt_dir = task_dir.join("2");
    let outcome = run(&process, &retry).await;
    assert_eq!(outcome.kind, OutcomeKind::Succeeded, "{outcome:?}");
    assert!(retry.attempt_dir.join(files::STDERR).is_file());
    // A retry whose task directory is gone (cleaned up by hand) still gets its directory.
    std::fs::remove_dir_all(runs.join("t2")).expect("remove t2");
    let mut gone = other.clone();
    gone.attempt = 2;
    gone.attempt_dir = runs.join("t2").join("2");
    let outcome = run(&process, &gone).await;
    assert_eq!(outcome.kind, OutcomeKind::Succeeded, "{outcome:?}");
    assert_eq!(read(&gone.attempt_dir.join(files::PROMPT)), gone.prompt);
}

#[tokio::test]
async fn large_prompt_does_not_deadlock() {
    let fx = Fixture::new();
    let mut spec = fx.spec();
    spec.prompt = "0123456789abcdef\n".repeat(256 * 1024); // 4 MiB, far beyond a pipe buffer
    let outcome = run(&fake(&["--echo-prompt"]), &spec).await;
    assert_eq!(outcome.kind, OutcomeKind::Succeeded, "{outcome:?}");
    assert_eq!(stdout_of(&outcome).len(), spec.prompt.len());
}

#[tokio::test]
async fn program_that_ignores_stdin_is_fine() {
    let fx = Fixture::new();
    let mut spec = fx.spec();
    spec.prompt = "x".repeat(1024 * 1024);
    let outcome = run(&fake(&["--stdout", "not reading"]), &spec).await;
    assert_eq!(outcome.kind, OutcomeKind::Succeeded, "{outcome:?}");
    assert_eq!(stdout_of(&outcome), "not reading\n");
}

#[tokio::test]
async fn streamed_output_is_captured_in_order() {
    let fx = Fixture::new();
    let outcome = run(
        &fake(&["--stream", "5", "--stream-interval-ms", "10"]),
        &fx.spec(),
    )
    .await;
    assert_eq!(outcome.kind, OutcomeKind::Succeeded, "{outcome:?}");
    assert_eq!(
        stdout_of(&outcome),
        "line 1\nline 2\nline 3\nline 4\nline 5\n"
    );
}

#[tokio::test]
async fn output_is_on_disk_while_the_program_runs() {
    let fx = Fixture::new();
    let spec = fx.spec();
    let process = fake(&["--stdout", "early bird", "--hang"]);
    let cancel = CancellationToken::new();
    let stdout_log = fx.file(files::STDOUT);
    let watcher = {
        let cancel = cancel.clone();
        async move {
            let mut seen = false;
            for _ in 0..400 {
                if std::fs::read_to_string(&stdout_log).is_ok_and(|s| s.contains("early bird")) {
                    seen = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            cancel.cancel();
            seen
        }
    };
    let (outcome, seen) =
        bounded(async { tokio::join!(process.run(&spec, cancel.clone()), watcher) }).await;
    assert!(
        seen,
        "the output did not reach stdout.log while the program was running"
    );
    assert_eq!(outcome.kind, OutcomeKind::Cancelled, "{outcome:?}");
    assert_eq!(stdout_of(&outcome), "early bird\n");
}

#[tokio::test]
async fn environment_has_the_downbeat_variables() {
    let fx = Fixture::new();
    let mut spec = fx.spec();
    spec.attempt = 2;
    spec.role = None;
    spec.env.insert("DOWNBEAT_FROM_ATTEMPT".into(), "a".into());
    spec.env
        .insert("DOWNBEAT_OVERRIDDEN".into(), "by attempt".into());
    spec.env
        .insert("DOWNBEAT_TASK_ID".into(), "not the task id".into());
    let env_out = fx.workspace.join("env.json");
    let mut process_env = BTreeMap::new();
    process_env.insert("DOWNBEAT_FROM_PROCESS".to_owned(), "p".to_owned());
    process_env.insert("DOWNBEAT_OVERRIDDEN".to_owned(), "by process".to_owned());
    let process = Process::new(ProcessSpec {
        argv: vec![
            FAKE_AGENT.into(),
            "--env-out".into(),
            env_out.display().to_string(),
        ],
        env: process_env,
        ..ProcessSpec::default()
    })
    .expect("valid spec");
    // A stale result file from an earlier run must not count.
    std::fs::create_dir_all(&fx.attempt_dir).expect("attempt dir");
    std::fs::write(fx.file(files::RESULT), r#"{"status": "failed"}"#).expect("stale result");

    let outcome = run(&process, &spec).await;
    assert_eq!(outcome.kind, OutcomeKind::Succeeded, "{outcome:?}");
    assert_eq!(outcome.report, None);

    let vars: BTreeMap<String, String> =
        serde_json::from_str(&read(&env_out)).expect("env-out is JSON");
    let get = |k: &str| vars.get(k).map(String::as_str);
    assert_eq!(get("DOWNBEAT_TASK_ID"), Some("t1"));
    assert_eq!(get("DOWNBEAT_TASK_TITLE"), Some("Write the parser"));
    assert_eq!(get("DOWNBEAT_ROLE"), Some(""));
    assert_eq!(get("DOWNBEAT_ATTEMPT"), Some("2"));
    let ws = fx.workspace.display().to_string();
    assert_eq!(get("DOWNBEAT_WORKSPACE"), Some(ws.as_str()));
    let dir = fx.attempt_dir.display().to_string();
    assert_eq!(get("DOWNBEAT_ATTEMPT_DIR"), Some(dir.as_str()));
    let prompt = fx.file(files::PROMPT).display().to_string();
    assert_eq!(get("DOWNBEAT_PROMPT_FILE"), Some(prompt.as_str()));
    let result = fx.file(files::RESULT).display().to_string();
    assert_eq!(get("DOWNBEAT_RESULT_FILE"), Some(result.as_str()));
    assert_eq!(get("DOWNBEAT_FROM_ATTEMPT"), Some("a"));
    assert_eq!(get("DOWNBEAT_FROM_PROCESS"), Some("p"));
    assert_eq!(get("DOWNBEAT_OVERRIDDEN"), Some("by process"));
}

#[tokio::test]
async fn relative_attempt_dir_is_passed_as_an_absolute_path() {
    let fx = Fixture::new();
    let mut spec = fx.spec();
    // The same directory, reached from the current directory with `..` components.
    let cwd = std::env::current_dir().expect("cwd");
    let mut relative = PathBuf::new();
    for _ in cwd.components().skip(1) {
        relative.push("..");
    }
    relative.push(fx.attempt_dir.strip_prefix("/").expect("absolute temp dir"));
    assert!(relative.is_relative());
    spec.attempt_dir = relative;
    let env_out = fx.workspace.join("env.json");
    let outcome = run(
        &fake(&["--env-out", &env_out.display().to_string(), "--report"]),
        &spec,
    )
    .await;
    assert_eq!(outcome.kind, OutcomeKind::Succeeded, "{outcome:?}");
    let vars: BTreeMap<String, String> = serde_json::from_str(&read(&env_out)).expect("json");
    assert!(Path::new(&vars["DOWNBEAT_RESULT_FILE"]).is_absolute());
    assert_eq!(
        outcome.report,
        Some(AgentReport::default()),
        "the report was not found"
    );
}

#[tokio::test]
async fn non_zero_exit_fails_with_the_code() {
    let fx = Fixture::new();
    let outcome = run(&fake(&["--stderr", "it broke", "--exit", "3"]), &fx.spec()).await;
    assert_eq!(outcome.kind, OutcomeKind::Failed, "{outcome:?}");
    assert_eq!(outcome.exit_code, Some(3));
    assert!(
        error_of(&outcome).contains("exited with code 3"),
        "{outcome:?}"
    );
    assert_eq!(stderr_of(&outcome), "it broke\n");
}

#[tokio::test]
async fn report_is_parsed() {
    let fx = Fixture::new();
    let args = [
        "--summary",
        "Wrote the parser.",
        "--flag",
        "DATABASE_INVESTIGATION",
        "--flag",
        "SECURITY_BREACH",
        "--discover",
        "Add fuzzing:qa",
        "--discover",
        "Document the grammar",
        "--artifact",
        "out/parser.rs",
        "--report-status",
        "completed",
    ];
    let outcome = run(&fake(&args), &fx.spec()).await;
    assert_eq!(outcome.kind, OutcomeKind::Succeeded, "{outcome:?}");
    let report = outcome.report.expect("report");
    assert_eq!(
        report,
        AgentReport {
            status: Some("completed".into()),
            summary: Some("Wrote the parser.".into()),
            artifacts: vec!["out/parser.rs".into()],
            flags: vec!["DATABASE_INVESTIGATION".into(), "SECURITY_BREACH".into()],
            discovered: vec![
                DiscoveredTask {
                    title: "Add fuzzing".into(),
                    role: Some("qa".into()),
                    ..DiscoveredTask::default()
                },
                DiscoveredTask {
                    title: "Document the grammar".into(),
                    ..DiscoveredTask::default()
                },
            ],
        }
    );
    // The artifact was written relative to the working directory: the workspace.
    assert!(fx.workspace.join("out/parser.rs").is_file());
}

#[tokio::test]
async fn report_failed_with_exit_zero_fails() {
    let fx = Fixture::new();
    let outcome = run(
        &fake(&["--report-status", "failed", "--summary", "could not do it"]),
        &fx.spec(),
    )
    .await;
    assert_eq!(outcome.kind, OutcomeKind::Failed, "{outcome:?}");
    assert_eq!(outcome.exit_code, Some(0));
    assert!(error_of(&outcome).contains("failed"), "{outcome:?}");
    let report = outcome.report.expect("report kept");
    assert_eq!(report.summary.as_deref(), Some("could not do it"));
}

#[tokio::test]
async fn report_completed_with_non_zero_exit_fails() {
    let fx = Fixture::new();
    let outcome = run(
        &fake(&["--report-status", "completed", "--exit", "4"]),
        &fx.spec(),
    )
    .await;
    assert_eq!(outcome.kind, OutcomeKind::Failed, "{outcome:?}");
    assert_eq!(outcome.exit_code, Some(4));
    let error = error_of(&outcome);
    assert!(
        error.contains("completed") && error.contains('4'),
        "{error}"
    );
}

#[tokio::test]
async fn unknown_report_status_fails() {
    let fx = Fixture::new();
    let outcome = run(&fake(&["--report-status", "mostly-done"]), &fx.spec()).await;
    assert_eq!(outcome.kind, OutcomeKind::Failed, "{outcome:?}");
    assert!(error_of(&outcome).contains("mostly-done"), "{outcome:?}");
}

#[tokio::test]
async fn malformed_report_fails_and_keeps_output() {
    let fx = Fixture::new();
    let outcome = run(
        &fake(&["--stdout", "did things", "--bad-report"]),
        &fx.spec(),
    )
    .await;
    assert_eq!(outcome.kind, OutcomeKind::Failed, "{outcome:?}");
    assert_eq!(outcome.exit_code, Some(0));
    assert!(
        error_of(&outcome).starts_with("invalid result file"),
        "{outcome:?}"
    );
    assert_eq!(outcome.report, None);
    assert_eq!(stdout_of(&outcome), "did things\n");
}

#[tokio::test]
async fn report_with_unknown_field_is_rejected() {
    let fx = Fixture::new();
    let process = Process::new(ProcessSpec {
        shell: Some(
            r#"printf '{"status":"completed","mood":"great"}' > "$DOWNBEAT_RESULT_FILE""#.into(),
        ),
        ..ProcessSpec::default()
    })
    .expect("valid spec");
    let outcome = run(&process, &fx.spec()).await;
    assert_eq!(outcome.kind, OutcomeKind::Failed, "{outcome:?}");
    let error = error_of(&outcome);
    assert!(
        error.starts_with("invalid result file") && error.contains("mood"),
        "{error}"
    );
}

#[tokio::test]
async fn missing_program_is_an_error() {
    let fx = Fixture::new();
    let process = Process::new(ProcessSpec {
        argv: vec!["downbeat-no-such-agent-xyz".into(), "--go".into()],
        ..ProcessSpec::default()
    })
    .expect("valid spec");
    let outcome = run(&process, &fx.spec()).await;
    assert_eq!(outcome.kind, OutcomeKind::Error, "{outcome:?}");
    let error = error_of(&outcome);
    assert!(error.contains("downbeat-no-such-agent-xyz"), "{error}");
    assert!(error.contains("No such file"), "{error}");
}

#[tokio::test]
async fn non_executable_program_is_an_error() {
    let fx = Fixture::new();
    let script = fx.workspace.join("agent.sh");
    std::fs::write(&script, "#!/bin/sh\necho hi\n").expect("script");
    let process = Process::new(ProcessSpec {
        argv: vec![script.display().to_string()],
        ..ProcessSpec::default()
    })
    .expect("valid spec");
    let outcome = run(&process, &fx.spec()).await;
    assert_eq!(outcome.kind, OutcomeKind::Error, "{outcome:?}");
    assert!(error_of(&outcome).contains("agent.sh"), "{outcome:?}");
}

#[tokio::test]
async fn missing_workspace_is_an_error() {
    let fx = Fixture::new();
    let mut spec = fx.spec();
    spec.workspace = fx.workspace.join("does-not-exist");
    let outcome = run(&fake(&[]), &spec).await;
    assert_eq!(outcome.kind, OutcomeKind::Error, "{outcome:?}");
    assert!(error_of(&outcome).contains("does-not-exist"), "{outcome:?}");
}

#[tokio::test]
async fn timeout_terminates_the_program() {
    let fx = Fixture::new();
    let mut spec = fx.spec();
    spec.timeout = Some(Duration::from_millis(300));
    let started = Instant::now();
    let outcome = run(
        &fake_with_grace(&["--stdout", "starting", "--hang"], Duration::from_secs(1)),
        &spec,
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(outcome.kind, OutcomeKind::TimedOut, "{outcome:?}");
    let error = error_of(&outcome);
    assert!(error.contains("timed out after 300ms"), "{error}");
    assert!(error.contains("terminated"), "{error}");
    assert_eq!(outcome.exit_code, None);
    assert_eq!(stdout_of(&outcome), "starting\n");
}

#[tokio::test]
async fn program_ignoring_sigterm_is_killed_after_the_grace() {
    let fx = Fixture::new();
    let mut spec = fx.spec();
    spec.timeout = Some(Duration::from_millis(300));
    let grace = Duration::from_secs(1);
    let started = Instant::now();
    let outcome = run(&fake_with_grace(&["--ignore-term", "--hang"], grace), &spec).await;
    let elapsed = started.elapsed();
    assert_eq!(outcome.kind, OutcomeKind::TimedOut, "{outcome:?}");
    // SIGKILL cannot come before the timeout plus the grace.
    assert!(elapsed >= Duration::from_millis(1300), "took {elapsed:?}");
    assert!(elapsed < Duration::from_secs(15), "took {elapsed:?}");
    assert!(error_of(&outcome).contains("killed"), "{outcome:?}");
}

#[tokio::test]
async fn cancellation_stops_the_program() {
    let fx = Fixture::new();
    let spec = fx.spec();
    let cancel = CancellationToken::new();
    let canceller = {
        let cancel = cancel.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            cancel.cancel();
        }
    };
    let process = fake_with_grace(&["--hang"], Duration::from_secs(1));
    let started = Instant::now();
    let (outcome, ()) =
        bounded(async { tokio::join!(process.run(&spec, cancel.clone()), canceller) }).await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(outcome.kind, OutcomeKind::Cancelled, "{outcome:?}");
    assert!(error_of(&outcome).starts_with("cancelled"), "{outcome:?}");
}

#[tokio::test]
async fn already_cancelled_token_does_not_start_anything() {
    let fx = Fixture::new();
    let cancel = CancellationToken::new();
    cancel.cancel();
    let env_out = fx.workspace.join("env.json");
    let outcome = fake(&["--env-out", &env_out.display().to_string()])
        .run(&fx.spec(), cancel)
        .await;
    assert_eq!(outcome.kind, OutcomeKind::Cancelled, "{outcome:?}");
    assert!(!env_out.exists());
}

#[tokio::test]
async fn background_grandchild_is_killed_when_the_program_exits() {
    let fx = Fixture::new();
    let outcome = run(&fake(&["--spawn-child-sleep-ms", "60000"]), &fx.spec()).await;
    assert_eq!(outcome.kind, OutcomeKind::Succeeded, "{outcome:?}");
    let pid = child_pid(&stdout_of(&outcome));
    assert!(wait_gone(pid).await, "grandchild {pid} is still running");
}

#[tokio::test]
async fn background_grandchild_is_killed_on_timeout() {
    let fx = Fixture::new();
    let mut spec = fx.spec();
    spec.timeout = Some(Duration::from_millis(500));
    let process = fake_with_grace(
        &["--spawn-child-sleep-ms", "60000", "--hang"],
        Duration::from_secs(1),
    );
    let outcome = run(&process, &spec).await;
    assert_eq!(outcome.kind, OutcomeKind::TimedOut, "{outcome:?}");
    let pid = child_pid(&stdout_of(&outcome));
    assert!(wait_gone(pid).await, "grandchild {pid} is still running");
}

#[tokio::test]
async fn crash_is_a_failure_with_the_signal() {
    let fx = Fixture::new();
    let outcome = run(
        &fake(&["--stdout", "about to crash", "--crash"]),
        &fx.spec(),
    )
    .await;
    assert_eq!(outcome.kind, OutcomeKind::Failed, "{outcome:?}");
    assert_eq!(outcome.exit_code, None);
    assert!(
        error_of(&outcome).contains("killed by signal 6"),
        "{outcome:?}"
    );
    assert_eq!(stdout_of(&outcome), "about to crash\n");
}

#[tokio::test]
async fn shell_mode_runs_through_sh() {
    let fx = Fixture::new();
    let process = Process::new(ProcessSpec {
        shell: Some("echo hi && echo \"$DOWNBEAT_TASK_ID\" >&2 && exit 3".into()),
        ..ProcessSpec::default()
    })
    .expect("valid spec");
    let outcome = run(&process, &fx.spec()).await;
    assert_eq!(outcome.kind, OutcomeKind::Failed, "{outcome:?}");
    assert_eq!(outcome.exit_code, Some(3));
    assert_eq!(stdout_of(&outcome), "hi\n");
    assert_eq!(stderr_of(&outcome), "t1\n");
}

#[tokio::test]
async fn shell_mode_runs_in_the_workspace() {
    let fx = Fixture::new();
    let process = Process::new(ProcessSpec {
        shell: Some("pwd".into()),
        ..ProcessSpec::default()
    })
    .expect("valid spec");
    let outcome = run(&process, &fx.spec()).await;
    assert_eq!(outcome.kind, OutcomeKind::Succeeded, "{outcome:?}");
    let pwd = PathBuf::from(stdout_of(&outcome).trim_end());
    assert_eq!(
        pwd.canonicalize().expect("pwd"),
        fx.workspace.canonicalize().expect("workspace")
    );
}

#[tokio::test]
async fn fail_times_fails_then_succeeds() {
    let fx = Fixture::new();
    let state = fx.workspace.join("state");
    let state = state.display().to_string();
    let process = fake(&["--fail-times", "2", "--state", &state]);
    let mut kinds = Vec::new();
    for attempt in 1..=3 {
        let mut spec = fx.spec();
        spec.attempt = attempt;
        spec.attempt_dir = fx.attempt_dir.with_file_name(attempt.to_string());
        kinds.push(run(&process, &spec).await.kind);
    }
    assert_eq!(
        kinds,
        [
            OutcomeKind::Failed,
            OutcomeKind::Failed,
            OutcomeKind::Succeeded
        ]
    );
}

#[tokio::test]
async fn fake_agent_rejects_unknown_arguments() {
    let fx = Fixture::new();
    let outcome = run(&fake(&["--no-such-option"]), &fx.spec()).await;
    assert_eq!(outcome.kind, OutcomeKind::Failed, "{outcome:?}");
    assert_eq!(outcome.exit_code, Some(2));
    assert!(stderr_of(&outcome).contains("--no-such-option"));
}

#[test]
fn spec_validation() {
    let check = |spec: ProcessSpec, expected: ProcessError| {
        let err = Process::new(spec).expect_err("invalid spec");
        assert_eq!(err, expected);
        let message = err.to_string();
        assert!(
            message.starts_with(|c: char| !c.is_uppercase()),
            "{message}"
        );
    };
    check(ProcessSpec::default(), ProcessError::NoCommand);
    check(
        ProcessSpec {
            argv: vec!["a".into()],
            shell: Some("b".into()),
            ..ProcessSpec::default()
        },
        ProcessError::BothCommands,
    );
    check(
        ProcessSpec {
            argv: vec![String::new()],
            ..ProcessSpec::default()
        },
        ProcessError::EmptyProgram,
    );
    check(
        ProcessSpec {
            shell: Some("  ".into()),
            ..ProcessSpec::default()
        },
        ProcessError::EmptyShell,
    );
    check(
        ProcessSpec {
            argv: vec!["a".into(), "b\0c".into()],
            ..ProcessSpec::default()
        },
        ProcessError::NulInCommand,
    );
    let mut env = BTreeMap::new();
    env.insert("A=B".to_owned(), "x".to_owned());
    check(
        ProcessSpec {
            argv: vec!["a".into()],
            env,
            ..ProcessSpec::default()
        },
        ProcessError::BadEnvName("A=B".into()),
    );
    let mut env = BTreeMap::new();
    env.insert("A".to_owned(), "x\0".to_owned());
    check(
        ProcessSpec {
            argv: vec!["a".into()],
            env,
            ..ProcessSpec::default()
        },
        ProcessError::NulInEnvValue("A".into()),
    );

    assert!(
        Process::new(ProcessSpec {
            argv: vec!["a".into()],
            ..ProcessSpec::default()
        })
        .is_ok()
    );
    assert!(
        Process::new(ProcessSpec {
            shell: Some("true".into()),
            ..ProcessSpec::default()
        })
        .is_ok()
    );
}

#[tokio::test]
async fn a_failure_quotes_the_last_lines_of_stderr_without_colours() {
    let fx = Fixture::new();
    let p = Process::new(ProcessSpec {
        shell: Some(
            "for i in 1 2 3 4 5 6 7; do echo \"line $i\" >&2; done; printf '\\033[91mError: \\033[0mno such model\\n' >&2; exit 3"
                .into(),
        ),
        ..ProcessSpec::default()
    })
    .unwrap();
    let out = run(&p, &fx.spec()).await;
    assert_eq!(out.kind, OutcomeKind::Failed);
    let err = out.error.unwrap();
    assert!(
        err.starts_with("exited with code 3; stderr ends: "),
        "{err}"
    );
    assert!(
        err.ends_with("line 4 | line 5 | line 6 | line 7 | Error: no such model"),
        "{err}"
    );
    assert!(!err.contains('\u{1b}'), "{err:?}");
}

#[tokio::test]
async fn a_program_that_takes_no_prompt_on_stdin_reads_nothing_there() {
    let fx = Fixture::new();
    let p = Process::new(ProcessSpec {
        shell: Some("wc -c".into()),
        stdin: downbeat_engine::executor::Stdin::Empty,
        ..ProcessSpec::default()
    })
    .unwrap();
    let out = run(&p, &fx.spec()).await;
    assert_eq!(out.kind, OutcomeKind::Succeeded, "{:?}", out.error);
    assert_eq!(stdout_of(&out).trim(), "0");
}
