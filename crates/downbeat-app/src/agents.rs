//! The agent CLIs Downbeat has profiles for: which are installed, in which version, and
//! whether every executor the project would use can run here.

use downbeat_engine::executor::ExecutorSpec;
use downbeat_engine::executor::agent::{About, AgentKind, Check, check_program};
use serde::Serialize;

use crate::error::Error;
use crate::project::Project;
use crate::runs::{RunRequest, preflight, run_options};

/// One built-in profile, and what this machine has of its CLI.
#[derive(Debug, Clone, Serialize)]
pub struct AgentInfo {
    /// Its name: the built-in executor, `run --agent NAME`, `type = "agent"` with `agent = NAME`.
    pub name: &'static str,
    #[serde(flatten)]
    pub about: About,
    /// What checking its program found.
    pub check: Check,
    /// Configured executors that run it.
    pub executors: Vec<String>,
}

/// Every built-in profile with the state of its CLI here.
pub async fn list(p: &Project) -> Result<Vec<AgentInfo>, Error> {
    let mut out = Vec::new();
    for kind in AgentKind::ALL {
        let configured: Vec<(&String, Option<&str>)> = p
            .config
            .executors
            .iter()
            .filter_map(|(name, spec)| match spec {
                ExecutorSpec::Agent(a) if a.agent == kind.name() => {
                    Some((name, a.program.as_deref()))
                }
                _ => None,
            })
            .collect();
        let program = configured
            .iter()
            .find_map(|(_, prog)| *prog)
            .unwrap_or(kind.name());
        out.push(AgentInfo {
            name: kind.name(),
            about: kind.about(),
            check: check_program(program, Some(kind)).await,
            executors: configured.iter().map(|(n, _)| (*n).clone()).collect(),
        });
    }
    Ok(out)
}

/// The preflight of a run of everything pending: each executor it would use, checked.
pub async fn check(p: &Project, executor: Option<String>) -> Result<Vec<Check>, Error> {
    let opts = run_options(
        p,
        &RunRequest {
            executor,
            ..Default::default()
        },
    )
    .await?;
    preflight::checks(p, &opts).await
}
