//! What a test gets: a leased cluster, its nodes, its client, and the test's own namespace and seed.

use std::sync::Arc;

use chaos_topology::{Role, Topology, Version};
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::provider::Provisioned;
use crate::timeline::Timeline;

/// A cluster leased to one test: nobody else uses it until the test ends and the cluster is healed.
pub struct Cluster {
    pub(crate) shared: Arc<SharedCluster>,
    pub(crate) namespace: String,
    pub(crate) seed: u64,
    pub(crate) timeline: Arc<Timeline>,
}

/// The part of a cluster that outlives a test: what the provider created, for one topology.
pub(crate) struct SharedCluster {
    pub(crate) name: String,
    pub(crate) topology: Topology,
    pub(crate) provisioned: Provisioned,
}

/// One node of a cluster.
#[derive(Clone, Debug)]
pub struct Node {
    pub(crate) name: String,
    pub(crate) role: Role,
    pub(crate) version: Version,
    /// The full version the node's kubelet reports, e.g. `v1.28.15`.
    pub(crate) kubelet_version: String,
}

impl Cluster {
    /// The cluster's name, as the provider knows it (for kind: `kind get clusters`).
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    pub fn topology(&self) -> &Topology {
        &self.shared.topology
    }

    /// Every node: control planes first, then workers, in kind's naming order.
    pub fn nodes(&self) -> &[Node] {
        &self.shared.provisioned.nodes
    }

    pub fn masters(&self) -> Vec<&Node> {
        self.nodes()
            .iter()
            .filter(|n| n.role == Role::ControlPlane)
            .collect()
    }

    pub fn workers(&self) -> Vec<&Node> {
        self.nodes()
            .iter()
            .filter(|n| n.role == Role::Worker)
            .collect()
    }

    /// The node called `name`, e.g. `cluster.node(&format!("{}-worker2", cluster.name()))`.
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes().iter().find(|n| n.name == name)
    }

    /// The Docker-level fault ledger of a kind cluster's nodes (`None` on the sim): stop, kill,
    /// pause, kubelet stop, partitions, netem. Whatever a test leaves in it is undone by the
    /// heal before the next test.
    pub fn docker_faults(&self) -> Option<&crate::docker::FaultLedger> {
        self.shared.provisioned.docker_faults.as_deref()
    }

    /// A client for the cluster's API (a clone: cheap).
    pub fn client(&self) -> kube::Client {
        self.shared.provisioned.client.clone()
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
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// The version the test asked for, e.g. `1.28`.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The version its kubelet reports, e.g. `v1.28.15`.
    pub fn kubelet_version(&self) -> &str {
        &self.kubelet_version
    }
}
