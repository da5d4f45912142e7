//! Steady-state checks on a test's cluster: waits that return once a state is reached, and
//! probes that watch a state in the background while faults are active. Both are recorded in the
//! test's timeline.

use std::fmt::Debug;
use std::future::Future;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::runtime::watcher;
use kube::{Api, Resource};
use serde::de::DeserializeOwned;

use crate::Cluster;
use crate::conditions::{self, ListCondition};
use crate::probe::{self, Probe};
use crate::timeline::EntryKind;
use crate::wait::{self, WaitError};

impl Cluster {
    /// Waits until all the cluster's nodes are there and Ready.
    pub async fn wait_for_nodes_ready(&self, timeout: Duration) -> Result<(), WaitError> {
        let count = self.nodes().len();
        let condition = conditions::nodes_ready(count);
        self.wait_until(
            self.nodes_api(),
            watcher::Config::default(),
            format!("{count} nodes Ready"),
            timeout,
            condition,
        )
        .await
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
        self.wait_until(
            self.nodes_api(),
            config,
            what,
            timeout,
            conditions::node_ready(node, ready),
        )
        .await
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
        self.wait_until(
            self.deployments_api(),
            config,
            what,
            timeout,
            conditions::deployment_available(name, min),
        )
        .await
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
        self.wait_until(pods, config, what, timeout, conditions::pods_running(count))
            .await
    }

    /// Waits until any condition holds on the objects `config` selects (see
    /// [`crate::conditions`] for ready-made ones), recording the wait in the timeline.
    pub async fn wait_until<K>(
        &self,
        api: Api<K>,
        config: watcher::Config,
        what: impl Into<String>,
        timeout: Duration,
        condition: impl ListCondition<K>,
    ) -> Result<(), WaitError>
    where
        K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
    {
        let what = what.into();
        self.recorded(
            &what,
            wait::until_list(api, config, what.clone(), timeout, condition),
        )
        .await
    }

    /// Starts an `always` probe: the deployment `name` keeps at least `min` available replicas
    /// until [`Probe::finish`]. If it breaks, the break is recorded in the timeline and the test
    /// fails at that moment, with what the probe saw (`.fail_test_at_break(false)` keeps the test
    /// running, and the break is said by `finish()`).
    pub fn always_available(&self, name: &str, min: i32) -> Probe {
        let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
        let what = format!("deployment {name} keeps at least {min} available replicas");
        self.always(
            self.deployments_api(),
            config,
            what,
            conditions::deployment_available(name, min),
        )
    }

    /// Starts an `always` probe of any condition on the objects `config` selects; its verdict is
    /// recorded in the timeline. If it breaks, the break is recorded when seen and the test fails
    /// at that moment (see [`Cluster::always_available`]).
    pub fn always<K>(
        &self,
        api: Api<K>,
        config: watcher::Config,
        what: impl Into<String>,
        condition: impl ListCondition<K>,
    ) -> Probe
    where
        K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    {
        let at_break = probe::AtBreak {
            timeline: Some(self.timeline.clone()),
            test: self.fail_test.clone(),
            fail_test: true.into(),
        };
        probe::always_in_test(api, config, what.into(), condition, at_break)
            .recorded_in(self.timeline.clone())
    }

    /// Starts an `eventually` probe of any condition on the objects `config` selects; its
    /// verdict is recorded in the timeline.
    pub fn eventually<K>(
        &self,
        api: Api<K>,
        config: watcher::Config,
        what: impl Into<String>,
        condition: impl ListCondition<K>,
    ) -> Probe
    where
        K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    {
        probe::eventually(api, config, what, condition).recorded_in(self.timeline.clone())
    }

    /// Runs a wait, recording its start and its end in the timeline.
    async fn recorded<T>(
        &self,
        what: &str,
        wait: impl Future<Output = Result<T, WaitError>>,
    ) -> Result<(), WaitError> {
        let start = Instant::now();
        self.timeline
            .record(EntryKind::Wait, format!("waiting for {what}"));
        let result = wait.await;
        let end = match &result {
            Ok(_) => format!(
                "{what}: reached after {:.1}s",
                start.elapsed().as_secs_f64()
            ),
            Err(err) => err.to_string(),
        };
        self.timeline.record(EntryKind::Wait, end);
        result.map(drop)
    }

    fn nodes_api(&self) -> Api<Node> {
        Api::all(self.client())
    }

    fn deployments_api(&self) -> Api<Deployment> {
        Api::namespaced(self.client(), self.namespace())
    }
}
