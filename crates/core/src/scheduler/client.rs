//! The HTTP client of one environment's gateway: TLS verified by default (with an optional CA
//! bundle, or `gateway_insecure` as a logged opt-out), timeouts, the configured authentication,
//! retries of connection failures, 429 and 5xx, and errors that carry the status and a short,
//! redacted excerpt of the body.

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::config::{Environment, GatewayAuth};
use drscript_base::error::{Error, Result};
use drscript_base::redact::redacted;
use drscript_base::retry::{self, Policy};
use drscript_base::secret::SecretRef;

/// A gateway's budget per request (`drscript_base::retry`): 3 tries, 0.4 s doubling; a
/// `Retry-After` is waited at least.
const POLICY: Policy = Policy::new(3, Duration::from_millis(400), Duration::from_secs(10));
const EXCERPT: usize = 200;

/// A gateway and how to authenticate to it.
pub struct Gateway {
    env: String,
    base: String,
    http: reqwest::Client,
    auth: Auth,
    /// The `ACCESS_TOKEN` of an Adeptia API login, or the session cookie(s) of a form login
    /// (`JSESSIONID=...`), once logged in.
    token: Option<String>,
}

/// Credentials resolved lazily, only when a call needs them.
enum Auth {
    None,
    Basic { username: String, password: SecretRef },
    Bearer(SecretRef),
    Header { name: String, value: SecretRef },
    Login { username: String, password: SecretRef, path: String },
    Form { username: String, password: SecretRef, path: String, fields: (String, String) },
}

fn secret(key: &str, env_var: &Option<String>, file: &Option<PathBuf>, base: &Path) -> Result<SecretRef> {
    match (env_var, file) {
        (Some(var), _) => Ok(SecretRef::Env { key: key.to_string(), var: var.clone() }),
        (None, Some(path)) => Ok(SecretRef::File { key: key.to_string(), path: base.join(path) }),
        (None, None) => Err(Error::Config { message: format!("`{key}`: missing `_env` or `_file`") }),
    }
}

impl Gateway {
    /// `base` is the config file's folder: `*_file` secrets of `gateway_auth` are relative to it.
    pub fn new(env: &Environment, base: &Path) -> Result<Gateway> {
        let key = |k: &str| format!("environments.{}.gateway_auth.{k}", env.name);
        let auth = match &env.gateway_auth {
            GatewayAuth::None => Auth::None,
            GatewayAuth::Basic { username, password_env, password_file } => Auth::Basic {
                username: username.clone(),
                password: secret(&key("password"), password_env, password_file, base)?,
            },
            GatewayAuth::Bearer { token_env, token_file } => {
                Auth::Bearer(secret(&key("token"), token_env, token_file, base)?)
            }
            GatewayAuth::Header { header, value_env, value_file } => {
                Auth::Header { name: header.clone(), value: secret(&key("value"), value_env, value_file, base)? }
            }
            GatewayAuth::AdeptiaLogin { username, password_env, password_file, login_path } => Auth::Login {
                username: username.clone(),
                password: secret(&key("password"), password_env, password_file, base)?,
                path: login_path.clone(),
            },
            GatewayAuth::FormLogin {
                username,
                password_env,
                password_file,
                login_path,
                username_field,
                password_field,
            } => Auth::Form {
                username: username.clone(),
                password: secret(&key("password"), password_env, password_file, base)?,
                path: login_path.clone(),
                fields: (username_field.clone(), password_field.clone()),
            },
        };
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none());
        if let Some(ca) = &env.gateway_ca_file {
            let pem = std::fs::read(ca).map_err(|e| Error::Config {
                message: format!("environments.{}.gateway_ca_file: cannot read {}: {e}", env.name, ca.display()),
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| Error::Config {
                message: format!(
                    "environments.{}.gateway_ca_file: {} is not a PEM bundle: {e}",
                    env.name,
                    ca.display()
                ),
            })?;
            if certs.is_empty() {
                return Err(Error::Config {
                    message: format!(
                        "environments.{}.gateway_ca_file: {} holds no PEM certificate",
                        env.name,
                        ca.display()
                    ),
                });
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        if env.gateway_insecure {
            tracing::warn!(
                "TLS verification is off for the gateway of `{}` ({}) because gateway_insecure = true",
                env.name,
                env.gateway
            );
            builder = builder.tls_danger_accept_invalid_certs(true);
        }
        let http = builder
            .build()
            .map_err(|e| Error::Other(format!("cannot build the HTTP client for {}: {e}", env.gateway)))?;
        Ok(Gateway {
            env: env.name.clone(),
            base: env.gateway.trim_end_matches('/').to_string(),
            http,
            auth,
            token: None,
        })
    }

    /// The secret this gateway's authentication needs, if any (not read here).
    pub fn secret(&self) -> Option<&SecretRef> {
        match &self.auth {
            Auth::None => None,
            Auth::Basic { password, .. } | Auth::Login { password, .. } | Auth::Form { password, .. } => Some(password),
            Auth::Bearer(token) => Some(token),
            Auth::Header { value, .. } => Some(value),
        }
    }

    /// `prod gateway https://gw.example.com`, how actions and errors name the gateway.
    pub fn target(&self) -> String {
        format!("{} gateway {}", self.env, self.base)
    }

    /// A GET returning JSON, authenticated, retried on transient failures.
    pub async fn get_json(&mut self, primitive: &str, path_and_query: &str) -> Result<Value> {
        let url = format!("{}{path_and_query}", self.base);
        let mut relogged = false;
        let mut tries = POLICY.start();
        loop {
            let mut asked = None;
            let request = self.authorise(primitive, self.http.request(Method::GET, &url)).await?;
            match request.header("Accept", "application/json").send().await {
                Err(e) if tries.has_more() && transient(&e) => {}
                Err(e) => {
                    let detail = drscript_base::error::chain(&e);
                    let hint = if detail.contains("certificate") {
                        " (the gateway's certificate is not trusted: set gateway_ca_file to its CA bundle)"
                    } else {
                        ""
                    };
                    return Err(self.fail(primitive, format!("cannot reach {}: {detail}{hint}", self.base)));
                }
                Ok(response) => {
                    let status = response.status();
                    asked = retry::retry_after(|name| response.headers().get(name)?.to_str().ok());
                    let html = is_html(&response);
                    let location = location(&response);
                    let body = response.text().await.unwrap_or_default();
                    // Sent to the login page: not logged in (a session or token that expired),
                    // never an answer about the scheduler.
                    let to_login = status.is_redirection() && location.as_deref().is_some_and(looks_like_login)
                        || status.is_success() && html && looks_like_login_page(&body);
                    let logs_in = matches!(self.auth, Auth::Login { .. } | Auth::Form { .. });
                    if (status == StatusCode::UNAUTHORIZED || to_login) && logs_in && !relogged {
                        // The token or session may have expired: log in once more.
                        self.token = None;
                        relogged = true;
                        continue;
                    }
                    if to_login {
                        let what = match &location {
                            Some(l) if status.is_redirection() => format!("a redirect to the login page {l}"),
                            _ => "an HTML page".to_string(),
                        };
                        return Err(self.fail(
                            primitive,
                            format!(
                                "{status}: the gateway answered with {what} instead of JSON: a login form, drscript is not logged in (check gateway_auth and its secret): {}",
                                excerpt(&body)
                            ),
                        ));
                    }
                    if status.is_redirection() {
                        return Err(self.fail(
                            primitive,
                            format!("{status}: redirected to {} (check the gateway URL)", location.unwrap_or_default()),
                        ));
                    }
                    if retry::retryable_status(status.as_u16()) && tries.has_more() {
                        tracing::debug!("{primitive} {}: {status}; retrying", self.target());
                    } else if !status.is_success() {
                        let hint = match status.as_u16() {
                            401 | 403 => " (check gateway_auth and its secret)",
                            _ => "",
                        };
                        return Err(self.fail(primitive, format!("{status}{hint}: {}", excerpt(&body))));
                    } else if html || body.trim_start().starts_with('<') {
                        return Err(self.fail(
                            primitive,
                            format!(
                                "{status} but the gateway answered with an HTML page instead of JSON (a login page or a proxy? check the gateway URL and gateway_auth): {}",
                                excerpt(&body)
                            ),
                        ));
                    } else {
                        return serde_json::from_str(&body).map_err(|e| {
                            self.fail(
                                primitive,
                                format!("{status} but the reply is not JSON ({e}): {}", excerpt(&body)),
                            )
                        });
                    }
                }
            }
            tokio::time::sleep(tries.next(asked).unwrap_or_default()).await;
        }
    }

    async fn authorise(
        &mut self,
        primitive: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::RequestBuilder> {
        Ok(match &self.auth {
            Auth::None => request,
            Auth::Basic { username, password } => request.basic_auth(username, Some(password.resolve()?)),
            Auth::Bearer(token) => request.bearer_auth(token.resolve()?),
            Auth::Header { name, value } => request.header(name.as_str(), value.resolve()?),
            Auth::Login { .. } => {
                if self.token.is_none() {
                    self.token = Some(self.login(primitive).await?);
                }
                request.header("ACCESS_TOKEN", self.token.clone().unwrap_or_default())
            }
            Auth::Form { .. } => {
                if self.token.is_none() {
                    self.token = Some(self.form_login(primitive).await?);
                }
                request.header(reqwest::header::COOKIE, self.token.clone().unwrap_or_default())
            }
        })
    }

    /// A form login: POST the credentials as `application/x-www-form-urlencoded` to
    /// `{login_path}`; the session comes back in `Set-Cookie`. Refused when the server sends the
    /// browser back to a login or error page, or sets no cookie.
    async fn form_login(&self, primitive: &str) -> Result<String> {
        let Auth::Form { username, password, path, fields } = &self.auth else {
            return Err(Error::Other("form login without form login configured".to_string()));
        };
        let url = format!("{}{path}", self.base);
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair(&fields.0, username)
            .append_pair(&fields.1, &password.resolve()?)
            .finish();
        let response = self
            .post_login(primitive, &url, || {
                self.http
                    .post(&url)
                    .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(body.clone())
            })
            .await?;
        let status = response.status();
        let landing = location(&response);
        let cookies: Vec<String> = response
            .headers()
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|c| c.split(';').next())
            .map(|c| c.trim().to_string())
            .filter(|c| c.contains('='))
            .collect();
        let html = is_html(&response);
        let text = response.text().await.unwrap_or_default();
        let refused = status == StatusCode::UNAUTHORIZED
            || status == StatusCode::FORBIDDEN
            || landing.as_deref().is_some_and(|l| looks_like_login(l) || l.contains("error"))
            || (status.is_success() && html && looks_like_login_page(&text));
        if refused {
            return Err(self.fail(
                primitive,
                format!(
                    "login at {url} as `{username}`: the form login was refused ({status}{}); check gateway_auth and its secret",
                    landing.map(|l| format!(", sent to {l}")).unwrap_or_default()
                ),
            ));
        }
        if !(status.is_success() || status.is_redirection()) {
            return Err(self.fail(primitive, format!("login at {url} as `{username}`: {status}: {}", excerpt(&text))));
        }
        if cookies.is_empty() {
            return Err(self.fail(primitive, format!("login at {url} answered {status} without a session cookie")));
        }
        let session = cookies.join("; ");
        for c in &cookies {
            if let Some((_, value)) = c.split_once('=') {
                drscript_base::redact::register(value);
            }
        }
        Ok(session)
    }

    /// Adeptia's API login: `POST {login_path}` with JSON credentials; the token comes back in
    /// the `ACCESS_TOKEN` response header.
    async fn login(&self, primitive: &str) -> Result<String> {
        let Auth::Login { username, password, path } = &self.auth else {
            return Err(Error::Other("login without API login configured".to_string()));
        };
        let url = format!("{}{path}", self.base);
        let body = json!({"username": username, "password": password.resolve()?});
        let response = self.post_login(primitive, &url, || self.http.post(&url).json(&body)).await?;
        let status = response.status();
        let token = response.headers().get("ACCESS_TOKEN").and_then(|v| v.to_str().ok()).map(str::to_string);
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(self.fail(primitive, format!("login at {url} as `{username}`: {status}: {}", excerpt(&text))));
        }
        let token = token.ok_or_else(|| {
            self.fail(primitive, format!("login at {url} answered {status} without an ACCESS_TOKEN header"))
        })?;
        drscript_base::redact::register(&token);
        Ok(token)
    }

    /// Sends a login request built by `request`. Logging in changes nothing on the gateway, so
    /// every transient failure (no connection, 429, 5xx) is retried; the last answer is returned.
    async fn post_login(
        &self,
        primitive: &str,
        url: &str,
        request: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response> {
        let mut tries = POLICY.start();
        loop {
            let mut asked = None;
            match request().send().await {
                Err(e) if tries.has_more() && transient(&e) => {}
                Err(e) => {
                    return Err(self.fail(
                        primitive,
                        format!("cannot reach {url} to log in: {}", drscript_base::error::chain(&e)),
                    ));
                }
                Ok(r) if tries.has_more() && retry::retryable_status(r.status().as_u16()) => {
                    asked = retry::retry_after(|name| r.headers().get(name)?.to_str().ok());
                }
                Ok(r) => return Ok(r),
            }
            tokio::time::sleep(tries.next(asked).unwrap_or_default()).await;
        }
    }

    fn fail(&self, primitive: &str, message: String) -> Error {
        Error::action(primitive, self.target(), redacted(message))
    }
}

/// A failure worth another try: no connection, a timeout, or a connection dropped mid-request
/// (the scheduler calls are idempotent: a repeated Pause finds the scheduler paused).
fn transient(e: &reqwest::Error) -> bool {
    e.is_connect() || e.is_timeout() || e.is_request()
}

/// The `Location` of a redirect.
fn location(response: &reqwest::Response) -> Option<String> {
    response.headers().get(reqwest::header::LOCATION).and_then(|v| v.to_str().ok()).map(str::to_string)
}

/// A URL of a login page (`/login`, `/login.jsp?error`, `/j_security_check`, `/signin`).
fn looks_like_login(url: &str) -> bool {
    let url = url.to_ascii_lowercase();
    ["login", "signin", "sign-in", "j_security_check", "logon"].iter().any(|w| url.contains(w))
}

/// An HTML page with a password field: a login form, whatever its URL.
fn looks_like_login_page(body: &str) -> bool {
    let body = body.to_ascii_lowercase();
    body.contains("type=\"password\"") || body.contains("type='password'") || body.contains("j_password")
}

fn is_html(response: &reqwest::Response) -> bool {
    response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.contains("html"))
}

/// The first characters of a body, on one line, redacted.
fn excerpt(body: &str) -> String {
    let flat: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut cut: String = flat.chars().take(EXCERPT).collect();
    if flat.chars().count() > EXCERPT {
        cut.push('…');
    }
    if cut.is_empty() {
        cut = "(empty body)".to_string();
    }
    redacted(cut)
}
