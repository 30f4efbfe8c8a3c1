//! What the parts of `mcp install` and `agents export` share: the server entry, what happened
//! to a file, and reading and writing files atomically.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Kind};

/// What happened to a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Created,
    Updated,
    Unchanged,
    Skipped,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Updated => "updated",
            Self::Unchanged => "unchanged",
            Self::Skipped => "skipped",
        }
    }
}

/// The server entry to write: what the client starts.
pub struct Server {
    pub name: String,
    pub command: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
}

/// Server names end up in tool names (`mcp__NAME__claim`) and TOML table names.
pub fn check_server_name(name: &str) -> Result<(), Error> {
    if !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "server name `{name}` must be letters, digits, `-` or `_`"
        )))
    }
}

pub fn canonical(p: PathBuf) -> PathBuf {
    std::fs::canonicalize(&p).unwrap_or(p)
}

/// A path as shown to people: relative to the project root when it is inside it.
pub fn shown(path: &Path, root: &Path) -> String {
    path.strip_prefix(root)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| path.display().to_string())
}

pub fn malformed(path: &Path, why: &str) -> Error {
    Error::invalid(format!("{}: {why}", path.display())).with_hint(
        "fix the file or move it away, then run the command again; downbeat left it untouched",
    )
}

pub fn read_optional(path: &Path) -> Result<Option<String>, Error> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
            Err(malformed(path, "it is not UTF-8 text"))
        }
        Err(e) => Err(Error::new(
            Kind::Internal,
            format!("cannot read {}: {e}", path.display()),
        )),
    }
}

/// Writes a file atomically: a temp file in the same directory, flushed, then renamed over
/// the target (through a symlink to the file it points to). Keeps an existing file's
/// permissions.
pub fn write_atomic(path: &Path, text: &str) -> Result<(), Error> {
    use std::io::Write as _;
    let fail = |what: &str, e: std::io::Error| {
        Error::new(
            Kind::Internal,
            format!("cannot {what} {}: {e}", path.display()),
        )
    };
    let target = match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            std::fs::canonicalize(path).map_err(|e| fail("follow the link", e))?
        }
        _ => path.to_owned(),
    };
    let dir = target
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| fail("create the directory of", e))?;
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.downbeat-{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        if let Ok(m) = std::fs::metadata(&target) {
            std::fs::set_permissions(&tmp, m.permissions())?;
        }
        std::fs::rename(&tmp, &target)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(fail("write", e));
    }
    Ok(())
}

/// The project an entry's arguments name with `--project DIR` (or `--project=DIR`).
pub fn project_arg(args: &[String]) -> Option<&str> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--project" {
            return it.next().map(String::as_str);
        }
        if let Some(v) = a.strip_prefix("--project=") {
            return Some(v);
        }
    }
    None
}
