//! The gateway client's TLS: verified by default, a CA bundle from `gateway_ca_file` makes a
//! private CA trusted, `gateway_insecure` turns verification off. The gateway here is a small
//! HTTPS responder with a certificate made by `openssl` for 127.0.0.1.

use drscript_test_support::certs;

use std::path::Path;
use std::sync::{Arc, Mutex};

use drscript_core::config::{Config, Environment};
use drscript_core::scheduler::{Action, set_scheduler};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Serves the scheduler calls over HTTPS until dropped; returns the base URL.
async fn https_gateway(dir: &Path, state: Arc<Mutex<String>>) -> (String, tokio::task::JoinHandle<()>) {
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(dir.join("server.pem")).unwrap().map(Result::unwrap).collect();
    let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let (acceptor, state) = (acceptor.clone(), state.clone());
            tokio::spawn(async move {
                // A failed handshake (the client refused the certificate) just ends the connection.
                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&request).to_string();
                {
                    let mut s = state.lock().unwrap();
                    if head.contains("query=Pause") {
                        *s = "PAUSED".into();
                    } else if head.contains("query=Resume") {
                        *s = "RUNNING".into();
                    }
                }
                let body = format!("{{\"success\":true,\"status\":\"{}\"}}", state.lock().unwrap());
                let reply = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(reply.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (url, task)
}

fn environment(dir: &Path, gateway: &str, extra: &str) -> Environment {
    let text =
        format!("[environments.prod]\nnamespace = \"adeptia\"\nrelease = \"ac\"\ngateway = \"{gateway}\"\n{extra}");
    let path = dir.join("drscript.toml");
    std::fs::write(&path, text).unwrap();
    Config::load(&path).unwrap().environment("prod").unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_is_verified_and_a_ca_bundle_or_the_insecure_switch_admits_a_private_ca() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    tokio::task::spawn_blocking(move || certs::certificates(&d)).await.unwrap();
    let state = Arc::new(Mutex::new("RUNNING".to_string()));
    let (url, _server) = https_gateway(dir.path(), state.clone()).await;

    // Default: the private CA is not trusted.
    let env = environment(dir.path(), &url, "");
    let err = set_scheduler(&env, dir.path(), Action::Pause).await.unwrap_err().to_string();
    assert!(err.contains("cannot reach") && err.contains("not trusted: set gateway_ca_file"), "{err}");
    assert_eq!(*state.lock().unwrap(), "RUNNING");

    // With the CA bundle.
    let env = environment(dir.path(), &url, "gateway_ca_file = \"ca.pem\"\n");
    let report = set_scheduler(&env, dir.path(), Action::Pause).await.unwrap();
    assert!(report.changed && report.verified, "{report:?}");
    assert_eq!(*state.lock().unwrap(), "PAUSED");

    // With verification off.
    let env = environment(dir.path(), &url, "gateway_insecure = true\n");
    set_scheduler(&env, dir.path(), Action::Resume).await.unwrap();
    assert_eq!(*state.lock().unwrap(), "RUNNING");

    // A CA file that is not PEM is a config error naming the file.
    std::fs::write(dir.path().join("bad.pem"), "not a certificate").unwrap();
    let env = environment(dir.path(), &url, "gateway_ca_file = \"bad.pem\"\n");
    let err = set_scheduler(&env, dir.path(), Action::Pause).await.unwrap_err().to_string();
    assert!(err.contains("bad.pem"), "{err}");
}
