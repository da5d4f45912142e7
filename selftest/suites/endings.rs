//! A suite of tests that end badly on purpose, run as a child process by `tests/endings.rs`: bodies
//! that block their thread, call `exit`, leave tasks behind or change the cluster outside their
//! namespace. Each child run selects a few of them by name.

use std::time::Duration;

use chaos_runtime::k8s_openapi::api::core::v1::Node as NodeObject;
use chaos_runtime::kube::Api;
use chaos_runtime::kube::api::{ListParams, Patch, PatchParams};
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

chaos_runtime::main!();
