//! The example chaos suite: `cargo run --example scenarios` (libtest's flags after `--`).
//!
//! Each scenario is an ordinary async function; the attribute says which cluster it needs.

use chaos_runtime::k8s_openapi::api::core::v1::Node as NodeObject;
use chaos_runtime::kube::Api;
use chaos_runtime::kube::api::ListParams;
use chaos_runtime::prelude::*;

/// Control plane and workers on different versions: every node reports the version it was given.
#[chaos_test(masters = 1, workers = 3, k8s = "1.29", worker_versions = ["1.28"])]
async fn control_plane_and_workers_on_different_versions(cluster: &Cluster) -> anyhow::Result<()> {
    let nodes: Api<NodeObject> = Api::all(cluster.client());
    for node in nodes.list(&ListParams::default()).await?.items {
        let name = node.metadata.name.unwrap_or_default();
        let kubelet = node
            .status
            .and_then(|s| s.node_info)
            .map(|i| i.kubelet_version);
        let expected = cluster.node(&name).map(|n| n.kubelet_version().to_owned());
        anyhow::ensure!(
            kubelet == expected,
            "node {name}: kubelet {kubelet:?}, expected {expected:?}"
        );
    }
    Ok(())
}

/// The same check across several Kubernetes versions: one test per version.
#[chaos_test(masters = 1, workers = 2, k8s = ["1.33", "1.34", "1.35"])]
async fn version_matrix(cluster: &Cluster) -> anyhow::Result<()> {
    let info = cluster.client().apiserver_version().await?;
    let want = cluster.topology().control_plane_version();
    anyhow::ensure!(
        info.minor == want.minor.to_string(),
        "API server reports 1.{}, expected {want}",
        info.minor
    );
    Ok(())
}

chaos_runtime::main!();
