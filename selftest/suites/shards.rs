//! A suite of several topologies for sharding (`CHAOS_PARTITION`), run as child processes by
//! `tests/shards.rs`: three tests on one topology, joined there by one entry of a version matrix
//! whose other entry has a topology of its own, two other topologies, and an ignored test.

use chaos_runtime::k8s_openapi::api::core::v1::Node as NodeObject;
use chaos_runtime::kube::Api;
use chaos_runtime::kube::api::ListParams;

use chaos_runtime::prelude::*;

/// The test's cluster has the nodes its topology asks for.
async fn has_its_nodes(cluster: &Cluster) -> anyhow::Result<()> {
    let nodes: Api<NodeObject> = Api::all(cluster.client());
    let listed = nodes.list(&ListParams::default()).await?.items.len();
    anyhow::ensure!(
        listed == cluster.topology().nodes().len(),
        "saw {listed} nodes on {}",
        cluster.topology()
    );
    Ok(())
}

#[chaos_test(masters = 1, workers = 1, k8s = "1.31")]
async fn a_one(cluster: &Cluster) -> anyhow::Result<()> {
    has_its_nodes(cluster).await
}

#[chaos_test(masters = 1, workers = 1, k8s = "1.31")]
async fn a_two(cluster: &Cluster) -> anyhow::Result<()> {
    has_its_nodes(cluster).await
}

#[chaos_test(masters = 1, workers = 1, k8s = "1.31")]
async fn a_three(cluster: &Cluster) -> anyhow::Result<()> {
    has_its_nodes(cluster).await
}

#[chaos_test(masters = 1, workers = 2, k8s = "1.30")]
async fn b_one(cluster: &Cluster) -> anyhow::Result<()> {
    has_its_nodes(cluster).await
}

#[chaos_test(masters = 1, workers = 2, k8s = "1.30")]
async fn b_two(cluster: &Cluster) -> anyhow::Result<()> {
    has_its_nodes(cluster).await
}

#[chaos_test(masters = 1, workers = 3, k8s = "1.31")]
async fn c_one(cluster: &Cluster) -> anyhow::Result<()> {
    has_its_nodes(cluster).await
}

#[chaos_test(masters = 1, workers = 1, k8s = ["1.30", "1.31"])]
async fn matrix(cluster: &Cluster) -> anyhow::Result<()> {
    has_its_nodes(cluster).await
}

#[chaos_test(masters = 1, workers = 1, ignore = "in the assignment, never run")]
async fn ignored(_cluster: &Cluster) -> anyhow::Result<()> {
    anyhow::bail!("an ignored test must not run")
}

chaos_runtime::main!();
