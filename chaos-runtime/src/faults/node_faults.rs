//! The seam between faults and providers: per-node behaviour behind one interface that each
//! provider implements, as kind's `pkg/cluster/nodes/types.go` puts a node behind `nodes.Node`.
//! Nothing outside `provider/` knows which implementation runs.

use std::any::Any;

use futures::future::BoxFuture;

use super::NodeFault;

/// What undoes one applied fault, exactly: every node it touched, and nothing else.
///
/// Undoing is idempotent: undoing what a restart already undid succeeds. An undo that fails may be
/// tried again (the heal does).
pub(crate) trait Undo: Send + Sync {
    /// Puts the nodes back as they were before the fault.
    fn undo(&self) -> BoxFuture<'_, anyhow::Result<()>>;
}

/// A fault in effect, as a provider reports it.
pub(crate) struct Applied {
    /// Undoes exactly this fault.
    pub undo: Box<dyn Undo>,
    /// Set where the provider cannot make the fault real (the sim has no data plane): said in the
    /// timeline, so that no verdict looks better than it would on kind.
    pub caveat: Option<&'static str>,
}

impl Applied {
    /// A fault that took effect as asked.
    pub fn real(undo: impl Undo + 'static) -> Applied {
        Applied {
            undo: Box::new(undo),
            caveat: None,
        }
    }
}

/// How a started node came back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Boot {
    /// It was down and booted afresh: its kubelet runs and its network starts clean, which ends
    /// its stop, kill, kubelet-stop and netem faults.
    Fresh,
    /// It was running (perhaps paused): only a pause ended.
    WasRunning,
}

/// The node-level faults of one provisioned cluster.
pub(crate) trait NodeFaults: Send + Sync {
    /// Applies `fault` to `node`. [`NodeFault::Partition`] names its own sides and ignores `node`.
    fn apply<'a>(
        &'a self,
        node: &'a str,
        fault: &'a NodeFault,
    ) -> BoxFuture<'a, anyhow::Result<Applied>>;

    /// Starts a stopped, killed or paused node.
    fn start<'a>(&'a self, node: &'a str) -> BoxFuture<'a, anyhow::Result<Boot>>;

    /// Stops and starts the node: a fresh boot.
    fn restart<'a>(&'a self, node: &'a str) -> BoxFuture<'a, anyhow::Result<()>>;

    /// Starts the node's kubelet again.
    fn kubelet_start<'a>(&'a self, node: &'a str) -> BoxFuture<'a, anyhow::Result<()>>;

    /// Undoes whatever is still in effect on the nodes that the fault ledger did not record (kind:
    /// faults made through `Cluster::docker_faults`). Runs after the ledger's own heal.
    fn heal_unrecorded(&self) -> BoxFuture<'_, anyhow::Result<()>> {
        Box::pin(async { Ok(()) })
    }

    /// After the heal and once every node is Ready: whether the nodes can serve another test in
    /// ways the API does not show. `Err` says why not, and the cluster is recreated.
    fn check_after_heal(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }

    /// For the one deprecated accessor that hands out a provider's own fault API
    /// (`Cluster::docker_faults`).
    fn as_any(&self) -> &dyn Any;
}
