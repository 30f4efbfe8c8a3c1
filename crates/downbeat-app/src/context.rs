//! The context around the graph that use cases share: sessions.

use downbeat_core::context::Session;

use crate::error::Error;
use crate::project::Project;

/// The open session, or a new one continuing the last.
pub async fn resume_session(p: &Project) -> Result<Session, Error> {
    Ok(match p.store.current_session().await? {
        Some(s) => s,
        None => {
            let prev = p.store.sessions().await?.last().map(|s| s.id.to_string());
            let label = prev
                .map(|x| format!("resumed after {x}"))
                .unwrap_or_else(|| "session".into());
            p.store.start_session(&label, &p.actor().await?).await?
        }
    })
}
