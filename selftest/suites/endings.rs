//! A suite of tests that end badly on purpose, run as a child process by `tests/endings.rs`: bodies
//! that block their thread, call `exit`, leave tasks behind or change the cluster outside their
//! namespace. Each child run selects a few of them by name.

use std::time::Duration;

use chaos_runtime::k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node as NodeObject};
use chaos_runtime::kube::Api;
use chaos_runtime::kube::api::{ListParams, Patch, PatchParams, PostParams};
use chaos_runtime::prelude::*;

/// Blocks the test's thread, as a blocking call in an async body would.
fn block_thread_for(seconds: u64) {
    std::thread::sleep(Duration::from_secs(seconds));
}

#[chaos_test(masters = 1, workers = 1, k8s = "1.30", timeout = "2s")]
async fn block_1(_cluster: &Cluster) {
    block_thread_for(30);
}

#[chaos_test(masters = 1, workers = 1, k8s = "1.30", timeout = "2s")]
async fn block_2(_cluster: &Cluster) {
    block_thread_for(30);
}

#[chaos_test(masters = 1, workers = 1, k8s = "1.30", timeout = "2s")]
async fn block_3(_cluster: &Cluster) {
    block_thread_for(30);
}

#[chaos_test(masters = 1, workers = 1, k8s = "1.30", timeout = "2s")]
async fn block_4(_cluster: &Cluster) {
    block_thread_for(30);
}

#[chaos_test(masters = 1, workers = 1, k8s = "1.30", timeout = "2s")]
async fn block_5(_cluster: &Cluster) {
    block_thread_for(30);
}

#[chaos_test(masters = 1, workers = 1, k8s = "1.30", timeout = "2s")]
async fn block_for_an_hour(_cluster: &Cluster) {
    block_thread_for(3600);
}

/// Blocks its thread with a long timeout: only a signal ends it.
#[chaos_test(masters = 1, workers = 1, k8s = "1.30", timeout = "10m")]
async fn blocked_until_a_signal(_cluster: &Cluster) {
    eprintln!("inside blocked_until_a_signal");
    block_thread_for(3600);
}

#[chaos_test(masters = 1, workers = 1, k8s = "1.30")]
async fn exit_zero(_cluster: &Cluster) {
    std::process::exit(0);
}

/// Waits until the parent sends a signal; a long timeout so that only the signal ends it.
#[chaos_test(masters = 1, workers = 1, k8s = "1.30", timeout = "10m")]
async fn wait_for_a_signal(cluster: &Cluster) {
    eprintln!("inside wait_for_a_signal on {}", cluster.name());
    std::future::pending::<()>().await;
}

/// Leaves a worker paused for the heal, so that a kept cluster shows whether it was healed.
#[chaos_test(masters = 1, workers = 1, k8s = "1.30")]
async fn leave_a_worker_paused(cluster: &Cluster) -> anyhow::Result<()> {
    cluster.workers()[0].pause().await?.keep();
    Ok(())
}

/// Spawns a task that cordons a worker after the test ended, then returns at once.
#[chaos_test(masters = 1, workers = 1, k8s = "1.30")]
async fn late_task_1_spawns_a_cordon(cluster: &Cluster) {
    let client = cluster.client();
    let worker = cluster.workers()[0].name().to_owned();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let nodes: Api<NodeObject> = Api::all(client);
        let cordon = serde_json::json!({"spec": {"unschedulable": true}});
        let _ = nodes
            .patch(&worker, &PatchParams::default(), &Patch::Merge(&cordon))
            .await;
        eprintln!("late cordon sent");
    });
}

/// Runs after `late_task_1_spawns_a_cordon` on the same cluster: no node may become unschedulable.
#[chaos_test(masters = 1, workers = 1, k8s = "1.30")]
async fn late_task_2_every_node_stays_schedulable(cluster: &Cluster) -> anyhow::Result<()> {
    let nodes: Api<NodeObject> = Api::all(cluster.client());
    for _ in 0..30 {
        for node in nodes.list(&ListParams::default()).await?.items {
            let cordoned = node.spec.and_then(|s| s.unschedulable).unwrap_or(false);
            anyhow::ensure!(
                !cordoned,
                "{} was cordoned by a task of the previous test",
                node.metadata.name.unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Changes the cluster outside its namespace through the raw API, as a careless test would.
#[chaos_test(masters = 1, workers = 1, k8s = "1.31")]
async fn dirty_1_changes_the_cluster_outside_its_namespace(
    cluster: &Cluster,
) -> anyhow::Result<()> {
    let client = cluster.client();
    let worker = cluster.workers()[0].name().to_owned();
    let nodes: Api<NodeObject> = Api::all(client.clone());
    let change = serde_json::json!({
        "metadata": {"labels": {"dirty": "yes"}},
        "spec": {"unschedulable": true, "taints": [{"key": "dirty", "effect": "NoSchedule"}]},
    });
    nodes
        .patch(&worker, &PatchParams::default(), &Patch::Merge(&change))
        .await?;
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    config_maps
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({"metadata": {"name": "left-behind"}}))?,
        )
        .await?;
    let namespaces: Api<Namespace> = Api::all(client);
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({"metadata": {"name": "stray"}}))?,
        )
        .await?;
    Ok(())
}

/// Runs after `dirty_1_…` on the same cluster: it finds it as it was handed out.
#[chaos_test(masters = 1, workers = 1, k8s = "1.31")]
async fn dirty_2_finds_the_cluster_as_handed_out(cluster: &Cluster) -> anyhow::Result<()> {
    let client = cluster.client();
    let nodes: Api<NodeObject> = Api::all(client.clone());
    for node in nodes.list(&ListParams::default()).await?.items {
        let name = node.metadata.name.clone().unwrap_or_default();
        let labels = node.metadata.labels.unwrap_or_default();
        anyhow::ensure!(!labels.contains_key("dirty"), "{name} keeps the label");
        let spec = node.spec.unwrap_or_default();
        anyhow::ensure!(
            !spec.unschedulable.unwrap_or(false),
            "{name} stays cordoned"
        );
        let taints = spec.taints.unwrap_or_default();
        anyhow::ensure!(
            taints.iter().all(|t| t.key != "dirty"),
            "{name} keeps the taint"
        );
    }
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    anyhow::ensure!(
        config_maps.get_opt("left-behind").await?.is_none(),
        "the ConfigMap left in default is still there"
    );
    let namespaces: Api<Namespace> = Api::all(client);
    anyhow::ensure!(
        namespaces.get_opt("stray").await?.is_none(),
        "the stray namespace is still there"
    );
    Ok(())
}

/// Deletes what the cluster cannot get back by itself.
#[chaos_test(masters = 1, workers = 2, k8s = "1.31")]
async fn broken_1_deletes_a_system_namespace(cluster: &Cluster) -> anyhow::Result<()> {
    // The node heartbeats' namespace: not one the API server refuses to delete (unlike
    // default, kube-system, kube-public), but every cluster has it.
    let namespaces: Api<Namespace> = Api::all(cluster.client());
    namespaces
        .delete("kube-node-lease", &Default::default())
        .await?;
    Ok(())
}

/// Runs after `broken_1_…`: it gets a cluster with the namespace, i.e. a recreated one.
#[chaos_test(masters = 1, workers = 2, k8s = "1.31")]
async fn broken_2_gets_a_whole_cluster(cluster: &Cluster) -> anyhow::Result<()> {
    let namespaces: Api<Namespace> = Api::all(cluster.client());
    let namespace = namespaces.get_opt("kube-node-lease").await?;
    anyhow::ensure!(
        namespace.is_some_and(|ns| ns.metadata.deletion_timestamp.is_none()),
        "kube-node-lease is missing: the broken cluster was handed on"
    );
    Ok(())
}

chaos_runtime::main!();
