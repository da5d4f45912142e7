//! A suite whose test fails with an app deployed and a worker down, run as a child process by
//! `tests/harness.rs`: its artifacts folder must show what the failure left (events of its
//! namespace and about the node, pods, nodes with their conditions).

use std::time::Duration;

use chaos_runtime::prelude::*;

#[chaos_test(masters = 1, workers = 2, k8s = "1.31")]
async fn fails_with_an_app_deployed_and_a_worker_down(cluster: &Cluster) -> anyhow::Result<()> {
    cluster
        .apply(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  replicas: 2\n  \
             selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    \
             spec: {containers: [{name: web, image: 'registry.k8s.io/pause:3.10'}]}\n",
        )
        .await?;
    cluster
        .wait_for_deployment_available("web", 2, Duration::from_secs(30))
        .await?;
    let worker = cluster.workers()[0];
    // Left down for the heal, so that the artifacts see it down.
    worker.kubelet_stop().await?.keep();
    cluster
        .wait_for_node_ready(worker.name(), false, Duration::from_secs(30))
        .await?;
    anyhow::bail!(
        "failed on purpose with web deployed and {} not Ready",
        worker.name()
    )
}

#[chaos_test(masters = 1, workers = 2, k8s = "1.31")]
async fn passes(cluster: &Cluster) -> anyhow::Result<()> {
    anyhow::ensure!(cluster.nodes().len() == 3);
    Ok(())
}

chaos_runtime::main!();
