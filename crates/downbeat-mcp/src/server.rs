//! One server: the shared context of its connections (settings re-read when the configuration
//! or role files change, the kept graph view, the profile, the background run), and the
//! handler of one connection (its tools, resources and prompts).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::model::{
    GetPromptRequestParams, GetPromptResponse, Implementation, ListPromptsResult,
    ListResourceTemplatesResult, ListResourcesResult, PaginatedRequestParams,
    ReadResourceRequestParams, ReadResourceResponse, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};

use crate::errors::message;
use crate::ops::sanitize;
use crate::{prompts, resources};
use downbeat_app::error::{Error, Kind};
use downbeat_app::project::{self, Project};
use downbeat_app::{cache, runs};

/// Which tools a server offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// About eight operation-style tools, each with an `action`.
    Default,
    /// The default tools and finer ones (one per operation).
    Full,
}

impl Profile {
    pub(crate) fn parse(s: &str) -> Result<Self, Error> {
        match s {
            "default" => Ok(Self::Default),
            "full" => Ok(Self::Full),
            other => Err(Error::invalid(format!(
                "[mcp] profile = \"{other}\": expected \"default\" or \"full\""
            ))),
        }
    }
}

/// Modification stamps of the files the settings come from.
type Stamp = Vec<(PathBuf, Option<SystemTime>, u64)>;

/// What a server shares across its connections: the store, the settings (re-read when the
/// configuration or role files change), the kept graph view, the profile and the background
/// run.
pub struct Ctx {
    cached: Mutex<(Stamp, Arc<Project>)>,
    graph: Arc<cache::GraphCache>,
    profile: Profile,
    /// `the actor given explicitly, which takes precedence over `mcp:<client>`.
    actor: Option<String>,
    pub(crate) runs: runs::background::Runs,
}

impl Ctx {
    pub fn new(actor: Option<String>, p: Project, profile: Profile) -> Self {
        let stamp = stamp(&p.root);
        Self {
            cached: Mutex::new((stamp, Arc::new(p))),
            graph: Arc::default(),
            profile,
            actor,
            runs: runs::background::Runs::default(),
        }
    }

    /// The project as of now, acting as `client`.
    fn project(&self, client: &str) -> Result<Project, Error> {
        let base = {
            let mut guard = self
                .cached
                .lock()
                .map_err(|_| Error::new(Kind::Internal, "settings lock poisoned"))?;
            let now = stamp(&guard.1.root);
            if now != guard.0 {
                let root = guard.1.root.clone();
                let config = project::load_config(&root)?;
                let roles = project::load_roles(&root, &config)?;
                let old = &guard.1;
                let fresh = Project {
                    root,
                    config,
                    roles,
                    ..old.duplicate()
                };
                *guard = (now, Arc::new(fresh));
            }
            guard.1.clone()
        };
        Ok(Project {
            actor_name: self
                .actor
                .clone()
                .unwrap_or_else(|| format!("mcp:{}", sanitize(client))),
            ..base.duplicate()
        })
    }
}

fn stamp(root: &std::path::Path) -> Stamp {
    let dir = root.join(project::DIR);
    let mut files = vec![dir.join(project::CONFIG_FILE)];
    if let Ok(entries) = std::fs::read_dir(dir.join("roles")) {
        let mut roles: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        roles.sort();
        files.extend(roles);
    }
    files
        .into_iter()
        .map(|f| {
            let m = std::fs::metadata(&f).ok();
            let modified = m.as_ref().and_then(|m| m.modified().ok());
            let len = m.map(|m| m.len()).unwrap_or(0);
            (f, modified, len)
        })
        .collect()
}

/// One connection's server: the shared context and the tools of its profile.
#[derive(Clone)]
pub struct DownbeatMcp {
    pub(crate) ctx: Arc<Ctx>,
    tool_router: ToolRouter<Self>,
}

impl DownbeatMcp {
    pub fn new(ctx: Arc<Ctx>) -> Self {
        let tool_router = match ctx.profile {
            Profile::Default => Self::default_tools(),
            Profile::Full => Self::default_tools() + Self::full_tools(),
        };
        Self { ctx, tool_router }
    }

    /// The kept graph view, checked against the store on every use.
    pub(crate) fn graph_cache(&self) -> Arc<cache::GraphCache> {
        self.ctx.graph.clone()
    }

    /// The project as of now, acting as the client on the other end of `peer`.
    pub(crate) fn project(
        &self,
        peer: &rmcp::Peer<RoleServer>,
    ) -> Result<(Project, String), Error> {
        let client = client_name(peer);
        Ok((self.ctx.project(&client)?, client))
    }
}

fn client_name(peer: &rmcp::Peer<RoleServer>) -> String {
    sanitize(
        &peer
            .peer_info()
            .map(|i| i.client_info.name.clone())
            .unwrap_or_else(|| "client".into()),
    )
}

const INSTRUCTIONS: &str = "Downbeat keeps a durable task graph for a team of specialist agents. \
Start with `session` (resume) for the brief. Create work with `plan` (a whole plan in one call). \
Sub-agents `claim` a ready task (they get a fencing token and the specialist prompt), send \
`work` heartbeats, and `work` complete or fail it with that token. Record objectives, insights \
and decisions with `context`; `report` gives status, synthesis, handover and maintenance; `run` \
executes the graph with the configured executors.";

#[rmcp::tool_handler(router = self.tool_router)]
impl ServerHandler for DownbeatMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .enable_prompts()
                .build(),
        )
        .with_server_info(Implementation::new("downbeat", env!("CARGO_PKG_VERSION")))
        .with_instructions(INSTRUCTIONS)
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        Ok(ListResourcesResult::with_all_items(resources::list()))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        Ok(ListResourceTemplatesResult::with_all_items(
            resources::templates(),
        ))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let (p, _) = self.project(&context.peer).map_err(internal)?;
        resources::read(&p, &self.ctx.graph, &request.uri)
            .await
            .map(Into::into)
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        let (p, _) = self.project(&context.peer).map_err(internal)?;
        Ok(ListPromptsResult::with_all_items(prompts::list(&p)))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        let (p, _) = self.project(&context.peer).map_err(internal)?;
        prompts::get(&p, &request).await.map(Into::into)
    }
}

/// A failure that is not the client's: the settings cannot be read.
fn internal(e: Error) -> ErrorData {
    ErrorData::internal_error(message(&e), None)
}
