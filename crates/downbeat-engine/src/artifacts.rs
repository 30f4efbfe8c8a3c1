//! Content-addressed artifact storage under `.downbeat/artifacts/`.
//!
//! An agent names files relative to the workspace; each is checked to lie inside the workspace,
//! hashed (SHA-256) and copied to `artifacts/<first two hex digits>/<hash>`.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use downbeat_store::ArtifactRecord;

/// Why an artifact was refused.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("artifact `{path}` is outside the workspace {workspace}")]
    Outside { path: String, workspace: String },
    #[error("artifact `{path}`: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Stores `path` (relative to `workspace`, or absolute inside it) under `store_dir`.
pub fn store(
    workspace: &Path,
    store_dir: &Path,
    path: &str,
) -> Result<ArtifactRecord, ArtifactError> {
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
    let mut file = std::fs::File::open(&canon).map_err(io)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut size: i64 = 0;
    loop {
        let n = file.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as i64;
    }
    let hash: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let dir = store_dir.join(&hash[..2]);
    let target = dir.join(&hash);
    if !target.exists() {
        std::fs::create_dir_all(&dir).map_err(io)?;
        let tmp = dir.join(format!(".{hash}.tmp"));
        std::fs::copy(&canon, &tmp).map_err(io)?;
        std::fs::rename(&tmp, &target).map_err(io)?;
    }
    Ok(ArtifactRecord {
        path: rel.display().to_string(),
        size,
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
        let a = store(ws.path(), &store_dir, "report.md").unwrap();
        assert_eq!((a.path.as_str(), a.size), ("report.md", 5));
        assert_eq!(
            a.sha256,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert!(store_dir.join("2c").join(&a.sha256).exists());
        let outside = tempfile::NamedTempFile::new().unwrap();
        let err = store(ws.path(), &store_dir, outside.path().to_str().unwrap()).unwrap_err();
        assert!(err.to_string().contains("outside the workspace"), "{err}");
        let err = store(ws.path(), &store_dir, "../../etc/passwd").unwrap_err();
        assert!(
            matches!(
                err,
                ArtifactError::Outside { .. } | ArtifactError::Io { .. }
            ),
            "{err}"
        );
        assert!(store(ws.path(), &store_dir, "missing.txt").is_err());
    }
}
