//! The fault ledger: every fault applied to a cluster's node containers is recorded with what
//! undoes it, so that a test can undo one fault, and the harness can heal whatever is left.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use super::faults::{self, Undo};
use super::nodes::NodeContainer;
use super::{Docker, DockerError, DockerErrorKind, netem, partition};
use crate::faults::NodeFault;

/// Ids are unique in the process, so partition rules of two ledgers never share a comment.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Names one recorded fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FaultId(u64);

impl fmt::Display for FaultId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// A fault that is in effect, for messages and the timeline: `#3 stop chaos-1-worker`.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultDescription {
    /// Its id in the ledger.
    pub id: FaultId,
    /// What it is.
    pub fault: NodeFault,
    /// Every node the fault touches (for a partition: both sides).
    pub nodes: Vec<String>,
}

impl fmt::Display for FaultDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.fault {
            NodeFault::Partition { .. } => write!(f, "{} {}", self.id, self.fault),
            _ => write!(f, "{} {} {}", self.id, self.fault, self.nodes.join(", ")),
        }
    }
}

/// Faults that could not be undone, each with its error. Healing goes on past each failure.
#[derive(Debug)]
pub struct HealError {
    /// Each fault left in effect, with why its undo failed.
    pub failures: Vec<(FaultDescription, DockerError)>,
}

impl fmt::Display for HealError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.failures.len();
        write!(
            f,
            "could not undo {count} fault{}:",
            if count == 1 { "" } else { "s" }
        )?;
        for (fault, error) in &self.failures {
            let error = error.to_string().replace('\n', "\n    ");
            write!(f, "\n  {fault}: {error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for HealError {}

struct Record {
    description: FaultDescription,
    undo: Undo,
}

/// Applies faults to node containers and remembers how to undo each, in order.
///
/// Every operation names a node by its container name. [`FaultLedger::heal`] undoes whatever is
/// still in effect, newest first, and goes on past failures.
pub struct FaultLedger {
    docker: Docker,
    records: Mutex<Vec<Record>>,
}

impl FaultLedger {
    /// An empty ledger over `docker`.
    pub fn new(docker: Docker) -> Self {
        FaultLedger {
            docker,
            records: Mutex::new(Vec::new()),
        }
    }

    /// The Docker CLI it drives.
    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    /// `docker stop`: the node gets kind's STOPSIGNAL (SIGRTMIN+3, systemd shuts kubelet and
    /// containerd down; pods are killed, not evicted) and SIGKILL after 10 s. Undone by `docker
    /// start`.
    ///
    /// Docker disables the restart policy of a container stopped by hand, so the node stays down
    /// until started. A started node may get another IP (docker assigns them in start order);
    /// kind's entrypoint rewrites the node's own old IP, so workers come back, but an HA
    /// control plane may not (etcd peers are IPs, kind#1689): stop workers where you can.
    pub async fn stop(&self, node: &str) -> Result<FaultId, DockerError> {
        self.docker.run(Some(node), &["stop", node]).await?;
        Ok(self.record(NodeFault::Stop, &[node], Undo::Start(node.to_owned())))
    }

    /// `docker kill`: SIGKILL to every process of the node, no shutdown. Undone by `docker start`;
    /// the caveats of [`FaultLedger::stop`] apply.
    pub async fn kill(&self, node: &str) -> Result<FaultId, DockerError> {
        self.docker.run(Some(node), &["kill", node]).await?;
        Ok(self.record(NodeFault::Kill, &[node], Undo::Start(node.to_owned())))
    }

    /// `docker start`. If the node was down, it boots afresh (kubelet started, a new network
    /// namespace without netem or partition rules), so the stop, kill, kubelet-stop and netem
    /// faults recorded for it are no longer in effect and leave the ledger, while the partitions
    /// and isolations it is part of are put back ([`FaultLedger::reapply_partitions`]): they
    /// last until their own undo. Returns whether it booted afresh (it was down).
    pub async fn start(&self, node: &str) -> Result<bool, DockerError> {
        let was_running = self.docker.node(node).await?.running;
        self.docker.run(Some(node), &["start", node]).await?;
        if !was_running {
            self.forget_node_state(node);
            self.reapply_partitions(node).await?;
        }
        Ok(!was_running)
    }

    /// `docker restart`: a reboot. Like [`FaultLedger::start`] of a node that was down, it ends the
    /// node's stop, kill, kubelet-stop and netem faults. The node may come back with another IP.
    pub async fn restart(&self, node: &str) -> Result<(), DockerError> {
        self.docker.run(Some(node), &["restart", node]).await?;
        self.forget_node_state(node);
        self.reapply_partitions(node).await
    }

    /// `docker pause`: every process of the node frozen (cgroup freezer); peers see silence, and
    /// nothing can be exec'd in it. Undone by `docker unpause`.
    pub async fn pause(&self, node: &str) -> Result<FaultId, DockerError> {
        self.docker.run(Some(node), &["pause", node]).await?;
        Ok(self.record(NodeFault::Pause, &[node], Undo::Unpause(node.to_owned())))
    }

    /// `docker unpause`; ends the node's pause faults.
    pub async fn unpause(&self, node: &str) -> Result<(), DockerError> {
        faults::unpause(&self.docker, node).await?;
        self.forget(|d| d.nodes == [node] && d.fault == NodeFault::Pause);
        Ok(())
    }

    /// `systemctl stop kubelet` in the node: it goes NotReady after the node-monitor grace period
    /// while its pods keep running. Undone by `systemctl start kubelet`.
    pub async fn kubelet_stop(&self, node: &str) -> Result<FaultId, DockerError> {
        faults::kubelet(&self.docker, node, "stop").await?;
        Ok(self.record(
            NodeFault::KubeletStop,
            &[node],
            Undo::KubeletStart(node.to_owned()),
        ))
    }

    /// `systemctl start kubelet` in the node; ends its kubelet-stop faults.
    pub async fn kubelet_start(&self, node: &str) -> Result<(), DockerError> {
        faults::kubelet(&self.docker, node, "start").await?;
        self.forget(|d| d.nodes == [node] && d.fault == NodeFault::KubeletStop);
        Ok(())
    }

    /// Cuts every node of `a` from every node of `b`, both directions, with iptables rules in the
    /// nodes (see the `partition` module: our own chain, nothing else touched). Nodes on the same
    /// side still reach each other. All or nothing: if a node fails, no rule is left anywhere.
    ///
    /// The HA load balancer (`<cluster>-external-load-balancer`) is no node, but every kubelet
    /// reaches the API through it: kind makes it kubeadm's `controlPlaneEndpoint`
    /// (`GetAPIServerInternalEndpoint` in kind's `pkg/cluster/internal/providers/docker/
    /// provider.go`, used by `pkg/cluster/internal/create/actions/config/config.go`). So:
    ///
    /// * if one side holds every control plane of the cluster, the load balancer joins that side
    ///   (it is recorded there): the other side's nodes also drop its addresses, IPv4 and IPv6,
    ///   both ways, and lose the API as they would behind a real partition. Otherwise `worker |
    ///   all control planes` would still pass worker → load balancer → control plane. No rule
    ///   goes into the load balancer itself (it has no NET_ADMIN; see the `partition` module).
    /// * if neither side holds every control plane, the load balancer is on neither side and
    ///   both still reach it, as a real HA cluster's load balancer outside the partition would
    ///   be reached. Then the partition is not complete for API traffic: envoy forwards port 6443
    ///   to any control plane whose `/healthz` it still gets, so a kubelet may reach an API
    ///   server on the other side through it. Only the direct paths between the sides are cut;
    ///   putting the load balancer on a side would be an arbitrary choice that cuts the other
    ///   side's kubelets from the API servers beside them. Name it on a side to choose.
    ///
    /// The rules match the nodes' current addresses; a node (or load balancer) restarted
    /// meanwhile may come back with another address, which is then not cut.
    pub async fn partition(&self, a: &[&str], b: &[&str]) -> Result<FaultId, DockerError> {
        let mut a = self.nodes(a).await?;
        let mut b = self.nodes(b).await?;
        check_sides(&a, &b)?;
        let mut clusters: Vec<String> = a.iter().chain(&b).map(|n| n.cluster.clone()).collect();
        clusters.sort();
        clusters.dedup();
        for cluster in clusters {
            let containers = self.docker.cluster_containers(&cluster).await?;
            let (to_a, to_b) = load_balancers_joining(&containers, &a, &b);
            a.extend(to_a);
            b.extend(to_b);
        }
        self.partition_nodes(&a, &b).await
    }

    /// Cuts `node` from every other container of its cluster that is running now, the HA load
    /// balancer included: `node`'s own rules drop the load balancer's addresses (IPv4 and IPv6),
    /// and every other node's rules drop `node`'s. Nothing is run in the load balancer, so
    /// isolating it (cutting every node from it) works too.
    pub async fn isolate(&self, node: &str) -> Result<FaultId, DockerError> {
        let target = self.docker.node(node).await?;
        let mut others = self.docker.cluster_containers(&target.cluster).await?;
        others.retain(|n| n.name != target.name && n.running);
        self.partition_nodes(&[target], &others).await
    }

    /// Delays and/or drops every packet the node sends on `eth0`, with `tc qdisc replace dev eth0
    /// root netem …` (replacing an earlier netem on the node). Undone by `tc qdisc del dev eth0
    /// root`. Needs the host kernel's `sch_netem`: if `tc` does not know netem, `modprobe
    /// sch_netem` is tried in the node, and if that fails too the error
    /// ([`DockerErrorKind::NetemUnavailable`]) says so.
    pub async fn netem(
        &self,
        node: &str,
        delay: Option<Duration>,
        loss_percent: Option<f64>,
    ) -> Result<FaultId, DockerError> {
        netem::apply(&self.docker, node, delay, loss_percent).await?;
        let fault = NodeFault::Netem {
            delay,
            loss_percent,
        };
        Ok(self.record(fault, &[node], Undo::RemoveNetem(node.to_owned())))
    }

    /// Undoes one fault. A fault no longer in effect (undone, or ended by a start) is fine. If the
    /// undo fails, the fault stays recorded, so that [`FaultLedger::heal`] tries again.
    pub async fn undo(&self, id: FaultId) -> Result<(), HealError> {
        let Some(record) = self.take(id) else {
            return Ok(());
        };
        let errors = record.undo.run(&self.docker).await;
        if errors.is_empty() {
            // Undoing a stop or a kill boots the node afresh, as `start` does.
            if let Undo::Start(node) = &record.undo {
                self.forget_node_state(node);
                if let Err(error) = self.reapply_partitions(node).await {
                    return Err(HealError {
                        failures: vec![(record.description, error)],
                    });
                }
            }
            return Ok(());
        }
        let failures = errors
            .into_iter()
            .map(|e| (record.description.clone(), e))
            .collect();
        self.put_back(record);
        Err(HealError { failures })
    }

    /// Undoes every fault in effect, newest first, going on past failures and reporting them
    /// all. Afterwards the ledger is empty, and no partition rule or netem qdisc of ours is left
    /// on any node that still exists.
    pub async fn heal(&self) -> Result<(), HealError> {
        let records = std::mem::take(&mut *self.records());
        let mut failures = Vec::new();
        for record in records.into_iter().rev() {
            let errors = record.undo.run(&self.docker).await;
            failures.extend(errors.into_iter().map(|e| (record.description.clone(), e)));
        }
        match failures.is_empty() {
            true => Ok(()),
            false => Err(HealError { failures }),
        }
    }

    /// The faults in effect, oldest first.
    pub fn active(&self) -> Vec<FaultDescription> {
        self.records()
            .iter()
            .map(|r| r.description.clone())
            .collect()
    }

    async fn nodes(&self, names: &[&str]) -> Result<Vec<NodeContainer>, DockerError> {
        futures::future::try_join_all(names.iter().map(|n| self.docker.node(n))).await
    }

    async fn partition_nodes(
        &self,
        a: &[NodeContainer],
        b: &[NodeContainer],
    ) -> Result<FaultId, DockerError> {
        check_sides(a, b)?;
        let id = next_id();
        let comment = format!("chaos-fault-{}-{}", std::process::id(), id.0);
        let rules = self.cut(a, b, &comment).await?;
        let names =
            |side: &[NodeContainer]| side.iter().map(|n| n.name.clone()).collect::<Vec<_>>();
        let fault = NodeFault::Partition {
            a: names(a),
            b: names(b),
        };
        let nodes = [names(a), names(b)].concat();
        self.push(Record {
            description: FaultDescription { id, fault, nodes },
            undo: Undo::RemoveRules(rules),
        });
        Ok(id)
    }

    fn record(&self, fault: NodeFault, nodes: &[&str], undo: Undo) -> FaultId {
        let id = next_id();
        let nodes = nodes.iter().map(|n| n.to_string()).collect();
        self.push(Record {
            description: FaultDescription { id, fault, nodes },
            undo,
        });
        id
    }

    /// Puts back the partitions and isolations `node` is part of after it booted afresh: its own
    /// rules went with its old network namespace, and it may have another address, which the
    /// other nodes' rules do not match (Docker gives a started container a free address, not
    /// its old one: kind#2045). Each such partition is planned again with the addresses of now,
    /// its new rules applied and then its old ones removed, under the same fault id. Nodes that are
    /// down or paused keep their old rules (nothing can be run in them) and get none anew.
    async fn reapply_partitions(&self, node: &str) -> Result<(), DockerError> {
        let ids: Vec<FaultId> = self
            .records()
            .iter()
            .filter(|r| {
                matches!(r.description.fault, NodeFault::Partition { .. })
                    && r.description.nodes.iter().any(|n| n == node)
            })
            .map(|r| r.description.id)
            .collect();
        for id in ids {
            let Some(mut record) = self.take(id) else {
                continue;
            };
            let replanned = self.replan(&record).await;
            if let Ok(rules) = &replanned {
                let old = match &record.undo {
                    Undo::RemoveRules(old) => old.clone(),
                    _ => Vec::new(),
                };
                // Old rules of the nodes that got new ones go; down or paused nodes keep theirs.
                let (stale, kept): (Vec<_>, Vec<_>) = old
                    .into_iter()
                    .partition(|r| rules.iter().any(|new| new.node == r.node));
                Undo::RemoveRules(stale).run(&self.docker).await;
                record.undo = Undo::RemoveRules([rules.clone(), kept].concat());
            }
            self.put_back(record);
            replanned?;
        }
        Ok(())
    }

    /// A recorded partition's rules for the addresses of now, applied in its running nodes.
    async fn replan(&self, record: &Record) -> Result<Vec<partition::NodeRules>, DockerError> {
        let NodeFault::Partition { a, b } = &record.description.fault else {
            return Ok(Vec::new());
        };
        // Paused nodes stay on their side: `partition::plan` puts no rules in them.
        let up = |side: Vec<NodeContainer>| -> Vec<NodeContainer> {
            side.into_iter().filter(|n| n.running).collect()
        };
        fn names(side: &[String]) -> Vec<&str> {
            side.iter().map(String::as_str).collect()
        }
        let a = up(self.nodes(&names(a)).await?);
        let b = up(self.nodes(&names(b)).await?);
        // A comment of its own, so that removing the old rules afterwards, which may be the
        // same rules, leaves these in place: the partition holds throughout.
        let comment = format!(
            "chaos-fault-{}-{}-{}",
            std::process::id(),
            record.description.id.0,
            next_id().0
        );
        self.cut(&a, &b, &comment).await
    }

    /// Plans the rules that cut `a` from `b` and applies them in every node, all or nothing: if
    /// a node fails, no rule is left anywhere.
    async fn cut(
        &self,
        a: &[NodeContainer],
        b: &[NodeContainer],
        comment: &str,
    ) -> Result<Vec<partition::NodeRules>, DockerError> {
        let rules = partition::plan(&self.docker, a, b, comment).await?;
        let applied =
            futures::future::join_all(rules.iter().map(|r| partition::apply(&self.docker, r)))
                .await;
        if let Some(error) = applied.into_iter().find_map(Result::err) {
            // Leave nothing half-applied behind; the apply error is the one worth reporting.
            Undo::RemoveRules(rules).run(&self.docker).await;
            return Err(error);
        }
        Ok(rules)
    }

    /// Drops the faults a fresh boot of `node` ends: stop, kill, kubelet stop, netem.
    fn forget_node_state(&self, node: &str) {
        self.forget(|d| d.nodes == [node] && d.fault.ended_by_boot());
    }

    fn forget(&self, ended: impl Fn(&FaultDescription) -> bool) {
        self.records().retain(|r| !ended(&r.description));
    }

    fn push(&self, record: Record) {
        self.records().push(record);
    }

    fn take(&self, id: FaultId) -> Option<Record> {
        let mut records = self.records();
        let index = records.iter().position(|r| r.description.id == id)?;
        Some(records.remove(index))
    }

    /// Back in id order, where it was.
    fn put_back(&self, record: Record) {
        let mut records = self.records();
        let index = records.partition_point(|r| r.description.id < record.description.id);
        records.insert(index, record);
    }

    fn records(&self) -> MutexGuard<'_, Vec<Record>> {
        // A panic elsewhere must not stop the heal that cleans up after it.
        self.records.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn next_id() -> FaultId {
    FaultId(NEXT_ID.fetch_add(1, Ordering::Relaxed))
}

/// The load balancers of one cluster's `containers` that join side `a` and side `b` of a
/// partition: a running one that is on neither side joins the side holding every control plane
/// of the cluster, if one does (see [`FaultLedger::partition`]).
///
/// A stopped load balancer has no address to match and forwards nothing while it is down; if it
/// is started during the partition, it is not cut, like any peer restarted meanwhile.
fn load_balancers_joining(
    containers: &[NodeContainer],
    a: &[NodeContainer],
    b: &[NodeContainer],
) -> (Vec<NodeContainer>, Vec<NodeContainer>) {
    let on = |side: &[NodeContainer], n: &NodeContainer| side.iter().any(|m| m.name == n.name);
    let control_planes: Vec<&NodeContainer> =
        containers.iter().filter(|n| n.is_control_plane()).collect();
    let holds_all = |side: &[NodeContainer]| {
        !control_planes.is_empty() && control_planes.iter().all(|cp| on(side, cp))
    };
    let (mut to_a, mut to_b) = (Vec::new(), Vec::new());
    let free = containers
        .iter()
        .filter(|n| n.is_load_balancer() && n.running && !on(a, n) && !on(b, n));
    for lb in free {
        if holds_all(a) {
            to_a.push(lb.clone());
        } else if holds_all(b) {
            to_b.push(lb.clone());
        }
    }
    (to_a, to_b)
}

fn check_sides(a: &[NodeContainer], b: &[NodeContainer]) -> Result<(), DockerError> {
    let invalid =
        |message: String| DockerError::new(DockerErrorKind::InvalidRequest, None, message);
    if a.is_empty() || b.is_empty() {
        return Err(invalid(
            "a partition needs at least one node on each side".to_owned(),
        ));
    }
    match a.iter().find(|n| b.iter().any(|m| m.name == n.name)) {
        Some(both) => Err(invalid(format!(
            "`{}` is on both sides of the partition",
            both.name
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(name: &str, role: &str) -> NodeContainer {
        NodeContainer {
            name: name.into(),
            cluster: "c".into(),
            role: role.into(),
            running: true,
            paused: false,
            ip: Some(format!("10.0.0.{}", name.len())),
            ipv6: None,
        }
    }

    fn names(side: &[NodeContainer]) -> Vec<&str> {
        side.iter().map(|n| n.name.as_str()).collect()
    }

    #[test]
    fn the_load_balancer_joins_the_side_with_every_control_plane() {
        let cp = container("c-control-plane", "control-plane");
        let cp2 = container("c-control-plane2", "control-plane");
        let worker = container("c-worker", "worker");
        let worker2 = container("c-worker2", "worker");
        let lb = container("c-external-load-balancer", "external-load-balancer");
        let all = [&cp, &cp2, &worker, &worker2, &lb].map(Clone::clone);
        let sides = |a: &[&NodeContainer], b: &[&NodeContainer]| {
            let (a, b): (Vec<_>, Vec<_>) = (
                a.iter().map(|n| (*n).clone()).collect(),
                b.iter().map(|n| (*n).clone()).collect(),
            );
            let (to_a, to_b) = load_balancers_joining(&all, &a, &b);
            (names(&to_a).join(","), names(&to_b).join(","))
        };
        let joins_b = (String::new(), lb.name.clone());
        let joins_a = (lb.name.clone(), String::new());
        let neither = (String::new(), String::new());
        assert_eq!(sides(&[&worker], &[&cp, &cp2]), joins_b);
        assert_eq!(sides(&[&cp, &cp2, &worker2], &[&worker]), joins_a);
        assert_eq!(sides(&[&cp, &worker], &[&cp2, &worker2]), neither);
        // Named on a side, it stays where it was put.
        assert_eq!(sides(&[&worker, &lb], &[&cp, &cp2]), neither);
        // Stopped, it has no address to cut.
        let mut stopped = lb.clone();
        stopped.running = false;
        let all = [&cp, &cp2, &worker, &stopped].map(Clone::clone);
        let (to_a, to_b) = load_balancers_joining(&all, std::slice::from_ref(&worker), &[cp, cp2]);
        assert!(to_a.is_empty() && to_b.is_empty());
    }
}
