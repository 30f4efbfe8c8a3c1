//! Before a run: is each agent's program installed, and which version is it?

use std::time::Duration;

use serde::Serialize;

use super::profile::{AgentKind, short};

/// How long `PROGRAM --version` may take.
const VERSION_TIMEOUT: Duration = Duration::from_secs(15);

/// What the check of one program found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub program: String,
    /// The agent whose profile runs it, if any.
    pub agent: Option<AgentKind>,
    /// The version it printed.
    pub version: Option<String>,
    /// Why it cannot run (with how to fix it); `None` when it can.
    pub problem: Option<String>,
    /// Something to know that does not stop the run (a version the profile was not written
    /// for).
    pub warning: Option<String>,
}

impl Check {
    pub fn ok(&self) -> bool {
        self.problem.is_none()
    }
}

/// Runs `program --version` (with a timeout) and compares the answer with the versions the
/// agent's profile was written for.
pub async fn check_program(program: &str, agent: Option<AgentKind>) -> Check {
    let mut check = Check {
        program: program.to_owned(),
        agent,
        version: None,
        problem: None,
        warning: None,
    };
    let about = agent.map(AgentKind::about);
    let install = about
        .map(|a| format!("; install it with `{}`", a.install))
        .unwrap_or_default();
    let mut cmd = tokio::process::Command::new(program);
    cmd.arg("--version")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let output = match tokio::time::timeout(VERSION_TIMEOUT, cmd.output()).await {
        Err(_) => {
            check.problem = Some(format!(
                "`{program} --version` did not answer within {VERSION_TIMEOUT:?}"
            ));
            return check;
        }
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            check.problem = Some(format!(
                "`{program}` is not installed (not found on PATH){install}"
            ));
            return check;
        }
        Ok(Err(e)) => {
            check.problem = Some(format!("`{program}` cannot be run: {e}"));
            return check;
        }
        Ok(Ok(o)) => o,
    };
    let printed = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        let err = String::from_utf8_lossy(&output.stderr);
        check.problem = Some(format!(
            "`{program} --version` failed ({}): {}",
            output.status,
            short(err.trim(), 200)
        ));
        return check;
    }
    let Some(kind) = agent else {
        check.version = printed.lines().next().map(|l| l.trim().to_owned());
        return check;
    };
    check.version = kind.profile().version(&printed);
    let versions = kind.about().versions;
    match &check.version {
        None => {
            check.warning = Some(format!(
                "could not read a version from `{program} --version` ({}); the profile follows {} {}",
                short(printed.trim(), 80),
                kind.about().title,
                versions.join(", ")
            ));
        }
        Some(v)
            if !versions
                .iter()
                .any(|p| v == p || v.starts_with(&format!("{p}."))) =>
        {
            check.warning = Some(format!(
                "{} {v} found; the profile was written for {} (flags or output may differ)",
                kind.about().title,
                versions.join(", ")
            ));
        }
        Some(_) => {}
    }
    check
}
