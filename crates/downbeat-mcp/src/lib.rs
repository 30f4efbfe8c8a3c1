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

mod errors;
mod ops;
mod prompts;
mod resources;
mod server;
pub mod tools;

use std::net::SocketAddr;
use std::sync::Arc;

use rmcp::ServiceExt;

use downbeat_app::error::{Error, Kind};
use downbeat_app::project::{self, Globals};

pub use server::{Ctx, DownbeatMcp, Profile};

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
    /// The task this server acts for (an agent's own server), if any.
    pub task: Option<String>,
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
    let mut p = project::open(g).await?;
    if let Some(t) = &a.task {
        p.acting_for = Some(downbeat_app::tasks::resolve(&p, t).await?);
    }
    let profile = match (a.profile, p.config.mcp.profile.as_deref()) {
        (Some(p), _) => p,
        (None, Some(s)) => Profile::parse(s)?,
        (None, None) => Profile::Default,
    };
    let limits = SessionLimits {
        max: p.config.mcp.max_sessions.unwrap_or(DEFAULT_MAX_SESSIONS),
        idle: match p.config.mcp.session_idle.as_deref() {
            Some(s) => downbeat_core::time::Millis::parse(s)
                .map(downbeat_core::time::Millis::duration)
                .map_err(|e| Error::invalid(format!("[mcp] session_idle: {e}")))?,
            None => DEFAULT_SESSION_IDLE,
        },
    };
    let ctx = Arc::new(Ctx::new(a.actor, p, profile));
    let result = match http {
        None => serve_stdio(ctx.clone()).await,
        Some((addr, token)) => serve_http(ctx.clone(), addr, token, limits).await,
    };
    // A run started through this server stops with it (its running tasks go back to pending).
    ctx.runs.shutdown().await;
    result
}

async fn serve_stdio(ctx: Arc<Ctx>) -> Result<(), Error> {
    let server = DownbeatMcp::new(ctx);
    let running = server
        .serve(checked_stdio())
        .await
        .map_err(|e| Error::new(Kind::Internal, format!("mcp: {e}")))?;
    running
        .waiting()
        .await
        .map_err(|e| Error::new(Kind::Internal, format!("mcp: {e}")))?;
    Ok(())
}

/// Stdio for the MCP service, with every line checked first: one that is not JSON (cut
/// short, or nested deeper than the parser goes) is answered with a JSON-RPC parse error
/// (-32700, `id` null) instead of being dropped, so a client never waits for an answer that
/// cannot come. One task writes stdout, so answers and errors never interleave.
fn checked_stdio() -> (tokio::io::DuplexStream, tokio::io::DuplexStream) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    const BUF: usize = 1 << 16;
    let (mut to_service, service_in) = tokio::io::duplex(BUF);
    let (service_out, from_service) = tokio::io::duplex(BUF);
    let (lines_tx, mut lines_rx) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
    // stdout: the service's lines and parse errors, one at a time.
    tokio::spawn(async move {
        let mut stdout = tokio::io::stdout();
        while let Some(line) = lines_rx.recv().await {
            if stdout.write_all(&line).await.is_err() || stdout.flush().await.is_err() {
                break;
            }
        }
    });
    let service_lines = lines_tx.clone();
    tokio::spawn(async move {
        let mut r = tokio::io::BufReader::new(from_service);
        loop {
            let mut line = Vec::new();
            match r.read_until(b'\n', &mut line).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if service_lines.send(line).is_err() {
                        break;
                    }
                }
            }
        }
    });
    tokio::spawn(async move {
        let mut r = tokio::io::BufReader::new(tokio::io::stdin());
        loop {
            let mut line = Vec::new();
            match r.read_until(b'\n', &mut line).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let text = line.trim_ascii();
            if text.is_empty() {
                continue;
            }
            match serde_json::from_slice::<serde_json::Value>(text) {
                Ok(_) => {
                    if to_service.write_all(&line).await.is_err() {
                        break;
                    }
                    if !line.ends_with(b"\n") && to_service.write_all(b"\n").await.is_err() {
                        break;
                    }
                }
                Err(e) => {
                    let mut answer = serde_json::json!({
                        "jsonrpc": "2.0",
                        "id": null,
                        "error": {"code": -32700, "message": format!("parse error: {e}")},
                    })
                    .to_string()
                    .into_bytes();
                    answer.push(b'\n');
                    let _ = lines_tx.send(answer);
                }
            }
        }
        // The client went away: the service sees the end of its input.
        let _ = to_service.shutdown().await;
    });
    (service_in, service_out)
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

/// Sessions a Streamable HTTP server keeps at once, unless `[mcp] max_sessions` says otherwise.
const DEFAULT_MAX_SESSIONS: usize = 256;
/// How long an idle session lives, unless `[mcp] session_idle` says otherwise.
const DEFAULT_SESSION_IDLE: std::time::Duration = std::time::Duration::from_secs(300);

/// How many Streamable HTTP sessions may be open, and for how long without a request.
#[derive(Debug, Clone, Copy)]
struct SessionLimits {
    max: usize,
    idle: std::time::Duration,
}

async fn serve_http(
    ctx: Arc<Ctx>,
    addr: SocketAddr,
    token: Option<String>,
    limits: SessionLimits,
) -> Result<(), Error> {
    use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
    use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
    let cancel = tokio_util::sync::CancellationToken::new();
    let mut config = StreamableHttpServerConfig::default().with_cancellation_token(cancel.clone());
    if !addr.ip().is_loopback() {
        // Clients name this machine however they reach it; the bearer token guards access.
        config = config.disable_allowed_hosts();
    }
    let mut manager = LocalSessionManager::default();
    manager.session_config.keep_alive = Some(limits.idle);
    let manager = Arc::new(manager);
    let service: StreamableHttpService<DownbeatMcp, LocalSessionManager> =
        StreamableHttpService::new(
            move || Ok(DownbeatMcp::new(ctx.clone())),
            manager.clone(),
            config,
        );
    let mut router = axum::Router::new().nest_service("/mcp", service);
    router = router.layer(axum::middleware::from_fn_with_state(
        (manager, limits.max),
        limit_sessions,
    ));
    // Browsers send `Origin`: only pages of this machine (or of the address served) may talk
    // to the server, against DNS rebinding. Clients that send none are not browsers.
    router = router.layer(axum::middleware::from_fn_with_state(
        Arc::new(addr.ip()),
        check_origin,
    ));
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

/// 503 for a request that would open a session (one without `Mcp-Session-Id`) while the
/// server already keeps as many as it may.
async fn limit_sessions(
    axum::extract::State((manager, max)): axum::extract::State<(
        Arc<rmcp::transport::streamable_http_server::session::local::LocalSessionManager>,
        usize,
    )>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let opens =
        req.method() == axum::http::Method::POST && !req.headers().contains_key("mcp-session-id");
    if opens && manager.sessions.read().await.len() >= max {
        return (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            [(axum::http::header::RETRY_AFTER, "30")],
            format!(
                "too many open sessions ({max}, `[mcp] max_sessions`): close one (DELETE /mcp) or retry when idle ones have expired\n"
            ),
        )
            .into_response();
    }
    next.run(req).await
}

/// 403 for a request whose `Origin` is neither this machine (`localhost`, a loopback
/// address) nor the address served.
async fn check_origin(
    axum::extract::State(served): axum::extract::State<Arc<std::net::IpAddr>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let Some(origin) = req.headers().get(axum::http::header::ORIGIN) else {
        return next.run(req).await;
    };
    if origin_allowed(origin.to_str().unwrap_or(""), *served) {
        return next.run(req).await;
    }
    (
        axum::http::StatusCode::FORBIDDEN,
        "origin not allowed: only pages of this machine may use this server\n",
    )
        .into_response()
}

/// Whether a browser page at `origin` may use a server listening on `served`.
fn origin_allowed(origin: &str, served: std::net::IpAddr) -> bool {
    let Some(rest) = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
    else {
        return false; // `null`, `file://`, anything else
    };
    let host = if let Some(v6) = rest.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        rest.split(':').next().unwrap_or("")
    };
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback() || ip == served)
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

#[cfg(test)]
mod origin_tests {
    use super::origin_allowed;

    #[test]
    fn only_pages_of_this_machine_or_the_served_address_pass() {
        let lo: std::net::IpAddr = "127.0.0.1".parse().unwrap();
        for ok in [
            "http://localhost:3000",
            "http://127.0.0.1",
            "https://[::1]:8443",
        ] {
            assert!(origin_allowed(ok, lo), "{ok}");
        }
        for bad in [
            "null",
            "http://evil.example",
            "file://",
            "http://10.0.0.5",
            "",
        ] {
            assert!(!origin_allowed(bad, lo), "{bad}");
        }
        let lan: std::net::IpAddr = "10.0.0.5".parse().unwrap();
        assert!(origin_allowed("http://10.0.0.5:8765", lan));
    }
}
