//! Holds by hand: pause the whole project, release holds, list what is in force.

use downbeat_store::Hold;

use crate::error::Error;
use crate::project::Project;

/// Adds a hold under which nothing new starts anywhere on the project.
pub async fn pause(p: &Project, reason: &str) -> Result<Hold, Error> {
    if reason.trim().is_empty() {
        return Err(Error::invalid("a pause needs a reason"));
    }
    Ok(p.store.add_hold(None, reason, &p.actor().await?).await?)
}

/// Releases hold `id`, or every hold; returns those released.
pub async fn release(p: &Project, id: Option<u32>) -> Result<Vec<Hold>, Error> {
    Ok(p.store.release_holds(id, &p.actor().await?).await?)
}

/// The holds in force, oldest first.
pub async fn list(p: &Project) -> Result<Vec<Hold>, Error> {
    Ok(p.store.holds().await?)
}
