//! Finding a kind cluster's node containers by the labels kind puts on them, with their state and
//! addresses on kind's docker network.

use std::collections::HashMap;

use serde::Deserialize;

use super::{Docker, DockerError, DockerErrorKind};

/// Every container kind creates carries the cluster's name in this label.
pub(crate) const CLUSTER_LABEL: &str = "io.x-k8s.kind.cluster";
/// `control-plane`, `worker` or `external-load-balancer`.
pub(crate) const ROLE_LABEL: &str = "io.x-k8s.kind.role";
/// The role of an HA cluster's API load balancer, `<cluster>-external-load-balancer` (kind's
/// `constants.ExternalLoadBalancerNodeRoleValue`).
const LOAD_BALANCER_ROLE: &str = "external-load-balancer";
const CONTROL_PLANE_ROLE: &str = "control-plane";

/// One container of a kind cluster, as Docker sees it now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeContainer {
    /// The container name, which is also the node's hostname and Kubernetes node name.
    pub name: String,
    /// The kind cluster it belongs to (its `io.x-k8s.kind.cluster` label).
    pub cluster: String,
    /// `control-plane`, `worker` (or `external-load-balancer`, which [`FaultLedger::isolate`]
    /// and [`FaultLedger::partition`] cut nodes from).
    ///
    /// [`FaultLedger::isolate`]: super::FaultLedger::isolate
    /// [`FaultLedger::partition`]: super::FaultLedger::partition
    pub role: String,
    /// The container's processes exist; also true while it is paused.
    pub running: bool,
    /// Frozen by `docker pause`.
    pub paused: bool,
    /// The IPv4 address on kind's network; `None` while stopped. A restarted node may get another
    /// one: docker hands out addresses in start order.
    pub ip: Option<String>,
    /// The IPv6 address on kind's network, which kind creates dual-stack.
    pub ipv6: Option<String>,
}

impl NodeContainer {
    /// The external load balancer of an HA cluster, not a node.
    ///
    /// kind runs it from `docker.io/envoyproxy/envoy` (`pkg/cluster/internal/loadbalancer/
    /// const.go`) without `--privileged` or added capabilities (`runArgsForLoadBalancer` in
    /// `pkg/cluster/internal/providers/docker/provision.go`): iptables cannot run in it (no
    /// NET_ADMIN), so no fault ever acts inside it; nodes cut themselves from it instead.
    pub(crate) fn is_load_balancer(&self) -> bool {
        self.role == LOAD_BALANCER_ROLE
    }

    pub(crate) fn is_control_plane(&self) -> bool {
        self.role == CONTROL_PLANE_ROLE
    }
}

impl Docker {
    /// The Kubernetes nodes of the kind cluster `cluster`: control planes first, then workers, in
    /// kind's naming order. The external load balancer of an HA cluster is not a node and is left
    /// out. An unknown cluster has no nodes: the result is empty, not an error.
    pub async fn cluster_nodes(&self, cluster: &str) -> Result<Vec<NodeContainer>, DockerError> {
        let mut nodes = self.cluster_containers(cluster).await?;
        nodes.retain(|n| !n.is_load_balancer());
        Ok(nodes)
    }

    /// The kind node container called `name`.
    pub async fn node(&self, name: &str) -> Result<NodeContainer, DockerError> {
        let mut nodes = self.inspect(Some(name), &[name]).await?;
        match nodes.pop() {
            Some(node) => Ok(node),
            None => Err(DockerError::new(
                DockerErrorKind::UnexpectedOutput,
                Some(name),
                "`docker inspect` returned nothing",
            )),
        }
    }

    /// Every container of the cluster, the load balancer included.
    pub(crate) async fn cluster_containers(
        &self,
        cluster: &str,
    ) -> Result<Vec<NodeContainer>, DockerError> {
        let filter = format!("label={CLUSTER_LABEL}={cluster}");
        let args = ["ps", "-a", "--filter", &filter, "--format", "{{.Names}}"];
        let listed = self.run(None, &args).await?;
        let names: Vec<&str> = listed.stdout.split_whitespace().collect();
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let mut nodes = self.inspect(None, &names).await?;
        nodes.sort_by_key(|n| (role_rank(&n.role), n.name.len(), n.name.clone()));
        Ok(nodes)
    }

    async fn inspect(
        &self,
        node: Option<&str>,
        names: &[&str],
    ) -> Result<Vec<NodeContainer>, DockerError> {
        let args: Vec<&str> = ["inspect", "--type", "container"]
            .into_iter()
            .chain(names.iter().copied())
            .collect();
        let output = self.run(node, &args).await?;
        let parsed: Vec<Inspected> = serde_json::from_str(&output.stdout).map_err(|error| {
            DockerError::new(
                DockerErrorKind::UnexpectedOutput,
                node,
                format!("could not read `docker {}`: {error}", args.join(" ")),
            )
        })?;
        parsed
            .into_iter()
            .map(|c| c.into_node(&network_name()))
            .collect()
    }
}

/// kind's docker network: `kind`, unless overridden as kind allows.
fn network_name() -> String {
    std::env::var("KIND_EXPERIMENTAL_DOCKER_NETWORK").unwrap_or_else(|_| "kind".to_owned())
}

fn role_rank(role: &str) -> u8 {
    match role {
        CONTROL_PLANE_ROLE => 0,
        "worker" => 1,
        LOAD_BALANCER_ROLE => 2,
        _ => 3,
    }
}

/// The parts of `docker inspect` we read.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Inspected {
    name: String,
    config: Config,
    state: State,
    network_settings: NetworkSettings,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Config {
    labels: Option<HashMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct State {
    running: bool,
    paused: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct NetworkSettings {
    networks: Option<HashMap<String, Endpoint>>,
}

#[derive(Deserialize)]
struct Endpoint {
    #[serde(rename = "IPAddress")]
    ipv4: String,
    #[serde(rename = "GlobalIPv6Address")]
    ipv6: String,
}

impl Inspected {
    fn into_node(self, network: &str) -> Result<NodeContainer, DockerError> {
        let name = self.name.trim_start_matches('/').to_owned();
        let mut labels = self.config.labels.unwrap_or_default();
        let Some(cluster) = labels.remove(CLUSTER_LABEL) else {
            return Err(DockerError::new(
                DockerErrorKind::NotAKindNode,
                Some(&name),
                format!("the container has no `{CLUSTER_LABEL}` label, so it is not a kind node"),
            ));
        };
        let endpoint = self
            .network_settings
            .networks
            .unwrap_or_default()
            .remove(network);
        let address = |pick: fn(&Endpoint) -> &String| {
            endpoint
                .as_ref()
                .map(pick)
                .filter(|a| !a.is_empty())
                .cloned()
        };
        Ok(NodeContainer {
            ip: address(|e| &e.ipv4),
            ipv6: address(|e| &e.ipv6),
            name,
            cluster,
            role: labels.remove(ROLE_LABEL).unwrap_or_default(),
            running: self.state.running,
            paused: self.state.paused,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INSPECTED: &str = r#"[{
        "Name": "/c1-worker",
        "Config": {"Labels": {"io.x-k8s.kind.cluster": "c1", "io.x-k8s.kind.role": "worker"}},
        "State": {"Running": true, "Paused": false},
        "NetworkSettings": {"Networks": {"kind": {
            "IPAddress": "172.18.0.3", "GlobalIPv6Address": ""
        }}}
    }]"#;

    #[test]
    fn reads_name_labels_state_and_addresses() {
        let parsed: Vec<Inspected> = serde_json::from_str(INSPECTED).unwrap();
        let node = parsed
            .into_iter()
            .next()
            .unwrap()
            .into_node("kind")
            .unwrap();
        assert_eq!(
            node,
            NodeContainer {
                name: "c1-worker".into(),
                cluster: "c1".into(),
                role: "worker".into(),
                running: true,
                paused: false,
                ip: Some("172.18.0.3".into()),
                ipv6: None,
            }
        );
    }

    #[test]
    fn nodes_sort_in_kind_naming_order() {
        let mut names = vec![
            "c-worker10",
            "c-worker2",
            "c-control-plane2",
            "c-worker",
            "c-control-plane",
        ];
        names.sort_by_key(|n| {
            (
                role_rank(if n.contains("worker") {
                    "worker"
                } else {
                    "control-plane"
                }),
                n.len(),
                n.to_string(),
            )
        });
        assert_eq!(
            names,
            [
                "c-control-plane",
                "c-control-plane2",
                "c-worker",
                "c-worker2",
                "c-worker10"
            ]
        );
    }
}
