//! How each fault on a node container is undone.

use super::partition::NodeRules;
use super::{Docker, DockerError, DockerErrorKind, netem, partition};

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
