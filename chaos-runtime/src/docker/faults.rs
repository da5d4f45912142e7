//! The faults a node container can be put in, and how each is undone.

use std::fmt;
use std::time::Duration;

use super::partition::NodeRules;
use super::{Docker, DockerError, DockerErrorKind, netem, partition};

/// A fault applied to one or more node containers.
#[derive(Clone, Debug, PartialEq)]
pub enum NodeFault {
    /// `docker stop`: the node's STOPSIGNAL (SIGRTMIN+3, systemd's shutdown), SIGKILL after 10 s.
    Stop,
    /// `docker kill`: SIGKILL, no shutdown at all.
    Kill,
    /// `docker pause`: every process of the node frozen; peers see silence, not resets.
    Pause,
    /// `systemctl stop kubelet` in the node: the node goes NotReady while its pods keep running.
    KubeletStop,
    /// No packets between any node of `a` and any node of `b`, in either direction.
    Partition { a: Vec<String>, b: Vec<String> },
    /// `tc … netem` on the node's `eth0`: every packet it sends is delayed and/or dropped.
    Netem {
        delay: Option<Duration>,
        loss_percent: Option<f64>,
    },
}

impl fmt::Display for NodeFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeFault::Stop => write!(f, "stop"),
            NodeFault::Kill => write!(f, "kill"),
            NodeFault::Pause => write!(f, "pause"),
            NodeFault::KubeletStop => write!(f, "kubelet stop"),
            NodeFault::Partition { a, b } => {
                write!(f, "partition {} | {}", a.join(", "), b.join(", "))
            }
            NodeFault::Netem {
                delay,
                loss_percent,
            } => {
                write!(f, "netem")?;
                if let Some(delay) = delay {
                    write!(f, " delay {}", humantime::format_duration(*delay))?;
                }
                match loss_percent {
                    Some(loss) => write!(f, " loss {loss}%"),
                    None => Ok(()),
                }
            }
        }
    }
}

/// What puts a node back as it was before a fault. Every undo is idempotent: undoing what a
/// restart already undid (a fresh network namespace, a kubelet started at boot) succeeds.
#[derive(Clone, Debug)]
pub(crate) enum Undo {
    Start(String),
    Unpause(String),
    KubeletStart(String),
    RemoveRules(Vec<NodeRules>),
    RemoveNetem(String),
}

impl Undo {
    /// Runs the undo; a partition's rules are removed from every node even if some fail.
    pub async fn run(&self, docker: &Docker) -> Vec<DockerError> {
        let result = match self {
            Undo::Start(node) => docker.run(Some(node), &["start", node]).await.map(drop),
            Undo::Unpause(node) => unpause(docker, node).await,
            Undo::KubeletStart(node) => kubelet(docker, node, "start").await,
            Undo::RemoveNetem(node) => netem::remove(docker, node).await,
            Undo::RemoveRules(rules) => {
                let removals = rules.iter().map(|r| partition::remove(docker, r));
                let results = futures::future::join_all(removals).await;
                return results.into_iter().filter_map(Result::err).collect();
            }
        };
        result.err().into_iter().collect()
    }
}

/// `docker unpause`, where a node that is not paused (any more) is fine.
pub(crate) async fn unpause(docker: &Docker, node: &str) -> Result<(), DockerError> {
    match docker.run(Some(node), &["unpause", node]).await {
        Err(error)
            if error.kind() == DockerErrorKind::CommandFailed
                && error.to_string().contains("is not paused") =>
        {
            Ok(())
        }
        result => result.map(drop),
    }
}

/// `systemctl <action> kubelet` in the node.
pub(crate) async fn kubelet(docker: &Docker, node: &str, action: &str) -> Result<(), DockerError> {
    docker
        .exec(node, &["systemctl", action, "kubelet"])
        .await
        .map(drop)
}
