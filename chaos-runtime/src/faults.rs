//! Faults on a test's cluster, the same on every provider: kind hurts node containers through
//! Docker, the sim through its control plane's kubelets. Each fault returns a [`Fault`] handle
//! that undoes it (with [`Fault::undo`], or when dropped), is recorded in the cluster's ledger so
//! that the heal undoes whatever a test left, and is written in the test's timeline.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use k8s_openapi::api::core::v1::{Node as NodeObject, Pod};
use kube::api::{DeleteParams, EvictParams, ListParams, Patch, PatchParams};
use kube::{Api, Client, ResourceExt};

use crate::docker::FaultId as DockerFaultId;
use crate::provider::NodeBackend;
use crate::timeline::{EntryKind, Timeline};

/// What undoes one fault.
#[derive(Clone, Debug)]
enum Undo {
    /// A Docker-level fault, by its id in the Docker ledger.
    Docker(DockerFaultId),
    /// The sim: bring a node's kubelet back.
    StartKubelet(String),
    /// Through the API, on any provider.
    Uncordon(String),
}

struct Record {
    id: u64,
    what: String,
    undo: Undo,
}

/// The faults in effect on one cluster, across its tests; the heal undoes them newest first.
#[derive(Default)]
pub(crate) struct Ledger {
    next: AtomicU64,
    records: Mutex<Vec<Record>>,
}

/// What a fault operation needs: the cluster's backend, API and ledger, and the test's timeline.
#[derive(Clone)]
pub(crate) struct FaultContext {
    pub backend: NodeBackend,
    pub client: Client,
    pub ledger: Arc<Ledger>,
    pub timeline: Arc<Timeline>,
    /// The cluster's control-plane nodes (the sim's partitions need to know the sides).
    pub control_planes: Arc<Vec<String>>,
}

/// A fault in effect. [`Fault::undo`] ends it; dropping the handle ends it too (in the
/// background), so bind it for as long as the fault should last (`let _stopped = ...`), or call
/// [`Fault::keep`] to leave it to the heal after the test.
#[must_use = "dropping a Fault undoes it: bind it (`let _fault = ...`) or call `.keep()`"]
pub struct Fault {
    id: u64,
    what: String,
    context: Option<FaultContext>,
}

impl Fault {
    /// What the fault is, e.g. `stop chaos-1m3w-…-worker2`.
    pub fn what(&self) -> &str {
        &self.what
    }

    /// Ends the fault now and waits until it is undone.
    pub async fn undo(mut self) -> anyhow::Result<()> {
        match self.context.take() {
            Some(context) => context.undo(self.id).await,
            None => Ok(()),
        }
    }

    /// Leaves the fault in effect until the heal after the test.
    pub fn keep(mut self) {
        if let Some(context) = self.context.take() {
            context.timeline.record(
                EntryKind::Fault,
                format!("{} kept until the heal", self.what),
            );
        }
    }
}

impl Drop for Fault {
    fn drop(&mut self) {
        if let Some(context) = self.context.take() {
            let id = self.id;
            // No runtime (the test is over): the heal undoes it.
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move { context.undo(id).await });
            }
        }
    }
}

impl Ledger {
    fn push(&self, what: &str, undo: Undo) -> u64 {
        let id = self.next.fetch_add(1, Ordering::SeqCst);
        self.lock().push(Record {
            id,
            what: what.to_owned(),
            undo,
        });
        id
    }

    fn take(&self, id: u64) -> Option<Record> {
        let mut records = self.lock();
        let index = records.iter().position(|r| r.id == id)?;
        Some(records.remove(index))
    }

    /// Drops the records that `end` would undo anyway (e.g. `start` ends a stop of that node).
    fn forget(&self, matches: impl Fn(&Undo) -> bool) -> Vec<String> {
        let mut records = self.lock();
        let (gone, kept): (Vec<Record>, Vec<Record>) =
            records.drain(..).partition(|r| matches(&r.undo));
        *records = kept;
        gone.into_iter().map(|r| r.what).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Record>> {
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Undoes every fault still in effect, newest first; goes on past failures and reports them.
    pub(crate) async fn heal(
        &self,
        backend: &NodeBackend,
        client: &Client,
    ) -> Result<Vec<String>, String> {
        let records: Vec<Record> = std::mem::take(&mut *self.lock());
        let mut undone = Vec::new();
        let mut failures = Vec::new();
        for record in records.into_iter().rev() {
            match undo(backend, client, &record.undo).await {
                Ok(()) => undone.push(record.what),
                Err(err) => failures.push(format!("{}: {err:#}", record.what)),
            }
        }
        match failures.is_empty() {
            true => Ok(undone),
            false => Err(failures.join("; ")),
        }
    }
}

async fn undo(backend: &NodeBackend, client: &Client, action: &Undo) -> anyhow::Result<()> {
    match (action, backend) {
        (Undo::Docker(id), NodeBackend::Docker(ledger)) => {
            ledger.undo(*id).await.map_err(|e| anyhow::anyhow!("{e}"))
        }
        (Undo::StartKubelet(node), NodeBackend::Sim(control)) => {
            control.start_kubelet(node);
            Ok(())
        }
        (Undo::Uncordon(node), _) => set_unschedulable(client, node, false).await,
        (action, _) => bail!("{action:?} does not belong to this provider"),
    }
}

impl FaultContext {
    async fn undo(&self, id: u64) -> anyhow::Result<()> {
        let Some(record) = self.ledger.take(id) else {
            return Ok(()); // Already undone: by `start`, by another handle, or by the heal.
        };
        let result = undo(&self.backend, &self.client, &record.undo).await;
        match &result {
            Ok(()) => self
                .timeline
                .record(EntryKind::Fault, format!("undone: {}", record.what)),
            Err(err) => self.timeline.record(
                EntryKind::Fault,
                format!("could not undo {}: {err:#}", record.what),
            ),
        }
        result.with_context(|| format!("undoing {}", record.what))
    }

    fn fault(&self, what: String, undo: Undo) -> Fault {
        let id = self.ledger.push(&what, undo);
        self.timeline.record(EntryKind::Fault, what.clone());
        Fault {
            id,
            what,
            context: Some(self.clone()),
        }
    }

    /// A node fault: on kind through Docker, on the sim through its kubelets.
    pub(crate) async fn node_fault(&self, action: NodeAction, node: &str) -> anyhow::Result<Fault> {
        let what = format!("{} {node}", action.verb());
        let undo = match &self.backend {
            NodeBackend::Docker(ledger) => {
                let id = match action {
                    NodeAction::Stop => ledger.stop(node).await,
                    NodeAction::Kill => ledger.kill(node).await,
                    NodeAction::Pause => ledger.pause(node).await,
                    NodeAction::KubeletStop => ledger.kubelet_stop(node).await,
                    NodeAction::Isolate => ledger.isolate(node).await,
                }
                .with_context(|| what.clone())?;
                Undo::Docker(id)
            }
            NodeBackend::Sim(control) => {
                match action {
                    // The node's containers die with it.
                    NodeAction::Stop | NodeAction::Kill => control.crash_node(node),
                    // Containers keep running; the node stops reporting.
                    NodeAction::Pause | NodeAction::KubeletStop | NodeAction::Isolate => {
                        control.stop_kubelet(node)
                    }
                }
                Undo::StartKubelet(node.to_owned())
            }
        };
        Ok(self.fault(what, undo))
    }

    /// Brings a stopped, killed or paused node back and forgets those faults.
    pub(crate) async fn start(&self, node: &str) -> anyhow::Result<()> {
        match &self.backend {
            NodeBackend::Docker(ledger) => {
                ledger.unpause(node).await.ok(); // A paused node is started by unpausing it.
                ledger
                    .start(node)
                    .await
                    .with_context(|| format!("start {node}"))?;
            }
            NodeBackend::Sim(control) => control.start_kubelet(node),
        }
        let ended = self
            .ledger
            .forget(|u| matches!(u, Undo::StartKubelet(n) if n == node))
            .into_iter()
            .chain(self.forget_docker_faults_of(node));
        for what in ended {
            self.timeline
                .record(EntryKind::Fault, format!("ended by start: {what}"));
        }
        self.timeline
            .record(EntryKind::Fault, format!("start {node}"));
        Ok(())
    }

    fn forget_docker_faults_of(&self, node: &str) -> Vec<String> {
        let suffix = format!(" {node}");
        let NodeBackend::Docker(docker) = &self.backend else {
            return Vec::new();
        };
        let active: Vec<DockerFaultId> = docker.active().into_iter().map(|d| d.id).collect();
        // The Docker ledger already dropped what `start` ended; forget our records of those.
        self.ledger
            .forget(|u| matches!(u, Undo::Docker(id) if !active.contains(id)))
            .into_iter()
            .filter(|what| what.ends_with(&suffix))
            .collect()
    }

    /// Brings a stopped kubelet back and forgets that fault.
    pub(crate) async fn kubelet_start(&self, node: &str) -> anyhow::Result<()> {
        match &self.backend {
            NodeBackend::Docker(ledger) => {
                ledger
                    .kubelet_start(node)
                    .await
                    .with_context(|| format!("start the kubelet of {node}"))?;
                self.forget_docker_faults_of(node);
            }
            NodeBackend::Sim(control) => {
                control.start_kubelet(node);
                self.ledger
                    .forget(|u| matches!(u, Undo::StartKubelet(n) if n == node));
            }
        }
        self.timeline
            .record(EntryKind::Fault, format!("start the kubelet of {node}"));
        Ok(())
    }

    /// Stops and starts a node (its containers restart).
    pub(crate) async fn restart(&self, node: &str) -> anyhow::Result<()> {
        self.timeline
            .record(EntryKind::Fault, format!("restart {node}"));
        match &self.backend {
            NodeBackend::Docker(ledger) => ledger
                .restart(node)
                .await
                .with_context(|| format!("restart {node}")),
            NodeBackend::Sim(control) => {
                control.crash_node(node);
                control.start_kubelet(node);
                Ok(())
            }
        }
    }

    pub(crate) async fn cordon(&self, node: &str) -> anyhow::Result<Fault> {
        set_unschedulable(&self.client, node, true).await?;
        Ok(self.fault(format!("cordon {node}"), Undo::Uncordon(node.to_owned())))
    }

    pub(crate) async fn uncordon(&self, node: &str) -> anyhow::Result<()> {
        set_unschedulable(&self.client, node, false).await?;
        self.ledger
            .forget(|u| matches!(u, Undo::Uncordon(n) if n == node));
        self.timeline
            .record(EntryKind::Fault, format!("uncordon {node}"));
        Ok(())
    }

    /// Cordons the node and evicts its pods through the eviction API, which honours
    /// PodDisruptionBudgets: an eviction a budget refuses (429) is retried until `timeout`.
    pub(crate) async fn drain(&self, node: &str, timeout: Duration) -> anyhow::Result<Fault> {
        let fault = self.cordon(node).await?;
        let pods: Api<Pod> = Api::all(self.client.clone());
        let started = Instant::now();
        loop {
            let on_node = pods
                .list(&ListParams::default().fields(&format!("spec.nodeName={node}")))
                .await?;
            let mut refused = Vec::new();
            for pod in on_node.items.iter().filter(|p| !is_daemonset_pod(p)) {
                let (ns, name) = (pod.namespace().unwrap_or_default(), pod.name_any());
                match Api::<Pod>::namespaced(self.client.clone(), &ns)
                    .evict(&name, &EvictParams::default())
                    .await
                {
                    Ok(_) => self.timeline.record(
                        EntryKind::Fault,
                        format!("drain {node}: evicted {ns}/{name}"),
                    ),
                    Err(kube::Error::Api(status)) if status.code == 429 => {
                        refused.push(format!("{ns}/{name}: {}", status.message))
                    }
                    Err(kube::Error::Api(status)) if status.code == 404 => {}
                    Err(err) => {
                        return Err(err)
                            .with_context(|| format!("drain {node}: evicting {ns}/{name}"));
                    }
                }
            }
            if refused.is_empty() {
                self.timeline
                    .record(EntryKind::Fault, format!("drain {node}: done"));
                return Ok(fault);
            }
            if started.elapsed() >= timeout {
                bail!(
                    "drain {node} timed out after {}: a PodDisruptionBudget still refuses to evict {}",
                    humantime::format_duration(timeout),
                    refused.join(", ")
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await; // The budget frees up as replacements get ready.
        }
    }

    /// Cuts `a` off from `b`. The sim has no network: the side without the most control planes
    /// loses its API server, so its kubelets stop reporting.
    pub(crate) async fn partition(&self, a: &[&str], b: &[&str]) -> anyhow::Result<Fault> {
        let what = format!("partition [{}] | [{}]", a.join(", "), b.join(", "));
        let undo = match &self.backend {
            NodeBackend::Docker(ledger) => {
                Undo::Docker(ledger.partition(a, b).await.with_context(|| what.clone())?)
            }
            NodeBackend::Sim(control) => {
                let is_master = |node: &str| self.control_planes.iter().any(|m| m == node);
                let masters = |side: &[&str]| side.iter().filter(|n| is_master(n)).count();
                let cut_off = if masters(a) >= masters(b) { b } else { a };
                for node in cut_off {
                    control.stop_kubelet(node);
                }
                // One record per cut-off node would lose the grouping; undo them together.
                let nodes: Vec<String> = cut_off.iter().map(|n| n.to_string()).collect();
                return Ok(self.fault_group(what, nodes));
            }
        };
        Ok(self.fault(what, undo))
    }

    /// Several kubelet stops as one fault (the sim's partition).
    fn fault_group(&self, what: String, nodes: Vec<String>) -> Fault {
        let mut ids = nodes
            .into_iter()
            .map(|n| self.ledger.push(&what, Undo::StartKubelet(n)));
        let first = ids.next().unwrap_or_default();
        ids.for_each(drop);
        self.timeline.record(EntryKind::Fault, what.clone());
        Fault {
            id: first,
            what,
            context: Some(self.clone()),
        }
    }

    /// Delay and loss on a node's network (netem). The sim has no data plane: there it is only
    /// recorded.
    pub(crate) async fn netem(
        &self,
        node: &str,
        delay: Option<Duration>,
        loss_percent: Option<f64>,
    ) -> anyhow::Result<Fault> {
        let what = format!("netem {node} delay {delay:?} loss {loss_percent:?}%");
        match &self.backend {
            NodeBackend::Docker(ledger) => {
                let id = ledger
                    .netem(node, delay, loss_percent)
                    .await
                    .with_context(|| what.clone())?;
                Ok(self.fault(what, Undo::Docker(id)))
            }
            NodeBackend::Sim(_) => {
                self.timeline.record(
                    EntryKind::Fault,
                    format!("{what} (the sim has no data plane: no effect)"),
                );
                Ok(Fault {
                    id: u64::MAX,
                    what,
                    context: None,
                })
            }
        }
    }

    /// Deletes the pods `label_selector` matches in `namespace`; their controllers replace them.
    pub(crate) async fn kill_pods(
        &self,
        namespace: &str,
        label_selector: &str,
    ) -> anyhow::Result<Vec<String>> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let matching = pods
            .list(&ListParams::default().labels(label_selector))
            .await?;
        let mut killed = Vec::new();
        for pod in matching.items {
            let name = pod.name_any();
            match pods
                .delete(&name, &DeleteParams::default().grace_period(0))
                .await
            {
                Ok(_) => killed.push(name),
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(err) => {
                    return Err(err).with_context(|| format!("killing pod {namespace}/{name}"));
                }
            }
        }
        self.timeline.record(
            EntryKind::Fault,
            format!(
                "kill pods {label_selector} in {namespace}: {}",
                killed.join(", ")
            ),
        );
        Ok(killed)
    }
}

/// The kind of node fault a [`Fault`] stands for.
#[derive(Clone, Copy, Debug)]
pub(crate) enum NodeAction {
    Stop,
    Kill,
    Pause,
    KubeletStop,
    Isolate,
}

impl NodeAction {
    fn verb(self) -> &'static str {
        match self {
            NodeAction::Stop => "stop",
            NodeAction::Kill => "kill",
            NodeAction::Pause => "pause",
            NodeAction::KubeletStop => "stop the kubelet of",
            NodeAction::Isolate => "isolate",
        }
    }
}

async fn set_unschedulable(client: &Client, node: &str, unschedulable: bool) -> anyhow::Result<()> {
    let nodes: Api<NodeObject> = Api::all(client.clone());
    let patch = serde_json::json!({"spec": {"unschedulable": unschedulable}});
    nodes
        .patch(node, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .with_context(|| {
            format!(
                "{} {node}",
                if unschedulable { "cordon" } else { "uncordon" }
            )
        })?;
    Ok(())
}

fn is_daemonset_pod(pod: &Pod) -> bool {
    pod.metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.kind == "DaemonSet")
}
