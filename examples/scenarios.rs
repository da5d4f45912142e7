//! The example chaos suite: `cargo run --example scenarios` (libtest's flags after `--`).
//!
//! Runs on kind where it can, else on the in-memory sim (it says which in one line). Each
//! scenario is an ordinary async function; the attribute says which cluster it needs, and tests
//! that need the same cluster share it.

use std::time::Duration;

use chaos_runtime::k8s_openapi::api::core::v1::{Node as NodeObject, Service};
use chaos_runtime::kube::Api;
use chaos_runtime::kube::api::ListParams;
use chaos_runtime::prelude::*;

/// Generous enough for real kind; the sim answers in well under a second.
const WAIT: Duration = Duration::from_secs(300);

/// The application: three replicas of a web server, and a Service in front of them.
const APP: &str = "
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {app: web}}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      # Leave a dead node within seconds, not after Kubernetes' default five minutes.
      tolerations:
      - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 5}
      - {key: node.kubernetes.io/not-ready, operator: Exists, effect: NoExecute, tolerationSeconds: 5}
      containers:
      - {name: web, image: 'registry.k8s.io/pause:3.10'}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 80}]
";

async fn deploy(cluster: &Cluster) -> anyhow::Result<()> {
    cluster.apply(APP).await?;
    cluster
        .wait_for_deployment_available("web", 3, WAIT)
        .await?;
    Ok(())
}

/// Every node reports the kubelet version the topology gave it.
async fn versions_match(cluster: &Cluster) -> anyhow::Result<()> {
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

// --- 1. Create a cluster and deploy an application --------------------------------------------

#[chaos_test(masters = 1, workers = 3)]
async fn deploy_an_application(cluster: &Cluster) -> anyhow::Result<()> {
    deploy(cluster).await?;
    let services: Api<Service> = Api::namespaced(cluster.client(), cluster.namespace());
    let web = services.get("web").await?;
    anyhow::ensure!(
        web.spec
            .and_then(|s| s.selector)
            .is_some_and(|s| s["app"] == "web"),
        "the Service selects the app"
    );
    cluster.wait_for_pods_running("app=web", 3, WAIT).await?;
    Ok(())
}

// --- 2. Randomly kill and bring back workers while the application stays available -------------

#[chaos_test(masters = 1, workers = 3, timeout = "15m")]
async fn app_stays_available_while_workers_die(cluster: &Cluster) -> anyhow::Result<()> {
    deploy(cluster).await?;
    let available = cluster.always_available("web", 1);
    let monkey = cluster.monkey(MonkeyPlan {
        duration: Duration::from_secs(12),
        faults: vec![NodeFault::Kill, NodeFault::Stop],
        ..MonkeyPlan::default()
    });
    monkey.finish().await?;
    available.finish().await?;
    cluster.wait_for_nodes_ready(WAIT).await?;
    cluster
        .wait_for_deployment_available("web", 3, WAIT)
        .await?;
    Ok(())
}

#[chaos_test(masters = 1, workers = 3)]
async fn killed_pods_are_replaced(cluster: &Cluster) -> anyhow::Result<()> {
    deploy(cluster).await?;
    let killed = cluster.kill_pods("app=web").await?;
    anyhow::ensure!(killed.len() == 3, "killed {killed:?}");
    cluster.wait_for_pods_running("app=web", 3, WAIT).await?;
    Ok(())
}

#[chaos_test(masters = 1, workers = 3)]
async fn a_drained_worker_keeps_the_app_within_its_budget(cluster: &Cluster) -> anyhow::Result<()> {
    deploy(cluster).await?;
    cluster
        .apply("apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: web}\nspec: {maxUnavailable: 1, selector: {matchLabels: {app: web}}}\n")
        .await?;
    let available = cluster.always_available("web", 2);
    let worker = cluster.workers()[0];
    let drained = worker.drain(WAIT).await?;
    cluster
        .wait_for_deployment_available("web", 3, WAIT)
        .await?;
    drained.undo().await?;
    available.finish().await?;
    Ok(())
}

// --- 3. The same test across several Kubernetes versions ----------------------------------------

#[chaos_test(masters = 1, workers = 1, k8s = ["1.34", "1.35", "1.36"])]
async fn version_matrix(cluster: &Cluster) -> anyhow::Result<()> {
    let info = cluster.client().apiserver_version().await?;
    let want = cluster.topology().control_plane_version();
    anyhow::ensure!(
        info.minor.trim_end_matches('+') == want.minor.to_string(),
        "API server 1.{}, expected {want}",
        info.minor
    );
    versions_match(cluster).await
}

// --- 4. Control plane and workers on different versions -----------------------------------------

#[chaos_test(masters = 1, workers = 3, k8s = "1.35", worker_versions = ["1.34"])]
async fn control_plane_and_workers_on_different_versions(cluster: &Cluster) -> anyhow::Result<()> {
    versions_match(cluster).await?;
    deploy(cluster).await
}

// --- 5. Workers on different versions among themselves -------------------------------------------

#[chaos_test(masters = 1, workers = 3, k8s = "1.35", worker_versions = ["1.35", "1.34", "1.35"])]
async fn workers_on_different_versions(cluster: &Cluster) -> anyhow::Result<()> {
    versions_match(cluster).await?;
    deploy(cluster).await
}

// --- 6. An HA control plane that loses one and keeps serving -------------------------------------

#[chaos_test(masters = 3, workers = 2, timeout = "15m")]
async fn ha_control_plane_loses_one_and_keeps_serving(cluster: &Cluster) -> anyhow::Result<()> {
    deploy(cluster).await?;
    let available = cluster.always_available("web", 1);
    let lost = cluster.lose_control_plane().await?;
    let master = cluster.masters()[2].name().to_owned();
    cluster.wait_for_node_ready(&master, false, WAIT).await?;
    // The API keeps serving from the other two: reads and writes work.
    let nodes: Api<NodeObject> = Api::all(cluster.client());
    anyhow::ensure!(
        nodes.list(&ListParams::default()).await?.items.len() == 5,
        "all nodes listed"
    );
    cluster
        .apply("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: written-during-the-loss}\n")
        .await?;
    lost.undo().await?;
    cluster.wait_for_nodes_ready(WAIT).await?;
    available.finish().await?;
    Ok(())
}

chaos_runtime::main!();
