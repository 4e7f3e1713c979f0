//! HTTPS for the emulated API server, as AKS serves it: a private CA made at start (its
//! certificate goes into the kubeconfig as `certificate-authority-data`, as `az aks
//! get-credentials` writes it) and a server certificate for 127.0.0.1 and localhost signed by it.
//! Handshakes run off the accept loop, so a client that never finishes one holds up nobody.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use drscript_base::error::{Error, Result};

/// The CA and the server's TLS configuration.
#[derive(Clone)]
pub struct ServerTls {
    /// The CA certificate, PEM: what clients trust.
    pub ca_pem: String,
    acceptor: TlsAcceptor,
}

fn tls_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Other(format!("sandbox TLS: {what}: {e}"))
}

/// A private CA made at start: it signs the certificates of the sandbox's HTTPS servers, and
/// clients trust its certificate (`ca_pem`).
pub struct SandboxCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl SandboxCa {
    /// A fresh CA; nothing is written to disk here.
    pub fn generate() -> Result<SandboxCa> {
        let ca_key = KeyPair::generate().map_err(|e| tls_error("CA key", e))?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(|e| tls_error("CA", e))?;
        ca_params.distinguished_name.push(DnType::CommonName, "drscript sandbox CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer = CertifiedIssuer::self_signed(ca_params, ca_key).map_err(|e| tls_error("CA certificate", e))?;
        Ok(SandboxCa { issuer })
    }

    /// The CA certificate, PEM.
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server certificate for 127.0.0.1 and localhost named `common_name`, signed by this CA,
    /// and the TLS configuration that serves it.
    pub fn server_tls(&self, common_name: &str) -> Result<ServerTls> {
        let key = KeyPair::generate().map_err(|e| tls_error("server key", e))?;
        let mut params = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .map_err(|e| tls_error("server certificate", e))?;
        params.distinguished_name.push(DnType::CommonName, common_name);
        let cert = params.signed_by(&key, &self.issuer).map_err(|e| tls_error("server certificate", e))?;
        let chain = vec![cert.der().clone(), CertificateDer::from(self.issuer.der().to_vec())];
        let private = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_error("protocol versions", e))?
            .with_no_client_auth()
            .with_single_cert(chain, private)
            .map_err(|e| tls_error("server configuration", e))?;
        Ok(ServerTls { ca_pem: self.pem(), acceptor: TlsAcceptor::from(Arc::new(config)) })
    }
}

impl ServerTls {
    /// A fresh CA of its own and a server certificate signed by it; nothing is written to disk.
    pub fn generate() -> Result<ServerTls> {
        SandboxCa::generate()?.server_tls("kube-apiserver")
    }

    /// Serves TLS on `tcp`: the connections come out of the returned listener handshaken.
    pub fn listener(&self, tcp: TcpListener) -> Result<TlsListener> {
        let addr = tcp.local_addr().map_err(|e| Error::io("sandbox API server address", e))?;
        let (tx, rx) = mpsc::channel(64);
        let acceptor = self.acceptor.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, peer)) = tcp.accept().await else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    // A failed or stalled handshake concerns that client only.
                    if let Ok(Ok(tls)) = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await {
                        let _ = tx.send((tls, peer)).await;
                    }
                });
            }
        });
        Ok(TlsListener { rx, addr, task })
    }
}

/// A listener of handshaken TLS connections, for `axum::serve`.
pub struct TlsListener {
    rx: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(connection) => connection,
            // The accept loop only ends with the listener; wait for the server to be dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.addr)
    }
}

/// The client's address on a TLS connection, for `into_make_service_with_connect_info` (the
/// handlers read `ConnectInfo<TlsPeer>` where a plain listener gives `ConnectInfo<SocketAddr>`).
#[derive(Debug, Clone, Copy)]
pub struct TlsPeer(pub SocketAddr);

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, TlsListener>> for TlsPeer {
    fn connect_info(stream: axum::serve::IncomingStream<'_, TlsListener>) -> Self {
        TlsPeer(*stream.remote_addr())
    }
}
