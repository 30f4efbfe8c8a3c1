//! Known secrets taken out of what agents leave behind: their captured output, their agent
//! record, and the error and summary that go into the ledger. A secret an agent was given
//! (an API key its CLI needs) or found can be echoed into its log; what the runner knows to be
//! secret is replaced by `***` before anyone reads it back.

use std::io::{Read, Write};
use std::path::Path;

/// What a secret is replaced with.
pub const MASK: &str = "***";

/// Secrets shorter than this are not looked for: they would match ordinary text.
pub const MIN_LEN: usize = 8;

/// The secrets worth looking for, longest first (so a secret containing another is masked
/// whole).
pub fn prepare(secrets: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut v: Vec<String> = secrets.into_iter().filter(|s| s.len() >= MIN_LEN).collect();
    v.sort_by_key(|s| std::cmp::Reverse(s.len()));
    v.dedup();
    v
}

/// `text` with every secret masked.
pub fn text(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_owned();
    for s in secrets {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), MASK);
        }
    }
    out
}

/// Masks every secret in the file at `path`, rewriting it (atomically) only when one is found.
/// A file that does not exist is left alone.
pub fn file(path: &Path, secrets: &[String]) -> std::io::Result<bool> {
    let Some(shortest) = secrets.iter().map(String::len).min() else {
        return Ok(false);
    };
    // Most attempts leave empty or short files: one stat instead of an open and a read.
    match std::fs::metadata(path) {
        Ok(m) if m.len() < shortest as u64 => return Ok(false),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    }
    let mut bytes = Vec::new();
    match std::fs::File::open(path) {
        Ok(mut f) => f.read_to_end(&mut bytes)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    let Some(masked) = mask_bytes(&bytes, secrets) else {
        return Ok(false);
    };
    let tmp = path.with_extension("scrub.tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&masked)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    Ok(true)
}

/// `bytes` with every secret masked; `None` when there is none.
fn mask_bytes(bytes: &[u8], secrets: &[String]) -> Option<Vec<u8>> {
    let mut out: Option<Vec<u8>> = None;
    for s in secrets {
        let cur = out.as_deref().unwrap_or(bytes);
        let needle = s.as_bytes();
        if !contains(cur, needle) {
            continue;
        }
        let mut next = Vec::with_capacity(cur.len());
        let mut i = 0;
        while i < cur.len() {
            if cur[i..].starts_with(needle) {
                next.extend_from_slice(MASK.as_bytes());
                i += needle.len();
            } else {
                next.push(cur[i]);
                i += 1;
            }
        }
        out = Some(next);
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_longest_first_and_short_ones_ignored() {
        let s = prepare(["sk-ant-12345678".into(), "12345678".into(), "short".into()]);
        assert_eq!(s, ["sk-ant-12345678", "12345678"]);
        assert_eq!(
            text("key=sk-ant-12345678 and 12345678, short", &s),
            "key=*** and ***, short"
        );
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("stdout.log");
        std::fs::write(&p, "line 1\nexport KEY=sk-ant-12345678\n").unwrap();
        assert!(file(&p, &s).unwrap());
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            "line 1\nexport KEY=***\n"
        );
        assert!(!file(&p, &s).unwrap(), "nothing left to mask");
        assert!(!file(&dir.path().join("missing.log"), &s).unwrap());
    }
}
