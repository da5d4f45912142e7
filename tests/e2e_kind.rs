//! End to end on real kind clusters: a 3 + 3 cluster with older workers and a 1 + 3 one, an app
//! deployed, a worker stopped and started, versions checked per node.
//!
//! Runs with `CHAOS_E2E=kind` (needs Docker, kind, and pullable `kindest/node` images: see
//! `.github/workflows/e2e-kind.yml`); elsewhere every test is reported as ignored, with the reason.

use std::time::Duration;

use chaos_runtime::k8s_openapi::api::apps::v1::Deployment;
use chaos_runtime::k8s_openapi::api::core::v1::{Node as NodeObject, Service};
use chaos_runtime::kube::api::{ListParams, Patch, PatchParams};
use chaos_runtime::kube::runtime::watcher;
use chaos_runtime::kube::{Api, Client};
use chaos_runtime::prelude::*;
use chaos_runtime::wait;

const APP: &str = r#"{
  "apiVersion": "apps/v1", "kind": "Deployment",
  "metadata": {"name": "web", "labels": {"app": "web"}},
  "spec": {
    "replicas": 3,
    "selector": {"matchLabels": {"app": "web"}},
    "template": {
      "metadata": {"labels": {"app": "web"}},
      "spec": {
        "tolerations": [
          {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5},
          {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5}
        ],
        "containers": [{"name": "web", "image": "registry.k8s.io/pause:3.10"}]
      }
    }
  }
}"#;

const SERVICE: &str = r#"{
  "apiVersion": "v1", "kind": "Service",
  "metadata": {"name": "web"},
  "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 80}]}
}"#;

/// Every node reports the kubelet version and role the topology gave it.
async fn assert_versions_per_node(cluster: &Cluster) -> anyhow::Result<()> {
    let nodes: Api<NodeObject> = Api::all(cluster.client());
    let listed = nodes.list(&ListParams::default()).await?.items;
    anyhow::ensure!(
        listed.len() == cluster.nodes().len(),
        "{} nodes listed, {} expected",
        listed.len(),
        cluster.nodes().len()
    );
    for node in cluster.nodes() {
        let object = listed
            .iter()
            .find(|n| n.metadata.name.as_deref() == Some(node.name()))
            .ok_or_else(|| anyhow::anyhow!("node {} is not in the API", node.name()))?;
        let kubelet = object
            .status
            .as_ref()
            .and_then(|s| s.node_info.as_ref())
            .map(|i| i.kubelet_version.as_str());
        anyhow::ensure!(
            kubelet == Some(node.kubelet_version()),
            "node {}: kubelet {kubelet:?}, expected {}",
            node.name(),
            node.kubelet_version()
        );
        let labels = object.metadata.labels.clone().unwrap_or_default();
        let is_master = labels.contains_key("node-role.kubernetes.io/control-plane");
        anyhow::ensure!(
            is_master == (node.role() == Role::ControlPlane),
            "node {}: control-plane label {is_master}",
            node.name()
        );
    }
    Ok(())
}

async fn deploy_app(cluster: &Cluster) -> anyhow::Result<()> {
    let params = PatchParams::apply("chaos-e2e").force();
    let deployments: Api<Deployment> = Api::namespaced(cluster.client(), cluster.namespace());
    deployments
        .patch(
            "web",
            &params,
            &Patch::Apply(serde_json::from_str::<serde_json::Value>(APP)?),
        )
        .await?;
    let services: Api<Service> = Api::namespaced(cluster.client(), cluster.namespace());
    services
        .patch(
            "web",
            &params,
            &Patch::Apply(serde_json::from_str::<serde_json::Value>(SERVICE)?),
        )
        .await?;
    Ok(())
}

async fn app_available(client: Client, namespace: &str, timeout: Duration) -> anyhow::Result<()> {
    let api: Api<Deployment> = Api::namespaced(client, namespace);
    let config = watcher::Config::default().fields("metadata.name=web");
    wait::until_list(
        api,
        config,
        "deployment web with 3 ready replicas",
        timeout,
        |found| {
            let ready = found
                .first()
                .and_then(|d| d.status.as_ref())
                .and_then(|s| s.ready_replicas)
                .unwrap_or(0);
            if ready >= 3 {
                Ok(())
            } else {
                Err(format!("{ready} ready replicas"))
            }
        },
    )
    .await?;
    Ok(())
}

async fn node_ready_is(
    client: Client,
    node: &str,
    want: bool,
    timeout: Duration,
) -> anyhow::Result<()> {
    let api: Api<NodeObject> = Api::all(client);
    let config = watcher::Config::default().fields(&format!("metadata.name={node}"));
    let waited_for = format!(
        "node {node} Ready={}",
        if want { "True" } else { "not True" }
    );
    wait::until_list(api, config, waited_for, timeout, |found| {
        let ready = found
            .first()
            .and_then(|n| {
                n.status
                    .as_ref()?
                    .conditions
                    .as_ref()?
                    .iter()
                    .find(|c| c.type_ == "Ready")
                    .map(|c| c.status.clone())
            })
            .unwrap_or_else(|| "unknown".to_owned());
        if (ready == "True") == want {
            Ok(())
        } else {
            Err(format!("Ready={ready}"))
        }
    })
    .await?;
    Ok(())
}

#[chaos_test(masters = 3, workers = 3, k8s = "1.29", worker_versions = ["1.28"], timeout = "20m")]
async fn ha_mixed_versions_every_node_reports_its_version(cluster: &Cluster) -> anyhow::Result<()> {
    assert_versions_per_node(cluster).await
}

#[chaos_test(masters = 3, workers = 3, k8s = "1.29", worker_versions = ["1.28"], timeout = "20m")]
async fn ha_mixed_app_survives_a_worker_stop_and_start(cluster: &Cluster) -> anyhow::Result<()> {
    stop_and_start_a_worker(cluster).await
}

#[chaos_test(masters = 1, workers = 3, timeout = "20m")]
async fn single_master_versions_per_node(cluster: &Cluster) -> anyhow::Result<()> {
    assert_versions_per_node(cluster).await
}

#[chaos_test(masters = 1, workers = 3, timeout = "20m")]
async fn single_master_app_survives_a_worker_stop_and_start(
    cluster: &Cluster,
) -> anyhow::Result<()> {
    stop_and_start_a_worker(cluster).await
}

/// Deploys the app, stops a worker's container, sees the node go NotReady and the app stay (or
/// come back to) available, starts it again and sees the node Ready.
async fn stop_and_start_a_worker(cluster: &Cluster) -> anyhow::Result<()> {
    deploy_app(cluster).await?;
    app_available(
        cluster.client(),
        cluster.namespace(),
        Duration::from_secs(300),
    )
    .await?;
    let node = cluster.workers()[0];
    let worker = node.name().to_owned();
    let available = cluster.always_available("web", 1);
    let _stopped = node.stop().await?; // `docker stop` of the node's container
    node_ready_is(cluster.client(), &worker, false, Duration::from_secs(120)).await?;
    app_available(
        cluster.client(),
        cluster.namespace(),
        Duration::from_secs(180),
    )
    .await?;
    node.start().await?;
    node_ready_is(cluster.client(), &worker, true, Duration::from_secs(180)).await?;
    available.finish().await?;
    assert_versions_per_node(cluster).await
}

chaos_runtime::main!(only_if_env = "CHAOS_E2E=kind");
