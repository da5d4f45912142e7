//! Faults on a test's cluster, the same on every provider. Node faults go through the provider's
//! [`NodeFaults`] (kind hurts node containers through Docker, the sim its control plane's
//! kubelets); cordon, drain and pod kills go through the Kubernetes API. Each fault returns a
//! [`Fault`] handle that undoes it (with [`Fault::undo`], or when dropped), is recorded in the
//! cluster's one [`Ledger`] so that the heal undoes whatever a test left, and is written in the
//! test's timeline.

mod api;
mod kind;
mod ledger;
mod node_faults;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use kube::Client;

use crate::lease::Lease;
use crate::timeline::{EntryKind, Timeline};
pub use kind::NodeFault;
pub(crate) use ledger::{Ledger, Recorded};
pub(crate) use node_faults::{Applied, Boot, NodeFaults, Undo};

/// What a fault operation needs: the cluster's node faults, API and ledger, and the test's
/// timeline.
#[derive(Clone)]
pub(crate) struct FaultContext {
    pub nodes: Arc<dyn NodeFaults>,
    pub client: Client,
    pub ledger: Arc<Ledger>,
    pub timeline: Arc<Timeline>,
    /// The test's hold on the cluster: no fault acts once it ended.
    pub lease: Lease,
    /// The harness's runtime, which outlives the test's: a dropped handle's undo runs there.
    pub harness: tokio::runtime::Handle,
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
            // Once the test's lease ended, the heal undoes it (and may already have).
            if context.lease.is_active() {
                let runtime = context.harness.clone();
                runtime.spawn(async move { context.undo(id).await });
            }
        }
    }
}

impl FaultContext {
    async fn undo(&self, id: u64) -> anyhow::Result<()> {
        match self.ledger.undo(id).await {
            Ok(None) => Ok(()), // Already undone: by `start`, by another handle, or by the heal.
            Ok(Some(what)) => {
                self.timeline
                    .record(EntryKind::Fault, format!("undone: {what}"));
                Ok(())
            }
            Err((what, err)) => {
                self.timeline
                    .record(EntryKind::Fault, format!("could not undo {what}: {err:#}"));
                Err(err.context(format!("undoing {what}")))
            }
        }
    }

    /// Records a fault in effect and hands out its handle.
    fn record(
        &self,
        what: String,
        recorded: Recorded,
        nodes: Vec<String>,
        applied: Applied,
    ) -> Fault {
        let id = self.ledger.push(&what, recorded, nodes, applied.undo);
        let line = match applied.caveat {
            Some(caveat) => format!("{what} ({caveat})"),
            None => what.clone(),
        };
        self.timeline.record(EntryKind::Fault, line);
        Fault {
            id,
            what,
            context: Some(self.clone()),
        }
    }

    /// A fault on one node, through the provider.
    pub(crate) async fn node_fault(&self, fault: NodeFault, node: &str) -> anyhow::Result<Fault> {
        self.lease.check()?;
        let what = match &fault {
            NodeFault::Stop => format!("stop {node}"),
            NodeFault::Kill => format!("kill {node}"),
            NodeFault::Pause => format!("pause {node}"),
            NodeFault::KubeletStop => format!("stop the kubelet of {node}"),
            NodeFault::Isolate => format!("isolate {node}"),
            NodeFault::Netem { .. } => format!("{fault} on {node}"),
            NodeFault::Partition { a, b } => {
                let a: Vec<&str> = a.iter().map(String::as_str).collect();
                let b: Vec<&str> = b.iter().map(String::as_str).collect();
                return self.partition(&a, &b).await;
            }
        };
        // Refused before anything is applied, on every provider alike.
        if let Err(problem) = fault.check() {
            bail!("{what}: {problem}");
        }
        let applied = self
            .nodes
            .apply(node, &fault)
            .await
            .with_context(|| what.clone())?;
        Ok(self.record(what, Recorded::Node(fault), vec![node.to_owned()], applied))
    }

    /// Cuts `a` off from `b`, both ways: one fault, undone on every node it touched.
    pub(crate) async fn partition(&self, a: &[&str], b: &[&str]) -> anyhow::Result<Fault> {
        self.lease.check()?;
        let what = format!("partition [{}] | [{}]", a.join(", "), b.join(", "));
        if a.is_empty() || b.is_empty() {
            bail!("{what}: a partition needs at least one node on each side");
        }
        if let Some(both) = a.iter().find(|n| b.contains(n)) {
            bail!("{what}: `{both}` is on both sides of the partition");
        }
        let owned = |side: &[&str]| side.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        let fault = NodeFault::Partition {
            a: owned(a),
            b: owned(b),
        };
        let applied = self
            .nodes
            .apply(a[0], &fault)
            .await
            .with_context(|| what.clone())?;
        let nodes = [owned(a), owned(b)].concat();
        Ok(self.record(what, Recorded::Node(fault), nodes, applied))
    }

    /// Brings a stopped, killed or paused node back and forgets the faults that ended with it.
    pub(crate) async fn start(&self, node: &str) -> anyhow::Result<()> {
        self.lease.check()?;
        let boot = self
            .nodes
            .start(node)
            .await
            .with_context(|| format!("start {node}"))?;
        let ended = self.ledger.forget(node, |r| match r {
            Recorded::Node(NodeFault::Pause) => true,
            Recorded::Node(fault) => boot == Boot::Fresh && fault.ended_by_boot(),
            Recorded::Cordon => false,
        });
        for what in ended {
            self.timeline
                .record(EntryKind::Fault, format!("ended by start: {what}"));
        }
        self.timeline
            .record(EntryKind::Fault, format!("start {node}"));
        Ok(())
    }

    /// Brings a stopped kubelet back and forgets that fault.
    pub(crate) async fn kubelet_start(&self, node: &str) -> anyhow::Result<()> {
        self.lease.check()?;
        self.nodes
            .kubelet_start(node)
            .await
            .with_context(|| format!("start the kubelet of {node}"))?;
        self.ledger
            .forget(node, |r| r == &Recorded::Node(NodeFault::KubeletStop));
        self.timeline
            .record(EntryKind::Fault, format!("start the kubelet of {node}"));
        Ok(())
    }

    /// Stops and starts a node (its containers restart): a fresh boot ends its stop, kill,
    /// kubelet-stop and netem faults.
    pub(crate) async fn restart(&self, node: &str) -> anyhow::Result<()> {
        self.lease.check()?;
        self.timeline
            .record(EntryKind::Fault, format!("restart {node}"));
        self.nodes
            .restart(node)
            .await
            .with_context(|| format!("restart {node}"))?;
        self.ledger.forget(node, |r| match r {
            Recorded::Node(fault) => fault.ended_by_boot(),
            Recorded::Cordon => false,
        });
        Ok(())
    }

    /// Delay and loss on a node's network.
    pub(crate) async fn netem(
        &self,
        node: &str,
        delay: Option<Duration>,
        loss_percent: Option<f64>,
    ) -> anyhow::Result<Fault> {
        let fault = NodeFault::Netem {
            delay,
            loss_percent,
        };
        self.node_fault(fault, node).await
    }
}
