//! The sandbox's Entra ID emulator and the Files and ARM emulators behind it (`sandbox up --entra
//! --remote-shares`), cross-checked with Microsoft's Python SDKs: azure-identity gets tokens with
//! each credential of the chain (client secret, certificate, workload identity, App Service
//! managed identity) and azure-storage-file-share uses them with the backup intent; roles change
//! at run time through the control endpoint; the account key is refused; the token endpoint's
//! refusals are Entra's.

use std::path::PathBuf;
use std::process::Command;

use serde_json::{Value, json};

use drscript_sandbox::{Sandbox, SandboxOptions, entra};

fn python() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".tools/venv-files/bin/python");
    assert!(
        p.exists(),
        "{} is missing: run tests/support/requirements-files.sh (it installs azure-storage-file-share and azure-identity into .tools/venv-files)",
        p.display()
    );
    p
}

fn start(dir: &std::path::Path, rt: &tokio::runtime::Runtime) -> drscript_sandbox::SandboxHandle {
    let options = SandboxOptions { remote_shares: true, entra: true, ..SandboxOptions::default() };
    rt.block_on(Sandbox::start(dir, options)).unwrap()
}

#[test]
fn entra_sandbox_writes_a_workload_identity_config_and_its_credentials() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sb = start(dir.path(), &rt);
    let config = std::fs::read_to_string(sb.config_path()).unwrap();
    let e = sb.entra.as_ref().unwrap();
    assert!(e.authority().starts_with("https://127.0.0.1:"), "{}", e.authority());
    let azure = format!(
        "[azure]\nauth = \"workload_identity\"\ntenant_id = \"{}\"\nclient_id = \"{}\"\nauthority = \"{}\"\nca_file = \"secrets/sandbox-ca.pem\"\nfederated_token_file = \"secrets/entra-federated-token\"\nresource_manager = \"http://127.0.0.1:",
        entra::TENANT_ID,
        entra::CLIENT_ID,
        e.authority()
    );
    assert!(config.contains(&azure), "{config}");
    assert!(!config.contains("static_token") && !config.contains("account_key_file"), "{config}");
    for env in ["prod", "dr"] {
        let url = &sb.env(env).unwrap().endpoints.share_urls["app"];
        assert!(url.starts_with("https://127.0.0.1:") && url.ends_with(&format!("/{env}/app")), "{url}");
        assert!(config.contains(&format!("app = {{ url = \"{url}\", auth = \"entra\" }}")), "{config}");
    }
    for file in [
        "secrets/sandbox-ca.pem",
        "secrets/entra-client.secret",
        "secrets/entra-client.pem",
        "secrets/entra-federated-token",
        "secrets/entra-identity-header",
    ] {
        assert!(dir.path().join(file).is_file(), "{file} is missing");
    }
    let pem = std::fs::read_to_string(dir.path().join("secrets/entra-client.pem")).unwrap();
    assert!(pem.contains("BEGIN CERTIFICATE") && pem.contains("BEGIN PRIVATE KEY"), "cert and key in one PEM");

    let file: Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("sandbox.json")).unwrap()).unwrap();
    assert_eq!(file["entra"]["tenant_id"], entra::TENANT_ID);
    assert_eq!(file["entra"]["authority"], e.authority());
    assert!(file["entra"]["identity_endpoint"].as_str().unwrap().starts_with("http://127.0.0.1:"), "{file}");
    let status = sb.status();
    assert_eq!(
        status["components"]["entra"]["role_assignments"]["prod"][entra::APP_OBJECT_ID],
        "Storage File Data Privileged Contributor"
    );
    assert_eq!(
        status["components"]["entra"]["role_assignments"]["dr"][entra::MANAGED_IDENTITY_OBJECT_ID],
        "Storage File Data Privileged Contributor"
    );
    assert_eq!(status["components"]["arm"]["storage_accounts"][0]["properties"]["allowSharedKeyAccess"], false);

    // `drscript sandbox role` changes an assignment through the control endpoint.
    let said = drscript_sandbox::cli_role(dir.path(), "prod", entra::APP_OBJECT_ID, "reader").unwrap();
    assert_eq!(said, format!("{} on prod: Storage File Data Privileged Reader", entra::APP_OBJECT_ID));
    assert_eq!(e.roles().role("prod", entra::APP_OBJECT_ID), Some(entra::Role::Reader));
    let said = drscript_sandbox::cli_role(dir.path(), "prod", entra::APP_OBJECT_ID, "none").unwrap();
    assert!(said.ends_with(": no role"), "{said}");
    assert!(drscript_sandbox::cli_role(dir.path(), "prod", entra::APP_OBJECT_ID, "owner").is_err());
    // No secret in what `sandbox status` shows or sandbox.json holds.
    let shown = format!("{status}\n{file}");
    for secret in ["secrets/entra-client.secret", "secrets/entra-federated-token", "secrets/entra-identity-header"] {
        let value = std::fs::read_to_string(dir.path().join(secret)).unwrap();
        assert!(!shown.contains(value.trim()), "{secret}'s value is shown");
    }
}

#[test]
fn microsofts_python_sdks_sign_in_and_use_files_with_the_entra_emulator() {
    let python = python();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let _sb = start(dir.path(), &rt);
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/entra_sdk_client.py");
    let out = Command::new(python).arg(script).arg(dir.path()).env_remove("AZURE_AUTHORITY_HOST").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the SDKs failed against the emulators:\n{stderr}");
    let seen: Value = serde_json::from_slice(&out.stdout).unwrap();

    // Every credential of the chain gets a storage token of the sandbox tenant.
    for name in ["secret", "certificate", "workload_identity", "managed_identity"] {
        let t = &seen[name];
        assert_eq!(t["aud"], "https://storage.azure.com", "{name}: {t}");
        assert_eq!(t["iss"], format!("https://sts.windows.net/{}/", entra::TENANT_ID), "{name}");
        assert_eq!(t["tid"], entra::TENANT_ID, "{name}");
        let lifetime = t["lifetime"].as_i64().unwrap();
        assert!((3500..=3600).contains(&lifetime), "{name}: {lifetime}");
    }
    assert_eq!(seen["secret"]["oid"], entra::APP_OBJECT_ID);
    assert_eq!(seen["workload_identity"]["appid"], entra::CLIENT_ID);
    assert_eq!(seen["managed_identity"]["oid"], entra::MANAGED_IDENTITY_OBJECT_ID);

    // Files with a bearer token and the backup intent.
    assert!(seen["root"].as_array().is_some_and(|r| !r.is_empty()), "{seen}");
    assert_eq!(seen["download"], "hello from an Entra principal");
    assert_eq!(seen["mi_listing"], json!(["hello.txt", "mi.txt"]));
    assert!(seen["share_quota"].as_i64().is_some(), "{seen}");
    assert_eq!(seen["roles_after_reader"], "Storage File Data Privileged Reader");
    assert_eq!(seen["reader_lists"], 2);
    assert_eq!(seen["reader_upload"], json!([403, "AuthorizationPermissionMismatch"]));
    assert_eq!(seen["reader_delete"], json!([403, "AuthorizationPermissionMismatch"]));
    assert_eq!(seen["no_role_list"], json!([403, "AuthorizationPermissionMismatch"]));
    assert_eq!(seen["shared_key"], json!([403, "KeyBasedAuthenticationNotPermitted"]));
    assert_eq!(seen["account_sas"], json!([403, "KeyBasedAuthenticationNotPermitted"]));

    // What the SDK never sends.
    let raw = |k: &str| (seen[k]["status"].as_i64().unwrap(), seen[k]["code"].as_str().unwrap_or("").to_string());
    assert_eq!(raw("no_intent"), (400, "MissingRequiredHeader".into()));
    assert!(seen["no_intent"]["body"].as_str().unwrap().contains("<HeaderName>x-ms-file-request-intent</HeaderName>"));
    assert_eq!(raw("bad_intent"), (400, "InvalidHeaderValue".into()));
    assert_eq!(raw("old_version"), (403, "AuthenticationFailed".into()));
    assert_eq!(raw("share_level_old_version"), (403, "AuthorizationFailure".into()));
    assert_eq!(raw("forged_token"), (401, "InvalidAuthenticationInfo".into()));
    assert_eq!(
        seen["forged_token"]["www"],
        format!(
            "Bearer authorization_uri=https://login.microsoftonline.com/{}/oauth2/authorize resource_id=https://storage.azure.com",
            entra::TENANT_ID
        )
    );
    assert_eq!(raw("management_token_on_files"), (401, "InvalidAuthenticationInfo".into()));
    assert!(seen["management_token_on_files"]["body"].as_str().unwrap().contains("Audience validation failed"));
    assert_eq!(seen["ok_raw"], 200);

    // ARM takes a management token and says the account refuses keys.
    assert_eq!(seen["arm"], json!({"status": 200, "allowSharedKeyAccess": false}));
    assert_eq!(seen["arm_with_storage_token"], 401);

    // The token endpoint's refusals.
    let refused = |k: &str| {
        let v = &seen[k];
        (v["status"].as_i64().unwrap(), v["error"].as_str().unwrap().to_string(), v["codes"][0].as_i64().unwrap())
    };
    assert_eq!(refused("wrong_secret"), (401, "invalid_client".into(), 7000215));
    assert!(seen["wrong_secret"]["description"].as_str().unwrap().starts_with("AADSTS7000215: Invalid client secret"));
    assert_eq!(refused("unknown_tenant"), (400, "invalid_request".into(), 90002));
    assert_eq!(refused("unknown_client"), (400, "unauthorized_client".into(), 700016));
    assert_eq!(refused("scope_without_default"), (400, "invalid_scope".into(), 1002012));
    assert_eq!(refused("two_scopes"), (400, "invalid_scope".into(), 70011));
    assert_eq!(refused("federated_tampered_exp"), (401, "invalid_client".into(), 700211));
    assert_eq!(seen["federated_ok"], 200);
    assert_eq!(seen["cert_b64url_x5t"], 200);
    assert_eq!(seen["cert_std_b64_x5t"], 200, "the x5t of Azure's Rust client (standard base64)");
    assert_eq!(refused("cert_wrong_x5t"), (401, "invalid_client".into(), 700027));
    assert_eq!(refused("cert_wrong_aud"), (401, "invalid_client".into(), 700212));
    assert_eq!(refused("cert_expired"), (401, "invalid_client".into(), 700024));
    assert_eq!(refused("cert_replayed_jti"), (401, "invalid_client".into(), 700023));
    assert_eq!(seen["mi_without_header"], 401);
    assert_eq!(seen["mi_other_identity"], 400);
    assert_eq!(seen["sdk_wrong_secret"], true);

    // The SDKs printed no secret.
    let secret = std::fs::read_to_string(dir.path().join("secrets/entra-client.secret")).unwrap();
    assert!(!stderr.contains(secret.trim()));
}
