//! `downbeat init`: a new project here.

use downbeat_app::error::Error;
use downbeat_app::project::{self, Globals};
use serde_json::json;

use crate::output::{json as print_json, note, outln};

pub(super) async fn init(g: &Globals, j: bool) -> Result<(), Error> {
    let (p, fresh) = project::init(g).await?;
    let info = p.store.info();
    if j {
        print_json(
            &json!({"root": p.root.display().to_string(), "database": info.location, "created": fresh}),
        );
    } else {
        if fresh {
            note(&format!(
                "initialised a downbeat project in {}",
                p.dir().display()
            ));
            note(
                "`downbeat rules` lists the flag rules (a new config.toml has rules for SECURITY_BREACH, DATABASE_INVESTIGATION and PERFORMANCE_ISSUE)",
            );
            note(
                "next: `downbeat plan apply PLAN.toml` or `downbeat add \"TITLE\" --role implementer`",
            );
        } else {
            note(&format!(
                "{} already holds a downbeat project; nothing changed",
                p.dir().display()
            ));
        }
        outln(&p.dir().display().to_string());
    }
    Ok(())
}
