//! Before anything starts: can every executor the run will use run on this machine? Each
//! agent CLI is found and its version compared with what its profile was written for; each
//! process executor's program is looked up on the search path (never run). Every problem is
//! reported at once, with how to fix it.

use std::collections::BTreeSet;
use std::path::Path;

use downbeat_engine::executor::Requirement;
use downbeat_engine::executor::agent::{Check, check_program};
use downbeat_engine::run::{RunOptions, executors_in_scope};

use crate::error::Error;
use crate::project::Project;
use crate::runs::run_error;

/// Checks what the pending tasks in scope need (see the module documentation).
pub async fn checks(p: &Project, opts: &RunOptions) -> Result<Vec<Check>, Error> {
    Ok(checks_and_isolation(p, opts).await?.0)
}

/// [`checks`], and whether an executor in scope works in worktrees.
async fn checks_and_isolation(p: &Project, opts: &RunOptions) -> Result<(Vec<Check>, bool), Error> {
    let resolved = executors_in_scope(p.store.as_ref(), opts)
        .await
        .map_err(run_error)?;
    let isolated = resolved.iter().any(|r| r.worktree);
    let needs: BTreeSet<Requirement> = resolved
        .iter()
        .filter_map(|r| r.executor.requirement())
        .collect();
    let mut out = Vec::with_capacity(needs.len());
    for need in needs {
        out.push(check_requirement(p, need).await);
    }
    Ok((out, isolated))
}

/// Checks one thing an executor needs on this machine.
pub(crate) async fn check_requirement(p: &Project, need: Requirement) -> Check {
    match need {
        Requirement::Agent { program, kind } => check_program(&program, Some(kind)).await,
        Requirement::Program(program) => find_program(p, &program),
    }
}

/// `Ok` when every check passed, else an error listing every problem.
pub fn refuse_problems(checks: &[Check]) -> Result<(), Error> {
    let problems: Vec<&str> = checks.iter().filter_map(|c| c.problem.as_deref()).collect();
    if problems.is_empty() {
        return Ok(());
    }
    Err(Error::invalid(format!(
        "{} executor(s) cannot run here, nothing was started: {}",
        problems.len(),
        problems.join("; ")
    ))
    .with_hint("`downbeat agents check` shows what each executor needs; see docs/agents.md"))
}

/// Runs the checks and refuses when any failed; returns the checks (warnings included).
/// When an executor in scope works in worktrees, the integration branch is created here
/// (from `HEAD`) if absent, and refused if a working tree has it checked out; a run of plain
/// commands leaves the repository alone.
pub async fn require(p: &Project, opts: &RunOptions) -> Result<Vec<Check>, Error> {
    let (c, isolated) = checks_and_isolation(p, opts).await?;
    refuse_problems(&c)?;
    if let Some(w) = opts.worktrees.clone().filter(|_| isolated) {
        tokio::task::spawn_blocking(move || w.ensure_branch())
            .await
            .map_err(|e| Error::new(crate::error::Kind::Internal, e.to_string()))?
            .map_err(crate::runs::worktree_error)?;
    }
    Ok(c)
}

/// A process executor's program: a path (relative to the project), or a name on the search
/// path.
fn find_program(p: &Project, program: &str) -> Check {
    let mut check = Check {
        program: program.to_owned(),
        agent: None,
        version: None,
        problem: None,
        warning: None,
    };
    let found = if program.contains('/') {
        executable(&p.root.join(program))
    } else {
        match &p.host.search_path {
            Some(path) => std::env::split_paths(path).any(|d| executable(&d.join(program))),
            None => true,
        }
    };
    if !found {
        check.problem = Some(format!(
            "`{program}` was not found{}",
            if program.contains('/') {
                " (or is not executable)".to_owned()
            } else {
                " on PATH".to_owned()
            }
        ));
    }
    check
}

fn executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
