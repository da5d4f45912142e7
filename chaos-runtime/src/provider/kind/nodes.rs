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
    /// With several control planes: each one's IPv4 address on the `kind` network when the
    /// cluster was handed out (see [`moved_control_planes`]).
    pub(super) control_plane_addresses: Vec<(String, Option<String>)>,
}

/// The control planes of an HA cluster that came back from a stop or kill with another address.
/// Docker gives a started container a free address, not its old one, while etcd keeps each
/// member's peer URL with the old address, so such a member does not rejoin and the control
/// plane is broken although every Node is Ready (kind#1689, kind#2045: kind does not support
/// restarting HA clusters). `None` when every address is the one it was.
pub(crate) fn moved_control_planes(
    before: &[(String, Option<String>)],
    now: &[(String, Option<String>)],
) -> Option<String> {
    let moved: Vec<String> = before
        .iter()
        .filter_map(|(name, was)| {
            let (_, is) = now.iter().find(|(n, _)| n == name)?;
            (is != was).then(|| {
                let show = |ip: &Option<String>| ip.clone().unwrap_or_else(|| "none".into());
                format!("{name} (was {}, now {})", show(was), show(is))
            })
        })
        .collect();
    (!moved.is_empty()).then(|| {
        format!(
            "control plane(s) came back with another address: {}; etcd keeps the old peer \
             address (kind#1689), so the control plane is not whole: stop workers rather than \
             control planes where you can",
            moved.join(", ")
        )
    })
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

    fn check_after_heal(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            if self.control_plane_addresses.is_empty() {
                return Ok(());
            }
            let names: Vec<String> = self
                .control_plane_addresses
                .iter()
                .map(|(n, _)| n.clone())
                .collect();
            let now = control_plane_addresses(&names)
                .await
                .map_err(|err| format!("its control planes could not be inspected: {err}"))?;
            match moved_control_planes(&self.control_plane_addresses, &now) {
                Some(moved) => Err(moved),
                None => Ok(()),
            }
        })
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Each named control plane's IPv4 address on the `kind` network.
pub(crate) async fn control_plane_addresses(
    names: &[String],
) -> Result<Vec<(String, Option<String>)>, super::docker::DockerError> {
    let docker = super::docker::Docker::new();
    let mut addresses = Vec::new();
    for name in names {
        addresses.push((name.clone(), docker.node(name).await?.ip));
    }
    Ok(addresses)
}

/// The Docker-level ledger behind a kind cluster's node faults; `None` for another provider's.
pub(crate) fn docker_ledger(faults: &dyn NodeFaults) -> Option<&FaultLedger> {
    let kind = faults.as_any().downcast_ref::<KindNodes>()?;
    Some(&kind.ledger)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(pairs: &[(&str, Option<&str>)]) -> Vec<(String, Option<String>)> {
        pairs
            .iter()
            .map(|(n, ip)| (n.to_string(), ip.map(str::to_owned)))
            .collect()
    }

    #[test]
    fn an_ha_control_plane_with_another_address_is_reported_and_others_are_not() {
        let before = at(&[
            ("c-control-plane", Some("172.18.0.2")),
            ("c-control-plane2", Some("172.18.0.3")),
        ]);
        assert_eq!(moved_control_planes(&before, &before), None);
        let now = at(&[
            ("c-control-plane", Some("172.18.0.2")),
            ("c-control-plane2", Some("172.18.0.9")),
        ]);
        let moved = moved_control_planes(&before, &now).expect("moved");
        assert!(
            moved.contains("c-control-plane2 (was 172.18.0.3, now 172.18.0.9)"),
            "{moved}"
        );
        assert!(!moved.contains("c-control-plane (was"), "{moved}");
        assert!(moved.contains("kind#1689"), "{moved}");
    }
}
