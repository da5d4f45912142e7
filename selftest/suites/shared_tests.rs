//! The six tests of `shared.rs` (binary) and `shared_test.rs` (test target): `a*` on one
//! topology, `b*` on another.

use std::time::Duration;

use chaos_runtime::k8s_openapi::api::core::v1::Node as NodeObject;
use chaos_runtime::kube::Api;
use chaos_runtime::kube::api::ListParams;
use chaos_runtime::prelude::*;

async fn check(cluster: &Cluster, nodes: usize) -> anyhow::Result<()> {
    let api: Api<NodeObject> = Api::all(cluster.client());
    let listed = api.list(&ListParams::default()).await?.items.len();
    anyhow::ensure!(listed == nodes, "{listed} nodes, not {nodes}");
    println!("shared: got cluster {}", cluster.name());
    let sleep = std::env::var("SHARED_TEST_SLEEP_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .unwrap_or(0);
    tokio::time::sleep(Duration::from_millis(sleep)).await;
    Ok(())
}

#[chaos_test(masters = 1, workers = 0, k8s = "1.35")]
async fn a1(cluster: &Cluster) -> anyhow::Result<()> {
    check(cluster, 1).await
}

#[chaos_test(masters = 1, workers = 0, k8s = "1.35")]
async fn a2(cluster: &Cluster) -> anyhow::Result<()> {
    check(cluster, 1).await
}

#[chaos_test(masters = 1, workers = 0, k8s = "1.35")]
async fn a3(cluster: &Cluster) -> anyhow::Result<()> {
    check(cluster, 1).await
}

#[chaos_test(masters = 1, workers = 1, k8s = "1.35")]
async fn b1(cluster: &Cluster) -> anyhow::Result<()> {
    check(cluster, 2).await
}

#[chaos_test(masters = 1, workers = 1, k8s = "1.35")]
async fn b2(cluster: &Cluster) -> anyhow::Result<()> {
    check(cluster, 2).await
}

#[chaos_test(masters = 1, workers = 1, k8s = "1.35")]
async fn b3(cluster: &Cluster) -> anyhow::Result<()> {
    check(cluster, 2).await
}
