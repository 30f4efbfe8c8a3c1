//! What the server's requests share: the project, the kept graph view, the event feed, the
//! access rules and the background run started from the page.

use downbeat_app::cache::GraphCache;
use downbeat_app::project::Project;
use downbeat_app::runs::background::Runs;

use crate::access::Access;
use crate::hub::Hub;

pub struct State {
    project: Project,
    pub cache: GraphCache,
    pub feed: Hub,
    pub access: Access,
    pub runs: Runs,
    /// Whether the page may start a run in this process.
    pub can_run: bool,
}

impl State {
    pub fn new(project: Project, access: Access, can_run: bool) -> Self {
        Self {
            project,
            cache: GraphCache::default(),
            feed: Hub::default(),
            access,
            runs: Runs::default(),
            can_run,
        }
    }

    pub fn project(&self) -> &Project {
        &self.project
    }
}
