//! `downbeat mcp`: the project served to MCP clients (an LLM conductor and its sub-agents).
//!
//! Transports: stdio (nothing but JSON-RPC on stdout), or Streamable HTTP at `/mcp`
//! (`--http ADDR`; loopback unless a bearer token is set). Tools come in two profiles
//! (`default`: a few operation-style tools; `full`: finer tools as well); resources are the
//! handover, tasks by URI and the graph as Mermaid; there is one prompt per specialist role.
//!
//! Must never: use graph state kept between calls without first checking the store's event log
//! (several servers, CLIs and runners share one database; see [`cache`]), print anything but
//! protocol on stdout, or log the bearer token.

mod ops;
mod prompts;
mod resources;
pub mod tools;

use std::net::SocketAddr;
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
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt};

use downbeat_app::error::{Error, Kind};
use downbeat_app::project::{self, Globals, Project};
use downbeat_app::{cache, runs};

pub use tools::tool_names;

/// Which tools a server offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// About eight operation-style tools, each with an `action`.
    Default,
    /// The default tools and finer ones (one per operation).
    Full,
}

impl Profile {
    fn parse(s: &str) -> Result<Self, Error> {
        match s {
            "default" => Ok(Self::Default),
            "full" => Ok(Self::Full),
            other => Err(Error::invalid(format!(
                "[mcp] profile = \"{other}\": expected \"default\" or \"full\""
            ))),
        }
    }
}

/// How a server is asked to serve, as the front end that starts it resolved it.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// Serve Streamable HTTP at this address instead of stdio.
    pub http: Option<String>,
    /// The bearer token clients must send over HTTP, if one is set.
    pub token: Option<String>,
    /// Where the token comes from (named in messages; the token itself never is).
    pub token_env: String,
    /// The tool profile; `None`: `[mcp] profile`, else the default.
    pub profile: Option<Profile>,
    /// Who acts in the event log, when given explicitly; otherwise `mcp:<client>`.
    pub actor: Option<String>,
}

/// Serves the project until the client goes away (stdio) or the process is stopped (HTTP).
pub async fn serve(g: &Globals, a: ServeOptions) -> Result<(), Error> {
    // The address and the token are checked before anything else.
    let http = match &a.http {
        Some(addr) => {
            let addr = http_addr(addr)?;
            Some((addr, http_token(&addr, a.token.clone(), &a.token_env)?))
        }
        None => None,
    };
    let p = project::open(g).await?;
    let profile = match (a.profile, p.config.mcp.profile.as_deref()) {
        (Some(p), _) => p,
        (None, Some(s)) => Profile::parse(s)?,
        (None, None) => Profile::Default,
    };
    let ctx = Arc::new(Ctx::new(a.actor, p, profile));
    let result = match http {
        None => serve_stdio(ctx.clone()).await,
        Some((addr, token)) => serve_http(ctx.clone(), addr, token).await,
    };
    // A run started through this server stops with it (its running tasks go back to pending).
    ctx.runs.shutdown().await;
    result
}

async fn serve_stdio(ctx: Arc<Ctx>) -> Result<(), Error> {
    let server = DownbeatMcp::new(ctx);
    let running = server
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| Error::new(Kind::Internal, format!("mcp: {e}")))?;
    running
        .waiting()
        .await
        .map_err(|e| Error::new(Kind::Internal, format!("mcp: {e}")))?;
    Ok(())
}

/// `127.0.0.1:8765`, `[::1]:8765` or `localhost:8765`.
fn http_addr(addr: &str) -> Result<SocketAddr, Error> {
    use std::net::ToSocketAddrs;
    let bad = || {
        Error::invalid(format!(
            "--http {addr}: expected an address like 127.0.0.1:8765"
        ))
    };
    match addr.parse::<SocketAddr>() {
        Ok(a) => Ok(a),
        Err(_) => addr
            .to_socket_addrs()
            .map_err(|_| bad())?
            .next()
            .ok_or_else(bad),
    }
}

/// Refuses a non-loopback address without a token; returns the token, if any.
pub fn http_token(
    addr: &SocketAddr,
    token: Option<String>,
    token_env: &str,
) -> Result<Option<String>, Error> {
    let token = token.filter(|t| !t.is_empty());
    if token.is_none() && !addr.ip().is_loopback() {
        return Err(Error::invalid(format!(
            "refusing to serve MCP on {addr} without a bearer token: that address is reachable from other machines"
        ))
        .with_hint(format!(
            "set {token_env} to a secret (clients then send `Authorization: Bearer <secret>`), or listen on 127.0.0.1"
        )));
    }
    Ok(token)
}

async fn serve_http(ctx: Arc<Ctx>, addr: SocketAddr, token: Option<String>) -> Result<(), Error> {
    use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
    use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
    let cancel = tokio_util::sync::CancellationToken::new();
    let mut config = StreamableHttpServerConfig::default().with_cancellation_token(cancel.clone());
    if !addr.ip().is_loopback() {
        // Clients name this machine however they reach it; the bearer token guards access.
        config = config.disable_allowed_hosts();
    }
    let service: StreamableHttpService<DownbeatMcp, LocalSessionManager> =
        StreamableHttpService::new(
            move || Ok(DownbeatMcp::new(ctx.clone())),
            Default::default(),
            config,
        );
    let mut router = axum::Router::new().nest_service("/mcp", service);
    if let Some(t) = token {
        router = router.layer(axum::middleware::from_fn_with_state(
            Arc::new(t),
            require_bearer,
        ));
    }
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Error::new(Kind::Internal, format!("cannot listen on {addr}: {e}")))?;
    let local = listener.local_addr()?;
    eprintln!("downbeat mcp: listening on http://{local}/mcp");
    let stop = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            stop.cancel();
        }
    });
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { cancel.cancelled_owned().await })
        .await
        .map_err(|e| Error::new(Kind::Internal, format!("mcp http: {e}")))
}

/// 401 unless the request carries `Authorization: Bearer <token>`.
async fn require_bearer(
    axum::extract::State(token): axum::extract::State<Arc<String>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let given = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if given.is_some_and(|g| same_secret(g.as_bytes(), token.as_bytes())) {
        next.run(req).await
    } else {
        (
            axum::http::StatusCode::UNAUTHORIZED,
            [(axum::http::header::WWW_AUTHENTICATE, "Bearer")],
            "missing or wrong bearer token\n",
        )
            .into_response()
    }
}

/// Compares without stopping at the first difference.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
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
    runs: runs::background::Runs,
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
                    store: old.store.clone(),
                    actor_name: old.actor_name.clone(),
                    fixed_now: old.fixed_now,
                };
                *guard = (now, Arc::new(fresh));
            }
            guard.1.clone()
        };
        Ok(Project {
            root: base.root.clone(),
            config: base.config.clone(),
            roles: base.roles.clone(),
            store: base.store.clone(),
            actor_name: self
                .actor
                .clone()
                .unwrap_or_else(|| format!("mcp:{}", sanitize(client))),
            fixed_now: base.fixed_now,
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

/// A client name fit for lease holders and the event log: no `:` or whitespace.
pub(crate) fn sanitize(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c == ':' || c.is_whitespace() {
                '-'
            } else {
                c
            }
        })
        .take(64)
        .collect();
    if s.is_empty() { "client".into() } else { s }
}

/// One connection's server: the shared context and the tools of its profile.
#[derive(Clone)]
pub struct DownbeatMcp {
    ctx: Arc<Ctx>,
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
    fn graph_cache(&self) -> Arc<cache::GraphCache> {
        self.ctx.graph.clone()
    }

    /// The project as of now, acting as the client on the other end of `peer`.
    fn project(&self, peer: &rmcp::Peer<RoleServer>) -> Result<(Project, String), Error> {
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

/// An error's message with its hint, for a client to read.
pub(crate) fn message(e: &Error) -> String {
    match &e.hint {
        Some(h) => format!("{} (hint: {h})", e.message),
        None => e.message.clone(),
    }
}
