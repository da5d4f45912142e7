//! Is a cluster fit for the next test? The right nodes, all Ready, at the right versions, judged
//! through the Kubernetes API so that it means the same on every provider.

use std::time::Duration;

use k8s_openapi::api::core::v1::Node as NodeObject;
use kube::Api;
use kube::runtime::watcher;

use crate::node::NodeInfo;
use crate::wait::{self, WaitError};

/// Waits until the cluster's nodes match `expected`, up to `timeout`.
pub(crate) async fn wait_healthy(
    client: kube::Client,
    expected: &[NodeInfo],
    timeout: Duration,
) -> Result<(), WaitError> {
    let what = format!("{} nodes Ready at their versions", expected.len());
    wait::until_list(
        Api::<NodeObject>::all(client),
        watcher::Config::default(),
        what,
        timeout,
        |nodes| check(expected, nodes),
    )
    .await
    .map(drop)
}

/// `Ok` when `nodes` are exactly the expected ones, each Ready and at its kubelet version;
/// otherwise every problem found, in one line.
pub(crate) fn check(expected: &[NodeInfo], nodes: &[NodeObject]) -> Result<(), String> {
    let mut problems = Vec::new();
    for want in expected {
        let Some(node) = nodes
            .iter()
            .find(|n| n.metadata.name.as_deref() == Some(want.name.as_str()))
        else {
            problems.push(format!("{} missing", want.name));
            continue;
        };
        let status = node.status.as_ref();
        let ready = crate::conditions::node_ready_status(node);
        if ready != "True" {
            problems.push(format!("{} Ready={ready}", want.name));
        }
        let version = status
            .and_then(|s| s.node_info.as_ref())
            .map(|i| i.kubelet_version.as_str());
        if version != Some(want.kubelet_version.as_str()) {
            problems.push(format!(
                "{} kubelet {} (expected {})",
                want.name,
                version.unwrap_or("unknown"),
                want.kubelet_version
            ));
        }
    }
    for node in nodes {
        let name = node.metadata.name.as_deref().unwrap_or("");
        if !expected.iter().any(|n| n.name == name) {
            problems.push(format!("unexpected node {name}"));
        }
    }
    match problems.is_empty() {
        true => Ok(()),
        false => Err(problems.join(", ")),
    }
}
