//! The progress of a run as the CLI shows it: bars and a line per running task on a terminal,
//! plain lines otherwise, JSON events with `--json`.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::time::Duration;

use downbeat_engine::run::RunEvent;
use tokio::sync::mpsc;

use crate::output::{note, outln};

pub async fn show_events(rx: mpsc::UnboundedReceiver<RunEvent>, j: bool) {
    let tty = std::io::stderr().is_terminal() && !j && !crate::output::quiet();
    show_events_on(rx, j, tty.then(indicatif::ProgressDrawTarget::stderr)).await;
}

/// [`show_events`] with the bars drawn on `bars_on` (`None`: a line per event on stderr).
async fn show_events_on(
    mut rx: mpsc::UnboundedReceiver<RunEvent>,
    j: bool,
    bars_on: Option<indicatif::ProgressDrawTarget>,
) {
    let tty = bars_on.is_some() && !j;
    let mp = indicatif::MultiProgress::with_draw_target(
        bars_on.unwrap_or_else(indicatif::ProgressDrawTarget::hidden),
    );
    let overall = tty.then(|| {
        let b = mp.add(indicatif::ProgressBar::new(0));
        b.set_style(
            indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} done · {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    });
    let mut bars: HashMap<String, indicatif::ProgressBar> = HashMap::new();
    let mut total = 0u64;
    while let Some(e) = rx.recv().await {
        if j {
            if let Ok(s) = serde_json::to_string(&e) {
                outln(&s);
            }
            continue;
        }
        let line = describe(&e);
        match (&overall, &e) {
            (Some(o), RunEvent::Started { pending, .. }) => {
                total = *pending as u64;
                o.set_length(total);
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
            o.set_message(format!("{} running", bars.len()));
        }
    }
    let _ = total;
}

fn describe(e: &RunEvent) -> String {
    match e {
        RunEvent::Started {
            ready,
            pending,
            concurrency,
        } => format!("run: {pending} task(s) to do, {ready} ready, up to {concurrency} at once"),
        RunEvent::Requeued { task, reason } => format!("requeued {task}: {reason}"),
        RunEvent::OrphansKilled { count } => {
            format!("killed   {count} agent process(es) a dead runner left behind")
        }
        RunEvent::AttemptStarted {
            task,
            title,
            attempt,
            executor,
        } => format!("started  {task} {title} (attempt {attempt}, {executor})"),
        RunEvent::AttemptFinished {
            task,
            title,
            status,
            error,
            millis,
            ..
        } => {
            let err = error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default();
            format!(
                "{status:<10}{task} {title} in {:.1}s{err}",
                *millis as f64 / 1000.0
            )
        }
        RunEvent::Retrying { task, attempt, at } => {
            format!("retry    {task}: attempt {attempt} at {at}")
        }
        RunEvent::LeaseLost { task } => format!(
            "lost     {task}: its lease was taken away (cancelled, reopened or expired); its agent is stopped"
        ),
        RunEvent::Flag {
            task,
            flag,
            action,
            detail,
        } => format!("flag     {flag} from {task}: {action} — {detail}"),
        RunEvent::Discovered {
            task,
            new_task,
            title,
        } => format!("added    {new_task} {title} (discovered by {task})"),
        RunEvent::Cancelled { task, reason } => format!("cancelled {task}: {reason}"),
        RunEvent::Integrated {
            task,
            state,
            commit,
            files,
            conflicts,
        } => match state.as_str() {
            "merged" => format!(
                "merged   {task} into the integration branch ({files} file(s)){}",
                commit
                    .as_deref()
                    .map(|c| format!(" as {}", &c[..c.len().min(10)]))
                    .unwrap_or_default()
            ),
            "unchanged" => format!("merged   {task}: it changed nothing"),
            "resolving" => format!(
                "conflict {task} in {}: a resolver task integrates it",
                conflicts.join(", ")
            ),
            _ => format!("conflict {task} in {}", conflicts.join(", ")),
        },
        RunEvent::Paused {
            hold,
            until: Some(until),
            reason,
        } => format!("paused   nothing else starts until {until} is done (hold {hold}: {reason})"),
        RunEvent::Paused {
            hold,
            until: None,
            reason,
        } => format!(
            "paused   nothing new starts until hold {hold} is released with `downbeat unpause` ({reason})"
        ),
        RunEvent::Resumed => "resumed".into(),
        RunEvent::Stopping { reason } => format!("stopping: {reason}"),
        RunEvent::Finished(s) => format!(
            "run finished in {:.1}s: {} completed, {} failed, {} retried, {} cancelled, {} not done",
            s.millis as f64 / 1000.0,
            s.completed,
            s.failed,
            s.retried,
            s.cancelled,
            s.remaining
        ),
    }
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
        ));
        tx.send(RunEvent::Started {
            ready: 2,
            pending: 3,
            concurrency: 2,
        })
        .unwrap();
        tx.send(started("t1", "write the parser")).unwrap();
        tx.send(started("t2", "test the parser")).unwrap();
        let s = screen_with(
            &term,
            &[
                "0/3 done · 2 running",
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
                "1/3 done · 1 running",
            ],
        )
        .await;
        assert!(!s.contains("t1 write the parser (attempt"), "{s}");
        assert!(s.contains("t2 test the parser (attempt 1, work)"), "{s}");
        drop(tx);
        shown.await.unwrap();
    }

    #[tokio::test]
    async fn json_mode_draws_no_bars() {
        let term = InMemoryTerm::new(12, 100);
        let (tx, rx) = mpsc::unbounded_channel();
        let shown = tokio::spawn(show_events_on(
            rx,
            true,
            Some(ProgressDrawTarget::term_like(Box::new(term.clone()))),
        ));
        tx.send(started("t1", "a")).unwrap();
        drop(tx);
        shown.await.unwrap();
        assert_eq!(term.contents().trim(), "");
    }
}
