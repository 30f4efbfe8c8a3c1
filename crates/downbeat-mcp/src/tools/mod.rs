//! The tools of both profiles: their input schemas (schemars) and their calls into `ops`.
//!
//! The default profile is a handful of operation-style tools with an `action`; the full profile
//! adds one finer tool per operation. Descriptions are short: every byte of `tools/list` costs
//! the client context.

use std::future::Future;

use rmcp::model::{CallToolResult, ContentBlock};
use rmcp::{Peer, RoleServer};

use crate::ops::Out;
use crate::server::{DownbeatMcp, Profile};
use downbeat_app::error::{Error, Kind};
use downbeat_app::project::Project;

/// Names of the tools a profile offers, sorted.
pub fn tool_names(profile: Profile) -> Vec<String> {
    let router = match profile {
        Profile::Default => DownbeatMcp::default_tools(),
        Profile::Full => DownbeatMcp::default_tools() + DownbeatMcp::full_tools(),
    };
    router
        .list_all()
        .into_iter()
        .map(|t| t.name.into())
        .collect()
}

fn result(r: Out) -> CallToolResult {
    match r {
        Ok(v) => CallToolResult::success(vec![ContentBlock::text(v.to_string())]),
        Err(e) => CallToolResult::error(vec![ContentBlock::text(crate::errors::message(&e))]),
    }
}

impl DownbeatMcp {
    /// Runs one tool call on a fresh view of the project; a panic becomes a tool error.
    async fn call<F, Fut>(&self, peer: &Peer<RoleServer>, f: F) -> CallToolResult
    where
        F: FnOnce(Project, String) -> Fut,
        Fut: Future<Output = Out> + Send + 'static,
    {
        let (p, client) = match self.project(peer) {
            Ok(x) => x,
            Err(e) => return result(Err(e)),
        };
        match tokio::spawn(f(p, client)).await {
            Ok(r) => result(r),
            Err(e) => result(Err(Error::new(
                Kind::Internal,
                format!("internal error: {e}"),
            ))),
        }
    }
}

mod default;
mod full;
