//! `downbeat serve`: one page, served by the binary itself, to watch and steer the team, and
//! the JSON API it is built on (`docs/web.md`).
//!
//! A front end like the CLI and the MCP server: every answer comes from a use case of
//! `downbeat-app`, every steering action is one of its changes (written to the event log like
//! any other). Live updates are server-sent events fed from the event log ([`feed`]), so the
//! page shows the same thing whoever changed the graph: a run in this process, a CLI on the
//! same machine, workers elsewhere sharing a PostgreSQL database.
//!
//! Must never: listen beyond loopback without requiring its token on every request, accept a
//! steering request without the token (or the session cookie set from the printed URL), from
//! another origin, or for a host name other than this machine's (DNS rebinding); render a
//! secret (the database URL's password, API keys); log the token.

mod access;
mod api;
mod assets;
mod feed;
mod guard;
mod hub;
mod pages;
mod reply;
pub mod shapes;
mod state;
mod steer;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use downbeat_app::error::{Error, Kind};
use downbeat_app::project::Project;

pub use access::{origin_allowed, random_token};

/// Where the page is served unless `--addr` says otherwise.
pub const DEFAULT_ADDR: &str = "127.0.0.1:4774";

/// How a server is asked to serve, as the front end that starts it resolved it.
#[derive(Debug, Clone)]
pub struct WebOptions {
    /// `HOST:PORT`; port 0 picks a free one.
    pub addr: String,
    /// The secret steering requests (and, beyond loopback, all requests) must carry; a random
    /// one when `None`.
    pub token: Option<String>,
    /// Host names besides this machine's that requests may be addressed to (a name this
    /// machine is reached by on a network).
    pub allow_hosts: Vec<String>,
    /// Who acts in the event log for steering actions.
    pub actor: Option<String>,
    /// Whether "run this task" may start a run in this process (not while `run --serve` runs
    /// one already).
    pub can_run: bool,
}

impl Default for WebOptions {
    fn default() -> Self {
        Self {
            addr: DEFAULT_ADDR.into(),
            token: None,
            allow_hosts: Vec::new(),
            actor: None,
            can_run: true,
        }
    }
}

/// A server bound to its address, not yet serving.
pub struct WebServer {
    listener: tokio::net::TcpListener,
    addr: SocketAddr,
    state: Arc<state::State>,
}

/// Binds the address for project `p`: errors (a bad address, a port in use, a short token)
/// come before anything is served.
pub async fn bind(mut p: Project, o: WebOptions) -> Result<WebServer, Error> {
    let wanted = parse_addr(&o.addr)?;
    let token = o
        .token
        .filter(|t| !t.is_empty())
        .unwrap_or_else(random_token);
    if token.len() < 16 {
        return Err(
            Error::invalid("the web token is too short: use at least 16 characters")
                .with_hint("unset DOWNBEAT_WEB_TOKEN to have a random one made"),
        );
    }
    p.actor_name = o.actor.clone().unwrap_or_else(|| "web".into());
    let listener = tokio::net::TcpListener::bind(wanted)
        .await
        .map_err(|e| bind_error(wanted, &e))?;
    let addr = listener.local_addr().map_err(|e| {
        Error::new(
            Kind::Internal,
            format!("cannot read the bound address: {e}"),
        )
    })?;
    let latest = p.store.last_event_seq().await?;
    let access = access::Access::new(token, addr, o.allow_hosts);
    let state = Arc::new(state::State::new(p, access, o.can_run));
    // A stream opened before the first poll starts from here, not from the beginning.
    state.feed.set_latest(latest);
    Ok(WebServer {
        listener,
        addr,
        state,
    })
}

impl WebServer {
    /// The address served.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The page's address without the token.
    pub fn base_url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// The address to open: with the token, which the page turns into a session cookie (and
    /// takes out of the address bar) on first load.
    pub fn url(&self) -> String {
        format!("{}?token={}", self.base_url(), self.state.access.token())
    }

    /// Serves until `cancel`; open event streams end with it.
    pub async fn serve(self, cancel: CancellationToken) -> Result<(), Error> {
        let poller = feed::spawn_poller(self.state.clone(), cancel.clone());
        let router = api::router(self.state.clone());
        let shutdown = cancel.clone();
        let result = axum::serve(
            self.listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
        .map_err(|e| Error::new(Kind::Internal, format!("the web server stopped: {e}")));
        cancel.cancel();
        let _ = poller.await;
        self.state.runs.shutdown().await;
        result
    }
}

fn parse_addr(s: &str) -> Result<SocketAddr, Error> {
    use std::net::ToSocketAddrs;
    let bad = || {
        Error::new(Kind::Usage, format!("invalid address {s:?}"))
            .with_hint("give HOST:PORT, e.g. 127.0.0.1:4774 (port 0 picks a free one)")
    };
    match s.parse::<SocketAddr>() {
        Ok(a) => Ok(a),
        Err(_) => s
            .to_socket_addrs()
            .map_err(|_| bad())?
            .next()
            .ok_or_else(bad),
    }
}

fn bind_error(addr: SocketAddr, e: &std::io::Error) -> Error {
    let err = Error::new(Kind::Conflict, format!("cannot listen on {addr}: {e}"));
    if e.kind() == std::io::ErrorKind::AddrInUse {
        err.with_hint(
            "another program uses that port: pass `--addr 127.0.0.1:0` to pick a free one",
        )
    } else {
        err.with_hint("pass `--addr HOST:PORT` with an address of this machine")
    }
}
