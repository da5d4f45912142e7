//! Providers make and remove clusters. They are siblings behind one interface, as kind's docker,
//! podman and nerdctl providers are: the harness never knows which one it drives.

pub(crate) mod kind;
pub(crate) mod sim;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chaos_topology::Topology;
use futures::future::BoxFuture;

use crate::cluster::Node;
use crate::docker::FaultLedger;
use crate::harness::settings::{ProviderChoice, Settings};
use chaos_sim::control::ControlPlane;
pub(crate) use kind::KindProvider;
pub(crate) use sim::SimProvider;

/// How a provider reaches its nodes for faults.
#[derive(Clone)]
pub(crate) enum NodeBackend {
    /// kind: node containers, through the Docker CLI; faults are recorded in the ledger.
    Docker(Arc<FaultLedger>),
    /// The sim: its control plane's kubelets.
    Sim(Arc<ControlPlane>),
}

/// A cluster a provider created.
pub(crate) struct Provisioned {
    pub name: String,
    pub client: kube::Client,
    pub nodes: Vec<Node>,
    /// Adopted from an earlier run (`CHAOS_REUSE=1`) rather than created.
    pub reused: bool,
    /// What hurts its nodes: Docker for kind, the simulated control plane for the sim.
    pub nodes_backend: NodeBackend,
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

    /// The name of the cluster for `topology`: random by default, so that runs never collide;
    /// stable where the provider reuses clusters across runs.
    fn cluster_name(&self, topology: &Topology) -> String {
        format!(
            "chaos-{}-{:04x}",
            crate::namespace::dns_label_part(&topology.label(), 27),
            rand::random::<u16>()
        )
    }

    /// Whether clusters outlive the run to be adopted by the next one (`CHAOS_REUSE=1` on kind).
    fn reuses(&self) -> bool {
        false
    }

    /// Marks a cluster as kept on purpose (`CHAOS_KEEP=1`), so that no clean-up removes it.
    fn keep(&self, _cluster: &Provisioned) -> anyhow::Result<()> {
        Ok(())
    }

    /// What to tell a user who kept this cluster (`CHAOS_KEEP=1`) about reaching and removing it.
    fn how_to_reach(&self, cluster: &Provisioned) -> String;
}

/// The provider `CHAOS_PROVIDER` asks for, able to make `topologies`. `auto` takes kind where it
/// can run (the binary, a Docker daemon, and the node images present or pullable), else the sim,
/// and says which and why in one line.
pub(crate) async fn select(
    settings: &Settings,
    topologies: &[&Topology],
) -> anyhow::Result<Box<dyn Provider>> {
    let sim = || {
        if settings.reuse {
            eprintln!(
                "chaos: CHAOS_REUSE=1 has no effect on the sim: its clusters end with the process"
            );
        }
        Box::new(SimProvider::new(
            settings.sim_provision_delay,
            settings.sim_timings.clone(),
        )) as Box<dyn Provider>
    };
    let kind = async {
        let provider = KindProvider::detect(settings.reuse).await?;
        provider.ensure_images(topologies).await?;
        // What runs that were killed left behind goes first, making room.
        match kind::remove_leftovers(&provider.records).await {
            Ok(removed) if !removed.is_empty() => {
                eprintln!(
                    "chaos: removed {} cluster(s) left by runs that ended: {}",
                    removed.len(),
                    removed.join(", ")
                )
            }
            Ok(_) => {}
            Err(err) => eprintln!("chaos: could not look for leftover clusters: {err:#}"),
        }
        anyhow::Ok(provider)
    };
    match settings.provider {
        ProviderChoice::Sim => Ok(sim()),
        ProviderChoice::Kind => Ok(Box::new(kind.await.context("CHAOS_PROVIDER=kind")?)),
        ProviderChoice::Auto => match kind.await {
            Ok(provider) => Ok(Box::new(provider)),
            Err(reason) => {
                // The outer message says what is missing; the root cause's last line says why.
                let root = reason.root_cause().to_string();
                let why = root
                    .lines()
                    .rev()
                    .map(str::trim)
                    .find(|l| !l.is_empty())
                    .unwrap_or_default();
                let what = reason.to_string();
                let because = match what.lines().next() {
                    Some(first) if first.trim_end_matches(':') != why => {
                        format!("{} ({why})", first.trim_end_matches(':'))
                    }
                    _ => why.to_owned(),
                };
                eprintln!(
                    "chaos: provider sim (in-memory Kubernetes API), because kind cannot run here: {because}. \
                     Set CHAOS_PROVIDER to choose."
                );
                Ok(sim())
            }
        },
    }
}
