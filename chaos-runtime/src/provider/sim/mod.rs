//! The sim provider: each cluster is an in-memory Kubernetes API ([`chaos_sim::ApiServer`]) with
//! a Node object per node of the topology, reached through a real `kube::Client`, and a simulated
//! control plane whose kubelets take the node faults ([`nodes`]).

mod nodes;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chaos_topology::{Role, Topology};
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{
    Node as NodeObject, NodeAddress, NodeCondition, NodeSpec, NodeStatus, NodeSystemInfo, Taint,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;

use super::{Provider, Provisioned, Registration};
use crate::node::NodeInfo;
use chaos_sim::ApiServer;
use chaos_sim::control::{ControlPlane, Timings};
use nodes::SimNodes;

pub(super) const REGISTRATION: Registration = Registration {
    name: "sim",
    description: "in-memory Kubernetes API",
    banner: Some(BANNER),
    detect: |settings, _topologies| {
        Box::pin(async move {
            if settings.reuse {
                crate::harness::progress::say(
                    "CHAOS_REUSE=1 has no effect on the sim: its clusters end with the process",
                );
            }
            let mut provider =
                SimProvider::new(settings.sim_provision_delay, settings.sim_timings.clone());
            provider.teardown_delay = settings.sim_teardown_delay;
            Ok(Box::new(provider) as Box<dyn Provider>)
        })
    },
};

/// What a green run on the sim does not prove, said whenever a run is on it.
pub(crate) const BANNER: &str = "no container runs here, so images, probes and the app itself are \
     not exercised; CHAOS_PROVIDER=kind runs them";

pub(crate) struct SimProvider {
    /// Stands in for kind's creation time, so that scheduling behaves as it would on kind.
    provision_delay: Duration,
    /// Stands in for `kind delete cluster`'s time (none by default).
    teardown_delay: Duration,
    timings: Timings,
}

impl SimProvider {
    pub fn new(provision_delay: Duration, timings: Timings) -> Self {
        SimProvider {
            provision_delay,
            teardown_delay: Duration::ZERO,
            timings,
        }
    }
}

impl Provider for SimProvider {
    fn name(&self) -> &'static str {
        "sim"
    }

    fn memory_per_cluster(&self, topology: &Topology) -> u64 {
        // A few objects per node: tiny, but bounded so that CHAOS_MAX_CLUSTERS still means something.
        (16 + 4 * topology.nodes().len() as u64) << 20
    }

    fn health_timeout(&self) -> Duration {
        // The sim answers at once; a node missing now will still be missing later.
        Duration::from_secs(3)
    }

    fn create<'a>(
        &'a self,
        name: &'a str,
        topology: &'a Topology,
    ) -> BoxFuture<'a, anyhow::Result<Provisioned>> {
        Box::pin(async move {
            tokio::time::sleep(self.provision_delay).await;
            let server = ApiServer::new(&topology.control_plane_version().kubelet_version());
            // The names kind would give, so that a suite reads the same on both.
            let names = super::kind::node_names(topology, name);
            let mut nodes = Vec::new();
            for (index, (spec, node_name)) in topology.nodes().iter().zip(names).enumerate() {
                let node = NodeInfo {
                    name: node_name,
                    role: spec.role,
                    version: spec.version,
                    kubelet_version: spec.version.kubelet_version(),
                };
                server
                    .create(serde_json::to_value(node_object(&node, index))?)
                    .with_context(|| format!("creating node {}", node.name))?;
                nodes.push(node);
            }
            let client = server.client();
            let control = Arc::new(ControlPlane::start(server, self.timings.clone()));
            let control_planes = nodes
                .iter()
                .filter(|n| n.role == Role::ControlPlane)
                .map(|n| n.name.clone())
                .collect();
            let all = nodes.iter().map(|n| n.name.clone()).collect();
            Ok(Provisioned {
                name: name.to_owned(),
                client,
                nodes,
                reused: false,
                node_faults: Arc::new(SimNodes::new(control, all, control_planes)),
            })
        })
    }

    fn destroy<'a>(&'a self, _cluster: &'a Provisioned) -> BoxFuture<'a, anyhow::Result<()>> {
        // The API server lives as long as clients hold it: dropping the cluster ends it.
        Box::pin(async {
            tokio::time::sleep(self.teardown_delay).await;
            Ok(())
        })
    }

    fn no_container_logs(&self) -> Option<&'static str> {
        // Its API answers `pods/{name}/log` with 404 (chaos-sim's router serves no such
        // subresource): there is nothing to read, and no log is made up.
        Some("the sim runs no containers")
    }

    fn how_to_reach(&self, cluster: &Provisioned) -> String {
        format!(
            "sim cluster {} lived in this process's memory and ended with it; \
             run with CHAOS_PROVIDER=kind to keep a real cluster",
            cluster.name
        )
    }
}

fn meta(name: &str, labels: BTreeMap<String, String>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        labels: Some(labels),
        ..Default::default()
    }
}

/// The Node object kind's kubelet would register, Ready, with the node's kubelet version.
pub(crate) fn node_object(node: &NodeInfo, index: usize) -> NodeObject {
    let mut labels = BTreeMap::from([
        ("kubernetes.io/hostname".to_owned(), node.name.clone()),
        ("kubernetes.io/os".to_owned(), "linux".to_owned()),
        ("kubernetes.io/arch".to_owned(), "amd64".to_owned()),
    ]);
    let mut taints = Vec::new();
    if node.role == Role::ControlPlane {
        labels.insert(
            "node-role.kubernetes.io/control-plane".to_owned(),
            String::new(),
        );
        taints.push(Taint {
            key: "node-role.kubernetes.io/control-plane".to_owned(),
            effect: "NoSchedule".to_owned(),
            ..Default::default()
        });
    }
    let now = Time(Timestamp::now());
    let resources = BTreeMap::from([
        ("cpu".to_owned(), Quantity("2".to_owned())),
        ("memory".to_owned(), Quantity("8Gi".to_owned())),
        ("pods".to_owned(), Quantity("110".to_owned())),
    ]);
    NodeObject {
        metadata: meta(&node.name, labels),
        spec: Some(NodeSpec {
            pod_cidr: Some(format!("10.244.{index}.0/24")),
            taints: (!taints.is_empty()).then_some(taints),
            ..Default::default()
        }),
        status: Some(NodeStatus {
            conditions: Some(vec![NodeCondition {
                type_: "Ready".to_owned(),
                status: "True".to_owned(),
                reason: Some("KubeletReady".to_owned()),
                message: Some("kubelet is posting ready status".to_owned()),
                last_heartbeat_time: Some(now.clone()),
                last_transition_time: Some(now),
            }]),
            addresses: Some(vec![
                NodeAddress {
                    type_: "InternalIP".to_owned(),
                    address: format!("172.18.0.{}", index + 2),
                },
                NodeAddress {
                    type_: "Hostname".to_owned(),
                    address: node.name.clone(),
                },
            ]),
            node_info: Some(NodeSystemInfo {
                architecture: "amd64".to_owned(),
                boot_id: format!("sim-boot-{index}"),
                container_runtime_version: "containerd://2.1.0".to_owned(),
                kernel_version: "6.1.0-sim".to_owned(),
                kube_proxy_version: node.kubelet_version.clone(),
                kubelet_version: node.kubelet_version.clone(),
                machine_id: format!("sim-machine-{index}"),
                operating_system: "linux".to_owned(),
                os_image: "Debian GNU/Linux 12 (bookworm)".to_owned(),
                system_uuid: format!("sim-uuid-{index}"),
                ..Default::default()
            }),
            capacity: Some(resources.clone()),
            allocatable: Some(resources),
            ..Default::default()
        }),
    }
}
