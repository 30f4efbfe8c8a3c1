//! The progress of a run as the CLI shows it: bars and a line per running task on a terminal,
//! plain lines otherwise, JSON events with `--json`.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::time::Duration;

use downbeat_engine::run::RunEvent;
use tokio::sync::mpsc;

use crate::output::{note, outln};
use crate::style::{On, Tone, paint};

/// A task whose attempt failed for good during the run, to be told again at the end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub task: String,
    pub title: String,
    pub error: Option<String>,
}

/// Shows the run's events until the run ends; returns the tasks that failed for good. With
/// `runs` (`--verbose`: the project's attempt directories), each start says where its output
/// goes.
pub async fn show_events(
    rx: mpsc::UnboundedReceiver<RunEvent>,
    j: bool,
    runs: Option<std::path::PathBuf>,
) -> Vec<Failure> {
    let tty = std::io::stderr().is_terminal() && !j && !crate::output::quiet();
    show_events_on(rx, j, tty.then(indicatif::ProgressDrawTarget::stderr), runs).await
}

/// [`show_events`] with the bars drawn on `bars_on` (`None`: a line per event on stderr).
async fn show_events_on(
    mut rx: mpsc::UnboundedReceiver<RunEvent>,
    j: bool,
    bars_on: Option<indicatif::ProgressDrawTarget>,
    runs: Option<std::path::PathBuf>,
) -> Vec<Failure> {
    let tty = bars_on.is_some() && !j;
    let mp = indicatif::MultiProgress::with_draw_target(
        bars_on.unwrap_or_else(indicatif::ProgressDrawTarget::hidden),
    );
    let overall = tty.then(|| {
        let b = mp.add(indicatif::ProgressBar::new(0));
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:30} {pos}/{len} done · {elapsed} · ETA {eta} · {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    });
    let mut bars: HashMap<String, indicatif::ProgressBar> = HashMap::new();
    let mut failures: Vec<Failure> = Vec::new();
    while let Some(e) = rx.recv().await {
        if let RunEvent::AttemptFinished {
            task,
            title,
            status,
            error,
            ..
        } = &e
        {
            // A later attempt may succeed after all (a retry, a new run): the last word counts.
            failures.retain(|f| &f.task != task);
            if status == "failed" {
                failures.push(Failure {
                    task: task.clone(),
                    title: title.clone(),
                    error: error.clone(),
                });
            }
        }
        if j {
            if let Ok(s) = serde_json::to_string(&e) {
                outln(&s);
            }
            continue;
        }
        let mut line = describe(&e);
        if let (Some(dir), RunEvent::AttemptStarted { task, attempt, .. }) = (&runs, &e) {
            let at = dir.join(task).join(attempt.to_string());
            line.push_str(&format!("\n         output: {}", at.display()));
        }
        match (&overall, &e) {
            (Some(o), RunEvent::Started { pending, .. }) => {
                // Work may have completed before the run had its whole graph.
                o.set_length(*pending as u64 + o.position());
            }
            (
                Some(_),
                RunEvent::AttemptStarted {
                    task,
                    title,
                    attempt,
                    executor,
                },
            ) => {
                let b = mp.add(indicatif::ProgressBar::new_spinner());
                b.set_style(
                    indicatif::ProgressStyle::with_template("  {spinner} {elapsed:>4} {msg}")
                        .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
                );
                b.enable_steady_tick(Duration::from_millis(120));
                b.set_message(format!("{task} {title} (attempt {attempt}, {executor})"));
                bars.insert(task.clone(), b);
                if runs.is_some() {
                    let _ = mp.println(&line);
                }
            }
            (Some(o), RunEvent::AttemptFinished { task, status, .. }) => {
                if let Some(b) = bars.remove(task) {
                    b.finish_and_clear();
                    mp.remove(&b);
                }
                if status == "completed" {
                    o.inc(1);
                }
                let _ = mp.println(line);
            }
            (Some(o), RunEvent::Finished(_)) => {
                o.finish_and_clear();
                note(&line);
            }
            (Some(_), _) => {
                let _ = mp.println(line);
            }
            (None, _) => note(&line),
        }
        if let Some(o) = &overall {
            let failed = if failures.is_empty() {
                String::new()
            } else {
                format!(" · {} failed", failures.len())
            };
            o.set_message(format!("{} running{failed}", bars.len()));
        }
    }
    failures
}

/// `1.5s`, `2m05s`, `1h02m`: a duration as people read it.
pub fn human(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..60 => format!("{:.1}s", ms as f64 / 1000.0),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// The word that starts an attempt's line, padded to a column, in its colour.
fn label(word: &str, tone: Tone) -> String {
    let pad = " ".repeat(9usize.saturating_sub(word.len()).max(1));
    format!("{}{pad}", paint(word, tone, On::Err))
}

fn describe(e: &RunEvent) -> String {
    match e {
        RunEvent::Started {
            ready,
            running: 0,
            pending,
            concurrency,
        } => format!("run: {pending} task(s) to do, {ready} ready, up to {concurrency} at once"),
        RunEvent::Started {
            ready,
            running,
            pending,
            concurrency,
        } => format!(
            "run: {pending} task(s) to do, {running} started and {ready} more ready, up to {concurrency} at once"
        ),
        RunEvent::Requeued { task, reason } => {
            format!("{}{task}: {reason}", label("requeued", Tone::Warn))
        }
        RunEvent::OrphansKilled { count } => format!(
            "{}{count} agent process(es) a dead runner left behind",
            label("killed", Tone::Warn)
        ),
        RunEvent::AttemptStarted {
            task,
            title,
            attempt,
            executor,
        } => format!(
            "{}{task} {title} (attempt {attempt}, {executor})",
            label("started", Tone::Active)
        ),
        RunEvent::AttemptFinished {
            task,
            title,
            status,
            error,
            millis,
            ..
        } => finished_line(task, title, status, error.as_deref(), *millis),
        RunEvent::Retrying {
            task,
            attempt,
            in_ms,
            ..
        } => format!(
            "{}{task}: attempt {attempt} in {}",
            label("retry", Tone::Warn),
            human(*in_ms)
        ),
        RunEvent::LeaseLost { task } => format!(
            "{}{task}: its lease was taken away (cancelled, reopened or expired); its agent is stopped",
            label("lost", Tone::Bad)
        ),
        RunEvent::Flag {
            task,
            flag,
            action,
            detail,
        } => format!(
            "{}{flag} from {task}: {action} — {detail}",
            label("flag", Tone::Warn)
        ),
        RunEvent::Discovered {
            task,
            new_task,
            title,
        } => format!(
            "{}{new_task} {title} (discovered by {task})",
            label("added", Tone::Active)
        ),
        RunEvent::Cancelled { task, reason } => {
            format!("{}{task}: {reason}", label("cancelled", Tone::Dim))
        }
        RunEvent::Integrated {
            task,
            state,
            commit,
            files,
            conflicts,
        } => integrated_line(task, state, commit.as_deref(), *files, conflicts),
        RunEvent::Paused {
            hold,
            until: Some(until),
            reason,
        } => format!(
            "{}nothing else starts until {until} is done (hold {hold}: {reason})",
            label("paused", Tone::Held)
        ),
        RunEvent::Paused {
            hold,
            until: None,
            reason,
        } => format!(
            "{}nothing new starts until hold {hold} is released with `downbeat unpause` ({reason})",
            label("paused", Tone::Held)
        ),
        RunEvent::Resumed => paint("resumed", Tone::Active, On::Err),
        RunEvent::Stopping { reason } => format!("stopping: {reason}"),
        RunEvent::Finished(s) => summary_line(s),
    }
}

fn finished_line(task: &str, title: &str, status: &str, error: Option<&str>, ms: u64) -> String {
    let err = error.map(|e| format!(": {e}")).unwrap_or_default();
    match status {
        // An interrupted run stops its attempts and puts their tasks back.
        "pending" => format!(
            "{}{task} {title} after {}: back to pending, the run was interrupted",
            label("stopped", Tone::Warn),
            human(ms)
        ),
        _ => {
            let tone = match status {
                "completed" => Tone::Good,
                "failed" => Tone::Bad,
                "retrying" => Tone::Warn,
                _ => Tone::Dim,
            };
            format!(
                "{}{task} {title} in {}{err}",
                label(status, tone),
                human(ms)
            )
        }
    }
}

fn integrated_line(
    task: &str,
    state: &str,
    commit: Option<&str>,
    files: u32,
    conflicts: &[String],
) -> String {
    match state {
        "merged" => format!(
            "{}{task} into the integration branch ({files} file(s)){}",
            label("merged", Tone::Good),
            commit
                .map(|c| format!(" as {}", &c[..c.len().min(10)]))
                .unwrap_or_default()
        ),
        "unchanged" => format!("{}{task}: it changed nothing", label("merged", Tone::Good)),
        "resolving" => format!(
            "{}{task} in {}: a resolver task integrates it",
            label("conflict", Tone::Bad),
            conflicts.join(", ")
        ),
        _ => format!(
            "{}{task} in {}",
            label("conflict", Tone::Bad),
            conflicts.join(", ")
        ),
    }
}

fn summary_line(s: &downbeat_engine::run::RunSummary) -> String {
    let count = |n: u64, word: &str, tone: Tone| crate::style::count(n, word, tone, On::Err);
    let head = if s.interrupted {
        "run interrupted after"
    } else {
        "run finished in"
    };
    let stopped = if s.stopped > 0 {
        format!(
            ", {} (back to pending)",
            count(s.stopped, "stopped", Tone::Warn)
        )
    } else {
        String::new()
    };
    format!(
        "{head} {}: {}, {}, {} retried, {}{stopped}, {} not done",
        human(s.millis),
        count(s.completed, "completed", Tone::Good),
        count(s.failed, "failed", Tone::Bad),
        s.retried,
        count(s.cancelled, "cancelled", Tone::Dim),
        s.remaining
    )
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use downbeat_engine::executor::OutcomeKind;
    use indicatif::{InMemoryTerm, ProgressDrawTarget};

    use super::*;

    fn started(task: &str, title: &str) -> RunEvent {
        RunEvent::AttemptStarted {
            task: task.into(),
            title: title.into(),
            attempt: 1,
            executor: "work".into(),
        }
    }

    /// Waits until the screen shows everything in `want`; returns the screen.
    async fn screen_with(term: &InMemoryTerm, want: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let s = term.contents();
            if want.iter().all(|w| s.contains(w)) {
                return s;
            }
            assert!(Instant::now() < deadline, "never showed {want:?}:\n{s}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn a_terminal_shows_an_overall_bar_and_a_line_per_running_task() {
        let term = InMemoryTerm::new(12, 100);
        let (tx, rx) = mpsc::unbounded_channel();
        let shown = tokio::spawn(show_events_on(
            rx,
            false,
            Some(ProgressDrawTarget::term_like(Box::new(term.clone()))),
            None,
        ));
        tx.send(RunEvent::Started {
            ready: 2,
            running: 0,
            pending: 3,
            concurrency: 2,
        })
        .unwrap();
        tx.send(started("t1", "write the parser")).unwrap();
        tx.send(started("t2", "test the parser")).unwrap();
        let s = screen_with(
            &term,
            &[
                "0/3 done · 0s · ETA",
                "· 2 running",
                "t1 write the parser (attempt 1, work)",
                "t2 test the parser (attempt 1, work)",
            ],
        )
        .await;
        assert!(!s.contains("started  t1"), "a bar, not a line:\n{s}");
        tx.send(RunEvent::AttemptFinished {
            task: "t1".into(),
            title: "write the parser".into(),
            attempt: 1,
            outcome: OutcomeKind::Succeeded,
            status: "completed".into(),
            error: None,
            millis: 1500,
        })
        .unwrap();
        // The finished task leaves its bar for a line above the bars; the overall bar moves.
        let s = screen_with(
            &term,
            &[
                "completed t1 write the parser in 1.5s",
                "1/3 done · ",
                "· 1 running",
            ],
        )
        .await;
        assert!(!s.contains("t1 write the parser (attempt"), "{s}");
        assert!(s.contains("t2 test the parser (attempt 1, work)"), "{s}");
        // A failure is counted on the bar and told again at the end.
        tx.send(RunEvent::AttemptFinished {
            task: "t2".into(),
            title: "test the parser".into(),
            attempt: 1,
            outcome: OutcomeKind::Failed,
            status: "failed".into(),
            error: Some("exited with code 1".into()),
            millis: 65_000,
        })
        .unwrap();
        let s = screen_with(
            &term,
            &[
                "failed   t2 test the parser in 1m05s: exited with code 1",
                "· 0 running · 1 failed",
            ],
        )
        .await;
        assert!(s.contains("1/3 done"), "{s}");
        drop(tx);
        let failures = shown.await.unwrap();
        assert_eq!(
            failures,
            [Failure {
                task: "t2".into(),
                title: "test the parser".into(),
                error: Some("exited with code 1".into()),
            }]
        );
    }

    #[tokio::test]
    async fn json_mode_draws_no_bars() {
        let term = InMemoryTerm::new(12, 100);
        let (tx, rx) = mpsc::unbounded_channel();
        let shown = tokio::spawn(show_events_on(
            rx,
            true,
            Some(ProgressDrawTarget::term_like(Box::new(term.clone()))),
            None,
        ));
        tx.send(started("t1", "a")).unwrap();
        drop(tx);
        shown.await.unwrap();
        assert_eq!(term.contents().trim(), "");
    }

    #[test]
    fn lines_say_what_happened_in_words_and_relative_times() {
        let retry = describe(&RunEvent::Retrying {
            task: "t1".into(),
            attempt: 2,
            at: "2026-12-03T10:00:04Z".into(),
            in_ms: 4_000,
        });
        assert_eq!(retry, "retry    t1: attempt 2 in 4.0s");
        let stopped = describe(&RunEvent::AttemptFinished {
            task: "t1".into(),
            title: "build".into(),
            attempt: 1,
            outcome: OutcomeKind::Cancelled,
            status: "pending".into(),
            error: Some("cancelled".into()),
            millis: 1_200,
        });
        assert_eq!(
            stopped,
            "stopped  t1 build after 1.2s: back to pending, the run was interrupted"
        );
        let summary = describe(&RunEvent::Finished(downbeat_engine::run::RunSummary {
            completed: 3,
            stopped: 2,
            remaining: 5,
            interrupted: true,
            millis: 3_100,
            ..Default::default()
        }));
        assert_eq!(
            summary,
            "run interrupted after 3.1s: 3 completed, 0 failed, 0 retried, 0 cancelled, 2 stopped (back to pending), 5 not done"
        );
        let started = describe(&RunEvent::Started {
            ready: 0,
            running: 4,
            pending: 10,
            concurrency: 4,
        });
        assert_eq!(
            started,
            "run: 10 task(s) to do, 4 started and 0 more ready, up to 4 at once"
        );
        assert_eq!(human(125_000), "2m05s");
        assert_eq!(human(3_720_000), "1h02m");
    }
}
