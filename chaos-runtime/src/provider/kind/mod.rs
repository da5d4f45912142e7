//! The kind provider: real clusters whose nodes are Docker containers, driven through the `kind`
//! and `docker` CLIs.

pub mod config;
pub mod docker;
mod host;
pub mod images;
mod naming;
mod nodes;
pub mod ownership;
mod standin;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use chaos_topology::Topology;
use futures::future::BoxFuture;
use kube::config::{KubeConfigOptions, Kubeconfig};

use super::{DetectError, Provider, Provisioned, Registration};
use crate::command::Cmd;
use crate::harness::progress::{reporting, say};
use crate::node::NodeInfo;
use crate::observe::health;
use config::ConfigOptions;
use docker::Docker;
pub use docker::FaultLedger;
use images::{ImagePins, KindRelease, NodeImage};
pub(crate) use naming::node_names;
use nodes::KindNodes;
pub(crate) use nodes::docker_ledger;
use ownership::{CorruptRecord, Disposition, OwnerRecord, OwnerState, Records, Scan};
use standin::StandIn;

pub(super) const REGISTRATION: Registration = Registration {
    name: "kind",
    description: "real clusters in Docker",
    banner: None,
    detect: |settings, topologies| {
        Box::pin(async move {
            check_input(topologies).map_err(DetectError::Input)?;
            let provider = KindProvider::detect(settings.reuse)
                .await
                .map_err(DetectError::Environment)?;
            provider
                .ensure_images(topologies)
                .await
                .map_err(DetectError::Environment)?;
            let at_once = settings.max_clusters.unwrap_or(8).min(topologies.len());
            let limits: Vec<_> = host::INOTIFY_WANTED
                .iter()
                .map(|(name, _)| (*name, host::read_sysctl(name)))
                .collect();
            if let Some(warning) = host::inotify_warning(&limits, at_once) {
                say(warning);
            }
            // What runs that were killed left behind goes first, making room.
            match remove_leftovers(&provider.records).await {
                Ok(report) => {
                    if !report.removed.is_empty() {
                        say(format!(
                            "removed {} cluster(s) left by runs that ended: {}",
                            report.removed.len(),
                            report.removed.join(", ")
                        ));
                    }
                    for failure in &report.failed {
                        say(format!(
                            "could not remove {}, left by a run that ended: {}; by hand: {}",
                            failure.what, failure.error, failure.by_hand
                        ));
                    }
                    for corrupt in &report.corrupt {
                        say(format!("warning: {corrupt}"));
                    }
                }
                Err(err) => say(format!("could not look for leftover clusters: {err:#}")),
            }
            Ok(Box::new(provider) as Box<dyn Provider>)
        })
    },
};

/// What is wrong with the run's input for kind whatever the host has: kind's settings, and node
/// versions whose kubeadm cannot join the first control plane. Checked before kind and Docker
/// are looked for, so that `auto` never falls back to the sim on it.
fn check_input(topologies: &[&Topology]) -> anyhow::Result<()> {
    ImagePins::from_env()?;
    config_options_from_env()?;
    crate::harness::settings::flag("CHAOS_KIND_STANDIN")?;
    for topology in topologies {
        let versions: Vec<_> = topology.nodes().iter().map(|n| n.version).collect();
        if let Some(first) = topology.nodes().first() {
            host::check_join_skew(first.version, &versions).map_err(anyhow::Error::msg)?;
        }
    }
    Ok(())
}

/// kind's own creation, image pulls included.
const CREATE_TIMEOUT: Duration = Duration::from_secs(20 * 60);
/// A new cluster's API answering `/version` at an address (it is up when kind returns).
const REACH_TIMEOUT: Duration = Duration::from_secs(15);
/// Workers joining and every node Ready after kind returns (its `--wait` covers control planes only).
const READY_TIMEOUT: Duration = Duration::from_secs(5 * 60);

pub(crate) struct KindProvider {
    kind: String,
    release: KindRelease,
    pins: ImagePins,
    options: ConfigOptions,
    records: Records,
    /// Kubeconfigs and failure logs: `<target>/chaos/kind/`.
    work_dir: PathBuf,
    /// How long every node may take to be Ready once kind returns.
    ready_timeout: Duration,
    /// How long a new cluster's API may take to answer `/version` at an address.
    reach_timeout: Duration,
    /// `CHAOS_REUSE=1`: clusters are named by topology and images, and adopted across runs.
    reuse: bool,
    /// Best-effort warnings already printed, to say each once.
    warned: Mutex<BTreeSet<String>>,
    /// `CHAOS_KIND_STANDIN=1`: nodes from stand-in images built here.
    standin: Option<StandIn>,
    /// The Docker daemon's cgroup version (`docker info`), `1` or `2`.
    cgroup_version: String,
}

impl KindProvider {
    /// Finds kind and a running Docker daemon; the error says which is missing and what to do.
    /// `reuse`: `CHAOS_REUSE=1`, name clusters by what they are and adopt a healthy one left by
    /// an earlier run.
    pub async fn detect(reuse: bool) -> anyhow::Result<Self> {
        let kind = kind_binary();
        let version = kind_cmd(&kind)
            .arg("version")
            .install_hint(images::INSTALL_HINT)
            .run()
            .await?;
        let release = images::parse_kind_version(&version.stdout).with_context(|| {
            format!(
                "`{kind} version` printed {:?}, not a kind version",
                version.stdout.trim()
            )
        })?;
        Docker::new().ping().await?;
        let docker_v = Cmd::new("docker").arg("-v").run().await?;
        let kind_provider = std::env::var(host::KIND_PROVIDER_VAR).ok();
        host::check_container_runtime(kind_provider.as_deref(), &docker_v.stdout)
            .map_err(anyhow::Error::msg)?;
        let cgroup_version = Cmd::new("docker")
            .args(["info", "--format", "{{.CgroupVersion}}"])
            .run()
            .await
            .map(|out| out.stdout.trim().to_owned())
            .unwrap_or_default();
        let standin = StandIn::from_env().await?;
        if standin.is_some() && !super::banners_quiet() {
            say(
                "CHAOS_KIND_STANDIN=1: the real kind binary, with stand-in node images built here (no real kubeadm, kubelet or etcd)",
            );
        }
        Ok(KindProvider {
            kind,
            release,
            pins: ImagePins::from_env()?,
            options: config_options_from_env()?,
            records: Records::default_location(),
            work_dir: crate::dirs::chaos_dir().join("kind"),
            ready_timeout: READY_TIMEOUT,
            reach_timeout: REACH_TIMEOUT,
            reuse,
            warned: Mutex::default(),
            standin,
            cgroup_version,
        })
    }

    /// The node image of every node, in topology order; fails before anything is created, also
    /// for versions this host or kind's kubeadm flow cannot run.
    fn node_images(&self, topology: &Topology) -> anyhow::Result<Vec<NodeImage>> {
        let versions: Vec<_> = topology.nodes().iter().map(|n| n.version).collect();
        if let Some(first) = topology.nodes().first() {
            host::check_join_skew(first.version, &versions).map_err(anyhow::Error::msg)?;
        }
        // Stand-in nodes run no real kubelet, so cgroups do not limit them.
        if self.standin.is_none() {
            host::check_cgroups(&self.cgroup_version, &versions).map_err(anyhow::Error::msg)?;
        }
        topology
            .nodes()
            .iter()
            .map(|node| {
                let image = images::resolve(node.version, self.release, &self.pins)?;
                if let Some(warning) = image.warning()
                    && self
                        .warned
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(warning.clone())
                {
                    say(&warning);
                }
                Ok(match &self.standin {
                    Some(standin) => standin.node_image(image),
                    None => image,
                })
            })
            .collect()
    }

    /// Makes sure every node image these topologies need is in Docker, pulling what is missing.
    /// `Err` says which image could not be had and why: kind cannot run here.
    pub async fn ensure_images(&self, topologies: &[&Topology]) -> anyhow::Result<()> {
        if let Some(standin) = &self.standin {
            let mut wanted = BTreeSet::new();
            for topology in topologies {
                wanted.extend(
                    self.node_images(topology)?
                        .into_iter()
                        .map(|i| (i.image, i.kubelet_version)),
                );
            }
            return standin.ensure_images(wanted).await;
        }
        let mut wanted = BTreeSet::new();
        for topology in topologies {
            wanted.extend(self.node_images(topology)?.into_iter().map(|i| i.image));
        }
        for image in wanted {
            if Cmd::new("docker")
                .args(["image", "inspect", "--format", "{{.Id}}", &image])
                .run()
                .await
                .is_ok()
            {
                continue;
            }
            say(format!("pulling node image {image}"));
            let pull = Cmd::new("docker")
                .args(["pull", &image])
                .timeout(CREATE_TIMEOUT);
            reporting(&format!("still pulling {image}"), pull.run())
                .await
                .with_context(|| {
                    format!("node image {image} is not in Docker and cannot be pulled")
                })?;
        }
        Ok(())
    }

    /// A kind command line; in stand-in mode, with what kind needs on its PATH.
    fn kind_command(&self) -> Cmd {
        let cmd = kind_cmd(&self.kind);
        match &self.standin {
            Some(standin) => standin.kind_command(cmd),
            None => cmd,
        }
    }

    fn kubeconfig_path(&self, cluster: &str) -> PathBuf {
        self.work_dir.join(format!("{cluster}.kubeconfig"))
    }

    async fn client(&self, cluster: &str, path: &Path) -> anyhow::Result<kube::Client> {
        let kubeconfig =
            Kubeconfig::read_from(path).with_context(|| format!("reading {}", path.display()))?;
        let options = KubeConfigOptions {
            context: Some(format!("kind-{cluster}")),
            ..Default::default()
        };
        let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &options).await?;
        // kube 5 retries 429, 503 and 504 by default, up to 15 times with backoff growing to
        // 1000 s (`RetryPolicy::server_retry`, kube-client 5.0.0 `client/builder.rs`). An
        // eviction a PodDisruptionBudget refuses is a 429 (Kubernetes API: "Eviction"), and an
        // API server a fault took down answers 503 through the load balancer: both must reach
        // our own waits and timeouts, not stall a test for minutes. The sim's client has no
        // such layer, so the providers also answer alike.
        config.default_retry = false;
        Ok(kube::Client::try_from(config)?)
    }

    /// The node images and kind config for a cluster: every check that can fail without
    /// touching Docker, so that bad input creates nothing.
    fn plan(&self, name: &str, topology: &Topology) -> anyhow::Result<(Vec<NodeImage>, String)> {
        config::check_cluster_name(name).map_err(anyhow::Error::msg)?;
        let images = self.node_images(topology)?;
        let config = config::render(name, topology, &images, &self.options, self.release)?;
        Ok((images, config))
    }

    async fn create_cluster(
        &self,
        name: &str,
        topology: &Topology,
        (images, config): (Vec<NodeImage>, String),
    ) -> anyhow::Result<Provisioned> {
        let kubeconfig = self.kubeconfig_path(name);
        std::fs::create_dir_all(&self.work_dir)
            .with_context(|| format!("creating {}", self.work_dir.display()))?;
        // Recorded before creation: a run killed halfway still leaves a record for `gc`.
        self.records.write(&OwnerRecord::for_this_process(
            name,
            "kind",
            Some(kubeconfig.clone()),
        ))?;

        let create = self
            .kind_command()
            .args([
                "create", "cluster", "--name", name, "--config", "-", "--retain", "--wait", "0s",
            ])
            .arg("--kubeconfig")
            .arg(kubeconfig.display().to_string())
            .stdin(config)
            .timeout(CREATE_TIMEOUT);
        let created = create
            .run_streaming(|line| say(format!("{name}: {}", line.trim())))
            .await;
        if let Err(err) = created {
            // kind's check, made again at creation (kind `pkg/cluster/internal/create/create.go`):
            // a cluster of this name appeared since we looked.
            if err
                .to_string()
                .contains("already exist for a cluster with the name")
            {
                return Err(NameTaken(name.to_owned()).into());
            }
            let logs = self.save_creation_logs(name).await;
            bail!("kind could not create cluster {name}: {err}\n{logs}");
        }

        let nodes = nodes_of(name, topology, &images);
        let client = self.reachable_client(name, &kubeconfig).await?;
        let ready = reporting(
            &format!("waiting for every node of {name} to be Ready"),
            health::wait_healthy(client.clone(), &nodes, self.ready_timeout),
        )
        .await;
        if let Err(err) = ready {
            let logs = self.save_creation_logs(name).await;
            bail!(
                "cluster {name} was created but its nodes did not all become Ready: {err}\n{logs}"
            );
        }
        self.provisioned(name, client, nodes, false).await
    }

    /// A client for a cluster kind just created, once its API answered `/version`. kind's
    /// kubeconfig points at `https://127.0.0.1:<port>`, the port it published on the Docker host
    /// (kind `pkg/cluster/internal/kubeconfig/internal/kubeconfig/paths.go`, `--internal`
    /// otherwise). From a devcontainer, a CI `container:` job or with a remote `DOCKER_HOST` that
    /// is not this machine: then kind's internal kubeconfig (`kind get kubeconfig --internal`:
    /// the control plane's name on the `kind` network) is tried, and kept if it answers. If
    /// neither does, this fails at once rather than after the readiness wait.
    async fn reachable_client(
        &self,
        name: &str,
        kubeconfig: &Path,
    ) -> anyhow::Result<kube::Client> {
        let client = self.client(name, kubeconfig).await?;
        let Err(external) = answers(&client, self.reach_timeout).await else {
            return Ok(client);
        };
        let internal = self
            .kind_command()
            .args(["get", "kubeconfig", "--internal", "--name", name])
            .timeout(Duration::from_secs(30))
            .run()
            .await;
        let tried = match internal {
            Ok(out) => {
                std::fs::write(kubeconfig, &out.stdout)
                    .with_context(|| format!("writing {}", kubeconfig.display()))?;
                let client = self.client(name, kubeconfig).await?;
                match answers(&client, self.reach_timeout).await {
                    Ok(()) => {
                        say(format!(
                            "{name}: its API is not reachable at the address kind published on \
                             the Docker host ({external}); using kind's internal kubeconfig (the \
                             `kind` network), which answers"
                        ));
                        return Ok(client);
                    }
                    Err(err) => err,
                }
            }
            Err(err) => format!("`kind get kubeconfig --internal` failed: {err}"),
        };
        bail!(
            "cluster {name} was created but its API answers neither at the address kind published \
             on the Docker host ({external}) nor on the `kind` network ({tried}); in a container \
             (devcontainer, CI `container:` job) connect it to kind's network (`docker network \
             connect kind $(hostname)`), and with a remote DOCKER_HOST run where Docker runs"
        )
    }

    /// Saves kind's logs of a cluster that failed, and says where (or why not).
    async fn save_creation_logs(&self, cluster: &str) -> String {
        let dir = self.work_dir.join("logs").join(cluster);
        let result = self.export_logs_into(cluster, &dir).await;
        export_outcome(&dir, result)
    }

    /// `kind export logs <dir> --name <cluster>`, within two minutes.
    async fn export_logs_into(&self, cluster: &str, dir: &Path) -> Result<(), String> {
        let export = self.kind_command().args([
            "export",
            "logs",
            &dir.display().to_string(),
            "--name",
            cluster,
        ]);
        let result = export.timeout(Duration::from_secs(120)).run().await;
        result.map(drop).map_err(|e| e.to_string())
    }

    /// With `CHAOS_REUSE=1`: adopts the cluster `name` if an earlier run left it (its owner is
    /// gone, or it was kept) and it is healthy. `None`: there is none to adopt (an unhealthy one is
    /// deleted first).
    async fn try_reuse(
        &self,
        name: &str,
        topology: &Topology,
        images: &[NodeImage],
    ) -> anyhow::Result<Option<Provisioned>> {
        let survey = list_clusters_with(&self.kind, &self.records).await?;
        let Some(listing) = survey.clusters.into_iter().find(|l| l.name == name) else {
            return Ok(None);
        };
        if let Some(corrupt) = listing.corrupt {
            return Err(corrupt.into());
        }
        let Some(record) = listing.record else {
            bail!(
                "a kind cluster named {name} exists but this project did not make it; delete it or unset CHAOS_REUSE"
            );
        };
        if !record.kept && record.owner_state() == OwnerState::Running {
            bail!(
                "cluster {name} is in use by another run (pid {}); CHAOS_REUSE shares a cluster between runs, not at once",
                record.pid
            );
        }
        let kubeconfig = record
            .kubeconfig
            .clone()
            .unwrap_or_else(|| self.kubeconfig_path(name));
        self.records.write(&OwnerRecord::for_this_process(
            name,
            "kind",
            Some(kubeconfig.clone()),
        ))?;
        let nodes = nodes_of(name, topology, images);
        let healthy = async {
            let client = self.client(name, &kubeconfig).await?;
            health::wait_healthy(client.clone(), &nodes, self.health_timeout()).await?;
            anyhow::Ok(client)
        };
        match healthy.await {
            Ok(client) => Ok(Some(self.provisioned(name, client, nodes, true).await?)),
            Err(err) => {
                say(format!(
                    "cluster {name} left by an earlier run is not healthy ({err:#}); recreating it"
                ));
                self.delete_cluster(name).await?;
                Ok(None)
            }
        }
    }

    /// The cluster as handed out; with several control planes, their addresses of now, which
    /// the check after each heal compares against ([`nodes::moved_control_planes`]).
    async fn provisioned(
        &self,
        name: &str,
        client: kube::Client,
        nodes: Vec<NodeInfo>,
        reused: bool,
    ) -> anyhow::Result<Provisioned> {
        let ledger = Arc::new(FaultLedger::new(Docker::new()));
        let control_planes: Vec<String> = nodes
            .iter()
            .filter(|n| n.role == chaos_topology::Role::ControlPlane)
            .map(|n| n.name.clone())
            .collect();
        let control_plane_addresses = match control_planes.len() {
            0 | 1 => Vec::new(),
            _ => nodes::control_plane_addresses(&control_planes).await?,
        };
        Ok(Provisioned {
            name: name.to_owned(),
            client,
            nodes,
            reused,
            node_faults: Arc::new(KindNodes {
                ledger,
                control_plane_addresses,
            }),
        })
    }

    async fn delete_cluster(&self, name: &str) -> anyhow::Result<()> {
        let kubeconfig = self.kubeconfig_path(name);
        // Ours, and no kind of ours edits it now (creation has returned).
        clear_stale_lock(&kubeconfig);
        self.kind_command()
            .args([
                "delete",
                "cluster",
                "--name",
                name,
                "--kubeconfig",
                &kubeconfig.display().to_string(),
            ])
            .timeout(Duration::from_secs(120))
            .run()
            .await
            .with_context(|| {
                format!(
                    "remove it by hand with `kind delete cluster --name {name} --kubeconfig {}`",
                    kubeconfig.display()
                )
            })?;
        let _ = std::fs::remove_file(&kubeconfig);
        self.records.remove(name)
    }
}

impl Provider for KindProvider {
    fn name(&self) -> &'static str {
        "kind"
    }

    fn memory_per_cluster(&self, topology: &Topology) -> u64 {
        // kubeadm asks for 2 GB per node; an idle kind control plane uses about 1 GB, a worker
        // about 300 MB (kind #1407 and component measurements in the notes).
        let masters = topology.masters() as u64;
        let workers = topology.workers() as u64;
        (masters * 1024 + workers * 300) << 20
    }

    fn health_timeout(&self) -> Duration {
        // A node brought back by a heal needs its kubelet to post Ready again.
        Duration::from_secs(120)
    }

    fn create<'a>(
        &'a self,
        name: &'a str,
        topology: &'a Topology,
    ) -> BoxFuture<'a, anyhow::Result<Provisioned>> {
        Box::pin(async move {
            let plan = self.plan(name, topology)?;
            if self.reuse
                && let Some(reused) = self.try_reuse(name, topology, &plan.0).await?
            {
                return Ok(reused);
            }
            // Another cluster of this name (a concurrent run's, or one made by hand) is never
            // ours to delete, not even after our own creation failed.
            let survey = list_clusters_with(&self.kind, &self.records).await?;
            if survey.clusters.iter().any(|l| l.name == name) {
                return Err(NameTaken(name.to_owned()).into());
            }
            let created = self.create_cluster(name, topology, plan).await;
            if let Err(err) = &created
                && !err.is::<NameTaken>()
            {
                // Nothing of a failed creation is left behind.
                if let Err(err) = self.delete_cluster(name).await {
                    say(format!(
                        "could not clean up after the failed creation of {name}: {err:#}"
                    ));
                }
            }
            created
        })
    }

    fn destroy<'a>(&'a self, cluster: &'a Provisioned) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(self.delete_cluster(&cluster.name))
    }

    fn discard<'a>(&'a self, name: &'a str) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            // `create_cluster` writes this process's record before kind runs: without one, the
            // creation stopped before it made anything, and a cluster of that name is another's.
            // Under nextest the record names the nextest process (`ownership::set_run_owner`).
            let (pid, _) = ownership::run_owner();
            let ours = self
                .records
                .all()
                .iter()
                .any(|r| r.cluster == name && r.pid == pid);
            if !ours {
                return Ok(());
            }
            // kind's process group was killed with the creation, but a `docker run` the daemon
            // had already taken still makes its container: delete until none is left.
            let mut rounds = 0;
            loop {
                self.delete_cluster(name).await?;
                tokio::time::sleep(Duration::from_secs(2)).await;
                let left = Cmd::new("docker")
                    .args(["ps", "-aq", "--filter"])
                    .arg(format!("label={}={name}", docker::CLUSTER_LABEL))
                    .run()
                    .await?;
                rounds += 1;
                match (left.stdout.trim().is_empty(), rounds) {
                    (true, _) => return Ok(()),
                    (false, 5) => bail!(
                        "containers of {name} keep appearing: remove them with `kind delete \
                         cluster --name {name}`"
                    ),
                    (false, _) => {}
                }
            }
        })
    }

    fn cluster_name(&self, topology: &Topology) -> String {
        let label = crate::namespace::dns_label_part(&topology.label(), 27);
        match self.reuse {
            // The same topology, images and timings: the same name, run after run.
            true => {
                let images: Vec<String> = self
                    .node_images(topology)
                    .map(|i| i.into_iter().map(|i| i.image).collect())
                    .unwrap_or_default();
                let identity = format!(
                    "{}|{}|{}",
                    topology.label(),
                    images.join(","),
                    self.options.fast_failure_detection
                );
                let hash = crate::hash::stable_hash(&identity);
                format!("chaos-{label}-{:04x}", hash as u16)
            }
            // 24 random bits: two concurrent runs of one topology collide once in ~16 million
            // (and a collision is refused, never deleted: `NameTaken`). More would pass kind's
            // hostname limit (`config::check_cluster_name`).
            false => format!("chaos-{label}-{:06x}", rand::random::<u32>() & 0xff_ffff),
        }
    }

    fn reuses(&self) -> bool {
        self.reuse
    }

    fn keep(&self, cluster: &Provisioned) -> anyhow::Result<()> {
        let mut record = OwnerRecord::for_this_process(
            &cluster.name,
            "kind",
            Some(self.kubeconfig_path(&cluster.name)),
        );
        record.kept = true;
        self.records.write(&record)
    }

    /// `kind export logs` of the cluster into `dir`: every node's journal, kubelet and
    /// container logs, and `docker inspect` (kind `pkg/cluster/internal/providers/docker/provider.go`,
    /// `CollectLogs`). Partly saved logs are kept, and the error says so.
    fn export_logs<'a>(
        &'a self,
        cluster: &'a Provisioned,
        dir: &'a Path,
    ) -> BoxFuture<'a, anyhow::Result<Option<PathBuf>>> {
        Box::pin(async move {
            match self.export_logs_into(&cluster.name, dir).await {
                Ok(()) => Ok(Some(dir.to_path_buf())),
                Err(err) => bail!("{}", export_outcome(dir, Err(err))),
            }
        })
    }

    fn shareable(&self) -> bool {
        // Another process reaches a cluster through the kubeconfig `create` wrote on disk.
        true
    }

    fn adopt<'a>(
        &'a self,
        name: &'a str,
        topology: &'a Topology,
    ) -> BoxFuture<'a, anyhow::Result<Provisioned>> {
        Box::pin(async move {
            let images = self.node_images(topology)?;
            let kubeconfig = self.kubeconfig_path(name);
            let client = self.client(name, &kubeconfig).await.with_context(|| {
                format!("taking over cluster {name}, made by another test process of this run")
            })?;
            let nodes = nodes_of(name, topology, &images);
            health::wait_healthy(client.clone(), &nodes, self.health_timeout())
                .await
                .with_context(|| format!("cluster {name}, left idle by another test process"))?;
            self.provisioned(name, client, nodes, true).await
        })
    }

    fn destroy_by_name<'a>(&'a self, name: &'a str) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(self.delete_cluster(name))
    }

    fn kubeconfig_of(&self, name: &str) -> Option<PathBuf> {
        Some(self.kubeconfig_path(name))
    }

    fn how_to_reach(&self, cluster: &Provisioned) -> String {
        let kubeconfig = self.kubeconfig_path(&cluster.name);
        format!(
            "kept kind cluster {name}: kubectl --kubeconfig {kc} get nodes; remove it with \
             `kind delete cluster --name {name}`",
            name = cluster.name,
            kc = kubeconfig.display()
        )
    }
}

/// Whether the API behind `client` answers `/version` within `within` (the server is up when
/// kind returns: kind waits for `kubeadm init`); the last error if not.
async fn answers(client: &kube::Client, within: Duration) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let attempt =
            tokio::time::timeout(Duration::from_secs(5), client.apiserver_version()).await;
        let error = match attempt {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(err)) => err.to_string(),
            Err(_) => "no answer within 5s".to_owned(),
        };
        if tokio::time::Instant::now() >= deadline {
            return Err(error);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A cluster name kind already has: creating it is refused, and it is left alone.
#[derive(Debug, thiserror::Error)]
#[error(
    "a kind cluster named {0} already exists (another run's, or made by hand); it is left alone: \
     delete it with `kind delete cluster --name {0}` if it is a leftover, or run again for another name"
)]
struct NameTaken(String);

/// What to say of `kind export logs` into `dir`. kind runs every collection at once and fails
/// if any failed (`CollectLogs` in kind `pkg/cluster/internal/providers/docker/provider.go`:
/// `errors.AggregateConcurrent`), having written what the others collected: logs on disk are
/// reported as partly saved, not lost.
fn export_outcome(dir: &Path, result: Result<(), String>) -> String {
    let saved = std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some());
    match (result, saved) {
        (Ok(()), _) => format!("kind's logs of the cluster are in {}", dir.display()),
        (Err(err), true) => format!(
            "kind's logs of the cluster are partly saved in {} (`kind export logs` failed: {err})",
            dir.display()
        ),
        (Err(err), false) => format!("kind's logs could not be saved: {err}"),
    }
}

/// The nodes kind makes for `topology`, named as kind names them, at their images' versions.
fn nodes_of(cluster: &str, topology: &Topology, images: &[NodeImage]) -> Vec<NodeInfo> {
    let specs = topology
        .nodes()
        .iter()
        .zip(node_names(topology, cluster))
        .zip(images);
    specs
        .map(|((spec, name), image)| NodeInfo {
            name,
            role: spec.role,
            version: spec.version,
            kubelet_version: image.kubelet_version.clone(),
        })
        .collect()
}

/// `CHAOS_KIND_DEFAULT_TIMINGS=1` keeps Kubernetes' node-failure timings instead of the fast ones.
fn config_options_from_env() -> anyhow::Result<ConfigOptions> {
    let keep_defaults = crate::harness::settings::flag("CHAOS_KIND_DEFAULT_TIMINGS")?;
    Ok(ConfigOptions {
        fast_failure_detection: !keep_defaults,
    })
}

/// `$CHAOS_KIND`, else `kind` on PATH, else the copy `scripts/install-kind.sh` caches: the one
/// way the runtime and `cargo chaos` find kind.
pub fn kind_binary() -> String {
    if let Some(path) = std::env::var_os("CHAOS_KIND").filter(|p| !p.is_empty()) {
        return path.to_string_lossy().into_owned();
    }
    let on_path = std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join("kind").is_file()));
    let cached = crate::dirs::cache_dir().join("kind/usr/bin/kind");
    match (on_path, cached.is_file()) {
        (false, true) => cached.display().to_string(),
        _ => "kind".to_owned(),
    }
}

/// A kind command line, with kind's node provider pinned to Docker ([`host::KIND_PROVIDER`]).
fn kind_cmd(kind: &str) -> Cmd {
    Cmd::new(kind).env(host::KIND_PROVIDER_VAR, host::KIND_PROVIDER)
}

/// A cluster kind knows, and what this project knows of it.
pub struct ClusterListing {
    /// As `kind get clusters` prints it.
    pub name: String,
    /// `None`: not made by this project (or its record was lost), or its record is corrupt.
    pub record: Option<OwnerRecord>,
    /// Its record, when that is not a readable record.
    pub corrupt: Option<CorruptRecord>,
}

impl ClusterListing {
    /// What `gc` does with it (and `ls` says): the one decision, [`Disposition::of`].
    pub fn disposition(&self) -> Disposition {
        Disposition::of(self.record.as_ref(), self.corrupt.is_some())
    }
}

/// What `cargo chaos ls` shows and `cargo chaos gc` acts on.
pub struct Survey {
    /// Every cluster kind has, with this project's record of it.
    pub clusters: Vec<ClusterListing>,
    /// Records of clusters kind no longer has; `gc` forgets those whose
    /// [`Disposition::of`] is [`Disposition::Remove`] (a running owner may still be creating it).
    pub stale: Vec<OwnerRecord>,
    /// Record files of clusters kind no longer has that are not records.
    pub corrupt: Vec<CorruptRecord>,
}

/// Every kind cluster, with this project's record of it where there is one; records of clusters
/// kind no longer has are listed too (their cluster is gone).
pub async fn list_clusters(records: &Records) -> anyhow::Result<Survey> {
    list_clusters_with(&kind_binary(), records).await
}

async fn list_clusters_with(kind: &str, records: &Records) -> anyhow::Result<Survey> {
    let names = kind_clusters(kind).await?;
    let Scan {
        records: all,
        corrupt,
    } = records.scan();
    let clusters = names
        .iter()
        .map(|name| ClusterListing {
            name: name.clone(),
            record: all.iter().find(|r| &r.cluster == name).cloned(),
            corrupt: corrupt.iter().find(|c| &c.cluster == name).cloned(),
        })
        .collect();
    let stale = all
        .into_iter()
        .filter(|r| !names.contains(&r.cluster))
        .collect();
    let corrupt = corrupt
        .into_iter()
        .filter(|c| !names.contains(&c.cluster))
        .collect();
    Ok(Survey {
        clusters,
        stale,
        corrupt,
    })
}

/// `kind get clusters` (which reads no kubeconfig: it lists node containers by kind's label).
async fn kind_clusters(kind: &str) -> anyhow::Result<Vec<String>> {
    let out = kind_cmd(kind)
        .args(["get", "clusters"])
        .install_hint(images::INSTALL_HINT)
        .run()
        .await?;
    Ok(out
        .stdout
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect())
}

/// What `gc` did: everything it removed, and everything it could not, each with what to run by
/// hand.
#[derive(Debug, Default)]
pub struct GcReport {
    /// Clusters deleted.
    pub removed: Vec<String>,
    /// Records forgotten: kind no longer had their cluster.
    pub forgotten: Vec<String>,
    /// Containers of the project's own tests removed.
    pub containers: Vec<String>,
    /// What could not be removed: what, why, and what to run by hand.
    pub failed: Vec<GcFailure>,
    /// Records that could not be read, so whose clusters were left alone.
    pub corrupt: Vec<CorruptRecord>,
}

/// A leftover `gc` could not remove.
#[derive(Debug)]
pub struct GcFailure {
    /// The cluster or container.
    pub what: String,
    /// Why not.
    pub error: String,
    /// What to run by hand.
    pub by_hand: String,
}

/// Deletes the clusters this project made whose owner is gone (and that were not kept), forgets
/// records of clusters kind no longer has, and removes the containers of the project's own tests
/// whose owner is gone: what [`ClusterListing::disposition`] marks [`Disposition::Remove`], and
/// only that. One failure does not stop the rest; each is in the report. `Err` only when kind
/// cannot list its clusters.
pub async fn remove_leftovers(records: &Records) -> anyhow::Result<GcReport> {
    let kind = kind_binary();
    let survey = list_clusters_with(&kind, records).await?;
    let mut report = GcReport::default();
    for listing in &survey.clusters {
        if let Some(corrupt) = &listing.corrupt {
            report.corrupt.push(corrupt.clone());
        }
        let (Disposition::Remove, Some(record)) = (listing.disposition(), &listing.record) else {
            continue;
        };
        match delete_leftover(&kind, records, record).await {
            Ok(()) => report.removed.push(record.cluster.clone()),
            Err(failure) => report.failed.push(failure),
        }
    }
    for record in &survey.stale {
        if Disposition::of(Some(record), false) != Disposition::Remove {
            continue;
        }
        match records.remove(&record.cluster) {
            Ok(()) => report.forgotten.push(record.cluster.clone()),
            Err(err) => report.failed.push(GcFailure {
                what: record.cluster.clone(),
                error: format!("{err:#}"),
                by_hand: format!("rm {}", records.path(&record.cluster).display()),
            }),
        }
    }
    report.corrupt.extend(survey.corrupt);
    // The lease records of nextest runs that ended (their clusters went above).
    if let Some(state_dir) = records.dir().parent() {
        crate::harness::lease_records::remove_ended_runs(state_dir);
    }
    match ownership::remove_leftover_containers().await {
        Ok((removed, failed)) => {
            report.containers = removed;
            report.failed.extend(failed.into_iter().map(|(name, error)| GcFailure {
                by_hand: format!("docker rm --force --volumes {name}"),
                what: name,
                error,
            }));
        }
        Err(err) => report.failed.push(GcFailure {
            what: "the containers of the project's own tests".to_owned(),
            error: format!("{err:#}"),
            by_hand: format!(
                "docker ps --all --filter label={} (and `docker rm --force --volumes` those whose owner pid is gone)",
                ownership::OWNER_PID_LABEL
            ),
        }),
    }
    Ok(report)
}

/// Deletes one leftover cluster, against its own kubeconfig: never the user's `$KUBECONFIG`,
/// whose stale `.lock` (or any other trouble) would make `kind delete cluster` fail after it
/// deleted the nodes (kind `pkg/cluster/internal/delete/delete.go`: the nodes go, then the
/// kubeconfig error is returned).
async fn delete_leftover(
    kind: &str,
    records: &Records,
    record: &OwnerRecord,
) -> Result<(), GcFailure> {
    let name = &record.cluster;
    // A record without a kubeconfig (older ones): a file of our own that does not exist, which
    // kind reads as empty and leaves unwritten (kind `.../kubeconfig/read.go`, `remove.go`).
    let kubeconfig = record
        .kubeconfig
        .clone()
        .unwrap_or_else(|| records.dir().join(format!("{name}.kubeconfig")));
    clear_stale_lock(&kubeconfig);
    let by_hand = format!(
        "kind delete cluster --name {name} --kubeconfig {}; then `cargo chaos gc` forgets its record",
        kubeconfig.display()
    );
    let deleted = kind_cmd(kind)
        .args(["delete", "cluster", "--name", name, "--kubeconfig"])
        .arg(kubeconfig.display().to_string())
        .timeout(Duration::from_secs(120))
        .run()
        .await;
    if let Err(err) = deleted {
        // kind deletes the nodes before it reports a kubeconfig error: gone is gone.
        let still_there = kind_clusters(kind)
            .await
            .map(|names| names.contains(name))
            .unwrap_or(true);
        if still_there {
            return Err(GcFailure {
                what: name.clone(),
                error: err.to_string(),
                by_hand,
            });
        }
    }
    let _ = std::fs::remove_file(&kubeconfig);
    records.remove(name).map_err(|err| GcFailure {
        what: name.clone(),
        error: format!("{err:#}"),
        by_hand: format!("rm {}", records.path(name).display()),
    })
}

/// The Node objects kind's kubelets would register for cluster `cluster` made from
/// `kind_config` (a config as [`config::render`] writes it: one `- role:` entry per node, each
/// with its `image:`), Ready, at their images' versions: what a fake `kind` in the project's own
/// tests serves through the sim. Named as kind names nodes ([`node_names`]).
pub fn fake_node_objects(
    cluster: &str,
    kind_config: &str,
) -> anyhow::Result<Vec<serde_json::Value>> {
    let mut roles = Vec::new();
    let mut versions = Vec::new();
    for line in kind_config.lines().map(str::trim) {
        if let Some(role) = line.strip_prefix("- role:") {
            roles.push(match role.trim() {
                "control-plane" => chaos_topology::Role::ControlPlane,
                _ => chaos_topology::Role::Worker,
            });
        } else if let Some(image) = line.strip_prefix("image:") {
            let image = image.trim().trim_matches('"');
            let without_digest = image.split('@').next().unwrap_or(image);
            let tag = without_digest.rsplit(':').next().unwrap_or_default();
            versions.push(tag.to_owned());
        }
    }
    if roles.len() != versions.len() || roles.is_empty() {
        bail!(
            "the kind config has {} node(s) and {} image(s): not a config this project renders",
            roles.len(),
            versions.len()
        );
    }
    let (mut masters, mut workers) = (0, 0);
    roles
        .iter()
        .zip(versions)
        .enumerate()
        .map(|(index, (role, kubelet_version))| {
            let (base, n) = match role {
                chaos_topology::Role::ControlPlane => ("control-plane", &mut masters),
                chaos_topology::Role::Worker => ("worker", &mut workers),
            };
            *n += 1;
            let name = match *n {
                1 => format!("{cluster}-{base}"),
                n => format!("{cluster}-{base}{n}"),
            };
            let version = kubelet_version.trim_start_matches('v').parse()?;
            let node = NodeInfo {
                name,
                role: *role,
                version,
                kubelet_version,
            };
            Ok(serde_json::to_value(crate::provider::sim::node_object(
                &node, index,
            ))?)
        })
        .collect()
}

/// Removes `<kubeconfig>.lock` (kind takes it with `O_CREATE|O_EXCL` and fails while it exists:
/// kind `pkg/cluster/internal/kubeconfig/internal/kubeconfig/lock.go`). Only for a kubeconfig of
/// our own, one per cluster, when no kind process of ours is editing it: the lock is then one a
/// killed kind left behind.
fn clear_stale_lock(kubeconfig: &Path) {
    let mut lock = kubeconfig.as_os_str().to_owned();
    lock.push(".lock");
    let _ = std::fs::remove_file(lock);
}

#[cfg(test)]
mod tests {
    use super::*;
    use chaos_topology::TopologySpec;

    /// A `kind` that logs its arguments, keeps the config it was given, and fails to create.
    const FAILING_KIND: &str = r#"#!/bin/sh
dir=$(dirname "$0")
echo "$*" >> "$dir/calls"
case "$1 $2" in
  "version "*) echo "kind v0.33.0 go1.27.2 linux/amd64" ;;
  "create cluster") cat > "$dir/config.yaml"
     echo "Creating cluster ..." >&2
     echo "ERROR: failed to create cluster: node image could not be pulled" >&2
     exit 1 ;;
  "export logs") mkdir -p "$3" ;;
  "delete cluster") echo "Deleting cluster ..." >&2 ;;
esac
"#;

    /// A `kind` that "creates" a cluster by writing a kubeconfig that points at the server whose
    /// URL is in its directory's `server` file, and logs what it is asked.
    const WORKING_KIND: &str = r#"#!/bin/sh
dir=$(dirname "$0")
echo "$*" >> "$dir/calls"
case "$1 $2" in
  "create cluster")
     cat > /dev/null
     while [ $# -gt 0 ]; do
       case "$1" in --name) name=$2 ;; --kubeconfig) kubeconfig=$2 ;; esac
       shift
     done
     echo "Creating cluster \"$name\" ..." >&2
     server=$(cat "$dir/server")
     echo "$name" >> "$dir/clusters"
     printf 'apiVersion: v1\nkind: Config\nclusters: [{name: kind-%s, cluster: {server: "%s"}}]\nusers: [{name: kind-%s, user: {}}]\ncontexts: [{name: kind-%s, context: {cluster: kind-%s, user: kind-%s}}]\ncurrent-context: kind-%s\n' \
       "$name" "$server" "$name" "$name" "$name" "$name" "$name" > "$kubeconfig"
     ;;
  "export logs") mkdir -p "$3" ;;
  "delete cluster")
     while [ $# -gt 0 ]; do case "$1" in --name) name=$2 ;; esac; shift; done
     grep -vx "$name" "$dir/clusters" > "$dir/clusters.new" 2>/dev/null; mv "$dir/clusters.new" "$dir/clusters"
     echo "Deleting cluster ..." >&2 ;;
  "get clusters") cat "$dir/clusters" 2>/dev/null || true ;;
esac
"#;

    /// As [`WORKING_KIND`], but the kubeconfig it writes points at a closed port, and
    /// `get kubeconfig --internal` prints one that reaches the server (or, with a `no-internal`
    /// file in its directory, one that does not).
    fn unreachable_kind() -> String {
        WORKING_KIND
            .replace(
                "server=$(cat \"$dir/server\")",
                "server=http://127.0.0.1:9",
            )
            .replace(
                "  \"get clusters\")",
                r#"  "get kubeconfig")
     while [ $# -gt 0 ]; do case "$1" in --name) name=$2 ;; esac; shift; done
     server=$(cat "$dir/server"); [ -e "$dir/no-internal" ] && server=http://127.0.0.1:9
     printf 'apiVersion: v1\nkind: Config\nclusters: [{name: kind-%s, cluster: {server: "%s"}}]\nusers: [{name: kind-%s, user: {}}]\ncontexts: [{name: kind-%s, context: {cluster: kind-%s, user: kind-%s}}]\ncurrent-context: kind-%s\n' \
       "$name" "$server" "$name" "$name" "$name" "$name" "$name" ;;
  "get clusters")"#,
            )
    }

    #[tokio::test]
    async fn an_unreachable_published_api_falls_back_to_kinds_internal_kubeconfig_or_fails_at_once()
    {
        let dir = std::env::temp_dir().join(format!("chaos-kind-internal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let kind = unreachable_kind();
        assert!(kind.contains("get kubeconfig"), "the fake kind was built");
        let provider = provider_with(&kind, &dir);
        let topology = topology("1.35", 1, &[]);
        let name = "chaos-fake-internal";
        serve(sim_with_nodes(&provider, name, &topology), &dir).await;

        let cluster = provider.create(name, &topology).await.expect("created");
        let calls = calls(&dir);
        assert!(
            calls
                .iter()
                .any(|c| c.starts_with("get kubeconfig --internal --name chaos-fake-internal")),
            "{calls:?}"
        );
        provider.destroy(&cluster).await.unwrap();

        std::fs::write(dir.join("no-internal"), "").unwrap();
        let started = std::time::Instant::now();
        let err = provider
            .create("chaos-fake-nowhere", &topology)
            .await
            .err()
            .expect("unreachable");
        let message = format!("{err:#}");
        assert!(
            message.contains("answers neither at the address kind published"),
            "{message}"
        );
        assert!(message.contains("docker network connect kind"), "{message}");
        assert!(
            started.elapsed() < READY_TIMEOUT / 10,
            "at once, not after the readiness wait"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Serves `server` over HTTP on loopback and tells the fake kind where.
    async fn serve(server: chaos_sim::ApiServer, dir: &Path) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        std::fs::write(dir.join("server"), url).unwrap();
        tokio::spawn(server.serve_http(listener));
    }

    #[tokio::test]
    async fn a_created_cluster_is_reached_through_its_kubeconfig_waited_for_and_deleted() {
        let dir = std::env::temp_dir().join(format!("chaos-kind-ok-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let provider = provider_with(WORKING_KIND, &dir);
        let topology = topology("1.35", 2, &["1.34"]);
        let name = "chaos-fake-ok";

        // The "cluster": the sim's API over HTTP, with the nodes kind would have made.
        serve(sim_with_nodes(&provider, name, &topology), &dir).await;

        let cluster = provider.create(name, &topology).await.expect("created");
        let nodes: Vec<(&str, &str)> = cluster
            .nodes
            .iter()
            .map(|n| (n.name.as_str(), n.kubelet_version.as_str()))
            .collect();
        assert_eq!(
            nodes,
            [
                ("chaos-fake-ok-control-plane", "v1.35.8"),
                ("chaos-fake-ok-worker", "v1.34.11"),
                ("chaos-fake-ok-worker2", "v1.34.11"),
            ]
        );
        let version = cluster
            .client
            .apiserver_version()
            .await
            .expect("the client reaches the API");
        assert_eq!(version.git_version, "v1.35.8");
        let kubeconfig = provider.kubeconfig_path(name);
        assert!(
            kubeconfig.is_file(),
            "the kubeconfig is kept under the target dir"
        );
        let records = provider.records.all();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].kubeconfig.as_deref(), Some(kubeconfig.as_path()));
        assert!(
            docker_ledger(&*cluster.node_faults).is_some(),
            "kind's faults go through Docker"
        );

        // A failed test's artifacts: `kind export logs` of this cluster into the folder given.
        let logs = dir.join("artifacts").join("kind-logs");
        let exported = provider
            .export_logs(&cluster, &logs)
            .await
            .expect("exported");
        assert_eq!(exported.as_deref(), Some(logs.as_path()));
        assert!(
            calls(&dir).contains(&format!("export logs {} --name {name}", logs.display())),
            "{:?}",
            calls(&dir)
        );
        assert!(logs.is_dir());
        assert_eq!(provider.no_container_logs(), None, "kind runs containers");

        provider.destroy(&cluster).await.expect("deleted");
        let calls = std::fs::read_to_string(dir.join("calls")).unwrap();
        let last = calls.lines().last().unwrap();
        assert!(
            last.starts_with(&format!("delete cluster --name {name}")),
            "{calls}"
        );
        assert!(!kubeconfig.exists(), "the kubeconfig goes with the cluster");
        assert!(provider.records.all().is_empty(), "and so does its record");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A sim with the nodes kind would make for `topology` as cluster `name`.
    fn sim_with_nodes(
        provider: &KindProvider,
        name: &str,
        topology: &Topology,
    ) -> chaos_sim::ApiServer {
        let server = chaos_sim::ApiServer::new("v1.35.8");
        let images = provider.node_images(topology).unwrap();
        for (index, node) in nodes_of(name, topology, &images).iter().enumerate() {
            let object = crate::provider::sim::node_object(node, index);
            server
                .create(serde_json::to_value(object).unwrap())
                .unwrap();
        }
        server
    }

    #[tokio::test]
    async fn another_process_adopts_a_cluster_through_its_kubeconfig_on_disk_and_removes_it_by_name()
     {
        let dir = std::env::temp_dir().join(format!("chaos-kind-adopt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let creator = provider_with(WORKING_KIND, &dir);
        let topology = topology("1.35", 1, &[]);
        let name = "chaos-fake-adopt";
        serve(sim_with_nodes(&creator, name, &topology), &dir).await;
        let created = creator.create(name, &topology).await.expect("created");
        assert!(!created.reused);

        // Another test process of the run: its own provider, the same work dir and records.
        let other = provider_with(WORKING_KIND, &dir);
        assert!(other.shareable());
        assert_eq!(
            other.kubeconfig_of(name),
            Some(creator.kubeconfig_path(name))
        );
        let adopted = other.adopt(name, &topology).await.expect("adopted");
        assert!(adopted.reused);
        assert_eq!(adopted.nodes, created.nodes);
        assert_eq!(
            adopted
                .client
                .apiserver_version()
                .await
                .unwrap()
                .git_version,
            "v1.35.8"
        );
        assert_eq!(
            calls(&dir)
                .iter()
                .filter(|c| c.starts_with("create cluster"))
                .count(),
            1
        );

        other.destroy_by_name(name).await.expect("removed");
        assert!(
            calls(&dir)
                .last()
                .unwrap()
                .starts_with(&format!("delete cluster --name {name}"))
        );
        assert!(other.records.all().is_empty(), "its record goes with it");
        let err = other
            .adopt("chaos-fake-never", &topology)
            .await
            .err()
            .expect("none");
        assert!(format!("{err:#}").contains("chaos-fake-never"), "{err:#}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn reuse_adopts_a_kept_cluster_by_its_stable_name_and_refuses_one_in_use() {
        let dir = std::env::temp_dir().join(format!("chaos-kind-reuse-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut first_run = provider_with(WORKING_KIND, &dir);
        first_run.reuse = true;
        let topology = topology("1.35", 1, &[]);
        let name = first_run.cluster_name(&topology);
        assert_eq!(name, first_run.cluster_name(&topology), "a stable name");
        assert_ne!(
            name,
            first_run.cluster_name(&super::tests::topology("1.35", 2, &[]))
        );
        serve(sim_with_nodes(&first_run, &name, &topology), &dir).await;

        let created = first_run.create(&name, &topology).await.expect("created");
        assert!(!created.reused);
        // Still owned by a running run (this one): not to be shared at the same time.
        let mut second_run = provider_with(WORKING_KIND, &dir);
        second_run.reuse = true;
        let err = second_run
            .create(&name, &topology)
            .await
            .err()
            .expect("in use");
        assert!(
            format!("{err:#}").contains("is in use by another run"),
            "{err:#}"
        );

        // The first run ends and keeps it for reuse: the next run adopts it, healthy.
        first_run.keep(&created).unwrap();
        let adopted = second_run.create(&name, &topology).await.expect("adopted");
        assert!(adopted.reused);
        assert_eq!(
            adopted
                .client
                .apiserver_version()
                .await
                .unwrap()
                .git_version,
            "v1.35.8"
        );
        let calls = std::fs::read_to_string(dir.join("calls")).unwrap();
        assert_eq!(
            calls.matches("create cluster").count(),
            1,
            "created once: {calls}"
        );
        let records = second_run.records.all();
        assert_eq!(
            (records.len(), records[0].kept),
            (1, false),
            "owned by the run that adopted it"
        );
        second_run.destroy(&adopted).await.unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn nodes_that_never_become_ready_fail_the_creation_and_leave_nothing() {
        let dir = std::env::temp_dir().join(format!("chaos-kind-notready-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut provider = provider_with(WORKING_KIND, &dir);
        provider.ready_timeout = Duration::from_millis(500);
        // An API with no nodes at all: kind "succeeds", but no node ever shows up Ready.
        serve(chaos_sim::ApiServer::new("v1.35.8"), &dir).await;

        let topology = topology("1.35", 1, &[]);
        let err = provider
            .create("chaos-fake-notready", &topology)
            .await
            .err()
            .expect("fails");
        let message = format!("{err:#}");
        assert!(
            message.contains("was created but its nodes did not all become Ready"),
            "{message}"
        );
        assert!(
            message.contains("chaos-fake-notready-control-plane missing"),
            "{message}"
        );
        let calls = std::fs::read_to_string(dir.join("calls")).unwrap();
        assert!(calls.contains("export logs"), "{calls}");
        let last = calls.lines().last().unwrap();
        assert!(
            last.starts_with("delete cluster --name chaos-fake-notready"),
            "{calls}"
        );
        assert!(provider.records.all().is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A fresh directory for one test, with the fake kind in it.
    /// A `kind` that logs its calls, lists `chaos-taken` as an existing cluster, and fails to
    /// create with kind's own message for a name that exists.
    const TAKEN_KIND: &str = r#"#!/bin/sh
dir=$(dirname "$0")
echo "$*" >> "$dir/calls"
echo "$KIND_EXPERIMENTAL_PROVIDER" > "$dir/provider"
case "$1 $2" in
  "get clusters") echo chaos-taken ;;
  "create cluster") cat > /dev/null
     echo "ERROR: failed to create cluster: node(s) already exist for a cluster with the name \"chaos-raced\"" >&2
     exit 1 ;;
  "export logs") mkdir -p "$3" ;;
esac
"#;

    fn calls(dir: &Path) -> Vec<String> {
        std::fs::read_to_string(dir.join("calls"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[tokio::test]
    async fn a_name_kind_already_has_is_refused_and_that_cluster_left_alone() {
        let dir = std::env::temp_dir().join(format!("chaos-kind-taken-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let provider = provider_with(TAKEN_KIND, &dir);
        let topology = topology("1.35", 1, &[]);

        // Listed before we create: refused, nothing created or deleted.
        let err = provider
            .create("chaos-taken", &topology)
            .await
            .err()
            .expect("refused");
        assert!(err.is::<NameTaken>(), "{err:#}");
        assert!(
            err.to_string()
                .starts_with("a kind cluster named chaos-taken already exists"),
            "{err}"
        );
        assert_eq!(calls(&dir), ["get clusters"]);
        let provider_seen = std::fs::read_to_string(dir.join("provider")).unwrap();
        assert_eq!(
            provider_seen.trim(),
            "docker",
            "kind's node provider is pinned"
        );

        // Made by someone else between our look and kind's: kind refuses, and we delete nothing.
        let err = provider
            .create("chaos-raced", &topology)
            .await
            .err()
            .expect("refused");
        assert!(err.is::<NameTaken>(), "{err:#}");
        let calls = calls(&dir);
        assert!(
            calls
                .iter()
                .any(|c| c.starts_with("create cluster --name chaos-raced")),
            "{calls:?}"
        );
        assert!(
            !calls.iter().any(|c| c.starts_with("delete cluster")),
            "{calls:?}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn versions_this_host_or_kubeadm_cannot_run_are_refused_before_anything_is_created() {
        let (dir, mut provider) = scratch("refused");
        let skew = provider
            .create("chaos-skew", &topology("1.33", 1, &["1.30"]))
            .await
            .err()
            .expect("refused");
        assert!(
            skew.to_string()
                .contains("cannot join a 1.33 control plane"),
            "{skew}"
        );

        provider.cgroup_version = "1".into();
        let cgroups = provider
            .create("chaos-cgroups", &topology("1.35", 1, &[]))
            .await
            .err()
            .expect("refused");
        assert!(cgroups.to_string().contains("cgroup v1"), "{cgroups}");
        // 1.34 still runs on cgroup v1.
        assert!(provider.plan("chaos-ok", &topology("1.34", 1, &[])).is_ok());

        assert_eq!(calls(&dir), Vec::<String>::new(), "kind was never run");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn exported_logs_are_reported_saved_partly_saved_or_lost() {
        let dir = std::env::temp_dir().join(format!("chaos-kind-logs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            export_outcome(&dir, Err("exit status 1".into()))
                .starts_with("kind's logs could not be saved")
        );
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("kind-version.txt"), "v0.33.0").unwrap();
        let partly = export_outcome(&dir, Err("exit status 1".into()));
        assert!(
            partly.starts_with("kind's logs of the cluster are partly saved in"),
            "{partly}"
        );
        assert!(export_outcome(&dir, Ok(())).starts_with("kind's logs of the cluster are in"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn random_names_fit_kinds_hostname_limit_for_the_longest_label() {
        let (dir, provider) = scratch("names");
        let spec = TopologySpec {
            masters: 3,
            workers: 9,
            k8s: "1.29".parse().unwrap(),
            master_versions: vec![],
            worker_versions: ["1.28", "1.27", "1.29"]
                .iter()
                .cycle()
                .take(9)
                .map(|v| v.parse().unwrap())
                .collect(),
        };
        let topology = spec.build().expect("a valid topology");
        assert!(
            topology.label().len() >= 27,
            "a label at the cap: {}",
            topology.label()
        );
        for _ in 0..20 {
            let name = provider.cluster_name(&topology);
            assert_eq!(config::check_cluster_name(&name), Ok(()), "{name}");
            let suffix = name.rsplit('-').next().unwrap();
            assert_eq!(suffix.len(), 6, "24 random bits: {name}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn scratch(test: &str) -> (PathBuf, KindProvider) {
        let dir = std::env::temp_dir().join(format!("chaos-kind-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let provider = provider_with(FAILING_KIND, &dir);
        (dir, provider)
    }

    fn topology(k8s: &str, workers: u32, worker_versions: &[&str]) -> Topology {
        let spec = TopologySpec {
            masters: 1,
            workers,
            k8s: k8s.parse().unwrap(),
            master_versions: vec![],
            worker_versions: worker_versions.iter().map(|v| v.parse().unwrap()).collect(),
        };
        spec.build().unwrap()
    }

    fn provider_with(kind_script: &str, dir: &Path) -> KindProvider {
        let kind = dir.join("kind");
        std::fs::write(&kind, kind_script).unwrap();
        std::process::Command::new("chmod")
            .arg("+x")
            .arg(&kind)
            .status()
            .unwrap();
        KindProvider {
            kind: kind.display().to_string(),
            release: KindRelease {
                major: 0,
                minor: 33,
                patch: 0,
            },
            pins: ImagePins::default(),
            options: ConfigOptions::default(),
            records: Records::at(dir.join("state")),
            work_dir: dir.join("work"),
            ready_timeout: READY_TIMEOUT,
            reach_timeout: Duration::from_secs(2),
            reuse: false,
            warned: Mutex::default(),
            standin: None,
            cgroup_version: "2".into(),
        }
    }

    #[tokio::test]
    async fn a_failed_creation_says_why_keeps_the_logs_and_leaves_nothing() {
        let (dir, provider) = scratch("fail");
        let topology = topology("1.35", 2, &["1.34"]);

        let err = provider
            .create("chaos-fail-test", &topology)
            .await
            .err()
            .expect("creation fails");
        let message = format!("{err:#}");
        assert!(
            message.contains("kind could not create cluster chaos-fail-test"),
            "{message}"
        );
        assert!(
            message.contains("ERROR: failed to create cluster: node image could not be pulled"),
            "{message}"
        );
        assert!(
            message.contains("kind's logs of the cluster are in"),
            "{message}"
        );

        let calls = std::fs::read_to_string(dir.join("calls")).unwrap();
        let calls: Vec<&str> = calls.lines().collect();
        assert_eq!(calls[0], "get clusters", "the name is checked first");
        assert!(
            calls[1].starts_with("create cluster --name chaos-fail-test --config - --retain"),
            "{calls:?}"
        );
        assert!(
            calls.iter().any(|c| c.starts_with("export logs")),
            "{calls:?}"
        );
        assert!(
            calls
                .last()
                .unwrap()
                .starts_with("delete cluster --name chaos-fail-test"),
            "{calls:?}"
        );
        assert!(
            !calls.iter().any(|c| c.contains("--image")),
            "never --image: {calls:?}"
        );

        // kind got one entry per node, each with its own image.
        let config = std::fs::read_to_string(dir.join("config.yaml")).unwrap();
        assert_eq!(
            config.matches("- role: control-plane").count(),
            1,
            "{config}"
        );
        assert_eq!(config.matches("- role: worker").count(), 2, "{config}");
        assert_eq!(
            config.matches("image: kindest/node:v1.34.").count(),
            2,
            "{config}"
        );
        assert_eq!(
            config.matches("image: kindest/node:v1.35.").count(),
            1,
            "{config}"
        );

        assert!(
            provider.records.all().is_empty(),
            "the ownership record is removed with the cluster"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A `kind` whose delete fails, as kind's does, while `<kubeconfig>.lock` exists (kind
    /// `pkg/cluster/internal/kubeconfig/internal/kubeconfig/lock.go`).
    const LOCKING_KIND: &str = r#"#!/bin/sh
dir=$(dirname "$0")
echo "$*" >> "$dir/calls"
kubeconfig=${KUBECONFIG:-$HOME/.kube/config}
while [ $# -gt 0 ]; do case "$1" in --kubeconfig) kubeconfig=$2 ;; esac; shift; done
if [ -e "$kubeconfig.lock" ]; then
  echo "ERROR: failed to lock config file: open $kubeconfig.lock: file exists" >&2; exit 1
fi
"#;

    #[tokio::test]
    async fn a_stale_lock_on_our_own_kubeconfig_does_not_fail_the_delete() {
        let dir = std::env::temp_dir().join(format!("chaos-kind-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let provider = provider_with(LOCKING_KIND, &dir);
        let name = "chaos-locked";
        let kubeconfig = provider.kubeconfig_path(name);
        std::fs::create_dir_all(&provider.work_dir).unwrap();
        provider
            .records
            .write(&OwnerRecord::for_this_process(
                name,
                "kind",
                Some(kubeconfig.clone()),
            ))
            .unwrap();
        // Left by a kind killed while it held the lock (our creation timed out, say).
        let lock = dir.join("work").join(format!("{name}.kubeconfig.lock"));
        std::fs::write(&lock, "").unwrap();

        provider.delete_cluster(name).await.expect("deleted");
        let calls = calls(&dir);
        assert_eq!(
            calls,
            [format!(
                "delete cluster --name {name} --kubeconfig {}",
                kubeconfig.display()
            )]
        );
        assert!(provider.records.all().is_empty(), "its record goes");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn an_unknown_version_fails_before_kind_is_called() {
        let (dir, provider) = scratch("unknown");
        let err = provider
            .create("chaos-unknown", &topology("1.12", 0, &[]))
            .await
            .err()
            .expect("fails");
        assert!(format!("{err:#}").contains("1.12"), "{err:#}");
        let calls = std::fs::read_to_string(dir.join("calls")).unwrap_or_default();
        assert!(
            !calls.contains("create cluster"),
            "nothing was created: {calls}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
