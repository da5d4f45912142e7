//! Where the stand-in keeps its files, under a root that is `/` in a node image and a temporary
//! directory in tests.

use std::path::{Path, PathBuf};

/// The units PID 1 supervises.
pub const UNITS: [&str; 2] = ["kubelet", "kube-apiserver"];

/// File locations, rooted at one directory.
#[derive(Clone, Debug)]
pub struct Paths {
    root: PathBuf,
}

impl Paths {
    /// Paths under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The root named by `CHAOS_STANDIN_ROOT`, `/` when unset (an image).
    pub fn from_env() -> Self {
        Self::new(std::env::var_os("CHAOS_STANDIN_ROOT").unwrap_or_else(|| "/".into()))
    }

    /// `path` (absolute, as on a node) under the root.
    pub fn at(&self, path: &str) -> PathBuf {
        self.root.join(path.trim_start_matches('/'))
    }

    /// The root itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `/kind/version`: the Kubernetes version the image stands in for (kind reads it too:
    /// `nodeutils.KubeVersion`).
    pub fn kind_version(&self) -> PathBuf {
        self.at("/kind/version")
    }

    /// `/etc/kubernetes/pki/<name>`.
    pub fn pki(&self, name: &str) -> PathBuf {
        self.at("/etc/kubernetes/pki").join(name)
    }

    /// `/etc/kubernetes/admin.conf`.
    pub fn admin_conf(&self) -> PathBuf {
        self.at("/etc/kubernetes/admin.conf")
    }

    /// `/etc/kubernetes/kubelet.conf`.
    pub fn kubelet_conf(&self) -> PathBuf {
        self.at("/etc/kubernetes/kubelet.conf")
    }

    /// `/var/lib/kubelet/config.yaml`: the KubeletConfiguration kubeadm writes.
    pub fn kubelet_config(&self) -> PathBuf {
        self.at("/var/lib/kubelet/config.yaml")
    }

    /// `/var/lib/kubelet/chaos-standin-flags.json`: what a real kubeadm puts in
    /// `kubeadm-flags.env` (node name, labels, taints, node IP, provider ID), as JSON.
    pub fn kubelet_flags(&self) -> PathBuf {
        self.at("/var/lib/kubelet/chaos-standin-flags.json")
    }

    /// `/etc/kubernetes/chaos-standin/kube-apiserver.json`: kube-apiserver is enabled, and how it
    /// runs. Under /etc/kubernetes, so it survives a container restart (kind's `/var` is a
    /// volume, the rest of the container's filesystem persists across restarts too).
    pub fn apiserver_unit(&self) -> PathBuf {
        self.at("/etc/kubernetes/chaos-standin/kube-apiserver.json")
    }

    /// `/run/chaos-standin`: PID 1's runtime state (a fresh tmpfs at each container start).
    pub fn run_dir(&self) -> PathBuf {
        self.at("/run/chaos-standin")
    }

    /// `/run/chaos-standin/<unit>.stopped`: `systemctl stop` asked for the unit to stay down
    /// until `systemctl start` (or the next boot, as for an enabled systemd unit).
    pub fn stopped_mark(&self, unit: &str) -> PathBuf {
        self.run_dir().join(format!("{unit}.stopped"))
    }

    /// `/run/chaos-standin/<unit>.pid`: the unit's main process, written by PID 1.
    pub fn pid_file(&self, unit: &str) -> PathBuf {
        self.run_dir().join(format!("{unit}.pid"))
    }

    /// `/run/chaos-standin/containers.json`: the pods whose "containers" run on this node. On
    /// tmpfs: a kubelet restart finds them, a container restart does not.
    pub fn containers(&self) -> PathBuf {
        self.run_dir().join("containers.json")
    }

    /// `/var/lib/chaos-standin/api.json`: the first control plane's API objects, saved
    /// periodically and at stop, loaded at start (`/var` is a volume of kind's node containers,
    /// so it outlives a container restart).
    pub fn api_snapshot(&self) -> PathBuf {
        self.at("/var/lib/chaos-standin/api.json")
    }

    /// `/var/log/<unit>.log`.
    pub fn unit_log(&self, unit: &str) -> PathBuf {
        self.at("/var/log").join(format!("{unit}.log"))
    }
}

/// Writes a file atomically (a temporary file renamed over it), creating its directory.
pub fn write_file(path: &Path, contents: impl AsRef<[u8]>) -> anyhow::Result<()> {
    use anyhow::Context;
    let dir = path.parent().context("a file path has a parent")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().unwrap_or_default().to_string_lossy()
    ));
    std::fs::write(&tmp, contents).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

/// Reads a file to a string, saying which file failed.
pub fn read_file(path: &Path) -> anyhow::Result<String> {
    use anyhow::Context;
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// `/kind/version`, trimmed (e.g. `v1.29.14`).
pub fn kube_version(paths: &Paths) -> anyhow::Result<String> {
    Ok(read_file(&paths.kind_version())?.trim().to_string())
}
