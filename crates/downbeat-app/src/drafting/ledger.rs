//! Drafting calls as the project keeps them. The attempt ledger belongs to tasks (a drafting
//! call has none, and counting it as an attempt of the task it expands would shift that task's
//! attempt numbers and resume the drafting session on its next run), so each call is a
//! `plan.drafted` event (entity: the expanded task, else the plan; payload: a [`Call`]) and the
//! running totals are one `meta` entry ([`META_KEY`]) changed in the same transaction as the
//! event (`meta_swap`): `spend` reads one entry, never the log.

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::project::Project;

/// The `meta` entry holding the totals of every drafting call.
pub const META_KEY: &str = "drafting";

/// The event each drafting call appends.
pub const EVENT: &str = "plan.drafted";

/// What every drafting call of the project spent together.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    pub calls: u64,
    pub tokens_in: u64,
    pub tokens_out: u64,
    /// Summed over the calls that reported a cost; `None` when none did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
}

impl Totals {
    fn add(&mut self, c: &Call) {
        self.calls += 1;
        self.tokens_in += c.tokens_in;
        self.tokens_out += c.tokens_out;
        if let Some(x) = c.cost_usd {
            self.cost_usd = Some(self.cost_usd.unwrap_or(0.0) + x);
        }
    }
}

/// One call of an agent or endpoint while drafting: the payload of its `plan.drafted` event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Call {
    /// 1 for the first round of a draft.
    pub round: u32,
    /// The executor asked (its name in the configuration, or the agent's).
    pub executor: String,
    /// `valid`, `invalid`, `not-a-plan`, `failed`, `timed-out` or `cancelled`.
    pub verdict: &'static str,
    /// How many problems were sent back.
    pub problems: usize,
    pub tokens_in: u64,
    pub tokens_out: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    pub duration_ms: u64,
    /// The call's directory (prompt, answer), relative to the project root.
    pub dir: String,
}

/// How often a record is tried again when another process changed the totals meanwhile.
const SWAP_TRIES: usize = 50;

/// Records one call: its event and the new totals, in one transaction.
pub async fn record(p: &Project, entity: &str, call: &Call) -> Result<(), Error> {
    let actor = p.actor().await?;
    let payload = serde_json::to_value(call).map_err(|e| Error::internal(e.to_string()))?;
    for _ in 0..SWAP_TRIES {
        let old = p.store.meta_get(META_KEY).await?;
        let mut totals: Totals = old
            .as_deref()
            .and_then(|t| serde_json::from_str(t).ok())
            .unwrap_or_default();
        totals.add(call);
        let new = serde_json::to_string(&totals).map_err(|e| Error::internal(e.to_string()))?;
        if p.store
            .meta_swap(
                META_KEY,
                old.as_deref(),
                &new,
                EVENT,
                entity,
                Some(payload.clone()),
                &actor,
            )
            .await?
        {
            return Ok(());
        }
    }
    Err(Error::storage(
        "could not record a drafting call: the totals kept changing",
    ))
}

/// The totals of every drafting call; `None` before the first.
pub async fn totals(p: &Project) -> Result<Option<Totals>, Error> {
    Ok(p.store
        .meta_get(META_KEY)
        .await?
        .and_then(|t| serde_json::from_str(&t).ok()))
}
