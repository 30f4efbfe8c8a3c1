//! The requests and answers of drafting, shared by its modules.

use std::path::PathBuf;
use std::time::Duration;

use downbeat_core::ids::TaskId;
use downbeat_core::plan::{PlanFile, PlanFormat, ValidatedPlan};

use crate::plan_preview::Preview;

/// Rounds a draft gets when the request names none.
pub const DEFAULT_ROUNDS: u32 = 3;

/// How long one call may take when neither the request nor `[run] timeout` says.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// A document the plan is drafted from (a requirements document).
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// How the prompt and messages name it (its file name).
    pub name: String,
    pub text: String,
}

/// What every draft request has.
#[derive(Debug, Clone, PartialEq)]
pub struct Asking {
    /// The executor to ask (a configured executor, a built-in agent, or an inline spec);
    /// default: the `architect` role's executor, else `[run] executor`.
    pub executor: Option<String>,
    /// At most this many calls, each after the first carrying the problems of the last
    /// answer (at least 1).
    pub rounds: u32,
    /// Limit for one call (default `[run] timeout`, else [`DEFAULT_TIMEOUT`]).
    pub timeout: Option<Duration>,
    /// The format the plan is asked for (and written in).
    pub format: PlanFormat,
}

impl Default for Asking {
    fn default() -> Self {
        Self {
            executor: None,
            rounds: DEFAULT_ROUNDS,
            timeout: None,
            format: PlanFormat::Toml,
        }
    }
}

/// `plan draft`: a plan for a goal.
#[derive(Debug, Clone, PartialEq)]
pub struct DraftRequest {
    pub goal: String,
    pub document: Option<Document>,
    pub asking: Asking,
}

/// `plan expand`: subtasks for one task, placed under it.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpandRequest {
    /// The task (id, prefix or key).
    pub task: String,
    /// What else the agent should know (optional).
    pub guidance: Option<String>,
    pub asking: Asking,
}

/// What came of one round.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// The plan passed every check.
    Valid,
    /// A plan, with these problems (sent back in the next round).
    Invalid(Vec<String>),
    /// No plan at all, and why.
    NotAPlan(String),
}

impl Verdict {
    /// The name the ledger records.
    pub fn name(&self) -> &'static str {
        match self {
            Verdict::Valid => "valid",
            Verdict::Invalid(_) => "invalid",
            Verdict::NotAPlan(_) => "not-a-plan",
        }
    }

    /// What is sent back to the agent.
    pub fn problems(&self) -> Vec<String> {
        match self {
            Verdict::Valid => Vec::new(),
            Verdict::Invalid(p) => p.clone(),
            Verdict::NotAPlan(why) => vec![why.clone()],
        }
    }
}

/// One call of the agent or endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct Round {
    /// 1 for the first.
    pub number: u32,
    pub verdict: Verdict,
    pub tokens_in: u64,
    pub tokens_out: u64,
    pub cost_usd: Option<f64>,
    pub duration: Duration,
    /// Its directory: the prompt and the answer.
    pub dir: PathBuf,
}

/// A plan an agent drafted that passed every check, not yet written anywhere.
#[derive(Debug, Clone)]
pub struct Draft {
    /// The executor asked.
    pub executor: String,
    /// The plan as it is written with `-o` and applied.
    pub plan: PlanFile,
    /// `plan` as text in `format`: the agent's own text when Downbeat changed nothing.
    pub text: String,
    pub format: PlanFormat,
    pub validated: ValidatedPlan,
    pub preview: Preview,
    pub rounds: Vec<Round>,
    /// Remarks that are no reason to send the plan back (tasks without a file footprint).
    pub notes: Vec<String>,
    /// The task an expansion places its subtasks under.
    pub expanded: Option<TaskId>,
    /// Where the plan was kept: `plan.EXT` in the draft's directory.
    pub saved: PathBuf,
}

impl Draft {
    /// The plan's name (always set on a draft).
    pub fn name(&self) -> &str {
        self.plan.plan.name.as_deref().unwrap_or("draft")
    }
}
