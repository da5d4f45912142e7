//! Faults through the Kubernetes API, the same on every provider: cordon, drain, pod kills.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Node as NodeObject, Pod};
use kube::api::{DeleteParams, EvictParams, ListParams, Patch, PatchParams};
use kube::{Api, Client, ResourceExt};

use super::{Applied, Fault, FaultContext, Recorded, Undo};
use crate::timeline::EntryKind;

/// Undoes a cordon.
struct Uncordon {
    client: Client,
    node: String,
}

impl Undo for Uncordon {
    fn undo(&self) -> BoxFuture<'_, anyhow::Result<()>> {
        Box::pin(set_unschedulable(&self.client, &self.node, false))
    }
}

impl FaultContext {
    pub(crate) async fn cordon(&self, node: &str) -> anyhow::Result<Fault> {
        self.lease.check()?;
        set_unschedulable(&self.client, node, true).await?;
        let undo = Uncordon {
            client: self.client.clone(),
            node: node.to_owned(),
        };
        let applied = Applied::real(undo);
        let what = format!("cordon {node}");
        Ok(self.record(what, Recorded::Cordon, vec![node.to_owned()], applied))
    }

    pub(crate) async fn uncordon(&self, node: &str) -> anyhow::Result<()> {
        self.lease.check()?;
        set_unschedulable(&self.client, node, false).await?;
        self.ledger.forget(node, |r| r == &Recorded::Cordon);
        self.timeline
            .record(EntryKind::Fault, format!("uncordon {node}"));
        Ok(())
    }

    /// Cordons the node and evicts its pods through the eviction API, which honours
    /// PodDisruptionBudgets: an eviction a budget refuses (429) is retried until `timeout`.
    /// Returns once no pod but DaemonSet and static (mirror) pods is left on the node, as
    /// `kubectl drain` does: on a real cluster an evicted pod terminates for its grace period
    /// (deletionTimestamp set, still on the node) before it is gone.
    pub(crate) async fn drain(&self, node: &str, timeout: Duration) -> anyhow::Result<Fault> {
        self.lease.check()?;
        let fault = self.cordon(node).await?;
        let pods: Api<Pod> = Api::all(self.client.clone());
        let started = Instant::now();
        loop {
            let on_node: Vec<Pod> = pods
                .list(&ListParams::default().fields(&format!("spec.nodeName={node}")))
                .await?
                .items
                .into_iter()
                .filter(|p| !is_daemonset_pod(p) && !is_mirror_pod(p))
                .collect();
            if on_node.is_empty() {
                self.timeline
                    .record(EntryKind::Fault, format!("drain {node}: done"));
                return Ok(fault);
            }
            let mut refused = Vec::new();
            let mut terminating = Vec::new();
            for pod in &on_node {
                let (ns, name) = (pod.namespace().unwrap_or_default(), pod.name_any());
                if pod.metadata.deletion_timestamp.is_some() {
                    terminating.push(format!("{ns}/{name}"));
                    continue;
                }
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
            if started.elapsed() >= timeout {
                let waited = humantime::format_duration(timeout);
                if !refused.is_empty() {
                    bail!(
                        "drain {node} timed out after {waited}: a PodDisruptionBudget still refuses to evict {}",
                        refused.join(", ")
                    );
                }
                bail!(
                    "drain {node} timed out after {waited}: evicted pods still terminating there: {} \
                     (give drain a timeout longer than their termination grace period)",
                    terminating.join(", ")
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await; // Budgets free up as replacements get ready.
        }
    }

    /// Deletes the pods `label_selector` matches in `namespace`; their controllers replace them.
    pub(crate) async fn kill_pods(
        &self,
        namespace: &str,
        label_selector: &str,
    ) -> anyhow::Result<Vec<String>> {
        self.lease.check()?;
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

/// A static pod's mirror: the kubelet owns it, and the API cannot evict it (`kubectl drain`
/// skips them; annotation `kubernetes.io/config.mirror`, Kubernetes `pkg/kubelet/types`).
fn is_mirror_pod(pod: &Pod) -> bool {
    pod.annotations()
        .contains_key("kubernetes.io/config.mirror")
}

fn is_daemonset_pod(pod: &Pod) -> bool {
    pod.metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.kind == "DaemonSet")
}
