//! The MCP server driven by the official MCP Python SDK client: runs
//! `tests/python/session_e2e.py` against the real binary over stdio.
//!
//! The interpreter is `$DOWNBEAT_TEST_PYTHON` (`.ci/run` points it at a virtual environment
//! with `tests/python/requirements.txt` installed), else `python3`. The test fails when the
//! SDK is not importable; `DOWNBEAT_SKIP_PYTHON=1` skips it on a machine without Python (CI
//! never sets it).

mod common;

use std::path::Path;
use std::process::Command;

const SETUP: &str = "run `.ci/run`, or `pip install -r crates/downbeat/tests/python/requirements.txt` \
     and point DOWNBEAT_TEST_PYTHON at that interpreter (DOWNBEAT_SKIP_PYTHON=1 skips this test \
     locally)";

#[test]
fn python_sdk_session_end_to_end() {
    if std::env::var("DOWNBEAT_SKIP_PYTHON").as_deref() == Ok("1") {
        eprintln!("DOWNBEAT_SKIP_PYTHON=1: the Python SDK end-to-end test is skipped");
        return;
    }
    let python = std::env::var("DOWNBEAT_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let probe = Command::new(&python)
        .args(["-c", "import mcp, anyio"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run the Python interpreter `{python}`: {e}; {SETUP}"));
    assert!(
        probe.status.success(),
        "the MCP Python SDK (`mcp`) is not importable with `{python}`: {}; {SETUP}",
        String::from_utf8_lossy(&probe.stderr)
            .lines()
            .last()
            .unwrap_or_default()
    );

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/session_e2e.py");
    let out = Command::new(&python)
        .arg(&script)
        .arg(common::bin())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{} failed ({}):\n{stdout}\n{stderr}",
        script.display(),
        out.status
    );
    assert!(stdout.contains("session_e2e: ok"), "{stdout}\n{stderr}");
}
