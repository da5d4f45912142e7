//! `kubeadm init` and `kubeadm join`, with exactly what kind runs
//! (`pkg/cluster/internal/create/actions/kubeadminit/init.go`:
//! `kubeadm init --config=/kind/kubeadm.conf --skip-token-print --v=6`;
//! `kubeadmjoin/join.go`: `kubeadm join --config /kind/kubeadm.conf --v=6`).
//!
//! `init` makes the PKI and kubeconfigs, enables the simulated kube-apiserver, publishes
//! `kube-public/cluster-info`, configures and starts the kubelet, and marks the node a control
//! plane. `join` discovers the CA through cluster-info, configures and starts the kubelet, and
//! for a control plane first enables kube-apiserver as a forwarder to the first control plane.

use std::net::IpAddr;
use std::time::Duration;

use anyhow::{Context, bail};
use k8s_openapi::api::core::v1::{ConfigMap, Node};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use crate::apiserver::Unit;
use crate::config::{KubeadmConfig, NodeRegistration};
use crate::kubeconfig::{self, Credentials};
use crate::kubelet::{Flags, parse_node_labels};
use crate::paths::{Paths, kube_version, read_file, write_file};
use crate::pki::{self, Ca};
use crate::systemctl;

/// How long init and join wait for the API and for the node to register.
pub const WAIT: Duration = Duration::from_secs(60);

/// A parsed `kubeadm` command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    /// `init` or `join`.
    pub phase: Phase,
    /// `--config`.
    pub config: String,
}

/// The subcommands the stand-in runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// `kubeadm init`.
    Init,
    /// `kubeadm join`.
    Join,
}

/// Parses `kubeadm` arguments: `init|join`, `--config[=]FILE`, `--v[=]N`, `--skip-token-print`.
pub fn parse(args: &[String]) -> anyhow::Result<Command> {
    let mut phase = None;
    let mut config = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        let mut value = |name: &str| -> anyhow::Result<String> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => args
                    .next()
                    .cloned()
                    .with_context(|| format!("{name} needs a value")),
            }
        };
        match flag {
            "init" if phase.is_none() => phase = Some(Phase::Init),
            "join" if phase.is_none() => phase = Some(Phase::Join),
            "--config" => config = Some(value("--config")?),
            "--v" | "-v" => {
                value("--v")?;
            }
            "--skip-token-print" if phase == Some(Phase::Init) => {}
            other if phase.is_none() => return crate::unsupported(format!("kubeadm {other}")),
            other => return crate::unsupported(format!("the kubeadm flag {other}")),
        }
    }
    let Some(phase) = phase else {
        return crate::unsupported("kubeadm without init or join");
    };
    let Some(config) = config else {
        return crate::unsupported("kubeadm without --config");
    };
    Ok(Command { phase, config })
}

/// This machine's hostname (kind runs each node with `--hostname <node name>`).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

/// This machine's addresses, loopback excluded.
pub fn local_ips() -> Vec<IpAddr> {
    let mut ips = Vec::new();
    let mut addrs: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills a list we walk read-only and free with freeifaddrs.
    unsafe {
        if libc::getifaddrs(&mut addrs) != 0 {
            return ips;
        }
        let mut cursor = addrs;
        while !cursor.is_null() {
            let addr = (*cursor).ifa_addr;
            if !addr.is_null() {
                match i32::from((*addr).sa_family) {
                    libc::AF_INET => {
                        let v4 = &*(addr as *const libc::sockaddr_in);
                        ips.push(IpAddr::from(u32::from_be(v4.sin_addr.s_addr).to_be_bytes()));
                    }
                    libc::AF_INET6 => {
                        let v6 = &*(addr as *const libc::sockaddr_in6);
                        ips.push(IpAddr::from(v6.sin6_addr.s6_addr));
                    }
                    _ => {}
                }
            }
            cursor = (*cursor).ifa_next;
        }
        libc::freeifaddrs(addrs);
    }
    ips.retain(|ip| !ip.is_loopback());
    ips.dedup();
    ips
}

/// The kubelet's flags from `nodeRegistration`, as kubeadm's `kubelet-start` phase writes
/// `kubeadm-flags.env`.
fn kubelet_flags(
    node: &NodeRegistration,
    name: &str,
    version: &str,
    taints: Vec<Value>,
) -> anyhow::Result<Flags> {
    let args = &node.kubelet_args;
    for key in args.keys() {
        if !matches!(key.as_str(), "node-ip" | "provider-id" | "node-labels") {
            return crate::unsupported(format!("the kubelet flag --{key}"));
        }
    }
    let node_ip = match args.get("node-ip") {
        Some(ip) if !ip.is_empty() => ip.clone(),
        _ => local_ips()
            .first()
            .map(IpAddr::to_string)
            .unwrap_or_else(|| "127.0.0.1".into()),
    };
    Ok(Flags {
        node_name: name.to_string(),
        node_ip,
        provider_id: args.get("provider-id").cloned().unwrap_or_default(),
        labels: parse_node_labels(args.get("node-labels").map_or("", String::as_str))?,
        taints,
        version: version.to_string(),
    })
}

/// kubeadm's default control-plane taint (the `mark-control-plane` phase), unless
/// `nodeRegistration.taints` is set (kind leaves it unset, and removes the taint itself for a
/// single-node cluster: `kubectl taint nodes --all node-role.kubernetes.io/control-plane-`).
fn control_plane_taints(node: &NodeRegistration) -> Vec<Value> {
    node.taints.clone().unwrap_or_else(|| {
        vec![json!({"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"})]
    })
}

/// Writes the kubelet's files and starts it; waits until its Node is registered.
async fn start_kubelet(
    paths: &Paths,
    config: &KubeadmConfig,
    flags: &Flags,
    kubelet_conf: &str,
    admin: &kube::Client,
) -> anyhow::Result<()> {
    write_file(&paths.kubelet_conf(), kubelet_conf)?;
    write_file(
        &paths.kubelet_config(),
        serde_json::to_string_pretty(&config.kubelet)?,
    )?;
    write_file(&paths.kubelet_flags(), serde_json::to_string_pretty(flags)?)?;
    println!(
        "[kubelet-start] Writing kubelet configuration to file \"/var/lib/kubelet/config.yaml\""
    );
    println!("[kubelet-start] Starting the kubelet");
    systemctl::start(paths, "kubelet").await?;
    let nodes: Api<Node> = Api::all(admin.clone());
    let name = flags.node_name.clone();
    crate::wait::until(
        &format!("the kubelet to register Node {name}"),
        WAIT,
        Duration::from_millis(500),
        || async {
            match nodes.get_opt(&name).await {
                Ok(Some(_)) => Ok(Some(())),
                Ok(None) => Err(format!("no Node {name}")),
                Err(e) => Err(e.to_string()),
            }
        },
    )
    .await
}

/// kubeadm's `mark-control-plane` phase: the control-plane labels and taints.
async fn mark_control_plane(
    admin: &kube::Client,
    node: &str,
    taints: &[Value],
) -> anyhow::Result<()> {
    println!(
        "[mark-control-plane] Marking the node {node} as control-plane by adding the labels: [node-role.kubernetes.io/control-plane node.kubernetes.io/exclude-from-external-load-balancers]"
    );
    let nodes: Api<Node> = Api::all(admin.clone());
    let current = nodes.get(node).await?;
    let mut all: Vec<Value> = current
        .spec
        .and_then(|s| s.taints)
        .into_iter()
        .flatten()
        .map(|t| serde_json::to_value(t).expect("a taint serializes"))
        .collect();
    for taint in taints {
        if !all
            .iter()
            .any(|t| t["key"] == taint["key"] && t["effect"] == taint["effect"])
        {
            all.push(taint.clone());
        }
    }
    let patch = json!({
        "metadata": {"labels": {
            "node-role.kubernetes.io/control-plane": "",
            "node.kubernetes.io/exclude-from-external-load-balancers": "",
        }},
        "spec": {"taints": all},
    });
    nodes
        .patch(node, &PatchParams::default(), &Patch::Merge(patch))
        .await?;
    Ok(())
}

async fn wait_healthy(client: &kube::Client, what: &str) -> anyhow::Result<()> {
    crate::wait::until(what, WAIT, Duration::from_millis(500), || async {
        let request = http::Request::get("/healthz")
            .body(Vec::new())
            .expect("a valid request");
        match client.request_text(request).await {
            Ok(body) if body.trim() == "ok" => Ok(Some(())),
            Ok(body) => Err(format!("/healthz answered {body:?}")),
            Err(e) => Err(e.to_string()),
        }
    })
    .await
}

fn node_name(node: &NodeRegistration) -> String {
    node.name.clone().unwrap_or_else(hostname)
}

/// `kubeadm init`.
pub async fn init(paths: &Paths, config: &KubeadmConfig) -> anyhow::Result<()> {
    let init = config
        .init
        .clone()
        .context("the kubeadm config has no InitConfiguration")?;
    let version = kube_version(paths)?;
    let name = node_name(&init.node);
    let endpoint = if config.control_plane_endpoint.is_empty() {
        format!(
            "{}:{}",
            init.advertise_address
                .clone()
                .unwrap_or_else(|| name.clone()),
            init.bind_port
        )
    } else {
        config.control_plane_endpoint.clone()
    };
    println!(
        "[init] Using Kubernetes version: {version} (chaos-standin: the API is chaos-sim, in memory)"
    );

    println!("[certs] Using certificateDir folder \"/etc/kubernetes/pki\"");
    let ca = Ca::generate("kubernetes")?;
    ca.write(paths, "ca")?;
    Ca::generate("front-proxy-ca")?.write(paths, "front-proxy-ca")?;
    Ca::generate("etcd-ca")?.write(paths, "etcd/ca")?;
    pki::write_service_account_keys(paths)?;
    let mut ips = local_ips();
    ips.extend(
        init.advertise_address
            .iter()
            .filter_map(|a| a.parse::<IpAddr>().ok()),
    );
    ips.extend(
        init.node
            .kubelet_args
            .get("node-ip")
            .and_then(|a| a.parse::<IpAddr>().ok()),
    );
    let sans = pki::apiserver_sans(&name, &ips, &endpoint, &config.cert_sans);
    println!("[certs] apiserver serving cert is signed for DNS names and IPs {sans:?}");
    let serving = ca.serving_cert(&sans)?;
    write_file(&paths.pki("apiserver.crt"), &serving.cert_pem)?;
    write_file(&paths.pki("apiserver.key"), &serving.key_pem)?;

    println!("[kubeconfig] Writing \"admin.conf\" kubeconfig file");
    let admin_cert = ca.client_cert("kubernetes-admin", "kubeadm:cluster-admins")?;
    let admin_conf = kubeconfig::render(
        &config.cluster_name,
        &format!("https://{endpoint}"),
        &ca.cert_pem,
        "kubernetes-admin",
        &Credentials::Cert {
            cert_pem: admin_cert.cert_pem,
            key_pem: admin_cert.key_pem,
        },
    );
    write_file(&paths.admin_conf(), &admin_conf)?;

    println!(
        "[control-plane] Enabling kube-apiserver (chaos-sim) on port {}",
        init.bind_port
    );
    write_file(
        &paths.apiserver_unit(),
        serde_json::to_string(&Unit::Init {
            port: init.bind_port,
        })?,
    )?;
    systemctl::start(paths, "kube-apiserver").await?;
    let local = format!("https://127.0.0.1:{}", init.bind_port);
    let admin = kubeconfig::client(
        &paths.admin_conf(),
        Some(&local),
        Some(Duration::from_secs(5)),
    )
    .await?;
    println!(
        "[wait-control-plane] Waiting for the API server at {local}/healthz (timeout {WAIT:?})"
    );
    wait_healthy(&admin, &format!("{local}/healthz")).await?;
    println!("[api-check] The API server is healthy");

    println!(
        "[bootstrap-token] Creating the \"cluster-info\" ConfigMap in the \"kube-public\" namespace"
    );
    let cluster_info = kubeconfig::render(
        "",
        &format!("https://{endpoint}"),
        &ca.cert_pem,
        "",
        &Credentials::None,
    );
    let config_maps: Api<ConfigMap> = Api::namespaced(admin.clone(), "kube-public");
    let cm = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "cluster-info", "namespace": "kube-public"},
        "data": {"kubeconfig": cluster_info},
    }))?;
    match config_maps.create(&PostParams::default(), &cm).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => return Err(e.into()),
    }

    let taints = control_plane_taints(&init.node);
    let flags = kubelet_flags(&init.node, &name, &version, taints.clone())?;
    let node_cert = ca.client_cert(&format!("system:node:{name}"), "system:nodes")?;
    let kubelet_conf = kubeconfig::render(
        &config.cluster_name,
        &format!("https://{endpoint}"),
        &ca.cert_pem,
        &format!("system:node:{name}"),
        &Credentials::Cert {
            cert_pem: node_cert.cert_pem,
            key_pem: node_cert.key_pem,
        },
    );
    start_kubelet(paths, config, &flags, &kubelet_conf, &admin).await?;
    mark_control_plane(&admin, &name, &taints).await?;
    println!("\nYour Kubernetes control-plane has initialized successfully!");
    println!("(chaos-standin: the API is chaos-sim in this node's memory; there is no etcd)");
    Ok(())
}

/// `kubeadm join`.
pub async fn join(paths: &Paths, config: &KubeadmConfig) -> anyhow::Result<()> {
    let join = config
        .join
        .clone()
        .context("the kubeadm config has no JoinConfiguration")?;
    let version = kube_version(paths)?;
    let name = node_name(&join.node);
    if !join.unsafe_skip_ca_verification {
        return crate::unsupported(
            "discovery with CA pinning (only unsafeSkipCAVerification: true)",
        );
    }
    let endpoint = &join.api_server_endpoint;
    println!("[preflight] Running pre-flight checks (none in chaos-standin)");
    println!(
        "[discovery] Fetching kube-public/cluster-info from https://{endpoint} without verifying it (unsafeSkipCAVerification)"
    );
    let ca_pem = discover_ca(endpoint).await?;

    let mut taints = Vec::new();
    if join.control_plane {
        let ca = Ca::load(paths, "ca", "kubernetes")
            .context("a joining control plane needs the CA that kind copies from the first one")?;
        let mut ips = local_ips();
        ips.extend(
            join.node
                .kubelet_args
                .get("node-ip")
                .and_then(|a| a.parse::<IpAddr>().ok()),
        );
        let sans = pki::apiserver_sans(
            &name,
            &ips,
            &config.control_plane_endpoint,
            &config.cert_sans,
        );
        let serving = ca.serving_cert(&sans)?;
        write_file(&paths.pki("apiserver.crt"), &serving.cert_pem)?;
        write_file(&paths.pki("apiserver.key"), &serving.key_pem)?;
        // kind names the first control plane `<cluster>-control-plane`.
        let target = format!("{}-control-plane:6443", config.cluster_name);
        println!(
            "[control-plane] Enabling kube-apiserver as a forwarder to {target} (no etcd: the API lives on the first control plane)"
        );
        write_file(
            &paths.apiserver_unit(),
            serde_json::to_string(&Unit::Forward {
                port: join.bind_port,
                target,
            })?,
        )?;
        systemctl::start(paths, "kube-apiserver").await?;
        taints = control_plane_taints(&join.node);
    }

    let flags = kubelet_flags(&join.node, &name, &version, taints.clone())?;
    let kubelet_conf = kubeconfig::render(
        &config.cluster_name,
        &format!("https://{endpoint}"),
        &ca_pem,
        "default-auth",
        &Credentials::Token(join.token.clone()),
    );
    // kubeadm waits for the node with the bootstrap credentials; so does this.
    write_file(&paths.kubelet_conf(), &kubelet_conf)?;
    let client =
        kubeconfig::client(&paths.kubelet_conf(), None, Some(Duration::from_secs(5))).await?;
    start_kubelet(paths, config, &flags, &kubelet_conf, &client).await?;
    if join.control_plane {
        mark_control_plane(&client, &name, &taints).await?;
    }
    println!("\nThis node has joined the cluster.");
    Ok(())
}

/// The CA in `kube-public/cluster-info`, fetched without verifying the server (what
/// `unsafeSkipCAVerification` allows), retried until the API answers.
async fn discover_ca(endpoint: &str) -> anyhow::Result<String> {
    let mut config = kube::Config::new(format!("https://{endpoint}").parse()?);
    config.accept_invalid_certs = true;
    config.connect_timeout = Some(Duration::from_secs(5));
    config.read_timeout = Some(Duration::from_secs(5));
    let client = kube::Client::try_from(config)?;
    let config_maps: Api<ConfigMap> = Api::namespaced(client, "kube-public");
    let kubeconfig = crate::wait::until(
        &format!("kube-public/cluster-info at https://{endpoint}"),
        WAIT,
        Duration::from_secs(1),
        || async {
            match config_maps.get_opt("cluster-info").await {
                Ok(Some(cm)) => match cm.data.and_then(|d| d.get("kubeconfig").cloned()) {
                    Some(k) => Ok(Some(k)),
                    None => Err("cluster-info has no kubeconfig".to_string()),
                },
                Ok(None) => Err("no cluster-info ConfigMap yet".into()),
                Err(e) => Err(e.to_string()),
            }
        },
    )
    .await?;
    let (ca, _) = kubeconfig::cluster_of(&kubeconfig)?;
    if ca.is_empty() {
        bail!("cluster-info carries no CA");
    }
    Ok(ca)
}

/// The role's main: parse, run, exit code.
pub async fn main(paths: &Paths, args: &[String]) -> anyhow::Result<()> {
    let command = parse(args)?;
    let config = KubeadmConfig::parse(&read_file(&paths.at(&command.config))?)?;
    match command.phase {
        Phase::Init => init(paths, &config).await,
        Phase::Join => join(paths, &config).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn kinds_command_lines() {
        let c = parse(&args(
            "init --config=/kind/kubeadm.conf --skip-token-print --v=6",
        ))
        .unwrap();
        assert_eq!(
            c,
            Command {
                phase: Phase::Init,
                config: "/kind/kubeadm.conf".into()
            }
        );
        let c = parse(&args("join --config /kind/kubeadm.conf --v=6")).unwrap();
        assert_eq!(
            c,
            Command {
                phase: Phase::Join,
                config: "/kind/kubeadm.conf".into()
            }
        );
    }

    #[test]
    fn other_command_lines_are_refused() {
        for line in [
            "reset -f",
            "init",
            "init --config=x --skip-phases=preflight",
            "token list",
        ] {
            let err = parse(&args(line)).unwrap_err().to_string();
            assert!(err.contains("does not support"), "{line}: {err}");
        }
    }

    #[test]
    fn kubelet_flags_come_from_kubelet_extra_args() {
        let config = KubeadmConfig::parse(crate::config::tests::V1BETA3).unwrap();
        let node = config.init.unwrap().node;
        let flags = kubelet_flags(
            &node,
            "chaos-control-plane",
            "v1.29.14",
            control_plane_taints(&node),
        )
        .unwrap();
        assert_eq!(flags.node_ip, "172.18.0.3");
        assert_eq!(flags.provider_id, "kind://docker/chaos/chaos-control-plane");
        assert!(flags.labels.is_empty());
        assert_eq!(
            flags.taints[0]["key"],
            "node-role.kubernetes.io/control-plane"
        );
    }
}
