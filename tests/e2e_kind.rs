//! End to end on clusters the real kind binary creates: a 3 + 3 cluster with older workers and a
//! 1 + 3 one; an app deployed, versions checked per node, and every node fault seen through the
//! API as the node going NotReady and coming back after its undo.
//!
//! Where it runs: on real kind images with `CHAOS_E2E=kind`, else on stand-in kind where Docker is
//! up (`tests/standin/mod.rs`).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use chaos_runtime::k8s_openapi::api::apps::v1::Deployment;
use chaos_runtime::k8s_openapi::api::core::v1::{Node as NodeObject, Pod, Service};
use chaos_runtime::kube::api::{ListParams, Patch, PatchParams};
use chaos_runtime::kube::runtime::watcher;
use chaos_runtime::kube::{Api, Client};
use chaos_runtime::prelude::*;
use chaos_runtime::wait;

mod standin;

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

/// How long a node may take to be seen NotReady: the grace period kind is given (16 s, 50 s in
/// HA, in `chaos-runtime/src/provider/kind/config.rs`) plus a busy machine's slack.
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

/// The test a child run of the next test runs, and is killed in: it leaves a worker paused (as a
/// fault left in place would), says which cluster it runs on through the file in
/// `E2E_CHILD_MARKER`, and with `E2E_CHILD_WAIT` waits to be killed.
#[chaos_test(
    masters = 1,
    workers = 1,
    timeout = "10m",
    ignore = "run by single_master_a_run_killed_mid_test_leaves_nothing_after_the_next_run, as a child process"
)]
async fn a_run_to_be_killed(cluster: &Cluster) -> anyhow::Result<()> {
    cluster.workers()[0].pause().await?.keep();
    if let Some(marker) = std::env::var_os("E2E_CHILD_MARKER") {
        std::fs::write(marker, cluster.name())?;
    }
    if std::env::var_os("E2E_CHILD_WAIT").is_some() {
        tokio::time::sleep(Duration::from_secs(9 * 60)).await;
    }
    Ok(())
}

/// A run killed by SIGKILL in the middle of a test cannot clean up: its cluster, a worker paused,
/// stays. The next run removes every container of it before it starts anything (the ownership
/// records of `chaos-runtime/src/provider/kind/ownership.rs`; `cargo chaos gc` does the same).
#[chaos_test(masters = 1, workers = 3, timeout = "20m")]
async fn single_master_a_run_killed_mid_test_leaves_nothing_after_the_next_run(
    _cluster: &Cluster,
) -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    let dir = std::env::temp_dir().join(format!("e2e-killed-run-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (marker, log) = (dir.join("cluster"), dir.join("first-run.log"));
    let _ = std::fs::remove_file(&marker);
    let output = std::fs::File::create(&log)?;
    let mut first = tokio::process::Command::new(&exe)
        .args(["--ignored", "a_run_to_be_killed"])
        .env("E2E_CHILD_MARKER", &marker)
        .env("E2E_CHILD_WAIT", "1")
        .stdout(output.try_clone()?)
        .stderr(output)
        .kill_on_drop(true)
        .spawn()?;
    let log_tail = || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    let cluster = loop {
        if let Some(cluster) = std::fs::read_to_string(&marker)
            .ok()
            .filter(|c| !c.is_empty())
        {
            break cluster;
        }
        if let Some(status) = first.try_wait()? {
            anyhow::bail!(
                "the child run ended ({status}) before it could be killed; its output:\n{}",
                log_tail()
            );
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "waited 300 s for the child run to be inside its test; its output so far:\n{}",
            log_tail()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    first.start_kill()?; // SIGKILL
    first.wait().await?;
    let left: Vec<_> = standin::kind_containers()?
        .into_iter()
        .filter(|c| c.cluster == cluster)
        .collect();
    anyhow::ensure!(
        left.len() == 2,
        "a killed run leaves its 1 + 1 cluster, but {left:?} is left of {cluster}"
    );

    let next = tokio::process::Command::new(&exe)
        .args(["--ignored", "a_run_to_be_killed"])
        .output()
        .await?;
    let said = String::from_utf8_lossy(&next.stderr);
    anyhow::ensure!(
        next.status.success(),
        "the next run failed:\n{said}{}",
        String::from_utf8_lossy(&next.stdout)
    );
    anyhow::ensure!(
        said.lines()
            .any(|l| l.contains("left by runs that ended") && l.contains(&cluster)),
        "the next run does not say it removed {cluster}:\n{said}"
    );
    let left: Vec<_> = standin::kind_containers()?
        .into_iter()
        .filter(|c| c.cluster == cluster)
        .collect();
    anyhow::ensure!(left.is_empty(), "left after the next run: {left:?}");
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// A child run of `a_run_to_be_killed` (waiting inside its test), its output in a file.
struct ChildRun {
    child: tokio::process::Child,
    log: std::path::PathBuf,
    dir: std::path::PathBuf,
}

impl ChildRun {
    fn start(name: &str) -> anyhow::Result<ChildRun> {
        let dir = std::env::temp_dir().join(format!("e2e-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let log = dir.join("child.log");
        let output = std::fs::File::create(&log)?;
        let child = tokio::process::Command::new(std::env::current_exe()?)
            .args(["--ignored", "a_run_to_be_killed"])
            .env("E2E_CHILD_MARKER", dir.join("cluster"))
            .env("E2E_CHILD_WAIT", "1")
            .stdout(output.try_clone()?)
            .stderr(output)
            .kill_on_drop(true)
            .spawn()?;
        Ok(ChildRun { child, log, dir })
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until `found` finds something in the child's output (or elsewhere), at most 300 s.
    async fn wait_for<T>(
        &mut self,
        what: &str,
        mut found: impl FnMut(&str) -> Option<T>,
    ) -> anyhow::Result<T> {
        let deadline = std::time::Instant::now() + Duration::from_secs(300);
        loop {
            let output = self.output();
            if let Some(found) = found(&output) {
                return Ok(found);
            }
            if let Some(status) = self.child.try_wait()? {
                anyhow::bail!(
                    "the child run ended ({status}) before {what}; its output:\n{output}"
                );
            }
            anyhow::ensure!(
                std::time::Instant::now() < deadline,
                "waited 300 s for {what}; the child's output so far:\n{output}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Sends SIGINT and waits (at most 180 s) for the run to end; its exit code.
    async fn interrupt(&mut self) -> anyhow::Result<Option<i32>> {
        let pid = self.child.id().context("the child runs")?;
        let sent = std::process::Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status()?;
        anyhow::ensure!(sent.success(), "kill -INT {pid} failed");
        let status = tokio::time::timeout(Duration::from_secs(180), self.child.wait())
            .await
            .with_context(|| {
                format!(
                    "the run did not end within 180 s of SIGINT:\n{}",
                    self.output()
                )
            })??;
        Ok(status.code())
    }

    /// The cluster's containers and its ownership record are gone.
    fn assert_nothing_left_of(&self, cluster: &str) -> anyhow::Result<()> {
        let left: Vec<_> = standin::kind_containers()?
            .into_iter()
            .filter(|c| c.cluster == cluster)
            .collect();
        anyhow::ensure!(
            left.is_empty(),
            "left after SIGINT: {left:?}; the run said:\n{}",
            self.output()
        );
        let record = chaos_runtime::__kind::ownership::Records::default_location()
            .dir()
            .join("clusters")
            .join(format!("{cluster}.json"));
        anyhow::ensure!(
            !record.exists(),
            "the record {} is left after SIGINT",
            record.display()
        );
        Ok(())
    }
}

impl Drop for ChildRun {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The name in the child's `creating cluster NAME [...]` line.
fn cluster_being_created(output: &str) -> Option<String> {
    output.lines().find_map(|l| {
        let rest = l.split("creating cluster ").nth(1)?;
        Some(rest.split_whitespace().next()?.to_owned())
    })
}

/// SIGINT while kind creates the cluster: the creation is stopped, what it made removed, the test
/// reported not run, and the run exits 130.
#[chaos_test(masters = 1, workers = 3, timeout = "20m")]
async fn single_master_sigint_during_creation_leaves_no_container(
    _cluster: &Cluster,
) -> anyhow::Result<()> {
    let mut child = ChildRun::start("sigint-creating")?;
    let name = child
        .wait_for(
            "the child to start creating its cluster",
            cluster_being_created,
        )
        .await?;
    // Interrupt once kind has made a container of it, so that there is something to remove.
    child
        .wait_for("kind to make a node container", |_| {
            let made = standin::kind_containers().ok()?;
            made.iter().any(|c| c.cluster == name).then_some(())
        })
        .await?;
    let code = child.interrupt().await?;
    let output = child.output();
    anyhow::ensure!(
        code == Some(130),
        "exit code {code:?}, expected 130:\n{output}"
    );
    anyhow::ensure!(
        output.contains(&format!("SIGINT: stopping the creation of cluster {name}")),
        "the run does not say it stopped the creation:\n{output}"
    );
    anyhow::ensure!(
        output.contains("not run: the run was stopped by SIGINT"),
        "the test is not reported not run:\n{output}"
    );
    child.assert_nothing_left_of(&name)
}

/// SIGINT while a test runs (a worker paused): the test is stopped and failed, the cluster
/// removed, and the run exits 130.
#[chaos_test(masters = 1, workers = 3, timeout = "20m")]
async fn single_master_sigint_during_a_test_leaves_no_container(
    _cluster: &Cluster,
) -> anyhow::Result<()> {
    let mut child = ChildRun::start("sigint-testing")?;
    let marker = child.dir.join("cluster");
    let name = child
        .wait_for("the child to be inside its test", |_| {
            std::fs::read_to_string(&marker)
                .ok()
                .filter(|c| !c.is_empty())
        })
        .await?;
    let code = child.interrupt().await?;
    let output = child.output();
    anyhow::ensure!(
        code == Some(130),
        "exit code {code:?}, expected 130:\n{output}"
    );
    anyhow::ensure!(
        output.contains("stopped by SIGINT while it ran"),
        "the test is not failed as stopped:\n{output}"
    );
    child.assert_nothing_left_of(&name)
}

fn main() -> ExitCode {
    standin::main(env!("CARGO_PKG_NAME"), "e2e_kind")
}
