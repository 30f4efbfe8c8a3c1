//! What an agent did, readable: an attempt's output rendered line by line by its agent's
//! profile (messages, tool calls, errors), or as it is for other programs; followed live while
//! the attempt runs. The raw stream stays beside it in the attempt directory.

use std::path::PathBuf;
use std::time::Duration;

use downbeat_core::ids::TaskId;
use downbeat_engine::executor::agent::{AgentKind, read_record};
use downbeat_engine::executor::files;
use tokio_util::sync::CancellationToken;

use crate::error::Error;
use crate::project::Project;

/// Which attempt's output, and how to render it.
#[derive(Debug, Clone)]
pub struct LogSource {
    pub task: TaskId,
    /// 1 for the first attempt.
    pub attempt: u32,
    pub dir: PathBuf,
    /// The agent whose profile renders it (`None`: lines as they are).
    pub agent: Option<AgentKind>,
}

impl LogSource {
    /// One raw line as people should read it (`None`: nothing worth showing).
    pub fn render(&self, line: &str) -> Option<String> {
        match self.agent {
            Some(k) => k.render_line(line),
            None if line.trim().is_empty() => None,
            None => Some(line.to_owned()),
        }
    }

    pub fn stdout(&self) -> PathBuf {
        self.dir.join(files::STDOUT)
    }

    pub fn stderr(&self) -> PathBuf {
        self.dir.join(files::STDERR)
    }
}

/// The output of attempt `attempt` of task `q` (default: its latest).
pub async fn source(p: &Project, q: &str, attempt: Option<u32>) -> Result<LogSource, Error> {
    let id = crate::tasks::resolve(p, q).await?;
    let attempts = p.store.attempts(id).await?;
    let number = match attempt {
        Some(0) => return Err(Error::invalid("attempts are numbered from 1")),
        Some(n) if attempts.iter().any(|a| a.number == n) => n,
        Some(n) => {
            return Err(Error::not_found(format!(
                "task {id} has no attempt {n} ({} so far)",
                attempts.len()
            )));
        }
        None => attempts.iter().map(|a| a.number).max().ok_or_else(|| {
            Error::not_found(format!("task {id} has not run yet")).with_hint(
                "`downbeat run` starts it; `downbeat logs` then shows what its agent does",
            )
        })?,
    };
    let dir = p
        .dir()
        .join("runs")
        .join(id.to_string())
        .join(number.to_string());
    let agent = read_record(&dir).and_then(|r| r.agent);
    Ok(LogSource {
        task: id,
        attempt: number,
        dir,
        agent,
    })
}

/// Whether the attempt has ended (its ledger row is closed).
async fn ended(p: &Project, s: &LogSource) -> Result<bool, Error> {
    Ok(p.store
        .attempts(s.task)
        .await?
        .iter()
        .find(|a| a.number == s.attempt)
        .is_none_or(|a| a.ended_at.is_some()))
}

/// Hands every complete line of the attempt's stdout to `on_line`, from the start; with
/// `follow`, goes on as the file grows until the attempt ends (or `cancel`).
pub async fn read(
    p: &Project,
    s: &LogSource,
    follow: bool,
    cancel: &CancellationToken,
    on_line: &mut (dyn FnMut(&str) + Send),
) -> Result<(), Error> {
    let path = s.stdout();
    let mut offset = 0usize;
    let mut partial = String::new();
    loop {
        // Read before asking whether it ended, so nothing written before the end is missed.
        let done = !follow || ended(p, s).await?;
        if let Ok(bytes) = std::fs::read(&path)
            && bytes.len() > offset
        {
            partial.push_str(&String::from_utf8_lossy(&bytes[offset..]));
            offset = bytes.len();
            while let Some(i) = partial.find('\n') {
                let line: String = partial.drain(..=i).collect();
                on_line(line.trim_end_matches(['\n', '\r']));
            }
        }
        if done || cancel.is_cancelled() {
            if !partial.is_empty() {
                on_line(&partial);
            }
            return Ok(());
        }
        tokio::select! {
            () = cancel.cancelled() => {}
            () = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
}
