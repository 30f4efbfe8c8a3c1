//! Resources: the handover document, the session context, a task by URI, the graph as Mermaid. Reading one has no
//! side effect (the `report` tool's `handover` action writes and records the handover).

use rmcp::ErrorData;
use rmcp::model::{ReadResourceResult, Resource, ResourceContents, ResourceTemplate};

use downbeat_app::cache::GraphCache;
use downbeat_app::project::Project;

pub(crate) const HANDOVER: &str = "downbeat://handover";
pub(crate) const GRAPH: &str = "downbeat://graph.mmd";
pub(crate) const CONTEXT: &str = "downbeat://context";
pub(crate) const TASK_PREFIX: &str = "downbeat://task/";

pub(crate) fn list() -> Vec<Resource> {
    vec![
        Resource::new(HANDOVER, "handover")
            .with_description("Where the work stands, for whoever picks it up (Markdown).")
            .with_mime_type("text/markdown"),
        Resource::new(GRAPH, "graph")
            .with_description("The task graph as a Mermaid flowchart.")
            .with_mime_type("text/vnd.mermaid"),
        Resource::new(CONTEXT, "context")
            .with_description(
                "The session context: objectives, completed and active tasks, key insights, decisions (pending too), agents spawned, metrics; compact JSON.",
            )
            .with_mime_type("application/json"),
    ]
}

pub(crate) fn templates() -> Vec<ResourceTemplate> {
    vec![
        ResourceTemplate::new("downbeat://task/{id}", "task")
            .with_description("One task (id, id prefix or key) with its edges and state, as JSON.")
            .with_mime_type("application/json"),
    ]
}

pub(crate) async fn read(
    p: &Project,
    graph: &GraphCache,
    uri: &str,
) -> Result<ReadResourceResult, ErrorData> {
    let fail = |e: downbeat_app::Error| {
        if e.kind == downbeat_app::Kind::NotFound {
            ErrorData::resource_not_found(crate::errors::message(&e), None)
        } else {
            ErrorData::internal_error(crate::errors::message(&e), None)
        }
    };
    let (text, mime) = if uri == HANDOVER {
        let h = downbeat_app::documents::handover_doc(p)
            .await
            .map_err(fail)?;
        (h.doc, "text/markdown")
    } else if uri == GRAPH {
        let v = downbeat_app::views::view(p).await.map_err(fail)?;
        (
            downbeat_app::views::render_graph(&v, downbeat_app::views::GraphFormat::Mermaid),
            "text/vnd.mermaid",
        )
    } else if uri == CONTEXT {
        let c = downbeat_app::session_context::session_context(p)
            .await
            .map_err(fail)?;
        let text = serde_json::to_string(&c)
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
        (text, "application/json")
    } else if let Some(id) = uri.strip_prefix(TASK_PREFIX) {
        let v = crate::ops::show(p, graph, id).await.map_err(fail)?;
        (v.to_string(), "application/json")
    } else {
        return Err(ErrorData::resource_not_found(
            format!(
                "no resource {uri} (known: {HANDOVER}, {GRAPH}, {CONTEXT}, {TASK_PREFIX}{{id}})"
            ),
            None,
        ));
    };
    Ok(ReadResourceResult::new(vec![
        ResourceContents::text(text, uri).with_mime_type(mime),
    ]))
}
