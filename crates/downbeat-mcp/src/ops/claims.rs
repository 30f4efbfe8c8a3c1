//! Claims by MCP clients, answered in the shapes of the tools: the use cases are
//! [`downbeat_app::claims`].

use serde::Serialize;
use serde_json::json;

use downbeat_app::answer::compact;
use downbeat_app::cache::GraphCache;
use downbeat_app::claims;
use downbeat_app::error::Error;
use downbeat_app::project::Project;

pub use downbeat_app::claims::{ClaimSpec, End, EndAction, render_prompt};

use super::shape::Out;

fn answer(v: impl Serialize) -> Out {
    serde_json::to_value(v)
        .map(compact)
        .map_err(|e| Error::internal(e.to_string()))
}

/// Claims a ready task (the given one, else the best one); see [`claims::claim`].
pub async fn claim(p: &Project, g: &GraphCache, client: &str, c: &ClaimSpec) -> Out {
    if let Some(own) = p.acting_for {
        return Err(Error::conflict(format!(
            "this server acts for task {own}, which its runner holds: it claims no other work"
        ))
        .with_hint("report other work as discovered tasks (tasks add) or in the result file"));
    }
    match claims::claim(p, g, client, c).await? {
        // A claim without work keeps its `"task": null`.
        none @ claims::Claim::None { .. } => {
            serde_json::to_value(none).map_err(|e| Error::internal(e.to_string()))
        }
        took => answer(took),
    }
}

pub async fn prompt(p: &Project, q: &str, role: Option<&str>) -> Out {
    let (id, prompt) = claims::prompt_for(p, q, role).await?;
    Ok(json!({"task": id, "prompt": prompt}))
}

pub async fn heartbeat(p: &Project, e: &End) -> Out {
    answer(claims::heartbeat(p, e).await?)
}

/// Completes, fails or releases claimed work under its fencing token.
pub async fn end(p: &Project, e: &End, how: EndAction) -> Out {
    answer(claims::end(p, e, how).await?)
}
