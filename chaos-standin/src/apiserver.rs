//! The `kube-apiserver` unit.
//!
//! On the first control plane (the node `kubeadm init` ran on) it is the simulator of
//! [`chaos_sim`]: an [`ApiServer`] and its [`ControlPlane`] controllers *without* simulated
//! kubelets (each node runs its own [`crate::kubelet`]), served over HTTPS on port 6443.
//!
//! On a control plane that joined, it is a TCP forwarder from its port 6443 to the first
//! control plane's. There is no etcd: every object lives in the memory of the first control
//! plane's kube-apiserver process. Losing that node (stopped, killed, partitioned away) loses
//! the API for the whole cluster, and restarting its container or its kube-apiserver starts
//! from an empty store (the nodes' kubelets register their nodes again; every other object is
//! gone). That is the stand-in's documented limit.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chaos_sim::ApiServer;
use chaos_sim::control::{ControlPlane, Timings};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use crate::config::KubeadmConfig;
use crate::paths::{Paths, kube_version, read_file};

/// How the unit runs, as `kubeadm` enabled it (the unit file `kube-apiserver.json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "kebab-case")]
pub enum Unit {
    /// The API itself, on the node `kubeadm init` ran on.
    Init {
        /// The port to serve on (`localAPIEndpoint.bindPort`).
        port: u16,
    },
    /// A forwarder to the first control plane, on a control plane that joined.
    Forward {
        /// The port to listen on.
        port: u16,
        /// `<clusterName>-control-plane:6443`: kind names the first control plane so
        /// (`pkg/cluster/internal/providers/docker/provision.go`, `planCreation`: the first
        /// control-plane node is `<cluster>-control-plane`, the next ones `…-control-plane2`, …).
        target: String,
    },
}

/// The simulator's timings from the kubeadm config (see [`KubeadmConfig::node_monitor_grace`]
/// and [`KubeadmConfig::default_toleration_seconds`]); pods start about a second after they
/// are bound, as an image already present would.
pub fn timings(config: &KubeadmConfig, version: &str) -> anyhow::Result<Timings> {
    Ok(Timings {
        pod_start: Duration::from_secs(1),
        // Only the simulator's own kubelets use it, and none run here.
        heartbeat: Duration::from_secs(10),
        node_monitor_grace: config.node_monitor_grace(version)?,
        default_toleration_seconds: config.default_toleration_seconds()?,
    })
}

/// A TLS acceptor for a PEM certificate (chain) and key, offering HTTP/1.1 only.
pub fn tls_acceptor(cert_pem: &str, key_pem: &str) -> anyhow::Result<TlsAcceptor> {
    let certs = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .context("reading the serving certificate")?;
    let key =
        PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).context("reading the serving key")?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serves `server` over TLS on `listener` until the task is dropped.
pub async fn serve_tls(server: ApiServer, listener: TcpListener, acceptor: TlsAcceptor) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let (server, acceptor) = (server.clone(), acceptor.clone());
        tokio::spawn(async move {
            // A client that fails the handshake (kind's health checks with no client
            // certificate are fine; a port scan is not) is its own business.
            let handshake = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream));
            if let Ok(Ok(tls)) = handshake.await {
                let _ = server.serve_connection(tls).await;
            }
        });
    }
}

/// Forwards every connection on `listener` to `target` (resolved at each connection).
pub async fn forward(listener: TcpListener, target: String) {
    loop {
        let Ok((mut inbound, peer)) = listener.accept().await else {
            continue;
        };
        let target = target.clone();
        tokio::spawn(async move {
            let connect = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(&target));
            match connect.await {
                Ok(Ok(mut outbound)) => {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
                Ok(Err(e)) => eprintln!("forwarding {peer} to {target}: {e}"),
                Err(_) => eprintln!("forwarding {peer} to {target}: connect timed out after 5s"),
            }
        });
    }
}

/// Listens on `port` on every address: `[::]` (dual-stack on Linux), or `0.0.0.0` where the
/// container has no IPv6.
pub async fn listen_any(port: u16) -> anyhow::Result<TcpListener> {
    match TcpListener::bind(SocketAddr::from(([0u16; 8], port))).await {
        Ok(listener) => Ok(listener),
        Err(_) => TcpListener::bind(SocketAddr::from(([0, 0, 0, 0], port)))
            .await
            .with_context(|| format!("listening on 0.0.0.0:{port}")),
    }
}

/// A running simulator with its controllers.
pub struct Simulator {
    /// The API.
    pub server: ApiServer,
    /// Its controllers (dropping it stops them).
    pub control_plane: ControlPlane,
}

/// Starts the simulator's API and controllers, no simulated kubelets.
pub fn start_simulator(version: &str, timings: Timings) -> Simulator {
    Simulator::start(ApiServer::new(version), timings)
}

impl Simulator {
    /// Starts the controllers over `server` (a new one, or one restored from a snapshot).
    pub fn start(server: ApiServer, timings: Timings) -> Self {
        let control_plane = ControlPlane::start_without_kubelets(server.clone(), timings);
        Self {
            server,
            control_plane,
        }
    }
}

/// The server saved at `path`, if there is one.
pub fn load_snapshot(path: &std::path::Path, version: &str) -> anyhow::Result<Option<ApiServer>> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(None);
    };
    let snapshot: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("reading the API snapshot {}", path.display()))?;
    let server = ApiServer::restore(version, &snapshot)
        .map_err(|e| anyhow::anyhow!("restoring the API snapshot {}: {e}", path.display()))?;
    Ok(Some(server))
}

/// Saves the server's objects to `path` (atomically).
pub fn save_snapshot(server: &ApiServer, path: &std::path::Path) -> anyhow::Result<()> {
    crate::paths::write_file(path, server.snapshot().to_string())
}

/// The unit's main: what `kubeadm` enabled, until the process is stopped.
pub async fn run(paths: &Paths) -> anyhow::Result<()> {
    let unit: Unit = serde_json::from_str(&read_file(&paths.apiserver_unit())?)
        .context("reading the kube-apiserver unit")?;
    match unit {
        Unit::Init { port } => {
            let version = kube_version(paths)?;
            let config = KubeadmConfig::parse(&read_file(&paths.at("/kind/kubeadm.conf"))?)?;
            let timings = timings(&config, &version)?;
            let acceptor = tls_acceptor(
                &read_file(&paths.pki("apiserver.crt"))?,
                &read_file(&paths.pki("apiserver.key"))?,
            )?;
            let listener = listen_any(port).await?;
            println!(
                "serving the chaos-sim API {version} on :{port} (node-monitor-grace-period {:?}, default toleration {}s); no etcd: objects live in this process",
                timings.node_monitor_grace, timings.default_toleration_seconds
            );
            let snapshot = paths.api_snapshot();
            let server = match load_snapshot(&snapshot, &version)? {
                Some(server) => {
                    println!("restored the API's objects from {}", snapshot.display());
                    server
                }
                None => ApiServer::new(&version),
            };
            let sim = Simulator::start(server, timings);
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            let mut saved_rv = None;
            let serve = serve_tls(sim.server.clone(), listener, acceptor);
            tokio::pin!(serve);
            loop {
                tokio::select! {
                    () = &mut serve => return Ok(()),
                    _ = term.recv() => break,
                    () = tokio::time::sleep(Duration::from_secs(3)) => {
                        let rv = Some(sim.server.resource_version());
                        if rv != saved_rv {
                            if let Err(e) = save_snapshot(&sim.server, &snapshot) {
                                eprintln!("saving the API's objects: {e:#}");
                            }
                            saved_rv = rv;
                        }
                    }
                }
            }
            save_snapshot(&sim.server, &snapshot)?;
            println!(
                "saved the API's objects to {}; stopping",
                snapshot.display()
            );
            Ok(())
        }
        Unit::Forward { port, target } => {
            let listener = listen_any(port).await?;
            println!(
                "forwarding :{port} to {target}, the first control plane's kube-apiserver (no etcd: the API lives there)"
            );
            forward(listener, target).await;
            Ok(())
        }
    }
}
