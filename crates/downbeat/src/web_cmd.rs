//! `downbeat serve` and `run --serve`: the live page (`downbeat_web`), started with what the
//! command line and the environment say (`DOWNBEAT_WEB_TOKEN`).

use serde_json::json;
use tokio_util::sync::CancellationToken;

use downbeat_app::error::Error;
use downbeat_app::project::Project;
use downbeat_web::{WebOptions, WebServer};

use crate::cli::ServeArgs;
use crate::output::{note, outln};

/// The variable that fixes the page's token (a random one otherwise): set it to keep the
/// same address across restarts.
pub const TOKEN_ENV: &str = "DOWNBEAT_WEB_TOKEN";

fn token() -> Option<String> {
    std::env::var(TOKEN_ENV).ok().filter(|v| !v.is_empty())
}

/// `downbeat serve`: prints the address (with its token) on stdout, serves until Ctrl-C or
/// SIGTERM.
/// `maintain`: the schedule and a project of its own to run it on.
pub async fn serve(
    p: Project,
    maintain: Option<(Project, downbeat_app::maintenance::Schedule)>,
    a: ServeArgs,
    j: bool,
) -> Result<(), Error> {
    let server = downbeat_web::bind(
        p,
        WebOptions {
            addr: a.addr,
            token: token(),
            allow_hosts: a.allow_hosts,
            actor: None,
            can_run: true,
        },
    )
    .await?;
    let url = server.url();
    if j {
        outln(&json!({"url": url, "addr": server.addr().to_string()}).to_string());
    } else {
        outln(&url);
        note("serving the live page (Ctrl-C stops)");
    }
    if a.open {
        open_browser(&url);
    }
    let cancel = CancellationToken::new();
    crate::signals::stop_on_signals(cancel.clone());
    let holder = crate::schedule::holder("serve");
    let schedule = maintain.as_ref().map(|(m, s)| (m, *s));
    crate::schedule::alongside(schedule, &holder, server.serve(cancel)).await
}

/// Binds the page for `run --serve` before the run starts (so a taken port fails the command
/// before any work), and says where it is on stderr.
pub async fn bind_beside_run(p: Project, addr: String) -> Result<WebServer, Error> {
    let server = downbeat_web::bind(
        p,
        WebOptions {
            addr,
            token: token(),
            allow_hosts: Vec::new(),
            actor: None,
            can_run: false,
        },
    )
    .await?;
    note(&format!("live page: {}", server.url()));
    Ok(server)
}

/// Serves `server` until `stop`.
pub fn spawn(server: WebServer, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if let Err(e) = server.serve(stop).await {
            note(&format!("warning: the live page stopped: {}", e.message));
        }
    })
}

fn open_browser(url: &str) {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    let started = std::process::Command::new(opener)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if started.is_err() {
        note(&format!(
            "cannot start {opener} to open a browser: open the address above yourself"
        ));
    }
}
