//! Cluster lifecycle cases, run as a child process by `tests/harness.rs`: a test that breaks its
//! cluster (the next one must get a new one), a failing test on a healthy cluster (kept), a
//! version matrix, and an ignored test.

use std::time::Duration;

use chaos_runtime::k8s_openapi::api::core::v1::Node as NodeObject;
use chaos_runtime::kube::Api;
use chaos_runtime::kube::api::{DeleteParams, ListParams};

use chaos_runtime::prelude::*;

async fn node_names(cluster: &Cluster) -> anyhow::Result<Vec<String>> {
    let nodes: Api<NodeObject> = Api::all(cluster.client());
    Ok(nodes
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect())
}

#[chaos_test(masters = 1, workers = 2, k8s = "1.30")]
async fn a_breaks_its_cluster(cluster: &Cluster) -> anyhow::Result<()> {
    let nodes: Api<NodeObject> = Api::all(cluster.client());
    nodes
        .delete(
            &format!("{}-worker2", cluster.name()),
            &DeleteParams::default(),
        )
        .await?;
    println!("lifecycle: broke cluster {}", cluster.name());
    Ok(())
}

#[chaos_test(masters = 1, workers = 2, k8s = "1.30")]
async fn b_gets_a_whole_cluster(cluster: &Cluster) -> anyhow::Result<()> {
    println!("lifecycle: b got cluster {}", cluster.name());
    assert_eq!(
        node_names(cluster).await?.len(),
        3,
        "the broken cluster was replaced"
    );
    anyhow::bail!("failing on purpose on a healthy cluster")
}

#[chaos_test(masters = 1, workers = 2, k8s = "1.30")]
async fn c_keeps_the_healthy_cluster(cluster: &Cluster) -> anyhow::Result<()> {
    println!("lifecycle: c got cluster {}", cluster.name());
    assert_eq!(node_names(cluster).await?.len(), 3);
    Ok(())
}

#[chaos_test(masters = 1, workers = 1, k8s = ["1.30", "1.31"])]
async fn matrix(cluster: &Cluster) -> anyhow::Result<()> {
    let info = cluster.client().apiserver_version().await?;
    println!(
        "lifecycle: matrix on {} got {}",
        cluster.topology(),
        info.git_version
    );
    assert_eq!(
        format!("{}.{}", info.major, info.minor),
        cluster.topology().control_plane_version().to_string()
    );
    Ok(())
}

#[chaos_test(masters = 1, workers = 3, k8s = "1.31")]
async fn monkey(cluster: &Cluster) -> anyhow::Result<()> {
    let plan = MonkeyPlan {
        duration: Duration::from_secs(3),
        every: Duration::from_millis(100)..=Duration::from_millis(400),
        down_for: Duration::from_millis(100)..=Duration::from_millis(400),
        faults: vec![NodeFault::Kill, NodeFault::Pause, NodeFault::KubeletStop],
        ..MonkeyPlan::default()
    };
    let monkey = cluster.monkey(plan);
    let schedule: Vec<String> = monkey
        .schedule()
        .iter()
        .map(|a| a.to_string().replace(cluster.name(), "C"))
        .collect();
    println!("lifecycle: monkey schedule: {}", schedule.join(", "));
    monkey.finish().await?;
    cluster
        .wait_for_nodes_ready(Duration::from_secs(10))
        .await?;
    Ok(())
}

#[chaos_test(
    masters = 1,
    workers = 1,
    ignore = "shows that ignored tests provision nothing"
)]
async fn ignored(_cluster: &Cluster) -> anyhow::Result<()> {
    anyhow::bail!("an ignored test must not run")
}

chaos_runtime::main!();
