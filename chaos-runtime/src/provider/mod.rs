//! Providers make and remove clusters. They are siblings behind one interface, as kind's docker,
//! podman and nerdctl providers are: the harness never knows which one it drives.

pub(crate) mod kind;
pub(crate) mod sim;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chaos_topology::{Topology, Version};
use futures::future::BoxFuture;

use crate::faults::NodeFaults;
use crate::harness::progress::say;
use crate::harness::settings::{ProviderChoice, Settings};
use crate::node::NodeInfo;

/// Every provider, in the order `CHAOS_PROVIDER=auto` tries them: the first that can run here is
/// taken. Adding a provider is its own module plus one line here.
const PROVIDERS: &[Registration] = &[kind::REGISTRATION, sim::REGISTRATION];

/// How the harness finds a provider.
pub(crate) struct Registration {
    /// As `CHAOS_PROVIDER` spells it.
    pub name: &'static str,
    /// What it is, for the line that says which provider `auto` took.
    pub description: &'static str,
    /// What a run on this provider does not prove, said in one line whenever it is taken.
    pub banner: Option<&'static str>,
    /// Makes the provider for a run that needs `topologies`, or says why not: this host cannot
    /// run it, or the run's input is wrong.
    pub detect: Detect,
}

/// A provider's `detect`: its settings and the topologies the run needs in, the provider or why
/// not out.
pub(crate) type Detect = for<'a> fn(
    &'a Settings,
    &'a [&'a Topology],
) -> BoxFuture<'a, Result<Box<dyn Provider>, DetectError>>;

/// Why a provider's `detect` gave no provider. Only the environment lets `auto` try the next
/// provider: an input error would be an error on every provider, and a fallback would hide it.
#[derive(Debug)]
pub(crate) enum DetectError {
    /// This host lacks what the provider needs (its binary, a daemon, an image it cannot get).
    Environment(anyhow::Error),
    /// A setting or the topologies are wrong (a malformed variable, a shape it cannot make): the
    /// run fails whatever the provider.
    Input(anyhow::Error),
}

impl DetectError {
    /// The error, whichever kind it is.
    fn into_inner(self) -> anyhow::Error {
        match self {
            DetectError::Environment(err) | DetectError::Input(err) => err,
        }
    }
}

/// The providers' names, as `CHAOS_PROVIDER` accepts them (besides `auto`).
pub(crate) fn names() -> impl Iterator<Item = &'static str> {
    PROVIDERS.iter().map(|p| p.name)
}

/// A cluster a provider created.
pub(crate) struct Provisioned {
    pub name: String,
    pub client: kube::Client,
    /// Control planes first, then workers, in kind's naming order.
    pub nodes: Vec<NodeInfo>,
    /// Adopted from an earlier run (`CHAOS_REUSE=1`) rather than created.
    pub reused: bool,
    /// What hurts its nodes: Docker for kind, the simulated control plane for the sim.
    pub node_faults: Arc<dyn NodeFaults>,
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

    /// Removes what a `create` of `name` that was stopped midway (its future dropped, on a
    /// signal) had made already. Never touches a cluster of that name this run did not start.
    fn discard<'a>(&'a self, _name: &'a str) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async { Ok(()) })
    }

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

    /// Why the pods of this provider's clusters have no container logs, where they have none
    /// (the sim runs no containers: its API serves no `pods/log`). A failed test's artifacts say
    /// so in place of logs.
    fn no_container_logs(&self) -> Option<&'static str> {
        None
    }

    /// Saves the provider's own logs of `cluster` (kind: `kind export logs`) into `dir`, for a
    /// failed test's artifacts, and returns where; `None` for a provider that has none.
    fn export_logs<'a>(
        &'a self,
        _cluster: &'a Provisioned,
        _dir: &'a Path,
    ) -> BoxFuture<'a, anyhow::Result<Option<PathBuf>>> {
        Box::pin(async { Ok(None) })
    }

    /// Whether another process can reach the clusters this one makes (kind: through the
    /// kubeconfig it wrote on disk), so that the test processes of one nextest run share them
    /// (`harness::lease_records`). The sim's live in one process's memory: not shareable.
    fn shareable(&self) -> bool {
        false
    }

    /// Takes over cluster `name` of `topology`, which another process of this run created, healed
    /// and left idle: a client, its nodes (once every one is Ready) and its fault seam, as
    /// `create` returns them, with `reused` set. Only for a [`Provider::shareable`] provider.
    fn adopt<'a>(
        &'a self,
        name: &'a str,
        _topology: &'a Topology,
    ) -> BoxFuture<'a, anyhow::Result<Provisioned>> {
        Box::pin(async move {
            anyhow::bail!(
                "provider {} cannot take over cluster {name} from another process",
                self.name()
            )
        })
    }

    /// Removes cluster `name` of this run, which this process may not have made (another test
    /// process of its nextest run did): no `Provisioned` is needed.
    fn destroy_by_name<'a>(&'a self, name: &'a str) -> BoxFuture<'a, anyhow::Result<()>> {
        self.discard(name)
    }

    /// Where the kubeconfig of cluster `name` is, if it has one on disk.
    fn kubeconfig_of(&self, _name: &str) -> Option<std::path::PathBuf> {
        None
    }
}

/// Set when another process of the run already said the run's banners (under nextest, the first
/// test process): this one says them no more.
static QUIET_BANNERS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// From now on, [`select`] does not say which provider it took nor its banner: another process of
/// the run did.
pub(crate) fn quiet_banners() {
    QUIET_BANNERS.store(true, std::sync::atomic::Ordering::SeqCst);
}

pub(crate) fn banners_quiet() -> bool {
    QUIET_BANNERS.load(std::sync::atomic::Ordering::SeqCst)
}

/// The provider `CHAOS_PROVIDER` asks for, able to make `topologies`. `auto` takes the first
/// registered provider that can run here (kind where the binary, a Docker daemon and the node
/// images are there), and says which and why in one line when it is not the first. It falls back
/// only for the environment: an input error (an unknown version, a malformed setting) fails the
/// run on every provider, before anything is created. A provider with a banner says it.
pub(crate) async fn select(
    settings: &Settings,
    topologies: &[&Topology],
) -> anyhow::Result<Box<dyn Provider>> {
    check_versions(topologies)?;
    if let ProviderChoice::Named(name) = settings.provider {
        let registration = PROVIDERS
            .iter()
            .find(|p| p.name == name)
            .expect("settings only name registered providers");
        let provider = (registration.detect)(settings, topologies)
            .await
            .map_err(DetectError::into_inner)
            .with_context(|| format!("CHAOS_PROVIDER={name}"))?;
        say_banner(registration);
        return Ok(provider);
    }
    let mut refused: Vec<(&str, String)> = Vec::new();
    for registration in PROVIDERS {
        match (registration.detect)(settings, topologies).await {
            Ok(provider) => {
                if let Some((first, because)) = refused.first().filter(|_| !banners_quiet()) {
                    say(format!(
                        "provider {} ({}), because {first} cannot run here: {because}. \
                         Set CHAOS_PROVIDER to choose.",
                        registration.name, registration.description
                    ));
                }
                say_banner(registration);
                return Ok(provider);
            }
            Err(DetectError::Input(err)) => {
                // Not a reason to try the next provider: the input is as wrong there.
                return Err(err.context(format!(
                    "CHAOS_PROVIDER=auto, provider {}",
                    registration.name
                )));
            }
            Err(DetectError::Environment(reason)) => {
                refused.push((registration.name, in_one_line(&reason)))
            }
        }
    }
    let all: Vec<String> = refused
        .iter()
        .map(|(p, why)| format!("{p}: {why}"))
        .collect();
    anyhow::bail!("no provider can run here ({})", all.join("; "))
}

/// Every node version of `topologies` must have a node image: one of kind's, or one pinned with
/// `CHAOS_KIND_IMAGES` (which must then be well-formed). Checked for every provider, so that a
/// version (or a pin) that kind could not run fails on the sim as well, wherever it runs.
fn check_versions(topologies: &[&Topology]) -> anyhow::Result<()> {
    let pins = kind::images::ImagePins::from_env()?;
    let versions: BTreeSet<Version> = topologies
        .iter()
        .flat_map(|topology| topology.nodes().iter().map(|node| node.version))
        .collect();
    for version in versions {
        kind::images::check_known(version, &pins)?;
    }
    Ok(())
}

fn say_banner(registration: &Registration) {
    if let Some(banner) = registration.banner.filter(|_| !banners_quiet()) {
        say(format!("{}: {banner}", registration.name));
    }
}

/// Why a provider cannot run, in one line: the outer message says what is missing, the root
/// cause's last line says why.
fn in_one_line(reason: &anyhow::Error) -> String {
    let root = reason.root_cause().to_string();
    let why = root
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or_default();
    let what = reason.to_string();
    match what.lines().next() {
        Some(first) if first.trim_end_matches(':') != why => {
            format!("{} ({why})", first.trim_end_matches(':'))
        }
        _ => why.to_owned(),
    }
}
