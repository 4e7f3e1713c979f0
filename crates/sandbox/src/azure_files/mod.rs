//! An Azure Files emulator: the REST operations drscript's sync uses (and azcopy's), served on
//! 127.0.0.1 with path-style URLs `http://127.0.0.1:PORT/ACCOUNT/SHARE/PATH`, storing shares as
//! plain folders `DIR/ACCOUNT/SHARE/...` (a file's last-write-time is the folder file's mtime).
//!
//! No official emulator serves Azure Files (Azurite has Blob, Queue and Table only). This one
//! follows the public REST reference for what it implements: paths, XML listings with paging
//! markers, headers, error codes with XML bodies, names (case-insensitive and case-preserving,
//! invalid ones refused), properties, SAS (account and file service SAS: signature, expiry,
//! start, IP range, protocol, services, resource types, permissions) and Shared Key (version,
//! date, signature). It verifies signatures with its own code (`signature`), never with the
//! client's. docs/sandbox.md lists what it emulates and what it refuses.
//!
//! With [`EntraAuth`] (`sandbox up --entra`) it serves HTTPS and also accepts Microsoft Entra
//! bearer tokens (Azure Files OAuth over REST: `x-ms-version` 2022-11-02 or later,
//! `x-ms-file-request-intent: backup`, the privileged data roles), and refuses Shared Key and
//! account-key SAS as an account with `allowSharedKeyAccess: false` does.

// Handlers return the service's error response as their `Err`: that is the protocol's shape.
#![allow(clippy::result_large_err)]

mod authz;
mod component;
mod copy;
mod dirs;
mod files;
mod handler;
mod lease;
mod names;
mod props;
mod responses;
mod signature;
mod versions;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

pub use component::FilesComponent;
use drscript_base::error::{Error, Result};

/// How the emulator admits bearer tokens (Microsoft Entra ID), and whether it still takes the
/// account key.
#[derive(Clone)]
pub struct EntraAuth {
    /// Checks the tokens (issuer key, audience, lifetime).
    pub verifier: crate::entra::TokenVerifier,
    /// The role assignments on the accounts.
    pub roles: Arc<crate::entra::Roles>,
    /// `allowSharedKeyAccess`: false refuses Shared Key and account-key SAS.
    pub allow_shared_key: bool,
}

/// What a started emulator serves besides Shared Key and SAS over HTTP.
#[derive(Clone, Default)]
pub struct Security {
    /// Serve HTTPS with this certificate.
    pub tls: Option<crate::kube_api::ServerTls>,
    /// Accept bearer tokens.
    pub entra: Option<EntraAuth>,
}

/// A running emulator; dropping it stops the server.
pub struct FilesEmulator {
    pub addr: SocketAddr,
    pub dir: PathBuf,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    state: Arc<State>,
}

impl FilesEmulator {
    /// `http://127.0.0.1:PORT/ACCOUNT` (`https` when it serves TLS): the service base of an
    /// account.
    pub fn account_url(&self, account: &str) -> String {
        let scheme = if self.state.https { "https" } else { "http" };
        format!("{scheme}://{}/{account}", self.addr)
    }

    /// How many Get File requests returned content (HEADs and empty files not counted).
    pub fn content_reads(&self) -> u64 {
        self.state.content_reads.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Stops serving and waits for the server to finish.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for FilesEmulator {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

pub(crate) struct State {
    pub dir: PathBuf,
    /// Account name → base64 key.
    pub accounts: HashMap<String, String>,
    pub addr: SocketAddr,
    pub content_reads: std::sync::atomic::AtomicU64,
    /// What the service keeps beside content and last-write-time (content headers with the
    /// Content-MD5, metadata, attributes, creation time, write count), by on-disk path.
    pub props: props::Table,
    /// Each folder's names by case-insensitive key (lookups of names in another case).
    pub names: names::Index,
    /// Share quotas in GiB set with Set Share Properties, by share folder; a share without one
    /// has the service's default.
    pub quotas: std::sync::Mutex<HashMap<PathBuf, u64>>,
    /// Served over TLS (a bearer token over plain HTTP is refused).
    pub https: bool,
    /// Bearer tokens and the Shared Key switch (`sandbox up --entra`).
    pub entra: Option<EntraAuth>,
}

/// Serves `accounts` (name → base64 key) from `dir` on an ephemeral loopback port. Shares are the
/// folders `dir/ACCOUNT/SHARE` (created by Create Share or by hand).
pub async fn start(dir: impl Into<PathBuf>, accounts: &[(&str, &str)]) -> Result<FilesEmulator> {
    start_on(dir, accounts, "127.0.0.1:0").await
}

pub async fn start_on(dir: impl Into<PathBuf>, accounts: &[(&str, &str)], bind: &str) -> Result<FilesEmulator> {
    start_with_faults(dir, accounts, bind, None).await
}

/// [`start_on`] with random faults (torn range writes, errors, slowness) injected in front of it.
pub async fn start_with_faults(
    dir: impl Into<PathBuf>,
    accounts: &[(&str, &str)],
    bind: &str,
    faults: Option<Arc<crate::faults::Injector>>,
) -> Result<FilesEmulator> {
    start_with(dir, accounts, bind, faults, Security::default()).await
}

/// [`start_with_faults`] with TLS and Entra ID authorisation.
pub async fn start_with(
    dir: impl Into<PathBuf>,
    accounts: &[(&str, &str)],
    bind: &str,
    faults: Option<Arc<crate::faults::Injector>>,
    security: Security,
) -> Result<FilesEmulator> {
    let dir = dir.into();
    for (a, _) in accounts {
        std::fs::create_dir_all(dir.join(a)).map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
    }
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|e| Error::io(format!("azure files emulator: cannot listen on {bind}"), e))?;
    let addr = listener.local_addr().map_err(|e| Error::io("azure files emulator", e))?;
    let state = Arc::new(State {
        dir: dir.clone(),
        accounts: accounts.iter().map(|(a, k)| (a.to_string(), k.to_string())).collect(),
        addr,
        content_reads: Default::default(),
        props: Default::default(),
        names: Default::default(),
        quotas: Default::default(),
        https: security.tls.is_some(),
        entra: security.entra,
    });
    let slot = Arc::new(crate::faults::FaultSlot::default());
    slot.set(faults);
    let app = axum::Router::new()
        .fallback(handler::handle)
        .with_state(state.clone())
        .layer(axum::middleware::from_fn_with_state(slot, crate::faults::layer));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let stopped = async move {
        let _ = rx.await;
    };
    let task = match &security.tls {
        Some(tls) => {
            let listener = tls.listener(listener)?;
            let service = app.into_make_service_with_connect_info::<crate::kube_api::TlsPeer>();
            tokio::spawn(async move {
                let _ = axum::serve(listener, service).with_graceful_shutdown(stopped).await;
            })
        }
        None => tokio::spawn(async move {
            let service = app.into_make_service_with_connect_info::<SocketAddr>();
            let _ = axum::serve(listener, service).with_graceful_shutdown(stopped).await;
        }),
    };
    Ok(FilesEmulator { addr, dir, shutdown: Some(tx), task: Some(task), state })
}
