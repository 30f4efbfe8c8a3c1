//! Content-addressed artifact storage under `.downbeat/artifacts/`.
//!
//! An agent names files relative to the workspace; each is checked to lie inside the workspace,
//! hashed (SHA-256) and copied to `artifacts/<first two hex digits>/<hash>`.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use downbeat_store::ArtifactRecord;

/// The largest artifact stored when the configuration sets no limit (`[run] artifact_limit`).
pub const DEFAULT_LIMIT: u64 = 100 * 1024 * 1024;

/// Why an artifact was refused.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("artifact `{path}` is outside the workspace {workspace}")]
    Outside { path: String, workspace: String },
    #[error("artifact `{path}` is {kind}, not a regular file")]
    NotAFile { path: String, kind: &'static str },
    #[error("artifact `{path}` is larger than the limit of {limit} bytes (`[run] artifact_limit`)")]
    TooLarge { path: String, limit: u64 },
    #[error("artifact `{path}`: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// What a file that is not a regular one is, for the message.
fn kind_of(t: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt as _;
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a named pipe"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_block_device() || t.is_char_device() {
        "a device"
    } else {
        "not a regular file"
    }
}

/// A name for a copy in progress, unique within this process and among processes.
fn incoming_name() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!(".incoming-{}-{n}.tmp", std::process::id())
}

/// Stores `path` (relative to `workspace`, or absolute inside it) under `store_dir`: only a
/// regular file (a named pipe, a device or a socket could block for ever), of at most `limit`
/// bytes, read once — hashed while it is copied. Blocking: call it off the async threads.
pub fn store(
    workspace: &Path,
    store_dir: &Path,
    path: &str,
    limit: u64,
) -> Result<ArtifactRecord, ArtifactError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let io = |source| ArtifactError::Io {
        path: path.to_owned(),
        source,
    };
    let root = workspace.canonicalize().map_err(io)?;
    let full = if Path::new(path).is_absolute() {
        PathBuf::from(path)
    } else {
        root.join(path)
    };
    let canon = full.canonicalize().map_err(io)?;
    let rel = canon
        .strip_prefix(&root)
        .map_err(|_| ArtifactError::Outside {
            path: path.to_owned(),
            workspace: root.display().to_string(),
        })?;
    let not_a_file = |t: std::fs::FileType| ArtifactError::NotAFile {
        path: path.to_owned(),
        kind: kind_of(t),
    };
    let too_large = || ArtifactError::TooLarge {
        path: path.to_owned(),
        limit,
    };
    let meta = std::fs::metadata(&canon).map_err(io)?;
    if !meta.is_file() {
        return Err(not_a_file(meta.file_type()));
    }
    if meta.len() > limit {
        return Err(too_large());
    }
    // Opened without blocking, and checked again on the open file: one swapped for a pipe in
    // between is refused too.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open(&canon)
        .map_err(io)?;
    let opened = file.metadata().map_err(io)?;
    if !opened.is_file() {
        return Err(not_a_file(opened.file_type()));
    }
    std::fs::create_dir_all(store_dir).map_err(io)?;
    let tmp = store_dir.join(incoming_name());
    let copied = (|| {
        let mut out = std::fs::File::create(&tmp).map_err(io)?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut size: u64 = 0;
        let mut file = file.take(limit + 1);
        loop {
            let n = file.read(&mut buf).map_err(io)?;
            if n == 0 {
                break;
            }
            size += n as u64;
            if size > limit {
                return Err(too_large());
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n]).map_err(io)?;
        }
        out.sync_all().map_err(io)?;
        let hash: String = hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok((hash, size))
    })();
    let (hash, size) = match copied {
        Ok(x) => x,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    let dir = store_dir.join(&hash[..2]);
    let target = dir.join(&hash);
    if target.exists() {
        let _ = std::fs::remove_file(&tmp);
    } else {
        std::fs::create_dir_all(&dir).map_err(io)?;
        std::fs::rename(&tmp, &target).map_err(io)?;
    }
    Ok(ArtifactRecord {
        path: rel.display().to_string(),
        size: i64::try_from(size).unwrap_or(i64::MAX),
        sha256: hash,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_stored_by_content_and_escapes_are_refused() {
        let ws = tempfile::tempdir().unwrap();
        let store_dir = ws.path().join(".downbeat/artifacts");
        std::fs::write(ws.path().join("report.md"), "hello").unwrap();
        let a = store(ws.path(), &store_dir, "report.md", DEFAULT_LIMIT).unwrap();
        assert_eq!((a.path.as_str(), a.size), ("report.md", 5));
        assert_eq!(
            a.sha256,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert!(store_dir.join("2c").join(&a.sha256).exists());
        let outside = tempfile::NamedTempFile::new().unwrap();
        let err = store(
            ws.path(),
            &store_dir,
            outside.path().to_str().unwrap(),
            DEFAULT_LIMIT,
        )
        .unwrap_err();
        assert!(err.to_string().contains("outside the workspace"), "{err}");
        let err = store(ws.path(), &store_dir, "../../etc/passwd", DEFAULT_LIMIT).unwrap_err();
        assert!(
            matches!(
                err,
                ArtifactError::Outside { .. } | ArtifactError::Io { .. }
            ),
            "{err}"
        );
        assert!(store(ws.path(), &store_dir, "missing.txt", DEFAULT_LIMIT).is_err());
    }

    #[test]
    fn pipes_directories_and_files_over_the_limit_are_refused_at_once() {
        let ws = tempfile::tempdir().unwrap();
        let store_dir = ws.path().join(".downbeat/artifacts");
        let fifo = ws.path().join("pipe");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let err = store(ws.path(), &store_dir, "pipe", DEFAULT_LIMIT).unwrap_err();
        assert!(
            err.to_string()
                .contains("is a named pipe, not a regular file"),
            "{err}"
        );
        std::fs::create_dir(ws.path().join("sub")).unwrap();
        let err = store(ws.path(), &store_dir, "sub", DEFAULT_LIMIT).unwrap_err();
        assert!(err.to_string().contains("a directory"), "{err}");
        std::fs::write(ws.path().join("big.bin"), vec![7u8; 2048]).unwrap();
        let err = store(ws.path(), &store_dir, "big.bin", 1024).unwrap_err();
        assert!(
            err.to_string()
                .contains("larger than the limit of 1024 bytes"),
            "{err}"
        );
        // Nothing half-copied is left behind.
        let left: Vec<_> = std::fs::read_dir(&store_dir)
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "{left:?}");
        assert_eq!(
            store(ws.path(), &store_dir, "big.bin", 4096).unwrap().size,
            2048
        );
    }
}
