//! The `http` executor: runs one attempt as a single chat completion against an
//! OpenAI-compatible endpoint (`POST {base_url}/chat/completions`).
//!
//! The rendered prompt is sent as the user message (after an optional system message) and
//! written to `prompt.md`; the reply text goes to `stdout.log` and `response.md` in the
//! attempt directory. The reply may report back through a fenced block tagged
//! `downbeat-result` holding the same JSON as the result file of the process executor (see
//! [`AgentReport`]); without one, the first few hundred characters of the reply become the
//! report's summary. Rate limiting (429) and server errors (5xx) are retried with exponential
//! backoff; other client errors and unreachable endpoints fail the attempt at once. The
//! attempt's timeout and the cancellation token abort the request in flight.
//!
//! The API key comes in as a value ([`ApiKey`]): the caller reads it from wherever the
//! configuration says (the environment variable named by [`HttpSpec::api_key_env`], looked up
//! through [`HttpSpec::api_key`]); this module never reads the environment itself. The key must
//! never be logged, stored in a file, put in an error message or printed by `Debug`: it only
//! ever goes into the
//! `Authorization` header (marked sensitive), and any echo of it in a response is replaced by
//! `***` before that response is written or quoted. Redirects are not followed, so the key is
//! never sent anywhere but the configured endpoint. This module must also never panic on
//! network data or touch the store.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::types::{AgentReport, AttemptSpec, Executor, Outcome, OutcomeKind, TokenUsage, files};

/// File in the attempt directory that receives the reply text (besides `stdout.log`).
pub const RESPONSE_FILE: &str = files::RESPONSE;

/// Retries after a 429 or 5xx when [`HttpSpec::max_retries`] is not set.
pub const DEFAULT_MAX_RETRIES: u32 = 3;

/// First backoff delay; each further retry waits twice as long, up to [`MAX_BACKOFF`].
pub const DEFAULT_BACKOFF_BASE: Duration = Duration::from_millis(500);

/// Longest backoff delay computed by the executor.
pub const MAX_BACKOFF: Duration = Duration::from_secs(8);

/// Longest wait a server can ask for with `Retry-After`.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// Tag of the fenced block through which a reply reports back.
pub const RESULT_BLOCK_TAG: &str = "downbeat-result";

/// Path appended to `base_url`.
const ENDPOINT_PATH: &str = "chat/completions";

/// How long establishing a connection (TCP and TLS) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Successful response bodies larger than this are rejected rather than held in memory.
const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// How much of an error response is read to quote from it.
const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;

/// Length (in characters) of the body excerpt quoted in error messages.
const EXCERPT_CHARS: usize = 200;

/// Length (in characters) of the summary taken from a reply without a result block.
const SUMMARY_CHARS: usize = 500;

/// A chat-completion endpoint to call for each attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSpec {
    /// Base URL of the API, e.g. `https://api.openai.com/v1`; requests go to
    /// `{base_url}/chat/completions`.
    pub base_url: String,
    /// Model name sent with each request.
    pub model: String,
    /// Name of the environment variable holding the API key (the key itself is never part of
    /// the configuration). Without it, no `Authorization` header is sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
    /// Sampling temperature, sent only when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// Cap on the reply length in tokens, sent only when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// System message sent before the prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// Retries after a 429 or 5xx response or a request timeout (default
    /// [`DEFAULT_MAX_RETRIES`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<u32>,
    /// Limit for one request, response body included, in milliseconds (default: only the
    /// attempt's timeout applies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_timeout_ms: Option<u64>,
}

/// Why an [`HttpSpec`] cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    #[error("invalid base_url `{url}`: {reason}")]
    InvalidBaseUrl { url: String, reason: String },
    #[error("base_url `{url}` must use http or https, not `{scheme}`")]
    UnsupportedScheme { url: String, scheme: String },
    #[error("base_url must not contain a user name or password (use api_key_env for the key)")]
    CredentialsInBaseUrl,
    #[error("the model name is empty")]
    EmptyModel,
    #[error("api_key_env is empty: it must name an environment variable")]
    EmptyApiKeyEnv,
    #[error("environment variable {0} (api_key_env) is not set")]
    ApiKeyNotSet(String),
    #[error("environment variable {0} (api_key_env) is not set (it is empty)")]
    ApiKeyEmpty(String),
    #[error("environment variable {0} (api_key_env) does not hold valid unicode")]
    ApiKeyNotUnicode(String),
    #[error("the api key is empty")]
    EmptyApiKey,
    #[error("the api key contains characters that cannot be sent in an http header")]
    InvalidApiKey,
    #[error("temperature must be a finite number of at least 0, not {0}")]
    InvalidTemperature(String),
    #[error("request_timeout_ms must be greater than 0")]
    ZeroRequestTimeout,
    #[error("could not set up the http client: {0}")]
    Client(String),
}

/// Calls a chat-completion endpoint for each attempt (see the module documentation).
///
/// `Debug` never shows the API key.
#[derive(Clone)]
pub struct Http {
    spec: HttpSpec,
    endpoint: Url,
    api_key: Option<Credentials>,
    client: reqwest::Client,
    backoff_base: Duration,
}

/// An API key, resolved by the caller. `Debug` shows `ApiKey(***)`, never the key.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

impl HttpSpec {
    /// The API key named by [`HttpSpec::api_key_env`], given a way to look a variable up
    /// (the caller's environment, usually `std::env::var_os`); `None` when the spec names no
    /// variable.
    ///
    /// Fails if the name is empty or the variable is missing, empty or not unicode, so a
    /// missing key is found before any attempt starts.
    pub fn api_key(
        &self,
        lookup: impl FnOnce(&str) -> Option<OsString>,
    ) -> Result<Option<ApiKey>, HttpError> {
        let Some(name) = self.api_key_env.as_deref() else {
            return Ok(None);
        };
        if name.is_empty() {
            return Err(HttpError::EmptyApiKeyEnv);
        }
        match lookup(name).map(OsString::into_string) {
            None => Err(HttpError::ApiKeyNotSet(name.into())),
            Some(Err(_)) => Err(HttpError::ApiKeyNotUnicode(name.into())),
            Some(Ok(value)) if value.trim().is_empty() => Err(HttpError::ApiKeyEmpty(name.into())),
            Some(Ok(value)) => Ok(Some(ApiKey(value))),
        }
    }
}

/// The API key, kept only as a sensitive header value plus the text needed to redact echoes.
#[derive(Clone)]
struct Credentials {
    header: HeaderValue,
    secret: String,
}

impl Http {
    /// Checks the spec and uses `api_key` (sent as `Authorization: Bearer …` when `Some`;
    /// [`HttpSpec::api_key`] resolves the one the spec names).
    pub fn new(spec: HttpSpec, api_key: Option<ApiKey>) -> Result<Self, HttpError> {
        let endpoint = endpoint(&spec.base_url)?;
        if spec.model.trim().is_empty() {
            return Err(HttpError::EmptyModel);
        }
        if let Some(t) = spec.temperature
            && !(t.is_finite() && t >= 0.0)
        {
            return Err(HttpError::InvalidTemperature(t.to_string()));
        }
        if spec.request_timeout_ms == Some(0) {
            return Err(HttpError::ZeroRequestTimeout);
        }
        let api_key = api_key.map(Credentials::new).transpose()?;
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("downbeat/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| HttpError::Client(error_chain(&e)))?;
        Ok(Self {
            spec,
            endpoint,
            api_key,
            client,
            backoff_base: DEFAULT_BACKOFF_BASE,
        })
    }

    /// Sets the first backoff delay after a 429 or 5xx (default [`DEFAULT_BACKOFF_BASE`]);
    /// later delays double it, up to [`MAX_BACKOFF`]. Meant for tests.
    #[must_use]
    pub fn with_backoff_base(mut self, base: Duration) -> Self {
        self.backoff_base = base;
        self
    }

    /// The validated spec.
    pub fn spec(&self) -> &HttpSpec {
        &self.spec
    }

    /// The URL requests are sent to: `{base_url}/chat/completions`.
    pub fn endpoint(&self) -> &str {
        self.endpoint.as_str()
    }

    /// Whether requests carry an API key.
    pub fn has_api_key(&self) -> bool {
        self.api_key.is_some()
    }

    async fn attempt(&self, spec: &AttemptSpec, cancel: CancellationToken) -> Outcome {
        if cancel.is_cancelled() {
            return error(
                OutcomeKind::Cancelled,
                "cancelled before the request was sent".into(),
            );
        }
        let attempt_dir = match prepare(spec).await {
            Ok(dir) => dir,
            Err(message) => return error(OutcomeKind::Error, message),
        };

        let deadline = async {
            match spec.timeout {
                Some(t) => tokio::time::sleep(t).await,
                None => std::future::pending().await,
            }
        };
        let reply = tokio::select! {
            biased;
            reply = self.exchange(&spec.prompt) => reply,
            () = deadline => {
                let t = spec.timeout.unwrap_or_default();
                return error(OutcomeKind::TimedOut, format!("timed out after {t:?}"));
            }
            () = cancel.cancelled() => return error(OutcomeKind::Cancelled, "cancelled".into()),
        };
        let reply = match reply {
            Ok(reply) => reply,
            Err(message) => return error(OutcomeKind::Failed, message),
        };
        self.finish(&attempt_dir, reply).await
    }

    /// Sends the request, retrying 429, 5xx and request timeouts, and returns the parsed
    /// reply or why it failed (a sentence).
    async fn exchange(&self, prompt: &str) -> Result<Reply, String> {
        let body = self.request_body(prompt);
        let max_retries = self.spec.max_retries.unwrap_or(DEFAULT_MAX_RETRIES);
        let url = self.endpoint.as_str();
        let mut retries: u32 = 0;
        loop {
            let requests = retries.saturating_add(1);
            let gave_up = || {
                if requests == 1 {
                    String::new()
                } else {
                    format!(" (gave up after {requests} requests)")
                }
            };
            let (failure, retry_after) = match self.send(&body).await {
                Ok(Response::Ok(bytes)) => return self.parse_reply(&bytes),
                Ok(Response::Retryable {
                    status,
                    retry_after,
                    body,
                }) => (
                    format!(
                        "{status} from {url}{}: {}",
                        gave_up(),
                        self.excerpt(&body, EXCERPT_CHARS)
                    ),
                    retry_after,
                ),
                Ok(Response::Fatal { status, body }) => {
                    return Err(format!(
                        "{status} from {url}: {}",
                        self.excerpt(&body, EXCERPT_CHARS)
                    ));
                }
                Err(SendError::TimedOut(t)) => (
                    format!("no response from {url} within {t:?}{}", gave_up()),
                    None,
                ),
                Err(SendError::Fatal(message)) => return Err(message),
            };
            if retries >= max_retries {
                return Err(failure);
            }
            tokio::time::sleep(retry_delay(self.backoff_base, retries, retry_after)).await;
            retries = requests;
        }
    }

    fn request_body(&self, prompt: &str) -> serde_json::Value {
        let mut messages = Vec::with_capacity(2);
        if let Some(system) = &self.spec.system {
            messages.push(serde_json::json!({ "role": "system", "content": system }));
        }
        messages.push(serde_json::json!({ "role": "user", "content": prompt }));
        let mut body = serde_json::Map::new();
        body.insert("model".into(), self.spec.model.clone().into());
        body.insert("messages".into(), messages.into());
        if let Some(t) = self.spec.temperature {
            body.insert("temperature".into(), serde_json::json!(t));
        }
        if let Some(n) = self.spec.max_tokens {
            body.insert("max_tokens".into(), n.into());
        }
        body.into()
    }

    /// One request: classifies the response by status and reads (a capped amount of) its body.
    async fn send(&self, body: &serde_json::Value) -> Result<Response, SendError> {
        let url = self.endpoint.as_str();
        let mut request = self.client.post(self.endpoint.clone()).json(body);
        if let Some(key) = &self.api_key {
            request = request.header(AUTHORIZATION, key.header.clone());
        }
        let request_timeout = self.spec.request_timeout_ms.map(Duration::from_millis);
        if let Some(t) = request_timeout {
            request = request.timeout(t);
        }
        let transport = |e: reqwest::Error, reading: bool| {
            if e.is_connect() {
                SendError::Fatal(format!("{url} is unreachable: {}", cause_chain(&e)))
            } else if e.is_timeout() {
                SendError::TimedOut(request_timeout.unwrap_or_default())
            } else if reading {
                SendError::Fatal(format!(
                    "could not read the response from {url}: {}",
                    cause_chain(&e)
                ))
            } else {
                SendError::Fatal(format!("request to {url} failed: {}", cause_chain(&e)))
            }
        };
        let mut response = request.send().await.map_err(|e| transport(e, false))?;
        let status = response.status();
        if status.is_success() {
            let bytes = read_capped(&mut response, MAX_RESPONSE_BYTES)
                .await
                .map_err(|e| transport(e, true))?
                .ok_or_else(|| {
                    SendError::Fatal(format!(
                        "the response from {url} is larger than {MAX_RESPONSE_BYTES} bytes"
                    ))
                })?;
            return Ok(Response::Ok(bytes));
        }
        let retry_after = parse_retry_after(response.headers());
        // The body only serves as an excerpt: a failure to read it loses nothing essential.
        let body = match read_capped(&mut response, MAX_ERROR_BODY_BYTES).await {
            Ok(Some(bytes)) => bytes,
            Ok(None) | Err(_) => Vec::new(),
        };
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            Ok(Response::Retryable {
                status,
                retry_after,
                body,
            })
        } else {
            Ok(Response::Fatal { status, body })
        }
    }

    /// Parses a successful response body.
    fn parse_reply(&self, bytes: &[u8]) -> Result<Reply, String> {
        let url = self.endpoint.as_str();
        let parsed: ChatResponse = serde_json::from_slice(bytes).map_err(|e| {
            format!(
                "malformed response from {url} ({e}): {}",
                self.excerpt(bytes, EXCERPT_CHARS)
            )
        })?;
        let Some(choice) = parsed.choices.into_iter().next() else {
            return Err(format!(
                "malformed response from {url}: it has no choices: {}",
                self.excerpt(bytes, EXCERPT_CHARS)
            ));
        };
        let Some(text) = choice.message.content else {
            return Err(format!(
                "the reply from {url} has no text content (finish reason: {})",
                choice.finish_reason.as_deref().unwrap_or("none")
            ));
        };
        let tokens = parsed.usage.and_then(|u| {
            (u.prompt_tokens.is_some() || u.completion_tokens.is_some()).then(|| TokenUsage {
                prompt: u.prompt_tokens.unwrap_or(0),
                completion: u.completion_tokens.unwrap_or(0),
            })
        });
        Ok(Reply {
            text: self.redact(&text),
            tokens,
        })
    }

    /// Writes the reply and decides the outcome from it.
    async fn finish(&self, attempt_dir: &Path, reply: Reply) -> Outcome {
        let stdout = attempt_dir.join(files::STDOUT);
        for path in [&stdout, &attempt_dir.join(RESPONSE_FILE)] {
            if let Err(e) = tokio::fs::write(path, &reply.text).await {
                return error(
                    OutcomeKind::Error,
                    format!("could not write {}: {e}", path.display()),
                );
            }
        }
        let mut outcome = Outcome::new(OutcomeKind::Failed, Duration::ZERO);
        outcome.stdout = Some(stdout);
        outcome.tokens = reply.tokens;
        match report_from_reply(&reply.text) {
            Err(message) => outcome.error = Some(message),
            Ok(report) => {
                match report.status.as_deref() {
                    None | Some("completed") => outcome.kind = OutcomeKind::Succeeded,
                    Some("failed") => {
                        outcome.error = Some("the agent reported status failed".into());
                    }
                    Some(other) => {
                        outcome.error = Some(format!(
                            "the {RESULT_BLOCK_TAG} block has unknown status `{other}` \
                             (expected `completed` or `failed`)"
                        ));
                    }
                }
                outcome.report = Some(report);
            }
        }
        outcome
    }

    /// Replaces every occurrence of the API key in `text` with `***`.
    fn redact(&self, text: &str) -> String {
        match &self.api_key {
            Some(key) if text.contains(&key.secret) => text.replace(&key.secret, "***"),
            _ => text.to_owned(),
        }
    }

    /// A one-line, redacted excerpt of a response body for error messages.
    fn excerpt(&self, body: &[u8], chars: usize) -> String {
        let text = String::from_utf8_lossy(body);
        let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
        // Redact before cutting, so no part of the key can survive the cut.
        let line = self.redact(&line);
        if line.is_empty() {
            "(empty body)".to_owned()
        } else {
            truncate(&line, chars)
        }
    }
}

impl fmt::Debug for Http {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Http")
            .field("spec", &self.spec)
            .field("endpoint", &self.endpoint.as_str())
            .field("api_key", &self.api_key.as_ref().map(|_| "***"))
            .field("backoff_base", &self.backoff_base)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// Surrounding whitespace (a stray newline in the variable) is dropped.
    fn new(key: ApiKey) -> Result<Self, HttpError> {
        let secret = key.0.trim().to_owned();
        if secret.is_empty() {
            return Err(HttpError::EmptyApiKey);
        }
        let mut header = HeaderValue::from_str(&format!("Bearer {secret}"))
            .map_err(|_| HttpError::InvalidApiKey)?;
        header.set_sensitive(true);
        Ok(Self { header, secret })
    }
}

#[async_trait]
impl Executor for Http {
    async fn run(&self, spec: &AttemptSpec, cancel: CancellationToken) -> Outcome {
        let start = Instant::now();
        let mut outcome = self.attempt(spec, cancel).await;
        outcome.duration = start.elapsed();
        outcome
    }
}

/// What one request came back with.
enum Response {
    /// 2xx, with the whole body.
    Ok(Vec<u8>),
    /// 429 or 5xx: worth another try.
    Retryable {
        status: StatusCode,
        retry_after: Option<Duration>,
        body: Vec<u8>,
    },
    /// Any other status.
    Fatal { status: StatusCode, body: Vec<u8> },
}

/// Why one request got no response.
enum SendError {
    /// The request timeout ran out: worth another try.
    TimedOut(Duration),
    /// Unreachable endpoint or another transport failure, as a sentence.
    Fatal(String),
}

/// The useful part of a successful response.
struct Reply {
    /// The reply text, with any echo of the API key redacted.
    text: String,
    tokens: Option<TokenUsage>,
}

#[derive(Deserialize)]
struct ChatResponse {
    #[serde(default)]
    choices: Vec<Choice>,
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Choice {
    message: Message,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Message {
    content: Option<String>,
}

#[derive(Deserialize)]
struct Usage {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
}

/// Validates `base_url` and appends the endpoint path.
fn endpoint(base_url: &str) -> Result<Url, HttpError> {
    let invalid = |reason: String| HttpError::InvalidBaseUrl {
        url: base_url.to_owned(),
        reason,
    };
    let url = Url::parse(base_url.trim()).map_err(|e| invalid(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(HttpError::UnsupportedScheme {
            url: base_url.to_owned(),
            scheme: url.scheme().to_owned(),
        });
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("it has no host".into()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(HttpError::CredentialsInBaseUrl);
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("it must not have a query or a fragment".into()));
    }
    let joined = format!("{}/{ENDPOINT_PATH}", url.as_str().trim_end_matches('/'));
    Url::parse(&joined).map_err(|e| invalid(e.to_string()))
}

/// Creates the attempt directory and writes the prompt. Errors are sentences.
async fn prepare(spec: &AttemptSpec) -> Result<PathBuf, String> {
    let dir = &spec.attempt_dir;
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| format!("could not create attempt directory {}: {e}", dir.display()))?;
    let prompt = dir.join(files::PROMPT);
    tokio::fs::write(&prompt, &spec.prompt)
        .await
        .map_err(|e| format!("could not write {}: {e}", prompt.display()))?;
    Ok(dir.clone())
}

/// Reads the body chunk by chunk; `Ok(None)` once it grows past `limit` bytes.
async fn read_capped(
    response: &mut reqwest::Response,
    limit: usize,
) -> Result<Option<Vec<u8>>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len().saturating_add(chunk.len()) > limit {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

/// `Retry-After` in seconds (the HTTP-date form is ignored), capped at [`MAX_RETRY_AFTER`].
fn parse_retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let seconds: u64 = value.parse().ok()?;
    Some(Duration::from_secs(seconds).min(MAX_RETRY_AFTER))
}

/// The wait before retry number `retries + 1`: the server's `Retry-After` when given,
/// otherwise `base × 2^retries`, capped at [`MAX_BACKOFF`].
fn retry_delay(base: Duration, retries: u32, retry_after: Option<Duration>) -> Duration {
    if let Some(wait) = retry_after {
        return wait.min(MAX_RETRY_AFTER);
    }
    let factor = 1u32.checked_shl(retries).unwrap_or(u32::MAX);
    base.checked_mul(factor)
        .unwrap_or(MAX_BACKOFF)
        .min(MAX_BACKOFF)
}

/// The report of a reply: its (last) `downbeat-result` block if it has one, otherwise a
/// summary made of the reply's first characters. A malformed block is an error (a sentence).
fn report_from_reply(text: &str) -> Result<AgentReport, String> {
    match result_block(text)? {
        Some(json) => serde_json::from_str(json).map_err(|e| {
            format!("the {RESULT_BLOCK_TAG} block in the reply is not a valid report: {e}")
        }),
        None => {
            let trimmed = text.trim();
            Ok(AgentReport {
                summary: (!trimmed.is_empty()).then(|| truncate(trimmed, SUMMARY_CHARS)),
                ..AgentReport::default()
            })
        }
    }
}

/// The content of the last fenced block tagged [`RESULT_BLOCK_TAG`], if any.
fn result_block(text: &str) -> Result<Option<&str>, String> {
    let mut found = None;
    let mut open: Option<usize> = None;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        let trimmed = line.trim();
        match open {
            None => {
                if let Some(tag) = trimmed.strip_prefix("```")
                    && tag.trim() == RESULT_BLOCK_TAG
                {
                    open = Some(offset);
                }
            }
            Some(content_start) => {
                if trimmed.starts_with("```") && trimmed.trim_start_matches('`').is_empty() {
                    found = text.get(content_start..start);
                    open = None;
                }
            }
        }
    }
    if open.is_some() {
        return Err(format!(
            "the {RESULT_BLOCK_TAG} block in the reply is not closed with ```"
        ));
    }
    Ok(found)
}

/// The first `chars` characters of `text`, with `…` appended if anything was cut.
fn truncate(text: &str, chars: usize) -> String {
    match text.char_indices().nth(chars) {
        Some((end, _)) => format!("{}…", text.get(..end).unwrap_or(text)),
        None => text.to_owned(),
    }
}

/// The causes of a request error, joined with `: `: reqwest's own message only repeats the
/// URL, which the callers name themselves.
fn cause_chain(e: &reqwest::Error) -> String {
    match std::error::Error::source(e) {
        Some(source) => error_chain(source),
        None => e.to_string(),
    }
}

/// An error and its sources, joined with `: `, skipping repeats.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next: Option<&dyn std::error::Error> = Some(e);
    while let Some(err) = next {
        let text = err.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = err.source();
    }
    parts.join(": ")
}

/// An outcome without output.
fn error(kind: OutcomeKind, message: String) -> Outcome {
    let mut outcome = Outcome::new(kind, Duration::ZERO);
    outcome.error = Some(message);
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let base = Duration::from_millis(500);
        let delays: Vec<_> = (0..7).map(|n| retry_delay(base, n, None)).collect();
        let ms: Vec<u128> = delays.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [500, 1000, 2000, 4000, 8000, 8000, 8000]);
        assert_eq!(retry_delay(base, 40, None), MAX_BACKOFF);
        assert_eq!(retry_delay(base, u32::MAX, None), MAX_BACKOFF);
    }

    #[test]
    fn retry_after_wins_and_is_capped() {
        let base = Duration::from_millis(500);
        assert_eq!(
            retry_delay(base, 0, Some(Duration::from_secs(3))),
            Duration::from_secs(3)
        );
        assert_eq!(
            retry_delay(base, 0, Some(Duration::from_secs(300))),
            MAX_RETRY_AFTER
        );
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("120"));
        assert_eq!(parse_retry_after(&headers), Some(MAX_RETRY_AFTER));
        headers.insert(RETRY_AFTER, HeaderValue::from_static(" 2 "));
        assert_eq!(parse_retry_after(&headers), Some(Duration::from_secs(2)));
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(parse_retry_after(&headers), None);
        assert_eq!(parse_retry_after(&HeaderMap::new()), None);
    }

    #[test]
    fn endpoint_is_joined_and_checked() {
        let ok = |u: &str| endpoint(u).map(|u| u.to_string());
        assert_eq!(
            ok("https://api.openai.com/v1").as_deref(),
            Ok("https://api.openai.com/v1/chat/completions")
        );
        assert_eq!(
            ok("http://127.0.0.1:8080/v1/").as_deref(),
            Ok("http://127.0.0.1:8080/v1/chat/completions")
        );
        assert_eq!(
            ok("http://localhost:8080").as_deref(),
            Ok("http://localhost:8080/chat/completions")
        );
        assert!(matches!(
            endpoint("ftp://example.com/v1"),
            Err(HttpError::UnsupportedScheme { .. })
        ));
        assert!(matches!(
            endpoint("not a url"),
            Err(HttpError::InvalidBaseUrl { .. })
        ));
        assert!(matches!(
            endpoint("https://api.example.com/v1?x=1"),
            Err(HttpError::InvalidBaseUrl { .. })
        ));
        assert_eq!(
            endpoint("https://user:pw@api.example.com/v1"),
            Err(HttpError::CredentialsInBaseUrl)
        );
    }

    #[test]
    fn result_block_takes_the_last_closed_block() {
        let text = "intro\n```downbeat-result\n{\"summary\":\"first\"}\n```\nmore\n\
                    ```downbeat-result\n{\"summary\":\"second\"}\n```\n";
        assert_eq!(result_block(text), Ok(Some("{\"summary\":\"second\"}\n")));
        assert_eq!(result_block("no block here\n```json\n{}\n```"), Ok(None));
        assert!(result_block("```downbeat-result\n{}\n").is_err());
        // A block at the very end without a trailing newline.
        assert_eq!(
            result_block("```downbeat-result\n{}\n```"),
            Ok(Some("{}\n"))
        );
    }

    #[test]
    fn summary_is_cut_on_a_char_boundary() {
        let long = "é".repeat(SUMMARY_CHARS + 10);
        let report = report_from_reply(&long).expect("report");
        let summary = report.summary.expect("summary");
        assert_eq!(summary.chars().count(), SUMMARY_CHARS + 1);
        assert!(summary.ends_with('…'));
        assert_eq!(report_from_reply("  \n").expect("report").summary, None);
    }

    #[test]
    fn excerpt_redacts_before_cutting() {
        let spec = HttpSpec {
            base_url: "http://127.0.0.1:1/v1".into(),
            model: "m".into(),
            api_key_env: None,
            temperature: None,
            max_tokens: None,
            system: None,
            max_retries: None,
            request_timeout_ms: None,
        };
        let key = "sk-0123456789abcdef";
        let http = Http::new(spec, Some(ApiKey::new(key))).expect("valid");
        let body = format!("{}{key}", "x".repeat(EXCERPT_CHARS - 5));
        let excerpt = http.excerpt(body.as_bytes(), EXCERPT_CHARS);
        assert!(!excerpt.contains("sk-01"), "{excerpt}");
        assert!(!format!("{http:?}").contains(key));
    }
}
