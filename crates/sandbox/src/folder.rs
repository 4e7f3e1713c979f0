//! The files a running sandbox leaves in its folder for other processes: `kubeconfig` (one
//! context per environment), `drscript.toml` (valid for `Config::parse`, secrets in files under
//! `secrets/`), and `sandbox.json` (ports and pid, for `status` and `down`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use drscript_base::error::{Error, Result};

/// Where one environment's servers listen, and what the config says about it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnvEndpoints {
    pub kube_api: String,
    pub gateway: String,
    pub namespace: String,
    pub release: String,
    /// Share name → folder.
    pub shares: BTreeMap<String, PathBuf>,
    /// Bearer token of the API server, when it demands one: written into the kubeconfig only,
    /// never into `sandbox.json`.
    #[serde(skip)]
    pub kube_token: Option<String>,
    /// The CA of an HTTPS API server (PEM file, relative to the sandbox folder): in the
    /// kubeconfig as `certificate-authority-data`, and what `sandbox status` trusts.
    #[serde(default)]
    pub kube_ca_file: Option<PathBuf>,
    /// The `exec` credential plugin of the admin user (an absolute path), when its token rotates.
    #[serde(default)]
    pub kube_credential_plugin: Option<PathBuf>,
    /// The read-only identity's token (context `ENV-viewer`); kubeconfig only.
    #[serde(skip)]
    pub kube_viewer_token: Option<String>,
    pub gateway_user: String,
    /// Replicas to restore when the environment becomes active.
    pub replicas: [i32; 3],
    /// The `[storage.NAME]` account behind the shares, when the sandbox simulates one.
    #[serde(default)]
    pub storage_account: Option<String>,
    /// The servers themselves, behind the outage gates of `kube_api` and `gateway`: where
    /// `sandbox status` reads their state during an outage.
    #[serde(default)]
    pub kube_state: Option<String>,
    #[serde(default)]
    pub gateway_state: Option<String>,
    /// `sandbox up --remote-shares`: share name → Azure Files URL (behind the share gate), and
    /// the account key file relative to the sandbox folder. The bytes stay in `shares`' folders.
    #[serde(default)]
    pub share_urls: BTreeMap<String, String>,
    #[serde(default)]
    pub share_key_file: Option<PathBuf>,
    /// How the config's shares authenticate: `entra` (`sandbox up --entra --remote-shares`:
    /// `auth = "entra"`, no key file), else the account key.
    #[serde(default)]
    pub share_auth: Option<String>,
    /// Workload names that differ from the chart's `RELEASE-ac-COMPONENT`, by component.
    #[serde(default)]
    pub workload_names: BTreeMap<String, String>,
    /// The customer's own components: name, kind, count when active.
    #[serde(default)]
    pub extra: Vec<(String, String, i32)>,
    /// The folders of the application share a switch copies, when not the document's.
    #[serde(default)]
    pub app_folders: Option<Vec<String>>,
}

/// `DIR/sandbox.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SandboxFile {
    pub pid: u32,
    pub started: String,
    /// The environment that starts active (PROD).
    #[serde(default)]
    pub active: String,
    pub environments: BTreeMap<String, EnvEndpoints>,
    /// Other components by name, with the URL of their state (see `sandbox::Component`).
    #[serde(default)]
    pub components: BTreeMap<String, Option<String>>,
    /// The control endpoint (`sandbox outage` / `restore`, `POST /roles`).
    #[serde(default)]
    pub control: Option<String>,
    /// The Entra ID emulator (`sandbox up --entra`).
    #[serde(default)]
    pub entra: Option<EntraEndpoints>,
}

/// Where the Entra ID emulator listens (no secrets: those are files under `secrets/`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EntraEndpoints {
    pub tenant_id: String,
    pub client_id: String,
    /// `https://127.0.0.1:PORT`: the authority host.
    pub authority: String,
    pub token_endpoint: String,
    /// The App Service managed-identity endpoint (`IDENTITY_ENDPOINT`), plain HTTP.
    pub identity_endpoint: String,
    /// The sandbox CA (PEM), relative to the sandbox folder.
    pub ca_file: PathBuf,
}

pub const SANDBOX_FILE: &str = "sandbox.json";

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| Error::io(format!("cannot write {}", path.display()), e))
}

/// Writes a secret readable by the owner only.
pub fn write_secret(path: &Path, value: &str) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(format!("cannot create {}", parent.display()), e))?;
    }
    write(path, &format!("{value}\n"))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| Error::io(format!("cannot restrict {}", path.display()), e))?;
    }
    Ok(())
}

/// The CA certificate of an environment's API server, relative to the sandbox folder.
pub fn kube_ca_path(env: &str) -> PathBuf {
    PathBuf::from(format!("kube-{env}-ca.crt"))
}

/// The admin's current `ExecCredential` of an environment, relative to the sandbox folder.
pub fn kube_credential_path(env: &str) -> PathBuf {
    PathBuf::from(format!("secrets/{env}-kube.credential.json"))
}

/// The `exec` plugin: prints the current `ExecCredential` (the sandbox re-mints it before the
/// token expires), as `kubelogin get-token` prints an Entra token on AKS.
pub fn write_credential_plugin(path: &Path, credential: &Path) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(format!("cannot create {}", parent.display()), e))?;
    }
    let quoted = credential.display().to_string().replace('\'', "'\\''");
    write(
        path,
        &format!(
            "#!/bin/sh\n# Written by `drscript sandbox up`: the kubeconfig's exec credential plugin.\nexec cat '{quoted}'\n"
        ),
    )?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| Error::io(format!("cannot make {} executable", path.display()), e))?;
    }
    Ok(())
}

/// `active` becomes the current context (PROD), so a bare `kubectl` talks to the active side.
/// Each environment has a context of its name (the admin) and, on a server with identities, an
/// `ENV-viewer` context whose user may only read.
pub fn kubeconfig(dir: &Path, envs: &BTreeMap<String, EnvEndpoints>, active: &str) -> String {
    use base64::Engine;
    let mut out = String::from(
        "# Written by `drscript sandbox up`: one context per simulated environment.\napiVersion: v1\nkind: Config\nclusters:\n",
    );
    for (name, e) in envs {
        let _ = write!(out, "- name: sandbox-{name}\n  cluster:\n    server: {}\n", e.kube_api);
        if let Some(pem) = e.kube_ca_file.as_ref().and_then(|f| std::fs::read(dir.join(f)).ok()) {
            let _ = writeln!(
                out,
                "    certificate-authority-data: {}",
                base64::engine::general_purpose::STANDARD.encode(pem)
            );
        }
    }
    out.push_str("contexts:\n");
    for (name, e) in envs {
        let _ = write!(
            out,
            "- name: {name}\n  context:\n    cluster: sandbox-{name}\n    user: sandbox-{name}\n    namespace: {}\n",
            e.namespace
        );
        if e.kube_viewer_token.is_some() {
            let _ = write!(
                out,
                "- name: {name}-viewer\n  context:\n    cluster: sandbox-{name}\n    user: sandbox-{name}-viewer\n    namespace: {}\n",
                e.namespace
            );
        }
    }
    out.push_str("users:\n");
    for (name, e) in envs {
        match (&e.kube_credential_plugin, &e.kube_token) {
            (_, Some(t)) => {
                let _ = write!(out, "- name: sandbox-{name}\n  user:\n    token: {t}\n");
            }
            (Some(plugin), None) => {
                let _ = write!(
                    out,
                    "- name: sandbox-{name}\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: {}\n      interactiveMode: Never\n      provideClusterInfo: false\n",
                    plugin.display()
                );
            }
            (None, None) => {
                let _ = write!(out, "- name: sandbox-{name}\n  user: {{}}\n");
            }
        }
        if let Some(t) = &e.kube_viewer_token {
            let _ = write!(out, "- name: sandbox-{name}-viewer\n  user:\n    token: {t}\n");
        }
    }
    let _ = writeln!(out, "current-context: {active}");
    out
}

/// The gateway password file of an environment, relative to the sandbox folder.
pub fn gateway_secret_path(env: &str) -> PathBuf {
    PathBuf::from(format!("secrets/{env}-gateway.password"))
}

/// `drscript.toml` for the sandbox; `extra` are sections contributed by other components
/// (storage, DNS, ...), appended verbatim.
pub fn config(envs: &BTreeMap<String, EnvEndpoints>, extra: &[String]) -> String {
    let mut out = String::from(
        "# Written by `drscript sandbox up`. It describes the simulated PROD and DR on 127.0.0.1 and is\n# rewritten on every start (ports change). Secrets live in files under secrets/.\n",
    );
    for (name, e) in envs {
        let _ = write!(
            out,
            "\n[environments.{name}]\nkubeconfig = \"kubeconfig\"\nkube_context = \"{name}\"\nnamespace = \"{}\"\nrelease = \"{}\"\ngateway = \"{}\"\n",
            e.namespace, e.release, e.gateway
        );
        if let Some(account) = &e.storage_account {
            let _ = writeln!(out, "storage_account = \"{account}\"");
        }
        let _ = write!(
            out,
            "\n[environments.{name}.gateway_auth]\ntype = \"adeptia_login\"\nusername = \"{}\"\npassword_file = \"{}\"\n",
            e.gateway_user,
            gateway_secret_path(name).display()
        );
        let _ = write!(
            out,
            "\n[environments.{name}.replicas]\nruntime = {}\nlistener = {}\nrabbitmq = {}\n",
            e.replicas[0], e.replicas[1], e.replicas[2]
        );
        for (component, _, replicas) in &e.extra {
            let _ = writeln!(out, "{component} = {replicas}");
        }
        let kinds: Vec<_> = e.extra.iter().filter(|(_, kind, _)| kind != "deployment").collect();
        if !kinds.is_empty() {
            let _ = writeln!(out, "\n[environments.{name}.kinds]");
            for (component, kind, _) in kinds {
                let _ = writeln!(out, "{component} = \"{kind}\"");
            }
        }
        if !e.workload_names.is_empty() {
            let _ = writeln!(out, "\n[environments.{name}.workloads]");
            for (component, workload) in &e.workload_names {
                let _ = writeln!(out, "{component} = \"{workload}\"");
            }
        }
        let folders = |share: &str| match (&e.app_folders, share) {
            (Some(f), "app") => {
                format!(", folders = [{}]", f.iter().map(|f| format!("\"{f}\"")).collect::<Vec<_>>().join(", "))
            }
            _ => String::new(),
        };
        let _ = write!(out, "\n[environments.{name}.shares]\n");
        for (share, path) in &e.shares {
            match (e.share_urls.get(share), &e.share_key_file) {
                (Some(url), _) if e.share_auth.as_deref() == Some("entra") => {
                    let _ = writeln!(out, "{share} = {{ url = \"{url}\", auth = \"entra\"{} }}", folders(share));
                }
                (Some(url), Some(key)) => {
                    let _ = writeln!(
                        out,
                        "{share} = {{ url = \"{url}\", account_key_file = \"{}\"{} }}",
                        key.display(),
                        folders(share)
                    );
                }
                _ => {
                    let _ = writeln!(out, "{share} = {{ path = \"{}\"{} }}", path.display(), folders(share));
                }
            }
        }
    }
    for section in extra {
        out.push('\n');
        out.push_str(section);
        if !section.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

pub fn write_all(dir: &Path, file: &SandboxFile, extra: &[String]) -> Result<()> {
    write_secret(&dir.join("kubeconfig"), &kubeconfig(dir, &file.environments, &file.active))?;
    write(&dir.join("drscript.toml"), &config(&file.environments, extra))?;
    let json = serde_json::to_string_pretty(file).map_err(|e| Error::Other(e.to_string()))?;
    write(&dir.join(SANDBOX_FILE), &json)
}

pub fn read_sandbox_file(dir: &Path) -> Result<SandboxFile> {
    let path = dir.join(SANDBOX_FILE);
    let text = std::fs::read_to_string(&path).map_err(|_| {
        Error::Usage(format!(
            "no sandbox is running in {} (no {SANDBOX_FILE}); start one with `drscript sandbox up --dir {}`",
            dir.display(),
            dir.display()
        ))
    })?;
    serde_json::from_str(&text).map_err(|e| Error::Other(format!("{} is damaged: {e}", path.display())))
}
