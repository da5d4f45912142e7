//! Providers make and remove clusters. They are siblings behind one interface, as kind's docker,
//! podman and nerdctl providers are: the harness never knows which one it drives.

pub(crate) mod kind;
mod sim;

use std::time::Duration;

use anyhow::bail;
use chaos_topology::Topology;
use futures::future::BoxFuture;

use crate::cluster::Node;
use crate::harness::settings::{ProviderChoice, Settings};
pub(crate) use sim::SimProvider;

/// A cluster a provider created.
pub(crate) struct Provisioned {
    pub name: String,
    pub client: kube::Client,
    pub nodes: Vec<Node>,
}

pub(crate) trait Provider: Send + Sync {
    /// `kind` or `sim`, as `CHAOS_PROVIDER` spells it.
    fn name(&self) -> &'static str;

    /// Roughly how much memory a cluster of this shape takes, for the default of
    /// `CHAOS_MAX_CLUSTERS`.
    fn memory_per_cluster(&self, topology: &Topology) -> u64;

    /// How long a healed cluster may take to look healthy again before it counts as broken.
    fn health_timeout(&self) -> Duration;

    /// Creates a cluster named `name` and returns once every node is Ready. On error, nothing of
    /// it is left behind.
    fn create<'a>(
        &'a self,
        name: &'a str,
        topology: &'a Topology,
    ) -> BoxFuture<'a, anyhow::Result<Provisioned>>;

    fn destroy<'a>(&'a self, cluster: &'a Provisioned) -> BoxFuture<'a, anyhow::Result<()>>;

    /// What to tell a user who kept this cluster (`CHAOS_KEEP=1`) about reaching and removing it.
    fn how_to_reach(&self, cluster: &Provisioned) -> String;
}

/// The provider `CHAOS_PROVIDER` asks for. `auto` takes kind where it can run, else the sim, and
/// says so in one line.
pub(crate) fn select(settings: &Settings) -> anyhow::Result<Box<dyn Provider>> {
    let sim = || {
        if settings.reuse {
            eprintln!(
                "chaos: CHAOS_REUSE=1 has no effect on the sim: its clusters end with the process"
            );
        }
        Box::new(SimProvider::new(settings.sim_provision_delay)) as Box<dyn Provider>
    };
    match settings.provider {
        ProviderChoice::Sim => Ok(sim()),
        ProviderChoice::Kind => bail!(
            "CHAOS_PROVIDER=kind: the kind provider is not in this build yet; \
             run with CHAOS_PROVIDER=sim (or unset it) to use the in-memory sim"
        ),
        ProviderChoice::Auto => {
            eprintln!(
                "chaos: provider sim (in-memory Kubernetes API; the kind provider is not in this \
                 build yet). Set CHAOS_PROVIDER to choose."
            );
            Ok(sim())
        }
    }
}
