//! Integration tests of the `http` executor against a scripted local axum server.
//!
//! Every test starts its own server on 127.0.0.1:0. Backoff is shortened with
//! `with_backoff_base`, and timing assertions are loose upper bounds so the tests hold on a
//! loaded machine.

mod common;
use common::Fixture;

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use downbeat_engine::executor::http::{ApiKey, Http, HttpError, HttpSpec, RESPONSE_FILE};
use downbeat_engine::executor::{
    AgentReport, AttemptSpec, DiscoveredTask, Executor, Outcome, OutcomeKind, TokenUsage, files,
};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const KEY: &str = "sk-test-0123456789-SECRET";

/// What the scripted server saw.
#[derive(Default)]
struct Seen {
    requests: AtomicUsize,
    bodies: Mutex<Vec<Value>>,
    auth: Mutex<Vec<Option<String>>>,
}

impl Seen {
    fn count(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// Starts a server whose `/v1/chat/completions` answers with `script(n, headers)`, `n`
/// counting requests from 0. Returns the base URL (`http://127.0.0.1:PORT/v1`).
async fn serve<F, Fut>(script: F) -> (String, Arc<Seen>)
where
    F: Fn(usize, HeaderMap) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response> + Send + 'static,
{
    let seen = Arc::new(Seen::default());
    let state = Arc::clone(&seen);
    let handler = move |headers: HeaderMap, body: Bytes| {
        let state = Arc::clone(&state);
        let script = script.clone();
        async move {
            let n = state.requests.fetch_add(1, Ordering::SeqCst);
            let auth = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            state.auth.lock().expect("lock").push(auth);
            let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
            state.bodies.lock().expect("lock").push(json);
            script(n, headers).await
        }
    };
    let app = Router::new().route("/v1/chat/completions", post(handler));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr: SocketAddr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/v1"), seen)
}

/// A successful chat-completion response.
fn completion(content: &str) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        json!({
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "model": "test-model",
            "choices": [{
                "index": 0,
                "message": { "role": "assistant", "content": content },
                "finish_reason": "stop"
            }],
            "usage": { "prompt_tokens": 42, "completion_tokens": 7, "total_tokens": 49 }
        })
        .to_string(),
    )
        .into_response()
}

fn status(code: StatusCode, body: &str) -> Response {
    (code, body.to_owned()).into_response()
}

fn http_spec(base_url: &str) -> HttpSpec {
    HttpSpec {
        base_url: base_url.to_owned(),
        model: "test-model".into(),
        api_key_env: None,
        temperature: None,
        max_tokens: None,
        system: None,
        max_retries: None,
        request_timeout_ms: None,
    }
}

/// An executor with the test key and a short backoff.
fn executor(spec: HttpSpec) -> Http {
    Http::new(spec, Some(ApiKey::new(KEY)))
        .expect("valid spec")
        .with_backoff_base(Duration::from_millis(10))
}

/// Fails if any file of the attempt directory contains the key.
fn assert_no_key_in_files(f: &Fixture) {
    assert_no_key_in(&f.attempt_dir);
}

fn assert_no_key_in(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            assert_no_key_in(&path);
        } else {
            let bytes = std::fs::read(&path).expect("read");
            let text = String::from_utf8_lossy(&bytes);
            assert!(!text.contains(KEY), "{} contains the key", path.display());
        }
    }
}

/// Runs an attempt, failing the test if it hangs.
async fn run(http: &Http, spec: &AttemptSpec) -> Outcome {
    bounded(http.run(spec, CancellationToken::new())).await
}

async fn bounded<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .expect("the attempt did not end within 60 s")
}

fn error_of(outcome: &Outcome) -> &str {
    outcome.error.as_deref().unwrap_or_default()
}

fn assert_no_key_in_outcome(outcome: &Outcome) {
    assert!(!error_of(outcome).contains(KEY), "{outcome:?}");
    assert!(!format!("{outcome:?}").contains(KEY), "{outcome:?}");
}

#[tokio::test]
async fn success_writes_the_reply_and_reports_tokens_and_summary() {
    let (url, seen) =
        serve(|_, _| async { completion("I wrote the parser.\nAll tests pass.") }).await;
    let mut spec = http_spec(&url);
    spec.system = Some("You are careful.".into());
    spec.temperature = Some(0.2);
    spec.max_tokens = Some(256);
    let http = executor(spec);
    let fx = Fixture::new();

    let outcome = run(&http, &fx.spec()).await;

    assert_eq!(outcome.kind, OutcomeKind::Succeeded, "{outcome:?}");
    assert_eq!(outcome.error, None);
    assert_eq!(outcome.exit_code, None);
    assert_eq!(
        outcome.tokens,
        Some(TokenUsage {
            prompt: 42,
            completion: 7
        })
    );
    let report = outcome.report.clone().expect("report");
    assert_eq!(
        report.summary.as_deref(),
        Some("I wrote the parser.\nAll tests pass.")
    );
    assert!(report.flags.is_empty() && report.discovered.is_empty());
    assert_eq!(
        outcome.stdout.as_deref(),
        Some(fx.attempt_dir.join(files::STDOUT).as_path())
    );
    assert_eq!(
        fx.read(files::STDOUT),
        "I wrote the parser.\nAll tests pass."
    );
    assert_eq!(
        fx.read(RESPONSE_FILE),
        "I wrote the parser.\nAll tests pass."
    );
    assert_eq!(fx.read(files::PROMPT), "# Task\nWrite the parser.\n");
    assert!(outcome.duration > Duration::ZERO);

    assert_eq!(seen.count(), 1);
    let auth = seen.auth.lock().expect("lock").clone();
    assert_eq!(auth, [Some(format!("Bearer {KEY}"))]);
    let body = seen.bodies.lock().expect("lock").first().cloned();
    let body = body.expect("request body");
    assert_eq!(body["model"], "test-model");
    assert_eq!(
        body["messages"],
        json!([
            { "role": "system", "content": "You are careful." },
            { "role": "user", "content": "# Task\nWrite the parser.\n" }
        ])
    );
    let temperature = body["temperature"].as_f64().expect("temperature");
    assert!((temperature - 0.2).abs() < 1e-6, "{temperature}");
    assert_eq!(body["max_tokens"], 256);
    assert_no_key_in_files(&fx);
}

#[tokio::test]
async fn optional_fields_are_omitted_and_no_key_means_no_header() {
    let (url, seen) = serve(|_, _| async { completion("done") }).await;
    let http = Http::new(http_spec(&url), None).expect("valid spec");
    assert!(!http.has_api_key());
    let fx = Fixture::new();

    let outcome = run(&http, &fx.spec()).await;

    assert_eq!(outcome.kind, OutcomeKind::Succeeded, "{outcome:?}");
    assert_eq!(seen.auth.lock().expect("lock").clone(), [None]);
    let body = seen.bodies.lock().expect("lock").first().cloned();
    let body = body.expect("request body");
    assert_eq!(
        body,
        json!({
            "model": "test-model",
            "messages": [{ "role": "user", "content": "# Task\nWrite the parser.\n" }]
        })
    );
}

#[tokio::test]
async fn long_replies_are_summarised_by_their_start() {
    let reply = "word ".repeat(400);
    let served = reply.clone();
    let (url, _) = serve(move |_, _| {
        let served = served.clone();
        async move { completion(&served) }
    })
    .await;
    let fx = Fixture::new();

    let outcome = run(&executor(http_spec(&url)), &fx.spec()).await;

    assert_eq!(outcome.kind, OutcomeKind::Succeeded, "{outcome:?}");
    let summary = outcome.report.and_then(|r| r.summary).expect("summary");
    assert!(summary.chars().count() <= 501, "{}", summary.len());
    assert!(summary.chars().count() >= 400, "{}", summary.len());
    assert!(reply.starts_with(summary.trim_end_matches('…')));
    assert_eq!(fx.read(files::STDOUT), reply);
}

#[tokio::test]
async fn a_result_block_becomes_the_report() {
    let reply = "Done.\n\n```downbeat-result\n{\n  \"status\": \"completed\",\n  \
                 \"summary\": \"parser written\",\n  \"artifacts\": [\"src/parser.rs\"],\n  \
                 \"flags\": [\"SECURITY_BREACH\"],\n  \"discovered\": [{\"title\": \"Fuzz the parser\", \
                 \"role\": \"qa\", \"blocks_dependents\": true}]\n}\n```\n";
    let (url, _) = serve(move |_, _| async move { completion(reply) }).await;
    let fx = Fixture::new();

    let outcome = run(&executor(http_spec(&url)), &fx.spec()).await;

    assert_eq!(outcome.kind, OutcomeKind::Succeeded, "{outcome:?}");
    assert_eq!(
        outcome.report,
        Some(AgentReport {
            status: Some("completed".into()),
            summary: Some("parser written".into()),
            artifacts: vec!["src/parser.rs".into()],
            flags: vec!["SECURITY_BREACH".into()],
            discovered: vec![DiscoveredTask {
                title: "Fuzz the parser".into(),
                role: Some("qa".into()),
                description: String::new(),
                blocks_dependents: true,
            }],
        })
    );
    assert_eq!(fx.read(RESPONSE_FILE), reply);
}

#[tokio::test]
async fn a_result_block_reporting_failure_fails_the_attempt() {
    let reply = "```downbeat-result\n{\"status\": \"failed\", \"summary\": \"no access\"}\n```";
    let (url, _) = serve(move |_, _| async move { completion(reply) }).await;
    let fx = Fixture::new();

    let outcome = run(&executor(http_spec(&url)), &fx.spec()).await;

    assert_eq!(outcome.kind, OutcomeKind::Failed, "{outcome:?}");
    assert!(error_of(&outcome).contains("failed"), "{outcome:?}");
    assert_eq!(
        outcome.report.and_then(|r| r.summary).as_deref(),
        Some("no access")
    );
    assert!(outcome.stdout.is_some());
}

#[tokio::test]
async fn an_invalid_result_block_fails_clearly() {
    let reply = "```downbeat-result\n{\"status\": \"completed\", \"flags\": \n```\n";
    let (url, _) = serve(move |_, _| async move { completion(reply) }).await;
    let fx = Fixture::new();

    let outcome = run(&executor(http_spec(&url)), &fx.spec()).await;

    assert_eq!(outcome.kind, OutcomeKind::Failed, "{outcome:?}");
    assert!(
        error_of(&outcome).contains("downbeat-result block in the reply is not a valid report"),
        "{outcome:?}"
    );
    assert_eq!(outcome.report, None);
    // The reply is kept for inspection.
    assert_eq!(fx.read(files::STDOUT), reply);
}

#[tokio::test]
async fn rate_limiting_is_retried_until_success() {
    let (url, seen) = serve(|n, _| async move {
        if n < 2 {
            status(StatusCode::TOO_MANY_REQUESTS, "slow down")
        } else {
            completion("finally")
        }
    })
    .await;
    let fx = Fixture::new();

    let outcome = run(&executor(http_spec(&url)), &fx.spec()).await;

    assert_eq!(outcome.kind, OutcomeKind::Succeeded, "{outcome:?}");
    assert_eq!(seen.count(), 3);
    assert_eq!(fx.read(files::STDOUT), "finally");
}

#[tokio::test]
async fn retry_after_is_honoured_over_the_backoff() {
    let (url, seen) = serve(|n, _| async move {
        if n == 0 {
            (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, "0")],
                "wait",
            )
                .into_response()
        } else {
            completion("ok")
        }
    })
    .await;
    // A backoff this long would outlast the test's bound: only Retry-After: 0 lets it pass.
    let http = executor(http_spec(&url)).with_backoff_base(Duration::from_secs(300));
    let fx = Fixture::new();

    let outcome = run(&http, &fx.spec()).await;

    assert_eq!(outcome.kind, OutcomeKind::Succeeded, "{outcome:?}");
    assert_eq!(seen.count(), 2);
}

#[tokio::test]
async fn server_errors_are_retried_then_fail() {
    let (url, seen) =
        serve(|_, _| async { status(StatusCode::INTERNAL_SERVER_ERROR, "upstream exploded") })
            .await;
    let mut spec = http_spec(&url);
    spec.max_retries = Some(2);
    let fx = Fixture::new();

    let outcome = run(&executor(spec), &fx.spec()).await;

    assert_eq!(outcome.kind, OutcomeKind::Failed, "{outcome:?}");
    assert_eq!(seen.count(), 3);
    let error = error_of(&outcome);
    assert!(error.contains("500 Internal Server Error"), "{error}");
    assert!(error.contains("upstream exploded"), "{error}");
    assert!(error.contains("/v1/chat/completions"), "{error}");
    assert!(error.contains("3 requests"), "{error}");
    assert_eq!(outcome.stdout, None);
}

#[tokio::test]
async fn default_retries_are_three() {
    let (url, seen) = serve(|_, _| async { status(StatusCode::BAD_GATEWAY, "") }).await;
    let fx = Fixture::new();

    let outcome = run(&executor(http_spec(&url)), &fx.spec()).await;

    assert_eq!(outcome.kind, OutcomeKind::Failed, "{outcome:?}");
    assert_eq!(seen.count(), 4);
    assert!(
        error_of(&outcome).contains("502 Bad Gateway"),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn unauthorized_fails_at_once_without_leaking_the_key() {
    // The server echoes the Authorization header back, as a careless proxy might.
    let (url, seen) = serve(|_, headers: HeaderMap| async move {
        let auth = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        status(
            StatusCode::UNAUTHORIZED,
            &format!("{{\"error\": \"invalid key in header `{auth}`\"}}"),
        )
    })
    .await;
    let fx = Fixture::new();

    let outcome = run(&executor(http_spec(&url)), &fx.spec()).await;

    assert_eq!(outcome.kind, OutcomeKind::Failed, "{outcome:?}");
    assert_eq!(seen.count(), 1);
    let error = error_of(&outcome);
    assert!(
        error.starts_with(&format!("401 Unauthorized from {url}/chat/completions: ")),
        "{error}"
    );
    assert!(error.contains("invalid key"), "{error}");
    assert_no_key_in_outcome(&outcome);
    assert_no_key_in_files(&fx);
}

#[tokio::test]
async fn other_client_errors_fail_at_once() {
    let (url, seen) = serve(|_, _| async { status(StatusCode::NOT_FOUND, "no such model") }).await;
    let fx = Fixture::new();

    let outcome = run(&executor(http_spec(&url)), &fx.spec()).await;

    assert_eq!(outcome.kind, OutcomeKind::Failed, "{outcome:?}");
    assert_eq!(seen.count(), 1);
    assert!(error_of(&outcome).contains("404 Not Found"), "{outcome:?}");
}

#[tokio::test]
async fn an_echoed_key_never_reaches_the_files() {
    let (url, _) = serve(|_, headers: HeaderMap| async move {
        let auth = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        completion(&format!("you sent {auth}"))
    })
    .await;
    let fx = Fixture::new();

    let outcome = run(&executor(http_spec(&url)), &fx.spec()).await;

    assert_eq!(outcome.kind, OutcomeKind::Succeeded, "{outcome:?}");
    assert_eq!(fx.read(files::STDOUT), "you sent Bearer ***");
    assert_no_key_in_outcome(&outcome);
    assert_no_key_in_files(&fx);
}

#[tokio::test]
async fn malformed_responses_fail_clearly() {
    let (url, _) = serve(|n, _| async move {
        match n {
            0 => (StatusCode::OK, "{\"object\": \"chat.completion\", \"choices\": []}").into_response(),
            1 => (StatusCode::OK, "<html>gateway</html>").into_response(),
            _ => (
                StatusCode::OK,
                json!({ "choices": [{ "message": { "content": null }, "finish_reason": "tool_calls" }] })
                    .to_string(),
            )
                .into_response(),
        }
    })
    .await;
    let http = executor(http_spec(&url));

    let fx = Fixture::new();
    let outcome = run(&http, &fx.spec()).await;
    assert_eq!(outcome.kind, OutcomeKind::Failed, "{outcome:?}");
    assert!(error_of(&outcome).contains("no choices"), "{outcome:?}");
    assert!(
        error_of(&outcome).contains("malformed response"),
        "{outcome:?}"
    );

    let fx = Fixture::new();
    let outcome = run(&http, &fx.spec()).await;
    assert_eq!(outcome.kind, OutcomeKind::Failed, "{outcome:?}");
    assert!(
        error_of(&outcome).contains("malformed response"),
        "{outcome:?}"
    );
    assert!(
        error_of(&outcome).contains("<html>gateway</html>"),
        "{outcome:?}"
    );

    let fx = Fixture::new();
    let outcome = run(&http, &fx.spec()).await;
    assert_eq!(outcome.kind, OutcomeKind::Failed, "{outcome:?}");
    assert!(
        error_of(&outcome).contains("no text content"),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn an_unreachable_endpoint_fails_naming_the_url() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let url = format!("http://{addr}/v1");
    let fx = Fixture::new();
    let started = Instant::now();

    let outcome = run(&executor(http_spec(&url)), &fx.spec()).await;

    assert_eq!(outcome.kind, OutcomeKind::Failed, "{outcome:?}");
    let error = error_of(&outcome);
    assert!(error.contains("unreachable"), "{error}");
    assert!(
        error.contains(&format!("{url}/chat/completions")),
        "{error}"
    );
    assert_no_key_in_outcome(&outcome);
    // Not retried with backoff: connection failures fail the attempt at once.
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[tokio::test]
async fn a_tls_failure_counts_as_unreachable() {
    let (url, seen) = serve(|_, _| async { completion("never") }).await;
    // The server speaks plain HTTP, so the TLS handshake fails.
    let url = url.replacen("http://", "https://", 1);
    let fx = Fixture::new();

    let outcome = run(&executor(http_spec(&url)), &fx.spec()).await;

    assert_eq!(outcome.kind, OutcomeKind::Failed, "{outcome:?}");
    assert!(error_of(&outcome).contains("unreachable"), "{outcome:?}");
    assert_eq!(seen.count(), 0);
}

#[tokio::test]
async fn a_slow_response_times_out() {
    let (url, _) = serve(|_, _| async {
        tokio::time::sleep(Duration::from_secs(120)).await;
        completion("too late")
    })
    .await;
    let fx = Fixture::new();
    let mut spec = fx.spec();
    spec.timeout = Some(Duration::from_millis(300));
    let started = Instant::now();

    let outcome = run(&executor(http_spec(&url)), &spec).await;

    assert_eq!(outcome.kind, OutcomeKind::TimedOut, "{outcome:?}");
    assert!(error_of(&outcome).contains("timed out"), "{outcome:?}");
    assert!(
        outcome.duration >= Duration::from_millis(300),
        "{outcome:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(fx.read(files::PROMPT), "# Task\nWrite the parser.\n");
}

#[tokio::test]
async fn the_attempt_timeout_also_bounds_the_backoff() {
    let (url, seen) = serve(|_, _| async { status(StatusCode::SERVICE_UNAVAILABLE, "busy") }).await;
    let http = executor(http_spec(&url)).with_backoff_base(Duration::from_secs(300));
    let fx = Fixture::new();
    let mut spec = fx.spec();
    spec.timeout = Some(Duration::from_millis(500));

    let outcome = run(&http, &spec).await;

    assert_eq!(outcome.kind, OutcomeKind::TimedOut, "{outcome:?}");
    assert_eq!(seen.count(), 1);
}

#[tokio::test]
async fn a_request_timeout_is_retried_then_fails() {
    let (url, seen) = serve(|_, _| async {
        tokio::time::sleep(Duration::from_secs(120)).await;
        completion("too late")
    })
    .await;
    let mut spec = http_spec(&url);
    spec.request_timeout_ms = Some(200);
    spec.max_retries = Some(1);
    let fx = Fixture::new();

    let outcome = run(&executor(spec), &fx.spec()).await;

    assert_eq!(outcome.kind, OutcomeKind::Failed, "{outcome:?}");
    let error = error_of(&outcome);
    assert!(error.contains("no response from"), "{error}");
    assert!(error.contains("2 requests"), "{error}");
    assert_eq!(seen.count(), 2);
}

#[tokio::test]
async fn cancellation_aborts_the_request() {
    let (url, seen) = serve(|_, _| async {
        tokio::time::sleep(Duration::from_secs(120)).await;
        completion("too late")
    })
    .await;
    let http = executor(http_spec(&url));
    let fx = Fixture::new();
    let spec = fx.spec();
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    let started = Instant::now();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        trigger.cancel();
    });

    let outcome = bounded(http.run(&spec, cancel)).await;

    assert_eq!(outcome.kind, OutcomeKind::Cancelled, "{outcome:?}");
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(seen.count(), 1);
}

#[tokio::test]
async fn an_already_cancelled_attempt_sends_nothing() {
    let (url, seen) = serve(|_, _| async { completion("no") }).await;
    let fx = Fixture::new();
    let cancel = CancellationToken::new();
    cancel.cancel();

    let outcome = bounded(executor(http_spec(&url)).run(&fx.spec(), cancel)).await;

    assert_eq!(outcome.kind, OutcomeKind::Cancelled, "{outcome:?}");
    assert_eq!(seen.count(), 0);
}

#[test]
fn the_key_is_looked_up_by_the_name_the_spec_gives() {
    let name = "DOWNBEAT_TEST_KEY";
    let mut spec = http_spec("https://api.openai.com/v1");
    assert_eq!(spec.api_key(|_| panic!("no variable named")), Ok(None));
    spec.api_key_env = Some(name.into());

    let err = spec.api_key(|_| None).expect_err("missing variable");
    assert_eq!(err, HttpError::ApiKeyNotSet(name.into()));
    assert_eq!(
        err.to_string(),
        format!("environment variable {name} (api_key_env) is not set")
    );
    assert_eq!(
        spec.api_key(|_| Some(" \n".into())),
        Err(HttpError::ApiKeyEmpty(name.into()))
    );
    let key = spec
        .api_key(|n| (n == name).then(|| KEY.into()))
        .expect("set")
        .expect("named");
    assert_eq!(key, ApiKey::new(KEY));
    let http = Http::new(spec, Some(key)).expect("valid");
    assert!(http.has_api_key());
}

#[cfg(unix)]
#[test]
fn a_key_that_is_not_unicode_is_refused_without_showing_it() {
    use std::os::unix::ffi::OsStringExt;
    let mut spec = http_spec("https://api.openai.com/v1");
    spec.api_key_env = Some("K".into());
    let err = spec
        .api_key(|_| Some(std::ffi::OsString::from_vec(b"sk-\xff-SECRET".to_vec())))
        .expect_err("not unicode");
    assert_eq!(err, HttpError::ApiKeyNotUnicode("K".into()));
    assert!(!err.to_string().contains("SECRET"), "{err}");
}

#[test]
fn new_without_a_key_sends_none() {
    let http = Http::new(http_spec("https://api.openai.com/v1"), None).expect("valid");
    assert!(!http.has_api_key());
    assert_eq!(
        http.endpoint(),
        "https://api.openai.com/v1/chat/completions"
    );
}

#[test]
fn the_key_is_not_in_debug_output() {
    let http = executor(http_spec("https://api.openai.com/v1"));
    let debug = format!("{http:?}");
    assert!(!debug.contains(KEY), "{debug}");
    assert!(!debug.contains("SECRET"), "{debug}");
    assert!(debug.contains("***"), "{debug}");
    let pretty = format!("{http:#?}");
    assert!(!pretty.contains(KEY), "{pretty}");
    let key = ApiKey::new(KEY);
    for shown in [
        format!("{key:?}"),
        format!("{key:#?}"),
        format!("{:?}", Some(&key)),
    ] {
        assert!(!shown.contains(KEY), "{shown}");
        assert!(!shown.contains("SECRET"), "{shown}");
    }
}

#[test]
fn invalid_specs_are_rejected() {
    let check = |spec: HttpSpec| Http::new(spec, None).expect_err("invalid spec");

    let err = check(http_spec("not a url"));
    assert!(matches!(err, HttpError::InvalidBaseUrl { .. }), "{err:?}");
    assert!(err.to_string().contains("invalid base_url"), "{err}");

    let err = check(http_spec("ftp://example.com/v1"));
    assert!(
        matches!(err, HttpError::UnsupportedScheme { .. }),
        "{err:?}"
    );

    let err = check(http_spec("https://user:hunter2@example.com/v1"));
    assert_eq!(err, HttpError::CredentialsInBaseUrl);
    assert!(!err.to_string().contains("hunter2"));

    let mut spec = http_spec("https://example.com/v1");
    spec.model = "  ".into();
    assert_eq!(check(spec), HttpError::EmptyModel);

    let mut spec = http_spec("https://example.com/v1");
    spec.temperature = Some(f32::NAN);
    assert!(matches!(check(spec), HttpError::InvalidTemperature(_)));

    let mut spec = http_spec("https://example.com/v1");
    spec.request_timeout_ms = Some(0);
    assert_eq!(check(spec), HttpError::ZeroRequestTimeout);

    let mut spec = http_spec("https://example.com/v1");
    spec.api_key_env = Some(String::new());
    assert_eq!(
        spec.api_key(|_| panic!("an empty name is not looked up"))
            .expect_err("empty name"),
        HttpError::EmptyApiKeyEnv
    );

    let spec = http_spec("https://example.com/v1");
    let err = Http::new(spec.clone(), Some(ApiKey::new("bad\nkey"))).expect_err("bad key");
    assert_eq!(err, HttpError::InvalidApiKey);
    assert!(!err.to_string().contains("bad"));
    assert_eq!(
        Http::new(spec, Some(ApiKey::new(""))).expect_err("empty key"),
        HttpError::EmptyApiKey
    );
}

#[test]
fn the_spec_deserializes_strictly() {
    let spec: HttpSpec = serde_json::from_value(json!({
        "base_url": "https://api.openai.com/v1",
        "model": "gpt-4o-mini",
        "api_key_env": "OPENAI_API_KEY",
        "temperature": 0.5,
        "max_retries": 5
    }))
    .expect("valid spec");
    assert_eq!(spec.api_key_env.as_deref(), Some("OPENAI_API_KEY"));
    assert_eq!(spec.max_retries, Some(5));
    assert_eq!(spec.max_tokens, None);
    let back: HttpSpec =
        serde_json::from_value(serde_json::to_value(&spec).expect("serialize")).expect("again");
    assert_eq!(back, spec);

    let unknown = serde_json::from_value::<HttpSpec>(json!({
        "base_url": "https://api.openai.com/v1",
        "model": "m",
        "api_key": "sk-inline"
    }));
    assert!(unknown.is_err());
}
