//! Running `git`: one command at a time in one directory, output captured, never a prompt,
//! identity given on the command line (a machine without a git identity still commits), and
//! the caller's `GIT_*` variables kept out (they would point git at another repository).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Why a git command failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GitError {
    #[error("git is not installed or cannot be run: {0}")]
    Missing(String),
    #[error("`git {args}` failed in {dir}: {message}")]
    Failed {
        args: String,
        dir: String,
        message: String,
    },
}

/// Variables of the caller's environment that would redirect git.
const REDIRECTS: &[&str] = &[
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
];

/// Who commits: the role that did the work as author, Downbeat as committer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub author: String,
}

impl Identity {
    pub fn downbeat() -> Self {
        Self {
            author: "Downbeat".into(),
        }
    }

    pub fn role(role: Option<&str>) -> Self {
        Self {
            author: match role {
                Some(r) => format!("Downbeat ({r})"),
                None => "Downbeat".into(),
            },
        }
    }
}

/// Email of every commit Downbeat makes: the author's name says who did the work.
pub const EMAIL: &str = "downbeat@localhost";

/// git in one directory.
#[derive(Debug, Clone)]
pub struct Git {
    dir: PathBuf,
}

impl Git {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn command(&self, args: &[&str], who: Option<&Identity>) -> Command {
        let mut c = Command::new("git");
        c.current_dir(&self.dir)
            .args([
                "-c",
                "core.quotepath=off",
                "-c",
                "advice.detachedHead=false",
            ])
            .args(args)
            .stdin(Stdio::null())
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("LC_ALL", "C");
        for v in REDIRECTS {
            c.env_remove(v);
        }
        if let Some(who) = who {
            c.env("GIT_AUTHOR_NAME", &who.author)
                .env("GIT_AUTHOR_EMAIL", EMAIL)
                .env("GIT_COMMITTER_NAME", "Downbeat")
                .env("GIT_COMMITTER_EMAIL", EMAIL);
        }
        c
    }

    /// Runs git and returns its output whatever its exit status.
    pub fn output(&self, args: &[&str], who: Option<&Identity>) -> Result<Output, GitError> {
        self.command(args, who)
            .output()
            .map_err(|e| GitError::Missing(e.to_string()))
    }

    /// Runs git; a non-zero exit is an error naming the command and git's message.
    pub fn run(&self, args: &[&str]) -> Result<String, GitError> {
        self.run_as(args, None)
    }

    /// [`Git::run`] with an identity for the commits it makes.
    pub fn run_as(&self, args: &[&str], who: Option<&Identity>) -> Result<String, GitError> {
        let out = self.output(args, who)?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_owned())
        } else {
            Err(self.failed(args, &out))
        }
    }

    /// Whether git exits 0 (a question such as `merge-base --is-ancestor`).
    pub fn check(&self, args: &[&str]) -> Result<bool, GitError> {
        Ok(self.output(args, None)?.status.success())
    }

    pub fn failed(&self, args: &[&str], out: &Output) -> GitError {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let message = stderr
            .lines()
            .chain(stdout.lines())
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .take(6)
            .collect::<Vec<_>>()
            .join("; ");
        GitError::Failed {
            args: args.join(" "),
            dir: self.dir.display().to_string(),
            message: if message.is_empty() {
                format!("exit status {}", out.status.code().unwrap_or(-1))
            } else {
                message
            },
        }
    }

    /// The commit a revision names, if it names one.
    pub fn commit_of(&self, rev: &str) -> Result<Option<String>, GitError> {
        let spec = format!("{rev}^{{commit}}");
        let out = self.output(&["rev-parse", "--verify", "--quiet", &spec], None)?;
        Ok(out
            .status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned()))
    }
}

/// Files changed, lines added and removed, from `git diff --shortstat`.
pub fn parse_shortstat(s: &str) -> (u32, u32, u32) {
    let mut out = (0, 0, 0);
    for part in s.split(',') {
        let part = part.trim();
        let n = part
            .split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        if part.contains("file") {
            out.0 = n;
        } else if part.contains("insertion") {
            out.1 = n;
        } else if part.contains("deletion") {
            out.2 = n;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortstat_reads_every_form_git_prints() {
        assert_eq!(
            parse_shortstat(" 3 files changed, 10 insertions(+), 2 deletions(-)"),
            (3, 10, 2)
        );
        assert_eq!(
            parse_shortstat(" 1 file changed, 1 insertion(+)"),
            (1, 1, 0)
        );
        assert_eq!(
            parse_shortstat(" 1 file changed, 4 deletions(-)"),
            (1, 0, 4)
        );
        assert_eq!(parse_shortstat(""), (0, 0, 0));
    }
}
