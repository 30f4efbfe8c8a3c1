//! Answers: JSON bodies, and errors as `{"error": {...}}` with an HTTP status for their kind.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use downbeat_app::error::{Error, Kind};

use crate::shapes::{ErrorBody, ErrorInfo};

/// An error of a use case, as the API answers it.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        Self(e)
    }
}

impl From<downbeat_store::Error> for ApiError {
    fn from(e: downbeat_store::Error) -> Self {
        Self(e.into())
    }
}

pub type Reply<T> = Result<Json<T>, ApiError>;

fn kind_name(k: Kind) -> (&'static str, StatusCode) {
    match k {
        Kind::Internal => ("internal", StatusCode::INTERNAL_SERVER_ERROR),
        Kind::Usage => ("usage", StatusCode::BAD_REQUEST),
        Kind::NotFound => ("not_found", StatusCode::NOT_FOUND),
        Kind::Invalid => ("invalid", StatusCode::BAD_REQUEST),
        Kind::Conflict => ("conflict", StatusCode::CONFLICT),
        Kind::Storage => ("storage", StatusCode::SERVICE_UNAVAILABLE),
        Kind::RunIncomplete => ("run_incomplete", StatusCode::CONFLICT),
        Kind::Interrupted => ("interrupted", StatusCode::SERVICE_UNAVAILABLE),
        Kind::Rejected => ("rejected", StatusCode::UNPROCESSABLE_ENTITY),
        Kind::Unavailable => ("unavailable", StatusCode::BAD_GATEWAY),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (kind, status) = kind_name(self.0.kind);
        let body = ErrorBody {
            error: ErrorInfo {
                kind: kind.into(),
                message: self.0.message,
                hint: self.0.hint,
            },
        };
        (status, Json(body)).into_response()
    }
}

/// A refusal of the access rules.
pub fn refused(status: StatusCode, message: &str) -> Response {
    let body = ErrorBody {
        error: ErrorInfo {
            kind: "refused".into(),
            message: message.into(),
            hint: None,
        },
    };
    (status, Json(body)).into_response()
}
