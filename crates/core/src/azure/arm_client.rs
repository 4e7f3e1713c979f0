//! A small Azure Resource Manager client: bearer authentication, retries where ARM says retrying
//! is right (429 and 5xx, honouring `Retry-After`), ARM error bodies turned into messages that
//! name the resource, the URL and the status, and long-running operations followed through
//! `Azure-AsyncOperation` or `Location`.
//!
//! Deliberately not the generated Azure SDK clients: drscript needs four calls, and owning the
//! HTTP exchange is what lets every error name its URL and every wait honour cancellation.

use std::time::{Duration, Instant};

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::credential::Credential;
use crate::config::Config;
use drscript_base::error::{Error, Result};
use drscript_base::redact;
use drscript_base::retry::{self, Policy};

pub const PUBLIC_CLOUD: &str = "https://management.azure.com";
/// ARM's budget per request (`drscript_base::retry`): a switch waits on every call, so fewer
/// tries than a share copy (5, 0.5 s doubling to 10 s); a `Retry-After` is waited at least.
pub const POLICY: Policy = Policy::new(5, Duration::from_millis(500), Duration::from_secs(10));

#[derive(Debug, Clone)]
pub struct ArmClient {
    endpoint: String,
    /// Audience of the tokens: the public cloud's for a real endpoint.
    resource: String,
    credential: Credential,
    http: reqwest::Client,
}

/// A final answer (after retries).
#[derive(Debug)]
pub struct ArmResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub method: Method,
    pub url: String,
}

/// One exchange of a request that must not be repeated blindly.
#[derive(Debug)]
pub enum Attempt {
    /// ARM answered, with any status.
    Answered(ArmResponse),
    /// The connection was refused: the request never left, nothing happened.
    NotSent(String),
    /// The request may or may not have reached ARM (a timeout, a connection lost after
    /// sending): only reading the resource tells.
    Unknown(String),
}

/// How a long-running operation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LroStatus {
    Succeeded,
    Failed(String),
    Canceled,
}

fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder().timeout(Duration::from_secs(60)).connect_timeout(Duration::from_secs(10))
}

impl ArmClient {
    pub fn from_config(config: &Config) -> Result<ArmClient> {
        let azure = config.azure.as_ref().ok_or_else(|| Error::Config {
            message: format!("no [azure] section in {}: it says how to authenticate to Azure", config.path.display()),
        })?;
        let endpoint = azure.resource_manager.clone().unwrap_or_else(|| PUBLIC_CLOUD.to_string());
        let mut client = ArmClient::new(&endpoint, config.credential.get()?);
        if let Some(pem) = &azure.extra_roots {
            client.http = drscript_sync::http::trusting(client_builder(), Some(pem)).build().unwrap_or_default();
        }
        Ok(client)
    }

    pub fn new(endpoint: &str, credential: Credential) -> ArmClient {
        let endpoint = endpoint.trim_end_matches('/').to_string();
        let resource =
            if endpoint.starts_with("https://management.") { endpoint.clone() } else { PUBLIC_CLOUD.to_string() };
        let http = client_builder().build().expect("building an HTTP client cannot fail with these settings");
        ArmClient { endpoint, resource, credential, http }
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn url_of(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}{path}", self.endpoint)
        }
    }

    /// One exchange, never repeated: what ARM answered, or why there is no answer.
    pub async fn send_once(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Result<Attempt> {
        let url = self.url_of(path);
        let token = self.credential.token(&self.resource).await?;
        let mut request = self
            .http
            .request(method.clone(), &url)
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .header("Accept", "application/json");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.header(CONTENT_TYPE, "application/json").body(body.to_string());
        } else if method == Method::POST || method == Method::PUT {
            request = request.header(reqwest::header::CONTENT_LENGTH, "0");
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                let refused = e.is_connect();
                let why = redact::redacted(drscript_base::error::chain(&e.without_url()));
                // A refused connection never carried the request; anything later may have.
                return Ok(if refused { Attempt::NotSent(why) } else { Attempt::Unknown(why) });
            }
        };
        let status = response.status();
        let headers = response.headers().clone();
        let text = match response.text().await {
            Ok(t) => t,
            // The status says what ARM decided; a body cut short only loses its details.
            Err(e) if status.is_success() => {
                tracing::debug!("{method} {url}: {status}, body lost: {}", e.without_url());
                String::new()
            }
            Err(e) => return Ok(Attempt::Unknown(redact::redacted(drscript_base::error::chain(&e.without_url())))),
        };
        let body = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Ok(Attempt::Answered(ArmResponse { status, headers, body, method, url }))
    }

    /// Sends a request to `path` (starting with `/subscriptions/...`, query included) or to an
    /// absolute URL (operation status), retrying 429/5xx and lost connections: only for requests
    /// that are safe to repeat (GET, and PUT with a condition). Any other status is returned as
    /// is.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Result<ArmResponse> {
        // A request that may have been acted on is sent once: its caller reads the state again.
        let policy = if retry::idempotent(method.as_str()) { POLICY } else { Policy { tries: 1, ..POLICY } };
        let mut tries = policy.start();
        loop {
            let response = match self.send_once(method.clone(), path, body, headers).await? {
                Attempt::Answered(r) => r,
                Attempt::NotSent(why) | Attempt::Unknown(why) => match tries.next(None) {
                    Some(wait) => {
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    None => {
                        return Err(Error::action(
                            "azure",
                            format!("{method} {}", self.url_of(path)),
                            format!("cannot reach Azure Resource Manager ({} attempts): {why}", tries.tries()),
                        ));
                    }
                },
            };
            let status = response.status;
            if retry::retryable_status(status.as_u16())
                && let Some(wait) = tries.next(retry_after(&response.headers))
            {
                tracing::warn!("{method} {}: {status}, retrying in {:.1} s", response.url, wait.as_secs_f64());
                tokio::time::sleep(wait).await;
                continue;
            }
            return Ok(response);
        }
    }

    /// Follows a long-running operation started by `started` until it ends or `timeout` passes.
    pub async fn wait_operation(
        &self,
        started: &ArmResponse,
        timeout: Duration,
        primitive: &str,
        target: &str,
    ) -> Result<LroStatus> {
        let deadline = Instant::now() + timeout;
        let async_op = header(&started.headers, "azure-asyncoperation");
        let location = header(&started.headers, "location");
        let (url, via_async) = match (async_op, location) {
            (Some(u), _) => (u, true),
            (None, Some(u)) => (u, false),
            // Finished synchronously (200/204 without a status resource).
            (None, None) => return Ok(LroStatus::Succeeded),
        };
        let mut wait = retry_after(&started.headers).unwrap_or(Duration::from_millis(100));
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::action(
                    primitive,
                    target,
                    format!(
                        "the operation did not finish within {} s (status resource {url}); it may still complete in Azure",
                        timeout.as_secs()
                    ),
                ));
            }
            tokio::time::sleep(wait.min(left)).await;
            let poll = self.send(Method::GET, &url, None, &[]).await?;
            wait = retry_after(&poll.headers).unwrap_or_else(|| (wait * 2).min(Duration::from_secs(10)));
            if via_async {
                let poll = poll.into_result(primitive, target)?;
                match poll.body.get("status").and_then(Value::as_str).unwrap_or("") {
                    "Succeeded" => return Ok(LroStatus::Succeeded),
                    "Failed" => return Ok(LroStatus::Failed(error_text(&poll.body))),
                    "Canceled" | "Cancelled" => return Ok(LroStatus::Canceled),
                    _ => {}
                }
            } else if poll.status == StatusCode::ACCEPTED {
                continue;
            } else {
                poll.into_result(primitive, target)?;
                return Ok(LroStatus::Succeeded);
            }
        }
    }
}

impl ArmResponse {
    /// The response when it succeeded, else an error naming target, URL and status.
    pub fn into_result(self, primitive: &str, target: &str) -> Result<ArmResponse> {
        if self.status.is_success() {
            return Ok(self);
        }
        let hint = match self.status.as_u16() {
            401 => " (authentication failed: check [azure] auth and the token or credentials)",
            403 => " (the identity lacks permission on this resource: check its role assignments)",
            404 => " (not found: check the subscription, resource group and name)",
            409 => " (conflict: another operation on this resource is in progress or its state does not allow it)",
            412 => " (the resource changed since it was read: its etag no longer matches)",
            429 => " (throttled by Azure; retries exhausted)",
            _ => "",
        };
        Err(Error::action(
            primitive,
            format!("{target} ({} {})", self.method, self.url),
            redact::redacted(format!("{}: {}{hint}", self.status, error_text(&self.body))),
        ))
    }
}

/// `code: message` of an ARM error body, or the raw body.
pub fn error_text(body: &Value) -> String {
    let error = body.get("error").unwrap_or(body);
    match (error.get("code").and_then(Value::as_str), error.get("message").and_then(Value::as_str)) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_string(),
        (None, Some(message)) => message.to_string(),
        _ if body.is_null() => "(empty body)".to_string(),
        _ => body.to_string(),
    }
}

pub fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|v: &HeaderValue| v.to_str().ok()).map(str::to_string)
}

/// The wait ARM asks for (`x-ms-retry-after-ms`, `Retry-After` in seconds or as a date).
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    retry::retry_after(|name| headers.get(name)?.to_str().ok())
}
