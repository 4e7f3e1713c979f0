//! Outages the sandbox can simulate: a TCP gate in front of each server (API server, gateway, file
//! shares) that passes traffic, refuses connections (the listening socket is closed, as when a
//! host is down), or accepts them and never answers (a black-holed network). Changing the mode
//! cuts the connections in flight, as an outage does to keep-alive connections.
//!
//! The servers behind the gates keep their state: a region that comes back comes back as it was,
//! with its pods wanting to run.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;

use drscript_base::error::{Error, Result};

/// What a gate does with connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GateMode {
    Open,
    /// Nothing listens: connections are refused.
    Refuse,
    /// Connections are accepted and never answered.
    Hang,
}

/// A part of an environment that can be taken down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Part {
    Cluster,
    Gateway,
    Share,
    /// A database server of the sandbox (its "environment" is the database's name).
    Database,
}

impl Part {
    /// `cluster`, `gateway`, `share`, or `region` (all three).
    pub fn parse_all(text: &str) -> Result<Vec<Part>> {
        match text.trim().to_ascii_lowercase().as_str() {
            "cluster" | "kube" | "api" => Ok(vec![Part::Cluster]),
            "gateway" => Ok(vec![Part::Gateway]),
            "share" | "shares" | "storage" => Ok(vec![Part::Share]),
            "region" | "all" => Ok(vec![Part::Cluster, Part::Gateway, Part::Share]),
            "database" | "db" => Ok(vec![Part::Database]),
            other => Err(Error::Usage(format!(
                "outage part `{other}`: use cluster, gateway, share, region (all of them), or database (with a database's name)"
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Part::Cluster => "cluster",
            Part::Gateway => "gateway",
            Part::Share => "share",
            Part::Database => "database",
        }
    }
}

/// A gate in front of `backend`, listening on a fixed loopback port.
pub struct Gate {
    public: SocketAddr,
    mode: watch::Sender<GateMode>,
    /// The mode the serving loop has put in force (listener closed or open), so that `set`
    /// returns only once a new connection meets the new mode.
    applied: Arc<AtomicU8>,
    task: tokio::task::JoinHandle<()>,
}

fn code(mode: GateMode) -> u8 {
    match mode {
        GateMode::Open => 0,
        GateMode::Refuse => 1,
        GateMode::Hang => 2,
    }
}

impl Gate {
    /// Opens a gate on an ephemeral loopback port in front of `backend`.
    pub async fn front(backend: SocketAddr) -> Result<Gate> {
        let listener = bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        let public = listener.local_addr().map_err(|e| Error::io("sandbox gate address", e))?;
        let (mode, rx) = watch::channel(GateMode::Open);
        let applied = Arc::new(AtomicU8::new(code(GateMode::Open)));
        let task = tokio::spawn(serve(Some(listener), public, backend, rx, applied.clone()));
        Ok(Gate { public, mode, applied, task })
    }

    pub fn addr(&self) -> SocketAddr {
        self.public
    }

    pub fn mode(&self) -> GateMode {
        *self.mode.borrow()
    }

    /// Puts `mode` in force; returns once the serving loop applied it (at most a second).
    pub fn set(&self, mode: GateMode) {
        self.mode.send_if_modified(|m| {
            let changed = *m != mode;
            *m = mode;
            changed
        });
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
        while self.applied.load(Ordering::SeqCst) != code(mode) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn bind(addr: SocketAddr) -> Result<TcpListener> {
    let socket = TcpSocket::new_v4().map_err(|e| Error::io("sandbox gate socket", e))?;
    // The port is given back while refusing and taken again on restore.
    socket.set_reuseaddr(true).map_err(|e| Error::io("sandbox gate socket", e))?;
    socket.bind(addr).map_err(|e| Error::io(format!("cannot bind the sandbox gate {addr}"), e))?;
    socket.listen(1024).map_err(|e| Error::io(format!("cannot listen on {addr}"), e))
}

async fn serve(
    mut listener: Option<TcpListener>,
    public: SocketAddr,
    backend: SocketAddr,
    mut rx: watch::Receiver<GateMode>,
    applied: Arc<AtomicU8>,
) {
    loop {
        let mode = *rx.borrow_and_update();
        if mode == GateMode::Refuse {
            listener = None;
            applied.store(code(mode), Ordering::SeqCst);
            if rx.changed().await.is_err() {
                return;
            }
            continue;
        }
        if listener.is_none() {
            match bind(public) {
                Ok(l) => listener = Some(l),
                Err(e) => {
                    tracing::error!("sandbox gate: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            }
        }
        applied.store(code(mode), Ordering::SeqCst);
        let Some(l) = listener.as_ref() else { continue };
        tokio::select! {
            accepted = l.accept() => {
                if let Ok((socket, _)) = accepted {
                    tokio::spawn(connection(socket, backend, mode, rx.clone()));
                }
            }
            changed = rx.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}

/// One client connection: forwarded while the gate stays open, held silently while it hangs, cut
/// as soon as the mode changes.
async fn connection(mut client: TcpStream, backend: SocketAddr, mode: GateMode, mut rx: watch::Receiver<GateMode>) {
    if mode == GateMode::Open {
        let Ok(mut server) = TcpStream::connect(backend).await else { return };
        tokio::select! {
            _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
            _ = rx.changed() => {}
        }
    } else {
        let _ = rx.changed().await;
    }
}

/// The gates of one environment.
#[derive(Default)]
pub struct EnvGates {
    pub cluster: Option<Arc<Gate>>,
    pub gateway: Option<Arc<Gate>>,
    pub share: Option<Arc<Gate>>,
    pub database: Option<Arc<Gate>>,
}

impl EnvGates {
    fn gate(&self, part: Part) -> Option<&Arc<Gate>> {
        match part {
            Part::Cluster => self.cluster.as_ref(),
            Part::Gateway => self.gateway.as_ref(),
            Part::Share => self.share.as_ref(),
            Part::Database => self.database.as_ref(),
        }
    }

    /// Takes `parts` down (`hang`: accept and never answer instead of refusing), all or none: a
    /// part this environment does not have refuses the whole outage before any gate closes.
    pub fn outage(&self, env: &str, parts: &[Part], hang: bool) -> Result<()> {
        let gates = parts
            .iter()
            .map(|part| {
                self.gate(*part).ok_or_else(|| {
                    Error::Usage(match part {
                        Part::Share => format!(
                            "{env}'s shares are local folders in this sandbox: start it with `sandbox up --remote-shares` to rehearse a storage outage (nothing was taken down)"
                        ),
                        _ => format!("{env} has no {} to take down (nothing was taken down)", part.name()),
                    })
                })
            })
            .collect::<Result<Vec<_>>>()?;
        for gate in gates {
            gate.set(if hang { GateMode::Hang } else { GateMode::Refuse });
        }
        Ok(())
    }

    /// Brings every part back.
    pub fn restore(&self) {
        for gate in [&self.cluster, &self.gateway, &self.share, &self.database].into_iter().flatten() {
            gate.set(GateMode::Open);
        }
    }

    /// Each part's mode, for `sandbox status`.
    pub fn modes(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        for part in [Part::Cluster, Part::Gateway, Part::Share, Part::Database] {
            if let Some(g) = self.gate(part) {
                m.insert(part.name().to_string(), serde_json::to_value(g.mode()).unwrap_or_default());
            }
        }
        serde_json::Value::Object(m)
    }
}
