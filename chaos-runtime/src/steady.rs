//! Steady-state checks on a test's cluster: waits that return once a state is reached, and
//! probes that watch a state in the background while faults are active.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::runtime::watcher;

use crate::Cluster;
use crate::conditions;
use crate::probe::{self, Probe};
use crate::wait::{self, WaitError};

impl Cluster {
    /// Waits until all the cluster's nodes are there and Ready.
    pub async fn wait_for_nodes_ready(&self, timeout: Duration) -> Result<(), WaitError> {
        let count = self.nodes().len();
        let what = format!("{count} nodes Ready");
        wait::until_list(
            self.nodes_api(),
            watcher::Config::default(),
            what,
            timeout,
            conditions::nodes_ready(count),
        )
        .await
        .map(drop)
    }

    /// Waits until `node` is Ready (`ready = true`) or not Ready (`false`).
    pub async fn wait_for_node_ready(
        &self,
        node: &str,
        ready: bool,
        timeout: Duration,
    ) -> Result<(), WaitError> {
        let what = format!("node {node} {}", if ready { "Ready" } else { "not Ready" });
        let config = watcher::Config::default().fields(&format!("metadata.name={node}"));
        wait::until_list(
            self.nodes_api(),
            config,
            what,
            timeout,
            conditions::node_ready(node, ready),
        )
        .await
        .map(drop)
    }

    /// Waits until the deployment `name` in this test's namespace has at least `min` available
    /// replicas.
    pub async fn wait_for_deployment_available(
        &self,
        name: &str,
        min: i32,
        timeout: Duration,
    ) -> Result<(), WaitError> {
        let what = format!("deployment {name} with at least {min} available replicas");
        let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
        let condition = conditions::deployment_available(name, min);
        wait::until_list(self.deployments_api(), config, what, timeout, condition)
            .await
            .map(drop)
    }

    /// Waits until at least `count` pods matching `label_selector` in this test's namespace are
    /// Running and Ready.
    pub async fn wait_for_pods_running(
        &self,
        label_selector: &str,
        count: usize,
        timeout: Duration,
    ) -> Result<(), WaitError> {
        let pods: Api<Pod> = Api::namespaced(self.client(), self.namespace());
        let what = format!("{count} pods {label_selector} Running and Ready");
        let config = watcher::Config::default().labels(label_selector);
        wait::until_list(pods, config, what, timeout, conditions::pods_running(count))
            .await
            .map(drop)
    }

    /// Starts an `always` probe: the deployment `name` keeps at least `min` available replicas
    /// until [`Probe::finish`].
    pub fn always_available(&self, name: &str, min: i32) -> Probe {
        let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
        let what = format!("deployment {name} keeps at least {min} available replicas");
        probe::always(
            self.deployments_api(),
            config,
            what,
            conditions::deployment_available(name, min),
        )
    }

    fn nodes_api(&self) -> Api<Node> {
        Api::all(self.client())
    }

    fn deployments_api(&self) -> Api<Deployment> {
        Api::namespaced(self.client(), self.namespace())
    }
}
