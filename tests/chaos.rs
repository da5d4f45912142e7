//! The harness, end to end on the sim (pinned, so `cargo test` is the same everywhere): nine
//! tests over three topologies, so three clusters, each test checking its cluster through the API.

use std::collections::BTreeMap;

use chaos_runtime::k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node as NodeObject};
use chaos_runtime::kube::Api;
use chaos_runtime::kube::api::{ListParams, ObjectMeta, PostParams};
use chaos_runtime::prelude::*;

const CONTROL_PLANE_LABEL: &str = "node-role.kubernetes.io/control-plane";

/// The nodes the API reports, as `name -> (is control plane, kubelet version)`.
async fn nodes_by_name(cluster: &Cluster) -> anyhow::Result<BTreeMap<String, (bool, String)>> {
    let nodes: Api<NodeObject> = Api::all(cluster.client());
    let mut found = BTreeMap::new();
    for node in nodes.list(&ListParams::default()).await?.items {
        let is_master = node
            .metadata
            .labels
            .unwrap_or_default()
            .contains_key(CONTROL_PLANE_LABEL);
        let kubelet = node
            .status
            .and_then(|s| s.node_info)
            .map(|i| i.kubelet_version)
            .unwrap_or_default();
        found.insert(node.metadata.name.unwrap_or_default(), (is_master, kubelet));
    }
    Ok(found)
}

/// Checks the API shows `masters` control planes at `master_kubelet` and workers at
/// `worker_kubelets` (in kind's naming order).
async fn assert_nodes(
    cluster: &Cluster,
    masters: usize,
    master_kubelet: &str,
    worker_kubelets: &[&str],
) -> anyhow::Result<()> {
    let nodes = nodes_by_name(cluster).await?;
    let mut expected = BTreeMap::new();
    for i in 1..=masters {
        let suffix = if i == 1 { String::new() } else { i.to_string() };
        expected.insert(
            format!("{}-control-plane{suffix}", cluster.name()),
            (true, master_kubelet.to_owned()),
        );
    }
    for (i, kubelet) in worker_kubelets.iter().enumerate() {
        let suffix = if i == 0 {
            String::new()
        } else {
            (i + 1).to_string()
        };
        expected.insert(
            format!("{}-worker{suffix}", cluster.name()),
            (false, kubelet.to_string()),
        );
    }
    assert_eq!(
        nodes,
        expected,
        "nodes of {} (name -> (control plane, kubelet))",
        cluster.name()
    );
    Ok(())
}

#[chaos_test(masters = 3, workers = 3, k8s = "1.29", worker_versions = ["1.28"])]
async fn ha_mixed_nodes_have_their_roles_and_versions(cluster: &Cluster) -> anyhow::Result<()> {
    assert_nodes(cluster, 3, "v1.29.14", &["v1.28.15"; 3]).await
}

#[chaos_test(masters = 3, workers = 3, k8s = "1.29", worker_versions = ["1.28"])]
async fn ha_mixed_api_server_reports_the_control_plane_version(
    cluster: &Cluster,
) -> anyhow::Result<()> {
    let info = cluster.client().apiserver_version().await?;
    assert_eq!((info.major.as_str(), info.minor.as_str()), ("1", "29"));
    assert_eq!(info.git_version, "v1.29.14");
    Ok(())
}

// The same topology as above, written in another order: it shares their cluster.
#[chaos_test(worker_versions = ["1.28", "1.28", "1.28"], k8s = "v1.29", workers = 3, masters = 3)]
async fn ha_mixed_runtime_view_matches_the_api(cluster: &Cluster) -> anyhow::Result<()> {
    let nodes = nodes_by_name(cluster).await?;
    assert_eq!(cluster.masters().len(), 3);
    assert_eq!(cluster.workers().len(), 3);
    for node in cluster.nodes() {
        let (is_master, kubelet) = &nodes[node.name()];
        assert_eq!(
            *is_master,
            node.role() == Role::ControlPlane,
            "{}",
            node.name()
        );
        assert_eq!(kubelet, node.kubelet_version(), "{}", node.name());
    }
    let worker = cluster
        .node(&format!("{}-worker2", cluster.name()))
        .expect("worker2 exists");
    assert_eq!(worker.version().to_string(), "1.28");
    Ok(())
}

#[chaos_test(masters = 1, workers = 3, k8s = "1.30")]
async fn single_master_nodes_have_their_roles_and_versions(
    cluster: &Cluster,
) -> anyhow::Result<()> {
    assert_nodes(cluster, 1, "v1.30.13", &["v1.30.13"; 3]).await
}

#[chaos_test(masters = 1, workers = 3, k8s = "1.30")]
async fn single_master_test_namespace_is_fresh(cluster: &Cluster) -> anyhow::Result<()> {
    let ns = cluster.namespace().to_owned();
    let configmaps: Api<ConfigMap> = Api::namespaced(cluster.client(), &ns);
    assert!(
        configmaps
            .list(&ListParams::default())
            .await?
            .items
            .is_empty()
    );
    let cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some("left-behind".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    configmaps.create(&PostParams::default(), &cm).await?;
    Ok(())
}

// Runs after the test above on the same cluster (tests run in name order): the heal removed its
// namespace, so only this test's own namespace is left.
#[chaos_test(masters = 1, workers = 3, k8s = "1.30")]
async fn single_master_then_earlier_namespaces_are_gone(cluster: &Cluster) -> anyhow::Result<()> {
    let namespaces: Api<Namespace> = Api::all(cluster.client());
    let ours = namespaces
        .list(&ListParams::default().labels("app.kubernetes.io/managed-by=chaos-runtime"))
        .await?;
    let names: Vec<String> = ours
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    assert_eq!(names, [cluster.namespace().to_owned()]);
    Ok(())
}

#[chaos_test(masters = 1, workers = 2, k8s = "1.31", worker_versions = ["1.31", "1.30"])]
async fn per_worker_versions_are_kept_in_order(cluster: &Cluster) -> anyhow::Result<()> {
    assert_nodes(cluster, 1, "v1.31.14", &["v1.31.14", "v1.30.13"]).await
}

#[chaos_test(masters = 1, workers = 2, k8s = "1.31", worker_versions = ["1.31", "1.30"])]
async fn per_worker_seed_drives_the_test_rng(cluster: &Cluster) -> anyhow::Result<()> {
    use chaos_runtime::rand::RngExt;
    let first: u64 = cluster.rng().random();
    let again: u64 = cluster.rng().random();
    assert_eq!(first, again, "the same seed draws the same numbers");
    assert!(
        cluster
            .namespace()
            .starts_with("chaos-per-worker-seed-drives-the-test-rng-")
    );
    Ok(())
}

#[chaos_test(masters = 1, workers = 2, k8s = "1.31", worker_versions = ["1.31", "1.30"])]
async fn per_worker_apply_puts_manifests_in_the_test_namespace(
    cluster: &Cluster,
) -> anyhow::Result<()> {
    let applied = cluster
        .apply(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app-config}\ndata: {mode: chaos}\n",
        )
        .await?;
    assert_eq!(applied.len(), 1);
    let configmaps: Api<ConfigMap> = Api::namespaced(cluster.client(), cluster.namespace());
    let stored = configmaps.get("app-config").await?;
    assert_eq!(stored.data.unwrap_or_default()["mode"], "chaos");
    Ok(())
}

chaos_runtime::main!(provider = "sim");
