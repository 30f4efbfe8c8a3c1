//! Steering from the page: pause, unpause, retry, cancel, run a ready task. Each is a use case
//! of the application layer, written to the event log like any other change, by the actor the
//! server was started as (`web` by default).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use downbeat_app::error::Error;
use downbeat_core::task::Status;

use crate::reply::{ApiError, Reply};
use crate::shapes::Done;
use crate::state::State as AppState;

/// The request's JSON body, or the defaults when it has none.
fn body<T: DeserializeOwned + Default>(b: &Bytes) -> Result<T, ApiError> {
    if b.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(b).map_err(|e| {
        ApiError(
            Error::invalid(format!("invalid request body: {e}")).with_hint(
                "send a JSON object with the fields docs/web.md lists for this action (or none)",
            ),
        )
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PauseBody {
    reason: Option<String>,
}

/// `POST /api/pause`: nothing new starts anywhere until unpaused.
pub async fn pause(State(s): State<Arc<AppState>>, b: Bytes) -> Reply<Done> {
    let a: PauseBody = body(&b)?;
    let reason = a
        .reason
        .filter(|r| !r.trim().is_empty())
        .unwrap_or_else(|| "paused from the web view".into());
    let h = downbeat_app::holds::pause(s.project(), &reason).await?;
    Ok(Json(Done {
        message: format!(
            "hold {} added: nothing new starts until it is released",
            h.id
        ),
        changed: vec![format!("hold {}", h.id)],
    }))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct UnpauseBody {
    /// One hold; all of them when absent.
    id: Option<u32>,
}

/// `POST /api/unpause`: releases one hold, or all.
pub async fn unpause(State(s): State<Arc<AppState>>, b: Bytes) -> Reply<Done> {
    let a: UnpauseBody = body(&b)?;
    let released = downbeat_app::holds::release(s.project(), a.id).await?;
    Ok(Json(Done {
        message: format!("{} hold(s) released", released.len()),
        changed: released.iter().map(|h| format!("hold {}", h.id)).collect(),
    }))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoteBody {
    note: Option<String>,
}

async fn transition(s: &AppState, id: &str, to: Status, b: &Bytes, verb: &str) -> Reply<Done> {
    let a: NoteBody = body(b)?;
    let p = s.project();
    let task = downbeat_app::tasks::resolve(p, id).await?;
    let note = a
        .note
        .unwrap_or_else(|| format!("{verb} from the web view"));
    let changed = downbeat_app::tasks::set_status(p, task, to, Some(&note), false).await?;
    Ok(Json(Done {
        message: format!("task {task}: {verb}"),
        changed: changed.iter().map(|t| t.id.to_string()).collect(),
    }))
}

/// `POST /api/tasks/{id}/retry`: back to pending, to be run again.
pub async fn retry(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
    b: Bytes,
) -> Reply<Done> {
    transition(&s, &id, Status::Pending, &b, "retried").await
}

/// `POST /api/tasks/{id}/cancel`.
pub async fn cancel(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
    b: Bytes,
) -> Reply<Done> {
    transition(&s, &id, Status::Cancelled, &b, "cancelled").await
}

/// `POST /api/tasks/{id}/run`: a run of this one ready task, in this server's process, with
/// the configured executors.
pub async fn run_task(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
    b: Bytes,
) -> Reply<Done> {
    let _: NoteBody = body(&b)?;
    if !s.can_run {
        return Err(ApiError(
            Error::conflict("a run is going in this process: it starts ready tasks itself")
                .with_hint("pause or cancel from here; start other runs from a terminal"),
        ));
    }
    let p = s.project();
    let task = downbeat_app::tasks::resolve(p, &id).await?;
    let view = s.cache.view(p).await?;
    let shown = view
        .task(task)
        .map(|t| view.state(t.id, t.status))
        .unwrap_or_else(|| "archived".into());
    if shown != "ready" {
        return Err(ApiError(Error::conflict(format!(
            "task {task} is {shown}, not ready: only a ready task can be run from here"
        ))));
    }
    let spec = downbeat_app::runs::RunRequest {
        concurrency: Some(1),
        only: vec![task.to_string()],
        until: None,
        executor: None,
    };
    let started = s.runs.start(p.duplicate(), &spec).await?;
    Ok(Json(Done {
        message: format!("run started for task {task}"),
        changed: started
            .get("run")
            .map(|r| vec![format!("run {r}")])
            .unwrap_or_default(),
    }))
}
