//! Who is calling, and what they may do. Bearer tokens map to identities: the sandbox's admin
//! (what `az aks get-credentials` gives an operator: everything) and a restricted identity whose
//! RBAC is the built-in `view` ClusterRole's: get, list and watch on everything but secrets. Tokens may expire; a rotating token is re-minted
//! before it expires and written as an `ExecCredential` for the kubeconfig's `exec` plugin, as
//! `kubelogin` hands out Entra tokens on AKS. A refusal is the API server's 403 `Status`, naming
//! the user, the verb, the resource and the namespace; a missing, unknown or expired token is 401.
//! `SelfSubjectAccessReview` (`kubectl auth can-i`) and `SelfSubjectReview` (`kubectl auth whoami`)
//! answer from the same rules.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use drscript_base::error::{Error, Result};

/// What an identity may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Every verb on every resource (`system:masters`).
    Admin,
    /// `get`, `list`, `watch` on everything but secrets, as the built-in `view` ClusterRole.
    ReadOnly,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    pub groups: Vec<String>,
    pub access: Access,
}

impl Identity {
    pub fn admin() -> Identity {
        Identity {
            user: "sandbox-admin".to_string(),
            groups: vec!["system:masters".to_string(), "system:authenticated".to_string()],
            access: Access::Admin,
        }
    }

    pub fn viewer() -> Identity {
        Identity {
            user: "sandbox-viewer".to_string(),
            groups: vec!["sandbox:viewers".to_string(), "system:authenticated".to_string()],
            access: Access::ReadOnly,
        }
    }

    /// Whether the RBAC rules allow `verb` on `resource` (`deployments/scale`) of `group`.
    pub fn may(&self, verb: &str, group: &str, resource: &str) -> bool {
        let review = matches!(
            (group, resource),
            ("authorization.k8s.io", "selfsubjectaccessreviews") | ("authentication.k8s.io", "selfsubjectreviews")
        );
        match self.access {
            Access::Admin => true,
            // The built-in `view` ClusterRole: reads everything but secrets (which would let a
            // viewer read service account tokens and credentials).
            Access::ReadOnly => {
                review || (matches!(verb, "get" | "list" | "watch") && !(group.is_empty() && resource == "secrets"))
            }
        }
    }
}

struct Token {
    secret: String,
    identity: Identity,
    expires: Option<SystemTime>,
}

/// A token that is re-minted before it expires and published for the `exec` plugin.
#[derive(Debug, Clone)]
pub struct Rotation {
    /// Where the current `ExecCredential` is written (the plugin prints this file).
    pub credential_file: PathBuf,
    pub lifetime: Duration,
}

/// The tokens the server accepts. Without any, it serves everyone as the admin (plain-HTTP
/// sandboxes and tests of the protocol).
#[derive(Default)]
pub struct Auth {
    tokens: Mutex<Vec<Token>>,
    /// Distinct rotating tokens seen in accepted requests (their hashes), for tests.
    rotating_seen: Mutex<BTreeSet<u64>>,
}

/// Why a request was not authenticated.
pub enum Unauthenticated {
    Missing,
    Unknown,
    Expired,
}

impl Auth {
    /// Accepts `secret` as `identity` (forever, or until `expires`).
    pub fn add(&self, secret: &str, identity: Identity, expires: Option<SystemTime>) {
        drscript_base::redact::register(secret);
        let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        let now = SystemTime::now();
        tokens.retain(|t| t.expires.is_none_or(|e| e > now));
        tokens.push(Token { secret: secret.to_string(), identity, expires });
    }

    /// The identity behind an `Authorization` header.
    pub fn authenticate(&self, header: Option<&str>) -> std::result::Result<Identity, Unauthenticated> {
        let tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        if tokens.is_empty() {
            return Ok(Identity::admin());
        }
        let presented = header.and_then(|h| h.strip_prefix("Bearer ")).ok_or(Unauthenticated::Missing)?;
        let token = tokens.iter().find(|t| t.secret == presented).ok_or(Unauthenticated::Unknown)?;
        if let Some(expires) = token.expires {
            if expires <= SystemTime::now() {
                return Err(Unauthenticated::Expired);
            }
            self.rotating_seen.lock().unwrap_or_else(|e| e.into_inner()).insert(crate::hash::fnv(presented));
        }
        Ok(token.identity.clone())
    }

    /// How many different rotating tokens have been used successfully.
    pub fn rotating_tokens_used(&self) -> usize {
        self.rotating_seen.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Mints a token for `identity` valid for `rotation.lifetime` and writes its `ExecCredential`.
    pub fn rotate(&self, identity: &Identity, rotation: &Rotation) -> Result<()> {
        let secret = format!("sbx-exec-{:032x}", rand::random::<u128>());
        let expires = SystemTime::now() + rotation.lifetime;
        self.add(&secret, identity.clone(), Some(expires));
        let stamp = chrono::DateTime::<chrono::Utc>::from(expires).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let credential = json!({
            "apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
            "status": {"token": secret, "expirationTimestamp": stamp}
        });
        write_atomically(&rotation.credential_file, &credential.to_string())
    }
}

/// Writes through a temporary file and a rename, so that the plugin never reads half a token.
fn write_atomically(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("tmp");
    crate::folder::write_secret(&tmp, text)?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(format!("cannot write {}", path.display()), e))
}

/// The 403 message of the API server's authorizer.
pub fn forbidden_message(user: &str, verb: &str, group: &str, resource: &str, ns: Option<&str>) -> String {
    match ns {
        Some(ns) => format!(
            "User \"{user}\" cannot {verb} resource \"{resource}\" in API group \"{group}\" in the namespace \"{ns}\""
        ),
        None => format!(
            "User \"{user}\" cannot {verb} resource \"{resource}\" in API group \"{group}\" at the cluster scope"
        ),
    }
}

/// `SelfSubjectAccessReview`: the request's `spec.resourceAttributes`, answered for `identity`.
pub fn access_review(identity: &Identity, request: &Value) -> Value {
    let attrs = &request["spec"]["resourceAttributes"];
    let s = |k: &str| attrs[k].as_str().unwrap_or_default().to_string();
    let resource = match s("subresource") {
        sub if sub.is_empty() => s("resource"),
        sub => format!("{}/{sub}", s("resource")),
    };
    let allowed = identity.may(&s("verb"), &s("group"), &resource);
    let mut status = json!({"allowed": allowed});
    if !allowed {
        status["reason"] = json!(format!("RBAC: {} may only get, list and watch", identity.user));
    }
    json!({
        "kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
        "metadata": {"creationTimestamp": null}, "spec": request["spec"], "status": status
    })
}

/// `SelfSubjectReview`: who the caller is.
pub fn self_review(identity: &Identity) -> Value {
    json!({
        "kind": "SelfSubjectReview", "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"creationTimestamp": null},
        "status": {"userInfo": {"username": identity.user, "groups": identity.groups}}
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_expire_and_the_viewer_may_only_read() {
        let auth = Auth::default();
        auth.add("static", Identity::viewer(), None);
        auth.add("old", Identity::admin(), Some(SystemTime::now() - Duration::from_secs(1)));
        assert!(matches!(
            auth.authenticate(Some("Bearer old")),
            Err(Unauthenticated::Unknown | Unauthenticated::Expired)
        ));
        assert!(matches!(auth.authenticate(None), Err(Unauthenticated::Missing)));
        let viewer = auth.authenticate(Some("Bearer static")).ok().unwrap();
        assert!(viewer.may("list", "apps", "deployments"));
        assert!(!viewer.may("patch", "apps", "deployments/scale"));
        assert!(viewer.may("create", "authorization.k8s.io", "selfsubjectaccessreviews"));
        assert!(viewer.may("watch", "", "configmaps") && viewer.may("list", "autoscaling", "horizontalpodautoscalers"));
        assert!(!viewer.may("get", "", "secrets") && !viewer.may("list", "", "secrets"));
        assert_eq!(
            forbidden_message("u", "patch", "apps", "deployments/scale", Some("ns")),
            "User \"u\" cannot patch resource \"deployments/scale\" in API group \"apps\" in the namespace \"ns\""
        );
    }
}
