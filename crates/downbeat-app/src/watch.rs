//! Read models of a team at work, for live views (the web page): activity over time, failures
//! with the end of their errors, flags raised, a task's artifacts.

use std::collections::{HashMap, HashSet};

use downbeat_core::context::Artifact;
use downbeat_core::ids::TaskId;
use downbeat_core::time::{Millis, Timestamp};
use downbeat_store::EventQuery;

use crate::error::Error;
use crate::project::Project;

/// One minute of activity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Minute {
    /// The minute's start.
    pub at: Timestamp,
    /// Tasks that completed in it.
    pub completed: u32,
    /// The most tasks running at once in it.
    pub running: u32,
}

/// Activity per minute over the `minutes` before the latest event, oldest first; empty for a
/// project where nothing happened.
pub async fn activity(p: &Project, minutes: u32) -> Result<Vec<Minute>, Error> {
    let last = p.store.last_event_seq().await?;
    let Some(latest) = p
        .store
        .events(&EventQuery {
            after_seq: Some(last - 1),
            ..Default::default()
        })
        .await?
        .last()
        .map(|e| e.at)
    else {
        return Ok(Vec::new());
    };
    let minute = 60_000;
    let end = latest.0 - latest.0.rem_euclid(minute) + minute;
    let start = end - i64::from(minutes.max(1)) * minute;
    let events = p
        .store
        .events(&EventQuery {
            since: Some(Timestamp(start)),
            ..Default::default()
        })
        .await?;
    let status = |v: &Option<serde_json::Value>| {
        v.as_ref()
            .and_then(|v| v.get("status"))
            .and_then(|s| s.as_str())
            .map(str::to_owned)
    };
    // What ran when the window opened: the tasks whose first change in it left `running`.
    let mut seen: HashSet<&str> = HashSet::new();
    let mut running: HashSet<&str> = HashSet::new();
    for e in events.iter().filter(|e| e.action == "task.status") {
        if seen.insert(&e.entity) && status(&e.before).as_deref() == Some("running") {
            running.insert(&e.entity);
        }
    }
    let mut out: Vec<Minute> = (0..minutes.max(1))
        .map(|i| Minute {
            at: Timestamp(start + i64::from(i) * minute),
            completed: 0,
            running: 0,
        })
        .collect();
    let mut slot = 0usize;
    out[0].running = running.len() as u32;
    for e in events.iter().filter(|e| e.action == "task.status") {
        let i = usize::try_from((e.at.0 - start) / minute).unwrap_or(0);
        let i = i.min(out.len() - 1);
        while slot < i {
            slot += 1;
            out[slot].running = running.len() as u32;
        }
        match status(&e.after).as_deref() {
            Some("running") => {
                running.insert(&e.entity);
            }
            Some(s) => {
                running.remove(e.entity.as_str());
                if s == "completed" {
                    out[i].completed += 1;
                }
            }
            None => {}
        }
        out[i].running = out[i].running.max(running.len() as u32);
    }
    while slot + 1 < out.len() {
        slot += 1;
        out[slot].running = running.len() as u32;
    }
    Ok(out)
}

/// How often [`follow`] looks for new events.
const FOLLOW_POLL: std::time::Duration = std::time::Duration::from_millis(250);

/// Hands `on_events` every event after `after` (about `task` only, if given) as the log grows,
/// in order, until `cancel`. A database that is briefly away is asked again.
pub async fn follow(
    p: &Project,
    after: i64,
    task: Option<TaskId>,
    cancel: &tokio_util::sync::CancellationToken,
    on_events: &mut (dyn FnMut(&[downbeat_core::context::Event]) + Send),
) -> Result<(), Error> {
    let mut last = after;
    loop {
        if let Ok(events) = p
            .store
            .events(&EventQuery {
                after_seq: Some(last),
                task,
                limit: Some(1000),
                ..Default::default()
            })
            .await
            && let Some(e) = events.last()
        {
            last = e.seq;
            on_events(&events);
            if events.len() == 1000 {
                continue;
            }
        }
        tokio::select! {
            () = cancel.cancelled() => return Ok(()),
            () = tokio::time::sleep(FOLLOW_POLL) => {}
        }
    }
}

/// A failed task and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Failed {
    pub id: TaskId,
    pub title: String,
    /// The last lines of its last attempt's error, or its result.
    pub error: String,
    pub attempts: u32,
}

/// The last `lines` lines of `text`.
fn last_lines(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.trim_end().lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// `failed` tasks (at most `max`) with the end of their last error.
pub async fn failures(p: &Project, failed: &[TaskId], max: usize) -> Result<Vec<Failed>, Error> {
    let mut out = Vec::new();
    for &id in failed.iter().take(max) {
        let t = p.store.task(id).await?;
        let ledger = p.store.attempts(id).await?;
        let error = ledger
            .iter()
            .rev()
            .find_map(|a| a.error.clone())
            .or(t.result.clone())
            .unwrap_or_default();
        out.push(Failed {
            id,
            title: t.title,
            error: last_lines(&error, 6),
            attempts: t.attempts,
        });
    }
    Ok(out)
}

/// A flag raised by a task's report, and what became of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Raised {
    pub flag: String,
    /// The task that raised it.
    pub task: String,
    pub at: Timestamp,
    /// What the agent said about it.
    pub detail: String,
    /// `raised`, `handled` or `suppressed`.
    pub state: String,
    /// What the rules did, why nothing happened, or what handled it.
    pub note: String,
    /// The follow-up task whose completion handles it.
    pub follow_up: Option<String>,
}

/// The flags raised, newest first, at most `max`.
pub async fn flags(p: &Project, max: usize) -> Result<Vec<Raised>, Error> {
    let mut all = p
        .store
        .flags(&downbeat_store::FlagFilter::default())
        .await?;
    all.sort_by_key(|f| std::cmp::Reverse(f.raised_at));
    Ok(all
        .into_iter()
        .take(max)
        .map(|f| Raised {
            flag: f.flag,
            task: f.task.to_string(),
            at: f.raised_at,
            detail: f.detail,
            state: f.state.to_string(),
            note: f.note,
            follow_up: f.follow_up.map(|t| t.to_string()),
        })
        .collect())
}

/// The artifacts task `id` recorded.
pub async fn artifacts_of(p: &Project, id: TaskId) -> Result<Vec<Artifact>, Error> {
    Ok(p.store
        .artifacts()
        .await?
        .into_iter()
        .filter(|a| a.task == id)
        .collect())
}

/// Leaves done and in all under each objective's linked tasks, from a rollup.
pub fn objective_progress(
    tasks: &[TaskId],
    rollup: &HashMap<TaskId, downbeat_core::graph::Progress>,
) -> (u32, u32) {
    tasks
        .iter()
        .filter_map(|t| rollup.get(t))
        .fold((0, 0), |(d, n), pr| (d + pr.done, n + pr.total))
}

/// How long an attempt took, if it ended.
pub fn duration(started: Timestamp, ended: Option<Timestamp>) -> Option<Millis> {
    ended.map(|e| e.since(started))
}

#[cfg(test)]
mod tests {
    use super::last_lines;

    #[test]
    fn keeps_the_end_of_an_error() {
        assert_eq!(last_lines("a\nb\nc\n", 2), "b\nc");
        assert_eq!(last_lines("one", 5), "one");
        assert_eq!(last_lines("", 3), "");
    }
}
