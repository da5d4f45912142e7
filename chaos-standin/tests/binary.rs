//! The `chaos-node-agent` binary through kind's own command lines, without Docker: two "nodes"
//! (a control plane and a worker) are two filesystem roots, each with its `entrypoint` as the
//! supervisor, on 127.0.0.1.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const AGENT: &str = env!("CARGO_BIN_EXE_chaos-node-agent");

/// A node: a root directory and its PID 1 (an `entrypoint` child here).
struct Node {
    root: PathBuf,
    entrypoint: Child,
}

impl Node {
    fn start(name: &str, kubeadm_conf: &str) -> Self {
        let root = std::env::temp_dir().join(format!("standin-bin-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("kind")).unwrap();
        std::fs::write(root.join("kind/version"), "v1.31.4\n").unwrap();
        std::fs::write(root.join("kind/kubeadm.conf"), kubeadm_conf).unwrap();
        let entrypoint = Self::boot(&root);
        Self { root, entrypoint }
    }

    /// `docker stop` then `docker start`: PID 1 stops its units and exits 0, /run is a fresh
    /// tmpfs, and PID 1 boots again.
    fn restart(&mut self) {
        self.stop();
        std::fs::remove_dir_all(self.root.join("run")).unwrap();
        self.entrypoint = Self::boot(&self.root);
    }

    fn stop(&mut self) {
        unsafe { libc_kill(self.entrypoint.id() as i32, 15) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.entrypoint.try_wait() {
                assert!(
                    status.success() || std::thread::panicking(),
                    "entrypoint exit {status}"
                );
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.entrypoint.kill();
        panic!("the entrypoint did not stop within 10 s of SIGTERM");
    }

    fn boot(root: &Path) -> Child {
        let mut entrypoint = Command::new(AGENT)
            .arg("entrypoint")
            .env("CHAOS_STANDIN_ROOT", root)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        // kind waits for this line in the node's logs before it goes on.
        let mut first = String::new();
        let mut out = std::io::BufReader::new(entrypoint.stdout.take().unwrap());
        std::io::BufRead::read_line(&mut out, &mut first).unwrap();
        assert_eq!(
            first.trim_end(),
            "Reached target multi-user.target - Multi-User System."
        );
        // Keep draining the supervisor's output (the units' logs) to our stderr.
        std::thread::spawn(move || {
            for line in std::io::BufRead::lines(out).map_while(Result::ok) {
                eprintln!("{line}");
            }
        });
        entrypoint
    }

    /// `docker exec <node> <role> args…`, with stdin.
    fn exec(&self, role: &str, args: &[&str], stdin: &str) -> Output {
        let mut child = Command::new(AGENT)
            .arg(role)
            .args(args)
            .env("CHAOS_STANDIN_ROOT", &self.root)
            .env_remove("KUBECONFIG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    fn ok(&self, role: &str, args: &[&str], stdin: &str) -> String {
        let out = self.exec(role, args, stdin);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "{role} {args:?} failed: {}\n{text}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // docker stop: the stop signal, then PID 1 stops its units and exits 0.
        unsafe { libc_kill(self.entrypoint.id() as i32, 15) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.entrypoint.try_wait() {
                assert!(
                    status.success() || std::thread::panicking(),
                    "entrypoint exit {status}"
                );
                let _ = std::fs::remove_dir_all(&self.root);
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.entrypoint.kill();
    }
}

unsafe extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, signal: i32) -> i32;
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// kind's v1beta3 template for a 1.31 cluster, on 127.0.0.1, with node names set.
fn kubeadm_conf(node: &str, port: u16) -> String {
    format!(
        r#"apiVersion: kubeadm.k8s.io/v1beta3
kind: ClusterConfiguration
kubernetesVersion: v1.31.4
clusterName: "bin"
controlPlaneEndpoint: "127.0.0.1:{port}"
apiServer:
  certSANs: [localhost, "127.0.0.1"]
  extraArgs:
    "runtime-config": ""
controllerManager:
  extraArgs:
    enable-hostpath-provisioner: "true"
    node-monitor-grace-period: "3s"
networking:
  podSubnet: "10.244.0.0/16"
  serviceSubnet: "10.96.0.0/16"
---
apiVersion: kubeadm.k8s.io/v1beta3
kind: InitConfiguration
bootstrapTokens:
- token: "abcdef.0123456789abcdef"
localAPIEndpoint:
  advertiseAddress: "127.0.0.1"
  bindPort: {port}
nodeRegistration:
  name: {node}
  criSocket: "unix:///run/containerd/containerd.sock"
  kubeletExtraArgs:
    node-ip: "127.0.0.1"
    provider-id: "kind://docker/bin/{node}"
    node-labels: ""
---
apiVersion: kubeadm.k8s.io/v1beta3
kind: JoinConfiguration
nodeRegistration:
  name: {node}
  criSocket: "unix:///run/containerd/containerd.sock"
  kubeletExtraArgs:
    node-ip: "127.0.0.1"
    provider-id: "kind://docker/bin/{node}"
    node-labels: "tier=workers"
discovery:
  bootstrapToken:
    apiServerEndpoint: "127.0.0.1:{port}"
    token: "abcdef.0123456789abcdef"
    unsafeSkipCAVerification: true
---
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: systemd
nodeStatusUpdateFrequency: 500ms
"#
    )
}

const ADMIN: &str = "--kubeconfig=/etc/kubernetes/admin.conf";
const READY_PATH: &str = "-o=jsonpath='{.items..status.conditions[-1:].status}'";

fn wait_for(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn kinds_command_lines_make_a_cluster_whose_nodes_fail_for_real() {
    let port = free_port();
    let mut cp = Node::start("cp", &kubeadm_conf("bin-control-plane", port));
    let init = cp.ok(
        "kubeadm",
        &[
            "init",
            "--config=/kind/kubeadm.conf",
            "--skip-token-print",
            "--v=6",
        ],
        "",
    );
    assert!(init.contains("initialized successfully"), "{init}");
    for file in [
        "ca.crt",
        "ca.key",
        "front-proxy-ca.crt",
        "front-proxy-ca.key",
        "sa.pub",
        "sa.key",
        "etcd/ca.crt",
        "etcd/ca.key",
    ] {
        assert!(
            cp.root.join("etc/kubernetes/pki").join(file).exists(),
            "{file}"
        );
    }
    assert_eq!(
        cp.ok("systemctl", &["is-active", "kubelet"], ""),
        "active\n"
    );
    assert_eq!(
        cp.ok("systemctl", &["is-active", "kube-apiserver.service"], ""),
        "active\n"
    );

    // kubeadm's mark-control-plane phase, then kind's init.go removes the taint and label.
    let nodes = cp.ok("kubectl", &[ADMIN, "get", "nodes"], "");
    assert!(nodes.contains("bin-control-plane Ready v1.31.4"), "{nodes}");
    let out = cp.ok(
        "kubectl",
        &[
            ADMIN,
            "taint",
            "nodes",
            "--all",
            "node-role.kubernetes.io/control-plane-",
        ],
        "",
    );
    assert_eq!(out, "node/bin-control-plane untainted\n");
    let out = cp.ok(
        "kubectl",
        &[
            ADMIN,
            "label",
            "nodes",
            "--all",
            "node.kubernetes.io/exclude-from-external-load-balancers-",
        ],
        "",
    );
    assert_eq!(out, "node/bin-control-plane unlabeled\n");
    // installcni and installstorage, with the manifests the image ships.
    let cni = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("image/default-cni.yaml"),
    )
    .unwrap();
    let storage = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("image/default-storage.yaml"),
    )
    .unwrap();
    assert_eq!(
        cp.ok("kubectl", &["create", ADMIN, "-f", "-"], &cni),
        "configmap/chaos-standin-cni created\n"
    );
    assert_eq!(
        cp.ok("kubectl", &[ADMIN, "apply", "-f", "-"], &storage),
        "configmap/chaos-standin-storage created\n"
    );

    // A worker joins through cluster-info.
    let worker = Node::start("worker", &kubeadm_conf("bin-worker", port));
    let join = worker.ok(
        "kubeadm",
        &["join", "--config", "/kind/kubeadm.conf", "--v=6"],
        "",
    );
    assert!(join.contains("joined the cluster"), "{join}");
    // kind create cluster --wait's check.
    wait_for("both nodes Ready", Duration::from_secs(20), || {
        cp.ok("kubectl", &[ADMIN, "get", "nodes", READY_PATH], "") == "'True True'"
    });

    // The framework's kubelet fault: `docker exec <node> systemctl stop kubelet`.
    let started = Instant::now();
    worker.ok("systemctl", &["stop", "kubelet"], "");
    let out = worker.exec("systemctl", &["is-active", "kubelet"], "");
    assert_eq!(
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).as_ref()
        ),
        (Some(3), "inactive\n")
    );
    wait_for(
        "the worker NotReady (Unknown)",
        Duration::from_secs(20),
        || {
            let nodes = cp.ok("kubectl", &[ADMIN, "get", "nodes"], "");
            nodes.contains("bin-worker NotReady")
        },
    );
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "not before the 3 s grace period"
    );
    worker.ok("systemctl", &["start", "kubelet"], "");
    wait_for("the worker Ready again", Duration::from_secs(20), || {
        cp.ok("kubectl", &[ADMIN, "get", "nodes", READY_PATH], "") == "'True True'"
    });

    // What the stand-in does not do, it says, and fails.
    let out = cp.exec("kubectl", &[ADMIN, "delete", "nodes", "--all"], "");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not support kubectl delete nodes"));
    let out = cp.exec("systemctl", &["restart", "containerd"], "");
    assert_eq!(out.status.code(), Some(5));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "Unit containerd.service not found.\n"
    );

    // The first control plane's container restarts: its API comes back with its objects.
    cp.restart();
    wait_for(
        "both nodes Ready after the restart",
        Duration::from_secs(30),
        || {
            let out = cp.exec("kubectl", &[ADMIN, "get", "nodes", READY_PATH], "");
            String::from_utf8_lossy(&out.stdout) == "'True True'"
        },
    );
    assert_eq!(
        cp.ok("kubectl", &[ADMIN, "apply", "-f", "-"], &cni),
        "configmap/chaos-standin-cni configured\n",
        "the ConfigMap created before the restart is still there"
    );
    assert_eq!(
        cp.ok("systemctl", &["is-active", "kubelet"], ""),
        "active\n",
        "the kubelet boots again"
    );
    drop(worker);
    drop(cp);
}
