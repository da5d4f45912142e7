//! The stand-in's init node in-process, without Docker: the simulated API served over TLS,
//! reached by kube-rs through a kubeconfig like kubeadm's, and a kubelet stand-in for one node.

use std::path::Path;
use std::time::Duration;

use chaos_sim::control::Timings;
use chaos_standin::apiserver;
use chaos_standin::kubeconfig::{self, Credentials};
use chaos_standin::kubelet::{self, Flags, Settings};
use chaos_standin::pki::Ca;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;
use tokio::task::JoinHandle;

const NODE: &str = "chaos-worker";
const NODE_IP: &str = "172.18.0.9";
const GRACE: Duration = Duration::from_secs(2);

struct Cluster {
    dir: std::path::PathBuf,
    admin: kube::Client,
    kubelet_conf: std::path::PathBuf,
    _server: JoinHandle<()>,
    _sim: apiserver::Simulator,
}

/// The TLS API on 127.0.0.1 with a fresh CA, and an admin client from a kubeconfig with a
/// client certificate, as `kubeadm init` writes admin.conf.
async fn start_cluster(name: &str) -> Cluster {
    let dir = std::env::temp_dir().join(format!("standin-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let ca = Ca::generate("kubernetes").unwrap();
    let sans = chaos_standin::pki::apiserver_sans(
        "chaos-control-plane",
        &[],
        "chaos-control-plane:6443",
        &[],
    );
    let serving = ca.serving_cert(&sans).unwrap();
    let acceptor = apiserver::tls_acceptor(&serving.cert_pem, &serving.key_pem).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server_url = format!(
        "https://127.0.0.1:{}",
        listener.local_addr().unwrap().port()
    );
    let timings = Timings {
        pod_start: Duration::from_millis(200),
        heartbeat: Duration::from_secs(10),
        node_monitor_grace: GRACE,
        default_toleration_seconds: 300,
    };
    let sim = apiserver::start_simulator("v1.31.4", timings);
    let server = tokio::spawn(apiserver::serve_tls(sim.server.clone(), listener, acceptor));

    let admin_cert = ca
        .client_cert("kubernetes-admin", "kubeadm:cluster-admins")
        .unwrap();
    let admin_conf = dir.join("admin.conf");
    std::fs::write(
        &admin_conf,
        kubeconfig::render(
            "chaos",
            &server_url,
            &ca.cert_pem,
            "kubernetes-admin",
            &Credentials::Cert {
                cert_pem: admin_cert.cert_pem,
                key_pem: admin_cert.key_pem,
            },
        ),
    )
    .unwrap();
    let admin = kubeconfig::client(&admin_conf, None, Some(Duration::from_secs(5)))
        .await
        .unwrap();
    // The kubelet authenticates with a bearer token, as after `kubeadm join`.
    let kubelet_conf = dir.join("kubelet.conf");
    std::fs::write(
        &kubelet_conf,
        kubeconfig::render(
            "chaos",
            &server_url,
            &ca.cert_pem,
            "default-auth",
            &Credentials::Token("abcdef.0123456789abcdef".into()),
        ),
    )
    .unwrap();
    Cluster {
        dir,
        admin,
        kubelet_conf,
        _server: server,
        _sim: sim,
    }
}

async fn start_kubelet(kubelet_conf: &Path, containers: &Path) -> JoinHandle<()> {
    let settings = Settings {
        flags: Flags {
            node_name: NODE.into(),
            node_ip: NODE_IP.into(),
            provider_id: format!("kind://docker/chaos/{NODE}"),
            labels: [("tier".to_string(), "edge".to_string())].into(),
            taints: vec![],
            version: "v1.31.4".into(),
        },
        status_update_frequency: Duration::from_millis(300),
        lease_duration_seconds: 2,
        pod_start: Duration::from_millis(200),
        request_timeout: Duration::from_secs(2),
        containers_file: containers.to_path_buf(),
    };
    let client = kubeconfig::client(kubelet_conf, None, Some(settings.request_timeout))
        .await
        .unwrap();
    let watch_client = kubeconfig::client(kubelet_conf, None, None).await.unwrap();
    tokio::spawn(kubelet::run(client, watch_client, settings))
}

async fn eventually<T>(
    what: &str,
    timeout: Duration,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn ready_status(node: &Node) -> String {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .map(|c| c.status.clone())
        .unwrap_or_default()
}

async fn node_ready(nodes: &Api<Node>) -> String {
    nodes
        .get_opt(NODE)
        .await
        .ok()
        .flatten()
        .map(|n| ready_status(&n))
        .unwrap_or_default()
}

fn running_ready(pod: &Pod) -> bool {
    let status = pod.status.clone().unwrap_or_default();
    status.phase.as_deref() == Some("Running")
        && status
            .conditions
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
}

async fn app_pods(admin: &kube::Client) -> Vec<Pod> {
    let pods: Api<Pod> = Api::namespaced(admin.clone(), "default");
    pods.list(&ListParams::default().labels("app=web"))
        .await
        .map(|l| l.items)
        .unwrap_or_default()
}

fn restarts(pod: &Pod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map_or(0, |c| c[0].restart_count)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubelet_over_tls_keeps_a_node_ready_and_runs_its_pods() {
    let cluster = start_cluster("tls").await;
    let admin = cluster.admin.clone();

    // kube-rs with rustls accepts the generated CA, serving cert and client cert.
    let health = admin
        .request_text(http::Request::get("/healthz").body(Vec::new()).unwrap())
        .await
        .unwrap();
    assert_eq!(health, "ok");
    let namespaces: Api<Namespace> = Api::all(admin.clone());
    assert!(
        namespaces
            .get_opt("kube-node-lease")
            .await
            .unwrap()
            .is_some()
    );

    let containers = cluster.dir.join("containers.json");
    let kubelet = start_kubelet(&cluster.kubelet_conf, &containers).await;
    let nodes: Api<Node> = Api::all(admin.clone());
    eventually(
        "the node to register Ready",
        Duration::from_secs(10),
        async || (node_ready(&nodes).await == "True").then_some(()),
    )
    .await;
    let node = nodes.get(NODE).await.unwrap();
    let labels = node.metadata.labels.clone().unwrap();
    assert_eq!(labels["kubernetes.io/hostname"], NODE);
    assert_eq!(labels["kubernetes.io/os"], "linux");
    assert_eq!(labels["tier"], "edge");
    assert_eq!(
        node.spec.unwrap().provider_id.as_deref(),
        Some("kind://docker/chaos/chaos-worker")
    );
    let status = node.status.unwrap();
    assert_eq!(status.node_info.unwrap().kubelet_version, "v1.31.4");
    assert_eq!(status.addresses.unwrap()[0].address, NODE_IP);
    assert_eq!(status.capacity.unwrap()["pods"].0, "110");
    assert_eq!(
        status.conditions.unwrap().last().unwrap().type_,
        "Ready",
        "kind --wait reads the last condition"
    );

    // A Deployment's pods run on the node, Running and Ready.
    let deployments: Api<Deployment> = Api::namespaced(admin.clone(), "default");
    let deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}},
    }))
    .unwrap();
    deployments
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();
    let pods = eventually(
        "2 pods Running and Ready",
        Duration::from_secs(15),
        async || {
            let pods = app_pods(&admin).await;
            (pods.len() == 2 && pods.iter().all(running_ready)).then_some(pods)
        },
    )
    .await;
    for pod in &pods {
        let status = pod.status.clone().unwrap();
        assert_eq!(pod.spec.as_ref().unwrap().node_name.as_deref(), Some(NODE));
        assert_eq!(status.host_ip.as_deref(), Some(NODE_IP));
        assert!(
            status.pod_ip.as_deref().unwrap().starts_with("10.244.9."),
            "{:?}",
            status.pod_ip
        );
        assert!(status.start_time.is_some());
        assert!(status.container_statuses.unwrap()[0].ready);
    }

    // The kubelet stops: no heartbeats, so the node goes Unknown after the grace period.
    kubelet.abort();
    let stopped = tokio::time::Instant::now();
    eventually("the node to go Ready=Unknown", GRACE * 5, async || {
        (node_ready(&nodes).await == "Unknown").then_some(())
    })
    .await;
    let took = stopped.elapsed();
    eprintln!("Ready=Unknown {took:?} after the kubelet stopped (grace {GRACE:?})");
    // The grace runs from the last heartbeat seen: the Lease (every 500 ms) or the status
    // (every 300 ms), renewed at most 500 ms before the stop.
    assert!(
        took >= GRACE - Duration::from_millis(600),
        "not before the grace period: {took:?}"
    );

    // It starts again: Ready, and its containers ran all along (no restarts).
    let kubelet = start_kubelet(&cluster.kubelet_conf, &containers).await;
    eventually(
        "the node to be Ready again",
        Duration::from_secs(10),
        async || (node_ready(&nodes).await == "True").then_some(()),
    )
    .await;
    eventually(
        "the pods Ready again without restarts",
        Duration::from_secs(10),
        async || {
            let pods = app_pods(&admin).await;
            (pods.len() == 2 && pods.iter().all(|p| running_ready(p) && restarts(p) == 0))
                .then_some(())
        },
    )
    .await;

    // A node container restart loses /run, hence its containers: the pods restart.
    kubelet.abort();
    std::fs::remove_file(&containers).unwrap();
    let kubelet = start_kubelet(&cluster.kubelet_conf, &containers).await;
    eventually(
        "the pods restarted once and Ready",
        Duration::from_secs(10),
        async || {
            let pods = app_pods(&admin).await;
            (pods.len() == 2 && pods.iter().all(|p| running_ready(p) && restarts(p) == 1))
                .then_some(())
        },
    )
    .await;
    kubelet.abort();
    let _ = std::fs::remove_dir_all(&cluster.dir);
}
