//! The agent of the kind stand-in node images: one multi-call binary, `chaos-node-agent`, that
//! plays systemd (`entrypoint`, `systemctl`), `kubeadm`, `kubectl`, `kubelet`, `kube-apiserver`
//! and, in the load-balancer image, `envoy`, so that the real `kind` binary can create clusters
//! where the `kindest/node` image cannot be pulled.
//!
//! The Kubernetes API is the in-memory simulator of [`chaos_sim`], served over TLS by the first
//! control plane. Every node's kubelet is a real process in its node container, talking to that
//! API over the Docker network: stopping, killing, pausing or partitioning a node container stops
//! its heartbeats for real, and the simulated node lifecycle controller marks the node
//! `NotReady` as kube-controller-manager would.
//!
//! Every role is a function over a [`paths::Paths`] (the filesystem root, `/` in an image, a
//! temporary directory in tests), so that the roles run in-process in tests.

pub mod apiserver;
pub mod config;
pub mod entrypoint;
pub mod envoy;
pub mod kubeadm;
pub mod kubeconfig;
pub mod kubectl;
pub mod kubelet;
pub mod logs;
pub mod paths;
pub mod pki;
pub mod systemctl;
pub mod wait;

/// The roles of the multi-call binary, by the name it is called as.
pub const ROLES: [&str; 9] = [
    "entrypoint",
    "systemctl",
    "kubeadm",
    "kubectl",
    "kubelet",
    "kube-apiserver",
    "envoy",
    "journalctl",
    "crictl",
];

/// An error that says what the stand-in does not do, as opposed to a failure of what it does.
#[derive(Debug, thiserror::Error)]
#[error("chaos-standin does not support {0}")]
pub struct Unsupported(pub String);

/// Shorthand for an [`Unsupported`] error.
pub fn unsupported<T>(what: impl Into<String>) -> anyhow::Result<T> {
    Err(Unsupported(what.into()).into())
}
