//! The kind cluster config (`kind.x-k8s.io/v1alpha4`) for a topology.
//!
//! One node entry per topology node, control planes first, each with its own `image`: kind's
//! `--image` would give every node the same one, and mixed versions are the point. With fast
//! failure detection on, kubeadm patches make a dead node show within seconds instead of minutes.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, ensure};
use chaos_topology::{Role, Topology, Version};
use serde::{Deserialize, Serialize};
use serde_saphyr::LitString;

use crate::provider::kind::images::{KindRelease, NodeImage};

/// The first kind release that writes kubeadm v1beta4 (for nodes of Kubernetes 1.36 and later).
pub(crate) const FIRST_V1BETA4_RELEASE: KindRelease = KindRelease::new(0, 32, 0);

/// The longest cluster name whose containers' names are all valid hostnames (see
/// [`check_cluster_name`]).
pub const MAX_CLUSTER_NAME_LEN: usize = 40;

/// What [`render`] adds to kind's defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigOptions {
    /// Notice a dead node within ~20s and evict its pods 30s later. Off keeps Kubernetes'
    /// defaults: NotReady after 40s (50s from 1.32), eviction 300s after that.
    pub fast_failure_detection: bool,
}

impl Default for ConfigOptions {
    fn default() -> Self {
        ConfigOptions {
            fast_failure_detection: true,
        }
    }
}

/// kind's `Cluster` (`pkg/apis/config/v1alpha4/types.go`), the fields we set.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Cluster {
    kind: String,
    api_version: String,
    name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    kubeadm_config_patches: Vec<LitString>,
    nodes: Vec<Node>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Node {
    role: NodeRole,
    image: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum NodeRole {
    ControlPlane,
    Worker,
}

impl From<Role> for NodeRole {
    fn from(role: Role) -> Self {
        match role {
            Role::ControlPlane => NodeRole::ControlPlane,
            Role::Worker => NodeRole::Worker,
        }
    }
}

/// The kind config for `topology`, named `cluster_name`; `images` has one image per node, in
/// the order of [`Topology::nodes`].
pub fn render(
    cluster_name: &str,
    topology: &Topology,
    images: &[NodeImage],
    options: &ConfigOptions,
    installed: KindRelease,
) -> anyhow::Result<String> {
    check_cluster_name(cluster_name).map_err(anyhow::Error::msg)?;
    ensure!(
        images.len() == topology.nodes().len(),
        "{} node images for the {} nodes of {topology}; give one per node",
        images.len(),
        topology.nodes().len()
    );
    for (node, image) in topology.nodes().iter().zip(images) {
        let minor = image.kubelet_version.parse::<Version>().map(|v| v.minor);
        ensure!(
            minor == Ok(node.version.minor),
            "image {} runs Kubernetes {}, not {} as the {} node it was given for",
            image.image,
            image.kubelet_version,
            node.version,
            node.role
        );
    }
    let apis: BTreeSet<KubeadmApi> = topology
        .nodes()
        .iter()
        .map(|node| kubeadm_api(installed, node.version.minor))
        .collect();
    let kubeadm_config_patches = match options.fast_failure_detection {
        true => fast_failure_detection_patches(&apis, topology.masters() > 1)?,
        false => Vec::new(),
    };
    let cluster = Cluster {
        kind: "Cluster".into(),
        api_version: "kind.x-k8s.io/v1alpha4".into(),
        name: cluster_name.into(),
        kubeadm_config_patches,
        nodes: topology
            .nodes()
            .iter()
            .zip(images)
            .map(|(node, image)| Node {
                role: node.role.into(),
                image: image.image.clone(),
            })
            .collect(),
    };
    let yaml = to_yaml(&cluster)?;
    Ok(format!(
        "# kind config for a {topology} cluster, for kind {installed}\n{yaml}"
    ))
}

/// Whether kind accepts `name` for a cluster and every container it names after it gets a valid
/// hostname.
pub fn check_cluster_name(name: &str) -> Result<(), String> {
    let allowed = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-';
    if name.is_empty() {
        return Err("the cluster name is empty; use e.g. `chaos`".into());
    }
    if !name.bytes().all(allowed) || !name.as_bytes()[0].is_ascii_alphanumeric() {
        return Err(format!(
            "cluster name `{name}` is not valid for kind: use lowercase letters, digits, `.` and \
             `-`, starting with a letter or digit"
        ));
    }
    // The longest container name is `<name>-external-load-balancer` (23 more characters), the
    // load balancer of clusters with several control planes; kind makes every container name its
    // hostname, and a hostname has at most 63.
    if name.len() > MAX_CLUSTER_NAME_LEN {
        return Err(format!(
            "cluster name `{name}` has {} characters; at most {MAX_CLUSTER_NAME_LEN} are allowed, \
             because kind names containers `<name>-control-plane2`, `<name>-external-load-balancer` \
             and uses those names as hostnames, which may have at most 63 characters",
            name.len()
        ));
    }
    Ok(())
}

/// The kubeadm config API kind writes for a node: kind's `Config()`
/// (`pkg/cluster/internal/kubeadm/config.go`) picks it by the node's own Kubernetes version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum KubeadmApi {
    V1beta2,
    V1beta3,
    V1beta4,
}

pub(crate) fn kubeadm_api(installed: KindRelease, minor: u32) -> KubeadmApi {
    match minor {
        ..23 => KubeadmApi::V1beta2,
        36.. if installed >= FIRST_V1BETA4_RELEASE => KubeadmApi::V1beta4,
        _ => KubeadmApi::V1beta3,
    }
}

impl KubeadmApi {
    fn api_version(self) -> &'static str {
        match self {
            KubeadmApi::V1beta2 => "kubeadm.k8s.io/v1beta2",
            KubeadmApi::V1beta3 => "kubeadm.k8s.io/v1beta3",
            KubeadmApi::V1beta4 => "kubeadm.k8s.io/v1beta4",
        }
    }
}

/// Controller manager with one control plane: check nodes every 2s, and mark one NotReady 16s
/// after its last lease renewal (default 40s, 50s from 1.32).
const CONTROLLER_MANAGER_ARGS: &[(&str, &str)] = &[
    ("node-monitor-grace-period", "16s"),
    ("node-monitor-period", "2s"),
];

/// Controller manager with several control planes: the grace period must exceed the kubelet's
/// HTTP/2 health check, ping timeout plus read-idle timeout (15 s + 30 s), the time a kubelet
/// takes to give up a connection to an API server that went silent
/// (kube-controller-manager `--node-monitor-grace-period` help; Kubernetes 1.32 raised the
/// default from 40 s to 50 s for it). In HA a fault on one control plane silences the
/// connections of the kubelets the load balancer sent there: with 16 s, healthy nodes would be
/// marked NotReady. One control plane down is the whole API down, so 16 s is safe there.
const HA_CONTROLLER_MANAGER_ARGS: &[(&str, &str)] = &[
    ("node-monitor-grace-period", "50s"),
    ("node-monitor-period", "2s"),
];

/// API server: how long every pod tolerates a NotReady or unreachable node before it is evicted
/// (default 300s).
const API_SERVER_ARGS: &[(&str, &str)] = &[
    ("default-not-ready-toleration-seconds", "30"),
    ("default-unreachable-toleration-seconds", "30"),
];

/// Kubelet: post node status every 4s and renew the node lease every 4s (a quarter of its
/// duration), so the 16s grace period is four missed renewals; much less flaps on a busy machine.
const NODE_STATUS_UPDATE_FREQUENCY: &str = "4s";
const NODE_LEASE_DURATION_SECONDS: u32 = 16;

/// A merge patch of kubeadm's `ClusterConfiguration`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ClusterConfigurationPatch {
    #[serde(skip_serializing_if = "Option::is_none")]
    api_version: Option<&'static str>,
    kind: &'static str,
    controller_manager: ControlPlaneComponent,
    api_server: ControlPlaneComponent,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ControlPlaneComponent {
    extra_args: ExtraArgs,
}

/// A component's extra flags: a map up to kubeadm v1beta3, a list of `{name, value}` in v1beta4.
#[derive(Serialize)]
#[serde(untagged)]
enum ExtraArgs {
    Map(BTreeMap<&'static str, &'static str>),
    List(Vec<Arg>),
}

#[derive(Serialize)]
struct Arg {
    name: &'static str,
    value: &'static str,
}

impl ExtraArgs {
    fn new(api: KubeadmApi, args: &[(&'static str, &'static str)]) -> Self {
        match api {
            KubeadmApi::V1beta2 | KubeadmApi::V1beta3 => {
                ExtraArgs::Map(args.iter().copied().collect())
            }
            KubeadmApi::V1beta4 => ExtraArgs::List(
                args.iter()
                    .map(|&(name, value)| Arg { name, value })
                    .collect(),
            ),
        }
    }
}

/// A merge patch of the `KubeletConfiguration` (kubeadm reads it from the first node and applies
/// it to all).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct KubeletConfigurationPatch {
    kind: &'static str,
    node_status_update_frequency: &'static str,
    node_lease_duration_seconds: u32,
}

/// The patches for fast failure detection, in the form the kubeadm of each node reads; `apis` are
/// the kubeadm APIs kind writes for the cluster's nodes.
///
/// kind writes kubeadm v1beta3 for every node (v1beta2 below 1.23), except that kind v0.32.0 and
/// later write v1beta4 for nodes of 1.36 and later, where `extraArgs` is a list of `{name, value}`.
/// So:
/// - no node gets v1beta4 (kind before v0.32, or every node older than 1.36): one
///   `ClusterConfiguration` patch without `apiVersion`, `extraArgs` as a map, the form v1beta2 and
///   v1beta3 share. With kind before v0.32 this covers 1.36 nodes too: they get v1beta3, which
///   kubeadm 1.36 still reads (for 1.37, `images::resolve` refuses such a kind).
/// - some node gets v1beta4 (kind v0.32.0 or later, a node of 1.36 or later): one patch per API
///   the nodes get, each with its `apiVersion` and in that API's form. kind would also convert a
///   map patch without `apiVersion` for v1beta4 (`pkg/internal/patch/kubeadm_merge.go`, since
///   v0.32.0), but a versioned patch says what each kubeadm reads, and a later API (v1beta5) gets
///   no patch rather than one in the wrong form. kind merges a v1beta4 list into its own
///   `extraArgs` by name, so `runtime-config` and the like stay.
///
/// The `KubeletConfiguration` is `kubelet.config.k8s.io/v1beta1` whatever the kubeadm API, so its
/// patch has no `apiVersion`.
fn fast_failure_detection_patches(
    apis: &BTreeSet<KubeadmApi>,
    ha: bool,
) -> anyhow::Result<Vec<LitString>> {
    let controller_manager_args = match ha {
        true => HA_CONTROLLER_MANAGER_ARGS,
        false => CONTROLLER_MANAGER_ARGS,
    };
    let cluster_configuration =
        |api: KubeadmApi, api_version: Option<&'static str>| ClusterConfigurationPatch {
            api_version,
            kind: "ClusterConfiguration",
            controller_manager: ControlPlaneComponent {
                extra_args: ExtraArgs::new(api, controller_manager_args),
            },
            api_server: ControlPlaneComponent {
                extra_args: ExtraArgs::new(api, API_SERVER_ARGS),
            },
        };
    let mut patches = Vec::new();
    if apis.contains(&KubeadmApi::V1beta4) {
        for &api in apis {
            patches.push(to_yaml(&cluster_configuration(
                api,
                Some(api.api_version()),
            ))?);
        }
    } else {
        patches.push(to_yaml(&cluster_configuration(KubeadmApi::V1beta3, None))?);
    }
    patches.push(to_yaml(&KubeletConfigurationPatch {
        kind: "KubeletConfiguration",
        node_status_update_frequency: NODE_STATUS_UPDATE_FREQUENCY,
        node_lease_duration_seconds: NODE_LEASE_DURATION_SECONDS,
    })?);
    Ok(patches.into_iter().map(LitString).collect())
}

/// YAML as a person would write it: plain scalars, block scalars only where asked for (the
/// patches), not folded ones for long image references.
fn to_yaml<T: Serialize>(value: &T) -> anyhow::Result<String> {
    let options = serde_saphyr::ser_options! { prefer_block_scalars: false };
    serde_saphyr::to_string_with_options(value, options)
        .context("could not write the kind config as YAML")
}

#[cfg(test)]
mod tests {
    use chaos_topology::TopologySpec;
    use serde_json::Value;

    use super::*;
    use crate::provider::kind::images::{self, ImagePins};

    const V0_33: KindRelease = KindRelease::new(0, 33, 0);
    const V0_31: KindRelease = KindRelease::new(0, 31, 0);

    fn topology(masters: u32, workers: u32, k8s: &str, worker_versions: &[&str]) -> Topology {
        TopologySpec {
            masters,
            workers,
            k8s: k8s.parse().unwrap(),
            master_versions: vec![],
            worker_versions: worker_versions.iter().map(|v| v.parse().unwrap()).collect(),
        }
        .build()
        .unwrap()
    }

    fn images_for(topology: &Topology, installed: KindRelease) -> Vec<NodeImage> {
        topology
            .nodes()
            .iter()
            .map(|node| images::resolve(node.version, installed, &ImagePins::default()).unwrap())
            .collect()
    }

    fn render_default(topology: &Topology, installed: KindRelease) -> String {
        let images = images_for(topology, installed);
        render(
            "chaos",
            topology,
            &images,
            &ConfigOptions::default(),
            installed,
        )
        .unwrap()
    }

    /// The config's patches, each parsed.
    fn parse_patches(yaml: &str) -> Vec<Value> {
        let cluster: Cluster = serde_saphyr::from_str(yaml).unwrap();
        cluster
            .kubeadm_config_patches
            .iter()
            .map(|patch| serde_saphyr::from_str(patch).unwrap())
            .collect()
    }

    fn find<'a>(patches: &'a [Value], kind: &str, api_version: Option<&str>) -> &'a Value {
        patches
            .iter()
            .find(|p| {
                p["kind"] == kind && p.get("apiVersion").and_then(Value::as_str) == api_version
            })
            .unwrap_or_else(|| panic!("no {kind} patch for {api_version:?} in {patches:#?}"))
    }

    #[test]
    fn one_node_entry_per_node_with_its_own_image() {
        let t = topology(3, 3, "1.29", &["1.28"]);
        let yaml = render_default(&t, V0_33);
        let cluster: Cluster = serde_saphyr::from_str(&yaml).unwrap();
        assert_eq!(
            (cluster.kind.as_str(), cluster.api_version.as_str()),
            ("Cluster", "kind.x-k8s.io/v1alpha4")
        );
        assert_eq!(cluster.name, "chaos");
        let nodes: Vec<(NodeRole, &str)> = cluster
            .nodes
            .iter()
            .map(|n| (n.role, n.image.split('@').next().unwrap()))
            .collect();
        let (cp, worker) = (NodeRole::ControlPlane, NodeRole::Worker);
        let (v129, v128) = ("kindest/node:v1.29.14", "kindest/node:v1.28.15");
        assert_eq!(
            nodes,
            [
                (cp, v129),
                (cp, v129),
                (cp, v129),
                (worker, v128),
                (worker, v128),
                (worker, v128)
            ]
        );
        assert!(cluster.nodes.iter().all(|n| n.image.contains("@sha256:")));
        // The same through a generic YAML reader, in kind's field names.
        let value: Value = serde_saphyr::from_str(&yaml).unwrap();
        assert_eq!(value["nodes"][0]["role"], "control-plane");
        assert_eq!(value["nodes"][5]["role"], "worker");
        assert_eq!(value["kubeadmConfigPatches"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn ha_clusters_get_a_grace_period_above_the_kubelets_http2_health_check() {
        let grace = |masters| {
            let yaml = render_default(&topology(masters, 1, "1.35", &[]), V0_33);
            let patches = parse_patches(&yaml);
            let cc = find(&patches, "ClusterConfiguration", None);
            cc["controllerManager"]["extraArgs"]["node-monitor-grace-period"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        assert_eq!(grace(1), "16s");
        assert_eq!(grace(3), "50s", "more than 15 s + 30 s");
    }

    #[test]
    fn without_v1beta4_nodes_one_unversioned_map_patch() {
        // kind v0.33, every node below 1.36: v1beta3 everywhere.
        let yaml = render_default(&topology(1, 2, "1.35", &["1.34"]), V0_33);
        let patches = parse_patches(&yaml);
        assert_eq!(patches.len(), 2, "{yaml}");
        let cc = find(&patches, "ClusterConfiguration", None);
        assert_eq!(
            cc["controllerManager"]["extraArgs"]["node-monitor-grace-period"],
            "16s"
        );
        assert_eq!(
            cc["controllerManager"]["extraArgs"]["node-monitor-period"],
            "2s"
        );
        // Strings, not numbers: kubeadm's extraArgs are map[string]string.
        assert_eq!(
            cc["apiServer"]["extraArgs"]["default-not-ready-toleration-seconds"],
            "30"
        );
        assert_eq!(
            cc["apiServer"]["extraArgs"]["default-unreachable-toleration-seconds"],
            "30"
        );
        let kubelet = find(&patches, "KubeletConfiguration", None);
        assert_eq!(kubelet["nodeStatusUpdateFrequency"], "4s");
        assert_eq!(kubelet["nodeLeaseDurationSeconds"], 16);

        // kind v0.31 writes v1beta3 even for a 1.36 node: still the map form.
        let yaml = render_default(&topology(1, 1, "1.36", &["1.35"]), V0_31);
        let patches = parse_patches(&yaml);
        assert_eq!(patches.len(), 2, "{yaml}");
        assert!(find(&patches, "ClusterConfiguration", None)["apiServer"]["extraArgs"].is_object());
    }

    #[test]
    fn with_v1beta4_nodes_one_patch_per_kubeadm_api() {
        // kind v0.33, a 1.36 control plane and 1.35 workers: v1beta4 and v1beta3.
        let yaml = render_default(&topology(1, 2, "1.36", &["1.35"]), V0_33);
        let patches = parse_patches(&yaml);
        assert_eq!(patches.len(), 3, "{yaml}");
        let v1beta3 = find(
            &patches,
            "ClusterConfiguration",
            Some("kubeadm.k8s.io/v1beta3"),
        );
        assert_eq!(
            v1beta3["controllerManager"]["extraArgs"]["node-monitor-grace-period"],
            "16s"
        );
        let v1beta4 = find(
            &patches,
            "ClusterConfiguration",
            Some("kubeadm.k8s.io/v1beta4"),
        );
        let args = |component: &str| -> Vec<(String, String)> {
            v1beta4[component]["extraArgs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| {
                    (
                        a["name"].as_str().unwrap().into(),
                        a["value"].as_str().unwrap().into(),
                    )
                })
                .collect()
        };
        let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
            list.iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect()
        };
        assert_eq!(args("controllerManager"), pairs(CONTROLLER_MANAGER_ARGS));
        assert_eq!(args("apiServer"), pairs(API_SERVER_ARGS));
        find(&patches, "KubeletConfiguration", None);

        // Every node on v1beta4: only the v1beta4 patch.
        let patches = parse_patches(&render_default(&topology(1, 1, "1.37", &[]), V0_33));
        assert_eq!(patches.len(), 2);
        find(
            &patches,
            "ClusterConfiguration",
            Some("kubeadm.k8s.io/v1beta4"),
        );
    }

    #[test]
    fn default_timings_mean_no_patches() {
        let t = topology(1, 1, "1.35", &[]);
        let images = images_for(&t, V0_33);
        let options = ConfigOptions {
            fast_failure_detection: false,
        };
        let yaml = render("chaos", &t, &images, &options, V0_33).unwrap();
        assert!(!yaml.contains("kubeadmConfigPatches"), "{yaml}");
        assert!(parse_patches(&yaml).is_empty());
    }

    #[test]
    fn kind_picks_the_kubeadm_api_by_node_version_and_release() {
        assert_eq!(kubeadm_api(V0_33, 22), KubeadmApi::V1beta2);
        assert_eq!(kubeadm_api(V0_33, 35), KubeadmApi::V1beta3);
        assert_eq!(kubeadm_api(V0_33, 36), KubeadmApi::V1beta4);
        assert_eq!(
            kubeadm_api(KindRelease::new(0, 32, 0), 36),
            KubeadmApi::V1beta4
        );
        assert_eq!(kubeadm_api(V0_31, 36), KubeadmApi::V1beta3);
    }

    #[test]
    fn render_rejects_mismatched_images() {
        let t = topology(1, 1, "1.29", &["1.28"]);
        let mut images = images_for(&t, V0_33);
        images.swap(0, 1);
        let err = render("chaos", &t, &images, &ConfigOptions::default(), V0_33).unwrap_err();
        assert!(
            err.to_string()
                .contains("runs Kubernetes v1.28.15, not 1.29"),
            "{err}"
        );
        let err = render("chaos", &t, &images[..1], &ConfigOptions::default(), V0_33).unwrap_err();
        assert!(
            err.to_string().contains("1 node images for the 2 nodes"),
            "{err}"
        );
    }

    #[test]
    fn cluster_names_follow_kind_and_hostname_limits() {
        for good in [
            "chaos",
            "a",
            "c1.29-w1.28",
            &"x".repeat(MAX_CLUSTER_NAME_LEN),
        ] {
            assert_eq!(check_cluster_name(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "Chaos",
            "chaos_1",
            "chaos test",
            "-chaos",
            ".chaos",
            "3m3w,1.28",
        ] {
            assert!(check_cluster_name(bad).is_err(), "{bad}");
        }
        let err = check_cluster_name(&"x".repeat(MAX_CLUSTER_NAME_LEN + 1)).unwrap_err();
        assert!(err.contains("at most 40 are allowed"), "{err}");
        assert!(err.contains("63"), "{err}");
        // The limit keeps the longest container name a valid hostname.
        let longest = format!(
            "{}-external-load-balancer",
            "x".repeat(MAX_CLUSTER_NAME_LEN)
        );
        assert!(longest.len() <= 63);
        let t = topology(1, 1, "1.35", &[]);
        let images = images_for(&t, V0_33);
        assert!(render("Bad", &t, &images, &ConfigOptions::default(), V0_33).is_err());
    }
}
