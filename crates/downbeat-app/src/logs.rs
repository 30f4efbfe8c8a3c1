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

    /// The prompt the attempt was given, if it was kept.
    pub fn prompt(&self) -> Option<String> {
        std::fs::read_to_string(self.dir.join(files::PROMPT)).ok()
    }
}

/// Output read from an offset on: what a page that follows an attempt asks for again and again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// Where the next read starts (after the last complete line returned).
    pub next: u64,
    /// Complete lines, rendered; lines with nothing worth showing are left out.
    pub lines: Vec<String>,
    /// Whether the attempt had ended when this was read (nothing more will come).
    pub ended: bool,
}

/// The rendered complete lines of the attempt's stdout from byte `from` on, at most `max_bytes`
/// of them (a line longer than that is cut).
pub async fn chunk(
    p: &Project,
    s: &LogSource,
    from: u64,
    max_bytes: usize,
) -> Result<Chunk, Error> {
    // Read before asking whether it ended, so nothing written before the end is missed.
    let ended = ended(p, s).await?;
    let path = s.stdout();
    let bytes = tokio::task::spawn_blocking(move || read_range(&path, from, max_bytes))
        .await
        .map_err(|e| Error::new(crate::error::Kind::Internal, e.to_string()))?;
    let mut lines = Vec::new();
    let mut used = 0usize;
    for piece in bytes.split_inclusive(|b| *b == b'\n') {
        let complete = piece.ends_with(b"\n");
        if !(complete || ended || piece.len() >= max_bytes) {
            break;
        }
        used += piece.len();
        let text = String::from_utf8_lossy(piece);
        if let Some(l) = s.render(text.trim_end_matches(['\n', '\r'])) {
            lines.push(l);
        }
    }
    Ok(Chunk {
        next: from + used as u64,
        lines,
        ended,
    })
}

fn read_range(path: &std::path::Path, from: u64, max: usize) -> Vec<u8> {
    use std::io::{Read as _, Seek as _};
    let Ok(mut f) = std::fs::File::open(path) else {
        return Vec::new();
    };
    if f.seek(std::io::SeekFrom::Start(from)).is_err() {
        return Vec::new();
    }
    let mut out = Vec::new();
    let _ = f.take(max as u64).read_to_end(&mut out);
    out
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

/// The last `n` lines worth showing of task `q`'s latest attempt: its stderr when it wrote
/// any, else its stdout rendered by the agent's profile (what a failure is told with). Reads
/// at most the last 64 KiB of each file.
pub async fn tail(p: &Project, q: &str, n: usize) -> Result<Vec<String>, Error> {
    let s = source(p, q, None).await?;
    const WINDOW: u64 = 64 * 1024;
    let last = |path: PathBuf| -> Vec<String> {
        let len = std::fs::metadata(&path).map_or(0, |m| m.len());
        let bytes = read_range(&path, len.saturating_sub(WINDOW), WINDOW as usize);
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(str::to_owned)
            .collect()
    };
    let mut lines: Vec<String> = last(s.stderr())
        .into_iter()
        .filter(|l| !l.trim().is_empty())
        .collect();
    if lines.is_empty() {
        lines = last(s.stdout())
            .iter()
            .filter_map(|l| s.render(l))
            .collect();
    }
    let skip = lines.len().saturating_sub(n);
    Ok(lines.split_off(skip))
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
