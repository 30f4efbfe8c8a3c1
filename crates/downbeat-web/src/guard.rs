//! The middleware every request goes through: the rules of [`crate::access`] applied, the
//! token traded for the session cookie.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::access::{query_token, same, same_origin};
use crate::reply::refused;
use crate::state;

/// The middleware every request goes through.
pub async fn guard(State(s): State<Arc<state::State>>, req: Request, next: Next) -> Response {
    let a = &s.access;
    let headers = req.headers();
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    if !a.host_allowed(&host) {
        return refused(
            StatusCode::MISDIRECTED_REQUEST,
            "this server answers only to the names of this machine (pass --allow-host NAME to add one)",
        );
    }
    // Opening the printed address: the token becomes the session cookie, then leaves the
    // address bar.
    if req.method() == Method::GET
        && req.uri().path() == "/"
        && let Some(t) = query_token(req.uri().query())
    {
        if !same(&t, a.token()) {
            return refused(
                StatusCode::UNAUTHORIZED,
                "wrong token: open the address `downbeat serve` printed",
            );
        }
        let cookie = format!(
            "{}={}; Path=/; HttpOnly; SameSite=Strict",
            a.cookie_name(),
            a.token()
        );
        return (
            StatusCode::SEE_OTHER,
            [
                (header::SET_COOKIE, cookie),
                (header::LOCATION, "/".to_owned()),
            ],
        )
            .into_response();
    }
    let bearer = a.bearer_ok(headers);
    let authed = bearer || a.cookie_ok(headers);
    let steering = !matches!(*req.method(), Method::GET | Method::HEAD);
    if steering {
        if !authed {
            return refused(
                StatusCode::UNAUTHORIZED,
                "steering needs the token: open the address `downbeat serve` printed, or send `Authorization: Bearer <token>`",
            );
        }
        if !same_origin(headers, &host, bearer) {
            return refused(StatusCode::FORBIDDEN, "cross-origin requests may not steer");
        }
    } else if a.reads_need_token() && !authed && !is_page_shell(req.uri().path()) {
        return refused(
            StatusCode::UNAUTHORIZED,
            "this server listens beyond loopback: open the address `downbeat serve` printed, or send `Authorization: Bearer <token>`",
        );
    }
    next.run(req).await
}

/// The page and its assets carry no data: they load without the token, and the page asks for
/// it when the API refuses.
fn is_page_shell(path: &str) -> bool {
    path == "/" || path.starts_with("/assets/")
}
