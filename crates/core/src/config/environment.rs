//! One environment (`[environments.NAME]`): a cluster, a gateway, replica counts and shares.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use drscript_base::error::{Error, Result};
use drscript_base::secret::SecretRef;

use super::ShareAuth;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    /// Set from the table's name after parsing.
    #[serde(skip)]
    pub name: String,
    /// The kubeconfig context; the kubeconfig's current context when absent.
    pub kube_context: Option<String>,
    /// A kubeconfig file; the standard search ($KUBECONFIG, ~/.kube/config) when absent.
    pub kubeconfig: Option<PathBuf>,
    pub namespace: String,
    /// The Helm release name: workloads are `<release>-ac-runtime` and so on.
    pub release: String,
    /// How workloads are named: a pattern with `{release}` and `{component}` (default
    /// `{release}-ac-{component}`, as Adeptia's chart names them).
    pub workload_names: Option<String>,
    /// Workload names per component that the pattern does not give (`webrunner = "web-runner"`).
    #[serde(default)]
    pub workloads: BTreeMap<String, String>,
    /// The Kubernetes kind of a component that is not the default (`rabbitmq` is a
    /// `statefulset`, every other component a `deployment`).
    #[serde(default)]
    pub kinds: BTreeMap<String, String>,
    /// URLs that must answer 2xx before traffic is sent to this environment (a customer's own
    /// health endpoints), checked by `check_serving` after the scheduler is resumed.
    #[serde(default)]
    pub health_urls: Vec<String>,
    /// Base URL of the web gateway (`https://host[:port]`), used for the scheduler.
    pub gateway: String,
    #[serde(default)]
    pub gateway_auth: GatewayAuth,
    /// PEM bundle of extra CA certificates for the gateway.
    pub gateway_ca_file: Option<PathBuf>,
    /// Turns TLS verification off for this gateway only; logged as a warning on every use.
    #[serde(default)]
    pub gateway_insecure: bool,
    /// Replica counts restored when this environment becomes active, by component (`runtime`,
    /// `listener`, `rabbitmq`, and any extra component a runbook scales). A count the config
    /// omits is never assumed: see [`Environment::replicas_of`].
    #[serde(default)]
    pub replicas: BTreeMap<String, u32>,
    /// File shares by name (`app`, `rabbitmq`, ...).
    #[serde(default)]
    pub shares: BTreeMap<String, Share>,
    /// The `[storage.NAME]` account that backs this environment's shares.
    pub storage_account: Option<String>,
    /// The gateway query that reads the scheduler's state back (`query=Status` by default). It
    /// is not part of Adeptia's documented procedure: an assumption drscript makes, which a
    /// customer's gateway may not share. `""` says the gateway has none: the state is then
    /// `unknown`, taken from what Pause/Resume answer where they say.
    #[serde(default = "default_status_query")]
    pub scheduler_status_query: String,
}

fn default_status_query() -> String {
    "Status".to_string()
}

/// The pattern of workload names in Adeptia's chart.
pub const DEFAULT_WORKLOAD_NAMES: &str = "{release}-ac-{component}";

/// The Kubernetes kinds a component can be.
pub const KINDS: &[&str] = &["deployment", "statefulset"];

impl Environment {
    /// The workload of `component` (`runtime`, `listener`, `rabbitmq`, ...): its explicit name
    /// in `[environments.NAME.workloads]`, else `workload_names` with `{release}` and
    /// `{component}` filled in.
    pub fn workload_name(&self, component: &str) -> String {
        if let Some(name) = self.workloads.get(component) {
            return name.clone();
        }
        self.workload_names
            .as_deref()
            .unwrap_or(DEFAULT_WORKLOAD_NAMES)
            .replace("{release}", &self.release)
            .replace("{component}", component)
    }

    /// The replica count `component` is restored to when this environment serves, when the
    /// config gives one. Callers read a missing count from the live side or refuse; never 1.
    pub fn replicas_of(&self, component: &str) -> Option<u32> {
        self.replicas.get(component).copied()
    }

    /// The kind of `component`: `[environments.NAME.kinds]`, else `statefulset` for RabbitMQ and
    /// `deployment` for the rest.
    pub fn kind_of(&self, component: &str) -> &str {
        match self.kinds.get(component) {
            Some(k) => k,
            None if component == "rabbitmq" => "statefulset",
            None => "deployment",
        }
    }

    /// Checks what serde cannot: the pattern names a component, kinds are known, health URLs
    /// are HTTP(S). Errors name the key.
    pub fn validate(&self) -> Result<()> {
        let key = |k: &str| format!("environments.{}.{k}", self.name);
        if let Some(p) = &self.workload_names
            && !p.contains("{component}")
            && self.workloads.is_empty()
        {
            return Err(Error::Config {
                message: format!(
                    "{}: \"{p}\" names every workload the same; include {{component}}",
                    key("workload_names")
                ),
            });
        }
        for (component, kind) in &self.kinds {
            if !KINDS.contains(&kind.as_str()) {
                return Err(Error::Config {
                    message: format!(
                        "{}: \"{kind}\" is not a kind drscript scales; use deployment or statefulset",
                        key(&format!("kinds.{component}"))
                    ),
                });
            }
        }
        for url in &self.health_urls {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(Error::Config {
                    message: format!("{}: \"{url}\" is not an http(s) URL", key("health_urls")),
                });
            }
        }
        for (name, share) in &self.shares {
            for folder in share.folders.iter().flatten() {
                if folder.is_empty() || folder.starts_with('/') || folder.split('/').any(|s| s == "..") {
                    return Err(Error::Config {
                        message: format!(
                            "{}: \"{folder}\" must be a relative folder of the share",
                            key(&format!("shares.{name}.folders"))
                        ),
                    });
                }
            }
        }
        Ok(())
    }
}

/// How drscript authenticates to an environment's gateway.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum GatewayAuth {
    #[default]
    None,
    Basic {
        username: String,
        password_env: Option<String>,
        password_file: Option<PathBuf>,
    },
    Bearer {
        token_env: Option<String>,
        token_file: Option<PathBuf>,
    },
    Header {
        header: String,
        value_env: Option<String>,
        value_file: Option<PathBuf>,
    },
    /// Adeptia's API login: `POST /rest/login/user`, then the `ACCESS_TOKEN` response header.
    AdeptiaLogin {
        username: String,
        password_env: Option<String>,
        password_file: Option<PathBuf>,
        #[serde(default = "default_login_path")]
        login_path: String,
    },
    /// A web form login, as a Java servlet container (`j_security_check`) or a Spring login page
    /// does it: the credentials are POSTed as a form, the session comes back as a cookie, and a
    /// request without a valid session is redirected to the login page.
    FormLogin {
        username: String,
        password_env: Option<String>,
        password_file: Option<PathBuf>,
        #[serde(default = "default_form_path")]
        login_path: String,
        #[serde(default = "default_username_field")]
        username_field: String,
        #[serde(default = "default_password_field")]
        password_field: String,
    },
}

fn default_login_path() -> String {
    "/rest/login/user".to_string()
}

fn default_form_path() -> String {
    "/j_security_check".to_string()
}

fn default_username_field() -> String {
    "j_username".to_string()
}

fn default_password_field() -> String {
    "j_password".to_string()
}

/// A file share: a local folder or an Azure Files / Blob URL with its credentials.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Share {
    /// A local folder.
    pub path: Option<PathBuf>,
    /// `https://ACCOUNT.file.core.windows.net/SHARE[/PATH]` or a blob container URL.
    pub url: Option<String>,
    /// The folders of this share that a switch copies (the application share's; by default the
    /// document's `web/repository`, `recovery`, `reprocessing`).
    pub folders: Option<Vec<String>>,
    pub sas_env: Option<String>,
    pub sas_file: Option<PathBuf>,
    pub account_key_env: Option<String>,
    pub account_key_file: Option<PathBuf>,
    /// How requests are authorised: `entra` for a token from `[azure]`'s credential; by default
    /// the SAS or the account key the share names.
    pub auth: Option<ShareAuth>,
    /// `auth = "entra"`: the `[azure]` credential, set after parsing.
    #[serde(skip)]
    pub entra: Option<crate::azure::LazyCredential>,
    /// `[azure] ca_file`'s certificates, set after parsing.
    #[serde(skip)]
    pub extra_roots: Option<std::sync::Arc<[u8]>>,
    /// Resolved after parsing from `sas_env`/`sas_file`.
    #[serde(skip)]
    pub sas: Option<SecretRef>,
    /// Resolved after parsing from `account_key_env`/`account_key_file`.
    #[serde(skip)]
    pub account_key: Option<SecretRef>,
}

impl Share {
    /// Where a sync reads or writes this share, with `sub` appended to its path; the SAS or the
    /// account key is resolved here.
    pub fn endpoint(&self, sub: &str) -> Result<drscript_sync::Endpoint> {
        use drscript_sync::{Endpoint, StorageCredential};
        if let Some(path) = &self.path {
            return Ok(Endpoint::local_under(path, sub));
        }
        let Some(url) = &self.url else {
            return Err(Error::Config { message: "share has neither `path` nor `url`".to_string() });
        };
        let credential = if let Some(entra) = &self.entra {
            Some(StorageCredential::Token(std::sync::Arc::new(entra.get()?)))
        } else if let Some(sas) = &self.sas {
            Some(StorageCredential::Sas(sas.resolve()?.trim_start_matches('?').to_string()))
        } else if let Some(key) = &self.account_key {
            Some(StorageCredential::SharedKey(key.resolve()?))
        } else {
            None
        };
        let endpoint = Endpoint::remote_under(url, credential, sub)?;
        match &self.extra_roots {
            Some(pem) => endpoint.trusting(pem.clone(), "[azure] ca_file"),
            None => Ok(endpoint),
        }
    }

    /// The location without credentials, for plans and logs.
    pub fn location(&self) -> String {
        match (&self.path, &self.url) {
            (Some(p), _) => p.display().to_string(),
            (None, Some(u)) => u.clone(),
            (None, None) => String::new(),
        }
    }
}
