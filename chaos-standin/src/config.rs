//! The kubeadm configuration kind writes to `/kind/kubeadm.conf`
//! (`pkg/cluster/internal/kubeadm/config.go`: `ConfigTemplateBetaV3` for Kubernetes before 1.36,
//! `ConfigTemplateBetaV4` from 1.36): ClusterConfiguration, InitConfiguration,
//! JoinConfiguration, KubeletConfiguration and KubeProxyConfiguration, as one multi-document
//! YAML. Every node gets all of them; `kubeadm init` reads the first two, `kubeadm join` the
//! third, both the KubeletConfiguration.
//!
//! Only the fields the stand-in acts on are read. In v1beta4 `extraArgs` and `kubeletExtraArgs`
//! are lists of `{name, value}`, in v1beta3 maps; both read the same here.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;

/// The parsed documents.
#[derive(Clone, Debug, Default)]
pub struct KubeadmConfig {
    /// `kubeadm.k8s.io/v1beta3` or `v1beta4`.
    pub api_version: String,
    /// `ClusterConfiguration.clusterName` (kind: the cluster's name).
    pub cluster_name: String,
    /// `ClusterConfiguration.controlPlaneEndpoint`: `<cluster>-control-plane:6443`, or
    /// `<cluster>-external-load-balancer:6443` with several control planes.
    pub control_plane_endpoint: String,
    /// `ClusterConfiguration.apiServer.certSANs`.
    pub cert_sans: Vec<String>,
    /// `ClusterConfiguration.apiServer.extraArgs`.
    pub api_server_args: BTreeMap<String, String>,
    /// `ClusterConfiguration.controllerManager.extraArgs`.
    pub controller_manager_args: BTreeMap<String, String>,
    /// InitConfiguration, if present.
    pub init: Option<InitConfiguration>,
    /// JoinConfiguration, if present.
    pub join: Option<JoinConfiguration>,
    /// The KubeletConfiguration document as written (`{}` when absent).
    pub kubelet: Value,
}

/// What `kubeadm init` reads of InitConfiguration.
#[derive(Clone, Debug, Default)]
pub struct InitConfiguration {
    /// `nodeRegistration`.
    pub node: NodeRegistration,
    /// `localAPIEndpoint.advertiseAddress`.
    pub advertise_address: Option<String>,
    /// `localAPIEndpoint.bindPort` (default 6443).
    pub bind_port: u16,
    /// `bootstrapTokens[*].token`.
    pub tokens: Vec<String>,
}

/// What `kubeadm join` reads of JoinConfiguration.
#[derive(Clone, Debug, Default)]
pub struct JoinConfiguration {
    /// `nodeRegistration`.
    pub node: NodeRegistration,
    /// `discovery.bootstrapToken.apiServerEndpoint`.
    pub api_server_endpoint: String,
    /// `discovery.bootstrapToken.token`.
    pub token: String,
    /// `discovery.bootstrapToken.unsafeSkipCAVerification`.
    pub unsafe_skip_ca_verification: bool,
    /// `controlPlane` is set: this node joins as a control plane.
    pub control_plane: bool,
    /// `controlPlane.localAPIEndpoint.bindPort` (default 6443).
    pub bind_port: u16,
}

/// `nodeRegistration`, in either document.
#[derive(Clone, Debug, Default)]
pub struct NodeRegistration {
    /// `name` (default: the hostname).
    pub name: Option<String>,
    /// `taints`: None when unset (kubeadm then applies its defaults), Some(empty) for `[]`.
    pub taints: Option<Vec<Value>>,
    /// `kubeletExtraArgs` (kind: `node-ip`, `provider-id`, `node-labels`).
    pub kubelet_args: BTreeMap<String, String>,
}

impl KubeadmConfig {
    /// Parses kind's multi-document kubeadm config.
    pub fn parse(yaml: &str) -> anyhow::Result<Self> {
        let docs: Vec<Value> =
            serde_saphyr::from_multiple(yaml).context("parsing the kubeadm config as YAML")?;
        let mut config = Self {
            kubelet: Value::Object(Default::default()),
            ..Self::default()
        };
        for doc in docs.into_iter().filter(Value::is_object) {
            let api_version = str_of(&doc["apiVersion"]);
            match (
                doc["kind"].as_str().unwrap_or_default(),
                api_version.as_str(),
            ) {
                (
                    kind @ ("ClusterConfiguration" | "InitConfiguration" | "JoinConfiguration"),
                    "kubeadm.k8s.io/v1beta3" | "kubeadm.k8s.io/v1beta4",
                ) => {
                    config.api_version = api_version.clone();
                    match kind {
                        "ClusterConfiguration" => config.read_cluster(&doc)?,
                        "InitConfiguration" => config.init = Some(read_init(&doc)?),
                        _ => config.join = Some(read_join(&doc)?),
                    }
                }
                ("KubeletConfiguration", _) => config.kubelet = doc,
                // kube-proxy does not run in the stand-in: there is no data plane.
                ("KubeProxyConfiguration", _) => {}
                (kind, version) => {
                    return crate::unsupported(format!(
                        "the kubeadm config document {version} {kind}"
                    ));
                }
            }
        }
        if config.api_version.is_empty() {
            bail!("the kubeadm config has no kubeadm.k8s.io/v1beta3 or v1beta4 document");
        }
        Ok(config)
    }

    fn read_cluster(&mut self, doc: &Value) -> anyhow::Result<()> {
        self.cluster_name = str_of(&doc["clusterName"]);
        if self.cluster_name.is_empty() {
            // kubeadm's default.
            self.cluster_name = "kubernetes".into();
        }
        self.control_plane_endpoint = str_of(&doc["controlPlaneEndpoint"]);
        self.cert_sans = doc["apiServer"]["certSANs"]
            .as_array()
            .into_iter()
            .flatten()
            .map(str_of)
            .filter(|s| !s.is_empty())
            .collect();
        self.api_server_args = extra_args(&doc["apiServer"]["extraArgs"])?;
        self.controller_manager_args = extra_args(&doc["controllerManager"]["extraArgs"])?;
        Ok(())
    }

    /// `--node-monitor-grace-period` of kube-controller-manager: its extraArgs, else the
    /// default of the version: 40 s, 50 s from Kubernetes 1.32 (kubernetes/kubernetes#126287,
    /// "the default node-monitor-grace-period is now 50s", 1.32 release notes).
    pub fn node_monitor_grace(&self, version: &str) -> anyhow::Result<Duration> {
        match self
            .controller_manager_args
            .get("node-monitor-grace-period")
        {
            Some(value) => parse_duration(value),
            None if minor_of(version) >= 32 => Ok(Duration::from_secs(50)),
            None => Ok(Duration::from_secs(40)),
        }
    }

    /// The DefaultTolerationSeconds admission plugin's seconds: kube-apiserver's
    /// `--default-not-ready-toleration-seconds` (default 300). The stand-in's simulator has one
    /// number for both, so `--default-unreachable-toleration-seconds` must agree with it.
    pub fn default_toleration_seconds(&self) -> anyhow::Result<u32> {
        let get = |name: &str| -> anyhow::Result<u32> {
            match self.api_server_args.get(name) {
                Some(v) => v
                    .parse()
                    .with_context(|| format!("apiServer extraArgs {name}={v:?} is not a number")),
                None => Ok(300),
            }
        };
        let not_ready = get("default-not-ready-toleration-seconds")?;
        let unreachable = get("default-unreachable-toleration-seconds")?;
        if not_ready != unreachable {
            return crate::unsupported(format!(
                "different not-ready ({not_ready}) and unreachable ({unreachable}) toleration seconds"
            ));
        }
        Ok(not_ready)
    }
}

fn read_node(doc: &Value) -> anyhow::Result<NodeRegistration> {
    let node = &doc["nodeRegistration"];
    Ok(NodeRegistration {
        name: node["name"].as_str().map(str::to_string),
        // `taints: null` reads as unset, like an absent field.
        taints: node["taints"].as_array().cloned(),
        kubelet_args: extra_args(&node["kubeletExtraArgs"])?,
    })
}

fn read_init(doc: &Value) -> anyhow::Result<InitConfiguration> {
    Ok(InitConfiguration {
        node: read_node(doc)?,
        advertise_address: doc["localAPIEndpoint"]["advertiseAddress"]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        bind_port: port_of(&doc["localAPIEndpoint"]["bindPort"])?,
        tokens: doc["bootstrapTokens"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| str_of(&t["token"]))
            .collect(),
    })
}

fn read_join(doc: &Value) -> anyhow::Result<JoinConfiguration> {
    let token = &doc["discovery"]["bootstrapToken"];
    if doc["discovery"]["file"].is_object() {
        return crate::unsupported("kubeadm join with discovery.file");
    }
    Ok(JoinConfiguration {
        node: read_node(doc)?,
        api_server_endpoint: str_of(&token["apiServerEndpoint"]),
        token: str_of(&token["token"]),
        unsafe_skip_ca_verification: token["unsafeSkipCAVerification"] == true,
        control_plane: doc["controlPlane"].is_object(),
        bind_port: port_of(&doc["controlPlane"]["localAPIEndpoint"]["bindPort"])?,
    })
}

/// `extraArgs`: a map (v1beta3) or a list of `{name, value}` (v1beta4).
pub fn extra_args(value: &Value) -> anyhow::Result<BTreeMap<String, String>> {
    match value {
        Value::Null => Ok(BTreeMap::new()),
        Value::Object(map) => Ok(map.iter().map(|(k, v)| (k.clone(), str_of(v))).collect()),
        Value::Array(list) => list
            .iter()
            .map(|arg| match arg["name"].as_str() {
                Some(name) => Ok((name.to_string(), str_of(&arg["value"]))),
                None => bail!("an extraArgs entry without a name: {arg}"),
            })
            .collect(),
        other => bail!("extraArgs must be a map or a list, not {other}"),
    }
}

/// A scalar as a string (`"true"`, `6443` and `true` all read as text).
fn str_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn port_of(value: &Value) -> anyhow::Result<u16> {
    match value {
        Value::Null => Ok(6443),
        v => str_of(v)
            .parse()
            .with_context(|| format!("bindPort {v} is not a port")),
    }
}

/// The minor version of `v1.29.14` (29); 0 when unreadable.
pub fn minor_of(version: &str) -> u32 {
    version
        .trim_start_matches('v')
        .split('.')
        .nth(1)
        .and_then(|m| m.parse().ok())
        .unwrap_or(0)
}

/// A Go duration as kube components take it on the command line: `40s`, `1m30s`, `500ms`.
pub fn parse_duration(text: &str) -> anyhow::Result<Duration> {
    let mut total = Duration::ZERO;
    let mut rest = text.trim();
    if rest.is_empty() {
        bail!("an empty duration");
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .with_context(|| format!("duration {text:?} lacks a unit"))?;
        let number: f64 = rest[..digits]
            .parse()
            .with_context(|| format!("duration {text:?} is not a Go duration"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            unit => bail!("duration {text:?} has an unknown unit {unit:?}"),
        };
        total += Duration::from_secs_f64(number * seconds);
        rest = &rest[unit_len..];
    }
    Ok(total)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// kind's ConfigTemplateBetaV3, filled in as for a 1.29 cluster with one worker.
    pub(crate) const V1BETA3: &str = r#"# config generated by kind
apiVersion: kubeadm.k8s.io/v1beta3
kind: ClusterConfiguration
metadata:
  name: config
kubernetesVersion: v1.29.14
clusterName: "chaos"
controlPlaneEndpoint: "chaos-control-plane:6443"
apiServer:
  certSANs: [localhost, "127.0.0.1"]
  extraArgs:
    "runtime-config": ""
controllerManager:
  extraArgs:
    enable-hostpath-provisioner: "true"
    node-monitor-grace-period: "20s"
    # configure ipv6 default addresses for IPv6 clusters
    
scheduler:
  extraArgs:
    # configure ipv6 default addresses for IPv6 clusters
    
networking:
  podSubnet: "10.244.0.0/16"
  serviceSubnet: "10.96.0.0/16"
---
apiVersion: kubeadm.k8s.io/v1beta3
kind: InitConfiguration
metadata:
  name: config
bootstrapTokens:
- token: "abcdef.0123456789abcdef"
localAPIEndpoint:
  advertiseAddress: "172.18.0.3"
  bindPort: 6443
nodeRegistration:
  criSocket: "unix:///run/containerd/containerd.sock"
  kubeletExtraArgs:
    node-ip: "172.18.0.3"
    provider-id: "kind://docker/chaos/chaos-control-plane"
    node-labels: ""
---
# no-op entry that exists solely so it can be patched
apiVersion: kubeadm.k8s.io/v1beta3
kind: JoinConfiguration
metadata:
  name: config
nodeRegistration:
  criSocket: "unix:///run/containerd/containerd.sock"
  kubeletExtraArgs:
    node-ip: "172.18.0.3"
    provider-id: "kind://docker/chaos/chaos-control-plane"
    node-labels: ""
discovery:
  bootstrapToken:
    apiServerEndpoint: "chaos-control-plane:6443"
    token: "abcdef.0123456789abcdef"
    unsafeSkipCAVerification: true
---
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
metadata:
  name: config
cgroupDriver: systemd
cgroupRoot: /kubelet
failSwapOn: false
imageGCHighThresholdPercent: 100
evictionHard:
  nodefs.available: "0%"
  nodefs.inodesFree: "0%"
  imagefs.available: "0%"

---
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
metadata:
  name: config
mode: "iptables"
iptables:
  minSyncPeriod: 1s
conntrack:
  maxPerCore: 0
"#;

    /// kind's ConfigTemplateBetaV4, for a worker of an HA 1.36 cluster.
    const V1BETA4: &str = r#"# config generated by kind
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
metadata:
  name: config
kubernetesVersion: v1.36.0
clusterName: "ha"
controlPlaneEndpoint: "ha-external-load-balancer:6443"
apiServer:
  certSANs: [localhost, "127.0.0.1"]
  extraArgs:
    - name: "runtime-config"
      value: ""
    - name: "default-not-ready-toleration-seconds"
      value: "30"
    - name: "default-unreachable-toleration-seconds"
      value: "30"
controllerManager:
  extraArgs:
    - name: "enable-hostpath-provisioner"
      value: "true"
scheduler:
  extraArgs:
networking:
  podSubnet: "10.244.0.0/16"
  serviceSubnet: "10.96.0.0/16"
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
metadata:
  name: config
bootstrapTokens:
- token: "abcdef.0123456789abcdef"
localAPIEndpoint:
  advertiseAddress: "172.18.0.5"
  bindPort: 6443
nodeRegistration:
  criSocket: "unix:///run/containerd/containerd.sock"
  kubeletExtraArgs:
    - name: "node-ip"
      value: "172.18.0.5"
    - name: "provider-id"
      value: "kind://docker/ha/ha-control-plane2"
    - name: "node-labels"
      value: "tier=edge,zone=a"
---
# no-op entry that exists solely so it can be patched
apiVersion: kubeadm.k8s.io/v1beta4
kind: JoinConfiguration
metadata:
  name: config
controlPlane:
  localAPIEndpoint:
    advertiseAddress: "172.18.0.5"
    bindPort: 6443
nodeRegistration:
  criSocket: "unix:///run/containerd/containerd.sock"
  taints: []
  kubeletExtraArgs:
    - name: "node-ip"
      value: "172.18.0.5"
    - name: "provider-id"
      value: "kind://docker/ha/ha-control-plane2"
    - name: "node-labels"
      value: "tier=edge,zone=a"
discovery:
  bootstrapToken:
    apiServerEndpoint: "ha-external-load-balancer:6443"
    token: "abcdef.0123456789abcdef"
    unsafeSkipCAVerification: true
---
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
metadata:
  name: config
cgroupDriver: systemd
cgroupRoot: /kubelet
failSwapOn: false
nodeStatusUpdateFrequency: 4s
"#;

    #[test]
    fn v1beta3_maps_of_extra_args() {
        let c = KubeadmConfig::parse(V1BETA3).unwrap();
        assert_eq!(c.api_version, "kubeadm.k8s.io/v1beta3");
        assert_eq!(c.cluster_name, "chaos");
        assert_eq!(c.control_plane_endpoint, "chaos-control-plane:6443");
        assert_eq!(c.cert_sans, ["localhost", "127.0.0.1"]);
        assert_eq!(
            c.node_monitor_grace("v1.29.14").unwrap(),
            Duration::from_secs(20)
        );
        assert_eq!(c.default_toleration_seconds().unwrap(), 300);
        let init = c.init.unwrap();
        assert_eq!(init.advertise_address.as_deref(), Some("172.18.0.3"));
        assert_eq!(init.bind_port, 6443);
        assert_eq!(init.tokens, ["abcdef.0123456789abcdef"]);
        assert_eq!(init.node.kubelet_args["node-ip"], "172.18.0.3");
        assert_eq!(init.node.kubelet_args["node-labels"], "");
        assert!(init.node.taints.is_none(), "kind leaves taints unset");
        let join = c.join.unwrap();
        assert!(!join.control_plane);
        assert!(join.unsafe_skip_ca_verification);
        assert_eq!(join.api_server_endpoint, "chaos-control-plane:6443");
        assert_eq!(c.kubelet["cgroupRoot"], "/kubelet");
    }

    #[test]
    fn v1beta4_lists_of_extra_args() {
        let c = KubeadmConfig::parse(V1BETA4).unwrap();
        assert_eq!(c.api_version, "kubeadm.k8s.io/v1beta4");
        assert_eq!(c.api_server_args["runtime-config"], "");
        assert_eq!(
            c.controller_manager_args["enable-hostpath-provisioner"],
            "true"
        );
        assert_eq!(c.default_toleration_seconds().unwrap(), 30);
        // No extraArg: the default of the version, 50 s from 1.32.
        assert_eq!(
            c.node_monitor_grace("v1.36.0").unwrap(),
            Duration::from_secs(50)
        );
        assert_eq!(
            c.node_monitor_grace("v1.31.4").unwrap(),
            Duration::from_secs(40)
        );
        let join = c.join.unwrap();
        assert!(join.control_plane);
        assert_eq!(join.api_server_endpoint, "ha-external-load-balancer:6443");
        assert_eq!(join.node.kubelet_args["node-labels"], "tier=edge,zone=a");
        assert_eq!(
            join.node.kubelet_args["provider-id"],
            "kind://docker/ha/ha-control-plane2"
        );
        assert_eq!(join.node.taints, Some(vec![]));
        assert_eq!(c.kubelet["nodeStatusUpdateFrequency"], "4s");
    }

    #[test]
    fn unknown_documents_are_refused() {
        let err =
            KubeadmConfig::parse("apiVersion: kubeadm.k8s.io/v1beta2\nkind: InitConfiguration\n")
                .unwrap_err();
        assert!(err.to_string().contains("does not support"), "{err}");
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("40s").unwrap(), Duration::from_secs(40));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert!(parse_duration("40").is_err());
    }
}
