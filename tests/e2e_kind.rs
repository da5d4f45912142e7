//! End to end on clusters the real kind binary creates: a 3 + 3 cluster with older workers and a
//! 1 + 3 one; an app deployed, versions checked per node, and every node fault seen through the
//! API as the node going NotReady and coming back after its undo.
//!
//! Where it runs:
//! - `CHAOS_E2E=kind`: on real `kindest/node` images (needs Docker, kind, and a registry: see
//!   `.github/workflows/e2e-kind.yml`);
//! - otherwise, where Docker is up: on stand-in kind (`CHAOS_KIND_STANDIN=1`). `main` installs kind
//!   (`scripts/install-kind.sh`) and builds the stand-in images (`scripts/build-standin-images.sh`,
//!   cached) first;
//! - without Docker every test is reported as ignored, with the reason, unless
//!   `CHAOS_REQUIRE_DOCKER=1`, which makes that a failure.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use chaos_runtime::k8s_openapi::api::apps::v1::Deployment;
use chaos_runtime::k8s_openapi::api::core::v1::{Node as NodeObject, Pod, Service};
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

/// How long a node may take to be seen NotReady: the grace period kind is given (16 s, in
/// `chaos-runtime/src/provider/kind/config.rs`) plus a busy machine's slack.
const DOWN: Duration = Duration::from_secs(90);
/// How long a node may take to be Ready again after its undo (a kubelet heartbeat is 4 s).
const BACK: Duration = Duration::from_secs(120);

/// Sees `node` NotReady through the API after the fault `applied`, undoes it and sees it Ready.
async fn down_and_back(cluster: &Cluster, node: &Node, applied: Fault) -> anyhow::Result<()> {
    let what = format!("{} ({})", applied.what(), node.name());
    node_ready_is(cluster.client(), node.name(), false, DOWN)
        .await
        .map_err(|e| anyhow::anyhow!("after {what}: {e:#}"))?;
    applied.undo().await?;
    node_ready_is(cluster.client(), node.name(), true, BACK)
        .await
        .map_err(|e| anyhow::anyhow!("after undoing {what}: {e:#}"))?;
    Ok(())
}

#[chaos_test(masters = 1, workers = 3, timeout = "20m")]
async fn single_master_every_node_fault_takes_a_worker_down_and_its_undo_brings_it_back(
    cluster: &Cluster,
) -> anyhow::Result<()> {
    let workers = cluster.workers();
    let (w0, w1, w2) = (workers[0], workers[1], workers[2]);
    down_and_back(cluster, w0, w0.stop().await?).await?;
    down_and_back(cluster, w1, w1.kill().await?).await?;
    down_and_back(cluster, w2, w2.pause().await?).await?;
    down_and_back(cluster, w0, w0.kubelet_stop().await?).await?;
    down_and_back(cluster, w1, w1.isolate().await?).await?;
    let rest: Vec<&Node> = cluster
        .nodes()
        .iter()
        .filter(|n| n.name() != w2.name())
        .collect();
    down_and_back(cluster, w2, w2.partition(&rest).await?).await
}

/// A restart is over before the grace period ends, so the API may never see the node NotReady;
/// what it does see is the node's containers restarted (as on real kind, where a node restart
/// kills them) and the node Ready.
#[chaos_test(masters = 1, workers = 3, timeout = "20m")]
async fn single_master_a_restarted_worker_restarts_its_pods_and_is_ready_again(
    cluster: &Cluster,
) -> anyhow::Result<()> {
    deploy_app(cluster).await?;
    app_available(cluster.client(), cluster.namespace(), BACK).await?;
    let pods: Api<Pod> = Api::namespaced(cluster.client(), cluster.namespace());
    // The worker running most of the app's pods.
    let all = pods.list(&ListParams::default()).await?.items;
    let hosting = |name: &str| {
        all.iter()
            .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(name))
            .count()
    };
    let node = cluster
        .workers()
        .into_iter()
        .max_by_key(|n| hosting(n.name()))
        .expect("3 workers");
    anyhow::ensure!(
        hosting(node.name()) > 0,
        "no pod of the app runs on a worker"
    );
    let on_node = format!("spec.nodeName={}", node.name());
    let restarts = |pods: &[Pod]| -> i32 {
        pods.iter()
            .flat_map(|p| {
                p.status
                    .iter()
                    .flat_map(|s| s.container_statuses.iter().flatten())
            })
            .map(|c| c.restart_count)
            .sum()
    };
    let listed = pods
        .list(&ListParams::default().fields(&on_node))
        .await?
        .items;
    let before = restarts(&listed);
    node.restart().await?;
    node_ready_is(cluster.client(), node.name(), true, BACK).await?;
    {
        let waited_for = format!("the pods on {} restarted", node.name());
        wait::until_list(
            pods,
            watcher::Config::default().fields(&on_node),
            waited_for,
            BACK,
            |found| match restarts(found) {
                after if after > before => Ok(()),
                after => Err(format!(
                    "{} pods, {after} restarts (before the restart: {before})",
                    found.len()
                )),
            },
        )
        .await?;
    }
    app_available(cluster.client(), cluster.namespace(), BACK).await
}

/// In HA every kubelet reaches the API through the load balancer: a worker cut off from every
/// control plane must lose that path too.
#[chaos_test(masters = 3, workers = 3, k8s = "1.29", worker_versions = ["1.28"], timeout = "20m")]
async fn ha_a_worker_partitioned_from_every_control_plane_goes_not_ready(
    cluster: &Cluster,
) -> anyhow::Result<()> {
    let worker = cluster.workers()[1];
    let masters = cluster.masters();
    let cut = worker.partition(&masters).await?;
    node_ready_is(cluster.client(), worker.name(), false, DOWN).await?;
    // The other workers keep their path through the load balancer.
    let other = cluster.workers()[2];
    node_ready_is(cluster.client(), other.name(), true, Duration::from_secs(5)).await?;
    cut.undo().await?;
    node_ready_is(cluster.client(), worker.name(), true, BACK).await
}

#[chaos_test(masters = 3, workers = 3, k8s = "1.29", worker_versions = ["1.28"], timeout = "20m")]
async fn ha_isolate_takes_a_worker_down_and_heals(cluster: &Cluster) -> anyhow::Result<()> {
    let worker = cluster.workers()[2];
    down_and_back(cluster, worker, worker.isolate().await?).await
}

/// Where the suite runs: real kind images with `CHAOS_E2E=kind`, else stand-in kind where Docker
/// is up (set up here, before the harness), else nowhere (ignored, with the reason).
fn main() -> ExitCode {
    let package = env!("CARGO_PKG_NAME");
    let listing = std::env::args().any(|a| a == "--list");
    if std::env::var("CHAOS_E2E").is_ok_and(|v| v == "kind") {
        return chaos_runtime::__private::run_main(package, Suite::OnProvider("kind"));
    }
    if listing {
        return chaos_runtime::__private::run_main(package, Suite::OnProvider("kind"));
    }
    let required = match chaos_runtime::__private::flag("CHAOS_REQUIRE_DOCKER") {
        Ok(required) => required,
        Err(err) => {
            eprintln!("e2e_kind: {err:#}");
            return ExitCode::from(2);
        }
    };
    match set_up_standin() {
        Ok(()) => {
            let code = chaos_runtime::__private::run_main(package, Suite::OnProvider("kind"));
            match leftover_containers() {
                Ok(left) if left.is_empty() => code,
                Ok(left) => {
                    eprintln!(
                        "e2e_kind: FAILED: containers of this suite's clusters are left: {}",
                        left.join(", ")
                    );
                    ExitCode::from(101)
                }
                Err(err) => {
                    eprintln!("e2e_kind: FAILED: could not list containers: {err:#}");
                    ExitCode::from(101)
                }
            }
        }
        Err(err) if required => {
            eprintln!(
                "e2e_kind: FAILED: stand-in kind could not be set up (CHAOS_REQUIRE_DOCKER=1): {err:#}"
            );
            ExitCode::from(101)
        }
        Err(err) => {
            let reason = format!(
                "stand-in kind could not be set up ({err:#}); CHAOS_E2E=kind runs on real kind images"
            );
            chaos_runtime::__private::run_main(package, Suite::Ignored(reason.leak()))
        }
    }
}

use chaos_runtime::__private::Suite;

/// Installs kind and builds the stand-in images (both cached), then points the harness at them:
/// `CHAOS_PROVIDER=kind CHAOS_KIND_STANDIN=1`.
fn set_up_standin() -> anyhow::Result<()> {
    let docker = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    anyhow::ensure!(
        docker.is_ok_and(|s| s.success()),
        "no Docker daemon answers `docker info`"
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let on_path = |program: &str| {
        std::env::var_os("PATH").is_some_and(|paths| {
            std::env::split_paths(&paths).any(|dir| dir.join(program).is_file())
        })
    };
    if std::env::var_os("CHAOS_KIND").is_none() && !on_path("kind") {
        let kind = script(&root.join("scripts/install-kind.sh"), &[])?;
        // SAFETY: single-threaded here: the harness has not started yet.
        unsafe { std::env::set_var("CHAOS_KIND", kind.trim()) };
    }
    // `cargo test` builds the agent with the workspace (chaos-standin has integration tests);
    // elsewhere the script builds it.
    let agent = agent_binary();
    let args: Vec<&str> = agent.iter().filter_map(|p| p.to_str()).collect();
    script(&root.join("scripts/build-standin-images.sh"), &args)?;
    // SAFETY: as above.
    unsafe {
        std::env::set_var("CHAOS_PROVIDER", "kind");
        std::env::set_var("CHAOS_KIND_STANDIN", "1");
    }
    Ok(())
}

/// Containers of kind clusters this project names (`chaos-…`) still there after the suite,
/// unless clusters were to be kept (`CHAOS_KEEP`, `CHAOS_REUSE`). Test binaries run one at a time
/// under `cargo test`, so any such container is this suite's.
fn leftover_containers() -> anyhow::Result<Vec<String>> {
    for keeps in ["CHAOS_KEEP", "CHAOS_REUSE"] {
        if chaos_runtime::__private::flag(keeps)? {
            return Ok(Vec::new());
        }
    }
    let out = Command::new("docker")
        .args([
            "ps",
            "-a",
            "--filter",
            "label=io.x-k8s.kind.cluster",
            "--format",
            "{{.Names}} {{.Label \"io.x-k8s.kind.cluster\"}}",
        ])
        .output()?;
    anyhow::ensure!(out.status.success(), "docker ps failed ({})", out.status);
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| line.split_once(' '))
        .filter(|(_, cluster)| cluster.starts_with("chaos-") && !cluster.starts_with("chaos-fx"))
        .map(|(name, _)| name.to_owned())
        .collect())
}

/// `target/<profile>/chaos-node-agent`, next to this test's `deps/` directory, if it was built.
fn agent_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let profile_dir = exe.parent()?.parent()?;
    let agent = profile_dir.join("chaos-node-agent");
    agent.is_file().then_some(agent)
}

/// Runs a project script, its progress on our stderr; returns its stdout.
fn script(path: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(path)
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| anyhow::anyhow!("could not run {}: {e}", path.display()))?;
    anyhow::ensure!(
        out.status.success(),
        "{} failed ({})",
        path.display(),
        out.status
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
