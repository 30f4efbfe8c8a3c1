//! What a drafting agent is told about the project besides the goal: the repository's layout
//! (a bounded file listing) and its memory files (`CLAUDE.md`, `AGENTS.md`, bounded). Reads
//! files and asks git for the listing; blocking, so callers run it off the async threads.
//!
//! Must never list what git ignores when git can say, nor anything under `.downbeat/`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// At most this many paths are listed.
pub const LAYOUT_MAX: usize = 300;

/// At most this many bytes of each memory file are shown.
pub const MEMORY_MAX: usize = 16 * 1024;

/// The memory files looked for at the project root, in this order.
pub const MEMORY_FILES: [&str; 2] = ["CLAUDE.md", "AGENTS.md"];

/// Paths counted beyond the listing stop here (the count shown is then "at least").
const COUNT_MAX: usize = 100_000;

/// Directories a listing without git skips (besides hidden ones).
const SKIPPED: [&str; 4] = ["target", "node_modules", "__pycache__", "dist"];

/// The repository as the prompt shows it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Layout {
    /// Sorted paths relative to the root, at most [`LAYOUT_MAX`].
    pub paths: Vec<String>,
    /// How many there are in all (up to the count's cap).
    pub total: usize,
}

/// A memory file: its name, its text (at most [`MEMORY_MAX`] bytes), and whether it was cut.
#[derive(Debug, Clone, PartialEq)]
pub struct Memory {
    pub name: String,
    pub text: String,
    pub clipped: bool,
}

/// The repository's files: git's own listing (tracked and untracked, ignoring what it
/// ignores) when `root` is in a work tree, else a walk that skips hidden and build
/// directories.
pub fn layout(root: &Path) -> Layout {
    let mut paths = git_files(root).unwrap_or_else(|| walk(root));
    paths.retain(|p| !p.starts_with(".downbeat/") && !p.is_empty());
    paths.sort();
    paths.dedup();
    let total = paths.len();
    paths.truncate(LAYOUT_MAX);
    Layout { paths, total }
}

/// The memory files present at the root.
pub fn memory(root: &Path) -> Vec<Memory> {
    MEMORY_FILES
        .iter()
        .filter_map(|name| {
            let bytes = std::fs::read(root.join(name)).ok()?;
            let (text, clipped) = clip_bytes(&bytes, MEMORY_MAX);
            Some(Memory {
                name: (*name).to_owned(),
                text,
                clipped,
            })
        })
        .collect()
}

/// The first `max` bytes of `bytes` as text, cut at a character boundary.
pub fn clip_bytes(bytes: &[u8], max: usize) -> (String, bool) {
    let text = String::from_utf8_lossy(bytes);
    if text.len() <= max {
        return (text.into_owned(), false);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (text[..end].to_owned(), true)
}

/// `git ls-files` of the work tree `root` is in, relative to `root`; `None` outside one or
/// when git cannot be run.
fn git_files(root: &Path) -> Option<Vec<String>> {
    let mut cmd = Command::new("git");
    cmd.arg("-C")
        .arg(root)
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::null());
    // The caller's redirections would list another repository.
    for var in ["GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"] {
        cmd.env_remove(var);
    }
    let out = cmd.output().ok()?;
    if !out.status.success() {
        return None;
    }
    Some(
        out.stdout
            .split(|b| *b == 0)
            .filter(|p| !p.is_empty())
            .take(COUNT_MAX)
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect(),
    )
}

/// Every regular file under `root`, skipping hidden entries and build directories, with an
/// explicit stack (no recursion).
fn walk(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack: Vec<PathBuf> = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') || SKIPPED.contains(&name.as_ref()) {
                continue;
            }
            let Ok(kind) = e.file_type() else { continue };
            let path = e.path();
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file()
                && let Ok(rel) = path.strip_prefix(root)
            {
                out.push(rel.to_string_lossy().into_owned());
                if out.len() >= COUNT_MAX {
                    return out;
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_walk_skips_hidden_and_build_directories_and_is_bounded() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        for f in [
            "src/main.rs",
            "README.md",
            "target/x",
            ".git/config",
            ".downbeat/c",
        ] {
            std::fs::create_dir_all(r.join(f).parent().unwrap()).unwrap();
            std::fs::write(r.join(f), "x").unwrap();
        }
        let mut paths = walk(r);
        paths.sort();
        assert_eq!(paths, vec!["README.md", "src/main.rs"]);
        for i in 0..(LAYOUT_MAX + 5) {
            std::fs::write(r.join(format!("src/f{i:04}.rs")), "").unwrap();
        }
        // Outside a work tree git fails and the walk answers.
        let l = layout(r);
        assert_eq!(l.paths.len(), LAYOUT_MAX);
        assert_eq!(l.total, LAYOUT_MAX + 7);
    }

    #[test]
    fn memory_files_are_cut_at_a_character_boundary() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("AGENTS.md"), "é".repeat(MEMORY_MAX)).unwrap();
        let m = memory(d.path());
        assert_eq!(m.len(), 1);
        assert!(m[0].clipped);
        assert!(m[0].text.len() <= MEMORY_MAX);
        assert!(m[0].text.chars().all(|c| c == 'é'));
    }
}
