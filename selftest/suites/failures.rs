//! A suite that fails on purpose, run as a child process by `tests/harness.rs`: a panic, a
//! timeout and an error, around tests that must still find a healthy cluster.

use chaos_runtime::k8s_openapi::api::core::v1::Node as NodeObject;
use chaos_runtime::kube::Api;
use chaos_runtime::kube::api::ListParams;
use chaos_runtime::prelude::*;

async fn node_count(cluster: &Cluster) -> anyhow::Result<usize> {
    let nodes: Api<NodeObject> = Api::all(cluster.client());
    Ok(nodes.list(&ListParams::default()).await?.items.len())
}

#[chaos_test(masters = 1, workers = 2, k8s = "1.30")]
async fn a_panics(_cluster: &Cluster) -> anyhow::Result<()> {
    panic!("boom: the test body panicked on purpose");
}

#[chaos_test(masters = 1, workers = 2, k8s = "1.30", timeout = "1s")]
async fn b_times_out(_cluster: &Cluster) -> anyhow::Result<()> {
    tokio_sleep_forever().await;
    Ok(())
}

#[chaos_test(masters = 1, workers = 2, k8s = "1.30")]
async fn c_after_failures_cluster_is_healthy(cluster: &Cluster) -> anyhow::Result<()> {
    assert_eq!(node_count(cluster).await?, 3);
    Ok(())
}

#[chaos_test(masters = 1, workers = 1, k8s = "1.31")]
async fn d_returns_an_error(cluster: &Cluster) -> anyhow::Result<()> {
    use anyhow::Context;
    let count = node_count(cluster).await?;
    Err(anyhow::anyhow!("saw {count} nodes, expected 3")).context("steady state broken on purpose")
}

#[chaos_test(masters = 1, workers = 1, k8s = "1.31")]
async fn e_passes(cluster: &Cluster) {
    assert_eq!(node_count(cluster).await.unwrap(), 2);
}

/// A deliberately broken steady state: an app with zero replicas is never available.
#[chaos_test(masters = 1, workers = 1, k8s = "1.31")]
async fn f_zero_replicas_never_become_available(cluster: &Cluster) -> anyhow::Result<()> {
    cluster
        .apply(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  replicas: 0\n  \
             selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    \
             spec: {containers: [{name: web, image: 'registry.k8s.io/pause:3.10'}]}\n",
        )
        .await?;
    cluster.timeline().note("deployed web with 0 replicas");
    cluster
        .wait_for_deployment_available("web", 1, std::time::Duration::from_secs(1))
        .await?;
    Ok(())
}

async fn tokio_sleep_forever() {
    std::future::pending::<()>().await
}

chaos_runtime::main!();
