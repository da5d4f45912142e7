//! kind's node faults: node containers hurt through the Docker CLI, each fault recorded in a
//! Docker-level [`FaultLedger`] so that one undoes exactly what it applied.

use std::any::Any;
use std::sync::Arc;

use futures::future::BoxFuture;

use super::docker::{FaultId, FaultLedger};
use crate::faults::{Applied, Boot, NodeFault, NodeFaults, Undo};

/// The node faults of one kind cluster.
pub(crate) struct KindNodes {
    pub(super) ledger: Arc<FaultLedger>,
}

/// Undoes one Docker-level fault by its id (every node of a partition).
struct DockerUndo {
    ledger: Arc<FaultLedger>,
    id: FaultId,
}

impl Undo for DockerUndo {
    fn undo(&self) -> BoxFuture<'_, anyhow::Result<()>> {
        Box::pin(async move { Ok(self.ledger.undo(self.id).await?) })
    }
}

impl NodeFaults for KindNodes {
    fn apply<'a>(
        &'a self,
        node: &'a str,
        fault: &'a NodeFault,
    ) -> BoxFuture<'a, anyhow::Result<Applied>> {
        Box::pin(async move {
            let ledger = &self.ledger;
            let id = match fault {
                NodeFault::Stop => ledger.stop(node).await?,
                NodeFault::Kill => ledger.kill(node).await?,
                NodeFault::Pause => ledger.pause(node).await?,
                NodeFault::KubeletStop => ledger.kubelet_stop(node).await?,
                NodeFault::Isolate => ledger.isolate(node).await?,
                NodeFault::Partition { a, b } => {
                    let side = |s: &'a [String]| s.iter().map(String::as_str).collect::<Vec<_>>();
                    ledger.partition(&side(a), &side(b)).await?
                }
                NodeFault::Netem {
                    delay,
                    loss_percent,
                } => ledger.netem(node, *delay, *loss_percent).await?,
            };
            Ok(Applied::real(DockerUndo {
                ledger: ledger.clone(),
                id,
            }))
        })
    }

    fn start<'a>(&'a self, node: &'a str) -> BoxFuture<'a, anyhow::Result<Boot>> {
        Box::pin(async move {
            // A paused node is started by unpausing it; `docker start` of a running one is a no-op.
            self.ledger.unpause(node).await.ok();
            Ok(match self.ledger.start(node).await? {
                true => Boot::Fresh,
                false => Boot::WasRunning,
            })
        })
    }

    fn restart<'a>(&'a self, node: &'a str) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move { Ok(self.ledger.restart(node).await?) })
    }

    fn kubelet_start<'a>(&'a self, node: &'a str) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move { Ok(self.ledger.kubelet_start(node).await?) })
    }

    fn heal_unrecorded(&self) -> BoxFuture<'_, anyhow::Result<()>> {
        Box::pin(async move { Ok(self.ledger.heal().await?) })
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// The Docker-level ledger behind a kind cluster's node faults; `None` for another provider's.
pub(crate) fn docker_ledger(faults: &dyn NodeFaults) -> Option<&FaultLedger> {
    let kind = faults.as_any().downcast_ref::<KindNodes>()?;
    Some(&kind.ledger)
}
