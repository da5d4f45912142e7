//! The simulated control plane, driven and observed through a real `kube::Client`: every wait
//! is a watch (`await_condition` or a reflector), bounded by a timeout.

use std::future::Future;
use std::pin::pin;
use std::time::Duration;

use chaos_sim::ApiServer;
use chaos_sim::control::{ControlPlane, Timings};
use futures::TryStreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, DeleteParams, EvictParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::reflector;
use kube::runtime::wait::await_condition;
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use tokio::time::Instant;

/// Every wait is bounded, so a bug fails the test instead of hanging it.
const WAIT: Duration = Duration::from_secs(10);

const WORKERS: [&str; 3] = ["worker", "worker2", "worker3"];

async fn within<F: Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(WAIT, future)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// A kind-shaped cluster: a tainted control plane and three workers, each with a kubelet.
fn cluster(timings: Timings) -> (ApiServer, Client, ControlPlane) {
    let server = ApiServer::new("v1.35.8");
    let control_plane =
        json!([{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]);
    server
        .create(node("control-plane", Some(control_plane)))
        .unwrap();
    for worker in WORKERS {
        server.create(node(worker, None)).unwrap();
    }
    let client = server.client();
    let plane = ControlPlane::start(server.clone(), timings);
    (server, client, plane)
}

fn node(name: &str, taints: Option<Value>) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "spec": {"taints": taints},
    })
}

fn deployment(name: &str, replicas: i32) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "nginx:1"}]},
            },
        },
    }))
    .unwrap()
}

fn pod(name: &str, spec_extra: Value) -> Pod {
    let mut spec = json!({"containers": [{"name": "app", "image": "nginx"}]});
    for (k, v) in spec_extra.as_object().unwrap() {
        spec[k] = v.clone();
    }
    serde_json::from_value(
        json!({"metadata": {"name": name, "labels": {"solo": name}}, "spec": spec}),
    )
    .unwrap()
}

async fn create_deployment(client: &Client, name: &str, replicas: i32) -> Api<Deployment> {
    let api: Api<Deployment> = Api::default_namespaced(client.clone());
    api.create(&PostParams::default(), &deployment(name, replicas))
        .await
        .unwrap();
    api
}

async fn patch<K>(api: &Api<K>, name: &str, patch: Value) -> K
where
    K: Clone + std::fmt::Debug + serde::de::DeserializeOwned + serde::Serialize,
{
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap()
}

/// Waits until the deployment reports `replicas` up to date and available, for its latest spec.
async fn available(api: &Api<Deployment>, name: &str, replicas: i32) -> Deployment {
    let done = move |d: Option<&Deployment>| {
        d.is_some_and(|d| {
            let s = d.status.clone().unwrap_or_default();
            s.observed_generation == d.metadata.generation
                && s.replicas.unwrap_or(0) == replicas
                && s.updated_replicas.unwrap_or(0) == replicas
                && s.available_replicas.unwrap_or(0) == replicas
        })
    };
    let what = format!("deployment {name} with {replicas} available replicas");
    within(&what, await_condition(api.clone(), name, done))
        .await
        .unwrap()
        .unwrap()
}

/// Watches pods matching `selector` until `done` holds for all of them; returns them.
async fn pods_until(
    client: &Client,
    selector: &str,
    what: &str,
    mut done: impl FnMut(&[Pod]) -> bool,
) -> Vec<Pod> {
    let api: Api<Pod> = Api::default_namespaced(client.clone());
    let (reader, writer) = reflector::store();
    let config = watcher::Config::default().labels(selector);
    let mut events = pin!(reflector(writer, watcher(api, config)));
    within(what, async {
        let mut listed = false;
        while let Some(event) = events.try_next().await.unwrap() {
            listed |= matches!(event, watcher::Event::InitDone);
            if listed {
                let pods: Vec<Pod> = reader.state().iter().map(|p| (**p).clone()).collect();
                if done(&pods) {
                    return pods;
                }
            }
        }
        panic!("the watch ended")
    })
    .await
}

fn condition<'a>(
    pod: &'a Pod,
    type_: &str,
) -> Option<&'a k8s_openapi::api::core::v1::PodCondition> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
}

fn ready(pod: &Pod) -> bool {
    condition(pod, "Ready").is_some_and(|c| c.status == "True")
}

fn node_of(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or_default()
}

fn node_ready(node: &Node) -> &str {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .map_or("", |c| c.status.as_str())
}

fn taint_keys(node: &Node) -> Vec<(String, String)> {
    let taints = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    taints.into_iter().map(|t| (t.key, t.effect)).collect()
}

async fn node_until(client: &Client, name: &str, what: &str, done: impl Fn(&Node) -> bool) -> Node {
    let api: Api<Node> = Api::all(client.clone());
    let cond = move |n: Option<&Node>| n.is_some_and(&done);
    within(what, await_condition(api, name, cond))
        .await
        .unwrap()
        .unwrap()
}

fn all_ready(n: usize) -> impl FnMut(&[Pod]) -> bool {
    move |pods| pods.len() == n && pods.iter().all(ready)
}

#[tokio::test]
async fn deployment_becomes_available_spread_over_workers() {
    let (_server, client, _plane) = cluster(Timings::default());
    let api = create_deployment(&client, "web", 3).await;
    let d = available(&api, "web", 3).await;

    let status = d.status.unwrap();
    assert_eq!(status.ready_replicas, Some(3));
    let conditions = status.conditions.unwrap();
    let reason = |t: &str| {
        let c = conditions.iter().find(|c| c.type_ == t).unwrap();
        (c.status.clone(), c.reason.clone().unwrap())
    };
    assert_eq!(
        reason("Available"),
        ("True".into(), "MinimumReplicasAvailable".into())
    );
    assert_eq!(
        reason("Progressing"),
        ("True".into(), "NewReplicaSetAvailable".into())
    );

    let rss = Api::<ReplicaSet>::default_namespaced(client.clone())
        .list(&ListParams::default())
        .await
        .unwrap();
    assert_eq!(rss.items.len(), 1);
    let rs = &rss.items[0];
    let hash = rs.labels()["pod-template-hash"].clone();
    assert_eq!(rs.name_any(), format!("web-{hash}"));
    assert_eq!(rs.owner_references()[0].name, "web");

    let pods = pods_until(&client, "app=web", "3 ready pods", all_ready(3)).await;
    let mut nodes: Vec<&str> = pods.iter().map(node_of).collect();
    nodes.sort();
    assert_eq!(
        nodes, WORKERS,
        "one pod per worker, none on the control plane"
    );
    for pod in &pods {
        let name = pod.name_any();
        let suffix = name.strip_prefix(&format!("web-{hash}-")).unwrap();
        assert_eq!(suffix.len(), 5, "{name}");
        let status = pod.status.as_ref().unwrap();
        assert_eq!(status.phase.as_deref(), Some("Running"));
        assert!(status.pod_ip.is_some() && status.host_ip.is_some() && status.start_time.is_some());
        let containers = status.container_statuses.as_ref().unwrap();
        assert!(containers[0].ready && containers[0].state.as_ref().unwrap().running.is_some());
        let tolerations = pod.spec.as_ref().unwrap().tolerations.as_ref().unwrap();
        assert!(tolerations.iter().any(|t| t.key.as_deref()
            == Some("node.kubernetes.io/unreachable")
            && t.toleration_seconds == Some(2)));
    }
}

#[tokio::test]
async fn scale_up_and_down() {
    let (_server, client, _plane) = cluster(Timings::default());
    let api = create_deployment(&client, "web", 3).await;
    available(&api, "web", 3).await;

    patch(&api, "web", json!({"spec": {"replicas": 5}})).await;
    available(&api, "web", 5).await;
    let pods = pods_until(&client, "app=web", "5 ready pods", all_ready(5)).await;
    assert!(pods.iter().all(|p| WORKERS.contains(&node_of(p))));

    patch(&api, "web", json!({"spec": {"replicas": 1}})).await;
    available(&api, "web", 1).await;
    pods_until(&client, "app=web", "1 pod left", all_ready(1)).await;
}

#[tokio::test]
async fn standalone_replica_set_keeps_its_pods() {
    let (_server, client, _plane) = cluster(Timings::default());
    let api: Api<ReplicaSet> = Api::default_namespaced(client.clone());
    let rs: ReplicaSet = serde_json::from_value(json!({
        "metadata": {"name": "solo"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "solo"}},
            "template": {"metadata": {"labels": {"app": "solo"}},
                         "spec": {"containers": [{"name": "app", "image": "nginx"}]}},
        },
    }))
    .unwrap();
    api.create(&PostParams::default(), &rs).await.unwrap();
    let pods = pods_until(&client, "app=solo", "2 ready pods", all_ready(2)).await;

    let victim = pods[0].name_any();
    Api::<Pod>::default_namespaced(client.clone())
        .delete(&victim, &DeleteParams::default())
        .await
        .unwrap();
    pods_until(&client, "app=solo", "a replacement", |pods| {
        all_ready(2)(pods) && pods.iter().all(|p| p.name_any() != victim)
    })
    .await;
    let rs = api.get_status("solo").await.unwrap().status.unwrap();
    assert_eq!(
        (rs.replicas, rs.ready_replicas, rs.available_replicas),
        (2, Some(2), Some(2))
    );
}

#[tokio::test]
async fn template_change_rolls() {
    let (_server, client, _plane) = cluster(Timings::default());
    let api = create_deployment(&client, "web", 3).await;
    available(&api, "web", 3).await;

    let image = json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "nginx:2"}]}}}});
    patch(&api, "web", image).await;
    let d = available(&api, "web", 3).await;
    assert_eq!(d.annotations()["deployment.kubernetes.io/revision"], "2");

    let image_of = |p: &Pod| {
        p.spec.as_ref().unwrap().containers[0]
            .image
            .clone()
            .unwrap()
    };
    pods_until(&client, "app=web", "3 new pods", |pods| {
        all_ready(3)(pods) && pods.iter().all(|p| image_of(p) == "nginx:2")
    })
    .await;
    let rss = Api::<ReplicaSet>::default_namespaced(client.clone())
        .list(&ListParams::default())
        .await
        .unwrap();
    let mut scales: Vec<i32> = rss
        .items
        .iter()
        .map(|rs| rs.spec.as_ref().unwrap().replicas.unwrap())
        .collect();
    scales.sort();
    assert_eq!(scales, [0, 3], "the old ReplicaSet is scaled to zero");
}

#[tokio::test]
async fn deleting_a_deployment_removes_its_pods() {
    let (_server, client, _plane) = cluster(Timings::default());
    let api = create_deployment(&client, "web", 3).await;
    available(&api, "web", 3).await;

    api.delete("web", &DeleteParams::default()).await.unwrap();
    pods_until(&client, "app=web", "no pods", <[Pod]>::is_empty).await;
    let rss = Api::<ReplicaSet>::default_namespaced(client.clone())
        .list(&ListParams::default())
        .await
        .unwrap();
    assert!(rss.items.is_empty());
}

#[tokio::test]
async fn an_untolerated_taint_keeps_a_pod_pending_until_removed() {
    let (_server, client, _plane) = cluster(Timings::default());
    let nodes: Api<Node> = Api::all(client.clone());
    let taint =
        json!({"spec": {"taints": [{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]}});
    for worker in WORKERS {
        patch(&nodes, worker, taint.clone()).await;
    }
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    pods.create(&PostParams::default(), &pod("plain", json!({})))
        .await
        .unwrap();
    let tolerating = json!({"tolerations": [{"key": "dedicated", "operator": "Equal", "value": "db", "effect": "NoSchedule"}]});
    pods.create(&PostParams::default(), &pod("tolerating", tolerating))
        .await
        .unwrap();

    let pending = pods_until(&client, "solo=plain", "Unschedulable", |pods| {
        pods.iter()
            .any(|p| condition(p, "PodScheduled").is_some_and(|c| c.status == "False"))
    })
    .await;
    let scheduled = condition(&pending[0], "PodScheduled").unwrap();
    assert_eq!(scheduled.reason.as_deref(), Some("Unschedulable"));
    let message = scheduled.message.clone().unwrap();
    assert!(message.starts_with("0/4 nodes are available"), "{message}");
    assert!(
        message.contains("3 node(s) had untolerated taint {dedicated: db}"),
        "{message}"
    );
    pods_until(
        &client,
        "solo=tolerating",
        "the tolerating pod running",
        all_ready(1),
    )
    .await;

    patch(&nodes, "worker2", json!({"spec": {"taints": null}})).await;
    let running = pods_until(&client, "solo=plain", "the pod running", all_ready(1)).await;
    assert_eq!(node_of(&running[0]), "worker2");
}

#[tokio::test]
async fn cordoned_nodes_get_no_new_pods() {
    let (_server, client, _plane) = cluster(Timings::default());
    let nodes: Api<Node> = Api::all(client.clone());
    for worker in ["worker", "worker2"] {
        patch(&nodes, worker, json!({"spec": {"unschedulable": true}})).await;
    }
    let api = create_deployment(&client, "web", 3).await;
    available(&api, "web", 3).await;
    let pods = pods_until(&client, "app=web", "3 ready pods", all_ready(3)).await;
    assert!(pods.iter().all(|p| node_of(p) == "worker3"));

    patch(&nodes, "worker", json!({"spec": {"unschedulable": false}})).await;
    patch(&api, "web", json!({"spec": {"replicas": 4}})).await;
    let pods = pods_until(&client, "app=web", "4 ready pods", all_ready(4)).await;
    assert!(
        pods.iter().any(|p| node_of(p) == "worker"),
        "uncordoned: takes pods again"
    );
    assert!(pods.iter().all(|p| node_of(p) != "worker2"));
}

#[tokio::test]
async fn a_stopped_kubelet_loses_its_node_and_pods_move() {
    let timings = Timings::default();
    let (_server, client, plane) = cluster(timings.clone());
    let api = create_deployment(&client, "web", 3).await;
    available(&api, "web", 3).await;
    let pods = pods_until(&client, "app=web", "3 ready pods", all_ready(3)).await;
    let lost = node_of(&pods[0]).to_string();

    // Pods that stay: one tolerating unreachable for long, one for good.
    let pods_api: Api<Pod> = Api::default_namespaced(client.clone());
    let stay = |seconds: Option<i64>| {
        json!({"nodeName": lost, "tolerations": [{"key": "node.kubernetes.io/unreachable",
            "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": seconds}]})
    };
    pods_api
        .create(&PostParams::default(), &pod("patient", stay(Some(3600))))
        .await
        .unwrap();
    pods_api
        .create(&PostParams::default(), &pod("forever", stay(None)))
        .await
        .unwrap();
    pods_until(
        &client,
        "solo=patient",
        "the patient pod ready",
        all_ready(1),
    )
    .await;

    plane.stop_kubelet(&lost);
    assert!(!plane.kubelet_running(&lost));
    let stopped = Instant::now();
    let node = node_until(&client, &lost, "Ready=Unknown", |n| {
        node_ready(n) == "Unknown"
    })
    .await;
    let elapsed = stopped.elapsed();
    assert!(
        elapsed >= timings.node_monitor_grace - timings.heartbeat,
        "{elapsed:?}"
    );
    assert!(
        elapsed < timings.node_monitor_grace + Duration::from_secs(1),
        "{elapsed:?}"
    );
    let ready = node
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(ready.reason.as_deref(), Some("NodeStatusUnknown"));
    assert_eq!(
        ready.message.as_deref(),
        Some("Kubelet stopped posting node status.")
    );

    let node = node_until(&client, &lost, "unreachable taints", |n| {
        taint_keys(n).len() == 2
    })
    .await;
    let unreachable = "node.kubernetes.io/unreachable".to_string();
    let mut keys = taint_keys(&node);
    keys.sort();
    assert_eq!(
        keys,
        [
            (unreachable.clone(), "NoExecute".into()),
            (unreachable, "NoSchedule".into())
        ]
    );
    assert!(
        node.spec
            .unwrap()
            .taints
            .unwrap()
            .iter()
            .all(|t| t.time_added.is_some())
    );
    pods_until(
        &client,
        "solo=patient",
        "the patient pod not ready",
        |pods| {
            pods.iter()
                .all(|p| condition(p, "Ready").is_some_and(|c| c.status == "False"))
        },
    )
    .await;

    // The default toleration runs out: the ReplicaSet's pods are evicted and replaced elsewhere.
    let moved = pods_until(&client, "app=web", "pods moved off the lost node", |pods| {
        all_ready(3)(pods) && pods.iter().all(|p| node_of(p) != lost)
    })
    .await;
    assert!(stopped.elapsed() >= timings.node_monitor_grace + Duration::from_secs(2));
    assert!(moved.iter().all(|p| WORKERS.contains(&node_of(p))));
    available(&api, "web", 3).await;
    let names: Vec<String> = pods_api
        .list(&ListParams::default().labels("solo"))
        .await
        .unwrap()
        .items
        .iter()
        .map(|p| p.name_any())
        .collect();
    assert_eq!(
        names,
        ["forever", "patient"],
        "long tolerations keep their pods"
    );

    plane.start_kubelet(&lost);
    node_until(&client, &lost, "Ready again, untainted", |n| {
        node_ready(n) == "True" && taint_keys(n).is_empty()
    })
    .await;
    // Its containers ran all along: ready again, no restart.
    let back = pods_until(
        &client,
        "solo=patient",
        "the patient pod ready again",
        all_ready(1),
    )
    .await;
    let restarts = back[0]
        .status
        .as_ref()
        .unwrap()
        .container_statuses
        .as_ref()
        .unwrap()[0]
        .restart_count;
    assert_eq!(restarts, 0);
}

#[tokio::test]
async fn a_crashed_node_restarts_its_pods() {
    let (_server, client, plane) = cluster(Timings::default());
    let pods_api: Api<Pod> = Api::default_namespaced(client.clone());
    pods_api
        .create(
            &PostParams::default(),
            &pod("victim", json!({"nodeName": "worker"})),
        )
        .await
        .unwrap();
    pods_until(&client, "solo=victim", "the pod ready", all_ready(1)).await;

    plane.crash_node("worker");
    plane.start_kubelet("worker");
    let restarted = pods_until(&client, "solo=victim", "the pod restarted", |pods| {
        all_ready(1)(pods)
            && pods[0]
                .status
                .as_ref()
                .unwrap()
                .container_statuses
                .as_ref()
                .unwrap()[0]
                .restart_count
                == 1
    })
    .await;
    let container = &restarted[0]
        .status
        .as_ref()
        .unwrap()
        .container_statuses
        .as_ref()
        .unwrap()[0];
    let last = container
        .last_state
        .as_ref()
        .unwrap()
        .terminated
        .as_ref()
        .unwrap();
    assert_eq!(last.exit_code, 255);
}

#[tokio::test]
async fn eviction_honours_the_disruption_budget() {
    let (_server, client, _plane) = cluster(Timings::default());
    let api = create_deployment(&client, "web", 3).await;
    available(&api, "web", 3).await;
    let pods = pods_until(&client, "app=web", "3 ready pods", all_ready(3)).await;
    let pdbs: Api<PodDisruptionBudget> = Api::default_namespaced(client.clone());
    let pdb: PodDisruptionBudget = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"minAvailable": 3, "selector": {"matchLabels": {"app": "web"}}},
    }))
    .unwrap();
    pdbs.create(&PostParams::default(), &pdb).await.unwrap();
    let observed = |pdb: Option<&PodDisruptionBudget>| {
        pdb.and_then(|p| p.status.as_ref())
            .is_some_and(|s| s.observed_generation == pdb.unwrap().metadata.generation)
    };
    let pdb = within(
        "the budget's status",
        await_condition(pdbs.clone(), "web", observed),
    )
    .await
    .unwrap()
    .unwrap();
    let status = pdb.status.unwrap();
    assert_eq!(
        (
            status.current_healthy,
            status.desired_healthy,
            status.disruptions_allowed
        ),
        (3, 3, 0)
    );

    let pods_api: Api<Pod> = Api::default_namespaced(client.clone());
    let victim = pods[0].name_any();
    match pods_api.evict(&victim, &EvictParams::default()).await {
        Err(kube::Error::Api(status)) => {
            assert_eq!(
                (status.code, status.reason.as_str()),
                (429, "TooManyRequests")
            );
        }
        other => panic!("expected 429, got {other:?}"),
    }
    assert!(pods_api.get_opt(&victim).await.unwrap().is_some());

    let spec = json!({"spec": {"minAvailable": null, "maxUnavailable": 1}});
    patch(&pdbs, "web", spec).await;
    pods_api
        .evict(&victim, &EvictParams::default())
        .await
        .unwrap();
    assert!(pods_api.get_opt(&victim).await.unwrap().is_none());
    pods_until(&client, "app=web", "a replacement", |pods| {
        all_ready(3)(pods) && pods.iter().all(|p| p.name_any() != victim)
    })
    .await;
}

#[tokio::test]
async fn timings_are_configurable() {
    let timings = Timings {
        node_monitor_grace: Duration::from_secs(3),
        ..Timings::default()
    };
    let (_server, client, plane) = cluster(timings);
    node_until(&client, "worker", "Ready", |n| node_ready(n) == "True").await;

    plane.stop_kubelet("worker");
    let stopped = Instant::now();
    let api: Api<Node> = Api::all(client.clone());
    let unknown = |n: Option<&Node>| n.is_some_and(|n| node_ready(n) == "Unknown");
    let early = tokio::time::timeout(
        Duration::from_millis(1500),
        await_condition(api.clone(), "worker", unknown),
    )
    .await;
    assert!(early.is_err(), "still Ready within the longer grace period");
    assert_eq!(node_ready(&api.get("worker").await.unwrap()), "True");

    node_until(&client, "worker", "Ready=Unknown", |n| {
        node_ready(n) == "Unknown"
    })
    .await;
    assert!(
        stopped.elapsed() >= Duration::from_millis(2750),
        "{:?}",
        stopped.elapsed()
    );
}

/// `(reason, involved kind, involved name, message)` of every Event in `namespace`, oldest first.
async fn events_in(client: &Client, namespace: &str) -> Vec<(String, String, String, String)> {
    let api: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client.clone(), namespace);
    let mut events = api.list(&ListParams::default()).await.unwrap().items;
    events.sort_by_key(|e| {
        e.metadata
            .resource_version
            .clone()
            .map(|v| v.parse::<u64>().unwrap())
    });
    events
        .into_iter()
        .map(|e| {
            (
                e.reason.unwrap_or_default(),
                e.involved_object.kind.unwrap_or_default(),
                e.involved_object.name.unwrap_or_default(),
                e.message.unwrap_or_default(),
            )
        })
        .collect()
}

#[tokio::test]
async fn the_components_record_the_events_kubernetes_records() {
    let (_server, client, plane) = cluster(Timings::default());
    let api = create_deployment(&client, "web", 2).await;
    available(&api, "web", 2).await;
    let pods = pods_until(&client, "app=web", "2 ready pods", all_ready(2)).await;
    let events = events_in(&client, "default").await;
    let has = |reason: &str, kind: &str, message: &str| {
        events
            .iter()
            .any(|(r, k, _, m)| r == reason && k == kind && m.contains(message))
    };
    assert!(
        has(
            "ScalingReplicaSet",
            "Deployment",
            "Scaled up replica set web-"
        ),
        "{events:?}"
    );
    assert!(
        has("ScalingReplicaSet", "Deployment", "from 0 to 2"),
        "{events:?}"
    );
    for pod in &pods {
        let name = pod.name_any();
        assert!(
            has(
                "SuccessfulCreate",
                "ReplicaSet",
                &format!("Created pod: {name}")
            ),
            "{events:?}"
        );
        let assigned = format!("Successfully assigned default/{name} to {}", node_of(pod));
        assert!(has("Scheduled", "Pod", &assigned), "{events:?}");
    }

    // A node that stops reporting, and comes back: the node controller's and the kubelet's.
    let lost = node_of(&pods[0]).to_string();
    plane.stop_kubelet(&lost);
    node_until(&client, &lost, "Ready=Unknown", |n| {
        node_ready(n) == "Unknown"
    })
    .await;
    plane.start_kubelet(&lost);
    node_until(&client, &lost, "Ready=True", |n| node_ready(n) == "True").await;
    let events = events_in(&client, "default").await;
    let of_node: Vec<&str> = events
        .iter()
        .filter(|(_, kind, name, _)| kind == "Node" && *name == lost)
        .map(|(reason, ..)| reason.as_str())
        .collect();
    // The kubelet also said NodeReady when it first posted the node Ready.
    assert!(
        of_node.ends_with(&["NodeNotReady", "NodeReady"]),
        "{events:?}"
    );
}
