//! Prompts: one per specialist role of the project, rendering the role's template for a task
//! (the same rendering the engine gives an agent: task, objectives, dependencies' results).

use rmcp::ErrorData;
use rmcp::model::{
    GetPromptRequestParams, GetPromptResult, Prompt, PromptArgument, PromptMessage, Role,
};

use downbeat_app::project::Project;

pub(crate) fn list(p: &Project) -> Vec<Prompt> {
    p.roles
        .iter()
        .map(|r| {
            Prompt::new(
                r.name.clone(),
                Some(r.description.clone()),
                Some(vec![
                    PromptArgument::new("task")
                        .with_description("Task id, id prefix or key")
                        .with_required(true),
                ]),
            )
        })
        .collect()
}

pub(crate) async fn get(
    p: &Project,
    req: &GetPromptRequestParams,
) -> Result<GetPromptResult, ErrorData> {
    let Some(role) = p.roles.get(&req.name) else {
        return Err(ErrorData::invalid_params(
            format!(
                "no prompt `{}` (one per role: {})",
                req.name,
                p.roles.names().join(", ")
            ),
            None,
        ));
    };
    let task = req
        .arguments
        .as_ref()
        .and_then(|a| a.get("task"))
        .and_then(|v| v.as_str())
        .ok_or_else(|| ErrorData::invalid_params("argument `task` is required", None))?;
    let bad = |e: downbeat_app::Error| ErrorData::invalid_params(crate::errors::message(&e), None);
    let id = downbeat_app::tasks::resolve(p, task).await.map_err(bad)?;
    let t = p
        .store
        .task(id)
        .await
        .map_err(|e| bad(downbeat_app::Error::from(e)))?;
    let text = crate::ops::render_prompt(p, &t, Some(&role.name))
        .await
        .map_err(bad)?;
    Ok(
        GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)])
            .with_description(format!("{} prompt for task {id}: {}", role.name, t.title)),
    )
}
