//! What a test gets: a leased cluster, its nodes, its client, and the test's own namespace and seed.

use std::sync::Arc;

use chaos_topology::{Role, Topology, Version};
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::faults::{Fault, FaultContext, Ledger, NodeFault};
use crate::lease::Lease;
use crate::node::NodeInfo;
use crate::observe::baseline::Baseline;
use crate::provider::Provisioned;
use crate::timeline::Timeline;

/// A cluster leased to one test: nobody else uses it until the test ends and the cluster is healed.
pub struct Cluster {
    pub(crate) shared: Arc<SharedCluster>,
    pub(crate) namespace: String,
    pub(crate) seed: u64,
    pub(crate) timeline: Arc<Timeline>,
    /// The cluster's nodes, able to take faults recorded in this test's timeline.
    pub(crate) nodes: Vec<Node>,
    pub(crate) faults: FaultContext,
    /// The cluster's client, refusing once the test's lease ended.
    pub(crate) client: kube::Client,
    /// Fails the test at once (a probe that broke): set by the harness when the body starts.
    pub(crate) fail_test: Option<crate::harness::test_thread::FailTest>,
}

/// The part of a cluster that outlives a test: what the provider created, for one topology.
pub(crate) struct SharedCluster {
    pub(crate) name: String,
    pub(crate) topology: Topology,
    pub(crate) provisioned: Provisioned,
    /// Faults in effect, whichever test made them: the heal undoes them.
    pub(crate) ledger: Arc<Ledger>,
    /// What the cluster looked like when it was first handed out: the heal puts it back so.
    pub(crate) baseline: Baseline,
}

impl Cluster {
    /// The view of `shared` a test gets.
    pub(crate) fn for_test(
        shared: Arc<SharedCluster>,
        namespace: String,
        seed: u64,
        timeline: Arc<Timeline>,
        lease: Lease,
    ) -> Cluster {
        let faults = FaultContext {
            nodes: shared.provisioned.node_faults.clone(),
            client: shared.provisioned.client.clone(),
            ledger: shared.ledger.clone(),
            timeline: timeline.clone(),
            lease: lease.clone(),
            harness: tokio::runtime::Handle::current(),
        };
        let nodes = shared
            .provisioned
            .nodes
            .iter()
            .map(|info| Node {
                info: info.clone(),
                faults: faults.clone(),
            })
            .collect();
        Cluster {
            client: lease.client(&shared.provisioned.client),
            shared,
            namespace,
            seed,
            timeline,
            nodes,
            faults,
            fail_test: None,
        }
    }
}

/// One node of a test's cluster: what the provider made, and the faults it can take.
#[derive(Clone)]
pub struct Node {
    info: NodeInfo,
    faults: FaultContext,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("name", &self.info.name)
            .field("role", &self.info.role)
            .field("version", &self.info.version)
            .field("kubelet_version", &self.info.kubelet_version)
            .finish()
    }
}

impl Cluster {
    /// The cluster's name, as the provider knows it (for kind: `kind get clusters`).
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The topology the cluster was made for.
    pub fn topology(&self) -> &Topology {
        &self.shared.topology
    }

    /// Every node: control planes first, then workers, in kind's naming order.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The control-plane nodes, in kind's naming order.
    pub fn masters(&self) -> Vec<&Node> {
        self.nodes()
            .iter()
            .filter(|n| n.role() == Role::ControlPlane)
            .collect()
    }

    /// The worker nodes, in kind's naming order.
    pub fn workers(&self) -> Vec<&Node> {
        self.nodes()
            .iter()
            .filter(|n| n.role() == Role::Worker)
            .collect()
    }

    /// The node called `name`, e.g. `cluster.node(&format!("{}-worker2", cluster.name()))`.
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes().iter().find(|n| n.name() == name)
    }

    /// The Docker-level fault ledger of a kind cluster's nodes (`None` elsewhere): stop, kill,
    /// pause, kubelet stop, partitions, netem. Whatever a test leaves in it is undone by the
    /// heal before the next test.
    #[deprecated(
        note = "use the fault operations of `Node` and `Cluster`: they work on every provider, \
                and their `Fault` handles undo exactly what they did"
    )]
    pub fn docker_faults(&self) -> Option<&crate::provider::kind::FaultLedger> {
        crate::provider::kind::docker_ledger(&*self.shared.provisioned.node_faults)
    }

    /// Cuts the nodes `a` off from the nodes `b`, both ways.
    pub async fn partition(&self, a: &[&Node], b: &[&Node]) -> anyhow::Result<Fault> {
        let a: Vec<&str> = a.iter().map(|n| n.name()).collect();
        let b: Vec<&str> = b.iter().map(|n| n.name()).collect();
        self.faults.partition(&a, &b).await
    }

    /// Deletes the pods `label_selector` matches in this test's namespace; their controllers
    /// replace them. Returns the names of the pods killed.
    pub async fn kill_pods(&self, label_selector: &str) -> anyhow::Result<Vec<String>> {
        self.faults.kill_pods(&self.namespace, label_selector).await
    }

    /// Stops the last control-plane node of an HA control plane: the API must keep serving from
    /// the others. Fails on a cluster with a single control plane.
    pub async fn lose_control_plane(&self) -> anyhow::Result<Fault> {
        let masters = self.masters();
        match masters.last() {
            Some(node) if masters.len() >= 2 => node.stop().await,
            _ => anyhow::bail!(
                "losing a control plane needs an HA cluster: use `masters = 3` (this one has {})",
                masters.len()
            ),
        }
    }

    /// A client for the cluster's API (a clone: cheap).
    pub fn client(&self) -> kube::Client {
        self.client.clone()
    }

    /// Applies every document of a multi-document YAML manifest by server-side apply, into this
    /// test's namespace unless a document names its own; returns the objects as stored.
    pub async fn apply(&self, yaml: &str) -> anyhow::Result<Vec<kube::api::DynamicObject>> {
        crate::apply::apply_yaml(&self.client(), &self.namespace, yaml).await
    }

    /// [`Cluster::apply`] on a YAML file.
    pub async fn apply_file(
        &self,
        path: impl AsRef<std::path::Path>,
    ) -> anyhow::Result<Vec<kube::api::DynamicObject>> {
        crate::apply::apply_file(&self.client(), &self.namespace, path.as_ref()).await
    }

    /// Applies a typed object (into this test's namespace unless it names its own) and returns it
    /// as stored.
    pub async fn apply_object<K>(&self, object: &K) -> anyhow::Result<K>
    where
        K: serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
    {
        crate::apply::apply_object(&self.client(), &self.namespace, object).await
    }

    /// This test's own namespace: created before the test, removed after it.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// This test's seed: derived from the run's `CHAOS_SEED` and the test's name.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// This test's timeline: waits, probe verdicts and faults are recorded in it; add notes of
    /// your own with [`Timeline::note`].
    pub fn timeline(&self) -> &Timeline {
        &self.timeline
    }

    /// A random generator seeded with [`Cluster::seed`]: the same seed draws the same numbers.
    pub fn rng(&self) -> StdRng {
        StdRng::seed_from_u64(self.seed)
    }
}

impl Node {
    /// The node's name, in the cluster and (on kind) of its container.
    pub fn name(&self) -> &str {
        &self.info.name
    }

    /// Control plane or worker.
    pub fn role(&self) -> Role {
        self.info.role
    }

    /// The version the test asked for, e.g. `1.28`.
    pub fn version(&self) -> Version {
        self.info.version
    }

    /// The version its kubelet reports, e.g. `v1.28.15`.
    pub fn kubelet_version(&self) -> &str {
        &self.info.kubelet_version
    }

    /// Applies any node fault to this node; the named operations below are shorthands.
    /// [`NodeFault::Partition`] names its own sides: use [`Cluster::partition`] or
    /// [`Node::partition`] for it.
    pub async fn inject(&self, fault: NodeFault) -> anyhow::Result<Fault> {
        if let NodeFault::Partition { .. } = fault {
            anyhow::bail!(
                "a partition names its own sides, not one node: use `cluster.partition(&a, &b)` \
                 or `node.partition(&others)`"
            );
        }
        self.faults.node_fault(fault, self.name()).await
    }

    /// Stops the node gracefully (kind: `docker stop`; its pods die with it). Undone by
    /// [`Node::start`], by the handle, or by the heal.
    pub async fn stop(&self) -> anyhow::Result<Fault> {
        self.inject(NodeFault::Stop).await
    }

    /// Kills the node (kind: `docker kill`).
    pub async fn kill(&self) -> anyhow::Result<Fault> {
        self.inject(NodeFault::Kill).await
    }

    /// Starts a stopped, killed or paused node, ending those faults.
    pub async fn start(&self) -> anyhow::Result<()> {
        self.faults.start(self.name()).await
    }

    /// Stops and starts the node: its containers restart.
    pub async fn restart(&self) -> anyhow::Result<()> {
        self.faults.restart(self.name()).await
    }

    /// Freezes the node (kind: `docker pause`): nothing on it runs or answers.
    pub async fn pause(&self) -> anyhow::Result<Fault> {
        self.inject(NodeFault::Pause).await
    }

    /// Ends a pause.
    pub async fn unpause(&self) -> anyhow::Result<()> {
        self.faults.start(self.name()).await
    }

    /// Stops the node's kubelet; its pods keep running.
    pub async fn kubelet_stop(&self) -> anyhow::Result<Fault> {
        self.inject(NodeFault::KubeletStop).await
    }

    /// Starts the node's kubelet again, ending a kubelet stop.
    pub async fn kubelet_start(&self) -> anyhow::Result<()> {
        self.faults.kubelet_start(self.name()).await
    }

    /// Marks the node unschedulable.
    pub async fn cordon(&self) -> anyhow::Result<Fault> {
        self.faults.cordon(self.name()).await
    }

    /// Marks the node schedulable again, ending a cordon.
    pub async fn uncordon(&self) -> anyhow::Result<()> {
        self.faults.uncordon(self.name()).await
    }

    /// Cordons the node and evicts its pods through the eviction API, honouring
    /// PodDisruptionBudgets, for at most `timeout`. The handle uncordons it.
    pub async fn drain(&self, timeout: std::time::Duration) -> anyhow::Result<Fault> {
        self.faults.drain(self.name(), timeout).await
    }

    /// Cuts this node off from `others`, both ways (see [`Cluster::partition`] for sets of nodes).
    pub async fn partition(&self, others: &[&Node]) -> anyhow::Result<Fault> {
        let others: Vec<&str> = others.iter().map(|n| n.name()).collect();
        self.faults.partition(&[self.name()], &others).await
    }

    /// Cuts the node off from every other node of the cluster.
    pub async fn isolate(&self) -> anyhow::Result<Fault> {
        self.inject(NodeFault::Isolate).await
    }

    /// Delays every packet the node sends (kind: `tc netem`; the sim records it only).
    pub async fn network_delay(&self, delay: std::time::Duration) -> anyhow::Result<Fault> {
        self.faults.netem(self.name(), Some(delay), None).await
    }

    /// Drops that share of the node's packets (kind: `tc netem`; the sim records it only).
    pub async fn network_loss(&self, percent: f64) -> anyhow::Result<Fault> {
        self.faults.netem(self.name(), None, Some(percent)).await
    }
}
