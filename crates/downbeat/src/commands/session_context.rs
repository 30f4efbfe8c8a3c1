//! `downbeat context`: the session context in one compact document.

use downbeat_app::error::Error;
use downbeat_app::project::Project;
use downbeat_app::session_context::session_context;

use crate::output::{json as print_json, out};

pub(super) async fn context(p: &Project, j: bool) -> Result<(), Error> {
    let ctx = session_context(p).await?;
    if j {
        print_json(&ctx);
    } else {
        out(&ctx.text());
    }
    Ok(())
}
